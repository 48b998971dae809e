/*
 * test_metrics.c - the registry and the Prometheus text format
 * (bridge/metrics.h): series made on first use and added up, label values
 * and help texts escaped, histograms cumulative with their sum and count,
 * numbers written so that they read back exactly, and the limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/log.h"
#include "bridge/metrics.h"

/* The registry's text, for one test. */
static char *
written(void)
{
    struct br_buf b;

    br_buf_init(&b, 0);
    br_buf_puts(&b, "");
    br_metrics_write(&b);
    return br_buf_steal(&b);
}

/* The lines of text that start with prefix, joined by line breaks. */
static char *
lines_of(const char *text, const char *prefix)
{
    struct br_buf b;

    br_buf_init(&b, 0);
    br_buf_puts(&b, "");
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) + 1 : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            br_buf_append(&b, p, n);
        p += n;
    }
    return br_buf_steal(&b);
}

static int
reset(void **state)
{
    (void)state;
    br_metrics_reset();
    return 0;
}

static void
test_every_family_is_announced(void **state)
{
    char *text = written();

    (void)state;
    assert_non_null(strstr(text, "# HELP chatra_bridge_webhooks_total Webhooks answered, by route (chatra, planfix), "
                                 "channel and result.\n# TYPE chatra_bridge_webhooks_total counter\n"));
    assert_non_null(strstr(text, "# TYPE chatra_bridge_upstream_request_duration_seconds histogram\n"));
    assert_non_null(strstr(text, "# TYPE chatra_bridge_ratelimit_wait_seconds_total counter\n"));
    /* Nothing counted yet: no sample line. */
    for (const char *p = text; *p; p = strchr(p, '\n') + 1)
        assert_int_equal(*p, '#');
    free(text);
}

static void
test_counters_add_up_per_series(void **state)
{
    char *text, *got;

    (void)state;
    br_metrics_add(BR_METRIC_WEBHOOKS, BR_LABELS("chatra", "shop", "accepted"), 1);
    br_metrics_add(BR_METRIC_WEBHOOKS, BR_LABELS("planfix", "", "bad_secret"), 1);
    br_metrics_add(BR_METRIC_WEBHOOKS, BR_LABELS("chatra", "shop", "accepted"), 2);
    br_metrics_add(BR_METRIC_WEBHOOKS, BR_LABELS("chatra", "shop", "accepted"), -5); /* never down */
    br_metrics_add(BR_METRIC_WEBHOOKS, BR_LABELS("chatra", "shop", "accepted"), NAN);
    br_metrics_add(BR_METRIC_JOBS, BR_LABELS("task", "done"), 1);
    text = written();
    got = lines_of(text, "chatra_bridge_webhooks_total{");
    assert_string_equal(got, "chatra_bridge_webhooks_total{source=\"chatra\",channel=\"shop\",result=\"accepted\"} 3\n"
                             "chatra_bridge_webhooks_total{source=\"planfix\",channel=\"\",result=\"bad_secret\"} 1\n");
    free(got);
    got = lines_of(text, "chatra_bridge_jobs_total{");
    assert_string_equal(got, "chatra_bridge_jobs_total{kind=\"task\",outcome=\"done\"} 1\n");
    free(got);
    free(text);

    /* A reset forgets every series. */
    br_metrics_reset();
    text = written();
    got = lines_of(text, "chatra_bridge_");
    assert_string_equal(got, "");
    free(got);
    free(text);
}

static void
test_label_values_are_escaped(void **state)
{
    char *text, *got;

    (void)state;
    br_metrics_add(BR_METRIC_JOBS, BR_LABELS("a\"quoted\" \\back\\slash", "line\nbreak"), 1);
    text = written();
    got = lines_of(text, "chatra_bridge_jobs_total{");
    assert_string_equal(got, "chatra_bridge_jobs_total{kind=\"a\\\"quoted\\\" \\\\back\\\\slash\","
                             "outcome=\"line\\nbreak\"} 1\n");
    free(got);
    free(text);
}

static void
test_histogram_buckets_sum_and_count(void **state)
{
    static const double seen[] = {0.01, 0.3, 0.5, 7, 100};
    char *text, *got;

    (void)state;
    for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++)
        br_metrics_observe(BR_METRIC_UPSTREAM_SECONDS, BR_LABELS("tracker"), seen[i]);
    br_metrics_observe(BR_METRIC_UPSTREAM_SECONDS, BR_LABELS("tracker"), NAN);
    br_metrics_observe(BR_METRIC_UPSTREAM_SECONDS, BR_LABELS("chatra:shop"), 0.05);
    /* A histogram takes no add, a counter no observation. */
    br_metrics_add(BR_METRIC_UPSTREAM_SECONDS, BR_LABELS("tracker"), 1);
    br_metrics_observe(BR_METRIC_JOBS, BR_LABELS("task", "done"), 1);
    text = written();
    got = lines_of(text, "chatra_bridge_upstream_request_duration_seconds");
    assert_string_equal(got,
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"0.025\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"0.05\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"0.1\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"0.25\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"0.5\"} 3\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"1\"} 3\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"2.5\"} 3\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"5\"} 3\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"10\"} 4\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"30\"} 4\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"tracker\",le=\"+Inf\"} 5\n"
                        "chatra_bridge_upstream_request_duration_seconds_sum{upstream=\"tracker\"} 107.81\n"
                        "chatra_bridge_upstream_request_duration_seconds_count{upstream=\"tracker\"} 5\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"0.025\"} 0\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"0.05\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"0.1\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"0.25\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"0.5\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"1\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"2.5\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"5\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"10\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"30\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_bucket{upstream=\"chatra:shop\",le=\"+Inf\"} 1\n"
                        "chatra_bridge_upstream_request_duration_seconds_sum{upstream=\"chatra:shop\"} 0.05\n"
                        "chatra_bridge_upstream_request_duration_seconds_count{upstream=\"chatra:shop\"} 1\n");
    free(got);
    got = lines_of(text, "chatra_bridge_jobs_total{");
    assert_string_equal(got, "");
    free(got);
    free(text);
}

