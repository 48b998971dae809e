/*
 * store.c - the store itself: opening a database, its schema and the
 * steps that upgrade an older one, the statement cache and the binding
 * helpers every store_*.c file uses (store_sql.h), transactions, the
 * tracking of failed writes, and the installation's id and meta values.
 * The tables' own calls are in store_inbox.c, store_people.c,
 * store_tasks.c, store_jobs.c and the others (store_sql.h lists them).
 */
#include "store.h"
#include "store_sql.h"

#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/*
 * Writes work again once none failed for this long after one went
 * through.  On a disk that is nearly full, small writes still fit while
 * larger ones do not; the store counts as failing until that is over,
 * rather than saying so, and logging it, at every other write.
 */
#define RECOVER_MS 1000

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE inbox("
    "  id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, channel TEXT NOT NULL,"
    "  body TEXT NOT NULL, received_at INTEGER NOT NULL, processed_at INTEGER);"
    "CREATE INDEX inbox_pending ON inbox(id) WHERE processed_at IS NULL;"
    /*
     * The identity map: a person (one tracker contact) has e-mails and,
     * through its conversations (one per channel), Chatra client ids.
     */
    "CREATE TABLE persons("
    "  id INTEGER PRIMARY KEY, contact_id TEXT, contact_made INTEGER NOT NULL DEFAULT 0,"
    "  company_id TEXT, merged_into INTEGER,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE person_emails("
    "  email TEXT PRIMARY KEY, person_id INTEGER NOT NULL, verified INTEGER NOT NULL,"
    "  added_at INTEGER NOT NULL);"
    "CREATE INDEX person_emails_person ON person_emails(person_id);"
    "CREATE TABLE companies("
    "  domain TEXT PRIMARY KEY, contact_id TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE merges("
    "  id INTEGER PRIMARY KEY, channel TEXT NOT NULL, email TEXT, verified INTEGER NOT NULL,"
    "  survivor_conv INTEGER NOT NULL, merged_conv INTEGER NOT NULL,"
    "  survivor_person INTEGER NOT NULL, merged_person INTEGER NOT NULL,"
    "  clients TEXT NOT NULL, emails TEXT NOT NULL, at INTEGER NOT NULL, undone_at INTEGER);"
    "CREATE TABLE conversations("
    "  id INTEGER PRIMARY KEY, channel TEXT NOT NULL, person_id INTEGER NOT NULL, client_id TEXT NOT NULL,"
    "  chat_id TEXT, name TEXT, email TEXT, phone TEXT, visitor_json TEXT,"
    "  gen INTEGER NOT NULL DEFAULT 0, merged_into INTEGER,"
    "  profile_json TEXT, profile_state INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX conversations_person ON conversations(person_id, channel);"
    "CREATE TABLE conv_clients("
    "  channel TEXT NOT NULL, client_id TEXT NOT NULL, conv_id INTEGER NOT NULL, chat_id TEXT,"
    "  PRIMARY KEY(channel, client_id));"
    "CREATE TABLE tasks("
    "  conv_id INTEGER NOT NULL, gen INTEGER NOT NULL, task_id TEXT, state INTEGER NOT NULL, source_key TEXT,"
    "  closed_at INTEGER,"
    "  created_at INTEGER NOT NULL, PRIMARY KEY(conv_id, gen));"
    "CREATE INDEX tasks_tracker ON tasks(task_id);"
    "CREATE TABLE messages("
    "  id INTEGER PRIMARY KEY, conv_id INTEGER NOT NULL, gen INTEGER NOT NULL,"
    "  key TEXT NOT NULL, type TEXT NOT NULL, agent_id TEXT, text TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, state INTEGER NOT NULL, comment_id TEXT,"
    "  UNIQUE(conv_id, key));"
    "CREATE TABLE tracker_comments("
    "  task_id TEXT NOT NULL, comment_id TEXT NOT NULL, origin INTEGER NOT NULL,"
    "  seen_at INTEGER NOT NULL, PRIMARY KEY(task_id, comment_id));"
    "CREATE TABLE relays("
    "  id INTEGER PRIMARY KEY, conv_id INTEGER NOT NULL, agent_id TEXT NOT NULL,"
    "  text TEXT NOT NULL, created_at INTEGER NOT NULL, echoed INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX relays_conv ON relays(conv_id, echoed);"
    "CREATE TABLE jobs("
    "  id INTEGER PRIMARY KEY, lane TEXT NOT NULL, upstream TEXT NOT NULL, kind TEXT NOT NULL,"
    "  conv_id INTEGER NOT NULL, payload TEXT NOT NULL, state INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, recover INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT, last_request TEXT, last_response TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    /*
     * Partial indexes: SQLite uses one only when the query repeats its
     * condition literally ("state=0" alone does not imply "state < 2" to
     * the planner), so every query on open jobs says "state<2" or
     * "state<>2" too.  Finished jobs then cost nothing.
     */
    "CREATE INDEX jobs_open ON jobs(upstream, state, next_at) WHERE state < 2;"
    "CREATE INDEX jobs_lane ON jobs(lane, id) WHERE state <> 2;";

int64_t
br_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sqlite3_stmt *
br_sql_stmt(struct br_store *s, const char *sql)
{
    sqlite3_stmt *st;

    for (size_t i = 0; i < s->ncache; i++) {
        if (s->cache[i].sql == sql) {
            sqlite3_reset(s->cache[i].st);
            sqlite3_clear_bindings(s->cache[i].st);
            return s->cache[i].st;
        }
    }
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        br_error("store: cannot prepare statement: %s", sqlite3_errmsg(s->db));
        abort(); /* a programming error: the SQL is fixed text */
    }
    if (s->ncache == STMT_CACHE) {
        br_error("store: statement cache too small");
        abort();
    }
    s->cache[s->ncache].sql = sql;
    s->cache[s->ncache].st = st;
    s->ncache++;
    return st;
}

