"""The basics: register, join, talk, history; the operator verbs."""
import subprocess

from conftest import CHORUSD
from ircclient import ALL_CAPS


def test_register_welcome(server):
    c = server.client()
    c.send("NICK alice")
    c.send("USER alice 0 * :Alice")
    w = c.expect("001")
    assert w.params[0] == "alice"
    isupport = c.expect("005")
    assert any(p.startswith("CHATHISTORY=") for p in isupport.params) or c.expect("005")
    c.expect(lambda m: m.command in ("376", "422"))


def test_two_users_chat(server):
    a = server.client().register("alice", ALL_CAPS)
    b = server.client().register("bob")
    a.join("#room")
    b.join("#room")
    a.send("PRIVMSG #room :hello bob")
    echo = a.expect("PRIVMSG")
    assert echo.params == ["#room", "hello bob"]
    assert "msgid" in echo.tags and "time" in echo.tags
    got = b.expect("PRIVMSG")
    assert got.params == ["#room", "hello bob"] and got.nick == "alice"


def note(c, verb, args=""):
    """Sends verb (DIGEST or SYNCSTATE) with args and returns its NOTE's parameters."""
    c.send(verb + (" " + args if args else ""))
    return c.expect(lambda m: m.command == "NOTE" and m.params[0] == verb).params


def test_digest_of_the_op_set_and_of_the_full_state_survive_a_restart(server):
    """DIGEST is the set digest (kept as ops apply), DIGEST FULL the hash of
    the whole state: both move with a new line, and a restart (which
    rebuilds the state from the store) gives both back unchanged."""
    tool = server.control()
    empty = note(tool, "DIGEST")
    assert empty[2] == "0" * 64, empty
    a = server.client().register("digester", ALL_CAPS)
    a.join("#dig")
    a.send("PRIVMSG #dig :one line")
    a.expect("PRIVMSG")
    fast, full = note(tool, "DIGEST"), note(tool, "DIGEST", "FULL")
    assert fast[2] != empty[2] and full[2] != fast[2], (fast, full)
    assert "operations" in fast[-1] and "state" in full[-1], (fast, full)
    server.close_clients()
    server.restart()
    tool = server.control()
    assert note(tool, "DIGEST")[2:4] == fast[2:4]
    assert note(tool, "DIGEST", "FULL")[2:4] == full[2:4]


def test_syncstate_counts_ops_as_digest_does_on_the_control_socket(server):
    tool = server.control()  # never registers, as chorusctl and the bench don't
    first = note(tool, "SYNCSTATE")
    assert first[1] == "OK" and first[3] == "0", first  # standalone: never syncing
    a = server.client().register("counter", ALL_CAPS)
    a.join("#ops")
    a.send("PRIVMSG #ops :one more op")
    a.expect("PRIVMSG")
    after = note(tool, "SYNCSTATE")
    digest = note(tool, "DIGEST")
    assert int(after[2]) > int(first[2]), (first, after)
    assert after[2] == digest[3] and after[3] == digest[4], (after, digest)


def test_operator_verbs_need_oper_or_the_control_socket(make_server):
    """DIGEST hashes the whole state: over TCP it is refused (481) before
    registration and after, unless the session did OPER with the configured
    operator's password (wrong ones: 464, counted as failed logins)."""
    verifier = subprocess.run([CHORUSD, "--make-verifier"], input="operator password\n",
                              capture_output=True, text=True, check=True).stdout.strip()
    assert verifier.startswith("SCRAM-SHA-256$") and "operator password" not in verifier
    srv = make_server(["--oper", "boss=" + verifier])
    early = srv.client()
    early.send("DIGEST")
    assert early.expect("481")
    c = srv.client().login("ops", ALL_CAPS)
    c.send("SYNCSTATE")
    assert c.expect("481")
    c.send("OPER boss wrong")
    assert c.expect("464")
    c.send("OPER boss :operator password")
    assert c.expect("381")
    assert note(c, "DIGEST")[1] == "OK"
    other = make_server(name="r2")
    d = other.client().login("nobody")
    d.send("OPER boss x")
    assert d.expect("491")


def test_log_lines_are_key_value(server):
    """Every log line: ts=<time> replica=<id> server=<name> level=<level>
    msg="<text>" (the escaping itself: tests/unit/test_log.c)."""
    import re
    c = server.client().login("quoter")
    c.send("PING :x")
    c.expect("PONG")
    pattern = re.compile(r'ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z replica=1 server=r1\.chorus '
                         r'level=(debug|info|warn|error) msg="([^"\\]|\\["\\n]|\\x[0-9a-f]{2})*"')
    lines = [l for l in server.log().splitlines() if l]
    assert lines
    for line in lines:
        assert pattern.fullmatch(line), line
