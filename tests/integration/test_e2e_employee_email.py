"""Issue 10, point 4: employees matched by e-mail, as Planfix's own Chatra integration does.

An employees[] entry with only a name and an e-mail is complete:
  - the Planfix user is found by e-mail (POST /user/list, filter 9003) once and cached in the
    store (not asked again per reply, nor after a restart);
  - her replies in Planfix reach the chat sent with her e-mail and name (Chatra's agentEmail,
    agentName, receivedFrom) when she has no chatra_agent_id, and their copy in the next
    fragment is not mirrored back, whatever agent id Chatra gave it;
  - a message she types in Chatra (the webhook's agents[] names her e-mail) becomes a Planfix
    comment owned by her user;
  - a reply written while the lookup has not answered yet waits for it (never dropped);
  - explicit tracker_user / chatra_agent_id win and cost no lookup;
  - the channel's default agent may be given by e-mail;
  - an e-mail no Planfix user has is logged clearly, and nothing else changes;
  - by the clock (README: "a user found is confirmed once a week, and an e-mail that matched
    nobody is ... asked again after an hour, when a comment by an unknown user comes"): the time of
    the last lookup is moved back in the store while the bridge is stopped.
"""

import os
import sqlite3
import sys
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import ANNA, BORIS, DEFAULT_AGENT_ID, chat_event, msg, wait_until  # noqa: E402
from e2e import ANNA_AGENT, COMMENT_SOURCE_RE, E2ECase, calls  # noqa: E402

ANNA_BY_EMAIL = {"name": "Anna Smirnova", "email": "Anna@Example.com"}   # Planfix user 5 has anna@example.com
USER_LIST_BODY = {"offset": 0, "pageSize": 100, "fields": "id,name,lastname,email",
                  "filters": [{"type": 9003, "operator": "equal", "value": "anna@example.com"}]}
AS_ANNA = {"agentEmail": "anna@example.com", "agentName": "Anna Smirnova", "receivedFrom": "Planfix"}
CHATRA_ANNA = "chatraAgentAnna01"   # the id Chatra itself uses for Anna (the bridge is never told it)


class EmailCase(E2ECase):
    employees = [ANNA_BY_EMAIL, BORIS]
    channel = {}

    def setUp(self):
        super().setUp()
        self.start_bridge(employees=[dict(e) for e in self.employees], channel=dict(self.channel))

    def user_lists(self):
        return self.pf("/user/list", "POST")

    def open(self, client="client-1"):
        self.task, self.contact = self.open_chat(client, name="Maria Lopez", email="maria@example.org")
        self.wait_idle()

    def reply(self, text, owner="user:5", name="Anna"):
        self.fakes.employee_comment(self.task, owner=owner, name=name, text=text)
        status, body = self.bridge.post_planfix(self.task)
        self.assertEqual(status, 200, body)

    def sent(self):
        """The bodies Chatra accepted, without clientId."""
        return [{k: v for k, v in r["body"].items() if k != "clientId"}
                for r in self.fakes.chatra_requests(path="/messages/", method="POST")]

    def fragment(self, *messages, agents=None):
        self.post(chat_event("chatFragment", "client-1", list(messages), agents=agents, email="maria@example.org"))


