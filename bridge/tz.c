#include "tz.h"

#include "br.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * glibc loads a zone when TZ changes and tzset() runs; the zone last
 * loaded is remembered here, so a daemon that shows every time in one
 * zone loads its file once.
 */
static char current[128];

static bool
is_utc(const char *name)
{
    return name == NULL || *name == '\0' || strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0;
}

static const char *
zoneinfo_dir(void)
{
    const char *d = getenv("TZDIR");
    return d && *d ? d : "/usr/share/zoneinfo";
}

bool
br_tz_known(const char *name)
{
    char path[512], magic[4];
    FILE *f;
    bool ok;

    if (is_utc(name))
        return true;
    /* A zone name is a relative path of letters, digits and _ + - /, never "..". */
    if (name[0] == '/' || strstr(name, "..") || strlen(name) >= sizeof(current) ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-/") != strlen(name))
        return false;
    snprintf(path, sizeof(path), "%s/%s", zoneinfo_dir(), name);
    if ((f = fopen(path, "rb")) == NULL)
        return false;
    /* Every compiled zone file starts with "TZif"; a directory or a stray file does not. */
    ok = fread(magic, 1, sizeof(magic), f) == sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
    fclose(f);
    return ok;
}

void
br_tz_local(const char *name, int64_t t_s, struct tm *out)
{
    time_t t = (time_t)t_s;

    if (is_utc(name)) {
        gmtime_r(&t, out);
        return;
    }
    if (strcmp(current, name) != 0) {
        snprintf(current, sizeof(current), "%s", name);
        setenv("TZ", current, 1);
        tzset();
    }
    localtime_r(&t, out);
}

long
br_tz_offset(const char *name, int64_t t_s)
{
    struct tm tm;
    br_tz_local(name, t_s, &tm);
    return tm.tm_gmtoff;
}

size_t
br_tz_format(const char *name, int64_t ms, const char *fmt, char *out, size_t n)
{
    struct tm tm;

    if (n == 0)
        return 0;
    out[0] = '\0';
    if (ms <= 0)
        return 0;
    br_tz_local(name, ms / 1000, &tm);
    return strftime(out, n, fmt, &tm);
}
