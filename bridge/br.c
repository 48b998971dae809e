#include "br.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
br_strerror(int err)
{
    switch (err) {
    case BR_OK: return "success";
    case BR_ENOMEM: return "out of memory";
    case BR_EINVAL: return "invalid input";
    case BR_EIO: return "input/output error";
    case BR_ENOTFOUND: return "not found";
    case BR_EEXIST: return "already exists";
    case BR_ETIMEDOUT: return "timed out";
    case BR_ERETRY: return "temporary failure";
    case BR_EFATAL: return "permanent failure";
    case BR_ELIMIT: return "limit exceeded";
    case BR_EPARSE: return "parse error";
    case BR_ECANCELED: return "cancelled";
    case BR_EAUTH: return "authentication failed";
    }
    return "unknown error";
}

static void
oom(size_t n)
{
    fprintf(stderr, "chatra-bridge: out of memory (%zu bytes)\n", n);
    abort();
}

void *
br_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
br_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *
br_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *
br_strdup(const char *s)
{
    return br_strndup(s, strlen(s));
}

char *
br_strndup(const char *s, size_t n)
{
    char *p = br_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
br_asprintf(const char *fmt, ...)
{
    struct br_buf b;
    va_list ap;

    br_buf_init(&b, 0);
    va_start(ap, fmt);
    br_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (b.data == NULL)
        return br_strdup("");
    return br_buf_steal(&b);
}

#define BR_BUF_DEFAULT_MAX (16u * 1024 * 1024)

void
br_buf_init(struct br_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : BR_BUF_DEFAULT_MAX;
}

void
br_buf_dispose(struct br_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void
br_buf_reset(struct br_buf *b)
{
    br_buf_truncate(b, 0);
}

void
br_buf_truncate(struct br_buf *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = '\0';
}

static int
reserve(struct br_buf *b, size_t extra)
{
    size_t need, cap;

    if (extra > b->max || b->len > b->max - extra)
        return BR_ELIMIT;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = br_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int
br_buf_append(struct br_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
br_buf_puts(struct br_buf *b, const char *s)
{
    return br_buf_append(b, s, strlen(s));
}

int
br_buf_putc(struct br_buf *b, char c)
{
    return br_buf_append(b, &c, 1);
}

int
br_buf_vprintf(struct br_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    int rc;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return BR_EINVAL;
    rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int
br_buf_printf(struct br_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = br_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *
br_buf_steal(struct br_buf *b)
{
    char *p = b->data;
    if (p == NULL)
        p = br_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
