"""Issue 13, the admin page in a browser (headless Chromium): the login and what it guards,
the CSRF token, conversations that appear live and show where each message went, and
visitor text shown as text.  The repairs (dead letters, unmerge) are in
test_browser_admin_repairs.py.  Run with Debian's python3 (see tests/lib/browser.py)."""

import json
import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from admin import ADMIN_TOKEN  # noqa: E402
from admin_page import AdminPageCase  # noqa: E402
from ws_client import Refused, WebSocket  # noqa: E402

MARIA = {"name": "Maria Lopez", "email": "maria@example.org", "phone": "+34 600 123 456"}
XSS = "<img src=x onerror=alert(1)>"


class TestAccess(AdminPageCase):
    def assert_ws_refused(self, headers=None):
        with self.assertRaises(Refused):
            WebSocket(self.bridge.port, "/admin/ws", headers=headers).close()

    def test_without_the_token_nothing_but_the_login(self):
        self.start_admin()
        # The API and the WebSocket answer nobody without the token.
        for path in ("/admin/api/session", "/admin/api/overview", "/admin/api/conversations",
                     "/admin/api/dead-letters", "/admin/api/identities"):
            r = self.bridge.get(path)
            self.assertEqual((r.status, r.json()), (401, {"error": "login required"}), path)
        r = self.bridge.post("/admin/api/dead-letters/1/retry", b"")
        self.assertEqual(r.status, 401, r.body)
        self.assert_ws_refused()
        self.assert_ws_refused({"Cookie": "br_admin=" + "0" * 64})

        b = self.open_page()
        b.wait(lambda d: b.find("#login")[0].is_displayed(), "no login form")
        self.assertFalse(b.find("#nav")[0].is_displayed(), "the menu shows before a login")
        self.assertFalse(b.find("#view")[0].is_displayed(), "a view shows before a login")
        self.shoot(b, "login")

        # A wrong token: an error, still the login.
        self.log_in(b, "wrong-token-000000000000")
        b.wait_text("#login-error", "Wrong token.")
        self.assertTrue(b.find("#login")[0].is_displayed())
        self.assertFalse(b.find("#nav")[0].is_displayed())
        self.assertIsNone(b.driver.get_cookie("br_admin"))

        # The right one: the overview (of this bridge: its config file), live.
        self.log_in(b)
        view = self.wait_view(b, "overview")
        self.assertFalse(b.find("#login")[0].is_displayed())
        b.wait_text("[data-upstream='tracker']", "planfix")
        # The tracker's requests today against tracker.daily_quota (Planfix's default).
        b.wait_text("[data-upstream='tracker']", " of 20000 today")
        self.assertIn(self.bridge.config_path, view.text)
        self.wait_live(b)
        self.shoot(b, "overview")
        cookie = b.driver.get_cookie("br_admin")
        self.assertTrue(cookie["httpOnly"], cookie)
        self.assertEqual(cookie["sameSite"], "Strict", cookie)
        self.assertEqual(cookie["path"], "/admin/", cookie)
        self.assertEqual(b.js("return document.cookie"), "", "the session cookie is readable by scripts")
        # A reload keeps the session.
        self.go(b, "#/dead-letters", "dead-letters")
        b.driver.refresh()
        self.wait_view(b, "dead-letters")

        # Log out: the login again, and the old cookie opens nothing.
        b.click("#logout")
        b.wait(lambda d: b.find("#login")[0].is_displayed(), "no login form after logging out")
        self.assertFalse(b.find("#view")[0].is_displayed())
        r = self.bridge.get("/admin/api/overview", {"Cookie": "br_admin=" + cookie["value"]})
        self.assertEqual(r.status, 401, r.body)
        self.assert_ws_refused({"Cookie": "br_admin=" + cookie["value"]})
        # A link into the app asks for the login first, then shows what it points at.
        b.get(self.bridge.url + "/admin/#/identities")
        b.wait(lambda d: b.find("#login")[0].is_displayed(), "no login form for a link into the app")
        self.log_in(b)
        self.wait_view(b, "identities")
        self.assert_no_csp_violations(b)

    def test_a_post_without_the_csrf_token_is_refused(self):
        self.start_admin()
        b = self.logged_in()
        csrf = json.loads(b.fetch("GET", "/admin/api/session")["body"])["csrf"]
        self.assertGreaterEqual(len(csrf), 16)
        refused = {"error": "CSRF token missing or wrong"}
        # From the page itself (its cookie goes along): no token, a wrong token, then the right one.
        r = b.fetch("POST", "/admin/api/dead-letters/999/retry")
        self.assertEqual((r["status"], json.loads(r["body"])), (403, refused))
        r = b.fetch("POST", "/admin/api/dead-letters/999/retry", {"X-CSRF-Token": "0" * len(csrf)})
        self.assertEqual((r["status"], json.loads(r["body"])), (403, refused))
        r = b.fetch("POST", "/admin/api/dead-letters/999/retry", {"X-CSRF-Token": csrf})
        self.assertEqual(r["status"], 404, r)      # past the check: job 999 is no dead letter
        r = b.fetch("POST", "/admin/logout")
        self.assertEqual((r["status"], json.loads(r["body"])), (403, refused))

        # From a script with the session cookie: the same.
        cookie = {"Cookie": "br_admin=" + b.driver.get_cookie("br_admin")["value"]}
        r = self.bridge.post("/admin/api/merges/999/unmerge", b"", cookie)
        self.assertEqual((r.status, r.json()), (403, refused))
        r = self.bridge.post("/admin/api/merges/999/unmerge", b"", dict(cookie, **{"X-CSRF-Token": csrf}))
        self.assertEqual(r.status, 404, r.body)
        # A script with the token itself (Bearer) needs no CSRF token; a wrong one is 401.
        r = self.bridge.post("/admin/api/dead-letters/999/retry", b"", {"Authorization": "Bearer " + ADMIN_TOKEN})
        self.assertEqual(r.status, 404, r.body)
        r = self.bridge.post("/admin/api/dead-letters/999/retry", b"",
                             {"Authorization": "Bearer wrong-token-000000000000"})
        self.assertEqual(r.status, 401, r.body)
        # The refused logout ended nothing.
        self.assertEqual(self.bridge.get("/admin/api/overview", cookie).status, 200)


