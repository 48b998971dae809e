/*
 * test_store.c - the SQLite store on a temporary file: inbox, conversations,
 * tasks, messages, tracker comments, relays and the job outbox with its
 * lane ordering, that everything (the instance id included) survives
 * closing and reopening the file, and how the store goes through writes
 * that fail (a file size limit stands in for a full disk).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "bridge/activity.h"
#include "bridge/store.h"
#include "bridge/unrecorded.h"
#include "support/temp_store.h"
#include "support/limit_files.h"

#include <sqlite3.h>

struct fx {
    char dir[64];
    char *path;
    struct br_store *s;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->path = temp_store_open(f->dir, "store", &f->s);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    temp_store_close(f->dir, f->path, f->s);
    free(f);
    return 0;
}

static void
reopen(struct fx *f)
{
    br_store_free(f->s);
    f->s = NULL;
    assert_int_equal(br_store_open(&f->s, f->path), 0);
}

/* ---- basics ---------------------------------------------------------------- */

static void
test_open_ping_instance_id(void **state)
{
    struct fx *f = *state;
    const char *id = br_store_instance_id(f->s);
    char *saved;

    /* A version-4 UUID in its usual text form. */
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[8], '-');
    assert_int_equal(id[13], '-');
    assert_int_equal(id[14], '4');
    assert_int_equal(id[18], '-');
    assert_non_null(strchr("89ab", id[19]));
    assert_int_equal(id[23], '-');
    assert_int_equal(br_store_ping(f->s), 0);

    saved = br_strdup(id);
    reopen(f);
    assert_string_equal(br_store_instance_id(f->s), saved);
    free(saved);
}

static int
user_version(const char *path, const char *sql_before)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int v;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sql_before)
        assert_int_equal(sqlite3_exec(db, sql_before, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT user_version FROM pragma_user_version) * 10 + "
                                            "(SELECT count(*) FROM sqlite_master WHERE name='conv_clients_conv')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A store of schema version 1 (the first release) is upgraded in place when opened. */
static void
test_schema_upgrade(void **state)
{
    struct fx *f = *state;
    int64_t id;

    assert_int_equal(br_store_inbox_add(f->s, 1, "shop", "{}", 2, &id), 0);
    br_store_free(f->s);
    f->s = NULL;
    /* The current version, index present; then made to look like version 1. */
    assert_int_equal(user_version(f->path, NULL), 111);
    assert_int_equal(user_version(f->path, "DROP INDEX conv_clients_conv; DROP INDEX inbox_pending_kind; "
                                           "DROP TABLE employee_users; DROP TABLE chatra_agents; "
                                           "DROP TRIGGER jobs_activity; DROP TABLE activity; "
                                           "DROP TABLE crm_cache; ALTER TABLE conversations DROP COLUMN crm_state; "
                                           "ALTER TABLE conversations DROP COLUMN crm_card; "
                                           "ALTER TABLE conversations DROP COLUMN crm_shown; "
                                           "DROP TABLE tracker_usage; DROP INDEX tasks_open; DROP INDEX jobs_urgent; "
                                           "DROP TABLE tracker_usage_hours; DROP INDEX messages_gen; "
                                           "PRAGMA user_version=1;"),
                     10);
    reopen(f);
    assert_int_equal(user_version(f->path, NULL), 111);
    assert_int_equal(br_store_inbox_pending(f->s), 1);
    /* A store newer than this build is refused, untouched. */
    br_store_free(f->s);
    f->s = NULL;
    assert_int_equal(user_version(f->path, "PRAGMA user_version=12;"), 121);
    assert_int_not_equal(br_store_open(&f->s, f->path), 0);
    assert_null(f->s);
    assert_int_equal(user_version(f->path, "PRAGMA user_version=11;"), 111);
    reopen(f);
}

/* The tracker's webhooks are applied before chat events that wait; each kind keeps its order. */
static void
test_inbox_tracker_first(void **state)
{
    struct fx *f = *state;
    struct br_inbox_row r;
    static const int kinds[] = {1, 1, 2, 1, 2};
    static const int64_t want[] = {3, 5, 1, 2, 4};
    int64_t id;

    for (size_t i = 0; i < 5; i++)
        assert_int_equal(br_store_inbox_add(f->s, kinds[i], "shop", "{}", 2, &id), 0);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(br_store_inbox_next(f->s, &r), 0);
        assert_int_equal(r.id, want[i]);
        assert_int_equal(br_store_inbox_done(f->s, r.id), 0);
        br_inbox_row_dispose(&r);
    }
    assert_int_equal(br_store_inbox_next(f->s, &r), BR_ENOTFOUND);
}

static void
test_open_fails_on_bad_path(void **state)
{
    struct fx *f = *state;
    struct br_store *s = (struct br_store *)1;
    char *bad = br_asprintf("%s/no/such/dir/x.db", f->dir);

    assert_int_equal(br_store_open(&s, bad), BR_EIO);
    assert_null(s);
    free(bad);
    br_store_free(NULL);
}

static void
test_transactions(void **state)
{
    struct fx *f = *state;

    assert_int_equal(br_store_begin(f->s), 0);
    assert_int_equal(br_store_inbox_add(f->s, BR_INBOX_CHATRA, "shop", "{}", 2, NULL), 0);
    br_store_rollback(f->s);
    assert_int_equal(br_store_inbox_pending(f->s), 0);

    assert_int_equal(br_store_begin(f->s), 0);
    assert_int_equal(br_store_inbox_add(f->s, BR_INBOX_CHATRA, "shop", "{}", 2, NULL), 0);
    assert_int_equal(br_store_commit(f->s), 0);
    assert_int_equal(br_store_inbox_pending(f->s), 1);
    br_store_rollback(f->s); /* outside a transaction: nothing happens */
    assert_int_equal(br_store_inbox_pending(f->s), 1);
}

/* ---- inbox ------------------------------------------------------------------ */

static void
test_inbox(void **state)
{
    struct fx *f = *state;
    struct br_inbox_row r = {0};
    int64_t id1 = 0, id2 = 0;

    assert_int_equal(br_store_inbox_pending(f->s), 0);
    assert_int_equal(br_store_inbox_next(f->s, &r), BR_ENOTFOUND);

    /* Only len bytes are stored. */
    assert_int_equal(br_store_inbox_add(f->s, BR_INBOX_CHATRA, "shop", "{\"a\":1}TRAILING", 7, &id1), 0);
    assert_int_equal(br_store_inbox_add(f->s, BR_INBOX_TRACKER, "", "{\"task\":\"5\"}", 12, &id2), 0);
    assert_true(id1 > 0);
    assert_true(id2 > id1);
    assert_int_equal(br_store_inbox_pending(f->s), 2);

    /* The tracker's row first (see test_inbox_tracker_first). */
    assert_int_equal(br_store_inbox_next(f->s, &r), 0);
    assert_int_equal(r.id, id2);
    assert_int_equal(r.kind, BR_INBOX_TRACKER);
    assert_string_equal(r.channel, "");
    assert_string_equal(r.body, "{\"task\":\"5\"}");
    br_inbox_row_dispose(&r);
    assert_null(r.channel);
    assert_null(r.body);

    /* next does not consume: the same row comes back until it is done. */
    assert_int_equal(br_store_inbox_next(f->s, &r), 0);
    assert_int_equal(r.id, id2);
    br_inbox_row_dispose(&r);

    assert_int_equal(br_store_inbox_done(f->s, id2), 0);
    assert_int_equal(br_store_inbox_pending(f->s), 1);
    assert_int_equal(br_store_inbox_next(f->s, &r), 0);
    assert_int_equal(r.id, id1);
    assert_int_equal(r.kind, BR_INBOX_CHATRA);
    assert_string_equal(r.channel, "shop");
    assert_string_equal(r.body, "{\"a\":1}");
    br_inbox_row_dispose(&r);

    /* Survives a restart. */
    reopen(f);
    assert_int_equal(br_store_inbox_pending(f->s), 1);
    assert_int_equal(br_store_inbox_next(f->s, &r), 0);
    assert_int_equal(r.id, id1);
    br_inbox_row_dispose(&r);
    assert_int_equal(br_store_inbox_done(f->s, id1), 0);
    assert_int_equal(br_store_inbox_pending(f->s), 0);
    assert_int_equal(br_store_inbox_next(f->s, &r), BR_ENOTFOUND);
}

