"""The notebook-facing Python API: ``mysqlwire.open`` -> Capture, Connection
HTML views (ladder diagram), ``to_dataframe()``, and the progress helper."""

from __future__ import annotations

import io
import json
import re

import pytest

import mysqlwire
from mysqlwire.diagnose import diagnose_connections
from mysqlwire.notebook import (
    capture_html,
    connection_html,
    esc,
    ladder_svg,
    login_latency_ms,
    short_server,
    summary_row,
)
from mysqlwire.progress import counting_reader, file_sizes, progress, wanted

from .conftest import REPO
from .test_report import HOSTILE_USER, hostile_pcap

SAMPLES = REPO / "captures" / "lab-samples"
TRUTH = {
    json.loads(line)["pcap"]: json.loads(line)
    for line in (SAMPLES / "truth.jsonl").read_text().splitlines()
    if line.strip()
}


def _open(name: str, **kw):
    t = TRUTH[name]
    if t.get("keylog"):
        kw.setdefault("keylog", SAMPLES / t["keylog"])
    return mysqlwire.open(SAMPLES / name, ports=t["port"], **kw)


def test_open_capture_sequence_protocol():
    cap = _open("mariadb_pymysql_native_ok.pcap")
    assert "connections=?" in repr(cap)
    assert len(cap) == 1 and cap[0] is cap.connections[0]
    assert [c.id for c in cap] == [1]
    assert cap.connection(1) is cap[0]
    conn = cap[0]
    assert (conn.user, conn.outcome, conn.database) == ("app", "ok", "shop")
    assert conn.packets and conn.packets[0]["kind"] == "greeting"
    pw = TRUTH["mariadb_pymysql_native_ok.pcap"]["account_password"]
    assert conn.replay(password=pw).verdict == "PROOF_MATCHES"
    assert conn.replay(password="not it").verdict == "PROOF_MISMATCH"
    leaked = pw in json.dumps(conn.extra)  # not in the assert: pytest would print it
    assert not leaked


def test_replay_whole_capture_and_dataframe():
    pd = pytest.importorskip("pandas")
    cap = _open("mariadb_cli_native_wrong.pcap")
    verdicts = cap.replay(password=TRUTH["mariadb_cli_native_wrong.pcap"]["account_password"])
    assert [v.verdict for v in verdicts] == ["PROOF_MISMATCH"]
    diagnose_connections(cap.connections)
    df = cap.to_dataframe()
    assert isinstance(df, pd.DataFrame) and len(df) == 1
    for col in ("user", "outcome", "final_plugin", "server_version", "verdict", "top_finding"):
        assert col in df.columns
    assert df.loc[0, "verdict"] == "PROOF_MISMATCH"
    assert df.loc[0, "top_finding"] == "WRONG_PASSWORD"


def test_keylog_path_decrypts():
    cap = _open("mariadb_pymysql_tls_keylog_ok.pcap")
    conn = cap[0]
    assert conn.tls and conn.tls_info.get("decrypted")
    assert conn.outcome == "ok"
    html = conn._repr_html_()
    assert "TLS handshake (decrypted with the key log)" in html


def test_connection_repr_html_is_a_ladder_with_key_fields():
    cap = _open("m8emu_cli_sha2_full_plain.pcap")
    conn = cap[0]
    conn.replay(
        password=TRUTH["m8emu_cli_sha2_full_plain.pcap"]["account_password"],
        rsa_key=SAMPLES / "m8emu_server_rsa_private.pem",
    )
    html = conn._repr_html_()
    assert html == connection_html(conn)
    assert html.count("<svg") == 1 and "</svg>" in html
    # one arrow (polygon head) per packet at least
    assert html.count("<polygon") >= len(conn.packets)
    for text in (
        "1. seq=0 Greeting [caching_sha2_password]",
        "8.0.36",
        "user &#x27;sha2cold&#x27;",
        "01 04: full auth",
        "02: request the server&#x27;s RSA public key",
        "RSA public key (",
        "RSA-encrypted password (256 B)",
        "7. seq=6 OK",
        "\u2713 proof matches",
        "PROOF_MATCHES",
    ):
        assert text in html, text


def test_fast_auth_and_failure_colours():
    conn = _open("m8emu_pymysql_sha2_fast_ok.pcap")[0]
    svg = ladder_svg(conn)
    assert "01 03: fast auth ok" in svg
    bad = _open("mariadb_cli_native_wrong.pcap")[0]
    bad.replay(password=TRUTH["mariadb_cli_native_wrong.pcap"]["account_password"])
    svg = ladder_svg(bad)
    assert "ERR 1045 (28000)" in svg
    assert "#dc2626" in svg  # failures in red
    assert "\u2717 proof MISMATCH" in svg


def test_client_gave_up_and_switch():
    conn = _open("mariadb_connector_ed25519.pcap")[0]
    diagnose_connections([conn])
    html = conn._repr_html_()
    assert "AuthSwitchRequest \u2192 client_ed25519" in html
    assert "client gave up" in html
    assert "CLIENT_LACKS_PLUGIN" in html and "fix:" in html


def test_tls_without_keys_is_shaded_and_explained():
    cap = mysqlwire.open(SAMPLES / "mariadb_pymysql_tls_keylog_ok.pcap")  # no key log
    svg = ladder_svg(cap[0])
    assert "TLS: the login is encrypted" in svg
    assert "not decrypted (no-keys)" in svg
    assert 'fill="#ede9fe"' in svg  # the shaded TLS segment


def test_ladder_without_packets_falls_back_to_steps():
    cap = _open("mariadb_cli_ed25519.pcap", packets=False)
    conn = cap[0]
    assert conn.packets is None
    svg = ladder_svg(conn)
    assert "AuthSwitchRequest \u2192 client_ed25519" in svg and "OK" in svg


