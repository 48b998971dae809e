/*
 * test_handlers.c - the inbound routes, in-process: a config loaded from a
 * temporary file, a store on a temporary file, no engine, hand-made
 * requests.  Every answer is checked (status, content type, exact body)
 * together with what was, or was not, committed to the inbox.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bridge/chatra_event.h"
#include "bridge/config.h"
#include "bridge/log.h"
#include "bridge/metrics.h"
#include "bridge/store.h"
#include "handlers/handlers.h"
#include "support/tmpdir.h"
#include "support/limit_files.h"

#include <sqlite3.h>

#define SHOP_SECRET "shopHookSecret_abcdef123"
#define SUPPORT_SECRET "supportHookSecret-98765"
#define PLANFIX_SECRET "pfHookSecret0123456789"

static const char config_text[] =
    "{'store': {'path': 'bridge.db'},\n"
    " 'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
    "             'token': 'tokenTokenToken', 'webhook_secret': '" PLANFIX_SECRET "'},\n"
    " 'channels': [\n"
    "   {'name': 'shop', 'webhook_secret': '" SHOP_SECRET "',\n"
    "    'chatra': {'public_key': 'pub', 'secret_key': 'sec'},\n"
    "    'default_agent_id': 'A', 'close_on_leave': false},\n"
    "   {'name': 'support', 'webhook_secret': '" SUPPORT_SECRET "',\n"
    "    'chatra': {'public_key': 'pub', 'secret_key': 'sec'},\n"
    "    'default_agent_id': 'A', 'close_on_leave': false}]}\n";

struct fx {
    char dir[64];
    struct br_config *cfg;
    struct br_store *store;
    struct br_handler_ctx ctx;
    struct br_http_response res;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct br_diag diag = {0};
    char *path, *text;
    FILE *fp;

    assert_non_null(f);
    strcpy(f->dir, "/tmp/br-test-handlers-XXXXXX");
    assert_non_null(mkdtemp(f->dir));

    path = br_asprintf("%s/bridge.json", f->dir);
    text = br_strdup(config_text);
    for (char *p = text; *p; p++)
        if (*p == '\'')
            *p = '"';
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    free(text);
    if (br_config_load(path, &f->cfg, &diag) != 0) {
        for (size_t i = 0; i < diag.n; i++)
            print_message("%s\n", diag.items[i]);
        fail_msg("test config does not load");
    }
    br_diag_dispose(&diag);
    free(path);

    assert_int_equal(br_store_open(&f->store, f->cfg->store_path), 0);
    f->ctx.cfg = f->cfg;
    f->ctx.store = f->store;
    f->ctx.engine = NULL;
    br_buf_init(&f->res.body, 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    br_handlers_dispose(&f->ctx);
    br_metrics_reset();
    br_buf_dispose(&f->res.body);
    br_store_free(f->store);
    br_config_free(f->cfg);
    br_log_clear_secrets();
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* Sends one request through the route table; the answer is in f->res. */
static void
call(struct fx *f, const char *method, const char *path, const char *query, const char *content_type,
     const char *body, size_t body_len)
{
    struct br_http_request req = {
        .method = method,
        .path = path,
        .query = query ? query : "",
        .content_type = content_type ? content_type : "",
        .remote_addr = "127.0.0.1",
        .body = body ? body : "",
        .body_len = body ? body_len : 0,
    };

    br_buf_dispose(&f->res.body);
    br_buf_init(&f->res.body, 0);
    f->res.status = 200;
    f->res.content_type = "application/json";
    f->res.after_flush = 0;
    br_handlers_dispatch(&f->ctx, &req, &f->res);
    /* What the HTTP server does at the end of the loop turn. */
    if (f->res.after_flush && br_handlers_flush(&f->ctx) != 0) {
        f->res.status = 503;
        br_buf_reset(&f->res.body);
    }
}

