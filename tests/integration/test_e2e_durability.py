"""Issue behaviour 9: durability.  Planfix's {"result":"fail"} inside HTTP 200 is an error,
transient failures are retried, and the bridge can be killed at any moment without losing
or duplicating work."""

import os
import random
import signal
import sys
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import COMMENT_SOURCE_RE, TASK_SOURCE_RE, E2ECase, calls  # noqa: E402


class TestPlanfixFailures(E2ECase):
    def test_validation_failures_inside_http_200_go_to_dead_letters(self):
        self.start_bridge()
        codes = (30, 40, 41, 2004)
        for i, code in enumerate(codes):
            with self.subTest(code=code):
                self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "fail_in_2xx", "code": code,
                                               "error": "Injected validation error %d" % code}])
                self.post(chat_event("chatStarted", "client-%d" % code, [msg("m1", "Hello %d" % code)]))
                [*_, create] = self.wait_pf("/rest/task/", count=i + 1)
                self.assertEqual(create["status"], 200)
                self.assertEqual(create["fault"], "fail_in_2xx")
                wait_until(lambda: self.dead_jobs() == i + 1, message=lambda: "dead jobs: %s" % self.health())
        # Not retried: no further attempt after the first retry would have come (0.5-1 s).
        # (The first messages' comment jobs stay queued behind the dead task creation.)
        self.assert_no_new_requests(1.5)
        self.assertEqual(len(self.pf("/rest/task/", "POST")), len(codes))
        self.assertEqual(self.pf("/rest/task/list"), [])
        self.assertEqual(self.fakes.planfix_tasks(), [])
        self.assertEqual(self.dead_jobs(), len(codes))
        self.assertIn("moved to dead letters", self.bridge.log())

    def test_fail_inside_http_200_on_a_comment_is_dead_and_later_messages_still_go(self):
        self.start_bridge()
        task, contact = self.open_chat("client-1")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "fail_in_2xx",
                                       "code": 40, "error": "Missing parameter"}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "refused one")]))
        self.wait_comment_posts(task, 1)
        wait_until(lambda: self.dead_jobs() == 1, message=lambda: "dead jobs: %s" % self.health())
        self.post(chat_event("chatFragment", "client-1", [msg("m3", "accepted one")]))
        self.wait_comment_posts(task, 2)
        self.assert_quiet(1.5)
        self.assertEqual([p["body"]["description"] for p in self.comment_posts(task)], ["refused one", "accepted one"])
        self.assertEqual([c["description"] for c in self.fakes.planfix_comments(task)], ["accepted one"])
        self.assertEqual(self.dead_jobs(), 1)

    def test_http_500_is_retried_with_backoff_and_completes(self):
        self.start_bridge()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "status", "status": 500}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="maria@example.org"))
        first, second = self.wait_pf("/rest/task/", count=2)
        self.assertEqual((first["status"], second["status"]), (500, 201))
        self.assertGreaterEqual(second["time"] - first["time"], 0.45)
        self.assertEqual(second["body"], first["body"])
        self.assertRegex(second["body"]["sourceObjectId"], TASK_SOURCE_RE)
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(self.dead_jobs(), 0)
        between = calls([r for r in self.fakes.planfix_requests() if first["seq"] < r["seq"] < second["seq"]])
        self.assertIn(between, ([], ["POST /rest/task/list"]))

    def test_http_500_after_the_task_was_created_does_not_duplicate_it(self):
        self.start_bridge()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "status", "status": 500,
                                       "effect": True}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        self.wait_pf("/rest/task/list")
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(len(self.pf("/rest/task/", "POST")), 1)
        # Later messages land on that task.
        task = self.fakes.planfix_tasks()[0]["id"]
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "Still there?")]))
        [post] = self.wait_comment_posts(task, 1)
        self.assertEqual(post["body"]["description"], "Still there?")

    def test_429_on_a_comment_is_retried_and_completes(self):
        self.start_bridge()
        task, _ = self.open_chat("client-1")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "status",
                                       "status": 429, "body": {"result": "fail", "error": "Too many requests"}}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "rate limited")]))
        first, second = self.wait_comment_posts(task, 2)
        self.assertEqual((first["status"], second["status"]), (429, 201))
        self.assertGreaterEqual(second["time"] - first["time"], 0.45)
        self.assertEqual(second["body"], first["body"])
        self.assertRegex(second["body"]["sourceObjectId"], COMMENT_SOURCE_RE)
        self.assert_quiet()
        self.assertEqual([c["description"] for c in self.fakes.planfix_comments(task)], ["rate limited"])
        self.assertEqual(self.dead_jobs(), 0)

    def test_500_after_the_comment_was_written_does_not_duplicate_it(self):
        self.start_bridge()
        task, _ = self.open_chat("client-1")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "status",
                                       "status": 500, "effect": True}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "written once")]))
        self.wait_pf("/rest/task/%d/comments/list" % task)
        self.assert_quiet()
        self.assertEqual([c["description"] for c in self.fakes.planfix_comments(task)], ["written once"])

    def test_a_timeout_is_retried_and_completes(self):
        self.start_bridge(tracker={"timeout_ms": 1000})
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "hang"}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        first, second = self.wait_pf("/rest/task/", count=2, timeout=15)
        self.assertEqual(first["fault"], "hang")
        self.assertGreaterEqual(second["time"] - first["time"], 1.4)
        self.assertEqual(second["body"], first["body"])
        self.wait_task()
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(self.dead_jobs(), 0)

    def test_a_timeout_after_the_task_was_created_does_not_duplicate_it(self):
        # Planfix creates the task 1.1 s after the request; the bridge gives up at 1 s and
        # retries no sooner than 0.5 s later: the retry must find the task.
        self.start_bridge(tracker={"timeout_ms": 1000})
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "delay", "seconds": 1.1}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        self.wait_pf("/rest/task/list", timeout=15)
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(len(self.pf("/rest/task/", "POST")), 1)


