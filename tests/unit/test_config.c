/*
 * test_config.c - loading and validating the JSON config: typed values
 * and defaults, "env:" and "file:" references, every problem reported at
 * once with its file position or key path, template checks, and secrets
 * that never reach a diagnostic.
 *
 * Each test writes its config into a fresh directory under /tmp (removed
 * afterwards).  Config texts are written with single quotes for
 * readability; write_cfg turns them into double quotes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bridge/cidr.h"
#include "bridge/config.h"
#include "bridge/crm.h"
#include "bridge/log.h"
#include "templates/tpl.h"
#include "support/tmpdir.h"

/* Secret values used below; none of them may ever show up in a diagnostic. */
#define PF_TOKEN "pf-token-Zq81xw7Ea"
#define PF_HOOK "pfHookSecret0123456789"
#define SHOP_HOOK "shopHookSecret_abcdef123"
#define SHOP_PUB "pubKeyShop9876"
#define SHOP_SEC "secKeyShop5432"
#define SUPPORT_SEC "secKeySupport1111"

static const char *const env_secrets[][2] = {
    {"PLANFIX_TOKEN", PF_TOKEN},
    {"PLANFIX_WEBHOOK_SECRET", PF_HOOK},
    {"CHATRA_SHOP_WEBHOOK_SECRET", SHOP_HOOK},
    {"CHATRA_SHOP_PUBLIC_KEY", SHOP_PUB},
    {"CHATRA_SHOP_SECRET_KEY", SHOP_SEC},
    {"CHATRA_SUPPORT_SECRET_KEY", SUPPORT_SEC},
};

/* ---- fixture -------------------------------------------------------------- */

struct fx {
    char dir[64];
    char *cfg_path;
    struct br_config *cfg;
    struct br_diag diag;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/br-test-config-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    for (size_t i = 0; i < BR_ARRAY_SIZE(env_secrets); i++)
        assert_int_equal(setenv(env_secrets[i][0], env_secrets[i][1], 1), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    br_config_free(f->cfg);
    br_diag_dispose(&f->diag);
    free(f->cfg_path);
    tmpdir_remove(f->dir);
    for (size_t i = 0; i < BR_ARRAY_SIZE(env_secrets); i++)
        unsetenv(env_secrets[i][0]);
    br_log_clear_secrets();
    free(f);
    return 0;
}

/* Creates dir/rel (and its parent directories) with the given bytes. */
static char *
write_file(struct fx *f, const char *rel, const char *text)
{
    char *path = br_asprintf("%s/%s", f->dir, rel);
    FILE *fp;

    for (char *p = path + strlen(f->dir) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
    return path;
}

/* Writes a config written with single quotes as dir/rel. */
static void
write_cfg(struct fx *f, const char *rel, const char *text)
{
    char *json = br_strdup(text);
    for (char *p = json; *p; p++)
        if (*p == '\'')
            *p = '"';
    free(f->cfg_path);
    f->cfg_path = write_file(f, rel, json);
    free(json);
}

static int
load(struct fx *f)
{
    return br_config_load(f->cfg_path, &f->cfg, &f->diag);
}

static void
dump_diag(const struct br_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        print_message("  diag[%zu] = %s\n", i, d->items[i]);
}

/* Loads and expects success without any diagnostic. */
static void
load_ok(struct fx *f)
{
    int rc = load(f);
    if (rc != 0 || f->diag.n != 0) {
        dump_diag(&f->diag);
        fail_msg("br_config_load = %d with %zu problems, want 0", rc, f->diag.n);
    }
    assert_non_null(f->cfg);
}

/* Expects a line "<config path>: <rest>" among the diagnostics. */
static void
expect_problem(struct fx *f, const char *rest)
{
    char *want = br_asprintf("%s: %s", f->cfg_path, rest);
    for (size_t i = 0; i < f->diag.n; i++) {
        if (strcmp(f->diag.items[i], want) == 0) {
            free(want);
            return;
        }
    }
    dump_diag(&f->diag);
    fail_msg("missing diagnostic \"%s\"", want);
}

/* Expects an exact line among the diagnostics. */
static void
expect_line(struct fx *f, const char *line)
{
    for (size_t i = 0; i < f->diag.n; i++)
        if (strcmp(f->diag.items[i], line) == 0)
            return;
    dump_diag(&f->diag);
    fail_msg("missing diagnostic \"%s\"", line);
}

/* No diagnostic line may contain any secret value in use. */
static void
expect_no_secret_in_diag(struct fx *f, const char *const *extra)
{
    for (size_t i = 0; i < f->diag.n; i++) {
        assert_null(strchr(f->diag.items[i], '\n'));
        for (size_t k = 0; k < BR_ARRAY_SIZE(env_secrets); k++)
            if (strstr(f->diag.items[i], env_secrets[k][1]))
                fail_msg("secret %s leaked in \"%s\"", env_secrets[k][0], f->diag.items[i]);
        for (size_t k = 0; extra && extra[k]; k++)
            if (strstr(f->diag.items[i], extra[k]))
                fail_msg("secret \"%s\" leaked in \"%s\"", extra[k], f->diag.items[i]);
    }
}

static char *
render(const struct br_tpl *t, const char *ctx_json, enum br_tpl_escape mode)
{
    json_error_t je;
    json_t *ctx = json_loads(ctx_json, 0, &je);
    struct br_buf out;

    assert_non_null(ctx);
    assert_non_null(t);
    br_buf_init(&out, 0);
    assert_int_equal(br_tpl_render(t, ctx, mode, &out), 0);
    json_decref(ctx);
    return br_buf_steal(&out);
}

/* ---- a full config, shaped like config/bridge.example.json ---------------- */

static const char full_config[] =
    "{\n"
    "  'listen': {'host': '0.0.0.0', 'port': 18080},\n"
    "  'store': {'kind': 'sqlite', 'path': 'var/bridge.db'},\n"
    "  'log': {'level': 'debug'},\n"
    "  'limits': {'max_body_bytes': 2048},\n"
    "  'tracker': {\n"
    "    'kind': 'planfix',\n"
    "    'url': 'https://example.planfix.com/rest//',\n"
    "    'token': 'env:PLANFIX_TOKEN',\n"
    "    'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET',\n"
    "    'requests_per_second': 2.5,\n"
    "    'timeout_ms': 5000,\n"
    "    'poll_interval_s': 60,\n"
    "    'daily_quota': 100000\n"
    "  },\n"
    "  'employees': [\n"
    "    {'name': 'Anna Smirnova', 'email': 'Anna.Smirnova@Example.COM',\n"
    "     'tracker_user': 'user:5', 'chatra_agent_id': 'bnRzp4CioKudG4aHm'},\n"
    "    {'name': 'Boris Ivanov', 'email': 'boris@example.com', 'tracker_user': 'user:6'}\n"
    "  ],\n"
    "  'channels': [\n"
    "    {\n"
    "      'name': 'shop',\n"
    "      'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
    "      'chatra': {'url': 'https://app.chatra.io/api/',\n"
    "                 'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
    "                 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY',\n"
    "                 'requests_per_second': 3},\n"
    "      'default_agent_id': 'CHATRA_AGENT_ID_OF_THE_INTEGRATION_USER',\n"
    "      'employees': ['ANNA.SMIRNOVA@example.com'],\n"
    "      'watchers': ['user:7', 'user:9'],\n"
    "      'send_as_employee': false,\n"
    "      'close_on_leave': true,\n"
    "      'task': {'template_id': 12, 'closed_status_id': 3,\n"
    "               'title': 'Chat with {{visitor.name}}{{^visitor.name}}a visitor{{/visitor.name}} ({{channel.name}})',\n"
    "               'description_file': 'tpl/description.html'},\n"
    "      'contact': {'template_id': 4}\n"
    "    },\n"
    "    {\n"
    "      'name': 'support',\n"
    "      'webhook_secret': 'supportHookSecret-0123',\n"
    "      'chatra': {'public_key': 'SupportPublicKey', 'secret_key': 'env:CHATRA_SUPPORT_SECRET_KEY'},\n"
    "      'default_agent_id': 'AGENT2',\n"
    "      'employees': ['boris@example.com', 'anna.smirnova@example.com'],\n"
    "      'close_on_leave': false\n"
    "    }\n"
    "  ]\n"
    "}\n";

static void
test_full_config(void **state)
{
    struct fx *f = *state;
    const struct br_config *c;
    const struct br_channel *shop, *support;
    char *want, *text;

    free(write_file(f, "tpl/description.html", "<p>{{visitor.email}}</p>{{#chatra.client.info}}x{{/chatra.client.info}}"));
    write_cfg(f, "cfg.json", full_config);
    load_ok(f);
    c = f->cfg;

    assert_string_equal(c->path, f->cfg_path);
    assert_string_equal(c->dir, f->dir);
    assert_string_equal(c->listen_host, "0.0.0.0");
    assert_int_equal(c->listen_port, 18080);
    assert_int_equal(c->max_body, 2048);
    assert_string_equal(c->store_kind, "sqlite");
    want = br_asprintf("%s/var/bridge.db", f->dir);
    assert_string_equal(c->store_path, want);
    free(want);
    assert_string_equal(c->log_level, "debug");

    assert_string_equal(c->tracker_kind, "planfix");
    assert_string_equal(c->tracker_url, "https://example.planfix.com/rest");
    assert_string_equal(c->tracker_token, PF_TOKEN);
    assert_string_equal(c->tracker_webhook_secret, PF_HOOK);
    assert_null(c->tracker_project);
    assert_true(c->tracker_rps == 2.5);
    assert_int_equal(c->tracker_timeout_ms, 5000);
    assert_int_equal(c->poll_interval_s, 60);
    assert_int_equal(c->tracker_daily_quota, 100000);

    assert_int_equal(c->n_employees, 2);
    assert_string_equal(c->employees[0].name, "Anna Smirnova");
    assert_string_equal(c->employees[0].email, "anna.smirnova@example.com");
    assert_string_equal(c->employees[0].tracker_user, "user:5");
    assert_string_equal(c->employees[0].chatra_agent_id, "bnRzp4CioKudG4aHm");
    assert_string_equal(c->employees[1].name, "Boris Ivanov");
    assert_string_equal(c->employees[1].email, "boris@example.com");
    assert_null(c->employees[1].chatra_agent_id);

    assert_int_equal(c->n_channels, 2);
    shop = br_config_channel(c, "shop");
    support = br_config_channel(c, "support");
    assert_ptr_equal(shop, &c->channels[0]);
    assert_ptr_equal(support, &c->channels[1]);
    assert_null(br_config_channel(c, "Shop"));
    assert_null(br_config_channel(c, "nope"));

    assert_string_equal(shop->webhook_secret, SHOP_HOOK);
    assert_string_equal(shop->chatra_url, "https://app.chatra.io/api");
    assert_string_equal(shop->chatra_public_key, SHOP_PUB);
    assert_string_equal(shop->chatra_secret_key, SHOP_SEC);
    assert_true(shop->chatra_rps == 3.0);
    assert_string_equal(shop->default_agent_id, "CHATRA_AGENT_ID_OF_THE_INTEGRATION_USER");
    assert_int_equal(shop->n_employees, 1);
    assert_ptr_equal(shop->employees[0], &c->employees[0]);
    assert_int_equal(shop->n_watchers, 2);
    assert_string_equal(shop->watchers[0], "user:7");
    assert_string_equal(shop->watchers[1], "user:9");
    assert_false(shop->send_as_employee);
    assert_true(shop->new_task_if_no_active); /* default */
    assert_true(shop->close_on_leave);
    assert_int_equal(shop->task_template_id, 12);
    assert_int_equal(shop->closed_status_id, 3);
    assert_int_equal(shop->contact_template_id, 4);

    /* The inline title and the description file were compiled. */
    text = render(shop->task_title, "{\"visitor\":{\"name\":\"Maria <M>\"},\"channel\":{\"name\":\"shop\"}}",
                  BR_TPL_ESCAPE_NONE);
    assert_string_equal(text, "Chat with Maria <M> (shop)");
    free(text);
    text = render(shop->task_description, "{\"visitor\":{\"email\":\"a&b@example.org\"}}", BR_TPL_ESCAPE_HTML);
    assert_string_equal(text, "<p>a&amp;b@example.org</p>");
    free(text);

    /* Defaults of the second channel. */
    assert_string_equal(support->webhook_secret, "supportHookSecret-0123");
    assert_string_equal(support->chatra_url, "https://app.chatra.io/api");
    assert_string_equal(support->chatra_public_key, "SupportPublicKey");
    assert_string_equal(support->chatra_secret_key, SUPPORT_SEC);
    assert_true(support->chatra_rps == 5.0);
    assert_true(support->send_as_employee);
    assert_true(support->new_task_if_no_active);
    assert_false(support->close_on_leave);
    assert_int_equal(support->task_template_id, 0);
    assert_int_equal(support->closed_status_id, 0);
    assert_int_equal(support->contact_template_id, 0);
    assert_int_equal(support->n_watchers, 0);
    assert_int_equal(support->n_employees, 2);
    assert_ptr_equal(support->employees[0], &c->employees[1]);
    assert_ptr_equal(support->employees[1], &c->employees[0]);
    /* The shipped default texts. */
    text = render(support->task_title, "{\"channel\":{\"name\":\"support\"}}", BR_TPL_ESCAPE_NONE);
    assert_string_equal(text, "Chat with a visitor (support)");
    free(text);
    assert_non_null(support->task_description);

    /* Look-ups. */
    assert_ptr_equal(br_config_employee_by_tracker_user(c, "user:6"), &c->employees[1]);
    assert_null(br_config_employee_by_tracker_user(c, "user:7"));
    assert_ptr_equal(br_channel_employee_by_tracker_user(shop, "user:5"), &c->employees[0]);
    assert_null(br_channel_employee_by_tracker_user(shop, "user:6")); /* not on this channel */
    assert_ptr_equal(br_channel_employee_by_tracker_user(support, "user:6"), &c->employees[1]);
    assert_ptr_equal(br_config_employee_by_agent(c, "bnRzp4CioKudG4aHm"), &c->employees[0]);
    assert_null(br_config_employee_by_agent(c, "unknown-agent"));
}

/* Top-level defaults when only the required parts are given. */
static void
test_defaults(void **state)
{
    struct fx *f = *state;
    const struct br_config *c;
    char *want;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'http://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
              "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "               'default_agent_id': 'A', 'task': {'closed_status_id': 7}}]}\n");
    load_ok(f);
    c = f->cfg;
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 8080);
    assert_int_equal(c->max_body, 1024 * 1024);
    assert_string_equal(c->store_kind, "sqlite");
    want = br_asprintf("%s/var/bridge.db", f->dir);
    assert_string_equal(c->store_path, want);
    free(want);
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->log_format, "text");
    assert_int_equal(c->n_trusted_proxies, 0);
    assert_true(c->tracker_rps == 1.0);
    assert_int_equal(c->tracker_timeout_ms, 15000);
    assert_int_equal(c->poll_interval_s, 60); /* the safety-net poll is on by default */
    assert_int_equal(c->tracker_daily_quota, 20000); /* Planfix's smallest plan */
    assert_int_equal(c->n_employees, 0);
    assert_int_equal(c->n_channels, 1);
    assert_int_equal(c->channels[0].n_employees, 0);
    assert_true(c->channels[0].send_as_employee);
    assert_true(c->channels[0].new_task_if_no_active);
    assert_true(c->channels[0].close_on_leave);
    assert_int_equal(c->channels[0].closed_status_id, 7);
    assert_non_null(c->channels[0].task_title);
    assert_non_null(c->channels[0].task_description);
}

