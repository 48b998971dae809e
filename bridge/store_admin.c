/*
 * store_admin.c - what the admin page reads from the store beside the
 * timeline (store_activity.c): the overview's queue figures, the list of
 * conversations with its search, one conversation, the two sides of a
 * merge; and discarding a dead letter.
 */
#include "store.h"
#include "store_sql.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <unistr.h>

/* ---- the overview ---- */

static int64_t
one_int(struct br_store *s, sqlite3_stmt *st, int *rc)
{
    int64_t v = 0;
    int r = br_sql_row(s, st);

    if (r == 0) {
        v = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    } else if (r != BR_ENOTFOUND) {
        *rc = r;
    }
    return v;
}

int
br_store_overview(struct br_store *s, struct br_store_overview *out)
{
    int rc = 0;

    memset(out, 0, sizeof(*out));
    out->inbox_pending = br_store_inbox_pending(s);
    out->inbox_oldest = one_int(s, br_sql_bind(s, "SELECT received_at FROM inbox WHERE processed_at IS NULL "
                                                  "ORDER BY id LIMIT 1", ""), &rc);
    /* "state<2" repeats the partial index's condition (see the schema). */
    out->jobs_queued = one_int(s, br_sql_bind(s, "SELECT count(*) FROM jobs WHERE state=0 AND state<2", ""), &rc);
    out->jobs_oldest = one_int(s, br_sql_bind(s, "SELECT coalesce(min(created_at), 0) FROM jobs WHERE state<2", ""),
                               &rc);
    out->dead = br_store_job_count(s, BR_JOB_DEAD);
    return rc;
}

/* ---- search: case-insensitive in every script ---- */

/*
 * br_fold(text): the text in Unicode case folding, so that a search for
 * "мария" finds "Мария" (SQLite's own LIKE folds ASCII only).  Text that
 * is not UTF-8 is compared as it is.
 */
static void
fold_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const uint8_t *in = sqlite3_value_text(argv[0]);
    size_t n = (size_t)sqlite3_value_bytes(argv[0]), len = 0;
    uint8_t *low;

    (void)argc;
    if (in == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    low = u8_check(in, n) == NULL ? u8_casefold(in, n, NULL, NULL, NULL, &len) : NULL;
    if (low == NULL) {
        sqlite3_result_text(ctx, (const char *)in, (int)n, SQLITE_TRANSIENT);
        return;
    }
    sqlite3_result_text(ctx, (const char *)low, (int)len, free);
}

static int
register_fold(struct br_store *s)
{
    if (s->fold_registered)
        return 0;
    if (sqlite3_create_function(s->db, "br_fold", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fold_fn, NULL,
                                NULL) != SQLITE_OK)
        return BR_EIO;
    s->fold_registered = true;
    return 0;
}

/* ---- conversations ---- */

static const char *const task_states[] = {"pending", "open", "closing", "closed"};

/* The columns every listed conversation is made from (conv_json reads them in this order). */
#define LIST_COLS                                                                                                    \
    "c.id, c.channel, c.name, c.email, c.merged_into, c.updated_at, c.person_id, c.phone, c.created_at, c.gen, "     \
    "t.task_id, t.state "
#define LIST_FROM "FROM conversations c LEFT JOIN tasks t ON t.conv_id=c.id AND t.gen=c.gen "

static json_t *
conv_json(struct br_store *s, sqlite3_stmt *st, bool full)
{
    int64_t id = sqlite3_column_int64(st, 0), person = sqlite3_column_int64(st, 6);
    json_t *o = json_object(), *emails, *clients = json_array(), *task = json_null();
    const char *state = "active";
    sqlite3_stmt *q;
    int rc;

    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "channel", json_string((const char *)sqlite3_column_text(st, 1)));
    json_object_set_new(o, "name", sqlite3_column_type(st, 2) == SQLITE_NULL
                                       ? json_null()
                                       : json_string((const char *)sqlite3_column_text(st, 2)));
    if (sqlite3_column_type(st, 11) != SQLITE_NULL) {
        int ts = sqlite3_column_int(st, 11);
        task = json_pack("{s:s?, s:s}", "id", (const char *)sqlite3_column_text(st, 10), "state",
                         ts >= 0 && ts < (int)BR_ARRAY_SIZE(task_states) ? task_states[ts] : "unknown");
        if (ts == BR_TASK_CLOSED)
            state = "closed";
    }
    if (sqlite3_column_type(st, 4) != SQLITE_NULL)
        state = "merged";
    json_object_set_new(o, "merged_into", sqlite3_column_type(st, 4) == SQLITE_NULL
                                              ? json_null()
                                              : json_integer(sqlite3_column_int64(st, 4)));
    json_object_set_new(o, "state", json_string(state));
    json_object_set_new(o, "task", task);
    json_object_set_new(o, "last_activity", json_integer(sqlite3_column_int64(st, 5)));
    if (full) {
        json_object_set_new(o, "person_id", json_integer(person));
        json_object_set_new(o, "phone", sqlite3_column_type(st, 7) == SQLITE_NULL
                                            ? json_null()
                                            : json_string((const char *)sqlite3_column_text(st, 7)));
        json_object_set_new(o, "created_at", json_integer(sqlite3_column_int64(st, 8)));
        json_object_set_new(o, "tasks", json_integer(sqlite3_column_int(st, 9)));
    }
    /* The e-mails of its person; a merged thread's went to the survivor: then the one it knew. */
    emails = br_store_person_emails(s, person, false);
    if (json_array_size(emails) == 0 && sqlite3_column_type(st, 3) != SQLITE_NULL)
        json_array_append_new(emails, json_string((const char *)sqlite3_column_text(st, 3)));
    json_object_set_new(o, "emails", emails);
    q = br_sql_bind(s, "SELECT client_id FROM conv_clients WHERE conv_id=? ORDER BY rowid", "i", id);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        char *shown = br_store_client_shown((const char *)sqlite3_column_text(q, 0));
        json_array_append_new(clients, json_string(shown));
        free(shown);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        br_sql_failed(s, rc, sqlite3_errmsg(s->db));
    json_object_set_new(o, "devices", json_integer((json_int_t)json_array_size(clients)));
    json_object_set_new(o, "client_ids", clients);
    return o;
}

