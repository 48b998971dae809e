"""Issue behaviour 8: the visitor leaves (chatTranscript), and comes back later."""

import os
import signal
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, sample  # noqa: E402
from admin import ADMIN_TOKEN, BEARER  # noqa: E402
from e2e import split_coalesced, ANNA_AGENT, TASK_SOURCE_RE, E2ECase, calls  # noqa: E402

CLIENT = "k2f8w0qz5mv1r7c3xj9t4ba6ne0yd2hs8pl1ug5o"   # the samples' visitor


class LeaveCase(E2ECase):
    def calls_since(self, n):
        return calls(self.fakes.planfix_requests()[n:])

    def sample_chat(self):
        """chat-started (1 message, in the description) then chat-fragment-agent-and-system
        (2 comments); returns (task, contact)."""
        self.post(sample("chat-started"))
        task = self.wait_task()[0]
        self.post(sample("chat-fragment-agent-and-system"))
        self.wait_comment_posts(task["id"], 2)
        self.wait_idle()
        return task["id"], task["assigner"]


class TestTranscriptClosesTheTask(LeaveCase):
    def setUp(self):
        super().setUp()
        self.start_bridge()

    def test_transcript_backfills_missing_messages_then_completes_the_task(self):
        task, contact = self.sample_chat()
        before = len(self.fakes.planfix_requests())
        ev = sample("chat-transcript")
        ev["messages"].append(msg("Zz9late0000000001", "One more thing", created_at=1763800130000))
        self.post(ev)
        self.wait_pf("/rest/task/%d" % task)
        self.assert_quiet()
        # The two missing visitor messages go as one comment (coalesced), then the close.
        self.assertEqual(self.calls_since(before), ["POST /rest/task/%d/comments/" % task,
                                                    "POST /rest/task/%d" % task])
        new = self.fakes.planfix_requests()[before:]
        self.assertEqual(new[0]["body"]["owner"], {"id": contact})
        self.assertEqual(split_coalesced(new[0]["body"]["description"]), ["Thanks, bye!", "One more thing"])
        self.assertEqual(new[1]["body"], {"status": {"id": 3}})
        t = self.fakes.planfix_task(task)
        self.assertEqual((t["status"], t["statusActive"]), (3, False))
        # Every message of the chat is in Planfix exactly once (description or comment).
        self.assertEqual([t for c in self.fakes.planfix_comments(task) for t in split_coalesced(c["description"])],
                         ["Hi Maria, yes it is.", "Great, and the delivery time<br>to Madrid?", "Thanks, bye!",
                          "One more thing"])

    def test_a_repeated_transcript_does_nothing_more(self):
        task, _ = self.sample_chat()
        self.post(sample("chat-transcript"))
        self.wait_pf("/rest/task/%d" % task)
        self.wait_idle()
        before = len(self.fakes.planfix_requests())
        self.post(sample("chat-transcript"))
        self.post(sample("chat-transcript"))
        self.assert_quiet()
        self.assertEqual(self.calls_since(before), [])
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)

    def test_transcript_with_nothing_new_only_completes(self):
        task, _ = self.sample_chat()
        before = len(self.fakes.planfix_requests())
        ev = sample("chat-transcript")
        ev["messages"] = ev["messages"][:3]
        self.post(ev)
        self.wait_pf("/rest/task/%d" % task)
        self.assert_quiet()
        self.assertEqual(self.calls_since(before), ["POST /rest/task/%d" % task])

    def test_transcript_as_the_first_event_opens_a_task_made_completed(self):
        self.post(sample("chat-transcript"))
        task = self.wait_task()[0]
        self.assert_quiet()
        # The visitor left before the task was made (issue 15): it is made completed, no close follows.
        self.assertEqual(self.pf_calls(), ["POST /rest/contact/list", "POST /rest/contact/", "POST /rest/task/"])
        self.assertEqual(self.pf("/task/", "POST")[0]["body"]["status"], {"id": 3})
        self.assertRegex(task["sourceObjectId"], TASK_SOURCE_RE)
        for text in ("Hello! Is the blue kettle in stock?", "Hi Maria, yes it is.", "Thanks, bye!"):
            self.assertIn(text, task["description"])
        self.assertEqual(self.fakes.planfix_comments(), [])
        self.assertEqual(self.fakes.planfix_task(task["id"])["status"], 3)


