/*
 * env.h - what the conversation model (conversation.c) and the job kinds
 * (jobs/) work with: the config, the store, the tracker driver, the job
 * queue and the employees' tracker users.  Loop thread only.
 *
 * An env is one config generation (see reload.h): the config and what is
 * made from it (the tracker driver, the employees' users) are its own;
 * the store, the queue and the company slots are shared by every
 * generation.  The engine makes one at start and one per reload; new work
 * takes the newest, a running job keeps the one it started with
 * (br_run.env) until it ends.
 */
#ifndef BR_ENV_H
#define BR_ENV_H

#include "batching.h"
#include "queue.h"
#include "tracker.h"

#include <stdbool.h>

struct br_config;
struct br_store;
struct br_employees;
struct br_crm;

struct br_env {
    const struct br_config *cfg;
    struct br_store *store;
    struct br_tracker *tracker;
    struct br_queue *queue;
    struct br_employees *employees;  /* employees.h */
    struct br_crm *crm;              /* crm.h: the CRM of enrich, NULL when off */
    struct br_batching *batching;    /* batching.h: the engine's (shared); NULL: always coalesce_ms */
    /* BR_ENV_COMPANY_SLOTS domains whose company contact is being looked up or made (shared) */
    char **company_busy;
};

#define BR_ENV_COMPANY_SLOTS 8

/* A job in the conversation's lane of the tracker ('t') or of the channel's Chatra ('c'), now. */
static inline int
br_env_add_job(struct br_env *env, char lane_kind, const char *upstream, const char *kind, int64_t conv_id,
               json_t *payload)
{
    return br_queue_add(env->queue, lane_kind, upstream, kind, conv_id, payload, 0);
}

/* How long a message queued now waits for the next ones (batching.h). */
static inline int64_t
br_env_coalesce_wait_ms(const struct br_env *env)
{
    return br_batching_current_ms(env->batching, env->cfg);
}

/* Whether the tracker keeps contacts (Planfix) or only tasks (Redmine). */
static inline bool
br_env_has_contacts(const struct br_env *env)
{
    return env->tracker->ops->caps.contacts;
}

#endif
