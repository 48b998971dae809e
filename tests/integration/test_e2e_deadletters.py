"""Issue "never lose a message, never flood the tracker", behaviours 1 and 5: dead letters can be
listed and put back; a daily quota that is gone pauses the tracker, visibly."""

import json
import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import assert_stays, chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402


class TestDeadLetters(E2ECase):
    def cli(self, *args):
        return self.bridge.run(args[0], "--config", self.bridge.config_path, *args[1:])

    def test_list_and_retry(self):
        self.start_bridge()
        task, contact = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "fail_in_2xx",
                                       "code": 41}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "lost for now")], email="maria@example.org"))
        wait_until(lambda: self.health()["engine"]["jobs"]["dead"] == 1 or None)
        out = self.cli("dead-letters")
        self.assertEqual(out.returncode, 0, out.stderr)
        [dead] = json.loads(out.stdout)
        self.assertEqual((dead["kind"], dead["attempts"]), ("comment", 0))
        self.assertIn("code 41", dead["error"])
        self.assertTrue(dead["request"].startswith("POST /task/%d/comments/ " % task))
        self.assertIn("lost for now", dead["request"])
        self.assertTrue(dead["response"].startswith("200 "))
        self.assertRegex(dead["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # Not retried by itself.
        self.assert_quiet()
        self.assertEqual(len(self.comment_posts(task)), 1)
        # Put back: the comment arrives, once.
        out = self.cli("retry", "--id", str(dead["id"]))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("1 job back in the queue", out.stdout)
        wait_until(lambda: len(self.fakes.planfix_comments(task)) == 1 or None)
        self.assert_quiet()
        self.assertEqual([c["description"] for c in self.fakes.planfix_comments(task)], ["lost for now"])
        self.assertEqual(json.loads(self.cli("dead-letters").stdout), [])
        out = self.cli("retry", "--id", str(dead["id"]))
        self.assertEqual(out.returncode, 1)
        self.assertIn("is not a dead letter", out.stderr)
        self.assertEqual(self.cli("retry", "--all").returncode, 0)
        self.assertEqual(self.cli("retry").returncode, 2)

    def test_quota_gone_pauses_the_tracker_and_shows_it(self):
        self.start_bridge()
        self.fakes.faults("planfix", [{"match": "POST /rest/contact/", "action": "fail_in_2xx", "code": 22}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        wait_until(lambda: self.health()["engine"]["upstreams"][0]["paused_until"] > 0 or None)
        up = self.health()["engine"]["upstreams"][0]
        self.assertEqual(up["name"], "tracker")
        self.assertIn("upstream tracker: paused for", self.bridge.log())
        # Paused: nothing more is sent for now, and the job waits (it is not dead).
        before = len(self.fakes.planfix_requests())
        assert_stays(lambda: len(self.fakes.planfix_requests()) == before, duration=1.0,
                     message="the tracker got requests while its quota was gone")
        self.assertEqual(self.health()["engine"]["jobs"]["dead"], 0)


if __name__ == "__main__":
    unittest.main()
