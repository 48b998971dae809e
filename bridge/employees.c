#include "employees.h"

#include "config.h"
#include "context.h"
#include "env.h"
#include "log.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define RECHECK_MS (60 * 60 * 1000)               /* nobody had the e-mail: ask again, when it matters */
#define REFRESH_MS ((int64_t)7 * 24 * 60 * 60 * 1000) /* a user found is confirmed this often */

enum user_state { USER_CONFIG = 0, USER_PENDING, USER_FOUND, USER_NOBODY };

/* What is known of one employee configured without tracker_user. */
struct emp_user {
    enum user_state state;
    char *user;                /* USER_FOUND: the tracker user */
    int64_t checked_at;        /* when the tracker was asked (wall clock, ms) */
    bool asking;               /* a lookup is queued (a refresh keeps USER_FOUND meanwhile) */
};

struct br_employees {
    struct emp_user *users;    /* one per cfg->employees */
    size_t n;
    char *tracker_name;        /* the tracker in the store's user cache: kind and URL */
};

static struct emp_user *
emp_user_of(struct br_env *env, const struct br_employee *emp)
{
    return &env->employees->users[emp - env->cfg->employees];
}

void
br_employees_free(struct br_employees *em)
{
    if (em == NULL)
        return;
    for (size_t i = 0; i < em->n; i++)
        free(em->users[i].user);
    free(em->users);
    free(em->tracker_name);
    free(em);
}

const char *
br_employees_tracker_label(const struct br_env *env)
{
    return env->tracker->ops->kind->label;
}

const char *
br_employees_user(struct br_env *env, const struct br_employee *emp)
{
    struct emp_user *u = emp_user_of(env, emp);

    if (emp->tracker_user)
        return emp->tracker_user;
    return u->state == USER_FOUND ? u->user : NULL;
}

bool
br_employees_pending(struct br_env *env, const struct br_employee *emp)
{
    return emp_user_of(env, emp)->state == USER_PENDING;
}

const struct br_employee *
br_employees_by_user(struct br_env *env, const struct br_channel *ch, const char *user)
{
    for (size_t i = 0; user && i < ch->n_employees; i++) {
        const char *u = br_employees_user(env, ch->employees[i]);
        if (u && strcmp(u, user) == 0)
            return ch->employees[i];
    }
    return NULL;
}

/* Queues a lookup of emp's e-mail; block: until it answers, comments that may be theirs wait. */
static void
ask_user(struct br_env *env, const struct br_employee *emp, bool block)
{
    struct emp_user *u = emp_user_of(env, emp);
    json_t *p = json_pack("{s:s, s:I}", "email", emp->email, "at", (json_int_t)br_now_ms());

    if (BR_STORE_TX(env->store, br_env_add_job(env, 'u', "tracker", "user", 0, p)) != 0)
        return; /* asked again by whoever needs it next */
    u->asking = true;
    if (block)
        u->state = USER_PENDING;
    br_queue_wake(env->queue);
}
/* Records the tracker's answer for email (user NULL: nobody) for every employee with it. */
static void
set_user(struct br_env *env, const char *email, const char *user, int64_t checked_at)
{
    for (size_t i = 0; i < env->cfg->n_employees; i++) {
        const struct br_employee *emp = &env->cfg->employees[i];
        struct emp_user *u = &env->employees->users[i];
        if (emp->tracker_user || strcmp(emp->email, email) != 0)
            continue;
        free(u->user);
        u->user = user ? br_strdup(user) : NULL;
        u->state = user ? USER_FOUND : USER_NOBODY;
        u->checked_at = checked_at;
        u->asking = false;
    }
}
/*
 * At start: every employee without tracker_user gets the user cached for
 * their e-mail, or a lookup (the tracker is asked once, not per comment).
 */
struct br_employees *
br_employees_new(struct br_env *env)
{
    int64_t now = br_now_ms();

    env->employees = br_calloc(1, sizeof(*env->employees));
    env->employees->n = env->cfg->n_employees;
    env->employees->tracker_name = br_asprintf("%s %s", env->cfg->tracker_kind, env->cfg->tracker_url);
    env->employees->users = br_calloc(env->cfg->n_employees + 1, sizeof(*env->employees->users));
    for (size_t i = 0; i < env->cfg->n_employees; i++) {
        const struct br_employee *emp = &env->cfg->employees[i];
        char *user = NULL;
        int64_t at = 0;

        if (emp->tracker_user)
            continue;
        if (br_store_user_get(env->store, env->employees->tracker_name, emp->email, &user, &at) == 0) {
            set_user(env, emp->email, user, at);
            if (user == NULL && now - at >= RECHECK_MS)
                ask_user(env, emp, true);
        } else {
            ask_user(env, emp, true);
        }
        free(user);
    }
    return env->employees;
}
/* Housekeeping: a user found by e-mail is confirmed now and then (a changed e-mail, a new user). */
void
br_employees_refresh(struct br_env *env)
{
    int64_t now = br_now_ms();

    for (size_t i = 0; i < env->cfg->n_employees; i++) {
        struct emp_user *u = &env->employees->users[i];
        if (u->state == USER_FOUND && !u->asking && now - u->checked_at >= REFRESH_MS)
            ask_user(env, &env->cfg->employees[i], false);
    }
}
/* Whether a lookup for one of the channel's employees is under way. */
bool
br_employees_channel_pending(struct br_env *env, const struct br_channel *ch)
{
    for (size_t i = 0; i < ch->n_employees; i++)
        if (emp_user_of(env, ch->employees[i])->state == USER_PENDING)
            return true;
    return false;
}
/*
 * Whether a comment by author (no known employee) may still be an
 * employee's: one of the channel's employees is being looked up, or
 * matched nobody long enough ago to ask again (sets r->recheck).
 */
