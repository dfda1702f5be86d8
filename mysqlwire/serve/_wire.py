"""TEMPORARY private shim: the connection-phase packets the server writes and reads.

``mysqlwire.protocol`` (grammars + framing) is being written in parallel; until it lands
the server uses these few builders/parsers.  Each function here has a counterpart there
and this module is deleted as soon as the server is switched over.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from mysqlwire.errors import ProtocolError

CLIENT_LONG_PASSWORD = 0x00000001
CLIENT_FOUND_ROWS = 0x00000002
CLIENT_LONG_FLAG = 0x00000004
CLIENT_CONNECT_WITH_DB = 0x00000008
CLIENT_NO_SCHEMA = 0x00000010
CLIENT_COMPRESS = 0x00000020
CLIENT_ODBC = 0x00000040
CLIENT_LOCAL_FILES = 0x00000080
CLIENT_IGNORE_SPACE = 0x00000100
CLIENT_PROTOCOL_41 = 0x00000200
CLIENT_INTERACTIVE = 0x00000400
CLIENT_SSL = 0x00000800
CLIENT_IGNORE_SIGPIPE = 0x00001000
CLIENT_TRANSACTIONS = 0x00002000
CLIENT_RESERVED = 0x00004000
CLIENT_SECURE_CONNECTION = 0x00008000
CLIENT_MULTI_STATEMENTS = 0x00010000
CLIENT_MULTI_RESULTS = 0x00020000
CLIENT_PS_MULTI_RESULTS = 0x00040000
CLIENT_PLUGIN_AUTH = 0x00080000
CLIENT_CONNECT_ATTRS = 0x00100000
CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x00200000
CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS = 0x00400000
CLIENT_SESSION_TRACK = 0x00800000
CLIENT_DEPRECATE_EOF = 0x01000000
CLIENT_OPTIONAL_RESULTSET_METADATA = 0x02000000
CLIENT_ZSTD_COMPRESSION_ALGORITHM = 0x04000000
CLIENT_QUERY_ATTRIBUTES = 0x08000000
CLIENT_MULTI_FACTOR_AUTHENTICATION = 0x10000000
CLIENT_CAPABILITY_EXTENSION = 0x20000000
CLIENT_SSL_VERIFY_SERVER_CERT = 0x40000000
CLIENT_REMEMBER_OPTIONS = 0x80000000

MAX_PAYLOAD = 0xFFFFFF


def frame(payload: bytes, seq: int) -> bytes:
    """Header(s) + payload; payloads >= 16 MiB - 1 are split into continuation chunks."""
    out = bytearray()
    view = memoryview(payload)
    while True:
        chunk = view[:MAX_PAYLOAD]
        out += len(chunk).to_bytes(3, "little") + bytes([seq & 0xFF]) + chunk
        seq += 1
        view = view[MAX_PAYLOAD:]
        if len(chunk) < MAX_PAYLOAD:
            return bytes(out)


def lenenc_int(value: int) -> bytes:
    if value < 0xFB:
        return bytes([value])
    if value < 1 << 16:
        return b"\xfc" + value.to_bytes(2, "little")
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + value.to_bytes(8, "little")


def lenenc_str(value: bytes) -> bytes:
    return lenenc_int(len(value)) + value


class _Cursor:
    def __init__(self, data: bytes, kind: str):
        self.data = bytes(data)
        self.pos = 0
        self.kind = kind

    def fail(self, what: str):
        raise ProtocolError(what, kind=self.kind, offset=self.pos)

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            self.fail(f"truncated: need {n} bytes")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def nul_str(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            self.fail("string without NUL terminator")
        out = self.data[self.pos : end]
        self.pos = end + 1
        return out

    def lenenc(self) -> int:
        first = self.int(1)
        if first < 0xFB:
            return first
        if first == 0xFC:
            return self.int(2)
        if first == 0xFD:
            return self.int(3)
        if first == 0xFE:
            return self.int(8)
        self.fail(f"bad length-encoded integer 0x{first:02x}")
        raise AssertionError  # unreachable

    def lenenc_bytes(self) -> bytes:
        return self.take(self.lenenc())

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


def build_handshake_v10(
    *,
    server_version: str,
    connection_id: int,
    nonce: bytes,
    capabilities: int,
    collation: int,
    status: int,
    plugin: str,
) -> bytes:
    caps = capabilities
    return (
        b"\x0a"
        + server_version.encode() + b"\0"
        + struct.pack("<I", connection_id)
        + nonce[:8] + b"\0"
        + struct.pack("<H", caps & 0xFFFF)
        + bytes([collation & 0xFF])
        + struct.pack("<H", status)
        + struct.pack("<H", caps >> 16)
        + bytes([len(nonce) + 1])
        + b"\0" * 10
        + nonce[8:] + b"\0"
        + plugin.encode() + b"\0"
    )  # fmt: skip


def is_ssl_request(payload: bytes) -> bool:
    return len(payload) == 32 and bool(int.from_bytes(payload[:4], "little") & CLIENT_SSL)


@dataclass
class HandshakeResponse:
    capabilities: int
    max_packet_size: int
    collation: int
    user: bytes
    auth_response: bytes
    database: bytes | None = None
    plugin: bytes | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def _attributes(cur: _Cursor) -> dict[str, str]:
    total = cur.lenenc()
    end = cur.pos + total
    attrs: dict[str, str] = {}
    while cur.pos < end:
        key = cur.lenenc_bytes().decode("utf-8", "replace")
        attrs[key] = cur.lenenc_bytes().decode("utf-8", "replace")
    return attrs


def parse_handshake_response41(payload: bytes) -> HandshakeResponse:
    cur = _Cursor(payload, "handshake_response41")
    caps = cur.int(4)
    if not caps & CLIENT_PROTOCOL_41:
        cur.fail("client without CLIENT_PROTOCOL_41")
    max_packet = cur.int(4)
    collation = cur.int(1)
    cur.take(23)
    user = cur.nul_str()
    if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        auth = cur.lenenc_bytes()
    elif caps & CLIENT_SECURE_CONNECTION:
        auth = cur.take(cur.int(1))
    else:
        auth = cur.nul_str()
    resp = HandshakeResponse(caps, max_packet, collation, user, auth)
    if caps & CLIENT_CONNECT_WITH_DB and cur.remaining():
        resp.database = cur.nul_str()
    if caps & CLIENT_PLUGIN_AUTH and cur.remaining():
        end = cur.data.find(b"\0", cur.pos)
        resp.plugin = cur.nul_str() if end >= 0 else cur.rest()
    if caps & CLIENT_CONNECT_ATTRS and cur.remaining():
        resp.attributes = _attributes(cur)
    return resp


@dataclass
class ChangeUser:
    user: bytes
    auth_response: bytes
    database: bytes
    collation: int | None = None
    plugin: bytes | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def parse_com_change_user(payload: bytes, caps: int) -> ChangeUser:
    cur = _Cursor(payload, "com_change_user")
    if cur.int(1) != 0x11:
        cur.fail("not a COM_CHANGE_USER")
    user = cur.nul_str()
    if caps & CLIENT_SECURE_CONNECTION:
        auth = cur.take(cur.int(1))
    else:
        auth = cur.nul_str()
    database = cur.nul_str() if cur.remaining() else b""
    cu = ChangeUser(user, auth, database)
    if cur.remaining() >= 2:
        cu.collation = cur.int(2)
        if caps & CLIENT_PLUGIN_AUTH and cur.remaining():
            end = cur.data.find(b"\0", cur.pos)
            cu.plugin = cur.nul_str() if end >= 0 else cur.rest()
        if caps & CLIENT_CONNECT_ATTRS and cur.remaining():
            cu.attributes = _attributes(cur)
    return cu


def build_ok(
    *,
    affected_rows: int = 0,
    last_insert_id: int = 0,
    status: int = 0x0002,
    warnings: int = 0,
    info: bytes = b"",
    session_state: bytes | None = None,
    capabilities: int = 0,
    header: int = 0x00,
) -> bytes:
    out = bytes([header]) + lenenc_int(affected_rows) + lenenc_int(last_insert_id)
    if session_state is not None:
        status |= 0x4000  # SERVER_SESSION_STATE_CHANGED
    out += struct.pack("<HH", status, warnings)
    if capabilities & CLIENT_SESSION_TRACK:
        if session_state is not None or info:
            out += lenenc_str(info)
        if session_state is not None:
            out += lenenc_str(session_state)
    elif info:
        out += info
    return out


def build_err(code: int, sqlstate: str | None, message: str) -> bytes:
    out = b"\xff" + struct.pack("<H", code)
    if sqlstate is not None:
        out += b"#" + sqlstate.encode("ascii")
    return out + message.encode("utf-8")


def build_auth_switch_request(plugin: str, data: bytes) -> bytes:
    return b"\xfe" + plugin.encode() + b"\0" + data


def build_auth_more_data(data: bytes) -> bytes:
    return b"\x01" + data
