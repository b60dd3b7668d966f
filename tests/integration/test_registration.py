"""Connection registration: CAP negotiation, NICK/USER, PASS, the welcome
burst (001-005, LUSERS, MOTD), PING/PONG, QUIT and the early errors."""
import re

import pytest

from conftest import Server
from ircclient import ALL_CAPS


def welcome_lines(c):
    """Reads the registration burst up to the end of the MOTD; returns it."""
    lines = []
    while True:
        m = c.expect(lambda m: True)
        lines.append(m)
        if m.command in ("376", "422"):
            return lines


def isupport_tokens(lines):
    tokens = {}
    for m in lines:
        if m.command == "005":
            for p in m.params[1:-1]:
                key, _, value = p.partition("=")
                tokens[key] = value
    return tokens


def test_cap_ls_302_lists_every_capability(server):
    c = server.client()
    c.send("CAP LS 302")
    ls = c.expect("CAP")
    assert ls.params[0] == "*" and ls.params[1] == "LS", ls
    offered = ls.params[-1].split()
    for cap in ALL_CAPS:
        assert cap in offered, (cap, ls)


def test_cap_req_ack_and_list(server):
    c = server.client()
    c.send("CAP LS 302")
    c.expect(lambda m: m.command == "CAP" and m.params[1] == "LS")
    c.send("CAP REQ :message-tags server-time")
    ack = c.expect("CAP")
    assert ack.params[1] == "ACK" and ack.params[-1].split() == ["message-tags", "server-time"], ack
    c.send("CAP LIST")
    lst = c.expect("CAP")
    assert lst.params[1] == "LIST" and sorted(lst.params[-1].split()) == ["message-tags", "server-time"], lst
    # "-cap" removes one.
    c.send("CAP REQ :-server-time")
    ack = c.expect("CAP")
    assert ack.params[1] == "ACK" and ack.params[-1].strip() == "-server-time", ack
    c.send("CAP LIST")
    lst = c.expect("CAP")
    assert lst.params[-1].split() == ["message-tags"], lst


def test_cap_req_nak_is_all_or_nothing(server):
    c = server.client()
    c.send("CAP LS 302")
    c.expect(lambda m: m.command == "CAP" and m.params[1] == "LS")
    c.send("CAP REQ :batch no-such-capability echo-message")
    nak = c.expect("CAP")
    assert nak.params[1] == "NAK", nak
    assert nak.params[-1].split() == ["batch", "no-such-capability", "echo-message"], nak
    c.send("CAP LIST")
    lst = c.expect("CAP")
    assert lst.params[1] == "LIST" and lst.params[-1].split() == [], lst
    # The capabilities of the refused request really are off: a message
    # sent after registration is not echoed.
    c.send("NICK nakker")
    c.send("USER nakker 0 * :N")
    c.send("CAP END")
    c.expect("001")
    c.expect(lambda m: m.command in ("376", "422"))
    c.join("#nak")
    c.send("PRIVMSG #nak :not echoed")
    c.sync()
    assert not [m for m in c.backlog if m.command == "PRIVMSG"], c.backlog


def test_registration_waits_for_cap_end(server):
    c = server.client()
    c.send("CAP LS 302")
    c.expect(lambda m: m.command == "CAP" and m.params[1] == "LS")
    c.send("NICK waiter")
    c.send("USER waiter 0 * :W")
    # PING is answered before registration; nothing else may come yet.
    c.sync()
    assert not [m for m in c.backlog if m.command == "001"], c.backlog
    c.send("CAP END")
    w = c.expect("001")
    assert w.params[0] == "waiter"


def test_cap_req_alone_also_holds_registration(server):
    c = server.client()
    c.send("CAP REQ :server-time")
    c.expect(lambda m: m.command == "CAP" and m.params[1] == "ACK")
    c.send("NICK reqonly")
    c.send("USER reqonly 0 * :R")
    c.sync()
    assert not [m for m in c.backlog if m.command == "001"], c.backlog
    c.send("CAP END")
    w = c.expect("001")
    assert "time" in w.tags


