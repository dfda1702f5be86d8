"""One JSONL line per connection, written straight from the record's fields.

:func:`connection_line` gives exactly ``json_dumps(conn.to_record())`` (the
``dissect --format jsonl`` line, without packets) at a fraction of the cost: no
intermediate dict, the capability lists (a few distinct values per capture,
~25 names each) encoded once, strings through ``json``'s own C string encoder.
Anything outside the plain shapes (a value of an unexpected type, a non-finite
float, a record key it does not know) takes the general path, so the line is
the same whatever the record holds; ``tests/test_views_jsonline.py`` holds it
byte-identical on every bundled capture.
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder
from json.encoder import encode_basestring as _str

from ..model import SCHEMA, Connection, change_user_records
from ..protocol import cap_names, mariadb_cap_names
from .escape import UNSAFE_JSON_CHARS, json_dumps, json_safe

__all__ = ["connection_line"]

# a sub-value (error, connect_attrs, anomalies, ...) as json.dumps writes it
# inside the record; raises TypeError on what only the general path handles
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def _c_encoder():
    """What ``_ENCODER.encode`` builds on every call (json's C encoder with its
    settings), built once; a fresh one after an error (its circular-reference
    markers may keep entries then)."""
    return c_make_encoder({}, _ENCODER.default, _str, None, ": ", ", ", False, False, False)


_C_ENCODER = [_c_encoder()] if c_make_encoder is not None else []


def _plain(x) -> str:
    if not _C_ENCODER:
        return _ENCODER.encode(x)
    try:
        return "".join(_C_ENCODER[0](x, 0))
    except BaseException:
        _C_ENCODER[0] = _c_encoder()
        raise


_FRAGMENTS: dict[tuple, str] = {}
_TLS_KEYS = ("tls_version", "tls_cipher", "tls_sni", "tls_status", "tls_alerts")
_HEAD = '{"schema": ' + _str(SCHEMA) + ', "capture": '
_UNSAFE_FROM = min(UNSAFE_JSON_CHARS)  # DEL: every character to escape is at or above it


def _names(fn, value: int) -> str:
    """The JSON list of flag names of ``value`` (remembered: few distinct values)."""
    key = (fn, value)
    text = _FRAGMENTS.get(key)
    if text is None:
        if len(_FRAGMENTS) > 4096:
            _FRAGMENTS.clear()
        text = _FRAGMENTS[key] = _plain(list(fn(value)))
    return text


_ENC = {
    str: _str,
    int: int.__repr__,
    bool: {True: "true", False: "false"}.__getitem__,
    type(None): "null".format,  # ("null", whatever the argument)
}


def _v(x) -> str:
    """One value as json.dumps writes it (TypeError/ValueError: not a plain value)."""
    if x is None:
        return "null"
    cls = x.__class__
    if cls is str:
        return _str(x)
    if cls is bool:
        return "true" if x else "false"
    if cls is int:
        return int.__repr__(x)
    return _plain(x)


_float = float.__repr__  # a finite float, as json writes it (else _v decides)


def _change_users(exchanges: list) -> str:
    return _plain(change_user_records(exchanges))


def _line(c: Connection) -> str:
    user, database, client_plugin, switches, final_plugin, error = c.login_facts()
    exchanges = c.exchanges
    after_login = bool(exchanges) and exchanges[0].kind == "login"
    server_caps = c.server_capabilities
    client_caps = c.client_capabilities
    ext = c.server_ext_capabilities
    outcome = c.outcome  # (a property)
    first = c.first_ts  # (finite: written as repr() writes it)
    last = c.last_ts
    frag = _FRAGMENTS.get  # (_names, inline when remembered)
    enc = _ENC.get  # (str, int, bool, None: one C call each; anything else: _v)
    parts = [
        _HEAD,
        enc(c.capture.__class__, _v)(c.capture),
        ', "id": ',
        enc(c.id.__class__, _v)(c.id),
        ', "client": ',
        enc(c.client.__class__, _v)(c.client),
        ', "server": ',
        enc(c.server.__class__, _v)(c.server),
        ', "first_ts": ',
        _float(first) if first.__class__ is float and first - first == 0.0 else _v(first),
        ', "last_ts": ',
        _float(last) if last.__class__ is float and last - last == 0.0 else _v(last),
        ', "protocol_version": ',
        enc(c.protocol_version.__class__, _v)(c.protocol_version),
        ', "server_version": ',
        enc(c.server_version.__class__, _v)(c.server_version),
        ', "thread_id": ',
        enc(c.thread_id.__class__, _v)(c.thread_id),
        ', "server_capabilities": ',
        "null"
        if server_caps is None
        else frag((cap_names, server_caps)) or _names(cap_names, server_caps),
        ', "server_mariadb_capabilities": ',
        (frag((mariadb_cap_names, ext)) or _names(mariadb_cap_names, ext)) if ext else "[]",
        ', "client_capabilities": ',
        "null"
        if client_caps is None
        else frag((cap_names, client_caps)) or _names(cap_names, client_caps),
        ', "greeting_plugin": ',
        enc(c.greeting_plugin.__class__, _v)(c.greeting_plugin),
        ', "client_plugin": ',
        enc(client_plugin.__class__, _v)(client_plugin),
        ', "switches": ',
        _plain(switches) if switches else "[]",
        ', "final_plugin": ',
        enc(final_plugin.__class__, _v)(final_plugin),
        ', "user": ',
        enc(user.__class__, _v)(user),
        ', "database": ',
        enc(database.__class__, _v)(database),
        ', "connect_attrs": ',
        enc(c.connect_attrs.__class__, _v)(c.connect_attrs),
        ', "tls": ',
        enc(c.tls.__class__, _v)(c.tls),
        ', "compressed": ',
        enc(c.compressed.__class__, _v)(c.compressed),
        ', "outcome": ',
        enc(outcome.__class__, _v)(outcome),
        ', "midstream": ',
        enc(c.midstream.__class__, _v)(c.midstream),
        ', "error": ',
        enc(error.__class__, _v)(error),
        ', "anomalies": ',
        _plain(c.anomalies) if c.anomalies else "[]",
        ', "change_user": ',
        # (only exchanges after a login, or without one, can be COM_CHANGE_USERs)
        "[]"
        if not exchanges or (after_login and len(exchanges) == 1)
        else _change_users(exchanges),
        ', "command_error": ',
        enc(c.command_error.__class__, _v)(c.command_error),
    ]
    info = c.tls_info
    if info:
        for key in _TLS_KEYS:
            if key in info:
                parts.append(", " + _str(key) + ": ")
                parts.append(enc(info[key].__class__, _v)(info[key]))
    parts.append("}")
    return "".join(parts)


def connection_line(conn: Connection) -> str:
    """``json_dumps(conn.to_record())``, faster."""
    try:
        line = _line(conn)
    except (TypeError, ValueError):  # an unexpected value: the general path decides
        return json_dumps(conn.to_record())
    if line.isascii() and chr(_UNSAFE_FROM) not in line:
        return line
    return json_safe(line)
