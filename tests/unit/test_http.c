/*
 * test_http.c - the HTTP server and client on one libuv loop, talking to
 * each other over 127.0.0.1, plus small raw uv_tcp peers for what neither
 * side does on purpose: a server that never answers, one that sends canned
 * headers, and a client that keeps one connection for several requests.
 * Every test ends by closing everything and asserting uv_loop_close() == 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "br.h"
#include "http_client.h"
#include "http_server.h"
#include "log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#define MAX_RESULTS 16
#define MAX_PEERS 8

struct result {
    int done;
    int err;
    long status;
    char *body;
    size_t body_len;
    long retry_after;
    long ratelimit;
    char error[256];
    int seq; /* completion order */
};

struct fx;

struct slot {
    struct fx *fx;
    int idx;
};

/* A raw TCP peer: a silent or canned server's accepted socket, or a raw client. */
struct peer {
    uv_tcp_t tcp;
    struct fx *fx;
    struct br_buf in;
    int used;
    int eof;
};

struct fx {
    uv_loop_t loop;
    struct br_http_server *srv;
    struct br_http_client *cli;
    int port;

    /* What the handler saw last. */
    int handler_calls;
    char method[16];
    char path[256];
    char query[256];
    char ctype[128];
    char remote[64];
    size_t body_len;
    char body_head[64];

    struct result res[MAX_RESULTS];
    struct slot slots[MAX_RESULTS];
    int pending;
    int completed;
    int sync_cb; /* set while inside br_http_client_send */
    int cb_during_send;

    /* Raw peers. */
    uv_tcp_t raw_listener;
    int raw_listener_open;
    int raw_port;
    const char *canned; /* NULL: accept and stay silent */
    struct peer peers[MAX_PEERS];

    /* Raw client state: requests sent one after another on one connection. */
    const char *const *script;
    int raw_step;
    char *raw_resp[4];
    uint64_t raw_eof_ms;

    /* Answers after the flush (/later). */
    int flushes;
    int later_queued;  /* /later requests handled since the last flush */
    int flush_fails;

    int closes_pending;
    uv_timer_t watchdog;
    uv_timer_t aux;
};

/* ---- handler -------------------------------------------------------- */

static void
copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src != NULL ? src : "(null)");
}

static long
query_num(const char *q, const char *name)
{
    size_t n = strlen(name);
    const char *p = q;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, name, n) == 0 && p[n] == '=')
            return atol(p + n + 1);
        p = strchr(p, '&');
        if (p != NULL)
            p++;
    }
    return -1;
}

static void
handler(void *ctx, const struct br_http_request *req, struct br_http_response *res)
{
    struct fx *fx = ctx;

    fx->handler_calls++;
    copy_str(fx->method, sizeof(fx->method), req->method);
    copy_str(fx->path, sizeof(fx->path), req->path);
    copy_str(fx->query, sizeof(fx->query), req->query);
    copy_str(fx->ctype, sizeof(fx->ctype), req->content_type);
    copy_str(fx->remote, sizeof(fx->remote), req->remote_addr);
    fx->body_len = req->body_len;
    assert_non_null(req->body);
    assert_int_equal(req->body[req->body_len], '\0');
    snprintf(fx->body_head, sizeof(fx->body_head), "%.*s",
             (int)(req->body_len < 63 ? req->body_len : 63), req->body);

    if (strcmp(req->path, "/echo") == 0) {
        br_buf_append(&res->body, req->body, req->body_len);
    } else if (strcmp(req->path, "/missing") == 0) {
        res->status = 404;
        br_buf_puts(&res->body, "{\"error\":\"not found\"}");
    } else if (strcmp(req->path, "/text") == 0) {
        res->content_type = "text/plain";
        br_buf_puts(&res->body, "hello");
    } else if (strcmp(req->path, "/later") == 0) {
        /* Holds only once the flush stored what this request queued. */
        res->after_flush = 1;
        fx->later_queued++;
        br_buf_puts(&res->body, "{\"ok\":\"later\"}");
    } else if (strcmp(req->path, "/empty") == 0) {
        /* No body at all. */
    } else if (strcmp(req->path, "/big") == 0) {
        long i, n = query_num(req->query, "n");

        for (i = 0; i < n; i++)
            br_buf_putc(&res->body, (char)('a' + i % 26));
    } else {
        br_buf_puts(&res->body, "{\"ok\":true}");
    }
}

/* ---- fixture -------------------------------------------------------- */

static void
on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: test did not finish in time");
}

static void
on_aux_stop(uv_timer_t *t)
{
    struct fx *fx = t->data;

    uv_stop(&fx->loop);
}

static void
fx_init(struct fx *fx)
{
    memset(fx, 0, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->watchdog);
    uv_timer_start(&fx->watchdog, on_watchdog, 20000, 0);
    uv_unref((uv_handle_t *)&fx->watchdog);
    uv_timer_init(&fx->loop, &fx->aux);
    fx->aux.data = fx;
}

static int
flush(void *ctx)
{
    struct fx *fx = ctx;

    fx->flushes++;
    fx->later_queued = 0;
    return fx->flush_fails ? -1 : 0;
}

static void
start_server(struct fx *fx, size_t max_body, unsigned timeout_s)
{
    struct br_http_server_opts o = {
        .host = "127.0.0.1",
        .port = 0,
        .max_body = max_body,
        .request_timeout_s = timeout_s,
        .handler = handler,
        .ctx = fx,
        .flush = flush,
    };

    assert_int_equal(br_http_server_new(&fx->srv, &fx->loop, &o), 0);
    fx->port = br_http_server_port(fx->srv);
    assert_true(fx->port > 0);
}

