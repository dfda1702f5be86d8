"""MySQL packet framing (reference §1): ``int<3> length | int<1> seq | payload``.

* :class:`PacketReader` turns one direction's TCP byte stream into logical
  :class:`Packet` s, joining ``0xFFFFFF`` continuation chunks (up to and
  including a trailing empty chunk). Feeding the same bytes in any chunking
  gives the same packets. Memory is bounded by ``max_payload``.
* ``skip_payloads=True`` only walks headers (command-phase traffic): payload
  bytes are never copied or buffered; only packets the ``keep`` predicate asks
  for are returned whole.
* :class:`CompressedReader` unwraps the compressed protocol into the inner
  stream of ordinary packets (feed that to a :class:`PacketReader`).
* :func:`frame` / :func:`compress_frame` are the writers.

No Construct here: this is the hot loop of ``dissect``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

from ..errors import ProtocolError

MAX_CHUNK = 0xFFFFFF
DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024 * 4

_HEADER = struct.Struct("<I")
_unpack_header = _HEADER.unpack_from


class Packet(NamedTuple):
    """One logical MySQL packet."""

    seq: int  #: sequence id of the first chunk
    payload: bytes  #: continuation chunks joined
    offset: int  #: stream offset of the first chunk's 4-byte header
    chunks: int  #: number of wire chunks (1 unless the payload is >= 0xFFFFFF bytes)


class PacketReader:
    """Incremental framer for one direction of a MySQL connection.

    ``feed(data)`` returns the packets completed by ``data``. ``pending`` is the
    number of bytes received that do not yet belong to a complete packet (at
    end of stream: a truncated last packet).

    With ``skip_payloads=True`` the reader only tracks header boundaries: it
    counts skipped packets (``skipped``, ``last_seq``) and returns only those
    for which ``keep(seq, first_byte)`` is true (``first_byte`` is None for an
    empty payload), e.g. ``keep=lambda seq, b: seq == 0 and b == 0x11`` to catch
    COM_CHANGE_USER in the client direction. With ``keep_seq`` set, only packets
    with that sequence id are offered to ``keep`` (the others are skipped
    without a call: the cheap way through large result sets). ``skip_payloads``,
    ``keep`` and ``keep_seq`` may be changed between feeds; the change applies
    from the next packet on.
    """

    __slots__ = (
        "max_payload",
        "skip_payloads",
        "keep",
        "keep_seq",
        "skipped",
        "last_seq",
        "_buf",
        "_buf_offset",
        "_fed",
        "done",
        "_cur_skip",
        "_cur_seq",
        "_cur_offset",
        "_cur_chunks",
        "_cur_parts",
        "_cur_size",
        "_skip_left",
        "_skip_more",
        "_error",
    )

    def __init__(
        self,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        *,
        skip_payloads: bool = False,
        keep: Callable[[int, int | None], bool] | None = None,
        keep_seq: int | None = None,
    ):
        self.max_payload = max_payload
        self.skip_payloads = skip_payloads
        self.keep = keep
        self.keep_seq = keep_seq
        self.skipped = 0  #: logical packets skipped (skip mode)
        self.last_seq: int | None = None  #: seq of the last complete packet (either mode)
        self._buf = bytearray()
        self._buf_offset = 0  # stream offset of _buf[0]
        self._fed = 0  # total bytes fed
        self.done = 0  #: stream offset just past the last complete packet
        # the logical packet in progress (_cur_chunks == 0 at a packet boundary)
        self._cur_skip = False
        self._cur_seq = -1
        self._cur_offset = -1
        self._cur_chunks = 0
        self._cur_parts: list[bytes] = []
        self._cur_size = 0
        self._skip_left = 0  # payload bytes of the current chunk still to skip
        self._skip_more = False  # the chunk being skipped is a full 0xFFFFFF one
        self._error: ProtocolError | None = None

    @property
    def pending(self) -> int:
        return self._fed - self.done

    @property
    def offset(self) -> int:
        """Total bytes fed so far (stream offset of the next byte)."""
        return self._fed

    @property
    def at_boundary(self) -> bool:
        """Nothing buffered: the next byte fed starts a packet."""
        return not (self._buf or self._cur_chunks or self._skip_left or self._error)

    def passed(self, nbytes: int, packets: int, last_seq: int) -> None:
        """``packets`` whole packets (``nbytes`` in all) went by unfed, from a
        packet boundary (see :attr:`at_boundary`): account for them as if
        they had been fed and skipped."""
        self._fed += nbytes
        self.done = self._buf_offset = self._fed
        self.skipped += packets
        self.last_seq = last_seq

    def _fail(self, message: str, offset: int) -> None:
        self._error = ProtocolError(message, kind="frame", offset=offset)
        raise self._error

    def feed(self, data) -> list[Packet]:
        if self._error is not None:
            raise self._error
        if not isinstance(data, bytes):
            data = bytes(data)
        if not data:
            return []
        start_offset = self._fed
        self._fed += len(data)
        out: list[Packet] = []
        pos = 0
        if self._skip_left:
            # the buffer is empty while a chunk's payload is being skipped
            pos = min(self._skip_left, len(data))
            self._skip_left -= pos
            if self._skip_left:
                self._buf_offset = self._fed
                return out
            if not self._skip_more:
                self.skipped += 1
                self.done = start_offset + pos
                self.last_seq = self._cur_seq
                self._reset_current()
        elif not self._buf and not self._cur_chunks:
            # the common case: exactly one whole packet (a login packet, a query)
            n = len(data)
            if n >= 4:
                header = _unpack_header(data, 0)[0]
                length = header & MAX_CHUNK
                if length + 4 == n and length < MAX_CHUNK and length <= self.max_payload:
                    seq = header >> 24
                    self.done = self._buf_offset = self._fed
                    self.last_seq = seq
                    if self.skip_payloads:
                        keep = self.keep
                        keep_seq = self.keep_seq
                        if (
                            keep is None
                            or (keep_seq is not None and seq != keep_seq)
                            or not keep(seq, data[4] if length else None)
                        ):
                            self.skipped += 1
                            return out
                    return [tuple.__new__(Packet, (seq, data[4:], start_offset, 1))]
        if self._buf:
            self._buf += data[pos:] if pos else data
            work = self._buf
            base = self._buf_offset
            pos = 0
        else:
            work = data
            base = start_offset
        try:
            pos = self._walk(work, pos, base, out)
        finally:
            if work is self._buf:
                del self._buf[:pos]
            elif pos < len(data):
                self._buf = bytearray(data[pos:])  # else it stays empty
            self._buf_offset = base + pos
        return out

    def _walk(self, work, pos: int, base: int, out: list[Packet]) -> int:
        n = len(work)
        unpack = _unpack_header
        append = out.append
        new = tuple.__new__
        is_bytes = isinstance(work, bytes)
        max_payload = self.max_payload
        skipping = self.skip_payloads
        keep = self.keep
        keep_seq = self.keep_seq
        if keep is None:
            keep_seq = -1  # never equal to a sequence id: every packet is skipped
        any_seq = keep_seq is None  # every packet is offered to keep
        skipped = 0
        done = -1  # offset in ``work`` just past the last complete packet
        last_seq = None
        view = memoryview(work)
        try:
            while n - pos >= 4:
                if not self._cur_chunks:
                    # fast loop: whole single-chunk packets
                    while n - pos >= 4:
                        header = unpack(work, pos)[0]
                        length = header & MAX_CHUNK
                        end = pos + 4 + length
                        if length == MAX_CHUNK or end > n:
                            break
                        seq = header >> 24
                        if skipping and (
                            (not any_seq and seq != keep_seq)
                            or not keep(seq, work[pos + 4] if length else None)
                        ):
                            skipped += 1
                        else:
                            if length > max_payload:
                                self._fail(self._too_big(length), base + pos)
                            payload = (
                                work[pos + 4 : end] if is_bytes else bytes(view[pos + 4 : end])
                            )
                            append(new(Packet, (seq, payload, base + pos, 1)))
                        pos = done = end
                        last_seq = seq
                    else:
                        break  # less than a header left
                    # a multi-chunk packet starts here, or one not fully received yet
                    seq = header >> 24
                    skip = skipping
                    if skip and (any_seq or seq == keep_seq):
                        if length and n - pos < 5:
                            break  # need the first payload byte to decide
                        skip = not keep(seq, work[pos + 4] if length else None)
                    self._cur_skip = skip
                    self._cur_seq = seq
                    self._cur_offset = base + pos
                else:
                    length = unpack(work, pos)[0] & MAX_CHUNK
                if self._cur_skip:
                    avail = n - pos - 4
                    self._cur_chunks += 1
                    if avail < length:
                        self._skip_left = length - avail
                        self._skip_more = length == MAX_CHUNK
                        pos = n
                        break
                    pos += 4 + length
                    if length < MAX_CHUNK:
                        skipped += 1
                        done, last_seq = pos, self._cur_seq
                        self._reset_current()
                    continue
                # full mode: the whole chunk must be buffered (bounded by max_payload)
                size = self._cur_size + length
                if size > max_payload:
                    self._fail(self._too_big(size), self._cur_offset)
                end = pos + 4 + length
                if end > n:
                    break
                chunk = bytes(view[pos + 4 : end])
                self._cur_chunks += 1
                pos = end
                if length == MAX_CHUNK:
                    self._cur_parts.append(chunk)
                    self._cur_size = size
                    continue
                if self._cur_parts:
                    self._cur_parts.append(chunk)
                    chunk = b"".join(self._cur_parts)
                append(Packet(self._cur_seq, chunk, self._cur_offset, self._cur_chunks))
                done, last_seq = pos, self._cur_seq
                self._reset_current()
            return pos
        finally:
            view.release()
            self.skipped += skipped
            if done >= 0:
                self.done = base + done
                self.last_seq = last_seq

    def _too_big(self, size: int) -> str:
        return f"payload of {size} bytes or more exceeds max_payload {self.max_payload}"

    def _reset_current(self) -> None:
        self._cur_chunks = 0
        self._cur_parts = []
        self._cur_size = 0

    def drain(self) -> bytes:
        """Return and forget the buffered bytes that are not part of a packet yet.

        For switching the stream to another decoder (TLS, compression) after
        the packet that announced it. Only at a logical packet boundary.
        """
        if self._cur_chunks or self._skip_left:
            raise ProtocolError(
                "cannot drain inside a multi-chunk packet", kind="frame", offset=self._cur_offset
            )
        rest = bytes(self._buf)
        self._buf = bytearray()
        self._buf_offset = self._fed
        self.done = self._fed
        return rest


def frame(payload: bytes, seq: int) -> bytes:
    """Frame one logical payload, splitting it into 0xFFFFFF chunks.

    A payload whose length is a multiple of 0xFFFFFF (including 0) ends with an
    empty chunk. Sequence ids increase per chunk, modulo 256.
    """
    payload = bytes(payload)
    out = bytearray()
    pos = 0
    while True:
        chunk = payload[pos : pos + MAX_CHUNK]
        out += _HEADER.pack(len(chunk) | (seq & 0xFF) << 24)
        out += chunk
        seq += 1
        pos += len(chunk)
        if len(chunk) < MAX_CHUNK:
            return bytes(out)


# --- compressed protocol ------------------------------------------------------

_CHEADER = 7


INFLATE_CHUNK = 64 * 1024
"""Largest piece of inflated bytes produced at once by :meth:`CompressedReader.chunks`."""

MAX_INNER_PACKETS = 65536
"""Inner packets one compressed packet may hold (see :class:`CompressedReader`)."""


class CompressedReader:
    """Unwrap the compressed protocol into the inner stream of packets.

    Each compressed packet is ``int<3> compressed_len | int<1> seq |
    int<3> uncompressed_len | payload``; ``uncompressed_len == 0`` means the
    payload is stored as is, otherwise it is one zlib stream that must inflate
    to exactly ``uncompressed_len`` bytes.

    Bounded against zlib bombs: a packet announcing more than ``max_inflate``
    bytes is refused before anything is inflated, and inflation runs
    incrementally (``decompressobj().decompress(data, max_length)``), so
    :meth:`chunks` never holds more than :data:`INFLATE_CHUNK` inflated bytes
    at a time: the caller frames each piece and may stop (``close``) before
    the rest is inflated.  ``feed`` returns everything at once (small inputs).
    """

    def __init__(self, max_inflate: int = MAX_CHUNK):
        self.max_inflate = max_inflate
        self._buf = bytearray()
        self._offset = 0  # stream offset of _buf[0]
        self.last_seq: int | None = None
        self.packets = 0
        self.inflated = 0  #: inner bytes produced so far
        self._error: ProtocolError | None = None

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _fail(self, message: str, offset: int):
        self._error = ProtocolError(message, kind="compressed_frame", offset=offset)
        raise self._error

    def passed(self, nbytes: int, packets: int, inflated: int, last_seq: int) -> None:
        """``packets`` whole compressed packets (``nbytes`` on the wire,
        ``inflated`` inner bytes) went by unfed, nothing being buffered:
        account for them as if they had been fed."""
        self._offset += nbytes
        self.packets += packets
        self.inflated += inflated
        self.last_seq = last_seq

    def feed(self, data) -> bytes:
        return b"".join(self.chunks(data))

    def chunks(self, data, size: int = INFLATE_CHUNK):
        """Buffer ``data``; yield the inner bytes of every compressed packet
        it completes, in pieces of at most ``size`` bytes.  A packet's bytes
        are consumed once its last piece has been yielded (closing the
        generator early drops the rest of the packet being inflated)."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        while len(buf) >= _CHEADER:
            header = _unpack_header(buf, 0)[0]
            clen = header & MAX_CHUNK
            ulen = buf[4] | buf[5] << 8 | buf[6] << 16
            end = _CHEADER + clen
            offset = self._offset
            if ulen > self.max_inflate:
                self._fail(
                    f"compressed packet announces {ulen} inflated bytes, more than "
                    f"max_packet {self.max_inflate}",
                    offset,
                )
            if end > len(buf):
                break
            body = bytes(buf[_CHEADER:end])
            del buf[:end]
            self._offset += end
            self.last_seq = header >> 24
            self.packets += 1
            if ulen == 0:
                for pos in range(0, len(body), size):
                    piece = body[pos : pos + size] if len(body) > size else body
                    self.inflated += len(piece)
                    yield piece
            else:
                yield from self._inflate(body, ulen, offset, size)

    def _inflate(self, body: bytes, ulen: int, offset: int, size: int):
        inflater = zlib.decompressobj()
        total = 0
        tail = body
        while True:
            try:
                piece = inflater.decompress(tail, min(size, ulen - total + 1))
            except zlib.error:
                self._fail("corrupt zlib data in compressed packet", offset)
            tail = inflater.unconsumed_tail
            total += len(piece)
            if total > ulen:
                self._fail("compressed packet inflates past its uncompressed length", offset)
            if piece:
                self.inflated += len(piece)
                yield piece
            if inflater.eof or not piece:
                break
        if total != ulen or not inflater.eof:
            self._fail("compressed packet inflates short of its uncompressed length", offset)
        if inflater.unused_data:
            self._fail("trailing bytes after the zlib stream of a compressed packet", offset)


