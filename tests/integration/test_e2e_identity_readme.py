"""README "One person, one thread", "Employees by e-mail" and the admin page's Unmerge, as far as
they concern identity: the claims the other tests leave open, checked by running the daemon
against the fake Planfix and a real Redmine (each test quotes its README line).
"""

import os
import signal
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import ANNA, msg, wait_until  # noqa: E402
from admin import ADMIN_TOKEN, BEARER  # noqa: E402
from test_e2e_identity import EMAIL, L, P, PHONE_DEVICE, IdentityCase, num  # noqa: E402
from test_e2e_redmine import POLL_WAIT, RedmineCase  # noqa: E402

ANNA_AGENT = ANNA["chatra_agent_id"]
PHONE_NUMBER = "+34 600 111 222"


class ReadmeCase(IdentityCase):
    def contact_updates(self, contact):
        """Bodies of the updates the bridge sent for contact (deletes left out)."""
        return [r["body"] for r in self.pf("/rest/contact/%d" % num(contact), "POST")
                if r["body"] != {"isDeleted": True}]

    def joined_phone(self, t1, **fields):
        """The phone opens a chat with the laptop's e-mail: it joins T1."""
        fields.setdefault("email", EMAIL)
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), **dict(PHONE_DEVICE, **fields))
        self.wait_comment_posts(t1, 2)
        self.wait_idle()


# --- replies go to the device the visitor last wrote from ----------------------------------------

class TestRepliesFollowTheVisitor(ReadmeCase):
    def visitor_moved_to_the_phone(self, **start):
        """The laptop's chat, the phone joins it, and the visitor writes again from the phone: T1."""
        self.start_bridge(**start)
        t1, c1 = self.laptop_with_email()
        self.joined_phone(t1)
        self.send("chatFragment", P, msg("p2", "I am on my phone now"), email=EMAIL, **PHONE_DEVICE)
        self.wait_comment_posts(t1, 3)
        self.wait_idle()
        return t1

    def test_a_laptop_transcript_after_the_visitor_wrote_from_the_phone(self):
        # README: "Replies always go to the device the visitor last wrote from."
        # The laptop's chat ends (its tab closed) after the visitor moved to the phone; with
        # close_on_leave off the task stays open and the visitor waits on the phone.
        t1 = self.visitor_moved_to_the_phone(channel={"close_on_leave": False})
        self.send("chatTranscript", L, msg("l1", "Hello from my laptop"), name="Maria Lopez", email=EMAIL)
        self.wait_idle()
        self.assertEqual(self.replies_to(t1, "Answer for the phone"), P,
                         "the visitor last wrote from the phone, the reply went elsewhere")

    def test_an_agent_message_in_the_laptop_chat_after_the_visitor_wrote_from_the_phone(self):
        # An agent types into the laptop's (still open) chat in Chatra; the visitor wrote last from the phone.
        t1 = self.visitor_moved_to_the_phone()
        self.send("chatFragment", L, msg("a1", "Are you still there?", type="agent", agent_id=ANNA_AGENT),
                  name="Maria Lopez", email=EMAIL)
        self.wait_comment_posts(t1, 4)
        self.wait_idle()
        self.assertEqual(self.replies_to(t1, "Answer for the phone"), P,
                         "the visitor last wrote from the phone, the reply went elsewhere")

    def test_the_last_device_survives_a_sigkill(self):
        # Passing: the device the visitor last wrote from is durable.
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.joined_phone(t1)
        self.send("chatFragment", L, msg("l2", "Back on the laptop"), name="Maria Lopez", email=EMAIL)
        self.send("chatFragment", P, msg("p2", "No, the phone after all"), email=EMAIL, **PHONE_DEVICE)
        self.assertEqual(self.bridge.kill(signal.SIGKILL), -signal.SIGKILL)
        self.bridge.start()
        # Killed before the laptop's comment job ran, the two messages wait together after the
        # restart and share one comment (coalesced): count the messages, not the comments.
        visitor = lambda: [t for t, o in self.comment_texts(t1, owner=True) if o is not None]
        wait_until(lambda: len(visitor()) >= 3, message=lambda: "not mirrored: %s" % self.comment_texts(t1))
        self.assert_quiet()
        self.assertEqual(visitor(), ["Hi from the phone", "Back on the laptop", "No, the phone after all"])
        self.assertEqual(self.replies_to(t1, "Answer for the phone"), P)


