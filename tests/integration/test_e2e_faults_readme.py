"""README.md's "When something goes wrong", "Logs" and "Health and metrics" against the running
daemon: the claims no other test file checks (each test quotes its README line).

/metrics is read with a small text-format reader of its own (no Prometheus parser needed).
"""

import json
import os
import re
import signal
import socket
import sys
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import (PLANFIX_TOKEN, assert_stays, chat_event, free_port,  # noqa: E402
                     msg, wait_until)
from e2e import E2ECase  # noqa: E402
from test_e2e_redmine import POLL_WAIT, RedmineCase  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {label: value}, float)] of every sample in a Prometheus text answer."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m is None:
            raise AssertionError("not a sample line: %r" % line)
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


class ReadmeCase(E2ECase):
    maxDiff = None

    def metrics(self):
        r = self.bridge.get("/metrics")
        self.assertEqual(r.status, 200, r.body)
        return parse_metrics(r.body)

    def metric(self, name, default=None, **labels):
        for n, ls, v in self.metrics():
            if n == name and ls == labels:
                return v
        return default

    def health_any(self):
        r = self.bridge.get("/healthz")
        return r.status, r.json()

    def upstream(self, name="tracker"):
        return [u for u in self.health_any()[1]["engine"]["upstreams"] if u["name"] == name][0]

    def cli(self, *args):
        return self.bridge.run(args[0], "--config", self.bridge.config_path, *args[1:])

    def hup(self):
        """SIGHUP, and wait for the reload's log line."""
        n = self.bridge.log().count("reload: config")
        self.bridge.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.bridge.log().count("reload: config") > n, 10,
                   message=lambda: "no reload; log:\n%s" % self.bridge.log_tail(20))

    def lines(self):
        return [line for line in self.bridge.log().splitlines() if line and not line.startswith("=== harness:")]

    def everything(self):
        """Every task description and comment Planfix holds, as one text."""
        return "\n".join([t["description"] for t in self.fakes.planfix_tasks()] +
                         [c["description"] for c in self.fakes.planfix_comments()])

    def assert_each_once(self, texts):
        text = self.everything()
        for t in texts:
            self.assertEqual(len(re.findall(re.escape(t) + r"(?![0-9])", text)), 1,
                             "%r should be in Planfix exactly once: %r" % (t, text))


# --- pauses: 429, X-RateLimit-Remaining: 0, code 22 ----------------------------------------------

