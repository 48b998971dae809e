"""Issue behaviour 3: configuration.  env:/file: references, check-config reports every
problem at once (file:line:col or the key path), the daemon refuses a bad config, and
secrets never appear in output or logs."""

import json
import os
import re
import socket
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import (PLANFIX_TOKEN, PLANFIX_WEBHOOK_SECRET, TEST_ENV, chat_event, msg, wait_until)  # noqa: E402
from e2e import E2ECase  # noqa: E402


class ConfigCase(E2ECase):
    def write(self, name, text):
        path = os.path.join(self.bridge.tmpdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def write_config(self, config, name="config.json"):
        return self.write(name, json.dumps(config, indent=2))

    def check(self, path):
        return self.bridge.run("check-config", "--config", path)

    def assert_no_secret(self, text, where):
        for name, value in TEST_ENV.items():
            self.assertNotIn(value, text, "the value of %s appears in %s" % (name, where))

    def problem_lines(self, stderr, path):
        lines = [l for l in stderr.splitlines() if l.strip()]
        self.assertTrue(lines, "no output on stderr")
        summary = lines[-1]
        m = re.match(r"^(\d+) problems? in %s$" % re.escape(path), summary)
        self.assertIsNotNone(m, "last line should count the problems: %r" % summary)
        problems = lines[:-1]
        self.assertEqual(int(m.group(1)), len(problems), stderr)
        return problems


class TestCheckConfig(ConfigCase):
    def test_a_valid_config_passes(self):
        path = self.bridge.write_config()
        r = self.check(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "%s: OK" % path)
        self.assertEqual(r.stderr, "")
        self.assert_no_secret(r.stdout + r.stderr, "check-config output")

    def test_every_problem_is_reported_at_once(self):
        self.write("templates/desc.html", "<p>\n{{visitor.name}}\n  {{visitor.emial}}\n"
                                         "{{#chat.messages}}{{text}}{{/chat.messages}}\n</p>\n")
        config = self.config
        config["listen"]["port"] = 70000
        config["log"]["level"] = "loud"
        config["tracker"]["url"] = "ftp://example.planfix.com/rest"
        config["tracker"]["requests_per_second"] = "fast"
        config["employees"][0]["email"] = "anna-at-example.com"
        ch = config["channels"][0]
        ch["webhook_secret"] = "short"
        ch["employees"] = ["nobody@example.com"]
        ch["colse_on_leave"] = True
        ch["send_as_employee"] = "yes"
        ch["task"] = {"template_id": 12, "closed_status_id": 3, "title": "Chat with {{visitor.nmae}}",
                      "description_file": "templates/desc.html"}
        path = self.write_config(config, "bad.json")
        r = self.check(path)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, "")
        problems = self.problem_lines(r.stderr, path)
        expected = [
            ("listen.port", "must be between"),
            ("log.level", "must be one of"),
            ("tracker.url", "http://"),
            ("tracker.requests_per_second", "must be a number"),
            ("employees[0].email", "e-mail"),
            ("channels[0].webhook_secret", "16 characters"),
            ("channels[0].employees[0]", "nobody@example.com"),
            ("channels[0].colse_on_leave", "unknown setting"),
            ("channels[0].send_as_employee", "true or false"),
        ]
        for key, words in expected:
            found = [p for p in problems if p.startswith("%s: %s: " % (path, key)) and words in p]
            self.assertEqual(len(found), 1, "one problem for %s (%r) expected in:\n%s" % (key, words, r.stderr))
        # Template problems name the template's position.
        self.assertEqual(len([p for p in problems if re.match(
            r"^%s: channels\[0\]\.task\.title:1:\d+: unknown template variable \"visitor\.nmae\"$" % re.escape(path),
            p)]), 1, r.stderr)
        self.assertEqual(len([p for p in problems if re.match(
            r"^(\S*/)?templates/desc\.html:3:3: unknown template variable \"visitor\.emial\"$", p)]), 1, r.stderr)
        self.assertEqual(len(problems), len(expected) + 2, r.stderr)
        for p in problems:
            self.assertRegex(p, r"^(%s: [a-z_\[\].0-9]+[:]|\S+:\d+:\d+: )" % re.escape(path))

    def test_a_syntax_error_is_reported_with_file_line_and_column(self):
        path = self.write("syntax.json", '{\n  "listen": {"port": 8080},\n  "tracker": {"kind": "planfix",, }\n}\n')
        r = self.check(path)
        self.assertNotEqual(r.returncode, 0)
        [problem] = self.problem_lines(r.stderr, path)
        self.assertRegex(problem, r"^%s:3:\d+: \S" % re.escape(path))

    def test_a_duplicate_key_is_reported_with_its_position(self):
        path = self.write("dup.json", '{\n  "log": {"level": "info"},\n  "log": {"level": "debug"}\n}\n')
        r = self.check(path)
        self.assertNotEqual(r.returncode, 0)
        [problem] = self.problem_lines(r.stderr, path)
        self.assertRegex(problem, r"^%s:3:\d+: .*duplicate" % re.escape(path))

    def test_a_missing_config_file_is_an_error(self):
        r = self.check(os.path.join(self.bridge.tmpdir, "nothing-here.json"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nothing-here.json", r.stderr)


class TestReferences(ConfigCase):
    def test_a_missing_or_empty_environment_variable_is_a_problem(self):
        path = self.bridge.write_config()
        del self.bridge.env["PLANFIX_TOKEN"]
        self.bridge.env["CHATRA_SHOP_SECRET_KEY"] = ""
        r = self.check(path)
        self.assertNotEqual(r.returncode, 0)
        problems = self.problem_lines(r.stderr, path)
        self.assertIn("%s: tracker.token: environment variable PLANFIX_TOKEN is not set" % path, problems)
        self.assertEqual(len([p for p in problems if p.startswith("%s: channels[0].chatra.secret_key: " % path)
                              and "CHATRA_SHOP_SECRET_KEY" in p]), 1, r.stderr)
        self.assertEqual(len(problems), 2, r.stderr)
        self.assert_no_secret(r.stdout + r.stderr, "check-config output")

    def test_file_references_are_read_relative_to_the_config(self):
        self.write("secrets/planfix-token", PLANFIX_TOKEN + "\n")
        hook = self.write("secrets/hook", PLANFIX_WEBHOOK_SECRET + "\n")
        self.config["tracker"]["token"] = "file:secrets/planfix-token"
        self.config["tracker"]["webhook_secret"] = "file:" + hook     # absolute
        del self.bridge.env["PLANFIX_TOKEN"]
        del self.bridge.env["PLANFIX_WEBHOOK_SECRET"]
        path = self.bridge.write_config()
        r = self.check(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The daemon uses them: the fake Planfix accepts only the exact token.
        self.bridge.start()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        [task] = self.wait_task()
        for req in self.fakes.planfix_requests():
            self.assertEqual(req["headers"]["Authorization"], "Bearer " + PLANFIX_TOKEN)
            self.assertEqual(req["status"], 201)
        status, _ = self.bridge.post_planfix(task["id"])
        self.assertEqual(status, 200)
        self.wait_pf("/rest/task/%d/comments/list" % task["id"])
        self.assert_no_secret(self.bridge.log(), "the bridge log")

    def test_a_missing_file_is_a_problem(self):
        self.config["tracker"]["token"] = "file:secrets/none"
        path = self.bridge.write_config()
        r = self.check(path)
        self.assertNotEqual(r.returncode, 0)
        [problem] = self.problem_lines(r.stderr, path)
        self.assertTrue(problem.startswith("%s: tracker.token: cannot read " % path), problem)
        self.assertIn("secrets/none", problem)


class TestDaemonRefusesBadConfig(ConfigCase):
    def assert_not_listening(self):
        with socket.socket() as s:
            s.settimeout(1)
            self.assertNotEqual(s.connect_ex(("127.0.0.1", self.bridge.port)), 0, "something listens on the port")

    def test_the_daemon_exits_non_zero_and_prints_the_problems(self):
        self.config["tracker"]["url"] = "ftp://nowhere"
        self.config["channels"][0]["webhook_secret"] = "short"
        path = self.bridge.write_config()
        checked = self.check(path)
        r = self.bridge.run("--config", path, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        for line in checked.stderr.splitlines():
            self.assertIn(line, r.stderr)
        self.assertIn("tracker.url", r.stderr)
        self.assertIn("channels[0].webhook_secret", r.stderr)
        self.assert_not_listening()
        self.assertFalse(os.path.exists(os.path.join(self.bridge.tmpdir, "bridge.db")), "the store was created")
        self.assert_no_secret(r.stdout + r.stderr, "the daemon's output")

    def test_the_daemon_refuses_a_syntax_error(self):
        path = self.write("syntax.json", '{"listen": {"port": %d}, "tracker": }' % self.bridge.port)
        r = self.bridge.run("--config", path, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"%s:1:\d+: " % re.escape(path))
        self.assert_not_listening()

    def test_the_daemon_refuses_a_missing_environment_variable(self):
        path = self.bridge.write_config()
        del self.bridge.env["CHATRA_SHOP_WEBHOOK_SECRET"]
        r = self.bridge.run("--config", path, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("channels[0].webhook_secret: environment variable CHATRA_SHOP_WEBHOOK_SECRET is not set",
                      r.stderr)
        self.assert_not_listening()


class TestSecretsNeverPrinted(ConfigCase):
    def test_no_secret_in_the_log_of_a_busy_run(self):
        self.start_bridge()       # log level debug
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "status", "status": 500}])
        self.fakes.faults("chatra", [{"match": "POST /api/messages/", "action": "status", "status": 500},
                                     {"match": "POST /api/messages/", "action": "status", "status": 401}])
        task, _ = self.open_chat("client-1", email="maria@example.org", name="Maria Lopez")
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "more words")], email="maria@example.org"))
        self.wait_comment_posts(task, 1)
        for text in ("reply one", "reply two"):
            self.fakes.employee_comment(task, text=text)
            self.assertEqual(self.bridge.post_planfix(task)[0], 200)
            self.wait_pf("/rest/task/%d/comments/list" % task, count=1 if text == "reply one" else 2)
        wait_until(lambda: len(self.fakes.chatra_requests("/messages/")) >= 2)
        # Refused webhooks, with secrets close to the real ones.
        for secret in (TEST_ENV["CHATRA_SHOP_WEBHOOK_SECRET"][:-1], "x" + TEST_ENV["CHATRA_SHOP_WEBHOOK_SECRET"]):
            self.assertEqual(self.bridge.post_chatra(chat_event("chatFragment", "client-1", []), secret=secret)[0], 401)
        self.assertEqual(self.bridge.post_planfix(task, secret=PLANFIX_WEBHOOK_SECRET[:-1])[0], 401)
        self.assertEqual(self.bridge.post_chatra(b"{not json")[0], 400)
        self.post(chat_event("chatTranscript", "client-1", [msg("m3", "bye")], email="maria@example.org"))
        self.wait_pf("/rest/task/%d" % task)
        self.wait_settled()
        self.assertEqual(self.bridge.stop(), 0)
        log = self.bridge.log()
        self.assertIn("will retry", log)     # the failures were logged
        self.assert_no_secret(log, "the bridge log")

    def wait_settled(self):
        wait_until(lambda: self.health()["engine"]["inbox_pending"] == 0
                   and self.health()["engine"]["jobs"]["in_flight"] == 0, message="bridge still busy")

    def test_no_secret_in_check_config_output_for_a_bad_config(self):
        self.config["log"]["level"] = "loud"
        self.config["tracker"]["webhook_secret"] = "env:PLANFIX_WEBHOOK_SECRET"
        self.config["channels"][0]["webhook_secret"] = "has spaces and is long enough"
        self.bridge.env["CHATRA_SHOP_WEBHOOK_SECRET"] = "has spaces and is long enough"
        path = self.bridge.write_config()
        r = self.check(path)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("channels[0].webhook_secret", r.stderr)
        self.assertNotIn("has spaces and is long enough", r.stderr)
        self.assert_no_secret(r.stdout + r.stderr, "check-config output")

    def test_a_literal_secret_next_to_a_syntax_error_is_not_printed(self):
        # An unterminated string right after a literal token: the parser's message must not
        # quote the token.
        path = self.write("broken.json", '{\n  "tracker": {"kind": "planfix", "token": "%s\n  }\n}\n' % PLANFIX_TOKEN)
        r = self.check(path)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"%s:2:\d+: " % re.escape(path))
        self.assertNotIn(PLANFIX_TOKEN, r.stderr + r.stdout, "check-config printed the token")
        r = self.bridge.run("--config", path, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn(PLANFIX_TOKEN, r.stderr + r.stdout, "the daemon printed the token")


if __name__ == "__main__":
    unittest.main()