/* GET path with an Authorization header (NULL: none). */
static void
get_auth(struct fx *f, const char *path, const char *authorization)
{
    struct br_http_request req = {
        .method = "GET", .path = path, .query = "", .content_type = "",
        .authorization = authorization ? authorization : "", .remote_addr = "127.0.0.1", .body = "",
    };

    br_buf_dispose(&f->res.body);
    br_buf_init(&f->res.body, 0);
    f->res.status = 200;
    f->res.content_type = "application/json";
    f->res.after_flush = 0;
    br_handlers_dispatch(&f->ctx, &req, &f->res);
}

/* Whether GET /metrics (without a token) shows this line. */
static bool
metrics_show(struct fx *f, const char *line)
{
    get_auth(f, "/metrics", NULL);
    assert_int_equal(f->res.status, 200);
    return strstr(f->res.body.data, line) != NULL;
}

static void
post(struct fx *f, const char *path, const char *content_type, const char *body)
{
    call(f, "POST", path, "", content_type, body, strlen(body));
}

static void
expect_answer(struct fx *f, int status, const char *body)
{
    const char *got = f->res.body.data ? f->res.body.data : "";
    if (f->res.status != status || strcmp(got, body) != 0)
        fail_msg("got %d %s, want %d %s", f->res.status, got, status, body);
    assert_string_equal(f->res.content_type, "application/json");
}

static char *
slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    struct br_buf b;
    char chunk[4096];
    size_t n;

    if (fp == NULL)
        fail_msg("cannot read %s", path);
    br_buf_init(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        assert_int_equal(br_buf_append(&b, chunk, n), 0);
    fclose(fp);
    return br_buf_steal(&b);
}

/* A Chatra sample webhook, in tests/data/chatra. */
static char *
sample_path(const char *name)
{
    const char *src = getenv("BR_SOURCE_DIR");
    return br_asprintf("%s/tests/data/chatra/%s", src && *src ? src : BR_TEST_SOURCE_DIR, name);
}

static json_t *
expected_event(const char *name)
{
    const char *src = getenv("BR_SOURCE_DIR");
    char *p = br_asprintf("%s/tests/data/chatra/%s", src && *src ? src : BR_TEST_SOURCE_DIR, name);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (j == NULL)
        fail_msg("%s:%d:%d: %s", p, je.line, je.column, je.text);
    free(p);
    return j;
}

/*
 * Takes the oldest pending inbox row, checks kind and channel, returns its
 * body parsed: a Chatra webhook is stored as the bridge's record of the
 * event, parsed once at the door (chatra_event.h).
 */
static json_t *
take_inbox(struct fx *f, int kind, const char *channel)
{
    struct br_inbox_row r = {0};
    json_error_t je;
    json_t *j;

    assert_int_equal(br_store_inbox_next(f->store, &r), 0);
    assert_int_equal(r.kind, kind);
    assert_string_equal(r.channel, channel);
    j = json_loads(r.body, 0, &je);
    if (j == NULL)
        fail_msg("inbox body is not JSON: %s", r.body);
    assert_int_equal(br_store_inbox_done(f->store, r.id), 0);
    br_inbox_row_dispose(&r);
    return j;
}

/* ---- Chatra webhook ---------------------------------------------------------- */

static void
test_chatra_samples_are_stored(void **state)
{
    static const char *const samples[] = {"chat-started", "chat-fragment-agent-and-system", "chat-transcript",
                                          "fragment-without-event-name"};
    struct fx *f = *state;

    for (size_t i = 0; i < BR_ARRAY_SIZE(samples); i++) {
        char *file = br_asprintf("%s.json", samples[i]);
        char *path = sample_path(file);
        char *body = slurp(path);
        char *want_file = br_asprintf("%s.expected.json", samples[i]);
        json_t *want = expected_event(want_file);
        json_t *got;

        post(f, "/webhooks/chatra/shop/" SHOP_SECRET, "application/json", body);
        expect_answer(f, 200, "{\"ok\":true}");
        assert_int_equal(br_store_inbox_pending(f->store), 1);
        got = take_inbox(f, BR_INBOX_CHATRA, "shop");
        /* The stored record leaves the visitor's record out: it is made from raw_client when read. */
        json_object_del(want, "visitor");
        if (!json_equal(got, want)) {
            char *g = json_dumps(got, JSON_SORT_KEYS);
            fail_msg("%s: stored %s", samples[i], g);
        }
        assert_int_equal(br_store_inbox_pending(f->store), 0);
        json_decref(got);
        json_decref(want);
        free(want_file);
        free(body);
        free(path);
        free(file);
    }

    /* The other channel stores under its own name; a trailing slash is forgiven. */
    post(f, "/webhooks/chatra/support/" SUPPORT_SECRET "/", "application/json",
         "{\"client\":{\"id\":\"c\"},\"messages\":[{\"id\":\"m\",\"text\":\"hi\"}]}");
    expect_answer(f, 200, "{\"ok\":true}");
    {
        json_t *got = take_inbox(f, BR_INBOX_CHATRA, "support");
        assert_string_equal(json_string_value(json_object_get(got, "event")), "fragment");
        json_decref(got);
    }
}

