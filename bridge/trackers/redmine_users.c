/*
 * redmine_users.c - who is who in Redmine: the API key's own user and the
 * employees' logins and ids, resolved once per start (every note's author
 * is checked by id), and an employee known only by e-mail found by it.
 */
#include "trackers/redmine_call.h"

#include "email.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* ---- users: the key's own user and the employees' logins, resolved once ---- */

const char *
br_rm_login_of(const struct rm *rm, long id)
{
    if (id == rm->self_id)
        return rm->self_login;
    for (size_t i = 0; i < rm->n_users; i++)
        if (rm->users[i].id == id && rm->users[i].login)
            return rm->users[i].login;
    return NULL;
}

long
br_rm_id_of(const struct rm *rm, const char *login)
{
    if (login == NULL)
        return rm->self_id;
    for (size_t i = 0; i < rm->n_users; i++)
        if (rm->users[i].id && rm->users[i].login && strcmp(rm->users[i].login, login) == 0)
            return rm->users[i].id;
    return 0;
}

static void resolve_next_user(struct call *c);

/* The user of a /users.json answer whose mail is email (normal form), or NULL. */
static json_t *
user_with_mail(json_t *answer, const char *email)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(answer, "users"), i, v) {
        json_t *mail = json_object_get(v, "mail");
        char *norm = json_is_string(mail) ? br_email_normalize(json_string_value(mail), json_string_length(mail)) : NULL;
        bool same = norm && strcmp(norm, email) == 0;
        free(norm);
        if (same && json_is_string(json_object_get(v, "login")) && json_is_integer(json_object_get(v, "id")))
            return v;
    }
    return NULL;
}

static void
got_user(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    struct rm_user *u = &c->rm->users[c->user_i];
    const char *who = u->login ? u->login : u->email;
    size_t i;
    json_t *v;

    /*
     * The name filter matches parts of logins, names and e-mails: only the
     * exact login (or mail) counts.  A lookup refused (check_answer) left id -1.
     */
    if (u->id != -1 && u->login) {
        json_array_foreach(json_object_get(answer, "users"), i, v) {
            const char *login = json_string_value(json_object_get(v, "login"));
            if (login && strcmp(login, u->login) == 0)
                u->id = (long)json_integer_value(json_object_get(v, "id"));
        }
    } else if (u->id != -1 && (v = user_with_mail(answer, u->email)) != NULL) {
        u->login = br_strdup(json_string_value(json_object_get(v, "login")));
        u->id = (long)json_integer_value(json_object_get(v, "id"));
    }
    c->lookup = false;
    if (u->id == -1) {
        u->id = 0;
        br_warn("redmine: the API key may not list users (it must be an administrator's): the notes of employee "
                "\"%s\" are not relayed, and notes written as them fail",
                who);
    } else if (u->id == 0 && u->login) {
        br_warn("redmine: no active user has the login \"%s\" (employees[].tracker_user): that employee's notes "
                "are not relayed, and notes written as them fail",
                u->login);
    } else if (u->id == 0) {
        br_warn("redmine: no active user has the e-mail %s (employees[].email): that employee's notes are not "
                "relayed, and their messages typed in Chatra are written by the bridge",
                u->email);
    }
    c->user_i++;
    resolve_next_user(c);
}

static void
resolve_next_user(struct call *c)
{
    struct rm *rm = c->rm;
    char *saved = c->employee;

    if (c->user_i >= rm->n_users) {
        rm->users_known = true;
        c->after_users(&c->rest, NULL);
        return;
    }
    {
        /* An employee known only by e-mail is found by it (the filter matches mail too). */
        char *q = br_rm_escape_url(rm->users[c->user_i].login ? rm->users[c->user_i].login : rm->users[c->user_i].email);
        char *path = br_asprintf("/users.json?name=%s&limit=100", q);
        c->employee = NULL; /* the lookup is the admin's own */
        c->lookup = true;
        br_rm_again(c, "GET", path, NULL, got_user);
        c->employee = saved;
        free(path);
        free(q);
    }
}

static void
got_self(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *u = json_object_get(answer, "user");
    struct rm *rm = c->rm;

    if (!json_is_integer(json_object_get(u, "id"))) {
        rc->res.err = BR_ERETRY;
        rc->res.error = br_strdup("Redmine's /users/current.json named no user");
        return;
    }
    rm->self_id = (long)json_integer_value(json_object_get(u, "id"));
    free(rm->self_login);
    rm->self_login = br_strdup(json_string_value(json_object_get(u, "login")) ? json_string_value(json_object_get(u, "login")) : "");
    c->user_i = 0;
    resolve_next_user(c);
}

/* Runs first(c, NULL) once the users are known, resolving them first when needed. */
void
br_rm_with_users(struct call *c, br_rest_step_fn first)
{
    char *saved = c->employee;

    c->after_users = first;
    if (c->rm->users_known) {
        br_rest_run(&c->rest, first);
        return;
    }
    c->employee = NULL; /* the lookup is the admin's own */
    br_rm_start(c, "GET", "/users/current.json", NULL, got_self);
    c->employee = saved;
}

/* ---- find_user: an employee known only by e-mail ---- */

static void
found_user(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    struct rm *rm = c->rm;
    json_t *v = user_with_mail(answer, c->text);

    if (v == NULL) {
        rc->res.err = BR_ENOTFOUND;
        return;
    }
    rc->res.id = br_strdup(json_string_value(json_object_get(v, "login")));
    /* The journals of this login are the employee's from now on. */
    for (size_t i = 0; i < rm->n_users; i++) {
        struct rm_user *u = &rm->users[i];
        if (u->login == NULL && u->email && strcmp(u->email, c->text) == 0) {
            u->login = br_strdup(rc->res.id);
            u->id = (long)json_integer_value(json_object_get(v, "id"));
        }
    }
}

void
br_rm_find_user(struct br_tracker *t, const char *email, br_result_cb cb, void *arg)
{
    struct call *c = br_rm_call_new(t, cb, arg);
    char *q = br_rm_escape_url(email);
    char *path = br_asprintf("/users.json?name=%s&limit=100", q);

    c->text = br_strdup(email);
    br_rm_start(c, "GET", path, NULL, found_user);
    free(path);
    free(q);
}

