"""Issue 5 end to end: the bridge against a REAL Redmine (Debian's 5.0 packages, see
redmine_server.py), with the fake Chatra on the other side.

It shows that, with "tracker": {"kind": "redmine", ...}:
  - a chat's first message creates exactly one issue in project "chats" (Textile description with
    the visitor's name, e-mail, phone and message; an issue custom field from a template; watchers);
  - further visitor messages become notes by the API key's user, once each;
  - a note written in Redmine by a channel employee (anna) reaches the chat as her Chatra agent
    (found by polling); notes by others (boris) and the bridge's own notes are not relayed;
  - an agent message typed in Chatra becomes a note by that employee and is not echoed back;
  - chatTranscript closes the issue (read back from Redmine), and a close the workflow
    forbids (Redmine answers 204 and changes nothing) becomes a dead letter instead; a transcript
    that comes before the issue is made has it made closed (issue 15);
  - a second device with the same e-mail writes to the same issue;
  - after an employee closes the issue in Redmine, a new chat of the visitor opens a new issue.

One Redmine per class (about 5 s to start); a fresh bridge and fresh fakes per test.  Each test
uses its own Chatra client ids and e-mails, and only looks at issues created after its setUp.
"""

import json
import os
import sqlite3
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import ANNA, BORIS, assert_stays, chat_event, msg, wait_until  # noqa: E402
from redmine_server import RedmineServer  # noqa: E402
from e2e import ANNA_AGENT, E2ECase  # noqa: E402

WHY = RedmineServer.available()
PROJECT = "chats"
CLOSED, REJECTED = 5, 6            # the packaged statuses "Closed" and "Rejected" (both closed)
NEW = 1                            # the packaged default status
RM_ANNA = dict(ANNA, tracker_user="anna")      # in the channel's employees
RM_BORIS = dict(BORIS, tracker_user="boris")   # an employee, but not for this channel
POLL_WAIT = 15                     # seconds to wait for something found by the 1 s poll
QUIET = 3.0                        # seconds (three polls) in which nothing more may happen