# --- unmerge: "the next message from that device opens a task of its own" -------------------------

class TestUnmergeWithTheEmailStillSent(ReadmeCase):
    """Chatra repeats the client's e-mail in every webhook of the device: the device that was
    merged wrongly keeps sending the address that caused it."""

    def test_an_undone_join_then_the_next_message_of_the_phone(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.joined_phone(t1)
        [join] = self.identities(EMAIL)[0]["merges"]
        r = self.unmerge(join["merge"])
        self.assertEqual(r.returncode, 0, (r.stdout, r.stderr))
        n = len(self.fakes.planfix_tasks())
        mark = self.mark()
        self.send("chatFragment", P, msg("p2", "Only the phone"), email=EMAIL, **PHONE_DEVICE)
        self.wait_idle()
        self.assertNotIn("Only the phone", [d for d, _ in self.thread(t1, mark)],
                         "the phone's next message went to the laptop's task again")
        self.assertEqual(len(self.fakes.planfix_tasks()), n + 1, "no task of its own for the phone")
        merges = self.identities(EMAIL)[0]["merges"]
        self.assertEqual([m["undone"] for m in merges], [True], merges)

    def test_an_undone_late_merge_then_the_next_message_of_the_phone(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        t2, c2 = self.phone_without_email()
        self.merge_late(t1, c1, t2)
        [merge] = self.identities()[0]["merges"]
        r = self.unmerge(merge["merge"])
        self.assertEqual(r.returncode, 0, (r.stdout, r.stderr))
        mark = self.mark()
        n = len(self.fakes.planfix_tasks())
        self.send("chatFragment", P, msg("p3", "Only the phone again"), email=" Maria@Example.ORG ", **PHONE_DEVICE)
        self.wait_idle()
        self.assertNotIn("Only the phone again", [d for d, _ in self.thread(t1, mark)],
                         "the phone's next message went to the laptop's task again")
        self.assertEqual(len(self.fakes.planfix_tasks()), n + 1, "no task of its own for the phone")

    def test_admin_unmerge_of_a_join_gives_the_phone_its_own_task_and_replies(self):
        # Passing (the admin API's unmerge of a join, when the phone's next webhook has no e-mail).
        self.bridge.env["BR_ADMIN_TOKEN"] = ADMIN_TOKEN
        self.start_bridge(admin={"token": "env:BR_ADMIN_TOKEN"})
        t1, c1 = self.laptop_with_email()
        self.joined_phone(t1)
        [join] = self.identities(EMAIL)[0]["merges"]
        r = self.bridge.post("/admin/api/merges/%d/unmerge" % join["merge"], b"", BEARER)
        self.assertEqual(r.status, 200, r.body)
        n = len(self.fakes.planfix_tasks())
        self.send("chatFragment", P, msg("p2", "Only the phone"), **PHONE_DEVICE)
        t3 = self.wait_task(n + 1)[n]["id"]
        self.assert_quiet()
        self.assertEqual(self.replies_to(t3, "To the phone"), P)
        self.assertEqual(self.replies_to(t1, "To the laptop"), L)


# --- contact updates when the details arrive with a late e-mail ----------------------------------

class TestDetailsThatComeWithALateEmail(ReadmeCase):
    def test_a_phone_number_in_the_merging_fragment_reaches_the_surviving_contact(self):
        # README: "When the visitor gives their name, e-mail or phone later, the contact is updated".
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        t2, c2 = self.phone_without_email()
        self.merge_late(t1, c1, t2, phone=PHONE_NUMBER)
        self.assert_quiet()
        # Said again in the next fragment: still not written anywhere.
        self.send("chatFragment", P, msg("p3", "Call me at that number"), email=EMAIL, phone=PHONE_NUMBER,
                  **PHONE_DEVICE)
        self.wait_comment_posts(t1, 3)
        self.assert_quiet()
        phones = [u.get("phones") for u in self.contact_updates(c1)]
        self.assertIn([{"number": PHONE_NUMBER, "type": 1}], phones,
                      "the phone number told with the late e-mail never reached contact %s" % c1)

    def test_the_email_typed_on_the_older_anonymous_device_reaches_its_contact(self):
        # The older (anonymous) laptop thread survives; the newer phone thread, whose contact has
        # the e-mail, is merged into it and that contact removed: the e-mail the laptop just typed
        # should be on the surviving contact.
        self.start_bridge()
        t1, c1 = self.open_chat(L, [msg("l1", "anonymous laptop")])
        self.wait_idle()
        t2, c2 = self.open_chat(P, [msg("p1", "phone with e-mail")], email=EMAIL, name="Maria Lopez",
                                **PHONE_DEVICE)
        self.wait_idle()
        self.send("chatFragment", L, msg("l2", "me again"), email=EMAIL)
        self.wait_pf("/rest/task/%d" % t2)
        self.assert_quiet()
        self.assertEqual(self.active_tasks(), [t1])
        self.assertNotIn(num(c2), self.live_contacts())
        emails = [u.get("email") for u in self.contact_updates(c1)]
        self.assertIn(EMAIL, emails, "the surviving contact %s never got the e-mail %s" % (c1, EMAIL))

    def test_a_joining_device_with_a_phone_number_updates_the_contact(self):
        # Passing: the join (e-mail known at once) does update the contact.
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.joined_phone(t1, phone=PHONE_NUMBER)
        self.assertIn([{"number": PHONE_NUMBER, "type": 1}], [u.get("phones") for u in self.contact_updates(c1)])


# --- a new device of a person whose task was completed ------------------------------------------

class TestNewDeviceAfterTheTaskWasCompleted(ReadmeCase):
    def test_task_completed_in_planfix_then_a_new_device_with_the_email(self):
        # README: "when the tracker says the task was completed (or deleted), the new chat gets a
        # new task that carries the previous conversation (with new_task_if_no_active)"; the
        # channel table: "otherwise, and when the visitor's task was completed, a new task is made".
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.fakes.set_task_status(t1, 3)
        mark = self.mark()
        n = len(self.fakes.planfix_tasks())
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), email=EMAIL, **PHONE_DEVICE)
        self.assert_quiet(1.5)
        self.assertEqual(self.thread(t1, mark), [], "the phone's chat went into the completed task #%d" % t1)
        self.assertEqual(len(self.fakes.planfix_tasks()), n + 1, "no new task for the phone's chat")

    def test_task_deleted_in_planfix_then_a_new_device_with_the_email(self):
        # "a deleted task always leads to a new one" holds (the message opens a new task); but the
        # note that a device joined is aimed at the deleted task and becomes a dead letter, so the
        # new task never says which device joined.
        self.start_bridge(channel={"new_task_if_no_active": False})
        t1, c1 = self.laptop_with_email()
        self.fakes.delete_task(t1)
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), email=EMAIL, **PHONE_DEVICE)
        t2 = self.wait_task(2)[1]
        self.assert_quiet(1.5)
        self.assertIn("Hi from the phone", t2["description"] + "".join(d for d, _ in self.thread(t2["id"])))
        self.assertEqual(self.replies_to(t2["id"], "Welcome back"), P)
        self.assertEqual(self.dead_jobs(), 0, "a dead letter for an ordinary join")
        self.assertTrue([d for d, _ in self.thread(t2["id"]) if "A new device joined" in d],
                        "the new task #%d does not say a device joined" % t2["id"])

    def test_task_completed_by_the_visitor_leaving_then_a_new_device_with_the_email(self):
        # Passing: when the bridge itself completed the task, the joining device opens a new one.
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.send("chatTranscript", L, msg("l1", "Hello from my laptop"), name="Maria Lopez", email=EMAIL)
        self.wait_pf("/rest/task/%d" % t1)
        self.wait_idle()
        mark = self.mark()
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), email=EMAIL, **PHONE_DEVICE)
        t2 = self.wait_task(2)[1]
        self.assert_quiet()
        self.assertEqual(self.thread(t1, mark), [])
        self.assertIn("Hello from my laptop", t2["description"])      # the previous conversation
        self.assertIn("Hi from the phone", t2["description"] + "".join(d for d, _ in self.thread(t2["id"])))
        self.assertEqual(self.replies_to(t2["id"], "Welcome back"), P)

    def test_option_off_a_new_device_writes_to_the_completed_task(self):
        # Passing: new_task_if_no_active off, "all of a visitor's messages go to their one task".
        self.start_bridge(channel={"new_task_if_no_active": False})
        t1, c1 = self.laptop_with_email()
        self.send("chatTranscript", L, msg("l1", "Hello from my laptop"), name="Maria Lopez", email=EMAIL)
        self.wait_pf("/rest/task/%d" % t1)
        self.wait_idle()
        mark = self.mark()
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), email=EMAIL, **PHONE_DEVICE)
        self.wait_comment_posts(t1, 2)
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual([d for d, o in self.thread(t1, mark) if o is not None], ["Hi from the phone"])