class TestPauses(ReadmeCase):
    RETRY_AFTER = 4

    def pause_by_429(self):
        """Conversation A's comment gets a 429 with Retry-After; conversation B starts during the
        pause.  Returns (task A, time of the 429 answer, tracker wait seconds before)."""
        self.start_bridge()
        task, _ = self.open_chat("visitor-a", [msg("a1", "a-1 hello")], email="a@example.org")
        self.wait_idle()
        waited_before = self.metric("chatra_bridge_ratelimit_wait_seconds_total", 0.0, upstream="tracker")
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/$" % task, "action": "status",
                                       "status": 429, "headers": {"Retry-After": str(self.RETRY_AFTER)},
                                       "body": {"result": "fail", "error": "Too many requests"}}])
        self.post(chat_event("chatFragment", "visitor-a", [msg("a2", "a-2 rate limited")], email="a@example.org"))
        [first] = self.wait_comment_posts(task, 1)
        self.assertEqual(first["status"], 429)
        self.post(chat_event("chatStarted", "visitor-b", [msg("b1", "b-1 during the pause")], email="b@example.org"))
        return task, first["answered"], waited_before

    def test_a_429_pauses_the_whole_tracker_for_its_retry_after(self):
        """README: "a 429 pauses the whole upstream for its Retry-After ... /healthz shows
        paused_until ..., and the log says so"; `chatra_bridge_upstream_paused` "1 while paused"."""
        task, answered, _ = self.pause_by_429()
        up = self.upstream()
        self.assertEqual(up["state"], "paused")
        self.assertAlmostEqual(up["paused_until"] / 1000.0, answered + self.RETRY_AFTER, delta=1.0)
        self.assertEqual(self.health_any()[1]["status"], "degraded")
        self.assertEqual(self.metric("chatra_bridge_upstream_paused", upstream="tracker"), 1)
        wait_until(lambda: len(self.fakes.planfix_tasks()) == 2, 20, message=lambda: self.pf_calls())
        self.wait_idle(20)
        # Nothing (not B's lookup either) went to Planfix until the pause ended.
        later = [r for r in self.fakes.planfix_requests() if r["time"] > answered]
        self.assertTrue(later)
        self.assertGreaterEqual(min(r["time"] for r in later) - answered, self.RETRY_AFTER - 0.2,
                                [(r["path"], r["time"] - answered) for r in later])
        self.assertIn("upstream tracker: paused for %d s" % self.RETRY_AFTER, self.bridge.log())
        self.assertEqual(self.metric("chatra_bridge_upstream_paused", upstream="tracker"), 0)
        self.assertEqual(self.metric("chatra_bridge_upstream_requests_total", upstream="tracker", status="429"), 1)
        self.assert_each_once(["a-1 hello", "a-2 rate limited", "b-1 during the pause"])
        self.assertEqual(self.dead_jobs(), 0)

    def test_a_429_in_russian_loses_and_repeats_nothing(self):
        """The same pause with "language": "ru": every message once, nothing dead."""
        self.config["language"] = "ru"
        self.pause_by_429()
        wait_until(lambda: len(self.fakes.planfix_tasks()) == 2, 20, message=lambda: self.pf_calls())
        self.wait_idle(20)
        self.assert_each_once(["a-1 hello", "a-2 rate limited", "b-1 during the pause"])
        self.assertEqual(self.dead_jobs(), 0)

    def test_ratelimit_remaining_0_pauses_for_10_to_15_minutes(self):
        """README: "`X-RateLimit-Remaining: 0` ... pause it for 10-15 minutes. /healthz shows
        paused_until and quota_left, and the log says so"; webhooks are still taken, jobs wait."""
        self.start_bridge()
        self.fakes.settings("planfix", remaining=2)
        self.post(chat_event("chatStarted", "visitor-a", [msg("a1", "a-1 hello")], email="a@example.org"))
        wait_until(lambda: self.upstream()["state"] == "paused", 10, message=lambda: self.upstream())
        up = self.upstream()
        left_s = up["paused_until"] / 1000.0 - time.time()
        self.assertTrue(595 <= left_s <= 900, left_s)
        self.assertEqual(up["quota_left"], 0)
        self.assertEqual(up["quota"]["left"], 0)
        self.assertEqual(self.metric("chatra_bridge_tracker_quota_left"), 0)
        self.assertEqual(self.metric("chatra_bridge_upstream_paused", upstream="tracker"), 1)
        self.assertRegex(self.bridge.log(), r"warn upstream tracker: paused for (59\d|600) s")
        before = len(self.fakes.planfix_requests())
        self.post(chat_event("chatFragment", "visitor-a", [msg("a2", "a-2 while paused")], email="a@example.org"))
        assert_stays(lambda: len(self.fakes.planfix_requests()) == before, 2.0,
                     message=lambda: "requests while paused: %s" % self.pf_calls()[before:])
        self.assertEqual(self.dead_jobs(), 0)

    def test_code_22_pauses_for_10_to_15_minutes(self):
        """README: "Planfix error 22 (daily quota) pause it for 10-15 minutes"."""
        self.start_bridge()
        self.fakes.faults("planfix", [{"match": "POST /rest/contact/", "action": "fail_in_2xx", "code": 22}])
        self.post(chat_event("chatStarted", "visitor-a", [msg("a1", "a-1 hello")]))
        wait_until(lambda: self.upstream()["state"] == "paused", 10, message=lambda: self.upstream())
        left_s = self.upstream()["paused_until"] / 1000.0 - time.time()
        self.assertTrue(595 <= left_s <= 900, left_s)
        self.assertEqual(self.dead_jobs(), 0)


# --- what Planfix refuses -------------------------------------------------------------------------

