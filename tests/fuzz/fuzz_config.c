/*
 * fuzz_config.c - libFuzzer target for the config loader (bridge/config.h).
 *
 * br_config_load reads a path, so each input is written to
 * <tmp>/bridge.json in a directory made once per process, which also
 * holds files that "file:" references and *_file templates can name:
 *
 *   secret.txt   a secret with a trailing newline
 *   short.txt    a secret that is too short
 *   empty.txt    an empty file
 *   title.txt    a valid title template
 *   desc.html    a valid description template
 *   bad.txt      a template that does not compile
 *   unknown.txt  a template with an unknown variable
 *
 * The environment variables of config/bridge.example.json are set once
 * at start, plus FUZZ_EMPTY (set but empty).  Relative paths in the
 * corpus therefore resolve inside that directory.
 *
 * Oracles beyond the sanitizers: success and failure match the result
 * code, the output and the diag list; no diag line contains the value
 * of a secret the input did not spell out itself (unless the environment
 * has BR_FUZZ_NO_SECRET_ORACLE, to fuzz on past a reported leak); a loaded config
 * answers its own lookups.  BR_FUZZ_VERBOSE in the environment prints
 * the result and the diag lines.  br_log_clear_secrets runs after each input
 * so the logger's secret list does not grow.
 *
 * Built with -fsanitize=fuzzer as fuzz_config, and with
 * tests/fuzz/replay_main.c as replay_config (CTest: fuzz.replay_config).
 */
#include "bridge/config.h"
#include "bridge/log.h"
#include "templates/tpl.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    const char *value;
} env[] = {
    {"PLANFIX_TOKEN", "envPlanfixToken-7f3a9c1e"},
    {"PLANFIX_WEBHOOK_SECRET", "envPlanfixHookSecret-2b8d4e6f"},
    {"CHATRA_SHOP_WEBHOOK_SECRET", "envShopHookSecret-9c1e7f3a"},
    {"CHATRA_SHOP_PUBLIC_KEY", "envShopPublicKey-4e6f2b8d"},
    {"CHATRA_SHOP_SECRET_KEY", "envShopSecretKey-1e7f3a9c"},
    {"FUZZ_EMPTY", ""},
};

static const struct {
    const char *name;
    const char *text;
} files[] = {
    {"secret.txt", "fileSecret-5d0c8a2b7e\n"},
    {"short.txt", "abc\n"},
    {"empty.txt", ""},
    {"title.txt", "Chat with {{visitor.name}}{{^visitor.name}}a visitor{{/visitor.name}}"},
    {"desc.html", "<p>{{#visitor.email}}<b>E-mail:</b> {{visitor.email}}<br>{{/visitor.email}}</p>\n"
                  "{{#chat.messages}}\n<p><b>{{author}}</b><br>\n{{{text_html}}}</p>\n{{/chat.messages}}\n"},
    {"bad.txt", "{{#visitor.name}}never closed"},
    {"unknown.txt", "{{visitor.shoe_size}}"},
};

/* Secret values that must never appear in a diag line. */
static const char *const secret_values[] = {
    "envPlanfixToken-7f3a9c1e", "envPlanfixHookSecret-2b8d4e6f", "envShopHookSecret-9c1e7f3a",
    "envShopPublicKey-4e6f2b8d", "envShopSecretKey-1e7f3a9c", "fileSecret-5d0c8a2b7e",
};

static char dir[] = "/tmp/br-fuzz-config-XXXXXX";
static char *config_path;
static int ready;
static int secret_oracle = 1;
static int verbose;

static void teardown(void);

static void
die(const char *what)
{
    fprintf(stderr, "fuzz_config: %s\n", what);
    teardown(); /* abort() skips atexit: do not leave the directory behind */
    abort();
}

static char *
in_dir(const char *name)
{
    return br_asprintf("%s/%s", dir, name);
}

static void
write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || (len && fwrite(data, 1, len, fp) != len) || fclose(fp) != 0)
        die("cannot write a file in the temporary directory");
}

static void
teardown(void)
{
    if (config_path == NULL)
        return;
    for (size_t i = 0; i < BR_ARRAY_SIZE(files); i++) {
        char *p = in_dir(files[i].name);
        unlink(p);
        free(p);
    }
    unlink(config_path);
    rmdir(dir);
    free(config_path);
    config_path = NULL;
    br_log_clear_secrets();
}

