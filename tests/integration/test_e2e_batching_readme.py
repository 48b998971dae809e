"""The README's promises on batching and on the comment templates, under an admin's
variations: a custom `messages` text that uses (or leaves out) each variable, `language` ru and
en, a time zone other than UTC (also one half an hour off), each `mirror_agent_messages`,
`coalesce_ms: 0`, and both trackers (the fake Planfix and a real Redmine).

Each test names the README line it checks.
"""

import html
import os
import re
import sqlite3
import sys
import time
import unittest
import urllib.request
import xml.etree.ElementTree as ET

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from admin import AdminCase  # noqa: E402
from e2e import ANNA_AGENT  # noqa: E402
from harness import chat_event, msg, wait_until  # noqa: E402
from test_e2e_redmine import POLL_WAIT, PROJECT, RedmineCase  # noqa: E402

AT = 1764669600000            # 2025-12-02 10:00:00 UTC: 13:00 in Moscow, 15:30 in Kolkata
STRANGER = "someStranger"     # a Chatra agent no employee maps to
CARL = {"name": "Carl Jung", "email": "carl@example.com", "tracker_user": "user:8"}   # no chatra_agent_id
CARL_AGENT = "agentCarl0000001"

# Every variable the README lists for the `messages` text, in one line per message.
ALL_VARS = ("{{count}}{{#single}} single{{/single}}{{^single}} several{{/single}}|"
            "{{#messages}}{{^first}};{{/first}}{{#first}}[first]{{/first}}{{type}}:{{author}}"
            "{{#is_visitor}} (visitor){{/is_visitor}}{{#is_agent}} (agent {{agent.id}}={{agent.name}}){{/is_agent}}"
            " {{date}} {{time}} {{clock}} {{text}}{{/messages}}|{{visitor.name}}|{{channel.name}}")


