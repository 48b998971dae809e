/*
 * test_budget.c - the tracker's daily budget (bridge/budget.c): counting,
 * the quota and what is left, days rolling over, the count kept in the
 * store across a free and a new (and written at most a second late), the
 * day's projection, and the scenario clock (BR_BUDGET_DAY_S, read once:
 * checked in a child process of this program started with it set).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bridge/br.h"
#include "bridge/budget.h"
#include "bridge/log.h"
#include "bridge/store.h"
#include "support/temp_store.h"

#define DAY (86400LL * 1000)
/* Noon of some UTC day. */
#define D 20000LL
#define NOON (D * DAY + DAY / 2)

static const char *self_path;

struct fx {
    char dir[64];
    char *db;
    struct br_store *s;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->db = temp_store_open(f->dir, "budget", &f->s);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    temp_store_close(f->dir, f->db, f->s);
    free(f);
    return 0;
}

static uint64_t
stored(struct fx *f, int64_t day)
{
    uint64_t n = 99;
    assert_int_equal(br_store_usage_get(f->s, day, &n), 0);
    return n;
}

static void
test_day_length(void **state)
{
    (void)state;
    assert_int_equal(br_budget_day_ms(), DAY);
    assert_int_equal(br_budget_day_end(NULL, NOON), (D + 1) * DAY);
    assert_int_equal(br_budget_day_end(NULL, D * DAY), (D + 1) * DAY);
    assert_int_equal(br_budget_day_end(NULL, (D + 1) * DAY - 1), (D + 1) * DAY);
}

/* Requests count, against the quota; the tracker's own word wins for what is left. */
static void
test_counting(void **state)
{
    struct fx *f = *state;
    struct br_budget *b = br_budget_new(f->s, 5, NOON);

    assert_int_equal(br_budget_quota(b), 5);
    assert_int_equal(br_budget_used_today(b, NOON), 0);
    assert_int_equal(br_budget_left(b, NOON), 5);
    assert_int_equal(br_budget_told(b, NOON), -1);
    for (int i = 0; i < 3; i++)
        br_budget_spend(b, NOON + i);
    assert_int_equal(br_budget_used_today(b, NOON + 3), 3);
    assert_int_equal(br_budget_left(b, NOON + 3), 2);
    assert_false(br_budget_exhausted(b, NOON + 3));
    br_budget_told_left(b, 17999);
    assert_int_equal(br_budget_told(b, NOON + 3), 17999);
    assert_int_equal(br_budget_left(b, NOON + 3), 17999);
    br_budget_spend(b, NOON + 4);
    br_budget_spend(b, NOON + 5);
    assert_true(br_budget_exhausted(b, NOON + 5));
    br_budget_spend(b, NOON + 6); /* one more (a request already on its way) is still counted */
    assert_int_equal(br_budget_used_today(b, NOON + 6), 6);
    /* No quota: never exhausted, and left is only what the tracker said. */
    br_budget_set_quota(b, 0);
    assert_int_equal(br_budget_quota(b), 0);
    assert_false(br_budget_exhausted(b, NOON + 6));
    br_budget_told_left(b, -1);
    assert_int_equal(br_budget_left(b, NOON + 6), -1);
    br_budget_set_quota(b, 10);
    assert_int_equal(br_budget_left(b, NOON + 6), 4);
    br_budget_set_quota(b, -3); /* below 0 means none */
    assert_int_equal(br_budget_quota(b), 0);
    br_budget_free(b);
    br_budget_free(NULL);
}

/* A new UTC day starts from 0 (and forgets the tracker's word); each day keeps its own row. */
static void
test_day_rollover(void **state)
{
    struct fx *f = *state;
    int64_t late = (D + 1) * DAY - 500, early = (D + 1) * DAY + 100;
    struct br_budget *b = br_budget_new(f->s, 3, late);

    br_budget_spend(b, late);
    br_budget_spend(b, late + 1);
    br_budget_spend(b, late + 2);
    br_budget_told_left(b, 0);
    assert_true(br_budget_exhausted(b, late + 3));
    assert_int_equal(br_budget_day_end(b, late), (D + 1) * DAY);
    /* The next day, before any request of it. */
    assert_int_equal(br_budget_used_today(b, early), 0);
    assert_int_equal(br_budget_told(b, early), -1);
    assert_false(br_budget_exhausted(b, early));
    assert_int_equal(br_budget_left(b, early), 3);
    br_budget_spend(b, early);
    assert_int_equal(br_budget_used_today(b, early), 1);
    /* The day before went to the store when the day rolled over. */
    assert_int_equal(stored(f, D), 3);
    br_budget_flush(b, early + 1);
    assert_int_equal(stored(f, D + 1), 1);
    br_budget_free(b);
    /* A budget made on the day before (a clock set back) finds that day's count. */
    b = br_budget_new(f->s, 3, late + 10);
    assert_int_equal(br_budget_used_today(b, late + 10), 3);
    assert_true(br_budget_exhausted(b, late + 10));
    br_budget_free(b);
}

