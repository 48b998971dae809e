/*
 * activity.h - the conversations' timelines: what happened to each one,
 * for the admin page.  One row per event, written inside the transaction
 * of the change it describes (one INSERT), and read back joined with what
 * the rest of the store knows now (store_activity.c).
 *
 * The core writes, where things happen:
 *   webhook  conversation.c: an event applied {"event", "messages", "device"}
 *   message  conversation.c: a message stored {"message_id"}; where it went
 *            (the task's description, a comment, with which others) is
 *            read from the message when the timeline is read
 *   task     conversation.c: {"action": created|joined|closed|reopened, "task", "gen"}
 *   merge    conversation.c: {"merge_id", "reason", "email", "verified", "other_conversation"}
 *   visit    conversation.c: {"device", "note": new_visit|device_joined}
 *   reply    jobs/fetch.c: an employee's reply queued for the chat
 *            {"text", "agent", "device", "comment_id", "job_id"}
 *   job      the store itself (a trigger on jobs, store.c): a job done,
 *            dead, put back or discarded {"job_id", "state", "attempts", "error"}
 * Devices are shown shortened (br_store_client_shown): a bound client id
 * is a secret.  Each row also tells the change bus (notify.h).
 *
 * Retention (store.retention_days) removes rows older than the cut with
 * the texts they quote.  Loop thread only, like the store.
 */
#ifndef BR_ACTIVITY_H
#define BR_ACTIVITY_H

#include "store.h"

#include <jansson.h>
#include <stdint.h>

/* A row for conversation conv_id of type with data (taken), in the caller's transaction. */
int br_activity_add(struct br_store *s, int64_t conv_id, const char *type, json_t *data);

/*
 * The timeline of conversation conv_id, oldest first (a JSON array, new):
 * its rows, each {"at", "type", ...its data and what is known of it now},
 * and its jobs still waiting or running.  At most max rows: the latest;
 * *truncated says whether older ones were left out.
 */
int br_store_timeline(struct br_store *s, int64_t conv_id, size_t max, json_t **out, bool *truncated);

/* Retention: rows older than before_ms go (inside store.c's forget transaction). */
int br_store_activity_forget(struct br_store *s, int64_t before_ms);

#endif
