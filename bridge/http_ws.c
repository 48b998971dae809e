/*
 * http_ws.c - the HTTP server's WebSockets: the upgrade of a GET of
 * opts.ws_path with the subprotocol opts.ws_protocol, let in only when
 * opts.ws_accept says so (it sees the request's headers: cookie,
 * Authorization, Origin, Host), and text messages pushed to every open
 * one.  Clients only listen: what they send is read and dropped.
 *
 * lws runs the upgrade itself: it asks the HTTP protocol (protocols[0])
 * whether an upgrade may go on (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE), binds
 * the protocol the client named in Sec-WebSocket-Protocol (protocols[0]
 * when it named none: refused there) and asks that protocol's callback
 * (LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION) before it answers 101.
 *
 * Each client keeps its unsent messages in a short list; one that falls
 * WS_MAX_QUEUED behind is disconnected rather than buffered without end.
 */
#include "http_conn.h"

#include "log.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Messages a client may have waiting before it is dropped, and the largest one. */
#define WS_MAX_QUEUED 64
#define WS_MAX_MESSAGE (64 * 1024)

struct ws_msg {
    struct ws_msg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of headroom, then len bytes */
};

struct ws_client {
    struct br_http_server *srv;
    struct lws *wsi;
    uint64_t tag;      /* what ws_accept let it in as */
    struct ws_client *prev, *next;
    struct ws_msg *head, *tail;
    size_t queued;
    bool dropped;      /* too far behind: being closed */
};

/* What lws allocates per WebSocket: only a pointer, as for HTTP connections. */
struct ws_pss {
    struct ws_client *c;
    uint64_t tag;      /* from the upgrade's check to the client it becomes */
};

static void
client_free(struct ws_client *c)
{
    struct br_http_server *s = c->srv;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->ws_clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->n_ws--;
    while (c->head != NULL) {
        struct ws_msg *m = c->head;
        c->head = m->next;
        free(m);
    }
    free(c);
}

/* The upgrade request as handlers see requests: path, headers, the client's address; no body. */
static bool
accepted(struct br_http_server *s, struct lws *wsi, uint64_t *tag)
{
    struct br_http_extra x = {0};
    struct br_http_request req = {0};
    char remote[64], *path;
    int len = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI);
    bool ok = false;

    if (len <= 0 || (size_t)len != strlen(s->opts.ws_path))
        return false;
    path = br_malloc((size_t)len + 1);
    if (lws_hdr_copy(wsi, path, len + 1, WSI_TOKEN_GET_URI) == len && strcmp(path, s->opts.ws_path) == 0) {
        br_http_read_headers(s, wsi, remote, &x);
        req.method = "GET";
        req.path = path;
        req.query = "";
        req.content_type = "";
        req.authorization = br_http_or_empty(x.authorization);
        req.remote_addr = remote;
        req.body = "";
        req.cookie = br_http_or_empty(x.cookie);
        req.origin = br_http_or_empty(x.origin);
        req.host = br_http_or_empty(x.host);
        req.csrf_token = br_http_or_empty(x.csrf_token);
        req.forwarded_proto = x.forwarded_proto;
        ok = s->opts.ws_accept(s->opts.ctx, &req, tag);
        br_http_extra_dispose(&x);
    }
    free(path);
    return ok;
}

static int
ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct ws_pss *pss = user;
    struct br_http_server *s = lws_context_user(lws_get_context(wsi));
    struct ws_client *c = pss != NULL ? pss->c : NULL;

    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (pss == NULL)
            return -1;
        pss->tag = 0;
        return s->state == ST_RUNNING && accepted(s, wsi, &pss->tag) ? 0 : -1;

    case LWS_CALLBACK_ESTABLISHED:
        if (pss == NULL || s->state != ST_RUNNING)
            return -1;
        c = pss->c = br_calloc(1, sizeof(*c));
        c->srv = s;
        c->wsi = wsi;
        c->tag = pss->tag;
        c->next = s->ws_clients;
        if (s->ws_clients != NULL)
            s->ws_clients->prev = c;
        s->ws_clients = c;
        s->n_ws++;
        br_debug("http server: a WebSocket opened (%zu open)", s->n_ws);
        break;

    case LWS_CALLBACK_SERVER_WRITEABLE: {
        struct ws_msg *m;

        if (c == NULL || c->dropped)
            return -1;
        if ((m = c->head) == NULL)
            break;
        if (lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len)
            return -1;
        c->head = m->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->queued--;
        free(m);
        if (c->head != NULL)
            lws_callback_on_writable(wsi);
        break;
    }

    case LWS_CALLBACK_RECEIVE:
        break; /* the page sends nothing the server needs */

    case LWS_CALLBACK_CLOSED:
        if (c != NULL) {
            client_free(c);
            pss->c = NULL;
            br_debug("http server: a WebSocket closed (%zu open)", s->n_ws);
        }
        break;

    default:
        break;
    }
    return 0;
}

void
br_http_ws_protocol(struct br_http_server *s, struct lws_protocols *p)
{
    p->name = s->opts.ws_protocol;
    p->callback = ws_cb;
    p->per_session_data_size = sizeof(struct ws_pss);
    /* Clients send nothing of use: a small receive buffer. */
    p->rx_buffer_size = 256;
}

int
br_http_ws_confirm(struct br_http_server *s, struct lws *wsi, const char *to)
{
    (void)wsi;
    /* Only WebSockets, only when the server has them, only while it serves. */
    if (s->opts.ws_accept == NULL || s->state != ST_RUNNING || to == NULL || strcmp(to, "websocket") != 0)
        return -1;
    return 0;
}

void
br_http_server_ws_send(struct br_http_server *s, const char *text, size_t len)
{
    if (s == NULL || len > WS_MAX_MESSAGE || s->state != ST_RUNNING)
        return;
    for (struct ws_client *c = s->ws_clients; c != NULL; c = c->next) {
        struct ws_msg *m;

        if (c->dropped)
            continue;
        if (c->queued >= WS_MAX_QUEUED) {
            /* It does not read: it reconnects and fetches afresh, rather than the server keeping its backlog. */
            c->dropped = true;
            br_warn("http server: a WebSocket client fell %d messages behind; disconnected", WS_MAX_QUEUED);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            continue;
        }
        m = br_malloc(sizeof(*m) + LWS_PRE + len);
        m->next = NULL;
        m->len = len;
        memcpy(m->data + LWS_PRE, text, len);
        if (c->tail != NULL)
            c->tail->next = m;
        else
            c->head = m;
        c->tail = m;
        c->queued++;
        lws_callback_on_writable(c->wsi);
    }
}

void
br_http_server_ws_drop(struct br_http_server *s, uint64_t tag)
{
    for (struct ws_client *c = s != NULL && tag != 0 ? s->ws_clients : NULL; c != NULL; c = c->next) {
        if (c->tag != tag || c->dropped)
            continue;
        c->dropped = true;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

size_t
br_http_server_ws_clients(const struct br_http_server *s)
{
    return s != NULL ? s->n_ws : 0;
}

void
br_http_ws_free_all(struct br_http_server *s)
{
    while (s->ws_clients != NULL)
        client_free(s->ws_clients);
}
