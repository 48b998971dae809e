"""The README's Configure, Templates, The bridge's own words and Behind a reverse proxy, claim
by claim, with the admin's variations: custom templates and texts, each language, both trackers
where the claim is about them.  Each test quotes the README line it checks."""

import json
import os
import re
import shutil
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import SOURCE_DIR, chat_event, default_config, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402
from admin import ADMIN_TOKEN, AdminCase  # noqa: E402
from ws_client import Refused, WebSocket  # noqa: E402
from test_e2e_redmine import POLL_WAIT, RedmineCase  # noqa: E402

AT = 1764669600000            # 2025-12-02 10:00:00 UTC = 13:00 in Moscow
HOSTILE = "<b>A&B</b> \"q\" 'x'"
HOSTILE_HTML = "&lt;b&gt;A&amp;B&lt;/b&gt; &quot;q&quot; &#39;x&#39;"


class TestCheckConfigMessages(E2ECase):
    # README: "`chatra-bridge check-config --config FILE` checks it ... and prints every problem at
    # once, with ... the key path (`channels[0].task.closed_status_id`) for everything else."
    # Each setting's bounds and values, as the settings table gives them; exit code 1.
    MISTAKES = [
        ({"listen": {"port": 70000}}, "listen.port: must be between 0 and 65535"),
        ({"listen": {"hots": "x"}}, "listen.hots: unknown setting"),
        ({"log": {"level": "verbose"}}, "log.level: must be one of debug, info, warn, error"),
        ({"log": {"format": "xml"}}, 'log.format: must be "text" or "json"'),
        ({"language": "de"}, 'language: "de" is not supported (supported: en, ru)'),
        ({"timezone": "Mars/Base"}, 'timezone: "Mars/Base" is not a time zone this machine knows'),
        ({"limits": {"max_body_bytes": 10}}, "limits.max_body_bytes: must be between 1024 and 67108864"),
        ({"limits": {"per_address_rps": -1}}, "limits.per_address_rps: must be between 0 and 1000000"),
        ({"limits": {"bad_secrets_per_minute": "a"}}, "limits.bad_secrets_per_minute: must be a number"),
        ({"metrics": {"token": "short"}}, "metrics.token: must be at least 16 characters long"),
        ({"metrics": {"token": "abcdefghijklmnop qr"}},
         "metrics.token: may contain only letters, digits and - . _ ~ + / ="),
        ({"tracker": {"kind": "jira"}}, 'tracker.kind: "jira" is not supported (supported: planfix, redmine)'),
        ({"tracker": {"url": "ftp://x"}}, "tracker.url: must start with http:// or https://"),
        ({"tracker": {"closed_status_id": 0}}, "tracker.closed_status_id: must be 1 or more"),
        ({"tracker": {"requests_per_second": 0}}, "tracker.requests_per_second: must be between 0.01 and 1000"),
        ({"tracker": {"daily_quota": 10000001}}, "tracker.daily_quota: must be between 0 and 10000000"),
        ({"tracker": {"coalesce_ms": 5000, "coalesce_max_s": 2}},
         "tracker.coalesce_max_s: is 2 s, shorter than coalesce_ms (5000 ms): set 0 (never wider) or at least 5"),
        ({"tracker": {"webhook_secret": "short"}}, "tracker.webhook_secret: must be at least 16 characters long"),
        ({"tracker": {"api_key": "x"}}, 'tracker.api_key: is a Redmine setting (tracker.kind is "planfix")'),
        ({"admin": {"token": "short"}}, "admin.token: must be at least 16 characters long"),
        ({"admin": {"session_ttl_s": 59}}, "admin.session_ttl_s: must be between 60 and 2592000"),
        ({"texts": {"nonsense": "x"}}, "texts.nonsense: unknown text"),
        ({"texts": {"new_visit": "{{#x}}"}}, "texts.new_visit:1:1: section '{{#x}}' is never closed"),
        ({"texts": {"new_visit": "{{nope}}"}}, 'texts.new_visit:1:1: unknown template variable "nope"'),
        ({"channel": {"task": {"closed_status_id": 0}}}, "channels[0].task.closed_status_id: "),
        ({"channel": {"mirror_agent_messages": "maybe"}},
         'channels[0].mirror_agent_messages: must be "comment", "with_visitor" or "off"'),
        ({"channel": {"merge_policy": "sometimes"}}, 'channels[0].merge_policy: must be "email", "verified" or "off"'),
        ({"channel": {"task": {"title": "{{visitor.nmae}}"}}},
         'channels[0].task.title:1:1: unknown template variable "visitor.nmae"'),
        ({"listen": {"trusted_proxies": ["env:BR_T_UNSET"]}},
         "listen.trusted_proxies[0]: environment variable BR_T_UNSET is not set"),
    ]

    def test_each_mistake_is_named_with_its_key_path(self):
        for overrides, expected in self.MISTAKES:
            with self.subTest(overrides=overrides):
                self.bridge.config = self.config = default_config(self.fakes, **overrides)
                path = self.bridge.write_config()
                r = self.bridge.run("check-config", "--config", path)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertEqual(r.stdout, "")
                lines = r.stderr.splitlines()
                self.assertEqual(lines[-1], "1 problem in %s" % path, r.stderr)
                self.assertTrue(lines[0].startswith("%s: %s" % (path, expected)), r.stderr)


