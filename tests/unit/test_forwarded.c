/*
 * test_forwarded.c - address ranges (cidr.c) and the client behind
 * trusted proxies (forwarded.c): what is a range, what it holds, and which
 * hop of X-Forwarded-For / Forwarded is the client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "bridge/br.h"
#include "bridge/cidr.h"
#include "bridge/forwarded.h"

static struct br_cidr
range(const char *text)
{
    struct br_cidr c;
    char why[120];

    if (br_cidr_parse(text, &c, why, sizeof(why)) != 0)
        fail_msg("%s: %s", text, why);
    return c;
}

static bool
holds(const char *range_text, const char *addr_text)
{
    struct br_cidr c = range(range_text);
    struct br_addr a;

    assert_int_equal(br_addr_parse(addr_text, &a), 0);
    return br_cidr_contains(&c, &a);
}

static void
test_ranges(void **state)
{
    (void)state;
    assert_true(holds("10.0.0.0/8", "10.255.1.2"));
    assert_false(holds("10.0.0.0/8", "11.0.0.1"));
    assert_true(holds("192.168.4.0/22", "192.168.7.255"));
    assert_false(holds("192.168.4.0/22", "192.168.8.0"));
    assert_true(holds("127.0.0.1", "127.0.0.1"));
    assert_false(holds("127.0.0.1", "127.0.0.2"));
    assert_true(holds("0.0.0.0/0", "203.0.113.7"));
    assert_false(holds("0.0.0.0/0", "2001:db8::1"));
    assert_true(holds("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(holds("2001:db8::/32", "2001:db9::1"));
    assert_true(holds("2001:db8::/33", "2001:db8:7fff::1"));
    assert_false(holds("2001:db8::/33", "2001:db8:8000::1"));
    assert_true(holds("::1", "::1"));
    assert_false(holds("::1", "127.0.0.1"));
    /* An IPv4 peer of a dual-stack socket, and a range written the mapped way. */
    assert_true(holds("127.0.0.0/8", "::ffff:127.0.0.1"));
    assert_true(holds("::ffff:10.0.0.0/104", "10.9.8.7"));
    assert_false(holds("::ffff:10.0.0.0/104", "11.9.8.7"));
}

static void
test_bad_ranges(void **state)
{
    static const char *const bad[] = {
        "", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/08x",
        "10.0.0.0/8/8", "10.0.0.1/8", "2001:db8::1/32", "localhost", "10.0.0", "10.0.0.0 /8", " 10.0.0.0",
        "fe80::1%eth0", "1.2.3.4.5", "[::1]", "10.0.0.0/0008",
    };
    struct br_cidr c;
    char why[120];

    (void)state;
    for (size_t i = 0; i < BR_ARRAY_SIZE(bad); i++) {
        why[0] = '\0';
        if (br_cidr_parse(bad[i], &c, why, sizeof(why)) == 0)
            fail_msg("\"%s\" was taken as a range", bad[i]);
        assert_true(why[0] != '\0');
    }
    assert_int_equal(br_cidr_parse("10.0.0.1/8", &c, why, sizeof(why)), BR_EINVAL);
    assert_non_null(strstr(why, "/8"));
    /* Prefix lengths that are fine. */
    assert_int_equal(range("10.0.0.0/008").prefix, 8);
    assert_int_equal(range("::/0").prefix, 0);
    assert_int_equal(range("2001:db8::1").prefix, 128);
}

static void
test_address_text(void **state)
{
    struct br_addr a;
    char out[BR_ADDR_TEXT_MAX];

    (void)state;
    assert_int_equal(br_addr_parse("2001:0db8:0000::0007", &a), 0);
    br_addr_format(&a, out);
    assert_string_equal(out, "2001:db8::7");
    assert_int_equal(br_addr_parse("::ffff:192.0.2.1", &a), 0);
    br_addr_format(&a, out);
    assert_string_equal(out, "192.0.2.1");
    assert_int_equal(br_addr_parse("192.0.2.1 ", &a), BR_EINVAL);
    assert_int_equal(br_addr_parse("", &a), BR_EINVAL);
    assert_int_equal(br_addr_parse(NULL, &a), BR_EINVAL);
}

/* The client the headers name with these trusted proxies, or "-" when they name none. */
static const char *
client(const char *xff, const char *fwd)
{
    static char out[BR_ADDR_TEXT_MAX];
    struct br_cidr trusted[] = {range("127.0.0.1"), range("10.0.0.0/8"), range("2001:db8:1::/48")};
    struct br_addr a;

    if (br_forwarded_client(xff, fwd, trusted, BR_ARRAY_SIZE(trusted), &a) != 0)
        return "-";
    br_addr_format(&a, out);
    return out;
}

