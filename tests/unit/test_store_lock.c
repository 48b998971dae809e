/*
 * test_store_lock.c - one daemon per store: the lock on "<store>.lock" is
 * refused to a second holder (named by its PID), shared by two names of one
 * database, released by closing and by the death of its holder (SIGKILL),
 * and a lock file left behind with any content does not block.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge/br.h"
#include "bridge/store_lock.h"
#include "support/tmpdir.h"

struct fx {
    char dir[64];
    char *db, *lock;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/br-test-lock-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->db = br_asprintf("%s/bridge.db", f->dir);
    f->lock = br_asprintf("%s/bridge.db.lock", f->dir);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    tmpdir_remove(f->dir);
    free(f->db);
    free(f->lock);
    free(f);
    return 0;
}

static char *
slurp(const char *path)
{
    static char buf[64];
    FILE *fp = fopen(path, "r");
    size_t n;

    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void
spit(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void
test_second_holder_refused_and_named(void **state)
{
    struct fx *f = *state;
    struct br_store_lock *a, *b = (void *)1;
    char pid[32];
    pid_t holder = -1;

    /* The database need not exist yet: a first start takes the lock before SQLite makes it. */
    assert_int_equal(br_store_lock_take(&a, f->db, &holder), 0);
    assert_non_null(a);
    assert_string_equal(br_store_lock_path(a), f->lock);
    snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    assert_string_equal(slurp(f->lock), pid);

    /* Another open of the file (as another process would) is refused and told who holds it. */
    assert_int_equal(br_store_lock_take(&b, f->db, &holder), BR_EEXIST);
    assert_null(b);
    assert_int_equal(holder, getpid());

    br_store_lock_free(a);
    assert_int_equal(br_store_lock_take(&b, f->db, &holder), 0);
    br_store_lock_free(b);
    br_store_lock_free(NULL);
}

static void
test_two_names_one_lock(void **state)
{
    struct fx *f = *state;
    struct br_store_lock *a, *b;
    char *alias = br_asprintf("%s/alias.db", f->dir);
    char *relative;
    pid_t holder;

    spit(f->db, "");
    assert_int_equal(symlink(f->db, alias), 0);
    assert_int_equal(br_store_lock_take(&a, alias, &holder), 0);
    assert_string_equal(br_store_lock_path(a), f->lock);
    assert_int_equal(br_store_lock_take(&b, f->db, &holder), BR_EEXIST);
    /* A name with "." and ".." in it is the same store too. */
    relative = br_asprintf("%s/./../%s/bridge.db", f->dir, strrchr(f->dir, '/') + 1);
    assert_int_equal(br_store_lock_take(&b, relative, &holder), BR_EEXIST);
    br_store_lock_free(a);
    free(relative);
    free(alias);
}

static void
test_stale_file_does_not_block(void **state)
{
    struct fx *f = *state;
    struct br_store_lock *a;
    char pid[32];
    pid_t holder;

    /* What a crashed daemon (or anything else) left in the file does not matter: only the lock does. */
    spit(f->lock, "999999\n");
    assert_int_equal(br_store_lock_take(&a, f->db, &holder), 0);
    snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    assert_string_equal(slurp(f->lock), pid);
    br_store_lock_free(a);

    spit(f->lock, "not a pid at all, and rather longer than any pid would be\n");
    assert_int_equal(br_store_lock_take(&a, f->db, &holder), 0);
    assert_string_equal(slurp(f->lock), pid);
    br_store_lock_free(a);
}

static void
test_holder_killed_releases(void **state)
{
    struct fx *f = *state;
    struct br_store_lock *a;
    int ready[2];
    pid_t child, holder;
    char c;

    assert_int_equal(pipe(ready), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct br_store_lock *l;
        pid_t h;
        close(ready[0]);
        if (br_store_lock_take(&l, f->db, &h) != 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);

    assert_int_equal(br_store_lock_take(&a, f->db, &holder), BR_EEXIST);
    assert_int_equal(holder, child);

    /* A crash: no cleanup runs, the file stays with the dead PID, and the kernel drops the lock. */
    assert_int_equal(kill(child, SIGKILL), 0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    assert_int_equal(access(f->lock, F_OK), 0);
    assert_int_equal(br_store_lock_take(&a, f->db, &holder), 0);

    /* A holder that could not write its PID: the dead one left in the file is not named. */
    {
        struct br_store_lock *b;
        char text[32];
        snprintf(text, sizeof(text), "%ld\n", (long)child);
        spit(f->lock, text);
        assert_int_equal(br_store_lock_take(&b, f->db, &holder), BR_EEXIST);
        assert_int_equal(holder, 0);
    }
    br_store_lock_free(a);
}

static void
test_unopenable_lock_file(void **state)
{
    struct fx *f = *state;
    struct br_store_lock *a;
    char *db = br_asprintf("%s/missing/bridge.db", f->dir);
    pid_t holder;

    assert_int_equal(br_store_lock_take(&a, db, &holder), BR_EIO);
    assert_null(a);
    free(db);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_second_holder_refused_and_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_names_one_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_file_does_not_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holder_killed_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unopenable_lock_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
