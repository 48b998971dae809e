/*
 * test_poll_plan.c - when the tracker is polled (bridge/poll_plan.c):
 * never without an open task; with webhooks (Planfix) only while an open
 * task is active, plus once after a start, backing off while webhooks
 * bring the replies; without webhooks (Redmine) while any task is open,
 * backing off to 15 minutes while none is active.  Every branch, with
 * the interval followed over a series of checks as the engine makes them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bridge/poll_plan.h"

#define S 1000 /* ms */

/* A Planfix bridge with poll_interval_s 60 and an active open task, polled a minute ago. */
static struct br_poll_facts
planfix_active(void)
{
    struct br_poll_facts f = {.interval_ms = 60 * S, .open = true, .active = true, .webhooks = true,
                              .since_ms = 60 * S, .step_ms = 60 * S};
    return f;
}

static struct br_poll_facts
redmine_quiet(void)
{
    struct br_poll_facts f = {.interval_ms = 10 * S, .polled_only = true, .open = true, .since_ms = 10 * S,
                              .step_ms = 10 * S};
    return f;
}

static void
assert_plan(struct br_poll_facts f, bool poll, int64_t step_ms)
{
    struct br_poll_plan p = br_poll_decide(&f);
    assert_int_equal(p.poll, poll);
    assert_int_equal(p.step_ms, step_ms);
}

static void
test_off_or_no_open_task_never_polls(void **state)
{
    struct br_poll_facts f = planfix_active();

    (void)state;
    f.interval_ms = 0; /* tracker.poll_interval_s 0 */
    f.since_ms = -1;
    assert_plan(f, false, 0);
    f = planfix_active();
    f.open = f.active = false;
    f.since_ms = -1; /* not even after a start */
    assert_plan(f, false, 0);
    f = redmine_quiet();
    f.open = false;
    f.since_ms = -1;
    f.found = BR_POLL_FOUND_NEW;
    assert_plan(f, false, 0);
}

static void
test_planfix_quiet_open_tasks_poll_only_after_a_start(void **state)
{
    struct br_poll_facts f = planfix_active();

    (void)state;
    f.active = false;
    f.step_ms = 0;
    f.since_ms = -1; /* the first check after a start: what was sent while down is read */
    assert_plan(f, true, 0);
    f.since_ms = 60 * S;
    assert_plan(f, false, 0);
    f.since_ms = 3600 * S;
    f.step_ms = 120 * S; /* was polling: it pauses */
    assert_plan(f, false, 0);
}

static void
test_planfix_active_polls_every_interval_without_webhooks(void **state)
{
    struct br_poll_facts f = planfix_active();

    (void)state;
    f.webhooks = false;
    f.found = BR_POLL_FOUND_NOTHING;
    assert_plan(f, true, 60 * S);
    /* Polling resumes at the interval, at once after a start, at the next check after a pause. */
    f.step_ms = 0;
    f.since_ms = -1;
    assert_plan(f, true, 60 * S);
    f.since_ms = 5 * 3600 * S;
    assert_plan(f, true, 60 * S);
    /* A longer step from the webhooks' time falls back to the interval once they stop. */
    f.step_ms = 480 * S;
    f.since_ms = 60 * S;
    assert_plan(f, true, 60 * S);
}

