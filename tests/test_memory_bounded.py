"""``report`` and ``diagnose`` on a named capture hold memory bounded per
connection (#19 item 4, #20's report case): they never keep every connection
(tests/test_memory_flat.py measures the same with tracemalloc).  Measured as the peak RSS of the child
process (``os.wait4``), on two generated captures of 500 and 4,000 logins:
what the command adds per connection on top of ``dissect`` (whose reassembler
keeps ~1.6 KB per flow of its own) must stay far below what keeping each
connection costs (~6 KB before: 4-6 KB over dissect), and the peak below
300 MB.  No timing assertion.
Figures at 100,000 connections: docs/limits.md."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import REPO

SIZES = (500, 4000)
PER_CONNECTION_MAX = 2048  # bytes of peak RSS per added connection, over dissect's


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    d = tmp_path_factory.mktemp("logins")
    out = {}
    for n in SIZES:
        path = d / f"l{n}.pcap"
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "make_logins.py"),
                "-n",
                str(n),
                "-o",
                str(path),
            ],
            check=True,
            capture_output=True,
        )
        out[n] = path
    return out


def _peak_rss(args: list[str], tmp_path) -> tuple[int, int]:
    """(exit status, peak RSS in bytes) of ``mysqlwire ARGS`` in a child process."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mysqlwire", *args], stdout=out, stderr=err, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert b"Traceback" not in (tmp_path / "err").read_bytes()
    return proc.returncode, usage.ru_maxrss * 1024  # Linux: kilobytes


@pytest.mark.parametrize(
    "command",
    [
        ["report", "--ladders", "none", "-o", "{out}"],
        ["diagnose", "--format", "jsonl", "--all"],
    ],
    ids=["report", "diagnose"],
)
def test_peak_memory_grows_little_per_connection(captures, tmp_path, command):
    peaks, base = {}, {}
    for n, path in captures.items():
        args = [a.replace("{out}", str(tmp_path / "r.html")) for a in command]
        status, peaks[n] = _peak_rss([*args, str(path)], tmp_path)
        assert status == 1  # the generated logins include failed ones
        assert peaks[n] < 300 * 1024 * 1024, (n, peaks[n])
        status, base[n] = _peak_rss(["dissect", "--format", "jsonl", str(path)], tmp_path)
        assert status == 1
    small, large = SIZES
    per_conn = (peaks[large] - peaks[small]) / (large - small)
    dissect_per_conn = (base[large] - base[small]) / (large - small)
    assert per_conn - dissect_per_conn < PER_CONNECTION_MAX, (peaks, base)
