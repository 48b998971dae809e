/*
 * http_client.c - libcurl multi on the libuv loop, the shape of curl's
 * docs/examples/multi-uv.c: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION, one uv_poll_t each, found again through
 * curl_multi_assign) and when to wake it (CURLMOPT_TIMERFUNCTION, one
 * uv_timer_t).  Finished transfers are collected with curl_multi_info_read
 * after every curl_multi_socket_action.
 *
 * Callbacks reach the user only from loop callbacks: completions come out
 * of poll/timer callbacks, and anything that fails before curl owns it
 * (setup errors, cancellation at close) is queued and delivered from a
 * zero-delay "defer" timer.
 */
#include "http_client.h"

#include "log.h"

#include <curl/curl.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_RESPONSE (8u * 1024 * 1024)
#define DEFAULT_TIMEOUT_MS 30000L
#define MAX_CONNECT_TIMEOUT_MS 5000L

/* One request from send to callback. */
struct xfer {
    struct br_http_client *c;
    struct xfer *prev, *next; /* in c->active, or singly in c->ready */
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    struct br_buf resp;
    long retry_after;
    long ratelimit;
    int64_t server_date;
    int too_large;
    int err;        /* set when the transfer ends outside curl (setup failure, cancel) */
    const char *msg;
    br_http_client_cb cb;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
};

/* One socket curl asked us to watch. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    int events; /* what curl last asked us to watch */
    struct br_http_client *c;
    struct sock *prev, *next;
};

struct br_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timeout; /* curl's own timeouts */
    uv_timer_t defer;   /* delivers c->ready from the loop */
    struct xfer *active;
    struct xfer *ready_head, *ready_tail;
    struct sock *socks;
    size_t inflight;
    int handles_open;
    int closing;
    int cleaning; /* inside curl_multi_cleanup */
    int closed;
    void (*done)(void *arg);
    void *done_arg;
};

static int curl_ready;

/* ---- handles -------------------------------------------------------- */

static void
on_handle_closed(uv_handle_t *h)
{
    struct br_http_client *c = h->data;

    if (h != (uv_handle_t *)&c->timeout && h != (uv_handle_t *)&c->defer)
        free(h); /* a struct sock, whose poll handle is its first member */
    if (--c->handles_open == 0 && c->closing) {
        c->closed = 1;
        if (c->done != NULL)
            c->done(c->done_arg);
    }
}

static void
sock_close(struct sock *sk)
{
    struct br_http_client *c = sk->c;

    if (sk->prev != NULL)
        sk->prev->next = sk->next;
    else
        c->socks = sk->next;
    if (sk->next != NULL)
        sk->next->prev = sk->prev;
    uv_poll_stop(&sk->poll);
    uv_close((uv_handle_t *)&sk->poll, on_handle_closed);
}

/* ---- completion ----------------------------------------------------- */

static void
xfer_free(struct xfer *x)
{
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    br_buf_dispose(&x->resp);
    free(x);
}

static void
unlink_active(struct xfer *x)
{
    struct br_http_client *c = x->c;

    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        c->active = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void
deliver(struct xfer *x, int err, long status)
{
    struct br_http_client *c = x->c;
    struct br_http_result res;

    res.err = err;
    res.status = err == 0 ? status : 0;
    res.body = err == 0 && x->resp.data != NULL ? x->resp.data : "";
    res.body_len = err == 0 ? x->resp.len : 0;
    res.retry_after_s = x->retry_after;
    res.ratelimit_remaining = x->ratelimit;
    res.server_date_s = x->server_date;
    if (x->msg != NULL)
        res.error = x->msg;
    else
        res.error = err != 0 ? x->errbuf : "";
    c->inflight--;
    x->cb(x->arg, &res);
    xfer_free(x);
}

static void
complete(struct xfer *x, CURLcode rc)
{
    struct br_http_client *c = x->c;
    long status = 0;
    int err;

    curl_multi_remove_handle(c->multi, x->easy);
    unlink_active(x);
    switch (rc) {
    case CURLE_OK:
        err = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        err = BR_ETIMEDOUT;
        break;
    default:
        err = x->too_large ? BR_ELIMIT : BR_EIO;
        if (x->too_large)
            x->msg = "response body over 8 MiB";
        break;
    }
    if (err != 0 && x->errbuf[0] == '\0' && x->msg == NULL)
        x->msg = curl_easy_strerror(rc);
    deliver(x, err, status);
}

/* Collects every finished transfer; call after each curl_multi_socket_action. */
static void
drain(struct br_http_client *c)
{
    CURLMsg *m;
    int left;

    while (c->multi != NULL && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        struct xfer *x = NULL;
        CURLcode rc = m->data.result;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x != NULL)
            complete(x, rc);
    }
}

