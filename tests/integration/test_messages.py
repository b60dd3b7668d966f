"""PRIVMSG and NOTICE to rooms and users: errors, echo-message, direct
messages to online and offline users, and their history from both sides."""
import pytest
from ircclient import ALL_CAPS

HIST = ("batch", "message-tags", "server-time", "draft/chathistory")


def test_room_message_errors(server):
    a = server.client().login("errs")
    other = server.client().login("owner")
    other.join("#closed")
    a.send("PRIVMSG #closed :let me in")
    assert a.expect("404").params[1] == "#closed"
    a.send("PRIVMSG #nowhere :hello")
    assert a.expect("403").params[1] == "#nowhere"
    a.send("PRIVMSG")
    assert a.expect(lambda m: m.command.isdigit()).command == "411"
    a.send("PRIVMSG #closed")
    assert a.expect(lambda m: m.command.isdigit()).command == "412"
    a.send("PRIVMSG #closed :")
    assert a.expect(lambda m: m.command.isdigit()).command == "412"
    a.join("#open")
    a.settle()
    a.send("PRIVMSG #open,#closed :to both")
    assert a.expect(lambda m: m.command.isdigit()).command == "407"
    a.send("PRIVMSG owner,errs :to both")
    assert a.expect(lambda m: m.command.isdigit()).command == "407"
    # None of these was stored or relayed.
    other.sync()
    assert not [m for m in other.backlog if m.command == "PRIVMSG"], other.backlog
    h = server.client().login("reader", HIST)
    assert h.history("LATEST", "#closed", "*", 10) == []


def test_notice_to_room_and_silent_errors(server):
    a = server.client().login("noticer", ALL_CAPS)
    b = server.client().login("hearer")
    a.join("#n")
    b.join("#n")
    a.send("NOTICE #n :a notice")
    echo = a.expect("NOTICE")
    assert echo.params == ["#n", "a notice"] and "msgid" in echo.tags
    got = b.expect("NOTICE")
    assert got.nick == "noticer" and got.params == ["#n", "a notice"]
    # NOTICE never gets an automatic error reply.
    a.settle()
    for line in ("NOTICE #nowhere :x", "NOTICE", "NOTICE #n", "NOTICE nobody :x", "NOTICE #a,#b :x"):
        a.send(line)
    a.sync()
    assert not [m for m in a.backlog if m.command.isdigit()], a.backlog
    h = a.history("LATEST", "#n", "*", 10)
    assert [(m.command, m.params[-1]) for m in h] == [("NOTICE", "a notice")]


def test_echo_message_has_msgid_and_time(server):
    a = server.client().login("echoer", ALL_CAPS)
    b = server.client().login("listener", ("message-tags", "server-time"))
    a.join("#e")
    b.join("#e")
    a.send("PRIVMSG #e :echo me")
    echo = a.expect("PRIVMSG")
    assert echo.nick == "echoer" and echo.params == ["#e", "echo me"]
    assert echo.tags.get("msgid") and echo.tags.get("time")
    got = b.expect("PRIVMSG")
    assert got.tags["msgid"] == echo.tags["msgid"]
    assert got.tags["time"] == echo.tags["time"]


def test_no_echo_without_the_cap(server):
    a = server.client().login("quiet", ("message-tags", "server-time"))
    b = server.client().login("loud", ALL_CAPS)
    a.join("#ne")
    b.join("#ne")
    a.settle()
    a.send("PRIVMSG #ne :no echo for me")
    got = b.expect("PRIVMSG")
    assert got.params == ["#ne", "no echo for me"]
    # b got it: any echo to a was sent before a's PONG.
    a.sync()
    assert not [m for m in a.backlog if m.command == "PRIVMSG"], a.backlog


def test_direct_message_to_online_user(server):
    a = server.client().login("dmsender", ALL_CAPS)
    b = server.client().login("dmtarget", ("message-tags",))
    a.send("PRIVMSG dmtarget :psst")
    echo = a.expect("PRIVMSG")
    assert echo.params == ["dmtarget", "psst"] and echo.tags.get("msgid")
    got = b.expect("PRIVMSG")
    assert got.nick == "dmsender" and got.params == ["dmtarget", "psst"]
    assert got.tags["msgid"] == echo.tags["msgid"]
    # Nick case does not matter.
    a.send("PRIVMSG DMTARGET :again")
    assert a.expect("PRIVMSG").params == ["dmtarget", "again"]
    assert b.expect("PRIVMSG").params[-1] == "again"
    # And a NOTICE.
    a.send("NOTICE dmtarget :a notice")
    assert b.expect("NOTICE").params == ["dmtarget", "a notice"]


