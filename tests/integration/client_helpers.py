"""Driving the terminal client `chorus` in line mode from the tests.

ChorusClient runs the client binary with stdin/stdout pipes and parses what
it prints (the line-mode format of docs/CLIENT.md) into events: screens
(header, participants, status, numbered lines with likes, or the posts of
the timeline), pages ([view], [help], [ls], ...), the whole history
([history]), and notes ("! " errors, "* " information, "[dm] " direct
messages). A test waits for the event it needs with a timeout; events it
skipped stay in `events`.

The binary is $CHORUS_CLIENT, else the `chorus` next to $CHORUSD (so the
ASan run uses the ASan client), else build/chorus.
"""
import os
import queue
import re
import signal
import subprocess
import threading
import time

from conftest import CHORUSD, ROOT, SANITIZER_MARKS


def client_binary():
    if os.environ.get("CHORUS_CLIENT"):
        return os.environ["CHORUS_CLIENT"]
    beside = os.path.join(os.path.dirname(CHORUSD), "chorus")
    return beside if os.path.exists(beside) else os.path.join(ROOT, "build", "chorus")


LINE_RE = re.compile(r"^(\d+)\. ([^:]*): (.*?)(?:\tLikes: (\d+))?$")


class Line:
    """One numbered line of a screen or of the history."""

    def __init__(self, raw):
        m = LINE_RE.match(raw)
        assert m, "not a numbered line: %r" % raw
        self.n = int(m.group(1))
        self.user = m.group(2)
        self.text = m.group(3)
        self.likes = int(m.group(4) or 0)

    def __repr__(self):
        return "%d. %s: %s%s" % (self.n, self.user, self.text,
                                 " (Likes: %d)" % self.likes if self.likes else "")


POST_RE = re.compile(r"^(\S+) \((\d\d:\d\d|--:--)\) >> (.*)$")
TIMELINE = "&timeline"


class Post:
    """One post of the timeline: `user (HH:MM) >> text`."""

    def __init__(self, raw):
        m = POST_RE.match(raw)
        assert m, "not a post: %r" % raw
        self.user = m.group(1)
        self.time = m.group(2)
        self.text = m.group(3)

    def __repr__(self):
        return "%s (%s) >> %s" % (self.user, self.time, self.text)


def parse_lines(room, raw):
    """The lines of a screen or history of room: posts in the timeline,
    else numbered lines (checked to run 1..n)."""
    if room.split()[0].lower() == TIMELINE:
        return [Post(l) for l in raw]
    lines = [Line(l) for l in raw]
    assert [l.n for l in lines] == list(range(1, len(lines) + 1)), raw
    return lines


class Screen:
    def __init__(self, room, people, status, lines):
        self.room = room
        self.people = people
        self.status = status
        self.lines = lines

    def texts(self):
        return [l.text for l in self.lines]

    def line(self, text):
        """The line whose text is text (exactly one must have it)."""
        found = [l for l in self.lines if l.text == text]
        assert len(found) == 1, "%r appears %d times on %r" % (text, len(found), self)
        return found[0]

    def __repr__(self):
        return "Screen(%s %s [%s] %s)" % (self.room, self.people, self.status, self.lines)


class Event:
    def __init__(self, kind, text=None, title=None, lines=None, screen=None):
        self.kind = kind      # screen, page, history, error, info, dm
        self.text = text
        self.title = title
        self.lines = lines
        self.screen = screen

    def __repr__(self):
        if self.kind == "screen":
            return repr(self.screen)
        if self.kind in ("page", "history"):
            return "%s[%s](%d lines)" % (self.kind, self.title, len(self.lines))
        return "%s(%r)" % (self.kind, self.text)