class TestReferences(E2ECase):
    # README: "A string value `"env:NAME"` is read from the environment variable NAME,
    # `"file:PATH"` from a file (relative to the config file); anything else is literal."
    # Every string value: also a list's items and a template.
    def test_every_string_value_may_be_a_reference(self):
        with open(os.path.join(self.bridge.tmpdir, "proxy.txt"), "w") as f:
            f.write("127.0.0.1\n")
        with open(os.path.join(self.bridge.tmpdir, "description.html"), "w") as f:
            f.write("<p>From a file named by env: {{#chat.messages}}{{text}}{{/chat.messages}}</p>")
        self.bridge.env.update({"BR_T_TITLE": "Env title {{visitor.name}}", "BR_T_WATCHER": "user:7",
                                "BR_T_EMPLOYEE": "anna@example.com", "BR_T_FIELD": "{{visitor.email}}",
                                "BR_T_DESC_FILE": "description.html", "BR_T_DOMAIN": "example.org"})
        self.start_bridge(listen={"trusted_proxies": ["file:proxy.txt"]},
                          limits={"per_address_rps": 0.001, "per_address_burst": 2},
                          companies={"enabled": True, "template_id": 5, "public_domains": ["env:BR_T_DOMAIN"]},
                          channel={"employees": ["env:BR_T_EMPLOYEE"], "watchers": ["env:BR_T_WATCHER"],
                                   "task": {"title": "env:BR_T_TITLE", "description_file": "env:BR_T_DESC_FILE",
                                            "custom_fields": [{"id": 3, "value": "env:BR_T_FIELD"}]}})
        task, _ = self.open_chat("ref-1", [msg("ref-1-m1", "Hello")], name="Ola", email="ola@example.org")
        self.wait_idle()
        body = self.pf("/task/")[0]["body"]
        self.assertEqual(body["name"], "Env title Ola")
        self.assertEqual(body["description"], "<p>From a file named by env: Hello</p>")
        self.assertEqual(body["customFieldData"], [{"field": {"id": 3}, "value": "ola@example.org"}])
        self.assertEqual(body["auditors"], {"users": [{"id": "user:7"}]})
        # example.org is a public domain here: no company contact.
        self.assertEqual(len(self.fakes.planfix_contacts()), 1, self.fakes.planfix_contacts())
        # The proxy from the file: X-Forwarded-For is believed.
        self.assertEqual([self.bridge.post("/webhooks/chatra/nochannel/x", {}, {"X-Forwarded-For": a}).status
                          for a in ("203.0.113.1", "203.0.113.2", "203.0.113.1", "203.0.113.1")], [404, 404, 404, 429])
        # Anna's comment reaches the chat: she is the channel's employee, named by env:.
        self.fakes.employee_comment(task, owner="user:5", name="Anna", text="Hi Ola")
        self.bridge.post_planfix(task)
        self.wait_chatra()


