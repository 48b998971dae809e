/*
 * backup.c - "chatra-bridge backup --to PATH": a consistent copy of the
 * store, taken beside a running daemon (bridge/store_backup.c does the
 * copying).  Like the other store commands it reads only the config's
 * store section and takes no lock.
 */
#include "cli.h"

#include "bridge/config.h"
#include "bridge/log.h"
#include "bridge/store.h"

#include <stdio.h>
#include <unistd.h>

/* On a terminal, a big store shows how far the copy is. */
static void
progress(void *arg, int copied, int total)
{
    (void)arg;
    if (total > 0)
        fprintf(stderr, "\rbackup: %d%%", (int)(100.0 * copied / total));
}

int
br_cmd_backup(const struct br_cli_args *a)
{
    struct br_backup b = {0};
    struct br_config *cfg;
    struct br_store *store;
    int rc;

    if (a->to == NULL || a->to[0] == '\0') {
        fprintf(stderr, "chatra-bridge: backup needs --to PATH (a new file to write the copy to)\n");
        return 2;
    }
    if ((rc = br_cli_open_store(a->config, &cfg, &store)) != 0)
        return rc;
    if (isatty(STDERR_FILENO))
        b.progress = progress;
    rc = br_store_backup(store, a->to, &b);
    if (b.progress)
        fprintf(stderr, "\r");
    if (rc == 0)
        printf("backup of %s written to %s: %d pages, %lld KiB, integrity checked\n", cfg->store_path, a->to,
               b.pages, (long long)(b.bytes / 1024));
    else
        fprintf(stderr, "chatra-bridge: no backup written\n");
    br_store_free(store);
    br_config_free(cfg);
    br_log_clear_secrets();
    return rc ? 1 : 0;
}
