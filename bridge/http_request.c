/*
 * http_request.c - reading a request for the HTTP server: its method,
 * path and query (re-encoded), headers, and its body, plain or chunked,
 * within the size limit.
 *
 * lws 4.1's HTTP/1.1 server has gaps around request bodies, found by
 * probing it: it passes a chunked body through undecoded and never reports
 * it complete, and after a POST/PUT/PATCH without Content-Length it never
 * starts the next transaction.  Both get their answer with
 * "connection: close"; chunked bodies are decoded here.  Only a POST with
 * an explicit "Content-Length: 0" gets a (zero-length) body completion.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif
#include "http_conn.h"

#include "cidr.h"
#include "forwarded.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An oversized body is read and dropped so the client sees the 413, but not forever. */
#define DRAIN_MAX (1024 * 1024)

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

/* ---- the request ---------------------------------------------------- */

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

/* A header lws does not know by name ("x-csrf-token:"), NULL when absent. */
static char *
copy_custom(struct lws *wsi, const char *name)
{
    int len = lws_hdr_custom_length(wsi, name, (int)strlen(name));
    char *s;

    if (len <= 0)
        return NULL;
    s = br_malloc((size_t)len + 1);
    if (lws_hdr_custom_copy(wsi, s, len + 1, name, (int)strlen(name)) < 0)
        s[0] = '\0';
    return s;
}

/* A header the request may well not have: NULL then, so that a webhook costs no copy of it. */
static char *
copy_optional(struct lws *wsi, enum lws_token_indexes tok)
{
    return lws_hdr_total_length(wsi, tok) > 0 ? copy_header(wsi, tok) : NULL;
}

/*
 * The client's address: the peer's, unless the peer is a trusted proxy
 * and its headers name another (forwarded.h).  The headers of any other
 * peer are not even read.  True when the peer is a trusted proxy.
 */
static bool
client_addr(struct br_http_server *s, struct lws *wsi, char remote[64])
{
    struct br_addr peer, client;
    char *xff, *fwd = NULL;

    if (lws_get_peer_simple(wsi, remote, 64) == NULL)
        remote[0] = '\0';
    if (s->opts.n_trusted_proxies == 0 || br_addr_parse(remote, &peer) != 0 ||
        !br_cidr_list_contains(s->opts.trusted_proxies, s->opts.n_trusted_proxies, &peer))
        return false;
    xff = copy_header(wsi, WSI_TOKEN_X_FORWARDED_FOR);
    if (xff[0] == '\0')
        fwd = copy_custom(wsi, "forwarded:");
    if (br_forwarded_client(xff, fwd, s->opts.trusted_proxies, s->opts.n_trusted_proxies, &client) == 0)
        br_addr_format(&client, remote);
    free(xff);
    free(fwd);
    return true;
}

void
br_http_read_headers(struct br_http_server *s, struct lws *wsi, char remote[64], struct br_http_extra *x)
{
    bool proxied = client_addr(s, wsi, remote);

    x->authorization = copy_optional(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    x->cookie = copy_optional(wsi, WSI_TOKEN_HTTP_COOKIE);
    x->origin = copy_optional(wsi, WSI_TOKEN_ORIGIN);
    /* The Host matters only to check an Origin against. */
    x->host = x->origin != NULL ? copy_optional(wsi, WSI_TOKEN_HOST) : NULL;
    x->csrf_token = copy_custom(wsi, "x-csrf-token:");
    x->forwarded_proto[0] = '\0';
    /* Only a trusted proxy tells how the client reached it. */
    if (proxied) {
        char *proto = copy_custom(wsi, "x-forwarded-proto:");
        if (proto != NULL && (strcasecmp(proto, "https") == 0 || strcasecmp(proto, "http") == 0))
            snprintf(x->forwarded_proto, sizeof(x->forwarded_proto), "%s", proto[4] ? "https" : "http");
        free(proto);
    }
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

int
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
    br_http_read_headers(s, wsi, c->remote, &c->extra);
    c->max_body = s->opts.max_body;
    br_buf_init(&c->body, c->max_body);

    has_length = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    if (has_length)
        declared = strtoull(cl, NULL, 10);
    if (lws_hdr_copy(wsi, te, sizeof(te), WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 &&
        strcasestr(te, "chunked") != NULL) {
        c->chunked = 1;
        c->close_after = 1;
    }
    /* A declared length over the limit is refused without reading it into memory. */
    if (declared > c->max_body)
        c->too_large = 1;

    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, (int)s->opts.request_timeout_s);
    /* lws reports the end of a body only for these; then wait for it. */
    if (c->chunked || declared > 0 || (has_length && m == LWSHUMETH_POST))
        return 0;
    if (!has_length && (m == LWSHUMETH_POST || m == LWSHUMETH_PUT || m == LWSHUMETH_PATCH))
        c->close_after = 1;
    return br_http_respond(c);
}

void
br_http_take_body(struct conn *c, const char *p, size_t n)
{
    c->body_seen += n;
    if (!c->too_large && c->body_seen > c->max_body) {
        /* Keep reading so the client can see the 413, but store nothing more. */
        c->too_large = 1;
        br_buf_dispose(&c->body);
    }
    if (!c->too_large)
        br_buf_append(&c->body, p, n);
}

/* After this much waste the client gets its 413 now and loses the connection. */
int
br_http_drained_enough(const struct conn *c)
{
    return c->too_large && c->body_seen > c->max_body + DRAIN_MAX;
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
int
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
