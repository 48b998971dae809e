"""Issue "One person, one thread": a person with several devices (Chatra client ids) and
e-mails gets one contact and one thread; the identity map is shown by `identities` and a
merge can be undone with `unmerge`."""

import json
import os
import re
import signal
import sys
import time
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import COMMENT_SOURCE_RE, E2ECase, calls  # noqa: E402

# Client ids as long as Chatra's (17 characters), so that masking them shows.
L = "laptopQm7TzR2pLx9"     # Maria's laptop
P = "phoneVbN4cW8kDs3j"     # Maria's phone
EMAIL = "maria@example.org"

PHONE_DEVICE = {"browser": "Safari", "os": "iOS", "ip": "10.0.0.1", "city": "Madrid"}
PHONE_DEVICE_TEXT = "browser Safari, OS iOS, IP 10.0.0.1, city Madrid"
JOINED = "<b>A new device joined this conversation</b>: "
TYPED = (". Matched on an unverified e-mail maria@example.org (typed in the chat); "
         "replies go to the device the visitor last wrote from.")
SITE = ". Matched on the e-mail maria@example.org (set by the site)."
CONTINUES = "<b>This conversation continues in task #%d</b>"
CLOSE_BODY = {"status": {"id": 3}}
DELETE_BODY = {"isDeleted": True}


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def masked(client_id):
    return "%s...(%d chars)" % (client_id[:4], len(client_id))


def num(ref):
    """"contact:12" -> 12"""
    return int(str(ref).rsplit(":", 1)[-1])


class IdentityCase(E2ECase):
    maxDiff = None

    # --- driving ---------------------------------------------------------------

    def send(self, event, client, *messages, **fields):
        """A webhook from device client; its chat id is chat-<client> unless given."""
        self.post(chat_event(event, client, list(messages), **fields))

    def laptop_with_email(self, **fields):
        """The laptop opens a chat with the typed e-mail: (T1, C1)."""
        fields.setdefault("name", "Maria Lopez")
        fields.setdefault("email", EMAIL)
        task, contact = self.open_chat(L, [msg("l1", "Hello from my laptop")], **fields)
        self.wait_idle()
        return task, contact

    def phone_without_email(self):
        """The phone opens a chat without an e-mail: (T2, C2)."""
        task, contact = self.open_chat(P, [msg("p1", "Hello from my phone")], **PHONE_DEVICE)
        self.wait_idle()
        return task, contact

    # --- reading ---------------------------------------------------------------

    def mark(self):
        return len(self.fakes.planfix_requests())

    def since(self, mark, posts_only=True):
        """(call, body) of Planfix requests after mark (POSTs only by default, lists left out)."""
        out = []
        for r in self.fakes.planfix_requests()[mark:]:
            if posts_only and (r["method"] != "POST" or r["path"].endswith("/list")):
                continue
            out.append(("%s %s" % (r["method"], r["path"]), r["body"]))
        return out

    def thread(self, task, mark=0):
        """(description, owner id or None) of the comments the bridge posted on task."""
        return [(p["body"]["description"], (p["body"].get("owner") or {}).get("id"))
                for p in self.fakes.planfix_requests()[mark:]
                if p["method"] == "POST" and p["path"] == "/rest/task/%d/comments/" % task]

    def live_contacts(self):
        return [c["id"] for c in self.fakes.planfix_contacts() if not c.get("isDeleted")]

    def active_tasks(self):
        return [t["id"] for t in self.fakes.planfix_tasks() if not t["isDeleted"] and t["statusActive"]]

    def identities(self, email=None):
        args = ["identities", "--config", self.bridge.config_path]
        if email is not None:
            args += ["--email", email]
        r = self.bridge.run(*args)
        self.assertEqual(r.returncode, 0, "identities failed: %s %s" % (r.stdout, r.stderr))
        for client_id in (L, P):
            self.assertNotIn(client_id, r.stdout + r.stderr, "a full client id in the identities output")
        return json.loads(r.stdout)

    def unmerge(self, merge):
        return self.bridge.run("unmerge", "--config", self.bridge.config_path, "--merge", str(merge))

    def replies_to(self, task, text):
        """An employee answers on task; returns the clientId the reply went to."""
        n = len(self.fakes.chatra_messages())
        self.fakes.employee_comment(task, owner="user:5", name="Anna", text=text)
        status, body = self.bridge.post_planfix(task)
        self.assertEqual(status, 200, body)
        sent = wait_until(lambda: self.fakes.chatra_messages()[n:], message="the reply %r was not sent" % text)
        self.assertEqual([m["text"] for m in sent], [text])
        return sent[0]["clientId"]

    def merge_late(self, t1, c1, t2, **fields):
        """The phone's fragment that brings the laptop's e-mail; waits for the whole merge."""
        fields.setdefault("email", " Maria@Example.ORG ")
        self.send("chatFragment", P, msg("p2", "It is me, Maria, the one on the laptop"), **dict(PHONE_DEVICE, **fields))
        self.wait_pf("/rest/task/%d" % t2)          # the close of T2
        self.wait_comment_posts(t1, 2)              # the fragment's message and the join note
        self.wait_idle()


