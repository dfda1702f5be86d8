"""Hand-written parsers for the packets every login has, without Construct.

``fast_parse(kind, payload, caps)`` returns what :func:`mysqlwire.protocol.parse`
would return -- same keys in the same order, same values and value types --
for the common, well-formed shapes of
``handshake_v10``, ``handshake_response41``, ``ssl_request``, ``ok``, ``err``,
``auth_switch_request``, ``old_auth_switch_request``, ``auth_more_data`` and
``com_change_user`` -- or ``None`` for anything
else (another kind, a non-minimal length encoding, a truncated or malformed
payload...), in which case the caller parses with the grammar, which also
produces the error message.  The grammar stays the single definition of the
formats; this is a cache-free shortcut for the dissector's hot path (a
Construct parse costs ~100-300 us per packet, this ~5 us), and
``tests/test_parallel_fastparse.py`` holds it equal to the grammar on every
captured packet and on mutations of them.

Where the grammar gives a ``construct.Container`` this gives a :class:`Fields`
(a dict read by key or by attribute, equal to the Container), and a plain
``list`` where the grammar gives a ``ListContainer``: this module does not
import Construct, so a capture whose logins all take this path never does.
"""

from __future__ import annotations

import struct

from . import flags as F

__all__ = ["Fields", "fast_parse"]


