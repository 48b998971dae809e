/*
 * store_jobs.c - the outbox: jobs, their lanes and states, the dead
 * letters (jobs that failed for good) and retention (forgetting the words
 * of old chats).  Discarding a dead letter is the admin page's
 * (store_admin.c).
 */
#include "activity.h"
#include "store.h"
#include "store_sql.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- jobs ---- */

void
br_job_dispose(struct br_job *j)
{
    free(j->lane);
    free(j->upstream);
    free(j->kind);
    free(j->payload);
    memset(j, 0, sizeof(*j));
}

int
br_store_job_add(struct br_store *s, const char *lane, const char *upstream, const char *kind, int64_t conv_id,
                 const char *payload, int64_t *id)
{
    return br_store_job_add_at(s, lane, upstream, kind, conv_id, payload, 0, id);
}

int
br_store_job_add_at(struct br_store *s, const char *lane, const char *upstream, const char *kind, int64_t conv_id,
                    const char *payload, int64_t not_before, int64_t *id)
{
    int64_t now = br_now_ms();
    if (br_sql_done(s, br_sql_bind(s, "INSERT INTO jobs(lane, upstream, kind, conv_id, payload, state, next_at, "
                                      "created_at, updated_at) VALUES(?,?,?,?,?,0,?,?,?)",
                                   "tttitiii", lane, upstream, kind, conv_id, payload,
                                   not_before > now ? not_before : now, now, now)))
        return BR_EIO;
    if (id)
        *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

/*
 * The kinds that carry an employee's reply to the chat (and "user", the
 * look-up of an employee's tracker user, which a fetch waits for): they go
 * before the comments, notes and contacts waiting in other lanes.  The same list
 * is in the partial index jobs_urgent (store.c, schema 8), which a query
 * uses only when it repeats the index's condition word for word.
 */
#define URGENT_KINDS "('fetch', 'poll', 'reply', 'user')"

#define JOB_COLS                                                                                                      \
    "j.id, j.lane, j.upstream, j.kind, j.conv_id, j.payload, j.state, j.attempts, j.next_at, j.recover, "            \
    "j.kind IN " URGENT_KINDS

static void
job_fill(sqlite3_stmt *st, struct br_job *j)
{
    j->id = sqlite3_column_int64(st, 0);
    j->lane = br_sql_col_str(st, 1);
    j->upstream = br_sql_col_str(st, 2);
    j->kind = br_sql_col_str(st, 3);
    j->conv_id = sqlite3_column_int64(st, 4);
    j->payload = br_sql_col_str(st, 5);
    j->state = sqlite3_column_int(st, 6);
    j->attempts = sqlite3_column_int(st, 7);
    j->next_at = sqlite3_column_int64(st, 8);
    j->recover = sqlite3_column_int(st, 9) != 0;
    j->urgent = sqlite3_column_int(st, 10) != 0;
}

/*
 * A job waits for every older job of its lane.  A dead task creation
 * keeps blocking (a comment must never overtake the task it belongs to);
 * anything else dead does not hold up the rest (a task is made without a
 * contact rather than not at all).
 */
#define LANE_FREE                                                                                                     \
    "NOT EXISTS (SELECT 1 FROM jobs k WHERE k.lane=j.lane AND k.id<j.id AND "                                       \
    "k.state<>2 AND (k.state IN (0,1) OR (k.state=3 AND k.kind='task')))"

/*
 * Steps st into out, up to max jobs.  free_col >= 0: a row is taken only
 * when that column (LANE_FREE) is true.  *rows counts the rows stepped.
 */
static int
ready_rows(struct br_store *s, sqlite3_stmt *st, int free_col, struct br_job *out, size_t max, size_t *n,
           size_t *rows)
{
    int rc = SQLITE_DONE;

    *rows = 0;
    while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ++*rows;
        if (free_col < 0 || sqlite3_column_int(st, free_col))
            job_fill(st, &out[(*n)++]);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        br_sql_failed(s, rc, sqlite3_errmsg(s->db));
        return BR_EIO;
    }
    return 0;
}