def test_nick_user_registration_in_either_order(server):
    a = server.client()
    a.send("USER first 0 * :User First")
    a.send("NICK userfirst")
    assert a.expect("001").params[0] == "userfirst"
    a.expect(lambda m: m.command in ("376", "422"))
    a.send("WHO userfirst")
    who = a.expect("352")
    assert who.params[2] == "first" and who.params[-1].endswith("User First"), who


def test_welcome_burst_and_isupport(server):
    c = server.client()
    c.send("NICK welcomed")
    c.send("USER welcomed 0 * :W")
    lines = welcome_lines(c)
    numerics = [m.command for m in lines]
    for num in ("001", "002", "003", "004", "005"):
        assert num in numerics, (num, numerics)
    assert numerics.index("001") < numerics.index("002") < numerics.index("003") \
        < numerics.index("004") < numerics.index("005")
    assert all(m.params[0] == "welcomed" for m in lines if m.command.isdigit())
    tokens = isupport_tokens(lines)
    assert tokens.get("CHATHISTORY") == "100", tokens
    assert tokens.get("MSGREFTYPES") == "msgid,timestamp", tokens
    assert "UTF8ONLY" in tokens, tokens
    for m in lines:
        if m.command == "005":
            assert m.params[-1] == "are supported by this server", m


def test_no_motd_gives_422(server):
    c = server.client()
    c.send("NICK nomotd")
    c.send("USER nomotd 0 * :N")
    lines = welcome_lines(c)
    assert lines[-1].command == "422"
    assert not [m for m in lines if m.command in ("375", "372", "376")]
    c.send("MOTD")
    c.expect("422")


def test_motd_with_flag(make_server):
    srv = make_server(["--motd", "Welcome to the chorus test network"])
    c = srv.client()
    c.send("NICK motd")
    c.send("USER motd 0 * :M")
    lines = welcome_lines(c)
    cmds = [m.command for m in lines]
    assert "422" not in cmds
    assert cmds.index("375") < cmds.index("372") < cmds.index("376")
    body = [m.params[-1] for m in lines if m.command == "372"]
    assert any("Welcome to the chorus test network" in b for b in body), body
    c.send("MOTD")
    c.expect("375")
    assert "Welcome to the chorus test network" in c.expect("372").params[-1]
    c.expect("376")


def test_lusers_counts_users(server):
    a = server.client().login("lu1")
    server.client().login("lu2")
    a.send("LUSERS")
    l251 = a.expect("251")
    assert re.search(r"There are 2 users", l251.params[-1]), l251
    a.expect("254")
    l255 = a.expect("255")
    assert "I have 2 clients" in l255.params[-1], l255
    a.expect("265")


def test_ping_pong(server):
    c = server.client()
    c.send("PING :before-registration")
    pong = c.expect("PONG")
    assert pong.params[-1] == "before-registration"
    c.login("pinger")
    c.send("PING :after registration")
    pong = c.expect("PONG")
    assert pong.params[-1] == "after registration"
    # A PONG from the client gets no answer.
    c.send("PONG :whatever")
    c.sync()
    assert not [m for m in c.backlog if m.command not in ("PONG",)], c.backlog


def test_quit_sends_error_closes_and_tells_co_members(server):
    a = server.client().login("quitter")
    b = server.client().login("stayer")
    a.join("#q")
    b.join("#q")
    b.expect(lambda m: m.command == "JOIN" and m.nick == "stayer")
    a.send("QUIT :gone fishing")
    lines = a.expect_closed()
    errors = [m for m in lines if m.command == "ERROR"]
    assert errors, lines
    assert "gone fishing" in errors[0].params[-1]
    q = b.expect("QUIT")
    assert q.nick == "quitter" and "gone fishing" in q.params[-1], q
    b.settle()
    b.send("NAMES #q")
    names = b.expect("353")
    assert names.params[-1].split() == ["stayer"], names


