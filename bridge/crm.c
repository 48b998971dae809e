/*
 * crm.c - the CRM providers by name, and the card as templates see it
 * (crm.h).
 */
#include "crm.h"

#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct br_crm_kind *const kinds[] = {&br_chartmogul_kind};

const struct br_crm_kind *
br_crm_kind(const char *name)
{
    for (size_t i = 0; i < BR_ARRAY_SIZE(kinds); i++)
        if (name && strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
}

int
br_crm_new(struct br_crm **out, const struct br_config *cfg, struct br_upstream *up)
{
    *out = NULL;
    if (cfg->crm == NULL)
        return BR_EINVAL;
    return cfg->crm->create(out, cfg, up);
}

void
br_crm_free(struct br_crm *crm)
{
    if (crm)
        crm->ops->free(crm);
}

char *
br_crm_money(int64_t cents, const char *currency)
{
    /* The magnitude as unsigned: INT64_MIN has no positive twin. */
    uint64_t abs = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    uint64_t units = abs / 100;
    char digits[32], grouped[48];
    size_t n, j = 0;

    snprintf(digits, sizeof(digits), "%" PRIu64, units);
    n = strlen(digits);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            grouped[j++] = ',';
        grouped[j++] = digits[i];
    }
    grouped[j] = '\0';
    return br_asprintf("%s%s.%02u%s%s", cents < 0 ? "-" : "", grouped, (unsigned)(abs % 100),
                       currency && *currency ? " " : "", currency && *currency ? currency : "");
}

static void
set_str(json_t *out, const char *key, const json_t *card, const char *from)
{
    json_t *v = json_object_get(card, from);
    if (json_is_string(v) && *json_string_value(v))
        json_object_set_new(out, key, json_string(json_string_value(v)));
}

static void
set_money(json_t *out, const char *key, const json_t *card, const char *from, const char *currency)
{
    json_t *v = json_object_get(card, from);
    if (json_is_integer(v)) {
        char *m = br_crm_money((int64_t)json_integer_value(v), currency);
        json_object_set_new(out, key, json_string(m));
        free(m);
    }
}

json_t *
br_crm_context(const json_t *card)
{
    json_t *out = json_object(), *acts, *a;
    const char *currency;
    size_t i;

    if (!json_is_object(card)) {
        json_object_set_new(out, "found", json_false());
        return out;
    }
    json_object_set_new(out, "found", json_true());
    currency = json_string_value(json_object_get(card, "currency"));
    set_str(out, "matched_email", card, "email");
    set_str(out, "name", card, "name");
    /* The link is written as it is (a Textile link cannot escape it): only a plain web address. */
    {
        const char *url = json_string_value(json_object_get(card, "url"));
        if (url && (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) &&
            strcspn(url, " \t\r\n\"'<>") == strlen(url))
            json_object_set_new(out, "url", json_string(url));
    }
    set_str(out, "plan", card, "plan");
    set_str(out, "status", card, "status");
    set_str(out, "currency", card, "currency");
    set_money(out, "mrr", card, "mrr", currency);
    set_money(out, "arr", card, "arr", currency);
    acts = json_array();
    json_array_foreach(json_object_get(card, "activities"), i, a) {
        json_t *item = json_object();
        const char *cur = json_string_value(json_object_get(a, "currency"));
        set_str(item, "date", a, "date");
        set_str(item, "type", a, "type");
        set_money(item, "amount", a, "amount", cur ? cur : currency);
        json_object_set_new(item, "first", json_boolean(i == 0));
        json_array_append_new(acts, item);
    }
    json_object_set_new(out, "has_activities", json_boolean(json_array_size(acts) > 0));
    json_object_set_new(out, "activities", acts);
    return out;
}
