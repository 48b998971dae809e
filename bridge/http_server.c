/*
 * http_server.c - libwebsockets 4.1 serving HTTP/1.1 on a foreign libuv loop.
 *
 * Two lws 4.1 behaviours shape this file:
 *
 *  - If lws binds the listening socket itself and the bind fails, the
 *    context comes back without a vhost, and destroying it frees memory
 *    that libuv handles still closing on our loop point into.  So the
 *    server binds and accepts on its own socket (bind errors become a
 *    plain BR_EIO) and hands each accepted socket to lws with
 *    lws_adopt_socket_vhost(); lws runs with CONTEXT_PORT_NO_LISTEN_SERVER.
 *
 *  - On a foreign loop, the first lws_context_destroy() only starts closing
 *    lws's uv handles; the context is freed by a second call once those
 *    handles have finished closing (info.pcontext is then set to NULL).
 *    lws has no callback for "handles closed", so a shutdown timer watches
 *    the loop: once no handle is closing for two ticks in a row, every
 *    close chain lws started has run out and the second destroy is safe.
 *
 * lws 4.1's HTTP/1.1 server also has gaps around request bodies, found by
 * probing it: it passes a chunked body through undecoded and never reports
 * it complete, and after a POST/PUT/PATCH without Content-Length it never
 * starts the next transaction.  Both get their answer with
 * "connection: close"; chunked bodies are decoded here.  Only a POST with
 * an explicit "Content-Length: 0" gets a (zero-length) body completion.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "http_server.h"

#include "log.h"

#include <libwebsockets.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_TIMEOUT_S 10
#define WRITE_CHUNK (64 * 1024)
/* Answers up to this size go out in one write with their headers. */
#define SMALL_RESPONSE 8192

/* Accepting at most this many sockets per wakeup keeps the loop fair. */
#define ACCEPT_BATCH 64
/* After EMFILE the listener rests instead of spinning on a readable socket. */
#define ACCEPT_BACKOFF_MS 100
/* Shutdown watches the loop this often; a few ticks are normally enough. */
#define SHUTDOWN_TICK_MS 1
/* Give up on lws after this many ticks rather than hang the daemon. */
#define SHUTDOWN_MAX_TICKS 5000
/* Answers already being written get this long to finish before lws is torn down. */
#define SHUTDOWN_GRACE_TICKS 1000
/* An oversized body is read and dropped so the client sees the 413, but not forever. */
#define DRAIN_MAX (1024 * 1024)

static const char body_too_large[] = "{\"error\":\"body too large\"}";
static const char bad_chunked[] = "{\"error\":\"malformed chunked body\"}";

/* Where the chunked-body decoder is within the stream. */
enum chunk_state { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_DONE, CH_BAD };

enum state { ST_RUNNING, ST_CLOSING, ST_CLOSED };

/*
 * One request on a connection, from its headers to the end of the answer.
 * lws unbinds the protocol after every transaction (LWS_CALLBACK_HTTP_DROP_PROTOCOL),
 * so a keep-alive connection gets a fresh one per request.
 */
struct conn {
    struct br_http_server *srv;
    struct lws *wsi;
    struct conn *prev, *next;

    /* The request being read. */
    const char *method;
    char *path, *query, *content_type;
    char remote[64];
    struct br_buf body;
    unsigned long long body_seen;
    int too_large;
    int responding;
    int head;
    int close_after; /* lws cannot continue this connection after the answer */
    int flushing;    /* close_after: all written, waiting for lws to flush it */
    int chunked;
    enum chunk_state ch_state;
    unsigned long long ch_left; /* bytes left in this chunk, or the size being parsed */
    int ch_digits;
    size_t ch_line; /* length of the current trailer line */

    /* The response body being written, with LWS_PRE bytes of headroom. */
    unsigned char *out;
    size_t out_len, out_off;
    unsigned status;
    const char *ctype;
    /* An answer waiting for the flush (after_flush), on the server's waiting list. */
    int waiting;
    unsigned wturn; /* the flush turn it waits for */
    int ready;      /* flushed: written from the next LWS_CALLBACK_HTTP_WRITEABLE */
    struct conn *wprev, *wnext;
};

/* What lws allocates per connection: only a pointer, so that a connection
 * lws forgets to report closed can still be found and freed by us. */
struct pss {
    struct conn *c;
};

struct br_http_server {
    uv_loop_t *loop;
    struct br_http_server_opts opts;
    char *host;
    int port;
    int fd;
    enum state state;

