#!/usr/bin/env python3
"""Bulk loader for tests/bench: fill a chatra-bridge store with finished conversations.

    python3 tests/bench/loader.py STORE.db COUNT [--no-history]

The store must already have the bridge's schema, version 1 or later (start the bridge once on
an empty store and stop it: bench.py does that).  Every conversation is one the bridge itself could have written
for a visitor who chatted once, got an answer and left, with the store's retention off
(store.retention_days 0, the default), so nothing of it was removed:

  persons           one per conversation, its Planfix contact made by the bridge
  person_emails     for 70% of them (a third verified by the site)
  conversations     gen 1, the raw client object of the last webhook, Chatra's profile
  conv_clients      the device (Chatra client id) and its chat id
  tasks             generation 1, completed (state 3) with its tracker id and source key
  messages          visitor question (in the task description), agent answer, visitor
                    thanks (both comments), all mirrored (state 1)
  tracker_comments  the bridge's own two comments
  jobs              the finished jobs: profile, contact, task, 3 comment jobs, close
  inbox             the three processed webhooks (chatStarted, chatFragment, chatTranscript)

(--no-history leaves out jobs and inbox, as if retention had removed them.)

Column meanings follow bridge/store.c (br_store_* functions); ids continue after the rows
already present, tracker ids (contacts 10,000,000+, tasks 20,000,000+, comments 30,000,000+)
stay clear of the ids the fake Planfix hands out.  Everything goes in one transaction with
executemany; journal and sync are off while loading, WAL is set back at the end.

Python 3 standard library only.
"""

import hashlib
import json
import os
import sqlite3
import sys
import time

CHANNEL = "shop"
AGENT_ID = "bnRzp4CioKudG4aHm"     # Anna, as in the bench config
DAY_MS = 86400 * 1000
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"

FIRST = ["Maria", "John", "Olga", "Pierre", "Aiko", "Lucas", "Fatima", "Ivan", "Emma", "Noah",
         "Sofia", "Liam", "Chen", "Amara", "Jonas", "Elena"]
LAST = ["Lopez", "Smith", "Ivanova", "Martin", "Tanaka", "Silva", "Khan", "Petrov", "Brown",
        "Muller", "Rossi", "Novak", "Wang", "Okafor", "Berg", "Garcia"]
DOMAINS = ["example.org", "mail.example.com", "shop-customer.example.net", "example.co.uk"]
CITIES = [("Madrid", "Spain"), ("Berlin", "Germany"), ("Lyon", "France"), ("Leeds", "United Kingdom"),
          ("Porto", "Portugal"), ("Riga", "Latvia"), ("Turin", "Italy"), ("Gdansk", "Poland")]
QUESTIONS = ["Hello! Is the blue kettle in stock?", "Do you ship to my city, and how long does it take?",
             "Can I still change the delivery address of order 18342?", "Is there a discount for two items?",
             "My parcel has not arrived yet, can you check the tracking number?",
             "Does the coffee grinder come with a European plug?"]
ANSWERS = ["Hi, yes it is, we ship it today if you order before 15:00.",
           "Delivery takes 2 to 4 working days; I sent you the tracking link.",
           "Done, the address is changed.", "Yes, 10% with the code TWO10."]
THANKS = ["Great, thank you!", "Perfect, thanks a lot.", "Thanks, have a nice day!"]


def ids_of(i):
    """Random-looking, deterministic ids for conversation i (Chatra's ids look like this):
    client id (40 characters), chat id and three message ids (17 each)."""
    h = hashlib.blake2b(b"%d" % i, digest_size=64).hexdigest()
    return h[:40], h[40:57], h[57:74], h[74:91], h[91:108]


def ident(i, salt, n):
    """Kept for callers that need one id (bench.py picks a loaded visitor's client id)."""
    return ids_of(i)[{"client": 0, "chat": 1, "m1": 2, "m2": 3, "m3": 4}[salt]][:n]