# --- 1. the identity map ----------------------------------------------------------------

class TestIdentityMap(IdentityCase):
    def test_identities_lists_persons_emails_and_masked_devices(self):
        self.start_bridge()
        self.assertEqual(self.identities(), [])
        t1, c1 = self.laptop_with_email(email="  Maria@Example.ORG ")
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), email="MARIA@example.org ", **PHONE_DEVICE)
        self.wait_comment_posts(t1, 2)
        self.wait_idle()
        # Someone else, without an e-mail.
        t3, c3 = self.open_chat("otherVisitor00001", [msg("o1", "Hi")])
        self.wait_idle()

        people = self.identities()
        self.assertEqual(len(people), 2, people)
        maria = [p for p in people if p["emails"]][0]
        other = [p for p in people if not p["emails"]][0]
        self.assertIsInstance(maria["person"], int)
        self.assertIn(str(maria["contact"]), (str(num(c1)), c1))
        self.assertEqual(maria["emails"], [{"email": EMAIL, "verified": False}])
        [conv] = maria["conversations"]
        self.assertEqual(conv["channel"], "shop")
        self.assertEqual(conv["tasks"], 1)
        self.assertEqual(str(conv["task"]), str(t1))
        self.assertEqual(conv["devices"], [masked(L), masked(P)])
        self.assertNotIn("merged_into", conv)
        # A device that joined is recorded too (merged_conversation 0), so that it can be undone.
        [join] = maria["merges"]
        self.assertEqual((join["email"], join["verified"], join["merged_conversation"], join["undone"]),
                         (EMAIL, False, 0, False))
        self.assertIn(str(other["contact"]), (str(num(c3)), c3))
        self.assertEqual([c["devices"] for c in other["conversations"]], [[masked("otherVisitor00001")]])
        self.assertEqual(other["merges"], [])
        self.assertNotEqual(maria["person"], other["person"])

        # --email is case-insensitive; an unknown e-mail finds nobody.
        self.assertEqual(self.identities("MARIA@example.org"), [maria])
        self.assertEqual(self.identities("nobody@example.org"), [])


# --- 2a. a second device with a known e-mail ------------------------------------------------

