"""HTML views for Jupyter and the HTML report: ladder diagrams and summary tables.

``connection_html(conn)`` draws the connection phase as a ladder (sequence)
diagram in inline SVG -- client on the left, server on the right, one arrow
per packet labelled with its kind, sequence number, plugin and key fields --
with the outcome, replay verdict and diagnosis beside it.
``capture_html(capture)`` is a summary table, one row per connection.
``Connection._repr_html_`` and ``Capture._repr_html_`` delegate here.

Every string that came from the wire (server version, user, plugin names,
error messages, connect attributes, dialog prompts...) is hostile input: it is
made printable (control characters as ``\\xNN``), truncated, then HTML-escaped
before it reaches the markup.  Client auth bytes are never shown, only their
length and meaning ("RSA-encrypted password", "request public key").
"""

from __future__ import annotations

import html
import os
from typing import Any

from .model import Connection
from .render import clean, server_label

__all__ = [
    "CSS",
    "esc",
    "connection_html",
    "compare_html",
    "panel_html",
    "ladder_svg",
    "capture_html",
    "summary_row",
    "summary_table_html",
    "login_latency_ms",
    "client_label",
    "short_server",
]

# ------------------------------------------------------------------ helpers


def esc(value: Any, limit: int | None = None) -> str:
    """A wire value as safe HTML text: printable, truncated to ``limit`` chars, escaped."""
    if value is None:
        return "-"
    s = clean(value)
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 1)] + "\u2026"
    return html.escape(s, quote=True)


def _hex(v) -> bytes:
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


def _str(v) -> str | None:
    """A decoded text field ({"hex": ...} when it was not valid UTF-8) as text."""
    if v is None:
        return None
    if isinstance(v, dict) and "hex" in v:
        return _hex(v).decode("utf-8", "backslashreplace")
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "backslashreplace")
    return str(v)


def _len(v) -> int:
    if isinstance(v, dict):
        if "length" in v:
            return int(v["length"])
        if "hex" in v:
            return len(v["hex"]) // 2
    if isinstance(v, (str, bytes, bytearray)):
        return len(v)
    return 0


def _attrs_label(attrs: dict | None) -> str | None:
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
    """The client library: diagnose's fingerprint when present, else a fresh
    fingerprint, else the connect attributes."""
    label = conn.extra.get("client_fingerprint")
    if label:
        return label
    try:
        from .diagnose.fingerprint import fingerprint_connection

        label = fingerprint_connection(conn).label
    except Exception:  # pragma: no cover - a view never fails on a heuristic
        label = None
    return label or _attrs_label(conn.connect_attrs)


def login_latency_ms(conn: Connection) -> float | None:
    """Duration of the connection phase: first packet (greeting) to the
    login's last packet (OK/ERR, or the client's last answer), in ms."""
    login = conn.login
    if login is None or login.last_ts is None:
        return None
    start = conn.first_ts
    if conn.packets:
        start = conn.packets[0]["ts"]
    if start is None:
        return None
    return max(0.0, (login.last_ts - start) * 1000.0)


def short_server(conn: Connection) -> str | None:
    """'MariaDB 10.11.19' / 'MySQL 8.0.36' (the full version string is in server_version)."""
    v = conn.server_version
    if not v:
        return None
    if v.startswith("5.5.5-") and "mariadb" in v.lower():
        return f"MariaDB {v[6:].split('-')[0]}"
    if "mariadb" in v.lower():
        return f"MariaDB {v.split('-')[0]}"
    return f"MySQL {v.split('-')[0]}"


def _tls_text(conn: Connection) -> str:
    if not conn.tls:
        return "no"
    info = conn.tls_info
    bits = [info.get("tls_version") or "TLS"]
    bits.append(
        "decrypted" if info.get("decrypted") else f"not decrypted ({info.get('tls_status') or '?'})"
    )
    return " ".join(bits)


def _plugin_chain(conn: Connection) -> str:
    chain = []
    for p in [conn.greeting_plugin, conn.client_plugin, *conn.switches]:
        if p and (not chain or chain[-1] != p):
            chain.append(p)
    return " \u2192 ".join(chain)


# ------------------------------------------------------------------ CSS

