/*
 * tpl_escape.c - what a template's {{x}} does to a value for where the
 * text goes: HTML for Planfix, Textile for Redmine (tpl.h says what each
 * keeps literal, and how).
 */
#include "templates/tpl.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int
br_tpl_html_escape(struct br_buf *out, const char *s, size_t len, int newline_to_br)
{
    size_t start = out->len, run = 0;
    int rc = 0;

    for (size_t i = 0; i < len && rc == 0; i++) {
        const char *rep;

        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        case '\n': rep = newline_to_br ? "<br>" : NULL; break;
        case '\r': rep = newline_to_br ? "" : NULL; break;
        default: rep = NULL; break;
        }
        if (rep == NULL)
            continue;
        /* Copy the plain run before this character in one append. */
        rc = br_buf_append(out, s + run, i - run);
        if (rc == 0)
            rc = br_buf_puts(out, rep);
        run = i + 1;
    }
    if (rc == 0)
        rc = br_buf_append(out, s + run, len - run);
    if (rc)
        br_buf_truncate(out, start);
    return rc;
}

/* Whether Textile or Redmine's link syntax could change how this line shows. */
static bool
textile_special(const char *s, size_t len)
{
    size_t i = 0;

    for (size_t k = 0; k < len; k++)
        if (strchr("*_+-^~@%|![]{}()<>\"=#&", s[k]) != NULL && s[k] != '\0')
            return true;
    /* A block signature: letters, optional digits, then '.' ("p.", "h1.", "bq.", "fn1."). */
    while (i < len && s[i] == ' ')
        i++;
    if (i < len && isalpha((unsigned char)s[i])) {
        size_t w = i;
        while (i < len && isalpha((unsigned char)s[i]))
            i++;
        while (i < len && isdigit((unsigned char)s[i]))
            i++;
        if (i - w <= 6 && i < len && s[i] == '.')
            return true;
    }
    return false;
}

/* ASCII letters, digits and '_': what Ruby's \w is in Redmine's patterns. */
static bool
is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Whether a word starting at s[i] begins at a word boundary (line start or after a non-word byte). */
static bool
word_starts(const char *s, size_t i)
{
    return i == 0 || !is_word(s[i - 1]);
}

/* Whether a Redmine link may start at s[i]: at the line's start or after what LINKS_RE
 * (app/helpers/application_helper.rb) takes before one: a space, ( , - [ >, its "!" escape,
 * the ':' of a project prefix ("demo:r12") or the '|' of a repository ("repo|r12"). */
static bool
link_starts(const char *s, size_t i)
{
    return i == 0 || (s[i - 1] != '\0' && strchr(" \t\n\v\f\r(,-[>!:|", s[i - 1]) != NULL);
}

/* Whether s[i] ends one of Redmine's link prefixes ("user" of "user:admin", "document" of
 * "document#1"), the prefix starting a link. */
static bool
after_link_prefix(const char *s, size_t i)
{
    static const char *const prefixes[] = {"attachment", "document", "version", "forum", "news", "message",
                                           "project", "commit", "source", "export", "user"};

    for (size_t k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
        size_t n = strlen(prefixes[k]);
        if (n <= i && memcmp(s + i - n, prefixes[k], n) == 0 && link_starts(s, i - n))
            return true;
    }
    return false;
}

/* Whether s (len bytes) starts with word (ignoring ASCII case with nocase). */
static bool
starts_with(const char *s, size_t len, const char *word, bool nocase)
{
    size_t n = strlen(word);
    return len >= n && (nocase ? strncasecmp(s, word, n) : strncmp(s, word, n)) == 0;
}

/* Whether the '<' at s[i] opens or closes a tag that ends Textile's <notextile> early
 * (code, pre, kbd, notextile as a whole word: RedCloth's OFFTAGS). */
static bool
opens_offtag(const char *s, size_t len, size_t i)
{
    static const char *const tags[] = {"code", "pre", "kbd", "notextile"};

    i++;
    if (i < len && s[i] == '/')
        i++;
    for (size_t k = 0; k < sizeof(tags) / sizeof(tags[0]); k++) {
        size_t end = i + strlen(tags[k]);
        if (starts_with(s + i, len - i, tags[k], true) && (end == len || !is_word(s[end])))
            return true;
    }
    return false;
}

