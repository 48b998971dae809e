/*
 * html_text.c - tracker HTML as the plain text of a Chatra message.
 *
 * libxml2 parses (and repairs) the HTML; this file walks the tree and
 * writes what a reader of the employee's comment saw:
 *
 *  - Text: runs of spaces, tabs and newlines are one space, as in a
 *    browser; inside <pre> the text is kept as it is.  U+00A0 (&nbsp;) is a
 *    plain space.  Every HTML5 entity is decoded (libxml2 knows HTML 4's:
 *    html_entities.c writes the others as numeric ones); control bytes are
 *    dropped and invalid UTF-8 becomes U+FFFD.
 *  - Lines: <br> is a line break.  <p>, <h1>-<h6>, <blockquote>, <pre>,
 *    <hr> are paragraphs: a blank line around them.  <div>, <li>, <tr>
 *    and the other blocks start a new line: Chrome's editor, and Planfix's
 *    with it, writes one <div> per line and <div><br></div> for a blank
 *    one.  Breaks that meet count once (the larger wins), a <br> that ends
 *    a block adds nothing, never more than one blank line in a row outside
 *    <pre>, and the ends are trimmed.
 *  - Lists: each <li> is a line, "- " in <ul>, "1. ", "2. " in <ol> (from
 *    its start attribute); a nested list, and any further line of an item,
 *    is indented under the item's text.  Table cells are separated by a
 *    tab, rows are lines.
 *  - Links: "text (address)"; the address alone when the text is the
 *    address (ignoring the scheme, "www.", a trailing slash and case; a
 *    phone number by its digits, and then its text stays), or when there
 *    is no text.  mailto: and tel: addresses are shown without their
 *    scheme (and mailto: without its ?subject=...).  Only http,
 *    https, ftp, mailto and tel addresses are shown: a relative or
 *    javascript: address means nothing in a visitor's chat.
 *  - <img> is its alt text.  <head>, <script>, <style>, <title>,
 *    <template>, <noscript>, embedded objects and form controls are dropped.
 *
 * Bounds: at most BR_HTML_TEXT_MAX_INPUT bytes are parsed, the text is cut
 * at BR_HTML_TEXT_MAX_OUTPUT bytes (and then ends in "…"), libxml2 stops
 * nesting at 256 levels (no HTML_PARSE_HUGE), and the walk is a loop over
 * the tree's parent/next links with a fixed array of per-element state.
 */
#include "html_text.h"

#include "br.h"
#include "html_entities.h"
#include "templates/tpl.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libxml2 nests at most 256 elements deep; deeper ones (none in practice) get no frame. */
#define MAX_FRAMES 300
#define MAX_INDENT 24 /* columns of list indentation: deeper lists stay at this column */
#define MAX_ALT 1024  /* bytes of an image's alt text */
#define MAX_CUT_TAG 4096 /* a tag the input's cut leaves open is dropped when it is at most this long */
#define ELLIPSIS "\xe2\x80\xa6"
#define REPLACEMENT "\xef\xbf\xbd"
/*
 * The parse starts inside <body>: without it libxml2 wraps text that comes
 * before the first tag in an implied <p>, which would put a blank line
 * between "Hi" and "line 2" in Chrome's "Hi<div>line 2</div>".  A full
 * document still parses: its <head> parts land in <body>, and are dropped.
 */
#define PREFIX "<body>"
#define PARSE_OPTIONS \
    (HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC | HTML_PARSE_COMPACT)

enum kind {
    K_INLINE, /* b, span, unknown tags: only their text */
    K_SKIP,   /* nothing inside is shown */
    K_BLOCK,  /* lines before and after */
    K_BREAK,  /* <br> */
    K_LINK,
    K_LIST,
    K_ITEM,
    K_PRE,
    K_CELL,
    K_IMAGE,
};

