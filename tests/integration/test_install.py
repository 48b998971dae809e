"""Issue 12, point 1: install.  `cmake --install` puts the binary, the default templates, the
config and the systemd unit under a prefix; the installed binary finds its templates from its
own path (the tree is moved after the install, and the source tree cannot be what it reads:
the installed title template is marked); BR_TEMPLATES_DIR and the config's templates_dir
override that; an admin's config survives a second install; the unit passes
`systemd-analyze verify`, and its system call filter allows every call the bridge makes on
its main path (traced with strace).
"""

import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import SOURCE_DIR, TEST_ENV, VALGRIND, chat_event, msg  # noqa: E402
from e2e import E2ECase  # noqa: E402
from install import (analyze_exposure, analyze_verify, cmake_install, need, sanitized,  # noqa: E402
                     syscall_filter, unit_settings)

TEMPLATES = os.path.join("share", "chatra-bridge", "templates")
# Added to the installed copy of the default title: a task titled so was made from the
# installed templates, not from the source tree's.
MARK = " [installed]"


class InstalledCase(E2ECase):
    """One install for the class, moved after the install to another directory (unless MOVE
    is false): nothing in it may depend on where it was installed, or on the build and source
    trees."""

    MOVE = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp(prefix="br-install-")
        try:
            cls.prefix = os.path.join(cls.root, "installed")
            cmake_install(cls.prefix)
            if cls.MOVE:
                os.rename(cls.prefix, os.path.join(cls.root, "moved"))
                cls.prefix = os.path.join(cls.root, "moved")
            cls.binary = os.path.join(cls.prefix, "bin", "chatra-bridge")
            title = os.path.join(cls.prefix, TEMPLATES, "en", "task_title.txt")
            with open(title) as f:
                text = f.read()
            with open(title, "w") as f:
                f.write(text.rstrip("\n") + MARK)
        except BaseException:
            shutil.rmtree(cls.root, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.bridge.binary = self.binary

    def copy_templates(self, dest, title):
        """The installed templates copied to dest, with the English task title replaced."""
        shutil.copytree(os.path.join(self.prefix, TEMPLATES), dest)
        with open(os.path.join(dest, "en", "task_title.txt"), "w") as f:
            f.write(title)
        return dest


class TestInstall(InstalledCase):
    def test_the_tree(self):
        for path in ["bin/chatra-bridge", TEMPLATES + "/en/task_description.html",
                     TEMPLATES + "/ru/task_description.textile", TEMPLATES + "/en/messages.html",
                     "share/doc/chatra-bridge/README.md", "etc/chatra-bridge/bridge.json",
                     "etc/chatra-bridge/env", "lib/systemd/system/chatra-bridge.service"]:
            self.assertTrue(os.path.isfile(os.path.join(self.prefix, path)), path)
        self.assertTrue(os.access(self.binary, os.X_OK))
        # Templates only: the engine's sources stay in the source tree.
        self.assertFalse(os.path.exists(os.path.join(self.prefix, TEMPLATES, "tpl.c")))
        # The secrets file is root's alone; the config holds none.
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.prefix, "etc/chatra-bridge/env")).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.prefix, "etc/chatra-bridge/bridge.json")).st_mode),
                         0o644)

    def test_a_webhook_becomes_a_task_with_the_installed_templates(self):
        # The harness's config names no template: every text is a default.
        self.assertNotIn("title", self.config["channels"][0]["task"])
        self.start_bridge()
        task, _ = self.open_chat("inst-1", [msg("inst-1-m1", "Is the <b>kettle</b> in stock?")],
                                 name="Maria", email="maria@example.org")
        t = self.fakes.planfix_task(task)
        self.assertEqual(t["name"], "Chat with Maria (shop)" + MARK)
        # The default description (templates/en/task_description.html), as installed.
        d = t["description"]
        self.assertIn("<b>Name:</b> Maria<br>", d)
        self.assertIn('<b>E-mail:</b> <a href="mailto:maria@example.org">maria@example.org</a><br>', d)
        self.assertIn("<b>Channel:</b> shop<br>", d)
        self.assertRegex(d, r"<hr>\n<p><b>Visitor</b> <i>[^<]+</i><br>\nIs the &lt;b&gt;kettle&lt;/b&gt; in stock\?</p>")
        # The bridge's own words come from there too: a new chat of this visitor is a new visit.
        self.wait_idle()
        self.post(chat_event("chatStarted", "inst-1", [msg("inst-1-m2", "Me again")], name="Maria",
                             chatId="chat-two"))
        posts = self.wait_comment_posts(task, 2)
        self.assertEqual([p["body"]["description"] for p in posts],
                         ["Me again", "<b>New visit</b>: no device details."])

    def test_without_its_templates_it_names_where_they_belong(self):
        # The binary alone, elsewhere: no fallback to the build machine's source tree.
        alone = os.path.join(self.root, "alone-%d" % os.getpid())
        os.makedirs(os.path.join(alone, "bin"))
        try:
            shutil.copy2(self.binary, os.path.join(alone, "bin"))
            self.bridge.binary = os.path.join(alone, "bin", "chatra-bridge")
            r = self.bridge.run("check-config", "--config", self.bridge.write_config())
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            out = r.stdout + r.stderr
            self.assertIn("the default templates are not in %s/bin/../%s (No such file or directory): "
                          "set templates_dir, or BR_TEMPLATES_DIR in the environment" % (alone, TEMPLATES), out)
            self.assertIn("1 problem in", out)
            self.assertNotIn(SOURCE_DIR, out)
            # Given them through the environment, it runs.
            self.bridge.env["BR_TEMPLATES_DIR"] = os.path.join(self.prefix, TEMPLATES)
            r = self.bridge.run("check-config", "--config", self.bridge.config_path)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        finally:
            shutil.rmtree(alone, ignore_errors=True)

    def test_BR_TEMPLATES_DIR_and_templates_dir(self):
        env_dir = self.copy_templates(os.path.join(self.bridge.tmpdir, "env-templates"),
                                      "From the environment: {{visitor.name}}")
        self.copy_templates(os.path.join(self.bridge.tmpdir, "my-templates"), "From the config: {{visitor.name}}")
        self.bridge.env["BR_TEMPLATES_DIR"] = env_dir
        self.start_bridge()
        task, _ = self.open_chat("inst-env", name="Ada")
        self.assertEqual(self.fakes.planfix_task(task)["name"], "From the environment: Ada")
        # The config's templates_dir (relative to the config file) wins over the environment.
        self.bridge.stop()
        self.config["templates_dir"] = "my-templates"
        self.bridge.start()
        task, _ = self.open_chat("inst-cfg", name="Bo")
        self.assertEqual(self.fakes.planfix_task(task)["name"], "From the config: Bo")
        # Without either, the installed ones again.
        self.bridge.stop()
        del self.config["templates_dir"]
        del self.bridge.env["BR_TEMPLATES_DIR"]
        self.bridge.start()
        task, _ = self.open_chat("inst-none", name="Cy")
        self.assertEqual(self.fakes.planfix_task(task)["name"], "Chat with Cy (shop)" + MARK)
        # A templates_dir that is not there is a problem of the config, named by its key.
        self.bridge.stop()
        self.config["templates_dir"] = "no-such-dir"
        r = self.bridge.run("check-config", "--config", self.bridge.write_config())
        self.assertEqual(r.returncode, 1)
        self.assertIn("templates_dir: %s/no-such-dir: No such file or directory" % self.bridge.tmpdir,
                      r.stdout + r.stderr)

    def test_the_installed_config(self):
        path = os.path.join(self.prefix, "etc/chatra-bridge/bridge.json")
        with open(path) as f:
            config = json.load(f)
        self.assertEqual(config["store"]["path"], "/var/lib/chatra-bridge/bridge.db")
        # With its secrets in the environment, the example is a valid config.
        r = self.bridge.run("check-config", "--config", path)
        self.assertEqual((r.returncode, r.stdout.strip().splitlines()[-1]), (0, "%s: OK" % path), r.stdout + r.stderr)
        # Every env: value it names is in the secrets file, waiting for its value.
        with open(os.path.join(self.prefix, "etc/chatra-bridge/env")) as f:
            env_file = f.read()
        names = re.findall(r'"env:([A-Z0-9_]+)"', json.dumps(config))
        self.assertEqual(set(names), set(TEST_ENV))
        for name in names:
            self.assertIn("\n#%s=\n" % name, env_file)

    def test_a_second_install_keeps_the_admins_config(self):
        prefix = os.path.join(self.root, "again-%d" % os.getpid())
        try:
            cmake_install(prefix)
            config = os.path.join(prefix, "etc/chatra-bridge/bridge.json")
            with open(config, "w") as f:
                f.write('{"mine": true}\n')
            unit = os.path.join(prefix, "lib/systemd/system/chatra-bridge.service")
            os.remove(unit)
            out = cmake_install(prefix)
            self.assertIn("Kept: %s (yours)" % config, out)
            with open(config) as f:
                self.assertEqual(f.read(), '{"mine": true}\n')
            self.assertTrue(os.path.isfile(unit))
        finally:
            shutil.rmtree(prefix, ignore_errors=True)


