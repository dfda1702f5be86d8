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
