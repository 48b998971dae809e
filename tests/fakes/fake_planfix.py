#!/usr/bin/env python3
"""A fake Planfix REST v2 server for integration tests (after the reference notes on Planfix's REST API).

    python3 fake_planfix.py --port 0 --port-file F --token T [--rps N] [--utc-offset-min M]

Base path /rest.  In-memory contacts (ids from 1), tasks (ids from 100) and
comments (ids from 1000): the ranges differ on purpose so that an id used as the
wrong kind of object shows up.  Users 1 (the token's robot), 5 Anna, 6 Boris
and 7 Viktor exist; person references to unknown contacts or users are refused
(code 41).  A task is active unless its status is one of the inactive statuses
(3 Completed, 5 Finished, 6 Cancelled by default).

Time zone: like Planfix, the fake lives in the API user's zone, a fixed offset
east of UTC (--utc-offset-min, default 0; the setting utc_offset_min changes it
at run time, as a DST change would).  Every dateTime it answers has "date" and
"time" in that zone and "datetime" in UTC; the dates of a filter are read in
that zone.

Control API (no auth, not recorded), besides the common ones in fakecommon.py:
  POST /_control/employee_comment {"task":N,"owner":"user:5","name":"Anna","description":"<p>..</p>"}
       optional "hidden", "time" (epoch seconds), "sourceObjectId"  -> {"id":N}
  POST /_control/task_status {"task":N,"status":3}
  POST /_control/delete_task {"task":N[,"purge":true]}  flag isDeleted (reads still work,
       writes and task/list see no task) or, with purge, forget the task entirely
  POST /_control/contact {...contact fields...}           -> {"id":N}
  POST /_control/task {...task fields as POST /task/...}  -> {"id":N}  a task made by hand
  POST /_control/users [{"id":8,"name":"..","email":".."}] add or replace users
  POST /_control/settings {"rps":N,"rps_tolerance":S,"remaining":N,"utc_offset_min":M,
                           "statuses":{"8":{"name":"Archived","isActive":false}},
                           "ignore_order":true}   lists of comments disregard resultOrder
"""

import re
import calendar
import os
import sys
import time

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakecommon import FakeApp, Reply, common_args, fields_filter, serve  # noqa: E402

DEFAULT_USERS = [
    {"id": 1, "name": "Bridge", "lastname": "Robot", "email": "robot@example.com"},
    {"id": 5, "name": "Anna", "lastname": "Smirnova", "email": "anna@example.com"},
    {"id": 6, "name": "Boris", "lastname": "Petrov", "email": "boris@example.com"},
    {"id": 7, "name": "Viktor", "lastname": "Watcher", "email": "viktor@example.com"},
]
DEFAULT_STATUSES = {
    1: {"name": "New", "isActive": True},
    2: {"name": "In progress", "isActive": True},
    3: {"name": "Completed", "isActive": False},
    4: {"name": "Postponed", "isActive": True},
    5: {"name": "Finished", "isActive": False},
    6: {"name": "Cancelled", "isActive": False},
}
NEW_TASK_STATUS = 2
ROBOT = "user:1"
MAX_PAGE = 100


class ApiError(Exception):
    def __init__(self, code, error, status=400):
        super().__init__(error)
        self.code = code
        self.error = error
        self.status = status


def fail(code, error, status=400):
    return Reply(status, {"result": "fail", "code": code, "error": error})


def date_time(t, offset_min=0):
    """A Planfix TimePoint of epoch seconds t: date and time in the zone offset_min minutes east
    of UTC, datetime in UTC."""
    local, utc = time.gmtime(t + offset_min * 60), time.gmtime(t)
    return {"date": time.strftime("%d-%m-%Y", local), "time": time.strftime("%H:%M", local),
            "datetime": time.strftime("%Y-%m-%dT%H:%MZ", utc)}