static void
enqueue_ready(struct xfer *x, int err, const char *msg)
{
    struct br_http_client *c = x->c;

    x->err = err;
    if (x->msg == NULL)
        x->msg = msg;
    x->next = NULL;
    if (c->ready_tail != NULL)
        c->ready_tail->next = x;
    else
        c->ready_head = x;
    c->ready_tail = x;
}

static void on_defer(uv_timer_t *t);

static void
schedule_defer(struct br_http_client *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->defer))
        uv_timer_start(&c->defer, on_defer, 0, 0);
}

static void
finish_close(struct br_http_client *c)
{
    if (c->multi != NULL) {
        /* Closing the cached connections calls sock_cb with CURL_POLL_REMOVE. */
        c->cleaning = 1;
        curl_multi_cleanup(c->multi);
        c->cleaning = 0;
        c->multi = NULL;
    }
    while (c->socks != NULL)
        sock_close(c->socks);
    uv_timer_stop(&c->timeout);
    uv_close((uv_handle_t *)&c->timeout, on_handle_closed);
    uv_close((uv_handle_t *)&c->defer, on_handle_closed);
}

static void
on_defer(uv_timer_t *t)
{
    struct br_http_client *c = t->data;

    /* One at a time: a callback may queue more (or start closing). */
    while (c->ready_head != NULL) {
        struct xfer *x = c->ready_head;

        c->ready_head = x->next;
        if (c->ready_head == NULL)
            c->ready_tail = NULL;
        x->next = NULL;
        deliver(x, x->err, 0);
    }
    if (c->closing && !uv_is_closing((uv_handle_t *)&c->defer))
        finish_close(c);
}

/* ---- curl callbacks ------------------------------------------------- */

static void
on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *sk = (struct sock *)h;
    struct br_http_client *c = sk->c;
    int flags = 0, running;

    if (c->multi == NULL)
        return;
    if (status < 0) {
        /*
         * libuv turns EPOLLERR (say, a reset after the peer already sent
         * its answer, like an early 413) into UV_EBADF and stops the
         * handle.  Passing CURL_CSELECT_ERR alone would make curl give up
         * without reading what is still buffered, so let curl try the
         * socket and find the error itself, and keep watching for it.
         */
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
        uv_poll_start(&sk->poll, sk->events, on_poll);
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(c->multi, sk->fd, flags, &running);
    drain(c);
}

static void
on_timeout(uv_timer_t *t)
{
    struct br_http_client *c = t->data;
    int running;

    if (c->multi == NULL)
        return;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(c);
}

static int
sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct br_http_client *c = userp;
    struct sock *sk = socketp;
    int events = 0, rc;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL) {
            if (!c->cleaning)
                curl_multi_assign(c->multi, fd, NULL);
            sock_close(sk);
        }
        return 0;
    }
    if (sk == NULL) {
        sk = br_calloc(1, sizeof(*sk));
        rc = uv_poll_init_socket(c->loop, &sk->poll, fd);
        if (rc != 0) {
            br_error("http client: cannot watch socket %d: %s", (int)fd, uv_strerror(rc));
            free(sk);
            return -1;
        }
        sk->poll.data = c;
        sk->fd = fd;
        sk->c = c;
        sk->next = c->socks;
        if (c->socks != NULL)
            c->socks->prev = sk;
        c->socks = sk;
        c->handles_open++;
        curl_multi_assign(c->multi, fd, sk);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    sk->events = events;
    uv_poll_start(&sk->poll, events, on_poll);
    return 0;
}

