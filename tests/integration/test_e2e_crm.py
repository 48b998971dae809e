"""Issue 14: the CRM card from ChartMogul in the task, found by every e-mail of the person and of
their company, never holding the task back (against tests/fakes/fake_chartmogul.py)."""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import assert_stays, chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402
from chartmogul import ACME, FakeChartMogul, add_env, enrich, seed_colleagues  # noqa: E402


def customer(email, name, mrr, plan="Pro", **kw):
    c = {"email": email, "name": name, "mrr": mrr, "arr": mrr * 12, "currency": "EUR",
         "subscriptions": [{"plan": plan, "status": "active"}], "activities": []}
    c.update(kw)
    return c


class CrmCase(E2ECase):
    def setUp(self):
        super().setUp()
        self.cm = FakeChartMogul()
        self.addCleanup(self.cm.cleanup)
        add_env(self.bridge)

    def start(self, **keys):
        return self.start_bridge(enrich=enrich(self.cm, **keys))

    def comments(self, task):
        return [p["body"]["description"] for p in self.comment_posts(task)]

    def card_comments(self, task):
        return [c for c in self.comments(task) if "ChartMogul" in c]

    def chat(self, client, email, text="Hello", mid=None, event="chatStarted"):
        self.post(chat_event(event, client, [msg(mid or "%s-%s" % (client, text), text)], email=email,
                             name="Maria Lopez"))


class TestCrmCard(CrmCase):
    def test_the_card_goes_into_the_description(self):
        self.cm.customers([ACME])
        self.start()
        self.chat("client-1", "CEO@acme.test")
        [task] = self.wait_task()
        d = task["description"]
        self.assertIn("<b>ChartMogul</b>: <a href=\"https://app.chartmogul.com/#customers/", d)
        self.assertIn(">Acme Inc</a> (found by ceo@acme.test)", d)
        self.assertIn("Plan: Pro annual, status: Active", d)
        self.assertIn("MRR: 1,234.50 USD, ARR: 14,814.00 USD", d)
        self.assertIn("<li>2025-07-01T00:00:00Z: contraction -100.00 USD</li>", d)
        self.assertEqual(self.cm.searches(), ["ceo@acme.test"])
        self.assertTrue(self.cm.requests()[0]["headers"]["Authorization"].startswith("Basic "))
        self.wait_idle()
        self.assertEqual(self.card_comments(task["id"]), [])

    def test_not_found_then_a_second_email_adds_a_card_and_an_unchanged_one_none(self):
        self.cm.customers([customer("maria@work.test", "Maria's shop", 990000, plan="Business")])
        self.start()
        self.chat("client-1", "maria@home.test")
        [task] = self.wait_task()
        self.assertIn("<b>ChartMogul</b>: not found by the visitor's e-mails.", task["description"])
        self.wait_idle()
        # The visitor's second e-mail finds them: an updated card, as a comment.
        self.chat("client-1", "maria@work.test", "It's me again", event="chatFragment")
        wait_until(lambda: self.card_comments(task["id"]), message="no card comment")
        [card] = self.card_comments(task["id"])
        self.assertIn("(found by maria@work.test)", card)
        self.assertIn("MRR: 9,900.00 EUR", card)
        self.assertIn("Plan: Business", card)
        # The first e-mail's answer came from the cache: asked once.
        self.assertEqual(self.cm.searches(), ["maria@home.test", "maria@work.test"])
        self.wait_idle()
        # A third e-mail changes nothing: the cache answers the first two, the second matches before
        # the third is asked; no request, no card again.
        self.chat("client-1", "maria@other.test", "One more", event="chatFragment")
        self.wait_idle()
        assert_stays(lambda: len(self.card_comments(task["id"])) == 1, 1.0)
        self.assertEqual(self.cm.searches(), ["maria@home.test", "maria@work.test"])

    def test_the_cache_saves_requests_for_a_returning_visitor(self):
        self.cm.customers([ACME])
        self.start()
        self.chat("client-1", "ceo@acme.test")
        self.wait_task()
        self.wait_idle()
        n = len(self.cm.requests())
        self.assertEqual(n, 3)
        # The same person on another device: asked again, answered by the cache.
        self.chat("client-2", "ceo@acme.test", "From my phone")
        self.wait_idle()
        assert_stays(lambda: len(self.cm.requests()) == n, 0.5)

    def test_a_short_ttl_expires_the_cache(self):
        self.cm.customers([ACME])
        self.start(cache_ttl_s=1)
        self.chat("client-1", "ceo@acme.test")
        self.wait_task()
        self.wait_idle()
        self.assertEqual(self.cm.searches(), ["ceo@acme.test"])
        time.sleep(1.2)
        self.chat("client-2", "ceo@acme.test", "From my phone")
        wait_until(lambda: len(self.cm.searches()) == 2, message="the expired answer was not asked again")

    def test_ru_card(self):
        self.cm.customers([ACME])
        self.start_bridge(language="ru", enrich=enrich(self.cm))
        self.chat("client-1", "ceo@acme.test")
        [task] = self.wait_task()
        self.assertIn("Тариф: Pro annual, статус: Active", task["description"])
        self.assertIn("(найден по ceo@acme.test)", task["description"])


