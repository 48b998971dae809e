/*
 * config_load.h - the config loader's own tools, shared by its rooms
 * (internal to bridge/): config_file.c (the file, the top level, the
 * tracker section), config_values.c (values: "env:" and "file:"
 * references, typed getters that report a problem and go on),
 * config_templates.c (templates and the bridge's own texts) and
 * config_people.c (employees and channels).  A tracker driver reads its
 * own keys of the tracker section with them (struct br_tracker_kind).
 *
 * Validation walks the JSON once.  Every getter records a problem in the
 * diag list and returns a safe default, so that one run reports all the
 * problems an admin has to fix.  A "key path" is built as the walk goes
 * ("channels[0].task.title").
 */
#ifndef BR_CONFIG_LOAD_H
#define BR_CONFIG_LOAD_H

#include "config.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

struct br_tpl;

struct br_conf_loader {
    struct br_config *cfg;
    struct br_diag *diag;
    const char *file;
};

#define PROBLEM(L, path, ...) br_conf_problem((L), (path), __VA_ARGS__)

/* "file: path: message", one line in the diag list. */
void br_conf_problem(struct br_conf_loader *L, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "a.b" (or "b" when a is empty): free it. */
char *br_conf_path(const char *a, const char *b);
/* A file's bytes (at most max) as a string; NULL with *err an errno. */
char *br_conf_read_file(const char *path, size_t max, int *err);
/* A path relative to the config file's directory. */
char *br_conf_relative(struct br_conf_loader *L, const char *p);

/*
 * A string value read where br_conf_str is not (a list's items, a
 * template): "env:" and "file:" resolved, NULL with a problem at path when
 * that fails; NULL without one when v is not a string.
 */
char *br_conf_string(struct br_conf_loader *L, json_t *v, const char *path, bool secret);
/* The value of key in obj, or NULL (also when obj is not an object). */
json_t *br_conf_get(json_t *obj, const char *key);
/*
 * Typed getters: the value (env:/file: references resolved for strings;
 * a secret is registered with the logger), or def with a problem reported
 * when it is missing though required, of the wrong type or out of range.
 */
char *br_conf_str(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, const char *def,
                  bool required, bool secret);
long br_conf_int(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, long def, long min,
                 long max, bool required);
double br_conf_num(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, double def,
                   double min, double max);
bool br_conf_bool(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, bool def);
/* An IANA time zone name this machine's tzdata knows. */
char *br_conf_zone(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, const char *def);
/* An object, or NULL (a problem when it is required, or not an object). */
json_t *br_conf_obj(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, bool required);
/* Reports keys that known does not list: typos should not pass silently. */
void br_conf_keys(struct br_conf_loader *L, json_t *obj, const char *base, const char *const *known);
/* Reports each of keys that obj holds, with why (another tracker kind's settings). */
void br_conf_refuse(struct br_conf_loader *L, json_t *obj, const char *base, const char *const *keys,
                    const char *why);

/* Value shapes: lower case, an e-mail in its normal form (taken), no trailing slash (in place). */
void br_conf_lower(char *s);
char *br_conf_email(char *s);
char *br_conf_strip_slash(char *s);
void br_conf_check_url(struct br_conf_loader *L, const char *base, const char *key, const char *url);
/* A webhook secret: long enough, and only characters a URL keeps as they are. */
void br_conf_check_secret(struct br_conf_loader *L, const char *base, const char *key, const char *s);

/*
 * A template from the inline field key or the file key_file (relative to
 * the config), else default_file; compiled and checked against the schema
 * (NULL: the task texts' schema).  NULL when there is none or it has a
 * problem (reported with file:line:col).
 */
struct br_tpl *br_conf_template(struct br_conf_loader *L, json_t *obj, const char *base, const char *key,
                                const char *default_file, const char *schema_text);
/*
 * Where the shipped defaults are: templates_dir (relative to the config),
 * else BR_TEMPLATES_DIR or the install's (install_dir.h).  A problem when
 * that is not a directory.
 */
void br_conf_load_templates_dir(struct br_conf_loader *L, json_t *root);
/* The shipped default of a template, in the config's language: <templates_dir>/<language>/<name>; NULL
 * when the directory is missing (reported once). */
char *br_conf_default_template(const struct br_config *c, const char *name);
/* Notices for a task description that leaves out the messages or the previous task. */
void br_conf_note_description(struct br_conf_loader *L, const char *base, const struct br_tpl *t);
/* The bridge's own words: texts.<key> or texts.<key>_file, else the language's default. */
void br_conf_load_texts(struct br_conf_loader *L, json_t *root);

void br_conf_load_public_domains(struct br_conf_loader *L, json_t *arr);
/* The enrich section (config_enrich.c): the CRM whose card goes into the task, off without it. */
void br_conf_load_enrich(struct br_conf_loader *L, json_t *root);
void br_conf_load_employees(struct br_conf_loader *L, json_t *arr);
void br_conf_load_channel(struct br_conf_loader *L, json_t *o, const char *base, struct br_channel *ch);

#endif
