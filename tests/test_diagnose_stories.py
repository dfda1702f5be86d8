"""The user stories of ``shared/background`` reproduced on the wire
(``captures/stories``, made by ``scripts/make_story_captures.py`` with
``mysqlwire serve`` and real clients, plus lab captures for
mysql_old_password) get the story's diagnosis.

``truth.jsonl`` there says, per capture, which story it tells, what the
client got, and the expected root cause — written from the story and the
client's own error before diagnosis ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mysqlwire.diagnose import CaptureFacts, diagnose_connection
from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.replay import Secrets

from .conftest import REPO

STORIES = REPO / "captures" / "stories"


def _truth() -> list[dict]:
    p = STORIES / "truth.jsonl"
    if not p.is_file():
        return []
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


TRUTH = _truth()


def _resolve(t: dict) -> dict:
    """Lab captures referenced by a story: port, user, password from the lab's truth."""
    if not t.get("truth_from"):
        return t
    src = (STORIES / t["truth_from"]).resolve()
    if not src.is_file():
        pytest.skip(f"{t['truth_from']} not present")
    pcap = Path(t["pcap"]).name
    for line in src.read_text().splitlines():
        lab = json.loads(line) if line.strip() else None
        if lab and lab["pcap"] == pcap:
            return {
                **lab,
                **{k: t[k] for k in ("pcap", "expected_code", "other_codes", "scenario")},
            }
    pytest.skip(f"{pcap} not in {t['truth_from']}")


def _diagnose(t: dict, with_password: bool = True):
    t = _resolve(t)
    keylog = None
    if t.get("keylog"):
        from mysqlwire.tls import KeyLog

        keylog = KeyLog.from_file((STORIES / t["pcap"]).parent / t["keylog"])
    path = (STORIES / t["pcap"]).resolve()
    conns = list(iter_connections(str(path), DissectOptions(ports=(t["port"],), keylog=keylog)))
    if t.get("client_port"):
        conns = [c for c in conns if c.client.endswith(f":{t['client_port']}")]
    assert len(conns) == 1, (t["scenario"], len(conns))
    secrets = None
    if with_password and t.get("account_password") is not None:
        secrets = Secrets(by_user={t["user"]: t["account_password"].encode()})
    capture = CaptureFacts()
    capture.add(conns[0])
    return conns[0], diagnose_connection(conns[0], secrets, capture=capture)


@pytest.mark.parametrize("t", TRUTH, ids=[t["scenario"] for t in TRUTH])
def test_story_capture_is_diagnosed(t):
    conn, found = _diagnose(t)
    t = _resolve(t)
    codes = [f.code for f in found]
    if t["expected_code"] == "OK":
        assert not [f for f in found if f.severity == "error"], codes
    else:
        assert codes and codes[0] == t["expected_code"], (t["scenario"], codes)
    for code in t.get("other_codes") or []:
        assert code in codes, (t["scenario"], code, codes)
    text = json.dumps([f.to_dict() for f in found])
    if t.get("password"):
        assert t["password"] not in text


def test_every_story_is_told():
    if not TRUTH:
        pytest.skip("captures/stories/truth.jsonl not present")
    assert {t["story"] for t in TRUTH} == {"000", "001", "002", "003", "004"}


def _by_name(name):
    return next(t for t in TRUTH if t["scenario"] == name)


@pytest.mark.skipif(not TRUTH, reason="no story captures")
def test_story_000_names_the_old_pymysql_and_the_fix():
    _, found = _diagnose(_by_name("pymysql081_sha2_greeting"), with_password=False)
    f = found[0]
    assert f.code == "CLIENT_LACKS_PLUGIN"
    assert f.title.startswith("PyMySQL 0.8.x cannot authenticate 'app'@'localhost' on MySQL 8.0.36")
    assert "PyMySQL to >= 0.9" in f.fix
    _, found = _diagnose(_by_name("pymysql0711_collation255"), with_password=False)
    assert "collation 255" in found[0].evidence


@pytest.mark.skipif(not TRUTH, reason="no story captures")
def test_story_002_cli_works_pymysql_fails():
    # same account (clear text, REQUIRE SSL): the CLI over TLS works, old PyMySQL
    # without TLS sends the secret in clear and is refused
    _, ok = _diagnose(_by_name("cli_clear_tls_ok"))
    assert not [f for f in ok if f.severity == "error"]
    assert "CLEARTEXT_WITHOUT_TLS" not in [f.code for f in ok]
    _, bad = _diagnose(_by_name("pymysql093_clear_no_tls"))
    assert bad[0].code == "TLS_REQUIRED"
    clear = next(f for f in bad if f.code == "CLEARTEXT_WITHOUT_TLS")
    assert "bytes of clear text (mysql_clear_password)" in clear.evidence
