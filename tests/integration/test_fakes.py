"""The fake upstreams and the harness on their own (no bridge binary needed)."""

import base64
import calendar
import os
import signal
import sys
import threading
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import (CHATRA_SHOP_PUBLIC_KEY, CHATRA_SHOP_SECRET_KEY, KEEP_TMP, PLANFIX_TOKEN, Fakes,  # noqa: E402
                     assert_stays, chat_event, default_config, http, msg, sample, wait_until)

CHATRA_AUTH = "Chatra.Simple %s:%s" % (CHATRA_SHOP_PUBLIC_KEY, CHATRA_SHOP_SECRET_KEY)


class FakesTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fakes = Fakes()

    @classmethod
    def tearDownClass(cls):
        cls.fakes.cleanup()

    def setUp(self):
        self.fakes.reset()
        self.fakes.settings("planfix", rps=0, utc_offset_min=0)
        self.fakes.settings("chatra", rps=0)

    def pf(self, method, path, body=None, token=PLANFIX_TOKEN, timeout=10):
        headers = {"Authorization": "Bearer " + token} if token is not None else {}
        return http(method, self.fakes.planfix_url + path, body, headers, timeout)

    def chatra(self, method, path, body=None, auth=CHATRA_AUTH, timeout=10):
        headers = {"Authorization": auth} if auth is not None else {}
        return http(method, self.fakes.chatra_url + path, body, headers, timeout)

    def new_task(self, **fields):
        r = self.pf("POST", "/task/", dict({"name": "Chat with Maria"}, **fields))
        self.assertEqual(r.status, 201, r.body)
        return r.json()["id"]

    def run_in_thread(self, fn):
        """Run fn in a thread; returns a dict that gets "value" or "error", and the thread."""
        out = {}

        def target():
            try:
                out["value"] = fn()
            except Exception as e:  # noqa: BLE001
                out["error"] = e
        t = threading.Thread(target=target, daemon=True)
        t.start()
        return out, t


