"""HTML for Jupyter and the report: the facts panel, the summary table.

``connection_html(conn)`` is the ladder diagram with the outcome, replay
verdict and diagnosis beside it; ``capture_html(capture)`` a summary table,
one row per connection.  These only show what the record holds: the client
fingerprint, verdict and diagnosis are computed by the API layer
(:mod:`mysqlwire.api`) or the commands before a view is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ..model import Connection
from .escape import esc
from .ladder import ladder_svg
from .packets import client_label, server_label


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
.mw-encrypted{background:#7c3aed}.mw-midstream{background:#0891b2}
table.mw-sum tr.mw-row-encrypted td:first-child{border-left:4px solid #7c3aed}
table.mw-sum tr.mw-row-midstream td:first-child{border-left:4px solid #0891b2}
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


# ------------------------------------------------------------------ panel


# A panel lists at most this many anomalies (the JSON record has them all).
MAX_ANOMALIES = 8


OUTCOME_LABEL = {"midstream": "joined mid-stream", "encrypted": "encrypted (no keys)"}


def outcome_label(outcome: str) -> str:
    """The words for an outcome ("midstream" -> "joined mid-stream")."""
    return OUTCOME_LABEL.get(outcome, outcome)


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
    outcome = _badge(outcome_label(conn.outcome).upper(), f"mw-{esc(conn.outcome)}")
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
            line += f" \u00b7 matched the candidate on line {esc(v['matched_candidate'])}"
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
    for a in conn.anomalies[:MAX_ANOMALIES]:
        parts.append(f'<div class="mw-anom">anomaly: {esc(a, 300)}</div>')
    if len(conn.anomalies) > MAX_ANOMALIES:
        more = len(conn.anomalies) - MAX_ANOMALIES
        parts.append(f'<div class="mw-anom">\u2026 and {more} more anomalies</div>')
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
        head = titles[i] if titles and i < len(titles) else f"connection #{conn.id}"
        cols.append(
            f'<div class="mw-cmp-col"><div class="mw-cmp-head">{esc(head, 120)}</div>'
            f"{ladder_svg(conn)}{panel_html(conn)}</div>"
        )
    style = f"<style>{CSS}</style>" if css else ""
    return f'{style}<div class="mw"><div class="mw-cmp">{"".join(cols)}</div></div>'


# ------------------------------------------------------------------ tables

SUMMARY_COLUMNS = [
    ("id", "#"),
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
    """One summary-table row (plain values, not escaped).  ``id`` is the
    connection's number (shown); ``n`` the row's key in a report that may
    hold several captures (anchors ``#conn-<n>``), the id by default."""
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


def summary_columns(rows: Iterable[dict]) -> list[tuple[str, str]]:
    """The columns of :data:`SUMMARY_COLUMNS` that hold a value in some row."""
    used: set[str] = set()
    for r in rows:
        used.update(k for k, _ in SUMMARY_COLUMNS if r.get(k) not in (None, ""))
    return [c for c in SUMMARY_COLUMNS if c[0] in used]


def summary_head_html(cols: list[tuple[str, str]], *, table_id: str | None = None) -> str:
    """Opening of the summary table, up to ``<tbody>``."""
    tid = f' id="{esc(table_id)}"' if table_id else ""
    out = [f'<div class="mw-sum-wrap"><table class="mw-sum"{tid}><thead><tr>']
    for i, (key, head) in enumerate(cols):
        num = key in ("id", "latency_ms")
        out.append(
            f'<th data-col="{i}" data-key="{key}"{" data-num=1" if num else ""} '
            f'title="click to sort">{esc(head)}</th>'
        )
    out.append("</tr></thead><tbody>")
    return "".join(out)


SUMMARY_FOOT = "</tbody></table></div>"


def summary_row_html(
    r: dict, cols: list[tuple[str, str]], *, link: bool = False, hidden: bool = False
) -> str:
    """One ``<tr>`` with ``data-*`` attributes for the report's filters;
    ``link``: its number links to the connection's ladder (``#conn-<n>``)."""
    attrs = (
        f' class="mw-row-{esc(r.get("outcome"))}" data-outcome="{esc(r.get("outcome"))}"'
        f' data-plugin="{esc(r.get("final_plugin") or "")}" data-user="{esc(r.get("user") or "")}"'
        f' data-verdict="{esc(r.get("verdict") or "")}" data-n="{esc(r.get("n"))}"'
        + (" hidden" if hidden else "")
    )
    out = [f"<tr{attrs}>"]
    for key, _ in cols:
        val = r.get(key)
        if key == "latency_ms" and val is not None:
            cell = f"{val:.2f}"
            out.append(f'<td class="mw-num" data-v="{val}">{cell}</td>')
            continue
        text = esc(val, 80) if val not in (None, "") else ""
        sortv = esc(val, 200) if val is not None else ""
        if key == "id":
            cell = f'<a href="#conn-{esc(r.get("n"))}">{text}</a>' if link else text
            tip = f"{r.get('client')} \u2192 {r.get('server')}"
            out.append(f'<td class="mw-num" data-v="{esc(val)}" title="{esc(tip)}">{cell}</td>')
        elif key == "server_short":
            tip = esc(r.get("server_version"), 200)
            out.append(f'<td data-v="{sortv}" title="{tip}">{text}</td>')
        elif key == "outcome" and val:
            err = f" {esc(r['error'])}" if r.get("error") else ""
            badge = _badge(outcome_label(str(val)), "mw-" + str(esc(val)))
            out.append(f'<td data-v="{sortv}" class="mw-nowrap">{badge}{err}</td>')
        elif key == "verdict" and val:
            out.append(f'<td data-v="{sortv}">{_badge(str(val), "mw-v-" + str(esc(val)))}</td>')
        elif key in ("capture", "plugins", "finding"):
            out.append(f'<td data-v="{sortv}">{text.replace("_", "_<wbr>")}</td>')
        else:
            out.append(f'<td data-v="{sortv}">{text}</td>')
    out.append("</tr>")
    return "".join(out)


def summary_table_html(
    rows: list[dict], *, table_id: str | None = None, links: bool = False
) -> str:
    """The summary table; each ``<tr>`` carries ``data-*`` attributes for the report's filters."""
    cols = summary_columns(rows)
    body = "".join(summary_row_html(r, cols, link=links) for r in rows)
    return summary_head_html(cols, table_id=table_id) + body + SUMMARY_FOOT


CAPTURE_HTML_ROWS = 200
"""Rows of a capture's notebook table (a bigger capture says how many more)."""


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
    shown = conns[:CAPTURE_HTML_ROWS]
    body = summary_table_html([summary_row(c) for c in shown]) if conns else ""
    hint = (
        '<div class="mw-dim">capture.connections[i] shows the ladder diagram of one connection</div>'
        if conns
        else ""
    )
    if len(conns) > len(shown):
        hint = (
            f'<div class="mw-dim">the first {len(shown)} of {len(conns)} connections: '
            "capture.to_dataframe() has them all, <code>mysqlwire report</code> pages them</div>"
        ) + hint
    style = f"<style>{CSS}</style>" if css else ""
    return f'{style}<div class="mw"><div>{head}</div>{body}{hint}</div>'
