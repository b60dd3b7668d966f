"""Durability: what a client was told is stored (echo, ACK) survives kill -9
and restarts, with the same order and msgids; so do DMs, likes, topics."""
import subprocess
import threading

import pytest

from conftest import CHORUSD, free_port
from ircclient import ALL_CAPS

HIST = ("batch", "message-tags", "server-time", "draft/chathistory")


def full_history(c, target):
    """Every message of target, oldest first (paging back with BEFORE)."""
    out = []
    page = c.history("LATEST", target, "*", 100)
    while page:
        out = page + out
        page = c.history("BEFORE", target, "msgid=" + page[0].tags["msgid"], 100)
    return out


def test_kill9_during_a_stream_keeps_every_echoed_message(server):
    a = server.client().login("streamer", ALL_CAPS)
    a.join("#stream")
    a.settle()
    stop = threading.Event()
    window = threading.Semaphore(100)  # at most 100 lines sent and not yet echoed

    def send_stream():
        i = 0
        try:
            while not stop.is_set():
                if window.acquire(timeout=0.05):
                    a.send("PRIVMSG #stream :line %d" % i)
                    i += 1
        except OSError:
            pass  # the server died

    t = threading.Thread(target=send_stream)
    t.start()
    echoed = []
    try:
        while len(echoed) < 500:
            echoed.append(a.expect("PRIVMSG", timeout=10))
            window.release()
        server.kill9()
    finally:
        stop.set()
        t.join()
    # Echoes already on their way before the kill count too.
    for m in a.expect_closed(timeout=10):
        if m.command == "PRIVMSG":
            echoed.append(m)
    assert len(echoed) >= 500
    assert [m.params[-1] for m in echoed] == ["line %d" % i for i in range(len(echoed))]
    server.start()
    r = server.client().login("checker", ALL_CAPS)
    stored = full_history(r, "#stream")
    stored_ids = [m.tags["msgid"] for m in stored]
    echoed_ids = [m.tags["msgid"] for m in echoed]
    assert stored_ids[:len(echoed_ids)] == echoed_ids, "an acknowledged message is missing or moved"
    assert [m.params[-1] for m in stored[:len(echoed)]] == [m.params[-1] for m in echoed]
    assert [m.tags["time"] for m in stored[:len(echoed)]] == [m.tags["time"] for m in echoed]
    # Whatever else was stored came after, in the order it was sent.
    assert [m.params[-1] for m in stored] == ["line %d" % i for i in range(len(stored))]
    # The replica takes writes again, with fresh msgids.
    r.join("#stream")
    r.send("PRIVMSG #stream :after the crash")
    m = r.expect(lambda m: m.command == "PRIVMSG" and m.params[-1] == "after the crash")
    assert m.tags["msgid"] not in stored_ids


