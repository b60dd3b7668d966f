"""A chorus cluster of real hosts for the cluster tests: one network
namespace per replica, joined by a bridge, each with its own Corosync (in a
private mount namespace, the recipe of shared/DESIGN.md section 7) and its
own chorusd. Partitions are made by nftables rules inside the namespaces
(dropping traffic to and from the peers on the other side, both ways; or on
a chosen subset of links, or one way only); the test process reaches every
replica's IRC port through the bridge.

Addresses: 10.77.<run>.<i> for replica i, 10.77.<run>.254 for the host
side, where run is this test process's own number. Every address is on this
machine, inside namespaces this harness made.
"""
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from ircclient import Client  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHORUSD = os.environ.get("CHORUSD", os.path.join(ROOT, "build", "chorusd"))


def claim_run():
    """A number in 0..199 of this process's own, for the names and subnet of
    its clusters, so that two test runs on one machine (a developer's and
    CI's, say) never meet: held by an flock on /run/chorus-tests/<n>.lock
    for the life of the process (released by the kernel when it ends, also
    on a crash). Taking pid % 200 instead once let two runs share a number:
    each new cluster tore down the other's network and took its addresses."""
    os.makedirs("/run/chorus-tests", exist_ok=True)
    for k in range(200):
        n = (os.getpid() + k) % 200
        fd = os.open("/run/chorus-tests/%d.lock" % n, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        claim_run.fd = fd  # kept open: the lock lives as long as the process
        return n
    raise RuntimeError("all 200 cluster-test numbers are taken by running processes")


RUN = claim_run() if os.geteuid() == 0 else os.getpid() % 200
BRIDGE = "chbr%d" % RUN
NET = "10.77.%d" % RUN
PORT = 6667


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True, **kw)