/* The count survives a free and a new; a crash loses at most the last second's requests. */
static void
test_persistence(void **state)
{
    struct fx *f = *state;
    struct br_budget *b;

    assert_int_equal(br_store_usage_put(f->s, D - 40, 7), 0);
    assert_int_equal(br_store_usage_put(f->s, D - 10, 8), 0);
    b = br_budget_new(f->s, 20000, NOON);
    /* Days older than BR_BUDGET_KEEP_DAYS are removed; younger ones stay. */
    assert_int_equal(stored(f, D - 40), 0);
    assert_int_equal(stored(f, D - 10), 8);
    br_budget_spend(b, NOON + 10);
    br_budget_spend(b, NOON + 20);
    /* Within the second: not written yet (a crash now would lose these two). */
    assert_int_equal(stored(f, D), 0);
    br_budget_spend(b, NOON + 1000);
    assert_int_equal(stored(f, D), 3);
    br_budget_spend(b, NOON + 1100);
    assert_int_equal(stored(f, D), 3);
    br_budget_flush(b, NOON + 1200);
    assert_int_equal(stored(f, D), 4);
    br_budget_spend(b, NOON + 1300);
    br_budget_free(b); /* a clean stop writes the rest */
    assert_int_equal(stored(f, D), 5);

    /* Another run of the same day goes on from there. */
    b = br_budget_new(f->s, 20000, NOON + 60000);
    assert_int_equal(br_budget_used_today(b, NOON + 60000), 5);
    br_budget_spend(b, NOON + 60001);
    assert_int_equal(br_budget_used_today(b, NOON + 60001), 6);
    br_budget_free(b);
    assert_int_equal(stored(f, D), 6);
    /* A count already stored higher is never lowered. */
    assert_int_equal(br_store_usage_put(f->s, D, 2), 0);
    assert_int_equal(stored(f, D), 6);

    /* The store survives a close too. */
    br_store_free(f->s);
    assert_int_equal(br_store_open(&f->s, f->db), 0);
    b = br_budget_new(f->s, 0, NOON + 120000);
    assert_int_equal(br_budget_used_today(b, NOON + 120000), 6);
    br_budget_free(b);
}

/* Runs sql on the store's file through a connection of its own. */
static void
sql_beside(struct fx *f, const char *sql)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/*
 * A store that cannot tell the day's count when the budget starts: what
 * the budget counts meanwhile is not written over it, and once the store
 * answers, the count it held (an earlier run's) is added.
 */
static void
test_count_unread_at_start(void **state)
{
    struct fx *f = *state;
    struct br_budget *b;

    assert_int_equal(br_store_usage_put(f->s, D, 500), 0);
    /* A budget of an earlier run makes the store's statements: from here on, only their answers fail. */
    br_budget_free(br_budget_new(f->s, 1000, NOON - 10));
    sql_beside(f, "ALTER TABLE tracker_usage RENAME TO tracker_usage_away;");
    b = br_budget_new(f->s, 1000, NOON);
    br_budget_spend(b, NOON + 1);
    br_budget_spend(b, NOON + 2);
    br_budget_flush(b, NOON + 3); /* still no answer: nothing written, the two kept */
    assert_int_equal(br_budget_used_today(b, NOON + 3), 2);
    sql_beside(f, "ALTER TABLE tracker_usage_away RENAME TO tracker_usage;");
    br_budget_flush(b, NOON + 4);
    assert_int_equal(br_budget_used_today(b, NOON + 4), 502);
    assert_int_equal(br_budget_left(b, NOON + 4), 498);
    assert_int_equal(stored(f, D), 502);
    br_budget_spend(b, NOON + 1500);
    assert_int_equal(stored(f, D), 503);
    br_budget_free(b);
}

/*
 * No day before to go by: used today + the pace of the last 1/24 of a day
 * (an hour) over the next hour + the pace seen since today's first request
 * (at least an hour back) over the rest of the day.
 */
