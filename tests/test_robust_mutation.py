"""Damaged captures: every lab sample truncated at many offsets, with random
bit flips in the pcap bytes and in the TCP payload bytes, and a
multi-connection capture truncated after connection k.

``dissect`` / ``replay`` / ``diagnose`` / ``redact`` (in-process, CliRunner; a few real
subprocess runs at the end) must exit 0, 1 or 2, never show a traceback, say
what is wrong on stderr in one ``mysqlwire: ...`` line per problem, and still
report the connections parsed before the damage.

Mutations are drawn from a per-capture seeded generator, so a failure names a
reproducible (capture, mutation) pair.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_robust_support import (
    REPO,
    LabCapture,
    lab_samples,
    merge_pcaps,
    pcap_records,
    run_cli,
)

SAMPLES = lab_samples()
DAMAGE = "connections before the damage are reported"  # the truncation warning
IDS = [c.path.stem for c in SAMPLES]

# fields that a prefix of a capture can only leave unknown, never change
STABLE = (
    "client",
    "server",
    "protocol_version",
    "server_version",
    "thread_id",
    "server_capabilities",
    "greeting_plugin",
    "client_capabilities",
    "client_plugin",
    "user",
    "database",
    "connect_attrs",
)


def _secret_opts(cap: LabCapture, tmp: Path) -> list[str]:
    pw = tmp / "pw.txt"
    pw.write_text(cap.truth.get("account_password") or cap.truth.get("password") or "")
    opts = ["--password-file", str(pw)]
    if cap.rsa_key is not None:
        opts += ["--rsa-key", str(cap.rsa_key)]
    return opts


def check_run(run, what: str) -> None:
    """The contract for damaged input."""
    assert run.exception is None, f"{what}: {run.exception!r}"
    assert run.code in (0, 1, 2, 3), f"{what}: exit {run.code}"
    out = run.stdout + run.stderr
    assert "Traceback" not in out, what
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert all(ln.startswith("mysqlwire: ") for ln in lines), f"{what}: {lines}"
    if run.code == 2:
        errors = [ln for ln in lines if ln.startswith("mysqlwire: error: ")]
        assert len(errors) == 1, f"{what}: {lines}"
    if run.code == 3:  # nothing examined: said in one line
        assert any("no MySQL connection found" in ln for ln in lines), f"{what}: {lines}"


def _records(run) -> list[dict]:
    return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]


_ORIGINAL: dict[Path, list[dict]] = {}


def original(cap: LabCapture) -> list[dict]:
    if cap.path not in _ORIGINAL:
        run = run_cli(["dissect", "--format", "jsonl", *cap.options(), cap.path])
        check_run(run, cap.name)
        _ORIGINAL[cap.path] = _records(run)
    return _ORIGINAL[cap.path]


def _all_commands(cap, path, tmp, what):
    check_run(run_cli(["dissect", "--packets", *cap.options(), path]), f"{what} dissect text")
    check_run(
        run_cli(["replay", "--format", "jsonl", *_secret_opts(cap, tmp), *cap.options(), path]),
        f"{what} replay",
    )
    check_run(
        run_cli(["diagnose", "--all", *_secret_opts(cap, tmp), *cap.options(), path]),
        f"{what} diagnose",
    )
    out = tmp / "redacted.pcap"
    run = run_cli(["redact", path, "-o", out, "--scrambles", *cap.options()[:2]])
    check_run(run, f"{what} redact")
    if run.code == 0:
        check_run(run_cli(["dissect", *cap.options(), out]), f"{what} dissect of the redacted copy")


@pytest.mark.parametrize("cap", SAMPLES, ids=IDS)
def test_truncated_everywhere(cap, tmp_path):
    blob = cap.path.read_bytes()
    recs = pcap_records(blob)
    port = cap.truth.get("port") or 3306
    greeting_end = next(r.end for r in recs if r.sport == port and r.payload)
    full = original(cap)
    rng = random.Random(cap.path.name)
    cuts = {0, 5, 23, 24, 40, greeting_end - 1, greeting_end, len(blob) - 1}
    cuts |= {rng.randrange(24, len(blob)) for _ in range(14)}
    cuts |= {rng.choice(recs).end for _ in range(3)}
    for i, cut in enumerate(sorted(cuts)):
        path = tmp_path / "cut.pcap"
        path.write_bytes(blob[:cut])
        what = f"{cap.name} cut at {cut}/{len(blob)}"
        run = run_cli(["dissect", "--format", "jsonl", *cap.options(), path])
        check_run(run, what)
        if cut < 24:
            assert run.code == 2 and run.stdout == "", what
            continue
        # 3: cut before any MySQL byte, nothing examined
        assert run.code in (0, 1) or (run.code == 3 and not run.stdout), f"{what}: {run.stderr}"
        on_boundary = cut == 24 or any(r.end == cut for r in recs)
        # cut inside a record: one line says so (other warnings may come too)
        assert (DAMAGE in run.stderr) == (not on_boundary), f"{what}: {run.stderr!r}"
        got = _records(run)
        if cut >= greeting_end:
            # the connection before the damage is still reported, greeting and all
            assert len(got) == len(full) == 1, what
            assert got[0]["server_version"] == full[0]["server_version"], what
        for rec in got:
            orig = full[0] if full else {}
            for key in STABLE:
                assert rec[key] is None or rec[key] == orig.get(key), f"{what}: {key}"
        if i % 3 == 1:
            _all_commands(cap, path, tmp_path, what)


def _flip_bits(blob: bytes, rng: random.Random, positions: list[int], n: int) -> bytes:
    b = bytearray(blob)
    for _ in range(n):
        b[rng.choice(positions)] ^= 1 << rng.randrange(8)
    return bytes(b)


@pytest.mark.parametrize("cap", SAMPLES, ids=IDS)
def test_bit_flips_in_pcap_bytes(cap, tmp_path):
    """Anywhere after the file header: record headers (lengths, timestamps),
    link/IP/TCP headers, payload."""
    blob = cap.path.read_bytes()
    rng = random.Random("pcap" + cap.path.name)
    positions = list(range(24, len(blob)))
    for i in range(10):
        n = rng.choice([1, 2, 8, 32])
        path = tmp_path / "flip.pcap"
        path.write_bytes(_flip_bits(blob, rng, positions, n))
        what = f"{cap.name} pcap flip #{i} ({n} bits)"
        check_run(run_cli(["dissect", "--format", "jsonl", *cap.options(), path]), what)
        if i % 4 == 0:
            _all_commands(cap, path, tmp_path, what)


@pytest.mark.parametrize("cap", SAMPLES, ids=IDS)
def test_bit_flips_in_tcp_payload(cap, tmp_path):
    """Only MySQL/TLS bytes change: the TCP structure is intact, so the same
    connections (same endpoints) must be reported, with exit 0 or 1."""
    blob = cap.path.read_bytes()
    positions = [p for r in pcap_records(blob) if r.payload for p in range(*r.payload)]
    rng = random.Random("payload" + cap.path.name)
    full = original(cap)
    for i in range(10):
        n = rng.choice([1, 1, 3, 10])
        path = tmp_path / "pflip.pcap"
        path.write_bytes(_flip_bits(blob, rng, positions, n))
        what = f"{cap.name} payload flip #{i} ({n} bits)"
        run = run_cli(["dissect", "--format", "jsonl", *cap.options(), path])
        check_run(run, what)
        assert run.code in (0, 1), f"{what}: {run.stderr}"
        got = _records(run)
        assert [(r["client"], r["server"]) for r in got] == [
            (r["client"], r["server"]) for r in full
        ], what
        if i % 4 == 0:
            _all_commands(cap, path, tmp_path, what)


# --- several connections ---------------------------------------------------------------

MULTI = [
    c
    for c in SAMPLES
    if (c.truth.get("port") or 3306) == 3306 and not c.truth.get("tls") and "dual" not in c.name
][:8]


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi")
    path = tmp / "multi.pcap"
    ends = merge_pcaps([c.path for c in MULTI], path)
    run = run_cli(["dissect", "--format", "jsonl", path])
    check_run(run, "merged")
    recs = _records(run)
    assert len(recs) == len(MULTI)
    return path, ends, recs


def _strip(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "capture"}


def test_multi_connection_truncated_after_connection_k(multi, tmp_path):
    path, ends, full = multi
    blob = path.read_bytes()
    for k in range(1, len(ends)):
        for cut, on_boundary in ((ends[k - 1], True), ((ends[k - 1] + ends[k]) // 2 + 3, False)):
            trunc = tmp_path / "trunc.pcap"
            trunc.write_bytes(blob[:cut])
            run = run_cli(["dissect", "--format", "jsonl", trunc])
            what = f"merged cut at {cut} (after connection {k})"
            check_run(run, what)
            got = _records(run)
            # the first k connections, exactly as in the whole capture
            assert [_strip(r) for r in got[:k]] == [_strip(r) for r in full[:k]], what
            assert len(got) == (k if on_boundary else k + 1), what
            assert (DAMAGE in run.stderr) == (not on_boundary), what


def test_multi_connection_payload_flip_touches_one_connection(multi, tmp_path):
    path, ends, full = multi
    blob = path.read_bytes()
    recs = pcap_records(blob)
    rng = random.Random(7)
    starts = [24, *ends[:-1]]
    for j in range(len(ends)):
        inside = [
            p
            for r in recs
            if r.payload and starts[j] <= r.offset < ends[j]
            for p in range(*r.payload)
        ]
        flipped = tmp_path / "flip.pcap"
        flipped.write_bytes(_flip_bits(blob, rng, inside, 3))
        run = run_cli(["dissect", "--format", "jsonl", flipped])
        check_run(run, f"merged flip in connection {j}")
        got = _records(run)
        assert len(got) == len(full)
        for i, (a, b) in enumerate(zip(got, full, strict=True)):
            if i != j:
                assert _strip(a) == _strip(b), f"flip in {j} changed connection {i}"


# --- real processes ---------------------------------------------------------------------


def _mysqlwire(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from mysqlwire.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_real_processes_on_damaged_input(multi, tmp_path):
    path, ends, full = multi
    trunc = tmp_path / "trunc.pcap"
    trunc.write_bytes(path.read_bytes()[: ends[2] + 50])
    pw = tmp_path / "pw"
    pw.write_text("Tr0ub4dor&3")
    for args in (
        ["dissect", "--format", "jsonl", trunc],
        ["replay", "--format", "jsonl", "--password-file", pw, trunc],
        ["diagnose", "--all", "--format", "jsonl", trunc],
    ):
        proc = _mysqlwire(*args)
        assert proc.returncode in (0, 1), proc.stderr
        assert "Traceback" not in proc.stderr
        (line,) = proc.stderr.splitlines()
        assert line.startswith("mysqlwire: warning: ") and DAMAGE in line, line
        got = [json.loads(x) for x in proc.stdout.splitlines()]
        assert [r["client"] for r in got[:3]] == [r["client"] for r in full[:3]]
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    for cmd in ("dissect", "replay", "diagnose"):
        proc = _mysqlwire(cmd, junk)
        assert proc.returncode == 2 and proc.stdout == ""
        (line,) = proc.stderr.splitlines()
        assert line.startswith("mysqlwire: error: ") and "not a pcap/pcapng file" in line
