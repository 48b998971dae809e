/*
 * test_log.c - the log line (log.c): text and JSON, the journald prefix
 * and how it is detected, the module, the context, and the secrets masked
 * in both formats.  stderr goes to a temporary file while a test logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bridge/br.h"
#include "bridge/log.h"

struct capture {
    char path[64];
    int fd, saved;
};

static void
capture_start(struct capture *c)
{
    strcpy(c->path, "/tmp/br-test-log-XXXXXX");
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(dup2(c->fd, STDERR_FILENO) >= 0);
}

/* What was logged since capture_start: free it. */
static char *
capture_end(struct capture *c)
{
    struct br_buf b;
    char chunk[4096];
    ssize_t n;

    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    br_buf_init(&b, 0);
    br_buf_puts(&b, "");
    lseek(c->fd, 0, SEEK_SET);
    while ((n = read(c->fd, chunk, sizeof(chunk))) > 0)
        br_buf_append(&b, chunk, (size_t)n);
    close(c->fd);
    unlink(c->path);
    return br_buf_steal(&b);
}

static int
reset(void **state)
{
    (void)state;
    br_log_set_level(BR_LOG_DEBUG);
    br_log_set_format(BR_LOG_TEXT);
    br_log_set_journal(0);
    br_log_ctx_set(NULL);
    br_log_clear_secrets();
    unsetenv("JOURNAL_STREAM");
    return 0;
}

static void
assert_matches(const char *text, const char *pattern)
{
    regex_t re;

    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, text, 0, NULL, 0) != 0)
        fail_msg("\"%s\" does not match %s", text, pattern);
    regfree(&re);
}

static void
test_text_line(void **state)
{
    struct capture c;
    char *out;

    (void)state;
    capture_start(&c);
    br_warn("planfix: %d requests", 3);
    br_debug("a debug line");
    br_log_set_level(BR_LOG_INFO);
    br_debug("filtered");
    out = capture_end(&c);
    assert_matches(out, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z warn planfix: 3 requests\n"
                        "[0-9T:.Z-]+ debug a debug line\n$");
    free(out);
}

static void
test_journal_prefix(void **state)
{
    struct capture c;
    char *out;

    (void)state;
    br_log_set_journal(1);
    capture_start(&c);
    br_error("e");
    br_warn("w");
    br_info("i");
    br_debug("d");
    out = capture_end(&c);
    assert_string_equal(out, "<3>error e\n<4>warn w\n<6>info i\n<7>debug d\n");
    free(out);
}

/* JOURNAL_STREAM counts only when it names stderr's device and inode. */
static void
test_journal_detected(void **state)
{
    struct capture c;
    struct stat st;
    char v[64];
    char *out;

    (void)state;
    capture_start(&c);
    assert_int_equal(fstat(c.fd, &st), 0);
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
    br_log_set_journal(-1);
    br_info("to the journal");
    out = capture_end(&c);
    assert_string_equal(out, "<6>info to the journal\n");
    free(out);

    capture_start(&c);
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", v, 1);
    br_log_set_journal(-1);
    br_info("to a file");
    out = capture_end(&c);
    assert_matches(out, "^[0-9T:.Z-]+ info to a file\n$");
    free(out);

    capture_start(&c);
    setenv("JOURNAL_STREAM", "garbage", 1);
    br_log_set_journal(-1);
    br_info("garbage");
    out = capture_end(&c);
    assert_matches(out, "^[0-9T:.Z-]+ info garbage\n$");
    free(out);
}

static json_t *
one_json_line(const char *out)
{
    json_error_t je;
    json_t *o;

    /* One line: a newline at the end and nowhere else. */
    assert_non_null(strchr(out, '\n'));
    assert_int_equal(strchr(out, '\n')[1], '\0');
    o = json_loads(out, JSON_DISABLE_EOF_CHECK, &je);
    if (o == NULL)
        fail_msg("not JSON: %s (%s)", out, je.text);
    return o;
}

