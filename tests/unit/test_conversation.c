/*
 * test_conversation.c - the conversation model (bridge/conversation.c) on a
 * store in a temporary directory, with the real config loader, the real
 * tracker driver (Planfix and Redmine: with and without contacts) and a real
 * job queue that never starts anything: no loop, no network, no sleep.
 *
 * Chat events are made as the webhook handler makes them: a Chatra body
 * (a sample from tests/data/chatra, or one built here) is parsed with
 * br_chatra_event_parse, its record (br_chatra_event_dump) goes to the
 * inbox, and the inbox row goes to br_conversation_apply inside a
 * transaction, as the engine does.  Each test then checks the store's rows
 * (conversations, devices, persons, tasks, messages, merges) and the jobs
 * queued, in order, with their payloads.
 *
 * Covered: a first event (conversation, messages, generation 1, the jobs of
 * each tracker kind), dedupe of repeated messages, a transcript (close on
 * leave, new details), the e-mail join of a second device, a late e-mail
 * joining two threads (either side older), a new chat of a known device,
 * tracker events (fetch), rows of older versions and of removed channels,
 * and every state change of conversation.h (reopen, task_slot, task_made,
 * task_joined, task_closed, msg_to_gen, msgs_mirrored, note).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <sqlite3.h>

#include "bridge/chatra_event.h"
#include "bridge/config.h"
#include "bridge/activity.h"
#include "bridge/conversation.h"
#include "bridge/env.h"
#include "bridge/log.h"
#include "bridge/queue.h"
#include "bridge/store.h"
#include "bridge/tracker.h"
#include "support/tmpdir.h"

/* Secrets, given to the config as env: references. */
static const char *const env_secrets[][2] = {
    {"BRT_CONV_TRACKER_KEY", "tracker-key-0123456789abcdef"},
    {"BRT_CONV_PF_HOOK", "pfHookSecret0123456789"},
    {"BRT_CONV_SHOP_HOOK", "shopHookSecret_abcdef123"},
    {"BRT_CONV_CHATRA_SECRET", "chatraSecretKey4567"},
};

/* The client id of the samples in tests/data/chatra. */
#define SAMPLE_CLIENT "k2f8w0qz5mv1r7c3xj9t4ba6ne0yd2hs8pl1ug5o"
#define MARIA "maria@example.org"
/* Long enough that a visitor's comment job is visibly held back. */
#define COALESCE_MS 60000

/* ---- fixture ----------------------------------------------------------------- */

struct fx {
    char dir[64];
    char *db_path;
    bool contacts;        /* the tracker keeps contacts (Planfix) */
    bool companies;       /* companies.enabled */
    struct br_config *cfg;
    struct br_store *store;
    struct br_env env;
    char *company_busy[BR_ENV_COMPANY_SLOTS]; /* the env's company slots (the engine's, in the daemon) */
    int64_t batch_from;   /* the first job of the last new_jobs() batch */
    int64_t jobs_seen;    /* the last job new_jobs() looked at */
};

/* The queue never runs a job here: the tests read the jobs table. */
static void
start_nothing(struct br_run *r)
{
    (void)r;
    fail_msg("no job may start in these tests");
}

static void
wake_nothing(void *arg)
{
    (void)arg;
}

