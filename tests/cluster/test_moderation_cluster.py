"""Moderation on real Corosync: an operator's KICK on replica 1 removes the
user on replica 4; a ban set in one partition holds after the merge on
every replica, while the banned user's lines from the other side during the
split stay in history (they were acknowledged); the room's modes are the
same everywhere (equal digests)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))

CAPS = ("echo-message", "server-time", "message-tags", "batch", "draft/chathistory", "multi-prefix")


def names(c, room):
    c.send("NAMES " + room)
    got = []
    while True:
        m = c.expect(lambda m: m.command in ("353", "366"), timeout=10)
        if m.command == "366":
            return set(got)
        got += m.params[-1].split()


def wait_names(c, room, want, tries=50):
    for _ in range(tries):
        got = names(c, room)
        if got == want:
            return got
        c.sync()
    return got


def test_kick_and_a_ban_across_a_partition(cluster):
    boss = cluster.nodes[0].client("boss", CAPS)
    boss.send("JOIN #mod")
    boss.expect("366", timeout=10)
    spam = cluster.nodes[3].client("spammer", CAPS)
    spam.send("JOIN #mod")
    spam.expect("366", timeout=10)
    assert wait_names(boss, "#mod", {"@boss", "spammer"}) == {"@boss", "spammer"}
    # A KICK made on replica 1 reaches the user on replica 4.
    boss.send("KICK #mod spammer :first warning")
    k = spam.expect("KICK", timeout=10)
    assert k.nick == "boss" and k.params == ["#mod", "spammer", "first warning"], k
    assert wait_names(cluster.nodes[4].client("watch", CAPS), "#mod", {"@boss"}) == {"@boss"}
    spam.send("JOIN #mod")
    spam.expect("366", timeout=10)
    # Split: the operator bans on the left; the spammer writes on the right.
    cluster.partition([1, 2], [3, 4, 5])
    cluster.wait_view([1, 2], cluster.nodes[:2])
    cluster.wait_view([3, 4, 5], cluster.nodes[2:])
    boss.send("MODE #mod +b spammer")
    boss.expect(lambda m: m.command == "MODE" and m.params[1] == "+b", timeout=10)
    spam.send("PRIVMSG #mod :written during the split")
    acked = spam.expect("PRIVMSG", timeout=10).tags["msgid"]
    cluster.heal()
    cluster.wait_view([1, 2, 3, 4, 5])
    cluster.wait_converged(15)
    # The ban holds everywhere from the merge on; the line stays.
    spam.settle()
    spam.send("PRIVMSG #mod :after the merge")
    assert "+b" in spam.expect("404", timeout=10).params[-1]
    for node in cluster.nodes:
        r = node.client("reader%d" % node.i, CAPS)
        r.send("MODE #mod b")
        assert r.expect("367", timeout=10).params[2] == "spammer!*@*", node.i
        r.expect("368")
        ids = [m.tags["msgid"] for m in r.history("LATEST", "#mod", "*", 10)]
        assert acked in ids, (node.i, ids)
        r.close()
    cluster.wait_converged(10)


def test_one_room_made_in_two_partitions_has_one_founder(cluster):
    """Both sides of a split make #twin; after the merge the earlier maker is
    its operator on every replica, and the other's clients are told (MODE
    -o from the server), so no client keeps a stale @."""
    cluster.partition([1, 2], [3, 4, 5])
    cluster.wait_view([1, 2], cluster.nodes[:2])
    cluster.wait_view([3, 4, 5], cluster.nodes[2:])
    first = cluster.nodes[0].client("first", CAPS)
    first.send("JOIN #twin")
    first.expect("366", timeout=10)
    first.sync()
    second = cluster.nodes[3].client("second", CAPS)
    second.send("JOIN #twin")
    second.expect("366", timeout=10)
    assert names(second, "#twin") == {"@second"}
    cluster.heal()
    cluster.wait_view([1, 2, 3, 4, 5])
    cluster.wait_converged(15)
    told = second.expect(lambda m: m.command == "MODE" and m.params[0] == "#twin", timeout=10)
    assert told.params == ["#twin", "-o+o", "second", "first"], told
    for node in cluster.nodes:
        r = node.client("look%d" % node.i, CAPS)
        assert wait_names(r, "#twin", {"@first", "second"}) == {"@first", "second"}, node.i
        r.close()
    second.send("MODE #twin +m")
    assert second.expect("482", timeout=10)
    cluster.wait_converged(10)
