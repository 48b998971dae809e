"""Issue 10, point 4 against a REAL Redmine: an employee configured with only a name and an e-mail.

The Redmine user is found by that e-mail (GET /users.json?name=..., the mail compared exactly),
once per bridge and cached in the store; then, as with a configured login:
  - her note in Redmine reaches the chat, sent with her e-mail and name (no Chatra agent id is
    configured), and its copy in the next fragment is not mirrored back;
  - a message she types in Chatra (agents[] names her e-mail) becomes a note written as her
    (X-Redmine-Switch-User with the login found);
  - nothing is looked up per note, and after a restart the engine asks nothing (the driver
    resolves its employees' ids once per start, as it does for logins).

Setup and helpers come from RedmineCase (test_e2e_redmine.py); requests go through RedmineProxy
(redmine_proxy.py), which records them.
"""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import ANNA, assert_stays, chat_event, msg, wait_until  # noqa: E402
from redmine_proxy import RedmineProxy  # noqa: E402
from test_e2e_redmine import CLOSED, POLL_WAIT, PROJECT, QUIET, RM_BORIS, RedmineCase  # noqa: E402

ANNA_BY_EMAIL = {"name": ANNA["name"], "email": "Anna@Example.com"}   # the Redmine user anna has anna@example.com
LOOKUP = r"^/users\.json\?name=anna%40example\.com"
CHATRA_ANNA = "chatraAgentAnnaRm"


class TestRedmineEmployeeByEmail(RedmineCase):
    def setUp(self):
        # Made first, so that it is stopped last (after the bridge).
        self.proxy = RedmineProxy(self.rm.url)
        self.addCleanup(self.proxy.stop)
        super().setUp()

    def start_by_email(self):
        """As RedmineCase.start, with anna known only by e-mail."""
        self.config["tracker"] = {"kind": "redmine", "url": self.proxy.url, "api_key": "env:REDMINE_API_KEY",
                                  "project": PROJECT, "closed_status_id": CLOSED, "requests_per_second": 20,
                                  "poll_interval_s": 1}
        self.bridge.env["REDMINE_API_KEY"] = self.rm.admin_key
        self.config["employees"] = [dict(ANNA_BY_EMAIL), dict(RM_BORIS)]
        ch = self.config["channels"][0]
        ch.pop("contact", None)
        ch["task"] = {}
        ch["watchers"] = []
        ch["employees"] = ["anna@example.com"]
        return self.bridge.start()

    def lookups(self):
        return self.proxy.matching("GET", LOOKUP)

    def sent(self, client):
        return [{k: v for k, v in m.items() if k not in ("clientId", "id", "createdAt")}
                for m in self.fakes.chatra_messages(client)]

    def test_her_note_reaches_the_chat_with_her_email_and_her_chatra_message_is_her_note(self):
        self.start_by_email()
        email = "maria.byemail@example.org"
        n = self.open_chat("rm-byemail", "Hello", name="Maria Email", email=email)["id"]
        self.employee_note(n, "anna", "Yes, it is in stock.")
        wait_until(lambda: self.sent("rm-byemail"), POLL_WAIT, message="anna's note did not reach the chat")
        self.assertEqual(self.sent("rm-byemail"), [{"text": "Yes, it is in stock.", "agentEmail": "anna@example.com",
                                                    "agentName": ANNA["name"], "receivedFrom": "Redmine"}])
        # Chatra's copy of the reply (under its own id for Anna), and a new message she types there.
        self.post(chat_event("chatFragment", "rm-byemail", [
            msg("rm-byemail-a1", "Yes, it is in stock.", type="agent", agent_id=CHATRA_ANNA),
            msg("rm-byemail-a2", "Anything else?", type="agent", agent_id=CHATRA_ANNA)],
            agents=[{"id": CHATRA_ANNA, "email": "anna@example.com"}], email=email))
        self.wait_notes(n, 2)
        assert_stays(lambda: len(self.notes(n)) == 2 and len(self.sent("rm-byemail")) == 1, QUIET,
                     message=lambda: "notes %s, chat %s" % (self.notes(n), self.sent("rm-byemail")))
        self.assertEqual(self.notes(n), [(self.anna_id, "Yes, it is in stock."), (self.anna_id, "Anything else?")])
        # Found once (by the engine, then cached; the driver learnt the login from that answer), not per note.
        self.assertEqual(len(self.lookups()), 1)

        self.bridge.restart()
        self.employee_note(n, "anna", "One more thing")
        wait_until(lambda: len(self.sent("rm-byemail")) == 2, POLL_WAIT, message="the note after the restart")
        self.assertEqual(self.sent("rm-byemail")[1]["agentEmail"], "anna@example.com")
        self.wait_idle(POLL_WAIT)
        # After the restart only the driver resolves its employees' ids once, as it does for logins.
        self.assertEqual(len(self.lookups()), 2)
        self.assertEqual(self.dead_jobs(), 0)


if __name__ == "__main__":
    unittest.main()
