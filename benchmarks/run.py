"""mysqlwire vs tshark on the same generated captures, in the same run.

For each size N (default 2000 and 20000 connections) it generates (or reuses)
``make_capture.py``'s capture and times, alternating the tools round by round:

* ``mysqlwire dissect --format jsonl F > /dev/null``
* ``tshark -n -r F -Y mysql -T fields -e <the same handshake fields> > /dev/null``
* ``mysqlwire dissect --keylog K --format jsonl F`` and ``mysqlwire replay
  --keylog K --secrets S --rsa-key R --format jsonl F`` (every login replayed,
  the TLS ones too, with the capture's per-user password map): replay's
  overhead is measured against dissect with the same key log
* ``mysqlwire replay --secrets S --rsa-key R --format jsonl F`` (no key log:
  TLS logins UNVERIFIABLE), against plain dissect
* ``mysqlwire --help`` (min wall time of 5)
* ``python benchmarks/bare_walk.py F``: the floor (pcap records and TCP
  headers read, nothing else), and ``mysqlwire dissect --jobs 2`` (one capture
  split by flow; its wall time against ``--jobs 1``)
* shapes: ``mixed`` (``make_capture.py``'s default: logins then 1-80 queries),
  ``logins`` (connection-phase heavy: a pool storm / brute force) and
  ``cooked6`` (the mixed capture behind Linux cooked v2 headers, over IPv6:
  ``tcpdump -i any`` on an IPv6 network; ``relink.py``)

Each run goes through ``/usr/bin/time`` (wall, user, sys, peak RSS of that
process); without it, ``resource.getrusage(RUSAGE_CHILDREN)``.  Ratios use
CPU time (user+sys, the best of the rounds; the median of the per-round
ratios is given too): on a shared machine wall time also measures the
neighbours; wall times are reported too.  Results go to
``benchmarks/results.json`` and a table to stdout (paste it into
``benchmarks/README.md``).  No assertions: the targets are read, not enforced.

    python benchmarks/run.py [--sizes 2000,20000,logins:100000] [--rounds 3]
                             [--large-rounds 1] [--no-replay] [--jobs 2]
                             [--workdir DIR] [--out benchmarks/results.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import make_capture  # noqa: E402
import relink  # noqa: E402

TSHARK_FIELDS = [
    "mysql.version",
    "mysql.thread_id",
    "mysql.user",
    "mysql.schema",
    "mysql.auth_plugin",
    "mysql.client_auth_plugin",
    "mysql.auth_switch_request.name",
    "mysql.error_code",
    "mysql.sqlstate",
    "mysql.error.message",
]

TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None  # Debian package "time"


def mysqlwire_cmd() -> list[str]:
    """The console script pip installed next to this interpreter (the bare
    walk runs on this interpreter too), not the first ``mysqlwire`` on PATH:
    a version manager's shim there (pyenv's runs ~40 processes, ~0.06 s of
    CPU) would be timed with it."""
    exe = Path(sys.executable).parent / "mysqlwire"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("mysqlwire")
    if found:
        return [found]
    return [sys.executable, "-c", "from mysqlwire.cli import main; main()"]


def precompile() -> None:
    """Byte-compile the package, as ``pip install`` does for a regular install.

    An editable install (``pip install -e .``) leaves that to the first
    import, and with ``PYTHONDONTWRITEBYTECODE`` set (as on some CI and
    sandbox machines) every run would compile every module from source
    again: ~0.1 s of each run that a user's installed copy never pays.
    """
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("mysqlwire")
    if spec and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)


def measure(cmd: list[str], stdout=subprocess.DEVNULL, env=None) -> dict:
    """Wall, user, sys (s) and peak RSS (KiB) of one run of ``cmd``."""
    if TIME:
        with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
            t0 = time.perf_counter()
            proc = subprocess.run(
                [TIME, "-o", tf.name, "-f", "%e %U %S %M", *cmd],
                stdout=stdout,
                stderr=subprocess.PIPE,
                env=env,
                check=False,
            )
            wall = time.perf_counter() - t0
            fields = tf.read().split()[-4:]
        _e, user, sys_, rss = fields
        return {
            "wall": round(wall, 3),
            "user": float(user),
            "sys": float(sys_),
            "cpu": round(float(user) + float(sys_), 3),
            "rss_mb": round(int(rss) / 1024, 1),
            "rc": proc.returncode,
            "stderr": proc.stderr.decode(errors="replace")[-300:],
        }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user = after.ru_utime - before.ru_utime
    sys_ = after.ru_stime - before.ru_stime
    return {
        "wall": round(wall, 3),
        "user": round(user, 3),
        "sys": round(sys_, 3),
        "cpu": round(user + sys_, 3),
        # max over every child so far: an upper bound for this one
        "rss_mb": round(after.ru_maxrss / 1024, 1),
        "rc": proc.returncode,
        "stderr": proc.stderr.decode(errors="replace")[-300:],
    }


def best(runs: list[dict]) -> dict:
    b = dict(min(runs, key=lambda r: r["cpu"]))
    b["wall_min"] = min(r["wall"] for r in runs)
    b["rss_mb"] = max(r["rss_mb"] for r in runs)
    b["runs"] = len(runs)
    b["cpu_all"] = [r["cpu"] for r in runs]
    return b


def median(values: list[float]) -> float:
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def paired(a: list[dict], b: list[dict]) -> list[float]:
    """a/b CPU time ratios of the runs made back to back in each round."""
    return [x["cpu"] / y["cpu"] for x, y in zip(a, b, strict=True)]


def machine() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    tshark = "missing"
    if shutil.which("tshark"):
        out = subprocess.run(["tshark", "-v"], capture_output=True, text=True, check=False)
        tshark = out.stdout.splitlines()[0] if out.stdout else "?"
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tshark": tshark,
        "load_average_start": os.getloadavg(),
        "timer": "/usr/bin/time" if TIME else "getrusage",
        "mysqlwire_version": subprocess.run(
            [*mysqlwire_cmd(), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def ensure_capture(workdir: Path, n: int, seed: int, shape: str = "mixed") -> dict:
    pcap = workdir / (f"bench-{n}.pcap" if shape == "mixed" else f"bench-{shape}-{n}.pcap")
    meta_path = pcap.with_suffix(".meta.json")
    if shape == "cooked6":
        return _cooked6(ensure_capture(workdir, n, seed, "mixed"), pcap, meta_path)
    if pcap.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if (
            meta.get("connections") == n
            and meta.get("seed") == seed
            and meta.get("shape", "mixed") == shape
        ):
            return meta
    print(f"generating {pcap} ({n} connections, shape {shape})...", flush=True)
    rate = 400.0 if shape == "mixed" else 2000.0
    return make_capture.generate(n, pcap, seed, rate, shape)


def _cooked6(mixed: dict, pcap: Path, meta_path: Path) -> dict:
    """The mixed capture as ``tcpdump -i any`` on an IPv6 network writes it:
    Linux cooked v2 headers, IPv6 (``relink.py``); the same traffic."""
    src = Path(mixed["capture"])
    source = {k: mixed[k] for k in ("capture", "connections", "seed", "bytes", "frames")}
    if pcap.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("source") == source:
            return meta
    print(f"re-framing {src} -> {pcap} (Linux cooked v2, IPv6)...", flush=True)
    out = relink.relink(src.read_bytes(), "sll2", v6=True)
    pcap.write_bytes(out)
    meta = dict(mixed, capture=str(pcap), shape="cooked6", bytes=len(out), source=source)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return meta
    print(f"re-framing {src} -> {pcap} (Linux cooked v2, IPv6)...", flush=True)
    data = src.read_bytes()
    mixed.setdefault("sha256", hashlib.sha256(data).hexdigest())
    out = relink.relink(data, "sll2", v6=True)
    pcap.write_bytes(out)
    meta = dict(mixed, capture=str(pcap), shape="cooked6", bytes=len(out))
    meta["source_sha256"] = meta.pop("sha256")
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def help_time(mw: list[str]) -> float:
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([*mw, "--help"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return round(min(times), 3)


def bench_size(mw: list[str], meta: dict, rounds: int, replay: bool = True, jobs: int = 2) -> dict:
    pcap = meta["capture"]
    n = meta["connections"]
    keys = meta["keylog"]
    rsa = [a for k in meta["rsa_keys"] for a in ("--rsa-key", k)]
    cmds = {
        "mysqlwire": [*mw, "dissect", "--format", "jsonl", pcap],
        # the same without the C extension (MYSQLWIRE_NO_NATIVE=1): the Python loop
        "mysqlwire_python": [*mw, "dissect", "--format", "jsonl", pcap],
        "bare_walk": [sys.executable, str(HERE / "bare_walk.py"), pcap],
        "bare_walk_splice": [sys.executable, str(HERE / "bare_walk.py"), "--splice", pcap],
        f"mysqlwire_jobs{jobs}": [*mw, "dissect", "--jobs", str(jobs), "--format", "jsonl", pcap],
        "tshark": [
            "tshark",
            "-n",
            "-r",
            pcap,
            "-Y",
            "mysql",
            "-T",
            "fields",
            *[a for f in TSHARK_FIELDS for a in ("-e", f)],
        ],
        "dissect_keylog": [*mw, "dissect", "--keylog", keys, "--format", "jsonl", pcap],
        "replay_keylog": [
            *mw,
            "replay",
            "--keylog",
            keys,
            "--secrets",
            meta["secrets"],
            *rsa,
            "--format",
            "jsonl",
            pcap,
        ],
        # without keys: the TLS logins stay UNVERIFIABLE, against plain dissect
        "replay": [*mw, "replay", "--secrets", meta["secrets"], *rsa, "--format", "jsonl", pcap],
    }
    if not shutil.which("tshark"):
        del cmds["tshark"]
    if not replay:
        for name in ("dissect_keylog", "replay_keylog", "replay"):
            del cmds[name]
    runs: dict[str, list] = {k: [] for k in cmds}
    digests: dict[str, str] = {}
    verdicts: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        out_path = Path(tmp) / "replay.jsonl"
        for r in range(rounds):
            for name, cmd in cmds.items():
                if name == "replay_keylog":
                    with open(out_path, "wb") as fh:
                        res = measure(cmd, stdout=fh)
                    if r == 0:
                        recs = [json.loads(line) for line in out_path.open()]
                        verdicts = Counter(rec["verdict"] for rec in recs)
                        res["records"] = len(recs)
                elif r == 0 and name in ("mysqlwire", f"mysqlwire_jobs{jobs}"):
                    # --jobs 1 and --jobs N must print the same bytes
                    with open(Path(tmp) / f"{name}.out", "wb") as fh:
                        res = measure(cmd, stdout=fh)
                    digest = hashlib.sha256((Path(tmp) / f"{name}.out").read_bytes())
                    digests[name] = digest.hexdigest()
                elif name == "mysqlwire_python":
                    res = measure(cmd, env={**os.environ, "MYSQLWIRE_NO_NATIVE": "1"})
                else:
                    res = measure(cmd)
                runs[name].append(res)
                print(
                    f"  N={n} round {r + 1} {name:15s} cpu {res['cpu']:7.2f} s"
                    f"  wall {res['wall']:7.2f} s  rss {res['rss_mb']:6.1f} MB  rc {res['rc']}",
                    flush=True,
                )
    out = {name: best(rs) for name, rs in runs.items()}
    for res in out.values():
        res.pop("stderr", None)
    ours = out["mysqlwire"]
    split = out[f"mysqlwire_jobs{jobs}"]
    result = {
        "connections": n,
        "shape": meta.get("shape", "mixed"),
        "capture_bytes": meta["bytes"],
        "capture_mb": round(meta["bytes"] / 1e6, 1),
        "frames": meta["frames"],
        "command_phase_share_of_payload": meta["command_phase_share_of_payload"],
        "command_phase_share_of_file": meta["command_phase_share_of_file"],
        "outcomes": meta["outcomes"],
        "final_plugins": meta["final_plugins"],
        "tools": out,
        "mysqlwire_conns_per_s": round(n / ours["cpu"]),
        # the floor, measured in the same run: reading the pcap records and TCP headers
        "ratio_to_bare_walk": round(ours["cpu"] / out["bare_walk"]["cpu"], 2),
        "ratio_to_bare_walk_median_of_rounds": round(
            median(paired(runs["mysqlwire"], runs["bare_walk"])), 2
        ),
        # the lower floor: reading without re-joining chunks (bare_walk.py --splice)
        "ratio_to_bare_walk_splice": round(ours["cpu"] / out["bare_walk_splice"]["cpu"], 2),
        # --jobs: one capture split by flow; wall time (CPU time adds up the workers)
        "jobs": jobs,
        "jobs_speedup_wall": round(ours["wall_min"] / split["wall_min"], 2),
        "jobs_speedup_wall_median_of_rounds": round(
            median(
                [
                    a["wall"] / b["wall"]
                    for a, b in zip(runs["mysqlwire"], runs[f"mysqlwire_jobs{jobs}"], strict=True)
                ]
            ),
            2,
        ),
        "jobs_cpu_total": split["cpu"],
        "jobs_output_identical": digests["mysqlwire"] == digests[f"mysqlwire_jobs{jobs}"],
        "output_sha256": digests["mysqlwire"],
        "mysqlwire_mb_per_s": round(meta["bytes"] / 1e6 / ours["cpu"], 1),
        "mysqlwire_conns_per_s_wall": round(n / ours["wall_min"]),
        "mysqlwire_mb_per_s_wall": round(meta["bytes"] / 1e6 / ours["wall_min"], 1),
    }
    if replay:
        result.update(
            {
                "replay_records": runs["replay_keylog"][0].get("records"),
                "replay_verdicts": dict(sorted(verdicts.items())),
                "replay_overhead": round(
                    out["replay_keylog"]["cpu"] / out["dissect_keylog"]["cpu"] - 1, 3
                ),
                # the same round by round (each pair ran back to back): less exposed to
                # one lucky or unlucky run on a shared machine
                "replay_overhead_median_of_rounds": round(
                    median(paired(runs["replay_keylog"], runs["dissect_keylog"])) - 1, 3
                ),
                "replay_overhead_without_keys": round(out["replay"]["cpu"] / ours["cpu"] - 1, 3),
                "replay_overhead_without_keys_median_of_rounds": round(
                    median(paired(runs["replay"], runs["mysqlwire"])) - 1, 3
                ),
            }
        )
    if "tshark" in out:
        result["ratio_cpu"] = round(out["tshark"]["cpu"] / ours["cpu"], 2)
        result["ratio_cpu_median_of_rounds"] = round(
            median(paired(runs["tshark"], runs["mysqlwire"])), 2
        )
        result["ratio_wall"] = round(out["tshark"]["wall_min"] / ours["wall_min"], 2)
        result["tshark_mb_per_s"] = round(meta["bytes"] / 1e6 / out["tshark"]["cpu"], 1)
        result["ratio_cpu_python_loop"] = round(
            out["tshark"]["cpu"] / out["mysqlwire_python"]["cpu"], 2
        )
    result["python_loop_ratio_to_bare_walk"] = round(
        out["mysqlwire_python"]["cpu"] / out["bare_walk"]["cpu"], 2
    )
    return result


def table(results: dict) -> str:
    lines = [
        "| shape | N | capture | tshark CPU s | mysqlwire CPU s | ratio to tshark: best "
        "(median of rounds) | bare walk CPU s | mysqlwire / bare walk | peak RSS tshark / "
        "mysqlwire | --jobs wall speed-up | conns/s | MB/s | bare walk --splice CPU s "
        "| mysqlwire / bare walk --splice | without the C extension: CPU s, ratio to tshark, "
        "/ bare walk |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["sizes"]:
        t = r["tools"]
        ts = t.get("tshark", {})
        lines.append(
            f"| {r['shape']} | {r['connections']} | {r['capture_mb']} MB, {r['frames']} frames "
            f"| {ts.get('cpu', '-')} | {t['mysqlwire']['cpu']} "
            f"| {r.get('ratio_cpu', '-')}x ({r.get('ratio_cpu_median_of_rounds', '-')}x) "
            f"| {t['bare_walk']['cpu']} | {r['ratio_to_bare_walk']}x "
            f"({r['ratio_to_bare_walk_median_of_rounds']}x) "
            f"| {ts.get('rss_mb', '-')} / {t['mysqlwire']['rss_mb']} MB "
            f"| {r['jobs_speedup_wall']}x ({r['jobs_speedup_wall_median_of_rounds']}x)"
            f"{', same bytes' if r['jobs_output_identical'] else ', OUTPUT DIFFERS'} "
            f"| {r['mysqlwire_conns_per_s']} | {r['mysqlwire_mb_per_s']} "
            f"| {t['bare_walk_splice']['cpu']} | {r['ratio_to_bare_walk_splice']}x "
            f"| {t['mysqlwire_python']['cpu']} s, {r.get('ratio_cpu_python_loop', '-')}x, "
            f"{r['python_loop_ratio_to_bare_walk']}x |"
        )
    replayed = [r for r in results["sizes"] if "replay_overhead" in r]
    if replayed:
        lines += [
            "",
            "| N | dissect --keylog CPU s | replay --keylog CPU s | overhead: best (median) "
            "| dissect CPU s | replay (no keys) CPU s | overhead: best (median) | replay peak RSS |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for r in replayed:
        t = r["tools"]
        lines.append(
            f"| {r['connections']} | {t['dissect_keylog']['cpu']} | {t['replay_keylog']['cpu']} "
            f"| {r['replay_overhead'] * 100:+.1f}% "
            f"({r['replay_overhead_median_of_rounds'] * 100:+.1f}%) "
            f"| {t['mysqlwire']['cpu']} | {t['replay']['cpu']} "
            f"| {r['replay_overhead_without_keys'] * 100:+.1f}% "
            f"({r['replay_overhead_without_keys_median_of_rounds'] * 100:+.1f}%) "
            f"| {t['replay_keylog']['rss_mb']} MB |"
        )
    lines.append(f"\n`mysqlwire --help`: {results['help_s']} s (min wall of 5)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes",
        default="2000,20000,logins:100000",
        help="comma-separated N or SHAPE:N (shapes: mixed, logins, cooked6: the mixed "
        "capture behind Linux cooked v2 headers, over IPv6)",
    )
    ap.add_argument("--no-replay", action="store_true", help="skip the replay measurements")
    ap.add_argument("--jobs", type=int, default=2, help="--jobs N measured against --jobs 1")
    ap.add_argument("--rounds", type=int, default=3, help="rounds for N <= 5000")
    ap.add_argument("--large-rounds", type=int, default=1, help="rounds for N > 5000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mysqlwire-bench")
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    mw = mysqlwire_cmd()
    precompile()
    results = {
        "machine": machine(),
        "command": " ".join(["python benchmarks/run.py", *(argv or sys.argv[1:])]),
    }
    results["help_s"] = help_time(mw)
    print(f"mysqlwire --help: {results['help_s']} s", flush=True)
    results["sizes"] = []
    for spec in args.sizes.split(","):
        shape, _, count = spec.rpartition(":")
        n = int(count)
        meta = ensure_capture(args.workdir, n, args.seed, shape or "mixed")
        rounds = args.rounds if n <= 5000 else args.large_rounds
        replay = not args.no_replay and (shape or "mixed") == "mixed"
        results["sizes"].append(bench_size(mw, meta, rounds, replay, args.jobs))
    results["machine"]["load_average_end"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print()
    print(table(results))
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