static void
test_samples_and_numbers(void **state)
{
    struct br_buf b;

    (void)state;
    br_buf_init(&b, 0);
    br_buf_puts(&b, "");
    br_metrics_write_family(&b, "x_gauge", "gauge", "Two lines\nand a back\\slash \"quoted\".");
    br_metrics_write_sample(&b, "x_gauge", NULL, NULL, 0);
    br_metrics_write_sample(&b, "x_gauge", BR_LABELS("a", "b"), BR_LABELS("1", "2"), 0.1 + 0.2);
    br_metrics_write_sample(&b, "x_gauge", BR_LABELS("a"), BR_LABELS("x"), 1e20);
    br_metrics_write_sample(&b, "x_gauge", BR_LABELS("a"), BR_LABELS("y"), -2.5);
    br_metrics_write_sample(&b, "x_gauge", BR_LABELS("a"), BR_LABELS("z"), INFINITY);
    br_metrics_write_sample(&b, "x_gauge", BR_LABELS("a"), BR_LABELS("n"), NAN);
    br_metrics_write_sample(&b, "x_gauge", BR_LABELS("a"), BR_LABELS("big"), 9007199254740991.0);
    assert_string_equal(b.data, "# HELP x_gauge Two lines\\nand a back\\\\slash \"quoted\".\n"
                                "# TYPE x_gauge gauge\n"
                                "x_gauge 0\n"
                                "x_gauge{a=\"1\",b=\"2\"} 0.30000000000000004\n"
                                "x_gauge{a=\"x\"} 1e+20\n"
                                "x_gauge{a=\"y\"} -2.5\n"
                                "x_gauge{a=\"z\"} +Inf\n"
                                "x_gauge{a=\"n\"} NaN\n"
                                "x_gauge{a=\"big\"} 9007199254740991\n");
    br_buf_dispose(&b);
}

static void
test_limits(void **state)
{
    char *text, *got;
    size_t n = 0;

    (void)state;
    /* The wrong number of label values is a caller's mistake: nothing is counted. */
    br_metrics_add(BR_METRIC_JOBS, BR_LABELS("task"), 1);
    br_metrics_add(BR_METRIC_JOBS, BR_LABELS("task", "done", "extra"), 1);
    br_metrics_add(BR_METRIC_JOBS, NULL, 1);
    br_metrics_add(BR_METRIC_COUNT, BR_LABELS("x"), 1);
    text = written();
    got = lines_of(text, "chatra_bridge_jobs_total{");
    assert_string_equal(got, "");
    free(got);
    free(text);

    /* A family keeps at most BR_METRICS_MAX_SERIES series; the ones it has still count. */
    for (int i = 0; i < BR_METRICS_MAX_SERIES + 10; i++) {
        char kind[16];
        snprintf(kind, sizeof(kind), "k%d", i);
        br_metrics_add(BR_METRIC_JOBS, BR_LABELS(kind, "done"), 1);
    }
    br_metrics_add(BR_METRIC_JOBS, BR_LABELS("k0", "done"), 1);
    text = written();
    got = lines_of(text, "chatra_bridge_jobs_total{");
    for (const char *p = got; (p = strchr(p, '\n')) != NULL; p++)
        n++;
    assert_int_equal(n, BR_METRICS_MAX_SERIES);
    assert_non_null(strstr(got, "chatra_bridge_jobs_total{kind=\"k0\",outcome=\"done\"} 2\n"));
    assert_null(strstr(got, "kind=\"k1000\""));
    free(got);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_family_is_announced, reset, reset),
        cmocka_unit_test_setup_teardown(test_counters_add_up_per_series, reset, reset),
        cmocka_unit_test_setup_teardown(test_label_values_are_escaped, reset, reset),
        cmocka_unit_test_setup_teardown(test_histogram_buckets_sum_and_count, reset, reset),
        cmocka_unit_test_setup_teardown(test_samples_and_numbers, reset, reset),
        cmocka_unit_test_setup_teardown(test_limits, reset, reset),
    };

    br_log_set_level(BR_LOG_ERROR + 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
