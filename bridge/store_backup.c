/*
 * store_backup.c - a consistent copy of a store that a daemon keeps
 * writing, with SQLite's online backup API.
 *
 * Copying the database file is not a backup in WAL mode: the latest
 * commits are in the -wal file, and a copy of the two taken at different
 * moments is torn.  The backup API reads the pages through SQLite, which
 * sees every commit wherever it lies.
 *
 * The copy runs in steps, all inside one read transaction on the source.
 * In WAL mode a reader never blocks a writer, so the daemon keeps taking
 * webhooks and running jobs throughout (its checkpoints wait for the
 * reader; the -wal file grows meanwhile).  The one snapshot makes the copy
 * the store as it was when the backup began; without it SQLite would
 * start the copy over after every commit of the daemon, and under steady
 * load it would never end.
 */
#include "store.h"
#include "store_sql.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STEP_PAGES 1024
/* How many times a step may find the source busy (a WAL being recovered) before giving up. */
#define BUSY_TRIES 250
#define BUSY_SLEEP_MS 20

/* What one backup is writing: the temporary file beside the target, and the connection to it. */
struct copy {
    const char *to;
    char *tmp;
    sqlite3 *dst;
};

/*
 * Why the copy's connection failed: SQLite's words, and for an I/O error the
 * system's too ("disk I/O error" alone does not say that the file grew too
 * large or that the disk went away).  Written into buf when both are given.
 */
static const char *
why(sqlite3 *db, char *buf, size_t size)
{
    int code = sqlite3_errcode(db) & 0xff, err = sqlite3_system_errno(db);

    if ((code != SQLITE_IOERR && code != SQLITE_CANTOPEN) || err == 0)
        return sqlite3_errmsg(db);
    snprintf(buf, size, "%s (%s)", sqlite3_errmsg(db), strerror(err));
    return buf;
}

/* Removes the temporary file and whatever SQLite made beside it. */
static void
discard(struct copy *j)
{
    static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};

    if (j->dst)
        sqlite3_close(j->dst);
    j->dst = NULL;
    for (size_t i = 0; j->tmp && i < BR_ARRAY_SIZE(suffix); i++) {
        char *p = br_asprintf("%s%s", j->tmp, suffix[i]);
        unlink(p);
        free(p);
    }
    free(j->tmp);
    j->tmp = NULL;
}

/* The target must be new: a backup never replaces a file, an older backup least of all. */
static int
check_target(const char *to)
{
    struct stat st;

    if (lstat(to, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            br_error("backup: %s is a directory: name the file to write in it, e.g. %s/bridge-backup.db", to, to);
        else
            br_error("backup: %s already exists: a backup never overwrites a file; name a new one", to);
        return BR_EEXIST;
    }
    if (errno != ENOENT) {
        br_error("backup: cannot write %s: %s", to, strerror(errno));
        return BR_EIO;
    }
    return 0;
}

static int
make_tmp(struct copy *j)
{
    int fd;

    j->tmp = br_asprintf("%s.tmp-XXXXXX", j->to);
    /* mkstemp makes the file readable by its owner only: the copy holds every chat. */
    fd = mkstemp(j->tmp);
    if (fd < 0) {
        if (errno == ENOENT)
            br_error("backup: the directory of %s does not exist", j->to);
        else
            br_error("backup: cannot create a file beside %s: %s", j->to, strerror(errno));
        free(j->tmp);
        j->tmp = NULL;
        return BR_EIO;
    }
    close(fd);
    if (sqlite3_open_v2(j->tmp, &j->dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        br_error("backup: cannot open %s: %s", j->tmp, j->dst ? sqlite3_errmsg(j->dst) : "out of memory");
        return BR_EIO;
    }
    return 0;
}

/* Copies every page of the source into the temporary file, in steps, from one snapshot. */
static int
copy_pages(struct br_store *s, struct copy *j, struct br_backup *b)
{
    int step = b && b->step_pages > 0 ? b->step_pages : STEP_PAGES;
    int rc, busy = 0, total;
    sqlite3_backup *bk;
    char *err = NULL, buf[256];

    if (!sqlite3_get_autocommit(s->db)) {
        br_error("backup: the store is inside a transaction");
        return BR_EINVAL;
    }
    /* The snapshot: a read transaction, begun by the first read. */
    if (sqlite3_exec(s->db, "BEGIN; SELECT count(*) FROM sqlite_master", NULL, NULL, &err) != SQLITE_OK) {
        br_error("backup: cannot read the store: %s", err ? err : sqlite3_errmsg(s->db));
        sqlite3_free(err);
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return BR_EIO;
    }
    bk = sqlite3_backup_init(j->dst, "main", s->db, "main");
    if (bk == NULL) {
        br_error("backup: cannot start: %s", why(j->dst, buf, sizeof(buf)));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return BR_EIO;
    }
    do {
        rc = sqlite3_backup_step(bk, step);
        if (rc == SQLITE_OK) {
            total = sqlite3_backup_pagecount(bk);
            if (b && b->progress)
                b->progress(b->arg, total - sqlite3_backup_remaining(bk), total);
        } else if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && ++busy < BUSY_TRIES) {
            sqlite3_sleep(BUSY_SLEEP_MS);
            rc = SQLITE_OK;
        }
    } while (rc == SQLITE_OK);
    total = sqlite3_backup_pagecount(bk);
    /* A failed step leaves its error on the copy's connection, where finish returns it. */
    if (sqlite3_backup_finish(bk) != SQLITE_OK && rc == SQLITE_DONE)
        rc = sqlite3_errcode(j->dst);
    /* Only read: ending the snapshot cannot fail in a way that matters to the copy. */
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != SQLITE_DONE) {
        br_error("backup: copying the store failed: %s",
                 sqlite3_errcode(j->dst) != SQLITE_OK ? why(j->dst, buf, sizeof(buf)) : sqlite3_errstr(rc));
        return BR_EIO;
    }
    if (b)
        b->pages = total;
    return 0;
}