/* ---- conversations ------------------------------------------------------------ */

static void
test_conversations(void **state)
{
    struct fx *f = *state;
    struct br_conv c = {0};
    int64_t id = 0, other = 0;

    assert_int_equal(br_store_conv_by_client(f->s, "shop", "client-1", &c), BR_ENOTFOUND);
    assert_int_equal(br_store_conv_create(f->s, "shop", "client-1", &id), 0);
    assert_true(id > 0);

    assert_int_equal(br_store_conv_by_client(f->s, "shop", "client-1", &c), 0);
    assert_int_equal(c.id, id);
    assert_string_equal(c.channel, "shop");
    assert_string_equal(c.client_id, "client-1");
    assert_null(c.chat_id);
    assert_null(c.name);
    assert_null(c.email);
    assert_null(c.phone);
    assert_null(c.visitor_json);
    assert_null(c.contact_id);
    assert_int_equal(c.gen, 0);
    br_conv_dispose(&c);
    assert_null(c.channel);

    /* Client ids are per channel. */
    assert_int_equal(br_store_conv_by_client(f->s, "support", "client-1", &c), BR_ENOTFOUND);

    assert_int_equal(br_store_conv_update_visitor(f->s, id, NULL, "chat-1", "Maria", "maria@example.org", "+34 600",
                                                  "{\"id\":\"client-1\"}"),
                     0);
    /* NULL keeps what is known; a value replaces it. */
    assert_int_equal(br_store_conv_update_visitor(f->s, id, NULL, NULL, NULL, NULL, "+34 601", NULL), 0);
    assert_int_equal(br_store_conv_get(f->s, id, &c), 0);
    assert_string_equal(c.client_id, "client-1");
    assert_string_equal(c.chat_id, "chat-1");
    assert_string_equal(c.name, "Maria");
    assert_string_equal(c.email, "maria@example.org");
    assert_string_equal(c.phone, "+34 601");
    assert_string_equal(c.visitor_json, "{\"id\":\"client-1\"}");
    br_conv_dispose(&c);

    /* The identity map: the person's e-mail leads to the conversation of that person in a channel. */
    {
        int64_t person, found;
        bool verified = true;
        assert_int_equal(br_store_conv_get(f->s, id, &c), 0);
        person = c.person_id;
        br_conv_dispose(&c);
        assert_int_equal(br_store_person_add_email(f->s, person, "maria@example.org", false), 0);
        assert_int_equal(br_store_person_of_email(f->s, "maria@example.org", &found, &verified), 0);
        assert_int_equal(found, person);
        assert_false(verified);
        /* A verified sighting upgrades it; another person cannot take it over. */
        assert_int_equal(br_store_person_add_email(f->s, person, "maria@example.org", true), 0);
        assert_int_equal(br_store_person_add_email(f->s, person + 100, "maria@example.org", false), 0);
        assert_int_equal(br_store_person_of_email(f->s, "maria@example.org", &found, &verified), 0);
        assert_int_equal(found, person);
        assert_true(verified);
        assert_int_equal(br_store_person_of_email(f->s, "other@example.org", &found, NULL), BR_ENOTFOUND);
        assert_int_equal(br_store_conv_of_person(f->s, "shop", person, &c), 0);
        assert_int_equal(c.id, id);
        br_conv_dispose(&c);
        assert_int_equal(br_store_conv_of_person(f->s, "support", person, &c), BR_ENOTFOUND);
    }

    /* The same person from a second device. */
    assert_int_equal(br_store_conv_add_client(f->s, id, "shop", "client-2"), 0);
    assert_int_equal(br_store_conv_update_visitor(f->s, id, "client-2", NULL, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(br_store_conv_by_client(f->s, "shop", "client-2", &c), 0);
    assert_int_equal(c.id, id);
    assert_string_equal(c.client_id, "client-2");
    assert_string_equal(c.name, "Maria");
    br_conv_dispose(&c);
    assert_int_equal(br_store_conv_by_client(f->s, "shop", "client-1", &c), 0);
    assert_int_equal(c.id, id);
    br_conv_dispose(&c);

    /* Moving a client id to another conversation re-points it. */
    assert_int_equal(br_store_conv_create(f->s, "shop", "client-3", &other), 0);
    assert_true(other != id);
    assert_int_equal(br_store_conv_add_client(f->s, other, "shop", "client-1"), 0);
    assert_int_equal(br_store_conv_by_client(f->s, "shop", "client-1", &c), 0);
    assert_int_equal(c.id, other);
    br_conv_dispose(&c);

    assert_int_equal(br_store_conv_set_contact(f->s, id, "contact:77", true), 0);
    assert_int_equal(br_store_conv_set_gen(f->s, id, 2), 0);
    reopen(f);
    assert_int_equal(br_store_conv_get(f->s, id, &c), 0);
    assert_string_equal(c.contact_id, "contact:77");
    assert_int_equal(c.gen, 2);
    assert_string_equal(c.email, "maria@example.org");
    br_conv_dispose(&c);
    assert_int_equal(br_store_conv_get(f->s, id + 100, &c), BR_ENOTFOUND);
}

/* ---- tasks ------------------------------------------------------------------ */

static void
test_tasks(void **state)
{
    struct fx *f = *state;
    struct br_task t = {0};
    int64_t conv = 0;

    assert_int_equal(br_store_conv_create(f->s, "shop", "c", &conv), 0);
    assert_int_equal(br_store_task_get(f->s, conv, 1, &t), BR_ENOTFOUND);
    assert_int_equal(br_store_task_create(f->s, conv, 1), 0);
    assert_int_equal(br_store_task_get(f->s, conv, 1, &t), 0);
    assert_int_equal(t.conv_id, conv);
    assert_int_equal(t.gen, 1);
    assert_null(t.task_id);
    assert_int_equal(t.state, BR_TASK_PENDING);
    br_task_dispose(&t);

    assert_int_equal(br_store_task_set(f->s, conv, 1, "1042", BR_TASK_OPEN), 0);
    /* Creating again is harmless and does not reset the row. */
    assert_int_equal(br_store_task_create(f->s, conv, 1), 0);
    assert_int_equal(br_store_task_get(f->s, conv, 1, &t), 0);
    assert_string_equal(t.task_id, "1042");
    assert_int_equal(t.state, BR_TASK_OPEN);
    br_task_dispose(&t);
    assert_null(t.task_id);

    /* A NULL task id keeps the known one. */
    assert_int_equal(br_store_task_set(f->s, conv, 1, NULL, BR_TASK_CLOSED), 0);
    assert_int_equal(br_store_task_by_tracker_id(f->s, "1042", &t), 0);
    assert_int_equal(t.conv_id, conv);
    assert_int_equal(t.gen, 1);
    assert_string_equal(t.task_id, "1042");
    assert_int_equal(t.state, BR_TASK_CLOSED);
    br_task_dispose(&t);

    assert_int_equal(br_store_task_create(f->s, conv, 2), 0);
    assert_int_equal(br_store_task_set(f->s, conv, 2, "1043", BR_TASK_OPEN), 0);
    assert_int_equal(br_store_task_by_tracker_id(f->s, "1043", &t), 0);
    assert_int_equal(t.gen, 2);
    br_task_dispose(&t);
    assert_int_equal(br_store_task_by_tracker_id(f->s, "9999", &t), BR_ENOTFOUND);
}

/* ---- messages --------------------------------------------------------------- */

struct walk {
    int n;
    int stop_at;     /* the callback says stop after this many (0: never) */
    char keys[8][32];
    char texts[8][64];
    int states[8];
};

static bool
on_msg(void *arg, const struct br_msg *m)
{
    struct walk *w = arg;
    assert_true(w->n < 8);
    snprintf(w->keys[w->n], sizeof(w->keys[0]), "%s", m->key);
    snprintf(w->texts[w->n], sizeof(w->texts[0]), "%s", m->text);
    w->states[w->n] = m->state;
    w->n++;
    return w->n < w->stop_at || w->stop_at == 0;
}

/* For the poll: some task open, and one of those with a message, a reply or a webhook since a time. */
static void
test_tasks_open(void **state)
{
    struct fx *f = *state;
    int64_t a = 0, b = 0, now = br_now_ms();
    bool open = true, active = true;

    assert_int_equal(br_store_tasks_open(f->s, now - 1000, &open, &active), 0);
    assert_false(open);
    assert_false(active);
    assert_int_equal(br_store_conv_create(f->s, "shop", "a", &a), 0);
    assert_int_equal(br_store_conv_create(f->s, "shop", "b", &b), 0);
    /* A pending task (not in the tracker yet) and a closing one are not open. */
    assert_int_equal(br_store_task_create(f->s, a, 1), 0);
    assert_int_equal(br_activity_add(f->s, a, "message", json_object()), 0);
    assert_int_equal(br_store_task_create(f->s, b, 1), 0);
    assert_int_equal(br_store_task_set(f->s, b, 1, "1043", BR_TASK_CLOSING), 0);
    assert_int_equal(br_store_tasks_open(f->s, now - 1000, &open, &active), 0);
    assert_false(open);
    assert_false(active);
    /* b's task open: its timeline has nothing that counts (a job's end, a merge). */
    assert_int_equal(br_store_task_set(f->s, b, 1, NULL, BR_TASK_OPEN), 0);
    assert_int_equal(br_activity_add(f->s, b, "job", json_object()), 0);
    assert_int_equal(br_activity_add(f->s, b, "merge", json_object()), 0);
    assert_int_equal(br_store_tasks_open(f->s, now - 1000, &open, &active), 0);
    assert_true(open);
    assert_false(active);
    /* a's message does not count for b; b's reply, webhook or message does, when recent enough. */
    for (int i = 0; i < 3; i++) {
        const char *type[] = {"reply", "webhook", "message"};
        assert_int_equal(br_store_begin(f->s), 0);
        assert_int_equal(br_activity_add(f->s, b, type[i], json_object()), 0);
        assert_int_equal(br_store_tasks_open(f->s, now - 1000, &open, &active), 0);
        assert_true(open);
        assert_true(active);
        assert_int_equal(br_store_tasks_open(f->s, br_now_ms() + 1000, &open, &active), 0);
        assert_true(open);
        assert_false(active);
        br_store_rollback(f->s);
    }
    /* Closed: nothing is open, however recent. */
    assert_int_equal(br_activity_add(f->s, b, "message", json_object()), 0);
    assert_int_equal(br_store_task_set(f->s, b, 1, NULL, BR_TASK_CLOSED), 0);
    assert_int_equal(br_store_tasks_open(f->s, now - 1000, &open, &active), 0);
    assert_false(open);
    assert_false(active);
}

static void
test_messages(void **state)
{
    struct fx *f = *state;
    struct br_msg m = {0};
    struct walk w = {0};
    bool is_new = false;
    int64_t conv = 0, conv2 = 0, a = 0, b = 0, c = 0, again = 0, other = 0;

    assert_int_equal(br_store_conv_create(f->s, "shop", "c1", &conv), 0);
    assert_int_equal(br_store_conv_create(f->s, "shop", "c2", &conv2), 0);

    assert_int_equal(br_store_msg_insert(f->s, conv, 1, "id:B", "client", NULL, "second", 2000, BR_MSG_PENDING,
                                         &is_new, &b),
                     0);
    assert_true(is_new);
    assert_int_equal(br_store_msg_insert(f->s, conv, 1, "id:A", "agent", "agent-1", "first", 1000, BR_MSG_PENDING,
                                         &is_new, &a),
                     0);
    assert_true(is_new);
    assert_true(a != b);

    /* The same key again: not new, the first row's id, nothing changed. */
    assert_int_equal(br_store_msg_insert(f->s, conv, 1, "id:B", "client", NULL, "changed", 3000, BR_MSG_SKIPPED,
                                         &is_new, &again),
                     0);
    assert_false(is_new);
    assert_int_equal(again, b);
    assert_int_equal(br_store_msg_get(f->s, b, &m), 0);
    assert_string_equal(m.text, "second");
    assert_int_equal(m.state, BR_MSG_PENDING);
    assert_int_equal(m.created_at, 2000);
    br_msg_dispose(&m);

    /* Keys are per conversation. */
    assert_int_equal(br_store_msg_insert(f->s, conv2, 1, "id:B", "client", NULL, "other conv", 2000, BR_MSG_PENDING,
                                         &is_new, &other),
                     0);
    assert_true(is_new);
    assert_true(other != b);

    assert_int_equal(br_store_msg_get(f->s, a, &m), 0);
    assert_int_equal(m.id, a);
    assert_int_equal(m.conv_id, conv);
    assert_int_equal(m.gen, 1);
    assert_string_equal(m.key, "id:A");
    assert_string_equal(m.type, "agent");
    assert_string_equal(m.agent_id, "agent-1");
    assert_string_equal(m.text, "first");
    assert_int_equal(m.created_at, 1000);
    assert_int_equal(m.state, BR_MSG_PENDING);
    br_msg_dispose(&m);
    assert_null(m.key);
    assert_int_equal(br_store_msg_get(f->s, other + 100, &m), BR_ENOTFOUND);

    assert_int_equal(br_store_msg_set_state(f->s, b, BR_MSG_MIRRORED, "comment-9"), 0);
    assert_int_equal(br_store_msg_set_state(f->s, b, BR_MSG_MIRRORED, NULL), 0);
    assert_int_equal(br_store_msg_get(f->s, b, &m), 0);
    assert_int_equal(m.state, BR_MSG_MIRRORED);
    br_msg_dispose(&m);

    assert_int_equal(br_store_msg_insert(f->s, conv, 1, "h:00000000000000ff", "client", NULL, "third", 500,
                                         BR_MSG_PENDING, &is_new, &c),
                     0);
    assert_true(is_new);

    /* Walk in insertion (id) order, whatever the created_at. */
    assert_int_equal(br_store_msg_each(f->s, conv, 1, on_msg, &w), 0);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.keys[0], "id:B");
    assert_string_equal(w.keys[1], "id:A");
    assert_string_equal(w.keys[2], "h:00000000000000ff");
    assert_string_equal(w.texts[0], "second");
    assert_int_equal(w.states[0], BR_MSG_MIRRORED);
    assert_int_equal(w.states[1], BR_MSG_PENDING);

    /* Moving a message to the next generation takes it out of this walk. */
    assert_int_equal(br_store_msg_set_gen(f->s, a, 2), 0);
    memset(&w, 0, sizeof(w));
    assert_int_equal(br_store_msg_each(f->s, conv, 1, on_msg, &w), 0);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.keys[0], "id:B");
    assert_string_equal(w.keys[1], "h:00000000000000ff");
    memset(&w, 0, sizeof(w));
    assert_int_equal(br_store_msg_each(f->s, conv, 2, on_msg, &w), 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.keys[0], "id:A");
    memset(&w, 0, sizeof(w));
    assert_int_equal(br_store_msg_each(f->s, conv, 3, on_msg, &w), 0);
    assert_int_equal(w.n, 0);

    /* Dedup still holds after a restart. */
    reopen(f);
    assert_int_equal(br_store_msg_insert(f->s, conv, 1, "id:A", "agent", "agent-1", "first", 1000, BR_MSG_PENDING,
                                         &is_new, &again),
                     0);
    assert_false(is_new);
    assert_int_equal(again, a);
}

