/*
 * planfix_comments.c - a task's comments in Planfix: one written, a
 * task's read (newest first down to one a read has taken), a contact's
 * read, and the poll's read of every task's recent comments.  Comments
 * carry the API user's clock (planfix.h), learned here.
 */
#include "trackers/planfix_call.h"

#include "planfix.h"
#include "config.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Learns the API user's offset from an answer's TimePoint; the newest answer wins (DST). */
static void
learn_clock(struct pf *pf, int64_t utc_ms, long offset_s)
{
    struct br_tracker_clock *clk = &pf->base.clock;
    int64_t now = (int64_t)time(NULL) * 1000;

    /* A comment dated in the future would otherwise outrank every answer until then. */
    if (utc_ms > now)
        utc_ms = now;
    if (utc_ms < clk->learned_at_ms)
        return;
    if (clk->learned_at_ms == 0 || clk->utc_offset_s != offset_s)
        br_info("planfix: the API user's clock is at UTC%c%02ld:%02ld (from Planfix's answers)%s",
                offset_s < 0 ? '-' : '+', labs(offset_s) / 3600, labs(offset_s) % 3600 / 60,
                pf->base.cfg->tracker_timezone ? "; tracker.timezone is set and wins" : "");
    clk->learned_at_ms = utc_ms;
    clk->utc_offset_s = offset_s;
}

/* ---- comments ---- */

void
br_pf_add_comment(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg)
{
    struct call *c = br_pf_call_new(t, cb, arg);
    json_t *body = json_object();
    char *path = br_asprintf("/task/%s/comments/", s->task_id);

    json_object_set_new(body, "description", json_string(s->text));
    if (s->contact_id)
        json_object_set_new(body, "owner", br_pf_person("contact", s->contact_id));
    else if (s->employee)
        json_object_set_new(body, "owner", br_pf_person("user", s->employee));
    if (s->source_key)
        json_object_set_new(body, "sourceObjectId", json_string(s->source_key));
    br_pf_start(c, "POST", path, body, br_pf_take_id);
    free(path);
}

/* A comment id as Planfix's number, or -1. */
static long long
id_number(const char *id)
{
    char *end;
    long long n;

    if (id == NULL || *id < '0' || *id > '9')
        return -1;
    n = strtoll(id, &end, 10);
    return *end == '\0' ? n : -1;
}

static long long
comment_number(json_t *id)
{
    return json_is_integer(id) ? json_integer_value(id) : id_number(json_string_value(id));
}

/*
 * Whether a page of a read newest first is the last one needed: it is
 * full (a shorter one is the last anyway), its ids fall strictly from the
 * first to the last (an order Planfix ignored proves nothing: the read
 * goes on as without known), and its last, oldest comment is one the
 * caller has.  Older comments than that are the caller's already.
 */
static bool
page_reaches_known(struct call *c, json_t *list)
{
    size_t i, n = json_array_size(list);
    long long prev = -1;
    char *last;
    bool has;

    if (n != PAGE_SIZE)
        return false;
    for (i = 0; i < n; i++) {
        long long id = comment_number(json_object_get(json_array_get(list, i), "id"));
        if (id < 0 || (i > 0 && id >= prev))
            return false;
        prev = id;
    }
    last = br_tracker_id(json_object_get(json_array_get(list, n - 1), "id"));
    has = last != NULL && c->known.has(c->known.arg, last);
    free(last);
    return has;
}

/* qsort: by Planfix's id, the order comments were made in. */
static int
oldest_first(const void *a, const void *b)
{
    const struct br_comment_item *x = a, *y = b;
    long long nx = id_number(x->id), ny = id_number(y->id);

    if (nx >= 0 && ny >= 0)
        return nx < ny ? -1 : nx > ny;
    return strcmp(x->id, y->id);
}

