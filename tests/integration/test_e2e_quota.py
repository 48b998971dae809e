"""Issue 15, point 1: the tracker's daily budget.

  - the bridge counts its requests to the tracker per UTC day in the store: /healthz, /metrics and
    the admin overview show the count, and a restart (a clean stop, or a crash once the count was
    written) goes on from it;
  - tracker.daily_quota: Planfix's default is 20,000; 0 means no daily limit (no quota shown);
  - when the day's count reaches the quota the tracker is held until the day ends (one warning
    line saying until when), jobs wait, and at the next day everything goes on, nothing lost
    (the day shortened to 30 s with BR_BUDGET_DAY_S, the benchmark's scenario clock);
  - a reload that raises the quota lifts the hold;
  - check-config refuses a negative or a non-integer quota with a clear line;
  - the requests of each hour are kept too, and the days before shape the day's projection (a
    bridge that sent 100 requests an hour yesterday projects the rest of today at that, not at
    the pace of its last, quiet hour);
  - the benchmark's scenario day may begin at a given moment (BR_BUDGET_DAY_FROM_MS): days are
    counted from it, for the count, the hours and the days before.
"""

import os
import re
import signal
import sqlite3
import sys
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import apply_overrides, assert_stays, chat_event, msg, now_ms, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

DAY_S = 30
HOLD_LINE = re.compile(r"tracker: (\d+) request\(s\) today reach tracker\.daily_quota \((\d+)\): nothing more goes "
                       r"to Planfix until the day ends, at (\S+) \(in (\d+) s\); jobs wait")


