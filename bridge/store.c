#include "store.h"

#include "log.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/*
 * Statements are prepared once and cached by the address of their SQL
 * text: every query below is a string literal, so the address is a
 * stable key.
 */
#define STMT_CACHE 128
/*
 * Writes work again once none failed for this long after one went
 * through.  On a disk that is nearly full, small writes still fit while
 * larger ones do not; the store counts as failing until that is over,
 * rather than saying so, and logging it, at every other write.
 */
#define RECOVER_MS 1000

struct br_store {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[STMT_CACHE];
    size_t ncache;
    char instance_id[40];
    /* Inbox rows queued for the next br_store_inbox_flush. */
    struct queued_row {
        int kind;
        char *channel;
        char *body;
        size_t len;
        int64_t at;
    } *queued;
    size_t nqueued, capqueued;
    /*
     * Write health: set by a statement that failed for a reason outside
     * the query (see env_error), cleared once writes have reached the disk
     * for RECOVER_MS without one failing.  failures counts every such
     * failure, for the engine.
     */
    bool failing;
    int64_t failing_since;
    int64_t ok_since;          /* while failing: when the writes that go through began (0: the last failed) */
    uint64_t failed_now;       /* failed writes since failing_since */
    uint64_t failures;
    char error[160];
    int64_t changes_at_begin;  /* sqlite3_total_changes64 when the transaction began */
};

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

static sqlite3_stmt *
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

/*
 * Binds arguments by a format string: 't' text (NULL binds NULL),
 * 'i' int64_t, 'n' int.
 */
static sqlite3_stmt *
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
static void
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

static int
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

static int
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

static json_t *br_sql_column_list(struct br_store *s, sqlite3_stmt *st);

static char *
br_sql_col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    return v ? br_strdup((const char *)v) : NULL;
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
#define SCHEMA_VERSION 4

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

static void
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

/* ---- inbox ---- */

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

void
br_inbox_row_dispose(struct br_inbox_row *r)
{
    free(r->channel);
    free(r->body);
    r->channel = r->body = NULL;
}

/* ---- conversations ---- */

void
br_conv_dispose(struct br_conv *c)
{
    free(c->channel);
    free(c->client_id);
    free(c->chat_id);
    free(c->name);
    free(c->email);
    free(c->phone);
    free(c->visitor_json);
    free(c->contact_id);
    free(c->profile_json);
    free(c->company_id);
    memset(c, 0, sizeof(*c));
}

#define CONV_COLS \
    "c.id, c.channel, c.client_id, c.chat_id, c.name, c.email, c.phone, c.visitor_json, " \
    "(SELECT contact_id FROM persons p WHERE p.id=c.person_id), c.gen, c.person_id, c.merged_into, " \
    "c.profile_json, c.profile_state, (SELECT contact_made FROM persons p WHERE p.id=c.person_id), " \
    "(SELECT company_id FROM persons p WHERE p.id=c.person_id)"

static int
conv_row(struct br_store *s, sqlite3_stmt *st, struct br_conv *c)
{
    int rc = br_sql_row(s, st);
    if (rc)
        return rc;
    c->id = sqlite3_column_int64(st, 0);
    c->channel = br_sql_col_str(st, 1);
    c->client_id = br_sql_col_str(st, 2);
    c->chat_id = br_sql_col_str(st, 3);
    c->name = br_sql_col_str(st, 4);
    c->email = br_sql_col_str(st, 5);
    c->phone = br_sql_col_str(st, 6);
    c->visitor_json = br_sql_col_str(st, 7);
    c->contact_id = br_sql_col_str(st, 8);
    c->gen = sqlite3_column_int(st, 9);
    c->person_id = sqlite3_column_int64(st, 10);
    c->merged_into = sqlite3_column_int64(st, 11);
    c->profile_json = br_sql_col_str(st, 12);
    c->profile_state = sqlite3_column_int(st, 13);
    c->contact_made = sqlite3_column_int(st, 14) != 0;
    c->company_id = br_sql_col_str(st, 15);
    sqlite3_reset(st);
    return 0;
}

int
br_store_conv_by_client(struct br_store *s, const char *channel, const char *client_id, struct br_conv *out)
{
    return conv_row(s, br_sql_bind(s, "SELECT " CONV_COLS " FROM conv_clients k JOIN conversations c ON c.id=k.conv_id "
                                      "WHERE k.channel=? AND k.client_id=?", "tt", channel, client_id), out);
}