CSS = """
.mw{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:13px;color:#1e293b;background:#fff}
.mw-conn{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start;border:1px solid #e2e8f0;border-radius:8px;padding:12px;margin:10px 0;background:#fff}
.mw-conn svg{flex:0 0 auto;max-width:100%;height:auto}
.mw-conn svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.mw-panel{flex:1 1 320px;min-width:280px;max-width:620px}
.mw-title{font-weight:600;font-size:14px;margin-bottom:6px;overflow-wrap:anywhere}
.mw-kv{border-collapse:collapse;margin-bottom:8px}
.mw-kv th{text-align:left;color:#64748b;font-weight:500;padding:2px 10px 2px 0;vertical-align:top;white-space:nowrap}
.mw-kv td{padding:2px 0;word-break:break-word}
.mw-badge{display:inline-block;white-space:nowrap;border-radius:4px;padding:1px 7px;font-weight:600;font-size:12px;color:#fff;background:#64748b}
.mw-ok{background:#15803d}.mw-error{background:#dc2626}.mw-incomplete{background:#ca8a04}
.mw-v-PROOF_MATCHES{background:#15803d}.mw-v-PROOF_MISMATCH,.mw-v-EMPTY_PASSWORD_SENT,.mw-v-NONCE_MISUSE{background:#dc2626}
.mw-v-UNVERIFIABLE,.mw-v-NO_AUTH_ATTEMPT{background:#64748b}
.mw-findings{list-style:none;padding:0;margin:6px 0}
.mw-findings li{border-left:4px solid #94a3b8;background:#f8fafc;padding:5px 8px;margin:5px 0;border-radius:0 4px 4px 0}
.mw-findings li.mw-sev-error{border-color:#dc2626;background:#fef2f2}
.mw-findings li.mw-sev-warning{border-color:#ca8a04;background:#fefce8}
.mw-findings li.mw-sev-security{border-color:#9333ea;background:#faf5ff}
.mw-findings li.mw-sev-info{border-color:#0891b2;background:#ecfeff}
.mw-code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-weight:600}
.mw-ev,.mw-fix{font-size:12px;color:#475569;margin-top:3px;word-break:break-word}
.mw-fix b,.mw-ev b{color:#334155}
.mw-anom{color:#a16207;font-size:12px}
.mw-sum-wrap{overflow-x:auto;max-width:100%}
table.mw-sum{border-collapse:collapse;font-size:12.5px;width:100%}
table.mw-sum th{background:#f1f5f9;text-align:left;padding:5px 7px;border-bottom:2px solid #cbd5e1;white-space:nowrap}
table.mw-sum td{padding:4px 7px;border-bottom:1px solid #e2e8f0;vertical-align:top;max-width:260px;overflow-wrap:break-word}
table.mw-sum td.mw-nowrap{white-space:nowrap}
table.mw-sum tr.mw-row-error td:first-child{border-left:4px solid #dc2626}
table.mw-sum tr.mw-row-ok td:first-child{border-left:4px solid #15803d}
table.mw-sum tr.mw-row-incomplete td:first-child{border-left:4px solid #ca8a04}
.mw-num{text-align:right;font-variant-numeric:tabular-nums}
.mw-cmp{display:flex;gap:12px;align-items:flex-start}
.mw-cmp-col{flex:1 1 0;min-width:0;border:1px solid #e2e8f0;border-radius:8px;padding:10px;background:#fff}
.mw-cmp-col svg{width:100%;height:auto}
.mw-cmp-col .mw-panel{max-width:none}
.mw-cmp-head{font-weight:700;font-size:15px;margin-bottom:4px}
.mw-dim{color:#64748b}
"""

# ------------------------------------------------------------------ ladder

_W = 820
_XC = 170  # client lifeline
_XS = 720  # server lifeline
_MID = (_XC + _XS) // 2
_ROW = 50
_TOP = 78

_COLORS = {
    "client": "#2563eb",
    "server": "#475569",
    "ok": "#15803d",
    "fail": "#dc2626",
    "cmd": "#94a3b8",
    "tls": "#7c3aed",
}

_COMMANDS = {
    0x01: "COM_QUIT",
    0x02: "COM_INIT_DB",
    0x03: "COM_QUERY",
    0x0E: "COM_PING",
    0x11: "COM_CHANGE_USER",
    0x16: "COM_STMT_PREPARE",
    0x1F: "COM_RESET_CONNECTION",
}

