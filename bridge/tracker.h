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
#include "templates/tpl.h"
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
    /*
     * With BR_ERETRY: > 0 bounds the job's attempts (an answer the driver
     * does not understand, such as an undocumented error code, is worth a
     * few tries, not hours of them); 0 means the engine's own bound.
     */
    int max_attempts;
};

typedef void (*br_result_cb)(void *arg, struct br_result *res);

void br_result_dispose(struct br_result *r);

/* An id from a tracker's JSON (a number or a non-empty string) as a string; NULL otherwise. */
char *br_tracker_id(json_t *v);

/* A custom field (of a task or a contact) with its rendered value. */
struct br_field_value {
    long id;
    const char *value;
};

struct br_contact_spec {
    const char *name;
    const char *lastname;
    const char *email;      /* may be NULL */
    const char *phone;      /* may be NULL */
    long template_id;       /* 0 = none */
    const char *source_key; /* unique per contact creation: finds it again after a crash */
    const struct br_field_value *fields; /* contact custom fields (rendered) */
    size_t n_fields;
};

struct br_task_spec {
    const char *title;
    const char *description;  /* in the tracker's text format (ops->text_escape) */
    const struct br_field_value *fields;
    size_t n_fields;
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
    const char *employee;    /* ... or this employee (tracker_user); neither: the bridge's own user */
    const char *text;        /* in the tracker's text format (ops->text_escape): HTML, Textile */
    const char *source_key;
};

struct br_tracker;

struct br_tracker_ops {
    const char *kind;
    /* How template values are escaped in task descriptions (HTML for Planfix, Textile for Redmine). */
    enum br_tpl_escape text_escape;
    /* How far back each poll looks beyond the previous one (the tracker's time resolution, clock skew). */
    int64_t poll_overlap_ms;
    /*
     * Contacts and companies: a tracker without them (Redmine) leaves
     * find_contact ... delete_contact NULL; the visitor's details then go
     * into the task (description, custom fields) and changes into notes.
     */
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
    /*
     * res->id is the new comment's id.  A driver that had to read the
     * task's comments to learn it (Redmine) may hand them over as
     * res->items = {"comments": [as list_comments], "change": id of the
     * change they cover, as list_recent_comments names it}.
     */
    int (*add_comment)(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb,
                       void *arg);
    /*
     * All comments of a task, oldest first, as items: a JSON array of
     * {"id", "author" (tracker user such as "user:5" or "contact:9"),
     *  "author_name", "html", "hidden" (bool), "source_key" (or null)}.
     * A driver whose polls name changes (Redmine) may set res->id to the
     * change these comments settle for good: the poll skips it.
     */
    int (*list_comments)(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg);
    /*
     * Optional, for trackers whose comments cannot carry the bridge's
     * source key (Redmine): the ids of comments that have s's author and
     * text, oldest first, as items (a JSON array of strings).  After a
     * crash the engine takes the first one it has not recorded yet.
     */
    int (*find_comment)(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg);
    /* Optional: sets the task's custom fields (the visitor's details changed). */
    int (*update_task_fields)(struct br_tracker *t, const char *task_id, const struct br_field_value *fields,
                              size_t n_fields, br_result_cb cb, void *arg);
    /*
     * Comments added anywhere between from_ms and to_ms (wall clock), as
     * items like list_comments' with a "task" id: the safety net for
     * reply webhooks that never came.  A tracker that cannot list
     * comments by time (Redmine) returns one item per changed task with
     * "change": true and an "id" that names that change (such as its
     * update time): the engine reads the task's comments until a read
     * settles that change (see list_comments and add_comment).
     */
    int (*list_recent_comments)(struct br_tracker *t, int64_t from_ms, int64_t to_ms, br_result_cb cb,
                                void *arg);
    int (*close_task)(struct br_tracker *t, const char *task_id, long status_id, br_result_cb cb,
                      void *arg);
    /*
     * Optional: the newest active task the contact takes part in (as
     * assigner or counterparty), made by anyone, as res->id; BR_ENOTFOUND
     * when there is none ("a new task if there are no active tasks with
     * this contact").
     */
    int (*find_active_task)(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg);
    /* Optional: a comment on the contact's card (s->task_id unused); res->id is its id. */
    int (*add_contact_comment)(struct br_tracker *t, const char *contact_id, const struct br_comment_spec *s,
                               br_result_cb cb, void *arg);
    /* Optional: the comments on the contact's card, as items like list_comments' (crash recovery). */
    int (*list_contact_comments)(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg);
    /* The task's state as res->id: "active", "inactive" (completed) or "deleted". */
    int (*task_state)(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg);
    /*
     * The tracker user whose e-mail is email (in normal form, see email.h)
     * as res->id, written as employees[].tracker_user is ("user:5" for
     * Planfix, the login for Redmine), or BR_ENOTFOUND.  The engine asks
     * once for each employee configured without tracker_user and keeps
     * the answer in the store.
     */
    int (*find_user)(struct br_tracker *t, const char *email, br_result_cb cb, void *arg);
    void (*free)(struct br_tracker *t);
};

/*
 * What a driver learned of the tracker's clock from its answers (Planfix
 * reads the dates of its filters in the API user's time zone).  The
 * engine keeps it in the store, so that a restart starts from it.
 */
struct br_tracker_clock {
    int64_t learned_at_ms; /* the time of the newest answer it comes from; 0: nothing learned yet */
    long utc_offset_s;     /* seconds east of UTC */
};

struct br_tracker {
    const struct br_tracker_ops *ops;
    struct br_upstream *up;
    const struct br_config *cfg;
    struct br_tracker_clock clock;
};

int br_tracker_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up);
void br_tracker_free(struct br_tracker *t);

int br_planfix_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up);
int br_redmine_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up);

#endif
