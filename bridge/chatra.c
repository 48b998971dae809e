#include "chatra.h"

#include "config.h"
#include "log.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

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
                       const struct br_chatra_agent *agent, br_result_cb cb, void *arg)
{
    const char *agent_id = agent ? agent->id : NULL;
    struct send *s = br_calloc(1, sizeof(*s));
    char *auth = auth_header(ch);
    const char *headers[] = {auth, "Content-Type: application/json", "Accept: application/json", NULL};
    char *url = br_asprintf("%s/messages/", ch->chatra_url);
    json_t *body = json_pack("{s:s, s:s}", "clientId", client_id, "text", text);
    char *json;
    int rc;

    if (agent_id && *agent_id) {
        json_object_set_new(body, "agentId", json_string(agent_id));
    } else if (agent && agent->email) {
        json_object_set_new(body, "agentEmail", json_string(agent->email));
        json_object_set_new(body, "agentName", json_string(agent->name ? agent->name : agent->email));
        if (agent->received_from)
            json_object_set_new(body, "receivedFrom", json_string(agent->received_from));
    }
    json = json_dumps(body, JSON_COMPACT);
    s->cb = cb;
    s->arg = arg;
    s->res.retry_after_s = -1;
    /* The request is logged for dead letters without the client id: it may be a bound, secret id. */
    if (agent_id && *agent_id)
        s->res.request = br_asprintf("POST /messages/ {\"text\": %zu bytes, \"agentId\": \"%s\"}", strlen(text),
                                     agent_id);
    else
        s->res.request = br_asprintf("POST /messages/ {\"text\": %zu bytes, \"agentEmail\": \"%s\"}", strlen(text),
                                     agent && agent->email ? agent->email : "");
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
