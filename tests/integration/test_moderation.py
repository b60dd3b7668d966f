"""Moderation (issue 14): a room's founder is its operator; MODE queries and
changes (flags i m n s t, key, limit, lists b e I, o and v), KICK, INVITE,
TOPIC under +t, and what each mode does to JOIN, speaking, NAMES, WHO,
LIST, WHOIS and history. Changes are operations (docs/DESIGN-NOTES.md
"Room modes"); the cluster test shows a ban made in a partition holding
after the merge."""
from ircclient import ALL_CAPS
from test_accounts import logged_in, registered

CAPS = ALL_CAPS + ("multi-prefix", "invite-notify")


def names(c, room):
    c.settle()
    c.send("NAMES " + room)
    got = []
    while True:
        m = c.expect(lambda m: m.command in ("353", "366"))
        if m.command == "366":
            return set(got)
        got += m.params[-1].split()


def mode_line(c, room, change=None):
    """The next MODE line of room (making change, e.g. "+e", if given)."""
    return c.expect(lambda m: m.command == "MODE" and m.params[0] == room
                    and (change is None or m.params[1] == change))


def room(server, name="#mod"):
    """An operator (the founder) and a member of room name."""
    op = server.client().login("boss", CAPS)
    op.join(name)
    member = server.client().login("member", CAPS)
    member.join(name)
    op.settle()
    member.settle()
    return op, member


def test_founder_is_operator_and_mode_query(server):
    op, member = room(server)
    assert names(member, "#mod") == {"@boss", "member"}
    member.send("MODE #mod")
    assert member.expect("324").params[1:] == ["#mod", "+nt"]
    assert member.expect("329").params[1] == "#mod"
    member.send("WHO #mod")
    flags = {m.params[5]: m.params[6] for m in [member.expect("352"), member.expect("352")]}
    assert flags == {"boss": "H@", "member": "H"}, flags
    member.send("MODE #mod +m")
    assert member.expect("482").params[1] == "#mod"


def test_op_and_voice_are_shown_and_counted(server):
    op, member = room(server)
    op.send("MODE #mod +v member")
    for c in (op, member):
        assert mode_line(c, "#mod").params[1:] == ["+v", "member"]
    assert names(op, "#mod") == {"@boss", "+member"}
    op.send("MODE #mod +o member")
    for c in (op, member):
        m = mode_line(c, "#mod")
        assert m.params[1:] == ["+o", "member"] and m.nick == "boss"
    assert names(op, "#mod") == {"@boss", "@+member"}  # multi-prefix
    member.send("MODE #mod -o boss")
    assert mode_line(op, "#mod").params[1:] == ["-o", "boss"]
    op.send("MODE #mod +m")
    assert op.expect("482").params[1] == "#mod"
    op.send("MODE #mod +o ghost")
    assert op.expect("401").params[1] == "ghost"


def test_ban_and_exception(server):
    op, member = room(server)
    op.send("MODE #mod +b member")
    assert mode_line(member, "#mod").params[1:] == ["+b", "member!*@*"]
    member.send("PRIVMSG #mod :can I?")
    assert "+b" in member.expect("404").params[-1]
    op.send("MODE #mod b")
    entry = op.expect("367")
    assert entry.params[1:4] == ["#mod", "member!*@*", "boss"]
    op.expect("368")
    member.send("PART #mod")
    member.expect("PART")
    member.settle()
    member.send("JOIN #mod")
    assert member.expect(lambda m: m.command in ("474", "JOIN")).command == "474"
    op.send("MODE #mod +e member!*@*")
    mode_line(op, "#mod", "+e")
    member.join("#mod")
    member.send("PRIVMSG #mod :excepted")
    assert op.expect("PRIVMSG").params[-1] == "excepted"


def test_invite_only_and_invite(server):
    op, member = room(server)
    op.send("MODE #mod +i")
    mode_line(op, "#mod", "+i")
    guest = server.client().login("guest", CAPS)
    guest.send("JOIN #mod")
    assert guest.expect(lambda m: m.command in ("473", "JOIN")).command == "473"
    member.send("INVITE guest #mod")
    assert member.expect("482").params[1] == "#mod"  # +i: operators invite
    op.send("INVITE guest #mod")
    assert op.expect("341").params[1:3] == ["guest", "#mod"]
    inv = guest.expect("INVITE")
    assert inv.nick == "boss" and inv.params == ["guest", "#mod"]
    assert member.expect("INVITE").params == ["guest", "#mod"]  # invite-notify
    guest.join("#mod")
    op.send("INVITE guest #mod")
    assert op.expect("443").params[1:3] == ["guest", "#mod"]


