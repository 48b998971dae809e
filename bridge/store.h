/*
 * store.h - the durable state of the bridge in SQLite (WAL).
 *
 * The store is the single source of truth: the inbox of acknowledged
 * webhooks, the conversations and their tasks, every message seen, the
 * comments seen in the tracker, and the outbox of jobs.  Everything in
 * memory is a cache that can be rebuilt from here after a crash.
 *
 * All calls are synchronous and run on the loop thread; they take
 * microseconds with prepared statements.  Rows returned in structs own
 * their strings: release them with the matching _dispose.
 */
#ifndef BR_STORE_H
#define BR_STORE_H

#include "br.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct br_store;

int br_store_open(struct br_store **out, const char *path);
void br_store_free(struct br_store *s);
int br_store_begin(struct br_store *s);
int br_store_commit(struct br_store *s);
void br_store_rollback(struct br_store *s);
/* Ends a transaction begun by the caller: commits when rc is 0, else (or when the commit fails) rolls back. */
int br_store_end(struct br_store *s, int rc);
/* Runs the statement expression stmt in a transaction of its own; its outcome. */
#define BR_STORE_TX(s, stmt) br_store_end((s), br_store_begin(s) != 0 ? BR_EIO : (stmt))
/* Cheap liveness probe for /healthz. */
int br_store_ping(struct br_store *s);

/*
 * Whether the store takes writes.  A statement that fails for a reason
 * outside the query (disk full, I/O error, a lock held too long) marks the
 * store failing until writes have reached the disk again for a second
 * without a failure; the start and the end are logged once each.  Nothing
 * is reopened: SQLite (WAL included) goes on by itself once there is room.
 */
struct br_store_health {
    bool failing;
    int64_t since;        /* when writes started failing (ms), 0 when they work */
    uint64_t failed;      /* failed statements since then */
    const char *error;    /* the last failure in SQLite's words (owned by the store), NULL when working */
};
void br_store_health(struct br_store *s, struct br_store_health *out);
bool br_store_failing(struct br_store *s);
/* How many statements ever failed that way: a change says another one failed. */
uint64_t br_store_failures(struct br_store *s);
/* A small write that always reaches the disk (a time stamp in meta): proves that writes work. */
int br_store_touch(struct br_store *s);
/* A random id of this installation (a UUID), created on first open. */
const char *br_store_instance_id(struct br_store *s);

/*
 * The key of one object the bridge creates in the tracker (Planfix
 * sourceObjectId, a UUID): the installation's UUID with its last group
 * replaced by the kind and the local id.  It finds the object again
 * after a crash, and tells the bridge's own comments from others.
 */
enum br_source_kind { BR_SOURCE_TASK = 1, BR_SOURCE_COMMENT = 2, BR_SOURCE_CONTACT = 3, BR_SOURCE_NOTE = 4 };
#define BR_SOURCE_KEY_LEN 36
void br_store_source_key(struct br_store *s, enum br_source_kind kind, int64_t id,
                         char out[BR_SOURCE_KEY_LEN + 1]);
/* true when key was made by br_store_source_key of this installation */
bool br_store_source_key_is_ours(struct br_store *s, const char *key);
int64_t br_now_ms(void);

/* ---- inbox: acknowledged webhooks, committed before the 200 ---- */
/*
 * CHATRA rows hold the bridge's record of a Chatra event (chatra_event.h),
 * made at the door; CHATRA_RAW rows, written by earlier versions, the
 * webhook body as received (parsed when applied).
 */
enum br_inbox_kind { BR_INBOX_CHATRA = 1, BR_INBOX_TRACKER = 2, BR_INBOX_CHATRA_RAW = 3 };
struct br_inbox_row {
    int64_t id;
    int kind;
    char *channel;
    char *body;
};
int br_store_inbox_add(struct br_store *s, int kind, const char *channel, const char *body,
                       size_t len, int64_t *id);
/*
 * Group commit: rows queued (copied) now are stored together by the next
 * br_store_inbox_flush, in one transaction: all of them, or on an error
 * none (and the queue is emptied either way).  *n says how many.
 */
void br_store_inbox_queue(struct br_store *s, int kind, const char *channel, const char *body, size_t len);
int br_store_inbox_flush(struct br_store *s, size_t *n);
/* BR_ENOTFOUND when the inbox is empty. */
int br_store_inbox_next(struct br_store *s, struct br_inbox_row *row);
int br_store_inbox_done(struct br_store *s, int64_t id);
int64_t br_store_inbox_pending(struct br_store *s);
/* When the oldest row still to apply was received (ms), 0 when none waits. */
int64_t br_store_inbox_oldest(struct br_store *s);
void br_inbox_row_dispose(struct br_inbox_row *row);

