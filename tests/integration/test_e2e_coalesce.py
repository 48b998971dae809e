"""Issue "never lose a message, never flood the tracker", behaviour 3: visitor messages still
waiting for the tracker go as one comment, each on its own line with its time."""

import os
import sys
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase, split_coalesced  # noqa: E402

T0 = 1763800000000


class TestCoalescing(E2ECase):
    fakes_options = {"planfix_rps": 1}   # the fake answers 429 and counts a violation past 1 request/s

    def test_a_burst_of_ten_messages_costs_at_most_two_comment_requests(self):
        # The real Planfix budget: one request per second.
        self.start_bridge(tracker={"requests_per_second": 1})
        task, contact = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle(timeout=15)
        for i in range(10):
            self.post(chat_event("chatFragment", "client-1", [msg("b%d" % i, "burst %d" % i, created_at=T0 + i * 100)],
                                 email="maria@example.org"))
        texts = lambda: self.comment_texts(task)
        wait_until(lambda: len(texts()) == 10 or None, timeout=15,
                   message=lambda: "not all messages mirrored: %s" % texts())
        self.assert_quiet()
        posts = self.comment_posts(task)
        self.assertLessEqual(len(posts), 2)
        self.assertEqual(texts(), ["burst %d" % i for i in range(10)])
        for p in posts:
            self.assertEqual(p["body"]["owner"], {"id": contact})
        # Each coalesced line carries the message's time (UTC).
        many = [p["body"]["description"] for p in posts if len(split_coalesced(p["body"]["description"])) > 1]
        self.assertTrue(many)
        self.assertRegex(many[-1], r"^<i>\d\d:\d\d:\d\d</i> burst \d+(<br><i>\d\d:\d\d:\d\d</i> burst \d+)+$")
        self.assertEqual(self.fakes.stats("planfix")["violations"], 0)

    def test_an_agent_message_ends_the_run(self):
        self.start_bridge(tracker={"requests_per_second": 1})
        task, contact = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle(timeout=15)
        self.post(chat_event("chatFragment", "client-1", [
            msg("q1", "first", created_at=T0), msg("q2", "second", created_at=T0 + 1000),
            msg("a1", "answer", type="agent", agent_id="bnRzp4CioKudG4aHm", created_at=T0 + 2000),
            msg("q3", "third", created_at=T0 + 3000)], email="maria@example.org"))
        wait_until(lambda: len(self.comment_texts(task)) == 4 or None, timeout=15)
        self.assertEqual(self.fakes.stats("planfix")["violations"], 0)
        self.assert_quiet()
        self.assertEqual(self.comment_texts(task, owner=True), [
            ("first", {"id": contact}), ("second", {"id": contact}), ("answer", {"id": "user:5"}),
            ("third", {"id": contact})])
        self.assertEqual([p["body"]["description"] for p in self.comment_posts(task)],
                         ["<i>08:26:40</i> first<br><i>08:26:41</i> second", "answer", "third"])


    def test_messages_typed_within_the_wait_become_one_comment(self):
        # Even when the tracker is free, a visitor's message waits coalesce_ms for the next ones.
        self.start_bridge(tracker={"requests_per_second": 1, "coalesce_ms": 1500})
        task, contact = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle(timeout=15)
        for i in range(3):
            self.post(chat_event("chatFragment", "client-1", [msg("w%d" % i, "typed %d" % i, created_at=T0 + i * 300)],
                                 email="maria@example.org"))
            time.sleep(0.3)
        wait_until(lambda: len(self.comment_texts(task)) == 3 or None, timeout=15,
                   message=lambda: "not all messages mirrored: %s" % self.comment_texts(task))
        self.assert_quiet()
        [post] = self.comment_posts(task)
        self.assertEqual(split_coalesced(post["body"]["description"]), ["typed 0", "typed 1", "typed 2"])
        self.assertEqual(post["body"]["owner"], {"id": contact})


if __name__ == "__main__":
    unittest.main()