int
br_store_conv_get(struct br_store *s, int64_t id, struct br_conv *out)
{
    return conv_row(s, br_sql_bind(s, "SELECT " CONV_COLS " FROM conversations c WHERE c.id=?", "i", id), out);
}

int
br_store_person_create(struct br_store *s, int64_t *id)
{
    if (br_sql_done(s, br_sql_bind(s, "INSERT INTO persons(created_at) VALUES(?)", "i", br_now_ms())))
        return BR_EIO;
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int
br_store_person_of_email(struct br_store *s, const char *email, int64_t *person_id, bool *verified)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT person_id, verified FROM person_emails WHERE email=?", "t", email);
    int rc = br_sql_row(s, st);
    if (rc)
        return rc;
    *person_id = sqlite3_column_int64(st, 0);
    if (verified)
        *verified = sqlite3_column_int(st, 1) != 0;
    sqlite3_reset(st);
    return 0;
}

int
br_store_person_add_email(struct br_store *s, int64_t person_id, const char *email, bool verified)
{
    /* A verified sighting upgrades an unverified one; the owner never changes here (that is a merge). */
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO person_emails(email, person_id, verified, added_at) "
                                         "VALUES(?,?,?,?) "
                                         "ON CONFLICT(email) DO UPDATE SET verified=max(verified, excluded.verified) "
                                         "WHERE person_id=excluded.person_id",
                                      "tini", email, person_id, (int)verified, br_now_ms()));
}

json_t *
br_store_person_emails(struct br_store *s, int64_t person_id, bool verified_only)
{
    return br_sql_column_list(s, br_sql_bind(s, "SELECT email FROM person_emails WHERE person_id=? AND verified>=? "
                                                "ORDER BY added_at, email",
                                             "in", person_id, (int)verified_only));
}

int
br_store_conv_of_person(struct br_store *s, const char *channel, int64_t person_id, struct br_conv *out)
{
    return conv_row(s, br_sql_bind(s, "SELECT " CONV_COLS " FROM conversations c WHERE c.channel=? AND c.person_id=? "
                                      "AND c.merged_into IS NULL ORDER BY c.id LIMIT 1",
                                   "ti", channel, person_id), out);
}

int
br_store_conv_create(struct br_store *s, const char *channel, const char *client_id, int64_t *id)
{
    int64_t person;
    int rc = br_store_person_create(s, &person);
    return rc ? rc : br_store_conv_create_for_person(s, channel, client_id, person, id);
}

int
br_store_conv_create_for_person(struct br_store *s, const char *channel, const char *client_id, int64_t person_id,
                                int64_t *id)
{
    int64_t now = br_now_ms();
    if (br_sql_done(s, br_sql_bind(s, "INSERT INTO conversations(channel, person_id, client_id, created_at, "
                                      "updated_at) VALUES(?,?,?,?,?)",
                                   "titii", channel, person_id, client_id, now, now)))
        return BR_EIO;
    *id = sqlite3_last_insert_rowid(s->db);
    return br_store_conv_add_client(s, *id, channel, client_id);
}

int
br_store_conv_add_client(struct br_store *s, int64_t conv_id, const char *channel, const char *client_id)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO conv_clients(channel, client_id, conv_id) VALUES(?,?,?) "
                                         "ON CONFLICT(channel, client_id) DO UPDATE SET conv_id=excluded.conv_id",
                                      "tti", channel, client_id, conv_id));
}

int
br_store_device_chat(struct br_store *s, const char *channel, const char *client_id, const char *chat_id,
                     char **previous)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT chat_id FROM conv_clients WHERE channel=? AND client_id=?", "tt", channel,
                                   client_id);
    *previous = NULL;
    if (br_sql_row(s, st) == 0) {
        *previous = br_sql_col_str(st, 0);
        sqlite3_reset(st);
    }
    if (chat_id == NULL)
        return 0;
    return br_sql_done(s, br_sql_bind(s, "UPDATE conv_clients SET chat_id=? WHERE channel=? AND client_id=?", "ttt",
                                      chat_id, channel, client_id));
}

