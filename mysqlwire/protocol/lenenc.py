"""Length-encoded integers and strings (reference conventions).

``lenenc``: first byte ``< 0xFB`` is the value; ``0xFC`` + int<2>; ``0xFD`` +
int<3>; ``0xFE`` + int<8>. ``0xFB`` (NULL in rows) and ``0xFF`` (ERR) never
start a lenenc in the connection phase.

Building picks the minimal encoding. A wider-than-needed encoding seen on the
wire is kept on the parsed value: the parser returns :class:`NonMinimalInt` /
:class:`NonMinimalBytes` (an ``int`` / ``bytes`` that also carries its
``prefix`` byte) and building such a value writes the same prefix again, so
``build(parse(x)) == x`` holds for every valid input.
"""

from __future__ import annotations

from construct import Construct, SizeofError

from .fields import GrammarError

#: prefix byte -> number of value bytes that follow it
PREFIX_SIZE = {0xFC: 2, 0xFD: 3, 0xFE: 8}
_PREFIX_MAX = {0xFC: 0xFFFF, 0xFD: 0xFFFFFF, 0xFE: 0xFFFFFFFFFFFFFFFF}


class NonMinimalInt(int):
    """An int whose lenenc form on the wire used a wider ``prefix`` than needed."""

    def __new__(cls, value: int, prefix: int):
        self = super().__new__(cls, value)
        self.prefix = prefix
        return self

    def __repr__(self) -> str:
        return f"NonMinimalInt({int(self)}, prefix=0x{self.prefix:02X})"

    def __reduce__(self):
        return (NonMinimalInt, (int(self), self.prefix))


class NonMinimalBytes(bytes):
    """Bytes whose lenenc length on the wire used a wider ``prefix`` than needed."""

    def __new__(cls, value: bytes, prefix: int):
        self = super().__new__(cls, value)
        self.prefix = prefix
        return self

    def __repr__(self) -> str:
        return f"NonMinimalBytes({bytes(self)!r}, prefix=0x{self.prefix:02X})"

    def __reduce__(self):
        return (NonMinimalBytes, (bytes(self), self.prefix))


def minimal_prefix(value: int) -> int | None:
    """The prefix byte the minimal encoding of ``value`` uses (None: one byte)."""
    if value < 0xFB:
        return None
    if value <= 0xFFFF:
        return 0xFC
    if value <= 0xFFFFFF:
        return 0xFD
    return 0xFE


def encode_lenenc(value: int, prefix: int | None = None) -> bytes:
    """Encode ``value``; ``prefix`` forces a (valid, wide enough) wider form."""
    value = int(value)
    if value < 0 or value > _PREFIX_MAX[0xFE]:
        raise ValueError("lenenc value out of range")
    if prefix is None:
        prefix = minimal_prefix(value)
    if prefix is None:
        return bytes((value,))
    if prefix not in PREFIX_SIZE or value > _PREFIX_MAX[prefix]:
        raise ValueError("lenenc prefix cannot hold the value")
    return bytes((prefix,)) + value.to_bytes(PREFIX_SIZE[prefix], "little")


def _wire_prefix(obj) -> int | None:
    return getattr(obj, "prefix", None)


def read_lenenc(stream, path) -> int:
    """Read one lenenc integer from a Construct stream (used by the classes below)."""
    start = stream.tell()
    first = stream.read(1)
    if not first:
        raise GrammarError("truncated length-encoded integer", path=path, offset=start)
    b = first[0]
    if b < 0xFB:
        return b
    if b not in PREFIX_SIZE:
        raise GrammarError(
            f"0x{b:02X} cannot start a length-encoded integer", path=path, offset=start
        )
    size = PREFIX_SIZE[b]
    raw = stream.read(size)
    if len(raw) != size:
        raise GrammarError("truncated length-encoded integer", path=path, offset=start)
    value = int.from_bytes(raw, "little")
    if minimal_prefix(value) != b:
        return NonMinimalInt(value, b)
    return value


class LengthEncodedInteger(Construct):
    """``int<lenenc>``: parses to ``int`` (or :class:`NonMinimalInt`)."""

    def _parse(self, stream, context, path):
        return read_lenenc(stream, path)

    def _build(self, obj, stream, context, path):
        try:
            stream.write(encode_lenenc(obj, _wire_prefix(obj)))
        except (TypeError, ValueError) as exc:
            raise GrammarError(f"cannot encode length-encoded integer: {exc}", path=path) from None
        return obj

    def _sizeof(self, context, path):
        raise SizeofError("length-encoded integer has a variable size", path=path)


class LengthEncodedBytes(Construct):
    """``string<lenenc>``: parses to ``bytes`` (or :class:`NonMinimalBytes`)."""

    def _parse(self, stream, context, path):
        start = stream.tell()
        length = read_lenenc(stream, path)
        here = stream.tell()
        size = stream.seek(0, 2)
        stream.seek(here)
        if length > size - here:  # checked first: a hostile length may not fit in memory
            raise GrammarError("length-encoded string runs past the end", path=path, offset=start)
        data = stream.read(length)
        if len(data) != length:
            raise GrammarError("length-encoded string runs past the end", path=path, offset=start)
        prefix = _wire_prefix(length)
        return NonMinimalBytes(data, prefix) if prefix is not None else data

    def _build(self, obj, stream, context, path):
        if not isinstance(obj, (bytes, bytearray)):
            raise GrammarError("length-encoded string needs bytes", path=path)
        try:
            stream.write(encode_lenenc(len(obj), _wire_prefix(obj)))
        except ValueError as exc:
            raise GrammarError(f"cannot encode string length: {exc}", path=path) from None
        stream.write(bytes(obj))
        return obj

    def _sizeof(self, context, path):
        raise SizeofError("length-encoded string has a variable size", path=path)


LenencInt = LengthEncodedInteger()
LenencBytes = LengthEncodedBytes()
