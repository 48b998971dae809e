"""Issue 15, point 2: batching that adapts.  While the tracker is behind, a message waits longer
for the next ones (up to tracker.coalesce_max_s), so that more of them share one comment; once it
keeps up again the wait is coalesce_ms.  channels[].mirror_agent_messages: an agent's message typed
in Chatra is its own comment ("comment"), goes in the visitor's coalesced comment labelled with the
employee's name ("with_visitor"), or is not written at all ("off")."""

import os
import re
import sys
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from admin import AdminCase  # noqa: E402
from e2e import ANNA_AGENT, split_coalesced  # noqa: E402
from harness import chat_event, msg, wait_until  # noqa: E402

T0 = 1763800000000            # 2025-11-22 08:26:40 UTC
AT = 1764669600000            # 2025-12-02 10:00:00 UTC = 13:00 in Moscow
GAUGE = re.compile(r"^chatra_bridge_coalesce_wait_seconds ([0-9.e+-]+)$", re.M)


class BatchingCase(AdminCase):
    def wait_gauge(self):
        r = self.bridge.get("/metrics")
        self.assertEqual(r.status, 200, r.body)
        m = GAUGE.search(r.body)
        self.assertIsNotNone(m, r.body)
        return float(m.group(1))

    def tracker_wait_ms(self):
        [up] = [u for u in self.api("overview")["upstreams"] if u["name"] == "tracker"]
        return up["coalesce_wait_ms"]

    def fall_behind(self, task_y):
        """The tracker falls behind: Y's comment hangs 12 s and thirty jobs wait behind it; the
        wait widens to 20 s or more."""
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task_y, "action": "delay",
                                       "seconds": 12, "effect": True}])
        self.post(chat_event("chatFragment", "client-y",
                             [msg("y%d" % i, "y says %d" % i, created_at=T0 + i * 10) for i in range(30)]))
        wait_until(lambda: self.wait_gauge() >= 20, timeout=20,
                   message=lambda: "the wait did not widen: %s s" % self.wait_gauge())

    def messages(self, conv):
        return {m["text"]: m for m in self.timeline(conv, "message")}