/* Whether the '#' at s[i] starts an issue or note reference ("#1", "##1", "#note-1"). */
static bool
starts_issue_ref(const char *s, size_t len, size_t i)
{
    i++;
    if (i < len && s[i] == '#')
        i++;
    return (i < len && isdigit((unsigned char)s[i])) || starts_with(s + i, len - i, "note", false);
}

/*
 * Whether Redmine would read s[i] as the first character of one of its own constructs,
 * which it applies even inside <notextile> (and before Textile, for macros):
 * "#1", "document#1", "r12", "user:admin", "@admin" (also a mention, mailed to that user),
 * "[[Page]]", "{{macro}}", a tag that ends <notextile>, "x%x%" (RedCloth's stand-in for
 * '&') and src="...@2x.png".  A "!" before a link would hide it but not the mention,
 * and stays visible before an unknown macro, so the character goes out as an entity.
 */
static bool
starts_construct(const char *s, size_t len, size_t i)
{
    char next = i + 1 < len ? s[i + 1] : '\0';

    switch (s[i]) {
    case '#':
        return (link_starts(s, i) || after_link_prefix(s, i)) && starts_issue_ref(s, len, i);
    case '@':
        /* A mention takes any non-word character before it. */
        return word_starts(s, i) || after_link_prefix(s, i);
    case ':':
        return after_link_prefix(s, i) && i + 1 < len && !isspace((unsigned char)next);
    case 'r':
        return link_starts(s, i) && isdigit((unsigned char)next);
    case '[':
        return next == '[';
    case '{':
        return next == '{';
    case '<':
        return opens_offtag(s, len, i);
    case '%':
        /* RedCloth writes a bare '&' as "x%x%" too, so "x%&" ends up the same. */
        return i > 0 && s[i - 1] == 'x' && (starts_with(s + i + 1, len - i - 1, "x%", false) || next == '&');
    case '=':
        return i >= 3 && strncasecmp(s + i - 3, "src", 3) == 0 && next == '"';
    default:
        return false;
    }
}

/* Whether the line holds a construct of Redmine's (starts_construct). */
static bool
has_construct(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (starts_construct(s, len, i))
            return true;
    return false;
}

/* Appends a run of the line in <notextile> (nothing for an empty run). */
static int
put_notextile(struct br_buf *out, const char *s, size_t len)
{
    int rc = 0;

    if (len == 0)
        return 0;
    rc = br_buf_puts(out, "<notextile>");
    if (rc == 0)
        rc = br_buf_append(out, s, len);
    if (rc == 0)
        rc = br_buf_puts(out, "</notextile>");
    return rc;
}

/* Appends a line in <notextile>, the first character of each of Redmine's constructs between
 * the runs as a numeric entity: the browser shows it as typed, Redmine's patterns miss it. */
static int
put_protected_line(struct br_buf *out, const char *s, size_t len)
{
    size_t run = 0;
    int rc = 0;

    for (size_t i = 0; i < len && rc == 0; i++) {
        if (!starts_construct(s, len, i))
            continue;
        rc = put_notextile(out, s + run, i - run);
        if (rc == 0)
            rc = br_buf_printf(out, "&#%u;", (unsigned)(unsigned char)s[i]);
        run = i + 1;
    }
    if (rc == 0)
        rc = put_notextile(out, s + run, len - run);
    return rc;
}

int
br_tpl_textile_escape(struct br_buf *out, const char *s, size_t len)
{
    size_t start = out->len, line = 0;
    int rc = 0;

    while (line <= len && rc == 0) {
        const char *nl = memchr(s + line, '\n', len - line);
        size_t end = nl ? (size_t)(nl - s) : len, n;

        n = end - line;
        if (n > 0 && s[line + n - 1] == '\r')
            n--;
        if (n > 0 && (textile_special(s + line, n) || has_construct(s + line, n))) {
            rc = put_protected_line(out, s + line, n);
        } else if (n > 0) {
            rc = br_buf_append(out, s + line, n);
        }
        if (nl == NULL)
            break;
        if (rc == 0)
            rc = br_buf_putc(out, '\n');
        line = end + 1;
    }
    if (rc)
        br_buf_truncate(out, start);
    return rc;
}
