#!/usr/bin/env python3
"""Benchmarks of chatra-bridge: where it stands, not whether it passes.

    tests/bench/run [--only intake,tracker,scale,reply] [--sizes 10000,100000,1000000]
                    [--duration 10] [...]           (tests/bench/run --help for all options)

`tests/bench/run` installs wrk and nginx-light when missing (scripts/deps.sh --bench), builds a
release binary in build-bench/ and runs this script, which prints a markdown report and writes
it to tests/bench/results.md.  Every figure is printed next to its goal with met / not met;
nothing fails on a figure (this is not a test and is not in ctest).  Everything runs on
127.0.0.1; every process started here (bridge, fakes, nginx, wrk) is stopped by its PID.

1. Intake.  wrk posts a realistic Chatra chatFragment (about 1 KB: client with name, e-mail,
   phone, notes, integration data, device, pages; one visitor message) with 32 connections
   for --duration seconds, each request with a message id of its own (chatra_fragment.lua),
   cycling over 1 and over 1,000 visitors (conversations).  The same load goes to nginx
   (one process, `return 200`; nginx.conf.in) as the ceiling of an HTTP round trip here.
   Printed: requests/s of both and their ratio, wrk's p50/p99 latency, and the durability
   check: after the run the bridge is stopped and the inbox rows holding the run's message
   ids are counted.  A request is acknowledged when wrk got a 2xx for it; since wrk cannot
   say which ones, the check is count(stored) >= count(acknowledged) (stored may exceed it
   by the requests in flight when wrk stopped).  Also printed: how many of them became
   messages (the engine applied them), the inbox backlog when wrk stopped and how long
   the bridge took to apply it.  The bridge runs with production settings: log level info,
   tracker budget 1 request/s (Planfix's), no per-address limit; its fake tracker and fake
   Chatra answer, so jobs queue behind the 1 request/s budget as they would in production.
   Goal: bridge >= 0.5 x nginx with every acknowledged request stored.
   Then the door's steps alone (bench_door_steps, door_steps.c, with the body wrk sent): the
   library's parse, the door's parse, the record, the inbox commit and the record read back,
   each in microseconds a webhook on one core, beside nginx's round trip.

2. Tracker efficiency.  A scripted day (day.py) at each of --day-loads (200, 2,000 and 6,000
   chats) over 8 hours, against a daily quota of --day-quota (20,000) requests: half of the
   chats in four rush periods, 4-20 visitor messages each (12 on average) in bursts of 1-5 a
   few seconds apart, agents answering in Chatra between bursts, a quarter of the chats also
   answered once in Planfix (reply webhook; Chatra later repeats the reply as an agent
   message, which must not be mirrored back), e-mails known at the start or only given
   later, returning visitors (same browser, new chat, later that day), the same person on
   another device (same e-mail), and 85% leaving (chatTranscript, repeating the chat).
   The scenario clock runs --time-scale (100) times faster than real time, or a load's own
   (--day-loads 200@20: the quiet day at x20, where the bridge's fixed waits weigh less); the bridge's tracker
   budget (1 request/s), the fake Planfix's enforced limit, Chatra's budget,
   tracker.coalesce_ms (2 s), tracker.coalesce_max_s (--coalesce-max-s, 300 s) and the
   budget's day (BR_BUDGET_DAY_S: 24 scenario hours) are scaled by the same factor, so the
   load relative to the budget is the real day's.  Agents' messages typed in Chatra go with
   the visitor's (--mirror, channels[].mirror_agent_messages "with_visitor").  The fake
   Planfix answers 429 to a request sooner than 1/rps after the last accepted one (slack:
   --rps-tolerance of the interval) and counts it as a violation.  The poll is off during
   the replay and its worst case added by arithmetic (one request a minute over the 8 hours):
   it re-reads the last 10 minutes of comments, wall-clock minutes that the sped-up clock
   would fill with far more comments (and list pages) than a real day; part 5 measures it.
   Printed per load: tracker requests, per conversation and by kind, the quota used with
   the poll, violations, the p50/p95 delay from a visitor message's webhook to the first
   Planfix request that carries its text (task description or comment) in scenario time,
   the share visible soon enough, whether every visitor and agent message is in the tracker
   at the end, whether every Planfix reply reached Chatra and none came back as a comment,
   next to the naive baseline of one request per event computed for the same script:
   lookup + contact + task + one comment per visitor message + close when the visitor
   leaves (16 per conversation for 12 messages).  Goals: within the quota, none lost, 0
   violations, 95% visible within coalesce_ms + 2 s at 200 a day and within 10 minutes at
   2,000 and 6,000 a day.  Each load runs --days (2) days in a row on one store, the script
   beginning at 06:00 of the budget's day (BR_BUDGET_DAY_FROM_MS): day 1 is a new bridge's
   (no day before: the projection follows its pace), day 2 has day 1's hours in the store
   (the projection's shape), as a bridge that has been running has.

3. Scale.  The store is pre-filled by loader.py (one transaction, executemany) with 10,000 /
   100,000 / 1,000,000 finished conversations, each as the bridge would have written it:
   "conversations only" (person, e-mail, device, closed task, 3 messages, tracker comments)
   and "with history" (also the 7 finished jobs and the 3 processed inbox rows, which a
   store keeps with retention off, the default); --history picks one or both (default).
   Then the intake run of part 1 (1,000 conversations) is repeated on each.  Printed per size:
   store size and load time, how soon the bridge listens, how long its first GET /healthz
   took (it counts jobs), requests/s, p50/p99, the durability check, and the daemon's peak
   RSS (VmHWM from /proc/PID/status: its high-water mark from start to the end of the load).
   Goal: requests/s within 15% from the smallest to the largest size; RSS < 32 MB at
   1,000,000.

4. Reply latency.  A visitor's chat has a task; an employee comment is added to it in the
   fake Planfix and the reply webhook posted; the latency is from posting the webhook to
   the fake Chatra receiving POST /messages/ with that text (both clocks are this
   machine's).  --reply-samples replies, --reply-spacing apart, at idle and under intake
   load (wrk as in part 1, 1 conversation, during the replies).  The tracker budget is
   --reply-rps.  The rate-limit wait of a reply comes from the requests the fakes recorded
   and the times the bridge queued its jobs (read from the store afterwards): the fetch job
   is ready when queued (or at the webhook, if a fetch was already waiting); the budget is
   free by the bridge's rule (README, "When something goes wrong"): the tracker's next request leaves a
   spacing of 1.03 / rps + 2 ms after the previous one's answer (the fake's answer time), one
   at a time; the wait is the difference, clamped to [0, time until the comments read]; the
   same for the Chatra budget between the reply job and the message (its spacing after
   Chatra's previous request).  "own" = latency - those waits: the bridge's own time, of which the
   part from the webhook to the fetch job is shown too (the inbox path).
   Printed: p50/p99 of latency and of own, the largest wait, replies that never arrived.
   Goal: own p99 < 100 ms (latency p99 within 100 ms plus the rate-limit wait).

5. An idle day.  The bridge with no chats, once on an empty store and once on a store of
   --idle-conversations earlier conversations (loader.py; the newest a day old) of
   which 15% of the tasks are still open, with tracker.poll_interval_s 1 (60 times the
   default's pace): 5 s for the start, then --idle-seconds.  Printed: the tracker requests
   the fake Planfix got in each, and what they stand for over a day at the default 60 s.
   Goal: at most 50 a day.

Machine: CPU model, cores, memory, kernel, Debian, load average before and after, date,
git commit of the tree, wrk, nginx and SQLite versions.  wrk runs on the same cores as the
bridge; on a shared machine the load average says how quiet it was.

Python 3 standard library only.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "lib"))
sys.path.insert(0, HERE)

import harness as h  # noqa: E402
import day  # noqa: E402
import loader  # noqa: E402

LUA = os.path.join(HERE, "chatra_fragment.lua")
NGINX_CONF = os.path.join(HERE, "nginx.conf.in")
PARTS = ("intake", "tracker", "scale", "reply", "idle")


def log(text):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), text))
    sys.stderr.flush()


# --- formatting -------------------------------------------------------------------

def ms(us_or_s, unit="us"):
    if us_or_s is None:
        return "-"
    v = us_or_s / 1000.0 if unit == "us" else us_or_s * 1000.0
    return "%.1f ms" % v if v < 100 else "%.0f ms" % v


def num(v, digits=0):
    if v is None:
        return "-"
    return "{:,.{d}f}".format(v, d=digits)


def met(ok):
    return "met" if ok else "**not met**"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))]


# --- the machine ------------------------------------------------------------------

def _cmd(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    commit = _cmd(["git", "-C", SOURCE_DIR, "rev-parse", "--short", "HEAD"]) or "unknown"
    if _cmd(["git", "-C", SOURCE_DIR, "status", "--porcelain", "--untracked-files=no"]):
        commit += " (with uncommitted changes)"
    try:
        debian = open("/etc/debian_version").read().strip()
    except OSError:
        debian = "?"
    wrk = _cmd(["sh", "-c", "wrk --version 2>&1 | head -1"]).split(" Copyright")[0]
    nginx = _cmd(["sh", "-c", "%s -v 2>&1" % nginx_binary()]).replace("nginx version: ", "")
    sqlite = _cmd(["sh", "-c", "dpkg-query -W -f='${Version}' libsqlite3-0 2>/dev/null"])
    return {
        "cpu": cpu,
        "cores": "%d (%d usable here)" % (os.cpu_count() or 0, len(os.sched_getaffinity(0))),
        "memory": "%.1f GiB" % (mem / 2 ** 30),
        "kernel": "%s %s" % (platform.system(), platform.release()),
        "os": "Debian %s" % debian,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "tools": "%s; %s; libsqlite3 %s" % (wrk, nginx, sqlite),
    }


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --- processes --------------------------------------------------------------------

def nginx_binary():
    return shutil.which("nginx") or "/usr/sbin/nginx"


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Nginx:
    """nginx as our own single process on a free port, everything it writes in a tmpdir."""

    def __init__(self):
        self.dir = h._mkdtemp("br-bench-nginx-")     # removed at exit and on SIGTERM too
        self.port = h.free_port()
        conf = open(NGINX_CONF).read().replace("@DIR@", self.dir).replace("@PORT@", str(self.port))
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(
            [nginx_binary(), "-c", self.conf, "-p", self.dir + "/", "-e", os.path.join(self.dir, "error.log"),
             "-g", "daemon off; master_process off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            preexec_fn=h._die_with_parent)
        h._live.add(self.proc)
        if not wait_port(self.port, self.proc):
            err = open(os.path.join(self.dir, "error.log")).read() if os.path.exists(
                os.path.join(self.dir, "error.log")) else ""
            self.stop()
            raise RuntimeError("nginx did not start: %s" % err[-500:])
        self.url = "http://127.0.0.1:%d/webhooks/chatra/shop/%s" % (self.port, h.CHATRA_SHOP_WEBHOOK_SECRET)

    def stop(self):
        h._reap(self.proc, signal.SIGTERM, 10)
        h._rmtree(self.dir)


def wrk_command(url, conversations, tag, duration, args):
    return ["wrk", "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % duration, "--latency",
            "--timeout", "10s", "-s", LUA, url, "--", str(conversations), tag]


def wrk_result(stdout):
    for line in stdout.splitlines():
        if line.startswith("WRK_JSON "):
            r = json.loads(line[len("WRK_JSON "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["ok"] = r["requests"] - r["status_errors"]
            r["sample"] = next((x[len("WRK_SAMPLE "):] for x in stdout.splitlines() if x.startswith("WRK_SAMPLE ")),
                               None)
            return r
    raise RuntimeError("wrk printed no summary:\n%s" % stdout[-2000:])


def run_wrk(url, conversations, tag, duration, args):
    out = subprocess.run(wrk_command(url, conversations, tag, duration, args), capture_output=True, text=True,
                         timeout=duration + 60, preexec_fn=h._die_with_parent)
    return wrk_result(out.stdout)


def bench_config(fakes, **overrides):
    """The harness's config with production settings: log info, Planfix's 1 request/s, poll 60 s,
    visitor messages coalesced for 2 s (the defaults; the harness turns coalescing off)."""
    cfg = h.default_config(fakes, log={"level": "info"},
                           tracker={"requests_per_second": 1, "poll_interval_s": 60, "coalesce_ms": 2000})
    return h.apply_overrides(cfg, overrides)


def store_path(bridge):
    p = bridge.config["store"]["path"]
    return p if os.path.isabs(p) else os.path.join(bridge.tmpdir, p)


def ro(path):
    return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)


def rss_kb(pid):
    """(VmRSS, VmHWM) in kB of a running process."""
    vals = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                vals[line.split(":")[0]] = int(line.split()[1])
    return vals.get("VmRSS"), vals.get("VmHWM")


def launch(bridge, timeout=300):
    """Start the bridge and wait only until it listens (Bridge.start() also wants /healthz
    within 1 s, which a bridge busy with a large store may not give).  Returns the seconds."""
    bridge.write_config()
    bridge.starts += 1
    t0 = time.monotonic()
    with open(bridge.log_path, "ab") as logf:
        logf.write(("=== bench: start #%d at %s\n" % (bridge.starts, time.strftime("%H:%M:%S"))).encode())
        logf.flush()
        bridge.proc = subprocess.Popen([bridge.binary, "--config", bridge.config_path], cwd=bridge.tmpdir,
                                       env=h._child_env(bridge.env), stdin=subprocess.DEVNULL, stdout=logf,
                                       stderr=subprocess.STDOUT, preexec_fn=h._die_with_parent)
    h._live.add(bridge.proc)
    if not wait_port(bridge.port, bridge.proc, timeout):
        raise RuntimeError("bridge did not listen within %d s:\n%s" % (timeout, bridge.log_tail(20)))
    return time.monotonic() - t0


def timed_healthz(bridge, timeout=120):
    """(seconds, status) of one GET /healthz; status "timeout" when it took longer than timeout."""
    t0 = time.monotonic()
    try:
        status = bridge.get("/healthz", timeout=timeout).status
    except OSError:
        status = "timeout" if time.monotonic() - t0 >= timeout - 1 else "error"
    return time.monotonic() - t0, status


def stop_bridge(bridge, grace=30):
    """SIGTERM, then SIGKILL after grace seconds.  Returns a short description."""
    if not bridge.running:
        return "not running (exit %s)" % (bridge.proc.returncode if bridge.proc else None)
    t0 = time.monotonic()
    bridge.proc.send_signal(signal.SIGTERM)
    try:
        rc = bridge.proc.wait(grace)
        how = "SIGTERM: exit %d after %.1f s" % (rc, time.monotonic() - t0)
    except subprocess.TimeoutExpired:
        bridge.proc.kill()
        bridge.proc.wait()
        how = "**did not exit within %d s of SIGTERM: killed**" % grace
    h._live.discard(bridge.proc)
    return how


def log_problems(bridge):
    """Warnings and errors in the bridge's log of its last run, counted by message (numbers blanked)."""
    counts = {}
    # The last run's lines: a bridge restarted for a later day appends to the same log.
    for line in bridge.log().split("=== harness:")[-1].splitlines():
        m = re.match(r"\S+ (warn|error) (.*)", line)
        if m:
            key = "%s: %s" % (m.group(1), re.sub(r"\d+", "N", m.group(2))[:140])
            counts[key] = counts.get(key, 0) + 1
    return counts