bool
br_employees_may_be(struct br_run *r, const char *author)
{
    int64_t now = br_now_ms();
    bool maybe = false;

    if (strncmp(author, "contact:", 8) == 0)
        return false;
    for (size_t i = 0; i < r->ch->n_employees; i++) {
        struct emp_user *u = emp_user_of(r->env, r->ch->employees[i]);
        if (u->state == USER_PENDING) {
            maybe = true;
        } else if (u->state == USER_NOBODY && now - u->checked_at >= RECHECK_MS) {
            maybe = true;
            r->recheck = true;
        }
    }
    return maybe;
}
/* After take_comments found an author worth asking about: ask about the channel's stale e-mails. */
void
br_employees_recheck(struct br_env *env, const struct br_channel *ch)
{
    int64_t now = br_now_ms();

    for (size_t i = 0; i < ch->n_employees; i++) {
        struct emp_user *u = emp_user_of(env, ch->employees[i]);
        if (u->state == USER_NOBODY && !u->asking && now - u->checked_at >= RECHECK_MS)
            ask_user(env, ch->employees[i], true);
    }
}
static void
user_found(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    struct br_env *env = r->env;
    const char *email = json_string_value(json_object_get(r->payload, "email"));
    bool last = r->job.attempts + 1 >= BR_QUEUE_MAX_ATTEMPTS;
    int rc = 0;

    if (res->err == BR_ECANCELED || (res->err && res->err != BR_ENOTFOUND && res->err != BR_EFATAL && !last)) {
        br_run_finish(r, res); /* tried again after backoff; comments that may be theirs wait */
        return;
    }
    if (res->err == 0 || res->err == BR_ENOTFOUND) {
        rc = BR_STORE_TX(env->store, br_store_user_set(env->store, env->employees->tracker_name, email, res->id));
        set_user(env, email, res->id, br_now_ms());
        if (res->id)
            br_info("employee %s is %s user %s (found by e-mail)", email, br_employees_tracker_label(env), res->id);
        else
            br_warn("employee %s: no %s user has this e-mail; replies of unknown users are not relayed and the "
                    "employee's Chatra messages are written by the bridge (asked again in %d minutes when it "
                    "matters; or set employees[].tracker_user)",
                    email, br_employees_tracker_label(env), RECHECK_MS / 60000);
        res->err = 0;
        br_run_recorded(r, res, rc);
        return;
    }
    /* A lookup that cannot succeed must not hold comments up: nobody, for now. */
    br_error("employee %s: the %s user could not be looked up (%s); treated as matching nobody (set "
             "employees[].tracker_user, or fix the cause: it is asked again in %d minutes when it matters)",
             email, br_employees_tracker_label(env), res->error ? res->error : br_strerror(res->err), RECHECK_MS / 60000);
    set_user(env, email, NULL, br_now_ms());
    br_run_ok(r);
}
void
br_job_user(struct br_run *r)
{
    struct br_env *env = r->env;
    const char *email = json_string_value(json_object_get(r->payload, "email"));
    int64_t at = json_integer_value(json_object_get(r->payload, "at"));
    char *user = NULL;
    int64_t checked = 0;

    if (email == NULL) {
        br_run_fail(r, BR_EFATAL, "a user lookup without an e-mail");
        return;
    }
    {
        /* Queued by an earlier run whose config had this employee without tracker_user. */
        const struct br_employee *emp = br_config_employee_by_email(env->cfg, email);
        if (emp == NULL || emp->tracker_user) {
            br_run_ok(r);
            return;
        }
    }
    if (br_store_user_get(env->store, env->employees->tracker_name, email, &user, &checked) == 0 && checked >= at) {
        /* Answered since this lookup was queued (a twin queued before a restart). */
        set_user(env, email, user, checked);
        free(user);
        br_run_ok(r);
        return;
    }
    free(user);
    if (!env->tracker->ops->caps.users) {
        set_user(env, email, NULL, br_now_ms());
        br_run_ok(r);
        return;
    }
    env->tracker->ops->find_user(env->tracker, email, user_found, r);
}
