"""The terminal client `chorus`, driven in line mode through pipes against a
real chorusd, with raw IRC clients (ircclient.py) on the other side:
login, join, append, likes and their refusals, history, view, direct
messages, follow and unfollow with their refusals, the user list, the
timeline (the latest 20 posts, live posts, posting, leaving it), quit;
failover past a dead replica and, after a kill -9 and restart,
reconnection with every line (or post) shown once. A scripted fake replica
checks the merge rule (after a netjoin or an unasked chathistory batch the
client re-reads the room and redraws it in the server's order) and what an
older server without the follow verbs gets."""
import datetime
import signal
import subprocess
import time

import pytest

from conftest import free_port
from client_helpers import ChorusClient, FakeReplica, client_binary
from ircclient import ALL_CAPS


@pytest.fixture
def chorus(tmp_path):
    """Factory: chorus("host:port", ...) starts a client in line mode with
    those --replica flags (and env added to its environment); every client
    is stopped and checked at the end."""
    clients = []

    def make(*replicas, args=(), env=None):
        c = ChorusClient(replicas, args, log_dir=str(tmp_path), env=env)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.kill()
        c.check_sanitizers()


def addr(server):
    return "127.0.0.1:%d" % server.port


def bob_in(server, room, nick="bob"):
    b = server.client().login(nick, ALL_CAPS)
    b.join(room)
    b.settle()
    return b


def test_help_lists_every_command(chorus):
    c = chorus()
    c.send("help")
    lines = c.page("help")
    names = [l.split()[0] for l in lines]
    for name in ("c", "u", "j", "lv", "a", "l", "r", "h", "v", "m", "d", "f", "uf", "ls", "t", "q", "help"):
        assert name in names, lines
    c.quit()


def test_commands_before_connect_login_join_are_refused(server, chorus):
    c = chorus(addr(server))
    for cmd in ("u alice", "j #x", "a hello", "l 1", "r 1", "h", "v", "m bob hi"):
        c.send(cmd)
        c.error("not connected: use c")
    c.send("c 7")
    c.error("no replica 7")
    c.send("c 1")
    c.info("connected to replica 1")
    for cmd in ("j #x", "a hello", "m bob hi", "f bob", "t"):
        c.send(cmd)
        c.error("not logged in: use u")
    c.send("u alice")
    c.info("logged in as alice")
    for cmd in ("a hello", "l 1", "r 1", "h", "p", "lv"):
        c.send(cmd)
        c.error("not in a room: use j")
    c.send("a")
    c.error("usage: a <text>")
    c.send("frobnicate")
    c.error("unknown command frobnicate")
    c.quit()


def test_login_join_append_seen_by_others(server, chorus):
    bob = bob_in(server, "#lobby")
    c = chorus(addr(server)).login(1, "alice")
    s = c.join("#lobby")
    assert s.room == "#lobby" and sorted(s.people) == ["alice", "bob"], s
    assert "replica 1" in s.status and "connected as alice" in s.status, s
    assert s.lines == []
    c.send("a hello from alice")
    m = bob.expect("PRIVMSG")
    assert m.nick == "alice" and m.params == ["#lobby", "hello from alice"], m
    s = c.screen(lambda s: s.texts() == ["hello from alice"])
    assert s.lines[0].user == "alice" and s.lines[0].n == 1
    bob.send("PRIVMSG #lobby :hi alice")
    s = c.screen(lambda s: len(s.lines) == 2)
    assert [(l.n, l.user, l.text) for l in s.lines] == [(1, "alice", "hello from alice"), (2, "bob", "hi alice")]
    # Participants follow JOIN, PART and QUIT.
    carol = bob_in(server, "#lobby", "carol")
    c.screen(lambda s: "carol" in s.people)
    carol.send("PART #lobby :bye")
    c.screen(lambda s: "carol" not in s.people)
    bob.send("QUIT :gone")
    c.screen(lambda s: s.people == ["alice"])
    c.quit()


def test_join_shows_the_last_25_and_h_shows_all(server, chorus):
    bob = bob_in(server, "#big")
    for i in range(40):
        bob.send("PRIVMSG #big :m%02d" % i)
        bob.expect("PRIVMSG")
    c = chorus(addr(server)).login(1, "alice")
    s = c.join("#big")
    assert s.texts() == ["m%02d" % i for i in range(15, 40)], s
    assert [l.n for l in s.lines] == list(range(1, 26))
    c.send("h")
    h = c.history()
    assert h.title == "#big 40"
    assert [l.text for l in h.lines] == ["m%02d" % i for i in range(40)]
    c.send("p")
    assert len(c.history().lines) == 40
    c.quit()


