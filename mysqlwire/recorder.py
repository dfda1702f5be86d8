"""Events in, record out: how one connection's :class:`~mysqlwire.handshake.Event` s
fill its :class:`~mysqlwire.model.Connection` (greeting facts, exchanges and their
steps, errors, anomalies) and, with ``--packets``, its per-packet records.

The dissection pipeline (:mod:`mysqlwire.dissect`) drives it, one event at a time.
"""

from __future__ import annotations

from .model import AuthStep, Connection, Exchange, text
from .phase import CLIENT, SERVER, Event

_SERVER_STEP_KINDS = {
    "auth_switch_request",
    "old_auth_switch_request",
    "auth_more_data",
    "server_plugin_data",
    "auth_next_factor",
}


def packet_record(ev: Event, ts: float, in_tls: bool, show_secrets: bool) -> dict:
    """The ``--packets`` record of one event (client auth bytes redacted unless ``show_secrets``)."""
    from .protocol import to_jsonable  # (the grammars: imported on first use)

    rec = {
        "ts": ts,
        "sender": ev.sender,
        "seq": ev.seq,
        "kind": ev.kind,
        "length": len(ev.payload),
        "plugin": ev.plugin,
        "in_tls": in_tls,
    }
    if ev.detail:
        rec["detail"] = ev.detail
    if ev.fields is not None:
        fields = to_jsonable(ev.fields)
        if not show_secrets:
            for key in ("auth_response", "data", "plugin_data"):
                if key in fields and ev.sender == CLIENT:
                    fields[key] = {
                        "redacted": True,
                        "length": _len(getattr(ev.fields, key, b"")),
                    }
        rec["fields"] = fields
    elif ev.kind in ("auth_data", "server_plugin_data") and ev.payload:
        if ev.sender == CLIENT and not show_secrets:
            rec["data"] = {"redacted": True, "length": len(ev.payload)}
        else:
            rec["data"] = {"hex": ev.payload.hex()}
    return rec


def _start_exchange(
    conn: Connection, kind, ev: Event, user, plugin_name, f, ts: float, in_tls: bool
) -> None:
    """A login (handshake response) or COM_CHANGE_USER starts an exchange."""
    ex = Exchange(
        kind=kind,
        nonce=conn.greeting_nonce,
        user=text(user),
        database=text(f.get("database")),
        client_plugin=text(plugin_name),
        auth_plugin=ev.plugin,
        tls=in_tls,
        first_ts=ts,
        last_ts=ts,
    )
    ex.steps.append(
        AuthStep(CLIENT, ev.kind, ev.seq, ev.plugin, bytes(f["auth_response"]), ts, in_tls)
    )
    conn.exchanges.append(ex)


def apply_event(conn: Connection, hs, ev: Event, ts: float, in_tls: bool) -> bool:
    """Apply one event of ``hs`` (a :class:`~mysqlwire.handshake.Handshake`) to the
    record; True when an exchange ended or an error was recorded (a stream-mode
    reader is handed the connection again)."""
    kind = ev.kind
    f = ev.fields  # a Container (a dict): read by key, not attribute
    if kind == "anomaly":
        conn.anomalies.append(f"{ev.sender}: {ev.detail}")
        return False
    if kind == "greeting":
        conn.greeting_seen = True
        conn.protocol_version = int(f["protocol_version"])
        conn.server_version = text(f["server_version"])
        conn.thread_id = int(f["connection_id"])
        if f["protocol_version"] == 10:
            caps = f["capabilities"]
            conn.server_capabilities = int(caps)
            conn.server_ext_capabilities = int(f["mariadb_ext_caps"] or 0) if not caps & 1 else 0
            conn.greeting_plugin = text(f["auth_plugin_name"])
            conn.character_set = int(f["character_set"])
        conn.greeting_nonce = hs.nonce
        return False
    if kind == "err" and not conn.exchanges:
        conn.extra["pre_greeting_error" if not conn.greeting_seen else "early_error"] = _err(f)
        if conn.greeting_seen:
            # ERR after the greeting but before any response
            ex = Exchange(kind="login", nonce=conn.greeting_nonce, first_ts=ts, last_ts=ts)
            ex.outcome = "error"
            ex.error = _err(f)
            conn.exchanges.append(ex)
        return True
    if kind == "ssl_request":
        conn.client_capabilities = int(f["client_flag"])
        conn.tls = True
        return False
    if kind == "handshake_response":
        conn.client_capabilities = int(f["client_flag"])
        conn.client_ext_capabilities = int(f.get("mariadb_ext_caps", 0) or 0)
        conn.max_packet_size = int(f["max_packet_size"])
        conn.client_character_set = f.get("character_set")
        attrs = f.get("connect_attrs")
        if attrs is not None:
            named = conn.connect_attrs = {}
            for a in attrs:  # (_text, inlined: ~20 attributes a login)
                k = a["key"]
                v = a["value"]
                if k.__class__ is not bytes:
                    k = bytes(k)
                if v.__class__ is not bytes:
                    v = bytes(v)
                named[k.decode("utf-8", "backslashreplace")] = v.decode("utf-8", "backslashreplace")
        _start_exchange(conn, "login", ev, f["username"], f.get("client_plugin"), f, ts, in_tls)
        return False
    if kind == "com_change_user":
        _start_exchange(
            conn, "change_user", ev, f["user"], f.get("auth_plugin_name"), f, ts, in_tls
        )
        return False
    if kind == "command_error":
        conn.command_error = _err(f)
        return True
    if kind in ("command", "quit"):
        return False
    ex = conn.exchanges[-1] if conn.exchanges else None
    if ex is None:
        conn.anomalies.append(f"{ev.sender}: {kind} before any handshake response")
        return False
    ex.last_ts = ts
    if kind in _SERVER_STEP_KINDS:
        data = ev.payload
        if kind in ("auth_switch_request", "auth_next_factor"):
            data = bytes(f["plugin_data"])
        elif kind == "auth_more_data":
            data = bytes(f["data"])
        elif kind == "old_auth_switch_request":
            data = b""
        ex.steps.append(AuthStep(SERVER, kind, ev.seq, ev.plugin, bytes(data), ts, in_tls))
        return False
    if kind == "auth_data":
        ex.steps.append(AuthStep(CLIENT, kind, ev.seq, ev.plugin, bytes(ev.payload), ts, in_tls))
        return False
    if kind == "ok":
        ex.outcome = "ok"
        ex.steps.append(AuthStep(SERVER, kind, ev.seq, ev.plugin, b"", ts, in_tls))
        if hs.compressed:
            conn.compressed = True
        return True
    if kind == "err":
        ex.outcome = "error"
        ex.error = _err(f)
        ex.steps.append(AuthStep(SERVER, kind, ev.seq, ev.plugin, b"", ts, in_tls))
        return True
    return False


def _text(raw) -> str:
    """:func:`mysqlwire.model.text` of bytes that are never None (attributes)."""
    if raw.__class__ is not bytes:
        raw = bytes(raw)
    return raw.decode("utf-8", "backslashreplace")


def _len(v) -> int:
    try:
        return len(v)
    except TypeError:
        return 0


def _err(f) -> dict:
    return {
        "code": int(f["error_code"]),
        "sqlstate": text(f.get("sql_state")),
        "message": text(f["error_message"]),
    }
