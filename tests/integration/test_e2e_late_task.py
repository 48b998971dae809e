"""Issue 15: a task made late carries what already happened.

When the tracker is busy a conversation's first jobs (contact, task) wait; by the time they run
the visitor may have told their e-mail and left.  The contact is then made with the e-mail (no
update after it), and the task is made already completed (no close after it).

The tracker is made busy deterministically: other chats' comments are held by the fake Planfix
(a "hold" fault) while the late chat's webhooks are applied; the bridge runs at most four tracker
jobs at a time, so no job of the late chat starts before the test releases the hold.
"""

import os
import signal
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from admin import AdminCase  # noqa: E402
from e2e import TASK_SOURCE_RE, calls  # noqa: E402

BUSY = "busy-visitor"
# The bridge hands the tracker up to 4 jobs at a time (their requests wait their turn in its
# queue, built when the job starts): holding four keeps every job of the late chat from starting.
BUSY_CHATS = 4
LATE = "late-visitor-0001"
EMAIL = "maria.late@example.org"
TEXTS = ["Hello, is the blue kettle in stock?", "And the delivery time to Madrid?", "Thanks, bye!"]


def num(ref):
    return int(str(ref).split(":")[-1])


class LateCase(AdminCase):
    maxDiff = None

    def busy_tracker(self):
        """BUSY_CHATS other chats, their tasks made, each write a comment: the first to go out is
        held in Planfix, the others wait behind it in the bridge.  Every job the bridge hands the
        tracker at a time then waits, until the test releases the hold."""
        tasks = [self.open_chat("%s-%d" % (BUSY, i), name="Busy Visitor", email="busy%d@example.org" % i)[0]
                 for i in range(BUSY_CHATS)]
        self.wait_idle()
        # Whichever of their comments comes first is held (tasks 100 to 103: one prefix).
        self.assertEqual(tasks, list(range(100, 100 + BUSY_CHATS)))
        self.fakes.faults("planfix", [{"match": "POST /rest/task/10", "action": "hold"}])
        for i in range(BUSY_CHATS):
            self.post(chat_event("chatFragment", "%s-%d" % (BUSY, i), [msg("busy-%d-2" % i, "Still there?")],
                                 name="Busy Visitor", email="busy%d@example.org" % i))
        # One request is held in Planfix, the three others wait behind it in the bridge.
        wait_until(lambda: self.fakes.stats("planfix")["held"] == 1 and self.tracker_requests() == BUSY_CHATS,
                   message=lambda: "the busy chats' comments were not held: %s" % self.health())

    def tracker_requests(self):
        """The tracker's requests under way or waiting their turn in the bridge."""
        [up] = [u for u in self.health()["engine"]["upstreams"] if u["name"] == "tracker"]
        return up["queued"] + up["in_flight"]

    def late_chat(self, leave=True):
        """The late chat's webhooks while the tracker is busy: its first message (no e-mail yet),
        the e-mail with a second message, and (leave) the transcript with a third; all applied."""
        self.post(chat_event("chatStarted", LATE, [msg("late-1", TEXTS[0])], name="Maria Late"))
        self.post(chat_event("chatFragment", LATE, [msg("late-2", TEXTS[1])], name="Maria Late", email=EMAIL))
        if leave:
            self.post(chat_event("chatTranscript", LATE, [msg("late-1", TEXTS[0]), msg("late-2", TEXTS[1]),
                                                          msg("late-3", TEXTS[2])],
                                 name="Maria Late", email=EMAIL))
        wait_until(lambda: self.health()["engine"]["inbox_pending"] == 0, message="the webhooks were not applied")
        self.assertEqual([r["path"] for r in self.pf() if r["fault"] is None and r["time"] > self.held_at()], [],
                         "nothing goes to Planfix while it is busy")

    def held_at(self):
        return max(r["time"] for r in self.pf() if r["fault"] == "hold")

    def late_task(self):
        [task] = [t for t in self.fakes.planfix_tasks() if "Maria Late" in t["name"]]
        return task

    def late_requests(self, task, contact):
        """The calls that concern the late chat's contact and task."""
        mine = ("/rest/task/%d" % task, "/rest/contact/%d" % contact)
        return calls(r for r in self.pf() if r["path"].startswith(mine))

    def late_conversation(self):
        [conv] = [c for c in self.api("conversations")["conversations"] if c["emails"] == [EMAIL]]
        return conv


