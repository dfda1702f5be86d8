"""The report pages (#19 item 4): every summary row is one JSON array in an
inert ``<script type="application/json" id="mw-rows">`` block, the table's
HTML holds only the first page (what a browser without JavaScript shows),
and the script draws one page at a time while sorting and filtering over
every row.  The block must be safe against every wire string: a user name
``</script><script>...``, quotes, U+2028, bytes that are not UTF-8.
Browser tests (headless chromium) on a 451-connection report: 3 pages."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import subprocess
import sys
import time

import pytest

from mysqlwire.model import text
from mysqlwire.views import report as report_mod
from mysqlwire.views.html import SUMMARY_COLUMNS, summary_row_html
from mysqlwire.views.report_rows import (
    ROW_FIELDS,
    SHARED_MAX,
    StoredRows,
    row_json,
    rows_block_head,
)

from .conftest import REPO
from .test_report import (  # noqa: F401
    _browse,
    _console_messages,
    chromium,
    hostile_pcap,
    parse,
    run_report,
)
from .test_report_scale import _conns

BLOCK = re.compile(r'<script type="application/json" id="mw-rows">(.*?)</script>', re.S)
SCRIPT_USER = "</script><script>alert(1)</script>"


def block_of(page: str) -> dict:
    """The rows block of a page, parsed as the browser's JSON.parse would."""
    found = BLOCK.findall(page)
    assert len(found) == 1
    return json.loads(found[0])


def records(page: str) -> list[dict]:
    """Every row as a dict; a shared value (a number in a string field) is
    looked up in the block's ``strings`` tables."""
    b = block_of(page)
    out = []
    for r in b["rows"]:
        rec = dict(zip(b["fields"], r, strict=True))
        for k, table in b.get("strings", {}).items():
            if isinstance(rec[k], int):
                rec[k] = table[rec[k]]
        out.append(rec)
    return out


# ---------------------------------------------------------------- the data block


def test_row_json_holds_no_markup_and_gives_back_the_shown_values():
    row = {
        "n": 7,
        "id": 7,
        "client": "10.0.0.1:5000",
        "server": "10.0.0.2:3306",
        "user": SCRIPT_USER + "\"q'\u2028\u2029x\x07<!--&amp;",
        "final_plugin": "dialog</script>",
        "plugins": "mysql_native_password \u2192 dialog</script>",
        "outcome": "error",
        "error": "1045 (28000)",
        "server_short": "MySQL 8.0.36-<img src=x onerror=alert(1)>",
        "server_version": "8.0.36-<img src=x onerror=alert(1)>\u202e",
        "latency_ms": 0.125,
    }
    text_ = row_json(row, link=True)
    for bad in ("<", ">", "&", "\u2028", "\u2029", "\u202e", "\x07"):
        assert bad not in text_, bad
    got = dict(zip(ROW_FIELDS, json.loads(text_), strict=True))
    # the values the HTML table shows (controls and separators made visible)
    assert got["user"] == "</script><script>alert(1)</script>\"q'\\u2028\\u2029x\\x07<!--&amp;"
    assert got["final_plugin"] == "dialog</script>"
    assert got["server_version"] == "8.0.36-<img src=x onerror=alert(1)>\\u202e"
    assert (got["client"], got["server"]) == ("10.0.0.1:5000", "10.0.0.2:3306")
    assert got["latency_ms"] == 0.125 and got["latency_text"] == "0.12"  # as the HTML rounds
    assert (got["n"], got["id"], got["link"], got["verdict"]) == (7, 7, 1, None)


def test_bytes_that_are_not_utf8_stay_the_models_text():
    # the model decodes wire bytes with backslashreplace; a str from the API
    # may carry lone surrogates (surrogateescape): both come out as visible text
    wire = text(b"a\xff\xfe</script>b")
    assert wire == "a\\xff\\xfe</script>b"
    row = {"n": 1, "id": 1, "user": wire, "capture": "x\udcffy.pcap", "outcome": "ok"}
    out = row_json(row, link=False)
    assert "<" not in out and "\udcff" not in out
    out.encode("utf-8")  # writable: no lone surrogate left
    got = dict(zip(ROW_FIELDS, json.loads(out), strict=True))
    assert got["user"] == "a\\xff\\xfe</script>b"
    assert got["capture"] == "x\\udcffy.pcap"


