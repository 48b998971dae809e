/*
 * tz.h - time zones by IANA name ("Europe/Moscow"), from the machine's
 * tzdata (the C library reads the zone files; no table of our own).
 *
 * Used for how times are shown to people (the config's "timezone") and
 * for the zone a tracker reads dates in (Planfix's filters).  "UTC" works
 * without tzdata.  Loop thread only: the C library keeps the loaded zone
 * in process-wide state, which these calls switch as needed.
 */
#ifndef BR_TZ_H
#define BR_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Whether name is "UTC" or a zone this machine's tzdata has (checked on disk). */
bool br_tz_known(const char *name);

/* The broken-down local time of t_s (seconds since the epoch) in zone name; tm_gmtoff is its offset. */
void br_tz_local(const char *name, int64_t t_s, struct tm *out);

/* Seconds east of UTC in zone name at t_s (Moscow: 10800). */
long br_tz_offset(const char *name, int64_t t_s);

/* strftime of ms (milliseconds since the epoch) in zone name; "" for ms <= 0. */
size_t br_tz_format(const char *name, int64_t ms, const char *fmt, char *out, size_t n);

#endif
