"""draft/chathistory: every subcommand, msgid and timestamp references,
limits, errors, and the replay on JOIN for clients without the cap.

Every test runs twice: with the message index's default lag (the few lines
of a test are read from the index's tail in RAM) and every line cached, and
with --index-lag 1 (every line is read from the index in SQLite) and
--history-cache 0 (no line cached but each room's last 25, which the replay
on JOIN reads)."""
import pytest
import time

from ircclient import ALL_CAPS

BOTH_HISTORY_PATHS = True

HIST = ("batch", "message-tags", "server-time", "draft/chathistory")


def post(c, target, texts, spacing=0.0):
    """Sends texts to target one by one; returns their echoes."""
    out = []
    for t in texts:
        c.send("PRIVMSG %s :%s" % (target, t))
        out.append(c.expect("PRIVMSG"))
        if spacing:
            time.sleep(spacing)  # distinct server-time stamps for timestamp references
    return out


def ids(lines):
    return [m.tags["msgid"] for m in lines]


def texts(lines):
    return [m.params[-1] for m in lines]


def test_a_waiting_history_answer_keeps_its_place_and_label(server):
    """The answer comes from the store later; the lines sent after the
    CHATHISTORY wait for it: a PING in the same packet is answered after
    the batch, which carries the label."""
    a, m = history_room(server, 5)
    a.send_raw(b"@label=h1 CHATHISTORY LATEST #h * 3\r\nPING :after\r\n")
    pong = a.expect(lambda x: x.command == "PONG" and x.params[-1] == "after")
    lines = a.backlog
    starts = [x for x in lines if x.command == "BATCH" and x.params[0].startswith("+")]
    assert starts and starts[0].tags.get("label") == "h1", lines
    assert [x.params[-1] for x in lines if x.command == "PRIVMSG"] == ["m2", "m3", "m4"], lines
    assert pong is not None


def history_room(server, n, room="#h", spacing=0.0):
    a = server.client().login("poster", ALL_CAPS)
    a.join(room)
    echoes = post(a, room, ["m%d" % i for i in range(n)], spacing)
    a.settle()
    return a, echoes


def test_latest(server):
    a, m = history_room(server, 10)
    h = a.history("LATEST", "#h", "*", 5)
    assert ids(h) == ids(m[5:])
    assert texts(h) == ["m5", "m6", "m7", "m8", "m9"]
    assert all(x.command == "PRIVMSG" and x.nick == "poster" and x.params[0] == "#h" for x in h)
    # Original time on replayed lines.
    assert [x.tags["time"] for x in h] == [x.tags["time"] for x in m[5:]]
    h = a.history("LATEST", "#h", "msgid=" + m[6].tags["msgid"], 10)
    assert ids(h) == ids(m[7:])
    h = a.history("LATEST", "#h", "msgid=" + m[6].tags["msgid"], 2)
    assert ids(h) == ids(m[8:])
    h = a.history("LATEST", "#h", "*", 100)
    assert ids(h) == ids(m)