class TestEmployeeKnownByEmail(EmailCase):
    def test_reply_goes_with_her_email_and_name_and_its_copy_is_not_mirrored_back(self):
        self.open()
        [lookup] = self.user_lists()
        self.assertEqual(lookup["body"], USER_LIST_BODY)
        self.reply("<p>We ship <b>today</b>.</p>")
        self.wait_chatra()
        self.assert_quiet()
        self.assertEqual(self.sent(), [dict(AS_ANNA, text="We ship today.")])
        # Chatra reports the reply in the next fragment under its own id for Anna.
        before = len(self.fakes.planfix_requests())
        self.fragment(msg("a1", "We ship today.", type="agent", agent_id=CHATRA_ANNA), msg("m2", "Great, thanks"),
                      agents=[{"id": CHATRA_ANNA, "name": "Anna Smirnova", "email": "anna@example.com"}])
        [post] = self.wait_comment_posts(self.task, 1)
        self.assert_quiet()
        self.assertEqual(calls(self.fakes.planfix_requests()[before:]), ["POST /rest/task/%d/comments/" % self.task])
        self.assertEqual((post["body"]["description"], post["body"]["owner"]), ("Great, thanks", {"id": self.contact}))
        self.assertEqual(len(self.user_lists()), 1)

    def test_the_copy_is_recognised_when_agents_do_not_name_the_email(self):
        self.open()
        self.reply("Your order left the warehouse")
        self.wait_chatra()
        self.wait_idle()
        self.fragment(msg("a1", "Your order left the warehouse", type="agent", agent_id=CHATRA_ANNA),
                      msg("m2", "Thank you"))
        [post] = self.wait_comment_posts(self.task, 1)
        self.assert_quiet()
        self.assertEqual(post["body"]["description"], "Thank you")

    def test_a_message_she_types_in_chatra_is_her_comment(self):
        self.open()
        agents = [{"id": CHATRA_ANNA, "name": "Anna Smirnova", "email": "ANNA@example.com"}]
        self.fragment(msg("a1", "Hi Maria, it is in stock.", type="agent", agent_id=CHATRA_ANNA), agents=agents)
        [post] = self.wait_comment_posts(self.task, 1)
        body = dict(post["body"])
        self.assertRegex(body.pop("sourceObjectId"), COMMENT_SOURCE_RE)
        self.assertEqual(body, {"description": "Hi Maria, it is in stock.", "owner": {"id": "user:5"}})
        # A later webhook need not name her again: the agent's e-mail is remembered.
        self.fragment(msg("a2", "Anything else?", type="agent", agent_id=CHATRA_ANNA))
        self.wait_comment_posts(self.task, 2)
        self.assert_quiet()
        self.assertEqual([p["body"]["owner"] for p in self.comment_posts(self.task)], [{"id": "user:5"}] * 2)
        [c1, c2] = self.fakes.planfix_comments(self.task)
        self.assertEqual((c1["owner"]["id"], c2["owner"]["id"]), ("user:5", "user:5"))
        self.assertEqual(len(self.user_lists()), 1)

    def test_the_lookup_is_asked_once_across_replies_and_a_restart(self):
        self.open()
        for i, text in enumerate(("one", "two", "three")):
            self.reply(text)
            self.wait_chatra(count=i + 1)
            self.wait_idle()
        self.bridge.restart()
        self.reply("after the restart")
        self.wait_chatra(count=4)
        self.assert_quiet()
        self.assertEqual([m["text"] for m in self.sent()], ["one", "two", "three", "after the restart"])
        self.assertTrue(all(m["agentEmail"] == "anna@example.com" for m in self.sent()))
        self.assertEqual(len(self.user_lists()), 1)
        # Boris has tracker_user: his comments are not this channel's employee's, and cost no lookup.
        self.reply("from Boris", owner=BORIS["tracker_user"], name="Boris")
        self.wait_pf("/task/%d/comments/list" % self.task, count=5)
        self.assert_quiet()
        self.assertEqual(len(self.sent()), 4)
        self.assertEqual(len(self.user_lists()), 1)


class TestReplyWaitsForTheLookup(E2ECase):
    def test_a_reply_written_before_the_lookup_answered_is_sent_once_it_does(self):
        # The lookup fails once and may be retried only after 5 s: the reply comes meanwhile.
        self.fakes.faults("planfix", [{"match": "POST /rest/user/list", "action": "status", "status": 503,
                                       "headers": {"Retry-After": "5"}}])
        self.start_bridge(employees=[dict(ANNA_BY_EMAIL), dict(BORIS)])
        task, _ = self.open_chat("client-1", name="Maria Lopez", email="maria@example.org")
        self.fakes.employee_comment(task, owner="user:5", name="Anna", text="Sorry for the wait")
        status, _ = self.bridge.post_planfix(task)
        self.assertEqual(status, 200)
        hook_at = time.time()
        [send] = self.wait_chatra(timeout=20)
        self.assertEqual({k: v for k, v in send["body"].items() if k != "clientId"},
                         dict(AS_ANNA, text="Sorry for the wait"))
        self.assert_quiet()
        first, second = self.pf("/user/list", "POST")
        self.assertEqual((first["status"], second["status"]), (503, 200))
        # The comments were read only once the lookup had answered, and only then.
        self.assertGreater(second["time"], hook_at)
        [listing] = self.pf("/task/%d/comments/list" % task, "POST")
        self.assertGreater(listing["time"], second["time"])