/* ---- conversations: one visitor person in one channel ---- */
struct br_conv {
    int64_t id;
    char *channel;
    char *client_id;      /* the device the visitor last wrote from */
    char *chat_id;
    char *name, *email, *phone;
    char *visitor_json;   /* the latest raw Chatra client object */
    char *contact_id;     /* the person's tracker contact, NULL until known */
    int gen;              /* current task generation (0 = none yet) */
    int64_t person_id;
    int64_t merged_into;  /* 0, or the conversation this one was joined into */
    char *profile_json;   /* the visitor as GET /clients/{id} answered, or NULL */
    int profile_state;    /* enum br_profile_state */
    bool contact_made;    /* the bridge created the contact (it did not find it) */
    char *company_id;     /* the person's company contact, or NULL */
};

enum br_profile_state { BR_PROFILE_NONE = 0, BR_PROFILE_PENDING = 1, BR_PROFILE_DONE = 2, BR_PROFILE_FAILED = 3 };
void br_conv_dispose(struct br_conv *c);
int br_store_conv_by_client(struct br_store *s, const char *channel, const char *client_id,
                            struct br_conv *out);
int br_store_conv_get(struct br_store *s, int64_t id, struct br_conv *out);
/* A new conversation for a new person. */
int br_store_conv_create(struct br_store *s, const char *channel, const char *client_id,
                         int64_t *id);
int br_store_conv_create_for_person(struct br_store *s, const char *channel, const char *client_id,
                                    int64_t person_id, int64_t *id);
/* The live (not merged) conversation of a person in a channel. */
int br_store_conv_of_person(struct br_store *s, const char *channel, int64_t person_id,
                            struct br_conv *out);
int br_store_conv_add_client(struct br_store *s, int64_t conv_id, const char *channel,
                             const char *client_id);
/* Records the chat a device is in; *previous is the one it was in before (NULL when unknown). */
int br_store_device_chat(struct br_store *s, const char *channel, const char *client_id, const char *chat_id,
                         char **previous);
int br_store_conv_update_visitor(struct br_store *s, int64_t conv_id, const char *client_id,
                                 const char *chat_id, const char *name, const char *email,
                                 const char *phone, const char *visitor_json);
/* made: the bridge created this contact (only such a contact is removed after a merge). */
int br_store_conv_set_contact(struct br_store *s, int64_t conv_id, const char *contact_id, bool made);
int br_store_conv_set_profile(struct br_store *s, int64_t conv_id, int state, const char *profile_json);
int br_store_conv_set_company(struct br_store *s, int64_t conv_id, const char *company_id);
/* Company contacts by e-mail domain: BR_ENOTFOUND for an unknown domain. */
int br_store_company_get(struct br_store *s, const char *domain, char **contact_id);
int br_store_company_set(struct br_store *s, const char *domain, const char *contact_id);
int br_store_conv_set_gen(struct br_store *s, int64_t conv_id, int gen);

/* ---- the CRM card (crm.h; store_crm.c) ---- */
/* The cached answer for email fetched at or after newer_than_ms: 0 with *card (NULL: nobody), else BR_ENOTFOUND. */
int br_store_crm_cache_get(struct br_store *s, const char *email, int64_t newer_than_ms, char **card);
/* card NULL: the CRM knows nobody with email. */
int br_store_crm_cache_put(struct br_store *s, const char *email, const char *card, int64_t at_ms);
int br_store_crm_cache_prune(struct br_store *s, int64_t older_than_ms);
/*
 * The e-mails a person is looked up by: their own (oldest first), then at
 * most company_max of other persons at domain (NULL: none).  A new array.
 */
json_t *br_store_crm_emails(struct br_store *s, int64_t person_id, const char *domain, size_t company_max);
/* A conversation's CRM state (enum br_crm_state), the card found (NULL: none) and the card last shown. */
enum br_crm_state { BR_CRM_NONE = 0, BR_CRM_PENDING = 1, BR_CRM_DONE = 2, BR_CRM_FAILED = 3 };
int br_store_conv_crm(struct br_store *s, int64_t conv_id, int *state, char **card, char **shown);
int br_store_conv_set_crm(struct br_store *s, int64_t conv_id, int state, const char *card);
/* The state alone: a new look-up keeps the card found before until it answers. */
int br_store_conv_set_crm_state(struct br_store *s, int64_t conv_id, int state);
int br_store_conv_set_crm_shown(struct br_store *s, int64_t conv_id, const char *shown);

