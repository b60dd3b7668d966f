"""Accounts (server.identity = accounts, the default): draft/account-registration,
SASL PLAIN and SCRAM-SHA-256, failed-login limits, nick protection, several
sessions of one account, direct-message privacy, account-tag, account-notify,
extended-join, password change and removal. The SCRAM client here is written
from RFC 5802 with Python's hashlib, independently of the server's."""
import base64
import hashlib
import hmac
import os
import sqlite3

from ircclient import ALL_CAPS

PASSWORD = "correct horse battery"


def b64(data):
    return base64.b64encode(data).decode() if data else "+"


def begin(server, nick, caps=ALL_CAPS, sasl=True):
    """A connection in CAP negotiation with NICK/USER sent (no CAP END yet)."""
    c = server.client()
    c.nick = nick
    c.send("CAP LS 302")
    ls = c.expect(lambda m: m.command == "CAP" and m.params[1] == "LS")
    c.cap_ls = ls.params[-1].split()
    want = list(caps) + (["sasl"] if sasl else [])
    c.send("CAP REQ :" + " ".join(want))
    ack = c.expect("CAP")
    assert ack.params[1] == "ACK", ack
    c.send("NICK " + nick)
    c.send("USER %s 0 * :Real %s" % (nick, nick))
    return c


def finish(c):
    """CAP END and the welcome; returns the nick the server gave."""
    c.send("CAP END")
    welcome = c.expect("001")
    c.expect(lambda m: m.command in ("376", "422"))
    c.drain()
    return welcome.params[0]


def plain(c, account, password):
    """AUTHENTICATE PLAIN; returns the final numeric (903 or 904...)."""
    c.send("AUTHENTICATE PLAIN")
    c.expect(lambda m: m.command == "AUTHENTICATE" and m.params == ["+"])
    c.send("AUTHENTICATE " + b64(("\0%s\0%s" % (account, password)).encode()))
    return c.expect(lambda m: m.command in ("903", "904"))