/* The plan SQLite makes for sql on the store at path, its lines joined. */
static void
query_plan(const char *path, const char *sql, char *out, size_t size)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char *q = br_asprintf("EXPLAIN QUERY PLAN %s", sql);
    size_t len = 0;

    out[0] = '\0';
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW && len < size)
        len += (size_t)snprintf(out + len, size - len, "%s; ", (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(q);
}

/*
 * A comment's run in a long chat: the waiting messages from the job's own
 * on, in order, and the walk ends when the callback says so (a run is at
 * most 50 messages; the chat may have thousands).
 */
static void
test_msg_pending_from(void **state)
{
    struct fx *f = *state;
    struct walk w = {0};
    bool is_new;
    int64_t conv = 0, ids[300];
    char key[32], plan[512];

    assert_int_equal(br_store_conv_create(f->s, "shop", "c1", &conv), 0);
    assert_int_equal(br_store_begin(f->s), 0);
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "id:%03d", i);
        /* The first 200 went to the tracker already; 250 is skipped (an agent's, mirror off). */
        assert_int_equal(br_store_msg_insert(f->s, conv, 1, key, "client", NULL, key, 1000 + i,
                                             i < 200 ? BR_MSG_MIRRORED : i == 250 ? BR_MSG_SKIPPED : BR_MSG_PENDING,
                                             &is_new, &ids[i]),
                         0);
    }
    assert_int_equal(br_store_commit(f->s), 0);

    /* From the 248th on: 248, 249, 251..., the skipped one left out; stopped after 4. */
    w.stop_at = 4;
    assert_int_equal(br_store_msg_pending_from(f->s, conv, 1, ids[248], on_msg, &w), 0);
    assert_int_equal(w.n, 4);
    assert_string_equal(w.keys[0], "id:248");
    assert_string_equal(w.keys[1], "id:249");
    assert_string_equal(w.keys[2], "id:251");
    assert_string_equal(w.keys[3], "id:252");
    /* From a message already sent: the next waiting ones. */
    memset(&w, 0, sizeof(w));
    w.stop_at = 2;
    assert_int_equal(br_store_msg_pending_from(f->s, conv, 1, ids[150], on_msg, &w), 0);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.keys[0], "id:200");
    /* Another generation has none of them. */
    memset(&w, 0, sizeof(w));
    assert_int_equal(br_store_msg_pending_from(f->s, conv, 2, ids[0], on_msg, &w), 0);
    assert_int_equal(w.n, 0);
    /* The whole walk stops too when told. */
    memset(&w, 0, sizeof(w));
    w.stop_at = 3;
    assert_int_equal(br_store_msg_each(f->s, conv, 1, on_msg, &w), 0);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.keys[2], "id:002");

    /* Both walks seek into the chat's messages by the index, never a scan of them. */
    query_plan(f->path, "SELECT text FROM messages WHERE conv_id=1 AND gen=1 AND id>=5 AND state=0 ORDER BY id", plan,
               sizeof(plan));
    assert_non_null(strstr(plan, "USING INDEX messages_gen (conv_id=? AND gen=? AND rowid>?)"));
    assert_null(strstr(plan, "TEMP B-TREE"));
    query_plan(f->path, "SELECT text FROM messages WHERE conv_id=1 AND gen=1 ORDER BY id", plan, sizeof(plan));
    assert_non_null(strstr(plan, "USING INDEX messages_gen (conv_id=? AND gen=?)"));
    assert_null(strstr(plan, "TEMP B-TREE"));
}