static void
test_chatra_wrong_secret(void **state)
{
    static const char *const paths[] = {
        "/webhooks/chatra/shop/wrongSecret_abcdef123",
        "/webhooks/chatra/shop/shopHookSecret_abcdef12",   /* a prefix */
        "/webhooks/chatra/shop/shopHookSecret_abcdef1234", /* longer */
        "/webhooks/chatra/shop/SHOPHOOKSECRET_ABCDEF123",  /* case matters */
        "/webhooks/chatra/shop/" SUPPORT_SECRET,            /* another channel's */
        "/webhooks/chatra/support/" SHOP_SECRET,
    };
    struct fx *f = *state;

    for (size_t i = 0; i < BR_ARRAY_SIZE(paths); i++) {
        post(f, paths[i], "application/json", "{\"client\":{\"id\":\"c\"}}");
        expect_answer(f, 401, "{\"error\":\"wrong webhook secret\"}");
    }
    assert_int_equal(br_store_inbox_pending(f->store), 0);
}

static void
test_chatra_unknown_channel(void **state)
{
    struct fx *f = *state;

    post(f, "/webhooks/chatra/nope/" SHOP_SECRET, "application/json", "{\"client\":{\"id\":\"c\"}}");
    expect_answer(f, 404, "{\"error\":\"unknown channel\"}");
    post(f, "/webhooks/chatra/Shop/" SHOP_SECRET, "application/json", "{\"client\":{\"id\":\"c\"}}");
    expect_answer(f, 404, "{\"error\":\"unknown channel\"}");
    assert_int_equal(br_store_inbox_pending(f->store), 0);
}

static void
test_chatra_malformed_json(void **state)
{
    struct fx *f = *state;
    json_t *j;
    json_error_t je;

    post(f, "/webhooks/chatra/shop/" SHOP_SECRET, "application/json", "{\"client\":\n{\"id\":");
    expect_answer(f, 400, "{\"error\":\"malformed JSON at line 2 column 6: unexpected token near end of file\"}");
    assert_null(strchr(f->res.body.data, '\n'));
    j = json_loads(f->res.body.data, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 1);
    json_decref(j);

    /* Valid JSON of the wrong shape is a 400 too, with the reason. */
    post(f, "/webhooks/chatra/shop/" SHOP_SECRET, "application/json", "{\"client\":{\"id\":\"\"}}");
    expect_answer(f, 400, "{\"error\":\"client.id must be a non-empty string\"}");
    post(f, "/webhooks/chatra/shop/" SHOP_SECRET, "application/json", "");
    expect_answer(f, 400, "{\"error\":\"malformed JSON at line 1 column 0: '[' or '{' expected near end of file\"}");
    assert_int_equal(br_store_inbox_pending(f->store), 0);
}

static void
test_chatra_unknown_event(void **state)
{
    struct fx *f = *state;

    post(f, "/webhooks/chatra/shop/" SHOP_SECRET, "application/json",
         "{\"eventName\":\"chatRated\",\"client\":{\"id\":\"c\"}}");
    expect_answer(f, 200, "{\"ok\":true}");
    assert_int_equal(br_store_inbox_pending(f->store), 0);
}

/* ---- routing ------------------------------------------------------------------ */

