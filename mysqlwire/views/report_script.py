"""The report page's script (:mod:`mysqlwire.views.report`), pinned in the
page's Content-Security-Policy by its SHA-256.

Plain ES5, no ``innerHTML``: the summary rows come from the inert JSON data
block (:mod:`mysqlwire.views.report_rows`) and are built element by element
with ``textContent``, so a wire string is only ever text; ladders are copied
from inert ``<template>`` elements (``importNode``), never parsed from
strings.  The table shows one page of rows at a time; sorting and the
filters work over every row.  Query presets: ``?outcome=error&plugin=...
&verdict=...&user=...&sort=<column>&desc=1&size=<rows a page>&page=<n or
last>``; ``#conn-<n>`` shows the page holding that row and opens its ladder.
"""

__all__ = ["REPORT_SCRIPT"]

REPORT_SCRIPT = r"""
(function () {
  "use strict";
  var table = document.getElementById("mw-summary");
  var body = table ? table.tBodies[0] : null;
  var block = document.getElementById("mw-rows");
  var data = block && block.getAttribute("type") === "application/json" ?
    JSON.parse(block.textContent) : {fields: [], labels: {}, rows: []};
  var F = {};
  data.fields.forEach(function (k, i) { F[k] = i; });
  var labels = data.labels || {};
  var all = data.rows;
  // values shared between rows: a row holds their index in data.strings
  Object.keys(data.strings || {}).forEach(function (k) {
    var f = F[k], table = data.strings[k];
    all.forEach(function (r) {
      if (typeof r[f] === "number") { r[f] = table[r[f]]; }
    });
  });
  var keys = table ? Array.prototype.map.call(table.tHead.rows[0].cells, function (th) {
    return th.getAttribute("data-key");
  }) : [];
  var fOutcome = document.getElementById("f-outcome");
  var fPlugin = document.getElementById("f-plugin");
  var fVerdict = document.getElementById("f-verdict");
  var fUser = document.getElementById("f-user");
  var filters = document.getElementById("mw-filters");
  if (filters) { filters.hidden = false; }
  var count = document.getElementById("mw-count");
  var pager = document.getElementById("mw-pager");
  var pageInfo = document.getElementById("mw-page");
  var fSize = document.getElementById("mw-size");
  var firstSize = Number(pager ? pager.getAttribute("data-size") : 0) || 200;
  var pageSize = firstSize;
  var page = 0;
  var order = all.map(function (r, i) { return i; });  // row indexes, sorted
  var ok = all.map(function () { return true; });      // row index -> matches the filters
  var matching = order;
  var sections = {};
  Array.prototype.forEach.call(document.querySelectorAll("section.mw-sec"), function (s) {
    sections[s.id.slice(5)] = s;
  });

  function str(v) { return v === null || v === undefined ? "" : String(v); }

  // the first limit-1 characters (code points) and an ellipsis, as the HTML table cuts
  function cut(s, limit) {
    var i = 0, n = 0, at = 0;
    while (i < s.length && n <= limit) {
      var c = s.charCodeAt(i);
      i += (c >= 0xD800 && c <= 0xDBFF && i + 1 < s.length) ? 2 : 1;
      n += 1;
      if (n === limit - 1) { at = i; }
    }
    return n > limit ? s.slice(0, at) + "\u2026" : s;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function breakable(td, text) {
    text.split("_").forEach(function (part, i) {
      if (i) { td.appendChild(document.createTextNode("_")); td.appendChild(el("wbr")); }
      if (part) { td.appendChild(document.createTextNode(part)); }
    });
  }

  // one <tr>, as views/html.py summary_row_html writes it: text only, never markup
  function rowElement(r) {
    var tr = document.createElement("tr");
    var outcome = str(r[F.outcome]);
    tr.className = "mw-row-" + outcome;
    tr.setAttribute("data-outcome", outcome);
    tr.setAttribute("data-plugin", str(r[F.final_plugin]));
    tr.setAttribute("data-user", str(r[F.user]));
    tr.setAttribute("data-verdict", str(r[F.verdict]));
    tr.setAttribute("data-n", str(r[F.n]));
    keys.forEach(function (key) {
      var v = r[F[key]], td = document.createElement("td");
      var sv = str(v), text = sv === "" ? "" : cut(sv, 80);
      tr.appendChild(td);
      if (key === "id" || (key === "latency_ms" && sv !== "")) { td.className = "mw-num"; }
      td.setAttribute("data-v", sv);
      if (key === "latency_ms" && sv !== "") {
        td.textContent = str(r[F.latency_text]);
      } else if (key === "id") {
        td.title = str(r[F.client]) + " \u2192 " + str(r[F.server]);
        if (r[F.link]) {
          var a = el("a", "", text);
          a.setAttribute("href", "#conn-" + str(r[F.n]));
          td.appendChild(a);
        } else {
          td.textContent = text;
        }
      } else if (key === "server_short") {
        td.title = v === null ? "-" : str(r[F.server_version]);
        td.textContent = text;
      } else if (key === "outcome" && sv !== "") {
        td.className = "mw-nowrap";
        td.appendChild(el("span", "mw-badge mw-" + sv, labels[sv] || sv));
        if (r[F.error]) { td.appendChild(document.createTextNode(" " + r[F.error])); }
      } else if (key === "verdict" && sv !== "") {
        td.appendChild(el("span", "mw-badge mw-v-" + sv, sv));
      } else if (key === "capture" || key === "plugins" || key === "finding") {
        breakable(td, text);
      } else {
        td.textContent = text;
      }
    });
    return tr;
  }

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

  function button(id, disabled) {
    var b = document.getElementById(id);
    if (b) { b.disabled = disabled; }
  }

  function showPage() {
    var pages = Math.max(1, Math.ceil(matching.length / pageSize));
    if (page >= pages) { page = pages - 1; }
    if (page < 0) { page = 0; }
    var start = page * pageSize, end = Math.min(matching.length, start + pageSize);
    if (body) {
      var frag = document.createDocumentFragment();
      for (var k = start; k < end; k++) { frag.appendChild(rowElement(all[matching[k]])); }
      while (body.firstChild) { body.removeChild(body.firstChild); }
      body.appendChild(frag);
    }
    if (pageInfo) {
      pageInfo.textContent = matching.length ?
        "rows " + (start + 1) + "\u2013" + end + " of " + matching.length +
        " \u00b7 page " + (page + 1) + " of " + pages : "no row matches";
    }
    button("mw-first", page === 0); button("mw-prev", page === 0);
    button("mw-next", page >= pages - 1); button("mw-last", page >= pages - 1);
    if (pager) { pager.hidden = all.length <= firstSize; }
  }

  function apply() {
    var o = fOutcome.value, p = fPlugin.value, v = fVerdict.value;
    var u = fUser.value.toLowerCase();
    for (var i = 0; i < all.length; i++) {
      var r = all[i];
      var good = (!o || str(r[F.outcome]) === o) &&
                 (!p || str(r[F.final_plugin]) === p) &&
                 (!v || str(r[F.verdict]) === v) &&
                 (!u || str(r[F.user]).toLowerCase().indexOf(u) >= 0);
      ok[i] = good;
      var sec = sections[str(r[F.n])];
      if (sec) { sec.hidden = !good; }
    }
    matching = order.filter(function (j) { return ok[j]; });
    count.textContent = matching.length + " of " + all.length + " connection(s) shown";
    page = 0;
    showPage();
  }

  function sortBy(th) {
    var f = F[th.getAttribute("data-key")];
    var num = th.hasAttribute("data-num");
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var pos = [], kv = [];
    order.forEach(function (j, k) { pos[j] = k; });
    all.forEach(function (r, j) {
      var s = str(r[f]);
      kv[j] = s === "" ? null : (num ? parseFloat(s) : s);
    });
    order.sort(function (a, b) {
      var x = kv[a], y = kv[b];
      if (x === null || y === null) {
        if (x !== y) { return x === null ? 1 : -1; }
        return pos[a] - pos[b];
      }
      var c = num ? x - y : (x < y ? -1 : (x > y ? 1 : 0));
      return c !== 0 ? c * dir : pos[a] - pos[b];
    });
    matching = order.filter(function (j) { return ok[j]; });
    showPage();
  }

  // a connection's row: the page holding it is shown, its ladder opened
  function reveal(n) {
    var k = -1;
    for (var j = 0; j < matching.length; j++) {
      if (str(all[matching[j]][F.n]) === n) { k = j; break; }
    }
    if (k >= 0) { page = Math.floor(k / pageSize); showPage(); }
    if (sections[n]) {
      open(n, true);
    } else if (k >= 0 && body) {
      Array.prototype.forEach.call(body.rows, function (tr) {
        if (tr.getAttribute("data-n") === n) { tr.scrollIntoView(); }
      });
    }
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
    ev.preventDefault();
    if (t.tagName === "A") {
      reveal(t.getAttribute("href").slice(6));
    } else {
      toggle(t.getAttribute("data-open"));
    }
  });
  function go(to) {
    return function () { page = to(); showPage(); };
  }
  var moves = {
    "mw-first": function () { return 0; },
    "mw-prev": function () { return page - 1; },
    "mw-next": function () { return page + 1; },
    "mw-last": function () { return Math.ceil(matching.length / pageSize) - 1; }
  };
  Object.keys(moves).forEach(function (id) {
    var b = document.getElementById(id);
    if (b) { b.addEventListener("click", go(moves[id])); }
  });
  function resize(size) {
    page = Math.floor(page * pageSize / size);
    pageSize = size;
    showPage();
  }
  if (fSize) {
    fSize.addEventListener("change", function () { resize(Number(fSize.value) || firstSize); });
  }
  var openAll = document.getElementById("mw-open-all");
  if (openAll) {
    openAll.addEventListener("click", function () {
      Object.keys(sections).forEach(function (n) {
        if (!sections[n].hidden) { open(n, false); }
      });
    });
  }

  // Shareable views: report.html?outcome=error&plugin=...&verdict=...&user=...
  //   &sort=<column>&desc=1&size=<rows a page>&page=<number>#conn-<n>
  var q = new URLSearchParams(window.location.search);
  function preset(el, key) {
    var v = q.get(key);
    if (v === null || !el) { return false; }
    if (el.tagName === "SELECT" && !Array.prototype.some.call(el.options, function (o) {
      return o.value === v;
    })) { return false; }
    el.value = v;
    return true;
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
  if (preset(fSize, "size")) { pageSize = Number(fSize.value) || firstSize; }
  var at = q.get("page");
  if (at !== null) { page = at === "last" ? Infinity : (parseInt(at, 10) || 1) - 1; }
  showPage();
  var ladders = Object.keys(sections);
  if (ladders.length <= Number(document.body.getAttribute("data-open-at-load") || 0)) {
    ladders.forEach(function (n) { open(n, false); });
  }
  function fromHash() {
    if (window.location.hash.indexOf("#conn-") === 0) { reveal(window.location.hash.slice(6)); }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
  document.documentElement.setAttribute("data-ready", "1");
}());
"""
