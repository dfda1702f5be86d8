"""``mysqlwire report``: one self-contained HTML file, checked for structure,
escaping of hostile wire strings, secrets, exit codes and in a real headless
browser (Debian's ``chromium``): the page's script runs without a console
error, filters work, and a screenshot lands in ``out/report.png``.

The browser tests skip when chromium is missing, except in CI (``CI`` set),
where a missing browser fails: ``scripts/browser_setup.sh`` installs it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

import mysqlwire
from mysqlwire.cli import cli
from mysqlwire.views.report import REPORT_SCRIPT

from .conftest import REPO

SAMPLES = REPO / "captures" / "lab-samples"
OUT = REPO / "out"

# A mix: ok, wrong password, client lacks plugin, pre-greeting error on
# another port, TLS with a key log, caching_sha2 full auth over RSA.
PICK = [
    "mariadb_pymysql_native_ok.pcap",
    "mariadb_cli_native_wrong.pcap",
    "mariadb_connector_ed25519.pcap",
    "mariadb_cli_ed25519.pcap",
    "mariadb_pymysql_host_not_allowed.pcap",
    "mariadb_pymysql_tls_keylog_ok.pcap",
    "m8emu_cli_sha2_full_plain.pcap",
    "m8emu_pymysql_sha2_fast_ok.pcap",
    "lab_connector_change_user_ok.pcap",
]

HOSTILE_USER = "<script>alert('u')</script>&\"x\x07"
HOSTILE_VERSION = "8.0.36-<img src=x onerror=alert(1)>"
HOSTILE_MESSAGE = "Access denied for user '</text><script>alert(2)</script>'"


def _truth() -> dict[str, dict]:
    out = {}
    for line in (SAMPLES / "truth.jsonl").read_text().splitlines():
        if line.strip():
            t = json.loads(line)
            out[t["pcap"]] = t
    return out


TRUTH = _truth()


# ---------------------------------------------------------------- hostile pcap


def _mysql(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def _ip_checksum(hdr: bytes) -> int:
    s = sum(struct.unpack("!10H", hdr))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _frame(src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int, data=b""):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(data)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        total,
        1,
        0,
        64,
        6,
        0,
        src.to_bytes(4, "big"),
        dst.to_bytes(4, "big"),
    )
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"
    return eth + ip + tcp + data


def hostile_pcap(path: Path, *, user: str = HOSTILE_USER) -> Path:
    """A MySQL login whose server version, user, plugin name and error message
    are HTML/JS injection attempts (what a malicious server or client can send)."""
    nonce = bytes(range(1, 21))
    caps = 0x00000001 | 0x00000200 | 0x00008000 | 0x00080000  # LONG_PASSWORD|41|SECURE|PLUGIN_AUTH
    greeting = (
        b"\x0a"
        + HOSTILE_VERSION.encode()
        + b"\x00"
        + struct.pack("<I", 7)
        + nonce[:8]
        + b"\x00"
        + struct.pack("<H", caps & 0xFFFF)
        + b"\x21"
        + struct.pack("<H", 2)
        + struct.pack("<H", caps >> 16)
        + bytes([21])
        + b"\x00" * 10
        + nonce[8:]
        + b"\x00"
        + b"mysql_native_password\x00"
    )
    response = (
        struct.pack("<IIB", caps, 1 << 24, 0x21)
        + b"\x00" * 23
        + user.encode()
        + b"\x00"
        + bytes([20])
        + bytes(20)
        + b"mysql_native_password\x00"
    )
    err = b"\xff" + struct.pack("<H", 1045) + b"#28000" + HOSTILE_MESSAGE.encode()
    c, s = 0x0A000001, 0x0A000002
    cp, sp = 40000, 3306
    cseq, sseq = 1000, 5000
    frames = [
        _frame(c, s, cp, sp, cseq, 0, 0x02),
        _frame(s, c, sp, cp, sseq, cseq + 1, 0x12),
        _frame(c, s, cp, sp, cseq + 1, sseq + 1, 0x10),
    ]
    cseq, sseq = cseq + 1, sseq + 1
    for sender, payload in (
        ("s", _mysql(0, greeting)),
        ("c", _mysql(1, response)),
        ("s", _mysql(2, err)),
    ):
        if sender == "s":
            frames.append(_frame(s, c, sp, cp, sseq, cseq, 0x18, payload))
            sseq += len(payload)
        else:
            frames.append(_frame(c, s, cp, sp, cseq, sseq, 0x18, payload))
            cseq += len(payload)
    frames.append(_frame(s, c, sp, cp, sseq, cseq, 0x11))
    frames.append(_frame(c, s, cp, sp, cseq, sseq + 1, 0x11))
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000, 1000 * i, len(f), len(f)) + f)
    path.write_bytes(b"".join(out))
    return path


# ---------------------------------------------------------------- helpers


class _Page(HTMLParser):
    """Collects what the tests look at: elements by tag, rows of the summary
    table, sections, every <script> and data-* attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: dict[str, int] = {}
        self.scripts: list[str] = []
        self.data_blocks: list[str] = []  # <script type="application/json">: never run
        self._in_script = False
        self._script_list = self.scripts
        self._in_summary_body = False
        self._table_depth = 0
        self.rows: list[dict] = []
        self.sections: list[str] = []
        self.html_attrs: dict = {}
        self.meta_csp: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "script":
            self._in_script = True
            data = a.get("type") == "application/json"
            self._script_list = self.data_blocks if data else self.scripts
            self._script_list.append("")
        if tag == "html":
            self.html_attrs = a
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.meta_csp = a.get("content")
        if tag == "table" and a.get("id") == "mw-summary":
            self._table_depth = 1
        elif tag == "table" and self._table_depth:
            self._table_depth += 1
        if tag == "tbody" and self._table_depth == 1:
            self._in_summary_body = True
        if tag == "tr" and self._in_summary_body:
            self.rows.append(a)
        if tag == "section" and a.get("id", "").startswith("conn-"):
            self.sections.append(a["id"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag == "tbody":
            self._in_summary_body = False
        if tag == "table" and self._table_depth:
            self._table_depth -= 1

    def handle_data(self, data):
        if self._in_script:
            self._script_list[-1] += data
        else:
            self.text.append(data)


def parse(html_text: str) -> _Page:
    p = _Page()
    p.feed(html_text)
    p.close()
    return p


def run_report(args: list[str], *, env: dict | None = None):
    return CliRunner().invoke(cli, ["report", *args], env=env, catch_exceptions=False)


def _secrets_file(tmp_path: Path, pcaps: list[str]) -> Path:
    by_user = {}
    for name in pcaps:
        t = TRUTH[name]
        if t.get("account_password") is not None and t.get("user"):
            by_user[t["user"]] = t["account_password"]
    p = tmp_path / "secrets.json"
    p.write_text(json.dumps(by_user))
    return p


def _sample_args(tmp_path: Path, out: Path) -> list[str]:
    args = [str(SAMPLES / n) for n in PICK]
    args += ["--port", "3306", "--port", "3407"]
    args += ["--keylog", str(SAMPLES / "mariadb_pymysql_tls_keylog_ok.keys")]
    args += ["--rsa-key", str(SAMPLES / "m8emu_server_rsa_private.pem")]
    args += ["--secrets", str(_secrets_file(tmp_path, PICK)), "-o", str(out)]
    return args


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "report.html"
    res = run_report(_sample_args(tmp, out))
    assert res.exit_code == 1, res.output  # wrong password / client lacks plugin are in it
    assert out.is_file()
    return out, out.read_text(encoding="utf-8")


def _expected_connections() -> int:
    n = 0
    for name in PICK:
        port = TRUTH[name]["port"]
        n += len(mysqlwire.open(SAMPLES / name, ports=(port,)).connections)
    return n


# ---------------------------------------------------------------- structure


def test_one_row_and_one_section_per_connection(sample_report):
    _, page = sample_report
    p = parse(page)
    n = _expected_connections()
    assert n == len(PICK)
    assert len(p.rows) == n
    assert len(p.sections) == n
    assert [r["data-n"] for r in p.rows] == [s.removeprefix("conn-") for s in p.sections]
    outcomes = {r["data-outcome"] for r in p.rows}
    assert outcomes == {"ok", "error", "incomplete"}
    assert {"mysql_native_password", "client_ed25519", "caching_sha2_password"} <= {
        r["data-plugin"] for r in p.rows
    }
    # every connection has its ladder diagram (inline SVG), filters exist
    assert p.tags.get("svg") == n
    for ident in ('id="f-outcome"', 'id="f-plugin"', 'id="f-verdict"', 'id="f-user"'):
        assert ident in page


def test_report_shows_verdicts_diagnosis_and_key_fields(sample_report):
    _, page = sample_report
    for text in (
        "PROOF_MATCHES",
        "PROOF_MISMATCH",
        "CLIENT_LACKS_PLUGIN",
        "WRONG_PASSWORD",
        "01 04: full auth",
        "RSA public key (",
        "RSA-encrypted password (256 B)",
        "AuthSwitchRequest \u2192 client_ed25519",
        "TLS handshake (decrypted with the key log)",
        "COM_CHANGE_USER",
        "client gave up",
    ):
        assert text in page, text


def test_self_contained_no_network(sample_report):
    _, page = sample_report
    p = parse(page)
    # nothing loaded from anywhere: no src/href to a URL, no @import, no external fonts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and "url(" not in page
    assert p.tags.get("link", 0) == 0 and p.tags.get("iframe", 0) == 0
    # only our script, pinned by its hash in the CSP
    assert p.scripts == [REPORT_SCRIPT]
    digest = base64.b64encode(hashlib.sha256(REPORT_SCRIPT.encode()).digest()).decode()
    assert p.meta_csp and f"'sha256-{digest}'" in p.meta_csp
    assert "default-src 'none'" in p.meta_csp


def test_no_secret_in_report(sample_report):
    _, page = sample_report
    for name in PICK:
        for key in ("password", "account_password"):
            pw = TRUTH[name].get(key)
            if pw and len(pw) >= 4:
                leaked = pw in page  # not in the assert: pytest would print the password
                assert not leaked, f"{name}: {key} leaked"
    assert "redacted" in page


def test_hostile_wire_strings_are_escaped(tmp_path):
    pcap = hostile_pcap(tmp_path / "hostile.pcap")
    conns = mysqlwire.open(pcap).connections
    assert len(conns) == 1 and conns[0].user == HOSTILE_USER
    assert conns[0].server_version == HOSTILE_VERSION
    out = tmp_path / "r.html"
    res = run_report([str(pcap), "-o", str(out)])
    assert res.exit_code == 1, res.output
    page = out.read_text(encoding="utf-8")
    p = parse(page)
    assert p.scripts == [REPORT_SCRIPT]  # no injected <script> element
    assert p.tags.get("img", 0) == 0  # no injected <img onerror=...>
    for raw in ("<script>alert", "<img src=x", "</text><script>", "alert('u')</script>"):
        assert raw not in page
    assert "&lt;script&gt;alert(&#x27;u&#x27;)&lt;/script&gt;" in page
    assert "\\x07" in page  # control characters shown, not emitted
    assert "\x07" not in page
    # the text content (what a browser shows) still has the user name
    assert any(HOSTILE_USER.replace("\x07", "\\x07") in t for t in p.text)


def test_hostile_in_jupyter_repr(tmp_path):
    cap = mysqlwire.open(hostile_pcap(tmp_path / "hostile.pcap"))
    for html_text in (cap._repr_html_(), cap.connections[0]._repr_html_()):
        p = parse(html_text)
        assert p.tags.get("script", 0) == 0 and p.tags.get("img", 0) == 0
        assert "<script>" not in html_text


def test_usage_errors_exit_2(tmp_path):
    res = run_report([str(tmp_path / "missing.pcap"), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 2
    assert "no such file" in res.output
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all" * 10)
    res = run_report([str(bad), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 2
    assert not (tmp_path / "r.html").exists()


def test_exit_0_when_every_login_is_fine_and_stdout(tmp_path):
    name = "mariadb_pymysql_native_ok.pcap"
    pw = tmp_path / "pw"
    pw.write_text(TRUTH[name]["account_password"] + "\n")
    res = run_report([str(SAMPLES / name), "--password-file", str(pw), "-o", "-"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("<!DOCTYPE html>")
    assert "PROOF_MATCHES" in res.stdout
    assert "report written to stdout: 1 connection(s), 0 failed" in res.stderr


def test_failed_and_user_filters(tmp_path):
    out = tmp_path / "r.html"
    args = _sample_args(tmp_path, out) + ["--failed"]
    run_report(args)
    rows = parse(out.read_text()).rows
    assert rows and all(r["data-outcome"] != "ok" for r in rows)
    args = _sample_args(tmp_path, out) + ["--user", "edu"]
    run_report(args)
    rows = parse(out.read_text()).rows
    assert rows and {r["data-user"] for r in rows} == {"edu"}


def test_no_progress_output_when_piped(tmp_path):
    out = tmp_path / "r.html"
    res = run_report([str(SAMPLES / "mariadb_pymysql_native_ok.pcap"), "-o", str(out)])
    assert res.exit_code == 0
    assert "\x1b[" not in res.stderr and "reading captures" not in res.stderr
    assert res.stderr.strip().startswith("mysqlwire: report written to")


# ---------------------------------------------------------------- browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (run scripts/browser_setup.sh)")
        pytest.skip(
            "chromium is not installed: run scripts/browser_setup.sh (apt-get install chromium)"
        )
    return path


def _browse(chromium: str, tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)


def _console_messages(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if ":CONSOLE" in line or "Uncaught" in line or "Content Security Policy" in line
    ]


def _summary_rows(page: str) -> list[str]:
    start = page.index('id="mw-summary"')
    return re.findall(r"<tr class=.*?</tr>", page[start : page.index("</tbody>", start)])


def test_browser_loads_without_console_errors_and_screenshot(chromium, sample_report, tmp_path):
    path, _ = sample_report
    url = path.resolve().as_uri()
    dom = _browse(chromium, tmp_path, url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console_messages(dom.stderr) == []
    assert re.search(r'<html[^>]*\bdata-ready="1"', dom.stdout), (
        "the report's script did not finish"
    )
    assert f"{len(PICK)} of {len(PICK)} connection(s) shown" in dom.stdout
    # the script draws the rows exactly as the HTML has them: a report of one
    # page looks as it did before the table was paged
    page = sample_report[1]
    assert _summary_rows(dom.stdout) == _summary_rows(page)
    assert len(_summary_rows(page)) == len(PICK)

    OUT.mkdir(exist_ok=True)
    png = tmp_path / "report.png"
    shot = _browse(chromium, tmp_path, url, f"--screenshot={png}", "--window-size=1280,2000")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert _console_messages(shot.stderr) == []
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # a rendered page, not a blank one
    shutil.copyfile(png, OUT / "report.png")
    shutil.copyfile(path, OUT / "report.html")


def test_browser_filters_and_sort_from_query(chromium, sample_report, tmp_path):
    path, _ = sample_report
    url = path.resolve().as_uri() + "?outcome=error&sort=latency_ms&desc=1"
    dom = _browse(chromium, tmp_path, url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console_messages(dom.stderr) == []
    p = parse(dom.stdout)
    visible = [r for r in p.rows if "hidden" not in r]
    assert visible and all(r["data-outcome"] == "error" for r in visible)
    # only the matching rows are drawn (every row is in the data block)
    assert not any("hidden" in r for r in p.rows)
    (block,) = parse(sample_report[1]).data_blocks
    data = json.loads(block)
    at = data["fields"].index("outcome")
    outcomes = [r[at] for r in data["rows"]]  # shared: an index in data["strings"]
    outcomes = [data["strings"]["outcome"][o] if isinstance(o, int) else o for o in outcomes]
    errors = [o for o in outcomes if o == "error"]
    assert len(visible) == len(errors)
    assert f"{len(visible)} of {len(PICK)} connection(s) shown" in dom.stdout
    # sections of hidden rows are hidden too
    hidden_sections = re.findall(r'<section class="mw-sec" id="(conn-\d+)" hidden', dom.stdout)
    assert len(hidden_sections) == len(PICK) - len(visible)
    # sorted by login ms, descending (rows without a value last)
    lat = re.findall(r'<td class="mw-num" data-v="([0-9.]+)">[0-9.]+</td></tr>', dom.stdout)
    values = [float(v) for v in lat]
    assert values == sorted(values, reverse=True)


def test_browser_hostile_page_runs_only_our_script(chromium, tmp_path):
    pcap = hostile_pcap(tmp_path / "hostile.pcap")
    out = tmp_path / "r.html"
    run_report([str(pcap), "-o", str(out)])
    dom = _browse(chromium, tmp_path, out.resolve().as_uri(), "--dump-dom")
    assert dom.returncode == 0
    assert _console_messages(dom.stderr) == []
    assert re.search(r'<html[^>]*\bdata-ready="1"', dom.stdout)
    assert "<script>alert" not in dom.stdout


def _run_with_tty_stderr(args: list[str]) -> tuple[int, bytes, bytes]:
    """Run the real CLI with stderr on a pseudo-terminal and stdout on a pipe."""
    import pty
    import select
    import sys

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "MYSQLWIRE_PROGRESS"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from mysqlwire.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(slave)
    tty = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        tty += chunk
    out = proc.stdout.read()
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, out, tty


def test_progress_bar_on_a_terminal_only(tmp_path):
    pcap = str(SAMPLES / "mariadb_pymysql_native_ok.pcap")
    rc, out, tty = _run_with_tty_stderr(["report", pcap, "-o", "-"])
    assert rc == 0
    assert b"reading captures" in tty and b"\x1b[" in tty  # the bar, on stderr
    assert b"report written to stdout" in tty
    assert (
        out.startswith(b"<!DOCTYPE html>") and b"reading captures" not in out
    )  # stdout: pure HTML
