"""cluster_figures.py: the figures only a cluster has, for `make bench`.

They run on a cluster of five real hosts as the cluster tests build it
(tests/cluster/netcluster.py: a network namespace, a Corosync with knet and
a chorusd per replica, on a bridge; nftables rules for partitions), with
chorusd's flood limits relaxed as in the other scenarios. Each measurement
starts a fresh cluster:

  catchup   replica 5 is killed; the other four take messages from
            chorus-bench at saturation for a few seconds; replica 5 starts
            again. Figures: seconds from its start until it holds as many
            operations as the others and is not syncing (then its digest
            must equal theirs, or the run is an error), and operations
            caught up per second (operations it missed / those seconds).
  wiped     the same, but replica 5 starts again with its data directory
            wiped: it catches up every operation of the cluster.
  wiped-corosync  the same without catch-up links (docs/CONFIG.md): every
            resend goes through Corosync, as before issue 15's links.
  heal      partition {1,2} | {3,4,5}; chorus-bench writes on both sides at
            once; the partition heals. Figures: seconds from the heal until
            every replica's view has all five, and until all five hold the
            same number of operations and none is syncing (then the five
            digests must be equal, or the run is an error).

Progress is polled every POLL_S with SYNCSTATE, not DIGEST: a digest hashes
the whole state (~90 ms at 115,000 messages), so polling it would take loop
time from the replica being measured; the digests are compared once, at the
end. (Measured both ways on ~22,000 missed operations the figures were the
same within the runs' spread.)
  failover  the chorus terminal client (line mode) in a room on replica 1,
            another user writing a line every 20 ms from replica 4;
            replica 1 is killed with SIGKILL. Figure: seconds from the kill
            until the client says it is back in the room; the run counts only
            if the client then shows every line exactly once, in order.

Each returns records shaped like run.py's (server "chorus", scenario, run,
rc, report with "ok" and the figures), so run.py tabulates them with the
rest. A run that cannot give a figure has rc 1 and says why in "error".
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import netcluster  # noqa: E402
from client_helpers import ChorusClient  # noqa: E402

RELAXED = ["--flood-rate", "1000000", "--flood-burst", "1000000", "--recvq", "16777216",
           "--sendq", "268435456", "--ping-interval", "3600", "--log-level", "warn"]
POLL_S = 0.02


def usable():
    """Why these figures cannot be measured here, or None."""
    return netcluster.usable()


def _bench(build, nodes, seconds):
    """Starts chorus-bench at saturation on the given nodes; returns the process."""
    targets = ",".join("%s:%d" % (n.addr, netcluster.PORT) for n in nodes)
    cmd = [os.path.join(build, "chorus-bench"), "-t", targets, "-c", str(20 * len(nodes)),
           "-r", str(2 * len(nodes)), "-R", "0", "-w", "8", "--warmup", "0.2", "-d", str(seconds)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _bench_result(proc):
    """Waits for chorus-bench; returns its report, or raises if it lost anything."""
    out, err = proc.communicate(timeout=120)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError("chorus-bench gave no report: " + err[-300:])
    rep = json.loads(lines[-1])
    if proc.returncode != 0 or not rep.get("ok"):
        raise RuntimeError("chorus-bench: " + (rep.get("error") or "exit %d" % proc.returncode))
    return rep


def _until(pred, timeout):
    """Polls pred every POLL_S until it is true; returns seconds taken, or raises."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():
            return time.monotonic() - start
        time.sleep(POLL_S)
    raise RuntimeError("not within %.0f s" % timeout)


def _caught_up(states):
    """All five answered SYNCSTATE with the same op count and none syncing."""
    return all(states) and len({s[0] for s in states}) == 1 and not any(s[1] for s in states)


def _equal(digests):
    return all(d and not d[2] for d in digests) and len({d[0] for d in digests}) == 1


def _cluster(workdir, name, links=True):
    c = netcluster.Cluster(os.path.join(workdir, name), extra_args=RELAXED, links=links)
    os.makedirs(c.dir, exist_ok=True)
    return c.up()


def catchup(build, workdir, run, seconds, wipe=False, links=True):
    c = _cluster(workdir, "%s%s-%d" % ("wiped" if wipe else "catchup", "" if links else "-corosync", run), links)
    try:
        last = c.nodes[4]
        before = last.digest()[1]
        last.kill9()
        _bench_result(_bench(build, c.nodes[:4], seconds))
        want = c.nodes[0].digest()
        t0 = time.monotonic()
        last.start_chorusd(wipe=wipe)  # returns once it listens
        listen_s = time.monotonic() - t0
        _until(lambda: last.syncstate() == (want[1], False), 120)
        took = time.monotonic() - t0
        got = last.digest()
        if got != (want[0], want[1], False):
            raise RuntimeError("replica 5 has as many ops as the others but %s, not %s" % (got, want))
        missed = want[1] - (0 if wipe else before)
        return {"ok": True, "missed_ops": missed, "seconds": took, "listen_s": listen_s,
                "ops_per_s": missed / took}
    finally:
        c.down()


