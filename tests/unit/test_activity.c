/*
 * test_activity.c - the conversations' timelines in the store (activity.h,
 * store_activity.c) and what the admin page reads beside them
 * (store_admin.c): rows written and read back joined with what the store
 * knows now, the jobs' ends written by the store itself, the discard of a
 * dead letter, the list and its search, retention, and the change bus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bridge/activity.h"
#include "bridge/notify.h"
#include "bridge/store.h"
#include "support/temp_store.h"

struct fx {
    char dir[64];
    char *path;
    struct br_store *s;
    int64_t conv;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->path = temp_store_open(f->dir, "activity", &f->s);
    assert_int_equal(br_store_conv_create(f->s, "shop", "clientLaptop00001", &f->conv), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    temp_store_close(f->dir, f->path, f->s);
    free(f);
    return 0;
}

static json_t *
timeline(struct fx *f)
{
    json_t *tl = NULL;
    bool truncated = true;

    assert_int_equal(br_store_timeline(f->s, f->conv, 100, &tl, &truncated), 0);
    assert_false(truncated);
    return tl;
}

static const char *
str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t
num(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* Every listener call, as "what:id". */
static char heard[512];

static void
listen_cb(void *arg, enum br_notify_what what, int64_t id)
{
    (void)arg;
    snprintf(heard + strlen(heard), sizeof(heard) - strlen(heard), "%d:%lld ", (int)what, (long long)id);
}

static void
test_messages_and_their_fate(void **state)
{
    struct fx *f = *state;
    int64_t m1, m2, m3;
    bool is_new;
    json_t *tl, *item;

    assert_int_equal(br_store_task_create(f->s, f->conv, 1), 0);
    assert_int_equal(br_store_task_set(f->s, f->conv, 1, "1042", BR_TASK_OPEN), 0);
    assert_int_equal(br_store_msg_insert(f->s, f->conv, 1, "k1", "client", NULL, "<b>hi</b>", 1, 0, &is_new, &m1), 0);
    assert_int_equal(br_store_msg_insert(f->s, f->conv, 1, "k2", "client", NULL, "two", 2, 0, &is_new, &m2), 0);
    assert_int_equal(br_store_msg_insert(f->s, f->conv, 1, "k3", "agent", "A1", "three", 3, 0, &is_new, &m3), 0);
    heard[0] = '\0';
    assert_int_equal(br_notify_subscribe(listen_cb, f), 0);
    assert_int_equal(br_activity_add(f->s, f->conv, "message", json_pack("{s:I}", "message_id", (json_int_t)m1)), 0);
    br_notify_unsubscribe(listen_cb, f);
    assert_string_equal(heard, "0:1 ");
    assert_int_equal(br_activity_add(f->s, f->conv, "message", json_pack("{s:I}", "message_id", (json_int_t)m2)), 0);
    assert_int_equal(br_activity_add(f->s, f->conv, "message", json_pack("{s:I}", "message_id", (json_int_t)m3)), 0);
    /* m1 in the description, m2 and m3 pending; then m2 and m3 in one comment. */
    assert_int_equal(br_store_msg_set_state(f->s, m1, BR_MSG_MIRRORED, NULL), 0);
    tl = timeline(f);
    assert_int_equal(json_array_size(tl), 3);
    item = json_array_get(tl, 0);
    assert_string_equal(str(item, "type"), "message");
    assert_string_equal(str(item, "author"), "visitor");
    assert_string_equal(str(item, "text"), "<b>hi</b>");
    assert_string_equal(str(item, "state"), "in_description");
    assert_string_equal(str(item, "task"), "1042");
    assert_true(json_is_null(json_object_get(item, "comment_id")));
    assert_string_equal(str(json_array_get(tl, 1), "state"), "pending");
    assert_string_equal(str(json_array_get(tl, 2), "author"), "agent");
    json_decref(tl);
    assert_int_equal(br_store_msg_set_state(f->s, m2, BR_MSG_MIRRORED, "c9"), 0);
    assert_int_equal(br_store_msg_set_state(f->s, m3, BR_MSG_MIRRORED, "c9"), 0);
    tl = timeline(f);
    item = json_array_get(tl, 1);
    assert_string_equal(str(item, "state"), "in_comment");
    assert_string_equal(str(item, "comment_id"), "c9");
    assert_int_equal(json_array_size(json_object_get(item, "coalesced_with")), 1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(item, "coalesced_with"), 0)), m3);
    json_decref(tl);
}

