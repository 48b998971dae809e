"""README, "Connect Chatra and Planfix", "Redmine" and "How it works", claim by claim.

Each test quotes the README line it checks.  The Planfix side runs against the fake Planfix and
the fake Chatra (tests/fakes); the Redmine side against a real Redmine (RedmineCase of
test_e2e_redmine.py: one Redmine per class, a fresh bridge and fakes per test).
"""

import json
import os
import sqlite3
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import (ANNA, CHATRA_SHOP_WEBHOOK_SECRET, PLANFIX_WEBHOOK_SECRET, assert_stays, chat_event, msg,  # noqa: E402
                     wait_until)
from test_e2e_redmine import CLOSED, POLL_WAIT, QUIET, REJECTED  # noqa: E402
from test_e2e_redmine_faults import ProxiedRedmineCase  # noqa: E402
from test_e2e_replies import ReplyCase, planfix_path, raw_post  # noqa: E402
from e2e import ANNA_AGENT, E2ECase  # noqa: E402


class TestConnectPlanfix(ReplyCase):
    def reply(self, html):
        self.fakes.employee_comment(self.task, owner="user:5", name="Anna", text=html)
        self.planfix_hook()
        [send] = self.wait_chatra(count=len(self.chat_messages()) + 1)[-1:]
        return send["body"]

    def test_every_html_entity_reaches_the_chat_as_its_character(self):
        # README: "A reply reaches the chat as plain text that keeps what the employee wrote: ...
        # and every HTML entity as its character".  HTML5's names too, not only HTML 4's.
        # And the legacy ones a browser reads without their ';'.
        body = self.reply("<p>&check; Paid&colon; 25&dollar; &bigstar;&half; &lpar;ok&rpar;"
                          " &LT;3 &amp;check; &copy 2026 Shop</p>")
        self.assertEqual(body["text"], "\u2713 Paid: 25$ \u2605\u00bd (ok) <3 &check; \u00a9 2026 Shop")
        self.assertEqual(body["agentId"], ANNA_AGENT)

    def test_the_planfix_body_as_typed_in_its_request_action(self):
        # README: "`POST https://YOUR-HOST/webhooks/planfix/<tracker.webhook_secret>` with the body
        # `{"task": "{{Task.Number}}"}`": as typed in the action's body field, on lines of its own,
        # whatever content type Planfix names.
        texts = []
        for i, (ctype, body) in enumerate((("text/plain", '\n  {"task": "%d"}\n'),
                                           ("application/x-www-form-urlencoded", '\r\n{"task": "%d"}'),
                                           ("application/json; charset=utf-8", '\t{ "task" : "%d" }\n'))):
            self.fakes.employee_comment(self.task, owner="user:5", name="Anna", text="reply %d" % i)
            status, answer = raw_post(self.bridge, planfix_path(), (body % self.task).encode(),
                                      {"Content-Type": ctype})
            self.assertEqual((status, answer), (200, '{"ok":true}'), ctype)
            texts.append("reply %d" % i)
            self.wait_chatra(count=i + 1)
            self.wait_idle()
        self.assertEqual([m["text"] for m in self.chat_messages()], texts)


