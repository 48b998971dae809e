/*
 * config_templates.c - the config's templates: the task title and
 * description (checked against the variables the README lists, with
 * notices for what a description leaves out) and the bridge's own words
 * (texts.h), from the config or the shipped defaults (templates_dir).
 */
#include "config_load.h"
#include "install_dir.h"
#include "tracker.h"

#include "log.h"
#include "templates/tpl.h"
#include "texts.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char template_schema[] =
    "{"
    "\"visitor\":{\"name\":\"\",\"email\":\"\",\"phone\":\"\",\"displayed_name\":\"\","
    "\"notes\":\"\",\"city\":\"\",\"country\":\"\",\"pages\":[{\"url\":\"\",\"title\":\"\"}],"
    "\"source\":\"\",\"device\":\"\",\"browser\":\"\",\"os\":\"\",\"ip\":\"\",\"info\":\"*\"},"
    "\"chatra\":\"*\","
    "\"chat\":{\"id\":\"\",\"started_at\":\"\",\"messages\":[{\"author\":\"\",\"text\":\"\","
    "\"text_html\":\"\",\"time\":\"\",\"date\":\"\",\"clock\":\"\",\"type\":\"\",\"is_visitor\":\"\","
    "\"is_agent\":\"\",\"agent\":{\"id\":\"\",\"name\":\"\"}}]},"
    "\"channel\":{\"name\":\"\"},"
    "\"contact\":{\"id\":\"\"},"
    "\"employee\":{\"name\":\"\",\"email\":\"\"},"
    "\"previous_task\":{\"id\":\"\",\"messages\":[{\"author\":\"\",\"text\":\"\",\"text_html\":\"\",\"time\":\"\","
    "\"date\":\"\",\"clock\":\"\",\"type\":\"\",\"is_visitor\":\"\",\"is_agent\":\"\","
    "\"agent\":{\"id\":\"\",\"name\":\"\"}}]}"
    "}";

const char *
br_config_template_schema(void)
{
    return template_schema;
}

struct check_ctx {
    struct br_conf_loader *L;
    const char *where;
};

static void
on_unknown_var(void *arg, const char *var, int line, int col)
{
    struct check_ctx *c = arg;
    br_diag_add(c->L->diag, "%s:%d:%d: unknown template variable \"%s\"", c->where, line, col, var);
}

/*
 * A template comes from an inline field (key) or a file (key_file), or
 * else from the default text shipped in templates/.
 */
struct br_tpl *
br_conf_template(struct br_conf_loader *L, json_t *obj, const char *base, const char *key,
              const char *default_file, const char *schema_text)
{
    char *file_key = br_asprintf("%s_file", key);
    char *path = br_conf_path(base, key);
    char *fpath = br_conf_path(base, file_key);
    json_t *inl = br_conf_get(obj, key);
    json_t *fil = br_conf_get(obj, file_key);
    char *src = NULL;
    char *where = NULL;
    struct br_tpl *t = NULL;
    int line_off = 0;

    if (inl && fil) {
        PROBLEM(L, path, "set either %s or %s, not both", key, file_key);
    } else if (inl) {
        if (!json_is_string(inl))
            PROBLEM(L, path, "must be a string");
        else if ((src = br_conf_string(L, inl, path, false)) != NULL)
            /* Inline templates have no file position of their own: name the key path. */
            where = br_asprintf("%s: %s", L->file, path);
    } else {
        char *file = NULL;
        if (fil) {
            char *name = br_conf_string(L, fil, fpath, false);
            if (!json_is_string(fil))
                PROBLEM(L, fpath, "must be a string");
            else if (name)
                file = br_conf_relative(L, name);
            free(name);
        } else if (default_file) {
            file = br_strdup(default_file);
        }
        if (file) {
            int err;
            src = br_conf_read_file(file, 256 * 1024, &err);
            if (src == NULL)
                PROBLEM(L, fil ? fpath : path, "cannot read template %s: %s", file,
                        err == EFBIG ? "larger than 256 KiB" : strerror(err));
            else
                where = br_strdup(file);
            free(file);
        }
    }
    (void)line_off;
    if (src) {
        struct br_tpl_error te;
        if (br_tpl_compile(&t, src, strlen(src), &te) != 0) {
            br_diag_add(L->diag, "%s:%d:%d: %s", where, te.line, te.col, te.msg);
            t = NULL;
        } else {
            json_error_t je;
            json_t *schema = json_loads(schema_text ? schema_text : template_schema, 0, &je);
            struct check_ctx cc = {L, where};
            br_tpl_check(t, schema, on_unknown_var, &cc);
            json_decref(schema);
        }
    }
    free(src);
    free(where);
    free(file_key);
    free(path);
    free(fpath);
    return t;
}

