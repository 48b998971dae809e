/*
 * http_conn.c - a connection of the HTTP server from a request to its
 * answer: its state, running the handler, writing the answer (in one write
 * when small, else headers and then the body when lws says writable), and
 * the answers that wait for the loop turn's flush.
 */
#include "http_conn.h"

#include "log.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITE_CHUNK (64 * 1024)
/* Answers up to this size go out in one write with their headers. */
#define SMALL_RESPONSE 8192
/* Room for the server's own headers; the handler's come on top. */
#define HEADER_ROOM 1024

static const char body_too_large[] = "{\"error\":\"body too large\"}";
static const char bad_chunked[] = "{\"error\":\"malformed chunked body\"}";

/* ---- connections ---------------------------------------------------- */

static void
unwait(struct conn *c)
{
    struct br_http_server *s = c->srv;

    if (!c->waiting)
        return;
    if (c->wprev != NULL)
        c->wprev->wnext = c->wnext;
    else
        s->waiting = c->wnext;
    if (c->wnext != NULL)
        c->wnext->wprev = c->wprev;
    c->wprev = c->wnext = NULL;
    c->waiting = 0;
}

void
br_http_conn_reset(struct conn *c)
{
    unwait(c);
    c->ready = 0;
    free(c->path);
    free(c->query);
    free(c->content_type);
    c->path = c->query = c->content_type = NULL;
    br_http_extra_dispose(&c->extra);
    free(c->out_headers);
    c->out_headers = NULL;
    br_buf_dispose(&c->body);
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    c->body_seen = 0;
    c->too_large = 0;
    c->responding = 0;
    c->head = 0;
    c->close_after = 0;
    c->flushing = 0;
    c->chunked = 0;
    c->ch_state = CH_SIZE;
    c->ch_left = 0;
    c->ch_digits = 0;
    c->ch_line = 0;
    c->method = NULL;
}

struct conn *
br_http_conn_new(struct br_http_server *s, struct lws *wsi)
{
    struct conn *c = br_calloc(1, sizeof(*c));

    c->srv = s;
    c->wsi = wsi;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    return c;
}

void
br_http_conn_free(struct conn *c)
{
    struct br_http_server *s = c->srv;

    unwait(c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    br_http_conn_reset(c);
    free(c);
}

void
br_http_extra_dispose(struct br_http_extra *x)
{
    free(x->authorization);
    free(x->cookie);
    free(x->origin);
    free(x->host);
    free(x->csrf_token);
    memset(x, 0, sizeof(*x));
}

/* ---- answering ------------------------------------------------------ */

/*
 * A small answer on a connection that stays open (every webhook's) goes
 * out as one write, headers and body together, and the connection is
 * ready for the next request at once: no second write, no wait for
 * LWS_CALLBACK_HTTP_WRITEABLE.  The length is written as a plain header
 * so that lws does not count the header bytes against it; lws keeps and
 * sends later whatever the socket does not take now.
 */
static int
respond_at_once(struct conn *c, unsigned status, const char *ctype)
{
    size_t hroom = HEADER_ROOM + (c->out_headers ? strlen(c->out_headers) : 0);
    size_t room = LWS_PRE + hroom + c->out_len;
    unsigned char *buf = br_malloc(room);
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + LWS_PRE + hroom;
    char len[24];
    int n, rc = -1;

    snprintf(len, sizeof(len), "%zu", c->out_len);
    if (lws_add_http_header_status(c->wsi, status, &p, end) == 0 &&
        lws_add_http_header_by_token(c->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)ctype,
                                     (int)strlen(ctype), &p, end) == 0 &&
        lws_add_http_header_by_name(c->wsi, (const unsigned char *)"content-length:", (const unsigned char *)len,
                                    (int)strlen(len), &p, end) == 0 &&
        br_http_add_headers(c->wsi, c->out_headers, &p, end) == 0 &&
        lws_finalize_http_header(c->wsi, &p, end) == 0) {
        memcpy(p, c->out + LWS_PRE, c->out_len);
        p += c->out_len;
        n = lws_write(c->wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS);
        if (n >= (int)(p - start)) {
            br_http_conn_reset(c);
            rc = lws_http_transaction_completed(c->wsi) ? -1 : 0;
        }
    }
    free(buf);
    return rc;
}

