"""A store written by an earlier version keeps working (issue 11: a Chatra webhook is parsed once,
at the door, and the inbox and the conversations keep the bridge's own record of it).

  - an inbox row that holds a webhook as received (what versions before kept) is still applied;
  - a conversation's profile kept as Chatra's answer itself (not yet the bridge's record) still
    fills the visitor's details of a later task.
"""

import json
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))
from harness import chat_event, msg, sample  # noqa: E402
from e2e import E2ECase  # noqa: E402


class TestOlderStore(E2ECase):
    def db(self):
        return sqlite3.connect(os.path.join(self.bridge.tmpdir, "bridge.db"))

    def test_an_inbox_row_as_received_is_still_applied(self):
        self.start_bridge()
        self.wait_idle()
        self.bridge.stop()
        body = sample("chat-started")
        body["client"]["location"] = {"city": "Tallinn"}
        con = self.db()
        with con:
            con.execute("INSERT INTO inbox(kind, channel, body, received_at) VALUES(3, 'shop', ?, ?)",
                        (json.dumps(body), int(time.time() * 1000)))
        con.close()
        self.bridge.start()
        [task] = self.wait_task(1)
        self.wait_idle()
        self.assertIn("Hello! Is the blue kettle in stock?", task["description"])
        self.assertIn("<b>City:</b> Tallinn<br>", self.fakes.planfix_task(task["id"])["description"])

    def test_a_profile_kept_as_chatras_answer_still_fills_the_visitor(self):
        self.start_bridge()
        first, _ = self.open_chat("up-1", [msg("up-1-m1", "Hello")], name="Maria")
        self.wait_idle()
        self.bridge.stop()
        con = self.db()
        with con:
            con.execute("UPDATE conversations SET profile_state=2, profile_json=?",
                        (json.dumps({"id": "up-1", "location": {"city": "Oslo"}, "basicInfo": {"os": "Haiku"}}),))
        con.close()
        self.bridge.start()
        self.fakes.set_task_status(first, 3)
        self.post(chat_event("chatStarted", "up-1", [msg("up-1-m2", "Back again")], name="Maria", chatId="chat-2"))
        second = self.wait_task(2)[1]["id"]
        self.wait_idle()
        d = self.fakes.planfix_task(second)["description"]
        self.assertIn("<b>City:</b> Oslo<br>", d)
        self.assertIn("<b>OS:</b> Haiku<br>", d)


if __name__ == "__main__":
    unittest.main()
