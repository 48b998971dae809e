"""Issue behaviour 5: the first event of a new visitor makes a Planfix contact and a task
from the templates (contact found by e-mail when it exists)."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import WATCHER, chat_event, msg, sample  # noqa: E402
from e2e import TASK_SOURCE_RE, CONTACT_SOURCE_RE, E2ECase, calls, contact_find_body  # noqa: E402

# 2025-11-22 08:26:40 UTC
T0 = 1763800000000


class TestContact(E2ECase):
    def test_new_visitor_with_email_phone_and_name(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello", created_at=T0)],
                             name="Maria  Elena Lopez", email="  Maria.Lopez@Example.ORG ",
                             phone="+34 600 000 000"))
        self.wait_task()
        self.wait_idle()
        self.assertEqual(self.pf_calls(), ["POST /rest/contact/list", "POST /rest/contact/", "POST /rest/task/"])
        find, create, task = self.fakes.planfix_requests()
        self.assertEqual(find["body"], contact_find_body("maria.lopez@example.org"))
        self.assertRegex(create["body"].pop("sourceObjectId"), CONTACT_SOURCE_RE)
        self.assertEqual(create["body"], {"template": {"id": 4}, "name": "Maria", "lastname": "Elena Lopez",
                                          "email": "maria.lopez@example.org",
                                          "phones": [{"number": "+34 600 000 000", "type": 1}]})
        body = dict(task["body"])
        self.assertRegex(body.pop("sourceObjectId"), TASK_SOURCE_RE)
        description = body.pop("description")
        self.assertEqual(body, {"template": {"id": 12}, "name": "Chat with Maria  Elena Lopez (shop)",
                                "assigner": {"id": "contact:1"}, "counterparty": {"id": "contact:1"},
                                "auditors": {"users": [{"id": WATCHER}]}})
        self.assertIn("<b>Name:</b> Maria  Elena Lopez<br>", description)
        self.assertIn('<b>E-mail:</b> <a href="mailto:maria.lopez@example.org">maria.lopez@example.org</a><br>',
                      description)
        self.assertIn("<b>Phone:</b> +34 600 000 000<br>", description)
        for h in (create, task):
            self.assertEqual(h["headers"]["Authorization"], "Bearer " + self.fakes.planfix_token)
        [t] = self.fakes.planfix_tasks()
        self.assertEqual((t["assigner"], t["counterparty"], t["template"]), ("contact:1", "contact:1", 12))

    def test_existing_contact_is_found_by_email_and_not_created(self):
        cid = self.fakes.add_contact(name="Maria", lastname="Lopez", email="maria.lopez@example.org")
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], name="Maria Lopez",
                             email="MARIA.LOPEZ@example.org"))
        self.wait_task()
        self.wait_idle()
        # A contact found (not made) may take part in an active task: looked up first (issue 10).
        self.assertEqual(self.pf_calls(), ["POST /rest/contact/list", "POST /rest/task/list", "POST /rest/task/list",
                                           "POST /rest/task/"])
        self.assertEqual(self.pf("/contact/list")[0]["body"], contact_find_body("maria.lopez@example.org"))
        task = self.pf("/task/")[0]["body"]
        self.assertEqual(task["assigner"], {"id": "contact:%d" % cid})
        self.assertEqual(task["counterparty"], {"id": "contact:%d" % cid})
        self.assertEqual(len(self.fakes.planfix_contacts()), 1)

    def test_visitor_without_name_or_email(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        self.wait_task()
        self.wait_idle()
        self.assertEqual(self.pf_calls(), ["POST /rest/contact/", "POST /rest/task/"])
        self.assertEqual(self.contact_body(), {"template": {"id": 4}, "name": "Chat visitor"})
        self.assertEqual(self.pf("/task/")[0]["body"]["name"], "Chat with a visitor (shop)")

    def test_displayed_name_names_the_contact_when_no_name_is_given(self):
        self.start_bridge()
        self.post(sample("chat-started"))
        self.wait_task()
        self.wait_idle()
        self.assertEqual(self.contact_body(), {"template": {"id": 4}, "name": "Green", "lastname": "Owl"})
        task = self.pf("/task/")[0]["body"]
        self.assertEqual(task["name"], "Chat with a visitor (shop)")
        self.assertIn("Qm7TzR2pLx9VbN4cW", task["description"])


class TestTaskDescription(E2ECase):
    def test_description_shows_what_chatra_sends_about_the_visitor(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Is the kettle <b>blue</b> & big?", created_at=T0)],
                             name="Maria Lopez", email="maria@example.org", phone="+34 600",
                             city="Madrid",
                             pages=["https://shop.example/kettles",
                                    {"url": "https://shop.example/kettles/blue", "title": "Blue kettle"}],
                             referrer="https://www.google.com/", device="desktop", browser="Firefox 120",
                             os="Linux", ip="203.0.113.7", chatId="chat-abc"))
        [task] = self.wait_task()
        d = task["description"]
        for piece in ("<b>Name:</b> Maria Lopez<br>",
                      '<b>E-mail:</b> <a href="mailto:maria@example.org">maria@example.org</a><br>',
                      "<b>Phone:</b> +34 600<br>",
                      "<b>City:</b> Madrid<br>",
                      "<b>Came from:</b> https://www.google.com/<br>",
                      "<b>Device:</b> desktop<br>",
                      "<b>Browser:</b> Firefox 120<br>",
                      "<b>OS:</b> Linux<br>",
                      "<b>IP address:</b> 203.0.113.7<br>",
                      "<b>Page visited:</b> https://shop.example/kettles<br>",
                      "<b>Page visited:</b> Blue kettle &mdash; https://shop.example/kettles/blue<br>",
                      "<b>Channel:</b> shop<br>",
                      "<b>Chatra chat:</b> chat-abc<br>",
                      "<b>Chat started:</b> 2025-11-22 08:26 UTC<br>",
                      "<p><b>Visitor</b> <i>2025-11-22 08:26 UTC</i><br>\n"
                      "Is the kettle &lt;b&gt;blue&lt;/b&gt; &amp; big?</p>"):
            self.assertIn(piece, d)
        self.assertNotIn("<b>blue</b>", d)
        self.assertNotIn("Previous conversation", d)

    def test_other_client_keys_location_city_and_source(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hi")],
                             location={"city": "Berlin"}, source="newsletter"))
        [task] = self.wait_task()
        self.assertIn("<b>City:</b> Berlin<br>", task["description"])
        self.assertIn("<b>Came from:</b> newsletter<br>", task["description"])
        # What Chatra did not send is not shown.
        for label in ("<b>Name:</b>", "<b>E-mail:</b>", "<b>Phone:</b>", "<b>Device:</b>", "<b>Browser:</b>",
                      "<b>OS:</b>", "<b>IP address:</b>", "<b>Page visited:</b>"):
            self.assertNotIn(label, task["description"])

    def test_visitor_values_are_html_escaped(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hi")],
                             name='<script>alert("x")</script>', city="A&B"))
        [task] = self.wait_task()
        self.assertNotIn("<script>", task["description"])
        self.assertIn("<b>Name:</b> &lt;script&gt;", task["description"])
        self.assertIn("<b>City:</b> A&amp;B<br>", task["description"])
        # The title is plain text.
        self.assertEqual(task["name"], 'Chat with <script>alert("x")</script> (shop)')

    def test_messages_known_at_creation_are_in_the_description_not_comments(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [
            msg("m1", "First question", created_at=T0),
            msg("m2", "Hi, Anna here", type="agent", agent_id="bnRzp4CioKudG4aHm", created_at=T0 + 60000),
            msg("m3", "", created_at=T0 + 61000),
            msg("m4", "joined", type="system", created_at=T0 + 62000),
            msg("m5", "Second question,\non two <lines>", created_at=T0 + 120000),
        ], name="Maria Lopez"))
        [task] = self.wait_task()
        d = task["description"]
        first = d.index("<p><b>Visitor</b> <i>2025-11-22 08:26 UTC</i><br>\nFirst question</p>")
        agent = d.index("<p><b>Anna Smirnova</b> <i>2025-11-22 08:27 UTC</i><br>\nHi, Anna here</p>")
        second = d.index("<p><b>Visitor</b> <i>2025-11-22 08:28 UTC</i><br>\n"
                         "Second question,<br>on two &lt;lines&gt;</p>")
        self.assertLess(first, agent)
        self.assertLess(agent, second)
        self.assertNotIn("joined", d)
        self.assertEqual(d.count("<p><b>"), 3)
        self.assert_quiet()
        self.assertEqual(self.pf_calls(), ["POST /rest/contact/", "POST /rest/task/"])
        self.assertEqual(self.fakes.planfix_comments(), [])

    def test_no_watchers_means_no_auditors(self):
        self.start_bridge(channel={"watchers": []})
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hi")]))
        self.wait_task()
        self.assertNotIn("auditors", self.pf("/task/")[0]["body"])


class TestSamePersonSecondDevice(E2ECase):
    def test_same_email_on_a_new_client_id_joins_the_conversation(self):
        self.start_bridge()
        task, contact = self.open_chat("phone-1", email="maria@example.org", name="Maria Lopez")
        self.wait_idle()
        before = len(self.fakes.planfix_requests())
        self.post(chat_event("chatStarted", "laptop-2", [msg("l1", "Me again, from my laptop")],
                             email="Maria@Example.org", name="Maria Lopez"))
        post, note = self.wait_comment_posts(task, 2)
        self.assertEqual(post["body"]["owner"], {"id": contact})
        self.assertEqual(post["body"]["description"], "Me again, from my laptop")
        # The employees are told that a device joined, and on what it was matched.
        self.assertNotIn("owner", note["body"])
        self.assertIn("A new device joined this conversation", note["body"]["description"])
        self.assertIn("unverified e-mail maria@example.org", note["body"]["description"])
        self.assert_quiet()
        # Is the task still active (README: asked when a new device joins)?  Then the message, the
        # note, and the visit on the contact's card (issue 10).
        self.assertEqual(calls(self.fakes.planfix_requests()[before:]),
                         ["GET /rest/task/%d" % task] + ["POST /rest/task/%d/comments/" % task] * 2
                         + ["POST /rest/contact/%s/comments/" % contact.split(":")[1]])
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(len(self.fakes.planfix_contacts()), 1)

    def test_a_different_email_is_a_different_visitor(self):
        self.start_bridge()
        self.open_chat("phone-1", email="maria@example.org")
        self.open_chat("laptop-2", email="other@example.org")
        self.wait_idle()
        self.assertEqual(len(self.fakes.planfix_tasks()), 2)
        self.assertEqual(len(self.fakes.planfix_contacts()), 2)


if __name__ == "__main__":
    unittest.main()