/* ---- the tracker's requests per day (budget.h; store_usage.c) ---- */
/* The requests counted for day (an index of days since the epoch); 0 when none were. */
int br_store_usage_get(struct br_store *s, int64_t day, uint64_t *requests);
/* Sets day's count to requests, never lower than what is stored. */
int br_store_usage_put(struct br_store *s, int64_t day, uint64_t requests);
/* Sets the count of hour (0 to 23) of day, never lower than what is stored. */
int br_store_usage_hour_put(struct br_store *s, int64_t day, int hour, uint64_t requests);
/*
 * The hours' counts of the days from first_day on, for days days:
 * counts[(day - first_day) * 24 + hour]; hours not stored are 0.
 */
int br_store_usage_hours(struct br_store *s, int64_t first_day, int days, uint64_t *counts);
/* Removes the days (and their hours) before day. */
int br_store_usage_prune(struct br_store *s, int64_t before_day);

/* ---- persons: the identity map ---- */
int br_store_person_create(struct br_store *s, int64_t *id);
/* E-mails are stored trimmed and lower-cased; BR_ENOTFOUND for an unknown one. */
int br_store_person_of_email(struct br_store *s, const char *email, int64_t *person_id,
                             bool *verified);
int br_store_person_add_email(struct br_store *s, int64_t person_id, const char *email,
                              bool verified);
/* The person's e-mails (a JSON array of strings, oldest first); only the site's with verified_only. */
json_t *br_store_person_emails(struct br_store *s, int64_t person_id, bool verified_only);

/*
 * Joins conversation merged_conv (and its person) into survivor_conv:
 * its devices and e-mails move over, and the history keeps what moved so
 * that br_store_unmerge can undo it.
 */
int br_store_merge(struct br_store *s, int64_t survivor_conv, int64_t merged_conv,
                   const char *email, bool verified, int64_t *merge_id);
/* Records that a new device joined conv on its first webhook (undone by br_store_unmerge). */
int br_store_record_join(struct br_store *s, int64_t conv_id, const char *channel, const char *client_id,
                         const char *email, bool verified, int64_t *merge_id);
/*
 * Every merge recorded, undone ones too, by channel: devices that joined a
 * known person (joins) and conversations joined into another (merges).
 */
typedef void (*br_merge_count_cb)(void *arg, const char *channel, int64_t joins, int64_t merges);
int br_store_merge_counts(struct br_store *s, br_merge_count_cb cb, void *arg);
/* Undoes one merge: devices and e-mails go back; BR_ENOTFOUND / BR_EEXIST (already undone). */
int br_store_unmerge(struct br_store *s, int64_t merge_id, int64_t *merged_conv);
/*
 * Whether an admin undid a merge or join on this e-mail that this device
 * was part of (either side): its webhooks, which keep naming the address,
 * must not make it again.
 */
bool br_store_merge_undone(struct br_store *s, const char *channel, const char *client_id, const char *email);
/* The two conversations of a merge (merged is 0 for a device that joined and was never undone); BR_ENOTFOUND. */
int br_store_merge_sides(struct br_store *s, int64_t merge_id, int64_t *survivor, int64_t *merged);
/* The identity map as JSON (persons with e-mails, devices, contact, merges); email filters. */
int br_store_identities(struct br_store *s, const char *email, char **json_out);

/* ---- tasks: one tracker task per conversation generation ---- */
enum br_task_state { BR_TASK_PENDING = 0, BR_TASK_OPEN = 1, BR_TASK_CLOSING = 2, BR_TASK_CLOSED = 3 };
struct br_task {
    int64_t conv_id;
    int gen;
    char *task_id;        /* NULL while pending */
    int state;
    char *source_key;     /* set before the first creation request: a later attempt looks for it first */
};
void br_task_dispose(struct br_task *t);
int br_store_task_create(struct br_store *s, int64_t conv_id, int gen);
int br_store_task_get(struct br_store *s, int64_t conv_id, int gen, struct br_task *out);
int br_store_task_by_tracker_id(struct br_store *s, const char *task_id, struct br_task *out);
int br_store_task_set(struct br_store *s, int64_t conv_id, int gen, const char *task_id, int state);
int br_store_task_set_key(struct br_store *s, int64_t conv_id, int gen, const char *key);
/*
 * For the poll (poll_plan.h): whether some task is open in the tracker,
 * and whether one of those conversations had a message, a reply or a
 * tracker webhook at or after active_since (ms).  Cheap: the open tasks'
 * index, and the timeline's rows since active_since.
 */
