/*
 * fuzz_template.c - libFuzzer target for the template engine
 * (templates/tpl.h).
 *
 * Input: template text, then optionally a NUL byte and a JSON context.
 * Without a NUL the template is rendered with a built-in context shaped
 * like the one the engine passes (visitor, chat, channel, ...); with an
 * unparsable context it is rendered with NULL.
 *
 * Each input is compiled; a compiled template is checked against the
 * config's schema (br_config_template_schema) and against the context
 * used as a schema, and rendered in both escape modes into a 1 MiB
 * buffer and into a 256-byte one.  The whole input (NULs included) is
 * also compiled, since br_tpl_compile takes a length, and it and the
 * context bytes go through br_tpl_html_escape.  Oracles beyond the
 * sanitizers: the documented error codes, a failed render leaves the
 * buffer as it was, rendering is deterministic, escaped text holds no
 * HTML specials.
 *
 * Built with -fsanitize=fuzzer as fuzz_template, and with
 * tests/fuzz/replay_main.c as replay_template (CTest: fuzz.replay_template).
 */
#include "bridge/config.h"
#include "templates/tpl.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_MAX (1024 * 1024)
#define SMALL_MAX 256
/* Something already in the buffer: a failed render must leave it alone. */
#define PREFIX "prefix<&>"

static const char default_context[] =
    "{\"visitor\": {\"name\": \"Maria <b>Lopez</b> & \\\"co\\\" 'x'\", \"email\": \"maria@example.org\","
    "  \"phone\": \"+34 600 000 000\", \"city\": \"Madrid\", \"country\": \"Spain\", \"ip\": \"192.0.2.1\","
    "  \"pages\": [{\"url\": \"https://shop.example/kettle?a=1&b=2\", \"title\": \"Blue <kettle>\"},"
    "             {\"url\": \"https://shop.example/\"}],"
    "  \"info\": {\"plan\": \"trial\", \"userId\": 1042, \"ratio\": 0.1, \"big\": 1e300, \"vip\": true,"
    "            \"none\": null, \"list\": [1, 2.5, \"three\", false, null, {}, []]}},"
    " \"chatra\": {\"chatId\": \"Qm7TzR2pLx9VbN4cW\"},"
    " \"chat\": {\"id\": \"Qm7TzR2pLx9VbN4cW\", \"started_at\": \"2025-11-22 08:00\","
    "  \"messages\": [{\"author\": \"Maria\", \"type\": \"client\", \"text\": \"Hello!\\nIs it <in> stock?\","
    "                 \"text_html\": \"Hello!<br>Is it &lt;in&gt; stock?\", \"time\": \"08:00\"},"
    "                {\"author\": \"Anna\", \"type\": \"agent\", \"text\": \"Yes\", \"text_html\": \"Yes\"}]},"
    " \"channel\": {\"name\": \"shop\"}, \"contact\": {\"id\": \"42\"},"
    " \"employee\": {\"name\": \"Anna\", \"email\": \"anna@example.com\"},"
    " \"previous_task\": {\"id\": \"17\", \"messages\": []}}";

static json_t *schema;
static json_t *default_ctx;

static void
die(const char *what)
{
    fprintf(stderr, "fuzz_template: %s\n", what);
    abort();
}

static void
teardown(void)
{
    json_decref(schema);
    json_decref(default_ctx);
    schema = default_ctx = NULL;
}

static void
setup(void)
{
    json_error_t je;

    json_object_seed(1);
    schema = json_loads(br_config_template_schema(), 0, &je);
    default_ctx = json_loads(default_context, 0, &je);
    if (schema == NULL || default_ctx == NULL)
        die("the built-in schema or context does not parse");
    atexit(teardown);
}

struct count {
    int n;
};

static void
on_unknown(void *arg, const char *path, int line, int col)
{
    struct count *c = arg;
    if (path == NULL || line < 1 || col < 1)
        die("br_tpl_check reported an unknown name without a name or position");
    c->n++;
}

static void
check(const struct br_tpl *t, const json_t *s)
{
    struct count c = {0};
    int n = br_tpl_check(t, s, on_unknown, &c);
    if (n != c.n)
        die("br_tpl_check count differs from its callbacks");
    if (br_tpl_check(t, s, NULL, NULL) != n)
        die("br_tpl_check without a callback counts differently");
}

/* Renders into a buffer that already holds PREFIX; returns the rendered bytes
 * (caller frees; values may hold NULs, so *len counts them) or NULL. */
