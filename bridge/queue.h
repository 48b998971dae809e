/*
 * queue.h - jobs in motion: the durable outbox (the store's jobs table)
 * handed to each upstream, lane by lane, and each job's end written back.
 *
 * A lane (one conversation on one upstream) runs its jobs strictly in id
 * order, one at a time; an upstream takes a few lanes' first jobs at once
 * (its own rate limit spaces the requests).  A job is marked in flight in
 * the store before it starts; its end is written with backoff and jitter
 * for transient failures and as a dead letter for permanent ones.  When
 * the store refuses an outcome, the queue keeps it (unrecorded.h) and
 * br_queue_settle writes it once the store takes writes again.
 *
 * The queue knows nothing of what a job does: it loads the job's payload,
 * conversation and channel into a br_run and hands it to the start
 * callback (the job kinds, jobs/kinds.c).  It tells its owner when there
 * may be something to dispatch through the wake callback; it never reaches
 * back into the engine.  Loop thread only; the config, the store and the
 * upstreams are borrowed.
 *
 * A run keeps the env (and so the config) it started with until it ends,
 * also when a reload gives new runs another one (br_queue_set_env):
 * br_queue_holds tells the engine when an old one is no longer used.
 */
#ifndef BR_QUEUE_H
#define BR_QUEUE_H

#include "br.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct br_config;
struct br_channel;
struct br_upstream;
struct br_result;
struct br_env;
struct br_queue;
struct lane_up;

/* One job being executed: made by the queue, ended by exactly one of br_run_finish ... br_run_later. */
struct br_run {
    struct br_queue *q;
    struct br_env *env;        /* what the job kinds work with (env.h) */
    struct br_upstream *up;    /* the upstream this job's requests go to */
    struct br_job job;
    json_t *payload;
    struct br_conv conv;       /* the job's conversation (id 0 for jobs of none, e.g. the poll) */
    const struct br_channel *ch; /* its channel, NULL for jobs of no conversation */
    /* Scratch of the job kinds, freed with the run. */
    int step;
    char *task_id;
    char *source_key;
    char *text;                /* a comment being written, in the tracker's text format */
    const char *author_contact;
    const char *author_employee;
    char *employee_user;       /* owns author_employee when it was found by e-mail */
    bool undecided;            /* comments whose author is still being looked up were left */
    bool recheck;              /* ... and an e-mail that matched nobody is worth asking again */
    json_t *emails;            /* contact: the person's e-mails still to look up */
    int slot;                  /* a kind's hold on a shared resource (company: 1 + its busy slot) */
    void (*on_free)(struct br_run *r); /* a kind's clean-up when the run ends (releases slot) */
    bool store_refused;        /* the run ends because the store refused its result */
    /* The queue's own. */
    struct lane_up *lu;
    struct br_run *prev, *next;
};

/* A transient failure is retried this many attempts at most. */
#define BR_QUEUE_MAX_ATTEMPTS 50

typedef void (*br_queue_start_cb)(struct br_run *r);
typedef void (*br_queue_wake_cb)(void *arg);

struct br_queue *br_queue_new(const struct br_config *cfg, struct br_store *store, struct br_env *env,
                              br_queue_start_cb start, br_queue_wake_cb wake, void *wake_arg);
void br_queue_free(struct br_queue *q);
/* Jobs whose upstream is name ("tracker", "chatra:<channel>") go to up (borrowed). */
void br_queue_add_upstream(struct br_queue *q, const char *name, struct br_upstream *up);
/* Runs started from now on get env, whose config is cfg (a reload; both borrowed). */
void br_queue_set_env(struct br_queue *q, struct br_env *env, const struct br_config *cfg);
/* Whether a running job still holds env (the one it started with). */
bool br_queue_holds(const struct br_queue *q, const struct br_env *env);

/*
 * Adds a job to lane lane_kind:conv_id of upstream, not to run before
 * delay_ms from now (inside the caller's transaction).  Takes payload.
 */
int br_queue_add(struct br_queue *q, char lane_kind, const char *upstream, const char *kind, int64_t conv_id,
                 json_t *payload, int64_t delay_ms);
/* The same, telling the new job's id. */
int br_queue_add_id(struct br_queue *q, char lane_kind, const char *upstream, const char *kind, int64_t conv_id,
                    json_t *payload, int64_t delay_ms, int64_t *job_id);
/* Whether a job of this kind still waits in lane lane_kind:conv_id. */
bool br_queue_waiting(struct br_queue *q, char lane_kind, int64_t conv_id, const char *kind);

/*
 * What a job of kind in lane lane_kind:conv_id waited for has come: if it
 * waits to run within within_ms (a short step, never a longer wait such
 * as a burst's), it runs now.
 */
void br_queue_hasten(struct br_queue *q, char lane_kind, int64_t conv_id, const char *kind, int64_t within_ms);
/* A job was added outside the engine's own work (e.g. by housekeeping): dispatch soon. */
void br_queue_wake(struct br_queue *q);
/* Starts the ready jobs each upstream has room for. */
void br_queue_dispatch(struct br_queue *q);
/*
 * When a job waiting for its time (a burst's wait, a backoff, a later)
 * comes due on an upstream that could start it (wall clock, ms); 0: none
 * does.  A paused upstream's jobs wait for the pause's end, not for this.
 */
int64_t br_queue_next_due(struct br_queue *q, int64_t now);
/* Backoffs may have run out: every upstream is asked again at the next dispatch. */
void br_queue_undry(struct br_queue *q);
/*
 * After the store refused a write: once it takes writes again, writes the
 * outcomes kept meanwhile and puts back the jobs it still shows in flight
 * that no run holds.  0 when nothing waits for the store (any more).
 */
int br_queue_settle(struct br_queue *q);
/* No job starts any more (shutdown); running ones end as their requests are cancelled. */
void br_queue_close(struct br_queue *q);
/* Jobs running now, and outcomes kept for the store. */
unsigned br_queue_running(const struct br_queue *q);
size_t br_queue_unrecorded(const struct br_queue *q);

/*
 * A job's end.  finish: as the upstream's result says (transient errors
 * retried with backoff, up to res->max_attempts or 50 attempts; others
 * dead); ok: done; fail: with an error of the job's own; later: runs
 * again after delay_ms, no attempt counted; recorded: the upstream did it,
 * and store_rc says whether its result is in the store (when not, the job
 * runs again and looks in the tracker first).
 */
void br_run_finish(struct br_run *r, struct br_result *res);
void br_run_ok(struct br_run *r);
void br_run_fail(struct br_run *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void br_run_later(struct br_run *r, int64_t delay_ms);
void br_run_recorded(struct br_run *r, struct br_result *res, int store_rc);

/* The lane's name in the store, "t:12": free it. */
char *br_queue_lane(char lane_kind, int64_t conv_id);

#endif
