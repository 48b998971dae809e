"""The README's "The CRM card (ChartMogul)" and "The admin page", claim by claim, with an admin's
variations (custom values, options on and off), against the fakes (tests/fakes/fake_chartmogul.py)."""

import json
import os
import signal
import sqlite3
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import assert_stays, chat_event, msg, now_ms, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402
from admin import ADMIN_TOKEN, BEARER, FORM, AdminCase  # noqa: E402
from chartmogul import ACME, FakeChartMogul, add_env, enrich, seed_colleagues  # noqa: E402
from test_e2e_redmine import POLL_WAIT, RedmineCase  # noqa: E402
from ws_client import Closed, WebSocket  # noqa: E402


class CrmCase(E2ECase):
    def setUp(self):
        super().setUp()
        self.cm = FakeChartMogul()
        self.addCleanup(self.cm.cleanup)
        add_env(self.bridge)

    def chat(self, client, email, text="Hello", event="chatStarted", **fields):
        self.post(chat_event(event, client, [msg("%s-%s" % (client, text), text)], email=email, **fields))

    def card_comments(self, task):
        return [p["body"]["description"] for p in self.comment_posts(task) if "ChartMogul" in p["body"]["description"]]

    def crm_cached_at(self, email):
        db = sqlite3.connect(os.path.join(self.bridge.tmpdir, "bridge.db"))
        try:
            row = db.execute("SELECT fetched_at FROM crm_cache WHERE email=?", (email,)).fetchone()
        finally:
            db.close()
        return row[0]

    def seed_colleagues(self, emails):
        seed_colleagues(self.bridge, emails)