static char *
render(const struct br_tpl *t, const json_t *ctx, enum br_tpl_escape mode, size_t max, int *rc, size_t *len)
{
    struct br_buf b;
    size_t plen = strlen(PREFIX);
    char *out = NULL;

    br_buf_init(&b, max);
    if (br_buf_puts(&b, PREFIX) != 0)
        die("cannot prepare the buffer");
    *rc = br_tpl_render(t, ctx, mode, &b);
    if (*rc != 0 && *rc != BR_ELIMIT)
        die("br_tpl_render returned an undocumented error");
    if (b.len > max)
        die("br_tpl_render wrote past the buffer's maximum");
    if (memcmp(b.data, PREFIX, plen) != 0)
        die("br_tpl_render changed what was in the buffer before");
    if (*rc != 0 && (b.len != plen || b.data[plen] != '\0'))
        die("a failed br_tpl_render left output behind");
    *len = 0;
    if (*rc == 0) {
        out = br_strndup(b.data + plen, b.len - plen);
        *len = b.len - plen;
    }
    br_buf_dispose(&b);
    return out;
}

static void
exercise(const struct br_tpl *t, const json_t *ctx)
{
    static const enum br_tpl_escape modes[] = {BR_TPL_ESCAPE_HTML, BR_TPL_ESCAPE_NONE};

    check(t, schema);
    check(t, ctx);
    check(t, NULL);
    for (size_t m = 0; m < BR_ARRAY_SIZE(modes); m++) {
        int rc_big, rc_small;
        size_t big_len, small_len;
        char *big = render(t, ctx, modes[m], BIG_MAX, &rc_big, &big_len);
        char *small = render(t, ctx, modes[m], SMALL_MAX, &rc_small, &small_len);
        if (big && small && (big_len != small_len || memcmp(big, small, big_len) != 0))
            die("the same template and context rendered differently");
        if (rc_big == 0 && rc_small == BR_ELIMIT && strlen(PREFIX) + big_len <= SMALL_MAX)
            die("a render that fits failed with BR_ELIMIT in the smaller buffer");
        free(big);
        free(small);
    }
}

static void
compile_and_exercise(const char *src, size_t len, const json_t *ctx)
{
    struct br_tpl *t = (struct br_tpl *)1;
    struct br_tpl_error e;
    int rc;

    memset(&e, 0x55, sizeof(e));
    rc = br_tpl_compile(&t, src, len, &e);
    if (rc == 0) {
        if (t == NULL)
            die("br_tpl_compile succeeded without a template");
        exercise(t, ctx);
        br_tpl_free(t);
        return;
    }
    if (t != NULL)
        die("a failed br_tpl_compile left a template behind");
    if (rc != BR_EPARSE && rc != BR_ELIMIT)
        die("br_tpl_compile returned an undocumented error");
    if (e.line < 1 || e.col < 1 || memchr(e.msg, '\0', sizeof(e.msg)) == NULL || e.msg[0] == '\0')
        die("br_tpl_compile failed without a position or a message");
}

static void
escape(const char *s, size_t len)
{
    for (int nl = 0; nl <= 1; nl++) {
        struct br_buf b;
        size_t plen = strlen(PREFIX);
        int rc;

        /* Room for the worst case: every byte becomes "&quot;". */
        br_buf_init(&b, len * 6 + plen + 1);
        br_buf_puts(&b, PREFIX);
        rc = br_tpl_html_escape(&b, s, len, nl);
        if (rc != 0)
            die("br_tpl_html_escape ran out of a buffer big enough");
        for (size_t i = plen; i < b.len; i++) {
            char c = b.data[i];
            if (c == '<' && nl && i + 4 <= b.len && memcmp(b.data + i, "<br>", 4) == 0) {
                i += 3;
                continue;
            }
            if (c == '<' || c == '>' || c == '"' || c == '\'' || (nl && (c == '\r' || c == '\n')))
                die("br_tpl_html_escape let a special character through");
        }
        br_buf_dispose(&b);

        /* Too small on purpose: either it fits or nothing changes. */
        br_buf_init(&b, plen + len / 2 + 1);
        br_buf_puts(&b, PREFIX);
        rc = br_tpl_html_escape(&b, s, len, nl);
        if (rc != 0 && (rc != BR_ELIMIT || b.len != plen || b.data[plen] != '\0'))
            die("a failed br_tpl_html_escape left output behind");
        br_buf_dispose(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = size ? (const char *)data : "";
    const char *nul = memchr(s, '\0', size);
    size_t tlen = nul ? (size_t)(nul - s) : size;
    json_t *ctx = NULL;
    const json_t *use;

    if (schema == NULL)
        setup();
    if (nul) {
        json_error_t je;
        ctx = json_loadb(nul + 1, size - tlen - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        use = ctx;
    } else {
        use = default_ctx;
    }

    compile_and_exercise(s, tlen, use);
    if (nul)
        compile_and_exercise(s, size, use); /* the length counts, not the NUL */
    escape(s, size);
    json_decref(ctx);
    return 0;
}