/* ---- tracker comments and relays --------------------------------------------- */

static void
test_comment_mark(void **state)
{
    struct fx *f = *state;
    bool is_new = false;

    assert_int_equal(br_store_comment_mark(f->s, "1042", "c1", BR_COMMENT_BRIDGE, &is_new), 0);
    assert_true(is_new);
    assert_int_equal(br_store_comment_mark(f->s, "1042", "c1", BR_COMMENT_RELAYED, &is_new), 0);
    assert_false(is_new);
    assert_int_equal(br_store_comment_mark(f->s, "1042", "c2", BR_COMMENT_RELAYED, &is_new), 0);
    assert_true(is_new);
    /* The same comment id in another task is another comment. */
    assert_int_equal(br_store_comment_mark(f->s, "1043", "c1", BR_COMMENT_IGNORED, &is_new), 0);
    assert_true(is_new);
    reopen(f);
    assert_int_equal(br_store_comment_mark(f->s, "1043", "c1", BR_COMMENT_IGNORED, &is_new), 0);
    assert_false(is_new);
}

/* Taken: listed by a read of the task; the bridge's own comment is only when read back. */
static void
test_comment_taken(void **state)
{
    struct fx *f = *state;
    bool is_new = false;

    assert_int_equal(br_store_comment_mark(f->s, "1042", "b1", BR_COMMENT_BRIDGE, &is_new), 0);
    assert_true(br_store_comment_seen(f->s, "1042", "b1"));
    assert_false(br_store_comment_taken(f->s, "1042", "b1"));
    assert_int_equal(br_store_comment_read_back(f->s, "1042", "b1"), 0);
    assert_true(br_store_comment_taken(f->s, "1042", "b1"));
    /* Read back, it stays so; one the store did not know yet is taken at once. */
    assert_int_equal(br_store_comment_read_back(f->s, "1042", "b1"), 0);
    assert_int_equal(br_store_comment_read_back(f->s, "1042", "b2"), 0);
    assert_true(br_store_comment_taken(f->s, "1042", "b2"));
    assert_false(br_store_comment_taken(f->s, "1043", "b2"));
    /* A relayed or ignored comment was marked by a read. */
    assert_int_equal(br_store_comment_mark(f->s, "1042", "c1", BR_COMMENT_RELAYED, &is_new), 0);
    assert_int_equal(br_store_comment_mark(f->s, "1042", "c2", BR_COMMENT_IGNORED, &is_new), 0);
    assert_true(br_store_comment_taken(f->s, "1042", "c1"));
    assert_true(br_store_comment_taken(f->s, "1042", "c2"));
    reopen(f);
    assert_true(br_store_comment_taken(f->s, "1042", "b1"));
    assert_false(br_store_comment_taken(f->s, "1042", "nope"));
}

