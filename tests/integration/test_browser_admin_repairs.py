"""Issue 13, the admin page in a browser (headless Chromium): the repairs an admin makes
there.  A job the tracker refused appears among the dead letters; Retry delivers it, Discard
(after a confirmation) marks it discarded; a wrong merge is undone with Unmerge (after a
confirmation).  Run with Debian's python3 (see tests/lib/browser.py)."""

import json
import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from admin_page import AdminPageCase  # noqa: E402

# Client ids as long as Chatra's (17 characters).
LAPTOP = "laptopQm7TzR2pLx9"
PHONE = "phoneVbN4cW8kDs3j"
EMAIL = "maria@example.org"
PHONE_DEVICE = {"browser": "Safari", "os": "iOS", "ip": "10.0.0.1", "city": "Madrid"}


class TestDeadLetters(AdminPageCase):
    def refuse_next_comment(self, task):
        """Planfix answers the next comment on task with a validation error: a dead letter at once."""
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "fail_in_2xx",
                                       "code": 41}])

    def card(self, b, text):
        """The dead letter whose card shows text: (its text, job id, conversation id)."""
        return b.wait_attrs("article.dead", text, "data-job", "data-conversation")

    def test_retry_delivers_and_discard_asks_first(self):
        self.start_admin()
        task, _ = self.open_chat("client-1", name="Maria Lopez", email=EMAIL)
        self.wait_idle()
        b = self.logged_in("#/dead-letters", "dead-letters")
        b.wait_text("section[data-view='dead-letters']", "No dead letters.")

        # The tracker refuses a comment: the dead letter appears by itself, with its request and answer.
        self.refuse_next_comment(task)
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "lost for now")], email=EMAIL))
        card, job, conv = self.card(b, "comment")
        self.assertIn("code 41", card)
        b.wait_text("#dead-count", "(1)")
        b.click("article.dead[data-job='%s'] details.exchange summary" % job)
        b.wait(lambda d: "lost for now" in b.text("article.dead[data-job='%s'] details[open] pre.raw" % job),
               "the request does not show the message")
        self.assertIn("POST /task/%d/comments/" % task, b.text("article.dead[data-job='%s'] pre.raw" % job))
        self.shoot(b, "dead-letters")

        # Retry: it goes, once, and leaves the list.
        b.click("article.dead[data-job='%s'] button.retry" % job)
        b.wait_text("section[data-view='dead-letters'] .notice", "Job %s is back in the queue." % job)
        wait_until(lambda: [c["description"] for c in self.fakes.planfix_comments(task)] == ["lost for now"] or None,
                   message=lambda: "the retried comment was not delivered: %s" % self.fakes.planfix_comments(task))
        b.wait_text("section[data-view='dead-letters']", "No dead letters.")
        b.wait(lambda d: b.text("#dead-count") == "", "the menu still counts a dead letter")
        # The conversation shows the job delivered.
        self.go(b, "#/conversations/%s" % conv, "conversation")
        b.wait(lambda d: b.find("li.event-job[data-job='%s'] .badge[data-state='done']" % job),
               "the retried job is not shown done")

        # Another one refused: Discard asks first; "Cancel" keeps it.
        self.wait_idle()
        self.refuse_next_comment(task)
        self.post(chat_event("chatFragment", "client-1", [msg("m3", "discard me")], email=EMAIL))
        self.go(b, "#/dead-letters", "dead-letters")
        _, second, _ = self.card(b, "comment")
        self.assertNotEqual(second, job)
        b.click("article.dead[data-job='%s'] button.discard" % second)
        dialog = b.alert()
        self.assertIn("Discard job %s?" % second, dialog.text)
        dialog.dismiss()
        self.assert_no_dialog(b)
        self.assertEqual(len(self.dead_letters()), 1)
        self.assertTrue(b.find("article.dead[data-job='%s']" % second))
        # "OK": discarded, gone from the list, kept in the conversation's timeline; never sent.
        b.click("article.dead[data-job='%s'] button.discard" % second)
        b.alert().accept()
        b.wait_text("section[data-view='dead-letters'] .notice", "Job %s discarded." % second)
        b.wait_text("section[data-view='dead-letters']", "No dead letters.")
        self.assertEqual(self.dead_letters(), [])
        self.assertEqual(self.dead_jobs(), 0)
        self.go(b, "#/conversations/%s" % conv, "conversation")
        b.wait(lambda d: b.find("li.event-job[data-job='%s'] .badge[data-state='discarded']" % second),
               "the discarded job is not shown discarded")
        self.assert_quiet()
        self.assertNotIn("discard me", json.dumps(self.fakes.planfix_comments(task)))
        self.assert_no_csp_violations(b)

    def dead_letters(self):
        r = self.bridge.run("dead-letters", "--config", self.bridge.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)


class TestUnmerge(AdminPageCase):
    def test_unmerge_asks_first_and_undoes_the_merge(self):
        self.start_admin()
        # Maria's laptop gives her e-mail; her phone, first without it, gives it later: a merge.
        t1, _ = self.open_chat(LAPTOP, [msg("l1", "Hello from my laptop")], name="Maria Lopez", email=EMAIL)
        self.wait_idle()
        t2, _ = self.open_chat(PHONE, [msg("p1", "Hello from my phone")], **PHONE_DEVICE)
        self.wait_idle()
        self.post(chat_event("chatFragment", PHONE, [msg("p2", "It is me, Maria, the one on the laptop")],
                             email=" Maria@Example.ORG ", **PHONE_DEVICE))
        self.wait_pf("/rest/task/%d" % t2)          # the close of the phone's task
        self.wait_idle()
        [merge] = self.identities()[0]["merges"]
        n = merge["merge"]

        b = self.logged_in("#/identities", "identities")
        item = b.wait_text("li.merge[data-merge='%d']" % n, "in force")
        self.assertIn(EMAIL, item)
        self.assertIn("typed in the chat", item)
        self.shoot(b, "identities")

        # "Cancel" changes nothing.
        b.click("li.merge[data-merge='%d'] button.unmerge" % n)
        dialog = b.alert()
        self.assertIn("Undo merge %d?" % n, dialog.text)
        dialog.dismiss()
        self.assertFalse(self.merge_of(n)["undone"])
        # "OK" undoes it: the page says so, and so does the store.
        b.click("li.merge[data-merge='%d'] button.unmerge" % n)
        b.alert().accept()
        b.wait_text("section[data-view='identities'] .notice", "Merge %d undone" % n)
        b.wait_text("li.merge[data-merge='%d']" % n, "undone")
        self.assertEqual(b.find("li.merge[data-merge='%d'] button.unmerge" % n), [])
        wait_until(lambda: self.merge_of(n)["undone"], message="the store does not show the merge undone")
        # The surviving conversation's timeline shows the merge, undone.
        self.go(b, "#/conversations/%d" % merge["survivor_conversation"], "conversation")
        b.wait_text("li.event-merge", "undone")
        self.assert_no_csp_violations(b)

    def identities(self):
        r = self.bridge.run("identities", "--config", self.bridge.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def merge_of(self, n):
        for p in self.identities():
            for m in p["merges"]:
                if m["merge"] == n:
                    return m
        raise AssertionError("no merge %d" % n)


if __name__ == "__main__":
    unittest.main()
