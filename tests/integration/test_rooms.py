"""Rooms: JOIN (lists, burst, JOIN 0), PART, NAMES, WHO, LIST, TOPIC."""
from ircclient import ALL_CAPS


def names_of(c, room):
    """NAMES room -> the set of nicks (reads 353s up to 366)."""
    c.settle()
    c.send("NAMES " + room)
    nicks = set()
    while True:
        m = c.expect(lambda m: m.command in ("353", "366"))
        if m.command == "366":
            assert m.params[1].lower() == room.lower(), m
            return nicks
        assert m.params[2].lower() == room.lower(), m
        nicks.update(m.params[-1].split())


def test_join_several_rooms_in_one_join(server):
    a = server.client().login("multi")
    a.send("JOIN #one,#two,#three")
    joined = []
    ends = []
    while len(ends) < 3:
        m = a.expect(lambda m: m.command in ("JOIN", "366", "403"))
        assert m.command != "403", m
        if m.command == "JOIN":
            assert m.nick == "multi"
            joined.append(m.params[0])
        else:
            ends.append(m.params[1])
    assert joined == ["#one", "#two", "#three"]
    assert ends == ["#one", "#two", "#three"]
    for room in ("#one", "#two", "#three"):
        assert names_of(a, room) == {"@multi"}  # the founder: an operator


def test_join_list_with_a_bad_name(server):
    a = server.client().login("mixed")
    a.send("JOIN #good,bad,#fine")
    err = a.expect("403")
    assert err.params[1] == "bad"
    a.expect(lambda m: m.command == "366" and m.params[1] == "#fine")
    assert names_of(a, "#good") == {"@mixed"}


def test_join_more_than_ten_rooms_gets_407(server):
    a = server.client().login("greedy")
    rooms = ["#r%d" % i for i in range(12)]
    a.send("JOIN " + ",".join(rooms))
    err = a.expect("407")
    assert err.params[1] == "#r10", err
    a.sync()
    ends = [m.params[1] for m in a.backlog if m.command == "366"]
    assert ends == rooms[:10]


def test_join_burst_names_and_topic(server):
    a = server.client().login("alice")
    a.join("#burst")
    a.settle()
    a.send("TOPIC #burst :the burst topic")
    a.expect(lambda m: m.command == "TOPIC" and m.params == ["#burst", "the burst topic"])
    b = server.client().login("bob")
    b.send("JOIN #burst")
    order = []
    while True:
        m = b.expect(lambda m: True)
        order.append(m)
        if m.command == "366":
            break
    cmds = [m.command for m in order]
    assert cmds[0] == "JOIN" and order[0].nick == "bob" and order[0].params[0] == "#burst", order
    assert cmds.index("332") < cmds.index("333") < cmds.index("353") < cmds.index("366"), cmds
    t332 = order[cmds.index("332")]
    assert t332.params[1:] == ["#burst", "the burst topic"], t332
    t333 = order[cmds.index("333")]
    assert t333.params[1] == "#burst" and t333.params[2].split("!")[0] == "alice", t333
    assert int(t333.params[3]) > 1_600_000_000, t333
    nicks = set()
    for m in order:
        if m.command == "353":
            nicks.update(m.params[-1].split())
    assert nicks == {"@alice", "bob"}
    # alice sees bob arrive.
    j = a.expect("JOIN")
    assert j.nick == "bob" and j.params[0] == "#burst"


def test_join_burst_without_topic_has_no_332(server):
    a = server.client().login("plain")
    a.send("JOIN #notopic")
    a.expect("366")
    assert not [m for m in a.backlog if m.command in ("331", "332", "333")], a.backlog


def test_join_twice_is_a_no_op(server):
    a = server.client().login("twice")
    b = server.client().login("watcher")
    a.join("#twice")
    b.join("#twice")
    a.settle()
    b.settle()
    a.send("JOIN #twice")
    a.sync()
    b.sync()
    assert not [m for m in a.backlog if m.command == "JOIN"], a.backlog
    assert not [m for m in b.backlog if m.command == "JOIN"], b.backlog


