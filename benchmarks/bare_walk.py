"""The floor: a bare Python loop that reads a classic pcap's records and the
TCP header of each Ethernet/IPv4 frame (flags summed so the work is not
optimised away) -- nothing else.  ``benchmarks/run.py`` times it next to
``mysqlwire dissect`` on the same file, in the same run.

    python benchmarks/bare_walk.py capture.pcap
    python benchmarks/bare_walk.py --splice capture.pcap

By default each 1 MiB chunk is joined to the unread tail of the previous one
(the floor issue 19 was measured against).  ``--splice`` reads as mysqlwire's
own reader does since: a chunk is walked where it lies and only a record that
straddles two chunks is copied -- a lower floor (the copy of the whole file is
gone), reported next to the first so that no ratio flatters us.
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


def walk_splice(path: str) -> tuple[int, int]:
    rec = struct.Struct("<IIII").unpack_from
    tcp = struct.Struct("!HHIIBB").unpack_from
    frames = flags = 0
    with open(path, "rb", buffering=0) as fh:
        fh.read(24)
        buf = b""
        pos = 0
        while True:
            n = len(buf)
            if n - pos < 16 or pos + 16 + rec(buf, pos)[2] > n:
                # the next record is not whole here: copy just it
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                head = buf[pos:]
                if len(head) < 16:
                    need = 16 + rec(head + chunk[: 16 - len(head)], 0)[2]
                else:
                    need = 16 + rec(head, 0)[2]
                take = need - len(head)
                if take > len(chunk):
                    buf, pos = head + chunk, 0
                    continue
                one = head + chunk[:take]
                if need >= 70 and one[28] == 8 and one[29] == 0:
                    flags += tcp(one, 30 + (one[30] & 15) * 4)[5]
                frames += 1
                buf, pos = chunk, take
                continue
            while n - pos >= 16:
                incl = rec(buf, pos)[2]
                end = pos + 16 + incl
                if end > n:
                    break
                ip = pos + 16 + 14
                if incl >= 54 and buf[ip - 2] == 8 and buf[ip - 1] == 0:
                    flags += tcp(buf, ip + (buf[ip] & 15) * 4)[5]
                frames += 1
                pos = end
    return frames, flags


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--splice":
        print(*walk_splice(args[1]))
    else:
        print(*walk(args[0]))
