#include "chatra.h"

#include "config.h"
#include "log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct send {
    br_result_cb cb;
    void *arg;
    struct br_result res;
};

static void
on_sent(void *arg, const struct br_http_result *r)
{
    struct send *s = arg;
    json_error_t je;
    json_t *answer;

    s->res.retry_after_s = r->retry_after_s;
    s->res.status = r->status;
    if (r->err) {
        s->res.err = r->err == BR_ECANCELED ? BR_ECANCELED : BR_ERETRY;
        s->res.error = br_asprintf("%s: %s", br_strerror(r->err), r->error ? r->error : "");
    } else {
        s->res.response = br_asprintf("%ld %.*s", r->status, (int)(r->body_len > 2000 ? 2000 : r->body_len), r->body);
        if (r->status >= 200 && r->status < 300) {
            /* The answer is not documented: keep the message id when one comes back. */
            answer = json_loadb(r->body, r->body_len, 0, &je);
            if (json_is_string(json_object_get(answer, "id")))
                s->res.id = br_strdup(json_string_value(json_object_get(answer, "id")));
            json_decref(answer);
        } else {
            s->res.err = (r->status == 429 || r->status >= 500 || r->status == 408) ? BR_ERETRY : BR_EFATAL;
            s->res.error = br_asprintf("Chatra answered HTTP %ld", r->status);
        }
    }
    s->cb(s->arg, &s->res);
    br_result_dispose(&s->res);
    free(s);
}

static char *
auth_header(const struct br_channel *ch)
{
    return br_asprintf("Authorization: Chatra.Simple %s:%s", ch->chatra_public_key, ch->chatra_secret_key);
}

static void
on_client(void *arg, const struct br_http_result *r)
{
    struct send *s = arg;
    json_error_t je;

    s->res.retry_after_s = r->retry_after_s;
    s->res.status = r->status;
    if (r->err) {
        s->res.err = r->err == BR_ECANCELED ? BR_ECANCELED : BR_ERETRY;
        s->res.error = br_asprintf("%s: %s", br_strerror(r->err), r->error ? r->error : "");
    } else if (r->status == 200) {
        s->res.items = json_loadb(r->body, r->body_len, 0, &je);
        if (!json_is_object(s->res.items)) {
            s->res.err = BR_EFATAL;
            s->res.error = br_strdup("Chatra answered with something other than a JSON object");
        }
    } else {
        s->res.err = r->status == 404 ? BR_ENOTFOUND : (r->status == 429 || r->status >= 500) ? BR_ERETRY : BR_EFATAL;
        s->res.error = br_asprintf("Chatra answered HTTP %ld", r->status);
    }
    s->cb(s->arg, &s->res);
    br_result_dispose(&s->res);
    free(s);
}

int
br_chatra_get_client(struct br_upstream *up, const struct br_channel *ch, const char *client_id, br_result_cb cb,
                     void *arg)
{
    struct send *s = br_calloc(1, sizeof(*s));
    char *auth = auth_header(ch);
    const char *headers[] = {auth, "Accept: application/json", NULL};
    char *escaped = curl_easy_escape(NULL, client_id, 0);
    char *url = br_asprintf("%s/clients/%s", ch->chatra_url, escaped ? escaped : "");
    int rc;

    s->cb = cb;
    s->arg = arg;
    s->res.retry_after_s = -1;
    /* The client id may be a bound, secret id: it stays out of the request summary. */
    s->res.request = br_strdup("GET /clients/{id}");
    rc = br_upstream_send(up, "GET", url, headers, NULL, 15000, on_client, s);
    if (rc) {
        br_result_dispose(&s->res);
        free(s);
    }
    curl_free(escaped);
    free(url);
    free(auth);
    return rc;
}

