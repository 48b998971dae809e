"""Issue "never lose a message, never flood the tracker", behaviour 1: a hundred chats at once
never push the tracker past its requests per second (the fake answers 429 past it and counts)."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg  # noqa: E402
from e2e import E2ECase  # noqa: E402

CHATS = 100


class TestRateLimit(E2ECase):
    fakes_options = {"planfix_rps": 20}

    def test_a_hundred_chats_at_once_stay_within_the_budget(self):
        self.start_bridge(tracker={"requests_per_second": 20})
        for i in range(CHATS):
            self.post(chat_event("chatStarted", "visitor-%03d" % i, [msg("m%d" % i, "hello %d" % i)],
                                 email="v%03d@example.org" % i))
        self.wait_task(CHATS, timeout=60)
        self.wait_idle(timeout=60)
        stats = self.fakes.stats("planfix")
        self.assertEqual(stats["violations"], 0, stats)
        # lookup + contact + task per chat, nothing more and nothing retried
        self.assertEqual(stats["requests"], 3 * CHATS)


if __name__ == "__main__":
    unittest.main()
