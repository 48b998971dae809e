"""The Redmine driver against a REAL Redmine when things go wrong, and what it costs.

The bridge talks to Redmine through RedmineProxy (redmine_proxy.py), which forwards everything and
records every request, and can lose the answer to one request after Redmine has acted on it.  It
shows that:
  - a lost answer to the issue creation, to a visitor's note or to an agent's note (written as
    anna with X-Redmine-Switch-User) leaves exactly one issue / one note, and no echo in the
    chat: the retry finds the issue by the reference key in its description, and the note by
    its author and text.  Each three ways: the connection closed without a byte of the answer
    ("lose"), the answer held past tracker.timeout_ms ("timeout"), and the bridge killed
    (SIGKILL) while the answer is held, then started again on the same store ("kill");
  - a visitor who gives their name, e-mail and phone later gets a "The visitor's details" note
    by the API user, and the issue's custom field is filled again from the new e-mail;
  - the API key's own user can be a channel employee: the bridge's own notes (written by that
    user) are not relayed back, a note the user writes in Redmine is;
  - a simple conversation's Redmine requests, counted by kind (printed), keep to
    requests_per_second.

Setup and helpers come from RedmineCase (test_e2e_redmine.py): one Redmine per class, a fresh
bridge, fakes and proxy per test.
"""

import collections
import os
import re
import signal
import sys
import unittest
import urllib.parse

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import assert_stays, chat_event, msg, wait_until  # noqa: E402
from redmine_proxy import RedmineProxy  # noqa: E402
from e2e import ANNA_AGENT  # noqa: E402
from test_e2e_redmine import POLL_WAIT, QUIET, RM_ANNA, RedmineCase  # noqa: E402

ISSUES_POST = r"^/issues\.json$"
RETRY_WAIT = 30          # the first retry comes 0.5-1 s after a failure; restarts and polls add a little
ADMIN_EMP = {"name": "Redmine Admin", "email": "admin.employee@example.com", "tracker_user": "admin",
             "chatra_agent_id": "agentAdmin0000001"}


class ProxiedRedmineCase(RedmineCase):
    def setUp(self):
        # Made first, so that it is stopped last (after the bridge).
        self.proxy = RedmineProxy(self.rm.url)
        self.addCleanup(self.proxy.stop)
        super().setUp()

    def start_proxied(self, tracker=None, **kw):
        return self.start(tracker=dict({"url": self.proxy.url}, **(tracker or {})), **kw)

    def _dump_logs(self, bridge, fakes):
        super()._dump_logs(bridge, fakes)
        sys.stderr.write("--- requests through the proxy ---\n%s\n" % "\n".join(
            "%3d %7.3f conn %d#%d %s %s -> %s%s" % (r["seq"], r["time"] - self.proxy.requests[0]["time"], r["conn"],
                                                    r["on_conn"], r["method"], r["path"], r["status"],
                                                    " (%s)" % r["fault"] if r["fault"] else "")
            for r in list(self.proxy.requests)[-80:]))

    def fired(self, rule, timeout=POLL_WAIT):
        wait_until(rule.fired.is_set, timeout, message=lambda: "the rule never fired; requests: %s"
                   % self.proxy.calls())
        return rule.request

    def kill_and_restart(self):
        self.assertEqual(self.bridge.kill(signal.SIGKILL), -signal.SIGKILL)
        self.bridge.start()

    def assert_notes_stay(self, n, count):
        assert_stays(lambda: len(self.notes(n)) == count, QUIET,
                     message=lambda: "notes on #%d: %s" % (n, self.notes(n)))

    def note_puts(self, n, text):
        """The bridge's PUTs of a note with text to issue n (whoever they were written as)."""
        return self.proxy.matching("PUT", r"^/issues/%d\.json$" % n, body=re.escape(text))


