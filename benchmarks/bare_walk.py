"""The floor: a bare Python loop that reads a classic pcap's records and the
TCP header of each Ethernet/IPv4 frame (flags summed so the work is not
optimised away) -- nothing else.  ``benchmarks/run.py`` times it next to
``mysqlwire dissect`` on the same file, in the same run.

    python benchmarks/bare_walk.py capture.pcap
"""

from __future__ import annotations

import struct
import sys


def walk(path: str) -> tuple[int, int]:
    rec = struct.Struct("<IIII").unpack_from
    tcp = struct.Struct("!HHIIBB").unpack_from
    frames = flags = 0
    with open(path, "rb", buffering=0) as fh:
        rest = fh.read(24)[24:]
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            buf = rest + chunk
            pos, n = 0, len(buf)
            while n - pos >= 16:
                _sec, _usec, incl, _orig = rec(buf, pos)
                end = pos + 16 + incl
                if end > n:
                    break
                ip = pos + 16 + 14
                if incl >= 54 and buf[ip - 2] == 8 and buf[ip - 1] == 0:
                    flags += tcp(buf, ip + (buf[ip] & 15) * 4)[5]
                frames += 1
                pos = end
            rest = buf[pos:]
    return frames, flags


if __name__ == "__main__":
    print(*walk(sys.argv[1]))
