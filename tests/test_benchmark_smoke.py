"""benchmarks/make_capture.py on a tiny N: deterministic, and the capture
dissects to exactly the connections its manifest promises (each one the record
of the lab login it was copied from).  No timing here: benchmarks/run.py
measures, tests never assert speed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mysqlwire.dissect import dissect

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "make_capture.py"
N = 60
VARIABLE = ("capture", "id", "client", "server", "first_ts", "last_ts")


def generate(out: Path, seed: int = 1) -> dict:
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "-n", str(N), "-o", str(out), "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(out.with_suffix(".meta.json").read_text())


def test_generated_capture_dissects_to_its_manifest(tmp_path):
    pcap = tmp_path / "small.pcap"
    meta = generate(pcap)
    assert meta["connections"] == N and pcap.stat().st_size == meta["bytes"]
    manifest = [json.loads(line) for line in pcap.with_suffix(".manifest.jsonl").open()]
    assert len(manifest) == N

    conns = dissect(pcap)
    assert len(conns) == N
    assert len({c.client for c in conns}) == N  # distinct client endpoints
    for conn, entry in zip(conns, manifest, strict=True):
        assert conn.client == entry["client"] and conn.server == entry["server"]
        rec = {k: v for k, v in conn.to_record().items() if k not in VARIABLE}
        assert rec == entry["expect"], entry["template"]

    outcomes = Counter(c.outcome for c in conns)
    assert dict(outcomes) == meta["outcomes"]
    assert outcomes["ok"] and outcomes["ok"] < N  # successes and failures
    assert len({c.final_plugin for c in conns}) >= 3
    # command-phase traffic is most of the bytes
    assert meta["command_phase_share_of_payload"] > 0.8
    assert sum(e["queries"] for e in manifest) > N
    # timestamps interleave: connections overlap in time
    spans = sorted((c.first_ts, c.last_ts) for c in conns)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
    secrets = json.loads(pcap.with_suffix(".secrets.json").read_text())
    assert all(c.user in secrets for c in conns if c.user)


def test_generation_is_deterministic(tmp_path):
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    generate(a, seed=7)
    generate(b, seed=7)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)]
    assert digest[0] == digest[1]
