"""Diagnosis over every public capture in ../shared/captures/public: it never
crashes, every finding is well formed and secret-free, and a few connections
whose cause is known independently of mysqlwire (server ERR codes that tshark
shows; the reference's failure catalogue) get it."""

from __future__ import annotations

import pytest

from mysqlwire.diagnose import RULES_BY_CODE, diagnose_connections
from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.errors import MysqlwireError

from .conftest import PUBLIC, public_captures, require_shared

CAPTURES = public_captures()


def _diagnosed(path):
    try:
        conns = list(iter_connections(str(path), DissectOptions()))
    except MysqlwireError:
        return []  # not a capture we can read: dissect's tests cover that
    return diagnose_connections(conns)


@pytest.mark.parametrize("path", CAPTURES, ids=[str(p.relative_to(PUBLIC)) for p in CAPTURES])
def test_public_capture_diagnoses_cleanly(path):
    for conn in _diagnosed(path):
        diag = conn.extra["diagnosis"]
        assert isinstance(conn.extra["client_fingerprint"], str)
        for f in diag:
            assert set(f) == {"code", "severity", "title", "evidence", "fix"}
            assert f["code"] in RULES_BY_CODE
            assert (
                f["severity"] == RULES_BY_CODE[f["code"]].severity
                or f["code"] == "PASSWORD_EXPIRED"
            )
            for key in ("title", "evidence", "fix"):
                assert f[key] and "{" not in f[key].replace("{'ca'", ""), (f["code"], f[key])
        if conn.failed:
            assert any(f["severity"] == "error" for f in diag), (path.name, conn.id, diag)


def _one(name, idx):
    require_shared()
    path = PUBLIC / name
    if not path.is_file():
        pytest.skip(f"{name} not in this copy of shared/")
    conns = _diagnosed(path)
    return conns[idx]


def test_zeek_auth_errors():
    # zeek/auth.pcap: three ERR 1130 in place of the greeting, then 1045s
    require_shared()
    conns = _diagnosed(PUBLIC / "zeek" / "auth.pcap")
    codes = [(c.error or {}).get("code") for c in conns]
    tops = [c.extra["diagnosis"][0]["code"] if c.extra["diagnosis"] else None for c in conns]
    for code, top in zip(codes, tops, strict=True):
        if code == 1130:
            assert top == "HOST_NOT_ALLOWED"
        elif code == 1045:
            assert top == "ACCESS_DENIED"  # no password given


def test_zeek_caching_sha2_full_auth_without_tls_or_key():
    # MySQL 8.0.32 asks for full authentication on plain TCP; the CLI has no key
    # and may not fetch one, so it hangs up (client error 2061) and the server
    # logs 1158: the reference's 2061 row
    conn = _one("zeek/caching_sha2_password.pcap", 0)
    assert conn.error["code"] == 1158
    top = conn.extra["diagnosis"][0]
    assert top["code"] == "SECURE_CHANNEL_REQUIRED"
    assert "2061" in top["evidence"] and "--get-server-public-key" in top["fix"]