def parse_pf_date(s, with_time, offset_min=0):
    """Epoch seconds of a filter date, read as a local time offset_min minutes east of UTC."""
    fmt = "%d-%m-%Y %H:%M" if with_time else "%d-%m-%Y"
    try:
        return calendar.timegm(time.strptime(s.strip(), fmt)) - offset_min * 60
    except (ValueError, AttributeError):
        raise ApiError(41, "Invalid date %r (expected %s)" % (s, fmt))


def check_offset(v):
    """A zone offset in minutes, as time zones have them (UTC-12:00 to UTC+14:00)."""
    if not isinstance(v, int) or isinstance(v, bool) or not -12 * 60 <= v <= 14 * 60:
        raise ValueError("utc_offset_min must be an integer from -720 to 840, not %r" % (v,))
    return v


def paging(body):
    offset, size = body.get("offset", 0), body.get("pageSize", MAX_PAGE)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ApiError(41, "Invalid offset")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_PAGE:
        raise ApiError(41, "pageSize must be 1..%d" % MAX_PAGE)
    return offset, size


def filters_of(body):
    f = body.get("filters", [])
    if not isinstance(f, list) or not all(isinstance(x, dict) for x in f):
        raise ApiError(41, "filters must be a list of objects")
    return f


def compare(op, matched):
    if op in (None, "equal"):
        return matched
    if op == "notequal":
        return not matched
    raise ApiError(41, "Unsupported operator %r" % op)


def ref_id(v):
    """The id inside a {"id": X} object, or X itself."""
    return v.get("id") if isinstance(v, dict) else v


