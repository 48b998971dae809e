/*
 * store_tasks.c - what a conversation becomes in the tracker: its tasks
 * (one per generation), every chat message seen, the tracker comments
 * seen, and the replies relayed into the chat (to know their echo).
 */
#include "store.h"
#include "store_sql.h"

#include <stdlib.h>
#include <string.h>

/* ---- tasks ---- */

void
br_task_dispose(struct br_task *t)
{
    free(t->task_id);
    free(t->source_key);
    t->task_id = NULL;
    t->source_key = NULL;
}

int
br_store_task_set_key(struct br_store *s, int64_t conv_id, int gen, const char *key)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE tasks SET source_key=? WHERE conv_id=? AND gen=?", "tin", key,
                                      conv_id, gen));
}

int
br_store_task_create(struct br_store *s, int64_t conv_id, int gen)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT OR IGNORE INTO tasks(conv_id, gen, state, created_at) VALUES(?,?,0,?)",
                                      "ini", conv_id, gen, br_now_ms()));
}

static int
task_row(struct br_store *s, sqlite3_stmt *st, struct br_task *t)
{
    int rc = br_sql_row(s, st);
    if (rc)
        return rc;
    t->conv_id = sqlite3_column_int64(st, 0);
    t->gen = sqlite3_column_int(st, 1);
    t->task_id = br_sql_col_str(st, 2);
    t->state = sqlite3_column_int(st, 3);
    t->source_key = br_sql_col_str(st, 4);
    sqlite3_reset(st);
    return 0;
}

int
br_store_task_get(struct br_store *s, int64_t conv_id, int gen, struct br_task *out)
{
    return task_row(s, br_sql_bind(s, "SELECT conv_id, gen, task_id, state, source_key FROM tasks "
                                      "WHERE conv_id=? AND gen=?", "in", conv_id, gen), out);
}

int
br_store_task_by_tracker_id(struct br_store *s, const char *task_id, struct br_task *out)
{
    return task_row(s, br_sql_bind(s, "SELECT conv_id, gen, task_id, state, source_key FROM tasks WHERE task_id=? "
                                      "ORDER BY created_at DESC LIMIT 1", "t", task_id), out);
}

int
br_store_task_set(struct br_store *s, int64_t conv_id, int gen, const char *task_id, int state)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE tasks SET task_id=coalesce(?, task_id), state=?, "
                                         "closed_at=CASE WHEN ?=3 THEN coalesce(closed_at, ?) ELSE NULL END "
                                         "WHERE conv_id=? AND gen=?",
                                      "tnniin", task_id, state, state, br_now_ms(), conv_id, gen));
}

/*
 * Both through indexes: tasks_open holds the open tasks alone, and the
 * timeline is read from active_since on (activity_at), newest first, up
 * to the first row of a conversation whose task is open.  CROSS JOIN
 * keeps that order: the last hour's rows, however many tasks there are.
 */
int
br_store_tasks_open(struct br_store *s, int64_t active_since, bool *open, bool *active)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT 1 FROM tasks WHERE state=1 LIMIT 1", "");
    int rc = br_sql_row(s, st);

    *open = *active = false;
    sqlite3_reset(st);
    if (rc == BR_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    *open = true;
    st = br_sql_bind(s, "SELECT 1 FROM activity a CROSS JOIN tasks t "
                        "WHERE a.at>=? AND a.type IN ('message', 'reply', 'webhook') "
                        "AND t.conv_id=a.conv_id AND t.state=1 ORDER BY a.at DESC LIMIT 1",
                     "i", active_since);
    rc = br_sql_row(s, st);
    sqlite3_reset(st);
    if (rc == BR_ENOTFOUND)
        return 0;
    if (rc == 0)
        *active = true;
    return rc;
}

/* ---- messages ---- */

void
br_msg_dispose(struct br_msg *m)
{
    free(m->key);
    free(m->type);
    free(m->agent_id);
    free(m->text);
    memset(m, 0, sizeof(*m));
}