class TestRefusals(ReadmeCase):
    def test_code_1_pauses_the_tracker_and_the_job_waits_for_the_key(self):
        """README: "A refused key (HTTP 401, or Planfix's code 1, bad token) pauses that upstream
        ... a minute at a time: its jobs wait, with no attempt counted ... reload ... the jobs go on
        at once, nothing lost"; /healthz: degraded."""
        self.start_bridge()
        task, _ = self.open_chat("visitor-a", email="a@example.org")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/$" % task, "action": "status",
                                       "status": 401, "body": {"result": "fail", "code": 1, "error": "bad token"}}])
        self.post(chat_event("chatFragment", "visitor-a", [msg("m1", "refused 1")], email="a@example.org"))
        wait_until(lambda: self.upstream()["state"] == "paused" or None, 10, message=lambda: self.health_any())
        status, body = self.health_any()
        self.assertEqual((status, body["status"]), (200, "degraded"))
        self.assertIn("code 1", self.upstream()["last_error"])
        self.assertIn("upstream tracker: its key was refused; tried again in 60 s, or at a reload",
                      self.bridge.log())
        self.assert_no_new_requests(1.5)
        self.assertEqual(self.dead_jobs(), 0)
        # The key is put right (the fake answers again); a reload tries at once.
        self.hup()
        wait_until(lambda: "refused 1" in self.everything() or None, 10, message=lambda: self.health_any())
        self.wait_idle()
        self.assert_each_once(["refused 1"])
        self.assertEqual(self.dead_jobs(), 0)

    def test_code_5_and_a_403_are_the_requests_own_dead_letters(self):
        """README: "A 403 is the one request's (an employee without the right, a token without a
        scope: Planfix's code 5), and it goes to the dead letters at once"."""
        self.start_bridge()
        task, _ = self.open_chat("visitor-a", email="a@example.org")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/$" % task, "action": "status",
                                       "status": 403, "body": {"result": "fail", "code": 5, "error": "scope"}}])
        self.post(chat_event("chatFragment", "visitor-a", [msg("m5", "refused 5")], email="a@example.org"))
        wait_until(lambda: self.dead_jobs() == 1 or None, 10, message=lambda: self.health_any())
        dead = json.loads(self.cli("dead-letters").stdout)
        self.assertEqual([(d["attempts"], d["response"][:3]) for d in dead], [(0, "403")])
        self.assertEqual(self.upstream()["state"], "failing")
        # The tracker goes on for the others.
        self.open_chat("visitor-b", [msg("b1", "another visitor")], email="b@example.org")
        self.assert_each_once(["another visitor"])

    def test_a_refused_key_degrades_and_its_jobs_wait_and_retry(self):
        """README, Health: "`degraded` | 200 | an upstream ... its last answer failed: ... a refused
        key (401, 403). Webhooks are still taken; the jobs wait and retry".  The bridge makes every
        job refused for the key a dead letter at once (the contact, then the task, made without a
        contact), so once the key is put right (and the bridge restarted, as env: values need)
        the visitor's message stays out of Planfix until someone runs `retry`."""
        self.bridge.env["PLANFIX_TOKEN"] = "not-the-token-0123456789"
        self.start_bridge()
        self.post(chat_event("chatStarted", "visitor-a", [msg("a1", "a-1 hello")], email="a@example.org"))
        wait_until(lambda: self.health_any()[1]["status"] == "degraded", 10, message=lambda: self.health_any())
        status, body = self.health_any()
        self.assertEqual(status, 200)
        self.assertEqual(self.upstream()["state"], "paused")
        self.assertIn("401", self.upstream()["last_error"])
        self.assertEqual(self.dead_jobs(), 0)
        self.assertEqual(self.bridge.post_chatra(chat_event("chatFragment", "visitor-a", [msg("a2", "a-2 second")],
                                                            email="a@example.org")).status, 200)
        time.sleep(2)
        # The key is put right.
        self.bridge.stop()
        self.bridge.env["PLANFIX_TOKEN"] = PLANFIX_TOKEN
        self.bridge.start()
        wait_until(lambda: "a-1 hello" in self.everything() and "a-2 second" in self.everything(), 20,
                   message=lambda: "the visitor's messages did not reach Planfix once the key was right; "
                   "dead letters: %s" % [(d["kind"], d["error"]) for d in json.loads(self.cli("dead-letters").stdout)])
        self.assert_each_once(["a-1 hello", "a-2 second"])


class TestChatraRefusedKey(ReadmeCase):
    def test_a_refused_chatra_key_pauses_the_channel_and_the_reply_waits(self):
        """README: `degraded` while "a channel's Chatra account ... a refused key (401, 403)"; the
        reply waits (no dead letter) and goes once the key works (a reload tries again at once)."""
        self.start_bridge()
        task, _ = self.open_chat("visitor-a", email="a@example.org")
        self.wait_idle()
        self.fakes.faults("chatra", [{"match": "POST /api/messages/", "action": "status", "status": 401,
                                      "body": {"error": "bad key"}}])
        self.fakes.employee_comment(task, owner="user:5", text="the answer")
        self.assertEqual(self.bridge.post_planfix(task).status, 200)
        wait_until(lambda: self.upstream("chatra:shop")["state"] == "paused" or None, 10,
                   message=lambda: self.health_any())
        status, body = self.health_any()
        self.assertEqual((status, body["status"]), (200, "degraded"))
        self.assertEqual(self.upstream()["state"], "ok")
        self.assertIn("401", self.upstream("chatra:shop")["last_error"])
        self.assertEqual(self.dead_jobs(), 0)
        self.assertEqual(self.fakes.chatra_messages(), [])
        self.hup()
        wait_until(lambda: self.fakes.chatra_messages(), 10)
        self.wait_idle()
        assert_stays(lambda: len(self.fakes.chatra_messages()) == 1, 1.5)
        wait_until(lambda: self.health_any()[1]["status"] == "ok", 10, message=lambda: self.health_any())
        self.assertEqual(self.metric("chatra_bridge_dead_letters", upstream="chatra:shop"), 0)


