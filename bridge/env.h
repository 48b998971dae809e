/*
 * env.h - what the conversation model (conversation.c) and the job kinds
 * (jobs/) work with: the config, the store, the tracker driver, the job
 * queue and the employees' tracker users.  The engine owns it and
 * everything in it but the borrowed config and store.  Loop thread only.
 */
#ifndef BR_ENV_H
#define BR_ENV_H

#include "queue.h"
#include "tracker.h"

#include <stdbool.h>

struct br_config;
struct br_store;
struct br_employees;

struct br_env {
    const struct br_config *cfg;
    struct br_store *store;
    struct br_tracker *tracker;
    struct br_queue *queue;
    struct br_employees *employees;  /* employees.h */
    char *company_busy[8];           /* domains whose company contact is being looked up or made */
};

/* A job in the conversation's lane of the tracker ('t') or of the channel's Chatra ('c'), now. */
static inline int
br_env_add_job(struct br_env *env, char lane_kind, const char *upstream, const char *kind, int64_t conv_id,
               json_t *payload)
{
    return br_queue_add(env->queue, lane_kind, upstream, kind, conv_id, payload, 0);
}

/* Whether the tracker keeps contacts (Planfix) or only tasks (Redmine). */
static inline bool
br_env_has_contacts(const struct br_env *env)
{
    return env->tracker->ops->caps.contacts;
}

#endif
