"""Issue behaviour 7: employees' Planfix comments go back to the chat as the employee."""

import http.client
import json
import os
import sys
import unittest
import urllib.parse

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import (BORIS, DEFAULT_AGENT_ID, PLANFIX_WEBHOOK_SECRET, chat_event, msg)  # noqa: E402
from e2e import ANNA_AGENT, CHATRA_AUTH, COMMENTS_LIST_BODY, E2ECase, calls  # noqa: E402


class ReplyCase(E2ECase):
    overrides = {}

    def setUp(self):
        super().setUp()
        self.start_bridge(**self.overrides)
        self.task, self.contact = self.open_chat("client-1", name="Maria Lopez", email="maria@example.org")
        self.wait_idle()

    def planfix_hook(self, task=None, **kw):
        status, body = self.bridge.post_planfix(self.task if task is None else task, **kw)
        self.assertEqual(status, 200, body)
        return body

    def comment_lists(self, task=None):
        return self.pf("/task/%d/comments/list" % (self.task if task is None else task), "POST")

    def chat_messages(self):
        return [r["body"] for r in self.fakes.chatra_requests(path="/messages/", method="POST")]


class TestRelay(ReplyCase):
    def test_employee_comment_is_sent_to_the_chat_as_the_employee(self):
        self.fakes.employee_comment(self.task, owner="user:5", name="Anna",
                                    text="<p>Yes, we have it &amp; it is <b>blue</b>.</p><p>Delivery:<br>2 days</p>")
        body = self.planfix_hook()
        self.assertEqual(json.loads(body), {"ok": True})
        [listing] = self.wait_pf("/rest/task/%d/comments/list" % self.task)
        self.assertEqual(listing["body"], COMMENTS_LIST_BODY)
        [send] = self.wait_chatra()
        self.assertEqual(send["body"], {"clientId": "client-1",
                                        "text": "Yes, we have it & it is blue.\n\nDelivery:\n2 days",
                                        "agentId": ANNA_AGENT})
        self.assertEqual(send["headers"]["Authorization"], CHATRA_AUTH)
        self.assert_quiet()
        self.assertEqual(self.chatra_calls(), ["POST /api/messages/"])
        # Nothing is written to Planfix for a reply.
        self.assertEqual([c for c in self.pf_calls() if not c.endswith("/comments/list")],
                         ["POST /rest/contact/list", "POST /rest/contact/", "POST /rest/task/"])

    def test_comments_beyond_the_first_page_are_read(self):
        # Anna's first reply, 120 comments by a watcher (not relayed), then her second: read
        # newest first, the first reply is on the second page.  Both reach the chat, oldest first.
        self.fakes.employee_comment(self.task, owner="user:5", name="Anna", text="on page two")
        for i in range(120):
            self.fakes.employee_comment(self.task, owner="user:7", name="Viktor", text="note %d" % i)
        self.fakes.employee_comment(self.task, owner="user:5", name="Anna", text="on page one")
        self.planfix_hook()
        self.wait_chatra(count=2)
        self.assert_quiet()
        self.assertEqual([m["text"] for m in self.chat_messages()], ["on page two", "on page one"])
        offsets = [r["body"]["offset"] for r in self.comment_lists()]
        self.assertEqual(offsets, [0, 100])

    def long_task(self, notes=150):
        """A task with many comments, read once: notes by a watcher and Anna's "reply one"."""
        for i in range(notes):
            self.fakes.employee_comment(self.task, owner="user:7", name="Viktor", text="note %d" % i)
        self.fakes.employee_comment(self.task, owner="user:5", name="Anna", text="reply one")
        self.planfix_hook()
        self.wait_chatra(count=1)
        self.wait_idle()

    def test_a_long_task_costs_one_page_a_read(self):
        self.long_task()
        # The first read knows no comment: every page.
        self.assertEqual([r["body"]["offset"] for r in self.comment_lists()], [0, 100])
        self.fakes.employee_comment(self.task, owner="user:5", name="Anna", text="reply two")
        self.planfix_hook()
        self.wait_chatra(count=2)
        self.assert_quiet()
        # The next one stops at the first page: it ends with comments the first read took.
        self.assertEqual([r["body"]["offset"] for r in self.comment_lists()], [0, 100, 0])
        self.assertEqual([m["text"] for m in self.chat_messages()], ["reply one", "reply two"])

    def test_a_reply_behind_a_hundred_comments_of_the_bridge_is_read(self):
        # The bridge's own comments are known before any read lists them: a read may not stop
        # at them, or Anna's reply written before them would never be read.
        self.fakes.employee_comment(self.task, owner="user:5", name="Anna", text="reply one")
        self.planfix_hook()
        self.wait_chatra(count=1)
        self.wait_idle()
        self.fakes.employee_comment(self.task, owner="user:5", name="Anna", text="behind them")
        before = len(self.comment_posts(self.task))
        for i in range(101):
            self.post(chat_event("chatFragment", "client-1", [msg("client-1-b%d" % i, "message %d" % i)]))
            self.wait_comment_posts(self.task, before + i + 1)
        self.planfix_hook()
        self.wait_chatra(count=2)
        self.assert_quiet()
        self.assertEqual([m["text"] for m in self.chat_messages()], ["reply one", "behind them"])
        reads = self.comment_lists()
        self.assertEqual([r["body"]["offset"] for r in reads[1:]], [0, 100])
        # Read back, they are known: the next read takes one page.
        self.planfix_hook()
        self.wait_pf("/rest/task/%d/comments/list" % self.task, count=len(reads) + 1)
        self.assert_quiet()
        self.assertEqual([r["body"]["offset"] for r in self.comment_lists()[len(reads):]], [0])
        self.assertEqual(len(self.chat_messages()), 2)

    def test_a_planfix_that_ignores_the_order_is_read_whole(self):
        # Oldest first whatever was asked: no page proves it is newest first, so every read
        # takes every page, and nothing is missed or sent twice.
        self.fakes.settings("planfix", ignore_order=True)
        self.long_task()
        self.fakes.employee_comment(self.task, owner="user:5", name="Anna", text="reply two")
        self.planfix_hook()
        self.wait_chatra(count=2)
        self.assert_quiet()
        self.assertEqual([r["body"]["offset"] for r in self.comment_lists()], [0, 100, 0, 100])
        self.assertEqual([m["text"] for m in self.chat_messages()], ["reply one", "reply two"])

    def test_entities_and_tags_become_plain_text(self):
        self.fakes.employee_comment(self.task, text="Price: 5&nbsp;&euro; &lt;tax incl.&gt; &quot;ok&quot; &#39;x&#39; "
                                                    "<a href=\"https://shop.example\">link</a>")
        self.planfix_hook()
        [send] = self.wait_chatra()
        # &nbsp; becomes a plain space; a link keeps its address.
        self.assertEqual(send["body"]["text"], "Price: 5 \u20ac <tax incl.> \"ok\" 'x' link (https://shop.example)")

    def test_task_number_as_form_field_and_as_json_string(self):
        self.fakes.employee_comment(self.task, text="reply one")
        self.planfix_hook(form=True)
        self.wait_chatra(count=1)
        self.wait_idle()
        self.fakes.employee_comment(self.task, text="reply two")
        self.planfix_hook(task=str(self.task))
        self.wait_chatra(count=2)
        self.assert_quiet()
        self.assertEqual([m["text"] for m in self.chat_messages()], ["reply one", "reply two"])
        self.assertEqual(len(self.comment_lists()), 2)
        for listing in self.comment_lists():
            self.assertEqual(listing["body"], COMMENTS_LIST_BODY)

    def test_task_number_in_the_query_with_an_empty_body(self):
        # What Planfix's "Send HTTP request" sends for ?task={{Task.Number}} without a body:
        # POST with Content-Length: 0.
        self.fakes.employee_comment(self.task, text="reply via query")
        status, body = raw_post(self.bridge, planfix_path() + "?task=%d" % self.task, b"")
        self.assertEqual((status, body), (200, '{"ok":true}'))
        [send] = self.wait_chatra()
        self.assertEqual(send["body"]["text"], "reply via query")
        [listing] = self.comment_lists()
        self.assertEqual(listing["body"], COMMENTS_LIST_BODY)

    def test_a_second_webhook_sends_only_new_replies(self):
        self.fakes.employee_comment(self.task, text="first reply")
        self.planfix_hook()
        self.wait_chatra(count=1)
        self.wait_idle()
        self.planfix_hook()                    # nothing new
        self.wait_pf("/rest/task/%d/comments/list" % self.task, count=2)
        self.assert_quiet()
        self.assertEqual(len(self.chat_messages()), 1)
        self.fakes.employee_comment(self.task, text="second reply")
        self.planfix_hook()
        self.wait_chatra(count=2)
        self.assert_quiet()
        self.assertEqual([m["text"] for m in self.chat_messages()], ["first reply", "second reply"])

    def test_several_new_replies_are_sent_in_order(self):
        for text in ("one", "two", "three"):
            self.fakes.employee_comment(self.task, text=text)
        self.planfix_hook()
        self.wait_chatra(count=3)
        self.assert_quiet()
        self.assertEqual([m["text"] for m in self.chat_messages()], ["one", "two", "three"])

    def test_only_visible_comments_of_listed_employees_are_relayed(self):
        # The bridge's own comment: a mirrored visitor message.
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "Visitor says hi")], email="maria@example.org"))
        self.wait_comment_posts(self.task, 1)
        self.wait_idle()
        instance = self.fakes.planfix_tasks()[0]["sourceObjectId"][:24]
        self.fakes.employee_comment(self.task, owner="user:5", text="hidden note", hidden=True)
        self.fakes.employee_comment(self.task, owner=BORIS["tracker_user"], name="Boris", text="from Boris")
        self.fakes.employee_comment(self.task, owner="user:1", name="Robot", text="from the robot")
        self.fakes.employee_comment(self.task, owner="user:7", name="Viktor", text="from the watcher")
        self.fakes.employee_comment(self.task, owner="user:5", text="written by the bridge",
                                    source_object_id=instance + "2%011x" % 999)
        self.fakes.employee_comment(self.task, owner="user:5", text="   <p> </p>")
        self.fakes.employee_comment(self.task, owner="user:5", text="the real reply")
        self.planfix_hook()
        self.wait_chatra()
        self.assert_quiet()
        self.assertEqual(self.chat_messages(),
                         [{"clientId": "client-1", "text": "the real reply", "agentId": ANNA_AGENT}])

    def test_a_comment_from_another_bridge_instance_is_relayed(self):
        self.fakes.employee_comment(self.task, owner="user:5", text="synced from elsewhere",
                                    source_object_id="00000000-0000-4000-8000-000000000000-c1")
        self.planfix_hook()
        [send] = self.wait_chatra()
        self.assertEqual(send["body"]["text"], "synced from elsewhere")

    def test_the_chat_copy_of_a_reply_is_not_mirrored_back(self):
        self.fakes.employee_comment(self.task, text="<p>We ship <b>today</b>.</p>")
        self.planfix_hook()
        [send] = self.wait_chatra()
        self.assertEqual(send["body"]["text"], "We ship today.")
        self.wait_idle()
        before = len(self.fakes.planfix_requests())
        # Chatra reports the reply in the next fragment, as an agent message of Anna,
        # followed by the visitor's answer.
        self.post(chat_event("chatFragment", "client-1", [
            msg("a9", "We ship today.", type="agent", agent_id=ANNA_AGENT),
            msg("m9", "Great, thanks"),
        ], email="maria@example.org"))
        [post] = self.wait_comment_posts(self.task, 1)
        self.assert_quiet()
        self.assertEqual(calls(self.fakes.planfix_requests()[before:]), ["POST /rest/task/%d/comments/" % self.task])
        self.assertEqual(post["body"]["description"], "Great, thanks")
        # A new agent message with other words is mirrored as usual, and so is the
        # same text typed a second time in Chatra.
        self.post(chat_event("chatFragment", "client-1", [
            msg("a10", "Anything else?", type="agent", agent_id=ANNA_AGENT),
            msg("a11", "We ship today.", type="agent", agent_id=ANNA_AGENT),
        ], email="maria@example.org"))
        self.wait_comment_posts(self.task, 3)
        self.assert_quiet()
        self.assertEqual([(p["body"]["description"], p["body"]["owner"]) for p in self.comment_posts(self.task)],
                         [("Great, thanks", {"id": self.contact}), ("Anything else?", {"id": "user:5"}),
                          ("We ship today.", {"id": "user:5"})])
        # The bridge's mirrored comments are never relayed to the chat.
        self.planfix_hook()
        self.wait_pf("/rest/task/%d/comments/list" % self.task, count=2)
        self.assert_quiet()
        self.assertEqual(len(self.chat_messages()), 1)

    def test_the_reply_goes_to_the_device_the_visitor_last_wrote_from(self):
        self.post(chat_event("chatFragment", "laptop-2", [msg("l1", "Now on my laptop")], email="maria@example.org"))
        self.wait_comment_posts(self.task, 1)
        self.wait_idle()
        self.fakes.employee_comment(self.task, text="Hello laptop")
        self.planfix_hook()
        [send] = self.wait_chatra()
        self.assertEqual(send["body"]["clientId"], "laptop-2")
        self.wait_idle()
        self.post(chat_event("chatFragment", "client-1", [msg("m3", "Back on the phone")], email="maria@example.org"))
        self.wait_comment_posts(self.task, 2)
        self.wait_idle()
        self.fakes.employee_comment(self.task, text="Hello phone")
        self.planfix_hook()
        self.wait_chatra(count=2)
        self.assertEqual([(m["clientId"], m["text"]) for m in self.chat_messages()],
                         [("laptop-2", "Hello laptop"), ("client-1", "Hello phone")])


