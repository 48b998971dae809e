/*
 * test_planfix.c - Planfix's dates (bridge/trackers/planfix.h): the
 * offset a TimePoint of an answer shows, and the dates of the poll's
 * filter in the zone Planfix reads them in (named, learned, or unknown).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "bridge/br.h"
#include "bridge/trackers/planfix.h"

/* 2022-06-12T12:15:00Z */
#define JUNE_12_1215 1655036100LL

static int
time_point(const char *date, const char *time, const char *datetime, int64_t *ms, long *off)
{
    json_t *tp = json_object();
    int rc;

    if (date)
        json_object_set_new(tp, "date", json_string(date));
    if (time)
        json_object_set_new(tp, "time", json_string(time));
    if (datetime)
        json_object_set_new(tp, "datetime", json_string(datetime));
    rc = br_planfix_time_point(tp, ms, off);
    json_decref(tp);
    return rc;
}

static void
expect_offset(const char *date, const char *time, const char *datetime, int64_t want_ms, long want_off)
{
    int64_t ms = -1;
    long off = -1;
    assert_int_equal(time_point(date, time, datetime, &ms, &off), 0);
    assert_int_equal(ms, want_ms);
    assert_int_equal(off, want_off);
}

static void
expect_invalid(const char *date, const char *time, const char *datetime)
{
    int64_t ms = 7;
    long off = 7;
    assert_int_equal(time_point(date, time, datetime, &ms, &off), BR_EINVAL);
    /* Nothing is written on failure. */
    assert_int_equal(ms, 7);
    assert_int_equal(off, 7);
}

static void
test_time_point_offsets(void **state)
{
    (void)state;
    /* The reference's own example: Moscow. */
    expect_offset("12-06-2022", "15:15", "2022-06-12T12:15Z", JUNE_12_1215 * 1000, 3 * 3600);
    expect_offset("12-06-2022", "12:15", "2022-06-12T12:15Z", JUNE_12_1215 * 1000, 0);
    /* West of UTC, the local date is the day before. */
    expect_offset("11-06-2022", "22:00", "2022-06-12T03:00Z", (JUNE_12_1215 - 9 * 3600 - 15 * 60) * 1000,
                  -5 * 3600);
    /* Nepal, and the ends of the world's offsets. */
    expect_offset("12-06-2022", "18:00", "2022-06-12T12:15Z", JUNE_12_1215 * 1000, 5 * 3600 + 45 * 60);
    expect_offset("13-06-2022", "02:15", "2022-06-12T12:15Z", JUNE_12_1215 * 1000, 14 * 3600);
    expect_offset("12-06-2022", "00:15", "2022-06-12T12:15Z", JUNE_12_1215 * 1000, -12 * 3600);
    /* Seconds in the UTC form count for the time, not for the offset. */
    expect_offset("12-06-2022", "15:15", "2022-06-12T12:15:42Z", (JUNE_12_1215 + 42) * 1000, 3 * 3600);
    /* Across a year. */
    expect_offset("01-01-2023", "02:30", "2022-12-31T23:30Z", 1672529400LL * 1000, 3 * 3600);
}

static void
test_time_point_rejects_what_is_not_one(void **state)
{
    int64_t ms;
    long off;

    (void)state;
    assert_int_equal(br_planfix_time_point(NULL, &ms, &off), BR_EINVAL);
    {
        json_t *s = json_string("12-06-2022 15:15");
        assert_int_equal(br_planfix_time_point(s, &ms, &off), BR_EINVAL);
        json_decref(s);
    }
    expect_invalid(NULL, "15:15", "2022-06-12T12:15Z");
    expect_invalid("12-06-2022", NULL, "2022-06-12T12:15Z");
    expect_invalid("12-06-2022", "15:15", NULL);
    expect_invalid("2022-06-12", "15:15", "2022-06-12T12:15Z");
    expect_invalid("12-06-2022", "15:15:00", "2022-06-12T12:15Z");
    expect_invalid("12-06-2022", "15:15", "2022-06-12T12:15");
    expect_invalid("12-06-2022", "15:15", "2022-06-12T12:15Z ");
    expect_invalid("12-06-2022", "15:15", "2022-06-12 12:15Z");
    expect_invalid("12-13-2022", "15:15", "2022-06-12T12:15Z");
    expect_invalid("12-06-2022", "24:15", "2022-06-12T12:15Z");
    expect_invalid("12-06-2022", "15:15", "2022-06-12T12:60Z");
    /* Not an offset any zone has: 7 minutes, or beyond +14:00 / -12:00. */
    expect_invalid("12-06-2022", "12:22", "2022-06-12T12:15Z");
    expect_invalid("13-06-2022", "03:15", "2022-06-12T12:15Z");
    expect_invalid("11-06-2022", "23:15", "2022-06-12T12:15Z");
}

