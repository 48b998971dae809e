"""A small disk of a test's own: a tmpfs on a fresh temporary directory, to fill and free.

Mounting needs root (CI runs the suite as root); without it the test that asks for a
SmallDisk is skipped.  Every mount is undone when the test ends, and (lazily) when the
process exits or is told to stop.
"""

import atexit
import errno
import os
import signal
import subprocess
import tempfile
import unittest

_mounted = set()


def _umount(path, lazy=False):
    r = subprocess.run(["umount"] + (["-l"] if lazy else []) + [path], capture_output=True, text=True)
    return r.returncode == 0


def _umount_all_lazily():
    for path in list(_mounted):
        if _umount(path, lazy=True):
            _mounted.discard(path)
            os.rmdir(path)


atexit.register(_umount_all_lazily)

# harness.py stops its processes on SIGTERM; our mounts go too (lazily: the bridge may still
# hold its files open for a moment).
_previous_sigterm = signal.getsignal(signal.SIGTERM)
if callable(_previous_sigterm):
    def _on_sigterm(signum, frame):
        _umount_all_lazily()
        _previous_sigterm(signum, frame)

    signal.signal(signal.SIGTERM, _on_sigterm)


class SmallDisk:
    """A tmpfs mounted on a fresh temporary directory; fill() and free() its space."""

    def __init__(self, size="16m"):
        if os.geteuid() != 0:
            raise unittest.SkipTest("mounting a tmpfs needs root (CI runs the suite as root)")
        self.path = tempfile.mkdtemp(prefix="br-fulldisk-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", self.path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.path)
            raise unittest.SkipTest("cannot mount a tmpfs here (%s): the test needs root with mount rights, "
                                    "as in CI" % (r.stderr.strip() or r.returncode))
        _mounted.add(self.path)
        self.filler = os.path.join(self.path, "filler")

    def available(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave=0):
        """Write the filler file until at most leave bytes are free (0: the disk is full)."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            chunk = b"\0" * 65536
            while True:
                want = self.available() - leave
                if want <= 0:
                    return
                try:
                    os.write(fd, chunk[:min(len(chunk), want)])
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    return
        finally:
            os.close(fd)

    def free(self):
        os.remove(self.filler)

    def unmount(self, bridge=None):
        if self.path not in _mounted:
            return
        if not _umount(self.path):
            # Still busy: the bridge must have outlived its stop; end it, then try again.
            if bridge is not None and bridge.running:
                bridge.kill(signal.SIGKILL)
            if not _umount(self.path):
                _umount(self.path, lazy=True)
        _mounted.discard(self.path)
        os.rmdir(self.path)
