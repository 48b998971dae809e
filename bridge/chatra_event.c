#include "chatra_event.h"

#include "email.h"

#include "bridge/br.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID_LEN 256
#define MAX_TEXT_LEN (64 * 1024)
#define MAX_MESSAGES 1000

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return BR_EINVAL;
}

static uint64_t
fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static json_t *
normalise_email(json_t *v)
{
    char *norm;
    json_t *out;

    if (!json_is_string(v) || (norm = br_email_normalize(json_string_value(v), json_string_length(v))) == NULL)
        return NULL;
    out = json_string(norm);
    free(norm);
    return out;
}

static int64_t
get_time(json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* Out of range is as unknown as unparsable (and the cast would be undefined). */
        return (d > -9.2e18 && d < 9.2e18) ? (int64_t)d : 0;
    }
    if (json_is_string(v)) {
        char *end;
        long long n = strtoll(json_string_value(v), &end, 10);
        if (*end == '\0')
            return n;
    }
    return 0;
}

/*
 * The e-mail of a message's agent: the message's own agentEmail, or the
 * entry of the webhook's agents[] with its agentId (Chatra's keys for it
 * are not documented: "email" or "agentEmail").
 */
static json_t *
agent_email(json_t *m, json_t *agents)
{
    json_t *id = json_object_get(m, "agentId");
    json_t *v = normalise_email(json_object_get(m, "agentEmail"));
    size_t i;
    json_t *a;

    if (v || !json_is_string(id))
        return v;
    json_array_foreach(agents, i, a) {
        json_t *aid = json_object_get(a, "id");
        if (json_is_string(aid) && json_equal(aid, id)) {
            if ((v = normalise_email(json_object_get(a, "email"))) == NULL)
                v = normalise_email(json_object_get(a, "agentEmail"));
            return v;
        }
    }
    return NULL;
}

static char *
dup_str(json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0 ? br_strndup(json_string_value(v), json_string_length(v))
                                                          : NULL;
}

/* One of Chatra's messages; 0 also when it is dropped (system, empty). */
static int
map_message(json_t *m, size_t i, json_t *agents, struct br_chatra_event *ev, char *err, size_t errlen)
{
    struct br_chatra_message *n;
    json_t *text, *type, *id;
    const char *t;
    char key[80];
    int64_t at;

    if (!json_is_object(m))
        return fail(err, errlen, "messages[%zu] must be an object", i);
    type = json_object_get(m, "type");
    if (type && !json_is_string(type))
        return fail(err, errlen, "messages[%zu].type must be a string", i);
    t = type ? json_string_value(type) : "client";
    if (strcmp(t, "system") == 0)
        return 0;
    if (strcmp(t, "client") != 0 && strcmp(t, "agent") != 0)
        return 0; /* an unknown kind of message is not the visitor's nor an agent's words */
    /* Chatra has used both keys; "text" wins when both are present. */
    text = json_object_get(m, "text");
    if (text == NULL || json_is_null(text) || (json_is_string(text) && json_string_length(text) == 0))
        text = json_object_get(m, "message");
    if (text == NULL || json_is_null(text))
        return 0;
    if (!json_is_string(text))
        return fail(err, errlen, "messages[%zu].text must be a string", i);
    if (json_string_length(text) == 0)
        return 0;
    if (json_string_length(text) > MAX_TEXT_LEN)
        return fail(err, errlen, "messages[%zu].text is longer than %d bytes", i, MAX_TEXT_LEN);
    id = json_object_get(m, "id");
    if (id && !json_is_null(id) && !json_is_string(id))
        return fail(err, errlen, "messages[%zu].id must be a string", i);
    if (json_is_string(id) && json_string_length(id) > MAX_ID_LEN)
        return fail(err, errlen, "messages[%zu].id is too long", i);
    at = get_time(json_object_get(m, "createdAt"));

    n = &ev->msgs[ev->n_msgs++];
    memset(n, 0, sizeof(*n));
    if (json_is_string(id) && json_string_length(id) > 0) {
        n->key = br_asprintf("id:%s", json_string_value(id));
        n->id = dup_str(id);
    } else {
        uint64_t h = 1469598103934665603ULL;
        char ts[32];
        snprintf(ts, sizeof(ts), "|%lld|", (long long)at);
        h = fnv1a(h, t, strlen(t));
        h = fnv1a(h, ts, strlen(ts));
        h = fnv1a(h, json_string_value(text), json_string_length(text));
        snprintf(key, sizeof(key), "h:%016llx", (unsigned long long)h);
        n->key = br_strdup(key);
    }
    n->type = br_strdup(t);
    n->text = br_strndup(json_string_value(text), json_string_length(text));
    n->agent_id = dup_str(json_object_get(m, "agentId"));
    n->agent_name = dup_str(json_object_get(m, "agentName"));
    if (strcmp(t, "agent") == 0) {
        json_t *email = agent_email(m, agents);
        n->agent_email = email ? br_strdup(json_string_value(email)) : NULL;
        json_decref(email);
    }
    n->created_at = at;
    return 0;
}

