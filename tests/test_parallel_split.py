"""`mysqlwire dissect --jobs N capture.pcap` splits one capture by flow over N
processes: stdout, stderr and the exit status are byte for byte those of
``--jobs 1`` (ids, order, content), also on a truncated capture and on a file
that is not a capture.  mysqlwire.parallel is a library: it imports no
command-line code and raises instead of exiting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mysqlwire.errors import CaptureError
from mysqlwire.parallel import iter_split

REPO = Path(__file__).resolve().parent.parent


def mysqlwire(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from mysqlwire.cli import main; main()", *map(str, args)],
        capture_output=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("split") / "g.pcap"
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "make_capture.py"), "-n", "400", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def same(*args, jobs=(2, 3)) -> subprocess.CompletedProcess:
    one = mysqlwire("dissect", "--jobs", "1", *args)
    for n in jobs:
        par = mysqlwire("dissect", "--jobs", str(n), *args)
        assert par.stdout == one.stdout
        assert par.stderr == one.stderr
        assert par.returncode == one.returncode
    return one


def test_split_jsonl_identical(generated):
    res = same("--format", "jsonl", generated)
    lines = res.stdout.splitlines()
    assert len(lines) == 400 and res.returncode == 1  # wrong passwords in the mix
    assert lines[0].startswith(b'{"schema": "mysqlwire/connection/1"')


def test_split_text_and_packets_identical(generated):
    same("--no-color", generated, jobs=(2,))
    same("--format", "json", "--packets", "--failed", generated, jobs=(2,))


def test_split_truncated_capture_identical(generated, tmp_path):
    cut = tmp_path / "cut.pcap"
    data = generated.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3 + 7])
    res = same("--format", "jsonl", cut, jobs=(2,))
    assert b"truncated record" in res.stderr
    assert 0 < len(res.stdout.splitlines()) < 400


def test_split_not_a_capture(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"hello, this is not a capture\n" * 10)
    res = same("--format", "jsonl", junk, jobs=(2,))
    assert res.returncode == 2 and res.stdout == b""
    assert res.stderr.count(b"\n") == 1 and b"not a pcap" in res.stderr
    with pytest.raises(CaptureError, match="not a pcap"):
        list(iter_split(junk, _opts(), 2, _summary(junk)))


def test_library_module_imports_no_cli():
    code = (
        "import sys, mysqlwire.parallel; "
        "bad = [m for m in sys.modules if m.startswith('mysqlwire.commands') or m == 'click']; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    source = (REPO / "mysqlwire" / "parallel.py").read_text()
    assert "sys.exit" not in source and "commands" not in source.replace("command-line", "")


def _opts():
    from mysqlwire.dissect import DissectOptions

    return DissectOptions()


def _summary(path):
    from mysqlwire.dissect import CaptureSummary

    return CaptureSummary(path=str(path))
