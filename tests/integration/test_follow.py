"""Follow and timeline (issue 6): FOLLOW, UNFOLLOW and USERS with their
refusals (each with its own FAIL, nothing changed), the answers to every
session of the follower, and &timeline: the latest 20 posts of the users one
follows (never a post made before the follow), then their posts live;
posting with PRIVMSG &timeline; CHATHISTORY on it; reconnects and restarts."""
import pytest
from ircclient import ALL_CAPS

NO_ECHO = ("batch", "message-tags", "server-time", "labeled-response")

BOTH_HISTORY_PATHS = True  # conftest.py: history from RAM's tail and from SQLite


def digest_ops(server):
    """The number of operations the server has applied (DIGEST, on its
    control socket)."""
    c = server.control()
    c.send("DIGEST")
    note = c.expect(lambda m: m.command == "NOTE" and m.params[0] == "DIGEST")
    return int(note.params[3])


def users(c):
    """USERS as {nick: set of flags}, in the order sent."""
    c.send("USERS")
    out = {}
    while True:
        m = c.expect("USERS")
        assert m.params[0] == c.nick, m
        if m.params[1] == "*":
            assert m.params[2] == "End of USERS"
            return out
        out[m.params[1]] = set(m.params[2].split())


def follow(c, who, verb="FOLLOW"):
    """Sends FOLLOW/UNFOLLOW who and waits for its answer (the line or a FAIL)."""
    c.send("%s %s" % (verb, who))
    return c.expect(lambda m: m.command == "FAIL" or (m.command == verb and m.nick == c.nick))


def posts(c, texts):
    """Posts each text to &timeline; returns the echoes."""
    out = []
    for t in texts:
        c.send("PRIVMSG &timeline :" + t)
        out.append(c.expect(lambda m: m.command == "PRIVMSG" and m.params[-1] == t))
    return out


def join_timeline(c):
    """JOIN &timeline; returns the replayed posts (the chathistory batch)."""
    c.send("JOIN &timeline")
    j = c.expect("JOIN")
    assert j.params == ["&timeline"] and j.nick == c.nick, j
    start, inside = c.expect_batch("chathistory")
    assert start.params[2] == "&timeline", start
    return inside


def ids(lines):
    return [m.tags["msgid"] for m in lines]


