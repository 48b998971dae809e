#include "engine.h"

#include "chatra.h"
#include "chatra_event.h"
#include "config.h"
#include "context.h"
#include "html_text.h"
#include "log.h"
#include "store.h"
#include "templates/tpl.h"
#include "texts.h"
#include "tracker.h"
#include "unrecorded.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * How the engine is driven:
 *  - br_engine_kick (after a webhook was committed) starts the work timer
 *    at once, or, while webhooks keep coming, a little later;
 *  - the housekeeping tick (every TICK_MS) runs the same work: it picks up
 *    jobs whose backoff has expired and inbox rows left by a crash.
 * The work is: apply pending inbox rows, then hand ready jobs to their
 * upstreams (each upstream keeps its own rate).
 *
 * Acknowledging a webhook (committing it to the inbox) comes first: it is
 * what the sender waits for.  Applying inbox rows costs more, so while
 * webhooks keep coming it runs in short slices (SLICE_BUSY_MS every
 * BUSY_DELAY_MS, about a tenth of the loop) and catches up at full speed
 * (SLICE_IDLE_MS slices back to back) once they stop.  The inbox is
 * durable, so nothing waits on this but the tracker.
 */
#define TICK_MS 200
#define INBOX_BATCH 256        /* inbox rows applied per work at most */
#define APPLY_BATCH 64         /* inbox rows applied in one transaction */
#define BUSY_WINDOW_MS 100     /* this many webhooks within one or two windows ... */
#define BUSY_EVENTS 20         /* ... (200 a second) mean more are coming */
#define BUSY_DELAY_MS 10
#define SLICE_BUSY_MS 1
#define SLICE_IDLE_MS 50
/*
 * "As soon as possible" is one millisecond: libuv 1.44 runs a timer
 * started with 0 from a timer callback again in the same pass, before any
 * I/O, so the work would starve the webhooks it is meant to leave room for.
 */
#define NEXT_ITERATION_MS 1
#define DISPATCH_BATCH 16
#define UPSTREAM_DEPTH 4       /* jobs handed to one upstream at a time */
#define MAX_ATTEMPTS 50
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define QUOTA_PAUSE_MS (15 * 60 * 1000)
#define PROFILE_WAIT_MS 3000
#define COALESCE_MAX_MSGS 50       /* visitor messages in one comment */
#define COALESCE_MAX_BYTES (32 * 1024)   /* how long a new task waits for Chatra's visitor data */

struct lane_up {
    char *name;                /* "tracker" or "chatra:<channel>" */
    struct br_upstream *up;
    const struct br_channel *channel; /* NULL for the tracker */
    unsigned running;          /* jobs of this upstream in flight */
    /*
     * The last look found fewer ready jobs than there was room for: the
     * next look can find more only after a job ended, a new job came
     * first in its lane, or a backoff ran out (the tick).  Until then
     * dispatch does not ask the store again (with thousands of jobs
     * waiting behind their lanes' first, asking costs milliseconds).
     */
    bool dry;
};

/*
 * An employee configured without tracker_user: the tracker user found by
 * e-mail ("user" jobs), cached in the store.  Comments of authors who may
 * be such an employee wait while a lookup is PENDING.
 */
enum user_state { USER_CONFIG = 0, USER_PENDING, USER_FOUND, USER_NOBODY };
struct emp_user {
    enum user_state state;
    char *user;                /* USER_FOUND: the tracker user */
    int64_t checked_at;        /* when the tracker was asked (wall clock, ms) */
    bool asking;               /* a lookup is queued (a refresh keeps USER_FOUND meanwhile) */
};

struct br_engine {
    uv_loop_t *loop;
    uv_timer_t work;
    uv_timer_t tick;
    uv_timer_t poll;           /* the tracker poll, when configured */
    const struct br_config *cfg;
    struct br_store *store;
    struct br_http_client *http;
    struct br_tracker *tracker;
    struct lane_up *ups;
    size_t n_ups;
    int closing;
    int pending_closes;
    unsigned running;          /* jobs in flight over all upstreams */
    int64_t last_retention;
    uint64_t intake_window;    /* start of the current BUSY_WINDOW_MS window */
    unsigned intake_n, intake_prev; /* webhooks in this window and in the one before */
    int inbox_solo;            /* rows still to apply one at a time after a failed batch */
    char *company_busy[8];     /* domains whose company contact is being looked up or made */
    struct run *runs;          /* the jobs running now (their rows say "in flight", rightly) */
    /*
     * When the store refuses a write, the engine stops starting jobs and
     * keeps the outcomes it could not write (unrecorded.h); the tick takes
     * them up once the store takes writes again.  settled_failures is the
     * store's failure count when that was last done.
     */
    struct br_unrecorded *unrecorded;
    uint64_t settled_failures;
    struct emp_user *users;    /* one per cfg->employees */
    char *tracker_name;        /* the tracker in the store's user cache: kind and URL */
    void (*close_done)(void *);
    void *close_arg;
};

/* One job being executed: owned by the engine until job_finish. */
struct run {
    struct br_engine *e;
    struct lane_up *lu;
    struct br_job job;
    json_t *payload;
    struct br_conv conv;
    const struct br_channel *ch;
    int step;
    char *task_id;
    char *source_key;
    char *text;                /* a comment being written, in the tracker's text format */
    const char *author_contact;
    const char *author_employee;
    char *employee_user;       /* owns author_employee when it was found by e-mail */
    bool undecided;            /* take_comments left comments whose author is still being looked up */
    bool recheck;              /* ... and an e-mail that matched nobody is worth asking again */
    int company_slot;          /* 1 + index in company_busy while this job holds it */
    json_t *emails;            /* contact: the person's e-mails still to look up */
    struct run *prev, *next;   /* in e->runs */
    bool store_refused;        /* the job ends because the store refused its result */
};

static void work(struct br_engine *e);
void br_engine_kick(struct br_engine *e, size_t events);
static void schedule_work(struct br_engine *e);
static void undry(struct br_engine *e);

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static const char *
jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static char *
lane_name(char kind, int64_t conv_id)
{
    return br_asprintf("%c:%lld", kind, (long long)conv_id);
}

/* Adds a job that runs no sooner than delay_ms from now. */
static int
add_job_later(struct br_engine *e, char lane_kind, const char *upstream, const char *kind, int64_t conv_id,
              json_t *payload, int64_t delay_ms)
{
    char *lane = lane_name(lane_kind, conv_id);
    char *text = json_dumps(payload, JSON_COMPACT);
    int64_t id = 0;
    int rc = br_store_job_add_at(e->store, lane, upstream, kind, conv_id, text,
                                 delay_ms > 0 ? br_now_ms() + delay_ms : 0, &id);

    if (rc == 0 && !br_store_job_blocked(e->store, lane, id)) {
        /* First in its lane: its upstream has something to send. */
        for (size_t i = 0; i < e->n_ups; i++)
            if (strcmp(e->ups[i].name, upstream) == 0)
                e->ups[i].dry = false;
    }
    free(text);
    free(lane);
    json_decref(payload);
    return rc;
}

static int
add_job(struct br_engine *e, char lane_kind, const char *upstream, const char *kind, int64_t conv_id,
        json_t *payload)
{
    return add_job_later(e, lane_kind, upstream, kind, conv_id, payload, 0);
}

/* ------------------------------------------------------------------ */
/* applying inbox events (one transaction each)                        */

/* Whether the tracker keeps contacts (Planfix) or only tasks (Redmine). */
static bool
has_contacts(const struct br_engine *e)
{
    return e->tracker->ops->create_contact != NULL;
}

static bool
task_is_active(const struct br_task *t)
{
    return t->state == BR_TASK_PENDING || t->state == BR_TASK_OPEN;
}

/* Opens a new task generation: contact (if unknown) then task, in the conversation's lane. */
static int
open_generation(struct br_engine *e, struct br_conv *c)
{
    int gen = c->gen + 1;
    int rc;

    if ((rc = br_store_task_create(e->store, c->id, gen)) || (rc = br_store_conv_set_gen(e->store, c->id, gen)))
        return rc;
    c->gen = gen;
    if (gen == 1) {
        /* Chatra's full visitor data, fetched beside the contact lookup (its own lane and upstream). */
        char *up = br_asprintf("chatra:%s", c->channel);
        rc = br_store_conv_set_profile(e->store, c->id, BR_PROFILE_PENDING, NULL);
        if (rc == 0)
            rc = add_job(e, 'c', up, "profile", c->id, json_object());
        free(up);
        if (rc)
            return rc;
    }
    if (has_contacts(e) && (rc = add_job(e, 't', "tracker", "contact", c->id, json_pack("{s:i}", "gen", gen))))
        return rc;
    if (has_contacts(e) && e->cfg->companies && (rc = add_job(e, 't', "tracker", "company", c->id, json_object())))
        return rc;
    return add_job(e, 't', "tracker", "task", c->id, json_pack("{s:i, s:I}", "gen", gen, "since", (json_int_t)br_now_ms()));
}

/*
 * A comment by the bridge itself on the task of (conv, gen): the text is
 * rendered when the job runs (task numbers are known then) from text
 * kind and ctx (taken), to which the conversation's context is added;
 * ref_conv's task becomes task.id.  gen 0: the current generation, and
 * the note is dropped when a new generation opened before it ran.
 */
static int
add_note(struct br_engine *e, int64_t conv_id, int gen, enum br_text text, json_t *ctx, int64_t ref_conv)
{
    struct br_conv c = {0};
    int gen_now = br_store_conv_get(e->store, conv_id, &c) == 0 ? c.gen : 0;
    br_conv_dispose(&c);
    json_t *p = json_pack("{s:i, s:s, s:o, s:i}", "gen", gen, "text", br_text_info(text)->key,
                          "ctx", ctx ? ctx : json_object(), "gen_at", gen_now);
    if (ref_conv)
        json_object_set_new(p, "ref_conv", json_integer(ref_conv));
    return add_job(e, 't', "tracker", "note", conv_id, p);
}

static bool
may_merge(const struct br_channel *ch, bool verified)
{
    return ch->merge_policy == BR_MERGE_EMAIL || (ch->merge_policy == BR_MERGE_VERIFIED && verified);
}

/* What resolving the device's conversation did, for the notes that tell the employees. */
struct resolution {
    bool created;          /* a new person */
    bool joined;           /* a new device joined a known person */
    int64_t merged_conv;   /* a thread joined into this one (late e-mail), or 0 */
    int64_t merge_id;
};

/*
 * Finds the conversation of the webhook's device, or makes one.  A
 * device is one Chatra client id; a person has devices and e-mails.  A
 * new device whose e-mail belongs to a known person joins that person's
 * conversation; a device whose e-mail arrives later, and belongs to
 * someone else already, has its conversation joined into the older one.
 */
static int
resolve_conv(struct br_engine *e, const struct br_channel *ch, json_t *client, struct br_conv *c,
             struct resolution *res)
{
    const char *client_id = jstr(client, "id");
    const char *email = jstr(client, "email");
    bool verified = json_is_true(json_object_get(client, "email_verified"));
    bool known_verified = false;
    int64_t pid = 0;
    int rc = br_store_conv_by_client(e->store, ch->name, client_id, c);
    /*
     * Whose e-mail is it?  Under "verified" both sides must be the site's
     * word: an address someone merely typed earlier must not pull a
     * signed-in customer into that thread.
     */
    bool match = email && br_store_person_of_email(e->store, email, &pid, &known_verified) == 0 &&
                 may_merge(ch, verified) && (ch->merge_policy != BR_MERGE_VERIFIED || known_verified);

    memset(res, 0, sizeof(*res));
    if (rc == BR_ENOTFOUND) {
        int64_t id;
        if (match) {
            rc = br_store_conv_of_person(e->store, ch->name, pid, c);
            if (rc == 0) {
                res->joined = true;
                rc = br_store_conv_add_client(e->store, c->id, ch->name, client_id);
                /* Recorded like a merge, so that a wrong join can be undone too. */
                if (rc == 0)
                    rc = br_store_record_join(e->store, c->id, ch->name, client_id, email, verified, &res->merge_id);
            } else if (rc == BR_ENOTFOUND && (rc = br_store_conv_create_for_person(e->store, ch->name, client_id,
                                                                                    pid, &id)) == 0) {
                rc = br_store_conv_get(e->store, id, c);
            }
        }
        if (rc == BR_ENOTFOUND) {
            res->created = true;
            if ((rc = br_store_conv_create(e->store, ch->name, client_id, &id)) == 0)
                rc = br_store_conv_get(e->store, id, c);
        }
    } else if (rc == 0 && match && pid != c->person_id) {
        struct br_conv other = {0};
        if (br_store_conv_of_person(e->store, ch->name, pid, &other) == 0 && other.id != c->id) {
            /* The older thread survives, whichever side the e-mail came from. */
            int64_t survivor = other.id < c->id ? other.id : c->id;
            int64_t merged = other.id < c->id ? c->id : other.id;
            rc = br_store_merge(e->store, survivor, merged, email, verified, &res->merge_id);
            if (rc == 0) {
                res->merged_conv = merged;
                if (survivor == other.id) {
                    br_conv_dispose(c);
                    *c = other;
                    memset(&other, 0, sizeof(other));
                }
                br_info("conversation %lld joined into conversation %lld (merge %lld)", (long long)merged,
                        (long long)survivor, (long long)res->merge_id);
            }
        }
        br_conv_dispose(&other);
    }
    if (rc == 0 && email)
        rc = br_store_person_add_email(e->store, c->person_id, email, verified);
    return rc;
}

