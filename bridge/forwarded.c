/*
 * forwarded.c - the client behind trusted proxies (forwarded.h): both
 * headers become one list of nodes (the hops, left to right), read from
 * the right by one rule.
 */
#include "forwarded.h"

#include "br.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Only the hops nearest to us matter; a longer list keeps its right end. */
#define MAX_NODES 32
/* "[ffff:...:255.255.255.255]:65535" fits with room to spare. */
#define NODE_MAX 64

/* A ring of the last MAX_NODES hops: total counts them all. */
struct nodes {
    char text[MAX_NODES][NODE_MAX]; /* "" for a hop that is not usable */
    size_t total;
};

static void
add_node(struct nodes *ns, const char *s, size_t len)
{
    char *slot = ns->text[ns->total++ % MAX_NODES];

    if (s == NULL || len >= NODE_MAX) {
        slot[0] = '\0';
        return;
    }
    memcpy(slot, s, len);
    slot[len] = '\0';
}

/* The k-th hop from the right (k < kept). */
static const char *
from_right(const struct nodes *ns, size_t k)
{
    return ns->text[(ns->total - 1 - k) % MAX_NODES];
}

static int
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* X-Forwarded-For: "client, proxy1, proxy2"; empty elements are skipped. */
static void
split_xff(const char *v, struct nodes *ns)
{
    while (*v != '\0') {
        const char *end = strchr(v, ',');
        size_t len = end != NULL ? (size_t)(end - v) : strlen(v);
        const char *s = v;

        while (len > 0 && is_ows(*s)) {
            s++;
            len--;
        }
        while (len > 0 && is_ows(s[len - 1]))
            len--;
        if (len > 0)
            add_node(ns, s, len);
        if (end == NULL)
            break;
        v = end + 1;
    }
}

/* RFC 7230 tchar. */
static int
is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::17]:4711".  One
 * node per element: its for= value, unquoted ("" when it has none).  0, or
 * BR_EPARSE when the header does not follow the grammar (nothing in it can
 * be relied on then).
 */
static int
split_forwarded(const char *p, struct nodes *ns)
{
    char value[NODE_MAX], for_value[NODE_MAX] = "";
    size_t vlen;
    bool have_pair = false, have_for = false, value_ok;

    for (;;) {
        const char *name;
        size_t nlen;
        bool is_for;

        while (is_ows(*p))
            p++;
        if (*p == ',' || *p == '\0') {
            /* The end of an element: one without for= is a hop nobody named; an empty one is no hop. */
            if (have_pair)
                add_node(ns, have_for ? for_value : NULL, have_for ? strlen(for_value) : 0);
            have_pair = have_for = false;
            if (*p == '\0')
                return 0;
            p++;
            continue;
        }
        if (*p == ';') {
            p++;
            continue;
        }
        name = p;
        while (is_tchar(*p))
            p++;
        nlen = (size_t)(p - name);
        if (nlen == 0 || *p != '=')
            return BR_EPARSE;
        p++;
        is_for = nlen == 3 && strncasecmp(name, "for", 3) == 0;
        have_pair = true;
        vlen = 0;
        value_ok = true;
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\0')
                    return BR_EPARSE;
                if (*p == '\\' && p[1] != '\0')
                    p++;
                if (vlen + 1 < sizeof(value))
                    value[vlen++] = *p;
                else
                    value_ok = false;
            }
            p++;
        } else {
            const char *start = p;
            while (is_tchar(*p))
                p++;
            if (p == start)
                return BR_EPARSE;
            if ((size_t)(p - start) < sizeof(value)) {
                memcpy(value, start, (size_t)(p - start));
                vlen = (size_t)(p - start);
            } else {
                value_ok = false;
            }
        }
        value[vlen] = '\0';
        while (is_ows(*p))
            p++;
        if (*p != ';' && *p != ',' && *p != '\0')
            return BR_EPARSE;
        if (is_for) {
            /* A second for= in one element is not the grammar's; a too long one is no address. */
            if (have_for)
                return BR_EPARSE;
            have_for = true;
            memcpy(for_value, value, sizeof(for_value));
            if (!value_ok)
                for_value[0] = '\0';
        }
    }
}

/* One hop as an address: "10.1.2.3", "10.1.2.3:80", "2001:db8::7", "[2001:db8::7]:80". */
static int
node_addr(const char *s, struct br_addr *out)
{
    char host[NODE_MAX];
    const char *port = NULL;
    size_t len;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return BR_EINVAL;
        len = (size_t)(close - s - 1);
        memcpy(host, s + 1, len);
        host[len] = '\0';
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return BR_EINVAL;
        if (strchr(host, ':') == NULL)
            return BR_EINVAL; /* brackets hold IPv6 only */
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            /* One colon: an IPv4 address with its port. */
            len = (size_t)(colon - s);
            memcpy(host, s, len);
            host[len] = '\0';
            port = colon + 1;
            if (strchr(host, '.') == NULL)
                return BR_EINVAL;
        } else {
            snprintf(host, sizeof(host), "%s", s);
        }
    }
    if (port != NULL) {
        size_t digits = strspn(port, "0123456789");
        if (digits == 0 || digits > 5 || port[digits] != '\0')
            return BR_EINVAL;
    }
    return br_addr_parse(host, out);
}

int
br_forwarded_client(const char *xff, const char *forwarded, const struct br_cidr *trusted, size_t n_trusted,
                    struct br_addr *out)
{
    struct nodes ns;
    struct br_addr a;
    bool any = false;

    ns.total = 0;
    if (xff != NULL && xff[0] != '\0')
        split_xff(xff, &ns);
    else if (forwarded != NULL && forwarded[0] != '\0' && split_forwarded(forwarded, &ns) != 0)
        return BR_ENOTFOUND;
    for (size_t k = 0; k < ns.total && k < MAX_NODES; k++) {
        if (node_addr(from_right(&ns, k), &a) != 0)
            return BR_ENOTFOUND;
        *out = a;
        any = true;
        if (!br_cidr_list_contains(trusted, n_trusted, &a))
            return 0;
    }
    /* Every hop was a trusted proxy: the request began at the left-most of them. */
    return any ? 0 : BR_ENOTFOUND;
}
