"""Issue 13, the admin page's live updates: the WebSocket /admin/ws (subprotocol br-admin) on the
bridge's own port, let in only with the page's login (cookie or Bearer) and from the page's own
origin, told of each conversation that changed, of the overview and of the dead letters; and a
bridge that stops cleanly with WebSockets open (run with BR_VALGRIND=1 for the leak check)."""

import os
import socket
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from admin import BEARER, AdminCase  # noqa: E402
from ws_client import Closed, Refused, WebSocket  # noqa: E402


class WsCase(AdminCase):
    def ws(self, headers=None, subprotocol="br-admin", path="/admin/ws"):
        ws = WebSocket(self.bridge.port, path, headers or {}, subprotocol)
        self.addCleanup(ws.close)
        return ws

    def origin(self):
        return "http://127.0.0.1:%d" % self.bridge.port

    def wait_for(self, ws, *wants, timeout=10):
        """Messages until each of wants came, in any order (others, such as overview, are skipped);
        returns those seen."""
        seen, missing = [], list(wants)
        while missing:
            m = ws.recv_json(timeout)
            seen.append(m)
            if m in missing:
                missing.remove(m)
        return seen


class TestAccess(WsCase):
    def test_refused_without_a_login_from_another_origin_or_another_protocol(self):
        self.start_admin()
        session, _ = self.login()
        for headers, sub, path in [
                ({}, "br-admin", "/admin/ws"),                                          # no login
                ({"Cookie": "br_admin=" + "0" * 64}, "br-admin", "/admin/ws"),          # no such session
                ({"Authorization": "Bearer not-the-token"}, "br-admin", "/admin/ws"),   # a wrong token
                (dict(session, Origin="http://evil.example"), "br-admin", "/admin/ws"),  # another site
                (dict(session, Origin="null"), "br-admin", "/admin/ws"),
                (dict(session, Origin=self.origin()), None, "/admin/ws"),              # no subprotocol
                (dict(session, Origin=self.origin()), "chat", "/admin/ws"),            # another one
                (dict(session, Origin=self.origin()), "br-admin", "/admin/other"),     # another path
                (dict(session, Origin=self.origin()), "br-admin", "/webhooks/chatra/shop/x")]:
            with self.assertRaises(Refused, msg=(headers, sub, path)):
                self.ws(headers, sub, path)
        self.assertIn('refused: 403 admin WebSocket from another origin "http://evil.example"', self.bridge.log())
        # The HTTP side goes on as before.
        self.assertEqual(self.bridge.get("/healthz").status, 200)
        # With the login: a cookie from the page's own origin, or a Bearer token (no Origin: a script).
        self.assertEqual(self.ws(dict(session, Origin=self.origin())).protocol, "br-admin")
        self.assertEqual(self.ws(BEARER).protocol, "br-admin")

    def test_off_without_a_token(self):
        self.start_bridge()
        with self.assertRaises(Refused):
            self.ws(BEARER)

    def test_a_logout_ends_the_sessions_websockets(self):
        self.start_admin()
        session, csrf = self.login()
        other, _ = self.login()
        mine, theirs, script = self.ws(session), self.ws(other), self.ws(BEARER)
        r = self.bridge.post("/admin/logout", b"", dict(session, **{"X-CSRF-Token": csrf}))
        self.assertEqual(r.status, 200)
        with self.assertRaises((Closed, ConnectionError)):
            while True:
                mine.recv(timeout=10)
        with self.assertRaises(Refused):
            self.ws(session)
        # The other session's and the script's go on.
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        self.wait_for(theirs, {"type": "conversation", "id": 1})
        self.wait_for(script, {"type": "conversation", "id": 1})


class TestUpdates(WsCase):
    def test_a_webhook_tells_its_conversation(self):
        self.start_admin()
        session, _ = self.login()
        ws = self.ws(dict(session, Origin=self.origin()))
        bearer_ws = self.ws(BEARER)
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        for w in (ws, bearer_ws):
            seen = self.wait_for(w, {"type": "conversation", "id": 1})
            self.assertTrue(all(m in ({"type": "overview"}, {"type": "conversation", "id": 1}) for m in seen), seen)
        self.wait_task(1)
        self.wait_idle()
        self.post(chat_event("chatStarted", "client-2", [msg("m2", "Hi")]))
        self.wait_for(ws, {"type": "conversation", "id": 2})
        # The overview comes too (queues moved), at most once a second.
        self.wait_for(ws, {"type": "overview"})

    def test_a_dead_letter_and_its_retry_are_told(self):
        self.start_admin()
        task, _ = self.open_chat("client-1")
        self.wait_idle()
        ws = self.ws(BEARER)
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "fail_in_2xx",
                                       "code": 41}])
        self.post(chat_event("chatFragment", "client-1", [msg("m2", "refused")]))
        self.wait_for(ws, {"type": "dead_letters"})
        [dead] = self.api("dead-letters")
        self.act("dead-letters/%d/retry" % dead["id"])
        self.wait_for(ws, {"type": "dead_letters"}, {"type": "conversation", "id": 1})

    def test_a_client_that_sends_is_ignored_and_others_go_on(self):
        self.start_admin()
        ws = self.ws(BEARER)
        other = self.ws(BEARER)
        ws._send_frame(0x1, b'{"hello": "server"}')
        ws._send_frame(0x9, b"ping")
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        self.wait_for(ws, {"type": "conversation", "id": 1})
        self.wait_for(other, {"type": "conversation", "id": 1})
        # One that leaves does not disturb the rest.
        ws.close()
        self.post(chat_event("chatStarted", "client-2", [msg("m2", "Hi")]))
        self.wait_for(other, {"type": "conversation", "id": 2})


class TestShutdown(WsCase):
    def test_the_bridge_stops_cleanly_with_websockets_open(self):
        # Under BR_VALGRIND=1 the harness runs the bridge in valgrind: a leak fails the exit code.
        self.start_admin()
        session, _ = self.login()
        clients = [self.ws(dict(session, Origin=self.origin())), self.ws(BEARER), self.ws(BEARER)]
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        for ws in clients:
            self.wait_for(ws, {"type": "conversation", "id": 1}, timeout=60)
        self.assertEqual(self.bridge.stop(timeout=30), 0, self.bridge.log_tail())
        for ws in clients:
            with self.assertRaises((Closed, ConnectionError, socket.timeout)):
                while True:
                    ws.recv(timeout=5)
        self.assertIn("stopped cleanly", self.bridge.log())


if __name__ == "__main__":
    unittest.main()
