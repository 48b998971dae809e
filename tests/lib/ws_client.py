"""A minimal WebSocket client (RFC 6455) for the tests of the admin page's live updates.

Python 3 standard library only: the handshake, text messages, pings answered, close.

    ws = WebSocket(port, "/admin/ws", headers={"Cookie": "br_admin=..."}, subprotocol="br-admin")
    ws.recv_json(timeout=5)   # {"type": "conversation", "id": 1}
    ws.close()

A refused handshake raises Refused with the HTTP status (None when the server hung up
without an answer).
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Refused(Exception):
    """The server did not switch protocols: status is its HTTP status, or None when it hung up."""

    def __init__(self, status, text=""):
        super().__init__("WebSocket refused: %s %s" % (status, text))
        self.status = status


class Closed(Exception):
    """The connection ended (a close frame or the end of the stream)."""


class WebSocket:
    def __init__(self, port, path, headers=None, subprotocol="br-admin", host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buf = b""
        try:
            self._handshake(host, port, path, headers or {}, subprotocol)
        except BaseException:
            self.sock.close()
            raise

    # --- the handshake -----------------------------------------------------------------

    def _handshake(self, host, port, path, headers, subprotocol):
        key = base64.b64encode(os.urandom(16)).decode()
        # A Host in headers (what a reverse proxy passes on) replaces the address connected to.
        lines = ["GET %s HTTP/1.1" % path] + ([] if "Host" in headers else ["Host: %s:%d" % (host, port)]) + [
            "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
        if subprotocol:
            lines.append("Sec-WebSocket-Protocol: %s" % subprotocol)
        lines += ["%s: %s" % kv for kv in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            try:
                chunk = self.sock.recv(4096)
            except (ConnectionResetError, socket.timeout):
                chunk = b""
            if not chunk:
                raise Refused(None, "the server hung up")
            head += chunk
        head, self._buf = head.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        got = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            got[name.strip().lower()] = value.strip()
        if status != 101:
            raise Refused(status, status_line)
        expect = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if got.get("sec-websocket-accept") != expect:
            raise AssertionError("bad Sec-WebSocket-Accept: %r" % got)
        self.protocol = got.get("sec-websocket-protocol")

    # --- frames --------------------------------------------------------------------------

    def _read(self, n, deadline):
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no WebSocket message in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("the server closed the connection")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _send_frame(self, opcode, payload=b""):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def recv(self, timeout=10):
        """The next text message (str).  Raises socket.timeout, or Closed when the server ends it."""
        deadline = time.monotonic() + timeout
        parts = []
        while True:
            b0, b1 = self._read(2, deadline)
            fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if b1 & 0x80:
                raise AssertionError("the server masked a frame")
            if n == 126:
                n = struct.unpack("!H", self._read(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8, deadline))[0]
            payload = self._read(n, deadline)
            if opcode == 0x8:
                raise Closed("close frame %r" % payload[:2])
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if fin:
                return b"".join(parts).decode("utf-8")

    def recv_json(self, timeout=10):
        return json.loads(self.recv(timeout))

    def close(self):
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()