class TestExampleConfigs(E2ECase):
    # README: "`scripts/run` ... on config/bridge.example.json"; "`chatra-bridge check-config
    # --config FILE` checks it (templates included) and prints every problem at once"; "The
    # daemon refuses to start ... on the same problems".
    SECRETS = {"PLANFIX_TOKEN": "demo-planfix-token", "PLANFIX_WEBHOOK_SECRET": "demo-planfix-webhook-secret",
               "CHATRA_SHOP_WEBHOOK_SECRET": "demo-shop-webhook-secret",
               "CHATRA_SHOP_PUBLIC_KEY": "demo-chatra-public-key", "CHATRA_SHOP_SECRET_KEY": "demo-chatra-secret-key",
               "REDMINE_API_KEY": "demo-redmine-api-key"}

    def check(self, name, env):
        path = os.path.join(SOURCE_DIR, "config", name)
        self.bridge.env = dict(env)
        return path, self.bridge.run("check-config", "--config", path)

    def test_the_examples_pass_with_their_secrets_and_name_each_missing_one(self):
        for name, needs in (("bridge.example.json", ["PLANFIX_TOKEN", "PLANFIX_WEBHOOK_SECRET",
                                                     "CHATRA_SHOP_WEBHOOK_SECRET", "CHATRA_SHOP_PUBLIC_KEY",
                                                     "CHATRA_SHOP_SECRET_KEY"]),
                            ("bridge.redmine.example.json", ["REDMINE_API_KEY", "CHATRA_SHOP_WEBHOOK_SECRET",
                                                             "CHATRA_SHOP_PUBLIC_KEY", "CHATRA_SHOP_SECRET_KEY"])):
            with self.subTest(name=name):
                path, r = self.check(name, self.SECRETS)
                self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "%s: OK\n" % path, ""))
                path, r = self.check(name, {})
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                lines = r.stderr.splitlines()
                self.assertEqual(lines[-1], "%d problems in %s" % (len(needs), path))
                for var in needs:
                    self.assertEqual(len([l for l in lines if l.endswith("environment variable %s is not set" % var)]),
                                     1, r.stderr)


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
            city="A&B", country="NL", browser="Firefox", os="Linux", ip="192.0.2.1", phone="",
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

    # README: "`chatra.profile`: the visitor as Chatra's `GET /clients/{id}` returned it (fetched beside
    # the contact lookup on a visitor's first chat; missing when it failed)"; "`chatra.client`: the
    # raw client object of the latest webhook (any key)"
    def test_the_chatra_profile_and_client(self):
        self.start_bridge(channel={"task": {
            "title": "{{chatra.profile.plan}}{{^chatra.profile}}no profile{{/chatra.profile}}",
            "description": "<p>{{chatra.profile.notes}} {{chatra.client.shop.cart}} "
                           "{{#chat.messages}}{{text}}{{/chat.messages}}</p>"}})
        self.fakes.set_chatra_client("pr-1", {"id": "pr-1", "plan": "Gold & more", "notes": "<vip>"})
        task, _ = self.open_chat("pr-1", [msg("pr-1-m1", "Hi")], shop={"cart": "2 < 3"})
        # Without a profile (Chatra answered 404): the section for a missing one shows.
        other, _ = self.open_chat("pr-2", [msg("pr-2-m1", "Hey")])
        self.wait_idle()
        t = self.fakes.planfix_task(task)
        self.assertEqual(t["name"], "Gold & more")
        self.assertEqual(t["description"], "<p>&lt;vip&gt; 2 &lt; 3 Hi</p>")
        self.assertEqual(self.fakes.planfix_task(other)["name"], "no profile")

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


class TestRussianDefaults(E2ECase):
    # README: "from `templates/en/` or `templates/ru/` by `language`": the visit on the contact's
    # card and the previous task's link, in Russian, what the visitor sent escaped.
    def test_contact_visit_and_previous_task_in_russian(self):
        self.start_bridge(language="ru", timezone="Europe/Moscow",
                          channel={"task": {"description": "<p>{{#chat.messages}}{{text}}{{/chat.messages}}</p>"}})
        first, _ = self.open_chat("ru-v", [msg("ru-v1", "Первый", created_at=AT)], name="Мария", chatId="chat-1")
        self.wait_idle()
        self.post(chat_event("chatStarted", "ru-v", [msg("ru-v2", "Снова", created_at=AT + 1000)], name="Мария",
                             chatId="chat-2", browser="Fire<fox>", city="Москва",
                             pages=[{"url": "https://shop.example/?a=1&b=2", "title": "Чайники <новые>"}]))
        visits = wait_until(lambda: self.fakes.planfix_contact_comments(), message="no visit on the card")
        self.wait_idle()
        self.assertEqual([v["description"] for v in self.fakes.planfix_contact_comments()],
                         ["<b>Визит</b> (shop): браузер Fire&lt;fox&gt;, город Москва.\n"
                          "<br>Страница: Чайники &lt;новые&gt; &mdash; https://shop.example/?a=1&amp;b=2\n"
                          "<br>Задача #%d" % first])
        self.assertTrue(visits)
        self.fakes.set_task_status(first, 3)
        self.post(chat_event("chatStarted", "ru-v", [msg("ru-v3", "Опять", created_at=AT + 2000)], name="Мария",
                             chatId="chat-3"))
        second = self.wait_task(2)[1]["id"]
        wait_until(lambda: "<b>Предыдущий разговор:</b> задача #%d" % first
                   in [c["description"] for c in self.fakes.planfix_comments(second)],
                   message=lambda: self.fakes.planfix_comments(second))


