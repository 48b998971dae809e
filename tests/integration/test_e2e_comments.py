"""Issue behaviour 6: later chat messages become Planfix task comments."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import wait_until, chat_event, msg, sample  # noqa: E402
from e2e import ANNA_AGENT, COMMENT_SOURCE_RE, E2ECase  # noqa: E402


class CommentCase(E2ECase):
    def setUp(self):
        super().setUp()
        self.start_bridge()
        self.task, self.contact = self.open_chat("client-1", name="Maria Lopez", email="maria@example.org")

    def fragment(self, *messages, client="client-1", event="chatFragment"):
        self.post(chat_event(event, client, list(messages), name="Maria Lopez", email="maria@example.org"))

    def descriptions(self):
        """The mirrored message texts in order (coalesced comments split)."""
        return self.comment_texts(self.task)

    def wait_texts(self, count, timeout=10):
        return wait_until(lambda: (lambda t: t if len(t) >= count else None)(self.descriptions()), timeout,
                          message=lambda: "fewer than %d texts mirrored: %s" % (count, self.descriptions()))

    def wait_texts(self, n):
        return wait_until(lambda: len(self.descriptions()) >= n or None,
                          message=lambda: "fewer than %d messages mirrored: %s" % (n, self.descriptions()))


class TestMessagesBecomeComments(CommentCase):
    def test_visitor_message_is_a_comment_by_the_contact(self):
        self.fragment(msg("m2", "Is it <b>blue</b> & 1 < 2?\nSecond line\n\nThird"))
        [post] = self.wait_comment_posts(self.task, 1)
        body = dict(post["body"])
        self.assertRegex(body.pop("sourceObjectId"), COMMENT_SOURCE_RE)
        self.assertEqual(body, {"description": "Is it &lt;b&gt;blue&lt;/b&gt; &amp; 1 &lt; 2?"
                                               "<br>Second line<br><br>Third",
                                "owner": {"id": self.contact}})
        self.assert_quiet()
        [c] = self.fakes.planfix_comments(self.task)
        self.assertEqual(c["owner"]["id"], self.contact)

    def test_agent_message_of_a_mapped_agent_is_a_comment_by_the_employee(self):
        self.fragment(msg("a1", "Hi Maria, yes it is.", type="agent", agent_id=ANNA_AGENT))
        [post] = self.wait_comment_posts(self.task, 1)
        body = dict(post["body"])
        self.assertRegex(body.pop("sourceObjectId"), COMMENT_SOURCE_RE)
        self.assertEqual(body, {"description": "Hi Maria, yes it is.", "owner": {"id": "user:5"}})

    def test_agent_message_of_an_unmapped_agent_names_the_chatra_agent(self):
        self.fragment(msg("a1", "Hello from a stranger", type="agent", agent_id="unknownAgent00001"))
        [post] = self.wait_comment_posts(self.task, 1)
        body = dict(post["body"])
        self.assertRegex(body.pop("sourceObjectId"), COMMENT_SOURCE_RE)
        self.assertEqual(body, {"description": "<b>Chatra agent:</b><br>Hello from a stranger"})

    def test_system_and_empty_messages_are_dropped_and_message_key_is_read(self):
        # The sample: an agent message, a system message with empty text, and a client
        # message whose text is under "message".
        ev = sample("chat-fragment-agent-and-system")
        ev["client"]["id"] = "client-1"
        ev["client"]["chatId"] = "chat-client-1"  # the same chat (a new chat id is a new visit)
        ev["client"]["email"] = "maria@example.org"
        ev["messages"].append(msg("e1", ""))
        ev["messages"].append(msg("s2", "Anna joined the chat", type="system"))
        self.post(ev)
        self.wait_comment_posts(self.task, 2)
        self.assert_quiet()
        posts = self.comment_posts(self.task)
        self.assertEqual([(p["body"]["description"], p["body"].get("owner")) for p in posts],
                         [("Hi Maria, yes it is.", {"id": "user:5"}),
                          ("Great, and the delivery time<br>to Madrid?", {"id": self.contact})])
        for p in posts:
            self.assertRegex(p["body"]["sourceObjectId"], COMMENT_SOURCE_RE)

    def test_text_wins_over_message_when_both_are_present(self):
        self.fragment(msg("m2", "from text", message="from message"))
        self.fragment(msg("m3", "only message", key="message"))
        self.wait_texts(2)   # one comment or two (coalesced): the texts are what counts
        self.assertEqual(self.descriptions(), ["from text", "only message"])

    def test_source_object_ids_are_distinct_and_share_the_instance_uuid(self):
        self.fragment(msg("m2", "one"))
        self.wait_comment_posts(self.task, 1)
        self.fragment(msg("m3", "two"))
        posts = self.wait_comment_posts(self.task, 2)
        keys = [p["body"]["sourceObjectId"] for p in posts]
        self.assertEqual(len(set(keys)), 2)
        task_key = self.fakes.planfix_tasks()[0]["sourceObjectId"]
        for k in keys:
            self.assertEqual(COMMENT_SOURCE_RE.match(k).group(1), task_key[:24])


class TestOrderAndDuplicates(CommentCase):
    def test_order_is_kept_within_and_across_webhooks(self):
        self.fragment(msg("m2", "one"), msg("m3", "two"), msg("m4", "three"))
        for i, word in enumerate(("four", "five", "six", "seven", "eight"), 5):
            self.fragment(msg("m%d" % i, word))
        self.wait_texts(8)
        self.assert_quiet()
        self.assertEqual(self.descriptions(), ["one", "two", "three", "four", "five", "six", "seven", "eight"])
        self.assertEqual([c["description"] for c in self.fakes.planfix_comments(self.task)],
                         [p["body"]["description"] for p in self.comment_posts(self.task)])

    def test_mixed_visitor_and_agent_messages_keep_their_order_and_authors(self):
        self.fragment(msg("m2", "q1"), msg("a1", "a1", type="agent", agent_id=ANNA_AGENT), msg("m3", "q2"),
                      msg("a2", "a2", type="agent", agent_id=ANNA_AGENT))
        self.wait_comment_posts(self.task, 4)
        posts = self.comment_posts(self.task)
        self.assertEqual([(p["body"]["description"], p["body"]["owner"]["id"]) for p in posts],
                         [("q1", self.contact), ("a1", "user:5"), ("q2", self.contact), ("a2", "user:5")])

    def test_overlapping_fragments_and_repeated_webhooks_give_one_comment_each(self):
        m2, m3, m4 = msg("m2", "two"), msg("m3", "three"), msg("m4", "four")
        self.fragment(m2, m3)
        self.fragment(m3, m4)          # m3 again
        self.fragment(m3, m4)          # the whole webhook again
        self.fragment(msg("client-1-m1", "Hello, is the blue kettle in stock?"))  # the first one, in the description
        self.wait_texts(3)
        self.assert_quiet()
        self.assertEqual(self.descriptions(), ["two", "three", "four"])

    def test_a_message_without_id_sent_twice_is_one_comment(self):
        same = msg(None, "no id here", created_at=1763800100000)
        self.fragment(same)
        self.fragment(dict(same))
        self.wait_comment_posts(self.task, 1)
        self.assert_quiet()
        self.assertEqual(self.descriptions(), ["no id here"])

    def test_same_text_with_different_ids_is_two_comments(self):
        self.fragment(msg("m2", "ok"))
        self.fragment(msg("m3", "ok"))
        self.wait_texts(2)
        self.assert_quiet()
        self.assertEqual(self.descriptions(), ["ok", "ok"])

    def test_messages_of_a_chat_started_repeat_are_not_posted_again(self):
        self.post(chat_event("chatStarted", "client-1", [msg("client-1-m1", "Hello, is the blue kettle in stock?")],
                             name="Maria Lopez", email="maria@example.org"))
        self.assert_quiet()
        self.assertEqual(self.comment_posts(self.task), [])
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)


if __name__ == "__main__":
    unittest.main()
