"""Limits (docs/LIMITS.md): line and tag lengths, UTF-8, flood control,
receive and send queues, connection count, a full store."""
import os
import sqlite3
import time

from ircclient import ALL_CAPS, Client

HIST = ("batch", "message-tags", "server-time", "draft/chathistory")


def room_with(server, room="#lim"):
    a = server.client().login("limiter", ALL_CAPS)
    a.join(room)
    a.settle()
    return a


def test_body_of_511_bytes_gets_417_and_510_works(server):
    a = room_with(server)
    prefix = "PRIVMSG #lim :"
    too_long = prefix + "x" * (511 - len(prefix))
    just_right = prefix + "y" * (510 - len(prefix))
    assert len(too_long.encode()) == 511 and len(just_right.encode()) == 510
    a.send(too_long)
    err = a.expect(lambda m: m.command in ("417", "PRIVMSG"))
    assert err.command == "417", err
    a.send(just_right)
    echo = a.expect(lambda m: m.command in ("417", "PRIVMSG"))
    assert echo.command == "PRIVMSG" and echo.params[-1] == "y" * (510 - len(prefix)), echo
    h = a.history("LATEST", "#lim", "*", 10)
    assert [m.params[-1] for m in h] == [echo.params[-1]]
    # Tags do not count toward the 512 bytes: the same body with tags is fine.
    a.send("@+some/tag=" + "v" * 200 + " " + just_right.replace("y", "z"))
    echo = a.expect(lambda m: m.command in ("417", "PRIVMSG"))
    assert echo.command == "PRIVMSG", echo
    # Far too long (longer than the receive queue and any read): 417 once,
    # the connection is fine.
    for size in (20000, 200000):
        a.send(prefix + "w" * size)
        assert a.expect(lambda m: m.command in ("417", "PRIVMSG", "ERROR")).command == "417"
        a.sync()
        assert not [m for m in a.backlog if m.command == "417"], "417 sent more than once"
    a.sync()
    h = a.history("LATEST", "#lim", "*", 10)
    assert len(h) == 2 and not any(m.params[-1].startswith(("x", "w")) for m in h)


def test_client_tags_over_4094_bytes_get_417(server):
    a = room_with(server)
    b = server.client().login("tagreader", ("message-tags",))
    b.join("#lim")
    b.settle()
    ok = "+t=" + "a" * (4094 - 3)
    bad = "+t=" + "a" * (4095 - 3)
    a.send("@%s TAGMSG #lim" % bad)
    assert a.expect(lambda m: m.command in ("417", "TAGMSG")).command == "417"
    a.send("@%s TAGMSG #lim" % ok)
    echo = a.expect(lambda m: m.command in ("417", "TAGMSG"))
    assert echo.command == "TAGMSG" and echo.tags["+t"] == "a" * 4091, echo.raw[:100]
    got = b.expect("TAGMSG")
    assert got.tags["+t"] == "a" * 4091
    a.send("@%s PRIVMSG #lim :with big tags" % bad)
    assert a.expect(lambda m: m.command in ("417", "PRIVMSG")).command == "417"
    h = a.history("LATEST", "#lim", "*", 10)
    assert h == []


def test_bad_utf8_is_refused_and_connection_stays(server):
    a = room_with(server)
    b = server.client().login("utfreader")
    b.join("#lim")
    b.settle()
    a.send(b"PRIVMSG #lim :caf\xc3 broken \xff\xfe")
    f = a.expect(lambda m: m.command in ("FAIL", "PRIVMSG"))
    assert f.command == "FAIL" and f.params[:2] == ["PRIVMSG", "INVALID_UTF8"], f
    a.send(b"@+x=\xc0\xaf TAGMSG #lim")  # an overlong encoding in a tag value
    f = a.expect(lambda m: m.command in ("FAIL", "TAGMSG"))
    assert f.command == "FAIL" and f.params[1] == "INVALID_UTF8", f
    a.send(b"PRIVMSG #lim :\xed\xa0\x80")  # a surrogate
    f = a.expect(lambda m: m.command in ("FAIL", "PRIVMSG"))
    assert f.command == "FAIL" and f.params[1] == "INVALID_UTF8", f
    a.send("PRIVMSG #lim :caf\u00e9 is fine")
    echo = a.expect(lambda m: m.command in ("FAIL", "PRIVMSG"))
    assert echo.command == "PRIVMSG" and echo.params[-1] == "caf\u00e9 is fine"
    got = b.expect("PRIVMSG")
    assert got.params[-1] == "caf\u00e9 is fine"
    h = a.history("LATEST", "#lim", "*", 10)
    assert [m.params[-1] for m in h] == ["caf\u00e9 is fine"]