class TestBackoff(ReadmeCase):
    def test_5xx_backoff_doubles_with_jitter_and_honours_retry_after(self):
        """README: "Timeouts, connection errors, 429 and 5xx are retried with exponential backoff
        and jitter" ("honouring `Retry-After`", How it works); the message arrives once."""
        self.start_bridge()
        task, _ = self.open_chat("visitor-a", email="a@example.org")
        self.wait_idle()
        path = "POST /rest/task/%d/comments/$" % task
        self.fakes.faults("planfix", [{"match": path, "action": "status", "status": 500, "times": 3},
                                      {"match": path, "action": "status", "status": 503,
                                       "headers": {"Retry-After": "5"}}])
        self.post(chat_event("chatFragment", "visitor-a", [msg("a2", "a-2 after the outage")],
                             email="a@example.org"))
        posts = self.wait_comment_posts(task, 5, timeout=40)
        self.assertEqual([p["status"] for p in posts], [500, 500, 500, 503, 201])
        gaps = [b["time"] - a["answered"] for a, b in zip(posts, posts[1:])]
        # 1, 2, 4 s, each with jitter down to half; then at least the Retry-After's 5 s.
        for gap, (low, high) in zip(gaps, ((0.5, 1.3), (1.0, 2.3), (2.0, 4.3))):
            self.assertTrue(low - 0.05 <= gap <= high, gaps)
        self.assertGreaterEqual(gaps[3], 5 - 0.05, gaps)
        self.wait_idle()
        self.assert_each_once(["a-2 after the outage"])
        self.assertEqual(self.dead_jobs(), 0)


# --- unreachable upstreams ------------------------------------------------------------------------

class TestUnreachable(ReadmeCase):
    def test_unreachable_tracker_and_chatra_degrade_and_nothing_is_lost(self):
        """README: "Timeouts, connection errors ... are retried"; /healthz `degraded` while "no
        answer", with last_error, failing_since and failures; `upstream_requests_total` status
        `error` ("no answer"); once the upstreams answer, every message arrives once."""
        good_tracker = self.config["tracker"]["url"]
        good_chatra = self.config["channels"][0]["chatra"]["url"]
        self.config["tracker"]["url"] = "http://127.0.0.1:%d/rest" % free_port()
        self.start_bridge()
        self.post(chat_event("chatStarted", "visitor-a", [msg("a1", "a-1 hello")], email="a@example.org"))
        self.post(chat_event("chatFragment", "visitor-a", [msg("a2", "a-2 anyone?")], email="a@example.org"))
        wait_until(lambda: self.upstream().get("failures", 0) >= 2, 15, message=lambda: self.health_any())
        status, body = self.health_any()
        self.assertEqual((status, body["status"]), (200, "degraded"))
        up = self.upstream()
        self.assertEqual(up["state"], "failing")
        self.assertIn("connect", up["last_error"].lower())
        self.assertGreater(up["failing_since"], 0)
        self.assertGreaterEqual(self.metric("chatra_bridge_upstream_requests_total", 0, upstream="tracker",
                                            status="error"), 2)
        self.assertGreaterEqual(self.metric("chatra_bridge_upstream_failures", upstream="tracker"), 2)
        self.assertGreaterEqual(self.metric("chatra_bridge_jobs_total", 0, kind="contact", outcome="retry"), 2)
        self.assertEqual(self.dead_jobs(), 0)
        self.assertEqual(self.fakes.planfix_requests(), [])

        # The tracker comes back (a reload points at it); Chatra goes away.
        self.config["tracker"]["url"] = good_tracker
        self.config["channels"][0]["chatra"]["url"] = "http://127.0.0.1:%d/api" % free_port()
        self.bridge.write_config()
        self.bridge.proc.send_signal(signal.SIGHUP)
        task = self.wait_task(1, timeout=30)[0]["id"]
        wait_until(lambda: "a-2 anyone?" in self.everything(), 20, message=lambda: self.pf_calls())
        wait_until(lambda: self.upstream()["state"] == "ok", 10, message=lambda: self.health_any())
        self.assertIn("upstream tracker: answers again", self.bridge.log())
        self.fakes.employee_comment(task, owner="user:5", text="the answer")
        self.assertEqual(self.bridge.post_planfix(task).status, 200)
        wait_until(lambda: self.upstream("chatra:shop")["state"] == "failing", 15,
                   message=lambda: self.health_any())
        self.assertEqual(self.health_any()[1]["status"], "degraded")
        self.assertEqual(self.fakes.chatra_messages(), [])
        # Chatra comes back: the reply goes, once.
        self.config["channels"][0]["chatra"]["url"] = good_chatra
        self.bridge.write_config()
        self.bridge.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.fakes.chatra_messages(), 30, message="the reply never reached Chatra")
        self.wait_idle(20)
        assert_stays(lambda: len(self.fakes.chatra_messages()) == 1, 2.0)
        self.assert_each_once(["a-1 hello", "a-2 anyone?"])
        wait_until(lambda: self.health_any() == (200, self.health_any()[1]) and
                   self.health_any()[1]["status"] == "ok", 10, message=lambda: self.health_any())
        self.assertEqual(self.dead_jobs(), 0)