/* ---- the visitor: Chatra's visitor keys are not documented --------------- */

/* The first value among several candidate keys (dotted paths). */
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

static void
set_first(json_t *dst, const char *key, json_t *src, const char *const *paths)
{
    json_t *v = first_of(src, paths);
    if (json_is_string(v) || json_is_number(v))
        json_object_set(dst, key, v);
}

static json_t *
pages_of(json_t *raw)
{
    static const char *const paths[] = {"pages", "visitedPages", "lastVisitedPages", "basicInfo.pages",
                                        "pagesViewed", NULL};
    static const char *const url[] = {"url", "href", "link", NULL};
    static const char *const title[] = {"title", "name", NULL};
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
            set_first(page, "url", p, url);
            set_first(page, "title", p, title);
            json_array_append_new(out, page);
        }
    }
    return out;
}

json_t *
br_chatra_visitor(json_t *client, bool with_contact)
{
    static const struct {
        const char *key;
        const char *const paths[6];
    } fields[] = {
        {"displayed_name", {"displayedName", NULL}},
        {"notes", {"notes", NULL}},
        {"city", {"city", "location.city", "geo.city", "basicInfo.city", NULL}},
        {"country", {"country", "location.country", "geo.country", "basicInfo.country", NULL}},
        {"source", {"referrer", "source", "referer", "utm_source", "basicInfo.referrer", NULL}},
        {"device", {"device", "deviceType", "basicInfo.device", NULL}},
        {"browser", {"browser", "basicInfo.browser", "userAgent", NULL}},
        {"os", {"os", "platform", "basicInfo.os", NULL}},
        {"ip", {"ip", "ipAddress", "basicInfo.ip", NULL}},
    };
    static const char *const contact[] = {"name", "email", "phone"};
    json_t *v = json_object(), *pages;

    if (!json_is_object(client))
        return v;
    for (size_t i = 0; i < BR_ARRAY_SIZE(fields); i++)
        set_first(v, fields[i].key, client, fields[i].paths);
    if ((pages = pages_of(client)) != NULL)
        json_object_set_new(v, "pages", pages);
    if (json_is_object(json_object_get(client, "info")))
        json_object_set(v, "info", json_object_get(client, "info"));
    else if (json_is_object(json_object_get(client, "integrationData")))
        json_object_set(v, "info", json_object_get(client, "integrationData"));
    for (size_t i = 0; with_contact && i < BR_ARRAY_SIZE(contact); i++) {
        const char *const one[] = {contact[i], NULL};
        set_first(v, contact[i], client, one);
    }
    return v;
}

#define MAX_DEPTH 32

