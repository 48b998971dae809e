/*
 * test_tpl.c - the template engine: syntax, lookup rules, escaping,
 * standalone lines, compile errors with positions, limits, schema checks,
 * and the default texts shipped in templates/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "templates/tpl.h"
#include "bridge/config.h"

/* ---- helpers ------------------------------------------------------------ */

static json_t *
parse_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        fail_msg("bad test JSON at %d:%d: %s", jerr.line, jerr.column, jerr.text);
    return j;
}

static struct br_tpl *
compile_ok(const char *src)
{
    struct br_tpl *t = NULL;
    struct br_tpl_error err;
    int rc = br_tpl_compile(&t, src, strlen(src), &err);
    if (rc != 0)
        fail_msg("compile failed for \"%s\": %d:%d %s", src, err.line, err.col, err.msg);
    assert_non_null(t);
    return t;
}

/* Renders src with ctx (JSON text, may be NULL) and compares the output. */
static void
expect_mode(const char *src, const char *ctx_text, enum br_tpl_escape mode, const char *want)
{
    struct br_tpl *t = compile_ok(src);
    json_t *ctx = ctx_text ? parse_json(ctx_text) : NULL;
    struct br_buf out;

    br_buf_init(&out, 0);
    assert_int_equal(br_tpl_render(t, ctx, mode, &out), 0);
    assert_string_equal(out.data ? out.data : "", want);
    br_buf_dispose(&out);
    json_decref(ctx);
    br_tpl_free(t);
}

static void
expect(const char *src, const char *ctx_text, const char *want)
{
    expect_mode(src, ctx_text, BR_TPL_ESCAPE_HTML, want);
}

static void
expect_error(const char *src, int want_rc, int line, int col, const char *msg_part)
{
    struct br_tpl *t = (struct br_tpl *)1;
    struct br_tpl_error err;
    int rc = br_tpl_compile(&t, src, strlen(src), &err);

    assert_int_equal(rc, want_rc);
    assert_null(t);
    if (err.line != line || err.col != col || strstr(err.msg, msg_part) == NULL)
        fail_msg("\"%s\": got %d:%d \"%s\", want %d:%d containing \"%s\"", src, err.line, err.col, err.msg,
                 line, col, msg_part);
    assert_null(strchr(err.msg, '\n'));
}

struct unknowns {
    int n;
    char text[1024];
};

static void
record_unknown(void *arg, const char *path, int line, int col)
{
    struct unknowns *u = arg;
    size_t used = strlen(u->text);
    u->n++;
    snprintf(u->text + used, sizeof(u->text) - used, "%s@%d:%d;", path, line, col);
}

static int
check(const char *src, const char *schema_text, struct unknowns *u)
{
    struct br_tpl *t = compile_ok(src);
    json_t *schema = parse_json(schema_text);
    int n;

    memset(u, 0, sizeof(*u));
    n = br_tpl_check(t, schema, record_unknown, u);
    assert_int_equal(n, u->n);
    json_decref(schema);
    br_tpl_free(t);
    return n;
}

/* ---- rendering ---------------------------------------------------------- */

static void
test_text_only(void **state)
{
    (void)state;
    expect("", NULL, "");
    expect("plain text, no tags { } }}", NULL, "plain text, no tags { } }}");
    expect("a { {b} c", "{}", "a { {b} c");
}

static void
test_escaping(void **state)
{
    (void)state;
    expect("<{{x}}>", "{\"x\": \"a & b < c > d \\\" e ' f\"}", "<a &amp; b &lt; c &gt; d &quot; e &#39; f>");
    expect("{{x}}", "{\"x\": \"line1\\nline2\"}", "line1\nline2");
    expect_mode("{{x}}", "{\"x\": \"<b>&\"}", BR_TPL_ESCAPE_NONE, "<b>&");
}

static void
test_raw(void **state)
{
    (void)state;
    expect("{{{x}}}|{{&x}}|{{& x }}|{{{ x }}}", "{\"x\": \"<i>\"}", "<i>|<i>|<i>|<i>");
    expect_mode("{{{x}}}", "{\"x\": \"<i>\"}", BR_TPL_ESCAPE_NONE, "<i>");
}

static void
test_value_types(void **state)
{
    (void)state;
    expect("[{{s}}|{{i}}|{{neg}}|{{r}}|{{r2}}|{{r3}}|{{t}}|{{f}}|{{n}}|{{o}}|{{a}}|{{missing}}]",
           "{\"s\": \"str\", \"i\": 42, \"neg\": -7, \"r\": 1.5, \"r2\": 0.1, \"r3\": 3.0,"
           " \"t\": true, \"f\": false, \"n\": null, \"o\": {\"k\": 1}, \"a\": [1, 2]}",
           "[str|42|-7|1.5|0.1|3|true|false||||]");
    expect("{{big}}", "{\"big\": 9007199254740993}", "9007199254740993");
    expect("{{x}}", NULL, "");
    expect("{{x}}", "[1, 2]", "");
    expect("{{.}}", "\"root\"", "root");
}

static void
test_whitespace_in_tags(void **state)
{
    (void)state;
    expect("{{ x }}{{#  l  }}{{ . }}{{/ l }}{{^ m }}-{{/m}}", "{\"x\": \"X\", \"l\": [1, 2]}", "X12-");
    expect("{{ #l }}{{.}}{{ /l }}", "{\"l\": [3]}", "3");
}

