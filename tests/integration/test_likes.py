"""Likes: TAGMSG with +draft/react / +draft/unreact and +draft/reply (or
+reply); counts relayed live and on replayed lines; refusals; one like per
user; durability. Other TAGMSGs are relayed, never stored."""
import pytest
from ircclient import ALL_CAPS, escape

HIST = ("batch", "message-tags", "server-time", "draft/chathistory")

BOTH_HISTORY_PATHS = True  # conftest.py: history from RAM's tail and from SQLite


def react(c, target, msgid, on=True, reaction="\U0001F44D", reply_key="+draft/reply"):
    key = "+draft/react" if on else "+draft/unreact"
    c.send("@%s=%s;%s=%s TAGMSG %s" % (key, reaction, reply_key, msgid, target))


def own(c):
    """Waits for c's own TAGMSG echo (or a FAIL)."""
    return c.expect(lambda m: m.command == "FAIL" or (m.command == "TAGMSG" and m.nick == c.nick))


def from_(c, nick):
    """Waits for a TAGMSG from nick."""
    return c.expect(lambda m: m.command == "TAGMSG" and m.nick == nick)


def like_room(server):
    """alice (all caps) posts in #l; bob and carol (all caps) are members,
    dave has no message-tags. Returns the clients and alice's echo."""
    alice = server.client().login("alice", ALL_CAPS)
    bob = server.client().login("bob", ALL_CAPS)
    carol = server.client().login("carol", ALL_CAPS)
    dave = server.client().login("dave")
    for c in (alice, bob, carol, dave):
        c.join("#l")
    alice.send("PRIVMSG #l :like this")
    msg = alice.expect("PRIVMSG")
    for c in (alice, bob, carol, dave):
        c.settle()
    return alice, bob, carol, dave, msg


def test_like_relayed_with_count(server):
    alice, bob, carol, dave, msg = like_room(server)
    mid = msg.tags["msgid"]
    react(bob, "#l", mid)
    echo = own(bob)
    assert echo.command == "TAGMSG" and echo.nick == "bob" and echo.params == ["#l"], echo
    assert echo.tags["chorus/likes"] == "1" and echo.tags["+draft/reply"] == mid
    for c in (alice, carol):
        t = c.expect("TAGMSG")
        assert t.nick == "bob" and t.params == ["#l"]
        assert t.tags["+draft/react"] == "\U0001F44D"
        assert t.tags["+draft/reply"] == mid
        assert t.tags["chorus/likes"] == "1"
        assert t.tags.get("msgid") and t.tags.get("time")
    # +reply works as well.
    react(carol, "#l", mid, reply_key="+reply")
    t = from_(alice, "carol")
    assert t.nick == "carol" and t.tags["chorus/likes"] == "2", t
    assert own(carol).tags["chorus/likes"] == "2"
    assert from_(bob, "carol").tags["chorus/likes"] == "2"
    # A client without message-tags sees none of it.
    dave.sync()
    assert not [m for m in dave.backlog if m.command == "TAGMSG"], dave.backlog


def test_long_reaction_relayed_intact(server):
    alice, bob, carol, dave, msg = like_room(server)
    reaction = "r;e a\\ction " * 150  # about 2 KB, with characters that need escaping
    bob.send("@+draft/react=%s;+draft/reply=%s TAGMSG #l" % (escape(reaction), msg.tags["msgid"]))
    t = from_(alice, "bob")
    assert t.tags["+draft/react"] == reaction and t.tags["chorus/likes"] == "1"
    carol.send("@+typing=%s TAGMSG #l" % escape(reaction))
    t = from_(alice, "carol")
    assert t.tags["+typing"] == reaction


def test_unlike(server):
    alice, bob, carol, dave, msg = like_room(server)
    mid = msg.tags["msgid"]
    react(bob, "#l", mid)
    assert alice.expect("TAGMSG").tags["chorus/likes"] == "1"
    react(bob, "#l", mid, on=False)
    t = alice.expect("TAGMSG")
    assert t.nick == "bob" and "+draft/unreact" in t.tags and t.tags["+draft/reply"] == mid
    assert t.tags["chorus/likes"] == "0"
    h = alice.history("LATEST", "#l", "*", 10)
    assert h[-1].tags["chorus/likes"] == "0"
    # Like again after the unlike.
    react(bob, "#l", mid)
    assert alice.expect("TAGMSG").tags["chorus/likes"] == "1"