static void
start_client(struct fx *fx)
{
    assert_int_equal(br_http_client_new(&fx->cli, &fx->loop), 0);
}

static void
on_closed_done(void *arg)
{
    struct fx *fx = arg;

    fx->closes_pending--;
}

static void
on_peer_closed(uv_handle_t *h)
{
    struct peer *p = h->data;

    br_buf_dispose(&p->in);
    p->used = 0;
}

static void
close_peers(struct fx *fx)
{
    int i;

    for (i = 0; i < MAX_PEERS; i++)
        if (fx->peers[i].used && !uv_is_closing((uv_handle_t *)&fx->peers[i].tcp))
            uv_close((uv_handle_t *)&fx->peers[i].tcp, on_peer_closed);
    if (fx->raw_listener_open) {
        uv_close((uv_handle_t *)&fx->raw_listener, NULL);
        fx->raw_listener_open = 0;
    }
}

/* The documented shutdown order: stop our peers, close client and server, run the loop dry. */
static void
fx_teardown(struct fx *fx)
{
    int i;

    close_peers(fx);
    if (fx->cli != NULL) {
        fx->closes_pending++;
        br_http_client_close(fx->cli, on_closed_done, fx);
    }
    if (fx->srv != NULL) {
        fx->closes_pending++;
        br_http_server_close(fx->srv, on_closed_done, fx);
    }
    /* done() never fires synchronously. */
    assert_int_equal(fx->closes_pending, (fx->cli != NULL) + (fx->srv != NULL));
    uv_close((uv_handle_t *)&fx->aux, NULL);
    uv_timer_stop(&fx->watchdog);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->closes_pending, 0);
    br_http_client_free(fx->cli);
    br_http_server_free(fx->srv);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    for (i = 0; i < MAX_RESULTS; i++)
        free(fx->res[i].body);
    for (i = 0; i < 4; i++)
        free(fx->raw_resp[i]);
}

/* ---- client helpers ------------------------------------------------- */

static void
on_result(void *arg, const struct br_http_result *r)
{
    struct slot *s = arg;
    struct fx *fx = s->fx;
    struct result *out = &fx->res[s->idx];

    if (fx->sync_cb)
        fx->cb_during_send = 1;
    assert_false(out->done);
    out->done = 1;
    out->err = r->err;
    out->status = r->status;
    assert_non_null(r->body);
    assert_int_equal(r->body[r->body_len], '\0');
    out->body = br_strndup(r->body, r->body_len);
    out->body_len = r->body_len;
    out->retry_after = r->retry_after_s;
    out->ratelimit = r->ratelimit_remaining;
    assert_non_null(r->error);
    copy_str(out->error, sizeof(out->error), r->error);
    out->seq = fx->completed++;
    if (--fx->pending == 0)
        uv_stop(&fx->loop);
}

static int
send_req(struct fx *fx, int idx, const char *method, const char *url, const char *const *headers,
         const char *body, size_t body_len, long timeout_ms)
{
    int rc;

    fx->slots[idx].fx = fx;
    fx->slots[idx].idx = idx;
    fx->sync_cb = 1;
    rc = br_http_client_send(fx->cli, method, url, headers, body, body_len, timeout_ms, on_result,
                             &fx->slots[idx]);
    fx->sync_cb = 0;
    if (rc == 0)
        fx->pending++;
    return rc;
}

static char *
url(int port, const char *path)
{
    return br_asprintf("http://127.0.0.1:%d%s", port, path);
}

static void
run(struct fx *fx)
{
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->pending, 0);
    assert_false(fx->cb_during_send);
}

/* ---- raw peers ------------------------------------------------------ */

static struct peer *
peer_alloc(struct fx *fx)
{
    int i;

    for (i = 0; i < MAX_PEERS; i++) {
        if (!fx->peers[i].used) {
            struct peer *p = &fx->peers[i];

            memset(p, 0, sizeof(*p));
            p->used = 1;
            p->fx = fx;
            p->tcp.data = p;
            br_buf_init(&p->in, 0);
            return p;
        }
    }
    fail_msg("too many peers");
    return NULL;
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = suggested;
}

static void
on_write_then_close(uv_write_t *w, int status)
{
    struct peer *p = w->data;

    (void)status;
    free(w);
    if (!uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, on_peer_closed);
}

static void
on_write_keep(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void
peer_write(struct peer *p, const char *data, int then_close)
{
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)strlen(data));

    w->data = p;
    assert_int_equal(uv_write(w, (uv_stream_t *)&p->tcp, &b, 1,
                              then_close ? on_write_then_close : on_write_keep),
                     0);
}

/* Server side of a raw peer: silent, or one canned answer once the request headers are in. */
static void
on_server_peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct peer *p = s->data;

    if (n > 0) {
        br_buf_append(&p->in, buf->base, (size_t)n);
        if (p->fx->canned != NULL && strstr(p->in.data, "\r\n\r\n") != NULL && !p->eof) {
            p->eof = 1; /* answered */
            uv_read_stop(s);
            peer_write(p, p->fx->canned, 1);
        }
    } else if (n < 0) {
        uv_read_stop(s);
    }
    free(buf->base);
}

static void
on_raw_connection(uv_stream_t *server, int status)
{
    struct fx *fx = server->data;
    struct peer *p;

    assert_int_equal(status, 0);
    p = peer_alloc(fx);
    uv_tcp_init(&fx->loop, &p->tcp);
    assert_int_equal(uv_accept(server, (uv_stream_t *)&p->tcp), 0);
    uv_read_start((uv_stream_t *)&p->tcp, alloc_cb, on_server_peer_read);
}