int br_store_tasks_open(struct br_store *s, int64_t active_since, bool *open, bool *active);

/* ---- messages: every chat message seen, deduplicated per conversation ---- */
enum br_msg_state { BR_MSG_PENDING = 0, BR_MSG_MIRRORED = 1, BR_MSG_SKIPPED = 2 };
struct br_msg {
    int64_t id;
    int64_t conv_id;
    int gen;
    char *key;
    char *type;           /* client | agent */
    char *agent_id;
    char *text;
    int64_t created_at;   /* ms */
    int state;
};
void br_msg_dispose(struct br_msg *m);
/* *is_new is false (and *id the existing row) when the key was seen before. */
int br_store_msg_insert(struct br_store *s, int64_t conv_id, int gen, const char *key,
                        const char *type, const char *agent_id, const char *text,
                        int64_t created_at, int state, bool *is_new, int64_t *id);
int br_store_msg_get(struct br_store *s, int64_t id, struct br_msg *out);
int br_store_msg_set_gen(struct br_store *s, int64_t id, int gen);
/* Messages still waiting for the tracker move to another task generation. */
int br_store_msg_move_pending(struct br_store *s, int64_t conv_id, int from_gen, int to_gen);
/*
 * Messages of a generation still waiting for the tracker go nowhere:
 * skipped, and under no task (generation 0); *n says how many.
 */
int br_store_msg_skip_pending(struct br_store *s, int64_t conv_id, int gen, int *n);
int br_store_msg_set_state(struct br_store *s, int64_t id, int state, const char *comment_id);
/* A walk's callback: false ends the walk. */
typedef bool (*br_msg_cb)(void *arg, const struct br_msg *m);
/* Messages of one generation in order. */
int br_store_msg_each(struct br_store *s, int64_t conv_id, int gen, br_msg_cb cb, void *arg);
/*
 * The messages of one generation still waiting for the tracker, in order
 * from message id first on: a comment's run, one seek into a long chat.
 */
int br_store_msg_pending_from(struct br_store *s, int64_t conv_id, int gen, int64_t first, br_msg_cb cb, void *arg);

/* ---- tracker comments already seen (echo suppression and reply dedup) ---- */
/*
 * BRIDGE: the bridge wrote it and no read has listed it since; the others
 * were taken by a read of the task's comments (BRIDGE_READ: the bridge's
 * own, read back).
 */
enum br_comment_origin { BR_COMMENT_BRIDGE = 1, BR_COMMENT_RELAYED = 2, BR_COMMENT_IGNORED = 3, BR_COMMENT_BRIDGE_READ = 4 };
/* Returns true in *is_new when (task_id, comment_id) was not known. */
int br_store_comment_mark(struct br_store *s, const char *task_id, const char *comment_id,
                          int origin, bool *is_new);
/* A comment of the bridge's listed by a read: BRIDGE_READ, whether it was known or not. */
int br_store_comment_read_back(struct br_store *s, const char *task_id, const char *comment_id);

bool br_store_comment_seen(struct br_store *s, const char *task_id, const char *comment_id);
/*
 * Whether a read of the task's comments has taken it (any origin but
 * BRIDGE): a read took every comment older than it, too, but those whose
 * author was still being looked up.
 */
bool br_store_comment_taken(struct br_store *s, const char *task_id, const char *comment_id);
/* A small key/value of the bridge's own (e.g. when the tracker was last polled). */
int64_t br_store_meta_int(struct br_store *s, const char *key, int64_t def);
int br_store_meta_set_int(struct br_store *s, const char *key, int64_t value);

/* ---- replies relayed into the chat, to recognise their echo in the next fragment ---- */
int br_store_relay_add(struct br_store *s, int64_t conv_id, const char *agent_id,
                       const char *text);
/* Consumes one matching relay (same agent, same text); *found tells whether it was an echo. */
int br_store_relay_consume(struct br_store *s, int64_t conv_id, const char *agent_id,
                           const char *text, bool *found);