def test_long_values_are_cut_like_the_table_but_filter_values_are_whole():
    row = {"n": 1, "id": 1, "user": "u" * 300, "client_lib": "c" * 300, "outcome": "ok"}
    got = dict(zip(ROW_FIELDS, json.loads(row_json(row, link=False)), strict=True))
    assert got["user"] == "u" * 300  # the user filter matches the whole name, as before
    assert got["client_lib"] == "c" * 199 + "\u2026"


def _hostile_report(tmp_path, user):
    pcap = hostile_pcap(tmp_path / "h.pcap", user=user)
    out = tmp_path / "r.html"
    assert run_report([str(pcap), "-o", str(out)]).exit_code == 1
    return out.read_text(encoding="utf-8")


def test_hostile_user_in_a_written_report_cannot_close_the_block(tmp_path):
    page = _hostile_report(tmp_path, SCRIPT_USER + "\u2028'\"")
    p = parse(page)
    assert p.scripts == [report_mod.REPORT_SCRIPT] and len(p.data_blocks) == 1
    tag = '<script type="application/json" id="mw-rows">'
    start = page.index(tag) + len(tag)
    # the block's text ends at its own </script>, nowhere earlier: what lies
    # before the first "</script" (any case) is the whole JSON document
    json.loads(page[start : page.lower().index("</script", start)])
    (rec,) = records(page)
    assert rec["user"] == SCRIPT_USER + "\\u2028'\""
    assert rec["outcome"] == "error" and rec["error"] == "1045 (28000)"
    block = BLOCK.findall(page)[0]
    assert "<" not in block and ">" not in block and "&" not in block
    for raw in ("<script>alert(1)", "</script><script>"):
        assert raw not in page


# ---------------------------------------------------------------- the page


@pytest.fixture(scope="module")
def conns():
    return _conns()


def test_html_holds_the_first_page_and_the_block_every_row(conns, monkeypatch):
    monkeypatch.setattr(report_mod, "PAGE_ROWS", 4)
    page = report_mod.build_report(conns)
    p = parse(page)
    n = len(conns)
    assert n > 8
    assert [r["data-n"] for r in p.rows] == ["1", "2", "3", "4"]
    assert not any("hidden" in r for r in p.rows)
    recs = records(page)
    assert [r["n"] for r in recs] == list(range(1, n + 1))
    assert [r["user"] for r in recs] == [c.user for c in conns]
    assert [r["outcome"] for r in recs] == [c.outcome for c in conns]
    assert [r["link"] for r in recs] == [1] * n  # a few connections: each has a ladder
    assert f"JavaScript is off: the table shows the first 4 of {n} connections" in page
    assert '<div class="mw-pager" id="mw-pager" data-size="4" hidden>' in page
    # without JavaScript the controls that would do nothing are not shown
    assert '<div class="mw-filters" id="mw-filters" hidden>' in page


def test_small_report_has_every_row_as_html(conns):
    page = report_mod.build_report(conns)
    p = parse(page)
    assert len(p.rows) == len(records(page)) == len(conns)
    assert "JavaScript is off: sorting, the filters and the ladder diagrams" in page


def test_stored_rows_give_back_the_first_page_and_every_row():
    rows = [
        {"n": i, "id": i, "outcome": "ok", "user": f"\u00e9l\u00e8ve{i}" * 40}
        for i in range(1, 700)
    ]
    stored = StoredRows(first=5)
    for r in rows:
        stored.add(r, link=r["n"] % 2 == 0)
    cols = [c for c in SUMMARY_COLUMNS if c[0] in ("id", "user")]
    assert list(stored.first_html(cols)) == [
        summary_row_html(r, cols, link=r["n"] % 2 == 0) for r in rows[:5]
    ]
    # small pieces: cut inside two-byte characters, put together again
    text_ = "".join(stored.json_chunks(size=7))
    assert "".join(stored.json_chunks()) == text_
    page = (
        '<script type="application/json" id="mw-rows">'
        + rows_block_head()
        + text_
        + stored.block_foot()
        + "</script>"
    )
    assert records(page) == [
        dict(zip(ROW_FIELDS, json.loads(row_json(r, link=r["n"] % 2 == 0)), strict=True))
        for r in rows
    ]
    # the repeated value is written once; these long user names are not shared
    assert text_.count('"ok"') == 0 and block_of(page)["strings"]["outcome"] == ["ok"]
    assert "user" not in block_of(page)["strings"]
    assert all(f'"{r["user"]}"' in text_ for r in rows)
    stored.close()