int
br_store_conversations(struct br_store *s, const char *q, int64_t before, size_t limit, json_t **out, bool *more)
{
    char *needle = NULL;
    int64_t anchor_at = 0;
    sqlite3_stmt *st;
    json_t *list = json_array();
    size_t n = 0;
    int rc;

    *out = NULL;
    *more = false;
    if ((rc = register_fold(s))) {
        json_decref(list);
        return rc;
    }
    if (q != NULL && *q != '\0') {
        size_t len = 0;
        uint8_t *f = u8_check((const uint8_t *)q, strlen(q)) == NULL
                         ? u8_casefold((const uint8_t *)q, strlen(q), NULL, NULL, NULL, &len)
                         : NULL;
        needle = f != NULL ? br_strndup((const char *)f, len) : br_strdup(q);
        free(f);
    }
    /* The page goes on after the last conversation it got: in the order, which may have moved since. */
    if (before > 0) {
        st = br_sql_bind(s, "SELECT updated_at FROM conversations WHERE id=?", "i", before);
        if ((rc = br_sql_row(s, st)) != 0) {
            free(needle);
            json_decref(list);
            return rc == BR_ENOTFOUND ? BR_EINVAL : rc;
        }
        anchor_at = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    /*
     * A search reads every conversation (an admin's question, not the
     * bridge's work); the listing without one walks the newest first.
     */
    st = br_sql_bind(s, "SELECT " LIST_COLS LIST_FROM
                        "WHERE (?1 = 0 OR c.updated_at < ?2 OR (c.updated_at = ?2 AND c.id < ?1)) AND (?3 IS NULL "
                        "OR instr(br_fold(coalesce(c.name, '')), ?3) > 0 "
                        "OR instr(br_fold(coalesce(c.email, '')), ?3) > 0 "
                        "OR EXISTS (SELECT 1 FROM person_emails e WHERE e.person_id=c.person_id "
                        "AND instr(br_fold(e.email), ?3) > 0) "
                        "OR EXISTS (SELECT 1 FROM conv_clients k WHERE k.conv_id=c.id AND instr(br_fold(k.client_id), ?3) > 0) "
                        "OR EXISTS (SELECT 1 FROM tasks x WHERE x.conv_id=c.id AND instr(x.task_id, ltrim(?3, '#')) > 0)) "
                        "ORDER BY c.updated_at DESC, c.id DESC LIMIT ?4",
                     "iiti", before, anchor_at, needle, (int64_t)limit + 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) {
            *more = true;
            break;
        }
        json_array_append_new(list, conv_json(s, st, false));
        n++;
    }
    sqlite3_reset(st);
    free(needle);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        br_sql_failed(s, rc, sqlite3_errmsg(s->db));
        json_decref(list);
        return BR_EIO;
    }
    *out = list;
    return 0;
}

int
br_store_conversation(struct br_store *s, int64_t id, json_t **out)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT " LIST_COLS LIST_FROM "WHERE c.id=?", "i", id);
    int rc = br_sql_row(s, st);

    *out = NULL;
    if (rc)
        return rc;
    /* conv_json runs queries of its own: the row is read first, then the statement is done with. */
    *out = conv_json(s, st, true);
    sqlite3_reset(st);
    return 0;
}

/* ---- dead letters given up ---- */

int
br_store_dead_discard(struct br_store *s, int64_t id, int64_t *conv_id)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT conv_id FROM jobs WHERE id=? AND state=3", "i", id);
    int rc = br_sql_row(s, st);

    if (rc)
        return rc;
    *conv_id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return br_sql_done(s, br_sql_bind(s, "UPDATE jobs SET state=4, updated_at=? WHERE id=? AND state=3", "ii",
                                      br_now_ms(), id));
}

int
br_store_merge_sides(struct br_store *s, int64_t merge_id, int64_t *survivor, int64_t *merged)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT survivor_conv, merged_conv FROM merges WHERE id=?", "i", merge_id);
    int rc = br_sql_row(s, st);

    if (rc)
        return rc;
    *survivor = sqlite3_column_int64(st, 0);
    *merged = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return 0;
}
