"""Issue 14: `chatra-bridge crm --config FILE --email X` prints the CRM card the bridge would show,
asked from the (fake) ChartMogul."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import BridgeTestCase, default_config  # noqa: E402
from chartmogul import ACME, API_KEY, FakeChartMogul, add_env, enrich  # noqa: E402
import harness  # noqa: E402


class TestCrmCommand(BridgeTestCase):
    def setUp(self):
        super().setUp()
        self.cm = FakeChartMogul()
        self.addCleanup(self.cm.cleanup)

    def bridge_with(self, **overrides):
        b = harness.Bridge(self.fakes, default_config(self.fakes, enrich=enrich(self.cm), **overrides))
        self.addCleanup(b.cleanup)
        add_env(b)
        b.write_config()
        return b

    def crm(self, b, email):
        return b.run("crm", "--config", b.config_path, "--email", email)

    def test_found_prints_the_card_with_money_from_cents(self):
        self.cm.customers([ACME])
        b = self.bridge_with()
        r = self.crm(b, "CEO@Acme.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        crm = out["crm"]
        self.assertTrue(crm["found"])
        self.assertEqual(crm["matched_email"], "ceo@acme.test")
        self.assertEqual(crm["name"], "Acme Inc")
        self.assertEqual(crm["plan"], "Pro annual")
        self.assertEqual(crm["status"], "Active")
        self.assertEqual(crm["mrr"], "1,234.50 USD")
        self.assertEqual(crm["arr"], "14,814.00 USD")
        self.assertTrue(crm["url"].startswith("https://app.chartmogul.com/#customers/"))
        # The newest five activities, newest first.
        self.assertEqual([a["date"][:7] for a in crm["activities"]],
                         ["2025-07", "2025-06", "2025-05", "2025-04", "2025-03"])
        self.assertEqual(crm["activities"][0]["amount"], "-100.00 USD")
        self.assertEqual(crm["activities"][0]["type"], "contraction")
        self.assertIn('<a href="%s">Acme Inc</a>' % crm["url"], out["card"])
        self.assertIn("MRR: 1,234.50 USD", out["card"])
        # HTTP Basic with the API key as the user and an empty password; the three reads.
        reqs = self.cm.requests()
        self.assertEqual([r["path"].split("/")[-1] for r in reqs], ["search", "subscriptions", "activities"])
        import base64
        self.assertEqual(reqs[0]["headers"]["Authorization"],
                         "Basic " + base64.b64encode((API_KEY + ":").encode()).decode())
        self.assertEqual(reqs[0]["query"]["email"], "ceo@acme.test")

    def test_not_found(self):
        b = self.bridge_with()
        r = self.crm(b, "nobody@example.org")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertFalse(out["crm"]["found"])
        self.assertIn("not found", out["card"])

    def test_pages_are_followed(self):
        self.cm.customers([ACME])
        self.cm.settings(max_per_page=2)
        b = self.bridge_with()
        r = self.crm(b, "ceo@acme.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        crm = json.loads(r.stdout)["crm"]
        self.assertEqual(len(crm["activities"]), 5)
        self.assertEqual(crm["activities"][0]["date"][:7], "2025-07")
        acts = self.cm.requests(prefix="/v1/customers/cus_")
        self.assertEqual(len([a for a in acts if a["path"].endswith("/activities")]), 4)

    def test_the_textile_card_and_the_ru_language(self):
        self.cm.customers([ACME])
        b = self.bridge_with(language="ru")
        out = json.loads(self.crm(b, "ceo@acme.test").stdout)
        self.assertIn("Тариф: Pro annual", out["card"])
        self.assertIn("найден по ceo@acme.test", out["card"])

    def test_failures_are_reported_not_crashed(self):
        b = self.bridge_with()
        self.cm.faults([{"action": "status", "status": 200, "body": "<html>not json"}])
        r = self.crm(b, "ceo@acme.test")
        self.assertEqual(r.returncode, 1)
        self.assertIn("something other than a JSON object", r.stderr)
        self.cm.faults([{"action": "status", "status": 429, "headers": {"Retry-After": "30"}}])
        r = self.crm(b, "ceo@acme.test")
        self.assertEqual(r.returncode, 1)
        self.assertIn("429", r.stderr)
        # A wrong key: ChartMogul's 401.
        add_env(b, "wrong-key")
        r = self.crm(b, "ceo@acme.test")
        self.assertEqual(r.returncode, 1)
        self.assertIn("401", r.stderr)

    def test_without_enrich_or_email(self):
        b = harness.Bridge(self.fakes, default_config(self.fakes))
        self.addCleanup(b.cleanup)
        b.write_config()
        r = self.crm(b, "ceo@acme.test")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no enrich section", r.stderr)
        r = b.run("crm", "--config", b.config_path)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(self.cm.requests(), [])


if __name__ == "__main__":
    unittest.main()