def test_before_after_around_between_by_msgid(server):
    a, m = history_room(server, 10)
    ref = lambda i: "msgid=" + m[i].tags["msgid"]
    assert ids(a.history("BEFORE", "#h", ref(5), 3)) == ids(m[2:5])
    assert ids(a.history("BEFORE", "#h", ref(2), 10)) == ids(m[0:2])
    assert ids(a.history("BEFORE", "#h", ref(0), 10)) == []
    assert ids(a.history("AFTER", "#h", ref(5), 3)) == ids(m[6:9])
    assert ids(a.history("AFTER", "#h", ref(7), 10)) == ids(m[8:])
    assert ids(a.history("AFTER", "#h", ref(9), 10)) == []
    around = ids(a.history("AROUND", "#h", ref(5), 3))
    assert around == ids(m[4:7]), texts(a.history("AROUND", "#h", ref(5), 3))
    around = ids(a.history("AROUND", "#h", ref(5), 100))
    assert around == ids(m)
    around = ids(a.history("AROUND", "#h", ref(0), 3))
    assert m[0].tags["msgid"] in around and len(around) <= 3
    assert around == sorted(around, key=ids(m).index)
    assert ids(a.history("BETWEEN", "#h", ref(2), ref(7), 10)) == ids(m[3:7])
    # Either order; the limit counts from the first reference.
    assert ids(a.history("BETWEEN", "#h", ref(7), ref(2), 10)) == ids(m[3:7])
    assert ids(a.history("BETWEEN", "#h", ref(2), ref(7), 2)) == ids(m[3:5])
    assert ids(a.history("BETWEEN", "#h", ref(7), ref(2), 2)) == ids(m[5:7])
    # A msgid that is not in this room's history: an empty batch.
    a.join("#other")
    (o,) = post(a, "#other", ["elsewhere"])
    assert a.history("BEFORE", "#h", "msgid=" + o.tags["msgid"], 10) == []
    assert a.history("AFTER", "#h", "msgid=nonexistent-msgid", 10) == []


def test_timestamp_references(server):
    a, m = history_room(server, 10, spacing=0.003)
    times = [x.tags["time"] for x in m]
    ts = lambda i: "timestamp=" + times[i]
    # Expected sets computed from the stamps the server gave (strictly before/after).
    before5 = [x for x in m if x.tags["time"] < times[5]]
    assert ids(a.history("BEFORE", "#h", ts(5), 3)) == ids(before5[-3:])
    after5 = [x for x in m if x.tags["time"] > times[5]]
    assert ids(a.history("AFTER", "#h", ts(5), 3)) == ids(after5[:3])
    assert ids(a.history("LATEST", "#h", ts(5), 100)) == ids(after5)
    between = [x for x in m if times[2] < x.tags["time"] < times[7]]
    assert ids(a.history("BETWEEN", "#h", ts(2), ts(7), 100)) == ids(between)
    assert ids(a.history("BETWEEN", "#h", ts(7), ts(2), 100)) == ids(between)
    around = a.history("AROUND", "#h", ts(5), 4)
    assert 1 <= len(around) <= 4
    assert ids(around) == [i for i in ids(m) if i in ids(around)]  # in order, contiguous-ish
    # Times far away.
    assert ids(a.history("BEFORE", "#h", "timestamp=2000-01-01T00:00:00.000Z", 10)) == []
    assert ids(a.history("AFTER", "#h", "timestamp=2000-01-01T00:00:00.000Z", 3)) == ids(m[:3])
    assert ids(a.history("BEFORE", "#h", "timestamp=2999-01-01T00:00:00.000Z", 3)) == ids(m[7:])
    # Mixed references.
    assert ids(a.history("BETWEEN", "#h", "msgid=" + m[1].tags["msgid"],
                         "timestamp=2999-01-01T00:00:00.000Z", 100)) == ids(m[2:])


def test_limit_is_clamped_to_100(server):
    a, m = history_room(server, 0)
    for i in range(130):
        a.send("PRIVMSG #h :bulk %d" % i)
    echoes = [a.expect("PRIVMSG") for _ in range(130)]
    h = a.history("LATEST", "#h", "*", 500)
    assert len(h) == 100
    assert ids(h) == ids(echoes[30:])
    h = a.history("BEFORE", "#h", "msgid=" + echoes[129].tags["msgid"], 1000)
    assert ids(h) == ids(echoes[29:129])
    # Paging back with BEFORE reaches the start exactly once each.
    h2 = a.history("BEFORE", "#h", "msgid=" + h[0].tags["msgid"], 100)
    assert ids(h2) == ids(echoes[:29])