int
br_store_job_ready_urgent(struct br_store *s, const char *upstream, int64_t now, struct br_job *out, size_t max,
                          size_t *n)
{
    size_t rows;

    *n = 0;
    if (max == 0)
        return 0;
    /*
     * Over jobs_urgent, named: a few rows, however many comments wait (the
     * planner alone would walk jobs_open past all of them).
     */
    return ready_rows(s,
                      br_sql_bind(s, "SELECT " JOB_COLS " FROM jobs j INDEXED BY jobs_urgent "
                                     "WHERE j.upstream=? AND j.state=0 AND j.state<2 AND j.kind IN " URGENT_KINDS
                                     " AND j.next_at<=? AND " LANE_FREE " ORDER BY j.next_at, j.id LIMIT ?",
                                  "tii", upstream, now, (int64_t)max),
                      -1, out, max, n, &rows);
}

/*
 * The due jobs looked at in order before the lanes are walked instead:
 * enough for a day of many chats, where most lanes are free; a flood into
 * one chat queues thousands of due jobs behind its first one.
 */
#define DUE_ROWS 256
/* ready_in_order's column after JOB_COLS: LANE_FREE. */
#define FREE_COL 11

/* The lane's first job that holds up the rest (LANE_FREE's rule), among the rows of jobs_lane. */
#define LANE_HEAD                                                                                                     \
    "(SELECT h.id FROM jobs h INDEXED BY jobs_lane WHERE h.lane=lanes.lane AND h.state<>2 AND "                     \
    "(h.state IN (0,1) OR (h.state=3 AND h.kind='task')) ORDER BY h.id LIMIT 1)"

/*
 * The first free ones among the first DUE_ROWS due jobs, in order (next_at,
 * id); *exact when those were all the due jobs or enough: nothing further
 * down could come before them.
 */
static int
ready_in_order(struct br_store *s, const char *upstream, int64_t now, struct br_job *out, size_t max, size_t *n,
               bool *exact)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT " JOB_COLS ", " LANE_FREE " FROM jobs j "
                                      "WHERE j.upstream=? AND j.state=0 AND j.state<2 AND j.kind NOT IN " URGENT_KINDS
                                      " AND j.next_at<=? ORDER BY j.next_at, j.id LIMIT ?",
                                   "tii", upstream, now, (int64_t)DUE_ROWS);
    size_t rows;
    int rc = ready_rows(s, st, FREE_COL, out, max, n, &rows);

    *exact = *n == max || rows < DUE_ROWS;
    return rc;
}

/*
 * The same answer by the lanes: each lane's first job (one step down
 * jobs_lane per lane, however many jobs wait behind it), kept when it is
 * this upstream's, waiting and due.  The lanes are found one seek apart.
 */
static int
ready_by_lanes(struct br_store *s, const char *upstream, int64_t now, struct br_job *out, size_t max, size_t *n)
{
    size_t rows;

    return ready_rows(s,
                      br_sql_bind(s, "WITH RECURSIVE lanes(lane) AS ("
                                     "SELECT (SELECT min(lane) FROM jobs INDEXED BY jobs_lane WHERE state<>2) "
                                     "UNION ALL SELECT (SELECT min(k.lane) FROM jobs k INDEXED BY jobs_lane "
                                     "WHERE k.state<>2 AND k.lane>lanes.lane) FROM lanes WHERE lanes.lane IS NOT NULL) "
                                     "SELECT " JOB_COLS " FROM lanes JOIN jobs j ON j.id=" LANE_HEAD
                                     " WHERE lanes.lane IS NOT NULL AND j.upstream=? AND j.state=0 AND j.kind NOT IN "
                                     URGENT_KINDS " AND j.next_at<=? ORDER BY j.next_at, j.id LIMIT ?",
                                  "tii", upstream, now, (int64_t)max),
                      -1, out, max, n, &rows);
}

