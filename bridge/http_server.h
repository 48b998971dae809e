/*
 * http_server.h - the inbound HTTP/1.1 server (webhooks, health checks),
 * built on libwebsockets running on the daemon's own libuv loop.
 *
 * Everything happens on the loop thread.  The server owns its listening
 * socket and every connection; the handler sees one complete request at a
 * time and fills in the response before returning.  Strings in a request
 * are owned by the server and valid only during the handler call.
 *
 * Shutdown: br_http_server_close() stops accepting, drops every connection
 * and tears libwebsockets down in the two steps lws 4.1 needs on a foreign
 * loop; done(arg) runs from the loop once nothing of the server is left on
 * it.  Only then call br_http_server_free().  The loop must keep running
 * until done fires, after which uv_loop_close() can succeed once the
 * caller's own handles are closed too.
 */
#ifndef BR_HTTP_SERVER_H
#define BR_HTTP_SERVER_H

#include "br.h"

#include <stdbool.h>
#include <uv.h>

struct br_cidr;

struct br_http_request {
    const char *method;       /* "GET", "POST", ... */
    /*
     * URI path without query string, percent-decoding NOT applied.  lws
     * decodes the request line itself, so the server re-encodes what lws
     * gives it: decoding path or query yields exactly what the client
     * meant, although the bytes may differ from the wire (e.g. "+" in a
     * query arrives as "%20").
     */
    const char *path;
    const char *query;        /* query string without '?', "" when none */
    const char *content_type; /* "" when absent */
    const char *authorization; /* the Authorization header, "" when absent */
    /*
     * The client's IP as text: the TCP peer's, or behind a trusted proxy
     * (opts.trusted_proxies) the one its X-Forwarded-For or Forwarded
     * header names (forwarded.h).
     */
    const char *remote_addr;
    const char *body;         /* complete body, NUL-terminated for convenience */
    size_t body_len;
    /* More headers, for the admin page; "" when absent (NULL from callers that build a request by hand). */
    const char *cookie;
    const char *origin;
    const char *host;
    const char *csrf_token;      /* X-CSRF-Token */
    const char *forwarded_proto; /* X-Forwarded-Proto, read only from a trusted proxy */
};

struct br_http_response {
    int status;               /* default 200 */
    const char *content_type; /* default "application/json"; must outlive the handler call */
    struct br_buf body;       /* handler appends */
    /*
     * Set by a handler whose answer holds only once opts.flush has
     * succeeded (its data is queued for one commit with the others of
     * the same loop turn): the answer is written after the flush, or
     * replaced by a 503 when the flush fails.
     */
    int after_flush;
    /*
     * Header lines of the handler's, written after the server's own
     * (br_http_response_header adds one).  The owner initialises it as
     * it does body.
     */
    struct br_buf headers;
};

/* Adds "name: value" to res; a name or value that would break the header block is dropped (and logged). */
void br_http_response_header(struct br_http_response *res, const char *name, const char *value);

/* Called once per complete request, synchronously on the loop thread; must fill res before returning. */
typedef void (*br_http_handler_fn)(void *ctx, const struct br_http_request *req, struct br_http_response *res);

struct br_http_server_opts {
    const char *host;                  /* IPv4 or IPv6 literal, or "localhost" */
    int port;                          /* 0 = pick a free port; read it back with br_http_server_port */
    size_t max_body;                   /* bytes (0 = 1 MiB); larger bodies answered 413 by the server itself without calling handler */
    unsigned request_timeout_s;        /* slow clients dropped (lws timeouts), default (0) 10 */
    br_http_handler_fn handler;
    void *ctx;
    /*
     * Called once per loop turn, after the turn's requests were handled,
     * when any answer waits for it (after_flush); 0 when what the handlers
     * queued is stored.  NULL: after_flush answers are written at once.
     */
    int (*flush)(void *ctx);
    /*
     * Optional: told of each request the server refused by itself (413
     * body too large, 400 malformed chunked body), after the answer is
     * made; req->body is empty.
     */
    void (*refused)(void *ctx, const struct br_http_request *req, int status);
    /*
     * Peers whose forwarding headers are believed (borrowed: until the
     * server is freed or br_http_server_set_trusted_proxies replaces them).
     */
    const struct br_cidr *trusted_proxies;
    size_t n_trusted_proxies;
    /*
     * Optional WebSockets (http_ws.c): an upgrade of a GET of ws_path with
     * the subprotocol ws_protocol is asked to ws_accept (with the
     * request's headers, no body) before it completes; true lets it in,
     * with a tag (0: none) by which br_http_server_ws_drop can end it
     * later (a logout).  Anything else asking for an upgrade is refused.
     * The server only sends (br_http_server_ws_send); what clients send
     * is dropped.
     */
    const char *ws_path;
    const char *ws_protocol;
    bool (*ws_accept)(void *ctx, const struct br_http_request *req, uint64_t *tag);
};

struct br_http_server;

/* BR_EINVAL for bad options, BR_EIO when the address cannot be bound. */
int br_http_server_new(struct br_http_server **out, uv_loop_t *loop, const struct br_http_server_opts *opts);
int br_http_server_port(const struct br_http_server *s);
/* A new body limit (a reload; 0 = 1 MiB): requests that have started keep the one they started with. */
void br_http_server_set_max_body(struct br_http_server *s, size_t max_body);
/* New trusted proxies (a reload; borrowed as in the options): read as each request begins. */
void br_http_server_set_trusted_proxies(struct br_http_server *s, const struct br_cidr *list, size_t n);
/* Stops listening and closes connections; done(arg) is called from the loop once all lws handles are closed (never synchronously); then free with br_http_server_free. */
void br_http_server_close(struct br_http_server *s, void (*done)(void *arg), void *arg);
void br_http_server_free(struct br_http_server *s);

/*
 * A text message to every open WebSocket.  Each client keeps at most a
 * few unsent messages: one that cannot keep up is disconnected (it
 * reconnects and fetches afresh).
 */
void br_http_server_ws_send(struct br_http_server *s, const char *text, size_t len);
/* WebSockets open now. */
size_t br_http_server_ws_clients(const struct br_http_server *s);
/* Ends the WebSockets let in with tag (not 0), soon (from the loop). */
void br_http_server_ws_drop(struct br_http_server *s, uint64_t tag);

#endif
