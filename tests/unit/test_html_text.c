/*
 * test_html_text.c - tracker HTML as the text of a Chatra message: links
 * keep their addresses, paragraphs, line breaks and list items keep their
 * lines, every entity is decoded; broken, hostile and huge input gives
 * bounded, valid UTF-8.  Also the Redmine way in: a note turned into HTML
 * and back is the note as written.
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

#include "bridge/html_text.h"

/* Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static bool
valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t len;
        uint32_t cp;
        if (*p < 0x80) {
            p++;
            continue;
        }
        if (*p < 0xc2 || *p > 0xf4)
            return false;
        len = *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
        cp = *p & (0x7f >> len);
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += len;
    }
    return true;
}

static void
expect_text(const char *html, const char *want)
{
    char *got = br_html_to_text(html);

    assert_non_null(got);
    if (strcmp(got, want) != 0)
        print_error("html: %s\n", html);
    assert_string_equal(got, want);
    assert_true(valid_utf8(got));
    free(got);
}

static char *
repeat(const char *piece, size_t times, const char *tail)
{
    size_t n = strlen(piece), t = strlen(tail);
    char *s = malloc(n * times + t + 1);

    assert_non_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, piece, n);
    memcpy(s + n * times, tail, t + 1);
    return s;
}

static void
test_plain_and_empty(void **state)
{
    (void)state;
    expect_text("", "");
    expect_text("   \n\t ", "");
    expect_text("Hello", "Hello");
    expect_text("  Hello,   Maria!  ", "Hello, Maria!");
    expect_text("<p></p><div><br></div>", "");
    char *none = br_html_to_text(NULL);
    assert_string_equal(none, "");
    free(none);
}

static void
test_links_keep_their_addresses(void **state)
{
    (void)state;
    expect_text("See <a href=\"https://shop.example/kettles\">our kettles</a>.",
                "See our kettles (https://shop.example/kettles).");
    /* The address as the text: shown once, whatever the slash, the scheme or "www." say. */
    expect_text("<a href=\"https://shop.example/kettles\">https://shop.example/kettles</a>",
                "https://shop.example/kettles");
    expect_text("<a href=\"https://shop.example/\">https://shop.example</a>", "https://shop.example/");
    expect_text("<a href=\"https://shop.example\">https://shop.example/</a>", "https://shop.example");
    expect_text("<a href=\"http://www.shop.example/\">Shop.Example</a>", "http://www.shop.example/");
    /* No text (an empty tag, an image without alt): the address alone. */
    expect_text("Here: <a href=\"https://x.example/a\"></a>", "Here: https://x.example/a");
    expect_text("<a href=\"https://x.example/a\"><img src=\"i.png\"></a>", "https://x.example/a");
    expect_text("<a href=\"https://x.example/a\"><img src=\"i.png\" alt=\"Logo\"></a>", "Logo (https://x.example/a)");
    /* Inline tags inside the link text. */
    expect_text("<a href=\"https://x.example/\"><b>Big</b> <i>sale</i></a> today",
                "Big sale (https://x.example/) today");
    expect_text("<a href=\"https://x.example/\"><span style=\"color:red\"><u>https://x.example</u></span></a>",
                "https://x.example/");
    /* Entities in the address are decoded; white space a URL parser drops is dropped. */
    expect_text("<a href=\"https://x.example/?a=1&amp;b=2\">query</a>", "query (https://x.example/?a=1&b=2)");
    expect_text("<a href=\"  https://x.example/\nlong\t\">split</a>", "split (https://x.example/long)");
    /* A link whose text ends in a line break: the address follows the words, the break stays. */
    expect_text("<a href=\"https://x.example/\">see<br></a>next", "see (https://x.example/)\nnext");
    expect_text("<a href=\"https://x.example/\"><p>Para</p></a><p>Next</p>", "Para (https://x.example/)\n\nNext");
    expect_text("<a href=\"https://a.example/\">one</a> <a href=\"https://b.example/\">two</a>",
                "one (https://a.example/) two (https://b.example/)");
    expect_text("<a href=\"ftp://files.example/x.zip\">file</a>", "file (ftp://files.example/x.zip)");
    expect_text("<a href=\"HTTPS://X.EXAMPLE/\">site</a>", "site (HTTPS://X.EXAMPLE/)");
}