int
br_store_conv_update_visitor(struct br_store *s, int64_t conv_id, const char *client_id, const char *chat_id,
                             const char *name, const char *email, const char *phone, const char *visitor_json)
{
    /* Known values are kept when a later webhook does not repeat them. */
    return br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET client_id=coalesce(?, client_id), "
                                         "chat_id=coalesce(?, chat_id), "
                                         "name=coalesce(?, name), email=coalesce(?, email), phone=coalesce(?, phone), "
                                         "visitor_json=coalesce(?, visitor_json), updated_at=? WHERE id=?",
                                      "ttttttii", client_id, chat_id, name, email, phone, visitor_json, br_now_ms(),
                                      conv_id));
}

int
br_store_conv_set_contact(struct br_store *s, int64_t conv_id, const char *contact_id, bool made)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE persons SET contact_id=?, contact_made=? "
                                         "WHERE id=(SELECT person_id FROM conversations WHERE id=?)",
                                      "tni", contact_id, (int)made, conv_id));
}

int
br_store_conv_set_profile(struct br_store *s, int64_t conv_id, int state, const char *profile_json)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET profile_state=?, "
                                         "profile_json=coalesce(?, profile_json) WHERE id=?",
                                      "nti", state, profile_json, conv_id));
}

int
br_store_conv_set_company(struct br_store *s, int64_t conv_id, const char *company_id)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE persons SET company_id=? "
                                         "WHERE id=(SELECT person_id FROM conversations WHERE id=?)",
                                      "ti", company_id, conv_id));
}

int
br_store_company_get(struct br_store *s, const char *domain, char **contact_id)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT contact_id FROM companies WHERE domain=?", "t", domain);
    int rc = br_sql_row(s, st);
    if (rc)
        return rc;
    *contact_id = br_sql_col_str(st, 0);
    sqlite3_reset(st);
    return 0;
}

int
br_store_company_set(struct br_store *s, const char *domain, const char *contact_id)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO companies(domain, contact_id, created_at) VALUES(?,?,?) "
                                         "ON CONFLICT(domain) DO UPDATE SET contact_id=excluded.contact_id",
                                      "tti", domain, contact_id, br_now_ms()));
}

int
br_store_conv_set_gen(struct br_store *s, int64_t conv_id, int gen)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET gen=?, updated_at=? WHERE id=?", "nii", gen,
                                      br_now_ms(), conv_id));
}

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
br_store_msg_set_state(struct br_store *s, int64_t id, int state, const char *comment_id)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE messages SET state=?, comment_id=coalesce(?, comment_id) WHERE id=?",
                                      "nti", state, comment_id, id));
}

int
br_store_msg_each(struct br_store *s, int64_t conv_id, int gen, br_msg_cb cb, void *arg)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT " MSG_COLS " FROM messages WHERE conv_id=? AND gen=? ORDER BY id", "in",
                                   conv_id, gen);
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct br_msg m;
        msg_fill(st, &m);
        cb(arg, &m);
        br_msg_dispose(&m);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        br_sql_failed(s, rc, sqlite3_errmsg(s->db));
        return BR_EIO;
    }
    return 0;
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

bool
br_store_comment_seen(struct br_store *s, const char *task_id, const char *comment_id)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT 1 FROM tracker_comments WHERE task_id=? AND comment_id=?", "tt", task_id,
                                   comment_id);
    bool seen = br_sql_row(s, st) == 0;
    if (seen)
        sqlite3_reset(st);
    return seen;
}

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

/* ---- employees known by e-mail ---- */

int
br_store_user_get(struct br_store *s, const char *tracker, const char *email, char **tracker_user,
                  int64_t *checked_at)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT tracker_user, checked_at FROM employee_users WHERE tracker=? AND email=?",
                                   "tt", tracker, email);
    int rc = br_sql_row(s, st);

    *tracker_user = NULL;
    *checked_at = 0;
    if (rc)
        return rc;
    *tracker_user = br_sql_col_str(st, 0);
    *checked_at = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return 0;
}

int
br_store_user_set(struct br_store *s, const char *tracker, const char *email, const char *tracker_user)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO employee_users(tracker, email, tracker_user, checked_at) "
                                         "VALUES(?,?,?,?) "
                                         "ON CONFLICT(tracker, email) DO UPDATE SET "
                                         "tracker_user=excluded.tracker_user, checked_at=excluded.checked_at",
                                      "ttti", tracker, email, tracker_user, br_now_ms()));
}

