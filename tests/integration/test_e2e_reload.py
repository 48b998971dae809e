"""Issue 12, point 2: SIGHUP reloads the config and its templates.

It shows that, with the daemon running:
  - a changed template file is used by the next task after SIGHUP, the earlier task keeps what it
    had, and no webhook posted around the reload is refused;
  - a broken config (a syntax error, an unknown template variable) is refused with the lines
    check-config prints: the daemon keeps running on the old config and its templates;
  - a changed requests_per_second, coalesce_ms and channel settings take effect, a new channel
    gets webhooks and a task, a removed one gets 404;
  - listen.port and store.path are reported as needing a restart and keep their running value;
  - a job in flight during the reload finishes with the config it started with, once, and that
    config is released after it;
  - several reloads release every old config (BR_VALGRIND=1 shows no leak: scripts/test runs this
    file under valgrind); SIGHUP during shutdown changes nothing;
  - with Redmine, a reload makes a new driver that creates issues and relays notes.
"""

import json
import os
import re
import signal
import sys
import threading
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import PLANFIX_TOKEN, VALGRIND, apply_overrides, chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase, split_coalesced  # noqa: E402
from test_e2e_redmine import POLL_WAIT, RedmineCase  # noqa: E402

WAIT = 60 if VALGRIND else 20      # seconds for anything the bridge does at once
ONE = "<p>Version one for {{visitor.name}}</p>{{#chat.messages}}<p>{{{text_html}}}</p>{{/chat.messages}}"
TWO = "<p>Version two for {{visitor.name}}</p>{{#chat.messages}}<p>{{{text_html}}}</p>{{/chat.messages}}"
DESK_SECRET = "desk-hook-secret-0123456789"
RELEASED = "engine: an older config is released"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Poster(threading.Thread):
    """Posts one visitor message after another into a chat until stopped, keeping each answer."""

    def __init__(self, bridge, client, name):
        super().__init__(daemon=True)
        self.bridge, self.client, self.name = bridge, client, name
        self.statuses, self.texts = [], []
        self.done = threading.Event()

    def run(self):
        i = 0
        while not self.done.is_set():
            text = "Loop message %03d" % i
            try:
                status, _ = self.bridge.post_chatra(chat_event(
                    "chatFragment", self.client, [msg("%s-loop-%d" % (self.client, i), text)], name=self.name))
            except OSError as e:
                status = repr(e)
            self.statuses.append(status)
            self.texts.append(text)
            i += 1
            time.sleep(0.01)


class ReloadCase(E2ECase):
    def setUp(self):
        super().setUp()
        self.description = os.path.join(self.bridge.tmpdir, "description.html")
        write(self.description, ONE)

    # --- the config file and the signal -------------------------------------------------

    def rewrite(self, **overrides):
        """Writes the config file anew with overrides (as start_bridge takes them; None removes
        a key).  The running bridge reads it at the next SIGHUP."""
        self.bridge.config = self.config = apply_overrides(self.config, overrides)
        self.bridge.write_config()

    def outcomes(self):
        log = self.bridge.log()
        return (log.count("reload: config %s loaded" % self.bridge.config_path),
                log.count("reload refused: the bridge keeps running on the config loaded at "))

    def hup(self, refused=False):
        """SIGHUP, then waits until the bridge logs that it took the config (or refused it)."""
        loaded, refusals = self.outcomes()
        want = (loaded, refusals + 1) if refused else (loaded + 1, refusals)
        self.bridge.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.outcomes() == want, WAIT,
                   message=lambda: "no reload outcome %s, got %s; log:\n%s" % (want, self.outcomes(),
                                                                               self.bridge.log_tail(20)))
        self.assertTrue(self.bridge.running)

    def start_with_description(self, **overrides):
        return self.start_bridge(channel={"task": {"description_file": "description.html"}}, **overrides)

    def task_description(self, client, name):
        task, _ = self.open_chat(client, [msg(client + "-m1", "Hello from " + name)], name=name)
        return task, self.fakes.planfix_task(task)["description"]

    def all_comments(self, task):
        parts = []
        for c in self.fakes.planfix_comments(task):
            parts += split_coalesced(c["description"])
        return parts


