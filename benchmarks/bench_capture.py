"""Micro-benchmark of mysqlwire.capture: reader, reader+decode, reader+decode+reassembly.

Synthesizes a pcap (default 200k Ethernet/IPv4/TCP frames over 100 connections,
payloads 0..1400 bytes) in a temp dir and prints frames/s and MB/s. Numbers only,
no assertions::

    python benchmarks/bench_capture.py [--frames N] [--flows N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import random
import struct
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
        ts = 1_700_000_000.0
        out = []
        for c in conns:  # handshakes
            out.append(_frame(c["c"], c["cp"], c["s"], 3306, c["cs"], 0, SYN, b""))
            out.append(
                _frame(c["s"], 3306, c["c"], c["cp"], c["ss"], c["cs"] + 1, SYN | ACK, b"")
            )
            c["cs"] += 1
            c["ss"] += 1
        n = len(out)
        while n < frames:
            c = conns[rnd.randrange(flows)]
            size = rnd.choice((0, 5, 60, 200, 700, 1400))
            off = rnd.randrange(4096 - size + 1)
            payload = blob[off : off + size]
            if rnd.random() < 0.5:
                fr = _frame(
                    c["c"], c["cp"], c["s"], 3306, c["cs"] & 0xFFFFFFFF, c["ss"], ACK | PSH, payload
                )
                c["cs"] += size
            else:
                fr = _frame(
                    c["s"], 3306, c["c"], c["cp"], c["ss"] & 0xFFFFFFFF, c["cs"], ACK | PSH, payload
                )
                c["ss"] += size
            out.append(fr)
            n += 1
        for i, fr in enumerate(out):
            t = ts + i * 1e-5
            sec = int(t)
            f.write(struct.pack("<IIII", sec, int((t - sec) * 1e6), len(fr), len(fr)))
            f.write(fr)
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
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                fn(path)
                best = min(best, time.perf_counter() - t0)
            print(
                f"{name:30s} {best:6.3f} s  {args.frames / best / 1e3:8.0f} kframes/s"
                f"  {size / best / 1e6:7.1f} MB/s"
            )


if __name__ == "__main__":
    main()
