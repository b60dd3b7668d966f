"""The full-screen (ncurses) mode of `chorus`, driven through tmux: a
detached session of fixed size runs the client against a real chorusd; the
test types with send-keys and reads the screen with capture-pane. A raw IRC
client (bob) is on the other side. Skipped, loudly, without tmux."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from client_helpers import client_binary
from conftest import SANITIZER_MARKS
from ircclient import ALL_CAPS

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

WIDTH, HEIGHT = 100, 40


class Tmux:
    """One detached tmux session on a private tmux server."""

    def __init__(self, tmp_path, command):
        self.socket = "chorus-test-%d" % os.getpid()
        self.err = str(tmp_path / "chorus-tui.err")
        env_prefix = "env LANG=C.UTF-8 LC_ALL=C.UTF-8 ASAN_OPTIONS=detect_leaks=1 "
        self.tmux("new-session", "-d", "-s", "t", "-x", str(WIDTH), "-y", str(HEIGHT),
                  env_prefix + command + " 2>" + self.err)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.socket] + list(args), check=False,
                              capture_output=True, text=True)

    def type(self, text):
        self.tmux("send-keys", "-t", "t", "-l", text)
        self.tmux("send-keys", "-t", "t", "Enter")

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t").stdout

    def wait(self, pred, what, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if pred(text):
                return text
            time.sleep(0.1)
        raise AssertionError("screen never showed %s:\n%s" % (what, self.screen()))

    def alive(self):
        return self.tmux("has-session", "-t", "t").returncode == 0

    def close(self):
        self.tmux("kill-server")


@pytest.fixture
def tui(tmp_path, server):
    t = Tmux(tmp_path, "%s --replica 127.0.0.1:%d" % (client_binary(), server.port))
    yield t
    t.close()


def rows(text):
    return text.split("\n")


def quit_and_check(tui):
    """q: chorus must exit, with no sanitizer report."""
    tui.type("q")
    deadline = time.monotonic() + 10
    while tui.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tui.alive(), "chorus did not exit on q:\n" + tui.screen()
    err = open(tui.err, errors="replace").read()
    for mark in SANITIZER_MARKS:
        assert mark not in err, err


def test_full_screen_room_likes_and_quit(server, tui):
    bob = server.client().login("bob", ALL_CAPS)
    bob.join("#tui")
    bob.send("PRIVMSG #tui :hello from bob")
    bob.expect("PRIVMSG")
    tui.wait(lambda s: "1 replica known" in s, "the greeting")
    tui.type("c 1")
    tui.wait(lambda s: "connected to replica 1" in s, "the connection")
    tui.type("u alice")
    tui.type("j #tui")
    text = tui.wait(lambda s: "1. bob: hello from bob" in s, "the room's line")
    header = rows(text)[0]
    assert "#tui" in header and "alice" in header and "bob" in header, header
    status = rows(text)[HEIGHT - 2]
    assert "replica 1 (127.0.0.1:%d) connected as alice" % server.port in status, status
    assert rows(text)[HEIGHT - 1].startswith(">"), text

    tui.type("a hi from alice")
    m = bob.expect(lambda m: m.command == "PRIVMSG" and m.nick == "alice")
    assert m.params == ["#tui", "hi from alice"]
    tui.wait(lambda s: "2. alice: hi from alice" in s, "alice's line")

    # bob likes alice's line: the screen is redrawn with the count.
    bob.send("@+draft/react=x;+draft/reply=%s TAGMSG #tui" % m.tags["msgid"])
    text = tui.wait(lambda s: "2. alice: hi from alice  Likes: 1" in s, "the like")
    assert "1. bob: hello from bob\n" in text or "1. bob: hello from bob " in text

    # A refusal shows as a note.
    tui.type("l 2")
    tui.wait(lambda s: "! line 2 is yours: you cannot like your own line" in s, "the refusal")

    # Participants change in the header.
    carol = server.client().login("carol", ALL_CAPS)
    carol.join("#tui")
    tui.wait(lambda s: "carol" in rows(s)[0], "carol in the header")

    # `h` opens the history page; Esc closes it.
    tui.type("h")
    tui.wait(lambda s: "history of #tui: 2 lines" in rows(s)[0], "the history page")
    tui.tmux("send-keys", "-t", "t", "Escape")
    tui.wait(lambda s: "#tui |" in rows(s)[0], "the room again")

    quit_and_check(tui)
    assert bob.expect("QUIT").nick == "alice"


def test_full_screen_timeline(server, tui):
    """`t` shows the posts of the users one follows as `user (HH:MM) >> text`,
    a typed line is a post, and `j` goes back to a room."""
    bob = server.client().login("bob", ALL_CAPS)
    tui.wait(lambda s: "1 replica known" in s, "the greeting")
    tui.type("c 1")
    tui.type("u alice")
    tui.wait(lambda s: "logged in as alice" in s, "the login")
    tui.type("f bob")
    tui.wait(lambda s: "* you now follow bob" in s, "the follow")
    bob.send("PRIVMSG &timeline :a post by bob")
    bob.expect("PRIVMSG")
    tui.type("t")
    text = tui.wait(lambda s: "bob (" in s and ") >> a post by bob" in s, "bob's post")
    assert "&timeline | posts of the users you follow" in rows(text)[0], text
    bob.send("FOLLOW alice")
    bob.expect("FOLLOW")
    bob.send("JOIN &timeline")
    bob.expect("JOIN")
    tui.type("hello from the timeline")
    m = bob.expect(lambda m: m.command == "PRIVMSG" and m.nick == "alice")
    assert m.params == ["&timeline", "hello from the timeline"]
    tui.wait(lambda s: "* posted: hello from the timeline" in s, "the post's note")
    tui.type("j #back")
    tui.wait(lambda s: rows(s)[0].startswith(" #back |"), "the room again")
    quit_and_check(tui)


@pytest.mark.open_identity
def test_full_screen_conversation_and_waiting_lines(server, tui):
    """`d bob` puts the conversation on screen like a room (header: the two
    of them); a line typed while the replica does not answer shows in the
    status line as waiting, and is there once after the answer."""
    bob = server.client().login("bob", ALL_CAPS)
    tui.wait(lambda s: "1 replica known" in s, "the greeting")
    tui.type("c 1")
    tui.type("u alice")
    tui.wait(lambda s: "logged in as alice" in s, "the login")
    bob.send("PRIVMSG alice :hi alice")
    bob.expect("PRIVMSG")
    tui.wait(lambda s: "[dm] bob: hi alice" in s, "the DM as a note")
    tui.type("d")
    tui.wait(lambda s: "conversations" in rows(s)[0] and "bob: last " in s, "the conversations page")
    tui.tmux("send-keys", "-t", "t", "Escape")
    tui.type("d bob")
    text = tui.wait(lambda s: "1. bob: hi alice" in s, "the conversation")
    header = rows(text)[0]
    assert "bob" in header and "alice" in header, header
    server.proc.send_signal(signal.SIGSTOP)
    try:
        tui.type("a are you there")
        tui.wait(lambda s: "1 line(s) waiting for the replica" in rows(s)[HEIGHT - 2], "the waiting line")
    finally:
        server.proc.send_signal(signal.SIGCONT)
    text = tui.wait(lambda s: "2. alice: are you there" in s and "waiting for the replica" not in s,
                    "the line answered")
    assert text.count("are you there") == 1, text
    m = bob.expect(lambda m: m.command == "PRIVMSG" and m.nick == "alice")
    assert m.params == ["bob", "are you there"]
    quit_and_check(tui)


def test_full_screen_login_at_start_leaving_and_exit(server, tmp_path):
    """-u logs in at start; lv leaves the room (the screen says there is
    none); in the timeline exit leaves it; Leave quits."""
    t = Tmux(tmp_path, "%s --replica 127.0.0.1:%d -u alice" % (client_binary(), server.port))
    try:
        t.wait(lambda s: "logged in as alice" in s, "the login at start")
        t.type("j #tui")
        t.wait(lambda s: "#tui |" in rows(s)[0], "the room")
        t.type("lv")
        text = t.wait(lambda s: "left #tui" in s, "the leave")
        assert "#tui |" not in rows(text)[0], text
        t.type("t")
        t.wait(lambda s: "&timeline" in rows(s)[0], "the timeline")
        t.type("exit")
        text = t.wait(lambda s: "left your timeline" in s, "leaving the timeline")
        assert "&timeline" not in rows(text)[0], text
        t.type("Leave")
        deadline = time.monotonic() + 10
        while t.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not t.alive(), "chorus did not exit on Leave:\n" + t.screen()
    finally:
        t.close()
