/*
 * metrics.h - the numbers the bridge gives to monitoring (GET /metrics),
 * in the Prometheus text format (version 0.0.4).
 *
 * One registry for the process holds what is counted as it happens: the
 * families of the table in metrics.c (webhooks, job outcomes, upstream
 * requests and their latency, rate-limit waits), each a counter or a
 * histogram with labels.  The places where things happen only call
 * br_metrics_add or br_metrics_observe; the registry makes a series the
 * first time it sees its label values.  Counters start at zero with the
 * process, as Prometheus expects.  What the store or the engine can say
 * at any time (queue depths, dead letters, quota) is not kept here: the
 * /metrics handler reads it when it is scraped and writes it with
 * br_metrics_write_family and br_metrics_write_sample.
 *
 * Label values are escaped when written (backslash, double quote, line
 * break), whatever they hold; still, callers pass only the config's names
 * and the bridge's own words, never what a visitor or a request sent, so
 * that the number of series stays small.  A family keeps at most
 * BR_METRICS_MAX_SERIES series (more are dropped, with one warning).
 *
 * Loop thread only.  br_metrics_reset frees every series (shutdown, tests).
 */
#ifndef BR_METRICS_H
#define BR_METRICS_H

#include "br.h"

enum br_metric {
    BR_METRIC_WEBHOOKS,               /* counter: source, channel, result */
    BR_METRIC_JOBS,                   /* counter: kind, outcome */
    BR_METRIC_UPSTREAM_REQUESTS,      /* counter: upstream, status */
    BR_METRIC_UPSTREAM_SECONDS,       /* histogram: upstream */
    BR_METRIC_RATELIMIT_WAITS,        /* counter: upstream */
    BR_METRIC_RATELIMIT_WAIT_SECONDS, /* counter: upstream */
    BR_METRIC_COUNT
};

#define BR_METRICS_MAX_SERIES 1000

/* A NULL-terminated list of label values, in the order the family names its labels. */
#define BR_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Adds v (>= 0) to a counter's series. */
void br_metrics_add(enum br_metric m, const char *const *labels, double v);
/* Puts one observation (seconds, say) into a histogram's series. */
void br_metrics_observe(enum br_metric m, const char *const *labels, double v);
/* Writes every family of the registry (one without a series yet: its HELP and TYPE). */
void br_metrics_write(struct br_buf *out);
/* Frees every series: the registry is as at start. */
void br_metrics_reset(void);

/*
 * The exposition format, for values read at scrape time.  A family's
 * "# HELP" and "# TYPE" lines (type: "counter", "gauge"...), then its
 * samples: names and values are NULL-terminated lists of the same length
 * (NULL for none).
 */
void br_metrics_write_family(struct br_buf *out, const char *name, const char *type, const char *help);
void br_metrics_write_sample(struct br_buf *out, const char *name, const char *const *names,
                             const char *const *values, double v);

#endif