/* Deeper than any real webhook: a bomb of nested arrays is refused, not stored. */
static int
too_deep(json_t *v, int depth)
{
    size_t i;
    const char *k;
    json_t *x;

    if (depth > MAX_DEPTH)
        return 1;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            if (too_deep(x, depth + 1))
                return 1;
        }
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, x) {
            if (too_deep(x, depth + 1))
                return 1;
        }
    }
    return 0;
}

void
br_chatra_event_dispose(struct br_chatra_event *ev)
{
    if (ev == NULL)
        return;
    for (size_t i = 0; i < ev->n_msgs; i++) {
        struct br_chatra_message *m = &ev->msgs[i];
        free(m->key);
        free(m->id);
        free(m->type);
        free(m->text);
        free(m->agent_id);
        free(m->agent_name);
        free(m->agent_email);
    }
    free(ev->msgs);
    free(ev->client_id);
    free(ev->chat_id);
    free(ev->name);
    free(ev->email);
    free(ev->phone);
    json_decref(ev->visitor);
    json_decref(ev->raw_client);
    free(ev->raw_client_text);
    memset(ev, 0, sizeof(*ev));
}

/* ---- the client object's own bytes ------------------------------------------ */

/*
 * The record keeps Chatra's client object for templates (chatra.client).
 * Writing it out again costs as much as parsing the body did; its bytes
 * are in the body already.  These helpers find them in a body that
 * jansson has just parsed (so it is valid JSON, without duplicate keys),
 * and say nothing (NULL) when in doubt, e.g. a key written with escapes.
 */

static size_t
skip_ws(const char *b, size_t len, size_t i)
{
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    return i;
}

/* b[i] is '"': the index after the closing quote; *plain when there was no escape. */
static size_t
skip_string(const char *b, size_t len, size_t i, bool *plain)
{
    *plain = true;
    for (i++; i < len; i++) {
        if (b[i] == '\\') {
            *plain = false;
            i++;
        } else if (b[i] == '"') {
            return i + 1;
        }
    }
    return len;
}

/* The index after the value that starts at b[i]. */
static size_t
skip_value(const char *b, size_t len, size_t i)
{
    int depth = 0;
    bool plain;

    while (i < len) {
        char c = b[i];
        if (c == '"') {
            i = skip_string(b, len, i, &plain);
        } else if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i;
            depth--;
            i++;
        } else if (c == ',' && depth == 0) {
            return i;
        } else {
            i++;
        }
        if (depth == 0 && (c == '"' || c == '}' || c == ']'))
            return i;
    }
    return len;
}

/* A copy of the top-level "client" object's text in body, or NULL. */
static char *
client_text(const char *body, size_t len)
{
    size_t i = skip_ws(body, len, 0);
    bool plain;

    if (i >= len || body[i] != '{')
        return NULL;
    for (i++;;) {
        size_t key, key_end, value;
        i = skip_ws(body, len, i);
        if (i >= len || body[i] != '"')
            return NULL;
        key = i + 1;
        i = key_end = skip_string(body, len, i, &plain);
        i = skip_ws(body, len, i);
        if (i >= len || body[i] != ':')
            return NULL;
        value = i = skip_ws(body, len, i + 1);
        i = skip_value(body, len, i);
        if (plain && key_end - key == 7 && memcmp(body + key, "client\"", 7) == 0)
            return value < len && body[value] == '{' && i <= len ? br_strndup(body + value, i - value) : NULL;
        i = skip_ws(body, len, i);
        if (i >= len || body[i] != ',')
            return NULL;
        i++;
    }
}

