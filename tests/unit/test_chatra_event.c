/*
 * test_chatra_event.c - mapping Chatra webhook bodies to the bridge's
 * normalised event.
 *
 * The mapping cases are data files: tests/data/chatra/NAME.expected.json
 * is what NAME.json in that directory must become (Chatra's own sample
 * webhooks are among them).  The C below adds the rejections, the limits
 * and the properties of generated message keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bridge/br.h"
#include "bridge/chatra_event.h"

/* ---- where the files are -------------------------------------------------- */

static char *
source_dir(void)
{
    const char *s = getenv("BR_SOURCE_DIR");
    /* CTest sets BR_SOURCE_DIR; run by hand, the checkout this file was compiled from. */
    return br_strdup(s && *s ? s : BR_TEST_SOURCE_DIR);
}

static char *
data_dir(void)
{
    char *src = source_dir();
    char *d = br_asprintf("%s/tests/data/chatra", src);
    free(src);
    return d;
}

/* Chatra's sample webhooks sit beside their expected results. */
static char *
samples_dir(void)
{
    return data_dir();
}

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct br_buf b;
    char chunk[4096];
    size_t n;

    if (f == NULL)
        return NULL;
    br_buf_init(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(br_buf_append(&b, chunk, n), 0);
    fclose(f);
    *len = b.len;
    return br_buf_steal(&b);
}

static json_t *
load_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        fail_msg("%s:%d:%d: %s", path, je.line, je.column, je.text);
    return j;
}

/* ---- helpers ------------------------------------------------------------------ */

/*
 * The event as its record (what the inbox keeps), read back as JSON; *out
 * NULL when the parse fails, with the event's visitor's record added (the
 * stored record leaves it out).  The record must load back to the same record.
 */
static int
parse_record(const char *body, size_t len, json_t **out, char *err, size_t errlen)
{
    struct br_chatra_event ev, again;
    char *rec, *rec2;
    json_error_t je;
    int rc = br_chatra_event_parse(body, len, &ev, err, errlen);

    *out = NULL;
    if (rc != 0)
        return rc;
    rec = br_chatra_event_dump(&ev);
    assert_int_equal(br_chatra_event_load(rec, &again), 0);
    rec2 = br_chatra_event_dump(&again);
    *out = json_loads(rec, 0, &je);
    assert_non_null(*out);
    {
        /* Read back, the record is the same: the client's bytes taken as they were write out the same object. */
        json_t *back = json_loads(rec2, 0, &je);
        assert_non_null(back);
        assert_true(json_equal(*out, back));
        json_decref(back);
    }
    /* The record keeps no visitor's record: reading it back makes the same one from the raw client. */
    assert_null(json_object_get(*out, "visitor"));
    assert_true(json_equal(br_chatra_event_visitor(&ev), br_chatra_event_visitor(&again)));
    json_object_set(*out, "visitor", br_chatra_event_visitor(&ev));
    free(rec);
    free(rec2);
    br_chatra_event_dispose(&ev);
    br_chatra_event_dispose(&again);
    return 0;
}

static json_t *
parse_ok(const char *body)
{
    json_t *ev = (json_t *)1;
    char err[200] = "";
    int rc = parse_record(body, strlen(body), &ev, err, sizeof(err));
    if (rc != 0)
        fail_msg("parse failed (%d): %s\nbody: %s", rc, err, body);
    assert_non_null(ev);
    return ev;
}

static void
expect_reject(const char *body, size_t len, int want_rc, const char *want_err)
{
    json_t *ev = (json_t *)1;
    char err[200] = "";
    int rc = parse_record(body, len, &ev, err, sizeof(err));

    if (rc != want_rc || strcmp(err, want_err) != 0)
        fail_msg("got %d \"%s\", want %d \"%s\"", rc, err, want_rc, want_err);
    assert_null(ev);
}

/* The key of the only message of a one-message event. */
static char *
only_key(const char *body)
{
    json_t *ev = parse_ok(body);
    json_t *msgs = json_object_get(ev, "messages");
    char *key;

    assert_int_equal(json_array_size(msgs), 1);
    key = br_strdup(json_string_value(json_object_get(json_array_get(msgs, 0), "key")));
    json_decref(ev);
    return key;
}