def known_visitors(fakes, tag, conversations):
    """Tell the fake Chatra about the wrk visitors, so that their profile fetch succeeds."""
    fakes.control("chatra", "POST", "clients",
                  {"%s-client-%d" % (tag, k): {"id": "%s-client-%d" % (tag, k), "name": "Maria Lopez",
                                               "email": "visitor%d@%s.example.org" % (k, tag)}
                   for k in range(conversations)})


def max_inbox_id(path):
    db = ro(path)
    try:
        return db.execute("SELECT coalesce(max(id), 0) FROM inbox").fetchone()[0]
    finally:
        db.close()


def backlog(path):
    db = ro(path)
    try:
        return (db.execute("SELECT count(*) FROM inbox WHERE processed_at IS NULL").fetchone()[0],
                db.execute("SELECT count(*) FROM jobs WHERE state<2").fetchone()[0])
    finally:
        db.close()


def intake_on_bridge(bridge, fakes, conversations, tag, args, drain=20):
    """One wrk run against a started bridge, then the durability check.  Stops the bridge."""
    path = store_path(bridge)
    known_visitors(fakes, tag, conversations)
    mark = max_inbox_id(path)
    url = bridge.url + "/webhooks/chatra/shop/" + h.CHATRA_SHOP_WEBHOOK_SECRET
    r = run_wrk(url, conversations, tag, args.duration, args)
    pending, jobs = backlog(path)
    r["backlog_inbox"], r["backlog_jobs"] = pending, jobs
    t0 = time.monotonic()
    while pending and time.monotonic() - t0 < drain:
        time.sleep(0.25)
        pending, _ = backlog(path)
    r["applied_after"] = None if pending else time.monotonic() - t0
    r["rss_kb"], r["hwm_kb"] = rss_kb(bridge.pid)
    r["stop"] = stop_bridge(bridge)
    db = ro(path)
    try:
        like = tag + "-%"
        r["stored"], r["stored_distinct"] = db.execute(
            "SELECT count(*), count(DISTINCT json_extract(body, '$.messages[0].id')) FROM inbox "
            "WHERE id>? AND json_extract(body, '$.messages[0].id') LIKE ?", (mark, like)).fetchone()
        r["applied"] = db.execute("SELECT count(*) FROM messages WHERE key LIKE ?", ("id:" + like,)).fetchone()[0]
    finally:
        db.close()
    r["durable"] = r["stored"] >= r["ok"] and r["stored"] == r["stored_distinct"]
    r["problems"] = log_problems(bridge)
    return r


