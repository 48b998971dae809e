"""Issue 12, point 6: health and metrics.

GET /metrics is read with Prometheus's own text-format parser (Debian's
python3-prometheus-client, run with /usr/bin/python3): its counters move by exactly the
traffic the test sends (webhooks accepted and refused, upstream requests as the fakes saw
them, jobs), the latency histogram has its buckets, count and sum, the queue gauges, dead
letters and merges follow what happens, and metrics.token guards it when set.  /healthz says
"degraded" (200) while the fake Planfix answers 500s, with the last error and since when, "ok"
again once it answers, and "failing" (503) while the store refuses writes.
"""

import json
import os
import subprocess
import sys
import time
import unittest
from collections import Counter

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import VALGRIND, chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402
from small_disk import SmallDisk  # noqa: E402

SLOW = 6 if VALGRIND else 1
DEBIAN_PYTHON = "/usr/bin/python3"
METRICS_TOKEN = "metrics-token-0123456789abcdef"
LATENCY_BOUNDS = ["0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf"]

# Runs under Debian's Python, which has the package: families as JSON on stdout.
PARSE = r"""
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = [{"name": f.name, "type": f.type,
        "samples": [[s.name, s.labels, s.value] for s in f.samples]}
       for f in text_string_to_metric_families(sys.stdin.read())]
json.dump(out, sys.stdout)
"""


def parser_missing():
    """Why Prometheus's parser cannot run here, or None."""
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        return "%s is missing" % DEBIAN_PYTHON
    r = subprocess.run([DEBIAN_PYTHON, "-c", "import prometheus_client.parser"], capture_output=True, text=True)
    if r.returncode != 0:
        return "python3-prometheus-client is not installed (scripts/deps.sh --test installs it)"
    return None


class Scrape:
    """One /metrics answer as the parser read it."""

    def __init__(self, families):
        self.types = {f["name"]: f["type"] for f in families}
        self.samples = [(name, labels, value) for f in families for name, labels, value in f["samples"]]

    def series(self, name):
        """{(label values sorted by label name): value} of every sample called name."""
        return {tuple(v for _, v in sorted(labels.items())): value
                for n, labels, value in self.samples if n == name}

    def value(self, name, default=None, **labels):
        for n, ls, v in self.samples:
            if n == name and ls == labels:
                return v
        return default


class MetricsCase(E2ECase):
    maxDiff = None

    def setUp(self):
        why = parser_missing()
        if why is not None:
            if os.environ.get("CI") == "true":
                self.fail("the metrics test must run in CI: " + why)
            self.skipTest(why)
        super().setUp()

    def metrics(self, headers=None):
        r = self.bridge.get("/metrics", headers)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers.get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        p = subprocess.run([DEBIAN_PYTHON, "-c", PARSE], input=r.body, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "the Prometheus parser refused /metrics: %s\n%s" % (p.stderr, r.body))
        return Scrape(json.loads(p.stdout))

    def health_any(self):
        r = self.bridge.get("/healthz")
        return r.status, r.json()

    def tracker(self, health):
        return [u for u in health["engine"]["upstreams"] if u["name"] == "tracker"][0]


