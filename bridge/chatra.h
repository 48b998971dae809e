/*
 * chatra.h - the Chatra REST client (messages into a visitor's chat).
 * Requests go through the channel's upstream, which enforces its rate,
 * as REST calls (rest.h: the bridge's one error mapping).  Both functions
 * return 0; every outcome, a request refused at shutdown included, comes
 * through cb exactly once and never inside the call.  The text of a reply
 * comes from html_text.h.
 */
#ifndef BR_CHATRA_H
#define BR_CHATRA_H

#include "tracker.h"

struct br_channel;

/*
 * Who a message is sent as: an agent id, or else the agent's e-mail and
 * name (Chatra then finds the agent by e-mail, or makes a stand-in), with
 * received_from naming where the message comes from.
 */
struct br_chatra_agent {
    const char *id;
    const char *email;
    const char *name;
    const char *received_from;
};

/*
 * POST <chatra.url>/messages/ {clientId, text, agentId} or, without an
 * agent id, {clientId, text, agentEmail, agentName, receivedFrom}; cb as
 * for trackers.
 */
int br_chatra_send_message(struct br_upstream *up, const struct br_channel *ch, const char *client_id,
                           const char *text, const struct br_chatra_agent *agent, br_result_cb cb, void *arg);

/* GET <chatra.url>/clients/{id}: the visitor's data as res->data (a JSON object). */
int br_chatra_get_client(struct br_upstream *up, const struct br_channel *ch, const char *client_id,
                         br_result_cb cb, void *arg);

#endif