class TestCrmCardReadme(CrmCase):
    # README: "`crm.url` (the customer in ChartMogul; only an `http(s)://` address)", and
    # "every text a visitor controls is escaped where shown": the CRM's words are text in the HTML card.
    def test_the_crm_words_are_escaped_and_only_a_web_address_is_linked(self):
        self.cm.customers([dict(ACME, email="ceo@acme.test", name="<script>alert(1)</script> & Co",
                                **{"chartmogul-url": "javascript:alert(1)"})])
        self.start_bridge(enrich=enrich(self.cm))
        self.chat("client-1", "ceo@acme.test")
        [task] = self.wait_task()
        d = task["description"]
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co", d)
        self.assertNotIn("<script>", d)
        self.assertNotIn("javascript:", d)
        # Without an address the name is no link (not one to the task itself).
        self.assertIn("<b>ChartMogul</b>: &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co (found by", d)
        self.assertNotIn('href=""', d)

    # README: "cache_ttl_s ... (default 86400: a day; 0 = never cached)".
    def test_cache_ttl_0_asks_every_time(self):
        self.cm.customers([ACME])
        self.start_bridge(enrich=enrich(self.cm, cache_ttl_s=0))
        self.chat("client-1", "ceo@acme.test")
        self.wait_task()
        self.wait_idle()
        self.chat("client-2", "ceo@acme.test", "From my phone")
        wait_until(lambda: self.cm.searches() == ["ceo@acme.test", "ceo@acme.test"],
                   message=lambda: "searches: %s" % self.cm.searches())

    # README: "with `companies.enabled` and a company domain (not a public mail provider), up to 50
    # e-mails of other people the bridge knows at that domain".
    def test_a_public_mail_provider_is_no_company(self):
        self.cm.customers([dict(ACME, email="boss@gmail.com")])
        self.start_bridge(enrich=enrich(self.cm), companies={"enabled": True})
        self.seed_colleagues(["boss@gmail.com"])
        self.chat("client-1", "maria@gmail.com")
        [task] = self.wait_task()
        self.wait_idle()
        self.assertEqual(self.cm.searches(), ["maria@gmail.com"])
        self.assertIn("not found by the visitor's e-mails", task["description"])

    # README: "companies.enabled" off: only the person's own e-mails are asked.
    def test_without_companies_no_colleague_is_asked(self):
        self.cm.customers([ACME])
        self.start_bridge(enrich=enrich(self.cm))
        self.seed_colleagues(["ceo@acme.test"])
        self.chat("client-1", "maria@acme.test")
        self.wait_task()
        self.wait_idle()
        self.assertEqual(self.cm.searches(), ["maria@acme.test"])

    # README: "These variables are the card's own: the task's title and description templates do not
    # see them." (a template that names them is refused like any unknown variable).
    def test_the_task_templates_do_not_see_the_crm_variables(self):
        self.config = dict(self.config, enrich=enrich(self.cm))
        self.config["channels"][0]["task"] = dict(self.config["channels"][0]["task"], title="Chat [{{crm.name}}]")
        self.bridge.config = self.config
        self.bridge.write_config()
        r = self.bridge.run("check-config", "--config", self.bridge.config_path)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('channels[0].task.title:1:7: unknown template variable "crm.name"', r.stderr)
        # The card's own text sees them.
        self.config["channels"][0]["task"]["title"] = "Chat"
        self.config["texts"] = {"crm_card": "<p>{{crm.name}}</p>"}
        self.bridge.write_config()
        r = self.bridge.run("check-config", "--config", self.bridge.config_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    # README: '"Not found" is written into the description when known in time; later it is written
    # only when it replaces a card shown before.'
    def test_a_late_not_found_adds_nothing(self):
        self.start_bridge(enrich=enrich(self.cm, timeout_ms=20000))
        self.cm.faults([{"match": "GET /v1/customers/search", "action": "delay", "seconds": 4, "times": 1}])
        self.chat("client-1", "nobody@acme.test")
        [task] = self.wait_task(timeout=15)
        self.assertNotIn("ChartMogul", task["description"])
        wait_until(lambda: len(self.cm.searches()) == 1 and self.idle(), timeout=15, message="not asked")
        assert_stays(lambda: self.card_comments(task["id"]) == [], 0.5)

    # README: "the `crm_card` text ... in `language`" with a custom text (the bridge's own words).
    def test_a_custom_crm_card_text(self):
        self.cm.customers([ACME])
        self.start_bridge(enrich=enrich(self.cm), language="ru",
                          texts={"crm_card": "<p>CRM {{crm.name}} {{crm.mrr}} {{crm.currency}} {{crm.status}} "
                                             "{{#crm.activities}}[{{type}} {{amount}}]{{/crm.activities}}</p>"})
        self.chat("client-1", "ceo@acme.test")
        [task] = self.wait_task()
        self.assertIn("<p>CRM Acme Inc 1,234.50 USD USD Active [contraction -100.00 USD][expansion 100.00 USD]"
                      "[expansion 234.50 USD][contraction -100.00 USD][expansion 300.00 USD]</p>", task["description"])


    # README: "when the person gains an e-mail (or a device or a thread with other e-mails joins
    # them)": a merged thread's e-mails are asked, and the card found follows as a comment.
    def test_a_thread_that_joins_brings_its_emails(self):
        self.cm.customers([dict(ACME, email="work@acme.test")])
        self.start_bridge(enrich=enrich(self.cm))
        self.chat("laptopQm7TzR2pLx9", "home@acme.test")
        [t1] = self.wait_task()
        self.assertIn("not found", t1["description"])
        self.wait_idle()
        self.chat("phoneVbN4cW8kDs3j", "work@acme.test", "Hi from the phone")
        t2 = self.wait_task(2)[1]
        self.assertIn("(found by work@acme.test)", t2["description"])
        self.wait_idle()
        # The phone gives the laptop's e-mail: one person, one thread; the card follows.
        self.chat("phoneVbN4cW8kDs3j", "home@acme.test", "It is me", event="chatFragment")
        wait_until(lambda: self.card_comments(t1["id"]), message="no card on the laptop's task")
        [card] = self.card_comments(t1["id"])
        self.assertIn("(found by work@acme.test)", card)
        # Both answers came from the cache.
        self.assertEqual(self.cm.searches(), ["home@acme.test", "work@acme.test"])

    # README: "A card known by then goes at the end of the description".
    def test_the_card_goes_at_the_end_of_a_custom_description(self):
        self.cm.customers([ACME])
        self.start_bridge(enrich=enrich(self.cm), channel={"task": {"description": "<p>From {{visitor.name}}</p>"}})
        self.chat("client-1", "ceo@acme.test", name="Maria")
        [task] = self.wait_task()
        d = task["description"]
        self.assertTrue(d.startswith("<p>From Maria</p>"), d)
        self.assertTrue(d.rstrip().endswith("</ul>"), d)
        self.assertIn("<b>ChartMogul</b>", d)

    # README: "a 429's `Retry-After` pauses every request to ChartMogul until then"; "ChartMogul is an
    # upstream like the tracker: `crm` in `/healthz` (`degraded` while it fails) ... and on the admin
    # page's overview".
    def test_a_429_pauses_the_crm_upstream_in_healthz(self):
        self.cm.customers([ACME])
        self.start_bridge(enrich=enrich(self.cm))
        self.cm.faults([{"action": "status", "status": 429, "headers": {"Retry-After": "30"}}])
        self.chat("client-1", "ceo@acme.test")
        self.wait_task()

        def crm():
            h = self.health()
            return h, {u["name"]: u for u in h["engine"]["upstreams"]}.get("crm")
        wait_until(lambda: crm()[1]["state"] == "paused", message=lambda: crm())
        h, up = crm()
        self.assertEqual(h["status"], "degraded")
        self.assertGreater(up["paused_until"], now_ms() + 20000)
        self.assertEqual(len(self.cm.searches()), 1)

    # README: '"Not found" ... later it is written only when it replaces a card shown before.'
    def test_a_later_not_found_replaces_a_card_shown_before(self):
        self.cm.customers([ACME])
        self.start_bridge(enrich=enrich(self.cm, cache_ttl_s=1))
        self.chat("client-1", "ceo@acme.test")
        [task] = self.wait_task()
        self.assertIn("(found by ceo@acme.test)", task["description"])
        self.wait_idle()
        # ChartMogul forgets the customer; once the cached answer is old, a new e-mail asks again.
        self.cm.reset()
        wait_until(lambda: now_ms() - self.crm_cached_at("ceo@acme.test") > 1100, message="the cache entry is young")
        self.chat("client-1", "maria@acme.test", "Another address", event="chatFragment")
        wait_until(lambda: self.card_comments(task["id"]), message="no card comment")
        [card] = self.card_comments(task["id"])
        self.assertIn("not found by the visitor's e-mails", card)

    # README: "The first e-mail in that order that ChartMogul knows wins" and "A look-up that fails
    # ... runs again with the job queue's backoff": the person's own e-mail failing once does not let a
    # colleague's card win for good; the person's card follows.
    def test_a_failed_first_email_is_asked_again_before_a_later_one_wins(self):
        self.cm.customers([ACME, dict(ACME, email="maria@acme.test", name="Maria's own account")])
        self.start_bridge(enrich=enrich(self.cm, requests_per_second=2), companies={"enabled": True})
        self.seed_colleagues(["ceo@acme.test"])
        self.cm.faults([{"match": "GET /v1/customers/search", "action": "status", "status": 503}])
        self.chat("client-1", "maria@acme.test")
        [task] = self.wait_task()
        wait_until(lambda: any("(found by maria@acme.test)" in c for c in self.card_comments(task["id"])),
                   timeout=15, message=lambda: "the person's own card did not follow: %s %s"
                   % (self.fakes.planfix_task(task["id"])["description"], self.card_comments(task["id"])))
        self.assertEqual(self.cm.searches()[0], "maria@acme.test")

    # README: "the look-up runs again with the job queue's backoff (after 50 attempts it is a dead
    # letter like any job: `retry` puts it back) ... The card follows as a comment once ChartMogul
    # answers again."
    def test_a_look_up_that_keeps_failing_is_a_dead_letter_and_retry_brings_the_card(self):
        self.cm.customers([ACME])
        self.bridge.env["BR_ADMIN_TOKEN"] = ADMIN_TOKEN
        self.start_bridge(enrich=enrich(self.cm), admin={"token": "env:BR_ADMIN_TOKEN"})
        self.cm.faults([{"action": "status", "status": 503, "times": 1000}])
        self.chat("client-1", "ceo@acme.test")
        [task] = self.wait_task()
        self.assertNotIn("ChartMogul", task["description"])
        self.cm.wait_requests(1)
        # The 50th attempt is next.
        self.bridge.stop()
        db = sqlite3.connect(os.path.join(self.bridge.tmpdir, "bridge.db"))
        with db:
            self.assertEqual(db.execute("UPDATE jobs SET attempts=49, next_at=0 WHERE kind='crm' AND state<2").rowcount,
                             1)
        db.close()
        self.bridge.start()
        dead = wait_until(lambda: self.bridge.get("/admin/api/dead-letters", BEARER).json() or None,
                          message="the look-up is no dead letter")
        self.assertEqual([d["kind"] for d in dead], ["crm"])
        self.assertIn("ChartMogul answered HTTP 503", dead[0]["error"])
        self.cm.clear_faults()
        r = self.bridge.post("/admin/api/dead-letters/%d/retry" % dead[0]["id"], b"", BEARER)
        self.assertEqual(r.status, 200, r.body)
        wait_until(lambda: self.card_comments(task["id"]), message="the card did not follow")
        self.assertIn("(found by ceo@acme.test)", self.card_comments(task["id"])[0])

    # README: "Answers are cached in the store by e-mail for `cache_ttl_s` ... Older answers are removed
    # once a minute." (the first time when the bridge starts).
    def test_older_answers_are_removed(self):
        self.start_bridge(enrich=enrich(self.cm, cache_ttl_s=3600))
        self.bridge.stop()
        db = sqlite3.connect(os.path.join(self.bridge.tmpdir, "bridge.db"))
        with db:
            db.executemany("INSERT INTO crm_cache(email, card, fetched_at) VALUES(?, NULL, ?)",
                           [("old@acme.test", now_ms() - 3601 * 1000), ("young@acme.test", now_ms() - 3000 * 1000)])
        db.close()
        self.bridge.start()

        def cached():
            db = sqlite3.connect(os.path.join(self.bridge.tmpdir, "bridge.db"))
            try:
                return sorted(e for (e,) in db.execute("SELECT email FROM crm_cache"))
            finally:
                db.close()
        wait_until(lambda: cached() == ["young@acme.test"], message=lambda: cached())
        # The young one still answers: no request for it.
        self.chat("client-1", "young@acme.test")
        [task] = self.wait_task()
        self.wait_idle()
        self.assertEqual(self.cm.searches(), [])
        self.assertIn("not found by the visitor's e-mails", task["description"])

class TestCrmCommandReadme(CrmCase):
    def crm(self, *args):
        self.bridge.write_config()
        return self.bridge.run("crm", "--config", self.bridge.config_path, *args)

    # README: "asks ChartMogul at once (neither reading nor writing the store's cache)".
    def test_the_command_neither_reads_nor_writes_the_cache(self):
        self.cm.customers([ACME])
        self.start_bridge(enrich=enrich(self.cm))
        self.chat("client-1", "ceo@acme.test")
        self.wait_task()
        self.wait_idle()
        self.assertEqual(self.cm.searches(), ["ceo@acme.test"])
        for _ in range(2):
            r = self.crm("--email", "ceo@acme.test")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(json.loads(r.stdout)["crm"]["found"])
        self.assertEqual(self.cm.searches(), ["ceo@acme.test"] * 3)
        # Nothing it asked is in the store: the bridge asks itself for a new address.
        r = self.crm("--email", "new@acme.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.chat("client-2", "new@acme.test")
        wait_until(lambda: self.cm.searches().count("new@acme.test") == 2, message=lambda: self.cm.searches())

    # README: "exits 1 when ChartMogul could not be asked, 2 without `--email` or without an `enrich`
    # section"; "`crm` prints JSON: `crm` (the template's variables) and `card` (the rendered `crm_card`)".
    def test_exit_codes_and_output(self):
        self.bridge.config = self.config = dict(self.config, enrich=enrich(self.cm, timeout_ms=300))
        r = self.crm()
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(self.cm.requests(), [])
        r = self.crm("--email", "nobody@acme.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(set(out), {"crm", "card"})
        self.assertFalse(out["crm"]["found"])
        # A 5xx and no answer within timeout_ms: 1.
        self.cm.faults([{"action": "status", "status": 502}])
        self.assertEqual(self.crm("--email", "a@acme.test").returncode, 1)
        self.cm.faults([{"action": "hang"}])
        r = self.crm("--email", "a@acme.test")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.cm.clear_faults()


    # README: "following `has_more`/`cursor` ... Then the customer's subscriptions (the active one's
    # plan)": an active subscription on a later page is the plan.
    def test_the_active_plan_on_a_later_page(self):
        self.cm.customers([dict(ACME, activities=[], subscriptions=[
            {"plan": "Trial", "status": "cancelled"}, {"plan": "Starter", "status": "cancelled"},
            {"plan": "Business", "status": "active"}])])
        self.cm.settings(max_per_page=1)
        self.bridge.config = self.config = dict(self.config, enrich=enrich(self.cm))
        r = self.crm("--email", "ceo@acme.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["crm"]["plan"], "Business")
        self.assertEqual(len(self.cm.requests(prefix="/v1/customers/cus_")), 3 + 1)

    # README: "`crm.url` (the customer in ChartMogul; only an `http(s)://` address)", the card "HTML
    # for Planfix, Textile for Redmine, in `language`": without an address, no broken link.
    def test_a_card_without_an_address_in_every_format_and_language(self):
        self.cm.customers([dict(ACME, **{"chartmogul-url": "ftp://example.org/x"})])
        trackers = {"planfix": self.config["tracker"],
                    "redmine": {"kind": "redmine", "url": "http://127.0.0.1:9", "api_key": "k" * 20,
                                "project": "chats"}}
        channels = {"planfix": self.config["channels"],
                    "redmine": [dict({k: v for k, v in self.config["channels"][0].items() if k != "contact"},
                                     task={"closed_status_id": 3})]}
        # Redmine names an employee's user by login.
        employees = {"planfix": self.config["employees"],
                     "redmine": [dict(e, tracker_user=e["tracker_user"].replace("user:", "login"))
                                 if "tracker_user" in e else e for e in self.config["employees"]]}
        for language in ("en", "ru"):
            for kind in ("planfix", "redmine"):
                self.bridge.config = self.config = dict(self.config, language=language, tracker=trackers[kind],
                                                        channels=channels[kind], employees=employees[kind],
                                                        enrich=enrich(self.cm))
                r = self.crm("--email", "ceo@acme.test")
                self.assertEqual(r.returncode, 0, r.stderr)
                out = json.loads(r.stdout)
                self.assertNotIn("url", out["crm"])
                card = out["card"]
                self.assertNotIn("ftp:", card)
                if kind == "planfix":
                    self.assertNotIn("<a ", card, (language, card))
                    self.assertIn("</b>: Acme Inc (", card)
                else:
                    self.assertNotIn('":', card, (language, card))
                    self.assertIn("*: Acme Inc (", card)


class TestAdminReadme(AdminCase):
    ROUTES = [("GET", "/admin/api/session"), ("GET", "/admin/api/overview"),
              ("GET", "/admin/api/conversations?q=maria&limit=50"), ("GET", "/admin/api/conversations/1"),
              ("GET", "/admin/api/identities?q=maria"), ("GET", "/admin/api/dead-letters"),
              ("POST", "/admin/api/dead-letters/1/retry"), ("POST", "/admin/api/dead-letters/1/discard"),
              ("POST", "/admin/api/merges/1/unmerge")]

    # README: "with the cookie or the Bearer token (without: 401 `{"error":"login required"}`)" and
    # "Every answer under `/admin/` carries a strict Content-Security-Policy and `Cache-Control: no-store`."
    def test_every_route_needs_a_login_and_every_answer_is_strict(self):
        self.start_admin()
        for method, path in self.ROUTES:
            r = self.raw(method, path, b"" if method == "POST" else None)
            self.assertEqual((r.status, r.json()), (401, {"error": "login required"}), (method, path))
            self.assert_admin_headers(r)
        # A wrong method, a refused CSRF, a 404 and a throttled address: the same headers.
        session, _ = self.login()
        for r in (self.raw("GET", "/admin/api/dead-letters/1/retry", None, BEARER),
                  self.raw("POST", "/admin/api/dead-letters/1/retry", b"", session),
                  self.raw("POST", "/admin/api/dead-letters/1/retry", b"", BEARER),
                  self.raw("POST", "/admin/login", "token=x", FORM),
                  self.raw("GET", "/admin/ws")):
            self.assert_admin_headers(r)

    # README: `GET /admin/api/session` answers `{"csrf":…,"auth":"cookie","expires_at":…}`;
    # the session "lasts `admin.session_ttl_s`"; "a restart logs everyone out".
    def test_the_session_lasts_session_ttl_s_and_a_restart_ends_it(self):
        self.start_admin(admin={"session_ttl_s": 600})
        before = now_ms()
        session, csrf = self.login()
        s = self.api("session", session)
        self.assertEqual((s["csrf"], s["auth"]), (csrf, "cookie"))
        self.assertGreaterEqual(s["expires_at"], before + 600 * 1000)
        self.assertLessEqual(s["expires_at"], now_ms() + 600 * 1000)
        self.bridge.restart()
        self.api("session", session, 401)

    # README: "with `listen.trusted_proxies` set to nginx's address, so that wrong tokens are counted
    # per visitor".
    def test_wrong_tokens_are_counted_per_visitor_behind_a_trusted_proxy(self):
        self.start_admin(listen={"trusted_proxies": ["127.0.0.1"]}, limits={"bad_secrets_per_minute": 2})
        a, b = {"X-Forwarded-For": "192.0.2.10"}, {"X-Forwarded-For": "192.0.2.20"}
        for _ in range(2):
            self.assertEqual(self.bridge.post("/admin/login", {"token": "wrong-token"}, a).status, 401)
        self.assertEqual(self.bridge.post("/admin/login", {"token": "wrong-token"}, a).status, 429)
        self.assertEqual(self.bridge.post("/admin/login", {"token": "wrong-token"}, b).status, 401)
        r = self.bridge.post("/admin/login", {"token": ADMIN_TOKEN}, b)
        self.assertEqual(r.status, 200, r.body)

    # README: `GET /admin/api/conversations/12` answers '{"conversation":{…the same, and
    # "person_id","phone","created_at","tasks"},"timeline":[…],"truncated":false}'.
    def test_one_conversation_has_its_fields(self):
        self.start_admin()
        self.open_chat("client-1", name="Maria", email="maria@example.org", phone="+1 555 0100")
        self.wait_idle()
        one = self.api("conversations/1")
        self.assertEqual(set(one), {"conversation", "timeline", "truncated"})
        conv = one["conversation"]
        listed = self.api("conversations")["conversations"][0]
        self.assertEqual(set(conv), set(listed) | {"person_id", "phone", "created_at", "tasks"})
        self.assertIsInstance(conv["person_id"], int)
        self.assertEqual(conv["phone"], "+1 555 0100")
        self.assertGreater(conv["created_at"], 1700000000000)
        self.assertEqual(conv["tasks"], 1)

    # README: "GET /admin/ws (WebSocket, subprotocol br-admin, the same port) with the cookie or the
    # Bearer token" and the overview's version, uptime and config file.
    def test_a_script_gets_live_updates_with_the_bearer_token(self):
        self.start_admin()
        ws = WebSocket(self.bridge.port, "/admin/ws", BEARER, "br-admin")
        self.addCleanup(ws.close)
        self.open_chat("client-1")
        wait_until(lambda: ws.recv_json(10) == {"type": "conversation", "id": 1}, message="no update")

    # README: the overview's upstream "as working, paused or failing ... until when it is paused";
    # `paused_until`, `last_error`, `failing_since` "are those of `/healthz`"; "the job queue, with
    # the age of the oldest item" (`jobs.queued`, `running`, `oldest_at`).
    def test_a_paused_tracker_and_waiting_jobs_in_the_overview(self):
        self.start_admin()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/", "action": "status", "status": 429,
                                       "headers": {"Retry-After": "30"}}])
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        wait_until(lambda: self.api("overview")["upstreams"][0]["state"] == "paused",
                   message=lambda: self.api("overview"))
        ov = self.api("overview")
        tracker = ov["upstreams"][0]
        [ht] = [u for u in self.health()["engine"]["upstreams"] if u["name"] == "tracker"]
        self.assertEqual(tracker["paused_until"], ht["paused_until"])
        self.assertGreater(tracker["paused_until"], now_ms() + 20000)
        self.assertEqual(tracker["last_error"], ht.get("last_error"))
        self.assertGreaterEqual(ov["jobs"]["queued"] + ov["jobs"]["running"], 1)
        self.assertIsInstance(ov["jobs"]["oldest_at"], int)
        self.assertLessEqual(ov["jobs"]["oldest_at"], now_ms())
        self.assertEqual(ov["upstreams"][0]["kind"], "planfix")
        self.fakes.clear_faults("planfix")

    # README: "`quota.used_today` those since 00:00 UTC (the tracker's: kept in the store, so across
    # restarts; a Chatra account's: since the bridge started, if later)".
    def test_used_today_across_a_restart(self):
        self.start_admin()
        self.open_chat("client-1")
        self.wait_idle()
        tracker, chatra = self.api("overview")["upstreams"]
        used = tracker["quota"]["used_today"]
        self.assertGreater(used, 0)
        self.assertGreater(chatra["quota"]["used_today"], 0)
        self.bridge.restart()
        tracker, chatra = self.api("overview")["upstreams"]
        self.assertEqual(tracker["quota"]["used_today"], used)
        self.assertEqual(tracker["requests_last_minute"], 0)
        self.assertEqual(chatra["quota"]["used_today"], 0)

    # README: "A conversation's `state` is `active`, `closed` (its task is completed)".
    def test_a_conversation_whose_task_is_completed_is_closed(self):
        self.start_admin(channel={"close_on_leave": True})
        task, _ = self.open_chat("client-1")
        self.wait_idle()
        self.post(chat_event("chatTranscript", "client-1", [msg("client-1-m1", "Hello, is the blue kettle in stock?")]))
        wait_until(lambda: self.api("conversations")["conversations"][0]["state"] == "closed",
                   message=lambda: self.api("conversations"))
        c = self.api("conversations")["conversations"][0]
        self.assertEqual(c["task"]["state"], "closed")

    # README: "Its timeline, oldest first (the latest 2000 rows)" and `"truncated":false`.
    def test_the_timeline_keeps_the_latest_2000_rows(self):
        self.start_admin()
        self.open_chat("client-1")
        self.wait_idle()
        n = len(self.timeline(1))
        self.assertFalse(self.api("conversations/1")["truncated"])
        self.bridge.stop()
        db = sqlite3.connect(os.path.join(self.bridge.tmpdir, "bridge.db"))
        with db:
            db.executemany("INSERT INTO activity(conv_id, at, type, data) VALUES(1, ?, 'visit', ?)",
                           [(1000 + i, json.dumps({"device": "x", "note": "old %d" % i})) for i in range(2000)])
        db.close()
        self.bridge.start()
        one = self.api("conversations/1")
        self.assertTrue(one["truncated"])
        tl = one["timeline"]
        self.assertEqual(len(tl), 2000)
        self.assertEqual([i["at"] for i in tl], sorted(i["at"] for i in tl))
        # The newest rows are kept: the chat's own, and the latest of the old ones.
        self.assertEqual(tl[-n:], self.timeline(1)[-n:])
        self.assertEqual(tl[0]["note"], "old %d" % n)

    # README: "`POST /admin/login` takes `token=…` as a form (303 to the page) or `{"token":"…"}`"
    # and "Scripts send `Authorization: Bearer <admin.token>`", for any token an admin may choose.
    def test_a_token_with_form_special_characters(self):
        token = "a+b&c=d%20e f;g\"h'<i>-0123456789"
        self.bridge.env["BR_ADMIN_TOKEN"] = token
        self.start_bridge(admin={"token": "env:BR_ADMIN_TOKEN"})
        r = self.raw("POST", "/admin/login", "token=" + urllib.parse.quote_plus(token), FORM)
        self.assertEqual((r.status, r.headers.get("Location")), (303, "/admin/"), r.body)
        r = self.raw("POST", "/admin/login", "token=" + urllib.parse.quote(token, safe=""), FORM)
        self.assertEqual(r.status, 303, r.body)
        r = self.bridge.post("/admin/login", {"token": token})
        self.assertEqual(r.status, 200, r.body)
        self.api("overview", {"Authorization": "Bearer " + token})
        self.assertEqual(self.bridge.post("/admin/login", "token=" + urllib.parse.quote_plus(token[:-1]),
                                          FORM).status, 401)

    # README: "`admin.token` ... 16+ characters".
    def test_a_short_token_is_refused_by_the_config_check(self):
        self.bridge.env["BR_ADMIN_TOKEN"] = "x" * 15
        self.bridge.config = self.config = dict(self.config, admin={"token": "env:BR_ADMIN_TOKEN"})
        self.bridge.write_config()
        r = self.bridge.run("check-config", "--config", self.bridge.config_path)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("admin.token", r.stderr)
        self.bridge.env["BR_ADMIN_TOKEN"] = "x" * 16
        r = self.bridge.run("check-config", "--config", self.bridge.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)

    # README: "Client ids are shortened, as `identities` shows them." (in every answer of the API:
    # the timeline's requests to Chatra and the dead letters too).
    def test_client_ids_are_shortened_everywhere(self):
        client = "laptopQm7TzR2pLx9"
        self.start_admin()
        task, _ = self.open_chat(client, name="Maria", email="maria@example.org", chatId="chat-42")
        self.wait_idle()
        self.fakes.employee_comment(task, owner="user:5", name="Anna", text="<p>Yes, it is blue.</p>")
        self.assertEqual(self.bridge.post_planfix(task)[0], 200)
        self.wait_chatra()
        self.wait_idle()
        # A reply Chatra refuses for good: a dead letter with its request.
        self.fakes.faults("chatra", [{"match": "POST /api/messages/", "action": "status", "status": 400,
                                      "body": {"error": "Bad Request", "message": "no client " + client}}])
        self.fakes.employee_comment(task, owner="user:5", name="Anna", text="<p>Second answer.</p>")
        self.assertEqual(self.bridge.post_planfix(task)[0], 200)
        wait_until(lambda: self.api("dead-letters") or None, message="no dead letter")
        for path in ("conversations", "conversations/1", "identities", "dead-letters", "overview"):
            r = self.bridge.get("/admin/api/" + path, BEARER)
            self.assertEqual(r.status, 200, r.body)
            self.assertNotIn(client, r.body, path)
        # Chatra's answers name the visitor: kept with the id shortened.
        [dead] = self.api("dead-letters")
        self.assertIn("lapt...(17 chars)", dead["response"])
        [sent] = [j for j in self.timeline(1, "job") if j["kind"] == "reply" and j["state"] == "done"]
        self.assertIn('"clientId": "lapt...(17 chars)"', sent["response"])

    def reload_admin(self, admin):
        """A reload (SIGHUP) with admin as the config's admin section (None: without one)."""
        if admin is None:
            self.bridge.config.pop("admin", None)
        else:
            self.bridge.config["admin"] = admin
        self.bridge.write_config()
        n = self.bridge.log().count("reload: config ")
        self.bridge.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.bridge.log().count("reload: config ") > n, message="no reload")

    def assert_closed(self, ws):
        seen = []
        with self.assertRaises((Closed, ConnectionError), msg=lambda: seen):
            while True:
                seen.append(ws.recv(timeout=5))

    # README: "`admin.token` (a new one ends every login to the admin page)" (a reload), and the live
    # updates are had "with the cookie or the Bearer token": a new token ends the WebSockets of the old
    # one at once, the sessions' and the scripts'.
    def test_a_new_token_ends_the_websockets_of_the_old_one(self):
        token_file = os.path.join(self.bridge.tmpdir, "admin.token")
        with open(token_file, "w") as f:
            f.write(ADMIN_TOKEN)
        self.start_admin(admin={"token": "file:" + token_file})
        session, _ = self.login()
        page, script = WebSocket(self.bridge.port, "/admin/ws", session), WebSocket(self.bridge.port, "/admin/ws",
                                                                                      BEARER)
        self.addCleanup(page.close)
        self.addCleanup(script.close)
        with open(token_file, "w") as f:
            f.write("another-admin-token-9876543210")
        self.reload_admin(self.bridge.config["admin"])
        fresh = WebSocket(self.bridge.port, "/admin/ws", {"Authorization": "Bearer another-admin-token-9876543210"})
        self.addCleanup(fresh.close)
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        self.assert_closed(page)
        self.assert_closed(script)
        # The new token's go on.
        wait_until(lambda: fresh.recv_json(10) == {"type": "conversation", "id": 1}, message="no update")

    # README: "Without `admin.token` it is off": a reload that removes it closes the live updates too.
    def test_a_reload_without_the_token_closes_the_websockets(self):
        self.start_admin()
        script = WebSocket(self.bridge.port, "/admin/ws", BEARER)
        self.addCleanup(script.close)
        self.reload_admin(None)
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]))
        self.assert_closed(script)
        self.assertEqual(self.bridge.get("/admin/api/overview", BEARER).status, 404)

    # README: the bridge sends `{"type":"dead_letters"}` (the dead letters changed): a discard and an
    # unmerge are told too.
    def test_a_discard_and_an_unmerge_are_told(self):
        self.start_admin()
        task, _ = self.open_chat("laptopQm7TzR2pLx9", email="maria@example.org")
        self.wait_idle()
        ws = WebSocket(self.bridge.port, "/admin/ws", BEARER)
        self.addCleanup(ws.close)
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "fail_in_2xx",
                                       "code": 41}])
        self.post(chat_event("chatFragment", "laptopQm7TzR2pLx9", [msg("m2", "refused")]))
        wait_until(lambda: ws.recv_json(10) == {"type": "dead_letters"}, message="no dead_letters")
        [dead] = self.api("dead-letters")
        self.act("dead-letters/%d/discard" % dead["id"])
        wait_until(lambda: ws.recv_json(10) == {"type": "dead_letters"}, message="the discard was not told")
        # A merge by the e-mail, then its unmerge: both conversations are told.
        self.open_chat("phoneVbN4cW8kDs3j")
        self.wait_idle()
        self.post(chat_event("chatFragment", "phoneVbN4cW8kDs3j", [msg("p2", "It is me")], email="maria@example.org"))
        wait_until(lambda: self.api("identities")[0]["merges"] if self.api("identities") else None)
        self.wait_idle()
        [m] = self.api("identities")[0]["merges"]
        told = set()
        self.act("merges/%d/unmerge" % m["merge"])

        def both():
            told.add(json.dumps(ws.recv_json(10), sort_keys=True))
            return {'{"id": 1, "type": "conversation"}', '{"id": 2, "type": "conversation"}'} <= told
        wait_until(both, message=lambda: told)

    # README: "a page of `limit` (1 to 200) continues with `before=<next_before>`".
    def test_limit_bounds(self):
        self.start_admin()
        for limit in ("1", "200"):
            self.assertEqual(self.api("conversations?limit=" + limit)["conversations"], [])
        for limit in ("0", "201", "x", "-1", "1.5", "5x"):
            self.api("conversations?limit=" + limit, status=400)

    # README: "`quota.daily` is the tracker's `tracker.daily_quota` (null when it is 0, and for Chatra
    # accounts)", "`quota.left` ... else `daily` minus `used_today`"; "The tracker's `coalesce_wait_ms`".
    def test_quota_and_coalesce_wait(self):
        self.start_admin(tracker={"daily_quota": 0})
        tracker, chatra = self.api("overview")["upstreams"]
        self.assertIsNone(tracker["quota"]["daily"])
        self.assertIsNone(chatra["quota"]["daily"])
        self.assertIn("coalesce_wait_ms", tracker)
        self.bridge.stop()
        self.config["tracker"]["daily_quota"] = 500
        self.bridge.start()
        tracker = self.api("overview")["upstreams"][0]
        self.assertEqual(tracker["quota"]["daily"], 500)

    # README: "`q` finds a name, an e-mail, a client id or a task number, in part and in any case".
    def test_search_in_part_and_any_case(self):
        self.start_admin()
        task, _ = self.open_chat("ClientAbcDef123", name="Maria Lopez", email="Maria.Lopez@Example.org")
        self.wait_idle()

        def found(q):
            return [c["id"] for c in self.api("conversations?q=" + urllib.parse.quote(q))["conversations"]]
        for q in ("lope", "MARIA L", "lopez@example", "clientabc", "CDEF12", str(task)[1:], str(task)):
            self.assertEqual(found(q), [1], q)
        self.assertEqual(found("zzz"), [])
        # Any case in other scripts too; the query is text, not a pattern.
        self.open_chat("ClientCyr0000001", name="Мария 100% Ёлкина")
        self.wait_idle()
        for q in ("мария", "МАРИЯ", "ёлкина", "100%"):
            self.assertEqual(found(q), [2], q)
        self.assertEqual(found("_"), [])
        self.assertEqual(found("%"), [2])