/* The thread that was joined into another: point to the survivor, complete it, drop its contact. */
static int
retire_merged(struct br_engine *e, const struct br_channel *ch, const struct resolution *res, int64_t survivor,
              const char *email, bool verified)
{
    struct br_conv mc = {0};
    struct br_task t = {0};
    int rc;

    if ((rc = br_store_conv_get(e->store, res->merged_conv, &mc)))
        return rc;
    if (mc.gen > 0 && br_store_task_get(e->store, mc.id, mc.gen, &t) == 0 && task_is_active(&t)) {
        rc = add_note(e, mc.id, mc.gen, BR_TEXT_CONTINUES_IN,
                      json_pack("{s:s, s:b}", "email", email, "verified", verified), survivor);
        if (rc == 0 && ch->closed_status_id > 0 &&
            (rc = br_store_task_set(e->store, mc.id, mc.gen, NULL, BR_TASK_CLOSING)) == 0)
            rc = add_job(e, 't', "tracker", "close", mc.id, json_pack("{s:i}", "gen", mc.gen));
    }
    if (rc == 0 && has_contacts(e))
        rc = add_job(e, 't', "tracker", "drop_contact", mc.id, json_pack("{s:I}", "survivor", (json_int_t)survivor));
    br_task_dispose(&t);
    br_conv_dispose(&mc);
    return rc;
}

static bool
changed(const char *now, const char *before)
{
    return now && (before == NULL || strcmp(now, before) != 0);
}

/*
 * A tracker without contacts learns of the visitor's new name, e-mail or
 * phone from a note on the task, and its custom fields are filled again.
 */
static int
note_details(struct br_engine *e, const struct br_channel *ch, const struct br_conv *c, json_t *client)
{
    static const char *const keys[] = {"name", "email", "phone"};
    json_t *details = json_object(), *items = json_array();
    int rc;

    /* Each detail with one flag true and its value, as the device's items (context.h). */
    for (size_t i = 0; i < BR_ARRAY_SIZE(keys); i++) {
        const char *v = jstr(client, keys[i]);
        json_t *item;
        if (v == NULL || *v == '\0')
            continue;
        json_object_set_new(details, keys[i], json_string(v));
        item = json_object();
        for (size_t k = 0; k < BR_ARRAY_SIZE(keys); k++)
            json_object_set_new(item, keys[k], json_boolean(k == i));
        json_object_set_new(item, "value", json_string(v));
        json_object_set_new(item, "first", json_boolean(json_array_size(items) == 0));
        json_array_append_new(items, item);
    }
    json_object_set_new(details, "items", items);
    rc = add_note(e, c->id, c->gen, BR_TEXT_VISITOR_DETAILS, json_pack("{s:o}", "details", details), 0);
    if (rc == 0 && ch->n_custom_fields > 0 && e->tracker->ops->update_task_fields)
        rc = add_job(e, 't', "tracker", "fields", c->id, json_pack("{s:i}", "gen", c->gen));
    return rc;
}

/*
 * Whether an agent message is the copy of a reply the bridge sent: by the
 * agent's id, or, for a reply sent with an e-mail, by the agent's e-mail
 * (named by this webhook or an earlier one; the webhook's name for it is
 * remembered for the agent's messages).
 */
static int
agent_echo(struct br_engine *e, const struct br_channel *ch, int64_t conv_id, json_t *m, bool *echo)
{
    const char *agent = jstr(m, "agent_id");
    const char *email = jstr(m, "agent_email");
    const char *text = jstr(m, "text");
    char *known = NULL;
    int rc = 0;

    *echo = false;
    if (agent && email)
        rc = br_store_agent_set(e->store, ch->name, agent, email);
    else if (agent && br_store_agent_email(e->store, ch->name, agent, &known) == 0)
        email = known;
    if (rc == 0 && agent)
        rc = br_store_relay_consume(e->store, conv_id, agent, text, echo);
    /* Any reply sent by e-mail may come back as an agent not named: but not as one the config knows by id. */
    if (rc == 0 && !*echo && (email || agent == NULL || br_config_employee_by_agent(e->cfg, agent) == NULL))
        rc = br_store_relay_consume_email(e->store, conv_id, email, text, echo);
    free(known);
    return rc;
}

static int
apply_chatra(struct br_engine *e, const char *channel_name, json_t *ev)
{
    const struct br_channel *ch = br_config_channel(e->cfg, channel_name);
    json_t *client = json_object_get(ev, "client");
    json_t *msgs = json_object_get(ev, "messages");
    json_t *rawc = json_object_get(ev, "raw_client");
    const char *kind = jstr(ev, "event");
    const char *client_id = jstr(client, "id");
    const char *email = jstr(client, "email");
    const char *chat_id = jstr(client, "chat_id");
    bool verified = json_is_true(json_object_get(client, "email_verified"));
    struct br_conv c = {0};
    struct br_task t = {0};
    struct resolution res;
    bool transcript = kind && strcmp(kind, "transcript") == 0;
    bool introduced, new_chat;
    int gen_before;
    char *raw = NULL;
    size_t i;
    json_t *m;
    int rc;

    if (ch == NULL) {
        /* The channel was removed from the config after the webhook was accepted. */
        br_warn("inbox: channel %s is no longer configured; event dropped", channel_name);
        return 0;
    }
    if ((rc = resolve_conv(e, ch, client, &c, &res)))
        goto out;
    /* The visitor introduced themselves (or changed their details) in a known conversation. */
    introduced = !res.created && c.gen > 0 &&
                 (changed(jstr(client, "name"), c.name) || changed(email, c.email) || changed(jstr(client, "phone"), c.phone));
    /*
     * A new chat of a known device: Chatra gives it a new chat id (a
     * repeated webhook has the same one).  Chat ids are kept per device,
     * so a visitor moving between joined devices is not a new visit.
     */
    {
        char *prev = NULL;
        if ((rc = br_store_device_chat(e->store, ch->name, client_id, chat_id, &prev)))
            goto out;
        new_chat = !res.created && !res.joined && !res.merged_conv && c.gen > 0 && chat_id && prev &&
                   strcmp(chat_id, prev) != 0;
        free(prev);
    }
    raw = json_dumps(rawc, JSON_COMPACT);
    if ((rc = br_store_conv_update_visitor(e->store, c.id, client_id, chat_id, jstr(client, "name"), email,
                                           jstr(client, "phone"), raw)))
        goto out;
    if (c.gen == 0 && (rc = open_generation(e, &c)))
        goto out;
    gen_before = c.gen;
    if ((rc = br_store_task_get(e->store, c.id, c.gen, &t)) != 0)
        goto out;
    if (res.merged_conv && (rc = retire_merged(e, ch, &res, c.id, email, verified)))
        goto out;
    /* A new chat: before its messages, ask whether the task is still active in the tracker. */
    if (new_chat && t.state == BR_TASK_OPEN &&
        (rc = add_job(e, 't', "tracker", "check", c.id, json_pack("{s:i}", "gen", c.gen))))
        goto out;

    json_array_foreach(msgs, i, m) {
        const char *type = jstr(m, "type");
        const char *text = jstr(m, "text");
        const char *agent = jstr(m, "agent_id");
        json_int_t at = json_integer_value(json_object_get(m, "created_at"));
        bool is_new, echo = false;
        int64_t mid;
        int state = BR_MSG_PENDING;

        if (strcmp(type, "agent") == 0) {
            if ((rc = agent_echo(e, ch, c.id, m, &echo)))
                goto out;
            if (echo)
                state = BR_MSG_SKIPPED;
        }
        if ((rc = br_store_msg_insert(e->store, c.id, c.gen, jstr(m, "key"), type, agent, text, at, state, &is_new,
                                      &mid)))
            goto out;
        if (!is_new || state != BR_MSG_PENDING)
            continue;
        if (strcmp(type, "client") == 0 && !transcript && !task_is_active(&t) && ch->new_task_if_no_active) {
            /*
             * The visitor came back after the task was completed: a new
             * task for the new chat.  Only a message never seen before
             * does this, so a late repeat of the old chat does not.
             */
            br_task_dispose(&t);
            if ((rc = open_generation(e, &c)) || (rc = br_store_task_get(e->store, c.id, c.gen, &t)))
                goto out;
            /* The message was filed under the old generation: move it to the new one. */
            if ((rc = br_store_msg_set_gen(e->store, mid, c.gen)))
                goto out;
        }
        /*
         * A visitor's message waits coalesce_ms for the ones typed right
         * after it: they go to the tracker as one comment (its budget is a
         * request a second).  An agent's message goes at once.
         */
        if ((rc = add_job_later(e, 't', "tracker", "comment", c.id, json_pack("{s:I}", "msg", (json_int_t)mid),
                                strcmp(type, "client") == 0 ? e->cfg->coalesce_ms : 0)))
            goto out;
    }

    /* Notes for the employees, after the messages they explain. */
    if (res.joined || res.merged_conv) {
        json_t *ctx = json_pack("{s:o, s:s, s:b}", "device", br_context_device(rawc), "email", email, "verified",
                                verified);
        if ((rc = add_note(e, c.id, c.gen, BR_TEXT_DEVICE_JOINED, ctx, 0)))
            goto out;
    } else if (new_chat && c.gen == gen_before && task_is_active(&t)) {
        /*
         * A visit note (gen 0) is dropped when the check before it opened a
         * new task: the new task's text already describes the visit.
         */
        json_t *ctx = json_pack("{s:o, s:{s:s?}}", "device", br_context_device(rawc), "chat", "id", chat_id);
        if ((rc = add_note(e, c.id, 0, BR_TEXT_NEW_VISIT, ctx, 0)))
            goto out;
    }
    /* Each new chat of a known person is a visit, logged on the contact's card (Planfix). */
    if ((res.joined || new_chat) && e->tracker->ops->add_contact_comment &&
        (rc = add_job(e, 't', "tracker", "contact_visit", c.id,
                      json_pack("{s:{s:o, s:{s:s?}}}", "ctx", "device", br_context_device(rawc), "chat", "id",
                                chat_id))))
        goto out;
    if (introduced && !res.merged_conv && has_contacts(e) &&
        (rc = add_job(e, 't', "tracker", "update_contact", c.id, json_object())))
        goto out;
    if (introduced && !res.merged_conv && !has_contacts(e) && (rc = note_details(e, ch, &c, client)))
        goto out;

    if (transcript && ch->close_on_leave) {
        br_task_dispose(&t);
        if ((rc = br_store_task_get(e->store, c.id, c.gen, &t)))
            goto out;
        if (task_is_active(&t)) {
            if ((rc = br_store_task_set(e->store, c.id, c.gen, NULL, BR_TASK_CLOSING)) ||
                (rc = add_job(e, 't', "tracker", "close", c.id, json_pack("{s:i}", "gen", c.gen))))
                goto out;
        }
    }
out:
    free(raw);
    br_task_dispose(&t);
    br_conv_dispose(&c);
    return rc;
}

static int
apply_tracker(struct br_engine *e, json_t *ev)
{
    const char *task_id = jstr(ev, "task");
    struct br_task t = {0};
    char *lane;
    int rc;

    if (task_id == NULL)
        return 0;
    rc = br_store_task_by_tracker_id(e->store, task_id, &t);
    if (rc == BR_ENOTFOUND) {
        br_info("tracker webhook: task %s is not a chat task; ignored", task_id);
        return 0;
    }
    if (rc)
        return rc;
    /* One waiting fetch per conversation is enough: it reads every new comment. */
    lane = lane_name('t', t.conv_id);
    if (!br_store_job_waiting(e->store, lane, "fetch"))
        rc = add_job(e, 't', "tracker", "fetch", t.conv_id, json_pack("{s:s}", "task", task_id));
    free(lane);
    br_task_dispose(&t);
    return rc;
}

/* Applies one inbox row inside the caller's transaction. */
static int
apply_row(struct br_engine *e, const struct br_inbox_row *row)
{
    json_error_t je;
    json_t *ev = NULL;
    int rc;

    if (row->kind == BR_INBOX_CHATRA_RAW) {
        char err[200];
        if (br_chatra_event_parse(row->body, strlen(row->body), &ev, err, sizeof(err)) != 0) {
            /* Checked at the door, so only a bridge of another version could disagree. */
            br_error("inbox %lld: stored webhook no longer reads as a Chatra event (%s); skipped", (long long)row->id,
                     err);
            return br_store_inbox_done(e->store, row->id);
        }
        rc = apply_chatra(e, row->channel, ev);
    } else if ((ev = json_loads(row->body, 0, &je)) == NULL) {
        br_error("inbox %lld: stored event is not JSON (%s); skipped", (long long)row->id, je.text);
        rc = 0;
    } else if (row->kind == BR_INBOX_CHATRA) {
        rc = apply_chatra(e, row->channel, ev);
    } else {
        rc = apply_tracker(e, ev);
    }
    json_decref(ev);
    return rc == 0 ? br_store_inbox_done(e->store, row->id) : rc;
}

/*
 * Applies inbox rows for up to budget_ms; returns 1 when rows are left
 * for the next slice.  Rows are applied APPLY_BATCH to a transaction (one
 * commit for many rows); when a batch fails, its rows are applied again
 * one by one, so that a row that cannot be applied holds up only itself.
 */
