/*
 * refusals.c - refused requests, one log line per address and reason per
 * minute (refusals.h): a fixed table of the latest lines and their counts,
 * and a timer set for the earliest count whose minute ends.
 */
#include "refusals.h"

#include "br.h"
#include "log.h"
#include "store.h" /* br_now_ms */

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW_MS (60 * 1000)
#define SLOTS 512
#define ADDR_MAX 64
/* Raw bytes of a detail kept; escaped, each may take four. */
#define DETAIL_RAW_MAX 80
#define DETAIL_MAX (DETAIL_RAW_MAX * 4 + 8)

struct entry {
    bool used;
    uint32_t hash;            /* of addr, status and reason: compared before the strings */
    char addr[ADDR_MAX];
    int status;
    const char *reason;       /* a constant */
    char detail[DETAIL_MAX];  /* escaped; the latest refusal's */
    int64_t logged_ms;        /* the last line of this entry */
    uint64_t count;           /* refused since, not yet in a line */
};

struct br_refusals {
    uv_timer_t timer;
    bool has_timer;
    bool closing;
    bool closed;
    int64_t armed_for;        /* when the timer fires (wall ms), 0 when it is not set */
    struct entry *e;
};

static void on_timer(uv_timer_t *t);

struct br_refusals *
br_refusals_new(uv_loop_t *loop)
{
    struct br_refusals *r = br_calloc(1, sizeof(*r));

    r->e = br_calloc(SLOTS, sizeof(*r->e));
    if (loop != NULL) {
        uv_timer_init(loop, &r->timer);
        r->timer.data = r;
        r->has_timer = true;
    }
    return r;
}

static uint32_t
key_hash(const char *addr, int status, const char *reason)
{
    /* FNV-1a over the address, then the status and the reason's own text. */
    uint32_t h = 2166136261u;

    for (const char *p = addr; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ (uint32_t)status) * 16777619u;
    for (const char *p = reason; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

static void
clock_text(int64_t ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, n, "%H:%M:%S", &tm);
}

/* One line: the entry's latest refusal, and its count when there is one. */
static void
write_line(const struct entry *e)
{
    char since[16];
    char *addr = br_log_escape(e->addr, ADDR_MAX);

    if (e->count == 0) {
        br_warn("request from %s refused: %d %s%s", addr, e->status, e->reason, e->detail);
    } else {
        clock_text(e->logged_ms, since, sizeof(since));
        br_warn("request from %s refused: %d %s%s (%" PRIu64 " more since %s)", addr, e->status, e->reason,
                e->detail, e->count, since);
    }
    free(addr);
}

static void
arm(struct br_refusals *r, int64_t due_ms, int64_t now_ms)
{
    if (!r->has_timer || r->closing || (r->armed_for != 0 && r->armed_for <= due_ms))
        return;
    r->armed_for = due_ms;
    uv_timer_start(&r->timer, on_timer, (uint64_t)(due_ms > now_ms ? due_ms - now_ms : 0), 0);
}

/* The entry of this key, or a slot for it: a free one, else the one that logged longest ago. */
static struct entry *
find(struct br_refusals *r, const char *addr, int status, const char *reason, uint32_t hash, bool *fresh)
{
    struct entry *free_slot = NULL, *oldest = NULL;

    *fresh = false;
    for (size_t i = 0; i < SLOTS; i++) {
        struct entry *e = &r->e[i];

        if (!e->used) {
            if (free_slot == NULL)
                free_slot = e;
            continue;
        }
        if (e->hash == hash && e->status == status && strcmp(e->reason, reason) == 0 && strcmp(e->addr, addr) == 0)
            return e;
        if (oldest == NULL || e->logged_ms < oldest->logged_ms)
            oldest = e;
    }
    *fresh = true;
    if (free_slot != NULL)
        return free_slot;
    /* Full: its count is written now rather than lost. */
    if (oldest->count > 0)
        write_line(oldest);
    return oldest;
}

static void
set_detail(struct entry *e, const char *detail)
{
    struct br_buf b;
    char *esc;

    e->detail[0] = '\0';
    if (detail == NULL)
        return;
    esc = br_log_escape(detail, DETAIL_RAW_MAX);
    br_buf_init(&b, 0);
    /* Quoted in the line: a quote of its own would blur where it ends. */
    br_buf_puts(&b, " \"");
    for (const char *p = esc; *p != '\0'; p++) {
        if (*p == '"')
            br_buf_puts(&b, "\\x22");
        else
            br_buf_putc(&b, *p);
    }
    br_buf_putc(&b, '"');
    snprintf(e->detail, sizeof(e->detail), "%s", b.data);
    br_buf_dispose(&b);
    free(esc);
}

void
br_refusals_note(struct br_refusals *r, const char *addr, int status, const char *reason, const char *detail,
                 int64_t now_ms)
{
    char key[ADDR_MAX];
    uint32_t hash;
    struct entry *e;
    bool fresh;

    if (r == NULL)
        return;
    /* Cut to what the table keeps, so that the same address is found again. */
    snprintf(key, sizeof(key), "%s", addr != NULL ? addr : "");
    addr = key;
    hash = key_hash(addr, status, reason);
    e = find(r, addr, status, reason, hash, &fresh);
    if (fresh) {
        memset(e, 0, sizeof(*e));
        e->used = true;
        e->hash = hash;
        snprintf(e->addr, sizeof(e->addr), "%s", addr);
        e->status = status;
        e->reason = reason;
    }
    if (!fresh && now_ms - e->logged_ms < WINDOW_MS) {
        set_detail(e, detail);
        e->count++;
        arm(r, e->logged_ms + WINDOW_MS, now_ms);
        return;
    }
    /* A count the timer has not written yet (it is due) goes first, in its own line. */
    if (e->count > 0) {
        write_line(e);
        e->count = 0;
    }
    set_detail(e, detail);
    write_line(e);
    e->logged_ms = now_ms;
}

void
br_refusals_flush(struct br_refusals *r, int64_t now_ms)
{
    int64_t next = 0;

    if (r == NULL)
        return;
    for (size_t i = 0; i < SLOTS; i++) {
        struct entry *e = &r->e[i];

        if (!e->used || e->count == 0)
            continue;
        if (now_ms - e->logged_ms >= WINDOW_MS) {
            write_line(e);
            e->count = 0;
            e->logged_ms = now_ms;
        } else if (next == 0 || e->logged_ms + WINDOW_MS < next) {
            next = e->logged_ms + WINDOW_MS;
        }
    }
    if (next != 0)
        arm(r, next, now_ms);
}

static void
on_timer(uv_timer_t *t)
{
    struct br_refusals *r = t->data;

    r->armed_for = 0;
    br_refusals_flush(r, br_now_ms());
}

static void
on_closed(uv_handle_t *h)
{
    struct br_refusals *r = h->data;

    r->closed = true;
}

void
br_refusals_close(struct br_refusals *r)
{
    if (r == NULL || r->closing)
        return;
    /* Counts whose minute is not over are written now: the process is ending. */
    for (size_t i = 0; i < SLOTS; i++) {
        struct entry *e = &r->e[i];

        if (e->used && e->count > 0) {
            write_line(e);
            e->count = 0;
        }
    }
    r->closing = true;
    if (r->has_timer) {
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, on_closed);
    }
}

void
br_refusals_free(struct br_refusals *r)
{
    if (r == NULL)
        return;
    if (r->has_timer && !r->closed) {
        /* Its timer is still on the loop; freeing would corrupt it. */
        br_error("refusals: freed before close finished; leaking it");
        return;
    }
    free(r->e);
    free(r);
}
