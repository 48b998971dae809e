/*
 * test_crm.c - the CRM card's pure parts: money from integer cents, and
 * the template context made of a card.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge/crm.h"

static void
expect_money(int64_t cents, const char *currency, const char *want)
{
    char *got = br_crm_money(cents, currency);
    assert_string_equal(got, want);
    free(got);
}

static void
test_money(void **state)
{
    (void)state;
    expect_money(0, "USD", "0.00 USD");
    expect_money(5, "USD", "0.05 USD");
    expect_money(3000, "USD", "30.00 USD");
    expect_money(123450, "EUR", "1,234.50 EUR");
    expect_money(100000000, "USD", "1,000,000.00 USD");
    expect_money(99999, NULL, "999.99");
    expect_money(-2500, "GBP", "-25.00 GBP");
    expect_money(-1, "", "-0.01");
    expect_money(INT64_MIN, "USD", "-92,233,720,368,547,758.08 USD");
}

static void
test_context(void **state)
{
    json_t *card, *ctx, *acts;
    (void)state;

    ctx = br_crm_context(NULL);
    assert_true(json_is_false(json_object_get(ctx, "found")));
    assert_int_equal(json_object_size(ctx), 1);
    json_decref(ctx);

    card = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:[{s:s, s:s, s:I}, {s:s, s:s, s:I, s:s}]}",
                     "email", "ceo@acme.test", "name", "Acme", "url", "https://app.chartmogul.com/#customers/1-Acme",
                     "status", "Active", "plan", "Pro", "mrr", (json_int_t)3000, "arr", (json_int_t)36000,
                     "currency", "USD", "activities", "date", "2025-02-01", "type", "expansion", "amount",
                     (json_int_t)1000, "date", "2025-01-01", "type", "new_biz", "amount", (json_int_t)2000,
                     "currency", "EUR");
    ctx = br_crm_context(card);
    assert_true(json_is_true(json_object_get(ctx, "found")));
    assert_string_equal(json_string_value(json_object_get(ctx, "matched_email")), "ceo@acme.test");
    assert_string_equal(json_string_value(json_object_get(ctx, "mrr")), "30.00 USD");
    assert_string_equal(json_string_value(json_object_get(ctx, "arr")), "360.00 USD");
    assert_string_equal(json_string_value(json_object_get(ctx, "url")), "https://app.chartmogul.com/#customers/1-Acme");
    assert_true(json_is_true(json_object_get(ctx, "has_activities")));
    acts = json_object_get(ctx, "activities");
    assert_int_equal(json_array_size(acts), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(acts, 0), "amount")), "10.00 USD");
    /* An activity in its own currency keeps it. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(acts, 1), "amount")), "20.00 EUR");
    json_decref(ctx);

    /* A link that is not a plain web address is left out (it is written as it is). */
    json_object_set_new(card, "url", json_string("javascript:alert(1)"));
    ctx = br_crm_context(card);
    assert_null(json_object_get(ctx, "url"));
    json_decref(ctx);
    json_object_set_new(card, "url", json_string("https://x.test/\" onclick=\"x"));
    ctx = br_crm_context(card);
    assert_null(json_object_get(ctx, "url"));
    json_decref(ctx);
    json_decref(card);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