_KIND_LABEL = {
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


class _Item:
    __slots__ = ("direction", "label", "detail", "color", "ts", "in_tls", "dashed", "title", "mark")

    def __init__(
        self,
        direction: str,
        label: str,
        detail: str = "",
        color: str = "#475569",
        ts: float | None = None,
        in_tls: bool = False,
        dashed: bool = False,
        title: str = "",
        mark: str = "",
    ):
        self.direction = direction  # "c2s", "s2c", "both", "none"
        self.label = label
        self.detail = detail
        self.color = color
        self.ts = ts
        self.in_tls = in_tls
        self.dashed = dashed
        self.title = title
        self.mark = mark


def _replay_marks(conn: Connection) -> dict[tuple, dict]:
    """(sender, seq, ts) of each client proof -> replay step result."""
    marks: dict[tuple, dict] = {}
    verdicts = [conn.extra.get("verdict")] + list(conn.extra.get("change_user_verdicts") or [])
    for ex, v in zip(conn.exchanges, verdicts, strict=False):
        if not v:
            continue
        for st in v.get("steps") or []:
            i = st.get("step")
            if isinstance(i, int) and 0 <= i < len(ex.steps):
                s = ex.steps[i]
                marks[(s.sender, s.seq, s.ts)] = st
    return marks


def _step_for(conn: Connection, p: dict):
    for ex in conn.exchanges:
        for s in ex.steps:
            if s.sender == p["sender"] and s.seq == p["seq"] and s.ts == p["ts"]:
                return s
    return None


_MARK_TEXT = {
    "match": ("\u2713 proof matches", "ok"),
    "mismatch": ("\u2717 proof MISMATCH", "fail"),
    "empty": ("\u2717 empty proof", "fail"),
    "unverifiable": ("? unverifiable", "cmd"),
}


def _client_auth_meaning(conn: Connection, p: dict, step, stage: dict) -> str:
    """What a client auth packet is, without showing its bytes."""
    plugin = p.get("plugin") or ""
    n = p["length"]
    data = step.data if step is not None else None
    if n == 0:
        return "empty (no password / no answer)"
    if plugin == "caching_sha2_password" and data == b"\x02":
        return "02: request the server's RSA public key"
    if plugin == "sha256_password" and data == b"\x01" and not p.get("in_tls"):
        return "01: request the server's RSA public key"
    if plugin in ("caching_sha2_password", "sha256_password") and stage.get(plugin) == "rsa":
        return f"RSA-encrypted password ({n} B)"
    if plugin in ("caching_sha2_password", "sha256_password") and stage.get(plugin) == "full":
        return f"clear-text password over TLS (redacted, {n} B)"
    if plugin in ("mysql_clear_password", "dialog", "auth_pam", "pam"):
        return f"clear-text password (redacted, {n} B)"
    if plugin == "client_ed25519":
        return f"ed25519 signature ({n} B)"
    if plugin == "mysql_old_password":
        return f"old scramble ({n} B)"
    return f"proof {n} B (redacted)"


def _items(conn: Connection) -> list[_Item]:
    marks = _replay_marks(conn)
    items: list[_Item] = []
    stage: dict[str, str] = {}  # plugin -> "full" | "rsa" (caching_sha2/sha256 path)
    packets = conn.packets
    if packets is None:
        packets = _packets_from_steps(conn)
    tls_row_done = False
    for p in packets:
        kind = p["kind"]
        sender = p["sender"]
        f = p.get("fields") or {}
        plugin = p.get("plugin")
        in_tls = bool(p.get("in_tls"))
        if in_tls and conn.tls and not tls_row_done:
            items.append(_tls_item(conn, p["ts"]))
            tls_row_done = True
        seq = p.get("seq")
        label = f"#{seq} " if seq is not None else ""
        label += _KIND_LABEL.get(kind, kind)
        detail: list[str] = []
        color = _COLORS["client" if sender == "client" else "server"]
        dashed = False
        mark = ""
        if kind == "greeting":
            ver = _str(f.get("server_version")) or conn.server_version
            detail.append(f"{ver}" if ver else "server version ?")
            if f.get("connection_id") is not None:
                detail.append(f"thread {f['connection_id']}")
            if plugin:
                label += f" [{plugin}]"
            nonce = f.get("nonce")
            if nonce is not None:
                detail.append(f"nonce {_len(nonce)} B")
            if "CLIENT_SSL" in (f.get("capabilities") or []):
                detail.append("TLS offered")
        elif kind == "ssl_request":
            detail.append("client switches to TLS")
        elif kind in ("handshake_response", "com_change_user"):
            user = _str(f.get("username") if kind == "handshake_response" else f.get("user"))
            detail.append(f"user '{clean(user)}'" if user is not None else "user ?")
            db = _str(f.get("database"))
            if db:
                detail.append(f"db '{clean(db)}'")
            named = _str(f.get("client_plugin")) or _str(f.get("auth_plugin_name"))
            if named:
                label += f" [{named}]"
            elif plugin:
                label += f" [{plugin}?]"
            ar = f.get("auth_response")
            n = _len(ar) if ar is not None else 0
            detail.append(f"proof {n} B (redacted)" if n else "EMPTY auth response")
        elif kind in ("auth_switch_request", "auth_next_factor"):
            name = _str(f.get("plugin_name")) or plugin
            label += f" \u2192 {name}"
            pdata = _hex(f.get("plugin_data"))
            if name in ("dialog", "auth_pam") and pdata:
                detail.append(f"prompt '{clean(pdata[1:].decode('utf-8', 'replace'))}'")
            else:
                n = len(pdata.rstrip(b"\x00"))
                detail.append(f"switch to {name}, {n}-byte data")
        elif kind == "old_auth_switch_request":
            label += " \u2192 mysql_old_password"
            detail.append("bare 0xFE: answer with the 8-byte 3.23 scramble")
        elif kind == "auth_more_data":
            data = _hex(f.get("data")) if "data" in f else _hex(p.get("data"))
            if plugin:
                label += f" [{plugin}]"
            if plugin in ("caching_sha2_password", "sha256_password"):
                if data[:1] == b"\x03":
                    detail.append("01 03: fast auth ok (cached), OK follows")
                    color = _COLORS["ok"]
                elif data[:1] == b"\x04":
                    detail.append("01 04: full auth: send the password (TLS or RSA)")
                    stage[plugin] = "full"
                elif data.startswith(b"-----BEGIN") or data[:1] == b"-":
                    detail.append(f"RSA public key ({len(data)} B PEM)")
                    stage[plugin] = "rsa"
                else:
                    detail.append(f"{len(data)} B")
            elif plugin in ("dialog", "auth_pam") and data:
                detail.append(f"prompt '{clean(data[1:].decode('utf-8', 'replace'))}'")
            else:
                detail.append(f"{len(data)} B")
        elif kind in ("auth_data", "server_plugin_data"):
            if plugin:
                label += f" [{plugin}]"
            if sender == "client":
                step = _step_for(conn, p)
                detail.append(_client_auth_meaning(conn, p, step, stage))
                if plugin == "caching_sha2_password" and step is not None and step.data == b"\x02":
                    stage[plugin] = "rsa-requested"
            else:
                detail.append(f"{p['length']} B")
        elif kind == "ok":
            color = _COLORS["ok"]
            detail.append("authenticated" if conn.outcome == "ok" else "OK")
        elif kind in ("err", "command_error"):
            color = _COLORS["fail"]
            code, state = f.get("error_code"), f.get("sql_state")
            label = (f"#{seq} " if seq is not None else "") + (
                "ERR" if kind == "err" else "ERR (first command)"
            )
            label += f" {code}" + (f" ({clean(_str(state))})" if state else "")
            detail.append(clean(_str(f.get("error_message")) or ""))
        elif kind in ("command", "quit"):
            color = _COLORS["cmd"]
            dashed = True
            raw = p.get("detail")
            if kind == "command" and isinstance(raw, str) and raw.startswith("0x"):
                try:
                    label = f"#{seq} {_COMMANDS.get(int(raw, 16), 'command ' + raw)}"
                except ValueError:
                    pass
            detail.append("command phase")
        else:
            detail.append(f"{p['length']} B")
        res = marks.get((sender, seq, p["ts"]))
        if res is not None:
            text, c = _MARK_TEXT.get(res.get("result"), (str(res.get("result")), "cmd"))
            mark = text
            if c == "fail":
                color = _COLORS["fail"]
        items.append(
            _Item(
                "c2s" if sender == "client" else "s2c",
                label,
                " \u00b7 ".join(x for x in detail if x),
                color,
                p["ts"],
                in_tls,
                dashed,
                mark=mark,
            )
        )
        if kind == "ssl_request" and conn.tls and not conn.tls_info.get("decrypted"):
            items.append(_tls_item(conn, None))
            tls_row_done = True
    if conn.tls and not tls_row_done:
        items.append(_tls_item(conn, None))
    end = _end_item(conn)
    if end is not None:
        items.append(end)
    return items


def _tls_item(conn: Connection, ts: float | None) -> _Item:
    info = conn.tls_info
    bits = [info.get("tls_version") or "TLS", info.get("tls_cipher") or ""]
    if info.get("tls_sni"):
        bits.append(f"SNI {clean(info['tls_sni'])}")
    if info.get("decrypted"):
        label = "TLS handshake (decrypted with the key log)"
    else:
        label = "TLS: the login is encrypted"
        bits.append(f"not decrypted ({info.get('tls_status') or '?'}): give --keylog")
    return _Item(
        "both", label, " \u00b7 ".join(b for b in bits if b), _COLORS["tls"], ts, True, True
    )


def _end_item(conn: Connection) -> _Item | None:
    login = conn.login
    if login is None and conn.tls and not conn.tls_info.get("decrypted"):
        if conn.closed_by:
            return _Item(
                "none", f"connection closed ({conn.closed_by})", "outcome hidden inside TLS"
            )
        return None
    if login is None:
        if conn.greeting_seen and conn.closed_by:
            return _Item("none", f"connection closed ({conn.closed_by})", "no login attempted")
        return None
    if login.outcome != "incomplete" or not conn.closed_by:
        return None
    failed = conn.failed
    text = {
        "fin": "connection closed (FIN) before the server's verdict",
        "rst": "connection reset (RST) before the server's verdict",
    }.get(conn.closed_by, f"capture ends ({conn.closed_by}) before the server's verdict")
    return _Item(
        "none",
        "client gave up" if failed else "no verdict",
        text,
        _COLORS["fail"] if failed else _COLORS["cmd"],
    )


def _packets_from_steps(conn: Connection) -> list[dict]:
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


def _text(x: float, y: float, s: str, *, cls: str = "", anchor: str = "middle", **attrs) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}"{c}{extra}>{s}</text>'


