"""Issue "one person, one thread", behaviour 6: new_task_if_no_active against the task's
state in the tracker (completed or deleted there by an employee)."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import ANNA_AGENT, E2ECase, TASK_SOURCE_RE  # noqa: E402


class LifecycleCase(E2ECase):
    def new_chat(self, chat_id, *messages, event="chatStarted"):
        ev = chat_event(event, "client-1", list(messages), email="maria@example.org", name="Maria Lopez")
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

    def greet_in_a_new_chat(self, task, delete=False):
        """The task ends in Planfix (completed, or deleted); an agent greets the returning visitor in a
        new chat.  Only the state check is asked: no task, no comment, no visit note on the old task."""
        if delete:
            self.fakes.delete_task(task)
        else:
            self.fakes.set_task_status(task, 3)
        before, comments = len(self.fakes.planfix_requests()), len(self.comment_posts(task))
        self.new_chat("chat-2", msg("g1", "Welcome back, Maria!", type="agent", agent_id=ANNA_AGENT))
        self.new_chat("chat-2", msg("g2", "Anything I can help with?", type="agent", agent_id=ANNA_AGENT),
                      event="chatFragment")
        self.assert_quiet()
        calls = [c for c in self.pf_calls()[before:] if not c.startswith("POST /rest/contact/")]
        self.assertEqual(calls, ["GET /rest/task/%d" % task])
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(len(self.comment_posts(task)), comments)

    def test_greetings_after_the_task_was_completed_in_planfix_wait_for_the_visitor(self):
        self.start_bridge(channel={"close_on_leave": False})
        task, _ = self.open_chat("client-1", [msg("a1", "First visit question")],
                                 email="maria@example.org", name="Maria Lopez")
        self.wait_idle()
        self.greet_in_a_new_chat(task)
        # The visitor answers: a new task, the greetings first, then the visitor's words.
        self.new_chat("chat-2", msg("b1", "Yes, my order is late"), event="chatFragment")
        new = self.wait_task(2)[1]
        self.assert_quiet()
        d = new["description"]
        self.assertLess(d.index("Welcome back, Maria!"), d.index("Anything I can help with?"))
        self.assertLess(d.index("Anything I can help with?"), d.index("Yes, my order is late"))
        self.assertIn("Previous conversation:</b> task #%d" % task, d)
        self.assertEqual(self.comment_posts(task), [])
        self.assertEqual(self.comment_posts(new["id"]), [])
        # The chat goes on in the new task.
        self.new_chat("chat-2", msg("b2", "Order 1042"), event="chatFragment")
        [post] = self.wait_comment_posts(new["id"], 1)
        self.assertEqual(post["body"]["description"], "Order 1042")

    def test_greetings_after_the_task_was_deleted_wait_too_and_go_first_as_comments(self):
        self.start_bridge(channel={"task": {"description": "<p>Chat with {{visitor.name}}</p>"}})
        task, contact = self.open_chat("client-1", [msg("a1", "First visit question")],
                                       email="maria@example.org", name="Maria Lopez")
        self.wait_idle()
        self.greet_in_a_new_chat(task, delete=True)
        self.new_chat("chat-2", msg("b1", "Yes, my order is late"), event="chatFragment")
        new = self.wait_task(2)[1]
        posts = self.wait_comment_posts(new["id"], 4)
        self.assert_quiet()
        self.assertEqual([p["body"]["description"] for p in posts][:3],
                         ["Welcome back, Maria!", "Anything I can help with?", "Yes, my order is late"])
        self.assertEqual(posts[2]["body"]["owner"], {"id": contact})

    def test_a_greeting_with_the_visitors_message_in_the_new_chat_opens_the_task_at_once(self):
        self.start_bridge()
        task, _ = self.open_chat("client-1", [msg("a1", "First visit question")],
                                 email="maria@example.org", name="Maria Lopez")
        self.wait_idle()
        self.fakes.set_task_status(task, 3)
        self.new_chat("chat-2", msg("g1", "Welcome back, Maria!", type="agent", agent_id=ANNA_AGENT),
                      msg("b1", "Hi, it is me again"))
        new = self.wait_task(2)[1]
        self.assert_quiet()
        d = new["description"]
        self.assertLess(d.index("Welcome back, Maria!"), d.index("Hi, it is me again"))
        self.assertEqual(self.comment_posts(task), [])

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