def test_part_seen_by_others_and_442(server):
    a = server.client().login("alice")
    b = server.client().login("bob")
    a.join("#p")
    b.join("#p")
    a.settle()
    b.send("PART #p :see you")
    mine = b.expect("PART")
    assert mine.nick == "bob" and mine.params == ["#p", "see you"]
    theirs = a.expect("PART")
    assert theirs.nick == "bob" and theirs.params == ["#p", "see you"]
    assert names_of(a, "#p") == {"@alice"}
    b.send("PART #p")
    err = b.expect("442")
    assert err.params[1] == "#p"
    b.send("PART #never-existed")
    assert b.expect("403").params[1] == "#never-existed"
    # A non-member may not talk in the room any more.
    b.send("PRIVMSG #p :still here?")
    assert b.expect("404").params[1] == "#p"


def test_join_0_leaves_every_room(server):
    a = server.client().login("leaver")
    b = server.client().login("bystander")
    for room in ("#j1", "#j2"):
        a.join(room)
        b.join(room)
    b.settle()
    a.settle()
    a.send("JOIN 0")
    parts = [a.expect("PART"), a.expect("PART")]
    assert sorted(p.params[0] for p in parts) == ["#j1", "#j2"]
    seen = [b.expect("PART"), b.expect("PART")]
    assert sorted(p.params[0] for p in seen) == ["#j1", "#j2"]
    assert all(p.nick == "leaver" for p in seen)
    assert names_of(b, "#j1") == {"bystander"}
    assert names_of(b, "#j2") == {"bystander"}


def test_names_of_a_room(server):
    a = server.client().login("n1")
    b = server.client().login("n2")
    c = server.client().login("n3")
    for x in (a, b, c):
        x.join("#names")
    assert names_of(c, "#names") == {"@n1", "n2", "n3"}
    # A room nobody is in: just the end.
    c.settle()
    c.send("NAMES #empty-room")
    end = c.expect(lambda m: m.command in ("353", "366"))
    assert end.command == "366" and end.params[1] == "#empty-room"


def test_who_room_and_nick(server):
    a = server.client().login("whoa", user="ua")
    b = server.client().login("whob", user="ub")
    a.join("#who")
    b.join("#who")
    a.settle()
    a.send("WHO #who")
    rows = []
    while True:
        m = a.expect(lambda m: m.command in ("352", "315"))
        if m.command == "315":
            assert m.params[1] == "#who"
            break
        rows.append(m)
    by_nick = {m.params[5]: m for m in rows}
    assert set(by_nick) == {"whoa", "whob"}
    assert by_nick["whob"].params[1] == "#who" and by_nick["whob"].params[2] == "ub"
    assert by_nick["whob"].params[-1] == "0 Real whob", by_nick["whob"]
    a.send("WHO whob")
    m = a.expect("352")
    assert m.params[5] == "whob"
    assert a.expect("315").params[1] == "whob"
    a.send("WHO nobody-here")
    end = a.expect(lambda m: m.command in ("352", "315"))
    assert end.command == "315"


def test_list_rooms_with_counts_and_topics(server):
    a = server.client().login("lister")
    b = server.client().login("other")
    a.join("#lista")
    b.join("#lista")
    b.join("#listb")
    a.settle()
    a.send("TOPIC #lista :room a topic")
    a.expect("TOPIC")
    b.send("PART #listb")
    b.expect("PART")
    a.settle()
    a.send("LIST")
    a.expect("321")
    rows = {}
    while True:
        m = a.expect(lambda m: m.command in ("322", "323"))
        if m.command == "323":
            break
        rows[m.params[1]] = (m.params[2], m.params[-1])
    assert rows["#lista"] == ("2", "room a topic"), rows
    # A room everybody left is still known (it has existed), with 0 members.
    assert rows["#listb"] == ("0", ""), rows
    a.send("LIST #lista")
    a.expect("321")
    m = a.expect(lambda m: m.command in ("322", "323"))
    assert m.command == "322" and m.params[1] == "#lista"
    assert a.expect(lambda m: m.command in ("322", "323")).command == "323"


