/*
 * test_batching.c - how long a message waits for the next ones
 * (batching.c): coalesce_ms while the tracker keeps up, wider toward the
 * backlog's drain time and along the daily budget's ramp, never above
 * coalesce_max, and narrow again as soon as the inputs drop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bridge/batching.h"
#include "bridge/br.h"
#include "bridge/config.h"
#include "bridge/store.h"
#include "support/temp_store.h"

static struct br_batching_in
in_of(int64_t coalesce_ms, int64_t max_ms, int64_t backlog, double rps, double projected, long quota)
{
    struct br_batching_in in = {coalesce_ms, max_ms, backlog, rps, projected, quota};
    return in;
}

static int64_t
wait_of(int64_t coalesce_ms, int64_t max_ms, int64_t backlog, double rps, double projected, long quota)
{
    struct br_batching_in in = in_of(coalesce_ms, max_ms, backlog, rps, projected, quota);
    return br_batching_wait_ms(&in);
}

static void
test_idle_is_coalesce_ms(void **state)
{
    (void)state;
    assert_int_equal(wait_of(2000, 300000, 0, 1, 0, 0), 2000);
    assert_int_equal(wait_of(750, 60000, 0, 5, 0, 20000), 750);
    /* A backlog the tracker sends within coalesce_ms changes nothing. */
    assert_int_equal(wait_of(2000, 300000, 2, 1, 0, 0), 2000);
    assert_int_equal(wait_of(2000, 300000, 9, 5, 0, 0), 2000);
    /* A budget far from its quota neither. */
    assert_int_equal(wait_of(2000, 300000, 0, 1, 15000, 20000), 2000);
    assert_int_equal(wait_of(2000, 300000, 0, 1, 16000, 20000), 2000);
    /* coalesce_ms 0: at once. */
    assert_int_equal(wait_of(0, 300000, 0, 1, 0, 0), 0);
}

static void
test_backlog_widens_and_narrows(void **state)
{
    (void)state;
    /* 10 jobs at 1 a second: 10 s behind. */
    assert_int_equal(wait_of(2000, 300000, 10, 1, 0, 0), 10000);
    /* It grows with the backlog ... */
    assert_int_equal(wait_of(2000, 300000, 40, 1, 0, 0), 40000);
    assert_int_equal(wait_of(2000, 300000, 40, 2, 0, 0), 20000);
    assert_int_equal(wait_of(2000, 300000, 7, 0.5, 0, 0), 14000);
    /* ... and shrinks with it, back to coalesce_ms. */
    assert_int_equal(wait_of(2000, 300000, 3, 1, 0, 0), 3000);
    assert_int_equal(wait_of(2000, 300000, 1, 1, 0, 0), 2000);
    assert_int_equal(wait_of(2000, 300000, 0, 1, 0, 0), 2000);
    /* coalesce_ms 0 asks for every message at once: a backlog does not change that. */
    assert_int_equal(wait_of(0, 300000, 5, 1, 0, 0), 0);
    assert_int_equal(wait_of(0, 300000, 5, 1, 30000, 20000), 0);
    /* A rate of 0 (unknown) does not divide. */
    assert_int_equal(wait_of(2000, 300000, 50, 0, 0, 0), 2000);
}

static void
test_caps(void **state)
{
    (void)state;
    assert_int_equal(wait_of(2000, 300000, 100000, 1, 0, 0), 300000);
    assert_int_equal(wait_of(2000, 30000, 31, 1, 0, 0), 30000);
    assert_int_equal(wait_of(2000, 30000, 29, 1, 0, 0), 29000);
    assert_int_equal(wait_of(2000, 30000, 0, 1, 90000, 20000), 30000);
    /* Both at once: still the cap. */
    assert_int_equal(wait_of(2000, 30000, 1000, 1, 90000, 20000), 30000);
}

