/*
 * context.h - what templates see: the visitor, the device, the chat and its
 * messages as JSON contexts (the variables the README lists).
 *
 * Built from the store's rows: the visitor's records that chatra_event.c
 * made of Chatra's data (only that module knows Chatra's keys), and
 * Chatra's raw client object only as templates' chatra.client.  The caller owns every
 * json_t returned.  No I/O but store reads; loop thread only.
 */
#ifndef BR_CONTEXT_H
#define BR_CONTEXT_H

#include "config.h"
#include "store.h"

#include <jansson.h>

/*
 * "visitor": the conversation's known fields, then the visitor's record
 * (chatra_event.h), then what Chatra's profile record (may be NULL) holds.
 */
json_t *br_context_visitor(const struct br_conv *c, json_t *rec, json_t *profile);

/*
 * "device": browser, os, device, ip, city, country from one webhook's
 * visitor record, plus items[] (each present field in that order, with one
 * flag true and its value; the first has "first") and pages[].
 */
json_t *br_context_device(json_t *visitor);

/* A visitor record as the store keeps it (conversation.visitor_json, profile_json): a new string. */
char *br_context_record(json_t *visitor, json_t *raw);

/*
 * The employee behind a Chatra agent of channel ch: by chatra_agent_id,
 * else by the e-mail a webhook named for that agent (in the store, which
 * may be NULL); NULL when none.
 */
const struct br_employee *br_context_agent_employee(const struct br_config *cfg, struct br_store *store,
                                                    const struct br_channel *ch, const char *agent_id);

/*
 * One message: author (the employee's name, or a label rendered with base,
 * the conversation's context, which may be NULL), text, text_html, time,
 * date, clock, type, is_visitor, is_agent.
 */
json_t *br_context_message(const struct br_config *cfg, struct br_store *store, const struct br_channel *ch,
                           const json_t *base, const struct br_msg *m);

/*
 * The context every text of a conversation starts from: visitor, channel,
 * chatra.client (and chatra.profile), contact.id.  Parses the stored JSON.
 */
json_t *br_context_conversation(const struct br_config *cfg, const struct br_channel *ch, const struct br_conv *c);

/*
 * The task texts' context for generation gen: the conversation's, plus
 * chat (id, started_at, messages[] still waiting for the tracker) and,
 * after the first generation, previous_task (id, messages[]).  When ids
 * is not NULL it gets the message id of each chat.messages item, in order.
 */
json_t *br_context_task(const struct br_config *cfg, struct br_store *store, const struct br_channel *ch,
                        const struct br_conv *c, int gen, json_t *ids);

#endif