static void
test_routing(void **state)
{
    struct fx *f = *state;

    call(f, "GET", "/webhooks/chatra/shop/" SHOP_SECRET, "", "", NULL, 0);
    expect_answer(f, 405, "{\"error\":\"method not allowed\"}");
    call(f, "PUT", "/webhooks/planfix/" PLANFIX_SECRET, "task=1", "", NULL, 0);
    expect_answer(f, 405, "{\"error\":\"method not allowed\"}");
    post(f, "/healthz", "", "");
    expect_answer(f, 405, "{\"error\":\"method not allowed\"}");

    call(f, "GET", "/", "", "", NULL, 0);
    expect_answer(f, 404, "{\"error\":\"no such endpoint\"}");
    call(f, "GET", "/nope", "", "", NULL, 0);
    expect_answer(f, 404, "{\"error\":\"no such endpoint\"}");
    post(f, "/webhooks/chatra/shop/" SHOP_SECRET "/extra", "application/json", "{}");
    expect_answer(f, 404, "{\"error\":\"no such endpoint\"}");
    post(f, "/webhooks/chatra", "application/json", "{}");
    expect_answer(f, 404, "{\"error\":\"no such endpoint\"}");
    call(f, "GET", "/healthzz", "", "", NULL, 0);
    expect_answer(f, 404, "{\"error\":\"no such endpoint\"}");
    assert_int_equal(br_store_inbox_pending(f->store), 0);
}

static void
test_health(void **state)
{
    struct fx *f = *state;

    call(f, "GET", "/healthz", "", "", NULL, 0);
    expect_answer(f, 200, "{\"status\":\"ok\",\"store\":{\"writable\":true}}");
    call(f, "GET", "/healthz/", "", "", NULL, 0);
    expect_answer(f, 200, "{\"status\":\"ok\",\"store\":{\"writable\":true}}");
}


/* While the store refuses writes: webhooks get 503, and /healthz says what is wrong (503 too). */
static void
test_health_when_writes_fail(void **state)
{
    struct fx *f = *state;
    const char *body = "{\"eventName\":\"chatFragment\",\"client\":{\"id\":\"c1\"},"
                       "\"messages\":[{\"id\":\"m1\",\"type\":\"client\",\"text\":\"hi\"}]}";
    json_t *got, *store;

    limit_files(f->cfg->store_path, true);
    post(f, "/webhooks/chatra/shop/" SHOP_SECRET, "application/json", body);
    assert_int_equal(f->res.status, 503);
    assert_true(metrics_show(f, "chatra_bridge_webhooks_total{source=\"chatra\",channel=\"shop\",result=\"unstored\"} 1\n"));
    assert_false(metrics_show(f, "result=\"accepted\""));
    call(f, "GET", "/healthz", "", "", NULL, 0);
    assert_int_equal(f->res.status, 503);
    assert_string_equal(f->res.content_type, "application/json");
    got = json_loads(f->res.body.data, 0, NULL);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "status")), "failing");
    store = json_object_get(got, "store");
    assert_true(json_is_false(json_object_get(store, "writable")));
    assert_string_equal(json_string_value(json_object_get(store, "error")), "disk I/O error");
    assert_true(json_integer_value(json_object_get(store, "since")) > 0);
    assert_int_equal(json_integer_value(json_object_get(store, "failed_writes")), 1);
    json_decref(got);

    /* Room again: the webhook is taken at once; /healthz is ok once writes worked for a second. */
    limit_files(f->cfg->store_path, false);
    post(f, "/webhooks/chatra/shop/" SHOP_SECRET, "application/json", body);
    expect_answer(f, 200, "{\"ok\":true}");
    assert_int_equal(br_store_inbox_pending(f->store), 1);
    nanosleep(&(struct timespec){1, 100 * 1000 * 1000}, NULL);
    call(f, "GET", "/healthz", "", "", NULL, 0);
    expect_answer(f, 200, "{\"status\":\"ok\",\"store\":{\"writable\":true}}");
    assert_true(metrics_show(f, "chatra_bridge_webhooks_total{source=\"chatra\",channel=\"shop\",result=\"accepted\"} 1\n"));
    assert_true(metrics_show(f, "result=\"unstored\"} 1\n"));
}

