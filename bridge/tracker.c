#include "tracker.h"

#include "config.h"

#include <stdlib.h>
#include <string.h>

struct br_comment_item *
br_comment_list_add(struct br_comment_list *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->items = br_realloc(l->items, l->cap * sizeof(*l->items));
    }
    memset(&l->items[l->n], 0, sizeof(l->items[0]));
    return &l->items[l->n++];
}

void
br_comment_list_dispose(struct br_comment_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct br_comment_item *c = &l->items[i];
        free(c->id);
        free(c->author);
        free(c->author_name);
        free(c->html);
        free(c->source_key);
        free(c->task);
    }
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void
br_result_dispose(struct br_result *r)
{
    free(r->id);
    br_comment_list_dispose(&r->comments);
    free(r->change);
    json_decref(r->data);
    free(r->error);
    free(r->request);
    free(r->response);
    memset(r, 0, sizeof(*r));
}

char *
br_tracker_id(json_t *v)
{
    if (json_is_integer(v))
        return br_asprintf("%lld", (long long)json_integer_value(v));
    if (json_is_string(v) && json_string_length(v) > 0)
        return br_strdup(json_string_value(v));
    return NULL;
}

/* Every kind the bridge knows: one row per driver. */
static const struct br_tracker_kind *const kinds[] = {&br_planfix_kind, &br_redmine_kind};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const struct br_tracker_kind *
br_tracker_kind(const char *name)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
}

const char *
br_tracker_kind_names(void)
{
    static char names[128];
    if (names[0] == '\0') {
        for (size_t i = 0; i < N_KINDS; i++) {
            if (i)
                strncat(names, ", ", sizeof(names) - strlen(names) - 1);
            strncat(names, kinds[i]->name, sizeof(names) - strlen(names) - 1);
        }
    }
    return names;
}

const char *const *
br_tracker_kind_keys(void)
{
    static const char *keys[32];
    if (keys[0] == NULL) {
        size_t n = 0;
        for (size_t i = 0; i < N_KINDS; i++) {
            for (const char *const *k = kinds[i]->keys; *k; k++) {
                size_t j = 0;
                while (j < n && strcmp(keys[j], *k) != 0)
                    j++;
                if (j == n && n + 1 < sizeof(keys) / sizeof(keys[0]))
                    keys[n++] = *k;
            }
        }
    }
    return keys;
}

int
br_tracker_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up)
{
    /* Config validation already refused unknown kinds. */
    if (cfg->tracker == NULL)
        return BR_EINVAL;
    return cfg->tracker->create(out, cfg, up);
}

void
br_tracker_free(struct br_tracker *t)
{
    if (t)
        t->ops->free(t);
}