class TestExplicitIdsWin(EmailCase):
    # Anna: agent id, no tracker user (looked up); Boris: tracker user, no agent id (not looked up).
    employees = [dict(ANNA_BY_EMAIL, chatra_agent_id=ANNA_AGENT),
                 {"name": "Boris Petrov", "email": "boris@example.com", "tracker_user": "user:6"}]
    channel = {"employees": ["anna@example.com", "boris@example.com"]}

    def test_agent_id_and_tracker_user_win_and_cost_no_lookup(self):
        self.open()
        self.reply("from Anna")
        self.wait_chatra(count=1)
        self.wait_idle()
        self.reply("from Boris", owner="user:6", name="Boris")
        self.wait_chatra(count=2)
        self.assert_quiet()
        self.assertEqual(self.sent(), [{"text": "from Anna", "agentId": ANNA_AGENT},
                                       {"text": "from Boris", "agentEmail": "boris@example.com",
                                        "agentName": "Boris Petrov", "receivedFrom": "Planfix"}])
        self.assertEqual([r["body"]["filters"][0]["value"] for r in self.user_lists()], ["anna@example.com"])



class TestNoLookupWithTrackerUsers(EmailCase):
    employees = [ANNA, BORIS]

    def test_no_lookup_at_all_when_every_employee_has_a_tracker_user(self):
        self.open()
        self.reply("explicit")
        self.wait_chatra()
        self.assert_quiet()
        self.assertEqual(self.sent(), [{"text": "explicit", "agentId": ANNA_AGENT}])
        self.assertEqual(self.user_lists(), [])


class TestDefaultAgentByEmail(EmailCase):
    channel = {"send_as_employee": False, "default_agent_id": None,
               "default_agent_email": "Support@Example.com", "default_agent_name": "Shop support"}

    def test_replies_come_from_the_default_agent_given_by_email(self):
        self.open()
        self.reply("From the team")
        self.wait_chatra()
        self.wait_idle()
        self.assertEqual(self.sent(), [{"text": "From the team", "agentEmail": "support@example.com",
                                        "agentName": "Shop support", "receivedFrom": "Planfix"}])
        # Its copy comes back under the support agent's Chatra id.
        self.fragment(msg("a1", "From the team", type="agent", agent_id="chatraSupport0001"), msg("m2", "ok"),
                      agents=[{"id": "chatraSupport0001", "email": "support@example.com"}])
        [post] = self.wait_comment_posts(self.task, 1)
        self.assert_quiet()
        self.assertEqual(post["body"]["description"], "ok")


class TestDefaultAgentIdWinsOverEmail(EmailCase):
    channel = {"send_as_employee": False, "default_agent_email": "support@example.com",
               "default_agent_name": "Shop support"}

    def test_the_default_agent_id_wins(self):
        self.open()
        self.reply("From the team")
        self.wait_chatra()
        self.assert_quiet()
        self.assertEqual(self.sent(), [{"text": "From the team", "agentId": DEFAULT_AGENT_ID}])


class TestEmailWithoutPlanfixUser(EmailCase):
    employees = [{"name": "Nadia Novak", "email": "nadia@example.com"}, ANNA_BY_EMAIL]
    channel = {"employees": ["nadia@example.com"]}

    def test_nobody_found_is_logged_and_nothing_breaks(self):
        wait_until(lambda: len(self.user_lists()) == 2, message=lambda: "lookups: %s" % self.user_lists())
        self.open()
        self.assertIn("employee nadia@example.com: no Planfix user has this e-mail", self.bridge.log())
        # A comment by a user who is none of the channel's employees is not relayed.
        self.reply("a colleague's note", owner="user:7", name="Viktor")
        self.wait_pf("/task/%d/comments/list" % self.task)
        self.assert_quiet()
        self.assertEqual(self.sent(), [])
        # Her message typed in Chatra is written by the bridge, naming the agent.
        self.fragment(msg("a1", "Hello from Nadia", type="agent", agent_id="chatraNadia00001"),
                      agents=[{"id": "chatraNadia00001", "email": "nadia@example.com"}])
        [post] = self.wait_comment_posts(self.task, 1)
        self.assertEqual(post["body"]["description"], "<b>Chatra agent:</b><br>Hello from Nadia")
        self.assertNotIn("owner", post["body"])
        # The visitor's conversation goes on; nothing is dead, nothing asked again.
        self.fragment(msg("m2", "Thanks"))
        self.wait_comment_posts(self.task, 2)
        self.assert_quiet()
        self.assertEqual(self.dead_jobs(), 0)
        self.assertEqual([r["body"]["filters"][0]["value"] for r in self.user_lists()],
                         ["nadia@example.com", "anna@example.com"])
        # After a restart (within the hour) the answer "nobody" is not asked again either.
        self.bridge.restart()
        self.reply("another note", owner="user:7", name="Viktor")
        self.wait_pf("/task/%d/comments/list" % self.task, count=2)
        self.assert_quiet()
        self.assertEqual(len(self.user_lists()), 2)
        self.assertEqual(self.sent(), [])


