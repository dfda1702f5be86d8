"""Every notebook in notebooks/ runs top to bottom (nbclient, kernel python3) on
the bundled captures, without an error, and never shows a captured account's
password in its outputs.

The executed copies are written to ``out/notebooks/`` (gitignored) so people can
open them with their outputs.  When the ``python3`` kernel spec is missing the
test installs it for the current interpreter (``python -m ipykernel install
--user``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
OUT = REPO / "out" / "notebooks"
KERNEL = "python3"
TIMEOUT = 120  # per cell


def _secrets() -> set[str]:
    """Every password of the bundled truth files (long enough to be a meaningful search)."""
    out: set[str] = set()
    for truth in (REPO / "captures").glob("*/truth.jsonl"):
        for line in truth.read_text().splitlines():
            if not line.strip():
                continue
            t = json.loads(line)
            entries = [t] + ([t["change_user"]] if isinstance(t.get("change_user"), dict) else [])
            for e in entries:
                for key in ("password", "account_password"):
                    pw = e.get(key)
                    if isinstance(pw, str) and len(pw) >= 6:
                        out.add(pw)
    return out


@pytest.fixture(scope="module")
def kernel() -> str:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--user", "--name", KERNEL],
            check=True,
            capture_output=True,
        )
    return KERNEL


def test_there_are_at_least_three_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert len(NOTEBOOKS) >= 3
    assert {
        "01-tour.ipynb",
        "02-why-did-this-login-fail.ipynb",
        "03-plugin-playground.ipynb",
    } <= names


def _execute(path: Path, kernel: str):
    """Run one notebook; returns (executed notebook, exception or None)."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=TIMEOUT,
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
    )
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    except Exception as exc:  # reported by the test of that notebook
        return nb, exc
    return nb, None


@pytest.fixture(scope="module")
def executed(kernel) -> dict[str, tuple]:
    """Every notebook executed once, in parallel (one kernel each): the suite
    pays for the slowest notebook, not for the sum."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(len(NOTEBOOKS), 1)) as pool:
        futures = {p.name: pool.submit(_execute, p, kernel) for p in NOTEBOOKS}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        f"{path.name}: clear outputs before committing"
    )
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, executed):
    nb, exc = executed[path.name]
    if exc is not None:
        raise exc
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", out
            if out.get("name") == "stderr":
                # warnings are tolerated, tracebacks are not
                assert "Traceback" not in out.get("text", ""), out["text"]
            text.append(json.dumps(out))
    blob = "\n".join(text)
    # A count, never the list: pytest prints the operands of a failing assert.
    n_leaked = sum(1 for pw in _secrets() if pw in blob or json.dumps(pw)[1:-1] in blob)
    assert n_leaked == 0, f"{path.name}: truth-file password(s) appear in the outputs"

    OUT.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, OUT / path.name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_starts_with_one_cell_naming_the_capture(path: Path):
    """The first cell names the capture to explore (a bundled one, which
    exists); the lab helpers live in notebooks/labtools.py, not in the notebook."""
    import ast

    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code"
    tree = ast.parse(first.source)
    assigned = {
        t.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert set(assigned) == {"CAPTURE", "KEYLOG"}
    capture = ast.literal_eval(assigned["CAPTURE"])
    assert (REPO / capture).is_file(), capture
    assert all("CAPTURE =" not in c.source for c in nb.cells[1:] if c.cell_type == "code")
    uses = [c.source for c in nb.cells[1:] if c.cell_type == "code" and "CAPTURE" in c.source]
    assert uses, "the capture named at the top is never used"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for helper in ("def truth_lines", "def secrets_for", "def rsa_keys", "ROOT = "):
        assert helper not in code, helper


def test_notebook_extra_and_readme_line():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    extra = " ".join(meta["project"]["optional-dependencies"]["notebook"])
    for dep in ("jupyter", "pandas", "matplotlib"):
        assert dep in extra
    readme = (REPO / "README.md").read_text()
    assert "pip install -e '.[notebook]' && jupyter lab notebooks/" in readme
