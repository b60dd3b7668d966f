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
    def __init__(self, port, host="127.0.0.1", timeout=10, rcvbuf=None, tls=None, unix=None):
        """tls: an ssl.SSLContext to speak TLS with (server name "localhost");
        unix: a Unix socket path to connect to instead (port is then unused)."""
        if unix is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix)
        elif tls is not None:
            raw = socket.create_connection((host, port), timeout=timeout)
            self.sock = tls.wrap_socket(raw, server_hostname="localhost")
        elif rcvbuf is None:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        else:
            # A small receive buffer, set before connecting so that the
            # advertised window stays small (a slow reader).
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
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

    # ---- additions for the feature tests ----

    def sync(self, token=None, timeout=5):
        """Sends PING and waits for its PONG: everything the server sent
        before it is then in the backlog (or was consumed)."""
        Client._sync_counter += 1
        token = token or "sync%d" % Client._sync_counter
        self.send("PING :" + token)
        return self.expect(lambda m: m.command == "PONG" and m.params and m.params[-1] == token,
                           timeout=timeout)

    def expect_batch(self, kind=None, timeout=5):
        """Waits for a whole batch (BATCH +ref [kind] ... BATCH -ref); returns
        (start line, the lines tagged with the batch, in order)."""
        start = self.expect(lambda m: m.command == "BATCH" and m.params and m.params[0].startswith("+")
                            and (kind is None or (len(m.params) > 1 and m.params[1] == kind)),
                            timeout=timeout)
        ref = start.params[0][1:]
        self.expect(lambda m: m.command == "BATCH" and m.params and m.params[0] == "-" + ref,
                    timeout=timeout)
        inside = [m for m in self.backlog if m.tags.get("batch") == ref]
        self.backlog = [m for m in self.backlog if m.tags.get("batch") != ref]
        return start, inside

    def history(self, *args, timeout=5):
        """CHATHISTORY <args...>; returns the lines of the answering batch
        (the client needs the batch capability)."""
        self.send("CHATHISTORY " + " ".join(str(a) for a in args))
        return self.expect_batch("chathistory", timeout=timeout)[1]

    def drain(self):
        """Forgets the backlog."""
        self.backlog = []

    def settle(self):
        """Waits until the server has sent everything caused so far (a PING
        round trip) and forgets it all."""
        self.sync()
        self.drain()
        return self

    def login(self, nick, caps=(), user=None):
        """register() and forget the welcome burst, so that later expects
        only see what comes after it."""
        self.register(nick, caps, user)
        self.drain()
        return self


Client._sync_counter = 0


ALL_CAPS = ("message-tags", "server-time", "echo-message", "batch", "labeled-response",
            "draft/chathistory", "setname")