class TestAdminRedmineReadme(RedmineCase):
    """Against a real Redmine (skipped when it cannot run here)."""

    # README: "each upstream (the tracker, ...)"; the conversation's "task (a link into the tracker)";
    # "`quota.daily` is the tracker's `tracker.daily_quota` (null when it is 0...)", "`quota.left` ...
    # else `daily` minus `used_today`".
    def test_the_overview_and_the_task_link_of_a_redmine(self):
        self.bridge.env["BR_ADMIN_TOKEN"] = ADMIN_TOKEN
        self.config["admin"] = {"token": "env:BR_ADMIN_TOKEN"}
        self.start(tracker={"daily_quota": 1000})
        self.post(chat_event("chatStarted", "rm-admin-1", [msg("rm-admin-1-m1", "Hello")], name="Maria"))
        issue = wait_until(self.issues, POLL_WAIT, message="no issue")[0]

        def get(path):
            r = self.bridge.get("/admin/api/" + path, BEARER)
            self.assertEqual(r.status, 200, r.body)
            return r.json()
        wait_until(lambda: get("conversations")["conversations"][0]["task"]["id"], POLL_WAIT)
        c = get("conversations")["conversations"][0]
        self.assertEqual(c["task"], {"id": str(issue["id"]), "state": "open",
                                     "url": "%s/issues/%d" % (self.rm.url, issue["id"])})
        tracker = get("overview")["upstreams"][0]
        self.assertEqual((tracker["name"], tracker["kind"]), ("tracker", "redmine"))
        q = tracker["quota"]
        self.assertEqual(q["daily"], 1000)
        self.assertGreater(q["used_today"], 0)
        self.assertEqual(q["left"], q["daily"] - q["used_today"])


if __name__ == "__main__":
    unittest.main()
