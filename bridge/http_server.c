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
 *  - That first destroy closes the descriptor of lws's event pipe (an
 *    eventfd) at once, and again in the close callback of its uv handle
 *    at the end of the loop turn.  A descriptor opened in between (a
 *    connection of the HTTP client, whose jobs still run) would get the
 *    same number and be closed under its owner, and libuv aborts when it
 *    next watches it.  So the first destroy runs in a check callback: no
 *    I/O callback, nothing that opens a descriptor, runs between the
 *    checks and the turn's close callbacks.
 *
 * Here: the lws callback, listening and accepting, start and shutdown.
 * Reading a request is http_request.c's, a connection's answer
 * http_conn.c's, WebSockets http_ws.c's; http_conn.h is what they share.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "http_conn.h"

#include "log.h"

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

/* What lws allocates per connection: only a pointer, so that a connection
 * lws forgets to report closed can still be found and freed by us. */
struct pss {
    struct conn *c;
};

/* ---- lws logging ---------------------------------------------------- */

/*
 * What lws says is mostly about a request it could not read (headers too
 * large, a broken connection): a client can cause it at will, so it is a
 * warning, and the same text (its first LWS_KEY bytes) is written at most
 * once a minute, the next one saying how many were left out.  Loop thread.
 */
#define LWS_KEY 40
#define LWS_KEYS 8
#define LWS_QUIET_MS 60000

static struct lws_line {
    char key[LWS_KEY + 1];
    int64_t at;
    unsigned long left_out;
} lws_lines[LWS_KEYS];

static void
lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    int64_t now = (int64_t)(uv_hrtime() / 1000000) + LWS_QUIET_MS; /* never 0: a free slot's at */
    struct lws_line *l = NULL, *oldest = &lws_lines[0];
    char *esc;

    (void)level;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    for (size_t i = 0; i < LWS_KEYS && l == NULL; i++) {
        if (strncmp(lws_lines[i].key, line, n < LWS_KEY ? n : LWS_KEY) == 0 &&
            strlen(lws_lines[i].key) == (n < LWS_KEY ? n : LWS_KEY))
            l = &lws_lines[i];
        else if (lws_lines[i].at < oldest->at)
            oldest = &lws_lines[i];
    }
    if (l != NULL && now - l->at < LWS_QUIET_MS) {
        l->left_out++;
        return;
    }
    if (l == NULL) {
        l = oldest;
        snprintf(l->key, sizeof(l->key), "%.*s", (int)(n < LWS_KEY ? n : LWS_KEY), line);
        l->left_out = 0;
    }
    /* lws may quote request bytes in its errors. */
    esc = br_log_escape(line, n);
    if (l->left_out > 0)
        br_warn("lws: %s (%lu more like it in the last minute)", esc, l->left_out);
    else
        br_warn("lws: %s", esc);
    free(esc);
    l->at = now;
    l->left_out = 0;
}

/* ---- the lws callback ------------------------------------------------- */

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

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return br_http_ws_confirm(lws_context_user(lws_get_context(wsi)), wsi, in);

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* A WebSocket that named no subprotocol (or HTTP's): not one the server has. */
        return -1;

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
    if (s->opts.ws_accept != NULL && s->opts.ws_path != NULL && s->opts.ws_protocol != NULL)
        br_http_ws_protocol(s, &s->protocols[1]);
    else
        s->opts.ws_accept = NULL;

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
    uv_check_init(loop, &s->destroy_check);
    s->destroy_check.data = s;
    s->handles_open = 5;
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

void
br_http_server_set_max_body(struct br_http_server *s, size_t max_body)
{
    s->opts.max_body = max_body ? max_body : DEFAULT_MAX_BODY;
}

void
br_http_server_set_trusted_proxies(struct br_http_server *s, const struct br_cidr *list, size_t n)
{
    s->opts.trusted_proxies = list;
    s->opts.n_trusted_proxies = n;
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
    br_http_ws_free_all(s);
    uv_timer_stop(&s->shutdown_timer);
    uv_close((uv_handle_t *)&s->shutdown_timer, on_handle_closed);
    uv_check_stop(&s->flush_check);
    uv_close((uv_handle_t *)&s->flush_check, on_handle_closed);
    uv_check_stop(&s->destroy_check);
    uv_close((uv_handle_t *)&s->destroy_check, on_handle_closed);
}

/* Step one of the shutdown (see the top of the file for why it is a check). */
static void
on_destroy_check(uv_check_t *h)
{
    struct br_http_server *s = h->data;

    uv_check_stop(h);
    lws_context_destroy(s->ctx);
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
        /* Step one, in this turn's check: lws closes every connection and starts closing its handles. */
        s->destroy_started = 1;
        s->ticks = 0;
        uv_check_start(&s->destroy_check, on_destroy_check);
        return;
    }
    if (uv_is_active((uv_handle_t *)&s->destroy_check))
        return; /* step one has not run yet */
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
