"""The IRC that real clients expect beyond rooms (issue 14): AWAY with
away-notify, MONITOR, WHOWAS, WHOX, WHOIS idle, USERHOST, ISON, operator
KILL and WALLOPS, TIME, INFO, ADMIN, HELP, LUSERS, and the capabilities a
client asks for at once. irctest (make irctest) checks them at length;
these make sure `make test` notices if one breaks."""
from ircclient import ALL_CAPS

CAPS = ALL_CAPS + ("away-notify", "extended-monitor", "multi-prefix")


def numerics(c, until):
    got = []
    while True:
        m = c.expect(lambda m: m.command[:1].isdigit())
        got.append(m)
        if m.command == until:
            return got


def test_capabilities_offered(server):
    c = server.client()
    c.send("CAP LS 302")
    caps = c.expect("CAP").params[-1].split()
    for cap in ("invite-notify", "multi-prefix", "userhost-in-names", "away-notify",
                "extended-monitor", "cap-notify", "chghost"):
        assert cap in caps, (cap, caps)


def test_away(server):
    a = server.client().login("sleepy", CAPS)
    b = server.client().login("watcher", CAPS)
    a.join("#nap")
    b.join("#nap")
    a.send("AWAY :gone fishing")
    a.expect("306")
    aw = b.expect("AWAY")
    assert aw.nick == "sleepy" and aw.params == ["gone fishing"]
    b.send("PRIVMSG sleepy :are you there?")
    assert b.expect("301").params[1:] == ["sleepy", "gone fishing"]
    b.send("WHO #nap")
    flags = {m.params[5]: m.params[6] for m in [b.expect("352"), b.expect("352")]}
    assert flags["sleepy"].startswith("G") and flags["watcher"].startswith("H"), flags
    b.send("USERHOST sleepy watcher")
    assert set(b.expect("302").params[1].split()) == {"sleepy=-sleepy@chorus", "watcher=+watcher@chorus"}
    a.send("AWAY")
    a.expect("305")
    assert b.expect("AWAY").params == []


def test_monitor_ison_and_whowas(server):
    w = server.client().login("lookout", CAPS)
    w.send("MONITOR + friend,Other")
    assert [w.expect("731").params[1] for _ in range(2)] == ["friend", "Other"]
    f = server.client().login("friend", CAPS)
    assert w.expect("730").params[1].startswith("friend!")
    w.send("ISON friend nobody")
    assert w.expect("303").params[1] == "friend"
    w.send("MONITOR L")
    listed = [m.params[1] for m in numerics(w, "733") if m.command == "732"]
    assert set(",".join(listed).split(",")) == {"friend", "Other"}, listed
    f.send("QUIT :bye")
    assert w.expect("731").params[1] == "friend"
    w.send("WHOWAS friend")
    got = numerics(w, "369")
    assert [m.command for m in got] == ["314", "312", "369"], got
    assert got[0].params[1] == "friend"
    w.send("WHOWAS never")
    assert [m.command for m in numerics(w, "369")] == ["406", "369"]


def test_whox_and_whois_idle(server):
    a = server.client().login("xavier", CAPS)
    b = server.client().login("yolanda", CAPS)
    a.join("#x")
    b.send("WHO #x %tcnfr,42")
    assert b.expect("354").params[1:] == ["42", "#x", "xavier", "H@", "Real xavier"]
    b.expect("315")
    b.send("WHOIS xavier")
    idle = b.expect("317")
    assert idle.params[1] == "xavier" and int(idle.params[2]) < 60 and int(idle.params[3]) > 1700000000


def test_operator_kill_and_wallops(make_server):
    import subprocess
    from conftest import CHORUSD
    verifier = subprocess.run([CHORUSD, "--make-verifier"], input="opersecret\n", text=True,
                              capture_output=True, check=True).stdout.strip()
    srv = make_server(["--oper", "boss=" + verifier])
    boss = srv.client().login("boss", CAPS)
    victim = srv.client().login("victim", CAPS)
    listener = srv.client().login("listener", CAPS)
    victim.send("KILL boss :no")
    assert victim.expect("481")
    boss.send("OPER boss opersecret")
    boss.expect("381")
    assert boss.expect("MODE").params == ["boss", "+o"]
    listener.send("MODE listener +w")
    listener.expect("MODE")
    boss.send("WALLOPS :maintenance at noon")
    w = listener.expect("WALLOPS")
    assert w.nick == "boss" and w.params == ["maintenance at noon"]
    boss.send("KILL victim :spamming")
    closed = victim.expect_closed()
    assert any(m.command == "ERROR" and "Killed (boss (spamming))" in m.params[-1] for m in closed), closed


def test_small_commands(server):
    c = server.client().login("curious", CAPS)
    c.send("TIME")
    assert c.expect("391").params[1] == "r1.chorus"
    c.send("INFO")
    assert numerics(c, "374")[0].command == "371"
    c.send("ADMIN")
    assert [m.command for m in numerics(c, "259")] == ["256", "257", "258", "259"]
    c.send("HELP MODE")
    assert [m.command for m in numerics(c, "706")] == ["704", "705", "706"]
    c.send("HELP NOSUCHTHING")
    c.expect("524")
    c.send("LUSERS")
    got = {m.command: m for m in numerics(c, "266")}
    assert got["265"].params[1] == "1" and got["266"].params[1] == "1", got
