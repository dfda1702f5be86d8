"""The self-contained HTML report (``mysqlwire report``).

One file, inline CSS and JavaScript, nothing fetched from the network (a
Content-Security-Policy forbids it, and only the report's own script -- pinned
by its SHA-256 -- may run, so even a wire string that escaped escaping could
not execute).  It holds:

* a summary table, one row per connection, sortable by clicking a header and
  filterable by outcome, final plugin, replay verdict and user (the URL query
  presets them: ``report.html?outcome=error&user=app&sort=latency_ms&desc=1``),
  shown a page at a time (:data:`PAGE_ROWS` rows) so 100,000 connections stay
  usable;
* per connection: the ladder diagram of the connection phase, the replay
  verdict and the diagnosis (:mod:`mysqlwire.views` draws them), collapsed and
  opened on demand: each one sits in an inert ``<template>`` that the script
  copies into the page when its row or heading is clicked (all are opened at
  load when there are at most :data:`OPEN_AT_LOAD`).

Scale: HTML and memory are bounded per connection.  A table row is ~0.5 KB;
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
    summary_row_html,
)

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
.mw-open{background:none;border:0;padding:0;color:#1e3a8a;text-align:left;font-weight:600}
.mw-open::before{content:"\\25B8  ";color:#64748b}
.mw-open[aria-expanded=true]::before{content:"\\25BE  "}
footer{margin-top:24px;color:#94a3b8;font-size:12px}
"""