static void
test_section_list(void **state)
{
    (void)state;
    expect("{{#l}}<{{name}}>{{/l}}", "{\"l\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}", "<a><b>");
    expect("{{#l}}{{.}},{{/l}}", "{\"l\": [1, \"two\", 3.5, true]}", "1,two,3.5,true,");
    expect("[{{#l}}x{{/l}}]", "{\"l\": []}", "[]");
    expect("{{#l}}{{#.}}{{.}}{{/.}};{{/l}}", "{\"l\": [[1, 2], [3]]}", "12;3;");
}

static void
test_section_object_and_scalars(void **state)
{
    (void)state;
    expect("{{#o}}{{a}}-{{b}}{{/o}}", "{\"o\": {\"a\": 1, \"b\": 2}}", "1-2");
    expect("{{#o}}yes{{/o}}", "{\"o\": {}}", "yes");
    expect("{{#s}}[{{.}}]{{/s}}", "{\"s\": \"hi\"}", "[hi]");
    expect("{{#i}}[{{.}}]{{/i}}", "{\"i\": 0}", "[0]");
    expect("{{#t}}yes{{/t}}", "{\"t\": true}", "yes");
    /* Falsy: missing, null, false, empty string, empty array. */
    expect("{{#m}}a{{/m}}{{#n}}b{{/n}}{{#f}}c{{/f}}{{#e}}d{{/e}}{{#l}}e{{/l}}",
           "{\"n\": null, \"f\": false, \"e\": \"\", \"l\": []}", "");
}

static void
test_inverted(void **state)
{
    (void)state;
    expect("{{^m}}a{{/m}}{{^n}}b{{/n}}{{^f}}c{{/f}}{{^e}}d{{/e}}{{^l}}e{{/l}}",
           "{\"n\": null, \"f\": false, \"e\": \"\", \"l\": []}", "abcde");
    expect("{{^t}}x{{/t}}{{^s}}y{{/s}}{{^l}}z{{/l}}{{^z}}0{{/z}}", "{\"t\": true, \"s\": \"a\", \"l\": [1], \"z\": 0}",
           "");
    expect("Chat with {{visitor.name}}{{^visitor.name}}a visitor{{/visitor.name}}", "{\"visitor\": {}}",
           "Chat with a visitor");
}

static void
test_dotted(void **state)
{
    (void)state;
    expect("{{a.b.c}}", "{\"a\": {\"b\": {\"c\": \"deep\"}}}", "deep");
    expect("[{{a.b.c}}]", "{\"a\": {\"b\": 5}}", "[]");
    expect("[{{a.x.c}}]", "{\"a\": {}}", "[]");
    expect("[{{a.length}}]", "{\"a\": [1, 2]}", "[]");
    expect("{{#a.b}}{{c}}{{/a.b}}", "{\"a\": {\"b\": {\"c\": \"in\"}}}", "in");
    /* Only the first segment walks the stack; the rest stays inside it:
     * a.b is found in the inner a, which has no b, so nothing prints even
     * though the outer a.b exists. */
    expect("{{#o}}[{{a.b}}]{{/o}}", "{\"a\": {\"b\": \"outer\"}, \"o\": {\"a\": {}}}", "[]");
}

static void
test_stack_lookup(void **state)
{
    (void)state;
    expect("{{#l}}{{name}}@{{channel}};{{/l}}", "{\"channel\": \"shop\", \"l\": [{\"name\": \"a\"}, {\"name\": \"b\", \"channel\": \"own\"}]}",
           "a@shop;b@own;");
    /* A key present with a null value stops the walk (Mustache rules). */
    expect("{{#o}}[{{x}}]{{/o}}", "{\"x\": \"outer\", \"o\": {\"x\": null}}", "[]");
    /* Inside a section over a scalar, names fall through to outer contexts. */
    expect("{{#v.name}}{{v.name}}!{{/v.name}}", "{\"v\": {\"name\": \"Ann\"}}", "Ann!");
    expect("{{#a}}{{#b}}{{#c}}{{x}}{{y}}{{z}}{{/c}}{{/b}}{{/a}}",
           "{\"x\": 1, \"a\": {\"y\": 2, \"b\": {\"z\": 3, \"c\": {\"x\": 4}}}}", "423");
}

static void
test_standalone_lines(void **state)
{
    (void)state;
    expect("<ul>\n  {{#l}}\n  <li>{{.}}</li>\n  {{/l}}\n</ul>\n", "{\"l\": [1, 2]}", "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>\n");
    expect("a\n{{^m}}\nnone\n{{/m}}\nb\n", "{}", "a\nnone\nb\n");
    expect("a\n  {{! comment }}  \nb", NULL, "a\nb");
    expect("a\r\n{{#t}}\r\nb\r\n{{/t}}\r\nc", "{\"t\": true}", "a\r\nb\r\nc");
    /* At the start and the end of the template, with no newline. */
    expect("{{#t}}\nx\n{{/t}}", "{\"t\": true}", "x\n");
    expect("\t{{! only }}", NULL, "");
    /* Not standalone: other text or another tag on the line, or a variable. */
    expect("a {{#t}}b{{/t}}\n", "{\"t\": true}", "a b\n");
    expect("{{#t}}{{/t}}\nx", "{\"t\": true}", "\nx");
    expect("  {{x}}\n", "{\"x\": 1}", "  1\n");
    expect(" {{#t}} x\n{{/t}}", "{\"t\": true}", "  x\n");
    /* A multi-line comment on its own lines goes away entirely. */
    expect("a\n{{! one\n two }}\nb", NULL, "a\nb");
}

