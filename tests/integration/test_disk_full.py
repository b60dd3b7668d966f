"""A real full disk: the data directory is a small tmpfs, filled until the
store refuses a write; the replica keeps serving, refuses writes with FAIL,
and once space is freed it accepts writes again by itself. Every message that
was acknowledged (echoed) survives a restart. Needs root (mount); skipped
loudly elsewhere."""
import os
import subprocess
import sys
import time

import pytest

from conftest import Server
from ircclient import ALL_CAPS

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tmpfs")
if os.geteuid() != 0:
    sys.stderr.write("\n*** test_disk_full SKIPPED: needs root to mount a tmpfs ***\n")


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_refuses_then_recovers(small_disk):
    srv = Server(small_disk / "data", ["--flood-burst", "5000", "--flood-rate", "5000"])
    srv.logs_dir = small_disk
    srv.start()
    try:
        c = srv.client().register("filler", ALL_CAPS)
        c.join("#full")
        # leave a little room, then fill it with messages
        with open(small_disk / "ballast", "wb") as f:
            f.write(b"x" * (2 * 1024 * 1024))
        acked, refused = [], None
        for k in range(5000):
            c.send("PRIVMSG #full :%04d %s" % (k, "y" * 400))
            m = c.expect(lambda m: m.command in ("PRIVMSG", "FAIL"), timeout=10)
            if m.command == "FAIL":
                refused = m
                break
            acked.append(m.tags["msgid"])
        assert refused is not None, "the disk never filled"
        assert refused.params[:2] == ["PRIVMSG", "STORAGE_ERROR"]
        # still serving: reads work, writes are refused
        c.send("PING :alive")
        c.expect("PONG")
        c.send("PRIVMSG #full :while full")
        assert c.expect(lambda m: m.command in ("PRIVMSG", "FAIL")).command == "FAIL"
        # free space: the replica takes writes again by itself
        os.remove(small_disk / "ballast")
        deadline = time.monotonic() + 30
        while True:
            c.send("PRIVMSG #full :after recovery")
            m = c.expect(lambda m: m.command in ("PRIVMSG", "FAIL"), timeout=10)
            if m.command == "PRIVMSG":
                acked.append(m.tags["msgid"])
                break
            assert time.monotonic() < deadline, "writes still refused after space was freed"
            time.sleep(1)
        c.close()
        srv.restart()
        r = srv.client().register("reader", ALL_CAPS)
        seen, ref = [], "*"
        while True:
            r.send("CHATHISTORY %s #full %s 100" % ("LATEST" if ref == "*" else "BEFORE", ref))
            page = []
            while True:
                m = r.expect(lambda m: m.command in ("PRIVMSG", "BATCH"))
                if m.command == "BATCH" and m.params[0].startswith("-"):
                    break
                if m.command == "PRIVMSG":
                    page.append(m.tags["msgid"])
            if not page:
                break
            seen = page + seen
            ref = "msgid=" + page[0]
        missing = set(acked) - set(seen)
        assert not missing, "%d acknowledged messages lost" % len(missing)
    finally:
        srv.close_clients()
        srv.stop(check=False)
