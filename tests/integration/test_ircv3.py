"""IRCv3 tags: server-time, msgid, labeled-response (with batch)."""
import datetime
import re

from ircclient import ALL_CAPS

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def parse_time(value):
    assert TIME_RE.match(value), value
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def test_server_time_format_and_value(server):
    a = server.client().login("timer", ALL_CAPS)
    a.join("#time")
    before = datetime.datetime.now(datetime.timezone.utc)
    a.send("PRIVMSG #time :what time is it")
    echo = a.expect("PRIVMSG")
    after = datetime.datetime.now(datetime.timezone.utc)
    t = parse_time(echo.tags["time"])
    slack = datetime.timedelta(seconds=2)
    assert before - slack <= t <= after + slack, (before, t, after)
    # Every line gets it, numerics too.
    a.send("PING :x")
    pong = a.expect("PONG")
    parse_time(pong.tags["time"])


def test_no_tags_without_caps(server):
    a = server.client().login("plain")
    b = server.client().login("fancy", ALL_CAPS)
    a.join("#plain")
    b.join("#plain")
    b.send("PRIVMSG #plain :tagged for some")
    got = a.expect("PRIVMSG")
    assert got.tags == {}, got
    assert not got.raw.startswith("@")


def test_server_time_only(server):
    a = server.client().login("onlytime", ("server-time",))
    b = server.client().login("sender", ALL_CAPS)
    a.join("#st")
    b.join("#st")
    b.send("PRIVMSG #st :hi")
    got = a.expect("PRIVMSG")
    assert set(got.tags) == {"time"}, got


def test_each_capability_set_gets_its_own_line(server):
    """One message fanned out to members whose capabilities differ: the line
    is formatted once per set of tag capabilities and each member gets the
    tags it asked for, with the same values; the next message is not served
    the first one's line."""
    sets = {"none": (), "st": ("server-time",), "mt": ("message-tags",),
            "both": ("server-time", "message-tags"), "both2": ("server-time", "message-tags")}
    members = {nick: server.client().login("cap" + nick, caps) for nick, caps in sets.items()}
    sender = server.client().login("capsender", ALL_CAPS)
    for c in list(members.values()) + [sender]:
        c.join("#capset")
    for text in ("first", "second"):
        sender.send("@label=L%s PRIVMSG #capset :%s" % (text, text))
        echo = sender.expect("PRIVMSG")
        assert echo.tags["label"] == "L" + text and echo.params[-1] == text, echo
        for nick, c in members.items():
            got = c.expect("PRIVMSG")
            assert got.params == ["#capset", text], (nick, got)
            want = {"none": set(), "st": {"time"}, "mt": {"msgid"}}.get(nick, {"time", "msgid"})
            assert set(got.tags) == want, (nick, got)
            for tag in want:
                assert got.tags[tag] == echo.tags[tag], (nick, tag, got, echo)


def test_msgid_unique_across_many_messages(server):
    a = server.client().login("many", ALL_CAPS)
    b = server.client().login("counter", ("message-tags",))
    a.join("#many")
    b.join("#many")
    n = 300
    for i in range(n):
        a.send("PRIVMSG #many :message %d" % i)
    echoes = [a.expect("PRIVMSG") for _ in range(n)]
    got = [b.expect("PRIVMSG") for _ in range(n)]
    assert [m.params[-1] for m in echoes] == ["message %d" % i for i in range(n)]
    assert [m.params[-1] for m in got] == ["message %d" % i for i in range(n)]
    ids = [m.tags["msgid"] for m in echoes]
    assert len(set(ids)) == n
    assert [m.tags["msgid"] for m in got] == ids
    # Still unique after a restart (a new stream).
    server.close_clients()
    server.restart()
    a = server.client().login("many", ALL_CAPS)
    a.join("#many")
    for i in range(20):
        a.send("PRIVMSG #many :after restart %d" % i)
    more = [a.expect("PRIVMSG").tags["msgid"] for _ in range(20)]
    assert len(set(ids + more)) == n + 20


def test_labeled_single_reply_carries_label(server):
    a = server.client().login("labeler", ALL_CAPS)
    a.send("@label=one PING :labeled")
    pong = a.expect("PONG")
    assert pong.tags.get("label") == "one" and pong.params[-1] == "labeled"
    a.send("@label=err PRIVMSG #nowhere :x")
    err = a.expect("403")
    assert err.tags.get("label") == "err"
    # Labels with characters that need escaping come back intact.
    a.send("@label=a\\sb\\:c PING :esc")
    pong = a.expect("PONG")
    assert pong.tags.get("label") == "a b;c"


def test_labeled_several_replies_in_a_batch(server):
    a = server.client().login("batcher", ALL_CAPS)
    b = server.client().login("member2")
    a.join("#lb")
    b.join("#lb")
    a.settle()
    a.send("@label=names NAMES #lb")
    start = a.expect("BATCH")
    assert start.params[0].startswith("+") and start.params[1] == "labeled-response"
    assert start.tags.get("label") == "names"
    ref = start.params[0][1:]
    inner = []
    while True:
        m = a.expect(lambda m: True)
        if m.command == "BATCH":
            assert m.params == ["-" + ref]
            break
        inner.append(m)
    assert [m.command for m in inner] == ["353", "366"], inner
    assert all(m.tags.get("batch") == ref for m in inner)
    assert all("label" not in m.tags for m in inner)
    assert set(inner[0].params[-1].split()) == {"@batcher", "member2"}