class TestPlanfix(FakesTestCase):
    def test_auth_failures_are_401_code_1_and_recorded(self):
        for token in (None, "wrong"):
            r = self.pf("POST", "/contact/list", {}, token=token)
            self.assertEqual(r.status, 401)
            self.assertEqual(r.json()["result"], "fail")
            self.assertEqual(r.json()["code"], 1)
        reqs = self.fakes.planfix_requests("/contact/list")
        self.assertEqual(len(reqs), 2)
        self.assertNotIn("Authorization", reqs[0]["headers"])
        self.assertEqual(reqs[1]["headers"]["authorization"], "Bearer wrong")
        self.assertEqual(reqs[1]["status"], 401)

    def test_contact_create_and_find_by_email_case_insensitive(self):
        r = self.pf("POST", "/contact/", {"template": {"id": 4}, "name": "Maria", "lastname": "Lopez",
                                          "email": "Maria.Lopez@Example.org"})
        self.assertEqual((r.status, r.json()), (201, {"result": "success", "id": 1}))
        self.assertTrue(r.headers["X-RateLimit-Remaining"].isdigit())
        find = {"offset": 0, "pageSize": 100, "fields": "id,name,lastname,email",
                "filters": [{"type": 4026, "operator": "equal", "value": "maria.lopez@example.ORG"}]}
        r = self.pf("POST", "/contact/list", find)
        self.assertEqual(r.json()["contacts"],
                         [{"id": 1, "name": "Maria", "lastname": "Lopez", "email": "Maria.Lopez@Example.org"}])
        find["filters"][0]["value"] = "other@example.org"
        self.assertEqual(self.pf("POST", "/contact/list", find).json()["contacts"], [])
        part = {"filters": [{"type": 4005, "operator": "equal", "value": "lopez@"}]}
        self.assertEqual(len(self.pf("POST", "/contact/list", part).json()["contacts"]), 1)
        r = self.pf("POST", "/contact/", {"name": "X", "email": "not-an-email"})
        self.assertEqual((r.status, r.json()["code"]), (400, 2004))
        r = self.pf("POST", "/contact/1", {"name": "Maria Elena"})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.fakes.planfix_contacts()[0]["name"], "Maria Elena")
        self.assertEqual(self.fakes.planfix_contacts()[0]["template"], {"id": 4})
        self.assertEqual(self.pf("POST", "/contact/99", {"name": "x"}).json()["code"], 2000)

    def test_task_comments_and_paging(self):
        cid = self.fakes.add_contact(name="Maria", email="maria@example.org")
        tid = self.new_task(description="<p>hi</p>", template={"id": 12},
                            assigner={"id": "contact:%d" % cid}, counterparty={"id": "contact:%d" % cid},
                            participants={"users": [{"id": "user:7"}]}, sourceObjectId="0a1b2c3d-0000-4000-8000-000000000001")
        self.assertEqual(tid, 100)
        self.assertEqual(self.pf("POST", "/task/", {"description": "no name"}).json()["code"], 40)
        bad_person = self.pf("POST", "/task/", {"name": "x", "assigner": {"id": "contact:555"}})
        self.assertEqual((bad_person.status, bad_person.json()["code"]), (400, 41))

        ids = []
        for i in range(5):
            r = self.pf("POST", "/task/%d/comments/" % tid,
                        {"description": "message %d" % i, "owner": {"id": "contact:%d" % cid}})
            self.assertEqual(r.status, 201, r.body)
            ids.append(r.json()["id"])
        self.assertEqual(ids, sorted(ids))
        r = self.pf("POST", "/task/%d/comments/" % tid, {"description": "  "})
        self.assertEqual((r.status, r.json()["code"]), (400, 40))

        pages = []
        for offset in (0, 2, 4, 6):
            r = self.pf("POST", "/task/%d/comments/list" % tid,
                        {"offset": offset, "pageSize": 2,
                         "fields": "id,dateTime,description,owner,isHidden,type,sourceObjectId"})
            pages.append(r.json()["comments"])
        self.assertEqual([len(p) for p in pages], [2, 2, 1, 0])
        first = pages[0][0]
        self.assertEqual(first["owner"], {"id": "contact:%d" % cid, "name": "Maria"})
        self.assertEqual(first["type"], "Comment")
        self.assertIn("datetime", first["dateTime"])
        self.assertEqual([c["id"] for p in pages for c in p], ids)
        only = self.pf("POST", "/task/%d/comments/list" % tid, {"fields": "description"}).json()["comments"][0]
        self.assertEqual(set(only), {"id", "description"})
        self.assertEqual(self.pf("POST", "/task/%d/comments/list" % tid, {"pageSize": 101}).json()["code"], 41)

        r = self.pf("GET", "/task/%d?fields=id,name,status,sourceObjectId" % tid)
        self.assertEqual(r.json()["task"], {"id": tid, "name": "Chat with Maria", "sourceObjectId": "0a1b2c3d-0000-4000-8000-000000000001",
                                            "status": {"id": 2, "name": "In progress", "isActive": True}})
        self.assertEqual(self.pf("POST", "/task/%d" % tid, {"status": {"id": 3}}).status, 200)
        self.assertFalse(self.pf("GET", "/task/%d" % tid).json()["task"]["status"]["isActive"])
        self.assertEqual(self.pf("POST", "/task/%d" % tid, {"status": {"id": 77}}).json()["code"], 41)

        listed = self.pf("POST", "/task/list", {"filters": [
            {"type": 1, "operator": "equal", "value": "contact:%d" % cid}]}).json()["tasks"]
        self.assertEqual([(t["id"], t["sourceObjectId"]) for t in listed], [(tid, "0a1b2c3d-0000-4000-8000-000000000001")])
        self.assertEqual(self.pf("POST", "/task/list", {"filters": [
            {"type": 7, "operator": "equal", "value": "contact:999"}]}).json()["tasks"], [])

        task = self.fakes.planfix_task(tid)
        self.assertEqual((task["template"], task["assigner"], task["status"], task["statusActive"]),
                         (12, "contact:%d" % cid, 3, False))

    def test_errors_unknown_task_and_malformed_json(self):
        for method, path, body in (("GET", "/task/555", None), ("POST", "/task/555", {"name": "x"}),
                                   ("POST", "/task/555/comments/", {"description": "x"}),
                                   ("POST", "/task/555/comments/list", {})):
            r = self.pf(method, path, body)
            self.assertEqual((r.status, r.json()["result"], r.json()["code"]), (400, "fail", 1000), path)
        r = self.pf("POST", "/task/", "{not json")
        self.assertEqual((r.status, r.json()["code"]), (400, 30))
        self.assertEqual(self.fakes.planfix_requests(method="POST", path="/task/")[0]["body"], "{not json")

    def test_employee_comment_is_listed_but_not_recorded(self):
        tid = self.new_task()
        self.fakes.clear_requests()
        cid = self.fakes.employee_comment(tid, "user:5", "Anna", "<p>Hello &amp; welcome</p>")
        self.assertEqual(self.fakes.planfix_requests(), [])
        comments = self.pf("POST", "/task/%d/comments/list" % tid, {}).json()["comments"]
        self.assertEqual([(c["id"], c["owner"], c["description"]) for c in comments],
                         [(cid, {"id": "user:5", "name": "Anna"}, "<p>Hello &amp; welcome</p>")])
        self.assertEqual(self.fakes.planfix_comments(tid)[0]["via"], "control")

        # /comment/list by date range (minute precision, UTC) finds it across tasks.
        now = time.time()
        fmt = lambda t: time.strftime("%d-%m-%Y %H:%M", time.gmtime(t))  # noqa: E731
        window = {"filters": [{"type": 3000, "operator": "equal", "value": {
            "dateType": "otherRange_withTime", "dateFrom": fmt(now - 120), "dateTo": fmt(now + 60)}}]}
        found = self.pf("POST", "/comment/list", window).json()["comments"]
        self.assertEqual([(c["id"], c["task"]) for c in found], [(cid, {"id": tid})])
        window["filters"][0]["value"].update(dateFrom=fmt(now - 7200), dateTo=fmt(now - 3600))
        self.assertEqual(self.pf("POST", "/comment/list", window).json()["comments"], [])
        author = {"filters": [{"type": 3001, "operator": "equal", "value": "user:6"}]}
        self.assertEqual(self.pf("POST", "/comment/list", author).json()["comments"], [])

    def test_a_zone_shows_local_dates_and_reads_filters_locally(self):
        tid = self.new_task()
        at = calendar.timegm((2022, 6, 12, 12, 15, 30))
        cid = self.fakes.employee_comment(tid, "user:5", "Anna", "Hi", at=at)
        later = self.fakes.employee_comment(tid, "user:5", "Anna", "Later", at=at + 3600)

        def listed(date_from, date_to, **extra):
            body = dict({"fields": "id,dateTime", "filters": [{"type": 3000, "operator": "equal", "value": {
                "dateType": "otherRange_withTime", "dateFrom": date_from, "dateTo": date_to}}]}, **extra)
            r = self.pf("POST", "/comment/list", body)
            self.assertEqual(r.status, 200, r.body)
            return r.json()["comments"]

        # Planfix at UTC+3 (Moscow): date and time local, datetime UTC; filters read as local times.
        self.fakes.settings("planfix", utc_offset_min=180)
        [c] = listed("12-06-2022 15:15", "12-06-2022 15:15")
        self.assertEqual(c, {"id": cid, "dateTime": {"date": "12-06-2022", "time": "15:15",
                                                     "datetime": "2022-06-12T12:15Z"}})
        self.assertEqual(listed("12-06-2022 12:00", "12-06-2022 12:30"), [])
        self.assertEqual(self.fakes.planfix_comments(tid)[0]["dateTime"]["time"], "15:15")
        # Newest first when asked.
        both = listed("12-06-2022 15:00", "12-06-2022 17:00",
                      resultOrder=[{"field": "dateTime", "direction": "Desc"}])
        self.assertEqual([x["id"] for x in both], [later, cid])
        # UTC-5 (New York in summer): the day before, local.
        self.fakes.settings("planfix", utc_offset_min=-300)
        [c] = listed("12-06-2022 07:15", "12-06-2022 07:15")
        self.assertEqual(c["dateTime"], {"date": "12-06-2022", "time": "07:15", "datetime": "2022-06-12T12:15Z"})
        self.fakes.settings("planfix", utc_offset_min=-720)
        self.assertEqual(listed("11-06-2022 23:45", "12-06-2022 00:15")[0]["dateTime"]["date"], "12-06-2022")
        for bad in (900, -721, "180", 1.5):
            r = http("POST", "http://127.0.0.1:%d/_control/settings" % self.fakes.ports["planfix"],
                     {"utc_offset_min": bad})
            self.assertEqual(r.status, 400, bad)
        self.fakes.settings("planfix", utc_offset_min=0)
        self.assertEqual(listed("12-06-2022 12:15", "12-06-2022 12:15")[0]["id"], cid)

    def test_task_status_and_delete_controls(self):
        tid = self.new_task()
        self.fakes.set_task_status(tid, 3)
        self.assertFalse(self.pf("GET", "/task/%d" % tid).json()["task"]["status"]["isActive"])
        self.fakes.delete_task(tid)
        self.assertTrue(self.pf("GET", "/task/%d" % tid).json()["task"]["isDeleted"])
        self.assertEqual(self.pf("POST", "/task/%d/comments/" % tid, {"description": "x"}).json()["code"], 1000)
        self.assertEqual(self.pf("POST", "/task/list", {}).json()["tasks"], [])
        self.fakes.delete_task(tid, purge=True)
        self.assertEqual(self.pf("GET", "/task/%d" % tid).json()["code"], 1000)