class TestLateTaskIsMadeCompleted(LateCase):
    def test_a_chat_over_before_its_task_is_made_costs_no_close_and_no_update(self):
        self.start_admin()
        self.busy_tracker()
        self.late_chat()
        self.fakes.release("planfix")
        self.wait_idle()
        self.assert_quiet()
        task = self.late_task()
        [create] = [r for r in self.pf("/task/", "POST") if r["body"]["name"] == task["name"]]
        # One task create, made completed (the close's status); no close request follows.
        self.assertEqual(create["body"]["status"], {"id": 3})
        self.assertRegex(create["body"]["sourceObjectId"], TASK_SOURCE_RE)
        self.assertEqual((task["status"], task["statusActive"]), (3, False))
        self.assertEqual(self.pf("/task/%d" % task["id"], "POST"), [])
        # Its description carries every message; none is repeated as a comment.
        for text in TEXTS:
            self.assertEqual(task["description"].count(text), 1, text)
        self.assertEqual(self.fakes.planfix_comments(task["id"]), [])
        # One contact create, with the e-mail told late; no contact update.
        contact = num(task["assigner"])
        [made] = [r for r in self.pf("/contact/", "POST") if r["body"].get("name") == "Maria"]
        self.assertEqual((made["body"]["email"], made["body"].get("lastname")), (EMAIL, "Late"))
        self.assertEqual(self.pf("/contact/%d" % contact, "POST"), [])
        self.assertEqual(self.late_requests(task["id"], contact), [])
        self.assertEqual(len(self.pf("/task/", "POST")), BUSY_CHATS + 1)
        self.assertEqual(len(self.pf("/contact/", "POST")), BUSY_CHATS + 1)
        # The bridge records it closed, and its timeline tells both, as for a close.
        conv = self.late_conversation()
        self.assertEqual((conv["task"]["id"], conv["task"]["state"]), (str(task["id"]), "closed"))
        self.assertEqual([(t["action"], t["task"]) for t in self.timeline(conv["id"], "task")],
                         [("created", str(task["id"])), ("closed", str(task["id"]))])
        self.assertEqual(self.dead_jobs(), 0)

    def test_a_crash_between_the_create_and_its_record_still_gives_one_completed_task(self):
        self.start_bridge()
        self.busy_tracker()
        self.late_chat()
        # The late task's create takes effect in Planfix, but its answer never comes: killed.
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "hang", "effect": True}])
        self.fakes.release("planfix")
        wait_until(lambda: [t for t in self.fakes.planfix_tasks() if "Maria Late" in t["name"]],
                   message="the late task was never created")
        self.assertEqual(self.bridge.kill(signal.SIGKILL), -signal.SIGKILL)
        before = len(self.pf())
        self.bridge.start()
        self.wait_idle()
        self.assert_quiet()
        task = self.late_task()
        self.assertEqual(len([t for t in self.fakes.planfix_tasks() if "Maria Late" in t["name"]]), 1,
                         "one task, not two")
        self.assertEqual((task["status"], task["statusActive"]), (3, False))
        # After the restart the job looked before writing again, found the task, and (not
        # knowing what the lost answer said) the close that follows completed it.
        after = calls(self.pf()[before:])
        self.assertIn("POST /rest/task/list", after)
        self.assertNotIn("POST /rest/task/", after)
        self.assertEqual([r["body"] for r in self.pf("/task/%d" % task["id"], "POST")], [{"status": {"id": 3}}])
        self.assertEqual(self.fakes.planfix_comments(task["id"]), [])
        self.assertEqual(self.dead_jobs(), 0)


