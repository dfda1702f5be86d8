"""``--packets`` as text: one tree per packet, like ``tshark -V``.

Each packet gets a head line (number from 1 within the connection, direction,
kind, ``seq=N`` sequence id, length, time since the first packet) and one line
per field: flags named once (wrapped), lengths, what each plugin-data byte
means, the RSA public key as PEM text, connect attributes one per line.
Client auth bytes are shown only as their length and meaning unless the
packets were recorded with ``--show-secrets`` (then their hex is in the
record and is shown).  The lines are plain text; the caller escapes them
(:func:`mysqlwire.views.escape.clean`).  JSON (``--format jsonl``) stays the
machine-readable form.
"""

from __future__ import annotations

import re
import textwrap

from ..auth import describe
from ..model import Connection
from .packets import (
    COMMANDS,
    KIND_LABEL,
    advance_stage,
    as_bytes,
    as_text,
    byte_len,
    client_auth_meaning,
    packets_from_steps,
    server_data_meaning,
    step_for,
)

__all__ = ["packet_tree", "Line"]

# (depth, text, style): style is a hint for the terminal ("head", "dim", "warn" or "")
Line = tuple[int, str, str]

_HEAD_LABEL = {
    "handshake_response": "HandshakeResponse41",
    "auth_data": "Auth data",
    "server_plugin_data": "Plugin data",
}

_SKIP = {
    # shown merged elsewhere, or framing details of the grammar
    "capability_flags_lower",
    "capability_flags_upper",
    "auth_plugin_data_part_1",
    "auth_plugin_data_part_2",
    "auth_plugin_name_terminated",
    "client_plugin_terminated",
    "database_terminated",
    "is_mariadb",
    "header",
    "filler",
    "reserved",
    "command",  # COM_CHANGE_USER's 0x11: the head line names it
}

_NAMES = {
    "protocol_version": "Protocol version",
    "server_version": "Server version",
    "connection_id": "Connection id (thread)",
    "nonce": "Nonce (auth-plugin data)",
    "auth_plugin_data_len": "Auth-plugin data length",
    "capabilities": "Capabilities",
    "client_flag": "Client capabilities",
    "mariadb_ext_caps": "MariaDB capabilities",
    "character_set": "Character set",
    "status_flags": "Status",
    "auth_plugin_name": "Auth plugin",
    "max_packet_size": "Max packet size",
    "username": "User",
    "user": "User",
    "auth_response": "Auth response",
    "database": "Database",
    "client_plugin": "Client plugin",
    "connect_attrs": "Connect attributes",
    "zstd_compression_level": "zstd compression level",
    "plugin_name": "Plugin",
    "plugin_data": "Plugin data",
    "data": "Data",
    "affected_rows": "Affected rows",
    "last_insert_id": "Last insert id",
    "warnings": "Warnings",
    "info": "Info",
    "session_state_changes": "Session state changes",
    "error_code": "Error code",
    "sql_state": "SQL state",
    "error_message": "Message",
    "command": "Command",
}

_ALWAYS = {"username", "user", "database", "auth_response", "capabilities", "client_flag"}
_CLIENT_SECRET_FIELDS = ("auth_response", "data", "plugin_data")
_WRAP = 96


def _plural(n: int, word: str = "byte") -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _hex_preview(data: bytes, limit: int = 32) -> str:
    h = data[:limit].hex(" ")
    return h + (" \u2026" if len(data) > limit else "")


def _flags(depth: int, name: str, values: list) -> list[Line]:
    if not values:
        return [(depth, f"{name}: none", "")]
    joined = ", ".join(str(v) for v in values)
    if len(joined) <= 60:
        return [(depth, f"{name}: {joined}", "")]
    out: list[Line] = [(depth, f"{name}: {len(values)} flags", "")]
    for chunk in textwrap.wrap(", ".join(str(v) for v in values), _WRAP):
        out.append((depth + 1, chunk, "dim"))
    return out


