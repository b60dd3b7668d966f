"""chorusctl, the operator's tool for a local cluster, end to end: `up -n 3
--detach` returns once the cluster has formed, `status` and `digest` report
every replica, clients on two replicas talk in one room, a replica killed
with SIGKILL is started again by the supervisor and catches up with what it
missed, and `down` stops every process.

chorusctl runs Corosync and the replicas on 127.0.0.1 and refuses to start
next to another Corosync of its network namespace, so the whole cluster runs
in a network namespace of this test's own (`ip netns add`): it can never meet
`make run`'s cluster or another test's. chorusctl is run with `ip netns exec`;
the test's own IRC sockets are made inside the namespace with setns(2) (a
socket stays in the namespace it was made in).
"""
import contextlib
import ctypes
import os
import pwd
import re
import socket
import ssl
import subprocess
import time

import pytest

from netcluster import CHORUSD, ROOT, Client, sh

# The chorusctl next to the chorusd under test (build-asan's for the ASan run).
CHORUSCTL = os.path.join(os.path.dirname(CHORUSD), "chorusctl")
if not os.path.exists(CHORUSCTL):
    CHORUSCTL = os.path.join(ROOT, "build", "chorusctl")
NS = "chorusctl%d" % os.getpid()
PORT = 6667
N = 3
ROOM = "#ctl"
CAPS = ("echo-message", "server-time", "message-tags", "batch", "draft/chathistory")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(name=NS):
    """Runs the block with this thread in network namespace name; sockets
    made inside stay there after it."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        target = os.open("/run/netns/" + name, os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, "setns %s: %s" % (name, os.strerror(err)))
        finally:
            os.close(target)
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, "setns back home: %s" % os.strerror(err))
    finally:
        os.close(home)


def ns_pids():
    return [int(p) for p in sh("ip netns pids %s" % NS, check=False).stdout.split()]


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def processes():
    """{"corosync": [pids], "chorusctl": [pids], 1: [pids of chorusd --id 1], ...}
    for every process in the namespace."""
    out = {}
    for pid in ns_pids():
        argv = cmdline(pid)
        if not argv or not argv[0]:
            continue
        name = os.path.basename(argv[0])
        if name == "chorusd" and "--id" in argv:
            key = int(argv[argv.index("--id") + 1])
        else:
            key = name
        out.setdefault(key, []).append(pid)
    return out


def ctl(verb, cdir, *args, timeout=30):
    """chorusctl <verb> --dir cdir inside the namespace; (exit status, stdout,
    stderr). Read through pipes, as a script would: `up --detach` must return
    without its supervisor holding them open."""
    p = subprocess.run(["ip", "netns", "exec", NS, CHORUSCTL, verb, "--dir", cdir] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def status(cdir):
    """{id: (port, state, view)} from `chorusctl status`."""
    rc, out, err = ctl("status", cdir)
    assert rc == 0, (rc, out, err)
    rows = {}
    for line in out.splitlines()[1:]:
        m = re.match(r"^(\d+)\s+127\.0\.0\.1:(\d+)\s+(up|down)(?:\s+(\d+)\s+(\d+))?", line)
        assert m, "unexpected status line %r in:\n%s" % (line, out)
        rows[int(m.group(1))] = (int(m.group(2)), m.group(3), int(m.group(4)) if m.group(4) else None)
    return rows, out


def view(port):
    """The replica ids in the view of the replica on port (LINKS), or None."""
    try:
        with in_netns():
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return None
    try:
        s.sendall(b"LINKS\r\n")
        data = b""
        deadline = time.monotonic() + 2
        while b" 365 " not in data and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        s.close()
    text = data.decode(errors="replace")
    return sorted(int(l.split("replica ")[1].split()[0]) for l in text.splitlines() if " 364 " in l)


def client(port, nick):
    with in_netns():
        c = Client(port)
    return c.register(nick, CAPS)


def say(c, text):
    """Sends text to ROOM; returns the msgid of its echo (= stored)."""
    c.send("PRIVMSG %s :%s" % (ROOM, text))
    echo = c.expect(lambda m: m.command == "PRIVMSG" and m.nick == c.nick and m.params[-1] == text, timeout=10)
    return echo.tags["msgid"]


def room_history(port, nick):
    """Every msgid of ROOM on the replica on port, in order (CHATHISTORY)."""
    c = client(port, nick)
    try:
        c.send("CHATHISTORY LATEST %s * 100" % ROOM)
        start = c.expect(lambda m: m.command == "BATCH" and m.params[0].startswith("+"), timeout=10)
        ref = start.params[0][1:]
        c.expect(lambda m: m.command == "BATCH" and m.params[0] == "-" + ref, timeout=10)
        return [m.tags["msgid"] for m in c.backlog if m.command == "PRIVMSG" and m.tags.get("batch") == ref]
    finally:
        c.close()


def wait_for(what, probe, timeout):
    """Polls probe() until it returns something true; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError("%s: not within %ss (last: %r)" % (what, timeout, last))