static void
test_budget_ramp(void **state)
{
    (void)state;
    /* From 80% of the quota projected to 100%, in proportion, coalesce_ms to the widest. */
    assert_int_equal(wait_of(2000, 302000, 0, 1, 16000, 20000), 2000);
    assert_int_equal(wait_of(2000, 302000, 0, 1, 17000, 20000), 77000);
    assert_int_equal(wait_of(2000, 302000, 0, 1, 18000, 20000), 152000);
    assert_int_equal(wait_of(2000, 302000, 0, 1, 19000, 20000), 227000);
    assert_int_equal(wait_of(2000, 302000, 0, 1, 20000, 20000), 302000);
    assert_int_equal(wait_of(2000, 302000, 0, 1, 25000, 20000), 302000);
    /* Back under 80%: narrow again. */
    assert_int_equal(wait_of(2000, 302000, 0, 1, 15999, 20000), 2000);
    /* No quota, or nothing projected: no ramp. */
    assert_int_equal(wait_of(2000, 302000, 0, 1, 25000, 0), 2000);
    assert_int_equal(wait_of(2000, 302000, 0, 1, 0, 20000), 2000);
}

static void
test_widest_of_both(void **state)
{
    (void)state;
    /* The backlog says 100 s, the budget (90%) about 152 s: the budget's. */
    assert_int_equal(wait_of(2000, 302000, 100, 1, 18000, 20000), 152000);
    /* The backlog says 200 s, the budget (85%) 77 s: the backlog's. */
    assert_int_equal(wait_of(2000, 302000, 200, 1, 17000, 20000), 200000);
}

static void
test_no_widening(void **state)
{
    (void)state;
    /* coalesce_max 0, or not above coalesce_ms: always coalesce_ms. */
    assert_int_equal(wait_of(2000, 0, 1000, 1, 50000, 20000), 2000);
    assert_int_equal(wait_of(2000, 2000, 1000, 1, 50000, 20000), 2000);
    assert_int_equal(wait_of(0, 0, 1000, 1, 50000, 20000), 0);
}

static void
test_from_the_state_and_config(void **state)
{
    struct br_config cfg;
    struct br_batching b;

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    memset(&b, 0, sizeof(b));
    cfg.coalesce_ms = 1500;
    cfg.coalesce_max_s = 60;
    cfg.tracker_rps = 2;
    /* No state (a unit test's env): coalesce_ms. */
    assert_int_equal(br_batching_current_ms(NULL, &cfg), 1500);
    assert_int_equal(br_batching_current_ms(&b, &cfg), 1500);
    b.backlog = 30;
    assert_int_equal(br_batching_current_ms(&b, &cfg), 15000);
    b.backlog = 500;
    assert_int_equal(br_batching_current_ms(&b, &cfg), 60000);
    b.backlog = 0;
    b.projected = 21000;
    b.quota = 20000;
    assert_int_equal(br_batching_current_ms(&b, &cfg), 60000);
    cfg.coalesce_max_s = 0;
    assert_int_equal(br_batching_current_ms(&b, &cfg), 1500);
}

/* The day's budget of a test: the figures it is given. */
struct budget {
    double projected;
    long quota;
    int asked;
};

static void
budget_of(void *arg, int64_t now_ms, double *projected, long *quota)
{
    struct budget *b = arg;
    (void)now_ms;
    b->asked++;
    *projected = b->projected;
    *quota = b->quota;
}

/*
 * The state: the tracker's jobs due by now are counted (not another
 * upstream's, not one due later, not one done), at most once a second;
 * the budget hook is asked at each count.
 */