@pytest.mark.open_identity
def test_kill9_right_after_acks_keeps_dm_like_topic(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob", ALL_CAPS)
    a.join("#dur")
    b.join("#dur")
    a.send("PRIVMSG #dur :like me")
    liked = a.expect("PRIVMSG").tags["msgid"]
    b.settle()
    b.send("@+draft/react=1;+draft/reply=%s TAGMSG #dur" % liked)
    assert b.expect(lambda m: m.command == "TAGMSG" and m.nick == "bob").tags["chorus/likes"] == "1"
    a.send("PRIVMSG bob :a direct message")
    dm = a.expect("PRIVMSG").tags["msgid"]
    a.send("TOPIC #dur :durable topic")
    a.expect("TOPIC")
    # Labeled without echo-message: the ACK is the acknowledgement.
    c = server.client().login("carol", ("labeled-response", "message-tags", "batch"))
    c.join("#dur")
    c.settle()
    c.send("@label=k PRIVMSG #dur :acked, not echoed")
    ack = c.expect(lambda m: m.command in ("ACK", "FAIL"))
    assert ack.command == "ACK", ack
    server.kill9()
    server.start()
    r = server.client().login("bob", HIST)
    h = r.history("LATEST", "#dur", "*", 10)
    assert [(m.params[-1], m.tags["chorus/likes"]) for m in h] == [("like me", "1"), ("acked, not echoed", "0")]
    assert h[0].tags["msgid"] == liked
    h = r.history("LATEST", "alice", "*", 10)
    assert [(m.tags["msgid"], m.params[-1]) for m in h] == [(dm, "a direct message")]
    r.send("TOPIC #dur")
    assert r.expect("332").params[-1] == "durable topic"


@pytest.mark.open_identity
def test_clean_restart_keeps_everything(server):
    a = server.client().login("alice", ALL_CAPS)
    b = server.client().login("bob", ALL_CAPS)
    a.join("#keep")
    b.join("#keep")
    a.join("#quiet")
    msgs = []
    for i in range(40):
        who = a if i % 2 == 0 else b
        who.send("PRIVMSG #keep :keep %d" % i)
        msgs.append(who.expect(lambda m, i=i: m.command == "PRIVMSG" and m.params[-1] == "keep %d" % i))
    b.settle()
    b.send("@+draft/react=x;+draft/reply=%s TAGMSG #keep" % msgs[0].tags["msgid"])
    b.expect(lambda m: m.command == "TAGMSG" and m.nick == "bob")
    a.send("TOPIC #keep :kept topic")
    a.expect("TOPIC")
    a.send("PRIVMSG bob :dm before restart")
    dm = a.expect(lambda m: m.command == "PRIVMSG" and m.params[0] == "bob")
    server.close_clients()
    server.restart()
    r = server.client().login("alice", HIST)
    stored = full_history(r, "#keep")
    assert [m.tags["msgid"] for m in stored] == [m.tags["msgid"] for m in msgs]
    assert [m.tags["time"] for m in stored] == [m.tags["time"] for m in msgs]
    assert [m.nick for m in stored] == [m.nick for m in msgs]
    assert stored[0].tags["chorus/likes"] == "1"
    assert all(m.tags["chorus/likes"] == "0" for m in stored[1:])
    assert [m.tags["msgid"] for m in r.history("LATEST", "bob", "*", 10)] == [dm.tags["msgid"]]
    r.settle()
    r.send("LIST")
    rows = {}
    while True:
        m = r.expect(lambda m: m.command in ("322", "323"))
        if m.command == "323":
            break
        rows[m.params[1]] = (m.params[2], m.params[-1])
    assert rows == {"#keep": ("0", "kept topic"), "#quiet": ("0", "")}, rows
    # bob is a known user though offline: a DM to him works.
    r.settle()
    r.send("PRIVMSG bob :after restart")
    r.sync()
    assert not [m for m in r.backlog if m.command.isdigit()], r.backlog
    # Two restarts in a row change nothing.
    server.close_clients()
    server.restart()
    r = server.client().login("zed", HIST)
    assert [m.tags["msgid"] for m in full_history(r, "#keep")] == [m.tags["msgid"] for m in msgs]


def test_one_chorusd_per_data_directory(make_server, tmp_path):
    """A second chorusd on a data directory in use exits with a clear error
    (two would write one store as two replicas); after the first dies, even
    by SIGKILL, the directory is free again."""
    first = make_server(name="shared")
    out = subprocess.run([CHORUSD, "--port", str(free_port()), "--data-dir", first.data_dir],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    assert "is in use by another chorusd (pid %d)" % first.proc.pid in out.stderr, out.stderr
    first.kill9()
    again = make_server(name="shared")
    again.client().login("back")


def test_kill9_then_start_from_the_snapshot_and_the_ops_after_it(make_server):
    """With a snapshot every 10 operations, a replica killed mid-way starts
    from its last snapshot and the operations stored after it: the same
    state (both digests), lines, likes, topic and timeline as before."""
    srv = make_server(["--snapshot-every", "10", "--flood-burst", "1000", "--flood-rate", "1000"])
    a = srv.client().login("alice", ALL_CAPS)
    b = srv.client().login("bob", ALL_CAPS)
    a.join("#snap")
    b.join("#snap")
    msgs = []
    for i in range(37):
        a.send("PRIVMSG #snap :line %d" % i)
        msgs.append(a.expect(lambda m, i=i: m.command == "PRIVMSG" and m.params[-1] == "line %d" % i))
    b.settle()
    b.send("@+draft/react=x;+draft/reply=%s TAGMSG #snap" % msgs[3].tags["msgid"])
    b.expect(lambda m: m.command == "TAGMSG" and m.nick == "bob")
    a.send("TOPIC #snap :snapshotted")
    a.expect("TOPIC")
    b.send("FOLLOW alice")
    b.expect("FOLLOW")
    a.send("PRIVMSG &timeline :a post")
    post = a.expect(lambda m: m.command == "PRIVMSG" and m.params[0] == "&timeline")
    tool = srv.control()
    fast = tool_note(tool, "DIGEST")
    full = tool_note(tool, "DIGEST", "FULL")
    srv.close_clients()
    srv.proc.kill()
    srv.proc.wait()
    srv.start()
    assert "operations from the snapshot and" in srv.log(), srv.log()[-2000:]
    tool = srv.control()
    assert tool_note(tool, "DIGEST")[2:4] == fast[2:4]
    assert tool_note(tool, "DIGEST", "FULL")[2:4] == full[2:4]
    r = srv.client().login("carol", HIST)
    stored = full_history(r, "#snap")
    assert [m.tags["msgid"] for m in stored] == [m.tags["msgid"] for m in msgs]
    assert stored[3].tags["chorus/likes"] == "1"
    b = srv.client().login("bob", ALL_CAPS)
    assert [m.tags["msgid"] for m in b.history("LATEST", "&timeline", "*", 10)] == [post.tags["msgid"]]
    b.send("TOPIC #snap")
    assert b.expect("332").params[-1] == "snapshotted"


def tool_note(c, verb, args=""):
    """Sends verb (DIGEST) with args on the control socket; its NOTE's parameters."""
    c.send(verb + (" " + args if args else ""))
    return c.expect(lambda m: m.command == "NOTE" and m.params[0] == verb).params


def test_a_store_without_a_snapshot_gets_one_at_its_first_write(make_server):
    """A data directory loaded whole (no snapshot yet: made before
    snapshots, or with fewer operations than --snapshot-every) takes one at
    its first write once enough operations were loaded, so the next start
    does not load them all again."""
    srv = make_server(["--flood-burst", "1000", "--flood-rate", "1000"])
    a = srv.client().login("alice", ALL_CAPS)
    a.join("#whole")
    for i in range(30):
        a.send("PRIVMSG #whole :line %d" % i)
        a.expect(lambda m, i=i: m.command == "PRIVMSG" and m.params[-1] == "line %d" % i)
    srv.close_clients()
    srv.restart(["--snapshot-every", "20"])
    assert "operations loaded (no snapshot)" in srv.log()
    a = srv.client().login("alice", ALL_CAPS)
    a.join("#whole")
    a.send("PRIVMSG #whole :one more")
    a.expect(lambda m: m.command == "PRIVMSG" and m.params[-1] == "one more")
    srv.close_clients()
    srv.restart(["--snapshot-every", "20"])
    assert "operations from the snapshot and" in srv.log().split("operations loaded (no snapshot)")[-1]
    r = srv.client().login("carol", HIST)
    assert [m.params[-1] for m in full_history(r, "#whole")] == ["line %d" % i for i in range(30)] + ["one more"]