def test_too_many_params_or_tags(server):
    a = room_with(server)
    a.send("PRIVMSG " + " ".join("p%d" % i for i in range(16)))
    f = a.expect(lambda m: m.command in ("FAIL", "PRIVMSG") or m.command.isdigit())
    assert f.command == "FAIL" and f.params[:2] == ["*", "INVALID_MESSAGE"], f
    a.send("@" + ";".join("+t%d=v" % i for i in range(65)) + " PRIVMSG #lim :many tags")
    f = a.expect(lambda m: m.command in ("FAIL", "PRIVMSG") or m.command.isdigit())
    assert f.command == "FAIL" and f.params[:2] == ["*", "INVALID_MESSAGE"], f
    a.send("@" + ";".join("+t%d=v" % i for i in range(64)) + " PRIVMSG #lim :64 tags")
    assert a.expect(lambda m: m.command in ("FAIL", "PRIVMSG")).command == "PRIVMSG"


def test_garbage_never_stalls_the_server(server):
    a = room_with(server)
    b = server.client().login("witness", ALL_CAPS)
    garbage = [b"@", b"@ ", b":", b": ", b":src", b"@a=b", b"@a=b :src", b" ", b"\t", b"\x00\x01\x02",
               b"PRIVMSG\x00 #lim :nul", b"@;;; PING :x", b"@=v PING :x", b"\r", b"\r\r\r",
               b":" + b"s" * 600, b"@" + b"k" * 5000, b"\xff" * 1000, b"PING " + b"x " * 300,
               b"CAP REQ :" + b"message-tags " * 100, b"CHATHISTORY BETWEEN #lim msgid= msgid= 1",
               b"CHATHISTORY AROUND #lim timestamp=9999-99-99T99:99:99.999Z 10",
               b"TAGMSG #lim", b"@+draft/reply= TAGMSG #lim", b"@+draft/react=;+draft/reply=x TAGMSG #lim",
               b"JOIN ,,,,", b"PART ,,,", b"NICK :", b"USER", b"PASS", b"WHO ,", b"LIST ,"]
    for g in garbage:
        a.send_raw(g + b"\r\n")
    a.send_raw(b"PRIVMSG #lim :bare LF\n")
    a.sync(timeout=10)
    assert not a.closed
    a.send("PRIVMSG #lim :still fine")
    a.expect(lambda m: m.command == "PRIVMSG" and m.params[-1] == "still fine")
    texts = [m.params[-1] for m in b.history("LATEST", "#lim", "*", 10)]
    assert texts[-1] == "still fine" and "bare LF" in texts, texts


def test_bare_cr_is_refused_not_stored(server):
    """A CR inside a line (text, topic, reasons, realname) is refused with a
    FAIL: stored and relayed, it would end the line early for clients that
    end lines at CR, and what follows would read as a line of its own."""
    a = room_with(server)
    b = server.client().login("watcher", ALL_CAPS)
    b.join("#lim")
    b.drain()
    for line, command in [(b"PRIVMSG #lim :hi\r:evil!e@x PRIVMSG #lim :spoofed", "PRIVMSG"),
                          (b"TOPIC #lim :a\rb", "TOPIC"), (b"PART #lim :bye\rx", "PART"),
                          (b"SETNAME :a\rb", "SETNAME"), (b"PRIVMSG #lim :nul\x00inside", "PRIVMSG")]:
        a.send_raw(line + b"\r\n")
        f = a.expect("FAIL")
        assert f.params[:2] == [command, "INVALID_TEXT"], (line, f)
    c = server.client()
    c.send_raw(b"NICK cr\r\nUSER cr 0 * :real\rname\r\n")
    assert c.expect("FAIL").params[:2] == ["USER", "INVALID_TEXT"]
    a.send("PRIVMSG #lim :after")
    b.expect(lambda m: m.command == "PRIVMSG" and m.params[-1] == "after")
    assert not [m for m in b.backlog if m.command in ("PRIVMSG", "TOPIC", "PART", "SETNAME")], b.backlog
    texts = [m.params[-1] for m in b.history("LATEST", "#lim", "*", 10)]
    assert all("\r" not in t and "evil" not in t for t in texts), texts


