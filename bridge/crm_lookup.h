/*
 * crm_lookup.h - who is this person in the CRM: one question over many
 * e-mails (the person's own, then their colleagues'), answered by the
 * first e-mail in order that the CRM knows.
 *
 * Answers are cached in the store by e-mail (also "nobody"), for ttl_s.
 * E-mails the cache does not answer are asked a few at a time through the
 * provider (its upstream keeps its rate); as soon as every e-mail before a
 * match has answered, the match wins and no further e-mail is asked.  A
 * 429's Retry-After pauses the CRM's upstream, so that nothing is asked
 * before then.  A failed e-mail is not cached, and is asked again when the
 * caller tries again.
 *
 * cb fires exactly once, never synchronously: err 0 with card the winner's
 * (borrowed for the call; NULL when nobody matched), or BR_ERETRY with the
 * last failure's text when some e-mail failed before any match (card is
 * then the first match after it, the best known until the failed e-mails
 * answer, or NULL), or BR_ECANCELED at shutdown.  Loop thread only.
 */
#ifndef BR_CRM_LOOKUP_H
#define BR_CRM_LOOKUP_H

#include "crm.h"

#include <jansson.h>

struct br_store;

typedef void (*br_crm_found_cb)(void *arg, int err, const json_t *card, const char *error);

/* emails: an array of strings (borrowed for the call).  store NULL: no cache. */
void br_crm_lookup(struct br_crm *crm, struct br_store *store, long ttl_s, const json_t *emails, br_crm_found_cb cb,
                   void *arg);

#endif