def test_refusals_change_nothing(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob", ALL_CAPS)
    assert follow(a, "bob").command == "FOLLOW"
    a.settle()
    b.settle()
    before = digest_ops(server)
    cases = [
        ("FOLLOW alice", "FOLLOW", "CANNOT_FOLLOW_SELF", "alice", "You cannot follow yourself"),
        ("FOLLOW ALICE", "FOLLOW", "CANNOT_FOLLOW_SELF", "ALICE", "You cannot follow yourself"),
        ("FOLLOW nobody", "FOLLOW", "UNKNOWN_USER", "nobody", "No such user"),
        ("FOLLOW 9bad", "FOLLOW", "UNKNOWN_USER", "*", "No such user"),
        ("FOLLOW bob", "FOLLOW", "ALREADY_FOLLOWING", "bob", "You already follow bob"),
        ("FOLLOW BoB", "FOLLOW", "ALREADY_FOLLOWING", "BoB", "You already follow BoB"),
        ("UNFOLLOW nobody", "UNFOLLOW", "UNKNOWN_USER", "nobody", "No such user"),
        ("UNFOLLOW alice", "UNFOLLOW", "NOT_FOLLOWING", "alice", "You do not follow alice"),
    ]
    for line, cmd, code, ctx, text in cases:
        a.send(line)
        f = a.expect("FAIL")
        assert f.params == [cmd, code, ctx, text], (line, f)
    # bob follows nobody: unfollowing alice is refused.
    b.send("UNFOLLOW alice")
    f = b.expect("FAIL")
    assert f.params == ["UNFOLLOW", "NOT_FOLLOWING", "alice", "You do not follow alice"]
    for line in ("FOLLOW", "UNFOLLOW", "FOLLOW :"):
        a.send(line)
        n = a.expect("461")
        assert n.params[1] == line.split()[0], n
    # A refusal carries the label of its command.
    a.send("@label=r1 FOLLOW alice")
    assert a.expect("FAIL").tags.get("label") == "r1"
    assert digest_ops(server) == before
    assert users(a)["bob"] == {"following", "online"}
    assert users(b)["alice"] == {"follower", "online"}


@pytest.mark.open_identity
def test_follow_answers_every_session(server):
    a1 = server.client().login("alice", ALL_CAPS)
    a2 = server.client().login("alice", NO_ECHO)
    server.client().login("bob", ALL_CAPS).settle()
    a1.settle()
    a2.settle()
    a1.send("@label=f1 FOLLOW Bob")
    mine = a1.expect("FOLLOW")
    assert mine.tags.get("label") == "f1" and mine.nick == "alice" and mine.params == ["bob"], mine
    assert mine.source == "alice!alice@chorus"
    other = a2.expect("FOLLOW")
    assert other.params == ["bob"] and "label" not in other.tags
    # Without echo-message the origin still gets its answer, with its label.
    a2.send("@label=u2 UNFOLLOW bob")
    mine = a2.expect("UNFOLLOW")
    assert mine.tags.get("label") == "u2" and mine.params == ["bob"]
    assert a1.expect("UNFOLLOW").params == ["bob"]
    assert not users(a1)["bob"] & {"following"}


def test_users_flags(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("Bob", ALL_CAPS)
    c = server.client().login("carol", ALL_CAPS)
    for x in (a, b, c):
        x.settle()
    follow(a, "bob")
    follow(b, "alice")
    follow(c, "alice")
    c.send("QUIT :bye")
    c.expect_closed()
    a.settle()
    u = users(a)
    assert list(u) == ["alice", "Bob", "carol"], u  # casefolded order, known spelling
    assert u == {"alice": {"online"}, "Bob": {"following", "follower", "online"}, "carol": {"follower"}}
    assert users(b)["alice"] == {"following", "follower", "online"}
    # Labeled: one labeled-response batch.
    a.send("@label=ls USERS")
    start, inside = a.expect_batch("labeled-response")
    assert start.tags.get("label") == "ls"
    assert [m.params[1] for m in inside] == ["alice", "Bob", "carol", "*"]


def test_timeline_excludes_posts_before_the_follow(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob", ALL_CAPS)
    early = posts(b, ["before 1", "before 2"])
    assert early[0].params[0] == "&timeline" and early[0].tags.get("msgid") and early[0].tags.get("time")
    follow(a, "bob")
    later = posts(b, ["after 1", "after 2"])
    a.settle()
    got = join_timeline(a)
    assert [m.params[-1] for m in got] == ["after 1", "after 2"]
    assert ids(got) == ids(later)
    assert [m.tags["time"] for m in got] == [m.tags["time"] for m in later]
    assert all(m.nick == "bob" and m.params[0] == "&timeline" for m in got)
    # Unfollow and follow again: only what comes after the new follow.
    follow(a, "bob", "UNFOLLOW")
    posts(b, ["while unfollowed"])
    follow(a, "bob")
    newest = posts(b, ["after refollow"])
    a.settle()
    assert ids(join_timeline(a)) == ids(newest)


def test_timeline_latest_20_then_live(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob", ALL_CAPS)
    c = server.client().login("carol", ALL_CAPS)
    d = server.client().login("dave", ALL_CAPS)  # in &timeline, follows nobody
    follow(a, "bob")
    follow(a, "carol")
    sent = []
    for i in range(20):
        sent += posts(b if i % 2 else c, ["p%02d" % i])
        sent += posts(b, ["q%02d" % i]) if i % 5 == 0 else []
    a.settle()
    got = join_timeline(a)
    assert len(got) == 20
    assert ids(got) == ids(sent[-20:])
    join_timeline(d)
    # Live: a new post of a followed user, with its time and msgid.
    (live,) = posts(c, ["live one"])
    m = a.expect(lambda m: m.command == "PRIVMSG" and m.params[-1] == "live one")
    assert m.nick == "carol" and m.params[0] == "&timeline" and "batch" not in m.tags
    assert m.tags["msgid"] == live.tags["msgid"] and m.tags["time"] == live.tags["time"]
    d.sync()
    assert not [x for x in d.backlog if x.command == "PRIVMSG"], d.backlog
    # After PART &timeline nothing more comes live.
    a.send("PART &timeline")
    part = a.expect("PART")
    assert part.params[0] == "&timeline" and part.nick == "alice"
    posts(b, ["unseen"])
    a.sync()
    assert not [x for x in a.backlog if x.command == "PRIVMSG"], a.backlog
    a.send("PART &timeline")
    assert a.expect("442").params[1] == "&timeline"


@pytest.mark.open_identity
def test_posting_echo_and_ack(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob", NO_ECHO)
    b2 = server.client().login("bob", ALL_CAPS)
    b2.settle()
    # Posting needs no JOIN; with echo-message the echo carries the label.
    a.send("@label=p1 PRIVMSG &timeline :hello feed")
    echo = a.expect("PRIVMSG")
    assert echo.tags.get("label") == "p1" and echo.params == ["&timeline", "hello feed"]
    assert echo.nick == "alice" and echo.tags.get("msgid")
    # Without echo-message: an ACK; the user's other session sees the post.
    b.send("@label=p2 PRIVMSG &timeline :from bob")
    ack = b.expect("ACK")
    assert ack.tags.get("label") == "p2"
    seen = b2.expect("PRIVMSG")
    assert seen.nick == "bob" and seen.params == ["&timeline", "from bob"]
    # Likes and typing notices are not for the timeline.
    a.send("@+typing=active TAGMSG &timeline")
    assert a.expect("401").params[1] == "&timeline"


@pytest.mark.open_identity
def test_second_session_and_join_0(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob", ALL_CAPS)
    follow(a, "bob")
    (p,) = posts(b, ["one"])
    assert ids(join_timeline(a)) == [p.tags["msgid"]]
    # A new session of a user in &timeline is put in it too.
    a2 = server.client()
    a2.register("alice", ALL_CAPS)
    j = a2.expect("JOIN")
    assert j.params == ["&timeline"]
    _, inside = a2.expect_batch("chathistory")
    assert ids(inside) == [p.tags["msgid"]]
    posts(b, ["two"])
    for c in (a, a2):
        assert c.expect("PRIVMSG").params == ["&timeline", "two"]
    # JOIN 0 leaves it, for both sessions.
    a.send("JOIN 0")
    for c in (a, a2):
        assert c.expect("PART").params[0] == "&timeline"


def test_chathistory_on_timeline(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob", ALL_CAPS)
    follow(a, "bob")
    p = posts(b, ["h%d" % i for i in range(8)])
    a.settle()
    assert ids(a.history("LATEST", "&timeline", "*", 3)) == ids(p[5:])
    assert ids(a.history("LATEST", "&TimeLine", "*", 100)) == ids(p)
    ref = lambda i: "msgid=" + p[i].tags["msgid"]
    assert ids(a.history("LATEST", "&timeline", ref(5), 10)) == ids(p[6:])
    assert ids(a.history("BEFORE", "&timeline", ref(5), 2)) == ids(p[3:5])
    assert ids(a.history("AFTER", "&timeline", ref(2), 3)) == ids(p[3:6])
    assert a.history("AFTER", "&timeline", "msgid=nonexistent", 3) == []
    # bob follows nobody: his timeline is empty.
    assert b.history("LATEST", "&timeline", "*", 10) == []
    a.send("CHATHISTORY AROUND &timeline %s 3" % ref(4))
    f = a.expect("FAIL")
    assert f.params[:3] == ["CHATHISTORY", "INVALID_PARAMS", "AROUND"], f


def test_reconnect_and_restart_keep_follows_and_posts(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob", ALL_CAPS)
    follow(a, "bob")
    p = posts(b, ["durable %d" % i for i in range(3)])
    assert ids(join_timeline(a)) == ids(p)
    a.close()
    a = server.client().login("alice", ALL_CAPS)
    assert ids(join_timeline(a)) == ids(p)
    server.close_clients()
    server.restart()
    a = server.client().login("alice", ALL_CAPS)
    got = join_timeline(a)
    assert ids(got) == ids(p)
    assert [m.tags["time"] for m in got] == [m.tags["time"] for m in p]
    assert users(a)["bob"] == {"following"}
    a.send("FOLLOW bob")
    assert a.expect("FAIL").params[1] == "ALREADY_FOLLOWING"
