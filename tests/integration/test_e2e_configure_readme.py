"""The README's Configure, Templates, The bridge's own words and Behind a reverse proxy, claim
by claim, with the admin's variations: custom templates and texts, each language, both trackers
where the claim is about them.  Each test quotes the README line it checks."""

import json
import os
import re
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import TEST_ENV, chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

AT = 1764669600000            # 2025-12-02 10:00:00 UTC = 13:00 in Moscow
HOSTILE = "<b>A&B</b> \"q\" 'x'"
HOSTILE_HTML = "&lt;b&gt;A&amp;B&lt;/b&gt; &quot;q&quot; &#39;x&#39;"


class TestTemplates(E2ECase):
    # README: "`{{x}}` (escaped: HTML for Planfix, ...), `{{{x}}}` (raw), `{{#list}}...{{/list}}`,
    # `{{^x}}...{{/x}}` (when empty), dotted paths."
    # README: "The title is plain text, not escaped"
    def test_variables_escaping_and_conditionals_in_planfix(self):
        desc = ("[{{visitor.name}}|{{{visitor.name}}}|{{visitor.displayed_name}}|{{visitor.info.plan}}|"
                "{{chatra.client.customKey}}|{{chat.id}}|{{chat.started_at}}|{{channel.name}}|{{contact.id}}|"
                "{{visitor.city}}|{{visitor.country}}|{{visitor.browser}}|{{visitor.os}}|{{visitor.ip}}|"
                "{{visitor.source}}|{{visitor.device}}|{{visitor.notes}}|{{visitor.email}}]"
                "{{^visitor.phone}}(no phone){{/visitor.phone}}{{#visitor.phone}}(phone){{/visitor.phone}}"
                "{{#visitor.pages}}<a>{{url}} {{title}}</a>{{/visitor.pages}}"
                "{{#chat.messages}}<p>{{author}} {{time}} / {{date}} / {{clock}} / {{type}}"
                "{{#is_visitor}} V{{/is_visitor}}{{#is_agent}} A:{{agent.id}}:{{agent.name}}{{/is_agent}}: "
                "{{{text_html}}}</p>{{/chat.messages}}")
        self.start_bridge(channel={"task": {"title": "T {{visitor.name}} {{^visitor.email}}no mail{{/visitor.email}}",
                                            "description": desc,
                                            "custom_fields": [{"id": 3, "value": "{{visitor.name}}"}]},
                                   "contact": {"template_id": 4,
                                               "custom_fields": [{"id": 9, "value": "{{visitor.city}}"}]}})
        task, contact = self.open_chat(
            "t-1", [msg("t-1-m1", "Is it <b>blue</b> & big?\nline 2", created_at=AT),
                    msg("t-1-a1", "Yes", type="agent", agent_id="bnRzp4CioKudG4aHm", created_at=AT + 60000)],
            name=HOSTILE, displayedName="Green & Owl", info={"plan": "<trial>"}, customKey="K&1",
            city="A&B", country="NL", browser="Firefox", os="Linux", ip="192.0.2.1",
            referrer="https://ref.example/?a=1&b=2", device="desktop", notes="vip <3",
            pages=[{"url": "https://shop.example/k?x=1&y=2", "title": "Kettles <new>"}])
        self.wait_idle()
        t = self.fakes.planfix_task(task)
        self.assertEqual(t["name"], "T %s no mail" % HOSTILE)
        d = t["description"]
        contact_id = contact.split(":")[1] if ":" in str(contact) else str(contact)
        self.assertIn("[%s|%s|Green &amp; Owl|&lt;trial&gt;|K&amp;1|chat-t-1|2025-12-02 10:00 UTC|shop|%s|"
                      "A&amp;B|NL|Firefox|Linux|192.0.2.1|https://ref.example/?a=1&amp;b=2|desktop|vip &lt;3|]"
                      % (HOSTILE_HTML, HOSTILE, contact_id), d)
        self.assertIn("(no phone)", d)
        self.assertNotIn("(phone)", d)
        self.assertIn("<a>https://shop.example/k?x=1&amp;y=2 Kettles &lt;new&gt;</a>", d)
        self.assertIn("<p>Visitor 2025-12-02 10:00 UTC / 2025-12-02 / 10:00:00 / client V: "
                      "Is it &lt;b&gt;blue&lt;/b&gt; &amp; big?<br>line 2</p>", d)
        self.assertIn("<p>Anna Smirnova 2025-12-02 10:01 UTC / 2025-12-02 / 10:01:00 / agent "
                      "A:bnRzp4CioKudG4aHm:Anna Smirnova: Yes</p>", d)
        # Custom fields are plain values, as the title: the tracker stores them as given.
        self.assertEqual(self.pf("/task/")[0]["body"]["customFieldData"], [{"field": {"id": 3}, "value": HOSTILE}])
        self.assertEqual(self.contact_body()["customFieldData"], [{"field": {"id": 9}, "value": "A&B"}])

    # README: "a title that renders empty (or a text too long to render) falls back to `fallback_title`"
    # README (texts): "`fallback_title`, `fallback_description` | when the task's own templates cannot render"
    def fallback_task(self, language, override, title, description=None, messages=None):
        texts = {"fallback_title": "FT {{channel.name}}", "fallback_description": "<p>FD {{visitor.name}}</p>"} \
            if override else {}
        task_cfg = {"title": title}
        if description:
            task_cfg["description"] = description
        self.start_bridge(language=language, texts=texts, channel={"task": task_cfg})
        task, _ = self.open_chat("fb-1", messages, name="Ann & Co" if messages else None)
        self.wait_idle()
        return task, self.fakes.planfix_task(task)

    def test_an_empty_title_falls_back_to_the_english_default(self):
        _, t = self.fallback_task("en", False, " {{visitor.email}} \n")
        self.assertEqual(t["name"], "Chat (shop)")

    def test_an_empty_title_falls_back_to_the_russian_default(self):
        _, t = self.fallback_task("ru", False, "{{visitor.email}}")
        self.assertEqual(t["name"], "Чат (shop)")

    def test_an_empty_title_falls_back_to_the_admins_text(self):
        _, t = self.fallback_task("en", True, "{{visitor.email}}")
        self.assertEqual(t["name"], "FT shop")

    def too_long(self, language, override, title, desc):
        # Five messages of 60,000 characters (a message holds at most 64 KiB): more than a title or
        # a description takes.
        long_text = "x" * 60000
        task, t = self.fallback_task(language, override, "{{visitor.name}}{{#chat.messages}}{{text}}{{/chat.messages}}",
                                     "<p>{{#chat.messages}}{{{text_html}}}{{/chat.messages}}</p>",
                                     [msg("fb-1-m%d" % i, long_text + str(i)) for i in range(5)])
        self.assertEqual(t["name"], title)
        self.assertEqual(t["description"], desc)
        # README: "Every message arrives, whatever the template says": the messages the
        # description could not carry come as comments.
        wait_until(lambda: sum(long_text in c["description"] for c in self.fakes.planfix_comments(task)) == 5)

    def test_a_title_and_description_too_long_fall_back_to_the_defaults(self):
        self.too_long("en", False, "Chat (shop)", "The chat details were too long to show here.")

    def test_a_title_and_description_too_long_fall_back_to_the_admins_texts_in_russian(self):
        self.too_long("ru", True, "FT shop", "<p>FD Ann &amp; Co</p>")


