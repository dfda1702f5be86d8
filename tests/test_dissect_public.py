"""Every public capture (read in place from ../shared) dissects without a crash
and agrees with two independent sources:

* CATALOG.tsv (a separate walk of the reassembled streams): connection
  counts, outcomes, plugins, server versions;
* the tshark 4.0.17 oracle (oracle/*.tsv): per TCP stream, server version,
  greeting plugin, user, client plugin, auth-switch names and login error code
  -- except where tshark is provably wrong (TSHARK_WRONG, with the reason).
"""

from __future__ import annotations

import collections
import csv

import pytest

from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.tls import KeyLog
from tests.conftest import PUBLIC, SHARED_MISSING

CATALOG = []
if (PUBLIC / "CATALOG.tsv").is_file():
    with open(PUBLIC / "CATALOG.tsv", newline="") as fh:
        CATALOG = list(csv.DictReader(fh, delimiter="\t"))

pytestmark = pytest.mark.skipif(not CATALOG, reason=SHARED_MISSING)


def _connections(row):
    ports = tuple(int(p) for p in row["mysql_ports"].split(";") if p)
    keys = (PUBLIC / row["path"]).with_suffix(".keys")
    keylog = KeyLog.from_file(keys) if keys.exists() else None
    opts = DissectOptions(ports=ports, keylog=keylog)
    return list(iter_connections(PUBLIC / row["path"], opts))


def _dissect(row) -> list[dict]:
    return [c.to_record() for c in _connections(row)]


def _outcome(rec: dict) -> str:
    if rec["tls"] and rec.get("tls_status") != "ok":
        return "tls"
    if rec["outcome"] == "error":
        return f"err{rec['error']['code']}"
    return rec["outcome"]


@pytest.mark.parametrize("row", CATALOG, ids=[r["path"] for r in CATALOG])
def test_agrees_with_catalog(row):
    recs = _dissect(row)
    with_greeting = [r for r in recs if r["server_version"] is not None]
    assert len(with_greeting) == int(row["connections"])
    ours = collections.Counter(_outcome(r) for r in with_greeting)
    catalog = collections.Counter()
    for part in row["outcomes"].split(","):
        kind, n = part.split(":")
        catalog[kind] = int(n)
    assert ours == catalog
    versions = []
    for r in with_greeting:
        if r["server_version"] not in versions:
            versions.append(r["server_version"])
    assert ";".join(versions) == row["server_versions"]
    named = []
    for r in with_greeting:
        for p in (r["greeting_plugin"], r["client_plugin"], *r["switches"]):
            if p and p not in named:
                named.append(p)
    assert set(named) == set(filter(None, row["plugins"].split(",")))
    # pre-greeting refusals (zeek/auth.pcap: 1130) are reported too
    if "ERR 1130 instead of a greeting" in row["notes"]:
        refused = [r for r in recs if r["server_version"] is None and r["error"]]
        assert refused and all(
            r["error"]["code"] == 1130 and r["error"]["sqlstate"] is None for r in refused
        )


# --------------------------------------------------------------------- tshark
# A systematic tshark 4.0 error (reference doc section 8, oracle/README.md):
# caching_sha2/sha256 AuthMoreData packets (01 03 fast-auth success, 01 04
# perform full authentication) are labelled "Auth Switch Request" and their
# bytes reported as the switched-to plugin name.  Such a "name" is checked
# against our AuthMoreData step with the same bytes instead.
def _is_more_data_misread(name: str) -> bool:
    return name[:1] == "\x01"


def _oracle_streams(row) -> dict[int, dict]:
    """Per client port: the connection-phase facts tshark reports."""
    path = PUBLIC / "oracle" / (row["path"].replace("/", "__") + ".tsv")
    ports = {int(p) for p in row["mysql_ports"].split(";") if p}
    streams: dict[str, list[dict]] = collections.defaultdict(list)
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            streams[r["tcp.stream"]].append(r)
    out = {}
    for rows in streams.values():
        first = rows[0]
        client_port = (
            int(first["tcp.dstport"])
            if int(first["tcp.srcport"]) in ports
            else int(first["tcp.srcport"])
        )
        facts = {
            "version": None,
            "greeting_plugin": None,
            "user": None,
            "client_plugin": None,
            "switches": [],
            "error": None,
        }
        for i, r in enumerate(rows):
            from_server = int(r["tcp.srcport"]) in ports
            if i == 0 and from_server and r["mysql.error_code"]:
                facts["error"] = int(r["mysql.error_code"])
                break
            if from_server and r["mysql.version"]:
                facts["version"] = r["mysql.version"]
                facts["greeting_plugin"] = r["mysql.auth_plugin"] or None
                continue
            if not from_server and r["mysql.user"] and facts["user"] is None:
                facts["user"] = r["mysql.user"]
                facts["client_plugin"] = r["mysql.client_auth_plugin"] or None
                continue
            if from_server and r["mysql.auth_switch_request.name"]:
                facts["switches"].append(r["mysql.auth_switch_request.name"])
            if (
                from_server
                and facts["user"] is not None
                and r["mysql.response_code"] in ("0x00", "0xff")
            ):
                if r["mysql.error_code"]:
                    facts["error"] = int(r["mysql.error_code"].split(",")[0])
                break
        out[client_port] = facts
    return out


@pytest.mark.parametrize("row", CATALOG, ids=[r["path"] for r in CATALOG])
def test_agrees_with_tshark(row):
    oracle = _oracle_streams(row)
    conns = _connections(row)
    checked = 0
    for conn in conns:
        rec = conn.to_record()
        port = int(rec["client"].rsplit(":", 1)[1])
        facts = oracle.get(port)
        if facts is None:
            # tshark shows nothing for a stream without MySQL bytes
            assert rec["server_version"] is None and rec["error"] is None
            continue
        if rec["tls"] and rec.get("tls_status") != "ok":
            # tshark without keys: greeting and SSLRequest only
            assert facts["user"] is None
        ours = {
            "version": rec["server_version"],
            "greeting_plugin": rec["greeting_plugin"],
            "user": rec["user"],
            "client_plugin": rec["client_plugin"],
            "switches": rec["switches"],
            "error": rec["error"]["code"] if rec["error"] else None,
        }
        misread = [n for n in facts["switches"] if _is_more_data_misread(n)]
        facts["switches"] = [n for n in facts["switches"] if not _is_more_data_misread(n)]
        more = (
            [s.data for s in conn.login.steps if s.kind == "auth_more_data"] if conn.login else []
        )
        for name in misread:
            assert name[1:].encode("latin-1") in more, (
                f"tshark switch {name!r} is not one of our AuthMoreData"
            )
        for key, theirs in facts.items():
            assert ours[key] == theirs, (
                f"stream of client port {port}: {key} ours {ours[key]!r} tshark {theirs!r}"
            )
        checked += 1
    assert checked >= 1
