"""Exactly-once sends: a line sent with a client id (+chorus/cid) and sent
again with the same id by the same person is the same line: the second
send is echoed with the first's msgid and time, nobody else sees it again,
history holds it once, across a restart too. Another person's id is their
own; a DM works the same way."""
from ircclient import ALL_CAPS

HIST = ("batch", "message-tags", "server-time", "draft/chathistory", "echo-message")

BOTH_HISTORY_PATHS = True  # conftest.py: history from RAM's tail and from SQLite


def own_line(c, target):
    return c.expect(lambda m: m.command == "PRIVMSG" and m.nick == c.nick and m.params[0] == target)


def bodies(c, target):
    return [m.params[-1] for m in c.history("LATEST", target, "*", 50)]


def test_a_line_sent_twice_is_one_line(server):
    alice = server.client().login("alice", ALL_CAPS)
    bob = server.client().login("bob", ALL_CAPS)
    for c in (alice, bob):
        c.join("#r")
        c.settle()
    alice.send("@+chorus/cid=k1 PRIVMSG #r :hello")
    first = own_line(alice, "#r")
    assert first.tags["+chorus/cid"] == "k1"
    seen = bob.expect("PRIVMSG")
    assert seen.tags["msgid"] == first.tags["msgid"]
    alice.send("@+chorus/cid=k1;label=again PRIVMSG #r :hello")
    again = own_line(alice, "#r")
    assert again.tags["msgid"] == first.tags["msgid"] and again.tags["time"] == first.tags["time"]
    assert again.tags.get("label") == "again"
    bob.send("PING :x")
    assert bob.expect(lambda m: m.command in ("PRIVMSG", "PONG")).command == "PONG", "bob saw it twice"
    assert bodies(alice, "#r") == ["hello"]
    # Another line, another id: a line of its own; the same id from bob: his.
    alice.send("@+chorus/cid=k2 PRIVMSG #r :hello")
    assert own_line(alice, "#r").tags["msgid"] != first.tags["msgid"]
    bob.send("@+chorus/cid=k1 PRIVMSG #r :mine")
    assert own_line(bob, "#r").tags["msgid"] != first.tags["msgid"]
    assert bodies(alice, "#r") == ["hello", "hello", "mine"]


def test_the_id_outlives_a_restart(server):
    server.client().login("bob", ALL_CAPS)
    alice = server.client().login("alice", ALL_CAPS)
    alice.join("#r")
    alice.send("@+chorus/cid=z9 PRIVMSG #r :before")
    first = own_line(alice, "#r")
    alice.send("@+chorus/cid=d1 PRIVMSG bob :psst")
    dm = own_line(alice, "bob")
    server.restart()
    server.client().login("bob", ALL_CAPS)
    alice = server.client().login("alice", ALL_CAPS)
    alice.join("#r")
    alice.settle()
    alice.send("@+chorus/cid=z9 PRIVMSG #r :before")
    assert own_line(alice, "#r").tags["msgid"] == first.tags["msgid"]
    alice.send("@+chorus/cid=d1 PRIVMSG bob :psst")
    assert own_line(alice, "bob").tags["msgid"] == dm.tags["msgid"]
    assert bodies(alice, "#r") == ["before"]


def test_a_malformed_id_is_no_id(server):
    alice = server.client().login("alice", HIST)
    alice.join("#r")
    for _ in range(2):
        alice.send("@+chorus/cid=a\\sb PRIVMSG #r :spaced id")
        own_line(alice, "#r")
    assert bodies(alice, "#r") == ["spaced id", "spaced id"]
