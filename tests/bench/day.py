"""Part 2 of tests/bench: a scripted day of chats replayed against the fake Planfix.

make_day() writes the script: every webhook of every chat at its time of day (scenario
seconds).  replay() plays it against a running bridge with the scenario clock running
`scale` times faster than real time (the bridge's tracker budget and poll interval are scaled
by the same factor, so the load relative to the budget is that of the real day), then
measures what the fake Planfix saw.  See bench.py's docstring for what is printed.

Python 3 standard library only.
"""

import math
import random
import re
import sqlite3
import time

import harness as h

AGENT = h.ANNA["chatra_agent_id"]   # Anna types in Chatra (her messages become comments as her)
VISITOR_TEXTS = [
    "Hello! Is the blue kettle in stock?", "How long does delivery to Madrid take?",
    "Can I pay by bank transfer?", "Do you have it in red too?", "What is the warranty?",
    "My order number is 18342, has it shipped?", "Is there a discount for two?", "ok",
    "Thanks!", "And the gift wrap, is it free?", "Can I change the address?", "Great, ordering now.",
    "Which plug does it have?", "Is it dishwasher safe?", "I will wait for the courier then.",
]
AGENT_TEXTS = [
    "Hi! Yes, we have it in stock.", "Delivery takes 2-4 working days.", "Let me check that for you.",
    "Yes, 10% with the code TWO10.", "Done, the address is changed.", "It has a two-year warranty.",
]
# The tokens that end every message text (see make_day).
VISITOR_TOKEN = re.compile(r"#c\d{5}m\d\d")
ANY_TOKEN = re.compile(r"#c\d{5}[ma]\d\d")
REPLY_TOKEN = re.compile(r"#c\d{5}r")
CITIES = [("Madrid", "Spain"), ("Berlin", "Germany"), ("Lyon", "France"), ("Leeds", "United Kingdom")]


class Chat:
    """One Chatra chat of the day: a visitor (device), its messages and how it ends."""

    def __init__(self, no, start):
        self.no = no                  # 0-based, in order of start
        self.start = start            # scenario seconds
        self.client_id = None
        self.chat_id = "day-chat-%05d" % no
        self.name = None
        self.email = None
        self.email_from = 0           # index of the first visitor message whose webhook carries the e-mail
        self.kind = "new"             # new | returning (same device, new chat) | other-device (same e-mail)
        self.visitor_msgs = 0
        self.agent_msgs = 0
        self.planfix_replies = 0
        self.leaves = False
        self.end = start


def _client(chat, rng_city, with_email):
    city, country = rng_city
    c = {"displayedName": "Visitor %05d" % chat.no, "info": {"plan": "trial", "segment": chat.kind},
         "basicInfo": {"city": city, "country": country, "browser": "Firefox 127", "os": "macOS",
                       "pages": [{"url": "https://shop.example.org/kettles", "title": "Kettles"}]}}
    if with_email and chat.email:
        c["name"] = chat.name
        c["email"] = chat.email
    return c


