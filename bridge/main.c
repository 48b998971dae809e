/*
 * main.c - the chatra-bridge command line and the daemon's lifecycle.
 *
 *   chatra-bridge --config FILE                 run the bridge
 *   chatra-bridge check-config --config FILE    validate and exit
 *
 * Start-up order: config, store, HTTP client, engine, HTTP server,
 * signals.  Shutdown runs the other way round (see shutdown_step), and
 * ends with uv_loop_close returning 0: every handle closed.
 */
#include "config.h"
#include "email.h"
#include "engine.h"
#include "handlers/handlers.h"
#include "html_text.h"
#include "http_client.h"
#include "http_server.h"
#include "log.h"
#include "ratelimit.h"
#include "store.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define BR_VERSION "0.1.0"

struct daemon {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    struct br_config *cfg;
    struct br_store *store;
    struct br_http_client *http;
    struct br_http_server *server;
    struct br_engine *engine;
    struct br_handler_ctx hctx;
    int stage;
    int stopping;
};

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: chatra-bridge --config FILE               run the bridge\n"
            "       chatra-bridge check-config --config FILE  check the config and its templates\n"
            "       chatra-bridge identities --config FILE [--email E]\n"
            "                                  print the identity map (persons, e-mails, devices, merges)\n"
            "       chatra-bridge unmerge --config FILE --merge N\n"
            "                                  undo merge N (see identities) of two devices\n"
            "       chatra-bridge dead-letters --config FILE\n"
            "                                  list the jobs that failed for good, with request and answer\n"
            "       chatra-bridge retry --config FILE (--id N | --all)\n"
            "                                  put dead jobs back in the queue\n"
            "       chatra-bridge --version\n");
}

static int
load_config(const char *path, struct br_config **cfg)
{
    struct br_diag diag = {0};
    int rc = br_config_load(path, cfg, &diag);

    /* A secret's value can reach a problem line through any setting (e.g. "kind": "env:TOKEN"). */
    for (size_t i = 0; i < diag.n; i++) {
        br_log_mask(diag.items[i]);
        fprintf(stderr, "%s\n", diag.items[i]);
    }
    if (rc)
        fprintf(stderr, "%zu problem%s in %s\n", diag.n, diag.n == 1 ? "" : "s", path);
    br_diag_dispose(&diag);
    return rc;
}

/* Creates the directory that holds the database, so a fresh checkout just runs. */
static void
make_parent_dir(const char *path)
{
    char *copy = br_strdup(path);
    char *dir = dirname(copy);
    char *p = dir;

    if (strcmp(dir, ".") != 0) {
        while ((p = strchr(p + 1, '/')) != NULL) {
            *p = '\0';
            mkdir(dir, 0750);
            *p = '/';
        }
        mkdir(dir, 0750);
    }
    free(copy);
}

/*
 * Shutdown, one step per completed close: stop accepting (HTTP server),
 * stop the engine (timers, upstreams), cancel outgoing requests (HTTP
 * client), then the signal handles.  In-flight jobs stay marked in the
 * store and are checked at the next start.
 */
static void shutdown_step(void *arg);

static void
on_signal_closed(uv_handle_t *h)
{
    (void)h;
}

static void
shutdown_step(void *arg)
{
    struct daemon *d = arg;

    switch (d->stage++) {
    case 0:
        if (d->server) {
            br_http_server_close(d->server, shutdown_step, d);
            return;
        }
        /* fall through */
    case 1:
        if (d->engine) {
            d->stage = 2;
            br_engine_close(d->engine, shutdown_step, d);
            return;
        }
        /* fall through */
    case 2:
        d->stage = 3;
        br_http_client_close(d->http, shutdown_step, d);
        return;
    case 3:
        uv_close((uv_handle_t *)&d->sigint, on_signal_closed);
        uv_close((uv_handle_t *)&d->sigterm, on_signal_closed);
        return;
    }
}

static void
on_signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;
    if (d->stopping)
        return;
    d->stopping = 1;
    br_info("received %s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    uv_signal_stop(&d->sigint);
    uv_signal_stop(&d->sigterm);
    shutdown_step(d);
}