static void
test_projection(void **state)
{
    struct fx *f = *state;
    struct br_budget *b = br_budget_new(f->s, 20000, NOON - 3 * 3600 * 1000);

    assert_true(br_budget_projected(b, NOON) == 0.0);
    /* Four at 10:00, outside the last hour: 4 in the 2 h since, over the 11 h after the next one. */
    for (int i = 0; i < 4; i++)
        br_budget_spend(b, NOON - 2 * 3600 * 1000 + i);
    assert_float_equal(br_budget_projected(b, NOON), 4.0 + 4.0 / 2 * 11, 1e-6);
    /*
     * Ten within the last hour (a busy ten minutes): the next hour at
     * that pace (10), the 11 after at the pace since 10:00 (14 in 2 h).
     * The last hour's pace for the whole rest of the day would say
     * 14 + 120.
     */
    for (int i = 0; i < 10; i++)
        br_budget_spend(b, NOON - 5000 - i * 60 * 1000);
    assert_float_equal(br_budget_projected(b, NOON), 14.0 + 10.0 + 14.0 / 2 * 11, 1e-6);
    /* At 18:00 one request within the window: 1 for the next hour, 15 in 8 h for the 5 after. */
    br_budget_spend(b, NOON + DAY / 4 - 1000);
    assert_float_equal(br_budget_projected(b, NOON + DAY / 4), 15.0 + 1.0 + 15.0 / 8 * 5, 1e-6);
    /* An hour later the window is empty: 15 in 9 h for the 4 h after the next one. */
    assert_float_equal(br_budget_projected(b, NOON + DAY / 4 + 3600 * 1000), 15.0 + 15.0 / 9 * 4, 1e-6);
    /* In the last hour of the day, the next hour is all there is. */
    br_budget_spend(b, (D + 1) * DAY - 1800 * 1000);
    assert_float_equal(br_budget_projected(b, (D + 1) * DAY - 1200 * 1000), 16.0 + 1.0 / 3, 1e-6);
    br_budget_free(b);
}

#define HOUR (DAY / 24)
/* hh:mm of day d. */
#define AT(d, hh, mm) ((d) * DAY + (hh) * HOUR + (mm) * 60LL * 1000)

/* n requests spent by b from t on, one a second. */
static void
spend_n(struct br_budget *b, int64_t t, int n)
{
    for (int i = 0; i < n; i++)
        br_budget_spend(b, t + i * 1000LL);
}

static uint64_t
stored_hour(struct fx *f, int64_t day, int hour)
{
    uint64_t h[24];
    assert_int_equal(br_store_usage_hours(f->s, day, 1, h), 0);
    return h[hour];
}

/*
 * The days before shape the projection: a site busy at 09:00 and 14:00
 * every day is not projected at its rush's pace for the whole day, a day
 * busier than the ones before is projected that much busier, and a rush
 * unlike the others counts for the next hour.  The hours are kept in the
 * store across runs; days beyond BR_BUDGET_HISTORY_DAYS do not count.
 */
static void
test_projection_history(void **state)
{
    struct fx *f = *state;
    struct br_budget *b;
    const int64_t y = D - 1; /* yesterday */
    double p;

    /* Yesterday, two runs: 100 requests from 09:00 (then a restart), 100 from 14:00. */
    b = br_budget_new(f->s, 4800, AT(y, 8, 0));
    spend_n(b, AT(y, 9, 0), 100);
    br_budget_free(b);
    assert_int_equal(stored_hour(f, y, 9), 100);
    b = br_budget_new(f->s, 4800, AT(y, 13, 0));
    spend_n(b, AT(y, 14, 0), 100);
    br_budget_free(b);
    assert_int_equal(stored_hour(f, y, 14), 100);
    assert_int_equal(stored_hour(f, y, 9), 100);
    assert_int_equal(stored(f, y), 200);

    /* Today at 09:30, 50 requests in the last half hour, like yesterday's pace. */
    b = br_budget_new(f->s, 4800, AT(D, 0, 1));
    spend_n(b, AT(D, 9, 0), 50);
    /*
     * The recent pace alone would say 50 + 50 x 14.5 = 775.  The shape:
     * 50 so far (half of 09:00's 100), trend (50 + 100) / (50 + 100) = 1;
     * the rest of the day 150; the next hour at the pace (50) + the
     * shape after 10:30 (100) = 150: 50 + 150.
     */
    p = br_budget_projected(b, AT(D, 9, 30));
    assert_float_equal(p, 200.0, 1e-6);
    /*
     * Three times yesterday by 09:30 (q = 4800 / 48 = 100): trend
     * (150 + 100) / (50 + 100).  The rest at the shape, 150 x trend, says
     * less than the next hour at the pace (150) + 100 x trend after it.
     */
    spend_n(b, AT(D, 9, 1), 100);
    p = br_budget_projected(b, AT(D, 9, 30));
    assert_float_equal(p, 150.0 + 150.0 + 100.0 * 250.0 / 150.0, 1e-4);
    /* A rush at 16:00, when the shape has nothing left: the next hour at its pace. */
    spend_n(b, AT(D, 15, 40), 300);
    p = br_budget_projected(b, AT(D, 16, 0));
    assert_true(p > 450.0 + 299.0);
    assert_true(p < 450.0 + 301.0 + 1.0);
    br_budget_free(b);

    /* Today's hours are kept for tomorrow. */
    assert_int_equal(stored_hour(f, D, 9), 150);
    assert_int_equal(stored_hour(f, D, 15), 300);

    /* A week and a day later the days before are too old: the recent pace again. */
    b = br_budget_new(f->s, 4800, AT(D + 8, 9, 0));
    spend_n(b, AT(D + 8, 9, 0), 60);
    p = br_budget_projected(b, AT(D + 8, 9, 30));
    assert_float_equal(p, 60.0 + 60.0 * 14.5, 1e-6);
    br_budget_free(b);
    /*
     * Seven days later D still counts: at 12:00, nothing sent in the last
     * hour (the recent pace alone would say 10), but D's 300 at 15:00 are
     * still to come.
     */
    b = br_budget_new(f->s, 4800, AT(D + 7, 0, 1));
    spend_n(b, AT(D + 7, 9, 0), 10);
    p = br_budget_projected(b, AT(D + 7, 12, 0));
    assert_float_equal(p, 10.0 + 300.0, 1e-6);
    br_budget_free(b);
}

