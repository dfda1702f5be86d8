"""The self-contained HTML report (``mysqlwire report``).

One file, inline CSS and JavaScript, nothing fetched from the network (a
Content-Security-Policy forbids it, and only the report's own script -- pinned
by its SHA-256 -- may run, so even a wire string that escaped escaping could
not execute).  It holds:

* a summary table, one row per connection, sortable by clicking a header and
  filterable by outcome, final plugin, replay verdict and user (the URL query
  presets them: ``report.html?outcome=error&user=app&sort=latency_ms&desc=1``);
* per connection: the ladder diagram of the connection phase, the replay
  verdict and the diagnosis (:mod:`mysqlwire.notebook` draws them).

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

from .model import Connection
from .views.escape import esc
from .views.html import CSS, connection_html, summary_row, summary_table_html

__all__ = ["build_report", "REPORT_SCRIPT"]

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
footer{margin-top:24px;color:#94a3b8;font-size:12px}
"""

# Plain ES5, no innerHTML: wire strings are only ever compared, never inserted.
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

  function apply() {
    var o = fOutcome.value, p = fPlugin.value, v = fVerdict.value;
    var u = fUser.value.toLowerCase();
    var shown = 0;
    rows.forEach(function (r) {
      var ok = (!o || r.getAttribute("data-outcome") === o) &&
               (!p || r.getAttribute("data-plugin") === p) &&
               (!v || r.getAttribute("data-verdict") === v) &&
               (!u || r.getAttribute("data-user").toLowerCase().indexOf(u) >= 0);
      r.hidden = !ok;
      var sec = document.getElementById("conn-" + r.getAttribute("data-n"));
      if (sec) { sec.hidden = !ok; }
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " connection(s) shown";
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
    keyed.forEach(function (k) { body.appendChild(k.r); });
    rows = keyed.map(function (k) { return k.r; });
  }

  if (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () { sortBy(th); });
    });
  }
  [fOutcome, fPlugin, fVerdict].forEach(function (s) { s.addEventListener("change", apply); });
  fUser.addEventListener("input", apply);

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
  if (table && q.get("sort")) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      if (th.getAttribute("data-key") === q.get("sort")) {
        sortBy(th);
        if (q.get("desc") === "1") { sortBy(th); }
      }
    });
  }
  apply();
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


def build_report(
    conns: list[Connection],
    *,
    title: str = "mysqlwire report",
    summaries: list | None = None,
    secrets_given: bool = False,
    generated: _dt.datetime | None = None,
) -> str:
    """The whole report as one HTML document (str)."""
    generated = generated or _dt.datetime.now(_dt.timezone.utc)
    rows = [summary_row(c, n) for n, c in enumerate(conns, 1)]
    outcomes = Counter(r["outcome"] for r in rows)
    failed = sum(1 for c in conns if c.failed)
    verdicts = Counter(r["verdict"] for r in rows if r["verdict"])
    findings = Counter(d["severity"] for c in conns for d in (c.extra.get("diagnosis") or []))

    p: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        f"style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{_script_hash(REPORT_SCRIPT)}'\">",
        '<meta name="generator" content="mysqlwire">',
        f"<title>{esc(title, 200)}</title>",
        f"<style>{CSS}{_PAGE_CSS}</style>",
        "</head><body>",
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
    p.append(_stat(len(rows), "connection(s)"))
    p.append(_stat(outcomes.get("ok", 0), "ok", "#15803d"))
    p.append(_stat(outcomes.get("error", 0), "error", "#dc2626"))
    p.append(_stat(outcomes.get("incomplete", 0), "incomplete", "#ca8a04"))
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
        f'<label>outcome<select id="f-outcome">{_options((r["outcome"] for r in rows), "outcomes")}</select></label>'
        f'<label>plugin<select id="f-plugin">{_options((r["final_plugin"] for r in rows), "plugins")}</select></label>'
        f'<label>replay<select id="f-verdict">{_options((r["verdict"] for r in rows), "verdicts")}</select></label>'
        '<label>user<input id="f-user" type="search" placeholder="part of a user name" size="18"></label>'
        f'<span id="mw-count">{len(rows)} connection(s)</span></div>'
    )
    if rows:
        p.append(summary_table_html(rows, table_id="mw-summary", links=True))
    else:
        p.append('<p class="mw-dim">no MySQL connection found in the capture(s)</p>')
    p.append("<h2>Ladder diagrams</h2>")
    p.append(
        '<div class="mw-legend">'
        '<span><i style="background:#2563eb"></i>client \u2192 server</span>'
        '<span><i style="background:#475569"></i>server \u2192 client</span>'
        '<span><i style="background:#15803d"></i>OK / fast auth</span>'
        '<span><i style="background:#dc2626"></i>failure / proof mismatch</span>'
        '<span><i style="background:#ede9fe;height:10px"></i>inside TLS</span>'
        '<span><i style="background:#94a3b8"></i>command phase</span></div>'
    )
    for n, c in enumerate(conns, 1):
        cap = os.path.basename(c.capture) if c.capture else ""
        title_html = (
            f"#{esc(c.id)} {esc(c.client)} \u2192 {esc(c.server)}"
            f" <span class=mw-dim>{esc(cap)}</span>"
        )
        p.append(
            f'<section class="mw-sec" id="conn-{n}">'
            f"{connection_html(c, css=False, title=title_html)}</section>"
        )
    p.append(
        "<footer>mysqlwire report \u00b7 self-contained: no network access is needed to view it"
        "</footer></main>"
    )
    p.append(f"<script>{REPORT_SCRIPT}</script></body></html>")
    return "\n".join(p)


def write_report(path, html_text: str) -> None:
    """Write atomically-ish: to a temporary name, then rename."""
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(html_text)
    os.replace(tmp, path)