struct window {
    const char *name;
    bool learned;
    long offset_s;
    int64_t from_s, to_s;
    const char *want_from, *want_to;
};

static void
expect_window(const struct window *w)
{
    struct br_planfix_zone z = {w->name, w->learned, w->offset_s};
    char from[32], to[32];

    br_planfix_filter_dates(&z, w->from_s * 1000, w->to_s * 1000, from, to);
    assert_string_equal(from, w->want_from);
    assert_string_equal(to, w->want_to);
}

static void
test_filter_dates(void **state)
{
    /* 2022-10-30 01:00Z: Berlin puts its clocks back from +2 to +1; 2022-03-27 01:00Z forward. */
    const int64_t berlin_back = 1667091600LL, berlin_forward = 1648342800LL;
    const struct window cases[] = {
        /* Named: exact, in the zone. */
        {"Europe/Moscow", false, 0, JUNE_12_1215, JUNE_12_1215 + 11 * 60, "12-06-2022 15:15", "12-06-2022 15:26"},
        {"UTC", false, 0, JUNE_12_1215, JUNE_12_1215 + 11 * 60, "12-06-2022 12:15", "12-06-2022 12:26"},
        {"Europe/Berlin", false, 0, JUNE_12_1215, JUNE_12_1215 + 11 * 60, "12-06-2022 14:15", "12-06-2022 14:26"},
        /* The named zone wins over a learned offset. */
        {"Europe/Moscow", true, -5 * 3600, JUNE_12_1215, JUNE_12_1215, "12-06-2022 15:15", "12-06-2022 15:15"},
        /* A local time the clocks pass twice is taken at its earlier (from) or later (to) meaning. */
        {"Europe/Berlin", false, 0, berlin_back - 1800, berlin_back + 1800, "30-10-2022 01:30", "30-10-2022 03:30"},
        {"Europe/Berlin", false, 0, berlin_back + 2 * 3600, berlin_back + 2 * 3600, "30-10-2022 04:00",
         "30-10-2022 04:00"},
        /* Clocks forward: exact on both sides of the gap. */
        {"Europe/Berlin", false, 0, berlin_forward - 1800, berlin_forward + 600, "27-03-2022 01:30",
         "27-03-2022 03:10"},
        /* Learned: an hour more on each side, for a DST change since. */
        {NULL, true, 3 * 3600, JUNE_12_1215, JUNE_12_1215 + 11 * 60, "12-06-2022 14:15", "12-06-2022 16:26"},
        {NULL, true, -5 * 3600, JUNE_12_1215, JUNE_12_1215 + 11 * 60, "12-06-2022 06:15", "12-06-2022 08:26"},
        {NULL, true, 0, JUNE_12_1215, JUNE_12_1215, "12-06-2022 11:15", "12-06-2022 13:15"},
        /* Unknown: every zone's reading covers the window. */
        {NULL, false, 3 * 3600, JUNE_12_1215, JUNE_12_1215 + 11 * 60, "12-06-2022 00:15", "13-06-2022 02:26"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_window(&cases[i]);
}

static void
test_filter_dates_round_to_whole_minutes(void **state)
{
    struct br_planfix_zone utc = {"UTC", false, 0};
    char from[32], to[32];

    (void)state;
    /* The start rounds down, the end up: the window never shrinks. */
    br_planfix_filter_dates(&utc, JUNE_12_1215 * 1000 + 59999, JUNE_12_1215 * 1000 + 1, from, to);
    assert_string_equal(from, "12-06-2022 12:15");
    assert_string_equal(to, "12-06-2022 12:16");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_point_offsets),
        cmocka_unit_test(test_time_point_rejects_what_is_not_one),
        cmocka_unit_test(test_filter_dates),
        cmocka_unit_test(test_filter_dates_round_to_whole_minutes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
