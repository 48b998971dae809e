/*
 * crm.c - `crm --email X`: what the CRM card of the task would show for
 * an address, asked from the CRM now (enrich.<provider>, its key and its
 * rate), without the store's cache and without a running bridge.
 */
#include "cli.h"

#include "bridge/config.h"
#include "bridge/crm.h"
#include "bridge/crm_lookup.h"
#include "bridge/email.h"
#include "bridge/http_client.h"
#include "bridge/log.h"
#include "bridge/texts.h"
#include "bridge/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct crm_cmd {
    uv_loop_t loop;
    struct br_config *cfg;
    struct br_http_client *http;
    struct br_upstream *up;
    struct br_crm *crm;
    int status;
};

static void
on_http_closed(void *arg)
{
    (void)arg;
}

static void
on_up_closed(void *arg)
{
    struct crm_cmd *c = arg;
    br_http_client_close(c->http, on_http_closed, c);
}

static void
found(void *arg, int err, const json_t *card, const char *error)
{
    struct crm_cmd *c = arg;

    if (err) {
        char *esc = br_log_escape(error ? error : br_strerror(err), 500);
        fprintf(stderr, "chatra-bridge: %s could not be asked: %s\n", c->cfg->crm->label, esc);
        free(esc);
        c->status = 1;
    } else {
        json_t *ctx = json_pack("{s:o}", "crm", br_crm_context(card));
        char *text = br_texts_string(c->cfg, BR_TEXT_CRM_CARD, ctx);
        json_t *out = json_pack("{s:O, s:s}", "crm", json_object_get(ctx, "crm"), "card", text);
        char *s = json_dumps(out, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        printf("%s\n", s);
        free(s);
        free(text);
        json_decref(out);
        json_decref(ctx);
        c->status = 0;
    }
    br_upstream_close(c->up, on_up_closed, c);
}

int
br_cmd_crm(const struct br_cli_args *a)
{
    struct crm_cmd c = {.status = 1};
    char *email;
    json_t *emails;

    if (a->email == NULL) {
        fprintf(stderr, "chatra-bridge crm: --email is required\n");
        return 2;
    }
    if ((email = br_email_normalize(a->email, strlen(a->email))) == NULL) {
        fprintf(stderr, "chatra-bridge crm: \"%s\" is not an e-mail address\n", a->email);
        return 2;
    }
    if (br_cli_load_config(a->config, &c.cfg) != 0) {
        free(email);
        return 2;
    }
    if (c.cfg->crm == NULL) {
        fprintf(stderr, "chatra-bridge crm: %s has no enrich section: the CRM card is off\n", a->config);
        free(email);
        br_config_free(c.cfg);
        return 2;
    }
    uv_loop_init(&c.loop);
    br_http_client_new(&c.http, &c.loop);
    br_upstream_new(&c.up, &c.loop, c.http, "crm", c.cfg->crm_rps, 4);
    br_crm_new(&c.crm, c.cfg, c.up);
    emails = json_pack("[s]", email);
    br_crm_lookup(c.crm, NULL, 0, emails, found, &c);
    json_decref(emails);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    br_crm_free(c.crm);
    br_upstream_free(c.up);
    br_http_client_free(c.http);
    if (uv_loop_close(&c.loop) != 0)
        fprintf(stderr, "chatra-bridge crm: the loop did not close\n");
    br_config_free(c.cfg);
    br_log_clear_secrets();
    free(email);
    return c.status;
}