static void
test_comments(void **state)
{
    (void)state;
    expect("a{{! not {{shown}} }}b", "{\"shown\": 1}", "a }}b");
    expect("a{{!}}b{{! x }}c", NULL, "abc");
}

static void
test_render_limit(void **state)
{
    struct br_tpl *t = compile_ok("head {{#l}}{{x}}{{/l}} tail");
    json_t *ctx = parse_json("{\"x\": \"0123456789\", \"l\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}");
    struct br_buf out;

    (void)state;
    br_buf_init(&out, 50);
    assert_int_equal(br_buf_puts(&out, "keep:"), 0);
    assert_int_equal(br_tpl_render(t, ctx, BR_TPL_ESCAPE_HTML, &out), BR_ELIMIT);
    /* Partial output is rolled back; earlier content stays. */
    assert_string_equal(out.data, "keep:");
    assert_int_equal(out.len, 5);
    br_buf_dispose(&out);

    /* Exactly at the limit is fine. */
    br_buf_init(&out, 5 + 100 + 5);
    assert_int_equal(br_tpl_render(t, ctx, BR_TPL_ESCAPE_HTML, &out), 0);
    assert_int_equal(out.len, 110);
    br_buf_dispose(&out);

    /* Escaping growth counts too. */
    br_tpl_free(t);
    json_decref(ctx);
    t = compile_ok("{{x}}");
    ctx = parse_json("{\"x\": \"<<<<\"}");
    br_buf_init(&out, 10);
    assert_int_equal(br_tpl_render(t, ctx, BR_TPL_ESCAPE_HTML, &out), BR_ELIMIT);
    assert_int_equal(out.len, 0);
    assert_int_equal(br_tpl_render(t, ctx, BR_TPL_ESCAPE_NONE, &out), 0);
    assert_string_equal(out.data, "<<<<");
    br_buf_dispose(&out);
    br_tpl_free(t);
    json_decref(ctx);
}

static void
test_work_limit(void **state)
{
    /* Nested loops that write nothing must still stop: 1000^4 steps. */
    struct br_buf out;
    struct br_tpl *t = compile_ok("{{#l}}{{#l}}{{#l}}{{#l}}{{/l}}{{/l}}{{/l}}{{/l}}");
    json_t *l = json_array(), *ctx = json_object();

    (void)state;
    for (int i = 0; i < 1000; i++)
        json_array_append_new(l, json_integer(i));
    json_object_set_new(ctx, "l", l);
    br_buf_init(&out, 0);
    assert_int_equal(br_tpl_render(t, ctx, BR_TPL_ESCAPE_HTML, &out), BR_ELIMIT);
    assert_int_equal(out.len, 0);
    br_buf_dispose(&out);
    br_tpl_free(t);
    json_decref(ctx);
}

static void
test_render_reuse(void **state)
{
    /* The source may go away after compiling; a template renders repeatedly. */
    char *src = br_strdup("Hi {{name}}!");
    struct br_tpl *t = compile_ok(src);
    json_t *a = parse_json("{\"name\": \"A\"}"), *b = parse_json("{\"name\": \"B\"}");
    struct br_buf out;

    (void)state;
    memset(src, 'x', strlen(src));
    free(src);
    br_buf_init(&out, 0);
    assert_int_equal(br_tpl_render(t, a, BR_TPL_ESCAPE_HTML, &out), 0);
    assert_int_equal(br_tpl_render(t, b, BR_TPL_ESCAPE_HTML, &out), 0);
    assert_string_equal(out.data, "Hi A!Hi B!");
    br_buf_dispose(&out);
    br_tpl_free(t);
    br_tpl_free(NULL);
    json_decref(a);
    json_decref(b);
}

/* ---- compile errors ----------------------------------------------------- */

