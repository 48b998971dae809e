"""Helpers for the integration tests: the real chatra-bridge binary against fake upstreams.

The helpers live in tests/lib (this file, e2e.py, redmine_server.py, redmine_proxy.py), apart
from the test files in tests/integration.  Each test file puts tests/lib on sys.path itself,
relative to its own location, before it imports a helper; so it runs the same under CTest, by
hand (cd tests/integration && python3 -m unittest test_fakes) and from any directory.  A test
file in tests/integration/ usually reads:

    import os
    import sys
    import unittest

    # The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

    from harness import BridgeTestCase, chat_event, msg, wait_until  # noqa: E402

    class TestReplies(BridgeTestCase):
        def test_first_message_creates_a_task(self):
            self.start_bridge(channel={"close_on_leave": False})
            status, _ = self.bridge.post_chatra(chat_event("chatStarted", "client-1",
                                                           [msg("m1", "Hello")]))
            self.assertEqual(status, 200)
            tasks = wait_until(lambda: self.fakes.planfix_tasks(), message="no task created")

Every process this module starts is stopped by the object that started it, by
BridgeTestCase's cleanups, at interpreter exit, and on SIGTERM; the fakes also
exit when their parent dies and the bridge gets SIGKILL when its parent dies.
Set BR_KEEP_TMP=1 to keep the temporary directories (config, logs, store).

The Chatra sample webhooks come from tests/data/chatra (sample()); the bridge binary from
BR_BINARY, else build/chatra-bridge in this checkout.  Nothing outside the checkout is read.

Python 3 standard library only.
"""

import atexit
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("BR_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
FAKES_DIR = os.path.normpath(os.path.join(HERE, "..", "fakes"))
BINARY = os.environ.get("BR_BINARY") or os.path.join(SOURCE_DIR, "build", "chatra-bridge")
KEEP_TMP = bool(os.environ.get("BR_KEEP_TMP"))

# Fixed test secrets.  The bridge's config refers to them as env:NAME.
PLANFIX_TOKEN = "pf-token-1234567890"
PLANFIX_WEBHOOK_SECRET = "pf-hook-secret-abcdef"
CHATRA_SHOP_WEBHOOK_SECRET = "shop-hook-secret-123456"
CHATRA_SHOP_PUBLIC_KEY = "chatra-public-key-1"
CHATRA_SHOP_SECRET_KEY = "chatra-secret-key-1"
TEST_ENV = {
    "PLANFIX_TOKEN": PLANFIX_TOKEN,
    "PLANFIX_WEBHOOK_SECRET": PLANFIX_WEBHOOK_SECRET,
    "CHATRA_SHOP_WEBHOOK_SECRET": CHATRA_SHOP_WEBHOOK_SECRET,
    "CHATRA_SHOP_PUBLIC_KEY": CHATRA_SHOP_PUBLIC_KEY,
    "CHATRA_SHOP_SECRET_KEY": CHATRA_SHOP_SECRET_KEY,
}

ANNA = {"name": "Anna Smirnova", "email": "anna@example.com",
        "tracker_user": "user:5", "chatra_agent_id": "bnRzp4CioKudG4aHm"}
BORIS = {"name": "Boris Petrov", "email": "boris@example.com",
         "tracker_user": "user:6", "chatra_agent_id": "agentBoris0000001"}
DEFAULT_AGENT_ID = "defaultAgent00001"
WATCHER = "user:7"

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


# --- process bookkeeping ------------------------------------------------------------

_live = set()       # Popen objects started here and not yet reaped
_tmpdirs = set()    # temporary directories to remove at exit


def _reap(p, sig=signal.SIGTERM, timeout=5.0):
    """Stop one process we started, by PID: sig (None: the caller has sent it already), then
    SIGKILL after timeout.  Returns its exit code.  A process is asked once: a second SIGTERM
    would only race its own shutdown."""
    if p.poll() is None:
        if sig is not None:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    _live.discard(p)
    return p.returncode


def _cleanup_all():
    for p in list(_live):
        _reap(p, signal.SIGKILL)
    if not KEEP_TMP:
        for d in list(_tmpdirs):
            shutil.rmtree(d, ignore_errors=True)
            _tmpdirs.discard(d)


atexit.register(_cleanup_all)

if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    def _on_sigterm(signum, frame):
        # This runs between two bytecodes of the main thread, perhaps while it holds a lock
        # of a Popen (wait) or of this module: take no lock and wait for nothing.  SIGKILL
        # every process still ours, by PID, remove the temporary directories, and die of
        # the signal.
        for p in list(_live):
            if p.returncode is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except OSError:
                    pass
        if not KEEP_TMP:
            for d in list(_tmpdirs):
                shutil.rmtree(d, ignore_errors=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, _on_sigterm)


def _mkdtemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.add(d)
    return d


def _rmtree(d):
    if d and not KEEP_TMP:
        shutil.rmtree(d, ignore_errors=True)
        _tmpdirs.discard(d)


def _child_env(extra=None):
    """Our environment without HTTP proxies (libcurl and urllib honour them), plus extra."""
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


try:
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl  # noqa: B018 -- Linux only
except (ImportError, OSError, AttributeError):
    _libc = None


def _die_with_parent():
    # Runs in the child between fork and exec: SIGKILL it when the test runner dies
    # (PR_SET_PDEATHSIG), so a runner killed by a timeout leaves no bridge behind.
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL)