static void
test_relays(void **state)
{
    struct fx *f = *state;
    bool found = true;

    assert_int_equal(br_store_relay_consume(f->s, 1, "agent-1", "Hello", &found), 0);
    assert_false(found);

    assert_int_equal(br_store_relay_add(f->s, 1, "agent-1", "Hello"), 0);
    assert_int_equal(br_store_relay_add(f->s, 1, "agent-1", "Hello"), 0);
    assert_int_equal(br_store_relay_add(f->s, 1, "agent-2", "Bye"), 0);

    /* The text must match exactly, and so must the agent and the conversation. */
    assert_int_equal(br_store_relay_consume(f->s, 1, "agent-1", "hello", &found), 0);
    assert_false(found);
    assert_int_equal(br_store_relay_consume(f->s, 1, "agent-1", "Hello ", &found), 0);
    assert_false(found);
    assert_int_equal(br_store_relay_consume(f->s, 1, "agent-2", "Hello", &found), 0);
    assert_false(found);
    assert_int_equal(br_store_relay_consume(f->s, 2, "agent-1", "Hello", &found), 0);
    assert_false(found);

    /* Two relays of the same text are two echoes, consumed one at a time. */
    assert_int_equal(br_store_relay_consume(f->s, 1, "agent-1", "Hello", &found), 0);
    assert_true(found);
    assert_int_equal(br_store_relay_consume(f->s, 1, "agent-1", "Hello", &found), 0);
    assert_true(found);
    assert_int_equal(br_store_relay_consume(f->s, 1, "agent-1", "Hello", &found), 0);
    assert_false(found);

    assert_int_equal(br_store_relay_consume(f->s, 1, "agent-2", "Bye", &found), 0);
    assert_true(found);
    assert_int_equal(br_store_relay_consume(f->s, 1, "agent-2", "Bye", &found), 0);
    assert_false(found);
}

/* A reply sent with an agent e-mail comes back under an agent id the bridge never saw. */
static void
test_relays_by_email(void **state)
{
    struct fx *f = *state;
    bool found = true;

    assert_int_equal(br_store_relay_add(f->s, 1, "email:anna@example.com", "Hello"), 0);
    assert_int_equal(br_store_relay_add(f->s, 1, "email:boris@example.com", "Hello"), 0);
    assert_int_equal(br_store_relay_add(f->s, 1, "agent-1", "By id"), 0);
    /* An e-mail relay is not an id relay, nor an id relay an e-mail one. */
    assert_int_equal(br_store_relay_consume(f->s, 1, "anna@example.com", "Hello", &found), 0);
    assert_false(found);
    assert_int_equal(br_store_relay_consume_email(f->s, 1, NULL, "By id", &found), 0);
    assert_false(found);
    /* By the agent's e-mail when the webhook told it ... */
    assert_int_equal(br_store_relay_consume_email(f->s, 1, "carl@example.com", "Hello", &found), 0);
    assert_false(found);
    assert_int_equal(br_store_relay_consume_email(f->s, 1, "boris@example.com", "Hello", &found), 0);
    assert_true(found);
    assert_int_equal(br_store_relay_consume_email(f->s, 1, "boris@example.com", "Hello", &found), 0);
    assert_false(found);
    /* ... else any e-mail relay of that text in that conversation. */
    assert_int_equal(br_store_relay_consume_email(f->s, 2, NULL, "Hello", &found), 0);
    assert_false(found);
    assert_int_equal(br_store_relay_consume_email(f->s, 1, NULL, "Hello", &found), 0);
    assert_true(found);
    assert_int_equal(br_store_relay_consume_email(f->s, 1, NULL, "Hello", &found), 0);
    assert_false(found);
}

/* Employees known by e-mail: the tracker user found (or nobody), and Chatra agents' e-mails. */
static void
test_employee_users_and_agents(void **state)
{
    struct fx *f = *state;
    char *user = (char *)"x";
    char *email = (char *)"x";
    int64_t at = -1, before = br_now_ms();

    assert_int_equal(br_store_user_get(f->s, "planfix", "anna@example.com", &user, &at), BR_ENOTFOUND);
    assert_null(user);
    assert_int_equal(br_store_user_set(f->s, "planfix", "anna@example.com", "user:5"), 0);
    assert_int_equal(br_store_user_set(f->s, "planfix", "nobody@example.com", NULL), 0);
    reopen(f);
    assert_int_equal(br_store_user_get(f->s, "planfix", "anna@example.com", &user, &at), 0);
    assert_string_equal(user, "user:5");
    assert_true(at >= before);
    free(user);
    /* Another tracker has its own users. */
    assert_int_equal(br_store_user_get(f->s, "redmine", "anna@example.com", &user, &at), BR_ENOTFOUND);
    assert_int_equal(br_store_user_get(f->s, "planfix", "nobody@example.com", &user, &at), 0);
    assert_null(user);
    assert_int_equal(br_store_user_set(f->s, "planfix", "nobody@example.com", "user:9"), 0);
    assert_int_equal(br_store_user_get(f->s, "planfix", "nobody@example.com", &user, &at), 0);
    assert_string_equal(user, "user:9");
    free(user);

    assert_int_equal(br_store_agent_email(f->s, "shop", "agent-1", &email), BR_ENOTFOUND);
    assert_null(email);
    assert_int_equal(br_store_agent_set(f->s, "shop", "agent-1", "anna@example.com"), 0);
    assert_int_equal(br_store_agent_set(f->s, "shop", "agent-1", "anna.s@example.com"), 0);
    assert_int_equal(br_store_agent_email(f->s, "shop", "agent-1", &email), 0);
    assert_string_equal(email, "anna.s@example.com");
    free(email);
    assert_int_equal(br_store_agent_email(f->s, "support", "agent-1", &email), BR_ENOTFOUND);
}

/* ---- jobs ------------------------------------------------------------------- */

/* The ids of the ready jobs of an upstream, in the order returned. */
static size_t
ready_ids(struct fx *f, const char *upstream, int64_t now, int64_t *ids, size_t max)
{
    struct br_job jobs[16];
    size_t n = 99;

    assert_true(max <= 16);
    assert_int_equal(br_store_job_ready(f->s, upstream, now, jobs, max, &n), 0);
    assert_true(n <= max);
    for (size_t i = 0; i < n; i++) {
        ids[i] = jobs[i].id;
        br_job_dispose(&jobs[i]);
    }
    return n;
}