/* The example shipped in config/ must load as it is (with its env vars set). */
static void
test_example_config_loads(void **state)
{
    struct fx *f = *state;
    const char *src = getenv("BR_SOURCE_DIR");
    char *path = br_asprintf("%s/config/bridge.example.json", src && *src ? src : BR_TEST_SOURCE_DIR);
    int rc = br_config_load(path, &f->cfg, &f->diag);

    if (rc != 0) {
        dump_diag(&f->diag);
        fail_msg("%s does not load", path);
    }
    free(path);
    assert_int_equal(f->cfg->n_channels, 1);
    assert_string_equal(f->cfg->channels[0].name, "shop");
    assert_int_equal(f->cfg->channels[0].task_template_id, 12);
    assert_int_equal(f->cfg->channels[0].closed_status_id, 3);
    assert_int_equal(f->cfg->channels[0].contact_template_id, 4);
    assert_ptr_equal(f->cfg->channels[0].employees[0], &f->cfg->employees[0]);
    assert_string_equal(f->cfg->tracker_token, PF_TOKEN);
    br_config_free(f->cfg);
    f->cfg = NULL;

    /* The Redmine example too. */
    setenv("REDMINE_API_KEY", "rm-key-0123456789abcdef", 1);
    path = br_asprintf("%s/config/bridge.redmine.example.json", src && *src ? src : BR_TEST_SOURCE_DIR);
    if (br_config_load(path, &f->cfg, &f->diag) != 0) {
        dump_diag(&f->diag);
        fail_msg("%s does not load", path);
    }
    free(path);
    assert_string_equal(f->cfg->tracker_kind, "redmine");
    assert_int_equal(f->cfg->channels[0].closed_status_id, 5);
    unsetenv("REDMINE_API_KEY");
}

/* ---- "file:" and "env:" references ---------------------------------------- */

static void
test_file_secrets(void **state)
{
    struct fx *f = *state;
    char *abs_token = write_file(f, "elsewhere/token.txt", "tok-from-absolute-file\r\n");
    char *text;

    free(write_file(f, "conf/secrets/hook.txt", "fileHookSecret_0123456789\n"));
    free(write_file(f, "conf/secrets/pub.txt", "pubFromFile \n\n"));
    text = br_asprintf(
        "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
        "             'token': 'file:%s', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
        " 'store': {'path': '/var/lib/bridge/bridge.db'},\n"
        " 'channels': [{'name': 'shop', 'webhook_secret': 'file:secrets/hook.txt',\n"
        "               'chatra': {'public_key': 'file:secrets/pub.txt',\n"
        "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
        "               'default_agent_id': 'A', 'close_on_leave': false}]}\n",
        abs_token);
    /* The config lives in a subdirectory: relative paths are relative to it, not to the cwd. */
    write_cfg(f, "conf/cfg.json", text);
    free(text);
    load_ok(f);
    assert_string_equal(f->cfg->tracker_token, "tok-from-absolute-file");
    assert_string_equal(f->cfg->channels[0].webhook_secret, "fileHookSecret_0123456789");
    assert_string_equal(f->cfg->channels[0].chatra_public_key, "pubFromFile");
    assert_string_equal(f->cfg->store_path, "/var/lib/bridge/bridge.db");
    free(abs_token);
}

static void
test_file_secret_missing(void **state)
{
    struct fx *f = *state;
    char *line;

    write_cfg(f, "conf/cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'file:secrets/none.txt', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
              "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "               'default_agent_id': 'A', 'close_on_leave': false}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    assert_null(f->cfg);
    assert_int_equal(f->diag.n, 1);
    line = br_asprintf("tracker.token: cannot read %s/conf/secrets/none.txt: No such file or directory", f->dir);
    expect_problem(f, line);
    free(line);
}

