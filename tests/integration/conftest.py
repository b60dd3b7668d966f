"""Fixtures that run real chorusd processes for the integration tests.

CHORUSD names the binary (make test sets it). Each test gets a fresh data
directory and a free port; a server's stderr is kept in its data directory
and checked for sanitizer reports when the server stops.
"""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from ircclient import Client  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHORUSD = os.environ.get("CHORUSD", os.path.join(ROOT, "build", "chorusd"))
SANITIZED = os.environ.get("CHORUS_SANITIZED") == "1"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One chorusd process with its own data directory and port."""

    def __init__(self, data_dir, args=(), port=None):
        self.data_dir = str(data_dir)
        self.args = list(args)
        self.port = port or free_port()
        self.proc = None
        self.logs = []
        self.clients = []

    def start(self, extra=()):
        os.makedirs(self.data_dir, exist_ok=True)
        log = os.path.join(self.data_dir, "chorusd-%d.log" % len(self.logs))
        self.logs.append(log)
        cmd = [CHORUSD, "--port", str(self.port), "--data-dir", self.data_dir,
               "--log-level", "debug"] + self.args + list(extra)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("chorusd exited at start (%s):\n%s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("chorusd did not listen in time:\n" + self.log())

    def log(self):
        return "".join(open(p, errors="replace").read() for p in self.logs if os.path.exists(p))

    def client(self):
        c = Client(self.port)
        self.clients.append(c)
        return c

    def control(self):
        """A connection to the replica's control socket (chorusctl's way in:
        the operator verbs without logging in)."""
        c = Client(None, unix=os.path.join(self.data_dir, "control.sock"))
        self.clients.append(c)
        return c

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, check=True):
        """SIGTERM and wait; with check, the exit must be clean."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("chorusd did not stop on SIGTERM:\n" + self.log()[-3000:])
            if check:
                assert self.proc.returncode == 0, "exit %s\n%s" % (self.proc.returncode, self.log()[-3000:])
        self.check_sanitizers()

    def restart(self, extra=()):
        self.stop()
        return self.start(extra)

    def check_sanitizers(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in text, "sanitizer report in chorusd log:\n" + text[-6000:]

    def close_clients(self):
        for c in self.clients:
            c.close()


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(args=...) starts a chorusd; all are stopped (and
    checked for sanitizer reports) at the end of the test."""
    servers = []

    def make(args=(), name="r1"):
        s = Server(tmp_path / name, args)
        servers.append(s)
        return s.start()

    yield make
    for s in servers:
        s.close_clients()
        s.stop(check=False)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "open_identity: the test's server runs with --identity open (a name is a person)")


def pytest_generate_tests(metafunc):
    """A module with BOTH_HISTORY_PATHS = True runs each test twice: history
    read from the message index's tail in RAM (the default lag: a test's
    few lines) with every line cached, and from SQLite (--index-lag 1) with
    no cache besides each room's last lines (--history-cache 0)."""
    if getattr(metafunc.module, "BOTH_HISTORY_PATHS", False) and "history_path" in metafunc.fixturenames:
        metafunc.parametrize("history_path", ["tail", "index"], indirect=True)


@pytest.fixture
def history_path(request):
    return getattr(request, "param", "tail")


@pytest.fixture
def server(make_server, request, history_path):
    """A chorusd with generous flood limits; with accounts (the default), or
    with --identity open for tests marked open_identity; with --index-lag 1
    and --history-cache 0 on the "index" history path."""
    args = ["--flood-burst", "1000", "--flood-rate", "1000"]
    if request.node.get_closest_marker("open_identity"):
        args += ["--identity", "open"]
    if history_path == "index":
        args += ["--index-lag", "1", "--history-cache", "0"]
    return make_server(args)