class TestTranscriptKeepsTheTaskOpen(LeaveCase):
    def test_close_on_leave_off_backfills_but_does_not_complete(self):
        self.start_bridge(channel={"close_on_leave": False})
        task, contact = self.sample_chat()
        before = len(self.fakes.planfix_requests())
        self.post(sample("chat-transcript"))
        [post] = self.wait_comment_posts(task, 3)[2:]
        self.assert_quiet()
        self.assertEqual(self.calls_since(before), ["POST /rest/task/%d/comments/" % task])
        self.assertEqual(post["body"]["description"], "Thanks, bye!")
        t = self.fakes.planfix_task(task)
        self.assertTrue(t["statusActive"])
        self.assertEqual(t["updates"], [])


class TestVisitorComesBack(LeaveCase):
    def close_first_chat(self):
        task, contact = self.sample_chat()
        self.post(sample("chat-transcript"))
        self.wait_pf("/rest/task/%d" % task)
        self.wait_idle()
        return task, contact

    def test_new_message_after_completion_opens_a_new_task(self):
        self.start_bridge()
        old, contact = self.close_first_chat()
        before = len(self.fakes.planfix_requests())
        self.post(chat_event("chatFragment", CLIENT, [msg("back0000000000001", "I am back, the kettle leaks")],
                             name="Maria Lopez", email="maria.lopez@example.org"))
        tasks = self.wait_task(2)
        self.wait_idle()
        # The contact is known: its active tasks are looked up (as assigner, then as counterparty:
        # issue 10's "a new task if there are no active tasks"), none is, so the task is created;
        # the new chat is a visit on the contact's card.
        self.assertEqual(self.calls_since(before), ["POST /rest/task/list", "POST /rest/task/list", "POST /rest/task/",
                                                    "POST /rest/contact/%s/comments/" % contact.split(":")[1]])
        new = tasks[1]
        body = self.fakes.planfix_requests()[before + 2]["body"]
        self.assertRegex(body["sourceObjectId"], TASK_SOURCE_RE)
        self.assertNotEqual(body["sourceObjectId"], tasks[0]["sourceObjectId"])
        self.assertEqual((body["assigner"], body["counterparty"]), ({"id": contact}, {"id": contact}))
        self.assertEqual(body["name"], "Chat with Maria Lopez (shop)")
        d = new["description"]
        self.assertIn("<b>Previous conversation:</b> task #%d<br>" % old, d)
        self.assertIn("I am back, the kettle leaks", d)
        for earlier in ("Hello! Is the blue kettle in stock?", "Hi Maria, yes it is.", "Thanks, bye!"):
            self.assertIn(earlier, d)
        self.assertIn("<i>Earlier</i>", d)
        self.assertLess(d.index("I am back"), d.index("<i>Earlier</i>"))
        # Later messages go to the new task.
        self.post(chat_event("chatFragment", CLIENT, [msg("back0000000000002", "Photo attached")],
                             email="maria.lopez@example.org"))
        [post] = self.wait_comment_posts(new["id"], 1)
        self.assertEqual(post["body"]["description"], "Photo attached")
        self.assertEqual(post["body"]["owner"], {"id": contact})
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_comments(old)), 3)
        # Replies on the new task reach the visitor.
        self.fakes.employee_comment(new["id"], text="Sorry to hear that")
        self.bridge.post_planfix(new["id"])
        [send] = self.wait_chatra()
        self.assertEqual(send["body"], {"clientId": CLIENT, "text": "Sorry to hear that", "agentId": ANNA_AGENT})

    def test_a_late_repeat_of_the_old_chat_does_not_open_a_new_task(self):
        self.start_bridge()
        self.close_first_chat()
        before = len(self.fakes.planfix_requests())
        self.post(sample("chat-fragment-agent-and-system"))
        self.post(sample("chat-started"))
        self.assert_quiet()
        self.assertEqual(self.calls_since(before), [])
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)

    # --- an agent greets the returning visitor before they write -----------------------------

    def new_chat(self, event_name, *messages, chat="chat-2-of-maria"):
        ev = chat_event(event_name, CLIENT, list(messages), name="Maria Lopez", email="maria.lopez@example.org")
        ev["client"]["chatId"] = chat
        self.post(ev)

    def greet(self, old, contact):
        """Two agent messages in the new chat, before the visitor writes: nothing reaches the
        completed task, and no task is made (the new chat is a visit on the contact's card).
        Returns the completed task's comment count."""
        before = len(self.fakes.planfix_requests())
        comments = len(self.fakes.planfix_comments(old))
        self.new_chat("chatStarted", msg("greet00000000001", "Welcome back, Maria!", type="agent",
                                         agent_id=ANNA_AGENT))
        self.new_chat("chatFragment", msg("greet00000000002", "Can I help with anything?", type="agent",
                                          agent_id=ANNA_AGENT))
        self.assert_quiet()
        self.assertEqual(self.calls_since(before), ["POST /rest/contact/%s/comments/" % contact.split(":")[1]])
        self.assertEqual(len(self.fakes.planfix_comments(old)), comments)
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        return comments

    def visitor_answers(self, old, comments):
        """The visitor writes in the new chat: a new task, whose description has the greetings
        before the visitor's words; the completed task got nothing more."""
        self.new_chat("chatFragment", msg("back0000000000001", "Yes: the kettle leaks"))
        new = self.wait_task(2)[1]
        self.assert_quiet()
        d = new["description"]
        self.assertLess(d.index("Welcome back, Maria!"), d.index("Can I help with anything?"))
        self.assertLess(d.index("Can I help with anything?"), d.index("Yes: the kettle leaks"))
        self.assertEqual(len(self.fakes.planfix_comments(old)), comments)
        self.assertEqual(len(self.fakes.planfix_tasks()), 2)
        return new

    def test_an_agent_greeting_in_a_new_chat_goes_to_the_task_the_visitor_opens(self):
        self.start_bridge()
        old, contact = self.close_first_chat()
        new = self.visitor_answers(old, self.greet(old, contact))
        # Carried by the description: no comment.
        self.assertEqual(self.comment_posts(new["id"]), [])
        # The chat goes on in the new task.
        self.new_chat("chatFragment", msg("greet00000000003", "Sorry to hear that", type="agent",
                                          agent_id=ANNA_AGENT))
        [post] = self.wait_comment_posts(new["id"], 1)
        self.assertEqual(post["body"]["description"], "Sorry to hear that")

    def test_greetings_wait_across_a_kill(self):
        self.start_bridge()
        old, contact = self.close_first_chat()
        comments = self.greet(old, contact)
        self.assertEqual(self.bridge.kill(signal.SIGKILL), -signal.SIGKILL)
        self.bridge.restart()
        self.visitor_answers(old, comments)

    def test_greetings_the_description_does_not_show_go_first_as_comments_of_the_new_task(self):
        self.start_bridge(channel={"task": {"description": "<p>Chat with {{visitor.name}}</p>"}})
        old, contact = self.close_first_chat()
        comments = self.greet(old, contact)
        self.new_chat("chatFragment", msg("back0000000000001", "Yes: the kettle leaks"))
        new = self.wait_task(2)[1]
        posts = self.wait_comment_posts(new["id"], 3)
        self.assert_quiet()
        self.assertEqual([(p["body"]["description"], p["body"]["owner"]) for p in posts],
                         [("Welcome back, Maria!", {"id": "user:5"}), ("Can I help with anything?", {"id": "user:5"}),
                          ("Yes: the kettle leaks", {"id": contact})])
        self.assertEqual(len(self.fakes.planfix_comments(old)), comments)

    def test_greetings_with_the_visitors_messages_share_their_comment_in_the_new_task(self):
        self.start_bridge(channel={"task": {"description": "<p>Chat with {{visitor.name}}</p>"},
                                   "mirror_agent_messages": "with_visitor"})
        old, contact = self.close_first_chat()
        comments = self.greet(old, contact)
        self.new_chat("chatFragment", msg("back0000000000001", "Yes: the kettle leaks"))
        new = self.wait_task(2)[1]
        [post] = self.wait_comment_posts(new["id"], 1)
        self.assert_quiet()
        parts = split_coalesced(post["body"]["description"])
        self.assertEqual(len(parts), 3, parts)
        self.assertIn("Welcome back, Maria!", parts[0])
        self.assertIn("Can I help with anything?", parts[1])
        self.assertIn("Yes: the kettle leaks", parts[2])
        self.assertEqual(len(self.fakes.planfix_comments(old)), comments)

    def test_greetings_the_visitor_never_answered_do_not_go_into_the_task_of_their_next_chat(self):
        self.bridge.env["BR_ADMIN_TOKEN"] = ADMIN_TOKEN
        self.start_bridge(admin={"token": "env:BR_ADMIN_TOKEN"})
        old, contact = self.close_first_chat()
        comments = self.greet(old, contact)
        # The visitor never writes in that chat; weeks later they open another one, where the
        # agent greets again and the visitor answers.
        self.new_chat("chatStarted", msg("greet00000000011", "Hello again, Maria", type="agent",
                                         agent_id=ANNA_AGENT), chat="chat-3-of-maria")
        self.new_chat("chatFragment", msg("back0000000000011", "The lid is cracked now"), chat="chat-3-of-maria")
        new = self.wait_task(2)[1]
        self.assert_quiet()
        d = new["description"]
        self.assertLess(d.index("Hello again, Maria"), d.index("The lid is cracked now"))
        for stale in ("Welcome back, Maria!", "Can I help with anything?"):
            self.assertNotIn(stale, d)
        self.assertEqual(self.comment_posts(new["id"]), [])
        self.assertEqual(len(self.fakes.planfix_comments(old)), comments)
        self.assertEqual(len(self.fakes.planfix_tasks()), 2)
        # The admin page tells what became of them: skipped, in no task.
        timeline = self.bridge.get("/admin/api/conversations/1", BEARER).json()["timeline"]
        states = {m["text"]: (m["state"], m["task"]) for m in timeline if m["type"] == "message"}
        self.assertEqual(states["Welcome back, Maria!"], ("skipped", None))
        self.assertEqual(states["Can I help with anything?"], ("skipped", None))
        self.assertEqual(states["Hello again, Maria"], ("in_description", str(new["id"])))

    def test_with_new_task_if_no_active_off_a_greeting_goes_to_the_old_task(self):
        self.start_bridge(channel={"new_task_if_no_active": False})
        old, contact = self.close_first_chat()
        self.new_chat("chatStarted", msg("greet00000000001", "Welcome back, Maria!", type="agent",
                                         agent_id=ANNA_AGENT))
        [*_, post] = self.wait_comment_posts(old, 4)
        self.assert_quiet()
        self.assertEqual(post["body"]["description"], "Welcome back, Maria!")
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)

    def test_new_task_if_no_active_off_keeps_commenting_on_the_old_task(self):
        self.start_bridge(channel={"new_task_if_no_active": False})
        old, contact = self.close_first_chat()
        before = len(self.fakes.planfix_requests())
        self.post(chat_event("chatFragment", CLIENT, [msg("back0000000000001", "I am back")],
                             email="maria.lopez@example.org"))
        [post] = self.wait_comment_posts(old, 4)[3:]
        self.assert_quiet()
        # The comment, and (a fragment of a new chat of a known person) the visit on the contact's card.
        self.assertEqual(self.calls_since(before), ["POST /rest/task/%d/comments/" % old,
                                                    "POST /rest/contact/%s/comments/" % contact.split(":")[1]])
        self.assertEqual(post["body"]["description"], "I am back")
        self.assertEqual(post["body"]["owner"], {"id": contact})
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)


if __name__ == "__main__":
    unittest.main()