static void
test_env_missing_names_variable_only(void **state)
{
    struct fx *f = *state;
    static const char *const extra[] = {"tooShortSecret", "has space in it 1234", NULL};

    unsetenv("BRT_NOT_SET_ANYWHERE");
    setenv("BRT_SHORT_HOOK", "tooShortSecret", 1);
    setenv("BRT_SPACE_HOOK", "has space in it 1234", 1);
    setenv("BRT_EMPTY", "", 1);
    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:BRT_NOT_SET_ANYWHERE', 'webhook_secret': 'env:BRT_SHORT_HOOK'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:BRT_SPACE_HOOK',\n"
              "               'chatra': {'public_key': 'env:BRT_EMPTY', 'secret_key': 'env:'},\n"
              "               'default_agent_id': 'A', 'close_on_leave': false}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    assert_null(f->cfg);
    expect_problem(f, "tracker.token: environment variable BRT_NOT_SET_ANYWHERE is not set");
    expect_problem(f, "tracker.webhook_secret: must be at least 16 characters long "
                      "(it is the webhook's only authentication)");
    expect_problem(f, "channels[0].webhook_secret: may contain only letters, digits and - _ . ~ "
                      "(it is part of a URL)");
    expect_problem(f, "channels[0].chatra.public_key: environment variable BRT_EMPTY is not set");
    expect_problem(f, "channels[0].chatra.secret_key: \"env:\" needs a variable name");
    assert_int_equal(f->diag.n, 5);
    expect_no_secret_in_diag(f, extra);
    unsetenv("BRT_SHORT_HOOK");
    unsetenv("BRT_SPACE_HOOK");
    unsetenv("BRT_EMPTY");
}

/* ---- syntax errors ---------------------------------------------------------- */

static void
test_json_syntax_error(void **state)
{
    struct fx *f = *state;
    char *prefix;

    write_cfg(f, "cfg.json", "{\n  'listen': {'host': '127.0.0.1',},\n  'tracker': {}\n}\n");
    assert_int_equal(load(f), BR_EINVAL);
    assert_null(f->cfg);
    assert_int_equal(f->diag.n, 1);
    /* jansson reports the position of the offending token: the '}' in column 34. */
    prefix = br_asprintf("%s:2:34: string or '}' expected", f->cfg_path);
    if (strcmp(f->diag.items[0], prefix) != 0) {
        dump_diag(&f->diag);
        fail_msg("want \"%s\"", prefix);
    }
    free(prefix);
}

/*
 * A literal secret is a secret too.  jansson's error text quotes up to 20
 * characters of the input "near" the error, so a typo inside or right
 * after a short literal secret (an API token, a Chatra key) must not put
 * the secret into the printed diagnostic.
 */
static void
test_json_syntax_error_does_not_echo_secret(void **state)
{
    struct fx *f = *state;
    static const char *const secrets[] = {"pfTok_8x2Lq7", NULL};
    char *prefix;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix',\n"
              "             'token': 'pfTok_8x2Lq7\\q'}}\n");
    assert_int_equal(load(f), BR_EINVAL);
    assert_int_equal(f->diag.n, 1);
    prefix = br_asprintf("%s:2:", f->cfg_path);
    assert_memory_equal(f->diag.items[0], prefix, strlen(prefix));
    free(prefix);
    expect_no_secret_in_diag(f, secrets);
}

static void
test_json_duplicate_key(void **state)
{
    struct fx *f = *state;
    char *prefix;

    write_cfg(f, "cfg.json", "{'listen': {'port': 1},\n 'listen': {'port': 2}}\n");
    assert_int_equal(load(f), BR_EINVAL);
    assert_int_equal(f->diag.n, 1);
    prefix = br_asprintf("%s:2:", f->cfg_path);
    assert_memory_equal(f->diag.items[0], prefix, strlen(prefix));
    assert_non_null(strstr(f->diag.items[0], "duplicate object key"));
    free(prefix);
}

static void
test_missing_file_and_not_object(void **state)
{
    struct fx *f = *state;
    char *line;

    f->cfg_path = br_asprintf("%s/does-not-exist.json", f->dir);
    assert_int_equal(load(f), BR_EINVAL);
    assert_int_equal(f->diag.n, 1);
    line = br_asprintf("%s: unable to open %s: No such file or directory", f->cfg_path, f->cfg_path);
    assert_string_equal(f->diag.items[0], line);
    free(line);
    br_diag_dispose(&f->diag);

    write_cfg(f, "cfg.json", "['a', 'b']\n");
    assert_int_equal(load(f), BR_EINVAL);
    assert_int_equal(f->diag.n, 1);
    line = br_asprintf("%s: the top level must be a JSON object", f->cfg_path);
    assert_string_equal(f->diag.items[0], line);
    free(line);
}

/* ---- log.format and listen.trusted_proxies ------------------------------------ */

#define MINIMAL_REST \
    " 'tracker': {'kind': 'planfix', 'url': 'http://pf.example.com/rest',\n" \
    "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n" \
    " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n" \
    "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n" \
    "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n" \
    "               'default_agent_id': 'A', 'task': {'closed_status_id': 7}}]}\n"

static void
test_log_format_and_trusted_proxies(void **state)
{
    struct fx *f = *state;
    const struct br_config *c;

    write_cfg(f, "cfg.json",
              "{'log': {'format': 'json'},\n"
              " 'listen': {'trusted_proxies': ['127.0.0.1', '10.0.0.0/8', '2001:db8::/32', '::1']},\n" MINIMAL_REST);
    load_ok(f);
    c = f->cfg;
    assert_string_equal(c->log_format, "json");
    assert_int_equal(c->n_trusted_proxies, 4);
    assert_int_equal(c->trusted_proxies[1].prefix, 8);
    assert_int_equal(c->trusted_proxies[2].prefix, 32);
    assert_int_equal(c->trusted_proxies[3].prefix, 128);
    br_config_free(f->cfg);
    f->cfg = NULL;

    write_cfg(f, "cfg.json", "{'log': {'format': 'text'}, 'listen': {'trusted_proxies': []},\n" MINIMAL_REST);
    load_ok(f);
    assert_string_equal(f->cfg->log_format, "text");
    assert_int_equal(f->cfg->n_trusted_proxies, 0);
    br_config_free(f->cfg);
    f->cfg = NULL;

    write_cfg(f, "cfg.json",
              "{'log': {'format': 'JSON', 'colour': true},\n"
              " 'listen': {'trusted_proxies': ['10.0.0.1/8', '300.1.1.1', '::/129', 7, 'proxy.example.com',\n"
              "                                '10.0.0.0/8x', '127.0.0.1']},\n" MINIMAL_REST);
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "log.format: must be \"text\" or \"json\"");
    expect_problem(f, "log.colour: unknown setting");
    expect_problem(f, "listen.trusted_proxies[0]: \"10.0.0.1/8\" has bits set past its /8 prefix "
                      "(the range starts lower)");
    expect_problem(f, "listen.trusted_proxies[1]: \"300.1.1.1\" is not an IP address or a range such as "
                      "10.0.0.0/8 or 2001:db8::/32");
    expect_problem(f, "listen.trusted_proxies[2]: \"::/129\" has a bad prefix length after '/' (0 to 128)");
    expect_problem(f, "listen.trusted_proxies[3]: must be a string: an address or a range such as \"10.0.0.0/8\"");
    expect_problem(f, "listen.trusted_proxies[4]: \"proxy.example.com\" is not an IP address or a range such "
                      "as 10.0.0.0/8 or 2001:db8::/32");
    expect_problem(f, "listen.trusted_proxies[5]: \"10.0.0.0/8x\" has a bad prefix length after '/' (0 to 32)");
    assert_int_equal(f->diag.n, 8);

    br_diag_dispose(&f->diag);
    write_cfg(f, "cfg.json", "{'listen': {'trusted_proxies': '127.0.0.1'},\n" MINIMAL_REST);
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "listen.trusted_proxies: must be a list of addresses or ranges such as "
                      "[\"127.0.0.1\", \"10.0.0.0/8\"]");
}

/* ---- batching: tracker.coalesce_max_s and channels[].mirror_agent_messages ---- */

#define BATCHING_CFG(TRACKER_EXTRA, CHANNEL_EXTRA) \
    "{'tracker': {'kind': 'planfix', 'url': 'http://pf.example.com/rest'," TRACKER_EXTRA "\n" \
    "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n" \
    " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n" \
    "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n" \
    "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'}," CHANNEL_EXTRA "\n" \
    "               'default_agent_id': 'A', 'task': {'closed_status_id': 7}}]}\n"

static void
test_batching_settings(void **state)
{
    struct fx *f = *state;

    /* The defaults: 300 s at most, agents' messages their own comments. */
    write_cfg(f, "cfg.json", BATCHING_CFG("", ""));
    load_ok(f);
    assert_int_equal(f->cfg->coalesce_ms, 2000);
    assert_int_equal(f->cfg->coalesce_max_s, 300);
    assert_int_equal(f->cfg->channels[0].mirror_agent, BR_MIRROR_AGENT_COMMENT);
    br_config_free(f->cfg);
    f->cfg = NULL;

    write_cfg(f, "cfg.json", BATCHING_CFG(" 'coalesce_ms': 5000, 'coalesce_max_s': 5,",
                                          " 'mirror_agent_messages': 'with_visitor',"));
    load_ok(f);
    assert_int_equal(f->cfg->coalesce_max_s, 5);
    assert_int_equal(f->cfg->channels[0].mirror_agent, BR_MIRROR_AGENT_WITH_VISITOR);
    br_config_free(f->cfg);
    f->cfg = NULL;

    /* 0: never wider, whatever coalesce_ms is. */
    write_cfg(f, "cfg.json", BATCHING_CFG(" 'coalesce_ms': 60000, 'coalesce_max_s': 0,",
                                          " 'mirror_agent_messages': 'off',"));
    load_ok(f);
    assert_int_equal(f->cfg->coalesce_max_s, 0);
    assert_int_equal(f->cfg->channels[0].mirror_agent, BR_MIRROR_AGENT_OFF);
    br_config_free(f->cfg);
    f->cfg = NULL;

    write_cfg(f, "cfg.json", BATCHING_CFG(" 'mirror_agent_messages': 'comment', 'coalesce_max_s': 3601,",
                                          " 'mirror_agent_messages': 'yes',"));
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "tracker.mirror_agent_messages: unknown setting");
    expect_problem(f, "tracker.coalesce_max_s: must be between 0 and 3600");
    expect_problem(f, "channels[0].mirror_agent_messages: must be \"comment\", \"with_visitor\" or \"off\"");
    br_diag_dispose(&f->diag);

    write_cfg(f, "cfg.json", BATCHING_CFG(" 'coalesce_ms': 2500, 'coalesce_max_s': 2,", ""));
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "tracker.coalesce_max_s: is 2 s, shorter than coalesce_ms (2500 ms): set 0 (never wider) or "
                      "at least 3");
    assert_int_equal(f->diag.n, 1);
}