/* curl asks to be woken after timeout_ms; acting on it here would re-enter curl. */
static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct br_http_client *c = userp;

    (void)multi;
    if (uv_is_closing((uv_handle_t *)&c->timeout))
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timeout);
    else
        uv_timer_start(&c->timeout, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;

    if (br_buf_append(&x->resp, p, len) != 0) {
        x->too_large = 1;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    return len;
}

static long
parse_count(const char *v)
{
    char *end;
    long n;

    if (!isdigit((unsigned char)v[0]))
        return -1;
    errno = 0;
    n = strtol(v, &end, 10);
    if (*end != '\0')
        return -1;
    return errno == ERANGE ? LONG_MAX : n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n, name_len, vlen;
    const char *colon, *v;
    char value[128];

    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new status line (after 1xx, say): forget the earlier headers. */
        x->retry_after = -1;
        x->ratelimit = -1;
        x->server_date = -1;
        return len;
    }
    colon = memchr(p, ':', len);
    if (colon == NULL)
        return len;
    name_len = (size_t)(colon - p);
    v = colon + 1;
    vlen = len - name_len - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
                        v[vlen - 1] == '\t'))
        vlen--;
    if (vlen == 0 || vlen >= sizeof(value))
        return len;
    memcpy(value, v, vlen);
    value[vlen] = '\0';

    if (name_len == 11 && strncasecmp(p, "Retry-After", 11) == 0) {
        long s = parse_count(value);

        if (s < 0) {
            /* The other allowed form is an HTTP date; turn it into a delay. */
            time_t when = curl_getdate(value, NULL);

            if (when != (time_t)-1) {
                time_t now = time(NULL);
                s = when > now ? (long)(when - now) : 0;
            }
        }
        x->retry_after = s;
    } else if (name_len == 21 && strncasecmp(p, "X-RateLimit-Remaining", 21) == 0) {
        x->ratelimit = parse_count(value);
    } else if (name_len == 4 && strncasecmp(p, "Date", 4) == 0) {
        time_t when = curl_getdate(value, NULL);
        x->server_date = when == (time_t)-1 ? -1 : (int64_t)when;
    }
    return len;
}

/* ---- public --------------------------------------------------------- */

int
br_http_client_new(struct br_http_client **out, uv_loop_t *loop)
{
    struct br_http_client *c;

    *out = NULL;
    if (loop == NULL)
        return BR_EINVAL;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            br_error("http client: curl_global_init failed");
            return BR_EIO;
        }
        curl_ready = 1;
    }
    c = br_calloc(1, sizeof(*c));
    c->loop = loop;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        br_error("http client: curl_multi_init failed");
        free(c);
        return BR_EIO;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timeout);
    c->timeout.data = c;
    uv_timer_init(loop, &c->defer);
    c->defer.data = c;
    c->handles_open = 2;
    *out = c;
    return 0;
}

static int
valid_method(const char *m)
{
    size_t i;

    for (i = 0; m[i] != '\0'; i++)
        if (!isupper((unsigned char)m[i]))
            return 0;
    return i > 0 && i < 16;
}

