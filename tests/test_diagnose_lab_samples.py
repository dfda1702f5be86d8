"""Every connection of every lab sample gets the truth's root cause.

Ground truth: ``captures/lab-samples/truth.jsonl`` (a copy of
``../shared/captures/lab-samples``), written by the lab that made the captures:
``expected_code`` is the root cause a diagnosis should give ("OK" = no finding
of error severity), ``other_codes`` further findings that must be present.

The diagnosis gets what a user would have: the account's real password
(``account_password``; none for an account that does not exist, which is what
makes that case ACCESS_DENIED), the server's RSA key and the TLS key log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mysqlwire.diagnose import diagnose_connections
from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.replay import Secrets

from .conftest import LAB_SAMPLES, REPO, require_shared

REPO_SAMPLES = REPO / "captures" / "lab-samples"


def _samples_dir() -> Path:
    if (REPO_SAMPLES / "truth.jsonl").is_file():
        return REPO_SAMPLES
    require_shared()
    return LAB_SAMPLES


def _truth() -> list[dict]:
    d = REPO_SAMPLES if (REPO_SAMPLES / "truth.jsonl").is_file() else LAB_SAMPLES
    if not (d / "truth.jsonl").is_file():
        return []
    return [
        json.loads(line) for line in (d / "truth.jsonl").read_text().splitlines() if line.strip()
    ]


TRUTH = _truth()


def _rsa_keys(d: Path, t: dict) -> list[bytes]:
    if t.get("rsa_private_key"):
        return [(d / t["rsa_private_key"]).read_bytes()]
    name = {"mysql8_": "mysql8_emulator_rsa_private.pem", "m8emu_": "m8emu_server_rsa_private.pem"}
    for prefix, key in name.items():
        if t["pcap"].startswith(prefix):
            return [(d / key).read_bytes()]
    return []


def _connections(t: dict, secrets: Secrets | None):
    d = _samples_dir()
    keylog = None
    if t.get("keylog"):
        from mysqlwire.tls import KeyLog

        keylog = KeyLog.from_file(d / t["keylog"])
    opts = DissectOptions(ports=(t["port"],), keylog=keylog)
    conns = list(iter_connections(str(d / t["pcap"]), opts))
    if t.get("client_port"):
        conns = [c for c in conns if c.client.endswith(f":{t['client_port']}")]
    assert conns, f"{t['pcap']}: no connection"
    diagnose_connections(conns, secrets)
    return conns


def _secrets(t: dict, which: str = "account_password") -> Secrets | None:
    d = _samples_dir()
    by_user: dict[str, bytes] = {}
    pw = t.get(which)
    if pw is not None and t.get("user") is not None:
        by_user[t["user"]] = pw.encode()
    cu = t.get("change_user")
    if cu and cu.get(which) is not None:
        by_user[cu["user"]] = cu[which].encode()
    if not by_user:
        return None
    return Secrets(by_user=by_user, rsa_private_keys=_rsa_keys(d, t))


def _codes(conn) -> list[str]:
    return [f["code"] for f in conn.extra["diagnosis"]]


@pytest.mark.parametrize("t", TRUTH, ids=[t["scenario"] for t in TRUTH])
def test_top_finding_matches_truth(t):
    for conn in _connections(t, _secrets(t)):
        diag = conn.extra["diagnosis"]
        errors = [f["code"] for f in diag if f["severity"] == "error"]
        if t["expected_code"] == "OK":
            assert not errors, f"{t['scenario']}: unexpected error findings {errors}"
        else:
            assert diag, f"{t['scenario']}: no finding"
            assert diag[0]["code"] == t["expected_code"], (t["scenario"], _codes(conn))
        for code in t.get("other_codes") or []:
            assert code in _codes(conn), (t["scenario"], code, _codes(conn))


@pytest.mark.parametrize("t", TRUTH, ids=[t["scenario"] for t in TRUTH])
def test_findings_never_reveal_passwords(t):
    secrets = [t.get("password"), t.get("account_password")]
    cu = t.get("change_user") or {}
    secrets += [cu.get("password"), cu.get("account_password")]
    secrets = [s for s in secrets if s]
    for conn in _connections(t, _secrets(t)):
        text = json.dumps(conn.extra["diagnosis"])
        for s in secrets:
            assert s not in text


_DENIED = [t for t in TRUTH if t.get("error_code") == 1045]


@pytest.mark.parametrize("t", _DENIED, ids=[t["scenario"] for t in _DENIED])
def test_without_a_password_1045_is_access_denied(t):
    for conn in _connections(t, None):
        top = conn.extra["diagnosis"][0]["code"]
        if t["expected_code"] == "CLIENT_LACKS_PLUGIN":
            # old PyMySQL on caching_sha2: the fingerprint alone explains the empty response
            assert top == "CLIENT_LACKS_PLUGIN"
        else:
            assert top == "ACCESS_DENIED", top
            if "using password: NO" in (t.get("error_message") or ""):
                assert "sent no password" in conn.extra["diagnosis"][0]["evidence"]


def test_unknown_user_with_the_clients_password():
    # A valid proof refused on a plain connection to a server that offers TLS:
    # the wire cannot tell an unknown account from REQUIRE SSL; ONE finding
    # says so and ranks the unknown account first (#16), the valid proof supports it.
    (t,) = [t for t in TRUTH if t["scenario"] == "mariadb_connector_unknown_user"]
    (conn,) = _connections(t, _secrets(t, "password"))
    assert conn.extra["verdict"]["verdict"] == t["expected_verdict"] == "PROOF_MATCHES"
    codes = _codes(conn)
    assert codes[:2] == ["ACCESS_DENIED", "VALID_PROOF_REJECTED"], codes
    assert "TLS_REQUIRED" not in codes
    top = conn.extra["diagnosis"][0]
    assert "(1) no account 'ghost' matches" in top["evidence"]
    assert "REQUIRE SSL" in top["evidence"].split("(3)")[1]
    assert "'ghost'@'127.0.0.1'" in conn.extra["diagnosis"][1]["title"]


def test_wrong_password_with_the_clients_own_password_is_not_wrong_password():
    # the client was given a wrong password; replaying with *that* password the
    # proof matches, so the server's refusal is what needs explaining
    (t,) = [t for t in TRUTH if t["scenario"] == "lab_cli_native_wrong"]
    (conn,) = _connections(t, _secrets(t, "password"))
    assert "WRONG_PASSWORD" not in _codes(conn)
    assert "VALID_PROOF_REJECTED" in _codes(conn)


def test_truth_is_loaded():
    if not TRUTH:
        require_shared()
    assert len(TRUTH) >= 39