/* ---- the admin page (admin.token) ---------------------------------------------- */

static void
test_admin(void **state)
{
    struct fx *f = *state;

    /* Off by default. */
    write_cfg(f, "cfg.json", "{" MINIMAL_REST);
    load_ok(f);
    assert_null(f->cfg->admin_token);
    assert_int_equal(f->cfg->admin_session_ttl_s, 43200);
    br_config_free(f->cfg);
    f->cfg = NULL;

    /* On, from a file, with a shorter login. */
    free(write_file(f, "admin.token", "a-long-enough-admin-token"));
    write_cfg(f, "cfg.json", "{'admin': {'token': 'file:admin.token', 'session_ttl_s': 3600},\n" MINIMAL_REST);
    load_ok(f);
    assert_string_equal(f->cfg->admin_token, "a-long-enough-admin-token");
    assert_int_equal(f->cfg->admin_session_ttl_s, 3600);
    br_config_free(f->cfg);
    f->cfg = NULL;

    write_cfg(f, "cfg.json", "{'admin': {'token': 'short-token', 'session_ttl_s': 5, 'user': 'me'},\n" MINIMAL_REST);
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "admin.token: must be at least 16 characters long (it is the admin page's only password)");
    expect_problem(f, "admin.session_ttl_s: must be between 60 and 2592000");
    expect_problem(f, "admin.user: unknown setting");
    assert_int_equal(f->diag.n, 3);
    {
        const char *const extra[] = {"short-token", NULL};
        expect_no_secret_in_diag(f, extra);
    }

    br_diag_dispose(&f->diag);
    write_cfg(f, "cfg.json", "{'admin': {'token': 'env:BRT_NOT_SET_ANYWHERE'},\n" MINIMAL_REST);
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "admin.token: environment variable BRT_NOT_SET_ANYWHERE is not set");
}

/* ---- enrich.chartmogul: the CRM card ------------------------------------------ */

static void
test_enrich(void **state)
{
    struct fx *f = *state;

    /* Off without the section. */
    write_cfg(f, "cfg.json", "{" MINIMAL_REST);
    load_ok(f);
    assert_null(f->cfg->crm);
    br_config_free(f->cfg);
    f->cfg = NULL;

    /* The defaults. */
    assert_int_equal(setenv("BRT_CM_KEY", "cm-key-123456", 1), 0);
    write_cfg(f, "cfg.json", "{'enrich': {'chartmogul': {'api_key': 'env:BRT_CM_KEY'}},\n" MINIMAL_REST);
    load_ok(f);
    assert_non_null(f->cfg->crm);
    assert_string_equal(f->cfg->crm->name, "chartmogul");
    assert_string_equal(f->cfg->crm_api_key, "cm-key-123456");
    assert_string_equal(f->cfg->crm_url, "https://api.chartmogul.com");
    assert_true(f->cfg->crm_rps == 5);
    assert_int_equal(f->cfg->crm_cache_ttl_s, 86400);
    assert_int_equal(f->cfg->crm_timeout_ms, 5000);
    br_config_free(f->cfg);
    f->cfg = NULL;

    /* Every key set. */
    write_cfg(f, "cfg.json", "{'enrich': {'chartmogul': {'api_key': 'env:BRT_CM_KEY', 'url': 'http://127.0.0.1:9/',"
                             " 'requests_per_second': 2.5, 'cache_ttl_s': 60, 'timeout_ms': 1500}},\n" MINIMAL_REST);
    load_ok(f);
    assert_string_equal(f->cfg->crm_url, "http://127.0.0.1:9");
    assert_true(f->cfg->crm_rps == 2.5);
    assert_int_equal(f->cfg->crm_cache_ttl_s, 60);
    assert_int_equal(f->cfg->crm_timeout_ms, 1500);
    br_config_free(f->cfg);
    f->cfg = NULL;

    /* Problems: no key, a bad timeout, a typo, an unknown provider. */
    write_cfg(f, "cfg.json", "{'enrich': {'chartmogul': {'timeout_ms': 5, 'cache_tll_s': 5}, 'hubspot': {}},\n"
                             MINIMAL_REST);
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "enrich.chartmogul.api_key: is required");
    expect_problem(f, "enrich.chartmogul.timeout_ms: must be between 100 and 600000");
    expect_problem(f, "enrich.chartmogul.cache_tll_s: unknown setting");
    expect_problem(f, "enrich.hubspot: unknown setting");
    {
        const char *const extra[] = {"cm-key-123456", NULL};
        expect_no_secret_in_diag(f, extra);
    }
    unsetenv("BRT_CM_KEY");
}

/* ---- every problem at once ---------------------------------------------------- */

static void
test_all_problems_at_once(void **state)
{
    struct fx *f = *state;
    static const char *const extra[] = {"short1", "supportHookSecret-0123", NULL};

    setenv("BRT_SHORT", "short1", 1);
    write_cfg(f, "cfg.json",
              "{\n"
              "  'listen': {'hots': 'x', 'port': 70000},\n"
              "  'log': {'level': 'loud'},\n"
              "  'store': {'kind': 'postgres'},\n"
              "  'tracker': {'kind': 'planfix', 'url': 'ftp://pf.example.com',\n"
              "              'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:BRT_SHORT',\n"
              "              'requests_per_second': 0, 'daily_quota': -1},\n"
              "  'employees': [{'name': 'Anna', 'email': 'anna.example.com', 'tracker_user': 'user:5'},\n"
              "                {'name': 'Bob', 'email': 'bob@example.com', 'tracker_user': '7'}],\n"
              "  'channels': [\n"
              "    {'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "     'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "     'default_agent_id': 'A', 'employees': ['Nobody@Example.com'], 'watchers': ['user:7', 5],\n"
              "     'send_as_employee': 'yes',\n"
              "     'task': {'template_id': 'twelve', 'title': 'Hi {{visitor.nmae}}', 'colour': 'red'}},\n"
              "    {'name': 'shop', 'webhook_secret': 'supportHookSecret-0123',\n"
              "     'chatra': {'public_key': 'p', 'secret_key': 'env:CHATRA_SUPPORT_SECRET_KEY'},\n"
              "     'default_agent_id': 'B', 'close_on_leave': false}\n"
              "  ]\n"
              "}\n");
    assert_int_equal(load(f), BR_EINVAL);
    assert_null(f->cfg);

    expect_problem(f, "listen.hots: unknown setting");
    expect_problem(f, "listen.port: must be between 0 and 65535");
    expect_problem(f, "log.level: must be one of debug, info, warn, error");
    expect_problem(f, "store.kind: \"postgres\" is not supported (supported: sqlite)");
    expect_problem(f, "tracker.url: must start with http:// or https://");
    expect_problem(f, "tracker.webhook_secret: must be at least 16 characters long "
                      "(it is the webhook's only authentication)");
    expect_problem(f, "tracker.requests_per_second: must be between 0.01 and 1000");
    expect_problem(f, "tracker.daily_quota: must be between 0 and 10000000");
    expect_problem(f, "employees[0].email: is not an e-mail address");
    expect_problem(f, "employees[1].tracker_user: \"7\" is not a Planfix user id such as \"user:5\"");
    expect_problem(f, "channels[0].employees[0]: \"nobody@example.com\" is not in the top-level employees list");
    expect_problem(f, "channels[0].watchers[1]: must be a tracker user id such as \"user:7\"");
    expect_problem(f, "channels[0].send_as_employee: must be true or false");
    expect_problem(f, "channels[0].task.colour: unknown setting");
    expect_problem(f, "channels[0].task.template_id: must be an integer");
    expect_problem(f, "channels[0].task.closed_status_id: is required when close_on_leave is true (a status id of 1 or more; "
                      "tracker.closed_status_id sets it for every channel)");
    expect_problem(f, "channels[0].task.title:1:4: unknown template variable \"visitor.nmae\"");
    expect_problem(f, "channels[1].name: \"shop\" is already used by channels[0]");
    if (f->diag.n != 18) {
        dump_diag(&f->diag);
        fail_msg("want exactly 18 problems, got %zu", f->diag.n);
    }
    expect_no_secret_in_diag(f, extra);
    unsetenv("BRT_SHORT");
}