class TestEarlyEmailJoin(IdentityCase):
    def test_typed_email_on_a_new_device_joins_the_thread(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        mark = self.mark()
        # One message per webhook here: several in one webhook become one comment (coalesced).
        self.send("chatStarted", P, msg("p1", "Me again, from my phone"),
                  email="  MARIA@Example.org ", name="Maria Lopez", **PHONE_DEVICE)
        self.wait_comment_posts(t1, 2)
        self.assert_quiet()
        self.assertEqual(self.thread(t1), [
            ("Me again, from my phone", c1),
            (JOINED + PHONE_DEVICE_TEXT + TYPED, None),
        ])
        # The message, the note, and the visit on the contact's card (issue 10).
        self.assertEqual([c for c, _ in self.since(mark)], ["POST /rest/task/%d/comments/" % t1] * 2
                         + ["POST /rest/contact/%d/comments/" % num(c1)])
        bodies = [b for _, b in self.since(mark)][:2]
        self.assertRegex(bodies[0]["sourceObjectId"], COMMENT_SOURCE_RE)
        # The note has a key of its own too (so that a retry does not post it twice).
        self.assertRegex(bodies[1].get("sourceObjectId", ""), UUID_RE)
        self.assertEqual(len({b["sourceObjectId"] for b in bodies}), 2)
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(self.live_contacts(), [num(c1)])
        # Replies go to the device the visitor last wrote from.
        self.assertEqual(self.replies_to(t1, "Hello Maria on the phone"), P)

    def test_email_set_by_the_site_in_info_joins_with_a_site_note(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), info={"email": " Maria@Example.org"},
                  browser="Chrome 120", device="mobile", country="Spain")
        self.wait_comment_posts(t1, 2)
        self.assert_quiet()
        self.assertEqual(self.thread(t1), [
            ("Hi from the phone", c1),
            (JOINED + "browser Chrome 120, device mobile, country Spain" + SITE, None),
        ])
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        self.assertEqual(self.live_contacts(), [num(c1)])

    def test_email_in_integration_data_without_device_details(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), integrationData={"email": EMAIL})
        self.wait_comment_posts(t1, 2)
        self.assert_quiet()
        self.assertEqual(self.thread(t1), [
            ("Hi from the phone", c1),
            (JOINED + "no device details" + SITE, None),
        ])
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)
        [maria] = self.identities(EMAIL)
        # The site's word upgrades the typed e-mail.
        self.assertEqual(maria["emails"], [{"email": EMAIL, "verified": True}])


# --- 2b. the e-mail arrives later: two threads become one -------------------------------------