REFUSED = re.compile(r"request from (\S+) refused: (\d+) ([^\n]*)")


class TestAdminBehindProxy(AdminCase):
    """README (The admin page, Through nginx): `proxy_set_header Host $host;`,
    `X-Forwarded-For $remote_addr`, `X-Forwarded-Proto $scheme;   # the cookie gets Secure over
    HTTPS`, "with `listen.trusted_proxies` set to nginx's address, so that wrong tokens are counted
    per visitor"; "a browser's `Origin` must be the page's own"."""

    PROXIED = {"Host": "bridge.example.com", "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}

    def refused(self):
        return [m.groups() for m in REFUSED.finditer(self.bridge.log())]

    def ws(self, headers):
        ws = WebSocket(self.bridge.port, "/admin/ws", headers, "br-admin")
        self.addCleanup(ws.close)
        return ws

    def test_the_page_through_a_trusted_proxy(self):
        self.start_admin(listen={"trusted_proxies": ["127.0.0.1"]}, limits={"bad_secrets_per_minute": 2})
        r = self.bridge.post("/admin/login", {"token": ADMIN_TOKEN}, self.PROXIED)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.headers["Set-Cookie"].endswith("; Secure"), r.headers)
        # README: "`admin.session_ttl_s` | how long a login to the admin page lasts (default 43200: 12 hours ...)"
        self.assertIn("; Max-Age=43200;", r.headers["Set-Cookie"])
        cookie = {"Cookie": r.headers["Set-Cookie"].split(";")[0]}
        # The WebSocket from the page's own origin, as the proxy passes it on, is let in.
        ws = self.ws(dict(self.PROXIED, Origin="https://bridge.example.com", **cookie))
        self.assertEqual(ws.protocol, "br-admin")
        # Another site's page is refused, and the log names the visitor, not the proxy.
        with self.assertRaises(Refused):
            self.ws(dict(self.PROXIED, Origin="https://evil.example", **cookie))
        wait_until(lambda: any(a == "203.0.113.7" and s == "403" and "another origin" in d
                               for a, s, d in self.refused()), message=lambda: self.refused())
        # Wrong tokens are counted per visitor behind the proxy.
        def wrong(client):
            return self.bridge.post("/admin/login", {"token": "wrong-token-000000"},
                                    dict(self.PROXIED, **{"X-Forwarded-For": client})).status
        self.assertEqual([wrong("198.51.100.1") for _ in range(3)], [401, 401, 429])
        self.assertEqual(wrong("198.51.100.2"), 401)
        wait_until(lambda: ("198.51.100.1", "429") in [(a, s) for a, s, _ in self.refused()],
                   message=lambda: self.refused())
        self.assertNotIn("127.0.0.1", [a for a, _, _ in self.refused()])

    def test_an_untrusted_peer_cannot_claim_https_or_another_address(self):
        # README: "from any other address the headers are ignored"
        self.start_admin(limits={"bad_secrets_per_minute": 2})
        r = self.bridge.post("/admin/login", {"token": ADMIN_TOKEN}, self.PROXIED)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.headers["Set-Cookie"].endswith("; SameSite=Strict"), r.headers)
        statuses = [self.bridge.post("/admin/login", {"token": "wrong-token-000000"},
                                     {"X-Forwarded-For": "198.51.100.%d" % i}).status for i in range(3)]
        self.assertEqual(statuses, [401, 401, 429])
        wait_until(lambda: ("127.0.0.1", "429") in [(a, s) for a, s, _ in self.refused()],
                   message=lambda: self.refused())