class Fields(dict):
    """A parsed packet's fields, as the grammar's ``construct.Container`` gives them:
    a dict in field order, read by key or by attribute (``f["user"]``, ``f.user``;
    a missing name raises ``AttributeError``), written either way, and equal to a
    Container or dict with the same items (order and ``_``-prefixed keys do not count,
    as in Container's ``==``).  Consumers read fields by key; the attribute form is
    for the API's callers.  ``repr`` names the class; no output shows it."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __eq__(self, other):
        if self is other:
            return True
        if not isinstance(other, dict):
            return False
        mine = {k: v for k, v in self.items() if not _private(k)}
        theirs = {k: v for k, v in other.items() if not _private(k)}
        return mine == theirs

    def __ne__(self, other):
        return not self == other

    __hash__ = None  # (a dict: unhashable)

    def copy(self) -> Fields:
        return Fields(self)

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v!r}" for k, v in self.items() if not _private(k))
        return f"Fields({parts})"


def _private(key) -> bool:
    return isinstance(key, (str, bytes)) and key[:1] in ("_", b"_")


_CAPS_DEFAULT_OK = F.CLIENT_PROTOCOL_41 | F.CLIENT_TRANSACTIONS


def _lenenc(p: bytes, pos: int, n: int):
    """(value, next position) of a minimally encoded lenenc int, else None."""
    if pos >= n:
        return None
    b = p[pos]
    if b < 0xFB:
        return b, pos + 1
    if b == 0xFC:
        if pos + 3 > n:
            return None
        v = p[pos + 1] | p[pos + 2] << 8
        return (v, pos + 3) if v >= 0xFB else None
    if b == 0xFD:
        if pos + 4 > n:
            return None
        v = int.from_bytes(p[pos + 1 : pos + 4], "little")
        return (v, pos + 4) if v > 0xFFFF else None
    if b == 0xFE:
        if pos + 9 > n:
            return None
        v = int.from_bytes(p[pos + 1 : pos + 9], "little")
        return (v, pos + 9) if v > 0xFFFFFF else None
    return None


def _lenenc_bytes(p: bytes, pos: int, n: int):
    r = _lenenc(p, pos, n)
    if r is None:
        return None
    length, pos = r
    end = pos + length
    if end > n:
        return None
    return p[pos:end], end


def _nul_or_eof(p: bytes, pos: int, n: int):
    """``IfMore(NulOrEof())`` + ``OptionalNul()``: (value, terminated, next position)."""
    if pos >= n:
        return None, None, pos
    nul = p.find(b"\0", pos)
    if nul < 0:
        return p[pos:], False, n
    return p[pos:nul], True, nul + 1


# after the version: connection id, nonce part 1, filler, capabilities (low),
# character set, status, capabilities (high), auth data length, 6 reserved
# bytes, MariaDB extended capabilities
_GREETING_FIXED = struct.Struct("<I8sBHBHHB6sI").unpack_from


def _auth_bytes(p: bytes, pos: int, n: int, secure: int):
    """An auth response: one length byte then the bytes (SECURE_CONNECTION),
    else NUL-terminated.  ``(bytes, next position)`` or None."""
    if secure:
        if pos >= n:
            return None
        end = pos + 1 + p[pos]
        if end > n:
            return None
        return p[pos + 1 : end], end
    nul = p.find(b"\0", pos)
    if nul < 0:
        return None
    return p[pos:nul], nul + 1


def _greeting(p: bytes, caps):
    n = len(p)
    if n < 1 or p[0] != 0x0A:
        return None
    nul = p.find(b"\0", 1)
    if nul < 0 or nul + 32 > n:
        return None  # (the oldest greetings, without the 4.1 block: left to the grammar)
    version = p[1:nul]
    pos = nul + 1
    (connection_id, part1, filler, lower, charset, status, upper, data_len, reserved, ext) = (
        _GREETING_FIXED(p, pos)
    )
    pos += 31
    capabilities = lower | upper << 16
    part2 = None
    if pos < n:
        size = max(13, data_len - 8) if capabilities & F.CLIENT_PLUGIN_AUTH else 13
        if pos + size > n:
            return None
        part2 = p[pos : pos + size]
        pos += size
    name, term, pos = _nul_or_eof(p, pos, n)
    if pos != n:
        return None
    tail = part2 or b""
    if tail.endswith(b"\0"):
        tail = tail[:-1]
    return Fields(
        protocol_version=10,
        server_version=version,
        connection_id=connection_id,
        auth_plugin_data_part_1=part1,
        filler=filler,
        capability_flags_lower=lower,
        character_set=charset,
        status_flags=status,
        capability_flags_upper=upper,
        auth_plugin_data_len=data_len,
        reserved=reserved,
        mariadb_ext_caps=ext,
        auth_plugin_data_part_2=part2,
        auth_plugin_name=name,
        auth_plugin_name_terminated=term,
        capabilities=capabilities,
        nonce=part1 + tail,
        is_mariadb=b"MariaDB" in version or (not (lower & F.CLIENT_MYSQL) and bool(ext)),
    )


def _client_ext(flag: int, filler: bytes) -> int:
    return 0 if flag & F.CLIENT_MYSQL else int.from_bytes(filler[19:23], "little")


def _connect_attrs(p: bytes, pos: int, n: int):
    """``ConnectAttrs``: (list of key/value Fields, next position), or None."""
    r = _lenenc(p, pos, n)
    if r is None:
        return None
    total, pos = r
    end = pos + total
    if end > n:
        return None
    attrs = []
    while pos < end:
        size = p[pos]
        if size < 0xFB:  # (the common one-byte length, inline)
            stop = pos + 1 + size
            if stop > end:
                return None
            key = p[pos + 1 : stop]
            pos = stop
        else:
            r = _lenenc_bytes(p, pos, end)
            if r is None:
                return None
            key, pos = r
        if pos >= end:
            return None
        size = p[pos]
        if size < 0xFB:
            stop = pos + 1 + size
            if stop > end:
                return None
            value = p[pos + 1 : stop]
            pos = stop
        else:
            r = _lenenc_bytes(p, pos, end)
            if r is None:
                return None
            value, pos = r
        attrs.append(Fields(key=key, value=value))
    return attrs, pos


_RESPONSE_FIXED = struct.Struct("<IIB23s").unpack_from  # flags, max packet, charset, filler


def _response41(p: bytes, caps):
    n = len(p)
    if n < 33:
        return None
    flag, max_packet, charset, filler = _RESPONSE_FIXED(p, 0)
    nul = p.find(b"\0", 32)
    if nul < 0:
        return None
    username = p[32:nul]
    pos = nul + 1
    if flag & F.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        r = _lenenc_bytes(p, pos, n)
        if r is None:
            return None
        auth, pos = r
    else:
        r = _auth_bytes(p, pos, n, flag & F.CLIENT_SECURE_CONNECTION)
        if r is None:
            return None
        auth, pos = r
    database = database_term = None
    if flag & F.CLIENT_CONNECT_WITH_DB:
        database, database_term, pos = _nul_or_eof(p, pos, n)
    plugin = plugin_term = None
    if flag & F.CLIENT_PLUGIN_AUTH:
        plugin, plugin_term, pos = _nul_or_eof(p, pos, n)
    attrs = None
    if flag & F.CLIENT_CONNECT_ATTRS and pos < n:
        r = _connect_attrs(p, pos, n)
        if r is None:
            return None
        attrs, pos = r
    zstd = None
    if flag & F.CLIENT_ZSTD_COMPRESSION_ALGORITHM and pos < n:
        zstd = p[pos]
        pos += 1
    if pos != n:
        return None
    return Fields(
        client_flag=flag,
        max_packet_size=max_packet,
        character_set=charset,
        filler=filler,
        username=username,
        auth_response=auth,
        database=database,
        database_terminated=database_term,
        client_plugin=plugin,
        client_plugin_terminated=plugin_term,
        connect_attrs=attrs,
        zstd_compression_level=zstd,
        mariadb_ext_caps=_client_ext(flag, filler),
    )


def _ssl_request(p: bytes, caps):
    if len(p) != 32:
        return None
    flag = int.from_bytes(p[0:4], "little")
    filler = p[9:32]
    return Fields(
        client_flag=flag,
        max_packet_size=int.from_bytes(p[4:8], "little"),
        character_set=p[8],
        filler=filler,
        mariadb_ext_caps=_client_ext(flag, filler),
    )


def _ok(p: bytes, caps):
    n = len(p)
    if n < 3 or p[0] not in (0x00, 0xFE):
        return None
    if caps is None:
        caps = _CAPS_DEFAULT_OK
    r = _lenenc(p, 1, n)
    if r is None:
        return None
    affected, pos = r
    r = _lenenc(p, pos, n)
    if r is None:
        return None
    insert_id, pos = r
    status = warnings = None
    if caps & (F.CLIENT_PROTOCOL_41 | F.CLIENT_TRANSACTIONS):
        if pos + 2 > n:
            return None
        status = p[pos] | p[pos + 1] << 8
        pos += 2
    if caps & F.CLIENT_PROTOCOL_41:
        if pos + 2 > n:
            return None
        warnings = p[pos] | p[pos + 1] << 8
        pos += 2
    changes = None
    if caps & F.CLIENT_SESSION_TRACK:
        info = None
        if pos < n:
            r = _lenenc_bytes(p, pos, n)
            if r is None:
                return None
            info, pos = r
        if (status or 0) & F.SERVER_SESSION_STATE_CHANGED and pos < n:
            r = _lenenc_bytes(p, pos, n)
            if r is None:
                return None
            changes, pos = r
        if pos != n:
            return None
    else:
        info = p[pos:]
    return Fields(
        header=p[0],
        affected_rows=affected,
        last_insert_id=insert_id,
        status_flags=status,
        warnings=warnings,
        info=info,
        session_state_changes=changes,
    )


def _err(p: bytes, caps):
    n = len(p)
    if n < 3 or p[0] != 0xFF:
        return None
    pos = 3
    state = None
    if (caps is None or caps & F.CLIENT_PROTOCOL_41) and n > 3 and p[3] == 0x23:  # '#'
        if n < 9:
            return None
        state = p[4:9]
        pos = 9
    return Fields(
        header=0xFF,
        error_code=p[1] | p[2] << 8,
        sql_state=state,
        error_message=p[pos:],
    )


def _auth_switch(p: bytes, caps):
    if not p or p[0] != 0xFE:
        return None
    nul = p.find(b"\0", 1)
    if nul < 0:
        return None
    return Fields(header=0xFE, plugin_name=p[1:nul], plugin_data=p[nul + 1 :])


def _more_data(p: bytes, caps):
    if not p or p[0] != 0x01:
        return None
    return Fields(header=0x01, data=p[1:])


def _old_auth_switch(p: bytes, caps):
    return Fields(header=0xFE) if p == b"\xfe" else None


_CAPS_DEFAULT_CHANGE_USER = (
    F.CLIENT_PROTOCOL_41
    | F.CLIENT_SECURE_CONNECTION
    | F.CLIENT_PLUGIN_AUTH
    | F.CLIENT_CONNECT_ATTRS
)


def _change_user(p: bytes, caps):
    n = len(p)
    if n < 2 or p[0] != 0x11:
        return None
    if caps is None:
        caps = _CAPS_DEFAULT_CHANGE_USER
    nul = p.find(b"\0", 1)
    if nul < 0:
        return None
    user = p[1:nul]
    pos = nul + 1
    r = _auth_bytes(p, pos, n, caps & F.CLIENT_SECURE_CONNECTION)
    if r is None:
        return None
    auth, pos = r
    database, database_term, pos = _nul_or_eof(p, pos, n)
    charset = None
    if pos < n:
        if pos + 2 > n:
            return None
        charset = p[pos] | p[pos + 1] << 8
        pos += 2
    plugin = plugin_term = None
    if caps & F.CLIENT_PLUGIN_AUTH:
        plugin, plugin_term, pos = _nul_or_eof(p, pos, n)
    attrs = None
    if caps & F.CLIENT_CONNECT_ATTRS and pos < n:
        r = _connect_attrs(p, pos, n)
        if r is None:
            return None
        attrs, pos = r
    if pos != n:
        return None
    return Fields(
        command=0x11,
        user=user,
        auth_response=auth,
        database=database,
        database_terminated=database_term,
        character_set=charset,
        auth_plugin_name=plugin,
        auth_plugin_name_terminated=plugin_term,
        connect_attrs=attrs,
    )


_PARSERS = {
    "handshake_v10": _greeting,
    "handshake_response41": _response41,
    "ssl_request": _ssl_request,
    "ok": _ok,
    "err": _err,
    "auth_switch_request": _auth_switch,
    "auth_more_data": _more_data,
    "old_auth_switch_request": _old_auth_switch,
    "com_change_user": _change_user,
}


def fast_parse(kind: str, payload, caps: int | None = None):
    """The grammar's fields for ``payload`` (a :class:`Fields`), or None: use the grammar."""
    fn = _PARSERS.get(kind)
    if fn is None:
        return None
    if payload.__class__ is not bytes:
        payload = bytes(payload)
    return fn(payload, caps)
