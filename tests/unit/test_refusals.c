/*
 * test_refusals.c - refused requests in the log (refusals.c): one line per
 * address and reason per minute, the count when the minute is over, a
 * full table, a detail escaped, and the close that writes what is left.
 * Time is given by the test; stderr goes to a temporary file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "bridge/br.h"
#include "bridge/log.h"
#include "bridge/refusals.h"
#include "bridge/store.h" /* br_now_ms */

/* 2026-11-22 12:00:01 UTC. */
#define T0 INT64_C(1795348801000)
#define MINUTE INT64_C(60000)

static char path[64];
static int fd = -1, saved = -1;

static int
setup(void **state)
{
    (void)state;
    br_log_set_level(BR_LOG_DEBUG);
    br_log_set_format(BR_LOG_TEXT);
    br_log_set_journal(1); /* "<4>warn ...": no clock in the lines */
    strcpy(path, "/tmp/br-test-refusals-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    unlink(path);
    return 0;
}

/* Every line logged so far (and forgets them): free it. */
static char *
logged(void)
{
    struct br_buf b;
    char chunk[4096];
    ssize_t n;

    fflush(stderr);
    br_buf_init(&b, 0);
    br_buf_puts(&b, "");
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        br_buf_append(&b, chunk, (size_t)n);
    assert_int_equal(ftruncate(fd, 0), 0);
    lseek(fd, 0, SEEK_SET);
    return br_buf_steal(&b);
}

static void
expect(const char *lines)
{
    char *got = logged();

    assert_string_equal(got, lines);
    free(got);
}

static void
test_once_a_minute_with_a_count(void **state)
{
    struct br_refusals *r = br_refusals_new(NULL);
    char name[32];

    (void)state;
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "shop%d", i);
        br_refusals_note(r, "203.0.113.7", 404, "unknown channel", name, T0 + i);
    }
    expect("<4>warn request from 203.0.113.7 refused: 404 unknown channel \"shop0\"\n");
    br_refusals_flush(r, T0 + MINUTE - 1);
    expect("");
    br_refusals_flush(r, T0 + MINUTE);
    expect("<4>warn request from 203.0.113.7 refused: 404 unknown channel \"shop49\" (49 more since 12:00:01)\n");
    /* Written once: the next minute starts with that line. */
    br_refusals_flush(r, T0 + 2 * MINUTE);
    expect("");
    br_refusals_note(r, "203.0.113.7", 404, "unknown channel", "x", T0 + MINUTE + 5);
    expect("");
    br_refusals_flush(r, T0 + 2 * MINUTE);
    expect("<4>warn request from 203.0.113.7 refused: 404 unknown channel \"x\" (1 more since 12:01:01)\n");
    /* A minute later with nothing counted: a line of its own at once. */
    br_refusals_note(r, "203.0.113.7", 404, "unknown channel", "y", T0 + 3 * MINUTE);
    expect("<4>warn request from 203.0.113.7 refused: 404 unknown channel \"y\"\n");
    br_refusals_close(r);
    expect("");
    br_refusals_free(r);
}

static void
test_each_key_its_own_line(void **state)
{
    struct br_refusals *r = br_refusals_new(NULL);

    (void)state;
    br_refusals_note(r, "203.0.113.7", 404, "unknown channel", "a", T0);
    br_refusals_note(r, "203.0.113.8", 404, "unknown channel", "a", T0);
    br_refusals_note(r, "203.0.113.7", 404, "no such endpoint", "POST /x", T0);
    br_refusals_note(r, "203.0.113.7", 429, "too many requests from this address", NULL, T0);
    br_refusals_note(r, "203.0.113.7", 413, "body too large", "POST /webhooks/chatra/shop/...", T0);
    br_refusals_note(r, "203.0.113.7", 429, "too many requests from this address", NULL, T0 + 1);
    expect("<4>warn request from 203.0.113.7 refused: 404 unknown channel \"a\"\n"
           "<4>warn request from 203.0.113.8 refused: 404 unknown channel \"a\"\n"
           "<4>warn request from 203.0.113.7 refused: 404 no such endpoint \"POST /x\"\n"
           "<4>warn request from 203.0.113.7 refused: 429 too many requests from this address\n"
           "<4>warn request from 203.0.113.7 refused: 413 body too large \"POST /webhooks/chatra/shop/...\"\n");
    /* The process ends: the counts not yet written are written now. */
    br_refusals_close(r);
    expect("<4>warn request from 203.0.113.7 refused: 429 too many requests from this address "
           "(1 more since 12:00:01)\n");
    br_refusals_free(r);
}