sqlite3_stmt *
br_sql_bind(struct br_store *s, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st = br_sql_stmt(s, sql);
    va_list ap;
    int i = 1;

    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++, i++) {
        switch (*f) {
        case 't': {
            const char *v = va_arg(ap, const char *);
            if (v)
                sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(st, i);
            break;
        }
        case 'i':
            sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
            break;
        case 'n':
            sqlite3_bind_int(st, i, va_arg(ap, int));
            break;
        }
    }
    va_end(ap);
    return st;
}

/*
 * Whether an SQLite error is about the store's surroundings (a full disk,
 * an I/O error, a lock held too long, no memory) rather than the query:
 * such a failure can pass by itself, and the same write succeeds later.
 */
static bool
env_error(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
        return true;
    default:
        return false;
    }
}

/*
 * Records a failed statement.  A failure of the surroundings marks the
 * store failing and is logged once, when it starts (a full disk under
 * intake would otherwise log a line per webhook); any other failure is a
 * bug or bad data, logged each time.
 */
void
br_sql_failed(struct br_store *s, int rc, const char *msg)
{
    if (msg == NULL)
        msg = sqlite3_errstr(rc);
    if (!env_error(rc)) {
        br_error("store: %s", msg);
        return;
    }
    s->failures++;
    s->ok_since = 0;
    snprintf(s->error, sizeof(s->error), "%s", msg);
    if (s->failing) {
        s->failed_now++;
        br_debug("store: %s", msg);
        return;
    }
    s->failing = true;
    s->failing_since = br_now_ms();
    s->failed_now = 1;
    br_error("store: writes fail: %s; webhooks are answered 503 and jobs wait until the store takes writes again",
             msg);
}

/* A write reached the disk: once none failed for RECOVER_MS, the store works again. */
static void
wrote(struct br_store *s)
{
    if (s->failing && s->ok_since == 0)
        s->ok_since = br_now_ms();
}

static void
check_recovered(struct br_store *s)
{
    if (!s->failing || s->ok_since == 0 || br_now_ms() - s->ok_since < RECOVER_MS)
        return;
    s->failing = false;
    br_info("store: writes work again, after %.1f s and %llu failed write(s)",
            (double)(s->ok_since - s->failing_since) / 1000.0, (unsigned long long)s->failed_now);
}

int
br_sql_done(struct br_store *s, sqlite3_stmt *st)
{
    sqlite3_int64 before = sqlite3_total_changes64(s->db);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        br_sql_failed(s, rc, sqlite3_errmsg(s->db));
        return BR_EIO;
    }
    /* Outside a transaction a change is committed at once: the disk took it. */
    if (sqlite3_get_autocommit(s->db) && sqlite3_total_changes64(s->db) != before)
        wrote(s);
    return 0;
}

