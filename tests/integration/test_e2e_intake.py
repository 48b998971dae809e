"""Issue behaviour 4: Chatra intake (POST /webhooks/chatra/<channel>/<secret>)."""

import json
import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import CHATRA_SHOP_WEBHOOK_SECRET, chat_event, msg, sample  # noqa: E402
from e2e import TASK_SOURCE_RE, E2ECase  # noqa: E402


class TestIntakeRejects(E2ECase):
    """Every refused webhook is answered at once and leads to no Planfix request."""

    def test_wrong_secret_is_401(self):
        self.start_bridge()
        ev = chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="a@example.org")
        for secret in ("wrong-secret-wrong-secret", CHATRA_SHOP_WEBHOOK_SECRET[:-1],
                       CHATRA_SHOP_WEBHOOK_SECRET + "x"):
            with self.subTest(secret=secret):
                status, body = self.bridge.post_chatra(ev, secret=secret)
                self.assertEqual(status, 401, body)
                self.assertIn("error", json.loads(body))
        self.assert_quiet()
        self.assertEqual(self.pf_calls(), [])
        self.assertEqual(self.health()["engine"]["inbox_pending"], 0)

    def test_unknown_channel_is_404(self):
        self.start_bridge()
        ev = chat_event("chatStarted", "client-1", [msg("m1", "Hello")])
        status, body = self.bridge.post_chatra(ev, channel="support")
        self.assertEqual(status, 404, body)
        # An unknown channel is 404 whatever the secret.
        status, body = self.bridge.post_chatra(ev, channel="support", secret="whatever-whatever")
        self.assertEqual(status, 404, body)
        self.assert_quiet()
        self.assertEqual(self.pf_calls(), [])

    def test_malformed_json_is_400_with_a_one_line_position(self):
        self.start_bridge()
        cases = [
            (b'{"eventName": "chatStarted", "client": {"id": "c1"', 1),
            (b'{\n  "eventName": "chatStarted",\n  "client": {"id": "c1",}\n}', 3),
            (b'{"eventName": "chatStarted"} trailing', 1),
        ]
        for raw, line in cases:
            with self.subTest(raw=raw):
                status, body = self.bridge.post_chatra(raw)
                self.assertEqual(status, 400, body)
                error = json.loads(body)["error"]
                self.assertRegex(error, r"^malformed JSON at line %d column \d+: \S" % line)
                self.assertNotIn("\n", error)
        self.assert_quiet()
        self.assertEqual(self.pf_calls(), [])

    def test_body_over_the_configured_limit_is_413(self):
        self.start_bridge(limits={"max_body_bytes": 4096})
        big = chat_event("chatStarted", "client-1", [msg("m1", "x" * 5000)])
        status, body = self.bridge.post_chatra(big)
        self.assertEqual(status, 413, body)
        self.assert_quiet()
        self.assertEqual(self.pf_calls(), [])
        # Just under the limit is accepted and processed.
        small = chat_event("chatStarted", "client-2", [msg("m1", "y" * 3000)])
        self.assertLess(len(json.dumps(small)), 4096)
        self.post(small)
        self.wait_pf("/rest/task/")

    def test_body_over_the_default_limit_of_1_mib_is_413(self):
        self.start_bridge()
        text = "z" * 60000
        big = chat_event("chatStarted", "client-1", [msg("m%d" % i, text) for i in range(20)])
        self.assertGreater(len(json.dumps(big)), 1024 * 1024)
        status, body = self.bridge.post_chatra(big)
        self.assertEqual(status, 413, body)
        self.assert_quiet()
        self.assertEqual(self.pf_calls(), [])

    def test_unknown_event_name_is_200_and_ignored(self):
        self.start_bridge()
        ev = chat_event("chatAssigned", "client-1", [msg("m1", "Hello")], email="a@example.org")
        self.post(ev)
        self.assert_quiet()
        self.assertEqual(self.pf_calls(), [])
        # The same client is still new afterwards: its first real event opens the task.
        self.post(chat_event("chatStarted", "client-1", [msg("m2", "Hi")]))
        self.wait_pf("/rest/task/")


class TestIntakeAccepts(E2ECase):
    def test_ok_answer_and_the_event_is_processed(self):
        self.start_bridge()
        status, body = self.bridge.post_chatra(sample("chat-started"))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"ok": True})
        task = self.wait_task()[0]
        self.assertIn("Hello! Is the blue kettle in stock?", task["description"])
        self.assertRegex(task["sourceObjectId"], TASK_SOURCE_RE)

    def test_trailing_slash_on_the_webhook_url_is_accepted(self):
        self.start_bridge()
        r = self.bridge.post("/webhooks/chatra/shop/%s/" % CHATRA_SHOP_WEBHOOK_SECRET,
                             chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        self.assertEqual(r.status, 200, r.body)
        self.wait_task()

    def test_fragment_without_event_name_opens_a_task(self):
        self.start_bridge()
        self.post(sample("fragment-without-event-name"))
        task = self.wait_task()[0]
        # No e-mail: no lookup; no name: the default contact name.
        self.assertEqual(self.pf_calls(), ["POST /rest/contact/", "POST /rest/task/"])
        self.assertEqual(self.contact_body(), {"template": {"id": 4}, "name": "Chat visitor"})
        self.assertIn("Did you receive my tracking number?", task["description"])
        self.assertIn("aC4krWMZWLYzz9sKZ", task["description"])
        self.assert_quiet()

    def test_fragment_without_event_name_for_a_known_visitor_becomes_a_comment(self):
        self.start_bridge()
        task, contact = self.open_chat("client-1")
        ev = chat_event(None, "client-1", [msg("m2", "Are you there?")])
        self.assertNotIn("eventName", ev)
        self.post(ev)
        posts = self.wait_comment_posts(task, 1)
        self.assertEqual(posts[0]["body"]["description"], "Are you there?")
        self.assertEqual(posts[0]["body"]["owner"], {"id": contact})
        self.assert_quiet()

    def test_events_of_other_visitors_do_not_mix(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-a", [msg("a1", "I am A")], email="a@example.org"))
        self.post(chat_event("chatStarted", "client-b", [msg("b1", "I am B")], email="b@example.org"))
        tasks = self.wait_task(2)
        self.wait_idle()
        self.assertEqual(len(self.fakes.planfix_tasks()), 2)
        self.assertEqual(len(self.fakes.planfix_contacts()), 2)
        by_text = {("I am A" in t["description"], "I am B" in t["description"]): t for t in tasks}
        self.assertEqual(set(by_text), {(True, False), (False, True)})
        self.assertNotEqual(tasks[0]["assigner"], tasks[1]["assigner"])


if __name__ == "__main__":
    unittest.main()