class TestLateEmailMerge(IdentityCase):
    def test_late_email_merges_the_phone_thread_into_the_laptop_thread(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        t2, c2 = self.phone_without_email()
        self.assertNotEqual(t1, t2)
        self.assertNotEqual(c1, c2)
        mark = self.mark()
        # The merging fragment also brings a name: a merge, not a contact update.
        self.merge_late(t1, c1, t2, name="Maria Lopez")
        posts = self.since(mark)

        # T1: the fragment's message by C1, then the join note.
        self.assertEqual(self.thread(t1, mark), [
            ("It is me, Maria, the one on the laptop", c1),
            (JOINED + PHONE_DEVICE_TEXT + TYPED, None),
        ])
        # T2: a note pointing to T1, then completed.
        t2_posts = [(c, b) for c, b in posts if c.startswith("POST /rest/task/%d" % t2)]
        self.assertEqual([c for c, _ in t2_posts], ["POST /rest/task/%d/comments/" % t2, "POST /rest/task/%d" % t2],
                         posts)
        note = t2_posts[0][1]
        self.assertNotIn("owner", note)
        self.assertTrue(note["description"].startswith(CONTINUES % t1), note["description"])
        self.assertEqual(t2_posts[1][1], CLOSE_BODY)
        # C2 is deleted; C1 is not touched.
        contact_posts = [(c, b) for c, b in posts if c.startswith("POST /rest/contact/")]
        self.assertEqual(contact_posts, [("POST /rest/contact/%d" % num(c2), DELETE_BODY)], posts)
        self.assertEqual(self.live_contacts(), [num(c1)])
        self.assertEqual(self.active_tasks(), [t1])
        self.assertEqual(set(c for c, _ in posts),
                         {"POST /rest/task/%d/comments/" % t1, "POST /rest/task/%d/comments/" % t2,
                          "POST /rest/task/%d" % t2, "POST /rest/contact/%d" % num(c2)})
        self.assertEqual(len(posts), 5, posts)

        # Later phone messages go to T1 too, by C1.
        self.send("chatFragment", P, msg("p3", "Any news?"), **PHONE_DEVICE)
        self.wait_comment_posts(t1, 3)
        self.wait_idle()
        self.assertEqual(self.thread(t1, mark)[2:], [("Any news?", c1)])
        self.assertEqual(self.thread(t2, mark), [(note["description"], None)])
        # The employee's answer on T1 goes to the phone, where the visitor last wrote.
        self.assertEqual(self.replies_to(t1, "Yes: it ships tomorrow"), P)
        self.assert_quiet()

        # The identity map: one person, both devices in T1's conversation, the merge.
        people = self.identities()
        self.assertEqual(len(people), 1, people)
        [maria] = people
        self.assertIn(str(maria["contact"]), (str(num(c1)), c1))
        self.assertEqual(maria["emails"], [{"email": EMAIL, "verified": False}])
        survivor = [c for c in maria["conversations"] if str(c.get("task")) == str(t1)]
        self.assertEqual(len(survivor), 1, maria)
        self.assertEqual(survivor[0]["devices"], [masked(L), masked(P)])
        self.assertNotIn("merged_into", survivor[0])
        [merge] = maria["merges"]
        self.assertEqual(merge["merge"], 1)
        self.assertEqual((merge["email"], merge["verified"], merge["undone"]), (EMAIL, False, False))
        self.assertEqual(merge["survivor_conversation"], survivor[0]["conversation"])
        self.assertNotEqual(merge["merged_conversation"], survivor[0]["conversation"])
        self.assertLessEqual(abs(merge["at"] / 1000.0 - time.time()), 60)
        for conv in maria["conversations"]:
            if conv["conversation"] == merge["merged_conversation"]:
                self.assertEqual(conv.get("merged_into"), merge["survivor_conversation"])

    def test_laptop_and_phone_end_to_end_one_contact_one_thread(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.send("chatFragment", L, msg("l2", "Is the blue kettle in stock?"), name="Maria Lopez", email=EMAIL)
        self.wait_comment_posts(t1, 1)
        t2, c2 = self.phone_without_email()
        self.merge_late(t1, c1, t2)
        # The visitor goes back and forth between the devices.
        expected = ["Is the blue kettle in stock?", "It is me, Maria, the one on the laptop"]
        for i, (device, fields) in enumerate([(L, {"name": "Maria Lopez", "email": EMAIL}), (P, PHONE_DEVICE),
                                              (L, {"name": "Maria Lopez", "email": EMAIL}), (P, PHONE_DEVICE)]):
            text = "message %d from the %s" % (i, "laptop" if device == L else "phone")
            self.send("chatFragment", device, msg("x%d" % i, text), **fields)
            expected.append(text)
            self.wait_comment_posts(t1, len(expected) + 1)
        self.assert_quiet()
        self.assertEqual(self.live_contacts(), [num(c1)])
        self.assertEqual(self.active_tasks(), [t1])
        thread = self.thread(t1)
        self.assertEqual([d for d, o in thread if o is not None], expected)
        self.assertEqual({o for d, o in thread if o is not None}, {c1})
        # One note only: the phone joined.  No "new visit" for going back to a known device.
        self.assertEqual([d for d, o in thread if o is None], [JOINED + PHONE_DEVICE_TEXT + TYPED])
        self.assertEqual(len(self.pf("/rest/task/%d" % t2, "POST")), 1)
        self.assertEqual(len(self.pf("/rest/task/%d" % t1, "POST")), 0)


# --- 3. merge_policy ---------------------------------------------------------------------------

class TestMergePolicy(IdentityCase):
    def test_verified_policy_does_not_merge_on_a_typed_email(self):
        self.start_bridge(channel={"merge_policy": "verified"})
        t1, c1 = self.laptop_with_email()
        n = len(self.fakes.planfix_tasks())
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), email=EMAIL, **PHONE_DEVICE)
        t2 = self.wait_task(n + 1)[n]["id"]
        self.send("chatFragment", P, msg("p2", "Typed again"), email=EMAIL, **PHONE_DEVICE)
        self.wait_comment_posts(t2, 1)
        self.assert_quiet()
        self.assertEqual(self.thread(t1), [])
        self.assertEqual([d for d, _ in self.thread(t2)], ["Typed again"])
        self.assertEqual(sorted(self.active_tasks()), sorted([t1, t2]))
        self.assertEqual(self.pf("/rest/task/%d" % t1, "POST") + self.pf("/rest/task/%d" % t2, "POST"), [])
        # Whatever contact the phone got (Planfix finds C1 by the e-mail), none is deleted.
        self.assertEqual(self.live_contacts(), [c["id"] for c in self.fakes.planfix_contacts()])
        self.assertEqual([b for c, b in self.since(0) if c.startswith("POST /rest/contact/") and b == DELETE_BODY],
                         [])
        for p in self.identities():
            self.assertEqual(p["merges"], [])

    def test_verified_policy_joins_and_merges_on_the_sites_email(self):
        self.start_bridge(channel={"merge_policy": "verified"})
        # Both sides must be the site's word: the laptop is signed in too.
        t1, c1 = self.laptop_with_email(email=None, info={"email": EMAIL})
        # A new device with the site's e-mail joins.
        self.send("chatStarted", "tabletXk3Lm9Qw2Ze", msg("b1", "Hi from the tablet"), info={"email": EMAIL})
        self.wait_comment_posts(t1, 2)
        self.wait_idle()
        self.assertEqual(self.thread(t1), [("Hi from the tablet", c1), (JOINED + "no device details" + SITE, None)])
        # A typed e-mail first (no merge), then the site's e-mail (merge).
        n = len(self.fakes.planfix_tasks())
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), email=EMAIL, **PHONE_DEVICE)
        t2 = self.wait_task(n + 1)[n]["id"]
        self.wait_idle()
        self.assertEqual(len(self.thread(t1)), 2)
        mark = self.mark()
        self.send("chatFragment", P, msg("p2", "Logged in now"), info={"email": EMAIL}, **PHONE_DEVICE)
        self.wait_pf("/rest/task/%d" % t2)
        self.wait_comment_posts(t1, 4)
        self.assert_quiet()
        self.assertEqual(self.thread(t1, mark), [("Logged in now", c1), (JOINED + PHONE_DEVICE_TEXT + SITE, None)])
        [(note, _)] = self.thread(t2, mark)
        self.assertTrue(note.startswith(CONTINUES % t1), note)
        self.assertEqual([b for c, b in self.since(mark) if c == "POST /rest/task/%d" % t2], [CLOSE_BODY])
        self.assertEqual(self.active_tasks(), [t1])
        # The tablet's join (merged_conversation 0) and the phone's merge.
        join, merge = self.identities(EMAIL)[0]["merges"]
        self.assertEqual(join["merged_conversation"], 0)
        self.assertEqual((merge["email"], merge["verified"], merge["undone"]), (EMAIL, True, False))
        # The phone's contact is deleted only when it is not C1 (Planfix found C1 by the e-mail).
        t2_contact = self.fakes.planfix_task(t2)["counterparty"]
        deletes = [c for c, b in self.since(mark) if b == DELETE_BODY]
        if t2_contact == c1:
            self.assertEqual(deletes, [])
        else:
            self.assertEqual(deletes, ["POST /rest/contact/%d" % num(t2_contact)])
        self.assertEqual(self.live_contacts(), [num(c1)])

    def test_off_policy_never_merges(self):
        self.start_bridge(channel={"merge_policy": "off"})
        t1, c1 = self.laptop_with_email()
        n = len(self.fakes.planfix_tasks())
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), info={"email": EMAIL}, **PHONE_DEVICE)
        t2 = self.wait_task(n + 1)[n]["id"]
        self.send("chatStarted", "tabletXk3Lm9Qw2Ze", msg("b1", "Hi from the tablet"), email=EMAIL)
        t3 = self.wait_task(n + 2)[n + 1]["id"]
        self.wait_idle()
        self.send("chatFragment", P, msg("p2", "Still the e-mail from the site"), info={"email": EMAIL}, **PHONE_DEVICE)
        self.wait_comment_posts(t2, 1)
        self.assert_quiet()
        self.assertEqual(len({t1, t2, t3}), 3)
        self.assertEqual(self.thread(t1), [])
        self.assertEqual(self.thread(t2), [("Still the e-mail from the site", self.fakes.planfix_task(t2)["counterparty"])])
        self.assertEqual(self.thread(t3), [])
        self.assertEqual(sorted(self.active_tasks()), sorted([t1, t2, t3]))
        for t in (t1, t2, t3):
            self.assertEqual(self.pf("/rest/task/%d" % t, "POST"), [])
        self.assertEqual([b for c, b in self.since(0) if b == DELETE_BODY], [])
        for p in self.identities():
            self.assertEqual(p["merges"], [])


