/*
 * br.h - what every part of chatra-bridge shares: the error codes, the
 * allocation wrappers that abort on out-of-memory, and the bounded
 * growable buffer.  No I/O happens here; everything is single-threaded.
 */
#ifndef BR_BR_H
#define BR_BR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Every function that can fail returns 0 or one of these (negative). */
enum br_err {
    BR_OK = 0,
    BR_ENOMEM = -1,     /* never returned in practice: OOM aborts */
    BR_EINVAL = -2,     /* bad input from outside (config, webhook, API answer) */
    BR_EIO = -3,        /* file, socket or database error */
    BR_ENOTFOUND = -4,  /* the thing asked for does not exist */
    BR_EEXIST = -5,     /* already done (idempotent repeat) */
    BR_ETIMEDOUT = -6,  /* an upstream did not answer in time */
    BR_ERETRY = -7,     /* a transient upstream failure: try again later */
    BR_EFATAL = -8,     /* a permanent upstream failure: do not retry */
    BR_ELIMIT = -9,     /* a size or depth limit was exceeded */
    BR_EPARSE = -10,    /* input could not be parsed */
    BR_ECANCELED = -11, /* the operation was cancelled by shutdown */
    BR_EAUTH = -12,     /* authentication failed */
};

const char *br_strerror(int err);

/* Allocation that never returns NULL: a daemon should not limp on. */
void *br_malloc(size_t n);
void *br_calloc(size_t n, size_t size);
void *br_realloc(void *p, size_t n);
char *br_strdup(const char *s);
char *br_strndup(const char *s, size_t n);
char *br_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A growable byte buffer with a hard maximum.  data is always
 * NUL-terminated (when non-NULL) so it can be used as a C string.
 * Appending beyond max returns BR_ELIMIT and leaves the buffer unchanged.
 * max == 0 means the default of 16 MiB.
 */
struct br_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void br_buf_init(struct br_buf *b, size_t max);
void br_buf_dispose(struct br_buf *b);
void br_buf_reset(struct br_buf *b);
/* Cuts the text back to its first len bytes (len <= b->len): what a failed append left is undone. */
void br_buf_truncate(struct br_buf *b, size_t len);
int br_buf_append(struct br_buf *b, const void *p, size_t n);
int br_buf_puts(struct br_buf *b, const char *s);
int br_buf_putc(struct br_buf *b, char c);
int br_buf_printf(struct br_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int br_buf_vprintf(struct br_buf *b, const char *fmt, va_list ap);
/* Hands the data to the caller (who frees it with free()) and resets b. */
char *br_buf_steal(struct br_buf *b);

#define BR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