@pytest.fixture
def netns():
    sh("ip netns add %s" % NS)
    try:
        sh("ip netns exec %s ip link set lo up" % NS)
        yield NS
    finally:
        # whatever is still in our namespace was started by this test
        for _ in range(50):
            pids = ns_pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        sh("ip netns del %s" % NS, check=False)


def test_chorusctl_up_status_restart_digest_down(netns, tmp_path):
    assert os.access(CHORUSCTL, os.X_OK), "no chorusctl at %s (build it: make -C build chorusctl)" % CHORUSCTL
    cdir = str(tmp_path / "cluster")

    # ---- up --detach returns once every replica listens and sees all three
    t0 = time.monotonic()
    rc, out, err = ctl("up", cdir, "-n", str(N), "--port", str(PORT), "--chorusd", CHORUSD, "--detach",
                       timeout=90)
    up_secs = time.monotonic() - t0
    assert rc == 0, "up failed (%d): %s %s" % (rc, out, err)
    assert "chorus: 3 replicas on 127.0.0.1:6667-6669, TLS on 6697-6699 (dir %s)" % cdir in out, out
    # The self-signed certificate it made: the fingerprint it printed, and a
    # TLS client that trusts that file speaks to every replica's TLS port.
    cert = os.path.join(cdir, "tls", "cert.pem")
    fp = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"],
                        check=True, capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    assert "SHA-256 %s" % fp in out, out
    ctx = ssl.create_default_context(cafile=cert)
    for i in range(N):
        with in_netns():
            t = Client(PORT + 30 + i, tls=ctx)
        t.register("tls%d" % i, CAPS)
        t.close()
    # no waiting here: the cluster must already have formed
    rows, text = status(cdir)
    assert rows == {i: (PORT + i - 1, "up", N) for i in range(1, N + 1)}, text
    procs = processes()
    assert len(procs.get("corosync", [])) == 1, procs
    assert len(procs.get("chorusctl", [])) == 1, procs
    for i in range(1, N + 1):
        assert len(procs.get(i, [])) == 1, procs
    with open(os.path.join(cdir, "chorusctl.pid")) as f:
        supervisor = int(f.read())
    assert procs["chorusctl"] == [supervisor], procs
    assert (tmp_path / "cluster" / "cluster.conf").exists()
    # catch-up links: a private key, each replica listening on its link port
    assert os.stat(os.path.join(cdir, "link.key")).st_mode & 0o077 == 0
    for i in range(1, N + 1):
        log = open(os.path.join(cdir, "r%d.log" % i)).read()
        assert "catch-up links on 127.0.0.1:%d" % (PORT + i - 1 + 60) in log, log[-2000:]
    # replicas and Corosync run with malloc's heap on huge pages (docs/OPERATIONS.md)
    for pid in procs["corosync"] + [procs[i][0] for i in range(1, N + 1)]:
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
        assert b"GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in env, (pid, env)
    # started by root, the replicas run as nobody (chorusd --user), Corosync as root
    for i in range(1, N + 1):
        with open("/proc/%d/status" % procs[i][0]) as f:
            uid = [line.split()[1] for line in f if line.startswith("Uid:")][0]
        assert int(uid) == pwd.getpwnam("nobody").pw_uid, (i, uid)

    # ---- a client on replica 1 and one on replica 3 talk in one room
    alice = client(PORT, "alice")
    acked = []
    try:
        bob = client(PORT + 2, "bob")
        alice.join(ROOM)
        bob.join(ROOM)
        acked.append(say(alice, "hello from replica 1"))
        got = bob.expect(lambda m: m.command == "PRIVMSG" and m.nick == "alice", timeout=10)
        assert got.params == [ROOM, "hello from replica 1"] and got.tags["msgid"] == acked[-1]
        acked.append(say(bob, "hello from replica 3"))
        got = alice.expect(lambda m: m.command == "PRIVMSG" and m.nick == "bob", timeout=10)
        assert got.params == [ROOM, "hello from replica 3"] and got.tags["msgid"] == acked[-1]

        # ---- kill -9 replica 2: the supervisor starts it again
        old = procs[2][0]
        os.kill(old, 9)
        # written while replica 2 is down or just restarting: it must catch up
        for k in range(5):
            acked.append(say(alice, "while r2 restarts, alice %d" % k))
            acked.append(say(bob, "while r2 restarts, bob %d" % k))
        new = wait_for("a new chorusd --id 2",
                       lambda: [p for p in processes().get(2, []) if p != old], timeout=20)
        assert len(new) == 1 and ppid(new[0]) == supervisor, (new, ppid(new[0]), supervisor)
        wait_for("replica 2 answering with a view of all three",
                 lambda: view(PORT + 1) == [1, 2, 3], timeout=30)
        wait_for("the supervisor logging the restart",
                 lambda: "replica 2 exited (signal 9): starting it again" in open(os.path.join(cdir, "chorusctl.log")).read(),
                 timeout=5)

        # ---- digest: all three equal (and not syncing), with every message
        seen = {}

        def converged():
            rc, out, err = ctl("digest", cdir)
            seen["last"] = out + err
            return (rc, out) if rc == 0 else None
        try:
            _, dig = wait_for("chorusctl digest converged", converged, timeout=20)
        except AssertionError:
            logs = "".join("\n--- r%d.log\n" % i + open(os.path.join(cdir, "r%d.log" % i)).read()[-3000:]
                           for i in range(1, N + 1))
            raise AssertionError("digests differ: %s%s" % (seen.get("last"), logs))
        lines = dig.splitlines()
        assert lines[-1] == "converged", dig
        entries = [re.match(r"^r(\d) ([0-9a-f]{64}) ops (\d+)$", l) for l in lines[:-1]]
        assert all(entries) and [int(e.group(1)) for e in entries] == [1, 2, 3], dig
        assert len({e.group(2) for e in entries}) == 1, dig
        assert all(int(e.group(3)) >= len(acked) for e in entries), dig
        rc, full, err = ctl("digest", cdir, "--full")  # the whole state's hash: equal too, and another
        fulls = [re.match(r"^r(\d) ([0-9a-f]{64}) ops (\d+)$", l) for l in full.splitlines()[:-1]]
        assert rc == 0 and all(fulls) and len({e.group(2) for e in fulls}) == 1, full + err
        assert fulls[0].group(2) != entries[0].group(2), (full, dig)
        for i in range(1, N + 1):  # the pass ran on its own connection, opened before the user was
            log = open(os.path.join(cdir, "r%d.log" % i)).read()
            assert "digests' connection" not in log and "no second connection" not in log, log[-2000:]
        r2 = room_history(PORT + 1, "carol")
        assert r2 == room_history(PORT, "dave"), "replica 2's history differs from replica 1's"
        assert set(acked) <= set(r2), "replica 2 lacks %s" % (set(acked) - set(r2))
        rows, text = status(cdir)
        assert rows == {i: (PORT + i - 1, "up", N) for i in range(1, N + 1)}, text
        bob.close()

        # ---- a replica whose store cannot open is not restarted in a tight
        # loop: the supervisor backs off and status says why
        db = os.path.join(cdir, "r2", "chorus.db")
        os.rename(db, db + ".kept")
        os.mkdir(db)  # a directory where the database was: it cannot open
        for pid in processes().get(2, []):
            os.kill(pid, 9)
        log_path = os.path.join(cdir, "chorusctl.log")
        wait_for("the supervisor backing off replica 2",
                 lambda: "times in a row at once: starting it again in" in open(log_path).read(), timeout=20)
        starts = open(log_path).read().count("replica 2 exited")
        time.sleep(3)
        assert open(log_path).read().count("replica 2 exited") <= starts + 2, open(log_path).read()[-2000:]
        rows, text = status(cdir)
        assert rows[2][1] == "down" and "starting again in" in text and "times in a row" in text, text
        os.rmdir(db)
        os.rename(db + ".kept", db)
        wait_for("replica 2 back after its back-off",
                 lambda: view(PORT + 1) == [1, 2, 3], timeout=40)
        rows, text = status(cdir)
        assert rows[2][1] == "up", text
    finally:
        alice.close()

    # ---- down stops the supervisor, Corosync and every replica
    t1 = time.monotonic()
    rc, out, err = ctl("down", cdir)
    down_secs = time.monotonic() - t1
    assert rc == 0, (rc, out, err)
    assert out.strip() == "chorus: cluster in %s stopped" % cdir, out
    assert "did not stop" not in err, err  # the supervisor stopped on SIGTERM, not SIGKILL
    left = {pid: cmdline(pid) for pid in ns_pids()}
    assert not left, "still running in %s after down: %s" % (NS, left)
    assert not os.path.exists(os.path.join(cdir, "chorusctl.pid"))
    for i in range(1, N + 1):
        with open(os.path.join(cdir, "r%d.log" % i), errors="replace") as f:
            log = f.read()
        for mark in SANITIZER_MARKS:
            assert mark not in log, "sanitizer report in r%d.log:\n%s" % (i, log[-4000:])
    print("up --detach %.1fs, down %.1fs" % (up_secs, down_secs))