int
br_store_agent_set(struct br_store *s, const char *channel, const char *agent_id, const char *email)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO chatra_agents(channel, agent_id, email, seen_at) VALUES(?,?,?,?) "
                                         "ON CONFLICT(channel, agent_id) DO UPDATE SET email=excluded.email, "
                                         "seen_at=excluded.seen_at",
                                      "ttti", channel, agent_id, email, br_now_ms()));
}

int
br_store_agent_email(struct br_store *s, const char *channel, const char *agent_id, char **email)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT email FROM chatra_agents WHERE channel=? AND agent_id=?", "tt", channel,
                                   agent_id);
    int rc = br_sql_row(s, st);

    *email = NULL;
    if (rc)
        return rc;
    *email = br_sql_col_str(st, 0);
    sqlite3_reset(st);
    return 0;
}

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

#define JOB_COLS "j.id, j.lane, j.upstream, j.kind, j.conv_id, j.payload, j.state, j.attempts, j.next_at, j.recover"

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
}

int
br_store_job_ready(struct br_store *s, const char *upstream, int64_t now, struct br_job *out, size_t max,
                   size_t *n)
{
    /*
     * A job waits for every older job of its lane.  A dead task
     * creation keeps blocking (a comment must never overtake the task it
     * belongs to); anything else dead does not hold up the rest (a task
     * is made without a contact rather than not at all).
     */
    int rc = SQLITE_DONE;
    sqlite3_stmt *st = br_sql_bind(s, "SELECT " JOB_COLS " FROM jobs j "
                                      "WHERE j.upstream=? AND j.state=0 AND j.state<2 AND j.next_at<=? "
                                      "AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.lane=j.lane AND k.id<j.id AND "
                                      "k.state<>2 AND (k.state IN (0,1) OR (k.state=3 AND k.kind='task'))) "
                                      "ORDER BY j.next_at, j.id LIMIT ?",
                                   "tii", upstream, now, (int64_t)max);

    *n = 0;
    while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
        job_fill(st, &out[(*n)++]);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        br_sql_failed(s, rc, sqlite3_errmsg(s->db));
        return BR_EIO;
    }
    return 0;
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

bool
br_store_job_blocked(struct br_store *s, const char *lane, int64_t id)
{
    /* The same rule as br_store_job_ready's: what holds a job back in its lane. */
    sqlite3_stmt *st = br_sql_bind(s, "SELECT 1 FROM jobs WHERE lane=? AND id<? AND state<>2 AND "
                                      "(state IN (0,1) OR (state=3 AND kind='task')) LIMIT 1",
                                   "ti", lane, id);
    bool found = br_sql_row(s, st) == 0;
    if (found)
        sqlite3_reset(st);
    return found;
}

/* ---- merges ---- */

static json_t *
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
json_exec_text(struct br_store *s, json_t *list, const char *sql, int64_t target)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (br_sql_done(s, br_sql_bind(s, sql, "it", target, json_string_value(v))))
            return BR_EIO;
    }
    return 0;
}

