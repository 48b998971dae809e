/*
 * main.c - the chatra-bridge command line: one table of commands, each with
 * its options and its help, and the argument parsing they share.
 *
 *   chatra-bridge [run] [--config FILE]       run the bridge
 *   chatra-bridge COMMAND [options]            see "chatra-bridge help"
 *
 * Without --config, the config is /etc/chatra-bridge/bridge.json.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_CONFIG "/etc/chatra-bridge/bridge.json"

/* Options a command takes, besides --config and --help. */
enum {
    OPT_EMAIL = 1 << 0,
    OPT_MERGE = 1 << 1,
    OPT_ID = 1 << 2,
    OPT_ALL = 1 << 3,
    OPT_TO = 1 << 4,
};

struct command {
    const char *name;
    int (*fn)(const struct br_cli_args *a);
    unsigned opts;
    const char *args;     /* its synopsis after the name */
    const char *summary;  /* one line for the list of commands */
    const char *help;     /* what "help COMMAND" adds */
};

static const struct command commands[] = {
    {"run", br_cmd_run, 0, "[--config FILE]", "run the bridge (the default command)",
     "Runs the daemon in the foreground: it answers Chatra's and the tracker's\n"
     "webhooks and works through its job queue until SIGTERM or SIGINT.\n"
     "One daemon per store: a second one on the same store.path exits 1,\n"
     "naming the running one's PID (the lock is <store.path>.lock).\n"
     "SIGHUP reads the config and its templates again (a config with problems\n"
     "is refused; the listening address and the store change at a restart).\n"},
    {"check-config", br_cmd_check_config, 0, "[--config FILE]", "check the config and its templates",
     "Loads the config as the daemon would (secrets included) and prints every\n"
     "problem with its place, then \"FILE: OK\" or the number of problems.\n"
     "Exit status: 0 OK, 1 problems.\n"},
    {"identities", br_cmd_identities, OPT_EMAIL, "[--config FILE] [--email E]",
     "print the identity map (persons, e-mails, devices, merges)",
     "Prints the persons the bridge knows as JSON: their e-mails, devices and\n"
     "conversations, and every merge of two devices with its reason.  --email\n"
     "shows only the person with that address.  Needs only store.path.\n"},
    {"unmerge", br_cmd_unmerge, OPT_MERGE, "[--config FILE] --merge N", "undo merge N (see identities)",
     "Undoes a merge of two devices: the joined conversation gets its own\n"
     "devices and e-mails back.  Needs only store.path.\n"},
    {"dead-letters", br_cmd_dead_letters, 0, "[--config FILE]",
     "list the jobs that failed for good, with request and answer",
     "Prints the dead letters as JSON: id, kind, conversation, upstream,\n"
     "attempts, time, error, the last request and its answer.  Needs only\n"
     "store.path.\n"},
    {"retry", br_cmd_retry, OPT_ID | OPT_ALL, "[--config FILE] (--id N | --all)",
     "put dead jobs back in the queue",
     "Puts dead letter N (or all of them) back in the queue; a running bridge\n"
     "picks them up within a second.  Needs only store.path.\n"},
    {"crm", br_cmd_crm, OPT_EMAIL, "[--config FILE] --email E",
     "print the CRM card the bridge would show for an e-mail",
     "Asks the CRM of enrich (ChartMogul) about the address now, as the bridge\n"
     "does for a visitor, and prints what the task's card would show as JSON:\n"
     "\"crm\" (the template's variables) and \"card\" (the rendered crm_card text).\n"
     "It needs the whole config with its secrets (the CRM's api_key), and sends\n"
     "its requests at enrich's rate; the store's cache is neither read nor written.\n"
     "Exit status: 0 shown (found or not found), 1 the CRM could not be asked,\n"
     "2 no --email, or no enrich section in the config.\n"},
    {"backup", br_cmd_backup, OPT_TO, "[--config FILE] --to PATH",
     "write a consistent copy of the store, also while the bridge runs",
     "Copies the store with SQLite's online backup API into the new file PATH\n"
     "(never over an existing one): the store as it was when the backup began,\n"
     "checked with PRAGMA integrity_check, one file that the bridge opens as its\n"
     "store.  The running bridge goes on meanwhile.  Needs only store.path.\n"
     "To restore: stop the bridge, move the store and its -wal and -shm files\n"
     "away, copy PATH to store.path, start the bridge.\n"
     "Exit status: 0 written, 1 failed (nothing written at PATH), 2 no --to,\n"
     "or the config's store section is wrong.\n"},
};

static const struct command *
find(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: chatra-bridge [COMMAND] [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-14s %s\n", "help COMMAND", "what a command does and takes");
    fprintf(f, "\n--config FILE (-c FILE) defaults to " DEFAULT_CONFIG ".\n"
               "chatra-bridge --version prints the version.\n");
}

static void
command_help(FILE *f, const struct command *c)
{
    fprintf(f, "usage: chatra-bridge %s %s\n\n%s\n%s", c->name, c->args, c->summary, c->help);
    fprintf(f, "\n--config FILE (-c FILE) defaults to " DEFAULT_CONFIG ".\n");
}

/* "help [COMMAND]". */
static int
help(int argc, char **argv)
{
    const struct command *c;

    if (argc < 3) {
        usage(stdout);
        return 0;
    }
    if ((c = find(argv[2])) == NULL) {
        fprintf(stderr, "chatra-bridge: there is no command \"%s\"\n", argv[2]);
        usage(stderr);
        return 2;
    }
    command_help(stdout, c);
    return 0;
}

int
main(int argc, char **argv)
{
    struct br_cli_args a = {0};
    const struct command *c = &commands[0];
    int i = 1;

    if (argc > 1 && argv[1][0] != '-') {
        if (strcmp(argv[1], "help") == 0)
            return help(argc, argv);
        if ((c = find(argv[1])) == NULL) {
            fprintf(stderr, "chatra-bridge: unknown command \"%s\"\n", argv[1]);
            usage(stderr);
            return 2;
        }
        i = 2;
    }
    for (; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;

        if ((strcmp(arg, "--config") == 0 || strcmp(arg, "-c") == 0) && value) {
            a.config = argv[++i];
        } else if (strncmp(arg, "--config=", 9) == 0) {
            a.config = arg + 9;
        } else if ((c->opts & OPT_EMAIL) && strcmp(arg, "--email") == 0 && value) {
            a.email = argv[++i];
        } else if ((c->opts & OPT_MERGE) && strcmp(arg, "--merge") == 0 && value) {
            a.merge = argv[++i];
        } else if ((c->opts & OPT_ID) && strcmp(arg, "--id") == 0 && value) {
            a.job_id = argv[++i];
        } else if ((c->opts & OPT_TO) && strcmp(arg, "--to") == 0 && value) {
            a.to = argv[++i];
        } else if ((c->opts & OPT_ALL) && strcmp(arg, "--all") == 0) {
            a.all = 1;
        } else if (strcmp(arg, "--version") == 0) {
            printf("chatra-bridge %s\n", BR_VERSION);
            return 0;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            if (c == &commands[0] && (argc < 2 || argv[1][0] == '-'))
                usage(stdout);
            else
                command_help(stdout, c);
            return 0;
        } else {
            fprintf(stderr, "chatra-bridge %s: unknown argument \"%s\"\n", c->name, arg);
            command_help(stderr, c);
            return 2;
        }
    }
    if (a.config == NULL)
        a.config = DEFAULT_CONFIG;
    return c->fn(&a);
}
