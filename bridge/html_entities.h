/*
 * html_entities.h - HTML5's named character references, for libxml2's HTML
 * parser, which knows only HTML 4's.
 */
#ifndef BR_HTML_ENTITIES_H
#define BR_HTML_ENTITIES_H

#include "br.h"

#include <stddef.h>

/*
 * Appends the n bytes of html to out, each named character reference of
 * HTML5's list ("&check;", "&NewLine;", "&amp;", and a legacy one without its
 * ';' as html_entities.c says: "&copy 2024") written as the numeric
 * references of its code points ("&#x2713;"): the same text for an HTML
 * parser, which needs to know no name.  Everything else is copied as it is.
 * Returns 0, or BR_ELIMIT when out reached its maximum.
 */
int br_html_entities_numeric(struct br_buf *out, const char *html, size_t n);

#endif
