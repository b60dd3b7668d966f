#!/usr/bin/python3
"""history_scale.py: how chorus grows with its history (issue 15).

For each size N given (--messages 1000000,10000000), on ONE standalone
chorusd with durable writes (sync=full) and the benchmark's relaxed limits:

  load      chorus-bench writes 64-byte lines from 50 clients into 25 rooms
            of 2 (rooms #hr0..#hr24) at saturation until the replica has
            applied N operations; figure: seconds and lines/s
  memory    resident set (VmRSS) and the data directory's size, loaded
  digest    DIGEST (the set digest) and DIGEST FULL (the whole state),
            milliseconds on the control socket
  history   CHATHISTORY in #hr0 at old anchors: BEFORE and AFTER a random
            time of the load, AROUND a msgid from an earlier answer, 50
            lines each; round trip per request from a Python client (its
            parsing included), p50 / p99 / max over --queries requests
  restart   kill -9, then start: seconds until the port accepts, until
            the first CHATHISTORY is answered, and VmRSS then

Prints one JSON object per size and a Markdown table; writes them all to
--out (default docs/perf/history.json). Usage:

  /usr/bin/python3 bench/history_scale.py --build build --messages 1000000
"""
import argparse
import datetime
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from ircclient import Client  # noqa: E402
from run import free_port  # noqa: E402

RELAXED = ["--flood-rate", "1000000", "--flood-burst", "1000000", "--recvq", "16777216",
           "--sendq", "268435456", "--max-clients", "1000000", "--ping-interval", "3600",
           "--log-level", "warn"]
CAPS = ["batch", "server-time", "message-tags", "draft/chathistory"]
ROOMS = 25
PAGE = 50


def log(msg):
    print("history: " + msg, file=sys.stderr, flush=True)


class Replica:
    def __init__(self, build, data, port):
        self.build, self.data, self.port, self.proc = build, data, port, None

    def start(self):
        """Starts chorusd; returns seconds until its port accepts."""
        t0 = time.monotonic()
        self.proc = subprocess.Popen([os.path.join(self.build, "chorusd"), "-d", self.data,
                                      "-p", str(self.port), "--sync", "full"] + RELAXED,
                                     stdout=subprocess.DEVNULL, stderr=open(self.data + ".log", "a"))
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("chorusd exited: see %s.log" % self.data)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return time.monotonic() - t0
            except OSError:
                time.sleep(0.005)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)

    def rss_mib(self):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def control(self):
        return Client(None, unix=os.path.join(self.data, "control.sock"), timeout=600)

    def note(self, verb, args=""):
        """(seconds, words after NOTE <verb> OK) for verb on the control socket."""
        c = self.control()
        try:
            t0 = time.monotonic()
            c.send(verb + (" " + args if args else ""))
            m = c.expect(lambda m: m.command == "NOTE" and m.params[0] == verb, timeout=600)
            return time.monotonic() - t0, m.params[2:]
        finally:
            c.close()

    def ops(self):
        return int(self.note("SYNCSTATE")[1][0])


def du_mib(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total / (1 << 20)


def load(build, rep, n):
    """Writes lines until rep has applied n ops; (seconds, lines/s). The
    first run is meant to write nearly all of them (rooms #hr0..); a run to
    top up uses rooms of its own (#h<k>r0..), as chorus-bench takes a line
    replayed on JOIN from an earlier run for a misrouted one."""
    t0 = time.monotonic()
    rate = 150000.0
    for run in range(100):
        have = rep.ops()
        if have >= n:
            break
        secs = max(2.0, min(300.0, (n - have) / rate))
        prefix = "h" if run == 0 else "h%d" % run
        cmd = [os.path.join(build, "chorus-bench"), "-t", "127.0.0.1:%d" % rep.port,
               "-c", str(2 * ROOMS), "-r", str(ROOMS), "-R", "0", "-w", "8", "-d", "%.1f" % secs,
               "--warmup", "0", "--drain", "30", "--quickack", "--prefix", prefix]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 120)
        rep_line = json.loads(out.stdout.strip().splitlines()[-1])
        if not rep_line.get("ok"):
            raise RuntimeError("chorus-bench: %s" % out.stdout[-500:])
        rate = max(10000.0, rep_line["sent_per_s"])
        log("%d of %d ops (%.0f lines/s)" % (rep.ops(), n, rate))
    took = time.monotonic() - t0
    return took, rep.ops() / took


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def percentiles(xs):
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    return {"n": len(xs), "p50_ms": 1000 * pick(0.5), "p99_ms": 1000 * pick(0.99),
            "max_ms": 1000 * xs[-1]}


def ms_of(tag):
    t = datetime.datetime.strptime(tag, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1000)


