#!/usr/bin/python3
"""run.py: the benchmark suite behind `make bench`.

It runs chorus-bench (bench/loadgen) against chorus and against two IRC
servers from Debian, inspircd and ngircd, on this machine in the same run,
so that every figure has a peer to be compared with. Each server is started
fresh (own port, own data or config directory) for every scenario:

  sat      fan-out at saturation: 100 clients, 10 rooms of 10, each sender
           keeping a few messages in flight; delivered messages/s
  write    the same with 50 rooms of 2: one delivery per message, so the
           figure is messages accepted (for chorus: stored durably) per second
  rate-M   fixed offered loads of M PRIVMSGs/s (1,000 / 5,000 / 10,000), each
           to 9 other members; end-to-end latency p50/p99/p99.9
  plain-M  one of those loads with ordinary delayed ACKs (run 1 only)
  idle     N idle registered connections: memory per connection (RSS of the
           server before/after, divided by N) and how many were held

With chorus started here (not --chorus-targets), and where root, network
namespaces and Corosync are available, bench/cluster_figures.py then
measures what only a cluster has, on five replicas as five hosts: catch-up
of a restarted replica, heal to equal digests after a partition with writes
on both sides, and the terminal client's failover (--no-cluster-figures
skips them).

The scenarios are interleaved (run 1 of every server, then run 2, ...) so
that anything else the machine does spreads over all servers alike. Every
figure is reported as min / median / max over --runs runs. Then every
server runs once more at saturation under perf (send system calls per
delivered line; a sampled profile of chorusd), and chorus runs the middle
load under each SQLite sync mode. The results go to
docs/perf/results.json, plots (gnuplot) to docs/perf/*.png, and the tables
to docs/PERFORMANCE.md between its "bench:begin"/"bench:end" markers (the
text outside them is written by hand and kept).

chorus runs as ONE standalone chorusd with durable writes on (sync=full)
unless --chorus-cluster N is given, which starts `chorusctl up -n N` and
spreads the clients over its replicas; --chorus-targets uses an already
running chorus instead. Peers always run as single servers.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import cluster_figures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "bench", "peers")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
BUILD_DIR = os.path.join(ROOT, "build")  # shown as build/ in the report (--build)

# chorusd's flood and queue limits, raised so that only its speed is measured
# (docs/LIMITS.md); the peers get the same in bench/peers/*.conf.in.
CHORUS_RELAXED = ["--flood-rate", "1000000", "--flood-burst", "1000000",
                  "--recvq", "16777216", "--sendq", "268435456",
                  "--max-clients", "1000000", "--ping-interval", "3600",
                  "--log-level", "warn"]

FANOUT = ["-c", "100", "-r", "10"]
RATES = [1000, 5000, 10000]


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=15):
    """Waits until something accepts on 127.0.0.1:port; raises if proc dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited at start (status %s)" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on port %d" % port)


def pid_of_port(port):
    """The pid of the process listening on 127.0.0.1:port (via ss), or None."""
    out = subprocess.run(["ss", "-ltnpH", "sport = :%d" % port], capture_output=True,
                         text=True).stdout
    mark = "pid="
    if mark not in out:
        return None
    return int(out.split(mark, 1)[1].split(",", 1)[0])


def stop_process(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- the servers under test ----

class Server:
    """One server under test, started fresh for every scenario."""
    name = ""
    how = ""       # how it runs, shown next to its numbers
    # Connections set up at once in the idle test: as many as the server
    # takes without dropping connection attempts (see the subclasses).
    idle_concurrency = 200

    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None
        self.port = None
        self.count = 0
        self.cmdline = []

    def targets(self):
        return ["127.0.0.1:%d" % self.port]

    def pids(self):
        return [self.proc.pid]

    def fresh_dir(self):
        self.count += 1
        d = os.path.join(self.workdir, "%s-%d" % (self.name, self.count))
        os.makedirs(d)
        return d

    def start(self):
        d = self.fresh_dir()
        self.port = free_port()
        self.cmdline = self.command(d)
        self.proc = subprocess.Popen(self.cmdline, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "stderr.log"), "w"), cwd=d)
        wait_listening(self.port, self.proc)

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.proc = None


class Chorus(Server):
    name = "chorus"

    def __init__(self, workdir, build):
        super().__init__(workdir)
        self.binary = os.path.join(build, "chorusd")
        self.how = "1 chorusd (standalone replica), sync=full"
        self.sync = "full"   # the diagnostic in profile() changes it for one run

    def command(self, d):
        return [self.binary, "--port", str(self.port), "--data-dir", os.path.join(d, "data"),
                "--sync", self.sync] + CHORUS_RELAXED


