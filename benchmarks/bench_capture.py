"""Micro-benchmark of mysqlwire.capture: reader, reader+decode, reader+decode+reassembly.

Synthesizes a pcap (default 200k Ethernet/IPv4/TCP frames over 100 connections,
payloads 0..1400 bytes) in a temp dir and prints frames/s and MB/s, best of
``--repeat`` runs by CPU time (process_time: steadier than wall time on a busy
machine; wall time is printed too). Numbers only, no assertions::

    python benchmarks/bench_capture.py [--frames N] [--flows N] [--repeat N] [--tshark]

``--tshark`` also times ``tshark -q -z follow,tcp,raw,0`` (one stream!) on the
same file, for scale.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import struct
import subprocess
import tempfile
import time

from mysqlwire.capture import Reassembler, decode_tcp, iter_segments, open_capture

ACK, PSH, SYN, FIN = 0x10, 0x08, 0x02, 0x01


def _frame(src: int, sport: int, dst: int, dport: int, seq: int, ack: int, flags: int, payload):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)
    ip = struct.pack(
        "!BBHHHBBHII", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, src, dst
    )
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    return eth + ip + tcp + payload


def synthesize(path: str, frames: int, flows: int, seed: int = 1) -> int:
    rnd = random.Random(seed)
    blob = bytes(rnd.getrandbits(8) for _ in range(4096))
    conns = []
    for i in range(flows):
        conns.append(
            {
                "c": 0x0A000001 + i,
                "s": 0x0A00FF01,
                "cp": 40000 + i,
                "cs": rnd.getrandbits(32),
                "ss": rnd.getrandbits(32),
            }
        )
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        n = 0

        def emit(fr: bytes) -> None:
            nonlocal n
            t = 1_700_000_000 + n * 1e-5
            sec = int(t)
            f.write(struct.pack("<IIII", sec, int((t - sec) * 1e6), len(fr), len(fr)))
            f.write(fr)
            n += 1

        for c in conns:  # handshakes
            emit(_frame(c["c"], c["cp"], c["s"], 3306, c["cs"], 0, SYN, b""))
            emit(_frame(c["s"], 3306, c["c"], c["cp"], c["ss"], c["cs"] + 1, SYN | ACK, b""))
            c["cs"] += 1
            c["ss"] += 1
        while n < frames:
            c = conns[rnd.randrange(flows)]
            size = rnd.choice((0, 5, 60, 200, 700, 1400))
            off = rnd.randrange(4096 - size + 1)
            payload = blob[off : off + size]
            cs, ss = c["cs"] & 0xFFFFFFFF, c["ss"] & 0xFFFFFFFF
            if rnd.random() < 0.5:
                emit(_frame(c["c"], c["cp"], c["s"], 3306, cs, ss, ACK | PSH, payload))
                c["cs"] += size
            else:
                emit(_frame(c["s"], 3306, c["c"], c["cp"], ss, cs, ACK | PSH, payload))
                c["ss"] += size
    return os.path.getsize(path)


class _Sink:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def data(self, from_initiator, data, ts) -> None:
        self.n += len(data)

    def gap(self, from_initiator, nbytes, ts) -> None:
        pass

    def closed(self, reason, ts) -> None:
        pass


def run_reader(path: str) -> int:
    n = 0
    for _ in open_capture(path):
        n += 1
    return n


def run_decode(path: str) -> int:
    n = 0
    for fr in open_capture(path):
        if decode_tcp(fr.linktype, fr.data) is not None:
            n += 1
    return n


def run_segments(path: str) -> int:
    n = 0
    for _ in iter_segments(open_capture(path)):
        n += 1
    return n


def run_full(path: str) -> int:
    r = Reassembler(lambda flow: _Sink())
    add = r.add
    n = 0
    for ts, seg in iter_segments(open_capture(path)):
        add(ts, seg)
        n += 1
    r.finish()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--flows", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tshark", action="store_true", help="also time tshark's follow tcp")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.pcap")
        size = synthesize(path, args.frames, args.flows)
        print(f"capture: {args.frames} frames, {args.flows} flows, {size / 1e6:.1f} MB")
        for name, fn in (
            ("reader (Frame objects)", run_reader),
            ("reader + decode_tcp", run_decode),
            ("iter_segments", run_segments),
            ("iter_segments + Reassembler", run_full),
        ):
            best = wall = float("inf")
            for _ in range(args.repeat):
                c0, w0 = time.process_time(), time.perf_counter()
                fn(path)
                cpu = time.process_time() - c0
                if cpu < best:
                    best, wall = cpu, time.perf_counter() - w0
            print(
                f"{name:30s} cpu {best:6.3f} s (wall {wall:6.3f} s)"
                f"  {args.frames / best / 1e3:6.0f} kframes/s  {size / best / 1e6:6.1f} MB/s"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak:.0f} MB (capture is {size / 1e6:.0f} MB)")
        if args.tshark and shutil.which("tshark"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            w0 = time.perf_counter()
            subprocess.run(
                ["tshark", "-n", "-r", path, "-q", "-z", "follow,tcp,raw,0"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            print(
                f"{'tshark follow,tcp,raw,0':30s} cpu {cpu:6.3f} s"
                f" (wall {time.perf_counter() - w0:6.3f} s)  {args.frames / cpu / 1e3:6.0f} kframes/s"
            )


if __name__ == "__main__":
    main()
