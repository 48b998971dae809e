/*
 * store_usage.c - the tracker's requests per day (budget.h): one row per
 * day, so that a restart goes on counting the day where it was, and one
 * per hour of a day, the shape the next days' projection follows.
 */
#include "store.h"
#include "store_sql.h"

#include <string.h>

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
br_store_usage_hour_put(struct br_store *s, int64_t day, int hour, uint64_t requests)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO tracker_usage_hours(day, hour, requests) VALUES(?,?,?) "
                                         "ON CONFLICT(day, hour) DO UPDATE SET requests=max(requests, excluded.requests)",
                                      "iii", day, (int64_t)hour, (int64_t)requests));
}

int
br_store_usage_hours(struct br_store *s, int64_t first_day, int days, uint64_t *counts)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT day, hour, requests FROM tracker_usage_hours WHERE day>=? AND day<?",
                                   "ii", first_day, first_day + days);
    int rc;

    memset(counts, 0, (size_t)days * 24 * sizeof(*counts));
    while ((rc = br_sql_row(s, st)) == 0) {
        int64_t day = sqlite3_column_int64(st, 0);
        int hour = sqlite3_column_int(st, 1);
        sqlite3_int64 n = sqlite3_column_int64(st, 2);
        if (day >= first_day && day < first_day + days && hour >= 0 && hour < 24 && n > 0)
            counts[(day - first_day) * 24 + hour] = (uint64_t)n;
    }
    sqlite3_reset(st);
    return rc == BR_ENOTFOUND ? 0 : rc;
}

int
br_store_usage_prune(struct br_store *s, int64_t before_day)
{
    int rc = br_sql_done(s, br_sql_bind(s, "DELETE FROM tracker_usage WHERE day<?", "i", before_day));
    int rc2 = br_sql_done(s, br_sql_bind(s, "DELETE FROM tracker_usage_hours WHERE day<?", "i", before_day));
    return rc ? rc : rc2;
}
