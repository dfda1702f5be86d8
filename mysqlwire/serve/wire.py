"""The server's packets, built and parsed with the project's grammars.

Every connection-phase packet comes from :mod:`mysqlwire.protocol` (``build`` / ``parse``)
and framing from :mod:`mysqlwire.protocol.framing`; this module only fills in the fields
a MySQL 8 server uses.  Command-phase result sets (column definitions, rows), which the
grammars do not cover, are in :mod:`mysqlwire.serve.queries`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mysqlwire.protocol import build, encode_lenenc, parse
from mysqlwire.protocol import flags as F
from mysqlwire.protocol.framing import MAX_CHUNK, frame

__all__ = ["F", "MAX_CHUNK", "frame", "lenenc_str"]


def lenenc_str(value: bytes) -> bytes:
    return encode_lenenc(len(value)) + value


def handshake_v10(
    *,
    server_version: str,
    connection_id: int,
    nonce: bytes,
    capabilities: int,
    collation: int,
    status: int,
    plugin: str,
) -> bytes:
    return build(
        "handshake_v10",
        {
            "server_version": server_version.encode(),
            "connection_id": connection_id,
            "auth_plugin_data_part_1": nonce[:8],
            "filler": 0,
            "capability_flags_lower": capabilities & 0xFFFF,
            "character_set": collation & 0xFF,
            "status_flags": status,
            "capability_flags_upper": capabilities >> 16,
            "auth_plugin_data_len": len(nonce) + 1,
            "reserved": bytes(6),
            "mariadb_ext_caps": 0,
            "auth_plugin_data_part_2": nonce[8:] + b"\0",
            "auth_plugin_name": plugin.encode(),
            "auth_plugin_name_terminated": True,
        },
    )


def is_ssl_request(payload: bytes) -> bool:
    """A 32-byte first answer with CLIENT_SSL (reference §4)."""
    if len(payload) != 32:
        return False
    return bool(parse("ssl_request", payload).client_flag & F.CLIENT_SSL)


@dataclass
class ClientLogin:
    """The fields of a HandshakeResponse41 / COM_CHANGE_USER the server acts on."""

    capabilities: int
    user: bytes
    auth_response: bytes
    database: bytes | None = None
    plugin: bytes | None = None
    collation: int | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def _attrs(items) -> dict[str, str]:
    return {
        bytes(a.key).decode("utf-8", "replace"): bytes(a.value).decode("utf-8", "replace")
        for a in items or ()
    }


def handshake_response41(payload: bytes) -> ClientLogin:
    """Parse the client's answer (raises ProtocolError when malformed)."""
    obj = parse("handshake_response41", payload)
    return ClientLogin(
        capabilities=obj.client_flag,
        user=bytes(obj.username),
        auth_response=bytes(obj.auth_response),
        database=bytes(obj.database) if obj.database is not None else None,
        plugin=bytes(obj.client_plugin) if obj.client_plugin is not None else None,
        collation=obj.character_set,
        attributes=_attrs(obj.connect_attrs),
    )


def com_change_user(payload: bytes, caps: int) -> ClientLogin:
    obj = parse("com_change_user", payload, caps=caps)
    return ClientLogin(
        capabilities=caps,
        user=bytes(obj.user),
        auth_response=bytes(obj.auth_response),
        database=bytes(obj.database) if obj.database is not None else None,
        plugin=bytes(obj.auth_plugin_name) if obj.auth_plugin_name is not None else None,
        collation=obj.character_set,
        attributes=_attrs(obj.connect_attrs),
    )


def ok(
    caps: int,
    *,
    status: int,
    session_state: bytes | None = None,
    header: int = 0x00,
    affected_rows: int = 0,
) -> bytes:
    """OK (``header`` 0xFE: the OK that ends a result set under CLIENT_DEPRECATE_EOF)."""
    if session_state is not None:
        status |= F.SERVER_SESSION_STATE_CHANGED
    tracked = bool(caps & F.CLIENT_SESSION_TRACK)
    return build(
        "ok",
        {
            "header": header,
            "affected_rows": affected_rows,
            "last_insert_id": 0,
            "status_flags": status,
            "warnings": 0,
            "info": (b"" if session_state is not None else None) if tracked else b"",
            "session_state_changes": session_state if tracked else None,
        },
        caps=caps,
    )


def err(code: int, sqlstate: str | None, message: str, caps: int) -> bytes:
    """ERR; ``sqlstate`` None (or a client without PROTOCOL_41) omits ``#SQLSTATE``."""
    if sqlstate is None:
        caps = 0
    return build(
        "err",
        {
            "error_code": code,
            "sql_state": sqlstate.encode("ascii") if sqlstate is not None else None,
            "error_message": message.encode("utf-8"),
        },
        caps=caps,
    )


def eof(caps: int, *, status: int) -> bytes:
    return build("eof", {"warnings": 0, "status_flags": status}, caps=caps)


def auth_switch_request(plugin: str, data: bytes) -> bytes:
    return build("auth_switch_request", {"plugin_name": plugin.encode(), "plugin_data": data})


def auth_more_data(data: bytes) -> bytes:
    return build("auth_more_data", {"data": data})
