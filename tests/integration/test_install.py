"""Installing: `cmake --install` (what `make install` runs) puts the
programs, man pages, the systemd unit, the system user and the docs under
PREFIX in DESTDIR; the unit passes `systemd-analyze verify`; CPack (what
`make deb` runs) makes a Debian package of the same files, its
dependencies found by dpkg-shlibdeps, with a postinst that makes the
user. The build is the one CHORUSD comes from."""
import os
import shutil
import subprocess

from conftest import CHORUSD

BUILD = os.path.dirname(CHORUSD)

FILES = ["usr/sbin/chorusd", "usr/bin/chorus", "usr/bin/chorusctl",
         "usr/share/man/man8/chorusd.8", "usr/share/man/man8/chorusctl.8", "usr/share/man/man1/chorus.1",
         "usr/lib/systemd/system/chorusd.service", "usr/lib/sysusers.d/chorus.conf",
         "usr/share/doc/chorus/chorus.conf.example", "usr/share/doc/chorus/OPERATIONS.md"]


def test_install_and_unit(tmp_path):
    root = tmp_path / "root"
    out = subprocess.run(["cmake", "--install", BUILD, "--prefix", "/usr"], env=dict(os.environ, DESTDIR=str(root)),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for f in FILES:
        assert (root / f).exists(), f
    unit = (root / "usr/lib/systemd/system/chorusd.service").read_text()
    assert "ExecStart=/usr/sbin/chorusd " in unit and "Restart=always" in unit and "ProtectSystem=strict" in unit
    assert "NoNewPrivileges=yes" in unit and "StateDirectory=chorus" in unit
    assert (root / "usr/lib/sysusers.d/chorus.conf").read_text().splitlines()[-1].startswith("u chorus ")
    # systemd-analyze checks ExecStart on this host: point it at the copy.
    local = tmp_path / "chorusd.service"
    local.write_text(unit.replace("/usr/sbin/chorusd", str(root / "usr/sbin/chorusd")))
    out = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True,
                         env=dict(os.environ, MANPATH=str(root / "usr/share/man")))
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), out.stdout + out.stderr


def test_prefix_is_followed(tmp_path):
    root = tmp_path / "root"
    out = subprocess.run(["cmake", "--install", BUILD, "--prefix", "/opt/chorus"],
                         env=dict(os.environ, DESTDIR=str(root)), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    unit = (root / "opt/chorus/lib/systemd/system/chorusd.service").read_text()
    assert "ExecStart=/opt/chorus/sbin/chorusd " in unit
    assert (root / "opt/chorus/sbin/chorusd").exists()


def test_debian_package(tmp_path):
    out = subprocess.run(["cpack", "-G", "DEB", "-B", str(tmp_path), "--config",
                          os.path.join(BUILD, "CPackConfig.cmake")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    debs = [f for f in os.listdir(tmp_path) if f.endswith(".deb")]
    assert len(debs) == 1, os.listdir(tmp_path)
    deb = str(tmp_path / debs[0])
    info = subprocess.run(["dpkg-deb", "--info", deb], capture_output=True, text=True).stdout
    for dep in ("libuv1", "libcpg4", "libsqlite3-0", "libssl3", "libconfig9"):
        assert dep in info, info
    assert "Recommends: corosync" in info and "postinst" in info, info
    contents = subprocess.run(["dpkg-deb", "--contents", deb], capture_output=True, text=True).stdout
    for f in FILES:
        assert "./" + f in contents, f
    ctl = tmp_path / "control"
    subprocess.run(["dpkg-deb", "--control", deb, str(ctl)], check=True)
    assert "systemd-sysusers chorus.conf" in (ctl / "postinst").read_text()
    shutil.rmtree(ctl)