/*
 * templates_dir: the directory of the shipped defaults.  Checked once here,
 * so that a missing install is one problem rather than one per template.
 */
void
br_conf_load_templates_dir(struct br_conf_loader *L, json_t *root)
{
    struct br_config *c = L->cfg;
    char *dir = br_conf_str(L, root, "", "templates_dir", NULL, false, false);
    struct stat st;
    bool configured = dir != NULL;
    int err = 0;

    if (dir == NULL) {
        dir = br_install_templates_dir();
    } else if (*dir == '\0') {
        PROBLEM(L, "templates_dir", "must not be empty");
        free(dir);
        return;
    } else {
        char *rel = br_conf_relative(L, dir);
        free(dir);
        dir = rel;
    }
    if (stat(dir, &st) != 0)
        err = errno;
    else if (!S_ISDIR(st.st_mode))
        err = ENOTDIR;
    if (err) {
        if (configured)
            PROBLEM(L, "templates_dir", "%s: %s", dir, strerror(err));
        else
            br_diag_add(L->diag, "%s: the default templates are not in %s (%s): set templates_dir, or "
                        "BR_TEMPLATES_DIR in the environment", L->file, dir, strerror(err));
        free(dir);
        return;
    }
    c->templates_dir = dir;
}

/* The shipped default of a template, in the config's language: <templates_dir>/<language>/<name>. */
char *
br_conf_default_template(const struct br_config *c, const char *name)
{
    if (c->templates_dir == NULL)
        return NULL;
    return br_asprintf("%s/%s/%s", c->templates_dir,
                       c->language && br_texts_language_known(c->language) ? c->language : "en", name);
}

/*
 * A description that does not show the chat messages is fine (each
 * message then goes as a comment), but the admin should know it costs a
 * request per burst; the same for the link to the previous task.
 */
void
br_conf_note_description(struct br_conf_loader *L, const char *base, const struct br_tpl *t)
{
    json_error_t je;
    json_t *schema;

    if (t == NULL)
        return;
    schema = json_loads(template_schema, 0, &je);
    if (!br_tpl_reads(t, schema, "chat.messages[].text") && !br_tpl_reads(t, schema, "chat.messages[].text_html"))
        br_diag_add(&L->cfg->notices,
                    "%s: %s.description does not show the chat messages (chat.messages: text or text_html): "
                    "each message is posted as a comment instead",
                    L->file, base);
    if (!br_tpl_reads(t, schema, "previous_task.id"))
        br_diag_add(&L->cfg->notices,
                    "%s: %s.description does not show previous_task.id: a returning visitor's new task gets a "
                    "comment that links the previous one",
                    L->file, base);
    json_decref(schema);
}

/*
 * texts: the bridge's own words (texts.h), each from "texts.<key>" or
 * "texts.<key>_file", else templates/<language>/<key>.<html|textile|txt>.
 */
void
br_conf_load_texts(struct br_conf_loader *L, json_t *root)
{
    struct br_config *c = L->cfg;
    json_t *texts = br_conf_obj(L, root, "", "texts", false);

    if (texts) {
        const char *key;
        json_t *v;
        json_object_foreach(texts, key, v) {
            bool ok = false;
            for (int t = 0; t < BR_TEXT_COUNT; t++) {
                const char *k = br_text_info(t)->key;
                size_t n = strlen(k);
                if (strcmp(key, k) == 0 || (strncmp(key, k, n) == 0 && strcmp(key + n, "_file") == 0))
                    ok = true;
            }
            if (!ok) {
                char *p = br_conf_path("texts", key);
                PROBLEM(L, p, "unknown text (see templates/en/ for their names)");
                free(p);
            }
        }
    }
    for (int t = 0; t < BR_TEXT_COUNT; t++) {
        const struct br_text_info *info = br_text_info(t);
        char *name = br_asprintf("%s.%s", info->key, !info->rich ? "txt" : c->tracker ? c->tracker->text_ext : "html");
        char *file = br_conf_default_template(c, name);
        c->texts[t] = br_conf_template(L, texts, "texts", info->key, file, info->schema);
        free(name);
        free(file);
    }
}