static void
test_a_late_count_goes_first(void **state)
{
    struct br_refusals *r = br_refusals_new(NULL);

    (void)state;
    br_refusals_note(r, "::1", 401, "wrong webhook secret", "shop", T0);
    br_refusals_note(r, "::1", 401, "wrong webhook secret", "support", T0 + 1000);
    /* No flush came (a busy loop): the next refusal writes the count before its own line. */
    br_refusals_note(r, "::1", 401, "wrong webhook secret", "shop", T0 + 2 * MINUTE);
    expect("<4>warn request from ::1 refused: 401 wrong webhook secret \"shop\"\n"
           "<4>warn request from ::1 refused: 401 wrong webhook secret \"support\" (1 more since 12:00:01)\n"
           "<4>warn request from ::1 refused: 401 wrong webhook secret \"shop\"\n");
    br_refusals_close(r);
    br_refusals_free(r);
}

static void
test_details_are_escaped(void **state)
{
    struct br_refusals *r = br_refusals_new(NULL);
    char long_detail[300];

    (void)state;
    br_refusals_note(r, "192.0.2.1", 404, "unknown channel", "a\"b\\c\n\x01\xd1\x88", T0);
    memset(long_detail, 'x', sizeof(long_detail) - 1);
    long_detail[sizeof(long_detail) - 1] = '\0';
    br_refusals_note(r, "192.0.2.2", 404, "unknown channel", long_detail, T0);
    br_refusals_note(r, "192.0.2.3\n", 404, "unknown channel", NULL, T0);
    expect("<4>warn request from 192.0.2.1 refused: 404 unknown channel \"a\\x22b\\x5cc\\x0a\\x01\\xd1\\x88\"\n"
           "<4>warn request from 192.0.2.2 refused: 404 unknown channel "
           "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\"\n"
           "<4>warn request from 192.0.2.3\\x0a refused: 404 unknown channel\n");
    br_refusals_close(r);
    br_refusals_free(r);
}

/* However many addresses come, the table keeps its size; the one that logged longest ago makes room. */
static void
test_a_full_table(void **state)
{
    struct br_refusals *r = br_refusals_new(NULL);
    char addr[64], *out;
    int lines = 0;

    (void)state;
    for (int i = 0; i < 2000; i++) {
        snprintf(addr, sizeof(addr), "2001:db8::%x", i);
        br_refusals_note(r, addr, 404, "no such endpoint", NULL, T0 + i);
        br_refusals_note(r, addr, 404, "no such endpoint", NULL, T0 + i);
    }
    out = logged();
    for (char *p = out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    /* A first line each, and the counts of those pushed out (2000 - the table's 512). */
    assert_int_equal(lines, 2000 + 2000 - 512);
    assert_non_null(strstr(out, "request from 2001:db8::0 refused: 404 no such endpoint (1 more since 12:00:01)\n"));
    free(out);
    /* The last 512 are still counted. */
    br_refusals_close(r);
    out = logged();
    lines = 0;
    for (char *p = out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 512);
    assert_non_null(strstr(out, "2001:db8::7cf refused"));
    free(out);
    br_refusals_free(r);
}

/* On a loop: close writes what is counted and closes the timer, so that the loop can close. */
static void
test_on_a_loop(void **state)
{
    uv_loop_t loop;
    struct br_refusals *r;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    r = br_refusals_new(&loop);
    br_refusals_note(r, "198.51.100.1", 413, "body too large", NULL, br_now_ms());
    br_refusals_note(r, "198.51.100.1", 413, "body too large", NULL, br_now_ms());
    expect("<4>warn request from 198.51.100.1 refused: 413 body too large\n");
    /* The timer waits for the minute: a run of the loop that does not block writes nothing. */
    uv_run(&loop, UV_RUN_NOWAIT);
    expect("");
    br_refusals_close(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    br_refusals_free(r);
    {
        char *out = logged();
        assert_non_null(strstr(out, "413 body too large (1 more since "));
        free(out);
    }
    /* NULL is nothing. */
    br_refusals_note(NULL, "x", 404, "y", NULL, T0);
    br_refusals_flush(NULL, T0);
    br_refusals_close(NULL);
    br_refusals_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_once_a_minute_with_a_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_key_its_own_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_late_count_goes_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_details_are_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_a_loop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
