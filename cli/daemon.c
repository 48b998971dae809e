/*
 * daemon.c - the daemon's lifecycle: "chatra-bridge run".
 *
 * Start-up order: config, the store's lock (one daemon per store), store,
 * HTTP client, engine, HTTP server, the admin page's live updates, signals.
 * Shutdown runs the other way round (see shutdown_step), and ends with
 * uv_loop_close returning 0: every handle closed.  SIGHUP reloads the
 * config (reload.h); it is ignored while the bridge starts and once it
 * shuts down.
 */
#include "cli.h"

#include "bridge/config.h"
#include "bridge/engine.h"
#include "bridge/html_text.h"
#include "bridge/http_client.h"
#include "bridge/http_server.h"
#include "bridge/live_updates.h"
#include "bridge/log.h"
#include "bridge/metrics.h"
#include "bridge/refusals.h"
#include "bridge/reload.h"
#include "bridge/store.h"
#include "bridge/store_lock.h"
#include "handlers/handlers.h"

#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

struct daemon {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm, sighup;
    struct br_config *cfg;     /* the newest config (one reference): the handlers read it */
    char loaded_at[16];        /* when it was loaded: HH:MM:SS in UTC, as the log writes times */
    struct br_store_lock *lock;
    struct br_store *store;
    struct br_http_client *http;
    struct br_http_server *server;
    struct br_engine *engine;
    struct br_live_updates *live;
    struct br_handler_ctx hctx;
    int stage;
    int stopping;
};

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
 * One daemon per store: a second one would apply the same inbox and run the
 * same jobs, twice the requests against the tracker's limit.  Taken before
 * the store is opened (and its schema perhaps upgraded), held until exit.
 */
static int
lock_store(struct daemon *d)
{
    pid_t holder;
    int rc = br_store_lock_take(&d->lock, d->cfg->store_path, &holder);

    if (rc == BR_EEXIST) {
        char *path = br_store_lock_path_of(d->cfg->store_path);
        if (holder > 0)
            br_error("another chatra-bridge (pid %ld) is running on %s: one daemon per store; stop it first, "
                     "or give this one another store.path (lock %s)", (long)holder, d->cfg->store_path, path);
        else
            br_error("another chatra-bridge is running on %s: one daemon per store; stop it first, "
                     "or give this one another store.path (lock %s)", d->cfg->store_path, path);
        free(path);
    }
    return rc;
}

/*
 * Shutdown, one step per completed close: stop the live updates, stop
 * accepting (HTTP server: its connections and WebSockets close), stop the
 * engine (timers, upstreams), cancel outgoing requests (HTTP client), then
 * the signal handles.  In-flight jobs stay marked in the store and are
 * checked at the next start.
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
    sigset_t hup, was;

    switch (d->stage++) {
    case 0:
        if (d->live) {
            br_live_updates_close(d->live, shutdown_step, d);
            return;
        }
        /* fall through */
    case 1:
        if (d->server) {
            d->stage = 2;
            br_http_server_close(d->server, shutdown_step, d);
            return;
        }
        /* fall through */
    case 2:
        if (d->engine) {
            d->stage = 3;
            br_engine_close(d->engine, shutdown_step, d);
            return;
        }
        /* fall through */
    case 3:
        d->stage = 4;
        br_http_client_close(d->http, shutdown_step, d);
        return;
    case 4:
        br_refusals_close(d->hctx.refusals); /* the counts not yet written are written now */
        uv_close((uv_handle_t *)&d->sigint, on_signal_closed);
        uv_close((uv_handle_t *)&d->sigterm, on_signal_closed);
        /*
         * Closing the handle puts SIGHUP's default action (exit) back:
         * from here to the exit it is ignored, and blocked meanwhile so
         * that one coming in between is dropped too.
         */
        sigemptyset(&hup);
        sigaddset(&hup, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &hup, &was);
        uv_close((uv_handle_t *)&d->sighup, on_signal_closed);
        signal(SIGHUP, SIG_IGN);
        pthread_sigmask(SIG_SETMASK, &was, NULL);
        return;
    }
}

static void
stamp(char out[16])
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(out, 16, "%H:%M:%S", &tm);
}

/*
 * SIGHUP: the config file again (reload.h).  A config with problems, or
 * one naming another tracker, is refused as a whole and logged as
 * check-config prints it; a good one is what new work uses from now on.
 */
static void
reload(struct daemon *d)
{
    struct br_config *next = NULL;
    struct br_diag diag = {0};
    enum br_log_level lvl;
    enum br_log_format fmt;
    int rc;

    br_info("received SIGHUP: reading %s again", d->cfg->path);
    rc = br_config_load(d->cfg->path, &next, &diag);
    if (rc == 0)
        rc = br_reload_compare(d->cfg, next, &diag);
    if (rc == 0 && (rc = br_engine_reload(d->engine, next)) != 0)
        br_diag_add(&diag, "tracker: the driver cannot be made: %s", br_strerror(rc));
    if (rc) {
        /* A secret's value can reach a problem line through any setting (as check-config masks it). */
        for (size_t i = 0; i < diag.n; i++) {
            br_log_mask(diag.items[i]);
            br_error("%s", diag.items[i]);
        }
        br_error("%zu problem%s in %s", diag.n, diag.n == 1 ? "" : "s", d->cfg->path);
        br_error("reload refused: the bridge keeps running on the config loaded at %s", d->loaded_at);
        br_diag_dispose(&diag);
        br_config_free(next);
        return;
    }
    br_diag_dispose(&diag);
    if (br_log_parse_level(next->log_level, &lvl) == 0)
        br_log_set_level(lvl);
    if (br_log_parse_format(next->log_format, &fmt) == 0)
        br_log_set_format(fmt);
    br_handlers_configure(&d->hctx, next);
    /* The server borrows from the config: before the old one may go. */
    br_http_server_set_max_body(d->server, next->max_body);
    br_http_server_set_trusted_proxies(d->server, next->trusted_proxies, next->n_trusted_proxies);
    for (size_t i = 0; i < next->notices.n; i++)
        br_info("config notice: %s", next->notices.items[i]);
    br_config_free(d->cfg);
    d->cfg = next;
    stamp(d->loaded_at);
    br_info("reload: config %s loaded (%zu channel%s)", next->path, next->n_channels,
            next->n_channels == 1 ? "" : "s");
}

