#!/usr/bin/env python3
"""Print the confusion table of expected vs top diagnosis code over every
labelled failure scenario of the corpus (not a timed test).

    python scripts/calibrate_diagnosis.py [--mode account|client|both] [--all] [TRUTH.jsonl ...]

Default truth files: captures/*/truth.jsonl and $MYSQLWIRE_SHARED (or
../shared)/captures/lab-samples/truth.jsonl.  ``--mode client`` replays with
the password the client was configured with (how the held-back set is
measured); ``account`` with the account's real password; ``--all`` also
counts successful logins.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_truth() -> list[Path]:
    files = sorted((REPO / "captures").glob("*/truth.jsonl"))
    shared = Path(os.environ.get("MYSQLWIRE_SHARED") or REPO.parent / "shared")
    lab = shared / "captures" / "lab-samples" / "truth.jsonl"
    copy = REPO / "captures" / "lab-samples" / "truth.jsonl"
    if lab.is_file() and not (copy.is_file() and copy.read_bytes() == lab.read_bytes()):
        files.append(lab)  # the shared samples, unless captures/ holds the same copy
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("truth", nargs="*", type=Path)
    ap.add_argument("--mode", choices=("account", "client", "both"), default="both")
    ap.add_argument("--all", action="store_true", help="also successful logins")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from mysqlwire.diagnose.calibration import format_table, run

    files = args.truth or default_truth()
    modes = ("account", "client") if args.mode == "both" else (args.mode,)
    for mode in modes:
        print(
            f"== password: {mode}'s ({', '.join(str(f.relative_to(f.parents[2])) for f in files)})"
        )
        print(format_table(run(files, mode), failures_only=not args.all))
        if mode == "client":
            print(
                "note: expected codes are the truth's, written for the account's password. Replayed with the "
                "client's own password, a wrong password proves valid and looks exactly like another server-side "
                "password (ACCESS_DENIED, whose hypotheses name it), so those rows cannot match."
            )
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
