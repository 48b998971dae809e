/*
 * store_lock.h - one daemon per store.  The daemon holds an advisory lock
 * (flock) on "<store>.lock", a file beside the database, for its whole
 * life, with its PID written inside so that a second daemon can name the
 * running one.  The kernel drops the lock when the process ends, however
 * it ends (SIGKILL included): a lock file left by a crash never blocks a
 * start.  The file itself stays; only the lock on it counts.
 *
 * A separate file, and flock rather than fcntl: SQLite takes POSIX (fcntl)
 * locks on the database, and a process's fcntl locks on one file are all
 * dropped when it closes any descriptor of that file.  The store commands
 * (identities, retry, backup...) take no lock: they work beside the daemon.
 */
#ifndef BR_STORE_LOCK_H
#define BR_STORE_LOCK_H

#include <sys/types.h>

struct br_store_lock;

/*
 * Takes the lock of the database at db_path (which need not exist yet; its
 * directory must).  0 when taken; BR_EEXIST when another process holds it,
 * with *holder its PID (0 when unknown: not written yet, or could not be); BR_EIO when the
 * lock file cannot be opened or locked (logged, with the reason).
 */
int br_store_lock_take(struct br_store_lock **out, const char *db_path, pid_t *holder);
/* The lock file's path (for messages). */
const char *br_store_lock_path(const struct br_store_lock *l);
/* Releases the lock and frees l; NULL is a no-op. */
void br_store_lock_free(struct br_store_lock *l);

/* The lock file's path for db_path, symbolic links resolved as SQLite does (caller frees). */
char *br_store_lock_path_of(const char *db_path);

#endif
