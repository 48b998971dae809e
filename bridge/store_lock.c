/*
 * store_lock.c - one daemon per store: the flock on "<store>.lock" (see
 * store_lock.h for why a separate file and why flock).
 */
#include "store_lock.h"

#include "br.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct br_store_lock {
    int fd;
    char *path;
};

char *
br_store_lock_path_of(const char *db_path)
{
    /*
     * SQLite follows symbolic links to the database (its -wal lives beside
     * the real file): so does the lock, so that two names of one database
     * share one lock.  A database not made yet is named by its directory.
     */
    char *real = realpath(db_path, NULL), *out;
    const char *slash;
    char *dir, *real_dir;

    if (real) {
        out = br_asprintf("%s.lock", real);
        free(real);
        return out;
    }
    slash = strrchr(db_path, '/');
    if (slash == NULL)
        dir = br_strdup(".");
    else if (slash == db_path)
        dir = br_strdup("/");
    else
        dir = br_strndup(db_path, (size_t)(slash - db_path));
    real_dir = realpath(dir, NULL);
    if (real_dir)
        out = br_asprintf("%s/%s.lock", strcmp(real_dir, "/") == 0 ? "" : real_dir, slash ? slash + 1 : db_path);
    else
        out = br_asprintf("%s.lock", db_path); /* the open below says what is wrong */
    free(real_dir);
    free(dir);
    return out;
}

/* The PID a holder wrote in the file, or 0 when there is none (yet). */
static pid_t
read_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    char *end;
    long v;

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno || end == buf || (*end != '\n' && *end != '\0') || v <= 0 || v > INT_MAX)
        return 0;
    /* A holder that could not write its PID leaves an older one: never name a process that is gone. */
    if (kill((pid_t)v, 0) != 0 && errno == ESRCH)
        return 0;
    return (pid_t)v;
}

int
br_store_lock_take(struct br_store_lock **out, const char *db_path, pid_t *holder)
{
    char *path = br_store_lock_path_of(db_path);
    char text[32];
    int fd, rc, len;

    *out = NULL;
    *holder = 0;
    /* O_NOFOLLOW: a link planted in place of the lock file does not make the daemon write elsewhere. */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    /* A file another user made (a first run as root): flock works on a read-only descriptor too. */
    if (fd < 0 && errno == EACCES)
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        br_error("store: cannot open the lock file %s: %s", path, strerror(errno));
        free(path);
        return BR_EIO;
    }
    while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        int err = errno;
        if (err == EWOULDBLOCK) {
            *holder = read_holder(fd);
            rc = BR_EEXIST;
        } else {
            br_error("store: cannot lock %s: %s", path, strerror(err));
            rc = BR_EIO;
        }
        close(fd);
        free(path);
        return rc;
    }
    /* Ours now: whatever a crashed daemon wrote goes, and our PID goes in. */
    len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    errno = 0;
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
        br_warn("store: cannot write the PID into %s: %s (the lock holds all the same)", path,
                errno ? strerror(errno) : "short write");
    *out = br_calloc(1, sizeof(**out));
    (*out)->fd = fd;
    (*out)->path = path;
    return 0;
}

const char *
br_store_lock_path(const struct br_store_lock *l)
{
    return l->path;
}

void
br_store_lock_free(struct br_store_lock *l)
{
    if (l == NULL)
        return;
    /* Closing the only descriptor of the file releases the lock. */
    close(l->fd);
    free(l->path);
    free(l);
}
