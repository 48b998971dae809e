/*
 * planfix_call.h - what the Planfix driver's rooms share (internal to
 * bridge/trackers/): planfix_call.c (one call: its requests, its pages
 * and what Planfix's answers mean), planfix.c (contacts, companies,
 * tasks, users; the driver's table) and planfix_comments.c (writing a
 * comment, reading a task's, a contact's and the poll's).
 */
#ifndef BR_PLANFIX_CALL_H
#define BR_PLANFIX_CALL_H

#include "rest.h"
#include "tracker.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define PAGE_SIZE 100
#define MAX_PAGES 100      /* 10,000 comments on one task is more than any chat */

struct pf {
    struct br_tracker base;
    char *auth_header;
};

/* One operation: the REST call (rest.h) and what Planfix's steps keep. */
struct call {
    struct br_rest_call rest;
    struct pf *pf;
    char *source_key;
    char *list_path;       /* for paged list requests */
    json_t *request_body;  /* for paged requests */
    int page;
    bool second;           /* a request in two parts is at its second (find_active_task) */
    bool closed;           /* create_task asked for a completed status */
    /* A poll: only comments of this wall-clock window (ms, UTC) are kept (see pf_list_recent_comments). */
    bool windowed;
    int64_t win_from_ms, win_to_ms;
    /* A task's comments read newest first, down to one the caller has (see pf_list_comments). */
    struct br_comments_known known;
};

/* A new call of the driver t, whose outcome goes to cb(arg, res). */
struct call *br_pf_call_new(struct br_tracker *t, br_result_cb cb, void *arg);
/* The call's first request; a paged list's first page (body is kept for the next ones); its next page. */
void br_pf_start(struct call *c, const char *method, const char *path, json_t *body, br_rest_step_fn step);
void br_pf_start_list(struct call *c, const char *path, json_t *body, br_rest_step_fn step);
void br_pf_next_page(struct call *c);
/* A step: the answer's "id" is the call's result. */
void br_pf_take_id(struct br_rest_call *rc, json_t *answer);
/* obj[key], the key in any case (Planfix's help pages capitalise keys where the API does not). */
json_t *br_pf_get_ci(json_t *obj, const char *key);
/* "contact:9" for contact 9 (an id with its prefix stays as it is), and {"id": that}: free / decref. */
char *br_pf_ref(const char *prefix, const char *id);
json_t *br_pf_person(const char *prefix, const char *id);

/* The tracker operations of comments (planfix_comments.c). */
void br_pf_add_comment(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg);
void br_pf_list_comments(struct br_tracker *t, const char *task_id, const struct br_comments_known *known,
                         br_result_cb cb, void *arg);
void br_pf_list_contact_comments(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg);
void br_pf_list_recent_comments(struct br_tracker *t, int64_t from_ms, int64_t to_ms, br_result_cb cb, void *arg);

#endif