/* ---- the data-file cases ------------------------------------------------------- */

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
run_case(const char *name, const char *data, const char *samples)
{
    char *in = br_asprintf("%s/%s.json", data, name);
    char *want_path = br_asprintf("%s/%s.expected.json", data, name);
    json_t *want = load_json(want_path);
    json_t *got = NULL;
    char err[200] = "";
    size_t len = 0;
    char *body = slurp(in, &len);
    int rc;

    if (body == NULL) {
        free(in);
        in = br_asprintf("%s/%s.json", samples, name);
        body = slurp(in, &len);
    }
    if (body == NULL)
        fail_msg("case %s: no input %s.json in %s or %s", name, name, data, samples);
    rc = parse_record(body, len, &got, err, sizeof(err));
    if (rc != 0)
        fail_msg("case %s (%s): parse failed (%d): %s", name, in, rc, err);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_INDENT(2) | JSON_SORT_KEYS);
        print_message("case %s (%s)\n--- got\n%s\n--- want\n%s\n", name, in, g, w);
        fail_msg("case %s: the normalised event differs", name);
    }
    json_decref(got);
    json_decref(want);
    free(body);
    free(in);
    free(want_path);
}

static void
test_data_cases(void **state)
{
    static const char suffix[] = ".expected.json";
    char *data = data_dir();
    char *samples = samples_dir();
    DIR *d = opendir(data);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    (void)state;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > strlen(suffix) && strcmp(de->d_name + l - strlen(suffix), suffix) == 0) {
            names = br_realloc(names, (n + 1) * sizeof(*names));
            names[n++] = br_strndup(de->d_name, l - strlen(suffix));
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    assert_true(n >= 4);
    for (size_t i = 0; i < n; i++) {
        print_message("  case %s\n", names[i]);
        run_case(names[i], data, samples);
        free(names[i]);
    }
    free(names);
    free(data);
    free(samples);
}

/* Every webhook body here (the Chatra samples among them) has its expected result: none is silently left out. */
static void
test_every_sample_has_expected(void **state)
{
    static const char *const samples[] = {"chat-started", "chat-fragment-agent-and-system", "chat-transcript",
                                          "fragment-without-event-name"};
    char *data = data_dir();
    DIR *d = opendir(data);
    struct dirent *de;
    size_t n = 0;
    (void)state;

    if (d == NULL)
        fail_msg("cannot open %s", data);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        char *want;
        if (l <= 5 || strcmp(de->d_name + l - 5, ".json") != 0 || strstr(de->d_name, ".expected.json"))
            continue;
        want = br_asprintf("%s/%.*s.expected.json", data, (int)(l - 5), de->d_name);
        if (access(want, R_OK) != 0)
            fail_msg("webhook body %s has no %s", de->d_name, want);
        free(want);
        n++;
    }
    closedir(d);
    for (size_t i = 0; i < BR_ARRAY_SIZE(samples); i++) {
        char *body = br_asprintf("%s/%s.json", data, samples[i]);
        if (access(body, R_OK) != 0)
            fail_msg("the Chatra sample %s is missing", body);
        free(body);
    }
    assert_true(n >= BR_ARRAY_SIZE(samples));
    free(data);
}

/* ---- specific mappings ------------------------------------------------------------ */

static void
test_body_is_not_read_beyond_len(void **state)
{
    const char body[] = "{\"client\":{\"id\":\"c\"}}GARBAGE";
    json_t *ev = NULL;
    char err[200] = "";
    (void)state;

    assert_int_equal(parse_record(body, strlen(body) - 7, &ev, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(ev, "event")), "fragment");
    assert_int_equal(json_array_size(json_object_get(ev, "messages")), 0);
    json_decref(ev);
}