# --- a crash mid-request --------------------------------------------------------------------------

class TestCrashMidReply(ReadmeCase):
    def test_a_reply_in_flight_at_a_sigkill_is_never_lost(self):
        """README: "A reply to the chat is never lost: one whose send was cut off by a crash is sent
        again, and since Chatra has no way to ask whether it arrived, the visitor may see it
        twice"; the log at the next start says the job was in flight."""
        self.start_bridge()
        task, _ = self.open_chat("visitor-a", email="a@example.org")
        self.wait_idle()
        self.fakes.faults("chatra", [{"match": "POST /api/messages/", "action": "hold"}])
        self.fakes.employee_comment(task, owner="user:5", text="Yes, it is in stock.")
        self.assertEqual(self.bridge.post_planfix(task).status, 200)
        wait_until(lambda: self.fakes.stats("chatra")["held"] == 1, 10, message="the reply never left")
        self.assertEqual(self.bridge.kill(signal.SIGKILL), -signal.SIGKILL)
        # Chatra takes the message the bridge could not hear the answer to.
        self.fakes.release("chatra")
        wait_until(lambda: len(self.fakes.chatra_messages()) == 1, 5)
        self.bridge.start()
        self.wait_idle(20)
        time.sleep(2)
        self.assertIn("were in flight when the bridge stopped", self.bridge.log())
        texts = [m["text"] for m in self.fakes.chatra_messages()]
        self.assertEqual(texts, ["Yes, it is in stock."] * 2)


# --- the rate limit -------------------------------------------------------------------------------

class TestRateLimitFromTheAnswer(ReadmeCase):
    fakes_options = {"planfix_rps": 2}

    def test_the_gap_is_measured_from_each_answer_to_the_next_request(self):
        """README: "The tracker gets at most `requests_per_second` ..., measured from each answer to
        the next request".  Planfix takes 0.7 s to answer; at 2 a second each request still
        leaves at least 0.5 s after the answer before it."""
        self.start_bridge(tracker={"requests_per_second": 2})
        self.fakes.faults("planfix", [{"action": "delay", "seconds": 0.7, "times": 100}])
        self.post(chat_event("chatStarted", "visitor-a", [msg("a1", "a-1 hello")], email="a@example.org"))
        self.post(chat_event("chatStarted", "visitor-b", [msg("b1", "b-1 hello")], email="b@example.org"))
        self.wait_task(2, timeout=30)
        self.wait_idle(30)
        reqs = self.fakes.planfix_requests()
        self.assertGreaterEqual(len(reqs), 6)
        gaps = [b["time"] - a["answered"] for a, b in zip(reqs, reqs[1:])]
        self.assertGreaterEqual(min(gaps), 0.5 - 0.02, gaps)
        self.assertEqual(self.fakes.stats("planfix")["violations"], 0)


# --- bad webhooks ---------------------------------------------------------------------------------