@pytest.mark.open_identity
def test_targets(server):
    a = server.client().login("targeter", ALL_CAPS)
    b = server.client().login("peer", ALL_CAPS)
    a.join("#t1")
    a.join("#t2")
    (m1,) = post(a, "#t1", ["in t1"])
    time.sleep(0.005)
    (m2,) = post(a, "peer", ["dm to peer"])
    time.sleep(0.005)
    (m3,) = post(a, "#t2", ["in t2"])
    a.settle()
    a.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2999-01-01T00:00:00.000Z 10")
    start, lines = a.expect_batch("draft/chathistory-targets")
    got = [(m.params[1], m.params[2]) for m in lines]
    assert all(m.command == "CHATHISTORY" and m.params[0] == "TARGETS" for m in lines)
    assert got == [("#t1", m1.tags["time"]), ("peer", m2.tags["time"]), ("#t2", m3.tags["time"])], got
    # The limit and the window apply.
    a.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2999-01-01T00:00:00.000Z 2")
    _, lines = a.expect_batch("draft/chathistory-targets")
    assert [m.params[1] for m in lines] == ["#t1", "peer"]
    a.send("CHATHISTORY TARGETS timestamp=2999-01-01T00:00:00.000Z timestamp=2998-01-01T00:00:00.000Z 10")
    _, lines = a.expect_batch("draft/chathistory-targets")
    assert lines == []
    # The peer sees the DM conversation under the other nick.
    b.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2999-01-01T00:00:00.000Z 10")
    _, lines = b.expect_batch("draft/chathistory-targets")
    assert [m.params[1] for m in lines] == ["targeter"]


def test_errors(server):
    a, m = history_room(server, 3)
    def fail(line):
        a.send(line)
        f = a.expect(lambda x: x.command in ("FAIL", "BATCH") or x.command.isdigit())
        assert f.command == "FAIL" and f.params[0] == "CHATHISTORY", (line, f)
        return f
    f = fail("CHATHISTORY FROB #h * 10")
    assert f.params[1] in ("INVALID_PARAMS", "UNKNOWN_COMMAND") and f.params[2] == "FROB", f
    f = fail("CHATHISTORY LATEST #h")
    assert f.params[1] in ("NEED_MORE_PARAMS", "INVALID_PARAMS") and f.params[2] == "LATEST", f
    f = fail("CHATHISTORY BETWEEN #h msgid=" + m[0].tags["msgid"] + " 10")
    assert f.params[1] in ("NEED_MORE_PARAMS", "INVALID_PARAMS") and f.params[2] == "BETWEEN", f
    for line in ("CHATHISTORY LATEST #h bogus 10",
                 "CHATHISTORY BEFORE #h * 10",
                 "CHATHISTORY LATEST #h * -1",
                 "CHATHISTORY LATEST #h * many",
                 "CHATHISTORY AFTER #h timestamp=yesterday 10",
                 "CHATHISTORY AROUND #h msgid= 10",
                 "CHATHISTORY TARGETS msgid=x timestamp=2000-01-01T00:00:00.000Z 10"):
        f = fail(line)
        assert f.params[1] == "INVALID_PARAMS", (line, f)
    for target in ("#no-such-room", "no-such-user"):
        f = fail("CHATHISTORY LATEST %s * 10" % target)
        assert f.params[1:4] == ["INVALID_TARGET", "LATEST", target], f
    # Still serving.
    assert ids(a.history("LATEST", "#h", "*", 10)) == ids(m)


def test_history_of_a_room_one_is_not_in(server):
    a, m = history_room(server, 3)
    b = server.client().login("visitor", HIST)
    assert ids(b.history("LATEST", "#h", "*", 10)) == ids(m)


def test_history_without_batch_cap(server):
    a, m = history_room(server, 3)
    b = server.client().login("nobatch", ("draft/chathistory", "message-tags"))
    b.send("CHATHISTORY LATEST #h * 10")
    got = [b.expect("PRIVMSG") for _ in range(3)]
    assert ids(got) == ids(m)
    assert all("batch" not in x.tags for x in got)