static int
process_inbox(struct br_engine *e, uint64_t budget_ms)
{
    uint64_t until = uv_hrtime() + budget_ms * 1000000ULL;
    int total = 0;

    while (total < INBOX_BATCH && !e->closing) {
        int batch = e->inbox_solo > 0 ? 1 : APPLY_BATCH;
        int n = 0, rc = 0, empty = 0;
        int64_t failed = 0;

        if (total > 0 && uv_hrtime() >= until)
            return 1;
        if (br_store_begin(e->store))
            return 0;
        while (n < batch) {
            struct br_inbox_row row;
            rc = br_store_inbox_next(e->store, &row);
            if (rc) {
                empty = rc == BR_ENOTFOUND;
                rc = empty ? 0 : rc;
                break;
            }
            rc = apply_row(e, &row);
            failed = row.id;
            br_inbox_row_dispose(&row);
            if (rc)
                break;
            n++;
            if (uv_hrtime() >= until)
                break;
        }
        if (rc == 0 && n > 0)
            rc = br_store_commit(e->store);
        else if (rc == 0) {
            br_store_rollback(e->store);
            return 0; /* the inbox is empty */
        }
        if (rc) {
            br_store_rollback(e->store);
            if (batch > 1) {
                e->inbox_solo = n + 1; /* up to the failing row, one by one */
                continue;
            }
            /* A store that refuses writes said so once; the tick takes it up again. */
            br_log(br_store_failing(e->store) ? BR_LOG_DEBUG : BR_LOG_ERROR,
                   "inbox %lld: cannot apply event: %s; will retry", (long long)failed, br_strerror(rc));
            return 0;
        }
        if (e->inbox_solo > 0)
            e->inbox_solo -= n;
        total += n;
        if (empty)
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* running jobs                                                        */

static void run_free(struct run *r);

/*
 * Writes how a job ended.  When the store refuses, it still shows the job
 * in flight (its lane waits behind it): the outcome is kept until the
 * store takes writes again (settle), never only forgotten.
 */
static void
record_outcome(struct br_engine *e, int64_t id, int state, int attempts, int64_t next_at, bool recover,
               const char *error, const char *request, const char *response)
{
    if (br_store_job_finish(e->store, id, state, attempts, next_at, recover, error, request, response) == 0)
        return;
    br_debug("job %lld: its outcome is kept until the store takes writes again", (long long)id);
    br_unrecorded_add(e->unrecorded, id, state, attempts, next_at, recover, error, request, response);
}

/*
 * Writes the outcome of a job and releases it.  Transient failures come
 * back after exponential backoff with jitter (Retry-After wins when it is
 * longer); permanent ones go to the dead-letter list with the request and
 * the answer.
 */
static void
job_finish(struct run *r, struct br_result *res)
{
    struct br_engine *e = r->e;
    int err = res ? res->err : 0;
    int state = BR_JOB_DONE;
    int attempts = r->job.attempts;
    bool recover;
    int64_t next_at = br_now_ms();

    if (err == BR_ECANCELED) {
        /* Shutting down: the job stays in flight in the store and is recovered at the next start. */
        run_free(r);
        return;
    }
    if (err == BR_ERETRY || err == BR_ETIMEDOUT || err == BR_EIO) {
        int64_t delay = 1000;
        int limit = MAX_ATTEMPTS;
        attempts++;
        for (int i = 1; i < attempts && delay < BACKOFF_MAX_MS; i++)
            delay *= 2;
        if (delay > BACKOFF_MAX_MS)
            delay = BACKOFF_MAX_MS;
        delay = delay / 2 + (int64_t)((double)rand() / RAND_MAX * (double)(delay / 2));
        if (res->retry_after_s > 0 && res->retry_after_s * 1000 > delay)
            delay = res->retry_after_s * 1000;
        if (res->quota_exhausted) {
            br_upstream_pause_until(r->lu->up, br_now_ms() + QUOTA_PAUSE_MS);
            attempts--; /* waiting for the quota is not the job's fault */
        }
        next_at += delay;
        /* A failure the driver does not understand is worth a few attempts, not MAX_ATTEMPTS. */
        if (res->max_attempts > 0 && res->max_attempts < limit)
            limit = res->max_attempts;
        state = attempts >= limit ? BR_JOB_DEAD : BR_JOB_QUEUED;
        /* A store that refuses writes said so once, not once a job. */
        br_log(r->store_refused && br_store_failing(e->store) ? BR_LOG_DEBUG : BR_LOG_WARN, "job %lld (%s): %s; %s",
               (long long)r->job.id, r->job.kind, res->error ? res->error : br_strerror(err),
               state == BR_JOB_DEAD ? "giving up" : "will retry");
    } else if (err) {
        state = BR_JOB_DEAD;
        br_error("job %lld (%s): %s; moved to dead letters", (long long)r->job.id, r->job.kind,
                 res->error ? res->error : br_strerror(err));
    }
    /*
     * Only a clear "no" from the upstream (429, quota) proves nothing was
     * written; after any other transient failure the next run looks first.
     * Once set, the mark stays until the job ends: a 429 to the lookup
     * proves nothing about the write before it.
     */
    recover = state == BR_JOB_QUEUED &&
              (r->job.recover || !(res && (res->quota_exhausted || res->status == 429)));
    record_outcome(e, r->job.id, state, attempts, next_at, recover,
                   state == BR_JOB_DONE ? NULL : (res && res->error ? res->error : br_strerror(err)),
                   res ? res->request : NULL, res ? res->response : NULL);
    run_free(r);
    /* The lane may have a next job now. */
    undry(e);
    schedule_work(e);
}

static void
run_free(struct run *r)
{
    if (r->company_slot) {
        free(r->e->company_busy[r->company_slot - 1]);
        r->e->company_busy[r->company_slot - 1] = NULL;
    }
    r->lu->running--;
    r->e->running--;
    if (r->prev)
        r->prev->next = r->next;
    else
        r->e->runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    br_job_dispose(&r->job);
    json_decref(r->payload);
    br_conv_dispose(&r->conv);
    free(r->task_id);
    free(r->source_key);
    free(r->text);
    json_decref(r->emails);
    free(r->employee_user);
    free(r);
}

/* Runs the job again after delay_ms, as if it had not started (no attempt counted). */
static void
job_later(struct run *r, int64_t delay_ms)
{
    struct br_engine *e = r->e;

    record_outcome(e, r->job.id, BR_JOB_QUEUED, r->job.attempts, br_now_ms() + delay_ms, r->job.recover, NULL, NULL,
                   NULL);
    run_free(r);
    undry(e);
    if (delay_ms == 0)
        schedule_work(e);
}

static void
job_ok(struct run *r)
{
    struct br_result res = {0};
    res.retry_after_s = -1;
    job_finish(r, &res);
}

static void
job_fail(struct run *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
job_fail(struct run *r, int err, const char *fmt, ...)
{
    struct br_result res = {0};
    struct br_buf b;
    va_list ap;

    br_buf_init(&b, 4096);
    va_start(ap, fmt);
    br_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    res.err = err;
    res.retry_after_s = -1;
    res.error = br_buf_steal(&b);
    job_finish(r, &res);
    free(res.error);
}

/* Commits a write-back in its own transaction; a failure here is a store failure. */
/* Ends a write-back transaction: commit, or roll back on any failure; returns the outcome. */
static int
tx_end(struct br_engine *e, int rc)
{
    if (rc == 0)
        rc = br_store_commit(e->store);
    if (rc)
        br_store_rollback(e->store);
    return rc;
}

#define TX(e, stmt) tx_end((e), br_store_begin((e)->store) != 0 ? BR_EIO : (stmt))

/*
 * Finishes a job whose upstream write succeeded, once its result is in
 * the store.  When the store refused, the job runs again and looks in
 * the tracker before it writes (its recover mark).
 */
static void
finish_recorded(struct run *r, struct br_result *res, int store_rc)
{
    if (store_rc) {
        r->job.recover = true;
        r->store_refused = true;
        job_fail(r, BR_ERETRY, "the result could not be stored (%s); the job checks before writing again",
                 br_strerror(store_rc));
        return;
    }
    job_finish(r, res);
}

/* ---- user: the tracker user of an employee known only by e-mail ---- */

#define USER_WAIT_MS 500                               /* a job that needs a lookup's answer looks again */
#define USER_RECHECK_MS (60 * 60 * 1000)               /* nobody had the e-mail: ask again, when it matters */
#define USER_REFRESH_MS ((int64_t)7 * 24 * 60 * 60 * 1000) /* a user found is confirmed this often */

/* The tracker's name for people: log lines and Chatra's receivedFrom. */
static const char *
tracker_label(const struct br_engine *e)
{
    return strcmp(e->tracker->ops->kind, "redmine") == 0 ? "Redmine" : "Planfix";
}

static struct emp_user *
emp_user_of(struct br_engine *e, const struct br_employee *emp)
{
    return &e->users[emp - e->cfg->employees];
}

/* The employee's tracker user: configured, or found by e-mail; NULL while unknown. */
static const char *
employee_user(struct br_engine *e, const struct br_employee *emp)
{
    struct emp_user *u = emp_user_of(e, emp);

    if (emp->tracker_user)
        return emp->tracker_user;
    return u->state == USER_FOUND ? u->user : NULL;
}

static const struct br_employee *
channel_employee_by_user(struct br_engine *e, const struct br_channel *ch, const char *user)
{
    for (size_t i = 0; user && i < ch->n_employees; i++) {
        const char *u = employee_user(e, ch->employees[i]);
        if (u && strcmp(u, user) == 0)
            return ch->employees[i];
    }
    return NULL;
}

/* The employee behind a Chatra agent (context.h). */
static const struct br_employee *
agent_employee(struct br_engine *e, const struct br_channel *ch, const char *agent_id)
{
    return br_context_agent_employee(e->cfg, e->store, ch, agent_id);
}

/* Queues a lookup of emp's e-mail; block: until it answers, comments that may be theirs wait. */
static void
ask_user(struct br_engine *e, const struct br_employee *emp, bool block)
{
    struct emp_user *u = emp_user_of(e, emp);
    json_t *p = json_pack("{s:s, s:I}", "email", emp->email, "at", (json_int_t)br_now_ms());

    if (TX(e, add_job(e, 'u', "tracker", "user", 0, p)) != 0)
        return; /* asked again by whoever needs it next */
    u->asking = true;
    if (block)
        u->state = USER_PENDING;
    schedule_work(e);
}

/* Records the tracker's answer for email (user NULL: nobody) for every employee with it. */
static void
set_user(struct br_engine *e, const char *email, const char *user, int64_t checked_at)
{
    for (size_t i = 0; i < e->cfg->n_employees; i++) {
        const struct br_employee *emp = &e->cfg->employees[i];
        struct emp_user *u = &e->users[i];
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
static void
init_users(struct br_engine *e)
{
    int64_t now = br_now_ms();

    e->tracker_name = br_asprintf("%s %s", e->cfg->tracker_kind, e->cfg->tracker_url);
    e->users = br_calloc(e->cfg->n_employees + 1, sizeof(*e->users));
    for (size_t i = 0; i < e->cfg->n_employees; i++) {
        const struct br_employee *emp = &e->cfg->employees[i];
        char *user = NULL;
        int64_t at = 0;

        if (emp->tracker_user)
            continue;
        if (br_store_user_get(e->store, e->tracker_name, emp->email, &user, &at) == 0) {
            set_user(e, emp->email, user, at);
            if (user == NULL && now - at >= USER_RECHECK_MS)
                ask_user(e, emp, true);
        } else {
            ask_user(e, emp, true);
        }
        free(user);
    }
}

/* Housekeeping: a user found by e-mail is confirmed now and then (a changed e-mail, a new user). */
static void
refresh_users(struct br_engine *e)
{
    int64_t now = br_now_ms();

    for (size_t i = 0; i < e->cfg->n_employees; i++) {
        struct emp_user *u = &e->users[i];
        if (u->state == USER_FOUND && !u->asking && now - u->checked_at >= USER_REFRESH_MS)
            ask_user(e, &e->cfg->employees[i], false);
    }
}

/* Whether a lookup for one of the channel's employees is under way. */
static bool
channel_pending(struct br_engine *e, const struct br_channel *ch)
{
    for (size_t i = 0; i < ch->n_employees; i++)
        if (emp_user_of(e, ch->employees[i])->state == USER_PENDING)
            return true;
    return false;
}

/*
 * Whether a comment by author (no known employee) may still be an
 * employee's: one of the channel's employees is being looked up, or
 * matched nobody long enough ago to ask again (sets r->recheck).
 */
static bool
may_be_employee(struct run *r, const char *author)
{
    int64_t now = br_now_ms();
    bool maybe = false;

    if (strncmp(author, "contact:", 8) == 0)
        return false;
    for (size_t i = 0; i < r->ch->n_employees; i++) {
        struct emp_user *u = emp_user_of(r->e, r->ch->employees[i]);
        if (u->state == USER_PENDING) {
            maybe = true;
        } else if (u->state == USER_NOBODY && now - u->checked_at >= USER_RECHECK_MS) {
            maybe = true;
            r->recheck = true;
        }
    }
    return maybe;
}

/* After take_comments found an author worth asking about: ask about the channel's stale e-mails. */
static void
recheck_users(struct br_engine *e, const struct br_channel *ch)
{
    int64_t now = br_now_ms();

    for (size_t i = 0; i < ch->n_employees; i++) {
        struct emp_user *u = emp_user_of(e, ch->employees[i]);
        if (u->state == USER_NOBODY && !u->asking && now - u->checked_at >= USER_RECHECK_MS)
            ask_user(e, ch->employees[i], true);
    }
}

static void
user_found(void *arg, struct br_result *res)
{
    struct run *r = arg;
    struct br_engine *e = r->e;
    const char *email = jstr(r->payload, "email");
    bool last = r->job.attempts + 1 >= MAX_ATTEMPTS;
    int rc = 0;

    if (res->err == BR_ECANCELED || (res->err && res->err != BR_ENOTFOUND && res->err != BR_EFATAL && !last)) {
        job_finish(r, res); /* tried again after backoff; comments that may be theirs wait */
        return;
    }
    if (res->err == 0 || res->err == BR_ENOTFOUND) {
        rc = TX(e, br_store_user_set(e->store, e->tracker_name, email, res->id));
        set_user(e, email, res->id, br_now_ms());
        if (res->id)
            br_info("employee %s is %s user %s (found by e-mail)", email, tracker_label(e), res->id);
        else
            br_warn("employee %s: no %s user has this e-mail; replies of unknown users are not relayed and the "
                    "employee's Chatra messages are written by the bridge (asked again in %d minutes when it "
                    "matters; or set employees[].tracker_user)",
                    email, tracker_label(e), USER_RECHECK_MS / 60000);
        res->err = 0;
        finish_recorded(r, res, rc);
        return;
    }
    /* A lookup that cannot succeed must not hold comments up: nobody, for now. */
    br_error("employee %s: the %s user could not be looked up (%s); treated as matching nobody (set "
             "employees[].tracker_user, or fix the cause: it is asked again in %d minutes when it matters)",
             email, tracker_label(e), res->error ? res->error : br_strerror(res->err), USER_RECHECK_MS / 60000);
    set_user(e, email, NULL, br_now_ms());
    job_ok(r);
}

static void
run_user(struct run *r)
{
    struct br_engine *e = r->e;
    const char *email = jstr(r->payload, "email");
    int64_t at = json_integer_value(json_object_get(r->payload, "at"));
    char *user = NULL;
    int64_t checked = 0;

    if (email == NULL) {
        job_fail(r, BR_EFATAL, "a user lookup without an e-mail");
        return;
    }
    {
        /* Queued by an earlier run whose config had this employee without tracker_user. */
        const struct br_employee *emp = br_config_employee_by_email(e->cfg, email);
        if (emp == NULL || emp->tracker_user) {
            job_ok(r);
            return;
        }
    }
    if (br_store_user_get(e->store, e->tracker_name, email, &user, &checked) == 0 && checked >= at) {
        /* Answered since this lookup was queued (a twin queued before a restart). */
        set_user(e, email, user, checked);
        free(user);
        job_ok(r);
        return;
    }
    free(user);
    if (e->tracker->ops->find_user == NULL) {
        set_user(e, email, NULL, br_now_ms());
        job_ok(r);
        return;
    }
    e->tracker->ops->find_user(e->tracker, email, user_found, r);
}

/* ---- contact ---- */

static void contact_created(void *arg, struct br_result *res);

/* Custom field templates, rendered (plain text: the tracker stores values as given). */
static struct br_field_value *
render_fields(const struct br_custom_field *defs, size_t n, json_t *ctx)
{
    struct br_field_value *f = br_calloc(n + 1, sizeof(*f));

    for (size_t i = 0; i < n; i++) {
        struct br_buf b;
        br_buf_init(&b, 64 * 1024);
        if (br_tpl_render(defs[i].value, ctx, BR_TPL_ESCAPE_NONE, &b) != 0)
            br_buf_reset(&b);
        f[i].id = defs[i].id;
        f[i].value = b.data ? br_buf_steal(&b) : br_strdup("");
        br_buf_dispose(&b);
    }
    return f;
}

static void
free_fields(struct br_field_value *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)f[i].value);
    free(f);
}

/* Splits a full name at its first space; NULL or "" gives the contact_name text (texts.h). */
static void
split_name(struct run *r, const char *full, char **first, char **last)
{
    const char *sp = full ? strchr(full, ' ') : NULL;
    if (full == NULL || *full == '\0') {
        json_t *ctx = br_context_conversation(r->e->cfg, r->ch, &r->conv);
        *first = br_texts_string(r->e->cfg, BR_TEXT_CONTACT_NAME, ctx);
        *last = NULL;
        json_decref(ctx);
    } else if (sp) {
        *first = br_strndup(full, (size_t)(sp - full));
        while (*sp == ' ')
            sp++;
        *last = *sp ? br_strdup(sp) : NULL;
    } else {
        *first = br_strdup(full);
        *last = NULL;
    }
}

/* The contact's name as sent to the tracker: the visitor's name or Chatra's displayed name. */
static void
contact_name(struct run *r, char **first, char **last)
{
    json_error_t je;
    json_t *raw = r->conv.visitor_json ? json_loads(r->conv.visitor_json, 0, &je) : NULL;
    split_name(r, r->conv.name ? r->conv.name : jstr(raw, "displayedName"), first, last);
    json_decref(raw);
}

static void
create_contact(struct run *r)
{
    struct br_contact_spec spec = {0};
    json_t *ctx = br_context_conversation(r->e->cfg, r->ch, &r->conv);
    struct br_field_value *fields;
    char *first, *last;

    contact_name(r, &first, &last);
    spec.name = first;
    spec.lastname = last;
    spec.email = r->conv.email;
    spec.phone = r->conv.phone;
    spec.template_id = r->ch->contact_template_id;
    spec.source_key = r->source_key;
    spec.fields = fields = render_fields(r->ch->contact_fields, r->ch->n_contact_fields, ctx);
    spec.n_fields = r->ch->n_contact_fields;
    r->step = 2;
    r->e->tracker->ops->create_contact(r->e->tracker, &spec, contact_created, r);
    free_fields(fields, r->ch->n_contact_fields);
    json_decref(ctx);
    free(first);
    free(last);
}

/* Looks the next of the person's e-mails up; false when none is left. */
static bool
find_next_email(struct run *r)
{
    const char *email = json_string_value(json_array_get(r->emails, 0));
    char *copy;

    if (email == NULL)
        return false;
    copy = br_strdup(email);
    json_array_remove(r->emails, 0);
    /* Also finds the contact a crashed run of this job created (by its key). */
    r->e->tracker->ops->find_contact(r->e->tracker, copy, r->source_key, contact_created, r);
    free(copy);
    return true;
}

static void
contact_created(void *arg, struct br_result *res)
{
    struct run *r = arg;
    int rc = 0;

    if (res->err == BR_ENOTFOUND && r->step == 1) {
        /* Not known by this e-mail: the next one, else (or not created before the crash) create it now. */
        if (!find_next_email(r))
            create_contact(r);
        return;
    }
    if (res->err == 0 && res->id) {
        /* Found with our own key: made by this job before a crash, so the bridge's own. */
        bool made = r->step == 2 || json_is_true(res->items);
        rc = TX(r->e, br_store_conv_set_contact(r->e->store, r->conv.id, res->id, made));
        if (rc == 0)
            br_info("conversation %lld: contact %s %s", (long long)r->conv.id, res->id, made ? "created" : "found");
    }
    finish_recorded(r, res, rc);
}

/*
 * The person's e-mails to look the contact up by: the conversation's
 * latest first, then every other one the person gave (a visitor who wrote
 * from work and from home is one customer).  Under merge_policy
 * "verified" only addresses the site set: a typed one could attach a
 * stranger to a real customer's card.
 */
static json_t *
emails_to_try(struct run *r)
{
    bool verified_only = r->ch->merge_policy == BR_MERGE_VERIFIED;
    json_t *all = br_store_person_emails(r->e->store, r->conv.person_id, verified_only), *out = json_array(), *v;
    bool verified = false;
    int64_t pid;
    size_t i;

    if (r->conv.email &&
        (!verified_only || (br_store_person_of_email(r->e->store, r->conv.email, &pid, &verified) == 0 && verified)))
        json_array_append_new(out, json_string(r->conv.email));
    json_array_foreach(all, i, v) {
        if (r->conv.email == NULL || strcmp(json_string_value(v), r->conv.email) != 0)
            json_array_append(out, v);
    }
    json_decref(all);
    return out;
}

static void
run_contact(struct run *r)
{
    if (r->conv.contact_id) {
        job_ok(r);
        return;
    }
    r->source_key = br_malloc(BR_SOURCE_KEY_LEN + 1);
    br_store_source_key(r->e->store, BR_SOURCE_CONTACT, r->job.id, r->source_key);
    r->step = 1;
    r->emails = emails_to_try(r);
    if (find_next_email(r))
        return;
    if (r->job.recover) {
        char *first, *last;
        contact_name(r, &first, &last);
        r->e->tracker->ops->find_contact_by_key(r->e->tracker, first, r->source_key, contact_created, r);
        free(first);
        free(last);
    } else {
        create_contact(r);
    }
}

/* ---- company: the counterparty for visitors of one e-mail domain ---- */

static void
company_known(void *arg, struct br_result *res)
{
    struct run *r = arg;
    const char *domain = br_config_company_domain(r->e->cfg, r->conv.email);
    int rc = 0;

    if (res->err == BR_ENOTFOUND && r->step == 1) {
        r->step = 2;
        r->source_key = br_malloc(BR_SOURCE_KEY_LEN + 1);
        br_store_source_key(r->e->store, BR_SOURCE_CONTACT, r->job.id, r->source_key);
        r->e->tracker->ops->create_company(r->e->tracker, domain, r->e->cfg->company_template_id, r->source_key,
                                           company_known, r);
        return;
    }
    if (res->err == 0 && res->id) {
        rc = br_store_begin(r->e->store);
        if (rc == 0)
            rc = br_store_company_set(r->e->store, domain, res->id);
        if (rc == 0)
            rc = br_store_conv_set_company(r->e->store, r->conv.id, res->id);
        if ((rc = tx_end(r->e, rc)) == 0)
            br_info("conversation %lld: company %s %s", (long long)r->conv.id, res->id,
                    r->step == 1 ? "found" : "created");
    } else if (res->err == BR_EFATAL) {
        /* A company is a nicety: the task goes ahead without it. */
        br_warn("conversation %lld: no company contact (%s)", (long long)r->conv.id, res->error ? res->error : "");
        res->err = 0;
    }
    finish_recorded(r, res, rc);
}

static void
run_company(struct run *r)
{
    const char *domain = br_config_company_domain(r->e->cfg, r->conv.email);
    char *known = NULL;
    int rc;

    if (domain == NULL || r->conv.company_id) {
        job_ok(r);
        return;
    }
    for (size_t i = 0; i < BR_ARRAY_SIZE(r->e->company_busy); i++) {
        if (r->e->company_busy[i] && strcmp(r->e->company_busy[i], domain) == 0) {
            /* A colleague's job is finding or making this company: use its answer. */
            job_later(r, 200);
            return;
        }
    }
    if (br_store_company_get(r->e->store, domain, &known) == 0) {
        rc = TX(r->e, br_store_conv_set_company(r->e->store, r->conv.id, known));
        free(known);
        if (rc)
            job_fail(r, BR_ERETRY, "cannot store the company: %s", br_strerror(rc));
        else
            job_ok(r);
        return;
    }
    for (size_t i = 0; i < BR_ARRAY_SIZE(r->e->company_busy); i++) {
        if (r->e->company_busy[i] == NULL) {
            r->e->company_busy[i] = br_strdup(domain);
            r->company_slot = (int)i + 1;
            break;
        }
    }
    if (r->company_slot == 0) {
        job_later(r, 200); /* many domains at once: wait for a free slot */
        return;
    }
    /* Looking first also finds a company this job made before a crash. */
    r->step = 1;
    r->e->tracker->ops->find_company(r->e->tracker, domain, company_known, r);
}

/* ---- task ---- */

static void task_created(void *arg, struct br_result *res);


/*
 * The values a template wrote (br_tpl_render_seen), as a sorted list of
 * addresses: which messages the description shows is a question of which
 * of their texts it wrote, whatever the template's conditions.
 */
struct shown {
    const json_t **v;
    size_t n, cap;
};

static void
on_shown(void *arg, const json_t *value)
{
    struct shown *sh = arg;
    if (sh->n == sh->cap) {
        sh->cap = sh->cap ? sh->cap * 2 : 64;
        sh->v = br_realloc(sh->v, sh->cap * sizeof(*sh->v));
    }
    sh->v[sh->n++] = value;
}

static int
cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const json_t *const *)a, y = (uintptr_t) * (const json_t *const *)b;
    return x < y ? -1 : x > y;
}

static bool
was_shown(const struct shown *sh, const json_t *v)
{
    return v && sh->n && bsearch(&v, sh->v, sh->n, sizeof(*sh->v), cmp_ptr) != NULL;
}

/*
 * Renders the task's title and description from ctx.  *carried gets the
 * ids (of ids, aligned with chat.messages) of the messages whose text the
 * description shows; *prev_linked whether it shows previous_task.id.
 * A template that cannot render (a huge visitor text) gives way to the
 * fallback texts, which carry no message.
 */
static void
render_task(struct run *r, json_t *ctx, json_t *ids, struct br_buf *title, struct br_buf *desc, json_t *carried,
            bool *prev_linked)
{
    const struct br_config *cfg = r->e->cfg;
    struct shown sh = {0};
    json_t *msgs = json_object_get(json_object_get(ctx, "chat"), "messages"), *m;
    size_t i;

    /* An empty title (a template whose values are all missing) is refused by trackers: fall back too. */
    if (br_tpl_render(r->ch->task_title, ctx, BR_TPL_ESCAPE_NONE, title) != 0 ||
        title->len == strspn(title->data ? title->data : "", " \t\r\n")) {
        br_buf_reset(title);
        if (br_texts_render(cfg, BR_TEXT_FALLBACK_TITLE, ctx, title) != 0)
            br_buf_printf(title, "Chat (%s)", r->ch->name);
    }
    if (br_tpl_render_seen(r->ch->task_description, ctx, r->e->tracker->ops->text_escape, desc, on_shown, &sh) != 0) {
        sh.n = 0;
        br_buf_reset(desc);
        (void)br_texts_render(cfg, BR_TEXT_FALLBACK_DESCRIPTION, ctx, desc);
    }
    if (sh.n)
        qsort(sh.v, sh.n, sizeof(*sh.v), cmp_ptr);
    json_array_foreach(msgs, i, m) {
        if (was_shown(&sh, json_object_get(m, "text")) || was_shown(&sh, json_object_get(m, "text_html")))
            json_array_append(carried, json_array_get(ids, i));
    }
    *prev_linked = was_shown(&sh, json_object_get(json_object_get(ctx, "previous_task"), "id"));
    free(sh.v);
}

static void
create_task(struct run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    json_t *ids = json_array(), *carried = json_array();
    json_t *ctx = br_context_task(r->e->cfg, r->e->store, r->ch, &r->conv, gen, ids);
    const char *prev = jstr(json_object_get(ctx, "previous_task"), "id");
    struct br_buf title, desc;
    struct br_task_spec spec = {0};
    struct br_field_value *fields;
    bool prev_linked = false;
    char *payload;
    int rc;

    br_buf_init(&title, 4096);
    br_buf_init(&desc, 256 * 1024);
    render_task(r, ctx, ids, &title, &desc, carried, &prev_linked);
    /*
     * Which messages the description carries (and whether it links the
     * previous task) is committed before the request: after a crash, the
     * task found again is known to hold just these.  The others stay
     * waiting and go out as comments, in order.
     */
    json_object_set_new(r->payload, "msgs", carried);
    if (prev && !prev_linked)
        json_object_set_new(r->payload, "prev_task", json_string(prev));
    else
        json_object_del(r->payload, "prev_task");
    payload = json_dumps(r->payload, JSON_COMPACT);
    rc = br_store_job_payload(r->e->store, r->job.id, payload);
    free(payload);
    json_decref(ids);
    if (rc) {
        br_buf_dispose(&title);
        br_buf_dispose(&desc);
        json_decref(ctx);
        job_fail(r, BR_ERETRY, "cannot store which messages the task text carries");
        return;
    }
    /* Titles are one line, without the newline a template file ends with. */
    for (size_t i = 0; i < title.len; i++)
        if (title.data[i] == '\n' || title.data[i] == '\r' || title.data[i] == '\t')
            title.data[i] = ' ';
    while (title.len > 0 && title.data[title.len - 1] == ' ')
        title.data[--title.len] = '\0';
    spec.title = title.data ? title.data + strspn(title.data, " ") : "";
    spec.description = desc.data ? desc.data : "";
    spec.fields = fields = render_fields(r->ch->custom_fields, r->ch->n_custom_fields, ctx);
    spec.n_fields = r->ch->n_custom_fields;
    spec.contact_id = r->conv.contact_id;
    spec.company_id = r->conv.company_id;
    spec.watchers = (const char *const *)r->ch->watchers;
    spec.n_watchers = r->ch->n_watchers;
    spec.template_id = r->ch->task_template_id;
    spec.source_key = r->source_key;
    r->step = 2;
    r->e->tracker->ops->create_task(r->e->tracker, &spec, task_created, r);
    br_buf_dispose(&title);
    br_buf_dispose(&desc);
    free_fields(fields, r->ch->n_custom_fields);
    json_decref(ctx);
}

static void
task_created(void *arg, struct br_result *res)
{
    struct run *r = arg;
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    const char *prev = jstr(r->payload, "prev_task");
    size_t i;
    json_t *v;
    int rc = 0;

    if (r->step == 1 && res->err == BR_ENOTFOUND) {
        /* Not created before the crash: create it now. */
        create_task(r);
        return;
    }
    if (res->err == 0 && res->id) {
        struct br_task t = {0};
        int state = BR_TASK_OPEN;
        /* A transcript may have arrived meanwhile: keep its "closing" mark. */
        if (br_store_task_get(r->e->store, r->conv.id, gen, &t) == 0 && t.state == BR_TASK_CLOSING)
            state = BR_TASK_CLOSING;
        br_task_dispose(&t);
        rc = br_store_begin(r->e->store);
        if (rc == 0)
            rc = br_store_task_set(r->e->store, r->conv.id, gen, res->id, state);
        json_array_foreach(json_object_get(r->payload, "msgs"), i, v) {
            if (rc == 0)
                rc = br_store_msg_set_state(r->e->store, json_integer_value(v), BR_MSG_MIRRORED, NULL);
        }
        /* The description does not link the previous task: a comment does, in the same commit. */
        if (rc == 0 && prev)
            rc = add_note(r->e, r->conv.id, gen, BR_TEXT_PREVIOUS_TASK,
                          json_pack("{s:{s:s}}", "previous_task", "id", prev), 0);
        if ((rc = tx_end(r->e, rc)) == 0)
            br_info("conversation %lld: task %s %s", (long long)r->conv.id, res->id,
                    r->step == 1 ? "found after restart" : "created");
    }
    finish_recorded(r, res, rc);
}

static void run_task(struct run *r);

/*
 * The contact's active task found: the chat joins it.  Its description is
 * not the bridge's, so every message goes as a comment, and the bridge
 * never completes it (see run_close).  A task that is already another
 * conversation's stays theirs: this one gets its own.
 */
static void
active_task_found(void *arg, struct br_result *res)
{
    struct run *r = arg;
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    struct br_task other = {0};
    bool taken;
    int rc;

    if (res->err == BR_ENOTFOUND) {
        run_task(r);
        return;
    }
    if (res->err) {
        job_finish(r, res);
        return;
    }
    taken = br_store_task_by_tracker_id(r->e->store, res->id, &other) == 0 && other.conv_id != r->conv.id;
    br_task_dispose(&other);
    if (taken) {
        br_info("conversation %lld: the contact's active task %s belongs to another conversation; a new task follows",
                (long long)r->conv.id, res->id);
        run_task(r);
        return;
    }
    rc = TX(r->e, br_store_task_set(r->e->store, r->conv.id, gen, res->id, BR_TASK_OPEN));
    if (rc == 0)
        br_info("conversation %lld: joined the contact's active task %s", (long long)r->conv.id, res->id);
    finish_recorded(r, res, rc);
}

static void
run_task(struct run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    struct br_task t = {0};
    bool tried;

    if (br_store_task_get(r->e->store, r->conv.id, gen, &t) == 0 && t.task_id) {
        br_task_dispose(&t);
        job_ok(r);
        return;
    }
    if (r->conv.profile_state == BR_PROFILE_PENDING &&
        br_now_ms() - json_integer_value(json_object_get(r->payload, "since")) < PROFILE_WAIT_MS) {
        /* Chatra's visitor data is on its way: wait a little, never long. */
        br_task_dispose(&t);
        job_later(r, 100);
        return;
    }
    if (r->conv.contact_id == NULL && has_contacts(r->e))
        br_warn("conversation %lld: the task is created without a contact (the contact could not be found or made)",
                (long long)r->conv.id);
    /*
     * "A new task if there are no active tasks with this contact": a known
     * contact's active task (one an employee opened by hand too) takes the
     * chat.  A contact the bridge has just made has none; asked before the
     * key is stored, so a task of ours is never mistaken for it.
     */
    if (t.source_key == NULL && r->step == 0 && r->ch->new_task_if_no_active && r->conv.contact_id &&
        r->e->tracker->ops->find_active_task && (!r->conv.contact_made || gen > 1)) {
        br_task_dispose(&t);
        r->step = 3;
        r->e->tracker->ops->find_active_task(r->e->tracker, r->conv.contact_id, active_task_found, r);
        return;
    }
    /*
     * The key is stored with the task before the first request, whichever
     * job makes it (a task job, or a check or comment job that found the
     * old task gone): any later attempt looks for that key first.
     */
    tried = t.source_key != NULL;
    if (tried) {
        r->source_key = t.source_key;
        t.source_key = NULL;
    } else {
        int rc;
        r->source_key = br_malloc(BR_SOURCE_KEY_LEN + 1);
        br_store_source_key(r->e->store, BR_SOURCE_TASK, r->job.id, r->source_key);
        if ((rc = TX(r->e, br_store_task_set_key(r->e->store, r->conv.id, gen, r->source_key)))) {
            br_task_dispose(&t);
            job_fail(r, BR_ERETRY, "cannot store the task key: %s", br_strerror(rc));
            return;
        }
    }
    br_task_dispose(&t);
    if (tried && (r->conv.contact_id || !has_contacts(r->e))) {
        r->step = 1;
        r->e->tracker->ops->find_task(r->e->tracker, r->conv.contact_id, r->source_key, task_created, r);
        return;
    }
    create_task(r);
}

/* Sets r->task_id to the tracker id of (conv, gen); false when it does not exist (yet). */
static bool
task_of(struct run *r, int64_t conv_id, int gen, char **out)
{
    struct br_task t = {0};
    bool ok = br_store_task_get(r->e->store, conv_id, gen, &t) == 0 && t.task_id;
    if (ok)
        *out = br_strdup(t.task_id);
    br_task_dispose(&t);
    return ok;
}

/*
 * The tracker says the task of old_gen is completed or gone: open the
 * next generation, with the messages still waiting for the tracker.
 * Committed before any request, so a crash leaves a consistent state.
 */
static int
reopen_generation(struct run *r, int old_gen)
{
    struct br_store *st = r->e->store;
    int gen = r->conv.gen + 1;
    int rc;

    if (r->conv.gen != old_gen)
        return 0; /* already moved on */
    if ((rc = br_store_begin(st)))
        return rc;
    if ((rc = br_store_task_set(st, r->conv.id, old_gen, NULL, BR_TASK_CLOSED)) ||
        (rc = br_store_task_create(st, r->conv.id, gen)) || (rc = br_store_conv_set_gen(st, r->conv.id, gen)) ||
        (rc = br_store_msg_move_pending(st, r->conv.id, old_gen, gen)) || (rc = br_store_commit(st))) {
        br_store_rollback(st);
        return rc;
    }
    r->conv.gen = gen;
    return 0;
}

/* Creates the task of generation gen from inside another job (the lane has no task job for it). */
static void
create_task_inline(struct run *r, int gen)
{
    int rc = TX(r->e, br_store_task_create(r->e->store, r->conv.id, gen));
    if (rc) {
        job_fail(r, BR_ERETRY, "cannot store the task: %s", br_strerror(rc));
        return;
    }
    json_object_set_new(r->payload, "gen", json_integer(gen));
    run_task(r);
}

static void
task_checked(void *arg, struct br_result *res)
{
    struct run *r = arg;
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    const char *state = res->err == BR_ENOTFOUND ? "deleted" : res->id;

    if (res->err && res->err != BR_ENOTFOUND) {
        job_finish(r, res);
        return;
    }
    if (strcmp(state, "active") == 0 || (strcmp(state, "inactive") == 0 && !r->ch->new_task_if_no_active)) {
        job_ok(r);
        return;
    }
    br_info("conversation %lld: task %s is %s in the tracker; the new chat gets a new task", (long long)r->conv.id,
            r->task_id, strcmp(state, "deleted") == 0 ? "deleted" : "completed");
    if (reopen_generation(r, gen) != 0) {
        job_fail(r, BR_ERETRY, "cannot open a new task generation");
        return;
    }
    create_task_inline(r, r->conv.gen);
}

/*
 * At the start of a new chat: is the conversation's task still active
 * in the tracker?  Employees complete or delete tasks there.
 */
static void
run_check(struct run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));

    if (r->conv.gen != gen) {
        /* A crash after the new generation was opened: finish what this job started. */
        create_task_inline(r, r->conv.gen);
        return;
    }
    if (!task_of(r, r->conv.id, gen, &r->task_id)) {
        /* This job opened the generation and was cut off (crash, timeout): finish it. */
        create_task_inline(r, gen);
        return;
    }
    r->e->tracker->ops->task_state(r->e->tracker, r->task_id, task_checked, r);
}