class TestCrmCompany(CrmCase):
    def seed_colleagues(self, emails):
        seed_colleagues(self.bridge, emails)

    def start_company(self, colleagues):
        self.start_bridge(enrich=enrich(self.cm), companies={"enabled": True})
        self.seed_colleagues(colleagues)

    def test_found_through_a_colleague(self):
        self.cm.customers([ACME])
        self.start_company(["dev%d@acme.test" % i for i in range(3)] + ["ceo@acme.test"] +
                           ["ops%d@acme.test" % i for i in range(60)])
        self.chat("client-1", "maria@acme.test")
        [task] = self.wait_task()
        wait_until(lambda: "(found by ceo@acme.test)" in (task["description"] + "".join(self.comments(task["id"]))),
                   message="no card found through the colleague")
        self.wait_idle()
        searches = self.cm.searches()
        # The person's own first, then colleagues oldest first (a few at once: they may arrive in any order).
        self.assertEqual(set(searches[:5]), {"maria@acme.test", "dev0@acme.test", "dev1@acme.test",
                                             "dev2@acme.test", "ceo@acme.test"})
        # First match wins: only the few asked while its customer was read follow, far below the cap.
        self.assertLess(len(searches), 5 + 12)

    def test_at_most_50_colleagues_are_asked(self):
        self.cm.customers([ACME])
        self.start_company(["ops%d@acme.test" % i for i in range(55)] + ["ceo@acme.test"] +
                           ["x@elsewhere.test"])
        self.chat("client-1", "maria@acme.test")
        [task] = self.wait_task()
        self.wait_idle(timeout=20)
        searches = self.cm.searches()
        self.assertEqual(len(searches), 1 + 50)
        self.assertNotIn("ceo@acme.test", searches)
        self.assertNotIn("x@elsewhere.test", searches)
        self.assertIn("not found", task["description"])


class TestCrmFaults(CrmCase):
    def test_slow_chartmogul_does_not_hold_the_task_and_the_card_follows(self):
        self.cm.customers([ACME])
        self.start(timeout_ms=20000)
        self.cm.faults([{"match": "GET /v1/customers/search", "action": "delay", "seconds": 5}])
        t0 = time.monotonic()
        self.chat("client-1", "ceo@acme.test")
        # Made after the bridge stops waiting (3 s), long before the answer (5 s).
        [task] = self.wait_task(timeout=4.5)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertNotIn("ChartMogul", task["description"])
        wait_until(lambda: self.card_comments(task["id"]), timeout=15, message="the card did not follow")
        self.assertIn("(found by ceo@acme.test)", self.card_comments(task["id"])[0])

    def test_chartmogul_down_then_back(self):
        self.cm.customers([ACME])
        self.start()
        self.cm.faults([{"action": "status", "status": 503, "times": 2}])
        self.chat("client-1", "ceo@acme.test")
        [task] = self.wait_task()
        self.assertNotIn("ChartMogul", task["description"])
        wait_until(lambda: self.card_comments(task["id"]), timeout=15, message="the card did not follow")
        self.assertIn("ChartMogul answered HTTP 503", self.bridge.log())
        self.assertTrue(self.bridge.running)

    def test_429_retry_after_is_respected(self):
        self.cm.customers([ACME])
        self.start()
        self.cm.faults([{"action": "status", "status": 429, "headers": {"Retry-After": "2"}}])
        self.chat("client-1", "ceo@acme.test")
        [task] = self.wait_task()
        wait_until(lambda: self.card_comments(task["id"]), timeout=15, message="the card did not follow")
        searches = self.cm.requests(path="/v1/customers/search")
        # One refused, one answered: no storm, and not before the time ChartMogul named.
        self.assertEqual(len(searches), 2)
        self.assertGreaterEqual(searches[1]["time"] - searches[0]["time"], 1.9)

    def test_malformed_json_is_logged_not_fatal(self):
        self.cm.customers([ACME])
        self.start()
        self.cm.faults([{"action": "status", "status": 200, "body": "<html>oops"}])
        self.chat("client-1", "ceo@acme.test")
        [task] = self.wait_task()
        wait_until(lambda: "(found by ceo@acme.test)" in (task["description"] + "".join(self.comments(task["id"]))),
                   timeout=15, message="no card after the garbage answer")
        self.assertIn("ChartMogul answered HTTP 200 with something other than a JSON object", self.bridge.log())
        self.assertTrue(self.bridge.running)

    def test_health_metrics_and_admin_page_show_the_crm_upstream(self):
        token = "admin-token-0123456789-abcdef"
        self.start_bridge(enrich=enrich(self.cm), admin={"token": token})
        self.cm.faults([{"action": "status", "status": 503, "times": 100}])
        self.chat("client-1", "ceo@acme.test")
        self.wait_task()

        def failing():
            ups = {u["name"]: u for u in self.health()["engine"]["upstreams"]}
            return ups.get("crm", {}).get("state") == "failing"
        wait_until(failing, message="the crm upstream is not shown failing")
        r = self.bridge.get("/admin/api/overview", headers={"Authorization": "Bearer " + token})
        self.assertEqual(r.status, 200, r.body)
        [crm] = [u for u in r.json()["upstreams"] if u["name"] == "crm"]
        self.assertEqual(crm["kind"], "chartmogul")
        self.assertEqual(crm["state"], "failing")
        self.assertIn("ChartMogul answered HTTP 503", crm["last_error"])
        metrics = self.bridge.get("/metrics").body
        self.assertIn('chatra_bridge_upstream_requests_total{upstream="crm",status="503"}', metrics)
        self.cm.clear_faults()