static int
bound_port(uv_tcp_t *t)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    assert_int_equal(uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void
start_raw_server(struct fx *fx, const char *canned)
{
    struct sockaddr_in a;

    fx->canned = canned;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&fx->loop, &fx->raw_listener);
    fx->raw_listener.data = fx;
    assert_int_equal(uv_tcp_bind(&fx->raw_listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fx->raw_listener, 16, on_raw_connection), 0);
    fx->raw_listener_open = 1;
    fx->raw_port = bound_port(&fx->raw_listener);
}

/* ---- tests: round trips --------------------------------------------- */

static void
test_get_roundtrip(void **state)
{
    struct fx fx;
    char *u;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 0);
    start_client(&fx);

    u = url(fx.port, "/hello?x=1");
    assert_int_equal(send_req(&fx, 0, "GET", u, NULL, NULL, 0, 5000), 0);
    free(u);
    assert_int_equal(br_http_client_inflight(fx.cli), 1);
    run(&fx);

    assert_int_equal(fx.res[0].err, 0);
    assert_int_equal(fx.res[0].status, 200);
    assert_string_equal(fx.res[0].body, "{\"ok\":true}");
    assert_string_equal(fx.res[0].error, "");
    assert_int_equal(fx.res[0].retry_after, -1);
    assert_int_equal(fx.res[0].ratelimit, -1);
    assert_int_equal(br_http_client_inflight(fx.cli), 0);
    assert_int_equal(fx.handler_calls, 1);
    assert_string_equal(fx.method, "GET");
    assert_string_equal(fx.path, "/hello");
    assert_string_equal(fx.query, "x=1");
    assert_string_equal(fx.ctype, "");
    assert_string_equal(fx.remote, "127.0.0.1");
    assert_int_equal(fx.body_len, 0);
    fx_teardown(&fx);
}

static void
test_post_roundtrip(void **state)
{
    static const char body[] = "{\"event\":\"chatStarted\",\"text\":\"h\\u00e9llo\"}";
    const char *const headers[] = { "Content-Type: application/json; charset=utf-8",
                                    "X-Custom: 1", NULL };
    struct fx fx;
    char *u;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 0);
    start_client(&fx);

    u = url(fx.port, "/echo");
    assert_int_equal(send_req(&fx, 0, "POST", u, headers, body, strlen(body), 5000), 0);
    free(u);
    run(&fx);

    assert_int_equal(fx.res[0].err, 0);
    assert_int_equal(fx.res[0].status, 200);
    assert_string_equal(fx.res[0].body, body);
    assert_string_equal(fx.method, "POST");
    assert_string_equal(fx.path, "/echo");
    assert_string_equal(fx.query, "");
    assert_string_equal(fx.ctype, "application/json; charset=utf-8");
    assert_int_equal(fx.body_len, strlen(body));
    fx_teardown(&fx);
}

static void
test_methods_and_empty_bodies(void **state)
{
    struct fx fx;
    char *u;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 0);
    start_client(&fx);
    u = url(fx.port, "/echo");

    /* A POST without a body still reaches the handler, with body "" and length 0. */
    assert_int_equal(send_req(&fx, 0, "POST", u, NULL, NULL, 0, 5000), 0);
    run(&fx);
    assert_int_equal(fx.res[0].err, 0);
    assert_int_equal(fx.res[0].status, 200);
    assert_int_equal(fx.res[0].body_len, 0);
    assert_string_equal(fx.method, "POST");
    assert_int_equal(fx.body_len, 0);
    assert_int_equal(fx.handler_calls, 1);

    assert_int_equal(send_req(&fx, 1, "PUT", u, NULL, "abc", 3, 5000), 0);
    run(&fx);
    assert_int_equal(fx.res[1].status, 200);
    assert_string_equal(fx.res[1].body, "abc");
    assert_string_equal(fx.method, "PUT");

    assert_int_equal(send_req(&fx, 2, "DELETE", u, NULL, NULL, 0, 5000), 0);
    run(&fx);
    assert_int_equal(fx.res[2].status, 200);
    assert_string_equal(fx.method, "DELETE");
    free(u);

    /* HEAD gets the headers of the answer but no body. */
    u = url(fx.port, "/text");
    assert_int_equal(send_req(&fx, 3, "HEAD", u, NULL, NULL, 0, 5000), 0);
    run(&fx);
    assert_int_equal(fx.res[3].err, 0);
    assert_int_equal(fx.res[3].status, 200);
    assert_int_equal(fx.res[3].body_len, 0);
    assert_string_equal(fx.method, "HEAD");
    free(u);

    /* An empty response body, then a 404 chosen by the handler. */
    u = url(fx.port, "/empty");
    assert_int_equal(send_req(&fx, 4, "GET", u, NULL, NULL, 0, 5000), 0);
    free(u);
    u = url(fx.port, "/missing");
    assert_int_equal(send_req(&fx, 5, "GET", u, NULL, NULL, 0, 5000), 0);
    free(u);
    run(&fx);
    assert_int_equal(fx.res[4].status, 200);
    assert_int_equal(fx.res[4].body_len, 0);
    assert_int_equal(fx.res[5].status, 404);
    assert_string_equal(fx.res[5].body, "{\"error\":\"not found\"}");
    assert_int_equal(fx.handler_calls, 6);
    fx_teardown(&fx);
}

