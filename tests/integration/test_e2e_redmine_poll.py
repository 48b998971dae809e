"""Issue 15, point 3, with a REAL Redmine: Redmine sends no webhooks, so the bridge polls it, but
only while some chat's issue is open.  An idle bridge asks Redmine for no changes at all; a chat
opens an issue and the poll runs (a note by a channel employee reaches the chat); the visitor
leaves, the issue is closed and the poll stops.  (The back-off while no open issue is active, up
to 15 minutes, is in tests/unit/test_poll_plan.c: an hour is too long to wait here.)

The bridge talks to Redmine through RedmineProxy, which records every request; setup and helpers
come from RedmineCase (test_e2e_redmine.py).
"""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import assert_stays, chat_event, wait_until  # noqa: E402
from redmine_proxy import RedmineProxy  # noqa: E402
from e2e import ANNA_AGENT  # noqa: E402
from test_e2e_redmine import CLOSED, POLL_WAIT, QUIET, RedmineCase  # noqa: E402

POLL = r"^/issues\.json\?project_id=.*&updated_on="


class TestRedminePoll(RedmineCase):
    def setUp(self):
        super().setUp()
        self.proxy = RedmineProxy(self.rm.url)
        self.addCleanup(self.proxy.stop)

    def polls(self):
        return self.proxy.matching("GET", POLL)

    def assert_no_poll(self, duration):
        n = len(self.polls())
        assert_stays(lambda: len(self.polls()) == n, duration,
                     message=lambda: "polled with no open issue: %s" % self.proxy.calls()[-5:])

    def test_polled_only_while_an_issue_is_open(self):
        self.start(tracker={"url": self.proxy.url})
        self.wait_idle()
        self.assert_no_poll(QUIET)
        email = "maria.poll@example.org"
        issue = self.open_chat("rm-poll", "Hello", name="Maria Poll", email=email)
        n = issue["id"]
        wait_until(lambda: len(self.polls()) >= 2, POLL_WAIT, message="no poll with an open issue")
        self.employee_note(n, "anna", "Found by the poll")
        wait_until(lambda: self.replies("rm-poll"), POLL_WAIT, message="the note never reached the chat")
        self.assertEqual(self.replies("rm-poll"), [("Found by the poll", ANNA_AGENT)])
        # The visitor leaves: the issue is closed and nothing is polled any more.
        self.post(chat_event("chatTranscript", "rm-poll", [self.first], email=email))
        wait_until(lambda: self.issue(n)["status"]["id"] == CLOSED, POLL_WAIT,
                   message=lambda: "#%d still open: %s" % (n, self.issue(n)["status"]))
        self.wait_idle()
        self.assert_no_poll(QUIET)
        self.assertIn("poll: paused: no task is open", self.bridge.log())
        self.assertEqual(self.dead_jobs(), 0)


if __name__ == "__main__":
    unittest.main()