def test_change_user_drawn():
    conn = _open("lab_connector_change_user_ok.pcap")[0]
    assert "COM_CHANGE_USER" in ladder_svg(conn)


def test_capture_repr_html_summary_table():
    cap = _open("mariadb_pymysql_native_ok.pcap")
    html = cap._repr_html_()
    assert html == capture_html(cap)
    assert html.count("<tr") == 1 + len(cap)
    assert "mariadb_pymysql_native_ok.pcap" in html
    row = summary_row(cap[0])
    assert row["outcome"] == "ok" and row["user"] == "app"
    assert row["server_short"] == "MariaDB 10.11.19" == short_server(cap[0])
    assert row["latency_ms"] is not None and 0 <= row["latency_ms"] < 1000
    assert login_latency_ms(cap[0]) == pytest.approx(row["latency_ms"], abs=1e-3)


def test_capture_repr_html_of_a_big_capture_shows_the_first_rows(monkeypatch):
    """A notebook cell does not receive a 100 000-row table: the first
    CAPTURE_HTML_ROWS rows, and how many there are."""
    from mysqlwire.views import html as html_mod

    cap = _open("mariadb_pymysql_native_ok.pcap")
    many = [cap[0]] * 5

    class Big:
        connections = many
        summary = cap.summary
        path = "big.pcap"

    monkeypatch.setattr(html_mod, "CAPTURE_HTML_ROWS", 3)
    page = capture_html(Big())
    assert page.count("<tr") == 1 + 3
    assert "the first 3 of 5 connections" in page
    monkeypatch.setattr(html_mod, "CAPTURE_HTML_ROWS", 5)
    page = capture_html(Big())
    assert page.count("<tr") == 1 + 5 and "the first" not in page


def test_every_lab_sample_renders():
    for name, t in TRUTH.items():
        cap = _open(name)
        for conn in cap:
            html = conn._repr_html_()
            assert html.startswith("<style>") and html.endswith("</div></div>")
            pw = t.get("password")
            if pw and len(pw) >= 4:
                leaked = pw in html
                assert not leaked, name
        assert "<table" in cap._repr_html_() or len(cap) == 0


def test_hostile_strings_escaped_in_views(tmp_path):
    cap = mysqlwire.open(hostile_pcap(tmp_path / "h.pcap"))
    conn = cap[0]
    assert conn.user == HOSTILE_USER
    for html in (conn._repr_html_(), cap._repr_html_()):
        assert "<script" not in html and "<img" not in html
        assert "&lt;script&gt;" in html
    assert esc("<a href='x'>&\x00") == "&lt;a href=&#x27;x&#x27;&gt;&amp;\\x00"
    assert esc("x" * 50, 10) == "x" * 9 + "\u2026"
    assert esc(None) == "-"


# ---------------------------------------------------------------- progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_quiet_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("MYSQLWIRE_PROGRESS", raising=False)
    buf = io.StringIO()
    assert not wanted(buf)
    with progress(100, stream=buf) as p:
        p.advance(10)
        p.update(description="x")
        p.add_total(5)
        assert not p.enabled
    assert buf.getvalue() == ""


def test_progress_draws_on_a_terminal(monkeypatch):
    monkeypatch.delenv("MYSQLWIRE_PROGRESS", raising=False)
    buf = _Tty()
    assert wanted(buf)
    with progress(1000, "reading", stream=buf) as p:
        assert p.enabled
        p.advance(500)
        p.add_total(10)
        p.update(description="still reading")
    out = buf.getvalue()
    assert "reading" in out and "\x1b[" in out


def test_progress_env_override(monkeypatch):
    monkeypatch.setenv("MYSQLWIRE_PROGRESS", "0")
    assert not wanted(_Tty())
    monkeypatch.setenv("MYSQLWIRE_PROGRESS", "1")
    assert wanted(io.StringIO())


def test_counting_reader_advances_by_bytes_read(monkeypatch):
    monkeypatch.setenv("MYSQLWIRE_PROGRESS", "1")
    path = SAMPLES / "mariadb_pymysql_native_ok.pcap"
    size = path.stat().st_size
    assert file_sizes([path, path]) == 2 * size
    assert file_sizes(["-"]) is None
    assert file_sizes([path.parent / "missing.pcap"]) is None

    class Bar:
        n = 0

        def advance(self, k):
            self.n += k

    bar = Bar()
    from mysqlwire.dissect import CaptureSummary, DissectOptions, iter_connections

    with counting_reader(path, bar) as f:
        conns = list(iter_connections(f, DissectOptions(), CaptureSummary(path=str(path))))
    assert bar.n == size
    assert len(conns) == 1 and conns[0].capture == str(path)
    assert re.match(r"^\d+\.\d+\.\d+\.\d+:\d+$", conns[0].client)


def test_progress_leaves_redirected_stdout_alone(monkeypatch):
    import sys

    monkeypatch.delenv("MYSQLWIRE_PROGRESS", raising=False)
    piped = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stdout", piped)
    with progress(10, stream=_Tty()) as p:
        assert p.enabled
        assert sys.stdout is piped  # not routed to the bar's stream
        print("record")
    assert piped.getvalue() == "record\n"


def test_text_repr_of_a_connection_hides_auth_bytes():
    t = TRUTH["mysql8_cli_sha2_full_tls_keylog_ok.pcap"]
    conn = _open("mysql8_cli_sha2_full_tls_keylog_ok.pcap")[0]
    assert conn.tls_info.get("decrypted")
    leaked = t["account_password"] in repr(conn)  # never in the assert: pytest prints operands
    assert not leaked, "the account's password is in repr(connection)"