class TestBatchingPlanfix(AdminCase):
    """Against the fake Planfix."""

    def check_config(self, **overrides):
        from harness import apply_overrides
        self.bridge.config = self.config = apply_overrides(self.config, overrides)
        r = self.bridge.run("check-config", "--config", self.bridge.write_config())
        return r

    def messages(self, conv):
        return {m["text"]: m for m in self.timeline(conv, "message")}

    def one_comment(self, client, later, webhook=None, **start):
        """Starts the bridge (5 requests a second, coalesce_ms 1.5 s unless start says otherwise),
        opens client's chat with "Hello", then sends the messages later in one webhook; returns
        the text of the one comment they become."""
        tracker = dict({"requests_per_second": 5, "coalesce_ms": 1500}, **start.pop("tracker", {}))
        self.start_admin(tracker=tracker, **start)
        task, _ = self.open_chat(client, [msg(client + "-m0", "Hello", created_at=AT)])
        self.wait_idle(timeout=15)
        self.post(chat_event("chatFragment", client, later, **(webhook or {})))
        [post] = self.wait_comment_posts(task, 1, timeout=15)
        self.assert_quiet()
        return post["body"]["description"]

    # --- Templates: the variables the README lists ------------------------------------------

    def test_description_may_read_the_agent_of_chat_messages(self):
        # README, Templates: "`chat`: `id`, `started_at`, `messages[]` (`author`, `text`, ...
        # `is_visitor`, `is_agent`, and an agent's `agent`: `id`, `name`)".
        description = ("{{#chat.messages}}<p>{{#is_agent}}{{agent.name}} ({{agent.id}}){{/is_agent}}"
                       "{{^is_agent}}{{author}}{{/is_agent}}: {{text}}</p>{{/chat.messages}}{{previous_task.id}}")
        r = self.check_config(channel={"task": {"template_id": 12, "closed_status_id": 3,
                                                "description": description}})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(r.stdout.rstrip().endswith("OK"), r.stdout)

    def test_previous_task_messages_may_read_their_agent(self):
        # README, Templates: "`previous_task`: `id`, `messages[]`" (the messages as chat.messages).
        description = ("{{#chat.messages}}{{text}}{{/chat.messages}}{{previous_task.id}}"
                       "{{#previous_task.messages}}{{#is_agent}}{{agent.name}}{{/is_agent}}{{/previous_task.messages}}")
        r = self.check_config(channel={"task": {"template_id": 12, "closed_status_id": 3,
                                                "description": description}})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_agent_label_may_read_visitor_and_channel(self):
        # README, The bridge's own words: the table's column is "variables besides `visitor` and
        # `channel`"; `agent_label`'s row adds `agent` (`id`).
        r = self.check_config(texts={"agent_label": "Agent {{agent.id}} of {{visitor.name}} on {{channel.name}}"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(r.stdout.rstrip().endswith("OK"), r.stdout)

    def test_every_messages_variable_with_visitor_in_kolkata(self):
        # README: the `messages` text's variables are `messages[]` (as `chat.messages`, plus
        # `first`; an agent's line has `is_agent` and `agent`: `id`, `name`, the employee's name or
        # the `agent_label` text), `single`, `count`; times in `timezone`, written the way
        # `language` writes them.  (No test covered count, first, author, date, time or a zone
        # half an hour off.)
        self.start_admin(timezone="Asia/Kolkata", texts={"messages": ALL_VARS},
                         tracker={"requests_per_second": 5, "coalesce_ms": 1500},
                         channel={"mirror_agent_messages": "with_visitor"})
        task, contact = self.open_chat("k-1", [msg("k-1-m0", "Hello", created_at=AT)], name="Ravi")
        self.wait_idle(timeout=15)
        self.post(chat_event("chatFragment", "k-1", [
            msg("k-q1", "Is it <blue> & 'big'?", created_at=AT + 60000),
            msg("k-a1", "Yes", type="agent", agent_id=ANNA_AGENT, created_at=AT + 61000),
            msg("k-x1", "Hi", type="agent", agent_id=STRANGER, created_at=AT + 62000),
            msg("k-q2", "Thanks", created_at=AT + 63000)], name="Ravi"))
        [post] = self.wait_comment_posts(task, 1, timeout=15)
        self.assertEqual(post["body"]["description"],
                         "4 several|"
                         "[first]client:Visitor (visitor) 2025-12-02 2025-12-02 15:31 IST 15:31:00 "
                         "Is it &lt;blue&gt; &amp; &#39;big&#39;?;"
                         "agent:Anna Smirnova (agent bnRzp4CioKudG4aHm=Anna Smirnova) 2025-12-02 2025-12-02 15:31 IST "
                         "15:31:01 Yes;"
                         "agent:Agent (agent someStranger=Agent) 2025-12-02 2025-12-02 15:31 IST 15:31:02 Hi;"
                         "client:Visitor (visitor) 2025-12-02 2025-12-02 15:31 IST 15:31:03 Thanks"
                         "|Ravi|shop")
        self.assertEqual(post["body"]["owner"], {"id": contact})
        # One message alone: single, count 1.
        self.post(chat_event("chatFragment", "k-1", [msg("k-q3", "Bye", created_at=AT + 600000)], name="Ravi"))
        [_, post] = self.wait_comment_posts(task, 2, timeout=15)
        self.assertEqual(post["body"]["description"],
                         "1 single|[first]client:Visitor (visitor) 2025-12-02 2025-12-02 15:40 IST 15:40:00 Bye"
                         "|Ravi|shop")
        self.assert_quiet()

    def test_russian_custom_messages_text_without_clock_in_moscow(self):
        # README: a custom `messages` text decides what a comment shows (here: no clock, the
        # author's label and the date in the Russian way); the visitor's label is `visitor_label`.
        self.start_admin(language="ru", timezone="Europe/Moscow",
                         texts={"messages": "{{#messages}}{{^first}}<br>{{/first}}{{author}} ({{date}}, {{count}}): "
                                            "{{{text_html}}}{{/messages}}"},
                         tracker={"requests_per_second": 5, "coalesce_ms": 1500},
                         channel={"mirror_agent_messages": "with_visitor"})
        task, contact = self.open_chat("r-1", [msg("r-1-m0", "Привет", created_at=AT)])
        self.wait_idle(timeout=15)
        self.post(chat_event("chatFragment", "r-1", [
            msg("r-q1", "Строка 1\nстрока 2", created_at=AT + 60000),
            msg("r-x1", "Я помогу", type="agent", agent_id=STRANGER, created_at=AT + 61000)]))
        [post] = self.wait_comment_posts(task, 1, timeout=15)
        self.assert_quiet()
        self.assertEqual(post["body"]["description"],
                         "Посетитель (02.12.2025, 2): Строка 1<br>строка 2<br>Агент (02.12.2025, 2): Я помогу")

    def test_agent_label_text_names_an_unmapped_agent_in_the_visitors_comment(self):
        # README: an agent's line has `agent.name`: "the employee's name or the `agent_label` text".
        text = self.one_comment("l-1", [msg("l-q1", "Anyone?", created_at=AT + 60000),
                                        msg("l-x1", "Me", type="agent", agent_id=STRANGER, created_at=AT + 61000)],
                                texts={"agent_label": "Operator {{agent.id}}"},
                                channel={"mirror_agent_messages": "with_visitor"})
        self.assertEqual(text,
                         "<i>10:01:00</i> Anyone?<br><i>10:01:01</i> <b>Operator someStranger:</b> Me")

    def test_with_visitor_names_an_employee_found_by_the_agents_email(self):
        # README, Employees by e-mail: a message typed in Chatra is the employee's "whose e-mail
        # the webhook's agents[] names for its agent"; with_visitor labels it "with the
        # employee's name".
        text = self.one_comment("e-1", [msg("e-q1", "Question", created_at=AT + 60000),
                                        msg("e-c1", "Answer", type="agent", agent_id=CARL_AGENT, created_at=AT + 61000)],
                                webhook={"agents": [{"id": CARL_AGENT, "email": CARL["email"]}]},
                                employees=[dict(e) for e in self.config["employees"]] + [dict(CARL)],
                                channel={"mirror_agent_messages": "with_visitor"})
        self.assertEqual(text,
                         "<i>10:01:00</i> Question<br><i>10:01:01</i> <b>Carl Jung:</b> Answer")

    # --- escaping ------------------------------------------------------------------------------

    def test_visitor_text_is_escaped_in_the_default_and_a_custom_messages_text(self):
        # README, Templates: "`{{x}}` (escaped: HTML for Planfix ...)", "`text_html` (escaped, line
        # breaks kept)".
        evil = "<script>alert(1)</script> & \"x\"\nline 2"
        text = self.one_comment("h-1", [msg("h-q1", evil, created_at=AT + 1000),
                                        msg("h-q2", "<b>bold</b>", created_at=AT + 2000)])
        self.assertEqual(text,
                         "<i>10:00:01</i> &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;<br>line 2<br>"
                         "<i>10:00:02</i> &lt;b&gt;bold&lt;/b&gt;")

    # --- mirror_agent_messages -----------------------------------------------------------------

    def test_with_visitor_keeps_order_and_each_message_once_across_webhooks(self):
        # README, Batching: with "with_visitor" an agent's message "waits like a visitor's and goes
        # in the same comment, in order"; "Order, authors and 'each message exactly once' stay".
        self.start_admin(tracker={"requests_per_second": 5, "coalesce_ms": 2000},
                         channel={"mirror_agent_messages": "with_visitor"})
        task, contact = self.open_chat("o-1", [msg("o-1-m0", "Hello", created_at=AT)])
        self.wait_idle(timeout=15)
        self.post(chat_event("chatFragment", "o-1", [msg("o-q1", "one", created_at=AT + 1000)]))
        time.sleep(0.4)
        self.post(chat_event("chatFragment", "o-1", [msg("o-q1", "one", created_at=AT + 1000),
                                                     msg("o-a1", "two", type="agent", agent_id=ANNA_AGENT,
                                                         created_at=AT + 2000)]))
        time.sleep(0.4)
        self.post(chat_event("chatFragment", "o-1", [msg("o-q2", "three", created_at=AT + 3000)]))
        [post] = self.wait_comment_posts(task, 1, timeout=15)
        self.assert_quiet(1.5)
        self.assertEqual(post["body"]["description"],
                         "<i>10:00:01</i> one<br><i>10:00:02</i> <b>Anna Smirnova:</b> two<br><i>10:00:03</i> three")
        self.assertEqual(post["body"]["owner"], {"id": contact})
        self.assertEqual(len(self.comment_posts(task)), 1)

    def test_comment_mode_keeps_order_when_the_visitors_message_waits(self):
        # README, Batching: by default an agent's message "is a comment of its own, written as that
        # employee"; order stays.  The visitor's message waits coalesce_ms, the agent's would not.
        self.start_admin(tracker={"requests_per_second": 5, "coalesce_ms": 2000},
                         channel={"mirror_agent_messages": "comment"})
        task, contact = self.open_chat("c-1", [msg("c-1-m0", "Hello", created_at=AT)])
        self.wait_idle(timeout=15)
        self.post(chat_event("chatFragment", "c-1", [msg("c-q1", "one", created_at=AT + 1000)]))
        time.sleep(0.3)
        self.post(chat_event("chatFragment", "c-1", [msg("c-a1", "two", type="agent", agent_id=ANNA_AGENT,
                                                         created_at=AT + 2000)]))
        time.sleep(0.3)
        self.post(chat_event("chatFragment", "c-1", [msg("c-q2", "three", created_at=AT + 3000)]))
        self.wait_comment_posts(task, 3, timeout=15)
        self.assert_quiet(1.5)
        self.assertEqual([(p["body"]["description"], p["body"].get("owner")) for p in self.comment_posts(task)],
                         [("one", {"id": contact}), ("two", {"id": "user:5"}), ("three", {"id": contact})])

    def test_off_counts_only_the_visitors_messages(self):
        # README: with "off" agents' messages "stay in Chatra only" (the admin page: `skipped`); a
        # custom text's `count` and `single` then see the visitor's alone.
        self.start_admin(texts={"messages": "{{count}}{{#single}}!{{/single}}:{{#messages}} {{text}}{{/messages}}"},
                         tracker={"requests_per_second": 5, "coalesce_ms": 1500},
                         channel={"mirror_agent_messages": "off"})
        task, _ = self.open_chat("f-1", [msg("f-1-m0", "Hello", created_at=AT)])
        self.wait_idle(timeout=15)
        self.post(chat_event("chatFragment", "f-1", [
            msg("f-q1", "one", created_at=AT + 1000),
            msg("f-a1", "agent says", type="agent", agent_id=ANNA_AGENT, created_at=AT + 2000)]))
        [post] = self.wait_comment_posts(task, 1, timeout=15)
        self.assert_quiet(1.5)
        self.assertEqual(post["body"]["description"], "1!: one")
        self.assertEqual(self.messages(1)["agent says"]["state"], "skipped")

    # --- coalesce_ms 0 -------------------------------------------------------------------------

    def test_coalesce_ms_0_sends_each_message_at_once(self):
        # README: "`coalesce_ms: 0` sends every message at once, always" (Configure: "0 = at once,
        # always"): messages typed apart are separate comments, each sent without waiting.
        self.start_admin(tracker={"requests_per_second": 20, "coalesce_ms": 0, "coalesce_max_s": 300})
        task, contact = self.open_chat("z-1", [msg("z-1-m0", "Hello", created_at=AT)])
        self.wait_idle(timeout=15)
        for i in range(3):
            t0 = time.monotonic()
            self.post(chat_event("chatFragment", "z-1", [msg("z-q%d" % i, "at once %d" % i,
                                                             created_at=AT + 1000 * (i + 1))]))
            self.wait_comment_posts(task, i + 1, timeout=5)
            self.assertLess(time.monotonic() - t0, 1.0)
            time.sleep(0.3)
        self.assert_quiet()
        self.assertEqual([p["body"]["description"] for p in self.comment_posts(task)],
                         ["at once 0", "at once 1", "at once 2"])


    def test_the_wait_widens_to_coalesce_max_s_when_the_quota_is_projected_full(self):
        # README, Batching: the wait grows "from 80% of the daily quota projected for today to
        # 100%, evenly, up to the full `coalesce_max_s` (when the bridge knows the quota)"; the log
        # says "batching: the tracker is behind (...)"; /metrics and the overview show it.
        self.start_admin(tracker={"requests_per_second": 20, "coalesce_ms": 1000, "coalesce_max_s": 40,
                                  "daily_quota": 12})
        self.open_chat("q-1", [msg("q-1-m0", "Hello", created_at=AT)])
        self.wait_idle(timeout=15)
        self.open_chat("q-2", [msg("q-2-m0", "Hello", created_at=AT)])
        self.wait_idle(timeout=15)
        wait_until(lambda: self.api("overview")["upstreams"][0]["coalesce_wait_ms"] == 40000, timeout=10,
                   message=lambda: "wait: %s" % self.api("overview")["upstreams"][0])
        m = re.search(r"^chatra_bridge_coalesce_wait_seconds ([0-9.e+-]+)$", self.bridge.get("/metrics").body, re.M)
        self.assertEqual(float(m.group(1)), 40.0)
        wait_until(lambda: "batching: the tracker is behind" in self.bridge.log(), timeout=12)

    def test_a_burst_of_sixty_arrives_once_each_in_order(self):
        # README, Batching: "Order, authors and 'each message exactly once' stay as they are".
        self.start_admin(tracker={"requests_per_second": 5, "coalesce_ms": 1000})
        task, contact = self.open_chat("b-1", [msg("b-1-m0", "Hello", created_at=AT)])
        self.wait_idle(timeout=15)
        texts = ["burst %02d" % i for i in range(60)]
        self.post(chat_event("chatFragment", "b-1", [msg("b-q%02d" % i, t, created_at=AT + 1000 + i)
                                                     for i, t in enumerate(texts)]))
        wait_until(lambda: len(self.comment_texts(task)) >= 60 or None, timeout=20,
                   message=lambda: "mirrored: %s" % self.comment_texts(task))
        self.assert_quiet()
        self.assertEqual(self.comment_texts(task), texts)
        self.assertLessEqual(len(self.comment_posts(task)), 2)


# --- the real Redmine ---------------------------------------------------------------------------

def strip_tags(s):
    """The text a browser shows of Redmine's HTML (a line break as "\\n")."""
    return html.unescape(re.sub(r"<[^>]*>", "", re.sub(r"<br\s*/?>\n?", "\n", s)))


# Redmine 5's mention (Redmine::Acts::Mentionable::MENTION_PATTERN, without its lookahead): the
# users a note names so are mailed, whatever the note shows.
MENTION = re.compile(r"(?:^|[^A-Za-z0-9_])@(admin|anna)\b", re.M)


class TestBatchingRedmine(RedmineCase):
    """Against a real Redmine (skipped when it cannot run here)."""

    @classmethod
    def _populate(cls):
        """Also one of each object Redmine's link syntax names, so that a link would show: issue
        target, version 1.0, wiki page Foo, document, news and forum Greetings/Support with a
        message, a repository with revisions 12 and abc1234 (the REST API creates few of them)."""
        super()._populate()
        cls.target = cls._api("POST", "/issues.json", {"issue": {
            "project_id": PROJECT, "subject": "Link target"}})["issue"]["id"]
        cls.version = cls._api("POST", "/projects/%s/versions.json" % PROJECT,
                               {"version": {"name": "1.0"}})["version"]["id"]
        cls._api("PUT", "/projects/%s/wiki/Foo.json" % PROJECT, {"wiki_page": {"text": "Foo"}})
        con = sqlite3.connect(cls.rm.db)
        with con:
            project = con.execute("SELECT id FROM projects WHERE identifier=?", (PROJECT,)).fetchone()[0]
            cls.project = project
            cls.document = con.execute("INSERT INTO documents(project_id, title, created_on) "
                                       "VALUES(?, 'Greetings', datetime('now'))", (project,)).lastrowid
            cls.news = con.execute("INSERT INTO news(project_id, title, description, author_id, created_on) "
                                   "VALUES(?, 'Greetings', 'x', ?, datetime('now'))",
                                   (project, cls.admin_id)).lastrowid
            cls.forum = con.execute("INSERT INTO boards(project_id, name, description, position) "
                                    "VALUES(?, 'Support', 'x', 1)", (project,)).lastrowid
            cls.message = con.execute("INSERT INTO messages(board_id, subject, content, author_id, created_on, "
                                      "updated_on) VALUES(?, 'Hello', 'x', ?, datetime('now'), datetime('now'))",
                                      (cls.forum, cls.admin_id)).lastrowid
            repo = con.execute("INSERT INTO repositories(project_id, url, type, is_default, created_on) "
                               "VALUES(?, 'file:///nonexistent', 'Repository::Subversion', 1, datetime('now'))",
                               (project,)).lastrowid
            for rev, scmid in (("12", None), ("13", "abc1234def")):
                con.execute("INSERT INTO changesets(repository_id, revision, committed_on, comments, scmid) "
                            "VALUES(?, ?, datetime('now'), 'c', ?)", (repo, rev, scmid))
        con.close()

    @classmethod
    def attach(cls, n, filename):
        """An attachment (a row only) of issue n, which "attachment:FILENAME" names."""
        con = sqlite3.connect(cls.rm.db)
        with con:
            con.execute("INSERT INTO attachments(container_id, container_type, filename, disk_filename, filesize, "
                        "digest, author_id, created_on) VALUES(?, 'Issue', ?, 'x', 1, 'x', ?, datetime('now'))",
                        (n, filename, cls.admin_id))
        con.close()

    def rendered_notes(self, n):
        """{journal id: the note as Redmine shows it (HTML)}, from the issue's Atom feed."""
        with urllib.request.urlopen(self.rm.url + "/issues/%d.atom" % n, timeout=30) as r:
            root = ET.fromstring(r.read())
        ns = {"a": "http://www.w3.org/2005/Atom"}
        out = {}
        for e in root.findall("a:entry", ns):
            m = re.search(r"journal_id=(\d+)", e.find("a:id", ns).text or "")
            if m:
                out[int(m.group(1))] = e.find("a:content", ns).text or ""
        return out

    def journals(self, n):
        return [(j["id"], j["notes"]) for j in self.issue(n)["journals"] if j["notes"]]

    def test_with_visitor_note_in_russian_and_moscow_time(self):
        # README: with "with_visitor" the agents' messages go in the visitor's comment, in order,
        # labelled; each coalesced line has its `clock` in `timezone`; Textile for Redmine.
        # (No Redmine test covered with_visitor, nor the exact clock in a zone.)
        self.config["language"] = "ru"
        self.config["timezone"] = "Europe/Moscow"
        self.start(tracker={"coalesce_ms": 1500}, mirror_agent_messages="with_visitor")
        client = "rm-aud-wv"
        n = self.open_chat(client, "Здравствуйте")["id"]
        self.post(chat_event("chatFragment", client, [
            msg(client + "-q1", "Есть синий?", created_at=AT + 60000),
            msg(client + "-a1", "Да, есть", type="agent", agent_id=ANNA_AGENT, created_at=AT + 61000),
            msg(client + "-x1", "Я помогу", type="agent", agent_id=STRANGER, created_at=AT + 62000),
            msg(client + "-q2", "Спасибо", created_at=AT + 63000)]))
        [(user, text)] = self.wait_notes(n, 1)
        self.wait_idle(POLL_WAIT)
        self.assertEqual(text, "_13:01:00_ Есть синий?\n_13:01:01_ *Anna Smirnova:* Да, есть\n"
                               "_13:01:02_ *Агент:* Я помогу\n_13:01:03_ Спасибо")
        self.assertEqual(user, self.admin_id)
        self.assertEqual(len(self.notes(n)), 1)

    def test_off_on_redmine(self):
        # README: with "off" agents' messages are not written to the tracker.
        self.start(tracker={"coalesce_ms": 1500}, mirror_agent_messages="off")
        client = "rm-aud-off"
        n = self.open_chat(client, "Hello")["id"]
        self.post(chat_event("chatFragment", client, [
            msg(client + "-q1", "one", created_at=AT + 60000),
            msg(client + "-a1", "agent says", type="agent", agent_id=ANNA_AGENT, created_at=AT + 61000),
            msg(client + "-q2", "two", created_at=AT + 62000)]))
        [(user, text)] = self.wait_notes(n, 1)
        self.wait_idle(POLL_WAIT)
        self.assertEqual(text, "_10:01:00_ one\n_10:01:02_ two")
        self.assertEqual(len(self.notes(n)), 1)

    def shown_literally(self, client, texts):
        """Each text as one visitor message (coalesce_ms 0): {text: what Redmine shows of its note}.
        Also checks that no note mentions (so mails) a user."""
        self.start(tracker={"coalesce_ms": 0})
        n = self.open_chat(client, "Hello")["id"]
        self.attach(n, "notes.txt")
        for i, t in enumerate(texts):
            self.say(client, "%s-q%d" % (client, i), t)
            self.wait_notes(n, i + 1)
        self.wait_idle(POLL_WAIT)
        notes = self.journals(n)
        self.assertEqual(len(notes), len(texts), notes)
        self.assertEqual([note for _, note in notes if MENTION.search(note)], [])
        shown = self.rendered_notes(n)
        return {t: strip_tags(shown[j]).strip() for (j, _), t in zip(notes, texts)}

    def shown_unprotected(self, texts):
        """{text: what Redmine shows of it as a note in <notextile> only (the escaping before the
        fix)}, on the target issue: shows that each construct is live on this Redmine."""
        before = set(self.rendered_notes(self.target))
        for t in texts:
            note = "\n".join("<notextile>%s</notextile>" % line for line in t.split("\n"))
            self._api("PUT", "/issues/%d.json" % self.target, {"issue": {"notes": note}})
        shown = self.rendered_notes(self.target)
        added = sorted(j for j in shown if j not in before)
        self.assertEqual(len(added), len(texts))
        return {t: strip_tags(shown[j]).strip() for j, t in zip(added, texts)}

    def test_visitor_text_with_textile_characters_is_shown_literally(self):
        # README, Redmine: "Visitor text is kept literal (lines with Textile characters are wrapped
        # in <notextile>)"; Templates: `{{x}}` is "kept literal in Textile for Redmine".  Redmine's
        # Atom feed renders the notes as Redmine shows them.
        # A line that names the tag (or closes it, or opens <code>/<pre>) is protected all the same;
        # "x%x%" is RedCloth's own stand-in for "&".
        texts = ["-deleted- and +inserted+ text", "this is *urgent*, not notextile",
                 "say </notextile> *x* and <notextile>*y*</notextile>",
                 "<code>*x*</code> <pre>_y_</pre> <kbd>+z+</kbd>",
                 "x%x% x%& &amp; &lt;b&gt; &#35;1", 'img src="photo@2x.png" ==*x*==',
                 "h1. *line one*\n</notextile> *line two*\np. three"]
        self.assertEqual(self.shown_literally("rm-aud-lit1", texts), {t: t for t in texts})

    def test_visitor_text_with_redmine_link_syntax_is_shown_literally(self):
        # The same README lines: "user:LOGIN" is Redmine's link to a user, shown as the user's name.
        # Every link of Redmine 5.0 (parse_redmine_links, parse_wiki_links, macros, @mentions), also
        # escaped with Redmine's "!" (which the visitor's text must show), several on a line, at
        # a line's start and after punctuation.
        c = self.__class__
        live = ["my login is user:admin", "ask user:anna",
                "#%d and ##%d, see #note-1 or r12 (commit:abc1234)" % (c.target, c.target),
                "@anna and @admin, user#%d user@admin" % c.admin_id,
                "version:1.0 version#%d attachment:notes.txt project:%s project#%d"
                % (c.version, PROJECT, c.project),
                "document#%d document:Greetings news#%d news:Greetings forum#%d forum:Support message#%d"
                % (c.document, c.news, c.forum, c.message),
                "source:trunk/a.c export:trunk/a.c %s:r12 %s:#%d version:\"1.0\"" % (PROJECT, PROJECT, c.target),
                "[[Foo]] [[#anchor]] [[%s:Foo|text]] {{hello_world}} {{collapse(x)}}" % PROJECT,
                "!#%d !user:admin !@admin ![[Foo]] !{{hello_world}} !{{nomacro}}" % c.target,
                "r12 first\n@admin second\n[[Foo]] third\n#%d fourth" % c.target,
                "(#%d),#%d.[user:admin] -r12 (@anna) *user:admin* _#%d_" % (c.target, c.target, c.target)]
        # Inside words Redmine links nothing: these stay as typed, too.
        inert = ["email@host.example a#1 br12 x_@admin superuser:admin mydocument#1 User:admin",
                 "plain: 10:00, Source: the web, R12"]
        unprotected = self.shown_unprotected(live)
        self.assertEqual([t for t in live if unprotected[t] == t], [])
        texts = live + inert
        self.assertEqual(self.shown_literally("rm-aud-lit2", texts), {t: t for t in texts})


if __name__ == "__main__":
    unittest.main()
