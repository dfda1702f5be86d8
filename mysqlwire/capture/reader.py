"""Streaming pcap / pcapng reader (pure stdlib).

``open_capture(source)`` sniffs the magic number and returns a
:class:`CaptureReader`, an iterator of :class:`Frame`.  The file is read in
1 MiB chunks, so memory stays flat whatever the capture's size.

A capture that cannot be used at all (empty, not a capture, unreadable, a bad
header) raises :class:`~mysqlwire.errors.CaptureError` from ``open_capture``.
A capture that is merely cut short (or corrupt further on) does not raise:
iteration stops after the last complete frame and the reader records
``truncated = True`` and a one-line ``error``.
"""

from __future__ import annotations

import os
import struct
import sys
from typing import IO, NamedTuple

from ..errors import CaptureError, UsageError
from .decode import SUPPORTED_LINKTYPES, TcpSegment, decode_frame, linktype_name
from .linklayer import FAST_L3, NO_L3, flow_key, ip_offset, skip
from .native import walk as _native

__all__ = [
    "CHUNK_SIZE",
    "PCAP_MAGICS",
    "CaptureReader",
    "Frame",
    "SECRET_TLS_KEYLOG",
    "open_capture",
]

CHUNK_SIZE = 1 << 20
"""Bytes read from the file at a time."""

MAX_RECORD = 1 << 26
"""A record or block claiming more than this (64 MiB) is corrupt, not big."""

SECRET_TLS_KEYLOG = 0x544C534B
"""pcapng Decryption Secrets Block type of an NSS key log (``'TLSK'``)."""

_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
_BT_IDB = 0x00000001
_BT_PB = 0x00000002
_BT_SPB = 0x00000003
_BT_EPB = 0x00000006
_BT_DSB = 0x0000000A

# magic (as read big-endian) -> (byte order, nanosecond, record header size)
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", False, 16),
    b"\xa1\xb2\xc3\xd4": (">", False, 16),
    b"\x4d\x3c\xb2\xa1": ("<", True, 16),
    b"\xa1\xb2\x3c\x4d": (">", True, 16),
    # Alexey Kuznetzov's "modified" pcap: 8 more bytes per record header.
    b"\x34\xcd\xb2\xa1": ("<", False, 24),
    b"\xa1\xb2\xcd\x34": (">", False, 24),
}

# the native loops (the tests switch them off)
_PcapScan = _native.PcapScan if _native is not None else None
_PcapngScan = _native.PcapngScan if _native is not None else None

_KNOWN_NOT_CAPTURE = {
    b"\x1f\x8b": "gzip-compressed data; decompress it first",
    b"PK\x03\x04": "a zip archive",
    b"BZh": "bzip2-compressed data; decompress it first",
    b"\xfd7zXZ": "xz-compressed data; decompress it first",
    b"\x28\xb5\x2f\xfd": "zstd-compressed data; decompress it first",
}


class Frame(NamedTuple):
    """One captured frame.

    ``ts`` is seconds since the epoch (float), ``linktype`` the LINKTYPE_ value
    of the interface, ``data`` the captured bytes, ``iface`` the pcapng
    interface index (always 0 for pcap).
    """

    ts: float
    linktype: int
    data: bytes
    iface: int


def describe_start(head: bytes) -> str:
    """How the first bytes of a non-capture look, for an error message."""
    for magic, what in _KNOWN_NOT_CAPTURE.items():
        if head.startswith(magic):
            return what
    first = head[:4]
    if first and all(32 <= b < 127 for b in first):
        return f"starts with {first.decode('ascii')!r}"
    return "starts with bytes " + " ".join(f"{b:02x}" for b in first)