static void
test_compile_errors(void **state)
{
    (void)state;
    expect_error("ab\n  {{#a}}x", BR_EPARSE, 2, 3, "'{{#a}}' is never closed");
    expect_error("{{#a}}{{^b}}\n{{/b}}{{#c}}", BR_EPARSE, 2, 7, "'{{#c}}' is never closed");
    expect_error("{{^a}}", BR_EPARSE, 1, 1, "'{{^a}}' is never closed");
    expect_error("{{#a}}\n x {{/b}}", BR_EPARSE, 2, 4, "'{{/b}}' does not match '{{#a}}' opened at line 1, col 1");
    expect_error("x{{/a}}", BR_EPARSE, 1, 2, "never opened");
    expect_error("Hello {{name", BR_EPARSE, 1, 7, "unterminated tag");
    expect_error("Hello {{name\nnext {{x}}", BR_EPARSE, 1, 7, "unterminated tag");
    expect_error("a {{{x}}", BR_EPARSE, 1, 3, "'}}}'");
    expect_error("a {{{x", BR_EPARSE, 1, 3, "unterminated tag");
    expect_error("a {{{x}} }", BR_EPARSE, 1, 3, "'}}}'");
    expect_error("{{! never closed", BR_EPARSE, 1, 1, "unterminated tag");
    expect_error("x\n\n   {{}}", BR_EPARSE, 3, 4, "empty name");
    expect_error("{{  }}", BR_EPARSE, 1, 1, "empty name");
    expect_error("{{#}}{{/}}", BR_EPARSE, 1, 1, "empty name");
    expect_error("{{{ }}}", BR_EPARSE, 1, 1, "empty name");
    expect_error("{{&}}", BR_EPARSE, 1, 1, "empty name");
    expect_error("{{#a}}{{/}}", BR_EPARSE, 1, 7, "empty name");
    expect_error("{{a b}}", BR_EPARSE, 1, 1, "unexpected space in name 'a b'");
    expect_error("{{a..b}}", BR_EPARSE, 1, 1, "empty part in dotted name 'a..b'");
    expect_error("{{.a}}", BR_EPARSE, 1, 1, "empty part");
    expect_error("{{a.}}", BR_EPARSE, 1, 1, "empty part");
    expect_error("x {{=<% %>=}}", BR_EPARSE, 1, 3, "delimiters");
    expect_error("{{> partial}}", BR_EPARSE, 1, 1, "partials");
    /* Columns count characters, not bytes. */
    expect_error("Привет {{#a}}", BR_EPARSE, 1, 8, "never closed");
}

static void
test_depth_limit(void **state)
{
    char src[1024];
    size_t n = 0;
    struct br_tpl *t;
    struct br_tpl_error err;

    (void)state;
    for (int i = 0; i < BR_TPL_MAX_DEPTH; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "{{#a}}");
    for (int i = 0; i < BR_TPL_MAX_DEPTH; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "{{/a}}");
    t = compile_ok(src);
    br_tpl_free(t);

    n = 0;
    for (int i = 0; i <= BR_TPL_MAX_DEPTH; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "{{#a}}");
    assert_int_equal(br_tpl_compile(&t, src, n, &err), BR_ELIMIT);
    assert_null(t);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.col, 1 + 6 * BR_TPL_MAX_DEPTH);
    assert_non_null(strstr(err.msg, "deeper than 32"));

    /* Deepest allowed nesting renders (the context stack holds it all). */
    {
        json_t *ctx = parse_json("{\"a\": {\"a\": true}}");
        struct br_buf out;
        n = 0;
        for (int i = 0; i < BR_TPL_MAX_DEPTH; i++)
            n += (size_t)snprintf(src + n, sizeof(src) - n, "{{#a}}");
        n += (size_t)snprintf(src + n, sizeof(src) - n, "{{.}}");
        for (int i = 0; i < BR_TPL_MAX_DEPTH; i++)
            n += (size_t)snprintf(src + n, sizeof(src) - n, "{{/a}}");
        t = compile_ok(src);
        br_buf_init(&out, 0);
        assert_int_equal(br_tpl_render(t, ctx, BR_TPL_ESCAPE_HTML, &out), 0);
        assert_string_equal(out.data, "true");
        br_buf_dispose(&out);
        br_tpl_free(t);
        json_decref(ctx);
    }
}

static void
test_compile_null_err(void **state)
{
    struct br_tpl *t;

    (void)state;
    assert_int_equal(br_tpl_compile(&t, "{{#a}}", 6, NULL), BR_EPARSE);
    assert_null(t);
    /* len bounds the source; bytes after it are not read. */
    assert_int_equal(br_tpl_compile(&t, "ok{{", 2, NULL), 0);
    br_tpl_free(t);
    assert_int_equal(br_tpl_compile(&t, NULL, 0, NULL), 0);
    br_tpl_free(t);
}

/* ---- schema checks ------------------------------------------------------ */

static const char *schema_basic =
    "{\"visitor\": {\"name\": \"\", \"email\": \"\", \"pages\": [{\"url\": \"\", \"title\": \"\"}]},"
    " \"chat\": {\"messages\": [{\"author\": \"\", \"text\": \"\"}], \"tags\": []},"
    " \"channel\": {\"name\": \"\"}, \"count\": 1, \"chatra\": \"*\"}";

static void
test_check_known(void **state)
{
    struct unknowns u;

    (void)state;
    assert_int_equal(check("{{visitor.name}} {{{visitor.email}}} {{channel.name}} {{count}} {{.}}", schema_basic, &u), 0);
    assert_int_equal(check("{{#visitor}}{{name}}{{email}}{{channel.name}}{{/visitor}}", schema_basic, &u), 0);
    /* List items have the shape of the first element. */
    assert_int_equal(check("{{#chat.messages}}{{author}}: {{text}} {{channel.name}} {{.}}{{/chat.messages}}", schema_basic, &u), 0);
    assert_int_equal(check("{{#visitor.pages}}{{url}} {{title}}{{/visitor.pages}}", schema_basic, &u), 0);
    /* "*" allows anything below it, and inside a section over it. */
    assert_int_equal(check("{{chatra.client.whatever.deep}} {{#chatra.client}}{{anything}}{{/chatra.client}}", schema_basic, &u), 0);
    /* A section over a leaf keeps the leaf's scope, so outer names work. */
    assert_int_equal(check("{{#visitor.name}}{{visitor.name}}{{.}}{{/visitor.name}}", schema_basic, &u), 0);
    /* Empty list in the schema: items of any shape. */
    assert_int_equal(check("{{#chat.tags}}{{label}}{{/chat.tags}}", schema_basic, &u), 0);
    /* A wildcard root allows everything. */
    assert_int_equal(check("{{a.b}}{{#c}}{{d}}{{/c}}", "\"*\"", &u), 0);
}

