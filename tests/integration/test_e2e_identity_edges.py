"""Issue "one person, one thread": the edges a second reader found (older thread survives,
verified means verified on both sides, typed e-mails do not rewrite customers' cards, merged
threads are not mirrored twice, joins can be undone, one company per domain)."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402
from test_e2e_identity import EMAIL, L, P, PHONE_DEVICE, IdentityCase  # noqa: E402


class TestMergeEdges(IdentityCase):
    def test_the_older_thread_survives_whichever_side_brings_the_email(self):
        self.start_bridge()
        t1, c1 = self.open_chat(L, [msg("l1", "anonymous laptop")])
        self.wait_idle()
        t2, c2 = self.open_chat(P, [msg("p1", "phone with e-mail")], email=EMAIL, **PHONE_DEVICE)
        self.wait_idle()
        self.send("chatFragment", L, msg("l2", "me again"), email=EMAIL)
        self.wait_pf("/rest/task/%d" % t2)      # the newer task is completed
        self.assert_quiet()
        self.assertEqual(self.active_tasks(), [t1])
        self.assertIn(("me again", c1), self.thread(t1))

    def test_verified_policy_needs_the_site_on_both_sides(self):
        self.start_bridge(channel={"merge_policy": "verified"})
        tp, _ = self.open_chat(P, [msg("p1", "someone typed an address")], email=EMAIL)
        self.wait_idle()
        n = len(self.fakes.planfix_tasks())
        self.send("chatStarted", L, msg("l1", "the customer signed in"), info={"email": EMAIL})
        tl = self.wait_task(n + 1)[n]["id"]
        self.assert_quiet()
        self.assertNotEqual(tl, tp)
        # A reply on the typed thread goes to its own device only.
        self.assertEqual(self.replies_to(tp, "about your order"), P)

    def test_a_merged_devices_transcript_is_not_mirrored_again(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        t2, c2 = self.phone_without_email()
        self.merge_late(t1, c1, t2)
        before = [d for d, _ in self.thread(t1)]
        self.send("chatTranscript", P, msg("p1", "Hello from my phone"), **PHONE_DEVICE)
        self.assert_quiet()
        self.assertEqual([d for d, _ in self.thread(t1)], before)

    def test_a_join_can_be_undone(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.send("chatStarted", P, msg("p1", "Me again"), email=EMAIL, **PHONE_DEVICE)
        self.wait_comment_posts(t1, 2)
        self.wait_idle()
        [join] = self.identities(EMAIL)[0]["merges"]
        out = self.bridge.run("unmerge", "--config", self.bridge.config_path, "--merge", str(join["merge"]))
        self.assertEqual(out.returncode, 0, out.stderr)
        # The phone writes again: a task of its own.
        n = len(self.fakes.planfix_tasks())
        self.send("chatStarted", P, msg("p2", "Only the phone"), **PHONE_DEVICE, chatId="chat-phone-2")
        self.wait_task(n + 1)
        self.assertEqual(self.replies_to(t1, "to the laptop"), L)


class TestContactsAndCompanies(E2ECase):
    def test_a_typed_email_does_not_rewrite_a_customers_card(self):
        self.start_bridge()
        cust = self.fakes.add_contact(name="Real Customer", email="vip@example.org")
        self.open_chat("att-1", [msg("x1", "hi")], email="vip@example.org", name="Mallory", phone="+100")
        self.wait_idle()
        self.post(chat_event("chatFragment", "att-1", [msg("x2", "again")], email="vip@example.org",
                             name="Mallory", phone="+200"))
        self.assert_quiet()
        self.assertEqual(self.pf("/rest/contact/%d" % cust), [])

    def test_verified_policy_does_not_look_up_typed_emails(self):
        self.start_bridge(channel={"merge_policy": "verified"})
        cust = self.fakes.add_contact(name="Real Customer", email="vip@example.org")
        task, contact = self.open_chat("att-1", [msg("x1", "hi")], email="vip@example.org", name="Mallory")
        self.assertNotEqual(contact, "contact:%d" % cust)
        self.assertEqual(self.pf("/rest/contact/list"), [])

    def test_two_colleagues_at_once_make_one_company(self):
        self.start_bridge(companies={"enabled": True})
        self.post(chat_event("chatStarted", "anna-1", [msg("a1", "Hi")], email="anna@acme.com", name="Anna"))
        self.post(chat_event("chatStarted", "bob-1", [msg("b1", "Hi")], email="bob@acme.com", name="Bob"))
        tasks = self.wait_task(2)
        self.wait_idle()
        companies = [c for c in self.fakes.planfix_contacts() if c.get("isCompany")]
        self.assertEqual(len(companies), 1)
        tasks = self.fakes.planfix_tasks()
        self.assertEqual({t["counterparty"] for t in tasks}, {"contact:%d" % companies[0]["id"]})


if __name__ == "__main__":
    unittest.main()