def test_refusals(server):
    alice, bob, carol, dave, msg = like_room(server)
    mid = msg.tags["msgid"]

    def fail(c):
        f = own(c)
        assert f.command == "FAIL" and f.params[0] == "TAGMSG", f
        return f.params[1]

    react(alice, "#l", mid)
    assert fail(alice) == "OWN_MESSAGE"
    react(bob, "#l", mid)
    own(bob)
    react(bob, "#l", mid)
    assert fail(bob) == "ALREADY_LIKED"
    react(carol, "#l", mid, on=False)
    assert fail(carol) == "NOT_LIKED"
    react(carol, "#l", "no-such-msgid")
    assert fail(carol) == "UNKNOWN_MESSAGE"
    # A message of another room is unknown here.
    carol.join("#elsewhere")
    carol.send("PRIVMSG #elsewhere :other room")
    other = carol.expect("PRIVMSG").tags["msgid"]
    react(bob, "#l", other)
    assert fail(bob) == "UNKNOWN_MESSAGE"
    # Not a member: 404 (like any message to the room).
    react(dave, "#elsewhere", other)
    assert dave.expect(lambda m: m.command.isdigit() or m.command == "FAIL").command == "404"
    # Only bob's like counted.
    for c in (alice, carol):
        c.settle()
    h = carol.history("LATEST", "#l", "*", 10)
    assert [m.tags["chorus/likes"] for m in h] == ["1"]


def test_like_counts_on_replayed_lines(server):
    alice, bob, carol, dave, msg = like_room(server)
    mid = msg.tags["msgid"]
    alice.send("PRIVMSG #l :nobody likes this")
    plain = alice.expect("PRIVMSG").tags["msgid"]
    react(bob, "#l", mid)
    own(bob)
    react(carol, "#l", mid)
    own(carol)
    h = alice.history("LATEST", "#l", "*", 10)
    assert [(m.tags["msgid"], m.tags["chorus/likes"]) for m in h] == [(mid, "2"), (plain, "0")]
    # JOIN replay for a client without chathistory, with message-tags.
    eve = server.client().login("eve", ("batch", "message-tags", "server-time"))
    eve.send("JOIN #l")
    _, lines = eve.expect_batch("chathistory")
    assert [(m.tags["msgid"], m.tags["chorus/likes"]) for m in lines] == [(mid, "2"), (plain, "0")]
    # Without message-tags, no tag at all.
    frank = server.client().login("frank")
    frank.send("JOIN #l")
    frank.expect("366")
    frank.sync()
    replay = [m for m in frank.backlog if m.command == "PRIVMSG"]
    assert len(replay) == 2 and all(m.tags == {} for m in replay)


@pytest.mark.open_identity
def test_like_counts_once_per_user_across_connections(server):
    alice, bob, carol, dave, msg = like_room(server)
    mid = msg.tags["msgid"]
    bob2 = server.client().login("bob", ALL_CAPS)
    react(bob, "#l", mid)
    assert own(bob).tags["chorus/likes"] == "1"
    # bob's other connection sees his like too.
    t = own(bob2)
    assert t.nick == "bob" and t.tags["chorus/likes"] == "1"
    react(bob2, "#l", mid)
    f = own(bob2)
    assert f.command == "FAIL" and f.params[1] == "ALREADY_LIKED", f
    h = alice.history("LATEST", "#l", "*", 10)
    assert h[-1].tags["chorus/likes"] == "1"
    # Unliking from the other connection works: it is the same user.
    react(bob2, "#l", mid, on=False)
    t = alice.expect(lambda m: m.command == "TAGMSG" and "+draft/unreact" in m.tags)
    assert t.nick == "bob" and t.tags["chorus/likes"] == "0"


