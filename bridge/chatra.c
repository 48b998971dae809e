#include "chatra.h"

#include "config.h"
#include "rest.h"
#include "store.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define CHATRA_TIMEOUT_MS 15000

/* Chatra's answers carry no words of their own: every 2xx is a success, the status decides the rest. */
static const struct br_rest_api chatra_api = {.name = "Chatra"};

/* A call about one visitor: their client id (it may be a bound, secret id) is shown shortened in its answer. */
static struct br_rest_call *
call_new(struct br_upstream *up, const struct br_channel *ch, const char *client_id, br_result_cb cb, void *arg)
{
    char *auth = br_asprintf("Authorization: Chatra.Simple %s:%s", ch->chatra_public_key, ch->chatra_secret_key);
    struct br_rest_target to = {up, ch->chatra_url, auth, CHATRA_TIMEOUT_MS};
    struct br_rest_call *c = br_rest_call_new(sizeof(*c), &chatra_api, &to, cb, arg);
    char *shown = br_store_client_shown(client_id);

    br_rest_call_hide(c, client_id, shown);
    free(shown);
    free(auth);
    return c;
}

/* The answer is not documented: keep the message id when one comes back. */
static void
message_sent(struct br_rest_call *c, json_t *answer)
{
    json_t *id = json_object_get(answer, "id");

    if (json_is_string(id))
        c->res.id = br_strdup(json_string_value(id));
}

static void
client_got(struct br_rest_call *c, json_t *answer)
{
    if (!json_is_object(answer)) {
        c->res.err = BR_EFATAL;
        c->res.error = br_strdup("Chatra answered with something other than a JSON object");
        return;
    }
    c->res.data = json_incref(answer);
}

int
br_chatra_get_client(struct br_upstream *up, const struct br_channel *ch, const char *client_id, br_result_cb cb,
                     void *arg)
{
    struct br_rest_call *c = call_new(up, ch, client_id, cb, arg);
    char *escaped = curl_easy_escape(NULL, client_id, 0);
    char *path = br_asprintf("/clients/%s", escaped ? escaped : "");
    /* The client id may be a bound, secret id: it stays out of the request summary. */
    struct br_rest_req rq = {.method = "GET", .path = path, .summary = "GET /clients/{id}"};

    c->notfound_404 = true;
    br_rest_start(c, &rq, client_got);
    curl_free(escaped);
    free(path);
    return 0;
}

int
br_chatra_send_message(struct br_upstream *up, const struct br_channel *ch, const char *client_id, const char *text,
                       const struct br_chatra_agent *agent, br_result_cb cb, void *arg)
{
    const char *agent_id = agent ? agent->id : NULL;
    struct br_rest_call *c = call_new(up, ch, client_id, cb, arg);
    json_t *body = json_pack("{s:s, s:s}", "clientId", client_id, "text", text);
    struct br_rest_req rq = {.method = "POST", .path = "/messages/", .body = body};
    char *summary;

    if (agent_id && *agent_id) {
        json_object_set_new(body, "agentId", json_string(agent_id));
    } else if (agent && agent->email) {
        json_object_set_new(body, "agentEmail", json_string(agent->email));
        json_object_set_new(body, "agentName", json_string(agent->name ? agent->name : agent->email));
        if (agent->received_from)
            json_object_set_new(body, "receivedFrom", json_string(agent->received_from));
    }
    /* The request is logged for dead letters without the client id: it may be a bound, secret id. */
    if (agent_id && *agent_id)
        summary = br_asprintf("POST /messages/ {\"text\": %zu bytes, \"agentId\": \"%s\"}", strlen(text), agent_id);
    else
        summary = br_asprintf("POST /messages/ {\"text\": %zu bytes, \"agentEmail\": \"%s\"}", strlen(text),
                              agent && agent->email ? agent->email : "");
    rq.summary = summary;
    br_rest_start(c, &rq, message_sent);
    free(summary);
    return 0;
}
