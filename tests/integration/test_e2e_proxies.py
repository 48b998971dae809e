"""Issue 12, point 5: behind a proxy.  With listen.trusted_proxies, a request from a trusted
peer is counted and logged under the client its X-Forwarded-For (or Forwarded) names; from
any other peer, and without the setting, those headers are ignored.  The tests' requests all
come from 127.0.0.1, so trusting 127.0.0.1 makes the test client a proxy."""

import os
import re
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg, wait_until  # noqa: E402
from e2e import E2ECase  # noqa: E402

# Two requests per address, then 429: nothing refills within a test (one token per 1000 s).
LIMITS = {"per_address_rps": 0.001, "per_address_burst": 2}
REFUSED = re.compile(r"request from (\S+) refused: (\d+) ")


class ProxyCase(E2ECase):
    def probe(self, headers):
        """A webhook to a channel that does not exist (404, or 429 over the limit): every one
        is refused, so the log says whom it was counted for."""
        return self.bridge.post("/webhooks/chatra/nochannel/x", {}, headers).status

    def refused(self):
        """[(address, status)] of the refusal lines so far."""
        return [(m.group(1), int(m.group(2))) for m in REFUSED.finditer(self.bridge.log())]

    def wait_refused(self, addr, status):
        wait_until(lambda: (addr, status) in self.refused(),
                   message=lambda: "no line refusing %s with %d: %s" % (addr, status, self.refused()))


