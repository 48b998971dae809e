/*
 * store_usage.c - the tracker's requests per day (budget.h): one row per
 * day, so that a restart goes on counting the day where it was.
 */
#include "store.h"
#include "store_sql.h"

int
br_store_usage_get(struct br_store *s, int64_t day, uint64_t *requests)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT requests FROM tracker_usage WHERE day=?", "i", day);
    int rc = br_sql_row(s, st);

    *requests = 0;
    if (rc == 0) {
        sqlite3_int64 n = sqlite3_column_int64(st, 0);
        *requests = n > 0 ? (uint64_t)n : 0;
    }
    sqlite3_reset(st);
    return rc == BR_ENOTFOUND ? 0 : rc;
}

int
br_store_usage_put(struct br_store *s, int64_t day, uint64_t requests)
{
    /* Never lower: a count written by an earlier run of the same day stays the floor. */
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO tracker_usage(day, requests) VALUES(?,?) "
                                         "ON CONFLICT(day) DO UPDATE SET requests=max(requests, excluded.requests)",
                                      "ii", day, (int64_t)requests));
}

int
br_store_usage_prune(struct br_store *s, int64_t before_day)
{
    return br_sql_done(s, br_sql_bind(s, "DELETE FROM tracker_usage WHERE day<?", "i", before_day));
}