def test_likes_survive_restart(server):
    alice, bob, carol, dave, msg = like_room(server)
    mid = msg.tags["msgid"]
    react(bob, "#l", mid)
    own(bob)
    react(carol, "#l", mid)
    own(carol)
    react(carol, "#l", mid, on=False)
    own(carol)
    server.close_clients()
    server.restart()
    x = server.client().login("xavier", HIST)
    h = x.history("LATEST", "#l", "*", 10)
    assert [(m.tags["msgid"], m.tags["chorus/likes"]) for m in h] == [(mid, "1")]
    # Like state survived too, not only the count.
    bob = server.client().login("bob", ALL_CAPS)
    bob.join("#l")
    bob.settle()
    react(bob, "#l", mid)
    f = own(bob)
    assert f.command == "FAIL" and f.params[1] == "ALREADY_LIKED", f
    carol = server.client().login("carol", ALL_CAPS)
    carol.join("#l")
    carol.settle()
    react(carol, "#l", mid)
    assert own(carol).tags.get("chorus/likes") == "2"


@pytest.mark.open_identity
def test_like_in_a_direct_conversation(server):
    alice = server.client().login("alice", ALL_CAPS)
    bob = server.client().login("bob", ALL_CAPS)
    carol = server.client().login("carol", ALL_CAPS)
    alice.send("PRIVMSG bob :dm to like")
    mid = alice.expect("PRIVMSG").tags["msgid"]
    bob.expect("PRIVMSG")
    # bob likes it: his target is the other side of the conversation.
    react(bob, "alice", mid)
    t = alice.expect("TAGMSG")
    assert t.nick == "bob" and t.tags["chorus/likes"] == "1" and t.tags["+draft/reply"] == mid
    assert own(bob).tags["chorus/likes"] == "1"
    # carol is not in that conversation.
    react(carol, "alice", mid)
    f = own(carol)
    assert f.command == "FAIL" and f.params[1] == "UNKNOWN_MESSAGE", f
    h = alice.history("LATEST", "bob", "*", 10)
    assert h[-1].tags["chorus/likes"] == "1"


@pytest.mark.open_identity
def test_tagmsg_without_react_is_relayed_not_stored(server):
    alice, bob, carol, dave, msg = like_room(server)
    alice.send("@+typing=active TAGMSG #l")
    for c in (bob, carol):
        t = c.expect("TAGMSG")
        assert t.nick == "alice" and t.params == ["#l"] and t.tags["+typing"] == "active"
        assert t.tags.get("msgid")
    echo = alice.expect("TAGMSG")
    assert echo.tags["+typing"] == "active"
    dave.sync()
    assert not [m for m in dave.backlog if m.command == "TAGMSG"]
    # A react without a reply reference is just relayed too.
    bob.send("@+draft/react=x TAGMSG #l")
    assert alice.expect("TAGMSG").tags["+draft/react"] == "x"
    for c in (alice, bob, carol):
        c.settle()
    h = alice.history("LATEST", "#l", "*", 10)
    assert [m.command for m in h] == ["PRIVMSG"] and h[0].tags["chorus/likes"] == "0"
    # To a user.
    alice.send("@+typing=paused TAGMSG bob")
    t = from_(bob, "alice")
    assert t.params == ["bob"] and t.tags["+typing"] == "paused"
    assert alice.history("LATEST", "bob", "*", 10) == []


def test_labeled_likes(server):
    alice, bob, carol, dave, msg = like_room(server)
    mid = msg.tags["msgid"]
    # With echo-message the echo carries the label.
    bob.send("@label=lk;+draft/react=y;+draft/reply=%s TAGMSG #l" % mid)
    echo = own(bob)
    assert echo.command == "TAGMSG" and echo.tags.get("label") == "lk", echo
    assert "label" not in from_(alice, "bob").tags
    # Refusals carry it too.
    bob.send("@label=again;+draft/react=y;+draft/reply=%s TAGMSG #l" % mid)
    f = own(bob)
    assert f.command == "FAIL" and f.params[1] == "ALREADY_LIKED" and f.tags.get("label") == "again", f
    # Without echo-message: an ACK once stored.
    erin = server.client().login("erin", ("labeled-response", "message-tags", "batch", "server-time",
                                          "draft/chathistory"))
    erin.join("#l")
    erin.settle()
    erin.send("@label=ek;+draft/react=y;+draft/reply=%s TAGMSG #l" % mid)
    ack = erin.expect(lambda m: m.command in ("ACK", "FAIL") or (m.command == "TAGMSG" and m.nick == "erin"))
    assert ack.command == "ACK" and ack.tags.get("label") == "ek", ack
    h = erin.history("LATEST", "#l", "*", 10)
    assert h[-1].tags["chorus/likes"] == "2"
