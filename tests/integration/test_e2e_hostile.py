"""Issue "never lose a message, never flood the tracker", behaviour 7 (the parts a test can show
without a fuzzer): JSON depth, per-address limits on the webhook routes, guessing secrets."""

import json
import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import CHATRA_SHOP_WEBHOOK_SECRET, chat_event, msg  # noqa: E402
from e2e import E2ECase  # noqa: E402


class TestHostileInput(E2ECase):
    def test_deeply_nested_json_is_refused_and_not_stored(self):
        self.start_bridge()
        ev = chat_event("chatStarted", "client-1", [msg("m1", "Hello")])
        deep = "[" * 40 + "]" * 40
        body = json.dumps(ev)[:-1] + ', "extra": ' + deep + "}"
        status, text = self.bridge.post_chatra(body.encode())
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(text), {"error": "JSON nested deeper than 32 levels"})
        self.assert_quiet()
        self.assertEqual(self.fakes.planfix_requests(), [])

    def test_per_address_limit_on_webhook_routes_only(self):
        self.start_bridge(limits={"per_address_rps": 1, "per_address_burst": 3})
        statuses = [self.post_raw(i) for i in range(6)]
        self.assertEqual(statuses[:3], [200, 200, 200])
        self.assertIn(429, statuses[3:])
        # Monitors are not limited.
        for _ in range(5):
            self.assertEqual(self.bridge.get("/healthz")[0], 200)

    def post_raw(self, i):
        return self.bridge.post_chatra(chat_event("chatFragment", "client-%d" % i, [msg("m%d" % i, "hi")]))[0]

    def test_guessing_secrets_is_slowed_down(self):
        self.start_bridge(limits={"bad_secrets_per_minute": 5})
        wrong = [self.bridge.post_chatra(chat_event("chatFragment", "c", []), secret="wrong-secret-%d" % i)[0]
                 for i in range(8)]
        self.assertEqual(wrong[:5], [401] * 5)
        self.assertEqual(wrong[5:], [429] * 3)
        # The right secret still works for everybody.
        ok = self.bridge.post_chatra(chat_event("chatStarted", "c", [msg("m1", "Hello")]))
        self.assertEqual(ok[0], 200)
        self.assertEqual(self.bridge.post_planfix(1, secret="nope")[0], 429)
        self.assertNotIn(CHATRA_SHOP_WEBHOOK_SECRET, self.bridge.log())


if __name__ == "__main__":
    unittest.main()