static void
test_jobs_end_into_the_timeline(void **state)
{
    struct fx *f = *state;
    int64_t job, other, conv = 0;
    json_t *tl, *item;
    char *dead;

    assert_int_equal(br_store_job_add(f->s, "t:1", "tracker", "comment", f->conv, "{}", &job), 0);
    assert_int_equal(br_store_job_add(f->s, "t:1", "tracker", "note", f->conv, "{}", &other), 0);
    /* Waiting: shown once, as it is now. */
    tl = timeline(f);
    assert_int_equal(json_array_size(tl), 2);
    item = json_array_get(tl, 0);
    assert_string_equal(str(item, "type"), "job");
    assert_string_equal(str(item, "state"), "queued");
    assert_string_equal(str(item, "kind"), "comment");
    assert_string_equal(str(item, "upstream"), "tracker");
    json_decref(tl);
    /* Dead, put back, dead again, discarded: each a row, as it was then. */
    assert_int_equal(br_store_job_start(f->s, job), 0);
    assert_int_equal(br_store_job_finish(f->s, job, BR_JOB_DEAD, 5, 0, false, "HTTP 400", "POST /x {}", "400 no"), 0);
    assert_int_equal(br_store_job_start(f->s, other), 0);
    assert_int_equal(br_store_job_finish(f->s, other, BR_JOB_DONE, 1, 0, false, NULL, NULL, NULL), 0);
    assert_int_equal(br_store_dead_letters(f->s, &dead), 0);
    assert_non_null(strstr(dead, "\"kind\": \"comment\""));
    free(dead);
    {
        int64_t n = 0;
        assert_int_equal(br_store_dead_retry(f->s, job, &n), 0);
        assert_int_equal(n, 1);
    }
    assert_int_equal(br_store_job_start(f->s, job), 0);
    assert_int_equal(br_store_job_finish(f->s, job, BR_JOB_DEAD, 1, 0, false, "HTTP 403", NULL, NULL), 0);
    assert_int_equal(br_store_dead_discard(f->s, job, &conv), 0);
    assert_int_equal(conv, f->conv);
    assert_int_equal(br_store_dead_discard(f->s, job, &conv), BR_ENOTFOUND);
    assert_int_equal(br_store_dead_discard(f->s, other, &conv), BR_ENOTFOUND);
    /* Discarded: never ready, not dead, not a dead letter, kept. */
    assert_int_equal(br_store_job_count(f->s, BR_JOB_DEAD), 0);
    assert_int_equal(br_store_job_count(f->s, BR_JOB_DISCARDED), 1);
    assert_int_equal(br_store_dead_letters(f->s, &dead), 0);
    assert_string_equal(dead, "[]");
    free(dead);
    {
        struct br_job ready[4];
        size_t n = 9;
        assert_int_equal(br_store_job_ready(f->s, "tracker", br_now_ms() + 1000, ready, 4, &n), 0);
        assert_int_equal(n, 0);
    }

    tl = timeline(f);
    assert_int_equal(json_array_size(tl), 5);
    {
        const char *want[][2] = {{"dead", "HTTP 400"}, {"done", NULL}, {"queued", "HTTP 400"}, {"dead", "HTTP 403"},
                                 {"discarded", "HTTP 403"}};
        size_t i;
        json_array_foreach(tl, i, item) {
            assert_string_equal(str(item, "type"), "job");
            assert_string_equal(str(item, "state"), want[i][0]);
            if (want[i][1])
                assert_string_equal(str(item, "error"), want[i][1]);
            else
                assert_true(json_is_null(json_object_get(item, "error")));
        }
    }
    item = json_array_get(tl, 0);
    assert_int_equal(num(item, "job_id"), job);
    assert_int_equal(num(item, "attempts"), 5);
    /* The request and answer are the job's last ones. */
    assert_string_equal(str(item, "request"), "POST /x {}");
    assert_string_equal(str(item, "response"), "400 no");
    json_decref(tl);
}

static void
test_rows_keep_their_data_and_retention_forgets_them(void **state)
{
    struct fx *f = *state;
    int64_t merge = 0, n = 0;
    json_t *tl, *item;

    assert_int_equal(br_activity_add(f->s, f->conv, "webhook",
                                     json_pack("{s:s, s:i}", "event", "chatStarted", "messages", 2)), 0);
    assert_int_equal(br_store_record_join(f->s, f->conv, "shop", "clientPhone000001", "m@x.org", false, &merge), 0);
    assert_int_equal(br_activity_add(f->s, f->conv, "merge", json_pack("{s:I}", "merge_id", (json_int_t)merge)), 0);
    tl = timeline(f);
    item = json_array_get(tl, 0);
    assert_string_equal(str(item, "event"), "chatStarted");
    assert_int_equal(num(item, "messages"), 2);
    assert_true(num(item, "at") > 0);
    assert_true(json_is_null(json_object_get(json_array_get(tl, 1), "undone_at")));
    json_decref(tl);
    assert_int_equal(BR_STORE_TX(f->s, br_store_unmerge(f->s, merge, &n)), 0);
    tl = timeline(f);
    assert_true(num(json_array_get(tl, 1), "undone_at") > 0);
    json_decref(tl);

    /* Only the rows older than the cut go. */
    assert_int_equal(br_store_forget_before(f->s, 1, &n), 0);
    tl = timeline(f);
    assert_int_equal(json_array_size(tl), 2);
    json_decref(tl);
    assert_int_equal(br_store_forget_before(f->s, br_now_ms() + 1, &n), 0);
    tl = timeline(f);
    assert_int_equal(json_array_size(tl), 0);
    json_decref(tl);
}