static void
test_generated_keys(void **state)
{
    char *a, *b, *c, *d, *e, *g, *h;
    json_t *ev;
    (void)state;

    a = only_key("{\"client\":{\"id\":\"c\"},\"messages\":[{\"type\":\"client\",\"text\":\"Hello\"}]}");
    b = only_key("{\"eventName\":\"chatTranscript\",\"client\":{\"id\":\"other\"},"
                 "\"messages\":[{\"text\":\"Hello\",\"type\":\"client\"}]}");
    c = only_key("{\"client\":{\"id\":\"c\"},\"messages\":[{\"type\":\"client\",\"text\":\"Hello!\"}]}");
    d = only_key("{\"client\":{\"id\":\"c\"},\"messages\":[{\"type\":\"agent\",\"text\":\"Hello\"}]}");
    e = only_key("{\"client\":{\"id\":\"c\"},\"messages\":[{\"type\":\"client\",\"text\":\"Hello\",\"createdAt\":5}]}");
    /* "message" instead of "text" is the same message. */
    g = only_key("{\"client\":{\"id\":\"c\"},\"messages\":[{\"type\":\"client\",\"message\":\"Hello\"}]}");
    h = only_key("{\"client\":{\"id\":\"c\"},\"messages\":[{\"type\":\"client\",\"text\":\"Hello\",\"id\":\"\"}]}");

    /* "h:" and 16 lower-case hex digits. */
    assert_int_equal(strlen(a), 18);
    assert_memory_equal(a, "h:", 2);
    assert_int_equal(strspn(a + 2, "0123456789abcdef"), 16);
    /* Pinned: stored keys must not change between versions. */
    assert_string_equal(a, "h:d078e8730349396c");

    assert_string_equal(a, b); /* equal input, whatever else the webhook holds */
    assert_string_equal(a, g);
    assert_string_equal(a, h);
    assert_string_not_equal(a, c); /* another text */
    assert_string_not_equal(a, d); /* another author type */
    assert_string_not_equal(a, e); /* another time */
    assert_string_equal(e, "h:9ab0fa02e395607f");

    /* The key does not depend on the message's place in the list. */
    ev = parse_ok("{\"client\":{\"id\":\"c\"},\"messages\":[{\"type\":\"client\",\"text\":\"first\"},"
                  "{\"type\":\"client\",\"text\":\"Hello\"}]}");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(ev, "messages"), 1), "key")),
                        a);
    json_decref(ev);

    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    free(g);
    free(h);
}

static void
test_limits_accepted(void **state)
{
    struct br_buf b;
    json_t *ev;
    char id[257];
    (void)state;

    /* A client id of exactly 256 bytes and exactly 1000 messages are fine. */
    memset(id, 'x', 256);
    id[256] = '\0';
    br_buf_init(&b, 0);
    br_buf_printf(&b, "{\"client\":{\"id\":\"%s\"},\"messages\":[", id);
    for (int i = 0; i < 1000; i++)
        br_buf_printf(&b, "%s{\"id\":\"m%d\",\"text\":\"t%d\"}", i ? "," : "", i, i);
    br_buf_puts(&b, "]}");
    ev = parse_ok(b.data);
    assert_int_equal(json_array_size(json_object_get(ev, "messages")), 1000);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "client"), "id")), id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(ev, "messages"), 999), "key")),
                        "id:m999");
    json_decref(ev);
    br_buf_dispose(&b);
}

/* ---- rejections -------------------------------------------------------------------- */

static void
test_malformed_json(void **state)
{
    json_t *ev = (json_t *)1;
    char err[200] = "";
    const char *body = "{\"client\":\n  {\"id\": \"c\",}}";
    (void)state;

    assert_int_equal(parse_record(body, strlen(body), &ev, err, sizeof(err)), BR_EINVAL);
    assert_null(ev);
    assert_string_equal(err, "malformed JSON at line 2 column 14: string or '}' expected near '}'");

    expect_reject("", 0, BR_EINVAL, "malformed JSON at line 1 column 0: '[' or '{' expected near end of file");
    body = "{\"client\":{\"id\":\"a\",\"id\":\"b\"}}";
    expect_reject(body, strlen(body), BR_EINVAL,
                  "malformed JSON at line 1 column 24: duplicate object key near '\"id\"'");
    /* A bare value is not a JSON text jansson accepts without JSON_DECODE_ANY. */
    expect_reject("\"text\"", 6, BR_EINVAL, "malformed JSON at line 1 column 6: '[' or '{' expected near '\"text\"'");
}