static void
test_query_and_path(void **state)
{
    struct fx fx;
    char *u;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 0);
    start_client(&fx);

    u = url(fx.port, "/hooks/chatra?token=s3cr-et_1.~&x=a%26b%3Dc&flag");
    assert_int_equal(send_req(&fx, 0, "GET", u, NULL, NULL, 0, 5000), 0);
    free(u);
    run(&fx);
    assert_int_equal(fx.res[0].status, 200);
    assert_string_equal(fx.path, "/hooks/chatra");
    assert_string_equal(fx.query, "token=s3cr-et_1.~&x=a%26b%3Dc&flag");

    /* Encoded bytes in the path stay encoded for the handler. */
    u = url(fx.port, "/a/b%20c/%C3%A9?q=%2F");
    assert_int_equal(send_req(&fx, 1, "GET", u, NULL, NULL, 0, 5000), 0);
    free(u);
    run(&fx);
    assert_string_equal(fx.path, "/a/b%20c/%C3%A9");
    assert_string_equal(fx.query, "q=%2F");

    u = url(fx.port, "/");
    assert_int_equal(send_req(&fx, 2, "GET", u, NULL, NULL, 0, 5000), 0);
    free(u);
    run(&fx);
    assert_string_equal(fx.path, "/");
    assert_string_equal(fx.query, "");
    fx_teardown(&fx);
}

static void
test_body_limit(void **state)
{
    struct fx fx;
    char *u, *big;
    const size_t max = 1024, huge = 300 * 1024;

    (void)state;
    fx_init(&fx);
    start_server(&fx, max, 0);
    start_client(&fx);
    u = url(fx.port, "/echo");
    big = malloc(huge);
    memset(big, 'z', huge);

    /* Exactly the limit is fine. */
    assert_int_equal(send_req(&fx, 0, "POST", u, NULL, big, max, 5000), 0);
    run(&fx);
    assert_int_equal(fx.res[0].status, 200);
    assert_int_equal(fx.res[0].body_len, max);
    assert_int_equal(fx.handler_calls, 1);

    /* One byte more, and a body much larger than the socket buffers. */
    assert_int_equal(send_req(&fx, 1, "POST", u, NULL, big, max + 1, 5000), 0);
    run(&fx);
    assert_int_equal(send_req(&fx, 2, "POST", u, NULL, big, huge, 5000), 0);
    run(&fx);
    assert_int_equal(fx.res[1].err, 0);
    assert_int_equal(fx.res[1].status, 413);
    assert_string_equal(fx.res[1].body, "{\"error\":\"body too large\"}");
    assert_int_equal(fx.res[2].err, 0);
    assert_int_equal(fx.res[2].status, 413);
    assert_string_equal(fx.res[2].body, "{\"error\":\"body too large\"}");
    assert_int_equal(fx.handler_calls, 1);

    /* The server still answers normally afterwards. */
    assert_int_equal(send_req(&fx, 3, "POST", u, NULL, "ok", 2, 5000), 0);
    run(&fx);
    assert_int_equal(fx.res[3].status, 200);
    assert_string_equal(fx.res[3].body, "ok");
    assert_int_equal(fx.handler_calls, 2);
    free(u);
    free(big);
    fx_teardown(&fx);
}

static void
test_large_responses(void **state)
{
    struct fx fx;
    char *u;
    size_t i;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 0);
    start_client(&fx);

    /* Big enough to need many writeable callbacks on the server. */
    u = url(fx.port, "/big?n=3000000");
    assert_int_equal(send_req(&fx, 0, "GET", u, NULL, NULL, 0, 10000), 0);
    free(u);
    run(&fx);
    assert_int_equal(fx.res[0].err, 0);
    assert_int_equal(fx.res[0].body_len, 3000000);
    for (i = 0; i < fx.res[0].body_len; i++)
        if (fx.res[0].body[i] != (char)('a' + i % 26))
            fail_msg("byte %zu differs", i);

    /* Over the client's 8 MiB cap. */
    u = url(fx.port, "/big?n=9000000");
    assert_int_equal(send_req(&fx, 1, "GET", u, NULL, NULL, 0, 10000), 0);
    free(u);
    run(&fx);
    assert_int_equal(fx.res[1].err, BR_ELIMIT);
    assert_int_equal(fx.res[1].status, 0);
    assert_true(fx.res[1].error[0] != '\0');
    fx_teardown(&fx);
}

/* Sequential requests through the client, each started from the previous callback. */
static void
on_chain(void *arg, const struct br_http_result *r)
{
    struct slot *s = arg;
    struct fx *fx = s->fx;
    char *u;

    fx->res[s->idx].done = 1;
    fx->res[s->idx].err = r->err;
    fx->res[s->idx].status = r->status;
    fx->res[s->idx].seq = fx->completed++;
    if (s->idx + 1 < 8) {
        u = url(fx->port, "/chain");
        fx->slots[s->idx + 1].fx = fx;
        fx->slots[s->idx + 1].idx = s->idx + 1;
        assert_int_equal(br_http_client_send(fx->cli, "POST", u, NULL, "x", 1, 5000, on_chain,
                                             &fx->slots[s->idx + 1]),
                         0);
        free(u);
    } else {
        uv_stop(&fx->loop);
    }
}

static void
test_sequential_requests(void **state)
{
    struct fx fx;
    char *u;
    int i;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 0);
    start_client(&fx);
    u = url(fx.port, "/chain");
    fx.slots[0].fx = &fx;
    fx.slots[0].idx = 0;
    assert_int_equal(br_http_client_send(fx.cli, "GET", u, NULL, NULL, 0, 5000, on_chain, &fx.slots[0]), 0);
    free(u);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    for (i = 0; i < 8; i++) {
        assert_true(fx.res[i].done);
        assert_int_equal(fx.res[i].err, 0);
        assert_int_equal(fx.res[i].status, 200);
    }
    assert_int_equal(fx.handler_calls, 8);
    fx_teardown(&fx);
}