static void
test_check_unknown(void **state)
{
    struct unknowns u;

    (void)state;
    assert_int_equal(check("{{visitor.nmae}}\n  {{visitr.name}} {{employee}}", schema_basic, &u), 3);
    assert_string_equal(u.text, "visitor.nmae@1:1;visitr.name@2:3;employee@2:19;");
    /* Item scope: text belongs to messages, not to pages. */
    assert_int_equal(check("{{#visitor.pages}}{{text}}{{/visitor.pages}}", schema_basic, &u), 1);
    assert_string_equal(u.text, "text@1:19;");
    /* Dotted paths go strictly inside: through a leaf or a list is unknown. */
    assert_int_equal(check("{{visitor.name.first}}{{chat.messages.text}}{{count.x}}", schema_basic, &u), 3);
    /* Sections and inverted sections are checked as well. */
    assert_int_equal(check("{{#nope}}{{/nope}}{{^nada}}{{/nada}}", schema_basic, &u), 2);
    assert_string_equal(u.text, "nope@1:1;nada@1:19;");
    /* An unknown section reports once, not once per name inside it. */
    assert_int_equal(check("{{#nope}}{{a}}{{b}}{{/nope}}{{x}}", schema_basic, &u), 2);
    assert_string_equal(u.text, "nope@1:1;x@1:29;");
    /* After a section closes, its item scope is gone. */
    assert_int_equal(check("{{#chat.messages}}{{/chat.messages}}{{author}}", schema_basic, &u), 1);
    /* A NULL callback only counts. */
    {
        struct br_tpl *t = compile_ok("{{a}}{{b}}");
        json_t *schema = parse_json("{}");
        assert_int_equal(br_tpl_check(t, schema, NULL, NULL), 2);
        json_decref(schema);
        br_tpl_free(t);
    }
}

/* ---- html_escape -------------------------------------------------------- */

static void
test_html_escape(void **state)
{
    struct br_buf out;
    const char *s = "a<b>&\"c'\r\nline2\nend";

    (void)state;
    br_buf_init(&out, 0);
    assert_int_equal(br_tpl_html_escape(&out, s, strlen(s), 0), 0);
    assert_string_equal(out.data, "a&lt;b&gt;&amp;&quot;c&#39;\r\nline2\nend");
    br_buf_reset(&out);
    assert_int_equal(br_tpl_html_escape(&out, s, strlen(s), 1), 0);
    assert_string_equal(out.data, "a&lt;b&gt;&amp;&quot;c&#39;<br>line2<br>end");
    br_buf_reset(&out);
    /* Embedded NUL bytes pass through; len, not strlen, bounds the input. */
    assert_int_equal(br_tpl_html_escape(&out, "x\0y<", 4, 1), 0);
    assert_int_equal(out.len, 7);
    assert_memory_equal(out.data, "x\0y&lt;", 7);
    br_buf_reset(&out);
    assert_int_equal(br_tpl_html_escape(&out, "", 0, 1), 0);
    assert_int_equal(out.len, 0);
    br_buf_dispose(&out);

    /* Over the limit: out stays as it was. */
    br_buf_init(&out, 8);
    assert_int_equal(br_buf_puts(&out, "ab"), 0);
    assert_int_equal(br_tpl_html_escape(&out, "<<", 2, 0), BR_ELIMIT);
    assert_string_equal(out.data, "ab");
    assert_int_equal(br_tpl_html_escape(&out, "\n", 1, 1), 0);
    assert_string_equal(out.data, "ab<br>");
    br_buf_dispose(&out);
}

/* ---- the default texts -------------------------------------------------- */

/* The default texts must pass the same check as check-config applies. */
#define schema_full br_config_template_schema()

static char *
read_default(const char *name, size_t *len)
{
    const char *dir = getenv("BR_SOURCE_DIR");
    char path[4096];
    FILE *f;
    char *buf;
    long size;

    /* CTest sets BR_SOURCE_DIR; run by hand, the checkout this file was compiled from. */
    snprintf(path, sizeof(path), "%s/templates/en/%s", dir && *dir ? dir : BR_TEST_SOURCE_DIR, name);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size > 0);
    rewind(f);
    buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    buf[size] = '\0';
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static char *
render_default(const char *name, const char *ctx_text, enum br_tpl_escape mode)
{
    size_t len;
    char *src = read_default(name, &len);
    struct br_tpl *t = NULL;
    struct br_tpl_error err;
    json_t *schema = parse_json(schema_full), *ctx = parse_json(ctx_text);
    struct unknowns u;
    struct br_buf out;

    if (br_tpl_compile(&t, src, len, &err) != 0)
        fail_msg("%s:%d:%d: %s", name, err.line, err.col, err.msg);
    memset(&u, 0, sizeof(u));
    if (br_tpl_check(t, schema, record_unknown, &u) != 0)
        fail_msg("%s: unknown names: %s", name, u.text);
    br_buf_init(&out, 0);
    assert_int_equal(br_tpl_render(t, ctx, mode, &out), 0);
    br_tpl_free(t);
    json_decref(schema);
    json_decref(ctx);
    free(src);
    return br_buf_steal(&out);
}

