/*
 * install_dir.c - the default templates' directory, relative to the
 * running binary (install_dir.h).  CMake says where: the way from the
 * binary's directory to the templates as installed (BR_TEMPLATES_FROM_BIN,
 * "../share/chatra-bridge/templates"), the same as a full path for when
 * the binary's own path cannot be read (BR_TEMPLATES_INSTALLED), and the
 * build and source trees (BR_BUILD_DIR, BR_SOURCE_TEMPLATES).
 */
#include "install_dir.h"

#include "br.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool
is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whether path (resolved) lies inside dir: dir itself or below it. */
static bool
inside(const char *path, const char *dir)
{
    char real[PATH_MAX];
    size_t n;

    if (realpath(dir, real) == NULL)
        return false;
    n = strlen(real);
    return strncmp(path, real, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

char *
br_install_templates_dir(void)
{
    const char *env = getenv("BR_TEMPLATES_DIR");
    char exe[PATH_MAX], real[PATH_MAX];
    char *slash, *beside;

    if (env != NULL && *env != '\0')
        return br_strdup(env);
    /* The binary itself, symbolic links resolved: a link in /usr/local/bin still finds its tree. */
    if (realpath("/proc/self/exe", exe) == NULL || (slash = strrchr(exe, '/')) == NULL)
        return br_strdup(BR_TEMPLATES_INSTALLED);
    *slash = '\0';
    beside = br_asprintf("%s/%s", *exe ? exe : "", BR_TEMPLATES_FROM_BIN);
    if (is_dir(beside)) {
        /* Shown in messages: without the "bin/.." of the way there. */
        if (realpath(beside, real) != NULL) {
            free(beside);
            return br_strdup(real);
        }
        return beside;
    }
    if (inside(exe, BR_BUILD_DIR)) {
        free(beside);
        return br_strdup(BR_SOURCE_TEMPLATES);
    }
    /* Missing: the config loader names this path in its problem. */
    return beside;
}