# --- part 1: intake ---------------------------------------------------------------

def part_intake(args, report):
    rows, notes = [], []
    body_bytes = 0
    sample, nginx_us = None, float("inf")
    fakes = h.Fakes()
    try:
        for conversations in (1, 1000):
            log("intake: nginx, %d conversation(s), %d s" % (conversations, args.duration))
            ng = Nginx()
            try:
                n = run_wrk(ng.url, conversations, "n%d" % conversations, args.duration, args)
            finally:
                ng.stop()
            log("intake: bridge, %d conversation(s), %d s" % (conversations, args.duration))
            bridge = h.Bridge(fakes, bench_config(fakes), binary=args.binary)
            try:
                bridge.start(timeout=60)
                b = intake_on_bridge(bridge, fakes, conversations, "i%d" % conversations, args)
            finally:
                bridge.cleanup()
            ratio = b["rps"] / n["rps"] if n["rps"] else 0
            body_bytes = b["body_bytes"]
            errors = b["requests"] - b["ok"] + b["connect_errors"] + b["read_errors"] + b["write_errors"] + \
                b["timeouts"]
            rows.append([num(conversations), num(n["rps"]), ms(n["p50_us"]) + " / " + ms(n["p99_us"]),
                         num(b["rps"]), ms(b["p50_us"]) + " / " + ms(b["p99_us"]), "%.3f" % ratio,
                         "%s / %s / %s" % (num(b["ok"]), num(b["stored"]), num(b["applied"])),
                         num(errors), met(ratio >= 0.5 and b["durable"] and errors == 0)])
            notes.append("%d conversation(s): inbox backlog when wrk stopped %s, open jobs %s; %s; "
                         "RSS %s kB (peak %s kB); stop: %s"
                         % (conversations, num(b["backlog_inbox"]), num(b["backlog_jobs"]),
                            "applied %.1f s later" % b["applied_after"] if b["applied_after"] is not None
                            else "not all applied 20 s later", num(b["rss_kb"]), num(b["hwm_kb"]), b["stop"]))
            notes += ["%d conversation(s), bridge log: %d x %s" % (conversations, c, k)
                      for k, c in sorted(b["problems"].items(), key=lambda kv: -kv[1])[:5]]
            if not b["durable"]:
                notes.append("**%d conversation(s): %d acknowledged but %d stored (%d distinct)**"
                             % (conversations, b["ok"], b["stored"], b["stored_distinct"]))
            sample = b.get("sample") or sample
            nginx_us = min(nginx_us, 1e6 / n["rps"]) if n["rps"] else nginx_us
    finally:
        fakes.cleanup()
    report.append("## 1. Intake\n\nwrk, %d threads, %d connections, %d s, a %d-byte chatFragment, each request a new "
                  "message id.  Goal: bridge >= 0.5 x nginx, every acknowledged request in the store.\n"
                  % (args.threads, args.connections, args.duration, body_bytes))
    report.append(table(["conversations", "nginx req/s", "nginx p50 / p99", "bridge req/s", "bridge p50 / p99",
                         "bridge / nginx", "acknowledged / stored / applied", "errors", "goal"], rows))
    report.append("\n" + "\n".join("- " + n for n in notes) + "\n")
    report.append(door_steps(args, sample, nginx_us))


