"""Issue 10, points 5 to 7: Planfix's own Chatra integration, on the contact's side.

  5. Each visit of a known person (a new chat of a known device, a new device that joins) is
     logged on the contact's card (POST /contact/{id}/comments/) with browser, OS, IP, city and
     pages; the first chat of a new person is not (its task describes it); once, also when the
     bridge is killed while the comment is on its way.
  6. "A new task if there are no active tasks with this contact": a chat of a contact who takes
     part in an active task (as assigner or counterparty, made by hand too) joins that task:
     every message goes there as a comment, and the bridge never completes a task it did not
     make.  A completed one, or the option off, gives a new task.  The contact is looked up by
     every e-mail the person gave, not just the latest.
  7. channels[].contact.custom_fields fill Planfix contact custom fields from templates, when the
     contact is made and when the visitor's details change; task.custom_fields work on Planfix too.
"""

import os
import signal
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

L, P = "cv-laptop", "cv-phone"


def num(ref):
    return int(str(ref).split(":")[-1])


class TestVisitsOnTheContactCard(E2ECase):
    def test_each_new_chat_of_a_known_person_is_a_visit_on_the_card(self):
        self.start_bridge()
        task, contact = self.open_chat(L, [msg("l1", "Hello")], name="Maria Lopez", email="maria@example.org",
                                       chatId="chat-1")
        self.wait_idle()
        self.assertEqual(self.fakes.planfix_contact_comments(), [], "the first chat is in the task, not a visit")
        self.post(chat_event("chatStarted", L, [msg("l2", "Back again")], name="Maria Lopez",
                             email="maria@example.org", chatId="chat-2", browser="Firefox", os="Linux",
                             ip="1.2.3.4", city="Berlin",
                             pages=[{"url": "https://shop.example/kettles", "title": "Kettles <new>"}]))
        wait_until(lambda: self.fakes.planfix_contact_comments(), message="no visit on the card")
        # A phone with the same e-mail joins: another visit.
        self.post(chat_event("chatStarted", P, [msg("p1", "From my phone")], email="maria@example.org", os="iOS"))
        visits = wait_until(lambda: (lambda v: v if len(v) >= 2 else None)(self.fakes.planfix_contact_comments()),
                            message="no second visit")
        self.wait_idle()
        self.assertEqual([v["contact"] for v in visits], [num(contact)] * 2)
        self.assertEqual(visits[0]["description"],
                         "<b>Visit</b> (shop): browser Firefox, OS Linux, IP 1.2.3.4, city Berlin.\n"
                         "<br>Page: Kettles &lt;new&gt; &mdash; https://shop.example/kettles\n"
                         "<br>Task #%d" % task)
        self.assertEqual(visits[1]["description"], "<b>Visit</b> (shop): OS iOS.\n<br>Task #%d" % task)
        self.assertEqual(len(self.pf("/contact/%d/comments/" % num(contact), "POST")), 2)
        # The task still gets its note, as before, with the pages now.
        notes = [c["description"] for c in self.fakes.planfix_comments(task)
                 if c["description"].startswith("<b>New visit</b>")]
        self.assertEqual(notes, ["<b>New visit</b>: browser Firefox, OS Linux, IP 1.2.3.4, city Berlin.\n"
                                 "<br>Page: Kettles &lt;new&gt; &mdash; https://shop.example/kettles"])

    def test_a_visit_is_logged_once_across_a_crash(self):
        self.start_bridge()
        task, contact = self.open_chat(L, [msg("l1", "Hello")], name="Maria Lopez", chatId="chat-1")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/contact/%d/comments/" % num(contact),
                                       "action": "delay", "seconds": 2, "effect": True}])
        self.post(chat_event("chatStarted", L, [msg("l2", "Again")], name="Maria Lopez", chatId="chat-2",
                             browser="Edge"))
        self.wait_pf("/contact/%d/comments/" % num(contact))
        self.bridge.kill(signal.SIGKILL)
        wait_until(lambda: self.fakes.planfix_contact_comments(), message="the delayed visit never landed")
        self.bridge.start()
        self.wait_idle()
        self.assertEqual(len(self.fakes.planfix_contact_comments()), 1)
        # The restarted job looked before writing again.
        self.assertTrue(self.pf("/contact/%d/comments/list" % num(contact), "POST"))

    def test_russian_visit(self):
        self.start_bridge(language="ru")
        task, contact = self.open_chat(L, [msg("l1", "Привет")], name="Мария", chatId="chat-1")
        self.wait_idle()
        self.post(chat_event("chatStarted", L, [msg("l2", "Снова")], name="Мария", chatId="chat-2",
                             city="Казань"))
        [visit] = wait_until(lambda: self.fakes.planfix_contact_comments(), message="no visit")
        self.assertEqual(visit["description"], "<b>Визит</b> (shop): город Казань.\n<br>Задача #%d" % task)


