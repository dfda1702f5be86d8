"""With ``CI`` set a skip is a failure (tests/conftest.py): a CI run cannot go quietly green
because tshark, ../shared or a client library is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BODY = """
import pytest

def test_needs_a_tool():
    pytest.skip("tshark not installed")

def test_fine():
    assert True
"""

MODULE_SKIP = """
import pytest
pytest.importorskip("a_client_library_that_is_not_installed_anywhere")

def test_never_runs():
    assert True
"""


def _run(tmp_path: Path, body: str, ci: bool) -> subprocess.CompletedProcess:
    d = tmp_path / "t"
    d.mkdir(exist_ok=True)
    (d / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (d / "test_x.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(d)],
        capture_output=True,
        text=True,
        env=env,
        cwd=d,
        timeout=120,
    )


def test_skip_is_failure_under_ci(tmp_path):
    r = _run(tmp_path, BODY, ci=True)
    assert r.returncode == 1, r.stdout
    assert "1 failed, 1 passed" in r.stdout
    assert "tshark not installed" in r.stdout


def test_skip_stays_skip_outside_ci(tmp_path):
    r = _run(tmp_path, BODY, ci=False)
    assert r.returncode == 0, r.stdout
    assert "1 passed, 1 skipped" in r.stdout


def test_missing_library_at_import_fails_under_ci(tmp_path):
    r = _run(tmp_path, MODULE_SKIP, ci=True)
    assert r.returncode != 0, r.stdout
    assert "a_client_library_that_is_not_installed_anywhere" in r.stdout