/*
 * A reply sent with the agent's e-mail (no agent id) is recorded with the
 * agent "email:<address>".  Its copy comes back with an agent id the
 * bridge never saw: this consumes the relay of that e-mail, or, when the
 * webhook did not tell the agent's e-mail (email NULL), any e-mail relay
 * with the same text.
 */
int br_store_relay_consume_email(struct br_store *s, int64_t conv_id, const char *email, const char *text,
                                 bool *found);

/* ---- employees known by e-mail ---- */
/*
 * The tracker user found for an employee's e-mail (tracker names the
 * tracker, e.g. its kind and URL).  BR_ENOTFOUND when never asked; 0 with
 * *tracker_user NULL when the tracker knew nobody at *checked_at (ms).
 */
int br_store_user_get(struct br_store *s, const char *tracker, const char *email, char **tracker_user,
                      int64_t *checked_at);
int br_store_user_set(struct br_store *s, const char *tracker, const char *email, const char *tracker_user);
/* The e-mail of a Chatra agent, as a webhook named it (BR_ENOTFOUND when never named). */
int br_store_agent_set(struct br_store *s, const char *channel, const char *agent_id, const char *email);
int br_store_agent_email(struct br_store *s, const char *channel, const char *agent_id, char **email);

/* ---- jobs: the outbox ---- */
/*
 * A discarded job is a dead letter an admin gave up on: never run again,
 * not counted as dead, kept with its request and answer.
 */
enum br_job_state { BR_JOB_QUEUED = 0, BR_JOB_SENDING = 1, BR_JOB_DONE = 2, BR_JOB_DEAD = 3, BR_JOB_DISCARDED = 4 };
struct br_job {
    int64_t id;
    char *lane;           /* jobs of one lane run strictly in id order */
    char *upstream;       /* "tracker" or "chatra:<channel>" */
    char *kind;
    int64_t conv_id;
    char *payload;        /* JSON object */
    int state;
    int attempts;
    int64_t next_at;
    bool recover;         /* was in flight when the daemon stopped */
    bool urgent;          /* carries a reply (fetch, poll, reply, user): handed out first */
};
void br_job_dispose(struct br_job *j);
int br_store_job_add(struct br_store *s, const char *lane, const char *upstream, const char *kind,
                     int64_t conv_id, const char *payload, int64_t *id);
/* The same, not to run before not_before (wall clock, ms). */
int br_store_job_add_at(struct br_store *s, const char *lane, const char *upstream, const char *kind,
                        int64_t conv_id, const char *payload, int64_t not_before, int64_t *id);
/* Whether an older job of its lane holds job id back (see br_store_job_ready). */
bool br_store_job_blocked(struct br_store *s, const char *lane, int64_t id);
/*
 * Up to max ready jobs of an upstream: queued, due, and first in their
 * lane (nothing older in the lane is queued, in flight or dead).  The
 * urgent ones (replies on their way: fetch, poll, reply, user) come first, each
 * group in (next_at, id) order.
 */
int br_store_job_ready(struct br_store *s, const char *upstream, int64_t now,
                       struct br_job *out, size_t max, size_t *n);
/* The same, the urgent ones only. */
int br_store_job_ready_urgent(struct br_store *s, const char *upstream, int64_t now,
                              struct br_job *out, size_t max, size_t *n);
/*
 * When the next of an upstream's queued jobs comes due after now (wall
 * clock, ms), lane or not; 0 when none waits for a later time.
 */
int64_t br_store_job_next_due(struct br_store *s, const char *upstream, int64_t now);
int br_store_job_get(struct br_store *s, int64_t id, struct br_job *out);
int br_store_job_start(struct br_store *s, int64_t id);
int br_store_job_payload(struct br_store *s, int64_t id, const char *payload);
/*
 * recover: the request may have taken effect although no answer came
 * (a timeout, a dropped connection, a 5xx): the next run checks first.
 */
int br_store_job_finish(struct br_store *s, int64_t id, int state, int attempts, int64_t next_at,
                        bool recover, const char *error, const char *request, const char *response);
/* At start-up: jobs left in flight become queued with recover set. */
int br_store_job_recover_inflight(struct br_store *s, int64_t *n);
/*
 * While running: the same for jobs left in flight that are not among
 * running[] (the jobs the engine is running now), e.g. after their outcome
 * could not be written.  *n how many went back.
 */