static void
test_default_title(void **state)
{
    char *s;

    (void)state;
    s = render_default("task_title.txt", "{\"visitor\": {\"name\": \"Ann & Co\"}, \"channel\": {\"name\": \"shop\"}}",
                       BR_TPL_ESCAPE_NONE);
    assert_string_equal(s, "Chat with Ann & Co (shop)");
    free(s);
    s = render_default("task_title.txt", "{\"visitor\": {}, \"channel\": {\"name\": \"shop\"}}", BR_TPL_ESCAPE_NONE);
    assert_string_equal(s, "Chat with a visitor (shop)");
    free(s);
}

static void
test_default_description(void **state)
{
    char *s;

    (void)state;
    s = render_default("task_description.html",
                       "{\"visitor\": {\"name\": \"Ann <script>\", \"email\": \"ann@example.com\","
                       "   \"city\": \"Berlin\", \"country\": \"Germany\", \"browser\": \"Firefox\","
                       "   \"pages\": [{\"url\": \"https://shop/a?x=1&y=2\", \"title\": \"A\"}, {\"url\": \"https://shop/b\"}]},"
                       " \"chat\": {\"id\": \"c1\", \"messages\": [{\"author\": \"Ann\", \"text_html\": \"Hello &lt;b&gt;<br>again\", \"time\": \"10:00\"},"
                       "   {\"author\": \"Anna Smirnova\", \"text_html\": \"Hi!\"}]},"
                       " \"channel\": {\"name\": \"shop\"}, \"previous_task\": {\"id\": 41,"
                       "   \"messages\": [{\"author\": \"Visitor\", \"text_html\": \"Old question\", \"time\": \"09:00\"}]}}",
                       BR_TPL_ESCAPE_HTML);
    assert_non_null(strstr(s, "<b>Name:</b> Ann &lt;script&gt;<br>\n"));
    assert_non_null(strstr(s, "<a href=\"mailto:ann@example.com\">ann@example.com</a>"));
    assert_non_null(strstr(s, "<b>City:</b> Berlin, Germany<br>\n"));
    assert_null(strstr(s, "Country:"));
    assert_null(strstr(s, "Phone:"));
    assert_non_null(strstr(s, "A &mdash; https://shop/a?x=1&amp;y=2<br>\n"));
    assert_non_null(strstr(s, "<b>Page visited:</b> https://shop/b<br>\n"));
    assert_non_null(strstr(s, "task #41"));
    assert_non_null(strstr(s, "<p><i>Earlier</i> <b>Visitor</b> <i>09:00</i><br>\nOld question</p>\n"));
    assert_non_null(strstr(s, "<p><b>Ann</b> <i>10:00</i><br>\nHello &lt;b&gt;<br>again</p>\n"));
    assert_non_null(strstr(s, "<p><b>Anna Smirnova</b><br>\nHi!</p>\n"));
    /* Standalone tags and comments leave no blank lines or tags behind. */
    assert_null(strstr(s, "\n\n"));
    assert_null(strstr(s, "{{"));
    assert_int_equal(s[0], '<');
    free(s);

    s = render_default("task_description.html", "{\"visitor\": {\"country\": \"Germany\"}}", BR_TPL_ESCAPE_HTML);
    assert_non_null(strstr(s, "<b>Country:</b> Germany<br>\n"));
    assert_null(strstr(s, "Previous"));
    assert_null(strstr(s, "\n\n"));
    free(s);
}

static void
test_textile_escape(void **state)
{
    struct br_buf out;
    const char *s =
        "Hello there\r\n*bold* a_b\np. s. ok\n\nplain: 10:00, fine?\nsay </notextile> *x*\nnot notextile *x*";

    (void)state;
    br_buf_init(&out, 0);
    assert_int_equal(br_tpl_textile_escape(&out, s, strlen(s)), 0);
    /* Plain lines stay readable; lines Textile would change are protected one by one, also a
     * line that names the tag, whose own tag cannot end the protection. */
    assert_string_equal(out.data, "Hello there\n<notextile>*bold* a_b</notextile>\n<notextile>p. s. ok</notextile>\n"
                                  "\nplain: 10:00, fine?\n<notextile>say </notextile>&#60;<notextile>/notextile> *x*"
                                  "</notextile>\n<notextile>not notextile *x*</notextile>");
    br_buf_reset(&out);
    assert_int_equal(br_tpl_textile_escape(&out, "ann@example.com", 15), 0);
    assert_string_equal(out.data, "<notextile>ann@example.com</notextile>");
    br_buf_reset(&out);
    assert_int_equal(br_tpl_textile_escape(&out, "", 0), 0);
    assert_int_equal(out.len, 0);
    br_buf_dispose(&out);

    /* Over the limit: out stays as it was. */
    br_buf_init(&out, 16);
    assert_int_equal(br_buf_puts(&out, "ab"), 0);
    assert_int_equal(br_tpl_textile_escape(&out, "*x*", 3), BR_ELIMIT);
    assert_string_equal(out.data, "ab");
    br_buf_dispose(&out);
}

