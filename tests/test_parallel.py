"""`mysqlwire dissect --jobs N` (mysqlwire.parallel): the same bytes on stdout
and stderr, the same exit status, as the sequential path -- including unusable
and truncated files -- and records_for_file() equal to ``--format jsonl``."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from mysqlwire.dissect import dissect
from mysqlwire.parallel import records_for_file

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "captures" / "lab-samples"
LAB = REPO / "captures" / "lab"

CAPTURES = [
    SAMPLES / "mariadb_pymysql_native_ok.pcap",
    SAMPLES / "mariadb_cli_native_wrong.pcap",
    SAMPLES / "lab_connector_change_user_ok.pcap",
    SAMPLES / "lab_cli_tls_keylog_ok.pcap",
    SAMPLES / "lab_cli_compressed_ok.pcap",
    SAMPLES / "m8emu_pymysql_sha2_fast_ok.pcap",
    SAMPLES / "m8emu_cli_sha2_full_plain.pcap",
    SAMPLES / "lab_mariadb_ed25519_ok.pcap",
    SAMPLES / "mariadb_connector_ed25519.pcap",
]


def mysqlwire(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from mysqlwire.cli import main; main()", *map(str, args)],
        capture_output=True,
        input=stdin,
        timeout=300,
        check=False,
    )


def same_as_sequential(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    seq = mysqlwire("dissect", "--jobs", "1", *args, stdin=stdin)
    par = mysqlwire("dissect", "--jobs", "2", *args, stdin=stdin)
    assert par.stdout == seq.stdout
    assert par.stderr == seq.stderr
    assert par.returncode == seq.returncode
    return par


def test_jsonl_identical_and_in_file_order():
    res = same_as_sequential("--format", "jsonl", *CAPTURES)
    recs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["capture"] for r in recs] == [str(p) for p in CAPTURES]  # one login each
    assert res.returncode == 1  # a wrong password is in the set


def test_json_text_and_packets_identical(tmp_path):
    keys = tmp_path / "keys.log"
    keys.write_bytes((SAMPLES / "lab_cli_tls_keylog_ok.keys").read_bytes())
    res = same_as_sequential("--format", "json", "--keylog", keys, "--packets", *CAPTURES)
    recs = json.loads(res.stdout)
    tls = next(r for r in recs if r["capture"].endswith("lab_cli_tls_keylog_ok.pcap"))
    assert tls["user"] == "secure" and tls["tls_status"] == "ok"  # KeyLog went to a worker
    same_as_sequential("--no-color", *CAPTURES)  # text blocks + footer from the summaries
    same_as_sequential("--format", "jsonl", "--failed", "--jobs", "3", *CAPTURES)


def test_many_files_more_than_jobs():
    files = sorted(LAB.glob("*.pcap"))[:24]
    assert len(files) >= 10
    res = same_as_sequential("--format", "jsonl", *files)
    assert res.stdout.count(b"\n") >= len(files)


def test_missing_file_in_the_middle_is_reported_in_turn(tmp_path):
    res = same_as_sequential(
        "--format", "jsonl", CAPTURES[0], CAPTURES[1], tmp_path / "nope.pcap", CAPTURES[2]
    )
    assert res.returncode == 2
    assert res.stderr.decode().count("\n") == 1 and b"no such file" in res.stderr
    assert res.stdout.count(b"\n") == 2  # the two captures before it


def test_not_a_capture_and_truncated(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a capture\n")
    res = same_as_sequential("--format", "jsonl", CAPTURES[0], junk, CAPTURES[1])
    assert res.returncode == 2 and res.stdout.count(b"\n") == 1
    assert res.stderr.startswith(b"mysqlwire: error:")

    data = (SAMPLES / "lab_cli_dual_native_ok.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    res = same_as_sequential("--format", "jsonl", CAPTURES[0], cut, CAPTURES[2])
    assert b"truncated" in res.stderr and res.stdout.count(b"\n") == 3


def test_stdin_among_files():
    data = CAPTURES[3].read_bytes()
    res = same_as_sequential("--format", "jsonl", CAPTURES[0], "-", CAPTURES[1], stdin=data)
    assert res.stdout.count(b"\n") == 3


def test_connections_pickle_round_trip():
    for path in CAPTURES:
        for conn in dissect(path, with_packets=True):
            back = pickle.loads(pickle.dumps(conn))
            assert back.to_record(with_packets=True) == conn.to_record(with_packets=True)
            assert back.exchanges == conn.exchanges


def test_records_for_file_equals_jsonl():
    for path in CAPTURES[:4]:
        res = mysqlwire("dissect", "--format", "jsonl", path)
        expected = [json.loads(line) for line in res.stdout.splitlines()]
        assert records_for_file(path) == expected
    res = mysqlwire("dissect", "--format", "jsonl", "--packets", CAPTURES[2])
    expected = [json.loads(line) for line in res.stdout.splitlines()]
    assert records_for_file(CAPTURES[2], with_packets=True) == expected


def test_records_for_file_errors(tmp_path):
    from mysqlwire.errors import CaptureError

    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"hello")
    with pytest.raises(CaptureError):
        records_for_file(junk)
    (rec,) = records_for_file(junk, errors="record")
    assert rec["schema"] == "mysqlwire/capture-error/1" and rec["connections_before"] == 0
    data = (SAMPLES / "lab_cli_dual_native_ok.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    recs = records_for_file(cut, errors="record")
    assert recs[-1]["schema"] == "mysqlwire/capture-error/1" and "truncated" in recs[-1]["error"]
    assert recs[0]["user"] == "dual"
    assert records_for_file(cut)[0]["user"] == "dual"  # default: like dissect, warn-free


def _iter_files(paths, jobs=2):
    from mysqlwire.commands.common import iter_all
    from mysqlwire.dissect import DissectOptions
    from mysqlwire.parallel import iter_parallel

    summaries: list = []
    conns = list(
        iter_parallel(
            [str(p) for p in paths], DissectOptions(), jobs, summaries, sequential=iter_all
        )
    )
    return [c.to_record() for c in conns], [s.path for s in summaries]


def test_a_worker_that_dies_leaves_its_file_to_the_parent(monkeypatch):
    """A worker killed mid-file (out of memory, a signal): that file is
    dissected by the parent instead, the output the same and in order."""
    import os

    from mysqlwire import parallel

    ref, ref_paths = _iter_files(CAPTURES[:5], jobs=1)
    real = parallel._dissect_to_spool

    def dying(task):
        if task[1] == str(CAPTURES[2]):
            os._exit(9)  # (in the forked worker)
        return real(task)

    monkeypatch.setattr(parallel, "_dissect_to_spool", dying)
    got, paths = _iter_files(CAPTURES[:5], jobs=2)
    assert got == ref and paths == ref_paths


def test_stopping_at_a_bad_capture_never_hangs(tmp_path):
    """The run stops at an unusable capture while the other workers are still
    busy; with a multiprocessing.Pool its terminate() hung about once in 35
    such runs.  Twelve runs here, each bounded."""
    junk = tmp_path / "notes.txt"
    junk.write_text("not a capture\n")
    big = [CAPTURES[0], junk, *CAPTURES[1:]]
    for _ in range(12):
        res = subprocess.run(
            [sys.executable, "-c", "from mysqlwire.cli import main; main()", "dissect"]
            + ["--jobs", "3", "--format", "jsonl", *map(str, big)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert res.returncode == 2 and res.stdout.count(b"\n") == 1
        assert res.stderr.startswith(b"mysqlwire: error:")
