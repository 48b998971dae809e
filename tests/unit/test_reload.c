/*
 * test_reload.c - what a reload may change (bridge/reload.c): settings
 * read only at start keep their running value, another tracker kind is
 * refused, and a config lives as long as its last reference.
 *
 * Each test writes two configs into a fresh directory under /tmp
 * (removed afterwards), loads both and compares them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bridge/config.h"
#include "bridge/log.h"
#include "bridge/reload.h"
#include "support/tmpdir.h"

struct fx {
    char dir[64];
    struct br_config *cur, *next;
    struct br_diag diag;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    strcpy(f->dir, "/tmp/br-test-reload-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    br_config_free(f->cur);
    br_config_free(f->next);
    br_diag_dispose(&f->diag);
    tmpdir_remove(f->dir);
    br_log_clear_secrets();
    free(f);
    return 0;
}

/*
 * A config with one channel per name in channels ("shop,desk"), on port,
 * store and tracker as given; single quotes become double quotes.
 */
static struct br_config *
load(struct fx *f, const char *name, int port, const char *store, const char *tracker, const char *channels)
{
    struct br_buf b;
    struct br_config *c = NULL;
    struct br_diag diag = {0};
    char *path = br_asprintf("%s/%s", f->dir, name);
    char *list = br_strdup(channels);
    FILE *fp;

    br_buf_init(&b, 0);
    br_buf_printf(&b, "{'listen': {'host': '127.0.0.1', 'port': %d}, 'store': {'path': '%s'}, 'tracker': %s,"
                      " 'channels': [", port, store, tracker);
    for (char *save = NULL, *ch = strtok_r(list, ",", &save); ch; ch = strtok_r(NULL, ",", &save))
        br_buf_printf(&b, "%s{'name': '%s', 'webhook_secret': 'hook-secret-0123456789',"
                          " 'chatra': {'public_key': 'pub-key-1', 'secret_key': 'sec-key-1'},"
                          " 'default_agent_id': 'agent1'}", b.data[b.len - 1] == '[' ? "" : ", ", ch);
    br_buf_puts(&b, "]}");
    for (char *p = b.data; *p; p++)
        if (*p == '\'')
            *p = '"';
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(b.data, fp);
    assert_int_equal(fclose(fp), 0);
    if (br_config_load(path, &c, &diag) != 0) {
        for (size_t i = 0; i < diag.n; i++)
            print_message("  %s\n", diag.items[i]);
        fail_msg("%s does not load", name);
    }
    br_diag_dispose(&diag);
    br_buf_dispose(&b);
    free(list);
    free(path);
    return c;
}

#define PLANFIX "{'kind': 'planfix', 'url': 'https://a.planfix.com/rest', 'token': 'pf-token-0123456789'," \
                " 'webhook_secret': 'pf-hook-0123456789abc', 'closed_status_id': 3}"
#define REDMINE "{'kind': 'redmine', 'url': 'http://127.0.0.1:3000', 'api_key': 'rm-key-0123456789'," \
                " 'project': 'chats', 'closed_status_id': 5}"

static void
test_restart_only_settings_keep_their_running_value(void **state)
{
    struct fx *f = *state;

    f->cur = load(f, "a.json", 8080, "var/a.db", PLANFIX, "shop");
    f->next = load(f, "b.json", 8081, "var/b.db", "{'kind': 'planfix', 'url': 'https://a.planfix.com/rest',"
                   " 'token': 'pf-token-0123456789', 'webhook_secret': 'pf-hook-0123456789abc',"
                   " 'closed_status_id': 3, 'requests_per_second': 0.5}", "shop");
    assert_int_equal(br_reload_compare(f->cur, f->next, &f->diag), 0);
    assert_int_equal(f->diag.n, 0);
    /* What runs stays: the port and the store of the running config. */
    assert_int_equal(f->next->listen_port, 8080);
    assert_string_equal(f->next->store_path, f->cur->store_path);
    assert_non_null(strstr(f->next->store_path, "var/a.db"));
    /* Everything else is the new config's. */
    assert_true(f->next->tracker_rps == 0.5);
}

static void
test_unchanged_config_compares_equal(void **state)
{
    struct fx *f = *state;

    f->cur = load(f, "a.json", 8080, "var/a.db", PLANFIX, "shop,desk");
    f->next = load(f, "b.json", 8080, "var/a.db", PLANFIX, "desk,shop");
    assert_int_equal(br_reload_compare(f->cur, f->next, &f->diag), 0);
    assert_int_equal(f->diag.n, 0);
    assert_int_equal(f->next->listen_port, 8080);
    assert_int_equal(f->next->n_channels, 2);
}

static void
test_another_tracker_kind_is_refused(void **state)
{
    struct fx *f = *state;

    f->cur = load(f, "a.json", 8080, "var/a.db", PLANFIX, "shop");
    f->next = load(f, "b.json", 8081, "var/a.db", REDMINE, "shop");
    assert_int_equal(br_reload_compare(f->cur, f->next, &f->diag), BR_EINVAL);
    assert_int_equal(f->diag.n, 1);
    assert_string_equal(f->diag.items[0],
                        "tracker.kind: redmine while the bridge runs with planfix: another tracker takes a restart");
}

/* A reload keeps the old config for the jobs that started with it: it lives until its last reference. */
static void
test_config_references(void **state)
{
    struct fx *f = *state;
    struct br_config *c = load(f, "a.json", 8080, "var/a.db", PLANFIX, "shop");

    assert_ptr_equal(br_config_ref(c), c);
    assert_ptr_equal(br_config_ref(c), c);
    br_config_free(c);
    br_config_free(c);
    /* Still there: the first reference. */
    assert_string_equal(c->channels[0].name, "shop");
    br_config_free(c); /* the last: valgrind and ASan see the rest freed */
    br_config_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restart_only_settings_keep_their_running_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_config_compares_equal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_tracker_kind_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_references, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
