"""``diagnose`` and ``report`` on named captures hold memory that does not
grow with the number of connections (#19 item 4): the output (diagnose) and
the summary rows (report: the JSON of its data block) go to an anonymous temporary file, not to the heap.
Measured in-process with tracemalloc (Python allocations only, so the figure
is not blurred by the allocator) on generated captures of n and 4n logins:
the peak may grow by what dissection itself needs (measured the same way on
``dissect``, ~1.8 KB a connection on these short captures) plus a small
margin, far below what holding each connection's output costs (~22 KB a
JSON record).  No timing assertion.  Figures at 100,000 connections:
benchmarks/README.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import pytest

from mysqlwire.views import report as report_mod
from mysqlwire.views import report_rows
from mysqlwire.views.html import SUMMARY_COLUMNS, summary_row_html
from mysqlwire.views.report_rows import ROW_FIELDS

from .conftest import REPO

SMALL, LARGE = 300, 1200
PER_CONNECTION_MAX = 512  # bytes of traced peak per added connection, over dissect


@pytest.fixture(scope="module")
def logins(tmp_path_factory):
    d = tmp_path_factory.mktemp("flat")
    out = {}
    for n in (SMALL, LARGE):
        path = d / f"l{n}.pcap"
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / "make_logins.py"), "-n", str(n)]
            + ["--shape", "logins", "--rate", "1", "-o", str(path)],
            check=True,
            capture_output=True,
        )
        out[n] = path
    return out


def _traced_peak(args: list[str], out_path) -> tuple[int, int]:
    """(exit status, peak of traced Python memory) of ``mysqlwire ARGS`` run
    in this process, stdout going to ``out_path``."""
    from mysqlwire.cli import main

    saved = sys.argv, sys.stdout
    tracemalloc.start()
    try:
        with open(out_path, "w", encoding="utf-8") as out:
            sys.argv, sys.stdout = ["mysqlwire", *args], out
            try:
                main()
                status = 0
            except SystemExit as exc:
                status = exc.code
        return status, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        sys.argv, sys.stdout = saved


def _data_rows(page: str) -> int:
    """Rows of the report's JSON data block (one JSON array a line)."""
    start = page.index('<script type="application/json" id="mw-rows">')
    block = page[start : page.index("</script>", start)]
    return len(json.loads(block[block.index(">") + 1 :])["rows"])


def _growth(logins, tmp_path, command) -> tuple[float, dict]:
    """Traced peak added per connection from SMALL to LARGE logins (a first
    run warms up imports and caches, so that both sizes start alike)."""
    peaks = {}
    for n in (SMALL, SMALL, LARGE):
        out = tmp_path / f"out{n}"
        args = [a.replace("{out}", str(out)) for a in command]
        status, peaks[n] = _traced_peak([*args, str(logins[n])], out)
        assert status == 1  # the generated logins include failed ones
        if command[0] == "diagnose" and "json" in command:
            records = json.loads(out.read_text(encoding="utf-8"))
            assert len(records) == n  # everything was written, nothing held back
        elif command[0] == "report":
            page = (tmp_path / f"out{n}.html").read_text(encoding="utf-8")
            assert _data_rows(page) == n  # every row, in the page's data block
            assert page.count("<tr class=") == min(n, report_mod.PAGE_ROWS)
    return (peaks[LARGE] - peaks[SMALL]) / (LARGE - SMALL), peaks


@pytest.fixture(scope="module")
def dissect_growth(logins, tmp_path_factory):
    return _growth(logins, tmp_path_factory.mktemp("dissect"), ["dissect", "--format", "jsonl"])[0]


@pytest.mark.parametrize(
    "command",
    [
        ["diagnose", "--all", "--format", "json"],
        ["diagnose", "--all", "--format", "jsonl"],
        ["report", "--ladders", "none", "-o", "{out}.html"],
        ["dissect", "--format", "json"],
        ["dissect", "--format", "json", "--packets"],
    ],
    ids=["diagnose-json", "diagnose-jsonl", "report", "dissect-json", "dissect-json-packets"],
)
def test_peak_grows_no_more_than_dissection(logins, tmp_path, dissect_growth, command):
    """What the command adds per connection over ``dissect`` (which streams
    each record out) stays small; keeping every JSON record, as
    ``diagnose --format json`` did, added ~22 KB a connection here."""
    per_conn, peaks = _growth(logins, tmp_path, command)
    assert per_conn - dissect_growth < PER_CONNECTION_MAX, (peaks, dissect_growth)