class TestFaults(FakesTestCase):
    def test_status_fault_has_no_effect_and_is_consumed_once(self):
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "status", "status": 500}])
        r = self.pf("POST", "/task/", {"name": "x"})
        self.assertEqual(r.status, 500)
        self.assertEqual(self.fakes.planfix_tasks(), [])
        self.assertEqual(self.pf("POST", "/task/", {"name": "x"}).status, 201)
        self.assertEqual([r["fault"] for r in self.fakes.planfix_requests()], ["status", None])

    def test_fail_in_2xx(self):
        tid = self.new_task()
        self.fakes.faults("planfix", [{"match": "POST /rest/task/", "action": "fail_in_2xx", "code": 5001}])
        r = self.pf("POST", "/task/%d/comments/" % tid, {"description": "x"})
        self.assertEqual(r.status, 200)
        self.assertEqual((r.json()["result"], r.json()["code"]), ("fail", 5001))
        self.assertEqual(self.fakes.planfix_comments(), [])

    def test_delay_does_not_block_others_and_still_takes_effect(self):
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "delay", "seconds": 1.0}])
        # The client gives up after 0.3 s (a bridge killed mid-request): the effect happens anyway.
        out, t = self.run_in_thread(lambda: self.pf("POST", "/task/", {"name": "slow"}, timeout=0.3))
        time.sleep(0.05)
        started = time.monotonic()
        self.assertEqual(self.pf("POST", "/task/list", {}).status, 200)
        self.assertLess(time.monotonic() - started, 0.5)
        t.join(5)
        self.assertIn("error", out)
        self.assertEqual(self.fakes.planfix_tasks(), [])
        wait_until(lambda: self.fakes.planfix_tasks(), timeout=5, message="delayed task never created")

    def test_hang_until_reset(self):
        self.fakes.faults("planfix", [{"match": "/rest/contact/list", "action": "hang"}])
        out, t = self.run_in_thread(lambda: self.pf("POST", "/contact/list", {}, timeout=20))
        wait_until(lambda: self.fakes.stats("planfix")["hung"] == 1, message="request never hung")
        self.assertEqual(self.pf("POST", "/contact/list", {}).status, 200)
        self.assertTrue(t.is_alive())
        self.fakes.reset("planfix")
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertIsInstance(out.get("error"), OSError)

    def test_hold_until_release(self):
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "hold"}])
        out, t = self.run_in_thread(lambda: self.pf("POST", "/task/", {"name": "held"}, timeout=20))
        wait_until(lambda: self.fakes.stats("planfix")["held"] == 1, message="request never held")
        # Other requests go on; the held one has neither taken effect nor been answered.
        self.assertEqual(self.pf("POST", "/contact/list", {}).status, 200)
        self.assertTrue(t.is_alive())
        self.assertEqual(self.fakes.planfix_tasks(), [])
        self.fakes.release("planfix")
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(out["value"].status, 201)
        self.assertEqual([x["name"] for x in self.fakes.planfix_tasks()], ["held"])

    def test_close_with_and_without_effect(self):
        self.fakes.faults("planfix", [{"match": "POST /rest/task/$", "action": "close"},
                                      {"match": "POST /rest/task/$", "action": "close", "effect": True},
                                      {"match": "POST /rest/task/$", "action": "reset"}])
        for _ in range(3):
            with self.assertRaises(OSError):
                self.pf("POST", "/task/", {"name": "x"})
        self.assertEqual([t["id"] for t in self.fakes.planfix_tasks()], [100])
        self.assertEqual([r["status"] for r in self.fakes.planfix_requests()], ["dropped"] * 3)
        self.assertEqual(self.fakes.pending_faults("planfix"), [])

    def test_bad_fault_is_refused(self):
        with self.assertRaises(AssertionError):
            self.fakes.faults("planfix", [{"action": "explode"}])


