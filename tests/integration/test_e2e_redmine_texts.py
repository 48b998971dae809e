"""Issue 10, points 1 and 2, against a REAL Redmine (redmine_server.py) through RedmineProxy:

  - an issue description of the admin's own that does not show the chat's messages: every
    message becomes a note, once each and in order, also when the bridge is killed while the
    answer to the issue creation is held (the retry finds the issue by its reference key);
  - a returning visitor whose description does not show previous_task.id gets a note linking
    the previous issue;
  - a Russian setup in Moscow time: the issue's subject and description, the visitor's details
    note, the new-device note and the coalesced messages' times are Russian and in MSK, all
    written as Textile (no HTML reaches Redmine).

Setup and helpers come from ProxiedRedmineCase (test_e2e_redmine_faults.py).
"""

import os
import re
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from test_e2e_redmine import POLL_WAIT, RedmineCase  # noqa: F401 (RedmineCase: the skip reason)
from test_e2e_redmine_faults import ISSUES_POST, RETRY_WAIT, ProxiedRedmineCase  # noqa: E402

NO_MESSAGES = "*Chat with* {{visitor.name}}{{^visitor.name}}someone{{/visitor.name}}"


def count(text, needle):
    return len(re.findall(re.escape(needle) + r"(?![0-9])", text))


class TestRedmineTemplates(ProxiedRedmineCase):
    def all_text(self, n):
        issue = self.issue(n)
        return issue["description"] + "".join("\n" + t for _, t in self.notes(n))

    def wait_texts(self, n, texts, timeout=POLL_WAIT):
        wait_until(lambda: all(count(self.all_text(n), t) >= 1 for t in texts), timeout,
                   message=lambda: "issue #%d lacks some of %s: %s" % (n, texts, self.all_text(n)))

    def test_description_without_messages_and_a_crash(self):
        self.start_proxied(task={"description": NO_MESSAGES})
        client = "rm-tpl-crash"
        rule = self.proxy.lose_answer("POST", ISSUES_POST, hold=4)
        texts = ["First question", "Second question"]
        self.post(chat_event("chatStarted", client, [msg(client + "-m1", texts[0])], name="Maria"))
        self.post(chat_event("chatFragment", client, [msg(client + "-m2", texts[1])], name="Maria"))
        self.fired(rule)
        self.kill_and_restart()
        issue = wait_until(self.issues, POLL_WAIT, message="no issue")[0]
        n = issue["id"]
        self.say(client, client + "-m3", "Third, after the restart", name="Maria")
        texts.append("Third, after the restart")
        self.wait_texts(n, texts, RETRY_WAIT)
        self.wait_idle(RETRY_WAIT)
        self.assertEqual(len(self.issues()), 1)
        self.assertEqual(len(self.proxy.matching("POST", ISSUES_POST)), 1, self.proxy.calls())
        description = self.issue(n)["description"]
        self.assertTrue(description.startswith("*Chat with* Maria"), description)
        whole = self.all_text(n)
        for t in texts:
            self.assertEqual(count(whole, t), 1, "%r in #%d: %s" % (t, n, whole))
            self.assertNotIn(t, description)
        self.assertEqual([whole.index(t) for t in texts], sorted(whole.index(t) for t in texts))

    def test_previous_issue_linked_by_a_note(self):
        self.start_proxied(task={"description": NO_MESSAGES})
        client = "rm-tpl-prev"
        first = self.open_chat(client, "First visit", name="Pia")["id"]
        self._api("PUT", "/issues/%d.json" % first, {"issue": {"status_id": 5}})
        self.say(client, client + "-m2", "Back again", event="chatStarted", chat_id="chat-2", name="Pia")
        second = wait_until(lambda: [i for i in self.issues() if i["id"] != first], POLL_WAIT,
                            message="no second issue")[0]["id"]
        self.wait_texts(second, ["Back again", "Previous conversation"])
        links = [t for _, t in self.notes(second) if "Previous conversation" in t]
        self.assertEqual(links, ["*Previous conversation:* #%d" % first])

    def test_russian_setup_in_moscow_time(self):
        self.config["language"] = "ru"
        self.config["timezone"] = "Europe/Moscow"
        self.start_proxied(tracker={"coalesce_ms": 1500})
        client = "rm-tpl-ru"
        issue = self.open_chat(client, "Здравствуйте, есть ли чайник?", name="Мария Иванова")
        n = issue["id"]
        self.assertEqual(issue["subject"].strip(), "Чат: Мария Иванова (shop)")
        d = issue["description"]
        self.assertIn("*Имя:* Мария Иванова", d)
        self.assertIn("*Канал:* shop", d)
        self.assertRegex(d, r"\*Посетитель\* _\d\d\.\d\d\.\d{4} \d\d:\d\d MSK_")
        self.assertNotIn("<b>", d)
        # Two quick messages share one note, each with its Moscow time.
        self.say(client, client + "-m2", "Синий", name="Мария Иванова")
        self.say(client, client + "-m3", "Или красный", name="Мария Иванова")
        self.wait_texts(n, ["Синий", "Или красный"])
        [coalesced] = [t for _, t in self.notes(n) if "Синий" in t]
        self.assertRegex(coalesced, r"^_\d\d:\d\d:\d\d_ Синий\n_\d\d:\d\d:\d\d_ Или красный$")
        # Details given later: a note in Russian.
        self.say(client, client + "-m4", "Моя почта", name="Мария Иванова", email="maria.ru@example.org",
                 phone="+7 900 000-00-00")
        self.wait_texts(n, ["Данные посетителя"])
        [details] = [t for _, t in self.notes(n) if "Данные посетителя" in t]
        self.assertRegex(details, r"^\*Данные посетителя\*: имя Мария Иванова, e-mail (<notextile>)?maria\.ru@example"
                                  r"\.org(</notextile>)?, телефон (<notextile>)?\+7 900 000-00-00(</notextile>)?\.$")
        # A second device with the same e-mail joins: the note is Russian too.
        self.post(chat_event("chatStarted", client + "-phone", [msg(client + "-p1", "С телефона")],
                             email="maria.ru@example.org", os="iOS"))
        self.wait_texts(n, ["С телефона", "К разговору присоединилось новое устройство"])
        [joined] = [t for _, t in self.notes(n) if "присоединилось" in t]
        self.assertRegex(joined, r"^\*К разговору присоединилось новое устройство\*: ОС iOS\. Совпал неподтверждённый "
                                 r"e-mail (<notextile>)?maria\.ru@example\.org")
        self.wait_idle(POLL_WAIT)
        self.assertNotIn("<b>", self.all_text(n))


if __name__ == "__main__":
    unittest.main()
