/*
 * html_text.h - the plain text of a tracker comment, as a Chatra message
 * shows it.  Planfix comments are HTML, and the Redmine driver hands its
 * notes to the engine as escaped HTML too, so this is the one converter
 * every reply goes through.  It is built on libxml2's HTML parser (entities,
 * broken markup and nesting are libxml2's business); the rules for links,
 * paragraphs, lists and white space are listed in html_text.c.
 *
 * Pure and single-threaded (the daemon calls it on the loop thread): no
 * I/O, no state between calls apart from libxml2's own globals, which
 * br_html_text_global_init/_cleanup set up and release.
 */
#ifndef BR_HTML_TEXT_H
#define BR_HTML_TEXT_H

/* Input beyond this many bytes is not read; output is cut at this many bytes and ends in "…". */
#define BR_HTML_TEXT_MAX_INPUT (1024 * 1024)
#define BR_HTML_TEXT_MAX_OUTPUT (64 * 1024)

/*
 * The text of an HTML fragment or document: UTF-8 (also when the input is
 * not), trimmed, never NULL; the caller frees it with free().  html may be
 * NULL, which reads as empty.
 */
char *br_html_to_text(const char *html);

/*
 * Plain text (a Redmine note) as HTML that br_html_to_text turns back into
 * the same text, spaces and blank lines included (only the ends are
 * trimmed).  Never NULL; the caller frees it; text may be NULL.
 */
char *br_html_from_text(const char *text);

/*
 * libxml2's process-wide state.  init is optional (the first conversion
 * does it) but belongs before the loop starts; cleanup runs once at
 * shutdown, after the last conversion, so that leak checkers see nothing
 * of libxml2.  Nothing else in the process may be using libxml2 then.
 */
void br_html_text_global_init(void);
void br_html_text_global_cleanup(void);

#endif
