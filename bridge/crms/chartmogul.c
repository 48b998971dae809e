/*
 * chartmogul.c - ChartMogul as a CRM provider (crm.h), after its public
 * API v1: HTTP Basic auth with the API key as the user and an empty
 * password;
 *   GET /v1/customers/search?email=E    entries[] (uuid, name, email,
 *       status, mrr, arr in cents, currency, chartmogul-url), with has_more
 *       and cursor; 404 when nobody has the address
 *   GET /v1/customers/{uuid}/subscriptions   entries[] (plan, status, ...), paged until an active one
 *   GET /v1/customers/{uuid}/activities      entries[] (date, type,
 *       activity-mrr-movement, currency), paged the same way (at most
 *       MAX_PAGES pages of a list are read)
 * One lookup is those three reads in a row on one REST call.
 */
#include "crm.h"

#include "config.h"
#include "rest.h"

#include <curl/curl.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Pages read at most per list: a customer with more activities than this is cut, not a storm. */
#define MAX_PAGES 5
#define PER_PAGE 200

struct chartmogul {
    struct br_crm base;
    char *auth;   /* "Authorization: Basic ..." */
};

struct cm_call {
    struct br_rest_call c;
    char *email;
    char *uuid;
    char *cursor;
    int pages;
    bool started;       /* the first request went: the next ones are sent from steps */
    json_t *card;
    json_t *activities;
};

/* An answer that is not a JSON object is ChartMogul (or a proxy) failing: logged, tried again later. */
static int
check(struct br_rest_call *c, const struct br_http_result *r, json_t *answer)
{
    if (r->status >= 200 && r->status < 300 && !json_is_object(answer)) {
        c->res.error = br_asprintf("ChartMogul answered HTTP %ld with something other than a JSON object", r->status);
        return BR_ERETRY;
    }
    return r->status >= 200 && r->status < 300 ? 0 : BR_REST_BY_STATUS;
}

static void
dispose(struct br_rest_call *c)
{
    struct cm_call *m = (struct cm_call *)c;
    free(m->email);
    free(m->uuid);
    free(m->cursor);
    json_decref(m->card);
    json_decref(m->activities);
}

static const struct br_rest_api cm_api = {.name = "ChartMogul", .check = check, .dispose = dispose};

static const char *
str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The next page's cursor when the answer says there is one; NULL otherwise. */
static const char *
next_cursor(struct cm_call *m, json_t *answer)
{
    const char *cursor = str(answer, "cursor");
    if (!json_is_true(json_object_get(answer, "has_more")) || cursor == NULL || *cursor == '\0')
        return NULL;
    if (++m->pages >= MAX_PAGES)
        return NULL;
    return cursor;
}

static void send_get(struct cm_call *m, const char *what, const char *cursor, br_rest_step_fn step);

static void
put_str(json_t *card, const char *key, const char *v)
{
    if (v && *v)
        json_object_set_new(card, key, json_string(v));
}

static void
put_cents(json_t *card, const char *key, json_t *v)
{
    if (json_is_integer(v))
        json_object_set_new(card, key, json_integer(json_integer_value(v)));
    else if (json_is_real(v))
        json_object_set_new(card, key, json_integer((json_int_t)json_real_value(v)));
}

/* ISO 8601 dates in one zone sort as text; an activity without a date goes last. */
static int
newer_first(const void *a, const void *b)
{
    const char *x = str(*(json_t *const *)a, "date"), *y = str(*(json_t *const *)b, "date");
    if (x == NULL || y == NULL)
        return (x == NULL) - (y == NULL);
    return -strcmp(x, y);
}

static void
activities_read(struct br_rest_call *c, json_t *answer)
{
    struct cm_call *m = (struct cm_call *)c;
    json_t *e, *entries = json_object_get(answer, "entries"), *newest = json_array();
    const char *cursor;
    size_t i, n;

    json_array_foreach(entries, i, e) {
        json_t *a = json_object();
        if (!json_is_object(e)) {
            json_decref(a);
            continue;
        }
        put_str(a, "date", str(e, "date"));
        put_str(a, "type", str(e, "type"));
        put_cents(a, "amount", json_object_get(e, "activity-mrr-movement"));
        put_str(a, "currency", str(e, "currency"));
        json_array_append_new(m->activities, a);
    }
    if ((cursor = next_cursor(m, answer)) != NULL) {
        json_decref(newest);
        send_get(m, "activities", cursor, activities_read);
        return;
    }
    /* The card keeps the newest five, newest first, whatever order the pages came in. */
    n = json_array_size(m->activities);
    {
        json_t **v = br_calloc(n + 1, sizeof(*v));
        for (i = 0; i < n; i++)
            v[i] = json_array_get(m->activities, i);
        qsort(v, n, sizeof(*v), newer_first);
        for (i = 0; i < n && i < BR_CRM_ACTIVITIES; i++)
            json_array_append(newest, v[i]);
        free(v);
    }
    json_object_set_new(m->card, "activities", newest);
    c->res.data = json_incref(m->card);
}