/* Runs the handler; its answer is sent now or, with after_flush, after the loop turn's flush. */
int
br_http_respond(struct conn *c)
{
    struct br_http_server *s = c->srv;
    struct br_http_response res;
    struct br_http_request req = {
        .method = c->method,
        .path = c->path,
        .query = c->query,
        .content_type = c->content_type,
        .authorization = br_http_or_empty(c->extra.authorization),
        .remote_addr = c->remote,
        .body = c->body.data != NULL ? c->body.data : "",
        .body_len = c->body.len,
        .cookie = br_http_or_empty(c->extra.cookie),
        .origin = br_http_or_empty(c->extra.origin),
        .host = br_http_or_empty(c->extra.host),
        .csrf_token = br_http_or_empty(c->extra.csrf_token),
        .forwarded_proto = c->extra.forwarded_proto,
    };

    c->responding = 1;
    res.status = 200;
    res.content_type = "application/json";
    res.after_flush = 0;
    br_buf_init(&res.body, 0);
    br_buf_init(&res.headers, 16 * 1024);

    if (c->ch_state == CH_BAD || c->too_large) {
        res.status = c->ch_state == CH_BAD ? 400 : 413;
        br_buf_puts(&res.body, c->ch_state == CH_BAD ? bad_chunked : body_too_large);
        req.body = "";
        req.body_len = 0;
        if (s->opts.refused != NULL)
            s->opts.refused(s->opts.ctx, &req, res.status);
    } else {
        s->opts.handler(s->opts.ctx, &req, &res);
    }
    /* The request body is not needed any more; free it before writing. */
    br_buf_dispose(&c->body);

    if (res.status < 100 || res.status > 599)
        res.status = 500;
    c->status = (unsigned)res.status;
    c->ctype = res.content_type != NULL && res.content_type[0] != '\0' ? res.content_type : "application/json";
    c->out_len = res.body.len;
    c->out_off = 0;
    c->out = br_malloc(LWS_PRE + c->out_len + 1);
    if (c->out_len > 0)
        memcpy(c->out + LWS_PRE, res.body.data, c->out_len);
    br_buf_dispose(&res.body);
    c->out_headers = res.headers.len > 0 ? br_buf_steal(&res.headers) : NULL;
    br_buf_dispose(&res.headers);

    if (res.after_flush && s->opts.flush != NULL) {
        /* Answered after this loop turn's flush (br_http_flush_waiting). */
        c->waiting = 1;
        c->wturn = s->turn;
        c->wprev = NULL;
        c->wnext = s->waiting;
        if (s->waiting != NULL)
            s->waiting->wprev = c;
        s->waiting = c;
        return 0;
    }
    return br_http_send_response(c);
}

/* Writes the answer in c: at once when small, else headers now and the body when writable. */
int
br_http_send_response(struct conn *c)
{
    size_t room = LWS_PRE + HEADER_ROOM + (c->out_headers ? strlen(c->out_headers) : 0);
    unsigned char *hdr, *start, *p, *end;
    int rc = -1;

    if (!c->head && !c->close_after && c->out_len <= SMALL_RESPONSE)
        return respond_at_once(c, c->status, c->ctype);
    hdr = br_malloc(room);
    start = p = hdr + LWS_PRE;
    end = hdr + room - 1;
    if (lws_add_http_common_headers(c->wsi, c->status, c->ctype, (lws_filepos_t)c->out_len, &p, end) == 0 &&
        (!c->close_after || lws_add_http_header_by_token(c->wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
                                                         5, &p, end) == 0) &&
        br_http_add_headers(c->wsi, c->out_headers, &p, end) == 0 &&
        lws_finalize_write_http_header(c->wsi, start, &p, end) == 0) {
        lws_callback_on_writable(c->wsi);
        rc = 0;
    }
    free(hdr);
    return rc;
}

/* ---- the handler's headers ------------------------------------------- */

static bool
header_name_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return false;
    return true;
}

