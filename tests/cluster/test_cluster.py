"""Cluster tests on real Corosync: five replicas, each in its own network
namespace, with writers on every replica while links are cut and healed,
replicas killed with SIGKILL, and a replica restarted with a wiped disk.
After each heal all five digests must be equal within 10 s, and no message
that a client was told is stored (its echo) may be missing anywhere. Follows
and posts too: a post made in one partition reaches a follower's &timeline
after the heal, and a follow and an unfollow of one pair made in two
partitions resolve the same way on every replica."""
import os
import threading
import time

ROOM = "#general"


class Writer(threading.Thread):
    """Sends numbered messages to ROOM on one replica; records each msgid
    whose echo came back (= acknowledged as stored)."""

    def __init__(self, node, nick, count, pause=0.01):
        super().__init__(daemon=True)
        self.node, self.nick, self.count, self.pause = node, nick, count, pause
        self.acked = []
        self.error = None

    def run(self):
        try:
            c = self.node.client(self.nick)
            c.join(ROOM)
            for k in range(self.count):
                c.send("PRIVMSG %s :%s %d" % (ROOM, self.nick, k))
                echo = c.expect(lambda m: m.command == "PRIVMSG" and m.nick == self.nick, timeout=10)
                self.acked.append(echo.tags["msgid"])
                time.sleep(self.pause)
            c.close()
        except Exception as e:  # a killed replica ends its writer: what was acked counts
            self.error = e


def write_everywhere(cluster, tag, count=15, nodes=None):
    ws = [Writer(n, "%s%d" % (tag, n.i), count) for n in (nodes or cluster.nodes)]
    for w in ws:
        w.start()
    return ws


def join_all(writers):
    acked = []
    for w in writers:
        w.join(60)
        acked += w.acked
    return acked


def history(node):
    """Every msgid of ROOM on node, in order, through CHATHISTORY."""
    return node.history(ROOM, "checker%d" % node.i)


def check_no_loss(cluster, acked):
    orders = [history(n) for n in cluster.nodes]
    for n, order in zip(cluster.nodes, orders):
        missing = set(acked) - set(order)
        assert not missing, "replica %d lacks %d acknowledged messages: %s" % (n.i, len(missing), sorted(missing)[:5])
        assert len(order) == len(set(order)), "replica %d shows a message twice" % n.i
    assert all(o == orders[0] for o in orders), "replicas disagree on the order"


def test_partition_2_3_and_heal(cluster):
    acked = join_all(write_everywhere(cluster, "pre", 5))
    cluster.partition([1, 2], [3, 4, 5])
    cluster.wait_view([1, 2], [cluster.nodes[0], cluster.nodes[1]])
    cluster.wait_view([3, 4, 5], cluster.nodes[2:])
    acked += join_all(write_everywhere(cluster, "split", 15))
    cluster.heal()
    cluster.wait_view([1, 2, 3, 4, 5])
    took = cluster.wait_converged(10)
    print("2+3 heal: converged %.2fs after the view formed" % took)
    check_no_loss(cluster, acked)


def test_partition_1_4_while_writing(cluster):
    writers = write_everywhere(cluster, "w", 40)
    time.sleep(0.3)
    cluster.partition([5], [1, 2, 3, 4])
    time.sleep(3)
    cluster.heal()
    acked = join_all(writers)
    cluster.wait_view([1, 2, 3, 4, 5])
    cluster.wait_converged(10)
    check_no_loss(cluster, acked)


def test_kill9_during_writes_and_wiped_disk(cluster):
    writers = write_everywhere(cluster, "k", 30)
    time.sleep(0.3)
    cluster.nodes[1].kill9()
    cluster.nodes[3].kill9()
    acked = join_all(writers)
    cluster.nodes[1].start_chorusd()
    cluster.nodes[3].start_chorusd(wipe=True)
    cluster.wait_view([1, 2, 3, 4, 5])
    cluster.wait_converged(10)
    check_no_loss(cluster, acked)