int
br_store_msg_insert(struct br_store *s, int64_t conv_id, int gen, const char *key, const char *type,
                    const char *agent_id, const char *text, int64_t created_at, int state, bool *is_new,
                    int64_t *id)
{
    sqlite3_stmt *st;

    if (br_sql_done(s, br_sql_bind(s, "INSERT INTO messages(conv_id, gen, key, type, agent_id, text, created_at, "
                                      "state) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(conv_id, key) DO NOTHING",
                                   "inttttin", conv_id, gen, key, type, agent_id, text, created_at, state)))
        return BR_EIO;
    *is_new = sqlite3_changes(s->db) > 0;
    if (*is_new) {
        *id = sqlite3_last_insert_rowid(s->db);
        return 0;
    }
    st = br_sql_bind(s, "SELECT id FROM messages WHERE conv_id=? AND key=?", "it", conv_id, key);
    if (br_sql_row(s, st))
        return BR_EIO;
    *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

#define MSG_COLS "id, conv_id, gen, key, type, agent_id, text, created_at, state"

static void
msg_fill(sqlite3_stmt *st, struct br_msg *m)
{
    m->id = sqlite3_column_int64(st, 0);
    m->conv_id = sqlite3_column_int64(st, 1);
    m->gen = sqlite3_column_int(st, 2);
    m->key = br_sql_col_str(st, 3);
    m->type = br_sql_col_str(st, 4);
    m->agent_id = br_sql_col_str(st, 5);
    m->text = br_sql_col_str(st, 6);
    m->created_at = sqlite3_column_int64(st, 7);
    m->state = sqlite3_column_int(st, 8);
}

int
br_store_msg_get(struct br_store *s, int64_t id, struct br_msg *out)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT " MSG_COLS " FROM messages WHERE id=?", "i", id);
    int rc = br_sql_row(s, st);
    if (rc)
        return rc;
    msg_fill(st, out);
    sqlite3_reset(st);
    return 0;
}

int
br_store_msg_set_gen(struct br_store *s, int64_t id, int gen)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE messages SET gen=? WHERE id=?", "ni", gen, id));
}

int
br_store_msg_move_pending(struct br_store *s, int64_t conv_id, int from_gen, int to_gen)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE messages SET gen=? WHERE conv_id=? AND gen=? AND state=0", "nin",
                                      to_gen, conv_id, from_gen));
}

int
br_store_msg_skip_pending(struct br_store *s, int64_t conv_id, int gen, int *n)
{
    int rc = br_sql_done(s, br_sql_bind(s, "UPDATE messages SET state=2, gen=0 WHERE conv_id=? AND gen=? AND state=0", "in",
                                        conv_id, gen));
    *n = rc ? 0 : sqlite3_changes(s->db);
    return rc;
}

int
br_store_msg_set_state(struct br_store *s, int64_t id, int state, const char *comment_id)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE messages SET state=?, comment_id=coalesce(?, comment_id) WHERE id=?",
                                      "nti", state, comment_id, id));
}

/* Hands st's rows to cb until it says stop or they end. */
static int
msg_walk(struct br_store *s, sqlite3_stmt *st, br_msg_cb cb, void *arg)
{
    int rc = SQLITE_DONE;
    bool more = true;

    while (more && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct br_msg m;
        msg_fill(st, &m);
        more = cb(arg, &m);
        br_msg_dispose(&m);
    }
    sqlite3_reset(st);
    if (more && rc != SQLITE_DONE) {
        br_sql_failed(s, rc, sqlite3_errmsg(s->db));
        return BR_EIO;
    }
    return 0;
}

/* Over messages_gen: the generation's rows in id order, however long the chat. */
int
br_store_msg_each(struct br_store *s, int64_t conv_id, int gen, br_msg_cb cb, void *arg)
{
    return msg_walk(s, br_sql_bind(s, "SELECT " MSG_COLS " FROM messages WHERE conv_id=? AND gen=? ORDER BY id", "in",
                                   conv_id, gen), cb, arg);
}