static void
test_redmine(void **state)
{
    struct fx *f = *state;

    setenv("REDMINE_KEY", "rm-key-0123456789abcdef", 1);
    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'redmine', 'url': 'http://127.0.0.1:3000/', 'api_key': 'env:REDMINE_KEY',\n"
              "             'project': 'chats', 'closed_status_id': 5},\n"
              " 'employees': [{'name': 'Anna', 'email': 'anna@example.com', 'tracker_user': 'anna'}],\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_id': 'A', 'employees': ['anna@example.com'], 'watchers': ['7', 'user:9'],\n"
              "   'task': {'custom_fields': [{'id': 3, 'value': '{{visitor.email}}'}]}},\n"
              "  {'name': 'b2b', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_id': 'A', 'task': {'closed_status_id': 6}}]}\n");
    load_ok(f);
    assert_string_equal(f->cfg->tracker_kind, "redmine");
    assert_string_equal(f->cfg->tracker_url, "http://127.0.0.1:3000");
    assert_string_equal(f->cfg->tracker_token, "rm-key-0123456789abcdef");
    assert_string_equal(f->cfg->tracker_project, "chats");
    assert_null(f->cfg->tracker_webhook_secret);
    /* Redmine's defaults: more requests per second than Planfix, and polling on (no webhooks). */
    assert_true(f->cfg->tracker_rps == 5);
    assert_int_equal(f->cfg->poll_interval_s, 10);
    assert_int_equal(f->cfg->tracker_daily_quota, 0); /* Redmine counts no requests a day */
    assert_int_equal(f->cfg->channels[0].closed_status_id, 5);
    assert_int_equal(f->cfg->channels[1].closed_status_id, 6);
    assert_int_equal(f->cfg->channels[0].n_watchers, 2);
    assert_string_equal(f->cfg->channels[0].watchers[1], "9");
    assert_int_equal(f->cfg->channels[0].n_custom_fields, 1);
    assert_int_equal(f->cfg->channels[0].custom_fields[0].id, 3);
    assert_non_null(f->cfg->channels[0].custom_fields[0].value);
    unsetenv("REDMINE_KEY");
}

static void
test_redmine_problems(void **state)
{
    struct fx *f = *state;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'redmine', 'url': 'http://127.0.0.1:3000', 'token': 'x',\n"
              "             'webhook_secret': 'y', 'poll_interval_s': 0, 'daily_quota': 2.5},\n"
              " 'companies': {'enabled': true},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_id': 'A', 'watchers': ['anna'], 'contact': {'template_id': 4},\n"
              "   'task': {'template_id': 2, 'closed_status_id': 5,\n"
              "            'custom_fields': [{'id': 0, 'value': '{{visitor.nmae}}'}, {'id': 2}]}}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "tracker.token: is a Planfix setting; Redmine uses api_key and has no webhooks (replies are polled)");
    expect_problem(f, "tracker.webhook_secret: is a Planfix setting; Redmine uses api_key and has no webhooks (replies are polled)");
    expect_problem(f, "tracker.api_key: is required");
    expect_problem(f, "tracker.project: is required");
    expect_problem(f, "tracker.poll_interval_s: must be 1 or more for Redmine: polling is how replies arrive");
    expect_problem(f, "tracker.daily_quota: must be an integer");
    expect_problem(f, "companies.enabled: Redmine has no contacts or companies; the visitor's details go into the issue");
    expect_problem(f, "channels[0].watchers[0]: must be a Redmine user id such as \"7\"");
    expect_problem(f, "channels[0].contact: Redmine has no contacts; the visitor's details go into the issue");
    expect_problem(f, "channels[0].task.template_id: Redmine has no task templates (the issue is made from title and description)");
    expect_problem(f, "channels[0].task.custom_fields[0].id: must be between 1 and 2147483647");
    expect_problem(f, "channels[0].task.custom_fields[0].value:1:1: unknown template variable \"visitor.nmae\"");
    expect_problem(f, "channels[0].task.custom_fields[1]: needs a value template");
    if (f->diag.n != 13) {
        dump_diag(&f->diag);
        fail_msg("want exactly 13 problems, got %zu", f->diag.n);
    }

    /* Planfix refuses Redmine's settings (custom fields are Planfix's too: on tasks and contacts). */
    br_diag_dispose(&f->diag);
    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://x.planfix.com/rest', 'token': 'env:PLANFIX_TOKEN',\n"
              "             'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET', 'api_key': 'k', 'project': 'p'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_id': 'A', 'close_on_leave': false,\n"
              "   'task': {'custom_fields': [{'id': 1, 'value': 'x'}]},\n"
              "   'contact': {'custom_fields': [{'id': 7, 'value': '{{visitor.phone}}'}, {'id': 8, 'value': '{{visitr}}'}]}}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "tracker.api_key: is a Redmine setting (tracker.kind is \"planfix\")");
    expect_problem(f, "tracker.project: is a Redmine setting (tracker.kind is \"planfix\")");
    expect_problem(f, "channels[0].contact.custom_fields[1].value:1:1: unknown template variable \"visitr\"");
    if (f->diag.n != 3) {
        dump_diag(&f->diag);
        fail_msg("want exactly 3 problems, got %zu", f->diag.n);
    }
}

static void
test_required_parts_missing(void **state)
{
    struct fx *f = *state;

    write_cfg(f, "cfg.json", "{'listen': {}}\n");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "tracker: is required");
    expect_problem(f, "channels: must be a non-empty list of channels");
    assert_int_equal(f->diag.n, 2);
    br_diag_dispose(&f->diag);

    write_cfg(f, "cfg.json",
              "{'tracker': {'url': 'https://pf.example.com'}, 'employees': {}, 'channels': [{}, 'x']}\n");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "tracker.kind: is required");
    expect_problem(f, "tracker.token: is required");
    expect_problem(f, "tracker.webhook_secret: is required");
    expect_problem(f, "employees: must be a list");
    expect_problem(f, "channels[0].name: is required");
    expect_problem(f, "channels[0].webhook_secret: is required");
    expect_problem(f, "channels[0].chatra: is required");
    expect_problem(f, "channels[0].default_agent_id: is required (or default_agent_email: the Chatra agent's e-mail)");
    expect_problem(f, "channels[0].task.closed_status_id: is required when close_on_leave is true (a status id of 1 or more; "
                      "tracker.closed_status_id sets it for every channel)");
    expect_problem(f, "channels[1]: must be an object");
    assert_int_equal(f->diag.n, 10);
}

static void
test_unknown_top_level_key(void **state)
{
    struct fx *f = *state;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest', 'tokn': 'x',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'chanels': [],\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
              "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY', 'rps': 3},\n"
              "               'default_agent_id': 'A', 'close_on_leave': false, 'contact': {'id': 1}}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "chanels: unknown setting");
    expect_problem(f, "tracker.tokn: unknown setting");
    expect_problem(f, "channels[0].chatra.rps: unknown setting");
    expect_problem(f, "channels[0].contact.id: unknown setting");
    assert_int_equal(f->diag.n, 4);
}

/* metrics.token: off by default; a bearer token from the file, env: or file:, checked. */
static void
test_metrics_token(void **state)
{
    struct fx *f = *state;
    static const char base[] =
        "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
        "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
        " %s\n"
        " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
        "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
        "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
        "               'default_agent_id': 'A', 'close_on_leave': false}]}\n";
    static const struct {
        const char *section;
        const char *problem; /* NULL: loads */
        const char *token;
    } cases[] = {
        {"", NULL, NULL},
        {"'metrics': {},", NULL, NULL},
        {"'metrics': {'token': 'Abc-def_ghi.jkl~mno+pq/r='},", NULL, "Abc-def_ghi.jkl~mno+pq/r="},
        {"'metrics': {'token': 'env:METRICS_TOKEN_TEST'},", NULL, "metricsTokenFromEnv-0123"},
        {"'metrics': {'token': 'file:metrics.token'},", NULL, "metricsTokenFromFile-456"},
        {"'metrics': {'token': 'shortToken12345'},", "metrics.token: must be at least 16 characters long", NULL},
        {"'metrics': {'token': 'has a space in it 0123'},",
         "metrics.token: may contain only letters, digits and - . _ ~ + / =", NULL},
        {"'metrics': {'token': 12345678901234567},", "metrics.token: must be a string", NULL},
        {"'metrics': {'token': 'env:METRICS_TOKEN_UNSET'},",
         "metrics.token: environment variable METRICS_TOKEN_UNSET is not set", NULL},
        {"'metrics': {'tokn': 'metricsTokenTypo-0123'},", "metrics.tokn: unknown setting", NULL},
        {"'metrics': 'metricsToken-0123456',", "metrics: must be an object", NULL},
    };

    setenv("METRICS_TOKEN_TEST", "metricsTokenFromEnv-0123", 1);
    unsetenv("METRICS_TOKEN_UNSET");
    free(write_file(f, "metrics.token", "metricsTokenFromFile-456\n"));
    for (size_t i = 0; i < BR_ARRAY_SIZE(cases); i++) {
        char *text = br_asprintf(base, cases[i].section);
        write_cfg(f, "cfg.json", text);
        free(text);
        if (cases[i].problem == NULL) {
            load_ok(f);
            if (cases[i].token == NULL)
                assert_null(f->cfg->metrics_token);
            else
                assert_string_equal(f->cfg->metrics_token, cases[i].token);
            br_config_free(f->cfg);
            f->cfg = NULL;
        } else {
            assert_int_equal(load(f), BR_EINVAL);
            expect_problem(f, cases[i].problem);
            assert_int_equal(f->diag.n, 1);
            expect_no_secret_in_diag(f, (const char *const[]){"shortToken12345", "has a space in it 0123",
                                                              "metricsToken-0123456", NULL});
            br_diag_dispose(&f->diag);
        }
    }
    unsetenv("METRICS_TOKEN_TEST");
}

static void
test_short_webhook_secret(void **state)
{
    struct fx *f = *state;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'abcdefghijklmno',\n"
              "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
              "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "               'default_agent_id': 'A', 'close_on_leave': false}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    assert_int_equal(f->diag.n, 1);
    expect_problem(f, "channels[0].webhook_secret: must be at least 16 characters long "
                      "(it is the webhook's only authentication)");
    expect_no_secret_in_diag(f, (const char *const[]){"abcdefghijklmno", NULL});
    br_diag_dispose(&f->diag);

    /* Sixteen characters are enough. */
    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'abcdefghijklmnop',\n"
              "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
              "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "               'default_agent_id': 'A', 'close_on_leave': false}]}\n");
    load_ok(f);
}