static void
test_planfix_backs_off_while_webhooks_bring_the_replies(void **state)
{
    struct br_poll_facts f = planfix_active();
    int64_t want[] = {120, 240, 480, 960, 960, 960};

    (void)state;
    /* Each poll that found nothing new doubles the step, up to 16 intervals. */
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct br_poll_plan p;
        f.found = BR_POLL_FOUND_NOTHING;
        p = br_poll_decide(&f);
        assert_int_equal(p.step_ms, want[i] * S);
        /* The checks in between (every interval) wait, the one at the step's end polls. */
        f.step_ms = p.step_ms;
        f.found = BR_POLL_FOUND_UNKNOWN;
        for (int64_t since = 60; since < want[i]; since += 60) {
            f.since_ms = since * S;
            assert_plan(f, false, want[i] * S);
        }
        f.since_ms = want[i] * S;
        assert_plan(f, true, want[i] * S);
    }
    /* A check a little early (timers are not exact) is the one nearest the end: it polls. */
    f.since_ms = 960 * S - 29 * S;
    assert_plan(f, true, 960 * S);
    f.since_ms = 960 * S - 31 * S;
    assert_plan(f, false, 960 * S);
    /* A reply no webhook brought: back to the interval. */
    f.found = BR_POLL_FOUND_NEW;
    f.since_ms = 960 * S;
    assert_plan(f, true, 60 * S);
}

static void
test_planfix_step_longer_than_the_maximum_is_cut(void **state)
{
    struct br_poll_facts f = planfix_active();

    (void)state;
    /* poll_interval_s made shorter by a reload, with the engine's step from before. */
    f.interval_ms = 10 * S;
    f.step_ms = 960 * S;
    f.since_ms = 10 * S;
    assert_plan(f, false, 160 * S);
    f.since_ms = 160 * S;
    assert_plan(f, true, 160 * S);
}

static void
test_redmine_active_polls_every_interval(void **state)
{
    struct br_poll_facts f = redmine_quiet();

    (void)state;
    f.active = true;
    f.found = BR_POLL_FOUND_NOTHING;
    f.step_ms = 80 * S;
    f.since_ms = 10 * S;
    assert_plan(f, true, 10 * S);
    f.since_ms = -1;
    f.step_ms = 0;
    assert_plan(f, true, 10 * S);
    /* Webhooks do not matter to a tracker that has none. */
    f.webhooks = true;
    f.since_ms = 10 * S;
    assert_plan(f, true, 10 * S);
}

static void
test_redmine_quiet_backs_off_to_fifteen_minutes(void **state)
{
    struct br_poll_facts f = redmine_quiet();
    int64_t want[] = {20, 40, 80, 160, 320, 640, 900, 900};

    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct br_poll_plan p;
        f.found = BR_POLL_FOUND_NOTHING;
        f.since_ms = 10 * S;
        p = br_poll_decide(&f);
        assert_int_equal(p.step_ms, want[i] * S);
        assert_false(p.poll);
        f.step_ms = p.step_ms;
        f.found = BR_POLL_FOUND_UNKNOWN;
        f.since_ms = want[i] * S;
        assert_plan(f, true, want[i] * S);
    }
    /* A change found: back to the interval at once. */
    f.found = BR_POLL_FOUND_NEW;
    f.since_ms = 10 * S;
    assert_plan(f, true, 10 * S);
    /* After a pause (no task was open) the first check polls at the interval. */
    f.found = BR_POLL_FOUND_UNKNOWN;
    f.step_ms = 0;
    f.since_ms = 3600 * S;
    assert_plan(f, true, 10 * S);
}

static void
test_redmine_interval_longer_than_fifteen_minutes_stays(void **state)
{
    struct br_poll_facts f = redmine_quiet();

    (void)state;
    f.interval_ms = f.step_ms = f.since_ms = 1800 * S;
    f.found = BR_POLL_FOUND_NOTHING;
    assert_plan(f, true, 1800 * S);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_or_no_open_task_never_polls),
        cmocka_unit_test(test_planfix_quiet_open_tasks_poll_only_after_a_start),
        cmocka_unit_test(test_planfix_active_polls_every_interval_without_webhooks),
        cmocka_unit_test(test_planfix_backs_off_while_webhooks_bring_the_replies),
        cmocka_unit_test(test_planfix_step_longer_than_the_maximum_is_cut),
        cmocka_unit_test(test_redmine_active_polls_every_interval),
        cmocka_unit_test(test_redmine_quiet_backs_off_to_fifteen_minutes),
        cmocka_unit_test(test_redmine_interval_longer_than_fifteen_minutes_stays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