    uv_poll_t listen_poll;
    uv_timer_t accept_timer;
    uv_timer_t shutdown_timer;
    uv_check_t flush_check;    /* after each loop turn's I/O: flush, then answer the waiting */
    int handles_open;
    struct conn *waiting;      /* answers waiting for the flush */
    unsigned turn;             /* flushes so far */

    struct lws_context *ctx;
    struct lws_context *ctx_alive; /* lws writes NULL here once the context is freed */
    struct lws_vhost *vh;
    struct lws_protocols protocols[2];

    struct conn *conns;
    int live_wsi; /* connections lws has created and not yet freed */

    int destroy_started;
    int quiet_ticks;
    int ticks;
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- lws logging ---------------------------------------------------- */

static void
lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    char *esc;

    (void)level;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    /* lws may quote request bytes in its errors. */
    esc = br_log_escape(line, n);
    br_error("lws: %s", esc);
    free(esc);
}

/* ---- percent re-encoding -------------------------------------------- */

static int
is_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/*
 * lws hands over the path and the query arguments already decoded; the
 * handler is promised encoded text.  keep lists the reserved characters
 * that may stay literal in this part of the URI.
 */
static void
encode_into(struct br_buf *b, const char *s, size_t n, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (is_unreserved(ch) || (ch != '\0' && strchr(keep, ch) != NULL)) {
            br_buf_putc(b, (char)ch);
        } else {
            char esc[3] = { '%', hex[ch >> 4], hex[ch & 15] };
            br_buf_append(b, esc, 3);
        }
    }
}

static char *
encode_path(const char *s, size_t n)
{
    struct br_buf b;

    br_buf_init(&b, 0);
    br_buf_puts(&b, "");
    encode_into(&b, s, n, "/:@!$&'()*+,;=");
    return br_buf_steal(&b);
}

/* Rebuilds "a=1&b=2" from lws's decoded fragments, one per argument. */
static char *
encode_query(struct lws *wsi)
{
    struct br_buf b;
    int i;

    br_buf_init(&b, 0);
    br_buf_puts(&b, "");
    for (i = 0;; i++) {
        int len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        char *frag, *eq;

        if (len <= 0)
            break;
        frag = br_malloc((size_t)len + 1);
        if (lws_hdr_copy_fragment(wsi, frag, len + 1, WSI_TOKEN_HTTP_URI_ARGS, i) < 0) {
            free(frag);
            break;
        }
        if (b.len > 0)
            br_buf_putc(&b, '&');
        eq = strchr(frag, '=');
        if (eq == NULL) {
            encode_into(&b, frag, strlen(frag), "");
        } else {
            encode_into(&b, frag, (size_t)(eq - frag), "");
            br_buf_putc(&b, '=');
            encode_into(&b, eq + 1, strlen(eq + 1), "");
        }
        free(frag);
    }
    return br_buf_steal(&b);
}

/* ---- connections ---------------------------------------------------- */

static char *
copy_header(struct lws *wsi, enum lws_token_indexes tok)
{
    int len = lws_hdr_total_length(wsi, tok);
    char *s;

    if (len <= 0)
        return br_strdup("");
    s = br_malloc((size_t)len + 1);
    if (lws_hdr_copy(wsi, s, len + 1, tok) < 0)
        s[0] = '\0';
    return s;
}

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