def usable():
    """Why the cluster tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, mounts)"
    for tool in ("corosync", "nft", "ip", "nsenter", "unshare"):
        if not shutil.which(tool):
            return "needs %s" % tool
    return None


class Node:
    readers = 0  # history readers made so far (their nicks are unique)

    def __init__(self, cluster, i):
        self.c = cluster
        self.i = i
        self.ns = "chorus%d-n%d" % (RUN, i)
        self.addr = "%s.%d" % (NET, i)
        self.dir = os.path.join(cluster.dir, "n%d" % i)
        self.corosync = None
        self.chorusd = None
        self.logs = 0

    def ns_exec(self, cmd, check=True):
        return sh("ip netns exec %s %s" % (self.ns, cmd), check=check)

    def setup_net(self):
        sh("ip netns add %s" % self.ns)
        host, inside = "c%dh%d" % (RUN, self.i), "c%dn%d" % (RUN, self.i)
        sh("ip link add %s type veth peer name %s" % (host, inside))
        sh("ip link set %s master %s up" % (host, BRIDGE))
        sh("ip link set %s netns %s" % (inside, self.ns))
        self.ns_exec("ip link set lo up")
        self.ns_exec("ip addr add %s/24 dev %s" % (self.addr, inside))
        self.ns_exec("ip link set %s up" % inside)

    def write_conf(self):
        for d in ("run", "lib", "shm", "data"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        nodes = "".join("  node {\n    ring0_addr: %s.%d\n    nodeid: %d\n  }\n" % (NET, j, j)
                        for j in range(1, self.c.n + 1))
        # knet_mtu: a fixed MTU (the veths' 1500) turns knet's path-MTU
        # discovery off. With discovery on, knet 1.25 (Debian 12) can leave a
        # healed link unused for up to knet_pmtud_interval (30 s) and the two
        # sides then never merge in time (docs/OPERATIONS.md, "A healed
        # partition that does not merge").
        # Replica links are encrypted and authenticated (knet crypto) with one
        # key for the cluster, made by corosync-keygen (docs/OPERATIONS.md).
        with open(os.path.join(self.dir, "corosync.conf"), "w") as f:
            f.write("totem {\n  version: 2\n  cluster_name: chorustest\n  transport: knet\n"
                    "  token: 1000\n  token_coefficient: 0\n  knet_mtu: 1500\n"
                    "  crypto_cipher: aes256\n  crypto_hash: sha256\n  keyfile: %s\n}\n"
                    "nodelist {\n%s}\n"
                    "logging {\n  to_logfile: yes\n  logfile: %s/corosync.log\n  to_stderr: no\n  to_syslog: no\n}\n"
                    % (self.c.authkey, nodes, self.dir))
        # Catch-up links (src/link) on PORT + 1, with the cluster's link key
        # (a node's own key file, so a test can give one node another key).
        link = "; link_port = %d" % (PORT + 1) if self.c.links else ""
        replicas = ",\n".join('    { id = %d; host = "%s.%d"; port = %d%s; }' % (j, NET, j, PORT, link)
                               for j in range(1, self.c.n + 1))
        key = os.path.join(self.dir, "link.key")
        with open(key, "w") as f:
            f.write(self.c.link_key)
        with open(os.path.join(self.dir, "cluster.conf"), "w") as f:
            f.write('cluster = {\n  mode = "%s";\n  link_key = "%s";\n  replicas = (\n%s\n  );\n};\n'
                    % (self.c.mode, key, replicas))

    def start_corosync(self):
        """Corosync in a new mount namespace with this node's /run,
        /var/lib/corosync and /dev/shm bound over the machine's."""
        d = self.dir
        script = ("mount --make-rprivate / && mount --bind {d}/run /run && "
                  "mount --bind {d}/lib /var/lib/corosync && mount --bind {d}/shm /dev/shm && "
                  "exec corosync -f -c {d}/corosync.conf").format(d=d)
        self.corosync = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "unshare", "-m", "sh", "-c", script],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "corosync.out"), "a"))

    def start_chorusd(self, wipe=False):
        if wipe:
            shutil.rmtree(os.path.join(self.dir, "data"))
            os.makedirs(os.path.join(self.dir, "data"))
        pid = self.corosync.pid
        # the unshare'd child of `ip netns exec` holds the namespaces: find corosync itself
        out = sh("pgrep -P %d" % pid, check=False).stdout.split() or [str(pid)]
        target = out[0]
        self.logs += 1
        log = open(os.path.join(self.dir, "chorusd-%d.log" % self.logs), "w")
        cmd = ["nsenter", "-t", target, "-m", "-n", CHORUSD, "--config", os.path.join(self.dir, "cluster.conf"),
               "--id", str(self.i), "--listen", self.addr, "--port", str(PORT),
               "--data-dir", os.path.join(self.dir, "data"), "--group", "corosync",
               "--flood-rate", "1000", "--flood-burst", "1000", "--new-names", "0",
               "--log-level", "debug"] + self.c.extra_args
        self.chorusd = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.addr, PORT), timeout=0.3).close()
                return
            except OSError:
                if self.chorusd.poll() is not None:
                    raise AssertionError("chorusd %d exited: %s" % (self.i, self.log()[-2000:]))
                time.sleep(0.05)
        raise AssertionError("chorusd %d did not listen" % self.i)

    def alive(self):
        return self.chorusd is not None and self.chorusd.poll() is None

    def kill9(self):
        self.chorusd.send_signal(signal.SIGKILL)
        self.chorusd.wait()

    def log(self):
        out = ""
        for k in range(1, self.logs + 1):
            p = os.path.join(self.dir, "chorusd-%d.log" % k)
            if os.path.exists(p):
                out += open(p, errors="replace").read()
        return out

    def client(self, nick, caps=("echo-message", "server-time", "message-tags", "batch",
                                 "draft/chathistory", "labeled-response")):
        return Client(PORT, host=self.addr).register(nick, caps)

    def ask(self, line, until, timeout=3, control=False):
        """Sends line to the replica (its client port, or with control its
        control socket) and returns what came back until `until` appears."""
        if control:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(os.path.join(self.dir, "data", "control.sock"))
        else:
            s = socket.create_connection((self.addr, PORT), timeout=timeout)
        s.sendall(line.encode() + b"\r\n")
        data = b""
        deadline = time.monotonic() + timeout
        while until.encode() not in data and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        s.close()
        return data.decode(errors="replace")

    def note(self, verb, args=""):
        """The words after "NOTE <verb> OK" in the answer to verb (DIGEST,
        SYNCSTATE) with args, or None if unreachable."""
        try:
            text = self.ask(verb + (" " + args if args else ""), "NOTE " + verb, control=True)
        except OSError:
            return None
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[1:4] == ["NOTE", verb, "OK"]:
                return parts[4:]
        return None

    def digest(self):
        """(hex, ops, syncing) or None if unreachable. The hash of the whole
        canonical state (DIGEST FULL): the tests want to see a state that
        differs under equal sets of operations too."""
        p = self.note("DIGEST", "FULL")
        return (p[0], int(p[1]), p[2] == "1") if p and len(p) >= 3 else None

    def syncstate(self):
        """(ops, syncing) or None if unreachable: DIGEST without the hash,
        cheap enough to poll while the replica catches up."""
        p = self.note("SYNCSTATE")
        return (int(p[0]), p[1] == "1") if p and len(p) >= 2 else None

    def history(self, room, nick, texts=False):
        """Every msgid (with texts: every line's text) of room on this
        replica, oldest first, read through
        CHATHISTORY by a client named nick (pages of 100, newest first);
        none if the replica does not know room (a wiped replica still alone
        answers FAIL ... INVALID_TARGET). The reader's nick gets a fresh
        suffix each time: with accounts, a guest name is one person's at a
        time, and the last reader's may not be gone yet."""
        Node.readers += 1
        c = self.client("%s-%d" % (nick, Node.readers))
        try:
            ids, lines, ref = [], [], "*"
            while True:
                if ref == "*":
                    c.send("CHATHISTORY LATEST %s * 100" % room)
                else:
                    c.send("CHATHISTORY BEFORE %s msgid=%s 100" % (room, ref))
                start = c.expect(lambda m: m.command in ("BATCH", "FAIL"), timeout=15)
                if start.command == "FAIL":
                    assert start.params[1] == "INVALID_TARGET", "CHATHISTORY on replica %d: %s" % (self.i, start)
                    return ids
                batch = start.params[0][1:]
                page, page_lines = [], []
                while True:
                    m = c.expect(lambda m: m.command in ("PRIVMSG", "BATCH"), timeout=15)
                    if m.command == "BATCH" and m.params[0] == "-" + batch:
                        break
                    if m.command == "PRIVMSG":
                        page.append(m.tags["msgid"])
                        page_lines.append(m.params[-1])
                c.backlog.clear()
                if not page:
                    return lines if texts else ids
                ids = page + ids
                lines = page_lines + lines
                ref = page[0]
        finally:
            c.close()

    def view(self):
        text = self.ask("LINKS", " 365 ")
        return sorted(int(l.split("replica ")[1].split()[0]) for l in text.splitlines() if " 364 " in l)


