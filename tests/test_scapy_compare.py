"""mysqlwire's Scapy session classifies every connection-phase packet of the
public corpus right: against the capture pipeline's state machine, and against
tshark's oracle where tshark names the packet.  docs/scapy.md's comparison
table (scripts/scapy_compare.py) says the same."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

import pytest

pytest.importorskip("scapy.all", reason="scapy is a runtime dependency")

from tests.conftest import PUBLIC  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "scapy_compare", REPO / "scripts" / "scapy_compare.py"
)
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)


def _catalog():
    if not (PUBLIC / "CATALOG.tsv").is_file():
        return []
    return compare.catalog(PUBLIC.parent.parent)


@pytest.mark.parametrize("rel,ports", _catalog(), ids=[r for r, _ in _catalog()])
def test_every_connection_phase_packet_classified_right(rel, ports):
    path = PUBLIC / rel
    truth = compare.truth(path)
    ours = compare.ours(path)
    assert truth, "no connection-phase packet found: nothing compared"
    wrong = {key: (kind, ours.get(key)) for key, kind in truth.items() if ours.get(key) != kind}
    assert wrong == {}
    late = {
        key: kind for key, kind in ours.items() if key not in truth and kind in compare.AUTH_ONLY
    }
    assert late == {}, "a later frame was given a connection-phase class"
    assert _check_against_tshark(rel, ours) >= 1, "tshark's oracle confirmed nothing"


def _check_against_tshark(rel: str, ours: dict) -> int:
    """Where tshark's oracle names a packet (greeting protocol 10, a login's
    user at sequence 1, an auth switch's plugin, an ERR code in the connection
    phase), our class for the frame at that time and sequence agrees."""
    oracle = PUBLIC / "oracle" / (rel.replace("/", "__") + ".tsv")
    if not oracle.is_file():
        return 0
    by_time = {}
    for (_client, _server, _sender, ts, seq, _length), kind in ours.items():
        by_time.setdefault((ts, seq), set()).add(kind)
    checked = 0
    with open(oracle, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            ts = round(float(row["frame.time_epoch"]), 6)
            seqs = row["mysql.packet_number"].split(",")
            if len(seqs) != 1 or not seqs[0]:
                continue  # several frames in one segment: not attributable here
            seq = int(seqs[0])
            want = None
            if row["mysql.protocol"] == "10" and seq == 0:
                want = "handshake_v10"
            elif row["mysql.user"] and seq == 1:
                want = "handshake_response41"
            elif re.fullmatch(r"[A-Za-z0-9_]+", row["mysql.auth_switch_request.name"]):
                # (tshark 4.0 also fills the name with AuthMoreData's status
                # byte, 0x03/0x04: oracle/README.md; only real names count)
                want = "auth_switch_request"
            elif (
                row["mysql.error_code"]
                and seq in (1, 2, 3, 4)
                and row["mysql.response_code"] == "0xff"
            ):
                want = "err"
            if want is None or (ts, seq) not in by_time:
                continue
            kinds = by_time[(ts, seq)]
            if want == "err" and "err" not in kinds and kinds <= {None}:
                continue  # an ERR answering a command (tshark cannot tell)
            assert want in kinds, (rel, row["frame.number"], want, kinds)
            checked += 1
    return checked


def test_docs_table_says_every_packet_right():
    doc = (REPO / "docs" / "scapy.md").read_text()
    head, mark, rest = doc.partition(compare.MARK)
    table, mark2, _tail = rest.partition(compare.MARK)
    assert mark and mark2, "docs/scapy.md lost its generated table"
    rows = [r for r in table.splitlines() if r.startswith("| ") and not r.startswith("| capture")]
    per_capture = [r for r in rows if "/" in r.split("|")[1] and "kind" not in r]
    assert len(per_capture) >= 46
    for row in per_capture:
        cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
        assert cells[1] == cells[2], row  # mysqlwire right == packets
    total = next(r for r in rows if "all 46 captures" in r)
    assert re.search(r"\*\*(\d+)\*\* \| \*\*\1\*\*", total)


def test_every_repository_capture_classified_right():
    """The same check on every capture of the repository (lab, clients,
    stories, lab samples): empty auth answers, old switches, TLS, compression."""
    files = sorted(p for p in (REPO / "captures").rglob("*") if p.suffix in (".pcap", ".pcapng"))
    assert len(files) > 100
    total = 0
    for path in files:
        truth = compare.truth(path)
        ours = compare.ours(path)
        wrong = {key: (kind, ours.get(key)) for key, kind in truth.items() if ours.get(key) != kind}
        assert wrong == {}, path.name
        late = [k for k, kind in ours.items() if k not in truth and kind in compare.AUTH_ONLY]
        assert late == [], path.name
        total += len(truth)
    assert total > 500