static int
run(const char *config_path)
{
    struct daemon d;
    struct br_http_server_opts opts = {0};
    enum br_log_level lvl;
    int rc;

    memset(&d, 0, sizeof(d));
    if (load_config(config_path, &d.cfg))
        return 2;
    if (br_log_parse_level(d.cfg->log_level, &lvl) == 0)
        br_log_set_level(lvl);
    for (size_t i = 0; i < d.cfg->notices.n; i++)
        br_info("config notice: %s", d.cfg->notices.items[i]);
    if (strcmp(d.cfg->store_path, ":memory:") != 0)
        make_parent_dir(d.cfg->store_path);
    if (br_store_open(&d.store, d.cfg->store_path)) {
        br_config_free(d.cfg);
        return 1;
    }
    br_html_text_global_init();
    uv_loop_init(&d.loop);
    br_http_client_new(&d.http, &d.loop);
    if ((rc = br_engine_new(&d.engine, &d.loop, d.cfg, d.store, d.http)) != 0) {
        br_error("cannot start the engine: %s", br_strerror(rc));
        d.stopping = 1;
    }
    d.hctx.cfg = d.cfg;
    d.hctx.store = d.store;
    d.hctx.engine = d.engine;
    d.hctx.per_address = d.cfg->per_address_rps > 0
                             ? br_ratelimit_new(d.cfg->per_address_rps, d.cfg->per_address_burst)
                             : NULL;
    /* A burst of bad_secrets_per_minute, refilled over a minute: guessing secrets takes forever. */
    d.hctx.bad_secret = d.cfg->bad_secrets_per_minute > 0
                            ? br_ratelimit_new(d.cfg->bad_secrets_per_minute / 60.0, d.cfg->bad_secrets_per_minute)
                            : NULL;
    opts.host = d.cfg->listen_host;
    opts.port = d.cfg->listen_port;
    opts.max_body = d.cfg->max_body;
    opts.handler = br_handlers_dispatch;
    opts.ctx = &d.hctx;
    opts.flush = br_handlers_flush;
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sigterm);
    d.sigint.data = d.sigterm.data = &d;
    rc = 0;
    if (!d.stopping && br_http_server_new(&d.server, &d.loop, &opts) != 0) {
        d.server = NULL;
        d.stopping = 1;
        rc = 1;
    }
    if (d.stopping) {
        rc = 1;
        shutdown_step(&d);
    } else {
        uv_signal_start(&d.sigint, on_signal, SIGINT);
        uv_signal_start(&d.sigterm, on_signal, SIGTERM);
        br_info("chatra-bridge %s listening on http://%s:%d (%zu channel%s, tracker %s)", BR_VERSION,
                d.cfg->listen_host, br_http_server_port(d.server), d.cfg->n_channels,
                d.cfg->n_channels == 1 ? "" : "s", d.cfg->tracker_kind);
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d.loop) != 0) {
        br_error("shutdown: the event loop still had open handles");
        rc = 1;
    }
    br_http_server_free(d.server);
    br_ratelimit_free(d.hctx.per_address);
    br_ratelimit_free(d.hctx.bad_secret);
    br_engine_free(d.engine);
    br_html_text_global_cleanup(); /* after the engine, the last to convert a reply */
    br_http_client_free(d.http);
    br_store_free(d.store);
    br_config_free(d.cfg);
    br_log_clear_secrets();
    if (rc == 0)
        br_info("stopped cleanly");
    return rc;
}

/* Opens the store of a config for an admin command (the daemon may be running: SQLite WAL allows it). */
static int
open_admin(const char *config_path, struct br_config **cfg, struct br_store **store)
{
    if (load_config(config_path, cfg))
        return 2;
    if (br_store_open(store, (*cfg)->store_path)) {
        br_config_free(*cfg);
        return 1;
    }
    return 0;
}

static int
cmd_identities(const char *config_path, const char *email)
{
    struct br_config *cfg;
    struct br_store *store;
    char *json = NULL;
    /* Stored e-mails are in their normal form (trimmed, lower case): so is the one asked for. */
    char *low = email ? br_email_normalize(email, strlen(email)) : NULL;
    int rc = open_admin(config_path, &cfg, &store);

    if (rc) {
        free(low);
        return rc;
    }
    if (email && low == NULL)
        low = br_strdup(email); /* not an address: matches nothing, and says so */
    rc = br_store_identities(store, low, &json);
    if (rc == 0)
        printf("%s\n", json);
    free(json);
    free(low);
    br_store_free(store);
    br_config_free(cfg);
    br_log_clear_secrets();
    return rc ? 1 : 0;
}

