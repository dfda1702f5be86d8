"""Dissection of the lab samples agrees with the ground truth in truth.jsonl.

The truth was recorded by the lab that made each capture (what the client was
told, what the server answered), not by mysqlwire.  Where a truth field
cannot be seen on the wire, or the two lab runs recorded the same wire bytes
differently, the case is listed in KNOWN_TRUTH_GAPS with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.tls import KeyLog

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "captures" / "lab-samples"
TRUTH = [
    json.loads(line) for line in (SAMPLES / "truth.jsonl").read_text().splitlines() if line.strip()
]

FIELDS = [
    # (truth key, record key)
    ("user", "user"),
    ("database", "database"),
    ("plugin_initial", "greeting_plugin"),
    ("plugin_client", "client_plugin"),
    ("switches", "switches"),
    ("plugin_final", "final_plugin"),
    ("outcome", "outcome"),
    ("tls", "tls"),
    ("compressed", "compressed"),
]

# (scenario, truth key) -> why the wire cannot agree with that truth field
KNOWN_TRUTH_GAPS = {
    (
        "mariadb_pymysql_host_not_allowed",
        "user",
    ): "server refused the host before the greeting: no user on the wire",
    (
        "lab_p3407_cli_host_not_allowed",
        "user",
    ): "server refused the host before the greeting: no user on the wire",
    ("mariadb_pymysql_tls_keylog_ok", "plugin_client"): (
        "first lab run recorded the view without keys; decrypted, the response names "
        "mysql_native_password (tshark with the key log agrees)"
    ),
    ("mariadb_pymysql_tls_keylog_ok", "plugin_final"): "same as plugin_client",
    ("m8emu_pymysql_sha2_full_tls", "plugin_client"): (
        "first lab run recorded the view without keys; decrypted, the response names caching_sha2_password"
    ),
    ("m8emu_pymysql_sha2_full_tls", "plugin_final"): "same as plugin_client",
}
# mysql-connector-python sends CLIENT_CONNECT_WITH_DB with an empty name when no
# database is given; the first lab run wrote that as null, the second as "".
EMPTY_DB_AS_NULL = {
    "mariadb_connector_unknown_user",
    "mariadb_connector_ed25519",
    "mariadb_connector_port3407_ok",
    "m8emu_connector_native_switch",
    "mysql8_connector_native_switch_ok",
}


def _records(truth: dict) -> list[dict]:
    keylog = KeyLog.from_file(SAMPLES / truth["keylog"]) if truth.get("keylog") else None
    opts = DissectOptions(ports=(truth["port"],), keylog=keylog)
    recs = [c.to_record() for c in iter_connections(SAMPLES / truth["pcap"], opts)]
    if truth.get("client_port"):
        recs = [r for r in recs if r["client"].endswith(f":{truth['client_port']}")]
    return recs


@pytest.mark.parametrize("truth", TRUTH, ids=[t["scenario"] for t in TRUTH])
def test_fields_agree_with_truth(truth):
    recs = _records(truth)
    assert len(recs) == 1, f"{len(recs)} connections matched"
    rec = recs[0]
    for tkey, rkey in FIELDS:
        if (truth["scenario"], tkey) in KNOWN_TRUTH_GAPS:
            continue
        expected = truth.get(tkey)
        if tkey == "database" and truth["scenario"] in EMPTY_DB_AS_NULL:
            assert expected is None and rec[rkey] == "", "wire carries an empty database name"
            continue
        assert rec[rkey] == expected, f"{tkey}: truth {expected!r}, dissect {rec[rkey]!r}"
    err = rec["error"]
    if truth.get("error_code") is None:
        assert err is None
    else:
        assert err["code"] == truth["error_code"]
        assert err["sqlstate"] == truth["sqlstate"]
        assert err["message"] == truth["error_message"]
    assert rec["anomalies"] == []
    if truth["error_code"] in (1130, 1129, 1040) and truth["plugin_initial"] is None:
        assert rec["server_version"] is None  # ERR instead of a greeting
    else:
        version = re.search(r"\d+\.\d+\.\d+", truth["server"]).group(0)
        assert version in rec["server_version"]


def test_gaps_are_really_gaps():
    """Every listed gap is still a disagreement (a fixed truth file or a
    dissector change must prune the list)."""
    by_name = {t["scenario"]: t for t in TRUTH}
    rkeys = dict(FIELDS)
    for (scenario, tkey), _why in KNOWN_TRUTH_GAPS.items():
        truth = by_name[scenario]
        rec = _records(truth)[0]
        assert rec[rkeys[tkey]] != truth[tkey], (scenario, tkey)


def test_tls_without_keys_is_opaque():
    """The same TLS captures without their key log: tls true, inner fields unknown."""
    for truth in TRUTH:
        if not truth.get("keylog"):
            continue
        opts = DissectOptions(ports=(truth["port"],))
        recs = [c.to_record() for c in iter_connections(SAMPLES / truth["pcap"], opts)]
        if truth.get("client_port"):
            recs = [r for r in recs if r["client"].endswith(f":{truth['client_port']}")]
        (rec,) = recs
        assert rec["tls"] is True
        assert rec["user"] is None and rec["client_plugin"] is None
        assert rec["tls_status"] == "no-keys"
        assert rec["tls_version"].startswith("TLS")
        assert rec["outcome"] == "encrypted"