def test_netsplit_and_netjoin_seen_by_clients(cluster):
    a = cluster.nodes[0].client("alice")
    b = cluster.nodes[4].client("bob")
    a.join(ROOM)
    b.join(ROOM)
    a.expect(lambda m: m.command == "JOIN" and m.nick == "bob")
    cluster.partition([1, 2, 3], [4, 5])
    quit_ = a.expect(lambda m: m.command == "QUIT" and m.nick == "bob", timeout=10)
    assert quit_.params[0] == "*.net *.split" and "batch" in quit_.tags
    b.send("PRIVMSG %s :written in the minority" % ROOM)
    sent = b.expect("PRIVMSG")
    # the majority writes more, so its clock runs ahead: bob's line will
    # merge in before these
    for k in range(3):
        a.send("PRIVMSG %s :majority %d" % (ROOM, k))
        a.expect(lambda m: m.command == "PRIVMSG" and m.nick == "alice")
    cluster.heal()
    join = a.expect(lambda m: m.command == "JOIN" and m.nick == "bob", timeout=15)
    assert "batch" in join.tags
    merged = a.expect(lambda m: m.command == "PRIVMSG" and m.nick == "bob", timeout=15)
    assert merged.tags["msgid"] == sent.tags["msgid"]
    assert merged.tags["time"] == sent.tags["time"]
    opened = [m for m in a.backlog if m.command == "BATCH" and m.params[0] == "+" + merged.tags["batch"]]
    assert opened and opened[0].params[1] == "chathistory", "merged line not in a chathistory batch"
    # and bob, back in the majority's view, gets the majority's lines in order
    got = [b.expect(lambda m: m.command == "PRIVMSG" and m.nick == "alice", timeout=15).params[1]
           for _ in range(3)]
    assert got == ["majority 0", "majority 1", "majority 2"]


def test_majority_mode_minority_refuses(majority_cluster):
    c = majority_cluster
    c.partition([1, 2], [3, 4, 5])
    c.wait_view([1, 2], c.nodes[:2])
    c.wait_view([3, 4, 5], c.nodes[2:])
    minority = c.nodes[0].client("min")
    minority.join(ROOM)
    minority.send("PRIVMSG %s :should be refused" % ROOM)
    fail = minority.expect("FAIL")
    assert fail.params[1] == "MAJORITY_REQUIRED" and "replica 3" in fail.params[-1]
    acked = join_all(write_everywhere(c, "maj", 10, nodes=c.nodes[2:]))
    c.heal()
    c.wait_view([1, 2, 3, 4, 5])
    c.wait_converged(10)
    check_no_loss(c, acked)


def follow_flags(node, nick, other):
    """The follow flags (following, follower) of other in nick's USERS on node."""
    c = node.client(nick)
    c.send("USERS")
    flags = None
    while True:
        m = c.expect("USERS", timeout=10)
        if m.params[1] == "*":
            break
        if m.params[1].lower() == other.lower():
            flags = set(m.params[2].split()) - {"online"}
    c.close()
    return flags


def test_timeline_post_across_partition(open_cluster):
    """alice (replica 1) follows bob (replica 4); bob posts while they are
    cut off from each other; after the heal the post reaches alice's
    &timeline live, with its original msgid and time. (Open identity: alice
    reads her timeline from every replica while connected on the first.)"""
    cluster = open_cluster
    bob = cluster.nodes[3].client("bob")
    cluster.wait_converged(10)  # bob is known on replica 1
    alice = cluster.nodes[0].client("alice")
    alice.send("FOLLOW bob")
    assert alice.expect(lambda m: m.command in ("FOLLOW", "FAIL")).command == "FOLLOW"
    alice.send("JOIN &timeline")
    alice.expect_batch("chathistory")
    cluster.partition([1, 2, 3], [4, 5])
    cluster.wait_view([1, 2, 3], cluster.nodes[:3])
    cluster.wait_view([4, 5], cluster.nodes[3:])
    bob.send("PRIVMSG &timeline :posted in the minority")
    sent = bob.expect("PRIVMSG")
    cluster.heal()
    got = alice.expect(lambda m: m.command == "PRIVMSG" and m.nick == "bob", timeout=15)
    assert got.params == ["&timeline", "posted in the minority"]
    assert got.tags["msgid"] == sent.tags["msgid"] and got.tags["time"] == sent.tags["time"]
    cluster.wait_view([1, 2, 3, 4, 5])
    cluster.wait_converged(10)
    # And it is on the timeline on every replica.
    for node in cluster.nodes:
        c = node.client("alice")
        assert [m.tags["msgid"] for m in c.history("LATEST", "&timeline", "*", 10)] == [sent.tags["msgid"]]
        c.close()


