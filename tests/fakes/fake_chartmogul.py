#!/usr/bin/env python3
"""A fake ChartMogul API v1 for integration tests (after ChartMogul's public API reference).

    python3 fake_chartmogul.py --port 0 --port-file F --api-key K [--rps N]

HTTP Basic auth with the API key as the user and an empty password ("-u KEY:"); anything else
is a 401.  Lists are paged as ChartMogul pages them: per_page (default and at most 200, or the
setting max_per_page), cursor, and has_more with the next cursor in the answer.
  GET /v1/customers/search?email=E          customers whose e-mail is E (case-insensitive):
                                            {"entries": [...], "cursor", "has_more"}; 404 when none
  GET /v1/customers/{uuid}/subscriptions    {"customer_uuid", "entries": [...], "cursor", "has_more"}
  GET /v1/customers/{uuid}/activities       {"entries": [...], "cursor", "has_more"} oldest first
A customer entry has id, uuid, external_id, name, email, status, mrr and arr (integer cents),
currency, currency-sign, customer-since, chartmogul-url, billing-system-type, attributes.

Faults come from fakecommon.py: {"action": "status", "status": 429, "headers": {"Retry-After": "2"}},
{"action": "delay", "seconds": 3}, {"action": "status", "status": 200, "body": "not json"}.

Control API (no auth, not recorded), besides the common ones in fakecommon.py:
  POST /_control/customers [{"email", "name", "status", "mrr", "arr", "currency",
                             "subscriptions": [{"plan", "status", ...}],
                             "activities": [{"date", "type", "activity-mrr-movement", ...}],
                             "chartmogul-url" (default an https address in the app)}]
       add customers (uuid made when missing) -> {"uuids": [...]}
  POST /_control/settings {"max_per_page": N}
"""

import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakecommon import FakeApp, Reply, common_args, serve  # noqa: E402

MAX_PER_PAGE = 200


def error(status, message):
    return Reply(status, {"code": status, "message": message})


class ChartMogul(FakeApp):
    name = "chartmogul"
    base = "/v1"

    def __init__(self, api_key, **kw):
        self.api_key = api_key
        super().__init__(**kw)

    def reset_state(self):
        self.customers = []
        self.next_id = 25647
        self.max_per_page = MAX_PER_PAGE

    def authorize(self, req):
        got = req.header("Authorization") or ""
        if got.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(got[6:]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = None, None
            if user == self.api_key and password == "":
                return None
        return error(401, "No valid API key provided")

    def page(self, req, items):
        """One page of items after req's cursor (the index of the next item, as text)."""
        try:
            per_page = int(req.query.get("per_page", MAX_PER_PAGE))
            start = int(req.query.get("cursor", "0") or 0)
        except ValueError:
            raise ValueError("per_page and cursor must be numbers")
        if not 1 <= per_page <= MAX_PER_PAGE or start < 0:
            raise ValueError("per_page must be 1..%d" % MAX_PER_PAGE)
        per_page = min(per_page, self.max_per_page)
        chunk = items[start:start + per_page]
        more = start + per_page < len(items)
        return {"entries": chunk, "cursor": str(start + per_page) if more else None, "has_more": more}

    def find(self, uuid):
        for c in self.customers:
            if c["uuid"] == uuid:
                return c
        return None

    def api(self, req):
        parts = req.path.rstrip("/").split("/")
        if req.method != "GET":
            return error(405, "Method not allowed")
        try:
            if req.path.rstrip("/") == "/v1/customers/search":
                email = (req.query.get("email") or "").strip().lower()
                if not email:
                    return error(400, "email is required")
                hits = [self.public(c) for c in self.customers if c["email"].lower() == email]
                if not hits:
                    return error(404, "The requested customer could not be found.")
                return Reply(200, self.page(req, hits))
            if len(parts) == 5 and parts[:3] == ["", "v1", "customers"] and parts[4] in ("subscriptions", "activities"):
                c = self.find(parts[3])
                if c is None:
                    return error(404, "The requested customer could not be found.")
                out = self.page(req, c[parts[4]])
                if parts[4] == "subscriptions":
                    out["customer_uuid"] = c["uuid"]
                return Reply(200, out)
        except ValueError as e:
            return error(400, str(e))
        return error(404, "No route %s" % req.path)

    @staticmethod
    def public(c):
        return {k: v for k, v in c.items() if k not in ("subscriptions", "activities")}

    def control(self, req):
        if req.path.rstrip("/") == "/_control/customers" and req.method == "POST":
            if not isinstance(req.body, list):
                raise ValueError("expected a list of customers")
            uuids = []
            with self.lock:
                for obj in req.body:
                    if not isinstance(obj, dict) or not isinstance(obj.get("email"), str):
                        raise ValueError("a customer needs an e-mail")
                    self.next_id += 1
                    cid = self.next_id
                    c = {"id": cid, "uuid": obj.get("uuid", "cus_%08d-0000-4000-8000-000000000000" % cid),
                         "external_id": "ext_%d" % cid, "name": obj.get("name", "Customer %d" % cid),
                         "email": obj["email"], "status": obj.get("status", "Active"),
                         "mrr": obj.get("mrr", 0), "arr": obj.get("arr", 0),
                         "currency": obj.get("currency", "USD"), "currency-sign": "$",
                         "customer-since": "2024-01-15T10:00:00+00:00",
                         "chartmogul-url": obj.get("chartmogul-url", "https://app.chartmogul.com/#customers/%d-%s" % (
                             cid, obj.get("name", "Customer").replace(" ", "_"))),
                         "billing-system-type": "Stripe", "attributes": {"tags": [], "custom": {}},
                         "subscriptions": list(obj.get("subscriptions", [])),
                         "activities": list(obj.get("activities", []))}
                    self.customers.append(c)
                    uuids.append(c["uuid"])
            return Reply(200, {"uuids": uuids})
        return None

    def apply_settings(self, body):
        super().apply_settings(body)
        if "max_per_page" in body:
            n = body["max_per_page"]
            if not isinstance(n, int) or not 1 <= n <= MAX_PER_PAGE:
                raise ValueError("max_per_page must be 1..%d" % MAX_PER_PAGE)
            self.max_per_page = n

    def state(self):
        return {"customers": self.customers}


def main():
    p = common_args("Fake ChartMogul API server")
    p.add_argument("--api-key", required=True)
    args = p.parse_args()
    serve(ChartMogul(args.api_key, rps=args.rps, rps_tolerance=args.rps_tolerance), args)


if __name__ == "__main__":
    main()