def _tail(path, lines=80):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log at %s)" % path
    return "\n".join(text.splitlines()[-lines:])


# BR_VALGRIND=1 runs the bridge under valgrind: a definite leak or an invalid read makes it
# exit 99 at shutdown, which BridgeTestCase's exit-code check turns into a failure.
VALGRIND = (["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
             "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"]
            if os.environ.get("BR_VALGRIND") == "1" else [])


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- HTTP ---------------------------------------------------------------------------

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Headers(dict):
    """A dict of HTTP headers with case-insensitive lookups (keys are stored lower-case)."""

    def __init__(self, items=()):
        super().__init__((k.lower(), v) for k, v in dict(items).items())

    def __getitem__(self, k):
        return super().__getitem__(k.lower())

    def __contains__(self, k):
        return super().__contains__(k.lower())

    def get(self, k, default=None):
        return super().get(k.lower(), default)


class Response(tuple):
    """(status, body text) that also has .status, .body, .headers and .json()."""

    def __new__(cls, status, body, headers=None):
        r = tuple.__new__(cls, (status, body))
        r.headers = Headers(headers or {})
        return r

    status = property(lambda self: self[0])
    body = property(lambda self: self[1])

    def json(self):
        return json.loads(self.body)


def http(method, url, body=None, headers=None, timeout=10):
    """One HTTP request without proxies.  body: dict/list (sent as JSON), str, bytes or None.
    Never raises for an HTTP error status; raises OSError when nothing answers."""
    headers = dict(headers or {})
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _opener.open(req, timeout=timeout) as r:
            return Response(r.status, r.read().decode("utf-8", "replace"), r.headers.items())
    except urllib.error.HTTPError as e:
        with e:
            return Response(e.code, e.read().decode("utf-8", "replace"), e.headers.items())


# --- waiting ------------------------------------------------------------------------