def test_key_and_limit(server):
    op, member = room(server)
    op.send("MODE #mod +kl sesame 3")
    m = mode_line(member, "#mod")
    assert m.params[1:] == ["+kl", "sesame", "3"], m  # one line, as one change
    member.send("MODE #mod")
    assert member.expect("324").params[1:] == ["#mod", "+ntkl", "sesame", "3"]
    c = server.client().login("third", CAPS)
    c.send("JOIN #mod")
    assert c.expect(lambda m: m.command in ("475", "JOIN")).command == "475"
    c.send("JOIN #mod wrong")
    assert c.expect(lambda m: m.command in ("475", "JOIN")).command == "475"
    op.join("#other")
    op.send("MODE #other +k other")
    mode_line(op, "#other", "+k")
    c.send("JOIN #other,#mod other,sesame")  # each room its key, in order
    assert c.expect("JOIN").params == ["#other"]
    assert c.expect("JOIN").params == ["#mod"]
    d = server.client().login("fourth", CAPS)
    d.send("JOIN #mod sesame")
    assert d.expect(lambda m: m.command in ("471", "JOIN")).command == "471"
    op.send("MODE #mod +l nonsense")
    op.drain()
    assert op.expect("696").params[1:3] == ["#mod", "l"]


def test_moderated_topic_lock_and_no_external(server):
    op, member = room(server)
    member.send("TOPIC #mod :mine")
    assert member.expect("482").params[1] == "#mod"  # +t by default
    op.send("MODE #mod -t")
    mode_line(member, "#mod", "-t")
    member.send("TOPIC #mod :mine now")
    assert member.expect("TOPIC").params == ["#mod", "mine now"]
    op.send("MODE #mod +m")
    mode_line(member, "#mod", "+m")
    member.send("PRIVMSG #mod :quiet?")
    assert "+m" in member.expect("404").params[-1]
    op.send("MODE #mod +v member")
    mode_line(member, "#mod", "+v")
    member.send("PRIVMSG #mod :voiced")
    assert op.expect("PRIVMSG").params[-1] == "voiced"
    outsider = server.client().login("outsider", CAPS)
    outsider.send("PRIVMSG #mod :from outside")
    assert outsider.expect("404").params[1] == "#mod"
    op.send("MODE #mod -mn")
    mode_line(op, "#mod", "-mn")
    outsider.send("PRIVMSG #mod :from outside, allowed")
    assert member.expect(lambda m: m.command == "PRIVMSG" and m.nick == "outsider").params == \
        ["#mod", "from outside, allowed"]


def test_secret_room_hidden_and_history_for_members(server):
    op, member = room(server, "#hidden")
    op.send("PRIVMSG #hidden :secret line")
    op.expect("PRIVMSG")
    op.send("MODE #hidden +s")
    mode_line(op, "#hidden", "+s")
    other = server.client().login("other", CAPS)
    other.send("LIST")
    other.expect("321")
    listed = other.expect(lambda m: m.command in ("322", "323"))
    assert listed.command == "323", listed
    assert names(other, "#hidden") == set()
    other.send("WHOIS boss")
    whois = [other.expect(lambda m: m.command in ("311", "319", "318"))]
    while whois[-1].command != "318":
        whois.append(other.expect(lambda m: m.command in ("311", "319", "318")))
    assert "319" not in [m.command for m in whois]
    other.send("CHATHISTORY LATEST #hidden * 10")
    f = other.expect("FAIL")
    assert f.params[:2] == ["CHATHISTORY", "INVALID_TARGET"], f
    assert [m.params[-1] for m in member.history("LATEST", "#hidden", "*", 10)] == ["secret line"]
    member.send("LIST")
    member.expect("321")
    assert member.expect("322").params[1] == "#hidden"


def test_kick(server):
    op, member = room(server)
    member.send("KICK #mod boss")
    assert member.expect("482").params[1] == "#mod"
    op.send("KICK #mod member :behave")
    for c in (op, member):
        k = c.expect("KICK")
        assert k.nick == "boss" and k.params == ["#mod", "member", "behave"], k
    assert names(op, "#mod") == {"@boss"}
    member.send("PRIVMSG #mod :still here?")
    member.expect("404")
    op.send("KICK #mod member")
    assert op.expect("441").params[1:3] == ["member", "#mod"]
    member.join("#mod")  # a kick is no ban


def test_operator_status_follows_the_account(server):
    alice = registered(server, "alice", caps=CAPS)
    alice.join("#acct")
    alice.close()
    again = logged_in(server, "alice", caps=CAPS)
    again.join("#acct")
    assert names(again, "#acct") == {"@alice"}
    again.send("MODE #acct +i")
    assert mode_line(again, "#acct").params[1:] == ["+i"]


def test_user_modes(server):
    a = server.client().login("umode", CAPS)
    a.send("MODE umode")
    assert a.expect("221").params[1] == "+"
    a.send("MODE umode +i")
    assert a.expect("MODE").params == ["umode", "+i"]
    a.send("MODE umode")
    assert a.expect("221").params[1] == "+i"
    b = server.client().login("other", CAPS)
    b.send("MODE umode +i")
    assert b.expect("502")
    b.send("MODE umode +x")
    assert b.expect("502")
    a.send("MODE umode +x")
    a.expect("501")
