#include "conversation.h"

#include "activity.h"
#include "chatra_event.h"
#include "config.h"
#include "context.h"
#include "env.h"
#include "log.h"
#include "store.h"
#include "texts.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/*
 * Applying one inbox row runs inside the caller's transaction (the engine
 * applies many to one commit): every store change and every job it makes
 * lands together, or none does.  Chatra's events arrive normalised by
 * chatra_event.c; the keys read here are that module's, not Chatra's.
 */

/* The wait while the tracker is behind (wider than coalesce_ms), else 0: what a task, its contact or a completion waits. */
static int64_t
behind_wait_ms(const struct br_env *env)
{
    int64_t w = br_env_coalesce_wait_ms(env);
    return w > env->cfg->coalesce_ms ? w : 0;
}

static const char *
jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool
br_task_is_active(const struct br_task *t)
{
    return t->state == BR_TASK_PENDING || t->state == BR_TASK_OPEN;
}

/* A look-up of the person in the CRM (enrich), on the CRM's own lane, unless one waits already. */
static int
queue_crm(struct br_env *env, int64_t conv_id)
{
    int rc;

    if (env->crm == NULL || br_queue_waiting(env->queue, 'r', conv_id, "crm"))
        return 0;
    if ((rc = br_store_conv_set_crm_state(env->store, conv_id, BR_CRM_PENDING)))
        return rc;
    return br_env_add_job(env, 'r', "crm", "crm", conv_id, json_object());
}

/* Opens a new task generation: contact (if unknown) then task, in the conversation's lane. */
static int
open_generation(struct br_env *env, struct br_conv *c)
{
    int gen = c->gen + 1;
    int64_t late;
    int rc;

    if ((rc = br_store_task_create(env->store, c->id, gen)) || (rc = br_store_conv_set_gen(env->store, c->id, gen)))
        return rc;
    c->gen = gen;
    if (gen == 1) {
        /* Chatra's full visitor data, fetched beside the contact lookup (its own lane and upstream). */
        char *up = br_asprintf("chatra:%s", c->channel);
        rc = br_store_conv_set_profile(env->store, c->id, BR_PROFILE_PENDING, NULL);
        if (rc == 0)
            rc = br_env_add_job(env, 'c', up, "profile", c->id, json_object());
        free(up);
        if (rc)
            return rc;
    }
    /* The CRM card of the person (enrich), on its own lane: a new task shows it anew. */
    if (env->crm && ((rc = br_store_conv_set_crm_shown(env->store, c->id, NULL)) || (rc = queue_crm(env, c->id))))
        return rc;
    /*
     * While the tracker is behind (the messages' wait is wider than
     * coalesce_ms), the task and its contact wait as long as the first
     * messages do: the task is then made with what came meanwhile (the
     * messages in its description, the e-mail given late on the contact, and
     * completed at once when the visitor has already left), a request or
     * more saved each.  The first job of the lane carries the wait: the
     * others wait behind it.
     */
    late = behind_wait_ms(env);
    if (br_env_has_contacts(env) &&
        (rc = br_queue_add(env->queue, 't', "tracker", "contact", c->id, json_pack("{s:i}", "gen", gen), late)))
        return rc;
    if (br_env_has_contacts(env) && env->cfg->companies && (rc = br_env_add_job(env, 't', "tracker", "company", c->id, json_object())))
        return rc;
    return br_queue_add(env->queue, 't', "tracker", "task", c->id,
                        json_pack("{s:i, s:I}", "gen", gen, "since", (json_int_t)br_now_ms()),
                        br_env_has_contacts(env) ? 0 : late);
}

/*
 * A comment by the bridge itself on the task of (conv, gen): the text is
 * rendered when the job runs (task numbers are known then) from text
 * kind and ctx (taken), to which the conversation's context is added;
 * ref_conv's task becomes task.id.  gen 0: the current generation, and
 * the note is dropped when a new generation opened before it ran.
 */
