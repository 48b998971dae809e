"""Issue 12, point 7: logs an admin can use.  log.format "json" writes one JSON object per line
(time, level, module, message, and the channel, conversation and job when there is one); under
systemd (JOURNAL_STREAM naming stderr) text lines carry syslog priorities; refused requests
(404, 413, 429, wrong secrets) are logged at most once a minute per address and reason, with a
count.  No secret is ever written, in either format."""

import json
import os
import re
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import (CHATRA_SHOP_PUBLIC_KEY, CHATRA_SHOP_SECRET_KEY, CHATRA_SHOP_WEBHOOK_SECRET,  # noqa: E402
                     PLANFIX_TOKEN, PLANFIX_WEBHOOK_SECRET, wait_until)
from e2e import E2ECase  # noqa: E402

SECRETS = [CHATRA_SHOP_WEBHOOK_SECRET, CHATRA_SHOP_PUBLIC_KEY, CHATRA_SHOP_SECRET_KEY, PLANFIX_TOKEN,
           PLANFIX_WEBHOOK_SECRET]
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) ")
JOURNAL_LINE = re.compile(r"^<([3467])>(debug|info|warn|error) ")
PRIORITY = {"error": "3", "warn": "4", "info": "6", "debug": "7"}


class LogCase(E2ECase):
    def lines(self):
        """The bridge's own lines (not the harness's "=== harness:" headers)."""
        return [line for line in self.bridge.log().splitlines() if line and not line.startswith("=== harness:")]

    def records(self):
        return [json.loads(line) for line in self.lines()]

    def assert_no_secret(self):
        log = self.bridge.log()
        for s in SECRETS:
            self.assertNotIn(s, log)

    def leak_attempts(self):
        """Requests whose log lines would show a secret if nothing masked it: a path that holds
        the channel's secret but matches no route, and the Planfix secret one segment too deep."""
        r = self.bridge.post("/webhooks/chatra/shop/%s/more" % CHATRA_SHOP_WEBHOOK_SECRET, {})
        self.assertEqual(r.status, 404)
        r = self.bridge.post("/webhooks/planfix/%s/x" % PLANFIX_WEBHOOK_SECRET, {})
        self.assertEqual(r.status, 404)
        wait_until(lambda: "no such endpoint" in self.bridge.log())


class TestJsonLog(LogCase):
    def test_every_line_is_json_with_its_context(self):
        self.start_bridge(log={"format": "json", "level": "debug"})
        task, _ = self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        self.assertEqual(self.bridge.post_chatra({}, secret="wrong-secret-000000").status, 401)
        self.leak_attempts()
        self.assertEqual(self.bridge.stop(), 0)

        records = self.records()
        self.assertGreater(len(records), 5)
        for r in records:
            for key in ("time", "level", "module", "message"):
                self.assertIsInstance(r.get(key), str, r)
            self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(r["level"], PRIORITY)
            for key in ("conversation", "job"):
                if key in r:
                    self.assertIsInstance(r[key], int, r)
        modules = {r["module"] for r in records}
        self.assertTrue({"daemon", "http_server", "refusals"} <= modules, modules)

        # A job's line names its job, conversation and channel.
        made = [r for r in records if re.search(r"task %d created" % task, r["message"])]
        self.assertEqual(len(made), 1, records)
        m = re.match(r"conversation (\d+):", made[0]["message"])
        self.assertEqual(made[0]["conversation"], int(m.group(1)))
        self.assertEqual(made[0]["channel"], "shop")
        self.assertGreater(made[0]["job"], 0)
        self.assertEqual(made[0]["module"], "task")
        # Lines outside any job carry none of that.
        started = [r for r in records if "listening on http://" in r["message"]]
        self.assertEqual(len(started), 1)
        self.assertFalse({"channel", "conversation", "job"} & set(started[0]))
        # A webhook's refusal names the channel it was for and the address.
        wrong = [r for r in records if "401 wrong webhook secret" in r["message"]]
        self.assertEqual(len(wrong), 1, records)
        self.assertEqual(wrong[0]["channel"], "shop")
        self.assertEqual(wrong[0]["level"], "warn")
        self.assertIn("request from 127.0.0.1 refused", wrong[0]["message"])
        self.assert_no_secret()

    def test_text_is_the_default(self):
        self.start_bridge()
        self.open_chat("client-1")
        self.wait_idle()
        self.leak_attempts()
        self.assertEqual(self.bridge.stop(), 0)
        lines = self.lines()
        self.assertGreater(len(lines), 3)
        for line in lines:
            self.assertRegex(line, TEXT_LINE)
        self.assert_no_secret()

    def test_bad_format_is_refused(self):
        self.config["log"]["format"] = "xml"
        r = self.bridge.run("check-config", "--config", self.bridge.write_config())
        self.assertEqual(r.returncode, 1)
        self.assertIn('log.format: must be "text" or "json"', r.stdout + r.stderr)


