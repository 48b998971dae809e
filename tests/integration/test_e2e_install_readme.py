"""The README's "Install" and "Backups", claim by claim, where test_install.py, test_package.py
and test_e2e_backup.py leave a variation open: the backup of a stopped (crashed) bridge, a full
disk (the reason said), a config with nothing but store.path, the service's user (not root),
the backup's exit codes, a restored copy whose waiting jobs (a comment, a task not made yet)
look in the tracker before they write (Planfix and Redmine), `cmake --install --prefix /usr`, the
check of the README's step 3, an admin's secrets file kept by a second install, and the package's
removal and purge."""

import json
import os
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import SOURCE_DIR, TEST_ENV, chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402
from install import cmake_install, need, need_build_dir, unit_settings  # noqa: E402
from small_disk import SmallDisk  # noqa: E402
from test_e2e_redmine import POLL_WAIT, RedmineCase  # noqa: E402

NOBODY = 65534


def open_ro(path):
    return sqlite3.connect("file:%s?mode=ro" % path, uri=True)


def clients(path):
    con = open_ro(path)
    try:
        return sorted(c for (c,) in con.execute("SELECT client_id FROM conv_clients"))
    finally:
        con.close()


def tracker(case):
    """The tracker's upstream in /healthz."""
    return [u for u in case.health()["engine"]["upstreams"] if u["name"] == "tracker"][0]


def restore(bridge, to):
    """"move the store and the -wal and -shm files beside it out of the way ...; copy the backup to
    store.path" (the bridge is stopped; its store is bridge.db in its directory)."""
    old = os.path.join(bridge.tmpdir, "old")
    os.makedirs(old, exist_ok=True)
    for name in os.listdir(bridge.tmpdir):
        if name.startswith("bridge.db"):
            os.rename(os.path.join(bridge.tmpdir, name), os.path.join(old, name))
    shutil.copyfile(to, os.path.join(bridge.tmpdir, "bridge.db"))


