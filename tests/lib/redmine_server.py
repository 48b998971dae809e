"""A real Redmine (Debian 12's redmine + redmine-sqlite + puma packages) for the tests.

Each RedmineServer is a private instance: a copy of the packaged default SQLite database in a
temp directory (DATABASE_URL overrides /etc/redmine/default/database.yml), with the REST API
enabled and the admin's forced password change switched off before the server starts (Redmine
caches settings).  It listens on 127.0.0.1 only and is stopped by its PID.

    with RedmineServer() as rm:
        rm.url, rm.admin_key
        rm.api("POST", "/projects.json", {"project": {...}})

When the packages are not installed, RedmineServer.available() says why, and tests skip with
that message (scripts/deps.sh --test installs them, so CI runs them).
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import harness
from harness import free_port

REDMINE_DIR = "/usr/share/redmine"
PACKAGED_DB = "/var/lib/dbconfig-common/sqlite3/redmine/instances/default/redmine_default"
GEMFILE_LOCAL = os.path.join(REDMINE_DIR, "Gemfile.local")


class RedmineServer:
    @staticmethod
    def available():
        """None when Redmine can run here, else the reason it cannot."""
        if not os.path.isdir(REDMINE_DIR):
            return "the redmine package is not installed (scripts/deps.sh --test installs it)"
        if not os.path.exists(PACKAGED_DB):
            return "the redmine-sqlite package has not created %s" % PACKAGED_DB
        if shutil.which("rackup") is None:
            return "rackup is missing (package puma / ruby-rack)"
        gemfile = ""
        if os.path.exists(GEMFILE_LOCAL):
            with open(GEMFILE_LOCAL) as f:
                gemfile = f.read()
        if "puma" not in gemfile:
            return "%s does not name puma (scripts/deps.sh --test adds it)" % GEMFILE_LOCAL
        return None

    def __init__(self, timeout=90):
        why = self.available()
        if why:
            raise RuntimeError(why)
        self.tmpdir = tempfile.mkdtemp(prefix="br-redmine-")
        self.db = os.path.join(self.tmpdir, "redmine.db")
        shutil.copyfile(PACKAGED_DB, self.db)
        con = sqlite3.connect(self.db)
        with con:
            con.execute("DELETE FROM settings WHERE name='rest_api_enabled'")
            con.execute("INSERT INTO settings(name, value, updated_on) VALUES('rest_api_enabled', '1', "
                        "datetime('now'))")
            con.execute("UPDATE users SET must_change_passwd=0 WHERE login='admin'")
        con.close()
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        env = dict(os.environ, RAILS_ENV="production", DATABASE_URL="sqlite3:" + self.db)
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(k, None)
        self.log_path = os.path.join(self.tmpdir, "server.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(["rackup", "-p", str(self.port), "-o", "127.0.0.1", "config.ru"],
                                         cwd=REDMINE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=harness._die_with_parent)
        # Stopped with the other processes the tests started when the runner exits or is terminated.
        harness._live.add(self.proc)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("redmine exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                self.admin_key = self._admin_key()
                break
            except (OSError, urllib.error.URLError, ValueError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redmine did not answer within %d s:\n%s" % (timeout, self.log_tail()))
                time.sleep(0.3)

    def _admin_key(self):
        req = urllib.request.Request(self.url + "/users/current.json")
        req.add_header("Authorization", "Basic YWRtaW46YWRtaW4=")  # admin:admin, the packaged default
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())["user"]["api_key"]

    def api(self, method, path, body=None, key=None, switch_user=None):
        """(status, parsed JSON or None) of a REST call as the admin (or key / switched user)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("X-Redmine-API-Key", key or self.admin_key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if switch_user:
            req.add_header("X-Redmine-Switch-User", switch_user)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw.strip() else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw) if raw.strip() else None
            except ValueError:
                return e.code, None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        """Stops the server this object started (its own process group) and removes its files."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        harness._live.discard(self.proc)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
