/*
 * tracker.h - the interface every task tracker driver implements.
 *
 * The conversation logic (engine.c) is written once against these
 * operations; a driver (trackers/planfix.c, ...) only translates them
 * into its API.  Each operation is asynchronous: it sends one or more
 * requests through the tracker's upstream (which enforces the rate
 * limit) and calls cb exactly once, never synchronously.
 *
 * Result codes: 0 success; BR_ENOTFOUND the object does not exist;
 * BR_ERETRY a transient failure (timeouts, 429, 5xx, quota) worth
 * retrying after backoff; BR_EFATAL a permanent failure (validation)
 * that goes to the dead-letter list.
 */
#ifndef BR_TRACKER_H
#define BR_TRACKER_H

#include "br.h"
#include "upstream.h"

#include <jansson.h>

struct br_config;

struct br_result {
    int err;
    char *id;              /* created or found object id */
    json_t *items;         /* list operations: see list_comments */
    long status;           /* HTTP status of the last answer, 0 when none came */
    long retry_after_s;    /* -1 when the upstream did not say */
    int quota_exhausted;   /* the daily quota is gone: pause the upstream */
    char *error;           /* one line for the log and the dead-letter list */
    char *request;         /* "METHOD path body" of the last request, for dead letters */
    char *response;        /* status and body of the last answer (truncated) */
};

typedef void (*br_result_cb)(void *arg, struct br_result *res);

void br_result_dispose(struct br_result *r);

struct br_contact_spec {
    const char *name;
    const char *lastname;
    const char *email;      /* may be NULL */
    const char *phone;      /* may be NULL */
    long template_id;       /* 0 = none */
    const char *source_key; /* unique per contact creation: finds it again after a crash */
};

struct br_task_spec {
    const char *title;
    const char *description_html;
    const char *contact_id;
    const char *company_id;  /* the counterparty when known, else the contact */
    const char *const *watchers;
    size_t n_watchers;
    long template_id;
    const char *source_key; /* unique per task creation: finds it again after a crash */
};

struct br_comment_spec {
    const char *task_id;
    const char *contact_id;  /* author is the visitor's contact ... */
    const char *employee;    /* ... or this employee (tracker_user) */
    const char *html;
    const char *source_key;
};

struct br_tracker;

struct br_tracker_ops {
    const char *kind;
    /*
     * id of the contact whose e-mail is exactly email, or BR_ENOTFOUND;
     * res->items is JSON true when that contact carries source_key (the
     * bridge made it, in a run cut off before the answer was stored).
     */
    int (*find_contact)(struct br_tracker *t, const char *email, const char *source_key, br_result_cb cb,
                        void *arg);
    int (*create_contact)(struct br_tracker *t, const struct br_contact_spec *c, br_result_cb cb,
                          void *arg);
    /* Finds a contact created earlier with name and source_key (crash recovery), or BR_ENOTFOUND. */
    int (*find_contact_by_key)(struct br_tracker *t, const char *name, const char *source_key,
                               br_result_cb cb, void *arg);
    /* The company contact named name (an e-mail domain), or BR_ENOTFOUND. */
    int (*find_company)(struct br_tracker *t, const char *name, br_result_cb cb, void *arg);
    int (*create_company)(struct br_tracker *t, const char *name, long template_id, const char *source_key,
                          br_result_cb cb, void *arg);
    /* Writes the visitor's current name, e-mail and phone into the contact. */
    int (*update_contact)(struct br_tracker *t, const char *contact_id, const struct br_contact_spec *c,
                          br_result_cb cb, void *arg);
    /* Removes a contact left over by a merge (Planfix keeps it in its trash). */
    int (*delete_contact)(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg);
    int (*create_task)(struct br_tracker *t, const struct br_task_spec *s, br_result_cb cb, void *arg);
    /* Finds a task created earlier with source_key (crash recovery), or BR_ENOTFOUND. */
    int (*find_task)(struct br_tracker *t, const char *contact_id, const char *source_key,
                     br_result_cb cb, void *arg);
    int (*add_comment)(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb,
                       void *arg);
    /*
     * All comments of a task, oldest first, as items: a JSON array of
     * {"id", "author" (tracker user such as "user:5" or "contact:9"),
     *  "author_name", "html", "hidden" (bool), "source_key" (or null)}.
     */
    int (*list_comments)(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg);
    /*
     * Comments added anywhere between from_ms and to_ms (wall clock), as
     * items like list_comments' with a "task" id: the safety net for
     * reply webhooks that never came.
     */
    int (*list_recent_comments)(struct br_tracker *t, int64_t from_ms, int64_t to_ms, br_result_cb cb,
                                void *arg);
    int (*close_task)(struct br_tracker *t, const char *task_id, long status_id, br_result_cb cb,
                      void *arg);
    /* The task's state as res->id: "active", "inactive" (completed) or "deleted". */
    int (*task_state)(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg);
    void (*free)(struct br_tracker *t);
};

struct br_tracker {
    const struct br_tracker_ops *ops;
    struct br_upstream *up;
    const struct br_config *cfg;
};

int br_tracker_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up);
void br_tracker_free(struct br_tracker *t);

int br_planfix_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up);

#endif