class TestMetricsCount(MetricsCase):
    def test_counters_move_with_the_traffic(self):
        self.start_bridge()
        before = self.metrics()
        # Every family is there from the start, with its type; nothing is counted yet.
        for name, kind in (("chatra_bridge_webhooks", "counter"), ("chatra_bridge_jobs", "counter"),
                           ("chatra_bridge_upstream_requests", "counter"),
                           ("chatra_bridge_upstream_request_duration_seconds", "histogram"),
                           ("chatra_bridge_ratelimit_waits", "counter"),
                           ("chatra_bridge_ratelimit_wait_seconds", "counter"),
                           ("chatra_bridge_store_writable", "gauge"), ("chatra_bridge_inbox_pending", "gauge"),
                           ("chatra_bridge_inbox_oldest_age_seconds", "gauge"), ("chatra_bridge_jobs_queued", "gauge"),
                           ("chatra_bridge_jobs_in_flight", "gauge"),
                           ("chatra_bridge_jobs_oldest_age_seconds", "gauge"), ("chatra_bridge_dead_letters", "gauge"),
                           ("chatra_bridge_merges", "counter"), ("chatra_bridge_upstream_paused", "gauge"),
                           ("chatra_bridge_upstream_failures", "gauge"), ("chatra_bridge_tracker_quota_left", "gauge"),
                           ("chatra_bridge_tracker_requests_today", "gauge"),
                           ("chatra_bridge_tracker_daily_quota", "gauge"),
                           ("chatra_bridge_tracker_requests_projected", "gauge")):
            self.assertEqual(before.types.get(name), kind, name)
        self.assertEqual(before.series("chatra_bridge_webhooks_total"), {})
        self.assertEqual(before.series("chatra_bridge_upstream_requests_total"), {})

        # The traffic: accepted, ignored and refused webhooks on both routes.
        task, _ = self.open_chat("client-1")
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "And the red one?")]))
        self.wait_comment_posts(task, 1)
        self.assertEqual(self.bridge.post_chatra(chat_event("chatStarted", "x", [msg("x1", "hi")]), channel="nope")[0],
                         404)
        for _ in range(2):
            self.assertEqual(self.bridge.post_chatra(chat_event("chatFragment", "client-1", []),
                                                     secret="not-the-secret-at-all")[0], 401)
        self.assertEqual(self.bridge.post_chatra("{not json")[0], 400)
        self.assertEqual(self.bridge.post_chatra({"eventName": "agentJoined", "client": {"id": "client-1"}})[0], 200)
        self.assertEqual(self.bridge.post_planfix(task)[0], 200)
        self.assertEqual(self.bridge.post_planfix(task, secret="wrong-planfix-secret")[0], 401)
        self.wait_idle()

        after = self.metrics()
        self.assertEqual(after.series("chatra_bridge_webhooks_total"), {
            ("shop", "accepted", "chatra"): 2,
            ("", "unknown_channel", "chatra"): 1,
            ("shop", "bad_secret", "chatra"): 2,
            ("shop", "invalid", "chatra"): 1,
            ("shop", "ignored", "chatra"): 1,
            ("", "accepted", "planfix"): 1,
            ("", "bad_secret", "planfix"): 1,
        })

        # Upstream requests by status: exactly what the fakes answered.
        pf = self.fakes.planfix_requests()
        chatra = self.fakes.chatra_requests()
        self.assertTrue(pf and chatra)
        self.assertEqual(after.series("chatra_bridge_upstream_requests_total"),
                         dict([((str(s), "tracker"), n) for s, n in Counter(r["status"] for r in pf).items()] +
                              [((str(s), "chatra:shop"), n) for s, n in Counter(r["status"] for r in chatra).items()]))

        # The latency histogram: cumulative buckets up to +Inf, count and sum, per upstream.
        for upstream, requests in (("tracker", pf), ("chatra:shop", chatra)):
            buckets = {ls["le"]: v for n, ls, v in after.samples
                       if n == "chatra_bridge_upstream_request_duration_seconds_bucket" and ls["upstream"] == upstream}
            self.assertEqual(sorted(buckets, key=lambda b: float(b)), LATENCY_BOUNDS)
            counts = [buckets[b] for b in LATENCY_BOUNDS]
            self.assertEqual(counts, sorted(counts), "buckets are cumulative")
            self.assertEqual(buckets["+Inf"], len(requests))
            self.assertEqual(after.value("chatra_bridge_upstream_request_duration_seconds_count", upstream=upstream),
                             len(requests))
            self.assertGreater(after.value("chatra_bridge_upstream_request_duration_seconds_sum", upstream=upstream), 0)

        # Jobs: one task, the tracker webhook's fetch, a comment job per message (the first one's
        # text is carried by the task's description).
        jobs = after.series("chatra_bridge_jobs_total")
        self.assertEqual((jobs[("task", "done")], jobs[("fetch", "done")], jobs[("comment", "done")]), (1, 1, 2))
        # Nothing failed ("later": a job that waited for another, e.g. a task for its contact).
        self.assertEqual([k for k in jobs if k[1] not in ("done", "later")], [], jobs)

        # Idle: nothing waits, nothing is dead, the store takes writes, the upstreams are well.
        self.assertEqual(after.value("chatra_bridge_store_writable"), 1)
        self.assertEqual(after.value("chatra_bridge_inbox_pending"), 0)
        self.assertEqual(after.value("chatra_bridge_inbox_oldest_age_seconds"), 0)
        for name in ("chatra_bridge_jobs_queued", "chatra_bridge_jobs_in_flight", "chatra_bridge_dead_letters",
                     "chatra_bridge_jobs_oldest_age_seconds", "chatra_bridge_upstream_paused",
                     "chatra_bridge_upstream_failures"):
            self.assertEqual(after.series(name), {("chatra:shop",): 0, ("tracker",): 0}, name)
        # The quota the fake's last answer gave (it counts down from 20000 per request).
        self.assertEqual(after.value("chatra_bridge_tracker_quota_left"), 20000 - len(pf))
        # The bridge's own count of today's requests (budget.h), Planfix's default daily quota, and
        # the day's projection at the recent pace (all of these requests were within the last hour).
        self.assertEqual(after.value("chatra_bridge_tracker_requests_today"), len(pf))
        self.assertEqual(after.value("chatra_bridge_tracker_daily_quota"), 20000)
        self.assertGreater(after.value("chatra_bridge_tracker_requests_projected"), len(pf))
        self.assertEqual(self.health()["status"], "ok")

    def test_rate_limit_waits_are_counted(self):
        # One request a second: each request after the first waits for the one before it.
        self.start_bridge(tracker={"requests_per_second": 1})
        self.open_chat("client-1")
        self.wait_idle(10 * SLOW)
        m = self.metrics()
        sent = len(self.fakes.planfix_requests())
        waits = m.value("chatra_bridge_ratelimit_waits_total", upstream="tracker")
        self.assertGreaterEqual(sent, 2)
        self.assertIn(waits, range(sent - 1, sent + 1), "requests %d" % sent)
        self.assertGreater(m.value("chatra_bridge_ratelimit_wait_seconds_total", upstream="tracker"),
                           (sent - 2) * 0.5)