/* A reply relayed to a device's chat before its thread was merged is still recognised when it echoes. */
static void
test_relays_follow_a_merge(void **state)
{
    struct fx *f = *state;
    int64_t a, b, merge;
    bool found = true;

    assert_int_equal(br_store_conv_create(f->s, "shop", "laptop", &a), 0);
    assert_int_equal(br_store_conv_create(f->s, "shop", "phone", &b), 0);
    assert_int_equal(br_store_relay_add(f->s, b, "agent-1", "Yes, in stock"), 0);
    assert_int_equal(br_store_merge(f->s, a, b, "maria@example.org", false, &merge), 0);
    assert_int_equal(br_store_relay_consume(f->s, a, "agent-1", "Yes, in stock", &found), 0);
    assert_true(found);
}

static void
test_job_add_get(void **state)
{
    struct fx *f = *state;
    struct br_job j = {0};
    int64_t id = 0, before = br_now_ms();

    assert_int_equal(br_store_job_add(f->s, "tracker:1", "tracker", "task", 1, "{\"a\":1}", &id), 0);
    assert_true(id > 0);
    assert_int_equal(br_store_job_get(f->s, id, &j), 0);
    assert_int_equal(j.id, id);
    assert_string_equal(j.lane, "tracker:1");
    assert_string_equal(j.upstream, "tracker");
    assert_string_equal(j.kind, "task");
    assert_int_equal(j.conv_id, 1);
    assert_string_equal(j.payload, "{\"a\":1}");
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_int_equal(j.attempts, 0);
    assert_true(j.next_at >= before && j.next_at <= br_now_ms());
    assert_false(j.recover);
    br_job_dispose(&j);
    assert_null(j.lane);
    assert_int_equal(br_store_job_get(f->s, id + 1, &j), BR_ENOTFOUND);

    assert_int_equal(br_store_job_payload(f->s, id, "{\"a\":2}"), 0);
    assert_int_equal(br_store_job_get(f->s, id, &j), 0);
    assert_string_equal(j.payload, "{\"a\":2}");
    br_job_dispose(&j);

    assert_int_equal(br_store_job_count(f->s, BR_JOB_QUEUED), 1);
    assert_int_equal(br_store_job_count(f->s, BR_JOB_DONE), 0);
}

/* note_waiting: a key set in the payloads of a lane's waiting jobs of one kind, and no other's. */
static void
test_job_note_waiting(void **state)
{
    struct fx *f = *state;
    struct br_job j = {0};
    int64_t running, waiting, other_kind, other_lane;

    assert_int_equal(br_store_job_add(f->s, "t:1", "tracker", "update_contact", 1, "{}", &running), 0);
    assert_int_equal(br_store_job_add(f->s, "t:1", "tracker", "update_contact", 1, "{\"a\":1}", &waiting), 0);
    assert_int_equal(br_store_job_add(f->s, "t:1", "tracker", "comment", 1, "{}", &other_kind), 0);
    assert_int_equal(br_store_job_add(f->s, "t:2", "tracker", "update_contact", 2, "{}", &other_lane), 0);
    assert_int_equal(br_store_job_start(f->s, running), 0);

    assert_int_equal(br_store_job_note_waiting(f->s, "t:1", "update_contact", "sent",
                                               "{\"email\":\"m@example.org\",\"fields\":[]}"), 0);
    assert_int_equal(br_store_job_get(f->s, waiting, &j), 0);
    assert_string_equal(j.payload, "{\"a\":1,\"sent\":{\"email\":\"m@example.org\",\"fields\":[]}}");
    br_job_dispose(&j);
    for (int64_t id = running; id <= other_lane; id++) {
        if (id == waiting)
            continue;
        assert_int_equal(br_store_job_get(f->s, id, &j), 0);
        assert_string_equal(j.payload, "{}");
        br_job_dispose(&j);
    }
}

static void
test_job_lane_order(void **state)
{
    struct fx *f = *state;
    int64_t t1, c1, c2, other, chat, ids[16];
    int64_t now;

    assert_int_equal(br_store_job_add(f->s, "tracker:1", "tracker", "task", 1, "{}", &t1), 0);
    assert_int_equal(br_store_job_add(f->s, "tracker:1", "tracker", "comment", 1, "{}", &c1), 0);
    assert_int_equal(br_store_job_add(f->s, "tracker:1", "tracker", "comment", 1, "{}", &c2), 0);
    assert_int_equal(br_store_job_add(f->s, "tracker:2", "tracker", "comment", 2, "{}", &other), 0);
    assert_int_equal(br_store_job_add(f->s, "chatra:shop:1", "chatra:shop", "message", 1, "{}", &chat), 0);
    now = br_now_ms() + 1000; /* everything added so far is due */

    /* Only the head of each lane is ready, and only for its upstream. */
    assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 2);
    assert_int_equal(ids[0], t1);
    assert_int_equal(ids[1], other);
    assert_int_equal(ready_ids(f, "chatra:shop", now, ids, 16), 1);
    assert_int_equal(ids[0], chat);
    assert_int_equal(ready_ids(f, "chatra:other", now, ids, 16), 0);
    /* max is respected. */
    assert_int_equal(ready_ids(f, "tracker", now, ids, 1), 1);
    assert_int_equal(ids[0], t1);

    /* While the head is in flight the rest of its lane waits. */
    assert_int_equal(br_store_job_start(f->s, t1), 0);
    assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 1);
    assert_int_equal(ids[0], other);
    assert_int_equal(br_store_job_count(f->s, BR_JOB_SENDING), 1);

    /* Done: the next one of the lane is ready. */
    assert_int_equal(br_store_job_finish(f->s, t1, BR_JOB_DONE, 1, 0, false, NULL, "req", "resp"), 0);
    assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 2);
    assert_int_equal(ids[0], c1);
    assert_int_equal(ids[1], other);

    /* A dead comment does not hold up the comments after it. */
    assert_int_equal(br_store_job_start(f->s, c1), 0);
    assert_int_equal(br_store_job_finish(f->s, c1, BR_JOB_DEAD, 5, 0, false, "HTTP 400", NULL, NULL), 0);
    assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 2);
    assert_int_equal(ids[0], c2);
    assert_int_equal(ids[1], other);
    assert_int_equal(br_store_job_count(f->s, BR_JOB_DEAD), 1);
    assert_int_equal(br_store_job_count(f->s, BR_JOB_DONE), 1);
}