class ChorusCluster(Server):
    """N replicas started by `chorusctl up -n N` (a private Corosync)."""
    name = "chorus"

    def __init__(self, workdir, build, n):
        super().__init__(workdir)
        self.ctl = os.path.join(build, "chorusctl")
        self.chorusd = os.path.join(build, "chorusd")
        self.n = n
        self.how = "%d-replica cluster (chorusctl up -n %d), sync=full" % (n, n)
        self.dir = None

    def start(self):
        self.dir = self.fresh_dir()
        self.port = free_port() if self.n == 1 else 17000 + 10 * (self.count % 50)
        self.cmdline = [self.ctl, "up", "-n", str(self.n), "--dir", self.dir, "--port",
                        str(self.port), "--sync", "full", "--chorusd", self.chorusd, "--detach"] + \
            ["--replica-arg=" + flag for flag in CHORUS_RELAXED]
        subprocess.run(self.cmdline, check=True, stdout=subprocess.DEVNULL, timeout=60)
        for i in range(self.n):
            wait_listening(self.port + i, None)

    def targets(self):
        return ["127.0.0.1:%d" % (self.port + i) for i in range(self.n)]

    def pids(self):
        return [p for p in (pid_of_port(self.port + i) for i in range(self.n)) if p]

    def stop(self):
        if self.dir:
            subprocess.run([self.ctl, "down", "--dir", self.dir], timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.dir = None


class External(Server):
    """A chorus already running (--chorus-targets): not started or stopped here."""
    name = "chorus"

    def __init__(self, workdir, targets):
        super().__init__(workdir)
        self.list = targets
        self.how = "running chorus at " + ",".join(targets)

    def start(self):
        self.cmdline = ["(already running)"]

    def targets(self):
        return self.list

    def pids(self):
        return [p for p in (pid_of_port(int(t.rsplit(":", 1)[1])) for t in self.list) if p]

    def stop(self):
        pass


def fill_template(name, d, port):
    """Writes bench/peers/<name>.in into d with @PORT@ and @DIR@ filled in."""
    text = open(os.path.join(PEERS, name + ".in")).read()
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text.replace("@PORT@", str(port)).replace("@DIR@", d))
    return path


class InspIRCd(Server):
    name = "inspircd"
    how = "single server"
    # InspIRCd holds every registration about 1 s on purpose (its maintainers
    # in inspircd/inspircd#1242): many at once keep the idle test short.
    idle_concurrency = 2000

    def command(self, d):
        conf = fill_template("inspircd.conf", d, self.port)
        with open(os.path.join(d, "motd.txt"), "w") as f:
            f.write("chorus benchmark peer\n")
        return ["inspircd", "--config", conf, "--nofork", "--runasroot"]


class NgIRCd(Server):
    name = "ngircd"
    how = "single server"
    # ngIRCd listens with a backlog of 10: more attempts at once get dropped
    # and retried after a second.
    idle_concurrency = 16

    def command(self, d):
        conf = fill_template("ngircd.conf", d, self.port)
        os.chmod(d, 0o777)  # ngircd drops to nobody and writes its pid file here
        return ["ngircd", "--nodaemon", "--config", conf]


# ---- scenarios ----

def scenarios(args):
    """(key, description, chorus-bench arguments) of every scenario."""
    timing = ["--warmup", str(args.warmup), "-d", str(args.duration)]
    out = [("sat", "fan-out at saturation", FANOUT + ["-R", "0", "-w", "8"] + timing),
           ("write", "write throughput (50 rooms of 2)",
            ["-c", "100", "-r", "50", "-R", "0", "-w", "8"] + timing)]
    for rate in args.rates:
        out.append(("rate-%d" % rate, "%d msg/s offered" % rate,
                    FANOUT + ["-R", str(rate), "--quickack"] + timing))
    out.append(("plain-%d" % args.plain_rate, "%d msg/s offered, delayed ACKs (run 1 only)" % args.plain_rate,
                FANOUT + ["-R", str(args.plain_rate)] + timing))
    out.append(("idle", "idle connections", ["-m", "idle", "-n", str(args.idle_n)]))
    return out


