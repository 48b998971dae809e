/*
 * test_rest.c - the shared REST call layer (bridge/rest.h) end to end on
 * one libuv loop: calls go through a real upstream and HTTP client to a
 * small canned HTTP peer on 127.0.0.1, which answers each request by its
 * path ("/s/<status>" with a body from the table below) and records what
 * it got.  Checked: the one status rule, transport failures, the check
 * hook, multi-step calls and their request summary, and that the callback
 * fires exactly once and never inside the starting call, also when the
 * upstream refuses (shutdown); and that calls made in the upstream's
 * urgent scope leave first, all of their requests, at the same rate.
 * Every test ends with uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "br.h"
#include "chatra.h"
#include "config.h"
#include "http_client.h"
#include "log.h"
#include "rest.h"
#include "upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MAX_PEERS 8

struct fx;

/* One accepted connection of the canned peer. */
struct peer {
    uv_tcp_t tcp;
    struct fx *fx;
    struct br_buf in;
    int used;
    int answered;
};

struct fx {
    uv_loop_t loop;
    struct br_http_client *http;
    struct br_upstream *up;
    uv_tcp_t listener;
    int port;
    int silent;             /* accept and never answer (timeouts) */
    const char *force_path; /* answer every request as if it asked for this path */
    struct peer peers[MAX_PEERS];
    char last_request[2048]; /* head and body of the last request the peer read */
    int requests;

    /* What the callback saw. */
    int calls;
    int in_start; /* set while inside br_rest_start/br_rest_run */
    int during_start;
    struct br_result res;
    char *error, *request, *response, *id;
    json_t *items;
    int upstream_closing;
    int upstream_closed;
    int http_closed;
};

/* ---- the canned peer ---------------------------------------------------- */

static const struct {
    const char *path;
    const char *head; /* status line and extra headers */
    const char *body;
} canned[] = {
    {"/s/200", "200 OK", "{\"id\":\"m1\",\"page\":1}"},
    {"/s/200/page2", "200 OK", "{\"id\":\"m2\",\"page\":2}"},
    {"/s/204", "204 No Content", ""},
    {"/s/200/html", "200 OK", "<html>a proxy</html>"},
    {"/s/200/fail", "200 OK", "{\"result\":\"fail\",\"code\":7}"},
    {"/s/302", "302 Found\r\nLocation: /elsewhere", ""},
    {"/s/400", "400 Bad Request", "{}"},
    {"/s/401", "401 Unauthorized", "{}"},
    {"/s/404", "404 Not Found", "{}"},
    {"/s/408", "408 Request Timeout", ""},
    {"/s/422", "422 Unprocessable Entity", "{\"errors\":[\"x\"]}"},
    {"/s/429", "429 Too Many Requests\r\nRetry-After: 7", ""},
    {"/s/500", "500 Internal Server Error", "oops"},
    {"/s/503", "503 Service Unavailable\r\nRetry-After: 3", ""},
};

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = suggested;
}

static void
on_peer_closed(uv_handle_t *h)
{
    struct peer *p = h->data;

    br_buf_dispose(&p->in);
    p->used = 0;
}

/* A write of a canned answer, with the text it writes. */
struct answer {
    uv_write_t w;
    char *text;
};

static void
on_written(uv_write_t *w, int status)
{
    struct answer *a = (struct answer *)w;
    struct peer *p = w->data;

    (void)status;
    free(a->text);
    free(a);
    if (!uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, on_peer_closed);
}

static void
answer(struct peer *p, const char *path)
{
    const char *head = "599 Unknown", *body = "";
    struct answer *a = br_malloc(sizeof(*a));
    uv_buf_t b;

    for (size_t i = 0; i < BR_ARRAY_SIZE(canned); i++) {
        if (strcmp(canned[i].path, path) == 0) {
            head = canned[i].head;
            body = canned[i].body;
        }
    }
    a->text = br_asprintf("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s",
                       head, strlen(body), body);
    a->w.data = p;
    b = uv_buf_init(a->text, (unsigned)strlen(a->text));
    assert_int_equal(uv_write(&a->w, (uv_stream_t *)&p->tcp, &b, 1, on_written), 0);
}