class TestTheWaitAdapts(BatchingCase):
    def test_the_wait_widens_while_the_tracker_is_behind_and_narrows_after(self):
        self.start_admin(tracker={"requests_per_second": 1, "coalesce_ms": 1000, "coalesce_max_s": 40,
                                  "timeout_ms": 60000})
        task_x, contact_x = self.open_chat("client-x")
        task_y, _ = self.open_chat("client-y")
        self.wait_idle(timeout=20)
        self.assertEqual(self.wait_gauge(), 1.0)
        self.assertEqual(self.tracker_wait_ms(), 1000)

        self.fall_behind(task_y)
        self.assertGreaterEqual(self.tracker_wait_ms(), 20000)

        # A burst in X spread wider than coalesce_ms still lands in one comment, in order.
        self.post(chat_event("chatFragment", "client-x", [msg("xa", "first")]))
        time.sleep(2)
        self.post(chat_event("chatFragment", "client-x", [msg("xb", "second")]))
        time.sleep(2)
        self.post(chat_event("chatFragment", "client-x", [msg("xc", "third")]))
        wait_until(lambda: len(self.comment_texts(task_x)) == 3 or None, timeout=60,
                   message=lambda: "X's messages not mirrored: %s" % self.comment_texts(task_x))
        [post] = self.comment_posts(task_x)
        self.assertEqual(split_coalesced(post["body"]["description"]), ["first", "second", "third"])
        self.assertEqual(post["body"]["owner"], {"id": contact_x})
        # Y's thirty went once each, in order, in one comment.
        self.wait_idle(timeout=30)
        self.assertEqual(self.comment_texts(task_y), ["y says %d" % i for i in range(30)])
        self.assertEqual(len(self.comment_posts(task_y)), 1)

        # Caught up: the wait narrows back, and so does the comment.
        wait_until(lambda: self.wait_gauge() == 1.0, timeout=10,
                   message=lambda: "the wait did not narrow: %s s" % self.wait_gauge())
        self.assertEqual(self.tracker_wait_ms(), 1000)
        self.post(chat_event("chatFragment", "client-x", [msg("xd", "fourth")]))
        self.wait_comment_posts(task_x, 2, timeout=15)
        time.sleep(1.5)
        self.post(chat_event("chatFragment", "client-x", [msg("xe", "fifth")]))
        self.wait_comment_posts(task_x, 3, timeout=15)
        self.assert_quiet()
        self.assertEqual([p["body"]["description"] for p in self.comment_posts(task_x)[1:]], ["fourth", "fifth"])
        log = self.bridge.log()
        self.assertIn("batching: the tracker is behind", log)
        self.assertIn("batching: the tracker keeps up again: messages wait coalesce_ms (1000 ms)", log)
        self.assertEqual([m["state"] for m in self.timeline(1, "message")[1:]], ["in_comment"] * 5)

    def test_a_new_chat_while_the_tracker_is_behind_waits_and_its_task_carries_the_messages(self):
        self.start_admin(tracker={"requests_per_second": 1, "coalesce_ms": 1000, "coalesce_max_s": 40,
                                  "timeout_ms": 60000})
        task_y, _ = self.open_chat("client-y")
        self.wait_idle(timeout=20)
        self.fall_behind(task_y)
        # A new visitor writes three messages over 4 s and gives the e-mail in the last one.
        self.post(chat_event("chatStarted", "client-z", [msg("za", "hello there")]))
        time.sleep(2)
        self.post(chat_event("chatFragment", "client-z", [msg("zb", "is it blue")]))
        time.sleep(2)
        self.post(chat_event("chatFragment", "client-z", [msg("zc", "my e-mail is below")],
                             email="zoe@example.org"))
        [_, task] = self.wait_task(2, timeout=60)
        self.wait_idle(timeout=60)
        # One task made after the wait, with all three in its description; no comment for them.
        for text in ("hello there", "is it blue", "my e-mail is below"):
            self.assertIn(text, task["description"])
        self.assertEqual(self.comment_posts(task["id"]), [])
        # Its contact was made once, with the e-mail given during the wait, and never updated.
        contacts = [p for p in self.pf("/contact/", "POST") if p["body"].get("email") == "zoe@example.org"]
        self.assertEqual(len(contacts), 1)
        self.assertEqual([p for p in self.fakes.planfix_requests(method="POST")
                          if re.match(r"^/rest/contact/\d+$", p["path"])], [])
        self.assertEqual({m["state"] for m in self.messages(2).values()}, {"in_description"})

    def test_a_leaving_visitor_waits_behind_the_messages_typed_before(self):
        self.start_admin(tracker={"requests_per_second": 1, "coalesce_ms": 1000, "coalesce_max_s": 40,
                                  "timeout_ms": 60000})
        task_x, _ = self.open_chat("client-x")
        task_w, _ = self.open_chat("client-w")
        task_y, _ = self.open_chat("client-y")
        self.wait_idle(timeout=30)
        self.fall_behind(task_y)
        # X writes, then W's visitor leaves: X's message, typed first, reaches the tracker first.
        self.post(chat_event("chatFragment", "client-x", [msg("xa", "still there?")]))
        time.sleep(1)
        self.post(chat_event("chatTranscript", "client-w", []))
        self.wait_pf("/rest/task/%d" % task_w, timeout=90)
        self.wait_comment_posts(task_x, 1, timeout=90)
        self.wait_idle(timeout=60)
        order = [c for c in self.pf_calls() if c in ("POST /rest/task/%d/comments/" % task_x,
                                                     "POST /rest/task/%d" % task_w)]
        self.assertEqual(order, ["POST /rest/task/%d/comments/" % task_x, "POST /rest/task/%d" % task_w])
        self.assertEqual(self.fakes.planfix_task(task_w)["status"], 3)
        self.assertEqual(self.comment_texts(task_x), ["still there?"])

    def test_coalesce_max_0_never_widens(self):
        self.start_admin(tracker={"requests_per_second": 1, "coalesce_ms": 1000, "coalesce_max_s": 0,
                                  "timeout_ms": 60000})
        task_y, _ = self.open_chat("client-y")
        self.wait_idle(timeout=20)
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task_y, "action": "delay",
                                       "seconds": 4, "effect": True}])
        self.post(chat_event("chatFragment", "client-y",
                             [msg("y%d" % i, "y says %d" % i, created_at=T0 + i * 10) for i in range(30)]))
        wait_until(lambda: self.fakes.stats("planfix")["requests"] >= 1 and
                   len(self.comment_posts(task_y)) == 1 or None, timeout=20)
        for _ in range(3):
            self.assertEqual(self.wait_gauge(), 1.0)
            self.assertEqual(self.tracker_wait_ms(), 1000)
            time.sleep(0.5)
        self.wait_idle(timeout=20)
        self.assertEqual(self.comment_texts(task_y), ["y says %d" % i for i in range(30)])


