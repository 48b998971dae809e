"""Issue 10, point 2: the bridge's own words are templates, in the admin's language and time zone.

A Russian setup in Moscow time against the fake Planfix: the task's title and description, the
contact's placeholder name, the author labels, the coalesced messages' times, the visit and
new-device notes and the "continues in" note are Russian, with times in MSK.  An admin's own
text replaces one default and leaves the others.  E-mails typed with capital Cyrillic letters
match the same person (Unicode lower case).
"""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg  # noqa: E402
from e2e import E2ECase, split_coalesced  # noqa: E402

AT = 1764669600000            # 2025-12-02 10:00:00 UTC = 13:00 in Moscow, 05:00 in New York
ANNA_AGENT = "bnRzp4CioKudG4aHm"


class TestRussianSetup(E2ECase):
    def start_ru(self, **overrides):
        return self.start_bridge(language="ru", timezone="Europe/Moscow", **overrides)

    def test_task_contact_and_times_in_russian_and_moscow_time(self):
        self.start_ru(channel={"task": {"template_id": 12, "closed_status_id": 3}})
        task, contact = self.open_chat("ru-1", [msg("ru-1-m1", "Здравствуйте!", created_at=AT),
                                                msg("ru-1-a1", "Добрый день", type="agent", agent_id=ANNA_AGENT,
                                                    created_at=AT + 60000),
                                                msg("ru-1-x1", "Кто здесь?", type="agent", agent_id="someStranger",
                                                    created_at=AT + 120000)],
                                       city="Казань")
        self.wait_idle()
        t = self.fakes.planfix_task(task)
        self.assertEqual(t["name"], "Чат: посетитель (shop)")
        d = t["description"]
        self.assertIn("<b>Город:</b> Казань<br>", d)
        self.assertIn("<b>Чат начат:</b> 02.12.2025 13:00 MSK<br>", d)
        self.assertIn("<p><b>Посетитель</b> <i>02.12.2025 13:00 MSK</i><br>\nЗдравствуйте!</p>", d)
        self.assertIn("<p><b>Anna Smirnova</b> <i>02.12.2025 13:01 MSK</i><br>\nДобрый день</p>", d)
        self.assertIn("<p><b>Агент</b> <i>02.12.2025 13:02 MSK</i><br>\nКто здесь?</p>", d)
        self.assertEqual(self.contact_body()["name"], "Посетитель чата")
        # An agent no employee maps to, typed later in Chatra: the comment names "Агент Chatra".
        self.post(chat_event("chatFragment", "ru-1", [msg("ru-1-x2", "Я помогу", type="agent",
                                                          agent_id="someStranger")], city="Казань"))
        [post] = self.wait_comment_posts(task, 1)
        self.assertEqual(post["body"]["description"], "<b>Агент Chatra:</b><br>Я помогу")

    def test_coalesced_messages_carry_moscow_clock_times(self):
        self.start_ru(tracker={"coalesce_ms": 1500})
        task, _ = self.open_chat("ru-2", [msg("ru-2-m1", "Первое", created_at=AT)])
        self.post(chat_event("chatFragment", "ru-2", [msg("ru-2-m2", "Второе", created_at=AT + 5000)]))
        self.post(chat_event("chatFragment", "ru-2", [msg("ru-2-m3", "Третье", created_at=AT + 7000)]))
        [post] = self.wait_comment_posts(task, 1)
        self.wait_idle()
        self.assertEqual(post["body"]["description"], "<i>13:00:05</i> Второе<br><i>13:00:07</i> Третье")
        self.assertEqual(split_coalesced(post["body"]["description"]), ["Второе", "Третье"])

    def test_visit_new_device_and_continues_in_notes_are_russian(self):
        self.start_ru()
        laptop, _ = self.open_chat("ru-l", [msg("ru-l1", "С ноутбука")], chatId="chat-1",
                                   email="МАРИЯ@ПРИМЕР.РФ")
        self.wait_idle()
        # The same device, a new chat: a visit.
        self.post(chat_event("chatStarted", "ru-l", [msg("ru-l2", "Снова я")], chatId="chat-2",
                             email="МАРИЯ@ПРИМЕР.РФ", browser="Firefox", os="Linux", city="Москва"))
        self.wait_comment_posts(laptop, 2)
        # A phone with the same address in lower case joins the same task.
        self.post(chat_event("chatStarted", "ru-p", [msg("ru-p1", "С телефона")], email="мария@пример.рф",
                             os="iOS"))
        self.wait_comment_posts(laptop, 4)
        self.wait_idle()
        texts = [c["description"] for c in self.fakes.planfix_comments(laptop)]
        self.assertIn("<b>Новый визит</b>: браузер Firefox, ОС Linux, город Москва.", texts)
        self.assertIn("<b>К разговору присоединилось новое устройство</b>: ОС iOS. Совпал неподтверждённый e-mail "
                      "мария@пример.рф (введён в чате); ответы уходят на устройство, с которого посетитель написал "
                      "последним.", texts)
        self.assertEqual(len(self.fakes.planfix_tasks()), 1, "one person, one task")
        # A tablet without an e-mail gets its own task; when it gives the address, it joins the
        # older thread and its task says where the conversation continues.
        tablet, _ = self.open_chat("ru-t", [msg("ru-t1", "С планшета")])
        self.post(chat_event("chatFragment", "ru-t", [msg("ru-t2", "Это тоже я")], email="Мария@пример.РФ"))
        self.wait_idle()
        notes = [c["description"] for c in self.fakes.planfix_comments(tablet)]
        self.assertIn("<b>Этот разговор продолжается в задаче #%d</b>: посетитель написал с другого устройства с "
                      "e-mail мария@пример.рф (введён в чате, не подтверждён)." % laptop, notes)

    def test_an_admin_text_replaces_one_default(self):
        d = os.path.join(self.bridge.tmpdir, "texts")
        os.makedirs(d)
        with open(os.path.join(d, "visit.html"), "w") as f:
            f.write("{{! my own }}\n<b>Снова на сайте</b> ({{device.browser}})\n")
        self.start_ru(texts={"new_visit_file": os.path.join(d, "visit.html"),
                             "messages": "{{#messages}}[{{clock}}] {{text}} {{/messages}}"},
                      tracker={"coalesce_ms": 0})
        task, _ = self.open_chat("ru-o", [msg("ru-o1", "Привет", created_at=AT)], chatId="chat-1")
        self.post(chat_event("chatFragment", "ru-o", [msg("ru-o2", "Ещё", created_at=AT + 1000)], chatId="chat-1"))
        self.wait_comment_posts(task, 1)
        self.wait_idle()
        self.post(chat_event("chatStarted", "ru-o", [msg("ru-o3", "Вернулась", created_at=AT + 9000)],
                             chatId="chat-2", browser="Opera"))
        posts = self.wait_comment_posts(task, 3)
        self.wait_idle()
        self.assertEqual([p["body"]["description"] for p in posts],
                         ["[13:00:01] Ещё", "[13:00:09] Вернулась", "<b>Снова на сайте</b> (Opera)"])


class TestEnglishInAnotherZone(E2ECase):
    def test_new_york_times(self):
        self.start_bridge(timezone="America/New_York", tracker={"coalesce_ms": 1500})
        task, _ = self.open_chat("ny-1", [msg("ny-1-m1", "Hello", created_at=AT)])
        self.post(chat_event("chatFragment", "ny-1", [msg("ny-1-m2", "One", created_at=AT + 1000)]))
        self.post(chat_event("chatFragment", "ny-1", [msg("ny-1-m3", "Two", created_at=AT + 2000)]))
        [post] = self.wait_comment_posts(task, 1)
        self.wait_idle()
        self.assertIn("<b>Chat started:</b> 2025-12-02 05:00 EST<br>", self.fakes.planfix_task(task)["description"])
        self.assertEqual(post["body"]["description"], "<i>05:00:01</i> One<br><i>05:00:02</i> Two")


if __name__ == "__main__":
    unittest.main()
