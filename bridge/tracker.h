/*
 * tracker.h - the interface every task tracker driver implements.
 *
 * The conversation logic (conversation.c, jobs/) is written once against
 * these operations; a driver (trackers/planfix.c, ...) only translates
 * them into its API (its HTTP calls go through rest.h).  It says what it
 * can do in its capabilities.  Each operation is asynchronous: it sends
 * one or more requests through the tracker's upstream (which enforces the
 * rate limit) and calls cb exactly once, never synchronously.
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
#include <stdbool.h>

struct br_config;
struct br_tracker_kind;

/* A tracker comment as the drivers read it. */
struct br_comment_item {
    char *id;
    char *author;            /* tracker user ("user:5", a login) or "contact:9" */
    char *author_name;
    char *html;              /* its text as HTML (html_text.h turns it into a chat message) */
    char *source_key;        /* the bridge's key when it wrote it (Planfix), or NULL */
    char *task;              /* list_recent_comments: the task it is on */
    bool hidden;             /* private: never relayed */
    bool change;             /* list_recent_comments of a tracker that names changes, not comments */
};

struct br_comment_list {
    struct br_comment_item *items;
    size_t n, cap;
};

/* A new zeroed item at the end of l (its strings are the list's: br_comment_list_dispose frees them). */
struct br_comment_item *br_comment_list_add(struct br_comment_list *l);
void br_comment_list_dispose(struct br_comment_list *l);

/* What task_state found. */
enum br_task_status { BR_TASK_STATUS_ACTIVE = 0, BR_TASK_STATUS_INACTIVE, BR_TASK_STATUS_DELETED };

/* The outcome of one operation; which fields it sets is said at the operation. */
struct br_result {
    int err;
    char *id;              /* the object made or found */
    bool made;             /* find_contact: the contact carries the key asked for (the bridge made it) */
    enum br_task_status task_status;
    struct br_comment_list comments;
    bool comments_read;    /* add_comment: the driver read the task's comments, in comments */
    bool closed;           /* create_task: the task was made in spec's closed_status_id (already completed) */
    char *change;          /* the change of the task the comments settle (Redmine), or NULL */
    json_t *data;          /* an answer handed on as it is (Chatra's client), or NULL */
    long status;           /* HTTP status of the last answer, 0 when none came */
    long retry_after_s;    /* -1 when the upstream did not say */
    int quota_exhausted;   /* the daily quota is gone: pause the upstream */
    int key_refused;       /* the account's key was refused (401): pause the upstream, the job waits */
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
    const char *description;  /* in the tracker's text format (ops->kind->text_format) */
    const struct br_field_value *fields;
    size_t n_fields;
    const char *contact_id;
    const char *company_id;  /* the counterparty when known, else the contact */
    const char *const *watchers;
    size_t n_watchers;
    long template_id;
    const char *source_key; /* unique per task creation: finds it again after a crash */
    /*
     * > 0: the visitor left before the task was made: it is made already
     * completed, in this status (res->closed says the tracker took it).
     */
    long closed_status_id;
};

struct br_comment_spec {
    const char *task_id;
    const char *contact_id;  /* author is the visitor's contact ... */
    const char *employee;    /* ... or this employee (tracker_user); neither: the bridge's own user */
    const char *text;        /* in the tracker's text format (ops->kind->text_format): HTML, Textile */
    const char *source_key;
};

struct br_tracker;

/*
 * What a tracker can do, said by its driver rather than guessed from
 * missing operations.  An operation a capability covers is set exactly
 * when the capability is.
 */
struct br_tracker_caps {
    /*
     * Contacts and companies (find_contact ... delete_contact): without
     * them (Redmine) the visitor's details go into the task (description,
     * custom fields) and changes into notes.
     */
    bool contacts;
    bool contact_comments;  /* add_contact_comment, list_contact_comments: visits on the card */
    bool active_tasks;      /* find_active_task */
    bool task_fields;       /* update_task_fields */
    bool users;             /* find_user */
    /*
     * Comments carry the bridge's source key, so list_comments finds one
     * written before a crash; without it find_comment matches author and
     * text (Redmine).
     */
    bool comment_keys;
};