def test_stored_text_never_breaks_a_line(server):
    """Text in the store that no client can send today (a CR stored before CR
    was refused; whatever a peer sends) never goes out as two lines: a CR or
    LF in it goes out as a space. An op with a field over 4096 bytes or an
    author that is not a nick is malformed: stored (and resent) but applied
    nowhere, the same on every replica."""
    a = room_with(server)
    for text in ["old one", "old two", "old three", "old four", "old five"]:
        a.send("PRIVMSG #lim :" + text)
    a.send("PRIVMSG #lim :last")
    a.expect(lambda m: m.command == "PRIVMSG" and m.params[-1] == "last")
    a.close()
    server.stop()
    db = sqlite3.connect(os.path.join(server.data_dir, "chorus.db"))
    for column, value, was in [("body", "one\r:evil!e@x PRIVMSG #lim :spoofed", "old one"),
                               ("body", "two\nthree", "old two"), ("author", "bad nick", "old three"),
                               ("body", "x" * 4097, "old four")]:
        assert db.execute("UPDATE ops SET %s = ? WHERE body = ?" % column, (value, was)).rowcount == 1
    db.commit()
    db.close()
    server.start()
    b = server.client().login("reader", ALL_CAPS)
    texts = [m.params[-1] for m in b.history("LATEST", "#lim", "*", 10)]
    assert texts == ["one :evil!e@x PRIVMSG #lim :spoofed", "two three", "old five", "last"], texts


def test_flood_lines_wait_none_dropped(make_server):
    srv = make_server(["--flood-burst", "5", "--flood-rate", "5"])
    a = srv.client().login("flooder")
    time.sleep(1.0)  # let the bucket fill again after registration
    t0 = time.monotonic()
    a.send_raw(b"".join(b"PING :p%d\r\n" % i for i in range(30)))
    arrivals = []
    for i in range(30):
        pong = a.expect("PONG", timeout=10)
        assert pong.params[-1] == "p%d" % i, pong  # in order, none missing
        arrivals.append(time.monotonic() - t0)
    assert arrivals[4] < 1.0, arrivals  # the burst goes at once
    # 25 more lines at 5 per second: about 5 seconds.
    assert arrivals[-1] >= 4.0, arrivals
    a.sync(timeout=10)
    assert not a.backlog


def test_recvq_excess_flood(make_server):
    srv = make_server(["--recvq", "4096"])
    victim = srv.client().login("greedy")
    other = srv.client().login("bystander")
    victim.join("#flood")
    other.join("#flood")
    other.settle()
    data = b"".join(b"PRIVMSG #flood :flood line %06d padding padding padding\r\n" % i
                    for i in range(1200))
    assert len(data) >= 64 * 1024
    try:
        victim.send_raw(data)
    except OSError:
        pass  # the server may close before all of it is sent
    lines = victim.expect_closed(timeout=10)
    errors = [m for m in lines if m.command == "ERROR"]
    assert errors and "Excess Flood" in errors[-1].params[-1], lines[-5:]
    q = other.expect("QUIT", timeout=10)
    assert q.nick == "greedy" and "Excess Flood" in q.params[-1]
    # The server serves others.
    other.sync()
    srv.client().login("newcomer").sync()


