#include "log.h"

#include "br.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum br_log_level level = BR_LOG_INFO;
static char **secrets;
static size_t nsecrets;

void
br_log_set_level(enum br_log_level lvl)
{
    level = lvl;
}

int
br_log_parse_level(const char *s, enum br_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < BR_ARRAY_SIZE(names); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum br_log_level)i;
            return 0;
        }
    }
    return BR_EINVAL;
}

void
br_log_add_secret(const char *secret)
{
    /* Very short strings would mask ordinary words; config refuses them anyway. */
    if (secret == NULL || strlen(secret) < 4)
        return;
    /* Each reload registers the config's secrets again: keep one copy. */
    for (size_t i = 0; i < nsecrets; i++)
        if (strcmp(secrets[i], secret) == 0)
            return;
    secrets = br_realloc(secrets, (nsecrets + 1) * sizeof(*secrets));
    secrets[nsecrets++] = br_strdup(secret);
}

void
br_log_clear_secrets(void)
{
    for (size_t i = 0; i < nsecrets; i++)
        free(secrets[i]);
    free(secrets);
    secrets = NULL;
    nsecrets = 0;
}

void
br_log_mask(char *line)
{
    for (size_t i = 0; i < nsecrets; i++) {
        size_t n = strlen(secrets[i]);
        char *p = line;
        while ((p = strstr(p, secrets[i])) != NULL) {
            memset(p, '*', n);
            p += n;
        }
    }
}

void
br_log(enum br_log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    struct br_buf b;
    struct timeval tv;
    struct tm tm;
    char ts[32];
    va_list ap;

    if (lvl < level)
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    br_buf_init(&b, 64 * 1024);
    br_buf_printf(&b, "%s.%03dZ %s ", ts, (int)(tv.tv_usec / 1000), names[lvl]);
    va_start(ap, fmt);
    br_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    br_buf_putc(&b, '\n');
    br_log_mask(b.data);
    fputs(b.data, stderr);
    fflush(stderr);
    br_buf_dispose(&b);
}

char *
br_log_escape(const char *s, size_t max)
{
    struct br_buf b;
    size_t i;

    br_buf_init(&b, 0);
    if (s == NULL)
        return br_strdup("(null)");
    for (i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '\\')
            br_buf_printf(&b, "\\x%02x", c);
        else
            br_buf_putc(&b, (char)c);
    }
    if (s[i])
        br_buf_puts(&b, "...");
    return br_buf_steal(&b);
}