def ladder_svg(conn: Connection) -> str:
    """The connection phase as an inline SVG ladder diagram."""
    items = _items(conn)
    h = _TOP + _ROW * max(len(items), 1) + 16
    t0 = next((it.ts for it in items if it.ts is not None), None)
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{h}" '
        f'viewBox="0 0 {_W} {h}" role="img" class="mw-ladder" '
        f'aria-label="ladder diagram of connection {conn.id}">'
    ]
    # TLS shading: from the first TLS row to the last one.
    tls_rows = [i for i, it in enumerate(items) if it.in_tls]
    if tls_rows:
        y1 = _TOP + _ROW * tls_rows[0] - 4
        y2 = _TOP + _ROW * (tls_rows[-1] + 1) + 2
        out.append(
            f'<rect x="{_XC - 40}" y="{y1}" width="{_XS - _XC + 80}" height="{y2 - y1}" '
            f'rx="6" fill="#ede9fe" fill-opacity="0.75" stroke="#c4b5fd"/>'
        )
        out.append(
            _text(
                _XS + 36,
                y1 + 12,
                "TLS",
                anchor="end",
                fill="#7c3aed",
                font_size="10",
                font_weight="700",
            )
        )
    # Heads and lifelines.
    client = client_label(conn)
    for x, who, ep, sub in (
        (_XC, "client", conn.client, client),
        (_XS, "server", conn.server, server_label(conn) if conn.server_version else None),
    ):
        out.append(
            f'<rect x="{x - 95}" y="6" width="190" height="52" rx="6" fill="#f1f5f9" stroke="#94a3b8"/>'
        )
        out.append(_text(x, 21, esc(who), font_size="11", font_weight="700", fill="#334155"))
        out.append(_text(x, 36, esc(ep, 30), font_size="11", fill="#334155"))
        if sub:
            out.append(_text(x, 50, esc(sub, 32), font_size="10", fill="#64748b"))
        out.append(
            f'<line x1="{x}" y1="58" x2="{x}" y2="{h - 6}" stroke="#cbd5e1" stroke-width="2"/>'
        )
    # Rows.
    for i, it in enumerate(items):
        y = _TOP + _ROW * i + 24
        if it.ts is not None and t0 is not None:
            out.append(
                _text(
                    8,
                    y - 3,
                    f"+{(it.ts - t0) * 1000:.2f} ms",
                    anchor="start",
                    font_size="10",
                    fill="#64748b",
                )
            )
        dash = ' stroke-dasharray="5 4"' if it.dashed else ""
        col = it.color
        if it.direction in ("c2s", "s2c", "both"):
            x1, x2 = (_XC, _XS) if it.direction != "s2c" else (_XS, _XC)
            tip = x2 - 9 if x2 > x1 else x2 + 9
            out.append(
                f'<line x1="{x1}" y1="{y}" x2="{tip}" y2="{y}" stroke="{col}" stroke-width="2"{dash}/>'
            )
            out.append(_arrowhead(x2, y, 1 if x2 > x1 else -1, col))
            if it.direction == "both":
                out.append(_arrowhead(x1, y, -1, col))
        else:
            out.append(
                f'<line x1="{_XC}" y1="{y}" x2="{_XS}" y2="{y}" stroke="{col}" '
                f'stroke-width="1.5" stroke-dasharray="2 5"/>'
            )
            out.append(_text(_XC, y + 5, "\u2715", fill=col, font_size="14", font_weight="700"))
        weight = "700" if col in (_COLORS["fail"], _COLORS["ok"]) else "600"
        label_fill = col if col != _COLORS["cmd"] else "#64748b"
        title = f"<title>{esc(it.label)} {esc(it.detail)}</title>" if it.detail else ""
        out.append(
            f"<g>{title}"
            + _text(
                _MID, y - 7, esc(it.label, 78), font_size="12", font_weight=weight, fill=label_fill
            )
            + _text(_MID, y + 16, esc(it.detail, 96), font_size="11", fill="#475569")
            + "</g>"
        )
        if it.mark:
            mcol = (
                _COLORS["ok"]
                if it.mark.startswith("\u2713")
                else (_COLORS["fail"] if it.mark.startswith("\u2717") else "#64748b")
            )
            # Under the time stamp, left of the client lifeline.
            out.append(
                _text(
                    _XC - 8,
                    y + 14,
                    esc(it.mark),
                    anchor="end",
                    font_size="10.5",
                    font_weight="700",
                    fill=mcol,
                )
            )
    out.append("</svg>")
    return "".join(out)


