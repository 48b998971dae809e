/*
 * planfix_dates.c - Planfix's dates (see planfix.h): the UTC time and the
 * offset of an answer's TimePoint, and the dates of a filter in the zone
 * Planfix reads them in.  Pure functions.
 */
#include "trackers/planfix.h"

#include "br.h"
#include "tz.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* sscanf that must consume all of text; n is the number of conversions before the final %n. */
#define SCAN_ALL(text, n, fmt, ...) \
    (used = -1, sscanf((text), fmt "%n", __VA_ARGS__, &used) == (n) && used > 0 && (text)[used] == '\0')

static bool
valid_tm(int year, int mon, int day, int hour, int min, int sec)
{
    return year >= 1970 && year <= 9999 && mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hour >= 0 &&
           hour <= 23 && min >= 0 && min <= 59 && sec >= 0 && sec <= 59;
}

static int64_t
utc_seconds(int year, int mon, int day, int hour, int min, int sec)
{
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm);
}

int
br_planfix_time_point(json_t *tp, int64_t *utc_ms, long *offset_s)
{
    const char *date = json_string_value(json_object_get(tp, "date"));
    const char *hm = json_string_value(json_object_get(tp, "time"));
    const char *dt = json_string_value(json_object_get(tp, "datetime"));
    int d, mo, y, h, mi, uy, umo, ud, uh, umi, us = 0, used = -1;
    int64_t local, utc;
    long off;

    if (date == NULL || hm == NULL || dt == NULL)
        return BR_EINVAL;
    if (!SCAN_ALL(date, 3, "%2d-%2d-%4d", &d, &mo, &y) || !SCAN_ALL(hm, 2, "%2d:%2d", &h, &mi) ||
        !valid_tm(y, mo, d, h, mi, 0))
        return BR_EINVAL;
    /* "2022-06-12T12:15Z", seconds allowed. */
    if (!SCAN_ALL(dt, 5, "%4d-%2d-%2dT%2d:%2dZ", &uy, &umo, &ud, &uh, &umi) &&
        !SCAN_ALL(dt, 6, "%4d-%2d-%2dT%2d:%2d:%2dZ", &uy, &umo, &ud, &uh, &umi, &us))
        return BR_EINVAL;
    if (!valid_tm(uy, umo, ud, uh, umi, us))
        return BR_EINVAL;
    local = utc_seconds(y, mo, d, h, mi, 0);
    utc = utc_seconds(uy, umo, ud, uh, umi, 0);
    off = (long)(local - utc);
    /* Every zone's offset is a multiple of 15 minutes (Nepal +5:45); anything else is not a zone. */
    if (off < BR_PLANFIX_MIN_OFFSET_S || off > BR_PLANFIX_MAX_OFFSET_S || off % (15 * 60) != 0)
        return BR_EINVAL;
    *utc_ms = (utc + us) * 1000;
    *offset_s = off;
    return 0;
}

static void
format_date(int64_t local_s, char out[32])
{
    time_t t = (time_t)local_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%d-%m-%Y %H:%M", &tm);
}

void
br_planfix_filter_dates(const struct br_planfix_zone *z, int64_t from_ms, int64_t to_ms, char from[32], char to[32])
{
    int64_t from_s = from_ms / 1000, to_s = (to_ms + 999) / 1000;
    long off_from, off_to;

    if (z->name) {
        /*
         * The offset at each end, and the one an hour later (earlier): in
         * the hour a clock is put back, a local time names two instants,
         * and Planfix may take the other one.
         */
        long a = br_tz_offset(z->name, from_s), b = br_tz_offset(z->name, from_s + 3600);
        long c = br_tz_offset(z->name, to_s), d = br_tz_offset(z->name, to_s - 3600);
        off_from = a < b ? a : b;
        off_to = c > d ? c : d;
    } else if (z->learned) {
        /* The clock may have moved for DST since the answer it was learned from. */
        off_from = z->offset_s - 3600;
        off_to = z->offset_s + 3600;
    } else {
        off_from = BR_PLANFIX_MIN_OFFSET_S;
        off_to = BR_PLANFIX_MAX_OFFSET_S;
    }
    format_date(from_s + off_from, from);
    /* Planfix filters by the minute: the last minute counts whole. */
    format_date(to_s + off_to + 59, to);
}