def make_day(conversations=200, hours=8.0, seed=20240601, first=0):
    """The day's chats and their events, sorted by time.

    Event: (t, seq, kind, chat, data) with kind "webhook" (data: body dict, visitor tokens it
    carries for the first time), "planfix_reply" (an employee answers in Planfix; data: token),
    "echo" (Chatra repeats the relayed reply as an agent message in a fragment) or
    "transcript" (the visitor left: the whole chat, echoes included, in a chatTranscript).
    Every message text ends with a token (#c00012m03: chat 12's 4th visitor message; a: agent;
    r: Planfix reply) by which it is found in the fakes' records.  A later day numbers its chats
    from `first`, so that its tokens, visitors and e-mails are new.
    """
    rng = random.Random(seed)
    day = hours * 3600.0
    # Half the chats come in four rush periods of 20 minutes, the rest over the whole day.
    rushes = [day * f for f in (0.15, 0.40, 0.62, 0.85)]
    starts = sorted(rng.uniform(0, day * 0.97) if rng.random() < 0.5
                    else rng.choice(rushes) + rng.uniform(0, 1200) for _ in range(conversations))
    chats = [Chat(first + i, t) for i, t in enumerate(starts)]
    events = []
    seq = [0]

    def add(t, kind, chat, data):
        seq[0] += 1
        events.append((t, seq[0], kind, chat, data))

    for chat in chats:
        r = rng.random()
        # The earlier chats a returning visitor or another device can be (listed only when needed).
        earlier_done = [c for c in chats[:chat.no - first] if c.end + 120 < chat.start and c.kind != "other-device"] \
            if r < 0.10 else []
        earlier_mail = [c for c in chats[:chat.no - first] if c.email and c.end < chat.start] \
            if r < 0.15 and not earlier_done else []
        if r < 0.10 and earlier_done:
            # A returning visitor: the same browser opens a new chat later that day.
            prev = rng.choice(earlier_done)
            chat.kind, chat.client_id, chat.name, chat.email = "returning", prev.client_id, prev.name, prev.email
            chat.email_from = 0
        elif r < 0.15 and earlier_mail:
            # The same person on another device: the e-mail joins it to the earlier thread,
            # at once or only when given later (then the newer thread is merged into the older).
            prev = rng.choice(earlier_mail)
            chat.kind, chat.client_id, chat.name, chat.email = "other-device", "day-visitor-%05d" % chat.no, \
                prev.name, prev.email
        else:
            chat.client_id = "day-visitor-%05d" % chat.no
            chat.name = "Visitor %05d" % chat.no
            chat.email = "visitor%05d@example.org" % chat.no if rng.random() < 0.8 else None

        n = rng.randint(4, 20)                                     # visitor messages, 12 on average
        chat.visitor_msgs = n
        if chat.kind == "new" or chat.kind == "other-device":
            # E-mail known at the start (site integration or pre-chat form) or given late.
            chat.email_from = 0 if rng.random() < 0.6 else rng.randint(2, max(2, n - 1))
        city = CITIES[chat.no % len(CITIES)]
        t = chat.start
        sent, transcript, m_no, a_no = 0, [], 0, 0
        reply_after = rng.randint(1, 3) if rng.random() < 0.25 else -1   # burst after which Planfix answers
        burst_no = 0
        while sent < n:
            burst = min(n - sent, rng.choice([1, 1, 2, 2, 3, 4, 5]))
            for _ in range(burst):
                token = "#c%05dm%02d" % (chat.no, m_no)
                text = "%s %s" % (VISITOR_TEXTS[(chat.no + m_no) % len(VISITOR_TEXTS)], token)
                m = h.msg("day-%05d-m%02d" % (chat.no, m_no), text, created_at=0)
                transcript.append(m)
                body = h.chat_event("chatStarted" if sent == 0 else "chatFragment", chat.client_id, [m],
                                    chatId=chat.chat_id, **_client(chat, city, sent >= chat.email_from))
                add(t, "webhook", chat, {"body": body, "tokens": [token]})
                sent += 1
                m_no += 1
                t += rng.uniform(3, 12)
            if sent >= n:
                break
            if rng.random() < 0.7:
                # An agent answers in Chatra.
                t += rng.uniform(15, 60)
                text = "%s #c%05da%02d" % (AGENT_TEXTS[(chat.no + a_no) % len(AGENT_TEXTS)], chat.no, a_no)
                m = h.msg("day-%05d-a%02d" % (chat.no, a_no), text, type="agent", agent_id=AGENT, created_at=0)
                transcript.append(m)
                body = h.chat_event("chatFragment", chat.client_id, [m], chatId=chat.chat_id,
                                    **_client(chat, city, sent >= chat.email_from))
                add(t, "webhook", chat, {"body": body, "tokens": []})
                chat.agent_msgs += 1
                a_no += 1
            if burst_no == reply_after:
                # An employee answers in Planfix instead; Chatra shows it and repeats it in a
                # later fragment (the echo the bridge must not mirror back).
                t += rng.uniform(20, 60)
                token = "#c%05dr" % chat.no
                add(t, "planfix_reply", chat, {"token": token})
                add(t + rng.uniform(5, 15), "echo", chat, {"token": token, "city": city,
                                                          "transcript": transcript})
                chat.planfix_replies += 1
            burst_no += 1
            t += rng.uniform(20, 90)
        chat.leaves = rng.random() < 0.85
        if chat.leaves:
            t += rng.uniform(30, 120)
            # The transcript repeats the whole chat; echoes are added to it when they happen.
            add(t, "transcript", chat, {"transcript": transcript, "city": city})
        chat.end = t
    events.sort(key=lambda e: (e[0], e[1]))
    return chats, events