/* ---- comments: mirrored messages and the bridge's notes ---- */

static void comment_added(void *arg, struct br_result *res);
static int take_comments(struct run *r, json_t *items);

/* Sends r->html as a comment on r->task_id, by r->author_contact or r->author_employee (or the bridge). */
static void
post_comment(struct run *r)
{
    struct br_comment_spec spec = {0};

    spec.task_id = r->task_id;
    spec.source_key = r->source_key;
    spec.contact_id = r->author_contact;
    spec.employee = r->author_employee;
    spec.text = r->text;
    r->step = 2;
    r->e->tracker->ops->add_comment(r->e->tracker, &spec, comment_added, r);
}

static void
comment_found(void *arg, struct br_result *res)
{
    struct run *r = arg;
    size_t i;
    json_t *it;

    if (res->err == BR_ENOTFOUND) {
        comment_added(r, res); /* the task is gone: handled as when posting */
        return;
    }
    if (res->err) {
        job_finish(r, res);
        return;
    }
    json_array_foreach(res->items, i, it) {
        const char *key = jstr(it, "source_key");
        if (key && strcmp(key, r->source_key) == 0) {
            /* It was written before the crash: record it instead of writing it again. */
            free(res->id);
            res->id = br_strdup(jstr(it, "id"));
            r->step = 2;
            comment_added(r, res);
            return;
        }
    }
    post_comment(r);
}