class ChorusClient:
    def __init__(self, replicas=(), args=(), log_dir=None, env=None):
        cmd = [client_binary(), "--plain"]
        for r in replicas:
            cmd += ["--replica", r]
        cmd += list(args)
        self.stderr_path = os.path.join(log_dir or "/tmp", "chorus-client-%d.err" % id(self))
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1", **(env or {}))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.stderr_path, "w"), env=env)
        self.raw = queue.Queue()
        self.events = []
        self.cursor = 0
        self.pending = None  # a block being read: (kind, title, lines)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.raw.put(line.decode("utf-8", "replace").rstrip("\n"))
        self.raw.put(None)

    def send(self, command):
        self.proc.stdin.write((command + "\n").encode())
        self.proc.stdin.flush()

    def close_input(self):
        self.proc.stdin.close()

    # ---- parsing ----

    def _parse(self, line):
        if self.pending is not None:
            if line == "[end]":
                kind, title, lines = self.pending
                self.pending = None
                self._finish(kind, title, lines)
            else:
                self.pending[2].append(line)
            return
        if line.startswith("[room] "):
            self.pending = ("screen", line[7:], [])
        elif line.startswith("[history] "):
            self.pending = ("history", line[10:], [])
        elif line.startswith("[dm] "):
            self.events.append(Event("dm", text=line[5:]))
        elif line.startswith("! "):
            self.events.append(Event("error", text=line[2:]))
        elif line.startswith("* "):
            self.events.append(Event("info", text=line[2:]))
        elif line.startswith("[") and line.endswith("]"):
            self.pending = ("page", line[1:-1], [])
        else:
            raise AssertionError("client printed an unexpected line: %r" % line)

    def _finish(self, kind, title, lines):
        if kind == "screen":
            assert lines[0].startswith("[participants]"), lines
            assert lines[1].startswith("[status] "), lines
            people = lines[0][len("[participants]"):].split()
            shown = parse_lines(title, lines[2:])
            self.events.append(Event("screen", screen=Screen(title, people, lines[1][9:], shown)))
        elif kind == "history":
            self.events.append(Event("history", title=title, lines=parse_lines(title, lines)))
        else:
            self.events.append(Event("page", title=title, lines=lines))

    def _read(self, deadline):
        """Parses output until deadline; returns False once stdout ended."""
        try:
            line = self.raw.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return True
        if line is None:
            self.raw.put(None)
            return False
        self._parse(line)
        return True

    # ---- waiting ----

    def expect(self, kind, pred=lambda e: True, timeout=10):
        """Waits for the next event of kind (after the last one expected)
        for which pred(event) holds; returns it."""
        deadline = time.monotonic() + timeout
        ended = False
        while True:
            for i in range(self.cursor, len(self.events)):
                e = self.events[i]
                if e.kind == kind and pred(e):
                    self.cursor = i + 1
                    return e
            if ended or time.monotonic() >= deadline:
                raise AssertionError("no %s event matching within %ss (output ended: %s); since the last "
                                     "one: %s" % (kind, timeout, ended, self.events[self.cursor:][-20:]))
            ended = not self._read(deadline)

    def error(self, contains, timeout=10):
        return self.expect("error", lambda e: contains in e.text, timeout).text

    def info(self, contains, timeout=10):
        return self.expect("info", lambda e: contains in e.text, timeout).text

    def dm(self, contains, timeout=10):
        return self.expect("dm", lambda e: contains in e.text, timeout).text

    def screen(self, pred=lambda s: True, timeout=10):
        return self.expect("screen", lambda e: pred(e.screen), timeout).screen

    def page(self, title, timeout=10):
        return self.expect("page", lambda e: e.title == title, timeout).lines

    def history(self, timeout=10):
        return self.expect("history", timeout=timeout)

    def settle(self, quiet=0.3):
        """Reads until nothing came for `quiet` seconds; returns the events so far."""
        while True:
            before = len(self.events)
            self._read(time.monotonic() + quiet)
            if len(self.events) == before and self.raw.empty():
                return self.events

    def last_screen(self):
        self.settle()
        screens = [e.screen for e in self.events if e.kind == "screen"]
        assert screens, "no screen yet: %s" % self.events[-20:]
        return screens[-1]

    def errors_since(self, start):
        return [e.text for e in self.events[start:] if e.kind == "error"]

    # ---- common steps ----

    def login(self, target, name, room=None):
        """c target, u name (and j room): waits for each step."""
        self.send("c %s" % target)
        self.info("connected to replica")
        self.send("u " + name)
        self.info("logged in as " + name)
        if room:
            self.join(room)
        return self

    def join(self, room):
        self.send("j " + room)
        return self.screen(lambda s: s.room.lower() == room.lower())

    def quit(self, timeout=10):
        """q; the client must exit 0 with no sanitizer report."""
        self.send("q")
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("chorus did not exit after q")
        assert rc == 0, "chorus exited %s:\n%s" % (rc, self.stderr())
        self.check_sanitizers()

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def check_sanitizers(self):
        text = self.stderr()
        for mark in SANITIZER_MARKS:
            assert mark not in text, "sanitizer report from chorus:\n" + text[-6000:]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


