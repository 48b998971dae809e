/*
 * reload.c - the settings a reload cannot change (they are read only at
 * start), and what a reload tells the admin about the config it takes.
 * The design of a reload is in reload.h.
 */
#include "reload.h"

#include "config.h"
#include "log.h"
#include "tracker.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum setting_type { SETTING_STR, SETTING_INT };

/*
 * Read once at start: the listening socket is bound and the store opened
 * before the loop runs.  One row per setting, by its key in the file.
 */
static const struct restart_only {
    const char *key;
    enum setting_type type;
    size_t offset;
} restart_only[] = {
    {"listen.host", SETTING_STR, offsetof(struct br_config, listen_host)},
    {"listen.port", SETTING_INT, offsetof(struct br_config, listen_port)},
    {"store.kind", SETTING_STR, offsetof(struct br_config, store_kind)},
    {"store.path", SETTING_STR, offsetof(struct br_config, store_path)},
};

/* The setting's value as a log line shows it (escaped: it comes from a file); free it. */
static char *
shown(const struct br_config *c, const struct restart_only *s)
{
    const char *base = (const char *)c + s->offset;

    if (s->type == SETTING_INT)
        return br_asprintf("%d", *(const int *)(const void *)base);
    return br_log_escape(*(char *const *)(const void *)base, 200);
}

/* Whether the setting differs; when it does, next gets cur's value (what runs). */
static int
keep_running_value(const struct br_config *cur, struct br_config *next, const struct restart_only *s)
{
    const char *from = (const char *)cur + s->offset;
    char *to = (char *)next + s->offset;

    if (s->type == SETTING_INT) {
        int *n = (int *)(void *)to;
        int c = *(const int *)(const void *)from;
        if (*n == c)
            return 0;
        *n = c;
        return 1;
    } else {
        char **n = (char **)(void *)to;
        const char *c = *(char *const *)(const void *)from;
        if (*n && c && strcmp(*n, c) == 0)
            return 0;
        if (*n == NULL && c == NULL)
            return 0;
        free(*n);
        *n = c ? br_strdup(c) : NULL;
        return 1;
    }
}

/* Logs the channels next adds to cur's, and those it removes. */
static void
compare_channels(const struct br_config *cur, const struct br_config *next)
{
    for (size_t i = 0; i < next->n_channels; i++)
        if (br_config_channel(cur, next->channels[i].name) == NULL)
            br_info("reload: channel %s added", next->channels[i].name);
    for (size_t i = 0; i < cur->n_channels; i++)
        if (br_config_channel(next, cur->channels[i].name) == NULL)
            br_warn("reload: channel %s removed: its webhooks get 404, and its jobs still waiting fail "
                    "(dead letters)", cur->channels[i].name);
}

int
br_reload_compare(const struct br_config *cur, struct br_config *next, struct br_diag *diag)
{
    /* Kinds are static rows (tracker.h): their names are never a secret. */
    if (cur->tracker != next->tracker) {
        br_diag_add(diag, "tracker.kind: %s while the bridge runs with %s: another tracker takes a restart",
                    next->tracker ? next->tracker->name : "(none)", cur->tracker ? cur->tracker->name : "(none)");
        return BR_EINVAL;
    }
    for (size_t i = 0; i < BR_ARRAY_SIZE(restart_only); i++) {
        const struct restart_only *s = &restart_only[i];
        char *was = shown(cur, s), *now = shown(next, s);
        if (keep_running_value(cur, next, s))
            br_warn("reload: %s changed (%s -> %s): takes effect at the next restart", s->key, was, now);
        free(was);
        free(now);
    }
    compare_channels(cur, next);
    return 0;
}