class TestLive(AdminPageCase):
    def test_a_new_conversation_appears_without_a_reload_and_shows_each_message_path(self):
        self.start_admin()
        b = self.logged_in("#/conversations", "conversations")
        b.wait_text("section[data-view='conversations']", "No conversation yet.")
        b.js("window.brSameDocument = 'yes'")

        # A visitor starts a chat: the row appears by itself (the WebSocket), then its task.
        self.post(chat_event("chatStarted", "laptopQm7TzR2pLx9",
                             [msg("m1", "Hello, is the blue kettle in stock?")], **MARIA))
        b.wait_text("table.conversations tbody tr", "Maria Lopez")
        [task] = self.wait_task(1)
        task_id = task["id"]
        b.wait_text("table.conversations tbody tr", "#%d" % task_id)
        row = b.wait_text("table.conversations tbody tr", "maria@example.org")
        self.assertIn("shop", row)
        self.assertIn("active", row)
        self.assertEqual(b.js("return window.brSameDocument"), "yes", "the page was reloaded")
        # The task number links into the tracker.
        _, href = b.wait_attrs("table.conversations a.task-link", "#%d" % task_id, "href")
        self.assertTrue(href.startswith("http"), href)
        self.wait_idle()

        # Search: by name, by e-mail, by task number; nothing for a stranger.
        for q, found in (("maria", True), ("MARIA@EXAMPLE", True), (str(task_id), True), ("nobody-else", False)):
            field = b.find("#search-q")[0]
            field.clear()
            field.send_keys(q + "\n")
            if found:
                b.wait(lambda d: "#/conversations?q=" in d.current_url and b.text("table.conversations tbody"),
                       "no result for %r" % q)
                b.wait_text("table.conversations tbody tr", "Maria Lopez")
            else:
                b.wait_text("section[data-view='conversations']", "No conversation matches")
        b.find("#search-q")[0].clear()
        b.find("#search-q")[0].send_keys("\n")
        b.wait_text("table.conversations tbody tr", "Maria Lopez")
        self.shoot(b, "conversations")

        # Open it: the first message went into the task's description.
        b.click("table.conversations a.person-name")
        self.wait_view(b, "conversation")
        self.assertEqual(b.find("section[data-view='conversation'] h1")[0].text, "Maria Lopez")
        first = b.wait_text("li.event-message", "Hello, is the blue kettle in stock?")
        self.assertIn("in the task description", first)

        # Two more messages in one webhook, while the page is open: they appear, in one comment.
        self.post(chat_event("chatFragment", "laptopQm7TzR2pLx9",
                             [msg("m2", "Do you ship to Madrid?"), msg("m3", "I would need it by Friday.")],
                             **MARIA))
        self.wait_comment_posts(task_id, 1)
        self.wait_idle()
        [comment] = self.fakes.planfix_comments(task_id)
        path = "in comment %s of task #%d" % (comment["id"], task_id)
        for text in ("Do you ship to Madrid?", "I would need it by Friday."):
            b.wait(lambda d: any(text in e.text and path in e.text and "coalesced with message" in e.text
                                 for e in b.find("li.event-message")),
                   "the message %r does not say it is %s, coalesced with the other" % (text, path))
        # An employee answers in the tracker: the reply, with its agent, appears too.
        self.fakes.employee_comment(task_id, owner="user:5", name="Anna",
                                    text="Yes, it is in stock. We ship to Madrid in two days.")
        self.assertEqual(self.bridge.post_planfix(task_id)[0], 200)
        wait_until(lambda: self.fakes.chatra_messages(), message="the reply was not sent")
        reply = b.wait_text("li.event-reply", "We ship to Madrid in two days.")
        self.assertIn("Anna Smirnova", reply)
        self.wait_idle()
        b.wait(lambda d: "delivered to the chat" in b.text("li.event-reply"), "the reply is not shown delivered")
        self.shoot(b, "conversation")
        # The tracker's requests, with their outcome; the request and answer open on a click.
        job = b.wait_text("li.event-job", "done")
        self.assertIn("at the first try", job)
        b.click("li.event-job details.exchange summary")
        b.wait(lambda d: any(e.is_displayed() for e in b.find("li.event-job details[open] pre.raw")),
               "the request and answer did not open")
        self.assertEqual(b.js("return window.brSameDocument"), "yes", "the page was reloaded")
        self.assert_no_csp_violations(b)

    def test_when_the_bridge_restarts_the_page_reconnects_and_asks_for_a_new_login(self):
        self.start_admin()
        b = self.logged_in("#/conversations", "conversations")
        self.assertEqual(self.bridge.stop(), 0)
        b.wait(lambda d: b.find("#live")[0].get_attribute("data-state") == "reconnecting" or None,
               "the live indicator does not say the page is reconnecting")
        self.assertEqual(b.text("#live"), "○ reconnecting…")
        # Sessions live in memory: after the restart the page's next try is refused, and it asks
        # for the token again (the backoff waits at most a few seconds this early).
        self.bridge.start()
        b.wait(lambda d: b.find("#login")[0].is_displayed(), "no login form after the restart", timeout=30)
        self.log_in(b)
        self.wait_view(b, "conversations")
        self.wait_live(b)
        self.post(chat_event("chatStarted", "client-after-restart", [msg("r1", "Still there?")], name="Ana Ruiz"))
        b.wait_text("table.conversations tbody tr", "Ana Ruiz")

    def test_a_visitor_named_like_html_is_shown_as_text(self):
        self.start_admin()
        b = self.logged_in("#/conversations", "conversations")
        self.post(chat_event("chatStarted", "hostileVisitor001", [msg("x1", "Hi " + XSS)], name=XSS,
                             email="x@example.org"))
        row = b.wait_text("table.conversations tbody tr", XSS)
        self.assertIn(XSS, row)
        self.assertEqual(b.find("img"), [], "an img element was made from the visitor's name")
        self.assert_no_dialog(b)
        b.click("table.conversations a.person-name")
        self.wait_view(b, "conversation")
        self.assertEqual(b.find("section[data-view='conversation'] h1")[0].text, XSS)
        b.wait_text("li.event-message blockquote", "Hi " + XSS)
        self.assertEqual(b.find("img"), [], "an img element was made from the visitor's text")
        self.assertEqual(b.js("return document.querySelectorAll('[onerror]').length"), 0)
        self.assert_no_dialog(b)
        self.assert_no_csp_violations(b)


if __name__ == "__main__":
    unittest.main()