def door_steps(args, sample, nginx_us):
    """The door's steps timed alone on one core (door_steps.c), beside nginx's whole round trip."""
    binary = os.path.join(os.path.dirname(args.binary), "bench_door_steps")
    if sample is None or not os.path.exists(binary):
        return "\nThe door's steps alone: not measured (%s).\n" % (
            "no body from wrk" if sample is None else "no %s" % binary)
    out = subprocess.run([binary], input=sample + "\n", capture_output=True, text=True, timeout=300)
    line = next((x for x in out.stdout.splitlines() if x.startswith("DOOR_JSON ")), None)
    if line is None:
        return "\nThe door's steps alone: not measured (%s).\n" % (out.stderr.strip()[-300:] or "no answer")
    d = json.loads(line[len("DOOR_JSON "):])
    steps = [("jansson's json_loadb of the body (the library's parse alone)", d["json_us"]),
             ("the door's parse (br_chatra_event_parse: that parse, checked and mapped)", d["parse_us"]),
             ("the record (br_chatra_event_dump)", d["dump_us"]),
             ("the record committed to the inbox, 16 to a commit", d["store_us"]),
             ("reading the record back when it is applied (br_chatra_event_load)", d["load_us"])]
    rows = [[name, "%.1f us" % us, num(1e6 / us) if us > 0 else "-"] for name, us in steps]
    rows.append(["nginx's whole round trip in the same run (1 / its best req/s)", "%.1f us" % nginx_us,
                 num(1e6 / nginx_us)])
    half = 2 * nginx_us
    return ("\n### The door's steps alone\n\nEach step of taking this %d-byte webhook, timed alone over %s rounds on one "
            "core (`bench_door_steps`, tests/bench/door_steps.c).  Half of nginx's rate leaves the bridge %.1f us a "
            "request for everything: the HTTP round trip, the parse, the record, the commit and its share of "
            "applying.\n\n%s" % (d["bytes"], num(d["rounds"]), half,
                                  table(["step", "per webhook", "at most a second on one core"], rows)))


# --- part 2: tracker efficiency ---------------------------------------------------

def day_config(fakes, scale, rps, args):
    """The bridge of the scripted day: production settings with every budget and wait on the
    scenario clock (x scale), the daily quota as a count, and agents' messages typed in Chatra
    in the visitor's comment (mirror_agent_messages "with_visitor")."""
    return bench_config(fakes, tracker={"requests_per_second": rps, "poll_interval_s": 0,
                                        "coalesce_ms": max(1, int(round(2000 / scale))),
                                        "coalesce_max_s": max(1, int(round(args.coalesce_max_s / scale))),
                                        "daily_quota": args.day_quota},
                        channel={"chatra": {"requests_per_second": 5 * scale},
                                 "mirror_agent_messages": args.mirror})


# The scripted day's first event is at 06:00 of the budget's day (09:00 in Moscow).
DAY_STARTS_AT_H = 6


def run_days(args, conversations, scale):
    """--days scripted days of `conversations` chats each against one bridge and its store, the
    scenario clock running `scale` times faster than real time; each day's figures.  Day 1 is a
    new bridge's (no requests on the days before); each later day comes after the ones before
    it, with their hours in the store (the projection's shape), new chats and visitors, and the
    bridge restarted in between (the budget's day begins anew)."""
    rps = 1.0 * scale
    day_ms = 86400 * 1000.0 / scale
    fakes = h.Fakes(planfix_rps=rps)
    fakes.settings("planfix", rps_tolerance=args.rps_tolerance / rps)
    # The poll is off here and its cost added by arithmetic: it re-reads the last 10 minutes of
    # comments (Planfix filters by the minute), wall-clock minutes that a sped-up clock would
    # fill with far more comments (and pages) than a real day has.  Part 5 measures it idle.
    bridge = h.Bridge(fakes, day_config(fakes, scale, rps, args), binary=args.binary)
    # The budget's day is on the scenario clock too: 24 scenario hours, the script beginning at
    # DAY_STARTS_AT_H of day n (n = 0, 1, ...: BR_BUDGET_DAY_FROM_MS puts day 0 where it must).
    bridge.env["BR_BUDGET_DAY_S"] = "%d" % max(1, int(round(86400 / scale)))
    days = []
    try:
        for n in range(args.days):
            chats, events = day.make_day(conversations, args.day_hours, seed=20240601 + n, first=n * conversations)
            log("tracker: day %d: %d chats, %d events over %.1f scenario hours, x%g -> about %.0f s"
                % (n + 1, len(chats), len(events), args.day_hours, scale, events[-1][0] / scale))
            # Planfix's count of what is left begins anew with the day.
            fakes.settings("planfix", remaining=args.day_quota)
            begins = time.time() * 1000 + 1500          # the replay's first event, about
            bridge.env["BR_BUDGET_DAY_FROM_MS"] = "%d" % (begins - (n + DAY_STARTS_AT_H / 24.0) * day_ms)
            bridge.start(timeout=60)
            d = day.replay(bridge, fakes, chats, events, scale, rps, log=log, drain_timeout=args.drain_timeout)
            d["problems"] = log_problems(bridge)
            d["stop"] = stop_bridge(bridge)
            days.append(d)
    finally:
        bridge.cleanup()
        fakes.cleanup()
    return days