def run_one(bench, server, key, extra, run):
    """Starts server fresh, runs chorus-bench once, stops it. Returns a record."""
    rec = {"server": server.name, "scenario": key, "run": run}
    try:
        server.start()
    except Exception as e:  # a server that does not start is a result too
        rec.update(rc=1, report={"ok": False, "error": "start: %s" % e})
        server.stop()
        return rec
    cmd = [bench, "-t", ",".join(server.targets())]
    for p in server.pids():
        cmd += ["--pid", str(p)]
    cmd += ["--label", "%s %s run %d" % (server.name, key, run)] + extra
    if key == "idle":
        cmd += ["--concurrency", str(server.idle_concurrency)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        rep = json.loads(lines[-1]) if lines else {"ok": False, "error": p.stderr.strip()[-300:]}
        rc = p.returncode
    except subprocess.TimeoutExpired:
        rep, rc = {"ok": False, "error": "chorus-bench timed out"}, 1
    finally:
        server.stop()
    rec.update(rc=rc, report=rep, bench_cmd=display_cmd(cmd, server),
               server_cmd=display_cmd(server.cmdline, server))
    return rec


def display_cmd(cmd, server):
    """A command line as the report shows it: this run's temporary directory,
    ports and pids made generic, --label left out."""
    out = []
    it = iter(cmd)
    for a in it:
        if a in ("--pid", "--label"):
            next(it, None)
            continue
        out.append(a)
    text = " ".join(out).replace(BUILD_DIR + "/", "build/").replace(ROOT + "/", "")
    text = text.replace(server.workdir, "$TMP")
    if server.port:
        text = text.replace(str(server.port), "$PORT")
    return text


def summarize_line(rec):
    r = rec["report"]
    if rec["scenario"] == "idle":
        return "held %s, %s B/conn" % (r.get("held"), r.get("bytes_per_conn"))
    if not r.get("ok"):
        return "ERROR " + str(r.get("error"))
    lat = r.get("latency_ms", {})
    return "sent %.0f/s delivered %.0f/s p50 %.2f p99 %.2f ms gen %.2f srv %.2f cores" % (
        r["sent_per_s"], r["delivered_per_s"], lat.get("p50", 0), lat.get("p99", 0),
        r.get("gen_cpu", 0), r.get("server_cpu", 0))


# ---- profiling ----

SEND_SYSCALLS = ["write", "writev", "sendto", "sendmsg"]


def perf_report(data, sort, children=False, limit=None, dso=None):
    cmd = ["perf", "report", "-i", data, "--children" if children else "--no-children",
           "--sort", sort, "--stdio", "-g", "none"]
    if limit:
        cmd += ["--percent-limit", str(limit)]
    if dso:
        cmd += ["--dsos", dso]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    return [l.rstrip() for l in out.splitlines() if l.strip() and not l.startswith("#")]


def profile_one(bench, server, args, record):
    """One saturation run with perf attached to the server: counts of its
    socket-sending system calls (perf stat) and, with record, a sampled
    profile (perf record -g). Returns what was measured."""
    server.start()
    pid = server.pids()[0]
    data = os.path.join(server.workdir, "perf-%s.data" % server.name)
    stat_out = os.path.join(server.workdir, "perf-%s.stat" % server.name)
    events = ",".join("syscalls:sys_enter_" + s for s in SEND_SYSCALLS)
    procs = [subprocess.Popen(["perf", "stat", "-x,", "-e", events, "-o", stat_out, "-p", str(pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    if record:
        procs.append(subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384",
                                       "-o", data, "-p", str(pid)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(0.5)
    cmd = [bench, "-t", server.targets()[0], "--pid", str(pid)] + FANOUT + \
          ["-R", "0", "-w", "8", "--warmup", "0", "-d", str(args.duration)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        t_end = time.monotonic()
        for pr in procs:
            pr.send_signal(signal.SIGINT)
        for pr in procs:
            pr.wait(timeout=60)
    finally:
        server.stop()
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    rep = json.loads(lines[-1]) if lines else {}
    calls = 0
    for line in open(stat_out) if os.path.exists(stat_out) else []:
        parts = line.split(",")
        if len(parts) > 2 and parts[2].startswith("syscalls:") and parts[0].strip().isdigit():
            calls += int(parts[0])
    delivered = rep.get("delivered_total") or 0
    out = {"server": server.name, "cmd": display_cmd(cmd, server), "send_syscalls": calls,
           "delivered": delivered,
           "lines_per_syscall": (delivered / calls) if calls and delivered else None}
    if record:
        out["threads"] = perf_report(data, "pid")[:6]
        out["symbols"] = perf_report(data, "dso,sym", limit=0.7)
        # Userland frames only: the kernel's are in the self-time list.
        out["inclusive"] = [l for l in perf_report(data, "sym", children=True, limit=3)
                            if "[k]" not in l and "] 0x" not in l]
    return out


def sync_diagnostic(bench, server, args, runs=3):
    """chorus at the middle offered load with each SQLite sync mode, the modes
    interleaved, `runs` runs each: how much of its latency the disk accounts
    for. Returns records like run_one's (scenario "sync-<mode>")."""
    records = []
    rate = args.rates[len(args.rates) // 2]
    for run in range(1, runs + 1):
        for mode in ("full", "normal", "off"):
            server.sync = mode
            rec = run_one(bench, server, "sync-%s" % mode,
                          FANOUT + ["-R", str(rate), "--quickack", "--warmup", str(args.warmup),
                                    "-d", str(args.duration)], run)
            log("run %d sync %-6s %s" % (run, mode, summarize_line(rec)))
            records.append(rec)
    server.sync = "full"
    return {"rate": rate, "records": records}


def profile(bench, servers, names, out_dir, args):
    """perf on every server during one saturation run: send syscalls per
    delivered line for all, a sampled profile of chorusd; then chorus's
    latency under each sync mode."""
    if not shutil.which("perf"):
        log("perf not found: no profile")
        return None
    res = {}
    for s in names:
        try:
            res[s] = profile_one(bench, servers[s], args, record=(s == "chorus"))
            log("profile %s: %s" % (s, {k: v for k, v in res[s].items() if k in ("send_syscalls", "delivered")}))
        except Exception as e:
            log("profile of %s failed: %s" % (s, e))
    if isinstance(servers.get("chorus"), Chorus) and "chorus" in names:
        res["sync"] = sync_diagnostic(bench, servers["chorus"], args)
    ch = res.get("chorus")
    if ch and "symbols" in ch:
        with open(os.path.join(out_dir, "chorusd-profile.txt"), "w") as f:
            f.write("# perf record -F 499 --call-graph dwarf -p <chorusd> during: %s\n" % ch["cmd"])
            f.write("# samples by thread (pid:comm):\n" + "\n".join(ch["threads"]))
            f.write("\n# self time by symbol (>= 0.7 %):\n" + "\n".join(ch["symbols"]))
            f.write("\n# time including callees (>= 2 %):\n" + "\n".join(ch["inclusive"]) + "\n")
    return res


# ---- figures ----

def value(rec, metric):
    r = rec["report"]
    for part in metric.split("."):
        if not isinstance(r, dict) or part not in r:
            return None
        r = r[part]
    return r


def stats(records, server, scenario, metric):
    """(min, median, max, n ok, n failed) of a metric over the runs that gave a figure."""
    vals, failed, overloaded = [], 0, 0
    for rec in records:
        if rec["server"] != server or rec["scenario"] != scenario:
            continue
        ok = rec["rc"] == 0 and rec["report"].get("ok")
        v = value(rec, metric)
        if not ok or v is None or (isinstance(v, (int, float)) and v < 0):
            failed += 1
            continue
        overloaded += bool(rec["report"].get("overloaded"))
        vals.append(v)
    if not vals:
        return None, None, None, 0, failed, overloaded
    return min(vals), statistics.median(vals), max(vals), len(vals), failed, overloaded


def fmt_num(v, unit=""):
    if v is None:
        return "-"
    if unit == "ms":
        return ("%.2f" % v) if v < 10 else ("%.1f" % v) if v < 100 else "%.0f" % v
    if unit == "kib":
        return "%.1f" % (v / 1024.0)
    if unit in ("cpu", "s"):
        return "%.2f" % v
    return "{:,.0f}".format(v)


def cell(records, server, scenario, metric, unit=""):
    lo, med, hi, n, failed, over = stats(records, server, scenario, metric)
    if n == 0:
        return "no figure (%d failed)" % failed if failed else "-"
    text = "%s / **%s** / %s" % (fmt_num(lo, unit), fmt_num(med, unit), fmt_num(hi, unit))
    notes = []
    if failed:
        notes.append("%d run(s) failed" % failed)
    if over:
        notes.append("overloaded in %d" % over)
    return text + (" (%s)" % "; ".join(notes) if notes else "")


def ratio(records, a, b, scenario, metric, lower_is_better=False):
    ma = stats(records, a, scenario, metric)[1]
    mb = stats(records, b, scenario, metric)[1]
    if not ma or not mb:
        return "-"
    return "%.2f" % ((mb / ma) if lower_is_better else (ma / mb))


def machine():
    mem = "?"
    cpu = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "memory": mem, "cpu": cpu,
            "kernel": platform.release(), "os": platform.platform(),
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[1]}


def versions(build):
    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except Exception:
            return "?"
    return {"chorus": first_line([os.path.join(build, "chorusd"), "--version"]),
            "inspircd": first_line(["inspircd", "--version"]),
            "ngircd": first_line(["ngircd", "--version"])}


# ---- plots ----

def write_plots(records, servers, out_dir, rates):
    """docs/perf/fanout.png and latency.png with gnuplot (medians, min-max bars)."""
    if not shutil.which("gnuplot"):
        log("gnuplot not found: no plots")
        return []
    tput = os.path.join(out_dir, "throughput.dat")
    with open(tput, "w") as f:
        f.write("# server sat_med sat_min sat_max write_med write_min write_max (messages/s)\n")
        for s in servers:
            a = stats(records, s, "sat", "delivered_per_s")
            b = stats(records, s, "write", "sent_per_s")
            f.write("%s %s %s %s %s %s %s\n" % (s, a[1] or 0, a[0] or 0, a[2] or 0,
                                               b[1] or 0, b[0] or 0, b[2] or 0))
    lat = os.path.join(out_dir, "latency.dat")
    with open(lat, "w") as f:
        f.write("# server rate p50_med p50_min p50_max p99_med p99_min p99_max (ms)\n")
        for s in servers:
            for rate in rates:
                a = stats(records, s, "rate-%d" % rate, "latency_ms.p50")
                b = stats(records, s, "rate-%d" % rate, "latency_ms.p99")
                if a[1] is None or b[1] is None:
                    continue
                f.write("%s %d %s %s %s %s %s %s\n" % (s, rate, a[1], a[0], a[2], b[1], b[0], b[2]))
            f.write("\n\n")
    script = os.path.join(ROOT, "bench", "plot.gp")
    names = " ".join(servers)
    subprocess.run(["gnuplot", "-e", "outdir='%s'; servers='%s'" % (out_dir, names), script],
                   check=False)
    return ["throughput.png", "latency.png"]


# ---- the report ----

GEN_BOUND = 0.9  # generator CPU (cores) from which a throughput is its limit, not the server's


def generator_bound(records, server, scenario):
    """1 if the generator used nearly a whole core in this scenario (median)."""
    med = stats(records, server, scenario, "gen_cpu")[1]
    return med is not None and med >= GEN_BOUND


def table(records, servers, rows, hows):
    """Markdown table: one row per (label, scenario, metric, unit), a column per server.
    A throughput the generator may have capped is marked with a dagger."""
    head = "| figure | " + " | ".join("%s (%s)" % (s, hows[s]) for s in servers)
    peers = [s for s in servers if s != "chorus"]
    if "chorus" in servers:
        head += "".join(" | chorus ÷ %s" % p for p in peers)
    lines = [head + " |", "|" + "---|" * (1 + len(servers) + (len(peers) if "chorus" in servers else 0))]
    marked = False
    for label, scen, metric, unit, lower in rows:
        cells = []
        for s in servers:
            c = cell(records, s, scen, metric, unit)
            if scen in ("sat", "write") and metric.endswith("_per_s") and \
                    generator_bound(records, s, scen):
                c += " †"
                marked = True
            cells.append(c)
        line = "| %s | " % label + " | ".join(cells)
        if "chorus" in servers:
            line += "".join(" | " + ratio(records, "chorus", p, scen, metric, lower) for p in peers)
        lines.append(line + " |")
    if marked:
        lines.append("")
        lines.append("† the generator used %.1f cores or more (median) in that scenario: the figure is "
                     "what one generator core can drive, a lower bound for the server." % GEN_BOUND)
    return "\n".join(lines)


def targets_table(records, servers):
    out = ["| target | measured (chorus, median) | met? |", "|---|---|---|"]
    sat = stats(records, "chorus", "sat", "delivered_per_s")[1]
    peers = [stats(records, p, "sat", "delivered_per_s")[1] for p in servers if p != "chorus"]
    peers = [p for p in peers if p]
    if sat and peers:
        out.append("| fan-out throughput ≥ a single inspircd / ngircd | %s delivered/s vs %s | %s |" % (
            fmt_num(sat), " / ".join(fmt_num(p) for p in peers),
            "yes" if all(sat >= p for p in peers) else "no"))
    p99 = stats(records, "chorus", "rate-10000", "latency_ms.p99")
    if p99[1] is not None:
        over = stats(records, "chorus", "rate-10000", "latency_ms.p99")[5]
        out.append("| p99 end-to-end < 5 ms at 10,000 msg/s | %s ms%s | %s |" % (
            fmt_num(p99[1], "ms"), " (could not keep up)" if over else "",
            "yes" if p99[1] < 5 and not over else "no"))
    w = stats(records, "chorus", "write", "sent_per_s")[1]
    if w:
        out.append("| ≥ 50,000 durable msg/s | %s msg/s stored | %s |" % (fmt_num(w), "yes" if w >= 50000 else "no"))
    cu = stats(records, "chorus", "catchup", "ops_per_s")[1]
    if cu:
        out.append("| catch-up at ≥ 100,000 operations/s | %s operations/s | %s |" % (
            fmt_num(cu), "yes" if cu >= 100000 else "no"))
    hl = stats(records, "chorus", "heal", "equal_s")[1]
    if hl is not None:
        out.append("| heal to equal digests < 2 s | %s s | %s |" % (fmt_num(hl, "s"), "yes" if hl < 2 else "no"))
    mem = stats(records, "chorus", "idle", "bytes_per_conn")[1]
    if mem:
        out.append("| < 8 KiB per idle connection | %s KiB | %s |" % (fmt_num(mem, "kib"), "yes" if mem < 8192 else "no"))
    return "\n".join(out)


CLUSTER_ROWS = [
    ("catch-up: operations the restarted replica had missed", "catchup", "missed_ops", ""),
    ("catch-up: seconds from its start to an equal digest", "catchup", "seconds", "s"),
    ("catch-up: of which until it listened", "catchup", "listen_s", "s"),
    ("catch-up: operations caught up per second", "catchup", "ops_per_s", ""),
    ("wiped replica: operations it caught up (all of them)", "wiped", "missed_ops", ""),
    ("wiped replica: operations caught up per second", "wiped", "ops_per_s", ""),
    ("wiped replica without catch-up links (all through Corosync): operations per second",
     "wiped-corosync", "ops_per_s", ""),
    ("heal: messages written on both sides while partitioned", "heal", "written", ""),
    ("heal: seconds from the heal to a view of five everywhere", "heal", "view_s", "s"),
    ("heal: seconds from the heal to five equal digests", "heal", "equal_s", "s"),
    ("failover: seconds from SIGKILL of the client's replica to the client back in its room, no gap",
     "failover", "seconds", "s"),
]


def cluster_section(records):
    """The table of bench/cluster_figures.py's figures, or why there is none."""
    if not any(r["scenario"] in ("catchup", "wiped", "heal", "failover") for r in records):
        return "Not measured in this run (they need root, network namespaces and Corosync; " \
               "see bench/cluster_figures.py)."
    out = ["Five replicas as five hosts (tests/cluster/netcluster.py: a network namespace, a "
           "Corosync with knet and a chorusd each, on a bridge), a fresh cluster per run; "
           "how each is measured: bench/cluster_figures.py.", "",
           "| figure | chorus |", "|---|---|"]
    for label, scen, metric, unit in CLUSTER_ROWS:
        out.append("| %s | %s |" % (label, cell(records, "chorus", scen, metric, unit)))
    return "\n".join(out)


def commands_section(records, servers, scens):
    out = []
    for s in servers:
        rec = next((r for r in records if r["server"] == s and r.get("server_cmd")), None)
        if rec:
            out.append("- %s: `%s`" % (s, rec["server_cmd"]))
    out.append("")
    for key, desc, _ in scens:
        rec = next((r for r in records if r["scenario"] == key and r.get("bench_cmd")), None)
        if rec:
            out.append("- %s (%s): `%s --pid <server pid>`" % (key, desc, rec["bench_cmd"]))
    return "\n".join(out)


def render(records, servers, hows, args, mach, vers, profile, plots, started, elapsed):
    rows_tput = [("delivered msg/s at saturation (100 clients, 10 rooms of 10)", "sat", "delivered_per_s", "", False),
                 ("messages sent/s at saturation (same)", "sat", "sent_per_s", "", False),
                 ("p50 latency at saturation, ms", "sat", "latency_ms.p50", "ms", True),
                 ("server CPU at saturation (cores)", "sat", "server_cpu", "cpu", True),
                 ("generator CPU at saturation (cores)", "sat", "gen_cpu", "cpu", True),
                 ("messages accepted/s, 50 rooms of 2 (chorus: stored durably)", "write", "sent_per_s", "", False),
                 ("server CPU, 50 rooms of 2 (cores)", "write", "server_cpu", "cpu", True)]
    rows_lat = []
    for rate in args.rates:
        for q, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            rows_lat.append(("%s ms at %s msg/s" % (name, "{:,}".format(rate)), "rate-%d" % rate,
                             "latency_ms." + q, "ms", True))
        rows_lat.append(("delivered msg/s at %s msg/s" % "{:,}".format(rate), "rate-%d" % rate,
                         "delivered_per_s", "", False))
        rows_lat.append(("generator CPU at %s msg/s (cores)" % "{:,}".format(rate), "rate-%d" % rate,
                         "gen_cpu", "cpu", True))
        rows_lat.append(("generator's worst lateness at %s msg/s, ms (a stalled generator, not the server)"
                         % "{:,}".format(rate), "rate-%d" % rate, "max_send_lag_ms", "ms", True))
    pr = args.plain_rate
    rows_plain = [("p50 ms at %s msg/s, delayed ACKs (1 run)" % "{:,}".format(pr), "plain-%d" % pr, "latency_ms.p50", "ms", True),
                  ("p99 ms at %s msg/s, delayed ACKs (1 run)" % "{:,}".format(pr), "plain-%d" % pr, "latency_ms.p99", "ms", True)]
    rows_idle = [("memory per idle registered connection, KiB", "idle", "bytes_per_conn", "kib", True),
                 ("idle connections held (of %s tried)" % "{:,}".format(args.idle_n), "idle", "held", "", False)]
    lost = sum(1 for r in records if r["rc"] == 2)
    failed = [r for r in records if r["rc"] != 0]
    out = [BEGIN, "",
           "## Results", "",
           "Generated by `make bench` (bench/run.py) on %s in %.0f s; %d run(s) of each scenario, "
           "interleaved across servers. Each cell is **min / median / max** over the runs; "
           "ratios compare medians (above 1 means chorus is better)." % (started, elapsed, args.runs), "",
           "chorus: %s. inspircd and ngircd: %s each, from Debian, with flood and connection limits "
           "relaxed (bench/peers/). All on loopback, the load generator in the same machine." % (
               hows.get("chorus", "-"), "single server"), "",
           "### Machine", "",
           "- %s CPU(s): %s; memory %s; kernel %s; %s" % (mach["nproc"], mach["cpu"], mach["memory"],
                                                          mach["kernel"], mach["os"]),
           "- open files allowed per process: %s (the idle test stays below it)" % mach["nofile"],
           "- versions: %s; %s; %s" % (vers["chorus"], vers["inspircd"], vers["ngircd"]), "",
           "### Command lines", "",
           commands_section(records, list(hows), scenarios(args)), "",
           "### Fan-out throughput", "",
           table(records, list(hows), rows_tput, hows), "",
           "![throughput](perf/throughput.png)" if "throughput.png" in plots else "", "",
           "### End-to-end latency at fixed offered loads", "",
           "Send (the time the message was due) to receipt by each other member of the room; "
           "each message goes to 9 others. The generator ACKs every read at once "
           "(`--quickack`); the last rows are the same load with ordinary delayed ACKs, which "
           "is what a plain client sees from a server that leaves Nagle's algorithm on.", "",
           table(records, list(hows), rows_lat + rows_plain, hows), "",
           "![latency](perf/latency.png)" if "latency.png" in plots else "", "",
           "### Connections", "",
           table(records, list(hows), rows_idle, hows), "",
           "### Cluster figures", "",
           cluster_section(records), "",
           "### Targets (issue 5)", "",
           targets_table(records, list(hows)), ""]
    if profile:
        out += ["### Profile at saturation (perf)", "",
                "One more saturation run per server with `perf stat` counting the server's "
                "socket-sending system calls (%s):" % ", ".join(SEND_SYSCALLS), "",
                "| server | lines delivered | send system calls | lines per call |", "|---|---|---|---|"]
        for s in hows:
            r = profile.get(s)
            if r and "send_syscalls" in r:
                out.append("| %s | %s | %s | %s |" % (s, fmt_num(r["delivered"]), fmt_num(r["send_syscalls"]),
                                                   "%.1f" % r["lines_per_syscall"] if r["lines_per_syscall"] else "-"))
        ch = profile.get("chorus")
        if ch and "symbols" in ch:
            out += ["", "chorusd sampled with `perf record --call-graph dwarf` in the same run (full list: "
                    "docs/perf/chorusd-profile.txt):", "", "```", "samples by thread (pid:comm):"] + \
                ch["threads"] + ["self time by symbol:"] + ch["symbols"][:18] + \
                ["chorusd's functions, time including callees:"] + ch["inclusive"][:25] + ["```", ""]
        if profile.get("sync"):
            sy = profile["sync"]
            rows = [("%s ms, sync=%s" % (q, m), "sync-" + m, "latency_ms." + k, "ms", True)
                    for m in ("full", "normal", "off") for q, k in (("p50", "p50"), ("p99", "p99"))]
            out += ["chorus alone at %s msg/s with each SQLite sync mode (`--sync`; the modes "
                    "interleaved, min / **median** / max over %d runs):" % (
                        "{:,}".format(sy["rate"]), max(r["run"] for r in sy["records"])), "",
                    table(sy["records"], ["chorus"], rows, {"chorus": "1 chorusd"}), ""]
    if failed:
        out += ["### Runs without a figure", ""]
        for r in failed:
            out.append("- %s %s run %d: exit %d: %s" % (r["server"], r["scenario"], r["run"], r["rc"],
                                                        r["report"].get("error") or r["report"].get("first_error")))
        out.append("")
    out += ["Runs with a lost, duplicated or misrouted message: %d." % lost, "", END]
    return "\n".join(out)


HEADER = """# Performance

How chorus compares with two established IRC servers on the same machine, and
where its time goes. Everything between the bench markers below is written by
`make bench` (bench/run.py); the rest is written by hand.

"""


def write_report(path, section):
    text = open(path).read() if os.path.exists(path) else HEADER + BEGIN + "\n" + END + "\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--servers", default="chorus,inspircd,ngircd")
    ap.add_argument("--duration", type=float, default=2.5)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--rates", default=",".join(map(str, RATES)))
    ap.add_argument("--plain-rate", type=int, default=5000)
    ap.add_argument("--idle-n", type=int, default=20000)
    ap.add_argument("--chorus-targets", help="use a running chorus: host:port,...")
    ap.add_argument("--chorus-cluster", type=int, default=0,
                    help="run chorus as `chorusctl up -n N` instead of one chorusd")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--no-cluster-figures", action="store_true",
                    help="skip catch-up, heal and failover (bench/cluster_figures.py)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs"))
    ap.add_argument("--quick", action="store_true", help="1 run, short, small idle test")
    ap.add_argument("--render-only", action="store_true",
                    help="only write PERFORMANCE.md and the plots again from docs/perf/results.json")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.duration, args.warmup, args.idle_n = 1, 1.5, 0.5, 500
    args.rates = [int(r) for r in args.rates.split(",") if r]

    perf_dir = os.path.join(args.out, "perf")
    if args.render_only:
        saved = json.load(open(os.path.join(perf_dir, "results.json")))
        vars(args).update(saved["args"])
        names = list(saved["how"])
        plots = write_plots(saved["records"], names, perf_dir, args.rates)
        section = render(saved["records"], names, saved["how"], args, saved["machine"],
                         saved["versions"], saved.get("profile"), plots, saved["started"],
                         saved["elapsed"])
        write_report(os.path.join(args.out, "PERFORMANCE.md"), section)
        return 0

    global BUILD_DIR
    args.build = BUILD_DIR = os.path.abspath(args.build)
    bench = os.path.join(args.build, "chorus-bench")
    if not os.path.exists(bench):
        sys.exit("bench: %s is missing: build first (make build)" % bench)
    # Both sides need a file per connection: take the hard limit, and keep the
    # idle test a little below it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.idle_n > hard - 256:
        args.idle_n = hard - 256
        log("idle test capped at %d connections (open file limit %d)" % (args.idle_n, hard))

    # Every server (chorus and the peers alike) and the generator run with
    # malloc's heap on transparent huge pages, as chorusctl starts replicas
    # (docs/OPERATIONS.md); on this VM it is worth ~30% to chorus.
    if "glibc.malloc.hugetlb" not in os.environ.get("GLIBC_TUNABLES", ""):
        os.environ["GLIBC_TUNABLES"] = ":".join(
            t for t in (os.environ.get("GLIBC_TUNABLES"), "glibc.malloc.hugetlb=1") if t)
    workdir = tempfile.mkdtemp(prefix="chorus-bench-")
    build = args.build
    all_servers = {}
    if args.chorus_targets:
        all_servers["chorus"] = External(workdir, args.chorus_targets.split(","))
    elif args.chorus_cluster:
        all_servers["chorus"] = ChorusCluster(workdir, build, args.chorus_cluster)
    else:
        all_servers["chorus"] = Chorus(workdir, build)
    all_servers["inspircd"] = InspIRCd(workdir)
    all_servers["ngircd"] = NgIRCd(workdir)
    names = [s for s in args.servers.split(",") if s in all_servers]
    for s in names:
        if s != "chorus" and not shutil.which(s if s != "ngircd" else "ngircd"):
            sys.exit("bench: %s is not installed (bench/peers/install.sh)" % s)
    hows = {s: all_servers[s].how for s in names}

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.monotonic()
    records = []
    scens = scenarios(args)
    for run in range(1, args.runs + 1):
        for key, desc, extra in scens:
            if key.startswith("plain-") and run > 1:
                continue  # a side figure: one run keeps `make bench` short
            for s in names:
                rec = run_one(bench, all_servers[s], key, extra, run)
                records.append(rec)
                log("run %d %-9s %-8s %s" % (run, key, s, summarize_line(rec)))

    if "chorus" in names and not args.chorus_targets and not args.no_cluster_figures:
        why = cluster_figures.usable()
        if why:
            log("cluster figures skipped: " + why)
        else:
            records += cluster_figures.measure(build, args.runs, log=log)

    os.makedirs(perf_dir, exist_ok=True)
    prof = None
    if not args.no_profile:
        prof = profile(bench, all_servers, names, perf_dir, args)
    mach, vers = machine(), versions(build)
    elapsed = time.monotonic() - t0
    kept = {k: getattr(args, k) for k in ("runs", "rates", "plain_rate", "idle_n", "duration", "warmup")}
    with open(os.path.join(perf_dir, "results.json"), "w") as f:
        json.dump({"started": started, "elapsed": elapsed, "args": kept, "machine": mach,
                   "versions": vers, "how": hows, "profile": prof, "records": records}, f, indent=1)
    plots = write_plots(records, names, perf_dir, args.rates)
    section = render(records, names, hows, args, mach, vers, prof, plots, started, elapsed)
    write_report(os.path.join(args.out, "PERFORMANCE.md"), section)
    shutil.rmtree(workdir, ignore_errors=True)
    log("done in %.0f s: %s" % (elapsed, os.path.join(args.out, "PERFORMANCE.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