int
br_store_job_ready(struct br_store *s, const char *upstream, int64_t now, struct br_job *out, size_t max,
                   size_t *n)
{
    size_t urgent = 0, found = 0;
    bool exact = true;
    int rc = br_store_job_ready_urgent(s, upstream, now, out, max, &urgent);

    *n = urgent;
    if (rc || urgent == max)
        return rc;
    rc = ready_in_order(s, upstream, now, out + urgent, max - urgent, &found, &exact);
    if (rc == 0 && !exact) {
        /* Long blocked lanes filled the window: the first free jobs may lie past it. */
        for (size_t i = 0; i < found; i++)
            br_job_dispose(&out[urgent + i]);
        found = 0;
        rc = ready_by_lanes(s, upstream, now, out + urgent, max - urgent, &found);
    }
    *n = urgent + found;
    return rc;
}

int64_t
br_store_job_next_due(struct br_store *s, const char *upstream, int64_t now)
{
    /* Over jobs_open: one step down the index, however many jobs wait. */
    sqlite3_stmt *st = br_sql_bind(s, "SELECT next_at FROM jobs WHERE upstream=? AND state=0 AND state<2 AND next_at>? "
                                      "ORDER BY next_at LIMIT 1", "ti", upstream, now);
    int64_t at = 0;

    if (br_sql_row(s, st) == 0) {
        at = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return at;
}

int
br_store_job_get(struct br_store *s, int64_t id, struct br_job *out)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT " JOB_COLS " FROM jobs j WHERE j.id=?", "i", id);
    int rc = br_sql_row(s, st);
    if (rc)
        return rc;
    job_fill(st, out);
    sqlite3_reset(st);
    return 0;
}

int
br_store_job_start(struct br_store *s, int64_t id)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE jobs SET state=1, updated_at=? WHERE id=?", "ii", br_now_ms(), id));
}

int
br_store_job_payload(struct br_store *s, int64_t id, const char *payload)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE jobs SET payload=?, updated_at=? WHERE id=?", "tii", payload,
                                      br_now_ms(), id));
}

int
br_store_job_finish(struct br_store *s, int64_t id, int state, int attempts, int64_t next_at, bool recover,
                    const char *error, const char *request, const char *response)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE jobs SET state=?, attempts=?, next_at=?, recover=?, last_error=?, "
                                         "last_request=coalesce(?, last_request), "
                                         "last_response=coalesce(?, last_response), updated_at=? WHERE id=?",
                                      "nnintttii", state, attempts, next_at, (int)recover, error, request, response,
                                      br_now_ms(), id));
}

int
br_store_job_recover_inflight(struct br_store *s, int64_t *n)
{
    if (br_sql_done(s, br_sql_bind(s, "UPDATE jobs SET state=0, recover=1 WHERE state=1 AND state<>2", "")))
        return BR_EIO;
    *n = sqlite3_changes(s->db);
    return 0;
}

int
br_store_job_recover_lost(struct br_store *s, const int64_t *running, size_t n_running, int64_t *n)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT id FROM jobs WHERE state=1 AND state<>2 ORDER BY id", "");
    int64_t *ids = NULL;
    size_t n_ids = 0, cap = 0;
    int rc;

    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        bool run = false;
        for (size_t i = 0; i < n_running && !run; i++)
            run = running[i] == id;
        if (run)
            continue;
        if (n_ids == cap) {
            cap = cap ? cap * 2 : 16;
            ids = br_realloc(ids, cap * sizeof(*ids));
        }
        ids[n_ids++] = id;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        br_sql_failed(s, rc, sqlite3_errmsg(s->db));
        free(ids);
        return BR_EIO;
    }
    for (size_t i = 0; i < n_ids; i++) {
        if (br_sql_done(s, br_sql_bind(s, "UPDATE jobs SET state=0, recover=1, updated_at=? WHERE id=? AND state=1",
                                       "ii", br_now_ms(), ids[i]))) {
            free(ids);
            return BR_EIO;
        }
        *n += sqlite3_changes(s->db);
    }
    free(ids);
    return 0;
}

