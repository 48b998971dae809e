/*
 * test_admin.c - the admin page's access in-process: sessions and their
 * CSRF tokens (handlers/admin_sessions.c), the Cookie header, and the gate
 * every admin route passes (handlers/admin_auth.c) through the route table.
 */
#include "bridge/config.h"
#include "bridge/log.h"
#include "bridge/ratelimit.h"
#include "bridge/store.h"
#include "handlers/admin.h"
#include "handlers/handlers.h"
#include "support/tmpdir.h"

#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define TOKEN "admin-token-0123456789"

static const char config_text[] =
    "{'store': {'path': 'bridge.db'},\n"
    " 'log': {'level': 'error'},\n"
    " 'admin': {'token': '" TOKEN "', 'session_ttl_s': 600},\n"
    " 'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
    "             'token': 'tokenTokenToken', 'webhook_secret': 'planfixSecret-0123456789'},\n"
    " 'channels': [\n"
    "   {'name': 'shop', 'webhook_secret': 'shopSecret-0123456789',\n"
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
    strcpy(f->dir, "/tmp/br-test-admin-XXXXXX");
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
    f->ctx.admin = br_admin_new("9.9.9", 1000);
    /* Three wrong tokens a minute from one address, as limits.bad_secrets_per_minute = 3. */
    f->ctx.bad_secret = br_ratelimit_new(3 / 60.0, 3);
    br_buf_init(&f->res.body, 0);
    br_buf_init(&f->res.headers, 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    br_buf_dispose(&f->res.body);
    br_buf_dispose(&f->res.headers);
    br_admin_free(f->ctx.admin);
    br_ratelimit_free(f->ctx.bad_secret);
    br_store_free(f->store);
    br_config_free(f->cfg);
    br_log_clear_secrets();
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* One request through the route table; the answer is in f->res.  Headers: "authorization", "cookie", "csrf". */
static void
call(struct fx *f, const char *method, const char *path, const char *authorization, const char *cookie,
     const char *csrf, const char *body)
{
    struct br_http_request req = {
        .method = method,
        .path = path,
        .query = "",
        .content_type = "application/json",
        .authorization = authorization,
        .remote_addr = "192.0.2.7",
        .body = body ? body : "",
        .body_len = body ? strlen(body) : 0,
        .cookie = cookie,
        .csrf_token = csrf,
    };

    br_buf_reset(&f->res.body);
    br_buf_reset(&f->res.headers);
    f->res.status = 200;
    f->res.content_type = "application/json";
    f->res.after_flush = 0;
    br_handlers_dispatch(&f->ctx, &req, &f->res);
}

static const char *
body(struct fx *f)
{
    return f->res.body.data ? f->res.body.data : "";
}

static bool
has_header(struct fx *f, const char *line)
{
    return f->res.headers.data != NULL && strstr(f->res.headers.data, line) != NULL;
}

/* ---- sessions ------------------------------------------------------------------ */

static void
test_random_hex(void **state)
{
    char a[65], b[65];

    (void)state;
    assert_int_equal(br_admin_random_hex(a, 32), 0);
    assert_int_equal(br_admin_random_hex(b, 32), 0);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_string_not_equal(a, b);
    assert_int_equal(br_admin_random_hex(a, 65), BR_EINVAL);
}

static void
test_sessions(void **state)
{
    struct br_admin *a = br_admin_new("1", 0);
    const struct br_admin_session *s, *t;
    char id[65], other[65];

    (void)state;
    s = br_admin_session_new(a, 1000, 500);
    assert_non_null(s);
    assert_int_equal(strlen(s->id), 64);
    assert_int_equal(strlen(s->csrf), 64);
    assert_string_not_equal(s->id, s->csrf);
    strcpy(id, s->id);
    assert_ptr_equal(br_admin_session_find(a, id, 1499), s);
    /* Over at its end; a wrong, shorter or longer id finds nothing. */
    assert_null(br_admin_session_find(a, id, 1500));
    strcpy(other, id);
    other[0] = other[0] == 'a' ? 'b' : 'a';
    assert_null(br_admin_session_find(a, other, 1000));
    other[63] = '\0';
    assert_null(br_admin_session_find(a, other, 1000));
    assert_null(br_admin_session_find(a, "", 1000));
    assert_null(br_admin_session_find(a, NULL, 1000));
    /* Another login is another session; ending one leaves the other. */
    t = br_admin_session_new(a, 1000, 500);
    assert_non_null(t);
    assert_string_not_equal(t->id, id);
    /* Each has its own serial, which tells its WebSockets. */
    assert_true(s->serial != 0 && t->serial != 0 && s->serial != t->serial);
    br_admin_session_end(a, id);
    assert_null(br_admin_session_find(a, id, 1000));
    assert_ptr_equal(br_admin_session_find(a, t->id, 1000), t);
    br_admin_free(a);
}

static void
test_a_full_table_ends_the_session_closest_to_its_end(void **state)
{
    struct br_admin *a = br_admin_new("1", 0);
    char first[65], second[65];

    (void)state;
    strcpy(first, br_admin_session_new(a, 0, 100)->id);     /* ends first */
    strcpy(second, br_admin_session_new(a, 0, 200)->id);
    for (int i = 2; i < BR_ADMIN_MAX_SESSIONS; i++)
        assert_non_null(br_admin_session_new(a, 0, 1000));
    assert_non_null(br_admin_session_find(a, first, 50));
    assert_non_null(br_admin_session_new(a, 50, 1000));
    assert_null(br_admin_session_find(a, first, 50));
    assert_non_null(br_admin_session_find(a, second, 50));
    br_admin_free(a);
}

static void
test_cookie_header(void **state)
{
    size_t at = 0;
    char *v;

    (void)state;
    v = br_admin_cookie("a=1; br_admin=abc;b=2", "br_admin", &at);
    assert_string_equal(v, "abc");
    free(v);
    assert_null(br_admin_cookie("a=1; br_admin=abc;b=2", "br_admin", &at));
    /* Several of the name (other paths), quoted, spaces around; names compared exactly. */
    at = 0;
    v = br_admin_cookie("br_adminx=1;  br_admin=\"q\" ; br_admin=second", "br_admin", &at);
    assert_string_equal(v, "q");
    free(v);
    v = br_admin_cookie("br_adminx=1;  br_admin=\"q\" ; br_admin=second", "br_admin", &at);
    assert_string_equal(v, "second");
    free(v);
    at = 0;
    assert_null(br_admin_cookie("", "br_admin", &at));
    at = 0;
    assert_null(br_admin_cookie("br_admin", "br_admin", &at));
    at = 0;
    v = br_admin_cookie("br_admin=", "br_admin", &at);
    assert_string_equal(v, "");
    free(v);
}

/* ---- the gate, through the route table -------------------------------------------- */

static void
test_off_without_a_token(void **state)
{
    struct fx *f = *state;
    char *token = f->cfg->admin_token;

    f->cfg->admin_token = NULL;
    call(f, "GET", "/admin/api/overview", "Bearer " TOKEN, NULL, NULL, NULL);
    assert_int_equal(f->res.status, 404);
    assert_false(has_header(f, "Content-Security-Policy"));
    call(f, "GET", "/admin/", NULL, NULL, NULL, NULL);
    assert_int_equal(f->res.status, 404);
    f->cfg->admin_token = token;
    call(f, "GET", "/admin/", NULL, NULL, NULL, NULL);
    assert_int_equal(f->res.status, 200);
    assert_true(has_header(f, "Content-Security-Policy\tdefault-src 'none'; script-src 'self';"));
    assert_true(has_header(f, "Cache-Control\tno-store\n"));
}

static void
test_bearer_and_wrong_tokens(void **state)
{
    struct fx *f = *state;

    call(f, "GET", "/admin/api/session", "Bearer " TOKEN, NULL, NULL, NULL);
    assert_int_equal(f->res.status, 200);
    assert_string_equal(body(f), "{\"csrf\":null,\"auth\":\"bearer\"}");
    call(f, "GET", "/admin/api/session", "bearer  " TOKEN, NULL, NULL, NULL);
    assert_int_equal(f->res.status, 200);
    call(f, "GET", "/admin/api/session", NULL, NULL, NULL, NULL);
    assert_int_equal(f->res.status, 401);
    assert_string_equal(body(f), "{\"error\":\"login required\"}");
    /* Wrong tokens: three a minute, then 429, as wrong webhook secrets. */
    for (int i = 0; i < 3; i++) {
        call(f, "GET", "/admin/api/session", "Bearer " TOKEN "x", NULL, NULL, NULL);
        assert_int_equal(f->res.status, 401);
    }
    call(f, "POST", "/admin/login", NULL, NULL, NULL, "{\"token\":\"nope\"}");
    assert_int_equal(f->res.status, 429);
    call(f, "GET", "/admin/api/session", "Basic " TOKEN, NULL, NULL, NULL);
    assert_int_equal(f->res.status, 401);
    /* The right one still works. */
    call(f, "GET", "/admin/api/session", "Bearer " TOKEN, NULL, NULL, NULL);
    assert_int_equal(f->res.status, 200);
}

static void
test_login_cookie_and_csrf(void **state)
{
    struct fx *f = *state;
    char *cookie, *csrf, *wrong;
    const char *sc;
    json_error_t je;
    json_t *o;

    call(f, "POST", "/admin/login", NULL, NULL, NULL, "{\"token\":\"" TOKEN "\"}");
    assert_int_equal(f->res.status, 200);
    o = json_loads(body(f), 0, &je);
    assert_non_null(o);
    csrf = br_strdup(json_string_value(json_object_get(o, "csrf")));
    json_decref(o);
    sc = strstr(f->res.headers.data, "Set-Cookie\tbr_admin=");
    assert_non_null(sc);
    cookie = br_strndup(sc + strlen("Set-Cookie\t"), 9 + 64);
    assert_non_null(strstr(sc, "; Path=/admin/; Max-Age=600; HttpOnly; SameSite=Strict\n"));

    call(f, "GET", "/admin/api/session", NULL, cookie, NULL, NULL);
    assert_int_equal(f->res.status, 200);
    assert_non_null(strstr(body(f), csrf));
    /* A POST of the cookie session needs its CSRF token. */
    call(f, "POST", "/admin/logout", NULL, cookie, NULL, NULL);
    assert_int_equal(f->res.status, 403);
    assert_string_equal(body(f), "{\"error\":\"CSRF token missing or wrong\"}");
    wrong = br_strdup(csrf);
    wrong[10] = wrong[10] == '0' ? '1' : '0';
    call(f, "POST", "/admin/logout", NULL, cookie, wrong, NULL);
    assert_int_equal(f->res.status, 403);
    call(f, "POST", "/admin/logout", NULL, cookie, csrf, NULL);
    assert_int_equal(f->res.status, 200);
    call(f, "GET", "/admin/api/session", NULL, cookie, NULL, NULL);
    assert_int_equal(f->res.status, 401);
    free(wrong);
    free(cookie);
    free(csrf);
}

/* Another admin.token (a reload) ends the sessions made with the old one. */
static void
test_a_new_token_ends_the_sessions(void **state)
{
    struct fx *f = *state;
    char *token = f->cfg->admin_token, *cookie;
    const char *sc;

    call(f, "POST", "/admin/login", NULL, NULL, NULL, "{\"token\":\"" TOKEN "\"}");
    assert_int_equal(f->res.status, 200);
    sc = strstr(f->res.headers.data, "Set-Cookie\tbr_admin=");
    assert_non_null(sc);
    cookie = br_strndup(sc + strlen("Set-Cookie\t"), 9 + 64);
    call(f, "GET", "/admin/api/session", NULL, cookie, NULL, NULL);
    assert_int_equal(f->res.status, 200);
    f->cfg->admin_token = "another-token-0123456789";
    call(f, "GET", "/admin/api/session", NULL, cookie, NULL, NULL);
    assert_int_equal(f->res.status, 401);
    call(f, "GET", "/admin/api/session", "Bearer another-token-0123456789", NULL, NULL, NULL);
    assert_int_equal(f->res.status, 200);
    f->cfg->admin_token = token;
    call(f, "GET", "/admin/api/session", NULL, cookie, NULL, NULL);
    assert_int_equal(f->res.status, 401);
    free(cookie);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_hex),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_a_full_table_ends_the_session_closest_to_its_end),
        cmocka_unit_test(test_cookie_header),
        cmocka_unit_test_setup_teardown(test_off_without_a_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_and_wrong_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_cookie_and_csrf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_token_ends_the_sessions, setup, teardown),
    };

    br_log_set_level(BR_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