static void
test_job_dead_task_blocks(void **state)
{
    struct fx *f = *state;
    const char *kinds[] = {"task"};
    int64_t c_head, c_next, c_ids[4];

    /* A dead contact lookup does not hold the task back: it is made without a contact. */
    assert_int_equal(br_store_job_add(f->s, "tracker:9", "tracker", "contact", 9, "{}", &c_head), 0);
    assert_int_equal(br_store_job_add(f->s, "tracker:9", "tracker", "task", 9, "{}", &c_next), 0);
    assert_int_equal(br_store_job_finish(f->s, c_head, BR_JOB_DEAD, 3, 0, false, "HTTP 403", NULL, NULL), 0);
    assert_int_equal(ready_ids(f, "tracker", br_now_ms() + 1000, c_ids, 4), 1);
    assert_int_equal(c_ids[0], c_next);
    assert_int_equal(br_store_job_finish(f->s, c_next, BR_JOB_DONE, 1, 0, false, NULL, NULL, NULL), 0);

    for (size_t k = 0; k < BR_ARRAY_SIZE(kinds); k++) {
        int64_t head, next, ids[16];
        char lane[32];
        int64_t now;

        snprintf(lane, sizeof(lane), "tracker:%zu", k + 10);
        assert_int_equal(br_store_job_add(f->s, lane, "tracker", kinds[k], 10, "{}", &head), 0);
        assert_int_equal(br_store_job_add(f->s, lane, "tracker", "comment", 10, "{}", &next), 0);
        now = br_now_ms() + 1000;
        assert_int_equal(br_store_job_start(f->s, head), 0);
        assert_int_equal(br_store_job_finish(f->s, head, BR_JOB_DEAD, 3, 0, false, "HTTP 403", NULL, NULL), 0);
        /* A comment must never overtake the task it belongs to. */
        assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 0);
        /* Once the dead head is resolved (e.g. retried by an admin and done) the lane moves. */
        assert_int_equal(br_store_job_finish(f->s, head, BR_JOB_DONE, 4, 0, false, NULL, NULL, NULL), 0);
        assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 1);
        assert_int_equal(ids[0], next);
        assert_int_equal(br_store_job_finish(f->s, next, BR_JOB_DONE, 1, 0, false, NULL, NULL, NULL), 0);
    }
}

/*
 * Past a long blocked lane: a flood into one chat queues hundreds of due
 * jobs behind its first one, in flight.  The other lanes' first jobs,
 * due after them, are found all the same, by the same rules.
 */
static void
test_job_ready_past_a_long_lane(void **state)
{
    struct fx *f = *state;
    int64_t head, id, task1, free4, fetch5, ids[16];
    int64_t now;

    assert_int_equal(br_store_begin(f->s), 0);
    assert_int_equal(br_store_job_add(f->s, "t:long", "tracker", "comment", 1, "{}", &head), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(br_store_job_add(f->s, "t:long", "tracker", "comment", 1, "{}", &id), 0);
    assert_int_equal(br_store_commit(f->s), 0);
    assert_int_equal(br_store_job_start(f->s, head), 0);
    /* A dead contact does not hold its task back; a dead task holds its comment. */
    assert_int_equal(br_store_job_add(f->s, "t:1", "tracker", "contact", 2, "{}", &id), 0);
    assert_int_equal(br_store_job_finish(f->s, id, BR_JOB_DEAD, 3, 0, false, "HTTP 403", NULL, NULL), 0);
    assert_int_equal(br_store_job_add(f->s, "t:1", "tracker", "task", 2, "{}", &task1), 0);
    assert_int_equal(br_store_job_add(f->s, "t:2", "tracker", "task", 3, "{}", &id), 0);
    assert_int_equal(br_store_job_finish(f->s, id, BR_JOB_DEAD, 3, 0, false, "HTTP 403", NULL, NULL), 0);
    assert_int_equal(br_store_job_add(f->s, "t:2", "tracker", "comment", 3, "{}", &id), 0);
    /* Not due yet; another upstream's; an urgent one. */
    assert_int_equal(br_store_job_add_at(f->s, "t:3", "tracker", "comment", 4, "{}", br_now_ms() + 60000, &id), 0);
    assert_int_equal(br_store_job_add(f->s, "t:4", "tracker", "comment", 5, "{}", &free4), 0);
    assert_int_equal(br_store_job_add(f->s, "c:4", "chatra:shop", "reply", 5, "{}", &id), 0);
    assert_int_equal(br_store_job_add(f->s, "f:5", "tracker", "fetch", 6, "{}", &fetch5), 0);
    now = br_now_ms() + 1000;

    assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 3);
    assert_int_equal(ids[0], fetch5);
    assert_int_equal(ids[1], task1);
    assert_int_equal(ids[2], free4);
    assert_int_equal(ready_ids(f, "tracker", now, ids, 2), 2);
    assert_int_equal(ids[1], task1);
    /* The long lane's head done: its next job is ready, first by its time. */
    assert_int_equal(br_store_job_finish(f->s, head, BR_JOB_DONE, 1, 0, false, NULL, NULL, NULL), 0);
    assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 4);
    assert_int_equal(ids[0], fetch5);
    assert_int_equal(ids[1], head + 1);
    assert_int_equal(ids[2], task1);
    assert_int_equal(ids[3], free4);
}

static void
test_job_next_at_and_retry(void **state)
{
    struct fx *f = *state;
    struct br_job j = {0};
    int64_t a, b, other, ids[16];
    int64_t now, later;

    assert_int_equal(br_store_job_add(f->s, "tracker:1", "tracker", "comment", 1, "{}", &a), 0);
    assert_int_equal(br_store_job_add(f->s, "tracker:1", "tracker", "comment", 1, "{}", &b), 0);
    assert_int_equal(br_store_job_add(f->s, "tracker:2", "tracker", "comment", 2, "{}", &other), 0);
    now = br_now_ms() + 1000;
    later = now + 60000;

    /* A failed attempt goes back to queued with a later next_at. */
    assert_int_equal(br_store_job_start(f->s, a), 0);
    assert_int_equal(br_store_job_finish(f->s, a, BR_JOB_QUEUED, 1, later, false, "timeout", "r1", NULL), 0);
    assert_int_equal(br_store_job_get(f->s, a, &j), 0);
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_int_equal(j.attempts, 1);
    assert_int_equal(j.next_at, later);
    br_job_dispose(&j);

    /* Not due yet, and it still blocks its lane; the other lane runs. */
    assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 1);
    assert_int_equal(ids[0], other);
    assert_int_equal(br_store_job_finish(f->s, other, BR_JOB_DONE, 1, 0, false, NULL, NULL, NULL), 0);
    assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 0);

    /* Once due, the head is ready again and b still waits behind it. */
    assert_int_equal(ready_ids(f, "tracker", later, ids, 16), 1);
    assert_int_equal(ids[0], a);
    assert_int_equal(br_store_job_finish(f->s, a, BR_JOB_DONE, 2, 0, false, NULL, NULL, NULL), 0);
    assert_int_equal(ready_ids(f, "tracker", later, ids, 16), 1);
    assert_int_equal(ids[0], b);
    assert_int_equal(br_store_job_finish(f->s, b, BR_JOB_DONE, 1, 0, false, NULL, NULL, NULL), 0);
}

