"""The reassembler's fast lane (segments that can no longer change any answer
are skipped by the capture reader before decoding) changes no output.

Every capture is dissected twice: with the fast lane (the default) and without
it (``idle_timeout`` switches it off; a timeout longer than the capture closes
nothing).  The records must be equal, timestamps included, and the fast lane
must actually have skipped most frames of the generated capture.  No timing
here (benchmarks/run.py measures)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mysqlwire.capture import open_capture
from mysqlwire.dissect import CaptureSummary, DissectOptions, Dissector, iter_connections

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "captures" / "lab-samples"
NO_FAST = DissectOptions(idle_timeout=1e12)


def records(path, opts=None) -> list[dict]:
    return [c.to_record(with_packets=True) for c in iter_connections(path, opts)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fast") / "g.pcap"
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "make_capture.py"), "-n", "300", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def test_generated_capture_same_records_with_and_without_fast_lane(generated):
    fast = records(generated)
    assert fast == records(generated, NO_FAST)
    assert len(fast) == 300
    manifest = [json.loads(line) for line in generated.with_suffix(".manifest.jsonl").open()]
    # pooled connections that run many queries before COM_CHANGE_USER: the
    # server's replies were skipped, the change of user is still followed
    pooled = [e for e in manifest if "change_user" in e["template"] and e["queries"] > 8]
    assert pooled
    for e in pooled:
        rec = fast[e["id"]]
        assert rec["client"] == e["client"]
        assert len(rec["change_user"]) == 1
        assert rec["change_user"] == e["expect"]["change_user"]
        assert rec["change_user"][0]["outcome"] in ("ok", "error")


def test_fast_lane_skips_most_frames(generated):
    reader = open_capture(generated)
    engine = Dissector(DissectOptions(), CaptureSummary(path=str(generated)))
    from mysqlwire.capture.decode import decode_tcp

    yielded = 0
    for ts, linktype, data, _iface in reader.records(engine.reasm.fast):
        yielded += 1
        seg = decode_tcp(linktype, data)
        if seg is not None:
            engine.add(ts, seg)
            engine.drain()
    engine.finish()
    meta = json.loads(generated.with_suffix(".meta.json").read_text())
    assert reader.frames_read == meta["frames"]
    assert yielded < meta["frames"] * 0.6  # the result sets were never decoded


def test_pcapng_same_records_and_skipped(generated, tmp_path):
    from mysqlwire.capture.writer import write_with_secrets

    ng = tmp_path / "g.pcapng"
    with open(generated, "rb") as fin, open(ng, "wb") as fout:
        write_with_secrets(fin, fout, b"")
    fast = records(ng)
    assert fast == records(ng, NO_FAST)
    assert [r["user"] for r in fast] == [r["user"] for r in records(generated)]
    reader = open_capture(ng)
    engine = Dissector(DissectOptions(), CaptureSummary(path=str(ng)))
    from mysqlwire.capture.decode import decode_tcp

    yielded = 0
    for ts, linktype, data, _iface in reader.records(engine.reasm.fast):
        yielded += 1
        seg = decode_tcp(linktype, data)
        if seg is not None:
            engine.add(ts, seg)
            engine.drain()
    engine.finish()
    assert reader.format == "pcapng" and yielded < reader.frames_read * 0.6


@pytest.mark.parametrize("pcap", sorted(SAMPLES.glob("*.pcap*")), ids=lambda p: p.name)
def test_lab_samples_same_records(pcap):
    assert records(pcap) == records(pcap, NO_FAST)
