/*
 * forwarded.h - who sent a request that came through trusted reverse
 * proxies (listen.trusted_proxies): read from X-Forwarded-For, or when
 * that header is absent from Forwarded (RFC 7239: the for= of each
 * element, quoted "[IPv6]:port" and "IPv4:port" included).
 *
 * Each proxy appends the address it got the request from, so the list is
 * read from the right: addresses of trusted proxies are passed over, and
 * the first one that is not a trusted proxy is the client.  Whatever lies
 * left of it was written by the client itself and is never looked at.  A
 * value on the way that is not an address (garbage, "unknown", a hidden
 * "_name") ends the search without an answer: the caller keeps the peer.
 *
 * The caller asks only when the TCP peer is itself a trusted proxy; from
 * any other peer these headers mean nothing.  Pure functions.
 */
#ifndef BR_FORWARDED_H
#define BR_FORWARDED_H

#include "cidr.h"

/*
 * xff and forwarded: the headers' values (all of a header's lines joined
 * with commas), NULL or "" when absent.  0 with the client in out, or
 * BR_ENOTFOUND when the headers name no usable client.
 */
int br_forwarded_client(const char *xff, const char *forwarded, const struct br_cidr *trusted, size_t n_trusted,
                        struct br_addr *out);

#endif