static void
test_mail_and_phone_links(void **state)
{
    (void)state;
    expect_text("<a href=\"mailto:anna@shop.example\">anna@shop.example</a>", "anna@shop.example");
    expect_text("Write to <a href=\"mailto:anna@shop.example\">Anna</a>", "Write to Anna (anna@shop.example)");
    expect_text("<a href=\"mailto:anna@shop.example?subject=Order%2012\">anna@shop.example</a>", "anna@shop.example");
    expect_text("<a href=\"MAILTO:anna@shop.example\">mail us</a>", "mail us (anna@shop.example)");
    /* A phone number stays as the employee wrote it; another text gets the number. */
    expect_text("<a href=\"tel:+34600000000\">+34 600 000 000</a>", "+34 600 000 000");
    expect_text("<a href=\"tel:+34600000000\">call us</a>", "call us (+34600000000)");
}

static void
test_addresses_not_worth_showing(void **state)
{
    (void)state;
    /* Relative, in-page and script addresses mean nothing in a visitor's chat: the text alone. */
    expect_text("<a href=\"/task/12\">task 12</a>", "task 12");
    expect_text("<a href=\"#top\">top</a>", "top");
    expect_text("<a href=\"javascript:alert(1)\">click</a>", "click");
    expect_text("<a href=\"data:text/html,x\">data</a>", "data");
    expect_text("<a name=\"anchor\">anchor</a> text", "anchor text");
    expect_text("<a href=\"\">empty</a>", "empty");
    expect_text("<a href=\"https://\">bare scheme</a>", "bare scheme");
    expect_text("<a href=\"mailto:\">nobody</a>", "nobody");
}

static void
test_entities(void **state)
{
    (void)state;
    expect_text("Fish &amp; chips &lt;3 &gt; &quot;q&quot; &#39;s&#39; &apos;a&apos;",
                "Fish & chips <3 > \"q\" 's' 'a'");
    expect_text("&laquo;Ok&raquo; &#8212; &#x2014; &mdash; &ndash; &hellip; &copy; &euro; &#x1F600; &#128512;",
                "\xc2\xabOk\xc2\xbb \xe2\x80\x94 \xe2\x80\x94 \xe2\x80\x94 \xe2\x80\x93 \xe2\x80\xa6 \xc2\xa9 "
                "\xe2\x82\xac \xf0\x9f\x98\x80 \xf0\x9f\x98\x80");
    /* A no-break space is a plain space, and it does not collapse. */
    expect_text("5&nbsp;&euro;", "5 \xe2\x82\xac");
    expect_text("a&nbsp;&nbsp;&nbsp;b", "a   b");
    expect_text("a\xc2\xa0" "b", "a b");
    /* HTML5's names too, which libxml2 does not know; one of two code points; in a link's address. */
    expect_text("&check; &bigstar; &colon;&commat;&dollar; &half; x&NewLine;y &NotEqualTilde; &LT;b&GT;",
                "\xe2\x9c\x93 \xe2\x98\x85 :@$ \xc2\xbd x y \xe2\x89\x82\xcc\xb8 <b>");
    expect_text("<a href=\"https&colon;//shop.example/?a=1&amp;b=2\">shop</a>", "shop (https://shop.example/?a=1&b=2)");
    /* Read once, left to right: an escaped ampersand before a name stays text. */
    expect_text("&amp;check; &amp;amp; &check", "&check; &amp; &check");
    /* HTML5's legacy names without their ';', as a browser reads them, unless a letter, digit or '=' follows. */
    expect_text("&copy 2024 AT&amp T a &lt b, c&gt", "\xc2\xa9 2024 AT& T a < b, c>");
    expect_text("&copy2 &notit &ampx R&D", "&copy2 &notit &ampx R&D");
    expect_text("<a href=\"https://shop.example/?a=1&copy=2&lt\">shop</a>", "shop (https://shop.example/?a=1&copy=2<)");
    /* What is not an entity stays as written (a broken numeric one is libxml2's to mend). */
    expect_text("&unknown; & AT&T &", "&unknown; & AT&T &");
    expect_text("&#xZZ;", "ZZ;");
    /* Code points that are not characters are dropped, not written as broken UTF-8. */
    expect_text("a&#0;b&#xD800;c&#1114112;d", "abcd");
    expect_text("&lt;b&gt;not bold&lt;/b&gt;", "<b>not bold</b>");
}

static void
test_cyrillic(void **state)
{
    (void)state;
    expect_text("<p>Здравствуйте, Мария!</p><p>Чайник есть в <b>синем</b> цвете: "
                "<a href=\"https://магазин.рф/чайники\">каталог</a>.</p>",
                "Здравствуйте, Мария!\n\nЧайник есть в синем цвете: каталог (https://магазин.рф/чайники).");
    expect_text("&laquo;Ёлка&raquo;&nbsp;&mdash; это&nbsp;ель", "«Ёлка» — это ель");
}

