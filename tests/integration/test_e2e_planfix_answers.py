"""Issue 10, point 8 (first half): Planfix's failures read right.  A {"result":"fail"} whose code
Planfix does not document as a validation error (1001, 2001, 5001...) is retried with the usual
backoff, at most 5 attempts in all, before it becomes a dead letter; validation errors and a 4xx
that is not Planfix's answer stay dead letters at once."""

import json
import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

ATTEMPTS = 5  # UNKNOWN_CODE_ATTEMPTS in bridge/trackers/planfix_call.c, named in the README


class TestUnknownCodes(E2ECase):
    def cli(self, *args):
        return self.bridge.run(args[0], "--config", self.bridge.config_path, *args[1:])

    def test_code_1001_once_then_the_task_is_made_once(self):
        self.start_bridge()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "fail_in_2xx", "code": 1001}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="maria@example.org"))
        [task] = self.wait_task(1, timeout=20)
        self.wait_idle(timeout=20)
        creates = self.pf("/task/", "POST")
        self.assertEqual([r["fault"] for r in creates], ["fail_in_2xx", None])
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(self.dead_jobs(), 0)
        # The retry looked for the task before it wrote again (the failed request may have gone through).
        self.assertIn("POST /rest/task/list", self.pf_calls())
        self.assertIn("Hello", task["description"])

    def test_an_unknown_code_in_a_4xx_on_a_comment_then_the_comment_is_made_once(self):
        self.start_bridge()
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/$" % task, "action": "status",
                                       "status": 400, "times": 2,
                                       "body": {"result": "fail", "code": 2001, "error": "Rest API error"}}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "still there?")], email="maria@example.org"))
        wait_until(lambda: len(self.fakes.planfix_comments(task)) == 1 or None, timeout=20,
                   message=lambda: "no comment; planfix saw %s" % self.pf_calls())
        self.wait_idle(timeout=20)
        self.assertEqual([r["fault"] for r in self.comment_posts(task)], ["status", "status", None])
        self.assertEqual([c["description"] for c in self.fakes.planfix_comments(task)], ["still there?"])
        self.assertEqual(self.dead_jobs(), 0)
        self.assertIn("code 2001", self.bridge.log())

    def test_code_1001_every_time_is_a_dead_letter_after_5_attempts(self):
        self.start_bridge()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "fail_in_2xx", "code": 1001,
                                       "error": "Task add error", "times": 100}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="maria@example.org"))
        # Backoff 1, 2, 4, 8 s (each with jitter down to half): the fifth attempt comes within ~15 s.
        wait_until(lambda: self.dead_jobs() == 1 or None, timeout=40,
                   message=lambda: "no dead letter; planfix saw %s" % self.pf_calls())
        creates = self.pf("/task/", "POST")
        self.assertEqual(len(creates), ATTEMPTS)
        gaps = [b["time"] - a["time"] for a, b in zip(creates, creates[1:])]
        self.assertTrue(all(g >= 0.5 for g in gaps), gaps)  # backoff, never a storm
        self.assertEqual(self.fakes.planfix_tasks(), [])
        [dead] = json.loads(self.cli("dead-letters").stdout)
        self.assertEqual((dead["kind"], dead["attempts"]), ("task", ATTEMPTS))
        self.assertIn("code 1001", dead["error"])
        self.assertIn("Task add error", dead["error"])
        self.assertTrue(dead["request"].startswith("POST /task/ "), dead["request"])
        self.assertTrue(dead["response"].startswith("200 "), dead["response"])
        # A dead letter stays one: nothing more is tried.
        self.assert_no_new_requests(duration=2.5)
        self.assertEqual(len(self.pf("/task/", "POST")), ATTEMPTS)

    def test_validation_codes_and_a_bare_4xx_stay_dead_letters_at_once(self):
        self.start_bridge()
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        path = "POST /rest/task/%d/comments/$" % task
        self.fakes.faults("planfix", [{"match": path, "action": "fail_in_2xx", "code": 40}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "one")], email="maria@example.org"))
        wait_until(lambda: self.dead_jobs() == 1 or None, timeout=10)
        self.assertEqual(len(self.comment_posts(task)), 1)
        # A 4xx without Planfix's answer (a proxy's page): the request itself is wrong.
        out = self.cli("retry", "--all")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.fakes.faults("planfix", [{"match": path, "action": "status", "status": 404,
                                       "body": "<html>Not Found</html>"}])
        wait_until(lambda: len(self.comment_posts(task)) == 2 or None, timeout=10)
        wait_until(lambda: self.dead_jobs() == 1 or None, timeout=10)
        self.assert_no_new_requests(duration=1.5)
        self.assertEqual(len(self.comment_posts(task)), 2)
        [dead] = json.loads(self.cli("dead-letters").stdout)
        self.assertTrue(dead["response"].startswith("404 "), dead["response"])


if __name__ == "__main__":
    unittest.main()
