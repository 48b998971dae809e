/*
 * tpl.c - compiles Mustache-style templates into a flat list of nodes and
 * renders them over a jansson context.
 *
 * A flat list (sections store the index of their closing node) keeps the
 * compiled form a single allocation to walk and free, and lets the checker
 * scan it linearly while the renderer recurses over index ranges.
 */
#include "templates/tpl.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Rendering work is bounded separately from output size: a template such
 * as three nested loops over the same 1000-item list writes nothing yet
 * would take a billion steps.  16M node visits is far above any real
 * task description.
 */
#define MAX_STEPS (16ul * 1024 * 1024)

enum kind {
    N_TEXT,
    N_VAR,
    N_SECTION,
    N_INVERTED,
    N_END,
};

struct node {
    enum kind kind;
    int line, col;   /* of the tag's "{{", for check and error messages */
    bool raw;        /* N_VAR: {{{x}}} or {{&x}} */
    size_t off, len; /* N_TEXT: a slice of br_tpl.src */
    char *name;      /* as written, for messages and for matching {{/x}} */
    char *segs;      /* name with '.' turned into NULs; NULL for "." */
    int nseg;
    size_t end;      /* N_SECTION, N_INVERTED: index of the matching N_END */
};

struct br_tpl {
    char *src;
    struct node *nodes;
    size_t n, cap;
};

/* ---- compiling ---------------------------------------------------------- */

struct parser {
    const char *s;
    size_t len;
    size_t text_start; /* start of the literal text not yet emitted */
    struct br_tpl *t;
    size_t open[BR_TPL_MAX_DEPTH]; /* node indices of open sections */
    int depth;
    struct br_tpl_error *err;
    /* Line/col are computed incrementally because tags come in order. */
    size_t lc_pos;
    int line, col;
};

static void
position(struct parser *p, size_t off, int *line, int *col)
{
    if (off < p->lc_pos) {
        p->lc_pos = 0;
        p->line = p->col = 1;
    }
    for (; p->lc_pos < off; p->lc_pos++) {
        unsigned char c = (unsigned char)p->s[p->lc_pos];
        if (c == '\n') {
            p->line++;
            p->col = 1;
        } else if ((c & 0xC0) != 0x80) {
            /* Count characters, not UTF-8 continuation bytes, so the
             * column matches what an editor shows. */
            p->col++;
        }
    }
    *line = p->line;
    *col = p->col;
}

static int
fail(struct parser *p, int rc, size_t off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
fail(struct parser *p, int rc, size_t off, const char *fmt, ...)
{
    va_list ap;
    int line, col;

    position(p, off, &line, &col);
    if (p->err) {
        p->err->line = line;
        p->err->col = col;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
        va_end(ap);
    }
    return rc;
}

static void
use_line_col(struct parser *p, int line, int col)
{
    if (p->err) {
        p->err->line = line;
        p->err->col = col;
    }
}

static struct node *
add_node(struct parser *p, enum kind kind)
{
    struct br_tpl *t = p->t;
    struct node *n;

    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->nodes = br_realloc(t->nodes, t->cap * sizeof(*t->nodes));
    }
    n = &t->nodes[t->n++];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    return n;
}

static void
add_text(struct parser *p, size_t from, size_t to)
{
    struct node *n;

    if (to <= from)
        return;
    n = add_node(p, N_TEXT);
    n->off = from;
    n->len = to - from;
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static const char *
find2(const char *s, size_t from, size_t len, char c)
{
    for (size_t i = from; i + 1 < len; i++)
        if (s[i] == c && s[i + 1] == c)
            return s + i;
    return NULL;
}

/* Validates a name and stores it (and its split segments) in n. */
static int
set_name(struct parser *p, struct node *n, size_t tag, const char *name, size_t len)
{
    char *segs;

    if (len == 0)
        return fail(p, BR_EPARSE, tag, "empty name in tag");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (is_space((char)c))
            return fail(p, BR_EPARSE, tag, "unexpected space in name '%.*s'", (int)(len > 60 ? 60 : len),
                        name);
        if (c < 0x20 || c == 0x7f || c == '{' || c == '}')
            return fail(p, BR_EPARSE, tag, "unexpected character in name '%.*s'",
                        (int)(len > 60 ? 60 : len), name);
    }
    n->name = br_strndup(name, len);
    if (len == 1 && name[0] == '.')
        return 0; /* the current item: segs stays NULL */
    segs = br_strndup(name, len);
    n->segs = segs;
    n->nseg = 1;
    for (size_t i = 0; i < len; i++) {
        if (segs[i] != '.')
            continue;
        if (i == 0 || i + 1 == len || segs[i + 1] == '.')
            return fail(p, BR_EPARSE, tag, "empty part in dotted name '%.*s'", (int)(len > 60 ? 60 : len),
                        name);
        segs[i] = '\0';
        n->nseg++;
    }
    return 0;
}

