"""chorusd --user: started as root, a replica runs as the named user from
the start (uid, its group, no supplementary groups) in its data directory,
which becomes that user's (also one written by root before), so nothing a
client makes it do runs as root. Needs root; skipped loudly elsewhere."""
import os
import pwd
import sys

import pytest

from conftest import Server
from ircclient import ALL_CAPS

HIST = ("batch", "message-tags", "server-time", "draft/chathistory")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change user")
if os.geteuid() != 0:
    sys.stderr.write("\n*** test_privileges SKIPPED: needs root to change user ***\n")


def proc_ids(pid):
    fields = dict(line.split(":", 1) for line in open("/proc/%d/status" % pid))
    return ([int(x) for x in fields["Uid"].split()], [int(x) for x in fields["Gid"].split()],
            fields["Groups"].split())


def test_user_runs_the_replica_without_root(tmp_path):
    """The data directory was root's (a replica run as root before) and its
    parents are closed to the user (pytest's are root's only): the replica
    takes it over, keeps its history and serves as nobody."""
    nobody = pwd.getpwnam("nobody")
    data = str(tmp_path / "r1")
    s = Server(data).start()
    a = s.client().login("early", ALL_CAPS)
    a.join("#here")
    a.send("PRIVMSG #here :stored by root")
    a.expect(lambda m: m.command == "PRIVMSG" and m.params[-1] == "stored by root")
    s.close_clients()
    s.stop()
    assert os.stat(os.path.join(data, "chorus.db")).st_uid == 0
    s.args = ["--user", "nobody"]
    s.start()
    try:
        uids, gids, groups = proc_ids(s.proc.pid)
        assert uids == [nobody.pw_uid] * 4 and gids == [nobody.pw_gid] * 4 and groups == [], (uids, gids, groups)
        for name in (".", "chorus.db", "lock", "control.sock"):
            assert os.stat(os.path.join(data, name)).st_uid == nobody.pw_uid, name
        b = s.client().login("later", ALL_CAPS)
        b.join("#here")
        b.send("PRIVMSG #here :stored by nobody")
        b.expect(lambda m: m.command == "PRIVMSG" and m.params[-1] == "stored by nobody")
        texts = [m.params[-1] for m in b.history("LATEST", "#here", "*", 10)]
        assert texts == ["stored by root", "stored by nobody"], texts
        assert "running as user nobody" in s.log()
    finally:
        s.close_clients()
        s.stop()


def test_unknown_user_is_refused(tmp_path):
    bad = Server(str(tmp_path / "r1"), ["--user", "no-such-user-here"])
    with pytest.raises(AssertionError, match="exited at start"):
        bad.start()
    assert "no such user" in bad.log()
