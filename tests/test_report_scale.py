"""The report scales (#18 item 6): ladders collapsed in inert <template>s and
opened on demand, the table paged, ladders limited past a threshold, HTML
bounded per connection.  Figures at 100,000 connections: docs/limits.md."""

from __future__ import annotations

import re

import pytest

import mysqlwire
from mysqlwire.model import Connection
from mysqlwire.views import ladder
from mysqlwire.views import report as report_mod
from mysqlwire.views.html import connection_html

from .conftest import REPO
from .test_report import PICK, SAMPLES, _browse, _console_messages, chromium, parse, run_report  # noqa: F401


def _conns():
    out = []
    for name in PICK:
        cap = mysqlwire.open(SAMPLES / name, ports=(3306, 3407))
        cap.diagnose()
        out.extend(cap.connections)
    return out


@pytest.fixture(scope="module")
def conns():
    return _conns()


def test_ladders_are_inert_templates_opened_on_demand(conns):
    page = report_mod.build_report(conns)
    sections = re.findall(r'<section class="mw-sec" id="conn-(\d+)">(.*?)</section>', page, re.S)
    assert len(sections) == len(conns)
    for n, body in sections:
        assert body.count("<template>") == 1 and body.count("<svg") == 1
        assert f'data-open="{n}" aria-expanded="false"' in body
        # the ladder is inside the template; the slot it is copied into is empty
        assert re.search(r"<template>.*<svg.*</svg>.*</template>", body, re.S)
        assert body.endswith('<div class="mw-slot"></div>')


def test_past_the_threshold_only_problem_connections_get_a_ladder(conns, monkeypatch):
    monkeypatch.setattr(report_mod, "LADDERS_ALL", 3)
    monkeypatch.setattr(report_mod, "LADDERS_MAX", 2)
    problems = [i for i, c in enumerate(conns) if report_mod.has_problem(c)]
    assert len(problems) >= 3 and len(conns) > 3
    assert report_mod.choose_ladders(conns) == set(problems[:2])
    assert report_mod.choose_ladders(conns, "problems") == set(problems[:2])
    assert report_mod.choose_ladders(conns, "all") == set(range(len(conns)))
    assert report_mod.choose_ladders(conns, "none") == set()
    p = parse(report_mod.build_report(conns))
    assert len(p.rows) == len(conns)  # every connection keeps its row
    assert p.sections == [f"conn-{i + 1}" for i in problems[:2]]
    page = report_mod.build_report(conns)
    assert f"ladders for 2 of {len(conns)} connections" in page
    # only rows with a ladder link to one
    links = re.findall(r'href="#conn-(\d+)"', page)
    assert links == [str(i + 1) for i in problems[:2]]


def test_table_is_paged(conns, monkeypatch):
    """The HTML holds the first page only; every row is in the data block
    (tests/test_report_paging.py checks the block and the paging itself)."""
    monkeypatch.setattr(report_mod, "PAGE_ROWS", 4)
    page = report_mod.build_report(conns)
    p = parse(page)
    assert [r["data-n"] for r in p.rows] == ["1", "2", "3", "4"]
    assert len(p.data_blocks) == 1 and p.data_blocks[0].count("\n[") == len(conns)
    assert f"rows 1\u20134 of {len(conns)}" in page
    assert '<div class="mw-pager" id="mw-pager" data-size="4" hidden>' in page


def test_browser_pages_and_opens_a_ladder(chromium, conns, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(report_mod, "PAGE_ROWS", 4)
    monkeypatch.setattr(report_mod, "OPEN_AT_LOAD", 0)
    out = tmp_path / "r.html"
    out.write_text(report_mod.build_report(conns), encoding="utf-8")
    dom = _browse(chromium, tmp_path, out.resolve().as_uri() + "#conn-2", "--dump-dom")
    assert dom.returncode == 0 and _console_messages(dom.stderr) == []
    assert re.search(r'<html[^>]*\bdata-ready="1"', dom.stdout)
    p = parse(dom.stdout)
    assert len([r for r in p.rows if "hidden" not in r]) == 4
    assert f"rows 1\u20134 of {len(conns)} \u00b7 page 1 of {-(-len(conns) // 4)}" in dom.stdout
    # the ladder named in the URL was copied out of its template; the others were not
    slots = re.findall(r'<div class="mw-slot"[^>]*>(.*?)</div></section>', dom.stdout, re.S)
    opened = [i for i, s in enumerate(slots) if "<svg" in s]
    assert opened == [1]


def test_ladder_and_panel_bounded_per_connection():
    c = Connection(id=1, client="10.0.0.1:5000", server="10.0.0.2:3306", greeting_seen=True)
    c.packets = [
        {
            "ts": 1.0 + i / 1000,
            "sender": "client" if i % 2 else "server",
            "seq": i % 256,
            "kind": "auth_data" if i % 2 else "auth_more_data",
            "length": 100,
            "plugin": "dialog",
            "in_tls": False,
            "fields": {"header": 1, "data": {"hex": ("02" + "41" * 60)}} if i % 2 == 0 else None,
        }
        for i in range(1024)
    ]
    c.anomalies = [f"anomaly {i} " + "x" * 200 for i in range(64)]
    html = connection_html(c)
    assert html.count("<polygon") <= ladder.MAX_ROWS  # one arrow head per drawn row at most
    assert "more packets not drawn" in html
    assert "and 56 more anomalies" in html
    assert len(html) < 40_000


def test_report_ladders_option(tmp_path):
    out = tmp_path / "r.html"
    args = [str(SAMPLES / n) for n in PICK[:3]] + ["-o", str(out)]
    run_report([*args, "--ladders", "none"])
    p = parse(out.read_text())
    assert len(p.rows) == 3 and p.sections == []
    run_report([*args, "--ladders", "all"])
    assert len(parse(out.read_text()).sections) == 3


def test_midstream_connections_are_drawn_and_labelled(tmp_path):
    import os
    from pathlib import Path

    shared = Path(os.environ.get("MYSQLWIRE_SHARED", REPO.parent / "shared"))
    path = shared / "captures" / "public" / "dexas" / "mysql.pcap"
    if not path.is_file():
        pytest.skip("../shared missing")
    conns = mysqlwire.open(path).connections
    mid = [c for c in conns if c.outcome == "midstream"]
    assert mid
    html = connection_html(mid[0])
    assert "joined mid-stream" in html and "its login is not in it" in html
    assert '<span class="mw-badge mw-midstream">JOINED MID-STREAM</span>' in html
    page = report_mod.build_report(conns)
    assert page.count('<span class="mw-badge mw-midstream">joined mid-stream</span>') == len(mid)