@unittest.skipIf(WHY, "Redmine cannot run here: %s" % WHY)
class RedmineCase(E2ECase):
    """The Redmine of the class, a bridge on it per test, and helpers to read Redmine and drive the
    chat (no tests: test_e2e_redmine_faults.py builds on it too)."""
    maxDiff = None

    # --- the Redmine, shared by the class ------------------------------------------------

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rm = RedmineServer()
        try:
            cls._populate()
        except BaseException:
            cls.rm.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.rm.stop()
        super().tearDownClass()

    @classmethod
    def _api(cls, method, path, body=None, expect=(200, 201, 204), **kw):
        status, answer = cls.rm.api(method, path, body, **kw)
        if status not in expect:
            raise AssertionError("%s %s -> %s %s" % (method, path, status, answer))
        return answer

    @classmethod
    def _populate(cls):
        """Project "chats", users anna and boris (project managers) and an issue custom field."""
        cls._api("POST", "/projects.json", {"project": {"name": "Chats", "identifier": PROJECT}})
        roles = cls._api("GET", "/roles.json")["roles"]
        manager = [r["id"] for r in roles if r["name"] == "Manager"][0]
        cls.admin_id = cls._api("GET", "/users/current.json")["user"]["id"]
        for login, who in (("anna", RM_ANNA), ("boris", RM_BORIS)):
            first, last = who["name"].split()
            user = cls._api("POST", "/users.json", {"user": {
                "login": login, "firstname": first, "lastname": last, "mail": who["email"],
                "password": login + "-password-1"}})["user"]
            cls._api("POST", "/projects/%s/memberships.json" % PROJECT,
                     {"membership": {"user_id": user["id"], "role_ids": [manager]}})
            setattr(cls, login + "_id", user["id"])
        # Redmine 5.0's REST API cannot create custom fields: insert one for all projects and trackers.
        con = sqlite3.connect(cls.rm.db)
        with con:
            cls.cf = con.execute(
                "INSERT INTO custom_fields(type, name, field_format, is_for_all, visible, editable, searchable,"
                " position) VALUES('IssueCustomField', 'Visitor e-mail', 'string', 1, 1, 1, 0, 1)").lastrowid
            con.execute("INSERT INTO custom_fields_trackers(custom_field_id, tracker_id) SELECT ?, id FROM trackers",
                        (cls.cf,))
        con.close()

    # --- a bridge per test ---------------------------------------------------------------

    def setUp(self):
        super().setUp()
        self.before = {i["id"] for i in self.all_issues()}

    def start(self, task=None, tracker=None, more_employees=(), **channel):
        """Start the bridge on the Redmine (the harness's Planfix tracker section replaced;
        tracker: keys to change in it, e.g. the url of a proxy; more_employees: for employees[])."""
        self.config["tracker"] = dict({"kind": "redmine", "url": self.rm.url, "api_key": "env:REDMINE_API_KEY",
                                       "project": PROJECT, "closed_status_id": CLOSED,
                                       "requests_per_second": 20, "poll_interval_s": 1}, **(tracker or {}))
        self.bridge.env["REDMINE_API_KEY"] = self.rm.admin_key
        self.config["employees"] = [dict(RM_ANNA), dict(RM_BORIS)] + [dict(e) for e in more_employees]
        ch = self.config["channels"][0]
        ch.pop("contact", None)
        ch["employees"] = [RM_ANNA["email"]]
        ch["watchers"] = [str(self.boris_id)]
        ch["task"] = dict({"custom_fields": [{"id": self.cf, "value": "{{visitor.email}}"}]}, **(task or {}))
        ch.update(channel)
        self.bridge.config = self.config
        return self.bridge.start()

    def _dump_logs(self, bridge, fakes):
        super()._dump_logs(bridge, fakes)
        sys.stderr.write("--- redmine log ---\n%s\n" % self.rm.log_tail(60))

    # --- reading Redmine -----------------------------------------------------------------

    def all_issues(self):
        return self._api("GET", "/issues.json?project_id=%s&status_id=*&sort=id&limit=100" % PROJECT)["issues"]

    def issues(self):
        """Issues of project "chats" created during this test, oldest first."""
        return [i for i in self.all_issues() if i["id"] not in self.before]

    def issue(self, n):
        return self._api("GET", "/issues/%d.json?include=journals,watchers" % n)["issue"]

    def notes(self, n):
        """(author id, text) of the issue's journals that carry a note, oldest first."""
        return [(j["user"]["id"], j["notes"]) for j in self.issue(n)["journals"] if j["notes"]]

    def wait_notes(self, n, count, timeout=POLL_WAIT):
        return wait_until(lambda: (lambda ns: ns if len(ns) >= count else None)(self.notes(n)), timeout,
                          message=lambda: "fewer than %d notes on #%d: %s" % (count, n, self.notes(n)))

    def employee_note(self, n, login, text):
        self._api("PUT", "/issues/%d.json" % n, {"issue": {"notes": text}}, switch_user=login)

    def replies(self, client):
        """(text, agentId) of the messages the fake Chatra accepted for client."""
        return [(m["text"], m.get("agentId")) for m in self.fakes.chatra_messages(client)]

    # --- driving the chat ----------------------------------------------------------------

    def say(self, client, mid, text, event="chatFragment", chat_id=None, **fields):
        ev = chat_event(event, client, [msg(mid, text)], **fields)
        if chat_id:
            ev["client"]["chatId"] = chat_id
        self.post(ev)

    def open_chat(self, client, text, **fields):
        """chatStarted with one visitor message (kept as self.first); waits for the new issue and
        returns it (full)."""
        n = len(self.issues())
        self.first = msg(client + "-m1", text)
        ev = chat_event("chatStarted", client, [self.first], **fields)
        self.post(ev)
        new = wait_until(lambda: self.issues()[n:], POLL_WAIT,
                         message=lambda: "no issue created; bridge log:\n" + self.bridge.log_tail(30))
        self.wait_idle(POLL_WAIT)
        return self.issue(new[0]["id"])


