#include "texts.h"

#include "config.h"
#include "tracker.h"
#include "templates/tpl.h"
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The shapes the texts' contexts share (see br_tpl_check for the notation). */
#define S_VISITOR                                                                                                  \
    "\"visitor\":{\"name\":\"\",\"email\":\"\",\"phone\":\"\",\"displayed_name\":\"\",\"notes\":\"\","          \
    "\"city\":\"\",\"country\":\"\",\"pages\":[{\"url\":\"\",\"title\":\"\"}],\"source\":\"\",\"device\":\"\","   \
    "\"browser\":\"\",\"os\":\"\",\"ip\":\"\",\"info\":\"*\"}"
#define S_CHANNEL "\"channel\":{\"name\":\"\"}"
#define S_DEVICE_FIELDS "\"browser\":\"\",\"os\":\"\",\"device\":\"\",\"ip\":\"\",\"city\":\"\",\"country\":\"\""
#define S_DEVICE                                                                                                   \
    "\"device\":{" S_DEVICE_FIELDS ",\"items\":[{" S_DEVICE_FIELDS ",\"value\":\"\",\"first\":\"\"}],"           \
    "\"pages\":[{\"url\":\"\",\"title\":\"\"}]}"
#define S_TIME "\"time\":\"\",\"date\":\"\",\"clock\":\"\""
#define S_MESSAGE                                                                                                  \
    "{\"author\":\"\",\"text\":\"\",\"text_html\":\"\"," S_TIME ",\"type\":\"\",\"is_visitor\":\"\","            \
    "\"is_agent\":\"\",\"agent\":{\"id\":\"\",\"name\":\"\"},\"first\":\"\"}"
#define S_MATCH "\"email\":\"\",\"verified\":\"\""
#define S_CRM                                                                                                      \
    "\"crm\":{\"found\":\"\",\"matched_email\":\"\",\"name\":\"\",\"url\":\"\",\"plan\":\"\",\"status\":\"\"," \
    "\"mrr\":\"\",\"arr\":\"\",\"currency\":\"\",\"has_activities\":\"\",\"activities\":[{\"date\":\"\",\"type\":\"\",\"amount\":\"\",\"first\":\"\"}]}"

static const struct br_text_info infos[BR_TEXT_COUNT] = {
    [BR_TEXT_MESSAGES] = {"messages", true,
                          "{" S_VISITOR "," S_CHANNEL ",\"messages\":[" S_MESSAGE "],\"single\":\"\",\"count\":\"\"}"},
    [BR_TEXT_AGENT_MESSAGE] = {"agent_message", true,
                               "{" S_VISITOR "," S_CHANNEL ",\"agent\":{\"id\":\"\",\"name\":\"\",\"employee\":\"\"},"
                               "\"text\":\"\",\"text_html\":\"\"," S_TIME "}"},
    [BR_TEXT_NEW_VISIT] = {"new_visit", true, "{" S_VISITOR "," S_CHANNEL "," S_DEVICE ",\"chat\":{\"id\":\"\"}}"},
    [BR_TEXT_DEVICE_JOINED] = {"device_joined", true, "{" S_VISITOR "," S_CHANNEL "," S_DEVICE "," S_MATCH "}"},
    [BR_TEXT_CONTINUES_IN] = {"continues_in", true,
                              "{" S_VISITOR "," S_CHANNEL ",\"task\":{\"id\":\"\"}," S_MATCH "}"},
    [BR_TEXT_PREVIOUS_TASK] = {"previous_task", true,
                               "{" S_VISITOR "," S_CHANNEL ",\"previous_task\":{\"id\":\"\",\"messages\":[" S_MESSAGE
                               "]}}"},
    [BR_TEXT_VISITOR_DETAILS] = {"visitor_details", true,
                                 "{" S_VISITOR "," S_CHANNEL ",\"details\":{\"name\":\"\",\"email\":\"\",\"phone\":\"\","
                                 "\"items\":[{\"name\":\"\",\"email\":\"\",\"phone\":\"\",\"value\":\"\",\"first\":\"\"}]}}"},
    [BR_TEXT_CONTACT_VISIT] = {"contact_visit", true,
                               "{" S_VISITOR "," S_CHANNEL "," S_DEVICE ",\"chat\":{\"id\":\"\"},\"task\":{\"id\":\"\"}}"},
    [BR_TEXT_VISITOR_LABEL] = {"visitor_label", false, "{" S_VISITOR "," S_CHANNEL "}"},
    [BR_TEXT_AGENT_LABEL] = {"agent_label", false, "{" S_VISITOR "," S_CHANNEL ",\"agent\":{\"id\":\"\"}}"},
    [BR_TEXT_CONTACT_NAME] = {"contact_name", false, "{" S_VISITOR "," S_CHANNEL "}"},
    [BR_TEXT_FALLBACK_TITLE] = {"fallback_title", false, "{" S_VISITOR "," S_CHANNEL "}"},
    [BR_TEXT_FALLBACK_DESCRIPTION] = {"fallback_description", true, "{" S_VISITOR "," S_CHANNEL "}"},
    [BR_TEXT_CRM_CARD] = {"crm_card", true, "{" S_VISITOR "," S_CHANNEL "," S_CRM "}"},
};

