/*
 * test_store_backup.c - br_store_backup: the copy is the store as it was
 * when the backup began although another connection (the daemon) commits
 * between its steps (but for its open jobs, marked to look before they
 * write), the copy never starts over, the daemon's commits go
 * through meanwhile, the copy is one file of its owner's that the store
 * opens, and a backup never replaces a file and leaves nothing behind when
 * it fails (an existing target, a directory, a missing directory, a full
 * disk).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge/store.h"
#include "support/tmpdir.h"

#define N_CONV 300

struct fx {
    char dir[64];
    char *path, *to;
    struct br_store *s;       /* the backup's connection, as the command opens it */
    struct br_store *daemon;  /* another connection that keeps writing */
    int calls, last_copied, went_back;
    int64_t during;           /* the conversation the daemon made while the backup ran */
    int64_t done_job, open_job;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char client[32], *visitor = calloc(1, 1200);

    assert_non_null(f);
    assert_non_null(visitor);
    strcpy(f->dir, "/tmp/br-test-backup-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->path = br_asprintf("%s/bridge.db", f->dir);
    f->to = br_asprintf("%s/copy.db", f->dir);
    assert_int_equal(br_store_open(&f->daemon, f->path), 0);
    /* Enough rows for a few hundred pages, so that a backup takes many small steps. */
    memset(visitor, 'v', 1100);
    assert_int_equal(br_store_begin(f->daemon), 0);
    for (int i = 0; i < N_CONV; i++) {
        int64_t id;
        snprintf(client, sizeof(client), "client-%d", i);
        assert_int_equal(br_store_conv_create(f->daemon, "shop", client, &id), 0);
        assert_int_equal(br_store_conv_update_visitor(f->daemon, id, NULL, "chat", "Maria", NULL, NULL, visitor), 0);
    }
    /* Jobs: one done, one waiting. */
    assert_int_equal(br_store_job_add(f->daemon, "conv:1", "tracker", "task", 1, "{}", &f->done_job), 0);
    assert_int_equal(br_store_job_finish(f->daemon, f->done_job, BR_JOB_DONE, 1, 0, false, NULL, NULL, NULL), 0);
    assert_int_equal(br_store_job_add(f->daemon, "conv:1", "tracker", "comment", 1, "{}", &f->open_job), 0);
    assert_int_equal(br_store_commit(f->daemon), 0);
    free(visitor);
    assert_int_equal(br_store_open(&f->s, f->path), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    br_store_free(f->s);
    br_store_free(f->daemon);
    tmpdir_remove(f->dir);
    free(f->path);
    free(f->to);
    free(f);
    return 0;
}

/* The names in the test's directory, sorted, joined by spaces. */
static char *
listing(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    struct br_buf b;

    assert_true(n >= 0);
    br_buf_init(&b, 0);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.')
            br_buf_printf(&b, "%s%s", b.len ? " " : "", names[i]->d_name);
        free(names[i]);
    }
    free(names);
    br_buf_puts(&b, "");
    return br_buf_steal(&b);
}

/* Between two steps of the copy, the daemon takes a webhook: a new conversation, committed. */
static void
daemon_writes(void *arg, int copied, int total)
{
    struct fx *f = arg;

    assert_true(copied > 0 && copied < total);
    if (copied < f->last_copied)
        f->went_back++;
    f->last_copied = copied;
    if (f->calls++ == 0)
        assert_int_equal(BR_STORE_TX(f->daemon, br_store_conv_create(f->daemon, "shop", "during", &f->during)), 0);
    else if (f->calls == 3)
        assert_int_equal(BR_STORE_TX(f->daemon, br_store_conv_set_gen(f->daemon, 1, 7)), 0);
}