def _arrowhead(x: float, y: float, sign: int, color: str) -> str:
    return (
        f'<polygon points="{x},{y} {x - sign * 11},{y - 5} {x - sign * 11},{y + 5}" '
        f'fill="{color}"/>'
    )


# ------------------------------------------------------------------ panel


def _badge(text: str, cls: str) -> str:
    return f'<span class="mw-badge {cls}">{esc(text)}</span>'


def panel_html(conn: Connection, *, title: str | None = None) -> str:
    """Facts, outcome, replay verdict and diagnosis of one connection."""
    rows: list[tuple[str, str]] = []
    if conn.server_version is not None:
        rows.append(
            (
                "server",
                f"{esc(server_label(conn), 90)} <span class=mw-dim>thread {esc(conn.thread_id)}</span>",
            )
        )
    cl = client_label(conn)
    if cl:
        rows.append(("client", esc(cl, 120)))
    if conn.user is not None or conn.database is not None:
        db = f" <span class=mw-dim>db</span> {esc(conn.database, 80)}" if conn.database else ""
        rows.append(("user", f"{esc(conn.user, 80)}{db}"))
    chain = _plugin_chain(conn)
    if chain:
        rows.append(("plugins", esc(chain, 160)))
    rows.append(("TLS", esc(_tls_text(conn)) + (" \u00b7 compressed" if conn.compressed else "")))
    lat = login_latency_ms(conn)
    if lat is not None:
        rows.append(("login took", f"{lat:.2f} ms"))
    err = conn.error
    outcome = _badge(conn.outcome.upper(), f"mw-{esc(conn.outcome)}")
    if err:
        outcome += (
            f" <span class=mw-code>{esc(err.get('code'))}</span>"
            f" ({esc(err.get('sqlstate'))}) {esc(err.get('message'), 200)}"
        )
    elif conn.failed:
        outcome += " client closed the connection during authentication"
    rows.append(("outcome", outcome))
    for ex in conn.change_users:
        line = _badge(ex.outcome.upper(), f"mw-{esc(ex.outcome)}") + f" user {esc(ex.user, 60)}"
        if ex.error:
            line += f" {esc(ex.error.get('code'))} {esc(ex.error.get('message'), 160)}"
        rows.append(("change user", line))
    if conn.command_error:
        e = conn.command_error
        rows.append(
            (
                "1st command",
                f"ERR {esc(e.get('code'))} ({esc(e.get('sqlstate'))}) {esc(e.get('message'), 160)}",
            )
        )
    v = conn.extra.get("verdict")
    if v:
        line = _badge(v["verdict"], f"mw-v-{esc(v['verdict'])}")
        if v.get("verdict_detail"):
            line += f" {esc(v['verdict_detail'], 120)}"
        if v.get("matched_candidate") is not None:
            line += f" \u00b7 candidate #{esc(v['matched_candidate'])}"
        if v.get("server_disagrees"):
            line += " \u00b7 <b>server disagrees</b>"
        rows.append(("replay", line))
    for j, cv in enumerate(conn.extra.get("change_user_verdicts") or []):
        line = _badge(cv["verdict"], f"mw-v-{esc(cv['verdict'])}")
        if cv.get("verdict_detail"):
            line += f" {esc(cv['verdict_detail'], 120)}"
        rows.append((f"replay cu #{j + 1}", line))
    parts = [f'<div class="mw-panel"><div class="mw-title">{title or _conn_title(conn)}</div>']
    parts.append('<table class="mw-kv">')
    for k, val in rows:
        parts.append(f"<tr><th>{esc(k)}</th><td>{val}</td></tr>")
    parts.append("</table>")
    diag = conn.extra.get("diagnosis")
    if diag:
        parts.append('<ol class="mw-findings">')
        for d in diag:
            sev = d.get("severity") or "info"
            parts.append(
                f'<li class="mw-sev-{esc(sev)}"><span class="mw-code">[{esc(sev)}] {esc(d.get("code"))}</span> '
                f"{esc(d.get('title'), 400)}"
            )
            if d.get("evidence"):
                parts.append(f'<div class="mw-ev"><b>evidence:</b> {esc(d["evidence"], 600)}</div>')
            if d.get("fix"):
                parts.append(f'<div class="mw-fix"><b>fix:</b> {esc(d["fix"], 600)}</div>')
            parts.append("</li>")
        parts.append("</ol>")
    elif diag is None:
        parts.append(
            '<div class="mw-dim">not diagnosed (mysqlwire.diagnose.diagnose_connection)</div>'
        )
    for a in conn.anomalies:
        parts.append(f'<div class="mw-anom">anomaly: {esc(a, 300)}</div>')
    parts.append("</div>")
    return "".join(parts)