/*
 * GET /metrics: the Prometheus text, every webhook counted by channel and
 * result; open without metrics.token, and with it only for its bearer.
 */
static void
test_metrics_route(void **state)
{
    struct fx *f = *state;
    const char *body = "{\"eventName\":\"chatFragment\",\"client\":{\"id\":\"c1\"},"
                       "\"messages\":[{\"id\":\"m1\",\"type\":\"client\",\"text\":\"hi\"}]}";
    static const char *const refused[] = {NULL, "", "Bearer", "Bearer ", "Bearer metricsToken-012345678",
                                          "Bearer metricsToken-01234567890", "Basic metricsToken-0123456789",
                                          "metricsToken-0123456789"};

    post(f, "/webhooks/chatra/shop/" SHOP_SECRET, "application/json", body);
    expect_answer(f, 200, "{\"ok\":true}");
    post(f, "/webhooks/chatra/support/" SUPPORT_SECRET, "application/json", body);
    post(f, "/webhooks/chatra/shop/wrong-secret-0123456789", "application/json", body);
    post(f, "/webhooks/chatra/nope/" SHOP_SECRET, "application/json", body);
    post(f, "/webhooks/chatra/shop/" SHOP_SECRET, "application/json", "{");
    post(f, "/webhooks/planfix/" PLANFIX_SECRET, "application/json", "{\"task\": 12}");
    post(f, "/webhooks/planfix/" PLANFIX_SECRET, "application/json", "{\"task\": 0}");

    get_auth(f, "/metrics", NULL);
    assert_int_equal(f->res.status, 200);
    assert_string_equal(f->res.content_type, "text/plain; version=0.0.4; charset=utf-8");
    for (const char *const *l = (const char *const[]){
             "chatra_bridge_webhooks_total{source=\"chatra\",channel=\"shop\",result=\"accepted\"} 1\n",
             "chatra_bridge_webhooks_total{source=\"chatra\",channel=\"support\",result=\"accepted\"} 1\n",
             "chatra_bridge_webhooks_total{source=\"chatra\",channel=\"shop\",result=\"bad_secret\"} 1\n",
             "chatra_bridge_webhooks_total{source=\"chatra\",channel=\"\",result=\"unknown_channel\"} 1\n",
             "chatra_bridge_webhooks_total{source=\"chatra\",channel=\"shop\",result=\"invalid\"} 1\n",
             "chatra_bridge_webhooks_total{source=\"planfix\",channel=\"\",result=\"accepted\"} 1\n",
             "chatra_bridge_webhooks_total{source=\"planfix\",channel=\"\",result=\"invalid\"} 1\n",
             "chatra_bridge_store_writable 1\n", "chatra_bridge_inbox_pending 3\n", NULL};
         *l; l++)
        if (strstr(f->res.body.data, *l) == NULL)
            fail_msg("/metrics lacks %s in:\n%s", *l, f->res.body.data);
    /* The request's own bytes never become a label. */
    assert_null(strstr(f->res.body.data, "nope"));

    f->cfg->metrics_token = br_strdup("metricsToken-0123456789");
    for (size_t i = 0; i < BR_ARRAY_SIZE(refused); i++) {
        get_auth(f, "/metrics", refused[i]);
        assert_int_equal(f->res.status, 401);
        assert_string_equal(f->res.body.data,
                            "{\"error\":\"GET /metrics needs the header Authorization: Bearer <metrics.token>\"}");
    }
    get_auth(f, "/metrics", "Bearer metricsToken-0123456789");
    assert_int_equal(f->res.status, 200);
    assert_non_null(strstr(f->res.body.data, "chatra_bridge_inbox_pending 3\n"));
    get_auth(f, "/metrics", "BEARER   metricsToken-0123456789");
    assert_int_equal(f->res.status, 200);
    /* /healthz stays open to monitors. */
    call(f, "GET", "/healthz", "", "", NULL, 0);
    assert_int_equal(f->res.status, 200);
}

