"""Helpers for the tests of the admin page's server side (tests/integration/test_e2e_admin_*.py):
a bridge with admin.token set, logins, and the API with a cookie or a Bearer token."""

import http.client

from e2e import E2ECase
from harness import Response

ADMIN_TOKEN = "admin-token-0123456789-abcdef"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
BEARER = {"Authorization": "Bearer %s" % ADMIN_TOKEN}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class AdminCase(E2ECase):
    """E2ECase whose bridge has the admin page on (start_admin)."""

    maxDiff = None

    def start_admin(self, **overrides):
        self.bridge.env["BR_ADMIN_TOKEN"] = ADMIN_TOKEN
        overrides["admin"] = dict({"token": "env:BR_ADMIN_TOKEN"}, **overrides.get("admin", {}))
        return self.start_bridge(**overrides)

    def assert_admin_headers(self, r):
        self.assertEqual(r.headers.get("Content-Security-Policy"), CSP, r.headers)
        self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.headers.get("Referrer-Policy"), "no-referrer")
        self.assertEqual(r.headers.get("Cache-Control"), "no-store")

    def raw(self, method, path, body=None, headers=None):
        """One request that does not follow redirects (urllib does): a Response."""
        conn = http.client.HTTPConnection("127.0.0.1", self.bridge.port, timeout=10)
        try:
            conn.request(method, path, body, headers or {})
            r = conn.getresponse()
            return Response(r.status, r.read().decode("utf-8", "replace"), r.getheaders())
        finally:
            conn.close()

    def login(self):
        """A cookie session by the JSON login: (headers to send with it, its CSRF token)."""
        r = self.bridge.post("/admin/login", {"token": ADMIN_TOKEN})
        self.assertEqual(r.status, 200, r.body)
        cookie = r.headers["Set-Cookie"].split(";")[0]
        self.assertTrue(cookie.startswith("br_admin="), cookie)
        return {"Cookie": cookie}, r.json()["csrf"]

    def api(self, path, headers=None, status=200):
        """GET /admin/api/<path> (Bearer by default): the JSON answer."""
        r = self.bridge.get("/admin/api/" + path, BEARER if headers is None else headers)
        self.assertEqual(r.status, status, r.body)
        self.assert_admin_headers(r)
        return r.json()

    def act(self, path, headers=None, status=200):
        """POST /admin/api/<path> (Bearer by default, no body): the JSON answer."""
        r = self.bridge.post("/admin/api/" + path, b"", BEARER if headers is None else headers)
        self.assertEqual(r.status, status, r.body)
        return r.json()

    def timeline(self, conv, type_=None):
        items = self.api("conversations/%d" % conv)["timeline"]
        return [i for i in items if type_ is None or i["type"] == type_]