class TestTrustedProxy(ProxyCase):
    def test_forwarded_for_decides_the_limit_and_the_log(self):
        self.start_bridge(listen={"trusted_proxies": ["127.0.0.1"]}, limits=LIMITS)
        a = {"X-Forwarded-For": "203.0.113.7"}
        self.assertEqual([self.probe(a) for _ in range(3)], [404, 404, 429])
        # Another client behind the same proxy has its own budget.
        self.assertEqual(self.probe({"X-Forwarded-For": "203.0.113.8"}), 404)
        # A proxy chain: the right-most address that is not a trusted proxy is the client, and
        # what the client wrote itself further left changes nothing.
        self.assertEqual(self.probe({"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 127.0.0.1"}), 429)
        self.assertEqual(self.probe({"X-Forwarded-For": "203.0.113.7, 203.0.113.9"}), 404)
        self.wait_refused("203.0.113.7", 404)
        self.wait_refused("203.0.113.7", 429)
        self.wait_refused("203.0.113.8", 404)
        self.wait_refused("203.0.113.9", 404)
        self.assertNotIn("127.0.0.1", [a for a, _ in self.refused()])
        self.assertNotIn("198.51.100.1", [a for a, _ in self.refused()])
        # /healthz still answers, with or without the header.
        self.assertEqual(self.bridge.get("/healthz", {"X-Forwarded-For": "203.0.113.7"}).status, 200)

    def test_wrong_secrets_are_counted_per_client(self):
        self.start_bridge(listen={"trusted_proxies": ["127.0.0.1"]}, limits={"bad_secrets_per_minute": 2})

        def wrong(client):
            return self.bridge.post_chatra({}, secret="wrong-secret-0000000",
                                           headers={"X-Forwarded-For": client}).status

        self.assertEqual([wrong("203.0.113.7") for _ in range(3)], [401, 401, 429])
        self.assertEqual(wrong("203.0.113.8"), 401)
        self.wait_refused("203.0.113.7", 429)
        self.wait_refused("203.0.113.8", 401)
        # The right secret from a client over its limit still goes through.
        self.post(chat_event("chatStarted", "client-1", [msg("m1", "Hello")]),
                  headers={"X-Forwarded-For": "203.0.113.7"})
        self.wait_task()

    def test_a_range_and_ipv6(self):
        self.start_bridge(listen={"trusted_proxies": ["10.0.0.0/8", "127.0.0.0/30", "::1"]}, limits=LIMITS)
        hdr = {"X-Forwarded-For": "2001:db8::7, 10.1.2.3"}
        self.assertEqual([self.probe(hdr) for _ in range(3)], [404, 404, 429])
        self.wait_refused("2001:db8::7", 429)
        # IPv4 with a port, and IPv6 in brackets with one, as some proxies write them.
        self.assertEqual(self.probe({"X-Forwarded-For": "192.0.2.10:51234"}), 404)
        self.assertEqual(self.probe({"X-Forwarded-For": "[2001:db8::8]:443"}), 404)
        self.wait_refused("192.0.2.10", 404)
        self.wait_refused("2001:db8::8", 404)

    def test_forwarded_header(self):
        self.start_bridge(listen={"trusted_proxies": ["127.0.0.1"]}, limits=LIMITS)
        fwd = {"Forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https;by=127.0.0.1'}
        self.assertEqual([self.probe(fwd) for _ in range(3)], [404, 404, 429])
        self.wait_refused("2001:db8:cafe::17", 429)
        # Several elements: the last one that is not a trusted proxy; names are case-blind.
        self.assertEqual(self.probe({"Forwarded": "for=192.0.2.60, For=192.0.2.61;proto=http, for=127.0.0.1"}),
                         404)
        self.wait_refused("192.0.2.61", 404)
        # X-Forwarded-For wins when both are there.
        self.assertEqual(self.probe({"Forwarded": "for=192.0.2.70", "X-Forwarded-For": "192.0.2.71"}), 404)
        self.wait_refused("192.0.2.71", 404)
        self.assertNotIn("192.0.2.70", [a for a, _ in self.refused()])

    def test_garbage_means_the_peer(self):
        self.start_bridge(listen={"trusted_proxies": ["127.0.0.1"]}, limits=LIMITS)
        garbage = [
            {"X-Forwarded-For": "hello"},
            {"X-Forwarded-For": "203.0.113.7, not-an-address"},
            {"X-Forwarded-For": "300.1.2.3"},
            {"X-Forwarded-For": "[203.0.113.7]"},
            {"Forwarded": "for=unknown"},
            {"Forwarded": "for=_hidden"},
            {"Forwarded": 'for="[2001:db8::1'},
            {"Forwarded": "proto=https"},
        ]
        statuses = [self.probe(h) for h in garbage]
        # All of them count for the peer: two 404s, then 429s.
        self.assertEqual(statuses, [404, 404] + [429] * (len(garbage) - 2))
        self.wait_refused("127.0.0.1", 429)
        self.assertEqual({a for a, _ in self.refused()}, {"127.0.0.1"})


class TestUntrustedPeer(ProxyCase):
    def check_ignored(self):
        statuses = [self.probe({"X-Forwarded-For": "203.0.113.%d" % i}) for i in range(3)]
        statuses.append(self.probe({"Forwarded": "for=203.0.113.50"}))
        # One budget for all of them: the peer's.
        self.assertEqual(statuses, [404, 404, 429, 429])
        self.wait_refused("127.0.0.1", 429)
        self.assertEqual({a for a, _ in self.refused()}, {"127.0.0.1"})

    def test_without_trusted_proxies_the_headers_are_ignored(self):
        self.start_bridge(limits=LIMITS)
        self.check_ignored()

    def test_a_peer_outside_the_ranges_is_not_believed(self):
        self.start_bridge(listen={"trusted_proxies": ["10.0.0.0/8", "127.0.0.2", "::1"]}, limits=LIMITS)
        self.check_ignored()


class TestTrustedProxiesConfig(E2ECase):
    def test_bad_entries_are_named(self):
        self.config["listen"]["trusted_proxies"] = [
            "127.0.0.1", "10.0.0.1/8", "300.1.2.3", "::1/129", 5, "10.0.0.0/x", "localhost", "fe80::/10"]
        r = self.bridge.run("check-config", "--config", self.bridge.write_config())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        out = r.stdout + r.stderr
        for i in (1, 2, 3, 4, 5, 6):
            self.assertIn("listen.trusted_proxies[%d]" % i, out)
        for i in (0, 7):
            self.assertNotIn("listen.trusted_proxies[%d]" % i, out)
        self.assertIn("bits set past its /8 prefix", out)
        self.assertIn("prefix length", out)
        self.config["listen"]["trusted_proxies"] = "127.0.0.1"
        r = self.bridge.run("check-config", "--config", self.bridge.write_config())
        self.assertEqual(r.returncode, 1)
        self.assertIn("listen.trusted_proxies: must be a list", r.stdout + r.stderr)
        self.config["listen"]["trusted_proxies"] = ["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]
        r = self.bridge.run("check-config", "--config", self.bridge.write_config())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