class TestBadWebhooks(ReadmeCase):
    def test_malformed_bodies_are_logged_at_most_once_a_minute(self):
        """README: "Webhooks: body size, JSON depth (32), ... are bounded ... Refused requests are in
        the log, at most one line a minute per address and reason, with a count".  A body that is
        not JSON (or nested too deep) is refused with 400, but every one of them gets a warning
        line of its own ("chatra webhook (shop): rejected: ..."), without the sender's address."""
        self.start_bridge()
        for i in range(20):
            self.assertEqual(self.bridge.post_chatra(b'{"eventName": bad %d' % i).status, 400)
        for i in range(5):
            body = '{"client": {"id": "c"}, "x": %s}' % ("[" * 40 + "]" * 40)
            self.assertEqual(self.bridge.post_chatra(body.encode()).status, 400)
        self.assertEqual(self.metric("chatra_bridge_webhooks_total", source="chatra", channel="shop",
                                     result="invalid"), 25)
        malformed = [line for line in self.lines() if "malformed JSON" in line]
        deep = [line for line in self.lines() if "nested deeper" in line]
        self.assertLessEqual(len(malformed), 1, "%d lines for one reason in one minute:\n%s"
                             % (len(malformed), "\n".join(malformed[:3])))
        self.assertLessEqual(len(deep), 1, deep)

    def test_wrong_metrics_tokens_are_logged_at_most_once_a_minute(self):
        """README, Logs: "Refused requests are logged as warnings: ... and too many requests or
        wrong secrets from one address (429). Each source address ... and reason gets at most one
        line a minute"; `limits.bad_secrets_per_minute` counts "wrong webhook secrets (and wrong
        `metrics.token`s and admin tokens)".  /metrics needs no secret to be asked, yet every
        wrong token -- the 429s past the limit too -- gets a line of its own ("metrics: wrong or
        missing bearer token from 127.0.0.1"), where wrong admin tokens go through the
        once-a-minute refusal lines ("429 too many wrong admin tokens")."""
        self.bridge.env["METRICS_TOKEN"] = "metrics-token-0123456789abcdef"
        self.start_bridge(metrics={"token": "env:METRICS_TOKEN"}, limits={"bad_secrets_per_minute": 5})
        statuses = [self.bridge.get("/metrics", {"Authorization": "Bearer wrong-token-%02d-0123456789" % i}).status
                    for i in range(30)]
        self.assertEqual(statuses, [401] * 5 + [429] * 25)
        lines = [line for line in self.lines() if " warn " in line and ("metrics" in line or "refused" in line)]
        self.assertLessEqual(len(lines), 2, "%d warning lines for 30 wrong tokens from one address in one "
                             "minute, e.g.:\n%s" % (len(lines), "\n".join(lines[-3:])))
        self.assertNotIn("metrics-token-0123456789abcdef", self.bridge.log())

    def test_oversized_headers_are_logged_at_most_once_a_minute(self):
        """README: "Webhooks: body size, JSON depth (32), header size and request time are bounded
        ... Refused requests are in the log, at most one line a minute per address and reason"
        (and, Logs, refused requests are logged as warnings).  Anybody, with no secret, gets an
        ERROR line per request with a header too large ("lws: Ran out of header data space..."),
        without the address; the request gets no answer at all."""
        self.start_bridge()
        for _ in range(10):
            with socket.create_connection(("127.0.0.1", self.bridge.port), timeout=5) as s:
                s.sendall(b"POST /webhooks/chatra/shop/x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 +
                          b"\r\nContent-Length: 2\r\n\r\n{}")
                try:
                    s.recv(100)
                except OSError:
                    pass
        self.assertEqual(self.bridge.get("/healthz").status, 200)
        time.sleep(0.5)
        lines = [line for line in self.lines() if "header" in line.lower()]
        self.assertTrue(lines, "the refusals are not logged at all")
        self.assertLessEqual(len(lines), 1, "%d lines for 10 requests from one address:\n%s"
                             % (len(lines), "\n".join(lines[:3])))
        self.assertEqual([line for line in lines if " error " in line], [], "a client's request logged as an error")

    def test_refusals_in_the_metrics(self):
        """README metrics table: `throttled` (429) for too many requests and too many wrong
        secrets; "Bodies over max_body_bytes are refused before (413) and not counted"; the
        content type is not looked at (Chatra's body is JSON whatever it says)."""
        self.start_bridge(limits={"max_body_bytes": 2048, "bad_secrets_per_minute": 1})
        self.assertEqual(self.bridge.post_chatra("x" * 5000).status, 413)
        self.assertEqual(self.bridge.post_chatra({}, secret="wrong-secret-0123456").status, 401)
        self.assertEqual(self.bridge.post_chatra({}, secret="wrong-secret-0123456").status, 429)
        ev = json.dumps(chat_event("chatStarted", "visitor-a", [msg("a1", "a-1 hello")]))
        self.assertEqual(self.bridge.post_chatra(ev, headers={"Content-Type": "text/plain"}).status, 200)
        self.assertEqual(self.bridge.post_planfix("not-a-number").status, 400)
        self.assertEqual(self.metrics_series("chatra_bridge_webhooks_total"), {
            ("shop", "accepted", "chatra"): 1, ("shop", "bad_secret", "chatra"): 1,
            ("shop", "throttled", "chatra"): 1, ("", "invalid", "planfix"): 1})
        self.wait_task(1)

    def metrics_series(self, name):
        return {tuple(v for _, v in sorted(ls.items())): val for n, ls, val in self.metrics() if n == name}