class TestRedmineLostAnswers(ProxiedRedmineCase):
    """Each case three ways (see the module's docstring).  "lose" happens on a connection that
    served a request before, as in a running bridge: libcurl then resends the request by itself
    ("Connection died, retrying a fresh connect") unless the bridge forbids it for writes."""

    TIMEOUT_MS = 1500

    def setUp(self):
        super().setUp()
        self.start_proxied(tracker={"timeout_ms": self.TIMEOUT_MS})

    def lose(self, mode, method, path, body=None):
        """Lose the answer to the next request matching method, path and body, once the bridge
        has used its connection, as a running bridge has.  An idle bridge asks Redmine nothing
        (not even a poll): then a first chat does, whose issue self.issues() leaves out."""
        if not self.proxy.requests:
            self.open_chat("rm-warm-up", "Hello", name="Warm Up", email="warm.up@example.org")
            self.before = {i["id"] for i in self.all_issues()}
        self.warm_seq = self.proxy.last_seq()
        return self.proxy.lose_answer(method, path, body=body, hold=0 if mode == "lose" else 4)

    def after_loss(self, rule, mode):
        lost = self.fired(rule)
        if mode == "kill":
            self.kill_and_restart()
        return lost

    # --- 1a. the issue creation -------------------------------------------------------------

    def lost_creation(self, mode):
        client = "rm-create-%s" % mode
        rule = self.lose(mode, "POST", ISSUES_POST)
        email = "%s@example.org" % client
        self.post(chat_event("chatStarted", client, [msg(client + "-m1", "Is the red kettle in stock?")],
                             name="Maria Lost", email=email))
        self.after_loss(rule, mode)
        issue = wait_until(self.issues, POLL_WAIT, message="no issue")[0]
        self.wait_idle(RETRY_WAIT)
        assert_stays(lambda: len(self.issues()) == 1, QUIET, message=lambda: "more issues: %s" % self.issues())
        n = issue["id"]
        self.assertEqual(len([r for r in self.proxy.matching("POST", ISSUES_POST) if r["seq"] > self.warm_seq]), 1,
                         self.proxy.calls())
        # The retry looked for the reference key (the description's last line) instead.
        key = re.search(r"Chat bridge reference:_ (?:<notextile>)?([^<\s]+)", self.issue(n)["description"]).group(1)
        [lookup] = self.proxy.matching("GET", r"^/issues\.json\?.*description=")
        self.assertGreater(lookup["seq"], rule.request["seq"])
        self.assertIn("description=" + urllib.parse.quote("~" + key, safe=""), lookup["path"])
        # Later messages go to that issue as notes.
        self.say(client, client + "-m2", "Then the blue one, please.", email=email)
        [(user, text)] = self.wait_notes(n, 1)
        self.assertEqual(user, self.admin_id)
        self.assertIn("Then the blue one, please.", text)
        self.wait_idle()
        self.assertEqual(len(self.issues()), 1)
        self.assertEqual(self.dead_jobs(), 0)

    def test_issue_creation_answer_lost_leaves_one_issue(self):
        self.lost_creation("lose")

    def test_issue_creation_answer_timed_out_leaves_one_issue(self):
        self.lost_creation("timeout")

    def test_issue_creation_answer_missing_at_a_kill_leaves_one_issue(self):
        self.lost_creation("kill")

    # --- 1b. a visitor's note ------------------------------------------------------------------

    def lost_visitor_note(self, mode):
        client = "rm-note-%s" % mode
        email = "%s@example.org" % client
        text = "Do you deliver to Sevilla?"
        n = self.open_chat(client, "Hello", name="Maria Note", email=email)["id"]
        rule = self.lose(mode, "PUT", r"^/issues/%d\.json$" % n, body=re.escape(text))
        self.say(client, client + "-m2", text, email=email)
        self.after_loss(rule, mode)
        self.wait_notes(n, 1)
        self.wait_idle(RETRY_WAIT)
        self.assert_notes_stay(n, 1)
        [(user, note)] = self.notes(n)
        self.assertEqual(user, self.admin_id)
        self.assertIn(text, note)
        self.assertEqual(len(self.note_puts(n, text)), 1, self.proxy.calls())
        # The next message is a note of its own, as usual.
        self.say(client, client + "-m3", "And to Cadiz?", email=email)
        self.wait_notes(n, 2)
        self.wait_idle()
        self.assert_notes_stay(n, 2)
        self.assertIn("And to Cadiz?", self.notes(n)[1][1])
        self.assertEqual(self.fakes.chatra_messages(), [])
        self.assertEqual(self.dead_jobs(), 0)

    def test_visitor_note_answer_lost_leaves_one_note(self):
        self.lost_visitor_note("lose")

    def test_visitor_note_answer_timed_out_leaves_one_note(self):
        self.lost_visitor_note("timeout")

    def test_visitor_note_answer_missing_at_a_kill_leaves_one_note(self):
        self.lost_visitor_note("kill")

    # --- 1c. an agent's note (written as anna) -------------------------------------------------

    def lost_agent_note(self, mode):
        client = "rm-agent-%s" % mode
        email = "%s@example.org" % client
        text = "Hello Maria, anna here. How can I help?"
        n = self.open_chat(client, "Hello", name="Maria Agent", email=email)["id"]
        rule = self.lose(mode, "PUT", r"^/issues/%d\.json$" % n, body=re.escape(text))
        self.post(chat_event("chatFragment", client, [msg(client + "-a1", text, type="agent", agent_id=ANNA_AGENT)],
                             email=email))
        lost = self.after_loss(rule, mode)
        self.assertEqual(lost["headers"].get("x-redmine-switch-user"), "anna")
        self.wait_notes(n, 1)
        self.wait_idle(RETRY_WAIT)
        # Three polls see anna's note: it came from the chat, so it is not echoed.
        assert_stays(lambda: self.fakes.chatra_messages() == [] and len(self.notes(n)) == 1, QUIET,
                     message=lambda: "chat: %s; notes: %s" % (self.fakes.chatra_messages(), self.notes(n)))
        [(user, note)] = self.notes(n)
        self.assertEqual(user, self.anna_id)
        self.assertIn(text, note)
        self.assertEqual(len(self.note_puts(n, text)), 1, self.proxy.calls())
        # A note anna then writes in Redmine still reaches the chat, once.
        self.employee_note(n, "anna", "Written in Redmine by anna")
        wait_until(lambda: self.replies(client), POLL_WAIT, message="anna's Redmine note did not reach the chat")
        assert_stays(lambda: len(self.fakes.chatra_messages()) == 1, QUIET,
                     message=lambda: "chat: %s" % self.fakes.chatra_messages())
        self.assertEqual(self.replies(client), [("Written in Redmine by anna", ANNA_AGENT)])
        self.assertEqual(self.dead_jobs(), 0)

    def test_agent_note_answer_lost_leaves_one_note_and_no_echo(self):
        self.lost_agent_note("lose")

    def test_agent_note_answer_timed_out_leaves_one_note_and_no_echo(self):
        self.lost_agent_note("timeout")

    def test_agent_note_answer_missing_at_a_kill_leaves_one_note_and_no_echo(self):
        self.lost_agent_note("kill")