def test_stored_rows_keep_nothing_per_row_in_memory():
    rows = [
        {"n": i, "id": i, "outcome": "error" if i % 3 else "ok", "user": f"u{i}", "error": "1045"}
        for i in range(1, 4001)
    ]
    tracemalloc.start()
    try:
        stored = report_mod.StoredRows(first=200)
        for r in rows[:2000]:
            stored.add(r, link=r["n"] % 2 == 0)
        at_2000 = tracemalloc.get_traced_memory()[0]
        for r in rows[2000:]:
            stored.add(r, link=r["n"] % 2 == 0)
        at_4000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(stored) == 4000
    # 2000 more rows of ~100 bytes each: held in a list they would be ~0.4 MB
    # (the tables of shared values are full by then: SHARED_MAX distinct users)
    assert report_rows.SHARED_MAX < 2000
    assert at_4000 - at_2000 < 32 * 1024, (at_2000, at_4000)
    # what comes back: the first page as HTML cut to the columns asked, and
    # every row, in order, as the data block's JSON
    cols = [c for c in SUMMARY_COLUMNS if c[0] in ("id", "outcome", "user")]
    assert list(stored.first_html(cols)) == [
        summary_row_html(r, cols, link=r["n"] % 2 == 0) for r in rows[:200]
    ]
    back = json.loads("[" + "".join(stored.json_chunks()) + "]")
    strings = json.loads("{" + stored.block_foot().split(",", 1)[1])["strings"]
    fields = list(ROW_FIELDS)
    at = fields.index("user")
    for r in back:  # a shared value: its index in the block's tables
        if isinstance(r[at], int):
            r[at] = strings["user"][r[at]]
    assert [
        (r[fields.index("n")], r[fields.index("user")], r[fields.index("link")]) for r in back
    ] == [(r["n"], r["user"], int(r["n"] % 2 == 0)) for r in rows]
    stored.close()


LAB = REPO / "captures" / "lab"


def _passes_and_args(cmd, monkeypatch, first_plain: bool) -> tuple[list, list[str]]:
    """Count the command's passes over the captures (``cmd.iter_named``), and
    the arguments of a refused plain login and a TLS login of the same user,
    in either order."""
    passes = []
    real = cmd.iter_named

    def counted(*a, **kw):
        passes.append(a[-1])
        return real(*a, **kw)

    monkeypatch.setattr(cmd, "iter_named", counted)
    monkeypatch.setenv("MW_TEST_PW", "Tls-Only-77")
    plain, tls = LAB / "cli_require_ssl_no_tls.pcap", LAB / "cli_tls_keylog_ok.pcap"
    caps = [plain, tls] if first_plain else [tls, plain]
    keys = ["--keylog", str(LAB / "cli_tls_keylog_ok.keys")]
    return passes, ["--password-env", "MW_TEST_PW", *keys, *map(str, caps)]