def bare_env():
    """No secrets at all: the store commands need none."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


class TestBackupReadme(E2ECase):
    def store(self):
        return os.path.join(self.bridge.tmpdir, "bridge.db")

    def bare(self, *args, cwd=None, preexec_fn=None):
        return subprocess.run([self.bridge.binary] + list(args), cwd=cwd or self.bridge.tmpdir, env=bare_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                              preexec_fn=preexec_fn)

    def three_chats(self):
        self.start_bridge()
        for i in range(3):
            self.post(chat_event("chatStarted", "bk-%d" % i, [msg("bk-%d-m1" % i, "Hello %d" % i)]))
        self.wait_idle()

    def test_backup_of_a_bridge_that_was_killed(self):
        # "backup copies the store with SQLite's online backup API while the bridge runs" ... "Copying
        # bridge.db with cp is not a backup: ... the latest commits live in bridge.db-wal": with the
        # bridge stopped by a crash, the -wal is still there, and the backup has its commits.
        self.three_chats()
        self.assertEqual(self.bridge.kill(signal.SIGKILL), -signal.SIGKILL)
        self.assertTrue(os.path.exists(self.store() + "-wal"))
        d = os.path.join(self.bridge.tmpdir, "backups")
        os.mkdir(d)
        to = os.path.join(d, "bridge-1.db")
        r = self.bare("backup", "--config", self.bridge.config_path, "--to", to)
        self.assertEqual(r.returncode, 0, r.stderr)
        # "readable by its owner only, and is one file that the bridge opens as its store"
        self.assertEqual(os.listdir(d), ["bridge-1.db"])
        self.assertEqual(stat.S_IMODE(os.stat(to).st_mode), 0o600)
        self.assertEqual(clients(to), ["bk-0", "bk-1", "bk-2"])
        # "To restore: stop the bridge; move the store and the -wal and -shm files beside it out of
        # the way; copy the backup to store.path; start the bridge."
        restore(self.bridge, to)
        self.bridge.start()
        task, _ = self.open_chat("bk-after")
        self.assertTrue(task)
        self.assertEqual(clients(self.store()), ["bk-0", "bk-1", "bk-2", "bk-after"])

    def test_a_full_disk_leaves_nothing_behind(self):
        # "When it cannot write (PATH exists, its directory is missing or not writable, the disk is
        # full), it says why, exits 1 and leaves nothing behind."  The disk fills at 40 kB (the
        # limit of the file size a process may write): the store is larger.
        self.three_chats()
        con = open_ro(self.store())
        try:
            self.assertGreater(con.execute("PRAGMA page_count").fetchone()[0] * 4096, 64 * 1024)
        finally:
            con.close()
        d = os.path.join(self.bridge.tmpdir, "small-disk")
        os.mkdir(d)
        to = os.path.join(d, "bridge-1.db")

        def small_disk():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (40000, 40000))

        r = self.bare("backup", "--config", self.bridge.config_path, "--to", to, preexec_fn=small_disk)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        # Why: the system's reason, not only SQLite's "disk I/O error".
        self.assertIn("backup: copying the store failed: ", r.stderr)
        self.assertIn("(File too large)", r.stderr)
        self.assertIn("no backup written", r.stderr)
        self.assertEqual(os.listdir(d), [])
        # The bridge went on, and a backup with room is written.
        self.assertTrue(self.bridge.running)
        r = self.bare("backup", "--config", self.bridge.config_path, "--to", to)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(clients(to), ["bk-0", "bk-1", "bk-2"])

    def test_a_full_disk_for_real(self):
        # The same on a disk that is full indeed: SQLite's "database or disk is full".
        self.three_chats()
        disk = SmallDisk(size="4m")
        self.addCleanup(disk.unmount)
        disk.fill(leave=16 * 1024)
        to = os.path.join(disk.path, "bridge-1.db")
        r = self.bare("backup", "--config", self.bridge.config_path, "--to", to)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("backup: copying the store failed: database or disk is full", r.stderr)
        self.assertIn("no backup written", r.stderr)
        self.assertEqual(os.listdir(disk.path), ["filler"])
        disk.free()
        r = self.bare("backup", "--config", self.bridge.config_path, "--to", to)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(clients(to), ["bk-0", "bk-1", "bk-2"])

    def comment_backed_up_while_it_waits(self, client, fault, unblock, settled=lambda: None):
        """A chat's second message waits for Planfix (fault on its comment) while a backup is taken;
        unblock() lets it through, and the bridge posts it; the copy is restored and started.  Its
        job looks (the task's comments listed), finds the comment, and writes nothing."""
        self.start_bridge()
        task, _ = self.open_chat(client)
        self.wait_idle()
        self.fakes.faults("planfix", [dict({"match": "POST /rest/task/%d/comments/$" % task, "action": "status"},
                                           **fault)])
        self.post(chat_event("chatFragment", client, [msg(client + "-m2", "Still there?")]))
        self.wait_comment_posts(task, 1)
        settled()
        to = os.path.join(self.bridge.tmpdir, "bridge-1.db")
        r = self.bare("backup", "--config", self.bridge.config_path, "--to", to)
        self.assertEqual(r.returncode, 0, r.stderr)
        unblock()

        def posted():
            return [c for c in self.fakes.planfix_comments(task) if "Still there?" in c["description"]]

        wait_until(posted, 30)
        self.wait_idle(30)
        self.assertEqual(self.bridge.stop(), 0)
        restore(self.bridge, to)
        self.fakes.clear_requests()
        self.bridge.start()
        self.wait_pf("/task/%d/comments/list" % task)
        self.wait_idle(30)
        self.assertEqual(self.comment_posts(task), [])
        self.assertEqual(len(posted()), 1)

    def test_a_restored_job_looks_before_it_writes(self):
        # "It carries on from the moment of the backup: ... a tracker write the bridge made since then
        # may be made again (jobs that were waiting in the copy look in the tracker before they
        # write, as after a crash)."  A comment waits for Planfix (its answers fail) while the backup
        # is taken; the bridge then posts it; the restored copy's job finds it and posts nothing.
        def unblock():
            self.fakes.clear_faults("planfix")

        self.comment_backed_up_while_it_waits("bk-wait", {"status": 503, "times": 1000}, unblock)

    def test_a_restored_job_that_never_ran_looks_too(self):
        # The same for a job that waited without an attempt (a refused key pauses the tracker:
        # "its jobs wait, with no attempt counted"): it has nothing to look for by itself, the
        # backup marks it so that it looks.
        def paused():
            wait_until(lambda: tracker(self)["state"] == "paused", 10, message=lambda: str(tracker(self)))

        def key_put_right():   # a reload tries again at once
            os.kill(self.bridge.pid, signal.SIGHUP)

        self.comment_backed_up_while_it_waits("bk-key", {"status": 401}, key_put_right, paused)

    def test_a_restored_task_that_was_not_made_yet_is_not_made_twice(self):
        # The same for a chat whose task waited (the tracker paused by a refused key) when the
        # backup began, and was made after it: the restored copy's job finds it.
        self.start_bridge()
        task, _ = self.open_chat("bk-first")
        self.wait_idle()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/$" % task, "action": "status",
                                       "status": 401}])
        self.post(chat_event("chatFragment", "bk-first", [msg("bk-first-m2", "Anyone?")]))
        self.wait_comment_posts(task, 1)
        wait_until(lambda: tracker(self)["state"] == "paused", 10, message=lambda: str(tracker(self)))
        self.post(chat_event("chatStarted", "bk-second", [msg("bk-second-m1", "Hello from the second")],
                             name="Second", email="second@example.org"))
        wait_until(lambda: self.health()["engine"]["inbox_pending"] == 0, 10)
        to = os.path.join(self.bridge.tmpdir, "bridge-1.db")
        r = self.bare("backup", "--config", self.bridge.config_path, "--to", to)
        self.assertEqual(r.returncode, 0, r.stderr)
        os.kill(self.bridge.pid, signal.SIGHUP)
        self.wait_task(2, 30)
        self.wait_idle(30)
        self.assertEqual(self.bridge.stop(), 0)
        tasks = self.fakes.planfix_tasks()
        contacts = self.fakes.planfix_contacts()
        comments = self.fakes.planfix_comments()
        restore(self.bridge, to)
        self.fakes.clear_requests()
        self.bridge.start()
        self.wait_idle(30)
        self.assertEqual((len(self.fakes.planfix_tasks()), len(self.fakes.planfix_contacts()),
                          len(self.fakes.planfix_comments())), (len(tasks), len(contacts), len(comments)),
                         (self.pf_calls(), self.fakes.planfix_comments(), comments))
        # The restored bridge goes on with the second chat's task.
        second = [t for t in self.fakes.planfix_tasks() if t["id"] != task][0]["id"]
        self.post(chat_event("chatFragment", "bk-second", [msg("bk-second-m2", "Still here")],
                             name="Second", email="second@example.org"))
        self.wait_comment_posts(second, 1)

    def test_its_exit_codes(self):
        # "it says why, exits 1 and leaves nothing behind (without --to it exits 2)"; its help says
        # the same.
        r = self.bare("backup", "--config", self.bridge.write_config())
        self.assertEqual(r.returncode, 2)
        self.assertIn("backup needs --to PATH", r.stderr)
        r = self.bare("help", "backup")
        self.assertIn("Exit status: 0 written, 1 failed (nothing written at PATH), 2 no --to,\n"
                      "or the config's store section is wrong.", r.stdout)
        with open(self.bridge.config_path, "w") as f:
            json.dump({"store": {"path": 5}}, f)
        r = self.bare("backup", "--config", self.bridge.config_path, "--to", "b.db")
        self.assertEqual(r.returncode, 2)
        self.assertIn("store.path", r.stderr)

    def test_it_needs_only_store_path(self):
        # "Like the other store commands it needs only store.path."  A config of that alone, its
        # path relative to the config file (Configure: "relative to the config file"), and the
        # command run from elsewhere, with PATH relative to where it runs.
        self.three_chats()
        only = os.path.join(self.bridge.tmpdir, "only-store.json")
        with open(only, "w") as f:
            json.dump({"store": {"path": "bridge.db"}}, f)
        elsewhere = os.path.join(self.bridge.tmpdir, "elsewhere")
        os.mkdir(elsewhere)
        r = self.bare("backup", "--config", only, "--to", "copy.db", cwd=elsewhere)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.listdir(elsewhere), ["copy.db"])
        self.assertEqual(clients(os.path.join(elsewhere, "copy.db")), ["bk-0", "bk-1", "bk-2"])
        # The service's config names its secrets as file: values too, which the user running the
        # store commands may not read ("they need no secrets").
        full = dict(self.config)
        full["tracker"] = dict(full["tracker"], token="file:/nonexistent/planfix-token")
        full["store"] = {"path": self.store()}
        with open(only, "w") as f:
            json.dump(full, f)
        r = self.bare("backup", "--config", only, "--to", os.path.join(elsewhere, "copy-2.db"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.bare("dead-letters", "--config", only)
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, []), r.stderr)

    def as_nobody(self):
        """Runs a command as the service's user would: not root (NOBODY here), with a copy of the
        binary that user may run wherever the build tree is."""
        setpriv = need("setpriv")
        binary = os.path.join(self.bridge.tmpdir, "chatra-bridge")
        shutil.copy2(self.bridge.binary, binary)
        os.chmod(binary, 0o755)
        return lambda *args, cwd=None: subprocess.run(
            [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", binary]
            + list(args), cwd=cwd or "/", env=bare_env(), stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=60)

    def test_as_the_services_user(self):
        # "Run the store commands as that user, so that the database's files keep their owner:
        # sudo -u chatra-bridge chatra-bridge dead-letters (they need no secrets)", and the backup's
        # "its directory is ... not writable": the service's user is not root.
        if os.geteuid() != 0:
            self.skipTest("needs root to run as another user")
        self.three_chats()
        self.bridge.stop()
        state = os.path.join(self.bridge.tmpdir, "state")
        os.mkdir(state, 0o750)
        for name in os.listdir(self.bridge.tmpdir):
            if name.startswith("bridge.db"):
                os.rename(os.path.join(self.bridge.tmpdir, name), os.path.join(state, name))
        for p in [state] + [os.path.join(state, n) for n in os.listdir(state)]:
            os.chown(p, NOBODY, NOBODY)
        os.chmod(self.bridge.tmpdir, 0o755)
        self.config["store"]["path"] = os.path.join(state, "bridge.db")
        self.bridge.write_config()
        os.chmod(self.bridge.config_path, 0o644)
        run = self.as_nobody()
        r = run("dead-letters", "--config", self.bridge.config_path)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "[]"), r.stderr)
        for name in os.listdir(state):
            self.assertEqual(os.stat(os.path.join(state, name)).st_uid, NOBODY, name)
        # A directory the user may not write in: said, exit 1, nothing left.
        locked = os.path.join(self.bridge.tmpdir, "root-only")
        os.mkdir(locked, 0o755)
        to = os.path.join(locked, "b.db")
        r = run("backup", "--config", self.bridge.config_path, "--to", to)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("backup: cannot create a file beside %s: Permission denied" % to, r.stderr)
        self.assertIn("no backup written", r.stderr)
        self.assertEqual(os.listdir(locked), [])
        # Its own directory: the copy is its, readable by it only.
        to = os.path.join(state, "backup-1.db")
        r = run("backup", "--config", self.bridge.config_path, "--to", to)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = os.stat(to)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (NOBODY, 0o600))
        self.assertEqual(clients(to), ["bk-0", "bk-1", "bk-2"])
        for name in os.listdir(state):
            self.assertEqual(os.stat(os.path.join(state, name)).st_uid, NOBODY, name)