def test_join_replay_last_25_in_a_batch(server):
    a, m = history_room(server, 30, room="#replay")
    b = server.client().login("replayed", ("batch", "message-tags", "server-time"))
    b.send("JOIN #replay")
    b.expect("366")
    start, lines = b.expect_batch("chathistory")
    assert start.params[2] == "#replay"
    assert len(lines) == 25
    assert ids(lines) == ids(m[5:])
    assert [x.tags["time"] for x in lines] == [x.tags["time"] for x in m[5:]]
    assert texts(lines) == ["m%d" % i for i in range(5, 30)]
    assert all(x.nick == "poster" and x.params[0] == "#replay" for x in lines)


def test_join_replay_after_a_restart(server):
    """The rooms' last lines are read from the store at start-up (nothing is
    cached then), with their like counts; lines written after join them."""
    a, m = history_room(server, 30, room="#again")
    liker = server.client().login("liker", ALL_CAPS)
    liker.join("#again")
    liker.send("@+draft/react=x;+draft/reply=%s TAGMSG #again" % m[29].tags["msgid"])
    liker.expect("TAGMSG")
    liker.settle()
    server.close_clients()
    server.restart()
    a = server.client().login("poster", ALL_CAPS)
    a.join("#again")
    a.send("PRIVMSG #again :after")
    a.expect("PRIVMSG")
    a.settle()
    b = server.client().login("returning", ("batch", "message-tags", "server-time"))
    b.send("JOIN #again")
    b.expect("366")
    _, lines = b.expect_batch("chathistory")
    assert texts(lines) == ["m%d" % i for i in range(6, 30)] + ["after"]
    assert ids(lines[:-1]) == ids(m[6:])
    assert lines[-2].tags.get("chorus/likes") == "1"


def test_join_replay_without_batch_and_tags(server):
    a, m = history_room(server, 27, room="#replay")
    b = server.client().login("plainreplay")
    b.send("JOIN #replay")
    b.expect("366")
    b.sync()
    msgs = [x for x in b.backlog if x.command == "PRIVMSG"]
    assert texts(msgs) == ["m%d" % i for i in range(2, 27)]
    assert all(x.tags == {} for x in msgs)
    assert not [x for x in b.backlog if x.command == "BATCH"]


def test_join_replay_fewer_than_25(server):
    a, m = history_room(server, 4, room="#few")
    b = server.client().login("fewer", ("batch", "message-tags", "server-time"))
    b.send("JOIN #few")
    _, lines = b.expect_batch("chathistory")
    assert ids(lines) == ids(m)


def test_no_join_replay_with_chathistory_cap(server):
    a, m = history_room(server, 5, room="#nr")
    b = server.client().login("modern", HIST)
    b.send("JOIN #nr")
    b.expect("366")
    b.sync()
    assert not [x for x in b.backlog if x.command in ("PRIVMSG", "BATCH")], b.backlog


def test_no_join_replay_of_an_empty_room(server):
    b = server.client().login("first", ("batch", "message-tags", "server-time"))
    b.send("JOIN #fresh")
    b.expect("366")
    b.sync()
    assert not [x for x in b.backlog if x.command in ("PRIVMSG", "BATCH")], b.backlog


@pytest.mark.open_identity
def test_dm_history_paging(server):
    a = server.client().login("pager", ALL_CAPS)
    b = server.client().login("pagee", ALL_CAPS)
    sent = []
    for i in range(6):
        who, other = (a, "pagee") if i % 2 == 0 else (b, "pager")
        who.send("PRIVMSG %s :dm %d" % (other, i))
        sent.append(who.expect(lambda x: x.command == "PRIVMSG" and x.params[-1] == "dm %d" % i))
    a.settle()
    b.settle()
    for c, peer in ((a, "pagee"), (b, "pager")):
        assert ids(c.history("LATEST", peer, "*", 10)) == ids(sent)
        assert ids(c.history("BEFORE", peer, "msgid=" + sent[3].tags["msgid"], 2)) == ids(sent[1:3])
        assert ids(c.history("AFTER", peer, "msgid=" + sent[3].tags["msgid"], 10)) == ids(sent[4:])