class TestMirrorAgentMessages(BatchingCase):
    def burst(self, client):
        """Visitor, Anna (an employee), an agent no employee maps to, visitor: in one webhook."""
        self.post(chat_event("chatFragment", client, [
            msg("q1", "first", created_at=T0), msg("a1", "answer", type="agent", agent_id=ANNA_AGENT,
                                                  created_at=T0 + 1000),
            msg("x1", "who is there", type="agent", agent_id="someStranger", created_at=T0 + 2000),
            msg("q2", "third", created_at=T0 + 3000)]))

    def test_comment_each_agent_message_is_its_own_comment_by_the_employee(self):
        self.start_admin(tracker={"requests_per_second": 5, "coalesce_ms": 1000},
                         channel={"mirror_agent_messages": "comment"})
        task, contact = self.open_chat("client-1")
        self.wait_idle(timeout=15)
        self.burst("client-1")
        self.wait_comment_posts(task, 4, timeout=15)
        self.assert_quiet()
        self.assertEqual([(p["body"]["description"], p["body"].get("owner")) for p in self.comment_posts(task)],
                         [("first", {"id": contact}), ("answer", {"id": "user:5"}),
                          ("<b>Chatra agent:</b><br>who is there", None), ("third", {"id": contact})])

    def test_with_visitor_agent_lines_go_in_the_visitors_comment_labelled_and_in_order(self):
        self.start_admin(tracker={"requests_per_second": 5, "coalesce_ms": 1000},
                         channel={"mirror_agent_messages": "with_visitor"})
        task, contact = self.open_chat("client-1")
        self.wait_idle(timeout=15)
        self.burst("client-1")
        [post] = self.wait_comment_posts(task, 1, timeout=15)
        self.assert_quiet()
        self.assertEqual(post["body"]["description"],
                         "<i>08:26:40</i> first<br><i>08:26:41</i> <b>Anna Smirnova:</b> answer<br>"
                         "<i>08:26:42</i> <b>Agent:</b> who is there<br><i>08:26:43</i> third")
        self.assertEqual(post["body"]["owner"], {"id": contact})
        states = self.messages(1)
        self.assertEqual({t: (states[t]["state"], states[t]["comment_id"]) for t in
                          ("first", "answer", "who is there", "third")},
                         {t: ("in_comment", states["first"]["comment_id"]) for t in
                          ("first", "answer", "who is there", "third")})
        # An agent's message alone waits like a visitor's and goes the same way.
        self.post(chat_event("chatFragment", "client-1", [msg("a2", "anything else?", type="agent",
                                                              agent_id=ANNA_AGENT, created_at=T0 + 60000)]))
        [_, post] = self.wait_comment_posts(task, 2, timeout=15)
        self.assertEqual(post["body"]["description"], "<b>Anna Smirnova:</b> anything else?")

        # A reply from the tracker is never mirrored back: its copy in the next webhook is skipped.
        self.fakes.employee_comment(task, text="<p>We ship today.</p>")
        status, body = self.bridge.post_planfix(task)
        self.assertEqual(status, 200, body)
        self.wait_chatra()
        self.wait_idle()
        self.post(chat_event("chatFragment", "client-1", [
            msg("a9", "We ship today.", type="agent", agent_id=ANNA_AGENT, created_at=T0 + 120000),
            msg("m9", "Great, thanks", created_at=T0 + 121000)]))
        [_, _, post] = self.wait_comment_posts(task, 3, timeout=15)
        self.assert_quiet()
        self.assertEqual(post["body"]["description"], "Great, thanks")
        self.assertEqual(self.messages(1)["We ship today."]["state"], "skipped")

    def test_off_agent_messages_are_not_written_to_the_tracker(self):
        self.start_admin(tracker={"requests_per_second": 5, "coalesce_ms": 1000},
                         channel={"mirror_agent_messages": "off"})
        task, contact = self.open_chat("client-1", [msg("m1", "Hello", created_at=T0 - 5000),
                                                    msg("a0", "Hi, how can I help?", type="agent",
                                                        agent_id=ANNA_AGENT, created_at=T0 - 4000)])
        self.wait_idle(timeout=15)
        self.assertNotIn("how can I help", self.fakes.planfix_task(task)["description"])
        self.burst("client-1")
        [post] = self.wait_comment_posts(task, 1, timeout=15)
        self.assert_quiet()
        # The visitor's two go as one comment: the agents' in between are not there.
        self.assertEqual(post["body"]["description"], "<i>08:26:40</i> first<br><i>08:26:43</i> third")
        self.assertEqual(post["body"]["owner"], {"id": contact})
        states = self.messages(1)
        self.assertEqual([states[t]["state"] for t in ("Hello", "Hi, how can I help?", "first", "answer",
                                                        "who is there", "third")],
                         ["in_description", "skipped", "in_comment", "skipped", "skipped", "in_comment"])


class TestRussianWithVisitor(BatchingCase):
    def test_labels_and_clock_in_russian(self):
        self.start_admin(language="ru", timezone="Europe/Moscow",
                         tracker={"requests_per_second": 5, "coalesce_ms": 1000},
                         channel={"mirror_agent_messages": "with_visitor"})
        task, contact = self.open_chat("ru-1", [msg("ru-1-m1", "Здравствуйте!", created_at=AT)])
        self.wait_idle(timeout=15)
        self.post(chat_event("chatFragment", "ru-1", [
            msg("ru-q1", "Есть синий чайник?", created_at=AT + 60000),
            msg("ru-a1", "Да, есть", type="agent", agent_id=ANNA_AGENT, created_at=AT + 61000),
            msg("ru-x1", "Я помогу", type="agent", agent_id="someStranger", created_at=AT + 62000),
            msg("ru-q2", "Спасибо", created_at=AT + 63000)]))
        [post] = self.wait_comment_posts(task, 1, timeout=15)
        self.assert_quiet()
        self.assertEqual(post["body"]["description"],
                         "<i>13:01:00</i> Есть синий чайник?<br><i>13:01:01</i> <b>Anna Smirnova:</b> Да, есть<br>"
                         "<i>13:01:02</i> <b>Агент:</b> Я помогу<br><i>13:01:03</i> Спасибо")
        self.assertEqual(post["body"]["owner"], {"id": contact})


if __name__ == "__main__":
    unittest.main()
