/*
 * crm_card.h - the CRM card (crm.h) of a conversation as the task shows
 * it: whether a look-up is still pending (a new task waits for it as
 * briefly as for Chatra's visitor details), and the card appended to a
 * task description being made, remembered as shown so that the
 * "crm_card" job (jobs/crm.c) does not write it again.  Loop thread only.
 */
#ifndef BR_CRM_CARD_H
#define BR_CRM_CARD_H

#include "br.h"
#include "env.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>

/* The card as a conversation keeps it and compares it: its JSON, or "null" for nobody found. */
const char *br_crm_card_value(const char *card);

/* Whether the CRM of env is still looking conversation conv_id's person up. */
bool br_crm_card_pending(struct br_env *env, int64_t conv_id);

/*
 * Appends the conversation's card (when a look-up has answered), rendered
 * with the crm_card text and ctx (the task's context, borrowed) plus
 * "crm", to desc, and records it as shown.
 */
void br_crm_card_describe(struct br_env *env, int64_t conv_id, const json_t *ctx, struct br_buf *desc);

#endif