def test_slow_reader_is_dropped_on_sendq(make_server):
    srv = make_server(["--sendq", "65536", "--recvq", "1048576",
                       "--flood-burst", "100000", "--flood-rate", "100000"])
    slow = Client(srv.port, rcvbuf=4096)
    srv.clients.append(slow)
    slow.login("sloth")
    slow.join("#big")
    slow.settle()
    fast = srv.client().login("flooder", ALL_CAPS)
    fast.join("#big")
    fast.settle()
    body = "z" * 400
    sent = 0
    quit_msg = None
    # The kernel's socket buffers take a few MB first; then the server's
    # queue for the slow reader grows past 64 KiB.
    while sent < 40000 and quit_msg is None:
        fast.send_raw(b"".join(b"PRIVMSG #big :%d %s\r\n" % (sent + i, body.encode()) for i in range(200)))
        sent += 200
        # The echo of the last line: every line of the batch has been fanned out.
        fast.expect(lambda m, last="%d " % (sent - 1): m.command == "PRIVMSG" and m.params[-1].startswith(last),
                    timeout=10)
        for m in fast.backlog:
            if m.command == "QUIT" and m.nick == "sloth":
                quit_msg = m
        fast.drain()
    assert quit_msg is not None, "the slow reader was never dropped (%d lines sent)" % sent
    assert "SendQ exceeded" in quit_msg.params[-1], quit_msg
    # Its connection is closed (after whatever was already in flight).
    slow.expect_closed(timeout=10)
    # The server keeps serving the others.
    fast.send("PRIVMSG #big :after the drop")
    fast.expect(lambda m: m.command == "PRIVMSG" and m.params[-1] == "after the drop")
    late = srv.client().login("latecomer", HIST)
    late.join("#big")
    h = late.history("LATEST", "#big", "*", 1)
    assert h[0].params[-1] == "after the drop"
    fast.sync()


def test_max_clients(make_server):
    srv = make_server(["--max-clients", "2"])
    a = srv.client().login("one")
    srv.client().login("two")
    third = srv.client()
    lines = third.expect_closed()
    errors = [m for m in lines if m.command == "ERROR"]
    assert errors and "Server full" in errors[0].params[-1], lines
    # A slot frees up when someone leaves.
    a.send("QUIT")
    a.expect_closed()
    srv.client().login("three")


def test_max_clients_names_another_replica(make_server):
    srv = make_server(["--max-clients", "2", "--peer", "2=127.0.0.1:7002"])
    srv.client().login("one")
    srv.client().login("two")
    third = srv.client()
    lines = third.expect_closed()
    errors = [m for m in lines if m.command == "ERROR"]
    assert errors, lines
    text = errors[0].params[-1]
    assert "Server full" in text and "127.0.0.1:7002" in text and "replica 2" in text, text


def test_store_full(make_server):
    srv = make_server(["--store-max-bytes", "200000", "--recvq", "1048576",
                       "--flood-burst", "100000", "--flood-rate", "100000"])
    a = srv.client().login("filler", ALL_CAPS)
    a.join("#full")
    a.settle()
    body = "f" * 380
    echoed = []
    failed = None
    n = 0
    while failed is None and n < 5000:
        for i in range(50):
            a.send("PRIVMSG #full :%d %s" % (n + i, body))
        for i in range(50):
            m = a.expect(lambda m: m.command in ("PRIVMSG", "FAIL"), timeout=10)
            if m.command == "PRIVMSG":
                assert failed is None, "an echo after a FAIL: %r" % m
                echoed.append(m)
            else:
                assert m.params[:3] == ["PRIVMSG", "STORAGE_ERROR", "#full"], m
                failed = failed or m
        n += 50
    assert failed is not None, "the store never filled (%d messages)" % n
    assert echoed, "nothing was stored before the store filled up"
    # Still alive: PING, history reads.
    a.sync()
    h = a.history("LATEST", "#full", "*", 5)
    assert [m.tags["msgid"] for m in h] == [m.tags["msgid"] for m in echoed[-5:]]
    # Writes are refused with a FAIL (not silently dropped).
    a.send("PRIVMSG #full :one more")
    m = a.expect(lambda m: m.command in ("PRIVMSG", "FAIL"))
    assert m.command == "FAIL" and m.params[1] == "STORAGE_ERROR", m
    # Everything echoed is there after a restart, in order.
    srv.close_clients()
    srv.restart()
    r = srv.client().login("reader", HIST)
    got = []
    ref = "*"
    while True:
        page = r.history("BEFORE" if ref != "*" else "LATEST", "#full", ref, 100)
        if not page:
            break
        got = page + got
        ref = "msgid=" + page[0].tags["msgid"]
    assert [m.tags["msgid"] for m in got] == [m.tags["msgid"] for m in echoed]
    assert [m.params[-1] for m in got] == [m.params[-1] for m in echoed]