class TestMetricsQueues(MetricsCase):
    LAPTOP, PHONE, TABLET = "laptopQm7TzR2pLx9", "phoneVbN4cW8kDs3j", "tabletK3vB8nQ2xZ"
    EMAIL = "maria@example.org"

    def test_merges_and_dead_letters(self):
        self.start_bridge()
        task, _ = self.open_chat(self.LAPTOP, [msg("l1", "Hello from my laptop")], name="Maria", email=self.EMAIL)
        self.wait_idle()
        self.open_chat(self.PHONE, [msg("p1", "Hello from my phone")])
        self.wait_idle()
        self.assertEqual(self.metrics().series("chatra_bridge_merges_total"), {})

        # The phone tells the laptop's e-mail: its conversation joins the laptop's.
        self.post(chat_event("chatFragment", self.PHONE, [msg("p2", "It is me, Maria")], email=self.EMAIL))
        self.wait_idle()
        self.assertEqual(self.metrics().series("chatra_bridge_merges_total"),
                         {("shop", "conversation"): 1, ("shop", "device"): 0})
        # A third device starts with the same e-mail: it joins the person.
        self.post(chat_event("chatStarted", self.TABLET, [msg("t1", "Hello from my tablet")], email=self.EMAIL))
        self.wait_idle()
        self.assertEqual(self.metrics().series("chatra_bridge_merges_total"),
                         {("shop", "conversation"): 1, ("shop", "device"): 1})

        # A comment Planfix refuses for good is a dead letter, until it is put back.
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "fail_in_2xx",
                                       "code": 41}])
        self.post(chat_event("chatFragment", self.LAPTOP, [msg("l2", "lost for now")]))
        wait_until(lambda: self.metrics().value("chatra_bridge_dead_letters", upstream="tracker") == 1,
                   message=lambda: "no dead letter: %s" % self.health())
        m = self.metrics()
        self.assertEqual(m.value("chatra_bridge_jobs_total", kind="comment", outcome="dead"), 1)
        self.assertEqual(m.value("chatra_bridge_dead_letters", upstream="chatra:shop"), 0)
        out = self.bridge.run("retry", "--config", self.bridge.config_path, "--all")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.wait_comment_posts(task, 5)
        self.wait_idle()
        m = self.metrics()
        self.assertEqual(m.value("chatra_bridge_dead_letters", upstream="tracker"), 0)
        self.assertEqual(m.value("chatra_bridge_jobs_total", kind="comment", outcome="dead"), 1)

    def test_jobs_waiting_behind_one_in_flight(self):
        # Planfix does not answer a comment: it is in flight until the bridge gives up on it.
        self.start_bridge(tracker={"timeout_ms": 4000 * SLOW})
        task, _ = self.open_chat("client-1")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "hang"}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "first")]))
        wait_until(lambda: self.metrics().value("chatra_bridge_jobs_in_flight", upstream="tracker") == 1,
                   message=lambda: "the comment is not in flight: %s" % self.health())
        # The next comment of the conversation waits behind it; its age grows.
        self.post(chat_event("chatFragment", "client-1", [msg("m3", "second")]))
        m = wait_until(lambda: (lambda m: m if m.value("chatra_bridge_jobs_queued", upstream="tracker") == 1
                                and m.value("chatra_bridge_jobs_oldest_age_seconds", upstream="tracker") > 0
                                else None)(self.metrics()),
                       message=lambda: "the second comment does not wait: %s" % self.health())
        self.assertEqual(m.value("chatra_bridge_jobs_in_flight", upstream="tracker"), 1)
        self.assertEqual(m.value("chatra_bridge_inbox_pending"), 0)

        # The bridge gives up waiting, looks, and posts both.
        self.wait_comment_posts(task, 3, timeout=20 * SLOW)
        self.wait_idle()
        m = self.metrics()
        self.assertEqual(m.value("chatra_bridge_upstream_requests_total", upstream="tracker", status="timeout"), 1)
        self.assertEqual(m.value("chatra_bridge_jobs_total", kind="comment", outcome="retry"), 1)
        self.assertEqual((m.value("chatra_bridge_jobs_queued", upstream="tracker"),
                          m.value("chatra_bridge_jobs_in_flight", upstream="tracker"),
                          m.value("chatra_bridge_jobs_oldest_age_seconds", upstream="tracker")), (0, 0, 0))
        self.assertEqual(self.health()["status"], "ok")


