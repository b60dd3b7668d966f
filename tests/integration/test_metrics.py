"""The metrics endpoint (--metrics ADDR:PORT): Prometheus text at /metrics
with sessions, operations applied by kind, the write latency histogram,
the view, the sync, the store's size and refusals by limit; other paths
404, other methods 405."""
import re
import urllib.error
import urllib.request

from conftest import free_port


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.fullmatch(r'(\w+)\{([^}]*)\} (\S+)', line)
        assert m, "not a sample: %r" % line
        values[(m.group(1), m.group(2))] = float(m.group(3))
    return text, values


def test_metrics_endpoint(make_server):
    port = free_port()
    srv = make_server(["--metrics", "127.0.0.1:%d" % port, "--max-clients", "3"])
    a = srv.client().login("alice", ("echo-message",))
    a.join("#m")
    for i in range(3):
        a.send("PRIVMSG #m :line %d" % i)
        a.expect("PRIVMSG")
    srv.client().login("bob")
    srv.client().login("carol")
    refused = srv.client()
    assert any(m.command == "ERROR" and "Server full" in m.params[-1] for m in refused.expect_closed())
    text, v = scrape(port)
    r = 'replica="1"'
    assert v[("chorus_sessions", r)] == 3
    assert v[("chorus_ops_applied_total", r + ',kind="message"')] == 3
    assert v[("chorus_ops_applied_total", r + ',kind="room"')] == 1
    assert v[("chorus_write_seconds_count", r)] >= 5  # users, the room, the lines
    assert v[("chorus_write_seconds_bucket", r + ',le="+Inf"')] == v[("chorus_write_seconds_count", r)]
    assert v[("chorus_view_members", r)] == 1 and v[("chorus_view_changes_total", r)] >= 1
    assert v[("chorus_syncing", r)] == 0
    assert v[("chorus_store_bytes", r)] > 0
    assert v[("chorus_refusals_total", r + ',limit="max_clients"')] == 1
    assert "# TYPE chorus_write_seconds histogram" in text
    for path, code in (("/other", 404),):
        try:
            urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5)
            raise AssertionError("no %d for %s" % (code, path))
        except urllib.error.HTTPError as e:
            assert e.code == code
    try:
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/metrics" % port, data=b"x"), timeout=5)
        raise AssertionError("POST answered")
    except urllib.error.HTTPError as e:
        assert e.code == 405