/*
 * After a crash, on a tracker whose comments carry no key: a comment with
 * this author and text that the bridge has not recorded is the one the
 * cut-off run wrote (every comment the bridge wrote and saw answered is
 * recorded with its id).
 */
static void
comment_matched(void *arg, struct br_result *res)
{
    struct run *r = arg;
    size_t i;
    json_t *it;

    if (res->err == BR_ENOTFOUND) {
        comment_added(r, res);
        return;
    }
    if (res->err) {
        job_finish(r, res);
        return;
    }
    json_array_foreach(res->items, i, it) {
        if (json_is_string(it) && !br_store_comment_seen(r->e->store, r->task_id, json_string_value(it))) {
            free(res->id);
            res->id = br_strdup(json_string_value(it));
            r->step = 2;
            comment_added(r, res);
            return;
        }
    }
    post_comment(r);
}

static void
comment_added(void *arg, struct br_result *res)
{
    struct run *r = arg;
    json_t *msg = json_object_get(r->payload, "msg");
    int rc = 0;

    if (res->err == BR_ENOTFOUND && msg) {
        /* The task was deleted in the tracker: the message opens a new one (in either mode). */
        struct br_msg m = {0};
        int gen = -1;
        if (br_store_msg_get(r->e->store, json_integer_value(msg), &m) == 0)
            gen = m.gen;
        br_msg_dispose(&m);
        br_info("conversation %lld: task %s was deleted in the tracker; a new task follows", (long long)r->conv.id,
                r->task_id);
        if (gen >= 0 && gen != r->conv.gen) {
            /* Its task is an old one: the message goes to the current task instead. */
            rc = TX(r->e, br_store_msg_set_gen(r->e->store, json_integer_value(msg), r->conv.gen));
            if (rc)
                job_fail(r, BR_ERETRY, "cannot move the message: %s", br_strerror(rc));
            else
                job_later(r, 0);
            return;
        }
        if (gen < 0 || reopen_generation(r, gen) != 0) {
            job_fail(r, BR_ERETRY, "cannot open a new task generation");
            return;
        }
        free(r->source_key);
        r->source_key = NULL;
        create_task_inline(r, r->conv.gen);
        return;
    }
    if (res->err == 0 && res->id) {
        bool is_new;
        size_t i;
        json_t *v;
        rc = br_store_begin(r->e->store);
        if (rc == 0)
            rc = br_store_comment_mark(r->e->store, r->task_id, res->id, BR_COMMENT_BRIDGE, &is_new);
        if (rc == 0 && msg)
            rc = br_store_msg_set_state(r->e->store, json_integer_value(msg), BR_MSG_MIRRORED, res->id);
        /* The other messages this comment carried (coalesced). */
        json_array_foreach(json_object_get(r->payload, "msgs"), i, v) {
            if (rc == 0)
                rc = br_store_msg_set_state(r->e->store, json_integer_value(v), BR_MSG_MIRRORED, res->id);
        }
        if (rc == 0 && json_is_object(res->items)) {
            /*
             * The driver read the task's comments to learn this one's id
             * (Redmine): they are taken as a fetch would, and the change
             * they cover is not read again by the next poll.
             */
            rc = take_comments(r, json_object_get(res->items, "comments"));
            if (rc == 0 && r->undecided) {
                /* Some authors are still being looked up: a fetch reads the task again once they are known. */
                char *lane = lane_name('t', r->conv.id);
                if (!br_store_job_waiting(r->e->store, lane, "fetch"))
                    rc = add_job(r->e, 't', "tracker", "fetch", r->conv.id, json_pack("{s:s}", "task", r->task_id));
                free(lane);
            } else if (rc == 0 && jstr(res->items, "change")) {
                rc = br_store_comment_mark(r->e->store, r->task_id, jstr(res->items, "change"), BR_COMMENT_IGNORED,
                                           &is_new);
            }
        }
        rc = tx_end(r->e, rc);
        if (rc == 0 && r->recheck)
            recheck_users(r->e, r->ch);
    }
    finish_recorded(r, res, rc);
}