def heal(build, workdir, run, seconds):
    c = _cluster(workdir, "heal-%d" % run)
    try:
        left, right = c.nodes[:2], c.nodes[2:]
        c.partition([1, 2], [3, 4, 5])
        c.wait_view([1, 2], nodes=left)
        c.wait_view([3, 4, 5], nodes=right)
        a, b = _bench(build, left, seconds), _bench(build, right, seconds)
        ra, rb = _bench_result(a), _bench_result(b)
        written = ra["sent_total"] + rb["sent_total"]
        t0 = time.monotonic()
        c.heal()
        _until(lambda: all(n.view() == [1, 2, 3, 4, 5] for n in c.nodes), 60)
        view_s = time.monotonic() - t0
        _until(lambda: _caught_up([n.syncstate() for n in c.nodes]), 60)
        equal_s = time.monotonic() - t0
        digests = [n.digest() for n in c.nodes]
        if not _equal(digests):
            raise RuntimeError("five replicas with as many ops each but digests %s" % digests)
        return {"ok": True, "written": written, "view_s": view_s, "equal_s": equal_s,
                "sync_s": equal_s - view_s}
    finally:
        c.down()


def failover(build, workdir, run, lines=60):
    c = _cluster(workdir, "failover-%d" % run)
    logs = os.path.join(workdir, "failover-%d" % run, "client")
    os.makedirs(logs, exist_ok=True)
    client = ChorusClient(["%s:%d" % (n.addr, netcluster.PORT) for n in c.nodes[:3]], (), log_dir=logs)
    try:
        client.login(1, "alice", "#fo")
        bob = c.nodes[3].client("bob")
        bob.join("#fo")
        sent, killed_at = [], None
        for i in range(lines):
            text = "line %d" % i
            bob.send("PRIVMSG #fo :" + text)
            sent.append(text)
            if i == lines // 3:
                client.screen(lambda s: s.texts()[-1:] == [text], timeout=10)
                killed_at = time.monotonic()
                c.nodes[0].kill9()
            time.sleep(0.02)
        client.info("back in #fo", timeout=30)
        took = time.monotonic() - killed_at
        client.screen(lambda s: s.texts() == sent[-25:], timeout=20)
        seen, back = set(), False
        for e in client.events:
            back = back or (e.kind == "info" and e.text.startswith("back in #fo"))
            if e.kind != "screen":
                continue
            texts = e.screen.texts()
            seen.update(texts)
            if len(set(texts)) != len(texts):
                return {"ok": False, "error": "a line shown twice: %s" % texts}
            # once back, the screen is the latest lines with no hole
            if back and texts and texts != sent[sent.index(texts[0]):][:len(texts)]:
                return {"ok": False, "error": "a hole after failover: %s" % texts}
        if seen != set(sent):
            return {"ok": False, "error": "never shown: %s" % sorted(set(sent) - seen)}
        return {"ok": True, "seconds": took, "lines": len(sent)}
    finally:
        client.kill()
        c.down()


def measure(build, runs, seconds=3.0, log=print):
    """Runs each measurement `runs` times; returns run.py records."""
    records = []
    workdir = tempfile.mkdtemp(prefix="chorus-cluster-bench-")
    for run in range(1, runs + 1):
        for key, fn in (("catchup", lambda: catchup(build, workdir, run, seconds)),
                        ("wiped", lambda: catchup(build, workdir, run, seconds, wipe=True)),
                        ("wiped-corosync", lambda: catchup(build, workdir, run, seconds, wipe=True, links=False)),
                        ("heal", lambda: heal(build, workdir, run, seconds / 2)),
                        ("failover", lambda: failover(build, workdir, run))):
            try:
                rep = fn()
                rc = 0 if rep.get("ok") else 1
            except Exception as e:  # a run without a figure, said why
                rep, rc = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}, 1
            records.append({"server": "chorus", "scenario": key, "run": run, "rc": rc, "report": rep})
            log("run %d %-9s cluster  %s" % (run, key, json.dumps(rep)))
    subprocess.run(["rm", "-rf", workdir])
    return records
