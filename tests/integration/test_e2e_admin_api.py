"""Issue 13, the admin page's server side: access (off without admin.token, the login, the cookie,
Bearer, CSRF, wrong tokens slowed down), the page's files, and the read API and actions after a
realistic flow (a chat, a burst coalesced into one comment, a reply relayed, an e-mail merge, a dead
letter retried and one discarded, an unmerge)."""

import json
import os
import signal
import sys
import unittest
import urllib.parse

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from admin import ADMIN_TOKEN, BEARER, FORM, AdminCase  # noqa: E402

XSS = "<img src=x onerror=alert(1)>"
LAPTOP = "laptopQm7TzR2pLx9"
PHONE = "phoneVbN4cW8kDs3j"
EMAIL = "maria@example.org"


def shown(client_id):
    return "%s...(%d chars)" % (client_id[:4], len(client_id))


class TestAccess(AdminCase):
    def test_off_without_a_token(self):
        self.start_bridge()
        for method, path in [("GET", "/admin"), ("GET", "/admin/"), ("GET", "/admin/app.js"),
                             ("GET", "/admin/api/overview"), ("GET", "/admin/api/session"),
                             ("POST", "/admin/login"), ("POST", "/admin/api/dead-letters/1/retry")]:
            r = (self.bridge.get(path, BEARER) if method == "GET"
                 else self.bridge.post(path, {"token": ADMIN_TOKEN}, BEARER))
            self.assertEqual(r.status, 404, (method, path, r.body))
            self.assertNotIn("Content-Security-Policy", r.headers)
        self.assertEqual(self.bridge.get("/healthz").status, 200)

    def test_the_page_and_its_files_are_served_from_the_binary(self):
        self.start_admin()
        for path in ("/admin/", "/admin/login"):
            r = self.bridge.get(path)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(r.headers["Content-Type"], "text/html; charset=utf-8")
            self.assert_admin_headers(r)
            with open(os.path.join(os.path.dirname(__file__), "..", "..", "admin", "index.html")) as f:
                self.assertEqual(r.body, f.read())
        # The script is app.js and the ES modules it imports, each one file of admin/.
        admin_dir = os.path.join(os.path.dirname(__file__), "..", "..", "admin")
        scripts = sorted(n for n in os.listdir(admin_dir) if n.endswith(".js"))
        self.assertIn("app.js", scripts)
        for name in scripts:
            r = self.bridge.get("/admin/" + name)
            self.assertEqual((r.status, r.headers["Content-Type"]), (200, "text/javascript; charset=utf-8"), name)
            self.assert_admin_headers(r)
            with open(os.path.join(admin_dir, name), encoding="utf-8") as f:
                self.assertEqual(r.body, f.read(), name)
        r = self.bridge.get("/admin/app.css")
        self.assertEqual((r.status, r.headers["Content-Type"]), (200, "text/css; charset=utf-8"))
        # Only the embedded files: nothing from the disk, no way out of admin/.
        for path in ("/admin/nothing.js", "/admin/api/nothing", "/admin/app.js/x"):
            r = self.bridge.get(path)
            self.assertEqual(r.status, 404, path)
            self.assert_admin_headers(r)
        self.assertEqual(self.bridge.get("/admin/..%2fCMakeLists.txt").status, 404)
        # The cookie's path is /admin/: the page is reached under it.
        r = self.raw("GET", "/admin")
        self.assertEqual((r.status, r.headers["Location"]), (308, "/admin/"))

    def test_login_form_json_cookie_bearer_and_logout(self):
        self.start_admin(admin={"session_ttl_s": 120})
        # Without a login the API says so.
        r = self.bridge.get("/admin/api/session")
        self.assertEqual((r.status, r.json()), (401, {"error": "login required"}))
        self.assert_admin_headers(r)

        # The form: a wrong token shows the login page again, saying why.
        r = self.bridge.post("/admin/login", "token=wrong-token-wrong-token", FORM)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers["Content-Type"], "text/html; charset=utf-8")
        self.assertIn('<p class="login-error" id="login-error" role="alert">Wrong token.</p>', r.body)
        self.assertNotIn("Set-Cookie", r.headers)
        # The right one: a session cookie, then to the page.
        r = self.raw("POST", "/admin/login", "token=" + urllib.parse.quote(ADMIN_TOKEN), FORM)
        self.assertEqual((r.status, r.headers["Location"]), (303, "/admin/"))
        self.assert_admin_headers(r)
        cookie = r.headers["Set-Cookie"]
        self.assertRegex(cookie, r"^br_admin=[0-9a-f]{64}; Path=/admin/; Max-Age=120; HttpOnly; SameSite=Strict$")
        form_session = {"Cookie": cookie.split(";")[0]}

        # JSON: the CSRF token in the answer, and again from /admin/api/session.
        r = self.bridge.post("/admin/login", {"token": "nope"})
        self.assertEqual((r.status, r.json()), (401, {"error": "wrong token"}))
        session, csrf = self.login()
        self.assertRegex(csrf, r"^[0-9a-f]{64}$")
        s = self.api("session", session)
        self.assertEqual((s["csrf"], s["auth"]), (csrf, "cookie"))
        self.assertNotEqual(self.api("session", form_session)["csrf"], csrf)
        # Bearer: for scripts, no cookie and no CSRF token.
        self.assertEqual(self.api("session"), {"csrf": None, "auth": "bearer"})
        self.assertEqual(self.api("overview", {"Authorization": "Bearer " + ADMIN_TOKEN[:-1]}, 401),
                         {"error": "wrong token"})
        self.assertEqual(self.api("overview", {"Cookie": "br_admin=" + "0" * 64}, 401), {"error": "login required"})

        # Logout needs the CSRF token; then the session is gone, the other one stays.
        r = self.bridge.post("/admin/logout", b"", session)
        self.assertEqual((r.status, r.json()), (403, {"error": "CSRF token missing or wrong"}))
        r = self.bridge.post("/admin/logout", b"", dict(session, **{"X-CSRF-Token": csrf}))
        self.assertEqual((r.status, r.json()), (200, {"ok": True}))
        self.assertRegex(r.headers["Set-Cookie"], r"^br_admin=; Path=/admin/; Max-Age=0;")
        self.api("session", session, 401)
        self.api("session", form_session)

    def test_a_new_token_by_a_reload_ends_every_session(self):
        token_file = os.path.join(self.bridge.tmpdir, "admin.token")
        with open(token_file, "w") as f:
            f.write(ADMIN_TOKEN)
        self.start_admin(admin={"token": "file:" + token_file})
        session, _ = self.login()
        self.api("session", session)
        new = "another-admin-token-9876543210"
        with open(token_file, "w") as f:
            f.write(new)
        n = self.bridge.log().count("reload: config ")
        self.bridge.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.bridge.log().count("reload: config ") > n)
        self.api("session", session, 401)
        self.api("overview", {"Authorization": "Bearer " + ADMIN_TOKEN}, 401)
        self.api("overview", {"Authorization": "Bearer " + new})
        r = self.bridge.post("/admin/login", {"token": new})
        self.assertEqual(r.status, 200, r.body)

    def test_the_secure_flag_behind_a_trusted_https_proxy(self):
        self.start_admin(listen={"trusted_proxies": ["127.0.0.1"]})
        r = self.bridge.post("/admin/login", {"token": ADMIN_TOKEN}, {"X-Forwarded-Proto": "https"})
        self.assertTrue(r.headers["Set-Cookie"].endswith("; HttpOnly; SameSite=Strict; Secure"), r.headers)
        r = self.bridge.post("/admin/login", {"token": ADMIN_TOKEN}, {"X-Forwarded-Proto": "http"})
        self.assertTrue(r.headers["Set-Cookie"].endswith("; HttpOnly; SameSite=Strict"), r.headers)

    def test_wrong_tokens_are_slowed_down_like_wrong_webhook_secrets(self):
        self.start_admin(limits={"bad_secrets_per_minute": 3})
        for i in range(3):
            r = self.bridge.post("/admin/login", {"token": "wrong-%d" % i})
            self.assertEqual(r.status, 401, r.body)
        r = self.bridge.post("/admin/login", {"token": "wrong-again"})
        self.assertEqual(r.status, 429, r.body)
        r = self.bridge.post("/admin/login", "token=wrong", FORM)
        self.assertEqual(r.status, 429)
        self.assertIn("Too many wrong tokens from this address; wait a minute.", r.body)
        self.assertEqual(self.api("overview", {"Authorization": "Bearer wrong"}, 429)["error"],
                         "too many wrong tokens from this address; wait a minute")
        # The same budget as the webhooks' secrets: a wrong one there is throttled too.
        status, _ = self.bridge.post_chatra(chat_event("chatStarted", "c1", [msg("m1", "x")]), secret="x" * 20)
        self.assertEqual(status, 429)
        # The right token still works.
        self.login()
        self.api("overview")
        self.assertIn("refused: 429 too many wrong admin tokens", self.bridge.log())