# Plain ES5, no innerHTML: wire strings are only ever compared, never inserted;
# ladders are copied from inert <template> elements (importNode), never parsed
# from strings.
REPORT_SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("mw-summary");
  var rows = table ? Array.prototype.slice.call(table.tBodies[0].rows) : [];
  var fOutcome = document.getElementById("f-outcome");
  var fPlugin = document.getElementById("f-plugin");
  var fVerdict = document.getElementById("f-verdict");
  var fUser = document.getElementById("f-user");
  var count = document.getElementById("mw-count");
  var pager = document.getElementById("mw-pager");
  var pageInfo = document.getElementById("mw-page");
  var pageSize = Number(pager ? pager.getAttribute("data-size") : 0) || 200;
  var page = 0;
  var matching = rows;
  var shown = rows.filter(function (r) { return !r.hidden; });
  var sections = {};
  Array.prototype.forEach.call(document.querySelectorAll("section.mw-sec"), function (s) {
    sections[s.id.slice(5)] = s;
  });

  function expanded(sec, value) {
    var b = sec.querySelector(".mw-open");
    if (b) { b.setAttribute("aria-expanded", value); }
  }

  function open(n, scroll) {
    var sec = sections[n];
    if (!sec) { return; }
    var tpl = sec.querySelector("template");
    var slot = sec.querySelector(".mw-slot");
    if (tpl && slot && !slot.firstChild) {
      slot.appendChild(document.importNode(tpl.content, true));
    }
    if (slot) { slot.hidden = false; }
    expanded(sec, "true");
    if (scroll) { sec.hidden = false; sec.scrollIntoView(); }
  }

  function toggle(n) {
    var sec = sections[n];
    var slot = sec ? sec.querySelector(".mw-slot") : null;
    if (slot && slot.firstChild && !slot.hidden) {
      slot.hidden = true;
      expanded(sec, "false");
    } else {
      open(n, false);
    }
  }

  function showPage() {
    var pages = Math.max(1, Math.ceil(matching.length / pageSize));
    if (page >= pages) { page = pages - 1; }
    if (page < 0) { page = 0; }
    shown.forEach(function (r) { r.hidden = true; });
    shown = matching.slice(page * pageSize, (page + 1) * pageSize);
    shown.forEach(function (r) { r.hidden = false; });
    if (pageInfo) {
      pageInfo.textContent = "page " + (page + 1) + " of " + pages +
        " (" + pageSize + " rows a page)";
    }
    if (pager) { pager.hidden = matching.length <= pageSize; }
  }

  function apply() {
    var o = fOutcome.value, p = fPlugin.value, v = fVerdict.value;
    var u = fUser.value.toLowerCase();
    matching = [];
    rows.forEach(function (r) {
      var ok = (!o || r.getAttribute("data-outcome") === o) &&
               (!p || r.getAttribute("data-plugin") === p) &&
               (!v || r.getAttribute("data-verdict") === v) &&
               (!u || r.getAttribute("data-user").toLowerCase().indexOf(u) >= 0);
      var sec = sections[r.getAttribute("data-n")];
      if (sec) { sec.hidden = !ok; }
      if (ok) { matching.push(r); }
    });
    count.textContent = matching.length + " of " + rows.length + " connection(s) shown";
    page = 0;
    showPage();
  }

  function sortBy(th) {
    var col = Number(th.getAttribute("data-col"));
    var num = th.hasAttribute("data-num");
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var keyed = rows.map(function (r, i) {
      var v = r.cells[col] ? r.cells[col].getAttribute("data-v") : "";
      return {r: r, i: i, v: v === null ? "" : v};
    });
    keyed.sort(function (a, b) {
      if (a.v === "" && b.v !== "") { return 1; }
      if (b.v === "" && a.v !== "") { return -1; }
      var c;
      if (num) { c = parseFloat(a.v) - parseFloat(b.v); }
      else { c = a.v < b.v ? -1 : (a.v > b.v ? 1 : 0); }
      return c !== 0 ? c * dir : a.i - b.i;
    });
    var body = table.tBodies[0];
    var frag = document.createDocumentFragment();
    keyed.forEach(function (k) { frag.appendChild(k.r); });
    body.appendChild(frag);
    rows = keyed.map(function (k) { return k.r; });
    var keep = {};
    matching.forEach(function (r) { keep[r.getAttribute("data-n")] = true; });
    matching = rows.filter(function (r) { return keep[r.getAttribute("data-n")]; });
    showPage();
  }

  if (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () { sortBy(th); });
    });
  }
  [fOutcome, fPlugin, fVerdict].forEach(function (s) { s.addEventListener("change", apply); });
  fUser.addEventListener("input", apply);
  document.addEventListener("click", function (ev) {
    var t = ev.target;
    while (t && t !== document && !(t.getAttribute && (t.getAttribute("data-open") ||
           (t.tagName === "A" && (t.getAttribute("href") || "").indexOf("#conn-") === 0)))) {
      t = t.parentNode;
    }
    if (!t || t === document) { return; }
    if (t.tagName === "A") {
      open(t.getAttribute("href").slice(6), true);
      ev.preventDefault();
    } else {
      ev.preventDefault();
      toggle(t.getAttribute("data-open"));
    }
  });
  var prev = document.getElementById("mw-prev"), next = document.getElementById("mw-next");
  if (prev) { prev.addEventListener("click", function () { page -= 1; showPage(); }); }
  if (next) { next.addEventListener("click", function () { page += 1; showPage(); }); }
  var openAll = document.getElementById("mw-open-all");
  if (openAll) {
    openAll.addEventListener("click", function () {
      Object.keys(sections).forEach(function (n) {
        if (!sections[n].hidden) { open(n, false); }
      });
    });
  }

  // Shareable views: report.html?outcome=error&plugin=...&verdict=...&user=...&sort=<column>&desc=1
  var q = new URLSearchParams(window.location.search);
  function preset(el, key) {
    var v = q.get(key);
    if (v === null) { return; }
    if (el.tagName === "SELECT" && !Array.prototype.some.call(el.options, function (o) {
      return o.value === v;
    })) { return; }
    el.value = v;
  }
  preset(fOutcome, "outcome"); preset(fPlugin, "plugin");
  preset(fVerdict, "verdict"); preset(fUser, "user");
  apply();
  if (table && q.get("sort")) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      if (th.getAttribute("data-key") === q.get("sort")) {
        sortBy(th);
        if (q.get("desc") === "1") { sortBy(th); }
      }
    });
  }
  var ladders = Object.keys(sections);
  if (ladders.length <= Number(document.body.getAttribute("data-open-at-load") || 0)) {
    ladders.forEach(function (n) { open(n, false); });
  }
  if (window.location.hash.indexOf("#conn-") === 0) { open(window.location.hash.slice(6), true); }
  document.documentElement.setAttribute("data-ready", "1");
}());
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


