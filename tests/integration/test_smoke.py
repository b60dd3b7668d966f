"""The basics: register, join, talk, history."""
from ircclient import ALL_CAPS


def test_register_welcome(server):
    c = server.client()
    c.send("NICK alice")
    c.send("USER alice 0 * :Alice")
    w = c.expect("001")
    assert w.params[0] == "alice"
    isupport = c.expect("005")
    assert any(p.startswith("CHATHISTORY=") for p in isupport.params) or c.expect("005")
    c.expect(lambda m: m.command in ("376", "422"))


def test_two_users_chat(server):
    a = server.client().register("alice", ALL_CAPS)
    b = server.client().register("bob")
    a.join("#room")
    b.join("#room")
    a.send("PRIVMSG #room :hello bob")
    echo = a.expect("PRIVMSG")
    assert echo.params == ["#room", "hello bob"]
    assert "msgid" in echo.tags and "time" in echo.tags
    got = b.expect("PRIVMSG")
    assert got.params == ["#room", "hello bob"] and got.nick == "alice"