def test_h_pages_through_long_history(server, chorus):
    bob = bob_in(server, "#long")
    for i in range(230):
        bob.send("PRIVMSG #long :n%03d" % i)
    bob.sync(timeout=30)
    c = chorus(addr(server)).login(1, "alice", "#long")
    c.send("h")
    h = c.history(timeout=20)
    assert [l.text for l in h.lines] == ["n%03d" % i for i in range(230)]
    c.quit()


def test_likes_and_refusals(server, chorus):
    bob = bob_in(server, "#l")
    c = chorus(addr(server)).login(1, "alice", "#l")
    bob.send("PRIVMSG #l :bob's line")
    c.screen(lambda s: s.texts() == ["bob's line"])
    c.send("a alice's line")
    c.screen(lambda s: len(s.lines) == 2)
    bob.settle()
    # Like bob's line: the count shows; bob sees the react with the count.
    c.send("l 1")
    s = c.screen(lambda s: s.lines[0].likes == 1)
    assert s.lines[1].likes == 0
    t = bob.expect("TAGMSG")
    assert t.nick == "alice" and t.tags["+draft/react"] == "\U0001F44D" and t.tags["chorus/likes"] == "1"
    msgid = t.tags["+draft/reply"]
    # Refusals: liking again, one's own line, lines not on screen.
    c.send("l 1")
    c.error("you already like line 1")
    c.send("l 2")
    c.error("line 2 is yours: you cannot like your own line")
    c.send("r 2")
    c.error("line 2 is yours")
    for bad in ("3", "0", "-1", "x"):
        c.send("l " + bad)
        c.error("no line %s on screen" % bad)
    # Unlike: the count goes; unliking again is refused.
    c.send("r 1")
    c.screen(lambda s: s.lines[0].likes == 0)
    t = bob.expect("TAGMSG")
    assert t.tags["+draft/unreact"] and t.tags["chorus/likes"] == "0"
    c.send("r 1")
    c.error("you have not liked line 1")
    # bob likes alice's line: alice's screen is redrawn with the count.
    bob.send("@+draft/react=x;+draft/reply=%s TAGMSG #l" % c_msgid(bob, "#l", "alice's line"))
    c.screen(lambda s: s.lines[1].likes == 1 and s.lines[0].likes == 0)
    bob.sync()
    assert msgid
    c.quit()


def c_msgid(client, room, text):
    """The msgid of the line text in room (read with CHATHISTORY)."""
    for m in client.history("LATEST", room, "*", 50):
        if m.params[-1] == text:
            return m.tags["msgid"]
    raise AssertionError("no line %r in %s" % (text, room))


def test_unlike_of_a_line_liked_by_others_asks_the_server(server, chorus):
    bob = bob_in(server, "#u")
    carol = bob_in(server, "#u", "carol")
    bob.send("PRIVMSG #u :liked by carol")
    msg = bob.expect("PRIVMSG")
    carol.expect("PRIVMSG")
    carol.send("@+draft/react=x;+draft/reply=%s TAGMSG #u" % msg.tags["msgid"])
    carol.expect("TAGMSG")
    c = chorus(addr(server)).login(1, "alice")
    s = c.join("#u")
    assert s.lines[0].likes == 1
    # The count is carol's like, not ours: the server says NOT_LIKED, and
    # from then on the client knows and refuses by itself.
    c.send("r 1")
    c.error("you have not liked line 1")
    c.send("r 1")
    c.error("you have not liked line 1")
    c.send("l 1")
    c.screen(lambda s: s.lines[0].likes == 2)
    c.quit()


def test_view_lists_the_replicas(server, chorus):
    c = chorus(addr(server)).login(1, "alice")
    c.send("v")
    lines = c.page("view")
    assert lines == ["replica 1 at 127.0.0.1:%d (this replica)" % server.port], lines
    c.quit()


def test_direct_messages(server, chorus):
    bob = server.client().login("bob", ALL_CAPS)
    c = chorus(addr(server)).login(1, "alice")
    c.send("m bob hello bob")
    m = bob.expect("PRIVMSG")
    assert m.nick == "alice" and m.params == ["bob", "hello bob"]
    c.dm("alice -> bob: hello bob")
    bob.send("PRIVMSG alice :hello alice")
    assert c.dm("bob:") == "bob: hello alice"
    c.send("m nobody hi")
    c.error("nobody: No such nick")
    c.quit()


