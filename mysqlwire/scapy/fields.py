"""Scapy fields generated from mysqlwire's Construct grammars.

:func:`grammar_fields` turns one ``Struct`` of :data:`mysqlwire.protocol.GRAMMARS`
into a Scapy ``fields_desc``: one :class:`GrammarField` per named sub-construct,
in wire order, with the same name.  The grammar stays the only description of
the wire layout; the Scapy fields only carry names, defaults and display.

Secret values (client proofs, clear-text passwords) are :class:`Secret` bytes:
equal to the wire bytes, but their ``repr``/``str`` (used by ``show()``,
``ls()``, ``repr(pkt)``, ``command()``) say ``<redacted: N bytes>`` unless
:data:`config.show_secrets <config>` is set (or inside :func:`secrets_shown`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from construct import (
    Bytes,
    BytesInteger,
    Computed,
    Const,
    ExprValidator,
    FormatField,
    GreedyBytes,
    Prefixed,
    Renamed,
    Switch,
)
from scapy.fields import Field

from ..protocol import cap_names, mariadb_cap_names, status_names
from ..protocol.fields import IfMore, NulOrEof, NulTerminated, OptionalNul, SqlState
from ..protocol.lenenc import LengthEncodedBytes, LengthEncodedInteger
from ..protocol.packets import ConnectAttrs, When


class _Config:
    """Module-wide display switches (``mysqlwire.scapy.config``)."""

    show_secrets: bool = False
    #: longest bytes value shown in full by show()/repr (longer: head + length)
    max_shown: int = 96


config = _Config()


@contextlib.contextmanager
def secrets_shown(enabled: bool = True) -> Iterator[None]:
    """``with secrets_shown(): pkt.show()`` prints proofs and passwords in clear."""
    old = config.show_secrets
    config.show_secrets = enabled
    try:
        yield
    finally:
        config.show_secrets = old


class Secret(bytes):
    """Wire bytes that must not be printed by accident (a proof, a password).

    Compares, hashes, slices and converts (``bytes(s)``, ``s.hex()``) like the
    bytes it holds: reading it is asking for it.  Only its ``repr``/``str``
    are redacted.  A non-minimal lenenc ``prefix`` of the wire value is kept.
    """

    @classmethod
    def wrap(cls, value):
        if value is None or isinstance(value, Secret):
            return value
        out = cls(value)
        prefix = getattr(value, "prefix", None)
        if prefix is not None:
            out.prefix = prefix
        return out

    def __repr__(self) -> str:
        if config.show_secrets:
            return repr(bytes(self))
        return f"<redacted: {len(self)} bytes>"

    __str__ = __repr__

    def __reduce__(self):
        return (Secret.wrap, (bytes(self),))


# --- display ------------------------------------------------------------------


def _flags(names) -> str:
    return "|".join(names) if names else "none"


_FLAG_DISPLAY = {
    "client_flag": cap_names,
    "capabilities": cap_names,
    "capability_flags_lower": cap_names,
    "capability_flags_upper": lambda v: cap_names(v << 16),
    "mariadb_ext_caps": mariadb_cap_names,
    "status_flags": status_names,
}


def show_bytes(value: bytes) -> str:
    """Readable text when the bytes are text, else hex; long values abridged."""
    raw = bytes(value)
    limit = config.max_shown
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    body = text[:-1] if text is not None and text.endswith("\0") else text
    if body is not None and all(c.isprintable() or c in "\r\n\t" for c in body):
        if len(text) > limit:
            return f"{text[:limit]!r}... ({len(raw)} bytes)"
        return repr(text)
    if len(raw) > limit // 2:
        return f"{raw[: limit // 2].hex()}... ({len(raw)} bytes)"
    return f"{raw.hex()} ({len(raw)} bytes)" if raw else "'' (0 bytes)"


def show_value(name: str, value) -> str:
    if value is None:
        return "None (absent)"
    if isinstance(value, Secret):
        return repr(value) if not config.show_secrets else show_bytes(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        names = _FLAG_DISPLAY.get(name)
        if names is not None:
            return f"0x{value:08x} ({_flags(names(value))})"
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return show_bytes(value)
    if isinstance(value, list):
        pairs = []
        for item in value:
            try:
                pairs.append(f"{show_bytes(item['key'])}: {show_bytes(item['value'])}")
            except (KeyError, TypeError):
                pairs.append(repr(item))
        return "{" + ", ".join(pairs) + "}"
    return repr(value)


# --- fields -------------------------------------------------------------------


class GrammarField(Field):
    """One named part of a Construct grammar.

    Parsing and building happen for the whole packet at once (in
    :class:`~mysqlwire.scapy.layers.MySQLMessage`), so this field never reads
    or writes bytes itself; it names the value, gives its default and shows it.
    ``wire`` is the grammar's own description (``int<4>``, ``string<NUL>``...).
    """

    __slots__ = ["wire", "secret", "computed"]
    islist = 0
    ismutable = True  # connection attributes are lists: track edits

    def __init__(self, name, default, wire: str, secret=False, computed=False):
        self.wire = wire
        self.secret = secret
        self.computed = computed
        Field.__init__(self, name, default)

    def any2i(self, pkt, x):
        if self.secret and isinstance(x, (bytes, bytearray)):
            return Secret.wrap(x)
        return x

    def i2repr(self, pkt, x) -> str:
        return show_value(self.name, x)

    def getfield(self, pkt, s):  # pragma: no cover - the packet parses as a whole
        raise NotImplementedError("parsed by the packet's grammar")

    def addfield(self, pkt, s, val):  # pragma: no cover - the packet builds as a whole
        raise NotImplementedError("built by the packet's grammar")


_FIELD_CLASSES: dict[str, type] = {}


def _field_class(label: str) -> type:
    """A GrammarField subclass named after the wire type (what ``ls()`` prints)."""
    cls = _FIELD_CLASSES.get(label)
    if cls is None:
        cls = type(f"{label}Field", (GrammarField,), {"__slots__": []})
        _FIELD_CLASSES[label] = cls
    return cls


_INT_FORMATS = {"B": 1, "H": 2, "I": 4, "L": 4, "Q": 8}


def describe(subcon) -> tuple[str, str, object]:
    """(class label, wire description, default value) of one grammar part."""
    while isinstance(subcon, Renamed):
        subcon = subcon.subcon
    if isinstance(subcon, Const):
        _, wire, _ = describe(subcon.subcon)
        return "Const", f"{wire} = 0x{subcon.value:02x}", subcon.value
    if isinstance(subcon, Computed):
        return "Computed", "computed (not on the wire)", None
    if isinstance(subcon, ExprValidator):
        return describe(subcon.subcon)
    if isinstance(subcon, FormatField):
        n = _INT_FORMATS.get(subcon.fmtstr[-1], 0)
        return f"Int{n}", f"int<{n}>", 0
    if isinstance(subcon, BytesInteger):
        n = subcon.length if isinstance(subcon.length, int) else 0
        return f"Int{n}", f"int<{n}>", 0
    if isinstance(subcon, Bytes):
        n = subcon.length
        if isinstance(n, int):
            return "FixedBytes", f"string<{n}>", b"\0" * n
        return "Bytes", "string<n>", b""
    if isinstance(subcon, LengthEncodedInteger):
        return "LenencInt", "int<lenenc>", 0
    if isinstance(subcon, LengthEncodedBytes):
        return "LenencBytes", "string<lenenc>", b""
    if isinstance(subcon, NulTerminated):
        return "NulString", "string<NUL>", b""
    if isinstance(subcon, NulOrEof):
        return "String", "string<NUL or EOF>", b""
    if subcon is GreedyBytes:
        return "EofBytes", "string<EOF>", b""
    if isinstance(subcon, Prefixed):
        return "PrefixedBytes", "int<1> length + string", b""
    if isinstance(subcon, Switch):
        forms = sorted({describe(c)[1] for c in subcon.cases.values()})
        return "SwitchBytes", "one of: " + ", ".join(forms), b""
    if isinstance(subcon, OptionalNul):
        return "NulFlag", "NUL present?", None
    if isinstance(subcon, SqlState):
        return "SqlState", "'#' + string<5> (4.1 only)", b"HY000"
    if isinstance(subcon, ConnectAttrs):
        return "ConnectAttrs", "lenenc key/value pairs", None
    if isinstance(subcon, (When, IfMore)):
        label, wire, default = describe(subcon.subcon)
        # a conditional part defaults to its inner default (ignored when its
        # condition is false); a part present only if bytes remain, to absent
        default = default if isinstance(subcon, When) else None
        if label.startswith("Opt"):
            return label, wire, default
        return f"Opt{label}", f"optional {wire}", default
    return type(subcon).__name__, type(subcon).__name__, None


def grammar_field_names(grammar) -> list[str]:
    """Names of a grammar's named parts, in wire order (Computed included)."""
    return [sc.name for sc in grammar.subcons if sc.name]


def grammar_fields(grammar, secret: frozenset[str] = frozenset()) -> list[GrammarField]:
    """A Scapy ``fields_desc`` for one Construct ``Struct``."""
    out = []
    for sc in grammar.subcons:
        if not sc.name:
            continue  # End(): a check, not a value
        label, wire, default = describe(sc)
        cls = _field_class(label)
        is_secret = sc.name in secret
        if is_secret and isinstance(default, bytes):
            default = Secret(default)
        out.append(cls(sc.name, default, wire, secret=is_secret, computed=label == "Computed"))
    return out


__all__ = [
    "GrammarField",
    "Secret",
    "config",
    "describe",
    "grammar_field_names",
    "grammar_fields",
    "secrets_shown",
    "show_bytes",
    "show_value",
]