def part_tracker(args, report):
    polls = int(round(args.day_hours * 60))      # at most one a minute at the default poll_interval_s 60
    summary, details = [], []
    for load, scale in args.day_loads:
        scn = lambda s: "-" if s is None else ("%.1f s" % (s * scale))  # noqa: E731
        for k, d in enumerate(run_days(args, load, scale)):
            which = "%d (%s)" % (k + 1, "a new bridge" if k == 0 else "after %s" % ("day 1" if k == 1 else "days 1-%d" % k))
            n = d["chats"]
            used = d["requests"] + polls
            all_in = d["visitor_in"] == d["visitor_msgs"] and d["agent_in"] == d["agent_msgs"]
            replies_ok = d["replies_relayed"] == d["planfix_replies"] and d["echoes_mirrored"] == 0
            # What "visible soon enough" means at this load: the quiet day's coalesce_ms + 2 s, the
            # busy day's 10 minutes (the wait may widen up to coalesce_max_s to fit the quota).
            limit = 4.0 if load <= 200 else 600.0
            fast = d["within"](limit / scale)
            goal_ok = used <= args.day_quota and all_in and d["violations"] == 0 and replies_ok and fast >= 0.95
            summary.append([
                num(n), which, "x%g" % scale, "%d / %d" % (d["visitor_msgs"], d["agent_msgs"]), num(d["requests"]), "%.2f" % (d["requests"] / n),
                "%.2f" % (d["naive"] / n), "%s of %s" % (num(used), num(args.day_quota)),
                "%d (%d)" % (d["violations"], d["status_429"]),
                "%s / %s" % (scn(d["delay_p50"]), scn(d["delay_p95"])),
                "%.1f%% within %s" % (fast * 100, "%g s" % limit),
                "%d/%d, %d/%d" % (d["visitor_in"], d["visitor_msgs"], d["agent_in"], d["agent_msgs"]),
                "%d of %d / %d" % (d["replies_relayed"], d["planfix_replies"], d["echoes_mirrored"]),
                met(goal_ok)])
            kinds = sorted(d["by_kind"].items(), key=lambda kv: -kv[1])
            notes = ["%d new visitors, %d returning, %d on another device; %d late e-mails; %d leave; %d replies in "
                     "Planfix; %d webhooks" % (d["kinds"]["new"], d["kinds"]["returning"], d["kinds"]["other-device"],
                                               d["late_emails"], d["leaves"], d["planfix_replies"], d["webhooks"]),
                     "replay: events took %.0f s wall (largest lag behind the script %.2f s), queue %s %.0f s after the "
                     "last event; bridge stop: %s" % (d["wall_events"], d["lag"],
                                                       "drained" if d["drained"] else "**not drained**", d["wall_drain"],
                                                       d["stop"]),
                     "webhook -> visible in wall time: p50 %s, p95 %s, max %s" % (
                         ms(d["delay_p50"], "s"), ms(d["delay_p95"], "s"), ms(d["delay_max"], "s")),
                     "Planfix reply -> Chatra message (scenario time): p50 %s, p95 %s" % (scn(d["reply_p50"]),
                                                                                         scn(d["reply_p95"]))]
            late = sorted(d["late_by"](limit / scale).items(), key=lambda kv: -kv[1])
            if late:
                notes.append("visible later than %g s, by the request that carried them: %s"
                             % (limit, ", ".join("%s %d" % kv for kv in late)))
            if d["mirrored"]:
                notes.append("**Planfix replies that came back as comments**: %s" % ", ".join(d["mirrored"][:10]))
            if d["skipped_replies"]:
                notes.append("%d Planfix replies skipped: their task did not exist yet" % d["skipped_replies"])
            if d["failures"]:
                notes.append("**%d webhooks not answered 200**, e.g. %s" % (len(d["failures"]), d["failures"][:3]))
            notes += ["bridge log: %d x %s" % (c, k) for k, c in sorted(d["problems"].items(), key=lambda kv: -kv[1])[:6]]
            details.append("### %s chats a day, day %s\n\n" % (num(n), which) +
                           table(["tracker request", "count", "per conversation"],
                                 [[k, num(c), "%.2f" % (c / n)] for k, c in kinds]) +
                           "\n" + "\n".join("- " + x for x in notes) + "\n")

    report.append(
        "## 2. Tracker efficiency\n\nA scripted day (day.py) at %s chats, each over %g hours of scenario time, "
        "against a daily quota of %s requests.  The scenario clock runs faster than real time (\"clock\"): the "
        "tracker budget (1 request/s) and the fake Planfix's enforced limit (tolerance %g%% of the interval), "
        "Chatra's budget, coalesce_ms (2 s), coalesce_max_s (%d s) and the budget's day (BR_BUDGET_DAY_S) are "
        "all on the scenario clock; the bridge's own wall-clock steps (a new task waits for Chatra's visitor "
        "data in 100 ms steps, ended early when the data comes) and the round trips to the fakes are not, so a quiet "
        "day runs at a slower clock.  Agents' messages typed in Chatra go "
        "`mirror_agent_messages: \"%s\"`.  The poll is not replayed: its worst case, one request a minute over "
        "the %g hours (%d), is added to \"quota used\" (part 5 measures it idle).  Goals: within the quota, none "
        "lost, 0 violations; at 200 a day 95%% visible within coalesce_ms + 2 s, at 6,000 a day within 10 "
        "minutes (scenario time; 2,000 a day is held to the same 10 minutes).  Each load runs %d day(s) in a row "
        "on one store (\"day\"), the script beginning at %02d:00 of the budget's day: day 1 is a new bridge's, "
        "which knows no day before and projects the day from its pace; a later day has the hours of the days "
        "before in the store (the projection's shape: README, Batching), as a bridge that has been running has, "
        "and new chats and visitors of the same load.\n"
        % (", ".join(num(x) for x, _ in args.day_loads), args.day_hours, num(args.day_quota),
           args.rps_tolerance * 100, args.coalesce_max_s, args.mirror, args.day_hours, polls, args.days,
           DAY_STARTS_AT_H))
    report.append(table(["chats", "day", "clock", "visitor / agent messages", "tracker requests", "per conversation",
                         "naive per conversation", "quota used (with the poll)", "violations (429)",
                         "visible p50 / p95 (scenario)", "visible soon enough", "messages in (visitor, agent)",
                         "replies relayed / mirrored back", "goal"], summary))
    report.append("\n" + "\n".join(details))