int
br_store_merge(struct br_store *s, int64_t survivor_conv, int64_t merged_conv, const char *email, bool verified,
               int64_t *merge_id)
{
    struct br_conv sc = {0}, mc = {0};
    json_t *clients = NULL, *emails = NULL;
    char *ctext = NULL, *etext = NULL;
    int rc;

    if ((rc = br_store_conv_get(s, survivor_conv, &sc)) || (rc = br_store_conv_get(s, merged_conv, &mc)))
        goto out;
    clients = br_sql_column_list(s, br_sql_bind(s, "SELECT client_id FROM conv_clients WHERE conv_id=?", "i",
                                                merged_conv));
    emails = sc.person_id != mc.person_id
                 ? br_sql_column_list(s, br_sql_bind(s, "SELECT email FROM person_emails WHERE person_id=?", "i",
                                                     mc.person_id))
                 : json_array();
    rc = BR_EIO;
    /* Replies relayed to the merged device's chat come back from it as the survivor's: their echo goes too. */
    if (br_sql_done(s, br_sql_bind(s, "UPDATE conv_clients SET conv_id=? WHERE conv_id=?", "ii", survivor_conv,
                                   merged_conv)) ||
        br_sql_done(s, br_sql_bind(s, "UPDATE relays SET conv_id=? WHERE conv_id=?", "ii", survivor_conv,
                                   merged_conv)) ||
        br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET merged_into=?, updated_at=? WHERE id=?", "iii",
                                   survivor_conv, br_now_ms(), merged_conv)))
        goto out;
    if (sc.person_id != mc.person_id &&
        (br_sql_done(s, br_sql_bind(s, "UPDATE person_emails SET person_id=? WHERE person_id=?", "ii", sc.person_id,
                                    mc.person_id)) ||
         br_sql_done(s, br_sql_bind(s, "UPDATE persons SET merged_into=? WHERE id=?", "ii", sc.person_id,
                                    mc.person_id))))
        goto out;
    /*
     * The merged thread's messages are known to the survivor too, as
     * already handled: a later transcript from that device repeats them.
     */
    if (br_sql_done(s, br_sql_bind(s, "INSERT OR IGNORE INTO messages(conv_id, gen, key, type, agent_id, text, "
                                      "created_at, state) "
                                      "SELECT ?, (SELECT gen FROM conversations WHERE id=?), key, type, agent_id, "
                                      "text, created_at, 2 FROM messages WHERE conv_id=?",
                                   "iii", survivor_conv, survivor_conv, merged_conv)))
        goto out;
    ctext = json_dumps(clients, JSON_COMPACT);
    etext = json_dumps(emails, JSON_COMPACT);
    if (br_sql_done(s, br_sql_bind(s, "INSERT INTO merges(channel, email, verified, survivor_conv, merged_conv, "
                                      "survivor_person, merged_person, clients, emails, at) "
                                      "VALUES(?,?,?,?,?,?,?,?,?,?)",
                                   "ttniiiitti", sc.channel, email, (int)verified, survivor_conv, merged_conv,
                                   sc.person_id, mc.person_id, ctext, etext, br_now_ms())))
        goto out;
    if (merge_id)
        *merge_id = sqlite3_last_insert_rowid(s->db);
    rc = 0;
out:
    free(ctext);
    free(etext);
    json_decref(clients);
    json_decref(emails);
    br_conv_dispose(&sc);
    br_conv_dispose(&mc);
    return rc;
}

int
br_store_record_join(struct br_store *s, int64_t conv_id, const char *channel, const char *client_id,
                     const char *email, bool verified, int64_t *merge_id)
{
    json_t *clients = json_pack("[s]", client_id);
    char *ctext = json_dumps(clients, JSON_COMPACT);
    int rc = br_sql_done(s, br_sql_bind(s, "INSERT INTO merges(channel, email, verified, survivor_conv, merged_conv, "
                                           "survivor_person, merged_person, clients, emails, at) "
                                           "VALUES(?,?,?,?,0,(SELECT person_id FROM conversations WHERE id=?),"
                                           "0,?,'[]',?)",
                                        "ttniiti", channel, email, (int)verified, conv_id, conv_id, ctext,
                                        br_now_ms()));
    if (rc == 0 && merge_id)
        *merge_id = sqlite3_last_insert_rowid(s->db);
    free(ctext);
    json_decref(clients);
    return rc;
}

