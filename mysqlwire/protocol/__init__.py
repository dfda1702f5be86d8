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

Importing this package does not import Construct: the grammars (``GRAMMARS``, the
length-encoded fields, the ``FlagsEnum`` views, :mod:`~mysqlwire.protocol.codec` behind
``parse``/``build``) load on first use, so a dissection whose packets all take
:mod:`mysqlwire.protocol.fastparse` never pays for them.
"""

from __future__ import annotations

from . import flags as _flags
from .flags import *  # noqa: F403 - the flag constants are part of this package's API
from .flags import cap_names, mariadb_cap_names, status_names

# The names that need Construct, and the module each comes from: imported on first
# use (PEP 562), so that the flag constants, the framing and the fast parsers --
# all the dissector needs for well-formed logins -- do not import Construct.
_LAZY = {
    "GRAMMARS": "packets",
    "KINDS": "packets",
    "NonMinimalList": "packets",
    "GrammarError": "fields",
    "LenencBytes": "lenenc",
    "LenencInt": "lenenc",
    "LengthEncodedBytes": "lenenc",
    "LengthEncodedInteger": "lenenc",
    "NonMinimalBytes": "lenenc",
    "NonMinimalInt": "lenenc",
    "encode_lenenc": "lenenc",
    "CapabilityFlags": "flags",
    "MariadbCapabilityFlags": "flags",
    "StatusFlags": "flags",
}


__all__ = [
    "build",
    "cap_names",
    "mariadb_cap_names",
    "parse",
    "status_names",
    "to_jsonable",
    *(name for name in _LAZY if name != "GrammarError"),
    *(name for name in vars(_flags) if name.isupper()),
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def parse(kind: str, payload: bytes, *, caps: int | None = None):
    """Parse the payload of one ``kind`` packet into a ``construct.Container``."""
    from .codec import parse as grammar_parse  # (Construct: imported on first use)

    return grammar_parse(kind, payload, caps=caps)


def build(kind: str, obj, *, caps: int | None = None) -> bytes:
    """Build the payload of one ``kind`` packet from a Container or dict."""
    from .codec import build as grammar_build  # (Construct: imported on first use)

    return grammar_build(kind, obj, caps=caps)


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