class TestBackupRedmineReadme(RedmineCase):
    def test_a_restored_issue_that_was_not_made_yet_is_not_made_twice(self):
        # "jobs that were waiting in the copy look in the tracker before they write", with Redmine:
        # a chat's issue waits (the API key refused: the tracker paused, no attempt counted) while
        # the backup is taken, is made once the key is right, and the restored copy finds it.
        key = os.path.join(self.bridge.tmpdir, "redmine-key.txt")
        with open(key, "w") as f:
            f.write(self.rm.admin_key)
        self.start(tracker={"api_key": "file:redmine-key.txt"})
        first = self.open_chat("rm-bk-1", "Hello", name="First", email="first@example.org")["id"]
        with open(key, "w") as f:
            f.write("0" * 40)
        os.kill(self.bridge.pid, signal.SIGHUP)
        wait_until(lambda: "reload: config" in self.bridge.log(), 10)
        self.say("rm-bk-1", "rm-bk-1-m2", "Anyone?", email="first@example.org")
        wait_until(lambda: tracker(self)["state"] == "paused", 10, message=lambda: str(tracker(self)))
        self.say("rm-bk-2", "rm-bk-2-m1", "Hello from the second", event="chatStarted", name="Second",
                 email="second@example.org")
        wait_until(lambda: self.health()["engine"]["inbox_pending"] == 0, 10)
        to = os.path.join(self.bridge.tmpdir, "bridge-1.db")
        r = subprocess.run([self.bridge.binary, "backup", "--config", self.bridge.config_path, "--to", to],
                           env=bare_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(key, "w") as f:
            f.write(self.rm.admin_key)
        os.kill(self.bridge.pid, signal.SIGHUP)
        wait_until(lambda: len(self.issues()) == 2, POLL_WAIT)
        self.wait_notes(first, 1)
        self.wait_idle(POLL_WAIT)
        self.assertEqual(self.bridge.stop(), 0)
        second = [i["id"] for i in self.issues() if i["id"] != first][0]
        notes = {n: self.notes(n) for n in (first, second)}
        restore(self.bridge, to)
        self.bridge.start()
        self.wait_idle(POLL_WAIT)
        self.assertEqual(sorted(i["id"] for i in self.issues()), sorted([first, second]))
        self.assertEqual({n: self.notes(n) for n in (first, second)}, notes)


class TestInstallReadme(unittest.TestCase):
    def test_a_second_install_keeps_the_admins_secrets(self):
        # "Your config and secrets are never overwritten: cmake --install keeps an existing
        # bridge.json and env".
        root = tempfile.mkdtemp(prefix="br-install-env-")
        self.addCleanup(shutil.rmtree, root, True)
        prefix = os.path.join(root, "p")
        cmake_install(prefix)
        env = os.path.join(prefix, "etc/chatra-bridge/env")
        with open(env, "w") as f:
            f.write("PLANFIX_TOKEN=%s\n" % TEST_ENV["PLANFIX_TOKEN"])
        os.chmod(env, 0o600)
        out = cmake_install(prefix)
        self.assertIn("Kept: %s (yours)" % env, out)
        with open(env) as f:
            self.assertEqual(f.read(), "PLANFIX_TOKEN=%s\n" % TEST_ENV["PLANFIX_TOKEN"])
        self.assertEqual(stat.S_IMODE(os.stat(env).st_mode), 0o600)

    def test_prefix_usr_puts_config_and_unit_where_the_package_does(self):
        # "With --prefix /usr, cmake --install puts the config and the unit where the package does
        # (/etc/chatra-bridge/, /lib/systemd/system/), not under /usr."  Into a DESTDIR, with the
        # unit naming the paths without it.
        root = tempfile.mkdtemp(prefix="br-install-usr-")
        self.addCleanup(shutil.rmtree, root, True)
        r = subprocess.run([need("cmake"), "--install", need_build_dir(), "--prefix", "/usr"],
                           env=dict(os.environ, DESTDIR=root), stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for path in ["usr/bin/chatra-bridge", "etc/chatra-bridge/bridge.json", "etc/chatra-bridge/env",
                     "lib/systemd/system/chatra-bridge.service", "usr/share/chatra-bridge/templates/en"]:
            self.assertTrue(os.path.exists(os.path.join(root, path)), path)
        self.assertFalse(os.path.exists(os.path.join(root, "usr/etc")))
        u = unit_settings(os.path.join(root, "lib/systemd/system/chatra-bridge.service"))
        self.assertEqual(u["Service.ExecStart"], ["/usr/bin/chatra-bridge run --config /etc/chatra-bridge/bridge.json"])
        self.assertEqual(u["Service.EnvironmentFile"], ["-/etc/chatra-bridge/env"])

    def test_the_check_of_step_3(self):
        # "Put the secrets its env: values name in /etc/chatra-bridge/env, one NAME=value a line" ...
        # "Check: sh -ac '. /etc/chatra-bridge/env; exec chatra-bridge check-config'", with
        # "--config P/etc/chatra-bridge/bridge.json" after cmake --install.
        root = tempfile.mkdtemp(prefix="br-install-check-")
        self.addCleanup(shutil.rmtree, root, True)
        prefix = os.path.join(root, "p")
        cmake_install(prefix)
        etc = os.path.join(prefix, "etc/chatra-bridge")
        env = bare_env()
        env["PATH"] = os.path.join(prefix, "bin") + ":" + env["PATH"]

        def check():
            return subprocess.run(["sh", "-ac", ". %s/env; exec chatra-bridge check-config --config %s/bridge.json"
                                   % (etc, etc)], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=30)

        # As installed (every secret commented out): each missing one is named.
        r = check()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for name in TEST_ENV:
            self.assertIn(name, r.stdout + r.stderr)
        with open(os.path.join(etc, "env"), "a") as f:
            for name, value in TEST_ENV.items():
                f.write("%s=%s\n" % (name, value))
        r = check()
        self.assertEqual((r.returncode, r.stdout.strip().splitlines()[-1]), (0, "%s/bridge.json: OK" % etc),
                         r.stdout + r.stderr)
        for value in TEST_ENV.values():
            self.assertNotIn(value, r.stdout + r.stderr)

    def maintainer_script(self, script, *args):
        """A maintainer script of packaging/debian with every command it may call stubbed:
        returns the calls."""
        stubs = tempfile.mkdtemp(prefix="br-stubs-")
        self.addCleanup(shutil.rmtree, stubs, True)
        log = os.path.join(stubs, "calls")
        for name in ("adduser", "deluser", "userdel", "systemctl", "getent", "rm", "deb-systemd-helper"):
            with open(os.path.join(stubs, name), "w") as f:
                f.write('#!/bin/sh\necho "%s $*" >> %s\n' % (name, log))
            os.chmod(os.path.join(stubs, name), 0o755)
        r = subprocess.run(["/bin/sh", os.path.join(SOURCE_DIR, "packaging/debian", script)] + list(args),
                           env={"PATH": stubs}, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        if not os.path.exists(log):
            return []
        with open(log) as f:
            return f.read().splitlines()

    def test_removal_stops_and_disables_a_purge_keeps_data_and_user(self):
        # "Removing the package stops and disables the service; a purge removes the config but
        # keeps the database and the chatra-bridge user."
        calls = self.maintainer_script("prerm", "remove")
        self.assertIn("systemctl --no-reload disable chatra-bridge.service", calls)
        if os.path.isdir("/run/systemd/system"):
            self.assertIn("systemctl stop chatra-bridge.service", calls)
        for step in ("remove", "purge"):
            calls = self.maintainer_script("postrm", step)
            self.assertEqual([c for c in calls if not c.startswith("systemctl daemon-reload")], [], step)


if __name__ == "__main__":
    unittest.main()