/* s escaped for Textile, as a string the caller frees. */
static char *
textile(const char *s)
{
    struct br_buf out;

    br_buf_init(&out, 0);
    assert_int_equal(br_tpl_textile_escape(&out, s, strlen(s)), 0);
    return out.data ? out.data : strdup("");
}

#define assert_textile(s, want)                                                                                        \
    do {                                                                                                               \
        char *got_ = textile(s);                                                                                       \
        assert_string_equal(got_, want);                                                                               \
        free(got_);                                                                                                    \
    } while (0)

static void
test_textile_escape_redmine_links(void **state)
{
    struct br_buf out;

    (void)state;
    /* Redmine links inside <notextile> too: the first character of each goes out as an entity. */
    assert_textile("my login is user:admin",
                   "<notextile>my login is user</notextile>&#58;<notextile>admin</notextile>");
    assert_textile("#1 ##2 r12",
                   "&#35;<notextile>1 </notextile>&#35;<notextile>#2 </notextile>&#114;<notextile>12</notextile>");
    assert_textile("@anna, user@admin (user#3)", "&#64;<notextile>anna, user</notextile>&#64;<notextile>admin (user"
                                                 "</notextile>&#35;<notextile>3)</notextile>");
    assert_textile("document#1 version:1.0 project:x commit:abc source:a/b export:a forum:\"A B\" attachment:f.txt",
                   "<notextile>document</notextile>&#35;<notextile>1 version</notextile>&#58;<notextile>1.0 project"
                   "</notextile>&#58;<notextile>x commit</notextile>&#58;<notextile>abc source</notextile>&#58;"
                   "<notextile>a/b export</notextile>&#58;<notextile>a forum</notextile>&#58;<notextile>\"A B\" "
                   "attachment</notextile>&#58;<notextile>f.txt</notextile>");
    assert_textile("news#1 message#2 #note-1 demo:r12 demo:#4 repo|r5",
                   "<notextile>news</notextile>&#35;<notextile>1 message</notextile>&#35;<notextile>2 </notextile>"
                   "&#35;<notextile>note-1 demo:</notextile>&#114;<notextile>12 demo:</notextile>&#35;<notextile>4 "
                   "repo|</notextile>&#114;<notextile>5</notextile>");
    /* Wiki links and macros; Redmine's own "!" escape stays the visitor's text. */
    assert_textile("[[Foo]] {{toc}} ![[[x]]]", "&#91;<notextile>[Foo]] </notextile>&#123;<notextile>{toc}} !"
                                               "</notextile>&#91;&#91;<notextile>[x]]]</notextile>");
    assert_textile("!#1 !user:admin",
                   "<notextile>!</notextile>&#35;<notextile>1 !user</notextile>&#58;<notextile>admin</notextile>");
    /* Tags that would end <notextile>, RedCloth's "x%x%" and an @2x image source. */
    assert_textile("<code>a</code> <PRE> <kbd x%x% x%& src=\"a@2x.png\"",
                   "&#60;<notextile>code>a</notextile>&#60;<notextile>/code> </notextile>&#60;<notextile>PRE> "
                   "</notextile>&#60;<notextile>kbd x</notextile>&#37;<notextile>x% x</notextile>&#37;<notextile>& "
                   "src</notextile>&#61;<notextile>\"a@2x.png\"</notextile>");
    /* Each line of a text on its own: a construct at a line's start too. */
    assert_textile("a\r\nr1\n\n@b", "a\n&#114;<notextile>1</notextile>\n\n&#64;<notextile>b</notextile>");
    /* Inside words, with a space after the colon, in capitals or in other words, Redmine links
     * nothing: the line is as before. */
    assert_textile("email@host a#1 br12 x_@y superuser:admin mydocument#1",
                   "<notextile>email@host a#1 br12 x_@y superuser:admin mydocument#1</notextile>");
    assert_textile("plain: 10:00, Source: web, User:admin, R12, user: x, r, #a, <b> <codex",
                   "<notextile>plain: 10:00, Source: web, User:admin, R12, user: x, r, #a, <b> <codex</notextile>");
    assert_textile("plain: 10:00, Source: web, User:admin, R12, user: x, r",
                   "plain: 10:00, Source: web, User:admin, R12, user: x, r");
    /* Nor after a '/': a page's address is as before. */
    assert_textile("https://shop.example/r2d2/user:x", "https://shop.example/r2d2/user:x");
    assert_textile("https://shop.example/r2#1", "<notextile>https://shop.example/r2#1</notextile>");

    /* Over the limit in the middle of a line: out stays as it was. */
    br_buf_init(&out, 24);
    assert_int_equal(br_buf_puts(&out, "ab"), 0);
    assert_int_equal(br_tpl_textile_escape(&out, "user:admin", 10), BR_ELIMIT);
    assert_string_equal(out.data, "ab");
    br_buf_dispose(&out);
}

