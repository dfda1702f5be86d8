"""Shared pytest fixtures.

``../shared`` (public captures, lab samples, docs) sits beside the checkout in
CI. Tests that need it use the ``shared_dir`` fixture (or ``SHARED``) and skip
with a clear message when it is absent; they never copy public captures into
the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MYSQLWIRE_SHARED", REPO.parent / "shared")).resolve()
PUBLIC = SHARED / "captures" / "public"
LAB_SAMPLES = SHARED / "captures" / "lab-samples"
DOCS = SHARED / "docs"

SHARED_MISSING = (
    f"../shared not found at {SHARED} (set MYSQLWIRE_SHARED); "
    "this test reads third-party captures / docs in place and cannot run without them"
)


def require_shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(SHARED_MISSING)
    return SHARED


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()


def public_captures() -> list[Path]:
    """Every pcap/pcapng under ../shared/captures/public (empty list if absent)."""
    if not PUBLIC.is_dir():
        return []
    return sorted(p for p in PUBLIC.rglob("*") if p.suffix in (".pcap", ".pcapng"))


def lab_sample_captures() -> list[Path]:
    if not LAB_SAMPLES.is_dir():
        return []
    return sorted(LAB_SAMPLES.glob("*.pcap"))


# Under CI (``CI`` set) a skip is a hole, not a pass: a missing tshark, a missing ../shared or a
# missing client library turns every test that needed it into a failure.  The only skips allowed
# there are environment facts that no install can change, listed here by their reason's prefix.
CI = bool(os.environ.get("CI"))
CI_ALLOWED_SKIPS = (
    "OpenSSL could not run",  # the local OpenSSL build refuses a legacy suite (e.g. 3DES)
    "OpenSSL did not negotiate",
    "local OpenSSL cannot negotiate",  # e.g. DES-CBC3-SHA: removed from the system's OpenSSL
)


def _skip_reason(report) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2])
    return str(lr)


def _ci_refuses(report) -> bool:
    if not (CI and report.skipped) or hasattr(report, "wasxfail"):
        return False
    reason = _skip_reason(report).removeprefix("Skipped: ")
    return not reason.startswith(CI_ALLOWED_SKIPS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _ci_refuses(report):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (a skip is a failure there): {_skip_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _ci_refuses(report):
        report.outcome = "failed"
        report.longrepr = (
            f"module skipped under CI (a skip is a failure there): {_skip_reason(report)}"
        )


LAB_DIR = Path(__file__).resolve().parent / "lab"


def pytest_collection_modifyitems(config, items):
    """Every real-traffic lab test runs in one xdist group (one worker starts the
    MariaDB lab once; ``pytest -n 2 --dist loadgroup`` spreads the rest).

    A test parametrized over ../shared's captures has no parameters when
    ../shared is absent; say why instead of pytest's "got empty parameter set"."""
    for item in items:
        if LAB_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.xdist_group("lab"))
    if SHARED.is_dir():
        return
    for item in items:
        for mark in item.iter_markers(name="skip"):
            if str(mark.kwargs.get("reason", "")).startswith("got empty parameter set"):
                item.add_marker(pytest.mark.skip(reason=SHARED_MISSING), append=False)
                break
