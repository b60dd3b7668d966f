"""Catch-up links (src/link) on real Corosync: a replica that missed more
than REPL_DIRECT_MIN operations gets them from its resenders over direct
links; with a link key that differs from the others' it gets them through
Corosync instead, and so it does when its link port drops every packet (the
link gives up after 15 s without an answer). Either way it ends with the
others' digest."""
import os
import subprocess
import time

from netcluster import CHORUSD, PORT

BENCH = os.path.join(os.path.dirname(CHORUSD), "chorus-bench")


def write_lots(nodes, at_least=32000):
    """Writes at saturation from clients on nodes, a second at a time, until
    they hold at least at_least operations: about a quarter of them in each
    node's stream, so every stream's part is past REPL_DIRECT_MIN (4,096)
    however fast this machine is today."""
    targets = ",".join("%s:%d" % (n.addr, PORT) for n in nodes)
    start = nodes[0].syncstate()[0]
    for _ in range(30):
        out = subprocess.run([BENCH, "-t", targets, "-c", "40", "-r", "8", "-R", "0", "-w", "8", "--warmup", "0.2",
                              "-d", "1"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-500:]
        if nodes[0].syncstate()[0] - start >= at_least:
            return
    raise AssertionError("fewer than %d operations written in 30 s" % at_least)


def catch_up(cluster, node, wipe):
    """Restarts node (killed before) and waits until it holds what the others
    hold, with their digest."""
    want = cluster.nodes[0].digest()
    node.start_chorusd(wipe=wipe)
    deadline = time.monotonic() + 60
    while node.syncstate() != (want[1], False):
        assert time.monotonic() < deadline, "replica %d did not catch up: %s of %s" % (
            node.i, node.syncstate(), want)
        time.sleep(0.05)
    assert node.digest() == want


def test_catch_up_over_links_and_without_them(cluster):
    last = cluster.nodes[4]
    last.kill9()
    write_lots(cluster.nodes[:4])
    catch_up(cluster, last, wipe=True)
    log = last.log()
    assert "link from replica 1 open" in log, log[-3000:]
    assert "batch of" in log and " taken" in log
    assert " refused" not in log
    assert "link to replica 5" in cluster.nodes[0].log()

    # Another key on replica 5: its links fail, Corosync carries the resends.
    last.kill9()
    write_lots(cluster.nodes[:4])
    with open(os.path.join(last.dir, "link.key"), "w") as f:
        f.write(os.urandom(24).hex())
    before = len(last.log())
    catch_up(cluster, last, wipe=False)
    assert "taken" not in last.log()[before:]
    assert "link to replica 5 closed (TLS failed" in cluster.nodes[0].log()

    # Its link port drops every packet: the link waits 15 s for an answer,
    # gives up, and Corosync carries the resends.
    last.kill9()
    with open(os.path.join(last.dir, "link.key"), "w") as f:
        f.write(cluster.link_key)
    write_lots(cluster.nodes[:4])
    rules = os.path.join(last.dir, "drop-link.nft")
    with open(rules, "w") as f:
        f.write("table inet chorus {\n chain input { type filter hook input priority 0; tcp dport %d drop; }\n}\n"
                % (PORT + 1))
    last.ns_exec("nft -f %s" % rules)
    try:
        before = len(last.log())
        catch_up(cluster, last, wipe=False)
        assert "taken" not in last.log()[before:]
        assert "link to replica 5 closed (no answer in time)" in cluster.nodes[0].log()
    finally:
        cluster.heal()