static void
test_copy_while_the_daemon_writes(void **state)
{
    struct fx *f = *state;
    struct br_backup b = {.step_pages = 8, .progress = daemon_writes, .arg = f};
    struct br_store *copy;
    struct br_conv c;
    struct br_job job;
    struct stat st;
    char client[32], *files;
    unsigned char header[20];
    FILE *fp;

    assert_int_equal(br_store_backup(f->s, f->to, &b), 0);
    /* Many steps, each further than the last: the daemon's commits never sent the copy back to page 1. */
    assert_true(f->calls > 10);
    assert_int_equal(f->went_back, 0);
    assert_true(b.pages > 8 * f->calls);
    assert_int_equal(b.bytes, (int64_t)b.pages * 4096);

    /* The daemon's commits went through while the backup read. */
    assert_int_equal(br_store_conv_by_client(f->daemon, "shop", "during", &c), 0);
    br_conv_dispose(&c);

    /* One file of its own, readable by its owner only, and nothing else left behind. */
    files = listing(f->dir);
    assert_string_equal(files, "bridge.db bridge.db-shm bridge.db-wal copy.db");
    free(files);
    assert_int_equal(stat(f->to, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, b.bytes);
    /* The file format's read and write versions are 1 (a rollback journal), not 2 (WAL). */
    fp = fopen(f->to, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(header, 1, sizeof(header), fp), sizeof(header));
    fclose(fp);
    assert_memory_equal(header, "SQLite format 3", 16);
    assert_int_equal(header[18], 1);
    assert_int_equal(header[19], 1);

    /* The store as it was when the backup began: every conversation, none of the later writes. */
    assert_int_equal(br_store_open(&copy, f->to), 0);
    for (int i = 0; i < N_CONV; i++) {
        snprintf(client, sizeof(client), "client-%d", i);
        assert_int_equal(br_store_conv_by_client(copy, "shop", client, &c), 0);
        assert_string_equal(c.name, "Maria");
        if (i == 0)
            assert_int_equal(c.gen, 0);
        br_conv_dispose(&c);
    }
    assert_int_equal(br_store_conv_by_client(copy, "shop", "during", &c), BR_ENOTFOUND);
    /* The waiting job may have run since: in the copy it looks before it writes. */
    assert_int_equal(br_store_job_get(copy, f->open_job, &job), 0);
    assert_int_equal(job.state, BR_JOB_QUEUED);
    assert_true(job.recover);
    br_job_dispose(&job);
    assert_int_equal(br_store_job_get(copy, f->done_job, &job), 0);
    assert_int_equal(job.state, BR_JOB_DONE);
    assert_false(job.recover);
    br_job_dispose(&job);
    assert_int_equal(br_store_job_get(f->s, f->open_job, &job), 0);
    assert_false(job.recover);
    br_job_dispose(&job);
    assert_string_equal(br_store_instance_id(copy), br_store_instance_id(f->s));
    br_store_free(copy);
}

static void
test_never_over_a_file(void **state)
{
    struct fx *f = *state;
    char *sub = br_asprintf("%s/sub", f->dir), *missing = br_asprintf("%s/missing/copy.db", f->dir);
    char *in_file = br_asprintf("%s/copy.db/x.db", f->dir), *files, text[16] = {0};
    FILE *fp = fopen(f->to, "w");

    assert_non_null(fp);
    fputs("precious", fp);
    fclose(fp);
    assert_int_equal(br_store_backup(f->s, f->to, NULL), BR_EEXIST);
    fp = fopen(f->to, "r");
    assert_int_equal(fread(text, 1, sizeof(text) - 1, fp), 8);
    fclose(fp);
    assert_string_equal(text, "precious");
    /* Nor the store itself. */
    assert_int_equal(br_store_backup(f->s, f->path, NULL), BR_EEXIST);

    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(br_store_backup(f->s, sub, NULL), BR_EEXIST);
    assert_int_equal(br_store_backup(f->s, missing, NULL), BR_EIO);
    assert_int_equal(br_store_backup(f->s, in_file, NULL), BR_EIO);

    files = listing(f->dir);
    assert_string_equal(files, "bridge.db bridge.db-shm bridge.db-wal copy.db sub");
    free(files);
    free(sub);
    free(missing);
    free(in_file);
}

static void
test_full_disk_leaves_nothing(void **state)
{
    struct fx *f = *state;
    struct rlimit saved, rl;
    char *files;
    int rc;

    /* No file may grow past 16 KiB: the copy (more than 300 KiB) cannot be written. */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    rl = saved;
    rl.rlim_cur = 16384;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
    rc = br_store_backup(f->s, f->to, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rc, BR_EIO);
    files = listing(f->dir);
    assert_string_equal(files, "bridge.db bridge.db-shm bridge.db-wal");
    free(files);
    /* The store's connection is left as it was: a backup after that works. */
    assert_int_equal(br_store_ping(f->s), 0);
    assert_int_equal(br_store_backup(f->s, f->to, NULL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy_while_the_daemon_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_over_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_leaves_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