/*
 * The architecture's interface: "Wrong or missing secret: 401".  A webhook
 * URL whose secret segment is empty or absent has a missing secret.
 */
static void
test_missing_secret_is_401(void **state)
{
    static const char *const paths[] = {"/webhooks/chatra/shop/", "/webhooks/chatra/shop", "/webhooks/planfix/",
                                        "/webhooks/planfix"};
    struct fx *f = *state;

    for (size_t i = 0; i < BR_ARRAY_SIZE(paths); i++) {
        const char *body = "{\"client\":{\"id\":\"c\"},\"task\":5}";
        call(f, "POST", paths[i], "task=5", "application/json", body, strlen(body));
        if (f->res.status != 401)
            fail_msg("POST %s: got %d %s, want 401 (missing secret)", paths[i], f->res.status, f->res.body.data);
    }
    assert_int_equal(br_store_inbox_pending(f->store), 0);
}

/* ---- Planfix webhook ------------------------------------------------------------ */

static void
expect_tracker_row(struct fx *f, const char *task)
{
    json_t *got = take_inbox(f, BR_INBOX_TRACKER, "");
    char *text = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
    char *want = br_asprintf("{\"task\":\"%s\"}", task);
    assert_string_equal(text, want);
    assert_int_equal(br_store_inbox_pending(f->store), 0);
    free(text);
    free(want);
    json_decref(got);
}

static void
test_planfix_task_number_forms(void **state)
{
    static const struct {
        const char *query;
        const char *content_type;
        const char *body;
        const char *task;
    } cases[] = {
        {"", "application/json", "{\"task\":123}", "123"},
        {"", "application/json", "{\"task\":\"123\"}", "123"},
        {"", "application/json; charset=utf-8", "{\"task\":\"#123\"}", "123"},
        {"", "application/json", "{\"task\":\" 123 \"}", "123"},
        {"", "", "{\"task\":456}", "456"}, /* JSON recognised without a content type */
        {"", "application/x-www-form-urlencoded", "task=123", "123"},
        {"", "application/x-www-form-urlencoded", "a=1&task=124&b=2", "124"},
        {"", "application/x-www-form-urlencoded", "tasks=9&xtask=8&task=125", "125"},
        {"", "application/x-www-form-urlencoded", "task=+126+", "126"},
        {"task=123", "", "", "123"},
        {"x=1&task=127", "", "", "127"},
        {"task=128", "application/json", "{\"other\":1}", "128"}, /* JSON without task: the query */
        {"", "application/json", "{\"task\":9223372036854775807}", "9223372036854775807"},
    };
    struct fx *f = *state;

    for (size_t i = 0; i < BR_ARRAY_SIZE(cases); i++) {
        print_message("  query \"%s\" body \"%s\"\n", cases[i].query, cases[i].body);
        call(f, "POST", "/webhooks/planfix/" PLANFIX_SECRET, cases[i].query, cases[i].content_type, cases[i].body,
             strlen(cases[i].body));
        expect_answer(f, 200, "{\"ok\":true}");
        expect_tracker_row(f, cases[i].task);
    }
}

static void
test_planfix_bad_requests(void **state)
{
    static const char missing[] =
        "{\"error\":\"the task number is missing (JSON {\\\"task\\\":N}, form field task or ?task=N)\"}";
    static const char not_number[] = "{\"error\":\"the task number must be a positive integer\"}";
    static const struct {
        const char *query;
        const char *content_type;
        const char *body;
        const char *answer;
    } cases[] = {
        {"", "application/json", "{\"other\":1}", missing},
        {"", "application/json", "{\"task\":null}", missing},
        {"", "application/json", "{\"task\":1.5}", missing},
        {"", "application/json", "[123]", missing},
        {"", "application/x-www-form-urlencoded", "tasks=5", missing},
        {"", "", "", missing},
        {"other=1", "", "", missing},
        {"", "application/json", "{\"task\":\"abc\"}", not_number},
        {"", "application/json", "{\"task\":\"\"}", not_number},
        {"", "application/json", "{\"task\":-5}", not_number},
        {"", "application/json", "{\"task\":\"12a\"}", not_number},
        {"", "application/json", "{\"task\":\"12345678901234567890\"}", not_number},
        {"", "application/x-www-form-urlencoded", "task=abc", not_number},
        {"", "application/x-www-form-urlencoded", "task=", not_number},
        {"task=abc", "", "", not_number},
        {"", "application/json", "{\"task\":", "{\"error\":\"malformed JSON\"}"},
        {"task=5", "application/json", "task=5", "{\"error\":\"malformed JSON\"}"},
    };
    struct fx *f = *state;

    for (size_t i = 0; i < BR_ARRAY_SIZE(cases); i++) {
        print_message("  query \"%s\" body \"%s\"\n", cases[i].query, cases[i].body);
        call(f, "POST", "/webhooks/planfix/" PLANFIX_SECRET, cases[i].query, cases[i].content_type, cases[i].body,
             strlen(cases[i].body));
        expect_answer(f, 400, cases[i].answer);
    }
    assert_int_equal(br_store_inbox_pending(f->store), 0);
}

