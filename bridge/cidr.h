/*
 * cidr.h - IP addresses and address ranges ("10.0.0.0/8", "2001:db8::/32",
 * or one address), as listen.trusted_proxies lists them.  Parsing is
 * inet_pton's, strict: no names, no zone ids, no spaces.  An IPv4 address
 * mapped into IPv6 (::ffff:10.1.2.3, as a dual-stack socket reports IPv4
 * peers) is the IPv4 address.  Pure functions, no allocation.
 */
#ifndef BR_CIDR_H
#define BR_CIDR_H

#include <stdbool.h>
#include <stddef.h>

/* Room for any address as text (INET6_ADDRSTRLEN), with its NUL. */
#define BR_ADDR_TEXT_MAX 46

struct br_addr {
    int family;              /* AF_INET or AF_INET6 */
    unsigned char bytes[16]; /* network order; 4 used for AF_INET */
};

struct br_cidr {
    struct br_addr addr;     /* bits past the prefix are 0 */
    unsigned prefix;         /* 0..32 or 0..128 */
};

/* One address, exactly; 0 or BR_EINVAL. */
int br_addr_parse(const char *text, struct br_addr *out);
/* The address in its usual form ("10.1.2.3", "2001:db8::7") into out (BR_ADDR_TEXT_MAX bytes). */
void br_addr_format(const struct br_addr *a, char *out);
/*
 * "addr" (the whole address) or "addr/prefix"; 0, or BR_EINVAL with a
 * reason for a person in why (why_len bytes) - a host part that is not 0
 * ("10.0.0.1/8") is refused as the likely typo it is.
 */
int br_cidr_parse(const char *text, struct br_cidr *out, char *why, size_t why_len);
bool br_cidr_contains(const struct br_cidr *range, const struct br_addr *a);
/* Whether any of the n ranges holds a. */
bool br_cidr_list_contains(const struct br_cidr *ranges, size_t n, const struct br_addr *a);

#endif