def test_commands_before_registration_get_451(server):
    c = server.client()
    for line in ("JOIN #early", "PRIVMSG #early :hi", "CHATHISTORY LATEST #early * 10", "LIST"):
        c.send(line)
        err = c.expect(lambda m: m.command.isdigit())
        assert err.command == "451", (line, err)
        assert err.params[0] == "*"
    c.register("late")
    c.join("#early")


def test_unknown_command_421(server):
    c = server.client().login("unknown")
    c.send("FROBNICATE a b c")
    err = c.expect("421")
    assert err.params[:2] == ["unknown", "FROBNICATE"], err
    c.sync()


def test_missing_params_461(server):
    c = server.client()
    c.send("USER onlyone")
    err = c.expect("461")
    assert err.params[1] == "USER", err
    c.login("params")
    for line, cmd in (("JOIN", "JOIN"), ("PART", "PART"), ("TOPIC", "TOPIC"), ("CAP", "CAP"),
                      ("TAGMSG", "TAGMSG"), ("CHATHISTORY", "CHATHISTORY")):
        c.send(line)
        err = c.expect(lambda m: m.command.isdigit() or m.command == "FAIL")
        assert err.command == "461" and err.params[1] == cmd, (line, err)


def test_bad_nick_432(server):
    c = server.client()
    for nick in ("1digit", "-dash", "has.dot", "x" * 31, "é"):
        c.send("NICK " + nick)
        err = c.expect(lambda m: m.command.isdigit())
        assert err.command == "432", (nick, err)
    c.send("NICK")
    assert c.expect(lambda m: m.command.isdigit()).command == "431"
    c.send("NICK " + "x" * 30)
    c.send("USER x 0 * :X")
    assert c.expect("001").params[0] == "x" * 30
    c.expect(lambda m: m.command in ("376", "422"))
    c.settle()
    c.send("NICK bad!nick")
    assert c.expect(lambda m: m.command.isdigit()).command == "432"


def test_password_missing(make_server):
    srv = make_server(["--password", "s3cret"])
    c = srv.client()
    c.send("NICK nopass")
    c.send("USER nopass 0 * :N")
    lines = c.expect_closed()
    cmds = [m.command for m in lines]
    assert "464" in cmds and "001" not in cmds, lines
    assert "ERROR" in cmds, lines


def test_password_wrong(make_server):
    srv = make_server(["--password", "s3cret"])
    c = srv.client()
    c.send("PASS wrong")
    c.send("NICK wrongpass")
    c.send("USER wrongpass 0 * :W")
    lines = c.expect_closed()
    cmds = [m.command for m in lines]
    assert "464" in cmds and "001" not in cmds, lines


def test_password_right(make_server):
    srv = make_server(["--password", "s3cret"])
    c = srv.client()
    c.send("PASS s3cret")
    c.send("NICK rightpass")
    c.send("USER rightpass 0 * :R")
    assert c.expect("001").params[0] == "rightpass"
    c.expect(lambda m: m.command in ("376", "422"))
    c.join("#pw")
    # With CAP negotiation too.
    d = srv.client()
    d.send("PASS s3cret")
    d.register("rightcaps", ("server-time",))


def test_server_name(make_server, tmp_path):
    """--server-name names the replica in every prefix and numeric (and in
    LINKS); a name that is not a host name is refused at start."""
    srv = make_server(["--server-name", "irc.example.org"])
    c = srv.client()
    c.send("NICK named")
    c.send("USER named 0 * :Named")
    w = c.expect("001")
    assert w.source == "irc.example.org", w
    assert c.expect("004").params[1] == "irc.example.org"
    c.expect(lambda m: m.command in ("376", "422"))
    c.send("LINKS")
    link = c.expect("364")
    assert link.source == "irc.example.org" and link.params[1:3] == ["irc.example.org", "irc.example.org"], link
    c.send("PING :x")
    assert c.expect("PONG").source == "irc.example.org"
    for bad in ("two words.org", "nodot", ".lead.org", "x" * 70 + ".org"):
        s = Server(tmp_path / "bad", ["--server-name", bad])
        with pytest.raises(AssertionError, match="exited at start"):
            s.start()
        assert "server name" in s.log()