static void
test_planfix_wrong_secret(void **state)
{
    struct fx *f = *state;

    post(f, "/webhooks/planfix/wrongSecret0123456789", "application/json", "{\"task\":1}");
    expect_answer(f, 401, "{\"error\":\"wrong webhook secret\"}");
    post(f, "/webhooks/planfix/" SHOP_SECRET, "application/json", "{\"task\":1}");
    expect_answer(f, 401, "{\"error\":\"wrong webhook secret\"}");
    post(f, "/webhooks/planfix/pfHookSecret012345678", "application/json", "{\"task\":1}");
    expect_answer(f, 401, "{\"error\":\"wrong webhook secret\"}");
    /* The secret is checked before the body is looked at. */
    post(f, "/webhooks/planfix/x", "application/json", "{not json");
    expect_answer(f, 401, "{\"error\":\"wrong webhook secret\"}");
    assert_int_equal(br_store_inbox_pending(f->store), 0);
}

/*
 * Form bodies and queries are percent-encoded (and the HTTP server
 * re-encodes what lws decoded, so a space in a query arrives as "%20").
 * The handler's own comment promises "%20123" and "#123"; "#" can only
 * arrive encoded as "%23" in a form or a query.
 */
static void
test_planfix_percent_encoded_task(void **state)
{
    static const struct {
        const char *query;
        const char *content_type;
        const char *body;
    } cases[] = {
        {"task=%20123", "", ""},
        {"task=%23123", "", ""},
        {"", "application/x-www-form-urlencoded", "task=%23123"},
        {"", "application/x-www-form-urlencoded", "task=%20123%20"},
    };
    struct fx *f = *state;

    for (size_t i = 0; i < BR_ARRAY_SIZE(cases); i++) {
        call(f, "POST", "/webhooks/planfix/" PLANFIX_SECRET, cases[i].query, cases[i].content_type, cases[i].body,
             strlen(cases[i].body));
        if (f->res.status != 200)
            fail_msg("query \"%s\" body \"%s\": got %d %s, want 200 and task 123", cases[i].query, cases[i].body,
                     f->res.status, f->res.body.data);
        expect_tracker_row(f, "123");
    }
}

/* "must be a positive integer", says the answer: 0 is not one, and no Planfix task has it. */
static void
test_planfix_task_zero_rejected(void **state)
{
    struct fx *f = *state;

    post(f, "/webhooks/planfix/" PLANFIX_SECRET, "application/json", "{\"task\":0}");
    expect_answer(f, 400, "{\"error\":\"the task number must be a positive integer\"}");
    post(f, "/webhooks/planfix/" PLANFIX_SECRET, "application/x-www-form-urlencoded", "task=000");
    expect_answer(f, 400, "{\"error\":\"the task number must be a positive integer\"}");
    assert_int_equal(br_store_inbox_pending(f->store), 0);
}

/* ---- helpers ------------------------------------------------------------------- */

