"""Small Construct field types the packet grammars are made of.

Each one reports failures as :class:`GrammarError` with the payload ``offset``
of the field that could not be read, and never puts payload bytes in a message.
They work on any seekable stream (Construct's own ``BytesIO``), never on
substreams, so offsets are payload offsets.
"""

from __future__ import annotations

from construct import Construct, ConstructError, SizeofError, Subconstruct


class GrammarError(ConstructError):
    """A parse/build failure raised by our own field types (carries ``offset``)."""

    def __init__(self, message: str, path=None, offset: int | None = None):
        super().__init__(message, path=path)
        self.reason = message
        self.offset = offset


def at_eof(stream) -> bool:
    """True when nothing is left to read (does not move the stream)."""
    pos = stream.tell()
    end = stream.seek(0, 2)
    stream.seek(pos)
    return pos >= end


def _check_bytes(obj, path, what: str) -> bytes:
    if not isinstance(obj, (bytes, bytearray, memoryview)):
        raise GrammarError(f"{what} needs bytes, got {type(obj).__name__}", path=path)
    return bytes(obj)


class NulTerminated(Construct):
    """``string<NUL>``: bytes up to a mandatory 0x00 (consumed, not returned)."""

    def _parse(self, stream, context, path):
        start = stream.tell()
        rest = stream.read()
        end = rest.find(b"\0")
        if end < 0:
            raise GrammarError("missing NUL terminator", path=path, offset=start)
        stream.seek(start + end + 1)
        return rest[:end]

    def _build(self, obj, stream, context, path):
        data = _check_bytes(obj, path, "NUL-terminated string")
        if b"\0" in data:
            raise GrammarError("NUL-terminated string contains a NUL byte", path=path)
        stream.write(data + b"\0")
        return obj

    def _sizeof(self, context, path):
        raise SizeofError("NUL-terminated string has a variable size", path=path)


class NulOrEof(Construct):
    """Bytes up to a 0x00 or the end of the payload; the NUL is left unread.

    Paired with :class:`OptionalNul` in a sibling ``*_terminated`` field, so a
    string whose final NUL is missing on the wire builds back the same way.
    """

    def _parse(self, stream, context, path):
        start = stream.tell()
        rest = stream.read()
        end = rest.find(b"\0")
        if end < 0:
            return rest
        stream.seek(start + end)
        return rest[:end]

    def _build(self, obj, stream, context, path):
        data = _check_bytes(obj, path, "string")
        if b"\0" in data:
            raise GrammarError("string contains a NUL byte", path=path)
        stream.write(data)
        return obj

    def _sizeof(self, context, path):
        raise SizeofError("string has a variable size", path=path)


class OptionalNul(Construct):
    """``True`` if a 0x00 terminator follows, ``False`` at end of payload.

    Builds a NUL unless given ``False`` (missing value means ``True``).
    """

    def __init__(self):
        super().__init__()
        self.flagbuildnone = True

    def _parse(self, stream, context, path):
        start = stream.tell()
        b = stream.read(1)
        if not b:
            return False
        if b != b"\0":
            raise GrammarError("expected a NUL terminator", path=path, offset=start)
        return True

    def _build(self, obj, stream, context, path):
        if obj is None:
            obj = True
        if obj:
            stream.write(b"\0")
        return bool(obj)

    def _sizeof(self, context, path):
        raise SizeofError(path=path)


class IfMore(Subconstruct):
    """The subcon if any payload bytes remain, else ``None`` (builds nothing for None)."""

    def __init__(self, subcon):
        super().__init__(subcon)
        self.flagbuildnone = True

    def _parse(self, stream, context, path):
        if at_eof(stream):
            return None
        return self.subcon._parsereport(stream, context, path)

    def _build(self, obj, stream, context, path):
        if obj is None:
            return None
        return self.subcon._build(obj, stream, context, path)

    def _sizeof(self, context, path):
        raise SizeofError(path=path)


class End(Construct):
    """Asserts the payload is fully consumed (trailing bytes are an error)."""

    def __init__(self):
        super().__init__()
        self.flagbuildnone = True

    def _parse(self, stream, context, path):
        if not at_eof(stream):
            raise GrammarError("unexpected trailing bytes", path=path, offset=stream.tell())
        return None

    def _build(self, obj, stream, context, path):
        return None

    def _sizeof(self, context, path):
        return 0


class SqlState(Construct):
    """ERR's ``#`` + 5-byte SQLSTATE when the next byte is ``#``, else ``None``."""

    def __init__(self):
        super().__init__()
        self.flagbuildnone = True

    def _parse(self, stream, context, path):
        start = stream.tell()
        marker = stream.read(1)
        if marker != b"#":
            stream.seek(start)
            return None
        state = stream.read(5)
        if len(state) != 5:
            raise GrammarError("truncated SQLSTATE", path=path, offset=start)
        return state

    def _build(self, obj, stream, context, path):
        if obj is None:
            return None
        data = _check_bytes(obj, path, "SQLSTATE")
        if len(data) != 5:
            raise GrammarError("SQLSTATE must be 5 bytes", path=path)
        stream.write(b"#" + data)
        return obj

    def _sizeof(self, context, path):
        raise SizeofError(path=path)
