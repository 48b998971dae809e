"""Issue "never lose a message, never flood the tracker", behaviour 6: webhooks for many
conversations keep coming while the daemon is killed with SIGKILL at random moments and
restarted; in the end every acknowledged message is in the tracker exactly once and in order.
SIGTERM drains and exits 0."""

import os
import re
import random
import signal
import sys
import threading
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

CONVERSATIONS = int(os.environ.get("BR_CRASH_CONVERSATIONS", "40"))
WEBHOOKS = int(os.environ.get("BR_CRASH_WEBHOOKS", "2000"))
KILLS = int(os.environ.get("BR_CRASH_KILLS", "5"))


class TestCrashes(E2ECase):
    def test_random_sigkills_lose_and_repeat_nothing(self):
        self.crash_and_flood(CONVERSATIONS, WEBHOOKS, KILLS)

    def test_with_a_description_that_shows_no_message_and_an_outage(self):
        """Issue 10: with the admin's description that shows no message, every message typed
        before the task exists (Planfix down at first, then killed again and again) is a comment."""
        self.crash_and_flood(10, 300, 3, outage=True,
                             channel={"task": {"template_id": 12, "closed_status_id": 3,
                                               "description": "<p>{{visitor.name}}</p>"}})

    def crash_and_flood(self, conversations, webhooks, kills, outage=False, **overrides):
        CONVERSATIONS, WEBHOOKS, KILLS = conversations, webhooks, kills  # noqa: N806
        rnd = random.Random(int(os.environ.get("BR_CRASH_SEED", "20261122")))
        self.start_bridge(tracker={"requests_per_second": 200}, **overrides)
        if outage:
            self.fakes.faults("planfix", [{"action": "status", "status": 503, "times": 40}])
        acked = {c: [] for c in range(CONVERSATIONS)}
        sent = [0]
        done = threading.Event()

        def sender():
            counters = [0] * CONVERSATIONS
            for _ in range(WEBHOOKS):
                c = rnd.randrange(CONVERSATIONS)
                text = "c%02d-m%04d" % (c, counters[c])
                ev = chat_event("chatStarted" if counters[c] == 0 else "chatFragment", "visitor-%02d" % c,
                                [msg("c%02d-%04d" % (c, counters[c]), text)], name="Visitor %d" % c)
                counters[c] += 1
                for _attempt in range(200):
                    try:
                        status, _ = self.bridge.post_chatra(ev)
                    except Exception:
                        status = None
                    if status == 200:
                        acked[c].append(text)
                        break
                    time.sleep(0.02)   # the bridge is down: Chatra would retry, so do we
                sent[0] += 1
            done.set()

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        for _ in range(KILLS):
            time.sleep(rnd.uniform(0.3, 1.5))
            self.bridge.kill(signal.SIGKILL)
            time.sleep(rnd.uniform(0.0, 0.3))
            self.bridge.start()
        t.join(timeout=300)
        self.assertTrue(done.is_set(), "the sender did not finish")
        total = sum(len(v) for v in acked.values())
        self.assertEqual(total, WEBHOOKS)
        self.wait_idle(timeout=240)

        tasks = self.fakes.planfix_tasks()
        self.assertEqual(len(tasks), CONVERSATIONS, "one task per conversation, no duplicate")
        self.assertEqual(len([c for c in self.fakes.planfix_contacts() if not c.get("isDeleted")]), CONVERSATIONS)
        comments = {}
        for cm in self.fakes.planfix_comments():
            comments.setdefault(cm["task"], []).append(cm)
        for task in tasks:
            text = task["description"] + "".join(cm["description"] for cm in
                                                 sorted(comments.get(task["id"], []), key=lambda x: x["id"]))
            c = int(task["name"].split("Visitor ")[1].split(" ")[0])
            positions = []
            for m in acked[c]:
                n = len(re.findall(re.escape(m) + r"(?![0-9])", text))
                self.assertEqual(n, 1, "message %s is in task %d %d times" % (m, task["id"], n))
                positions.append(text.index(m))
            self.assertEqual(positions, sorted(positions), "messages of conversation %d out of order" % c)
        # SIGTERM drains and exits 0 (the base class asserts the exit code at tear-down).


if __name__ == "__main__":
    unittest.main()
