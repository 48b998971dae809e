/*
 * crm_card.c - the CRM card in a task's description (crm_card.h).
 */
#include "crm_card.h"

#include "config.h"
#include "crm.h"
#include "texts.h"

#include <stdlib.h>

const char *
br_crm_card_value(const char *card)
{
    return card ? card : "null";
}

bool
br_crm_card_pending(struct br_env *env, int64_t conv_id)
{
    int state = 0;
    char *card = NULL, *shown = NULL;

    if (env->crm == NULL)
        return false;
    br_store_conv_crm(env->store, conv_id, &state, &card, &shown);
    free(card);
    free(shown);
    return state == BR_CRM_PENDING;
}

void
br_crm_card_describe(struct br_env *env, int64_t conv_id, const json_t *ctx, struct br_buf *desc)
{
    int state = 0;
    char *card = NULL, *shown = NULL;
    json_t *c, *parsed;
    struct br_buf b;

    if (env->crm == NULL)
        return;
    br_store_conv_crm(env->store, conv_id, &state, &card, &shown);
    free(shown);
    /* Answered (a failed retry keeps the card it had). */
    if (state != BR_CRM_DONE && !(state == BR_CRM_FAILED && card)) {
        free(card);
        return;
    }
    parsed = card ? json_loads(card, 0, NULL) : NULL;
    c = json_deep_copy(ctx);
    json_object_set_new(c, "crm", br_crm_context(parsed));
    br_buf_init(&b, 64 * 1024);
    /* Shown from the first attempt on: a task found again after a crash carries it too. */
    if (br_texts_render(env->cfg, BR_TEXT_CRM_CARD, c, &b) == 0 && b.len > 0 &&
        BR_STORE_TX(env->store, br_store_conv_set_crm_shown(env->store, conv_id, br_crm_card_value(card))) == 0) {
        if (desc->len > 0)
            br_buf_puts(desc, "\n");
        br_buf_append(desc, b.data, b.len);
    }
    br_buf_dispose(&b);
    json_decref(c);
    json_decref(parsed);
    free(card);
}