void
br_http_response_header(struct br_http_response *res, const char *name, const char *value)
{
    /* The lines are "name\tvalue\n": neither may hold a byte that ends or splits a header. */
    if (!header_name_ok(name) || strpbrk(value, "\r\n\t") != NULL) {
        br_error("http server: header %s left out: it would break the answer", header_name_ok(name) ? name : "?");
        return;
    }
    if (br_buf_printf(&res->headers, "%s\t%s\n", name, value) != 0)
        br_error("http server: header %s left out: too many headers", name);
}

int
br_http_add_headers(struct lws *wsi, const char *lines, unsigned char **p, unsigned char *end)
{
    while (lines != NULL && *lines != '\0') {
        const char *tab = strchr(lines, '\t'), *nl = strchr(lines, '\n');
        char name[64];
        size_t n;

        if (tab == NULL || nl == NULL || tab > nl || (size_t)(tab - lines) + 2 > sizeof(name))
            return -1;
        /* lws wants the name in lower case, with its colon. */
        for (n = 0; lines + n < tab; n++)
            name[n] = (char)tolower((unsigned char)lines[n]);
        name[n++] = ':';
        name[n] = '\0';
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)name, (const unsigned char *)tab + 1,
                                        (int)(nl - tab - 1), p, end))
            return -1;
        lines = nl + 1;
    }
    return 0;
}

/*
 * After each loop turn's I/O: when answers wait, one flush stores what
 * their handlers queued (one commit for all of them), then each answer
 * is written from its connection's next writable callback, or replaced
 * by a 503 when the flush failed (nothing of theirs is stored).
 */
void
br_http_flush_waiting(uv_check_t *h)
{
    struct br_http_server *s = h->data;
    struct conn *c;
    unsigned turn;
    int rc;

    if (s->waiting == NULL)
        return;
    rc = s->opts.flush(s->opts.ctx);
    /*
     * Writing an answer can make lws read a pipelined request and queue
     * its answer here, for the next flush: only answers of this flush's
     * turn are taken, each time from the head (a write may free others).
     */
    turn = s->turn++;
    for (;;) {
        for (c = s->waiting; c != NULL && c->wturn != turn; c = c->wnext)
            ;
        if (c == NULL)
            break;
        unwait(c);
        if (rc != 0) {
            static const char unstored[] = "{\"error\":\"cannot store the event; try again\"}";
            free(c->out);
            c->out_len = sizeof(unstored) - 1;
            c->out = br_malloc(LWS_PRE + c->out_len + 1);
            memcpy(c->out + LWS_PRE, unstored, c->out_len);
            c->status = 503;
            c->ctype = "application/json";
        }
        if (!c->head && !c->close_after && c->out_len <= SMALL_RESPONSE) {
            /*
             * Written now, outside an lws callback: lws keeps what the
             * socket does not take.  A connection lws cannot continue is
             * closed from lws's side (there is no callback to return -1 from).
             */
            if (respond_at_once(c, c->status, c->ctype) != 0)
                lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
            continue;
        }
        c->ready = 1;
        lws_callback_on_writable(c->wsi);
    }
}

int
br_http_write_body(struct conn *c)
{
    if (c->flushing)
        return -1; /* lws calls back only once its buffered output is sent */
    if (!c->head && c->out_off < c->out_len) {
        size_t n = c->out_len - c->out_off;
        enum lws_write_protocol wp = LWS_WRITE_HTTP_FINAL;

        if (n > WRITE_CHUNK) {
            n = WRITE_CHUNK;
            wp = LWS_WRITE_HTTP;
        }
        /* lws may use the LWS_PRE bytes before the chunk; those were sent. */
        if (lws_write(c->wsi, c->out + LWS_PRE + c->out_off, n, wp) < (int)n)
            return -1;
        c->out_off += n;
        if (c->out_off < c->out_len) {
            lws_callback_on_writable(c->wsi);
            return 0;
        }
    }
    if (c->close_after) {
        c->flushing = 1;
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    br_http_conn_reset(c);
    return lws_http_transaction_completed(c->wsi) ? -1 : 0;
}
