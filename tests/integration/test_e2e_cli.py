"""Issue 12, point 8: a command line that helps.  Every command has help (`help COMMAND`,
`COMMAND --help`), an unknown command is named as such, the store commands need only
store.path (no tracker token, no Chatra keys in the environment), and without --config the
bridge looks for /etc/chatra-bridge/bridge.json."""

import json
import os
import subprocess
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import TEST_ENV, chat_event, msg  # noqa: E402
from e2e import E2ECase  # noqa: E402

COMMANDS = ["run", "check-config", "identities", "unmerge", "dead-letters", "retry", "backup"]


class TestCommandLine(E2ECase):
    def bare(self, *args, cwd=None):
        """The binary with no secrets in its environment at all."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        return subprocess.run([self.bridge.binary] + list(args), cwd=cwd or self.bridge.tmpdir, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)

    def test_unknown_command_is_named(self):
        r = self.bare("frobnicate", "--config", "x.json")
        self.assertEqual(r.returncode, 2)
        self.assertIn('unknown command "frobnicate"', r.stderr)
        self.assertNotIn("--config FILE is required", r.stderr)
        r = self.bare("help", "frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn('no command "frobnicate"', r.stderr)

    def test_every_command_has_help(self):
        r = self.bare("help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in COMMANDS:
            self.assertIn(name, r.stdout)
        for name in COMMANDS:
            a, b = self.bare("help", name), self.bare(name, "--help")
            self.assertEqual((a.returncode, b.returncode), (0, 0), name)
            self.assertEqual(a.stdout, b.stdout, name)
            self.assertTrue(a.stdout.startswith("usage: chatra-bridge %s " % name), a.stdout)
        self.assertIn("--merge N", self.bare("help", "unmerge").stdout)
        self.assertIn("--to PATH", self.bare("help", "backup").stdout)
        # An option the command does not take is refused, with that command's usage.
        r = self.bare("identities", "--merge", "3")
        self.assertEqual(r.returncode, 2)
        self.assertIn('unknown argument "--merge"', r.stderr)
        self.assertIn("usage: chatra-bridge identities", r.stderr)

    def test_default_config_path(self):
        r = self.bare("check-config")
        self.assertIn("/etc/chatra-bridge/bridge.json", r.stdout + r.stderr)
        self.assertIn("/etc/chatra-bridge/bridge.json", self.bare("help", "run").stdout)

    def test_store_commands_need_no_secrets(self):
        self.start_bridge()
        self.open_chat("client-1", email="maria@example.org")
        self.wait_idle()
        self.bridge.stop()
        cfg = self.bridge.config_path
        # The full config refuses to load without the secrets ...
        r = self.bare("check-config", "--config", cfg)
        self.assertEqual(r.returncode, 1)
        # ... but the store commands read only store.path.
        r = self.bare("identities", "--config", cfg, "--email", "maria@example.org")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("maria@example.org", r.stdout)
        r = self.bare("dead-letters", "--config", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), [])
        r = self.bare("retry", "--config", cfg, "--all")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 jobs back in the queue", r.stdout)
        r = self.bare("unmerge", "--config", cfg, "--merge", "99")
        self.assertEqual(r.returncode, 1)
        self.assertIn("there is no merge 99", r.stderr)
        for out in (r.stdout, r.stderr):
            for value in TEST_ENV.values():
                self.assertNotIn(value, out)

    def test_store_commands_beside_the_daemon(self):
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-2", [msg("m1", "Hello")], email="ivan@example.org"))
        self.wait_idle()
        r = self.bare("identities", "--config", self.bridge.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ivan@example.org", r.stdout)

    def test_a_store_not_made_yet_is_said_clearly(self):
        path = os.path.join(self.bridge.tmpdir, "fresh.json")
        with open(path, "w") as f:
            json.dump({"store": {"path": "nowhere/bridge.db"}}, f)
        r = self.bare("dead-letters", "--config", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("there is no store at", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.bridge.tmpdir, "nowhere")))
        # Problems of the store section are still named.
        with open(path, "w") as f:
            json.dump({"store": {"path": 5}}, f)
        r = self.bare("dead-letters", "--config", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn("store.path", r.stderr)


if __name__ == "__main__":
    unittest.main()
