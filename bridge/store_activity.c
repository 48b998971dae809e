/*
 * store_activity.c - the timelines' rows (activity.h): written one INSERT
 * each, read back joined with what the store knows now (a message's
 * state and comment, a job's request and answer, a merge undone), and
 * forgotten with retention.
 */
#include "activity.h"
#include "store_sql.h"

#include "notify.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int
br_activity_add(struct br_store *s, int64_t conv_id, const char *type, json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT);
    int rc = br_sql_done(s, br_sql_bind(s, "INSERT INTO activity(conv_id, at, type, data) VALUES(?,?,?,?)", "iitt",
                                        conv_id, br_now_ms(), type, text != NULL ? text : "{}"));

    free(text);
    json_decref(data);
    if (rc == 0)
        br_notify_conversation(conv_id);
    return rc;
}

int
br_store_activity_forget(struct br_store *s, int64_t before_ms)
{
    return br_sql_done(s, br_sql_bind(s, "DELETE FROM activity WHERE at<?", "i", before_ms));
}

/* ---- reading a timeline ---- */

static const char *const job_states[] = {"queued", "running", "done", "dead", "discarded"};

static const char *
job_state_name(json_int_t state)
{
    return state >= 0 && state < (json_int_t)BR_ARRAY_SIZE(job_states) ? job_states[state] : "unknown";
}

static json_t *
col_text(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : json_string((const char *)sqlite3_column_text(st, i));
}

/* A message: who wrote it, its words, and where it is now (in the description, a comment, with which others). */
static void
add_message(struct br_store *s, int64_t conv_id, json_t *item)
{
    int64_t id = json_integer_value(json_object_get(item, "message_id"));
    sqlite3_stmt *st = br_sql_bind(s, "SELECT m.type, m.text, m.state, m.comment_id, "
                                      "(SELECT task_id FROM tasks t WHERE t.conv_id=m.conv_id AND t.gen=m.gen) "
                                      "FROM messages m WHERE m.id=? AND m.conv_id=?", "ii", id, conv_id);
    json_t *others = json_array();
    const char *state = "pending";
    char *comment = NULL;
    int rc;

    if (br_sql_row(s, st) != 0) {
        json_object_set_new(item, "state", json_string("unknown"));
        json_object_set_new(item, "coalesced_with", others);
        return;
    }
    json_object_set_new(item, "author", json_string(strcmp((const char *)sqlite3_column_text(st, 0), "client") == 0
                                                        ? "visitor" : "agent"));
    json_object_set_new(item, "text", col_text(st, 1));
    comment = sqlite3_column_type(st, 3) == SQLITE_NULL ? NULL : br_strdup((const char *)sqlite3_column_text(st, 3));
    switch (sqlite3_column_int(st, 2)) {
    case BR_MSG_MIRRORED:
        state = comment != NULL ? "in_comment" : "in_description";
        break;
    case BR_MSG_SKIPPED:
        state = "skipped";
        break;
    default:
        break;
    }
    json_object_set_new(item, "state", json_string(state));
    json_object_set_new(item, "task", col_text(st, 4));
    json_object_set_new(item, "comment_id", comment != NULL ? json_string(comment) : json_null());
    sqlite3_reset(st);
    if (comment != NULL) {
        /* The others its comment carried (a burst typed within coalesce_ms). */
        st = br_sql_bind(s, "SELECT id FROM messages WHERE conv_id=? AND comment_id=? AND id<>? ORDER BY id", "iti",
                         conv_id, comment, id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(others, json_integer(sqlite3_column_int64(st, 0)));
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            br_sql_failed(s, rc, sqlite3_errmsg(s->db));
    }
    json_object_set_new(item, "coalesced_with", others);
    free(comment);
}

/* A job: its kind and upstream, and the last request and answer the store keeps. */
static void
add_job(struct br_store *s, json_t *item)
{
    int64_t id = json_integer_value(json_object_get(item, "job_id"));
    sqlite3_stmt *st = br_sql_bind(s, "SELECT kind, upstream, last_request, last_response FROM jobs WHERE id=?", "i",
                                   id);

    json_object_set_new(item, "state", json_string(job_state_name(json_integer_value(json_object_get(item, "state")))));
    if (br_sql_row(s, st) != 0) {
        json_object_set_new(item, "request", json_null());
        json_object_set_new(item, "response", json_null());
        return;
    }
    json_object_set_new(item, "kind", col_text(st, 0));
    json_object_set_new(item, "upstream", col_text(st, 1));
    json_object_set_new(item, "request", col_text(st, 2));
    json_object_set_new(item, "response", col_text(st, 3));
    sqlite3_reset(st);
}

/* A reply: whether its job has delivered it. */
static void
add_reply(struct br_store *s, json_t *item)
{
    int64_t id = json_integer_value(json_object_get(item, "job_id"));
    sqlite3_stmt *st = br_sql_bind(s, "SELECT state FROM jobs WHERE id=?", "i", id);

    if (br_sql_row(s, st) != 0)
        return;
    json_object_set_new(item, "job_state", json_string(job_state_name(sqlite3_column_int(st, 0))));
    sqlite3_reset(st);
}

/* A merge: whether it was undone since. */
static void
add_merge(struct br_store *s, json_t *item)
{
    int64_t id = json_integer_value(json_object_get(item, "merge_id"));
    sqlite3_stmt *st = br_sql_bind(s, "SELECT undone_at FROM merges WHERE id=?", "i", id);
    json_t *undone = json_null();

    if (br_sql_row(s, st) == 0) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            undone = json_integer(sqlite3_column_int64(st, 0));
        sqlite3_reset(st);
    }
    json_object_set_new(item, "undone_at", undone);
}