class TestTranscriptFirst(LateCase):
    def test_messages_the_description_does_not_show_follow_as_comments_on_the_completed_task(self):
        """A description without the messages (the admin's template): the task is still made
        completed, and the messages follow as comments on it (Planfix takes comments on a
        completed task), in order, once each; no close request."""
        self.start_bridge(channel={"task": {"description": "<p>{{visitor.name}}</p>"}})
        self.post(chat_event("chatTranscript", LATE, [msg("late-1", TEXTS[0]), msg("late-2", TEXTS[1])],
                             name="Maria Late", email=EMAIL))
        task = self.wait_task()[0]
        self.wait_comment_posts(task["id"], 1)
        self.assert_quiet()
        self.assertEqual(self.pf_calls(), ["POST /rest/contact/list", "POST /rest/contact/", "POST /rest/task/",
                                           "POST /rest/task/%d/comments/" % task["id"]])
        self.assertEqual(self.pf("/task/", "POST")[0]["body"]["status"], {"id": 3})
        self.assertEqual(self.comment_texts(task["id"]), TEXTS[:2])
        t = self.fakes.planfix_task(task["id"])
        self.assertEqual((t["status"], t["statusActive"]), (3, False))
        self.assertEqual(self.dead_jobs(), 0)


class TestCloseOnLeaveOff(LateCase):
    def test_the_late_task_is_made_open_and_stays_open(self):
        self.start_admin(channel={"close_on_leave": False})
        self.busy_tracker()
        self.late_chat()
        self.fakes.release("planfix")
        self.wait_idle()
        self.assert_quiet()
        task = self.late_task()
        [create] = [r for r in self.pf("/task/", "POST") if r["body"]["name"] == task["name"]]
        self.assertNotIn("status", create["body"])
        self.assertTrue(task["statusActive"])
        self.assertEqual(self.pf("/task/%d" % task["id"], "POST"), [])
        for text in TEXTS:
            self.assertIn(text, task["description"])
        # The late e-mail still needs no update: the contact was made with it.
        [made] = [r for r in self.pf("/contact/", "POST") if r["body"].get("name") == "Maria"]
        self.assertEqual(made["body"]["email"], EMAIL)
        self.assertEqual(self.pf("/contact/%d" % num(task["assigner"]), "POST"), [])
        self.assertEqual(self.late_conversation()["task"]["state"], "open")


class TestLateEmail(LateCase):
    def test_an_email_told_before_the_contact_is_made_goes_into_its_creation(self):
        self.start_bridge()
        self.busy_tracker()
        self.late_chat(leave=False)
        self.fakes.release("planfix")
        self.wait_idle()
        self.assert_quiet()
        task = self.late_task()
        contact = num(task["assigner"])
        [made] = [r for r in self.pf("/contact/", "POST") if r["body"].get("name") == "Maria"]
        self.assertEqual(made["body"]["email"], EMAIL)
        self.assertEqual(self.pf("/contact/%d" % contact, "POST"), [])
        self.assertTrue(task["statusActive"])

    def test_details_told_after_the_contact_is_made_still_update_it(self):
        self.start_bridge()
        self.busy_tracker()
        self.late_chat(leave=False)
        self.fakes.release("planfix")
        self.wait_idle()
        contact = num(self.late_task()["assigner"])
        # A phone told now is new to the contact: one update, with everything it knows.
        self.post(chat_event("chatFragment", LATE, [msg("late-4", "Call me")], name="Maria Late", email=EMAIL,
                             phone="+34 600 000 000"))
        [update] = self.wait_pf("/rest/contact/%d" % contact)
        self.assert_quiet()
        self.assertEqual((update["body"]["email"], update["body"]["phones"][0]["number"]), (EMAIL, "+34 600 000 000"))
        self.assertEqual(len(self.pf("/contact/%d" % contact, "POST")), 1)


if __name__ == "__main__":
    unittest.main()
