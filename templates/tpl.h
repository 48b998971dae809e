/*
 * tpl.h - the Mustache-style template engine behind task titles, task
 * descriptions, contact names and comments.
 *
 * A template is admin input (from the config); the context it is rendered
 * with is visitor input (from Chatra webhooks).  So compiling reports
 * precise line/col errors for the admin, while rendering is bounded in
 * output size and work and never fails on odd context values.
 *
 * Supported: {{name}} (escaped per mode), {{{name}}} and {{&name}} (raw),
 * {{#name}}...{{/name}} sections, {{^name}}...{{/name}} inverted sections,
 * {{! comments }}, dotted names a.b.c and {{.}} for the current item.
 * Not supported (compile errors): partials, delimiter changes.
 *
 * Ownership: a compiled template owns a copy of its source and is
 * immutable, so one template may be rendered any number of times.  The
 * context and schema stay owned by the caller.  No I/O, no threads.
 */
#ifndef BR_TPL_H
#define BR_TPL_H

#include "bridge/br.h"

#include <jansson.h>
#include <stdbool.h>

/* Sections may nest this deep; deeper templates do not compile. */
#define BR_TPL_MAX_DEPTH 32

struct br_tpl; /* compiled template, immutable after compile */

/* Where and why compiling failed: 1-based line/col (col counts UTF-8
 * characters) of the offending tag, and a one-line message. */
struct br_tpl_error {
    int line;
    int col;
    char msg[200];
};

enum br_tpl_escape {
    BR_TPL_ESCAPE_HTML = 0, /* {{x}} escapes & < > " ' (Planfix texts are HTML) */
    BR_TPL_ESCAPE_NONE = 1, /* {{x}} is written as is (plain-text fields) */
    BR_TPL_ESCAPE_TEXTILE = 2, /* {{x}} is kept literal in Textile (Redmine texts) */
};

/*
 * Compiles src (len bytes, need not be NUL-terminated).  On success *out
 * holds the template.  On failure *out is NULL, err (when not NULL) is
 * filled, and the result is BR_EPARSE for a syntax error or BR_ELIMIT for
 * sections nested deeper than BR_TPL_MAX_DEPTH.
 */
int br_tpl_compile(struct br_tpl **out, const char *src, size_t len, struct br_tpl_error *err);

/* NULL is a no-op. */
void br_tpl_free(struct br_tpl *t);

/*
 * Renders t with ctx (may be NULL: everything is missing) and appends the
 * result to out.  {{x}} is escaped per mode, {{{x}}} and {{&x}} never.
 * Returns BR_ELIMIT when out->max would be exceeded or the template does
 * too much work (e.g. deeply nested loops over large lists); on any error
 * out is left as it was before the call.
 */
int br_tpl_render(const struct br_tpl *t, const json_t *ctx, enum br_tpl_escape mode,
                  struct br_buf *out);

/*
 * br_tpl_render, telling seen about every value a variable tag looked up
 * and wrote (the very json_t of the context, so the caller can tell which
 * items of a list were shown).  On an error the calls made are void too.
 */
typedef void (*br_tpl_seen_cb)(void *arg, const json_t *value);
int br_tpl_render_seen(const struct br_tpl *t, const json_t *ctx, enum br_tpl_escape mode,
                       struct br_buf *out, br_tpl_seen_cb seen, void *arg);

/*
 * Checks every variable and section reference against a schema: a JSON
 * value shaped like the context.  An object lists the known keys; the
 * string "*" allows anything below it; an array describes a list whose
 * items have the shape of its first element (an empty array: any items);
 * any other value is a leaf.  Names resolve with the same stack rules as
 * rendering.  cb (may be NULL) is called once per unknown reference with
 * the name as written and the tag's line/col.  Returns the number of
 * unknown references (0: all fine).
 */
typedef void (*br_tpl_check_cb)(void *arg, const char *path, int line, int col);
int br_tpl_check(const struct br_tpl *t, const json_t *schema, br_tpl_check_cb cb, void *arg);

/*
 * Whether some variable tag of t writes the value at path, an absolute
 * path in the schema with "[]" for the items of a list: "previous_task.id",
 * "chat.messages[].text".  Names resolve as in rendering, so {{text}}
 * inside {{#chat.messages}} counts.  Tags inside sections count whatever
 * their conditions (a static answer: what may be shown).
 */
bool br_tpl_reads(const struct br_tpl *t, const json_t *schema, const char *path);

/*
 * Appends s escaped for HTML (& < > " ').  With newline_to_br, "\n"
 * becomes "<br>" and "\r" is dropped, so visitor text keeps its line
 * breaks in Planfix comments.  Returns BR_ELIMIT (out unchanged) when
 * out->max would be exceeded.
 */
int br_tpl_html_escape(struct br_buf *out, const char *s, size_t len, int newline_to_br);

/*
 * Appends s so that Textile (Redmine's default text formatting) shows it
 * literally: each line that holds a character Textile or Redmine would
 * interpret (* _ + - ^ ~ @ % | ! [ ] { } ( ) < > " = # &) or that starts
 * like a block signature ("p.", "h1.", "bq.") is wrapped in
 * <notextile>...</notextile>; plain lines are left as they are, so the
 * raw text stays readable.  Redmine's own syntax works inside <notextile>
 * too ("#1", "r12", "user:admin", "@admin", "[[Page]]", "{{macro}}"), and
 * the visitor's own "</notextile>" or "<code>" would end it: such a line
 * is wrapped in runs, the first character of each construct between them
 * as a numeric entity ("user</notextile>&#58;<notextile>admin"), which
 * shows as typed.  Line breaks are kept ("\r" is dropped).
 * Returns BR_ELIMIT (out unchanged) when out->max would be exceeded.
 */
int br_tpl_textile_escape(struct br_buf *out, const char *s, size_t len);

#endif