def test_labeled_without_batch_cap_sends_lines_plainly(server):
    a = server.client().login("nobatch", ("labeled-response", "message-tags"))
    a.join("#nb")
    a.settle()
    a.send("@label=w WHO #nb")
    a.sync()
    cmds = [m.command for m in a.backlog]
    assert "BATCH" not in cmds and "352" in cmds and "315" in cmds, a.backlog


def test_labeled_no_reply_gets_ack(server):
    a = server.client().login("acker", ALL_CAPS)
    a.send("@label=quiet PONG :nothing")
    ack = a.expect(lambda m: True)
    assert ack.command == "ACK" and ack.tags.get("label") == "quiet", ack


def test_labeled_privmsg_echo_carries_label(server):
    a = server.client().login("lecho", ALL_CAPS)
    b = server.client().login("lrecv", ALL_CAPS)
    a.join("#le")
    b.join("#le")
    a.settle()
    b.settle()
    a.send("@label=msg1 PRIVMSG #le :labeled message")
    echo = a.expect(lambda m: m.command in ("PRIVMSG", "ACK", "BATCH"))
    assert echo.command == "PRIVMSG" and echo.tags.get("label") == "msg1", echo
    assert echo.tags.get("msgid")
    got = b.expect("PRIVMSG")
    assert "label" not in got.tags and got.tags["msgid"] == echo.tags["msgid"]
    a.sync()
    assert not [m for m in a.backlog if m.command in ("ACK", "PRIVMSG")], a.backlog


def test_labeled_privmsg_without_echo_gets_ack_after_storage(server):
    a = server.client().login("lack", ("labeled-response", "message-tags", "batch", "server-time",
                                       "draft/chathistory"))
    b = server.client().login("lack2", ("message-tags",))
    a.join("#la")
    b.join("#la")
    a.settle()
    a.send("@label=stored PRIVMSG #la :ack me")
    ack = a.expect(lambda m: m.command in ("PRIVMSG", "ACK"))
    assert ack.command == "ACK" and ack.tags.get("label") == "stored", ack
    # The ACK means stored: history has it.
    h = a.history("LATEST", "#la", "*", 5)
    assert [m.params[-1] for m in h] == ["ack me"]
    assert b.expect("PRIVMSG").tags["msgid"] == h[0].tags["msgid"]
    # A DM too.
    a.send("@label=dm PRIVMSG lack2 :direct")
    ack = a.expect(lambda m: m.command in ("PRIVMSG", "ACK"))
    assert ack.command == "ACK" and ack.tags.get("label") == "dm", ack


def test_labeled_chathistory_is_one_labeled_batch(server):
    a = server.client().login("lhist", ALL_CAPS)
    a.join("#lh")
    for i in range(3):
        a.send("PRIVMSG #lh :m%d" % i)
        a.expect("PRIVMSG")
    a.settle()
    a.send("@label=h CHATHISTORY LATEST #lh * 10")
    a.sync()
    lines = a.backlog
    # An outer labeled-response batch (or the chathistory batch itself labeled).
    first = lines[0]
    assert first.command == "BATCH" and first.tags.get("label") == "h", lines
    texts = [m.params[-1] for m in lines if m.command == "PRIVMSG"]
    assert texts == ["m0", "m1", "m2"]
    assert sum(1 for m in lines if "label" in m.tags) == 1, lines


def test_labeled_join_nests_the_replay_batch(server):
    a = server.client().login("poster", ALL_CAPS)
    a.join("#nest")
    for i in range(3):
        a.send("PRIVMSG #nest :n%d" % i)
        a.expect("PRIVMSG")
    b = server.client().login("nester", ("batch", "labeled-response", "message-tags", "server-time"))
    b.send("@label=j JOIN #nest")
    outer = b.expect("BATCH")
    assert outer.params[1] == "labeled-response" and outer.tags.get("label") == "j", outer
    ref = outer.params[0][1:]
    lines = []
    while True:
        m = b.expect(lambda m: True)
        if m.command == "BATCH" and m.params[0] == "-" + ref:
            break
        lines.append(m)
    cmds = [m.command for m in lines]
    assert cmds[:3] == ["JOIN", "353", "366"], cmds
    inner_start = lines[3]
    assert inner_start.command == "BATCH" and inner_start.params[1] == "chathistory"
    assert inner_start.tags.get("batch") == ref  # nested in the labeled batch
    inner = inner_start.params[0][1:]
    assert inner != ref
    replay = [m for m in lines if m.command == "PRIVMSG"]
    assert [m.params[-1] for m in replay] == ["n0", "n1", "n2"]
    assert all(m.tags.get("batch") == inner for m in replay)
    assert lines[-1].command == "BATCH" and lines[-1].params == ["-" + inner]
    assert lines[-1].tags.get("batch") == ref
    assert all(m.tags.get("batch") == ref for m in lines[:3])