class TestActiveTaskOfTheContact(E2ECase):
    def known_contact_with_task(self, status=2, role="assigner"):
        contact = self.fakes.add_contact(name="Maria", lastname="Lopez", email="maria@example.org")
        task = self.fakes.add_task(name="Renewal of Maria's contract", **{role: {"id": "contact:%d" % contact}})
        if status != 2:
            self.fakes.set_task_status(task, status)
        return contact, task

    def test_a_new_chat_joins_the_contacts_hand_made_task(self):
        self.start_bridge()
        contact, hand = self.known_contact_with_task()
        self.post(chat_event("chatStarted", L, [msg("l1", "About my contract"), msg("l2", "Can we talk?")],
                             name="Maria Lopez", email="maria@example.org"))
        self.wait_comment_posts(hand, 1)
        self.wait_idle()
        self.assertEqual([t["id"] for t in self.fakes.planfix_tasks()], [hand], "no new task")
        self.assertEqual(self.pf("/task/", "POST"), [])
        self.assertEqual(self.comment_texts(hand), ["About my contract", "Can we talk?"])
        [lookup] = [r for r in self.pf("/task/list", "POST")][:1]
        self.assertEqual(lookup["body"]["filters"], [{"type": 1, "operator": "equal", "value": "contact:%d" % contact}])
        # Replies from the task reach the chat; the visitor leaving does not complete the task.
        self.fakes.employee_comment(hand, owner="user:5", text="Sure, Maria")
        self.bridge.post_planfix(hand)
        self.wait_chatra(count=1)
        self.post(chat_event("chatTranscript", L, [], name="Maria Lopez", email="maria@example.org"))
        self.wait_idle()
        self.assertTrue(self.fakes.planfix_task(hand)["statusActive"])
        self.assertEqual([u for u in self.fakes.planfix_task(hand)["updates"] if "status" in u], [])

    def test_the_contact_as_counterparty(self):
        self.start_bridge()
        contact, hand = self.known_contact_with_task(role="counterparty")
        self.post(chat_event("chatStarted", L, [msg("l1", "Hello again")], email="maria@example.org"))
        self.wait_comment_posts(hand, 1)
        self.wait_idle()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(self.comment_texts(hand), ["Hello again"])

    def test_a_completed_task_or_the_option_off_gives_a_new_task(self):
        self.start_bridge()
        contact, hand = self.known_contact_with_task(status=3)
        task, _ = self.open_chat(L, [msg("l1", "Hello")], email="maria@example.org")
        self.assertNotEqual(task, hand)
        self.wait_idle()
        self.bridge.stop()
        self.fakes.reset()
        contact, hand = self.known_contact_with_task()
        self.config["channels"][0]["new_task_if_no_active"] = False
        self.bridge.start()
        task, _ = self.open_chat("other-device", [msg("o1", "Hi")], email="maria@example.org")
        self.assertNotEqual(task, hand)
        self.assertEqual(self.pf("/task/list", "POST"), [], "the option is off: nothing looked up")

    def test_the_contact_is_looked_up_by_every_email_of_the_person(self):
        # Planfix knows Maria by her work address; she gives it, then her home address, while
        # Planfix is down: the contact is found by the older one, not made anew.
        self.start_bridge()
        contact = self.fakes.add_contact(name="Maria", email="maria@work.example")
        self.fakes.faults("planfix", [{"match": "POST /rest/contact/list", "action": "status", "status": 503,
                                       "times": 1}])
        self.post(chat_event("chatStarted", L, [msg("l1", "Hi")], name="Maria", email="maria@work.example"))
        self.post(chat_event("chatFragment", L, [msg("l2", "Use this one")], name="Maria",
                             email="maria@home.example"))
        task = self.wait_task(1, timeout=15)[0]
        self.wait_idle(timeout=15)
        self.assertEqual(task["assigner"], "contact:%d" % contact)
        self.assertEqual(self.pf("/contact/", "POST"), [], "no contact made")
        looked = [r["body"]["filters"][0]["value"] for r in self.pf("/contact/list", "POST")]
        self.assertEqual(looked[-2:], ["maria@home.example", "maria@work.example"])


class TestContactCustomFields(E2ECase):
    def test_contact_and_task_custom_fields_from_templates(self):
        self.start_bridge(channel={"contact": {"template_id": 4, "custom_fields": [
            {"id": 10, "value": "{{visitor.phone}}{{^visitor.phone}}none{{/visitor.phone}}"},
            {"id": 11, "value": "{{chatra.client.info.plan}}"}]},
            "task": {"template_id": 12, "closed_status_id": 3,
                     "custom_fields": [{"id": 20, "value": "{{channel.name}}: {{visitor.city}}"}]}})
        task, contact = self.open_chat(L, [msg("l1", "Hi")], name="Maria Lopez", city="Riga",
                                       info={"plan": "Pro & more"})
        self.wait_idle()
        body = self.contact_body()
        self.assertEqual(body["customFieldData"], [{"field": {"id": 10}, "value": "none"},
                                                   {"field": {"id": 11}, "value": "Pro & more"}])
        self.assertEqual(self.pf("/task/", "POST")[0]["body"]["customFieldData"],
                         [{"field": {"id": 20}, "value": "shop: Riga"}])
        # The visitor gives a phone later: the contact (made by the bridge) is updated, fields too.
        self.post(chat_event("chatFragment", L, [msg("l2", "Call me")], name="Maria Lopez", phone="+371 200",
                             city="Riga", info={"plan": "Pro & more"}))
        [update] = self.wait_pf("/contact/%d" % num(contact))
        self.assertEqual(update["body"]["customFieldData"], [{"field": {"id": 10}, "value": "+371 200"},
                                                             {"field": {"id": 11}, "value": "Pro & more"}])


if __name__ == "__main__":
    unittest.main()