static void
test_channel_employee_and_duplicate_names(void **state)
{
    struct fx *f = *state;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'employees': [{'name': 'Anna', 'email': 'anna@example.com', 'tracker_user': 'user:5'},\n"
              "               {'name': 'Anna 2', 'email': 'ANNA@example.com', 'tracker_user': 'user:6'}],\n"
              " 'channels': [\n"
              "  {'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_id': 'A', 'close_on_leave': false,\n"
              "   'employees': ['anna@example.com', 'boris@example.com', 3]},\n"
              "  {'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_id': 'A', 'close_on_leave': false},\n"
              "  {'name': 'shop/2', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_id': 'A', 'close_on_leave': false},\n"
              "  {'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_id': 'A', 'close_on_leave': false}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "employees[1].email: is the same as employees[0].email");
    expect_problem(f, "channels[0].employees[1]: \"boris@example.com\" is not in the top-level employees list");
    expect_problem(f, "channels[0].employees[2]: must be an employee e-mail");
    expect_problem(f, "channels[1].name: \"shop\" is already used by channels[0]");
    expect_problem(f, "channels[2].name: may contain only letters, digits, - and _ (it is part of the webhook URL)");
    expect_problem(f, "channels[3].name: \"shop\" is already used by channels[0]");
    expect_problem(f, "channels[3].name: \"shop\" is already used by channels[1]");
    assert_int_equal(f->diag.n, 7);
    expect_no_secret_in_diag(f, NULL);
}

/* ---- employees and agents known by e-mail -------------------------------------- */

/*
 * An employee with only a name and an e-mail is complete (the tracker user
 * is found by e-mail); the default agent may be given by e-mail; explicit
 * ids are kept beside the e-mail (they win when the bridge sends).
 */
static void
test_employees_and_default_agent_by_email(void **state)
{
    struct fx *f = *state;
    const struct br_config *c;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'employees': [{'name': 'Anna', 'email': 'Anna@Example.com'},\n"
              "               {'name': 'Boris', 'email': 'boris@example.com', 'tracker_user': 'user:6',\n"
              "                'chatra_agent_id': 'agentBoris'}],\n"
              " 'channels': [\n"
              "  {'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_email': 'ANNA@example.com', 'close_on_leave': false,\n"
              "   'employees': ['anna@example.com']},\n"
              "  {'name': 'b2b', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_email': 'Support@Example.com', 'default_agent_name': 'Support team',\n"
              "   'close_on_leave': false},\n"
              "  {'name': 'both', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_id': 'A', 'default_agent_email': 'support@example.com',\n"
              "   'default_agent_name': 'Support', 'close_on_leave': false}]}\n");
    load_ok(f);
    c = f->cfg;
    assert_string_equal(c->employees[0].email, "anna@example.com");
    assert_null(c->employees[0].tracker_user);
    assert_null(c->employees[0].chatra_agent_id);
    assert_string_equal(c->employees[1].tracker_user, "user:6");
    assert_string_equal(c->employees[1].chatra_agent_id, "agentBoris");
    assert_ptr_equal(br_config_employee_by_email(c, "anna@example.com"), &c->employees[0]);
    assert_ptr_equal(br_config_employee_by_email(c, "boris@example.com"), &c->employees[1]);
    assert_null(br_config_employee_by_email(c, "Anna@Example.com")); /* callers pass the normal form */
    assert_null(br_config_employee_by_email(c, NULL));
    /* Without a tracker user an employee is never found by one. */
    assert_ptr_equal(br_config_employee_by_tracker_user(c, "user:6"), &c->employees[1]);
    assert_null(br_config_employee_by_tracker_user(c, "user:5"));
    assert_ptr_equal(c->channels[0].employees[0], &c->employees[0]);
    assert_null(br_channel_employee_by_tracker_user(&c->channels[0], "user:5"));
    /* The default agent's name comes from the employee with that e-mail ... */
    assert_null(c->channels[0].default_agent_id);
    assert_string_equal(c->channels[0].default_agent_email, "anna@example.com");
    assert_string_equal(c->channels[0].default_agent_name, "Anna");
    /* ... or is given. */
    assert_string_equal(c->channels[1].default_agent_email, "support@example.com");
    assert_string_equal(c->channels[1].default_agent_name, "Support team");
    /* Both: kept both (the id wins when sending). */
    assert_string_equal(c->channels[2].default_agent_id, "A");
    assert_string_equal(c->channels[2].default_agent_email, "support@example.com");
}

static void
test_employee_and_default_agent_problems(void **state)
{
    struct fx *f = *state;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'employees': [{'name': 'Anna', 'email': 'anna@example.com', 'tracker_user': ''},\n"
              "               {'name': 'Boris', 'tracker_user': 'user:6'}],\n"
              " 'channels': [\n"
              "  {'name': 'a', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_email': 'support@example.com', 'close_on_leave': false},\n"
              "  {'name': 'b', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_email': 'support.example.com', 'default_agent_name': 'S', 'close_on_leave': false},\n"
              "  {'name': 'c', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_name': 'Nobody', 'close_on_leave': false},\n"
              "  {'name': 'd', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "   'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY', 'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "   'default_agent_id': '', 'default_agent_email': 7, 'close_on_leave': false}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "employees[0].tracker_user: must not be empty (leave it out to find the tracker user by e-mail)");
    expect_problem(f, "employees[1].email: is required");
    expect_problem(f, "channels[0].default_agent_name: is required with default_agent_email (the name the chat "
                      "shows), unless an employees[] entry has that e-mail");
    expect_problem(f, "channels[1].default_agent_email: is not an e-mail address");
    expect_problem(f, "channels[2].default_agent_id: is required (or default_agent_email: the Chatra agent's e-mail)");
    expect_problem(f, "channels[3].default_agent_id: must not be empty");
    expect_problem(f, "channels[3].default_agent_email: must be a string");
    if (f->diag.n != 7) {
        dump_diag(&f->diag);
        fail_msg("want exactly 7 problems, got %zu", f->diag.n);
    }
}

/* ---- where the default templates are ------------------------------------------ */

static const char templates_dir_config[] =
    "{%s'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
    "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
    " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
    "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
    "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
    "               'default_agent_id': 'A', 'close_on_leave': false}]}\n";

static void
write_templates_dir_cfg(struct fx *f, const char *top)
{
    char *text = br_asprintf(templates_dir_config, top);
    write_cfg(f, "conf/cfg.json", text);
    free(text);
}

/*
 * A copy of the source tree's templates in dir/rel (links to its files),
 * with en/task_title.txt replaced by title.
 */
static char *
make_templates(struct fx *f, const char *rel, const char *title)
{
    const char *src = getenv("BR_SOURCE_DIR");
    char *from = br_asprintf("%s/templates/en", src && *src ? src : BR_TEST_SOURCE_DIR);
    char *title_rel = br_asprintf("%s/en/task_title.txt", rel);
    char *dir = br_asprintf("%s/%s", f->dir, rel);
    DIR *d = opendir(from);
    struct dirent *e;

    free(write_file(f, title_rel, title));
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char *target, *link;
        if (e->d_name[0] == '.' || strcmp(e->d_name, "task_title.txt") == 0)
            continue;
        target = br_asprintf("%s/%s", from, e->d_name);
        link = br_asprintf("%s/en/%s", dir, e->d_name);
        assert_int_equal(symlink(target, link), 0);
        free(target);
        free(link);
    }
    closedir(d);
    free(from);
    free(title_rel);
    return dir;
}

static char *
title_of(struct fx *f)
{
    return render(f->cfg->channels[0].task_title, "{\"visitor\":{\"name\":\"Ann\"},\"channel\":{\"name\":\"shop\"}}",
                  BR_TPL_ESCAPE_NONE);
}

/* A binary in the build tree (this test) reads the source tree's templates; the environment
 * overrides that, and the config's templates_dir (relative to the config) overrides both. */
static void
test_templates_dir(void **state)
{
    struct fx *f = *state;
    const char *src = getenv("BR_SOURCE_DIR");
    char *want = br_asprintf("%s/templates", src && *src ? src : BR_TEST_SOURCE_DIR);
    char *env_dir = make_templates(f, "env-tpl", "From the environment: {{visitor.name}}");
    char *cfg_dir = make_templates(f, "conf/my-tpl", "From the config: {{visitor.name}}");
    char *text;

    unsetenv("BR_TEMPLATES_DIR");
    write_templates_dir_cfg(f, "");
    load_ok(f);
    assert_string_equal(f->cfg->templates_dir, want);
    text = title_of(f);
    assert_string_equal(text, "Chat with Ann (shop)");
    free(text);
    br_config_free(f->cfg);
    f->cfg = NULL;

    assert_int_equal(setenv("BR_TEMPLATES_DIR", env_dir, 1), 0);
    load_ok(f);
    assert_string_equal(f->cfg->templates_dir, env_dir);
    text = title_of(f);
    assert_string_equal(text, "From the environment: Ann");
    free(text);
    br_config_free(f->cfg);
    f->cfg = NULL;

    write_templates_dir_cfg(f, "'templates_dir': 'my-tpl', ");
    load_ok(f);
    assert_string_equal(f->cfg->templates_dir, cfg_dir);
    text = title_of(f);
    assert_string_equal(text, "From the config: Ann");
    free(text);

    unsetenv("BR_TEMPLATES_DIR");
    free(want);
    free(env_dir);
    free(cfg_dir);
}

/* A templates directory that is not there is one problem, not one per template. */
static void
test_templates_dir_problems(void **state)
{
    struct fx *f = *state;
    char *line;

    unsetenv("BR_TEMPLATES_DIR");
    write_templates_dir_cfg(f, "'templates_dir': 'nowhere', ");
    assert_int_equal(load(f), BR_EINVAL);
    line = br_asprintf("templates_dir: %s/conf/nowhere: No such file or directory", f->dir);
    expect_problem(f, line);
    free(line);
    assert_int_equal(f->diag.n, 1);
    br_config_free(f->cfg);
    f->cfg = NULL;
    br_diag_dispose(&f->diag);

    free(write_file(f, "conf/a-file", "x"));
    write_templates_dir_cfg(f, "'templates_dir': 'a-file', ");
    assert_int_equal(load(f), BR_EINVAL);
    line = br_asprintf("templates_dir: %s/conf/a-file: Not a directory", f->dir);
    expect_problem(f, line);
    free(line);
    assert_int_equal(f->diag.n, 1);
    br_config_free(f->cfg);
    f->cfg = NULL;
    br_diag_dispose(&f->diag);

    write_templates_dir_cfg(f, "'templates_dir': '', ");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "templates_dir: must not be empty");
    assert_int_equal(f->diag.n, 1);
    br_config_free(f->cfg);
    f->cfg = NULL;
    br_diag_dispose(&f->diag);

    write_templates_dir_cfg(f, "'templates_dir': 7, ");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "templates_dir: must be a string");
    br_config_free(f->cfg);
    f->cfg = NULL;
    br_diag_dispose(&f->diag);

    /* From the environment: named as where the default templates should be. */
    assert_int_equal(setenv("BR_TEMPLATES_DIR", "/nonexistent/br-templates", 1), 0);
    write_templates_dir_cfg(f, "");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "the default templates are not in /nonexistent/br-templates (No such file or directory): "
                      "set templates_dir, or BR_TEMPLATES_DIR in the environment");
    assert_int_equal(f->diag.n, 1);
    unsetenv("BR_TEMPLATES_DIR");
}