int br_store_job_recover_lost(struct br_store *s, const int64_t *running, size_t n_running, int64_t *n);
int64_t br_store_job_count(struct br_store *s, int state);
/* Jobs of upstream queued and due by now_ms (ready, or waiting for their lane): *n. */
int br_store_job_backlog(struct br_store *s, const char *upstream, int64_t now_ms, int64_t *n);
/*
 * The jobs not done, by upstream and state (queued, in flight, dead): how
 * many, and when the oldest of them was made (ms).  One call of cb per
 * pair that has jobs, ordered by upstream.
 */
typedef void (*br_job_depth_cb)(void *arg, const char *upstream, int state, int64_t count, int64_t oldest_at);
int br_store_job_depths(struct br_store *s, br_job_depth_cb cb, void *arg);
/*
 * Makes the jobs of this lane and kind that wait to run within within_ms
 * of now due now; *n says how many.
 */
int br_store_job_hasten(struct br_store *s, const char *lane, const char *kind, int64_t now, int64_t within_ms,
                        int64_t *n);
/* true when a job of this lane and kind is still waiting to run */
bool br_store_job_waiting(struct br_store *s, const char *lane, const char *kind);
/* Sets key to json (JSON text) in the payload of every job of this lane and kind still waiting to run. */
int br_store_job_note_waiting(struct br_store *s, const char *lane, const char *kind, const char *key,
                              const char *json);

/* Removes the texts of chats closed before before_ms (and old webhook bodies and jobs); *n texts. */
int br_store_forget_before(struct br_store *s, int64_t before_ms, int64_t *n);

/* ---- backup: a consistent copy of a store in use (store_backup.c) ---- */
struct br_backup {
    int step_pages;       /* pages copied per step, 0: 1024 */
    /* Called after every step but the last with the pages copied so far and the total; may be NULL. */
    void (*progress)(void *arg, int copied, int total);
    void *arg;
    /* Set when the copy is written: */
    int pages;
    int64_t bytes;
};
/*
 * Writes a copy of the store to the new file to (never over an existing
 * one: BR_EEXIST), while a daemon keeps writing: the copy is the store as
 * it was when the backup began, but for its open jobs, marked to look in
 * the tracker before they write (the daemon may have run them since),
 * checked with PRAGMA integrity_check, a single file (no -wal beside it)
 * that the bridge opens as its store.  It
 * is made beside to under a temporary name and renamed when complete, so
 * to is either absent or whole.  Failures are logged with their reason
 * (BR_EIO; BR_EINVAL when the copy fails its check).  b may be NULL.
 */
int br_store_backup(struct br_store *s, const char *to, struct br_backup *b);

/* ---- dead letters: jobs that failed for good ---- */
/* JSON list: id, kind, conversation, upstream, attempts, at, error, request, response. */
int br_store_dead_letters(struct br_store *s, char **json_out);
/* Puts dead job id (or all when id <= 0) back in the queue; *n how many. */
int br_store_dead_retry(struct br_store *s, int64_t id, int64_t *n);
/* Marks dead job id discarded; BR_ENOTFOUND when it is not a dead letter.  *conv_id: its conversation. */
int br_store_dead_discard(struct br_store *s, int64_t id, int64_t *conv_id);

/* A client id as the bridge shows it: a bound client id is a secret ("abcd...(36 chars)"); a new string. */
char *br_store_client_shown(const char *client_id);

/* ---- the admin page (store_admin.c; the timeline is store_activity.c's, activity.h) ---- */
struct br_store_overview {
    int64_t inbox_pending, inbox_oldest;  /* webhooks not applied yet, and when the oldest came (ms, 0: none) */
    int64_t jobs_queued, jobs_oldest;     /* jobs waiting; when the oldest waiting or running was made (ms, 0: none) */
    int64_t dead;
};
int br_store_overview(struct br_store *s, struct br_store_overview *out);
/*
 * Conversations, the latest activity first, as the admin page lists them
 * (a JSON array, new): q (NULL or "" for all) matches a name, an e-mail, a
 * client id or a task number anywhere, in any case; before > 0 starts
 * after that conversation in the order; at most limit.  *more says whether
 * there are more after those.
 */
int br_store_conversations(struct br_store *s, const char *q, int64_t before, size_t limit, json_t **out, bool *more);
/* One conversation as the list shows it, with person_id, phone and created_at; BR_ENOTFOUND. */
int br_store_conversation(struct br_store *s, int64_t id, json_t **out);

#endif