int
br_chatra_event_parse(const char *body, size_t len, struct br_chatra_event *ev, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root, *client, *msgs, *v;
    const char *name = "chatFragment";
    size_t i;
    int rc = 0;

    memset(ev, 0, sizeof(*ev));
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return fail(err, errlen, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return fail(err, errlen, "the body must be a JSON object");
    }
    if (too_deep(root, 1)) {
        json_decref(root);
        return fail(err, errlen, "JSON nested deeper than %d levels", MAX_DEPTH);
    }
    v = json_object_get(root, "eventName");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            json_decref(root);
            return fail(err, errlen, "eventName must be a string");
        }
        name = json_string_value(v);
    }
    if (strcmp(name, "chatStarted") == 0)
        ev->kind = BR_CHATRA_STARTED;
    else if (strcmp(name, "chatFragment") == 0)
        ev->kind = BR_CHATRA_FRAGMENT;
    else if (strcmp(name, "chatTranscript") == 0)
        ev->kind = BR_CHATRA_TRANSCRIPT;
    else {
        snprintf(err, errlen, "event %.60s is not handled", name);
        json_decref(root);
        return BR_ENOTFOUND;
    }
    client = json_object_get(root, "client");
    if (!json_is_object(client)) {
        json_decref(root);
        return fail(err, errlen, "client must be an object");
    }
    v = json_object_get(client, "id");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        json_decref(root);
        return fail(err, errlen, "client.id must be a non-empty string");
    }
    if (json_string_length(v) > MAX_ID_LEN) {
        json_decref(root);
        return fail(err, errlen, "client.id is longer than %d bytes", MAX_ID_LEN);
    }
    msgs = json_object_get(root, "messages");
    if (msgs && !json_is_null(msgs) && !json_is_array(msgs)) {
        json_decref(root);
        return fail(err, errlen, "messages must be a list");
    }
    if (json_is_array(msgs) && json_array_size(msgs) > MAX_MESSAGES) {
        json_decref(root);
        return fail(err, errlen, "more than %d messages in one webhook", MAX_MESSAGES);
    }

    ev->client_id = dup_str(json_object_get(client, "id"));
    ev->chat_id = dup_str(json_object_get(client, "chatId"));
    ev->name = dup_str(json_object_get(client, "name"));
    ev->phone = dup_str(json_object_get(client, "phone"));
    /*
     * An e-mail the site set through Chatra's integration data is the
     * site's word (verified); one typed into the chat is only the
     * visitor's.  The verified one wins when both are present.
     */
    if ((v = normalise_email(json_object_get(json_object_get(client, "info"), "email"))) != NULL ||
        (v = normalise_email(json_object_get(json_object_get(client, "integrationData"), "email"))) != NULL) {
        ev->email_verified = true;
    } else {
        v = normalise_email(json_object_get(client, "email"));
    }
    ev->email = v ? br_strdup(json_string_value(v)) : NULL;
    json_decref(v);
    ev->raw_client = json_incref(client);
    ev->raw_client_text = client_text(body, len);
    ev->msgs = br_calloc(json_array_size(msgs) + 1, sizeof(*ev->msgs));
    json_array_foreach(msgs, i, v) {
        if ((rc = map_message(v, i, json_object_get(root, "agents"), ev, err, errlen)) != 0)
            break;
    }
    json_decref(root);
    if (rc)
        br_chatra_event_dispose(ev);
    return rc;
}

/* ---- the bridge's record ---------------------------------------------------- */

static const char *const kinds[] = {"started", "fragment", "transcript"};

static void
put(json_t *o, const char *key, const char *v)
{
    if (v)
        json_object_set_new(o, key, json_string(v));
}

json_t *
br_chatra_event_visitor(struct br_chatra_event *ev)
{
    if (ev->visitor == NULL)
        ev->visitor = br_chatra_visitor(ev->raw_client, false);
    return ev->visitor;
}