/* ---- templates ---------------------------------------------------------------- */

static void
test_inline_template_unknown_variable(void **state)
{
    struct fx *f = *state;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
              "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "               'default_agent_id': 'A', 'close_on_leave': false,\n"
              "               'task': {'title': '{{visitor.name}}\\n  {{vistor.email}} {{channel.id}}'}}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "channels[0].task.title:2:3: unknown template variable \"vistor.email\"");
    expect_problem(f, "channels[0].task.title:2:20: unknown template variable \"channel.id\"");
    assert_int_equal(f->diag.n, 2);
}

static void
test_file_template_syntax_error(void **state)
{
    struct fx *f = *state;
    char *tpl = write_file(f, "conf/tpl/title.txt", "Chat with\n  {{#visitor.name}}{{visitor.name}}\n");
    char *desc = write_file(f, "conf/tpl/desc.html", "<p>\n{{visitor.name}} {{visitor.nick}}</p>\n");
    char *line;

    write_cfg(f, "conf/cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
              "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "               'default_agent_id': 'A', 'close_on_leave': false,\n"
              "               'task': {'title_file': 'tpl/title.txt', 'description_file': 'tpl/desc.html'}}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    assert_int_equal(f->diag.n, 2);
    line = br_asprintf("%s:2:3: section '{{#visitor.name}}' is never closed", tpl);
    expect_line(f, line);
    free(line);
    line = br_asprintf("%s:2:18: unknown template variable \"visitor.nick\"", desc);
    expect_line(f, line);
    free(line);
    free(tpl);
    free(desc);
}

static void
test_template_file_missing_and_both_set(void **state)
{
    struct fx *f = *state;
    char *line;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
              "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "               'default_agent_id': 'A', 'close_on_leave': false,\n"
              "               'task': {'title': 'x', 'title_file': 'a.txt', 'description_file': 'no.html'}}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "channels[0].task.title: set either title or title_file, not both");
    line = br_asprintf("channels[0].task.description_file: cannot read template %s/no.html: "
                       "No such file or directory", f->dir);
    expect_problem(f, line);
    free(line);
    assert_int_equal(f->diag.n, 2);
}

static void
test_chatra_variables_accepted(void **state)
{
    struct fx *f = *state;
    char *text;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
              "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "               'default_agent_id': 'A', 'close_on_leave': false,\n"
              "               'task': {'title': '{{chatra.client.info.plan}}/{{chatra.anything}}/"
              "{{#chatra.client.basicInfo}}{{os}}{{/chatra.client.basicInfo}}/{{visitor.info.userId}}'}}]}\n");
    load_ok(f);
    text = render(f->cfg->channels[0].task_title,
                  "{\"chatra\":{\"client\":{\"info\":{\"plan\":\"pro\"},\"basicInfo\":{\"os\":\"Linux\"}},"
                  "\"anything\":\"x\"},\"visitor\":{\"info\":{\"userId\":\"u-1\"}}}",
                  BR_TPL_ESCAPE_NONE);
    assert_string_equal(text, "pro/x/Linux/u-1");
    free(text);
}

static void
test_template_schema_is_json(void **state)
{
    json_error_t je;
    json_t *s = json_loads(br_config_template_schema(), 0, &je);
    (void)state;

    if (s == NULL)
        fail_msg("schema is not JSON: %d:%d %s", je.line, je.column, je.text);
    assert_true(json_is_object(s));
    assert_string_equal(json_string_value(json_object_get(s, "chatra")), "*");
    assert_true(json_is_object(json_object_get(s, "visitor")));
    assert_true(json_is_array(json_object_get(json_object_get(s, "chat"), "messages")));
    assert_non_null(json_object_get(json_object_get(s, "channel"), "name"));
    assert_non_null(json_object_get(json_object_get(s, "employee"), "name"));
    /* The visitor id is never available to templates (it may be a bound, secret client id). */
    assert_null(json_object_get(json_object_get(s, "visitor"), "id"));
    json_decref(s);
}

static void
test_diag_add_and_dispose(void **state)
{
    struct br_diag d = {0};
    (void)state;

    br_diag_add(&d, "%s:%d: %s", "a.json", 3, "first");
    br_diag_add(&d, "second");
    assert_int_equal(d.n, 2);
    assert_string_equal(d.items[0], "a.json:3: first");
    assert_string_equal(d.items[1], "second");
    br_diag_dispose(&d);
    assert_int_equal(d.n, 0);
    assert_null(d.items);
    br_diag_dispose(&d); /* twice is harmless */
    br_config_free(NULL);
}


/* ---- language, time zone, the bridge's own texts ------------------------- */

/* A small valid config; %s is spliced in at the top level (no trailing comma needed). */
static void
write_small(struct fx *f, const char *kind, const char *top)
{
    char *text = br_asprintf(
        "{%s%s\n"
        "  'store': {'path': 'b.db'},\n"
        "  'tracker': %s,\n"
        "  'channels': [{'name': 'shop', 'webhook_secret': 'shopHookSecret_abcdef123',\n"
        "                'chatra': {'public_key': 'p', 'secret_key': 's'}, 'default_agent_id': 'A',\n"
        "                'close_on_leave': false}]\n"
        "}\n",
        top, *top ? "," : "",
        strcmp(kind, "redmine") == 0
            ? "{'kind': 'redmine', 'url': 'http://127.0.0.1:1', 'api_key': 'k', 'project': 'chats'}"
            : "{'kind': 'planfix', 'url': 'http://127.0.0.1:1/rest', 'token': 't', "
              "'webhook_secret': 'pfHookSecret0123456789'}");
    write_cfg(f, "cfg.json", text);
    free(text);
}

static char *
render_text(const struct br_config *c, enum br_text t, const char *ctx_json)
{
    json_error_t je;
    json_t *ctx = json_loads(ctx_json, 0, &je);
    char *s;
    assert_non_null(ctx);
    s = br_texts_string(c, t, ctx);
    json_decref(ctx);
    return s;
}

#define DEVICE_CTX                                                                                                 \
    "{'device': {'items': [{'browser': true, 'os': false, 'device': false, 'ip': false, 'city': false, "           \
    "'country': false, 'value': 'Firefox <3', 'first': true}, {'browser': false, 'os': false, 'device': false, "  \
    "'ip': true, 'city': false, 'country': false, 'value': '1.2.3.4', 'first': false}]}}"

static char *
quotes(const char *s)
{
    char *out = br_strdup(s);
    for (char *p = out; *p; p++)
        if (*p == '\'')
            *p = '"';
    return out;
}

static void
test_language_defaults(void **state)
{
    struct fx *f = *state;
    char *ctx = quotes(DEVICE_CTX), *s;

    write_small(f, "planfix", "");
    load_ok(f);
    assert_string_equal(f->cfg->language, "en");
    assert_string_equal(f->cfg->timezone, "UTC");
    assert_null(f->cfg->tracker_timezone);
    s = render_text(f->cfg, BR_TEXT_NEW_VISIT, ctx);
    assert_string_equal(s, "<b>New visit</b>: browser Firefox &lt;3, IP 1.2.3.4.");
    free(s);
    br_config_free(f->cfg);
    f->cfg = NULL;

    write_small(f, "planfix", "'language': 'ru', 'timezone': 'Europe/Moscow'");
    load_ok(f);
    assert_string_equal(f->cfg->language, "ru");
    assert_string_equal(f->cfg->timezone, "Europe/Moscow");
    s = render_text(f->cfg, BR_TEXT_NEW_VISIT, ctx);
    assert_string_equal(s, "<b>Новый визит</b>: браузер Firefox &lt;3, IP 1.2.3.4.");
    free(s);
    s = render_text(f->cfg, BR_TEXT_CONTACT_NAME, "{}");
    assert_string_equal(s, "Посетитель чата");
    free(s);
    /* The task's default title follows the language too. */
    s = render(f->cfg->channels[0].task_title, "{\"channel\": {\"name\": \"shop\"}}", BR_TPL_ESCAPE_NONE);
    assert_non_null(strstr(s, "Чат: посетитель (shop)"));
    free(s);
    br_config_free(f->cfg);
    f->cfg = NULL;

    /* Redmine: the same words in Textile. */
    write_small(f, "redmine", "'language': 'ru'");
    load_ok(f);
    s = render_text(f->cfg, BR_TEXT_NEW_VISIT, ctx);
    assert_string_equal(s, "*Новый визит*: браузер <notextile>Firefox <3</notextile>, IP 1.2.3.4.");
    free(s);
    free(ctx);
}

