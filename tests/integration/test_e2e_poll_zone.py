"""Issue 10, point 8 (second half): the poll's date filter is built in the zone Planfix reads it in
(the API user's: tracker.timezone, or learned from the dateTime of Planfix's own answers), so a
reply whose webhook never came is found by the next poll, not hours later or never.  The fake
Planfix runs at UTC+3 and at UTC-5; no test here sends a Planfix webhook."""

import calendar
import os
import sys
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import PLANFIX_TOKEN, http, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

HOUR = 3600


def read_window(poll, offset_min):
    """[lo, hi] epoch seconds: the poll's date filter as a Planfix offset_min east of UTC reads it."""
    [flt] = poll["body"]["filters"]
    v = flt["value"]

    def read(s):
        return calendar.timegm(time.strptime(s, "%d-%m-%Y %H:%M")) - offset_min * 60

    return read(v["dateFrom"]), read(v["dateTo"]) + 59


def span(poll):
    lo, hi = read_window(poll, 0)
    return hi - lo


class ZoneCase(E2ECase):
    OFFSET_MIN = 0  # the fake's zone, minutes east of UTC

    def polls(self):
        return self.pf("/comment/list", "POST")

    def assert_covers(self, poll):
        """The poll's window, as the fake reads it, covers the ten minutes before it was sent."""
        lo, hi = read_window(poll, self.OFFSET_MIN)
        self.assertLessEqual(lo, poll["time"] - 600, poll["body"])
        self.assertGreaterEqual(hi, poll["time"], poll["body"])

    def wait_narrow_polls(self, count=1, limit=3 * HOUR):
        """Waits for count polls after the first whose filter spans less than limit; returns the last."""
        def narrow():
            ps = [p for p in self.polls()[1:] if span(p) < limit]
            return ps[count - 1] if len(ps) >= count else None
        return wait_until(narrow, timeout=15, message=lambda: "no narrowed poll: %s"
                          % [p["body"]["filters"][0]["value"] for p in self.polls()])

    def reply_by_poll(self, task, text, n):
        """An employee comment without a webhook reaches the chat as its n-th message."""
        self.fakes.employee_comment(task, owner="user:5", name="Anna", text=text)
        sends = wait_until(lambda: (lambda s: s if len(s) >= n else None)(
            self.fakes.chatra_requests(path="/messages/")), timeout=20,
            message=lambda: "%r never reached the chat; polls: %s" % (
                text, [p["body"]["filters"][0]["value"] for p in self.polls()]))
        self.assertEqual(sends[n - 1]["body"]["text"], text)

    def assert_sent_once(self, texts):
        self.wait_idle()
        n = len(self.polls())
        wait_until(lambda: len(self.polls()) >= n + 2, timeout=10)
        self.wait_idle()
        self.assertEqual([r["body"]["text"] for r in self.fakes.chatra_requests(path="/messages/")], texts)

    def test_replies_without_webhook_are_found_by_the_poll(self):
        self.start_bridge(tracker={"poll_interval_s": 1})
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.reply_by_poll(task, "Found by polling", 1)
        # Nothing was known before: the first poll spanned every zone.
        first = self.polls()[0]
        self.assertGreaterEqual(span(first), 26 * HOUR)
        self.assert_covers(first)
        # The comment's dateTime taught the zone: later polls are built in it.
        self.assert_covers(self.wait_narrow_polls())
        self.reply_by_poll(task, "Found again", 2)
        self.assert_sent_once(["Found by polling", "Found again"])
        sign = "+" if self.OFFSET_MIN >= 0 else "-"
        self.assertIn("clock is at UTC%s%02d:%02d" % (sign, abs(self.OFFSET_MIN) // 60, abs(self.OFFSET_MIN) % 60),
                      self.bridge.log())


class TestPollAtUtcPlus3(ZoneCase):
    OFFSET_MIN = 180
    fakes_options = {"planfix_utc_offset_min": 180}

    def test_tracker_timezone_works_from_the_first_poll(self):
        self.start_bridge(tracker={"poll_interval_s": 1, "timezone": "Europe/Moscow"})
        # The poll runs once a chat's task is open (test_e2e_poll_idle.py).
        task, _ = self.open_chat("client-1", email="maria@example.org")
        first = self.fakes.wait_requests("planfix", method="POST", path="/comment/list")[0]
        self.assertLess(span(first), 30 * 60)
        self.assert_covers(first)
        self.reply_by_poll(task, "Found at once", 1)
        self.assertTrue(all(span(p) < 30 * 60 for p in self.polls()))
        for p in self.polls():
            self.assert_covers(p)

    def test_a_poll_over_every_zone_reads_one_page(self):
        # A busy day in Planfix: 250 comments of 14 to 10 hours ago, on a task that is no chat's.
        other = http("POST", self.fakes.planfix_url + "/task/", {"name": "Not a chat"},
                     {"Authorization": "Bearer " + PLANFIX_TOKEN}).json()["id"]
        now = time.time()
        for i in range(250):
            self.fakes.employee_comment(other, text="old %d" % i, at=now - 14 * HOUR + i * 60)
        self.fakes.clear_requests()
        self.start_bridge(tracker={"poll_interval_s": 1})
        self.open_chat("client-1", email="maria@example.org")
        wait_until(lambda: len(self.polls()) >= 3, timeout=10)
        polls = self.polls()
        self.assertGreaterEqual(span(polls[0]), 26 * HOUR)
        # Newest first, the first page already ends before the window: no second page.
        self.assertEqual([p["body"]["offset"] for p in polls], [0] * len(polls))
        self.assertEqual(polls[0]["body"]["resultOrder"], [{"field": "dateTime", "direction": "Desc"}])
        # Its dates taught the zone.
        self.assertLess(span(polls[1]), 3 * HOUR)
        self.assert_covers(polls[1])
        self.assertEqual(self.fakes.chatra_requests(path="/messages/"), [])

    def test_the_learned_zone_survives_a_restart(self):
        self.start_bridge(tracker={"poll_interval_s": 1})
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.reply_by_poll(task, "Found by polling", 1)
        # The poll after a narrowed one has stored what the narrowed one was built from.
        self.wait_narrow_polls(2)
        self.assertEqual(self.bridge.stop(), 0)
        n = len(self.polls())
        self.bridge.start()
        first = wait_until(lambda: self.polls()[n] if len(self.polls()) > n else None, timeout=10)
        self.assertLess(span(first), 3 * HOUR)
        self.assert_covers(first)
        self.reply_by_poll(task, "After the restart", 2)

    def test_a_dst_change_is_followed(self):
        self.start_bridge(tracker={"poll_interval_s": 1})
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.reply_by_poll(task, "Summer", 1)
        self.wait_narrow_polls()
        # The clocks go back an hour: the offset learned in summer is an hour ahead now.
        self.fakes.settings("planfix", utc_offset_min=120)
        self.reply_by_poll(task, "Winter", 2)
        wait_until(lambda: "clock is at UTC+02:00" in self.bridge.log(), timeout=10)
        # And forward again: the offset learned in winter is an hour behind.
        self.fakes.settings("planfix", utc_offset_min=180)
        self.reply_by_poll(task, "Summer again", 3)
        wait_until(lambda: self.bridge.log().count("clock is at UTC+03:00") >= 2, timeout=10)
        self.assert_sent_once(["Summer", "Winter", "Summer again"])


class TestPollAtUtcMinus5(ZoneCase):
    OFFSET_MIN = -300
    fakes_options = {"planfix_utc_offset_min": -300}


del ZoneCase  # its test runs in the subclasses only

if __name__ == "__main__":
    unittest.main()
