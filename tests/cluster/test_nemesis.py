"""The nemesis on real Corosync (tests/cluster/nemesis.py): writers on all
five replicas all the time while a seeded schedule cuts the cluster 1+4 and
2+3, cuts one replica from only some of the others (both ways or one way),
kills replicas with SIGKILL and restarts them, some with a wiped data
directory. After the last heal: the view of five, equal digests within a
bound, every acknowledged message on every replica (except those whose only
copy was wiped, counted apart), and one order of the room everywhere.

CHORUS_NEMESIS_SEED sets the first schedule's seed (random if unset; the
seed of every schedule is in its test id and its report, and
CHORUS_NEMESIS_SEED=<it> CHORUS_NEMESIS_SCHEDULES=1 plays it again),
CHORUS_NEMESIS_SCHEDULES how many schedules (seeds seed, seed+1, ...),
CHORUS_NEMESIS_SECONDS how long each one's faults last (default 40).
`make chaos` runs 50 and prints a line per schedule and a summary."""
import os
import random

import pytest

import nemesis

SEED = int(os.environ.get("CHORUS_NEMESIS_SEED") or random.SystemRandom().randrange(1, 1000000))
SCHEDULES = int(os.environ.get("CHORUS_NEMESIS_SCHEDULES", "1"))
SECONDS = float(os.environ.get("CHORUS_NEMESIS_SECONDS", "40"))
RESULTS = []


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    if RESULTS:
        took = [r.heal_to_digest for r in RESULTS if r.heal_to_digest is not None]
        print("\nnemesis summary: %d schedules from seed %d: converged %d/%d, order same %d/%d, "
              "acked %d, lost %d, excused (wiped) %d, heal to equal digests max %s"
              % (len(RESULTS), SEED, sum(r.converged for r in RESULTS), len(RESULTS),
                 sum(bool(r.order_equal) for r in RESULTS), len(RESULTS),
                 sum(r.acked for r in RESULTS), sum(len(r.lost) for r in RESULTS),
                 sum(r.excused for r in RESULTS), "%.2fs" % max(took) if took else "-"))


@pytest.mark.parametrize("seed", [SEED + k for k in range(SCHEDULES)], ids=lambda s: "seed=%d" % s)
def test_nemesis(cluster, seed):
    n = nemesis.Nemesis(cluster, seed, SECONDS)
    n.play()
    r = n.finish()
    RESULTS.append(r)
    print(r.line(), flush=True)
    problems = []
    if not r.view_ok:
        problems.append("no view of five within %ss of the last heal" % nemesis.VIEW_BOUND)
    if not r.converged:
        problems.append("digests not equal within %ss of the last heal: %s" % (nemesis.CONVERGE_BOUND, r.digests))
    if r.lost:
        problems.append("%d acknowledged messages missing somewhere: %s" % (len(r.lost), r.lost[:5]))
    if r.duplicates:
        problems.append("replicas %s show a message twice" % r.duplicates)
    if not r.order_equal:
        problems.append("replicas disagree on the order of %s: %s" % (nemesis.ROOM, r.order_note))
    assert not problems, "seed %d (replay: CHORUS_NEMESIS_SEED=%d CHORUS_NEMESIS_SCHEDULES=1):\n  %s" % (
        seed, seed, "\n  ".join(problems))