class TestWebhookUrls(E2ECase):
    HELP_SECRET = "help-hook-secret-7890ab"

    def test_each_url_takes_only_its_own_secret(self):
        # README: "the URL `https://YOUR-HOST/webhooks/chatra/<channel>/<webhook_secret>`" and
        # "`POST https://YOUR-HOST/webhooks/planfix/<tracker.webhook_secret>`": a channel's URL takes
        # its own secret only, not another channel's nor the tracker's; an unknown channel is 404.
        help_channel = dict(self.config["channels"][0], name="help", webhook_secret=self.HELP_SECRET)
        self.start_bridge(channels=self.config["channels"] + [help_channel])
        ev = chat_event("chatStarted", "client-url", [msg("client-url-m1", "Hello")])
        self.assertEqual(self.bridge.post_chatra(ev, channel="help", secret=CHATRA_SHOP_WEBHOOK_SECRET)[0], 401)
        self.assertEqual(self.bridge.post_chatra(ev, channel="shop", secret=self.HELP_SECRET)[0], 401)
        self.assertEqual(self.bridge.post_chatra(ev, channel="shop", secret=PLANFIX_WEBHOOK_SECRET)[0], 401)
        self.assertEqual(self.bridge.post_chatra(ev, channel="shop", secret=CHATRA_SHOP_WEBHOOK_SECRET.upper())[0],
                         401)
        self.assertEqual(self.bridge.post_chatra(ev, channel="helpdesk", secret=self.HELP_SECRET)[0], 404)
        self.assertEqual(self.bridge.post_planfix(1, secret=CHATRA_SHOP_WEBHOOK_SECRET)[0], 401)
        self.assertEqual(self.bridge.post_planfix(1, secret=self.HELP_SECRET)[0], 401)
        # README (How it works): "Chatra webhook -> check secret -> parse once ...": the secret first.
        self.assertEqual(self.bridge.post_chatra("{not json", channel="shop", secret=self.HELP_SECRET)[0], 401)
        self.assertEqual(self.bridge.post_chatra("{not json", channel="helpdesk", secret=self.HELP_SECRET)[0], 404)
        self.assertEqual(self.bridge.post_chatra("{not json", channel="help", secret=self.HELP_SECRET)[0], 400)
        self.assert_quiet()
        self.assertEqual(self.pf_calls(), [])
        self.assertEqual(self.health()["engine"]["inbox_pending"], 0)
        # Each channel's own secret opens its own task.
        self.post(ev, channel="help", secret=self.HELP_SECRET)
        self.wait_task(1)

    def check_config(self, tracker, users):
        self.bridge.config = self.config = dict(self.config, tracker=dict(self.config["tracker"], **tracker))
        self.config["employees"] = [dict(ANNA, tracker_user=u, email="e%d@example.com" % i)
                                    for i, u in enumerate(users)]
        self.config["channels"][0]["employees"] = []
        self.bridge.env["REDMINE_API_KEY"] = "rm-key-0123456789abcdef"
        return self.bridge.run("check-config", "--config", self.bridge.write_config())

    def test_an_employees_tracker_user_is_checked_in_the_trackers_form(self):
        # README: "`tracker_user` (Planfix `"user:5"`, Redmine the login ...)", and: Redmine writes
        # "an agent's message typed in Chatra as that employee (`X-Redmine-Switch-User` with the
        # employee's login in `tracker_user` ...)".  A value of another form would never match a
        # comment's author: check-config names it.
        r = self.check_config({}, ["user:5", "5", "anna", "user:"])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for i, u in ((1, "5"), (2, "anna"), (3, "user:")):
            self.assertIn('employees[%d].tracker_user: "%s" is not a Planfix user id such as "user:5"' % (i, u),
                          r.stderr)
        self.assertNotIn("employees[0]", r.stderr)
        redmine = {"kind": "redmine", "url": "http://127.0.0.1:9", "api_key": "env:REDMINE_API_KEY",
                   "project": "chats", "closed_status_id": 5, "token": None, "webhook_secret": None}
        redmine = {k: v for k, v in redmine.items() if v is not None}
        self.config["tracker"] = {}
        self.config["channels"][0].pop("contact")
        self.config["channels"][0]["task"] = {}
        r = self.check_config(redmine, ["anna", "a.smith-2@shop_1", "user:5", "anna smith", "x" * 61])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for i, u in ((2, "user:5"), (3, "anna smith"), (4, "x" * 61)):
            self.assertIn('employees[%d].tracker_user: "%s" is not a Redmine login' % (i, u), r.stderr)
        self.assertNotIn("employees[0]", r.stderr)
        self.assertNotIn("employees[1]", r.stderr)
        r = self.check_config(redmine, ["anna", "a.smith-2@shop_1"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class TestHowItWorksPlanfix(ReplyCase):
    def fragment(self, *messages):
        self.post(chat_event("chatFragment", "client-1", list(messages), name="Maria Lopez",
                             email="maria@example.org"))

    def test_messages_without_an_id_are_told_apart_by_type_time_and_text(self):
        # README: "Messages are deduplicated by their Chatra id (or, without one, by type, time and
        # text)."  The same three again is the same message; another time, or another type, is not.
        t = 1763800100000
        self.fragment(msg(None, "no id", created_at=t))
        self.fragment(msg(None, "no id", created_at=t))
        self.fragment(msg(None, "no id", created_at=t + 60000))
        self.fragment(msg(None, "no id", created_at=t, type="agent", agent_id=ANNA_AGENT))
        self.fragment(msg(None, "no id", created_at=t), msg(None, "no id", created_at=t + 60000))
        self.wait_idle()
        self.assert_quiet()
        posts = self.comment_posts(self.task)
        texts = [p["body"]["description"] for p in posts]
        owners = sorted(p["body"]["owner"]["id"] for p in posts)
        self.assertEqual(texts.count("no id"), 3, texts)
        self.assertEqual(owners, sorted([self.contact, self.contact, "user:5"]), posts)


class TestRedmineReadme(ProxiedRedmineCase):
    def test_a_visitors_note_costs_two_requests(self):
        # README: "Each note costs two requests (Redmine does not answer the note's id, so the
        # bridge reads it back ...)", and "Once per start, the key's user and each employee's login
        # are looked up too".  The poll is kept out of the way by a long interval.
        self.start_proxied(tracker={"poll_interval_s": 3600})
        email = "maria.cost@example.org"
        n = self.open_chat("rm-cost", "Hello", name="Maria Cost", email=email)["id"]
        note = ["PUT /issues/%d.json" % n, "GET /issues/%d.json" % n]
        for i in (2, 3):
            self.wait_idle()
            mark = self.proxy.last_seq()
            self.say("rm-cost", "rm-cost-m%d" % i, "Question %d" % i, email=email)
            self.wait_notes(n, i - 1)
            self.wait_idle()
            calls = [c.split("?")[0] for c in self.proxy.calls(mark)]
            if i == 2 and calls[:1] == ["GET /users/current.json"]:
                self.assertEqual(calls[1:-2], ["GET /users.json"] * len(self.config["employees"]))
                calls = calls[-2:]
            self.assertEqual(calls, note)

    def test_a_private_note_of_a_channel_employee_never_reaches_the_chat(self):
        # README: "Notes of the channel's `employees` reach the chat as them, exactly as written
        # ...; private notes, other users' notes and the bridge's own never do."
        self.start_proxied()
        n = self.open_chat("rm-private", "Hello", name="Maria Private", email="maria.private@example.org")["id"]
        self._api("PUT", "/issues/%d.json" % n, {"issue": {"notes": "internal: check stock", "private_notes": True}},
                  switch_user="anna")
        # "exactly as written (spaces and blank lines included, only the note's ends trimmed ...)":
        # what looks like an entity is her text too.
        note = "It is in stock &amp; ready\n\n\t  &check; &#x41;  "
        self.employee_note(n, "anna", "\n" + note + "\n")
        wait_until(lambda: self.replies("rm-private"), POLL_WAIT, message="anna's note did not reach the chat")
        assert_stays(lambda: len(self.replies("rm-private")) == 1, QUIET,
                     message=lambda: "chat: %s" % self.replies("rm-private"))
        self.assertEqual(self.replies("rm-private"), [(note.strip(), ANNA_AGENT)])

    def test_a_close_the_workflow_forbade_closes_after_the_transition_is_allowed_and_retry(self):
        # README: "a close that did not happen is a dead letter that names the status (allow the
        # transition, then `chatra-bridge retry`)."
        con = sqlite3.connect(self.rm.db)
        with con:
            rows = con.execute("SELECT * FROM workflows WHERE new_status_id = ?", (REJECTED,)).fetchall()
            con.execute("DELETE FROM workflows WHERE new_status_id = ?", (REJECTED,))
        con.close()

        def allow():
            con = sqlite3.connect(self.rm.db)
            with con:
                con.executemany("INSERT OR IGNORE INTO workflows VALUES (%s)" % ",".join("?" * len(rows[0])), rows)
            con.close()
        self.addCleanup(allow)
        self.start(task={"closed_status_id": REJECTED})
        email = "maria.retry@example.org"
        n = self.open_chat("rm-retry", "Hello", name="Maria Retry", email=email)["id"]
        self.post(chat_event("chatTranscript", "rm-retry", [self.first], email=email))
        wait_until(lambda: self.dead_jobs() == 1, 30, message=lambda: "dead jobs: %s" % self.health())
        out = self.bridge.run("dead-letters", "--config", self.bridge.config_path)
        self.assertEqual(out.returncode, 0, out.stderr)
        [dead] = json.loads(out.stdout)
        self.assertEqual(dead["kind"], "close")
        self.assertRegex(dead["error"], r"status\b.*(\b%d\b|Rejected)" % REJECTED)
        self.assertFalse(self.issue(n)["status"]["is_closed"])
        allow()
        out = self.bridge.run("retry", "--config", self.bridge.config_path, "--id", str(dead["id"]))
        self.assertEqual(out.returncode, 0, out.stderr)
        status = wait_until(lambda: (lambda st: st if st["is_closed"] else None)(self.issue(n)["status"]),
                            POLL_WAIT, message=lambda: "#%d still open: %s" % (n, self.issue(n)["status"]))
        self.assertEqual(status["id"], REJECTED)
        self.wait_idle()
        self.assertEqual(self.dead_jobs(), 0)

    def test_an_issue_made_after_the_visitor_left_in_the_default_status_is_closed_afterwards(self):
        # README: "An issue made after the visitor left is made in `closed_status_id` at once; when the
        # workflow does not allow that status for a new issue, Redmine makes it in its default status,
        # and the bridge closes (and checks) it afterwards."  The packaged workflow allows none.
        self.start()
        self.post(chat_event("chatTranscript", "rm-gone", [msg("rm-gone-m1", "Hello"), msg("rm-gone-m2", "Bye")],
                             email="maria.gone@example.org"))
        [made] = wait_until(lambda: self.issues(), POLL_WAIT, message="no issue")
        n = made["id"]
        status = wait_until(lambda: (lambda st: st if st["is_closed"] else None)(self.issue(n)["status"]),
                            POLL_WAIT, message=lambda: "#%d still open: %s" % (n, self.issue(n)["status"]))
        self.assertEqual(status["id"], CLOSED)
        self.wait_idle()
        self.assertEqual(self.dead_jobs(), 0)
        issue = self.issue(n)
        for text in ("Hello", "Bye"):
            self.assertIn(text, issue["description"])
        self.assertEqual([t for _, t in self.notes(n)], [])

    def test_an_issue_made_closed_whose_answer_was_lost_at_a_crash_is_found_and_closed(self):
        # README (How it works): "If the bridge dies before the answer is written back, the job first
        # looks for what it may already have created ... A task found that way is completed by the
        # close that follows when the visitor has left (also one that was being made completed: the
        # lost answer cannot say whether it was)."  With Redmine, by the description's reference.
        self.start_proxied()
        self.open_chat("rm-warm", "Hello", name="Warm Up", email="warm.up@example.org")   # a used connection
        self.before = {i["id"] for i in self.all_issues()}
        rule = self.proxy.lose_answer("POST", r"^/issues\.json$", hold=4)
        self.post(chat_event("chatTranscript", "rm-crash", [msg("rm-crash-m1", "Hello"), msg("rm-crash-m2", "Bye")],
                             email="maria.crash@example.org"))
        wait_until(rule.fired.is_set, POLL_WAIT, message=lambda: "no creation: %s" % self.proxy.calls())
        self.kill_and_restart()
        [made] = wait_until(self.issues, POLL_WAIT, message="no issue")
        n = made["id"]
        status = wait_until(lambda: (lambda st: st if st["is_closed"] else None)(self.issue(n)["status"]),
                            POLL_WAIT, message=lambda: "#%d still open: %s" % (n, self.issue(n)["status"]))
        self.assertEqual(status["id"], CLOSED)
        self.wait_idle()
        assert_stays(lambda: len(self.issues()) == 1, QUIET, message=lambda: "more issues: %s" % self.issues())
        self.assertEqual(len(self.proxy.matching("POST", r"^/issues\.json$")), 2, self.proxy.calls())  # warm-up + 1
        self.assertEqual(self.dead_jobs(), 0)

    def test_the_descriptions_last_line_is_the_bridges_reference(self):
        # README: "the description's last line is the bridge's reference, which finds the issue
        # again after a crash."  Also under the admin's own description, whatever it ends with.
        self.start(task={"description": "Custom: {{visitor.name}}\n\n-- the shop's footer --\n"})
        issue = self.open_chat("rm-ref", "Hello", name="Maria Ref", email="maria.ref@example.org")
        lines = issue["description"].replace("\r\n", "\n").rstrip("\n").split("\n")
        self.assertEqual(lines[0], "Custom: Maria Ref")
        self.assertIn("-- the shop's footer --", lines)
        self.assertRegex(lines[-1], r"^_Chat bridge reference:_ <notextile>[0-9a-f-]{36}</notextile>$")

    def test_a_phone_or_name_given_later_fills_the_custom_fields_again(self):
        # README: "when the visitor tells a new name, e-mail or phone later, the bridge adds a note
        # and fills the custom fields again."
        self.start(task={"custom_fields": [{"id": self.cf, "value": "{{visitor.name}} / {{visitor.phone}}"}]})
        client = "rm-later"
        n = self.open_chat(client, "Hello", email="maria.later2@example.org")["id"]
        cf = lambda: {f["id"]: f.get("value") for f in self.issue(n)["custom_fields"]}.get(self.cf)  # noqa: E731
        self.say(client, client + "-m2", "my phone", email="maria.later2@example.org", phone="+34 600 999 000")
        wait_until(lambda: cf() == " / +34 600 999 000", POLL_WAIT, message=lambda: "custom field: %r" % cf())
        self.say(client, client + "-m3", "my name", email="maria.later2@example.org", phone="+34 600 999 000",
                 name="Maria Later")
        wait_until(lambda: cf() == "Maria Later / +34 600 999 000", POLL_WAIT,
                   message=lambda: "custom field: %r" % cf())
        self.wait_idle()
        details = [t for _, t in self.notes(n) if "The visitor's details" in t]
        self.assertEqual(len(details), 2, self.notes(n))
        self.assertIn("+34 600 999 000", details[0])
        self.assertNotIn("Maria Later", details[0])
        self.assertIn("Maria Later", details[1])


if __name__ == "__main__":
    unittest.main()
