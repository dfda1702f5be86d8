"""The text view without colour (mysqlwire.views.plain) writes the bytes the rich
console wrote: every bundled capture, with packets and diagnosis, and hostile wire
strings (controls, tabs, bidi, wide and combining characters, trailing spaces, long
lines).  The reference is the rich console the view used before, built here."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from mysqlwire.dissect import dissect
from mysqlwire.model import Connection, Exchange
from mysqlwire.views.plain import PlainConsole, PlainLine
from mysqlwire.views.text import Renderer
from tests.test_startup_imports import python_output

REPO = Path(__file__).resolve().parent.parent


def _rich_renderer(buf) -> Renderer:
    r = Renderer(color=False, file=buf)
    r.console = Console(  # the console the text view printed on before
        file=buf, force_terminal=False, no_color=True, highlight=False, soft_wrap=True, emoji=False
    )
    return r


def _both(conns, packets: bool) -> tuple[str, str]:
    plain_buf, rich_buf = io.StringIO(), io.StringIO()
    plain, rich = Renderer(color=False, file=plain_buf), _rich_renderer(rich_buf)
    assert plain.console.__class__ is PlainConsole
    for r in (plain, rich):
        for c in conns:
            r.connection(c, packets=packets)
        r.footer([], len(conns))
    return plain_buf.getvalue(), rich_buf.getvalue()


def test_plain_text_equals_rich_on_every_bundled_capture():
    seen = 0
    for pcap in sorted((REPO / "captures").rglob("*.pcap")):
        try:
            conns = dissect(pcap, with_packets=True, detect=True)
        except Exception:  # noqa: BLE001 - hostile corpus files may be refused
            continue
        for packets in (False, True):
            plain, rich = _both(conns, packets)
            assert plain == rich, pcap.name
        seen += len(conns)
    assert seen > 250


HOSTILE = [
    "tab\there",
    "cr\rlf\nvt\x0bff\x0cbell\x07bs\x08",
    "esc\x1b[31mred\x9b1m",
    "bidi\u202eevil\u2066x\u2069",
    "wide \u65e5\u672c\u8a9e and combining e\u0301",
    "zero\u200bwidth",
    "trailing spaces   ",
    "long " + "x" * 300 + "   ",
    "",
    "\u3000ideographic space",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_plain_text_equals_rich_on_hostile_strings(value):
    c = Connection(id=1, client=f"10.0.0.1:{value}", server="10.0.0.2:3306")
    c.server_version = value
    c.protocol_version = 10
    c.thread_id = 7
    c.greeting_plugin = value
    c.first_ts, c.last_ts = 1.5, 2.25
    ex = Exchange(kind="login", nonce=None, user=value, database=value, client_plugin=value)
    ex.outcome = "error"
    ex.error = {"code": 1045, "sqlstate": value, "message": value}
    c.exchanges.append(ex)
    c.anomalies.append(value)
    c.command_error = {"code": 1, "sqlstate": value, "message": value}
    c.extra["diagnosis"] = [
        {"severity": "warning", "code": value, "title": value, "evidence": value, "fix": value}
    ]
    plain, rich = _both([c], packets=False)
    assert plain == rich
    assert plain.count("\n") >= 10


@pytest.mark.parametrize("value", HOSTILE)
def test_a_line_rich_would_change_is_written_as_rich_writes_it(value):
    """The console's own fallback: a line that is not printable text (the view never
    prints one) is written as rich would write it (tabs expanded, controls dropped)."""
    plain_buf, rich_buf = io.StringIO(), io.StringIO()
    PlainConsole(plain_buf).print(PlainLine("  ").append(value, style="bold"))
    from rich.text import Text

    _rich_renderer(rich_buf).console.print(Text("  ").append(value, style="bold"))
    assert plain_buf.getvalue() == rich_buf.getvalue()


def test_plain_console_answers_width_and_colour_like_rich():
    buf = io.StringIO()
    plain, rich = PlainConsole(buf), _rich_renderer(buf).console
    assert (plain.width, plain.color_system) == (rich.width, rich.color_system)
    plain.width = 132
    assert plain.width == 132


def test_text_output_without_colour_does_not_import_rich():
    pcap = REPO / "captures" / "lab-samples" / "mariadb_pymysql_native_ok.pcap"
    code = (
        "import sys, contextlib, io\n"
        "from mysqlwire.cli import main\n"
        f"sys.argv = ['mysqlwire', 'dissect', '--packets', {str(pcap)!r}]\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('rich' in sys.modules, 'connection(s) shown' in out.getvalue())\n"
    )
    assert python_output(code).split() == ["False", "True"]


def test_broken_pipe_exits_1_quietly_as_with_rich():
    """`mysqlwire dissect capture | head -1`: exit status 1, nothing on stderr."""
    pcap = REPO / "captures" / "lab-samples" / "mariadb_pymysql_native_ok.pcap"
    script = (
        f"{sys.executable} -m mysqlwire dissect {' '.join([str(pcap)] * 400)} 2>err.txt"
        " | head -c 10 >/dev/null; echo ${PIPESTATUS[0]}"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp)
        err = (Path(tmp) / "err.txt").read_text()
    assert res.stdout.strip() == "1" and err == ""


def test_an_unencodable_line_raises_what_rich_raised():
    """A stdout that cannot encode a wire character: the same error as rich's console."""
    from rich.text import Text

    plain = PlainConsole(io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    rich = _rich_renderer(io.TextIOWrapper(io.BytesIO(), encoding="ascii")).console
    with pytest.raises(UnicodeEncodeError) as plain_error:
        plain.print(PlainLine("  caf\u00e9"))
    with pytest.raises(UnicodeEncodeError) as rich_error:
        rich.print(Text("  caf\u00e9"))
    assert str(plain_error.value) == str(rich_error.value)
    assert "PYTHONIOENCODING=utf-8" in str(plain_error.value)