static void
test_parallel_requests(void **state)
{
    struct fx fx;
    char *u;
    int i;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 0);
    start_client(&fx);
    u = url(fx.port, "/echo");
    for (i = 0; i < 12; i++) {
        char body[16];

        snprintf(body, sizeof(body), "req-%d", i);
        assert_int_equal(send_req(&fx, i, "POST", u, NULL, body, strlen(body), 5000), 0);
    }
    free(u);
    assert_int_equal(br_http_client_inflight(fx.cli), 12);
    run(&fx);
    for (i = 0; i < 12; i++) {
        char body[16];

        snprintf(body, sizeof(body), "req-%d", i);
        assert_int_equal(fx.res[i].status, 200);
        assert_string_equal(fx.res[i].body, body);
    }
    assert_int_equal(fx.handler_calls, 12);
    fx_teardown(&fx);
}

/* ---- raw client: scripted requests on one connection ----------------- */

/* Returns the length of one complete response at the start of b, or 0. */
static size_t
response_len(const struct br_buf *b)
{
    const char *end, *cl;
    size_t hdr;

    if (b->data == NULL || (end = strstr(b->data, "\r\n\r\n")) == NULL)
        return 0;
    hdr = (size_t)(end - b->data) + 4;
    cl = strcasestr(b->data, "\r\ncontent-length:");
    if (cl == NULL || cl > end)
        return 0;
    hdr += (size_t)atol(cl + 17);
    return b->len >= hdr ? hdr : 0;
}

/* Sends script[i + 1] after the i-th response; stops the loop after the last one or at EOF. */
static void
on_script_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct peer *p = s->data;
    struct fx *fx = p->fx;
    size_t len;

    if (n < 0) {
        p->eof = 1;
        fx->raw_eof_ms = uv_now(&fx->loop);
        uv_read_stop(s);
        uv_stop(&fx->loop);
    } else if (n > 0) {
        br_buf_append(&p->in, buf->base, (size_t)n);
    }
    free(buf->base);
    while ((len = response_len(&p->in)) > 0 && fx->raw_step < 4) {
        fx->raw_resp[fx->raw_step] = br_strndup(p->in.data, len);
        memmove(p->in.data, p->in.data + len, p->in.len - len + 1);
        p->in.len -= len;
        fx->raw_step++;
        if (fx->script[fx->raw_step] != NULL)
            peer_write(p, fx->script[fx->raw_step], 0);
        else if (!p->eof)
            /* Wait a moment for an EOF that may follow "connection: close". */
            uv_timer_start(&fx->aux, on_aux_stop, 200, 0);
    }
}

static void
on_raw_connect(uv_connect_t *req, int status)
{
    struct peer *p = req->data;

    free(req);
    assert_int_equal(status, 0);
    uv_read_start((uv_stream_t *)&p->tcp, alloc_cb, on_script_read);
    peer_write(p, p->fx->script[0], 0);
}

static struct peer *
raw_connect(struct fx *fx, int port, const char *const *script)
{
    struct peer *p = peer_alloc(fx);
    uv_connect_t *c = malloc(sizeof(*c));
    struct sockaddr_in a;

    fx->script = script;
    fx->raw_step = 0;
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(&fx->loop, &p->tcp);
    c->data = p;
    assert_int_equal(uv_tcp_connect(c, &p->tcp, (struct sockaddr *)&a, on_raw_connect), 0);
    return p;
}

static void
free_raw(struct fx *fx)
{
    int i;

    for (i = 0; i < 4; i++) {
        free(fx->raw_resp[i]);
        fx->raw_resp[i] = NULL;
    }
}

static void
test_keepalive_one_connection(void **state)
{
    static const char *const script[] = {
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/x-a\r\nContent-Length: 5\r\n\r\nfirst",
        "GET /text?k=v HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        NULL,
    };
    struct fx fx;
    struct peer *p;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 0);
    p = raw_connect(&fx, fx.port, script);
    uv_run(&fx.loop, UV_RUN_DEFAULT);

    assert_int_equal(fx.raw_step, 3);
    assert_false(p->eof);
    assert_non_null(strstr(fx.raw_resp[0], "HTTP/1.1 200"));
    assert_non_null(strcasestr(fx.raw_resp[0], "content-type: application/json"));
    assert_non_null(strstr(fx.raw_resp[0], "\r\n\r\nfirst"));
    assert_non_null(strstr(fx.raw_resp[1], "HTTP/1.1 200"));
    assert_non_null(strcasestr(fx.raw_resp[1], "content-type: text/plain"));
    assert_non_null(strcasestr(fx.raw_resp[1], "content-length: 5"));
    assert_non_null(strstr(fx.raw_resp[1], "\r\n\r\nhello"));
    assert_non_null(strstr(fx.raw_resp[2], "HTTP/1.1 200"));
    assert_non_null(strcasestr(fx.raw_resp[2], "content-length: 0"));
    assert_null(strcasestr(fx.raw_resp[2], "connection: close"));
    assert_int_equal(fx.handler_calls, 3);
    assert_string_equal(fx.query, "");
    /* The connection stays open and idle: the server must close it at shutdown. */
    fx_teardown(&fx);
}

/*
 * An after_flush answer is written only after the flush, request after
 * request on a kept-alive connection; a failed flush turns it into a 503.
 */