# --- a late e-mail while the phone's task is still being made, and a crash -------------------------

class TestLateEmailWhileTheTaskIsBeingMade(ReadmeCase):
    def occurrences(self, text):
        """How many times text is in Planfix: task descriptions and comments."""
        n = sum(t["description"].count(text) for t in self.fakes.planfix_tasks())
        return n + sum(c["description"].count(text) for c in self.fakes.planfix_comments())

    def test_merge_while_the_phone_task_is_held_then_sigkill(self):
        # Passing: nothing lost or repeated, one active task (README: crash-safe; the newer thread
        # joins the older one, its task gets a pointer and is completed).
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "hold"}])
        self.send("chatStarted", P, msg("p1", "Hello from my phone"), **PHONE_DEVICE)
        wait_until(lambda: self.fakes.stats("planfix")["held"] >= 1, message="the phone's task was not asked for")
        self.send("chatFragment", P, msg("p2", "It is me, Maria"), email=EMAIL, **PHONE_DEVICE)
        wait_until(lambda: self.health()["engine"]["inbox_pending"] == 0, message="the fragment was not applied")
        self.assertEqual(self.bridge.kill(signal.SIGKILL), -signal.SIGKILL)
        self.fakes.release("planfix")
        wait_until(lambda: len(self.fakes.planfix_tasks()) == 2, message="the held task was not made")
        self.bridge.start()
        self.wait_idle(30)
        self.assert_quiet(1.5)
        self.assertEqual(len(self.fakes.planfix_tasks()), 2, self.fakes.planfix_tasks())
        self.assertEqual(self.active_tasks(), [t1])
        for text in ("Hello from my phone", "It is me, Maria"):
            self.assertEqual(self.occurrences(text), 1, text)
        self.assertEqual(self.occurrences("This conversation continues in task #%d" % t1), 1)
        self.assertEqual(self.occurrences("A new device joined this conversation"), 1)
        self.assertEqual(self.replies_to(t1, "Hello Maria"), P)
        self.assertEqual(self.dead_jobs(), 0)