static void
on_sighup(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;

    (void)signum;
    if (d->stopping) {
        br_info("received SIGHUP while shutting down: ignored");
        return;
    }
    reload(d);
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
    /* SIGHUP stays caught (and is ignored) until the signals are closed: its default would end the process. */
    shutdown_step(d);
}

int
br_cmd_run(const struct br_cli_args *a)
{
    struct daemon d;
    struct br_http_server_opts opts = {0};
    enum br_log_level lvl;
    enum br_log_format fmt;
    int rc;

    memset(&d, 0, sizeof(d));
    /* Until the loop watches for it (a reload needs the running bridge), a SIGHUP is ignored. */
    signal(SIGHUP, SIG_IGN);
    if (br_cli_load_config(a->config, &d.cfg))
        return 2;
    stamp(d.loaded_at);
    if (br_log_parse_level(d.cfg->log_level, &lvl) == 0)
        br_log_set_level(lvl);
    if (br_log_parse_format(d.cfg->log_format, &fmt) == 0)
        br_log_set_format(fmt);
    for (size_t i = 0; i < d.cfg->notices.n; i++)
        br_info("config notice: %s", d.cfg->notices.items[i]);
    if (strcmp(d.cfg->store_path, ":memory:") != 0) {
        make_parent_dir(d.cfg->store_path);
        if (lock_store(&d) != 0) {
            br_config_free(d.cfg);
            return 1;
        }
    }
    if (br_store_open(&d.store, d.cfg->store_path)) {
        br_store_lock_free(d.lock);
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
    d.hctx.store = d.store;
    d.hctx.engine = d.engine;
    br_handlers_configure(&d.hctx, d.cfg);
    d.hctx.refusals = br_refusals_new(&d.loop);
    /* The admin page is on while admin.token is set; its logins live as long as the daemon. */
    d.hctx.admin = br_admin_new(BR_VERSION, br_now_ms());
    opts.host = d.cfg->listen_host;
    opts.port = d.cfg->listen_port;
    opts.max_body = d.cfg->max_body;
    opts.handler = br_handlers_dispatch;
    opts.ctx = &d.hctx;
    opts.flush = br_handlers_flush;
    opts.refused = br_handlers_refused_by_server;
    opts.trusted_proxies = d.cfg->trusted_proxies;
    opts.n_trusted_proxies = d.cfg->n_trusted_proxies;
    opts.ws_path = "/admin/ws";
    opts.ws_protocol = "br-admin";
    opts.ws_accept = br_handlers_ws_accept;
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sighup);
    d.sigint.data = d.sigterm.data = d.sighup.data = &d;
    rc = 0;
    if (!d.stopping && br_http_server_new(&d.server, &d.loop, &opts) != 0) {
        d.server = NULL;
        d.stopping = 1;
        rc = 1;
    }
    d.hctx.server = d.server;
    if (!d.stopping && br_live_updates_new(&d.live, &d.loop, d.server) != 0)
        d.stopping = 1;
    if (d.stopping) {
        rc = 1;
        shutdown_step(&d);
    } else {
        uv_signal_start(&d.sigint, on_signal, SIGINT);
        uv_signal_start(&d.sigterm, on_signal, SIGTERM);
        uv_signal_start(&d.sighup, on_sighup, SIGHUP);
        br_info("chatra-bridge %s listening on http://%s:%d (%zu channel%s, tracker %s)", BR_VERSION,
                d.cfg->listen_host, br_http_server_port(d.server), d.cfg->n_channels,
                d.cfg->n_channels == 1 ? "" : "s", d.cfg->tracker_kind);
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d.loop) != 0) {
        br_error("shutdown: the event loop still had open handles");
        rc = 1;
    }
    br_live_updates_free(d.live);
    br_http_server_free(d.server);
    br_handlers_unconfigure(&d.hctx);
    br_refusals_free(d.hctx.refusals);
    br_handlers_dispose(&d.hctx);
    br_admin_free(d.hctx.admin);
    br_engine_free(d.engine);
    br_html_text_global_cleanup(); /* after the engine, the last to convert a reply */
    br_http_client_free(d.http);
    br_store_free(d.store);
    br_store_lock_free(d.lock); /* after the store's last write: the next daemon may start */
    br_config_free(d.cfg);
    br_metrics_reset();
    br_log_clear_secrets();
    if (rc == 0)
        br_info("stopped cleanly");
    return rc;
}