class FakeReplica:
    """A scripted stand-in for chorusd that speaks just enough IRC for the
    client (capabilities, login, labeled JOIN and CHATHISTORY LATEST), so a
    test can send what a real single replica never sends: netjoin batches
    and unasked chathistory batches that insert lines earlier in a room. It
    is an older server too: JOIN of another target than its room gets 403,
    any other labeled command 421.
    `history` is the room's canonical order as (msgid, nick, text) tuples;
    `received` lists the commands the client sent. With `echo_at` set, a
    labeled PRIVMSG to the room is stored at that index of `history` and
    echoed (its label on it) inside an unasked chathistory batch, as a
    replica echoes a line that the canonical order put before the last one.
    With `in_use` = n, the first n NICKs get 433 "already in use" (the name
    still online from a link the client lost)."""

    CAPS = "message-tags server-time echo-message batch labeled-response draft/chathistory"

    def __init__(self, room):
        import socket
        self.room = room
        self.history = []
        self.received = []
        self.people = ["bob"]
        self.nick = None
        self.echo_at = None
        self.in_use = 0
        self.user_seen = False
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.conn = None
        self.lock = threading.Lock()
        self.batches = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def send(self, line):
        with self.lock:
            self.conn.sendall((line + "\r\n").encode())

    def _ref(self):
        self.batches += 1
        return "b%d" % self.batches

    def _history_lines(self, limit, batch):
        for msgid, nick, text in self.history[-limit:]:
            self.send("@batch=%s;msgid=%s;time=2024-01-01T00:00:00.000Z;chorus/likes=0 "
                      ":%s!%s@fake PRIVMSG %s :%s" % (batch, msgid, nick, nick, self.room, text))

    def _answer(self, label, cmd, params):
        outer = self._ref()
        self.send("@label=%s :fake BATCH +%s labeled-response" % (label, outer))
        if cmd == "JOIN":
            self.send("@batch=%s :%s!%s@fake JOIN %s" % (outer, self.nick, self.nick, self.room))
            self.send("@batch=%s :fake 353 %s = %s :%s" % (outer, self.nick, self.room,
                                                         " ".join(self.people + [self.nick])))
            self.send("@batch=%s :fake 366 %s %s :End of /NAMES list." % (outer, self.nick, self.room))
        elif cmd == "CHATHISTORY":
            inner = self._ref()
            self.send("@batch=%s :fake BATCH +%s chathistory %s" % (outer, inner, self.room))
            self._history_lines(int(params[-1]), inner)
            self.send("@batch=%s :fake BATCH -%s" % (outer, inner))
        self.send(":fake BATCH -%s" % outer)

    def _serve(self):
        self.conn, _ = self.listener.accept()
        buf = b""
        while True:
            data = self.conn.recv(65536)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                raw, _, buf = buf.partition(b"\n")
                self._handle(raw.decode().rstrip("\r"))

    def _handle(self, line):
        label = None
        if line.startswith("@"):
            tags, _, line = line[1:].partition(" ")
            label = dict(t.partition("=")[::2] for t in tags.split(";")).get("label")
        self.received.append(line)
        words = line.split(" ")
        cmd = words[0].upper()
        if cmd == "CAP" and words[1] == "LS":
            self.send(":fake CAP * LS :" + self.CAPS)
        elif cmd == "CAP" and words[1] == "REQ":
            self.send(":fake CAP * ACK " + " ".join(words[2:]))
        elif cmd == "NICK" and self.in_use:
            self.in_use -= 1
            self.send(":fake 433 * %s :Nickname is already in use" % words[1])
        elif cmd == "NICK":
            self.nick = words[1]
            if self.user_seen:
                self.send(":fake 001 %s :Welcome" % self.nick)
        elif cmd == "USER":
            self.user_seen = True
            if self.nick:
                self.send(":fake 001 %s :Welcome" % self.nick)
        elif cmd == "JOIN" and label and words[1] != self.room:
            self.send("@label=%s :fake 403 %s %s :No such channel" % (label, self.nick, words[1]))
        elif cmd in ("JOIN", "CHATHISTORY") and label:
            self._answer(label, cmd, words[1:])
        elif cmd == "PRIVMSG" and label and self.echo_at is not None:
            msgid, text = "e%d" % len(self.history), line.split(" :", 1)[1]
            self.history.insert(self.echo_at, (msgid, self.nick, text))
            ref = self._ref()
            self.send(":fake BATCH +%s chathistory %s" % (ref, self.room))
            self.send("@batch=%s;label=%s;msgid=%s;time=2024-01-01T00:00:00.000Z :%s!%s@fake PRIVMSG %s :%s"
                      % (ref, label, msgid, self.nick, self.nick, self.room, text))
            self.send(":fake BATCH -%s" % ref)
        elif cmd == "PING":
            self.send(":fake PONG fake :" + words[-1].lstrip(":"))
        elif label:
            self.send("@label=%s :fake 421 %s %s :Unknown command" % (label, self.nick, cmd))

    def close(self):
        for s in (self.conn, self.listener):
            try:
                if s:
                    s.close()
            except OSError:
                pass
