/*
 * log.h - one line per event on stderr: "2026-11-22T07:40:00.123Z level msg".
 * Callers never pass secrets; untrusted bytes go through br_log_escape
 * (control characters and non-ASCII become \xNN) before they are logged.
 * The registered secrets are also masked as a last line of defence.
 */
#ifndef BR_LOG_H
#define BR_LOG_H

#include <stddef.h>

enum br_log_level { BR_LOG_DEBUG = 0, BR_LOG_INFO, BR_LOG_WARN, BR_LOG_ERROR };

void br_log_set_level(enum br_log_level lvl);
int br_log_parse_level(const char *s, enum br_log_level *out);
/* Registers a string that must never appear in a log line (copied; once however often it comes). */
void br_log_add_secret(const char *secret);
void br_log_clear_secrets(void);
/* Overwrites every registered secret in line with '*' (for text printed outside the log). */
void br_log_mask(char *line);
void br_log(enum br_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Escapes at most max bytes of s into a static-free, caller-owned string. */
char *br_log_escape(const char *s, size_t max);

#define br_debug(...) br_log(BR_LOG_DEBUG, __VA_ARGS__)
#define br_info(...) br_log(BR_LOG_INFO, __VA_ARGS__)
#define br_warn(...) br_log(BR_LOG_WARN, __VA_ARGS__)
#define br_error(...) br_log(BR_LOG_ERROR, __VA_ARGS__)

#endif