@pytest.mark.open_identity
def test_a_conversation_shown_like_a_room(server, chorus):
    """d <user>: the conversation's lines (those sent while the client was
    not there too), then live ones both ways, likes of the other's lines;
    a writes to the other person; lv leaves; a DM from a third person is
    still a note."""
    bob = server.client().login("bob", ALL_CAPS)
    away = server.client().login("alice", ALL_CAPS)  # alice's other session
    for i in range(3):
        bob.send("PRIVMSG alice :while you were out %d" % i)
        bob.expect(lambda m: m.command == "PRIVMSG" and m.nick == "bob")
    away.close()
    c = chorus(addr(server)).login(1, "alice")
    c.send("d")
    page = c.page("conversations")
    assert len(page) == 1 and page[0].startswith("bob: 3 new, last "), page
    c.send("d bob")
    s = c.screen(lambda s: s.room == "bob" and len(s.lines) == 3)
    assert s.texts() == ["while you were out %d" % i for i in range(3)], s
    assert sorted(s.people) == ["alice", "bob"]
    c.send("a back now")
    m = bob.expect(lambda m: m.command == "PRIVMSG" and m.nick == "alice")
    assert m.params == ["bob", "back now"]
    bob.send("PRIVMSG alice :welcome back")
    s = c.screen(lambda s: s.texts()[-2:] == ["back now", "welcome back"])
    c.send("l 5")
    t = bob.expect(lambda m: m.command == "TAGMSG")
    assert t.nick == "alice" and t.tags["chorus/likes"] == "1"
    c.screen(lambda s: s.lines[-1].likes == 1)
    c.send("l 4")
    c.error("line 4 is yours")
    carol = server.client().login("carol", ALL_CAPS)
    carol.send("PRIVMSG alice :psst")
    c.dm("carol: psst")
    c.send("lv")
    c.info("left the conversation with bob")
    bob.send("PRIVMSG alice :one more")
    c.dm("bob: one more")  # shown as a note: not new
    c.send("d")
    page = c.page("conversations")
    assert [l.split(",")[0].split(": last")[0] for l in page] == ["bob", "carol"], page
    assert all(" new" not in l for l in page), page
    c.quit()


def test_a_guest_has_no_conversations(server, chorus):
    bob = server.client().login("bob", ALL_CAPS)
    c = chorus(addr(server)).login(1, "alice")
    c.send("m bob hi")
    bob.expect("PRIVMSG")
    c.send("d")
    c.info("d: no conversations yet")
    c.quit()


@pytest.mark.open_identity
def test_a_conversation_after_a_reconnect_fills_the_gap(server, chorus):
    dead = "127.0.0.1:%d" % free_port()
    bob = server.client().login("bob", ALL_CAPS)
    c = chorus(dead, addr(server)).login(2, "alice")
    bob.send("PRIVMSG alice :before")
    c.dm("bob: before")
    c.send("d bob")
    c.screen(lambda s: s.room == "bob" and s.texts() == ["before"])
    server.kill9()
    c.error("went away")
    server.start()
    away = server.client().login("alice", ALL_CAPS)  # so that bob may write to alice
    bob = server.client().login("bob", ALL_CAPS)
    bob.send("PRIVMSG alice :during")
    bob.expect(lambda m: m.command == "PRIVMSG" and m.nick == "bob")
    away.close()
    c.info("back in bob")
    s = c.screen(lambda s: s.texts() == ["before", "during"])
    assert s.room == "bob"
    c.quit()


# The client's time zone in the timeline tests: UTC+5:30, in POSIX form (no
# tzdata needed), so that "local time" differs from the server's UTC.
TZ_ENV = {"TZ": "CHR-5:30"}
TZ_OFFSET = datetime.timedelta(hours=5, minutes=30)


