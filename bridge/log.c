#include "log.h"

#include "br.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (64 * 1024)

static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* sd-daemon(3): <3> err, <4> warning, <6> info, <7> debug. */
static const int level_priorities[] = {7, 6, 4, 3};

static enum br_log_level level = BR_LOG_INFO;
static enum br_log_format format = BR_LOG_TEXT;
static int journal = -1; /* not yet looked at */
static char **secrets;
static size_t nsecrets;
static struct br_log_ctx current;

void
br_log_set_level(enum br_log_level lvl)
{
    level = lvl;
}

int
br_log_parse_level(const char *s, enum br_log_level *out)
{
    for (size_t i = 0; i < BR_ARRAY_SIZE(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum br_log_level)i;
            return 0;
        }
    }
    return BR_EINVAL;
}

void
br_log_set_format(enum br_log_format fmt)
{
    format = fmt;
}

int
br_log_parse_format(const char *s, enum br_log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = BR_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = BR_LOG_JSON;
    else
        return BR_EINVAL;
    return 0;
}

void
br_log_set_journal(int on)
{
    journal = on;
}

/*
 * systemd sets JOURNAL_STREAM to "<device>:<inode>" of the stream it
 * connects to the journal.  A child whose stderr went elsewhere inherits
 * the variable, so it counts only when it names our stderr.
 */
static int
stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char end;

    if (v == NULL || sscanf(v, "%llu:%llu%c", &dev, &ino, &end) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
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

/* ---- the context ------------------------------------------------------ */

void
br_log_ctx_get(struct br_log_ctx *out)
{
    *out = current;
}

void
br_log_ctx_set(const struct br_log_ctx *ctx)
{
    if (ctx != NULL)
        current = *ctx;
    else
        memset(&current, 0, sizeof(current));
}

void
br_log_ctx_make(struct br_log_ctx *ctx, const char *channel, int64_t conversation, int64_t job)
{
    memset(ctx, 0, sizeof(*ctx));
    if (channel != NULL)
        snprintf(ctx->channel, sizeof(ctx->channel), "%s", channel);
    ctx->conversation = conversation;
    ctx->job = job;
}

/* ---- the line --------------------------------------------------------- */

/* "/src/bridge/jobs/task.c" -> "task" (into buf). */
static const char *
module_name(const char *file, char *buf, size_t n)
{
    const char *base = strrchr(file, '/');
    size_t len;

    base = base != NULL ? base + 1 : file;
    len = strlen(base);
    if (len > 2 && strcmp(base + len - 2, ".c") == 0)
        len -= 2;
    snprintf(buf, n, "%.*s", (int)len, base);
    return buf;
}

/* A JSON string of s; bytes that are not UTF-8 are written as \xNN first. */
static json_t *
json_text(const char *s)
{
    json_t *j = json_string(s);
    char *esc;

    if (j != NULL)
        return j;
    esc = br_log_escape(s, strlen(s));
    j = json_string(esc);
    free(esc);
    return j;
}

static void
json_line(struct br_buf *out, const char *ts, enum br_log_level lvl, const char *module, const char *msg)
{
    json_t *o = json_object();
    char *text;

    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[lvl]));
    json_object_set_new(o, "module", json_text(module));
    json_object_set_new(o, "message", json_text(msg));
    if (current.channel[0] != '\0')
        json_object_set_new(o, "channel", json_text(current.channel));
    if (current.conversation != 0)
        json_object_set_new(o, "conversation", json_integer(current.conversation));
    if (current.job != 0)
        json_object_set_new(o, "job", json_integer(current.job));
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        abort(); /* only out of memory: every string above is valid UTF-8 */
    br_buf_puts(out, text);
    br_buf_putc(out, '\n');
    free(text);
}

/*
 * A text line stays one line whatever a message carries (an upstream's
 * error text, say): control bytes are written as \xNN.  UTF-8 is kept.
 */
static void
put_one_line(struct br_buf *out, const char *msg)
{
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            br_buf_printf(out, "\\x%02x", *p);
        else
            br_buf_putc(out, (char)*p);
    }
}

void
br_log_at(enum br_log_level lvl, const char *module, const char *fmt, ...)
{
    struct br_buf msg, line;
    struct timeval tv;
    struct tm tm;
    char ts[40], mod[64];
    va_list ap;

    if (lvl < level)
        return;
    if (journal < 0)
        journal = stderr_is_journal();
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03dZ", (int)(tv.tv_usec / 1000));

    br_buf_init(&msg, LINE_MAX_BYTES);
    br_buf_puts(&msg, "");
    va_start(ap, fmt);
    if (br_buf_vprintf(&msg, fmt, ap) != 0)
        br_buf_puts(&msg, "(a message over 64 KiB, left out)");
    va_end(ap);
    /* Masked before any encoding: an escaped secret would not be found in the line. */
    br_log_mask(msg.data);

    br_buf_init(&line, 0);
    if (format == BR_LOG_JSON) {
        json_line(&line, ts, lvl, module_name(module, mod, sizeof(mod)), msg.data);
    } else {
        if (journal)
            br_buf_printf(&line, "<%d>%s ", level_priorities[lvl], level_names[lvl]);
        else
            br_buf_printf(&line, "%s %s ", ts, level_names[lvl]);
        put_one_line(&line, msg.data);
        br_buf_putc(&line, '\n');
    }
    fputs(line.data, stderr);
    fflush(stderr);
    br_buf_dispose(&line);
    br_buf_dispose(&msg);
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
