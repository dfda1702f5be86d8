"""The connection phase as an inline SVG ladder (sequence) diagram.

Client on the left, server on the right, one arrow per packet labelled with
its kind, ``seq=N`` (the packet's sequence id), plugin and key fields, the
replay marks beside the client's proofs.  Every wire string is escaped
(:func:`mysqlwire.views.escape.esc`) before it reaches the markup.
"""

from __future__ import annotations

from ..auth import describe
from ..model import Connection
from .escape import clean, esc
from .packets import (
    COMMANDS,
    KIND_LABEL,
    advance_stage,
    as_bytes,
    as_text,
    byte_len,
    client_auth_meaning,
    client_label,
    packets_from_steps,
    server_label,
    step_for,
)

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


_MARK_TEXT = {
    "match": ("\u2713 proof matches", "ok"),
    "mismatch": ("\u2717 proof MISMATCH", "fail"),
    "empty": ("\u2717 empty proof", "fail"),
    "unverifiable": ("? unverifiable", "cmd"),
}


def _items(conn: Connection) -> list[_Item]:
    marks = _replay_marks(conn)
    items: list[_Item] = []
    stage: dict[str, str] = {}  # plugin -> "full" | "rsa" (caching_sha2/sha256 path)
    packets = conn.packets
    if packets is None:
        packets = packets_from_steps(conn)
    tls_row_done = False
    for num, p in enumerate(packets, 1):
        kind = p["kind"]
        sender = p["sender"]
        f = p.get("fields") or {}
        plugin = p.get("plugin")
        in_tls = bool(p.get("in_tls"))
        if in_tls and conn.tls and not tls_row_done:
            items.append(_tls_item(conn, p["ts"]))
            tls_row_done = True
        seq = p.get("seq")
        # packets are numbered from 1 within the connection; seq=N is the
        # MySQL sequence id
        prefix = f"{num}. " + (f"seq={seq} " if seq is not None else "")
        label = prefix + KIND_LABEL.get(kind, kind)
        detail: list[str] = []
        color = _COLORS["client" if sender == "client" else "server"]
        dashed = False
        mark = ""
        if kind == "greeting":
            ver = as_text(f.get("server_version")) or conn.server_version
            detail.append(f"{ver}" if ver else "server version ?")
            if f.get("connection_id") is not None:
                detail.append(f"thread {f['connection_id']}")
            if plugin:
                label += f" [{plugin}]"
            nonce = f.get("nonce")
            if nonce is not None:
                detail.append(f"nonce {byte_len(nonce)} B")
            if "CLIENT_SSL" in (f.get("capabilities") or []):
                detail.append("TLS offered")
        elif kind == "ssl_request":
            detail.append("client switches to TLS")
        elif kind in ("handshake_response", "com_change_user"):
            user = as_text(f.get("username") if kind == "handshake_response" else f.get("user"))
            detail.append(f"user '{clean(user)}'" if user is not None else "user ?")
            db = as_text(f.get("database"))
            if db:
                detail.append(f"db '{clean(db)}'")
            named = as_text(f.get("client_plugin")) or as_text(f.get("auth_plugin_name"))
            if named:
                label += f" [{named}]"
            elif plugin:
                label += f" [{plugin}?]"
            ar = f.get("auth_response")
            n = byte_len(ar) if ar is not None else 0
            detail.append(f"proof {n} B (redacted)" if n else "EMPTY auth response")
        elif kind in ("auth_switch_request", "auth_next_factor"):
            name = as_text(f.get("plugin_name")) or plugin
            label += f" \u2192 {name}"
            pdata = as_bytes(f.get("plugin_data"))
            brief = describe(name, "server", kind, pdata).brief
            if brief:
                detail.append(clean(brief))
            else:
                n = len(pdata.rstrip(b"\x00"))
                detail.append(f"switch to {name}, {n}-byte data")
        elif kind == "old_auth_switch_request":
            label += " \u2192 mysql_old_password"
            detail.append("bare 0xFE: answer with the 8-byte 3.23 scramble")
        elif kind == "auth_more_data":
            data = as_bytes(f.get("data")) if "data" in f else as_bytes(p.get("data"))
            if plugin:
                label += f" [{plugin}]"
            m = describe(plugin, "server", kind, data, stage=stage.get(plugin or ""))
            detail.append(clean(m.brief) if m.brief else f"{len(data)} B")
            if m.success:
                color = _COLORS["ok"]
            advance_stage(stage, conn, p, data)
        elif kind in ("auth_data", "server_plugin_data"):
            if plugin:
                label += f" [{plugin}]"
            if sender == "client":
                step = step_for(conn, p)
                detail.append(client_auth_meaning(conn, p, step, stage))
                advance_stage(stage, conn, p, step.data if step is not None else None)
            else:
                detail.append(f"{p['length']} B")
        elif kind == "ok":
            color = _COLORS["ok"]
            detail.append("authenticated" if conn.outcome == "ok" else "OK")
        elif kind in ("err", "command_error"):
            color = _COLORS["fail"]
            code, state = f.get("error_code"), f.get("sql_state")
            label = prefix + ("ERR" if kind == "err" else "ERR (first command)")
            label += f" {code}" + (f" ({clean(as_text(state))})" if state else "")
            detail.append(clean(as_text(f.get("error_message")) or ""))
        elif kind in ("command", "quit"):
            color = _COLORS["cmd"]
            dashed = True
            raw = p.get("detail")
            if kind == "command" and isinstance(raw, str) and raw.startswith("0x"):
                try:
                    label = f"{prefix}{COMMANDS.get(int(raw, 16), 'command ' + raw)}"
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
    if conn.outcome == "midstream":
        return _Item(
            "none",
            "joined mid-stream",
            "the connection was already open when the capture started: its login is not in it",
            _COLORS["cmd"],
        )
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


def _text(x: float, y: float, s: str, *, cls: str = "", anchor: str = "middle", **attrs) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}"{c}{extra}>{s}</text>'


# A ladder draws at most this many rows (a hostile connection phase may hold
# 1024 packets): the first ones, a row saying how many are left out, the last.
MAX_ROWS = 48
_TAIL_ROWS = 8


def _bounded(items: list[_Item]) -> list[_Item]:
    if len(items) <= MAX_ROWS:
        return items
    head = items[: MAX_ROWS - _TAIL_ROWS - 1]
    tail = items[-_TAIL_ROWS:]
    left_out = len(items) - len(head) - len(tail)
    gap = _Item(
        "none",
        f"\u2026 {left_out} more packets not drawn",
        "mysqlwire dissect --packets lists every one",
        _COLORS["cmd"],
    )
    return [*head, gap, *tail]


def ladder_svg(conn: Connection) -> str:
    """The connection phase as an inline SVG ladder diagram."""
    items = _bounded(_items(conn))
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
