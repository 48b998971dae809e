/*
 * limit_files.h - a full disk for unit tests: the process may not grow
 * any file past the current size of the store's WAL, so every write that
 * needs a new WAL frame fails as on a full disk.  Shared by the store and
 * handler tests (a header of static functions: each test program is one
 * translation unit).
 */
#ifndef BR_TEST_LIMIT_FILES_H
#define BR_TEST_LIMIT_FILES_H

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "bridge/br.h"

/* on: no file may grow past the WAL's size (store_path + "-wal"); off: lift it. */
static void
limit_files(const char *store_path, bool on)
{
    static struct rlimit saved;
    struct rlimit rl;

    if (on) {
        char *wal = br_asprintf("%s-wal", store_path);
        struct stat st;
        assert_int_equal(stat(wal, &st), 0);
        free(wal);
        signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
        rl = saved;
        rl.rlim_cur = (rlim_t)st.st_size;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
    } else {
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
        signal(SIGXFSZ, SIG_DFL);
    }
}

#endif
