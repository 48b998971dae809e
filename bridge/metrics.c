/*
 * metrics.c - the registry of what the bridge counts, and the Prometheus
 * text format it is written in (metrics.h).
 */
#include "metrics.h"

#include "log.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 4

/* Upstream answers take from a few milliseconds to the request timeout (15 s by default). */
static const double latency_bounds[] = {0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

struct series {
    char *labels[MAX_LABELS];
    double value;          /* a counter's */
    uint64_t *in_bucket;   /* a histogram's observations per bound (not cumulative), n_bounds of them */
    uint64_t count;
    double sum;
};

struct family {
    const char *name;      /* a counter's ends in _total; a histogram's is the base of _bucket, _sum, _count */
    const char *help;
    bool histogram;
    const char *labels[MAX_LABELS + 1];
    const double *bounds;
    size_t n_bounds;
    /* The registry's own. */
    struct series *series;
    size_t n, cap;
    bool warned;
};

/* The families, one row each; README's "Health and metrics" lists them for the admin. */
static struct family families[BR_METRIC_COUNT] = {
    [BR_METRIC_WEBHOOKS] = {"chatra_bridge_webhooks_total",
                            "Webhooks answered, by route (chatra, planfix), channel and result.",
                            false, {"source", "channel", "result", NULL}, NULL, 0, NULL, 0, 0, false},
    [BR_METRIC_JOBS] = {"chatra_bridge_jobs_total",
                        "Job runs that ended, by kind and outcome (done, retry, dead, later).",
                        false, {"kind", "outcome", NULL}, NULL, 0, NULL, 0, 0, false},
    [BR_METRIC_UPSTREAM_REQUESTS] = {"chatra_bridge_upstream_requests_total",
                                     "Requests to the tracker and to Chatra, by upstream and HTTP status "
                                     "(timeout, error: no answer).",
                                     false, {"upstream", "status", NULL}, NULL, 0, NULL, 0, 0, false},
    [BR_METRIC_UPSTREAM_SECONDS] = {"chatra_bridge_upstream_request_duration_seconds",
                                    "Time from sending a request to its answer, by upstream.",
                                    true, {"upstream", NULL}, latency_bounds, BR_ARRAY_SIZE(latency_bounds),
                                    NULL, 0, 0, false},
    [BR_METRIC_RATELIMIT_WAITS] = {"chatra_bridge_ratelimit_waits_total",
                                   "Requests held back by their upstream's rate limit or pause.",
                                   false, {"upstream", NULL}, NULL, 0, NULL, 0, 0, false},
    [BR_METRIC_RATELIMIT_WAIT_SECONDS] = {"chatra_bridge_ratelimit_wait_seconds_total",
                                          "Seconds those requests waited before they were sent.",
                                          false, {"upstream", NULL}, NULL, 0, NULL, 0, 0, false},
};

static size_t
label_count(const struct family *f)
{
    size_t n = 0;

    while (f->labels[n] != NULL)
        n++;
    return n;
}

/* The series of these label values, made when new; NULL when the family is full or the values do not fit. */
static struct series *
series_of(struct family *f, const char *const *values)
{
    size_t nl = label_count(f), given = 0;
    struct series *s;

    while (values != NULL && values[given] != NULL)
        given++;
    if (given != nl) {
        /* A caller's mistake, not the input's: say so once rather than count wrongly. */
        if (!f->warned)
            br_error("metrics: %s takes %zu label(s), got %zu", f->name, nl, given);
        f->warned = true;
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++) {
        size_t k = 0;
        while (k < nl && strcmp(f->series[i].labels[k], values[k]) == 0)
            k++;
        if (k == nl)
            return &f->series[i];
    }
    if (f->n == BR_METRICS_MAX_SERIES) {
        if (!f->warned)
            br_warn("metrics: %s has %d series; new ones are not counted", f->name, BR_METRICS_MAX_SERIES);
        f->warned = true;
        return NULL;
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->series = br_realloc(f->series, f->cap * sizeof(*f->series));
    }
    s = &f->series[f->n++];
    memset(s, 0, sizeof(*s));
    for (size_t k = 0; k < nl; k++)
        s->labels[k] = br_strdup(values[k]);
    if (f->histogram)
        s->in_bucket = br_calloc(f->n_bounds, sizeof(*s->in_bucket));
    return s;
}

void
br_metrics_add(enum br_metric m, const char *const *labels, double v)
{
    struct series *s;

    if ((unsigned)m >= BR_METRIC_COUNT || families[m].histogram || !(v >= 0))
        return;
    s = series_of(&families[m], labels);
    if (s != NULL)
        s->value += v;
}

void
br_metrics_observe(enum br_metric m, const char *const *labels, double v)
{
    struct family *f;
    struct series *s;

    if ((unsigned)m >= BR_METRIC_COUNT || !families[m].histogram || isnan(v))
        return;
    f = &families[m];
    s = series_of(f, labels);
    if (s == NULL)
        return;
    for (size_t i = 0; i < f->n_bounds; i++) {
        if (v <= f->bounds[i]) {
            s->in_bucket[i]++;
            break;
        }
    }
    s->count++;
    s->sum += v;
}

void
br_metrics_reset(void)
{
    for (size_t m = 0; m < BR_METRIC_COUNT; m++) {
        struct family *f = &families[m];
        for (size_t i = 0; i < f->n; i++) {
            for (size_t k = 0; k < MAX_LABELS; k++)
                free(f->series[i].labels[k]);
            free(f->series[i].in_bucket);
        }
        free(f->series);
        f->series = NULL;
        f->n = f->cap = 0;
        f->warned = false;
    }
}

/* ---- the text format ---------------------------------------------------- */

/* A number as Prometheus reads it: integers without a point, the rest exactly enough to read back. */
static const char *
format_value(char *text, size_t size, double v)
{
    if (isnan(v))
        snprintf(text, size, "NaN");
    else if (isinf(v))
        snprintf(text, size, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(text, size, "%.0f", v);
    else if (snprintf(text, size, "%.15g", v) > 0 && strtod(text, NULL) != v)
        snprintf(text, size, "%.17g", v);
    return text;
}

/* Escapes what the format escapes: in label values \ " and line breaks; in HELP \ and line breaks. */
static void
put_escaped(struct br_buf *out, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            br_buf_puts(out, "\\\\");
        else if (*s == '\n')
            br_buf_puts(out, "\\n");
        else if (*s == '"' && quote)
            br_buf_puts(out, "\\\"");
        else
            br_buf_putc(out, *s);
    }
}

void
br_metrics_write_family(struct br_buf *out, const char *name, const char *type, const char *help)
{
    br_buf_printf(out, "# HELP %s ", name);
    put_escaped(out, help, false);
    br_buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

/* name{names=values,extra=extra_value} v; extra may be NULL. */
static void
put_sample(struct br_buf *out, const char *name, const char *suffix, const char *const *names,
           const char *const *values, const char *extra, const char *extra_value, double v)
{
    char text[40];
    bool any = false;

    br_buf_printf(out, "%s%s", name, suffix);
    for (size_t i = 0; names != NULL && names[i] != NULL && values != NULL && values[i] != NULL; i++) {
        br_buf_printf(out, "%s%s=\"", any ? "," : "{", names[i]);
        put_escaped(out, values[i], true);
        br_buf_putc(out, '"');
        any = true;
    }
    if (extra != NULL) {
        br_buf_printf(out, "%s%s=\"", any ? "," : "{", extra);
        put_escaped(out, extra_value, true);
        br_buf_putc(out, '"');
        any = true;
    }
    br_buf_printf(out, "%s%s\n", any ? "} " : " ", format_value(text, sizeof(text), v));
}

void
br_metrics_write_sample(struct br_buf *out, const char *name, const char *const *names, const char *const *values,
                        double v)
{
    put_sample(out, name, "", names, values, NULL, NULL, v);
}

static void
write_histogram(struct br_buf *out, const struct family *f, const struct series *s)
{
    const char *const *values = (const char *const *)s->labels;
    uint64_t below = 0;
    char le[40];

    for (size_t i = 0; i < f->n_bounds; i++) {
        below += s->in_bucket[i];
        put_sample(out, f->name, "_bucket", f->labels, values, "le", format_value(le, sizeof(le), f->bounds[i]),
                   (double)below);
    }
    put_sample(out, f->name, "_bucket", f->labels, values, "le", "+Inf", (double)s->count);
    put_sample(out, f->name, "_sum", f->labels, values, NULL, NULL, s->sum);
    put_sample(out, f->name, "_count", f->labels, values, NULL, NULL, (double)s->count);
}

void
br_metrics_write(struct br_buf *out)
{
    for (size_t m = 0; m < BR_METRIC_COUNT; m++) {
        const struct family *f = &families[m];

        /* A family without a series yet still says what it will count. */
        br_metrics_write_family(out, f->name, f->histogram ? "histogram" : "counter", f->help);
        for (size_t i = 0; i < f->n; i++) {
            if (f->histogram)
                write_histogram(out, f, &f->series[i]);
            else
                br_metrics_write_sample(out, f->name, f->labels, (const char *const *)f->series[i].labels,
                                        f->series[i].value);
        }
    }
}