char *
br_chatra_event_dump(const struct br_chatra_event *ev)
{
    json_t *o = json_object(), *c = json_object(), *msgs = json_array();
    char *out;

    json_object_set_new(o, "event", json_string(kinds[ev->kind]));
    put(c, "id", ev->client_id);
    put(c, "chat_id", ev->chat_id);
    put(c, "name", ev->name);
    put(c, "email", ev->email);
    if (ev->email_verified)
        json_object_set_new(c, "email_verified", json_true());
    put(c, "phone", ev->phone);
    json_object_set_new(o, "client", c);
    /* The visitor's record is not kept: it is made from the raw client again when the record is read. */
    if (ev->raw_client_text == NULL)
        json_object_set(o, "raw_client", ev->raw_client);
    for (size_t i = 0; i < ev->n_msgs; i++) {
        const struct br_chatra_message *m = &ev->msgs[i];
        json_t *n = json_object();
        put(n, "key", m->key);
        put(n, "id", m->id);
        put(n, "type", m->type);
        put(n, "text", m->text);
        put(n, "agent_id", m->agent_id);
        put(n, "agent_name", m->agent_name);
        put(n, "agent_email", m->agent_email);
        json_object_set_new(n, "created_at", json_integer(m->created_at));
        json_array_append_new(msgs, n);
    }
    json_object_set_new(o, "messages", msgs);
    out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (out != NULL && ev->raw_client_text != NULL) {
        /* {...} + ,"raw_client":<the webhook's bytes>} */
        static const char key[] = ",\"raw_client\":";
        size_t n = strlen(out) - 1, k = sizeof(key) - 1, t = strlen(ev->raw_client_text);
        char *all = br_malloc(n + k + t + 2);
        memcpy(all, out, n);
        memcpy(all + n, key, k);
        memcpy(all + n + k, ev->raw_client_text, t);
        memcpy(all + n + k + t, "}", 2);
        free(out);
        out = all;
    }
    return out;
}

static char *
get_str(json_t *o, const char *key)
{
    return dup_str(json_object_get(o, key));
}

int
br_chatra_event_load(const char *record, struct br_chatra_event *ev)
{
    json_error_t je;
    json_t *o = json_loads(record, 0, &je), *c, *msgs, *m;
    const char *kind;
    size_t i;

    memset(ev, 0, sizeof(*ev));
    c = json_object_get(o, "client");
    kind = json_string_value(json_object_get(o, "event"));
    msgs = json_object_get(o, "messages");
    if (!json_is_object(c) || kind == NULL || !json_is_string(json_object_get(c, "id"))) {
        json_decref(o);
        return BR_EPARSE;
    }
    ev->kind = strcmp(kind, "started") == 0 ? BR_CHATRA_STARTED
               : strcmp(kind, "transcript") == 0 ? BR_CHATRA_TRANSCRIPT : BR_CHATRA_FRAGMENT;
    ev->client_id = get_str(c, "id");
    ev->chat_id = get_str(c, "chat_id");
    ev->name = get_str(c, "name");
    ev->email = get_str(c, "email");
    ev->email_verified = json_is_true(json_object_get(c, "email_verified"));
    ev->phone = get_str(c, "phone");
    ev->raw_client = json_is_object(json_object_get(o, "raw_client")) ? json_incref(json_object_get(o, "raw_client"))
                                                                       : json_object();
    /* A record of a version before the visitor's record: made from the raw client now. */
    if (json_is_object(json_object_get(o, "visitor")))
        ev->visitor = json_incref(json_object_get(o, "visitor"));
    ev->msgs = br_calloc(json_array_size(msgs) + 1, sizeof(*ev->msgs));
    json_array_foreach(msgs, i, m) {
        struct br_chatra_message *n = &ev->msgs[ev->n_msgs];
        n->key = get_str(m, "key");
        n->type = get_str(m, "type");
        n->text = get_str(m, "text");
        if (n->key == NULL || n->type == NULL || n->text == NULL) {
            free(n->key);
            free(n->type);
            free(n->text);
            memset(n, 0, sizeof(*n));
            continue;
        }
        n->id = get_str(m, "id");
        n->agent_id = get_str(m, "agent_id");
        n->agent_name = get_str(m, "agent_name");
        n->agent_email = get_str(m, "agent_email");
        n->created_at = json_integer_value(json_object_get(m, "created_at"));
        ev->n_msgs++;
    }
    json_decref(o);
    return 0;
}