static void
test_paragraphs_and_line_breaks(void **state)
{
    (void)state;
    expect_text("<p>One</p><p>Two</p>", "One\n\nTwo");
    expect_text("One<br>Two<br/>Three<br />Four", "One\nTwo\nThree\nFour");
    expect_text("<p>Yes, we have it &amp; it is <b>blue</b>.</p><p>Delivery:<br>2 days</p>",
                "Yes, we have it & it is blue.\n\nDelivery:\n2 days");
    /* A <br> that ends a paragraph adds nothing; an empty one is one blank line. */
    expect_text("<p>One<br></p><p>Two</p>", "One\n\nTwo");
    expect_text("<p>One</p><p><br></p><p>Two</p>", "One\n\nTwo");
    expect_text("<p>One</p><p>&nbsp;</p><p>Two</p>", "One\n\nTwo");
    /* Never more than one blank line, and no breaks at the ends. */
    expect_text("<br><br>One<br><br><br><br><br>Two<br><br>", "One\n\nTwo");
    expect_text("<h1>Title</h1><p>Text</p><h2>Sub</h2>Tail", "Title\n\nText\n\nSub\n\nTail");
    expect_text("<blockquote>Quoted</blockquote>Answer", "Quoted\n\nAnswer");
    expect_text("Above<hr>Below", "Above\n\nBelow");
    /* Source newlines are spaces, as in a browser; spaces at a line's ends go. */
    expect_text("<p>\n  A long\n  sentence\n  over lines.\n</p>\n\n<p>  Next  </p>",
                "A long sentence over lines.\n\nNext");
    expect_text("<b>bold</b> <i>italic</i>", "bold italic");
    expect_text("<b>bold</b><i>italic</i>", "bolditalic");
    expect_text("a <br> b", "a\nb");
}

static void
test_div_soup(void **state)
{
    (void)state;
    /* Chrome's editor: the first line bare, one <div> per further line, <div><br></div> a blank one. */
    expect_text("Hello Maria,<div>the kettle is in stock.</div><div><br></div><div>Best regards,</div>"
                "<div>Anna</div>",
                "Hello Maria,\nthe kettle is in stock.\n\nBest regards,\nAnna");
    /* Nested divs with styles, spans and fonts, as pasted from elsewhere. */
    expect_text("<div style=\"font-family: Arial\"><div><span style=\"color: #333\">Line&nbsp;one</span></div>"
                "<div><font color=\"red\">Line two</font><br></div><div><div><br></div></div>"
                "<div>Line&nbsp;four</div></div>",
                "Line one\nLine two\n\nLine four");
    expect_text("<div><div><div>deep</div></div></div><div>next</div>", "deep\nnext");
    expect_text("<div>a</div>\n\n<div>b</div>", "a\nb");
    expect_text("text<div>block</div>tail", "text\nblock\ntail");
}

static void
test_lists(void **state)
{
    (void)state;
    expect_text("<p>Colours:</p><ul><li>blue</li><li>red</li></ul><p>Which one?</p>",
                "Colours:\n\n- blue\n- red\n\nWhich one?");
    expect_text("Steps:<ol><li>pay</li><li>wait</li><li>enjoy</li></ol>", "Steps:\n1. pay\n2. wait\n3. enjoy");
    expect_text("<ol start=\"7\"><li>seven</li><li>eight</li></ol>", "7. seven\n8. eight");
    expect_text("<ol start=\"x\"><li>one</li></ol>", "1. one");
    expect_text("<ul><li>a<ul><li>a1</li><li>a2<ol><li>deep</li></ol></li></ul></li><li>b</li></ul>",
                "- a\n  - a1\n  - a2\n    1. deep\n- b");
    expect_text("<ol><li>first<br>more of it</li><li>second</li></ol>", "1. first\n   more of it\n2. second");
    /* Items without closing tags, empty items, white space between items. */
    expect_text("<ul>\n  <li>one\n  <li></li>\n  <li>two\n</ul>", "- one\n- two");
    expect_text("<ul><li><p>para item</p></li><li><p>another</p></li></ul>", "- para item\n\n- another");
    expect_text("<ul><li><a href=\"https://x.example/\">link item</a></li></ul>", "- link item (https://x.example/)");
    expect_text("<li>stray item</li>", "- stray item");
}