static void
test_the_latest_rows_when_there_are_many(void **state)
{
    struct fx *f = *state;
    json_t *tl = NULL;
    bool truncated = false;

    for (int i = 0; i < 5; i++)
        assert_int_equal(br_activity_add(f->s, f->conv, "webhook", json_pack("{s:i}", "n", i)), 0);
    assert_int_equal(br_store_timeline(f->s, f->conv, 3, &tl, &truncated), 0);
    assert_true(truncated);
    assert_int_equal(json_array_size(tl), 3);
    assert_int_equal(num(json_array_get(tl, 0), "n"), 2);
    assert_int_equal(num(json_array_get(tl, 2), "n"), 4);
    json_decref(tl);
}

static void
test_list_and_search(void **state)
{
    struct fx *f = *state;
    int64_t c2, c3;
    json_t *list, *one;
    bool more;

    assert_int_equal(br_store_conv_update_visitor(f->s, f->conv, NULL, NULL, "Мария Лопес", "maria@example.org",
                                                  NULL, NULL), 0);
    assert_int_equal(br_store_person_add_email(f->s, 1, "maria@example.org", false), 0);
    assert_int_equal(br_store_conv_create(f->s, "shop", "clientSecond00002", &c2), 0);
    assert_int_equal(br_store_task_create(f->s, c2, 1), 0);
    assert_int_equal(br_store_task_set(f->s, c2, 1, "2077", BR_TASK_CLOSED), 0);
    assert_int_equal(br_store_conv_set_gen(f->s, c2, 1), 0);
    assert_int_equal(br_store_conv_create(f->s, "shop", "clientThird000003", &c3), 0);
    /* The latest activity first: a row for the first one, a millisecond later, makes it the latest. */
    for (int64_t t = br_now_ms(); br_now_ms() <= t;)
        ;
    assert_int_equal(br_activity_add(f->s, f->conv, "webhook", json_object()), 0);

    assert_int_equal(br_store_conversations(f->s, NULL, 0, 2, &list, &more), 0);
    assert_true(more);
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(num(json_array_get(list, 0), "id"), f->conv);
    one = json_array_get(list, 0);
    assert_string_equal(str(one, "name"), "Мария Лопес");
    assert_string_equal(str(one, "state"), "active");
    assert_true(json_is_null(json_object_get(one, "task")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(one, "client_ids"), 0)),
                        "clie...(17 chars)");
    json_decref(list);
    assert_int_equal(br_store_conversations(f->s, NULL, c3, 10, &list, &more), 0);
    assert_false(more);
    assert_int_equal(json_array_size(list), 1);
    assert_int_equal(num(json_array_get(list, 0), "id"), c2);
    assert_string_equal(str(json_array_get(list, 0), "state"), "closed");
    json_decref(list);
    assert_int_equal(br_store_conversations(f->s, NULL, 99, 10, &list, &more), BR_EINVAL);

    {
        const struct {
            const char *q;
            int64_t id;
        } cases[] = {{"мария", f->conv}, {"ЛОПЕС", f->conv}, {"MARIA@EXAMPLE", f->conv},
                     {"second000", c2}, {"2077", c2}, {"#2077", c2}, {"nobody", 0}};
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            assert_int_equal(br_store_conversations(f->s, cases[i].q, 0, 10, &list, &more), 0);
            if (cases[i].id == 0) {
                assert_int_equal(json_array_size(list), 0);
            } else {
                assert_int_equal(json_array_size(list), 1);
                assert_int_equal(num(json_array_get(list, 0), "id"), cases[i].id);
            }
            json_decref(list);
        }
    }
    assert_int_equal(br_store_conversation(f->s, c2, &one), 0);
    assert_string_equal(str(json_object_get(one, "task"), "id"), "2077");
    assert_int_equal(num(one, "tasks"), 1);
    json_decref(one);
    assert_int_equal(br_store_conversation(f->s, 99, &one), BR_ENOTFOUND);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_messages_and_their_fate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_end_into_the_timeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rows_keep_their_data_and_retention_forgets_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_latest_rows_when_there_are_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_search, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