/* How each language writes a moment; the zone is named after it (UTC, MSK, +03). */
static const struct {
    const char *lang;
    const char *date;
    const char *time;
} formats[] = {
    {"en", "%Y-%m-%d", "%Y-%m-%d %H:%M"},
    {"ru", "%d.%m.%Y", "%d.%m.%Y %H:%M"},
};

const struct br_text_info *
br_text_info(enum br_text t)
{
    return (unsigned)t < BR_TEXT_COUNT ? &infos[t] : NULL;
}

bool
br_texts_language_known(const char *lang)
{
    for (size_t i = 0; i < BR_ARRAY_SIZE(formats); i++)
        if (lang && strcmp(formats[i].lang, lang) == 0)
            return true;
    return false;
}

static enum br_tpl_escape
escape_of(const struct br_config *cfg, enum br_text t)
{
    if (!infos[t].rich)
        return BR_TPL_ESCAPE_NONE;
    return cfg->tracker ? cfg->tracker->text_format : BR_TPL_ESCAPE_HTML;
}

int
br_texts_render(const struct br_config *cfg, enum br_text t, const json_t *ctx, struct br_buf *out)
{
    size_t start = out->len;
    int rc;

    if ((unsigned)t >= BR_TEXT_COUNT || cfg->texts[t] == NULL)
        return BR_EINVAL;
    rc = br_tpl_render(cfg->texts[t], ctx, escape_of(cfg, t), out);
    /* A template file ends with a newline (editors add one); the text it makes does not. */
    while (rc == 0 && out->len > start && strchr(" \t\r\n", out->data[out->len - 1]) != NULL)
        out->data[--out->len] = '\0';
    return rc;
}

char *
br_texts_string(const struct br_config *cfg, enum br_text t, const json_t *ctx)
{
    struct br_buf b;
    char *s;

    br_buf_init(&b, 64 * 1024);
    if (br_texts_render(cfg, t, ctx, &b) != 0)
        br_buf_reset(&b);
    s = b.data ? br_buf_steal(&b) : br_strdup("");
    br_buf_dispose(&b);
    return s;
}

void
br_texts_set_time(const struct br_config *cfg, json_t *obj, int64_t ms)
{
    const char *date = formats[0].date, *time = formats[0].time;
    const char *zone = cfg->timezone ? cfg->timezone : "UTC";
    char buf[96], when[64];
    struct tm tm;

    if (ms <= 0)
        return;
    for (size_t i = 0; i < BR_ARRAY_SIZE(formats); i++) {
        if (cfg->language && strcmp(formats[i].lang, cfg->language) == 0) {
            date = formats[i].date;
            time = formats[i].time;
        }
    }
    br_tz_local(zone, ms / 1000, &tm);
    strftime(when, sizeof(when), time, &tm);
    /* glibc names UTC "GMT" when it breaks a time down; people expect "UTC". */
    snprintf(buf, sizeof(buf), "%s %s", when,
             tm.tm_gmtoff == 0 && (strcmp(zone, "UTC") == 0 || strcmp(zone, "Etc/UTC") == 0) ? "UTC" : tm.tm_zone);
    json_object_set_new(obj, "time", json_string(buf));
    strftime(buf, sizeof(buf), date, &tm);
    json_object_set_new(obj, "date", json_string(buf));
    strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
    json_object_set_new(obj, "clock", json_string(buf));
}
