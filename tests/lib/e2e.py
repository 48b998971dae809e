"""Shared helpers for the end-to-end tests (tests/integration/test_e2e_*.py).

The test files import E2ECase and the helpers from here.  E2ECase has no test methods of
its own, so importing it runs nothing twice.
"""

import re

from harness import (ANNA, CHATRA_SHOP_PUBLIC_KEY, CHATRA_SHOP_SECRET_KEY, BridgeTestCase,
                     assert_stays, chat_event, msg, wait_until)

# sourceObjectId: the installation's UUID up to its last group, then the kind
# (1 task, 2 comment, 3 contact) and the local id in 11 hex digits.
INSTANCE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
TASK_SOURCE_RE = re.compile(r"^(%s)1[0-9a-f]{11}$" % INSTANCE)
COMMENT_SOURCE_RE = re.compile(r"^(%s)2[0-9a-f]{11}$" % INSTANCE)
CONTACT_SOURCE_RE = re.compile(r"^(%s)3[0-9a-f]{11}$" % INSTANCE)
COALESCED_LINE = re.compile(r"(?:^|<br>)<i>\d\d:\d\d:\d\d</i> ")


def split_coalesced(description):
    """["a", "b"] for a coalesced comment, [description] for a single message."""
    if not description.startswith("<i>") or not COALESCED_LINE.match(description):
        return [description]
    return [t for t in COALESCED_LINE.split(description) if t != ""]


CHATRA_AUTH = "Chatra.Simple %s:%s" % (CHATRA_SHOP_PUBLIC_KEY, CHATRA_SHOP_SECRET_KEY)
ANNA_AGENT = ANNA["chatra_agent_id"]

CONTACT_FIND_FIELDS = "id,name,lastname,email,sourceObjectId"
COMMENTS_LIST_BODY = {"offset": 0, "pageSize": 100,
                      "fields": "id,dateTime,description,owner,isHidden,type,sourceObjectId",
                      "typeList": "Comments", "resultOrder": [{"field": "id", "direction": "Desc"}]}


def contact_find_body(email):
    return {"offset": 0, "pageSize": 100, "fields": CONTACT_FIND_FIELDS,
            "filters": [{"type": 4026, "operator": "equal", "value": email}]}


def calls(requests):
    """["POST /rest/task/", ...] for a list of recorded requests."""
    return ["%s %s" % (r["method"], r["path"]) for r in requests]


class E2ECase(BridgeTestCase):
    """BridgeTestCase with helpers that read what the fakes received."""

    # --- what the fakes saw ---------------------------------------------------

    def pf(self, path=None, method=None, prefix=None):
        """Planfix requests (path exact, or prefix), oldest first."""
        return self.fakes.planfix_requests(path_prefix=prefix, method=method, path=path)

    def contact_body(self, index=0):
        """The body of a contact creation, its sourceObjectId checked and removed."""
        body = dict(self.pf("/contact/")[index]["body"])
        self.assertRegex(body.pop("sourceObjectId", ""), CONTACT_SOURCE_RE)
        return body

    def comment_texts(self, task, owner=False):
        """The messages the task's comments carry, in order: a comment that coalesced several
        visitor messages ("<i>HH:MM:SS</i> text<br><i>...</i> text") counts once per message."""
        out = []
        for p in self.comment_posts(task):
            d = p["body"]["description"]
            parts = split_coalesced(d)
            for part in parts:
                out.append((part, p["body"].get("owner")) if owner else part)
        return out

    def pf_calls(self):
        return calls(self.fakes.planfix_requests())

    def chatra_calls(self):
        """Chatra calls, without the visitor-profile read of a new conversation (tested on its own)."""
        return [c for c in calls(self.fakes.chatra_requests()) if not c.startswith("GET /api/clients/")]

    def comment_posts(self, task):
        return self.pf("/task/%d/comments/" % task, "POST")

    def wait_pf(self, path, count=1, method="POST", timeout=10):
        return self.fakes.wait_requests("planfix", method=method, path=path, count=count, timeout=timeout)

    def wait_chatra(self, path="/messages/", count=1, timeout=10):
        return self.fakes.wait_requests("chatra", method="POST", path=path, count=count, timeout=timeout)

    def wait_comment_posts(self, task, count, timeout=10):
        return self.wait_pf("/task/%d/comments/" % task, count, timeout=timeout)

    def wait_task(self, count=1, timeout=10):
        """Wait until the fake holds count tasks; returns them."""
        return wait_until(lambda: (lambda ts: ts if len(ts) >= count else None)(self.fakes.planfix_tasks()),
                          timeout, message=lambda: "fewer than %d tasks; planfix saw %s" % (count, self.pf_calls()))

    # --- the bridge's own state -------------------------------------------------

    def health(self):
        r = self.bridge.get("/healthz")
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def idle(self):
        """True when the bridge has nothing to do: inbox applied, no job queued or in flight."""
        e = self.health()["engine"]
        return (e["inbox_pending"] == 0 and e["jobs"]["queued"] == 0 and e["jobs"]["in_flight"] == 0
                and all(u["queued"] == 0 and u["in_flight"] == 0 for u in e["upstreams"]))

    def wait_idle(self, timeout=10):
        wait_until(self.idle, timeout, message=lambda: "bridge not idle: %s; planfix saw %s"
                   % (self.health(), self.pf_calls()))

    def assert_quiet(self, duration=0.8):
        """Wait until the bridge is idle, then assert that neither fake gets any request for duration s."""
        self.wait_idle()
        pf_before = self.pf_calls()
        chatra_before = self.chatra_calls()
        assert_stays(lambda: self.pf_calls() == pf_before and self.chatra_calls() == chatra_before, duration,
                     message=lambda: "unexpected requests: planfix %s, chatra %s"
                     % (self.pf_calls()[len(pf_before):], self.chatra_calls()[len(chatra_before):]))

    def assert_no_new_requests(self, duration=1.0):
        """Assert that neither fake gets any request for duration s (without waiting for idle:
        jobs blocked behind a dead one stay queued)."""
        pf_before = self.pf_calls()
        chatra_before = self.chatra_calls()
        assert_stays(lambda: self.pf_calls() == pf_before and self.chatra_calls() == chatra_before, duration,
                     message=lambda: "unexpected requests: planfix %s, chatra %s"
                     % (self.pf_calls()[len(pf_before):], self.chatra_calls()[len(chatra_before):]))

    def dead_jobs(self):
        return self.health()["engine"]["jobs"]["dead"]

    # --- driving a conversation ------------------------------------------------------

    def post(self, event, **kw):
        status, body = self.bridge.post_chatra(event, **kw)
        self.assertEqual((status, body), (200, '{"ok":true}'), "chatra webhook answer")

    def open_chat(self, client_id="client-1", messages=None, **client):
        """chatStarted with messages (default one client message); waits for the task.
        Returns (task id, contact ref "contact:N")."""
        if messages is None:
            messages = [msg("%s-m1" % client_id, "Hello, is the blue kettle in stock?")]
        n = len(self.fakes.planfix_tasks())
        self.post(chat_event("chatStarted", client_id, messages, **client))
        task = self.wait_task(n + 1)[n]
        return task["id"], task["assigner"]

    def assert_source(self, body, regex):
        self.assertRegex(body.get("sourceObjectId", ""), regex)