static void
test_json_line(void **state)
{
    struct br_log_ctx ctx;
    struct capture c;
    json_t *o;
    char *out;

    (void)state;
    br_log_set_format(BR_LOG_JSON);
    br_log_set_journal(1); /* JSON lines are never prefixed */
    br_log_ctx_make(&ctx, "shop", 12, 34);
    br_log_ctx_set(&ctx);
    capture_start(&c);
    br_log_at(BR_LOG_WARN, "/src/bridge/jobs/task.c", "quote \" backslash \\ newline \n tab \t %s", "end");
    out = capture_end(&c);
    o = one_json_line(out);
    assert_int_equal(json_object_size(o), 7);
    assert_matches(json_string_value(json_object_get(o, "time")),
                   "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$");
    assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(o, "module")), "task");
    assert_string_equal(json_string_value(json_object_get(o, "message")), "quote \" backslash \\ newline \n tab \t end");
    assert_string_equal(json_string_value(json_object_get(o, "channel")), "shop");
    assert_int_equal(json_integer_value(json_object_get(o, "conversation")), 12);
    assert_int_equal(json_integer_value(json_object_get(o, "job")), 34);
    /* The keys come in this order, for people who read the lines too. */
    assert_true(strncmp(out, "{\"time\":", 8) == 0);
    json_decref(o);
    free(out);

    /* Without a context: the four fields only; this file's own name as the module. */
    br_log_ctx_set(NULL);
    capture_start(&c);
    br_error("plain");
    out = capture_end(&c);
    o = one_json_line(out);
    assert_int_equal(json_object_size(o), 4);
    assert_string_equal(json_string_value(json_object_get(o, "module")), "test_log");
    json_decref(o);
    free(out);

    /* Bytes that are not UTF-8 still make a JSON line. */
    capture_start(&c);
    br_info("bad \xff\xfe byte");
    out = capture_end(&c);
    o = one_json_line(out);
    assert_string_equal(json_string_value(json_object_get(o, "message")), "bad \\xff\\xfe byte");
    json_decref(o);
    free(out);
}

static void
test_secrets_masked_in_both_formats(void **state)
{
    static const char secret[] = "se\"cr\\et-12345";
    struct capture c;
    json_t *o;
    char *out;

    (void)state;
    br_log_add_secret(secret);
    capture_start(&c);
    br_info("token=%s;", secret);
    br_log_set_format(BR_LOG_JSON);
    br_info("token=%s;", secret);
    out = capture_end(&c);
    assert_null(strstr(out, secret));
    assert_null(strstr(out, "se\\\"cr\\\\et-12345")); /* nor its JSON spelling */
    assert_non_null(strstr(out, " info token=**************;\n"));
    o = one_json_line(strchr(out, '\n') + 1);
    assert_string_equal(json_string_value(json_object_get(o, "message")), "token=**************;");
    json_decref(o);
    free(out);
}

static void
test_context(void **state)
{
    struct br_log_ctx a, b, got;
    char long_name[200];

    (void)state;
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    br_log_ctx_make(&a, long_name, 1, 2);
    assert_int_equal(strlen(a.channel), BR_LOG_CHANNEL_MAX - 1);
    br_log_ctx_set(&a);
    br_log_ctx_get(&got);
    br_log_ctx_make(&b, NULL, 5, 0);
    br_log_ctx_set(&b);
    br_log_ctx_get(&b);
    assert_string_equal(b.channel, "");
    assert_int_equal(b.conversation, 5);
    br_log_ctx_set(&got);
    br_log_ctx_get(&b);
    assert_int_equal(b.job, 2);
    br_log_ctx_set(NULL);
    br_log_ctx_get(&b);
    assert_int_equal(b.conversation + b.job, 0);
}

static void
test_parse(void **state)
{
    enum br_log_format f;
    enum br_log_level l;

    (void)state;
    assert_int_equal(br_log_parse_format("json", &f), 0);
    assert_int_equal(f, BR_LOG_JSON);
    assert_int_equal(br_log_parse_format("text", &f), 0);
    assert_int_equal(f, BR_LOG_TEXT);
    assert_int_equal(br_log_parse_format("JSON", &f), BR_EINVAL);
    assert_int_equal(br_log_parse_level("warn", &l), 0);
    assert_int_equal(l, BR_LOG_WARN);
    assert_int_equal(br_log_parse_level("warning", &l), BR_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_text_line, reset),
        cmocka_unit_test_setup(test_journal_prefix, reset),
        cmocka_unit_test_setup(test_journal_detected, reset),
        cmocka_unit_test_setup(test_json_line, reset),
        cmocka_unit_test_setup(test_secrets_masked_in_both_formats, reset),
        cmocka_unit_test_setup(test_context, reset),
        cmocka_unit_test_setup(test_parse, reset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    reset(NULL);
    return rc;
}