static void
test_answers_after_flush(void **state)
{
    static const char *const script[] = {
        "POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab",
        "POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\ncd",
        "POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nef",
        NULL,
    };
    static const char *const failing[] = {
        "POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\ngh",
        NULL,
    };
    struct fx fx;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 0);
    raw_connect(&fx, fx.port, script);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(fx.raw_step, 3);
    for (int i = 0; i < 3; i++) {
        assert_non_null(strstr(fx.raw_resp[i], "HTTP/1.1 200"));
        assert_non_null(strstr(fx.raw_resp[i], "\r\n\r\n{\"ok\":\"later\"}"));
        assert_null(strcasestr(fx.raw_resp[i], "connection: close"));
    }
    assert_int_equal(fx.handler_calls, 3);
    assert_int_equal(fx.flushes, 3);
    assert_int_equal(fx.later_queued, 0);
    free_raw(&fx);

    fx.flush_fails = 1;
    raw_connect(&fx, fx.port, failing);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(fx.raw_step, 1);
    assert_non_null(strstr(fx.raw_resp[0], "HTTP/1.1 503"));
    assert_non_null(strstr(fx.raw_resp[0], "cannot store the event; try again"));
    free_raw(&fx);
    fx_teardown(&fx);
}

static void
test_slow_client_dropped(void **state)
{
    static const char *const partial_headers[] = { "GET / HTTP/1.1\r\nHost: t\r\n", NULL };
    static const char *const partial_body[] = {
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc", NULL
    };
    struct fx fx;
    struct peer *p;
    uint64_t start;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 1);
    /* Headers never finish: lws's timeout must drop the connection. */
    start = uv_now(&fx.loop);
    p = raw_connect(&fx, fx.port, partial_headers);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_true(p->eof);
    assert_true(fx.raw_eof_ms - start < 5000);
    assert_int_equal(fx.handler_calls, 0);

    /* Same for a body that stops halfway. */
    p = raw_connect(&fx, fx.port, partial_body);
    start = uv_now(&fx.loop);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_true(p->eof);
    assert_true(fx.raw_eof_ms - start < 5000);
    assert_int_equal(fx.handler_calls, 0);
    fx_teardown(&fx);
}

/* What lws 4.1 cannot continue a connection after: answered, then closed. */
static void
test_body_framing(void **state)
{
    static const char *const chunked[] = {
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n",
        NULL,
    };
    static const char *const bad_chunked[] = {
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        NULL,
    };
    static const char *const chunked_too_big[] = {
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n",
        NULL,
    };
    static const char *const no_length[] = {
        "POST /echo HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        NULL,
    };
    struct fx fx;
    struct peer *p;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 16, 0);

    p = raw_connect(&fx, fx.port, chunked);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(fx.raw_step, 1);
    assert_non_null(strstr(fx.raw_resp[0], "HTTP/1.1 200"));
    assert_non_null(strcasestr(fx.raw_resp[0], "connection: close"));
    assert_non_null(strstr(fx.raw_resp[0], "\r\n\r\nabc0123456789"));
    assert_int_equal(fx.body_len, 13);
    assert_int_equal(fx.handler_calls, 1);
    if (!p->eof)
        uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_true(p->eof);
    free_raw(&fx);

    p = raw_connect(&fx, fx.port, bad_chunked);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_non_null(strstr(fx.raw_resp[0], "HTTP/1.1 400"));
    assert_non_null(strstr(fx.raw_resp[0], "malformed chunked body"));
    free_raw(&fx);

    p = raw_connect(&fx, fx.port, chunked_too_big);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_non_null(strstr(fx.raw_resp[0], "HTTP/1.1 413"));
    assert_int_equal(fx.handler_calls, 1);
    free_raw(&fx);

    /* The client gets its answer and an EOF instead of a hang on the second request. */
    p = raw_connect(&fx, fx.port, no_length);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_non_null(strstr(fx.raw_resp[0], "HTTP/1.1 200"));
    assert_non_null(strcasestr(fx.raw_resp[0], "connection: close"));
    assert_int_equal(fx.body_len, 0);
    assert_string_equal(fx.method, "POST");
    assert_true(p->eof);
    assert_int_equal(fx.raw_step, 1);
    free_raw(&fx);
    fx_teardown(&fx);
}

/* A body far over the limit is not read to the end: 413 and the connection is dropped. */
static void
test_body_limit_early_answer(void **state)
{
    struct fx fx;
    char *u, *big;
    const size_t huge = 3 * 1024 * 1024;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 1024, 0);
    start_client(&fx);
    big = malloc(huge);
    memset(big, 'q', huge);
    u = url(fx.port, "/echo");
    assert_int_equal(send_req(&fx, 0, "POST", u, NULL, big, huge, 5000), 0);
    run(&fx);
    if (fx.res[0].err != 0)
        fail_msg("err %d: %s", fx.res[0].err, fx.res[0].error);
    assert_int_equal(fx.res[0].status, 413);
    assert_int_equal(fx.handler_calls, 0);
    /* The client recovers on a new connection. */
    assert_int_equal(send_req(&fx, 1, "POST", u, NULL, "ok", 2, 5000), 0);
    run(&fx);
    assert_int_equal(fx.res[1].status, 200);
    free(u);
    free(big);
    fx_teardown(&fx);
}

/* ---- client against raw servers -------------------------------------- */

static void
test_client_timeout(void **state)
{
    struct fx fx;
    char *u;
    uint64_t start;

    (void)state;
    fx_init(&fx);
    start_client(&fx);
    start_raw_server(&fx, NULL);
    u = url(fx.raw_port, "/never");
    start = uv_now(&fx.loop);
    assert_int_equal(send_req(&fx, 0, "POST", u, NULL, "{}", 2, 300), 0);
    free(u);
    run(&fx);
    assert_int_equal(fx.res[0].err, BR_ETIMEDOUT);
    assert_int_equal(fx.res[0].status, 0);
    assert_true(fx.res[0].error[0] != '\0');
    assert_true(uv_now(&fx.loop) - start >= 250);
    assert_true(uv_now(&fx.loop) - start < 3000);
    fx_teardown(&fx);
}

