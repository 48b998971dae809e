/*
 * chatra_event.h - a Chatra webhook as the bridge's own typed event, and
 * the only place that knows Chatra's keys.
 *
 * The webhook handler parses a body once (br_chatra_event_parse), stores
 * the event as the bridge's own record (br_chatra_event_dump) in the inbox,
 * and the conversation model reads that record back (br_chatra_event_load).
 * Chatra's payloads vary (text or message, missing eventName, missing ids,
 * undocumented visitor keys): all of that is settled here.
 *
 * The record (JSON):
 *   {"event": "started" | "fragment" | "transcript",
 *    "client": {"id", "chat_id", "name", "email", "email_verified", "phone"},
 *    "raw_client": { ...Chatra's client object, for templates' chatra.client,
 *                    the webhook's own bytes when they can be told apart... },
 *    "messages": [{"key", "id", "type": "client" | "agent", "text",
 *                  "agent_id", "agent_name", "agent_email", "created_at"}]}
 *
 * The event's visitor record (ev->visitor: "displayed_name", "notes",
 * "city", "country", "source", "device", "browser", "os", "ip", "pages":
 * [{"url", "title"}], "info") is made from the raw client when it is first
 * asked for (br_chatra_event_visitor), so the door does not make it;
 * records of an earlier version that carry a "visitor" are read as they are.
 *
 * System messages and messages without text are dropped.  A message
 * without an id gets a key derived from its type, time and text, so a
 * repeat is still recognised.  E-mails are in their normal form (email.h);
 * an e-mail the site set through Chatra's integration data is verified.
 * agent_email is the agent's e-mail when the message (agentEmail) or the
 * webhook's agents[] entry of its agentId tells it.
 */
#ifndef BR_CHATRA_EVENT_H
#define BR_CHATRA_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum br_chatra_kind { BR_CHATRA_STARTED, BR_CHATRA_FRAGMENT, BR_CHATRA_TRANSCRIPT };

struct br_chatra_message {
    char *key;          /* "id:<id>" or "h:<hash of type, time, text>" */
    char *id;           /* may be NULL */
    char *type;         /* "client" or "agent" */
    char *text;
    char *agent_id;     /* may be NULL, as the three below */
    char *agent_name;
    char *agent_email;
    int64_t created_at; /* ms, 0 when unknown */
};

struct br_chatra_event {
    enum br_chatra_kind kind;
    char *client_id;    /* the device (may be a site's bound, secret id) */
    char *chat_id;      /* may be NULL, as the ones below */
    char *name;
    char *email;
    bool email_verified;
    char *phone;
    json_t *visitor;    /* the visitor's record (see above): br_chatra_event_visitor */
    json_t *raw_client; /* Chatra's client object, never NULL */
    /*
     * The client object's text as the webhook had it (parse only, NULL
     * when it could not be told apart): the record takes these bytes as
     * they are instead of writing the object out again.
     */
    char *raw_client_text;
    struct br_chatra_message *msgs;
    size_t n_msgs;
};

/*
 * Parses a webhook body into *ev: 0, BR_EINVAL with a one-line reason in
 * err (for a 400), or BR_ENOTFOUND when the event is one the bridge does
 * not handle (answered 200 and ignored).  Dispose *ev only after 0.
 */
int br_chatra_event_parse(const char *body, size_t len, struct br_chatra_event *ev, char *err, size_t errlen);
void br_chatra_event_dispose(struct br_chatra_event *ev);

/*
 * The visitor's record, made from the raw client when first asked (the
 * door has no use for it), owned by the event; never NULL.
 */
json_t *br_chatra_event_visitor(struct br_chatra_event *ev);

/* The event as the bridge's record (a new string), and a record read back (BR_EPARSE when it is not one). */
char *br_chatra_event_dump(const struct br_chatra_event *ev);
int br_chatra_event_load(const char *record, struct br_chatra_event *ev);

/*
 * The visitor's record from a Chatra client object: a webhook's client, or
 * what GET /clients/{id} answers (which also gives name, email and phone:
 * set when with_contact).  A new object; empty when client is not one.
 */
json_t *br_chatra_visitor(json_t *client, bool with_contact);

#endif