static void
test_pre_keeps_spaces(void **state)
{
    (void)state;
    expect_text("<pre>\nif (a)\n    b();\n\n\n\nend</pre>after", "if (a)\n    b();\n\n\n\nend\n\nafter");
    expect_text("<pre>a\tb  c</pre>", "a\tb  c");
    expect_text("<pre>x\r\ny\rz</pre>", "x\ny\nz");
}

static void
test_dropped_parts(void **state)
{
    (void)state;
    expect_text("<script>alert('x')</script>Hi<style>p { color: red }</style>!", "Hi!");
    expect_text("<!DOCTYPE html><html><head><meta charset=\"koi8-r\"><title>Mail</title>"
                "<style>body{}</style><script>var x;</script></head><body><p>Body text, Текст</p></body></html>",
                "Body text, Текст");
    /* The text is UTF-8 whatever the document says, and a byte order mark is not part of it. */
    expect_text("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><p>Текст</p>", "Текст");
    expect_text("\xef\xbb\xbf<p>after a BOM</p>", "after a BOM");
    expect_text("Visible<!-- hidden -->text", "Visibletext");
    expect_text("a<noscript>no</noscript>b<template><p>t</p></template>c<iframe src=\"x\">f</iframe>",
                "abc");
    expect_text("<select><option>x</option></select><textarea>t</textarea><button>b</button>ok", "ok");
    expect_text("<img src=\"a.png\" alt=\"a cat\"> sleeps", "a cat sleeps");
    expect_text("<img src=\"a.png\">", "");
    expect_text("<table><tr><th>Item</th><th>Price</th></tr><tr><td>Kettle</td><td>25 &euro;</td></tr></table>",
                "Item\tPrice\nKettle\t25 \xe2\x82\xac");
}

static void
test_malformed(void **state)
{
    (void)state;
    expect_text("<p>unclosed <b>bold <i>both", "unclosed bold both");
    expect_text("<b>bold<i>both</b>italic</i> plain", "boldbothitalic plain");
    expect_text("</p></div>stray closes</b>", "stray closes");
    expect_text("<p>one<p>two<p>three", "one\n\ntwo\n\nthree");
    expect_text("text <b", "text");
    /* libxml2 gives an attribute quote that never closes back as text: the words are not lost. */
    expect_text("<a href=\"https://x.example/>broken quote</a> tail", "https://x.example/>broken quote</a> tail");
    expect_text("<<>>", "<<>>");
    expect_text("<p class=>a</p", "a");
    expect_text("<div><p>x</div>y</p>", "x\n\ny");
    expect_text("<html><body>one</body></html>after the end", "oneafter the end");
}

static void
test_literal_less_than(void **state)
{
    (void)state;
    expect_text("1 < 2 and 3 > 2", "1 < 2 and 3 > 2");
    expect_text("I <3 it", "I <3 it");
    expect_text("x <= y, a->b", "x <= y, a->b");
    expect_text("price < 5 € & > 2 €", "price < 5 € & > 2 €");
}

static void
test_bad_bytes(void **state)
{
    (void)state;
    /* Invalid UTF-8 becomes U+FFFD; control characters are dropped. */
    expect_text("ok \xff bad \xc3 end", "ok \xef\xbf\xbd bad \xef\xbf\xbd end");
    expect_text("a\x01" "b\x1b" "c\x7f" "d", "abcd");
    expect_text("over\xc0\xaflong", "over\xef\xbf\xbd\xef\xbf\xbdlong");
}

static void
test_huge_input_is_capped(void **state)
{
    char *html, *text;
    size_t len;

    (void)state;
    /* Text beyond the output maximum is cut, on a character boundary, and says so. */
    html = repeat("Привет ", BR_HTML_TEXT_MAX_INPUT / 14, "");
    text = br_html_to_text(html);
    len = strlen(text);
    assert_true(len <= BR_HTML_TEXT_MAX_OUTPUT + strlen("…"));
    assert_true(len > BR_HTML_TEXT_MAX_OUTPUT - 16);
    assert_string_equal(text + len - strlen("…"), "…");
    assert_true(valid_utf8(text));
    assert_memory_equal(text, "Привет Привет", strlen("Привет Привет"));
    free(text);
    free(html);

    /* Input beyond its maximum is not read: the tail after 2 MiB of markup never shows. */
    html = repeat("<b></b>", 2 * BR_HTML_TEXT_MAX_INPUT / 7, "tail");
    text = br_html_to_text(html);
    assert_string_equal(text, "");
    free(text);
    free(html);

    /* Cut in the middle of a character: the text before it, whole. */
    html = repeat("\xd0\x96", BR_HTML_TEXT_MAX_INPUT / 2 + 1, "");
    html[BR_HTML_TEXT_MAX_INPUT + 1] = '\0'; /* the last character cut after its first byte */
    text = br_html_to_text(html);
    assert_true(valid_utf8(text));
    assert_true(strlen(text) <= BR_HTML_TEXT_MAX_OUTPUT + strlen("…"));
    free(text);
    free(html);

    /* A long address in a long link text stays bounded too. */
    html = repeat("x", BR_HTML_TEXT_MAX_OUTPUT, "");
    {
        char *link = malloc(2 * strlen(html) + 64);
        assert_non_null(link);
        sprintf(link, "<a href=\"https://x.example/%s\">%s</a>", html, html);
        text = br_html_to_text(link);
        assert_true(strlen(text) <= BR_HTML_TEXT_MAX_OUTPUT + strlen("…"));
        free(text);
        free(link);
    }
    free(html);
}