static void
test_secret_equal(void **state)
{
    (void)state;
    assert_true(br_secret_equal("abcdefghijklmnop", "abcdefghijklmnop"));
    assert_true(br_secret_equal("", ""));
    assert_false(br_secret_equal("abcdefghijklmnoq", "abcdefghijklmnop"));
    assert_false(br_secret_equal("bbcdefghijklmnop", "abcdefghijklmnop"));
    assert_false(br_secret_equal("abcdefghijklmno", "abcdefghijklmnop"));   /* a prefix */
    assert_false(br_secret_equal("abcdefghijklmnopq", "abcdefghijklmnop")); /* longer */
    assert_false(br_secret_equal("", "abcdefghijklmnop"));
    assert_false(br_secret_equal("abc", ""));
    assert_false(br_secret_equal("ABCDEFGHIJKLMNOP", "abcdefghijklmnop"));
}

static void
test_respond_helpers(void **state)
{
    struct br_http_response res = {.status = 0, .content_type = "text/plain"};
    (void)state;

    br_buf_init(&res.body, 0);
    br_buf_puts(&res.body, "old");
    br_respond_error(&res, 418, "a \"quoted\"\nreason");
    assert_int_equal(res.status, 418);
    assert_string_equal(res.content_type, "application/json");
    /* One line of printable ASCII: control bytes and broken UTF-8 from a quoted body become '?'. */
    assert_string_equal(res.body.data, "{\"error\":\"a \\\"quoted\\\"?reason\"}");
    br_respond_error(&res, 400, "near '\"\\\xde'");
    assert_string_equal(res.body.data, "{\"error\":\"near '\\\"\\\\?'\"}");
    br_respond_ok(&res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body.data, "{\"ok\":true}");
    br_buf_dispose(&res.body);
}

/* Webhooks of one loop turn are stored in one commit, all or none; none is acknowledged before it. */
static void
test_flush_stores_all_or_none(void **state)
{
    struct fx *f = *state;
    struct br_http_request req = {.method = "POST", .query = "", .content_type = "application/json",
                                  .remote_addr = "127.0.0.1"};
    struct br_http_response res = {0};
    char *path = br_strdup("/webhooks/chatra/shop/" SHOP_SECRET);
    const char *body = "{\"eventName\":\"chatFragment\",\"client\":{\"id\":\"c1\"},"
                       "\"messages\":[{\"id\":\"m1\",\"type\":\"client\",\"text\":\"hi\"}]}";
    sqlite3 *db;

    req.path = path;
    req.body = body;
    req.body_len = strlen(body);
    for (int i = 0; i < 3; i++) {
        br_buf_init(&res.body, 0);
        res.status = 200;
        res.after_flush = 0;
        br_handlers_dispatch(&f->ctx, &req, &res);
        assert_int_equal(res.status, 200);
        assert_true(res.after_flush);
        br_buf_dispose(&res.body);
    }
    /* Queued, not stored yet. */
    assert_int_equal(br_store_inbox_pending(f->store), 0);
    assert_int_equal(br_handlers_flush(&f->ctx), 0);
    assert_int_equal(br_store_inbox_pending(f->store), 3);
    assert_int_equal(br_handlers_flush(&f->ctx), 0); /* nothing queued: nothing to do */

    /* A store that cannot take them: none is stored, the flush says so. */
    br_buf_init(&res.body, 0);
    br_handlers_dispatch(&f->ctx, &req, &res);
    br_buf_dispose(&res.body);
    assert_int_equal(sqlite3_open(f->cfg->store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TRIGGER no_inbox BEFORE INSERT ON inbox BEGIN "
                                      "SELECT RAISE(ABORT, 'disk trouble'); END;", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_not_equal(br_handlers_flush(&f->ctx), 0);
    assert_int_equal(br_store_inbox_pending(f->store), 3);
    free(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chatra_samples_are_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_stores_all_or_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chatra_wrong_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chatra_unknown_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chatra_malformed_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chatra_unknown_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_when_writes_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_secret_is_401, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planfix_task_number_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planfix_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planfix_wrong_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planfix_percent_encoded_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planfix_task_zero_rejected, setup, teardown),
        cmocka_unit_test(test_secret_equal),
        cmocka_unit_test(test_respond_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
