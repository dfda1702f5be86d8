"""Without the lab's binaries the lab says so loudly: skip with the binary and the setup command,
or fail when CI is set. (No server needed.)"""

from __future__ import annotations

import pytest

from . import mariadb as lab_mariadb

pytestmark = pytest.mark.lab


def test_missing_server_binary_is_named_with_the_setup_command(monkeypatch):
    real = lab_mariadb.find_binary
    monkeypatch.setattr(lab_mariadb, "find_binary", lambda n: None if n == "mariadbd" else real(n))
    with pytest.raises(lab_mariadb.LabUnavailable) as e:
        lab_mariadb.check_prerequisites()
    assert "mariadbd" in str(e.value) and "scripts/lab_setup.sh" in str(e.value)


def test_not_root_is_explained(monkeypatch):
    monkeypatch.setattr(lab_mariadb, "find_binary", lambda n: f"/usr/bin/{n}")
    monkeypatch.setattr(lab_mariadb.os, "geteuid", lambda: 1000)
    with pytest.raises(lab_mariadb.LabUnavailable, match="needs root"):
        lab_mariadb.check_prerequisites()


def test_skips_loudly_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="REAL-TRAFFIC LAB NOT RUN: mariadbd not found"):
        lab_mariadb.skip_or_fail("mariadbd not found")


def test_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must not be skipped in CI"):
        lab_mariadb.skip_or_fail("mariadbd not found")


def test_missing_client_library_is_named_with_the_setup_command(monkeypatch, tmp_path):
    """A lab client whose runtime is missing is reported (the ext lab test then skips it, or
    FAILS it with CI set), naming the Debian package and scripts/lab_setup.sh."""
    from . import extclients

    real = extclients.shutil.which
    monkeypatch.setattr(
        extclients.shutil, "which", lambda n: None if n in ("php", "ruby") else real(n)
    )
    monkeypatch.setattr(extclients, "CONNECTOR_J", tmp_path / "no-such.jar")
    monkeypatch.setattr(extclients, "GO_DRIVER", tmp_path / "no-go-driver")
    monkeypatch.setattr(extclients, "NODE_DIR", tmp_path / "node")
    tc = extclients.Toolchain.prepare(tmp_path / "build")
    for name in ("php-pdo", "php-mysqli", "ruby-mysql2", "connectorj", "go", "node-mysql2"):
        assert "lab_setup.sh" in tc.missing[name], name
    assert "php-mysql" in tc.missing["php-mysqli"] and "ruby-mysql2" in tc.missing["ruby-mysql2"]
    assert "npm package mysql2" in tc.missing["node-mysql2"]
    r = extclients.ext_login(
        extclients.LoginSpec("php-pdo", "127.0.0.1", 1, "u", "secret-pw"), tc, None
    )
    assert not r.connected and r.error.cls == "ClientMissing" and "secret-pw" not in str(r)
