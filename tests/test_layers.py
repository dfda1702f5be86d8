"""The upper floors stay layered (issue 17): import-linter's contracts hold, the top-level
packages form no import cycle, no module reaches into another module's private names, and
no module grows past 800 lines."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "mysqlwire"
MAX_LINES = 800


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install import-linter)")
    r = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_no_module_over_800_lines():
    long = {
        str(p.relative_to(REPO)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_of_another_modules_private_names():
    """``from .x import _name`` and ``x._name`` (x an imported mysqlwire module) are leaks.

    Exceptions: a package's own ``__init__`` re-exporting its submodules, and dunder names."""
    bad = []
    for path in _modules():
        module = _dotted(path)
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported_modules: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                src = _resolve(module, is_pkg, node)
                if not src.startswith("mysqlwire"):
                    continue
                for alias in node.names:
                    name = alias.name
                    target = f"{src}.{name}"
                    if (PKG.parent / (target.replace(".", "/") + ".py")).exists() or (
                        PKG.parent / target.replace(".", "/") / "__init__.py"
                    ).exists():
                        imported_modules[alias.asname or name] = target
                        continue
                    if name.startswith("_") and not name.startswith("__"):
                        own_package = module == src.rsplit(".", 1)[0] and is_pkg
                        if not own_package:
                            bad.append(f"{module}: from {src} import {name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("mysqlwire") and alias.asname:
                        imported_modules[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported_modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                bad.append(f"{module}: {imported_modules[node.value.id]}.{node.attr}")
    assert not bad, "reaches into private names:\n" + "\n".join(sorted(set(bad)))


def _own_private_names(tree: ast.AST) -> set[str]:
    """Private names this module defines: functions, classes, class attributes,
    ``self._x``/``cls._x`` assignments, ``__slots__`` entries."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            own.add(node.value)  # __slots__ = ("_x", ...), getattr(obj, "_x")
        elif isinstance(node, ast.arg):
            own.add(node.arg)
    return {n for n in own if n.startswith("_")}


# Construct's extension protocol: a custom Construct overrides/calls these by design.
CONSTRUCT_API = {"_parse", "_build", "_sizeof", "_parsereport", "_params", "_emitparse"}


def test_no_access_to_other_objects_private_attributes():
    """``obj._x`` on an object of another module (``hs._events``, ``flow._d``) is a leak:
    the name must be one this module defines itself."""
    bad = []
    for path in _modules():
        module = _dotted(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = _own_private_names(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and node.attr not in own
                and node.attr not in CONSTRUCT_API
            ):
                bad.append(f"{module}:{node.lineno}: .{node.attr}")
    assert not bad, "uses private attributes defined elsewhere:\n" + "\n".join(sorted(set(bad)))


def test_top_level_packages_form_no_cycle():
    grimp = pytest.importorskip("grimp")
    sys.path.insert(0, str(REPO))
    g = grimp.build_graph("mysqlwire")
    deps: dict[str, set[str]] = defaultdict(set)
    for m in g.modules:
        if m.count(".") < 1:
            continue
        a = m.split(".")[1]
        for d in g.find_modules_directly_imported_by(m):
            if d.startswith("mysqlwire.") and (b := d.split(".")[1]) != a:
                deps[a].add(b)
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(n: str, path: list[str]) -> bool:
        state[n] = 1
        for m in sorted(deps[n]):
            if state.get(m) == 1:
                cycle.extend(path + [n, m])
                return True
            if m not in state and visit(m, path + [n]):
                return True
        state[n] = 2
        return False

    for n in sorted(deps):
        if n not in state and visit(n, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_help_imports_neither_scapy_nor_construct():
    code = (
        "import sys\n"
        "from mysqlwire.cli import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='mysqlwire')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('scapy', 'construct'))\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "HEAVY []" in r.stdout, r.stdout[-500:] + r.stderr[-500:]
