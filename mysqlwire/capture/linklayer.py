"""Where a captured frame's IP header is, and whether the fast lane skips it.

The capture reader's fast lane (:meth:`mysqlwire.capture.reader.CaptureReader.records`,
:attr:`mysqlwire.capture.tcp.Reassembler.fast`) looks at frames without
decoding them: :func:`ip_offset` finds the IP header behind any link header
:func:`mysqlwire.capture.decode.decode_frame` reads (``FAST_L3``), and
:func:`skip` decides, from a fast-lane entry, whether the frame can no longer
change any answer.  These are the references the native loop
(``_walk.c``'s ``ip_at`` and ``skip_frame``) is held to by the tests.
"""

from __future__ import annotations

from .decode import AF_INET6_VALUES, VLAN_ETHERTYPES

__all__ = ["FAST_L3", "NO_L3", "flow_key", "ip_offset", "skip"]

# Where a frame's IP header is, per link type, for the fast lane and the
# native decoder: (offset, check), the check being one of: >= 0, the EtherType
# at that offset is IPv4 or IPv6, or one or two VLAN tags at the offset lead
# to it (the header then starts 4 or 8 bytes later); -1 none (raw IP: the
# version nibble decides); -5 / -6 none, IPv4 / IPv6 only; -2 a BSD loopback
# address family of AF_INET or an AF_INET6 in either byte order; -3 the same,
# big-endian only.  Every link type decode.decode_frame reads (and no other)
# has its entry: a capture of `tcpdump -i any` (Linux cooked v2), a VLAN trunk,
# a BSD loopback or IPv6 takes the same fast path as IPv4 over Ethernet.
# _walk.c's ip_at() writes out ip_offset().
FAST_L3 = {
    1: (14, 12),  # Ethernet
    113: (16, 14),  # Linux cooked (SLL)
    276: (20, 0),  # Linux cooked v2 (SLL2)
    0: (4, -2),  # BSD loopback (NULL): host byte order
    108: (4, -3),  # OpenBSD loopback: network byte order
    12: (0, -1),  # raw IP
    14: (0, -1),
    101: (0, -1),
    228: (0, -5),  # raw IPv4
    229: (0, -6),  # raw IPv6
}
NO_L3 = (0, -4)  # a link type not in FAST_L3: no frame is located
_WANT = {-1: 0, -5: 4, -6: 6}  # raw IP: the version read there (0: either)


def ip_offset(buf, start: int, end: int, l3off: int, check: int) -> int:
    """Where the IP header of the frame ``buf[start:end]`` starts (an index
    of ``buf``), by its link header (see ``FAST_L3``); -1 when it is not IP
    by its link header, its version is not the one the link header names, or
    the frame holds fewer bytes from there than the fast lane reads (IPv4: 34,
    a header without options and the TCP header up to its flags; IPv6: 54).
    The reference for _walk.c's ``ip_at``."""
    p = start + l3off
    if check == -4 or end - p < 34:
        return -1
    if check >= 0:
        e = start + check
        et = buf[e] << 8 | buf[e + 1]
        tags = 0
        while et != 0x0800 and et != 0x86DD:
            if tags == 2 or et not in VLAN_ETHERTYPES or end - p < 38:
                return -1
            et = buf[p + 2] << 8 | buf[p + 3]
            p += 4
            tags += 1
        want = 4 if et == 0x0800 else 6
    elif check in _WANT:
        want = _WANT[check]
    else:
        a, b, c, d = buf[start : start + 4]
        if a == b == c == 0:
            af = d
        elif check == -2 and b == c == d == 0:
            af = a
        else:
            return -1
        if af == 2:
            want = 4
        elif af in AF_INET6_VALUES:
            want = 6
        else:
            return -1
    version = buf[p] >> 4
    if (version != want) if want else (version != 4 and version != 6):
        return -1
    if version == 6 and end - p < 54:
        return -1
    return p


def flow_key(buf, p: int) -> bytes:
    """The fast-lane key of the frame whose IP header is at ``buf[p]`` (found
    by :func:`ip_offset`): its addresses and ports as they follow each other,
    IPv4 4 + 4 + 2 + 2 bytes, IPv6 16 + 16 + 2 + 2 (``fast_lane`` in _walk.c)."""
    return buf[p + 8 : p + 44] if buf[p] >> 4 == 6 else buf[p + 12 : p + 24]


def skip(buf, p: int, end: int, ts: float, ent: tuple) -> bool:
    """The fast-lane test for a frame whose IP header is at ``buf[p]`` (found
    by :func:`ip_offset`), ending at ``end``, whose addresses and ports are a
    key of the lane with entry ``ent`` (see ``records``): True when it can be
    skipped.  _walk.c's ``skip_frame`` writes it out."""
    if buf[p] >> 4 == 6:
        t = p + 40  # (TCP right after the fixed header, or not taken)
        if buf[p + 6] != 6 or buf[t + 13] & ent[1]:
            return False
        pend = t + (buf[p + 4] << 8 | buf[p + 5])
    else:
        t = p + 20
        if not (
            buf[p] == 0x45  # IPv4, no options
            and buf[p + 9] == 6  # TCP
            and not buf[t + 13] & ent[1]
            and not (buf[p + 6] & 0x1F or buf[p + 7])  # not a later fragment
        ):
            return False
        pend = p + (buf[p + 2] << 8 | buf[p + 3])
    mode = ent[2]
    return bool(
        not mode  # a muted direction
        or (mode == 3 and not ent[3].awaiting)  # a lane's server, at rest
        or (
            pend == t + (buf[t + 12] >> 4 << 2)
            and (mode == 1 or (mode == 2 and not ent[3].awaiting))
        )  # a bare ACK that changes nothing
        or (mode != 1 and ent[4](buf, p, end, ts))
    )
