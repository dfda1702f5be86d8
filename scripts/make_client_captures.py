#!/usr/bin/env python3
"""Regenerate ``captures/clients/``: the non-Python clients of the lab (Go, node mysql/mysql2, PHP
PDO/mysqli, Perl DBD::MariaDB/DBD::mysql, Ruby mysql2, Connector/J) against the lab's MariaDB and
``mysqlwire serve``, one pcap (+ ``.keys``) per scenario, ``truth.jsonl`` and ``serve-rsa.pem``.

Every run is checked against its truth (client result, wire facts, key log) before anything is
written; then run ``python3 scripts/make_sidecars.py captures/clients`` and review ``git diff``.
Needs root and the lab packages (``bash scripts/lab_setup.sh``).

    python3 scripts/make_client_captures.py              # all scenarios into captures/clients
    python3 scripts/make_client_captures.py --out DIR    # somewhere else
    python3 scripts/make_client_captures.py -k go_       # only scenarios whose name contains go_
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.lab.ext_run import RSA_NAME, ext_problems, run_ext_all  # noqa: E402
from tests.lab.ext_scenarios import EXT_SCENARIOS  # noqa: E402
from tests.lab.mariadb import LabUnavailable, MariaDBLab  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "captures" / "clients")
    ap.add_argument("-k", dest="match", default=None)
    ap.add_argument("--lanes", type=int, default=None)
    ap.add_argument("--keep-going", action="store_true", help="write even if checks fail")
    args = ap.parse_args(argv)
    scenarios = [s for s in EXT_SCENARIOS if not args.match or args.match in s.name]
    try:
        lab = MariaDBLab()
        lab.start()
    except LabUnavailable as e:
        print(f"make_client_captures: {e}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="mysqlwire-clients-") as tmp:
            # a partial run (-k) keeps serve's RSA key, which the other captures were made with
            old_key = args.out / RSA_NAME if args.match else None
            run, tc = run_ext_all(lab, Path(tmp), scenarios, lanes=args.lanes, rsa_key=old_key)
            print(
                f"{len(run.runs)} scenarios in {run.seconds:.1f}s (build {tc.build_seconds:.1f}s)"
            )
            bad = 0
            for name, r in run.runs.items():
                if r.skipped:
                    print(f"SKIPPED {name}: {r.skipped}")
                    bad += 1
                    continue
                problems = ext_problems(r)
                if problems:
                    bad += 1
                    err = r.result.error.text()[:160] if r.result and r.result.error else None
                    print(f"FAIL {name}: {problems} (client error: {err!r})")
            if bad and not args.keep_going:
                print(f"{bad} scenarios failed their checks: nothing written", file=sys.stderr)
                return 1
            args.out.mkdir(parents=True, exist_ok=True)
            for old in list(args.out.glob("*.pcap")) + list(args.out.glob("*.keys")):
                if not args.match or args.match in old.name:
                    old.unlink()
            for r in run.runs.values():
                if r.skipped:
                    continue
                shutil.copy(r.pcap, args.out / r.pcap.name)
                if r.keylog and r.keylog.exists():
                    shutil.copy(r.keylog, args.out / r.keylog.name)
            shutil.copy(Path(tmp) / RSA_NAME, args.out / RSA_NAME)
            truth = args.out / "truth.jsonl"
            lines = (Path(tmp) / "truth.jsonl").read_text().splitlines(keepends=True)
            if args.match and truth.exists():  # keep the other scenarios' lines
                import json

                keep = [
                    ln
                    for ln in truth.read_text().splitlines(keepends=True)
                    if args.match not in json.loads(ln)["scenario"]
                ]
                lines = keep + lines
            truth.write_text("".join(lines))
            print(f"wrote {len(run.runs)} captures to {args.out}")
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
