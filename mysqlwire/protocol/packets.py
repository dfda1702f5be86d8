"""Construct grammars of every connection-phase packet (reference §2, §4, §5).

One ``Struct`` per packet kind, keyed by kind name in :data:`GRAMMARS`. Each
grammar parses a MySQL packet *payload* (no 4-byte header) and builds it back
byte for byte:

* strings stay ``bytes`` (never decoded), so invalid UTF-8 round-trips;
* optional trailing parts are ``None`` when absent on the wire;
* a string whose final NUL is missing on the wire has a sibling
  ``<field>_terminated = False``;
* a lenenc value with a wider prefix than needed keeps it
  (:class:`~mysqlwire.protocol.lenenc.NonMinimalInt` and friends);
* ``Computed`` fields (``capabilities``, ``nonce``...) are ignored on build.

Layouts that depend on capabilities read them from the packet itself
(HandshakeResponse's ``client_flag``) or from the ``caps`` parse/build
parameter: the *client's* capability flags (OK, ERR, EOF, COM_CHANGE_USER).
"""

from __future__ import annotations

from collections.abc import Mapping

from construct import (
    Bytes,
    Computed,
    Const,
    Construct,
    Container,
    GreedyBytes,
    Int8ul,
    Int16ul,
    Int24ul,
    Int32ul,
    ListContainer,
    OneOf,
    Prefixed,
    SizeofError,
    Struct,
    Subconstruct,
    Switch,
    evaluate,
)

from . import flags as F
from .fields import (
    End,
    GrammarError,
    IfMore,
    NulOrEof,
    NulTerminated,
    OptionalNul,
    SqlState,
    at_eof,
)
from .lenenc import LenencBytes, LenencInt, encode_lenenc, read_lenenc


class When(Subconstruct):
    """The subcon when ``cond(context)`` holds, else ``None``.

    Unlike Construct's ``If`` the key may be missing when building, and a value
    given for a field whose condition is false is ignored (the wire has no room
    for it).
    """

    def __init__(self, cond, subcon):
        super().__init__(subcon)
        self.cond = cond
        self.flagbuildnone = True

    def _parse(self, stream, context, path):
        if evaluate(self.cond, context):
            return self.subcon._parsereport(stream, context, path)
        return None

    def _build(self, obj, stream, context, path):
        if evaluate(self.cond, context):
            return self.subcon._build(obj, stream, context, path)
        return None

    def _sizeof(self, context, path):
        raise SizeofError(path=path)


class NonMinimalList(ListContainer):
    """Connection attributes whose total length used a wider lenenc ``prefix``."""

    prefix: int


class ConnectAttrs(Construct):
    """``CLIENT_CONNECT_ATTRS`` block: lenenc total length, then lenenc key/value pairs.

    Parses to a list of ``Container(key=bytes, value=bytes)``. Builds from such a
    list, from ``(key, value)`` tuples, or from a mapping.
    """

    def _parse(self, stream, context, path):
        start = stream.tell()
        total = read_lenenc(stream, path)
        end = stream.tell() + total
        if end > stream.seek(0, 2):
            raise GrammarError("connection attributes run past the end", path=path, offset=start)
        stream.seek(end - total)
        attrs = ListContainer()
        while stream.tell() < end:
            pair_start = stream.tell()
            key = LenencBytes._parsereport(stream, context, path)
            value = LenencBytes._parsereport(stream, context, path) if stream.tell() < end else None
            if value is None or stream.tell() > end:
                raise GrammarError(
                    "connection attribute crosses the end of the attribute block",
                    path=path,
                    offset=pair_start,
                )
            attrs.append(Container(key=key, value=value))
        prefix = getattr(total, "prefix", None)
        if prefix is not None:
            attrs = NonMinimalList(attrs)
            attrs.prefix = prefix
        return attrs

    def _build(self, obj, stream, context, path):
        if isinstance(obj, Mapping):
            pairs = list(obj.items())
        else:
            pairs = []
            for item in obj:
                if isinstance(item, Mapping):
                    pairs.append((item["key"], item["value"]))
                else:
                    key, value = item
                    pairs.append((key, value))
        body = bytearray()
        for key, value in pairs:
            for part in (key, value):
                if not isinstance(part, (bytes, bytearray)):
                    raise GrammarError("connection attributes need bytes", path=path)
                body += encode_lenenc(len(part), getattr(part, "prefix", None)) + bytes(part)
        try:
            stream.write(encode_lenenc(len(body), getattr(obj, "prefix", None)) + body)
        except ValueError as exc:
            raise GrammarError(f"cannot encode attribute block length: {exc}", path=path) from None
        return obj

    def _sizeof(self, context, path):
        raise SizeofError(path=path)


# --- helpers for conditions ---------------------------------------------------

#: what an omitted ``caps`` means, per kind family
CAPS_DEFAULT_OK = F.CLIENT_PROTOCOL_41 | F.CLIENT_TRANSACTIONS
CAPS_DEFAULT_CHANGE_USER = (
    F.CLIENT_PROTOCOL_41
    | F.CLIENT_SECURE_CONNECTION
    | F.CLIENT_PLUGIN_AUTH
    | F.CLIENT_CONNECT_ATTRS
)


