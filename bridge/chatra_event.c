#include "chatra_event.h"

#include "email.h"

#include "bridge/br.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
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

/* Copies a string field when it is a non-empty string; anything else is absent. */
static void
copy_str(json_t *dst, const char *dkey, json_t *src, const char *skey)
{
    json_t *v = json_object_get(src, skey);
    if (json_is_string(v) && json_string_length(v) > 0)
        json_object_set_new(dst, dkey, json_stringn(json_string_value(v), json_string_length(v)));
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

static int
map_message(json_t *m, size_t i, json_t *agents, json_t *out, char *err, size_t errlen)
{
    json_t *text, *type, *id, *n;
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

    n = json_object();
    if (json_is_string(id) && json_string_length(id) > 0) {
        json_object_set_new(n, "key", json_pack("s+", "id:", json_string_value(id)));
        json_object_set(n, "id", id);
    } else {
        uint64_t h = 1469598103934665603ULL;
        char ts[32];
        snprintf(ts, sizeof(ts), "|%lld|", (long long)at);
        h = fnv1a(h, t, strlen(t));
        h = fnv1a(h, ts, strlen(ts));
        h = fnv1a(h, json_string_value(text), json_string_length(text));
        snprintf(key, sizeof(key), "h:%016llx", (unsigned long long)h);
        json_object_set_new(n, "key", json_string(key));
    }
    json_object_set_new(n, "type", json_string(t));
    json_object_set_new(n, "text", json_stringn(json_string_value(text), json_string_length(text)));
    copy_str(n, "agent_id", m, "agentId");
    copy_str(n, "agent_name", m, "agentName");
    if (strcmp(t, "agent") == 0) {
        json_t *email = agent_email(m, agents);
        if (email)
            json_object_set_new(n, "agent_email", email);
    }
    json_object_set_new(n, "created_at", json_integer(at));
    json_array_append_new(out, n);
    return 0;
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

int
br_chatra_event_parse(const char *body, size_t len, json_t **out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root, *client, *msgs, *ev, *nc, *nm, *v;
    const char *name = "chatFragment";
    const char *kind;
    size_t i;
    int rc = 0;

    *out = NULL;
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
        kind = "started";
    else if (strcmp(name, "chatFragment") == 0)
        kind = "fragment";
    else if (strcmp(name, "chatTranscript") == 0)
        kind = "transcript";
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

    ev = json_object();
    json_object_set_new(ev, "event", json_string(kind));
    nc = json_object();
    copy_str(nc, "id", client, "id");
    copy_str(nc, "chat_id", client, "chatId");
    copy_str(nc, "name", client, "name");
    copy_str(nc, "phone", client, "phone");
    copy_str(nc, "displayed_name", client, "displayedName");
    /*
     * An e-mail the site set through Chatra's integration data is the
     * site's word (verified); one typed into the chat is only the
     * visitor's.  The verified one wins when both are present.
     */
    if ((v = normalise_email(json_object_get(json_object_get(client, "info"), "email"))) != NULL ||
        (v = normalise_email(json_object_get(json_object_get(client, "integrationData"), "email"))) != NULL) {
        json_object_set_new(nc, "email", v);
        json_object_set_new(nc, "email_verified", json_true());
    } else if ((v = normalise_email(json_object_get(client, "email"))) != NULL) {
        json_object_set_new(nc, "email", v);
    }
    json_object_set_new(ev, "client", nc);
    json_object_set(ev, "raw_client", client);
    nm = json_array();
    json_array_foreach(msgs, i, v) {
        if ((rc = map_message(v, i, json_object_get(root, "agents"), nm, err, errlen)) != 0)
            break;
    }
    json_object_set_new(ev, "messages", nm);
    json_decref(root);
    if (rc) {
        json_decref(ev);
        return rc;
    }
    *out = ev;
    return 0;
}
