"""Construct grammars and framing for the MySQL/MariaDB connection phase.

``parse(kind, payload, caps=...)`` turns a packet payload (no 4-byte header)
into a ``construct.Container``; ``build(kind, obj, caps=...)`` is its exact
inverse: ``build(k, parse(k, b)) == b`` for every payload ``parse`` accepts.
``caps`` is the *client's* capability flags, needed where a layout depends on
them (``ok``, ``err``, ``eof``, ``com_change_user``).

Parse failures raise :class:`~mysqlwire.errors.ProtocolError` with ``kind`` and
``offset`` (payload offset of the field that could not be read); build failures
raise :class:`~mysqlwire.errors.UsageError`. Messages never contain payload
bytes. Framing (3-byte length + sequence id, continuation, compression) lives
in :mod:`mysqlwire.protocol.framing`.
"""

from __future__ import annotations

import io

from construct import ConstError, ConstructError, StreamError, ValidationError

from ..errors import ProtocolError, UsageError
from . import flags as _flags
from .fields import GrammarError
from .flags import *  # noqa: F403 - the flag constants are part of this package's API
from .flags import (
    CapabilityFlags,
    MariadbCapabilityFlags,
    StatusFlags,
    cap_names,
    mariadb_cap_names,
    status_names,
)
from .lenenc import (
    LenencBytes,
    LenencInt,
    LengthEncodedBytes,
    LengthEncodedInteger,
    NonMinimalBytes,
    NonMinimalInt,
    encode_lenenc,
)
from .packets import GRAMMARS, KINDS, NonMinimalList

__all__ = [
    "GRAMMARS",
    "KINDS",
    "CapabilityFlags",
    "LenencBytes",
    "LenencInt",
    "LengthEncodedBytes",
    "LengthEncodedInteger",
    "MariadbCapabilityFlags",
    "NonMinimalBytes",
    "NonMinimalInt",
    "NonMinimalList",
    "StatusFlags",
    "build",
    "cap_names",
    "encode_lenenc",
    "mariadb_cap_names",
    "parse",
    "status_names",
    "to_jsonable",
] + [name for name in vars(_flags) if name.isupper()]


class _PayloadStream(io.BytesIO):
    """BytesIO that remembers where the last read started (the failing field)."""

    mark = 0

    def read(self, size=-1):
        self.mark = self.tell()
        return super().read(size)


def _field_of(path: str | None) -> str:
    if not path:
        return ""
    parts = [p.strip() for p in path.split("->")[1:]]
    return " -> ".join(p for p in parts if p)


def _reason(exc: ConstructError) -> str:
    # Construct's own messages may quote the offending bytes; use ours instead.
    if isinstance(exc, GrammarError):
        reason = exc.reason
    elif isinstance(exc, StreamError):
        reason = "truncated packet"
    elif isinstance(exc, (ConstError, ValidationError)):
        reason = "unexpected header byte"
    else:
        reason = f"malformed packet ({type(exc).__name__})"
    field = _field_of(exc.path)
    return f"{reason} in field {field}" if field else reason


def parse(kind: str, payload: bytes, *, caps: int | None = None):
    """Parse the payload of one ``kind`` packet into a ``construct.Container``."""
    grammar = GRAMMARS.get(kind)
    if grammar is None:
        raise ProtocolError("unknown packet kind", kind=kind, offset=0)
    stream = _PayloadStream(bytes(payload))
    try:
        obj = grammar.parse_stream(stream, caps=caps)
    except ConstructError as exc:
        offset = exc.offset if isinstance(exc, GrammarError) else None
        if offset is None:
            offset = stream.mark
        raise ProtocolError(_reason(exc), kind=kind, offset=offset) from None
    obj.pop("_io", None)
    return obj


def build(kind: str, obj, *, caps: int | None = None) -> bytes:
    """Build the payload of one ``kind`` packet from a Container or dict."""
    grammar = GRAMMARS.get(kind)
    if grammar is None:
        raise UsageError(f"unknown packet kind {kind!r}")
    try:
        return grammar.build(obj, caps=caps)
    except ConstructError as exc:
        detail = exc.reason if isinstance(exc, GrammarError) else type(exc).__name__
        field = _field_of(exc.path)
        where = f" (field {field})" if field else ""
        raise UsageError(f"cannot build {kind}: {detail}{where}") from None
    except KeyError as exc:
        raise UsageError(f"cannot build {kind}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise UsageError(f"cannot build {kind}: {type(exc).__name__}") from None


# --- JSON view ----------------------------------------------------------------

_FLAG_FIELDS = {
    "client_flag": cap_names,
    "capabilities": cap_names,
    "capability_flags_lower": cap_names,
    "capability_flags_upper": lambda value: cap_names(value << 16),
    "mariadb_ext_caps": mariadb_cap_names,
    "status_flags": status_names,
}


def _bytes_jsonable(data: bytes):
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": bytes(data).hex()}
    if text.isprintable():
        return text
    return {"hex": bytes(data).hex()}


def to_jsonable(value, _field: str | None = None):
    """A JSON-friendly copy of a parsed packet.

    bytes become text when they are printable UTF-8, else ``{"hex": ...}``;
    Construct internals (keys starting with ``_``) are dropped; flag fields
    (``client_flag``, ``capabilities``, ``status_flags``...) become lists of
    names (unknown bits as hex).
    """
    if isinstance(value, dict):
        return {
            key: to_jsonable(item, key)
            for key, item in value.items()
            if not (isinstance(key, str) and key.startswith("_"))
        }
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes_jsonable(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if _field in _FLAG_FIELDS:
            return _FLAG_FIELDS[_field](value)
        return int(value)
    return value
