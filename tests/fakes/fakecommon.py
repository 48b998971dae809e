"""Machinery shared by the fake upstream servers (fake_planfix.py, fake_chatra.py).

A fake is a ThreadingHTTPServer whose application object (a FakeApp subclass)
answers the upstream's API and a control API under /_control/ used by tests.
Every API request is recorded (control requests are not).  Before an API
request takes effect it passes, in this order: recording, the rate limit
check, authorization, and the fault queue.

Faults are queued by tests with POST /_control/faults (DELETE drops those still
pending) and each is consumed by the first matching request:
  {"match": "POST /rest/task/", "action": "status", "status": 500, "body": {...}}
  {"action": "delay", "seconds": 2}          effect is performed after the delay
  {"action": "fail_in_2xx", "code": 5001}    HTTP 200 with {"result":"fail",...}
  {"action": "hang"}                         no answer until reset or shutdown
  {"action": "hold"}                         effect and answer wait until POST /_control/release
                                             (or reset, or shutdown): a busy upstream, ended by the test
  {"action": "close"}                        connection closed without an answer
  {"action": "reset"}                        connection reset (RST) without an answer
Optional keys: "effect" (bool; default true for delay and hold, false otherwise: whether
the request's effect still happens), "times" (how many requests it hits,
default 1), "headers" (extra response headers for status/fail_in_2xx).
"match" is "METHOD /path-prefix", "/path-prefix" (any method) or "METHOD";
a trailing "$" makes the path exact.  No "match" matches every API request.

Python 3 standard library only.
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024


class Request:
    """One parsed incoming HTTP request."""

    def __init__(self, method, target, headers, raw, t):
        self.method = method
        parts = urllib.parse.urlsplit(target)
        self.path = parts.path
        self.query_string = parts.query
        self.query = {k: v[-1] for k, v in
                      urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = headers
        self.raw = raw
        self.time = t
        self.json_error = None
        self.body = None
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                self.body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                self.body = text
                self.json_error = str(e)

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers.items():
            if k.lower() == name:
                return v
        return default

    def json_object(self):
        """The body as a JSON object: {} when empty, None when malformed or not an object."""
        if not self.raw:
            return {}
        if self.json_error is not None or not isinstance(self.body, dict):
            return None
        return self.body


class Reply:
    """What a handler answers: status, a JSON-able body (or str/bytes/None), headers."""

    def __init__(self, status=200, body=None, headers=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class Drop(Exception):
    """Raised inside request handling to close the connection without an answer."""

    def __init__(self, rst=False):
        super().__init__("drop")
        self.rst = rst


def fields_filter(obj, fields):
    """Keep only the comma-separated `fields` of obj (id is always kept); all when fields is empty."""
    if not fields or not isinstance(fields, str):
        return obj
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    wanted.add("id")
    return {k: v for k, v in obj.items() if k in wanted}


class FakeApp:
    """Recording, rate limiting, faults and the generic control API.

    Subclasses set `name` and `base`, and implement authorize(req) -> Reply|None,
    api(req) -> Reply, reset_state(), state() and optionally control(req) -> Reply|None
    and extra_headers() -> dict.
    """

    name = "fake"
    base = ""

    def __init__(self, rps=0.0, rps_tolerance=0.01):
        self.lock = threading.RLock()
        self.rps = float(rps)
        self.rps_tolerance = float(rps_tolerance)
        self.hang_release = threading.Event()
        self.hold_release = threading.Event()
        self._reset_all()

    # --- state that reset clears -------------------------------------------------

    def _reset_all(self):
        with self.lock:
            self.requests = []
            self.seq = 0
            self.faults = []
            self.n_requests = 0
            self.violations = 0
            self.last_counted = None
            self.last_any = None
            self.min_interval = None
            self.hung = 0
            self.held = 0
            # Release every request that hangs (or is held) now; later ones wait on a new event.
            self.hang_release.set()
            self.hang_release = threading.Event()
            self.release_held()
            self.reset_state()

    def _reset_requests(self):
        with self.lock:
            self.requests = []
            self.n_requests = 0
            self.violations = 0
            self.min_interval = None

    def reset_state(self):
        pass

    def state(self):
        return {}

    def authorize(self, req):
        return None

    def api(self, req):
        return Reply(404, {"error": "not found"})

    def control(self, req):
        return None

    def extra_headers(self):
        return {}

    def shutdown(self):
        self.hang_release.set()
        self.hold_release.set()

    def release_held(self):
        """Let every held request go on; later holds wait on a new event."""
        with self.lock:
            self.hold_release.set()
            self.hold_release = threading.Event()

    # --- API request pipeline ------------------------------------------------------

    def _record(self, req):
        with self.lock:
            self.seq += 1
            rec = {
                "seq": self.seq,
                "time": req.time,
                "method": req.method,
                "path": req.path,
                "query": req.query,
                "query_string": req.query_string,
                "headers": req.headers,
                "body": req.body,
                "raw": req.raw.decode("utf-8", "replace"),
                "status": None,
                "fault": None,
            }
            self.requests.append(rec)
            return rec

    def _rate_violation(self, t):
        with self.lock:
            self.n_requests += 1
            if self.last_any is not None:
                gap = t - self.last_any
                if self.min_interval is None or gap < self.min_interval:
                    self.min_interval = gap
            self.last_any = t
            if self.rps <= 0:
                return False
            interval = 1.0 / self.rps
            if self.last_counted is not None and t - self.last_counted < interval - self.rps_tolerance:
                self.violations += 1
                return True
            self.last_counted = t
            return False

    @staticmethod
    def _fault_matches(fault, req):
        m = (fault.get("match") or "").strip()
        if not m:
            return True
        method, _, path = m.partition(" ") if not m.startswith("/") else ("", "", m)
        path = path.strip()
        if method and method.upper() != req.method:
            return False
        if not path:
            return True
        if path.endswith("$"):
            return req.path == path[:-1]
        return req.path.startswith(path)

    def _take_fault(self, req):
        with self.lock:
            for i, f in enumerate(self.faults):
                if self._fault_matches(f, req):
                    f["_left"] -= 1
                    if f["_left"] <= 0:
                        del self.faults[i]
                    return {k: v for k, v in f.items() if k != "_left"}
        return None

    def add_faults(self, faults):
        if isinstance(faults, dict):
            faults = [faults]
        if not isinstance(faults, list):
            raise ValueError("faults must be a list of objects")
        known = {"status", "delay", "fail_in_2xx", "hang", "hold", "close", "reset"}
        for f in faults:
            if not isinstance(f, dict) or f.get("action") not in known:
                raise ValueError("bad fault %r: action must be one of %s" % (f, sorted(known)))
        with self.lock:
            for f in faults:
                f = dict(f)
                f["_left"] = int(f.get("times", 1))
                self.faults.append(f)

    def handle_api(self, req):
        """Run one API request through the pipeline; returns a Reply or raises Drop."""
        rec = self._record(req)
        try:
            reply = self._pipeline(req, rec)
        except Drop:
            rec["status"] = "dropped"
            raise
        rec["status"] = reply.status
        rec["answered"] = time.time()  # the answer is written right after (the bench's rate-limit waits)
        return reply

    def _effect(self, req):
        with self.lock:
            return self.api(req)

    def _pipeline(self, req, rec):
        if self._rate_violation(req.time):
            rec["fault"] = "rate_limit"
            return Reply(429, {"result": "fail", "error": "Too many requests"})
        denied = self.authorize(req)
        if denied is not None:
            return denied
        fault = self._take_fault(req)
        if fault is None:
            return self._effect(req)
        action = fault["action"]
        rec["fault"] = action
        reply = None
        if action == "delay":
            time.sleep(float(fault.get("seconds", 1)))
        if action == "hold":
            with self.lock:
                self.held += 1
                ev = self.hold_release
            ev.wait()
        if fault.get("effect", action in ("delay", "hold")):
            reply = self._effect(req)
        if action == "status":
            body = fault.get("body")
            if body is None:
                body = reply.body if reply is not None else {"result": "fail", "error": "Injected failure"}
            return Reply(int(fault.get("status", 500)), body, fault.get("headers"))
        if action == "fail_in_2xx":
            return Reply(int(fault.get("status", 200)),
                         {"result": "fail", "code": fault.get("code", 5001),
                          "error": fault.get("error", "Injected failure")},
                         fault.get("headers"))
        if action == "hang":
            with self.lock:
                self.hung += 1
                ev = self.hang_release
            ev.wait()
            raise Drop()
        if action in ("close", "reset"):
            raise Drop(rst=action == "reset")
        return reply

    # --- control API ----------------------------------------------------------------

    def handle_control(self, req):
        path = req.path.rstrip("/")
        try:
            specific = self.control(req)
            if specific is not None:
                return specific
            if path == "/_control/requests" and req.method == "GET":
                since = int(req.query.get("since", "0") or 0)
                with self.lock:
                    return Reply(200, [r for r in self.requests if r["seq"] > since])
            if path == "/_control/reset" and req.method == "POST":
                body = req.json_object() or {}
                if body.get("requests_only"):
                    self._reset_requests()
                else:
                    self._reset_all()
                return Reply(200, {"result": "success"})
            if path == "/_control/state" and req.method == "GET":
                with self.lock:
                    return Reply(200, self.state())
            if path == "/_control/faults" and req.method == "POST":
                self.add_faults(req.body if req.raw else [])
                return Reply(200, {"result": "success", "pending": len(self.faults)})
            if path == "/_control/release" and req.method == "POST":
                self.release_held()
                return Reply(200, {"result": "success"})
            if path == "/_control/faults" and req.method == "DELETE":
                with self.lock:
                    self.faults = []
                return Reply(200, {"result": "success", "pending": 0})
            if path == "/_control/faults" and req.method == "GET":
                with self.lock:
                    return Reply(200, [{k: v for k, v in f.items() if k != "_left"} | {"left": f["_left"]}
                                       for f in self.faults])
            if path == "/_control/stats" and req.method == "GET":
                with self.lock:
                    return Reply(200, {"requests": self.n_requests, "violations": self.violations,
                                       "min_interval": self.min_interval, "hung": self.hung, "held": self.held,
                                       "pending_faults": len(self.faults)})
            if path == "/_control/settings" and req.method == "POST":
                body = req.json_object()
                if body is None:
                    raise ValueError("settings must be a JSON object")
                with self.lock:
                    self.apply_settings(body)
                return Reply(200, {"result": "success"})
        except (ValueError, KeyError, TypeError) as e:
            return Reply(400, {"result": "fail", "error": "control: %s" % e})
        return Reply(404, {"result": "fail", "error": "unknown control endpoint %s %s" % (req.method, req.path)})

    def apply_settings(self, body):
        if "rps" in body:
            self.rps = float(body["rps"])
            self.last_counted = None
        if "rps_tolerance" in body:
            self.rps_tolerance = float(body["rps_tolerance"])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeUpstream/1.0"

    def version_string(self):
        return self.server_version

    def parse_request(self):
        # Take the arrival time as early as possible: the rate limit check uses it.
        self._t0 = time.time()
        return super().parse_request()

    def log_message(self, fmt, *args):
        sys.stderr.write("%s [%s] %s\n" % (time.strftime("%H:%M:%S"), self.server.app.name, fmt % args))

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n > 0 else b""

    def _dispatch(self):
        app = self.server.app
        try:
            raw = self._read_body()
        except ValueError as e:
            self.close_connection = True
            self._send(Reply(400, {"result": "fail", "error": str(e)}))
            return
        headers = {}
        for k, v in self.headers.items():
            headers[k] = headers[k] + ", " + v if k in headers else v
        req = Request(self.command, self.path, headers, raw, getattr(self, "_t0", time.time()))
        if req.path.startswith("/_control/"):
            self._send(app.handle_control(req))
            return
        try:
            reply = app.handle_api(req)
        except Drop as d:
            self._drop(d.rst)
            return
        with app.lock:
            reply.headers = {**app.extra_headers(), **reply.headers}
        self._send(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _drop(self, rst):
        self.close_connection = True
        try:
            if rst:
                # Linger 0 makes close() send RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, reply):
        body = reply.body
        ctype = "application/json; charset=utf-8"
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data, ctype = body, "application/octet-stream"
        elif isinstance(body, str):
            data, ctype = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(reply.status)
            headers = {"Content-Type": ctype, **reply.headers}
            for k, v in headers.items():
                self.send_header(k, str(v))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data and self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (timeout or crash): the effect stays done.
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def common_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the bound port here (via FILE.tmp + rename) once listening")
    p.add_argument("--rps", type=float, default=0.0,
                   help="answer 429 to a request arriving sooner than 1/N s after the previous accepted one (0: off)")
    p.add_argument("--rps-tolerance", type=float, default=0.01,
                   help="seconds of slack allowed by the rate limit check")
    return p


def serve(app, args):
    """Bind, publish the port, serve until SIGTERM/SIGINT or until the parent process dies.

    A signal handler runs in the main thread between two bytecodes, also while that thread
    holds a lock (serve_forever's, an Event's) or runs the handler itself; so the handlers
    here do nothing.  The signal reaches a watcher thread as a byte on a pipe written by
    Python's C-level handler (signal.set_wakeup_fd), and that thread stops the server.
    Any number of signals, at any moment, stop it once.
    """
    # A test runner killed hard cannot stop us: exit when our parent goes away too.
    parent = os.getppid()
    # Before the port is published: a test may stop us as soon as it knows the port.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    # A Python handler must be installed for the C handler to write to the pipe; it has
    # nothing to do itself.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)

    server = Server((args.host, args.port), Handler)
    server.app = app
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    sys.stderr.write("%s listening on %s:%d\n" % (app.name, args.host, port))
    sys.stderr.flush()

    def watch():
        while not select.select([wake_r], [], [], 0.5)[0]:
            if os.getppid() != parent:
                break
        app.shutdown()
        server.shutdown()

    threading.Thread(target=watch, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        # Stopping already: a late signal must not turn the clean exit into death by signal
        # (Python puts SIG_DFL back for its own handlers as it exits, but leaves SIG_IGN).
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        server.server_close()
    sys.stderr.write("%s stopped\n" % app.name)
