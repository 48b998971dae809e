/*
 * crm.h - the interface every CRM provider implements (ChartMogul first:
 * crms/chartmogul.c), and the card the bridge shows of a customer.
 *
 * A provider answers one question: who is the customer with this e-mail?
 * Its lookup sends its requests through rest.h on the CRM's own upstream
 * (its own rate budget, never the tracker's) and calls cb exactly once,
 * never synchronously, with res->data a card (below, a new reference) or
 * res->err: BR_ENOTFOUND nobody has that e-mail, BR_ERETRY the CRM is slow,
 * down, rate limited (res->retry_after_s) or answered garbage, BR_EFATAL a
 * refused key or request.
 *
 * The card is the provider's answer in the bridge's words (a JSON object,
 * kept in the store's cache by e-mail):
 *   {"email", "name", "url", "status", "plan", "mrr", "arr" (integer
 *    cents), "currency", "activities": [{"date", "type", "amount" (cents),
 *    "currency"}] (the newest five, newest first)}
 * Adding a provider is one file in crms/ with its struct br_crm_kind and a
 * row in crm.c's table.  Loop thread only.
 */
#ifndef BR_CRM_H
#define BR_CRM_H

#include "br.h"
#include "tracker.h"
#include "upstream.h"

#include <jansson.h>
#include <stdint.h>

struct br_config;
struct br_crm;

/* How many of a company's e-mails are asked at most; how many activities a card keeps. */
#define BR_CRM_COMPANY_EMAILS 50
#define BR_CRM_ACTIVITIES 5

struct br_crm_ops {
    void (*lookup)(struct br_crm *crm, const char *email, br_result_cb cb, void *arg);
    void (*free)(struct br_crm *crm);
};

struct br_crm_kind {
    const char *name;       /* the key under "enrich": "chartmogul" */
    const char *label;      /* "ChartMogul": log lines, /healthz, the admin page */
    const char *default_url;
    double default_rps;
    int (*create)(struct br_crm **out, const struct br_config *cfg, struct br_upstream *up);
};

struct br_crm {
    const struct br_crm_ops *ops;
    const struct br_crm_kind *kind;
    struct br_upstream *up;
    const struct br_config *cfg;
};

/* The kind named name, or NULL. */
const struct br_crm_kind *br_crm_kind(const char *name);
extern const struct br_crm_kind br_chartmogul_kind;

/* The provider cfg configures (cfg->crm must be set), sending through up. */
int br_crm_new(struct br_crm **out, const struct br_config *cfg, struct br_upstream *up);
void br_crm_free(struct br_crm *crm);

/*
 * Money from a CRM's integer cents, "1,234.50 USD" ("-25.00 EUR"; no
 * currency: the number alone).  A new string.
 */
char *br_crm_money(int64_t cents, const char *currency);

/*
 * The template context "crm" made of a card (NULL: not found): found,
 * matched_email, name, url, plan, status, mrr, arr, currency and
 * activities[] {date, type, amount}, money formatted.  A new object.
 */
json_t *br_crm_context(const json_t *card);

#endif