/* Posts the prepared comment, or after a crash first looks whether it is already there. */
static void
send_comment(struct run *r, enum br_source_kind kind, int64_t key_id)
{
    r->source_key = br_malloc(BR_SOURCE_KEY_LEN + 1);
    br_store_source_key(r->e->store, kind, key_id, r->source_key);
    if (r->job.recover && r->e->tracker->ops->find_comment) {
        struct br_comment_spec spec = {0};
        spec.task_id = r->task_id;
        spec.contact_id = r->author_contact;
        spec.employee = r->author_employee;
        spec.text = r->text;
        r->step = 1;
        r->e->tracker->ops->find_comment(r->e->tracker, &spec, comment_matched, r);
        return;
    }
    if (r->job.recover) {
        r->step = 1;
        r->e->tracker->ops->list_comments(r->e->tracker, r->task_id, comment_found, r);
        return;
    }
    post_comment(r);
}

/* The visitor messages waiting right behind the first one: one comment carries them all. */
struct run_of_msgs {
    int64_t first;
    json_t *ids;
    json_t *msgs;     /* the messages' template contexts */
    const json_t *base;
    struct run *r;
    bool stopped;
    size_t bytes;
};

static void
add_to_run(struct run_of_msgs *ro, const struct br_msg *m)
{
    json_t *item = br_context_message(ro->r->e->cfg, ro->r->e->store, ro->r->ch, ro->base, m);
    json_object_set_new(item, "first", json_boolean(json_array_size(ro->msgs) == 0));
    ro->bytes += strlen(m->text);
    json_array_append_new(ro->ids, json_integer(m->id));
    json_array_append_new(ro->msgs, item);
}

static void
collect_run(void *arg, const struct br_msg *m)
{
    struct run_of_msgs *ro = arg;

    if (ro->stopped || m->id < ro->first || m->state != BR_MSG_PENDING)
        return;
    /* Another author (an agent) ends the run: the order between authors is kept. */
    if (strcmp(m->type, "client") != 0 || json_array_size(ro->ids) >= COALESCE_MAX_MSGS ||
        ro->bytes + strlen(m->text) > COALESCE_MAX_BYTES) {
        ro->stopped = ro->first != m->id;
        if (ro->stopped)
            return;
    }
    add_to_run(ro, m);
}

/*
 * Visitor messages still waiting for the tracker go as one comment (the
 * "messages" text: each on its own line with its time; the tracker allows
 * one request per second, and a burst must not queue up behind it).  The
 * set is fixed in the job's payload before the request, so a retry sends
 * the same comment.  Sets ctx's messages, single and count.
 */
static void
coalesce(struct run *r, const struct br_msg *m, json_t *ctx)
{
    json_t *ids = json_object_get(r->payload, "msgs");
    struct run_of_msgs ro = {m->id, json_array(), json_array(), ctx, r, false, 0};
    size_t i;
    json_t *v;

    if (json_is_array(ids)) {
        /* Decided by an earlier attempt: the same messages again. */
        json_array_foreach(ids, i, v) {
            struct br_msg x = {0};
            if (br_store_msg_get(r->e->store, json_integer_value(v), &x) == 0)
                add_to_run(&ro, &x);
            br_msg_dispose(&x);
        }
    } else {
        char *payload;
        br_store_msg_each(r->e->store, r->conv.id, m->gen, collect_run, &ro);
        json_object_set(r->payload, "msgs", ro.ids);
        payload = json_dumps(r->payload, JSON_COMPACT);
        if (br_store_job_payload(r->e->store, r->job.id, payload) != 0) {
            /* Not fixed in the store: this comment carries only its own message. */
            json_object_del(r->payload, "msgs");
            json_array_clear(ro.ids);
            json_array_clear(ro.msgs);
        }
        free(payload);
    }
    if (json_array_size(ro.msgs) == 0)
        add_to_run(&ro, m);
    json_object_set_new(ctx, "single", json_boolean(json_array_size(ro.msgs) == 1));
    json_object_set_new(ctx, "count", json_integer((json_int_t)json_array_size(ro.msgs)));
    json_object_set_new(ctx, "messages", ro.msgs);
    json_decref(ro.ids);
}

/* Renders text kind t with ctx into r->text; false (and the job failed) when it cannot. */
static bool
render_comment(struct run *r, enum br_text t, const json_t *ctx)
{
    struct br_buf b;
    int rc;

    br_buf_init(&b, 4 * 1024 * 1024);
    rc = br_texts_render(r->e->cfg, t, ctx, &b);
    if (rc == 0 && b.len == 0)
        rc = BR_EINVAL;
    if (rc) {
        br_buf_dispose(&b);
        job_fail(r, BR_EFATAL, "the %s text renders %s (texts.%s)", br_text_info(t)->key,
                 rc == BR_ELIMIT ? "too long" : "empty", br_text_info(t)->key);
        return false;
    }
    r->text = br_buf_steal(&b);
    return true;
}

static void
run_comment(struct run *r)
{
    int64_t mid = json_integer_value(json_object_get(r->payload, "msg"));
    struct br_msg m = {0};
    json_t *ctx;
    bool ok;

    if (br_store_msg_get(r->e->store, mid, &m) != 0) {
        job_fail(r, BR_EFATAL, "message %lld is not in the store", (long long)mid);
        return;
    }
    if (m.state != BR_MSG_PENDING) {
        br_msg_dispose(&m);
        job_ok(r);
        return;
    }
    if (!task_of(r, r->conv.id, m.gen, &r->task_id)) {
        /*
         * Lane order runs a generation's task job before its comments, so
         * a missing task here was opened by a job that was cut off (a
         * check or a comment that found the old task gone): make it now.
         */
        int gen = m.gen;
        br_msg_dispose(&m);
        create_task_inline(r, gen);
        return;
    }
    ctx = br_context_conversation(r->e->cfg, r->ch, &r->conv);
    if (strcmp(m.type, "agent") == 0) {
        const struct br_employee *emp = agent_employee(r->e, r->ch, m.agent_id);
        const char *user = emp ? employee_user(r->e, emp) : NULL;
        json_t *item;
        if (emp && user == NULL && emp_user_of(r->e, emp)->state == USER_PENDING) {
            /* Their tracker user is being looked up: the comment is theirs once it is known. */
            json_decref(ctx);
            br_msg_dispose(&m);
            job_later(r, USER_WAIT_MS);
            return;
        }
        item = br_context_message(r->e->cfg, r->e->store, r->ch, ctx, &m);
        /* An agent no employee with a tracker user maps to: the bridge's own user writes, naming the agent. */
        if (user)
            r->author_employee = r->employee_user = br_strdup(user);
        json_object_set_new(item, "agent", json_pack("{s:s?, s:s?, s:b}", "id", m.agent_id, "name",
                                                      emp ? emp->name : NULL, "employee", user != NULL));
        json_object_update(ctx, item);
        json_decref(item);
        ok = render_comment(r, BR_TEXT_AGENT_MESSAGE, ctx);
    } else {
        r->author_contact = r->conv.contact_id;
        coalesce(r, &m, ctx);
        ok = render_comment(r, BR_TEXT_MESSAGES, ctx);
    }
    json_decref(ctx);
    br_msg_dispose(&m);
    if (ok)
        send_comment(r, BR_SOURCE_COMMENT, mid);
}

/* The text kind a note job names, or -1 for a name this version does not know. */
static int
text_by_key(const char *key)
{
    for (int t = 0; key && t < BR_TEXT_COUNT; t++)
        if (strcmp(br_text_info(t)->key, key) == 0)
            return t;
    return -1;
}

static void
run_note(struct run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    int64_t ref = json_integer_value(json_object_get(r->payload, "ref_conv"));
    int text = text_by_key(jstr(r->payload, "text"));
    char *ref_task = NULL;
    json_t *ctx;
    bool ok;

    if (gen == 0) {
        if (r->conv.gen != (int)json_integer_value(json_object_get(r->payload, "gen_at"))) {
            job_ok(r);
            return;
        }
        gen = r->conv.gen;
    }
    if (text < 0 && jstr(r->payload, "html") == NULL) {
        job_fail(r, BR_EFATAL, "note of an unknown kind (%s)", jstr(r->payload, "text") ? jstr(r->payload, "text") : "none");
        return;
    }
    if (!task_of(r, r->conv.id, gen, &r->task_id)) {
        job_fail(r, BR_ERETRY, "the task for this note does not exist yet");
        return;
    }
    if (ref) {
        struct br_conv rc = {0};
        bool found = br_store_conv_get(r->e->store, ref, &rc) == 0 && task_of(r, rc.id, rc.gen, &ref_task);
        br_conv_dispose(&rc);
        if (!found) {
            job_fail(r, BR_ERETRY, "the task this note points to does not exist yet");
            return;
        }
    }
    if (text < 0) {
        /*
         * A note queued by a version before the texts were templates: its
         * HTML, with %TASK% for the task it points to (plain text on Redmine).
         */
        const char *html = jstr(r->payload, "html");
        struct br_buf b;
        const char *p, *hit;
        br_buf_init(&b, 0);
        for (p = html; ref_task && (hit = strstr(p, "%TASK%")) != NULL; p = hit + 6) {
            br_buf_append(&b, p, (size_t)(hit - p));
            br_buf_puts(&b, ref_task);
        }
        br_buf_puts(&b, p);
        if (r->e->tracker->ops->text_escape != BR_TPL_ESCAPE_HTML)
            r->text = br_html_to_text(b.data ? b.data : "");
        else
            r->text = b.data ? br_buf_steal(&b) : br_strdup("");
        br_buf_dispose(&b);
        free(ref_task);
        send_comment(r, BR_SOURCE_NOTE, r->job.id);
        return;
    }
    /* The conversation's context, then the note's own (device, e-mail ...), then the task it points to. */
    ctx = br_context_conversation(r->e->cfg, r->ch, &r->conv);
    if (json_is_object(json_object_get(r->payload, "ctx")))
        json_object_update(ctx, json_object_get(r->payload, "ctx"));
    if (ref_task)
        json_object_set_new(ctx, "task", json_pack("{s:s}", "id", ref_task));
    ok = render_comment(r, (enum br_text)text, ctx);
    json_decref(ctx);
    free(ref_task);
    if (ok)
        send_comment(r, BR_SOURCE_NOTE, r->job.id);
}

/* ---- visits on the contact's card ---- */

static void
contact_visit_posted(void *arg, struct br_result *res)
{
    struct run *r = arg;

    if (res->err == BR_ENOTFOUND)
        res->err = 0; /* the contact is gone: there is no card to write on */
    job_finish(r, res);
}

static void
contact_visit_found(void *arg, struct br_result *res)
{
    struct run *r = arg;
    struct br_comment_spec spec = {0};
    size_t i;
    json_t *it;

    if (res->err) {
        contact_visit_posted(r, res);
        return;
    }
    json_array_foreach(res->items, i, it) {
        const char *key = jstr(it, "source_key");
        if (key && strcmp(key, r->source_key) == 0) {
            job_ok(r); /* written before the crash */
            return;
        }
    }
    spec.text = r->text;
    spec.source_key = r->source_key;
    r->e->tracker->ops->add_contact_comment(r->e->tracker, r->conv.contact_id, &spec, contact_visit_posted, r);
}

static void
run_contact_visit(struct run *r)
{
    struct br_result none = {0};
    char *task = NULL;
    json_t *ctx;
    bool ok;

    if (r->conv.contact_id == NULL) {
        job_ok(r); /* no contact card (it could not be found or made) */
        return;
    }
    ctx = br_context_conversation(r->e->cfg, r->ch, &r->conv);
    if (json_is_object(json_object_get(r->payload, "ctx")))
        json_object_update(ctx, json_object_get(r->payload, "ctx"));
    if (task_of(r, r->conv.id, r->conv.gen, &task))
        json_object_set_new(ctx, "task", json_pack("{s:s}", "id", task));
    free(task);
    ok = render_comment(r, BR_TEXT_CONTACT_VISIT, ctx);
    json_decref(ctx);
    if (!ok)
        return;
    r->source_key = br_malloc(BR_SOURCE_KEY_LEN + 1);
    br_store_source_key(r->e->store, BR_SOURCE_NOTE, r->job.id, r->source_key);
    if (r->job.recover && r->e->tracker->ops->list_contact_comments) {
        r->e->tracker->ops->list_contact_comments(r->e->tracker, r->conv.contact_id, contact_visit_found, r);
        return;
    }
    none.items = json_array();
    contact_visit_found(r, &none);
    json_decref(none.items);
}

/* ---- contact updates after a merge or an introduction ---- */

/* A contact that is gone needs neither an update nor a removal. */
static void
contact_done(void *arg, struct br_result *res)
{
    if (res->err == BR_ENOTFOUND)
        res->err = 0;
    job_finish(arg, res);
}