class StoredRows:
    """Summary rows kept as compact UTF-8 HTML (every column rendered), cut
    down to the used columns when the page is written.  They are spilled to
    an anonymous temporary file (length-prefixed, deleted when closed), so
    the memory they take stays constant however many connections the report
    has (~0.8 KB a row goes to disk, not to the heap)."""

    def __init__(self) -> None:
        import tempfile

        self._file = tempfile.TemporaryFile(prefix="mysqlwire-rows-")
        self._n = 0

    def add(self, row: dict, *, link: bool, hidden: bool) -> None:
        b = summary_row_html(row, SUMMARY_COLUMNS, link=link, hidden=hidden).encode("utf-8")
        self._file.write(len(b).to_bytes(4, "little") + b)
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def close(self) -> None:
        self._file.close()

    def _stored(self):
        f = self._file
        f.flush()
        f.seek(0)
        for _ in range(self._n):
            size = int.from_bytes(f.read(4), "little")
            yield f.read(size).decode("utf-8")
        f.seek(0, 2)  # further rows are appended

    def html(self, cols: list[tuple[str, str]]):
        """Each row's ``<tr>`` with only ``cols`` (escaped text never holds
        ``<``, so cells are split at their closing tags)."""
        keep = [i for i, c in enumerate(SUMMARY_COLUMNS) if c in cols]
        everything = len(keep) == len(SUMMARY_COLUMNS)
        for s in self._stored():
            if everything:
                yield s
                continue
            start = s.index("<td")
            cells = s[start : -len("</tr>")].split("</td>")
            yield s[:start] + "".join(cells[i] + "</td>" for i in keep) + "</tr>"


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

    def rows(cols):
        for i, c in enumerate(conns):
            yield summary_row_html(
                report_row(c, i + 1, several), cols, link=i in drawn, hidden=i >= PAGE_ROWS
            )

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
    """The page from a :class:`ReportTally`, ``rows(cols)`` (the summary rows'
    HTML, in order) and ``drawn_conns`` ((row number, connection) of the
    ``n_drawn`` connections that get a ladder, in order)."""
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
        '<div class="mw-filters" id="mw-filters">'
        f'<label>outcome<select id="f-outcome">{_options(outcomes, "outcomes")}</select></label>'
        f'<label>plugin<select id="f-plugin">{_options(tally.plugins, "plugins")}</select></label>'
        f'<label>replay<select id="f-verdict">{_options(verdicts, "verdicts")}</select></label>'
        '<label>user<input id="f-user" type="search" placeholder="part of a user name" size="18"></label>'
        f'<span id="mw-count">{n_conns} connection(s)</span></div>'
    )
    p.append(
        f'<div class="mw-pager" id="mw-pager" data-size="{PAGE_ROWS}"'
        f"{'' if n_conns > PAGE_ROWS else ' hidden'}>"
        '<button type="button" id="mw-prev">\u2190 previous</button>'
        f'<span id="mw-page">page 1 of {max(1, -(-n_conns // PAGE_ROWS))}</span>'
        '<button type="button" id="mw-next">next \u2192</button></div>'
    )
    yield "\n".join(p)
    if n_conns:
        cols = tally.columns()
        yield summary_head_html(cols, table_id="mw-summary")
        chunk: list[str] = []
        for html in rows(cols):
            chunk.append(html)
            if len(chunk) >= 500:
                yield "".join(chunk)
                chunk = []
        chunk.append(SUMMARY_FOOT)
        yield "".join(chunk)
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