class TestReadApi(AdminCase):
    def test_every_read_endpoint_after_a_realistic_flow(self):
        self.start_admin()
        # A chat by a visitor whose name is markup, with a burst the first comment carries whole.
        task, contact = self.open_chat(LAPTOP, [msg("l1", "Hello from my laptop")], name=XSS, email=EMAIL)
        self.wait_idle()
        self.post(chat_event("chatFragment", LAPTOP, [msg("l2", "first of a burst"), msg("l3", "second of it")],
                             name=XSS, email=EMAIL))
        self.wait_comment_posts(task, 1)
        self.wait_idle()
        # An employee answers in Planfix: relayed to the chat.
        self.fakes.employee_comment(task, owner="user:5", name="Anna", text="<p>Yes, it is blue.</p>")
        self.assertEqual(self.bridge.post_planfix(task)[0], 200)
        self.wait_chatra()
        self.wait_idle()
        # The phone, then the laptop's e-mail from it: the phone's thread is merged into the laptop's.
        t2, _ = self.open_chat(PHONE, [msg("p1", "Hello from my phone")])
        self.wait_idle()
        self.post(chat_event("chatFragment", PHONE, [msg("p2", "It is me, Maria")], email=EMAIL))
        self.wait_pf("/rest/task/%d" % t2)
        self.wait_idle()

        # The overview.
        ov = self.api("overview")
        self.assertEqual(ov["version"], "0.1.0")
        self.assertEqual(ov["config"], self.bridge.config_path)
        self.assertGreaterEqual(ov["uptime_s"], 0)
        self.assertGreater(ov["started_at"], 0)
        self.assertEqual([(u["name"], u["kind"], u["state"]) for u in ov["upstreams"]],
                         [("tracker", "planfix", "ok"), ("chatra:shop", "chatra", "ok")])
        tracker = ov["upstreams"][0]
        self.assertEqual(tracker["requests_last_minute"], len(self.fakes.planfix_requests()))
        self.assertEqual(tracker["requests_last_hour"], tracker["requests_last_minute"])
        self.assertEqual(tracker["requests_per_second"], 20)
        self.assertEqual((tracker["paused_until"], tracker["last_error"], tracker["failing_since"]), (0, None, 0))
        # The fake Planfix tells what is left of its quota (X-RateLimit-Remaining).
        # tracker.daily_quota's default for Planfix; the requests today come from the store's count.
        self.assertEqual(tracker["quota"], {"daily": 20000, "used_today": tracker["requests_last_minute"],
                                            "left": tracker["quota"]["left"]})
        self.assertIsInstance(tracker["quota"]["left"], int)
        self.assertIsNone(ov["upstreams"][1]["quota"]["left"])
        self.assertEqual(ov["inbox"], {"pending": 0, "oldest_at": None})
        self.assertEqual(ov["jobs"], {"queued": 0, "running": 0, "oldest_at": None})
        self.assertEqual(ov["dead_letters"], 0)

        # The list: the latest active first; the markup name as the visitor wrote it (a JSON string).
        listing = self.api("conversations")
        convs = listing["conversations"]
        self.assertIsNone(listing["next_before"])
        self.assertEqual(sorted(c["id"] for c in convs), [1, 2])
        self.assertGreaterEqual(convs[0]["last_activity"], convs[1]["last_activity"])
        laptop, phone = sorted(convs, key=lambda c: c["id"])
        self.assertEqual(laptop["name"], XSS)
        self.assertEqual(laptop["channel"], "shop")
        self.assertEqual(laptop["emails"], [EMAIL])
        self.assertEqual(laptop["client_ids"], [shown(LAPTOP), shown(PHONE)])
        self.assertEqual(laptop["devices"], 2)
        self.assertEqual(laptop["task"], {"id": str(task), "state": "open",
                                          "url": "http://127.0.0.1:%d/task/%d" % (self.fakes.ports["planfix"], task)})
        self.assertEqual((laptop["state"], laptop["merged_into"]), ("active", None))
        self.assertEqual((phone["state"], phone["merged_into"]), ("merged", 1))
        self.assertEqual(phone["task"]["state"], "closed")
        raw = self.bridge.get("/admin/api/conversations", BEARER).body
        self.assertIn('"name":"<img src=x onerror=alert(1)>"', raw)
        for c in (LAPTOP, PHONE):
            self.assertNotIn(c, raw, "a full client id in the list")
        # Paging: the same order, a page at a time.
        order = [c["id"] for c in convs]
        page = self.api("conversations?limit=1")
        self.assertEqual(([c["id"] for c in page["conversations"]], page["next_before"]), (order[:1], order[0]))
        page = self.api("conversations?limit=1&before=%d" % order[0])
        self.assertEqual(([c["id"] for c in page["conversations"]], page["next_before"]), (order[1:], None))
        self.api("conversations?limit=0", status=400)
        self.api("conversations?before=99", status=400)

        # Search: name, e-mail, client id, task number; any case.
        def found(q):
            return [c["id"] for c in self.api("conversations?q=" + urllib.parse.quote(q))["conversations"]]
        self.assertEqual(found("IMG SRC"), [1])
        self.assertEqual(found("MARIA@EXAMPLE"), [1])    # the merged thread gave its e-mails away
        self.assertEqual(found("phoneVbN"), [1])         # the phone is in the laptop's thread now
        self.assertEqual(found(str(t2)), [2])
        self.assertEqual(found("#%d" % task), [1])
        self.assertEqual(found("nobody at all"), [])

        # One conversation and its timeline.
        one = self.api("conversations/1")
        conv = one["conversation"]
        self.assertEqual({k: conv[k] for k in laptop}, dict(laptop, last_activity=conv["last_activity"]))
        self.assertEqual((conv["phone"], conv["tasks"]), (None, 1))
        self.assertFalse(one["truncated"])
        tl = one["timeline"]
        self.assertEqual([i["at"] for i in tl], sorted(i["at"] for i in tl))
        self.assertEqual([i["event"] for i in tl if i["type"] == "webhook"],
                         ["chatStarted", "chatFragment", "tracker", "chatFragment"])
        self.assertEqual(tl[0], {"at": tl[0]["at"], "type": "webhook", "event": "chatStarted", "messages": 1,
                                 "device": shown(LAPTOP)})
        messages = {m["text"]: m for m in tl if m["type"] == "message"}
        hello = messages["Hello from my laptop"]
        self.assertEqual((hello["author"], hello["state"], hello["task"], hello["comment_id"], hello["coalesced_with"]),
                         ("visitor", "in_description", str(task), None, []))
        first, second = messages["first of a burst"], messages["second of it"]
        self.assertEqual((first["state"], second["state"]), ("in_comment", "in_comment"))
        self.assertEqual(first["comment_id"], second["comment_id"])
        self.assertEqual(first["coalesced_with"], [second["message_id"]])
        self.assertEqual(second["coalesced_with"], [first["message_id"]])
        self.assertEqual(messages["It is me, Maria"]["state"], "in_comment")
        tasks = [(t["action"], t["task"], t["gen"]) for t in tl if t["type"] == "task"]
        self.assertEqual(tasks, [("created", str(task), 1)])
        [reply] = [r for r in tl if r["type"] == "reply"]
        self.assertEqual({k: reply[k] for k in ("text", "agent", "device", "job_state")},
                         {"text": "Yes, it is blue.", "agent": "Anna Smirnova", "device": shown(LAPTOP),
                          "job_state": "done"})
        self.assertTrue(reply["comment_id"])
        [merge] = [m for m in tl if m["type"] == "merge"]
        self.assertEqual({k: merge[k] for k in ("reason", "email", "other_conversation", "undone_at")},
                         {"reason": "email", "email": EMAIL, "other_conversation": 2, "undone_at": None})
        jobs = [j for j in tl if j["type"] == "job"]
        self.assertTrue(jobs)
        self.assertEqual({j["state"] for j in jobs}, {"done"})
        [made] = [j for j in jobs if j["kind"] == "task"]
        self.assertEqual((made["upstream"], made["attempts"], made["error"]), ("tracker", 0, None))
        self.assertTrue(made["request"].startswith("POST /task/ "), made["request"])
        self.assertIn(XSS, made["request"])
        self.assertTrue(made["response"].startswith("201 "), made["response"])
        self.assertIn("reply", [j["kind"] for j in jobs])
        # The merged thread tells the same merge, and its own task's end.
        tl2 = self.timeline(2)
        [merge2] = [m for m in tl2 if m["type"] == "merge"]
        self.assertEqual((merge2["merge_id"], merge2["other_conversation"]), (merge["merge_id"], 1))
        self.assertEqual([(t["action"], t["task"]) for t in tl2 if t["type"] == "task"],
                         [("created", str(t2)), ("closed", str(t2))])
        self.api("conversations/99", status=404)
        self.api("conversations/x", status=404)

        # The identity map and the dead letters: the CLI's JSON.
        people = self.api("identities")
        out = self.bridge.run("identities", "--config", self.bridge.config_path)
        self.assertEqual(people, json.loads(out.stdout))
        [maria] = people
        [m] = maria["merges"]
        self.assertEqual((m["merge"], m["reason"], m["undone"], m["undone_at"]), (merge["merge_id"], "email", False, None))
        self.assertEqual(self.api("identities?q=MARIA"), people)
        self.assertEqual(self.api("identities?q=%d" % t2), people)
        self.assertEqual(self.api("identities?q=nobody"), [])
        self.assertEqual(self.api("dead-letters"), [])

    def test_a_returning_visitor_reopens_into_a_new_task(self):
        self.start_admin()
        task, _ = self.open_chat("client-1", [msg("m1", "Hello")])
        self.wait_idle()
        self.fakes.set_task_status(task, 3)     # completed in Planfix
        self.post(chat_event("chatStarted", "client-1", [msg("m2", "Back again")], chatId="chat-2"))
        [_, t2] = self.wait_task(2)
        self.wait_idle()
        tl = self.timeline(1)
        self.assertEqual([(t["action"], t["task"]) for t in tl if t["type"] == "task"],
                         [("created", str(task)), ("reopened", str(task)), ("created", str(t2["id"]))])
        self.assertEqual([v["note"] for v in tl if v["type"] == "visit"], ["new_visit"])
        [back] = [m for m in tl if m["type"] == "message" and m["text"] == "Back again"]
        self.assertEqual(back["task"], str(t2["id"]))


