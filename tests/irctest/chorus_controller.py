"""The irctest controller for chorus (../shared/irctest, CHORUS.md there):
starts one chorusd for each test, standalone (--group solo), with the
settings irctest expects: the server name My.Little.Server, operator
operuser/operpassword, a server password or TLS when a test asks, and the
limits a test suite meets relaxed (it connects and floods from one
address). `make irctest` runs it; docs/PROTOCOL.md has the figures.
"""
import os
import shutil
import subprocess
from typing import Optional, Set, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController

CHORUSD = os.environ.get("CHORUSD") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "chorusd")

RELAXED = ["--flood-rate", "1000", "--flood-burst", "1000", "--new-names", "0",
           "--per-address", "0", "--sync", "off"]


class ChorusController(BaseServerController, DirectoryBasedController):
    software_name = "chorus"
    supported_sasl_mechanisms: Set[str] = {"PLAIN", "SCRAM-SHA-256"}
    supports_sts = False

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
    ) -> None:
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        assert self.directory
        verifier = subprocess.run([CHORUSD, "--make-verifier"], input="operpassword\n", text=True,
                                  capture_output=True, check=True).stdout.strip()
        args = [CHORUSD, "--server-name", "My.Little.Server", "--listen", hostname,
                "--data-dir", str(self.directory / "data"), "--oper", "operuser=" + verifier,
                "--log-level", "warn"] + RELAXED
        if password:
            args += ["--password", password]
        if ssl:
            self.gen_ssl()
            (_, plain_port) = self.get_hostname_and_port()
            args += ["--port", str(plain_port), "--tls-port", str(port), "--tls-cert", str(self.pem_path),
                     "--tls-key", str(self.key_path), "--sts-duration", "0"]
        else:
            args += ["--port", str(port)]
        if faketime and shutil.which("faketime"):
            args = ["faketime", "-f", faketime] + args
            self.faketime_enabled = True
        self.proc = self.execute(args)

    def registerUser(self, case, username: str, password: Optional[str] = None) -> None:
        """An account, as a user makes one: REGISTER before connecting
        (draft/account-registration), named after the nick."""
        assert password
        client = case.addClient(show_io=False)
        case.sendLine(client, "CAP LS 302")
        case.sendLine(client, "NICK " + username)
        case.sendLine(client, "USER r e g :user")
        case.sendLine(client, "REGISTER * * :" + password)
        while True:
            msg = case.getRegistrationMessage(client)
            if msg.command == "REGISTER" and msg.params[0] == "SUCCESS":
                break
            assert msg.command != "FAIL", msg
        case.sendLine(client, "QUIT")
        case.assertDisconnected(client)


def get_irctest_controller_class() -> Type[ChorusController]:
    return ChorusController