class TestReloadTemplates(ReloadCase):
    def test_a_changed_template_is_used_by_the_next_task_and_no_webhook_is_refused(self):
        self.start_with_description()
        first, d1 = self.task_description("tpl-1", "Maria")
        self.assertIn("Version one for Maria", d1)

        poster = Poster(self.bridge, "tpl-1", "Maria")
        poster.start()
        try:
            wait_until(lambda: len(poster.statuses) >= 5, WAIT, message="the poster posts nothing")
            write(self.description, TWO)
            self.hup()
            at_reload = len(poster.statuses)
            wait_until(lambda: len(poster.statuses) >= at_reload + 5, WAIT, message="no webhook after the reload")
        finally:
            poster.done.set()
            poster.join(WAIT)
        self.assertEqual(set(poster.statuses), {200}, poster.statuses)

        second, d2 = self.task_description("tpl-2", "Ivo")
        self.assertIn("Version two for Ivo", d2)
        self.assertNotIn("Version one", d2)
        # The first task keeps its description, and each message posted around the reload is on it once.
        self.assertEqual(self.fakes.planfix_task(first)["description"], d1)
        wait_until(lambda: len(self.all_comments(first)) >= len(poster.texts), WAIT,
                   message=lambda: "comments on %d: %s" % (first, self.all_comments(first)))
        self.wait_idle(WAIT)
        self.assertEqual(sorted(self.all_comments(first)), sorted(poster.texts))
        self.assertEqual(len(self.pf("/task/", "POST")), 2)

    def test_a_broken_config_is_refused_and_the_old_templates_stay(self):
        self.start_with_description()
        _, d1 = self.task_description("broken-1", "Anna")
        self.assertIn("Version one", d1)

        # A syntax error: the template file changed too, but nothing of the new config is taken.
        write(self.description, TWO)
        write(self.bridge.config_path, '{"listen": {"host": "127.0.0.1",, "port": 1}}')
        checked = self.bridge.run("check-config", "--config", self.bridge.config_path)
        self.assertEqual(checked.returncode, 1)
        self.hup(refused=True)
        problems = [line for line in checked.stderr.splitlines() if line]
        self.assertTrue(problems)
        for line in problems:
            self.assertRegex(self.bridge.log(), r"(?m) error %s$" % re.escape(line))
        self.assertRegex(self.bridge.log(), r"reload refused: the bridge keeps running on the config loaded at "
                                            r"\d\d:\d\d:\d\d\n")
        self.assertEqual(self.bridge.get("/healthz").status, 200)
        _, d2 = self.task_description("broken-2", "Boris")
        self.assertIn("Version one for Boris", d2)

        # A template with an unknown variable: refused with check-config's line, old template kept.
        write(self.description, "<p>{{visitor.nmae}}</p>")
        self.rewrite()
        checked = self.bridge.run("check-config", "--config", self.bridge.config_path)
        self.assertEqual(checked.returncode, 1)
        self.assertIn("unknown template variable", checked.stderr)
        self.hup(refused=True)
        for line in (line for line in checked.stderr.splitlines() if line):
            self.assertRegex(self.bridge.log(), r"(?m) error %s$" % re.escape(line))
        _, d3 = self.task_description("broken-3", "Carla")
        self.assertIn("Version one for Carla", d3)

        # Fixed: the next reload takes it.
        write(self.description, TWO)
        self.hup()
        _, d4 = self.task_description("broken-4", "Dora")
        self.assertIn("Version two for Dora", d4)
        self.assertNotIn(PLANFIX_TOKEN, self.bridge.log())

    def test_a_job_in_flight_finishes_with_its_config_once(self):
        self.start_with_description()
        # The task's creation is answered 6 s late (and takes effect): the reload comes meanwhile.
        self.fakes.faults("planfix", {"match": "POST /rest/task/$", "action": "delay", "seconds": 6})
        self.post(chat_event("chatStarted", "flight-1", [msg("flight-1-m1", "Are you open on Sunday?")],
                             name="Olga"))
        self.wait_pf("/task/", timeout=WAIT)
        write(self.description, TWO)
        self.rewrite(channel={"task": {"template_id": 15}})
        self.hup()
        self.post(chat_event("chatFragment", "flight-1", [msg("flight-1-m2", "Or on Monday?")], name="Olga"))
        [task] = self.wait_task(1, timeout=WAIT)
        wait_until(lambda: self.all_comments(task["id"]), WAIT, message="no comment")
        self.wait_idle(WAIT)
        # Made once, as it began (the old template and template id); the message after it once.
        self.assertEqual(len(self.pf("/task/", "POST")), 1)
        log = self.bridge.log()
        self.assertLess(log.index("reload: config "), log.index("task %d created" % task["id"]),
                        "the reload did not come while the task was being made")
        self.assertIn("Version one for Olga", task["description"])
        self.assertEqual(task["template"], 12)
        self.assertEqual(self.all_comments(task["id"]), ["Or on Monday?"])
        # The old config went once its job had ended, not before.
        wait_until(lambda: RELEASED in self.bridge.log(), WAIT, message="the old config is never released")
        log = self.bridge.log()
        self.assertLess(log.index("task %d created" % task["id"]), log.index(RELEASED))
        # New work uses the new config.
        second, d2 = self.task_description("flight-2", "Pavel")
        self.assertIn("Version two for Pavel", d2)
        self.assertEqual(self.fakes.planfix_task(second)["template"], 15)

    def test_several_reloads_release_every_old_config(self):
        self.start_with_description()
        for i in range(5):
            write(self.description, "<p>Round %d for {{visitor.name}}</p>" % i)
            self.hup()
            _, d = self.task_description("round-%d" % i, "Visitor%d" % i)
            self.assertIn("Round %d for Visitor%d" % (i, i), d)
        self.wait_idle(WAIT)
        wait_until(lambda: self.bridge.log().count(RELEASED) == 5, WAIT,
                   message=lambda: "%d old configs released, want 5" % self.bridge.log().count(RELEASED))

    def test_sighup_while_shutting_down_is_harmless(self):
        self.start_bridge()
        self.open_chat("bye-1")
        p = self.bridge.proc
        p.send_signal(signal.SIGTERM)
        while p.poll() is None:
            try:
                p.send_signal(signal.SIGHUP)
            except ProcessLookupError:
                break
            time.sleep(0.002)
        self.assertEqual(self.bridge.kill(signal.SIGTERM), 0, self.bridge.log_tail(20))
        self.assertIn("stopped cleanly", self.bridge.log())