static void
got_comments(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *list = br_pf_get_ci(answer, "comments");
    size_t i;
    json_t *v;
    /* Whether the page proves it is newest first, and how old its last comment is. */
    int64_t first_ms = -1, prev_ms = -1, last_ms = -1;
    bool newest_first = true;
    int64_t win_from = c->win_from_ms - c->win_from_ms % 60000;

    json_array_foreach(list, i, v) {
        json_t *owner = json_object_get(v, "owner");
        json_t *desc = json_object_get(v, "description");
        json_t *key = json_object_get(v, "sourceObjectId");
        char *id = br_tracker_id(json_object_get(v, "id"));
        struct br_comment_item *item;
        int64_t at_ms;
        long off;

        if (br_planfix_time_point(json_object_get(v, "dateTime"), &at_ms, &off) == 0) {
            learn_clock(c->pf, at_ms, off);
            if (first_ms < 0)
                first_ms = at_ms;
            if (prev_ms >= 0 && at_ms > prev_ms)
                newest_first = false;
            prev_ms = last_ms = at_ms;
            /* The filter was wider than the window (see br_planfix_filter_dates): keep the window. */
            if (c->windowed && (at_ms < win_from || at_ms > c->win_to_ms)) {
                free(id);
                continue;
            }
        }
        if (id == NULL)
            continue;
        item = br_comment_list_add(&rc->res.comments);
        item->id = id;
        item->author = br_strdup(json_is_string(json_object_get(owner, "id")) ? json_string_value(json_object_get(owner, "id")) : "");
        item->author_name = br_strdup(json_is_string(json_object_get(owner, "name"))
                                          ? json_string_value(json_object_get(owner, "name")) : "");
        item->html = br_strdup(json_is_string(desc) ? json_string_value(desc) : "");
        item->hidden = json_is_true(json_object_get(v, "isHidden"));
        item->source_key = json_is_string(key) && json_string_length(key) ? br_strdup(json_string_value(key)) : NULL;
        item->task = br_tracker_id(json_object_get(json_object_get(v, "task"), "id"));
    }
    /*
     * A poll asks for the newest first; a page that is so (strictly, so
     * that a page of one minute or an order Planfix ignored proves
     * nothing) and ends before the window has the rest of the window.
     */
    if (c->windowed && newest_first && first_ms > last_ms && last_ms < win_from)
        return;
    if (c->known.has != NULL && page_reaches_known(c, list))
        goto done;
    if (json_array_size(list) == PAGE_SIZE && ++c->page < MAX_PAGES) {
        br_pf_next_page(c);
        return;
    }
done:
    if (c->known.has != NULL && rc->res.comments.n > 1)
        qsort(rc->res.comments.items, rc->res.comments.n, sizeof(rc->res.comments.items[0]), oldest_first);
}

/*
 * A task's comments.  With known (a fetch after a reply webhook or a
 * poll), newest first: a long chat's task costs one page a read, not one
 * per hundred comments it ever had.  Either way they come oldest first.
 */
void
br_pf_list_comments(struct br_tracker *t, const char *task_id, const struct br_comments_known *known, br_result_cb cb,
                 void *arg)
{
    struct call *c = br_pf_call_new(t, cb, arg);
    char *path = br_asprintf("/task/%s/comments/list", task_id);
    json_t *body = json_pack("{s:i, s:i, s:s, s:s}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                             "id,dateTime,description,owner,isHidden,type,sourceObjectId", "typeList", "Comments");

    if (known != NULL && known->has != NULL) {
        c->known = *known;
        json_object_set_new(body, "resultOrder", json_pack("[{s:s, s:s}]", "field", "id", "direction", "Desc"));
    }
    br_pf_start_list(c, path, body, got_comments);
    free(path);
}

void
br_pf_list_contact_comments(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg)
{
    struct call *c = br_pf_call_new(t, cb, arg);
    char *path = br_asprintf("/contact/%s/comments/list", contact_id);

    br_pf_start_list(c, path,
                    json_pack("{s:i, s:i, s:s}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                              "id,dateTime,description,owner,sourceObjectId"),
                    got_comments);
    free(path);
}

void
br_pf_list_recent_comments(struct br_tracker *t, int64_t from_ms, int64_t to_ms, br_result_cb cb, void *arg)
{
    struct pf *pf = (struct pf *)t;
    struct call *c = br_pf_call_new(t, cb, arg);
    struct br_planfix_zone zone = {pf->base.cfg->tracker_timezone, pf->base.clock.learned_at_ms > 0,
                                   pf->base.clock.utc_offset_s};
    char from[32], to[32];

    /*
     * Planfix reads the dates in the API user's zone.  Until that is
     * known (a first start without tracker.timezone) the filter spans
     * every zone; newest first, the paging stops at the window's start,
     * and got_comments keeps only the window, so a wider filter costs no
     * more requests and relays nothing twice.
     */
    br_planfix_filter_dates(&zone, from_ms, to_ms, from, to);
    c->windowed = true;
    c->win_from_ms = from_ms;
    c->win_to_ms = to_ms;
    br_pf_start_list(c, "/comment/list",
                      json_pack("{s:i, s:i, s:s, s:s, s:[{s:i, s:s, s:{s:s, s:s, s:s}}], s:[{s:s, s:s}]}", "offset",
                                0, "pageSize", PAGE_SIZE, "fields",
                                "id,dateTime,description,owner,isHidden,type,sourceObjectId,task", "typeList",
                                "Comments", "filters", "type", 3000, "operator", "equal", "value", "dateType",
                                "otherRange_withTime", "dateFrom", from, "dateTo", to, "resultOrder", "field",
                                "dateTime", "direction", "Desc"),
                      got_comments);
}