class QuotaReads:
    """What /healthz and /metrics say of the tracker (also for test_e2e_quota_readme)."""

    def tracker(self):
        up = self.health()["engine"]["upstreams"][0]
        self.assertEqual(up["name"], "tracker")
        return up

    def metrics(self):
        """The samples of /metrics without labels, by name."""
        r = self.bridge.get("/metrics")
        self.assertEqual(r.status, 200)
        out = {}
        for line in r.body.splitlines():
            m = re.match(r"^([a-z_]+) (\S+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out


class TestQuota(QuotaReads, E2ECase):
    def stored_today(self):
        """The count the store holds for today (read beside the running bridge)."""
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.bridge.tmpdir, "bridge.db"), uri=True)
        try:
            row = db.execute("SELECT requests FROM tracker_usage WHERE day=?",
                             (now_ms() // 86400000,)).fetchone()
            return row[0] if row else 0
        finally:
            db.close()

    def check_config(self, **tracker):
        self.bridge.config = apply_overrides(self.config, {"tracker": tracker})
        self.bridge.write_config()
        return self.bridge.run("check-config", "--config", self.bridge.config_path)

    def hup(self):
        loaded = self.bridge.log().count("reload: config %s loaded" % self.bridge.config_path)
        self.bridge.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.bridge.log().count("reload: config %s loaded" % self.bridge.config_path) > loaded,
                   message=lambda: "no reload; log:\n%s" % self.bridge.log_tail(20))

    def test_count_survives_a_restart_and_a_crash(self):
        self.start_bridge()
        self.open_chat("client-1", email="maria@example.org")
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "second")], email="maria@example.org"))
        self.wait_comment_posts(100, 1)
        self.wait_idle()
        sent = len(self.pf())
        self.assertGreaterEqual(sent, 4)
        quota = self.tracker()["quota"]
        # Planfix's default quota; left is the fake's own X-RateLimit-Remaining.
        self.assertEqual(quota, {"daily": 20000, "used_today": sent, "left": 20000 - sent})
        m = self.metrics()
        self.assertEqual(m["chatra_bridge_tracker_requests_today"], sent)
        self.assertEqual(m["chatra_bridge_tracker_daily_quota"], 20000)
        self.assertGreaterEqual(m["chatra_bridge_tracker_requests_projected"], sent)

        # A clean stop and a start: the count goes on.
        self.assertEqual(self.bridge.stop(), 0)
        self.assertEqual(self.stored_today(), sent)
        self.bridge.start()
        self.assertEqual(self.tracker()["quota"]["used_today"], sent)
        self.assertEqual(self.metrics()["chatra_bridge_tracker_requests_today"], sent)
        self.post(chat_event("chatFragment", "client-1", [msg("m3", "third")], email="maria@example.org"))
        self.wait_comment_posts(100, 2)
        self.wait_idle()
        sent = len(self.pf())
        wait_until(lambda: self.tracker()["quota"]["used_today"] == sent or None)

        # A crash once the count is in the store (at most a second after the last request).
        wait_until(lambda: self.stored_today() == sent or None, message="the count never reached the store")
        self.bridge.kill()
        self.bridge.start()
        self.assertEqual(self.tracker()["quota"]["used_today"], sent)
        self.assertEqual(self.metrics()["chatra_bridge_tracker_requests_today"], sent)

    def hours_stored(self, day):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.bridge.tmpdir, "bridge.db"), uri=True)
        try:
            return dict(db.execute("SELECT hour, requests FROM tracker_usage_hours WHERE day=?", (day,)).fetchall())
        finally:
            db.close()

    def test_the_days_before_shape_the_projection(self):
        # The test's days are UTC days: not across a midnight.
        to_midnight = 86400 - (now_ms() % 86400000) / 1000.0
        if to_midnight < 120:
            time.sleep(to_midnight + 1)
        self.start_bridge()
        self.assertEqual(self.bridge.stop(), 0)
        # Yesterday: 100 requests in every hour (2,400), as an earlier run of the bridge kept them.
        today = now_ms() // 86400000
        db = sqlite3.connect(os.path.join(self.bridge.tmpdir, "bridge.db"))
        with db:
            db.executemany("INSERT INTO tracker_usage_hours(day, hour, requests) VALUES(?,?,100)",
                           [(today - 1, h) for h in range(24)])
            db.execute("INSERT INTO tracker_usage(day, requests) VALUES(?, 2400)", (today - 1,))
        db.close()
        self.bridge.start()
        m = self.metrics()
        left = 1 - (now_ms() % 86400000) / 86400000.0
        used = m["chatra_bridge_tracker_requests_today"]
        # The recent pace alone (nothing sent in the last hour) would project today's count alone.
        self.assertAlmostEqual(m["chatra_bridge_tracker_requests_projected"], used + 2400 * left,
                               delta=used + 10)

        # Today's requests go to the store by the hour they were sent in.
        self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        sent = self.tracker()["quota"]["used_today"]
        self.assertGreater(sent, 0)
        wait_until(lambda: sum(self.hours_stored(today).values()) == sent or None,
                   message=lambda: "hours stored: %r, sent %d" % (self.hours_stored(today), sent))
        self.assertIn((now_ms() % 86400000) // 3600000, self.hours_stored(today))

    def test_the_scenario_day_can_begin_at_a_given_moment(self):
        # The benchmark's clock: 40-minute days (100-second hours) beginning where
        # BR_BUDGET_DAY_FROM_MS says, so that now is 12:00 of day 1.
        day_s, hour_ms = 2400, 100000
        origin = now_ms() - (day_s + day_s // 2) * 1000
        self.bridge.env["BR_BUDGET_DAY_S"] = str(day_s)
        self.bridge.env["BR_BUDGET_DAY_FROM_MS"] = str(origin)
        self.start_bridge()
        self.assertEqual(self.bridge.stop(), 0)
        # Day 0 (counted from the origin, not from 1970): 100 requests in every hour.
        db = sqlite3.connect(os.path.join(self.bridge.tmpdir, "bridge.db"))
        with db:
            db.executemany("INSERT INTO tracker_usage_hours(day, hour, requests) VALUES(0,?,100)",
                           [(h,) for h in range(24)])
            db.execute("INSERT INTO tracker_usage(day, requests) VALUES(0, 2400)")
        db.close()
        self.bridge.start()
        m = self.metrics()
        left = 1 - ((now_ms() - origin) % (day_s * 1000)) / (day_s * 1000.0)
        used = m["chatra_bridge_tracker_requests_today"]
        # Day 0 is the day before: the rest of today is projected at its shape (about 1,200).
        # Days counted from 1970 would find no day before and project today's count alone.
        self.assertAlmostEqual(m["chatra_bridge_tracker_requests_projected"], used + 2400 * left, delta=used + 10)

        # Today's requests go to day 1, by the hour of the scenario day they were sent in.
        self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        sent = self.tracker()["quota"]["used_today"]
        self.assertGreater(sent, 0)
        wait_until(lambda: sum(self.hours_stored(1).values()) == sent or None,
                   message=lambda: "hours stored: %r, sent %d" % (self.hours_stored(1), sent))
        hour_now = (now_ms() - origin) % (day_s * 1000) // hour_ms
        self.assertTrue(set(self.hours_stored(1)) <= {12, 13, hour_now}, self.hours_stored(1))
        self.assertEqual(self.hours_stored(0), {h: 100 for h in range(24)})

    def test_no_daily_limit(self):
        self.start_bridge(tracker={"daily_quota": 0})
        self.open_chat("client-1")
        self.wait_idle()
        sent = len(self.pf())
        quota = self.tracker()["quota"]
        # No quota of its own: left is only what the tracker says.
        self.assertEqual(quota, {"daily": None, "used_today": sent, "left": 20000 - sent})
        m = self.metrics()
        self.assertEqual(m["chatra_bridge_tracker_requests_today"], sent)
        self.assertNotIn("chatra_bridge_tracker_daily_quota", m)
        self.assertIn("# TYPE chatra_bridge_tracker_daily_quota gauge", self.bridge.get("/metrics").body)
        self.assertEqual(self.tracker()["state"], "ok")
        self.assertNotIn("reach tracker.daily_quota", self.bridge.log())

    def test_spent_quota_holds_the_tracker_until_the_next_day(self):
        # A 30 s day: start early in one, so that what follows happens before it ends.
        self.bridge.env["BR_BUDGET_DAY_S"] = str(DAY_S)
        wait_until(lambda: now_ms() % (DAY_S * 1000) < 5000, timeout=DAY_S + 5)
        self.start_bridge(tracker={"daily_quota": 2})
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello, is the blue kettle in stock?")],
                             email="maria@example.org"))
        wait_until(lambda: self.tracker()["state"] == "paused" or None)
        # The contact was looked up and made; the task waits for the next day.
        self.assertEqual(self.pf_calls(), ["POST /rest/contact/list", "POST /rest/contact/"])
        up = self.tracker()
        self.assertEqual(up["quota"]["daily"], 2)
        self.assertEqual(up["quota"]["used_today"], 2)
        day_end = (now_ms() // (DAY_S * 1000) + 1) * DAY_S * 1000
        self.assertEqual(up["paused_until"], day_end)
        [line] = [m for m in HOLD_LINE.finditer(self.bridge.log())]
        self.assertEqual((line.group(1), line.group(2)), ("2", "2"))
        self.assertLessEqual(int(line.group(4)), DAY_S)
        m = self.metrics()
        self.assertEqual(m["chatra_bridge_tracker_requests_today"], 2)
        self.assertEqual(m["chatra_bridge_tracker_daily_quota"], 2)
        self.assertIn('chatra_bridge_upstream_paused{upstream="tracker"} 1', self.bridge.get("/metrics").body)
        # A message while held is stored and waits too; nothing goes to Planfix.
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "still there?")], email="maria@example.org"))
        assert_stays(lambda: len(self.pf()) == 2, duration=1.0, message="Planfix got a request while held")
        self.assertEqual(self.health()["engine"]["jobs"]["dead"], 0)

        # The next day: the task goes, once, with both messages (the one that waited with it is in
        # its description), nothing lost.
        self.wait_task(1, timeout=DAY_S + 15)
        self.wait_idle()
        self.assertEqual(self.pf_calls(), ["POST /rest/contact/list", "POST /rest/contact/", "POST /rest/task/"])
        description = self.fakes.planfix_task(100)["description"]
        self.assertIn("Hello, is the blue kettle in stock?", description)
        self.assertIn("still there?", description)
        self.assertIn("tracker: a new day: requests go to Planfix again", self.bridge.log())
        self.assertEqual(self.tracker()["quota"]["used_today"], 1)
        self.assertEqual(self.tracker()["state"], "ok")
        # The day goes on counting: a third message is a comment, the quota's second request today.
        self.post(chat_event("chatFragment", "client-1", [msg("m3", "hello?")], email="maria@example.org"))
        self.wait_comment_posts(100, 1)
        self.assertEqual(self.comment_texts(100), ["hello?"])
        self.assertEqual(self.health()["engine"]["jobs"]["dead"], 0)

    def test_reload_raising_the_quota_lifts_the_hold(self):
        self.start_bridge(tracker={"daily_quota": 2})
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="maria@example.org"))
        wait_until(lambda: self.tracker()["state"] == "paused" or None)
        # The hold begins as the second request leaves: the fake may not have logged it yet.
        wait_until(lambda: len(self.pf()) == 2 or None, message=lambda: self.pf())
        self.assertEqual(self.tracker()["quota"], {"daily": 2, "used_today": 2, "left": 19998})
        # Held until midnight UTC.
        self.assertEqual(self.tracker()["paused_until"], (now_ms() // 86400000 + 1) * 86400000)
        # A reload with the same quota changes nothing.
        self.hup()
        assert_stays(lambda: len(self.pf()) == 2, duration=0.5)
        self.bridge.config = self.config = apply_overrides(self.config, {"tracker": {"daily_quota": 5}})
        self.bridge.write_config()
        self.hup()
        self.wait_task(1)
        self.wait_idle()
        self.assertEqual(self.tracker()["state"], "ok")
        self.assertEqual(self.tracker()["quota"]["daily"], 5)
        self.assertIn("reload: tracker.daily_quota 2 -> 5", self.bridge.log())
        self.assertIn("tracker: tracker.daily_quota (5) is above today's 2 request(s): requests go on",
                      self.bridge.log())
        # Lowered below today's count: held again at once.
        self.bridge.config = self.config = apply_overrides(self.config, {"tracker": {"daily_quota": 1}})
        self.bridge.write_config()
        self.hup()
        wait_until(lambda: self.tracker()["state"] == "paused" or None)
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "later")], email="maria@example.org"))
        assert_stays(lambda: len(self.pf()) == 3, duration=0.5)
        self.assertEqual(len(HOLD_LINE.findall(self.bridge.log())), 2)

    def test_check_config_refuses_a_bad_quota(self):
        out = self.check_config(daily_quota=-1)
        self.assertEqual(out.returncode, 1)
        self.assertIn("tracker.daily_quota: must be between 0 and 10000000", out.stderr)
        out = self.check_config(daily_quota="20000")
        self.assertEqual(out.returncode, 1)
        self.assertIn("tracker.daily_quota: must be an integer", out.stderr)
        out = self.check_config(daily_quota=1.5)
        self.assertEqual(out.returncode, 1)
        self.assertIn("tracker.daily_quota: must be an integer", out.stderr)
        out = self.check_config(daily_quota=10000001)
        self.assertEqual(out.returncode, 1)
        out = self.check_config(daily_quota=100000)
        self.assertEqual(out.returncode, 0, out.stderr)
        out = self.check_config(daily_quota=0)
        self.assertEqual(out.returncode, 0, out.stderr)


if __name__ == "__main__":
    unittest.main()