# --- metrics across a restart ---------------------------------------------------------------------

class TestCountersAcrossARestart(ReadmeCase):
    def test_counters_start_at_0_and_merges_and_todays_count_go_on(self):
        """README: "Counters start at 0 when the bridge starts"; `chatra_bridge_merges_total` and
        `chatra_bridge_tracker_requests_today` are "kept in the store: it counts across restarts"."""
        self.start_bridge()
        self.open_chat("laptop-aaaaaaaaaaaa", [msg("l1", "from the laptop")], email="m@example.org")
        self.wait_idle()
        self.post(chat_event("chatStarted", "phone-bbbbbbbbbbbbb", [msg("p1", "from the phone")],
                             email="m@example.org"))
        self.wait_idle()
        merges = self.metric("chatra_bridge_merges_total", channel="shop", kind="device")
        self.assertEqual(merges, 1)
        today = self.metric("chatra_bridge_tracker_requests_today")
        self.assertEqual(today, len(self.fakes.planfix_requests()))
        time.sleep(1.5)   # "a crash loses at most the last second's requests": past that second
        self.bridge.kill(signal.SIGKILL)
        self.bridge.start()
        self.assertEqual(self.metric("chatra_bridge_merges_total", channel="shop", kind="device"), 1)
        self.assertEqual(self.metric("chatra_bridge_tracker_requests_today"), today)
        self.assertIsNone(self.metric("chatra_bridge_webhooks_total", source="chatra", channel="shop",
                                      result="accepted"))
        self.assertIsNone(self.metric("chatra_bridge_jobs_total", kind="task", outcome="done"))


# --- logs -----------------------------------------------------------------------------------------

class TestOneLinePerEvent(ReadmeCase):
    def test_an_upstream_error_text_with_a_line_break_stays_one_line(self):
        """README, Logs: "The bridge logs to stderr, one line per event" in the format
        `2026-11-22T07:40:00.123Z warn message` (under systemd `<4>warn message`, which
        `journalctl -p` reads).  The tracker's error text goes into the dead-letter line as it
        came: a line break in it starts a second line that looks like one of the bridge's own
        (here a forged "info" line), and control bytes (ESC) are written raw."""
        self.start_bridge()
        task, _ = self.open_chat("visitor-a", email="a@example.org")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "fail_in_2xx",
                                       "code": 41, "error": "Invalid value\n2026-01-01T00:00:00.000Z info "
                                                            "forged line\u001b[31m"}])
        self.post(chat_event("chatFragment", "visitor-a", [msg("a2", "refused")], email="a@example.org"))
        wait_until(lambda: self.dead_jobs() == 1 or None, 10)
        self.assertEqual(self.bridge.stop(), 0)
        forged = [line for line in self.lines() if line.startswith("2026-01-01T00:00:00.000Z")]
        self.assertEqual(forged, [], "an upstream's text made a log line of its own")
        self.assertNotIn("\x1b", self.bridge.log())


class TestLogLevels(ReadmeCase):
    def run_a_chat_with_a_failure(self):
        task, _ = self.open_chat("visitor-a", email="a@example.org")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "fail_in_2xx",
                                       "code": 41}])
        self.post(chat_event("chatFragment", "visitor-a", [msg("a2", "refused")], email="a@example.org"))
        wait_until(lambda: self.dead_jobs() == 1 or None, 10)
        self.assertEqual(self.bridge.post_chatra({}, secret="wrong-secret-0123456").status, 401)
        self.assertEqual(self.bridge.stop(), 0)

    def test_warn_writes_warnings_and_errors_only(self):
        """README: `log.level` `debug`, `info` (default), `warn`, `error`."""
        self.start_bridge(log={"level": "warn"})
        self.run_a_chat_with_a_failure()
        levels = {line.split(" ")[1] for line in self.lines()}
        self.assertEqual(levels, {"warn", "error"}, self.lines())

    def test_error_in_json_writes_errors_only(self):
        self.start_bridge(log={"level": "error", "format": "json"})
        self.run_a_chat_with_a_failure()
        records = [json.loads(line) for line in self.lines()]
        self.assertTrue(records)
        self.assertEqual({r["level"] for r in records}, {"error"})
        [dead] = records
        self.assertEqual((dead["module"], dead["channel"]), ("queue", "shop"))
        self.assertIsInstance(dead["conversation"], int)
        # "job (as dead-letters shows it)"
        [listed] = json.loads(self.cli("dead-letters").stdout)
        self.assertEqual(dead["job"], listed["id"])
        self.assertIn("job %d (comment)" % listed["id"], dead["message"])


