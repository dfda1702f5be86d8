"""Every scenario of the lab regression corpus (``captures/lab``) gets the
truth's root cause — for the login and for each COM_CHANGE_USER.

``captures/lab/truth.jsonl`` is written by the lab run (tests/lab), from what
the lab knows (accounts, passwords, the client's exception), never from
mysqlwire's output.  The diagnosis gets what a user would have: the accounts'
real passwords (none for an account that does not exist) and the key logs.

A few truth lines disagree with the wire or the reference; they are pinned in
``DEVIATIONS`` with the reason, and asserted as what we say instead.  Lines
that need a dissect change are ``BLOCKED`` (xfail until it lands).
"""

from __future__ import annotations

import json

import pytest

from mysqlwire.diagnose import CaptureFacts, diagnose_connection
from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.replay import Secrets

from .conftest import REPO

CORPUS = REPO / "captures" / "lab"


def _truth() -> list[dict]:
    p = CORPUS / "truth.jsonl"
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


TRUTH = _truth()

# scenario -> (our top code, why the truth's expected_code is not right)
DEVIATIONS = {
    "pymysql_dual_native": (
        "SECOND_SWITCH_REFUSED",
        "the login failed (PyMySQL: 'received multiple auth switch requests'), so the root cause is an error: "
        "PyMySQL refuses the second switch (to mysql_native_password, which it does implement), not "
        "PLUGIN_SWITCH/CLIENT_LACKS_PLUGIN",
    ),
    "connector_pam_clear_no_tls": (
        "CLEARTEXT_NOT_ENABLED",
        "nothing was sent in clear: mysql-connector-python refused mysql_clear_password without TLS "
        "(the truth's own client_error/notes) and closed, so CLEARTEXT_WITHOUT_TLS does not hold",
    ),
    "cli_pam_dialog_ok": (
        "CLEARTEXT_WITHOUT_TLS",
        "the dialog answer is the PAM password in clear text on plain TCP (reference §6 'dialog'); it outranks the "
        "switch exactly as for mysql_clear_password (cli_pam_clear_ok); PLUGIN_SWITCH is the second finding",
    ),
    "mysqlclient_pam_dialog_ok": ("CLEARTEXT_WITHOUT_TLS", "as cli_pam_dialog_ok"),
    "mariadb_pam_dialog_ok": ("CLEARTEXT_WITHOUT_TLS", "as cli_pam_dialog_ok"),
}

BLOCKED = {
    name: (
        "dissect records only the ERR answering the FIRST command (Connection.command_error); these clients send "
        "SET statements first, which succeed in sandbox mode, and the 1820 answers a later statement"
    )
    for name in ("pymysql_expired", "connector_expired", "mysqlclient_expired")
}


def _connections(t: dict):
    keylog = None
    if t.get("keylog"):
        from mysqlwire.tls import KeyLog

        keylog = KeyLog.from_file(CORPUS / t["keylog"])
    conns = list(
        iter_connections(str(CORPUS / t["pcap"]), DissectOptions(ports=(t["port"],), keylog=keylog))
    )
    if t.get("client_port"):
        conns = [c for c in conns if c.client.endswith(f":{t['client_port']}")]
    assert conns, t["pcap"]
    return conns


def _secrets(t: dict) -> Secrets | None:
    by_user = {}
    if t.get("account_password") is not None and t.get("user") is not None:
        by_user[t["user"]] = t["account_password"].encode()
    cu = t.get("change_user") or {}
    if cu.get("account_password") is not None:
        by_user[cu["user"]] = cu["account_password"].encode()
    return Secrets(by_user=by_user) if by_user else None


def _check(found, expected: str, other: list[str], label: str):
    codes = [f.code for f in found]
    if expected == "OK":
        assert not [f for f in found if f.severity == "error"], (label, codes)
    else:
        assert codes and codes[0] == expected, (label, codes)
    for code in other:
        assert code in codes, (label, code, codes)


def _params():
    out = []
    for t in TRUTH:
        marks = []
        if t["scenario"] in BLOCKED:
            marks.append(pytest.mark.xfail(reason=BLOCKED[t["scenario"]], strict=False))
        out.append(pytest.param(t, id=t["scenario"], marks=marks))
    return out


@pytest.mark.parametrize("t", _params())
def test_corpus_scenario(t):
    if not TRUTH:
        pytest.skip("captures/lab/truth.jsonl not present")
    conns = _connections(t)
    capture = CaptureFacts()
    for conn in conns:
        capture.add(conn)
    for conn in conns:
        found = diagnose_connection(conn, _secrets(t), capture=capture)
        login = [f for f in found if f.exchange == "login"]
        expected, other = t["expected_code"], list(t.get("other_codes") or [])
        if t["scenario"] in DEVIATIONS:
            expected, other = DEVIATIONS[t["scenario"]][0], []
        _check(login, expected, other, t["scenario"])
        cu = t.get("change_user")
        if cu:
            cu_found = [f for f in found if f.exchange != "login"]
            _check(
                cu_found,
                cu.get("expected_code") or "OK",
                list(cu.get("other_codes") or []),
                t["scenario"] + "/change_user",
            )


def test_corpus_deviations_are_still_deviations():
    """If the truth is corrected, drop the entry here."""
    names = {t["scenario"]: t for t in TRUTH}
    for name, (ours, _why) in DEVIATIONS.items():
        if name in names:
            assert names[name]["expected_code"] != ours, (
                f"{name}: truth now agrees; remove the deviation"
            )


def test_corpus_is_there():
    if not TRUTH:
        pytest.skip("captures/lab/truth.jsonl not present")
    assert len(TRUTH) >= 80
