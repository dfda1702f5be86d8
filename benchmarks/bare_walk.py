"""The floor: a bare Python loop that reads a classic pcap's records and the
TCP header of each Ethernet/IPv4 frame (flags summed so the work is not
optimised away) -- nothing else.  A Linux cooked v2 capture (``run.py``'s
``cooked6`` shape) is walked by a loop of its own that reads the TCP header
behind IPv4 and IPv6 alike; Ethernet keeps the loop it was measured with.  ``benchmarks/run.py`` times it next to
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


def _records_cooked(buf: bytes, pos: int) -> tuple[int, int, int]:
    """:func:`_records` for Linux cooked v2 frames (the protocol type first,
    the IP header at 20), IPv4 or IPv6 (TCP as its next header)."""
    n = len(buf)
    frames = flags = 0
    while n - pos >= 16:
        incl = REC(buf, pos)[2]
        end = pos + 16 + incl
        if end > n:
            break
        ip = pos + 16 + 20
        if incl >= 60:
            if buf[pos + 16] == 8 and buf[pos + 17] == 0:
                flags += TCP(buf, ip + (buf[ip] & 15) * 4)[5]
            elif buf[pos + 16] == 0x86 and buf[ip + 6] == 6 and incl >= 80:
                flags += TCP(buf, ip + 40)[5]
        frames += 1
        pos = end
    return pos, frames, flags


def _walker(path: str):
    """The record walk for the capture's link type."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    return _records_cooked if head[20:24] == struct.pack("<I", 276) else _records


def walk(path: str) -> tuple[int, int]:
    frames = flags = 0
    _records = _walker(path)
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
    _records = _walker(path)
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