def _pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))]


def classify(method, path):
    """What a Planfix request was for."""
    parts = [p for p in path.split("/") if p][1:]   # without "rest"
    if parts == ["contact", "list"]:
        return "contact lookup"
    if parts == ["contact"]:
        return "contact create"
    if len(parts) == 2 and parts[0] == "contact":
        return "contact update/remove"
    if parts == ["task"]:
        return "task create"
    if parts == ["task", "list"]:
        return "task lookup"
    if len(parts) == 2 and parts[0] == "task":
        return "task check" if method == "GET" else "task close/update"
    if len(parts) == 3 and parts[2] == "comments":
        return "comment"
    if len(parts) == 4 and parts[2:] == ["comments", "list"]:
        return "comments read (reply webhook)"
    if parts == ["comment", "list"]:
        return "poll"
    return "other"


def _count(items):
    out = {}
    for k in items:
        out[k] = out.get(k, 0) + 1
    return out


def task_of(store_path, client_id):
    """The tracker id of the current task of client_id's conversation, read from the store."""
    db = sqlite3.connect("file:%s?mode=ro" % store_path, uri=True, timeout=5)
    try:
        row = db.execute("SELECT t.task_id FROM conv_clients k JOIN conversations c ON c.id=k.conv_id "
                         "JOIN tasks t ON t.conv_id=c.id AND t.gen=c.gen WHERE k.client_id=?",
                         (client_id,)).fetchone()
        return row[0] if row and row[0] else None
    finally:
        db.close()


def open_jobs(store_path):
    db = sqlite3.connect("file:%s?mode=ro" % store_path, uri=True, timeout=5)
    try:
        jobs = db.execute("SELECT count(*) FROM jobs WHERE state<2 AND kind<>'poll'").fetchone()[0]
        inbox = db.execute("SELECT count(*) FROM inbox WHERE processed_at IS NULL").fetchone()[0]
        return jobs + inbox
    finally:
        db.close()


def describe(chat):
    """A chat in a few words, for the notes."""
    words = [chat.kind]
    if chat.email and chat.email_from > 0:
        words.append("e-mail given with message %d" % (chat.email_from + 1))
    elif not chat.email:
        words.append("no e-mail")
    words.append("leaves" if chat.leaves else "stays")
    return ", ".join(words)


def _stamp(body):
    """Messages get their createdAt when first sent (the transcript repeats the same dicts)."""
    for m in body["messages"]:
        if not m.get("createdAt"):
            m["createdAt"] = int(time.time() * 1000)