/* A config written with single quotes (turned into double quotes). */
static char *
write_config(const char *dir, const char *text)
{
    char *path = br_asprintf("%s/bridge.json", dir);
    char *json = br_strdup(text);
    FILE *fp;

    for (char *p = json; *p; p++)
        if (*p == '\'')
            *p = '"';
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(json, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    free(json);
    return path;
}

/* More keys of the channel, for the next setup (mirror_agent_messages). */
static const char *channel_extra = "";

static int
setup_kind(void **state, const char *kind, bool companies)
{
    static const char channel[] =
        "{'name': 'shop', 'webhook_secret': 'env:BRT_CONV_SHOP_HOOK',\n"
        " 'chatra': {'public_key': 'pub', 'secret_key': 'env:BRT_CONV_CHATRA_SECRET'},\n"
        " 'default_agent_id': 'A', 'close_on_leave': true%s}";
    struct fx *f = calloc(1, sizeof(*f));
    struct br_diag diag = {0};
    bool planfix = strcmp(kind, "planfix") == 0;
    char *tracker, *ch, *text, *path;

    assert_non_null(f);
    strcpy(f->dir, "/tmp/br-test-conv-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    for (size_t i = 0; i < BR_ARRAY_SIZE(env_secrets); i++)
        assert_int_equal(setenv(env_secrets[i][0], env_secrets[i][1], 1), 0);

    if (planfix)
        tracker = br_asprintf("{'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
                              " 'token': 'env:BRT_CONV_TRACKER_KEY', 'webhook_secret': 'env:BRT_CONV_PF_HOOK',\n"
                              " 'closed_status_id': 3, 'coalesce_ms': %d}",
                              COALESCE_MS);
    else
        tracker = br_asprintf("{'kind': 'redmine', 'url': 'http://127.0.0.1:3000',\n"
                              " 'api_key': 'env:BRT_CONV_TRACKER_KEY', 'project': 'chats',\n"
                              " 'closed_status_id': 5, 'coalesce_ms': %d}",
                              COALESCE_MS);
    /* Redmine fills a task custom field from the visitor's details (the "fields" job). */
    ch = br_asprintf(channel, planfix ? channel_extra
                                      : ", 'task': {'custom_fields': [{'id': 3, 'value': '{{visitor.email}}'}]}");
    channel_extra = "";
    text = br_asprintf("{'store': {'path': 'bridge.db'},\n 'tracker': %s,\n%s 'channels': [%s]}\n", tracker,
                       companies ? " 'companies': {'enabled': true},\n" : "", ch);
    path = write_config(f->dir, text);
    if (br_config_load(path, &f->cfg, &diag) != 0) {
        for (size_t i = 0; i < diag.n; i++)
            print_message("%s\n", diag.items[i]);
        fail_msg("the test config does not load");
    }
    br_diag_dispose(&diag);
    free(path);
    free(text);
    free(ch);
    free(tracker);

    f->db_path = br_asprintf("%s/bridge.db", f->dir);
    assert_int_equal(br_store_open(&f->store, f->db_path), 0);
    f->env.cfg = f->cfg;
    f->env.store = f->store;
    f->env.company_busy = f->company_busy;
    /* The real driver: it needs nothing but the config (no upstream: nothing is sent). */
    assert_int_equal(br_tracker_new(&f->env.tracker, f->cfg, NULL), 0);
    assert_ptr_equal(f->env.tracker->ops->kind, planfix ? &br_planfix_kind : &br_redmine_kind);
    f->env.queue = br_queue_new(f->cfg, f->store, &f->env, start_nothing, wake_nothing, NULL);
    f->contacts = planfix;
    f->companies = companies;
    assert_int_equal(br_env_has_contacts(&f->env), f->contacts);
    assert_int_equal(f->cfg->companies, companies);
    *state = f;
    return 0;
}

static int
setup_planfix(void **state)
{
    return setup_kind(state, "planfix", false);
}

static int
setup_planfix_companies(void **state)
{
    return setup_kind(state, "planfix", true);
}

static int
setup_planfix_agents_off(void **state)
{
    channel_extra = ", 'mirror_agent_messages': 'off'";
    return setup_kind(state, "planfix", false);
}

static int
setup_planfix_agents_with_visitor(void **state)
{
    channel_extra = ", 'mirror_agent_messages': 'with_visitor'";
    return setup_kind(state, "planfix", false);
}

static int
setup_redmine(void **state)
{
    return setup_kind(state, "redmine", false);
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    br_queue_free(f->env.queue);
    br_tracker_free(f->env.tracker);
    for (size_t i = 0; i < BR_ENV_COMPANY_SLOTS; i++)
        free(f->company_busy[i]);
    br_store_free(f->store);
    br_config_free(f->cfg);
    br_log_clear_secrets();
    for (size_t i = 0; i < BR_ARRAY_SIZE(env_secrets); i++)
        unsetenv(env_secrets[i][0]);
    tmpdir_remove(f->dir);
    free(f->db_path);
    free(f);
    return 0;
}

/* ---- events into the inbox, and applied ---------------------------------------- */

static char *
slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    struct br_buf b;
    char chunk[4096];
    size_t n;

    if (fp == NULL)
        fail_msg("cannot read %s", path);
    br_buf_init(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        assert_int_equal(br_buf_append(&b, chunk, n), 0);
    fclose(fp);
    return br_buf_steal(&b);
}

/* A Chatra sample webhook body from tests/data/chatra. */
static char *
sample(const char *name)
{
    const char *src = getenv("BR_SOURCE_DIR");
    char *path = br_asprintf("%s/tests/data/chatra/%s", src && *src ? src : BR_TEST_SOURCE_DIR, name);
    char *body = slurp(path);
    free(path);
    return body;
}

/* A Chatra chatFragment webhook of one visitor message (email may be NULL). */
static char *
visitor_webhook(const char *client_id, const char *chat_id, const char *email, const char *msg_id,
                const char *text)
{
    json_t *client = json_pack("{s:s, s:s}", "id", client_id, "chatId", chat_id);
    json_t *body;
    char *s;

    if (email)
        json_object_set_new(client, "email", json_string(email));
    body = json_pack("{s:s, s:o, s:[{s:s, s:s, s:s, s:I}], s:[]}", "eventName", "chatFragment", "client", client, "messages",
                     "id", msg_id, "type", "client", "text", text, "createdAt", (json_int_t)1763800000000, "agents");
    assert_non_null(body);
    s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return s;
}

/* Applies inbox row want_id (the only one waiting) in a transaction, as the engine does; it must be done after. */
static void
apply_row(struct fx *f, int64_t want_id)
{
    struct br_inbox_row row = {0};

    assert_int_equal(br_store_inbox_pending(f->store), 1);
    assert_int_equal(br_store_begin(f->store), 0);
    assert_int_equal(br_store_inbox_next(f->store, &row), 0);
    assert_int_equal(row.id, want_id);
    assert_int_equal(br_conversation_apply(&f->env, &row), 0);
    assert_int_equal(br_store_commit(f->store), 0);
    br_inbox_row_dispose(&row);
    assert_int_equal(br_store_inbox_pending(f->store), 0);
}

static void
inbox_apply(struct fx *f, int kind, const char *channel, const char *body)
{
    int64_t id = 0;
    assert_int_equal(br_store_inbox_add(f->store, kind, channel, body, strlen(body), &id), 0);
    apply_row(f, id);
}

/* A Chatra body as the handler takes it: parsed once, its record in the inbox; then applied. */
static void
chatra(struct fx *f, const char *body)
{
    struct br_chatra_event ev;
    char err[200];
    char *record;

    if (br_chatra_event_parse(body, strlen(body), &ev, err, sizeof(err)) != 0)
        fail_msg("webhook does not parse: %s", err);
    record = br_chatra_event_dump(&ev);
    br_chatra_event_dispose(&ev);
    assert_non_null(record);
    inbox_apply(f, BR_INBOX_CHATRA, "shop", record);
    free(record);
}

static void
chatra_sample(struct fx *f, const char *name)
{
    char *body = sample(name);
    chatra(f, body);
    free(body);
}

static void
visitor_says(struct fx *f, const char *client_id, const char *chat_id, const char *email, const char *msg_id,
             const char *text)
{
    char *body = visitor_webhook(client_id, chat_id, email, msg_id, text);
    chatra(f, body);
    free(body);
}

/* ---- what the store holds ---------------------------------------------------------- */

/*
 * The jobs added since the last call, "lane kind" each, joined by "; ".
 * Every job must be queued and fresh, in the lane of its conversation on
 * the right upstream (tracker lanes 't' and, for Planfix's fetches, 'f';
 * the channel's Chatra lanes 'c').
 * Job ids count up from 1 without gaps: nothing here removes a job.
 */
static char *
new_jobs(struct fx *f)
{
    struct br_buf b;
    struct br_job j;

    br_buf_init(&b, 0);
    f->batch_from = f->jobs_seen + 1;
    while (br_store_job_get(f->store, f->jobs_seen + 1, &j) == 0) {
        char *lane = br_queue_lane(j.lane[0], j.conv_id);
        assert_string_equal(j.lane, lane);
        free(lane);
        assert_string_equal(j.upstream, j.lane[0] == 'c' ? "chatra:shop" : "tracker");
        assert_true(j.lane[0] == 'c' || j.lane[0] == 't' || (j.lane[0] == 'f' && strcmp(j.kind, "fetch") == 0));
        assert_int_equal(j.state, BR_JOB_QUEUED);
        assert_int_equal(j.attempts, 0);
        assert_false(j.recover);
        if (b.len)
            br_buf_puts(&b, "; ");
        br_buf_printf(&b, "%s %s", j.lane, j.kind);
        f->jobs_seen = j.id;
        br_job_dispose(&j);
    }
    return b.data ? br_buf_steal(&b) : br_strdup("");
}

static void
expect_new_jobs(struct fx *f, const char *want)
{
    char *got = new_jobs(f);
    if (strcmp(got, want) != 0) {
        print_message("jobs: %s\nwant: %s\n", got, want);
        free(got);
        fail_msg("unexpected jobs");
    }
    free(got);
}

/* The jobs so far are not this test's point. */
static void
skip_jobs(struct fx *f)
{
    free(new_jobs(f));
}

/* The nth (from 0) job "lane kind" of the last batch. */
static void
batch_job(struct fx *f, const char *what, int nth, struct br_job *out)
{
    for (int64_t id = f->batch_from; id <= f->jobs_seen; id++) {
        char *name;
        bool match;
        assert_int_equal(br_store_job_get(f->store, id, out), 0);
        name = br_asprintf("%s %s", out->lane, out->kind);
        match = strcmp(name, what) == 0;
        free(name);
        if (match && nth-- == 0)
            return;
        br_job_dispose(out);
    }
    fail_msg("no job \"%s\" in the last batch", what);
}

static json_t *
batch_payload(struct fx *f, const char *what, int nth)
{
    struct br_job j;
    json_error_t je;
    json_t *p;

    batch_job(f, what, nth, &j);
    p = json_loads(j.payload, 0, &je);
    if (p == NULL)
        fail_msg("payload of %s is not JSON: %s", what, j.payload);
    br_job_dispose(&j);
    return p;
}

/* Whether every key of want is in got with the same value (objects compared the same way, recursively). */
static bool
json_has(json_t *got, json_t *want)
{
    const char *k;
    json_t *v;

    if (!json_is_object(want) || !json_is_object(got))
        return json_equal(got, want);
    json_object_foreach(want, k, v) {
        if (!json_has(json_object_get(got, k), v))
            return false;
    }
    return true;
}

static json_t *
json_q(const char *text)
{
    char *s = br_strdup(text);
    json_error_t je;
    json_t *j;

    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    j = json_loads(s, 0, &je);
    if (j == NULL)
        fail_msg("bad expected JSON %s: %s", s, je.text);
    free(s);
    return j;
}

/* The job's payload holds everything in want (single-quoted JSON); exact: and nothing else. */
static void
expect_payload_is(struct fx *f, const char *what, int nth, const char *want_text, bool exact)
{
    json_t *got = batch_payload(f, what, nth);
    json_t *want = json_q(want_text);
    if (!(exact ? json_equal(got, want) : json_has(got, want))) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        print_message("payload of %s: %s\nwant%s: %s\n", what, g, exact ? "" : " (at least)", want_text);
        free(g);
        fail_msg("unexpected payload");
    }
    json_decref(got);
    json_decref(want);
}

static void
expect_payload(struct fx *f, const char *what, int nth, const char *want)
{
    expect_payload_is(f, what, nth, want, true);
}

static void
expect_payload_has(struct fx *f, const char *what, int nth, const char *want)
{
    expect_payload_is(f, what, nth, want, false);
}

static int64_t
batch_next_at(struct fx *f, const char *what, int nth)
{
    struct br_job j;
    int64_t at;
    batch_job(f, what, nth, &j);
    at = j.next_at;
    br_job_dispose(&j);
    return at;
}

/* The conversation of a device; its id. */
static int64_t
conv_of(struct fx *f, const char *client_id, struct br_conv *out)
{
    struct br_conv c = {0};
    int64_t id;

    if (br_store_conv_by_client(f->store, "shop", client_id, &c) != 0)
        fail_msg("device %s has no conversation", client_id);
    id = c.id;
    if (out)
        *out = c;
    else
        br_conv_dispose(&c);
    return id;
}

static int
conv_gen(struct fx *f, int64_t conv_id)
{
    struct br_conv c = {0};
    int gen;
    assert_int_equal(br_store_conv_get(f->store, conv_id, &c), 0);
    gen = c.gen;
    br_conv_dispose(&c);
    return gen;
}

static void
expect_task(struct fx *f, int64_t conv_id, int gen, int state, const char *task_id)
{
    struct br_task t = {0};
    if (br_store_task_get(f->store, conv_id, gen, &t) != 0)
        fail_msg("no task %lld/%d", (long long)conv_id, gen);
    assert_int_equal(t.conv_id, conv_id);
    assert_int_equal(t.gen, gen);
    assert_int_equal(t.state, state);
    if (task_id)
        assert_string_equal(t.task_id, task_id);
    else
        assert_null(t.task_id);
    br_task_dispose(&t);
}

static bool
msg_line(void *arg, const struct br_msg *m)
{
    static const char *const states[] = {"pending", "mirrored", "skipped"};
    struct br_buf *b = arg;
    if (b->len)
        br_buf_puts(b, "; ");
    br_buf_printf(b, "%s %s %s", m->key, m->type, m->state >= 0 && m->state < 3 ? states[m->state] : "?");
    return true;
}

/* The messages of one task generation, "key type state" each, in order. */
static void
expect_msgs(struct fx *f, int64_t conv_id, int gen, const char *want)
{
    struct br_buf b;
    const char *got;

    br_buf_init(&b, 0);
    assert_int_equal(br_store_msg_each(f->store, conv_id, gen, msg_line, &b), 0);
    got = b.data ? b.data : "";
    if (strcmp(got, want) != 0) {
        print_message("messages of %lld/%d: %s\nwant: %s\n", (long long)conv_id, gen, got, want);
        br_buf_dispose(&b);
        fail_msg("unexpected messages");
    }
    br_buf_dispose(&b);
}

/* One value of a query on the store's file, for what the store has no call (NULL as -1 / NULL). */
static int64_t
sql_int(struct fx *f, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v;

    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A message's row id by its key. */
static int64_t
msg_id(struct fx *f, int64_t conv_id, const char *key)
{
    char *sql = br_asprintf("SELECT id FROM messages WHERE conv_id=%lld AND key='%s'", (long long)conv_id, key);
    int64_t id = sql_int(f, sql);
    free(sql);
    return id;
}

static char *
sql_text(struct fx *f, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char *v;

    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_type(st, 0) == SQLITE_NULL ? NULL : br_strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void
expect_sql_text(struct fx *f, const char *sql, const char *want)
{
    char *got = sql_text(f, sql);
    if (want == NULL)
        assert_null(got);
    else
        assert_string_equal(got, want);
    free(got);
}

static int64_t
person_of(struct fx *f, const char *email)
{
    int64_t pid = 0;
    bool verified = true;
    assert_int_equal(br_store_person_of_email(f->store, email, &pid, &verified), 0);
    return pid;
}

/* The jobs that open a generation, as each tracker kind queues them (the profile with generation 1 only). */
static char *
gen_jobs(struct fx *f, int64_t conv, bool first)
{
    struct br_buf b;

    br_buf_init(&b, 0);
    if (first)
        br_buf_printf(&b, "c:%lld profile; ", (long long)conv);
    if (f->contacts)
        br_buf_printf(&b, "t:%lld contact; ", (long long)conv);
    if (f->contacts && f->companies)
        br_buf_printf(&b, "t:%lld company; ", (long long)conv);
    br_buf_printf(&b, "t:%lld task", (long long)conv);
    return br_buf_steal(&b);
}

/* The conversation's first event: chat-started.json, one visitor message. */
static int64_t
first_event(struct fx *f)
{
    chatra_sample(f, "chat-started.json");
    skip_jobs(f);
    return conv_of(f, SAMPLE_CLIENT, NULL);
}

static json_t *
ids(int64_t a, int64_t b)
{
    json_t *arr = json_array();
    json_array_append_new(arr, json_integer(a));
    if (b)
        json_array_append_new(arr, json_integer(b));
    return arr;
}

/* ---- chat events -------------------------------------------------------------------- */

/* A new visitor's first event makes the conversation, its first generation and the jobs of each tracker kind. */
static void
test_first_event(void **state)
{
    struct fx *f = *state;
    struct br_conv c = {0};
    struct br_job ready[8];
    size_t n = 0;
    int64_t t0 = br_now_ms(), t1, at;
    char *want;
    json_t *task;

    chatra_sample(f, "chat-started.json");
    t1 = br_now_ms();

    /* The conversation, with the device and its chat. */
    assert_int_equal(conv_of(f, SAMPLE_CLIENT, &c), 1);
    assert_string_equal(c.channel, "shop");
    assert_string_equal(c.client_id, SAMPLE_CLIENT);
    assert_string_equal(c.chat_id, "Qm7TzR2pLx9VbN4cW");
    assert_null(c.name);
    assert_null(c.email);
    assert_non_null(c.visitor_json);
    assert_int_equal(c.gen, 1);
    assert_true(c.person_id > 0);
    assert_int_equal(c.merged_into, 0);
    assert_int_equal(c.profile_state, BR_PROFILE_PENDING);
    assert_null(c.contact_id);
    br_conv_dispose(&c);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM conversations"), 1);
    expect_sql_text(f, "SELECT chat_id FROM conv_clients WHERE client_id='" SAMPLE_CLIENT "'", "Qm7TzR2pLx9VbN4cW");

    /* Generation 1 is pending, its message waits for the tracker. */
    expect_task(f, 1, 1, BR_TASK_PENDING, NULL);
    expect_msgs(f, 1, 1, "id:Hk3sP9xQ2mLr7TvZa client pending");

    /*
     * The profile on the channel's Chatra lane; contact (and company) only
     * where the tracker keeps contacts; the task; the message's comment.
     */
    want = gen_jobs(f, 1, true);
    {
        char *all = br_asprintf("%s; t:1 comment", want);
        expect_new_jobs(f, all);
        free(all);
    }
    free(want);
    expect_payload(f, "c:1 profile", 0, "{}");
    if (f->contacts)
        expect_payload(f, "t:1 contact", 0, "{'gen': 1}");
    if (f->contacts && f->companies)
        expect_payload(f, "t:1 company", 0, "{}");
    task = batch_payload(f, "t:1 task", 0);
    assert_int_equal(json_object_size(task), 2);
    assert_int_equal(json_integer_value(json_object_get(task, "gen")), 1);
    assert_in_range(json_integer_value(json_object_get(task, "since")), t0, t1);
    json_decref(task);
    {
        char *p = br_asprintf("{'msg': %lld}", (long long)msg_id(f, 1, "id:Hk3sP9xQ2mLr7TvZa"));
        expect_payload(f, "t:1 comment", 0, p);
        free(p);
    }
    /* A visitor's message waits coalesce_ms for the ones typed right after it. */
    at = batch_next_at(f, "t:1 comment", 0);
    assert_in_range(at, t0 + COALESCE_MS, t1 + COALESCE_MS);

    /* Each lane runs in order: the first job of each is the one ready now. */
    assert_int_equal(br_store_job_ready(f->store, "tracker", t1, ready, BR_ARRAY_SIZE(ready), &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ready[0].kind, f->contacts ? "contact" : "task");
    br_job_dispose(&ready[0]);
    assert_int_equal(br_store_job_ready(f->store, "chatra:shop", t1, ready, BR_ARRAY_SIZE(ready), &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ready[0].kind, "profile");
    br_job_dispose(&ready[0]);
}

/* The same webhook twice: its message is stored once, and the repeat queues nothing. */
static void
test_same_message_twice(void **state)
{
    struct fx *f = *state;

    first_event(f);
    chatra_sample(f, "chat-started.json");
    expect_msgs(f, 1, 1, "id:Hk3sP9xQ2mLr7TvZa client pending");
    assert_int_equal(sql_int(f, "SELECT count(*) FROM messages"), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM conversations"), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM tasks"), 1);
    expect_new_jobs(f, "");

    /* The same id in another webhook of the device (another shape, same key) is the same message. */
    visitor_says(f, SAMPLE_CLIENT, "Qm7TzR2pLx9VbN4cW", NULL, "Hk3sP9xQ2mLr7TvZa",
                 "Hello! Is the blue kettle in stock?");
    expect_msgs(f, 1, 1, "id:Hk3sP9xQ2mLr7TvZa client pending");
    expect_new_jobs(f, "");
}

/*
 * A transcript repeats the chat: only its new messages are stored and
 * commented (an agent's at once), the visitor's new details go to the
 * contact (or a note and the task's fields without contacts), and the
 * task is closed on leave.  Its repeat does nothing.
 */
static void
test_transcript(void **state)
{
    struct fx *f = *state;
    struct br_conv c = {0};
    int64_t t0, t1;

    first_event(f);
    t0 = br_now_ms();
    chatra_sample(f, "chat-transcript.json");
    t1 = br_now_ms();

    expect_msgs(f, 1, 1,
                "id:Hk3sP9xQ2mLr7TvZa client pending; id:Jp4dT8wE1nKs6YuBc agent pending; "
                "id:Mr6fV0yG3pNu8AwDe client pending; id:Ns7gW1zH4qOv9BxEf client pending");
    if (f->contacts)
        expect_new_jobs(f, "t:1 comment; t:1 comment; t:1 comment; t:1 update_contact; t:1 close");
    else
        expect_new_jobs(f, "t:1 comment; t:1 comment; t:1 comment; t:1 note; t:1 fields; t:1 close");
    assert_in_range(batch_next_at(f, "t:1 comment", 0), t0, t1); /* the agent's */
    assert_in_range(batch_next_at(f, "t:1 comment", 1), t0 + COALESCE_MS, t1 + COALESCE_MS);
    if (f->contacts) {
        expect_payload(f, "t:1 update_contact", 0, "{}");
    } else {
        expect_payload(f, "t:1 note", 0,
                       "{'gen': 1, 'gen_at': 1, 'text': 'visitor_details', 'ctx': {'details': {"
                       "'name': 'Maria Lopez', 'email': 'maria.lopez@example.org', 'items': ["
                       "{'name': true, 'email': false, 'phone': false, 'value': 'Maria Lopez', 'first': true},"
                       "{'name': false, 'email': true, 'phone': false, 'value': 'maria.lopez@example.org', "
                       "'first': false}]}}}");
        expect_payload(f, "t:1 fields", 0, "{'gen': 1}");
    }
    expect_payload(f, "t:1 close", 0, "{'gen': 1}");
    expect_task(f, 1, 1, BR_TASK_CLOSING, NULL);

    conv_of(f, SAMPLE_CLIENT, &c);
    assert_string_equal(c.name, "Maria Lopez");
    assert_string_equal(c.email, "maria.lopez@example.org");
    assert_int_equal(person_of(f, "maria.lopez@example.org"), c.person_id);
    br_conv_dispose(&c);

    chatra_sample(f, "chat-transcript.json");
    expect_new_jobs(f, "");
    assert_int_equal(sql_int(f, "SELECT count(*) FROM messages"), 4);
}

/*
 * mirror_agent_messages: "off" stores an agent's message as skipped and
 * queues nothing for it; "with_visitor" makes it wait coalesce_ms like a
 * visitor's (one comment carries them).
 */
static void
test_mirror_agent_messages(void **state)
{
    struct fx *f = *state;
    int64_t t0, t1;

    first_event(f);
    t0 = br_now_ms();
    chatra_sample(f, "chat-transcript.json");
    t1 = br_now_ms();
    if (f->cfg->channels[0].mirror_agent == BR_MIRROR_AGENT_OFF) {
        expect_msgs(f, 1, 1,
                    "id:Hk3sP9xQ2mLr7TvZa client pending; id:Jp4dT8wE1nKs6YuBc agent skipped; "
                    "id:Mr6fV0yG3pNu8AwDe client pending; id:Ns7gW1zH4qOv9BxEf client pending");
        expect_new_jobs(f, "t:1 comment; t:1 comment; t:1 update_contact; t:1 close");
        assert_in_range(batch_next_at(f, "t:1 comment", 0), t0 + COALESCE_MS, t1 + COALESCE_MS);
        {
            char *p = br_asprintf("{'msg': %lld}", (long long)msg_id(f, 1, "id:Mr6fV0yG3pNu8AwDe"));
            expect_payload(f, "t:1 comment", 0, p);
            free(p);
        }
    } else {
        assert_int_equal(f->cfg->channels[0].mirror_agent, BR_MIRROR_AGENT_WITH_VISITOR);
        expect_msgs(f, 1, 1,
                    "id:Hk3sP9xQ2mLr7TvZa client pending; id:Jp4dT8wE1nKs6YuBc agent pending; "
                    "id:Mr6fV0yG3pNu8AwDe client pending; id:Ns7gW1zH4qOv9BxEf client pending");
        expect_new_jobs(f, "t:1 comment; t:1 comment; t:1 comment; t:1 update_contact; t:1 close");
        /* The agent's waits too. */
        for (int i = 0; i < 3; i++)
            assert_in_range(batch_next_at(f, "t:1 comment", i), t0 + COALESCE_MS, t1 + COALESCE_MS);
    }
}

/* A second device whose e-mail belongs to a known person joins that person's conversation. */
static void
test_email_join(void **state)
{
    struct fx *f = *state;
    struct br_conv c = {0};
    char *want;

    visitor_says(f, "dev-A", "chat-A", MARIA, "a1", "Hello from the laptop");
    want = gen_jobs(f, 1, true);
    {
        char *all = br_asprintf("%s; t:1 comment", want);
        expect_new_jobs(f, all);
        free(all);
    }
    free(want);
    assert_int_equal(person_of(f, MARIA), 1);

    /* The e-mail arrives in another form: the same address once normalised. */
    visitor_says(f, "dev-B", "chat-B", "Maria@Example.ORG", "b1", "Hello from the phone");
    assert_int_equal(conv_of(f, "dev-B", &c), 1);
    assert_string_equal(c.client_id, "dev-B"); /* where replies go now */
    assert_string_equal(c.chat_id, "chat-B");
    assert_int_equal(c.gen, 1);
    assert_int_equal(c.person_id, 1);
    br_conv_dispose(&c);
    assert_int_equal(conv_of(f, "dev-A", NULL), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM conversations"), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM persons"), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM tasks"), 1);
    expect_msgs(f, 1, 1, "id:a1 client pending; id:b1 client pending");

    /* The join is recorded like a merge (merged_conv 0), so that it can be undone. */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM merges"), 1);
    assert_int_equal(sql_int(f, "SELECT survivor_conv FROM merges"), 1);
    assert_int_equal(sql_int(f, "SELECT merged_conv FROM merges"), 0);
    expect_sql_text(f, "SELECT clients FROM merges", "[\"dev-B\"]");
    expect_sql_text(f, "SELECT email FROM merges", MARIA);
    assert_int_equal(sql_int(f, "SELECT verified FROM merges"), 0);

    /*
     * No new task: the message, a note for the employees (on the task the
     * message goes to when it runs: BR_GEN_CURRENT), and the visit on the
     * contact's card (Planfix) or, without one, a visit note on the task.
     */
    expect_new_jobs(f, f->contacts ? "t:1 comment; t:1 note; t:1 contact_visit" : "t:1 comment; t:1 note; t:1 note");
    expect_payload_has(f, "t:1 note", 0,
                       "{'gen': -1, 'gen_at': 1, 'text': 'device_joined', 'ctx': {'email': '" MARIA
                       "', 'verified': false}}");
    if (!f->contacts)
        expect_payload_has(f, "t:1 note", 1, "{'gen': -1, 'text': 'new_visit'}");
    {
        json_t *p = batch_payload(f, "t:1 note", 0);
        assert_true(json_is_object(json_object_get(json_object_get(p, "ctx"), "device")));
        assert_null(json_object_get(p, "ref_conv"));
        json_decref(p);
    }
    if (f->contacts)
        expect_payload_has(f, "t:1 contact_visit", 0, "{'ctx': {'chat': {'id': 'chat-B'}}}");
}

/*
 * A device with a thread of its own gives, later, an e-mail that belongs
 * to an older thread: the newer thread is joined into the older one (its
 * devices, person and messages move; its task is closed with a note
 * pointing to the survivor; Planfix drops its contact).
 */
static void
test_late_email_joins_threads(void **state)
{
    struct fx *f = *state;
    struct br_conv c = {0};
    char *want;

    visitor_says(f, "dev-A", "chat-A", MARIA, "a1", "Hello from the laptop");
    skip_jobs(f);
    visitor_says(f, "dev-C", "chat-C", NULL, "c1", "Hi, anonymous here");
    assert_int_equal(conv_of(f, "dev-C", NULL), 2);
    want = gen_jobs(f, 2, true);
    {
        char *all = br_asprintf("%s; t:2 comment", want);
        expect_new_jobs(f, all);
        free(all);
    }
    free(want);

    /* Now with the e-mail of conversation 1's person. */
    visitor_says(f, "dev-C", "chat-C", MARIA, "c2", "It is me, Maria");
    assert_int_equal(conv_of(f, "dev-C", &c), 1);
    assert_string_equal(c.client_id, "dev-C");
    assert_int_equal(c.gen, 1);
    assert_int_equal(c.person_id, 1);
    br_conv_dispose(&c);
    assert_int_equal(conv_of(f, "dev-A", NULL), 1);
    assert_int_equal(person_of(f, MARIA), 1);
    assert_int_equal(br_store_conv_get(f->store, 2, &c), 0);
    assert_int_equal(c.merged_into, 1);
    br_conv_dispose(&c);
    assert_int_equal(sql_int(f, "SELECT merged_into FROM persons WHERE id=2"), 1);
    assert_int_equal(sql_int(f, "SELECT survivor_conv FROM merges"), 1);
    assert_int_equal(sql_int(f, "SELECT merged_conv FROM merges"), 2);
    expect_sql_text(f, "SELECT clients FROM merges", "[\"dev-C\"]");

    /* The merged thread's messages are known to the survivor as handled; the new one is the survivor's. */
    expect_msgs(f, 1, 1, "id:a1 client pending; id:c1 client skipped; id:c2 client pending");
    expect_msgs(f, 2, 1, "id:c1 client pending");
    expect_task(f, 2, 1, BR_TASK_CLOSING, NULL);
    expect_task(f, 1, 1, BR_TASK_PENDING, NULL);

    expect_new_jobs(f, f->contacts ? "t:2 note; t:2 close; t:2 drop_contact; t:1 comment; t:1 note"
                                   : "t:2 note; t:2 close; t:1 comment; t:1 note");
    expect_payload(f, "t:2 note", 0,
                   "{'gen': 1, 'gen_at': 1, 'text': 'continues_in', 'ref_conv': 1, "
                   "'ctx': {'email': '" MARIA "', 'verified': false}}");
    expect_payload(f, "t:2 close", 0, "{'gen': 1}");
    if (f->contacts)
        expect_payload(f, "t:2 drop_contact", 0, "{'survivor': 1}");
    expect_payload_has(f, "t:1 note", 0, "{'gen': 1, 'text': 'device_joined', 'ctx': {'email': '" MARIA "'}}");
    {
        char *p = br_asprintf("{'msg': %lld}", (long long)msg_id(f, 1, "id:c2"));
        expect_payload(f, "t:1 comment", 0, p);
        free(p);
    }
}

/*
 * The other way round: the older thread's device gives the e-mail of a
 * newer thread.  The older one survives all the same, and its new details
 * do not make an update of a contact that is being merged.
 */
static void
test_late_email_older_survives(void **state)
{
    struct fx *f = *state;
    struct br_conv c = {0};

    visitor_says(f, "dev-X", "chat-X", NULL, "x1", "Hello");
    visitor_says(f, "dev-Y", "chat-Y", MARIA, "y1", "Hello again, from elsewhere");
    assert_int_equal(conv_of(f, "dev-Y", NULL), 2);
    assert_int_equal(person_of(f, MARIA), 2);
    skip_jobs(f);

    visitor_says(f, "dev-X", "chat-X", MARIA, "x2", "My e-mail is maria@example.org");
    assert_int_equal(conv_of(f, "dev-X", &c), 1);
    assert_string_equal(c.email, MARIA);
    br_conv_dispose(&c);
    assert_int_equal(conv_of(f, "dev-Y", NULL), 1);
    assert_int_equal(person_of(f, MARIA), 1);
    assert_int_equal(br_store_conv_get(f->store, 2, &c), 0);
    assert_int_equal(c.merged_into, 1);
    br_conv_dispose(&c);
    assert_int_equal(sql_int(f, "SELECT survivor_conv FROM merges"), 1);
    assert_int_equal(sql_int(f, "SELECT merged_conv FROM merges"), 2);
    expect_msgs(f, 1, 1, "id:x1 client pending; id:y1 client skipped; id:x2 client pending");
    expect_task(f, 2, 1, BR_TASK_CLOSING, NULL);
    /* The e-mail the surviving device just gave updates its contact (a note of the details without one). */
    expect_new_jobs(f, f->contacts ? "t:2 note; t:2 close; t:2 drop_contact; t:1 comment; t:1 note; t:1 update_contact"
                                   : "t:2 note; t:2 close; t:1 comment; t:1 note; t:1 note; t:1 fields");
    expect_payload_has(f, "t:2 note", 0, "{'text': 'continues_in', 'ref_conv': 1}");
    if (!f->contacts)
        expect_payload_has(f, "t:1 note", 1, "{'text': 'visitor_details'}");
}

/*
 * A known device in a new chat: the open task's state is checked first,
 * the message follows, then a visit note (generation 0: dropped if the
 * check opens a new task) and, on Planfix, the visit on the contact.
 */
static void
test_new_chat(void **state)
{
    struct fx *f = *state;
    json_t *carried;

    visitor_says(f, "dev-A", "chat-1", NULL, "m1", "Hello");
    carried = ids(msg_id(f, 1, "id:m1"), 0);
    assert_int_equal(br_conversation_task_made(&f->env, 1, 1, "77", carried, NULL, false), 0);
    json_decref(carried);
    skip_jobs(f);

    visitor_says(f, "dev-A", "chat-2", NULL, "m2", "Hello, it is me again");
    expect_new_jobs(f, f->contacts ? "t:1 check; t:1 comment; t:1 note; t:1 contact_visit"
                                   : "t:1 check; t:1 comment; t:1 note");
    expect_payload(f, "t:1 check", 0, "{'gen': 1}");
    expect_payload_has(f, "t:1 note", 0,
                       "{'gen': 0, 'gen_at': 1, 'text': 'new_visit', 'ctx': {'chat': {'id': 'chat-2'}}}");
    if (f->contacts)
        expect_payload_has(f, "t:1 contact_visit", 0, "{'ctx': {'chat': {'id': 'chat-2'}}}");
    expect_msgs(f, 1, 1, "id:m1 client mirrored; id:m2 client pending");
    assert_int_equal(conv_gen(f, 1), 1);

    /* The same chat again is no new visit. */
    visitor_says(f, "dev-A", "chat-2", NULL, "m3", "Still there?");
    expect_new_jobs(f, "t:1 comment");
}

/* Inbox rows of older versions (the webhook as received), of a removed channel, and unreadable ones. */
static void
test_other_inbox_rows(void **state)
{
    struct fx *f = *state;
    char *body = sample("chat-fragment-agent-and-system.json");
    char *want, *all;

    /* A row written by an earlier version holds the webhook itself: it is parsed when applied. */
    inbox_apply(f, BR_INBOX_CHATRA_RAW, "shop", body);
    expect_msgs(f, 1, 1, "id:Jp4dT8wE1nKs6YuBc agent pending; id:Mr6fV0yG3pNu8AwDe client pending");
    want = gen_jobs(f, 1, true);
    all = br_asprintf("%s; t:1 comment; t:1 comment", want);
    expect_new_jobs(f, all);
    free(all);
    free(want);

    /* The channel was removed from the config since: dropped, and done. */
    inbox_apply(f, BR_INBOX_CHATRA_RAW, "gone", body);
    free(body);
    body = visitor_webhook("dev-gone", "chat-gone", NULL, "g1", "Anyone?");
    inbox_apply(f, BR_INBOX_CHATRA_RAW, "gone", body);
    free(body);
    /* A record that no longer reads as one: skipped, and done. */
    inbox_apply(f, BR_INBOX_CHATRA, "shop", "{\"event\": 5}");
    assert_int_equal(sql_int(f, "SELECT count(*) FROM conversations"), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM messages"), 2);
    expect_new_jobs(f, "");
}

/* A tracker event reads the task's new comments: one waiting fetch per conversation. */
static void
test_tracker_event(void **state)
{
    struct fx *f = *state;
    int64_t fetch;
    /* With comment keys (Planfix) a fetch has its own lane: it does not wait for the visitor's comments. */
    char lane = br_env_fetch_lane(&f->env);
    char *want = br_asprintf("%c:1 fetch", lane);

    first_event(f);
    assert_int_equal(br_conversation_task_made(&f->env, 1, 1, "77", NULL, NULL, false), 0);
    expect_new_jobs(f, "");

    inbox_apply(f, BR_INBOX_TRACKER, "", "{\"task\":\"77\"}");
    expect_new_jobs(f, want);
    fetch = f->jobs_seen;
    expect_payload(f, want, 0, "{'task': '77'}");
    assert_true(br_queue_waiting(f->env.queue, lane, 1, "fetch"));

    /* While it waits, another event for the task adds nothing. */
    inbox_apply(f, BR_INBOX_TRACKER, "", "{\"task\":\"77\"}");
    expect_new_jobs(f, "");
    /* A task that is not a chat's, no task, and a body that is not JSON: done, nothing queued. */
    inbox_apply(f, BR_INBOX_TRACKER, "", "{\"task\":\"999\"}");
    inbox_apply(f, BR_INBOX_TRACKER, "", "{}");
    inbox_apply(f, BR_INBOX_TRACKER, "", "not json");
    expect_new_jobs(f, "");

    /* Once the fetch ran, the next event queues another. */
    assert_int_equal(br_store_job_finish(f->store, fetch, BR_JOB_DONE, 1, 0, false, NULL, NULL, NULL), 0);
    assert_false(br_queue_waiting(f->env.queue, lane, 1, "fetch"));
    inbox_apply(f, BR_INBOX_TRACKER, "", "{\"task\":\"77\"}");
    expect_new_jobs(f, want);
    free(want);
}

/* ---- state changes -------------------------------------------------------------- */

static void
test_task_is_active(void **state)
{
    struct br_task t = {0};
    (void)state;
    t.state = BR_TASK_PENDING;
    assert_true(br_task_is_active(&t));
    t.state = BR_TASK_OPEN;
    assert_true(br_task_is_active(&t));
    t.state = BR_TASK_CLOSING;
    assert_false(br_task_is_active(&t));
    t.state = BR_TASK_CLOSED;
    assert_false(br_task_is_active(&t));
}

/* reopen: the old task is closed, the next generation opens with the messages still waiting; once only. */
static void
test_reopen(void **state)
{
    struct fx *f = *state;
    struct br_conv c = {0};
    int64_t m1;

    first_event(f);
    visitor_says(f, SAMPLE_CLIENT, "Qm7TzR2pLx9VbN4cW", NULL, "m2", "Hello?");
    skip_jobs(f);
    m1 = msg_id(f, 1, "id:Hk3sP9xQ2mLr7TvZa");
    {
        json_t *carried = ids(m1, 0);
        assert_int_equal(br_conversation_task_made(&f->env, 1, 1, "77", carried, NULL, false), 0);
        json_decref(carried);
    }

    assert_int_equal(br_store_conv_get(f->store, 1, &c), 0);
    assert_int_equal(br_conversation_reopen(&f->env, &c, 1), 0);
    assert_int_equal(c.gen, 2);
    br_conv_dispose(&c);
    assert_int_equal(conv_gen(f, 1), 2);
    expect_task(f, 1, 1, BR_TASK_CLOSED, "77");
    expect_task(f, 1, 2, BR_TASK_PENDING, NULL);
    expect_msgs(f, 1, 1, "id:Hk3sP9xQ2mLr7TvZa client mirrored");
    expect_msgs(f, 1, 2, "id:m2 client pending");
    assert_true(sql_int(f, "SELECT closed_at FROM tasks WHERE conv_id=1 AND gen=1") > 0);
    /* The caller (a job) makes the task itself: reopen queues nothing. */
    expect_new_jobs(f, "");

    /* A second job that saw generation 1 finds the conversation moved on: nothing happens. */
    assert_int_equal(br_store_conv_get(f->store, 1, &c), 0);
    assert_int_equal(br_conversation_reopen(&f->env, &c, 1), 0);
    assert_int_equal(c.gen, 2);
    br_conv_dispose(&c);
    assert_int_equal(conv_gen(f, 1), 2);
    {
        struct br_task t = {0};
        assert_int_equal(br_store_task_get(f->store, 1, 3, &t), BR_ENOTFOUND);
    }
    expect_task(f, 1, 2, BR_TASK_PENDING, NULL);
    expect_new_jobs(f, "");
}

/* task_slot: the row of a generation's task, made once; the conversation's generation does not move. */
static void
test_task_slot(void **state)
{
    struct fx *f = *state;
    struct br_task t = {0};

    first_event(f);
    assert_int_equal(br_store_task_get(f->store, 1, 2, &t), BR_ENOTFOUND);
    assert_int_equal(br_conversation_task_slot(&f->env, 1, 2), 0);
    expect_task(f, 1, 2, BR_TASK_PENDING, NULL);
    assert_int_equal(conv_gen(f, 1), 1);

    /* Again (a job run twice): the row is kept as it is. */
    assert_int_equal(br_conversation_task_joined(&f->env, 1, 2, "55"), 0);
    assert_int_equal(br_conversation_task_slot(&f->env, 1, 2), 0);
    expect_task(f, 1, 2, BR_TASK_OPEN, "55");
    expect_task(f, 1, 1, BR_TASK_PENDING, NULL);
    expect_new_jobs(f, "");
}

/* task_made: the task is open under its id, the messages its description carries are mirrored. */
static void
test_task_made(void **state)
{
    struct fx *f = *state;
    struct br_task t = {0};
    json_t *carried;
    int64_t m1, m2;

    first_event(f);
    visitor_says(f, SAMPLE_CLIENT, "Qm7TzR2pLx9VbN4cW", NULL, "m2", "Hello?");
    visitor_says(f, SAMPLE_CLIENT, "Qm7TzR2pLx9VbN4cW", NULL, "m3", "Typed after the task was made");
    skip_jobs(f);
    m1 = msg_id(f, 1, "id:Hk3sP9xQ2mLr7TvZa");
    m2 = msg_id(f, 1, "id:m2");

    carried = ids(m1, m2);
    assert_int_equal(br_conversation_task_made(&f->env, 1, 1, "77", carried, NULL, false), 0);
    json_decref(carried);
    expect_task(f, 1, 1, BR_TASK_OPEN, "77");
    expect_msgs(f, 1, 1, "id:Hk3sP9xQ2mLr7TvZa client mirrored; id:m2 client mirrored; id:m3 client pending");
    assert_int_equal(br_store_task_by_tracker_id(f->store, "77", &t), 0);
    assert_int_equal(t.conv_id, 1);
    assert_int_equal(t.gen, 1);
    br_task_dispose(&t);
    /* No previous task: no note. */
    expect_new_jobs(f, "");
}

/* task_made after a transcript asked to close the task: it keeps its "closing" mark. */
static void
test_task_made_keeps_closing(void **state)
{
    struct fx *f = *state;

    first_event(f);
    chatra_sample(f, "chat-transcript.json");
    expect_task(f, 1, 1, BR_TASK_CLOSING, NULL);
    skip_jobs(f);
    assert_int_equal(br_conversation_task_made(&f->env, 1, 1, "78", NULL, NULL, false), 0);
    expect_task(f, 1, 1, BR_TASK_CLOSING, "78");
    expect_new_jobs(f, "");
}

/*
 * task_made of a task made completed (the visitor had left before it was
 * made): recorded closed, and the timeline says "created" then "closed".
 */
static void
test_task_made_closed(void **state)
{
    struct fx *f = *state;
    json_t *tl = NULL, *v;
    const char *actions[2];
    size_t i, n = 0;
    bool truncated;

    first_event(f);
    chatra_sample(f, "chat-transcript.json");
    skip_jobs(f);
    assert_int_equal(br_conversation_task_made(&f->env, 1, 1, "79", NULL, NULL, true), 0);
    expect_task(f, 1, 1, BR_TASK_CLOSED, "79");
    expect_new_jobs(f, "");
    assert_int_equal(br_store_timeline(f->store, 1, 100, &tl, &truncated), 0);
    json_array_foreach(tl, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "type")), "task") == 0 && n < 2)
            actions[n++] = json_string_value(json_object_get(v, "action"));
    }
    assert_int_equal(n, 2);
    assert_string_equal(actions[0], "created");
    assert_string_equal(actions[1], "closed");
    json_decref(tl);
}

/* task_made with the previous task: a note links it, in the same commit. */
static void
test_task_made_previous_task(void **state)
{
    struct fx *f = *state;
    struct br_conv c = {0};

    first_event(f);
    assert_int_equal(br_conversation_task_made(&f->env, 1, 1, "41", NULL, NULL, false), 0);
    assert_int_equal(br_store_conv_get(f->store, 1, &c), 0);
    assert_int_equal(br_conversation_reopen(&f->env, &c, 1), 0);
    br_conv_dispose(&c);
    assert_int_equal(br_conversation_task_slot(&f->env, 1, 2), 0);

    assert_int_equal(br_conversation_task_made(&f->env, 1, 2, "42", NULL, "41", false), 0);
    expect_task(f, 1, 2, BR_TASK_OPEN, "42");
    expect_task(f, 1, 1, BR_TASK_CLOSED, "41");
    expect_new_jobs(f, "t:1 note");
    expect_payload(f, "t:1 note", 0,
                   "{'gen': 2, 'gen_at': 2, 'text': 'previous_task', 'ctx': {'previous_task': {'id': '41'}}}");
}

/* task_joined: the chat joins a task the bridge did not make. */
static void
test_task_joined(void **state)
{
    struct fx *f = *state;
    struct br_task t = {0};

    first_event(f);
    assert_int_equal(br_conversation_task_joined(&f->env, 1, 1, "300"), 0);
    expect_task(f, 1, 1, BR_TASK_OPEN, "300");
    assert_int_equal(br_store_task_by_tracker_id(f->store, "300", &t), 0);
    assert_int_equal(t.conv_id, 1);
    br_task_dispose(&t);
    /* Its messages are still to be written as comments. */
    expect_msgs(f, 1, 1, "id:Hk3sP9xQ2mLr7TvZa client pending");
    expect_new_jobs(f, "");
}

/* task_closed: the task is completed; the visitor's next message opens generation 2 (new_task_if_no_active). */
static void
test_task_closed(void **state)
{
    struct fx *f = *state;
    json_t *carried;
    char *want, *all;

    first_event(f);
    carried = ids(msg_id(f, 1, "id:Hk3sP9xQ2mLr7TvZa"), 0);
    assert_int_equal(br_conversation_task_made(&f->env, 1, 1, "77", carried, NULL, false), 0);
    json_decref(carried);
    assert_int_equal(br_conversation_task_closed(&f->env, 1, 1), 0);
    expect_task(f, 1, 1, BR_TASK_CLOSED, "77");
    assert_true(sql_int(f, "SELECT closed_at FROM tasks WHERE conv_id=1 AND gen=1") > 0);
    expect_new_jobs(f, "");

    visitor_says(f, SAMPLE_CLIENT, "Qm7TzR2pLx9VbN4cW", NULL, "m2", "Hello, one more question");
    assert_int_equal(conv_gen(f, 1), 2);
    expect_task(f, 1, 1, BR_TASK_CLOSED, "77");
    expect_task(f, 1, 2, BR_TASK_PENDING, NULL);
    expect_msgs(f, 1, 1, "id:Hk3sP9xQ2mLr7TvZa client mirrored");
    expect_msgs(f, 1, 2, "id:m2 client pending");
    /* No second profile: that is fetched with generation 1 only. */
    want = gen_jobs(f, 1, false);
    all = br_asprintf("%s; t:1 comment", want);
    expect_new_jobs(f, all);
    free(all);
    free(want);
    if (f->contacts)
        expect_payload(f, "t:1 contact", 0, "{'gen': 2}");
    expect_payload_has(f, "t:1 task", 0, "{'gen': 2}");
}

/* msg_to_gen: a message goes to another generation's task. */
static void
test_msg_to_gen(void **state)
{
    struct fx *f = *state;
    struct br_msg m = {0};
    int64_t m1;

    first_event(f);
    m1 = msg_id(f, 1, "id:Hk3sP9xQ2mLr7TvZa");
    assert_int_equal(br_conversation_task_slot(&f->env, 1, 2), 0);
    assert_int_equal(br_conversation_msg_to_gen(&f->env, m1, 2), 0);
    assert_int_equal(br_store_msg_get(f->store, m1, &m), 0);
    assert_int_equal(m.gen, 2);
    assert_int_equal(m.state, BR_MSG_PENDING);
    br_msg_dispose(&m);
    expect_msgs(f, 1, 1, "");
    expect_msgs(f, 1, 2, "id:Hk3sP9xQ2mLr7TvZa client pending");
    expect_new_jobs(f, "");
}

/* msgs_mirrored: a comment's message and the ones it carried are mirrored under its id (caller's transaction). */
static void
test_msgs_mirrored(void **state)
{
    struct fx *f = *state;
    int64_t h, j, m;
    char *sql;

    first_event(f);
    chatra_sample(f, "chat-fragment-agent-and-system.json");
    skip_jobs(f);
    h = msg_id(f, 1, "id:Hk3sP9xQ2mLr7TvZa");
    j = msg_id(f, 1, "id:Jp4dT8wE1nKs6YuBc");
    m = msg_id(f, 1, "id:Mr6fV0yG3pNu8AwDe");

    assert_int_equal(br_store_begin(f->store), 0);
    {
        json_t *more = ids(m, 0);
        assert_int_equal(br_conversation_msgs_mirrored(&f->env, h, more, "cm-9"), 0);
        json_decref(more);
    }
    assert_int_equal(br_store_commit(f->store), 0);
    expect_msgs(f, 1, 1,
                "id:Hk3sP9xQ2mLr7TvZa client mirrored; id:Jp4dT8wE1nKs6YuBc agent pending; "
                "id:Mr6fV0yG3pNu8AwDe client mirrored");
    sql = br_asprintf("SELECT comment_id FROM messages WHERE id=%lld", (long long)h);
    expect_sql_text(f, sql, "cm-9");
    free(sql);
    sql = br_asprintf("SELECT comment_id FROM messages WHERE id=%lld", (long long)m);
    expect_sql_text(f, sql, "cm-9");
    free(sql);
    sql = br_asprintf("SELECT comment_id FROM messages WHERE id=%lld", (long long)j);
    expect_sql_text(f, sql, NULL);
    free(sql);

    /* msg 0: only the ones in more. */
    assert_int_equal(br_store_begin(f->store), 0);
    {
        json_t *more = ids(j, 0);
        assert_int_equal(br_conversation_msgs_mirrored(&f->env, 0, more, "cm-10"), 0);
        json_decref(more);
    }
    assert_int_equal(br_store_commit(f->store), 0);
    expect_msgs(f, 1, 1,
                "id:Hk3sP9xQ2mLr7TvZa client mirrored; id:Jp4dT8wE1nKs6YuBc agent mirrored; "
                "id:Mr6fV0yG3pNu8AwDe client mirrored");
    sql = br_asprintf("SELECT comment_id FROM messages WHERE id=%lld", (long long)j);
    expect_sql_text(f, sql, "cm-10");
    free(sql);
    sql = br_asprintf("SELECT comment_id FROM messages WHERE id=%lld", (long long)h);
    expect_sql_text(f, sql, "cm-9");
    free(sql);

    /* Rolled back with the caller's transaction. */
    assert_int_equal(br_store_begin(f->store), 0);
    assert_int_equal(br_conversation_msgs_mirrored(&f->env, h, NULL, "cm-11"), 0);
    br_store_rollback(f->store);
    sql = br_asprintf("SELECT comment_id FROM messages WHERE id=%lld", (long long)h);
    expect_sql_text(f, sql, "cm-9");
    free(sql);
    expect_new_jobs(f, "");
}

/*
 * br_conversation_note: the note's generation, the generation at queue
 * time (a gen-0 note is dropped when they differ at run time), the text's
 * key, the context and the referenced conversation.
 */
static void
test_note(void **state)
{
    struct fx *f = *state;
    struct br_conv c = {0};
    json_t *p;

    first_event(f);
    assert_int_equal(br_store_begin(f->store), 0);
    assert_int_equal(br_conversation_note(&f->env, 1, 0, BR_TEXT_NEW_VISIT, NULL, 0), 0);
    assert_int_equal(br_conversation_note(&f->env, 1, 1, BR_TEXT_CONTINUES_IN,
                                          json_pack("{s:s, s:b}", "email", MARIA, "verified", 1), 7),
                     0);
    assert_int_equal(br_store_commit(f->store), 0);
    expect_new_jobs(f, "t:1 note; t:1 note");
    expect_payload(f, "t:1 note", 0, "{'gen': 0, 'gen_at': 1, 'text': 'new_visit', 'ctx': {}}");
    expect_payload(f, "t:1 note", 1,
                   "{'gen': 1, 'gen_at': 1, 'text': 'continues_in', 'ref_conv': 7, "
                   "'ctx': {'email': '" MARIA "', 'verified': true}}");

    /* A new generation opens before the gen-0 note runs: the generation it saw is not the current one. */
    assert_int_equal(br_store_conv_get(f->store, 1, &c), 0);
    assert_int_equal(br_conversation_reopen(&f->env, &c, 1), 0);
    br_conv_dispose(&c);
    p = batch_payload(f, "t:1 note", 0);
    assert_int_not_equal(json_integer_value(json_object_get(p, "gen_at")), conv_gen(f, 1));
    json_decref(p);

    /* One queued now sees generation 2; one for a conversation the store does not know, none. */
    assert_int_equal(br_store_begin(f->store), 0);
    assert_int_equal(br_conversation_note(&f->env, 1, 0, BR_TEXT_NEW_VISIT, NULL, 0), 0);
    assert_int_equal(br_conversation_note(&f->env, 99, 0, BR_TEXT_NEW_VISIT, NULL, 0), 0);
    assert_int_equal(br_store_commit(f->store), 0);
    expect_new_jobs(f, "t:1 note; t:99 note");
    expect_payload(f, "t:1 note", 0, "{'gen': 0, 'gen_at': 2, 'text': 'new_visit', 'ctx': {}}");
    expect_payload(f, "t:99 note", 0, "{'gen': 0, 'gen_at': 0, 'text': 'new_visit', 'ctx': {}}");

    /* In the caller's transaction: a rollback takes it back. */
    assert_int_equal(br_store_begin(f->store), 0);
    assert_int_equal(br_conversation_note(&f->env, 1, 2, BR_TEXT_PREVIOUS_TASK, NULL, 0), 0);
    br_store_rollback(f->store);
    expect_new_jobs(f, "");
}

/* Each test on the tracker kind named; Planfix keeps contacts, Redmine does not. */
#define ON(kind, t) \
    { #t " [" #kind "]", t, setup_##kind, teardown, NULL }
#define ON_BOTH(t) ON(planfix, t), ON(redmine, t)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        ON(planfix, test_first_event),
        ON(planfix_companies, test_first_event),
        ON(redmine, test_first_event),
        ON_BOTH(test_same_message_twice),
        ON_BOTH(test_transcript),
        ON(planfix_agents_off, test_mirror_agent_messages),
        ON(planfix_agents_with_visitor, test_mirror_agent_messages),
        ON_BOTH(test_email_join),
        ON_BOTH(test_late_email_joins_threads),
        ON_BOTH(test_late_email_older_survives),
        ON_BOTH(test_new_chat),
        ON_BOTH(test_other_inbox_rows),
        ON_BOTH(test_tracker_event),
        cmocka_unit_test(test_task_is_active),
        ON_BOTH(test_reopen),
        ON_BOTH(test_task_slot),
        ON_BOTH(test_task_made),
        ON_BOTH(test_task_made_keeps_closing),
        ON_BOTH(test_task_made_closed),
        ON_BOTH(test_task_made_previous_task),
        ON_BOTH(test_task_joined),
        ON_BOTH(test_task_closed),
        ON_BOTH(test_msg_to_gen),
        ON_BOTH(test_msgs_mirrored),
        ON_BOTH(test_note),
    };

    br_log_set_level(BR_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