def _caps(ctx, default: int) -> int:
    caps = ctx._params.get("caps")
    return default if caps is None else caps


def _caps_has(flag: int, default: int):
    return lambda ctx: bool(_caps(ctx, default) & flag)


def _field_has(field: str, flag: int):
    return lambda ctx: bool((ctx[field] or 0) & flag)


def _present(field: str):
    return lambda ctx: ctx.get(field) is not None


def _optional_string(name: str, cond=None) -> list:
    """``name`` (bytes up to NUL/EOF, None if absent) + ``name_terminated``."""
    sub = IfMore(NulOrEof())
    return [
        name / (When(cond, sub) if cond is not None else sub),
        f"{name}_terminated" / When(_present(name), OptionalNul()),
    ]


# --- greeting -----------------------------------------------------------------


def _capabilities(ctx) -> int:
    return (ctx.capability_flags_lower or 0) | ((ctx.get("capability_flags_upper") or 0) << 16)


def _part2_len(ctx) -> int:
    if _capabilities(ctx) & F.CLIENT_PLUGIN_AUTH:
        return max(13, (ctx.auth_plugin_data_len or 0) - 8)
    return 13


def _nonce(ctx) -> bytes:
    part2 = ctx.get("auth_plugin_data_part_2") or b""
    if part2.endswith(b"\0"):
        part2 = part2[:-1]
    return bytes(ctx.auth_plugin_data_part_1) + bytes(part2)


def _is_mariadb(ctx) -> bool:
    # MariaDB always names itself in the version; a 10.2+ server also clears
    # CLIENT_MYSQL to say the reserved bytes carry extended capabilities (MySQL
    # 5.0 clears the bit too, but sends no extended capabilities).
    if b"MariaDB" in ctx.server_version:
        return True
    return not (ctx.capability_flags_lower & F.CLIENT_MYSQL) and bool(ctx.get("mariadb_ext_caps"))


_v41_block = _present("character_set")

HandshakeV10 = Struct(
    "protocol_version" / Const(0x0A, Int8ul),
    "server_version" / NulTerminated(),
    "connection_id" / Int32ul,
    "auth_plugin_data_part_1" / Bytes(8),
    "filler" / Int8ul,
    "capability_flags_lower" / Int16ul,
    # everything below is absent in the oldest greetings
    "character_set" / IfMore(Int8ul),
    "status_flags" / When(_v41_block, Int16ul),
    "capability_flags_upper" / When(_v41_block, Int16ul),
    "auth_plugin_data_len" / When(_v41_block, Int8ul),
    "reserved" / When(_v41_block, Bytes(6)),
    "mariadb_ext_caps" / When(_v41_block, Int32ul),
    "auth_plugin_data_part_2" / IfMore(Bytes(_part2_len)),
    *_optional_string("auth_plugin_name"),
    End(),
    "capabilities" / Computed(_capabilities),
    "nonce" / Computed(_nonce),
    "is_mariadb" / Computed(_is_mariadb),
)

HandshakeV9 = Struct(
    "protocol_version" / Const(0x09, Int8ul),
    "server_version" / NulTerminated(),
    "connection_id" / Int32ul,
    "scramble" / NulTerminated(),
    End(),
)

# --- client's first packet ----------------------------------------------------


def _client_mariadb_ext_caps(ctx) -> int:
    if ctx.client_flag & F.CLIENT_MYSQL:
        return 0
    return int.from_bytes(bytes(ctx.filler)[19:23], "little")


def _auth_response_form(ctx) -> str:
    if ctx.client_flag & F.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        return "lenenc"
    if ctx.client_flag & F.CLIENT_SECURE_CONNECTION:
        return "int1"
    return "nul"


HandshakeResponse41 = Struct(
    "client_flag" / Int32ul,
    "max_packet_size" / Int32ul,
    "character_set" / Int8ul,
    "filler" / Bytes(23),
    "username" / NulTerminated(),
    "auth_response"
    / Switch(
        _auth_response_form,
        {
            "lenenc": LenencBytes,
            "int1": Prefixed(Int8ul, GreedyBytes),
            "nul": NulTerminated(),
        },
    ),
    *_optional_string("database", _field_has("client_flag", F.CLIENT_CONNECT_WITH_DB)),
    *_optional_string("client_plugin", _field_has("client_flag", F.CLIENT_PLUGIN_AUTH)),
    "connect_attrs"
    / When(_field_has("client_flag", F.CLIENT_CONNECT_ATTRS), IfMore(ConnectAttrs())),
    "zstd_compression_level"
    / When(_field_has("client_flag", F.CLIENT_ZSTD_COMPRESSION_ALGORITHM), IfMore(Int8ul)),
    End(),
    "mariadb_ext_caps" / Computed(_client_mariadb_ext_caps),
)

SSLRequest = Struct(
    "client_flag" / Int32ul,
    "max_packet_size" / Int32ul,
    "character_set" / Int8ul,
    "filler" / Bytes(23),
    End(),
    "mariadb_ext_caps" / Computed(_client_mariadb_ext_caps),
)

