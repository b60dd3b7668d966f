"""The nemesis of the cluster tests: a seeded schedule of faults played
against a five-replica cluster on real Corosync while writers on every
replica keep writing, then the checks that matter after it is all healed.

A schedule is a list of rounds drawn from random.Random(seed). A round is
one network fault (none; a 1+4 or 2+3 partition; one replica cut from only
some of the others, both ways or one way) and maybe one process fault on one
replica (kill -9 of its chorusd; kill -9 and a restart with a wiped data
directory), held for a few seconds while the writers go on, then undone (the
replica restarted, the links healed, in an order drawn too) and followed by a
calm of a few seconds or less (sometimes shorter than a merge). At most one
replica is down at a time. The seed fixes the faults and their timing, not
the writers' interleaving: a replayed seed plays the same schedule against
the same kind of load.

Checks, after the last round: every link healed and every replica running,
the view of five; every replica's DIGEST equal and not syncing within
CONVERGE_BOUND seconds of the last heal (the time is measured); every
acknowledged msgid (its writer saw the echo) in every replica's CHATHISTORY,
except those whose only copy was on a disk that was wiped (counted apart:
before a wipe, the acknowledged msgids that none of the four other replicas
shows are excused); no msgid twice; and the room's CHATHISTORY msgid list
the same, in the same order, on all five.
"""
import random
import threading
import time

ROOM = "#nemesis"
ECHO_TIMEOUT = 20     # a line's echo may wait for a membership change or two
PAUSE = 0.02          # between a writer's echo and its next line
VIEW_BOUND = 60       # seconds from the last heal to the view of five
CONVERGE_BOUND = 60   # seconds from the last heal to equal digests
STABLE_GIVE_UP = 20   # seconds of unequal digests that no replica is syncing


class Writer(threading.Thread):
    """Writes numbered lines to ROOM until stop is set, each after the echo
    of the one before. Starts on replica home; when its connection fails it
    tries home again, and if home does not answer, another replica. Keeps
    (msgid, replica) of every echo it saw."""

    def __init__(self, cluster, home, seed, stop):
        super().__init__(daemon=True, name="writer-%d" % home)
        self.c, self.home, self.stop = cluster, home, stop
        self.rng = random.Random(seed * 10 + home)
        self.acked = []
        self.refused = 0      # FAIL or an error numeric instead of the echo
        self.unanswered = 0   # lines whose echo did not come (connection lost, timeout)
        self.connections = 0

    def connect(self, target):
        self.connections += 1
        nick = "w%dc%d" % (self.home, self.connections)
        client = self.c.nodes[target - 1].client(nick)
        client.join(ROOM)
        return client, nick

    def run(self):
        k, target = 0, self.home
        while not self.stop.is_set():
            try:
                client, nick = self.connect(target)
            except (OSError, AssertionError):
                # home is down or busy: try another replica next, then home again
                target = self.home if target != self.home else \
                    self.rng.choice([i for i in range(1, 6) if i != self.home])
                self.stop.wait(0.2)
                continue
            try:
                while not self.stop.is_set():
                    text = "w%d %d" % (self.home, k)
                    k += 1
                    client.send("PRIVMSG %s :%s" % (ROOM, text))
                    m = client.expect(lambda m: (m.command == "PRIVMSG" and m.nick == nick and m.params[-1] == text)
                                      or m.command == "FAIL" or (m.command.isdigit() and m.command >= "400"),
                                      timeout=ECHO_TIMEOUT)
                    client.backlog.clear()  # the other writers' lines: not needed
                    if m.command == "PRIVMSG":
                        self.acked.append((m.tags["msgid"], target))
                    else:
                        self.refused += 1
                    self.stop.wait(PAUSE)
            except (OSError, AssertionError):
                self.unanswered += 1
            finally:
                client.close()
            target = self.home


