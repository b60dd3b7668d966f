"""`chorusctl init --hosts`: every host's corosync.conf (which `corosync -t`
accepts, given a key and a user this machine has) and chorus.conf (which
chorusd reads and starts with), and the two keys, private."""
import os
import socket
import subprocess
import time

from conftest import CHORUSD, free_port

CHORUSCTL = os.path.join(os.path.dirname(CHORUSD), "chorusctl")


def test_init_writes_every_hosts_files(tmp_path):
    d = tmp_path / "hosts"
    out = subprocess.run([CHORUSCTL, "init", "--hosts", "127.0.0.1,10.0.0.2,10.0.0.3", "--dir", str(d),
                          "--mode", "majority"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "on each host, corosync.conf to /etc/corosync/" in out.stdout
    for key, size in (("authkey", 256), ("link.key", 65)):
        st = os.stat(d / key)
        assert st.st_size == size and st.st_mode & 0o077 == 0, (key, st)
    for i, host in enumerate(("127.0.0.1", "10.0.0.2", "10.0.0.3"), 1):
        cs = (d / host / "corosync.conf").read_text()
        assert "ring0_addr: 10.0.0.3" in cs and "nodeid: 3" in cs and "crypto_cipher: aes256" in cs
        conf = (d / host / "chorus.conf").read_text()
        assert "id = %d;" % i in conf and 'mode = "majority"' in conf and "link_port = 6727" in conf
    # Corosync accepts it (its key and user as this machine has them).
    cs = (d / "127.0.0.1" / "corosync.conf").read_text()
    cs = cs.replace("uid: chorus", "uid: root").replace("gid: chorus", "gid: root")
    cs = cs.replace("keyfile: /etc/corosync/authkey", "keyfile: %s" % (d / "authkey"))
    (tmp_path / "cs.conf").write_text(cs)
    out = subprocess.run(["corosync", "-t", "-c", str(tmp_path / "cs.conf")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    # chorusd reads chorus.conf (alone here, on a free port, with the key made).
    port, data = free_port(), tmp_path / "data"
    p = subprocess.Popen([CHORUSD, "--config", str(d / "127.0.0.1" / "chorus.conf"), "--group", "solo",
                          "--listen", "127.0.0.1", "--port", str(port), "--data-dir", str(data),
                          "--link-key", str(d / "link.key")], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
                time.sleep(0.05)
    finally:
        p.terminate()
        p.wait(timeout=10)
    out = subprocess.run([CHORUSCTL, "init", "--hosts", ",", "--dir", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "--hosts takes" in out.stderr