def _conn_title(conn: Connection) -> str:
    cap = os.path.basename(conn.capture) if conn.capture else ""
    where = f' <span class="mw-dim">{esc(cap)}</span>' if cap else ""
    return f"#{esc(conn.id)} {esc(conn.client)} \u2192 {esc(conn.server)}{where}"


def connection_html(conn: Connection, *, css: bool = True, title: str | None = None) -> str:
    """Ladder diagram + facts/verdict/diagnosis panel for one connection."""
    style = f"<style>{CSS}</style>" if css else ""
    return (
        f'{style}<div class="mw"><div class="mw-conn" data-conn="{esc(conn.id)}">'
        f"{ladder_svg(conn)}{panel_html(conn, title=title)}</div></div>"
    )


def compare_html(*conns: Connection, titles: list[str] | None = None, css: bool = True) -> str:
    """Ladders side by side (e.g. the client that works next to the one that
    fails), each with its facts, verdict and diagnosis underneath."""
    cols = []
    for i, conn in enumerate(conns):
        head = titles[i] if titles and i < len(titles) else f"connection {conn.id}"
        cols.append(
            f'<div class="mw-cmp-col"><div class="mw-cmp-head">{esc(head, 120)}</div>'
            f"{ladder_svg(conn)}{panel_html(conn)}</div>"
        )
    style = f"<style>{CSS}</style>" if css else ""
    return f'{style}<div class="mw"><div class="mw-cmp">{"".join(cols)}</div></div>'


