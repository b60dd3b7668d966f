"""The chorus client with accounts and TLS: `reg` registers the name in use,
`u <name>` asks for the password of a registered name (SCRAM-SHA-256; the
password never travels), --password-file, a wrong password refused, and
--tls with a CA file, a pinned fingerprint, --insecure, and the clear
refusal of a certificate it cannot trust."""
import os
import subprocess

import pytest

from client_helpers import ChorusClient
from conftest import free_port
from ircclient import ALL_CAPS
from test_tls import make_cert

PASSWORD = "a good long password"


@pytest.fixture
def chorus(tmp_path):
    clients = []

    def make(*replicas, args=()):
        c = ChorusClient(replicas, args, log_dir=str(tmp_path))
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.kill()


def addr(server, port=None):
    return "127.0.0.1:%d" % (port or server.port)


def test_register_then_log_in_with_the_password(server, chorus, tmp_path):
    c = chorus(addr(server)).login(1, "alice")
    c.send("reg")
    c.info("a password for alice")
    c.send(PASSWORD)
    c.info("registered alice")
    c.quit()
    # Another client: the name asks for the password now.
    d = chorus(addr(server))
    d.send("c 1")
    d.info("connected to replica")
    d.send("u alice")
    d.info("alice is a registered account")
    d.send(PASSWORD)
    d.info("logged in as alice")
    d.join("#acc")
    d.send("a as the account")
    d.screen(lambda s: s.texts() == ["as the account"])
    d.quit()
    # A wrong password is refused and says so.
    e = chorus(addr(server))
    e.send("c 1")
    e.info("connected to replica")
    e.send("u alice")
    e.info("alice is a registered account")
    e.send("not the password")
    e.error("wrong account or password")
    e.quit()
    # The password file logs in without asking.
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    f = chorus(addr(server), args=["--password-file", str(pw)])
    f.login(1, "alice")
    f.quit()
    assert PASSWORD not in server.log()


def test_an_account_keeps_its_name_from_a_guest(server, chorus):
    owner = server.client().login("bob", ALL_CAPS)
    owner.send("REGISTER * * :" + PASSWORD)
    owner.expect("900")
    g = chorus(addr(server))
    g.send("c 1")
    g.info("connected to replica")
    g.send("u bob")
    g.info("bob is a registered account")
    g.send("guessing wrong")
    g.error("wrong account or password")
    g.send("u carol")
    g.info("logged in as carol")
    g.quit()


@pytest.fixture
def tls_server(make_server, tmp_path):
    cert, key = make_cert(str(tmp_path), "srv")
    port = free_port()
    srv = make_server(["--tls-cert", cert, "--tls-key", key, "--tls-port", str(port)])
    srv.tls_port, srv.cert = port, cert
    return srv


def fingerprint(cert):
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().split("=", 1)[1]


def test_client_over_tls(tls_server, chorus, tmp_path):
    where = addr(tls_server, tls_server.tls_port)
    for args in (["--tls-ca", tls_server.cert], ["--tls-fingerprint", fingerprint(tls_server.cert)],
                 ["--insecure"]):
        c = chorus(where, args=args)
        c.login(1, "tls%d" % len(args[0]))
        c.quit()
    # Untrusted: the system's CAs do not know a self-signed certificate.
    c = chorus(where, args=["--tls"])
    c.send("c 1")
    c.error("certificate is not trusted")
    c.quit()
    # A pinned fingerprint that differs.
    other_cert, _ = make_cert(str(tmp_path), "other")
    c = chorus(where, args=["--tls-fingerprint", fingerprint(other_cert)])
    c.send("c 1")
    c.error("not the one given")
    c.quit()
    # TLS to a plain port fails clearly too.
    c = chorus(addr(tls_server), args=["--insecure"])
    c.send("c 1")
    c.error("handshake")
    c.quit()
    assert os.path.exists(tls_server.cert)


def test_tls_port_from_the_config(tls_server, chorus, tmp_path):
    """With --config, --tls speaks to each replica's tls_port (as chorusctl
    writes it), and says which port it is on."""
    conf = tmp_path / "cluster.conf"
    conf.write_text('cluster = { replicas = ( { id = 1; host = "127.0.0.1"; port = %d; tls_port = %d; } ); };\n'
                    % (tls_server.port, tls_server.tls_port))
    c = chorus(args=["--config", str(conf), "--tls-ca", tls_server.cert])
    c.send("c 1")
    c.info("connected to replica 1 (127.0.0.1:%d)" % tls_server.tls_port)
    c.send("u cfg")
    c.info("logged in as cfg")
    c.quit()