static void
test_rejections(void **state)
{
    static const struct {
        const char *body;
        const char *err;
    } cases[] = {
        {"[]", "the body must be a JSON object"},
        {"[{\"client\":{\"id\":\"c\"}}]", "the body must be a JSON object"},
        {"{\"eventName\":5,\"client\":{\"id\":\"c\"}}", "eventName must be a string"},
        {"{\"eventName\":\"chatFragment\"}", "client must be an object"},
        {"{\"client\":null}", "client must be an object"},
        {"{\"client\":\"c\"}", "client must be an object"},
        {"{\"client\":{}}", "client.id must be a non-empty string"},
        {"{\"client\":{\"id\":\"\"}}", "client.id must be a non-empty string"},
        {"{\"client\":{\"id\":5}}", "client.id must be a non-empty string"},
        {"{\"client\":{\"id\":null}}", "client.id must be a non-empty string"},
        {"{\"client\":{\"id\":\"c\"},\"messages\":{}}", "messages must be a list"},
        {"{\"client\":{\"id\":\"c\"},\"messages\":\"hi\"}", "messages must be a list"},
        {"{\"client\":{\"id\":\"c\"},\"messages\":[5]}", "messages[0] must be an object"},
        {"{\"client\":{\"id\":\"c\"},\"messages\":[{\"text\":\"ok\"},[]]}", "messages[1] must be an object"},
        {"{\"client\":{\"id\":\"c\"},\"messages\":[{\"text\":5}]}", "messages[0].text must be a string"},
        {"{\"client\":{\"id\":\"c\"},\"messages\":[{\"text\":\"\",\"message\":{}}]}", "messages[0].text must be a string"},
        {"{\"client\":{\"id\":\"c\"},\"messages\":[{\"type\":1,\"text\":\"x\"}]}", "messages[0].type must be a string"},
        {"{\"client\":{\"id\":\"c\"},\"messages\":[{\"id\":7,\"text\":\"x\"}]}", "messages[0].id must be a string"},
    };
    (void)state;

    for (size_t i = 0; i < BR_ARRAY_SIZE(cases); i++) {
        print_message("  %s\n", cases[i].body);
        expect_reject(cases[i].body, strlen(cases[i].body), BR_EINVAL, cases[i].err);
    }
}

static void
test_limits_rejected(void **state)
{
    struct br_buf b;
    char id[258];
    char *text;
    (void)state;

    memset(id, 'x', 257);
    id[257] = '\0';
    br_buf_init(&b, 0);
    br_buf_printf(&b, "{\"client\":{\"id\":\"%s\"}}", id);
    expect_reject(b.data, b.len, BR_EINVAL, "client.id is longer than 256 bytes");

    br_buf_reset(&b);
    br_buf_puts(&b, "{\"client\":{\"id\":\"c\"},\"messages\":[");
    for (int i = 0; i < 1001; i++)
        br_buf_printf(&b, "%s{\"text\":\"t\"}", i ? "," : "");
    br_buf_puts(&b, "]}");
    expect_reject(b.data, b.len, BR_EINVAL, "more than 1000 messages in one webhook");

    br_buf_reset(&b);
    br_buf_printf(&b, "{\"client\":{\"id\":\"c\"},\"messages\":[{\"id\":\"%s\",\"text\":\"t\"}]}", id);
    expect_reject(b.data, b.len, BR_EINVAL, "messages[0].id is too long");

    text = br_malloc(64 * 1024 + 2);
    memset(text, 'a', 64 * 1024 + 1);
    text[64 * 1024 + 1] = '\0';
    br_buf_reset(&b);
    br_buf_printf(&b, "{\"client\":{\"id\":\"c\"},\"messages\":[{\"text\":\"%s\"}]}", text);
    expect_reject(b.data, b.len, BR_EINVAL, "messages[0].text is longer than 65536 bytes");
    /* Exactly 64 KiB is fine. */
    text[64 * 1024] = '\0';
    br_buf_reset(&b);
    br_buf_printf(&b, "{\"client\":{\"id\":\"c\"},\"messages\":[{\"text\":\"%s\"}]}", text);
    json_decref(parse_ok(b.data));
    free(text);
    br_buf_dispose(&b);
}

