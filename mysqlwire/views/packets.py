"""What each connection-phase packet means, in words.

Shared by the text tree of ``--packets`` (:func:`packet_tree`), the ladder
diagrams and the report.  Client auth bytes are never shown: only their length
and meaning ("RSA-encrypted password", "request public key").
"""

from __future__ import annotations

from ..auth import describe
from ..model import Connection


def as_bytes(v) -> bytes:
    if isinstance(v, dict) and "hex" in v:
        try:
            return bytes.fromhex(v["hex"])
        except ValueError:
            return b""
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    return b""


def as_text(v) -> str | None:
    """A decoded text field ({"hex": ...} when it was not valid UTF-8) as text."""
    if v is None:
        return None
    if isinstance(v, dict) and "hex" in v:
        return as_bytes(v).decode("utf-8", "backslashreplace")
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "backslashreplace")
    return str(v)


def byte_len(v) -> int:
    if isinstance(v, dict):
        if "length" in v:
            return int(v["length"])
        if "hex" in v:
            return len(v["hex"]) // 2
    if isinstance(v, (str, bytes, bytearray)):
        return len(v)
    return 0


COMMANDS = {
    0x01: "COM_QUIT",
    0x02: "COM_INIT_DB",
    0x03: "COM_QUERY",
    0x0E: "COM_PING",
    0x11: "COM_CHANGE_USER",
    0x16: "COM_STMT_PREPARE",
    0x1F: "COM_RESET_CONNECTION",
}

KIND_LABEL = {
    "greeting": "Greeting",
    "ssl_request": "SSLRequest",
    "handshake_response": "HandshakeResponse",
    "auth_switch_request": "AuthSwitchRequest",
    "old_auth_switch_request": "OldAuthSwitchRequest",
    "auth_more_data": "AuthMoreData",
    "auth_data": "auth data",
    "server_plugin_data": "plugin data",
    "auth_next_factor": "AuthNextFactor",
    "ok": "OK",
    "err": "ERR",
    "com_change_user": "COM_CHANGE_USER",
    "command": "command",
    "quit": "COM_QUIT",
    "command_error": "ERR (first command)",
}


def step_for(conn: Connection, p: dict):
    for ex in conn.exchanges:
        for s in ex.steps:
            if s.sender == p["sender"] and s.seq == p["seq"] and s.ts == p["ts"]:
                return s
    return None


def client_auth_meaning(conn: Connection, p: dict, step, stage: dict) -> str:
    """What a client auth packet is, without showing its bytes (asked of the plugin)."""
    plugin = p.get("plugin") or ""
    data = step.data if step is not None else None
    m = describe(
        plugin,
        "client",
        p["kind"],
        data,
        length=p["length"],
        stage=stage.get(plugin),
        in_tls=bool(p.get("in_tls")),
    )
    return m.text


def server_data_meaning(plugin: str | None, kind: str, data: bytes) -> tuple[str, str | None]:
    """What the server's plugin data says, asked of the plugin: (meaning, PEM text or None)."""
    m = describe(plugin, "server", kind, data)
    pem = data.decode("ascii", "replace") if data.startswith(b"-----BEGIN") else None
    return m.text, pem


def advance_stage(stage: dict, conn: Connection, p: dict, data: bytes | None) -> None:
    """Move ``stage[plugin]`` as the plugin says this packet does (full auth, RSA...)."""
    plugin = p.get("plugin")
    if not plugin or p["kind"] not in ("auth_more_data", "auth_data"):
        return
    m = describe(
        plugin,
        p["sender"],
        p["kind"],
        data,
        length=p.get("length"),
        stage=stage.get(plugin),
        in_tls=bool(p.get("in_tls")),
    )
    if m.stage is not None:
        stage[plugin] = m.stage


def packets_from_steps(conn: Connection) -> list[dict]:
    """Packet-like dicts from the exchanges when the capture was opened
    without ``packets=True`` (fewer fields: no greeting details)."""
    out: list[dict] = []
    if conn.greeting_seen:
        out.append(
            {
                "ts": conn.first_ts or 0.0,
                "sender": "server",
                "seq": 0,
                "kind": "greeting",
                "length": 0,
                "plugin": conn.greeting_plugin,
                "fields": {"server_version": conn.server_version, "connection_id": conn.thread_id},
            }
        )
    for ex in conn.exchanges:
        for s in ex.steps:
            p: dict = {
                "ts": s.ts,
                "sender": s.sender,
                "seq": s.seq,
                "kind": s.kind,
                "length": len(s.data),
                "plugin": s.plugin,
                "in_tls": s.in_tls,
            }
            if s.kind in ("handshake_response", "com_change_user"):
                p["fields"] = {
                    "username": ex.user,
                    "database": ex.database,
                    "client_plugin": ex.client_plugin,
                    "auth_response": {"redacted": True, "length": len(s.data)},
                }
            elif s.kind in ("auth_switch_request", "auth_next_factor"):
                p["fields"] = {"plugin_name": s.plugin, "plugin_data": {"hex": s.data.hex()}}
            elif s.kind == "auth_more_data" and s.sender == "server":
                p["fields"] = {"data": {"hex": s.data.hex()}}
            elif s.kind == "err":
                err = ex.error or {}
                p["fields"] = {
                    "error_code": err.get("code"),
                    "sql_state": err.get("sqlstate"),
                    "error_message": err.get("message"),
                }
            out.append(p)
    return out


def server_label(conn: Connection) -> str:
    """'MariaDB 10.11.19 (5.5.5-10.11.19-MariaDB-...)' / 'MySQL 8.0.36'."""
    v = conn.server_version
    if not v:
        return "-"
    if v.startswith("5.5.5-") and "mariadb" in v.lower():
        return f"MariaDB {v[6:].split('-')[0]} ({v})"
    return f"{'MariaDB' if 'mariadb' in v.lower() else 'MySQL'} {v}"


def attrs_label(attrs: dict | None) -> str | None:
    if not attrs:
        return None
    name, version = attrs.get("_client_name"), attrs.get("_client_version")
    parts = []
    if name:
        parts.append(f"{name} {version or ''}".strip())
    if attrs.get("program_name"):
        parts.append(f"program {attrs['program_name']}")
    return ", ".join(parts) or None


def client_label(conn: Connection) -> str | None:
    """The client library: the fingerprint diagnose attached
    (``extra["client_fingerprint"]``), else the connect attributes.  A view
    computes nothing: :mod:`mysqlwire.api` attaches the fingerprint."""
    return conn.extra.get("client_fingerprint") or attrs_label(conn.connect_attrs)