def local_hhmm(server_time):
    """HH:MM of an IRCv3 server-time tag in the TZ_ENV time zone."""
    t = datetime.datetime.strptime(server_time, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (t + TZ_OFFSET).strftime("%H:%M")


def post(raw, text):
    """A raw client posts text to its feed; returns the echo."""
    raw.send("PRIVMSG &timeline :" + text)
    return raw.expect(lambda m: m.command == "PRIVMSG" and m.params == ["&timeline", text])


@pytest.mark.open_identity
def test_follow_unfollow_and_their_refusals(server, chorus):
    bob = server.client().login("bob", ALL_CAPS)
    server.client().login("carol", ALL_CAPS)
    c = chorus(addr(server)).login(1, "alice")
    c.send("f bob")
    assert c.info("follow") == "you now follow bob"
    bob.send("USERS")
    assert bob.expect(lambda m: m.command == "USERS" and m.params[1] == "alice").params[2] == "follower online"
    refusals = [
        ("f bob", "f: you already follow bob"),
        ("f BOB", "f: you already follow BOB"),
        ("f alice", "f: you cannot follow yourself"),
        ("f nobody", "f: no such user nobody"),
        ("uf nobody", "uf: no such user nobody"),
        ("uf carol", "uf: you do not follow carol"),
        ("uf alice", "uf: you do not follow alice"),
    ]
    for cmd, err in refusals:
        c.send(cmd)
        assert c.error(cmd.split()[0] + ":") == err
    c.send("uf bob")
    assert c.info("follow") == "you no longer follow bob"
    c.send("uf bob")
    assert c.error("uf:") == "uf: you do not follow bob"
    # A follow made by another session of alice's is shown too.
    other = server.client().login("alice", ALL_CAPS)
    other.send("FOLLOW carol")
    assert c.info("follow") == "you now follow carol"
    c.quit()


def test_ls_lists_users_with_their_flags(server, chorus):
    bob = server.client().login("bob", ALL_CAPS)
    carol = server.client().login("carol", ALL_CAPS)
    dave = server.client().login("Dave", ALL_CAPS)
    c = chorus(addr(server)).login(1, "alice")
    bob.send("FOLLOW alice")
    bob.expect("FOLLOW")
    c.send("f dave")
    c.info("you now follow Dave")  # as the cluster spells it
    for gone in (carol, dave):
        gone.send("QUIT :bye")
        gone.expect_closed()
    c.send("ls")
    assert c.page("ls") == ["alice (you): online", "bob: follower online", "carol: -", "Dave: following"]
    c.quit()


def test_timeline_latest_20_live_posting_and_leaving(server, chorus):
    bob = server.client().login("bob", ALL_CAPS)
    carol = server.client().login("carol", ALL_CAPS)
    post(bob, "before the follow")
    c = chorus(addr(server), env=TZ_ENV).login(1, "alice", "#room")
    for who in ("bob", "carol"):
        c.send("f " + who)
        c.info("you now follow " + who)
    sent = []  # (author, text, server-time)
    for i in range(25):
        who = carol if i % 3 == 0 else bob
        sent.append((who.nick, "post %02d" % i, post(who, "post %02d" % i).tags["time"]))
    # t: the 20 latest posts of the users alice follows, oldest first.
    c.send("t")
    s = c.screen(lambda s: s.room == "&timeline")
    assert [(p.user, p.time, p.text) for p in s.lines] == \
        [(u, local_hhmm(t), x) for u, x, t in sent[-20:]], s
    # A live post comes at the end; the window stays 20 posts.
    post(bob, "live from bob")
    s = c.screen(lambda s: s.texts()[-1] == "live from bob")
    assert len(s.lines) == 20 and s.lines[-1].user == "bob"
    # h: the whole timeline, without the post made before the follow.
    c.send("h")
    h = c.history()
    assert h.title == "&timeline 26"
    assert [p.text for p in h.lines] == [x for _, x, _ in sent] + ["live from bob"]
    # A line that is no command is a post (so is `a text`); bob, who follows
    # alice and is in his timeline, gets them; they are not on alice's own.
    bob.send("FOLLOW alice")
    bob.expect("FOLLOW")
    bob.send("JOIN &timeline")
    bob.expect_batch("chathistory")
    for line, text in (("hello followers", "hello followers"), ("a with a", "with a")):
        c.send(line)
        assert c.info("posted:") == "posted: " + text
        m = bob.expect(lambda m: m.command == "PRIVMSG" and m.params[0] == "&timeline")
        assert m.nick == "alice" and m.params[1] == text
    assert c.last_screen().texts()[-1] == "live from bob"
    c.send("l 1")
    c.error("l: posts cannot be liked")
    # Unfollowing carol takes her posts off the timeline.
    c.send("uf carol")
    c.info("you no longer follow carol")
    want = [x for u, x, _ in sent if u == "bob"] + ["live from bob"]
    c.screen(lambda s: s.texts() == want)
    # j leaves the timeline: lines are commands again, bob's posts no longer come.
    c.send("j #room")
    c.screen(lambda s: s.room == "#room")
    c.send("hello?")
    c.error("unknown command hello?")
    post(bob, "while alice is away")
    c.send("t")
    s = c.screen(lambda s: s.room == "&timeline")
    assert s.texts()[-2:] == ["live from bob", "while alice is away"]
    c.quit()


def test_leaving_a_room_the_timeline_and_the_client(server, chorus):
    """lv leaves the room on screen (PART); in the timeline exit leaves it
    (and is not posted); Leave quits like q."""
    bob = server.client().login("bob", ALL_CAPS)
    bob.join("#r")
    bob.settle()
    c = chorus(addr(server)).login(1, "alice", "#r")
    bob.expect(lambda m: m.command == "JOIN" and m.nick == "alice")
    c.send("lv")
    c.info("left #r")
    part = bob.expect(lambda m: m.command == "PART")
    assert part.nick == "alice" and part.params[0] == "#r"
    c.send("a hello?")
    c.error("a: not in a room")
    assert all("no longer in" not in e for e in c.errors_since(0)), c.errors_since(0)
    c.send("t")
    c.screen(lambda s: s.room == "&timeline")
    c.send("exit")
    c.info("left your timeline")
    c.send("exit")
    c.error("unknown command exit")
    bob.send("FOLLOW alice")
    bob.expect("FOLLOW")
    c.send("Leave")
    assert c.proc.wait(timeout=10) == 0
    c.check_sanitizers()


def test_u_at_start_and_v_before_login(server, chorus):
    c = chorus(addr(server), args=["-u", "alice"])
    c.info("connected to replica 1")
    c.info("logged in as alice")
    c.quit()
    c = chorus(addr(server))
    c.send("c 1")
    c.info("connected to replica 1")
    c.send("v")
    assert c.page("view") == ["replica 1 at 127.0.0.1:%d (this replica)" % server.port]
    c.quit()
    out = subprocess.run([client_binary(), "-u", "alice"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and "no replica to log in to" in out.stderr


def test_timeline_after_reconnect_fills_the_gap(server, chorus):
    dead = "127.0.0.1:%d" % free_port()
    bob = server.client().login("bob", ALL_CAPS)
    c = chorus(dead, addr(server)).login(2, "alice")
    c.send("f bob")
    c.info("you now follow bob")
    for i in range(3):
        post(bob, "before %d" % i)
    c.send("t")
    c.screen(lambda s: s.room == "&timeline" and len(s.lines) == 3)
    server.kill9()
    c.error("replica 2 (%s) went away" % addr(server))
    c.info("reconnecting to replica 1")
    time.sleep(0.5)
    server.start()
    bob = server.client().login("bob", ALL_CAPS)
    for i in range(4):
        post(bob, "during %d" % i)
    c.info("connected to replica 2")
    c.info("back in &timeline")
    for i in range(2):
        post(bob, "after %d" % i)
    want = ["before %d" % i for i in range(3)] + ["during %d" % i for i in range(4)] + \
        ["after %d" % i for i in range(2)]
    c.screen(lambda s: len(s.lines) >= len(want))
    s = c.last_screen()
    assert s.room == "&timeline" and s.texts() == want, s
    c.send("h")
    assert [p.text for p in c.history().lines] == want
    c.quit()


def test_switching_rooms_and_names(server, chorus):
    bob = bob_in(server, "#one")
    c = chorus(addr(server)).login(1, "alice", "#one")
    c.send("j two")  # the '#' is added
    s = c.screen(lambda s: s.room == "#two")
    assert s.people == ["alice"]
    part = bob.expect("PART")
    assert part.nick == "alice" and part.params[0] == "#one"
    c.send("u alicia")
    c.info("you are now alicia")
    c.screen(lambda s: s.people == ["alicia"] and "connected as alicia" in s.status)
    c.quit()


@pytest.mark.open_identity
def test_taking_the_name_of_an_online_user(server, chorus):
    """A user is a name: `u bob` while bob is online makes this client bob;
    it stays in the room it shows (bob joins it)."""
    bob = bob_in(server, "#elsewhere")
    c = chorus(addr(server)).login(1, "alice", "#mine")
    c.send("a as alice")
    c.screen(lambda s: s.texts() == ["as alice"])
    c.send("u bob")
    c.info("you are now bob")
    s = c.screen(lambda s: s.people == ["bob"] and "connected as bob" in s.status)
    assert s.texts() == ["as alice"]
    # bob's other connection sees the room joined, and lines sent from here as his.
    j = bob.expect(lambda m: m.command == "JOIN" and m.params[0] == "#mine")
    assert j.nick == "bob"
    c.send("a as bob")
    m = bob.expect(lambda m: m.command == "PRIVMSG" and m.params[0] == "#mine")
    assert m.nick == "bob" and m.params[1] == "as bob"
    # Own lines are now bob's: liking them is refused; alice's line is not ours.
    c.screen(lambda s: s.texts() == ["as alice", "as bob"])
    c.send("l 2")
    c.error("line 2 is yours")
    c.send("l 1")
    c.screen(lambda s: s.lines[0].likes == 1)
    c.quit()


def test_quit_and_end_of_input(server, chorus):
    bob = bob_in(server, "#q")
    c = chorus(addr(server)).login(1, "alice", "#q")
    bob.expect("JOIN")
    c.quit()
    q = bob.expect("QUIT")
    assert q.nick == "alice"
    # A script that just ends: the client finishes its commands and exits 0.
    d = chorus(addr(server))
    for cmd in ("c 1", "u dora", "j #q", "a from a script"):
        d.send(cmd)
    d.close_input()
    assert d.proc.wait(timeout=10) == 0
    m = bob.expect("PRIVMSG")
    assert m.nick == "dora" and m.params[1] == "from a script"


def test_failover_past_a_dead_replica(server, chorus):
    dead = "127.0.0.1:%d" % free_port()
    c = chorus(dead, addr(server))
    c.send("c 1")
    c.error("replica 1 (%s) is unreachable" % dead)
    c.info("trying replica 2")
    c.info("connected to replica 2 (%s)" % addr(server))
    c.send("u alice")
    c.info("logged in as alice")
    s = c.join("#f")
    assert "replica 2" in s.status
    c.quit()


def test_a_full_replica_bounces_the_client_to_another(make_server, chorus):
    """A replica at its --max-clients answers RPL_BOUNCE (010) naming
    another replica, and the client given only the full one goes there."""
    other = make_server(["--id", "2"], name="r2")
    full = make_server(["--max-clients", "2", "--peer", "2=127.0.0.1:%d" % other.port])
    full.client().login("one")
    full.client().login("two")
    c = chorus("127.0.0.1:%d" % full.port)
    c.send("c 1")
    c.info("the replica is full (Server full: try replica 2): going to replica 2 (127.0.0.1:%d)" % other.port)
    c.info("connected to replica 2 (127.0.0.1:%d)" % other.port)
    c.send("u alice")
    c.info("logged in as alice")
    c.quit()


def test_a_replica_shutting_down_sends_its_clients_to_another(make_server, chorus):
    """SIGTERM: every client gets an ERROR naming another replica, and the
    client goes there, logs in again and is back in its room."""
    other = make_server(["--id", "2"], name="r2")
    leaving = make_server(["--peer", "2=127.0.0.1:%d" % other.port])
    c = chorus("127.0.0.1:%d" % leaving.port).login(1, "alice", "#r")
    c.send("a before")
    c.screen(lambda s: s.texts() == ["before"])
    leaving.stop()
    c.error("Server shutting down: try replica 2 at 127.0.0.1:%d" % other.port)
    c.info("the replica is shutting down: going to replica 2 (127.0.0.1:%d)" % other.port)
    c.info("connected to replica 2")
    c.info("logged in as alice")
    c.send("a after")
    c.screen(lambda s: s.texts()[-1:] == ["after"])
    c.quit()


def test_replicas_from_the_cluster_config(server, chorus, tmp_path):
    dead = free_port()
    conf = tmp_path / "cluster.conf"
    conf.write_text('cluster = { replicas = (\n'
                    '  { id = 3; host = "127.0.0.1"; port = %d; },\n'
                    '  { id = 7; host = "127.0.0.1"; port = %d; }\n'
                    '); };\n' % (dead, server.port))
    c = chorus(args=("--config", str(conf)))
    c.info("2 replicas known")
    c.send("c 7")  # an id from the config
    c.info("connected to replica 7 (%s)" % addr(server))
    c.send("c 2")  # a position in the list
    c.info("connected to replica 7")
    c.send("c 3")
    c.error("replica 3 (127.0.0.1:%d) is unreachable" % dead)
    c.info("connected to replica 7")
    c.send("c %s" % addr(server))  # an address already listed
    c.info("connected to replica 7")
    c.send("c 127.0.0.1:%d" % free_port())  # a new address: added, tried, then the others
    c.error("replica 8 ")
    c.info("connected to replica 7")
    c.quit()


def test_bad_arguments(chorus, tmp_path):
    bad = chorus(args=("--replica", "nocolon"))
    assert bad.proc.wait(timeout=5) == 2
    conf = tmp_path / "empty.conf"
    conf.write_text("cluster = {};\n")
    bad = chorus(args=("--config", str(conf)))
    assert bad.proc.wait(timeout=5) == 2
    assert "no cluster.replicas" in bad.stderr()


def test_reconnect_after_kill_fills_the_gap(server, chorus):
    dead = "127.0.0.1:%d" % free_port()
    bob = bob_in(server, "#r")
    c = chorus(dead, addr(server)).login(2, "alice", "#r")
    for i in range(3):
        bob.send("PRIVMSG #r :before %d" % i)
    c.screen(lambda s: len(s.lines) == 3)
    server.kill9()
    c.error("replica 2 (%s) went away" % addr(server))
    c.info("reconnecting to replica 1")
    time.sleep(0.5)
    server.start()
    # Lines posted while alice is away (she retries every second)...
    bob = server.client().login("bob", ALL_CAPS)
    bob.join("#r")
    for i in range(4):
        bob.send("PRIVMSG #r :during %d" % i)
    bob.sync()
    c.info("connected to replica 2")
    c.info("back in #r")
    # ... and after she is back.
    for i in range(2):
        bob.send("PRIVMSG #r :after %d" % i)
    want = ["before %d" % i for i in range(3)] + ["during %d" % i for i in range(4)] + \
        ["after %d" % i for i in range(2)]
    s = c.screen(lambda s: len(s.lines) >= len(want))
    c.settle()
    s = c.last_screen()
    assert s.texts() == want, s
    assert sorted(s.people) == ["alice", "bob"]
    c.send("h")
    assert [l.text for l in c.history().lines] == want
    c.send("a alice is back")
    m = bob.expect(lambda m: m.command == "PRIVMSG" and m.nick == "alice")
    assert m.params[1] == "alice is back"
    c.quit()


def test_lines_sent_across_a_kill_show_once(server, chorus):
    """Exactly-once sends: 200 lines typed; after the first 50 the replica
    stops reading (SIGSTOP), then dies (SIGKILL) and comes back. The line it
    never read is sent again with its id after the reconnect, then the rest:
    every line is in the room once, in order.
    (A line stored and not answered is answered with its msgid when it comes
    again: test_exactly_once.py.)"""
    dead = "127.0.0.1:%d" % free_port()
    c = chorus(dead, addr(server)).login(2, "alice", "#r")
    want = ["line %d" % i for i in range(200)]
    for text in want[:50]:
        c.send("a " + text)
    c.screen(lambda s: s.texts()[-1:] == ["line 49"])
    server.proc.send_signal(signal.SIGSTOP)
    for text in want[50:]:  # "line 50" goes out and is never read
        c.send("a " + text)
    time.sleep(0.3)
    server.kill9()
    c.info("line(s) not yet answered: they go again once reconnected")
    server.start()
    c.info("sending 1 waiting line(s) again")
    c.info("back in #r")
    reader = server.client().login("reader", ("batch", "message-tags", "draft/chathistory"))
    deadline = time.monotonic() + 20
    while reader.history("LATEST", "#r", "*", 1)[-1:][0].params[-1] != want[-1]:
        assert time.monotonic() < deadline, "the last line never came"
        time.sleep(0.2)
    page = reader.history("LATEST", "#r", "*", 100)
    first = reader.history("BEFORE", "#r", "msgid=" + page[0].tags["msgid"], 100)
    texts = [m.params[-1] for m in first + page]
    assert texts == want, (len(texts), [t for t in want if texts.count(t) != 1][:10])
    c.quit()


def test_reconnect_fills_a_gap_longer_than_a_page(server, chorus):
    bob = bob_in(server, "#g")
    c = chorus(addr(server)).login(1, "alice", "#g")
    bob.send("PRIVMSG #g :first")
    c.screen(lambda s: s.texts() == ["first"])
    server.kill9()
    c.error("went away")
    server.start()
    bob = server.client().login("bob", ALL_CAPS)
    bob.join("#g")
    for i in range(250):  # more than two CHATHISTORY pages
        bob.send("PRIVMSG #g :gap %03d" % i)
    bob.sync(timeout=30)
    c.info("back in #g", timeout=20)
    c.send("h")
    want = ["first"] + ["gap %03d" % i for i in range(250)]
    assert [l.text for l in c.history(timeout=20).lines] == want
    c.quit()


def test_failover_waits_for_its_name_to_be_free(server, chorus):
    """After a lost link the client's name may still be online on the
    replica it moves to (the replicas have not seen the link go yet): the
    client asks for it again until it is free, and does not give up on 433."""
    fake = FakeReplica("#m")
    fake.in_use = 3
    try:
        c = chorus(addr(server), "127.0.0.1:%d" % fake.port).login(1, "alice")
        server.kill9()
        c.info("still online from the link that was lost", timeout=15)
        c.info("logged in as alice", timeout=15)
        assert [l for l in fake.received if l.startswith("NICK")] == ["NICK alice"] * 4
        c.quit()
    finally:
        fake.close()


def test_merge_batches_redraw_in_server_order(chorus):
    fake = FakeReplica("#m")
    fake.history = [("a", "bob", "one"), ("b", "bob", "two"), ("d", "bob", "four")]
    try:
        c = chorus("127.0.0.1:%d" % fake.port).login(1, "alice")
        s = c.join("#m")
        assert s.texts() == ["one", "two", "four"]
        assert "CHATHISTORY LATEST #m * 25" in fake.received
        # A netjoin: carol's replica merged back, with a line made apart.
        fake.history.insert(2, ("c", "carol", "three"))
        fake.send(":fake BATCH +nj netjoin fake.a fake.b")
        fake.send("@batch=nj :carol!carol@fake JOIN #m")
        fake.send(":fake BATCH -nj")
        s = c.screen(lambda s: s.texts() == ["one", "two", "three", "four"])
        assert "carol" in s.people
        assert "CHATHISTORY LATEST #m * 100" in fake.received
        # An unasked chathistory batch with a line that goes earlier still.
        fake.history.insert(1, ("x", "dave", "one and a half"))
        fake.send(":fake BATCH +ch chathistory #m")
        fake.send("@batch=ch;msgid=x;time=2024-01-01T00:00:00.000Z :dave!dave@fake PRIVMSG #m :one and a half")
        fake.send(":fake BATCH -ch")
        s = c.screen(lambda s: len(s.lines) == 5)
        assert s.texts() == ["one", "one and a half", "two", "three", "four"]
        # The same lines again (a replay) change nothing.
        fake.send(":fake BATCH +ch2 chathistory #m")
        fake.send("@batch=ch2;msgid=b;time=2024-01-01T00:00:00.000Z :bob!bob@fake PRIVMSG #m :two")
        fake.send(":fake BATCH -ch2")
        c.settle(0.5)
        assert c.last_screen().texts() == ["one", "one and a half", "two", "three", "four"]
        c.quit()
    finally:
        fake.close()


def test_merge_batches_in_a_burst_read_the_room_once_more(chorus):
    """Many lines placed earlier at once (a busy room on several replicas):
    one refresh at a time, and one more after it, not one per batch."""
    fake = FakeReplica("#m")
    fake.history = [("a", "bob", "one"), ("z", "bob", "last")]
    try:
        c = chorus("127.0.0.1:%d" % fake.port).login(1, "alice")
        assert c.join("#m").texts() == ["one", "last"]
        lines = []
        for k in range(5):
            fake.history.insert(1 + k, ("x%d" % k, "dave", "early %d" % k))
            lines += [":fake BATCH +m%d chathistory #m" % k,
                      "@batch=m%d;msgid=x%d;time=2024-01-01T00:00:00.000Z :dave!dave@fake PRIVMSG #m :early %d"
                      % (k, k, k),
                      ":fake BATCH -m%d" % k]
        fake.send("\r\n".join(lines))  # one write: the client reads them at once
        want = ["one"] + ["early %d" % k for k in range(5)] + ["last"]
        c.screen(lambda s: s.texts() == want)
        c.settle(0.5)
        refreshes = [l for l in fake.received if l == "CHATHISTORY LATEST #m * 100"]
        assert 1 <= len(refreshes) <= 2, fake.received
        c.quit()
    finally:
        fake.close()


def test_own_line_echoed_earlier_is_acknowledged_and_placed(chorus):
    """A line's place is fixed by its origin's Lamport time, so a replica may
    echo our own line inside a chathistory batch (a concurrent line from
    another replica, delivered first, sorts after it). The echo still
    answers the send, and the room is redrawn in the server's order."""
    fake = FakeReplica("#m")
    fake.history = [("a", "bob", "one"), ("b", "bob", "three")]
    fake.echo_at = 1
    try:
        c = chorus("127.0.0.1:%d" % fake.port).login(1, "alice")
        assert c.join("#m").texts() == ["one", "three"]
        start = len(c.events)
        c.send("a two")
        c.send("help")  # queued until the send is answered (else 15 s, then "no answer")
        c.page("help", timeout=5)
        s = c.screen(lambda s: s.texts() == ["one", "two", "three"])
        assert s.line("two").user == "alice"
        assert not c.errors_since(start), c.errors_since(start)
        c.quit()
    finally:
        fake.close()


def test_an_older_server_without_the_follow_verbs(chorus):
    fake = FakeReplica("#m")
    try:
        c = chorus("127.0.0.1:%d" % fake.port).login(1, "alice")
        for cmd, verb in (("f bob", "FOLLOW"), ("uf bob", "UNFOLLOW"), ("ls", "USERS")):
            c.send(cmd)
            name = cmd.split()[0]
            assert c.error(name + ":") == "%s: not supported by this server (no %s)" % (name, verb)
        c.send("t")
        assert c.error("t:") == "t: not supported by this server (no &timeline)"
        c.quit()
    finally:
        fake.close()
