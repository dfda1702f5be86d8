"""A capture of N logins without command-phase traffic, for measuring the report.

Reuses ``benchmarks/make_capture.py`` (every connection a copy of a real lab
login: native, caching_sha2, ed25519, dialog, old, TLS, failures...) with its
command-phase traffic left out, so 100,000 connections fit in ~0.5 GB.

    python scripts/make_logins.py -n 100000 -o /tmp/logins100k.pcap
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import make_capture  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    make_capture.command_phase = lambda *args, **kwargs: []
    make_capture.main(argv)


if __name__ == "__main__":
    main()