class TestRateLimit(FakesTestCase):
    def test_violations_are_429_and_counted(self):
        self.fakes.settings("planfix", rps=5)
        self.assertEqual(self.pf("POST", "/task/list", {}).status, 200)
        r = self.pf("POST", "/task/list", {})
        self.assertEqual(r.status, 429)
        self.assertIn("X-RateLimit-Remaining", r.headers)
        time.sleep(0.25)
        self.assertEqual(self.pf("POST", "/task/list", {}).status, 200)
        stats = self.fakes.stats("planfix")
        self.assertEqual((stats["requests"], stats["violations"]), (3, 1))
        self.assertLess(stats["min_interval"], 0.2)

    def test_remaining_counts_down(self):
        first = int(self.pf("POST", "/task/list", {}).headers["X-RateLimit-Remaining"])
        second = int(self.pf("POST", "/task/list", {}).headers["X-RateLimit-Remaining"])
        self.assertEqual(second, first - 1)
        self.fakes.settings("planfix", remaining=10)
        self.assertEqual(self.pf("POST", "/task/list", {}).headers["X-RateLimit-Remaining"], "9")


class TestChatra(FakesTestCase):
    def test_messages_auth_and_validation(self):
        body = {"clientId": "client-1", "text": "Hi", "agentId": "bnRzp4CioKudG4aHm"}
        self.assertEqual(self.chatra("POST", "/messages/", body, auth=None).status, 401)
        self.assertEqual(self.chatra("POST", "/messages/", body, auth="Chatra.Simple wrong:pair").status, 401)
        r = self.chatra("POST", "/messages/", body)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.json()["id"])
        basic = "Basic " + base64.b64encode(
            ("%s:%s" % (CHATRA_SHOP_PUBLIC_KEY, CHATRA_SHOP_SECRET_KEY)).encode()).decode()
        self.assertEqual(self.chatra("POST", "/messages/", body, auth=basic).status, 200)
        self.assertEqual(self.chatra("POST", "/messages/", {"clientId": "client-1"}).status, 400)
        self.assertEqual(self.chatra("POST", "/messages/", "{oops").status, 400)
        self.assertEqual(self.chatra("POST", "/pushedMessages/", {"clientId": "c", "text": "t"}).status, 200)
        msgs = self.fakes.chatra_messages("client-1")
        self.assertEqual([(m["text"], m["agentId"]) for m in msgs], [("Hi", "bnRzp4CioKudG4aHm")] * 2)
        self.assertNotEqual(msgs[0]["id"], msgs[1]["id"])
        self.assertEqual(len(self.fakes.chatra_requests("/messages/", method="POST")), 6)
        self.assertEqual(len(self.fakes.chatra_state()["pushedMessages"]), 1)

    def test_messages_as_an_agent_email(self):
        base = {"clientId": "client-2", "text": "Hi"}
        as_email = dict(base, agentEmail="anna@example.com", agentName="Anna", receivedFrom="Planfix")
        self.assertEqual(self.chatra("POST", "/messages/", as_email).status, 200)
        for bad in (base, dict(base, agentEmail="anna@example.com"), dict(base, agentName="Anna"),
                    dict(base, agentEmail="not-an-address", agentName="Anna"),
                    dict(base, agentEmail="anna@example.com", agentName=" "),
                    dict(base, agentEmail=5, agentName="Anna")):
            with self.subTest(bad=bad):
                self.assertEqual(self.chatra("POST", "/messages/", bad).status, 400)
        [m] = self.fakes.chatra_messages("client-2")
        self.assertEqual((m["agentEmail"], m["agentName"], m["receivedFrom"]), ("anna@example.com", "Anna", "Planfix"))
        self.assertNotIn("agentId", m)

    def test_clients(self):
        self.assertEqual(self.chatra("GET", "/clients/abc").status, 404)
        self.fakes.set_chatra_client("abc", {"name": "Maria", "info": {"plan": "pro"}})
        self.assertEqual(self.chatra("GET", "/clients/abc").json(),
                         {"id": "abc", "name": "Maria", "info": {"plan": "pro"}})
        r = self.chatra("PUT", "/clients/abc", {"email": "m@example.org", "name": None})
        self.assertEqual(r.json(), {"id": "abc", "email": "m@example.org", "info": {"plan": "pro"}})
        self.assertEqual(self.fakes.chatra_requests(method="PUT")[0]["body"],
                         {"email": "m@example.org", "name": None})

    def test_faults_and_stats(self):
        self.fakes.faults("chatra", [{"match": "POST /api/messages/", "action": "status", "status": 503}])
        self.assertEqual(self.chatra("POST", "/messages/", {"clientId": "c", "text": "t"}).status, 503)
        self.assertEqual(self.fakes.chatra_messages(), [])
        self.assertEqual(self.fakes.stats("chatra")["requests"], 1)


