#!/usr/bin/env python3
"""Golden outputs: every command's output over every capture, into a directory tree to diff.

    python3 scripts/golden.py OUTDIR                 # the code of this checkout
    python3 scripts/golden.py OUTDIR --rev main      # the code of a git revision (exported, not checked out)
    diff -r /work/golden-before /work/golden-after

For each capture (``*.pcap``/``*.pcapng``) under the tree's ``captures/`` and under the shared
folder's ``captures/`` (``$MYSQLWIRE_SHARED``, default ``../shared``), it runs, each in its own
process:

    dissect                            (text, --no-color)
    dissect --format jsonl
    dissect --packets --format jsonl
    replay   (text and --format jsonl) with the password the capture's sidecar / truth.jsonl /
                                       CATALOG.tsv knows (--password-file) and its --rsa-key
    diagnose (text and --format jsonl, --all) with the same password options

always with ``--detect`` (MySQL on any port, found by its greeting; a no-op alias once every
port is examined by default).  A capture with a key log (sidecar ``keylog`` or a same-named
``.keys``) is run twice: with ``--keylog`` and without.  Each output file holds stdout, then
stderr and the exit status; paths of the tree and of the temporary password files are replaced
by ``<TREE>`` / ``<TMP>`` so trees made from different checkouts compare equal.

The captures and their sidecars always come from THIS checkout (and the shared folder), only the
code changes with ``--rev``: the diff shows what the code change did to the outputs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent.parent

# ``python -c`` puts the current directory first on sys.path: the commands run in the
# checkout (capture paths are relative to it), so without dropping it ``--rev`` would
# silently run the checkout's code instead of the exported revision.
RUNNER = (
    "import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "from mysqlwire.cli import main; sys.argv[0] = 'mysqlwire'; main()"
)


def shared_dir() -> Path:
    return Path(os.environ.get("MYSQLWIRE_SHARED") or HERE.parent / "shared").resolve()


def _truth(directory: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    path = directory / "truth.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                if rec.get("pcap"):
                    out[rec["pcap"]] = rec
    return out


def _catalog(shared: Path) -> dict[str, dict]:
    path = shared / "captures" / "public" / "CATALOG.tsv"
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        return {row["path"]: row for row in csv.DictReader(fh, delimiter="\t")}


def _sidecar(cap: Path, extra_dirs: list[Path]) -> tuple[dict, Path] | None:
    for d in [cap.parent, *extra_dirs]:
        p = d / (cap.stem + ".toml")
        if p.is_file():
            try:
                return tomllib.loads(p.read_text()).get("read", {}), d
            except tomllib.TOMLDecodeError:
                return None
    return None


def plan(tree_captures: Path, shared: Path) -> list[dict]:
    """One job per (capture, key variant): what to run and with which secrets."""
    catalog = _catalog(shared)
    caps: list[tuple[str, Path]] = []
    for root, label in ((tree_captures, "captures"), (shared / "captures", "shared")):
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.suffix in (".pcap", ".pcapng") and p.is_file():
                    caps.append((f"{label}/{p.relative_to(root)}", p))
    repo_samples = tree_captures / "lab-samples"
    jobs = []
    truths: dict[Path, dict] = {}
    for label, cap in caps:
        if cap.parent not in truths:
            truths[cap.parent] = _truth(cap.parent)
        side = _sidecar(cap, [repo_samples])
        read, side_dir = side if side else ({}, cap.parent)
        password = read.get("password")
        if password is None and cap.name in truths[cap.parent]:
            password = truths[cap.parent][cap.name].get("password")
        if password is None and label.startswith("shared/public/"):
            known = catalog.get(label[len("shared/public/") :], {}).get("known_password", "")
            if known:
                password = "" if known == "(empty)" else known
        rsa = read.get("rsa_key")
        rsa_path = None
        if rsa:
            for d in (side_dir, cap.parent):
                if (d / rsa).is_file():
                    rsa_path = d / rsa
                    break
        keylog = None
        if read.get("keylog") and (side_dir / read["keylog"]).is_file():
            keylog = side_dir / read["keylog"]
        elif cap.with_suffix(".keys").is_file():
            keylog = cap.with_suffix(".keys")
        base = {"label": label, "cap": cap, "password": password, "rsa": rsa_path}
        jobs.append({**base, "keylog": keylog, "variant": ""})
        if keylog is not None:
            jobs.append({**base, "keylog": None, "variant": "+nokeys"})
    return jobs


COMMANDS = [
    ("dissect.txt", ["dissect", "--no-color"], False),
    ("dissect.jsonl", ["dissect", "--format", "jsonl"], False),
    ("dissect-packets.jsonl", ["dissect", "--packets", "--format", "jsonl"], False),
    ("replay.txt", ["replay", "--no-color"], True),
    ("replay.jsonl", ["replay", "--format", "jsonl"], True),
    ("diagnose.txt", ["diagnose", "--all", "--no-color"], True),
    ("diagnose.jsonl", ["diagnose", "--all", "--format", "jsonl"], True),
]


def _rel(path: Path, tree: Path) -> str:
    """Paths under the checkout are given relative to it (the command runs there)."""
    try:
        return str(path.relative_to(tree))
    except ValueError:
        return str(path)


def run_job(job: dict, code: Path, out: Path, tmp: Path, tree: Path, timeout: float) -> None:
    dest = out / (job["label"] + job["variant"])
    dest.mkdir(parents=True, exist_ok=True)
    common = ["--detect"]
    if job["keylog"] is not None:
        common += ["--keylog", _rel(job["keylog"], tree)]
    secrets: list[str] = []
    if job["password"] is not None:
        pw = tmp / (job["label"].replace("/", "_") + ".pw")
        pw.write_text(job["password"])
        secrets += ["--password-file", str(pw)]
    if job["rsa"] is not None:
        secrets += ["--rsa-key", _rel(job["rsa"], tree)]
    env = dict(os.environ, PYTHONPATH=str(code), PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
    env.pop("SSLKEYLOGFILE", None)
    for name, argv, with_secrets in COMMANDS:
        args = [*argv, *common, *(secrets if with_secrets else []), _rel(job["cap"], tree)]
        try:
            r = subprocess.run(
                [sys.executable, "-c", RUNNER, *args],
                capture_output=True,
                env=env,
                cwd=tree,
                timeout=timeout,
            )
            text = (
                r.stdout
                + b"\n--- stderr ---\n"
                + r.stderr
                + f"\n--- exit {r.returncode} ---\n".encode()
            )
        except subprocess.TimeoutExpired:
            text = f"--- timeout after {timeout}s ---\n".encode()
        text = text.replace(str(tmp).encode(), b"<TMP>")
        text = text.replace(str(code).encode(), b"<TREE>").replace(str(tree).encode(), b"<TREE>")
        (dest / name).write_bytes(text)
    (dest / "cmd.txt").write_text(
        "mysqlwire <command> --detect"
        + (f" --keylog {job['keylog'].name}" if job["keylog"] else "")
        + (" --password-file <pw>" if job["password"] is not None else "")
        + (f" --rsa-key {job['rsa'].name}" if job["rsa"] else "")
        + f" {job['label']}\n"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--rev", help="git revision whose mysqlwire/ to run (default: this checkout)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--only", help="substring filter on capture labels (for quick runs)")
    ap.add_argument(
        "--shard",
        help="K/N: run only every N-th capture run starting at K (split one tree over processes)",
    )
    ns = ap.parse_args()

    shared = shared_dir()
    jobs = plan(HERE / "captures", shared)
    if ns.only:
        jobs = [j for j in jobs if ns.only in j["label"]]
    if ns.shard:
        k, n = (int(x) for x in ns.shard.split("/"))
        jobs = jobs[k::n]
    if ns.outdir.exists():
        shutil.rmtree(ns.outdir)
    ns.outdir.mkdir(parents=True)
    revfile = ns.outdir.parent / (ns.outdir.name + ".revision")
    with tempfile.TemporaryDirectory(prefix="golden-") as tmpname:
        tmp = Path(tmpname)
        code = HERE
        if ns.rev:
            code = tmp / "code"
            code.mkdir()
            sha = subprocess.run(
                ["git", "rev-parse", ns.rev], cwd=HERE, capture_output=True, text=True, check=True
            ).stdout.strip()
            archive = subprocess.run(
                ["git", "archive", sha, "mysqlwire"], cwd=HERE, capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
            revfile.write_text(sha + "\n")
        else:
            sha = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "mysqlwire"],
                cwd=HERE,
                capture_output=True,
                text=True,
            ).stdout.strip()
            revfile.write_text(sha + (" (+uncommitted)" if dirty else "") + "\n")
        # the commands must import the code under test, not the checkout's or an install's
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                RUNNER.split("from mysqlwire.cli")[0]
                + "import mysqlwire; print(mysqlwire.__file__)",
            ],
            capture_output=True,
            text=True,
            cwd=HERE,
            env=dict(os.environ, PYTHONPATH=str(code)),
        ).stdout.strip()
        if not probe.startswith(str(code)):
            sys.exit(f"golden: mysqlwire imports from {probe!r}, not from {code}")
        pwdir = tmp / "pw"
        pwdir.mkdir()
        with ThreadPoolExecutor(max_workers=max(1, ns.jobs)) as pool:
            futs = [pool.submit(run_job, j, code, ns.outdir, pwdir, HERE, ns.timeout) for j in jobs]
            for f in futs:
                f.result()
    print(f"{len(jobs)} capture runs x {len(COMMANDS)} commands -> {ns.outdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