int
br_store_timeline(struct br_store *s, int64_t conv_id, size_t max, json_t **out, bool *truncated)
{
    /*
     * The latest max rows, then oldest first.  Jobs still waiting or
     * running that have no row yet come in at the time they were queued
     * ("state<2" is the open jobs' partial index).
     */
    sqlite3_stmt *st = br_sql_bind(s, "SELECT id, at, type, data FROM ("
                                      "SELECT id, at, type, data FROM activity WHERE conv_id=?1 "
                                      "UNION ALL SELECT 0, j.created_at, 'job', json_object('job_id', j.id, 'state', "
                                      "j.state, 'attempts', j.attempts, 'error', j.last_error) FROM jobs j "
                                      "WHERE j.state<2 AND j.conv_id=?1 AND NOT EXISTS (SELECT 1 FROM activity a "
                                      "WHERE a.conv_id=?1 AND a.type='job' AND json_extract(a.data, '$.job_id')=j.id) "
                                      "ORDER BY 2 DESC, 1 DESC LIMIT ?2) ORDER BY 2, 1",
                                   "ii", conv_id, (int64_t)max + 1);
    json_t *list = json_array();
    int rc;

    *truncated = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 2);
        json_error_t je;
        json_t *data = json_loads((const char *)sqlite3_column_text(st, 3), 0, &je), *item;

        item = json_pack("{s:I, s:s}", "at", (json_int_t)sqlite3_column_int64(st, 1), "type", type);
        if (json_is_object(data))
            json_object_update_missing(item, data);
        json_decref(data);
        json_array_append_new(list, item);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        br_sql_failed(s, rc, sqlite3_errmsg(s->db));
        json_decref(list);
        return BR_EIO;
    }
    if (json_array_size(list) > max) {
        /* One row more than max was read: the oldest, left out. */
        *truncated = true;
        json_array_remove(list, 0);
    }
    /* What is known now, looked up once the rows are read. */
    {
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item) {
            const char *type = json_string_value(json_object_get(item, "type"));
            if (strcmp(type, "message") == 0)
                add_message(s, conv_id, item);
            else if (strcmp(type, "job") == 0)
                add_job(s, item);
            else if (strcmp(type, "reply") == 0)
                add_reply(s, item);
            else if (strcmp(type, "merge") == 0)
                add_merge(s, item);
        }
    }
    *out = list;
    return 0;
}
