/*
 * employees.h - the tracker users of the employees, configured or found
 * by e-mail.
 *
 * An employee configured without tracker_user gets the user the tracker
 * has for their e-mail ("user" jobs: Planfix POST /user/list, Redmine
 * /users.json), cached in the store so that neither a reply nor a restart
 * asks again; a user found is confirmed once a week, an e-mail that
 * matched nobody is asked again after an hour when a comment by an
 * unknown user comes.  While a lookup runs, comments that may be that
 * employee's wait (no reply is skipped).  Loop thread only.
 */
#ifndef BR_EMPLOYEES_H
#define BR_EMPLOYEES_H

#include <stdbool.h>

struct br_env;
struct br_run;
struct br_employee;
struct br_channel;
struct br_employees;

/* A job that needs a lookup's answer looks again this much later. */
#define BR_EMPLOYEES_WAIT_MS 500

/* The cached users, and a lookup queued for every employee without one. */
struct br_employees *br_employees_new(struct br_env *env);
void br_employees_free(struct br_employees *em);
/* Housekeeping: users found by e-mail are confirmed now and then. */
void br_employees_refresh(struct br_env *env);

/* The employee's tracker user: configured, or found by e-mail; NULL while unknown. */
const char *br_employees_user(struct br_env *env, const struct br_employee *emp);
/* Whether the employee's user is being looked up (what waits for it should wait). */
bool br_employees_pending(struct br_env *env, const struct br_employee *emp);
/* The channel's employee whose tracker user is user, or NULL. */
const struct br_employee *br_employees_by_user(struct br_env *env, const struct br_channel *ch, const char *user);
/* Whether a lookup for one of the channel's employees is under way. */
bool br_employees_channel_pending(struct br_env *env, const struct br_channel *ch);
/*
 * Whether a comment by author (no known employee) may still be an
 * employee's of r's channel: one is being looked up, or matched nobody
 * long enough ago to ask again (then sets r->recheck).
 */
bool br_employees_may_be(struct br_run *r, const char *author);
/* Asks again about the channel's e-mails that matched nobody long enough ago. */
void br_employees_recheck(struct br_env *env, const struct br_channel *ch);
/* The tracker's name for people: log lines and Chatra's receivedFrom ("Planfix", "Redmine"). */
const char *br_employees_tracker_label(const struct br_env *env);

/* The "user" job: looks the tracker user of payload.email up. */
void br_job_user(struct br_run *r);

#endif
