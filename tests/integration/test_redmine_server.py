"""The real Redmine the Redmine driver will be tested against (issue 5): it starts from the
Debian packages, answers its REST API, and behaves as the reference notes on Redmine say
(switch-user notes, silent 204 on a forbidden status change, closed statuses)."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from redmine_server import RedmineServer  # noqa: E402

WHY = RedmineServer.available()


@unittest.skipIf(WHY, "Redmine cannot run here: %s" % WHY)
class TestRedmineServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rm = RedmineServer()

    @classmethod
    def tearDownClass(cls):
        cls.rm.stop()

    def test_rest_api_project_issue_note_as_another_user(self):
        rm = self.rm
        status, body = rm.api("POST", "/projects.json", {"project": {"name": "Chats", "identifier": "chats"}})
        self.assertEqual(status, 201, body)
        status, body = rm.api("POST", "/users.json", {"user": {"login": "anna", "firstname": "Anna",
                                                               "lastname": "Smirnova", "mail": "anna@example.com",
                                                               "password": "anna-password-1"}})
        self.assertEqual(status, 201, body)
        anna = body["user"]["id"]
        # Anna may write in the project: a membership with the packaged "Manager" role.
        status, roles = rm.api("GET", "/roles.json")
        manager = [r["id"] for r in roles["roles"] if r["name"] == "Manager"][0]
        status, body = rm.api("POST", "/projects/chats/memberships.json",
                              {"membership": {"user_id": anna, "role_ids": [manager]}})
        self.assertEqual(status, 201, body)
        status, body = rm.api("POST", "/issues.json", {"issue": {"project_id": "chats", "subject": "Chat with Maria",
                                                                 "description": "Hello"}})
        self.assertEqual(status, 201, body)
        issue = body["issue"]["id"]
        # A note written as Anna through the admin key.
        status, _ = rm.api("PUT", "/issues/%d.json" % issue, {"issue": {"notes": "Yes, in stock"}},
                           switch_user="anna")
        self.assertEqual(status, 204)
        status, body = rm.api("GET", "/issues/%d.json?include=journals" % issue)
        [journal] = [j for j in body["issue"]["journals"] if j["notes"]]
        self.assertEqual((journal["user"]["id"], journal["notes"]), (anna, "Yes, in stock"))
        # Closed statuses are listed; closing answers 204 and reads back closed.
        status, body = rm.api("GET", "/issue_statuses.json")
        closed = [s["id"] for s in body["issue_statuses"] if s.get("is_closed")]
        self.assertIn(5, closed)
        status, _ = rm.api("PUT", "/issues/%d.json" % issue, {"issue": {"status_id": 5}})
        self.assertEqual(status, 204)
        status, body = rm.api("GET", "/issues/%d.json" % issue)
        self.assertTrue(body["issue"]["status"]["is_closed"])
        # An unknown switch-user login is refused with 412.
        status, _ = rm.api("PUT", "/issues/%d.json" % issue, {"issue": {"notes": "x"}}, switch_user="nobody")
        self.assertEqual(status, 412)


if __name__ == "__main__":
    unittest.main()