static void
br_http_conn_reset(struct conn *c)
{
    unwait(c);
    c->ready = 0;
    free(c->path);
    free(c->query);
    free(c->content_type);
    c->path = c->query = c->content_type = NULL;
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

static struct conn *
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

static void
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

static const char *
method_name(int m)
{
    switch (m) {
    case LWSHUMETH_GET: return "GET";
    case LWSHUMETH_POST: return "POST";
    case LWSHUMETH_OPTIONS: return "OPTIONS";
    case LWSHUMETH_PUT: return "PUT";
    case LWSHUMETH_PATCH: return "PATCH";
    case LWSHUMETH_DELETE: return "DELETE";
    case LWSHUMETH_CONNECT: return "CONNECT";
    case LWSHUMETH_HEAD: return "HEAD";
    default: return "GET";
    }
}

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
    size_t room = LWS_PRE + 1024 + c->out_len;
    unsigned char *buf = br_malloc(room);
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + LWS_PRE + 1024;
    char len[24];
    int n, rc = -1;

    snprintf(len, sizeof(len), "%zu", c->out_len);
    if (lws_add_http_header_status(c->wsi, status, &p, end) == 0 &&
        lws_add_http_header_by_token(c->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)ctype,
                                     (int)strlen(ctype), &p, end) == 0 &&
        lws_add_http_header_by_name(c->wsi, (const unsigned char *)"content-length:", (const unsigned char *)len,
                                    (int)strlen(len), &p, end) == 0 &&
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

static int br_http_send_response(struct conn *c);

/* Runs the handler; its answer is sent now or, with after_flush, after the loop turn's flush. */
static int
br_http_respond(struct conn *c)
{
    struct br_http_server *s = c->srv;
    struct br_http_response res;

    c->responding = 1;
    res.status = 200;
    res.content_type = "application/json";
    res.after_flush = 0;
    br_buf_init(&res.body, 0);

    if (c->ch_state == CH_BAD) {
        res.status = 400;
        br_buf_puts(&res.body, bad_chunked);
    } else if (c->too_large) {
        res.status = 413;
        br_buf_puts(&res.body, body_too_large);
    } else {
        struct br_http_request req = {
            .method = c->method,
            .path = c->path,
            .query = c->query,
            .content_type = c->content_type,
            .remote_addr = c->remote,
            .body = c->body.data != NULL ? c->body.data : "",
            .body_len = c->body.len,
        };

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
static int
br_http_send_response(struct conn *c)
{
    unsigned char hdr[LWS_PRE + 1024];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;

    if (!c->head && !c->close_after && c->out_len <= SMALL_RESPONSE)
        return respond_at_once(c, c->status, c->ctype);
    if (lws_add_http_common_headers(c->wsi, c->status, c->ctype, (lws_filepos_t)c->out_len, &p, end))
        return -1;
    if (c->close_after &&
        lws_add_http_header_by_token(c->wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
                                     5, &p, end))
        return -1;
    if (lws_finalize_write_http_header(c->wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(c->wsi);
    return 0;
}

/*
 * After each loop turn's I/O: when answers wait, one flush stores what
 * their handlers queued (one commit for all of them), then each answer
 * is written from its connection's next writable callback, or replaced
 * by a 503 when the flush failed (nothing of theirs is stored).
 */
static void
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

static int
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

static int
br_http_begin_request(struct br_http_server *s, struct conn *c, struct lws *wsi, const char *in, size_t len)
{
    char *uri = NULL, cl[32], te[64];
    int uri_len = 0, m, has_length;
    unsigned long long declared = 0;

    br_http_conn_reset(c);
    m = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    c->method = method_name(m);
    c->head = m == LWSHUMETH_HEAD;
    c->path = encode_path(in != NULL ? in : "/", in != NULL ? len : 1);
    c->query = encode_query(wsi);
    c->content_type = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
    if (lws_get_peer_simple(wsi, c->remote, sizeof(c->remote)) == NULL)
        c->remote[0] = '\0';
    br_buf_init(&c->body, s->opts.max_body);

    has_length = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    if (has_length)
        declared = strtoull(cl, NULL, 10);
    if (lws_hdr_copy(wsi, te, sizeof(te), WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 &&
        strcasestr(te, "chunked") != NULL) {
        c->chunked = 1;
        c->close_after = 1;
    }
    /* A declared length over the limit is refused without reading it into memory. */
    if (declared > s->opts.max_body)
        c->too_large = 1;

    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, (int)s->opts.request_timeout_s);
    /* lws reports the end of a body only for these; then wait for it. */
    if (c->chunked || declared > 0 || (has_length && m == LWSHUMETH_POST))
        return 0;
    if (!has_length && (m == LWSHUMETH_POST || m == LWSHUMETH_PUT || m == LWSHUMETH_PATCH))
        c->close_after = 1;
    return br_http_respond(c);
}

static void
br_http_take_body(struct conn *c, const char *p, size_t n)
{
    c->body_seen += n;
    if (!c->too_large && c->body_seen > c->srv->opts.max_body) {
        /* Keep reading so the client can see the 413, but store nothing more. */
        c->too_large = 1;
        br_buf_dispose(&c->body);
    }
    if (!c->too_large)
        br_buf_append(&c->body, p, n);
}

/* After this much waste the client gets its 413 now and loses the connection. */
static int
br_http_drained_enough(const struct conn *c)
{
    return c->too_large && c->body_seen > c->srv->opts.max_body + DRAIN_MAX;
}

static int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes a chunked body as lws passes it through; returns 1 once it has ended. */
static int
br_http_dechunk(struct conn *c, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && c->ch_state != CH_DONE && c->ch_state != CH_BAD) {
        char ch = p[i];

        switch (c->ch_state) {
        case CH_SIZE:
            if (hexval(ch) >= 0) {
                /* 15 hex digits is far beyond any limit and cannot overflow. */
                if (++c->ch_digits > 15) {
                    c->ch_state = CH_BAD;
                    break;
                }
                c->ch_left = c->ch_left * 16 + (unsigned)hexval(ch);
            } else if (c->ch_digits > 0 && (ch == ';' || ch == '\r' || ch == ' ' || ch == '\t')) {
                c->ch_state = CH_EXT;
            } else if (c->ch_digits > 0 && ch == '\n') {
                c->ch_state = c->ch_left > 0 ? CH_DATA : CH_TRAILER;
                c->ch_line = 0;
            } else {
                c->ch_state = CH_BAD;
            }
            i++;
            break;
        case CH_EXT:
            if (ch == '\n') {
                c->ch_state = c->ch_left > 0 ? CH_DATA : CH_TRAILER;
                c->ch_line = 0;
            }
            i++;
            break;
        case CH_DATA: {
            size_t take = n - i;

            if (take > c->ch_left)
                take = (size_t)c->ch_left;
            br_http_take_body(c, p + i, take);
            c->ch_left -= take;
            i += take;
            if (c->ch_left == 0)
                c->ch_state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            c->ch_state = ch == '\r' ? CH_DATA_LF : ch == '\n' ? CH_SIZE : CH_BAD;
            c->ch_digits = 0;
            i++;
            break;
        case CH_DATA_LF:
            c->ch_state = ch == '\n' ? CH_SIZE : CH_BAD;
            c->ch_digits = 0;
            i++;
            break;
        case CH_TRAILER:
            /* Trailer fields are ignored; an empty line ends the body. */
            if (ch == '\n') {
                if (c->ch_line == 0)
                    c->ch_state = CH_DONE;
                c->ch_line = 0;
            } else if (ch != '\r') {
                c->ch_line++;
            }
            i++;
            break;
        default:
            i++;
            break;
        }
    }
    return c->ch_state == CH_DONE || c->ch_state == CH_BAD;
}

static int
http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct pss *pss = user;
    struct br_http_server *s;
    struct conn *c = pss != NULL ? pss->c : NULL;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        s = lws_context_user(lws_get_context(wsi));
        if (pss == NULL)
            return -1;
        if (c == NULL)
            c = pss->c = br_http_conn_new(s, wsi);
        return br_http_begin_request(s, c, wsi, in, len);

    case LWS_CALLBACK_HTTP_BODY:
        if (c == NULL)
            return -1;
        if (c->responding)
            return 0; /* an empty POST's zero-length chunk, or chunked leftovers */
        if (c->chunked) {
            if (br_http_dechunk(c, in, len))
                return br_http_respond(c);
        } else {
            br_http_take_body(c, in, len);
        }
        if (br_http_drained_enough(c)) {
            c->close_after = 1;
            return br_http_respond(c);
        }
        return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (c == NULL)
            return -1;
        if (c->responding)
            return 0;
        return br_http_respond(c);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (c == NULL || (c->out == NULL && !c->flushing) || c->waiting)
            return 0;
        if (c->ready) {
            c->ready = 0;
            return br_http_send_response(c);
        }
        return br_http_write_body(c);

    case LWS_CALLBACK_WSI_CREATE:
        s = lws_context_user(lws_get_context(wsi));
        s->live_wsi++;
        break;

    case LWS_CALLBACK_WSI_DESTROY:
        s = lws_context_user(lws_get_context(wsi));
        s->live_wsi--;
        break;

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (c != NULL) {
            br_http_conn_free(c);
            pss->c = NULL;
        }
        break;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- listening ------------------------------------------------------ */

/* "127.0.0.1:8080" or "[::1]:8080", for log lines. */
static const char *
host_port(char *buf, size_t n, const char *host, int port)
{
    snprintf(buf, n, strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, port);
    return buf;
}

static void on_readable(uv_poll_t *h, int status, int events);

static void
on_accept_backoff(uv_timer_t *t)
{
    struct br_http_server *s = t->data;

    if (s->state == ST_RUNNING)
        uv_poll_start(&s->listen_poll, UV_READABLE, on_readable);
}

static void
on_readable(uv_poll_t *h, int status, int events)
{
    struct br_http_server *s = h->data;
    int i;

    (void)events;
    if (status < 0) {
        br_warn("http server: listen socket: %s", uv_strerror(status));
        return;
    }
    for (i = 0; i < ACCEPT_BATCH && s->state == ST_RUNNING; i++) {
        int one = 1;
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                br_warn("http server: accept: %s; pausing", strerror(errno));
                uv_poll_stop(&s->listen_poll);
                uv_timer_start(&s->accept_timer, on_accept_backoff, ACCEPT_BACKOFF_MS, 0);
            }
            return;
        }
        /* Headers and body go out as two writes; Nagle would hold the second. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (lws_adopt_socket_vhost(s->vh, fd) == NULL)
            br_warn("http server: lws could not adopt a connection"); /* lws closed fd */
    }
}

static int
open_listener(struct br_http_server *s)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char portstr[16], hp[300];
    int fd, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", s->opts.port);
    rc = getaddrinfo(s->host, portstr, &hints, &res);
    if (rc != 0 || res == NULL) {
        br_error("http server: cannot resolve listen address %s: %s",
                 host_port(hp, sizeof(hp), s->host, s->opts.port), gai_strerror(rc));
        return BR_EINVAL;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        br_error("http server: socket for %s: %s", host_port(hp, sizeof(hp), s->host, s->opts.port),
                 strerror(errno));
        freeaddrinfo(res);
        return BR_EIO;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 511) < 0) {
        br_error("http server: cannot listen on %s: %s",
                 host_port(hp, sizeof(hp), s->host, s->opts.port), strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return BR_EIO;
    }
    freeaddrinfo(res);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        br_error("http server: getsockname: %s", strerror(errno));
        close(fd);
        return BR_EIO;
    }
    s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    s->fd = fd;
    return 0;
}

/* ---- lifecycle ------------------------------------------------------ */

int
br_http_server_new(struct br_http_server **out, uv_loop_t *loop, const struct br_http_server_opts *opts)
{
    struct lws_context_creation_info info;
    struct br_http_server *s;
    void *loops[1];
    char hp[300];
    int rc;

    *out = NULL;
    if (loop == NULL || opts == NULL || opts->handler == NULL || opts->port < 0 ||
        opts->port > 65535)
        return BR_EINVAL;

    s = br_calloc(1, sizeof(*s));
    s->loop = loop;
    s->opts = *opts;
    s->host = br_strdup(opts->host != NULL && opts->host[0] != '\0' ? opts->host : "127.0.0.1");
    s->opts.host = s->host;
    if (s->opts.max_body == 0)
        s->opts.max_body = DEFAULT_MAX_BODY;
    if (s->opts.request_timeout_s == 0)
        s->opts.request_timeout_s = DEFAULT_TIMEOUT_S;
    s->fd = -1;

    rc = open_listener(s);
    if (rc != 0) {
        free(s->host);
        free(s);
        return rc;
    }

    /* Only errors from lws, and through our log so the format stays one line per event. */
    lws_set_log_level(LLL_ERR, lws_log_emit);

    s->protocols[0].name = "http";
    s->protocols[0].callback = http_cb;
    s->protocols[0].per_session_data_size = sizeof(struct pss);

    memset(&info, 0, sizeof(info));
    loops[0] = loop;
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    info.pcontext = &s->ctx_alive;
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = s->protocols;
    info.user = s;
    info.vhost_name = "default";
    info.server_string = "chatra-bridge";
    info.timeout_secs = s->opts.request_timeout_s;
    info.timeout_secs_ah_idle = s->opts.request_timeout_s;
    info.keepalive_timeout = (int)s->opts.request_timeout_s;
    /* Room for long webhook URLs and headers; lws's default is 1 KiB. */
    info.max_http_header_data = 8192;
    /* One header table per connection being parsed; wrk uses 32. */
    info.max_http_header_pool = 128;
    info.pt_serv_buf_size = 16384;

    s->ctx = lws_create_context(&info);
    s->ctx_alive = s->ctx;
    if (s->ctx != NULL)
        s->vh = lws_get_vhost_by_name(s->ctx, "default");
    if (s->ctx == NULL || s->vh == NULL) {
        /* Not expected without a listen socket in lws; nothing safe to undo but the context. */
        br_error("http server: cannot start libwebsockets on %s",
                 host_port(hp, sizeof(hp), s->host, s->port));
        if (s->ctx != NULL)
            lws_context_destroy(s->ctx);
        close(s->fd);
        free(s->host);
        free(s);
        return BR_EIO;
    }

    uv_poll_init(loop, &s->listen_poll, s->fd);
    s->listen_poll.data = s;
    uv_timer_init(loop, &s->accept_timer);
    s->accept_timer.data = s;
    uv_timer_init(loop, &s->shutdown_timer);
    s->shutdown_timer.data = s;
    uv_check_init(loop, &s->flush_check);
    s->flush_check.data = s;
    if (s->opts.flush != NULL)
        uv_check_start(&s->flush_check, br_http_flush_waiting);
    s->handles_open = 4;
    uv_poll_start(&s->listen_poll, UV_READABLE, on_readable);

    br_info("http server: listening on %s", host_port(hp, sizeof(hp), s->host, s->port));
    *out = s;
    return 0;
}

int
br_http_server_port(const struct br_http_server *s)
{
    return s->port;
}

struct walk {
    uv_handle_t *self;
    int closing;
};

static void
count_closing(uv_handle_t *h, void *arg)
{
    struct walk *w = arg;

    if (h != w->self && uv_is_closing(h))
        w->closing++;
}

static void
on_handle_closed(uv_handle_t *h)
{
    struct br_http_server *s = h->data;

    if (h == (uv_handle_t *)&s->listen_poll) {
        close(s->fd);
        s->fd = -1;
    }
    if (--s->handles_open == 0) {
        s->state = ST_CLOSED;
        if (s->done != NULL)
            s->done(s->done_arg);
    }
}

static void
finish_shutdown(struct br_http_server *s)
{
    /* Whatever lws never reported closed is ours to free now. */
    while (s->conns != NULL)
        br_http_conn_free(s->conns);
    uv_timer_stop(&s->shutdown_timer);
    uv_close((uv_handle_t *)&s->shutdown_timer, on_handle_closed);
    uv_check_stop(&s->flush_check);
    uv_close((uv_handle_t *)&s->flush_check, on_handle_closed);
}

static void
on_shutdown_tick(uv_timer_t *t)
{
    struct br_http_server *s = t->data;
    struct walk w = { (uv_handle_t *)t, 0 };

    s->ticks++;
    if (!s->destroy_started) {
        const struct conn *c;

        /* Answers the handler already produced are worth a moment to finish. */
        for (c = s->conns; c != NULL; c = c->next)
            if (c->out != NULL && s->ticks < SHUTDOWN_GRACE_TICKS)
                return;
        /* Step one: lws closes every connection and starts closing its handles. */
        s->destroy_started = 1;
        s->ticks = 0;
        lws_context_destroy(s->ctx);
        return;
    }
    uv_walk(s->loop, count_closing, &w);
    s->quiet_ticks = w.closing > 0 || s->live_wsi > 0 ? 0 : s->quiet_ticks + 1;
    if (s->ctx_alive != NULL && s->quiet_ticks >= 2) {
        /*
         * Step two: every connection is freed and for two ticks nothing
         * was closing, so every close callback chain lws started has
         * ended and the context can go.
         */
        lws_context_destroy(s->ctx);
        s->quiet_ticks = 0;
    }
    if (s->ctx_alive == NULL) {
        br_debug("http server: libwebsockets shut down after %d ticks", s->ticks);
        finish_shutdown(s);
    } else if (s->ticks >= SHUTDOWN_MAX_TICKS) {
        br_error("http server: libwebsockets did not finish shutting down; leaking it");
        finish_shutdown(s);
    }
}

void
br_http_server_close(struct br_http_server *s, void (*done)(void *arg), void *arg)
{
    if (s == NULL || s->state != ST_RUNNING)
        return;
    s->state = ST_CLOSING;
    s->done = done;
    s->done_arg = arg;

    uv_poll_stop(&s->listen_poll);
    uv_close((uv_handle_t *)&s->listen_poll, on_handle_closed);
    uv_timer_stop(&s->accept_timer);
    uv_close((uv_handle_t *)&s->accept_timer, on_handle_closed);
    /* lws is torn down from the timer, never from inside one of its own callbacks. */
    uv_timer_start(&s->shutdown_timer, on_shutdown_tick, 0, SHUTDOWN_TICK_MS);
}

void
br_http_server_free(struct br_http_server *s)
{
    if (s == NULL)
        return;
    if (s->state != ST_CLOSED) {
        /* Its handles are still on the loop; freeing would corrupt it. */
        br_error("http server: freed before close finished; leaking it");
        return;
    }
    free(s->host);
    free(s);
}