class TestJournal(LogCase):
    def journal_stream(self):
        """JOURNAL_STREAM as systemd would set it: the device and inode of the bridge's stderr,
        which the harness points at bridge.log."""
        open(self.bridge.log_path, "ab").close()
        st = os.stat(self.bridge.log_path)
        return "%d:%d" % (st.st_dev, st.st_ino)

    def test_priorities_under_systemd(self):
        self.bridge.env["JOURNAL_STREAM"] = self.journal_stream()
        self.start_bridge(log={"level": "debug"})
        self.open_chat("client-1")
        self.wait_idle()
        self.assertEqual(self.bridge.post_chatra({}, channel="nochannel").status, 404)
        self.assertEqual(self.bridge.stop(), 0)
        lines = self.lines()
        for line in lines:
            m = JOURNAL_LINE.match(line)
            self.assertIsNotNone(m, line)
            self.assertEqual(m.group(1), PRIORITY[m.group(2)], line)
            self.assertNotRegex(line, r"^<\d>\w+ \d{4}-\d\d-\d\dT")
        self.assertTrue(any(line.startswith("<6>info ") for line in lines))
        self.assertTrue(any(line.startswith("<4>warn request from 127.0.0.1 refused: 404 unknown channel")
                            for line in lines), lines)
        self.assertTrue(any(line.startswith("<7>debug ") for line in lines))

    def test_a_stream_that_is_not_ours_changes_nothing(self):
        # Inherited from a parent whose output went to the journal, but stderr is a file here.
        st = os.stat(os.path.dirname(self.bridge.log_path))
        self.bridge.env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        self.start_bridge()
        self.assertEqual(self.bridge.stop(), 0)
        for line in self.lines():
            self.assertRegex(line, TEXT_LINE)

    def test_json_lines_stay_json_under_systemd(self):
        self.bridge.env["JOURNAL_STREAM"] = self.journal_stream()
        self.start_bridge(log={"format": "json"})
        self.assertEqual(self.bridge.stop(), 0)
        self.assertTrue(self.records())


class TestRefusedRequests(LogCase):
    def refusals(self, needle):
        return [line for line in self.lines() if "refused: " + needle in line]

    def test_once_a_minute_per_address_and_reason_with_a_count(self):
        self.start_bridge(limits={"max_body_bytes": 1024})
        for i in range(50):
            # Different names, one reason: one line, the latest name in the count's line.
            self.assertEqual(self.bridge.post_chatra({}, channel="nochannel%d" % i).status, 404)
        first = self.refusals("404 unknown channel")
        self.assertEqual(len(first), 1, first)
        self.assertIn('request from 127.0.0.1 refused: 404 unknown channel "nochannel0"', first[0])
        self.assertNotIn("more since", first[0])

        # Every other reason has a line of its own at once.
        self.assertEqual(self.bridge.post_chatra({}, secret="wrong-secret-000000").status, 401)
        self.assertEqual(self.bridge.post("/wp-login.php", {}).status, 404)
        self.assertEqual(self.bridge.get("/webhooks/chatra/shop/x").status, 405)
        self.assertEqual(self.bridge.post_chatra("x" * 2000).status, 413)
        for needle in ('401 wrong webhook secret "shop"', '404 no such endpoint "POST /wp-login.php"',
                       '405 method not allowed "GET /webhooks/chatra/shop/..."',
                       '413 body too large "POST /webhooks/chatra/shop/..."'):
            self.assertEqual(len(self.refusals(needle)), 1, (needle, self.lines()))
        self.assertEqual(len(self.refusals("404 unknown channel")), 1)

        # The count is written when the minute is over, or at the latest when the bridge stops.
        self.assertEqual(self.bridge.stop(), 0)
        lines = self.refusals("404 unknown channel")
        self.assertEqual(len(lines), 2, lines)
        self.assertRegex(lines[1], r'404 unknown channel "nochannel49" \(49 more since \d\d:\d\d:\d\d\)$')
        # A reason refused once has no count to write.
        self.assertEqual(len(self.refusals("401 wrong webhook secret")), 1)
        self.assert_no_secret()

    def test_too_many_requests_and_wrong_secrets(self):
        self.start_bridge(limits={"bad_secrets_per_minute": 2})
        statuses = [self.bridge.post_chatra({}, secret="wrong-secret-00000%d" % i).status for i in range(5)]
        self.assertEqual(statuses, [401, 401, 429, 429, 429])
        self.assertEqual(len(self.refusals('401 wrong webhook secret "shop"')), 1)
        self.assertEqual(len(self.refusals('429 too many wrong secrets "shop"')), 1)
        self.bridge.stop()
        self.assertEqual(len(self.refusals('401 wrong webhook secret "shop" (1 more since')), 1)
        self.assertEqual(len(self.refusals('429 too many wrong secrets "shop" (2 more since')), 1)

    def test_an_unknown_channel_name_is_escaped(self):
        self.start_bridge()
        # A name with a quote, a backslash and a control byte, as the URL carries them.
        self.assertEqual(self.bridge.post('/webhooks/chatra/a"b\\c%01/x', {}).status, 404)
        self.bridge.stop()
        line = self.refusals("404 unknown channel")[0]
        self.assertTrue(line.endswith('404 unknown channel "a%22b%5Cc%01"'), line)


if __name__ == "__main__":
    unittest.main()
