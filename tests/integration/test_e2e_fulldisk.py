"""Issue 10, point 9: a full disk is survived without a restart.

The store lives on a small tmpfs of the test's own (mounting needs root; CI runs as root).
While the disk is full, webhooks are refused with 503 and /healthz says the store cannot be
written; once space comes back, every acknowledged message reaches Planfix exactly once, and
nothing refused appears, without restarting the bridge.  SIGTERM then exits 0.

Two runs: a deterministic one (the disk fills while a comment and a contact lookup are in
flight, so their outcome cannot be stored, and while webhooks come), and a stream of
webhooks from a few visitors during which the disk fills by itself.
"""

import os
import random
import re
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import VALGRIND, chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402
from small_disk import SmallDisk  # noqa: E402

WEBHOOKS = int(os.environ.get("BR_FULLDISK_WEBHOOKS", "400"))
SEED = int(os.environ.get("BR_FULLDISK_SEED", "20261210"))
SLOW = 6 if VALGRIND else 1


def occurrences(text, needle):
    return len(re.findall(re.escape(needle) + r"(?![0-9])", text))


class TestFullDisk(E2ECase):
    def setUp(self):
        self.disk = SmallDisk()
        # Registered before the base class's cleanups, so it runs after them: the bridge has
        # stopped and closed its store by then.
        self.addCleanup(lambda: self.disk.unmount(getattr(self, "bridge", None)))
        super().setUp()

    def start_on_disk(self, **overrides):
        return self.start_bridge(store={"path": os.path.join(self.disk.path, "bridge.db")}, **overrides)

    def health_raw(self):
        r = self.bridge.get("/healthz")
        return r.status, r.json()

    def store_failing(self):
        status, body = self.health_raw()
        if status == 503 and body.get("status") == "failing" and body.get("store", {}).get("writable") is False:
            return body
        return None

    def store_ok(self):
        status, body = self.health_raw()
        return status == 200 and body.get("status") == "ok" and body.get("store") == {"writable": True}

    def texts_of_tasks(self):
        """{task id: its description and comments, in order}."""
        out = {}
        comments = {}
        for c in self.fakes.planfix_comments():
            comments.setdefault(c["task"], []).append(c)
        for t in self.fakes.planfix_tasks():
            out[t["id"]] = "\n".join([t["description"]] + [
                c["description"] for c in sorted(comments.get(t["id"], []), key=lambda x: x["id"])])
        return out

    def all_arrived(self, texts):
        everything = "\n".join(self.texts_of_tasks().values())
        return all(occurrences(everything, t) >= 1 for t in texts)

    def assert_exactly_once(self, acked, refused):
        everything = "\n".join(self.texts_of_tasks().values())
        for t in acked:
            self.assertEqual(occurrences(everything, t), 1, "acknowledged message %r" % t)
        for t in refused:
            self.assertEqual(occurrences(everything, t), 0, "refused message %r was invented" % t)

    def test_jobs_whose_outcome_could_not_be_stored_go_on_once_space_is_back(self):
        self.start_on_disk()
        task_a, _ = self.open_chat("visitor-a", [msg("a1", "a-1 hello")], name="Visitor A")
        self.wait_idle()

        # Visitor A's next comment takes 3 s in Planfix; visitor B's contact lookup waits behind
        # it (one tracker request at a time).  Both are marked in flight in the store.
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/$" % task_a, "action": "delay",
                                       "seconds": 3}])
        self.post(chat_event("chatFragment", "visitor-a", [msg("a2", "a-2 in flight")], name="Visitor A"))
        self.wait_comment_posts(task_a, 1)
        self.post(chat_event("chatStarted", "visitor-b", [msg("b1", "b-1 hello")], name="Visitor B"))
        wait_until(lambda: [u for u in self.health()["engine"]["upstreams"]
                            if u["name"] == "tracker" and u["queued"] >= 1],
                   message=lambda: "visitor B's first job is not waiting for the tracker: %s" % self.health())

        # The disk fills while both are in flight.
        self.disk.fill()
        refused = ["a-3 refused", "b-2 refused", "c-1 refused"]
        for client, key, text in (("visitor-a", "a3", refused[0]), ("visitor-b", "b2", refused[1]),
                                  ("visitor-c", "c1", refused[2])):
            status, _ = self.bridge.post_chatra(chat_event("chatFragment", client, [msg(key, text)]))
            self.assertEqual(status, 503, "a webhook the store cannot take is refused")
        body = self.store_failing()
        self.assertIsNotNone(body, "/healthz while the disk is full: %s" % (self.health_raw(),))
        self.assertIn("full", body["store"]["error"])
        self.assertGreater(body["store"]["since"], 0)
        self.assertGreaterEqual(body["store"]["failed_writes"], 3)

        # Planfix answers; the bridge cannot store what it did.  Every run ends.
        wait_until(lambda: self.health_raw()[1]["engine"]["jobs"]["in_flight"] == 0, 15 * SLOW,
                   message=lambda: "jobs still in flight: %s" % (self.health_raw(),))
        self.assertEqual([c["description"] for c in self.fakes.planfix_comments(task_a)], ["a-2 in flight"])
        self.assertIsNotNone(self.store_failing(), "still full")

        # Space comes back: no restart.
        self.disk.free()
        pid = self.bridge.pid
        self.post(chat_event("chatFragment", "visitor-a", [msg("a4", "a-4 after")], name="Visitor A"))
        self.post(chat_event("chatFragment", "visitor-b", [msg("b4", "b-4 after")], name="Visitor B"))
        acked = ["a-1 hello", "a-2 in flight", "a-4 after", "b-1 hello", "b-4 after"]
        wait_until(lambda: self.all_arrived(acked), 20 * SLOW,
                   message=lambda: "not every acknowledged message arrived: %s; health %s; planfix saw %s"
                   % (self.texts_of_tasks(), self.health_raw(), self.pf_calls()))
        wait_until(self.store_ok, 5 * SLOW, message=lambda: "/healthz: %s" % (self.health_raw(),))
        self.wait_idle(10 * SLOW)
        self.assertEqual(self.bridge.pid, pid)
        self.assertTrue(self.bridge.running)

        self.assert_exactly_once(acked, refused)
        self.assertEqual(len(self.fakes.planfix_tasks()), 2, "one task per visitor who got through")
        self.assertEqual(len(self.fakes.planfix_contacts()), 2)
        # Visitor A's comment was looked for (it had been written) before the next one was posted.
        a_calls = [c for c in self.pf_calls() if c.startswith("POST /rest/task/%d/comments/" % task_a)]
        self.assertEqual(a_calls, ["POST /rest/task/%d/comments/" % task_a,
                                   "POST /rest/task/%d/comments/list" % task_a,
                                   "POST /rest/task/%d/comments/" % task_a], self.pf_calls())
        self.assertEqual([c["description"] for c in self.fakes.planfix_comments(task_a)],
                         ["a-2 in flight", "a-4 after"])
        self.assertEqual(self.dead_jobs(), 0)

        # One line when writes start failing, one when they work again.
        log = self.bridge.log()
        self.assertEqual(len(re.findall(r" error store: writes fail", log)), 1, log)
        self.assertEqual(len(re.findall(r" info store: writes work again", log)), 1, log)
        self.assertEqual([line for line in log.splitlines() if " error " in line and "writes fail" not in line], [])
        # SIGTERM exits 0 (the base class checks the exit code at tear-down).

    def test_the_disk_fills_under_a_stream_of_webhooks(self):
        rnd = random.Random(SEED)
        visitors = 4
        self.start_on_disk(tracker={"requests_per_second": 100})
        # Room for a few dozen webhooks and the jobs they make, then the disk is full.
        self.disk.fill(leave=rnd.randrange(96, 320) * 1024)

        counters = [0] * visitors
        acked, refused = [], []
        streak, freed, full_body, after_free = 0, False, None, []
        for _ in range(WEBHOOKS):
            v = rnd.randrange(visitors)
            n = counters[v]
            counters[v] += 1
            text = "v%d-m%04d" % (v, n)
            ev = chat_event("chatStarted" if n == 0 else "chatFragment", "visitor-%d" % v,
                            [msg("v%d-%04d" % (v, n), text)], name="Visitor %d" % v)
            status, body = self.bridge.post_chatra(ev)
            self.assertIn(status, (200, 503), body)
            (acked if status == 200 else refused).append(text)
            if freed:
                after_free.append(status)
            streak = streak + 1 if status == 503 else 0
            if streak == 30 and not freed:
                full_body = wait_until(self.store_failing, 5 * SLOW,
                                       message=lambda: "/healthz while full: %s" % (self.health_raw(),))
                self.disk.free()
                freed = True
        self.assertTrue(freed, "the disk never filled (%d acknowledged)" % len(acked))
        self.assertIn("full", full_body["store"]["error"])
        self.assertEqual(set(after_free), {200}, "every webhook after space came back is taken")
        self.assertGreater(len(acked), 100)

        wait_until(lambda: self.all_arrived(acked), 60 * SLOW,
                   message=lambda: "not every acknowledged message arrived; missing %s; health %s"
                   % ([t for t in acked if occurrences("\n".join(self.texts_of_tasks().values()), t) == 0][:20],
                      self.health_raw()))
        wait_until(self.store_ok, 5 * SLOW, message=lambda: "/healthz: %s" % (self.health_raw(),))
        self.wait_idle(20 * SLOW)
        self.assert_exactly_once(acked, refused)

        # One task per visitor who got through, messages in the order they were typed.
        tasks = self.texts_of_tasks()
        self.assertEqual(len(tasks), len({t.split("-")[0] for t in acked}))
        for text in tasks.values():
            mine = [t for t in acked if t in text]
            self.assertTrue(mine)
            self.assertTrue(all(t.split("-")[0] == mine[0].split("-")[0] for t in mine), "one visitor a task")
            positions = [text.index(t) for t in mine]
            self.assertEqual(positions, sorted(positions), "messages out of order")
        self.assertEqual(self.dead_jobs(), 0)
        self.assertEqual(len(re.findall(r" error store: writes fail", self.bridge.log())), 1)


if __name__ == "__main__":
    unittest.main()