class TestKill(E2ECase):
    """SIGKILL at various moments, then restart on the same store."""

    def kill(self):
        self.assertEqual(self.bridge.kill(signal.SIGKILL), -signal.SIGKILL)

    def all_text(self):
        """Every description and comment text Planfix holds, as one list of strings."""
        return [t["description"] for t in self.fakes.planfix_tasks()] + \
               [c["description"] for c in self.fakes.planfix_comments()]

    def assert_each_once(self, texts):
        everything = self.all_text()
        for text in texts:
            self.assertEqual(sum(chunk.count(text) for chunk in everything), 1,
                             "%r should appear exactly once in Planfix; tasks and comments: %r" % (text, everything))

    def test_kill_right_after_the_200_then_restart_completes_the_work(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "first words")], name="Maria Lopez",
                             email="maria@example.org"))
        self.kill()
        self.bridge.restart()
        self.wait_task()
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(len(self.fakes.planfix_contacts()), 1)
        self.assert_each_once(["first words"])
        self.assertEqual(self.dead_jobs(), 0)

    def test_kill_after_several_webhooks_then_restart_loses_and_duplicates_nothing(self):
        self.start_bridge()
        words = ["alpha", "bravo", "charlie", "delta", "echo"]
        self.post(chat_event("chatStarted", "client-1", [msg("m0", words[0])], email="maria@example.org"))
        for i, w in enumerate(words[1:], 1):
            self.post(chat_event("chatFragment", "client-1", [msg("m%d" % i, w)], email="maria@example.org"))
        self.kill()
        self.bridge.restart()
        wait_until(lambda: all(any(w in chunk for chunk in self.all_text()) for w in words),
                   message=lambda: "not every message reached Planfix: %r" % self.all_text())
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(len(self.fakes.planfix_contacts()), 1)
        self.assert_each_once(words)

    def test_kill_at_random_moments_loses_and_duplicates_nothing(self):
        self.start_bridge()
        rnd = random.Random(20251122)
        words = []
        for i in range(8):
            word = "word-%02d" % i
            words.append(word)
            self.post(chat_event("chatStarted" if i == 0 else "chatFragment", "client-1",
                                 [msg("m%d" % i, word)], email="maria@example.org"))
            if i % 2 == 1:
                # Not a wait for anything: a random moment to crash at.
                time.sleep(rnd.uniform(0.0, 0.15))
                self.kill()
                self.bridge.restart()
        wait_until(lambda: all(any(w in chunk for chunk in self.all_text()) for w in words),
                   message=lambda: "not every message reached Planfix: %r" % self.all_text())
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(len(self.fakes.planfix_contacts()), 1)
        self.assert_each_once(words)

    def test_kill_while_the_task_creation_is_in_flight(self):
        self.start_bridge()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "delay", "seconds": 1.5}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello in flight")], email="maria@example.org"))
        self.wait_pf("/rest/task/")
        self.kill()
        # The fake creates the task after its delay although the bridge is gone.
        wait_until(lambda: len(self.fakes.planfix_tasks()) == 1, timeout=6, message="the delayed task never appeared")
        before = self.fakes.planfix_requests()[-1]["seq"]
        self.bridge.restart()
        contact = self.fakes.planfix_tasks()[0]["assigner"]
        [lookup] = self.wait_pf("/rest/task/list")
        self.assertGreater(lookup["seq"], before)
        self.assertEqual(lookup["body"]["filters"], [{"type": 1, "operator": "equal", "value": contact}])
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(len(self.pf("/rest/task/", "POST")), 1)
        self.assertEqual(len(self.fakes.planfix_contacts()), 1)
        # Later messages land on that task.
        task = self.fakes.planfix_tasks()[0]["id"]
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "After the crash")], email="maria@example.org"))
        [post] = self.wait_comment_posts(task, 1)
        self.assertEqual(post["body"]["description"], "After the crash")
        self.assertEqual(post["body"]["owner"], {"id": contact})
        self.assert_quiet()
        self.assert_each_once(["Hello in flight", "After the crash"])

    def test_kill_while_a_comment_is_in_flight(self):
        self.start_bridge()
        task, contact = self.open_chat("client-1")
        self.wait_idle()
        path = "/rest/task/%d/comments/" % task
        self.fakes.faults("planfix", [{"match": "POST %s$" % path, "action": "delay", "seconds": 1.5}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "comment in flight")]))
        [first] = self.wait_pf(path)
        self.kill()
        wait_until(lambda: len(self.fakes.planfix_comments(task)) == 1, timeout=6,
                   message="the delayed comment never appeared")
        before = self.fakes.planfix_requests()[-1]["seq"]
        self.bridge.restart()
        [lookup] = self.wait_pf(path + "list")
        self.assertGreater(lookup["seq"], before)
        self.assert_quiet()
        self.assertEqual(len(self.comment_posts(task)), 1)
        [c] = self.fakes.planfix_comments(task)
        self.assertEqual((c["description"], c["sourceObjectId"]),
                         ("comment in flight", first["body"]["sourceObjectId"]))
        # The next message is posted normally.
        self.post(chat_event("chatFragment", "client-1", [msg("m3", "next one")]))
        self.wait_comment_posts(task, 2)
        self.assert_quiet()
        self.assertEqual([c["description"] for c in self.fakes.planfix_comments(task)],
                         ["comment in flight", "next one"])

    def test_kill_while_the_contact_creation_is_in_flight_with_email(self):
        self.start_bridge()
        self.fakes.faults("planfix", [{"match": "POST /rest/contact/$", "action": "delay", "seconds": 1.5}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="maria@example.org"))
        self.wait_pf("/rest/contact/")
        self.kill()
        wait_until(lambda: len(self.fakes.planfix_contacts()) == 1, timeout=5, message="no contact appeared")
        self.bridge.restart()
        self.wait_task()
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_contacts()), 1)
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(self.fakes.planfix_tasks()[0]["assigner"], "contact:1")

    def test_kill_while_the_contact_creation_is_in_flight_without_email(self):
        self.start_bridge()
        self.fakes.faults("planfix", [{"match": "POST /rest/contact/$", "action": "delay", "seconds": 1.5}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], name="Anonymous Visitor"))
        self.wait_pf("/rest/contact/")
        self.kill()
        wait_until(lambda: len(self.fakes.planfix_contacts()) == 1, timeout=5, message="no contact appeared")
        self.bridge.restart()
        self.wait_task()
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(len(self.fakes.planfix_contacts()), 1,
                         "duplicate contact after a crash during contact creation: %s; planfix saw %s"
                         % (self.fakes.planfix_contacts(), self.pf_calls()))


if __name__ == "__main__":
    unittest.main()
