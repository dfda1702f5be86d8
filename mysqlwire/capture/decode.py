"""Link layer -> IPv4/IPv6 -> TCP, per frame, fast.

``decode_tcp(linktype, data)`` returns a :class:`TcpSegment` or ``None`` (not
TCP, a non-first IP fragment, malformed, unsupported link type).  It never
raises on bad bytes.  Pass a :class:`DecodeStats` to count why frames were
dropped.

Addresses stay raw (``saddr``/``daddr``: 4 or 16 bytes) so flows can be keyed
without formatting; ``seg.src``/``seg.dst`` format them on demand (cached).
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import NamedTuple

__all__ = [
    "ACK",
    "AF_INET6_VALUES",
    "CWR",
    "ECE",
    "FIN",
    "PSH",
    "RST",
    "SUPPORTED_LINKTYPES",
    "SYN",
    "URG",
    "VLAN_ETHERTYPES",
    "DecodeStats",
    "TcpSegment",
    "decode_tcp",
    "endpoint",
    "format_ip",
    "iter_segments",
]

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES = {
    0: "BSD loopback (NULL)",
    1: "Ethernet",
    12: "raw IP",
    14: "raw IP",
    101: "raw IP",
    108: "OpenBSD loopback",
    113: "Linux cooked (SLL)",
    228: "raw IPv4",
    229: "raw IPv6",
    276: "Linux cooked v2 (SLL2)",
    # Common ones we do not decode, for messages.
    105: "IEEE 802.11",
    127: "IEEE 802.11 radiotap",
    147: "user-defined (DLT_USER0)",
    192: "PPI",
    220: "USB (Linux mmapped)",
    249: "netlink",
    252: "Wireshark upper PDU",
}

SUPPORTED_LINKTYPES = frozenset((0, 1, 12, 14, 101, 108, 113, 228, 229, 276))

# Results of the internal decoder other than a segment.
_NON_TCP = 0
_MALFORMED = 1
_FRAGMENT = 2
_UNSUPPORTED = 3

_ET_IPV4 = 0x0800
_ET_IPV6 = 0x86DD
VLAN_ETHERTYPES = frozenset((0x8100, 0x88A8, 0x9100, 0x9200, 0x9300))
"""802.1Q / 802.1ad tags (and the pre-standard QinQ ones): skipped on the way to IP."""
_ET_PPPOE = 0x8864
_ET_MPLS = frozenset((0x8847, 0x8848))

_AF_INET = 2
AF_INET6_VALUES = frozenset((10, 23, 24, 28, 30))
"""AF_INET6 as BSD loopback headers write it (Linux, NetBSD, OpenBSD, FreeBSD, macOS)."""

_IP4 = struct.Struct("!BxHxxHxB2x4s4s").unpack_from  # vihl, totlen, frag, proto, src, dst
# Ethernet type + IPv4 header + TCP ports..flags in one go: the common frame.
_ETH_IP4_TCP = struct.Struct("!12xHBxHxxHxB2x4s4sHHIIBB").unpack_from
_IP6 = struct.Struct("!IHB").unpack_from  # ver/tc/flow, payload length, next header
_TCP = struct.Struct("!HHIIBB").unpack_from  # sport, dport, seq, ack, data offset, flags
_U16 = struct.Struct("!H").unpack_from
_U32BE = struct.Struct("!I").unpack_from
_U32LE = struct.Struct("<I").unpack_from


@lru_cache(maxsize=65536)
def format_ip(raw: bytes) -> str:
    """4 or 16 raw address bytes -> text (``"10.0.0.1"``, ``"::1"``)."""
    if len(raw) == 4:
        return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
    import socket  # (only for IPv6: the module costs ~3 ms of start-up)

    return socket.inet_ntop(socket.AF_INET6, raw)


def endpoint(ip: str, port: int) -> str:
    """``"1.2.3.4:3306"`` or ``"[::1]:3306"``."""
    if ":" in ip:
        return f"[{ip}]:{port}"
    return f"{ip}:{port}"


class TcpSegment(NamedTuple):
    """One TCP segment.

    ``saddr``/``daddr`` are raw address bytes (4 or 16); ``src``/``dst`` give
    them as text.  ``missing`` counts payload bytes the IP header announces
    but the capture cut off (snaplen): they never arrived.
    """

    saddr: bytes
    sport: int
    daddr: bytes
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes
    ipv6: bool
    missing: int = 0

    @property
    def src(self) -> str:
        return format_ip(self.saddr)

    @property
    def dst(self) -> str:
        return format_ip(self.daddr)

    @classmethod
    def make(
        cls,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        seq: int,
        ack: int = 0,
        flags: int = ACK,
        payload: bytes = b"",
        missing: int = 0,
    ) -> TcpSegment:
        """Build a segment from text addresses (tests, synthetic streams)."""
        import socket

        v6 = ":" in src
        fam = socket.AF_INET6 if v6 else socket.AF_INET
        return cls(
            socket.inet_pton(fam, src),
            sport,
            socket.inet_pton(fam, dst),
            dport,
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            flags,
            bytes(payload),
            v6,
            missing,
        )

    def __repr__(self) -> str:
        names = "".join(n for bit, n in _FLAG_NAMES if self.flags & bit)
        return (
            f"TcpSegment({endpoint(self.src, self.sport)} > {endpoint(self.dst, self.dport)} "
            f"[{names or '.'}] seq={self.seq} ack={self.ack} len={len(self.payload)}"
            + (f" missing={self.missing}" if self.missing else "")
            + ")"
        )


_FLAG_NAMES = ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, "A"), (URG, "U"))

_new_segment = tuple.__new__


def _ipv4(data, off: int):
    vihl, tot, frag, proto, src, dst = _IP4(data, off)
    ihl = (vihl & 0x0F) << 2
    if vihl >> 4 != 4 or ihl < 20:
        return _MALFORMED
    if proto != 6:
        return _NON_TCP
    if frag & 0x1FFF:
        return _FRAGMENT
    avail = len(data)
    end = off + tot
    if tot < ihl:
        if tot:
            return _MALFORMED
        end = avail  # TSO / offloaded capture: total length 0
    t = off + ihl
    sport, dport, seq, ack, doff, flags = _TCP(data, t)
    p = t + ((doff >> 4) << 2)
    if p < t + 20 or p > end:
        return _MALFORMED
    if end > avail:  # cut by snaplen
        if p > avail:
            return _MALFORMED
        return _new_segment(
            TcpSegment,
            (src, sport, dst, dport, seq, ack, flags, data[p:avail], False, end - avail),
        )
    return _new_segment(
        TcpSegment, (src, sport, dst, dport, seq, ack, flags, data[p:end], False, 0)
    )


def _ipv6(data, off: int):
    vtf, plen, nh = _IP6(data, off)
    if vtf >> 28 != 6:
        return _MALFORMED
    p = off + 40
    avail = len(data)
    end = p + plen if plen else avail  # 0: jumbogram or offloaded capture
    if p > avail:
        return _MALFORMED
    while nh != 6:
        if nh == 0 or nh == 43 or nh == 60:  # hop-by-hop, routing, destination options
            nh = data[p]
            p += (data[p + 1] + 1) << 3
        elif nh == 44:  # fragment
            if _U16(data, p + 2)[0] & 0xFFF8:
                return _FRAGMENT
            nh = data[p]
            p += 8
        elif nh == 51:  # authentication header
            nh = data[p]
            p += (data[p + 1] + 2) << 2
        else:
            return _NON_TCP
        if p > end:
            return _MALFORMED
    sport, dport, seq, ack, doff, flags = _TCP(data, p)
    t = p
    p = t + ((doff >> 4) << 2)
    if p < t + 20 or p > end:
        return _MALFORMED
    src = data[off + 8 : off + 24]
    dst = data[off + 24 : off + 40]
    if end > avail:
        if p > avail:
            return _MALFORMED
        return _new_segment(
            TcpSegment,
            (src, sport, dst, dport, seq, ack, flags, data[p:avail], True, end - avail),
        )
    return _new_segment(TcpSegment, (src, sport, dst, dport, seq, ack, flags, data[p:end], True, 0))


def _by_ethertype(data, off: int, et: int):
    while True:
        if et == _ET_IPV4:
            return _ipv4(data, off)
        if et == _ET_IPV6:
            return _ipv6(data, off)
        if et in VLAN_ETHERTYPES:
            et = _U16(data, off + 2)[0]
            off += 4
        elif et == _ET_PPPOE:
            proto = _U16(data, off + 6)[0]
            off += 8
            if proto == 0x0021:
                et = _ET_IPV4
            elif proto == 0x0057:
                et = _ET_IPV6
            else:
                return _NON_TCP
        elif et in _ET_MPLS:
            while not data[off + 2] & 1:  # bottom-of-stack bit
                off += 4
            off += 4
            v = data[off] >> 4
            if v == 4:
                return _ipv4(data, off)
            if v == 6:
                return _ipv6(data, off)
            return _NON_TCP
        else:
            return _NON_TCP


def _by_af(data, af: int):
    if af == _AF_INET:
        return _ipv4(data, 4)
    if af in AF_INET6_VALUES:
        return _ipv6(data, 4)
    return _NON_TCP


def decode_frame(linktype: int, data):
    """Segment, or one of the int reasons above. Never raises."""
    try:
        if linktype == 1:
            if len(data) >= 54:
                et, vihl, tot, frag, proto, src, dst, sport, dport, seq, ack, doff, flags = (
                    _ETH_IP4_TCP(data, 0)
                )
                if et == 0x0800 and vihl == 0x45 and proto == 6 and not frag & 0x1FFF:
                    end = 14 + tot
                    p = 34 + ((doff >> 4) << 2)
                    if p < 54 or p > end or end > len(data):
                        return _ipv4(data, 14)  # the careful path sorts these out
                    return _new_segment(
                        TcpSegment,
                        (src, sport, dst, dport, seq, ack, flags, data[p:end], False, 0),
                    )
            else:
                et = (data[12] << 8) | data[13]
            if et == _ET_IPV4:
                return _ipv4(data, 14)
            return _by_ethertype(data, 14, et)
        if linktype == 113:
            return _by_ethertype(data, 16, (data[14] << 8) | data[15])
        if linktype == 276:
            if len(data) < 20:
                return _MALFORMED
            return _by_ethertype(data, 20, (data[0] << 8) | data[1])
        if linktype == 0:
            af = _U32LE(data, 0)[0]
            if af > 0xFFFF:  # written by a big-endian host
                af = _U32BE(data, 0)[0]
            return _by_af(data, af)
        if linktype == 101 or linktype == 12 or linktype == 14:
            v = data[0] >> 4
            if v == 4:
                return _ipv4(data, 0)
            if v == 6:
                return _ipv6(data, 0)
            return _MALFORMED
        if linktype == 228:
            return _ipv4(data, 0)
        if linktype == 229:
            return _ipv6(data, 0)
        if linktype == 108:
            return _by_af(data, _U32BE(data, 0)[0])
        return _UNSUPPORTED
    except (IndexError, struct.error):
        return _MALFORMED


class DecodeStats:
    """Why frames did or did not become TCP segments.

    ``frames`` = ``tcp`` + ``non_tcp`` + ``fragments`` + ``malformed`` +
    ``unsupported``.  ``truncated`` counts TCP segments whose payload the
    snaplen cut (they are still in ``tcp``).  ``by_linktype`` maps each link
    type to its frame count.
    """

    __slots__ = (
        "frames",
        "tcp",
        "non_tcp",
        "fragments",
        "malformed",
        "unsupported",
        "truncated",
        "by_linktype",
    )

    def __init__(self) -> None:
        self.frames = 0
        self.tcp = 0
        self.non_tcp = 0
        self.fragments = 0
        self.malformed = 0
        self.unsupported = 0
        self.truncated = 0
        self.by_linktype: dict[int, int] = {}

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return "DecodeStats(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"


_REASON_FIELD = {
    _NON_TCP: "non_tcp",
    _MALFORMED: "malformed",
    _FRAGMENT: "fragments",
    _UNSUPPORTED: "unsupported",
}


def decode_tcp(linktype: int, data, stats: DecodeStats | None = None) -> TcpSegment | None:
    """Decode one frame to a TCP segment, or None (counted in ``stats``).

    ``data`` is bytes (a memoryview or bytearray is copied to bytes first, so
    the segment's addresses and payload are always bytes).
    """
    if data.__class__ is not bytes:
        data = bytes(data)
    seg = decode_frame(linktype, data)
    if stats is not None:
        stats.frames += 1
        stats.by_linktype[linktype] = stats.by_linktype.get(linktype, 0) + 1
    if seg.__class__ is TcpSegment:
        if stats is not None:
            stats.tcp += 1
            if seg.missing:
                stats.truncated += 1
        return seg
    if stats is not None:
        name = _REASON_FIELD[seg]
        setattr(stats, name, getattr(stats, name) + 1)
    return None


def linktype_name(linktype: int) -> str:
    name = LINKTYPE_NAMES.get(linktype)
    return f"{linktype} ({name})" if name else str(linktype)


def iter_segments(reader, stats: DecodeStats | None = None):
    """Yield ``(ts, TcpSegment)`` for every TCP frame of ``reader``.

    ``reader`` is a :class:`~mysqlwire.capture.reader.CaptureReader` (or any
    iterable of ``(ts, linktype, data, iface)``).  Counts go to ``stats``
    (a fresh :class:`DecodeStats` if omitted; pass one to read it).  Raises
    :class:`~mysqlwire.errors.CaptureError` at the end if frames were read but
    none had a link type we can decode.
    """
    from ..errors import CaptureError

    if stats is None:
        stats = DecodeStats()
    if hasattr(reader, "records"):
        records = reader.records()  # our reader: data is already bytes
    else:
        records = (
            (ts, lt, data if data.__class__ is bytes else bytes(data), iface)
            for ts, lt, data, iface in reader
        )
    decode = decode_frame
    seg_cls = TcpSegment
    by_lt = stats.by_linktype
    cur_lt = None
    mark = 0  # frame count when cur_lt began
    frames = tcp = 0
    try:
        for ts, lt, data, _iface in records:
            frames += 1
            if lt != cur_lt:
                if cur_lt is not None:
                    by_lt[cur_lt] = by_lt.get(cur_lt, 0) + frames - 1 - mark
                cur_lt = lt
                mark = frames - 1
            seg = decode(lt, data)
            if seg.__class__ is seg_cls:
                tcp += 1
                if seg[9]:  # missing: cut by snaplen
                    stats.truncated += 1
                yield ts, seg
            else:
                name = _REASON_FIELD[seg]
                setattr(stats, name, getattr(stats, name) + 1)
    finally:
        if cur_lt is not None:
            by_lt[cur_lt] = by_lt.get(cur_lt, 0) + frames - mark
        stats.frames += frames
        stats.tcp += tcp
    if stats.frames and stats.unsupported == stats.frames:
        names = ", ".join(linktype_name(lt) for lt in sorted(by_lt))
        raise CaptureError(f"unsupported link type {names}: no frame could be decoded")