static void
test_job_recover_and_waiting(void **state)
{
    struct fx *f = *state;
    struct br_job j = {0};
    int64_t a, b, c, n = -1, ids[16];
    int64_t now;

    assert_int_equal(br_store_job_add(f->s, "tracker:1", "tracker", "comment", 1, "{}", &a), 0);
    assert_int_equal(br_store_job_add(f->s, "tracker:1", "tracker", "comment", 1, "{}", &b), 0);
    assert_int_equal(br_store_job_add(f->s, "tracker:2", "tracker", "task", 2, "{}", &c), 0);
    now = br_now_ms() + 1000;

    assert_true(br_store_job_waiting(f->s, "tracker:1", "comment"));
    assert_false(br_store_job_waiting(f->s, "tracker:1", "task"));
    assert_true(br_store_job_waiting(f->s, "tracker:2", "task"));
    assert_false(br_store_job_waiting(f->s, "tracker:3", "comment"));

    assert_int_equal(br_store_job_start(f->s, a), 0);
    assert_int_equal(br_store_job_start(f->s, c), 0);
    assert_false(br_store_job_waiting(f->s, "tracker:2", "task")); /* in flight, not waiting */
    assert_true(br_store_job_waiting(f->s, "tracker:1", "comment")); /* b still waits */

    /* The daemon stops here; on the next start in-flight jobs are queued again, marked. */
    reopen(f);
    assert_int_equal(br_store_job_recover_inflight(f->s, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(br_store_job_get(f->s, a, &j), 0);
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_true(j.recover);
    br_job_dispose(&j);
    assert_int_equal(br_store_job_get(f->s, b, &j), 0);
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_false(j.recover);
    br_job_dispose(&j);
    assert_int_equal(br_store_job_count(f->s, BR_JOB_SENDING), 0);
    assert_int_equal(br_store_job_count(f->s, BR_JOB_QUEUED), 3);

    /* A recovered job is queued again, so it is waiting to run. */
    assert_true(br_store_job_waiting(f->s, "tracker:2", "task"));

    assert_int_equal(ready_ids(f, "tracker", now, ids, 16), 2);
    assert_int_equal(ids[0], a);
    assert_int_equal(ids[1], c);

    /* Finishing sets or clears the recover mark as told; a second recovery finds nothing. */
    assert_int_equal(br_store_job_start(f->s, a), 0);
    assert_int_equal(br_store_job_finish(f->s, a, BR_JOB_QUEUED, 1, now, false, "HTTP 400", NULL, NULL), 0);
    assert_int_equal(br_store_job_get(f->s, a, &j), 0);
    assert_false(j.recover);
    assert_int_equal(j.attempts, 1);
    br_job_dispose(&j);
    assert_int_equal(br_store_job_start(f->s, a), 0);
    assert_int_equal(br_store_job_finish(f->s, a, BR_JOB_QUEUED, 2, now, true, "timeout", NULL, NULL), 0);
    assert_int_equal(br_store_job_get(f->s, a, &j), 0);
    assert_true(j.recover);
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_int_equal(j.attempts, 2);
    br_job_dispose(&j);
    assert_int_equal(br_store_job_recover_inflight(f->s, &n), 0);
    assert_int_equal(n, 0);
}

/* ---- writes that fail: a full disk ------------------------------------------------ */


static void
test_writes_fail_and_recover(void **state)
{
    struct fx *f = *state;
    struct br_store_health h;
    struct br_unrecorded *u = br_unrecorded_new();
    int64_t a, b, c, id, written, requeued, n;
    uint64_t failures = br_store_failures(f->s);
    struct br_job j;

    assert_int_equal(br_store_job_add(f->s, "t:1", "tracker", "comment", 1, "{}", &a), 0);
    assert_int_equal(br_store_job_add(f->s, "t:2", "tracker", "comment", 2, "{}", &b), 0);
    assert_int_equal(br_store_job_add(f->s, "t:3", "tracker", "comment", 3, "{}", &c), 0);
    assert_int_equal(br_store_job_start(f->s, a), 0);
    assert_int_equal(br_store_job_start(f->s, b), 0);
    assert_int_equal(br_store_job_start(f->s, c), 0);
    br_store_health(f->s, &h);
    assert_false(h.failing);
    assert_null(h.error);

    limit_files(f->path, true);
    /* a's outcome is refused: the store still shows it in flight. */
    assert_int_not_equal(br_store_job_finish(f->s, a, BR_JOB_DONE, 0, 0, false, NULL, NULL, NULL), 0);
    assert_true(br_store_failing(f->s));
    assert_true(br_store_failures(f->s) > failures);
    br_store_health(f->s, &h);
    assert_true(h.failing);
    assert_non_null(h.error);
    assert_true(h.since > 0);
    assert_int_equal(h.failed, 1);
    br_unrecorded_add(u, a, BR_JOB_DONE, 0, 0, false, NULL, NULL, NULL);
    /* A failed COMMIT leaves no transaction open: the next BEGIN works. */
    assert_int_equal(br_store_begin(f->s), 0);
    assert_int_equal(br_store_inbox_add(f->s, BR_INBOX_CHATRA, "shop", "{}", 2, &id), 0);
    assert_int_not_equal(br_store_commit(f->s), 0);
    assert_int_equal(br_store_begin(f->s), 0);
    br_store_rollback(f->s);
    assert_int_equal(br_store_inbox_pending(f->s), 0);
    /* Reads still work; settling does not go through, and keeps what it holds. */
    assert_int_equal(br_store_job_count(f->s, BR_JOB_SENDING), 3);
    assert_int_not_equal(br_unrecorded_settle(u, f->s, &b, 1, &written, &requeued), 0);
    assert_int_equal(br_unrecorded_count(u), 1);
    br_store_health(f->s, &h);
    assert_true(h.failed >= 3);

    /* Room again: a's kept outcome is written, c (not running) is queued again, marked; b runs on. */
    limit_files(f->path, false);
    assert_int_equal(br_unrecorded_settle(u, f->s, &b, 1, &written, &requeued), 0);
    assert_int_equal(written, 1);
    assert_int_equal(requeued, 1);
    assert_int_equal(br_unrecorded_count(u), 0);
    assert_int_equal(br_store_job_get(f->s, a, &j), 0);
    assert_int_equal(j.state, BR_JOB_DONE);
    br_job_dispose(&j);
    assert_int_equal(br_store_job_get(f->s, b, &j), 0);
    assert_int_equal(j.state, BR_JOB_SENDING);
    br_job_dispose(&j);
    assert_int_equal(br_store_job_get(f->s, c, &j), 0);
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_true(j.recover);
    br_job_dispose(&j);
    /* Settling again with nothing kept still writes (it proves the disk), and finds nothing. */
    assert_int_equal(br_unrecorded_settle(u, f->s, &b, 1, &written, &requeued), 0);
    assert_int_equal(written + requeued, 0);

    /* Writes work; the store says so once none failed for a second. */
    assert_true(br_store_failing(f->s));
    nanosleep(&(struct timespec){1, 100 * 1000 * 1000}, NULL);
    assert_false(br_store_failing(f->s));
    br_store_health(f->s, &h);
    assert_false(h.failing);
    assert_null(h.error);
    assert_int_equal(h.since, 0);

    /* Without a list of running jobs, every job in flight goes back. */
    assert_int_equal(br_store_job_recover_lost(f->s, NULL, 0, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(br_store_job_count(f->s, BR_JOB_SENDING), 0);
    br_unrecorded_free(u);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_ping_instance_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails_on_bad_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbox_tracker_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conversations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msg_pending_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_comment_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_comment_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relays_follow_a_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relays_by_email, setup, teardown),
        cmocka_unit_test_setup_teardown(test_employee_users_and_agents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_add_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_lane_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_dead_task_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_ready_past_a_long_lane, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_next_at_and_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_recover_and_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_note_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_fail_and_recover, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