# ------------------------------------------------------------------ tables

SUMMARY_COLUMNS = [
    ("n", "#"),
    ("capture", "capture"),
    ("user", "user"),
    ("client_lib", "client library"),
    ("server_short", "server"),
    ("plugins", "plugins"),
    ("tls", "TLS"),
    ("outcome", "outcome"),
    ("verdict", "replay"),
    ("finding", "top finding"),
    ("latency_ms", "login ms"),
]


def summary_row(conn: Connection, n: int | None = None) -> dict[str, Any]:
    """One summary-table row (plain values, not escaped)."""
    err = conn.error
    diag = conn.extra.get("diagnosis") or []
    v = conn.extra.get("verdict") or {}
    lat = login_latency_ms(conn)
    return {
        "n": conn.id if n is None else n,
        "id": conn.id,
        "capture": os.path.basename(conn.capture) if conn.capture else None,
        "client": conn.client,
        "server": conn.server,
        "server_version": conn.server_version,
        "server_short": short_server(conn),
        "client_lib": client_label(conn),
        "user": conn.user,
        "plugins": _plugin_chain(conn),
        "final_plugin": conn.final_plugin,
        "tls": _tls_text(conn),
        "outcome": conn.outcome,
        "failed": conn.failed,
        "error": (
            f"{err.get('code')}" + (f" ({err['sqlstate']})" if err.get("sqlstate") else "")
            if err
            else None
        ),
        "verdict": v.get("verdict"),
        "finding": diag[0]["code"] if diag else None,
        "severity": diag[0]["severity"] if diag else None,
        "latency_ms": round(lat, 3) if lat is not None else None,
    }


