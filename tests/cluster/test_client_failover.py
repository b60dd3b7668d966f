"""The terminal client's failover on a real cluster: its replica is killed,
it tells the user, moves to another replica of its list, logs in again,
rejoins the room and fills the gap, showing every line exactly once."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from client_helpers import ChorusClient  # noqa: E402


def test_client_fails_over_and_fills_the_gap(cluster, tmp_path):
    replicas = ["%s:6667" % n.addr for n in cluster.nodes[:3]]
    c = ChorusClient(replicas, (), log_dir=str(tmp_path))
    try:
        c.login(1, "alice", "#fo")
        bob = cluster.nodes[3].client("bob")
        bob.join("#fo")

        def say(text):
            bob.send("PRIVMSG #fo :" + text)
            bob.expect(lambda m: m.command == "PRIVMSG" and m.params[1] == text)

        for i in range(3):
            say("before %d" % i)
        c.screen(lambda s: len(s.lines) == 3)
        cluster.nodes[0].kill9()
        c.error("replica 1 (%s) went away" % replicas[0], timeout=15)
        for i in range(4):
            say("during %d" % i)
        c.info("back in #fo", timeout=30)
        for i in range(2):
            say("after %d" % i)
        want = ["before %d" % i for i in range(3)] + ["during %d" % i for i in range(4)] + \
            ["after %d" % i for i in range(2)]
        s = c.screen(lambda s: s.texts()[-len(want):] == want, timeout=20)
        assert s.texts() == want, "lines missing or twice: %s" % s.texts()
        assert "replica 1" not in s.status
        c.quit()
    finally:
        c.kill()


def test_lines_sent_across_a_kill9_show_once_everywhere(cluster, tmp_path):
    """Exactly-once sends on a real cluster: the client sends 200 lines and
    its replica is killed with SIGKILL while they go. The lines it had not
    answered go again, with their ids, on the replica the client moves to:
    each of the 200 is in the room once, in order, on every live replica
    (a line the killed replica had multicast before dying is answered as a
    repeat, with its msgid)."""
    replicas = ["%s:6667" % n.addr for n in cluster.nodes[:3]]
    c = ChorusClient(replicas, (), log_dir=str(tmp_path))
    want = ["line %d" % i for i in range(200)]
    try:
        c.login(1, "alice", "#once")
        for text in want:
            c.send("a " + text)
        c.screen(lambda s: any(t.startswith("line ") for t in s.texts()), timeout=15)
        cluster.nodes[0].kill9()
        c.error("replica 1 (%s) went away" % replicas[0], timeout=15)
        c.info("back in #once", timeout=30)
        c.screen(lambda s: s.texts()[-1:] == [want[-1]], timeout=60)
        c.quit()
    finally:
        c.kill()
    for node in cluster.nodes[1:]:
        got = node.history("#once", "checker%d" % node.i, texts=True)
        assert got == want, "replica %d: %d lines, not once each: %s" % (
            node.i, len(got), [t for t in want if got.count(t) != 1][:10])


def test_majority_mode_moves_the_client_to_the_majority(majority_cluster, tmp_path):
    """Majority mode: the client's replica is cut off in a minority; its
    lines are refused (MAJORITY_REQUIRED, naming the majority's replicas);
    the client says so, moves to one of them and sends the waiting lines
    there: after the heal every line is in the room once, on every replica."""
    c = majority_cluster
    replicas = ["%s:6667" % n.addr for n in c.nodes]
    client = ChorusClient(replicas, (), log_dir=str(tmp_path))
    want = ["line %d" % i for i in range(20)]
    try:
        client.login(1, "alice", "#maj")
        client.send("a " + want[0])
        client.screen(lambda s: s.texts()[-1:] == [want[0]], timeout=15)
        c.partition([1, 2], [3, 4, 5])
        c.wait_view([1, 2], c.nodes[:2])
        c.wait_view([3, 4, 5], c.nodes[2:])
        for text in want[1:]:
            client.send("a " + text)
        client.info("cut off from the majority: moving to replica 3", timeout=15)
        client.info("back in #maj", timeout=30)
        client.screen(lambda s: s.texts()[-1:] == [want[-1]], timeout=30)
        c.heal()
        c.wait_view([1, 2, 3, 4, 5])
        c.wait_converged(15)
        client.quit()
    finally:
        client.kill()
    for node in c.nodes:
        got = node.history("#maj", "checker%d" % node.i, texts=True)
        assert got == want, "replica %d: %s" % (node.i, got)


def test_client_given_one_address_learns_the_others_and_fails_over(cluster, tmp_path):
    """Discovery: the client is given replica 2's address only; after it
    logs in it knows the replicas of that replica's view (LINKS); when
    replica 2 is killed it fails over to one it only learned about."""
    c = ChorusClient(["%s:6667" % cluster.nodes[1].addr], (), log_dir=str(tmp_path))
    try:
        c.login(1, "alice")
        c.info("4 more replica(s) learned from this one: 5 known", timeout=15)
        c.join("#learn")
        c.send("a before the failover")
        c.screen(lambda s: s.texts() == ["before the failover"], timeout=15)
        cluster.nodes[1].kill9()
        c.error("went away", timeout=15)
        c.info("back in #learn", timeout=30)
        s = c.last_screen()
        assert "connected as alice" in s.status and cluster.nodes[1].addr + ":" not in s.status, s.status
        c.send("a after the failover")
        c.screen(lambda s: s.texts() == ["before the failover", "after the failover"], timeout=15)
        c.quit()
    finally:
        c.kill()
