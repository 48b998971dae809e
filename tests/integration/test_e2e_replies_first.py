"""Issue 15, "replies first": an employee's reply does not wait behind the visitor's comments.

Fifty comments wait for the tracker at its real pace; a Planfix webhook then announces a reply.
The task's comments are read within the next few tracker requests, the reply reaches the chat
while most of the comments still wait, every comment is still posted once and in order, and the
fake Planfix counts no request over its rate."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

T0 = 1763800000000
AGENT = "bnRzp4CioKudG4aHm"      # Anna's Chatra agent: her messages become comments by user:5
RPS = 2
COMMENTS = 50


def alternating(client, n, prefix):
    """n messages, visitor and agent in turn: each ends the other's run, so each is its own comment."""
    out = []
    for i in range(n):
        agent = i % 2 == 1
        out.append(msg("%s-%s-%d" % (client, prefix, i), "%s %d" % (prefix, i), type="agent" if agent else "client",
                       agent_id=AGENT if agent else None, created_at=T0 + i * 1000))
    return out


class TestRepliesFirst(E2ECase):
    fakes_options = {"planfix_rps": RPS}   # the fake answers 429 and counts a violation past RPS

    def setUp(self):
        super().setUp()
        self.start_bridge(tracker={"requests_per_second": RPS, "coalesce_ms": 0})

    def open(self, client):
        task, _ = self.open_chat(client, email="%s@example.org" % client)
        return task

    def reply_overtakes(self, task, client, waiting_tasks):
        """Announce Anna's reply on task while the comments of waiting_tasks wait; check it overtakes them."""
        self.fakes.employee_comment(task, owner="user:5", name="Anna", text="Yes, it is in stock.")
        before = len(self.fakes.planfix_requests())
        status, body = self.bridge.post_planfix(task)
        self.assertEqual(status, 200, body)
        [send] = self.wait_chatra(timeout=30)
        posted_at_reply = sum(len(self.comment_posts(t)) for t in waiting_tasks)
        self.assertEqual(send["body"]["clientId"], client)
        self.assertEqual(send["body"]["text"], "Yes, it is in stock.")
        # The comments read came within the first few tracker requests after the webhook: at most
        # the request in flight when it came and one that had already left.
        after = [r["path"] for r in self.fakes.planfix_requests()[before:]]
        listing = "/rest/task/%d/comments/list" % task
        self.assertIn(listing, after[:3], after[:6])
        # And the chat had it while most of the comments still waited.
        self.assertLess(posted_at_reply, COMMENTS // 2,
                        "the reply came after %d of %d comments" % (posted_at_reply, COMMENTS))
        return posted_at_reply

    def assert_all_posted_once(self, expected):
        """expected: {task: [message texts in order]}; waits for them, then checks nothing more comes."""
        def done():
            return all(len(self.comment_texts(t)) >= len(texts) for t, texts in expected.items())
        wait_until(done, timeout=COMMENTS / RPS * 2 + 30,
                   message=lambda: "comments missing: %s" % {t: len(self.comment_texts(t)) for t in expected})
        self.assert_quiet()
        for t, texts in expected.items():
            self.assertEqual(self.comment_texts(t), texts)
            self.assertEqual(len(self.comment_posts(t)), len(texts))
        # Anna's comments that the bridge wrote for her agent messages carry its key: never sent back.
        self.assertEqual(len(self.fakes.chatra_messages()), 1)
        self.assertEqual(self.dead_jobs(), 0)
        self.assertEqual(self.fakes.stats("planfix")["violations"], 0)

    def test_a_reply_overtakes_fifty_comments_of_other_conversations(self):
        replied = self.open("client-r")
        clients = ["client-%d" % i for i in range(5)]
        tasks = {c: self.open(c) for c in clients}
        self.wait_idle(timeout=30)
        # Fifty comments in five lanes: the tracker's depth is full and its queue holds more.
        for c in clients:
            self.post(chat_event("chatFragment", c, alternating(c, COMMENTS // len(clients), "line"),
                                 email="%s@example.org" % c))
        wait_until(lambda: sum(len(self.comment_posts(t)) for t in tasks.values()) >= 2, timeout=15)
        self.reply_overtakes(replied, "client-r", tasks.values())
        self.assert_all_posted_once({tasks[c]: ["line %d" % i for i in range(COMMENTS // len(clients))]
                                     for c in clients})

    def test_a_reply_overtakes_its_own_conversations_comments(self):
        task = self.open("client-1")
        self.wait_idle(timeout=15)
        # The same conversation: Planfix's fetch has a lane of its own, so it does not wait for them.
        self.post(chat_event("chatFragment", "client-1", alternating("client-1", COMMENTS, "line"),
                             email="client-1@example.org"))
        self.wait_comment_posts(task, 2, timeout=15)
        self.reply_overtakes(task, "client-1", [task])
        self.assert_all_posted_once({task: ["line %d" % i for i in range(COMMENTS)]})


if __name__ == "__main__":
    unittest.main()
