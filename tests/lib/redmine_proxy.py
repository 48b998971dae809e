"""A fault-injecting HTTP proxy between the bridge and a real Redmine (redmine_server.py).

It forwards every request unchanged (method, path with query, headers such as X-Redmine-API-Key
and X-Redmine-Switch-User, body) and returns Redmine's answer, except where a rule says
otherwise:

    proxy = RedmineProxy(rm.url)                   # bridge's tracker.url = proxy.url
    rule = proxy.lose_answer("POST", r"^/issues\\.json$")
    ...; rule.fired.wait(10)

lose_answer(method, path regex, nth=1, body=regex, hold=0): the nth matching request is forwarded
to Redmine (so the write happens), then the connection is closed without a byte of the answer,
after holding it open for hold seconds (the bridge can be killed meanwhile).  Each rule fires
once.  With hold longer than the bridge's tracker.timeout_ms the bridge sees a timeout.

Note: when the connection had served a request before and not a byte of the answer came back,
libcurl resends the request by itself on a fresh connection ("Connection died, retrying a fresh
connect"); the bridge then never learns that anything went wrong.  A timeout is not resent.

Every request is recorded (proxy.requests): seq, method, path (with query), body (text),
time (time.monotonic() when its headers were read), conn (the client connection's number),
on_conn (its position on that connection, 1 = fresh connection), status (Redmine's, or None),
fault ("lose" or None).

Python 3 standard library only; listens on 127.0.0.1; stop() stops its own server thread.
"""

import http.client
import http.server
import sys
import itertools
import re
import socket
import threading
import time
import urllib.parse

from harness import free_port

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length", "host"}


class Rule:
    def __init__(self, action, method, path, nth=1, body=None, hold=0.0):
        self.action = action
        self.method = method
        self.path = re.compile(path)
        self.body = re.compile(body, re.S) if body else None
        self.nth = nth
        self.hold = hold
        self.seen = 0
        self.fired = threading.Event()
        self.request = None           # the recorded request it fired on

    def matches(self, method, path, body):
        return (method == self.method and self.path.search(path) is not None
                and (self.body is None or self.body.search(body) is not None))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive, as Redmine's puma does

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.conn_no = next(self.server.proxy._conns)
        self.on_conn = 0

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _forward(self):
        proxy = self.server.proxy
        started = time.monotonic()
        body = self._body()
        self.on_conn += 1
        rec = {"method": self.command, "path": self.path, "body": body.decode("utf-8", "replace"),
               "time": started, "conn": self.conn_no, "on_conn": self.on_conn, "status": None, "fault": None,
               "headers": {k.lower(): v for k, v in self.headers.items()}}
        rule = proxy._match(rec)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        up = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=120)
        try:
            up.request(self.command, self.path, body=body or None, headers=headers)
            resp = up.getresponse()
            data = resp.read()
            rec["status"] = resp.status
        except OSError as e:
            rec["status"] = "upstream error: %s" % e
            up.close()
            self.close_connection = True
            self.send_error(502)
            return
        finally:
            up.close()
        if rule is not None:
            rec["fault"] = rule.action
            rule.request = rec
            rule.fired.set()
            proxy._hold(rule.hold)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._head(resp, len(data))
        self.wfile.write(data)

    def _head(self, resp, length):
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A bridge killed by a test leaves its connections broken mid-answer: that is the point.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class RedmineProxy:
    def __init__(self, upstream_url):
        self.upstream = urllib.parse.urlsplit(upstream_url)
        self.requests = []
        self.rules = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._conns = itertools.count(1)
        self._stopping = threading.Event()
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.server = _Server(("127.0.0.1", self.port), _Handler)
        self.server.proxy = self
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    # --- rules ---

    def lose_answer(self, method, path, nth=1, body=None, hold=0.0):
        """The nth request matching method, path (regex on path+query) and body (regex, optional)
        reaches Redmine, and its answer is lost: the connection closes without a byte."""
        return self._add(Rule("lose", method, path, nth, body, hold))

    def _add(self, rule):
        with self._lock:
            self.rules.append(rule)
        return rule

    def _match(self, rec):
        with self._lock:
            rec["seq"] = next(self._seq)
            self.requests.append(rec)
            for rule in self.rules:
                if not rule.fired.is_set() and rule.seen < rule.nth and rule.matches(rec["method"], rec["path"],
                                                                                     rec["body"]):
                    rule.seen += 1
                    if rule.seen == rule.nth:
                        rule.seen = rule.nth + 1     # fires once, even if the event is not set yet
                        return rule
        return None

    def _hold(self, seconds):
        self._stopping.wait(seconds)

    # --- records ---

    def calls(self, since=0):
        """["POST /issues.json", ...] of the requests after seq since."""
        with self._lock:
            return ["%s %s" % (r["method"], r["path"]) for r in self.requests if r["seq"] > since]

    def matching(self, method, path, body=None):
        rule = Rule("", method, path, body=body)
        with self._lock:
            return [r for r in self.requests if rule.matches(r["method"], r["path"], r["body"])]

    def last_seq(self):
        with self._lock:
            return self.requests[-1]["seq"] if self.requests else 0

    def stop(self):
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