# --- part 3: scale ----------------------------------------------------------------

def part_scale(args, report):
    rows, notes = [], []
    fakes = h.Fakes()
    try:
        for history in args.history:
            results = []
            for size in args.sizes:
                what = "with history" if history else "conversations only"
                bridge = h.Bridge(fakes, bench_config(fakes), binary=args.binary)
                try:
                    bridge.start(timeout=60)
                    stop_bridge(bridge)
                    path = store_path(bridge)
                    log("scale: loading %s conversations (%s)" % (num(size), what))
                    secs = loader.load(path, size, history=history)
                    mb = os.path.getsize(path) / 1e6
                    log("scale: loaded in %.0f s (%.0f MB); intake run" % (secs, mb))
                    started = launch(bridge)
                    healthz, hz_status = timed_healthz(bridge)
                    r = intake_on_bridge(bridge, fakes, 1000, "s%d%s" % (size, "h" if history else ""), args)
                except Exception as e:  # noqa: BLE001 -- one size failing must not lose the others
                    rows.append([num(size), what, "", "", "", "", "", "", "", "", "", "**failed**"])
                    notes.append("%s %s: **failed**: %s" % (num(size), what, str(e).splitlines()[0][:300]))
                    continue
                finally:
                    bridge.cleanup()
                results.append(r)
                base = results[0]["rps"]
                change = r["rps"] / base - 1 if base else 0
                errors = r["requests"] - r["ok"] + r["timeouts"] + r["connect_errors"] + r["read_errors"]
                goals = [abs(change) <= 0.15, r["durable"]] + ([r["hwm_kb"] < 32 * 1024] if size >= 1_000_000 else [])
                rows.append([num(size), what, "%.0f MB / %.0f s" % (mb, secs), "%.1f s" % started,
                             "%s (%s)" % (ms(healthz, "s"), hz_status), num(r["rps"]), "%+.0f%%" % (change * 100),
                             ms(r["p50_us"]) + " / " + ms(r["p99_us"]),
                             "%s / %s" % (num(r["ok"]), num(r["stored"])), num(errors),
                             "%.1f MB" % (r["hwm_kb"] / 1024.0), met(all(goals))])
                notes.append("%s %s: stop: %s; inbox backlog when wrk stopped %s, open jobs %s"
                             % (num(size), what, r["stop"], num(r["backlog_inbox"]), num(r["backlog_jobs"])))
                notes += ["%s %s, bridge log: %d x %s" % (num(size), what, c, k)
                          for k, c in sorted(r["problems"].items(), key=lambda kv: -kv[1])[:5]]
    finally:
        fakes.cleanup()
    report.append("## 3. Scale\n\nThe store pre-filled with finished conversations, then the intake run of part 1 "
                  "with 1,000 conversations.  \"conversations only\": person, device, e-mail, closed task, 3 "
                  "messages, tracker comments; \"with history\": also the 7 finished jobs and 3 processed inbox "
                  "rows each, as a store keeps them with retention off (the default).  Goal: requests/s within "
                  "15% of the smallest size; peak RSS < 32 MB at 1,000,000; every acknowledged request stored.\n")
    report.append(table(["stored conversations", "store", "size / load time", "listening after", "first GET /healthz",
                         "req/s", "vs smallest", "p50 / p99", "acknowledged / stored", "errors", "peak RSS", "goal"],
                        rows))
    report.append("\n" + "\n".join("- " + n for n in notes) + "\n")


# --- part 4: reply latency --------------------------------------------------------

def send_replies(bridge, fakes, task, n, spacing, tag, stop_at=None):
    """Employee comment + reply webhook, n times; returns [(token, webhook time)]."""
    sent = []
    for k in range(n):
        if stop_at is not None and time.time() >= stop_at:
            break
        token = "#%s%03d" % (tag, k)
        fakes.employee_comment(task, owner="user:5", name="Anna", text="<p>Your parcel left today %s</p>" % token)
        t0 = time.time()
        bridge.post_planfix(task, timeout=60)
        sent.append((token, t0))
        time.sleep(max(0.0, t0 + spacing - time.time()))
    return sent


def reply_jobs(path):
    """(kind, created_at in s, payload) of the bridge's fetch and reply jobs, oldest first."""
    db = ro(path)
    try:
        return [(k, c / 1000.0, p) for k, c, p in db.execute(
            "SELECT kind, created_at, payload FROM jobs WHERE kind IN ('fetch', 'reply') ORDER BY id")]
    finally:
        db.close()


def upstream_gap(rps):
    """The bridge's gap between two requests of one upstream, in seconds (upstream.c spacing_of)."""
    return 1.0 / rps * 1.03 + 0.002


def reply_stats(sent, fakes, task, rps, chatra_rps, jobs):
    """Latency of each reply, split with the fakes' records and the bridge's job times:

    webhook (t0) -> fetch job queued -> comments read arrives at Planfix -> reply job queued
    -> POST /messages/ arrives at Chatra.  The rate-limit wait before the read is how long
    after the job was ready (queued, or t0 if a fetch was already waiting) the budget freed up,
    by the bridge's rule (upstream.c): one tracker request at a time, the next one a spacing
    (1.03 / rps + 2 ms) after the previous one's answer (Planfix counts arrivals), clamped to
    [0, read - ready]; before the message, Chatra's previous request + its spacing.  own =
    latency - both waits."""
    tracker = sorted((r["time"], r.get("answered", r["time"])) for r in fakes.planfix_requests())
    reads = sorted(r["time"] for r in fakes.planfix_requests() if r["path"] == "/rest/task/%d/comments/list" % task)
    chatra = sorted((r["time"], r["body"]) for r in fakes.chatra_requests())
    fetches = [t for k, t, _ in jobs if k == "fetch"]
    total, own, waits, queued, missing = [], [], [], [], 0
    for token, t0 in sent:
        got = next((t for t, b in chatra if isinstance(b, dict) and token in (b.get("text") or "")), None)
        read = next((t for t in reads if t >= t0), None)
        if got is None or read is None or read > got:
            missing += got is None
            continue
        made = max([t for t in fetches if t <= read] or [t0])
        ready = max(t0, made)
        queued.append(ready - t0)
        prev = max([a for t, a in tracker if t < read] or [0.0])
        wait = min(max(0.0, prev + upstream_gap(rps) - ready), read - ready)
        reply_made = next((t for k, t, p in jobs if k == "reply" and token in p), read)
        prev = max([t for t, _ in chatra if t < got] or [0.0])
        wait += min(max(0.0, prev + upstream_gap(chatra_rps) - reply_made), max(0.0, got - reply_made))
        total.append(got - t0)
        own.append(got - t0 - wait)
        waits.append(wait)
    return {"n": len(sent), "missing": missing, "p50": pct(total, 50), "p99": pct(total, 99),
            "own50": pct(own, 50), "own99": pct(own, 99), "wait_max": max(waits) if waits else None,
            "queued50": pct(queued, 50), "queued99": pct(queued, 99), "max": max(total) if total else None}


