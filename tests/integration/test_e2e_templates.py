"""Issue 10, point 1: every message arrives, whatever the admin's templates say.

A message counts as carried by the task description only when the description's template
actually wrote its text; every other message goes out as a comment, in order, exactly once,
also when the bridge is killed in the middle.  A description without previous_task.id gets a
comment that links the previous task.  check-config says, as a notice, when a description
leaves the messages out.
"""

import json
import os
import re
import signal
import sqlite3
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

NO_MESSAGES = "<p>Chat with {{visitor.name}}{{^visitor.name}}someone{{/visitor.name}}</p>"
AGENTS_ONLY = ("<p>{{visitor.name}}</p>{{#chat.messages}}{{#is_agent}}<p>{{author}}: {{{text_html}}}</p>"
               "{{/is_agent}}{{/chat.messages}}")
# Shows the messages only when the visitor gave an e-mail: some chats carry them, others not.
IF_EMAIL = "{{#visitor.email}}{{#chat.messages}}<p>{{text}}</p>{{/chat.messages}}{{/visitor.email}}"


def occurrences(text, needle):
    return len(re.findall(re.escape(needle) + r"(?![0-9])", text))


class TestDeliveryIndependentOfTemplates(E2ECase):
    def all_text(self, task):
        """The task's description and its comments, in order."""
        t = self.fakes.planfix_task(task)
        return t["description"] + "".join(c["description"] for c in self.fakes.planfix_comments(task))

    def assert_each_once_in_order(self, task, texts):
        whole = self.all_text(task)
        for t in texts:
            self.assertEqual(occurrences(whole, t), 1, "%r in task %d: %s" % (t, task, whole))
        positions = [whole.index(t) for t in texts]
        self.assertEqual(positions, sorted(positions), "out of order: %s" % whole)

    def wait_texts(self, task, texts, timeout=10):
        wait_until(lambda: all(occurrences(self.all_text(task), t) >= 1 for t in texts), timeout,
                   message=lambda: "task %d lacks some of %s: %s" % (task, texts, self.all_text(task)))

    def test_description_without_messages_posts_every_message_as_a_comment(self):
        self.start_bridge(channel={"task": {"description": NO_MESSAGES}})
        first = [msg("t1-m1", "First question"), msg("t1-m2", "Second line of it")]
        task, _ = self.open_chat("t1", first, name="Maria")
        self.post(chat_event("chatFragment", "t1", [msg("t1-m3", "Third, later")], name="Maria"))
        texts = ["First question", "Second line of it", "Third, later"]
        self.wait_texts(task, texts)
        self.wait_idle()
        self.assertEqual(self.fakes.planfix_task(task)["description"], "<p>Chat with Maria</p>")
        self.assert_each_once_in_order(task, texts)
        # The visitor's messages are written as the visitor's contact, like any later message.
        owners = {c["fields"]["owner"]["id"] for c in self.fakes.planfix_comments(task)}
        self.assertEqual(owners, {self.fakes.planfix_task(task)["assigner"]})

    def test_description_with_only_some_messages(self):
        self.start_bridge(channel={"task": {"description": AGENTS_ONLY}})
        greeting = msg("t2-a1", "Hi, Anna here", type="agent", agent_id="bnRzp4CioKudG4aHm")
        task, _ = self.open_chat("t2", [msg("t2-m1", "Do you ship to Riga?"), greeting,
                                        msg("t2-m2", "And to Tallinn?")], name="Ivo")
        self.wait_texts(task, ["Do you ship to Riga?", "And to Tallinn?"])
        self.wait_idle()
        d = self.fakes.planfix_task(task)["description"]
        self.assertIn("Anna Smirnova: Hi, Anna here", d)
        self.assertNotIn("Riga", d)
        whole = self.all_text(task)
        self.assertEqual(occurrences(whole, "Hi, Anna here"), 1, whole)
        self.assert_each_once_in_order(task, ["Do you ship to Riga?", "And to Tallinn?"])

    def test_the_description_and_the_agent_label_read_the_agent_and_the_visitor(self):
        # README, Templates: chat.messages[] (and previous_task.messages[]) have an agent's
        # `agent`: `id`, `name`; agent_label reads `agent` (`id`) besides `visitor` and `channel`.
        description = ("{{#chat.messages}}<p>{{#is_agent}}[{{agent.name}}|{{agent.id}}]{{/is_agent}}"
                       "{{^is_agent}}{{author}}{{/is_agent}}: {{text}}</p>{{/chat.messages}}{{previous_task.id}}"
                       "{{#previous_task.messages}}{{#is_agent}}<p>before: {{agent.name}}</p>{{/is_agent}}"
                       "{{/previous_task.messages}}")
        self.start_bridge(channel={"task": {"description": description}},
                          texts={"agent_label": "{{channel.name}} agent {{agent.id}} for {{visitor.name}}",
                                 "agent_message": "{{agent.name}}: {{text}}"})
        task, _ = self.open_chat("t5", [msg("t5-m1", "Is the red one in stock?"),
                                        msg("t5-a1", "Yes", type="agent", agent_id="bnRzp4CioKudG4aHm"),
                                        msg("t5-a2", "Let me check", type="agent", agent_id="stranger0001")],
                                 name="Ivo")
        self.wait_idle()
        d = self.fakes.planfix_task(task)["description"]
        self.assertIn("<p>Visitor: Is the red one in stock?</p>", d)
        self.assertIn("<p>[Anna Smirnova|bnRzp4CioKudG4aHm]: Yes</p>", d)
        self.assertIn("<p>[shop agent stranger0001 for Ivo|stranger0001]: Let me check</p>", d)
        # A later comment by the unmapped agent (agent_message) is named by the same label.
        self.post(chat_event("chatFragment", "t5", [msg("t5-a3", "Found it", type="agent",
                                                        agent_id="stranger0001")], name="Ivo"))
        [post] = self.wait_comment_posts(task, 1)
        self.assertEqual(post["body"]["description"], "shop agent stranger0001 for Ivo: Found it")

    def test_a_condition_decides_per_chat(self):
        self.start_bridge(channel={"task": {"description": IF_EMAIL}})
        with_email, _ = self.open_chat("t3a", [msg("t3a-m1", "Mail me")], email="kim@example.org")
        without, _ = self.open_chat("t3b", [msg("t3b-m1", "No mail here")])
        self.wait_texts(without, ["No mail here"])
        self.wait_idle()
        self.assertIn("Mail me", self.fakes.planfix_task(with_email)["description"])
        self.assertEqual(self.fakes.planfix_comments(with_email), [])
        self.assertEqual(self.fakes.planfix_task(without)["description"], "")
        self.assert_each_once_in_order(without, ["No mail here"])

    def test_default_description_carries_the_messages(self):
        self.start_bridge()
        task, _ = self.open_chat("t4", [msg("t4-m1", "Only in the description")])
        self.wait_idle()
        self.assertIn("Only in the description", self.fakes.planfix_task(task)["description"])
        self.assertEqual(self.fakes.planfix_comments(task), [])

    def test_messages_waiting_for_the_tracker_all_arrive_after_an_outage_and_a_crash(self):
        # Planfix is down while the visitor types: everything typed before the task exists
        # waits; the bridge is killed while the task creation's answer is on its way.
        self.start_bridge(channel={"task": {"description": NO_MESSAGES}})
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "status", "status": 503,
                                       "times": 2},
                                      {"match": "POST /rest/task/$", "action": "delay", "seconds": 3,
                                       "effect": True}])
        texts = ["burst %02d" % i for i in range(12)]
        self.post(chat_event("chatStarted", "t5", [msg("t5-m00", texts[0])], name="Olga"))
        for i, t in enumerate(texts[1:], 1):
            self.post(chat_event("chatFragment", "t5", [msg("t5-m%02d" % i, t)], name="Olga"))
        # The third attempt is delayed (and then takes effect): kill the bridge meanwhile.
        wait_until(lambda: len(self.pf("/task/", "POST")) >= 3, 20,
                   message=lambda: "no third task creation: %s" % self.pf_calls())
        self.bridge.kill(signal.SIGKILL)
        task = self.wait_task(1, timeout=10)[0]["id"]
        self.bridge.start()
        self.wait_texts(task, texts, timeout=30)
        self.wait_idle(timeout=20)
        self.assertEqual(len(self.fakes.planfix_tasks()), 1, "the task was made once")
        self.assert_each_once_in_order(task, texts)

    def test_previous_task_linked_by_a_comment_when_the_description_does_not(self):
        self.start_bridge(channel={"task": {"description": NO_MESSAGES}})
        first, _ = self.open_chat("t6", [msg("t6-m1", "First visit")], name="Pia")
        self.wait_idle()
        self.fakes.set_task_status(first, 3)  # an employee completed it
        self.post(chat_event("chatStarted", "t6", [msg("t6-m2", "Back again")], name="Pia", chatId="chat-t6-2"))
        second = self.wait_task(2)[1]["id"]
        self.wait_texts(second, ["Back again", "Previous conversation"])
        self.wait_idle()
        links = [c["description"] for c in self.fakes.planfix_comments(second)
                 if "Previous conversation" in c["description"]]
        self.assertEqual(links, ["<b>Previous conversation:</b> task #%d" % first])

    def test_previous_task_in_the_description_needs_no_comment(self):
        self.start_bridge()
        first, _ = self.open_chat("t7", [msg("t7-m1", "First visit")], name="Pia")
        self.wait_idle()
        self.fakes.set_task_status(first, 3)
        self.post(chat_event("chatStarted", "t7", [msg("t7-m2", "Back again")], name="Pia", chatId="chat-t7-2"))
        second = self.wait_task(2)[1]["id"]
        self.wait_idle()
        self.assertIn("task #%d" % first, self.fakes.planfix_task(second)["description"])
        self.assertEqual([c for c in self.fakes.planfix_comments(second)
                          if "Previous conversation" in c["description"]], [])

    def test_a_note_queued_by_an_older_version_still_goes_out(self):
        # Before the texts were templates, a note job carried its HTML, with %TASK% for the
        # task it points to.  One left in the store by an upgrade is still posted.
        self.start_bridge()
        task, _ = self.open_chat("t8", [msg("t8-m1", "Hi")], name="Old")
        self.wait_idle()
        self.bridge.stop()
        con = sqlite3.connect(os.path.join(self.bridge.tmpdir, "bridge.db"))
        with con:
            conv = con.execute("SELECT id FROM conversations").fetchone()[0]
            con.execute("INSERT INTO jobs(lane, upstream, kind, conv_id, payload, state, attempts, next_at,"
                        " created_at, updated_at) VALUES(?, 'tracker', 'note', ?, ?, 0, 0, 0, 0, 0)",
                        ("t:%d" % conv, conv, json.dumps({"gen": 1, "gen_at": 1, "ref_conv": conv,
                                                          "html": "<b>Old note</b> for #%TASK%"})))
        con.close()
        self.bridge.start()
        [post] = self.wait_comment_posts(task, 1)
        self.assertEqual(post["body"]["description"], "<b>Old note</b> for #%d" % task)

    def test_check_config_notices(self):
        self.config["channels"][0]["task"] = {"template_id": 12, "closed_status_id": 3,
                                              "description": NO_MESSAGES}
        path = self.bridge.write_config()
        r = self.bridge.run("check-config", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("notice: %s: channels[0].task.description does not show the chat messages" % path, r.stdout)
        self.assertIn("does not show previous_task.id", r.stdout)
        self.assertTrue(r.stdout.rstrip().endswith("OK"), r.stdout)
        # The default description shows both: no notice.
        self.config["channels"][0]["task"] = {"template_id": 12, "closed_status_id": 3}
        r = self.bridge.run("check-config", "--config", self.bridge.write_config())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("notice", r.stdout)


if __name__ == "__main__":
    unittest.main()
