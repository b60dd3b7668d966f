"""SIGHUP reloads the configuration without dropping clients: the MOTD,
the limits and the replica list (LINKS, the full replica's bounce) take the
file's new values; a file that no longer parses changes nothing; what only a
restart changes is kept, with a warning."""
import signal
import time

from conftest import free_port


def read_motd(c):
    c.send("MOTD")
    lines = []
    while True:
        m = c.expect(lambda m: m.command in ("372", "376", "422"))
        if m.command != "372":
            return lines
        lines.append(m.params[-1])


def write(path, text_motd, max_clients, peer_port):
    path.write_text('server = { motd = "%s"; };\nlimits = { max_clients = %d; };\n'
                    'cluster = { replicas = ( { id = 2; host = "127.0.0.1"; port = %d; } ); };\n'
                    % (text_motd, max_clients, peer_port))


def wait_log(srv, text, timeout=5):
    deadline = time.monotonic() + timeout
    while text not in srv.log():
        assert time.monotonic() < deadline, "no %r in the log:\n%s" % (text, srv.log()[-2000:])
        time.sleep(0.05)


def test_sighup_reloads_motd_limits_and_replicas(make_server, tmp_path):
    conf = tmp_path / "chorus.conf"
    first, second = free_port(), free_port()
    write(conf, "first motd", 100, first)
    srv = make_server(["--config", str(conf)])
    alice = srv.client().login("alice")
    assert any("first motd" in l for l in read_motd(alice))
    write(conf, "second motd", 2, second)
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "configuration reloaded: 1 replica(s) in the cluster list")
    assert any("second motd" in l for l in read_motd(alice)), "alice is still connected and sees the new MOTD"
    bob = srv.client().login("bob")
    full = srv.client()
    lines = full.expect_closed()
    bounce = [m for m in lines if m.command == "010"]
    assert bounce and bounce[0].params[1:3] == ["127.0.0.1", str(second)], lines
    # A file that does not parse: nothing changes.
    conf.write_text("server = { motd = ")
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "configuration: not reloaded")
    assert any("second motd" in l for l in read_motd(bob))
    # What needs a restart is kept, and said.
    write(conf, "third motd", 2, second)
    conf.write_text(conf.read_text() + 'store = { sync = "off"; };\n')
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "change only with a restart")
    assert any("third motd" in l for l in read_motd(bob))
