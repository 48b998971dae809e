/*
 * cli.h - the chatra-bridge command line: main.c parses the arguments and
 * calls one command; daemon.c runs the bridge; commands.c holds the
 * commands that check a config or read and repair the store; backup.c
 * copies the store.
 *
 * A command returns the process's exit status: 0 done, 1 failed, 2 the
 * command line or the config is wrong.
 */
#ifndef BR_CLI_H
#define BR_CLI_H

#define BR_VERSION "0.1.0"

struct br_config;
struct br_store;

/* What the command line said; NULL / 0 when not given. */
struct br_cli_args {
    const char *config;
    const char *email;
    const char *merge;
    const char *job_id;
    const char *to;
    int all;
};

/* Loads a config, printing its problem lines (secrets masked) to stderr. */
int br_cli_load_config(const char *path, struct br_config **cfg);
/*
 * Opens the store of a config for a store command: only the store section
 * is read (no secrets needed), and the daemon may be running (SQLite's WAL
 * lets both work; the daemon's lock is not taken).  An exit status when it
 * fails (problems printed), else 0 with *cfg and *store to free.
 */
int br_cli_open_store(const char *config_path, struct br_config **cfg, struct br_store **store);

int br_cmd_run(const struct br_cli_args *a);
int br_cmd_check_config(const struct br_cli_args *a);
int br_cmd_identities(const struct br_cli_args *a);
int br_cmd_unmerge(const struct br_cli_args *a);
int br_cmd_dead_letters(const struct br_cli_args *a);
int br_cmd_retry(const struct br_cli_args *a);
int br_cmd_backup(const struct br_cli_args *a);
int br_cmd_crm(const struct br_cli_args *a);

#endif