int
br_sql_row(struct br_store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 0;
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return BR_ENOTFOUND;
    br_sql_failed(s, rc, sqlite3_errmsg(s->db));
    return BR_EIO;
}

char *
br_sql_col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    return v ? br_strdup((const char *)v) : NULL;
}

json_t *
br_sql_column_list(struct br_store *s, sqlite3_stmt *st)
{
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, json_string((const char *)sqlite3_column_text(st, 0)));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        br_sql_failed(s, rc, sqlite3_errmsg(s->db));
    return arr;
}

static int
exec(struct br_store *s, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        br_sql_failed(s, rc, err ? err : sqlite3_errmsg(s->db));
        sqlite3_free(err);
        return BR_EIO;
    }
    return 0;
}

static void
make_instance_id(char out[40])
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (unsigned char)(rand() ^ (int)time(NULL));
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
             r[13], r[14], r[15]);
}

/*
 * The schema's version lives in PRAGMA user_version.  A later release
 * that changes the schema adds a step here (ALTER TABLE ... ADD COLUMN
 * in a transaction) and raises SCHEMA_VERSION; a database is never
 * silently used with a shape the code does not expect.
 */
#define SCHEMA_VERSION 11

/* migrations[i] takes a store from version i + 1 to i + 2. */
static const char *const migrations[SCHEMA_VERSION - 1] = {
    /* 2: a conversation's devices without a scan of every device (merges, identities). */
    "CREATE INDEX conv_clients_conv ON conv_clients(conv_id);",
    /* 3: the tracker's webhooks are applied before waiting chat events. */
    "CREATE INDEX inbox_pending_kind ON inbox(kind, id) WHERE processed_at IS NULL;",
    /*
     * 4: employees known by e-mail: the tracker user found for an e-mail
     * (NULL: nobody, asked again later), and the e-mails of Chatra agents
     * as webhooks name them.
     */
    "CREATE TABLE employee_users("
    "  tracker TEXT NOT NULL, email TEXT NOT NULL, tracker_user TEXT, checked_at INTEGER NOT NULL,"
    "  PRIMARY KEY(tracker, email));"
    "CREATE TABLE chatra_agents("
    "  channel TEXT NOT NULL, agent_id TEXT NOT NULL, email TEXT NOT NULL, seen_at INTEGER NOT NULL,"
    "  PRIMARY KEY(channel, agent_id));",
    /*
     * 5: the conversations' timelines (activity.h, store_activity.c): one
     * row per thing that happened, written with the change it describes.
     * Two triggers keep that promise where the change is one statement:
     * a job's end (done, dead), its retry and its discard write a row in
     * the same statement; and every row makes its conversation the latest
     * active (updated_at orders the admin page's list).
     */
    "CREATE TABLE activity("
    "  id INTEGER PRIMARY KEY, conv_id INTEGER NOT NULL, at INTEGER NOT NULL, type TEXT NOT NULL,"
    "  data TEXT NOT NULL);"
    "CREATE INDEX activity_conv ON activity(conv_id, id);"
    "CREATE INDEX activity_at ON activity(at);"
    "CREATE TRIGGER activity_touch AFTER INSERT ON activity BEGIN"
    "  UPDATE conversations SET updated_at=new.at WHERE id=new.conv_id AND updated_at<new.at;"
    "END;"
    "CREATE TRIGGER jobs_activity AFTER UPDATE OF state ON jobs"
    "  WHEN new.conv_id<>0 AND new.state<>old.state AND (new.state IN (2,3,4) OR old.state IN (3,4)) BEGIN"
    "  INSERT INTO activity(conv_id, at, type, data) VALUES(new.conv_id, new.updated_at, 'job',"
    "    json_object('job_id', new.id, 'state', new.state, 'attempts', new.attempts, 'error', new.last_error));"
    "END;",
    /*
     * 6: the CRM card (crm.h): what the CRM answered for an e-mail (card
     * NULL: nobody), kept for enrich's cache_ttl_s; and per conversation
     * the card found for its person and the card last written into its
     * task (so that an unchanged card is never written twice).
     */
    "CREATE TABLE crm_cache("
    "  email TEXT PRIMARY KEY, card TEXT, fetched_at INTEGER NOT NULL);"
    "ALTER TABLE conversations ADD COLUMN crm_state INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE conversations ADD COLUMN crm_card TEXT;"
    "ALTER TABLE conversations ADD COLUMN crm_shown TEXT;",
    /*
     * 7: the tracker's daily budget (budget.h, store_usage.c): the
     * requests sent to the tracker per day (the day's index since the
     * epoch, in UTC days), so that a restart goes on counting.
     */
    "CREATE TABLE tracker_usage(day INTEGER PRIMARY KEY, requests INTEGER NOT NULL);",
    /*
     * 8: the tasks open in the tracker, without a scan of every task ever
     * made: the engine asks at each check of the poll (poll_plan.h).
     */
    "CREATE INDEX tasks_open ON tasks(conv_id) WHERE state=1;",
    /*
     * 9: replies first (store_jobs.c): the open jobs that carry a reply
     * (the tracker's comments read, the poll, the answer sent to the
     * chat, and the employee look-up a fetch may wait for) are found
     * without a walk past the waiting comments.
     */
    "CREATE INDEX jobs_urgent ON jobs(upstream, next_at) WHERE state < 2 AND kind IN ('fetch', 'poll', 'reply', 'user');",
    /*
     * 10: the tracker's requests by hour of each day (budget.h): the day's
     * projection follows the shape of the days before (hour 0 to 23 of the
     * budget's day).
     */
    "CREATE TABLE tracker_usage_hours(day INTEGER NOT NULL, hour INTEGER NOT NULL, requests INTEGER NOT NULL,"
    "  PRIMARY KEY(day, hour)) WITHOUT ROWID;",
    /*
     * 11: a task's messages, and a comment's run of them, without a walk
     * past every message of a long chat (store_tasks.c).
     */
    "CREATE INDEX messages_gen ON messages(conv_id, gen);",
};