/*
 * Every operation is asynchronous and calls cb exactly once, always later
 * (never inside the call), also when the upstream refuses the request at
 * shutdown (BR_ECANCELED).
 */
/* Whether the caller already has a task's comment (list_comments may stop there). */
struct br_comments_known {
    bool (*has)(void *arg, const char *comment_id);
    void *arg;
};

struct br_tracker_ops {
    /* Its kind: name, label (log lines, Chatra's receivedFrom), text format (HTML, Textile). */
    const struct br_tracker_kind *kind;
    struct br_tracker_caps caps;
    /* How far back each poll looks beyond the previous one (the tracker's time resolution, clock skew). */
    int64_t poll_overlap_ms;
    /*
     * caps.contacts: id of the contact whose e-mail is exactly email, or
     * BR_ENOTFOUND; res->made when that contact carries source_key (the
     * bridge made it, in a run cut off before the answer was stored).
     */
    void (*find_contact)(struct br_tracker *t, const char *email, const char *source_key, br_result_cb cb,
                        void *arg);
    void (*create_contact)(struct br_tracker *t, const struct br_contact_spec *c, br_result_cb cb,
                          void *arg);
    /* Finds a contact created earlier with name and source_key (crash recovery), or BR_ENOTFOUND. */
    void (*find_contact_by_key)(struct br_tracker *t, const char *name, const char *source_key,
                               br_result_cb cb, void *arg);
    /* The company contact named name (an e-mail domain), or BR_ENOTFOUND. */
    void (*find_company)(struct br_tracker *t, const char *name, br_result_cb cb, void *arg);
    void (*create_company)(struct br_tracker *t, const char *name, long template_id, const char *source_key,
                          br_result_cb cb, void *arg);
    /* Writes the visitor's current name, e-mail and phone into the contact. */
    void (*update_contact)(struct br_tracker *t, const char *contact_id, const struct br_contact_spec *c,
                          br_result_cb cb, void *arg);
    /* Removes a contact left over by a merge (Planfix keeps it in its trash). */
    void (*delete_contact)(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg);
    void (*create_task)(struct br_tracker *t, const struct br_task_spec *s, br_result_cb cb, void *arg);
    /* Finds a task created earlier with source_key (crash recovery), or BR_ENOTFOUND. */
    void (*find_task)(struct br_tracker *t, const char *contact_id, const char *source_key,
                     br_result_cb cb, void *arg);
    /*
     * res->id is the new comment's id.  A driver that had to read the
     * task's comments to learn it (Redmine) hands them over in
     * res->comments (res->comments_read), with res->change the change they
     * cover, as list_recent_comments names it.
     */
    void (*add_comment)(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb,
                       void *arg);
    /*
     * The comments of a task, oldest first, in res->comments.  A driver
     * whose polls name changes (Redmine) sets res->change to the change
     * these comments settle for good: the poll skips it.  With known
     * (may be NULL: all of them), a driver that reads in pages may read
     * newest first and stop after a page that proves it is newest first
     * and ends with a comment known says the caller already has: only
     * the comments since then, and older ones on the same pages, come.
     */
    void (*list_comments)(struct br_tracker *t, const char *task_id, const struct br_comments_known *known,
                          br_result_cb cb, void *arg);
    /*
     * Without caps.comment_keys: the comments that have s's author and
     * text, oldest first, in res->comments (ids only).  After a crash the
     * engine takes the first one it has not recorded yet.
     */
    void (*find_comment)(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg);
    /* caps.task_fields: sets the task's custom fields (the visitor's details changed). */
    void (*update_task_fields)(struct br_tracker *t, const char *task_id, const struct br_field_value *fields,
                              size_t n_fields, br_result_cb cb, void *arg);
    /*
     * Comments added anywhere between from_ms and to_ms (wall clock), in
     * res->comments with their task: the safety net for reply webhooks
     * that never came.  A tracker that cannot list comments by time
     * (Redmine) gives one item per changed task with change set and an id
     * that names that change (such as its update time): the engine reads
     * the task's comments until a read settles that change (see
     * list_comments and add_comment).
     */
    void (*list_recent_comments)(struct br_tracker *t, int64_t from_ms, int64_t to_ms, br_result_cb cb,
                                void *arg);
    void (*close_task)(struct br_tracker *t, const char *task_id, long status_id, br_result_cb cb,
                      void *arg);
    /*
     * caps.active_tasks: the newest active task the contact takes part in (as
     * assigner or counterparty), made by anyone, as res->id; BR_ENOTFOUND
     * when there is none ("a new task if there are no active tasks with
     * this contact").
     */
    void (*find_active_task)(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg);
    /* caps.contact_comments: a comment on the contact's card (s->task_id unused); res->id is its id. */
    void (*add_contact_comment)(struct br_tracker *t, const char *contact_id, const struct br_comment_spec *s,
                               br_result_cb cb, void *arg);
    /* caps.contact_comments: the comments on the contact's card, in res->comments (crash recovery). */
    void (*list_contact_comments)(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg);
    /* The task's state in res->task_status (BR_ENOTFOUND: gone entirely). */
    void (*task_state)(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg);
    /*
     * caps.users: the tracker user whose e-mail is email (in normal form, see email.h)
     * as res->id, written as employees[].tracker_user is ("user:5" for
     * Planfix, the login for Redmine), or BR_ENOTFOUND.  The engine asks
     * once for each employee configured without tracker_user and keeps
     * the answer in the store.
     */
    void (*find_user)(struct br_tracker *t, const char *email, br_result_cb cb, void *arg);
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

/*
 * A tracker kind, known before any driver is made: what its config
 * section, its texts and the config's checks need.  Each driver file
 * defines one; tracker.c lists them.
 */
struct br_conf_loader;
struct br_tracker_kind {
    const char *name;                 /* tracker.kind: "planfix" */
    const char *label;                /* "Planfix": problems and log lines */
    const char *task_word;            /* what it calls a task ("task", "issue") */
    enum br_tpl_escape text_format;   /* how its texts are written: HTML, Textile */
    const char *text_ext;             /* the default templates' extension: "html", "textile" */
    double default_rps;               /* tracker.requests_per_second */
    long default_poll_s;              /* tracker.poll_interval_s */
    long default_daily_quota;         /* tracker.daily_quota: requests a day, 0 = no daily limit */
    bool polled_only;                 /* replies arrive by polling alone: the poll cannot be off */
    bool task_templates;              /* channels[].task.template_id */
    bool numeric_watchers;            /* watchers are numeric user ids ("7" or "user:7") */
    /* NULL when user is an employees[].tracker_user of this tracker, else what one is ("a Planfix user id ..."). */
    const char *(*user_problem)(const char *user);
    /*
     * Reads the kind's own keys of the tracker section (credentials, a
     * project) into the config and refuses another kind's, reporting
     * problems (config_load.h); const char *const keys[] lists them.
     */
    const char *const *keys;
    void (*load)(struct br_conf_loader *L, json_t *section);
    /* Its operations; their caps say what it keeps (contacts and companies: caps.contacts). */
    const struct br_tracker_ops *ops;
    int (*create)(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up);
    /* The address of a task in the tracker's web interface, for the admin page's link (a new string). */
    char *(*task_url)(const struct br_config *cfg, const char *task_id);
};

/* The kind named name, or NULL; and the names of them all ("planfix, redmine"). */
const struct br_tracker_kind *br_tracker_kind(const char *name);
const char *br_tracker_kind_names(void);
/* Every key some kind reads from the tracker section (for the check of unknown keys), NULL-terminated. */
const char *const *br_tracker_kind_keys(void);

extern const struct br_tracker_kind br_planfix_kind;
extern const struct br_tracker_kind br_redmine_kind;

/* The driver of cfg's tracker kind, sending through up. */
int br_tracker_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up);
void br_tracker_free(struct br_tracker *t);

#endif