int
br_conversation_note(struct br_env *env, int64_t conv_id, int gen, enum br_text text, json_t *ctx, int64_t ref_conv)
{
    struct br_conv c = {0};
    int gen_now = br_store_conv_get(env->store, conv_id, &c) == 0 ? c.gen : 0;
    br_conv_dispose(&c);
    json_t *p = json_pack("{s:i, s:s, s:o, s:i}", "gen", gen, "text", br_text_info(text)->key,
                          "ctx", ctx ? ctx : json_object(), "gen_at", gen_now);
    if (ref_conv)
        json_object_set_new(p, "ref_conv", json_integer(ref_conv));
    return br_env_add_job(env, 't', "tracker", "note", conv_id, p);
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

/* ---- the timeline (activity.h): what happened, in the transaction that made it happen ---- */

static const char *
event_name(enum br_chatra_kind kind)
{
    switch (kind) {
    case BR_CHATRA_STARTED: return "chatStarted";
    case BR_CHATRA_TRANSCRIPT: return "chatTranscript";
    default: return "chatFragment";
    }
}

/* A row with the device shown (a bound client id is a secret) under "device"; takes data. */
static int
activity_device(struct br_env *env, int64_t conv_id, const char *type, const char *client_id, json_t *data)
{
    char *shown = br_store_client_shown(client_id);

    json_object_set_new(data, "device", json_string(shown));
    free(shown);
    return br_activity_add(env->store, conv_id, type, data);
}

/* A task's change: action on generation gen's task (its tracker id, when it has one). */
static int
activity_task(struct br_env *env, int64_t conv_id, int gen, const char *action)
{
    struct br_task t = {0};
    int rc = br_store_task_get(env->store, conv_id, gen, &t);

    if (rc == 0)
        rc = br_activity_add(env->store, conv_id, "task",
                             json_pack("{s:s, s:s?, s:i}", "action", action, "task", t.task_id, "gen", gen));
    br_task_dispose(&t);
    return rc;
}

/* A merge (or a device that joined) on the timelines of both sides. */
static int
activity_merge(struct br_env *env, const struct resolution *res, int64_t conv_id, const struct br_chatra_event *ev)
{
    int rc;

    if (res->joined) {
        rc = activity_device(env, conv_id, "merge", ev->client_id,
                             json_pack("{s:I, s:s, s:s?, s:b, s:n}", "merge_id", (json_int_t)res->merge_id, "reason",
                                       "email", "email", ev->email, "verified", ev->email_verified,
                                       "other_conversation"));
        return rc ? rc : activity_device(env, conv_id, "visit", ev->client_id,
                                         json_pack("{s:s}", "note", "device_joined"));
    }
    rc = br_activity_add(env->store, conv_id, "merge",
                         json_pack("{s:I, s:s, s:s?, s:b, s:I}", "merge_id", (json_int_t)res->merge_id, "reason",
                                   "email", "email", ev->email, "verified", ev->email_verified, "other_conversation",
                                   (json_int_t)res->merged_conv));
    if (rc == 0)
        rc = br_activity_add(env->store, res->merged_conv, "merge",
                             json_pack("{s:I, s:s, s:s?, s:b, s:I}", "merge_id", (json_int_t)res->merge_id, "reason",
                                       "email", "email", ev->email, "verified", ev->email_verified,
                                       "other_conversation", (json_int_t)conv_id));
    return rc;
}


/*
 * Finds the conversation of the webhook's device, or makes one.  A
 * device is one Chatra client id; a person has devices and e-mails.  A
 * new device whose e-mail belongs to a known person joins that person's
 * conversation; a device whose e-mail arrives later, and belongs to
 * someone else already, has its conversation joined into the older one.
 */
static int
resolve_conv(struct br_env *env, const struct br_channel *ch, const struct br_chatra_event *ev, struct br_conv *c,
             struct resolution *res)
{
    const char *client_id = ev->client_id;
    const char *email = ev->email;
    bool verified = ev->email_verified;
    bool known_verified = false;
    int64_t pid = 0;
    int rc = br_store_conv_by_client(env->store, ch->name, client_id, c);
    /*
     * Whose e-mail is it?  Under "verified" both sides must be the site's
     * word: an address someone merely typed earlier must not pull a
     * signed-in customer into that thread.
     */
    bool match = email && br_store_person_of_email(env->store, email, &pid, &known_verified) == 0 &&
                 may_merge(ch, verified) && (ch->merge_policy != BR_MERGE_VERIFIED || known_verified);

    memset(res, 0, sizeof(*res));
    if (rc == BR_ENOTFOUND) {
        int64_t id;
        if (match) {
            rc = br_store_conv_of_person(env->store, ch->name, pid, c);
            if (rc == 0) {
                res->joined = true;
                rc = br_store_conv_add_client(env->store, c->id, ch->name, client_id);
                /* Recorded like a merge, so that a wrong join can be undone too. */
                if (rc == 0)
                    rc = br_store_record_join(env->store, c->id, ch->name, client_id, email, verified, &res->merge_id);
            } else if (rc == BR_ENOTFOUND && (rc = br_store_conv_create_for_person(env->store, ch->name, client_id,
                                                                                    pid, &id)) == 0) {
                rc = br_store_conv_get(env->store, id, c);
            }
        }
        if (rc == BR_ENOTFOUND) {
            res->created = true;
            if ((rc = br_store_conv_create(env->store, ch->name, client_id, &id)) == 0)
                rc = br_store_conv_get(env->store, id, c);
        }
    } else if (rc == 0 && match && pid != c->person_id &&
               !br_store_merge_undone(env->store, ch->name, client_id, email)) {
        struct br_conv other = {0};
        if (br_store_conv_of_person(env->store, ch->name, pid, &other) == 0 && other.id != c->id) {
            /* The older thread survives, whichever side the e-mail came from. */
            int64_t survivor = other.id < c->id ? other.id : c->id;
            int64_t merged = other.id < c->id ? c->id : other.id;
            rc = br_store_merge(env->store, survivor, merged, email, verified, &res->merge_id);
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
        rc = br_store_person_add_email(env->store, c->person_id, email, verified);
    return rc;
}

/* The thread that was joined into another: point to the survivor, complete it, drop its contact. */
static int
retire_merged(struct br_env *env, const struct br_channel *ch, const struct resolution *res, int64_t survivor,
              const char *email, bool verified)
{
    struct br_conv mc = {0};
    struct br_task t = {0};
    int rc;

    if ((rc = br_store_conv_get(env->store, res->merged_conv, &mc)))
        return rc;
    if (mc.gen > 0 && br_store_task_get(env->store, mc.id, mc.gen, &t) == 0 && br_task_is_active(&t)) {
        rc = br_conversation_note(env, mc.id, mc.gen, BR_TEXT_CONTINUES_IN,
                      json_pack("{s:s, s:b}", "email", email, "verified", verified), survivor);
        if (rc == 0 && ch->closed_status_id > 0 &&
            (rc = br_store_task_set(env->store, mc.id, mc.gen, NULL, BR_TASK_CLOSING)) == 0)
            rc = br_env_add_job(env, 't', "tracker", "close", mc.id, json_pack("{s:i}", "gen", mc.gen));
    }
    if (rc == 0 && br_env_has_contacts(env))
        rc = br_env_add_job(env, 't', "tracker", "drop_contact", mc.id, json_pack("{s:I}", "survivor", (json_int_t)survivor));
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
note_details(struct br_env *env, const struct br_channel *ch, const struct br_conv *c,
             const struct br_chatra_event *ev)
{
    static const char *const keys[] = {"name", "email", "phone"};
    const char *values[] = {ev->name, ev->email, ev->phone};
    json_t *details = json_object(), *items = json_array();
    int rc;

    /* Each detail with one flag true and its value, as the device's items (context.h). */
    for (size_t i = 0; i < BR_ARRAY_SIZE(keys); i++) {
        const char *v = values[i];
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
    rc = br_conversation_note(env, c->id, c->gen, BR_TEXT_VISITOR_DETAILS, json_pack("{s:o}", "details", details), 0);
    if (rc == 0 && ch->n_custom_fields > 0 && env->tracker->ops->caps.task_fields)
        rc = br_env_add_job(env, 't', "tracker", "fields", c->id, json_pack("{s:i}", "gen", c->gen));
    return rc;
}

/*
 * Whether an agent message is the copy of a reply the bridge sent: by the
 * agent's id, or, for a reply sent with an e-mail, by the agent's e-mail
 * (named by this webhook or an earlier one; the webhook's name for it is
 * remembered for the agent's messages).
 */
static int
agent_echo(struct br_env *env, const struct br_channel *ch, int64_t conv_id, const struct br_chatra_message *m,
           bool *echo)
{
    const char *agent = m->agent_id;
    const char *email = m->agent_email;
    const char *text = m->text;
    char *known = NULL;
    int rc = 0;

    *echo = false;
    if (agent && email)
        rc = br_store_agent_set(env->store, ch->name, agent, email);
    else if (agent && br_store_agent_email(env->store, ch->name, agent, &known) == 0)
        email = known;
    if (rc == 0 && agent)
        rc = br_store_relay_consume(env->store, conv_id, agent, text, echo);
    /* Any reply sent by e-mail may come back as an agent not named: but not as one the config knows by id. */
    if (rc == 0 && !*echo && (email || agent == NULL || br_config_employee_by_agent(env->cfg, agent) == NULL))
        rc = br_store_relay_consume_email(env->store, conv_id, email, text, echo);
    free(known);
    return rc;
}

/*
 * An agent's message in a returning visitor's new chat, while the task of
 * the last one is completed (a greeting, typed before the visitor writes):
 * it belongs to the task the visitor's first message will open, not to
 * the completed one.  It is filed under that next generation and waits,
 * as do the agent's further messages until then (*held); the visitor's
 * message opens the task and sends them first (queue_held).  A visitor who
 * never writes opens no task, and the greeting goes nowhere.
 */
static bool
has_message(void *arg, const struct br_msg *m)
{
    (void)m;
    *(bool *)arg = true;
    return false;
}

static int
held_for_next_task(struct br_env *env, const struct br_channel *ch, const struct br_conv *c, const struct br_task *t,
                   bool new_chat, bool *held)
{
    *held = false;
    if (c->gen == 0 || br_task_is_active(t) || !ch->new_task_if_no_active)
        return 0;
    if (new_chat) {
        *held = true;
        return 0;
    }
    return br_store_msg_pending_from(env->store, c->id, c->gen + 1, 0, has_message, held);
}

/*
 * A new chat begins while an earlier chat's greetings still wait: that
 * visitor never answered them, so they open no task, now or later (the
 * new chat's own greetings wait instead).  The admin page shows them
 * skipped.
 */
static int
drop_unanswered_greetings(struct br_env *env, const struct br_conv *c)
{
    int n = 0;
    int rc = br_store_msg_skip_pending(env->store, c->id, c->gen + 1, &n);

    if (rc == 0 && n > 0)
        br_info("conversation %lld: %d greeting(s) of an earlier chat the visitor never answered go to no task",
                (long long)c->id, n);
    return rc;
}

/*
 * A message's comment job.  A visitor's message waits coalesce_ms (wider
 * while the tracker is behind: batching.h) for the ones typed right after
 * it: they go to the tracker as one comment (its budget is a request a
 * second).  An agent's message goes at once, as its own comment, unless
 * the channel puts it with the visitor's (mirror_agent_messages).
 */
static int
queue_comment(struct br_env *env, const struct br_channel *ch, int64_t conv_id, int64_t mid, const char *type)
{
    bool waits = strcmp(type, "client") == 0 || ch->mirror_agent == BR_MIRROR_AGENT_WITH_VISITOR;

    return br_queue_add(env->queue, 't', "tracker", "comment", conv_id, json_pack("{s:I}", "msg", (json_int_t)mid),
                        waits ? br_env_coalesce_wait_ms(env) : 0);
}

struct held_jobs {
    struct br_env *env;
    const struct br_channel *ch;
    int64_t conv_id, until;
    int rc;
};

static bool
queue_one_held(void *arg, const struct br_msg *m)
{
    struct held_jobs *h = arg;

    if (m->id >= h->until)
        return false;
    h->rc = queue_comment(h->env, h->ch, h->conv_id, m->id, m->type);
    return h->rc == 0;
}

/* The new task's held agent messages (before the visitor's message mid) go to it, in order, before mid. */
static int
queue_held(struct br_env *env, const struct br_channel *ch, const struct br_conv *c, int64_t mid)
{
    struct held_jobs h = {env, ch, c->id, mid, 0};
    int rc = br_store_msg_pending_from(env->store, c->id, c->gen, 0, queue_one_held, &h);

    return rc ? rc : h.rc;
}

/*
 * One message of a Chatra event, filed under the conversation's task (c,
 * t: the next one when the message opens it) and queued for the tracker
 * unless it was seen before or goes nowhere.
 */
static int
file_message(struct br_env *env, const struct br_channel *ch, struct br_conv *c, struct br_task *t,
             const struct br_chatra_message *m, bool new_chat, bool transcript, bool *wrote)
{
    const char *type = m->type;
    const char *text = m->text;
    const char *agent = m->agent_id;
    int64_t at = m->created_at;
    bool is_new, echo = false, held = false;
    int64_t mid;
    int state = BR_MSG_PENDING;
    int rc;

    if (strcmp(type, "agent") == 0) {
        if ((rc = agent_echo(env, ch, c->id, m, &echo)))
            return rc;
        /* A reply's copy is never mirrored back; with mirror_agent_messages "off" no agent message is. */
        if (echo || ch->mirror_agent == BR_MIRROR_AGENT_OFF)
            state = BR_MSG_SKIPPED;
        else if ((rc = held_for_next_task(env, ch, c, t, new_chat && !transcript, &held)))
            return rc;
    }
    if ((rc = br_store_msg_insert(env->store, c->id, held ? c->gen + 1 : c->gen, m->key, type, agent, text, at,
                                  state, &is_new, &mid)))
        return rc;
    /* A transcript's message the bridge missed was typed before the webhooks it follows. */
    if (is_new && !transcript && strcmp(type, "client") == 0)
        *wrote = true;
    /* Its fate (the description, a comment, skipped) is read from the message itself. */
    if (is_new &&
        (rc = br_activity_add(env->store, c->id, "message", json_pack("{s:I}", "message_id", (json_int_t)mid))))
        return rc;
    if (!is_new || state != BR_MSG_PENDING || held)
        return 0;
    if (strcmp(type, "client") == 0 && !transcript && !br_task_is_active(t) && ch->new_task_if_no_active) {
        /*
         * The visitor came back after the task was completed: a new
         * task for the new chat.  Only a message never seen before
         * does this, so a late repeat of the old chat does not.
         */
        br_task_dispose(t);
        if ((rc = open_generation(env, c)) || (rc = br_store_task_get(env->store, c->id, c->gen, t)))
            return rc;
        /* The message was filed under the old generation: move it to the new one. */
        if ((rc = br_store_msg_set_gen(env->store, mid, c->gen)) || (rc = queue_held(env, ch, c, mid)))
            return rc;
    }
    return queue_comment(env, ch, c->id, mid, type);
}

static int
apply_chatra(struct br_env *env, const char *channel_name, const struct br_chatra_event *ev)
{
    const struct br_channel *ch = br_config_channel(env->cfg, channel_name);
    const char *client_id = ev->client_id;
    const char *email = ev->email;
    const char *chat_id = ev->chat_id;
    bool verified = ev->email_verified;
    struct br_conv c = {0};
    struct br_task t = {0};
    struct resolution res;
    bool transcript = ev->kind == BR_CHATRA_TRANSCRIPT;
    bool introduced, new_chat, wrote = false;
    int gen_before;
    char *record = NULL;
    int rc;

    if (ch == NULL) {
        /* The channel was removed from the config after the webhook was accepted. */
        br_warn("inbox: channel %s is no longer configured; event dropped", channel_name);
        return 0;
    }
    if ((rc = resolve_conv(env, ch, ev, &c, &res)))
        goto out;
    {
        /* What follows is about this conversation (br_conversation_apply puts the context back). */
        struct br_log_ctx lc;

        br_log_ctx_make(&lc, ch->name, c.id, 0);
        br_log_ctx_set(&lc);
    }
    if ((rc = activity_device(env, c.id, "webhook", client_id,
                              json_pack("{s:s, s:i}", "event", event_name(ev->kind), "messages", (int)ev->n_msgs))))
        goto out;
    if ((res.joined || res.merged_conv) && (rc = activity_merge(env, &res, c.id, ev)))
        goto out;
    /* The visitor introduced themselves (or changed their details) in a known conversation. */
    introduced = !res.created && c.gen > 0 &&
                 (changed(ev->name, c.name) || changed(email, c.email) || changed(ev->phone, c.phone));
    /*
     * A new chat of a known device: Chatra gives it a new chat id (a
     * repeated webhook has the same one).  Chat ids are kept per device,
     * so a visitor moving between joined devices is not a new visit.
     */
    {
        char *prev = NULL;
        if ((rc = br_store_device_chat(env->store, ch->name, client_id, chat_id, &prev)))
            goto out;
        new_chat = !res.created && !res.joined && !res.merged_conv && c.gen > 0 && chat_id && prev &&
                   strcmp(chat_id, prev) != 0;
        free(prev);
    }
    if (new_chat && (rc = activity_device(env, c.id, "visit", client_id, json_pack("{s:s}", "note", "new_visit"))))
        goto out;
    record = br_context_record(ev->visitor, ev->raw_client);
    /* The device replies go to changes only with a visitor's new message (below). */
    if ((rc = br_store_conv_update_visitor(env->store, c.id, NULL, chat_id, ev->name, email, ev->phone, record)))
        goto out;
    if (c.gen == 0 && (rc = open_generation(env, &c)))
        goto out;
    gen_before = c.gen;
    if ((rc = br_store_task_get(env->store, c.id, c.gen, &t)) != 0)
        goto out;
    if (res.merged_conv && (rc = retire_merged(env, ch, &res, c.id, email, verified)))
        goto out;
    /*
     * A new chat, or a new device joining the person: before its messages,
     * ask whether the task is still active in the tracker.
     */
    if ((new_chat || res.joined) && t.state == BR_TASK_OPEN &&
        (rc = br_env_add_job(env, 't', "tracker", "check", c.id, json_pack("{s:i}", "gen", c.gen))))
        goto out;

    if (new_chat && (rc = drop_unanswered_greetings(env, &c)))
        goto out;
    for (size_t i = 0; i < ev->n_msgs; i++)
        if ((rc = file_message(env, ch, &c, &t, &ev->msgs[i], new_chat, transcript, &wrote)))
            goto out;
    /*
     * Replies go to the device the visitor last wrote from: not to one whose
     * webhook only repeats old messages (a transcript) or brings an agent's.
     */
    if (wrote && (rc = br_store_conv_update_visitor(env->store, c.id, client_id, NULL, NULL, NULL, NULL, NULL)))
        goto out;

    /* Notes for the employees, after the messages they explain. */
    if (res.joined || res.merged_conv) {
        json_t *ctx = json_pack("{s:o, s:s, s:b}", "device", br_context_device(ev->visitor), "email", email, "verified",
                                verified);
        /* A join's note goes where the device's messages went, also when the check opens a new task. */
        if ((rc = br_conversation_note(env, c.id, res.joined ? BR_GEN_CURRENT : c.gen, BR_TEXT_DEVICE_JOINED, ctx, 0)))
            goto out;
    } else if (new_chat && c.gen == gen_before && br_task_is_active(&t)) {
        /*
         * A visit note (gen 0) is dropped when the check before it opened a
         * new task: the new task's text already describes the visit.
         */
        json_t *ctx = json_pack("{s:o, s:{s:s?}}", "device", br_context_device(ev->visitor), "chat", "id", chat_id);
        if ((rc = br_conversation_note(env, c.id, 0, BR_TEXT_NEW_VISIT, ctx, 0)))
            goto out;
    }
    /* Each new chat of a known person is a visit, logged on the contact's card (Planfix). */
    if ((res.joined || new_chat) && env->tracker->ops->caps.contact_comments &&
        (rc = br_env_add_job(env, 't', "tracker", "contact_visit", c.id,
                      json_pack("{s:{s:o, s:{s:s?}}}", "ctx", "device", br_context_device(ev->visitor), "chat", "id",
                                chat_id))))
        goto out;
    /* Without a contact card (Redmine) a joining device's visit, its pages, is a note on the task. */
    if (res.joined && !env->tracker->ops->caps.contact_comments &&
        (rc = br_conversation_note(env, c.id, BR_GEN_CURRENT, BR_TEXT_NEW_VISIT,
                                   json_pack("{s:o, s:{s:s?}}", "device", br_context_device(ev->visitor), "chat",
                                             "id", chat_id), 0)))
        goto out;
    /* A new e-mail of the person (typed, set by the site, or a merge's): the CRM is asked again. */
    if (c.gen > 0 && (res.merged_conv || res.joined || (email && changed(email, c.email))) &&
        (rc = queue_crm(env, c.id)))
        goto out;
    if (introduced && br_env_has_contacts(env) &&
        (rc = br_env_add_job(env, 't', "tracker", "update_contact", c.id, json_object())))
        goto out;
    if (introduced && !br_env_has_contacts(env) && (rc = note_details(env, ch, &c, ev)))
        goto out;

    if (transcript && ch->close_on_leave) {
        br_task_dispose(&t);
        if ((rc = br_store_task_get(env->store, c.id, c.gen, &t)))
            goto out;
        if (br_task_is_active(&t)) {
            /*
             * While the tracker is behind, the completion waits as long as
             * a message would: the messages of other chats, which the
             * visitors wait to see, go before it.
             */
            int64_t late = behind_wait_ms(env);
            if ((rc = br_store_task_set(env->store, c.id, c.gen, NULL, BR_TASK_CLOSING)) ||
                (rc = br_queue_add(env->queue, 't', "tracker", "close", c.id, json_pack("{s:i}", "gen", c.gen), late)))
                goto out;
        }
    }
out:
    free(record);
    br_task_dispose(&t);
    br_conv_dispose(&c);
    return rc;
}

static int
apply_tracker(struct br_env *env, json_t *ev)
{
    const char *task_id = jstr(ev, "task");
    struct br_task t = {0};
    int rc;

    if (task_id == NULL)
        return 0;
    rc = br_store_task_by_tracker_id(env->store, task_id, &t);
    if (rc == BR_ENOTFOUND) {
        br_info("tracker webhook: task %s is not a chat task; ignored", task_id);
        return 0;
    }
    if (rc)
        return rc;
    rc = br_activity_add(env->store, t.conv_id, "webhook", json_pack("{s:s, s:s}", "event", "tracker", "task", task_id));
    /* One waiting fetch per conversation is enough: it reads every new comment. */
    if (rc == 0)
        rc = br_env_add_fetch(env, t.conv_id, task_id);
    br_task_dispose(&t);
    return rc;
}

static int apply_row(struct br_env *env, const struct br_inbox_row *row);

/* Applies one inbox row inside the caller's transaction, its log lines naming its channel. */
int
br_conversation_apply(struct br_env *env, const struct br_inbox_row *row)
{
    struct br_log_ctx saved, lc;
    int rc = 0;

    br_log_ctx_get(&saved);
    br_log_ctx_make(&lc, row->channel, 0, 0);
    br_log_ctx_set(&lc);
    rc = apply_row(env, row);
    br_log_ctx_set(&saved);
    return rc;
}

static int
apply_row(struct br_env *env, const struct br_inbox_row *row)
{
    struct br_chatra_event ev;
    json_error_t je;
    json_t *tev;
    char err[200];
    int rc = 0;

    if (row->kind == BR_INBOX_CHATRA || row->kind == BR_INBOX_CHATRA_RAW) {
        /* The bridge's record of the event; a row of an older version holds the webhook as received. */
        if (row->kind == BR_INBOX_CHATRA ? br_chatra_event_load(row->body, &ev) != 0
                                         : br_chatra_event_parse(row->body, strlen(row->body), &ev, err,
                                                                 sizeof(err)) != 0) {
            /* Checked at the door, so only a bridge of another version could disagree. */
            br_error("inbox %lld: the stored event no longer reads as one; skipped", (long long)row->id);
            return br_store_inbox_done(env->store, row->id);
        }
        br_chatra_event_visitor(&ev); /* made now: apply_chatra reads ev->visitor */
        rc = apply_chatra(env, row->channel, &ev);
        br_chatra_event_dispose(&ev);
    } else if ((tev = json_loads(row->body, 0, &je)) == NULL) {
        br_error("inbox %lld: stored event is not JSON (%s); skipped", (long long)row->id, je.text);
    } else {
        rc = apply_tracker(env, tev);
        json_decref(tev);
    }
    return rc == 0 ? br_store_inbox_done(env->store, row->id) : rc;
}

/* ---- task and message states: every change of them is made here ---------- */

int
br_conversation_reopen(struct br_env *env, struct br_conv *c, int old_gen)
{
    struct br_store *st = env->store;
    int gen = c->gen + 1;
    int rc;

    if (c->gen != old_gen)
        return 0; /* already moved on */
    if ((rc = br_store_begin(st)))
        return rc;
    if ((rc = br_store_task_set(st, c->id, old_gen, NULL, BR_TASK_CLOSED)) ||
        (rc = br_store_task_create(st, c->id, gen)) || (rc = br_store_conv_set_gen(st, c->id, gen)) ||
        (rc = br_store_msg_move_pending(st, c->id, old_gen, gen)) ||
        (rc = activity_task(env, c->id, old_gen, "reopened")) || (rc = br_store_commit(st))) {
        br_store_rollback(st);
        return rc;
    }
    c->gen = gen;
    return 0;
}

static bool
visitor_message(void *arg, const struct br_msg *m)
{
    *(bool *)arg = strcmp(m->type, "client") == 0;
    return !*(bool *)arg;
}

int
br_conversation_gone_before_the_visitor_wrote(struct br_env *env, int64_t conv_id, int gen, bool *held)
{
    struct br_store *st = env->store;
    bool visitor = false;
    int rc;

    *held = false;
    if ((rc = br_store_begin(st)))
        return rc;
    rc = br_store_msg_pending_from(st, conv_id, gen, 0, visitor_message, &visitor);
    if (rc == 0 && !visitor && (rc = br_store_task_set(st, conv_id, gen, NULL, BR_TASK_CLOSED)) == 0 &&
        (rc = br_store_msg_move_pending(st, conv_id, gen, gen + 1)) == 0)
        rc = activity_task(env, conv_id, gen, "closed");
    rc = br_store_end(st, rc);
    *held = rc == 0 && !visitor;
    return rc;
}

int
br_conversation_task_slot(struct br_env *env, int64_t conv_id, int gen)
{
    return BR_STORE_TX(env->store, br_store_task_create(env->store, conv_id, gen));
}

int
br_conversation_task_made(struct br_env *env, int64_t conv_id, int gen, const char *task_id, json_t *carried,
                          const char *prev_task, bool closed)
{
    struct br_store *st = env->store;
    struct br_task t = {0};
    int state = BR_TASK_OPEN;
    size_t i;
    json_t *v;
    int rc;

    /* A transcript may have arrived meanwhile: keep its "closing" mark. */
    if (br_store_task_get(st, conv_id, gen, &t) == 0 && t.state == BR_TASK_CLOSING)
        state = BR_TASK_CLOSING;
    br_task_dispose(&t);
    if (closed)
        state = BR_TASK_CLOSED;
    rc = br_store_begin(st);
    if (rc == 0)
        rc = br_store_task_set(st, conv_id, gen, task_id, state);
    json_array_foreach(carried, i, v) {
        if (rc == 0)
            rc = br_store_msg_set_state(st, json_integer_value(v), BR_MSG_MIRRORED, NULL);
    }
    if (rc == 0)
        rc = activity_task(env, conv_id, gen, "created");
    /* Made completed: the timeline says both, as if the close had followed. */
    if (rc == 0 && closed)
        rc = activity_task(env, conv_id, gen, "closed");
    /* The description does not link the previous task: a comment does, in the same commit. */
    if (rc == 0 && prev_task)
        rc = br_conversation_note(env, conv_id, gen, BR_TEXT_PREVIOUS_TASK,
                                  json_pack("{s:{s:s}}", "previous_task", "id", prev_task), 0);
    return br_store_end(st, rc);
}

int
br_conversation_task_joined(struct br_env *env, int64_t conv_id, int gen, const char *task_id)
{
    int rc = br_store_begin(env->store);

    if (rc == 0)
        rc = br_store_task_set(env->store, conv_id, gen, task_id, BR_TASK_OPEN);
    if (rc == 0)
        rc = activity_task(env, conv_id, gen, "joined");
    return br_store_end(env->store, rc);
}

int
br_conversation_task_closed(struct br_env *env, int64_t conv_id, int gen)
{
    int rc = br_store_begin(env->store);

    if (rc == 0)
        rc = br_store_task_set(env->store, conv_id, gen, NULL, BR_TASK_CLOSED);
    if (rc == 0)
        rc = activity_task(env, conv_id, gen, "closed");
    return br_store_end(env->store, rc);
}

int
br_conversation_msg_to_gen(struct br_env *env, int64_t msg_id, int gen)
{
    return BR_STORE_TX(env->store, br_store_msg_set_gen(env->store, msg_id, gen));
}

int
br_conversation_msgs_mirrored(struct br_env *env, int64_t msg_id, json_t *more, const char *comment_id)
{
    size_t i;
    json_t *v;
    int rc = 0;

    if (msg_id)
        rc = br_store_msg_set_state(env->store, msg_id, BR_MSG_MIRRORED, comment_id);
    json_array_foreach(more, i, v) {
        if (rc == 0)
            rc = br_store_msg_set_state(env->store, json_integer_value(v), BR_MSG_MIRRORED, comment_id);
    }
    return rc;
}