class Scram:
    """The client side of SCRAM-SHA-256."""

    def __init__(self, user, password):
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=%s,r=%s" % (user, self.nonce)

    def first(self):
        return "n,," + self.first_bare

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        self.auth = ",".join([self.first_bare, server_first, without_proof]).encode()
        sig = hmac.new(stored, self.auth, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return without_proof + ",p=" + base64.b64encode(proof).decode()

    def verify(self, server_final):
        want = hmac.new(self.server_key, self.auth, hashlib.sha256).digest()
        return server_final == "v=" + base64.b64encode(want).decode()


def data_of(m):
    return base64.b64decode(m.params[0]).decode()


def scram(c, account, password, replay_final=None):
    """AUTHENTICATE SCRAM-SHA-256; returns (final numeric, the client-final sent)."""
    s = Scram(account, password)
    c.send("AUTHENTICATE SCRAM-SHA-256")
    c.expect(lambda m: m.command == "AUTHENTICATE" and m.params == ["+"])
    c.send("AUTHENTICATE " + b64(s.first().encode()))
    m = c.expect(lambda m: m.command in ("AUTHENTICATE", "904"))
    if m.command == "904":
        return m, None
    final = replay_final or s.final(data_of(m))
    c.send("AUTHENTICATE " + b64(final.encode()))
    m = c.expect(lambda m: m.command in ("AUTHENTICATE", "904"))
    if m.command == "904":
        return m, final
    assert s.verify(data_of(m)), "the server's signature does not verify"
    c.send("AUTHENTICATE +")
    return c.expect(lambda m: m.command in ("903", "904")), final


def registered(server, nick, password=PASSWORD, caps=ALL_CAPS):
    """A connection as nick that registers the account nick and stays logged in."""
    c = begin(server, nick, caps)
    assert finish(c) == nick
    c.send("REGISTER * * :" + password)
    ok = c.expect(lambda m: m.command in ("REGISTER", "FAIL"))
    assert ok.command == "REGISTER" and ok.params[:2] == ["SUCCESS", nick], ok
    c.expect("900")
    if "account-notify" in caps:
        assert c.expect("ACCOUNT").params == [nick]  # account-notify: oneself too
    c.drain()
    return c


def logged_in(server, account, password=PASSWORD, caps=ALL_CAPS):
    c = begin(server, account, caps)
    assert plain(c, account, password).command == "903"
    assert finish(c) == account
    return c


def test_caps_offered(server):
    c = begin(server, "x")
    assert "sasl=PLAIN,SCRAM-SHA-256" in c.cap_ls
    assert "draft/account-registration=before-connect" in c.cap_ls
    for cap in ("account-tag", "account-notify", "extended-join"):
        assert cap in c.cap_ls


def test_register_then_plain_and_scram(server):
    a = registered(server, "alice")
    a.close()
    c = begin(server, "whoever")
    assert plain(c, "alice", PASSWORD).command == "903"
    assert finish(c) == "alice"  # the nick is the account's name
    d = begin(server, "alice")
    numeric, _ = scram(d, "alice", PASSWORD)
    assert numeric.command == "903"
    assert finish(d) == "alice"


def test_register_before_connection(server):
    c = begin(server, "early")
    c.send("REGISTER * me@example.org :" + PASSWORD)
    ok = c.expect(lambda m: m.command in ("REGISTER", "FAIL"))
    assert ok.params[:2] == ["SUCCESS", "early"], ok
    c.expect("900")
    assert finish(c) == "early"
    c.send("AUTHENTICATE PLAIN")
    assert c.expect("907")


def test_wrong_password_then_limited(server):
    registered(server, "bob").close()
    registered(server, "carl").close()
    for _ in range(5):
        c = begin(server, "bob")
        assert plain(c, "bob", "wrong password").command == "904"
        c.close()
    c = begin(server, "bob")
    refused = plain(c, "bob", PASSWORD)
    assert refused.command == "904" and "too many" in refused.params[-1]
    # The limit is per address too: another account from here waits as well.
    d = begin(server, "carl")
    assert plain(d, "carl", PASSWORD).command == "904"
    assert "failed login to bob" in server.log()
    assert PASSWORD not in server.log() and "wrong password" not in server.log()


def test_scram_wrong_password_and_replayed_final(server):
    registered(server, "dora").close()
    c = begin(server, "dora")
    numeric, _ = scram(c, "dora", "not the password")
    assert numeric.command == "904"
    c = begin(server, "dora")
    numeric, final = scram(c, "dora", PASSWORD)
    assert numeric.command == "903"
    c = begin(server, "dora")
    numeric, _ = scram(c, "dora", PASSWORD, replay_final=final)  # another exchange's proof
    assert numeric.command == "904"
    c.send("AUTHENTICATE NTLM")
    assert "SCRAM-SHA-256" in c.expect("908").params[1]
    c.expect("904")


def test_nick_protection(server):
    owner = registered(server, "erin")
    # Before registration: 433, then another nick works.
    g = begin(server, "erin", sasl=False)
    g.send("CAP END")
    taken = g.expect("433")
    assert "registered" in taken.params[-1]
    g.send("NICK guest1")
    g.expect("001")
    g.drain()
    # After registration: NICK to a registered name, or to a guest's name, is 433.
    g.send("NICK Erin")
    g.expect("433")
    other = server.client().login("frank")
    g.send("NICK frank")
    assert "in use" in g.expect("433").params[-1]
    # The same holds with the owner offline.
    owner.close()
    h = server.client()
    h.send("NICK erin")
    h.send("USER e 0 * :e")
    h.expect("433")
    other.close()


def test_sessions_of_one_account_are_one_user(server):
    a1 = registered(server, "gail")
    a2 = logged_in(server, "gail")
    a1.join("#g")
    assert a2.expect("JOIN").params[0] == "#g"
    a2.drain()
    poster = registered(server, "hank")
    poster.join("#g")
    poster.send("PRIVMSG #g :like me")
    line = a1.expect("PRIVMSG")
    msgid = line.tags["msgid"]
    a1.send("@+draft/react=+1;+draft/reply=%s TAGMSG #g" % msgid)
    a1.expect("TAGMSG")
    a2.send("@+draft/react=+1;+draft/reply=%s TAGMSG #g" % msgid)
    assert a2.expect("FAIL").params[1] == "ALREADY_LIKED"


def test_direct_messages_are_private(server):
    alice = registered(server, "ann")
    bob = registered(server, "ben")
    alice.send("PRIVMSG ben :secret")
    got = bob.expect("PRIVMSG")
    assert got.params[-1] == "secret"
    # A like in the conversation reaches the other account live.
    bob.send("@+draft/react=+1;+draft/reply=%s TAGMSG ann" % got.tags["msgid"])
    like = alice.expect("TAGMSG")
    assert like.nick == "ben" and like.tags.get("chorus/likes") == "1"
    assert [m.params[-1] for m in bob.history("LATEST", "ann", "*", 10)] == ["secret"]
    # A guest sees no direct messages at all, not even TARGETS of them.
    guest = server.client().login("guest9", ALL_CAPS)
    guest.send("CHATHISTORY LATEST ann * 10")
    assert guest.expect("FAIL").params[1] == "ACCOUNT_REQUIRED"
    guest.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10")
    _, targets = guest.expect_batch("draft/chathistory-targets")
    assert targets == []
    # ben removes his account; whoever registers "ben" later is someone else,
    # and ben's lines no longer show as "ben".
    bob.join("#p")
    bob.send("PRIVMSG #p :said by the first ben")
    bob.expect(lambda m: m.command == "PRIVMSG" and m.params[0] == "#p")
    bob.send("ACCOUNT DROP :" + PASSWORD)
    assert bob.expect("901")
    note = bob.expect(lambda m: m.command == "NOTE")
    assert note.params[:2] == ["ACCOUNT", "DROPPED"]
    bob.close()
    alice.sync()
    new_ben = registered(server, "ben", password="another password")
    assert new_ben.history("LATEST", "ann", "*", 10) == []
    [line] = new_ben.history("LATEST", "#p", "*", 10)
    assert line.params[-1] == "said by the first ben"
    assert line.nick.startswith("ben-") and "account" not in line.tags


def test_account_tag_notify_and_extended_join(server):
    caps = ALL_CAPS + ("account-tag", "account-notify", "extended-join")
    watcher = registered(server, "ivy", caps=caps)
    watcher.join("#t")
    own = watcher.expect("JOIN")
    assert own.params == ["#t", "ivy", "Real ivy"] and own.tags.get("account") == "ivy"
    watcher.drain()
    guest = begin(server, "jo", caps, sasl=False)
    finish(guest)
    guest.join("#t")
    join = watcher.expect("JOIN")
    assert join.params == ["#t", "*", "Real jo"]
    guest.send("PRIVMSG #t :as a guest")
    assert "account" not in watcher.expect("PRIVMSG").tags
    guest.send("REGISTER * * :" + PASSWORD)
    guest.expect("900")
    account = watcher.expect("ACCOUNT")
    assert account.nick == "jo" and account.params == ["jo"]
    guest.send("PRIVMSG #t :with an account")
    assert watcher.expect("PRIVMSG").tags.get("account") == "jo"
    other = logged_in(server, "jo", caps=caps)
    other.join("#t")
    hist = watcher.history("LATEST", "#t", "*", 10)
    assert [(m.params[-1], m.tags.get("account")) for m in hist] == [
        ("as a guest", None), ("with an account", "jo")]


def test_whois_shows_the_account(server):
    registered(server, "owen")
    guest = server.client().login("pat", ALL_CAPS)
    guest.join("#w")
    guest.send("WHOIS owen")
    lines = []
    while True:
        m = guest.expect(lambda m: m.command in ("311", "312", "319", "330", "318", "401"))
        lines.append(m)
        if m.command == "318":
            break
    by = {m.command: m for m in lines}
    assert by["311"].params[1:3] == ["owen", "owen"]
    assert by["330"].params[1:3] == ["owen", "owen"]
    guest.send("WHOIS pat")
    got = [guest.expect(lambda m: m.command in ("319", "330", "318"))]
    while got[-1].command != "318":
        got.append(guest.expect(lambda m: m.command in ("319", "330", "318")))
    assert [m.command for m in got] == ["319", "318"] and got[0].params[-1] == "@#w"  # its founder
    guest.send("WHOIS nobody")
    assert guest.expect("401").params[1] == "nobody"
    guest.expect("318")


def test_password_change(server):
    k = registered(server, "kim")
    k.send("ACCOUNT PASSWORD wrongpass newpassword1")
    assert k.expect("FAIL").params[1] == "BAD_PASSWORD"
    k.send("ACCOUNT PASSWORD :%s" % PASSWORD)
    k.expect("461")
    k.send("ACCOUNT PASSWORD %s newpassword1" % PASSWORD.replace(" ", "_"))
    assert k.expect("FAIL").params[1] == "BAD_PASSWORD"
    k2 = registered(server, "kit", password="oldpassword")
    k2.send("ACCOUNT PASSWORD oldpassword newpassword1")
    assert k2.expect("NOTE").params[:2] == ["ACCOUNT", "PASSWORD_CHANGED"]
    c = begin(server, "kit")
    assert plain(c, "kit", "oldpassword").command == "904"
    c = begin(server, "kit")
    assert plain(c, "kit", "newpassword1").command == "903"


def test_register_refusals(server):
    registered(server, "lee").close()
    c = begin(server, "lee2")
    finish(c)
    for line, code in [("REGISTER lee * :" + PASSWORD, "ACCOUNT_NAME_MUST_BE_NICK"),
                       ("REGISTER * * short", "WEAK_PASSWORD"),
                       ("REGISTER * not-an-email :" + PASSWORD, "INVALID_EMAIL"),
                       ("REGISTER 9lives * :" + PASSWORD, "BAD_ACCOUNT_NAME")]:
        c.send(line)
        assert c.expect("FAIL").params[1] == code, line
    d = begin(server, "lee", sasl=False)
    d.send("REGISTER * * :" + PASSWORD)
    assert d.expect("FAIL").params[1] == "ACCOUNT_EXISTS"


def test_only_verifiers_are_stored(server):
    registered(server, "mo", password="a very particular password").close()
    registered(server, "mu", password="a very particular password").close()
    db = sqlite3.connect(os.path.join(server.data_dir, "chorus.db"))
    rows = db.execute("SELECT author, body FROM ops WHERE kind = 11 ORDER BY author").fetchall()
    db.close()
    assert [r[0] for r in rows] == ["mo", "mu"]
    for _, body in rows:
        assert body.startswith("SCRAM-SHA-256$4096:")
        assert "particular" not in body
    assert rows[0][1] != rows[1][1]  # salted
    raw = open(os.path.join(server.data_dir, "chorus.db"), "rb").read()
    wal = os.path.join(server.data_dir, "chorus.db-wal")
    if os.path.exists(wal):
        raw += open(wal, "rb").read()
    assert b"particular" not in raw
    assert "particular" not in server.log()


def test_open_identity_has_no_accounts(make_server):
    server = make_server(["--identity", "open"])
    c = begin(server, "nina", sasl=False)
    assert not any(cap.startswith("sasl") for cap in c.cap_ls)
    finish(c)
    c.send("REGISTER * * :" + PASSWORD)
    assert c.expect("FAIL").params[1] == "TEMPORARILY_UNAVAILABLE"