OVERRIDES = {
    "messages": "M[{{visitor.name}}]{{#messages}}({{author}}:{{text}}){{/messages}}",
    "agent_message": "AM[{{visitor.name}}|{{agent.name}}|{{agent.id}}|{{text}}|{{clock}}]",
    "new_visit": "NV[{{visitor.name}}|{{device.browser}}|{{chat.id}}]",
    "device_joined": "DJ[{{visitor.name}}|{{device.os}}|{{email}}|{{#verified}}v{{/verified}}]",
    "continues_in": "CI[{{visitor.name}}|{{task.id}}|{{email}}]",
    "previous_task": "PT[{{visitor.name}}|{{previous_task.id}}]",
    "contact_visit": "CV[{{visitor.name}}|{{device.browser}}|{{chat.id}}|{{task.id}}]",
    "visitor_label": "VL {{visitor.name}}",
    "agent_label": "AL {{agent.id}} {{visitor.name}}",
    "contact_name": "CN {{channel.name}} <x>",
}


class TestOwnWords(E2ECase):
    # README: "Replace any of them with `"texts": {"<name>": "<template>"}` or
    # `"texts": {"<name>_file": "path"}` (relative to the config file); the others keep the
    # language's default."  Each rich text escapes what a visitor wrote (`{{x}}`: HTML for
    # Planfix); the labels and names are plain text (`.txt`), escaped where a rich text shows them.
    def test_every_planfix_text_replaced_and_escaped(self):
        os.makedirs(os.path.join(self.bridge.tmpdir, "texts"))
        with open(os.path.join(self.bridge.tmpdir, "texts", "pt.html"), "w") as f:
            f.write(OVERRIDES["previous_task"] + "\n")
        texts = dict(OVERRIDES)
        del texts["previous_task"]
        texts["previous_task_file"] = "texts/pt.html"
        self.start_bridge(texts=texts, tracker={"coalesce_ms": 0},
                          channel={"task": {"description": "<p>{{#chat.messages}}{{author}}: {{text}};"
                                                           "{{/chat.messages}}</p>"}})
        name = HOSTILE
        # No name: the contact gets the contact_name text.
        task, contact = self.open_chat("ow-1", [msg("ow-1-m1", "Hi <1>", created_at=AT),
                                                msg("ow-1-a1", "Agent <2>", type="agent", agent_id="stranger",
                                                    created_at=AT + 1000)], email="pia@example.org")
        self.assertEqual(self.contact_body()["name"], "CN shop <x>")
        # The labels, in the description: escaped there (the visitor has no name yet).
        self.assertEqual(self.fakes.planfix_task(task)["description"],
                         "<p>VL: Hi &lt;1&gt;;AL stranger: Agent &lt;2&gt;;</p>")
        self.wait_idle()
        self.post(chat_event("chatFragment", "ow-1", [msg("ow-1-m2", "More & more", created_at=AT + 2000),
                                                      msg("ow-1-a2", "Answer <3>", type="agent", agent_id="stranger",
                                                          created_at=AT + 3000)],
                             name=name, email="pia@example.org"))
        self.wait_comment_posts(task, 2)
        self.wait_idle()
        # A new visit of the same device (and a visit on the contact's card).
        self.post(chat_event("chatStarted", "ow-1", [msg("ow-1-m3", "Back", created_at=AT + 4000)],
                             name=name, email="pia@example.org", chatId="chat-2", browser="Fire<fox>"))
        # Another device with the same e-mail joins.
        self.post(chat_event("chatStarted", "ow-2", [msg("ow-2-m1", "Phone", created_at=AT + 5000)],
                             name=name, email="pia@example.org", os="i<OS>"))
        wait_until(lambda: any(c["description"].startswith("DJ[") for c in self.fakes.planfix_comments(task)),
                   message=lambda: self.fakes.planfix_comments(task))
        self.wait_idle()
        comments = [c["description"] for c in self.fakes.planfix_comments(task)]

        e = HOSTILE_HTML
        self.assertIn("M[%s](VL %s:More &amp; more)" % (e, e), comments)
        self.assertIn("AM[%s|AL stranger %s|stranger|Answer &lt;3&gt;|10:00:03]" % (e, e), comments)
        self.assertIn("NV[%s|Fire&lt;fox&gt;|chat-2]" % e, comments)
        self.assertIn("DJ[%s|i&lt;OS&gt;|pia@example.org|]" % e, comments)
        visits = [v["description"] for v in self.fakes.planfix_contact_comments()]
        self.assertIn("CV[%s|Fire&lt;fox&gt;|chat-2|%d]" % (e, task), visits)
        # A new task after the first was completed: previous_task, from its file.
        self.fakes.set_task_status(task, 3)
        self.post(chat_event("chatStarted", "ow-1", [msg("ow-1-m4", "Again", created_at=AT + 6000)],
                             name=name, email="pia@example.org", chatId="chat-3"))
        second = self.wait_task(2)[1]["id"]
        wait_until(lambda: "PT[%s|%d]" % (e, task) in [c["description"] for c in self.fakes.planfix_comments(second)],
                   message=lambda: self.fakes.planfix_comments(second))
        # A tablet without an e-mail, then with it: its task says where the thread continues.
        tablet, _ = self.open_chat("ow-3", [msg("ow-3-m1", "Tablet")])
        self.post(chat_event("chatFragment", "ow-3", [msg("ow-3-m2", "Me too")], name=name, email="pia@example.org"))
        wait_until(lambda: any(c["description"].startswith("CI[") for c in self.fakes.planfix_comments(tablet)),
                   message=lambda: self.fakes.planfix_comments(tablet))
        self.wait_idle()
        self.assertIn("CI[%s|%d|pia@example.org]" % (e, second),
                      [c["description"] for c in self.fakes.planfix_comments(tablet)])


if __name__ == "__main__":
    unittest.main()
