/*
 * test_email_tz.c - the normal form of e-mail addresses (Unicode lower
 * case, trimmed) and time zones by IANA name, from the machine's tzdata.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bridge/email.h"
#include "bridge/tz.h"

static void
expect_email(const char *in, const char *want)
{
    char *got = br_email_normalize(in, strlen(in));
    if (want == NULL) {
        assert_null(got);
    } else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
    free(got);
}

static void
test_email_lower_case_beyond_ascii(void **state)
{
    (void)state;
    expect_email("Maria@Example.ORG", "maria@example.org");
    expect_email("  Мария@Пример.РФ \n", "мария@пример.рф");
    expect_email("ÉLODIE@Exemple.fr", "élodie@exemple.fr");
    /* A decomposed accent (E + U+0301) is the same address as the composed one. */
    expect_email("E\xcc\x81lodie@exemple.fr", "élodie@exemple.fr");
    expect_email("STRASSE@GRÜN.DE", "strasse@grün.de");
}

static void
test_email_rejects_what_is_not_an_address(void **state)
{
    (void)state;
    expect_email("", NULL);
    expect_email("   ", NULL);
    expect_email("no-at-sign", NULL);
    expect_email("bad\xff@utf8.org", NULL);
    assert_null(br_email_normalize(NULL, 0));
}

static void
test_tz_known_names(void **state)
{
    (void)state;
    assert_true(br_tz_known("UTC"));
    assert_true(br_tz_known("Europe/Moscow"));
    assert_true(br_tz_known("America/New_York"));
    assert_false(br_tz_known("Mars/Olympus"));
    assert_false(br_tz_known("../etc/passwd"));
    assert_false(br_tz_known("/etc/localtime"));
    assert_false(br_tz_known("Europe")); /* a directory, not a zone */
    assert_false(br_tz_known("Europe/Moscow;rm"));
}

static void
test_tz_offsets_and_format(void **state)
{
    char out[64];
    int64_t t = 1764669600; /* 2025-12-02 10:00:00 UTC */
    (void)state;

    assert_int_equal(br_tz_offset("UTC", t), 0);
    assert_int_equal(br_tz_offset("Europe/Moscow", t), 3 * 3600);
    assert_int_equal(br_tz_offset("America/New_York", t), -5 * 3600);
    /* Summer time: New York is four hours behind in July. */
    assert_int_equal(br_tz_offset("America/New_York", 1751371200), -4 * 3600);
    br_tz_format("Europe/Moscow", t * 1000, "%d.%m.%Y %H:%M", out, sizeof(out));
    assert_string_equal(out, "02.12.2025 13:00");
    /* Switching back and forth gives each zone its own answer. */
    br_tz_format("UTC", t * 1000, "%H:%M", out, sizeof(out));
    assert_string_equal(out, "10:00");
    br_tz_format("Asia/Kolkata", t * 1000, "%H:%M", out, sizeof(out));
    assert_string_equal(out, "15:30");
    br_tz_format("Europe/Moscow", 0, "%H:%M", out, sizeof(out));
    assert_string_equal(out, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email_lower_case_beyond_ascii),
        cmocka_unit_test(test_email_rejects_what_is_not_an_address),
        cmocka_unit_test(test_tz_known_names),
        cmocka_unit_test(test_tz_offsets_and_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