static const struct tag {
    const char *name;
    enum kind kind;
    int lines; /* line breaks around a block: 1 a new line, 2 a blank line */
} tags[] = {
    {"a", K_LINK, 0},          {"br", K_BREAK, 0},        {"img", K_IMAGE, 0},       {"p", K_BLOCK, 2},
    {"div", K_BLOCK, 1},       {"li", K_ITEM, 1},         {"ul", K_LIST, 1},         {"ol", K_LIST, 1},
    {"h1", K_BLOCK, 2},        {"h2", K_BLOCK, 2},        {"h3", K_BLOCK, 2},        {"h4", K_BLOCK, 2},
    {"h5", K_BLOCK, 2},        {"h6", K_BLOCK, 2},        {"blockquote", K_BLOCK, 2}, {"pre", K_PRE, 2},
    {"hr", K_BLOCK, 2},        {"listing", K_PRE, 2},     {"xmp", K_PRE, 2},         {"plaintext", K_PRE, 2},
    {"menu", K_LIST, 1},       {"dir", K_LIST, 1},        {"dl", K_BLOCK, 1},        {"dt", K_BLOCK, 1},
    {"dd", K_BLOCK, 1},        {"table", K_BLOCK, 1},     {"caption", K_BLOCK, 1},   {"thead", K_BLOCK, 1},
    {"tbody", K_BLOCK, 1},     {"tfoot", K_BLOCK, 1},     {"tr", K_BLOCK, 1},        {"td", K_CELL, 0},
    {"th", K_CELL, 0},         {"section", K_BLOCK, 1},   {"article", K_BLOCK, 1},   {"aside", K_BLOCK, 1},
    {"header", K_BLOCK, 1},    {"footer", K_BLOCK, 1},    {"nav", K_BLOCK, 1},       {"main", K_BLOCK, 1},
    {"address", K_BLOCK, 1},   {"figure", K_BLOCK, 1},    {"figcaption", K_BLOCK, 1}, {"center", K_BLOCK, 1},
    {"form", K_BLOCK, 1},      {"fieldset", K_BLOCK, 1},  {"legend", K_BLOCK, 1},    {"details", K_BLOCK, 1},
    {"summary", K_BLOCK, 1},   {"head", K_SKIP, 0},       {"script", K_SKIP, 0},     {"style", K_SKIP, 0},
    {"title", K_SKIP, 0},      {"template", K_SKIP, 0},   {"noscript", K_SKIP, 0},   {"iframe", K_SKIP, 0},
    {"object", K_SKIP, 0},     {"embed", K_SKIP, 0},      {"applet", K_SKIP, 0},     {"svg", K_SKIP, 0},
    {"math", K_SKIP, 0},       {"select", K_SKIP, 0},     {"datalist", K_SKIP, 0},   {"textarea", K_SKIP, 0},
    {"button", K_SKIP, 0},     {"canvas", K_SKIP, 0},     {"audio", K_SKIP, 0},      {"video", K_SKIP, 0},
    {"noembed", K_SKIP, 0},    {"noframes", K_SKIP, 0},   {"frameset", K_SKIP, 0},   {"map", K_SKIP, 0},
};

/* Per open element: what its end must undo or finish. */
struct frame {
    enum kind kind;
    int lines;
    size_t start;  /* K_LINK: where its text starts in the output (SIZE_MAX: no text yet) */
    long next;     /* K_LIST: the number of the next item */
    bool ordered;  /* K_LIST */
    int indent;    /* K_ITEM: the indentation to restore */
};

struct out {
    struct br_buf b;
    bool full;       /* the output reached its maximum: stop */
    int brk;         /* line breaks wanted before the next text (0, 1, 2) */
    bool space;      /* a collapsed space is due before the next text */
    bool tab;        /* a cell separator is due before the next text */
    int pre;         /* open <pre> elements */
    bool pre_fresh;  /* right after <pre>: its first newline is not shown */
    int indent;      /* columns before every new line of a list item */
    char marker[24]; /* a list item's "- " or "12. ", written with its first text */
    int links_waiting; /* open links whose text has not started yet */
    size_t depth;    /* open elements; frames[i] exists for i < MAX_FRAMES */
    struct frame frames[MAX_FRAMES];
};

