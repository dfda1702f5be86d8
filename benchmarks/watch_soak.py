"""Soak test for ``mysqlwire watch``: memory over an hour of synthetic login load.

A generator writes a pcap *stream* (no file on disk) into ``mysqlwire watch --input -``:
``--hours`` of capture time at ``--rate`` logins per second, each a copy of a real lab
login (successful, wrong password, TLS without keys) with its own client address and port.
Every ``--leak-every``-th connection never closes (its FIN/RST frames are dropped, like a
pooled connection that goes quiet or a client that vanished), so only watch's idle timeout
(300 s of capture time by default in live mode) can reclaim it.  The resident set size of
the watch process is sampled as the stream goes; the table printed at the end is what
``docs/limits.md`` quotes.

Usage::

    python benchmarks/watch_soak.py [--hours 1] [--rate 10] [--leak-every 20]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = [
    "captures/lab-samples/mariadb_pymysql_native_ok.pcap",
    "captures/lab-samples/mariadb_cli_native_wrong.pcap",
    "captures/lab-samples/mariadb_pymysql_tls_keylog_ok.pcap",
]
ETH = 14


def _load(path: Path) -> list[tuple[float, bytes]]:
    sys.path.insert(0, str(REPO))
    from mysqlwire.capture import open_capture

    with open_capture(path) as r:
        return [(ts, bytes(data)) for ts, _lt, data, _ in r.records()]


ADDRESSES = [64]


def _retarget(data: bytes, i: int) -> tuple[bytes, bool]:
    """Give the client side of an Ethernet/IPv4/TCP frame connection i's address and port
    (``--addresses`` distinct client hosts, ports cycling)."""
    b = bytearray(data)
    ihl = (b[ETH] & 0x0F) * 4
    tcp = ETH + ihl
    sport, dport = struct.unpack_from("!HH", b, tcp)
    h = i % ADDRESSES[0]
    ip = bytes((10, (h >> 16) & 255, (h >> 8) & 255, h & 255))
    port = 20000 + i % 40000
    if dport == 3306:  # client -> server
        b[ETH + 12 : ETH + 16] = ip
        struct.pack_into("!H", b, tcp, port)
    else:
        b[ETH + 16 : ETH + 20] = ip
        struct.pack_into("!H", b, tcp + 2, port)
    flags = b[tcp + 13]
    return bytes(b), bool(flags & 0x05)  # FIN or RST


def stream(out, hours: float, rate: float, leak_every: int, templates) -> int:
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    n = int(hours * 3600 * rate)
    base = 1_800_000_000.0
    for i in range(n):
        frames = templates[i % len(templates)]
        t0 = frames[0][0]
        start = base + i / rate
        leak = leak_every and i % leak_every == 0
        for ts, data in frames:
            data, closing = _retarget(data, i)
            if leak and closing:
                continue
            t = start + (ts - t0)
            sec = int(t)
            usec = int((t - sec) * 1e6)
            out.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    out.close()
    return n


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--rate", type=float, default=10.0, help="logins per capture second")
    ap.add_argument("--leak-every", type=int, default=20)
    ap.add_argument(
        "--addresses",
        type=int,
        default=64,
        help="distinct client IP addresses (an app tier has a few; a scan or NAT many)",
    )
    args = ap.parse_args(argv)
    ADDRESSES[0] = max(1, args.addresses)
    templates = [_load(REPO / t) for t in TEMPLATES]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mysqlwire", "watch", "--input", "-", "--format", "jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample():
        t0 = time.monotonic()
        while not done.is_set():
            samples.append((time.monotonic() - t0, rss_kb(proc.pid)))
            time.sleep(0.5)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.monotonic()
    n = stream(proc.stdin, args.hours, args.rate, args.leak_every, templates)
    err = proc.stderr.read().decode()
    proc.wait()
    done.set()
    th.join()
    wall = time.monotonic() - t0
    rs = [r for _, r in samples if r]
    tenth = max(1, len(rs) // 10)
    result = {
        "capture_hours": args.hours,
        "client_addresses": args.addresses,
        "logins": n,
        "never_closed": n // args.leak_every if args.leak_every else 0,
        "wall_s": round(wall, 1),
        "rss_mb_first_10pct_max": round(max(rs[:tenth]) / 1024, 1) if rs else None,
        "rss_mb_last_10pct_max": round(max(rs[-tenth:]) / 1024, 1) if rs else None,
        "rss_mb_peak": round(max(rs) / 1024, 1) if rs else None,
        "rss_mb_by_decile": [
            round(max(rs[k * tenth : (k + 1) * tenth] or [0]) / 1024, 1) for k in range(10)
        ],
        "exit": proc.returncode,
        "watch_summary": err.strip().splitlines()[-1:] if err else [],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
