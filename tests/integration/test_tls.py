"""TLS for clients: a TLS listener beside the plain one (Python's ssl module
and openssl s_client), TLS 1.2 and later only, IRCv3 sts on both listeners,
SASL over TLS, the certificate read again on SIGHUP, and a bad key refused
at start."""
import base64
import os
import signal
import ssl
import subprocess
import time

import pytest

from conftest import CHORUSD, free_port
from ircclient import ALL_CAPS, Client


def make_cert(path, name):
    """A self-signed certificate and key for localhost under path/name.*."""
    cert, key = os.path.join(path, name + ".pem"), os.path.join(path, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def context_for(cert):
    ctx = ssl.create_default_context(cafile=cert)
    return ctx


@pytest.fixture
def tls_server(make_server, tmp_path):
    cert, key = make_cert(str(tmp_path), "one")
    port = free_port()
    srv = make_server(["--tls-cert", cert, "--tls-key", key, "--tls-port", str(port)])
    srv.tls_port, srv.cert, srv.key = port, cert, key
    deadline = time.monotonic() + 10
    while "listening for TLS" not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return srv


def tls_client(srv, cert=None):
    c = Client(srv.tls_port, tls=context_for(cert or srv.cert))
    srv.clients.append(c)
    return c


def test_chat_over_tls_with_pythons_ssl(tls_server):
    a = tls_client(tls_server).login("alice", ALL_CAPS)
    assert a.sock.version() in ("TLSv1.2", "TLSv1.3")
    b = tls_server.client().login("bob", ALL_CAPS)  # the plain listener still works
    for who, secure in (("alice", True), ("bob", False)):
        b.send("WHOIS " + who)
        seen = []
        while not seen or seen[-1] != "318":
            seen.append(b.expect(lambda m: m.command in ("671", "318")).command)
        assert ("671" in seen) == secure, (who, seen)
    a.join("#t")
    b.join("#t")
    a.send("PRIVMSG #t :over tls")
    assert b.expect("PRIVMSG").params[-1] == "over tls"
    b.send("PRIVMSG #t :back in clear")
    assert a.expect(lambda m: m.command == "PRIVMSG" and m.nick == "bob").params[-1] == "back in clear"


def test_openssl_s_client(tls_server):
    lines = "CAP LS 302\r\nNICK carol\r\nUSER c 0 * :c\r\nCAP END\r\nQUIT :bye\r\n"
    out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls_server.tls_port,
                          "-CAfile", tls_server.cert, "-verify_return_error", "-quiet"],
                         input=lines.encode(), capture_output=True, timeout=20)
    text = out.stdout.decode(errors="replace")
    assert " 001 carol " in text, text + out.stderr.decode(errors="replace")
    assert "sts=duration=" in text
    assert "ERROR :Closing Link" in text


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_old_protocols_refused(tls_server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(tls_server.cert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        Client(tls_server.tls_port, tls=ctx)
    # A client that speaks no TLS on the TLS port is dropped, not served.
    raw = Client(tls_server.tls_port)
    raw.send("NICK plain")
    raw.send("USER p 0 * :p")
    raw.expect_closed()


def test_sts_advertised(tls_server, make_server, tmp_path):
    plain = tls_server.client()
    plain.send("CAP LS 302")
    ls = plain.expect("CAP").params[-1].split()
    assert "sts=port=%d" % tls_server.tls_port in ls
    secure = tls_client(tls_server)
    secure.send("CAP LS 302")
    assert "sts=duration=2592000" in secure.expect("CAP").params[-1].split()
    # Without TLS there is no sts; with --sts-duration 0 neither.
    cert, key = make_cert(str(tmp_path), "quiet")
    for args in ([], ["--tls-cert", cert, "--tls-key", key, "--tls-port", str(free_port()),
                      "--sts-duration", "0"]):
        c = make_server(args, name="r%d" % len(args)).client()
        c.send("CAP LS 302")
        assert not any(x.startswith("sts") for x in c.expect("CAP").params[-1].split())


def test_sasl_over_tls(tls_server):
    first = tls_client(tls_server).login("dana", ALL_CAPS)
    first.send("REGISTER * * :a long password")
    first.expect("900")
    c = tls_client(tls_server)
    c.send("CAP REQ :sasl")
    c.expect("CAP")
    c.send("NICK dana")
    c.send("USER d 0 * :d")
    c.send("AUTHENTICATE PLAIN")
    c.expect("AUTHENTICATE")
    c.send("AUTHENTICATE " + base64.b64encode(b"\0dana\0a long password").decode())
    c.expect("903")
    c.send("CAP END")
    assert c.expect("001").params[0] == "dana"


def test_certificate_reloaded_on_sighup(tls_server, tmp_path):
    before = tls_client(tls_server).login("erin")
    cert2, key2 = make_cert(str(tmp_path), "two")
    os.replace(cert2, tls_server.cert)
    os.replace(key2, tls_server.key)
    tls_server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reloaded" not in tls_server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    after = tls_client(tls_server).login("fay")  # verifies against the new certificate
    assert after.sock.getpeercert()
    before.settle()  # the connection made before the reload goes on
    # A broken pair on reload keeps the one in use.
    open(tls_server.key, "w").write("not a key\n")
    tls_server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "keeping the certificate in use" not in tls_server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "keeping the certificate in use" in tls_server.log()
    tls_client(tls_server).login("gus")


def test_bad_certificate_refused_at_start(tmp_path):
    cert, key = make_cert(str(tmp_path), "x")
    _, other_key = make_cert(str(tmp_path), "y")
    out = subprocess.run([CHORUSD, "--port", str(free_port()), "--data-dir", str(tmp_path / "d"),
                          "--tls-cert", cert, "--tls-key", other_key], capture_output=True, timeout=20)
    assert out.returncode != 0
    assert b"does not match" in out.stderr
    out = subprocess.run([CHORUSD, "--tls-cert", cert], capture_output=True, timeout=20)
    assert out.returncode != 0 and b"go together" in out.stderr