/*
 * Mustache's standalone rule: a section, inverted, close or comment tag
 * alone on its line (apart from spaces and tabs) removes the whole line,
 * so templates can be laid out one tag per line without leaving blank
 * lines in the output.  Returns whether the rule applies and, if so, the
 * range [*line_start, *line_end) to drop.
 */
static bool
standalone(const struct parser *p, size_t tag_start, size_t tag_end, size_t *line_start, size_t *line_end)
{
    const char *s = p->s;
    size_t k = tag_start, j = tag_end;

    /* Stopping at text_start means a tag earlier on the line disqualifies
     * this one: text_start is then just after that tag's "}}". */
    while (k > p->text_start && (s[k - 1] == ' ' || s[k - 1] == '\t'))
        k--;
    if (k != 0 && s[k - 1] != '\n')
        return false;
    while (j < p->len && (s[j] == ' ' || s[j] == '\t'))
        j++;
    if (j < p->len) {
        if (s[j] == '\n')
            j++;
        else if (s[j] == '\r' && j + 1 < p->len && s[j + 1] == '\n')
            j += 2;
        else
            return false;
    }
    *line_start = k;
    *line_end = j;
    return true;
}

static const char *
sigil_str(enum kind k)
{
    return k == N_INVERTED ? "^" : "#";
}

/* Parses the tag starting at "{{" at offset tag; returns the offset after it
 * (or a negative error via *rc). */
static int
parse_tag(struct parser *p, size_t tag, size_t *next)
{
    const char *s = p->s;
    size_t len = p->len;
    size_t i = tag + 2, tag_end, cstart, cend;
    const char *close;
    bool triple = i < len && s[i] == '{';
    char sigil = 0;
    struct node *n;
    int rc, line, col;

    if (triple)
        i++;
    close = find2(s, i, len, '}');
    if (close == NULL)
        return fail(p, BR_EPARSE, tag, "unterminated tag: '%s' without '%s'", triple ? "{{{" : "{{",
                    triple ? "}}}" : "}}");
    cstart = i;
    cend = (size_t)(close - s);
    tag_end = cend + 2;
    if (triple) {
        if (tag_end >= len || s[tag_end] != '}')
            return fail(p, BR_EPARSE, tag, "'{{{' must be closed with '}}}'");
        tag_end++;
    }

    while (cstart < cend && is_space(s[cstart]))
        cstart++;
    if (!triple && cstart < cend && strchr("#^/!&=>", s[cstart]))
        sigil = s[cstart++];
    if (sigil != '!') {
        /* A newline inside a tag almost always means a forgotten "}}";
         * saying so beats complaining about a strange name. */
        if (memchr(s + tag, '\n', tag_end - tag))
            return fail(p, BR_EPARSE, tag, "unterminated tag: no '%s' before the end of the line",
                        triple ? "}}}" : "}}");
        while (cstart < cend && is_space(s[cstart]))
            cstart++;
        while (cend > cstart && is_space(s[cend - 1]))
            cend--;
    }
    position(p, tag, &line, &col);

    switch (sigil) {
    case '=':
        return fail(p, BR_EPARSE, tag, "changing delimiters ('{{=') is not supported");
    case '>':
        return fail(p, BR_EPARSE, tag, "partials ('{{>') are not supported");
    case '!':
    case '#':
    case '^':
    case '/': {
        size_t ls, le;
        if (standalone(p, tag, tag_end, &ls, &le)) {
            add_text(p, p->text_start, ls);
            p->text_start = le;
            tag_end = le;
        } else {
            add_text(p, p->text_start, tag);
            p->text_start = tag_end;
        }
        break;
    }
    default:
        add_text(p, p->text_start, tag);
        p->text_start = tag_end;
        break;
    }
    *next = tag_end;

    if (sigil == '!')
        return 0;

    if (sigil == '/') {
        size_t nlen = cend - cstart;
        struct node *open;
        if (nlen == 0)
            return fail(p, BR_EPARSE, tag, "empty name in tag");
        if (p->depth == 0)
            return fail(p, BR_EPARSE, tag, "'{{/%.*s}}' closes a section that was never opened",
                        (int)(nlen > 60 ? 60 : nlen), s + cstart);
        open = &p->t->nodes[p->open[p->depth - 1]];
        if (strlen(open->name) != nlen || memcmp(open->name, s + cstart, nlen) != 0)
            return fail(p, BR_EPARSE, tag, "'{{/%.*s}}' does not match '{{%s%.60s}}' opened at line %d, col %d",
                        (int)(nlen > 60 ? 60 : nlen), s + cstart, sigil_str(open->kind), open->name,
                        open->line, open->col);
        open->end = p->t->n;
        p->depth--;
        n = add_node(p, N_END);
        n->line = line;
        n->col = col;
        return 0;
    }

    if ((sigil == '#' || sigil == '^') && p->depth == BR_TPL_MAX_DEPTH)
        return fail(p, BR_ELIMIT, tag, "sections nested deeper than %d", BR_TPL_MAX_DEPTH);

    n = add_node(p, sigil == '#' ? N_SECTION : sigil == '^' ? N_INVERTED : N_VAR);
    n->line = line;
    n->col = col;
    n->raw = triple || sigil == '&';
    rc = set_name(p, n, tag, s + cstart, cend - cstart);
    if (rc)
        return rc;
    if (sigil == '#' || sigil == '^')
        p->open[p->depth++] = p->t->n - 1;
    return 0;
}