class Round:
    """One fault and how it ends; drawn from rng."""

    def __init__(self, rng):
        ids = [1, 2, 3, 4, 5]
        rng.shuffle(ids)
        self.net = rng.choices(["none", "split14", "split23", "partial", "oneway"], weights=[1, 3, 3, 2, 1])[0]
        if self.net == "split14":
            self.groups = [ids[:1], sorted(ids[1:])]
        elif self.net == "split23":
            self.groups = [sorted(ids[:2]), sorted(ids[2:])]
        else:
            # partial/oneway: ids[0] loses its links to 1..3 of the others
            self.links = [(ids[0], j) for j in sorted(ids[1:1 + rng.randint(1, 3)])]
        self.proc = rng.choices([None, "kill", "wipe"], weights=[5, 3, 2])[0]
        # half the time the replica cut off (alone, or from some) is the one killed
        self.victim = ids[0] if self.net != "none" and rng.random() < 0.5 else rng.randint(1, 5)
        self.hold = rng.uniform(2.5, 6)        # how long the faults last
        self.delay = rng.uniform(0, 0.8 * self.hold)  # from the network fault to the process fault
        self.restart_first = rng.random() < 0.5
        self.calm = rng.uniform(0.3, 3)

    def planned(self):
        return self.hold + self.calm

    def __str__(self):
        if self.net in ("split14", "split23"):
            net = "+".join("".join(map(str, g)) for g in self.groups)
        elif self.net in ("partial", "oneway"):
            x = self.links[0][0]
            net = "%s%d/%s" % ("cut" if self.net == "partial" else "deaf", x, "".join(str(j) for _, j in self.links))
        else:
            net = "-"
        proc = "%s%d" % (self.proc, self.victim) if self.proc else "-"
        return "[%s %s %.1fs]" % (net, proc, self.hold)


def plan(seed, seconds):
    """The rounds of the schedule of seed: as many as fill seconds, the last
    one with a network fault (its heal is the one the convergence time is
    measured from)."""
    rng = random.Random(seed)
    rounds, total = [], 0.0
    while total < seconds or rounds[-1].net == "none":
        r = Round(rng)
        rounds.append(r)
        total += r.planned()
    return rounds


class Result:
    def __init__(self, seed):
        self.seed = seed
        self.view_ok = False
        self.converged = False
        self.heal_to_digest = None
        self.digests = None
        self.acked = 0
        self.lost = []
        self.excused = 0
        self.duplicates = []
        self.order_equal = None
        self.order_note = ""
        self.refused = self.unanswered = 0

    def line(self):
        took = "%.2fs" % self.heal_to_digest if self.heal_to_digest is not None else "-"
        order = "same" if self.order_equal else ("DIFFERS" if self.order_equal is False else "-")
        return ("nemesis seed=%d converged=%s acked=%d lost=%d excused=%d heal_to_digest=%s order=%s"
                " (refused=%d unanswered=%d)"
                % (self.seed, "yes" if self.converged else "no", self.acked, len(self.lost), self.excused,
                   took, order, self.refused, self.unanswered)) + ("\n  " + self.order_note if self.order_note else "")


