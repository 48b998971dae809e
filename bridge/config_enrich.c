/*
 * config_enrich.c - the enrich section: which CRM the bridge asks about
 * the person who writes (crm.h), with its key, address, rate budget, cache
 * and timeout.  Without the section nothing is asked.
 *
 *   "enrich": {"chartmogul": {"api_key": "env:CHARTMOGUL_API_KEY",
 *              "url": "https://api.chartmogul.com", "requests_per_second": 5,
 *              "cache_ttl_s": 3600, "timeout_ms": 5000}}
 */
#include "config_load.h"

#include "crm.h"

#include <stdlib.h>

void
br_conf_load_enrich(struct br_conf_loader *L, json_t *root)
{
    static const char *const known_enrich[] = {"chartmogul", NULL};
    static const char *const known_provider[] = {"api_key", "url", "requests_per_second", "cache_ttl_s",
                                                 "timeout_ms", NULL};
    struct br_config *c = L->cfg;
    json_t *o = br_conf_obj(L, root, "", "enrich", false), *p = NULL;
    const struct br_crm_kind *kind = NULL;
    char *base;

    if (o == NULL)
        return;
    br_conf_keys(L, o, "enrich", known_enrich);
    /* One provider at a time: the first the section names (the only one today). */
    for (const char *const *k = known_enrich; *k && kind == NULL; k++) {
        if ((p = br_conf_obj(L, o, "enrich", *k, false)) != NULL)
            kind = br_crm_kind(*k);
    }
    if (kind == NULL)
        return;
    base = br_asprintf("enrich.%s", kind->name);
    br_conf_keys(L, p, base, known_provider);
    c->crm = kind;
    c->crm_api_key = br_conf_str(L, p, base, "api_key", NULL, true, true);
    c->crm_url = br_conf_strip_slash(br_conf_str(L, p, base, "url", kind->default_url, false, false));
    br_conf_check_url(L, base, "url", c->crm_url);
    c->crm_rps = br_conf_num(L, p, base, "requests_per_second", kind->default_rps, 0.01, 1000);
    c->crm_cache_ttl_s = br_conf_int(L, p, base, "cache_ttl_s", 86400, 0, 365L * 86400, false);
    c->crm_timeout_ms = br_conf_int(L, p, base, "timeout_ms", 5000, 100, 600000, false);
    free(base);
}
