/*
 * commands.c - the commands that check a config or read and repair the
 * store beside a running daemon (SQLite's WAL lets them): check-config,
 * identities, unmerge, dead-letters, retry.
 */
#include "cli.h"

#include "bridge/config.h"
#include "bridge/email.h"
#include "bridge/log.h"
#include "bridge/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
br_cli_load_config(const char *path, struct br_config **cfg)
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

int
br_cli_open_store(const char *config_path, struct br_config **cfg, struct br_store **store)
{
    struct br_diag diag = {0};
    int rc = br_config_load_store(config_path, cfg, &diag);

    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "%s\n", diag.items[i]);
    br_diag_dispose(&diag);
    if (rc)
        return 2;
    if (strcmp((*cfg)->store_path, ":memory:") == 0 || access((*cfg)->store_path, F_OK) != 0) {
        fprintf(stderr, "chatra-bridge: there is no store at %s yet (the bridge makes it when it first runs)\n",
                (*cfg)->store_path);
        br_config_free(*cfg);
        return 1;
    }
    if (br_store_open(store, (*cfg)->store_path)) {
        br_config_free(*cfg);
        return 1;
    }
    return 0;
}

int
br_cmd_identities(const struct br_cli_args *a)
{
    const char *config_path = a->config, *email = a->email;
    struct br_config *cfg;
    struct br_store *store;
    char *json = NULL;
    /* Stored e-mails are in their normal form (trimmed, lower case): so is the one asked for. */
    char *low = email ? br_email_normalize(email, strlen(email)) : NULL;
    int rc = br_cli_open_store(config_path, &cfg, &store);

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

int
br_cmd_unmerge(const struct br_cli_args *a)
{
    const char *config_path = a->config, *merge = a->merge;
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
    if ((rc = br_cli_open_store(config_path, &cfg, &store)))
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

int
br_cmd_dead_letters(const struct br_cli_args *a)
{
    const char *config_path = a->config;
    struct br_config *cfg;
    struct br_store *store;
    char *json = NULL;
    int rc = br_cli_open_store(config_path, &cfg, &store);

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

int
br_cmd_retry(const struct br_cli_args *a)
{
    const char *config_path = a->config, *id_text = a->job_id;
    int all = a->all;
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
    if ((rc = br_cli_open_store(config_path, &cfg, &store)))
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
br_cmd_check_config(const struct br_cli_args *a)
{
    struct br_config *cfg;
    int rc = br_cli_load_config(a->config, &cfg);

    /* Notices are not problems: the bridge runs as configured, and says how. */
    for (size_t k = 0; rc == 0 && k < cfg->notices.n; k++)
        printf("notice: %s\n", cfg->notices.items[k]);
    br_config_free(cfg);
    br_log_clear_secrets();
    if (rc == 0)
        printf("%s: OK\n", a->config);
    return rc ? 1 : 0;
}