static void
run_update_contact(struct run *r)
{
    struct br_contact_spec spec = {0};
    char *first, *last;

    if (r->conv.contact_id == NULL || !r->conv.contact_made) {
        /*
         * Not created yet (the creation uses the new details), or a contact
         * the bridge found: that card belongs to the team, and a visitor's
         * typing must not rewrite it.
         */
        job_ok(r);
        return;
    }
    /* Only what the visitor told: a placeholder must not overwrite a name set in the tracker. */
    first = last = NULL;
    if (r->conv.name)
        split_name(r, r->conv.name, &first, &last);
    json_t *ctx = br_context_conversation(r->e->cfg, r->ch, &r->conv);
    struct br_field_value *fields = render_fields(r->ch->contact_fields, r->ch->n_contact_fields, ctx);

    spec.name = first;
    spec.lastname = last;
    spec.email = r->conv.email;
    spec.phone = r->conv.phone;
    spec.fields = fields;
    spec.n_fields = r->ch->n_contact_fields;
    r->e->tracker->ops->update_contact(r->e->tracker, r->conv.contact_id, &spec, contact_done, r);
    free_fields(fields, r->ch->n_contact_fields);
    json_decref(ctx);
    free(first);
    free(last);
}

static void
run_drop_contact(struct run *r)
{
    struct br_conv sc = {0};
    int64_t survivor = json_integer_value(json_object_get(r->payload, "survivor"));
    bool drop;

    if (br_store_conv_get(r->e->store, survivor, &sc) != 0) {
        job_fail(r, BR_EFATAL, "the surviving conversation is gone");
        return;
    }
    /*
     * Only a contact the bridge made for this device: a customer's contact
     * found by e-mail stays, and so does one shared with the survivor.
     */
    drop = r->conv.contact_id && r->conv.contact_made &&
           (sc.contact_id == NULL || strcmp(sc.contact_id, r->conv.contact_id) != 0);
    br_conv_dispose(&sc);
    if (!drop) {
        job_ok(r);
        return;
    }
    r->e->tracker->ops->delete_contact(r->e->tracker, r->conv.contact_id, contact_done, r);
}

/* ---- fields: a tracker without contacts keeps the visitor's details in the task ---- */

static void
run_fields(struct run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    struct br_field_value *fields;
    json_t *ctx;

    if (!task_of(r, r->conv.id, gen, &r->task_id)) {
        job_fail(r, BR_ERETRY, "the task for these fields does not exist yet");
        return;
    }
    ctx = br_context_task(r->e->cfg, r->e->store, r->ch, &r->conv, gen, NULL);
    fields = render_fields(r->ch->custom_fields, r->ch->n_custom_fields, ctx);
    r->e->tracker->ops->update_task_fields(r->e->tracker, r->task_id, fields, r->ch->n_custom_fields, contact_done, r);
    free_fields(fields, r->ch->n_custom_fields);
    json_decref(ctx);
}

/* ---- close ---- */

static void
task_closed(void *arg, struct br_result *res)
{
    struct run *r = arg;
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));

    int rc = 0;

    if (res->err == BR_ENOTFOUND)
        res->err = 0; /* deleted in the tracker: there is nothing left to complete */
    if (res->err == 0) {
        rc = TX(r->e, br_store_task_set(r->e->store, r->conv.id, gen, NULL, BR_TASK_CLOSED));
        if (rc == 0)
            br_info("conversation %lld: task %s completed", (long long)r->conv.id, r->task_id);
    }
    finish_recorded(r, res, rc);
}

static void
run_close(struct run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    struct br_task t = {0};

    if (br_store_task_get(r->e->store, r->conv.id, gen, &t) != 0 || t.task_id == NULL) {
        br_task_dispose(&t);
        job_fail(r, BR_EFATAL, "no task to complete");
        return;
    }
    if (t.source_key == NULL) {
        /*
         * A task the chat joined (the contact's active task, made by an
         * employee): it is theirs to complete.  Only the conversation's
         * link to it ends.
         */
        int rc = TX(r->e, br_store_task_set(r->e->store, r->conv.id, gen, NULL, BR_TASK_CLOSED));
        br_info("conversation %lld: task %s was not made by the bridge; it stays open in the tracker",
                (long long)r->conv.id, t.task_id);
        br_task_dispose(&t);
        if (rc)
            job_fail(r, BR_ERETRY, "cannot store the task's state: %s", br_strerror(rc));
        else
            job_ok(r);
        return;
    }
    r->task_id = br_strdup(t.task_id);
    br_task_dispose(&t);
    r->e->tracker->ops->close_task(r->e->tracker, r->task_id, r->ch->closed_status_id, task_closed, r);
}

/* ---- fetch: new employee comments become replies in the chat ---- */

/*
 * Who a reply is sent as, into the reply job's payload p: the employee's
 * agent id, else their e-mail and name (send_as_employee), else the
 * channel's default agent (by id, else by e-mail).  Returns the agent as
 * the relay records it: the id, or "email:<address>".
 */
static char *
reply_agent(const struct br_channel *ch, const struct br_employee *emp, json_t *p)
{
    const char *id = NULL, *email = NULL, *name = NULL;

    if (ch->send_as_employee && emp->chatra_agent_id) {
        id = emp->chatra_agent_id;
    } else if (ch->send_as_employee) {
        email = emp->email;
        name = emp->name;
    } else if (ch->default_agent_id) {
        id = ch->default_agent_id;
    } else {
        email = ch->default_agent_email;
        name = ch->default_agent_name;
    }
    if (id) {
        json_object_set_new(p, "agent", json_string(id));
        return br_strdup(id);
    }
    json_object_set_new(p, "agent_email", json_string(email));
    json_object_set_new(p, "agent_name", json_string(name ? name : email));
    return br_asprintf("email:%s", email);
}

/*
 * Marks each listed comment of r->task_id as seen and queues a reply for
 * each new one by an employee allowed on the channel.  Runs inside the
 * caller's transaction: a reply is queued together with its "seen" mark.
 * A comment whose author may be an employee still being looked up is
 * left unseen (r->undecided): the caller reads it again later.
 */
static int
take_comments(struct run *r, json_t *items)
{
    struct br_engine *e = r->e;
    char *upname = br_asprintf("chatra:%s", r->ch->name);
    size_t i;
    json_t *it;
    int rc = 0;

    json_array_foreach(items, i, it) {
        const char *id = jstr(it, "id");
        const char *author = jstr(it, "author");
        const char *key = jstr(it, "source_key");
        const struct br_employee *emp = author ? channel_employee_by_user(e, r->ch, author) : NULL;
        bool ours = br_store_source_key_is_ours(e->store, key);
        bool hidden = json_is_true(json_object_get(it, "hidden"));
        bool relay = emp && !ours && !hidden;
        char *text = NULL;
        bool is_new;

        if (id == NULL)
            continue;
        if (emp == NULL && !ours && !hidden && author && may_be_employee(r, author) &&
            !br_store_comment_seen(e->store, r->task_id, id)) {
            /* Perhaps an employee whose user is being looked up: not seen yet, read again later. */
            r->undecided = true;
            continue;
        }
        if (relay) {
            text = br_html_to_text(jstr(it, "html") ? jstr(it, "html") : "");
            relay = *text != '\0';
        }
        if (rc == 0)
            rc = br_store_comment_mark(e->store, r->task_id, id, relay ? BR_COMMENT_RELAYED : BR_COMMENT_IGNORED,
                                       &is_new);
        if (rc == 0 && is_new && relay) {
            json_t *p = json_pack("{s:s, s:s, s:s}", "comment", id, "task", r->task_id, "text", text);
            char *agent = reply_agent(r->ch, emp, p);
            /* Remember what goes into the chat so its copy in the next fragment is not mirrored back. */
            rc = br_store_relay_add(e->store, r->conv.id, agent, text);
            free(agent);
            if (rc == 0)
                rc = add_job(e, 'c', upname, "reply", r->conv.id, p);
            else
                json_decref(p);
            if (rc == 0)
                br_info("conversation %lld: reply from %s queued for the chat", (long long)r->conv.id, emp->name);
        }
        free(text);
    }
    free(upname);
    return rc;
}

static void
comments_listed(void *arg, struct br_result *res)
{
    struct run *r = arg;
    int rc;

    if (res->err) {
        job_finish(r, res);
        return;
    }
    rc = br_store_begin(r->e->store);
    if (rc == 0)
        rc = take_comments(r, res->items);
    if (rc == 0 && res->id && !r->undecided) {
        /* The change of the task these comments settle (Redmine): the poll does not read it again. */
        bool is_new;
        rc = br_store_comment_mark(r->e->store, r->task_id, res->id, BR_COMMENT_IGNORED, &is_new);
    }
    /* All or nothing: a reply is either queued together with its "seen" mark, or read again. */
    rc = tx_end(r->e, rc);
    if (rc == 0 && r->undecided) {
        /* An author may be an employee still being looked up: read the rest again once that is known. */
        if (r->recheck)
            recheck_users(r->e, r->ch);
        job_later(r, USER_WAIT_MS);
        return;
    }
    finish_recorded(r, res, rc);
}

static void
run_fetch(struct run *r)
{
    if (channel_pending(r->e, r->ch)) {
        /* Whose comments are whose is not known yet: look when the lookup has answered. */
        job_later(r, USER_WAIT_MS);
        return;
    }
    r->task_id = br_strdup(jstr(r->payload, "task") ? jstr(r->payload, "task") : "");
    r->e->tracker->ops->list_comments(r->e->tracker, r->task_id, comments_listed, r);
}

/* ---- profile: Chatra's full visitor data (GET /clients/{id}) ---- */

static void
profile_got(void *arg, struct br_result *res)
{
    struct run *r = arg;
    char *json;
    int rc;

    if (res->err == BR_ECANCELED) {
        job_finish(r, res);
        return;
    }
    if (res->err == 0) {
        json = json_dumps(res->items, JSON_COMPACT);
        rc = TX(r->e, br_store_conv_set_profile(r->e->store, r->conv.id, BR_PROFILE_DONE, json));
        free(json);
    } else {
        /* Never a reason to hold the task back: it is made with what the webhook said. */
        br_warn("conversation %lld: Chatra's visitor details are missing (%s); the task shows what the webhook had",
                (long long)r->conv.id, res->error ? res->error : br_strerror(res->err));
        rc = TX(r->e, br_store_conv_set_profile(r->e->store, r->conv.id, BR_PROFILE_FAILED, NULL));
    }
    if (rc) {
        /* Not stored: asked again (a read), rather than the task waiting for an answer already lost. */
        r->store_refused = true;
        job_fail(r, BR_ERETRY, "the visitor's details could not be stored (%s)", br_strerror(rc));
        return;
    }
    job_ok(r);
}

static void
run_profile(struct run *r)
{
    if (br_chatra_get_client(r->lu->up, r->ch, r->conv.client_id, profile_got, r) != 0)
        job_fail(r, BR_ERETRY, "cannot queue the Chatra request");
}

/* ---- poll: comments whose Planfix webhook never came ---- */

/*
 * What the driver learned of the tracker's clock (Planfix: the zone its
 * date filters are read in) is kept in the store with each poll, so that
 * the first poll after a restart is as narrow as the last one.
 */
static void
load_tracker_clock(struct br_engine *e)
{
    e->tracker->clock.learned_at_ms = br_store_meta_int(e->store, "tracker_clock_at", 0);
    e->tracker->clock.utc_offset_s = (long)br_store_meta_int(e->store, "tracker_utc_offset_s", 0);
}

static int
save_tracker_clock(struct br_engine *e)
{
    const struct br_tracker_clock *clk = &e->tracker->clock;
    int rc = 0;

    if (clk->learned_at_ms > 0 && clk->learned_at_ms != br_store_meta_int(e->store, "tracker_clock_at", 0)) {
        rc = br_store_meta_set_int(e->store, "tracker_utc_offset_s", clk->utc_offset_s);
        if (rc == 0)
            rc = br_store_meta_set_int(e->store, "tracker_clock_at", clk->learned_at_ms);
    }
    return rc;
}

static void
polled(void *arg, struct br_result *res)
{
    struct run *r = arg;
    struct br_engine *e = r->e;
    int64_t started = json_integer_value(json_object_get(r->payload, "started"));
    size_t i, queued = 0;
    json_t *it;
    int rc;

    if (res->err) {
        job_finish(r, res);
        return;
    }
    rc = br_store_begin(e->store);
    json_array_foreach(res->items, i, it) {
        const char *task = jstr(it, "task");
        struct br_task t = {0};
        char *lane;
        if (rc || task == NULL || br_store_comment_seen(e->store, task, jstr(it, "id")) ||
            br_store_task_by_tracker_id(e->store, task, &t) != 0)
            continue;
        /* The task's own fetch decides what to relay, exactly as after a webhook. */
        lane = lane_name('t', t.conv_id);
        if (!br_store_job_waiting(e->store, lane, "fetch")) {
            rc = add_job(e, 't', "tracker", "fetch", t.conv_id, json_pack("{s:s}", "task", task));
            queued++;
        }

        free(lane);
        br_task_dispose(&t);
    }
    if (rc == 0)
        rc = br_store_meta_set_int(e->store, "poll_since", started);
    if (rc == 0)
        rc = save_tracker_clock(e);
    rc = tx_end(e, rc);
    if (rc == 0 && queued)
        br_info("poll: %zu task(s) have comments no webhook announced; reading them", queued);
    finish_recorded(r, res, rc);
}

static void
run_poll(struct run *r)
{
    int64_t now = br_now_ms();
    int64_t since = br_store_meta_int(r->e->store, "poll_since", now - r->e->cfg->poll_interval_s * 1000);

    json_object_set_new(r->payload, "started", json_integer(now));
    r->e->tracker->ops->list_recent_comments(r->e->tracker, since - r->e->tracker->ops->poll_overlap_ms, now + 60 * 1000, polled, r);
}

static void
on_poll(uv_timer_t *t)
{
    struct br_engine *e = t->data;

    if (e->closing || br_store_job_waiting(e->store, "p:0", "poll"))
        return;
    if (TX(e, add_job(e, 'p', "tracker", "poll", 0, json_object())) == 0)
        schedule_work(e);
}