# --- Cyrillic addresses ----------------------------------------------------------------------------

class TestCyrillicAddresses(ReadmeCase):
    def test_identities_and_a_late_merge_with_capital_cyrillic(self):
        # Passing: "Мария@Пример.РФ" and "мария@пример.рф" are one address, also for --email.
        self.start_bridge(language="ru")
        t1, c1 = self.open_chat(L, [msg("l1", "С ноутбука")], email="  Мария@Пример.РФ ", name="Мария")
        self.wait_idle()
        t2, c2 = self.phone_without_email()
        self.send("chatFragment", P, msg("p2", "Это я"), email="МАРИЯ@ПРИМЕР.РФ", **PHONE_DEVICE)
        self.wait_pf("/rest/task/%d" % t2)
        self.wait_comment_posts(t1, 2)
        self.assert_quiet()
        self.assertEqual(self.active_tasks(), [t1])
        [maria] = self.identities("мАРИЯ@пример.рф")
        self.assertEqual(maria["emails"], [{"email": "мария@пример.рф", "verified": False}])
        self.assertEqual(self.replies_to(t1, "Ответ"), P)


# --- employees by e-mail, with a Cyrillic address in other cases ---------------------------------

class TestCyrillicEmployeeByEmail(ReadmeCase):
    def test_reply_and_chatra_message_of_an_employee_known_by_a_cyrillic_email(self):
        # Passing: the employee is found by e-mail (filter 9003) whatever the case of either side.
        self.fakes.control("planfix", "POST", "users", [{"id": 8, "name": "Ольга", "lastname": "Иванова",
                                                         "email": "Ольга@Пример.РФ"}])
        olga = {"name": "Ольга Иванова", "email": "ОЛЬГА@пример.рф"}
        self.start_bridge(employees=[olga], channel={"employees": ["ольга@ПРИМЕР.рф"]})
        t1, c1 = self.laptop_with_email()
        self.fakes.employee_comment(t1, owner="user:8", name="Ольга", text="Здравствуйте!")
        self.bridge.post_planfix(t1)
        [sent] = [r["body"] for r in self.wait_chatra()]
        self.assertEqual(sent, {"clientId": L, "text": "Здравствуйте!", "agentEmail": "ольга@пример.рф",
                                "agentName": "Ольга Иванова", "receivedFrom": "Planfix"})
        self.send("chatFragment", L, msg("o1", "Ещё вопросы?", type="agent", agent_id="chatraOlga0000001"),
                  agents=[{"id": "chatraOlga0000001", "email": " ОЛЬГА@ПРИМЕР.РФ"}], email=EMAIL)
        [post] = self.wait_comment_posts(t1, 1)
        self.assert_quiet()
        self.assertEqual(post["body"]["owner"], {"id": "user:8"})
        self.assertEqual(len(self.pf("/rest/user/list", "POST")), 1)