class TestRelayAsDefaultAgent(ReplyCase):
    overrides = {"channel": {"send_as_employee": False}}

    def test_send_as_employee_off_uses_the_default_agent(self):
        self.fakes.employee_comment(self.task, text="From the team")
        self.planfix_hook()
        [send] = self.wait_chatra()
        self.assertEqual(send["body"], {"clientId": "client-1", "text": "From the team", "agentId": DEFAULT_AGENT_ID})


class TestRelayEmployeeWithoutAgent(ReplyCase):
    overrides = {"employees": [{"name": "Anna Smirnova", "email": "anna@example.com", "tracker_user": "user:5"},
                               dict(BORIS)]}

    def test_an_employee_without_chatra_agent_id_is_sent_with_her_email_and_name(self):
        # Issue 10, point 4: Chatra finds the agent by e-mail (the default agent is for
        # send_as_employee off).
        self.fakes.employee_comment(self.task, text="From Anna")
        self.planfix_hook()
        [send] = self.wait_chatra()
        self.assertEqual(send["body"], {"clientId": "client-1", "text": "From Anna", "agentEmail": "anna@example.com",
                                        "agentName": "Anna Smirnova", "receivedFrom": "Planfix"})


class TestPlanfixWebhookRequests(ReplyCase):
    def test_unknown_task_is_200_and_nothing_happens(self):
        self.fakes.employee_comment(self.task, text="a reply nobody asked for yet")
        before = self.pf_calls()
        for task in (99999, "12345"):
            self.planfix_hook(task=task)
        self.assert_quiet()
        self.assertEqual(self.pf_calls(), before)
        self.assertEqual(self.chatra_calls(), [])

    def test_wrong_secret_is_401(self):
        for secret in ("wrong-secret-wrong", PLANFIX_WEBHOOK_SECRET[:-1], PLANFIX_WEBHOOK_SECRET + "0"):
            status, body = self.bridge.post_planfix(self.task, secret=secret)
            self.assertEqual(status, 401, body)
        self.fakes.employee_comment(self.task, text="not yet")
        self.assert_quiet()
        self.assertEqual(self.comment_lists(), [])
        self.assertEqual(self.chatra_calls(), [])

    def test_missing_or_invalid_task_is_400(self):
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        cases = [
            ("json without task", {}, None),
            ("json task not a number", {"task": "abc"}, None),
            ("json negative", {"task": -5}, None),
            ("json null", {"task": None}, None),
            ("form without task", "other=1", form),
            ("form task empty", "task=", form),
            ("form task not a number", "task=12x", form),
        ]
        for name, body, headers in cases:
            with self.subTest(name):
                r = self.bridge.post(planfix_path(), body, headers)
                self.assertEqual(r.status, 400, r.body)
                self.assertIn("error", r.json())
        self.assert_quiet()
        self.assertEqual(self.comment_lists(), [])

    def test_empty_body_without_a_valid_task_is_400(self):
        for name, query in (("no task at all", ""), ("query not a number", "?task=12x")):
            with self.subTest(name):
                status, body = raw_post(self.bridge, planfix_path() + query, b"")
                self.assertEqual(status, 400, body)
                self.assertIn("error", json.loads(body))
        self.assert_quiet()
        self.assertEqual(self.comment_lists(), [])


def planfix_path(secret=PLANFIX_WEBHOOK_SECRET):
    return "/webhooks/planfix/%s" % urllib.parse.quote(secret)


def raw_post(bridge, path, body, headers=None):
    """POST with an explicit Content-Length (0 for an empty body); returns (status, body text).
    A response whose body is shorter than its Content-Length fails the test."""
    conn = http.client.HTTPConnection("127.0.0.1", bridge.port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=dict(headers or {}, **{"Content-Length": str(len(body))}))
        r = conn.getresponse()
        try:
            data = r.read()
        except http.client.IncompleteRead as e:
            raise AssertionError("HTTP %d answer to POST %s with Content-Length %d: body truncated, "
                                 "Content-Length %s but got %r" % (r.status, path.split("?")[0][:18] + "...",
                                                                   len(body), r.getheader("Content-Length"),
                                                                   e.partial)) from None
        return r.status, data.decode("utf-8", "replace")
    finally:
        conn.close()


if __name__ == "__main__":
    unittest.main()