def test_connections_per_address(make_server):
    """One address holds at most --per-address connections (the next is
    closed with a reason; a slot frees when one closes); loopback is exempt
    by default (--exempt)."""
    srv = make_server(["--per-address", "3", "--exempt", ""])
    held = [srv.client().login("pa%d" % i) for i in range(3)]
    extra = srv.client()
    lines = extra.expect_closed()
    assert any(m.command == "ERROR" and "Too many connections from your address (3)" in m.params[-1]
               for m in lines), lines
    held[0].close()
    deadline = time.monotonic() + 5
    while True:
        c = srv.client()
        try:
            c.login("pa-next")
            break
        except AssertionError:
            assert time.monotonic() < deadline, "no slot freed"
            time.sleep(0.2)
    other = make_server(["--per-address", "1"], name="r2")
    other.client().login("x1")
    other.client().login("x2")  # 127.0.0.1 is exempt by default


def test_registration_timeout(make_server):
    """A connection that does not register within --register-timeout is
    closed, whatever lines it sends; one that registered stays."""
    srv = make_server(["--register-timeout", "1"])
    ok = srv.client().login("quick")
    slow = srv.client()
    slow.send("NICK slow")  # no USER: not registered
    t0 = time.monotonic()
    lines = []
    while not slow.closed and time.monotonic() - t0 < 10:
        slow.send("PING :still here")
        lines += slow.collect(0.5)
    assert slow.closed
    assert any(m.command == "ERROR" and "Registration timed out" in m.params[-1] for m in lines), lines
    ok.sync()
    assert not ok.closed


def test_costly_commands_cost_more_of_the_flood_allowance(make_server):
    """LIST costs 5 lines' worth of the flood allowance: a burst of them
    waits as a burst of lines five times as long would; PINGs do not."""
    srv = make_server(["--flood-burst", "5", "--flood-rate", "5"])
    a = srv.client().login("lister")
    time.sleep(1.2)  # the bucket is full again after registration
    t0 = time.monotonic()
    a.send_raw(b"PING :p1\r\nPING :p2\r\nPING :p3\r\n")
    for k in (1, 2, 3):
        a.expect(lambda m, k=k: m.command == "PONG" and m.params[-1] == "p%d" % k)
    assert time.monotonic() - t0 < 1.0
    time.sleep(1.2)
    t0 = time.monotonic()
    a.send_raw(b"LIST\r\nLIST\r\nLIST\r\nPING :after\r\n")
    a.expect(lambda m: m.command == "PONG" and m.params[-1] == "after", timeout=10)
    assert time.monotonic() - t0 > 1.5  # 3 LISTs: 15 tokens from a bucket of 5 at 5/s


def test_labeled_answer_counts_against_the_sendq(make_server):
    """A labeled answer is held whole until its command ends: past the send
    queue it closes the connection as queued output would, instead of
    growing without bound."""
    srv = make_server(["--sendq", "4096", "--flood-burst", "1000", "--flood-rate", "1000"])
    w = srv.client().login("writer", ALL_CAPS)
    w.join("#big")
    for i in range(20):
        w.send("PRIVMSG #big :%03d %s" % (i, "x" * 380))
        w.expect(lambda m: m.command == "PRIVMSG")
    r = srv.client().login("reader", ALL_CAPS)
    r.send("CHATHISTORY LATEST #big * 5")  # unlabeled, small: fine
    r.expect_batch("chathistory")
    r.send("@label=big CHATHISTORY LATEST #big * 20")
    lines = r.expect_closed()
    assert any(m.command == "ERROR" and "SendQ exceeded" in m.params[-1] for m in lines), lines[-3:]