class TestTemplatesDir(E2ECase):
    # README: "`templates_dir` | the directory of the default templates (`<language>/<name>`),
    # relative to the config file (default: the install's `share/chatra-bridge/templates`, ...,
    # or `BR_TEMPLATES_DIR` from the environment ...)"
    def own_templates(self, name):
        d = os.path.join(self.bridge.tmpdir, name)
        shutil.copytree(os.path.join(SOURCE_DIR, "templates", "en"), os.path.join(d, "en"))
        shutil.copytree(os.path.join(SOURCE_DIR, "templates", "ru"), os.path.join(d, "ru"))
        with open(os.path.join(d, "ru", "task_title.txt"), "w") as f:
            f.write("{{! mine }}\nМой чат: {{visitor.name}}\n")
        with open(os.path.join(d, "ru", "visitor_label.txt"), "w") as f:
            f.write("Гость {{visitor.name}}\n")
        return d

    def check(self, description):
        task, _ = self.open_chat("td-1", [msg("td-1-m1", "Привет", created_at=AT)], name="Ира")
        self.wait_idle()
        t = self.fakes.planfix_task(task)
        self.assertEqual(t["name"], "Мой чат: Ира")
        self.assertIn(description, t["description"])

    def test_a_relative_templates_dir(self):
        self.own_templates("mine")
        self.start_bridge(language="ru", templates_dir="mine")
        self.check("<b>Гость Ира</b>")

    def test_br_templates_dir_from_the_environment(self):
        self.bridge.env["BR_TEMPLATES_DIR"] = self.own_templates("elsewhere")
        self.start_bridge(language="ru")
        self.check("<b>Гость Ира</b>")

    def test_a_templates_dir_without_a_file_is_named(self):
        d = self.own_templates("broken")
        os.remove(os.path.join(d, "ru", "new_visit.html"))
        self.config["language"] = "ru"
        self.config["templates_dir"] = "broken"
        r = self.bridge.run("check-config", "--config", self.bridge.write_config())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("ru/new_visit.html", r.stderr)


class TestDefaultLimits(E2ECase):
    # README: "`limits.max_body_bytes` | largest webhook body accepted (default 1 MiB; larger gets 413)"
    # README: "`limits.per_address_rps`, `limits.per_address_burst` | ... (default: no limit; over it: 429)"
    # README: "`limits.bad_secrets_per_minute` | wrong webhook secrets ... before 429 (default 20)"
    def test_the_defaults(self):
        self.start_bridge()
        over = json.dumps(chat_event("chatStarted", "big", [msg("big-1", "x" * (1024 * 1024))]))
        self.assertEqual(self.bridge.post_chatra(over).status, 413)
        # Just under 1 MiB: taken (the text itself is refused as too long, 400, not 413).
        under = json.dumps(chat_event("chatStarted", "big", [msg("big-1", "x" * (1024 * 1024 - 300))]))
        self.assertLessEqual(len(under), 1024 * 1024)
        self.assertEqual(self.bridge.post_chatra(under).status, 400)
        # No per-address limit: many requests from one address all get their answer.
        self.assertEqual({self.bridge.post("/webhooks/chatra/nochannel/x", {}).status for _ in range(60)}, {404})
        wrong = [self.bridge.post_chatra({}, secret="wrong-secret-0000000").status for _ in range(21)]
        self.assertEqual(wrong, [401] * 20 + [429])


class TestRedmineOwnWords(RedmineCase):
    # README: "`{{x}}` (escaped: HTML for Planfix, kept literal in Textile for Redmine)"; the
    # bridge's own words "in the tracker's text format (... `.textile` for Redmine ...)";
    # `visitor_details` | "Redmine: the visitor gave a new name, e-mail or phone" | `details`.
    def test_visitor_details_and_messages_replaced_in_textile(self):
        self.config["texts"] = {"visitor_details": "VD {{visitor.name}}: {{details.name}} / {{details.email}}",
                                "messages": "MS {{#messages}}{{text}}{{/messages}}"}
        self.config["language"] = "ru"
        self.start(task={"title": "Subject {{visitor.name}}"}, tracker={"coalesce_ms": 0})
        client = "rm-own"
        issue = self.open_chat(client, "Hi *there*", name="Ann")
        n = issue["id"]
        self.assertEqual(issue["subject"], "Subject Ann")
        self.say(client, client + "-m2", "Now *bold* _x_", name="*Ann* <b>", email="ann@example.org")
        wait_until(lambda: any(t.startswith("VD ") for _, t in self.notes(n)) and
                   any(t.startswith("MS ") for _, t in self.notes(n)), POLL_WAIT,
                   message=lambda: self.notes(n))
        notes = [t for _, t in self.notes(n)]
        self.assertIn("MS <notextile>Now *bold* _x_</notextile>", notes)
        self.assertIn("VD <notextile>*Ann* <b></notextile>: <notextile>*Ann* <b></notextile> / "
                      "<notextile>ann@example.org</notextile>", notes)


if __name__ == "__main__":
    unittest.main()