class TestUnit(InstalledCase):
    MOVE = False  # the unit names the paths of its install

    def unit(self):
        return os.path.join(self.prefix, "lib/systemd/system/chatra-bridge.service")

    def test_the_unit(self):
        u = unit_settings(self.unit())
        etc = os.path.join(self.prefix, "etc/chatra-bridge")
        self.assertEqual(u["Service.ExecStart"],
                         ["%s run --config %s/bridge.json" % (self.binary, etc)])
        self.assertEqual(u["Service.EnvironmentFile"], ["-%s/env" % etc])
        self.assertEqual(u["Service.ExecReload"], ["/bin/kill -HUP $MAINPID"])
        for key, value in [("Type", "simple"), ("User", "chatra-bridge"), ("Group", "chatra-bridge"),
                           ("StateDirectory", "chatra-bridge"), ("Restart", "on-failure"),
                           ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                           ("PrivateTmp", "yes"), ("PrivateDevices", "yes"),
                           ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX")]:
            self.assertEqual(u.get("Service." + key), [value], key)
        self.assertEqual(u["Install.WantedBy"], ["multi-user.target"])

    def test_systemd_analyze(self):
        # Offline: verify reads the unit file itself and needs no running systemd.
        rc, out = analyze_verify(self.unit())
        self.assertEqual((rc, out), (0, ""))
        self.assertLessEqual(analyze_exposure(self.unit()), 2.0)

    def test_the_system_call_filter_allows_what_the_bridge_does(self):
        """The bridge's main path (start, a webhook, a task, a comment, shutdown) under strace:
        every system call it makes is one the unit's SystemCallFilter= allows, every socket is
        of a family RestrictAddressFamilies= allows, and no memory is made writable and
        executable (MemoryDenyWriteExecute=)."""
        if VALGRIND or sanitized():
            self.skipTest("under valgrind or AddressSanitizer, the calls are theirs too")
        strace = need("strace")
        allowed = syscall_filter(unit_settings(self.unit()))
        trace = os.path.join(self.bridge.tmpdir, "strace.txt")
        wrapper = os.path.join(self.bridge.tmpdir, "traced-bridge")
        # As the unit runs it: not as root (SQLite, for one, hands its files to the
        # database's owner when it runs as root).
        user = ""
        if os.geteuid() == 0:
            user = "%s --reuid=65534 --regid=65534 --clear-groups " % need("setpriv")
            os.chown(self.bridge.tmpdir, 65534, 65534)
            os.chmod(self.root, 0o755)
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nexec %s%s -f -qq -o %s %s "$@"\n' % (user, strace, trace, self.binary))
        os.chmod(wrapper, 0o755)
        self.bridge.binary = wrapper
        self.start_bridge()
        task, _ = self.open_chat("traced-1", name="Tracy")
        self.post(chat_event("chatFragment", "traced-1", [msg("traced-1-m2", "And a comment")], name="Tracy"))
        self.wait_comment_posts(task, 1)
        # SIGTERM to the bridge itself (strace's child): strace then exits with its exit code.
        with open("/proc/%d/task/%d/children" % (self.bridge.pid, self.bridge.pid)) as f:
            children = f.read().split()
        self.assertEqual(len(children), 1, children)
        os.kill(int(children[0]), signal.SIGTERM)
        self.assertEqual(self.bridge.proc.wait(30), 0, self.bridge.log_tail())

        with open(trace) as f:
            lines = f.read().splitlines()
        calls = set()
        for line in lines:
            m = re.match(r"^\d+ +([a-z0-9_]+)\(", line)
            if m:
                calls.add(m.group(1))
        self.assertIn("epoll_wait", calls)  # the trace saw the loop
        self.assertEqual(sorted(calls - allowed), [], "system calls the unit's filter refuses")
        families = set(re.findall(r" socket\((AF_[A-Z0-9]+),", "\n".join(lines)))
        self.assertTrue(families, "no socket in the trace")
        self.assertLessEqual(families, {"AF_INET", "AF_INET6", "AF_UNIX"})
        wx = [line for line in lines if re.search(r" (mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC", line)
              or re.search(r" (mprotect|pkey_mprotect)\([^,]+, [^,]+, [A-Z_|]*PROT_EXEC", line)]
        self.assertEqual(wx, [])


if __name__ == "__main__":
    unittest.main()
