"""The grammar side of :func:`mysqlwire.protocol.parse` and :func:`~mysqlwire.protocol.build`.

Kept apart from the package's ``__init__`` so that importing :mod:`mysqlwire.protocol`
(the flag constants, the framing, ``to_jsonable``) does not import Construct: the
dissector's hot path parses with :mod:`mysqlwire.protocol.fastparse` and needs the
grammars only for a packet that path declines.  Contracts: see the package docstring.
"""

from __future__ import annotations

import io

from construct import ConstError, ConstructError, StreamError, ValidationError

from ..errors import ProtocolError, UsageError
from .fields import GrammarError
from .packets import GRAMMARS

__all__ = ["build", "parse"]


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