def test_topic_query_set_and_permissions(server):
    a = server.client().login("topper", ALL_CAPS)
    b = server.client().login("member")
    c = server.client().login("outsider")
    a.join("#t")
    b.join("#t")
    a.settle()
    b.settle()
    a.send("TOPIC #t")
    none = a.expect(lambda m: m.command in ("331", "332"))
    assert none.command == "331" and none.params[1] == "#t"
    a.send("TOPIC #t :a new topic")
    mine = a.expect("TOPIC")
    assert mine.nick == "topper" and mine.params == ["#t", "a new topic"]
    theirs = b.expect("TOPIC")
    assert theirs.nick == "topper" and theirs.params == ["#t", "a new topic"]
    for who in (b, c):
        who.send("TOPIC #t")
        t = who.expect(lambda m: m.command in ("331", "332"))
        assert t.command == "332" and t.params[1:] == ["#t", "a new topic"], t
        t333 = who.expect("333")
        assert t333.params[2].split("!")[0] == "topper"
    # Only members may set it.
    c.send("TOPIC #t :hijacked")
    assert c.expect("442").params[1] == "#t"
    c.send("TOPIC #nosuchroom :x")
    assert c.expect("403").params[1] == "#nosuchroom"
    # Too long.
    a.send("TOPIC #t :" + "x" * 391)
    fail = a.expect("FAIL")
    assert fail.params[:3] == ["TOPIC", "TOO_LONG", "#t"], fail
    b.send("TOPIC #t")
    assert b.expect("332").params[-1] == "a new topic"


def test_topic_survives_restart(server):
    a = server.client().login("keeper", ALL_CAPS)
    a.join("#keep")
    a.send("TOPIC #keep :kept across restarts")
    a.expect("TOPIC")
    server.close_clients()
    server.restart()
    b = server.client().login("later")
    b.send("TOPIC #keep")
    t = b.expect(lambda m: m.command in ("331", "332"))
    assert t.command == "332" and t.params[-1] == "kept across restarts", t
    assert b.expect("333").params[2].split("!")[0] == "keeper"
    b.send("JOIN #keep")
    t = b.expect(lambda m: m.command in ("332", "366"))
    assert t.command == "332" and t.params[-1] == "kept across restarts"


def test_room_names_are_case_insensitive(server):
    a = server.client().login("upper", ALL_CAPS)
    b = server.client().login("lower", ALL_CAPS)
    a.join("#CaseRoom")
    a.send("PRIVMSG #CaseRoom :first")
    a.expect("PRIVMSG")
    b.send("JOIN #caseroom")
    j = b.expect("JOIN")
    assert j.params == ["#CaseRoom"], j  # the room keeps its first spelling
    b.expect("366")
    assert names_of(b, "#CASEROOM") == {"@upper", "lower"}
    b.send("PRIVMSG #CASEROOM :second")
    echo = b.expect("PRIVMSG")
    assert echo.params == ["#CaseRoom", "second"]
    assert a.expect("PRIVMSG").params == ["#CaseRoom", "second"]
    h = b.history("LATEST", "#caseROOM", "*", 10)
    assert [m.params for m in h] == [["#CaseRoom", "first"], ["#CaseRoom", "second"]]


def test_room_names_without_controls_or_bidi_marks(server):
    """Names that would hide or reorder how a room shows are refused (403):
    controls (C0, DEL, C1), bidi marks, embeddings, overrides and isolates,
    zero-width characters; other UTF-8 is a name like any."""
    c = server.client().login("namer")
    for bad in ["#a\u202eb", "#a\u200fb", "#a\u2067b", "#a\u200bb", "#a\ufeffb", "#a\x7fb", "#a\u0085b",
                "#a\u061cb", "#a\u2066"]:
        c.send("JOIN " + bad)
        m = c.expect(lambda m: m.command in ("403", "JOIN"))
        assert m.command == "403", (bad, m)
    c.join("#café")  # waits for its 366