# --- 4. introductions ------------------------------------------------------------------------

class TestIntroductions(IdentityCase):
    def anonymous_chat(self):
        task, contact = self.open_chat(L, [msg("l1", "Hello")])
        self.wait_idle()
        return task, contact

    def test_new_name_email_and_phone_update_the_contact_after_the_comments(self):
        self.start_bridge()
        t1, c1 = self.anonymous_chat()
        mark = self.mark()
        self.send("chatFragment", L, msg("l2", "I am Maria, call me"), name="Maria  Elena Lopez",
                  email=" Maria@Example.ORG ", phone="+34 600 000 000")
        self.wait_pf("/rest/contact/%d" % num(c1))
        self.assert_quiet()
        posts = self.since(mark)
        self.assertEqual([c for c, _ in posts], ["POST /rest/task/%d/comments/" % t1]
                         + ["POST /rest/contact/%d" % num(c1)])
        self.assertEqual(posts[1][1], {"name": "Maria", "lastname": "Elena Lopez", "email": EMAIL,
                                       "phones": [{"number": "+34 600 000 000", "type": 1}]})
        self.assertEqual([d for d, _ in self.thread(t1)], ["I am Maria, call me"])
        # The same details again: no update.
        mark = self.mark()
        self.send("chatFragment", L, msg("l4", "Anyone?"), name="Maria  Elena Lopez", email="maria@example.org",
                  phone="+34 600 000 000")
        self.wait_comment_posts(t1, 2)
        self.assert_quiet()
        self.assertEqual([c for c, _ in self.since(mark)], ["POST /rest/task/%d/comments/" % t1])
        self.assertEqual(self.identities(EMAIL)[0]["emails"], [{"email": EMAIL, "verified": False}])

    def test_a_single_word_name_has_no_lastname(self):
        self.start_bridge()
        t1, c1 = self.anonymous_chat()
        self.send("chatFragment", L, msg("l2", "Maria here"), name="Maria")
        [update] = self.wait_pf("/rest/contact/%d" % num(c1))
        self.assert_quiet()
        self.assertEqual(update["body"], {"name": "Maria"})

    def test_only_an_email_sends_only_the_email(self):
        self.start_bridge()
        t1, c1 = self.anonymous_chat()
        self.send("chatFragment", L, msg("l2", "Write to me"), email="Maria@Example.org")
        [update] = self.wait_pf("/rest/contact/%d" % num(c1))
        self.assert_quiet()
        self.assertEqual(update["body"], {"email": EMAIL})

    def test_a_later_phone_keeps_the_known_name_and_email(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.send("chatFragment", L, msg("l2", "My number"), name="Maria Lopez", email=EMAIL, phone="+34 611")
        [update] = self.wait_pf("/rest/contact/%d" % num(c1))
        self.assert_quiet()
        self.assertEqual(update["body"], {"name": "Maria", "lastname": "Lopez", "email": EMAIL,
                                          "phones": [{"number": "+34 611", "type": 1}]})


# --- 5. visits ----------------------------------------------------------------------------

class TestVisits(IdentityCase):
    def test_a_new_chat_of_a_known_device_adds_a_visit_note(self):
        self.start_bridge()
        t1, c1 = self.open_chat(L, [msg("l1", "Hello")], name="Maria Lopez", chatId="chat-one")
        self.wait_idle()
        mark = self.mark()
        visit = chat_event("chatStarted", L, [msg("l2", "Back again")], name="Maria Lopez", chatId="chat-two",
                           browser="Firefox", os="Linux", ip="1.2.3.4", city="Berlin")
        self.post(visit)
        self.wait_comment_posts(t1, 2)
        self.assert_quiet()
        self.assertEqual(self.thread(t1), [("Back again", c1),
                                           ("<b>New visit</b>: browser Firefox, OS Linux, IP 1.2.3.4, city Berlin.",
                                            None)])
        self.assertEqual([c for c, _ in self.since(mark)], ["POST /rest/task/%d/comments/" % t1] * 2
                         + ["POST /rest/contact/%d/comments/" % num(c1)])
        # The same webhook again, and a fragment of that chat: no second note.
        self.post(visit)
        self.send("chatFragment", L, msg("l3", "Same chat"), name="Maria Lopez", chatId="chat-two")
        self.wait_comment_posts(t1, 3)
        self.assert_quiet()
        self.assertEqual(self.thread(t1)[2:], [("Same chat", c1)])
        self.assertEqual(len(self.fakes.planfix_tasks()), 1)

    def test_switching_between_joined_devices_is_not_a_visit(self):
        # Each device keeps its own chat id; writing from the other device again is no new chat.
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        self.send("chatStarted", P, msg("p1", "Hi from the phone"), email=EMAIL, **PHONE_DEVICE)
        self.wait_comment_posts(t1, 2)
        self.wait_idle()
        self.send("chatFragment", L, msg("l2", "Back on the laptop"), email=EMAIL, name="Maria Lopez")
        self.wait_comment_posts(t1, 3)
        self.wait_idle()
        self.assertEqual(self.replies_to(t1, "Hello Maria on the laptop"), L)
        self.send("chatFragment", P, msg("p2", "And the phone again"), email=EMAIL, **PHONE_DEVICE)
        self.wait_comment_posts(t1, 4)
        self.wait_idle()
        self.assertEqual(self.replies_to(t1, "Hello Maria on the phone"), P)
        self.assert_quiet()
        self.assertEqual(self.thread(t1)[2:], [("Back on the laptop", c1), ("And the phone again", c1)])

    def test_a_visit_without_device_details(self):
        self.start_bridge()
        t1, c1 = self.open_chat(L, [msg("l1", "Hello")], chatId="chat-one")
        self.wait_idle()
        self.send("chatStarted", L, msg("l2", "Again"), chatId="chat-two")
        self.wait_comment_posts(t1, 2)
        self.assert_quiet()
        self.assertEqual(self.thread(t1), [("Again", c1), ("<b>New visit</b>: no device details.", None)])


# --- 9. unmerge ---------------------------------------------------------------------------

class TestUnmerge(IdentityCase):
    def test_unmerge_gives_the_phone_its_own_thread_again(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        t2, c2 = self.phone_without_email()
        self.merge_late(t1, c1, t2)
        [merge] = self.identities()[0]["merges"]
        n = merge["merge"]

        r = self.unmerge(n)
        self.assertEqual(r.returncode, 0, (r.stdout, r.stderr))
        self.assertRegex(r.stdout, r"(?m)^merge %d undone: " % n)
        again = self.unmerge(n)
        self.assertEqual(again.returncode, 1, (again.stdout, again.stderr))
        self.assertIn("already undone", again.stdout + again.stderr)
        unknown = self.unmerge(n + 41)
        self.assertEqual(unknown.returncode, 1, (unknown.stdout, unknown.stderr))
        self.assertIn("there is no merge %d" % (n + 41), unknown.stdout + unknown.stderr)

        people = self.identities()
        merges = [m for p in people for m in p["merges"] if m["merge"] == n]
        self.assertTrue(merges, people)
        for m in merges:
            self.assertTrue(m["undone"], m)
        convs = {c["conversation"]: c for p in people for c in p["conversations"]}
        phone = convs.get(merge["merged_conversation"])
        self.assertIsNotNone(phone, people)
        self.assertNotIn("merged_into", phone)
        self.assertEqual(phone["devices"], [masked(P)])
        self.assertEqual(convs[merge["survivor_conversation"]]["devices"], [masked(L)])

        # The phone's next chat opens a task of its own (T2 is completed).
        mark = self.mark()
        n_tasks = len(self.fakes.planfix_tasks())
        self.send("chatStarted", P, msg("p9", "Hello again from the phone"), chatId="chat-phone-2", **PHONE_DEVICE)
        t3 = self.wait_task(n_tasks + 1)[n_tasks]
        self.assert_quiet()
        self.assertNotIn(t3["id"], (t1, t2))
        self.assertEqual(self.thread(t1, mark), [])
        # The new chat's message is in the new task (its text, or a comment on it).
        self.assertTrue("Hello again from the phone" in t3["description"]
                        or [d for d, _ in self.thread(t3["id"])] == ["Hello again from the phone"],
                        (t3["description"], self.thread(t3["id"])))
        self.assertIn(num(t3["counterparty"]), self.live_contacts())
        self.assertEqual(sorted(self.active_tasks()), sorted([t1, t3["id"]]))
        # Replies on each task go to its own device.
        self.assertEqual(self.replies_to(t3["id"], "To the phone"), P)
        self.assertEqual(self.replies_to(t1, "To the laptop"), L)


# --- durability -------------------------------------------------------------------------

class TestMergeSurvivesCrash(IdentityCase):
    def check_merged_once(self, t1, c1, t2, c2):
        stored_t1 = [(c["description"], c["owner"]["id"]) for c in self.fakes.planfix_comments(t1)]
        stored_t2 = [c["description"] for c in self.fakes.planfix_comments(t2)]
        self.assertEqual(stored_t1, [("It is me, Maria, the one on the laptop", c1),
                                     (JOINED + PHONE_DEVICE_TEXT + TYPED, "user:1")])
        self.assertEqual(len(stored_t2), 1, stored_t2)
        self.assertTrue(stored_t2[0].startswith(CONTINUES % t1), stored_t2)
        self.assertEqual([r["body"] for r in self.pf("/rest/task/%d" % t2, "POST")], [CLOSE_BODY])
        self.assertEqual([r["body"] for r in self.pf("/rest/contact/%d" % num(c2), "POST")], [DELETE_BODY])
        self.assertEqual(len(self.comment_posts(t1)), 2, calls(self.comment_posts(t1)))
        self.assertEqual(len(self.comment_posts(t2)), 1)
        self.assertEqual(self.live_contacts(), [num(c1)])
        self.assertEqual(self.active_tasks(), [t1])
        [maria] = self.identities()
        self.assertEqual([(m["merge"], m["undone"]) for m in maria["merges"]], [(1, False)])

    def test_sigkill_right_after_the_merging_fragment(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        t2, c2 = self.phone_without_email()
        self.send("chatFragment", P, msg("p2", "It is me, Maria, the one on the laptop"), email=EMAIL, **PHONE_DEVICE)
        self.assertEqual(self.bridge.kill(signal.SIGKILL), -signal.SIGKILL)
        self.bridge.start()
        self.wait_pf("/rest/task/%d" % t2)
        self.wait_comment_posts(t1, 2)
        self.assert_quiet(1.0)
        self.check_merged_once(t1, c1, t2, c2)
        # The merge holds after the restart: the phone still writes to T1.
        self.send("chatFragment", P, msg("p3", "Still here"), **PHONE_DEVICE)
        self.wait_comment_posts(t1, 3)
        self.assert_quiet()
        self.assertEqual(self.thread(t1)[2:], [("Still here", c1)])

    def test_sigkill_while_the_merge_notes_are_being_posted(self):
        self.start_bridge()
        t1, c1 = self.laptop_with_email()
        t2, c2 = self.phone_without_email()
        # Slow Planfix down so that the kill lands between the merge's requests.
        self.fakes.faults("planfix", [{"match": "POST /rest/task/%d/comments/" % t2, "action": "delay",
                                       "seconds": 0.5}])
        self.send("chatFragment", P, msg("p2", "It is me, Maria, the one on the laptop"), email=EMAIL, **PHONE_DEVICE)
        self.fakes.wait_requests("planfix", method="POST", path="/task/%d/comments/" % t2)
        self.assertEqual(self.bridge.kill(signal.SIGKILL), -signal.SIGKILL)
        # The delayed request still takes effect in the fake; start again after that.
        wait_until(lambda: self.fakes.planfix_comments(t2), message="the delayed note never landed")
        self.bridge.start()
        self.wait_pf("/rest/task/%d" % t2)
        self.wait_comment_posts(t1, 2)
        self.assert_quiet(1.0)
        stored_t2 = [c["description"] for c in self.fakes.planfix_comments(t2)]
        self.assertEqual(len(stored_t2), 1, stored_t2)
        self.assertEqual([r["body"] for r in self.pf("/rest/task/%d" % t2, "POST")], [CLOSE_BODY])
        stored_t1 = [(c["description"], c["owner"]["id"]) for c in self.fakes.planfix_comments(t1)]
        self.assertEqual(stored_t1, [("It is me, Maria, the one on the laptop", c1),
                                     (JOINED + PHONE_DEVICE_TEXT + TYPED, "user:1")])
        self.assertEqual([r["body"] for r in self.pf("/rest/contact/%d" % num(c2), "POST")], [DELETE_BODY])
        self.assertEqual(self.live_contacts(), [num(c1)])


if __name__ == "__main__":
    unittest.main()
