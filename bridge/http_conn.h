/*
 * http_conn.h - what the HTTP server's files share: the server and its
 * connections, and the calls between reading a request (http_request.c),
 * answering it (http_conn.c), the lws callback, listening and shutdown
 * (http_server.c), and WebSockets (http_ws.c).  Internal to the server:
 * everything else uses http_server.h.  Loop thread only.
 */
#ifndef BR_HTTP_CONN_H
#define BR_HTTP_CONN_H

#include "http_server.h"

#include <libwebsockets.h>

/* Where the chunked-body decoder is within the stream. */
enum chunk_state { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_DONE, CH_BAD };

/* The request headers beyond the path and the body (owned; NULL when absent). */
struct br_http_extra {
    char *authorization, *cookie, *origin, *host, *csrf_token;
    char forwarded_proto[8]; /* "http" or "https" from a trusted proxy, else "" */
};

/* Where the server is in its life: serving, shutting down (br_http_server_close), gone. */
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
    struct br_http_extra extra;
    struct br_buf body;
    size_t max_body; /* the server's limit when the request began (a reload changes the server's) */
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
    char *out_headers;         /* the handler's header lines, or NULL */
    /* An answer waiting for the flush (after_flush), on the server's waiting list. */
    int waiting;
    unsigned wturn; /* the flush turn it waits for */
    int ready;      /* flushed: written from the next LWS_CALLBACK_HTTP_WRITEABLE */
    struct conn *wprev, *wnext;
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
    uv_check_t destroy_check;  /* shutdown: lws's first destroy, right before the turn's close callbacks */
    int handles_open;
    struct conn *waiting;      /* answers waiting for the flush */
    unsigned turn;             /* flushes so far */

    struct lws_context *ctx;
    struct lws_context *ctx_alive; /* lws writes NULL here once the context is freed */
    struct lws_vhost *vh;
    struct lws_protocols protocols[3];

    struct conn *conns;
    int live_wsi; /* connections lws has created and not yet freed */
    struct ws_client *ws_clients; /* open WebSockets (http_ws.c) */
    size_t n_ws;

    int destroy_started;
    int quiet_ticks;
    int ticks;
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- http_conn.c: a connection's state and its answer ---- */

/* Frees what br_http_read_headers copied (http_request.c). */
void br_http_extra_dispose(struct br_http_extra *x);
/* A connection lws has just handed over, on the server's list. */
struct conn *br_http_conn_new(struct br_http_server *s, struct lws *wsi);
/* Off the server's lists and freed. */
void br_http_conn_free(struct conn *c);
/* Forgets the request and the answer: ready for the connection's next request. */
void br_http_conn_reset(struct conn *c);
/* Runs the handler on the complete request (or answers 400/413 itself); -1 when lws must close. */
int br_http_respond(struct conn *c);
/* Writes the answer in c; -1 when lws must close. */
int br_http_send_response(struct conn *c);
/* From LWS_CALLBACK_HTTP_WRITEABLE: the next part of the body; -1 when lws must close. */
int br_http_write_body(struct conn *c);
/* The uv_check callback: one flush for the answers waiting for it, then those answers. */
void br_http_flush_waiting(uv_check_t *h);

/* ---- http_request.c: reading a request ---- */

/* LWS_CALLBACK_HTTP: a request's headers; answers at once when no body follows. */
int br_http_begin_request(struct br_http_server *s, struct conn *c, struct lws *wsi, const char *in, size_t len);
/* Keeps n more bytes of the body, up to the limit. */
void br_http_take_body(struct conn *c, const char *p, size_t n);
/* Whether an oversized body has been read long enough. */
int br_http_drained_enough(const struct conn *c);
/* Decodes part of a chunked body into the request's; 1 once it has ended (or is malformed). */
int br_http_dechunk(struct conn *c, const char *p, size_t n);
/* The client's address into remote (see http_server.h) and the other headers into x (br_http_extra_dispose). */
void br_http_read_headers(struct br_http_server *s, struct lws *wsi, char remote[64], struct br_http_extra *x);
/* A header of br_http_extra as handlers get it: "" when absent. */
static inline const char *
br_http_or_empty(const char *s)
{
    return s != NULL ? s : "";
}
/* Writes the handler's header lines (see br_http_response_header) into an answer's headers; -1 when no room. */
int br_http_add_headers(struct lws *wsi, const char *lines, unsigned char **p, unsigned char *end);

/* ---- http_ws.c: WebSockets ---- */

/* The lws protocol of the server's WebSockets (opts.ws_protocol), set up in protocols[1]. */
void br_http_ws_protocol(struct br_http_server *s, struct lws_protocols *p);
/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE on the HTTP protocol: 0 lets the upgrade go on, -1 hangs up. */
int br_http_ws_confirm(struct br_http_server *s, struct lws *wsi, const char *to);
/* At the end of shutdown: the clients lws never reported closed. */
void br_http_ws_free_all(struct br_http_server *s);

#endif
