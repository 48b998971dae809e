#!/usr/bin/env python3
"""A fake Chatra REST API for integration tests (after the reference notes on Chatra's API).

    python3 fake_chatra.py --port 0 --port-file F --public-key P --secret-key S [--rps N]

Base path /api.  Authorization is `Chatra.Simple P:S` (HTTP Basic with the same
pair is accepted too, as Chatra documents it as an alternative).
  POST /api/messages/        {"clientId","text","agentId"} or, instead of agentId, the agent's
                             {"agentEmail","agentName"[,"receivedFrom"]} (Chatra finds the agent by
                             e-mail, or makes a stand-in) -> 200 {"id": "...", ...}
  POST /api/pushedMessages/  {"clientId","text"[,"agentId"|"groupId"]}
  GET  /api/clients/{id}     the visitor set with POST /_control/clients, 404 when unknown
  PUT  /api/clients/{id}     merges name/email/phone/notes (null clears), creating the visitor
                             when unknown; 200 with the visitor

Control API (no auth, not recorded), besides the common ones in fakecommon.py:
  POST /_control/clients {"<id>": {...visitor...}}   add or replace canned visitors
"""

import base64
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakecommon import FakeApp, Reply, common_args, serve  # noqa: E402

ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


class Chatra(FakeApp):
    name = "chatra"
    base = "/api"

    def __init__(self, public_key, secret_key, **kw):
        self.public_key = public_key
        self.secret_key = secret_key
        super().__init__(**kw)

    def reset_state(self):
        self.messages = []
        self.pushed = []
        self.clients = {}
        self.next_id = 1

    def new_id(self):
        # Chatra ids are 17 characters long; these stay readable and sortable.
        n, self.next_id = self.next_id, self.next_id + 1
        digits = ""
        while n:
            n, r = divmod(n, len(ID_ALPHABET))
            digits = ID_ALPHABET[r] + digits
        return "fakeMsg" + digits.rjust(10, ID_ALPHABET[0])

    def authorize(self, req):
        got = req.header("Authorization") or ""
        pair = "%s:%s" % (self.public_key, self.secret_key)
        if got == "Chatra.Simple " + pair:
            return None
        if got.startswith("Basic "):
            try:
                if base64.b64decode(got[6:].strip(), validate=True).decode("utf-8") == pair:
                    return None
            except (ValueError, UnicodeDecodeError):
                pass
        return Reply(401, {"error": "Unauthorized", "message": "invalid API keys"})

    def send(self, req, box, extra_keys, need_agent=False):
        body = req.json_object()
        if body is None:
            return Reply(400, {"error": "Bad Request", "message": "invalid JSON"})
        for key in ("clientId", "text"):
            if not isinstance(body.get(key), str) or not body[key]:
                return Reply(400, {"error": "Bad Request", "message": "%s is required" % key})
        for key in ("agentId",) + extra_keys:
            if key in body and not isinstance(body[key], str):
                return Reply(400, {"error": "Bad Request", "message": "%s must be a string" % key})
        if need_agent and not body.get("agentId"):
            email, name = body.get("agentEmail"), body.get("agentName")
            if email is None:
                return Reply(400, {"error": "Bad Request", "message": "agentId or agentEmail is required"})
            if not isinstance(email, str) or "@" not in email:
                return Reply(400, {"error": "Bad Request", "message": "agentEmail must be an e-mail address"})
            if not isinstance(name, str) or not name.strip():
                return Reply(400, {"error": "Bad Request", "message": "agentName is required with agentEmail"})
            if "receivedFrom" in body and not isinstance(body["receivedFrom"], str):
                return Reply(400, {"error": "Bad Request", "message": "receivedFrom must be a string"})
        m = dict(body, id=self.new_id(), createdAt=int(time.time() * 1000))
        box.append(m)
        return Reply(200, m)

    def api(self, req):
        parts = [p for p in req.path[len(self.base):].split("/") if p] \
            if req.path.startswith(self.base + "/") else []
        if parts == ["messages"] and req.method == "POST":
            return self.send(req, self.messages, ("agentEmail", "agentName", "receivedFrom"), need_agent=True)
        if parts == ["pushedMessages"] and req.method == "POST":
            return self.send(req, self.pushed, ("groupId",))
        if len(parts) == 2 and parts[0] == "clients":
            cid = parts[1]
            if req.method == "GET":
                if cid not in self.clients:
                    return Reply(404, {"error": "Not Found", "message": "client not found"})
                return Reply(200, self.clients[cid])
            if req.method == "PUT":
                body = req.json_object()
                if body is None:
                    return Reply(400, {"error": "Bad Request", "message": "invalid JSON"})
                c = self.clients.setdefault(cid, {"id": cid})
                for key in ("name", "email", "phone", "notes"):
                    if key in body:
                        if body[key] is None:
                            c.pop(key, None)
                        else:
                            c[key] = body[key]
                return Reply(200, c)
        return Reply(404, {"error": "Not Found", "message": "%s %s" % (req.method, req.path)})

    def control(self, req):
        if req.path.rstrip("/") == "/_control/clients" and req.method == "POST":
            body = req.json_object()
            if not body:
                raise ValueError("expected {\"<client id>\": {...}}")
            with self.lock:
                for cid, obj in body.items():
                    self.clients[cid] = dict(obj, id=obj.get("id", cid))
            return Reply(200, {"result": "success"})
        return None

    def state(self):
        return {"messages": self.messages, "pushedMessages": self.pushed, "clients": self.clients}


def main():
    p = common_args("Fake Chatra REST API server")
    p.add_argument("--public-key", required=True)
    p.add_argument("--secret-key", required=True)
    args = p.parse_args()
    serve(Chatra(args.public_key, args.secret_key, rps=args.rps, rps_tolerance=args.rps_tolerance), args)


if __name__ == "__main__":
    main()