static void
test_x_forwarded_for(void **state)
{
    (void)state;
    assert_string_equal(client("203.0.113.7", NULL), "203.0.113.7");
    assert_string_equal(client(" 203.0.113.7 ", NULL), "203.0.113.7");
    /* The right-most hop that is no trusted proxy; what the client wrote to its left is never read. */
    assert_string_equal(client("198.51.100.1, 203.0.113.7", NULL), "203.0.113.7");
    assert_string_equal(client("garbage, 203.0.113.7, 10.1.1.1,127.0.0.1", NULL), "203.0.113.7");
    assert_string_equal(client("203.0.113.7,,\t10.1.1.1", NULL), "203.0.113.7");
    assert_string_equal(client("2001:db8::7, 2001:db8:1::5", NULL), "2001:db8::7");
    assert_string_equal(client("[2001:db8::7]:443", NULL), "2001:db8::7");
    assert_string_equal(client("203.0.113.7:51000", NULL), "203.0.113.7");
    assert_string_equal(client("::ffff:203.0.113.7", NULL), "203.0.113.7");
    /* Only trusted proxies: the request began at the left-most of them. */
    assert_string_equal(client("10.0.0.5, 127.0.0.1", NULL), "10.0.0.5");
    /* Garbage where the client should be: no answer (the peer counts). */
    assert_string_equal(client("hello", NULL), "-");
    assert_string_equal(client("203.0.113.7, unknown", NULL), "-");
    assert_string_equal(client("203.0.113.7, 10.0.0.1 x", NULL), "-");
    assert_string_equal(client("[203.0.113.7]", NULL), "-");
    assert_string_equal(client("203.0.113.7:", NULL), "-");
    assert_string_equal(client("203.0.113.7:123456", NULL), "-");
    assert_string_equal(client("[2001:db8::7", NULL), "-");
    assert_string_equal(client("[2001:db8::7]x", NULL), "-");
    assert_string_equal(client("256.1.1.1", NULL), "-");
    assert_string_equal(client("0123456789012345678901234567890123456789012345678901234567890123456789", NULL), "-");
    assert_string_equal(client("", NULL), "-");
    assert_string_equal(client(" , ", NULL), "-");
    assert_string_equal(client(NULL, NULL), "-");
}

static void
test_forwarded(void **state)
{
    (void)state;
    assert_string_equal(client(NULL, "for=192.0.2.60"), "192.0.2.60");
    assert_string_equal(client("", "for=192.0.2.60;proto=http;by=203.0.113.43"), "192.0.2.60");
    assert_string_equal(client(NULL, "proto=http;FOR=\"192.0.2.60:8080\""), "192.0.2.60");
    assert_string_equal(client(NULL, "for=\"[2001:db8:cafe::17]:4711\""), "2001:db8:cafe::17");
    assert_string_equal(client(NULL, "for=\"[2001:db8:cafe::17]\""), "2001:db8:cafe::17");
    assert_string_equal(client(NULL, "for=192.0.2.43, for=198.51.100.17"), "198.51.100.17");
    assert_string_equal(client(NULL, "for=192.0.2.43, for=\"[2001:db8:1::1]\";by=x, for=127.0.0.1"), "192.0.2.43");
    assert_string_equal(client(NULL, "for=192.0.2.43 ; proto=https , for=10.1.2.3"), "192.0.2.43");
    /* A quoted-pair and a comma inside quotes belong to the value, not to the list. */
    assert_string_equal(client(NULL, "for=192.0.2.43;x=\"a,b\\\"c\";y=z"), "192.0.2.43");
    assert_string_equal(client(NULL, "for=192.0.2.43,"), "192.0.2.43");
    /* X-Forwarded-For first. */
    assert_string_equal(client("203.0.113.7", "for=192.0.2.43"), "203.0.113.7");
    /* Nothing usable. */
    assert_string_equal(client(NULL, "for=unknown"), "-");
    assert_string_equal(client(NULL, "for=_hidden"), "-");
    assert_string_equal(client(NULL, "for=192.0.2.43, proto=https"), "-");
    assert_string_equal(client(NULL, "for=192.0.2.43;for=192.0.2.44"), "-");
    assert_string_equal(client(NULL, "for=\"[2001:db8::1"), "-");
    assert_string_equal(client(NULL, "for=\"2001:db8::1\""), "2001:db8::1");
    assert_string_equal(client(NULL, "for=2001:db8::1"), "-"); /* ':' is no token character */
    assert_string_equal(client(NULL, "for"), "-");
    assert_string_equal(client(NULL, "=x"), "-");
    assert_string_equal(client(NULL, "for=;"), "-");
    assert_string_equal(client(NULL, "for=1.2.3.4 junk"), "-");
    assert_string_equal(client(NULL, ""), "-");
}

static void
test_long_lists_keep_their_right_end(void **state)
{
    char xff[2048] = "";

    (void)state;
    /* 60 hops: only the ones nearest to us are read. */
    for (int i = 0; i < 59; i++)
        strcat(xff, "junk, ");
    strcat(xff, "203.0.113.9");
    assert_string_equal(client(xff, NULL), "203.0.113.9");
    xff[0] = '\0';
    strcat(xff, "203.0.113.1");
    for (int i = 0; i < 59; i++)
        strcat(xff, ", 10.0.0.1");
    /* All the hops kept are trusted proxies: the left-most kept, a proxy's address, never the far left. */
    assert_string_equal(client(xff, NULL), "10.0.0.1");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_bad_ranges),
        cmocka_unit_test(test_address_text),
        cmocka_unit_test(test_x_forwarded_for),
        cmocka_unit_test(test_forwarded),
        cmocka_unit_test(test_long_lists_keep_their_right_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