void
br_html_text_global_init(void)
{
    xmlInitParser();
}

void
br_html_text_global_cleanup(void)
{
    xmlCleanupParser();
}

static const struct tag *
tag_of(const xmlNode *n)
{
    const char *name = (const char *)n->name;

    if (name == NULL)
        return NULL;
    /* libxml2's HTML parser gives element names in lower case. */
    for (size_t i = 0; i < BR_ARRAY_SIZE(tags); i++)
        if (tags[i].name[0] == name[0] && strcmp(tags[i].name, name) == 0)
            return &tags[i];
    return NULL;
}

/* ---- the output: bounded, valid UTF-8 ---- */

static void
write_raw(struct out *o, const char *s, size_t n)
{
    if (o->full || n == 0)
        return;
    if (o->b.len + n > BR_HTML_TEXT_MAX_OUTPUT) {
        n = BR_HTML_TEXT_MAX_OUTPUT - o->b.len;
        /* Never cut a character in two. */
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
        o->full = true;
    }
    br_buf_append(&o->b, s, n);
}

static void
truncate_to(struct out *o, size_t len)
{
    if (len < o->b.len) {
        o->b.len = len;
        o->b.data[len] = '\0';
    }
}

static bool
at_line_start(const struct out *o)
{
    return o->b.len == 0 || o->b.data[o->b.len - 1] == '\n';
}

static void
trim_spaces(struct out *o)
{
    while (o->b.len > 0 && (o->b.data[o->b.len - 1] == ' ' || o->b.data[o->b.len - 1] == '\t'))
        o->b.data[--o->b.len] = '\0';
}

/* Ends the current line so that at least n line breaks (at most 2) separate it from what follows. */
static void
newlines_at_least(struct out *o, int n)
{
    int have = 0;

    trim_spaces(o);
    if (o->b.len == 0)
        return;
    while (have < n && (size_t)have < o->b.len && o->b.data[o->b.len - 1 - (size_t)have] == '\n')
        have++;
    for (; have < n; have++)
        write_raw(o, "\n", 1);
}

/* The length of the well-formed UTF-8 character at s (n bytes left), 0 when it is not one. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp, min;

    if (s[0] < 0xc2 || s[0] > 0xf4)
        return 0;
    len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
    if (n < len)
        return 0;
    cp = s[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Writes text as it is, but valid UTF-8, without control bytes, and with U+00A0 as a space. */
static void
write_clean(struct out *o, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t run = 0, i = 0;

    while (i < n) {
        size_t len = 1;
        const char *rep = NULL;

        if (s[i] < 0x20 || s[i] == 0x7f) {
            rep = (s[i] == '\t' && o->pre) ? "\t" : "";
        } else if (s[i] >= 0x80) {
            len = utf8_len(s + i, n - i);
            if (len == 0) {
                rep = REPLACEMENT;
                len = 1;
            } else if (len == 2 && s[i] == 0xc2 && s[i + 1] == 0xa0) {
                rep = " ";
            }
        }
        if (rep != NULL) {
            write_raw(o, text + run, i - run);
            write_raw(o, rep, strlen(rep));
            run = i + len;
        }
        i += len;
    }
    write_raw(o, text + run, n - run);
}