class Nemesis:
    def __init__(self, cluster, seed, seconds, say=print):
        self.c = cluster
        self.seed = seed
        self.rounds = plan(seed, seconds)
        self.say = say
        self.excused = set()
        self.checks = 0
        self.stop = threading.Event()
        self.writers = [Writer(cluster, i, seed, self.stop) for i in range(1, 6)]

    def acked(self):
        return {msgid for w in self.writers for msgid, _ in w.acked}

    def history(self, node):
        self.checks += 1
        return node.history(ROOM, "chk%dx%d" % (node.i, self.checks))

    def apply_net(self, r):
        if r.net in ("split14", "split23"):
            self.c.partition(*r.groups)
        elif r.net in ("partial", "oneway"):
            self.c.cut(r.links, oneway=r.net == "oneway")

    def kill(self, r):
        victim = self.c.nodes[r.victim - 1]
        victim.kill9()
        if r.proc == "wipe":
            # What the victim alone holds is lost with its disk: excuse it.
            time.sleep(1.0)  # what its Corosync still carries arrives at the others
            acked = self.acked()
            elsewhere = set()
            for n in self.c.nodes:
                if n is not victim:
                    elsewhere.update(self.history(n))
            only_there = acked - elsewhere - self.excused
            self.excused |= only_there
            self.say("  wipe of %d: %d more acknowledged msgids on no other replica" % (r.victim, len(only_there)))

    def end_round(self, r):
        victim = self.c.nodes[r.victim - 1]
        steps = [self.c.heal]
        if r.proc:
            steps.insert(0 if r.restart_first else 1, lambda: victim.start_chorusd(wipe=r.proc == "wipe"))
        for step in steps:
            step()

    def play(self):
        """Plays every round with the writers writing; the last round's
        faults are left in place for finish(). If a round fails, the
        writers are stopped before the error goes up: left running, they
        would write into the next schedule's cluster (same addresses)."""
        self.say("nemesis seed=%d plan: %s" % (self.seed, " ".join(map(str, self.rounds))))
        for w in self.writers:
            w.start()
        try:
            self.play_rounds()
        except BaseException:
            self.stop.set()
            raise

    def play_rounds(self):
        for k, r in enumerate(self.rounds):
            self.apply_net(r)
            if r.proc:
                time.sleep(r.delay)
                self.kill(r)
                time.sleep(max(0.0, r.hold - r.delay))
            else:
                time.sleep(r.hold)
            if k < len(self.rounds) - 1:
                self.end_round(r)
                time.sleep(r.calm)

    def finish(self):
        """Stops the writers, ends the last round (heals, restarts), makes
        sure every link is healed and every replica runs, and checks;
        returns a Result."""
        res = Result(self.seed)
        self.stop.set()
        for w in self.writers:
            w.join(ECHO_TIMEOUT + 15)
            assert not w.is_alive(), "writer %d did not stop" % w.home
        self.end_round(self.rounds[-1])
        self.c.heal()
        for n in self.c.nodes:
            if not n.alive():
                n.start_chorusd()
        healed = time.monotonic()
        res.view_ok = self.wait_view(healed + VIEW_BOUND)
        res.converged, res.digests = self.wait_digests(healed)
        if res.converged:
            res.heal_to_digest = time.monotonic() - healed
        acked = self.acked()
        res.acked = len(acked)
        res.refused = sum(w.refused for w in self.writers)
        res.unanswered = sum(w.unanswered for w in self.writers)
        orders = [self.history(n) for n in self.c.nodes]
        missing = set()
        for n, order in zip(self.c.nodes, orders):
            missing |= acked - set(order)
            if len(order) != len(set(order)):
                res.duplicates.append(n.i)
        res.lost = sorted(missing - self.excused)
        res.excused = len(missing & self.excused)
        res.order_equal = all(o == orders[0] for o in orders)
        if not res.order_equal:
            res.order_note = order_difference(orders)
        return res

    def wait_view(self, deadline):
        while time.monotonic() < deadline:
            try:
                if all(n.view() == [1, 2, 3, 4, 5] for n in self.c.nodes):
                    return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def wait_digests(self, healed):
        """(equal, last digests): polls every replica's DIGEST until all are
        equal and none is syncing, for CONVERGE_BOUND seconds after healed;
        gives up early if they stay unequal with no replica syncing for
        STABLE_GIVE_UP seconds (nothing is left to change them)."""
        last, stable_since = None, None
        while time.monotonic() - healed < CONVERGE_BOUND:
            ds = [n.digest() for n in self.c.nodes]
            if all(d and not d[2] for d in ds):
                if len({d[0] for d in ds}) == 1:
                    return True, ds
                if ds != last or stable_since is None:
                    stable_since = time.monotonic()
                elif time.monotonic() - stable_since > STABLE_GIVE_UP:
                    return False, ds
            else:
                stable_since = None
            last = ds
            time.sleep(0.1)
        return False, last


def order_difference(orders):
    """Where the replicas' msgid lists first part, for the report."""
    out = []
    for k, o in enumerate(orders[1:], 2):
        if o == orders[0]:
            continue
        i = next((i for i, (a, b) in enumerate(zip(orders[0], o)) if a != b), min(len(o), len(orders[0])))
        out.append("replica %d parts from replica 1 at position %d of %d/%d: %s vs %s"
                   % (k, i, len(orders[0]), len(o), orders[0][i:i + 3], o[i:i + 3]))
    return "; ".join(out)
