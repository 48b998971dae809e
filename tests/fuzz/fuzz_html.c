/*
 * fuzz_html.c - libFuzzer target for the reply converter
 * (bridge/html_text.h).
 *
 * Input: HTML up to the first NUL byte (the converter takes a C string);
 * the same bytes also serve as a Redmine note, which br_html_from_text
 * turns into HTML and br_html_to_text back.
 *
 * Oracles beyond the sanitizers: the text is never NULL, is valid UTF-8
 * within BR_HTML_TEXT_MAX_OUTPUT (plus the "…" of a cut text), holds no
 * control character but newline and tab and no U+00A0, has no white space
 * at its ends, no run of blank lines unless the input has a <pre>-like
 * element, and is the same on a second run.  A valid UTF-8 note small
 * enough not to be cut comes back as written: only its \r and control
 * characters gone, a no-break space a plain one, and its ends trimmed.
 *
 * Built with -fsanitize=fuzzer as fuzz_html, and with
 * tests/fuzz/replay_main.c as replay_html (CTest: fuzz.replay_html).
 */
#include "bridge/html_text.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Escaping grows a note at most six times ("'" is "&#39;", "\n" "<br>"): this stays under both limits. */
#define NOTE_MAX (8 * 1024)

static void
die(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_html: %s\n--- text ---\n%s\n", what, text ? text : "(null)");
    abort();
}

/* The length of the well-formed UTF-8 character at s (n bytes left), 0 when it is not one. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
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
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static bool
valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len((const unsigned char *)s + i, n - i);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool
has_pre(const char *html)
{
    static const char *const names[] = {"<pre", "<listing", "<xmp", "<plaintext"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasestr(html, names[i]) != NULL)
            return true;
    return false;
}

static void
check_text(const char *html, const char *text)
{
    size_t n;

    if (text == NULL)
        die("NULL text", NULL);
    n = strlen(text);
    if (n > BR_HTML_TEXT_MAX_OUTPUT + strlen("…"))
        die("text over the maximum", text);
    if (!valid_utf8(text, n))
        die("text is not valid UTF-8", text);
    if (n > 0 && (is_space(text[0]) || is_space(text[n - 1])))
        die("white space at an end", text);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            die("a control character in the text", text);
        if (c == 0xc2 && (unsigned char)text[i + 1] == 0xa0)
            die("a no-break space in the text", text);
    }
    if (!has_pre(html) && strstr(text, "\n\n\n") != NULL)
        die("more than one blank line outside <pre>", text);
}

/* What a note should come back as: see the header comment. */
static char *
expected_note(const char *note)
{
    size_t n = strlen(note), k = 0, start = 0;
    char *want = malloc(n + 1);

    if (want == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)note[i];
        if (c == 0xc2 && (unsigned char)note[i + 1] == 0xa0) {
            want[k++] = ' ';
            i++;
        } else if ((c >= 0x20 && c != 0x7f) || c == '\n' || c == '\t') {
            want[k++] = (char)c;
        }
    }
    while (k > 0 && is_space(want[k - 1]))
        k--;
    want[k] = '\0';
    while (is_space(want[start]))
        start++;
    memmove(want, want + start, k - start + 1);
    return want;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *html = malloc(size + 1);
    char *text, *again;

    if (html == NULL)
        abort();
    memcpy(html, data, size);
    html[size] = '\0';

    text = br_html_to_text(html);
    check_text(html, text);
    again = br_html_to_text(html);
    if (strcmp(text, again) != 0)
        die("a second run gives another text", again);
    free(again);
    free(text);

    if (strlen(html) <= NOTE_MAX && valid_utf8(html, strlen(html))) {
        char *note_html = br_html_from_text(html);
        char *want = expected_note(html);
        text = br_html_to_text(note_html);
        check_text(note_html, text);
        if (strcmp(text, want) != 0) {
            fprintf(stderr, "fuzz_html: wanted\n%s\n", want);
            die("a note does not come back as written", text);
        }
        free(want);
        free(text);
        free(note_html);
    }
    free(html);
    return 0;
}
