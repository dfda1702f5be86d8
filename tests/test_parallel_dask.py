"""The docs/dask.md recipe: ``dask.bag.from_sequence(paths).map(records_for_file)
.flatten()`` on a local cluster of two worker processes gives the records of
every capture, in order, exactly as ``records_for_file`` (= ``dissect --format
jsonl``) gives them one file at a time."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from mysqlwire.parallel import records_for_file

db = pytest.importorskip(
    "dask.bag",
    reason="dask is not installed: pip install 'dask[bag]' distributed (the test extra)",
)

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "captures" / "lab-samples"
PATHS = [
    str(SAMPLES / name)
    for name in (
        "mariadb_pymysql_native_ok.pcap",
        "mariadb_cli_native_wrong.pcap",
        "lab_connector_change_user_ok.pcap",
        "m8emu_pymysql_sha2_fast_ok.pcap",
        "lab_mariadb_ed25519_ok.pcap",
        "lab_cli_compressed_ok.pcap",
    )
]


def expected(**opts) -> list[dict]:
    return [rec for path in PATHS for rec in records_for_file(path, **opts)]


def test_bag_on_a_local_cluster():
    distributed = pytest.importorskip(
        "dask.distributed",
        reason="dask.distributed is not installed: pip install distributed",
    )
    bag = db.from_sequence(PATHS, npartitions=3).map(records_for_file).flatten()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        got = bag.compute()
    assert got == expected()
    assert [r["user"] for r in got[:3]] == ["app", "app", "webapp"]


def test_bag_with_the_multiprocessing_scheduler_and_options(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture")
    per_file = functools.partial(records_for_file, with_packets=True, errors="record")
    bag = db.from_sequence([*PATHS, str(junk)], npartitions=2).map(per_file).flatten()
    got = bag.compute(scheduler="processes", num_workers=2)
    assert got[:-1] == expected(with_packets=True)
    assert got[-1]["schema"] == "mysqlwire/capture-error/1" and got[-1]["capture"] == str(junk)