def wait_until(predicate, timeout=10, interval=0.05, message="condition not met"):
    """Poll predicate until it returns something truthy, and return that.  An exception
    raised by predicate counts as "not yet".  On timeout raise AssertionError(message);
    message may be a callable producing the text (evaluated only then)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 -- not ready yet
            last_exc = e
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            if last_exc is not None:
                text += " (last error: %r)" % (last_exc,)
            raise AssertionError("timed out after %.1f s: %s" % (timeout, text))
        time.sleep(interval)


def assert_stays(predicate, duration=1.0, interval=0.05, message="condition stopped holding"):
    """Assert that predicate stays truthy for duration seconds (for "nothing else happens")."""
    deadline = time.monotonic() + duration
    while True:
        if not predicate():
            raise AssertionError(message() if callable(message) else message)
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


# --- webhook bodies -----------------------------------------------------------------

SAMPLES_DIR = os.path.normpath(os.path.join(HERE, "..", "data", "chatra"))


def sample_path(name):
    """The path of the Chatra sample tests/data/chatra/<name>.json."""
    if not name.endswith(".json"):
        name += ".json"
    return os.path.join(SAMPLES_DIR, name)


def sample(name, raw=False):
    """A Chatra sample body from tests/data/chatra/<name>.json: a fresh dict
    (or the bytes with raw=True).  Names: chat-started, chat-fragment-agent-and-system,
    chat-transcript, fragment-without-event-name."""
    with open(sample_path(name), "rb") as f:
        data = f.read()
    return data if raw else json.loads(data)


_last_ms = [0]


def now_ms():
    """Milliseconds since the epoch, strictly increasing between calls."""
    t = max(int(time.time() * 1000), _last_ms[0] + 1)
    _last_ms[0] = t
    return t


def msg(id, text, type="client", created_at=None, key="text", agent_id=None, **extra):
    """One Chatra message.  id=None leaves the id out; key="message" uses the other text key;
    created_at defaults to now (ms, increasing); extra keys (agentName, ...) are added as is."""
    m = {}
    if id is not None:
        m["id"] = id
    m["type"] = type
    m[key] = text
    m["createdAt"] = now_ms() if created_at is None else created_at
    if agent_id is not None:
        m["agentId"] = agent_id
    m.update(extra)
    return m


def chat_event(event_name, client_id, messages=None, agents=None, **client_fields):
    """A Chatra webhook body.  event_name None leaves eventName out (seen in the wild).
    client gets id, chatId ("chat-<client_id>" unless given) and client_fields (name, email,
    info, ...); agents default to the agentIds found in messages."""
    messages = list(messages or [])
    client = {"id": client_id, "chatId": "chat-%s" % client_id}
    client.update(client_fields)
    if agents is None:
        ids = []
        for m in messages:
            if m.get("agentId") and m["agentId"] not in ids:
                ids.append(m["agentId"])
        agents = [{"id": i} for i in ids]
    body = {}
    if event_name is not None:
        body["eventName"] = event_name
    body.update(client=client, messages=messages, agents=agents)
    return body


# --- configuration ------------------------------------------------------------------

def merge(base, overrides):
    """Deep-merge overrides into a copy of base: dicts merge, anything else replaces,
    None deletes the key."""
    out = copy.deepcopy(base)
    for k, v in overrides.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def apply_overrides(config, overrides):
    """merge(), plus the key "channel" which merges into config["channels"][0]."""
    overrides = dict(overrides)
    channel = overrides.pop("channel", None)
    out = merge(config, overrides)
    if channel:
        out["channels"][0] = merge(out["channels"][0], channel)
    return out


def default_config(fakes, **overrides):
    """A complete bridge config pointing at fakes (see architecture.md).  overrides deep-merge:
    default_config(fakes, tracker={"requests_per_second": 5}, channel={"close_on_leave": False}).
    The store path is relative: Bridge puts it in its temporary directory."""
    config = {
        "listen": {"host": "127.0.0.1", "port": free_port()},
        "store": {"kind": "sqlite", "path": "bridge.db"},
        "log": {"level": "debug"},
        "tracker": {
            "kind": "planfix",
            "url": fakes.planfix_url,
            "token": "env:PLANFIX_TOKEN",
            "webhook_secret": "env:PLANFIX_WEBHOOK_SECRET",
            "requests_per_second": 20,
            # The poll (a safety net for lost Planfix webhooks) is off unless a test wants it:
            # exact request assertions would otherwise see it.
            "poll_interval_s": 0,
            # Comments go at once unless a test wants the coalescing wait: exact request
            # assertions would otherwise depend on timing.
            "coalesce_ms": 0,
        },
        "employees": [dict(ANNA), dict(BORIS)],
        "channels": [{
            "name": "shop",
            "webhook_secret": "env:CHATRA_SHOP_WEBHOOK_SECRET",
            "chatra": {"url": fakes.chatra_url,
                       "public_key": "env:CHATRA_SHOP_PUBLIC_KEY",
                       "secret_key": "env:CHATRA_SHOP_SECRET_KEY"},
            "default_agent_id": DEFAULT_AGENT_ID,
            "employees": [ANNA["email"]],
            "watchers": [WATCHER],
            "send_as_employee": True,
            "new_task_if_no_active": True,
            "close_on_leave": True,
            "task": {"template_id": 12, "closed_status_id": 3},
            "contact": {"template_id": 4},
        }],
    }
    return apply_overrides(config, overrides)


# --- the fakes ----------------------------------------------------------------------

class Fakes:
    """fake_planfix.py and fake_chatra.py as subprocesses on free ports.

    planfix_url ("http://127.0.0.1:P/rest") and chatra_url ("http://127.0.0.1:C/api") go
    into the bridge's config.  Recorded requests are dicts: seq, time, method, path, query,
    query_string, headers (case-insensitive), body (parsed JSON or text), raw, status
    ("dropped" when a fault closed the connection), fault.
    """

    NAMES = ("planfix", "chatra")

    def __init__(self, planfix_token=PLANFIX_TOKEN, chatra_public_key=CHATRA_SHOP_PUBLIC_KEY,
                 chatra_secret_key=CHATRA_SHOP_SECRET_KEY, planfix_rps=0, chatra_rps=0,
                 planfix_utc_offset_min=0, timeout=10):
        self.tmpdir = _mkdtemp("br-fakes-")
        self.procs = {}
        self.ports = {}
        self.planfix_token = planfix_token
        try:
            self._spawn("planfix", "fake_planfix.py",
                        ["--token", planfix_token, "--rps", str(planfix_rps),
                         "--utc-offset-min", str(planfix_utc_offset_min)])
            self._spawn("chatra", "fake_chatra.py",
                        ["--public-key", chatra_public_key, "--secret-key", chatra_secret_key,
                         "--rps", str(chatra_rps)])
            for name in self.NAMES:
                self.ports[name] = self._wait_port(name, timeout)
        except BaseException:
            self.stop()
            raise
        self.planfix_url = "http://127.0.0.1:%d/rest" % self.ports["planfix"]
        self.chatra_url = "http://127.0.0.1:%d/api" % self.ports["chatra"]

    def _spawn(self, name, script, args):
        port_file = os.path.join(self.tmpdir, name + ".port")
        with open(os.path.join(self.tmpdir, name + ".log"), "ab") as log:
            p = subprocess.Popen([sys.executable, "-B", os.path.join(FAKES_DIR, script),
                                  "--port", "0", "--port-file", port_file] + args,
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 env=_child_env())
        _live.add(p)
        self.procs[name] = p

    def _wait_port(self, name, timeout):
        port_file = os.path.join(self.tmpdir, name + ".port")
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            if self.procs[name].poll() is not None:
                raise RuntimeError("fake %s exited with %s:\n%s"
                                   % (name, self.procs[name].returncode, self.log(name)))
            if time.monotonic() > deadline:
                raise RuntimeError("fake %s did not start within %s s:\n%s" % (name, timeout, self.log(name)))
            time.sleep(0.01)
        with open(port_file) as f:
            return int(f.read().strip())

    def stop(self):
        """SIGTERM each fake once (SIGKILL after 5 s) and wait for them.  Safe to call twice."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            _reap(p, None)

    def cleanup(self):
        """stop() and remove the temporary directory (kept when BR_KEEP_TMP is set)."""
        self.stop()
        _rmtree(self.tmpdir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def log(self, which):
        """The fake's own log (startup lines and one access-log line per request)."""
        return _tail(os.path.join(self.tmpdir, which + ".log"), 10 ** 9)

    # --- control API plumbing ---

    def base(self, which):
        return {"planfix": "/rest", "chatra": "/api"}[which]

    def control(self, which, method, name, body=None):
        """Call /_control/<name> on fake which; returns the parsed answer or raises AssertionError."""
        r = http(method, "http://127.0.0.1:%d/_control/%s" % (self.ports[which], name), body)
        if r.status != 200:
            raise AssertionError("%s /_control/%s on %s: %s %s" % (method, name, which, r.status, r.body))
        return r.json()

    def _full(self, which, path):
        if path is None or path.startswith(self.base(which) + "/") or path == self.base(which):
            return path
        return self.base(which) + ("" if path.startswith("/") else "/") + path

    def requests(self, which, path_prefix=None, method=None, path=None, since=0):
        """Recorded API requests of fake which, oldest first.  path_prefix and path may omit the
        base ("/task/" means "/rest/task/"); path matches exactly, without the query string."""
        path_prefix, path = self._full(which, path_prefix), self._full(which, path)
        out = []
        for r in self.control(which, "GET", "requests?since=%d" % since):
            if method and r["method"] != method.upper():
                continue
            if path_prefix and not r["path"].startswith(path_prefix):
                continue
            if path and r["path"] != path:
                continue
            r["headers"] = Headers(r["headers"])
            out.append(r)
        return out

    def planfix_requests(self, path_prefix=None, method=None, path=None, since=0):
        return self.requests("planfix", path_prefix, method, path, since)

    def chatra_requests(self, path_prefix=None, method=None, path=None, since=0):
        return self.requests("chatra", path_prefix, method, path, since)

    def wait_requests(self, which, path_prefix=None, method=None, path=None, count=1, timeout=10):
        """Wait until at least count matching requests were recorded; returns them all."""
        def enough():
            rs = self.requests(which, path_prefix, method, path)
            return rs if len(rs) >= count else None

        return wait_until(
            enough, timeout,
            message=lambda: "fewer than %d %s %s requests to %s; got: %s" % (
                count, method or "*", path or path_prefix or "", which,
                ["%s %s" % (r["method"], r["path"]) for r in self.requests(which)]))

    def faults(self, which, faults):
        """Queue faults on fake which ("planfix" or "chatra"); see fakecommon.py."""
        return self.control(which, "POST", "faults", faults)

    def clear_faults(self, which):
        """Drop the faults still pending on fake which: it answers as it should again."""
        return self.control(which, "DELETE", "faults")

    def release(self, which):
        """Let the requests held by a "hold" fault on fake which go on (effect, then answer)."""
        return self.control(which, "POST", "release")

    def pending_faults(self, which):
        return self.control(which, "GET", "faults")

    def stats(self, which):
        """{"requests", "violations", "min_interval", "hung", "held", "pending_faults"}"""
        return self.control(which, "GET", "stats")

    def settings(self, which, **values):
        """rps, rps_tolerance; planfix also remaining, statuses and utc_offset_min (the API
        user's zone, minutes east of UTC: dates are shown and filters read there)."""
        return self.control(which, "POST", "settings", values)

    def reset(self, which=None):
        """Forget state, recorded requests, faults and stats; release hanging requests."""
        for w in ([which] if which else self.NAMES):
            self.control(w, "POST", "reset")

    def clear_requests(self, which=None):
        """Forget only the recorded requests and the stats."""
        for w in ([which] if which else self.NAMES):
            self.control(w, "POST", "reset", {"requests_only": True})

    # --- Planfix ---

    def planfix_state(self):
        """{"contacts", "tasks", "comments", "users", "statuses", "remaining"}."""
        return self.control("planfix", "GET", "state")

    def planfix_tasks(self, include_deleted=True):
        """Tasks as stored: id, name, description, status (int), statusActive, assigner and
        counterparty ("contact:N"), participants, template (int), sourceObjectId, isDeleted,
        fields (the create body), updates (the update bodies)."""
        return [t for t in self.planfix_state()["tasks"] if include_deleted or not t["isDeleted"]]

    def planfix_task(self, task_id):
        for t in self.planfix_tasks():
            if t["id"] == task_id:
                return t
        return None

    def planfix_contacts(self):
        return self.planfix_state()["contacts"]

    def planfix_comments(self, task=None):
        """Comments in id order: id, task, description, owner {id,name}, time, dateTime,
        sourceObjectId, isHidden, via ("api" from the bridge, "control" from employee_comment)."""
        return [c for c in self.planfix_state()["comments"] if task is None or c["task"] == task]

    def employee_comment(self, task, owner="user:5", name="Anna", text="Hello", hidden=False,
                         at=None, source_object_id=None):
        """Add a comment as if an employee wrote it in Planfix (text is HTML); returns its id.
        at: its time (epoch seconds), default now."""
        body = {"task": task, "owner": owner, "name": name, "description": text, "hidden": hidden}
        if at is not None:
            body["time"] = at
        if source_object_id is not None:
            body["sourceObjectId"] = source_object_id
        return self.control("planfix", "POST", "employee_comment", body)["id"]

    def set_task_status(self, task, status):
        self.control("planfix", "POST", "task_status", {"task": task, "status": status})

    def delete_task(self, task, purge=False):
        """Mark the task deleted (GET still shows it with isDeleted; writes fail with code 1000),
        or with purge=True forget it entirely."""
        self.control("planfix", "POST", "delete_task", {"task": task, "purge": purge})

    def add_contact(self, **fields):
        """Create a contact directly (e.g. one that already exists in Planfix); returns its id."""
        return self.control("planfix", "POST", "contact", fields)["id"]

    def add_task(self, **fields):
        """Create a task as an employee would by hand (fields as POST /task/ takes them, e.g.
        name, assigner={"id": "contact:3"}, counterparty, status); returns its id."""
        return self.control("planfix", "POST", "task", fields)["id"]

    def planfix_contact_comments(self, contact=None):
        """Comments on contact cards in id order: id, contact, description, owner, sourceObjectId, fields."""
        return [c for c in self.planfix_state()["contact_comments"] if contact is None or c["contact"] == contact]

    # --- Chatra ---

    def chatra_state(self):
        """{"messages", "pushedMessages", "clients"}."""
        return self.control("chatra", "GET", "state")

    def chatra_messages(self, client_id=None):
        """Messages accepted by POST /api/messages/: the request body plus id and createdAt."""
        return [m for m in self.chatra_state()["messages"]
                if client_id is None or m.get("clientId") == client_id]

    def set_chatra_client(self, client_id, visitor):
        """What GET /api/clients/<client_id> returns."""
        self.control("chatra", "POST", "clients", {client_id: visitor})


# --- the bridge ---------------------------------------------------------------------

class Bridge:
    """The chatra-bridge binary with a config in its own temporary directory.

    config (a dict, default default_config(fakes)) and env (the env:NAME secrets) may be
    changed before start().  The process runs with cwd = tmpdir; its stdout and stderr go
    to tmpdir/bridge.log (all runs, each headed by a "=== harness:" line).
    """

    def __init__(self, fakes, config=None, binary=None):
        self.fakes = fakes
        self.binary = binary or BINARY
        self.tmpdir = _mkdtemp("br-bridge-")
        self.config = config if config is not None else default_config(fakes)
        self.env = dict(TEST_ENV)
        self.proc = None
        self.starts = 0
        self.config_path = os.path.join(self.tmpdir, "config.json")
        self.log_path = os.path.join(self.tmpdir, "bridge.log")

    @property
    def port(self):
        return self.config["listen"]["port"]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def write_config(self):
        """Write self.config to config_path (a relative store path goes into tmpdir)."""
        config = copy.deepcopy(self.config)
        store = config.get("store") or {}
        if isinstance(store.get("path"), str) and not os.path.isabs(store["path"]):
            store["path"] = os.path.join(self.tmpdir, store["path"])
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)
        return self.config_path

    def run(self, *args, timeout=30):
        """Run the binary once with args (e.g. "check-config", "--config", path) and wait:
        returns CompletedProcess with text stdout/stderr."""
        return subprocess.run([self.binary] + list(args), cwd=self.tmpdir, env=_child_env(self.env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, preexec_fn=_die_with_parent)

    def start(self, timeout=10):
        """Start the binary and wait until GET /healthz answers 200."""
        if self.running:
            raise AssertionError("bridge already running (pid %d)" % self.proc.pid)
        if not os.access(self.binary, os.X_OK):
            raise AssertionError("bridge binary %s not found: build it or set BR_BINARY" % self.binary)
        self.write_config()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(("=== harness: start #%d at %s\n" % (self.starts, time.strftime("%H:%M:%S"))).encode())
            log.flush()
            self.proc = subprocess.Popen(VALGRIND + [self.binary, "--config", self.config_path], cwd=self.tmpdir,
                                         env=_child_env(self.env), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=_die_with_parent)
        _live.add(self.proc)
        deadline = time.monotonic() + timeout * (6 if VALGRIND else 1)
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                _live.discard(self.proc)
                raise AssertionError("bridge exited with %s before /healthz answered; log tail:\n%s"
                                     % (rc, self.log_tail()))
            try:
                if http("GET", self.url + "/healthz", timeout=1).status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                _reap(self.proc, signal.SIGKILL)
                raise AssertionError("bridge /healthz did not answer 200 within %s s; log tail:\n%s"
                                     % (timeout, self.log_tail()))
            time.sleep(0.05)

    def kill(self, sig=signal.SIGKILL, timeout=10):
        """Send sig (default SIGKILL: a crash) and wait; returns the exit code (-sig when killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout * (4 if VALGRIND else 1))
        except subprocess.TimeoutExpired:
            _reap(self.proc, signal.SIGKILL)
            raise AssertionError("bridge did not exit within %s s of signal %d" % (timeout, sig))
        _live.discard(self.proc)
        return self.proc.returncode

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit code (0 expected for a clean shutdown)."""
        return self.kill(signal.SIGTERM, timeout)

    def restart(self, timeout=10):
        """stop() when running, then start() with the same config, port and store."""
        if self.running:
            self.stop()
        return self.start(timeout)

    def cleanup(self):
        if self.proc is not None:
            _reap(self.proc, signal.SIGKILL)
        _rmtree(self.tmpdir)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=80):
        return _tail(self.log_path, lines)

    # --- requests to the bridge ---

    def get(self, path, headers=None, timeout=10):
        return http("GET", self.url + path, None, headers, timeout)

    def post(self, path, body=None, headers=None, timeout=10):
        return http("POST", self.url + path, body, headers, timeout)

    def post_chatra(self, event, channel="shop", secret=None, headers=None, timeout=10):
        """POST a Chatra webhook (dict sent as JSON; bytes/str sent as is) to
        /webhooks/chatra/<channel>/<secret>.  Returns (status, body)."""
        secret = CHATRA_SHOP_WEBHOOK_SECRET if secret is None else secret
        headers = dict(headers or {})
        if isinstance(event, (bytes, str)):
            headers.setdefault("Content-Type", "application/json")
        return self.post("/webhooks/chatra/%s/%s" % (urllib.parse.quote(channel, safe=""),
                                                     urllib.parse.quote(secret, safe="")),
                         event, headers, timeout)

    def post_planfix(self, task, form=False, query=False, secret=None, timeout=10):
        """POST the Planfix automation request for task: JSON {"task": task} (pass a str to send
        the number as a string, as Planfix's {{Task.Number}} does), a form field with form=True,
        or ?task= with an empty body with query=True.  Returns (status, body)."""
        secret = PLANFIX_WEBHOOK_SECRET if secret is None else secret
        path = "/webhooks/planfix/%s" % urllib.parse.quote(secret, safe="")
        if query:
            return self.post(path + "?" + urllib.parse.urlencode({"task": task}), b"", timeout=timeout)
        if form:
            return self.post(path, urllib.parse.urlencode({"task": task}),
                             {"Content-Type": "application/x-www-form-urlencoded"}, timeout)
        return self.post(path, {"task": task}, timeout=timeout)


