"""The tracker's budget as the README states it (tracker.daily_quota, coalesce_ms, coalesce_max_s,
poll_interval_s, channels[].mirror_agent_messages; Reload; the daily quota in "When something goes
wrong"; the quota in /healthz, /metrics and /admin/api/overview), against the daemon, with the fake
Planfix and with a real Redmine.  Each test names the README claim it checks."""

import os
import re
import signal
import sqlite3
import sys
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import ANNA, apply_overrides, assert_stays, chat_event, msg, now_ms, wait_until  # noqa: E402
from admin import BEARER, AdminCase  # noqa: E402
from test_e2e_redmine import RedmineCase  # noqa: E402
from redmine_proxy import RedmineProxy  # noqa: E402
from test_e2e_quota import QuotaReads  # noqa: E402

HOLD_LINE = re.compile(r"tracker: (\d+) request\(s\) today reach tracker\.daily_quota \((\d+)\): nothing more goes "
                       r"to (\w+) until the day ends, at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) \(in (\d+) s\); jobs wait")
DAY_MS = 86400000


def midnight_utc():
    return (now_ms() // DAY_MS + 1) * DAY_MS


class BudgetMixin(QuotaReads):
    """What the three places (/healthz, /metrics, /admin/api/overview) say of the tracker."""

    def chat_near_the_quota(self, **tracker):
        """A chat at noon of a scenario day against a quota of 5: today's projection passes it."""
        self.at_noon_of_a_scenario_day()
        self.start_admin(tracker=dict({"daily_quota": 5, "requests_per_second": 20}, **tracker))
        self.open_chat("client-1")
        self.wait_idle()

    def at_noon_of_a_scenario_day(self):
        """A whole-day projection needs half a day ahead, whatever the hour of the real clock: the
        benchmark's scenario clock (a 40-minute day, 100-second hours) starts the bridge at 12:00
        of its day 1."""
        day_s = 2400
        self.bridge.env["BR_BUDGET_DAY_S"] = str(day_s)
        self.bridge.env["BR_BUDGET_DAY_FROM_MS"] = str(now_ms() - (day_s + day_s // 2) * 1000)

    def overview_tracker(self):
        r = self.bridge.get("/admin/api/overview", BEARER)
        self.assertEqual(r.status, 200, r.body)
        [up] = [u for u in r.json()["upstreams"] if u["name"] == "tracker"]
        return up

    def hup(self):
        loaded = self.bridge.log().count("reload: config %s loaded" % self.bridge.config_path)
        self.bridge.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.bridge.log().count("reload: config %s loaded" % self.bridge.config_path) > loaded,
                   message=lambda: "no reload; log:\n%s" % self.bridge.log_tail(20))

    def rewrite(self, **overrides):
        self.bridge.config = self.config = apply_overrides(self.config, overrides)
        self.bridge.write_config()

    def jobs(self):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.bridge.tmpdir, "bridge.db"), uri=True)
        try:
            return db.execute("SELECT kind, state, attempts FROM jobs ORDER BY id").fetchall()
        finally:
            db.close()