def test_concurrent_follow_unfollow_resolves_everywhere(open_cluster):
    """alice follows bob; then, cut in two, alice unfollows bob on one side
    while, on the other, she unfollows and follows again. After the heal
    every replica holds the same follow state (the op with the greater key).
    (Open identity: alice is on both sides at once.)"""
    cluster = open_cluster
    cluster.nodes[4].client("bob").close()
    cluster.wait_converged(10)
    a = cluster.nodes[0].client("alice")
    a.send("FOLLOW bob")
    assert a.expect(lambda m: m.command in ("FOLLOW", "FAIL")).command == "FOLLOW"
    a.close()
    cluster.wait_converged(10)
    cluster.partition([1, 2], [3, 4, 5])
    cluster.wait_view([1, 2], cluster.nodes[:2])
    cluster.wait_view([3, 4, 5], cluster.nodes[2:])
    one = cluster.nodes[0].client("alice")
    one.send("UNFOLLOW bob")
    assert one.expect(lambda m: m.command in ("UNFOLLOW", "FAIL")).command == "UNFOLLOW"
    other = cluster.nodes[2].client("alice")
    for verb in ("UNFOLLOW", "FOLLOW"):
        other.send("%s bob" % verb)
        assert other.expect(lambda m: m.command in (verb, "FAIL")).command == verb
    assert follow_flags(cluster.nodes[0], "bob", "alice") == set()
    assert follow_flags(cluster.nodes[2], "bob", "alice") == {"follower"}
    one.close()
    other.close()
    cluster.heal()
    cluster.wait_view([1, 2, 3, 4, 5])
    cluster.wait_converged(10)
    seen = [follow_flags(node, "bob", "alice") for node in cluster.nodes]
    assert all(f == seen[0] for f in seen), seen
    mirror = [follow_flags(node, "alice", "bob") for node in cluster.nodes]
    assert all(f == ({"following"} if seen[0] else set()) for f in mirror), mirror


def test_full_disk_on_one_replica_recovers_and_catches_up(small_disk_cluster):
    """Replica 2's disk fills while everyone writes: it refuses its own writes
    (FAIL) and cannot store the others'. Once space is freed it recovers by
    itself, rejoins, and the sync brings back everything it missed."""
    c = small_disk_cluster
    ballast = os.path.join(c.nodes[1].dir, "data", "ballast")
    acked = join_all(write_everywhere(c, "pre", 5))
    full = c.nodes[1].client("full")
    full.join(ROOM)
    with open(ballast, "wb") as f:
        try:
            f.write(b"x" * (3 * 1024 * 1024))
        except OSError:
            pass  # the tmpfs is full: that is the point
    refused = None
    for k in range(200):
        full.send("PRIVMSG %s :%s" % (ROOM, "y" * 400))
        m = full.expect(lambda m: m.command in ("PRIVMSG", "FAIL") and (m.command == "FAIL" or m.nick == "full"))
        if m.command == "FAIL":
            refused = m
            break
        acked.append(m.tags["msgid"])
    assert refused is not None and refused.params[1] == "STORAGE_ERROR", refused
    # the others keep writing while replica 2 cannot store
    acked += join_all(write_everywhere(c, "while", 10, nodes=[c.nodes[0], c.nodes[2], c.nodes[4]]))
    os.remove(ballast)
    c.wait_view([1, 2, 3, 4, 5], timeout=60)
    c.wait_converged(30)
    check_no_loss(c, acked)