class TestHealth(MetricsCase):
    def test_degraded_while_the_tracker_fails_then_ok(self):
        self.start_bridge()
        task, _ = self.open_chat("client-1")
        self.wait_idle()
        self.assertEqual(self.health_any(), (200, self.health()))
        self.assertEqual(self.health()["status"], "ok")
        self.assertEqual(self.tracker(self.health())["state"], "ok")
        started = int(time.time() * 1000)

        # Planfix answers 500 to everything: the comment's job fails and waits to retry.
        self.fakes.faults("planfix", [{"action": "status", "status": 500, "times": 1000}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "Are you there?")]))
        status, body = wait_until(lambda: (lambda r: r if r[1]["status"] == "degraded" else None)(self.health_any()),
                                  message=lambda: "not degraded: %s" % (self.health_any(),))
        self.assertEqual(status, 200)
        self.assertEqual(body["store"], {"writable": True})
        up = self.tracker(body)
        self.assertEqual(up["state"], "failing")
        self.assertIn("HTTP 500", up["last_error"])
        self.assertGreaterEqual(up["failing_since"], started)
        self.assertGreaterEqual(up["failures"], 1)
        chatra = [u for u in body["engine"]["upstreams"] if u["name"] == "chatra:shop"][0]
        self.assertEqual(chatra["state"], "ok")
        self.assertNotIn("last_error", chatra)
        m = self.metrics()
        self.assertGreaterEqual(m.value("chatra_bridge_upstream_failures", upstream="tracker"), 1)
        self.assertGreaterEqual(m.value("chatra_bridge_jobs_queued", upstream="tracker") +
                                m.value("chatra_bridge_jobs_in_flight", upstream="tracker"), 1)

        # Planfix is back: the retry goes through and the bridge is ok again.
        self.fakes.clear_faults("planfix")
        self.wait_comment_posts(task, 1, timeout=20 * SLOW)
        wait_until(lambda: self.health()["status"] == "ok", 10 * SLOW,
                   message=lambda: "not ok again: %s" % (self.health_any(),))
        self.wait_idle()
        up = self.tracker(self.health())
        self.assertEqual(up["state"], "ok")
        self.assertNotIn("last_error", up)
        m = self.metrics()
        self.assertEqual(m.value("chatra_bridge_upstream_failures", upstream="tracker"), 0)
        failed = [r for r in self.fakes.planfix_requests() if r["status"] == 500]
        self.assertGreaterEqual(len(failed), 1)
        self.assertEqual(m.value("chatra_bridge_upstream_requests_total", upstream="tracker", status="500"),
                         len(failed))
        self.assertEqual(m.value("chatra_bridge_jobs_total", kind="comment", outcome="retry"), len(failed))
        self.assertIn("upstream tracker: answers again", self.bridge.log())

    def test_degraded_while_the_tracker_is_paused(self):
        self.start_bridge()
        # Planfix's daily quota is gone (code 22): the tracker pauses.
        self.fakes.faults("planfix", [{"match": "POST /rest/contact/", "action": "fail_in_2xx", "code": 22}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        status, body = wait_until(lambda: (lambda r: r if r[1]["status"] == "degraded" else None)(self.health_any()),
                                  message=lambda: "not degraded: %s" % (self.health_any(),))
        self.assertEqual(status, 200)
        up = self.tracker(body)
        self.assertEqual(up["state"], "paused")
        self.assertGreater(up["paused_until"], int(time.time() * 1000))
        self.assertIn("code 22", up["last_error"])
        self.assertEqual(self.metrics().value("chatra_bridge_upstream_paused", upstream="tracker"), 1)

    def test_failing_while_the_store_refuses_writes(self):
        disk = SmallDisk()
        self.addCleanup(lambda: disk.unmount(self.bridge))
        self.start_bridge(store={"path": os.path.join(disk.path, "bridge.db")})
        self.open_chat("client-1")
        self.wait_idle()

        disk.fill()
        status, _ = self.bridge.post_chatra(chat_event("chatFragment", "client-1", [msg("m2", "refused")]))
        self.assertEqual(status, 503)
        status, body = self.health_any()
        self.assertEqual(status, 503)
        self.assertEqual(body["status"], "failing")
        self.assertFalse(body["store"]["writable"])
        self.assertIn("full", body["store"]["error"])
        m = self.metrics()
        self.assertEqual(m.value("chatra_bridge_store_writable"), 0)
        self.assertEqual(m.series("chatra_bridge_webhooks_total"),
                         {("shop", "accepted", "chatra"): 1, ("shop", "unstored", "chatra"): 1})

        disk.free()
        wait_until(lambda: self.health_any() == (200, self.health()) and self.health()["status"] == "ok", 5 * SLOW,
                   message=lambda: "/healthz: %s" % (self.health_any(),))
        self.post(chat_event("chatFragment", "client-1", [msg("m3", "taken")]))
        m = self.metrics()
        self.assertEqual(m.value("chatra_bridge_store_writable"), 1)
        self.assertEqual(m.value("chatra_bridge_webhooks_total", source="chatra", channel="shop", result="accepted"), 2)
        self.wait_idle()
        # SIGTERM exits 0 (the base class checks it) before the disk goes.


class TestMetricsToken(MetricsCase):
    def test_the_token_guards_metrics_and_not_healthz(self):
        self.bridge.env["METRICS_TOKEN"] = METRICS_TOKEN
        self.start_bridge(metrics={"token": "env:METRICS_TOKEN"})
        for headers in (None, {"Authorization": "Bearer wrong-token-0123456789abcdef"},
                        {"Authorization": METRICS_TOKEN}, {"Authorization": "Basic " + METRICS_TOKEN},
                        {"Authorization": "Bearer " + METRICS_TOKEN + "x"}):
            r = self.bridge.get("/metrics", headers)
            self.assertEqual(r.status, 401, headers)
            self.assertNotIn("chatra_bridge", r.body)
            self.assertIn("Authorization: Bearer", r.json()["error"])
        m = self.metrics({"Authorization": "Bearer " + METRICS_TOKEN})
        self.assertEqual(m.value("chatra_bridge_store_writable"), 1)
        # The scheme in any case, as HTTP has it.
        self.metrics({"Authorization": "bearer " + METRICS_TOKEN})
        self.assertEqual(self.bridge.get("/healthz").status, 200)
        self.assertIn("refused: 401 wrong or missing metrics token", self.bridge.log())
        self.assertNotIn(METRICS_TOKEN, self.bridge.log())

    def test_a_token_from_a_file(self):
        with open(os.path.join(self.bridge.tmpdir, "metrics.token"), "w") as f:
            f.write(METRICS_TOKEN + "\n")
        self.start_bridge(metrics={"token": "file:metrics.token"})
        self.assertEqual(self.bridge.get("/metrics").status, 401)
        self.metrics({"Authorization": "Bearer " + METRICS_TOKEN})

    def test_without_a_token_metrics_is_open(self):
        self.start_bridge()
        self.assertNotIn("metrics", self.config)
        self.metrics()
        # A token sent anyway does no harm.
        self.metrics({"Authorization": "Bearer " + METRICS_TOKEN})


if __name__ == "__main__":
    unittest.main()