class TestReloadSettings(ReloadCase):
    def test_a_changed_requests_per_second_applies(self):
        self.start_bridge(tracker={"requests_per_second": 20})
        self.open_chat("rps-0", email="rps0@example.org")
        self.rewrite(tracker={"requests_per_second": 2})
        self.hup()
        self.wait_idle(WAIT)
        # From here the fake counts every request closer than 0.5 s to the one before as a violation.
        self.fakes.settings("planfix", rps=2, rps_tolerance=0.01)
        self.fakes.clear_requests("planfix")
        for i in range(1, 4):
            self.post(chat_event("chatStarted", "rps-%d" % i, [msg("rps-%d-m1" % i, "hello %d" % i)],
                                 email="rps%d@example.org" % i))
        self.wait_task(4, timeout=WAIT)
        self.wait_idle(WAIT)
        stats = self.fakes.stats("planfix")
        self.assertEqual(stats["violations"], 0, stats)
        self.assertEqual(stats["requests"], 9, self.pf_calls())   # lookup, contact and task per chat

    def test_a_changed_coalesce_ms_applies(self):
        self.start_bridge()   # coalesce_ms 0: each message its own comment
        task, _ = self.open_chat("co-1")
        self.post(chat_event("chatFragment", "co-1", [msg("co-1-m2", "First before")]))
        self.wait_comment_posts(task, 1, timeout=WAIT)
        self.post(chat_event("chatFragment", "co-1", [msg("co-1-m3", "Second before")]))
        self.wait_comment_posts(task, 2, timeout=WAIT)
        self.rewrite(tracker={"coalesce_ms": 4000})
        self.hup()
        # Two messages typed within coalesce_ms go as one comment now.
        self.post(chat_event("chatFragment", "co-1", [msg("co-1-m4", "First after")]))
        self.post(chat_event("chatFragment", "co-1", [msg("co-1-m5", "Second after")]))
        self.wait_comment_posts(task, 3, timeout=WAIT)
        self.wait_idle(WAIT)
        posts = [p["body"]["description"] for p in self.comment_posts(task)]
        self.assertEqual(len(posts), 3, posts)
        self.assertEqual(split_coalesced(posts[0]), ["First before"])
        self.assertEqual(split_coalesced(posts[1]), ["Second before"])
        self.assertEqual(split_coalesced(posts[2]), ["First after", "Second after"])

    def test_channel_settings_a_new_channel_and_a_removed_one(self):
        self.start_bridge()
        desk = dict(self.config["channels"][0], name="desk", webhook_secret=DESK_SECRET,
                    task={"template_id": 21, "closed_status_id": 3})
        self.assertEqual(self.bridge.post_chatra(chat_event("chatStarted", "desk-0"), channel="desk",
                                                 secret=DESK_SECRET)[0], 404)
        self.rewrite(channel={"task": {"template_id": 15}, "watchers": ["user:6"]})
        self.config["channels"].append(desk)
        self.rewrite()
        self.hup()
        self.assertIn("reload: channel desk added", self.bridge.log())
        shop_task, _ = self.open_chat("ch-shop")
        self.assertEqual(self.fakes.planfix_task(shop_task)["template"], 15)
        self.assertEqual(self.pf("/task/", "POST")[-1]["body"]["auditors"], {"users": [{"id": "user:6"}]})
        status, _ = self.bridge.post_chatra(chat_event("chatStarted", "ch-desk", [msg("ch-desk-m1", "Hi desk")]),
                                            channel="desk", secret=DESK_SECRET)
        self.assertEqual(status, 200)
        desk_task = self.wait_task(2, timeout=WAIT)[1]
        self.assertEqual(desk_task["template"], 21)
        self.assertIn("chatra:desk", [u["name"] for u in self.health()["engine"]["upstreams"]])

        # Removed again: its webhooks get 404, the shop goes on.
        self.config["channels"].pop()
        self.rewrite()
        self.hup()
        self.assertIn("reload: channel desk removed", self.bridge.log())
        self.assertEqual(self.bridge.post_chatra(chat_event("chatStarted", "ch-desk-2"), channel="desk",
                                                 secret=DESK_SECRET)[0], 404)
        self.open_chat("ch-shop-2")

    def test_changed_limits_apply(self):
        self.start_bridge()
        long = chat_event("chatStarted", "lim-1", [msg("lim-1-m1", "x" * 3000)])
        self.post(long)
        self.rewrite(limits={"max_body_bytes": 2048, "per_address_rps": 0.01, "per_address_burst": 1})
        self.hup()
        self.assertEqual(self.bridge.post_chatra(long)[0], 413)
        self.assertEqual(self.bridge.post_chatra(chat_event("chatFragment", "lim-1", [msg("lim-1-m2", "short")]))[0],
                         200)
        # The server answered the 413 itself; the burst of 1 went to "short" (one refill in 100 s).
        self.assertEqual(self.bridge.post_chatra(chat_event("chatFragment", "lim-1", [msg("lim-1-m3", "more")]))[0],
                         429)
        self.assertEqual(self.bridge.get("/healthz").status, 200)

    def test_trusted_proxies_and_the_log_format_apply(self):
        refused = re.compile(r"request from (\S+) refused: 404 ")

        def probe(client):
            status = self.bridge.post("/webhooks/chatra/nochannel/x", {}, {"X-Forwarded-For": client}).status
            self.assertEqual(status, 404)
            wait_until(lambda: refused.findall(self.bridge.log()), WAIT, message="no refusal line")
            return refused.findall(self.bridge.log())[-1]

        self.start_bridge(listen={"trusted_proxies": ["127.0.0.1"]})
        self.assertEqual(probe("203.0.113.7"), "203.0.113.7")
        # The same list in a new config: the server reads it there once the old config is gone.
        self.hup()
        wait_until(lambda: RELEASED in self.bridge.log(), WAIT, message="the old config is never released")
        self.assertEqual(probe("198.51.100.9"), "198.51.100.9")
        # No proxy trusted any more: the header is ignored, and lines are JSON from now on.
        self.rewrite(listen={"trusted_proxies": []}, log={"format": "json"})
        self.hup()
        self.assertEqual(self.bridge.post("/webhooks/chatra/nochannel/x", {},
                                          {"X-Forwarded-For": "192.0.2.55"}).status, 404)
        line = wait_until(lambda: [l for l in self.bridge.log().splitlines()
                                   if l.startswith("{") and "refused: 404" in l], WAIT, message="no JSON refusal")[-1]
        self.assertIn("request from 127.0.0.1 refused: 404 ", json.loads(line)["message"])

    def test_listen_port_and_store_path_need_a_restart(self):
        self.start_with_description()
        port = self.bridge.port
        store = os.path.join(self.bridge.tmpdir, "bridge.db")
        other = self.bridge.config["store"]["path"]
        write(self.description, TWO)
        self.rewrite(listen={"port": port + 1}, store={"path": "elsewhere.db"})
        self.config["listen"]["port"] = port   # the harness keeps talking to the running port
        self.hup()
        log = self.bridge.log()
        self.assertIn("reload: listen.port changed (%d -> %d): takes effect at the next restart" % (port, port + 1),
                      log)
        self.assertIn("reload: store.path changed (%s -> %s): takes effect at the next restart"
                      % (store, os.path.join(self.bridge.tmpdir, "elsewhere.db")), log)
        # Still on the old port and store; the rest of the new config applies.
        _, d = self.task_description("port-1", "Rita")
        self.assertIn("Version two for Rita", d)
        self.assertFalse(os.path.exists(os.path.join(self.bridge.tmpdir, "elsewhere.db")))
        self.assertEqual(other, "bridge.db")
        # Reported at each reload while the file differs from what runs.
        self.rewrite(listen={"port": port + 1})
        self.config["listen"]["port"] = port
        self.hup()
        self.assertEqual(self.bridge.log().count("reload: listen.port changed (%d -> %d)" % (port, port + 1)), 2)