/* Answers once the head and the body (Content-Length) are in. */
static void
on_peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct peer *p = s->data;
    struct fx *fx = p->fx;

    if (n > 0 && !p->answered) {
        char *end, *cl, path[256];
        size_t want = 0;

        br_buf_append(&p->in, buf->base, (size_t)n);
        end = strstr(p->in.data, "\r\n\r\n");
        if (end != NULL) {
            if ((cl = strcasestr(p->in.data, "\r\nContent-Length:")) != NULL && cl < end)
                want = (size_t)atol(cl + 17);
            if (p->in.len >= (size_t)(end + 4 - p->in.data) + want) {
                p->answered = 1;
                fx->requests++;
                snprintf(fx->last_request, sizeof(fx->last_request), "%s", p->in.data);
                if (!fx->silent) {
                    assert_int_equal(sscanf(p->in.data, "%*s %255s", path), 1);
                    answer(p, fx->force_path ? fx->force_path : path);
                }
            }
        }
    } else if (n < 0) {
        uv_read_stop(s);
    }
    free(buf->base);
}

static void
on_connection(uv_stream_t *server, int status)
{
    struct fx *fx = server->data;
    struct peer *p = NULL;

    assert_int_equal(status, 0);
    for (int i = 0; i < MAX_PEERS && p == NULL; i++)
        if (!fx->peers[i].used)
            p = &fx->peers[i];
    assert_non_null(p);
    memset(p, 0, sizeof(*p));
    p->used = 1;
    p->fx = fx;
    p->tcp.data = p;
    br_buf_init(&p->in, 0);
    uv_tcp_init(&fx->loop, &p->tcp);
    assert_int_equal(uv_accept(server, (uv_stream_t *)&p->tcp), 0);
    uv_read_start((uv_stream_t *)&p->tcp, alloc_cb, on_peer_read);
}

/* ---- fixture ------------------------------------------------------------ */

static void
fx_init(struct fx *fx)
{
    struct sockaddr_in a;
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    memset(fx, 0, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&fx->loop, &fx->listener);
    fx->listener.data = fx;
    assert_int_equal(uv_tcp_bind(&fx->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fx->listener, 16, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&fx->listener, (struct sockaddr *)&ss, &len), 0);
    fx->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    assert_int_equal(br_http_client_new(&fx->http, &fx->loop), 0);
    /* Fast enough not to matter, one request at a time as Planfix wants. */
    assert_int_equal(br_upstream_new(&fx->up, &fx->loop, fx->http, "test", 1000, 4), 0);
}

static void
on_upstream_closed(void *arg)
{
    ((struct fx *)arg)->upstream_closed = 1;
}

static void
on_http_closed(void *arg)
{
    ((struct fx *)arg)->http_closed = 1;
}

static void
close_upstream(struct fx *fx)
{
    fx->upstream_closing = 1;
    br_upstream_close(fx->up, on_upstream_closed, fx);
}

static void
fx_free_result(struct fx *fx)
{
    free(fx->error);
    free(fx->request);
    free(fx->response);
    free(fx->id);
    json_decref(fx->items);
    fx->error = fx->request = fx->response = fx->id = NULL;
    fx->items = NULL;
}