/* ---- reply ---- */

static void
reply_sent(void *arg, struct br_result *res)
{
    struct run *r = arg;
    if (res->err == 0)
        br_info("conversation %lld: reply delivered to the chat", (long long)r->conv.id);
    job_finish(r, res);
}

static void
run_reply(struct run *r)
{
    struct br_chatra_agent agent = {
        jstr(r->payload, "agent"), jstr(r->payload, "agent_email"), jstr(r->payload, "agent_name"),
        tracker_label(r->e),
    };
    int rc = br_chatra_send_message(r->lu->up, r->ch, r->conv.client_id, jstr(r->payload, "text"), &agent,
                                    reply_sent, r);
    if (rc)
        job_fail(r, BR_ERETRY, "cannot queue the Chatra request");
}

static const struct {
    const char *kind;
    void (*run)(struct run *r);
} job_kinds[] = {
    {"contact", run_contact}, {"task", run_task},   {"comment", run_comment},
    {"close", run_close},     {"fetch", run_fetch}, {"reply", run_reply},
    {"note", run_note},       {"update_contact", run_update_contact},
    {"drop_contact", run_drop_contact}, {"check", run_check},
    {"profile", run_profile},           {"company", run_company},
    {"poll", run_poll},                 {"fields", run_fields},
    {"contact_visit", run_contact_visit},
    {"user", run_user},
};

static void
start_job(struct br_engine *e, struct lane_up *lu, struct br_job *job)
{
    struct run *r = br_calloc(1, sizeof(*r));
    json_error_t je;
    int rc = 0;

    r->e = e;
    r->lu = lu;
    r->job = *job;
    memset(job, 0, sizeof(*job));
    lu->running++;
    e->running++;
    r->next = e->runs;
    if (e->runs)
        e->runs->prev = r;
    e->runs = r;
    /* In flight from here on: after a crash this job first checks what it already did. */
    if (br_store_job_start(e->store, r->job.id) != 0) {
        /* Still queued in the store, as if it had not been picked: it starts once the store takes writes. */
        run_free(r);
        return;
    }
    r->payload = json_loads(r->job.payload, 0, &je);
    /* Jobs of no conversation (conv_id 0, e.g. the poll) have no channel either. */
    if (r->payload != NULL && r->job.conv_id != 0)
        rc = br_store_conv_get(e->store, r->job.conv_id, &r->conv);
    if (r->payload == NULL || rc == BR_ENOTFOUND) {
        job_fail(r, BR_EFATAL, "job data is damaged");
        return;
    }
    if (rc) {
        /* The store could not be read: nothing wrong with the job. */
        r->store_refused = true;
        job_fail(r, BR_ERETRY, "cannot read the conversation: %s", br_strerror(rc));
        return;
    }
    r->ch = r->job.conv_id ? br_config_channel(e->cfg, r->conv.channel) : NULL;
    if (r->job.conv_id != 0 && r->ch == NULL) {
        job_fail(r, BR_EFATAL, "channel %s is no longer configured", r->conv.channel);
        return;
    }
    for (size_t i = 0; i < BR_ARRAY_SIZE(job_kinds); i++) {
        if (strcmp(job_kinds[i].kind, r->job.kind) == 0) {
            job_kinds[i].run(r);
            return;
        }
    }
    job_fail(r, BR_EFATAL, "unknown job kind %s", r->job.kind);
}

static void
dispatch(struct br_engine *e)
{
    int64_t now = br_now_ms();

    for (size_t u = 0; u < e->n_ups && !e->closing; u++) {
        struct lane_up *lu = &e->ups[u];
        struct br_job jobs[DISPATCH_BATCH];
        size_t n = 0;
        size_t room;

        if (lu->dry || lu->running >= UPSTREAM_DEPTH || br_upstream_paused_until(lu->up))
            continue;
        room = UPSTREAM_DEPTH - lu->running;
        if (room > DISPATCH_BATCH)
            room = DISPATCH_BATCH;
        br_store_job_ready(e->store, lu->name, now, jobs, room, &n);
        lu->dry = n < room;
        for (size_t i = 0; i < n; i++) {
            /* A store that refuses writes cannot mark a job in flight: the rest waits too. */
            if (e->closing || br_store_failing(e->store)) {
                br_job_dispose(&jobs[i]);
                continue;
            }
            start_job(e, lu, &jobs[i]);
        }
    }
}

/* Rolls the webhook count over to a new window when the current one is over. */
static void
intake_roll(struct br_engine *e, uint64_t now)
{
    if (now - e->intake_window >= BUSY_WINDOW_MS) {
        e->intake_prev = now - e->intake_window < 2 * BUSY_WINDOW_MS ? e->intake_n : 0;
        e->intake_n = 0;
        e->intake_window = now;
    }
}

static bool
intake_busy(struct br_engine *e)
{
    intake_roll(e, uv_now(e->loop));
    return e->intake_n + e->intake_prev >= BUSY_EVENTS;
}

static void on_work(uv_timer_t *t);

static void
work(struct br_engine *e)
{
    bool busy;

    /*
     * While the store refuses writes, applying events and starting jobs
     * would only fail: the tick tries the store and takes up from there.
     */
    if (e->closing || br_store_failing(e->store))
        return;
    busy = intake_busy(e);
    if (process_inbox(e, busy ? SLICE_BUSY_MS : SLICE_IDLE_MS))
        uv_timer_start(&e->work, on_work, busy ? BUSY_DELAY_MS : NEXT_ITERATION_MS, 0);
    dispatch(e);
}

static void
on_work(uv_timer_t *t)
{
    work(t->data);
}

static void
undry(struct br_engine *e)
{
    for (size_t i = 0; i < e->n_ups; i++)
        e->ups[i].dry = false;
}

/*
 * Work as soon as the loop is free, or, while webhooks keep coming, at
 * the next slice (a work already due stays where it is).
 */
static void
schedule_work(struct br_engine *e)
{
    if (e->closing)
        return;
    if (!intake_busy(e))
        uv_timer_start(&e->work, on_work, NEXT_ITERATION_MS, 0);
    else if (!uv_is_active((uv_handle_t *)&e->work))
        uv_timer_start(&e->work, on_work, BUSY_DELAY_MS, 0);
}

void
br_engine_kick(struct br_engine *e, size_t events)
{
    intake_roll(e, uv_now(e->loop));
    e->intake_n += (unsigned)events;
    schedule_work(e);
}

/*
 * After the store refused a write: once it takes writes again, writes the
 * job outcomes it refused and puts back in the queue, with the recover
 * mark, the jobs it still shows in flight that no run holds (see
 * unrecorded.h).  0 when nothing waits for the store (any more).
 */
static int
settle(struct br_engine *e)
{
    int64_t ids[64], *running = ids, written, requeued;
    size_t n = 0;
    int rc;

    if (br_store_failures(e->store) == e->settled_failures && br_unrecorded_count(e->unrecorded) == 0 &&
        !br_store_failing(e->store))
        return 0;
    if (e->running > BR_ARRAY_SIZE(ids))
        running = br_malloc(e->running * sizeof(*running));
    for (struct run *r = e->runs; r; r = r->next)
        running[n++] = r->job.id;
    rc = br_unrecorded_settle(e->unrecorded, e->store, running, n, &written, &requeued);
    if (running != ids)
        free(running);
    if (rc)
        return rc;
    e->settled_failures = br_store_failures(e->store);
    if (written || requeued)
        br_info("engine: the store takes writes again: %lld job outcome(s) written, %lld job(s) left in flight "
                "queued again (they look in the tracker before writing)", (long long)written, (long long)requeued);
    return 0;
}

/*
 * Housekeeping, every TICK_MS:
 *  - after the store refused a write, tries it until it takes writes
 *    again, then takes up what it could not record (settle); until then
 *    nothing else is done;
 *  - retries whose backoff expired and anything a kick missed (work);
 *  - retention: texts of chats closed longer ago than retention_days go,
 *    checked every tenth of the retention period, at most once a minute;
 *  - employees' tracker users found by e-mail are confirmed once a week.
 */
static void
on_tick(uv_timer_t *t)
{
    struct br_engine *e = t->data;

    if (settle(e) != 0)
        return;
    undry(e); /* backoffs may have run out, and settle may have freed lanes */
    work(e);
    if (!e->closing)
        refresh_users(e);
    if (e->cfg->retention_days > 0 && !e->closing) {
        int64_t keep = (int64_t)(e->cfg->retention_days * 86400.0 * 1000.0);
        int64_t every = keep / 10 < 60000 ? keep / 10 : 60000;
        int64_t now = br_now_ms();
        if (now - e->last_retention >= every) {
            int64_t n = 0;
            e->last_retention = now;
            if (br_store_forget_before(e->store, now - keep, &n) == 0 && n > 0)
                br_info("retention: removed the texts of %lld message(s) of chats closed over %g days ago",
                        (long long)n, e->cfg->retention_days);
        }
    }
}

int
br_engine_new(struct br_engine **out, uv_loop_t *loop, const struct br_config *cfg, struct br_store *store,
              struct br_http_client *http)
{
    struct br_engine *e = br_calloc(1, sizeof(*e));
    int64_t recovered = 0;
    int rc;

    e->loop = loop;
    e->cfg = cfg;
    e->store = store;
    e->http = http;
    e->unrecorded = br_unrecorded_new();
    e->n_ups = 1 + cfg->n_channels;
    e->ups = br_calloc(e->n_ups, sizeof(*e->ups));
    /* The driver first: nothing is registered with the loop yet if it cannot be made. */
    if ((rc = br_tracker_new(&e->tracker, cfg, NULL)) != 0) {
        br_unrecorded_free(e->unrecorded);
        free(e->ups);
        free(e);
        return rc;
    }
    e->ups[0].name = br_strdup("tracker");
    br_upstream_new(&e->ups[0].up, loop, http, "tracker", cfg->tracker_rps, 1);
    e->tracker->up = e->ups[0].up;
    load_tracker_clock(e);
    for (size_t i = 0; i < cfg->n_channels; i++) {
        struct lane_up *lu = &e->ups[1 + i];
        lu->name = br_asprintf("chatra:%s", cfg->channels[i].name);
        lu->channel = &cfg->channels[i];
        br_upstream_new(&lu->up, loop, http, lu->name, cfg->channels[i].chatra_rps, 2);
    }
    uv_timer_init(loop, &e->work);
    uv_timer_init(loop, &e->tick);
    e->work.data = e;
    e->tick.data = e;
    /* Counted before: when this first write fails, the tick takes it up like any other. */
    e->settled_failures = br_store_failures(store);
    br_store_job_recover_inflight(store, &recovered);
    if (recovered)
        br_info("engine: %lld job(s) were in flight when the bridge stopped; they check before writing again",
                (long long)recovered);
    init_users(e);
    uv_timer_start(&e->tick, on_tick, TICK_MS, TICK_MS);
    uv_timer_init(loop, &e->poll);
    e->poll.data = e;
    if (cfg->poll_interval_s > 0)
        uv_timer_start(&e->poll, on_poll, (uint64_t)cfg->poll_interval_s * 1000, (uint64_t)cfg->poll_interval_s * 1000);
    uv_timer_start(&e->work, on_work, 0, 0);
    *out = e;
    return 0;
}

void
br_engine_status(struct br_engine *e, struct br_buf *out)
{
    br_buf_printf(out, "{\"inbox_pending\":%lld,\"jobs\":{\"queued\":%lld,\"in_flight\":%u,\"dead\":%lld},\"upstreams\":[",
                  (long long)br_store_inbox_pending(e->store), (long long)br_store_job_count(e->store, BR_JOB_QUEUED),
                  e->running, (long long)br_store_job_count(e->store, BR_JOB_DEAD));
    for (size_t i = 0; i < e->n_ups; i++) {
        struct lane_up *lu = &e->ups[i];
        br_buf_printf(out, "%s{\"name\":\"%s\",\"queued\":%zu,\"in_flight\":%zu,\"sent\":%llu,\"paused_until\":%lld,"
                           "\"quota_left\":%ld}",
                      i ? "," : "", lu->name, br_upstream_queued(lu->up), br_upstream_inflight(lu->up),
                      (unsigned long long)br_upstream_sent(lu->up), (long long)br_upstream_paused_until(lu->up),
                      br_upstream_quota_left(lu->up));
    }
    br_buf_puts(out, "]}");
}

static void
closed_one(void *arg)
{
    struct br_engine *e = arg;
    if (--e->pending_closes == 0 && e->close_done)
        e->close_done(e->close_arg);
}

static void
closed_handle(uv_handle_t *h)
{
    closed_one(h->data);
}

void
br_engine_close(struct br_engine *e, void (*done)(void *arg), void *arg)
{
    /* Outcomes still kept go to the store now if it takes them; else the next start recovers those jobs. */
    if (settle(e) != 0 && br_unrecorded_count(e->unrecorded) > 0)
        br_warn("engine: the store still refuses writes: %zu job outcome(s) are lost; those jobs look in the tracker "
                "before writing again at the next start", br_unrecorded_count(e->unrecorded));
    e->closing = 1;
    e->close_done = done;
    e->close_arg = arg;
    e->pending_closes = 3 + (int)e->n_ups;
    uv_close((uv_handle_t *)&e->poll, closed_handle);
    uv_close((uv_handle_t *)&e->work, closed_handle);
    uv_close((uv_handle_t *)&e->tick, closed_handle);
    for (size_t i = 0; i < e->n_ups; i++)
        br_upstream_close(e->ups[i].up, closed_one, e);
}

void
br_engine_free(struct br_engine *e)
{
    if (e == NULL)
        return;
    br_tracker_free(e->tracker);
    br_unrecorded_free(e->unrecorded);
    for (size_t i = 0; e->users && i < e->cfg->n_employees; i++)
        free(e->users[i].user);
    free(e->users);
    free(e->tracker_name);
    for (size_t i = 0; i < e->n_ups; i++) {
        br_upstream_free(e->ups[i].up);
        free(e->ups[i].name);
    }
    free(e->ups);
    free(e);
}
