/*
 * unrecorded.h - job outcomes the store refused, kept until it takes
 * writes again.
 *
 * A job marks itself in flight in the store before its request.  When the
 * store then refuses the job's outcome (a full disk, an I/O error), it
 * still shows the job in flight, and the job's lane waits behind it.  The
 * engine keeps such an outcome here; once the store takes writes again,
 * br_unrecorded_settle writes what was kept, and puts back in the queue
 * every other job the store shows in flight that is not running (its
 * outcome is unknown: with the recover mark it looks in the tracker before
 * it writes again, as after a crash).  The store stays the truth: what is
 * kept here only spares a lookup, or a second Chatra message.
 *
 * Owned by the engine; loop thread only.
 */
#ifndef BR_UNRECORDED_H
#define BR_UNRECORDED_H

#include "br.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct br_store;
struct br_unrecorded;

struct br_unrecorded *br_unrecorded_new(void);
void br_unrecorded_free(struct br_unrecorded *u);
/*
 * Keeps the outcome of job id that br_store_job_finish could not write
 * (the same arguments, copied).  Past a bound nothing more is kept: such
 * a job is recovered from the store alone.
 */
void br_unrecorded_add(struct br_unrecorded *u, int64_t id, int state, int attempts, int64_t next_at, bool recover,
                       const char *error, const char *request, const char *response);
size_t br_unrecorded_count(const struct br_unrecorded *u);
/*
 * In one transaction, with a write that always reaches the disk: the kept
 * outcomes, then every job in flight in the store but not in running[]
 * back to the queue with the recover mark.  0 when it went through (the
 * list is empty then; *written and *requeued say how many jobs each), an
 * error when the store still refuses (nothing changed).
 */
int br_unrecorded_settle(struct br_unrecorded *u, struct br_store *s, const int64_t *running, size_t n_running,
                         int64_t *written, int64_t *requeued);

#endif
