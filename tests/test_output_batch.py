"""stdout is written in batches (commands.common.StdoutBatch): with
PYTHONUNBUFFERED every write is a system call, one per record before; the
bytes, and their order against stderr, stay those of a line-by-line write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "captures" / "lab-samples"

_COUNT = """
import sys
from mysqlwire.cli import main

class Counting:
    def __init__(self, out):
        self.out, self.writes = out, 0
    def write(self, text):
        self.writes += 1
        return self.out.write(text)
    def __getattr__(self, name):
        return getattr(self.out, name)

counting = sys.stdout = Counting(sys.stdout)
sys.argv = ["mysqlwire", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.__stderr__.write(f"writes={counting.writes}\\n")
"""


def _captures(n: int) -> list[str]:
    return [str(p) for p in sorted(SAMPLES.glob("*.pcap"))[:n]]


def test_records_are_written_in_a_few_writes():
    caps = _captures(30)
    for fmt in ("jsonl", "json"):
        res = subprocess.run(
            [sys.executable, "-c", _COUNT, "dissect", "--format", fmt, *caps],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            check=False,
        )
        writes = int(res.stderr.rsplit("writes=", 1)[1])
        records = res.stdout.count('"schema"')
        assert records >= 30
        # one write per 64 KiB (the records are ~2 KB): not one per record
        assert writes <= len(res.stdout) // 65536 + 2, (fmt, writes, records)
        seq = subprocess.run(
            [sys.executable, "-m", "mysqlwire", "dissect", "--format", fmt, *caps],
            capture_output=True,
            text=True,
            check=False,
        )
        assert res.stdout == seq.stdout


def _merged(caps: list[str]) -> subprocess.CompletedProcess:
    """``dissect --format jsonl`` with stdout and stderr on one pipe, unbuffered."""
    return subprocess.run(
        [sys.executable, "-m", "mysqlwire", "dissect", "--format", "jsonl", *caps],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        check=False,
    )


def test_a_warning_comes_after_the_records_before_it(tmp_path):
    """A truncated capture among others: its warning follows its records on a
    shared stdout/stderr, as with line-by-line writes."""
    data = (SAMPLES / "lab_cli_dual_native_ok.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    caps = [*_captures(3), str(cut), *_captures(6)[3:]]
    res = _merged(caps)
    lines = res.stdout.splitlines()
    warning = next(i for i, x in enumerate(lines) if x.startswith("mysqlwire: warning:"))
    before = [x for x in lines[:warning] if x.startswith("{")]
    after = [x for x in lines[warning + 1 :] if x.startswith("{")]
    assert str(cut) in lines[warning]
    assert len(before) >= 4 and str(cut) in before[-1]  # the cut capture's records first
    assert len(after) == 3


def test_an_error_midway_keeps_the_records_before_it(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a capture\n")
    caps = [*_captures(3), str(junk), *_captures(5)[3:]]
    res = _merged(caps)
    lines = res.stdout.splitlines()
    assert res.returncode == 2
    assert len(lines) == 4 and lines[-1].startswith("mysqlwire: error:")
    assert all(x.startswith("{") for x in lines[:3])
