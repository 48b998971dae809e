/*
 * log.h - one line per event on stderr, in one of two formats:
 *
 *   text  "2026-11-22T07:40:00.123Z level msg"; under systemd (stderr is
 *         the journal stream JOURNAL_STREAM names) "<6>level msg" instead:
 *         the syslog priority for journald, which adds its own time
 *   json  {"time":...,"level":...,"module":...,"message":...} and, when
 *         known, "channel", "conversation" and "job"
 *
 * The module is the name of the source file that logs (BR_LOG_MODULE: a
 * file may define its own before including this header).  The channel,
 * conversation and job come from the current context (br_log_ctx_set):
 * the queue sets it while a job runs, the REST layer while its answers
 * are read, the handlers while a webhook is handled.
 *
 * Callers never pass secrets; untrusted bytes go through br_log_escape
 * (control characters and non-ASCII become \xNN) before they are logged.
 * The registered secrets are also masked as a last line of defence, in
 * both formats.  Loop thread only (the context is one global).
 */
#ifndef BR_LOG_H
#define BR_LOG_H

#include <stddef.h>
#include <stdint.h>

enum br_log_level { BR_LOG_DEBUG = 0, BR_LOG_INFO, BR_LOG_WARN, BR_LOG_ERROR };
enum br_log_format { BR_LOG_TEXT = 0, BR_LOG_JSON };

void br_log_set_level(enum br_log_level lvl);
int br_log_parse_level(const char *s, enum br_log_level *out);
void br_log_set_format(enum br_log_format fmt);
int br_log_parse_format(const char *s, enum br_log_format *out);
/*
 * Whether text lines carry syslog priorities for journald: by default
 * (-1) when JOURNAL_STREAM names the device and inode of stderr, as
 * systemd sets it for a service whose output goes to the journal.
 */
void br_log_set_journal(int on);

/* Registers a string that must never appear in a log line (copied; once however often it comes). */
void br_log_add_secret(const char *secret);
void br_log_clear_secrets(void);
/* Overwrites every registered secret in line with '*' (for text printed outside the log). */
void br_log_mask(char *line);

/* What a log line is about, beyond its module: empty fields are left out. */
#define BR_LOG_CHANNEL_MAX 64
struct br_log_ctx {
    char channel[BR_LOG_CHANNEL_MAX]; /* a configured channel's name, "" for none */
    int64_t conversation;             /* 0 for none */
    int64_t job;                      /* 0 for none */
};

/* The context now, and a new one (NULL: none).  Set and put back the one before. */
void br_log_ctx_get(struct br_log_ctx *out);
void br_log_ctx_set(const struct br_log_ctx *ctx);
/* Fills ctx (a channel name longer than the field is cut). */
void br_log_ctx_make(struct br_log_ctx *ctx, const char *channel, int64_t conversation, int64_t job);

void br_log_at(enum br_log_level lvl, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Escapes at most max bytes of s into a static-free, caller-owned string. */
char *br_log_escape(const char *s, size_t max);

#ifndef BR_LOG_MODULE
#define BR_LOG_MODULE __FILE__ /* the file's name without its directory and ".c" */
#endif

#define br_log(lvl, ...) br_log_at((lvl), BR_LOG_MODULE, __VA_ARGS__)
#define br_debug(...) br_log(BR_LOG_DEBUG, __VA_ARGS__)
#define br_info(...) br_log(BR_LOG_INFO, __VA_ARGS__)
#define br_warn(...) br_log(BR_LOG_WARN, __VA_ARGS__)
#define br_error(...) br_log(BR_LOG_ERROR, __VA_ARGS__)

#endif