class TestLookupsByTheClock(EmailCase):
    employees = [{"name": "Nadia Novak", "email": "nadia@example.com"}, ANNA_BY_EMAIL]
    channel = {"employees": ["nadia@example.com", "anna@example.com"]}

    def looked_up(self):
        return [r["body"]["filters"][0]["value"] for r in self.user_lists()]

    def asked_at(self, email, ago_ms=None):
        """The time of email's last lookup in the store (the bridge stopped); ago_ms moves it back."""
        db = sqlite3.connect(os.path.join(self.bridge.tmpdir, "bridge.db"))
        try:
            with db:
                if ago_ms is not None:
                    db.execute("UPDATE employee_users SET checked_at=? WHERE email=?",
                               (int(time.time() * 1000) - ago_ms, email))
                return db.execute("SELECT checked_at FROM employee_users WHERE email=?", (email,)).fetchone()[0]
        finally:
            db.close()

    def test_a_user_found_is_confirmed_after_a_week_and_not_before(self):
        week = 7 * 24 * 3600 * 1000
        wait_until(lambda: len(self.user_lists()) == 2, message=lambda: "lookups: %s" % self.user_lists())
        self.open()
        self.assertEqual(self.bridge.stop(), 0)
        self.asked_at("anna@example.com", ago_ms=week - 3600 * 1000)
        self.bridge.start()
        self.assert_quiet(1.5)      # the housekeeping looks five times a second
        self.assertEqual(self.looked_up(), ["nadia@example.com", "anna@example.com"])
        self.assertEqual(self.bridge.stop(), 0)
        before = self.asked_at("anna@example.com", ago_ms=week + 60000)
        self.bridge.start()
        wait_until(lambda: len(self.user_lists()) == 3, message=lambda: "lookups: %s" % self.user_lists())
        self.assert_quiet()
        self.assertEqual(self.looked_up(), ["nadia@example.com", "anna@example.com", "anna@example.com"])
        # Still her user: a reply goes as Anna.
        self.reply("Confirmed")
        self.wait_chatra()
        self.assertEqual(self.sent(), [dict(AS_ANNA, text="Confirmed")])
        self.assertEqual(self.bridge.stop(), 0)
        self.assertGreater(self.asked_at("anna@example.com"), before + week)

    def test_nobody_is_asked_again_after_an_hour_only_when_an_unknown_users_comment_comes(self):
        hour, margin = 3600 * 1000, 15000
        wait_until(lambda: len(self.user_lists()) == 2, message=lambda: "lookups: %s" % self.user_lists())
        self.open()
        self.assertEqual(self.bridge.stop(), 0)
        # The hour runs out margin ms after this, while the bridge runs.
        ends = self.asked_at("nadia@example.com", ago_ms=hour - margin) + hour
        self.bridge.start()
        self.assertLess(time.time() * 1000, ends, "the bridge took too long to start")
        # Within the hour a comment by an unknown user asks nothing.
        self.reply("a colleague's note", owner="user:7", name="Viktor")
        self.wait_pf("/task/%d/comments/list" % self.task)
        self.assert_quiet()
        self.assertLess(time.time() * 1000, ends, "the hour ran out before the check")
        self.assertEqual(len(self.user_lists()), 2)
        # Past the hour, nothing asks either until such a comment comes.
        wait_until(lambda: time.time() * 1000 > ends + 500, timeout=margin / 1000 + 5, interval=0.2)
        self.assert_quiet(1.0)
        self.assertEqual(len(self.user_lists()), 2)
        self.reply("another note", owner="user:7", name="Viktor")
        wait_until(lambda: len(self.user_lists()) == 3, message=lambda: "lookups: %s" % self.user_lists())
        self.assert_quiet()
        self.assertEqual(self.looked_up()[2], "nadia@example.com")
        self.assertEqual(self.sent(), [])
        self.assertEqual(self.dead_jobs(), 0)


if __name__ == "__main__":
    unittest.main()
