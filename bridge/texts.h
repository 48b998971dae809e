/*
 * texts.h - the bridge's own words: every text it writes into the tracker
 * by itself (notes, the comments that carry chat messages, labels, the
 * contact's placeholder name) is a template, like the task's title and
 * description, so an admin can change it and the team reads its language.
 *
 * The defaults live in templates/<language>/<file>.<ext>: ".html" for
 * Planfix, ".textile" for Redmine (rich texts), ".txt" for plain ones.
 * The config's "texts" object replaces any of them ("new_visit": "..."
 * inline or "new_visit_file": "path").  config.c loads them through this
 * table; the engine renders them with br_texts_render.
 *
 * Times are shown in the config's time zone and the language's format.
 */
#ifndef BR_TEXTS_H
#define BR_TEXTS_H

#include "br.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct br_config;

enum br_text {
    BR_TEXT_MESSAGES,             /* a comment carrying one or more visitor messages */
    BR_TEXT_AGENT_MESSAGE,        /* an agent's message typed in Chatra */
    BR_TEXT_NEW_VISIT,            /* note: a known visitor started a new chat */
    BR_TEXT_DEVICE_JOINED,        /* note: a new device joined this conversation */
    BR_TEXT_CONTINUES_IN,         /* note on a thread joined into another */
    BR_TEXT_PREVIOUS_TASK,        /* note: the previous task, when the description does not link it */
    BR_TEXT_VISITOR_DETAILS,      /* note: the visitor gave a name, e-mail or phone (no contacts) */
    BR_TEXT_CONTACT_VISIT,        /* comment on the contact's card: a visit */
    BR_TEXT_VISITOR_LABEL,        /* author label of a visitor's message (plain) */
    BR_TEXT_AGENT_LABEL,          /* author label of an agent no employee maps to (plain) */
    BR_TEXT_CONTACT_NAME,         /* the contact's name when the visitor gave none (plain) */
    BR_TEXT_FALLBACK_TITLE,       /* the task title when the title template cannot render (plain) */
    BR_TEXT_FALLBACK_DESCRIPTION, /* the description when its template cannot render */
    BR_TEXT_CRM_CARD,             /* the CRM card (crm.h): in the description, or a comment */
    BR_TEXT_COUNT
};

struct br_text_info {
    const char *key;      /* the key under "texts" in the config, and the file's base name */
    bool rich;            /* in the tracker's text format (.html / .textile), else plain (.txt) */
    const char *schema;   /* JSON: the variables its template may use (see br_tpl_check) */
};

const struct br_text_info *br_text_info(enum br_text t);

/* The languages with shipped texts. */
bool br_texts_language_known(const char *lang);

/*
 * Renders text t of cfg with ctx into out, escaped for the tracker's
 * format (plain texts are not escaped).  A template that cannot render
 * (too long for out) leaves out unchanged and returns BR_ELIMIT.
 */
int br_texts_render(const struct br_config *cfg, enum br_text t, const json_t *ctx, struct br_buf *out);

/* The same as a new string; "" when it cannot render. */
char *br_texts_string(const struct br_config *cfg, enum br_text t, const json_t *ctx);

/*
 * A moment (ms since the epoch) as the template variables of a time, in
 * the config's zone and language: "time" (date, hour and minute, zone),
 * "date", "clock" (hh:mm:ss).  Set on obj; nothing for ms <= 0.
 */
void br_texts_set_time(const struct br_config *cfg, json_t *obj, int64_t ms);

#endif
