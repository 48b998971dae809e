"""The daemon on its own: /healthz, unknown routes and methods, a clean exit on SIGTERM."""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from e2e import E2ECase  # noqa: E402


class TestDaemonBasics(E2ECase):
    def test_healthz_reports_ok_and_engine_state(self):
        self.start_bridge()
        r = self.bridge.get("/healthz")
        self.assertEqual(r.status, 200)
        body = r.json()
        self.assertEqual(body["status"], "ok")
        engine = body["engine"]
        self.assertEqual(engine["inbox_pending"], 0)
        self.assertEqual(engine["jobs"], {"queued": 0, "in_flight": 0, "dead": 0})
        self.assertEqual(sorted(u["name"] for u in engine["upstreams"]), ["chatra:shop", "tracker"])
        self.assertEqual(self.pf_calls(), [])
        self.assertEqual(self.chatra_calls(), [])

    def test_unknown_route_is_404_and_wrong_method_405(self):
        self.start_bridge()
        self.assertEqual(self.bridge.get("/nothing-here").status, 404)
        self.assertEqual(self.bridge.post("/healthz", {}).status, 405)
        self.assertEqual(self.bridge.get("/webhooks/chatra/shop/x").status, 405)

    def test_sigterm_exits_zero_with_work_done(self):
        self.start_bridge()
        self.open_chat()
        self.wait_idle()
        self.assertEqual(self.bridge.stop(), 0, self.bridge.log_tail())
        self.assertIn("stopped cleanly", self.bridge.log())


if __name__ == "__main__":
    unittest.main()