static void
test_default_description_textile(void **state)
{
    char *s;

    (void)state;
    s = render_default("task_description.textile",
                       "{\"visitor\": {\"name\": \"Ann *B*\", \"email\": \"ann@example.com\", \"city\": \"Berlin\"},"
                       " \"chat\": {\"id\": \"c1\", \"messages\": [{\"author\": \"Ann\", \"text\": \"Hello\\nh1. big\", \"time\": \"10:00\"}]},"
                       " \"channel\": {\"name\": \"shop\"}}",
                       BR_TPL_ESCAPE_TEXTILE);
    assert_non_null(strstr(s, "*Name:* <notextile>Ann *B*</notextile>\n"));
    assert_non_null(strstr(s, "*E-mail:* <notextile>ann@example.com</notextile>\n"));
    assert_non_null(strstr(s, "*City:* Berlin\n"));
    assert_non_null(strstr(s, "\n\n*Ann* _10:00_\nHello\n<notextile>h1. big</notextile>\n"));
    assert_null(strstr(s, "{{"));
    assert_null(strstr(s, "Phone"));
    assert_int_equal(s[0], '*');
    free(s);
}


/* ---- what a template shows (delivery must not depend on it) -------------- */

struct seen_list {
    const json_t *v[32];
    int n;
};

static void
on_seen(void *arg, const json_t *v)
{
    struct seen_list *l = arg;
    if (l->n < 32)
        l->v[l->n++] = v;
}

static bool
in_seen(const struct seen_list *l, const json_t *v)
{
    for (int i = 0; i < l->n; i++)
        if (l->v[i] == v)
            return true;
    return false;
}

static void
test_render_seen(void **state)
{
    /* Only the agent's message is written: the visitor's text is not shown. */
    struct br_tpl *t = compile_ok("{{#chat.messages}}{{#agent}}{{text}};{{/agent}}{{author}}{{/chat.messages}}");
    json_t *ctx = parse_json("{\"chat\": {\"messages\": [{\"text\": \"hi\", \"author\": \"V\", \"agent\": false},"
                             "{\"text\": \"yes\", \"author\": \"A\", \"agent\": true}]}}");
    json_t *msgs = json_object_get(json_object_get(ctx, "chat"), "messages");
    struct seen_list l = {0};
    struct br_buf out;
    (void)state;

    br_buf_init(&out, 0);
    assert_int_equal(br_tpl_render_seen(t, ctx, BR_TPL_ESCAPE_NONE, &out, on_seen, &l), 0);
    assert_string_equal(out.data, "Vyes;A");
    assert_false(in_seen(&l, json_object_get(json_array_get(msgs, 0), "text")));
    assert_true(in_seen(&l, json_object_get(json_array_get(msgs, 1), "text")));
    assert_true(in_seen(&l, json_object_get(json_array_get(msgs, 0), "author")));
    br_buf_dispose(&out);
    json_decref(ctx);
    br_tpl_free(t);
}

static void
test_reads(void **state)
{
    json_t *schema = parse_json(br_config_template_schema());
    struct {
        const char *src;
        const char *path;
        bool want;
    } cases[] = {
        {"{{#chat.messages}}{{text}}{{/chat.messages}}", "chat.messages[].text", true},
        {"{{#chat.messages}}{{{text_html}}}{{/chat.messages}}", "chat.messages[].text_html", true},
        {"{{#chat.messages}}{{{text_html}}}{{/chat.messages}}", "chat.messages[].text", false},
        {"{{#chat}}{{#messages}}{{text}}{{/messages}}{{/chat}}", "chat.messages[].text", true},
        {"{{#chat.messages}}{{author}}{{/chat.messages}}", "chat.messages[].text", false},
        /* A section over the messages writes nothing of them by itself. */
        {"{{#chat.messages}}x{{/chat.messages}}", "chat.messages", false},
        {"{{visitor.name}}", "chat.messages[].text", false},
        {"{{#previous_task}}#{{id}}{{/previous_task}}", "previous_task.id", true},
        {"{{#previous_task.id}}Earlier task{{/previous_task.id}}", "previous_task.id", false},
        {"{{previous_task.id}}", "previous_task.id", true},
        /* {{text}} inside previous_task.messages is not the chat's. */
        {"{{#previous_task.messages}}{{text}}{{/previous_task.messages}}", "chat.messages[].text", false},
        {"{{^chat.messages}}{{chat.id}}{{/chat.messages}}", "chat.id", true},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct br_tpl *t = compile_ok(cases[i].src);
        if (br_tpl_reads(t, schema, cases[i].path) != cases[i].want)
            fail_msg("br_tpl_reads(\"%s\", %s) is not %d", cases[i].src, cases[i].path, cases[i].want);
        br_tpl_free(t);
    }
    json_decref(schema);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_only),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_value_types),
        cmocka_unit_test(test_whitespace_in_tags),
        cmocka_unit_test(test_section_list),
        cmocka_unit_test(test_section_object_and_scalars),
        cmocka_unit_test(test_inverted),
        cmocka_unit_test(test_dotted),
        cmocka_unit_test(test_stack_lookup),
        cmocka_unit_test(test_standalone_lines),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_render_limit),
        cmocka_unit_test(test_work_limit),
        cmocka_unit_test(test_render_reuse),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_compile_null_err),
        cmocka_unit_test(test_check_known),
        cmocka_unit_test(test_check_unknown),
        cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_default_title),
        cmocka_unit_test(test_default_description),
        cmocka_unit_test(test_textile_escape),
        cmocka_unit_test(test_textile_escape_redmine_links),
        cmocka_unit_test(test_default_description_textile),
        cmocka_unit_test(test_render_seen),
        cmocka_unit_test(test_reads),
    };
    return cmocka_run_group_tests_name("tpl", tests, NULL, NULL);
}
