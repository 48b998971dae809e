/*
 * redmine_call.h - what the Redmine driver's rooms share (internal to
 * bridge/trackers/): redmine_call.c (one call: its requests and what
 * Redmine's answers mean), redmine.c (issues, notes, the poll) and
 * redmine_users.c (the key's own user and the employees' logins, resolved
 * once; an employee found by e-mail).
 */
#ifndef BR_REDMINE_CALL_H
#define BR_REDMINE_CALL_H

#include "rest.h"
#include "tracker.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct rm_user {
    char *login;            /* NULL until an employee known by e-mail is found */
    char *email;            /* in normal form: how an employee without a login is found */
    long id;
};

struct rm {
    struct br_tracker base;
    char *key_header;
    bool users_known;       /* self and employees resolved */
    long self_id;
    char *self_login;
    struct rm_user *users;  /* employees, by login */
    size_t n_users;
    bool ahead_known;
    double ahead_s;         /* Redmine's clock is at least this far ahead of ours (may be negative) */
};

/* One operation: the REST call (rest.h) and what Redmine's steps keep. */
struct call {
    struct br_rest_call rest;
    struct rm *rm;
    br_rest_step_fn after_users; /* what the call does once users are resolved */
    char *task_id;
    char *text;             /* the note as sent (Textile) */
    char *employee;         /* switch-user login, NULL = the key's own user */
    char *path;             /* paged list requests */
    long status_id;
    size_t user_i;
    int page;
    bool lookup;            /* a user lookup: a refusal is a warning, not the call's failure */
};

/* A new call of the driver t, whose outcome goes to cb(arg, res). */
struct call *br_rm_call_new(struct br_tracker *t, br_result_cb cb, void *arg);
/* The call's first request, and its next one from inside a step, as c->employee when set. */
void br_rm_start(struct call *c, const char *method, const char *path, json_t *body, br_rest_step_fn step);
void br_rm_again(struct call *c, const char *method, const char *path, json_t *body, br_rest_step_fn step);
/* s escaped for a URL's query: free it. */
char *br_rm_escape_url(const char *s);

/* Runs first(c, NULL) once the users are known, resolving them first when needed. */
void br_rm_with_users(struct call *c, br_rest_step_fn first);
/* The login of user id, or NULL; the id of login (NULL: the key's own user), 0 when unknown. */
const char *br_rm_login_of(const struct rm *rm, long id);
long br_rm_id_of(const struct rm *rm, const char *login);
/* The tracker operation find_user. */
void br_rm_find_user(struct br_tracker *t, const char *email, br_result_cb cb, void *arg);

#endif
