/*
 * cidr.c - IP addresses and address ranges: inet_pton does the reading,
 * this file the prefix and the comparison.
 */
#include "cidr.h"

#include "br.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int
br_addr_parse(const char *text, struct br_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL)
        return BR_EINVAL;
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->bytes) == 1) {
        out->family = AF_INET6;
        if (memcmp(out->bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
            memmove(out->bytes, out->bytes + 12, 4);
            memset(out->bytes + 4, 0, 12);
            out->family = AF_INET;
        }
        return 0;
    }
    return BR_EINVAL;
}

void
br_addr_format(const struct br_addr *a, char *out)
{
    if (inet_ntop(a->family, a->bytes, out, BR_ADDR_TEXT_MAX) == NULL)
        snprintf(out, BR_ADDR_TEXT_MAX, "?");
}

static unsigned
max_prefix(int family)
{
    return family == AF_INET ? 32 : 128;
}

int
br_cidr_parse(const char *text, struct br_cidr *out, char *why, size_t why_len)
{
    char addr[BR_ADDR_TEXT_MAX];
    const char *slash = strchr(text, '/');
    size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
    unsigned long prefix;

    memset(out, 0, sizeof(*out));
    if (alen == 0 || alen >= sizeof(addr)) {
        snprintf(why, why_len, "is not an IP address or a range such as 10.0.0.0/8 or 2001:db8::/32");
        return BR_EINVAL;
    }
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    /* A mapped IPv4 address here would be a range of IPv6 bits: take it literally as written. */
    if (inet_pton(AF_INET, addr, out->addr.bytes) == 1) {
        out->addr.family = AF_INET;
    } else if (inet_pton(AF_INET6, addr, out->addr.bytes) == 1) {
        out->addr.family = AF_INET6;
    } else {
        snprintf(why, why_len, "is not an IP address or a range such as 10.0.0.0/8 or 2001:db8::/32");
        return BR_EINVAL;
    }
    prefix = max_prefix(out->addr.family);
    if (slash != NULL) {
        const char *p = slash + 1;
        size_t digits = strspn(p, "0123456789");

        if (digits == 0 || digits > 3 || p[digits] != '\0' ||
            (prefix = strtoul(p, NULL, 10)) > max_prefix(out->addr.family)) {
            snprintf(why, why_len, "has a bad prefix length after '/' (0 to %u)", max_prefix(out->addr.family));
            return BR_EINVAL;
        }
    }
    out->prefix = (unsigned)prefix;
    for (unsigned bit = out->prefix; bit < max_prefix(out->addr.family); bit++) {
        if (out->addr.bytes[bit / 8] & (0x80 >> (bit % 8))) {
            snprintf(why, why_len, "has bits set past its /%u prefix (the range starts lower)", out->prefix);
            return BR_EINVAL;
        }
    }
    /* ::ffff:10.0.0.0/104 is IPv4's 10.0.0.0/8: match it against IPv4 peers. */
    if (out->addr.family == AF_INET6 && out->prefix >= 96 &&
        memcmp(out->addr.bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
        memmove(out->addr.bytes, out->addr.bytes + 12, 4);
        memset(out->addr.bytes + 4, 0, 12);
        out->addr.family = AF_INET;
        out->prefix -= 96;
    }
    return 0;
}

bool
br_cidr_contains(const struct br_cidr *range, const struct br_addr *a)
{
    unsigned full = range->prefix / 8, rest = range->prefix % 8;

    if (range->addr.family != a->family)
        return false;
    if (memcmp(range->addr.bytes, a->bytes, full) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((range->addr.bytes[full] ^ a->bytes[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

bool
br_cidr_list_contains(const struct br_cidr *ranges, size_t n, const struct br_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (br_cidr_contains(&ranges[i], a))
            return true;
    return false;
}