class Cluster:
    def __init__(self, workdir, n=5, mode="available", small_disk=None, extra_args=(), links=True):
        """small_disk: (replica id, size) to give that replica's data a tmpfs
        of that size (e.g. "3m"), mounted before its namespaces are made.
        extra_args: chorusd flags after the harness's own (later ones win).
        links: catch-up links between the replicas (else resends all go
        through Corosync)."""
        self.dir = str(workdir)
        self.links = links
        self.link_key = os.urandom(24).hex() + "\n"
        self.extra_args = list(extra_args)
        self.n = n
        self.mode = mode
        self.small_disk = small_disk
        self.nodes = [Node(self, i) for i in range(1, n + 1)]

    def up(self):
        self.teardown_net()
        os.makedirs(self.dir, exist_ok=True)
        self.authkey = os.path.join(self.dir, "authkey")
        if not os.path.exists(self.authkey):
            sh("corosync-keygen -k %s" % self.authkey)
        sh("ip link add %s type bridge" % BRIDGE)
        sh("ip addr add %s.254/24 dev %s" % (NET, BRIDGE))
        sh("ip link set %s up" % BRIDGE)
        for node in self.nodes:
            node.setup_net()
            node.write_conf()
            if self.small_disk and self.small_disk[0] == node.i:
                sh("mount -t tmpfs -o size=%s tmpfs %s/data" % (self.small_disk[1], node.dir))
            node.start_corosync()
        time.sleep(1.0)
        for node in self.nodes:
            node.start_chorusd()
        self.wait_view([node.i for node in self.nodes])
        return self

    def wait_view(self, members, nodes=None, timeout=20):
        nodes = nodes or [self.nodes[m - 1] for m in members]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if all(node.view() == sorted(members) for node in nodes):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("view %s not reached: %s" % (members, [(n.i, n.view()) for n in nodes]))

    def partition(self, *groups):
        """Cuts every link between replicas of different groups (lists of ids)."""
        self.cut([(i, j) for g in groups for h in groups if h is not g for i in g for j in h])

    def cut(self, links, oneway=False):
        """Cuts the given links (pairs of ids) and only those, after healing
        every earlier cut. A link (i, j) is cut both ways unless oneway: then
        only what j sends to i is lost (i drops it on input)."""
        self.heal()
        drops = {}  # id -> (sources dropped on input, destinations dropped on output)
        for i, j in links:
            drops.setdefault(i, (set(), set()))[0].add(j)
            if not oneway:
                drops[i][1].add(j)
                drops.setdefault(j, (set(), set()))[0].add(i)
                drops[j][1].add(i)
        for i, (inp, out) in drops.items():
            chains = ""
            for name, hook, field, ids in (("input", "input", "saddr", inp), ("output", "output", "daddr", out)):
                if ids:
                    chains += (" chain %s { type filter hook %s priority 0; ip %s { %s } drop; }\n"
                               % (name, hook, field, ", ".join("%s.%d" % (NET, j) for j in sorted(ids))))
            path = os.path.join(self.dir, "rules-%d.nft" % i)
            with open(path, "w") as f:
                f.write("table inet chorus {\n%s}\n" % chains)
            self.nodes[i - 1].ns_exec("nft -f %s" % path)

    def heal(self):
        for node in self.nodes:
            node.ns_exec("nft delete table inet chorus", check=False)

    def wait_converged(self, timeout=10):
        """Waits until every replica reports the same digest, not syncing.
        Returns the seconds it took."""
        start = time.monotonic()
        last = None
        while time.monotonic() - start < timeout:
            last = [node.digest() for node in self.nodes]
            if all(d and not d[2] for d in last) and len({d[0] for d in last}) == 1:
                return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError("not converged within %ss: %s" % (timeout, last))

    def teardown_net(self):
        for i in range(1, 33):
            sh("ip netns del chorus%d-n%d" % (RUN, i), check=False)
        sh("ip link del %s" % BRIDGE, check=False)

    def down(self):
        for node in self.nodes:
            for p in (node.chorusd, node.corosync):
                if p and p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
        # kill whatever is left in each namespace
        for node in self.nodes:
            sh("ip netns pids %s | xargs -r kill -9" % node.ns, check=False)
        time.sleep(0.2)
        self.teardown_net()
        if self.small_disk:
            sh("umount -l %s/data" % self.nodes[self.small_disk[0] - 1].dir, check=False)
        for node in self.nodes:
            text = node.log()
            for mark in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
                assert mark not in text, "sanitizer report in replica %d's log:\n%s" % (node.i, text[-4000:])