class TestRedmineEndToEnd(RedmineCase):
    # --- 1. the issue ----------------------------------------------------------------------

    def test_first_message_creates_one_issue_with_the_visitor_and_the_custom_field(self):
        self.start()
        email = "maria.create@example.org"
        issue = self.open_chat("rm-create", "Is the blue kettle in stock?", name="Maria Lopez", email=email,
                               phone="+34 600 111 222")
        assert_stays(lambda: len(self.issues()) == 1, 1.0, message=lambda: "more issues: %s" % self.issues())
        self.assertEqual(issue["project"]["name"], "Chats")
        self.assertEqual(issue["author"]["id"], self.admin_id)
        self.assertFalse(issue["status"]["is_closed"])
        self.assertIn("Maria Lopez", issue["subject"])
        for text in ("Maria Lopez", email, "+34 600 111 222", "Is the blue kettle in stock?"):
            self.assertIn(text, issue["description"])
        self.assertEqual([(f["id"], f["value"]) for f in issue["custom_fields"]], [(self.cf, email)])
        self.assertEqual([w["id"] for w in issue["watchers"]], [self.boris_id])
        # The first message is in the description, not a note; the API key never reaches the log.
        self.assertEqual(self.notes(issue["id"]), [])
        self.assertNotIn(self.rm.admin_key, self.bridge.log())
        # Redmine has no daily quota (tracker.daily_quota's default is 0) and says nothing of one;
        # the bridge still counts its requests of the day.
        quota = self.health()["engine"]["upstreams"][0]["quota"]
        self.assertEqual((quota["daily"], quota["left"]), (None, None))
        self.assertGreater(quota["used_today"], 0)

    # --- 2. visitor messages ------------------------------------------------------------------

    def test_visitor_messages_become_notes_by_the_api_user_once_each(self):
        self.start()
        email = "maria.notes@example.org"
        n = self.open_chat("rm-notes", "Hello", name="Maria Notes", email=email)["id"]
        self.say("rm-notes", "rm-notes-m2", "Do you deliver to Madrid?", email=email)
        self.wait_notes(n, 1)
        self.say("rm-notes", "rm-notes-m3", "And to Barcelona?", email=email)
        self.wait_notes(n, 2)
        # The same webhook again (Chatra retries) adds nothing.
        self.say("rm-notes", "rm-notes-m3", "And to Barcelona?", email=email)
        self.wait_idle()
        assert_stays(lambda: len(self.notes(n)) == 2, QUIET, message=lambda: "notes: %s" % self.notes(n))
        notes = self.notes(n)
        self.assertEqual([user for user, _ in notes], [self.admin_id, self.admin_id])
        self.assertIn("Do you deliver to Madrid?", notes[0][1])
        self.assertIn("And to Barcelona?", notes[1][1])
        self.assertEqual(len(self.issues()), 1)

    # --- 3. replies from Redmine ------------------------------------------------------------

    def test_a_note_by_a_channel_employee_reaches_the_chat_as_her_agent(self):
        self.start()
        email = "maria.reply@example.org"
        n = self.open_chat("rm-reply", "Hello", name="Maria Reply", email=email)["id"]
        self.say("rm-reply", "rm-reply-m2", "Do you have it in blue?", email=email)   # the bridge's own note
        self.wait_notes(n, 1)
        self.employee_note(n, "boris", "Boris: not for this channel")
        # The note reaches the chat as written: its spaces, blank lines, & and < are hers (issue 10, point 3).
        note = "Yes, it is in stock & <b>ready</b>.\n\n  Price:  25 \u20ac\n\n\nSee \"the shop\":https://shop.example/"
        self.employee_note(n, "anna", note)
        wait_until(lambda: self.replies("rm-reply"), POLL_WAIT, message="anna's note did not reach the chat")
        assert_stays(lambda: len(self.replies("rm-reply")) == 1, QUIET,
                     message=lambda: "more sent to the chat: %s" % self.replies("rm-reply"))
        self.assertEqual(self.replies("rm-reply"), [(note, ANNA_AGENT)])
        self.assertEqual(self.fakes.chatra_messages(), self.fakes.chatra_messages("rm-reply"))

    # --- 4. agent messages typed in Chatra -------------------------------------------------

    def test_an_agent_message_typed_in_chatra_becomes_her_note_and_is_not_echoed(self):
        self.start()
        email = "maria.agent@example.org"
        n = self.open_chat("rm-agent", "Hello", name="Maria Agent", email=email)["id"]
        self.post(chat_event("chatFragment", "rm-agent", [
            msg("rm-agent-a1", "Hello Maria, how can I help?", type="agent", agent_id=ANNA_AGENT)], email=email))
        [(user, text)] = self.wait_notes(n, 1)
        self.assertEqual(user, self.anna_id)
        self.assertIn("Hello Maria, how can I help?", text)
        # The poll sees anna's note, and knows it came from the chat.
        assert_stays(lambda: self.fakes.chatra_messages() == [], QUIET,
                     message=lambda: "echoed to the chat: %s" % self.fakes.chatra_messages())
        self.assertEqual(len(self.notes(n)), 1)

    # --- 5. and 6. the visitor leaves ------------------------------------------------------

    def transcript(self, client, email, *messages):
        self.post(chat_event("chatTranscript", client, list(messages), email=email))

    def test_transcript_backfills_and_closes_the_issue(self):
        self.start()
        email = "maria.leave@example.org"
        issue = self.open_chat("rm-leave", "Hello", name="Maria Leave", email=email)
        n = issue["id"]
        self.transcript("rm-leave", email, self.first, msg("rm-leave-m2", "Thanks, bye!"))
        status = wait_until(lambda: (lambda s: s if s["is_closed"] else None)(self.issue(n)["status"]),
                            POLL_WAIT, message=lambda: "#%d still open: %s" % (n, self.issue(n)["status"]))
        self.assertEqual(status["id"], CLOSED)
        [(user, text)] = self.notes(n)
        self.assertEqual(user, self.admin_id)
        self.assertIn("Thanks, bye!", text)
        self.wait_idle()
        self.assertEqual(self.dead_jobs(), 0)

    def test_a_close_the_workflow_forbids_is_a_dead_letter_not_a_closed_issue(self):
        # Nobody may move an issue to "Rejected" any more (Redmine then answers 204 and changes nothing).
        con = sqlite3.connect(self.rm.db)
        with con:
            con.execute("DELETE FROM workflows WHERE new_status_id = ?", (REJECTED,))
        con.close()
        self.start(task={"closed_status_id": REJECTED})
        email = "maria.reject@example.org"
        n = self.open_chat("rm-reject", "Hello", name="Maria Reject", email=email)["id"]
        self.transcript("rm-reject", email, self.first)
        wait_until(lambda: self.dead_jobs() == 1, 30, message=lambda: "dead jobs: %s" % self.health())
        out = self.bridge.run("dead-letters", "--config", self.bridge.config_path)
        self.assertEqual(out.returncode, 0, out.stderr)
        [dead] = json.loads(out.stdout)
        self.assertEqual(dead["kind"], "close")
        self.assertRegex(dead["error"], r"(?i)status")
        self.assertRegex(dead["error"], r"\b%d\b|Rejected" % REJECTED)
        status = self.issue(n)["status"]
        self.assertEqual((status["id"], status["is_closed"]), (1, False))

    def allow_new_issues_in(self, *statuses):
        """The packaged workflow names no status for a new issue (Redmine then makes it in the
        tracker's default status, whatever was asked): allow these, for this test only (Redmine
        makes a new issue without a status in the first one allowed)."""
        con = sqlite3.connect(self.rm.db)
        with con:
            first = con.execute("SELECT coalesce(max(id), 0) FROM workflows").fetchone()[0] + 1
            for status in statuses:
                con.execute("INSERT INTO workflows(tracker_id, old_status_id, new_status_id, role_id, assignee, author, "
                            "type) SELECT DISTINCT tracker_id, 0, ?, role_id, 0, 0, type FROM workflows "
                            "WHERE type = 'WorkflowTransition' AND old_status_id <> 0", (status,))
        con.close()

        def restore():
            con = sqlite3.connect(self.rm.db)
            with con:
                con.execute("DELETE FROM workflows WHERE id >= ?", (first,))
            con.close()
        self.addCleanup(restore)

    def test_a_visitor_gone_before_the_issue_is_made_gets_it_made_closed(self):
        """Issue 15: the transcript comes before the issue exists: it is made in the closed status,
        with the chat in its description, and no later change closes it."""
        self.allow_new_issues_in(NEW, CLOSED)
        self.start()
        self.transcript("rm-late", "maria.late@example.org", msg("rm-late-m1", "Hello"),
                        msg("rm-late-m2", "Thanks, bye!"))
        [made] = wait_until(lambda: self.issues(), POLL_WAIT, message=lambda: "no issue; bridge log:\n"
                            + self.bridge.log_tail(30))
        self.wait_idle(POLL_WAIT)
        issue = self.issue(made["id"])
        self.assertEqual(issue["status"]["id"], CLOSED)
        self.assertEqual(issue["journals"], [], "made closed: neither a note nor a status change follows")
        for text in ("Hello", "Thanks, bye!"):
            self.assertIn(text, issue["description"])
        self.assertEqual(self.dead_jobs(), 0)

    def test_a_closed_status_the_workflow_forbids_at_creation_is_not_taken_for_a_closed_issue(self):
        """Redmine makes the issue in its default status when the workflow does not allow the one
        asked for: the bridge reads the status it got, and the close that follows is checked (here:
        forbidden too, a dead letter)."""
        con = sqlite3.connect(self.rm.db)
        with con:
            con.execute("DELETE FROM workflows WHERE new_status_id = ?", (REJECTED,))
        con.close()
        self.start(task={"closed_status_id": REJECTED})
        self.transcript("rm-late-reject", "maria.late.reject@example.org", msg("rm-late-reject-m1", "Hello"))
        wait_until(lambda: self.dead_jobs() == 1, 30, message=lambda: "dead jobs: %s" % self.health())
        out = self.bridge.run("dead-letters", "--config", self.bridge.config_path)
        self.assertEqual(out.returncode, 0, out.stderr)
        [dead] = json.loads(out.stdout)
        self.assertEqual(dead["kind"], "close")
        [made] = self.issues()
        status = self.issue(made["id"])["status"]
        self.assertEqual(status["id"], 1)

    # --- 7. one person, two devices ---------------------------------------------------------

    def test_a_second_device_with_the_same_email_writes_to_the_same_issue(self):
        self.start()
        email = "maria.devices@example.org"
        n = self.open_chat("rm-laptop", "Hello from my laptop", name="Maria Devices", email=email)["id"]
        self.say("rm-phone", "rm-phone-m1", "Me again, from my phone", event="chatStarted",
                 name="Maria Devices", email=email)
        wait_until(lambda: any("Me again, from my phone" in t for _, t in self.notes(n)), POLL_WAIT,
                   message=lambda: "no note from the phone on #%d: %s" % (n, self.notes(n)))
        self.wait_idle()
        assert_stays(lambda: len(self.issues()) == 1, 1.0, message=lambda: "a second issue: %s" % self.issues())
        # A reply goes to the device the visitor last wrote from.
        self.employee_note(n, "anna", "Hello Maria on the phone")
        wait_until(lambda: self.fakes.chatra_messages(), POLL_WAIT, message="the reply did not reach the chat")
        self.assertEqual([(m["clientId"], m["text"]) for m in self.fakes.chatra_messages()],
                         [("rm-phone", "Hello Maria on the phone")])

    # --- 8. closed in Redmine, then the visitor comes back ---------------------------------

    def test_after_an_employee_closes_the_issue_a_new_chat_opens_a_new_issue(self):
        self.start()
        email = "maria.back@example.org"
        old = self.open_chat("rm-back", "First visit question", name="Maria Back", email=email,
                             chatId="chat-rm-back-1")["id"]
        self._api("PUT", "/issues/%d.json" % old, {"issue": {"status_id": CLOSED}}, switch_user="anna")
        self.assertTrue(self.issue(old)["status"]["is_closed"])
        self.say("rm-back", "rm-back-m2", "Back again with a new question", event="chatStarted",
                 chat_id="chat-rm-back-2", name="Maria Back", email=email)
        issues = wait_until(lambda: (lambda i: i if len(i) == 2 else None)(self.issues()), POLL_WAIT,
                            message=lambda: "no second issue: %s" % self.issues())
        new = self.issue(issues[1]["id"])
        self.assertIn("Back again with a new question", new["description"])
        self.assertRegex(new["description"], r"#%d\b" % old)      # the previous conversation
        self.assertFalse(new["status"]["is_closed"])
        self.wait_idle()
        # Later messages of the new chat go to the new issue, none to the old one.
        self.say("rm-back", "rm-back-m3", "and one more thing", chat_id="chat-rm-back-2", email=email)
        [(_, text)] = self.wait_notes(new["id"], 1)
        self.assertIn("and one more thing", text)
        self.assertEqual([t for _, t in self.notes(old)], [])
        self.assertEqual(len(self.issues()), 2)

    def test_a_greeting_in_a_new_chat_after_the_visitor_left_goes_to_the_new_issue(self):
        self.start()
        email = "maria.greeted@example.org"
        old = self.open_chat("rm-greet", "First visit question", name="Maria Greeted", email=email,
                             chatId="chat-rm-greet-1")["id"]
        self.transcript("rm-greet", email, self.first)
        wait_until(lambda: self.issue(old)["status"]["is_closed"], POLL_WAIT, message="#%d not closed" % old)
        self.wait_idle()
        notes = self.notes(old)
        # Anna greets the returning visitor in a new chat before they write: it waits.
        ev = chat_event("chatStarted", "rm-greet", [msg("rm-greet-a1", "Welcome back!", type="agent",
                                                        agent_id=ANNA_AGENT)], email=email)
        ev["client"]["chatId"] = "chat-rm-greet-2"
        self.post(ev)
        self.wait_idle()
        assert_stays(lambda: len(self.issues()) == 1 and self.notes(old) == notes, QUIET,
                     message=lambda: "the greeting went somewhere: %s, #%d: %s" % (self.issues(), old, self.notes(old)))
        self.say("rm-greet", "rm-greet-m2", "The kettle leaks", chat_id="chat-rm-greet-2", email=email)
        issues = wait_until(lambda: (lambda i: i if len(i) == 2 else None)(self.issues()), POLL_WAIT,
                            message=lambda: "no second issue: %s" % self.issues())
        self.wait_idle()
        d = self.issue(issues[1]["id"])["description"]
        self.assertLess(d.index("Welcome back!"), d.index("The kettle leaks"))
        self.assertEqual(self.notes(old), notes)


if __name__ == "__main__":
    unittest.main()