_with_db = _field_has("client_flag", F.CLIENT_CONNECT_WITH_DB)

HandshakeResponse320 = Struct(
    "client_flag" / Int16ul,
    "max_packet_size" / Int24ul,
    "username" / NulTerminated(),
    "auth_response" / Switch(lambda ctx: bool(_with_db(ctx)), {True: NulTerminated()}, GreedyBytes),
    *_optional_string("database", _with_db),
    End(),
)

# --- auth exchange ------------------------------------------------------------

AuthSwitchRequest = Struct(
    "header" / Const(0xFE, Int8ul),
    "plugin_name" / NulTerminated(),
    "plugin_data" / GreedyBytes,
)

OldAuthSwitchRequest = Struct(
    "header" / Const(0xFE, Int8ul),
    End(),
)

AuthSwitchResponse = Struct(
    "data" / GreedyBytes,
)

AuthMoreData = Struct(
    "header" / Const(0x01, Int8ul),
    "data" / GreedyBytes,
)

AuthNextFactor = Struct(
    "header" / Const(0x02, Int8ul),
    "plugin_name" / NulTerminated(),
    "plugin_data" / GreedyBytes,
)

# --- generic server responses ------------------------------------------------

_ok_session_track = _caps_has(F.CLIENT_SESSION_TRACK, CAPS_DEFAULT_OK)


def _ok_has_state(ctx) -> bool:
    return _ok_session_track(ctx) and bool((ctx.status_flags or 0) & F.SERVER_SESSION_STATE_CHANGED)


OK = Struct(
    "header" / OneOf(Int8ul, [0x00, 0xFE]),
    "affected_rows" / LenencInt,
    "last_insert_id" / LenencInt,
    "status_flags"
    / When(
        _caps_has(F.CLIENT_PROTOCOL_41 | F.CLIENT_TRANSACTIONS, CAPS_DEFAULT_OK),
        Int16ul,
    ),
    "warnings" / When(_caps_has(F.CLIENT_PROTOCOL_41, CAPS_DEFAULT_OK), Int16ul),
    "info"
    / Switch(lambda ctx: bool(_ok_session_track(ctx)), {True: IfMore(LenencBytes)}, GreedyBytes),
    "session_state_changes" / When(_ok_has_state, IfMore(LenencBytes)),
    End(),
)

ERR = Struct(
    "header" / Const(0xFF, Int8ul),
    "error_code" / Int16ul,
    # '#' + SQLSTATE: the 4.1 form; absent before the greeting and for pre-4.1 clients
    "sql_state"
    / When(
        lambda ctx: ctx._params.get("caps") is None or _caps_has(F.CLIENT_PROTOCOL_41, 0)(ctx),
        SqlState(),
    ),
    "error_message" / GreedyBytes,
)

EOF = Struct(
    "header" / Const(0xFE, Int8ul),
    "warnings" / When(_caps_has(F.CLIENT_PROTOCOL_41, F.CLIENT_PROTOCOL_41), Int16ul),
    "status_flags" / When(_caps_has(F.CLIENT_PROTOCOL_41, F.CLIENT_PROTOCOL_41), Int16ul),
    End(),
)

# --- command phase, but an authentication all the same ----------------------

ComChangeUser = Struct(
    "command" / Const(0x11, Int8ul),
    "user" / NulTerminated(),
    "auth_response"
    / Switch(
        _caps_has(F.CLIENT_SECURE_CONNECTION, CAPS_DEFAULT_CHANGE_USER),
        {True: Prefixed(Int8ul, GreedyBytes)},
        NulTerminated(),
    ),
    *_optional_string("database"),
    "character_set" / IfMore(Int16ul),
    *_optional_string(
        "auth_plugin_name", _caps_has(F.CLIENT_PLUGIN_AUTH, CAPS_DEFAULT_CHANGE_USER)
    ),
    "connect_attrs"
    / When(
        _caps_has(F.CLIENT_CONNECT_ATTRS, CAPS_DEFAULT_CHANGE_USER),
        IfMore(ConnectAttrs()),
    ),
    End(),
)

#: kind name -> grammar
GRAMMARS: dict[str, Construct] = {
    "handshake_v10": HandshakeV10,
    "handshake_v9": HandshakeV9,
    "handshake_response41": HandshakeResponse41,
    "handshake_response320": HandshakeResponse320,
    "ssl_request": SSLRequest,
    "auth_switch_request": AuthSwitchRequest,
    "old_auth_switch_request": OldAuthSwitchRequest,
    "auth_switch_response": AuthSwitchResponse,
    "auth_more_data": AuthMoreData,
    "auth_next_factor": AuthNextFactor,
    "ok": OK,
    "err": ERR,
    "eof": EOF,
    "com_change_user": ComChangeUser,
}

KINDS: tuple[str, ...] = tuple(GRAMMARS)

__all__ = ["GRAMMARS", "KINDS", "ConnectAttrs", "NonMinimalList", "When", "at_eof"]
