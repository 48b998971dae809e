"""Issue "one person, one thread", behaviour 8: an e-mail domain maps people to one company
contact, set as the task's counterparty; public mail providers are not companies."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg  # noqa: E402
from e2e import CONTACT_SOURCE_RE, E2ECase  # noqa: E402


class TestCompanies(E2ECase):
    def start(self, **companies):
        settings = {"enabled": True, "template_id": 9}
        settings.update(companies)
        self.start_bridge(companies=settings)

    def test_people_of_one_domain_share_the_company_counterparty(self):
        self.start()
        self.post(chat_event("chatStarted", "anna-1", [msg("a1", "Hi")], email="Anna@Acme.com", name="Anna Berg"))
        [task] = self.wait_task()
        find = [r for r in self.pf("/contact/list") if r["body"].get("isCompany")]
        self.assertEqual(len(find), 1)
        self.assertEqual(find[0]["body"]["filters"], [{"type": 4001, "operator": "equal", "value": "acme.com"}])
        create = [r["body"] for r in self.pf("/contact/") if r["body"].get("isCompany")]
        self.assertEqual(len(create), 1)
        self.assertRegex(create[0].pop("sourceObjectId"), CONTACT_SOURCE_RE)
        self.assertEqual(create[0], {"name": "acme.com", "isCompany": True, "site": "acme.com",
                                     "template": {"id": 9}})
        company = [c for c in self.fakes.planfix_contacts() if c.get("isCompany")][0]["id"]
        person = [c for c in self.fakes.planfix_contacts() if not c.get("isCompany")][0]["id"]
        self.assertEqual(task["counterparty"], "contact:%d" % company)
        self.assertEqual(task["assigner"], "contact:%d" % person)
        # A colleague: the company is known, no more company requests.
        before = len(self.fakes.planfix_requests())
        self.post(chat_event("chatStarted", "bob-1", [msg("b1", "Hello")], email="bob@acme.com", name="Bob"))
        tasks = self.wait_task(2)
        self.assertEqual(tasks[1]["counterparty"], "contact:%d" % company)
        self.wait_idle()
        later = self.fakes.planfix_requests()[before:]
        self.assertFalse([r for r in later if isinstance(r["body"], dict) and r["body"].get("isCompany")])

    def test_an_existing_company_is_found(self):
        self.start()
        company = self.fakes.add_contact(name="acme.com", isCompany=True)
        self.post(chat_event("chatStarted", "anna-1", [msg("a1", "Hi")], email="anna@acme.com"))
        [task] = self.wait_task()
        self.assertEqual(task["counterparty"], "contact:%d" % company)
        self.assertFalse([r for r in self.pf("/contact/") if r["body"].get("isCompany")])

    def test_public_mail_providers_are_not_companies(self):
        self.start(public_domains=["example-mail.org"])
        self.post(chat_event("chatStarted", "m-1", [msg("m1", "Hi")], email="maria@example-mail.org"))
        [task] = self.wait_task()
        self.assertEqual(task["counterparty"], task["assigner"])
        self.assertFalse([r for r in self.fakes.planfix_requests()
                          if isinstance(r["body"], dict) and r["body"].get("isCompany")])

    def test_the_default_list_knows_gmail(self):
        self.start()
        self.post(chat_event("chatStarted", "m-1", [msg("m1", "Hi")], email="maria@gmail.com"))
        [task] = self.wait_task()
        self.assertEqual(task["counterparty"], task["assigner"])

    def test_off_by_default(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "anna-1", [msg("a1", "Hi")], email="anna@acme.com"))
        [task] = self.wait_task()
        self.assertEqual(task["counterparty"], task["assigner"])


if __name__ == "__main__":
    unittest.main()
