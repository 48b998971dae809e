/*
 * conversation.h - the conversation model: what an inbox event does to the
 * bridge's record of a visitor, and every change of a task's or message's
 * state.
 *
 * A Chatra event finds or makes the conversation of its device (one per
 * person and channel: a device whose e-mail belongs to a known person
 * joins, a later e-mail joins two threads), stores its messages once each,
 * opens task generations, and queues the jobs that bring all of it to the
 * tracker (contact, task, comments, notes, close).  A tracker event queues
 * the read of the task's new comments.  The job kinds (jobs/) change task
 * and message states only through the functions below.  Loop thread only.
 */
#ifndef BR_CONVERSATION_H
#define BR_CONVERSATION_H

#include "store.h"
#include "texts.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct br_env;

/* Applies one inbox row, inside the caller's transaction, and marks it done. */
int br_conversation_apply(struct br_env *env, const struct br_inbox_row *row);

/*
 * A comment by the bridge itself on the task of (conv, gen): the text is
 * rendered when the job runs (task numbers are known then) from text kind
 * and ctx (taken), to which the conversation's context is added; ref_conv's
 * task becomes task.id.  gen 0: the current generation, and the note is
 * dropped when a new generation opened before it ran (or its task ended);
 * BR_GEN_CURRENT: the task current when it runs, wherever the chat has
 * moved by then.  Caller's transaction.
 */
#define BR_GEN_CURRENT (-1)
int br_conversation_note(struct br_env *env, int64_t conv_id, int gen, enum br_text text, json_t *ctx,
                         int64_t ref_conv);

/* Pending or open: the task takes the conversation's messages. */
bool br_task_is_active(const struct br_task *t);

/*
 * State changes, each in a transaction of its own unless said otherwise:
 *  - reopen: the tracker says old_gen's task is completed or gone: the
 *    next generation opens with the messages still waiting (c->gen moves);
 *  - gone_before_the_visitor_wrote: the tracker completed (or deleted)
 *    the task, and only agents have written since (greetings in a new
 *    chat): the task is closed, and their messages wait for the task the
 *    visitor's first message opens, as greetings after a leave do; false
 *    (nothing changed) when a visitor's message waits;
 *  - task_slot: the row of generation gen's task (made inside a job);
 *  - task_made: the task exists as task_id; the messages its description
 *    carries (ids in carried) are mirrored, and when prev_task is set a
 *    note links that previous task; closed: it was made completed (the
 *    visitor had left), recorded closed as task_closed would;
 *  - task_joined: the chat joins a task the bridge did not make;
 *  - task_closed: the task is completed (or the conversation let go of it);
 *  - msg_to_gen: a message goes to another generation's task;
 *  - msgs_mirrored: msg_id (0: none) and the ids in more are in comment
 *    comment_id (caller's transaction).
 */
int br_conversation_reopen(struct br_env *env, struct br_conv *c, int old_gen);
int br_conversation_gone_before_the_visitor_wrote(struct br_env *env, int64_t conv_id, int gen, bool *held);
int br_conversation_task_slot(struct br_env *env, int64_t conv_id, int gen);
int br_conversation_task_made(struct br_env *env, int64_t conv_id, int gen, const char *task_id, json_t *carried,
                              const char *prev_task, bool closed);
int br_conversation_task_joined(struct br_env *env, int64_t conv_id, int gen, const char *task_id);
int br_conversation_task_closed(struct br_env *env, int64_t conv_id, int gen);
int br_conversation_msg_to_gen(struct br_env *env, int64_t msg_id, int gen);
int br_conversation_msgs_mirrored(struct br_env *env, int64_t msg_id, json_t *more, const char *comment_id);

#endif