int
br_store_unmerge(struct br_store *s, int64_t merge_id, int64_t *merged_conv)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT merged_conv, survivor_person, merged_person, clients, emails, channel, "
                                      "undone_at FROM merges WHERE id=?", "i", merge_id);
    int64_t mconv, sperson, mperson;
    json_t *clients, *emails;
    json_error_t je;
    char *channel;
    bool undone;
    int rc = br_sql_row(s, st);

    if (rc)
        return rc;
    mconv = sqlite3_column_int64(st, 0);
    sperson = sqlite3_column_int64(st, 1);
    mperson = sqlite3_column_int64(st, 2);
    clients = json_loads((const char *)sqlite3_column_text(st, 3), 0, &je);
    emails = json_loads((const char *)sqlite3_column_text(st, 4), 0, &je);
    channel = br_sql_col_str(st, 5);
    undone = sqlite3_column_type(st, 6) != SQLITE_NULL;
    sqlite3_reset(st);
    rc = BR_EEXIST;
    if (!undone && mconv == 0) {
        /* A device that joined on its first webhook: it gets a conversation (and person) of its own. */
        size_t i;
        json_t *v;
        rc = 0;
        json_array_foreach(clients, i, v) {
            if (rc == 0 && mconv == 0)
                rc = br_store_conv_create(s, channel, json_string_value(v), &mconv);
            else if (rc == 0)
                rc = br_store_conv_add_client(s, mconv, channel, json_string_value(v));
        }
        if (rc == 0 && br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET client_id=coalesce((SELECT client_id "
                                                     "FROM conv_clients WHERE conv_id=conversations.id "
                                                     "ORDER BY rowid DESC LIMIT 1), client_id) "
                                                     "WHERE id=(SELECT survivor_conv FROM merges WHERE id=?)",
                                                  "i", merge_id)))
            rc = BR_EIO;
        if (rc == 0 && br_sql_done(s, br_sql_bind(s, "UPDATE merges SET undone_at=?, merged_conv=? WHERE id=?", "iii",
                                                  br_now_ms(), mconv, merge_id)))
            rc = BR_EIO;
    } else if (!undone) {
        size_t i;
        json_t *v;
        rc = 0;
        json_array_foreach(clients, i, v) {
            if (br_sql_done(s, br_sql_bind(s, "UPDATE conv_clients SET conv_id=? WHERE channel=? AND client_id=?",
                                           "itt", mconv, channel, json_string_value(v))))
                rc = BR_EIO;
        }
        /* The survivor writes to its own devices again: the latest one that stayed. */
        if (rc == 0 && br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET client_id=coalesce((SELECT client_id "
                                                     "FROM conv_clients WHERE conv_id=conversations.id "
                                                     "ORDER BY rowid DESC LIMIT 1), client_id) "
                                                     "WHERE id=(SELECT survivor_conv FROM merges WHERE id=?)",
                                                  "i", merge_id)))
            rc = BR_EIO;
        if (rc == 0)
            rc = json_exec_text(s, emails, "UPDATE person_emails SET person_id=? WHERE email=?", mperson);
        /*
         * The merged person's contact was removed from the tracker when it
         * differed from the survivor's: a new one is made when needed.
         */
        if (rc == 0 && mperson != sperson &&
            (br_sql_done(s, br_sql_bind(s, "UPDATE persons SET merged_into=NULL, "
                                           "contact_id=CASE WHEN contact_made=1 AND contact_id<>"
                                           "coalesce((SELECT contact_id FROM persons WHERE id=?), '') "
                                           "THEN NULL ELSE contact_id END WHERE id=?",
                                        "ii", sperson, mperson))))
            rc = BR_EIO;
        if (rc == 0 &&
            (br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET merged_into=NULL WHERE id=?", "i", mconv)) ||
             br_sql_done(s, br_sql_bind(s, "UPDATE merges SET undone_at=? WHERE id=?", "ii", br_now_ms(), merge_id))))
            rc = BR_EIO;
    }
    if (merged_conv)
        *merged_conv = mconv;
    json_decref(clients);
    json_decref(emails);
    free(channel);
    return rc;
}

/* Bound client ids are secrets: show only enough to tell devices apart. */
static json_t *
masked(const char *id)
{
    size_t n = strlen(id);
    char *m = n > 6 ? br_asprintf("%.4s...(%zu chars)", id, n) : br_strdup("...");
    json_t *v = json_string(m);
    free(m);
    return v;
}