class TestCrmOff(E2ECase):
    def test_without_enrich_nothing_changes(self):
        cm = FakeChartMogul()
        self.addCleanup(cm.cleanup)
        cm.customers([ACME])
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="ceo@acme.test"))
        [task] = self.wait_task()
        self.wait_idle()
        self.assertNotIn("ChartMogul", task["description"])
        self.assertEqual(cm.requests(), [])
        self.assertNotIn("crm", [u["name"] for u in self.health()["engine"]["upstreams"]])

    def test_lookups_left_by_a_run_with_enrich_end_without_it(self):
        cm = FakeChartMogul()
        self.addCleanup(cm.cleanup)
        add_env(self.bridge)
        self.start_bridge(enrich=enrich(cm))
        cm.faults([{"action": "hang"}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="ceo@acme.test"))
        self.wait_task()
        cm.wait_requests(1)
        self.bridge.stop()
        cm.reset()
        del self.bridge.config["enrich"]
        self.bridge.start()
        # The look-up left in the store ends at once, asking nothing: the queue empties.
        self.wait_idle()
        self.assertEqual(len(cm.requests()), 0)

    def test_enrich_added_and_removed_by_a_reload(self):
        cm = FakeChartMogul()
        self.addCleanup(cm.cleanup)
        cm.customers([ACME])
        add_env(self.bridge)
        self.start_bridge()
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")], email="first@acme.test"))
        [task] = self.wait_task()
        self.assertNotIn("ChartMogul", task["description"])

        def hup():
            self.bridge.config["enrich"] = enrich(cm)
            self.bridge.write_config()
            n = self.bridge.log().count("reload: config ")
            self.bridge.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: self.bridge.log().count("reload: config ") > n, message="no reload")
        hup()
        self.post(chat_event("chatStarted", "client-2", [msg("n1", "Hi")], email="ceo@acme.test"))
        tasks = self.wait_task(2)
        self.assertIn("(found by ceo@acme.test)", tasks[1]["description"])
        self.assertEqual(len(cm.searches()), 1)
        # Off again: nothing more is asked.
        del self.bridge.config["enrich"]
        self.bridge.write_config()
        n = self.bridge.log().count("reload: config ")
        self.bridge.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.bridge.log().count("reload: config ") > n, message="no reload")
        self.post(chat_event("chatStarted", "client-3", [msg("o1", "Hey")], email="other@acme.test"))
        tasks = self.wait_task(3)
        self.wait_idle()
        self.assertNotIn("ChartMogul", tasks[2]["description"])
        self.assertEqual(len(cm.searches()), 1)


if __name__ == "__main__":
    unittest.main()