static void
test_refresh_counts_the_backlog(void **state)
{
    char dir[64];
    char *path;
    struct br_store *store;
    struct br_config cfg;
    struct br_batching b;
    struct budget budget = {0, 0, 0};
    int64_t now = br_now_ms() + 10000, id = 0; /* jobs are added at the real clock, before */

    (void)state;
    path = temp_store_open(dir, "batching", &store);
    memset(&cfg, 0, sizeof(cfg));
    memset(&b, 0, sizeof(b));
    cfg.coalesce_ms = 2000;
    cfg.coalesce_max_s = 300;
    cfg.tracker_rps = 1;
    b.budget = budget_of;
    b.budget_arg = &budget;

    for (int i = 0; i < 12; i++)
        assert_int_equal(br_store_job_add_at(store, "t:1", "tracker", "comment", 1, "{}", now - 1000, &id), 0);
    assert_int_equal(br_store_job_add_at(store, "t:2", "tracker", "comment", 2, "{}", now + 60000, &id), 0);
    assert_int_equal(br_store_job_add_at(store, "c:1", "chatra:shop", "reply", 1, "{}", now - 1000, &id), 0);
    br_batching_refresh(&b, store, &cfg, now);
    assert_int_equal(b.backlog, 12);
    assert_int_equal(budget.asked, 1);
    assert_int_equal(br_batching_current_ms(&b, &cfg), 12000);

    /* Within the second nothing is counted again. */
    assert_int_equal(br_store_job_add_at(store, "t:3", "tracker", "comment", 3, "{}", now - 1000, &id), 0);
    br_batching_refresh(&b, store, &cfg, now + 999);
    assert_int_equal(b.backlog, 12);
    assert_int_equal(budget.asked, 1);
    br_batching_refresh(&b, store, &cfg, now + 1000);
    assert_int_equal(b.backlog, 13);
    /* The later one is due a minute on. */
    br_batching_refresh(&b, store, &cfg, now + 61000);
    assert_int_equal(b.backlog, 14);

    /* Done jobs drop out, and the wait narrows; the budget alone widens it again. */
    assert_int_equal(br_store_job_finish(store, id, BR_JOB_DONE, 1, 0, false, NULL, NULL, NULL), 0);
    br_batching_refresh(&b, store, &cfg, now + 62000);
    assert_int_equal(b.backlog, 13);
    budget.projected = 30000;
    budget.quota = 20000;
    br_batching_refresh(&b, store, &cfg, now + 63000);
    assert_true(b.projected == 30000);
    assert_int_equal(b.quota, 20000);
    assert_int_equal(br_batching_current_ms(&b, &cfg), 300000);
    assert_int_equal(budget.asked, 5);
    budget.projected = 0;
    budget.quota = 0;

    /* A lane held by a dead task creation sends nothing: its comments are no backlog. */
    assert_int_equal(br_store_job_add_at(store, "t:4", "tracker", "task", 4, "{}", now - 1000, &id), 0);
    assert_int_equal(br_store_job_finish(store, id, BR_JOB_DEAD, 5, 0, false, "refused", NULL, NULL), 0);
    for (int i = 0; i < 30; i++)
        assert_int_equal(br_store_job_add_at(store, "t:4", "tracker", "comment", 4, "{}", now - 1000, &id), 0);
    br_batching_refresh(&b, store, &cfg, now + 64000);
    assert_int_equal(b.backlog, 13);
    assert_int_equal(br_batching_current_ms(&b, &cfg), 13000);
    /* Retried (queued again), the task holds its lane no more: its jobs count. */
    assert_int_equal(br_store_job_finish(store, id - 30, BR_JOB_QUEUED, 0, 0, false, NULL, NULL, NULL), 0);
    br_batching_refresh(&b, store, &cfg, now + 65000);
    assert_int_equal(b.backlog, 44);

    temp_store_close(dir, path, store);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_is_coalesce_ms),
        cmocka_unit_test(test_backlog_widens_and_narrows),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_budget_ramp),
        cmocka_unit_test(test_widest_of_both),
        cmocka_unit_test(test_no_widening),
        cmocka_unit_test(test_from_the_state_and_config),
        cmocka_unit_test(test_refresh_counts_the_backlog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