class TestReloadRedmine(RedmineCase):
    def test_a_reload_makes_a_new_redmine_driver(self):
        self.start(task={"title": "Chat v1 with {{visitor.name}}"})
        first = self.open_chat("rm-reload-1", "Hello", name="Maria Before")
        self.assertEqual(first["subject"], "Chat v1 with Maria Before")

        self.config["channels"][0]["task"]["title"] = "Chat v2 with {{visitor.name}}"
        self.config["tracker"]["requests_per_second"] = 10
        self.bridge.config = self.config
        self.bridge.write_config()
        before = self.bridge.log().count("reload: config ")
        self.bridge.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.bridge.log().count("reload: config ") > before, POLL_WAIT,
                   message=lambda: self.bridge.log_tail(20))

        second = self.open_chat("rm-reload-2", "Hello again", name="Maria After")
        self.assertEqual(second["subject"], "Chat v2 with Maria After")
        self.assertEqual(self.issue(first["id"])["subject"], "Chat v1 with Maria Before")
        # The new driver polls: anna's note on the first issue reaches its chat.
        self.employee_note(first["id"], "anna", "Answered after the reload")
        wait_until(lambda: self.replies("rm-reload-1"), POLL_WAIT, message="the note did not reach the chat")
        self.assertEqual([t for t, _ in self.replies("rm-reload-1")], ["Answered after the reload"])


if __name__ == "__main__":
    unittest.main()
