"""Issue "never lose a message, never flood the tracker", behaviour 9: no secret and no
client id reaches the log; retention_days removes the texts of chats closed long enough ago."""

import os
import sqlite3
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import TEST_ENV, chat_event, msg, sample, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402


class TestPrivacy(E2ECase):
    def db_texts(self, client_id):
        path = os.path.join(self.bridge.tmpdir, "bridge.db")
        con = sqlite3.connect(path)
        try:
            return [r[0] for r in con.execute(
                "SELECT m.text FROM messages m JOIN conv_clients k ON k.conv_id=m.conv_id "
                "WHERE k.client_id=? ORDER BY m.id", (client_id,))]
        finally:
            con.close()

    def test_retention_removes_texts_of_closed_chats_only(self):
        # 0.00002 days is under two seconds: the same code path as 30 days.
        self.start_bridge(store={"retention_days": 0.00002})
        self.open_chat("closing-1", [msg("c1", "secret order number 12345")], email="a@example.org")
        self.open_chat("open-1", [msg("o1", "still talking")], email="b@example.org")
        self.post(chat_event("chatTranscript", "closing-1", [msg("c1", "secret order number 12345")],
                             email="a@example.org"))
        wait_until(lambda: self.fakes.planfix_requests(method="POST", path="/rest/task/100") or None)
        wait_until(lambda: self.db_texts("closing-1") == [""] or None, timeout=15,
                   message=lambda: "texts kept: %s" % self.db_texts("closing-1"))
        self.assertEqual(self.db_texts("open-1"), ["still talking"])
        self.assertIn("retention: removed the texts of 1 message(s)", self.bridge.log())

    def test_no_secret_and_no_client_id_in_a_full_run_log(self):
        self.start_bridge(log={"level": "debug"})
        task, _ = self.open_chat("k2f8w0qz5mv1r7c3xj9t4ba6ne0yd2hs8pl1ug5o", email="maria@example.org")
        self.fakes.employee_comment(task, owner="user:5", text="a reply")
        self.bridge.post_planfix(task)
        wait_until(lambda: self.fakes.chatra_requests(path="/messages/") or None)
        self.post(sample("chat-transcript"))
        self.bridge.post_chatra(chat_event("chatFragment", "x", []), secret="wrong-secret-xyz")
        self.wait_idle()
        log = self.bridge.log()
        for name, value in TEST_ENV.items():
            self.assertNotIn(value, log, "%s is in the log" % name)
        self.assertNotIn("k2f8w0qz5mv1r7c3xj9t4ba6ne0yd2hs8pl1ug5o", log)


if __name__ == "__main__":
    unittest.main()
