"""Issue 15, point 3: a poll that costs nothing when nothing happens.  The safety-net poll of
Planfix runs only while some conversation's task is open and was active in the last hour; it
backs off while reply webhooks arrive (each poll that found nothing they had not brought doubles
the interval, up to 16 x poll_interval_s) and comes back to poll_interval_s when it finds a reply
no webhook brought.  Here poll_interval_s is 1 s."""

import os
import sys
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import assert_stays, chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

POLL = "/rest/comment/list"


class TestPollIdle(E2ECase):
    def polls(self):
        return self.pf(POLL, "POST")

    def assert_no_poll(self, duration):
        n = len(self.polls())
        assert_stays(lambda: len(self.polls()) == n, duration,
                     message=lambda: "polled while nothing was open: %d poll(s)" % (len(self.polls()) - n))

    def wait_polls(self, count, timeout=10):
        return wait_until(lambda: (lambda p: p if len(p) >= count else None)(self.polls()), timeout,
                          message=lambda: "fewer than %d polls; planfix saw %s" % (count, self.pf_calls()))

    def wait_sent(self, count, timeout=10):
        return wait_until(lambda: (lambda s: s if len(s) >= count else None)(
            self.fakes.chatra_requests(path="/messages/")), timeout,
            message=lambda: "fewer than %d replies in the chat; polls at %s" % (
                count, [round(p["time"] % 100, 1) for p in self.polls()]))

    def test_an_idle_bridge_never_polls(self):
        self.start_bridge(tracker={"poll_interval_s": 1})
        # Five checks, and no chat: not one request to Planfix.
        assert_stays(lambda: self.fakes.planfix_requests() == [], 5.0,
                     message=lambda: "an idle bridge asked Planfix: %s" % self.pf_calls())

    def test_poll_interval_0_keeps_the_poll_off_with_an_open_task(self):
        self.start_bridge(tracker={"poll_interval_s": 0})
        self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        self.assert_no_poll(3.0)

    def test_the_poll_runs_while_a_task_is_open_and_stops_when_it_is_closed(self):
        self.start_bridge(tracker={"poll_interval_s": 1})
        self.assert_no_poll(2.5)
        task, _ = self.open_chat("client-1", email="maria@example.org")
        # No webhook has come: the poll runs every second while the chat is active.
        self.wait_polls(3)
        # The visitor leaves: the task is completed and the poll stops.
        self.post(chat_event("chatTranscript", "client-1", [msg("client-1-m1", "Hello, is the blue kettle in stock?")],
                             email="maria@example.org"))
        self.wait_pf("/rest/task/%d" % task)
        self.wait_idle()
        self.assert_no_poll(4.0)
        self.assertIn("poll: paused: no task is open", self.bridge.log())
        # A reply to the completed task whose webhook was lost is read by the next poll, when a
        # new chat makes the poll run again: it starts where the last poll ended.
        last = self.polls()[-1]["time"]
        self.fakes.employee_comment(task, text="Sorry, one more thing about your order")
        self.assert_no_poll(2.0)
        self.open_chat("client-2", messages=[msg("client-2-m1", "Another question")], email="ivan@example.org")
        sent = self.wait_sent(1)
        self.assertEqual(sent[0]["body"]["text"], "Sorry, one more thing about your order")
        self.assertEqual(sent[0]["body"]["clientId"], "client-1")
        resumed = [p for p in self.polls() if p["time"] > last][0]
        lo, _ = self.read_window(resumed)
        self.assertLessEqual(lo, last)

    def read_window(self, poll):
        """The poll's date filter [lo, hi] in epoch seconds (the fake is at UTC)."""
        [flt] = poll["body"]["filters"]
        v = flt["value"]

        def read(s):
            return time.mktime(time.strptime(s, "%d-%m-%Y %H:%M")) - time.timezone

        return read(v["dateFrom"]), read(v["dateTo"]) + 59

    def test_a_restart_with_an_open_task_polls_again(self):
        self.start_bridge(tracker={"poll_interval_s": 1})
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.wait_polls(1)
        self.assertEqual(self.bridge.stop(), 0)
        self.fakes.employee_comment(task, text="Written while the bridge was down")
        n = len(self.polls())
        self.bridge.start()
        self.wait_polls(n + 1)
        self.assertEqual(self.wait_sent(1)[0]["body"]["text"], "Written while the bridge was down")

    def test_the_interval_backs_off_while_webhooks_bring_the_replies(self):
        self.start_bridge(tracker={"poll_interval_s": 1})
        task, _ = self.open_chat("client-1", email="maria@example.org")
        first = self.wait_polls(1)[0]["time"]
        # A reply comes with its webhook: relayed once, by the webhook's read.
        self.fakes.employee_comment(task, text="Reply by webhook")
        self.assertEqual(self.bridge.post_planfix(task)[0], 200)
        relayed = self.wait_sent(1)[0]
        self.assertEqual(relayed["body"]["text"], "Reply by webhook")

        # Webhooks keep coming (Planfix calls for every change of the task): each poll finds
        # nothing they had not brought, and the next one waits twice as long, 2, 4, then 8 s.
        def webhook_then_backed_off():
            self.assertEqual(self.bridge.post_planfix(task)[0], 200)
            return "poll: every 8 s" in self.bridge.log()
        wait_until(webhook_then_backed_off, timeout=40, interval=0.5,
                   message=lambda: "no back-off; polls at %s" % [round(p["time"] - first, 1) for p in self.polls()])
        polls = [p["time"] for p in self.polls() if p["time"] > relayed["time"]]
        gaps = [round(b - a, 1) for a, b in zip(polls, polls[1:])]
        # A poll every second would have been twelve or more; backing off, at most five.
        self.assertLessEqual(len(polls), 5, gaps)
        self.assertTrue(any(g >= 3.0 for g in gaps), gaps)

        # A reply whose webhook was lost is still relayed by the poll, which then runs every
        # poll_interval_s again.
        self.fakes.employee_comment(task, text="Lost webhook")
        sent = self.wait_sent(2, timeout=40)
        self.assertEqual(sent[1]["body"]["text"], "Lost webhook")
        wait_until(lambda: "poll: every 1 s" in self.bridge.log().split("reading them")[-1], timeout=10,
                   message="the interval did not come back to poll_interval_s")
        self.wait_idle()
        self.assertEqual([s["body"]["text"] for s in self.fakes.chatra_requests(path="/messages/")],
                         ["Reply by webhook", "Lost webhook"])

if __name__ == "__main__":
    unittest.main()
