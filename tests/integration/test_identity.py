"""With server.identity = open (the seeds' rule for trusted networks), a user
is a name: several connections with one nick share rooms and see each
other's sends; NICK renames; SETNAME. With accounts (the default) the same
holds for the sessions of one account: test_accounts.py."""
import pytest

from ircclient import ALL_CAPS

pytestmark = pytest.mark.open_identity


def test_second_connection_gets_the_users_rooms(server):
    a1 = server.client().login("alice", ALL_CAPS)
    a1.join("#one")
    a1.join("#two")
    a1.send("TOPIC #two :topic of two")
    a1.expect("TOPIC")
    a1.send("PRIVMSG #one :said before the second connection")
    said = a1.expect("PRIVMSG")
    a2 = server.client()
    a2.register("alice")
    joins = [a2.expect("JOIN"), a2.expect("JOIN")]
    assert sorted(j.params[0] for j in joins) == ["#one", "#two"]
    assert all(j.nick == "alice" for j in joins)
    a2.sync()
    topics = [m for m in a2.backlog if m.command == "332"]
    assert [(m.params[1], m.params[2]) for m in topics] == [("#two", "topic of two")]
    ends = sorted(m.params[1] for m in a2.backlog if m.command == "366")
    assert ends == ["#one", "#two"]
    # Without chathistory it gets the rooms' last lines, like any JOIN.
    replay = [m for m in a2.backlog if m.command == "PRIVMSG"]
    assert [(m.params[0], m.params[-1]) for m in replay] == [("#one", said.params[-1])]
    # Other users see one alice, not two.
    b = server.client().login("bob")
    b.send("JOIN #one")
    b.expect("366")
    names = set()
    for m in b.backlog:
        if m.command == "353":
            names.update(m.params[-1].split())
    assert names == {"@alice", "bob"}  # alice made #one: its operator
    b.settle()
    b.send("LUSERS")
    assert "There are 2 users" in b.expect("251").params[-1]


def test_connections_see_each_others_sends(server):
    a1 = server.client().login("alice", ALL_CAPS)
    a1.join("#shared")
    a2 = server.client().login("alice", ("message-tags",))
    b = server.client().login("bob", ALL_CAPS)
    b.join("#shared")
    a2.settle()
    a1.settle()
    a1.send("PRIVMSG #shared :from connection one")
    echo = a1.expect("PRIVMSG")
    seen = a2.expect("PRIVMSG")
    assert seen.nick == "alice" and seen.params == ["#shared", "from connection one"]
    assert seen.tags["msgid"] == echo.tags["msgid"]
    assert b.expect("PRIVMSG").tags["msgid"] == echo.tags["msgid"]
    # a2 has no echo-message: it does not get its own line back, but a1 does.
    a2.send("PRIVMSG #shared :from connection two")
    seen = a1.expect("PRIVMSG")
    assert seen.nick == "alice" and seen.params[-1] == "from connection two"
    b.expect("PRIVMSG")
    a2.sync()
    assert not [m for m in a2.backlog if m.command == "PRIVMSG"], a2.backlog
    # Direct messages: both connections see what alice sends and receives.
    a1.send("PRIVMSG bob :dm from alice")
    a1.expect("PRIVMSG")
    assert a2.expect("PRIVMSG").params == ["bob", "dm from alice"]
    b.expect("PRIVMSG")
    b.send("PRIVMSG alice :dm to alice")
    for c in (a1, a2):
        m = c.expect("PRIVMSG")
        assert m.nick == "bob" and m.params == ["alice", "dm to alice"]


def test_label_only_on_the_sending_connection(server):
    a1 = server.client().login("alice", ALL_CAPS)
    a2 = server.client().login("alice", ALL_CAPS)
    a1.join("#lbl")
    a2.settle()
    a1.settle()
    a1.send("@label=mine PRIVMSG #lbl :labeled")
    e1 = a1.expect("PRIVMSG")
    e2 = a2.expect("PRIVMSG")
    assert e1.tags.get("label") == "mine"
    assert "label" not in e2.tags and e2.tags["msgid"] == e1.tags["msgid"]


def test_join_and_part_from_one_connection_apply_to_all(server):
    a1 = server.client().login("alice", ALL_CAPS)
    a2 = server.client().login("alice")
    a1.send("JOIN #together")
    for c in (a1, a2):
        j = c.expect("JOIN")
        assert j.nick == "alice" and j.params == ["#together"]
        c.expect("366")
    # Once this is echoed the room is stored (known even when empty).
    a1.send("PRIVMSG #together :stored")
    a1.expect("PRIVMSG")
    assert a2.expect("PRIVMSG").params[-1] == "stored"
    a2.send("PART #together :bye")
    for c in (a1, a2):
        assert c.expect("PART").params[0] == "#together"
    a1.settle()
    a1.send("PRIVMSG #together :am I in?")
    assert a1.expect("404").params[1] == "#together"