/* Before text: the due line breaks or space, then a new line's indentation and list marker. */
static void
settle(struct out *o)
{
    if (o->brk > 0)
        newlines_at_least(o, o->brk);
    else if ((o->space || o->tab) && !at_line_start(o))
        write_raw(o, o->tab ? "\t" : " ", 1);
    o->brk = 0;
    o->space = o->tab = false;
    if (at_line_start(o)) {
        for (int i = 0; i < o->indent; i++)
            write_raw(o, " ", 1);
        if (o->marker[0]) {
            size_t w = strlen(o->marker);
            write_raw(o, o->marker, w);
            o->indent = o->indent + (int)w > MAX_INDENT ? MAX_INDENT : o->indent + (int)w;
            o->marker[0] = '\0';
        }
    }
    /* A link's text starts here, after the space or marker that is not part of it. */
    for (size_t d = o->depth < MAX_FRAMES ? o->depth : MAX_FRAMES; d > 0 && o->links_waiting > 0; d--) {
        struct frame *f = &o->frames[d - 1];
        if (f->kind == K_LINK && f->start == SIZE_MAX) {
            f->start = o->b.len;
            o->links_waiting--;
        }
    }
}

static void
hard_newline(struct out *o)
{
    o->space = o->tab = false;
    if (o->brk > 0) {
        newlines_at_least(o, o->brk);
        o->brk = 0;
    }
    if (o->b.len == 0)
        return;
    if (!o->pre) {
        trim_spaces(o);
        /* One blank line at most: more is the editor's noise, not the employee's words. */
        if (o->b.len >= 2 && o->b.data[o->b.len - 1] == '\n' && o->b.data[o->b.len - 2] == '\n')
            return;
    }
    write_raw(o, "\n", 1);
}

static bool
is_html_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Text outside <pre>: white space collapses to one space between words. */
static void
put_text(struct out *o, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && !o->full) {
        size_t j = i;
        if (is_html_space(s[i])) {
            o->space = true;
            i++;
            continue;
        }
        while (j < n && !is_html_space(s[j]))
            j++;
        settle(o);
        write_clean(o, s + i, j - i);
        i = j;
    }
}