int
br_store_identities(struct br_store *s, const char *email, char **json_out)
{
    json_t *out = json_array();
    sqlite3_stmt *st;
    int64_t *ids = NULL;
    size_t n = 0;
    int rc;

    if (email)
        st = br_sql_bind(s, "SELECT person_id FROM person_emails WHERE email=?", "t", email);
    else
        st = br_sql_bind(s, "SELECT id FROM persons WHERE merged_into IS NULL ORDER BY id", "");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ids = br_realloc(ids, (n + 1) * sizeof(*ids));
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_object(), *arr;
        int r2;
        st = br_sql_bind(s, "SELECT contact_id, merged_into FROM persons WHERE id=?", "i", ids[i]);
        json_object_set_new(p, "person", json_integer(ids[i]));
        if (br_sql_row(s, st) == 0) {
            if (sqlite3_column_type(st, 0) != SQLITE_NULL)
                json_object_set_new(p, "contact", json_string((const char *)sqlite3_column_text(st, 0)));
            if (sqlite3_column_type(st, 1) != SQLITE_NULL)
                json_object_set_new(p, "merged_into_person", json_integer(sqlite3_column_int64(st, 1)));
            sqlite3_reset(st);
        }
        arr = json_array();
        st = br_sql_bind(s, "SELECT email, verified FROM person_emails WHERE person_id=? ORDER BY added_at", "i",
                         ids[i]);
        while ((r2 = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(arr, json_pack("{s:s, s:b}", "email", (const char *)sqlite3_column_text(st, 0),
                                                 "verified", sqlite3_column_int(st, 1)));
        sqlite3_reset(st);
        json_object_set_new(p, "emails", arr);
        arr = json_array();
        st = br_sql_bind(s, "SELECT c.id, c.channel, c.gen, c.merged_into, "
                            "(SELECT task_id FROM tasks t WHERE t.conv_id=c.id AND t.gen=c.gen) "
                            "FROM conversations c WHERE c.person_id=? OR c.id IN (SELECT merged_conv FROM merges "
                            "WHERE survivor_person=? AND undone_at IS NULL) ORDER BY c.id", "ii", ids[i], ids[i]);
        while ((r2 = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *conv = json_pack("{s:I, s:s, s:i}", "conversation", (json_int_t)sqlite3_column_int64(st, 0),
                                     "channel", (const char *)sqlite3_column_text(st, 1), "tasks",
                                     sqlite3_column_int(st, 2));
            if (sqlite3_column_type(st, 3) != SQLITE_NULL)
                json_object_set_new(conv, "merged_into", json_integer(sqlite3_column_int64(st, 3)));
            if (sqlite3_column_type(st, 4) != SQLITE_NULL)
                json_object_set_new(conv, "task", json_string((const char *)sqlite3_column_text(st, 4)));
            json_object_set_new(conv, "devices", json_array());
            json_array_append_new(arr, conv);
        }
        sqlite3_reset(st);
        {
            size_t k;
            json_t *conv;
            json_array_foreach(arr, k, conv) {
                json_t *dev = json_object_get(conv, "devices");
                st = br_sql_bind(s, "SELECT client_id FROM conv_clients WHERE conv_id=? ORDER BY rowid", "i",
                                 (int64_t)json_integer_value(json_object_get(conv, "conversation")));
                while ((r2 = sqlite3_step(st)) == SQLITE_ROW)
                    json_array_append_new(dev, masked((const char *)sqlite3_column_text(st, 0)));
                sqlite3_reset(st);
            }
        }
        json_object_set_new(p, "conversations", arr);
        arr = json_array();
        st = br_sql_bind(s, "SELECT id, at, email, verified, survivor_conv, merged_conv, undone_at FROM merges "
                            "WHERE survivor_person=? OR merged_person=? ORDER BY id", "ii", ids[i], ids[i]);
        while ((r2 = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *m = json_pack("{s:I, s:I, s:s?, s:b, s:I, s:I, s:b}", "merge",
                                  (json_int_t)sqlite3_column_int64(st, 0), "at",
                                  (json_int_t)sqlite3_column_int64(st, 1), "email",
                                  (const char *)sqlite3_column_text(st, 2), "verified", sqlite3_column_int(st, 3),
                                  "survivor_conversation", (json_int_t)sqlite3_column_int64(st, 4),
                                  "merged_conversation", (json_int_t)sqlite3_column_int64(st, 5), "undone",
                                  sqlite3_column_type(st, 6) != SQLITE_NULL);
            json_array_append_new(arr, m);
        }
        sqlite3_reset(st);
        json_object_set_new(p, "merges", arr);
        json_array_append_new(out, p);
    }
    free(ids);
    *json_out = json_dumps(out, JSON_INDENT(2));
    json_decref(out);
    return 0;
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
    if (br_sql_done(s, id > 0 ? br_sql_bind(s, "UPDATE jobs SET state=0, attempts=0, next_at=?, recover=1 "
                                               "WHERE state=3 AND id=?", "ii", br_now_ms(), id)
                              : br_sql_bind(s, "UPDATE jobs SET state=0, attempts=0, next_at=?, recover=1 "
                                               "WHERE state=3 AND state<>2", "i", br_now_ms())))
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
    if (rc == 0)
        rc = br_store_commit(s);
    if (rc)
        br_store_rollback(s);
    return rc;
}