def single_compressed_packet(data, max_inflate: int) -> bytes | None:
    """The inner bytes when ``data`` is exactly one whole compressed packet
    that :class:`CompressedReader` (with ``max_inflate``) takes; None for
    anything it would refuse, or for more or less than one packet."""
    reader = CompressedReader(max_inflate)
    try:
        inner = reader.feed(data)
    except ProtocolError:
        return None
    if reader.packets != 1 or reader.pending:
        return None
    return inner


LANE_INFLATE = 1 << 16
"""A compressed command inflating past this is left to the ordinary path."""


def lane_inflater(max_packet: int) -> Callable[[bytes], bytes | None]:
    """For a capture reader's command lane (:mod:`mysqlwire.capture.lane`):
    :func:`single_compressed_packet` with ``max_packet`` and at most
    :data:`LANE_INFLATE` bytes (a larger packet takes the ordinary path)."""
    return partial(single_compressed_packet, max_inflate=min(max_packet, LANE_INFLATE))


def compress_frame(inner: bytes, seq: int, level: int = 6, *, min_length: int = 50) -> bytes:
    """Wrap inner (already framed) bytes into compressed packets.

    Pieces shorter than ``min_length``, or that zlib does not shrink, are stored
    (``uncompressed_len`` 0) as MySQL does; ``level=0`` stores everything.
    """
    inner = bytes(inner)
    out = bytearray()
    pos = 0
    while True:
        piece = inner[pos : pos + MAX_CHUNK]
        body = b""
        ulen = 0
        if level and len(piece) >= min_length:
            body = zlib.compress(piece, level)
            ulen = len(piece)
            if len(body) >= len(piece):
                body, ulen = b"", 0
        if not ulen:
            body = piece
        out += _HEADER.pack(len(body) | (seq & 0xFF) << 24) + ulen.to_bytes(3, "little") + body
        seq += 1
        pos += len(piece)
        if pos >= len(inner):
            return bytes(out)
