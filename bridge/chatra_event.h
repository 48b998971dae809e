/*
 * chatra_event.h - maps a Chatra webhook body to the bridge's own event
 * shape.  Chatra's payloads vary (text or message, missing eventName,
 * missing ids): the webhook handler checks a body with it at the door
 * (and stores the body as received), the engine turns the stored body
 * into this shape when it applies it, and nothing else reads Chatra's
 * own shape:
 *
 *   {"event": "started" | "fragment" | "transcript",
 *    "client": {"id", "chat_id", "name", "email", "phone", "displayed_name"},
 *    "raw_client": { ...Chatra's client object as received... },
 *    "messages": [{"key", "id", "type": "client" | "agent", "text",
 *                  "agent_id", "agent_name", "agent_email", "created_at"}]}
 *
 * agent_email is the agent's e-mail when the message (agentEmail) or the
 * webhook's agents[] entry of its agentId tells it.
 *
 * System messages and messages without text are dropped.  A message
 * without an id gets a key derived from its type, time and text, so a
 * repeat is still recognised.  E-mails are trimmed and lower-cased.
 */
#ifndef BR_CHATRA_EVENT_H
#define BR_CHATRA_EVENT_H

#include <jansson.h>
#include <stddef.h>

/*
 * Returns 0 and sets *out (a new reference), BR_EINVAL with a one-line
 * reason in err (for a 400), or BR_ENOTFOUND when the event is one the
 * bridge does not handle (answered 200 and ignored).
 */
int br_chatra_event_parse(const char *body, size_t len, json_t **out, char *err, size_t errlen);

#endif