int
br_chatra_send_message(struct br_upstream *up, const struct br_channel *ch, const char *client_id, const char *text,
                       const char *agent_id, br_result_cb cb, void *arg)
{
    struct send *s = br_calloc(1, sizeof(*s));
    char *auth = auth_header(ch);
    const char *headers[] = {auth, "Content-Type: application/json", "Accept: application/json", NULL};
    char *url = br_asprintf("%s/messages/", ch->chatra_url);
    json_t *body = json_pack("{s:s, s:s}", "clientId", client_id, "text", text);
    char *json;
    int rc;

    if (agent_id && *agent_id)
        json_object_set_new(body, "agentId", json_string(agent_id));
    json = json_dumps(body, JSON_COMPACT);
    s->cb = cb;
    s->arg = arg;
    s->res.retry_after_s = -1;
    /* The request is logged for dead letters without the client id: it may be a bound, secret id. */
    s->res.request = br_asprintf("POST /messages/ {\"text\": %zu bytes, \"agentId\": \"%s\"}", strlen(text),
                                 agent_id ? agent_id : "");
    rc = br_upstream_send(up, "POST", url, headers, json, 15000, on_sent, s);
    if (rc) {
        br_result_dispose(&s->res);
        free(s);
    }
    free(json);
    json_decref(body);
    free(url);
    free(auth);
    return rc;
}

static void
put_utf8(struct br_buf *b, unsigned long cp)
{
    char u[4];
    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        cp = 0xfffd;
    if (cp < 0x80) {
        br_buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        br_buf_append(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        br_buf_append(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        br_buf_append(b, u, 4);
    }
}

/* Decodes one entity at s (which starts with '&'); returns bytes consumed, 0 when not an entity. */
static size_t
entity(const char *s, struct br_buf *b)
{
    static const struct {
        const char *name;
        unsigned long cp;
    } named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", 0xa0},
                 {"laquo", 0xab}, {"raquo", 0xbb}, {"mdash", 0x2014}, {"ndash", 0x2013}, {"hellip", 0x2026},
                 {"copy", 0xa9}, {"euro", 0x20ac}};
    const char *semi = strchr(s, ';');
    size_t n;

    if (semi == NULL || semi - s > 10 || semi - s < 3)
        return 0;
    n = (size_t)(semi - s) + 1;
    if (s[1] == '#') {
        char *end;
        unsigned long cp = (s[2] == 'x' || s[2] == 'X') ? strtoul(s + 3, &end, 16) : strtoul(s + 2, &end, 10);
        if (end != semi)
            return 0;
        put_utf8(b, cp);
        return n;
    }
    for (size_t i = 0; i < BR_ARRAY_SIZE(named); i++) {
        size_t l = strlen(named[i].name);
        if (l == (size_t)(semi - s - 1) && strncmp(s + 1, named[i].name, l) == 0) {
            put_utf8(b, named[i].cp == 0xa0 ? ' ' : named[i].cp);
            return n;
        }
    }
    return 0;
}

static int
tag_is(const char *tag, size_t n, const char *name)
{
    size_t l = strlen(name);
    return n >= l && strncasecmp(tag, name, l) == 0 && (n == l || !isalnum((unsigned char)tag[l]));
}

char *
br_html_to_text(const char *html)
{
    struct br_buf b;
    const char *p = html;

    br_buf_init(&b, 0);
    while (*p) {
        if (*p == '<') {
            const char *end = strchr(p, '>');
            const char *t;
            size_t n;
            if (end == NULL)
                break; /* a cut-off tag at the end carries no text */
            t = p + 1;
            if (*t == '/')
                t++;
            n = (size_t)(end - t);
            if (tag_is(t, n, "br") || (p[1] == '/' && (tag_is(t, n, "p") || tag_is(t, n, "div") ||
                                                      tag_is(t, n, "li") || tag_is(t, n, "tr"))))
                br_buf_putc(&b, '\n');
            p = end + 1;
        } else if (*p == '&') {
            size_t n = entity(p, &b);
            if (n == 0) {
                br_buf_putc(&b, '&');
                p++;
            } else {
                p += n;
            }
        } else if (*p == '\r') {
            p++;
        } else {
            br_buf_putc(&b, *p++);
        }
    }
    /* Trim and fold runs of blank lines that block tags leave behind. */
    {
        struct br_buf o;
        size_t i = 0, newlines = 0;
        br_buf_init(&o, 0);
        while (i < b.len && isspace((unsigned char)b.data[i]))
            i++;
        for (; i < b.len; i++) {
            if (b.data[i] == '\n') {
                newlines++;
                continue;
            }
            if (newlines) {
                br_buf_append(&o, "\n\n", newlines > 1 ? 2 : 1);
                newlines = 0;
            }
            br_buf_putc(&o, b.data[i]);
        }
        while (o.len > 0 && isspace((unsigned char)o.data[o.len - 1]))
            o.data[--o.len] = '\0';
        br_buf_dispose(&b);
        return br_buf_steal(&o);
    }
}
