"""Issue 12, point 4: backups.  `chatra-bridge backup --to PATH` writes a consistent copy of the
store while the daemon takes webhooks; restored as the README says (stop, put the copy in place,
start), the bridge has every conversation acknowledged before the backup began.  A backup never
writes over a file, says clearly why it cannot write, leaves nothing behind when it fails, and
needs no secrets."""

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import CHATRA_SHOP_WEBHOOK_SECRET, chat_event, http, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402


class Load(threading.Thread):
    """Posts chatStarted webhooks of new visitors load-0, load-1, ... until stopped; acked lists
    the client ids whose webhook was answered 200, in order."""

    def __init__(self, bridge):
        super().__init__(daemon=True)
        self.url = "%s/webhooks/chatra/shop/%s" % (bridge.url, CHATRA_SHOP_WEBHOOK_SECRET)
        self.acked = []
        self.failed = []
        self.stopping = threading.Event()

    def run(self):
        i = 0
        while not self.stopping.is_set():
            client = "load-%d" % i
            i += 1
            try:
                r = http("POST", self.url, chat_event("chatStarted", client, [msg(client + "-m1", "Hello")]))
            except OSError as e:
                self.failed.append("%s: %r" % (client, e))
                continue
            if r.status == 200:
                self.acked.append(client)
            else:
                self.failed.append("%s: %s %s" % (client, r.status, r.body))

    def stop(self):
        self.stopping.set()
        self.join(30)


def open_ro(path):
    return sqlite3.connect("file:%s?mode=ro" % path, uri=True)


class TestBackup(E2ECase):
    def store(self):
        return os.path.join(self.bridge.tmpdir, "bridge.db")

    def backup(self, to):
        return self.bridge.run("backup", "--config", self.bridge.config_path, "--to", to)

    @staticmethod
    def conv_clients(path):
        con = open_ro(path)
        try:
            return {c for (c,) in con.execute("SELECT client_id FROM conv_clients WHERE channel='shop'")}
        finally:
            con.close()

    def test_backup_under_load_restored_and_complete(self):
        self.start_bridge()
        load = Load(self.bridge)
        load.start()
        self.addCleanup(load.stop)
        wait_until(lambda: len(load.acked) >= 50, 30, message=lambda: "load: %s" % load.failed[:3])
        before = list(load.acked)  # every one of them was answered 200 before the backup began
        to = os.path.join(self.bridge.tmpdir, "backups", "bridge-1.db")
        os.mkdir(os.path.dirname(to))
        r = self.backup(to)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^backup of %s written to %s: \d+ pages, \d+ KiB, integrity checked\n$"
                         % (self.store(), to))
        # The daemon went on taking webhooks after the backup as before it.
        after = len(load.acked)
        wait_until(lambda: len(load.acked) >= after + 20, 30, message=lambda: "load: %s" % load.failed[:3])
        load.stop()
        self.assertEqual(load.failed, [])
        self.assertTrue(self.bridge.running)

        # One file, nothing beside it, readable by its owner only, and whole.
        self.assertEqual(os.listdir(os.path.dirname(to)), ["bridge-1.db"])
        self.assertEqual(os.stat(to).st_mode & 0o777, 0o600)
        con = open_ro(to)
        try:
            self.assertEqual(con.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
            in_copy = con.execute("SELECT count(*) FROM conversations").fetchone()[0]
            pending = con.execute("SELECT count(*) FROM inbox WHERE processed_at IS NULL").fetchone()[0]
        finally:
            con.close()
        self.assertEqual(os.listdir(os.path.dirname(to)), ["bridge-1.db"])

        # Restore as the README says: stop, move the store (and anything beside it) away, put the
        # copy in its place, start.
        self.assertEqual(self.bridge.stop(), 0)
        old = os.path.join(self.bridge.tmpdir, "old")
        os.mkdir(old)
        for name in os.listdir(self.bridge.tmpdir):
            if name.startswith("bridge.db"):
                os.rename(os.path.join(self.bridge.tmpdir, name), os.path.join(old, name))
        shutil.copyfile(to, self.store())
        self.bridge.start()
        wait_until(lambda: self.health()["engine"]["inbox_pending"] == 0, 30)
        restored = self.conv_clients(self.store())
        con = open_ro(self.store())
        try:
            n_conv = con.execute("SELECT count(*) FROM conversations WHERE channel='shop'").fetchone()[0]
        finally:
            con.close()
        missing = [c for c in before if c not in restored]
        self.assertEqual(missing, [], "acknowledged before the backup began, missing after the restore "
                         "(the copy had %d conversations and %d webhooks not applied yet)" % (in_copy, pending))
        self.assertGreaterEqual(n_conv, len(before))
        # What the daemon took after the copy was made is not in it.
        self.assertNotIn(load.acked[-1], restored)
        # The restored bridge works on.
        self.post(chat_event("chatStarted", "client-after-restore", [msg("r1", "Hello again")]))
        wait_until(lambda: self.conv_clients(self.store()) >= {"client-after-restore"})

    def test_never_over_a_file_and_clear_errors(self):
        self.start_bridge()
        self.open_chat("client-1")
        self.wait_idle()
        d = os.path.join(self.bridge.tmpdir, "backups")
        os.mkdir(d)
        existing = os.path.join(d, "existing.db")
        with open(existing, "w") as f:
            f.write("precious")

        r = self.backup(existing)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s already exists: a backup never overwrites a file" % existing, r.stderr)
        self.assertIn("no backup written", r.stderr)
        with open(existing) as f:
            self.assertEqual(f.read(), "precious")
        r = self.backup(self.store())
        self.assertEqual(r.returncode, 1)
        self.assertIn("already exists", r.stderr)
        r = self.backup(d)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s is a directory: name the file to write in it" % d, r.stderr)
        r = self.backup(os.path.join(d, "missing", "b.db"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("the directory of %s does not exist" % os.path.join(d, "missing", "b.db"), r.stderr)
        r = self.bridge.run("backup", "--config", self.bridge.config_path)
        self.assertEqual(r.returncode, 2)
        self.assertIn("backup needs --to PATH", r.stderr)
        if os.geteuid() != 0:  # root writes in any directory
            locked = os.path.join(self.bridge.tmpdir, "locked")
            os.mkdir(locked, 0o500)
            self.addCleanup(os.chmod, locked, 0o700)
            r = self.backup(os.path.join(locked, "b.db"))
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot create a file beside %s: Permission denied" % os.path.join(locked, "b.db"),
                          r.stderr)
            self.assertEqual(os.listdir(locked), [])
        self.assertEqual(sorted(os.listdir(d)), ["existing.db"])

        # It needs only store.path: no secrets in the environment.
        to = os.path.join(d, "b.db")
        r = subprocess.run([self.bridge.binary, "backup", "--config", self.bridge.config_path, "--to", to],
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, cwd=self.bridge.tmpdir,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        con = open_ro(to)
        try:
            self.assertEqual([c for (c,) in con.execute("SELECT client_id FROM conv_clients")], ["client-1"])
        finally:
            con.close()
        self.assertEqual(sorted(os.listdir(d)), ["b.db", "existing.db"])
        # A second backup to the same name is refused too.
        self.assertEqual(self.backup(to).returncode, 1)


if __name__ == "__main__":
    unittest.main()