class TestRedmineVisitorAndCost(ProxiedRedmineCase):
    # --- 2. the visitor introduces themselves later ----------------------------------------

    def cf_value(self, n):
        return {f["id"]: f.get("value") for f in self.issue(n)["custom_fields"]}.get(self.cf)

    def test_details_given_later_become_a_note_and_fill_the_custom_field(self):
        self.start_proxied()
        client, email, phone = "rm-intro", "maria.later@example.org", "+34 600 333 444"
        issue = self.open_chat(client, "Hello, anyone there?")
        n = issue["id"]
        self.assertNotIn(email, issue["description"])
        self.assertIn(self.cf_value(n), ("", None))
        self.say(client, client + "-m2", "I am Maria, by the way.", name="Maria Later", email=email, phone=phone)
        notes = self.wait_notes(n, 2)
        self.wait_idle()
        self.assert_notes_stay(n, 2)
        details = [t for _, t in notes if "The visitor's details" in t]
        self.assertEqual(len(details), 1, notes)
        self.assertRegex(details[0], r"^\W*The visitor's details\b")
        for part in ("Maria Later", email, phone):
            self.assertIn(part, details[0])
        self.assertEqual({user for user, _ in notes}, {self.admin_id})
        self.assertTrue(any("I am Maria, by the way." in t for _, t in notes), notes)
        wait_until(lambda: self.cf_value(n) == email, POLL_WAIT,
                   message=lambda: "custom field %d of #%d: %r" % (self.cf, n, self.cf_value(n)))
        # The same details again change nothing.
        self.say(client, client + "-m3", "Still me.", name="Maria Later", email=email, phone=phone)
        self.wait_notes(n, 3)
        self.wait_idle()
        self.assert_notes_stay(n, 3)
        self.assertEqual(len([t for _, t in self.notes(n) if "The visitor's details" in t]), 1)
        self.assertEqual(len(self.issues()), 1)
        self.assertEqual(self.dead_jobs(), 0)

    # --- 3. the API key's own user as a channel employee -----------------------------------

    def test_the_api_user_as_an_employee_gets_only_its_redmine_notes_relayed(self):
        self.start_proxied(more_employees=[ADMIN_EMP], employees=[RM_ANNA["email"], ADMIN_EMP["email"]])
        client, email = "rm-admin-emp", "maria.admin@example.org"
        n = self.open_chat(client, "Hello", name="Maria Admin", email=email)["id"]
        self.say(client, client + "-m2", "Is the kettle in stock?", email=email)
        self.wait_notes(n, 1)
        self.say(client, client + "-m3", "And the teapot?", email=email)
        notes = self.wait_notes(n, 2)
        self.assertEqual([user for user, _ in notes], [self.admin_id, self.admin_id])
        self.wait_idle()
        # Three polls see the notes the bridge wrote as admin: nothing goes back to the chat.
        assert_stays(lambda: self.fakes.chatra_messages() == [], QUIET,
                     message=lambda: "relayed to the chat: %s" % self.fakes.chatra_messages())
        # A note the admin writes in Redmine goes to the chat as the admin's agent.
        self._api("PUT", "/issues/%d.json" % n, {"issue": {"notes": "Yes, both are in stock."}})
        wait_until(lambda: self.replies(client), POLL_WAIT, message="the admin's note did not reach the chat")
        assert_stays(lambda: len(self.fakes.chatra_messages()) == 1, QUIET,
                     message=lambda: "chat: %s" % self.fakes.chatra_messages())
        self.assertEqual(self.replies(client), [("Yes, both are in stock.", ADMIN_EMP["chatra_agent_id"])])
        self.assertEqual(len(self.notes(n)), 3)

    # --- 4. what a simple conversation costs -------------------------------------------------

    @staticmethod
    def kind(r):
        path, _, query = r["path"].partition("?")
        keys = [k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)]
        return "%s %s%s" % (r["method"], re.sub(r"/\d+", "/N", path), "?" + "&".join(keys) if keys else "")

    def test_request_budget_of_a_simple_conversation_at_5_requests_per_second(self):
        rps = 5
        self.start_proxied(tracker={"requests_per_second": rps})
        client, email = "rm-budget", "maria.budget@example.org"
        n = self.open_chat(client, "Hello, one question", name="Maria Budget", email=email)["id"]
        marks = [("issue", self.proxy.last_seq())]
        for i, text in enumerate(("first follow-up", "second follow-up", "third follow-up"), 2):
            self.say(client, "%s-m%d" % (client, i), text, email=email)
            self.wait_notes(n, i - 1)
            marks.append(("note %d" % (i - 1), self.proxy.last_seq()))
        self.employee_note(n, "anna", "Here is the answer.")
        wait_until(lambda: self.replies(client), POLL_WAIT, message="anna's note did not reach the chat")
        marks.append(("reply", self.proxy.last_seq()))
        self.post(chat_event("chatTranscript", client, [self.first, msg(client + "-m5", "Thanks, bye!")], email=email))
        wait_until(lambda: self.issue(n)["status"]["is_closed"], POLL_WAIT, message="the issue was not closed")
        self.wait_idle()
        marks.append(("closed", self.proxy.last_seq()))
        requests = list(self.proxy.requests)
        self.assertTrue(all(r["fault"] is None and r["status"] in (200, 201, 204) for r in requests),
                        [(r["method"], r["path"], r["status"]) for r in requests if r["status"] not in (200, 201, 204)])
        polls = [r for r in requests if "updated_on=" in r["path"]]
        counts = collections.Counter(self.kind(r) for r in requests)
        span = requests[-1]["time"] - requests[0]["time"]
        out = ["", "Redmine requests of a simple conversation (%d in %.1f s, %d of them the 1 s poll):"
               % (len(requests), span, len(polls))]
        out += ["  %4d  %s" % (c, k) for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        prev = 0
        for name, seq in marks:
            steps = collections.Counter(self.kind(r) for r in requests if prev < r["seq"] <= seq
                                        and "updated_on=" not in r["path"])
            out.append("  until %-8s (without polls): %s" % (name, ", ".join("%d x %s" % (c, k)
                                                                              for k, c in sorted(steps.items()))))
            prev = seq
        starts = sorted(r["time"] for r in requests)
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        out.append("  smallest gap between request starts: %.3f s (limit %.3f s)" % (min(gaps), 1.0 / rps))
        sys.stderr.write("\n".join(out) + "\n")
        self.assertGreaterEqual(min(gaps), 1.0 / rps - 0.020)
        self.assertEqual(len(self.proxy.matching("POST", ISSUES_POST)), 1)


if __name__ == "__main__":
    unittest.main()