static int
cmd_unmerge(const char *config_path, const char *merge)
{
    struct br_config *cfg;
    struct br_store *store;
    char *end;
    long long id = merge ? strtoll(merge, &end, 10) : 0;
    int64_t conv = 0;
    int rc;

    if (merge == NULL || *end != '\0' || id <= 0) {
        fprintf(stderr, "chatra-bridge: unmerge needs --merge N (a merge number from \"identities\")\n");
        return 2;
    }
    if ((rc = open_admin(config_path, &cfg, &store)))
        return rc;
    rc = br_store_begin(store);
    if (rc == 0)
        rc = br_store_unmerge(store, id, &conv);
    if (rc == 0)
        rc = br_store_commit(store);
    else
        br_store_rollback(store);
    if (rc == 0)
        printf("merge %lld undone: conversation %lld has its own devices and e-mails again; its next chat gets a "
               "task of its own (when new_task_if_no_active is on)\n", id, (long long)conv);
    else if (rc == BR_ENOTFOUND)
        fprintf(stderr, "chatra-bridge: there is no merge %lld\n", id);
    else if (rc == BR_EEXIST)
        fprintf(stderr, "chatra-bridge: merge %lld was already undone\n", id);
    else
        fprintf(stderr, "chatra-bridge: cannot undo merge %lld: %s\n", id, br_strerror(rc));
    br_store_free(store);
    br_config_free(cfg);
    br_log_clear_secrets();
    return rc ? 1 : 0;
}

static int
cmd_dead_letters(const char *config_path)
{
    struct br_config *cfg;
    struct br_store *store;
    char *json = NULL;
    int rc = open_admin(config_path, &cfg, &store);

    if (rc)
        return rc;
    rc = br_store_dead_letters(store, &json);
    if (rc == 0)
        printf("%s\n", json);
    free(json);
    br_store_free(store);
    br_config_free(cfg);
    br_log_clear_secrets();
    return rc ? 1 : 0;
}

static int
cmd_retry(const char *config_path, const char *id_text, int all)
{
    struct br_config *cfg;
    struct br_store *store;
    char *end = NULL;
    long long id = id_text ? strtoll(id_text, &end, 10) : 0;
    int64_t n = 0;
    int rc;

    if (all == (id_text != NULL) || (id_text && (*end != '\0' || id <= 0))) {
        fprintf(stderr, "chatra-bridge: retry needs either --id N (from dead-letters) or --all\n");
        return 2;
    }
    if ((rc = open_admin(config_path, &cfg, &store)))
        return rc;
    rc = br_store_dead_retry(store, all ? 0 : id, &n);
    if (rc == 0 && n == 0 && !all) {
        fprintf(stderr, "chatra-bridge: job %lld is not a dead letter\n", id);
        rc = BR_ENOTFOUND;
    } else if (rc == 0) {
        printf("%lld job%s back in the queue; a running bridge picks %s up within a second\n", (long long)n,
               n == 1 ? "" : "s", n == 1 ? "it" : "them");
    } else {
        fprintf(stderr, "chatra-bridge: cannot retry: %s\n", br_strerror(rc));
    }
    br_store_free(store);
    br_config_free(cfg);
    br_log_clear_secrets();
    return rc ? 1 : 0;
}

int
main(int argc, char **argv)
{
    const char *config = NULL;
    const char *email = NULL;
    const char *merge = NULL;
    const char *job_id = NULL;
    int all = 0;
    const char *command = "run";
    int i = 1;

    if (argc > 1 && argv[1][0] != '-') {
        command = argv[1];
        i = 2;
    }
    for (; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            config = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config = argv[i] + 9;
        } else if (strcmp(argv[i], "--email") == 0 && i + 1 < argc) {
            email = argv[++i];
        } else if (strcmp(argv[i], "--merge") == 0 && i + 1 < argc) {
            merge = argv[++i];
        } else if (strcmp(argv[i], "--id") == 0 && i + 1 < argc) {
            job_id = argv[++i];
        } else if (strcmp(argv[i], "--all") == 0) {
            all = 1;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("chatra-bridge %s\n", BR_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "chatra-bridge: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (config == NULL) {
        fprintf(stderr, "chatra-bridge: --config FILE is required\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(command, "check-config") == 0) {
        struct br_config *cfg;
        int rc = load_config(config, &cfg);
        /* Notices are not problems: the bridge runs as configured, and says how. */
        for (size_t k = 0; rc == 0 && k < cfg->notices.n; k++)
            printf("notice: %s\n", cfg->notices.items[k]);
        br_config_free(cfg);
        br_log_clear_secrets();
        if (rc == 0)
            printf("%s: OK\n", config);
        return rc ? 1 : 0;
    }
    if (strcmp(command, "identities") == 0)
        return cmd_identities(config, email);
    if (strcmp(command, "unmerge") == 0)
        return cmd_unmerge(config, merge);
    if (strcmp(command, "dead-letters") == 0)
        return cmd_dead_letters(config);
    if (strcmp(command, "retry") == 0)
        return cmd_retry(config, job_id, all);
    if (strcmp(command, "run") == 0)
        return run(config);
    fprintf(stderr, "chatra-bridge: unknown command \"%s\"\n", command);
    usage(stderr);
    return 2;
}
