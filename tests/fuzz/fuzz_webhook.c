/*
 * fuzz_webhook.c - libFuzzer target for the inbound webhooks.
 *
 * Every input goes to the Chatra event parser (bridge/chatra_event.h).
 * It then goes through the route table in-process (br_handlers_dispatch)
 * with a config loaded once from a temporary file and a store on
 * ":memory:", the same way tests/unit/test_handlers.c does it:
 *
 *   - an input that starts with '/' is a request: its first line is the
 *     path (with an optional ?query), the rest is the body; it is sent
 *     as POST and as GET, so the route matcher and every route see it;
 *   - any other input is a body, POSTed to the Chatra webhook of channel
 *     "shop" and to the Planfix webhook, both with the right secret.
 *
 * Whatever the handlers commit to the inbox is read back and marked
 * done after each input, and the in-memory store is reopened every 1024
 * inputs so that it does not grow.  Oracles beyond the sanitizers:
 * a parsed event has the documented shape, and every answer has a known
 * status and a JSON body (GET /metrics: the Prometheus text format).  BR_FUZZ_VERBOSE in the environment prints
 * every answer.
 *
 * Built with -fsanitize=fuzzer as fuzz_webhook, and with
 * tests/fuzz/replay_main.c as replay_webhook (CTest: fuzz.replay_webhook).
 */
#include "bridge/config.h"
#include "bridge/log.h"
#include "bridge/store.h"
#include "bridge/chatra_event.h"
#include "handlers/handlers.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHOP_SECRET "fuzzShopSecret-0123456789"
#define PLANFIX_SECRET "fuzzPlanfixSecret-0123456789"

static const char config_text[] =
    "{\"store\": {\"path\": \":memory:\"},\n"
    " \"log\": {\"level\": \"error\"},\n"
    " \"tracker\": {\"kind\": \"planfix\", \"url\": \"https://pf.example.com/rest\",\n"
    "             \"token\": \"fuzzTokenToken\", \"webhook_secret\": \"" PLANFIX_SECRET "\"},\n"
    " \"channels\": [\n"
    "   {\"name\": \"shop\", \"webhook_secret\": \"" SHOP_SECRET "\",\n"
    "    \"chatra\": {\"public_key\": \"pub\", \"secret_key\": \"sec\"},\n"
    "    \"default_agent_id\": \"A\", \"close_on_leave\": false}]}\n";

static struct br_config *cfg;
static struct br_store *store;
static struct br_handler_ctx hctx;
static unsigned long runs;

static void
die(const char *what)
{
    fprintf(stderr, "fuzz_webhook: %s\n", what);
    abort();
}

static void
teardown(void)
{
    br_handlers_dispose(&hctx);
    br_store_free(store);
    br_config_free(cfg);
    br_log_clear_secrets();
    store = NULL;
    cfg = NULL;
}

static void
setup(void)
{
    char dir[] = "/tmp/br-fuzz-webhook-XXXXXX";
    struct br_diag diag = {0};
    char *path;
    FILE *fp;

    /* Deterministic hash order: the same input takes the same path. */
    json_object_seed(1);
    br_log_set_level(BR_LOG_ERROR);
    if (mkdtemp(dir) == NULL)
        die("mkdtemp failed");
    path = br_asprintf("%s/bridge.json", dir);
    if ((fp = fopen(path, "w")) == NULL)
        die("cannot write the config");
    fputs(config_text, fp);
    fclose(fp);
    if (br_config_load(path, &cfg, &diag) != 0) {
        for (size_t i = 0; i < diag.n; i++)
            fprintf(stderr, "%s\n", diag.items[i]);
        die("the fuzz config does not load");
    }
    br_diag_dispose(&diag);
    unlink(path);
    rmdir(dir);
    free(path);
    if (br_store_open(&store, ":memory:") != 0)
        die("cannot open the store");
    hctx.cfg = cfg;
    hctx.store = store;
    hctx.engine = NULL;
    atexit(teardown);
}

static void
check_event(const json_t *ev)
{
    const json_t *msgs, *m;
    const char *kind;
    size_t i;

    if (!json_is_object(ev) || !json_is_string(json_object_get(ev, "event")))
        die("parsed event without an event name");
    kind = json_string_value(json_object_get(ev, "event"));
    if (strcmp(kind, "started") && strcmp(kind, "fragment") && strcmp(kind, "transcript"))
        die("parsed event of an unknown kind");
    if (!json_is_string(json_object_get(json_object_get(ev, "client"), "id")))
        die("parsed event without client.id");
    msgs = json_object_get(ev, "messages");
    if (!json_is_array(msgs))
        die("parsed event without a messages list");
    json_array_foreach(msgs, i, m) {
        const json_t *type = json_object_get(m, "type");
        if (!json_is_string(json_object_get(m, "key")) || !json_is_string(json_object_get(m, "text")) ||
            json_string_length(json_object_get(m, "text")) == 0 || !json_is_string(type) ||
            (strcmp(json_string_value(type), "client") && strcmp(json_string_value(type), "agent")))
            die("parsed message without key, text or a client/agent type");
    }
}

