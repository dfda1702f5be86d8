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

REC = struct.Struct("<IIII").unpack_from
TCP = struct.Struct("!HHIIBB").unpack_from


def _records(buf: bytes, pos: int) -> tuple[int, int, int]:
    """Walk the whole records of ``buf`` from ``pos``: (position after the
    last whole one, frames, flags summed)."""
    n = len(buf)
    frames = flags = 0
    while n - pos >= 16:
        incl = REC(buf, pos)[2]
        end = pos + 16 + incl
        if end > n:
            break
        ip = pos + 16 + 14
        if incl >= 54 and buf[ip - 2] == 8 and buf[ip - 1] == 0:
            flags += TCP(buf, ip + (buf[ip] & 15) * 4)[5]
        frames += 1
        pos = end
    return pos, frames, flags


def walk(path: str) -> tuple[int, int]:
    frames = flags = 0
    with open(path, "rb", buffering=0) as fh:
        rest = fh.read(24)[24:]
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            buf = rest + chunk
            pos, f, g = _records(buf, 0)
            frames += f
            flags += g
            rest = buf[pos:]
    return frames, flags


def walk_splice(path: str) -> tuple[int, int]:
    frames = flags = 0
    with open(path, "rb", buffering=0) as fh:
        fh.read(24)
        head = b""  # the start of a record the previous chunk cut
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            pos = 0
            if head:
                # copy just the record that straddles the two chunks
                if len(head) < 16:
                    head, chunk = head + chunk[: 16 - len(head)], chunk[16 - len(head) :]
                take = 16 + REC(head, 0)[2] - len(head)
                if take > len(chunk):
                    head += chunk
                    continue
                _p, f, g = _records(head + chunk[:take], 0)
                frames += f
                flags += g
                pos = take
            pos, f, g = _records(chunk, pos)
            frames += f
            flags += g
            head = chunk[pos:]
    return frames, flags


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--splice":
        print(*walk_splice(args[1]))
    else:
        print(*walk(args[0]))