static void
test_unknown_event(void **state)
{
    const char *body = "{\"eventName\":\"chatClosed\",\"client\":{\"id\":\"c\"}}";
    expect_reject(body, strlen(body), BR_ENOTFOUND, "event chatClosed is not handled");
    /* Unknown events are ignored before the rest is looked at. */
    body = "{\"eventName\":\"visitorOnline\"}";
    expect_reject(body, strlen(body), BR_ENOTFOUND, "event visitorOnline is not handled");
    (void)state;
}

/*
 * createdAt comes from outside: a number beyond int64_t must not be cast
 * (undefined behaviour in C, INT64_MIN on x86); it is an unknown time (0),
 * as an unparsable string is.
 */
static void
test_created_at_out_of_range(void **state)
{
    static const char *const bodies[] = {
        "{\"client\":{\"id\":\"c\"},\"messages\":[{\"id\":\"m\",\"text\":\"t\",\"createdAt\":1e300}]}",
        "{\"client\":{\"id\":\"c\"},\"messages\":[{\"id\":\"m\",\"text\":\"t\",\"createdAt\":-1e300}]}",
        "{\"client\":{\"id\":\"c\"},\"messages\":[{\"id\":\"m\",\"text\":\"t\",\"createdAt\":\"soon\"}]}",
    };
    (void)state;

    for (size_t i = 0; i < BR_ARRAY_SIZE(bodies); i++) {
        json_t *ev = parse_ok(bodies[i]);
        json_t *at = json_object_get(json_array_get(json_object_get(ev, "messages"), 0), "created_at");
        int is_int = json_is_integer(at);
        long long v = (long long)json_integer_value(at);
        json_decref(ev);
        if (!is_int || v != 0)
            fail_msg("%s: created_at is %lld, want 0", bodies[i], v);
    }
}

static void
test_small_error_buffer(void **state)
{
    json_t *ev = (json_t *)1;
    char err[8];
    (void)state;

    memset(err, 'z', sizeof(err));
    assert_int_equal(parse_record("[]", 2, &ev, err, sizeof(err)), BR_EINVAL);
    assert_string_equal(err, "the bod");
    assert_null(ev);
}


/* Chatra's visitor keys are not documented: each field is read under the names integrations have seen. */
static void
test_visitor_record(void **state)
{
    json_error_t je;
    json_t *client = json_loads(
        "{\"displayedName\": \"Blue Fox\", \"location\": {\"city\": \"Riga\", \"country\": \"Latvia\"},"
        " \"basicInfo\": {\"browser\": \"Firefox\", \"os\": \"Linux\", \"ip\": \"10.0.0.1\"},"
        " \"deviceType\": \"desktop\", \"referrer\": \"https://search.example\","
        " \"visitedPages\": [{\"href\": \"https://shop.example/a\", \"name\": \"A\"}, \"https://shop.example/b\"],"
        " \"integrationData\": {\"plan\": \"pro\"}, \"name\": \"Ieva\", \"email\": \"ieva@example.org\"}",
        0, &je);
    json_t *v = br_chatra_visitor(client, false), *want;
    char *got;
    (void)state;

    want = json_loads("{\"displayed_name\": \"Blue Fox\", \"city\": \"Riga\", \"country\": \"Latvia\","
                      " \"source\": \"https://search.example\", \"device\": \"desktop\", \"browser\": \"Firefox\","
                      " \"os\": \"Linux\", \"ip\": \"10.0.0.1\", \"pages\": [{\"url\": \"https://shop.example/a\","
                      " \"title\": \"A\"}, {\"url\": \"https://shop.example/b\"}], \"info\": {\"plan\": \"pro\"}}",
                      0, &je);
    got = json_dumps(v, JSON_SORT_KEYS);
    if (!json_equal(v, want))
        fail_msg("visitor record: %s", got);
    free(got);
    json_decref(v);
    /* A profile (GET /clients/{id}) also names the visitor. */
    v = br_chatra_visitor(client, true);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "Ieva");
    assert_string_equal(json_string_value(json_object_get(v, "email")), "ieva@example.org");
    json_decref(v);
    v = br_chatra_visitor(NULL, true);
    assert_int_equal(json_object_size(v), 0);
    json_decref(v);
    json_decref(want);
    json_decref(client);
}