/* Text inside <pre>: every space and line kept. */
static void
put_pre(struct out *o, const char *s, size_t n)
{
    size_t i = 0;

    /* As in a browser, the newline right after <pre> is not shown. */
    if (o->pre_fresh) {
        if (n > 0 && s[0] == '\n')
            i = 1;
        else if (n > 1 && s[0] == '\r' && s[1] == '\n')
            i = 2;
    }
    while (i < n && !o->full) {
        size_t j = i;
        if (s[i] == '\n' || s[i] == '\r') {
            hard_newline(o);
            i += (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        while (j < n && s[j] != '\n' && s[j] != '\r')
            j++;
        settle(o);
        write_clean(o, s + i, j - i);
        i = j;
    }
}

static void
put_text_node(struct out *o, const char *s)
{
    if (s == NULL)
        return;
    if (o->pre)
        put_pre(o, s, strlen(s));
    else
        put_text(o, s, strlen(s));
    o->pre_fresh = false;
}

/* ---- links ---- */

static bool
has_prefix(const char *s, size_t n, const char *prefix)
{
    size_t l = strlen(prefix);
    return n >= l && strncasecmp(s, prefix, l) == 0;
}

/*
 * The address as the visitor should see it (a part of href, in addr and len),
 * or false when it is not worth showing.
 */
static bool
shown_address(const char *href, const char **addr, size_t *len, bool *is_tel)
{
    const char *s = href;
    size_t n = strlen(href);

    *is_tel = false;
    if (has_prefix(s, n, "http://") || has_prefix(s, n, "https://") || has_prefix(s, n, "ftp://")) {
        *addr = s;
        *len = n;
        return strstr(s, "://")[3] != '\0'; /* more than the scheme */
    }
    if (has_prefix(s, n, "mailto:")) {
        s += strlen("mailto:");
        n = strcspn(s, "?");
    } else if (has_prefix(s, n, "tel:")) {
        s += strlen("tel:");
        n -= strlen("tel:");
        *is_tel = true;
    } else {
        return false;
    }
    *addr = s;
    *len = n;
    return n > 0;
}

/* s (n bytes) without white space at both ends, the scheme, "www." and a trailing slash. */
static void
address_core(const char **s, size_t *n)
{
    static const char *const prefixes[] = {"http://", "https://", "ftp://", "mailto:", "tel:", "www."};

    while (*n > 0 && is_html_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_html_space((*s)[*n - 1]))
        (*n)--;
    for (size_t i = 0; i < BR_ARRAY_SIZE(prefixes); i++) {
        if (has_prefix(*s, *n, prefixes[i])) {
            *s += strlen(prefixes[i]);
            *n -= strlen(prefixes[i]);
        }
    }
    while (*n > 0 && (*s)[*n - 1] == '/')
        (*n)--;
}

/* Whether a link's text is its address: a phone number by its digits, anything else by its core. */
static bool
text_is_address(const char *text, size_t tn, const char *addr, size_t an, bool is_tel)
{
    if (is_tel) {
        size_t i = 0, j = 0;
        for (;;) {
            while (i < tn && !(text[i] >= '0' && text[i] <= '9'))
                i++;
            while (j < an && !(addr[j] >= '0' && addr[j] <= '9'))
                j++;
            if (i == tn || j == an)
                return i == tn && j == an;
            if (text[i++] != addr[j++])
                return false;
        }
    }
    address_core(&text, &tn);
    address_core(&addr, &an);
    return tn == an && tn > 0 && strncasecmp(text, addr, tn) == 0;
}

/* The href without the white space a URL parser ignores (ends trimmed, tabs and newlines removed). */
static char *
clean_href(const xmlChar *raw)
{
    const char *s = (const char *)raw;
    size_t n = strlen(s), k = 0;
    char *out;

    while (n > 0 && (unsigned char)*s <= ' ') {
        s++;
        n--;
    }
    while (n > 0 && (unsigned char)s[n - 1] <= ' ')
        n--;
    out = br_malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            out[k++] = s[i];
    out[k] = '\0';
    return out;
}

static void
end_link(struct out *o, const xmlNode *n, struct frame *f)
{
    xmlChar *raw = xmlGetProp(n, (const xmlChar *)"href");
    char *href;
    const char *addr;
    size_t an, start, end, tail;
    int newlines = 0;
    bool is_tel;

    if (f->start == SIZE_MAX)
        o->links_waiting--;
    if (raw == NULL || o->full)
        goto done;
    href = clean_href(raw);
    if (!shown_address(href, &addr, &an, &is_tel)) {
        free(href);
        goto done;
    }
    if (f->start == SIZE_MAX) {
        /* No text (an icon without alt, an empty tag): the address is the text. */
        settle(o);
        write_clean(o, addr, an);
        free(href);
        goto done;
    }
    /*
     * The text may end in white space or line breaks (a <br> or a block
     * inside the link): the address goes right after the words, and the
     * breaks are due again after it.
     */
    start = f->start < o->b.len ? f->start : o->b.len;
    end = o->b.len;
    while (end > start && (o->b.data[end - 1] == ' ' || o->b.data[end - 1] == '\n' || o->b.data[end - 1] == '\t'))
        end--;
    for (tail = end; tail < o->b.len; tail++)
        if (o->b.data[tail] == '\n' && newlines < 2)
            newlines++;
        else if (o->b.data[tail] != '\n')
            o->space = true;
    if (end == start || text_is_address(o->b.data + start, end - start, addr, an, is_tel)) {
        /* The number as the employee wrote it reads better than its tel: form. */
        truncate_to(o, is_tel && end > start ? end : start);
        if (!is_tel || end == start)
            write_clean(o, addr, an);
    } else {
        truncate_to(o, end);
        write_raw(o, " (", 2);
        write_clean(o, addr, an);
        write_raw(o, ")", 1);
    }
    if (newlines > o->brk)
        o->brk = newlines;
    free(href);
done:
    xmlFree(raw);
}

/* ---- lists ---- */

static long
list_start(const xmlNode *n)
{
    xmlChar *raw = xmlGetProp(n, (const xmlChar *)"start");
    long v = 1;

    if (raw != NULL) {
        char *end;
        long x = strtol((const char *)raw, &end, 10);
        /* Anything odd (not a number, absurdly large) counts from 1. */
        if (end != (char *)raw && *end == '\0' && x > -1000000 && x < 1000000)
            v = x;
        xmlFree(raw);
    }
    return v;
}

static void
begin_item(struct out *o, struct frame *f)
{
    struct frame *list = NULL;

    /* An item whose first line is a nested item: the outer marker gets its own line. */
    if (o->marker[0])
        settle(o);
    if (o->brk < 1)
        o->brk = 1;
    for (size_t d = o->depth - 1; d > 0; d--) {
        if (o->frames[d - 1].kind == K_LIST) {
            list = &o->frames[d - 1];
            break;
        }
    }
    if (list != NULL && list->ordered)
        snprintf(o->marker, sizeof(o->marker), "%ld. ", list->next++);
    else
        snprintf(o->marker, sizeof(o->marker), "- ");
    f->indent = o->indent;
}

/* ---- the walk ---- */

/* Opens element n; returns whether its children are to be read. */
static bool
enter(struct out *o, const xmlNode *n)
{
    const struct tag *t = tag_of(n);
    enum kind kind = t ? t->kind : K_INLINE;
    int lines = t ? t->lines : 0;
    struct frame *f = o->depth < MAX_FRAMES ? &o->frames[o->depth] : NULL;

    o->depth++;
    o->pre_fresh = false;
    if (f == NULL && (kind == K_LINK || kind == K_LIST || kind == K_ITEM)) {
        /* No room to remember what its end needs: a plain block or inline text. */
        kind = kind == K_LINK ? K_INLINE : K_BLOCK;
        lines = kind == K_BLOCK ? 1 : 0;
    }
    if (f != NULL) {
        memset(f, 0, sizeof(*f));
        f->kind = kind;
        f->lines = lines;
    }
    switch (kind) {
    case K_SKIP:
        return false;
    case K_BREAK:
        hard_newline(o);
        return false;
    case K_IMAGE: {
        xmlChar *alt = xmlGetProp(n, (const xmlChar *)"alt");
        if (alt != NULL) {
            size_t len = strlen((const char *)alt);
            put_text(o, (const char *)alt, len > MAX_ALT ? MAX_ALT : len);
        }
        xmlFree(alt);
        return false;
    }
    case K_LINK:
        f->start = SIZE_MAX;
        o->links_waiting++;
        return true;
    case K_LIST:
        f->ordered = strcmp((const char *)n->name, "ol") == 0;
        f->next = f->ordered ? list_start(n) : 1;
        break;
    case K_ITEM:
        begin_item(o, f);
        return true;
    case K_PRE:
        o->pre++;
        o->pre_fresh = true;
        break;
    case K_CELL:
        if (o->brk == 0 && !at_line_start(o))
            o->tab = true;
        return true;
    default:
        break;
    }
    if (lines > o->brk)
        o->brk = lines;
    return true;
}

static void
leave(struct out *o, const xmlNode *n)
{
    struct frame *f;
    enum kind kind;
    int lines;

    o->depth--;
    f = o->depth < MAX_FRAMES ? &o->frames[o->depth] : NULL;
    if (f != NULL) {
        kind = f->kind;
        lines = f->lines;
    } else {
        const struct tag *t = tag_of(n);
        kind = t ? t->kind : K_INLINE;
        lines = t ? t->lines : 0;
        if (kind == K_LINK)
            kind = K_INLINE;
        else if (kind == K_LIST || kind == K_ITEM)
            kind = K_BLOCK, lines = 1;
    }
    o->pre_fresh = false;
    switch (kind) {
    case K_LINK:
        end_link(o, n, f);
        return;
    case K_ITEM:
        /* An empty item shows nothing, not even its marker. */
        o->marker[0] = '\0';
        o->indent = f->indent;
        break;
    case K_PRE:
        o->pre--;
        break;
    default:
        break;
    }
    if (lines > o->brk)
        o->brk = lines;
}

static void
walk(struct out *o, xmlNode *root)
{
    xmlNode *n = root->children;

    while (n != NULL && !o->full) {
        bool down = false;

        if (n->type == XML_ELEMENT_NODE)
            down = enter(o, n);
        else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE)
            put_text_node(o, (const char *)n->content);
        if (down && n->children != NULL) {
            n = n->children;
            continue;
        }
        if (n->type == XML_ELEMENT_NODE)
            leave(o, n);
        while (n->next == NULL) {
            n = n->parent;
            if (n == NULL || n == root)
                return;
            leave(o, n);
        }
        n = n->next;
    }
}

static char *
finish(struct out *o, bool cut)
{
    struct br_buf *b = &o->b;
    size_t lead = 0;

    while (b->len > 0 && is_html_space(b->data[b->len - 1]))
        b->data[--b->len] = '\0';
    while (lead < b->len && is_html_space(b->data[lead]))
        lead++;
    if (lead > 0) {
        memmove(b->data, b->data + lead, b->len - lead + 1);
        b->len -= lead;
    }
    /* The buffer's maximum leaves room for the mark of a cut text. */
    if ((o->full || cut) && b->len > 0)
        br_buf_puts(b, ELLIPSIS);
    return b->data ? br_buf_steal(b) : br_strdup("");
}

char *
br_html_from_text(const char *text)
{
    struct br_buf b;

    /* <pre> keeps every space and blank line; <br> (not a newline) needs no care for \r or the first line. */
    br_buf_init(&b, 0);
    br_buf_puts(&b, "<pre>");
    if (text != NULL)
        br_tpl_html_escape(&b, text, strlen(text), 1);
    br_buf_puts(&b, "</pre>");
    return br_buf_steal(&b);
}

char *
br_html_to_text(const char *html)
{
    struct out *o = br_calloc(1, sizeof(*o));
    size_t n;
    bool cut;
    struct br_buf src;
    htmlDocPtr doc;
    char *text;

    /* A byte order mark is no part of the text (after PREFIX, libxml2 would keep it). */
    if (html != NULL && strncmp(html, "\xef\xbb\xbf", 3) == 0)
        html += 3;
    n = html ? strnlen(html, BR_HTML_TEXT_MAX_INPUT + 1) : 0;
    cut = n > BR_HTML_TEXT_MAX_INPUT;
    if (cut) {
        const char *lt, *gt;
        /* Cut before a whole character: at most three continuation bytes to step over. */
        n = BR_HTML_TEXT_MAX_INPUT;
        for (int i = 0; i < 3 && n > 0 && ((unsigned char)html[n] & 0xc0) == 0x80; i++)
            n--;
        /* And before a tag the cut leaves open, which libxml2 would show as text. */
        lt = memrchr(html, '<', n);
        gt = memrchr(html, '>', n);
        if (lt != NULL && (gt == NULL || gt < lt) && n - (size_t)(lt - html) <= MAX_CUT_TAG)
            n = (size_t)(lt - html);
    }
    /* At most 1 MiB in, and a name never grows past twice its length: within the default maximum. */
    br_buf_init(&src, 0);
    br_buf_puts(&src, PREFIX);
    if (n > 0)
        br_html_entities_numeric(&src, html, n);
    br_buf_init(&o->b, BR_HTML_TEXT_MAX_OUTPUT + sizeof(ELLIPSIS));
    doc = htmlReadMemory(src.data, (int)src.len, NULL, "UTF-8", PARSE_OPTIONS);
    if (doc != NULL)
        walk(o, (xmlNode *)doc);
    xmlFreeDoc(doc);
    br_buf_dispose(&src);
    text = finish(o, cut);
    br_buf_dispose(&o->b);
    free(o);
    return text;
}