class CaptureReader:
    """Iterator of :class:`Frame` over one pcap or pcapng stream.

    Attributes:
        format: ``"pcap"`` or ``"pcapng"``.
        nanosecond: pcap with nanosecond timestamps (pcapng: any interface
            with a resolution finer than microseconds).
        linktypes: set of link types seen so far (pcapng: grows as interface
            blocks are read).
        secrets: ``(secret_type, data)`` from pcapng Decryption Secrets Blocks,
            in file order, as they are read.
        frames_read, bytes_read: progress (bytes of the file consumed).
        truncated, error: set when iteration stopped on a cut-short or
            corrupt record; ``error`` is one line naming the byte offset.
        name: the path, ``"<stdin>"`` or the file object's name.
    """

    def __init__(self, fileobj: IO[bytes], name: str, *, owns: bool = False):
        self.name = name
        self._f = fileobj
        self._owns = owns
        self._buf = b""
        self._pos = 0
        self._base = 0  # file offset of self._buf[0]
        self._eof = False
        self._pend: tuple[bytes, int] | None = None  # see _fill
        self.format = ""
        self.nanosecond = False
        self.linktypes: set[int] = set()
        self.secrets: list[tuple[int, bytes]] = []
        self.frames_read = 0
        self.fast_lane = False  # records() follows a reassembler's fast lane
        self._decode = False  # the native loop hands out (ts, segment): see decoded()
        self.truncated = False
        self.error: str | None = None
        try:
            self._open()
        except OSError as exc:
            self.close()
            raise CaptureError(f"{name}: cannot read: {exc.strerror or exc}") from None
        except BaseException:
            self.close()
            raise
        if self.format == "pcap":
            self._records = self._pcap_records(None, *FAST_L3.get(self._linktype, NO_L3))
        else:
            self._records = self._pcapng_records()

    # -- buffer -------------------------------------------------------------

    def _fill(self, need: int) -> bool:
        """Make ``need`` bytes available from ``self._pos``; False at EOF.

        A chunk read from the file becomes the buffer itself (no copy); only
        a record that straddles two chunks is copied, with the bytes before
        the next chunk's first whole record (the rest of that chunk waits in
        ``_pend`` as ``(chunk, offset)``): joining every chunk to the tail of
        the previous one would copy the whole file once more."""
        buf, pos = self._buf, self._pos
        have = len(buf) - pos
        if have >= need:
            return True
        if self._eof and self._pend is None:
            return False
        self._base += pos
        parts = [buf[pos:]] if have else []
        # read1: whatever is available (one raw read), so a pipe fed packet by
        # packet (tcpdump -U -w - | mysqlwire dissect -) is processed as it
        # arrives instead of waiting for a whole chunk
        read = getattr(self._f, "read1", None) or self._f.read
        while have < need:
            if self._pend is not None:
                chunk, off = self._pend
                self._pend = None
            else:
                if self._eof:
                    break
                try:
                    chunk = read(max(CHUNK_SIZE, need - have))
                except OSError as exc:
                    self._eof = True
                    self._fail(f"read error at byte {self._base + have}: {exc.strerror or exc}")
                    break
                if not chunk:
                    self._eof = True
                    break
                if type(chunk) is not bytes:  # a file object giving bytearray / memoryview
                    chunk = bytes(chunk)
                off = 0
            avail = len(chunk) - off
            if not parts and avail >= need:
                self._buf = chunk  # the chunk itself: no copy
                self._pos = off
                self._base -= off
                return True
            take = need - have
            if take < avail:
                parts.append(chunk[off : off + take])
                self._pend = (chunk, off + take)
                have = need
            else:
                parts.append(chunk[off:] if off else chunk)
                have += avail
        self._buf = b"".join(parts)
        self._pos = 0
        return have >= need

    @property
    def bytes_read(self) -> int:
        """Bytes of the capture consumed so far (complete records only)."""
        return self._base + self._pos

    def _fail(self, message: str) -> None:
        if not self.truncated:
            self.truncated = True
            self.error = message

    def _stop(self, pos: int, corrupt: str | None = None) -> None:
        """Record why iteration stops at buffer position ``pos``."""
        self._pos = pos
        at = self._base + pos
        if corrupt is not None:
            self._fail(f"corrupt record at byte {at}: {corrupt}")
        elif len(self._buf) > pos:
            self._fail(f"truncated record at byte {at}")

    # -- header -------------------------------------------------------------

    def _open(self) -> None:
        if not self._fill(4):
            if not self._buf:
                raise CaptureError(f"{self.name}: empty file (0 bytes), not a capture")
            raise CaptureError(
                f"{self.name}: not a pcap/pcapng file ({len(self._buf)} bytes, "
                f"{describe_start(self._buf)})"
            )
        magic = self._buf[:4]
        if magic in PCAP_MAGICS:
            self._open_pcap(magic)
        elif magic == b"\x0a\x0d\x0d\x0a":
            self._open_pcapng()
        else:
            self._fill(8)
            raise CaptureError(
                f"{self.name}: not a pcap/pcapng file ({describe_start(self._buf[:8])})"
            )

    def _open_pcap(self, magic: bytes) -> None:
        order, nano, rec_hlen = PCAP_MAGICS[magic]
        if not self._fill(24):
            raise CaptureError(
                f"{self.name}: truncated pcap file header ({len(self._buf)} of 24 bytes)"
            )
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(
            order + "HHiIII", self._buf, 4
        )
        if major != 2:
            raise CaptureError(f"{self.name}: unsupported pcap version {major}.{minor}")
        self.format = "pcap"
        self.nanosecond = nano
        self._order = order
        self._rec_hlen = rec_hlen
        self._linktype = network & 0xFFFF  # upper bits: FCS length flags
        self.snaplen = snaplen
        self.linktypes.add(self._linktype)
        self._pos = 24
        if self._linktype not in SUPPORTED_LINKTYPES:
            raise CaptureError(
                f"{self.name}: unsupported link type {linktype_name(self._linktype)}: "
                "no frame can be decoded"
            )

    def _open_pcapng(self) -> None:
        if not self._fill(28):
            raise CaptureError(
                f"{self.name}: truncated pcapng section header ({len(self._buf)} bytes)"
            )
        bom = self._buf[8:12]
        if bom == b"\x4d\x3c\x2b\x1a":
            order = "<"
        elif bom == b"\x1a\x2b\x3c\x4d":
            order = ">"
        else:
            raise CaptureError(
                f"{self.name}: pcapng section header with a bad byte-order magic ({bom.hex(' ')})"
            )
        (blen,) = struct.unpack_from(order + "I", self._buf, 4)
        if blen < 28 or blen % 4 or blen > MAX_RECORD:
            raise CaptureError(f"{self.name}: pcapng section header with bad length {blen}")
        self.format = "pcapng"
        self.snaplen = 0
        self._fill(CHUNK_SIZE)
        seen = self._peek_pcapng_linktypes()
        if seen is not None and seen and not (seen & SUPPORTED_LINKTYPES):
            names = ", ".join(linktype_name(lt) for lt in sorted(seen))
            raise CaptureError(
                f"{self.name}: unsupported link type {names}: no frame can be decoded"
            )

    def _peek_pcapng_linktypes(self) -> set[int] | None:
        """Link types of every interface, if the whole file is in the buffer."""
        if not self._eof:
            return None
        buf = self._buf
        pos = 0
        order = "<"
        seen: set[int] = set()
        while pos + 12 <= len(buf):
            btype = buf[pos : pos + 4]
            if btype == b"\x0a\x0d\x0d\x0a":
                order = "<" if buf[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            btype, size = struct.unpack_from(order + "II", buf, pos)
            if size < 12 or size & 3:
                break
            if btype == _BT_IDB and pos + 10 <= len(buf):
                seen.add(struct.unpack_from(order + "H", buf, pos + 8)[0])
            pos += size
        return seen

    # -- a byte range (one capture split between processes) -------------------

    def window(self, start: int, stop: int | None = None) -> None:
        """Read only the records from byte ``start`` (a record boundary the
        caller found) up to byte ``stop`` (exclusive; None: the end of the
        file).  pcap files only, before the first record is read.  Offsets in
        :attr:`bytes_read` and in errors stay those of the whole file; when
        the last record crosses ``stop`` the reader stops there as on a
        truncated file (``bytes_read != stop`` tells the caller)."""
        if self.format != "pcap" or self.frames_read or not hasattr(self._f, "seek"):
            raise UsageError("window() needs a pcap file before its first record")
        if start < 24 or (stop is not None and stop < start):
            raise UsageError(f"bad window {start}..{stop}")
        self._f.seek(start)
        self._buf = b""
        self._pend = None
        self._pos = 0
        self._base = start
        self._eof = False
        if stop is not None:
            self._f = _Limited(self._f, stop - start)

    # -- iteration ----------------------------------------------------------

    def __iter__(self) -> CaptureReader:
        return self

    def __next__(self) -> Frame:
        return tuple.__new__(Frame, next(self._records))

    def decoded(self, fast: dict | None = None):
        """``(ts, segment)`` for every frame, ``segment`` being what
        :func:`~mysqlwire.capture.decode.decode_frame` returns for it (a
        :class:`~mysqlwire.capture.decode.TcpSegment` or the int reason it is
        none); ``fast`` as in :meth:`records`.  The native loops decode the
        common frames themselves (IPv4 without options or IPv6 with TCP next,
        behind any link header ``decode_frame`` reads)."""
        records = self.records(fast)
        if self._native_decoding():
            return records
        return ((ts, decode_frame(lt, data)) for ts, lt, data, _iface in records)

    def records(self, fast: dict | None = None):
        """The same frames as plain ``(ts, linktype, data, iface)`` tuples.

        Shares the position of the iterator (both consume the same stream); a
        little faster than :class:`Frame` objects, for the hot loops.

        ``fast`` is a reassembler's fast lane
        (:attr:`mysqlwire.capture.tcp.Reassembler.fast`): TCP frames of the
        directions it lists are not yielded when their flags allow it (see
        :mod:`mysqlwire.capture.linklayer`); the reader sets their flow's
        ``last_ts`` instead.  Only from the first frame on, for the link types
        decode.decode_frame reads and the IPv4 (no options) and IPv6 (TCP
        next) frames whose header it finds there: other frames take the
        ordinary path.
        """
        if fast is not None and self.frames_read == 0:
            if self.format == "pcapng":
                self._records = self._pcapng_records(fast)
                self.fast_lane = True
            else:
                l3 = FAST_L3.get(self._linktype)
                if l3 is not None:
                    self._records = self._pcap_records(fast, *l3)
                    self.fast_lane = True
        return self._records

    def _native_decoding(self) -> bool:
        """Will the native loop decode (see :meth:`decoded`)?  Asked before
        the first frame, it switches the record loop to handing out
        ``(ts, segment)`` (pcapng: the blocks the Python loop takes are
        decoded there with ``decode_frame``)."""
        native = _PcapScan if self.format == "pcap" else _PcapngScan
        if native is None or self.frames_read:
            return False
        self._decode = True
        return True

    def _pcap_records(self, fast: dict | None, l3off: int, check: int):
        if _PcapScan is not None:
            return self._native_pcap_records(fast, l3off, check)
        return self._python_pcap_records(fast, l3off, check)

    def _native_pcap_records(self, fast: dict | None, l3off: int, check: int):
        """:meth:`_python_pcap_records`, with the loop over the buffer's
        records in C (``_walk.c``): Python runs only for the frames handed
        out and for the buffer's refills."""
        scan = _PcapScan(
            self._order == ">",
            self._rec_hlen,
            1e9 if self.nanosecond else 1e6,
            self._linktype,
            l3off,
            check,
            fast,
        )
        if self._decode:
            scan.decode(TcpSegment, decode_frame)
        walk = scan.scan
        hlen = self._rec_hlen
        buf = self._buf
        pos = self._pos
        try:
            while True:
                pos, frame = walk(buf, pos)
                if frame is not None:
                    self._pos = pos
                    self.frames_read = scan.n
                    yield frame
                    continue
                need = scan.need
                if need > hlen and need - hlen > MAX_RECORD:
                    self._stop(pos, f"captured length {need - hlen} is impossible")
                    return
                self._pos = pos
                if not self._fill(need):
                    self._stop(self._pos)
                    return
                buf = self._buf
                pos = self._pos
        finally:
            self.frames_read = scan.n
            self._done()

    def _python_pcap_records(self, fast: dict | None, l3off: int, check: int):
        unpack = struct.Struct(self._order + "IIII").unpack_from
        hlen = self._rec_hlen
        lt = self._linktype
        div = 1e9 if self.nanosecond else 1e6
        buf = self._buf
        pos = self._pos
        blen = len(buf)
        n = 0
        if fast is not None:
            fast_get = fast.get
            minlen = l3off + 34  # IPv4 header without options + TCP flags
            ipv4 = b"\x08\x00"
        try:
            while True:
                if blen - pos < hlen:
                    self._pos = pos
                    if not self._fill(hlen):
                        self._stop(self._pos)
                        return
                    buf = self._buf
                    pos = self._pos
                    blen = len(buf)
                sec, frac, incl, _orig = unpack(buf, pos)
                start = pos + hlen
                end = start + incl
                if end > blen:
                    if incl > MAX_RECORD:
                        self._stop(pos, f"captured length {incl} is impossible")
                        return
                    self._pos = pos
                    if not self._fill(hlen + incl):
                        self._stop(self._pos)
                        return
                    buf = self._buf
                    pos = self._pos
                    blen = len(buf)
                    start = pos + hlen
                    end = start + incl
                n += 1
                if fast is not None and incl >= minlen:
                    # the fast lane (see records()): one slice, one dict look-up
                    p = start + l3off
                    if not (
                        check >= 0
                        and buf[start + check : start + check + 2] == ipv4
                        and buf[p] >> 4 == 4
                    ):  # (ip_offset's common case, inline)
                        p = ip_offset(buf, start, end, l3off, check)
                    ent = fast_get(flow_key(buf, p)) if p >= 0 else None
                    if ent is not None and skip(buf, p, end, sec + frac / div, ent):
                        ent[0].last_ts = sec + frac / div
                        pos = end
                        continue
                self._pos = pos = end
                self.frames_read = n
                yield (sec + frac / div, lt, buf[start:end], 0)
        finally:
            self.frames_read = n
            self._done()

    def _pcapng_records(self, fast: dict | None = None):
        fast_get = fast.get if fast is not None else None
        # the native loop (_walk.c) takes the sound Enhanced Packet Blocks
        # lying whole in the buffer; every other block comes here
        scan = _PcapngScan(fast, FAST_L3) if _PcapngScan is not None else None
        decode = self._decode  # (ts, segment) pairs: see decoded()
        if decode and scan is not None:
            scan.decode(TcpSegment, decode_frame)
        walked = 0  # scan.n when last looked at
        buf = self._buf
        pos = self._pos
        blen = len(buf)
        n = 0
        order = "<"
        hdr = struct.Struct("<II").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        u32 = struct.Struct("<I").unpack_from
        ifaces: list[tuple[int, int, int, int]] = []  # (linktype, divisor, offset, snaplen)
        last_ts = 0.0
        try:
            while True:
                if scan is not None:
                    pos, frame = scan.scan(buf, pos, ifaces, order == ">")
                    if scan.n != walked:
                        walked = scan.n
                        last_ts = scan.last_ts
                    if frame is not None:
                        self._pos = pos
                        self.frames_read = n + walked
                        yield frame
                        continue
                if blen - pos < 12:
                    self._pos = pos
                    if not self._fill(12):
                        self._stop(self._pos)
                        return
                    buf = self._buf
                    pos = self._pos
                    blen = len(buf)
                btype, size = hdr(buf, pos)
                if btype == _PCAPNG_SHB:
                    bom = buf[pos + 8 : pos + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        order = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        order = ">"
                    else:
                        self._stop(pos, "pcapng section header with a bad byte-order magic")
                        return
                    hdr = struct.Struct(order + "II").unpack_from
                    epb = struct.Struct(order + "IIIII").unpack_from
                    u32 = struct.Struct(order + "I").unpack_from
                    btype, size = hdr(buf, pos)
                    ifaces = []
                if size < 12 or size & 3 or size > MAX_RECORD:
                    self._stop(pos, f"pcapng block length {size}")
                    return
                if pos + size > blen:
                    self._pos = pos
                    if not self._fill(size):
                        self._stop(self._pos)
                        return
                    buf = self._buf
                    pos = self._pos
                    blen = len(buf)
                end = pos + size
                if btype == _BT_EPB or btype == _BT_PB:
                    if size < 32:
                        self._stop(pos, f"packet block length {size}")
                        return
                    if btype == _BT_EPB:
                        iface, tsh, tsl, caplen, _orig = epb(buf, pos + 8)
                    else:
                        iface_drops, tsh, tsl, caplen, _orig = epb(buf, pos + 8)
                        iface = iface_drops & 0xFFFF if order == "<" else iface_drops >> 16
                    if caplen > size - 32:
                        self._stop(pos, f"captured length {caplen} exceeds its block")
                        return
                    if iface >= len(ifaces):
                        self._stop(pos, f"packet on undeclared interface {iface}")
                        return
                    lt, div, offset, _snap = ifaces[iface]
                    last_ts = ((tsh << 32) | tsl) / div + offset
                    n += 1  # (frames_read is set when a frame is handed out)
                    if fast_get is not None and lt in FAST_L3:
                        # the fast lane, as in _pcap_records
                        start = pos + 28
                        p = ip_offset(buf, start, start + caplen, *FAST_L3[lt])
                        if p >= 0:
                            ent = fast_get(flow_key(buf, p))
                            if ent is not None and skip(buf, p, start + caplen, last_ts, ent):
                                ent[0].last_ts = last_ts
                                pos = end
                                continue
                    data = buf[pos + 28 : pos + 28 + caplen]
                    self._pos = pos = end
                    self.frames_read = n + walked
                    yield (
                        (last_ts, decode_frame(lt, data)) if decode else (last_ts, lt, data, iface)
                    )
                    continue
                if btype == _BT_SPB:
                    if not ifaces:
                        self._stop(pos, "simple packet block before any interface")
                        return
                    lt, _div, _offset, snap = ifaces[0]
                    (orig,) = u32(buf, pos + 8)
                    caplen = min(orig, size - 16)
                    if snap:
                        caplen = min(caplen, snap)
                    n += 1
                    self.frames_read = n + walked
                    data = buf[pos + 12 : pos + 12 + caplen]
                    self._pos = pos = end
                    # No timestamp in an SPB: keep the previous packet's.
                    yield (last_ts, decode_frame(lt, data)) if decode else (last_ts, lt, data, 0)
                    continue
                if btype == _BT_IDB:
                    if size < 20:
                        self._stop(pos, f"interface block length {size}")
                        return
                    iface_info = self._parse_idb(buf, pos, size, order)
                    ifaces.append(iface_info)
                    self.linktypes.add(iface_info[0])
                elif btype == _BT_DSB:
                    if size < 20:
                        self._stop(pos, f"secrets block length {size}")
                        return
                    stype, slen = struct.unpack_from(order + "II", buf, pos + 8)
                    if slen > size - 20:
                        self._stop(pos, f"secret length {slen} exceeds its block")
                        return
                    self.secrets.append((stype, bytes(buf[pos + 16 : pos + 16 + slen])))
                # Other blocks (SHB body, NRB, ISB, custom...) are skipped.
                self._pos = pos = end
        finally:
            self.frames_read = n + walked
            self._done()

    def _parse_idb(self, buf: bytes, pos: int, size: int, order: str):
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
        divisor = 1_000_000
        offset = 0
        opt = pos + 16
        end = pos + size - 4
        ohdr = struct.Struct(order + "HH").unpack_from
        while opt + 4 <= end:
            code, olen = ohdr(buf, opt)
            if code == 0:
                break
            value = opt + 4
            if value + olen > end:
                break
            if code == 9 and olen >= 1:  # if_tsresol
                r = buf[value]
                divisor = 2 ** (r & 0x7F) if r & 0x80 else 10**r
            elif code == 14 and olen >= 8:  # if_tsoffset
                (offset,) = struct.unpack_from(order + "q", buf, value)
            opt = value + olen + (-olen & 3)
        if divisor > 1_000_000:
            self.nanosecond = True
        return (linktype, divisor, offset, snaplen)

    def _done(self) -> None:
        self._base += self._pos
        self._buf = b""
        self._pend = None
        self._pos = 0
        self.close()

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Close the underlying file if ``open_capture`` opened it."""
        if self._owns:
            self._owns = False
            self._f.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f", truncated: {self.error}" if self.truncated else ""
        return (
            f"<CaptureReader {self.name!r} {self.format} linktypes={sorted(self.linktypes)} "
            f"frames_read={self.frames_read}{state}>"
        )


class _Limited:
    """A file read up to a byte budget (:meth:`CaptureReader.window`)."""

    def __init__(self, f, budget: int):
        self._f = f
        self._left = budget

    def read1(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        if n <= 0:
            return b""
        data = self._f.read(n)
        self._left -= len(data)
        return data

    read = read1

    def close(self) -> None:
        self._f.close()


def open_capture(source) -> CaptureReader:
    """Open a pcap or pcapng capture for streaming.

    ``source`` is a path (str / bytes / ``os.PathLike``), ``"-"`` for standard
    input, or a binary file object (read from its current position; not closed
    by the reader).  Raises :class:`CaptureError` when it is not a usable
    capture.
    """
    if isinstance(source, (str, bytes, os.PathLike)):
        if source == "-":
            return CaptureReader(sys.stdin.buffer, "<stdin>")
        name = os.fsdecode(source)
        try:
            f = open(source, "rb", buffering=0)  # noqa: SIM115 - closed by the reader
        except OSError as exc:
            raise CaptureError(f"{name}: cannot open: {exc.strerror or exc}") from None
        return CaptureReader(f, name, owns=True)
    if not hasattr(source, "read"):
        raise UsageError(
            f"open_capture needs a path, '-' or a binary file object, not {type(source).__name__}"
        )
    try:
        probe = source.read(0)
    except OSError as exc:
        raise CaptureError(f"cannot read capture: {exc.strerror or exc}") from None
    if not isinstance(probe, (bytes, bytearray)):
        raise UsageError("open_capture needs a binary file object (opened with 'rb')")
    return CaptureReader(source, str(getattr(source, "name", "<file>")))
