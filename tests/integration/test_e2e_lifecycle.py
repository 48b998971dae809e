"""Issue "one person, one thread", behaviour 6: new_task_if_no_active against the task's
state in the tracker (completed or deleted there by an employee)."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase, TASK_SOURCE_RE  # noqa: E402


class LifecycleCase(E2ECase):
    def new_chat(self, chat_id, *messages):
        ev = chat_event("chatStarted", "client-1", list(messages), email="maria@example.org", name="Maria Lopez")
        ev["client"]["chatId"] = chat_id
        self.post(ev)


class TestNewTaskIfNoActiveOn(LifecycleCase):
    def test_completed_task_leads_to_a_new_task_with_the_previous_conversation(self):
        self.start_bridge()
        task, contact = self.open_chat("client-1", [msg("a1", "First visit question")],
                                       email="maria@example.org", name="Maria Lopez")
        self.wait_idle()
        self.fakes.set_task_status(task, 3)  # an employee completed it in Planfix
        self.new_chat("chat-2", msg("b1", "Back again with a new question"))
        tasks = self.wait_task(2)
        new = tasks[1]
        # The bridge asked for the task's state, then opened a new task.
        self.assertIn("GET /rest/task/%d" % task, self.pf_calls())
        state = [r for r in self.fakes.planfix_requests(method="GET") if r["path"] == "/rest/task/%d" % task][0]
        self.assertEqual(state["query_string"], "fields=id,status,isDeleted")
        self.assertRegex(new["sourceObjectId"], TASK_SOURCE_RE)
        self.assertEqual(new["assigner"], contact)
        self.assertIn("Back again with a new question", new["description"])
        self.assertIn("Previous conversation:</b> task #%d" % task, new["description"])
        self.assertIn("First visit question", new["description"])
        self.wait_idle()
        # The new message is in the new task's text, not a comment anywhere.
        self.assertEqual(self.comment_posts(task), [])
        self.assertEqual(self.comment_posts(new["id"]), [])
        # Later messages of this chat go to the new task.
        self.post(chat_event("chatFragment", "client-1", [msg("b2", "and one more thing")],
                             email="maria@example.org"))
        [post] = self.wait_comment_posts(new["id"], 1)
        self.assertEqual(post["body"]["description"], "and one more thing")

    def test_active_task_keeps_the_conversation(self):
        self.start_bridge()
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        self.new_chat("chat-2", msg("b1", "Back while the task is still open"))
        posts = self.wait_comment_posts(task, 2)
        self.assertEqual(posts[0]["body"]["description"], "Back while the task is still open")
        self.assertTrue(posts[1]["body"]["description"].startswith("<b>New visit</b>: "))
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)

    def test_deleted_task_leads_to_a_new_task_at_the_next_comment(self):
        self.start_bridge()
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        self.fakes.delete_task(task, purge=True)
        # Same chat, so no state check: the comment itself finds the task gone.
        self.post(chat_event("chatFragment", "client-1", [msg("c1", "Is anyone there?")],
                             email="maria@example.org"))
        new = wait_until(lambda: [t for t in self.fakes.planfix_tasks() if t["id"] != task],
                         message="no new task after the old one was deleted")[0]
        self.assertIn("Is anyone there?", new["description"])
        self.assertIn("task #%d" % task, new["description"])
        self.assert_quiet()


class TestNewTaskIfNoActiveOff(LifecycleCase):
    def test_completed_task_keeps_getting_the_messages(self):
        self.start_bridge(channel={"new_task_if_no_active": False})
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        self.fakes.set_task_status(task, 3)
        self.new_chat("chat-2", msg("b1", "Back after completion"))
        posts = self.wait_comment_posts(task, 1)
        self.assertEqual(posts[0]["body"]["description"], "Back after completion")
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)

    def test_deleted_task_still_leads_to_a_new_task(self):
        self.start_bridge(channel={"new_task_if_no_active": False})
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        self.fakes.delete_task(task)
        self.new_chat("chat-2", msg("b1", "Hello after deletion"))
        tasks = self.wait_task(2)
        self.assertIn("Hello after deletion", tasks[1]["description"])


if __name__ == "__main__":
    unittest.main()