static void
subscriptions_read(struct br_rest_call *c, json_t *answer)
{
    struct cm_call *m = (struct cm_call *)c;
    json_t *e, *entries = json_object_get(answer, "entries"), *pick = NULL;
    const char *cursor;
    bool active = false;
    size_t i;

    /* The current plan: an active subscription, on this page or a later one; else the first listed. */
    json_array_foreach(entries, i, e) {
        const char *status = str(e, "status");
        if (!json_is_object(e))
            continue;
        active = status && strcasecmp(status, "active") == 0;
        if (pick == NULL || active)
            pick = e;
        if (active)
            break;
    }
    if (pick && (active || json_object_get(m->card, "plan") == NULL))
        put_str(m->card, "plan", str(pick, "plan"));
    if (!active && (cursor = next_cursor(m, answer)) != NULL) {
        send_get(m, "subscriptions", cursor, subscriptions_read);
        return;
    }
    m->pages = 0;
    send_get(m, "activities", NULL, activities_read);
}

static void
search_read(struct br_rest_call *c, json_t *answer)
{
    struct cm_call *m = (struct cm_call *)c;
    json_t *e, *entries = json_object_get(answer, "entries"), *hit = NULL;
    const char *cursor;
    size_t i;

    json_array_foreach(entries, i, e) {
        const char *uuid = str(e, "uuid"), *email = str(e, "email");
        if (json_is_object(e) && uuid && *uuid && email && strcasecmp(email, m->email) == 0) {
            hit = e;
            break;
        }
    }
    if (hit == NULL) {
        if ((cursor = next_cursor(m, answer)) != NULL) {
            free(m->cursor);
            m->cursor = br_strdup(cursor);
            send_get(m, "search", m->cursor, search_read);
            return;
        }
        c->res.err = BR_ENOTFOUND;
        c->res.error = br_strdup("ChartMogul knows no customer with that e-mail");
        return;
    }
    m->uuid = br_strdup(str(hit, "uuid"));
    m->card = json_object();
    put_str(m->card, "email", m->email);
    put_str(m->card, "name", str(hit, "name"));
    put_str(m->card, "url", str(hit, "chartmogul-url"));
    put_str(m->card, "status", str(hit, "status"));
    put_str(m->card, "currency", str(hit, "currency"));
    put_cents(m->card, "mrr", json_object_get(hit, "mrr"));
    put_cents(m->card, "arr", json_object_get(hit, "arr"));
    m->activities = json_array();
    m->pages = 0;
    send_get(m, "subscriptions", NULL, subscriptions_read);
}

/* One GET of the lookup: what is "search" (by the e-mail) or a list of the customer's. */
static void
send_get(struct cm_call *m, const char *what, const char *cursor, br_rest_step_fn step)
{
    char *ecur = cursor ? curl_easy_escape(NULL, cursor, 0) : NULL;
    char *path, *summary;
    struct br_rest_req rq = {.method = "GET"};

    if (strcmp(what, "search") == 0) {
        char *eemail = curl_easy_escape(NULL, m->email, 0);
        path = br_asprintf("/v1/customers/search?email=%s&per_page=%d%s%s", eemail ? eemail : "", PER_PAGE,
                           ecur ? "&cursor=" : "", ecur ? ecur : "");
        summary = br_strdup("GET /v1/customers/search?email={e-mail}");
        curl_free(eemail);
    } else {
        path = br_asprintf("/v1/customers/%s/%s?per_page=%d%s%s", m->uuid, what, PER_PAGE, ecur ? "&cursor=" : "",
                           ecur ? ecur : "");
        summary = br_asprintf("GET /v1/customers/%s/%s", m->uuid, what);
    }
    rq.path = path;
    rq.summary = summary;
    if (!m->started) {
        m->started = true;
        br_rest_start(&m->c, &rq, step);
    } else {
        br_rest_send(&m->c, &rq, step);
    }
    curl_free(ecur);
    free(path);
    free(summary);
}

static void
lookup(struct br_crm *crm, const char *email, br_result_cb cb, void *arg)
{
    struct chartmogul *cm = (struct chartmogul *)crm;
    struct br_rest_target to = {crm->up, crm->cfg->crm_url, cm->auth, crm->cfg->crm_timeout_ms};
    struct cm_call *m = br_rest_call_new(sizeof(*m), &cm_api, &to, cb, arg);

    m->c.notfound_404 = true;
    m->email = br_strdup(email);
    send_get(m, "search", NULL, search_read);
}

static void
cm_free(struct br_crm *crm)
{
    struct chartmogul *cm = (struct chartmogul *)crm;
    free(cm->auth);
    free(cm);
}

static const struct br_crm_ops cm_ops = {.lookup = lookup, .free = cm_free};

static int
create(struct br_crm **out, const struct br_config *cfg, struct br_upstream *up)
{
    struct chartmogul *cm = br_calloc(1, sizeof(*cm));
    /* Basic auth: the API key as the user, an empty password. */
    char *userpass = br_asprintf("%s:", cfg->crm_api_key ? cfg->crm_api_key : "");
    int len = (int)strlen(userpass);
    int cap = 4 * (len / 3 + 2) + 8; /* lws wants room beyond the exact length */
    char *b64 = br_malloc((size_t)cap);

    if (lws_b64_encode_string(userpass, len, b64, cap) < 0)
        b64[0] = '\0';
    cm->auth = br_asprintf("Authorization: Basic %s", b64);
    free(b64);
    free(userpass);
    cm->base.ops = &cm_ops;
    cm->base.kind = &br_chartmogul_kind;
    cm->base.up = up;
    cm->base.cfg = cfg;
    *out = &cm->base;
    return 0;
}

const struct br_crm_kind br_chartmogul_kind = {
    .name = "chartmogul",
    .label = "ChartMogul",
    .default_url = "https://api.chartmogul.com",
    .default_rps = 5,
    .create = create,
};