/* Returns the first failing setopt's code so one check covers them all. */
static CURLcode
setup(struct xfer *x, const char *method, const char *url, const char *const *headers,
      const char *body, size_t body_len, long timeout_ms)
{
    CURL *e = x->easy;
    CURLcode rc = CURLE_OK;
    size_t i;
    int is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;

#define SET(opt, val)                                   \
    do {                                                \
        CURLcode r_ = curl_easy_setopt(e, opt, val);   \
        if (rc == CURLE_OK)                             \
            rc = r_;                                    \
    } while (0)

    for (i = 0; headers != NULL && headers[i] != NULL; i++)
        x->headers = curl_slist_append(x->headers, headers[i]);
    if (body != NULL || is_post)
        /* curl would otherwise wait up to a second for "100 Continue" before big bodies. */
        x->headers = curl_slist_append(x->headers, "Expect:");

    SET(CURLOPT_URL, url);
    SET(CURLOPT_PRIVATE, (char *)x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROXY, ""); /* never a proxy from the environment */
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < MAX_CONNECT_TIMEOUT_MS ? timeout_ms : MAX_CONNECT_TIMEOUT_MS);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_USERAGENT, "chatra-bridge");
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    if (x->headers != NULL)
        SET(CURLOPT_HTTPHEADER, x->headers);

    if (is_get && body == NULL) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        /*
         * A write goes on a new connection: when a reused connection dies
         * before any answer, libcurl sends the request again by itself,
         * and a write the server had already done would be done twice.
         * On a fresh connection the lost answer is an error the caller's
         * recovery handles (it checks before writing again).
         */
        SET(CURLOPT_FRESH_CONNECT, 1L);
        if (is_post)
            SET(CURLOPT_POST, 1L);
        else
            SET(CURLOPT_CUSTOMREQUEST, method);
        if (body != NULL || is_post) {
            x->body = br_malloc(body_len + 1);
            if (body_len > 0)
                memcpy(x->body, body, body_len);
            x->body[body_len] = '\0';
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            SET(CURLOPT_POSTFIELDS, x->body);
        }
    }
#undef SET
    return rc;
}

int
br_http_client_send(struct br_http_client *c, const char *method, const char *url, const char *const *headers,
                    const char *body, size_t body_len, long timeout_ms, br_http_client_cb cb, void *arg)
{
    struct xfer *x;
    CURLcode rc;
    CURLMcode mrc;

    if (c == NULL || method == NULL || url == NULL || cb == NULL || !valid_method(method))
        return BR_EINVAL;
    if (c->closing)
        return BR_ECANCELED;
    if (timeout_ms <= 0)
        timeout_ms = DEFAULT_TIMEOUT_MS;

    x = br_calloc(1, sizeof(*x));
    x->c = c;
    x->cb = cb;
    x->arg = arg;
    x->retry_after = -1;
    x->ratelimit = -1;
    x->server_date = -1;
    br_buf_init(&x->resp, MAX_RESPONSE);
    c->inflight++;

    x->easy = curl_easy_init();
    if (x->easy == NULL) {
        enqueue_ready(x, BR_EIO, "curl_easy_init failed");
        schedule_defer(c);
        return 0;
    }
    rc = setup(x, method, url, headers, body, body_len, timeout_ms);
    if (rc != CURLE_OK) {
        enqueue_ready(x, BR_EIO, curl_easy_strerror(rc));
        schedule_defer(c);
        return 0;
    }
    /* curl only asks for a timer here; the transfer starts from the loop. */
    mrc = curl_multi_add_handle(c->multi, x->easy);
    if (mrc != CURLM_OK) {
        enqueue_ready(x, BR_EIO, curl_multi_strerror(mrc));
        schedule_defer(c);
        return 0;
    }
    x->next = c->active;
    if (c->active != NULL)
        c->active->prev = x;
    c->active = x;
    return 0;
}

size_t
br_http_client_inflight(const struct br_http_client *c)
{
    return c != NULL ? c->inflight : 0;
}

void
br_http_client_close(struct br_http_client *c, void (*done)(void *arg), void *arg)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    c->done = done;
    c->done_arg = arg;
    while (c->active != NULL) {
        struct xfer *x = c->active;

        curl_multi_remove_handle(c->multi, x->easy);
        unlink_active(x);
        enqueue_ready(x, BR_ECANCELED, "cancelled: client closing");
    }
    uv_timer_stop(&c->timeout);
    /* Callbacks and the rest of the teardown run from the loop. */
    schedule_defer(c);
}

void
br_http_client_free(struct br_http_client *c)
{
    if (c == NULL)
        return;
    if (!c->closed) {
        br_error("http client: freed before close finished; leaking it");
        return;
    }
    free(c);
}