class Planfix(FakeApp):
    name = "planfix"
    base = "/rest"

    def __init__(self, token, utc_offset_min=0, **kw):
        self.token = token
        self.utc_offset_min = utc_offset_min  # the API user's zone; kept by reset, as rps is
        super().__init__(**kw)

    def reset_state(self):
        self.contacts = {}
        self.tasks = {}
        self.comments = {}
        self.contact_comments = {}
        self.next_contact, self.next_task, self.next_comment = 1, 100, 1000
        self.users = {u["id"]: dict(u) for u in DEFAULT_USERS}
        self.statuses = {k: dict(v) for k, v in DEFAULT_STATUSES.items()}
        self.remaining = 20000
        self.ignore_order = False

    def extra_headers(self):
        self.remaining = max(0, self.remaining - 1)
        return {"X-RateLimit-Remaining": str(self.remaining)}

    def apply_settings(self, body):
        super().apply_settings(body)
        if "remaining" in body:
            self.remaining = int(body["remaining"])
        if "utc_offset_min" in body:
            self.utc_offset_min = check_offset(body["utc_offset_min"])
        if "ignore_order" in body:
            self.ignore_order = bool(body["ignore_order"])
        for k, v in (body.get("statuses") or {}).items():
            self.statuses[int(k)] = {"name": v.get("name", "Status %s" % k), "isActive": bool(v.get("isActive", True))}

    def authorize(self, req):
        if req.header("Authorization") != "Bearer " + self.token:
            return fail(1, "Invalid token", 401)
        return None

    # --- people ---------------------------------------------------------------------

    def person(self, v, default_prefix="contact"):
        """Normalise a person reference ({"id": "contact:5"}, "user:5", 5) and check it exists."""
        pid = ref_id(v)
        if isinstance(pid, int) and not isinstance(pid, bool):
            pid = "%s:%d" % (default_prefix, pid)
        elif isinstance(pid, str) and pid.isdigit():
            pid = "%s:%s" % (default_prefix, pid)
        if not isinstance(pid, str) or ":" not in pid:
            raise ApiError(41, "Invalid person id %r" % (v,))
        kind, _, num = pid.partition(":")
        if not num.isdigit():
            raise ApiError(41, "Invalid person id %r" % (v,))
        n = int(num)
        if kind == "contact" and (n not in self.contacts or self.contacts[n].get("isDeleted")):
            raise ApiError(41, "Contact not found by id %d" % n)
        if kind == "user" and n not in self.users:
            raise ApiError(41, "User not found by id %d" % n)
        if kind not in ("contact", "user", "group"):
            raise ApiError(41, "Invalid person id %r" % (v,))
        return pid

    def person_out(self, pid):
        if not pid:
            return None
        kind, _, num = pid.partition(":")
        name = ""
        if kind == "user" and int(num) in self.users:
            u = self.users[int(num)]
            name = " ".join(x for x in (u.get("name"), u.get("lastname")) if x)
        elif kind == "contact" and int(num) in self.contacts:
            c = self.contacts[int(num)]
            name = " ".join(x for x in (c.get("name"), c.get("lastname")) if x)
        return {"id": pid, "name": name}

    def people(self, v):
        """Validate a {"users":[{"id":..}],"groups":[...]} block; returns it normalised."""
        if v is None:
            return None
        if not isinstance(v, dict):
            raise ApiError(41, "Invalid people block %r" % (v,))
        out = {}
        for key, prefix in (("users", "user"), ("groups", "group")):
            items = v.get(key, [])
            if not isinstance(items, list):
                raise ApiError(41, "Invalid %s list" % key)
            out[key] = [{"id": self.person(x, prefix)} for x in items]
        return out

    # --- contacts -------------------------------------------------------------------

    def check_source(self, body):
        # The spec declares sourceObjectId as format "uuid".
        v = body.get("sourceObjectId")
        if v is not None and not (isinstance(v, str) and UUID_RE.match(v)):
            raise ApiError(41, "Invalid sourceObjectId %r" % (v,))

    def check_email(self, body):
        if "email" in body:
            e = body["email"]
            if not isinstance(e, str) or "@" not in e:
                raise ApiError(2004, "Invalid email %r" % (e,))

    def create_contact(self, body, via="api"):
        self.check_email(body)
        self.check_source(body)
        cid = self.next_contact
        self.next_contact += 1
        c = {k: v for k, v in body.items() if k != "id"}
        c.update(id=cid, isDeleted=False, via=via)
        if isinstance(body.get("template"), dict):
            c["template"] = {"id": body["template"].get("id")}
        self.contacts[cid] = c
        return cid

    def contact_out(self, c, fields=""):
        out = {"id": c["id"], "name": c.get("name", ""), "lastname": c.get("lastname", ""),
               "email": c.get("email", "")}
        if "sourceObjectId" in str(fields).split(","):
            out["sourceObjectId"] = c.get("sourceObjectId", "")
        return out

    def contact_list(self, body):
        offset, size = paging(body)
        found = [c for c in self.contacts.values() if not c.get("isDeleted")]
        # Planfix lists people by default and companies when isCompany is true.
        found = [c for c in found if bool(c.get("isCompany")) == bool(body.get("isCompany", False))]
        for f in filters_of(body):
            value = str(f.get("value", "")).lower()
            if f.get("type") == 4026:
                found = [c for c in found
                         if compare(f.get("operator"), str(c.get("email", "")).lower() == value)]
            elif f.get("type") == 4005:
                found = [c for c in found
                         if compare(f.get("operator"), value in str(c.get("email", "")).lower())]
            elif f.get("type") == 4001:
                # Contact part of name: Planfix matches it against the full name.
                found = [c for c in found
                         if compare(f.get("operator"),
                                    value in ("%s %s" % (c.get("name", ""), c.get("lastname", ""))).lower())]
        found.sort(key=lambda c: c["id"])
        return Reply(200, {"result": "success",
                           "contacts": [self.contact_out(c, body.get("fields", ""))
                                        for c in found[offset:offset + size]]})

    def contact_comment_create(self, cid, body):
        c = self.contacts.get(cid)
        if c is None or c.get("isDeleted"):
            raise ApiError(2000, "Contact not found by id %d" % cid)
        d = body.get("description")
        if not isinstance(d, str) or not d.strip():
            raise ApiError(40, "Missing parameter: description")
        self.check_source(body)
        cm = {"id": self.next_comment, "contact": cid, "description": d, "time": time.time(),
              "owner": self.person(body["owner"], "user") if body.get("owner") is not None else ROBOT,
              "sourceObjectId": body.get("sourceObjectId"), "fields": body}
        self.next_comment += 1
        self.contact_comments[cm["id"]] = cm
        return Reply(201, {"result": "success", "id": cm["id"]})

    def contact_comment_list(self, cid, body):
        if cid not in self.contacts:
            raise ApiError(2000, "Contact not found by id %d" % cid)
        offset, size = paging(body)
        found = sorted((c for c in self.contact_comments.values() if c["contact"] == cid), key=lambda c: c["id"])
        out = [fields_filter({"id": c["id"], "dateTime": date_time(c["time"]), "description": c["description"],
                              "owner": self.person_out(c["owner"]), "sourceObjectId": c["sourceObjectId"] or ""},
                             body.get("fields")) for c in found[offset:offset + size]]
        return Reply(200, {"result": "success", "comments": out})

    def contact_update(self, cid, body):
        c = self.contacts.get(cid)
        if c is None or c.get("isDeleted"):
            raise ApiError(2000, "Contact for update not found by id %d" % cid)
        self.check_email(body)
        for k, v in body.items():
            if k not in ("id", "via"):
                c[k] = v
        return Reply(200, {"result": "success"})

    # --- tasks ----------------------------------------------------------------------

    def status_id(self, v):
        sid = ref_id(v)
        if not isinstance(sid, int) or isinstance(sid, bool) or sid not in self.statuses:
            raise ApiError(41, "Status not find by id %s" % (sid,))
        return sid

    def task(self, tid, write=False):
        t = self.tasks.get(tid)
        if t is None or (write and t["isDeleted"]):
            raise ApiError(1000, "Task not found")
        return t

    def task_fields(self, t, body):
        """Apply the known task fields of a create/update body to t."""
        for key in ("name", "description"):
            if key in body:
                if not isinstance(body[key], str):
                    raise ApiError(41, "Invalid %s" % key)
                t[key] = body[key]
        if "status" in body:
            t["status"] = self.status_id(body["status"])
        if "assigner" in body:
            t["assigner"] = self.person(body["assigner"], "user")
        if "counterparty" in body:
            t["counterparty"] = self.person(body["counterparty"], "contact")
        for key in ("participants", "assignees", "auditors"):
            if key in body:
                t[key] = self.people(body[key])
        if "template" in body:
            t["template"] = ref_id(body["template"])
        if "sourceObjectId" in body:
            t["sourceObjectId"] = body["sourceObjectId"]

    def task_create(self, body):
        self.check_source(body)
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise ApiError(40, "Missing parameter: name")
        t = {"id": self.next_task, "name": "", "description": "", "status": NEW_TASK_STATUS,
             "assigner": None, "counterparty": None, "participants": None, "assignees": None,
             "auditors": None, "template": None, "sourceObjectId": None, "isDeleted": False,
             "created": time.time(), "fields": body, "updates": []}
        self.task_fields(t, body)
        self.tasks[t["id"]] = t
        self.next_task += 1
        return Reply(201, {"result": "success", "id": t["id"]})

    def task_update(self, tid, body):
        t = self.tasks.get(tid)
        if t is None or t["isDeleted"]:
            raise ApiError(1000, "Task for update not found by id %d" % tid)
        self.task_fields(t, body)
        t["updates"].append(body)
        return Reply(200, {"result": "success"})

    def status_out(self, sid):
        s = self.statuses.get(sid, {"name": "", "isActive": True})
        return {"id": sid, "name": s["name"], "isActive": s["isActive"]}

    def task_out(self, t, fields):
        out = {"id": t["id"], "name": t["name"], "description": t["description"],
               "status": self.status_out(t["status"]),
               "assigner": self.person_out(t["assigner"]),
               "counterparty": self.person_out(t["counterparty"]),
               "participants": t["participants"], "assignees": t["assignees"],
               "auditors": t["auditors"],
               "template": {"id": t["template"]} if t["template"] is not None else None,
               "sourceObjectId": t["sourceObjectId"] or "", "isDeleted": t["isDeleted"]}
        return fields_filter(out, fields)

    def task_list(self, body):
        offset, size = paging(body)
        found = [t for t in self.tasks.values() if not t["isDeleted"]]
        for f in filters_of(body):
            ftype, op = f.get("type"), f.get("operator")
            if ftype == 1:
                want = self.norm_person(f.get("value"), "user")
                found = [t for t in found if compare(op, t["assigner"] == want)]
            elif ftype == 7:
                want = self.norm_person(f.get("value"), "contact")
                found = [t for t in found if compare(op, t["counterparty"] == want)]
        found.sort(key=lambda t: t["id"])
        return Reply(200, {"result": "success",
                           "tasks": [self.task_out(t, body.get("fields")) for t in found[offset:offset + size]]})

    @staticmethod
    def norm_person(v, default_prefix):
        v = ref_id(v)
        if isinstance(v, int) or (isinstance(v, str) and v.isdigit()):
            return "%s:%s" % (default_prefix, v)
        return v

    # --- comments -------------------------------------------------------------------

    def add_comment(self, tid, description, owner, via, t=None, hidden=False, source=None, name=None):
        cid = self.next_comment
        self.next_comment += 1
        c = {"id": cid, "task": tid, "description": description, "owner": owner,
             "ownerName": name, "time": time.time() if t is None else float(t),
             "sourceObjectId": source, "isHidden": bool(hidden), "type": "Comment", "via": via}
        self.comments[cid] = c
        return cid

    def comment_create(self, tid, body):
        self.task(tid, write=True)
        d = body.get("description")
        if not isinstance(d, str) or not d.strip():
            raise ApiError(40, "Missing parameter: description")
        owner = self.person(body["owner"], "user") if body.get("owner") is not None else ROBOT
        self.check_source(body)
        cid = self.add_comment(tid, d, owner, "api", hidden=body.get("isHidden", False),
                               source=body.get("sourceObjectId"))
        self.comments[cid]["fields"] = body
        return Reply(201, {"result": "success", "id": cid})

    def comment_out(self, c, fields):
        owner = self.person_out(c["owner"])
        if c.get("ownerName") is not None:
            owner["name"] = c["ownerName"]
        out = {"id": c["id"], "dateTime": date_time(c["time"], self.utc_offset_min), "type": c["type"],
               "description": c["description"], "owner": owner, "isHidden": c["isHidden"],
               "isDeleted": False, "sourceObjectId": c["sourceObjectId"] or "",
               "task": {"id": c["task"]}}
        return fields_filter(out, fields)

    def page_comments(self, found, body):
        offset, size = paging(body)
        order = None if self.ignore_order else body.get("resultOrder")
        order = order[0] if isinstance(order, list) and order and isinstance(order[0], dict) else {}
        # By id, or by time (to the minute, as Planfix keeps it) then id.
        if order.get("field") == "dateTime":
            found.sort(key=lambda c: ((int(c["time"]) // 60), c["id"]))
        else:
            found.sort(key=lambda c: c["id"])
        if order.get("direction") == "Desc":
            found.reverse()
        return Reply(200, {"result": "success",
                           "comments": [self.comment_out(c, body.get("fields"))
                                        for c in found[offset:offset + size]]})

    def task_comments(self, tid, body):
        self.task(tid)
        return self.page_comments([c for c in self.comments.values() if c["task"] == tid], body)

    def comment_list(self, body):
        found = [c for c in self.comments.values() if c["task"] in self.tasks]
        for f in filters_of(body):
            ftype, op, value = f.get("type"), f.get("operator"), f.get("value")
            if ftype == 3000:
                lo, hi = self.date_range(value)
                found = [c for c in found if compare(op, lo <= (int(c["time"]) // 60) * 60 <= hi)]
            elif ftype == 3001:
                want = self.norm_person(value, "user")
                found = [c for c in found if compare(op, c["owner"] == want)]
        return self.page_comments(found, body)

    def date_range(self, v):
        """Inclusive [lo, hi] epoch seconds of a Planfix date filter value (minute precision),
        its dates read in the API user's zone."""
        if not isinstance(v, dict):
            raise ApiError(41, "Invalid date filter value")
        kind, off = v.get("dateType"), self.utc_offset_min
        if kind == "otherRange_withTime":
            return parse_pf_date(v.get("dateFrom"), True, off), parse_pf_date(v.get("dateTo"), True, off)
        if kind == "otherRange":
            return (parse_pf_date(v.get("dateFrom"), False, off),
                    parse_pf_date(v.get("dateTo"), False, off) + 86400 - 60)
        if kind == "otherDate":
            d = parse_pf_date(v.get("dateValue"), False, off)
            return d, d + 86400 - 60
        raise ApiError(41, "Unsupported dateType %r" % (kind,))

    # --- users and statuses ---------------------------------------------------------

    def user_list(self, body):
        offset, size = paging(body)
        found = sorted(self.users.values(), key=lambda u: u["id"])
        for f in filters_of(body):
            if f.get("type") == 9003:
                value = str(f.get("value", "")).lower()
                found = [u for u in found if compare(f.get("operator"), u.get("email", "").lower() == value)]
        return Reply(200, {"result": "success", "users": found[offset:offset + size]})

    # --- routing --------------------------------------------------------------------

    def api(self, req):
        if not req.path.startswith(self.base + "/"):
            return fail(404, "Unknown path %s" % req.path, 404)
        parts = [p for p in req.path[len(self.base):].split("/") if p]
        body = req.json_object()
        if body is None:
            return fail(30, "Invalid JSON: %s" % (req.json_error or "body is not an object"))
        m = req.method
        try:
            return self.route(m, parts, body, req)
        except ApiError as e:
            return fail(e.code, e.error, e.status)

    def route(self, m, parts, body, req):
        num = lambda s: int(s) if s.isdigit() else None  # noqa: E731
        n = len(parts)
        if n >= 1 and parts[0] == "contact":
            if m == "POST" and n == 2 and parts[1] == "list":
                return self.contact_list(body)
            if m == "POST" and n == 3 and num(parts[1]) is not None and parts[2] == "comments":
                return self.contact_comment_create(num(parts[1]), body)
            if m == "POST" and n == 4 and num(parts[1]) is not None and parts[2:] == ["comments", "list"]:
                return self.contact_comment_list(num(parts[1]), body)
            if m == "POST" and n == 1:
                return Reply(201, {"result": "success", "id": self.create_contact(body)})
            if n == 2 and num(parts[1]) is not None:
                cid = num(parts[1])
                if m == "POST":
                    return self.contact_update(cid, body)
                if m == "GET":
                    c = self.contacts.get(cid)
                    if c is None:
                        raise ApiError(2000, "Contact not found by id %d" % cid)
                    return Reply(200, {"result": "success", "contact": fields_filter(
                        {k: v for k, v in c.items() if k != "via"}, req.query.get("fields"))})
        if n >= 1 and parts[0] == "task":
            if m == "POST" and n == 1:
                return self.task_create(body)
            if m == "POST" and n == 2 and parts[1] == "list":
                return self.task_list(body)
            tid = num(parts[1]) if n >= 2 else None
            if tid is not None:
                if n == 2 and m == "POST":
                    return self.task_update(tid, body)
                if n == 2 and m == "GET":
                    return Reply(200, {"result": "success",
                                       "task": self.task_out(self.task(tid), req.query.get("fields"))})
                if n == 3 and parts[2] == "comments" and m == "POST":
                    return self.comment_create(tid, body)
                if n == 4 and parts[2:] == ["comments", "list"] and m == "POST":
                    return self.task_comments(tid, body)
        if parts == ["comment", "list"] and m == "POST":
            return self.comment_list(body)
        if parts == ["user", "list"] and m == "POST":
            return self.user_list(body)
        if n == 4 and parts[:2] == ["process", "task"] and parts[3] == "statuses" and m == "GET":
            return Reply(200, {"result": "success",
                               "statuses": [self.status_out(s) for s in sorted(self.statuses)]})
        return fail(5, "Scope denied, method not allowed: %s %s" % (m, req.path), 405 if n else 404)

    # --- control --------------------------------------------------------------------

    def control(self, req):
        path = req.path.rstrip("/")
        if req.method != "POST" or path not in (
                "/_control/employee_comment", "/_control/task_status", "/_control/delete_task",
                "/_control/contact", "/_control/users", "/_control/task"):
            return None
        body = req.body if req.raw else {}
        with self.lock:
            try:
                if path == "/_control/users":
                    for u in body if isinstance(body, list) else [body]:
                        self.users[int(u["id"])] = dict(u, id=int(u["id"]))
                    return Reply(200, {"result": "success"})
                if path == "/_control/contact":
                    return Reply(200, {"result": "success", "id": self.create_contact(body, via="control")})
                if path == "/_control/task":
                    # A task an employee made by hand (no sourceObjectId unless given).
                    reply = self.task_create(body)
                    self.tasks[reply.body["id"]]["via"] = "control"
                    return Reply(200, {"result": "success", "id": reply.body["id"]})
                tid = int(body["task"])
                if path == "/_control/employee_comment":
                    self.task(tid)
                    owner = body.get("owner", "user:5")
                    self.person(owner, "user")
                    cid = self.add_comment(tid, body["description"], owner, "control",
                                           t=body.get("time"), hidden=body.get("hidden", False),
                                           source=body.get("sourceObjectId"), name=body.get("name"))
                    return Reply(200, {"result": "success", "id": cid})
                if path == "/_control/task_status":
                    self.task(tid)["status"] = self.status_id(body["status"])
                    return Reply(200, {"result": "success"})
                if path == "/_control/delete_task":
                    self.task(tid)
                    if body.get("purge"):
                        del self.tasks[tid]
                    else:
                        self.tasks[tid]["isDeleted"] = True
                    return Reply(200, {"result": "success"})
            except ApiError as e:
                return Reply(400, {"result": "fail", "code": e.code, "error": "control: " + e.error})
        return None

    def state(self):
        tasks = []
        for t in sorted(self.tasks.values(), key=lambda t: t["id"]):
            tasks.append(dict(t, statusActive=self.statuses.get(t["status"], {}).get("isActive", True)))
        comments = []
        for c in sorted(self.comments.values(), key=lambda c: c["id"]):
            owner = self.person_out(c["owner"])
            if c.get("ownerName") is not None:
                owner["name"] = c["ownerName"]
            comments.append(dict(c, owner=owner, dateTime=date_time(c["time"], self.utc_offset_min)))
        return {"contacts": sorted(self.contacts.values(), key=lambda c: c["id"]),
                "contact_comments": sorted(self.contact_comments.values(), key=lambda c: c["id"]),
                "tasks": tasks, "comments": comments,
                "users": sorted(self.users.values(), key=lambda u: u["id"]),
                "statuses": [self.status_out(s) for s in sorted(self.statuses)],
                "remaining": self.remaining, "utc_offset_min": self.utc_offset_min}


def main():
    p = common_args("Fake Planfix REST v2 server")
    p.add_argument("--token", required=True)
    p.add_argument("--utc-offset-min", type=int, default=0,
                   help="the API user's zone, minutes east of UTC (Moscow: 180): dates are shown and read there")
    args = p.parse_args()
    try:
        check_offset(args.utc_offset_min)
    except ValueError as e:
        p.error(str(e))
    serve(Planfix(args.token, utc_offset_min=args.utc_offset_min, rps=args.rps,
                  rps_tolerance=args.rps_tolerance), args)


if __name__ == "__main__":
    main()