def part_reply(args, report):
    chatra_rps = 5.0
    fakes = h.Fakes()
    bridge = h.Bridge(fakes, bench_config(fakes, tracker={"requests_per_second": args.reply_rps}),
                      binary=args.binary)
    wrk = None
    try:
        bridge.start(timeout=60)
        path = store_path(bridge)
        known_visitors(fakes, "r1", 1)
        fakes.set_chatra_client("reply-visitor", {"id": "reply-visitor", "name": "Olga"})
        bridge.post_chatra(h.chat_event("chatStarted", "reply-visitor", [h.msg("reply-m1", "Where is my parcel?")],
                                        name="Olga", email="olga@example.org"))
        task = int(h.wait_until(lambda: day.task_of(path, "reply-visitor"), timeout=60, message="no task"))
        h.wait_until(lambda: backlog(path) == (0, 0), timeout=60, message="queue not empty")
        spacing, n = args.reply_spacing, args.reply_samples
        log("reply: %d replies at idle" % n)
        idle = send_replies(bridge, fakes, task, n, spacing, "idle")
        load_secs = int(math.ceil(n * spacing + 4))
        log("reply: %d replies under intake load (wrk %d s)" % (n, load_secs))
        url = bridge.url + "/webhooks/chatra/shop/" + h.CHATRA_SHOP_WEBHOOK_SECRET
        wrk = subprocess.Popen(wrk_command(url, 1, "r1", load_secs, args), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, preexec_fn=h._die_with_parent)
        h._live.add(wrk)
        time.sleep(2)
        loaded = send_replies(bridge, fakes, task, n, spacing, "load", stop_at=time.time() + load_secs - 2)
        out, _ = wrk.communicate(timeout=load_secs + 60)
        h._live.discard(wrk)
        w = wrk_result(out)
        tokens = [t for t, _ in idle + loaded]
        deadline = time.time() + args.reply_wait
        while time.time() < deadline:
            texts = "\n".join(str(r["body"]) for r in fakes.chatra_requests())
            if all(t in texts for t in tokens):
                break
            time.sleep(1)
        problems = log_problems(bridge)
        stop = stop_bridge(bridge)
        jobs = reply_jobs(path)
        s_idle = reply_stats(idle, fakes, task, args.reply_rps, chatra_rps, jobs)
        s_load = reply_stats(loaded, fakes, task, args.reply_rps, chatra_rps, jobs)
    finally:
        if wrk is not None and wrk.poll() is None:
            h._reap(wrk)
        bridge.cleanup()
        fakes.cleanup()
    rows = []
    for name, s in (("idle", s_idle), ("under intake load (%s req/s)" % num(w["rps"]), s_load)):
        rows.append([name, "%d" % s["n"], ms(s["p50"], "s") + " / " + ms(s["p99"], "s"),
                     ms(s["wait_max"], "s"), ms(s["own50"], "s") + " / " + ms(s["own99"], "s"),
                     ms(s["queued50"], "s") + " / " + ms(s["queued99"], "s"), ms(s["max"], "s"), "%d" % s["missing"],
                     met(s["own99"] is not None and s["own99"] < 0.1 and s["missing"] == 0)])
    report.append("## 4. Reply latency\n\nPlanfix reply webhook -> the fake Chatra receives POST /messages/.  "
                  "Tracker budget %g requests/s, Chatra's %g; a reply every %.2f s; the load is wrk as in part 1 "
                  "(1 conversation).  \"own\" = latency minus the rate-limit waits (Planfix's before the comments read: "
                  "a spacing of 1.03 / rps + 2 ms after the previous request's answer, one request at a time; "
                  "Chatra's before the message), measured from when the bridge queued each job.  Goal: own p99 < 100 ms "
                  "(p99 within 100 ms plus the rate-limit wait), every reply delivered (waited for up to %d s).\n"
                  % (args.reply_rps, chatra_rps, spacing, args.reply_wait))
    report.append(table(["condition", "replies", "latency p50 / p99", "largest rate-limit wait", "own p50 / p99",
                         "of own: webhook -> read queued, p50 / p99", "latency max", "not delivered", "goal"], rows))
    notes = ["bridge stop: %s" % stop]
    notes += ["bridge log: %d x %s" % (c, k) for k, c in sorted(problems.items(), key=lambda kv: -kv[1])[:5]]
    report.append("\n" + "\n".join("- " + x for x in notes) + "\n")


# --- part 5: an idle day -------------------------------------------------------