# --- Redmine -----------------------------------------------------------------------------------------

class TestRedmineIdentity(RedmineCase):
    def test_a_phone_number_with_the_late_email_becomes_a_note(self):
        # README (Redmine): "when the visitor tells a new name, e-mail or phone later, the bridge
        # adds a note".  Here the phone number comes with the e-mail that merges two threads.
        self.start()
        email = "maria.audit.phone@example.org"
        n1 = self.open_chat("rm-a-laptop", "Hello from my laptop", name="Maria Audit", email=email)["id"]
        n2 = self.open_chat("rm-a-phone", "Hello from my phone")["id"]
        self.say("rm-a-phone", "rm-a-phone-m2", "It is me, from the laptop", email=email, phone=PHONE_NUMBER)
        wait_until(lambda: self.issue(n2)["status"]["is_closed"], POLL_WAIT, message="#%d not closed" % n2)
        self.wait_notes(n1, 2)
        self.wait_idle(POLL_WAIT)
        texts = [t for _, t in self.notes(n1)]
        self.assertTrue(any(PHONE_NUMBER in t for t in texts),
                        "the phone number told with the late e-mail is nowhere on #%d: %s" % (n1, texts))

    def test_a_new_chat_of_a_known_device_is_a_new_visit_note_with_its_pages(self):
        # Passing (no Redmine test had it): "Redmine, which has no contacts, keeps it on the issue (new_visit)".
        self.start()
        email = "maria.audit.visit@example.org"
        n = self.open_chat("rm-v-laptop", "First chat", name="Maria Visit", email=email, chatId="chat-v-1")["id"]
        self.say("rm-v-laptop", "rm-v-laptop-m2", "Second chat", event="chatStarted", chat_id="chat-v-2",
                 email=email, browser="Firefox", pages=[{"url": "https://shop.example/kettles", "title": "Kettles"}])
        notes = wait_until(lambda: (lambda ns: ns if len(ns) >= 2 else None)([t for _, t in self.notes(n)]),
                           POLL_WAIT, message=lambda: "notes on #%d: %s" % (n, self.notes(n)))
        self.wait_idle(POLL_WAIT)
        visit = [t for t in notes if "New visit" in t]
        self.assertEqual(len(visit), 1, notes)
        self.assertIn("browser Firefox", visit[0])
        self.assertIn("https://shop.example/kettles", visit[0])
        self.assertEqual(len(self.issues()), 1)

    def test_a_new_device_that_joins_keeps_its_visit_and_pages_on_the_issue(self):
        # README: "Each visit of a known person (a new chat of a known device, or a new device that
        # joins) is also logged on the Planfix contact's card (contact_visit: browser, OS, IP, city,
        # pages); Redmine, which has no contacts, keeps it on the issue (new_visit)."
        self.start()
        email = "maria.audit.join@example.org"
        n = self.open_chat("rm-j-laptop", "From the laptop", name="Maria Join", email=email)["id"]
        self.say("rm-j-phone", "rm-j-phone-m1", "From the phone", event="chatStarted", email=email, os="iOS",
                 pages=[{"url": "https://shop.example/teapots", "title": "Teapots"}])
        wait_until(lambda: (lambda ns: ns if len(ns) >= 2 else None)([t for _, t in self.notes(n)]),
                   POLL_WAIT, message=lambda: "notes on #%d: %s" % (n, self.notes(n)))
        self.wait_idle(POLL_WAIT)
        self.assertTrue(any("https://shop.example/teapots" in t for t in self.notes_text(n)),
                        "the joining device's visit (its pages) is not on #%d: %s" % (n, self.notes_text(n)))

    def notes_text(self, n):
        return [t for _, t in self.notes(n)]

    def test_russian_capital_cyrillic_email_joins_and_the_reply_follows(self):
        # Passing: case-folded Cyrillic addresses on Redmine, in Russian, reply to the last device.
        self.config["language"] = "ru"
        self.start()
        n = self.open_chat("rm-ru-laptop", "С ноутбука", name="Мария", email="Мария.Аудит@Пример.РФ")["id"]
        self.say("rm-ru-phone", "rm-ru-phone-m1", "С телефона", event="chatStarted", email="мария.аудит@пример.рф")
        notes = wait_until(lambda: (lambda ns: ns if len(ns) >= 2 else None)([t for _, t in self.notes(n)]),
                           POLL_WAIT, message=lambda: "notes on #%d: %s" % (n, self.notes(n)))
        self.wait_idle(POLL_WAIT)
        self.assertEqual(len(self.issues()), 1)
        self.assertTrue(any("С телефона" in t for t in notes), notes)
        self.assertTrue(any("присоединилось новое устройство" in t for t in notes), notes)
        self.employee_note(n, "anna", "Ответ на телефон")
        wait_until(lambda: self.fakes.chatra_messages(), POLL_WAIT, message="the reply did not reach the chat")
        self.assertEqual([(m["clientId"], m["text"]) for m in self.fakes.chatra_messages()],
                         [("rm-ru-phone", "Ответ на телефон")])


if __name__ == "__main__":
    unittest.main()