/* The first column of a one-row pragma, copied; NULL when it fails. */
static char *
pragma_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    char *out = NULL;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = br_strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

/*
 * Makes the copy a file of its own, marks its open jobs, and checks it.
 * The pages carry the source's WAL mode; the copy is set back to a
 * rollback journal, so that it is one file with nothing beside it (the
 * bridge sets WAL again when it opens it as its store).
 */
static int
finish_copy(struct copy *j, struct br_backup *b)
{
    char *mode = pragma_text(j->dst, "PRAGMA journal_mode=DELETE");
    char *check = NULL, *size = NULL, buf[256];
    int rc = 0;

    if (mode == NULL || strcmp(mode, "delete") != 0) {
        br_error("backup: cannot make the copy a single file: %s", why(j->dst, buf, sizeof(buf)));
        rc = BR_EIO;
    }
    /*
     * A job still open in the copy may well have run since (the daemon went
     * on): after a restore it looks in the tracker before it writes, as a
     * job left in flight by a crash does.
     */
    if (rc == 0 && sqlite3_exec(j->dst, "UPDATE jobs SET recover=1 WHERE state<2", NULL, NULL, NULL) != SQLITE_OK) {
        br_error("backup: cannot mark the copy's open jobs: %s", why(j->dst, buf, sizeof(buf)));
        rc = BR_EIO;
    }
    if (rc == 0 && ((check = pragma_text(j->dst, "PRAGMA integrity_check")) == NULL || strcmp(check, "ok") != 0)) {
        if (check)
            br_error("backup: the copy fails SQLite's integrity check (%s): the store itself may be damaged; "
                     "nothing was written to %s", check, j->to);
        else
            br_error("backup: cannot check the copy: %s", why(j->dst, buf, sizeof(buf)));
        rc = check ? BR_EINVAL : BR_EIO;
    }
    if (rc == 0 && b && (size = pragma_text(j->dst, "PRAGMA page_size")) != NULL)
        b->bytes = (int64_t)b->pages * atoll(size);
    free(mode);
    free(check);
    free(size);
    if (rc == 0 && sqlite3_close(j->dst) != SQLITE_OK) {
        br_error("backup: cannot close the copy: %s", why(j->dst, buf, sizeof(buf)));
        rc = BR_EIO;
    }
    if (rc == 0)
        j->dst = NULL;
    return rc;
}

/* fsync of a file or directory by name. */
static int
sync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/*
 * Puts the finished copy in place: a hard link fails when the name was
 * taken meanwhile, where rename would silently replace it.  File systems
 * without hard links get a rename after one more look.
 */
static int
publish(struct copy *j)
{
    char *copy, *slash;

    if (sync_path(j->tmp, O_RDONLY) != 0) {
        br_error("backup: cannot write %s to the disk: %s", j->tmp, strerror(errno));
        return BR_EIO;
    }
    if (link(j->tmp, j->to) != 0) {
        int err = errno;
        if (err == EEXIST) {
            br_error("backup: %s appeared while the backup ran; nothing was overwritten", j->to);
            return BR_EEXIST;
        }
        if (err != EPERM && err != EOPNOTSUPP && err != ENOSYS && err != EMLINK) {
            br_error("backup: cannot write %s: %s", j->to, strerror(err));
            return BR_EIO;
        }
        if (check_target(j->to) != 0)
            return BR_EEXIST;
        if (rename(j->tmp, j->to) != 0) {
            br_error("backup: cannot write %s: %s", j->to, strerror(errno));
            return BR_EIO;
        }
    } else {
        unlink(j->tmp);
    }
    /* The new name must survive a power cut too. */
    copy = br_strdup(j->to);
    slash = strrchr(copy, '/');
    if (slash == copy)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    sync_path(slash ? copy : ".", O_RDONLY | O_DIRECTORY);
    free(copy);
    return 0;
}

int
br_store_backup(struct br_store *s, const char *to, struct br_backup *b)
{
    struct copy j = {.to = to};
    int rc;

    if ((rc = check_target(to)) != 0)
        return rc;
    if ((rc = make_tmp(&j)) == 0 && (rc = copy_pages(s, &j, b)) == 0 && (rc = finish_copy(&j, b)) == 0)
        rc = publish(&j);
    discard(&j);
    return rc;
}