# ---------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def paged(tmp_path_factory):
    """450 generated logins plus one hostile login: 451 rows, 3 pages."""
    d = tmp_path_factory.mktemp("paged")
    pcap = d / "l450.pcap"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_logins.py"), "-n", "450"]
        + ["--shape", "logins", "--rate", "1", "-o", str(pcap)],
        check=True,
        capture_output=True,
    )
    hostile = hostile_pcap(d / "zz-hostile.pcap", user=SCRIPT_USER)
    out = d / "r.html"
    assert run_report([str(pcap), str(hostile), "-o", str(out)]).exit_code == 1
    page = out.read_text(encoding="utf-8")
    recs = records(page)
    assert len(recs) == 451 and recs[-1]["user"] == SCRIPT_USER
    return out, recs


def _dom(chromium, tmp_path, out, suffix=""):  # noqa: F811
    dom = _browse(chromium, tmp_path, out.resolve().as_uri() + suffix, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console_messages(dom.stderr) == []
    assert re.search(r'<html[^>]*\bdata-ready="1"', dom.stdout)
    return dom.stdout


def _shown(dom: str) -> list[int]:
    rows = parse(dom).rows
    assert not any("hidden" in r for r in rows)
    return [int(r["data-n"]) for r in rows]


@pytest.mark.parametrize(
    ("query", "first", "last", "info"),
    [
        ("", 1, 200, "rows 1\u2013200 of 451 \u00b7 page 1 of 3"),
        ("?page=2", 201, 400, "rows 201\u2013400 of 451 \u00b7 page 2 of 3"),
        ("?page=last", 401, 451, "rows 401\u2013451 of 451 \u00b7 page 3 of 3"),
    ],
)
def test_browser_shows_one_page(chromium, paged, tmp_path, query, first, last, info):  # noqa: F811
    out, _ = paged
    dom = _dom(chromium, tmp_path, out, query)
    assert _shown(dom) == list(range(first, last + 1))
    assert info in dom
    assert '<div class="mw-pager" id="mw-pager" data-size="200">' in dom  # shown
    assert '<div class="mw-filters" id="mw-filters">' in dom
    assert "451 of 451 connection(s) shown" in dom
    if last == 451:  # the hostile name is text in the page, never markup
        assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in dom
        assert parse(dom).tags.get("script") == 2  # ours and the data block


def test_browser_filter_finds_the_row_on_the_last_page(chromium, paged, tmp_path):  # noqa: F811
    out, recs = paged
    dom = _dom(chromium, tmp_path, out, "?user=alert")
    assert _shown(dom) == [451]
    assert "1 of 451 connection(s) shown" in dom
    # a filter over every row: all the error rows, a page at a time
    errors = [r["n"] for r in recs if r["outcome"] == "error"]
    assert len(errors) > 20
    dom = _dom(chromium, tmp_path, out, "?outcome=error&size=50")
    assert _shown(dom) == errors[:50]
    assert f"{len(errors)} of 451 connection(s) shown" in dom


def test_browser_sorts_every_row(chromium, paged, tmp_path):  # noqa: F811
    out, recs = paged
    # user names: the hostile one ('<' sorts first) is the last row of the capture
    dom = _dom(chromium, tmp_path, out, "?sort=user")
    shown = _shown(dom)
    assert shown[0] == 451 and len(shown) == 200
    lat = [(r["latency_ms"], r["n"]) for r in recs if r["latency_ms"] is not None]
    low = min(lat)  # ties: the earlier row first (the sort is stable)
    high = min((n for v, n in lat if v == max(lat)[0]))
    dom = _dom(chromium, tmp_path, out, "?sort=latency_ms&desc=1")
    assert _shown(dom)[0] == high
    dom = _dom(chromium, tmp_path, out, "?sort=latency_ms&page=last")
    values = [float(v) for v in re.findall(r'<td class="mw-num" data-v="([0-9.]+)">', dom)]
    assert values and values == sorted(values)
    dom = _dom(chromium, tmp_path, out, "?sort=latency_ms")
    assert _shown(dom)[0] == low[1]
    assert low[1] > 200 or high > 200  # the test is about rows beyond the first page


def test_browser_link_opens_the_page_holding_the_connection(chromium, paged, tmp_path):  # noqa: F811
    out, _ = paged
    dom = _dom(chromium, tmp_path, out, "#conn-451")
    assert _shown(dom) == list(range(401, 452))
    slots = re.findall(
        r'<section class="mw-sec" id="conn-(\d+)".*?<div class="mw-slot"[^>]*>(.*?)</div></section>',
        dom,
        re.S,
    )
    assert [n for n, s in slots if "<svg" in s] == ["451"]


class _Chromium:
    """Headless chromium driven over ``--remote-debugging-pipe`` (the DevTools
    protocol: commands on its fd 3, answers on its fd 4, each message ending
    with NUL) to click through the page as a user would."""

    def __init__(self, chromium: str, profile, url: str):  # noqa: F811
        self._cmd_r, self._cmd_w = os.pipe()
        self._out_r, self._out_w = os.pipe()
        # the child's ends go above 4, then become its fds 3 and 4
        for name in ("_cmd_r", "_out_w"):
            fd = getattr(self, name)
            setattr(self, name, fcntl.fcntl(fd, fcntl.F_DUPFD, 10))
            os.close(fd)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        args += ["--no-first-run", "--disable-background-networking", "--disable-sync"]
        args += ["--remote-debugging-pipe", f"--user-data-dir={profile}", url]
        cmd_r, out_w = self._cmd_r, self._out_w

        def pipes() -> None:
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        self._log = open(f"{profile}.log", "w+b")  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(
            [chromium, *args],
            close_fds=False,  # our other fds are not inheritable (PEP 446)
            preexec_fn=pipes,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(self._cmd_r)
        os.close(self._out_w)
        self._buf = b""
        self._id = 0
        self.session = None
        deadline = time.monotonic() + 60
        while self.session is None:
            pages = [
                t
                for t in self.send("Target.getTargets")["targetInfos"]
                if t["type"] == "page" and t["url"].startswith("file:")
            ]
            if pages:
                got = self.send(
                    "Target.attachToTarget", targetId=pages[0]["targetId"], flatten=True
                )
                self.session = got["sessionId"]
            assert time.monotonic() < deadline, "no page target"
        ready = "document.documentElement && document.documentElement.getAttribute('data-ready')"
        while True:  # the page may not even be parsed yet, or still navigating
            try:
                if self.js(ready) == "1":
                    break
            except AssertionError:
                pass
            assert time.monotonic() < deadline, "the page's script did not finish"
            time.sleep(0.1)

    def send(self, method: str, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                ready, _, _ = select.select([self._out_r], [], [], 60)
                assert ready, f"no answer to {method}"
                chunk = os.read(self._out_r, 1 << 20)
                assert chunk, f"chromium closed the pipe: {self._tail()}"
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._id:
                assert "error" not in answer, answer
                return answer["result"]

    def _tail(self) -> str:
        self._log.flush()
        with open(self._log.name, "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")

    def js(self, expression: str):
        got = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in got, got
        return got["result"].get("value")

    def click(self, selector: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).click()")

    def rows(self) -> list[int]:
        return self.js(
            "Array.prototype.map.call(document.getElementById('mw-summary').tBodies[0].rows,"
            " function (r) { return Number(r.getAttribute('data-n')); })"
        )

    def text(self, ident: str) -> str:
        return self.js(f"document.getElementById({json.dumps(ident)}).textContent")

    def close(self) -> str:
        try:
            self.send("Browser.close")
        except AssertionError:
            pass
        os.close(self._cmd_w)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out_r)
        self._log.seek(0)
        log = self._log.read().decode("utf-8", "replace")
        self._log.close()
        return log


def test_browser_clicks_through_pages_sorts_filters_and_links(chromium, paged, tmp_path):  # noqa: F811
    out, recs = paged
    b = _Chromium(chromium, tmp_path / "profile", out.resolve().as_uri())
    try:
        assert b.rows() == list(range(1, 201))
        assert b.js("document.getElementById('mw-prev').disabled") is True
        b.click("#mw-next")
        assert b.rows() == list(range(201, 401))
        assert b.text("mw-page") == "rows 201\u2013400 of 451 \u00b7 page 2 of 3"
        b.click("#mw-last")
        assert b.rows() == list(range(401, 452))
        assert b.js("document.getElementById('mw-next').disabled") is True
        # the row's link opens its ladder (copied out of its template)
        b.click('a[href="#conn-440"]')
        assert b.js("!!document.querySelector('#conn-440 .mw-slot svg')") is True
        assert b.js("document.getElementById('conn-440').hidden") is False
        b.click("#mw-first")
        assert b.rows() == list(range(1, 201))
        # a link to a connection on another page: the page holding it is shown
        b.js("window.location.hash = '#conn-333'")
        deadline = time.monotonic() + 10
        while 333 not in b.rows():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert b.rows() == list(range(201, 401))
        assert b.js("!!document.querySelector('#conn-333 .mw-slot svg')") is True
        # the user filter, typed: the one matching row is the last one
        b.js(
            "var f = document.getElementById('f-user'); f.value = 'ALERT';"
            " f.dispatchEvent(new Event('input'))"
        )
        assert b.rows() == [451]
        assert b.text("mw-count") == "1 of 451 connection(s) shown"
        assert b.js("document.getElementById('conn-1').hidden") is True
        b.js(
            "var f = document.getElementById('f-user'); f.value = '';"
            " f.dispatchEvent(new Event('input'))"
        )
        assert b.text("mw-count") == "451 of 451 connection(s) shown"
        # a click on a header sorts every row, a second click reverses
        b.click('th[data-key="user"]')
        assert b.rows()[0] == 451
        b.click('th[data-key="user"]')
        assert b.rows()[0] != 451
        # descending, stable, rows without a user last (as the table always did)
        named = [r for r in recs if r["user"]]
        expected = sorted(named, key=lambda r: r["user"], reverse=True)
        expected += [r for r in recs if not r["user"]]
        b.click("#mw-last")
        assert b.rows() == [r["n"] for r in expected][400:]
        assert 451 in b.rows()
        # rows a page
        b.js(
            "var s = document.getElementById('mw-size'); s.value = '50';"
            " s.dispatchEvent(new Event('change'))"
        )
        assert len(b.rows()) == 50
    finally:
        log = b.close()
    assert _console_messages(log) == []


def test_shared_values_are_bounded():
    """Past SHARED_MAX distinct values of a field, or for long ones, the
    value is written in the row: the tables never grow without bound."""
    stored = StoredRows(first=0)
    users = [f"user{i}" for i in range(SHARED_MAX + 10)] + ["x" * 201]
    for i, u in enumerate(users, 1):
        stored.add({"n": i, "id": i, "user": u, "outcome": "ok"}, link=False)
    page = (
        '<script type="application/json" id="mw-rows">'
        + rows_block_head()
        + "".join(stored.json_chunks())
        + stored.block_foot()
        + "</script>"
    )
    assert len(block_of(page)["strings"]["user"]) == SHARED_MAX
    assert [r["user"] for r in records(page)] == users
    assert block_of(page)["strings"]["outcome"] == ["ok"]
    stored.close()


def test_every_table_column_travels_in_the_rows():
    """The script draws the columns named in the table's head from the row's
    fields: a column added to the table needs its field in the rows."""
    assert {k for k, _ in SUMMARY_COLUMNS} <= set(ROW_FIELDS)
    script = report_mod.REPORT_SCRIPT
    for key in ("final_plugin", "latency_text", "client", "server", "link", "error"):
        assert f"F.{key}" in script