if __name__ == "__main__":
    unittest.main()


# --- Redmine --------------------------------------------------------------------------------------


class TestRedmineFaults(RedmineCase, ReadmeCase):
    def test_a_planfix_webhook_is_404_and_counted_disabled(self):
        """README metrics table: `result` ... `disabled` (404: Redmine sends no webhooks)."""
        self.start()
        self.assertEqual(self.bridge.post_planfix(1).status, 404)
        self.assertEqual(self.metric("chatra_bridge_webhooks_total", source="planfix", channel="",
                                     result="disabled"), 1)
        self.assertEqual(self.health_any()[1]["status"], "ok")
        # A whole conversation at debug: neither the API key nor the bound client id is logged.
        client = "rmk2f8w0qz5mv1r7c3xj9t4ba6ne0yd2hs8pl"
        issue = self.open_chat(client, "Hello from Redmine", email="logs@example.org")
        self.employee_note(issue["id"], "anna", "An answer")
        wait_until(lambda: self.replies(client), POLL_WAIT)
        self.post(chat_event("chatTranscript", client, [self.first], email="logs@example.org"))
        wait_until(lambda: self.issue(issue["id"])["status"]["is_closed"], POLL_WAIT)
        self.wait_idle()
        log = self.bridge.log()
        self.assertNotIn(self.rm.admin_key, log)
        self.assertNotIn(client, log)
        self.assertNotIn(client[:12], log)

    def test_a_refused_api_key_degrades_and_its_jobs_wait_and_retry(self):
        """README, Health: a refused key (401, 403) makes the upstream `degraded`; "Webhooks are
        still taken; the jobs wait and retry": the issue follows once the key is right."""
        self.bridge.env["REDMINE_API_KEY"] = "0" * 40
        self.start()
        self.bridge.env["REDMINE_API_KEY"] = "0" * 40   # start() sets the right one: refuse it now
        self.bridge.restart()
        client = "rm-refused-key"
        self.post(chat_event("chatStarted", client, [msg(client + "-m1", "Hello, refused key")],
                             email="refused@example.org"))
        wait_until(lambda: self.health_any()[1]["status"] == "degraded", 15, message=lambda: self.health_any())
        up = self.upstream()
        self.assertEqual(up["state"], "paused")
        self.assertIn("401", up["last_error"])
        self.assertEqual(self.issues(), [])
        self.assertEqual(self.dead_jobs(), 0)
        self.bridge.stop()
        self.bridge.env["REDMINE_API_KEY"] = self.rm.admin_key
        self.bridge.start()
        wait_until(self.issues, POLL_WAIT, message=lambda: "no issue once the key was right; dead letters: %s"
                   % [(d["kind"], d["error"]) for d in json.loads(self.cli("dead-letters").stdout)])
        self.assertIn("Hello, refused key", self.issues()[0]["description"])

    def test_an_unreachable_redmine_degrades_and_the_issue_follows_once(self):
        """README: connection errors are retried; /healthz `degraded` ("no answer"); once Redmine
        answers again the chat's issue is made once, with every message."""
        self.start(tracker={"url": "http://127.0.0.1:%d" % free_port()})
        client = "rm-unreachable"
        self.post(chat_event("chatStarted", client, [msg(client + "-m1", "first while down")],
                             email="down@example.org"))
        self.post(chat_event("chatFragment", client, [msg(client + "-m2", "second while down")],
                             email="down@example.org"))
        wait_until(lambda: self.upstream().get("failures", 0) >= 2, 15, message=lambda: self.health_any())
        self.assertEqual(self.health_any()[1]["status"], "degraded")
        self.assertEqual(self.upstream()["state"], "failing")
        self.assertEqual(self.dead_jobs(), 0)
        self.config["tracker"]["url"] = self.rm.url
        self.bridge.write_config()
        self.bridge.proc.send_signal(signal.SIGHUP)
        [issue] = wait_until(self.issues, 30, message="no issue once Redmine answered")
        self.wait_idle(30)
        text = self.issue(issue["id"])["description"] + "".join(t for _, t in self.notes(issue["id"]))
        for t in ("first while down", "second while down"):
            self.assertEqual(text.count(t), 1, text)
        self.assertEqual(len(self.issues()), 1)
        wait_until(lambda: self.upstream()["state"] == "ok", 10, message=lambda: self.health_any())
