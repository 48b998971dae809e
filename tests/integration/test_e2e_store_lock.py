"""Issue 12, point 3: one daemon per store.  A second daemon on the same store refuses to start
and names the running one; the first goes on as if nothing happened; a daemon killed with
SIGKILL does not block the next start; the store commands work beside the daemon; a
:memory: store takes no lock."""

import copy
import json
import os
import shutil
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import Bridge, chat_event, free_port, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402


class TestOneDaemonPerStore(E2ECase):
    def store_path(self):
        return os.path.join(self.bridge.tmpdir, "bridge.db")

    def other_bridge(self, store_path):
        """Another bridge (its own port and directory) whose config names store_path."""
        config = copy.deepcopy(self.config)
        config["listen"]["port"] = free_port()
        config["store"]["path"] = store_path
        other = Bridge(self.fakes, config=config)
        self.addCleanup(other.cleanup)
        return other

    def second_run(self, other):
        """Runs the other bridge in the foreground; it must exit by itself."""
        return other.run("run", "--config", other.write_config(), timeout=20)

    def assert_refused(self, r, pid):
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("another chatra-bridge (pid %d) is running on %s" % (pid, self.store_path()), r.stderr)
        self.assertIn(self.store_path() + ".lock", r.stderr)
        self.assertNotIn("listening on", r.stderr)

    def test_a_second_daemon_is_refused(self):
        self.start_bridge()
        self.open_chat("client-1")
        other = self.other_bridge(self.store_path())
        self.assert_refused(self.second_run(other), self.bridge.pid)
        # Also when it is started as the default command, and by another name of the store.
        r = other.run("--config", other.config_path, timeout=20)
        self.assert_refused(r, self.bridge.pid)
        alias = os.path.join(other.tmpdir, "alias.db")
        os.symlink(self.store_path(), alias)
        other.config["store"]["path"] = alias
        r = self.second_run(other)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("another chatra-bridge (pid %d) is running on %s" % (self.bridge.pid, alias), r.stderr)
        # The first one goes on: it takes webhooks and runs jobs.
        self.assertTrue(self.bridge.running)
        self.open_chat("client-2")
        self.wait_idle()
        self.assertEqual(self.health()["status"], "ok")
        with open(self.store_path() + ".lock") as f:
            self.assertEqual(f.read(), "%d\n" % self.bridge.pid)

    def test_a_killed_daemon_does_not_block(self):
        self.start_bridge()
        self.open_chat("client-1")
        first = self.bridge.pid
        self.assertEqual(self.bridge.kill(), -9)
        # The lock file stays with the dead daemon's PID in it; only the lock counts.
        with open(self.store_path() + ".lock") as f:
            self.assertEqual(f.read(), "%d\n" % first)
        self.bridge.start()
        self.assertNotEqual(self.bridge.pid, first)
        self.assert_refused(self.second_run(self.other_bridge(self.store_path())), self.bridge.pid)
        self.open_chat("client-2")
        self.wait_idle()
        # After a clean stop the next one starts too.
        self.assertEqual(self.bridge.stop(), 0)
        self.bridge.start()
        self.open_chat("client-3")

    def test_store_commands_work_beside_the_daemon(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="ivan@example.org"))
        self.wait_idle()
        cfg = self.bridge.config_path
        for args in (["identities"], ["dead-letters"], ["retry", "--all"], ["check-config"],
                     ["backup", "--to", os.path.join(self.bridge.tmpdir, "copy.db")]):
            r = self.bridge.run(args[0], "--config", cfg, *args[1:])
            self.assertEqual(r.returncode, 0, "%s: %s" % (args, r.stderr))
            self.assertNotIn("another chatra-bridge", r.stderr)
        self.assertIn("ivan@example.org", self.bridge.run("identities", "--config", cfg).stdout)
        # None of them took the daemon's lock or wrote over its PID.
        with open(self.store_path() + ".lock") as f:
            self.assertEqual(f.read(), "%d\n" % self.bridge.pid)
        self.open_chat("client-2")

    def test_memory_stores_take_no_lock(self):
        # Two daemons, each on a store of its own in memory, run in one directory: no lock file,
        # no refusal.
        shared = self.bridge.tmpdir
        bridges = []
        for i in range(2):
            config = copy.deepcopy(self.config)
            config["listen"]["port"] = free_port()
            config["store"]["path"] = ":memory:"
            b = Bridge(self.fakes, config=config)
            self.addCleanup(shutil.rmtree, b.tmpdir, True)
            b.tmpdir = shared
            b.config_path = os.path.join(shared, "memory-%d.json" % i)
            b.log_path = os.path.join(shared, "memory-%d.log" % i)
            b.write_config = (lambda b: lambda: self.write_raw(b))(b)
            b.start()
            self.addCleanup(lambda b: self.assertEqual(b.stop(), 0, b.log_tail()), b)
            bridges.append(b)
        for b in bridges:
            self.assertEqual(b.get("/healthz").status, 200)
            with open(b.config_path) as f:
                self.assertEqual(json.load(f)["store"]["path"], ":memory:")
        self.assertEqual([n for n in os.listdir(shared) if "memory:" in n or n.endswith(".lock")], [])

    @staticmethod
    def write_raw(b):
        """The config as it is (Bridge.write_config would make ":memory:" a file name)."""
        with open(b.config_path, "w") as f:
            json.dump(b.config, f)
        return b.config_path

if __name__ == "__main__":
    unittest.main()