int64_t
br_store_job_count(struct br_store *s, int state)
{
    sqlite3_stmt *st = br_sql_bind(s, state == BR_JOB_DONE ? "SELECT count(*) FROM jobs WHERE state=?"
                                                           : "SELECT count(*) FROM jobs WHERE state=? AND state<>2",
                                   "n", state);
    int64_t v = 0;
    if (br_sql_row(s, st) == 0) {
        v = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return v;
}

int
br_store_job_backlog(struct br_store *s, const char *upstream, int64_t now_ms, int64_t *n)
{
    /*
     * Over the partial index of open jobs (state<2 names it), once a second:
     * batching.c.  A lane held by a dead task creation (LANE_FREE) sends
     * nothing until someone retries it: its jobs are no backlog, or the
     * wait would stay wide for every chat.  The dead tasks are few, listed
     * once per count over the index of jobs not done.
     */
    sqlite3_stmt *st = br_sql_bind(s, "SELECT count(*) FROM jobs WHERE upstream=? AND state=0 AND state<2 "
                                      "AND next_at<=? AND lane NOT IN "
                                      "(SELECT lane FROM jobs WHERE state<>2 AND state=3 AND kind='task')",
                                   "ti", upstream, now_ms);
    int rc = br_sql_row(s, st);

    *n = 0;
    if (rc == 0) {
        *n = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return rc;
}

int
br_store_job_depths(struct br_store *s, br_job_depth_cb cb, void *arg)
{
    /* Counted over the partial index of jobs not done; the oldest is the lowest id of each group. */
    sqlite3_stmt *st = br_sql_bind(s, "SELECT g.upstream, g.state, g.n, j.created_at FROM "
                                      "(SELECT upstream, state, count(*) AS n, min(id) AS first FROM jobs "
                                      "WHERE state<>2 GROUP BY upstream, state) AS g "
                                      "JOIN jobs AS j ON j.id=g.first ORDER BY g.upstream, g.state", "");
    int rc;

    while ((rc = br_sql_row(s, st)) == 0)
        cb(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2),
           sqlite3_column_int64(st, 3));
    return rc == BR_ENOTFOUND ? 0 : rc;
}

int
br_store_job_hasten(struct br_store *s, const char *lane, const char *kind, int64_t now, int64_t within_ms,
                    int64_t *n)
{
    *n = 0;
    if (br_sql_done(s, br_sql_bind(s, "UPDATE jobs SET next_at=? WHERE lane=? AND kind=? AND state=0 AND state<>2 "
                                      "AND next_at>? AND next_at<=?", "ittii", now, lane, kind, now, now + within_ms)))
        return BR_EIO;
    *n = sqlite3_changes(s->db);
    return 0;
}

bool
br_store_job_waiting(struct br_store *s, const char *lane, const char *kind)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT 1 FROM jobs WHERE lane=? AND kind=? AND state=0 AND state<>2 LIMIT 1",
                                   "tt", lane, kind);
    bool found = br_sql_row(s, st) == 0;
    if (found)
        sqlite3_reset(st);
    return found;
}

int
br_store_job_note_waiting(struct br_store *s, const char *lane, const char *kind, const char *key, const char *json)
{
    char *path = br_asprintf("$.%s", key);
    int rc = br_sql_done(s, br_sql_bind(s, "UPDATE jobs SET payload=json_set(payload, ?, json(?)), updated_at=? "
                                           "WHERE lane=? AND kind=? AND state=0 AND state<>2",
                                        "ttitt", path, json, br_now_ms(), lane, kind));
    free(path);
    return rc;
}

