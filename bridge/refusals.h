/*
 * refusals.h - the log lines of refused requests (404, 413, 429, wrong
 * secrets): at most one line per source address and reason per minute.
 *
 * The first refusal of an address and reason is logged at once; the ones
 * within the next minute are only counted, and when the minute is over one
 * line says how many there were, with the latest one's detail:
 *
 *   request from 203.0.113.7 refused: 404 unknown channel "shop2"
 *   request from 203.0.113.7 refused: 404 unknown channel "shop9" (49 more since 12:00:01)
 *
 * The table has a fixed size (an attacker can vary addresses): when it is
 * full, the entry that logged longest ago makes room, and its count, if
 * any, is logged then.  A timer on the loop writes the counts when their
 * minute ends; br_refusals_close writes the ones still open.  Loop thread
 * only.
 */
#ifndef BR_REFUSALS_H
#define BR_REFUSALS_H

#include <stdint.h>
#include <uv.h>

struct br_refusals;

/* loop may be NULL (tests): counts are then written only by br_refusals_flush and close. */
struct br_refusals *br_refusals_new(uv_loop_t *loop);
/*
 * A request from addr was refused with status for reason (a constant
 * text, part of the key with addr and status).  detail is untrusted (a
 * channel name from the URL...): it is escaped here; NULL for none.
 */
void br_refusals_note(struct br_refusals *r, const char *addr, int status, const char *reason, const char *detail,
                      int64_t now_ms);
/* Writes the counts whose minute ended by now_ms. */
void br_refusals_flush(struct br_refusals *r, int64_t now_ms);
/* Writes every count still open and closes the timer (the loop must run once more); then free. */
void br_refusals_close(struct br_refusals *r);
void br_refusals_free(struct br_refusals *r);

#endif