class TestZoneOption(unittest.TestCase):
    def test_the_fake_starts_in_a_zone(self):
        with Fakes(planfix_utc_offset_min=-300) as fakes:
            headers = {"Authorization": "Bearer " + PLANFIX_TOKEN}
            tid = http("POST", fakes.planfix_url + "/task/", {"name": "x"}, headers).json()["id"]
            fakes.employee_comment(tid, at=calendar.timegm((2022, 6, 12, 3, 0, 0)))
            [c] = fakes.planfix_comments(tid)
            self.assertEqual(c["dateTime"], {"date": "11-06-2022", "time": "22:00", "datetime": "2022-06-12T03:00Z"})
            self.assertEqual(fakes.planfix_state()["utc_offset_min"], -300)


class TestHarness(unittest.TestCase):
    def test_fakes_stop_promptly_even_with_a_hanging_request(self):
        fakes = Fakes()
        try:
            fakes.faults("planfix", [{"action": "hang"}])
            url = fakes.planfix_url + "/task/list"
            t = threading.Thread(target=lambda: self.assertRaises(
                OSError, http, "POST", url, {}, {"Authorization": "Bearer " + PLANFIX_TOKEN}, 20), daemon=True)
            t.start()
            wait_until(lambda: fakes.stats("planfix")["hung"] == 1)
            started = time.monotonic()
            fakes.stop()
            self.assertLess(time.monotonic() - started, 3)
            for p in fakes.procs.values():
                self.assertEqual(p.returncode, 0)
                with self.assertRaises(ProcessLookupError):
                    os.kill(p.pid, 0)
            t.join(5)
            self.assertFalse(t.is_alive())
        finally:
            fakes.cleanup()
        # BR_KEEP_TMP=1 keeps it on purpose.
        self.assertEqual(os.path.exists(fakes.tmpdir), KEEP_TMP)

    def test_fakes_exit_zero_whatever_the_number_of_sigterms(self):
        # SIGTERMs a few microseconds apart once deadlocked a fake whose handler took a lock.
        for _ in range(5):
            fakes = Fakes()
            try:
                procs = list(fakes.procs.values())
                for _ in range(6):
                    for p in procs:
                        os.kill(p.pid, signal.SIGTERM)   # not reaped yet: still our child
                    pause = time.perf_counter() + 20e-6
                    while time.perf_counter() < pause:
                        pass
                for p in procs:
                    self.assertEqual(p.wait(5), 0, fakes.log("planfix") + fakes.log("chatra"))
            finally:
                fakes.cleanup()

    def test_bodies_and_config(self):
        self.assertEqual(sample("chat-started")["eventName"], "chatStarted")
        self.assertNotIn("eventName", sample("fragment-without-event-name"))
        m1 = msg("m1", "Hello")
        m2 = msg("m2", "Hi", type="agent", agent_id="bnRzp4CioKudG4aHm", key="message")
        self.assertLess(m1["createdAt"], m2["createdAt"])
        self.assertEqual(m2["message"], "Hi")
        ev = chat_event("chatFragment", "c-1", [m1, m2], email="Maria@Example.org")
        self.assertEqual(ev["client"], {"id": "c-1", "chatId": "chat-c-1", "email": "Maria@Example.org"})
        self.assertEqual(ev["agents"], [{"id": "bnRzp4CioKudG4aHm"}])
        self.assertNotIn("eventName", chat_event(None, "c-2"))

        class FakeFakes:
            planfix_url, chatra_url = "http://127.0.0.1:1/rest", "http://127.0.0.1:2/api"
        cfg = default_config(FakeFakes(), tracker={"requests_per_second": 5},
                             channel={"close_on_leave": False}, log=None)
        self.assertEqual(cfg["tracker"]["requests_per_second"], 5)
        self.assertEqual(cfg["tracker"]["token"], "env:PLANFIX_TOKEN")
        self.assertFalse(cfg["channels"][0]["close_on_leave"])
        self.assertEqual(cfg["channels"][0]["chatra"]["url"], "http://127.0.0.1:2/api")
        self.assertNotIn("log", cfg)
        self.assertEqual([e["tracker_user"] for e in cfg["employees"]], ["user:5", "user:6"])

    def test_wait_until_and_assert_stays(self):
        self.assertEqual(wait_until(lambda: 42), 42)
        with self.assertRaisesRegex(AssertionError, "never"):
            wait_until(lambda: 1 / 0, timeout=0.2, message=lambda: "never")
        assert_stays(lambda: True, duration=0.1)
        with self.assertRaises(AssertionError):
            assert_stays(lambda: False, duration=0.1)


if __name__ == "__main__":
    unittest.main()