def test_user_stays_while_one_connection_remains(server):
    a1 = server.client().login("alice")
    a2 = server.client().login("alice")
    b = server.client().login("bob")
    a1.join("#stay")
    b.join("#stay")
    b.settle()
    a1.send("QUIT :one of two")
    a1.expect_closed()
    a2.sync()
    b.sync()
    assert not [m for m in b.backlog if m.command == "QUIT"], b.backlog
    a2.send("PRIVMSG #stay :still here")
    assert b.expect("PRIVMSG").params[-1] == "still here"
    a2.send("QUIT :last one")
    q = b.expect("QUIT")
    assert q.nick == "alice" and "last one" in q.params[-1]


def test_nick_rename_seen_by_co_members(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob")
    a.join("#ren")
    b.join("#ren")
    a.settle()
    b.settle()
    a.send("NICK alicia")
    mine = a.expect("NICK")
    assert mine.nick == "alice" and mine.params == ["alicia"]
    theirs = b.expect("NICK")
    assert theirs.nick == "alice" and theirs.params == ["alicia"]
    a.send("PRIVMSG #ren :new name")
    assert a.expect("PRIVMSG").nick == "alicia"
    assert b.expect("PRIVMSG").nick == "alicia"
    b.settle()
    b.send("NAMES #ren")
    assert set(b.expect("353").params[-1].split()) == {"alicia", "bob"}
    b.settle()
    # The new name is known: a DM to it works after alicia leaves.
    a.send("QUIT")
    a.expect_closed()
    b.send("PRIVMSG alicia :hello")
    b.send("PRIVMSG nobody-ever :hello")
    m = b.expect(lambda m: m.command.isdigit())
    assert m.command == "401" and m.params[1] == "nobody-ever", m


def test_nick_rename_told_once_per_co_member(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob")
    b2 = server.client().login("bob")
    for room in ("#r1", "#r2", "#r3"):
        a.join(room)
        b.join(room)
    for c in (a, b, b2):
        c.settle()
    a.send("NICK alicia")
    for c in (a, b, b2):
        m = c.expect("NICK")
        assert m.nick == "alice" and m.params == ["alicia"]
    for c in (a, b, b2):
        c.sync()
        assert not [m for m in c.backlog if m.command == "NICK"], (c.nick, c.backlog)


def test_nick_of_one_connection_of_several_leaves_the_identity(server):
    a1 = server.client().login("alice")
    a2 = server.client().login("alice")
    b = server.client().login("bob")
    a1.join("#id")
    b.join("#id")
    for c in (a1, a2, b):
        c.settle()
    a1.send("NICK other")
    assert a1.expect("NICK").params == ["other"]
    part = a1.expect("PART")
    assert part.params[0] == "#id"
    # alice is still there through a2; nobody else is told anything.
    for c in (a2, b):
        c.sync()
        assert not [m for m in c.backlog if m.command in ("NICK", "PART", "QUIT")], c.backlog
    b.send("PRIVMSG #id :still alice?")
    assert a2.expect("PRIVMSG").params[-1] == "still alice?"
    a1.sync()
    assert not [m for m in a1.backlog if m.command == "PRIVMSG"], a1.backlog


def test_nick_case_change(server):
    a = server.client().login("casey")
    a.send("NICK CASEY")
    assert a.expect("NICK").params == ["CASEY"]
    a.send("PING :x")
    assert a.expect("PONG")


def test_nick_to_an_online_identity_joins_it(server):
    a = server.client().login("alice")
    a.join("#a-room")
    x = server.client().login("xavier")
    x.join("#x-room")
    x.settle()
    x.send("NICK alice")
    x.expect("NICK")
    # x leaves its old rooms (PART) and gets alice's.
    part = x.expect("PART")
    assert part.params[0] == "#x-room"
    j = x.expect("JOIN")
    assert j.params[0] == "#a-room" and j.nick == "alice"


def test_setname(server):
    a = server.client().login("alice", ALL_CAPS)
    a2 = server.client().login("alice", ("setname",))
    b = server.client().login("bob", ("setname",))
    c = server.client().login("carol")
    for x in (a, b, c):
        x.join("#sn")
    a.join("#sn2")
    b.join("#sn2")
    for x in (a, a2, b, c):
        x.settle()
    a.send("SETNAME :Alice Liddell")
    for x in (a, a2):
        m = x.expect("SETNAME")
        assert m.nick == "alice" and m.params == ["Alice Liddell"]
    # A co-member with the cap is told too, once even when sharing two rooms.
    m = b.expect("SETNAME")
    assert m.nick == "alice" and m.params == ["Alice Liddell"]
    b.sync()
    assert not [m for m in b.backlog if m.command == "SETNAME"], b.backlog
    # Not a client without the cap.
    c.sync()
    assert not [m for m in c.backlog if m.command == "SETNAME"]
    c.send("WHO alice")
    who = c.expect("352")
    assert who.params[-1] == "0 Alice Liddell", who
    a.send("SETNAME :" + "x" * 201)
    f = a.expect("FAIL")
    assert f.params[:2] == ["SETNAME", "INVALID_REALNAME"]