def part_idle(args, report):
    rows = []
    cases = [("a new install (empty store)", 0, 0.0),
             ("the day after: %s earlier conversations, %d%% of their tasks still open, the newest a day "
              "old" % (num(args.idle_conversations), 15), args.idle_conversations, 0.15)]
    for label, prefill, open_share in cases:
        fakes = h.Fakes()
        bridge = h.Bridge(fakes, bench_config(fakes, tracker={"poll_interval_s": 1}), binary=args.binary)
        try:
            if prefill:
                bridge.start(timeout=60)
                stop_bridge(bridge)
                path = store_path(bridge)
                loader.load(path, prefill, history=False, age_ms=loader.DAY_MS)
                db = sqlite3.connect(path, timeout=30)
                with db:
                    # Visitors who never left: their tasks stay open (state 1).
                    db.execute("UPDATE tasks SET state=1 WHERE conv_id %% %d = 0" % int(round(1 / open_share)))
                opened = db.execute("SELECT count(*) FROM tasks WHERE state=1").fetchone()[0]
                db.close()
            else:
                opened = 0
            launch(bridge)
            h.wait_until(lambda: bridge.get("/healthz", timeout=10).status == 200, timeout=60)
            # What a start costs (with open tasks: one poll for the webhooks missed while it was down).
            time.sleep(5)
            at_start = len(fakes.planfix_requests())
            log("idle: %s, %d s" % (label, args.idle_seconds))
            time.sleep(args.idle_seconds)
            sent = len(fakes.planfix_requests()) - at_start
            stop = stop_bridge(bridge)
        finally:
            bridge.cleanup()
            fakes.cleanup()
        # At poll_interval_s 1 a poll that ran would ask once a second: 60 x the default's pace.
        per_day = at_start + sent / float(args.idle_seconds) * 86400 / 60
        rows.append([label, num(opened), num(at_start), "%d s" % args.idle_seconds, num(sent), "%.0f" % per_day,
                     stop, met(per_day <= 50)])
    report.append("## 5. An idle day\n\nThe bridge on a day with no chats, with `tracker.poll_interval_s` 1 (60 "
                  "times the default's pace, so that a poll that ran would show at once): the tracker requests "
                  "the fake Planfix received in the first 5 s (the start) and over the next --idle-seconds, and the "
                  "day at the default 60 s that they stand for (start + requests / seconds x 86,400 / 60).  Goal: "
                  "an idle day costs at most 50 tracker requests.\n")
    report.append(table(["store", "open tasks", "requests at the start", "then watched", "tracker requests",
                         "a day at poll_interval_s 60", "bridge stop", "goal"], rows))


# --- main -------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(description="chatra-bridge benchmarks (see the docstring of this file)")
    p.add_argument("--only", default=",".join(PARTS), help="comma-separated parts: %s" % ",".join(PARTS))
    p.add_argument("--binary", default=os.path.join(SOURCE_DIR, "build-bench", "chatra-bridge"))
    p.add_argument("--duration", type=int, default=10, help="seconds of each wrk run (default 10)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--sizes", default="10000,100000,1000000", help="stored conversations for the scale part")
    p.add_argument("--history", choices=("both", "with", "without"), default="both",
                   help="scale: stores with the finished jobs and inbox rows, without, or both (default)")
    p.add_argument("--day-loads", default="200@20,2000,6000",
                   help="chats in each scripted day, each with @clock speed-up or --time-scale's "
                        "(default 200@20,2000,6000)")
    p.add_argument("--day-quota", type=int, default=20000, help="tracker.daily_quota of the scripted days")
    p.add_argument("--coalesce-max-s", type=int, default=300, help="tracker.coalesce_max_s (scenario seconds)")
    p.add_argument("--mirror", default="with_visitor", choices=("comment", "with_visitor", "off"),
                   help="channels[].mirror_agent_messages of the scripted days (default with_visitor)")
    p.add_argument("--drain-timeout", type=int, default=600, help="seconds to wait for the queue after a day")
    p.add_argument("--day-hours", type=float, default=8.0)
    p.add_argument("--days", type=int, default=2,
                   help="scripted days in a row at each load, on one store (default 2: a new bridge's first "
                        "day, then a day with the first one's hours in the store)")
    p.add_argument("--time-scale", type=float, default=100.0,
                   help="scenario clock speed-up for the days; budgets scale with it (default 100)")
    p.add_argument("--rps-tolerance", type=float, default=0.1,
                   help="the fake Planfix's slack as a fraction of its interval (default 0.1)")
    p.add_argument("--reply-samples", type=int, default=100)
    p.add_argument("--reply-spacing", type=float, default=0.3)
    p.add_argument("--reply-rps", type=float, default=10.0, help="tracker budget in the reply part (default 10)")
    p.add_argument("--reply-wait", type=int, default=60, help="seconds to wait for replies after the load")
    p.add_argument("--idle-seconds", type=int, default=60, help="how long the idle part watches (default 60)")
    p.add_argument("--idle-conversations", type=int, default=10000,
                   help="earlier conversations in the idle part's second store (default 10000)")
    p.add_argument("--output", default=os.path.join(HERE, "results.md"))
    args = p.parse_args()
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    bad = [x for x in args.only if x not in PARTS]
    if bad:
        p.error("unknown part(s) %s; choose from %s" % (", ".join(bad), ", ".join(PARTS)))
    args.sizes = [int(x.replace("_", "")) for x in args.sizes.split(",") if x.strip()]
    args.day_loads = [(int(x.split("@")[0].replace("_", "")),
                       float(x.split("@")[1]) if "@" in x else args.time_scale)
                      for x in args.day_loads.split(",") if x.strip()]
    args.history = {"both": [False, True], "with": [True], "without": [False]}[args.history]
    return args


def main():
    args = parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit("no bridge binary at %s (tests/bench/run builds it)" % args.binary)
    for tool in ("wrk", nginx_binary()):
        if not shutil.which(tool) and not os.access(tool, os.X_OK):
            sys.exit("%s is missing (scripts/deps.sh --bench installs it)" % tool)
    m = machine()
    m["load"] = loadavg()
    started = time.monotonic()
    report, timings = [], []
    funcs = {"intake": part_intake, "tracker": part_tracker, "scale": part_scale, "reply": part_reply,
             "idle": part_idle}
    for part in PARTS:
        if part not in args.only:
            continue
        t0 = time.monotonic()
        log("== %s" % part)
        try:
            funcs[part](args, report)
        except Exception:  # noqa: BLE001 -- report it and go on with the other parts
            report.append("## %s\n\n**failed:**\n\n```\n%s```\n" % (part, traceback.format_exc()))
        timings.append("%s %.0f s" % (part, time.monotonic() - t0))
    total = time.monotonic() - started
    head = ["# chatra-bridge benchmarks", "",
            "Generated by `tests/bench/run%s` (%s).  Goals are targets, not tests: nothing fails on them." % (
                "" if sys.argv[1:] == [] else " " + " ".join(sys.argv[1:]), m["date"]), "",
            table(["machine", ""], [
                ["CPU", m["cpu"]], ["cores", m["cores"]], ["memory", m["memory"]], ["kernel", m["kernel"]],
                ["system", m["os"]], ["load average before / after", "%s / %s" % (m["load"], loadavg())],
                ["tools", m["tools"]], ["bridge", "commit %s, Release build (build-bench/)" % m["commit"]],
                ["run time", "%.0f s (%s)" % (total, ", ".join(timings))]]), ""]
    text = "\n".join(head + report).rstrip() + "\n"
    with open(args.output, "w") as f:
        f.write(text)
    print(text)
    log("written to %s" % args.output)


if __name__ == "__main__":
    main()
