#include "email.h"

#include "br.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <unistr.h>

char *
br_email_normalize(const char *s, size_t len)
{
    size_t b = 0, e = len, n = 0;
    uint8_t *low;
    char *out;

    if (s == NULL)
        return NULL;
    while (b < e && isspace((unsigned char)s[b]))
        b++;
    while (e > b && isspace((unsigned char)s[e - 1]))
        e--;
    if (e == b || memchr(s + b, '@', e - b) == NULL || u8_check((const uint8_t *)s + b, e - b) != NULL)
        return NULL;
    /* Full Unicode case folding to lower case, composed (NFC): one spelling per address. */
    low = u8_tolower((const uint8_t *)s + b, e - b, NULL, UNINORM_NFC, NULL, &n);
    if (low == NULL)
        return NULL;
    out = br_strndup((const char *)low, n);
    free(low);
    return out;
}