@pytest.mark.parametrize("first_plain", [True, False], ids=["plain-first", "tls-first"])
def test_a_later_login_that_changes_the_facts_gets_the_complete_answer(
    tmp_path, monkeypatch, first_plain
):
    """Read once, each login is diagnosed with the logins before it; a later
    TLS login of the same user changes what the capture says of an earlier
    refused plain one: diagnose then reads the captures again, so the refused
    login gets the same diagnosis in either order."""
    import mysqlwire.commands.diagnose as cmd

    passes, args = _passes_and_args(cmd, monkeypatch, first_plain)
    out = tmp_path / "out.jsonl"
    status, _ = _traced_peak(
        ["diagnose", "--format", "jsonl", *args],
        out,
    )
    assert status == 1
    (rec,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rec["user"] == "secure" and rec["outcome"] == "error"
    top = rec["diagnosis"][0]
    assert top["code"] == "TLS_REQUIRED"
    assert (
        "the same user logged in over TLS in another connection of this capture"
        in (top["evidence"])
    )
    # one extra pass only when the TLS login came after the refused one
    assert len(passes) == (1 if first_plain else 0), passes


def test_show_secrets_output_is_never_spilled(tmp_path, monkeypatch):
    """--show-secrets keeps the passes that write straight to stdout (no
    temporary file ever holds a clear-text secret)."""
    import tempfile

    made = []
    real = tempfile.TemporaryFile

    def watched(*a, **kw):
        made.append(kw.get("prefix"))
        return real(*a, **kw)

    monkeypatch.setattr(tempfile, "TemporaryFile", watched)
    out = tmp_path / "o.jsonl"
    cap = LAB / "cli_native_wrong.pcap"
    status, _ = _traced_peak(["diagnose", "--format", "jsonl", "--show-secrets", str(cap)], out)
    assert status == 1 and out.stat().st_size > 0
    assert "mysqlwire-diagnose-" not in made
    status, _ = _traced_peak(["diagnose", "--format", "jsonl", str(cap)], out)
    assert status == 1 and "mysqlwire-diagnose-" in made


@pytest.mark.parametrize("first_plain", [True, False], ids=["plain-first", "tls-first"])
def test_report_reads_again_only_when_a_later_login_changes_the_facts(
    tmp_path, monkeypatch, first_plain
):
    import mysqlwire.commands.report as cmd

    passes, args = _passes_and_args(cmd, monkeypatch, first_plain)
    page = tmp_path / "r.html"
    status, _ = _traced_peak(
        ["report", "-o", str(page), *args],
        tmp_path / "out",
    )
    assert status == 1
    html = page.read_text(encoding="utf-8")
    assert html.count("<tr class=") == 2 == _data_rows(html)
    # the refused login's ladder panel carries the complete facts' diagnosis
    assert html.count("logged in over TLS in another connection of this capture") == 1
    assert len(passes) == (2 if first_plain else 1), passes


def test_standard_input_held_in_a_file_is_read_again_from_its_start(tmp_path):
    """``diagnose - later.pcap < earlier.pcap``: standard input (a regular
    file) takes the same one-pass road; the second pass reads it again."""
    plain, tls = LAB / "cli_require_ssl_no_tls.pcap", LAB / "cli_tls_keylog_ok.pcap"
    env = dict(os.environ, PYTHONPATH=str(REPO), MW_TEST_PW="Tls-Only-77")
    args = [sys.executable, "-m", "mysqlwire", "diagnose", "--format", "jsonl", "--all"]
    args += ["--password-env", "MW_TEST_PW", "--keylog", str(LAB / "cli_tls_keylog_ok.keys")]
    with open(plain, "rb") as stdin:
        got = subprocess.run([*args, "-", str(tls)], stdin=stdin, capture_output=True, env=env)
    assert got.returncode == 1, got.stderr
    recs = [json.loads(line) for line in got.stdout.decode().splitlines()]
    assert [(r["capture"], r["user"], r["outcome"]) for r in recs] == [
        ("-", "secure", "error"),
        (str(tls), "secure", "ok"),
    ]
    top = recs[0]["diagnosis"][0]
    assert top["code"] == "TLS_REQUIRED"
    assert "logged in over TLS in another connection of this capture" in top["evidence"]


def test_report_reads_standard_input_held_in_a_file_again_when_needed(tmp_path):
    plain, tls = LAB / "cli_require_ssl_no_tls.pcap", LAB / "cli_tls_keylog_ok.pcap"
    env = dict(os.environ, PYTHONPATH=str(REPO), MW_TEST_PW="Tls-Only-77")
    page = tmp_path / "r.html"
    args = [sys.executable, "-m", "mysqlwire", "report", "-o", str(page)]
    args += ["--password-env", "MW_TEST_PW", "--keylog", str(LAB / "cli_tls_keylog_ok.keys")]
    with open(plain, "rb") as stdin:
        got = subprocess.run([*args, "-", str(tls)], stdin=stdin, capture_output=True, env=env)
    assert got.returncode == 1, got.stderr
    assert b"2 connection(s), 1 failed login(s)" in got.stderr
    html = page.read_text(encoding="utf-8")
    assert html.count("<tr class=") == 2 == _data_rows(html)
    assert html.count("logged in over TLS in another connection of this capture") == 1


def test_json_array_streamed_is_the_same_document_and_closed_on_error(capsys):
    """``--format json`` writes its array record by record: the bytes of
    ``json_dumps(list, indent=2)``, and a run stopped by an error still leaves
    a valid array of what came before."""
    import json

    from mysqlwire.commands.common import emit_json
    from mysqlwire.views.escape import json_dumps

    recs = [{"id": 1, "user": "a\u0085b", "n": [1, {"x": None}]}, {"id": 2, "packets": []}, {}]
    for chunk in ([], recs[:1], recs):
        emit_json(iter(chunk), "json")
        assert capsys.readouterr().out == json_dumps(chunk, indent=2) + "\n"

    def failing():
        yield recs[0]
        yield recs[1]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        emit_json(failing(), "json")
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(recs[:2]))