static int
migrate(struct br_store *s, const char *path)
{
    sqlite3_stmt *st = br_sql_bind(s, "PRAGMA user_version", "");
    int version = br_sql_row(s, st) == 0 ? sqlite3_column_int(st, 0) : -1;
    int tables;

    sqlite3_reset(st);
    st = br_sql_bind(s, "SELECT count(*) FROM sqlite_master WHERE type='table'", "");
    tables = br_sql_row(s, st) == 0 ? sqlite3_column_int(st, 0) : -1;
    sqlite3_reset(st);
    if (version < 0 || tables < 0)
        return BR_EIO;
    if (version == 0 && tables > 0) {
        br_error("store: %s was made by a development build without a schema version; move it away to start afresh",
                 path);
        return BR_EINVAL;
    }
    if (version > SCHEMA_VERSION) {
        br_error("store: %s has schema version %d, newer than this chatra-bridge knows (%d)", path, version,
                 SCHEMA_VERSION);
        return BR_EINVAL;
    }
    if (version == 0) {
        if (exec(s, "BEGIN") || exec(s, schema_sql) || exec(s, "PRAGMA user_version=1") || exec(s, "COMMIT"))
            return BR_EIO;
        version = 1;
    }
    for (; version < SCHEMA_VERSION; version++) {
        char set[40];
        snprintf(set, sizeof(set), "PRAGMA user_version=%d", version + 1);
        if (exec(s, "BEGIN") || exec(s, migrations[version - 1]) || exec(s, set) || exec(s, "COMMIT")) {
            br_error("store: %s: cannot upgrade the schema to version %d: %s", path, version + 1,
                     sqlite3_errmsg(s->db));
            exec(s, "ROLLBACK");
            return BR_EIO;
        }
    }
    return 0;
}