def test_direct_message_unknown_nick_401(server):
    a = server.client().login("lonely")
    a.send("PRIVMSG nobody-at-all :hello?")
    assert a.expect(lambda m: m.command.isdigit()).command == "401"
    a.send("PRIVMSG bad!nick :hello?")
    assert a.expect(lambda m: m.command.isdigit()).command == "401"


@pytest.mark.open_identity
def test_direct_message_to_offline_known_user_and_history_both_sides(server):
    carol = server.client().login("carol", ALL_CAPS)
    # carol's own message is stored after her user: once it is echoed, the
    # cluster knows her.
    carol.send("PRIVMSG alice :are you there?")
    # alice is not known yet.
    assert carol.expect(lambda m: m.command in ("401", "PRIVMSG")).command == "401"
    alice = server.client().login("alice", ALL_CAPS)
    carol.send("PRIVMSG alice :hello alice")
    first = carol.expect("PRIVMSG")
    alice.expect("PRIVMSG")
    carol.send("QUIT :bye")
    carol.expect_closed()
    alice.send("PRIVMSG carol :you left, but here is a message")
    second = alice.expect(lambda m: m.command in ("PRIVMSG", "401"))
    assert second.command == "PRIVMSG", second
    assert second.params == ["carol", "you left, but here is a message"]
    want = [(first.tags["msgid"], "carol", "hello alice"),
            (second.tags["msgid"], "alice", "you left, but here is a message")]
    # alice's side: the peer is the target.
    h = alice.history("LATEST", "carol", "*", 10)
    assert [(m.tags["msgid"], m.nick, m.params[-1]) for m in h] == want
    # carol's side, after coming back.
    carol = server.client().login("carol", HIST)
    h = carol.history("LATEST", "alice", "*", 10)
    assert [(m.tags["msgid"], m.nick, m.params[-1]) for m in h] == want
    assert h[1].params[0] == "carol" and h[0].params[0] == "alice"
    # Nick case does not matter for the target.
    h = carol.history("LATEST", "ALICE", "*", 10)
    assert [m.tags["msgid"] for m in h] == [w[0] for w in want]
    # A third user cannot read their conversation.
    eve = server.client().login("eve", HIST)
    h = eve.history("LATEST", "alice", "*", 10)
    assert h == []


@pytest.mark.open_identity
def test_dm_to_self(server):
    """As IRC has it: the sender is also the recipient, so with echo-message
    it gets the line twice, the echo (labeled) and the delivery, one msgid."""
    a = server.client().login("narcissus", ALL_CAPS)
    a.send("@label=me PRIVMSG narcissus :note to self")
    got = [a.expect("PRIVMSG"), a.expect("PRIVMSG")]
    assert [m.params for m in got] == [["narcissus", "note to self"]] * 2
    assert sorted(m.tags.get("label", "") for m in got) == ["", "me"]
    assert got[0].tags["msgid"] == got[1].tags["msgid"]
    a.sync()
    assert not [m for m in a.backlog if m.command == "PRIVMSG"], "a third copy"
    h = a.history("LATEST", "narcissus", "*", 10)
    assert [m.params[-1] for m in h] == ["note to self"]


def test_messages_keep_text_exactly(server):
    a = server.client().login("exact", ALL_CAPS)
    b = server.client().login("exactb")
    a.join("#x")
    b.join("#x")
    texts = ["  leading spaces", "trailing  ", ":starts with colon", "unicode: héllo wörld ✓ 🎉",
             "tabs\tinside", "\x01ACTION waves\x01"]
    for t in texts:
        a.send("PRIVMSG #x :" + t)
        assert a.expect("PRIVMSG").params[-1] == t
        assert b.expect("PRIVMSG").params[-1] == t
    h = a.history("LATEST", "#x", "*", 10)
    assert [m.params[-1] for m in h] == texts


def test_client_tags_go_with_a_message(server):
    """Client-only tags (+...) on PRIVMSG and NOTICE are kept with the line:
    relayed to message-tags clients (not to others), echoed, and in its
    history; they travel to the other replicas with it."""
    a = server.client().login("tagger", ALL_CAPS)
    b = server.client().login("tagged", ALL_CAPS)
    plain = server.client().login("plain")
    for c in (a, b, plain):
        c.join("#tags")
    a.settle()
    b.settle()
    plain.settle()
    a.send("@+draft/reply=abc;+example=va\\slue;label=l1 PRIVMSG #tags :with tags")
    echo = a.expect("PRIVMSG")
    got = b.expect("PRIVMSG")
    for m in (echo, got):
        assert m.tags.get("+draft/reply") == "abc" and m.tags.get("+example") == "va lue", m.tags
    assert "label" not in got.tags
    assert not any(k.startswith("+") for k in plain.expect("PRIVMSG").tags), "no message-tags, no tags"
    h = b.history("LATEST", "#tags", "*", 5)
    assert h[-1].tags.get("+example") == "va lue", h[-1].tags