/*
 * BR_BUDGET_DAY_S and BR_BUDGET_DAY_FROM_MS: run in a child (this program
 * with --day-child) with the variables set, since they are read once per
 * process.  With BR_BUDGET_DAY_FROM_MS "10000" (a bad value counts as
 * unset) the 30-second days begin at 10 s, 40 s, 70 s...
 */
static int
day_child(void)
{
    const char *v = getenv("BR_BUDGET_DAY_S"), *from = getenv("BR_BUDGET_DAY_FROM_MS");
    int64_t o = from != NULL && strcmp(from, "10000") == 0 ? 10000 : 0;
    char dir[] = "/tmp/br-test-budget-day-XXXXXX";
    struct br_store *s;
    struct br_budget *b;
    uint64_t hours[24] = {0};
    char *db;
    int ok;

    if (strcmp(v, "30") != 0)
        return br_budget_day_ms() == DAY ? 0 : 3; /* a bad value: the default, with a warning */
    if (br_budget_day_ms() != 30000 || mkdtemp(dir) == NULL)
        return 4;
    db = br_asprintf("%s/bridge.db", dir);
    if (br_store_open(&s, db) != 0)
        return 5;
    b = br_budget_new(s, 2, o + 29000);
    br_budget_spend(b, o + 29000);
    br_budget_spend(b, o + 29500);
    ok = br_budget_exhausted(b, o + 29999) && br_budget_day_end(b, o + 29999) == o + 30000 &&
         br_budget_used_today(b, o + 30000) == 0 && !br_budget_exhausted(b, o + 30000) &&
         br_budget_day_end(b, o + 30000) == o + 60000;
    br_budget_spend(b, o + 30001);
    ok = ok && br_budget_used_today(b, o + 30001) == 1;
    br_budget_free(b);
    /* Days count from the origin: the first two requests are day 0's last hour (1.25 s each), the third day 1's first. */
    ok = ok && br_store_usage_hours(s, 0, 1, hours) == 0 && hours[23] == 2 && hours[22] == 0;
    ok = ok && br_store_usage_hours(s, 1, 1, hours) == 0 && hours[0] == 1;
    br_store_free(s);
    tmpdir_remove(dir);
    free(db);
    return ok ? 0 : 6;
}

static int
run_child(const char *value, const char *from)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("BR_BUDGET_DAY_S", value, 1);
        if (from != NULL)
            setenv("BR_BUDGET_DAY_FROM_MS", from, 1);
        execl(self_path, self_path, "--day-child", (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void
test_scenario_day(void **state)
{
    (void)state;
    assert_int_equal(run_child("30", NULL), 0);
    assert_int_equal(run_child("thirty", NULL), 0);
    assert_int_equal(run_child("-5", NULL), 0);
    assert_int_equal(run_child("30", "10000"), 0);
    assert_int_equal(run_child("30", "soon"), 0);
    assert_int_equal(run_child("30", "-1"), 0);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day_length),
        cmocka_unit_test_setup_teardown(test_counting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_day_rollover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_unread_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_projection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_projection_history, setup, teardown),
        cmocka_unit_test(test_scenario_day),
    };

    br_log_set_level(BR_LOG_ERROR);
    if (argc == 2 && strcmp(argv[1], "--day-child") == 0)
        return day_child();
    self_path = "/proc/self/exe";
    unsetenv("BR_BUDGET_DAY_S");
    unsetenv("BR_BUDGET_DAY_FROM_MS");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
