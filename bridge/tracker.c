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

int
br_tracker_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up)
{
    /* One row per driver; config validation already refused unknown kinds. */
    if (strcmp(cfg->tracker_kind, "planfix") == 0)
        return br_planfix_new(out, cfg, up);
    if (strcmp(cfg->tracker_kind, "redmine") == 0)
        return br_redmine_new(out, cfg, up);
    return BR_EINVAL;
}

void
br_tracker_free(struct br_tracker *t)
{
    if (t)
        t->ops->free(t);
}
