"""What live capture costs: ``mysqlwire watch`` (tcpdump child + pcap stream) vs Scapy's ``sniff``.

The same loopback load is captured twice: a local TCP echo pair exchanging small
messages (one segment each, TCP_NODELAY) at ``--rate`` round trips a second for ``--seconds``.  For each
capturer we report the packets it saw and the CPU time it spent (user + system,
children included: for watch that is tcpdump *and* mysqlwire), as microseconds per
captured packet.  The ratio is why ``watch`` uses a tcpdump child.

Usage::

    python benchmarks/watch_cost.py [--seconds 5]

Needs root (or the capture capabilities), tcpdump and Scapy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SNIFF = r"""
import sys, time
from scapy.all import sniff
n = 0
def count(_p):
    global n
    n += 1
import signal
signal.signal(signal.SIGINT, lambda *a: (print(n, flush=True), sys.exit(0)))
sniff(iface="lo", filter=f"tcp port {sys.argv[1]}", prn=count, store=False,
      timeout=float(sys.argv[2]), started_callback=lambda: print("ready", flush=True))
print(n)
"""


RATE = [2000.0]


def load(port: int, seconds: float) -> int:
    """Echo traffic on 127.0.0.1:port for ``seconds``; returns messages sent."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)

    def echo():
        c, _ = srv.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            d = c.recv(4096)
            if not d:
                break
            c.sendall(d)
        c.close()

    th = threading.Thread(target=echo, daemon=True)
    th.start()
    cli = socket.create_connection(("127.0.0.1", port))
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.monotonic()
    end = t0 + seconds
    sent = 0
    while (now := time.monotonic()) < end:
        due = t0 + sent / RATE[0]
        if due > now:
            time.sleep(due - now)
        cli.sendall(b"x" * 64)
        cli.recv(4096)
        sent += 1
    cli.close()
    th.join(timeout=5)
    srv.close()
    return sent


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measure(cmd: list[str], port: int, seconds: float, parse, ready: str) -> dict:
    """Run the capturer, wait until it says it is capturing, load, then stop it (SIGINT)."""
    before = children_cpu()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines: list[str] = []
    seen = threading.Event()

    def pump(stream):
        for line in stream:
            lines.append(line)
            if ready in line:
                seen.set()

    pumps = [
        threading.Thread(target=pump, args=(s,), daemon=True) for s in (proc.stdout, proc.stderr)
    ]
    for t in pumps:
        t.start()
    if not seen.wait(120):
        proc.kill()
        raise SystemExit(f"{cmd[:3]} did not start: {lines}")
    time.sleep(0.5)
    sent = load(port, seconds)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    for t in pumps:
        t.join(timeout=5)
    cpu = children_cpu() - before
    out = err = "".join(lines)
    packets = parse(out, err)
    return {
        "messages": sent,
        "packets_seen": packets,
        "cpu_s": round(cpu, 3),
        "us_per_packet": round(cpu / packets * 1e6, 2) if packets else None,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=2000.0, help="echo round trips per second")
    args = ap.parse_args(argv)
    RATE[0] = args.rate
    total = 3600
    results = {}
    port = 40000 + os.getpid() % 10000
    results["mysqlwire watch (tcpdump child)"] = measure(
        [
            sys.executable,
            "-m",
            "mysqlwire",
            "watch",
            "-i",
            "lo",
            "-p",
            str(port),
            "--duration",
            str(total),
        ],
        port,
        args.seconds,
        lambda out, err: int(re.search(r"(\d+) frame", err).group(1)),
        "watching",
    )
    port += 1
    results["scapy sniff (prn, store=False)"] = measure(
        [sys.executable, "-c", SNIFF, str(port), str(total)],
        port,
        args.seconds,
        lambda out, err: int(out.strip().splitlines()[-1]),
        "ready",
    )
    a, b = results.values()
    if a["us_per_packet"] and b["us_per_packet"]:
        results["scapy_cost_over_watch"] = round(b["us_per_packet"] / a["us_per_packet"], 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