int
br_store_open(struct br_store **out, const char *path)
{
    struct br_store *s = br_calloc(1, sizeof(*s));
    sqlite3_stmt *st;
    int rc;

    *out = NULL;
    rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        br_error("store: cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        br_store_free(s);
        return BR_EIO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    /*
     * WAL with synchronous=NORMAL survives a killed process (the WAL is
     * in the OS page cache); FULL would add an fsync per commit, which
     * only matters for power loss.  Admins who want that can change it here.
     */
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;") ||
        migrate(s, path) != 0) {
        br_store_free(s);
        return BR_EIO;
    }
    st = br_sql_bind(s, "SELECT value FROM meta WHERE key='instance_id'", "");
    if (br_sql_row(s, st) == 0) {
        snprintf(s->instance_id, sizeof(s->instance_id), "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_reset(st);
    } else {
        make_instance_id(s->instance_id);
        if (br_sql_done(s, br_sql_bind(s, "INSERT INTO meta(key, value) VALUES('instance_id', ?)", "t",
                                       s->instance_id))) {
            br_store_free(s);
            return BR_EIO;
        }
    }
    *out = s;
    return 0;
}

void
br_sql_drop_queued(struct br_store *s)
{
    for (size_t i = 0; i < s->nqueued; i++) {
        free(s->queued[i].channel);
        free(s->queued[i].body);
    }
    s->nqueued = 0;
}

void
br_store_free(struct br_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ncache; i++)
        sqlite3_finalize(s->cache[i].st);
    br_sql_drop_queued(s);
    free(s->queued);
    if (s->db)
        sqlite3_close(s->db);
    free(s);
}

int
br_store_begin(struct br_store *s)
{
    s->changes_at_begin = sqlite3_total_changes64(s->db);
    return exec(s, "BEGIN IMMEDIATE");
}

int
br_store_commit(struct br_store *s)
{
    int rc = exec(s, "COMMIT");
    /*
     * SQLite keeps the transaction open after a COMMIT that failed (disk
     * full, busy) for the caller to try again; nobody here does, and an
     * open transaction would make every later BEGIN fail.
     */
    if (rc)
        br_store_rollback(s);
    /* A transaction that changed nothing wrote nothing: it proves nothing about the disk. */
    else if (sqlite3_total_changes64(s->db) != s->changes_at_begin)
        wrote(s);
    return rc;
}

void
br_store_rollback(struct br_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        exec(s, "ROLLBACK");
}

int
br_store_end(struct br_store *s, int rc)
{
    if (rc == 0)
        rc = br_store_commit(s);
    if (rc)
        br_store_rollback(s);
    return rc;
}

int
br_store_ping(struct br_store *s)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT 1", "");
    int rc = br_sql_row(s, st);
    sqlite3_reset(st);
    return rc;
}

void
br_store_health(struct br_store *s, struct br_store_health *out)
{
    check_recovered(s);
    out->failing = s->failing;
    out->since = s->failing ? s->failing_since : 0;
    out->failed = s->failing ? s->failed_now : 0;
    out->error = s->failing ? s->error : NULL;
}

bool
br_store_failing(struct br_store *s)
{
    check_recovered(s);
    return s->failing;
}

uint64_t
br_store_failures(struct br_store *s)
{
    return s->failures;
}

int
br_store_touch(struct br_store *s)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO meta(key, value) VALUES('written_at', ?) "
                                         "ON CONFLICT(key) DO UPDATE SET value=excluded.value", "i", br_now_ms()));
}

const char *
br_store_instance_id(struct br_store *s)
{
    return s->instance_id;
}

void
br_store_source_key(struct br_store *s, enum br_source_kind kind, int64_t id, char out[BR_SOURCE_KEY_LEN + 1])
{
    /* 24 characters of the installation's UUID, then 1 hex digit of kind and 11 of id. */
    snprintf(out, BR_SOURCE_KEY_LEN + 1, "%.24s%x%011llx", s->instance_id, (unsigned)kind & 0xf,
             (unsigned long long)id & 0xfffffffffffULL);
}

bool
br_store_source_key_is_ours(struct br_store *s, const char *key)
{
    return key && strlen(key) == BR_SOURCE_KEY_LEN && strncmp(key, s->instance_id, 24) == 0;
}

/* ---- meta: the bridge's own small values ---- */

int64_t
br_store_meta_int(struct br_store *s, const char *key, int64_t def)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT value FROM meta WHERE key=?", "t", key);
    int64_t v = def;
    if (br_sql_row(s, st) == 0) {
        v = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return v;
}

int
br_store_meta_set_int(struct br_store *s, const char *key, int64_t value)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)value);
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO meta(key, value) VALUES(?,?) "
                                         "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                                      "tt", key, text));
}
