"""Helpers for the install and package tests (tests/integration/test_install.py,
test_package.py): the build directory of the binary under test, `cmake --install` into a
temporary prefix, and the tools those tests need (cmake, cpack, dpkg-deb, systemd-analyze).

A missing tool skips a test outside CI and fails it in CI (CI=true), where
scripts/deps.sh --test has installed it.
"""

import os
import re
import shutil
import subprocess
import unittest

from harness import BINARY

BUILD_DIR = os.path.dirname(os.path.realpath(BINARY))


def need(tool):
    """The path of tool; a skip outside CI, a failure in CI, when it is missing."""
    path = shutil.which(tool)
    if path:
        return path
    why = "%s is not installed (scripts/deps.sh --test installs it)" % tool
    if os.environ.get("CI") == "true":
        raise AssertionError(why)
    raise unittest.SkipTest(why)


def need_build_dir():
    """The build directory of BR_BINARY; it must hold CMake's install script."""
    if not os.path.exists(os.path.join(BUILD_DIR, "cmake_install.cmake")):
        raise AssertionError("%s is not a CMake build directory (BR_BINARY=%s)" % (BUILD_DIR, BINARY))
    return BUILD_DIR


def cmake_install(prefix):
    """`cmake --install BUILD --prefix prefix`; returns its output (raises when it fails)."""
    r = subprocess.run([need("cmake"), "--install", need_build_dir(), "--prefix", prefix],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("cmake --install failed (%d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
    return r.stdout


def analyze_verify(unit):
    """`systemd-analyze verify unit`: (exit code, everything it printed)."""
    r = subprocess.run([need("systemd-analyze"), "verify", unit], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def analyze_exposure(unit):
    """The overall exposure level (0.0 to 10.0) of `systemd-analyze security --offline=yes`."""
    r = subprocess.run([need("systemd-analyze"), "security", "--offline=yes", "--no-pager", unit],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    if m is None:
        raise AssertionError("no exposure level from systemd-analyze security:\n%s%s" % (r.stdout, r.stderr))
    return float(m.group(1))


def unit_settings(path):
    """The unit file as {"Section.Key": [values...]} (a key may be given more than once)."""
    out, section = {}, ""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            key, _, value = line.partition("=")
            out.setdefault("%s.%s" % (section, key.strip()), []).append(value.strip())
    return out


def syscall_groups():
    """systemd's system call groups ({"@system-service": {"@default", "read", ...}, ...}) as
    `systemd-analyze syscall-filter` lists them."""
    r = subprocess.run([need("systemd-analyze"), "syscall-filter", "--no-pager"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    groups, current = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), set())
        elif line.startswith("    ") and current is not None and not line.strip().startswith("#"):
            current.add(line.strip())
        elif not line.strip() or line.startswith("#"):
            current = None
    if "@system-service" not in groups:
        raise AssertionError("systemd-analyze syscall-filter lists no @system-service:\n%s" % r.stdout[:2000])
    return groups


def syscall_filter(settings):
    """The system calls a unit's SystemCallFilter= lines allow: the first line's allow list,
    less every later "~" list (systemd's reading of them)."""
    groups = syscall_groups()

    def expand(names, seen=()):
        out = set()
        for n in names:
            if n.startswith("@"):
                if n not in seen:
                    out |= expand(groups[n], seen + (n,))
            else:
                out.add(n)
        return out

    lines = settings.get("Service.SystemCallFilter", [])
    if not lines or lines[0].startswith("~"):
        raise AssertionError("the unit has no SystemCallFilter= allow list: %r" % lines)
    allowed = expand(lines[0].split())
    for line in lines[1:]:
        if not line.startswith("~"):
            raise AssertionError("a SystemCallFilter= line after the first that is not a deny list: %r" % line)
        allowed -= expand(line[1:].split())
    return allowed


def sanitized():
    """Whether the binary under test was built with AddressSanitizer (BR_SANITIZE=ON)."""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            return any(line.strip() == "BR_SANITIZE:BOOL=ON" for line in f)
    except OSError:
        return False