static void
drain_inbox(void)
{
    struct br_inbox_row row;

    while (br_store_inbox_next(store, &row) == 0) {
        json_error_t je;
        json_t *o = json_loads(row.body, 0, &je);
        if (!json_is_object(o))
            die("the inbox holds something that is not a JSON object");
        json_decref(o);
        if (br_store_inbox_done(store, row.id) != 0)
            die("cannot mark an inbox row done");
        br_inbox_row_dispose(&row);
    }
}

static void
dispatch(const char *method, const char *path, const char *query, const char *content_type,
         const char *body, size_t body_len)
{
    struct br_http_request req = {
        .method = method,
        .path = path,
        .query = query,
        .content_type = content_type,
        .remote_addr = "127.0.0.1",
        .body = body,
        .body_len = body_len,
    };
    struct br_http_response res;
    json_error_t je;
    json_t *o;

    res.status = 200;
    res.content_type = "application/json";
    res.after_flush = 0;
    br_buf_init(&res.body, 0);
    br_buf_init(&res.headers, 0);
    br_handlers_dispatch(&hctx, &req, &res);
    if (getenv("BR_FUZZ_VERBOSE"))
        fprintf(stderr, "  %s %s?%s -> %d %s\n", method, path, query, res.status, res.body.data ? res.body.data : "");
    switch (res.status) {
    case 200: case 400: case 401: case 404: case 405: case 503:
        break;
    default:
        die("unexpected HTTP status");
    }
    if (strncmp(res.content_type, "text/plain", 10) == 0) {
        /* /metrics: lines of "# HELP", "# TYPE" and samples, each ending in a line break. */
        if (strncmp(path, "/metrics", 8) != 0 || res.body.len == 0 || res.body.data[res.body.len - 1] != '\n')
            die("a text answer that is not /metrics");
    } else {
        o = json_loadb(res.body.data ? res.body.data : "", res.body.len, 0, &je);
        if (o == NULL)
            die("the answer is not JSON");
        json_decref(o);
    }
    br_buf_dispose(&res.body);
    br_buf_dispose(&res.headers);
    drain_inbox();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Requests reach the handlers NUL-terminated (see http_server.h). */
    char *buf = br_strndup(size ? (const char *)data : "", size);
    char err[200];
    struct br_chatra_event ev;
    int rc;

    if (cfg == NULL)
        setup();
    /* Handled inbox rows stay in the table: start afresh now and then. */
    if (++runs % 1024 == 0) {
        br_store_free(store);
        if (br_store_open(&store, ":memory:") != 0)
            die("cannot reopen the store");
        hctx.store = store;
    }

    rc = br_chatra_event_parse(buf, size, &ev, err, sizeof(err));
    if (rc == 0) {
        /* The record the inbox keeps reads back as the same event. */
        struct br_chatra_event again;
        char *text = br_chatra_event_dump(&ev), *text2;
        json_error_t je;
        json_t *rec = text ? json_loads(text, 0, &je) : NULL;
        if (rec == NULL)
            die("the parsed event does not serialise");
        check_event(rec);
        if (br_chatra_event_load(text, &again) != 0)
            die("the event's record does not load");
        text2 = br_chatra_event_dump(&again);
        {
            /* The client's bytes taken from the body and the object written out are the same JSON. */
            json_t *rec2 = json_loads(text2, 0, &je);
            if (rec2 == NULL || !json_equal(rec, rec2))
                die("the event's record does not load as the same event");
            json_decref(rec2);
        }
        if (!json_equal(br_chatra_event_visitor(&ev), br_chatra_event_visitor(&again)) || !json_equal(ev.raw_client, again.raw_client))
            die("the event's visitor does not read back the same");
        free(text);
        free(text2);
        json_decref(rec);
        br_chatra_event_dispose(&again);
        br_chatra_event_dispose(&ev);
    } else if (rc != BR_EINVAL && rc != BR_ENOTFOUND) {
        die("unexpected error code from br_chatra_event_parse");
    } else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        die("a failed parse gave no reason");
    }

    if (size > 0 && buf[0] == '/') {
        /* "/path?query\nbody": the path line must be a C string, as lws gives it. */
        char *nl = memchr(buf, '\n', size);
        size_t line_len = nl ? (size_t)(nl - buf) : size;
        char *line = br_strndup(buf, line_len);
        const char *body = nl ? nl + 1 : buf + size;
        size_t body_len = nl ? size - line_len - 1 : 0;
        char *q = strchr(line, '?');
        const char *query = "";
        if (q) {
            *q = '\0';
            query = q + 1;
        }
        dispatch("POST", line, query,
                 body_len && body[0] == '{' ? "application/json" : "application/x-www-form-urlencoded",
                 body, body_len);
        dispatch("GET", line, query, "", body, body_len);
        free(line);
    } else {
        dispatch("POST", "/webhooks/chatra/shop/" SHOP_SECRET, "", "application/json", buf, size);
        dispatch("POST", "/webhooks/planfix/" PLANFIX_SECRET, "", "", buf, size);
    }
    free(buf);
    return 0;
}
