#include "tracker.h"

#include "config.h"

#include <stdlib.h>
#include <string.h>

void
br_result_dispose(struct br_result *r)
{
    free(r->id);
    json_decref(r->items);
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