class TestActions(AdminCase):
    def dead_comment(self, task, text):
        """A comment Planfix refuses for good: a dead letter; returns it."""
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % task, "action": "fail_in_2xx",
                                       "code": 41}])
        n = len(self.api("dead-letters"))
        self.post(chat_event("chatFragment", "client-1", [msg(text, text)]))
        wait_until(lambda: len(self.api("dead-letters")) == n + 1 or None)
        return self.api("dead-letters")[-1]

    def test_retry_and_discard_with_csrf(self):
        self.start_admin()
        task, _ = self.open_chat("client-1")
        self.wait_idle()
        dead = self.dead_comment(task, "lost for now")
        self.assertEqual((dead["kind"], dead["conversation"]), ("comment", 1))
        self.assertIn("code 41", dead["error"])
        self.assertIn("lost for now", dead["request"])
        self.assertEqual(self.api("overview")["dead_letters"], 1)
        [job] = [j for j in self.timeline(1, "job") if j["job_id"] == dead["id"]]
        self.assertEqual((job["state"], job["kind"]), ("dead", "comment"))
        self.assertIn("code 41", job["error"])
        self.assertEqual(job["request"], dead["request"])

        # A cookie session must send its CSRF token: without it, or a wrong one, nothing changes.
        session, csrf = self.login()
        for headers in (session, dict(session, **{"X-CSRF-Token": "0" * 64}), dict(session, **{"X-CSRF-Token": ""})):
            self.assertEqual(self.act("dead-letters/%d/retry" % dead["id"], headers, 403),
                             {"error": "CSRF token missing or wrong"})
            self.assertEqual(self.act("dead-letters/%d/discard" % dead["id"], headers, 403),
                             {"error": "CSRF token missing or wrong"})
        self.assert_no_new_requests(0.5)
        self.assertEqual([d["id"] for d in self.api("dead-letters")], [dead["id"]])
        # A GET never changes anything.
        r = self.bridge.get("/admin/api/dead-letters/%d/retry" % dead["id"], BEARER)
        self.assertEqual(r.status, 405)

        # Retry: delivered at once, once.
        self.assertEqual(self.act("dead-letters/%d/retry" % dead["id"], dict(session, **{"X-CSRF-Token": csrf})),
                         {"ok": True})
        wait_until(lambda: len(self.fakes.planfix_comments(task)) == 1 or None)
        self.assert_quiet()
        self.assertEqual([c["description"] for c in self.fakes.planfix_comments(task)], ["lost for now"])
        self.assertEqual(self.api("dead-letters"), [])
        self.assertEqual(self.act("dead-letters/%d/retry" % dead["id"], status=404), {"error": "not a dead letter"})
        states = [j["state"] for j in self.timeline(1, "job") if j["job_id"] == dead["id"]]
        self.assertEqual(states, ["dead", "queued", "done"])
        [lost] = [m for m in self.timeline(1, "message") if m["text"] == "lost for now"]
        self.assertEqual(lost["state"], "in_comment")

        # Discard (Bearer: no CSRF token): never run again, not counted, kept and shown.
        dead2 = self.dead_comment(task, "given up")
        before = len(self.fakes.planfix_requests())
        self.assertEqual(self.act("dead-letters/%d/discard" % dead2["id"]), {"ok": True})
        self.assertEqual(self.act("dead-letters/%d/discard" % dead2["id"], status=404), {"error": "not a dead letter"})
        self.assertEqual(self.act("dead-letters/%d/retry" % dead2["id"], status=404), {"error": "not a dead letter"})
        self.assertEqual(self.api("dead-letters"), [])
        self.assertEqual(self.api("overview")["dead_letters"], 0)
        self.assertEqual(self.health()["engine"]["jobs"]["dead"], 0)
        out = self.bridge.run("retry", "--config", self.bridge.config_path, "--all")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("0 jobs back in the queue", out.stdout)
        self.assert_quiet()
        self.assertEqual(len(self.fakes.planfix_requests()), before)
        [job] = [j for j in self.timeline(1, "job") if j["job_id"] == dead2["id"] and j["state"] == "discarded"]
        self.assertIn("given up", job["request"])
        [given_up] = [m for m in self.timeline(1, "message") if m["text"] == "given up"]
        self.assertEqual(given_up["state"], "pending")
        # Later messages still go (the lane is not held by a discarded job).
        self.post(chat_event("chatFragment", "client-1", [msg("after", "after that")]))
        wait_until(lambda: len(self.fakes.planfix_comments(task)) == 2 or None)
        self.act("dead-letters/x/retry", status=404)

    def test_unmerge(self):
        self.start_admin()
        t1, _ = self.open_chat(LAPTOP, [msg("l1", "Hello")], email=EMAIL)
        self.wait_idle()
        t2, _ = self.open_chat(PHONE, [msg("p1", "Hi")])
        self.wait_idle()
        self.post(chat_event("chatFragment", PHONE, [msg("p2", "It is me")], email=EMAIL))
        self.wait_pf("/rest/task/%d" % t2)
        self.wait_idle()
        [m] = self.api("identities")[0]["merges"]
        session, csrf = self.login()
        self.assertEqual(self.act("merges/%d/unmerge" % m["merge"], session, 403),
                         {"error": "CSRF token missing or wrong"})
        self.assertFalse(self.api("identities")[0]["merges"][0]["undone"])
        self.assertEqual(self.act("merges/%d/unmerge" % m["merge"], dict(session, **{"X-CSRF-Token": csrf})),
                         {"ok": True, "conversation": 2})
        self.assertEqual(self.act("merges/%d/unmerge" % m["merge"], status=409),
                         {"error": "this merge was already undone"})
        self.assertEqual(self.act("merges/%d/unmerge" % (m["merge"] + 40), status=404), {"error": "no such merge"})
        people = self.api("identities")
        self.assertTrue(all(x["undone"] and x["undone_at"] for p in people for x in p["merges"]), people)
        [merge] = self.timeline(1, "merge")
        self.assertIsNotNone(merge["undone_at"])
        convs = {c["id"]: c for c in self.api("conversations")["conversations"]}
        self.assertEqual((convs[2]["state"], convs[2]["client_ids"]), ("closed", [shown(PHONE)]))
        self.assertEqual(convs[1]["client_ids"], [shown(LAPTOP)])


if __name__ == "__main__":
    unittest.main()
