"""Accounts on real Corosync: a name registered in two partitions at once
resolves the same way on every replica after the heal (the earlier
registration wins; the other's session is told, logged out and renamed;
what both wrote stays, each under its own name), a guest holding a name
registered on the other side is renamed after the heal, and an account
registered on one replica logs in on any other."""
import base64
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from ircclient import Client  # noqa: E402
from netcluster import PORT  # noqa: E402

CAPS = ("echo-message", "server-time", "message-tags", "batch", "draft/chathistory", "account-tag")


def register(node, nick, password):
    c = node.client(nick, CAPS)
    c.send("REGISTER * * :" + password)
    ok = c.expect(lambda m: m.command in ("REGISTER", "FAIL"), timeout=10)
    assert ok.params[:2] == ["SUCCESS", nick], ok
    c.expect("900")
    c.backlog.clear()
    return c


def login(node, account, password):
    """A SASL PLAIN login on node; returns (client or None, the final numeric)."""
    c = Client(PORT, host=node.addr)
    c.send("CAP REQ :sasl " + " ".join(CAPS))
    c.expect("CAP")
    c.send("NICK %s" % account)
    c.send("USER u 0 * :u")
    c.send("AUTHENTICATE PLAIN")
    c.expect("AUTHENTICATE")
    c.send("AUTHENTICATE " + base64.b64encode(("\0%s\0%s" % (account, password)).encode()).decode())
    done = c.expect(lambda m: m.command in ("903", "904"), timeout=10)
    if done.command != "903":
        c.close()
        return None, done.command
    c.send("CAP END")
    c.expect("001")
    c.expect(lambda m: m.command in ("376", "422"))
    c.backlog.clear()
    return c, done.command


def test_one_name_registered_in_two_partitions(cluster):
    cluster.partition([1, 2], [3, 4, 5])
    cluster.wait_view([1, 2], cluster.nodes[:2])
    cluster.wait_view([3, 4, 5], cluster.nodes[2:])
    left = register(cluster.nodes[0], "zed", "left password")
    right = register(cluster.nodes[2], "zed", "right password")
    # And a guest holds a name on the left that the right registers.
    guest = cluster.nodes[1].client("yuri", CAPS)
    register(cluster.nodes[3], "yuri", "yuri's password").close()
    lines = {}
    for side, c in (("left", left), ("right", right)):
        c.send("JOIN #acc")
        c.expect("JOIN")
        c.send("PRIVMSG #acc :written on the %s" % side)
        lines[side] = c.expect("PRIVMSG").tags["msgid"]
    cluster.heal()
    cluster.wait_view([1, 2, 3, 4, 5])
    cluster.wait_converged(10)
    # Exactly one side lost the name: told, logged out, renamed.
    lost = {}
    for side, c in (("left", left), ("right", right)):
        c.send("PING :x")
        c.expect("PONG", timeout=10)
        lost[side] = [m for m in c.backlog if m.command == "FAIL" and m.params[1] == "ACCOUNT_LOST"]
    assert sorted(len(v) for v in lost.values()) == [0, 1], lost
    loser = "left" if lost["left"] else "right"
    winner = "right" if loser == "left" else "left"
    loser_c = left if loser == "left" else right
    assert any(m.command == "901" for m in loser_c.backlog)
    renamed = [m for m in loser_c.backlog if m.command == "NICK"]
    assert renamed and renamed[-1].params[0].startswith("zed-"), loser_c.backlog
    former = renamed[-1].params[0]
    # The guest is renamed, with a notice; the name is the account's now.
    guest.send("PING :y")
    guest.expect("PONG", timeout=10)
    note = [m for m in guest.backlog if m.command == "NOTE" and m.params[1] == "NICK_RESERVED"]
    nick = [m for m in guest.backlog if m.command == "NICK"]
    assert note and nick and nick[-1].params[0].startswith("yuri-"), guest.backlog
    # Every replica: the winner's password logs in, the loser's does not.
    for node in cluster.nodes:
        ok, _ = login(node, "zed", "%s password" % winner)
        assert ok is not None, "replica %d refused the winner" % node.i
        ok.close()
        bad, numeric = login(node, "zed", "%s password" % loser)
        assert bad is None and numeric == "904"
    # Both lines stay everywhere: the winner's as zed with the account tag,
    # the loser's under the name its sessions were given (the same on every
    # replica), untagged: nothing is shown as the other's.
    for node in cluster.nodes:
        c = node.client("reader%d" % node.i, CAPS)
        hist = {m.tags["msgid"]: (m.nick, m.tags.get("account")) for m in c.history("LATEST", "#acc", "*", 10)}
        c.close()
        assert hist == {lines[winner]: ("zed", "zed"), lines[loser]: (former, None)}, (node.i, hist)
    # The readers' first appearance (OP_USER) was written just now: the
    # replicas agree again once it has spread.
    cluster.wait_converged(10)


def test_login_on_another_replica(cluster):
    register(cluster.nodes[0], "yan", "yan's password").close()
    register(cluster.nodes[1], "xia", "xia's password").close()
    cluster.wait_converged(10)
    yan, _ = login(cluster.nodes[3], "yan", "yan's password")
    assert yan is not None
    assert login(cluster.nodes[4], "yan", "not yan's")[1] == "904"
    xia, _ = login(cluster.nodes[1], "xia", "xia's password")
    yan.send("PRIVMSG xia :across replicas")
    got = xia.expect("PRIVMSG", timeout=10)
    assert got.params[-1] == "across replicas" and got.nick == "yan"
    cluster.wait_converged(10)
    reader, _ = login(cluster.nodes[4], "xia", "xia's password")
    assert [m.params[-1] for m in reader.history("LATEST", "yan", "*", 10)] == ["across replicas"]
    # A guest on yet another replica cannot take either name.
    guest = Client(PORT, host=cluster.nodes[2].addr)
    guest.send("NICK yan")
    guest.send("USER g 0 * :g")
    assert "registered" in guest.expect("433", timeout=10).params[-1]
