"""chorus-bench (bench/loadgen) against a real chorusd.

The load generator must report a figure when every message arrives, and an
error with no figure when one does not: here a proxy between the generator
and chorusd drops chosen lines on their way to the clients (one message in
the middle of a stream, or everything after a point), which is what a server
losing messages looks like from outside.
"""
import json
import os
import socket
import subprocess
import threading

import pytest

from conftest import CHORUSD

BENCH = os.environ.get("CHORUS_BENCH", os.path.join(os.path.dirname(CHORUSD), "chorus-bench"))
RELAXED = ["--flood-rate", "100000", "--flood-burst", "100000", "--recvq", "1048576",
           "--sendq", "16777216"]

pytestmark = pytest.mark.skipif(not os.path.exists(BENCH), reason="chorus-bench not built: " + BENCH)


def run_bench(args, timeout=90):
    """Runs chorus-bench; returns (exit status, parsed JSON report, stderr)."""
    p = subprocess.run([BENCH] + args, capture_output=True, text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert lines, "no report from chorus-bench (exit %d): %s" % (p.returncode, p.stderr)
    return p.returncode, json.loads(lines[-1]), p.stderr


class LossyProxy:
    """Forwards TCP connections from a local port to the server; lines from
    the server that are benchmark messages pass through `keep(n)` (n counts
    them across all connections, from 1) and are dropped when it is false."""

    def __init__(self, upstream_port, keep):
        self.upstream = upstream_port
        self.keep = keep
        self.count = 0
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.socks = []
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream))
            for s in (down, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks += [down, up]
            threading.Thread(target=self.copy_up, args=(down, up), daemon=True).start()
            threading.Thread(target=self.copy_down, args=(up, down), daemon=True).start()

    def copy_up(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def passes(self, line):
        if b" PRIVMSG " not in line or b" :cb " not in line:
            return True
        with self.lock:
            self.count += 1
            return self.keep(self.count)

    def copy_down(self, src, dst):
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                pending += data
                *lines, pending = pending.split(b"\n")
                out = b"".join(l + b"\n" for l in lines if self.passes(l))
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            dst.close()

    def close(self):
        self.listener.close()
        for s in self.socks:
            s.close()


FANOUT = ["-c", "12", "-r", "3", "--warmup", "0.2", "-d", "1", "--drain", "2"]


def test_paced_run_reports_a_figure(make_server):
    srv = make_server(RELAXED)
    rc, rep, err = run_bench(["-t", "127.0.0.1:%d" % srv.port, "--pid", str(srv.proc.pid),
                              "-R", "300"] + FANOUT)
    assert rc == 0, err
    assert rep["ok"] and rep["error"] == ""
    assert rep["members_per_room"] == 4
    assert 200 <= rep["sent_per_s"] <= 400
    # Each message reaches the 3 other members of its room.
    assert rep["delivered_per_s"] == pytest.approx(3 * rep["sent_per_s"], rel=0.3)
    assert rep["latency_ms"]["n"] > 0 and rep["latency_ms"]["p50"] > 0
    assert rep["latency_ms"]["p50"] <= rep["latency_ms"]["p99"] <= rep["latency_ms"]["max"]
    assert rep["lost"] == rep["missing"] == rep["dups"] == rep["misrouted"] == 0
    assert rep["server_cpu"] >= 0 and rep["gen_cpu"] >= 0


def test_paced_message_leaves_when_due(make_server):
    """At 4 messages/s the period is 250 ms: a message sent one period after
    it was due (an off-by-one in the pacer) would show ~250 ms of latency
    from a server that answers in about one."""
    srv = make_server(RELAXED)
    rc, rep, err = run_bench(["-t", "127.0.0.1:%d" % srv.port, "-R", "4", "-c", "4", "-r", "1",
                              "--quickack", "--warmup", "0.3", "-d", "1.5", "--drain", "2"])
    assert rc == 0, err
    assert rep["latency_ms"]["n"] >= 9
    assert rep["latency_ms"]["p50"] < 50, rep["latency_ms"]


def test_saturating_run_reports_a_figure(make_server):
    srv = make_server(RELAXED)
    rc, rep, err = run_bench(["-t", "127.0.0.1:%d" % srv.port, "--pid", str(srv.proc.pid),
                              "-R", "0", "-w", "2"] + FANOUT)
    assert rc == 0, err
    assert rep["ok"] and rep["sent_per_s"] > 0 and rep["delivered_per_s"] > 0


def test_clients_spread_over_targets(make_server):
    """Two targets (two listeners of the same standalone replica here): the
    layout and the cross-target latency work with a list of targets."""
    srv = make_server(RELAXED)
    proxy = LossyProxy(srv.port, lambda n: True)
    try:
        rc, rep, err = run_bench(["-t", "127.0.0.1:%d,127.0.0.1:%d" % (srv.port, proxy.port),
                                  "-R", "200"] + FANOUT)
    finally:
        proxy.close()
    assert rc == 0, err
    assert rep["targets"] == 2 and rep["latency_cross_target_only"]
    assert rep["latency_ms"]["n"] > 0


def test_one_lost_message_is_an_error(make_server):
    srv = make_server(RELAXED)
    proxy = LossyProxy(srv.port, lambda n: n != 40)
    try:
        rc, rep, err = run_bench(["-t", "127.0.0.1:%d" % proxy.port, "-R", "300"] + FANOUT)
    finally:
        proxy.close()
    assert proxy.count >= 40
    assert rc == 2, (rep, err)
    assert not rep["ok"]
    assert "LOST" in rep["error"]


def test_messages_that_never_arrive_are_an_error(make_server):
    srv = make_server(RELAXED)
    proxy = LossyProxy(srv.port, lambda n: n <= 100)
    try:
        rc, rep, err = run_bench(["-t", "127.0.0.1:%d" % proxy.port, "-R", "300"] + FANOUT)
    finally:
        proxy.close()
    assert rc == 2, (rep, err)
    assert not rep["ok"] and "LOST" in rep["error"]


def test_idle_connections_and_memory(make_server):
    srv = make_server(RELAXED)
    rc, rep, err = run_bench(["-t", "127.0.0.1:%d" % srv.port, "--pid", str(srv.proc.pid),
                              "-m", "idle", "-n", "60", "--concurrency", "20"])
    assert rc == 0, err
    assert rep["ok"] and rep["held"] == 60 and rep["failed"] == 0
    assert rep["rss_after_kib"] >= rep["rss_before_kib"] > 0
    assert rep["bytes_per_conn"] >= 0


def test_idle_stops_at_a_full_server(make_server):
    srv = make_server(RELAXED + ["--max-clients", "25"])
    rc, rep, err = run_bench(["-t", "127.0.0.1:%d" % srv.port, "--pid", str(srv.proc.pid),
                              "-m", "idle", "-n", "60", "--concurrency", "5"])
    assert rc == 0, err
    assert rep["held"] == 25
    assert "Server full" in rep["first_error"]
