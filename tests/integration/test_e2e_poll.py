"""Issue "never lose a message, never flood the tracker", behaviour 4: a poll asks Planfix for
comments added since the last poll, so a reply whose webhook never came still reaches the chat."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

PF_DATE = r"^\d\d-\d\d-\d{4} \d\d:\d\d$"


class TestPoll(E2ECase):
    def test_a_reply_without_webhook_reaches_the_chat_once(self):
        self.start_bridge(tracker={"poll_interval_s": 1})
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.fakes.employee_comment(task, owner="user:5", name="Anna", text="Found it by polling")
        sends = wait_until(lambda: self.fakes.chatra_requests(path="/messages/") or None, timeout=10,
                           message="the reply never reached the chat")
        self.assertEqual(sends[0]["body"]["text"], "Found it by polling")
        poll = self.pf("/rest/comment/list")[0]["body"]
        [flt] = poll["filters"]
        self.assertEqual((flt["type"], flt["operator"], flt["value"]["dateType"]),
                         (3000, "equal", "otherRange_withTime"))
        self.assertRegex(flt["value"]["dateFrom"], PF_DATE)
        self.assertRegex(flt["value"]["dateTo"], PF_DATE)
        self.assertEqual(poll["pageSize"], 100)
        # The late webhook, and later polls, relay nothing twice.
        self.bridge.post_planfix(task)
        wait_until(lambda: len(self.pf("/rest/comment/list")) >= 3, timeout=10)
        self.wait_idle()
        self.assertEqual(len(self.fakes.chatra_requests(path="/messages/")), 1)

    def test_polls_stay_within_the_rate_limit(self):
        self.fakes.settings("planfix", rps=20)
        self.start_bridge(tracker={"poll_interval_s": 1})
        self.open_chat("client-1", email="maria@example.org")
        wait_until(lambda: len(self.pf("/rest/comment/list")) >= 2, timeout=10)
        self.assertEqual(self.fakes.stats("planfix")["violations"], 0)


if __name__ == "__main__":
    unittest.main()