def test_new_names_per_minute(make_server):
    """Every new room and nick is a permanent operation: a connection may
    make --new-names of them known per minute (its address three times as
    many, loopback exempt by default); then JOIN of a new room gets FAIL
    TOO_MANY_NEW_NAMES and NICK to a new name 438. Known ones stay free."""
    srv = make_server(["--new-names", "3"])
    a = srv.client().login("maker")  # a new nick: 1 of 3
    a.send("JOIN #n1,#n2")  # 2 and 3
    a.expect(lambda m: m.command == "366" and m.params[1] == "#n2")
    a.send("JOIN #n3")
    f = a.expect("FAIL")
    assert f.params[:3] == ["JOIN", "TOO_MANY_NEW_NAMES", "#n3"], f
    a.send("NICK fresh")
    assert a.expect("438").params[1] == "fresh"
    b = srv.client().login("other")
    b.join("#shared")
    a.join("#shared")  # a room that exists costs nothing
    a.send("NICK Maker")  # nor a new spelling of one's own name
    a.expect(lambda m: m.command == "NICK" and m.params[0] == "Maker")
    per_address = make_server(["--new-names", "1", "--exempt", ""], name="r2")
    for i in range(3):
        per_address.client().login("addr%d" % i)  # the address's 3
    c = per_address.client()
    c.send("NICK addr3")
    c.send("USER a 0 * :a")
    assert c.expect("438").params[1] == "addr3"


def test_rooms_per_user_and_members_per_room(make_server):
    """A user is in at most --rooms-per-user rooms (405 past it); a room
    holds at most --members-per-room users (471 past it)."""
    srv = make_server(["--rooms-per-user", "2", "--members-per-room", "2"])
    a = srv.client().login("roomy")
    a.join("#one")
    a.join("#two")
    a.settle()
    a.send("JOIN #three")
    assert a.expect(lambda m: m.command in ("405", "JOIN")).command == "405"
    a.send("PART #two")
    a.expect("PART")
    a.join("#three")  # a slot again
    b = srv.client().login("second")
    b.join("#one")
    c = srv.client().login("third")
    c.settle()
    c.send("JOIN #one")
    assert c.expect(lambda m: m.command in ("471", "JOIN")).command == "471"


def test_long_listings_stop_at_the_send_queue(make_server):
    """LIST and USERS of more rooms and users than half the send queue holds
    (a labeled answer is held whole, so it would pass the sendq and cost the
    connection) stop there with 416 and their end line; the connection stays."""
    srv = make_server(["--sendq", "4096", "--new-names", "0", "--flood-burst", "1000",
                       "--flood-rate", "1000"])
    a = srv.client().login("lister", ALL_CAPS)
    for batch in range(20):
        names = ",".join("#room%03d" % (batch * 10 + i) for i in range(10))
        a.send("JOIN " + names)
        a.send("PART " + names)
    for i in range(120):
        a.send("NICK nick%03d" % i)
    a.send("NICK lister")
    a.send("JOIN #last")  # its op is applied after all the above (one stream, in order);
    a.send("PART #last")  # once parted, LIST shows it only from the replicated state
    for _ in range(100):
        a.send("LIST #last")
        a.expect("321", timeout=20)
        if a.expect(lambda m: m.command in ("322", "323")).command == "322":
            break
        time.sleep(0.1)
    a.drain()
    for command, item, end in [("LIST", "322", "323"), ("USERS", "USERS", "USERS")]:
        a.send("@label=%s %s" % (command, command))
        _, lines = a.expect_batch("labeled-response")
        shown = [m for m in lines if m.command == item and m.params[1] != "*"]
        cut = [m for m in lines if m.command == "416"]
        assert len(cut) == 1 and cut[0].params[1] == command, lines[-3:]
        left = int(cut[0].params[2].split(": ")[1].split()[0])
        assert 10 < len(shown) and left > 50, (len(shown), left)
        assert lines[-1].command == end, lines[-1]
    a.send("LIST #room007,#room150")
    a.expect("321")
    assert [a.expect("322").params[1] for _ in range(2)] == ["#room007", "#room150"]
    a.expect("323")
