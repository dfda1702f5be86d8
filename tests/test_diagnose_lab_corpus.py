"""Every scenario of the lab regression corpus (``captures/lab``) gets the
truth's root cause.

``captures/lab/truth.jsonl`` is written by the lab run (tests/lab), from what
the lab knows (accounts, passwords, the client's exception), never from
mysqlwire's output.  The diagnosis gets what a user would have: the accounts'
real passwords (none for an account that does not exist) and the key logs.
``expected_code`` is the connection's top finding (a failed COM_CHANGE_USER
is the connection's problem even when the login worked); ``change_user`` has
the same for that exchange alone.  ``other_codes`` must hold too; for an
account that does not exist they may need the password the client was given
(e.g. VALID_PROOF_REJECTED), so they are looked up in a second diagnosis made
with it.
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

# scenario -> (our top code, why the truth's expected_code is not right); empty
# since the lab aligned its truth (SECOND_SWITCH_REFUSED, CLEARTEXT_NOT_ENABLED,
# dialog answers are clear text).  Add an entry, with the reason, when they differ.
_REQUIRE_SSL_WHY = (
    "REQUIRE SSL on MariaDB without TLS: the right proof, then the same 1045 an unknown account or a host "
    "mismatch gets; with no evidence for the requirement (3159, 01 03 then ERR, the user over TLS elsewhere in "
    "the capture) #16 ranks the far more common causes first and names REQUIRE SSL as the last hypothesis"
)
DEVIATIONS: dict[str, tuple[str, str]] = {
    "cli_require_ssl_no_tls": ("ACCESS_DENIED", _REQUIRE_SSL_WHY),
    "pymysql_require_ssl_no_tls": ("ACCESS_DENIED", _REQUIRE_SSL_WHY),
}

# scenario -> why it cannot pass yet (xfail until the named change lands)
BLOCKED: dict[str, str] = {}


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


def _secrets(t: dict, which: str = "account_password") -> Secrets | None:
    by_user = {}
    if t.get(which) is not None and t.get("user") is not None:
        by_user[t["user"]] = t[which].encode()
    cu = t.get("change_user") or {}
    if cu.get(which) is not None:
        by_user[cu["user"]] = cu[which].encode()
    return Secrets(by_user=by_user) if by_user else None


def _diagnose(t: dict, secrets: Secrets | None):
    conns = _connections(t)
    capture = CaptureFacts()
    for conn in conns:
        capture.add(conn)
    return [diagnose_connection(conn, secrets, capture=capture) for conn in conns]


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
    expected, other = t["expected_code"], list(t.get("other_codes") or [])
    if t["scenario"] in DEVIATIONS:
        expected, other = DEVIATIONS[t["scenario"]][0], []
    runs = _diagnose(t, _secrets(t))
    also = []
    if t.get("account_password") is None and t.get("password") is not None:
        also = [f.code for found in _diagnose(t, _secrets(t, "password")) for f in found]
    for found in runs:
        _check(found, expected, [], t["scenario"])
        codes = [f.code for f in found] + also
        for code in other:
            assert code in codes, (t["scenario"], code, codes)
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
