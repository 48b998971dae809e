"""Issue 12, point 1: the Debian package.  `cpack -G DEB` in the build directory makes
chatra-bridge_<version>_<arch>.deb: the binary in /usr/bin, the templates in
/usr/share/chatra-bridge, the config and secrets file in /etc/chatra-bridge as conffiles, the
unit in /lib/systemd/system (clean under `systemd-analyze verify`), the runtime libraries as
dependencies, and maintainer scripts that make the service's user and never start an
unconfigured bridge.  The package's tree, unpacked anywhere, checks its own config.
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import BINARY, TEST_ENV  # noqa: E402
from install import analyze_exposure, analyze_verify, need, need_build_dir, unit_settings  # noqa: E402

UNIT = "lib/systemd/system/chatra-bridge.service"
LIBRARIES = ["libuv1", "libwebsockets17", "libwebsockets-evlib-uv", "libcurl4", "libjansson4", "libsqlite3-0",
             "libxml2", "libunistring2", "tzdata", "adduser"]


def run(args, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)


class TestPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        build = need_build_dir()
        cpack, dpkg_deb = need("cpack"), need("dpkg-deb")
        cls.tmp = tempfile.mkdtemp(prefix="br-package-")
        try:
            r = run([cpack, "-G", "DEB", "-B", cls.tmp, "--config", os.path.join(build, "CPackConfig.cmake")])
            if r.returncode != 0:
                raise AssertionError("cpack failed (%d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
            debs = [f for f in os.listdir(cls.tmp) if f.endswith(".deb")]
            if len(debs) != 1:
                raise AssertionError("cpack made %r:\n%s" % (debs, r.stdout))
            cls.deb = os.path.join(cls.tmp, debs[0])
            cls.info = run([dpkg_deb, "-I", cls.deb]).stdout
            cls.contents = run([dpkg_deb, "-c", cls.deb]).stdout
            cls.root = os.path.join(cls.tmp, "root")
            r = run([dpkg_deb, "-x", cls.deb, cls.root])
            if r.returncode != 0:
                raise AssertionError("dpkg-deb -x: %s" % r.stderr)
            cls.control = os.path.join(cls.tmp, "control")
            r = run([dpkg_deb, "-e", cls.deb, cls.control])
            if r.returncode != 0:
                raise AssertionError("dpkg-deb -e: %s" % r.stderr)
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def field(self, name):
        m = re.search(r"^ %s: (.*)$" % name, self.info, re.M)
        self.assertIsNotNone(m, "no %s in:\n%s" % (name, self.info))
        return m.group(1)

    def entries(self):
        """{path: (mode string, owner)} of the package's files ("./usr/bin/x" -> "/usr/bin/x")."""
        out = {}
        for line in self.contents.splitlines():
            parts = line.split()
            out[parts[5][1:].rstrip("/") or "/"] = (parts[0], parts[1])
        return out

    def test_name_version_dependencies(self):
        version = run([BINARY, "--version"]).stdout.split()[-1]
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        self.assertEqual(os.path.basename(self.deb), "chatra-bridge_%s_%s.deb" % (version, arch))
        self.assertEqual(self.field("Package"), "chatra-bridge")
        self.assertEqual(self.field("Version"), version)
        depends = [d.strip().split()[0] for d in self.field("Depends").split(",")]
        for lib in LIBRARIES:
            self.assertIn(lib, depends)

    def test_contents(self):
        e = self.entries()
        self.assertEqual(e["/usr/bin/chatra-bridge"][0], "-rwxr-xr-x")
        for path in ["/usr/share/chatra-bridge/templates/en/task_title.txt",
                     "/usr/share/chatra-bridge/templates/en/task_description.html",
                     "/usr/share/chatra-bridge/templates/ru/task_description.textile",
                     "/usr/share/doc/chatra-bridge/README.md", "/" + UNIT, "/etc/chatra-bridge/bridge.json"]:
            self.assertIn(path, e)
            self.assertEqual(e[path][0], "-rw-r--r--", path)
        self.assertEqual(e["/etc/chatra-bridge/env"][0], "-rw-------")
        for path, (_, owner) in e.items():
            self.assertEqual(owner, "root/root", path)
            self.assertFalse(path.startswith("/usr/local"), path)
        # The same templates as the source tree's.
        src = os.path.join(os.environ.get("BR_SOURCE_DIR") or os.path.join(os.path.dirname(BINARY), ".."),
                           "templates")
        for lang in ("en", "ru"):
            self.assertEqual(sorted(os.listdir(os.path.join(self.root, "usr/share/chatra-bridge/templates", lang))),
                             sorted(os.listdir(os.path.join(src, lang))), lang)

    def test_conffiles_and_maintainer_scripts(self):
        with open(os.path.join(self.control, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/chatra-bridge/bridge.json", "/etc/chatra-bridge/env"])
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(self.control, script)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o755, script)
            r = run(["sh", "-n", path])
            self.assertEqual(r.returncode, 0, r.stderr)
            shellcheck = need("shellcheck")
            r = run([shellcheck, path])
            self.assertEqual(r.returncode, 0, r.stdout)

    def run_script(self, script, *args, user_exists=False):
        """A maintainer script with adduser, getent and systemctl replaced by stubs that record
        their arguments: returns the calls."""
        stubs = os.path.join(self.tmp, "stubs-%s" % script)
        os.makedirs(stubs, exist_ok=True)
        log = os.path.join(stubs, "calls")
        for name in ("adduser", "systemctl", "getent"):
            with open(os.path.join(stubs, name), "w") as f:
                rc = 0 if name != "getent" or user_exists else 2
                f.write('#!/bin/sh\necho "%s $*" >> %s\nexit %d\n' % (name, log, rc))
            os.chmod(os.path.join(stubs, name), 0o755)
        if os.path.exists(log):
            os.remove(log)
        env = {"PATH": "%s:/usr/bin:/bin" % stubs}
        r = run(["sh", os.path.join(self.control, script)] + list(args), env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        if not os.path.exists(log):
            return []
        with open(log) as f:
            return f.read().splitlines()

    def test_postinst_makes_the_user_once_and_starts_nothing(self):
        calls = self.run_script("postinst", "configure", "")
        self.assertEqual(calls[0], "getent passwd chatra-bridge")
        self.assertEqual(calls[1], "adduser --system --group --quiet --home /var/lib/chatra-bridge "
                                   "--no-create-home --comment chatra-bridge daemon chatra-bridge")
        if not os.path.isdir("/run/systemd/system"):
            self.assertEqual(len(calls), 2, calls)
        self.assertFalse([c for c in calls if re.search(r"systemctl .*\b(start|enable)\b", c)], calls)
        # An existing user is kept.
        calls = self.run_script("postinst", "configure", "0.0.9", user_exists=True)
        self.assertEqual(calls[0], "getent passwd chatra-bridge")
        self.assertFalse([c for c in calls if c.startswith("adduser")], calls)

    def test_prerm_disables_on_removal_only(self):
        self.assertIn("systemctl --no-reload disable chatra-bridge.service", self.run_script("prerm", "remove"))
        self.assertEqual(self.run_script("prerm", "upgrade", "0.2.0"), [])

    def test_the_unit(self):
        u = unit_settings(os.path.join(self.root, UNIT))
        self.assertEqual(u["Service.ExecStart"], ["/usr/bin/chatra-bridge run --config /etc/chatra-bridge/bridge.json"])
        self.assertEqual(u["Service.EnvironmentFile"], ["-/etc/chatra-bridge/env"])
        self.assertEqual(u["Service.User"], ["chatra-bridge"])
        self.assertEqual(u["Service.StateDirectory"], ["chatra-bridge"])
        # verify checks that ExecStart's program exists: /usr/bin/chatra-bridge is not
        # installed here, so the unit is verified with that one path pointed at the unpacked
        # package's binary, and nothing else changed.
        with open(os.path.join(self.root, UNIT)) as f:
            text = f.read()
        self.assertEqual(text.count("/usr/bin/chatra-bridge"), 1)
        unit = os.path.join(self.tmp, "chatra-bridge.service")
        with open(unit, "w") as f:
            f.write(text.replace("/usr/bin/chatra-bridge", os.path.join(self.root, "usr/bin/chatra-bridge")))
        self.assertEqual(analyze_verify(unit), (0, ""))
        self.assertLessEqual(analyze_exposure(unit), 2.0)

    def test_the_unpacked_tree_checks_its_config(self):
        # The package's binary, unpacked anywhere, finds the package's templates.
        binary = os.path.join(self.root, "usr/bin/chatra-bridge")
        config = os.path.join(self.root, "etc/chatra-bridge/bridge.json")
        r = run([binary, "check-config", "--config", config], env=dict(os.environ, **TEST_ENV))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip().splitlines()[-1], "%s: OK" % config)
        shutil.rmtree(os.path.join(self.root, "usr/share/chatra-bridge"))
        try:
            r = run([binary, "check-config", "--config", config], env=dict(os.environ, **TEST_ENV))
            self.assertEqual(r.returncode, 1)
            self.assertIn("the default templates are not in %s/usr/bin/../share/chatra-bridge/templates"
                          % self.root, r.stdout + r.stderr)
        finally:
            run(["dpkg-deb", "-x", self.deb, self.root])


if __name__ == "__main__":
    unittest.main()
