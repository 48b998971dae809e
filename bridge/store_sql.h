/*
 * store_sql.h - what the store's files (store.c, store_inbox.c,
 * store_people.c, store_tasks.c, store_jobs.c, store_activity.c,
 * store_admin.c, store_crm.c, store_usage.c) share: the store itself
 * and the statement helpers, defined once in store.c.  Internal to the
 * store: everything else uses store.h.  Loop thread only, like the store.
 */
#ifndef BR_STORE_SQL_H
#define BR_STORE_SQL_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Statements are prepared once and cached by the address of their SQL
 * text: every query of the store's files is a string literal, so the
 * address is a stable key.  The store's files hold about 130 of them: the
 * cache has room for all with a margin (a full cache aborts).
 */
#define STMT_CACHE 256

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
     * the query (see env_error in store.c), cleared once writes have reached the disk
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
    bool fold_registered;      /* the SQL function br_fold (store_admin.c) */
};

/* The cached statement for sql, reset and with no bindings. */
sqlite3_stmt *br_sql_stmt(struct br_store *s, const char *sql);
/*
 * The cached statement for sql with its arguments bound by a format
 * string: 't' text (NULL binds NULL), 'i' int64_t, 'n' int.
 */
sqlite3_stmt *br_sql_bind(struct br_store *s, const char *sql, const char *fmt, ...);
/* Runs a statement to its end (and resets it); BR_EIO when it failed. */
int br_sql_done(struct br_store *s, sqlite3_stmt *st);
/*
 * Steps to the next row: 0 with the row to read (the caller resets the
 * statement), BR_ENOTFOUND when there is none, BR_EIO when it failed.
 */
int br_sql_row(struct br_store *s, sqlite3_stmt *st);
/* Column i as a string of the caller's (NULL for NULL). */
char *br_sql_col_str(sqlite3_stmt *st, int i);
/* The first column of every row as a JSON array of strings; the statement is reset. */
json_t *br_sql_column_list(struct br_store *s, sqlite3_stmt *st);
/* Records a failed statement (rc, and SQLite's message or NULL) in the store's write health. */
void br_sql_failed(struct br_store *s, int rc, const char *msg);
/* Frees the inbox rows queued for the next flush. */
void br_sql_drop_queued(struct br_store *s);

#endif
