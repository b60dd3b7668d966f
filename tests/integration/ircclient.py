"""A small, strict IRC client for the integration tests.

It speaks raw IRC over a socket, parses what it receives (IRCv3 tags
included) and lets a test wait for a specific line with a timeout. Nothing is
skipped silently: lines a test did not wait for stay in `backlog` and can be
inspected.
"""
import re
import socket
import time

TAG_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


def unescape(value):
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            out.append(TAG_UNESCAPE.get(value[i + 1], value[i + 1]))
            i += 2
            continue
        if c != "\\":
            out.append(c)
        i += 1
    return "".join(out)


def escape(value):
    return (value.replace("\\", "\\\\").replace(";", "\\:").replace(" ", "\\s")
            .replace("\r", "\\r").replace("\n", "\\n"))


class Message:
    """One parsed line: tags (dict), source, command (upper case), params."""

    def __init__(self, line):
        self.raw = line
        self.tags = {}
        self.source = None
        rest = line
        if rest.startswith("@"):
            tags, _, rest = rest[1:].partition(" ")
            for item in tags.split(";"):
                key, _, value = item.partition("=")
                self.tags[key] = unescape(value)
        rest = rest.lstrip(" ")
        if rest.startswith(":"):
            self.source, _, rest = rest[1:].partition(" ")
        params = []
        while rest:
            rest = rest.lstrip(" ")
            if rest.startswith(":"):
                params.append(rest[1:])
                break
            word, _, rest = rest.partition(" ")
            if word:
                params.append(word)
        self.command = params[0].upper() if params else ""
        self.params = params[1:]

    @property
    def nick(self):
        return self.source.split("!")[0] if self.source else None

    def __repr__(self):
        return "Message(%r)" % self.raw


class Client:
    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.backlog = []
        self.closed = False
        self.nick = None

    def send(self, line):
        data = line.encode() if isinstance(line, str) else line
        self.sock.sendall(data + b"\r\n")

    def send_raw(self, data):
        self.sock.sendall(data)

    def _read_line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def expect(self, match, timeout=5, consume=True):
        """Waits for a line for which match(msg) is true (match may be a
        command name). Returns it; raises AssertionError on timeout."""
        if isinstance(match, str):
            cmd = match.upper()
            match = lambda m, cmd=cmd: m.command == cmd
        for i, m in enumerate(self.backlog):
            if match(m):
                if consume:
                    del self.backlog[i]
                return m
        deadline = time.monotonic() + timeout
        while True:
            line = self._read_line(deadline)
            if line is None:
                raise AssertionError("no matching line within %ss (closed=%s); got: %s"
                                     % (timeout, self.closed, self.backlog[-15:]))
            m = Message(line)
            if m.command == "PING":
                self.send("PONG :" + (m.params[0] if m.params else ""))
            if match(m):
                return m
            self.backlog.append(m)

    def collect(self, timeout=0.5):
        """Everything that arrives within timeout (plus the backlog)."""
        deadline = time.monotonic() + timeout
        out, self.backlog = self.backlog, []
        while True:
            line = self._read_line(deadline)
            if line is None:
                return out
            out.append(Message(line))

    def expect_closed(self, timeout=5):
        """Waits for the server to close the connection; returns the lines before."""
        deadline = time.monotonic() + timeout
        lines = []
        while not self.closed and time.monotonic() < deadline:
            line = self._read_line(deadline)
            if line is not None:
                lines.append(Message(line))
        assert self.closed, "connection still open; got %s" % lines[-10:]
        return self.backlog + lines

    def register(self, nick, caps=(), user=None):
        self.nick = nick
        if caps:
            self.send("CAP LS 302")
            self.expect(lambda m: m.command == "CAP" and m.params[1] == "LS")
            self.send("CAP REQ :" + " ".join(caps))
            ack = self.expect("CAP")
            assert ack.params[1] == "ACK", ack
        self.send("NICK " + nick)
        self.send("USER %s 0 * :%s" % (user or nick, "Real " + nick))
        if caps:
            self.send("CAP END")
        self.expect(lambda m: m.command in ("376", "422"))
        return self

    def join(self, room):
        self.send("JOIN " + room)
        self.expect(lambda m: m.command == "366" and m.params[1].lower() == room.lower())

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


ALL_CAPS = ("message-tags", "server-time", "echo-message", "batch", "labeled-response",
            "draft/chathistory", "setname")
