#include "context.h"

#include "chatra_event.h"
#include "templates/tpl.h"
#include "texts.h"

#include <stdlib.h>
#include <string.h>

/*
 * A stored visitor record (conversation.visitor_json, profile_json): the
 * bridge's {"visitor": ..., "raw_client": ...}, or, from a version before
 * it, Chatra's client object itself (made a record now, by chatra_event.c:
 * only it knows Chatra's keys).  *raw gets the raw client (a new reference).
 */
static json_t *
record_of(const char *json, bool profile, json_t **raw)
{
    json_error_t je;
    json_t *o = json ? json_loads(json, 0, &je) : NULL, *v;

    *raw = NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    if (json_is_object(json_object_get(o, "visitor")) && json_is_object(json_object_get(o, "raw_client"))) {
        v = json_incref(json_object_get(o, "visitor"));
        *raw = json_incref(json_object_get(o, "raw_client"));
        json_decref(o);
        return v;
    }
    *raw = o;
    return br_chatra_visitor(o, profile);
}

char *
br_context_record(json_t *visitor, json_t *raw)
{
    json_t *o = json_pack("{s:O, s:O}", "visitor", visitor, "raw_client", raw);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* The webhook's value first, then what GET /clients/{id} told (profile, may be NULL). */
static void
set_either(json_t *dst, const char *key, json_t *rec, json_t *profile)
{
    json_t *v = json_object_get(rec, key);
    if (v == NULL && profile)
        v = json_object_get(profile, key);
    if (v)
        json_object_set(dst, key, v);
}

json_t *
br_context_visitor(const struct br_conv *c, json_t *rec, json_t *profile)
{
    static const char *const keys[] = {"displayed_name", "notes", "city", "country", "source",
                                       "device", "browser", "os", "ip", "pages", "info"};
    json_t *v = json_object();

    if (c->name)
        json_object_set_new(v, "name", json_string(c->name));
    if (c->email)
        json_object_set_new(v, "email", json_string(c->email));
    if (c->phone)
        json_object_set_new(v, "phone", json_string(c->phone));
    for (size_t i = 0; i < BR_ARRAY_SIZE(keys); i++)
        set_either(v, keys[i], rec, profile);
    /* Details the visitor gave only to Chatra (its profile) fill the gaps. */
    if (c->name == NULL)
        set_either(v, "name", NULL, profile);
    if (c->email == NULL)
        set_either(v, "email", NULL, profile);
    if (c->phone == NULL)
        set_either(v, "phone", NULL, profile);
    return v;
}

json_t *
br_context_device(json_t *visitor)
{
    /* The order the default texts list them in: "browser Chrome, OS Windows, IP 1.2.3.4, city Berlin". */
    static const char *const names[] = {"browser", "os", "device", "ip", "city", "country"};
    json_t *d = json_object(), *items = json_array(), *pages;

    for (size_t i = 0; i < BR_ARRAY_SIZE(names); i++) {
        json_t *v = json_object_get(visitor, names[i]), *item;
        if (v == NULL)
            continue;
        json_object_set(d, names[i], v);
        /*
         * Every flag is present (false for the others), so that inside the
         * item {{#device}} means this item's flag, never the outer object.
         */
        item = json_object();
        for (size_t k = 0; k < BR_ARRAY_SIZE(names); k++)
            json_object_set_new(item, names[k], json_boolean(k == i));
        json_object_set(item, "value", v);
        json_object_set_new(item, "first", json_boolean(json_array_size(items) == 0));
        json_array_append_new(items, item);
    }
    json_object_set_new(d, "items", items);
    if ((pages = json_object_get(visitor, "pages")) != NULL)
        json_object_set(d, "pages", pages);
    return d;
}

const struct br_employee *
br_context_agent_employee(const struct br_config *cfg, struct br_store *store, const struct br_channel *ch,
                          const char *agent_id)
{
    const struct br_employee *emp = agent_id ? br_config_employee_by_agent(cfg, agent_id) : NULL;
    char *email = NULL;

    if (emp == NULL && agent_id && store && ch && br_store_agent_email(store, ch->name, agent_id, &email) == 0)
        emp = br_config_employee_by_email(cfg, email);
    free(email);
    return emp;
}

json_t *
br_context_message(const struct br_config *cfg, struct br_store *store, const struct br_channel *ch,
                   const json_t *base, const struct br_msg *m)
{
    json_t *o = json_object();
    struct br_buf html;
    char *author = NULL;

    if (strcmp(m->type, "agent") == 0) {
        const struct br_employee *emp = br_context_agent_employee(cfg, store, ch, m->agent_id);
        if (emp) {
            author = br_strdup(emp->name);
        } else {
            json_t *ctx = json_pack("{s:{s:s?}, s:O?, s:O?}", "agent", "id", m->agent_id, "channel",
                                    json_object_get(base, "channel"), "visitor", json_object_get(base, "visitor"));
            author = br_texts_string(cfg, BR_TEXT_AGENT_LABEL, ctx);
            json_decref(ctx);
        }
    } else {
        author = br_texts_string(cfg, BR_TEXT_VISITOR_LABEL, base);
    }
    /* text_html keeps the visitor's line breaks in HTML texts ({{{text_html}}}). */
    br_buf_init(&html, 256 * 1024);
    br_tpl_html_escape(&html, m->text, strlen(m->text), 1);
    json_object_set_new(o, "author", json_string(author));
    json_object_set_new(o, "text", json_string(m->text));
    json_object_set_new(o, "text_html", json_string(html.data ? html.data : ""));
    json_object_set_new(o, "type", json_string(m->type));
    /* Flags, for a template that shows only one side: {{#is_visitor}}...{{/is_visitor}}. */
    json_object_set_new(o, "is_visitor", json_boolean(strcmp(m->type, "client") == 0));
    json_object_set_new(o, "is_agent", json_boolean(strcmp(m->type, "agent") == 0));
    /* Who typed an agent's line, for a comment that carries both sides (mirror_agent_messages "with_visitor"). */
    if (strcmp(m->type, "agent") == 0)
        json_object_set_new(o, "agent", json_pack("{s:s?, s:s?}", "id", m->agent_id, "name", author));
    br_texts_set_time(cfg, o, m->created_at);
    br_buf_dispose(&html);
    free(author);
    return o;
}

json_t *
br_context_conversation(const struct br_config *cfg, const struct br_channel *ch, const struct br_conv *c)
{
    json_t *raw = NULL, *raw_profile = NULL;
    json_t *rec = record_of(c->visitor_json, false, &raw);
    json_t *profile = record_of(c->profile_json, true, &raw_profile);
    json_t *ctx = json_object();

    (void)cfg;
    json_object_set_new(ctx, "visitor", br_context_visitor(c, rec, profile));
    json_object_set_new(ctx, "chatra", json_pack("{s:o}", "client", raw ? raw : json_object()));
    if (raw_profile)
        json_object_set_new(json_object_get(ctx, "chatra"), "profile", raw_profile);
    if (c->contact_id)
        json_object_set_new(ctx, "contact", json_pack("{s:s}", "id", c->contact_id));
    json_object_set_new(ctx, "channel", json_pack("{s:s}", "name", ch->name));
    json_decref(rec);
    json_decref(profile);
    return ctx;
}

struct collect {
    const struct br_config *cfg;
    struct br_store *store;
    const struct br_channel *ch;
    const json_t *base;  /* the conversation's context, for the author labels */
    json_t *arr;
    json_t *ids;     /* when set: only the messages still waiting for the tracker, and their ids */
};

static bool
collect_msg(void *arg, const struct br_msg *m)
{
    struct collect *cc = arg;

    if (m->state == BR_MSG_SKIPPED)
        return true;
    if (cc->ids) {
        if (m->state != BR_MSG_PENDING)
            return true;
        json_array_append_new(cc->ids, json_integer(m->id));
    }
    json_array_append_new(cc->arr, br_context_message(cc->cfg, cc->store, cc->ch, cc->base, m));
    return true;
}

json_t *
br_context_task(const struct br_config *cfg, struct br_store *store, const struct br_channel *ch,
                const struct br_conv *c, int gen, json_t *ids)
{
    json_t *ctx = br_context_conversation(cfg, ch, c), *chat = json_object();
    struct collect cc = {cfg, store, ch, ctx, json_array(), ids};

    if (c->chat_id)
        json_object_set_new(chat, "id", json_string(c->chat_id));
    br_store_msg_each(store, c->id, gen, collect_msg, &cc);
    if (json_array_size(cc.arr) > 0)
        json_object_set(chat, "started_at", json_object_get(json_array_get(cc.arr, 0), "time"));
    json_object_set_new(chat, "messages", cc.arr);
    json_object_set_new(ctx, "chat", chat);
    if (gen > 1) {
        struct br_task prev = {0};
        struct collect pm = {cfg, store, ch, ctx, json_array(), NULL};
        json_t *p = json_object();
        if (br_store_task_get(store, c->id, gen - 1, &prev) == 0 && prev.task_id)
            json_object_set_new(p, "id", json_string(prev.task_id));
        br_store_msg_each(store, c->id, gen - 1, collect_msg, &pm);
        json_object_set_new(p, "messages", pm.arr);
        json_object_set_new(ctx, "previous_task", p);
        br_task_dispose(&prev);
    }
    return ctx;
}