int
br_store_msg_pending_from(struct br_store *s, int64_t conv_id, int gen, int64_t first, br_msg_cb cb, void *arg)
{
    return msg_walk(s, br_sql_bind(s, "SELECT " MSG_COLS " FROM messages WHERE conv_id=? AND gen=? AND id>=? "
                                      "AND state=0 ORDER BY id", "ini", conv_id, gen, first), cb, arg);
}

/* ---- tracker comments ---- */

int
br_store_comment_mark(struct br_store *s, const char *task_id, const char *comment_id, int origin, bool *is_new)
{
    if (br_sql_done(s, br_sql_bind(s, "INSERT INTO tracker_comments(task_id, comment_id, origin, seen_at) "
                                      "VALUES(?,?,?,?) ON CONFLICT DO NOTHING",
                                   "ttni", task_id, comment_id, origin, br_now_ms())))
        return BR_EIO;
    *is_new = sqlite3_changes(s->db) > 0;
    return 0;
}

int
br_store_comment_read_back(struct br_store *s, const char *task_id, const char *comment_id)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO tracker_comments(task_id, comment_id, origin, seen_at) "
                                         "VALUES(?,?,4,?) ON CONFLICT(task_id, comment_id) DO UPDATE SET origin=4 "
                                         "WHERE origin=1",
                                      "tti", task_id, comment_id, br_now_ms()))
               ? BR_EIO : 0;
}

/* Whether one row of sql (bound to task_id, comment_id) is there. */
static bool
comment_row(struct br_store *s, const char *sql, const char *task_id, const char *comment_id)
{
    sqlite3_stmt *st = br_sql_bind(s, sql, "tt", task_id, comment_id);
    bool found = br_sql_row(s, st) == 0;
    if (found)
        sqlite3_reset(st);
    return found;
}

bool
br_store_comment_seen(struct br_store *s, const char *task_id, const char *comment_id)
{
    return comment_row(s, "SELECT 1 FROM tracker_comments WHERE task_id=? AND comment_id=?", task_id, comment_id);
}

bool
br_store_comment_taken(struct br_store *s, const char *task_id, const char *comment_id)
{
    return comment_row(s, "SELECT 1 FROM tracker_comments WHERE task_id=? AND comment_id=? AND origin<>1", task_id,
                       comment_id);
}

/* ---- relays ---- */

int
br_store_relay_add(struct br_store *s, int64_t conv_id, const char *agent_id, const char *text)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO relays(conv_id, agent_id, text, created_at) VALUES(?,?,?,?)",
                                      "itti", conv_id, agent_id, text, br_now_ms()));
}

int
br_store_relay_consume(struct br_store *s, int64_t conv_id, const char *agent_id, const char *text, bool *found)
{
    if (br_sql_done(s, br_sql_bind(s, "UPDATE relays SET echoed=1 WHERE id=(SELECT id FROM relays "
                                      "WHERE conv_id=? AND echoed=0 AND agent_id=? AND text=? ORDER BY id LIMIT 1)",
                                   "itt", conv_id, agent_id, text)))
        return BR_EIO;
    *found = sqlite3_changes(s->db) > 0;
    return 0;
}

int
br_store_relay_consume_email(struct br_store *s, int64_t conv_id, const char *email, const char *text, bool *found)
{
    char *agent = email ? br_asprintf("email:%s", email) : NULL;
    int rc = br_sql_done(s, br_sql_bind(s, "UPDATE relays SET echoed=1 WHERE id=(SELECT id FROM relays "
                                           "WHERE conv_id=? AND echoed=0 "
                                           "AND (agent_id=? OR (? IS NULL AND agent_id LIKE 'email:%')) AND text=? "
                                           "ORDER BY id LIMIT 1)",
                                        "ittt", conv_id, agent, agent, text));
    free(agent);
    if (rc)
        return BR_EIO;
    *found = sqlite3_changes(s->db) > 0;
    return 0;
}