def _value(depth: int, key: str, v, p: dict, conn: Connection, stage: dict) -> list[Line]:
    name = _NAMES.get(key, key.replace("_", " ").capitalize())
    sender = p["sender"]
    if isinstance(v, dict) and v.get("redacted"):
        n = int(v.get("length") or 0)
        meaning = _secret_meaning(key, n, p, conn, stage)
        text = f"{name}: {_plural(n)} (redacted)" if n else f"{name}: empty"
        if meaning and n:
            text += f": {meaning}"
        return [(depth, text, "")]
    if key in ("capabilities", "client_flag", "mariadb_ext_caps", "status_flags"):
        return _flags(depth, name, list(v or []))
    if key == "connect_attrs":
        items = v or []
        if isinstance(items, dict):
            items = [{"key": k, "value": x} for k, x in items.items()]
        out: list[Line] = [(depth, f"{name}: {len(items)}", "")]
        for kv in items:
            out.append((depth + 1, f"{as_text(kv.get('key'))} = {as_text(kv.get('value'))}", ""))
        return out
    if key in ("data", "plugin_data") and sender == "server":
        data = as_bytes(v)
        meaning, pem = server_data_meaning(p.get("plugin"), p["kind"], data)
        out = [(depth, f"{name}: {_plural(len(data))}" + (f": {meaning}" if meaning else ""), "")]
        if pem is not None:
            out.extend((depth + 1, line, "dim") for line in pem.splitlines())
        elif data and (not meaning or "nonce" in meaning):
            out.append((depth + 1, _hex_preview(data), "dim"))
        return out
    if key == "nonce":
        data = as_bytes(v)
        return [(depth, f"{name}: {_plural(len(data))}: {_hex_preview(data)}", "")]
    if isinstance(v, dict) and "hex" in v:
        data = as_bytes(v)
        text = f"{name}: {_plural(len(data))}"
        if key in _CLIENT_SECRET_FIELDS and sender == "client":
            text += " (shown: --show-secrets)"
            meaning = _secret_meaning(key, byte_len(v), p, conn, stage)
            if meaning:
                text += f": {meaning}"
        return [(depth, text, ""), (depth + 1, _hex_preview(data, 64), "dim")]
    if v is None or v == "":
        return [(depth, f"{name}: -", "dim")]
    if isinstance(v, list):
        return [(depth, f"{name}: " + ", ".join(str(as_text(x)) for x in v), "")]
    if isinstance(v, dict):
        out = [(depth, f"{name}:", "")]
        for k2, v2 in v.items():
            out.extend(_value(depth + 1, k2, v2, p, conn, stage))
        return out
    return [(depth, f"{name}: {as_text(v)}", "")]


def _secret_meaning(key: str, n: int, p: dict, conn: Connection, stage: dict) -> str:
    """What a client auth field is, without its bytes."""
    if p["sender"] != "client":
        return ""
    if key == "auth_response":
        plugin = p.get("plugin") or "the client's plugin"
        if n == 0:
            return "no password sent"
        if describe(p.get("plugin"), "client", p["kind"], None, length=n).cleartext:
            return "clear-text password"
        return f"{plugin} proof"
    meaning = client_auth_meaning(conn, p, step_for(conn, p), stage)
    if meaning.startswith("proof "):
        return f"{p.get('plugin') or 'the plugin'} proof"
    # the line already says the length and that it is redacted
    return re.sub(r" \((?:redacted, )?\d+ B\)$", "", meaning)


def _ordered(fields: dict) -> list:
    order = {k: i for i, k in enumerate(_NAMES)}
    return sorted(fields.items(), key=lambda kv: order.get(kv[0], len(order)))


def _head(num: int, p: dict, t0: float | None) -> str:
    kind = p["kind"]
    label = _HEAD_LABEL.get(kind) or KIND_LABEL.get(kind, kind)
    if kind == "command":
        raw = p.get("detail")
        if isinstance(raw, str) and raw.startswith("0x"):
            try:
                label = COMMANDS.get(int(raw, 16), f"command {raw}")
            except ValueError:
                pass
    if p.get("plugin") and kind in ("auth_data", "auth_more_data", "server_plugin_data"):
        label += f" [{p['plugin']}]"
    arrow = "C->S" if p["sender"] == "client" else "S->C"
    bits = [f"{num:>3}  {arrow}  {label}"]
    if p.get("seq") is not None:
        bits.append(f"seq={p['seq']}")
    if kind not in ("command", "quit") or p.get("length"):
        # (the command phase is not buffered: a command's length is not known)
        bits.append(_plural(int(p.get("length") or 0)))
    if t0 is not None and p.get("ts") is not None:
        bits.append(f"+{(p['ts'] - t0) * 1000:.3f} ms")
    if p.get("in_tls"):
        bits.append("(inside TLS)")
    return "  ".join(bits)


def packet_tree(conn: Connection) -> list[Line]:
    """The connection phase of ``conn``, one tree per packet (see module doc)."""
    packets = conn.packets if conn.packets is not None else packets_from_steps(conn)
    t0 = packets[0].get("ts") if packets else None
    stage: dict[str, str] = {}
    out: list[Line] = []
    for num, p in enumerate(packets, 1):
        out.append((0, _head(num, p, t0), "head"))
        f = p.get("fields")
        if f:
            for key, v in _ordered(f):
                if key in _SKIP or (v is None or v == []) and key not in _ALWAYS:
                    continue
                out.extend(_value(1, key, v, p, conn, stage))
        elif "data" in p:
            out.extend(_value(1, "data", p["data"], p, conn, stage))
        elif p.get("detail") and p["kind"] != "command":
            out.append((1, f"Detail: {p['detail']}", ""))
        _advance(stage, p, conn)
    return out


def _advance(stage: dict, p: dict, conn: Connection) -> None:
    """Track the plugin's display stage (full auth, RSA) like the ladder does."""
    if p["kind"] not in ("auth_more_data", "auth_data") or not p.get("plugin"):
        return
    if p["sender"] == "server":
        data = as_bytes((p.get("fields") or {}).get("data") or p.get("data"))
    else:
        step = step_for(conn, p)
        data = step.data if step is not None else None
    advance_stage(stage, conn, p, data)