static void
test_deep_nesting(void **state)
{
    char *html;
    char *text;

    (void)state;
    /* libxml2 stops nesting at 256 levels; the walk is a loop, so nothing overflows. */
    html = repeat("<div>", 100000, "deep");
    text = br_html_to_text(html);
    assert_true(valid_utf8(text));
    free(text);
    free(html);
    html = repeat("<ul><li>x", 20000, "");
    text = br_html_to_text(html);
    assert_true(valid_utf8(text));
    assert_memory_equal(text, "- x\n  - x\n    - x", strlen("- x\n  - x\n    - x"));
    free(text);
    free(html);
    html = repeat("<a href=\"https://x.example/\"><b>", 5000, "t");
    text = br_html_to_text(html);
    assert_true(valid_utf8(text));
    free(text);
    free(html);
    /* Nested but well within the limit: every level is honoured. */
    html = repeat("<blockquote>", 100, "quoted");
    expect_text(html, "quoted");
    free(html);
}

/* A Redmine note, as the driver hands it to the engine and the engine to Chatra. */
static void
expect_note_unchanged(const char *note, const char *want)
{
    char *html = br_html_from_text(note);
    char *text = br_html_to_text(html);

    if (strcmp(text, want) != 0)
        print_error("note: %s\nhtml: %s\n", note, html);
    assert_string_equal(text, want);
    free(text);
    free(html);
}

static void
test_redmine_notes_unchanged(void **state)
{
    static const char *const notes[] = {
        "Yes, it is in stock.",
        "Two  spaces,\tand a tab.",
        "Line one\nLine two\n\n\n\nafter three blank lines",
        "  - an indented list\n  - second item\n    - nested",
        "<b>not a tag</b> & &amp; not an entity &lt;",
        "*bold* _italic_ \"a link\":https://x.example/page and @code@",
        "Цена: 5 € — «синий» чайник 😀",
        "a\xc2\xa0" "b",
        "<pre>\nnot pre\n</pre>",
        "ends with a newline\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++) {
        char *want = strdup(notes[i]);
        size_t n = strlen(want);
        /* Only the ends are trimmed; a no-break space is a plain one. */
        while (n > 0 && (want[n - 1] == '\n' || want[n - 1] == ' '))
            want[--n] = '\0';
        if (strcmp(want, "a\xc2\xa0" "b") == 0)
            strcpy(want, "a b");
        expect_note_unchanged(notes[i], want + strspn(want, " "));
        free(want);
    }
    /* Redmine keeps the \r\n a browser sent. */
    expect_note_unchanged("Windows\r\nlines\r\n\r\nhere", "Windows\nlines\n\nhere");
    expect_note_unchanged("", "");
    expect_note_unchanged("   ", "");
    {
        char *html = br_html_from_text(NULL);
        char *text = br_html_to_text(html);
        assert_string_equal(text, "");
        free(text);
        free(html);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_empty),
        cmocka_unit_test(test_links_keep_their_addresses),
        cmocka_unit_test(test_mail_and_phone_links),
        cmocka_unit_test(test_addresses_not_worth_showing),
        cmocka_unit_test(test_entities),
        cmocka_unit_test(test_cyrillic),
        cmocka_unit_test(test_paragraphs_and_line_breaks),
        cmocka_unit_test(test_div_soup),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_pre_keeps_spaces),
        cmocka_unit_test(test_dropped_parts),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_literal_less_than),
        cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_huge_input_is_capped),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_redmine_notes_unchanged),
    };
    int failed;

    br_html_text_global_init();
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    br_html_text_global_cleanup();
    return failed;
}