/* A record that is not one is refused, and one without messages reads as an event without them. */
static void
test_record_load(void **state)
{
    struct br_chatra_event ev;
    (void)state;

    assert_int_equal(br_chatra_event_load("[]", &ev), BR_EPARSE);
    assert_int_equal(br_chatra_event_load("{\"event\": \"fragment\", \"client\": {}}", &ev), BR_EPARSE);
    assert_int_equal(br_chatra_event_load("not json", &ev), BR_EPARSE);
    assert_int_equal(br_chatra_event_load("{\"event\": \"transcript\", \"client\": {\"id\": \"c\"},"
                                          " \"raw_client\": {\"city\": \"Oslo\"}}", &ev), 0);
    assert_int_equal(ev.kind, BR_CHATRA_TRANSCRIPT);
    assert_int_equal(ev.n_msgs, 0);
    /* A record of an earlier version has no visitor record: made from the raw client. */
    assert_string_equal(json_string_value(json_object_get(br_chatra_event_visitor(&ev), "city")), "Oslo");
    br_chatra_event_dispose(&ev);
}

/* The record takes the client object's bytes from the body; when they cannot be told apart, it writes the object. */
static void
test_raw_client_bytes(void **state)
{
    static const char *const bodies[] = {
        "{\"eventName\":\"chatFragment\", \"messages\": [{\"id\":\"m\",\"type\":\"client\",\"message\":\"{\\\"client\\\":1}\"}],"
        "\n \"client\" : {\"id\":\"c1\", \"info\": {\"note\": \"}\\\"{ ]\", \"list\": [1, {\"x\": [true, null]}], \"n\": -1.5e3}} }",
        "{\"client\":{\"id\":\"c1\",\"name\":\"\\u0410\\u043d\\u043d\\u0430\"},\"eventName\":\"chatStarted\"}",
        /* Written with an escape, the key is jansson's "client" but not the bytes': the object is written out. */
        "{\"eventName\":\"chatStarted\",\"cli\\u0065nt\":{\"id\":\"c1\",\"name\":\"X\"}}",
    };
    (void)state;
    for (size_t k = 0; k < BR_ARRAY_SIZE(bodies); k++) {
        struct br_chatra_event ev, again;
        char err[200];
        char *rec;
        json_t *text;

        assert_int_equal(br_chatra_event_parse(bodies[k], strlen(bodies[k]), &ev, err, sizeof(err)), 0);
        if (k == 2) {
            assert_null(ev.raw_client_text);
        } else {
            assert_non_null(ev.raw_client_text);
            assert_int_equal(ev.raw_client_text[0], '{');
            text = json_loads(ev.raw_client_text, 0, NULL);
            assert_non_null(text);
            assert_true(json_equal(text, ev.raw_client));
            json_decref(text);
        }
        rec = br_chatra_event_dump(&ev);
        assert_int_equal(br_chatra_event_load(rec, &again), 0);
        assert_true(json_equal(again.raw_client, ev.raw_client));
        assert_true(json_equal(br_chatra_event_visitor(&again), br_chatra_event_visitor(&ev)));
        assert_string_equal(again.client_id, "c1");
        free(rec);
        br_chatra_event_dispose(&ev);
        br_chatra_event_dispose(&again);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_visitor_record),
        cmocka_unit_test(test_record_load),
        cmocka_unit_test(test_data_cases),
        cmocka_unit_test(test_every_sample_has_expected),
        cmocka_unit_test(test_body_is_not_read_beyond_len),
        cmocka_unit_test(test_generated_keys),
        cmocka_unit_test(test_limits_accepted),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_limits_rejected),
        cmocka_unit_test(test_unknown_event),
        cmocka_unit_test(test_created_at_out_of_range),
        cmocka_unit_test(test_small_error_buffer),
        cmocka_unit_test(test_raw_client_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