static void
free_nodes(struct br_tpl *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->nodes[i].name);
        free(t->nodes[i].segs);
    }
    free(t->nodes);
}

void
br_tpl_free(struct br_tpl *t)
{
    if (t == NULL)
        return;
    free_nodes(t);
    free(t->src);
    free(t);
}

int
br_tpl_compile(struct br_tpl **out, const char *src, size_t len, struct br_tpl_error *err)
{
    struct parser p;
    struct br_tpl *t;
    size_t pos = 0;
    int rc = 0;

    *out = NULL;
    if (err) {
        err->line = err->col = 0;
        err->msg[0] = '\0';
    }
    t = br_calloc(1, sizeof(*t));
    /* Own a copy so the caller may free the config text after compiling. */
    t->src = br_strndup(len ? src : "", len);

    memset(&p, 0, sizeof(p));
    p.s = t->src;
    p.len = len;
    p.t = t;
    p.err = err;
    p.line = p.col = 1;

    for (;;) {
        const char *open = find2(p.s, pos, len, '{');
        if (open == NULL)
            break;
        rc = parse_tag(&p, (size_t)(open - p.s), &pos);
        if (rc)
            goto fail;
    }
    add_text(&p, p.text_start, len);
    if (p.depth > 0) {
        /* The innermost unclosed section is the likeliest culprit. */
        const struct node *o = &t->nodes[p.open[p.depth - 1]];
        rc = BR_EPARSE;
        if (err) {
            use_line_col(&p, o->line, o->col);
            snprintf(err->msg, sizeof(err->msg), "section '{{%s%.60s}}' is never closed", sigil_str(o->kind),
                     o->name);
        }
        goto fail;
    }
    *out = t;
    return 0;

fail:
    br_tpl_free(t);
    return rc;
}

/* ---- rendering ---------------------------------------------------------- */

struct render {
    const struct br_tpl *t;
    enum br_tpl_escape mode;
    struct br_buf *out;
    br_tpl_seen_cb seen;
    void *seen_arg;
    const json_t *stack[BR_TPL_MAX_DEPTH + 1]; /* the root, then one per open section */
    int depth;
    unsigned long steps;
};

/*
 * Mustache lookup: the first segment is searched from the innermost
 * context outward, the first context that has the key wins (even if its
 * value is null), and the remaining segments must resolve strictly inside
 * that value.
 */
static const json_t *
lookup(const struct render *r, const struct node *n)
{
    const char *seg = n->segs;
    const json_t *v = NULL;

    if (seg == NULL)
        return r->stack[r->depth - 1];
    for (int d = r->depth - 1; d >= 0 && v == NULL; d--)
        if (json_is_object(r->stack[d]))
            v = json_object_get(r->stack[d], seg);
    for (int k = 1; k < n->nseg && v != NULL; k++) {
        seg += strlen(seg) + 1;
        v = json_is_object(v) ? json_object_get(v, seg) : NULL;
    }
    return v;
}

