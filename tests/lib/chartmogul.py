"""The fake ChartMogul (tests/fakes/fake_chartmogul.py) for the CRM card's tests.

    cm = FakeChartMogul()            # started on a free port; cm.url goes into the config
    cm.customers([{"email": "..", "name": "..", "mrr": 3000, ...}])
    cm.requests(path="/v1/customers/search")
    cm.cleanup()

enrich(cm, **keys) is the config's "enrich" section pointing at it (the key is env:CHARTMOGUL_API_KEY,
API_KEY in the bridge's env: add_env(bridge) puts it there).  seed_colleagues(bridge, emails) makes
persons with those e-mails known to a stopped bridge's store (a company's colleagues).
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import harness
from harness import FAKES_DIR, Headers, http, wait_until

API_KEY = "cm-api-key-0123456789"


class FakeChartMogul:
    def __init__(self, api_key=API_KEY, rps=0, timeout=10):
        self.tmpdir = harness._mkdtemp("br-chartmogul-")
        port_file = os.path.join(self.tmpdir, "chartmogul.port")
        self.log_path = os.path.join(self.tmpdir, "chartmogul.log")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-B", os.path.join(FAKES_DIR, "fake_chartmogul.py"),
                                          "--port", "0", "--port-file", port_file, "--api-key", api_key,
                                          "--rps", str(rps)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=harness._child_env())
        harness._live.add(self.proc)
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.cleanup()
                raise RuntimeError("fake chartmogul did not start")
            time.sleep(0.01)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.url = "http://127.0.0.1:%d" % self.port

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        harness._reap(self.proc, None)
        harness._rmtree(self.tmpdir)

    def control(self, method, name, body=None):
        r = http(method, "%s/_control/%s" % (self.url, name), body)
        if r.status != 200:
            raise AssertionError("%s /_control/%s: %s %s" % (method, name, r.status, r.body))
        return r.json()

    def customers(self, customers):
        return self.control("POST", "customers", customers)["uuids"]

    def requests(self, path=None, prefix=None):
        out = []
        for r in self.control("GET", "requests"):
            if path and r["path"] != path:
                continue
            if prefix and not r["path"].startswith(prefix):
                continue
            r["headers"] = Headers(r["headers"])
            out.append(r)
        return out

    def searches(self):
        """The e-mails searched for, in order."""
        return [r["query"].get("email") for r in self.requests(path="/v1/customers/search")]

    def wait_requests(self, count, path=None, prefix=None, timeout=10):
        return wait_until(lambda: len(self.requests(path, prefix)) >= count, timeout,
                          message=lambda: "fewer than %d requests to chartmogul: %s" % (
                              count, [r["path"] for r in self.requests()]))

    def faults(self, faults):
        return self.control("POST", "faults", faults)

    def clear_faults(self):
        return self.control("DELETE", "faults")

    def settings(self, **values):
        return self.control("POST", "settings", values)

    def reset(self, requests_only=False):
        return self.control("POST", "reset", {"requests_only": True} if requests_only else {})

    def log(self):
        return harness._tail(self.log_path, 10 ** 9)


def enrich(cm, **keys):
    section = {"api_key": "env:CHARTMOGUL_API_KEY", "url": cm.url, "requests_per_second": 50}
    section.update(keys)
    return {"chartmogul": section}


def add_env(bridge, api_key=API_KEY):
    bridge.env["CHARTMOGUL_API_KEY"] = api_key


ACME = {"email": "ceo@acme.test", "name": "Acme Inc", "status": "Active", "mrr": 123450, "arr": 1481400,
        "currency": "USD",
        "subscriptions": [{"uuid": "sub_1", "plan": "Old plan", "status": "cancelled"},
                          {"uuid": "sub_2", "plan": "Pro annual", "status": "active"}],
        "activities": [{"date": "2025-0%d-01T00:00:00Z" % i, "type": t, "activity-mrr-movement": m,
                        "currency": "USD"}
                       for i, (t, m) in enumerate([("new_biz", 50000), ("expansion", 20000), ("expansion", 30000),
                                                   ("contraction", -10000), ("expansion", 23450),
                                                   ("expansion", 10000), ("contraction", -10000)], start=1)]}


def seed_colleagues(bridge, emails):
    """Persons known to the bridge with these e-mails (oldest first), written into its store while
    it is stopped; the bridge is started again."""
    bridge.stop()
    db = sqlite3.connect(os.path.join(bridge.tmpdir, "bridge.db"))
    with db:
        for i, e in enumerate(emails):
            cur = db.execute("INSERT INTO persons(created_at) VALUES(?)", (1000 + i,))
            db.execute("INSERT INTO person_emails(email, person_id, verified, added_at) VALUES(?,?,0,?)",
                       (e, cur.lastrowid, 1000 + i))
    db.close()
    bridge.start()