static void
on_port_probe_closed(uv_handle_t *h)
{
    (void)h;
}

static void
test_client_refused(void **state)
{
    struct fx fx;
    uv_tcp_t probe;
    struct sockaddr_in a;
    char *u;
    int port;

    (void)state;
    fx_init(&fx);
    /* A port that was free a moment ago and has no listener now. */
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&fx.loop, &probe);
    assert_int_equal(uv_tcp_bind(&probe, (struct sockaddr *)&a, 0), 0);
    port = bound_port(&probe);
    uv_close((uv_handle_t *)&probe, on_port_probe_closed);
    uv_run(&fx.loop, UV_RUN_NOWAIT);

    start_client(&fx);
    u = url(port, "/");
    assert_int_equal(send_req(&fx, 0, "GET", u, NULL, NULL, 0, 2000), 0);
    free(u);
    run(&fx);
    assert_int_equal(fx.res[0].err, BR_EIO);
    assert_int_equal(fx.res[0].status, 0);
    assert_true(fx.res[0].error[0] != '\0');
    fx_teardown(&fx);
}

static void
test_rate_limit_headers(void **state)
{
    struct fx fx;
    char *u;

    (void)state;
    fx_init(&fx);
    start_client(&fx);
    start_raw_server(&fx, "HTTP/1.1 429 Too Many Requests\r\n"
                          "Content-Type: application/json\r\n"
                          "retry-after:  7 \r\n"
                          "X-RateLimit-Remaining: 0\r\n"
                          "Content-Length: 2\r\n"
                          "Connection: close\r\n\r\n{}");
    u = url(fx.raw_port, "/issues.json");
    assert_int_equal(send_req(&fx, 0, "POST", u, NULL, "{}", 2, 3000), 0);
    run(&fx);
    assert_int_equal(fx.res[0].err, 0);
    assert_int_equal(fx.res[0].status, 429);
    assert_string_equal(fx.res[0].body, "{}");
    assert_int_equal(fx.res[0].retry_after, 7);
    assert_int_equal(fx.res[0].ratelimit, 0);

    /* A date in the past means "now"; a count passes through. */
    fx.canned = "HTTP/1.1 503 Service Unavailable\r\n"
                "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
                "X-RateLimit-Remaining: 42\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n";
    assert_int_equal(send_req(&fx, 1, "GET", u, NULL, NULL, 0, 3000), 0);
    run(&fx);
    assert_int_equal(fx.res[1].status, 503);
    assert_int_equal(fx.res[1].retry_after, 0);
    assert_int_equal(fx.res[1].ratelimit, 42);

    /* Absent or unparsable headers are -1. */
    fx.canned = "HTTP/1.1 200 OK\r\nX-RateLimit-Remaining: lots\r\n"
                "Content-Length: 3\r\nConnection: close\r\n\r\nabc";
    assert_int_equal(send_req(&fx, 2, "GET", u, NULL, NULL, 0, 3000), 0);
    run(&fx);
    assert_int_equal(fx.res[2].status, 200);
    assert_string_equal(fx.res[2].body, "abc");
    assert_int_equal(fx.res[2].retry_after, -1);
    assert_int_equal(fx.res[2].ratelimit, -1);
    free(u);
    fx_teardown(&fx);
}

static void
test_client_errors_are_deferred(void **state)
{
    struct fx fx;

    (void)state;
    fx_init(&fx);
    start_client(&fx);
    /* Refused before anything starts: no callback at all. */
    assert_int_equal(send_req(&fx, 0, "get", "http://127.0.0.1:1/", NULL, NULL, 0, 1000), BR_EINVAL);
    assert_int_equal(send_req(&fx, 0, "GET", NULL, NULL, NULL, 0, 1000), BR_EINVAL);
    assert_int_equal(br_http_client_inflight(fx.cli), 0);
    /* Failing inside curl: reported later, from the loop. */
    assert_int_equal(send_req(&fx, 1, "GET", "ftp://127.0.0.1/x", NULL, NULL, 0, 1000), 0);
    assert_int_equal(send_req(&fx, 2, "GET", "not a url", NULL, NULL, 0, 1000), 0);
    assert_false(fx.res[1].done);
    assert_int_equal(br_http_client_inflight(fx.cli), 2);
    run(&fx);
    assert_int_equal(fx.res[1].err, BR_EIO);
    assert_true(fx.res[1].error[0] != '\0');
    assert_int_equal(fx.res[2].err, BR_EIO);
    assert_int_equal(br_http_client_inflight(fx.cli), 0);
    fx_teardown(&fx);
}

static void
on_aux_close_client(uv_timer_t *t)
{
    struct fx *fx = t->data;

    fx->closes_pending++;
    br_http_client_close(fx->cli, on_closed_done, fx);
    /* Sending while closing is refused. */
    assert_int_equal(send_req(fx, 5, "GET", "http://127.0.0.1:1/", NULL, NULL, 0, 1000), BR_ECANCELED);
}

