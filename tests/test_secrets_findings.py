"""The security findings of ``diagnose`` fire where the wire shows the risk,
and not where it does not (the rules themselves belong to mysqlwire/diagnose;
this checks them against the lab corpus and the public captures):

* CLEARTEXT_WITHOUT_TLS -- a clear-text password / token / PAM answer in plain TCP;
* OFFLINE_CRACKABLE_PROOF -- a native / caching_sha2 fast / ed25519 proof
  outside TLS, with the guessing cost;
* OLD_PASSWORD_IN_USE -- mysql_old_password (scramble323);
* WEAK_TLS_VERSION -- TLS 1.0 / 1.1.
"""

from __future__ import annotations

import json
from functools import cache

import pytest

from tests.conftest import public_captures, require_shared
from tests.test_robust_support import lab_corpus, run_cli

CORPUS = lab_corpus()
PROOF_PLUGINS = {"mysql_native_password", "caching_sha2_password", "client_ed25519"}


@cache
def findings(path, opts: tuple = ()) -> list[dict]:
    run = run_cli(["diagnose", "--all", "--format", "jsonl", *opts, path])
    assert run.code in (0, 1), run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def _security(rec: dict) -> dict[str, dict]:
    return {d["code"]: d for d in rec["diagnosis"] if d["severity"] == "security"}


@pytest.mark.parametrize("cap", CORPUS, ids=[f"{c.path.parent.name}-{c.path.stem}" for c in CORPUS])
def test_security_findings_match_the_wire(cap):
    raw = cap.path.read_bytes()
    pw = cap.truth.get("password") or ""
    for rec in findings(cap.path, tuple(cap.options())):
        sec = _security(rec)
        plain = not rec["tls"]
        final = cap.truth.get("plugin_final")
        clear_on_wire = plain and pw and pw.encode() in raw
        assert ("CLEARTEXT_WITHOUT_TLS" in sec) == bool(clear_on_wire), (sorted(sec), final)
        if final == "mysql_old_password" and rec["outcome"] != "incomplete":
            assert "OLD_PASSWORD_IN_USE" in sec
        if not plain:
            assert "OFFLINE_CRACKABLE_PROOF" not in sec  # the proof is inside TLS
        elif "OFFLINE_CRACKABLE_PROOF" in sec:
            d = sec["OFFLINE_CRACKABLE_PROOF"]
            assert "per guess" in (d.get("evidence") or ""), d  # says what a guess costs
        assert "WEAK_TLS_VERSION" not in sec  # the lab negotiates TLS 1.2 / 1.3


def test_offline_crackable_proofs_are_flagged():
    flagged = [
        c
        for c in CORPUS
        for rec in findings(c.path, tuple(c.options()))
        if "OFFLINE_CRACKABLE_PROOF" in _security(rec)
    ]
    plugins = {c.truth.get("plugin_final") for c in flagged}
    assert PROOF_PLUGINS <= plugins, plugins


def test_weak_tls_versions_in_public_captures():
    require_shared()
    weak = {}
    for p in public_captures():
        for rec in findings(p, ("--detect",)):
            if rec.get("tls_version") in ("TLS 1.0", "TLS 1.1", "SSL 3.0"):
                weak[p.name] = "WEAK_TLS_VERSION" in _security(rec)
    assert weak and all(weak.values()), weak
