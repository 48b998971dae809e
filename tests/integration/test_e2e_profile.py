"""Issue "one person, one thread", behaviour 7: Chatra's full visitor data (GET /clients/{id})
is fetched beside the contact lookup, and neither failing holds the task back."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg  # noqa: E402
from e2e import E2ECase  # noqa: E402


class TestVisitorProfile(E2ECase):
    def test_profile_fills_the_task_text_and_the_template_context(self):
        self.start_bridge(channel={"task": {"template_id": 12, "closed_status_id": 3,
                                            "title": "{{visitor.name}} from {{chatra.profile.company}}"}})
        self.fakes.set_chatra_client("client-1", {"id": "client-1", "name": "Maria Lopez", "city": "Madrid",
                                                  "browser": "Firefox", "company": "Acme"})
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        [task] = self.wait_task()
        gets = self.fakes.chatra_requests(method="GET")
        self.assertEqual([r["path"] for r in gets], ["/api/clients/client-1"])
        self.assertEqual(gets[0]["headers"]["Authorization"], "Chatra.Simple chatra-public-key-1:chatra-secret-key-1")
        self.assertEqual(task["name"], "Maria Lopez from Acme")
        self.assertIn("<b>City:</b> Madrid", task["description"])
        self.assertIn("<b>Browser:</b> Firefox", task["description"])
        # The webhook's own values win over the profile's.
        self.fakes.set_chatra_client("client-2", {"city": "Madrid"})
        self.post(chat_event("chatStarted", "client-2", [msg("n1", "Hi")], city="Sevilla"))
        tasks = self.wait_task(2)
        self.assertIn("Sevilla", tasks[1]["description"])

    def test_a_failing_profile_does_not_hold_the_task_back(self):
        self.start_bridge()
        self.fakes.faults("chatra", [{"match": "GET /api/clients/", "action": "status", "status": 500}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], name="Maria Lopez"))
        [task] = self.wait_task()
        self.assertIn("Maria Lopez", task["description"])
        self.wait_idle()
        self.assertIn("Chatra's visitor details are missing (Chatra answered HTTP 500)", self.bridge.log())

    def test_a_hanging_profile_delays_the_task_only_briefly(self):
        self.start_bridge()
        self.fakes.faults("chatra", [{"match": "GET /api/clients/", "action": "hang"}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], name="Maria Lopez"))
        # Created after the bridge stops waiting (3 s), not after the 15 s request timeout.
        [task] = self.wait_task(timeout=8)
        self.assertIn("Hello", task["description"])
        self.fakes.reset("chatra")

    def test_a_failing_contact_lookup_does_not_hold_the_task_back(self):
        self.start_bridge()
        # Scope denied: a permanent failure of the lookup.
        self.fakes.faults("planfix", [{"match": "POST /rest/contact/list", "action": "fail_in_2xx", "code": 5}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="maria@example.org"))
        [task] = self.wait_task()
        self.assertNotIn("assigner", self.pf("/task/")[0]["body"])
        self.assertIn("the task is created without a contact", self.bridge.log())


if __name__ == "__main__":
    unittest.main()
