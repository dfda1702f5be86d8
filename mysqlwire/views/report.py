"""The self-contained HTML report (``mysqlwire report``).

One file, inline CSS and JavaScript, nothing fetched from the network (a
Content-Security-Policy forbids it, and only the report's own script -- pinned
by its SHA-256 -- may run, so even a wire string that escaped escaping could
not execute).  It holds:

* a summary table, one row per connection, sortable by clicking a header and
  filterable by outcome, final plugin, replay verdict and user (the URL query
  presets them: ``report.html?outcome=error&user=app&sort=latency_ms&desc=1
  &page=2``), shown a page at a time (:data:`PAGE_ROWS` rows, first/previous/
  next/last, "rows a-b of N"): every row is one JSON array in an inert
  ``<script type="application/json">`` block (:mod:`.report_rows`) and the
  script builds only the page shown, so 100,000 connections stay usable;
  sorting and filtering work over every row, and ``#conn-<n>`` shows the page
  holding row n.  Without JavaScript the first page is there as plain HTML,
  with a note saying what needs the script;
* per connection: the ladder diagram of the connection phase, the replay
  verdict and the diagnosis (:mod:`mysqlwire.views` draws them), collapsed and
  opened on demand: each one sits in an inert ``<template>`` that the script
  copies into the page when its row or heading is clicked (all are opened at
  load when there are at most :data:`OPEN_AT_LOAD`).

Scale: HTML and memory are bounded per connection.  A row is ~0.2 KB of JSON;
a ladder is at most ``views.ladder.MAX_ROWS`` rows (~10 KB).  Past
:data:`LADDERS_ALL` connections only connections with a problem (failed login,
proof mismatch, error/warning finding) get a ladder, at most
:data:`LADDERS_MAX`; ``--ladders all`` overrides it.  The page is written as
it is generated, never held whole in memory.  Measured figures: docs/limits.md.

When the script has run it sets ``data-ready="1"`` on ``<html>`` (the browser
test checks it).  Secrets never appear: client auth bytes are shown as their
length and meaning only, as in every other output.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import os
from collections import Counter
from collections.abc import Iterable

from ..model import Connection
from .escape import esc
from .html import (
    CSS,
    SUMMARY_COLUMNS,
    SUMMARY_FOOT,
    connection_html,
    outcome_label,
    summary_head_html,
    summary_row,
)
from .report_rows import StoredRows, rows_block_head
from .report_script import REPORT_SCRIPT

__all__ = [
    "build_report",
    "iter_report",
    "iter_page",
    "ReportTally",
    "StoredRows",
    "report_row",
    "write_report",
    "choose_ladders",
    "REPORT_SCRIPT",
    "PAGE_ROWS",
    "LADDERS_ALL",
    "LADDERS_MAX",
]

PAGE_ROWS = 200  # summary rows shown at a time
OPEN_AT_LOAD = 20  # ladders opened when the page loads if there are at most this many
LADDERS_ALL = 1000  # up to this many connections, every one gets a ladder
LADDERS_MAX = 1000  # past it, at most this many ladders (connections with a problem first)
BAD_VERDICTS = frozenset({"PROOF_MISMATCH", "EMPTY_PASSWORD_SENT", "NONCE_MISUSE"})

_PAGE_CSS = """
html{background:#f8fafc}
body{margin:0;padding:18px 22px;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1e293b}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:22px 0 8px}
.mw-meta{color:#64748b;font-size:12.5px;margin-bottom:10px}
.mw-meta li{margin:1px 0}
.mw-stats{display:flex;gap:10px;flex-wrap:wrap;margin:8px 0 12px}
.mw-stat{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:6px 12px;font-size:13px}
.mw-stat b{font-size:17px;margin-right:4px}
.mw-filters{display:flex;gap:14px;flex-wrap:wrap;align-items:center;background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px 12px;margin-bottom:8px;font-size:13px}
.mw-filters label{color:#475569}
.mw-filters select,.mw-filters input{margin-left:5px;font:inherit;padding:2px 4px}
#mw-count{color:#64748b;margin-left:auto}
.mw-nojs{background:#fefce8;border:1px solid #fde68a;border-radius:6px;padding:6px 12px;font-size:13px}
table.mw-sum{background:#fff}
table.mw-sum th{cursor:pointer;user-select:none}
table.mw-sum th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
table.mw-sum th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
section.mw-sec{margin-top:6px}
section.mw-sec h3{font-size:14px;margin:16px 0 0}
.mw-legend{font-size:12px;color:#475569;margin:6px 0}
.mw-legend span{display:inline-block;margin-right:14px}
.mw-legend i{display:inline-block;width:22px;height:3px;vertical-align:middle;margin-right:4px}
[hidden]{display:none!important}
.mw-pager{display:flex;gap:10px;align-items:center;margin:8px 0;font-size:13px;color:#475569}
.mw-pager button,.mw-open{font:inherit;padding:2px 10px;cursor:pointer}
.mw-pager select{margin-left:5px;font:inherit}
.mw-open{background:none;border:0;padding:0;color:#1e3a8a;text-align:left;font-weight:600}
.mw-open::before{content:"\\25B8  ";color:#64748b}
.mw-open[aria-expanded=true]::before{content:"\\25BE  "}
footer{margin-top:24px;color:#94a3b8;font-size:12px}
"""


def _script_hash(script: str) -> str:
    return base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def _options(values: Iterable[str | None], label: str) -> str:
    opts = [f'<option value="">all {esc(label)}</option>']
    for v in sorted({v for v in values if v}):
        opts.append(f'<option value="{esc(v)}">{esc(v, 60)}</option>')
    return "".join(opts)


def _stat(n: int, text: str, color: str = "") -> str:
    style = f' style="color:{color}"' if color else ""
    return f'<div class="mw-stat"><b{style}>{n}</b>{esc(text)}</div>'


def has_problem(conn: Connection) -> bool:
    """A failed login, a bad replay verdict, or an error/warning finding."""
    v = (conn.extra.get("verdict") or {}).get("verdict")
    return bool(
        conn.failed
        or v in BAD_VERDICTS
        or any(d.get("severity") in ("error", "warning") for d in conn.extra.get("diagnosis") or [])
    )


def choose_ladders(conns: list[Connection], mode: str = "auto") -> set[int]:
    """Positions (in ``conns``) of the connections that get a ladder.

    ``all``: every one; ``none``: none; ``problems``: those with a problem, at
    most :data:`LADDERS_MAX`; ``auto``: every one up to :data:`LADDERS_ALL`
    connections, else ``problems``."""
    if mode == "none":
        return set()
    if mode == "all" or (mode == "auto" and len(conns) <= LADDERS_ALL):
        return set(range(len(conns)))
    chosen = [i for i, c in enumerate(conns) if has_problem(c)]
    return set(chosen[:LADDERS_MAX])


def build_report(conns: list[Connection], **kwargs) -> str:
    """The whole report as one HTML document (str); see :func:`iter_report`."""
    return "".join(iter_report(conns, **kwargs))


class ReportTally:
    """What the head of the page needs (counts, filter choices, used table
    columns), gathered one connection at a time: the page can then be written
    without holding every connection (see :func:`iter_page`)."""

    def __init__(self) -> None:
        self.n = 0
        self.outcomes: Counter = Counter()
        self.verdicts: Counter = Counter()
        self.findings: Counter = Counter()
        self.plugins: set = set()
        self.failed = 0
        self.used: set[str] = set()

    def add(self, c: Connection, row: dict) -> None:
        """Count a diagnosed connection; ``row`` is its summary row."""
        self.n += 1
        self.outcomes[c.outcome] += 1
        self.failed += c.failed
        v = (c.extra.get("verdict") or {}).get("verdict")
        if v:
            self.verdicts[v] += 1
        for d in c.extra.get("diagnosis") or []:
            self.findings[d["severity"]] += 1
        if c.final_plugin:
            self.plugins.add(c.final_plugin)
        self.used.update(k for k, _ in SUMMARY_COLUMNS if row.get(k) not in (None, ""))

    def columns(self) -> list[tuple[str, str]]:
        return [c for c in SUMMARY_COLUMNS if c[0] in self.used]


def iter_report(
    conns: list[Connection],
    *,
    title: str = "mysqlwire report",
    summaries: list | None = None,
    secrets_given: bool = False,
    generated: _dt.datetime | None = None,
    ladders: str = "auto",
):
    """The report as pieces of HTML, in order (write them as they come)."""
    several = len({c.capture for c in conns}) > 1
    tally = ReportTally()
    for n, c in enumerate(conns, 1):
        tally.add(c, report_row(c, n, several))
    drawn = choose_ladders(conns, ladders)
    rows = StoredRows(first=PAGE_ROWS)
    for i, c in enumerate(conns):
        rows.add(report_row(c, i + 1, several), link=i in drawn)
    try:
        yield from iter_page(
            tally,
            rows,
            ((i + 1, c) for i, c in enumerate(conns) if i in drawn),
            n_drawn=len(drawn),
            several=several,
            title=title,
            summaries=summaries,
            secrets_given=secrets_given,
            generated=generated,
            ladders=ladders,
        )
    finally:
        rows.close()


def iter_page(
    tally: ReportTally,
    rows,
    drawn_conns,
    *,
    n_drawn: int,
    several: bool,
    title: str = "mysqlwire report",
    summaries: list | None = None,
    secrets_given: bool = False,
    generated: _dt.datetime | None = None,
    ladders: str = "auto",
):
    """The page from a :class:`ReportTally`, ``rows`` (a
    :class:`~mysqlwire.views.report_rows.StoredRows`: every summary row, in
    order) and ``drawn_conns`` ((row number, connection) of the ``n_drawn``
    connections that get a ladder, in order).

    The table's body holds the first :data:`PAGE_ROWS` rows as HTML (what a
    browser without JavaScript shows, with a ``<noscript>`` note saying so);
    every row is in the inert JSON block ``#mw-rows`` after the table, from
    which the script draws the page asked for."""
    generated = generated or _dt.datetime.now(_dt.timezone.utc)
    n_conns = tally.n
    outcomes, verdicts, findings = tally.outcomes, tally.verdicts, tally.findings
    failed = tally.failed

    p: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        f"style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{_script_hash(REPORT_SCRIPT)}'\">",
        '<meta name="generator" content="mysqlwire">',
        f"<title>{esc(title, 200)}</title>",
        f"<style>{CSS}{_PAGE_CSS}</style>",
        f'</head><body data-open-at-load="{OPEN_AT_LOAD}">',
        '<main class="mw">',
        f"<h1>{esc(title, 200)}</h1>",
        '<ul class="mw-meta">',
        f"<li>generated {esc(generated.strftime('%Y-%m-%d %H:%M:%S UTC'))} by mysqlwire</li>",
    ]
    caps = []
    for s in summaries or []:
        line = (
            f"{esc(os.path.basename(str(s.path)))}: {s.connections} connection(s), "
            f"{s.frames} frame(s)"
        )
        if getattr(s, "truncated", False):
            line += f' <span class="mw-anom">truncated: {esc(s.error, 200)}</span>'
        caps.append(f"<li>{line}</li>")
    if len(caps) > 4:
        p.append(
            f"<li><details><summary>{len(caps)} captures</summary><ul>{''.join(caps)}</ul>"
            "</details></li>"
        )
    else:
        p.extend(caps)
    p.append(
        "<li>replay "
        + (
            "with the given passwords/hashes (never shown)"
            if secrets_given
            else "without a password: give --password-file/--secrets/--candidates to verify proofs"
        )
        + "; client auth bytes are redacted</li></ul>"
    )
    p.append('<div class="mw-stats">')
    p.append(_stat(n_conns, "connection(s)"))
    p.append(_stat(outcomes.get("ok", 0), "ok", "#15803d"))
    p.append(_stat(outcomes.get("error", 0), "error", "#dc2626"))
    p.append(_stat(outcomes.get("incomplete", 0), "incomplete", "#ca8a04"))
    for other in sorted(set(outcomes) - {"ok", "error", "incomplete"}):
        p.append(_stat(outcomes[other], outcome_label(other)))
    p.append(_stat(failed, "failed login(s)", "#dc2626"))
    for v, n in sorted(verdicts.items()):
        p.append(_stat(n, v))
    for sev in ("error", "warning", "security", "info"):
        if findings.get(sev):
            p.append(_stat(findings[sev], f"{sev} finding(s)"))
    p.append("</div>")

    p.append("<h2>Connections</h2>")
    p.append(
        # shown by the script: without JavaScript the filters would do nothing
        '<div class="mw-filters" id="mw-filters" hidden>'
        f'<label>outcome<select id="f-outcome">{_options(outcomes, "outcomes")}</select></label>'
        f'<label>plugin<select id="f-plugin">{_options(tally.plugins, "plugins")}</select></label>'
        f'<label>replay<select id="f-verdict">{_options(verdicts, "verdicts")}</select></label>'
        '<label>user<input id="f-user" type="search" placeholder="part of a user name" size="18"></label>'
        f'<span id="mw-count">{n_conns} connection(s)</span></div>'
    )
    sizes = "".join(
        f'<option value="{n}"{" selected" if n == PAGE_ROWS else ""}>{n}</option>'
        for n in sorted({50, 200, 1000, PAGE_ROWS})
    )
    # shown by the script when there is more than a page (buttons need it)
    p.append(
        f'<div class="mw-pager" id="mw-pager" data-size="{PAGE_ROWS}" hidden>'
        '<button type="button" id="mw-first">\u00ab first</button>'
        '<button type="button" id="mw-prev">\u2190 previous</button>'
        f'<span id="mw-page">rows 1\u2013{min(n_conns, PAGE_ROWS)} of {n_conns}</span>'
        '<button type="button" id="mw-next">next \u2192</button>'
        '<button type="button" id="mw-last">last \u00bb</button>'
        f'<label>rows a page<select id="mw-size">{sizes}</select></label></div>'
    )
    if n_conns > PAGE_ROWS:
        shown = f"the table shows the first {PAGE_ROWS} of {n_conns} connections (capture order); "
        rest = "the other pages, sorting, the filters"
    else:
        shown, rest = "", "sorting, the filters"
    p.append(
        f'<noscript><p class="mw-nojs">JavaScript is off: {shown}{rest} and the ladder '
        "diagrams need the page's own inline script (it fetches nothing).</p></noscript>"
    )
    yield "\n".join(p)
    if n_conns:
        cols = tally.columns()
        yield summary_head_html(cols, table_id="mw-summary")
        yield "".join(rows.first_html(cols)) + SUMMARY_FOOT
        # every row, read by the script; inert (never executed: not JavaScript)
        yield f'\n<script type="application/json" id="mw-rows">{rows_block_head()}'
        yield from rows.json_chunks()
        yield f"{rows.block_foot()}</script>"
    else:
        yield '<p class="mw-dim">no MySQL connection found in the capture(s)</p>'
    p = ["<h2>Ladder diagrams</h2>"]
    if n_drawn < n_conns:
        p.append(
            f'<p class="mw-dim">ladders for {n_drawn} of {n_conns} connections '
            + (
                "(--ladders none)"
                if ladders == "none"
                else f"(those with a problem, at most {LADDERS_MAX}; give --ladders all, "
                "or select with --failed/--user)"
            )
            + "</p>"
        )
    if n_drawn:
        p.append(
            '<p class="mw-dim">click a connection (or its number in the table) to open its '
            'ladder; <button type="button" id="mw-open-all">open all shown</button></p>'
        )
    p.append(
        '<div class="mw-legend">'
        '<span><i style="background:#2563eb"></i>client \u2192 server</span>'
        '<span><i style="background:#475569"></i>server \u2192 client</span>'
        '<span><i style="background:#15803d"></i>OK / fast auth</span>'
        '<span><i style="background:#dc2626"></i>failure / proof mismatch</span>'
        '<span><i style="background:#ede9fe;height:10px"></i>inside TLS</span>'
        '<span><i style="background:#94a3b8"></i>command phase</span></div>'
    )
    yield "\n".join(p)
    for n, c in drawn_conns:
        cap = os.path.basename(c.capture) if c.capture else ""
        where = f" <span class=mw-dim>{esc(cap)}</span>" if several else ""
        head = (
            f"#{esc(c.id)} {esc(c.client)} \u2192 {esc(c.server)}"
            f" \u00b7 {esc(c.user, 40) if c.user is not None else 'no user'}"
            f" \u00b7 {esc(c.outcome)}{where}"
        )
        title_html = f"#{esc(c.id)} {esc(c.client)} \u2192 {esc(c.server)}{where}"
        yield (
            f'<section class="mw-sec" id="conn-{n}"><h3><button type="button" class="mw-open" '
            f'data-open="{n}" aria-expanded="false">{head}</button></h3>'
            f"<template>{connection_html(c, css=False, title=title_html)}</template>"
            '<div class="mw-slot"></div></section>'
        )
    yield (
        "\n<footer>mysqlwire report \u00b7 self-contained: no network access is needed to view it"
        f"</footer></main>\n<script>{REPORT_SCRIPT}</script></body></html>"
    )


def report_row(conn: Connection, n: int, several: bool) -> dict:
    """The summary row of the ``n``-th connection (no capture column unless
    the report holds several captures)."""
    row = summary_row(conn, n)
    if not several:
        row["capture"] = None
    return row


def write_report(path, html, *, inputs=()) -> None:
    """Write the page through :mod:`mysqlwire.outputs` (checked path, never an
    input; temporary file renamed into place; ``-`` is stdout).  ``html`` is
    the page (str) or its pieces (an iterable of str), written as they come."""
    from ..outputs import Output, check_output, open_output

    out = (
        path
        if isinstance(path, Output)
        else check_output(path, what="report", inputs=inputs, allow_stdout=True)
    )
    with open_output(out, text=True) as f:
        if isinstance(html, str):
            f.write(html)
        else:
            for piece in html:
                f.write(piece)