def history_queries(rep, queries, seed=1):
    """Round trips of CHATHISTORY BEFORE/AFTER/AROUND at old anchors in #hr0:
    times drawn between its first and last line's (less a page's worth at
    each end), msgids from earlier answers."""
    rnd = random.Random(seed)
    c = Client(rep.port, timeout=60)
    c.login("reader", CAPS)
    times = {"before": [], "after": [], "around": []}
    msgids = []
    try:
        first = c.history("AFTER", "#hr0", "timestamp=" + iso(0), PAGE, timeout=60)
        last = c.history("LATEST", "#hr0", "*", PAGE, timeout=60)
        t_from_ms, t_to_ms = ms_of(first[-1].tags["time"]), ms_of(last[0].tags["time"])
        for i in range(queries):
            kind = ("before", "after", "around")[i % 3]
            if kind == "around" and msgids:
                anchor = "msgid=" + rnd.choice(msgids)
            else:
                kind = "before" if kind == "around" else kind
                anchor = "timestamp=" + iso(rnd.randint(t_from_ms, t_to_ms))
            t0 = time.monotonic()
            lines = c.history(kind.upper(), "#hr0", anchor, PAGE, timeout=60)
            times[kind].append(time.monotonic() - t0)
            if len(lines) < PAGE // 2:
                raise RuntimeError("CHATHISTORY %s %s: %d lines" % (kind, anchor, len(lines)))
            msgids.extend(m.tags["msgid"] for m in lines[:2])
    finally:
        c.close()
    return {k: percentiles(v) for k, v in times.items() if v}


def first_answer(rep):
    """Seconds until a CHATHISTORY LATEST in #hr0 is answered."""
    t0 = time.monotonic()
    c = Client(rep.port, timeout=600)
    try:
        c.login("waiter", CAPS)
        c.history("LATEST", "#hr0", "*", 10, timeout=600)
    finally:
        c.close()
    return time.monotonic() - t0


def measure(build, n, workdir, queries):
    data = os.path.join(workdir, "n%d" % n)
    rep = Replica(build, data, free_port())
    rep.start()
    try:
        load_s, load_rate = load(build, rep, n)
        ops = rep.ops()
        rec = {"messages_asked": n, "ops": ops, "load_s": load_s, "load_lines_per_s": load_rate,
               "rss_mib": rep.rss_mib(), "disk_mib": du_mib(data)}
        rec["digest_ms"] = min(1000 * rep.note("DIGEST")[0] for _ in range(5))
        rec["digest_full_ms"] = 1000 * rep.note("DIGEST", "FULL")[0]
        rec["history"] = history_queries(rep, queries)
        rep.kill9()
        rec["restart_listen_s"] = rep.start()
        rec["restart_answer_s"] = first_answer(rep) + rec["restart_listen_s"]
        rec["rss_restarted_mib"] = rep.rss_mib()
        return rec
    finally:
        rep.stop()
        shutil.rmtree(data, ignore_errors=True)


def table(recs):
    rows = [("operations stored", lambda r: "{:,}".format(r["ops"])),
            ("load: seconds (lines/s)", lambda r: "%.0f (%s)" % (r["load_s"], "{:,.0f}".format(r["load_lines_per_s"]))),
            ("resident memory, loaded (MiB)", lambda r: "%.0f" % r["rss_mib"]),
            ("data directory (MiB)", lambda r: "%.0f" % r["disk_mib"]),
            ("DIGEST (ms)", lambda r: "%.2f" % r["digest_ms"]),
            ("DIGEST FULL (ms)", lambda r: "%.0f" % r["digest_full_ms"])]
    for kind in ("before", "after", "around"):
        rows.append(("CHATHISTORY %s, p50 / p99 / max (ms)" % kind.upper(),
                     lambda r, k=kind: "%.2f / %.2f / %.2f" % tuple(r["history"][k][x] for x in ("p50_ms", "p99_ms", "max_ms"))))
    rows += [("restart after kill -9: listening (s)", lambda r: "%.2f" % r["restart_listen_s"]),
             ("restart: first CHATHISTORY answered (s)", lambda r: "%.2f" % r["restart_answer_s"]),
             ("resident memory after restart (MiB)", lambda r: "%.0f" % r["rss_restarted_mib"])]
    out = ["| | " + " | ".join("{:,} lines".format(r["messages_asked"]) for r in recs) + " |",
           "| --- |" + " --- |" * len(recs)]
    for label, fn in rows:
        out.append("| %s | %s |" % (label, " | ".join(fn(r) for r in recs)))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--messages", default="1000000", help="sizes, comma-separated")
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "perf", "history.json"))
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="chorus-history-")
    recs = []
    try:
        for n in (int(x) for x in args.messages.split(",")):
            log("size %d" % n)
            rec = measure(os.path.abspath(args.build), n, workdir, args.queries)
            print(json.dumps(rec), flush=True)
            recs.append(rec)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"date": datetime.date.today().isoformat(), "command":
                   "/usr/bin/python3 bench/history_scale.py --messages " + args.messages,
                   "results": recs}, f, indent=1)
    print(table(recs))


if __name__ == "__main__":
    main()