def summary_table_html(
    rows: list[dict], *, table_id: str | None = None, links: bool = False
) -> str:
    """The summary table; each ``<tr>`` carries ``data-*`` attributes for the report's filters."""
    cols = [c for c in SUMMARY_COLUMNS if any(r.get(c[0]) not in (None, "") for r in rows)]
    tid = f' id="{esc(table_id)}"' if table_id else ""
    out = [f'<div class="mw-sum-wrap"><table class="mw-sum"{tid}><thead><tr>']
    for i, (key, head) in enumerate(cols):
        num = key in ("n", "latency_ms")
        out.append(
            f'<th data-col="{i}" data-key="{key}"{" data-num=1" if num else ""} '
            f'title="click to sort">{esc(head)}</th>'
        )
    out.append("</tr></thead><tbody>")
    for r in rows:
        attrs = (
            f' class="mw-row-{esc(r.get("outcome"))}" data-outcome="{esc(r.get("outcome"))}"'
            f' data-plugin="{esc(r.get("final_plugin") or "")}" data-user="{esc(r.get("user") or "")}"'
            f' data-verdict="{esc(r.get("verdict") or "")}" data-n="{esc(r.get("n"))}"'
        )
        out.append(f"<tr{attrs}>")
        for key, _ in cols:
            val = r.get(key)
            if key == "latency_ms" and val is not None:
                cell = f"{val:.2f}"
                out.append(f'<td class="mw-num" data-v="{val}">{cell}</td>')
                continue
            text = esc(val, 80) if val not in (None, "") else ""
            sortv = esc(val, 200) if val is not None else ""
            if key == "n":
                cell = f'<a href="#conn-{esc(val)}">{text}</a>' if links else text
                tip = f"{r.get('client')} \u2192 {r.get('server')}"
                out.append(f'<td class="mw-num" data-v="{esc(val)}" title="{esc(tip)}">{cell}</td>')
            elif key == "server_short":
                tip = esc(r.get("server_version"), 200)
                out.append(f'<td data-v="{sortv}" title="{tip}">{text}</td>')
            elif key == "outcome" and val:
                err = f" {esc(r['error'])}" if r.get("error") else ""
                badge = _badge(str(val), "mw-" + str(esc(val)))
                out.append(f'<td data-v="{sortv}" class="mw-nowrap">{badge}{err}</td>')
            elif key == "verdict" and val:
                out.append(f'<td data-v="{sortv}">{_badge(str(val), "mw-v-" + str(esc(val)))}</td>')
            elif key in ("capture", "plugins", "finding"):
                out.append(f'<td data-v="{sortv}">{text.replace("_", "_<wbr>")}</td>')
            else:
                out.append(f'<td data-v="{sortv}">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def capture_html(capture, *, css: bool = True) -> str:
    """Summary table of every connection of a :class:`mysqlwire.api.Capture`."""
    conns = list(capture.connections)
    summary = getattr(capture, "summary", None)
    path = getattr(capture, "path", None)
    head = (
        f"<b>{esc(os.path.basename(path) if path else 'capture')}</b>: {len(conns)} connection(s)"
    )
    if summary is not None and getattr(summary, "frames", None):
        head += f", {summary.frames} frame(s)"
    if summary is not None and getattr(summary, "truncated", False):
        head += f' <span class="mw-anom">truncated: {esc(summary.error)}</span>'
    body = summary_table_html([summary_row(c) for c in conns]) if conns else ""
    hint = (
        '<div class="mw-dim">capture.connections[i] shows the ladder diagram of one connection</div>'
        if conns
        else ""
    )
    style = f"<style>{CSS}</style>" if css else ""
    return f'{style}<div class="mw"><div>{head}</div>{body}{hint}</div>'
