/*
 * store_inbox.c - the inbox: webhooks stored before they are answered,
 * one by one or queued for one group commit, and read back in order by
 * the engine.
 */
#include "store.h"
#include "store_sql.h"

#include <stdlib.h>
#include <string.h>

static int
inbox_insert(struct br_store *s, int kind, const char *channel, const char *body, size_t len, int64_t received_at,
             int64_t *id)
{
    sqlite3_stmt *st = br_sql_stmt(s, "INSERT INTO inbox(kind, channel, body, received_at) VALUES(?,?,?,?)");
    sqlite3_bind_int(st, 1, kind);
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, body, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, received_at ? received_at : br_now_ms());
    if (br_sql_done(s, st))
        return BR_EIO;
    if (id)
        *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int
br_store_inbox_add(struct br_store *s, int kind, const char *channel, const char *body, size_t len,
                   int64_t *id)
{
    return inbox_insert(s, kind, channel, body, len, 0, id);
}

void
br_store_inbox_queue(struct br_store *s, int kind, const char *channel, const char *body, size_t len)
{
    struct queued_row *r;

    if (s->nqueued == s->capqueued) {
        s->capqueued = s->capqueued ? s->capqueued * 2 : 64;
        s->queued = br_realloc(s->queued, s->capqueued * sizeof(*s->queued));
    }
    r = &s->queued[s->nqueued++];
    r->kind = kind;
    r->channel = br_strdup(channel);
    r->body = br_malloc(len + 1);
    memcpy(r->body, body, len);
    r->body[len] = '\0';
    r->len = len;
    r->at = br_now_ms();
}

int
br_store_inbox_flush(struct br_store *s, size_t *n)
{
    int rc;

    *n = 0;
    if (s->nqueued == 0)
        return 0;
    rc = br_store_begin(s);
    for (size_t i = 0; i < s->nqueued && rc == 0; i++)
        rc = inbox_insert(s, s->queued[i].kind, s->queued[i].channel, s->queued[i].body, s->queued[i].len,
                          s->queued[i].at, NULL);
    if (rc == 0)
        rc = br_store_commit(s);
    if (rc)
        br_store_rollback(s);
    else
        *n = s->nqueued;
    br_sql_drop_queued(s);
    return rc;
}

int
br_store_inbox_next(struct br_store *s, struct br_inbox_row *r)
{
    /*
     * The tracker's webhooks first: each only asks for a task's new
     * comments (replies waiting for the chat), and must not wait behind a
     * flood of chat events.  Their order among themselves, and the chat
     * events' among theirs, is kept.
     */
    sqlite3_stmt *st = br_sql_bind(s, "SELECT id, kind, channel, body FROM inbox WHERE processed_at IS NULL AND kind=2 "
                                      "ORDER BY id LIMIT 1", "");
    int rc = br_sql_row(s, st);
    if (rc == BR_ENOTFOUND) {
        st = br_sql_bind(s, "SELECT id, kind, channel, body FROM inbox WHERE processed_at IS NULL "
                            "ORDER BY id LIMIT 1", "");
        rc = br_sql_row(s, st);
    }
    if (rc)
        return rc;
    r->id = sqlite3_column_int64(st, 0);
    r->kind = sqlite3_column_int(st, 1);
    r->channel = br_sql_col_str(st, 2);
    r->body = br_sql_col_str(st, 3);
    sqlite3_reset(st);
    return 0;
}

int
br_store_inbox_done(struct br_store *s, int64_t id)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE inbox SET processed_at=? WHERE id=?", "ii", br_now_ms(), id));
}

int64_t
br_store_inbox_pending(struct br_store *s)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT count(*) FROM inbox WHERE processed_at IS NULL", "");
    int64_t n = 0;
    if (br_sql_row(s, st) == 0) {
        n = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return n;
}

int64_t
br_store_inbox_oldest(struct br_store *s)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT received_at FROM inbox WHERE processed_at IS NULL ORDER BY id LIMIT 1", "");
    int64_t at = 0;
    if (br_sql_row(s, st) == 0) {
        at = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return at;
}

void
br_inbox_row_dispose(struct br_inbox_row *r)
{
    free(r->channel);
    free(r->body);
    r->channel = r->body = NULL;
}