static bool
truthy(const json_t *v)
{
    if (v == NULL)
        return false;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    default:
        return true;
    }
}

/* The shortest %g form that reads back as the same double, so 0.1 prints
 * as "0.1" rather than "0.10000000000000001". */
static void
format_real(double d, char *buf, size_t size)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static int
put_value(struct render *r, const json_t *v, bool raw)
{
    char num[64];

    if (v == NULL)
        return 0;
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (!raw && r->mode == BR_TPL_ESCAPE_HTML)
            return br_tpl_html_escape(r->out, json_string_value(v), json_string_length(v), 0);
        if (!raw && r->mode == BR_TPL_ESCAPE_TEXTILE)
            return br_tpl_textile_escape(r->out, json_string_value(v), json_string_length(v));
        return br_buf_append(r->out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return br_buf_printf(r->out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        format_real(json_real_value(v), num, sizeof(num));
        return br_buf_puts(r->out, num);
    case JSON_TRUE:
        return br_buf_puts(r->out, "true");
    case JSON_FALSE:
        return br_buf_puts(r->out, "false");
    default:
        /* null, objects and arrays have no sensible text form. */
        return 0;
    }
}

static int render_range(struct render *r, size_t from, size_t to);

static int
render_section(struct render *r, const struct node *n, const json_t *v, size_t body)
{
    int rc = 0;

    if (json_is_array(v)) {
        size_t count = json_array_size(v);
        for (size_t i = 0; i < count && rc == 0; i++) {
            if (++r->steps > MAX_STEPS)
                return BR_ELIMIT;
            r->stack[r->depth++] = json_array_get(v, i);
            rc = render_range(r, body, n->end);
            r->depth--;
        }
        return rc;
    }
    r->stack[r->depth++] = v;
    rc = render_range(r, body, n->end);
    r->depth--;
    return rc;
}

static int
render_range(struct render *r, size_t from, size_t to)
{
    size_t i = from;
    int rc = 0;

    while (i < to && rc == 0) {
        const struct node *n = &r->t->nodes[i];
        const json_t *v;

        if (++r->steps > MAX_STEPS)
            return BR_ELIMIT;
        switch (n->kind) {
        case N_TEXT:
            rc = br_buf_append(r->out, r->t->src + n->off, n->len);
            i++;
            break;
        case N_VAR:
            v = lookup(r, n);
            if (r->seen && v)
                r->seen(r->seen_arg, v);
            rc = put_value(r, v, n->raw);
            i++;
            break;
        case N_SECTION:
            v = lookup(r, n);
            if (truthy(v))
                rc = render_section(r, n, v, i + 1);
            i = n->end + 1;
            break;
        case N_INVERTED:
            if (!truthy(lookup(r, n)))
                rc = render_range(r, i + 1, n->end);
            i = n->end + 1;
            break;
        case N_END:
            i++;
            break;
        }
    }
    return rc;
}

int
br_tpl_render(const struct br_tpl *t, const json_t *ctx, enum br_tpl_escape mode, struct br_buf *out)
{
    return br_tpl_render_seen(t, ctx, mode, out, NULL, NULL);
}

int
br_tpl_render_seen(const struct br_tpl *t, const json_t *ctx, enum br_tpl_escape mode, struct br_buf *out,
                   br_tpl_seen_cb seen, void *arg)
{
    struct render r;
    size_t start = out->len;
    int rc;

    memset(&r, 0, sizeof(r));
    r.t = t;
    r.mode = mode;
    r.out = out;
    r.seen = seen;
    r.seen_arg = arg;
    r.stack[0] = ctx;
    r.depth = 1;
    rc = render_range(&r, 0, t->n);
    /* Half a task description is worse than none: undo partial output. */
    if (rc)
        br_buf_truncate(out, start);
    return rc;
}

/* ---- checking against a schema ------------------------------------------ */

/* In the schema stack NULL stands for "anything may be here". */
static bool
is_wild(const json_t *s)
{
    return s == NULL || (json_is_string(s) && strcmp(json_string_value(s), "*") == 0);
}

/* Same walk as lookup(), over shapes.  Returns false for an unknown name;
 * *shape gets the shape found (NULL: anything). */
static bool
resolve_shape(const json_t **stack, int depth, const struct node *n, const json_t **shape, int *at)
{
    const char *seg = n->segs;
    const json_t *v = NULL;
    bool found = false;

    *shape = NULL;
    *at = depth - 1;
    if (seg == NULL) {
        *shape = stack[depth - 1];
        return true;
    }
    for (int d = depth - 1; d >= 0 && !found; d--) {
        *at = d;
        if (is_wild(stack[d]))
            return true; /* a context that may hold any key may hold this one */
        if (json_is_object(stack[d]) && (v = json_object_get(stack[d], seg)) != NULL)
            found = true;
    }
    if (!found)
        return false;
    for (int k = 1; k < n->nseg; k++) {
        if (is_wild(v))
            return true;
        seg += strlen(seg) + 1;
        v = json_is_object(v) ? json_object_get(v, seg) : NULL;
        if (v == NULL)
            return false;
    }
    *shape = is_wild(v) ? NULL : v;
    return true;
}

/*
 * The walk behind br_tpl_check and br_tpl_reads: resolves every tag
 * against the schema as rendering would, keeping for each open section
 * the absolute path of its context ("chat.messages[]").  cb gets each
 * tag with its absolute path (NULL when the schema does not know it).
 */
typedef void (*walk_cb)(void *arg, const struct node *n, const char *abs);

static int
walk(const struct br_tpl *t, const json_t *schema, walk_cb cb, void *arg)
{
    const json_t *stack[BR_TPL_MAX_DEPTH + 1];
    char *paths[BR_TPL_MAX_DEPTH + 1];
    int depth = 1, unknown = 0;

    if (t == NULL)
        return 0;
    stack[0] = is_wild(schema) ? NULL : schema;
    paths[0] = br_strdup("");
    for (size_t i = 0; i < t->n; i++) {
        const struct node *n = &t->nodes[i];
        const json_t *shape;
        char *abs = NULL;
        bool known;
        int at;

        switch (n->kind) {
        case N_TEXT:
            break;
        case N_END:
            free(paths[--depth]);
            break;
        case N_VAR:
        case N_SECTION:
        case N_INVERTED:
            known = resolve_shape(stack, depth, n, &shape, &at);
            if (!known)
                unknown++;
            else if (n->segs == NULL)
                abs = br_strdup(paths[depth - 1]);
            else
                abs = br_asprintf("%s%s%s", paths[at], *paths[at] ? "." : "", n->name);
            if (cb)
                cb(arg, n, abs);
            if (n->kind == N_SECTION) {
                /* An unknown section pushes "anything", so its body does
                 * not repeat the same mistake once per inner name. */
                if (!known)
                    shape = NULL;
                else if (json_is_array(shape)) {
                    shape = json_array_size(shape) ? json_array_get(shape, 0) : NULL;
                    char *item = br_asprintf("%s[]", abs);
                    free(abs);
                    abs = item;
                }
                stack[depth] = is_wild(shape) ? NULL : shape;
                paths[depth++] = abs ? abs : br_strdup(n->name);
                abs = NULL;
            } else if (n->kind == N_INVERTED) {
                /* An inverted section pushes nothing when rendered; repeat
                 * the current top so that its N_END can pop uniformly. */
                stack[depth] = stack[depth - 1];
                paths[depth] = br_strdup(paths[depth - 1]);
                depth++;
            }
            free(abs);
            break;
        }
    }
    while (depth > 0)
        free(paths[--depth]);
    return unknown;
}

struct check_arg {
    br_tpl_check_cb cb;
    void *arg;
};

static void
check_one(void *arg, const struct node *n, const char *abs)
{
    struct check_arg *c = arg;
    if (abs == NULL && c->cb)
        c->cb(c->arg, n->name, n->line, n->col);
}

int
br_tpl_check(const struct br_tpl *t, const json_t *schema, br_tpl_check_cb cb, void *arg)
{
    struct check_arg c = {cb, arg};
    return walk(t, schema, check_one, &c);
}

struct reads_arg {
    const char *path;
    bool found;
};

static void
reads_one(void *arg, const struct node *n, const char *abs)
{
    struct reads_arg *ra = arg;
    if (n->kind == N_VAR && abs && strcmp(abs, ra->path) == 0)
        ra->found = true;
}

bool
br_tpl_reads(const struct br_tpl *t, const json_t *schema, const char *path)
{
    struct reads_arg ra = {path, false};
    walk(t, schema, reads_one, &ra);
    return ra.found;
}
