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


def pytest_collection_modifyitems(config, items):
    """A test parametrized over ../shared's captures has no parameters when
    ../shared is absent; say why instead of pytest's "got empty parameter set"."""
    if SHARED.is_dir():
        return
    for item in items:
        for mark in item.iter_markers(name="skip"):
            if str(mark.kwargs.get("reason", "")).startswith("got empty parameter set"):
                item.add_marker(pytest.mark.skip(reason=SHARED_MISSING), append=False)
                break