bool
br_store_job_blocked(struct br_store *s, const char *lane, int64_t id)
{
    /* The same rule as br_store_job_ready's (LANE_FREE): what holds a job back in its lane. */
    sqlite3_stmt *st = br_sql_bind(s, "SELECT 1 FROM jobs WHERE lane=? AND id<? AND state<>2 AND "
                                      "(state IN (0,1) OR (state=3 AND kind='task')) LIMIT 1",
                                   "ti", lane, id);
    bool found = br_sql_row(s, st) == 0;
    if (found)
        sqlite3_reset(st);
    return found;
}

/* ---- dead letters ---- */

int
br_store_dead_letters(struct br_store *s, char **json_out)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT id, kind, conv_id, upstream, attempts, updated_at, last_error, "
                                      "last_request, last_response FROM jobs WHERE state=3 AND state<>2 "
                                      "ORDER BY id", "");
    json_t *out = json_array();
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        time_t t = (time_t)(sqlite3_column_int64(st, 5) / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_array_append_new(out, json_pack("{s:I, s:s, s:I, s:s, s:i, s:s, s:s?, s:s?, s:s?}", "id",
                                             (json_int_t)sqlite3_column_int64(st, 0), "kind",
                                             (const char *)sqlite3_column_text(st, 1), "conversation",
                                             (json_int_t)sqlite3_column_int64(st, 2), "upstream",
                                             (const char *)sqlite3_column_text(st, 3), "attempts",
                                             sqlite3_column_int(st, 4), "at", when, "error",
                                             (const char *)sqlite3_column_text(st, 6), "request",
                                             (const char *)sqlite3_column_text(st, 7), "response",
                                             (const char *)sqlite3_column_text(st, 8)));
    }
    sqlite3_reset(st);
    *json_out = json_dumps(out, JSON_INDENT(2));
    json_decref(out);
    return rc == SQLITE_DONE ? 0 : BR_EIO;
}

int
br_store_dead_retry(struct br_store *s, int64_t id, int64_t *n)
{
    /* Back in the queue as if new, but checking first: its request may have been done after all. */
    int64_t now = br_now_ms();

    if (br_sql_done(s, id > 0 ? br_sql_bind(s, "UPDATE jobs SET state=0, attempts=0, next_at=?, recover=1, "
                                               "updated_at=? WHERE state=3 AND id=?", "iii", now, now, id)
                              : br_sql_bind(s, "UPDATE jobs SET state=0, attempts=0, next_at=?, recover=1, "
                                               "updated_at=? WHERE state=3 AND state<>2", "ii", now, now)))
        return BR_EIO;
    *n = sqlite3_changes(s->db);
    return 0;
}

/* ---- retention ---- */

int
br_store_forget_before(struct br_store *s, int64_t before_ms, int64_t *n)
{
    int rc = br_store_begin(s);

    /* The words of chats whose task was closed before the cut; ids and keys stay for deduplication. */
    if (rc == 0)
        rc = br_sql_done(s, br_sql_bind(s, "UPDATE messages SET text='' WHERE text<>'' AND EXISTS (SELECT 1 "
                                           "FROM tasks t WHERE t.conv_id=messages.conv_id AND t.gen=messages.gen "
                                           "AND t.state=3 AND t.closed_at<?)",
                                        "i", before_ms));
    if (n)
        *n = sqlite3_changes(s->db);
    /* Webhook bodies and finished jobs carry the same words. */
    if (rc == 0)
        rc = br_sql_done(s, br_sql_bind(s, "DELETE FROM inbox WHERE processed_at IS NOT NULL AND processed_at<?", "i",
                                        before_ms));
    if (rc == 0)
        rc = br_sql_done(s, br_sql_bind(s, "DELETE FROM jobs WHERE state=2 AND updated_at<?", "i", before_ms));
    if (rc == 0)
        rc = br_sql_done(s, br_sql_bind(s, "DELETE FROM relays WHERE created_at<?", "i", before_ms));
    /* The timelines quote the same words (activity.h). */
    if (rc == 0)
        rc = br_store_activity_forget(s, before_ms);
    if (rc == 0)
        rc = br_store_commit(s);
    if (rc)
        br_store_rollback(s);
    return rc;
}
