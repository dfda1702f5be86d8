"""Write a sidecar (name.toml) for every capture of a corpus folder that has a
truth.jsonl (captures/lab-samples, captures/lab, captures/clients), from today's output.

Run after reviewing a change in behaviour; `git diff captures/` is the review.
    python scripts/make_sidecars.py captures/lab-samples captures/lab
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mysqlwire.corpus import SIDECAR_SCHEMA, dumps, expectations, run_capture


def make_sidecar(capture: Path, *, ports, detect, keylog, rsa_key, password, note) -> dict:
    """A sidecar dict for ``capture`` from today's output (paths relative to its folder)."""
    read: dict = {"ports": list(ports), "detect": detect}
    if keylog:
        read["keylog"] = Path(keylog).name
    if rsa_key:
        read["rsa_key"] = Path(rsa_key).name
    if password is not None:
        read["password"] = password
    conns = run_capture(
        capture, ports=ports, detect=detect, keylog=keylog, rsa_key=rsa_key, password=password
    )
    return {
        "schema": SIDECAR_SCHEMA,
        "capture": Path(capture).name,
        "note": note,
        "read": read,
        "connection": [expectations(c) for c in conns],
    }


def main(folders: list[str]) -> None:
    for folder in map(Path, folders):
        for line in (folder / "truth.jsonl").read_text().splitlines():
            if not line.strip():
                continue
            t = json.loads(line)
            pcap = folder / t["pcap"]
            if not pcap.is_file() or pcap.resolve().parent != folder.resolve():
                continue  # a line that points into another corpus folder
            password = (
                t["account_password"]
                if t.get("account_password") is not None
                else t.get("password")
            )
            doc = make_sidecar(
                pcap,
                ports=(t["port"],) if t.get("port") else (3306,),
                detect=not t.get("port"),
                keylog=folder / t["keylog"] if t.get("keylog") else None,
                rsa_key=folder / t["rsa_private_key"] if t.get("rsa_private_key") else None,
                password=password,
                note=f"{t['scenario']}: {t.get('client')} vs {t.get('server')}",
            )
            pcap.with_suffix(".toml").write_text(dumps(doc))
            print(pcap.with_suffix(".toml"))


if __name__ == "__main__":
    main(sys.argv[1:] or ["captures/lab-samples", "captures/lab", "captures/clients"])