class TestPlanfixBudget(BudgetMixin, AdminCase):
    def check_config(self, tracker=None, channel=None):
        cfg = apply_overrides(self.config, {"tracker": tracker or {}, "channel": channel or {}})
        self.bridge.config = cfg
        self.bridge.write_config()
        return self.bridge.run("check-config", "--config", self.bridge.config_path)

    # --- defaults ----------------------------------------------------------------------------

    def test_planfix_defaults_when_the_keys_are_left_out(self):
        # README: daily_quota default 20000 for Planfix; coalesce_ms default 2000;
        # requests_per_second default 1 (Planfix).
        for k in ("poll_interval_s", "coalesce_ms", "requests_per_second"):
            self.config["tracker"].pop(k, None)
        self.start_admin()
        self.assertEqual(self.tracker()["quota"], {"daily": 20000, "used_today": 0, "left": 20000})
        m = self.metrics()
        self.assertEqual(m["chatra_bridge_tracker_daily_quota"], 20000)
        self.assertEqual(m["chatra_bridge_tracker_requests_today"], 0)
        self.assertNotIn("chatra_bridge_tracker_quota_left", m)      # absent until an answer tells it
        self.assertEqual(m["chatra_bridge_coalesce_wait_seconds"], 2.0)
        up = self.overview_tracker()
        self.assertEqual(up["quota"], {"daily": 20000, "used_today": 0, "left": 20000})
        self.assertEqual(up["coalesce_wait_ms"], 2000)
        self.assertEqual(up["requests_per_second"], 1.0)

    def test_mirror_agent_messages_default_is_its_own_comment_by_the_employee(self):
        # README: mirror_agent_messages "comment" (default: its own comment, written as the employee).
        self.start_admin(tracker={"requests_per_second": 5})
        self.assertNotIn("mirror_agent_messages", self.config["channels"][0])
        task, contact = self.open_chat("client-1")
        self.wait_idle(timeout=15)
        self.post(chat_event("chatFragment", "client-1", [
            msg("q1", "first"), msg("a1", "answer", type="agent", agent_id=ANNA["chatra_agent_id"]),
            msg("q2", "third")]))
        self.wait_comment_posts(task, 3, timeout=15)
        self.assert_quiet()
        self.assertEqual([(p["body"]["description"], p["body"].get("owner")) for p in self.comment_posts(task)],
                         [("first", {"id": contact}), ("answer", {"id": "user:5"}), ("third", {"id": contact})])

    # --- check-config --------------------------------------------------------------------------

    def test_check_config_bounds_of_the_budget_settings(self):
        # README: daily_quota "at most 10000000" (10000000 itself is allowed).
        r = self.check_config({"daily_quota": 10000000})
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.check_config({"daily_quota": 10000001})
        self.assertEqual(r.returncode, 1)
        self.assertIn("tracker.daily_quota: must be between 0 and 10000000", r.stderr)
        # README: coalesce_max_s "0 = never longer than coalesce_ms; otherwise at least coalesce_ms".
        r = self.check_config({"coalesce_ms": 60000, "coalesce_max_s": 0})
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.check_config({"coalesce_ms": 5000, "coalesce_max_s": 5})
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.check_config({"coalesce_ms": 5000, "coalesce_max_s": 4})
        self.assertEqual(r.returncode, 1)
        self.assertIn("tracker.coalesce_max_s: is 4 s, shorter than coalesce_ms (5000 ms)", r.stderr)
        # With coalesce_ms left at its default (2000 ms), 1 s is shorter.
        cfg = dict(self.config["tracker"])
        cfg.pop("coalesce_ms")
        self.config["tracker"] = cfg
        r = self.check_config({"coalesce_max_s": 1})
        self.assertEqual(r.returncode, 1)
        self.assertIn("tracker.coalesce_max_s: is 1 s, shorter than coalesce_ms (2000 ms)", r.stderr)
        # mirror_agent_messages: one of three words.
        r = self.check_config(channel={"mirror_agent_messages": "yes"})
        self.assertEqual(r.returncode, 1)
        self.assertIn('channels[0].mirror_agent_messages: must be "comment", "with_visitor" or "off"', r.stderr)
        # poll_interval_s 0 is "off" for Planfix.
        r = self.check_config({"poll_interval_s": 0})
        self.assertEqual(r.returncode, 0, r.stderr)

    # --- the hold ------------------------------------------------------------------------------

    def hold_at_2(self, **tracker):
        self.start_admin(tracker=dict({"daily_quota": 2}, **tracker))
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="maria@example.org"))
        wait_until(lambda: self.tracker()["state"] == "paused" or None)
        self.assertEqual(len(self.pf()), 2)

    def test_the_hold_is_logged_once_and_shown_everywhere(self):
        # README: "the log says once `tracker: N request(s) today reach ...`", /healthz shows the
        # tracker paused until 00:00 UTC; degraded; the overview shows the quota.
        self.hold_at_2()
        assert_stays(lambda: len(self.pf()) == 2, duration=2.0)
        self.hup()              # the same quota: nothing changes
        assert_stays(lambda: len(self.pf()) == 2, duration=1.0)
        lines = HOLD_LINE.findall(self.bridge.log())
        self.assertEqual(len(lines), 1, lines)
        used, quota, label, at, in_s = lines[0]
        self.assertEqual((used, quota, label), ("2", "2", "Planfix"))
        self.assertEqual(at, time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(midnight_utc() / 1000)))
        self.assertAlmostEqual(int(in_s), (midnight_utc() - now_ms()) / 1000, delta=10)
        h = self.health()
        self.assertEqual(h["status"], "degraded")
        self.assertEqual(h["engine"]["upstreams"][0]["paused_until"], midnight_utc())
        up = self.overview_tracker()
        self.assertEqual(up["state"], "paused")
        self.assertEqual(up["paused_until"], midnight_utc())
        self.assertEqual(up["quota"]["daily"], 2)
        self.assertEqual(up["quota"]["used_today"], 2)
        m = self.metrics()
        self.assertEqual(m["chatra_bridge_tracker_requests_today"], 2)
        self.assertEqual(m["chatra_bridge_tracker_daily_quota"], 2)
        self.assertEqual(self.dead_jobs(), 0)

    def test_jobs_held_by_the_quota_count_no_attempt(self):
        # README: "The jobs wait in the queue (no attempt counted, nothing lost)".
        self.hold_at_2()
        time.sleep(1.5)
        waiting = [j for j in self.jobs() if j[1] != 2]
        self.assertTrue(waiting, self.jobs())
        self.assertEqual([j[2] for j in waiting], [0] * len(waiting), self.jobs())
        self.rewrite(tracker={"daily_quota": 10})
        self.hup()
        self.wait_task(1)
        self.wait_idle()
        self.assertEqual(self.dead_jobs(), 0)
        # The task job went through with no attempt counted against it (attempts count failures).
        self.assertIn(("task", 2, 0), self.jobs())

    def test_reload_to_0_lifts_the_hold(self):
        # README: "0 = no daily limit"; a reload's daily_quota applies (a quota above today's count
        # ends the wait at once: no limit is above any count).
        self.hold_at_2()
        self.rewrite(tracker={"daily_quota": 0})
        self.hup()
        self.wait_task(1)
        self.wait_idle()
        up = self.tracker()
        self.assertEqual(up["state"], "ok")
        self.assertEqual(up["paused_until"], 0)
        self.assertIsNone(up["quota"]["daily"])
        self.assertEqual(up["quota"]["used_today"], 3)
        self.assertNotIn("chatra_bridge_tracker_daily_quota", self.metrics())
        self.assertIsNone(self.overview_tracker()["quota"]["daily"])
        self.assertIn("reload: tracker.daily_quota 2 -> 0", self.bridge.log())

    def test_reload_without_the_key_goes_back_to_the_default(self):
        # README: default 20000 for Planfix: a config without daily_quota, reloaded, has 20000.
        self.hold_at_2()
        del self.config["tracker"]["daily_quota"]
        self.bridge.write_config()
        self.hup()
        self.wait_task(1)
        self.wait_idle()
        self.assertEqual(self.tracker()["quota"]["daily"], 20000)
        self.assertEqual(self.tracker()["state"], "ok")

    def test_reload_lowering_the_quota_to_todays_count_holds(self):
        # README: "one below it starts it" (and "when today's reach this it sends nothing more").
        self.start_admin(tracker={"daily_quota": 100})
        self.open_chat("client-1")
        self.wait_idle()
        sent = len(self.pf())
        self.rewrite(tracker={"daily_quota": sent - 1})
        self.hup()
        wait_until(lambda: self.tracker()["state"] == "paused" or None)
        self.assertEqual(self.tracker()["paused_until"], midnight_utc())
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "later")]))
        assert_stays(lambda: len(self.pf()) == sent, duration=1.0)
        self.assertEqual(len(HOLD_LINE.findall(self.bridge.log())), 1)

    def test_reload_keeps_todays_count_and_a_429_pause(self):
        # README: "the tracker's pauses and today's count go on" over a reload.
        self.start_admin(tracker={"daily_quota": 100})
        self.open_chat("client-1")
        self.wait_idle()
        sent = len(self.pf())
        self.fakes.faults("planfix", [{"match": "POST /rest/task/100/comments/", "action": "status",
                                       "status": 429, "headers": {"Retry-After": "30"}}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "later")]))
        wait_until(lambda: self.tracker()["state"] == "paused" or None)
        until = self.tracker()["paused_until"]
        self.rewrite(tracker={"daily_quota": 200})
        self.hup()
        up = self.tracker()
        self.assertEqual(up["quota"]["used_today"], sent + 1)
        self.assertEqual(up["state"], "paused")
        self.assertEqual(up["paused_until"], until)

    def test_a_restart_on_a_spent_day_stays_held(self):
        # README: "a restart goes on counting" and the quota holds until 00:00 UTC.
        self.hold_at_2()
        self.assertEqual(self.bridge.stop(), 0)
        self.bridge.start()
        up = self.tracker()
        self.assertEqual(up["quota"]["used_today"], 2)
        self.assertEqual(up["state"], "paused")
        self.assertEqual(up["paused_until"], midnight_utc())
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "still there?")], email="maria@example.org"))
        assert_stays(lambda: len(self.pf()) == 2, duration=1.5, message=lambda: "sent: %s" % self.pf_calls())
        self.assertEqual(self.dead_jobs(), 0)

    def test_a_restart_on_a_spent_day_goes_on_at_the_next_day(self):
        # README: the count survives a restart, the hold lasts until the day ends, then the jobs go on
        # (`tracker: a new day: requests go to Planfix again`), nothing lost.  A 30 s day.
        day_s = 30
        self.bridge.env["BR_BUDGET_DAY_S"] = str(day_s)
        wait_until(lambda: now_ms() % (day_s * 1000) < 4000, timeout=day_s + 5)
        self.hold_at_2()
        self.assertEqual(self.bridge.stop(), 0)
        self.bridge.start()
        self.assertEqual(self.tracker()["quota"]["used_today"], 2)
        self.assertEqual(self.tracker()["state"], "paused")
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "still there?")], email="maria@example.org"))
        self.wait_task(1, timeout=day_s + 15)
        self.wait_idle()
        self.assertIn("tracker: a new day: requests go to Planfix again", self.bridge.log())
        description = self.fakes.planfix_task(100)["description"]
        self.assertIn("Hello", description)
        self.assertIn("still there?", description)
        self.assertEqual(self.tracker()["quota"]["used_today"], 1)
        self.assertEqual(self.dead_jobs(), 0)

    # --- the wait and the quota ---------------------------------------------------------------

    def test_the_wait_widens_to_coalesce_max_s_as_the_projection_reaches_the_quota(self):
        # README Batching: "from 80% of the daily quota projected for today to 100%, evenly, up to
        # the full coalesce_max_s (when the bridge knows the quota)".
        self.chat_near_the_quota(coalesce_ms=1000, coalesce_max_s=30)
        m = wait_until(lambda: (lambda m: m if m["chatra_bridge_coalesce_wait_seconds"] >= 30 else None)(
            self.metrics()), timeout=5, message=lambda: "metrics: %s" % self.metrics())
        self.assertGreaterEqual(m["chatra_bridge_tracker_requests_projected"], 5)
        self.assertEqual(m["chatra_bridge_coalesce_wait_seconds"], 30)
        self.assertEqual(self.overview_tracker()["coalesce_wait_ms"], 30000)

    def test_coalesce_max_0_keeps_coalesce_ms_even_near_the_quota(self):
        # README: "coalesce_max_s: 0 keeps coalesce_ms always".
        self.chat_near_the_quota(coalesce_ms=1000, coalesce_max_s=0)
        for _ in range(3):
            time.sleep(0.6)
            self.assertEqual(self.metrics()["chatra_bridge_coalesce_wait_seconds"], 1.0)
            self.assertEqual(self.overview_tracker()["coalesce_wait_ms"], 1000)

    def test_coalesce_ms_0_sends_at_once_even_near_the_quota(self):
        # README: "coalesce_ms: 0 sends every message at once, always".
        self.chat_near_the_quota(coalesce_ms=0, coalesce_max_s=30)
        time.sleep(1.2)
        self.assertEqual(self.metrics()["chatra_bridge_coalesce_wait_seconds"], 0.0)
        self.assertEqual(self.overview_tracker()["coalesce_wait_ms"], 0)

    def test_the_wait_ramps_evenly_from_80_to_100_percent_of_the_quota(self):
        # README Batching: "from 80% of the daily quota projected for today to 100%, evenly, up to the
        # full coalesce_max_s".  The quota is set by a reload so that the projection is about 90% of it.
        self.at_noon_of_a_scenario_day()
        self.start_admin(tracker={"daily_quota": 100000, "coalesce_ms": 1000, "coalesce_max_s": 101,
                                  "requests_per_second": 20})
        self.open_chat("client-1")
        self.wait_idle()
        projected = self.metrics()["chatra_bridge_tracker_requests_projected"]
        quota = int(round(projected / 0.9))
        self.rewrite(tracker={"daily_quota": quota})
        self.hup()
        time.sleep(1.3)     # the wait is worked out once a second
        m = self.metrics()
        share = m["chatra_bridge_tracker_requests_projected"] / quota
        self.assertTrue(0.85 < share < 0.95, share)
        expected = 1 + (101 - 1) * (share - 0.8) / 0.2
        self.assertAlmostEqual(m["chatra_bridge_coalesce_wait_seconds"], expected, delta=2.5)

    def test_a_reload_changes_coalesce_max_s(self):
        # README Reload: tracker settings take effect for new work; coalesce_max_s 0 keeps coalesce_ms.
        self.chat_near_the_quota(coalesce_ms=1000, coalesce_max_s=30)
        wait_until(lambda: self.metrics()["chatra_bridge_coalesce_wait_seconds"] == 30 or None, timeout=5)
        self.rewrite(tracker={"coalesce_max_s": 0})
        self.hup()
        wait_until(lambda: self.metrics()["chatra_bridge_coalesce_wait_seconds"] == 1 or None, timeout=5)
        self.assertEqual(self.overview_tracker()["coalesce_wait_ms"], 1000)

    def test_a_reload_with_a_bad_quota_is_refused_and_the_hold_stays(self):
        # README Reload: "A config with problems is refused as a whole: the log shows the lines
        # check-config prints, then `reload refused: ...`".
        self.hold_at_2()
        for bad, words in ((-1, "must be between 0 and 10000000"), (10000001, "must be between 0 and 10000000"),
                           ("5", "must be an integer")):
            refused = self.bridge.log().count("reload refused:")
            self.rewrite(tracker={"daily_quota": bad})
            self.bridge.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: self.bridge.log().count("reload refused:") > refused or None)
            self.assertIn("tracker.daily_quota: %s" % words, self.bridge.log())
            up = self.tracker()
            self.assertEqual(up["quota"]["daily"], 2)
            self.assertEqual(up["state"], "paused")
        assert_stays(lambda: len(self.pf()) == 2, duration=0.5)

    def test_projection_without_days_before_uses_the_pace_since_the_hour_of_the_first_request(self):
        # README Batching: a bridge with no request in the 7 days before "projects today's count, plus
        # the pace of the last hour over the next hour, plus the pace since the start of the hour of
        # today's first request (the day is counted in whole hours; at least an hour back) over the
        # rest of the day".  The benchmark's scenario clock (8-minute days, 20-second hours) puts
        # now 15 s into hour 12, so that the first request is well into its hour.
        day_s, hour_ms = 480, 20000
        origin = now_ms() - (day_s + 12 * 20 + 15) * 1000
        self.bridge.env["BR_BUDGET_DAY_S"] = str(day_s)
        self.bridge.env["BR_BUDGET_DAY_FROM_MS"] = str(origin)
        self.start_admin()
        self.open_chat("client-1")
        self.wait_idle()
        first = int(self.pf()[0]["time"] * 1000)
        used = len(self.pf())
        # More than an hour (20 s) after the first request: the last hour's pace is 0.
        wait_until(lambda: now_ms() > first + hour_ms + 2000 or None, timeout=30, interval=0.2)
        before = now_ms()
        projected = self.metrics()["chatra_bridge_tracker_requests_projected"]
        after = now_ms()
        self.assertEqual(self.metrics()["chatra_bridge_tracker_requests_today"], used)
        day_end = origin + 2 * day_s * 1000
        hour_start = origin + day_s * 1000 + 12 * hour_ms

        def readme(now):   # the pace since the start of the first request's hour, after the next hour
            return used + used / (now - hour_start) * (day_end - now - hour_ms)

        def from_the_request(now):   # what a pace since the request itself would give (higher)
            return used + used / (now - first) * (day_end - now - hour_ms)
        lo, hi = sorted((readme(before), readme(after)))
        self.assertTrue(lo - 1 <= projected <= hi + 1,
                        "projected %.1f; the pace since the start of the first request's hour gives %.1f..%.1f; "
                        "since the request %.1f" % (projected, lo, hi, from_the_request(before)))


