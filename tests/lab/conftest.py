"""Fixtures of the real-traffic lab.

``mariadb`` (session): the running ``MariaDBLab`` (three throwaway servers, see ``mariadb.py``).
``lab_results`` (session): every scenario of ``scenarios.SCENARIOS`` run ONCE under capture, as a
``LabRun`` (the clients' results, captures, truth, timings).
``lab_run`` (session): ``{scenario name: LabCapture(pcap, truth, keylog)}`` - a tuple, so
``pcap, truth, keylog = lab_run["cli_native_wrong"]``; ``truth`` is the scenario's truth.jsonl line
(fields of shared/captures/lab-samples/truth.jsonl + ``expected_code``), ``keylog`` the NSS key log
path for TLS captures that have one, else None. The pcaps, ``<name>.json`` truth lines and
``truth.jsonl`` live in one pytest temp dir (``lab_results.outdir``).

Without the server binaries (or root) the fixtures skip with a reason that names what is missing and
``scripts/lab_setup.sh``; with ``CI`` set they fail instead, since a CI run that skips the real server
is a hole. ``MYSQLWIRE_LAB_LANES`` (1-6, default 6) sets how many scenarios run at once.
"""

from __future__ import annotations

import pytest

from .mariadb import LabUnavailable, MariaDBLab, skip_or_fail
from .scenarios import LabCapture, LabRun, lanes_from_env, run_all

_STATUS: dict = {}


def lab_unavailable(reason: str) -> None:
    _STATUS["unavailable"] = reason
    skip_or_fail(reason)


@pytest.fixture(scope="session")
def mariadb():
    """The running lab servers (``MariaDBLab``); stopped and cleaned up at session end."""
    if "unavailable" in _STATUS:
        lab_unavailable(_STATUS["unavailable"])
    try:
        lab = MariaDBLab()
    except LabUnavailable as e:
        lab_unavailable(str(e))
    try:
        lab.start()
    except LabUnavailable as e:
        lab_unavailable(str(e))
    _STATUS["startup"] = lab.startup_seconds
    _STATUS["describe"] = lab.describe()
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def lab_results(mariadb: MariaDBLab, tmp_path_factory) -> LabRun:
    """Every scenario, run once per session (in parallel lanes)."""
    outdir = tmp_path_factory.mktemp("lab-captures")
    run = run_all(mariadb, outdir, lanes=lanes_from_env())
    _STATUS["run"] = run.seconds
    _STATUS["scenarios"] = len(run.runs)
    _STATUS["outdir"] = str(outdir)
    _STATUS["redone"] = sorted(n for n, r in run.runs.items() if r.attempts > 1)
    return run


@pytest.fixture(scope="session")
def lab_run(lab_results: LabRun) -> dict[str, LabCapture]:
    """{scenario name: LabCapture(pcap path, truth dict, keylog path or None)}."""
    return lab_results.captures()


def pytest_terminal_summary(terminalreporter):
    if not _STATUS:
        return
    tr = terminalreporter
    if "unavailable" in _STATUS:
        tr.write_sep("!", "real-traffic lab NOT RUN", red=True)
        tr.write_line(_STATUS["unavailable"])
        return
    tr.write_sep("-", "real-traffic lab")
    line = f"{_STATUS.get('describe', '')}: start-up {_STATUS.get('startup', 0):.1f}s"
    if "run" in _STATUS:
        line += f", {_STATUS['scenarios']} scenarios in {_STATUS['run']:.1f}s ({_STATUS['outdir']})"
    tr.write_line(line)
    if _STATUS.get("redone"):
        tr.write_line(f"captures redone after the kernel dropped packets: {_STATUS['redone']}")