static void
test_client_close_cancels(void **state)
{
    struct fx fx;
    char *u;

    (void)state;
    fx_init(&fx);
    start_server(&fx, 0, 0);
    start_client(&fx);
    start_raw_server(&fx, NULL);
    u = url(fx.raw_port, "/silent");
    assert_int_equal(send_req(&fx, 0, "GET", u, NULL, NULL, 0, 10000), 0);
    assert_int_equal(send_req(&fx, 1, "POST", u, NULL, "a", 1, 10000), 0);
    free(u);
    uv_timer_start(&fx.aux, on_aux_close_client, 100, 0);
    run(&fx);
    assert_int_equal(fx.res[0].err, BR_ECANCELED);
    assert_int_equal(fx.res[1].err, BR_ECANCELED);
    assert_true(fx.res[0].error[0] != '\0');
    /* Let the client's close finish, then tear down the rest in order. */
    while (fx.closes_pending > 0)
        uv_run(&fx.loop, UV_RUN_ONCE);
    br_http_client_free(fx.cli);
    fx.cli = NULL;
    fx_teardown(&fx);
}

/* ---- server lifecycle ------------------------------------------------- */

static void
test_server_bind_failure(void **state)
{
    struct fx fx;
    struct br_http_server *srv = NULL;
    struct br_http_server_opts o = { .host = "127.0.0.1", .handler = handler };

    (void)state;
    fx_init(&fx);
    start_raw_server(&fx, NULL);
    o.ctx = &fx;
    o.port = fx.raw_port;
    assert_int_equal(br_http_server_new(&srv, &fx.loop, &o), BR_EIO);
    assert_null(srv);

    o.port = 70000;
    assert_int_equal(br_http_server_new(&srv, &fx.loop, &o), BR_EINVAL);
    o.port = 0;
    o.handler = NULL;
    assert_int_equal(br_http_server_new(&srv, &fx.loop, &o), BR_EINVAL);
    fx_teardown(&fx);
}

static void
test_server_close_idle(void **state)
{
    struct fx fx;

    (void)state;
    /* Never used: shutdown must still leave nothing on the loop. */
    fx_init(&fx);
    start_server(&fx, 0, 0);
    fx_teardown(&fx);

    /* Closed twice in a row on fresh loops, with a client that never sent. */
    fx_init(&fx);
    start_server(&fx, 0, 0);
    start_client(&fx);
    fx_teardown(&fx);
}

/*
 * Another part of the daemon opening descriptors while the server shuts
 * down (the HTTP client's connections, for jobs still running): lws 4.1
 * closes its event pipe's descriptor twice, and a descriptor opened between
 * the two closes must not be the one closed the second time.
 */
#define GRAB_MAX 256
#define GRAB_PER_TURN 32

struct grabber {
    uv_poll_t poll;          /* on a pipe's write end: its callback runs in every turn's I/O */
    int pipe[2];
    int fds[GRAB_MAX];
    int n;
    int stolen;              /* descriptors of ours found closed */
    int server_closed;
};

static void
on_grab(uv_poll_t *h, int status, int events)
{
    struct grabber *g = h->data;

    (void)status;
    (void)events;
    for (int i = 0; i < g->n; i++)
        if (g->fds[i] >= 0 && fcntl(g->fds[i], F_GETFD) == -1) {
            g->stolen++;
            g->fds[i] = -1;
        }
    for (int i = 0; i < GRAB_PER_TURN && g->n < GRAB_MAX && !g->server_closed; i++)
        g->fds[g->n++] = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void
on_grab_server_closed(void *arg)
{
    struct grabber *g = arg;

    g->server_closed = 1;
    uv_poll_stop(&g->poll);
    uv_close((uv_handle_t *)&g->poll, NULL);
}

static void
test_server_close_leaves_other_descriptors_alone(void **state)
{
    struct fx fx;
    struct grabber g;

    (void)state;
    memset(&g, 0, sizeof(g));
    fx_init(&fx);
    start_server(&fx, 0, 0);
    assert_int_equal(pipe(g.pipe), 0);
    assert_int_equal(uv_poll_init(&fx.loop, &g.poll, g.pipe[1]), 0);
    g.poll.data = &g;
    assert_int_equal(uv_poll_start(&g.poll, UV_WRITABLE, on_grab), 0);
    br_http_server_close(fx.srv, on_grab_server_closed, &g);
    uv_close((uv_handle_t *)&fx.aux, NULL);
    uv_timer_stop(&fx.watchdog);
    uv_close((uv_handle_t *)&fx.watchdog, NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_true(g.server_closed);
    assert_true(g.n > 0);
    assert_int_equal(g.stolen, 0);
    for (int i = 0; i < g.n; i++)
        if (g.fds[i] >= 0)
            assert_int_equal(close(g.fds[i]), 0);
    close(g.pipe[0]);
    close(g.pipe[1]);
    br_http_server_free(fx.srv);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_roundtrip),
        cmocka_unit_test(test_post_roundtrip),
        cmocka_unit_test(test_methods_and_empty_bodies),
        cmocka_unit_test(test_query_and_path),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_large_responses),
        cmocka_unit_test(test_sequential_requests),
        cmocka_unit_test(test_parallel_requests),
        cmocka_unit_test(test_keepalive_one_connection),
        cmocka_unit_test(test_answers_after_flush),
        cmocka_unit_test(test_body_framing),
        cmocka_unit_test(test_body_limit_early_answer),
        cmocka_unit_test(test_slow_client_dropped),
        cmocka_unit_test(test_client_timeout),
        cmocka_unit_test(test_client_refused),
        cmocka_unit_test(test_rate_limit_headers),
        cmocka_unit_test(test_client_errors_are_deferred),
        cmocka_unit_test(test_client_close_cancels),
        cmocka_unit_test(test_server_bind_failure),
        cmocka_unit_test(test_server_close_idle),
        cmocka_unit_test(test_server_close_leaves_other_descriptors_alone),
    };

    br_log_set_level(getenv("BR_TEST_VERBOSE") != NULL ? BR_LOG_DEBUG : BR_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