class TestRedmineBudget(BudgetMixin, RedmineCase):
    def start_rm(self, tracker=None, drop=(), **channel):
        """RedmineCase.start with the admin page on; drop: tracker keys left out of the config."""
        self.bridge.env["BR_ADMIN_TOKEN"] = "admin-token-0123456789-abcdef"
        self.config["admin"] = {"token": "env:BR_ADMIN_TOKEN"}
        real = self.bridge.start
        self.bridge.start = lambda: None
        try:
            self.start(tracker=tracker, **channel)
        finally:
            self.bridge.start = real
        for k in drop:
            self.config["tracker"].pop(k)
        return self.bridge.start()

    def test_redmine_defaults_when_the_keys_are_left_out(self):
        # README: daily_quota Redmine 0 (no daily limit: daily null, no gauge), requests_per_second
        # Redmine 5, poll_interval_s Redmine 10; quota_left absent (Redmine sends no
        # X-RateLimit-Remaining), quota.left null.
        self.start_rm(drop=("requests_per_second", "poll_interval_s"))
        self.open_chat("rm-audit-1", "Hello", email="audit1@example.org")
        up = self.tracker()
        self.assertIsNone(up["quota"]["daily"])
        self.assertIsNone(up["quota"]["left"])
        self.assertGreater(up["quota"]["used_today"], 0)
        m = self.metrics()
        self.assertNotIn("chatra_bridge_tracker_daily_quota", m)
        self.assertNotIn("chatra_bridge_tracker_quota_left", m)
        self.assertEqual(m["chatra_bridge_tracker_requests_today"], up["quota"]["used_today"])
        self.assertEqual(m["chatra_bridge_coalesce_wait_seconds"], 2.0)
        ov = self.overview_tracker()
        self.assertEqual(ov["kind"], "redmine")
        self.assertEqual(ov["requests_per_second"], 5.0)
        self.assertIsNone(ov["quota"]["daily"])
        self.assertIsNone(ov["quota"]["left"])
        line = wait_until(lambda: re.search(r"poll: every (\d+) s", self.bridge.log()), timeout=25)
        self.assertEqual(line.group(1), "10")

    def test_redmine_quota_holds_and_left_is_daily_minus_used(self):
        # README: left is "else daily minus used_today" (Redmine tells nothing); the quota holds
        # until 00:00 UTC, the log names the tracker; a reload raising it lifts the hold.
        self.start_rm(tracker={"daily_quota": 1})
        # The one request of the day makes the issue; the next message's note waits (and so do the polls).
        self.post(chat_event("chatStarted", "rm-audit-2", [msg("rm-audit-2-m1", "Hello")],
                             email="audit2@example.org"))
        [issue] = wait_until(lambda: self.issues() or None, timeout=15)
        wait_until(lambda: self.tracker()["state"] == "paused" or None, timeout=15)
        self.say("rm-audit-2", "rm-audit-2-m2", "second")
        assert_stays(lambda: self.notes(issue["id"]) == [], duration=2.5)
        up = self.tracker()
        self.assertEqual(up["quota"], {"daily": 1, "used_today": 1, "left": 0})
        self.assertEqual(up["paused_until"], midnight_utc())
        self.assertEqual(self.overview_tracker()["quota"], {"daily": 1, "used_today": 1, "left": 0})
        [line] = HOLD_LINE.findall(self.bridge.log())
        self.assertEqual(line[:3], ("1", "1", "Redmine"))
        m = self.metrics()
        self.assertEqual(m["chatra_bridge_tracker_daily_quota"], 1)
        self.assertEqual(m["chatra_bridge_tracker_requests_today"], 1)
        self.assertNotIn("chatra_bridge_tracker_quota_left", m)
        self.rewrite(tracker={"daily_quota": 1000})
        self.hup()
        self.wait_notes(issue["id"], 1)
        self.wait_idle(15)
        up = self.tracker()
        self.assertEqual(up["state"], "ok")
        self.assertEqual(up["quota"]["left"], 1000 - up["quota"]["used_today"])
        self.assertIn("tracker: tracker.daily_quota (1000) is above today's 1 request(s): requests go on",
                      self.bridge.log())

    def test_redmine_hold_ends_with_the_day(self):
        # README: nothing more goes to the tracker until the day ends, then
        # `tracker: a new day: requests go to Redmine again`; the note that waited arrives.  A 30 s day.
        day_s = 30
        self.bridge.env["BR_BUDGET_DAY_S"] = str(day_s)
        wait_until(lambda: now_ms() % (day_s * 1000) < 4000, timeout=day_s + 5)
        # No poll and no widened wait to take the next day's one request before the note.  The proxy
        # records what the bridge sends.
        proxy = RedmineProxy(self.rm.url)
        self.addCleanup(proxy.stop)
        self.start_rm(tracker={"daily_quota": 3, "poll_interval_s": 600, "coalesce_max_s": 0, "url": proxy.url})
        self.sent = lambda: ["%s %s %s" % (r["method"], r["path"], r["status"]) for r in proxy.requests]
        self.post(chat_event("chatStarted", "rm-audit-3", [msg("rm-audit-3-m1", "Hello")],
                             email="audit3@example.org"))
        [issue] = wait_until(lambda: self.issues() or None, timeout=15)
        self.say("rm-audit-3", "rm-audit-3-m2", "second")
        # The issue, the API key's user and the employee's look-up take the day's 3 requests; the note waits.
        wait_until(lambda: self.tracker()["state"] == "paused" or None, timeout=15)
        self.assertEqual(self.notes(issue["id"]), [])
        wait_until(lambda: self.notes(issue["id"]) or None, timeout=day_s + 15, interval=1,
                   message=lambda: "no note; the bridge sent: %s" % self.sent())
        self.assertIn("tracker: a new day: requests go to Redmine again", self.bridge.log())
        self.assertEqual(self.dead_jobs(), 0)

    def test_redmine_check_config_refuses_poll_0(self):
        self.config["tracker"] = {"kind": "redmine", "url": self.rm.url, "api_key": "env:REDMINE_API_KEY",
                                  "project": "chats", "poll_interval_s": 0}
        self.bridge.env["REDMINE_API_KEY"] = self.rm.admin_key
        self.bridge.write_config()
        r = self.bridge.run("check-config", "--config", self.bridge.config_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("tracker.poll_interval_s: must be 1 or more for Redmine", r.stderr)


if __name__ == "__main__":
    unittest.main()