def replay(bridge, fakes, chats, events, scale, rps, log=print, drain_timeout=300):
    """Play the day against bridge (already started with tracker budget rps) and measure.  The
    fakes may hold an earlier day: only the requests and violations from now on count."""
    store = bridge.config["store"]["path"]
    if not store.startswith("/"):
        store = bridge.tmpdir + "/" + store
    # Chatra knows its visitors: GET /clients/{id} answers for every one of them.
    fakes.control("chatra", "POST", "clients",
                  {c.client_id: {"id": c.client_id, "name": c.name or "", "email": c.email or ""}
                   for c in chats})
    first_sent = {}          # visitor token -> wall time its webhook was sent
    sent_at = {}             # planfix reply token -> wall time of its webhook
    relayed = {}             # planfix reply token -> (text, agentId) as Chatra received it
    lag, failures, skipped_replies = 0.0, [], 0
    before = len(fakes.planfix_requests())
    violations_before = fakes.stats("planfix")["violations"]
    t_wall0 = time.time() + 1.0
    total = len(events)
    last_report = time.time()
    for n, (t, _, kind, chat, data) in enumerate(events):
        due = t_wall0 + t / scale
        now = time.time()
        if due > now:
            time.sleep(due - now)
        else:
            lag = max(lag, now - due)
        if time.time() - last_report > 60:
            last_report = time.time()
            log("  day: %d/%d events, scenario %02d:%02d" % (n, total, int(t // 3600), int(t % 3600 // 60)))
        if kind == "webhook":
            _stamp(data["body"])
            ts = time.time()
            r = bridge.post_chatra(data["body"], timeout=30)
            for tok in data["tokens"]:
                first_sent.setdefault(tok, ts)
            if r.status != 200:
                failures.append((kind, r.status, r.body[:100]))
        elif kind == "planfix_reply":
            task = task_of(store, chat.client_id)
            if task is None:
                skipped_replies += 1
                continue
            fakes.employee_comment(int(task), owner="user:5", name="Anna",
                                   text="<p>Anna here: your order is on its way %s</p>" % data["token"])
            sent_at[data["token"]] = time.time()
            r = bridge.post_planfix(task, timeout=30)
            if r.status != 200:
                failures.append((kind, r.status, r.body[:100]))
        elif kind in ("echo", "transcript"):
            # What the bridge relayed to this visitor so far comes back as agent messages.
            for rq in (fakes.chatra_requests(path="/messages/", method="POST") if chat.planfix_replies else []):
                b = rq["body"] if isinstance(rq["body"], dict) else {}
                if b.get("clientId") == chat.client_id:
                    for tok in [x for x in sent_at if x in b.get("text", "")]:
                        relayed.setdefault(tok, (b["text"], b.get("agentId"), rq["time"]))
            msgs = []
            for tok, (text, agent, _) in relayed.items():
                if tok.startswith("#c%05dr" % chat.no):
                    msgs.append(h.msg("day-echo-%s" % tok[1:], text, type="agent", agent_id=agent, created_at=0))
            if kind == "transcript":
                msgs = data["transcript"] + msgs
            if msgs:
                body = h.chat_event("chatTranscript" if kind == "transcript" else "chatFragment", chat.client_id,
                                    msgs, chatId=chat.chat_id, **_client(chat, data["city"], True))
                _stamp(body)
                r = bridge.post_chatra(body, timeout=30)
                if r.status != 200:
                    failures.append((kind, r.status, r.body[:100]))
    t_end_events = time.time()
    # Let the queue drain (the poll keeps coming back; it does not count as work).
    deadline = time.time() + drain_timeout
    while time.time() < deadline and open_jobs(store) > 0:
        time.sleep(0.5)
    drained = open_jobs(store) == 0
    t_drained = time.time()

    reqs = fakes.planfix_requests()[before:]
    stats = fakes.stats("planfix")
    by_kind = {}
    for rq in reqs:
        k = classify(rq["method"], rq["path"])
        by_kind[k] = by_kind.get(k, 0) + 1
    ok = [rq for rq in reqs if isinstance(rq["status"], int) and 200 <= rq["status"] < 300]
    # When each visitor token first reached Planfix (one pass over the requests, in order).
    first_seen, first_kind = {}, {}
    for rq in ok:
        for tok in VISITOR_TOKEN.findall(rq["raw"]):
            if tok not in first_seen:
                first_seen[tok] = rq["time"]
                first_kind[tok] = classify(rq["method"], rq["path"])
    delays = [max(0.0, first_seen[tok] - ts) for tok, ts in first_sent.items() if tok in first_seen]
    late_by = {tok: (first_kind[tok], first_seen[tok] - ts) for tok, ts in first_sent.items() if tok in first_seen}
    state = fakes.planfix_state()
    texts = [t.get("description") or "" for t in state["tasks"]] + \
            [c.get("description") or "" for c in state["comments"]]
    in_tracker = set(ANY_TOKEN.findall("\n".join(texts)))
    visitor_tokens = ["#c%05dm%02d" % (c.no, i) for c in chats for i in range(c.visitor_msgs)]
    agent_tokens = ["#c%05da%02d" % (c.no, i) for c in chats for i in range(c.agent_msgs)]
    api_comments = [c for c in state["comments"] if c.get("via") == "api"]
    echoes = [tok for c in api_comments for tok in REPLY_TOKEN.findall(c.get("description") or "") if tok in sent_at]
    mirrored = sorted(set(echoes))
    echoes_mirrored = len(echoes)
    chatra_posts = [rq for rq in fakes.chatra_requests(path="/messages/", method="POST")]
    reply_delays = []
    for tok, ts in sent_at.items():
        got = next((rq["time"] for rq in chatra_posts
                    if isinstance(rq["body"], dict) and tok in rq["body"].get("text", "")), None)
        if got is not None:
            reply_delays.append(got - ts)
    naive = sum(3 + c.visitor_msgs + (1 if c.leaves else 0) for c in chats)
    polls = by_kind.get("poll", 0)
    return {
        "chats": len(chats),
        "kinds": {k: sum(1 for c in chats if c.kind == k) for k in ("new", "returning", "other-device")},
        "late_emails": sum(1 for c in chats if c.email and c.email_from > 0),
        "leaves": sum(1 for c in chats if c.leaves),
        "visitor_msgs": len(visitor_tokens),
        "agent_msgs": len(agent_tokens),
        "planfix_replies": len(sent_at),
        "skipped_replies": skipped_replies,
        "webhooks": sum(1 for e in events if e[2] in ("webhook", "transcript")),
        "requests": len(reqs),
        "requests_no_poll": len(reqs) - polls,
        "by_kind": by_kind,
        "violations": stats["violations"] - violations_before,
        "status_429": sum(1 for rq in reqs if rq["status"] == 429),
        "min_interval": stats["min_interval"],
        "naive": naive,
        "delay_p50": _pct(delays, 50),
        "delay_p95": _pct(delays, 95),
        "delay_max": max(delays) if delays else None,
        # The share of visitor messages visible in the tracker within s seconds of their webhook.
        "within": lambda s: sum(1 for x in delays if x <= s) / len(first_sent) if first_sent else 0.0,
        # The messages later than s seconds, by the request that first carried them.
        "late_by": lambda s: _count(k for k, d in late_by.values() if d > s),
        "reply_p50": _pct(reply_delays, 50),
        "reply_p95": _pct(reply_delays, 95),
        "replies_relayed": len(reply_delays),
        "visitor_in": sum(1 for tok in visitor_tokens if tok in in_tracker),
        "agent_in": sum(1 for tok in agent_tokens if tok in in_tracker),
        "echoes_mirrored": echoes_mirrored,
        "mirrored": ["%s (%s)" % (tok, describe(next(c for c in chats if c.no == int(tok[2:7])))) for tok in mirrored],
        "failures": failures,
        "lag": lag,
        "wall_events": t_end_events - t_wall0,
        "wall_drain": t_drained - t_end_events,
        "drained": drained,
        "scenario_s": max(e[0] for e in events),
    }
