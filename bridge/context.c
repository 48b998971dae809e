#include "context.h"

#include "templates/tpl.h"
#include "texts.h"

#include <stdlib.h>
#include <string.h>

/* The first value among several candidate keys: Chatra's visitor keys are not documented. */
static json_t *
first_of(json_t *obj, const char *const *paths)
{
    for (size_t i = 0; paths[i]; i++) {
        json_t *v = obj;
        char *copy = br_strdup(paths[i]);
        char *save = NULL;
        for (char *seg = strtok_r(copy, ".", &save); seg && v; seg = strtok_r(NULL, ".", &save))
            v = json_is_object(v) ? json_object_get(v, seg) : NULL;
        free(copy);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return v;
    }
    return NULL;
}

/* The webhook's client object first, then what GET /clients/{id} told (profile, may be NULL). */
static void
set_first(json_t *dst, const char *key, json_t *raw, json_t *profile, const char *const *paths)
{
    json_t *v = first_of(raw, paths);
    if (v == NULL && profile)
        v = first_of(profile, paths);
    if (json_is_string(v) || json_is_number(v))
        json_object_set(dst, key, v);
}

static json_t *
pages_of(json_t *raw)
{
    static const char *const paths[] = {"pages", "visitedPages", "lastVisitedPages", "basicInfo.pages",
                                        "pagesViewed", NULL};
    json_t *v = first_of(raw, paths), *out, *p;
    size_t i;

    if (!json_is_array(v))
        return NULL;
    out = json_array();
    json_array_foreach(v, i, p) {
        if (i >= 50)
            break;
        if (json_is_string(p)) {
            json_array_append_new(out, json_pack("{s:O}", "url", p));
        } else if (json_is_object(p)) {
            json_t *page = json_object();
            static const char *const url[] = {"url", "href", "link", NULL};
            static const char *const title[] = {"title", "name", NULL};
            set_first(page, "url", p, NULL, url);
            set_first(page, "title", p, NULL, title);
            json_array_append_new(out, page);
        }
    }
    return out;
}

static const char *const city_keys[] = {"city", "location.city", "geo.city", "basicInfo.city", NULL};
static const char *const country_keys[] = {"country", "location.country", "geo.country", "basicInfo.country", NULL};
static const char *const device_keys[] = {"device", "deviceType", "basicInfo.device", NULL};
static const char *const browser_keys[] = {"browser", "basicInfo.browser", "userAgent", NULL};
static const char *const os_keys[] = {"os", "platform", "basicInfo.os", NULL};
static const char *const ip_keys[] = {"ip", "ipAddress", "basicInfo.ip", NULL};

json_t *
br_context_visitor(const struct br_conv *c, json_t *raw, json_t *profile)
{
    static const char *const source[] = {"referrer", "source", "referer", "utm_source", "basicInfo.referrer", NULL};
    static const char *const notes[] = {"notes", NULL};
    static const char *const dname[] = {"displayedName", NULL};
    json_t *v = json_object(), *pages;

    if (c->name)
        json_object_set_new(v, "name", json_string(c->name));
    if (c->email)
        json_object_set_new(v, "email", json_string(c->email));
    if (c->phone)
        json_object_set_new(v, "phone", json_string(c->phone));
    set_first(v, "displayed_name", raw, profile, dname);
    set_first(v, "notes", raw, profile, notes);
    set_first(v, "city", raw, profile, city_keys);
    set_first(v, "country", raw, profile, country_keys);
    set_first(v, "source", raw, profile, source);
    set_first(v, "device", raw, profile, device_keys);
    set_first(v, "browser", raw, profile, browser_keys);
    set_first(v, "os", raw, profile, os_keys);
    set_first(v, "ip", raw, profile, ip_keys);
    if ((pages = pages_of(raw)) != NULL || (profile && (pages = pages_of(profile)) != NULL))
        json_object_set_new(v, "pages", pages);
    /* Details the visitor gave only to Chatra (its profile) fill the gaps. */
    {
        static const char *const name[] = {"name", NULL};
        static const char *const email[] = {"email", NULL};
        static const char *const phone[] = {"phone", NULL};
        if (c->name == NULL)
            set_first(v, "name", NULL, profile, name);
        if (c->email == NULL)
            set_first(v, "email", NULL, profile, email);
        if (c->phone == NULL)
            set_first(v, "phone", NULL, profile, phone);
    }
    if (json_is_object(json_object_get(raw, "info")))
        json_object_set(v, "info", json_object_get(raw, "info"));
    else if (json_is_object(json_object_get(raw, "integrationData")))
        json_object_set(v, "info", json_object_get(raw, "integrationData"));
    return v;
}

json_t *
br_context_device(json_t *raw)
{
    /* The order the default texts list them in: "browser Chrome, OS Windows, IP 1.2.3.4, city Berlin". */
    static const char *const names[] = {"browser", "os", "device", "ip", "city", "country"};
    static const char *const *const keys[] = {browser_keys, os_keys, device_keys, ip_keys, city_keys, country_keys};
    json_t *d = json_object(), *items = json_array(), *pages;

    for (size_t i = 0; i < BR_ARRAY_SIZE(names); i++) {
        json_t *v, *item;
        set_first(d, names[i], raw, NULL, keys[i]);
        if ((v = json_object_get(d, names[i])) == NULL)
            continue;
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
    if ((pages = pages_of(raw)) != NULL)
        json_object_set_new(d, "pages", pages);
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
            json_t *ctx = json_pack("{s:{s:s?}, s:O?}", "agent", "id", m->agent_id, "channel",
                                    json_object_get(base, "channel"));
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
    br_texts_set_time(cfg, o, m->created_at);
    br_buf_dispose(&html);
    free(author);
    return o;
}

json_t *
br_context_conversation(const struct br_config *cfg, const struct br_channel *ch, const struct br_conv *c)
{
    json_error_t je;
    json_t *raw = c->visitor_json ? json_loads(c->visitor_json, 0, &je) : NULL;
    json_t *profile = c->profile_json ? json_loads(c->profile_json, 0, &je) : NULL;
    json_t *ctx = json_object();

    (void)cfg;
    if (raw == NULL)
        raw = json_object();
    json_object_set_new(ctx, "visitor", br_context_visitor(c, raw, profile));
    json_object_set_new(ctx, "chatra", json_pack("{s:o}", "client", raw));
    if (profile)
        json_object_set_new(json_object_get(ctx, "chatra"), "profile", profile);
    if (c->contact_id)
        json_object_set_new(ctx, "contact", json_pack("{s:s}", "id", c->contact_id));
    json_object_set_new(ctx, "channel", json_pack("{s:s}", "name", ch->name));
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

static void
collect_msg(void *arg, const struct br_msg *m)
{
    struct collect *cc = arg;

    if (m->state == BR_MSG_SKIPPED)
        return;
    if (cc->ids) {
        if (m->state != BR_MSG_PENDING)
            return;
        json_array_append_new(cc->ids, json_integer(m->id));
    }
    json_array_append_new(cc->arr, br_context_message(cc->cfg, cc->store, cc->ch, cc->base, m));
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
