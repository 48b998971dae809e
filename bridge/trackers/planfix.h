/*
 * planfix.h - the pure parts of the Planfix driver (planfix.c), apart so
 * that unit tests reach them: Planfix's dates.
 *
 * Planfix writes each date of an answer both ways, a TimePoint
 * {"date": "12-06-2022", "time": "15:15", "datetime": "2022-06-12T12:15Z"}:
 * date and time in the API user's time zone, datetime in UTC.  It reads
 * the dates of a filter ("12-06-2022 15:15") in that same zone.  The
 * zone is tracker.timezone when set, else the offset its answers show.
 */
#ifndef BR_PLANFIX_H
#define BR_PLANFIX_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The offsets of the world's time zones: UTC-12:00 to UTC+14:00. */
#define BR_PLANFIX_MIN_OFFSET_S (-12L * 3600)
#define BR_PLANFIX_MAX_OFFSET_S (14L * 3600)

/*
 * The UTC time (ms since the epoch) of a TimePoint and the offset east
 * of UTC its local date and time show.  BR_EINVAL when a part is missing
 * or malformed, or the offset is not one a time zone can have.
 */
int br_planfix_time_point(json_t *tp, int64_t *utc_ms, long *offset_s);

/* What is known of the zone Planfix reads filter dates in. */
struct br_planfix_zone {
    const char *name; /* tracker.timezone (an IANA name); NULL when not set */
    bool learned;     /* without a name: offset_s was learned from Planfix's answers */
    long offset_s;
};

/*
 * The dates ("dd-mm-yyyy HH:MM") of a filter that covers at least the
 * wall-clock window [from_ms, to_ms]: exact with a zone name (DST
 * included), one hour wider on each side with a learned offset (a DST
 * change may have happened since it was learned), and as wide as the
 * world's offsets when nothing is known.
 */
void br_planfix_filter_dates(const struct br_planfix_zone *z, int64_t from_ms, int64_t to_ms, char from[32],
                             char to[32]);

#endif