# --- unittest base class ------------------------------------------------------------

class BridgeTestCase(unittest.TestCase):
    """setUp starts the fakes and prepares (does not start) a Bridge.

    self.fakes, self.bridge, self.config (== self.bridge.config: edit it or pass overrides to
    start_bridge).  Cleanups stop the bridge (asserting exit code 0 after SIGTERM when
    expect_clean_exit is true and it was still running) and the fakes.  When the test fails,
    the bridge log and the fakes' logs are printed to stderr.
    """

    fakes_options = {}          # keyword arguments for Fakes(), e.g. {"planfix_rps": 20}
    expect_clean_exit = True

    def setUp(self):
        super().setUp()
        self.fakes = Fakes(**self.fakes_options)
        self.addCleanup(self.fakes.stop)
        self.bridge = Bridge(self.fakes)
        self.config = self.bridge.config
        self.addCleanup(self._stop_bridge)

    def start_bridge(self, **overrides):
        """Apply overrides (as default_config takes them) to self.config and start the bridge."""
        self.bridge.config = self.config = apply_overrides(self.config, overrides)
        return self.bridge.start()

    def _stop_bridge(self):
        if self.bridge.running:
            rc = self.bridge.stop()
            if self.expect_clean_exit:
                self.assertEqual(rc, 0, "bridge exit code after SIGTERM; log tail:\n%s" % self.bridge.log_tail())

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            failed = len(result.failures) + len(result.errors) > before
            bridge, fakes = getattr(self, "bridge", None), getattr(self, "fakes", None)
            if failed:
                self._dump_logs(bridge, fakes)
            if bridge is not None:
                bridge.cleanup()
            if fakes is not None:
                fakes.cleanup()

    def _dump_logs(self, bridge, fakes):
        out = ["", "=" * 20 + " %s: logs " % self.id() + "=" * 20]
        if bridge is not None:
            out += ["--- bridge log (%s) ---" % bridge.tmpdir, bridge.log_tail(300)]
        if fakes is not None:
            for name in Fakes.NAMES:
                out += ["--- fake %s log ---" % name, _tail(os.path.join(fakes.tmpdir, name + ".log"), 100)]
        sys.stderr.write("\n".join(out) + "\n")
        sys.stderr.flush()