static void
setup(void)
{
    json_object_seed(1);
    /* Once a leak is reported, this lets fuzzing go on past it. */
    if (getenv("BR_FUZZ_NO_SECRET_ORACLE"))
        secret_oracle = 0;
    verbose = getenv("BR_FUZZ_VERBOSE") != NULL;
    br_log_set_level(BR_LOG_ERROR);
    for (size_t i = 0; i < BR_ARRAY_SIZE(env); i++)
        setenv(env[i].name, env[i].value, 1);
    if (mkdtemp(dir) == NULL)
        die("mkdtemp failed");
    for (size_t i = 0; i < BR_ARRAY_SIZE(files); i++) {
        char *p = in_dir(files[i].name);
        write_file(p, files[i].text, strlen(files[i].text));
        free(p);
    }
    config_path = in_dir("bridge.json");
    ready = 1;
    atexit(teardown);
}

static void
check_loaded(const struct br_config *c)
{
    if (c->n_channels == 0 || c->tracker_url == NULL || c->tracker_token == NULL ||
        c->tracker_webhook_secret == NULL || c->store_path == NULL || c->listen_host == NULL)
        die("a loaded config misses a required setting");
    for (size_t i = 0; i < c->n_employees; i++) {
        const struct br_employee *e = &c->employees[i];
        if (e->name == NULL || e->email == NULL)
            die("a loaded employee misses a required setting");
        if (e->tracker_user && br_config_employee_by_tracker_user(c, e->tracker_user) == NULL)
            die("an employee is not found by its tracker user");
        if (br_config_employee_by_email(c, e->email) != e)
            die("an employee is not found by its e-mail");
        if (e->chatra_agent_id && br_config_employee_by_agent(c, e->chatra_agent_id) == NULL)
            die("an employee is not found by its agent id");
        (void)br_config_company_domain(c, e->email);
    }
    for (size_t i = 0; i < c->n_channels; i++) {
        const struct br_channel *ch = &c->channels[i];
        if (ch->name == NULL || ch->webhook_secret == NULL || ch->chatra_url == NULL ||
            (ch->default_agent_id == NULL && ch->default_agent_email == NULL) ||
            (ch->default_agent_email && ch->default_agent_name == NULL))
            die("a loaded channel misses a required setting");
        if (br_config_channel(c, ch->name) != ch)
            die("a channel is not found by its name");
        for (size_t k = 0; k < ch->n_employees; k++)
            if (ch->employees[k]->tracker_user &&
                br_channel_employee_by_tracker_user(ch, ch->employees[k]->tracker_user) == NULL)
                die("a channel employee is not found by its tracker user");
        if (ch->task_title == NULL || ch->task_description == NULL)
            die("a loaded channel has no task templates");
        for (int t = 0; t < 2; t++) {
            struct br_buf b;
            br_buf_init(&b, 64 * 1024);
            (void)br_tpl_render(t ? ch->task_description : ch->task_title, NULL,
                                t ? BR_TPL_ESCAPE_HTML : BR_TPL_ESCAPE_NONE, &b);
            br_buf_dispose(&b);
        }
    }
    (void)br_config_channel(c, "");
    (void)br_config_company_domain(c, "someone@gmail.com");
    (void)br_config_company_domain(c, "someone@acme.example");
    (void)br_config_company_domain(c, "no-at-sign");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct br_config *c = (struct br_config *)1;
    struct br_diag diag = {0};
    int rc;

    if (!ready)
        setup();
    write_file(config_path, data, size);
    rc = br_config_load(config_path, &c, &diag);
    if (verbose)
        fprintf(stderr, "br_config_load: %s, %zu problems\n", br_strerror(rc), diag.n);
    if (rc == 0) {
        if (c == NULL || diag.n != 0)
            die("br_config_load succeeded without a config or with problems");
        check_loaded(c);
        br_config_free(c);
    } else {
        if (rc != BR_EINVAL)
            die("br_config_load returned an undocumented error");
        if (c != NULL || diag.n == 0)
            die("br_config_load failed with a config or without a problem");
    }
    for (size_t i = 0; i < diag.n; i++) {
        if (diag.items[i] == NULL)
            die("a NULL diag line");
        if (verbose)
            fprintf(stderr, "  %s\n", diag.items[i]);
        for (size_t k = 0; k < BR_ARRAY_SIZE(secret_values); k++) {
            const char *v = secret_values[k];
            if (secret_oracle && strstr(diag.items[i], v) && !memmem(data, size, v, strlen(v))) {
                fprintf(stderr, "leaked in: %s\n", diag.items[i]);
                die("a diag line shows the value of a secret");
            }
        }
    }
    br_diag_dispose(&diag);
    br_log_clear_secrets();
    return 0;
}