def source_key(instance_id, kind, job_id):
    """br_store_source_key(): 24 characters of the instance id, kind (1 hex), job id (11 hex)."""
    return "%.24s%x%011x" % (instance_id, kind, job_id)


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
compact = _encoder.encode


class Ids:
    """The next free rowid of each table with an integer key."""

    def __init__(self, db):
        def nxt(table):
            return (db.execute("SELECT coalesce(max(id), 0) FROM %s" % table).fetchone()[0]) + 1
        self.person = nxt("persons")
        self.conv = nxt("conversations")
        self.msg = nxt("messages")
        self.job = nxt("jobs")
        self.inbox = nxt("inbox")


def conversation_rows(k, n, ids, instance_id, now_ms):
    """All rows of the k-th (0-based) of n conversations loaded now, as {table: [row, ...]}."""
    person, conv = ids.person + k, ids.conv + k
    msg0, job0, inbox0 = ids.msg + 3 * k, ids.job + 7 * k, ids.inbox + 3 * k
    i = conv - 1    # names, e-mails and ids derive from the conversation id: unique in the store
    # Spread over the last 400 days, oldest first; each chat lasts about 6 minutes.
    t0 = now_ms - 400 * DAY_MS + (400 * DAY_MS * k) // max(n, 1)
    first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
    name = "%s %s" % (first, last)
    has_email = i % 10 < 7
    email = ("%s.%s%d@%s" % (first, last, i, DOMAINS[i % len(DOMAINS)])).lower() if has_email else None
    verified = has_email and i % 3 == 0
    phone = "+34 600 %03d %03d" % (i % 1000, (i // 1000) % 1000) if i % 10 < 3 else None
    city, country = CITIES[i % len(CITIES)]
    client_id, chat_id, mq, ma, mt = ids_of(i)
    contact_id = str(10_000_000 + i)
    task_id = str(20_000_000 + i)
    comment1, comment2 = str(30_000_000 + 2 * i), str(30_000_000 + 2 * i + 1)

    raw = {"id": client_id, "chatId": chat_id, "displayedName": "Green Owl", "name": name}
    if email:
        raw["email"] = email
    if phone:
        raw["phone"] = phone
    raw["info"] = {"plan": "trial" if i % 4 else "pro", "userId": "u-%d" % i}
    raw["basicInfo"] = {"city": city, "country": country, "browser": "Chrome 126", "os": "Windows 10",
                        "pages": [{"url": "https://shop.example.org/kettles", "title": "Kettles"}]}
    visitor_json = compact(raw)
    profile = {"id": client_id, "name": name, "email": email, "phone": phone,
               "location": {"city": city, "country": country}, "browser": "Chrome 126",
               "pages": [{"url": "https://shop.example.org/kettles", "title": "Kettles"}]}
    profile_json = compact({k: v for k, v in profile.items() if v is not None})

    q, a, t = QUESTIONS[i % len(QUESTIONS)], ANSWERS[i % len(ANSWERS)], THANKS[i % len(THANKS)]
    at_q, at_a, at_t = t0, t0 + 90_000, t0 + 240_000
    closed = t0 + 360_000

    rows = {
        "persons": [(person, contact_id, 1, None, None, t0)],
        "person_emails": [(email, person, int(verified), t0)] if email else [],
        "conversations": [(conv, CHANNEL, person, client_id, chat_id, name, email, phone, visitor_json, 1, None,
                           profile_json, 2, t0, closed)],
        "conv_clients": [(CHANNEL, client_id, conv, chat_id)],
        "tasks": [(conv, 1, task_id, 3, source_key(instance_id, 1, job0 + 2), closed, t0)],
        "messages": [
            (msg0, conv, 1, "id:" + mq, "client", None, q, at_q, 1, None),
            (msg0 + 1, conv, 1, "id:" + ma, "agent", AGENT_ID, a, at_a, 1, comment1),
            (msg0 + 2, conv, 1, "id:" + mt, "client", None, t, at_t, 1, comment2),
        ],
        "tracker_comments": [(task_id, comment1, 1, at_a + 400), (task_id, comment2, 1, at_t + 400)],
    }

    lane_t, lane_c = "t:%d" % conv, "c:%d" % conv
    comment_req = 'POST /task/%s/comments/ {"description":"%s","owner":{"id":"%s"},"sourceObjectId":"%s"}'
    # (id, lane, upstream, kind, conv_id, payload, state, attempts, next_at, recover,
    #  last_error, last_request, last_response, created_at, updated_at)
    rows["jobs"] = [
        (job0, lane_c, "chatra:" + CHANNEL, "profile", conv, "{}", 2, 0, t0 + 150, 0, None, None, None, t0, t0 + 150),
        (job0 + 1, lane_t, "tracker", "contact", conv, '{"gen":1}', 2, 0, t0 + 300, 0, None,
         'POST /contact/ {"template":{"id":4},"name":"%s"%s,"sourceObjectId":"%s"}'
         % (name, ',"email":"%s"' % email if email else "", source_key(instance_id, 3, job0 + 1)),
         '201 {"result": "success", "id": %s}' % contact_id, t0, t0 + 300),
        (job0 + 2, lane_t, "tracker", "task", conv, '{"gen":1,"since":%d,"msgs":[%d]}' % (t0, msg0), 2, 0,
         t0 + 1300, 0, None,
         'POST /task/ {"template":{"id":12},"name":"Chat with %s (shop)","description":"<p><b>Name:</b> %s</p>'
         '<hr><p><b>Visitor</b><br>%s</p>","assigner":{"id":"contact:%s"},"sourceObjectId":"%s"}'
         % (name, name, q, contact_id, source_key(instance_id, 1, job0 + 2)),
         '201 {"result": "success", "id": %s}' % task_id, t0, t0 + 1300),
        (job0 + 3, lane_t, "tracker", "comment", conv, '{"msg":%d}' % msg0, 2, 0, t0 + 1300, 0, None, None, None,
         t0, t0 + 1300),
        (job0 + 4, lane_t, "tracker", "comment", conv, '{"msg":%d}' % (msg0 + 1), 2, 0, at_a + 400, 0, None,
         comment_req % (task_id, a, "user:5", source_key(instance_id, 2, msg0 + 1)),
         '201 {"result": "success", "id": %s}' % comment1, at_a, at_a + 400),
        (job0 + 5, lane_t, "tracker", "comment", conv, '{"msg":%d,"msgs":[%d]}' % (msg0 + 2, msg0 + 2), 2, 0,
         at_t + 400, 0, None, comment_req % (task_id, t, "contact:" + contact_id, source_key(instance_id, 2, msg0 + 2)),
         '201 {"result": "success", "id": %s}' % comment2, at_t, at_t + 400),
        (job0 + 6, lane_t, "tracker", "close", conv, '{"gen":1}', 2, 0, closed, 0, None,
         'POST /task/%s {"status":{"id":3}}' % task_id, '200 {"result": "success"}', closed - 400, closed),
    ]

    client_norm = {"id": client_id, "chat_id": chat_id, "name": name}
    if email:
        client_norm["email"] = email
    if phone:
        client_norm["phone"] = phone

    # The inbox holds the normalised event (handlers/chatra_event.c) with the raw client object.
    head = '{"event":"%s","client":' + compact(client_norm) + ',"raw_client":' + visitor_json + ',"messages":['
    nq = compact({"key": "id:" + mq, "id": mq, "type": "client", "text": q, "created_at": at_q})
    na = compact({"key": "id:" + ma, "id": ma, "type": "agent", "text": a, "agent_id": AGENT_ID, "created_at": at_a})
    nt = compact({"key": "id:" + mt, "id": mt, "type": "client", "text": t, "created_at": at_t})
    rows["inbox"] = [
        (inbox0, 1, CHANNEL, head % "started" + nq + "]}", at_q, at_q + 1),
        (inbox0 + 1, 1, CHANNEL, head % "fragment" + na + "," + nt + "]}", at_t, at_t + 1),
        (inbox0 + 2, 1, CHANNEL, head % "transcript" + nq + "," + na + "," + nt + "]}", closed - 400, closed - 399),
    ]
    return rows


INSERTS = {
    "persons": "INSERT INTO persons(id, contact_id, contact_made, company_id, merged_into, created_at) "
               "VALUES(?,?,?,?,?,?)",
    "person_emails": "INSERT INTO person_emails(email, person_id, verified, added_at) VALUES(?,?,?,?)",
    "conversations": "INSERT INTO conversations(id, channel, person_id, client_id, chat_id, name, email, phone, "
                     "visitor_json, gen, merged_into, profile_json, profile_state, created_at, updated_at) "
                     "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "conv_clients": "INSERT INTO conv_clients(channel, client_id, conv_id, chat_id) VALUES(?,?,?,?)",
    "tasks": "INSERT INTO tasks(conv_id, gen, task_id, state, source_key, closed_at, created_at) "
             "VALUES(?,?,?,?,?,?,?)",
    "messages": "INSERT INTO messages(id, conv_id, gen, key, type, agent_id, text, created_at, state, comment_id) "
                "VALUES(?,?,?,?,?,?,?,?,?,?)",
    "tracker_comments": "INSERT INTO tracker_comments(task_id, comment_id, origin, seen_at) VALUES(?,?,?,?)",
    "jobs": "INSERT INTO jobs(id, lane, upstream, kind, conv_id, payload, state, attempts, next_at, recover, "
            "last_error, last_request, last_response, created_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "inbox": "INSERT INTO inbox(id, kind, channel, body, received_at, processed_at) VALUES(?,?,?,?,?,?)",
}


def load(path, count, history=True, batch=20_000, progress=None, age_ms=0):
    """Append count finished conversations to the store at path; returns the seconds it took.
    history=False leaves out the processed inbox rows and finished jobs (a store whose
    retention removed them): a third of the size, loaded twice as fast.  The conversations
    spread over the 400 days before now, or before age_ms ago."""
    started = time.monotonic()
    tables = [t for t in INSERTS if history or t not in ("inbox", "jobs")]
    db = sqlite3.connect(path, isolation_level=None)
    try:
        # Version 1 has every table and column written here; later versions add indexes.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version < 1:
            raise RuntimeError("%s: no schema yet (start the bridge on it once first)" % path)
        row = db.execute("SELECT value FROM meta WHERE key='instance_id'").fetchone()
        instance_id = row[0] if row else "00000000-0000-0000-0000-000000000000"
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1000000")    # 1 GB: the indexes stay in memory while loading
        ids = Ids(db)
        now_ms = int(time.time() * 1000) - age_ms
        db.execute("BEGIN")
        for lo in range(0, count, batch):
            chunk = {t: [] for t in tables}
            for i in range(lo, min(count, lo + batch)):
                for table, rows in conversation_rows(i, count, ids, instance_id, now_ms).items():
                    if table in chunk:
                        chunk[table].extend(rows)
            for table, rows in chunk.items():
                db.executemany(INSERTS[table], rows)
            if progress:
                progress(min(count, lo + batch), count)
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()
    return time.monotonic() - started


def main():
    args = [a for a in sys.argv[1:] if a != "--no-history"]
    if len(args) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    path, count = args[0], int(args[1])
    secs = load(path, count, history="--no-history" not in sys.argv,
                progress=lambda done, total: sys.stderr.write("\r%d/%d" % (done, total)))
    sys.stderr.write("\n")
    print("%d conversations loaded into %s in %.1f s (%.0f MB)"
          % (count, path, secs, os.path.getsize(path) / 1e6))


if __name__ == "__main__":
    main()
