"""Streamed input (``tcpdump -U -w - | mysqlwire dissect -``): each connection is printed as
soon as its login ends, not when its TCP connection closes or the input ends."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from mysqlwire.capture import FIN, decode_tcp, open_capture
from mysqlwire.capture.writer import write_pcap

REPO = Path(__file__).resolve().parent.parent
CASES = [
    ("captures/lab-samples/mariadb_cli_native_wrong.pcap", "error"),
    ("captures/lab-samples/mariadb_pymysql_native_ok.pcap", "ok"),
]


def _frames(path: Path):
    with open_capture(path) as r:
        linktype = None
        frames = []
        for ts, lt, data, _ in r.records():
            linktype = lt
            frames.append((ts, bytes(data)))
    return linktype, frames


def _first_fin(linktype, frames) -> int:
    for i, (_, data) in enumerate(frames):
        seg = decode_tcp(linktype, data)
        if seg is not None and seg.flags & FIN:
            return i
    return len(frames)


@pytest.mark.parametrize("command", ["dissect", "replay", "diagnose"])
@pytest.mark.parametrize("rel,outcome", CASES)
def test_record_printed_when_login_ends(tmp_path, rel, outcome, command):
    linktype, frames = _frames(REPO / rel)
    fin = _first_fin(linktype, frames)
    assert fin < len(frames)
    header = tmp_path / "h.pcap"
    with open(header, "wb") as f:
        write_pcap(f, linktype, [])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mysqlwire", command, "--format", "jsonl", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        proc.stdin.write(header.read_bytes())
        proc.stdin.flush()
        printed_at = None
        for i, frame in enumerate(frames[:fin]):
            buf = tmp_path / "f.pcap"
            with open(buf, "wb") as f:
                write_pcap(f, linktype, [frame])
            proc.stdin.write(buf.read_bytes()[24:])
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 0.5 if i < fin - 1 else 10)
            if ready:
                printed_at = i
                break
        assert printed_at is not None, "nothing printed before the connection closed"
        rec = json.loads(proc.stdout.readline())
        assert rec["outcome"] == outcome
        assert rec["client"] and rec["server"]
    finally:
        proc.stdin.close()
        rest = proc.stdout.read()
        err = proc.stderr.read().decode()
        proc.wait(timeout=30)
    assert "Traceback" not in err
    # the connection is not printed a second time when it closes: nothing changed
    assert rest.strip() == b"", rest
    # dissect/diagnose: a failed login is exit 1; replay without a password verifies nothing: 0
    assert proc.returncode == (1 if outcome == "error" and command != "replay" else 0)


def test_regular_file_on_stdin_is_not_streamed(tmp_path):
    """`< file` is not a stream: the output is exactly the file's."""
    path = REPO / CASES[0][0]
    with open(path, "rb") as fh:
        a = subprocess.run(
            [sys.executable, "-m", "mysqlwire", "dissect", "--format", "jsonl", "-"],
            stdin=fh,
            capture_output=True,
            timeout=60,
        )
    b = subprocess.run(
        [sys.executable, "-m", "mysqlwire", "dissect", "--format", "jsonl", str(path)],
        capture_output=True,
        timeout=60,
    )
    strip = [
        {k: v for k, v in json.loads(x).items() if k != "capture"} for x in a.stdout.splitlines()
    ]
    want = [
        {k: v for k, v in json.loads(x).items() if k != "capture"} for x in b.stdout.splitlines()
    ]
    assert strip == want and strip