/* The daemon's shutdown order: upstream, HTTP client, our own handles; then the loop closes. */
static void
fx_teardown(struct fx *fx)
{
    if (!fx->upstream_closing)
        close_upstream(fx);
    br_http_client_close(fx->http, on_http_closed, fx);
    for (int i = 0; i < MAX_PEERS; i++)
        if (fx->peers[i].used && !uv_is_closing((uv_handle_t *)&fx->peers[i].tcp))
            uv_close((uv_handle_t *)&fx->peers[i].tcp, on_peer_closed);
    uv_close((uv_handle_t *)&fx->listener, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(fx->upstream_closed);
    assert_true(fx->http_closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    br_upstream_free(fx->up);
    br_http_client_free(fx->http);
    fx_free_result(fx);
}

static void
on_result(void *arg, struct br_result *res)
{
    struct fx *fx = arg;

    if (fx->in_start)
        fx->during_start = 1;
    fx->calls++;
    fx_free_result(fx);
    fx->res = *res;
    /* The result's strings belong to the call: keep copies. */
    fx->error = res->error ? br_strdup(res->error) : NULL;
    fx->request = res->request ? br_strdup(res->request) : NULL;
    fx->response = res->response ? br_strdup(res->response) : NULL;
    fx->id = res->id ? br_strdup(res->id) : NULL;
    fx->items = json_incref(res->data);
    uv_stop(&fx->loop);
}

static struct br_rest_call *
new_call(struct fx *fx, const struct br_rest_api *api, long timeout_ms)
{
    char *base = br_asprintf("http://127.0.0.1:%d", fx->port);
    struct br_rest_target to = {fx->up, base, "Authorization: Test secret", timeout_ms};
    struct br_rest_call *c = br_rest_call_new(sizeof(*c), api, &to, on_result, fx);

    free(base);
    return c;
}

/* Starts c with rq, checks nothing came back inside the call, runs until the callback. */
static void
run_call(struct fx *fx, struct br_rest_call *c, const struct br_rest_req *rq, br_rest_step_fn step)
{
    fx->calls = 0;
    fx->in_start = 1;
    assert_int_equal(br_rest_start(c, rq, step), 0);
    fx->in_start = 0;
    assert_int_equal(fx->calls, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->calls, 1);
    assert_false(fx->during_start);
}

static const struct br_rest_api plain_api = {.name = "Test"};

/* ---- steps -------------------------------------------------------------- */

static void
take_id(struct br_rest_call *c, json_t *answer)
{
    const char *id = json_string_value(json_object_get(answer, "id"));

    if (id)
        c->res.id = br_strdup(id);
}

/* Pages on once, then keeps the second page's id. */
static void
next_page(struct br_rest_call *c, json_t *answer)
{
    struct br_rest_req rq = {.method = "GET", .path = "/s/200/page2"};

    (void)answer;
    assert_int_equal(br_rest_send(c, &rq, take_id), 0);
}

static void
nothing(struct br_rest_call *c, json_t *answer)
{
    assert_null(answer);
    c->res.id = br_strdup("ran");
}

/* Sets an id, then finds the upstream closing: the call ends cancelled, the id dropped. */
static void
refused_step(struct br_rest_call *c, json_t *answer)
{
    struct fx *fx = c->arg;
    struct br_rest_req rq = {.method = "GET", .path = "/s/200"};

    (void)answer;
    c->res.id = br_strdup("partial");
    close_upstream(fx);
    assert_int_equal(br_rest_send(c, &rq, take_id), BR_ECANCELED);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_status_rule(void **state)
{
    (void)state;
    assert_int_equal(br_rest_status_err(200, false), 0);
    assert_int_equal(br_rest_status_err(204, true), 0);
    assert_int_equal(br_rest_status_err(408, false), BR_ERETRY);
    assert_int_equal(br_rest_status_err(429, false), BR_ERETRY);
    assert_int_equal(br_rest_status_err(500, false), BR_ERETRY);
    assert_int_equal(br_rest_status_err(503, true), BR_ERETRY);
    assert_int_equal(br_rest_status_err(404, true), BR_ENOTFOUND);
    assert_int_equal(br_rest_status_err(404, false), BR_EFATAL);
    assert_int_equal(br_rest_status_err(400, true), BR_EFATAL);
    assert_int_equal(br_rest_status_err(401, false), BR_EFATAL);
    assert_int_equal(br_rest_status_err(422, false), BR_EFATAL);
    assert_int_equal(br_rest_status_err(302, false), BR_EFATAL);
}

static void
test_success(void **state)
{
    struct fx fx;
    struct br_rest_call *c;
    json_t *body = json_pack("{s:s}", "text", "hi");

    (void)state;
    fx_init(&fx);
    c = new_call(&fx, &plain_api, 5000);
    run_call(&fx, c, &(struct br_rest_req){.method = "POST", .path = "/s/200", .body = body}, take_id);
    assert_int_equal(fx.res.err, 0);
    assert_int_equal(fx.res.status, 200);
    assert_int_equal(fx.res.retry_after_s, -1);
    assert_string_equal(fx.id, "m1");
    assert_null(fx.error);
    assert_string_equal(fx.request, "POST /s/200 {\"text\":\"hi\"}");
    assert_string_equal(fx.response, "200 {\"id\":\"m1\",\"page\":1}");
    assert_non_null(strstr(fx.last_request, "\r\nAuthorization: Test secret\r\n"));
    assert_non_null(strstr(fx.last_request, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(fx.last_request, "\r\nAccept: application/json\r\n"));
    assert_non_null(strstr(fx.last_request, "\r\n\r\n{\"text\":\"hi\"}"));

    /* No body: no Content-Type; a redacted summary; one more header; an empty 2xx. */
    c = new_call(&fx, &plain_api, 5000);
    run_call(&fx, c,
             &(struct br_rest_req){.method = "GET", .path = "/s/204", .header = "X-Extra: 1",
                                   .summary = "GET /clients/{id}"},
             NULL);
    assert_int_equal(fx.res.err, 0);
    assert_int_equal(fx.res.status, 204);
    assert_string_equal(fx.request, "GET /clients/{id}");
    assert_null(strstr(fx.last_request, "Content-Type"));
    assert_non_null(strstr(fx.last_request, "\r\nX-Extra: 1\r\n"));
    fx_teardown(&fx);
}

static void
test_statuses(void **state)
{
    static const struct {
        const char *path;
        bool notfound_404;
        int err;
        long retry_after;
    } cases[] = {
        {"/s/408", false, BR_ERETRY, -1}, {"/s/500", false, BR_ERETRY, -1}, {"/s/503", false, BR_ERETRY, 3},
        {"/s/404", true, BR_ENOTFOUND, -1}, {"/s/404", false, BR_EFATAL, -1}, {"/s/400", true, BR_EFATAL, -1},
        {"/s/422", false, BR_EFATAL, -1},  {"/s/302", false, BR_EFATAL, -1},
        /* Last: a 429 pauses the whole upstream for its Retry-After. */
        {"/s/429", false, BR_ERETRY, 7},
    };
    struct fx fx;

    (void)state;
    fx_init(&fx);
    for (size_t i = 0; i < BR_ARRAY_SIZE(cases); i++) {
        struct br_rest_call *c = new_call(&fx, &plain_api, 5000);
        char *want = br_asprintf("Test answered HTTP %s", cases[i].path + 3);

        c->notfound_404 = cases[i].notfound_404;
        run_call(&fx, c, &(struct br_rest_req){.method = "GET", .path = cases[i].path}, take_id);
        assert_int_equal(fx.res.err, cases[i].err);
        assert_int_equal(fx.res.status, atol(cases[i].path + 3));
        assert_int_equal(fx.res.retry_after_s, cases[i].retry_after);
        assert_string_equal(fx.error, want);
        assert_non_null(fx.response);
        assert_null(fx.id); /* the step never ran */
        free(want);
    }
    fx_teardown(&fx);
}

static void
test_transport(void **state)
{
    struct fx fx;
    struct br_rest_call *c;
    struct br_rest_target to;

    (void)state;
    fx_init(&fx);
    /* Nobody listens on port 1. */
    to = (struct br_rest_target){fx.up, "http://127.0.0.1:1", NULL, 2000};
    c = br_rest_call_new(sizeof(*c), &plain_api, &to, on_result, &fx);
    run_call(&fx, c, &(struct br_rest_req){.method = "GET", .path = "/x"}, take_id);
    assert_int_equal(fx.res.err, BR_ERETRY);
    assert_int_equal(fx.res.status, 0);
    assert_null(fx.response);
    assert_non_null(fx.error);

    /* A peer that never answers: the timeout is a retry too. */
    fx.silent = 1;
    c = new_call(&fx, &plain_api, 300);
    run_call(&fx, c, &(struct br_rest_req){.method = "GET", .path = "/s/200"}, take_id);
    assert_int_equal(fx.res.err, BR_ERETRY);
    assert_non_null(strstr(fx.error, br_strerror(BR_ETIMEDOUT)));
    fx_teardown(&fx);
}

/* A check hook as a driver writes one: its words first, the status for the rest. */
static int
check(struct br_rest_call *c, const struct br_http_result *r, json_t *answer)
{
    json_t *code = json_object_get(answer, "code");

    if (json_is_integer(code)) {
        c->res.error = br_asprintf("code %d", (int)json_integer_value(code));
        c->res.max_attempts = 3;
        return BR_ERETRY;
    }
    if (r->status >= 200 && r->status < 300 && !json_is_object(answer) && r->body_len > 0) {
        c->res.error = br_strdup("not the API's answer");
        return BR_REST_BY_STATUS;
    }
    return r->status >= 200 && r->status < 300 ? 0 : BR_REST_BY_STATUS;
}

static int disposed;

static void
dispose(struct br_rest_call *c)
{
    (void)c;
    disposed++;
}

static const struct br_rest_api checked_api = {.name = "Checked", .check = check, .dispose = dispose};

static void
test_check_hook(void **state)
{
    struct fx fx;
    struct br_rest_call *c;

    (void)state;
    disposed = 0;
    fx_init(&fx);
    c = new_call(&fx, &checked_api, 5000);
    run_call(&fx, c, &(struct br_rest_req){.method = "GET", .path = "/s/200/fail"}, take_id);
    assert_int_equal(fx.res.err, BR_ERETRY);
    assert_int_equal(fx.res.max_attempts, 3);
    assert_string_equal(fx.error, "code 7");
    assert_null(fx.id);

    /* A 2xx that is not the API's: a retry, with the hook's words. */
    c = new_call(&fx, &checked_api, 5000);
    run_call(&fx, c, &(struct br_rest_req){.method = "GET", .path = "/s/200/html"}, take_id);
    assert_int_equal(fx.res.err, BR_ERETRY);
    assert_string_equal(fx.error, "not the API's answer");

    c = new_call(&fx, &checked_api, 5000);
    run_call(&fx, c, &(struct br_rest_req){.method = "GET", .path = "/s/401"}, take_id);
    assert_int_equal(fx.res.err, BR_ERETRY);
    assert_string_equal(fx.error, "Checked answered HTTP 401");
    assert_int_equal(fx.res.key_refused, 1);

    c = new_call(&fx, &checked_api, 5000);
    run_call(&fx, c, &(struct br_rest_req){.method = "GET", .path = "/s/200"}, take_id);
    assert_int_equal(fx.res.err, 0);
    assert_string_equal(fx.id, "m1");
    assert_int_equal(disposed, 4);
    fx_teardown(&fx);
}

static void
test_steps(void **state)
{
    struct fx fx;
    struct br_rest_call *c;

    (void)state;
    fx_init(&fx);
    /* A write, then a read-back: the write stays the request a dead letter shows. */
    c = new_call(&fx, &plain_api, 5000);
    run_call(&fx, c, &(struct br_rest_req){.method = "PUT", .path = "/s/200", .body = json_pack("{s:i}", "a", 1), .as = "ann"},
             next_page);
    assert_int_equal(fx.requests, 2);
    assert_int_equal(fx.res.err, 0);
    assert_string_equal(fx.id, "m2");
    assert_string_equal(fx.request, "PUT /s/200 as ann {\"a\":1}");
    assert_string_equal(fx.response, "200 {\"id\":\"m2\",\"page\":2}");

    /* Reads follow reads: the last one is shown. */
    c = new_call(&fx, &plain_api, 5000);
    run_call(&fx, c, &(struct br_rest_req){.method = "GET", .path = "/s/200"}, next_page);
    assert_string_equal(fx.request, "GET /s/200/page2 ");

    /* A call whose first step sends nothing ends from the loop. */
    c = new_call(&fx, &plain_api, 5000);
    fx.calls = 0;
    fx.in_start = 1;
    assert_int_equal(br_rest_run(c, nothing), 0);
    fx.in_start = 0;
    assert_int_equal(fx.calls, 0);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(fx.calls, 1);
    assert_int_equal(fx.res.err, 0);
    assert_string_equal(fx.id, "ran");
    fx_teardown(&fx);
}

static void
test_refused(void **state)
{
    struct fx fx;
    struct br_rest_call *c;

    (void)state;
    fx_init(&fx);
    /* A step whose next request is refused: cancelled, what it read dropped. */
    c = new_call(&fx, &plain_api, 5000);
    run_call(&fx, c, &(struct br_rest_req){.method = "GET", .path = "/s/200"}, refused_step);
    assert_int_equal(fx.res.err, BR_ECANCELED);
    assert_null(fx.id);
    assert_non_null(fx.error);

    /* The upstream is closing: the first request is refused, and that is answered later, once. */
    c = new_call(&fx, &plain_api, 5000);
    run_call(&fx, c, &(struct br_rest_req){.method = "POST", .path = "/s/200", .body = json_object()}, take_id);
    assert_int_equal(fx.res.err, BR_ECANCELED);
    assert_string_equal(fx.request, "POST /s/200 {}");
    assert_int_equal(fx.requests, 1);
    fx_teardown(&fx);
}

/* One call of test_urgent_first: its name, and where the order of ends is written. */
struct ordered {
    struct fx *fx;
    const char *name;
    char *order;       /* names of the calls that ended, in order */
    int *ended;
    uint64_t *ended_ns;
};

static void
on_ordered(void *arg, struct br_result *res)
{
    struct ordered *o = arg;

    assert_int_equal(res->err, 0);
    strcat(o->order, o->name);
    o->ended_ns[*o->ended] = uv_hrtime();
    if (++*o->ended == 5)
        uv_stop(&o->fx->loop);
}

/*
 * Calls made in the urgent scope (a reply's) leave before the normal ones
 * queued earlier, urgent among themselves in order; a later request of an
 * urgent call (a step's) is urgent too; and every request still waits its
 * turn at the upstream's rate, answer to request.
 */
static void
test_urgent_first(void **state)
{
    static const char *const names[] = {"N1 ", "N2 ", "U1 ", "N3 ", "U2 "};
    struct fx fx;
    struct ordered calls[5];
    char order[64] = "";
    int ended = 0;
    uint64_t ended_ns[5];
    char *base;
    double rps = 200;

    (void)state;
    fx_init(&fx);
    /* One request at a time (as for Planfix), so that the answers come in the order the requests left. */
    close_upstream(&fx);
    while (!fx.upstream_closed)
        uv_run(&fx.loop, UV_RUN_ONCE);
    fx.upstream_closing = fx.upstream_closed = 0;
    br_upstream_free(fx.up);
    assert_int_equal(br_upstream_new(&fx.up, &fx.loop, fx.http, "strict", rps, 1), 0);
    base = br_asprintf("http://127.0.0.1:%d", fx.port);
    assert_false(br_upstream_urgent_now());
    for (int i = 0; i < 5; i++) {
        struct br_rest_target to = {fx.up, base, NULL, 5000};
        bool urgent = names[i][0] == 'U';
        bool was = br_upstream_urgent_scope(urgent);
        struct br_rest_call *c;

        calls[i] = (struct ordered){&fx, names[i], order, &ended, ended_ns};
        c = br_rest_call_new(sizeof(*c), &plain_api, &to, on_ordered, &calls[i]);
        /* U1 reads two pages: its second request is queued only when the first is answered. */
        assert_int_equal(br_rest_start(c, &(struct br_rest_req){.method = "GET", .path = "/s/200"},
                                       i == 2 ? next_page : take_id),
                         0);
        assert_int_equal(br_upstream_urgent_scope(was), urgent);
    }
    assert_false(br_upstream_urgent_now());
    assert_int_equal(br_upstream_queued(fx.up), 5);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    /* U1's second page left before N1, behind U2, which was queued before it. */
    assert_string_equal(order, "U2 U1 N1 N2 N3 ");
    assert_int_equal(fx.requests, 6);
    /* Never faster than the rate: each answer at least one interval after the one before. */
    for (int i = 1; i < 5; i++)
        assert_true((double)(ended_ns[i] - ended_ns[i - 1]) / 1e6 >= 1000.0 / rps);
    free(base);
    fx_teardown(&fx);
}

/* Chatra's client is one more user of the layer: its 408 is a retry now, and its secrets stay out of summaries. */
static void
test_chatra(void **state)
{
    struct fx fx;
    char *base;
    struct br_channel ch = {0};
    struct br_chatra_agent agent = {.id = "agent-1"};

    (void)state;
    fx_init(&fx);
    base = br_asprintf("http://127.0.0.1:%d", fx.port);
    ch.chatra_url = base;
    ch.chatra_public_key = "pub";
    ch.chatra_secret_key = "sec";

    fx.force_path = "/s/408";
    fx.in_start = 1;
    assert_int_equal(br_chatra_send_message(fx.up, &ch, "bound-client-id", "hello", &agent, on_result, &fx), 0);
    fx.in_start = 0;
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(fx.calls, 1);
    assert_int_equal(fx.res.err, BR_ERETRY);
    assert_string_equal(fx.error, "Chatra answered HTTP 408");
    assert_string_equal(fx.request, "POST /messages/ {\"text\": 5 bytes, \"agentId\": \"agent-1\"}");
    assert_non_null(strstr(fx.last_request, "POST /messages/ HTTP/1.1\r\n"));
    assert_non_null(strstr(fx.last_request, "\r\nAuthorization: Chatra.Simple pub:sec\r\n"));
    assert_non_null(strstr(fx.last_request, "\"clientId\":\"bound-client-id\""));

    fx.force_path = "/s/404";
    assert_int_equal(br_chatra_get_client(fx.up, &ch, "bound client/id", on_result, &fx), 0);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(fx.calls, 2);
    assert_int_equal(fx.res.err, BR_ENOTFOUND);
    assert_string_equal(fx.request, "GET /clients/{id}");
    assert_non_null(strstr(fx.last_request, "GET /clients/bound%20client%2Fid HTTP/1.1\r\n"));

    fx.force_path = "/s/200";
    assert_int_equal(br_chatra_get_client(fx.up, &ch, "c1", on_result, &fx), 0);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(fx.calls, 3);
    assert_int_equal(fx.res.err, 0);
    assert_string_equal(json_string_value(json_object_get(fx.items, "id")), "m1");

    /* Shutting down: refused, answered later, once. */
    close_upstream(&fx);
    fx.in_start = 1;
    assert_int_equal(br_chatra_send_message(fx.up, &ch, "c1", "hello", &agent, on_result, &fx), 0);
    fx.in_start = 0;
    assert_int_equal(fx.calls, 3);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(fx.calls, 4);
    assert_int_equal(fx.res.err, BR_ECANCELED);
    assert_false(fx.during_start);
    fx_teardown(&fx);
    free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_rule), cmocka_unit_test(test_success), cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_transport),   cmocka_unit_test(test_check_hook), cmocka_unit_test(test_steps),
        cmocka_unit_test(test_refused),     cmocka_unit_test(test_chatra),     cmocka_unit_test(test_urgent_first),
    };

    br_log_set_level(BR_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