static void
test_times_in_zone_and_language(void **state)
{
    struct fx *f = *state;
    json_t *o = json_object();

    write_small(f, "planfix", "'language': 'ru', 'timezone': 'Europe/Moscow'");
    load_ok(f);
    br_texts_set_time(f->cfg, o, 1764669600000LL); /* 2025-12-02 10:00:00 UTC */
    assert_string_equal(json_string_value(json_object_get(o, "time")), "02.12.2025 13:00 MSK");
    assert_string_equal(json_string_value(json_object_get(o, "date")), "02.12.2025");
    assert_string_equal(json_string_value(json_object_get(o, "clock")), "13:00:00");
    br_config_free(f->cfg);
    f->cfg = NULL;

    write_small(f, "planfix", "'timezone': 'America/New_York'");
    load_ok(f);
    br_texts_set_time(f->cfg, o, 1764669600000LL);
    assert_string_equal(json_string_value(json_object_get(o, "time")), "2025-12-02 05:00 EST");
    br_config_free(f->cfg);
    f->cfg = NULL;

    write_small(f, "planfix", "");
    load_ok(f);
    br_texts_set_time(f->cfg, o, 1764669600000LL);
    assert_string_equal(json_string_value(json_object_get(o, "time")), "2025-12-02 10:00 UTC");
    assert_string_equal(json_string_value(json_object_get(o, "clock")), "10:00:00");
    json_decref(o);
}

static void
test_language_and_zone_problems(void **state)
{
    struct fx *f = *state;

    write_small(f, "planfix", "'language': 'de', 'timezone': 'Mars/Olympus_Mons'");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "language: \"de\" is not supported (supported: en, ru)");
    expect_problem(f, "timezone: \"Mars/Olympus_Mons\" is not a time zone this machine knows (an IANA name such "
                      "as \"Europe/Moscow\"; install tzdata)");
    br_diag_dispose(&f->diag);
    write_small(f, "planfix", "'timezone': '../../etc/passwd'");
    assert_int_equal(load(f), BR_EINVAL);
    assert_int_equal(f->diag.n, 1);
}

/* The kinds come from the drivers' table: an unknown one names them all, and nothing else is asked. */
static void
test_unknown_tracker_kind(void **state)
{
    struct fx *f = *state;

    write_cfg(f, "cfg.json",
              "{'store': {'path': 'b.db'},\n"
              " 'tracker': {'kind': 'jira', 'url': 'http://127.0.0.1:1', 'token': 't'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'shopHookSecret_abcdef123',\n"
              "   'chatra': {'public_key': 'p', 'secret_key': 's'}, 'default_agent_id': 'A', 'close_on_leave': false}]}\n");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "tracker.kind: \"jira\" is not supported (supported: planfix, redmine)");
    assert_int_equal(f->diag.n, 1);
}

static void
test_texts_overridden(void **state)
{
    struct fx *f = *state;
    char *s, *line;

    free(write_file(f, "texts/joined.html", "Joined: {{email}}{{#verified}} (site){{/verified}}\n"));
    write_small(f, "planfix",
                "'language': 'ru', 'texts': {'new_visit': 'Visit from {{device.browser}}{{^device.browser}}?{{/device.browser}}',"
                " 'device_joined_file': 'texts/joined.html', 'visitor_label': '{{visitor.name}}'}");
    load_ok(f);
    s = render_text(f->cfg, BR_TEXT_NEW_VISIT, "{\"device\": {\"browser\": \"Opera\"}}");
    assert_string_equal(s, "Visit from Opera");
    free(s);
    s = render_text(f->cfg, BR_TEXT_DEVICE_JOINED, "{\"email\": \"a&b@x.org\", \"verified\": true}");
    assert_string_equal(s, "Joined: a&amp;b@x.org (site)");
    free(s);
    s = render_text(f->cfg, BR_TEXT_VISITOR_LABEL, "{\"visitor\": {\"name\": \"Мария\"}}");
    assert_string_equal(s, "Мария");
    free(s);
    /* What is not overridden stays the language's default. */
    s = render_text(f->cfg, BR_TEXT_AGENT_LABEL, "{}");
    assert_string_equal(s, "Агент");
    free(s);
    br_config_free(f->cfg);
    f->cfg = NULL;

    free(write_file(f, "texts/bad.html", "line one\n{{devise.browser}}\n"));
    write_small(f, "planfix",
                "'texts': {'new_visits': 'x', 'contact_name': 'a', 'contact_name_file': 'texts/bad.html',"
                " 'new_visit_file': 'texts/bad.html', 'continues_in': '{{#task}}'}");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "texts.new_visits: unknown text (see templates/en/ for their names)");
    expect_problem(f, "texts.contact_name: set either contact_name or contact_name_file, not both");
    line = br_asprintf("%s/texts/bad.html:2:1: unknown template variable \"devise.browser\"", f->dir);
    expect_line(f, line);
    free(line);
    line = br_asprintf("%s: texts.continues_in:1:1: section '{{#task}}' is never closed", f->cfg_path);
    expect_line(f, line);
    free(line);
}

/* The variables the README lists: an agent's line names its agent; agent_label reads the visitor and the channel. */
static void
test_agent_variables(void **state)
{
    struct fx *f = *state;
    char *s;

    write_cfg(f, "cfg.json",
              "{'tracker': {'kind': 'planfix', 'url': 'https://pf.example.com/rest',\n"
              "             'token': 'env:PLANFIX_TOKEN', 'webhook_secret': 'env:PLANFIX_WEBHOOK_SECRET'},\n"
              " 'texts': {'agent_label': '{{channel.name}}: {{agent.id}} for {{visitor.name}}'},\n"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'env:CHATRA_SHOP_WEBHOOK_SECRET',\n"
              "               'chatra': {'public_key': 'env:CHATRA_SHOP_PUBLIC_KEY',\n"
              "                          'secret_key': 'env:CHATRA_SHOP_SECRET_KEY'},\n"
              "               'default_agent_id': 'A', 'close_on_leave': false,\n"
              "               'task': {'description': '{{#chat.messages}}{{agent.name}} {{agent.id}}: {{text}}"
              "{{/chat.messages}}{{previous_task.id}}{{#previous_task.messages}}{{agent.name}}{{agent.id}}"
              "{{/previous_task.messages}}'}}]}\n");
    load_ok(f);
    s = render_text(f->cfg, BR_TEXT_AGENT_LABEL,
                    "{\"agent\": {\"id\": \"a1\"}, \"visitor\": {\"name\": \"Ivo\"}, \"channel\": {\"name\": \"shop\"}}");
    assert_string_equal(s, "shop: a1 for Ivo");
    free(s);
    br_config_free(f->cfg);
    f->cfg = NULL;

    /* The label is the agent's name: it has none of its own to read. */
    write_small(f, "planfix", "'texts': {'agent_label': '{{agent.name}}'}");
    assert_int_equal(load(f), BR_EINVAL);
    expect_problem(f, "texts.agent_label:1:1: unknown template variable \"agent.name\"");
}

static void
test_description_notices(void **state)
{
    struct fx *f = *state;

    write_small(f, "planfix", "");
    load_ok(f);
    assert_int_equal(f->cfg->notices.n, 0);
    br_config_free(f->cfg);
    f->cfg = NULL;

    write_cfg(f, "cfg.json",
              "{'store': {'path': 'b.db'}, 'tracker': {'kind': 'planfix', 'url': 'http://127.0.0.1:1/rest',"
              " 'token': 't', 'webhook_secret': 'pfHookSecret0123456789'},"
              " 'channels': [{'name': 'shop', 'webhook_secret': 'shopHookSecret_abcdef123',"
              " 'chatra': {'public_key': 'p', 'secret_key': 's'}, 'default_agent_id': 'A', 'close_on_leave': false,"
              " 'task': {'description': '<p>{{visitor.name}}</p>{{#chat.messages}}{{author}}{{/chat.messages}}'}}]}");
    load_ok(f);
    assert_int_equal(f->cfg->notices.n, 2);
    assert_non_null(strstr(f->cfg->notices.items[0], "channels[0].task.description does not show the chat messages"));
    assert_non_null(strstr(f->cfg->notices.items[1], "does not show previous_task.id"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_format_and_trusted_proxies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batching_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_config_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_secret_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_missing_names_variable_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_syntax_error_does_not_echo_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_duplicate_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_and_not_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_problems_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_parts_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redmine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redmine_problems, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_top_level_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_webhook_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_employee_and_duplicate_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_template_unknown_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_template_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_template_file_missing_and_both_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chatra_variables_accepted, setup, teardown),
        cmocka_unit_test(test_template_schema_is_json),
        cmocka_unit_test_setup_teardown(test_language_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_times_in_zone_and_language, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_tracker_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_language_and_zone_problems, setup, teardown),
        cmocka_unit_test_setup_teardown(test_texts_overridden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_variables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_description_notices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_employees_and_default_agent_by_email, setup, teardown),
        cmocka_unit_test_setup_teardown(test_employee_and_default_agent_problems, setup, teardown),
        cmocka_unit_test_setup_teardown(test_templates_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_templates_dir_problems, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enrich, setup, teardown),
        cmocka_unit_test(test_diag_add_and_dispose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
