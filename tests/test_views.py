"""Views: escaping of hostile wire strings in text and JSON (#20 item 5), one
numbering from 1 (#18 item 3), a short ``repr`` and the leaf model (#17 item 4)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlwire.cli import cli
from mysqlwire.model import Connection
from mysqlwire.views.escape import UNSAFE_JSON_CHARS, clean, json_dumps

from .conftest import REPO
from .test_report import hostile_pcap

# C1 controls (CSI U+009B starts a terminal escape sequence), bidi overrides,
# isolates and marks, line separators, DEL.
NASTY = "a\u009b31mb\u202ec\u2066d\u2069e\u200ff\u2028g\u007fh\u0085i"


def test_json_dumps_escapes_c1_and_bidi_and_round_trips():
    out = json_dumps({"user": NASTY, "k\u202e": [NASTY]})
    assert all(ord(ch) < 0x7F or ord(ch) >= 0xA0 for ch in out)
    assert not any(ord(ch) in UNSAFE_JSON_CHARS for ch in out)
    assert "\\u009b" in out and "\\u202e" in out and "\\u2066" in out and "\\u2069" in out
    assert json.loads(out) == {"user": NASTY, "k\u202e": [NASTY]}
    # readable text stays readable (not \u-escaped like ensure_ascii would)
    assert json_dumps("caf\u00e9 \u65e5\u672c") == '"caf\u00e9 \u65e5\u672c"'


def test_every_bidi_control_and_c1_is_escaped():
    for cp in [*range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
        out = json_dumps(chr(cp))
        assert out == f'"\\u{cp:04x}"', hex(cp)


def test_clean_for_terminal():
    assert clean("x\u009by") == "x\\x9by"
    assert clean("x\u202ey") == "x\\u202ey"
    assert clean("x\u2067y\x1b[2J") == "x\\u2067y\\x1b[2J"
    assert clean("caf\u00e9") == "caf\u00e9"
    assert clean(None) == "-"


@pytest.fixture(scope="module")
def nasty_capture(tmp_path_factory):
    return hostile_pcap(tmp_path_factory.mktemp("nasty") / "nasty.pcap", user="app" + NASTY)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_dissect_json_output_has_no_raw_c1_or_bidi(nasty_capture, fmt):
    r = CliRunner().invoke(cli, ["dissect", "--format", fmt, str(nasty_capture)])
    assert r.exit_code == 1, r.output  # the login fails (ERR 1045)
    assert not any(ord(ch) in UNSAFE_JSON_CHARS for ch in r.stdout)
    recs = json.loads(r.stdout) if fmt == "json" else [json.loads(x) for x in r.stdout.splitlines()]
    assert recs[0]["user"] == "app" + NASTY  # the value itself is unchanged
    assert recs[0]["id"] == 1


def test_dissect_text_output_has_no_raw_c1_or_bidi(nasty_capture):
    r = CliRunner().invoke(cli, ["dissect", "--packets", str(nasty_capture)])
    assert not any(ord(ch) in UNSAFE_JSON_CHARS or ord(ch) < 0x20 and ch != "\n" for ch in r.stdout)
    assert "app" + clean(NASTY) in r.stdout
    assert r.stdout.startswith("#1 ")


def test_numbering_from_one_everywhere():
    cap = REPO / "captures" / "lab-samples" / "lab_connector_change_user_ok.pcap"
    import mysqlwire

    conns = mysqlwire.open(cap, detect=True).connections
    ids = [c.id for c in conns]
    assert ids == list(range(1, len(ids) + 1)) and ids
    r = CliRunner().invoke(cli, ["dissect", "--detect", "--format", "jsonl", str(cap)])
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == ids
    r = CliRunner().invoke(cli, ["dissect", "--detect", str(cap)])
    heads = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("#")]
    assert heads == [f"#{i}" for i in ids]


def test_connection_repr_is_short():
    c = Connection(id=3, client="10.0.0.1:5000", server="10.0.0.2:3306")
    assert (
        repr(c) == "<mysqlwire.Connection #3 '10.0.0.1:5000' -> '10.0.0.2:3306' outcome=incomplete>"
    )
    cap = REPO / "captures" / "lab-samples" / "m8emu_cli_sha2_full_plain.pcap"
    import mysqlwire

    conn = mysqlwire.open(cap, detect=True).connections[0]
    r = repr(conn)
    assert len(r) < 200, r
    assert r.startswith("<mysqlwire.Connection #1 ") and "outcome=ok" in r


def test_model_is_a_leaf():
    """mysqlwire/model.py imports nothing above the grammars (at any depth of
    the file: function-level imports count too)."""
    tree = ast.parse((REPO / "mysqlwire" / "model.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    allowed = {"__future__", "dataclasses", "typing", ".protocol"}
    assert imported <= allowed, imported - allowed
    # and importing it alone does not pull replay, views or diagnose in
    code = (
        "import sys, mysqlwire.model; "
        "print(sorted(m for m in sys.modules if m.startswith('mysqlwire.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(out.stdout))  # noqa: S307 - our own printed list
    for m in (
        "mysqlwire.replay",
        "mysqlwire.notebook",
        "mysqlwire.views",
        "mysqlwire.diagnose",
        "mysqlwire.views.text",
    ):
        assert m not in loaded


def test_api_attaches_replay_diagnose_and_html():
    import mysqlwire

    cap = mysqlwire.open(
        REPO / "captures" / "lab-samples" / "mariadb_cli_native_wrong.pcap", detect=True
    )
    conn = cap.connection(1)
    findings = conn.diagnose()
    assert findings and findings[0].code == conn.extra["diagnosis"][0]["code"]
    assert "<svg" in conn._repr_html_()
    assert conn.extra["client_fingerprint"]  # attached by the API, drawn by the view
    with pytest.raises(KeyError):
        cap.connection(0)


# ------------------------------------------------------------------ --packets tree

SAMPLES = REPO / "captures" / "lab-samples"


def _dissect(*args):
    return CliRunner().invoke(cli, ["dissect", "--detect", *args])


def test_packets_tree_rsa_full_auth():
    from cryptography.hazmat.primitives import serialization

    cap = str(SAMPLES / "m8emu_cli_sha2_full_plain.pcap")
    out = _dissect("--packets", cap).stdout
    lines = [line.strip() for line in out.splitlines()]
    # packet heads: numbered from 1, seq=N, lengths
    heads = [line for line in lines if "S->C" in line or "C->S" in line]
    assert heads[0].startswith("1  S->C  Greeting  seq=0  ")
    assert heads[1].startswith("2  C->S  HandshakeResponse41  seq=1  ")
    assert heads[2].startswith("3  S->C  AuthMoreData [caching_sha2_password]  seq=2  2 bytes")
    assert heads[3].startswith("4  C->S  Auth data [caching_sha2_password]  seq=3  1 byte  ")
    assert heads[5].startswith("6  C->S  Auth data [caching_sha2_password]  seq=5  256 bytes")
    assert "Data: 1 byte: 04 = perform full authentication: send the password (TLS or RSA)" in lines
    assert "Data: 1 byte (redacted): 02: request the server's RSA public key" in lines
    assert "Data: 256 bytes (redacted): RSA-encrypted password" in lines
    # the PEM key as text, equal to the lab server's public key (independent truth)
    priv = serialization.load_pem_private_key(
        (SAMPLES / "m8emu_server_rsa_private.pem").read_bytes(), None
    )
    pem = (
        priv.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    start = lines.index("-----BEGIN PUBLIC KEY-----")
    assert lines[start : start + len(pem.splitlines())] == pem.splitlines()
    # each capability flag named once per packet (not lower/upper/merged three times)
    greeting = out.split(" 2  C->S")[0]
    assert greeting.count("CLIENT_PROTOCOL_41") == 1
    assert greeting.count("CLIENT_PLUGIN_AUTH,") + greeting.count("CLIENT_PLUGIN_AUTH\n") == 1
    assert "{" not in out  # no JSON in the text view


def test_packets_tree_redacts_secrets_unless_asked():
    cap = str(SAMPLES / "mariadb_cli_ed25519.pcap")
    shown = json.loads(_dissect("--packets", "--show-secrets", "--format", "jsonl", cap).stdout)
    proof_hex = shown["packets"][1]["fields"]["auth_response"]["hex"]
    sig = bytes.fromhex(shown["packets"][3]["data"]["hex"])
    assert len(bytes.fromhex(proof_hex)) == 20 and len(sig) == 64
    text = _dissect("--packets", cap).stdout
    assert "Auth response: 20 bytes (redacted): mysql_native_password proof" in text
    assert "Data: 64 bytes (redacted): ed25519 signature" in text
    for secret in (bytes.fromhex(proof_hex), sig):
        assert secret.hex(" ")[:20] not in text and secret.hex()[:16] not in text
    text = _dissect("--packets", "--show-secrets", cap).stdout
    assert bytes.fromhex(proof_hex).hex(" ") in text
    # the switch's nonce is said to be one
    assert "Plugin data: 32 bytes: nonce for the ed25519 signature: 32 bytes" in text


def test_json_packets_numbered_from_one():
    cap = str(SAMPLES / "m8emu_cli_sha2_full_plain.pcap")
    rec = json.loads(_dissect("--packets", "--format", "jsonl", cap).stdout)
    assert [p["n"] for p in rec["packets"]] == list(range(1, len(rec["packets"]) + 1))
    assert [p["seq"] for p in rec["packets"][:7]] == [0, 1, 2, 3, 4, 5, 6]


def test_packets_tree_fast_auth_and_dialog_meaning():
    from mysqlwire.views.packets import server_data_meaning

    assert server_data_meaning("caching_sha2_password", "auth_more_data", b"\x03")[0].startswith(
        "03 = fast authentication succeeded"
    )
    assert server_data_meaning("dialog", "auth_switch_request", b"\x04Password: ")[0] == (
        "prompt 'Password: ' (04 = password question, echo off)"
    )
    assert server_data_meaning("dialog", "auth_more_data", b"\x03OTP: ")[0] == (
        "prompt 'OTP: ' (03 = ordinary question, echo on, last question)"
    )
    out = _dissect("--packets", str(SAMPLES / "m8emu_pymysql_sha2_fast_ok.pcap")).stdout
    assert "Data: 1 byte: 03 = fast authentication succeeded (cached hash), OK follows" in out


LINT_CONFIG = """
[importlinter]
root_package = mysqlwire

[importlinter:contract:model]
name = the model is a leaf: nothing above the grammars
type = forbidden
source_modules = mysqlwire.model
forbidden_modules =
    mysqlwire.api
    mysqlwire.views
    mysqlwire.notebook
    mysqlwire.diagnose
    mysqlwire.replay
    mysqlwire.dissect
    mysqlwire.handshake

[importlinter:contract:views]
name = views show and compute nothing (no diagnose, replay or api)
type = forbidden
source_modules =
    mysqlwire.views
    mysqlwire.notebook
forbidden_modules =
    mysqlwire.api
    mysqlwire.diagnose
    mysqlwire.replay
    mysqlwire.commands
    mysqlwire.cli
"""


def test_import_contracts_of_model_and_views(tmp_path):
    """import-linter (``lint-imports``) checks the leaf model and the views'
    imports, function-level imports included."""
    import shutil

    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("lint-imports (import-linter) is not installed")
    cfg = tmp_path / ".importlinter"
    cfg.write_text(LINT_CONFIG)
    env = dict(__import__("os").environ, PYTHONPATH=str(REPO))
    res = subprocess.run([exe, str(cfg)], capture_output=True, text=True, cwd=REPO, env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in res.stdout


def test_capture_replay_with_secrets_and_short_repr():
    import mysqlwire
    from mysqlwire.api import make_secrets

    truth = {
        json.loads(line)["pcap"]: json.loads(line)
        for line in (SAMPLES / "truth.jsonl").read_text().splitlines()
        if line.strip()
    }
    name = "mariadb_pymysql_native_ok.pcap"
    pw = truth[name]["account_password"]
    cap = mysqlwire.open(SAMPLES / name)
    assert repr(cap) == f"<mysqlwire.Capture {name!r} connections=?>"
    assert [v.verdict for v in cap.replay(secrets=make_secrets(pw))] == ["PROOF_MATCHES"]
    assert [v.verdict for v in cap.replay(candidates=["nope", pw])] == ["PROOF_MATCHES"]
    assert cap.replay(candidates=["nope", pw])[0].matched_candidate == 2
    with pytest.raises(TypeError):
        cap.replay("x", secrets=make_secrets(pw))
    assert repr(cap) == f"<mysqlwire.Capture {name!r} connections=1>"
    leaked = pw in repr(make_secrets(pw)) or pw in repr(cap.connection(1))
    assert not leaked


def test_open_is_documented_with_real_parameters():
    import inspect

    import mysqlwire

    sig = inspect.signature(mysqlwire.open)
    assert not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    for name in ("ports", "detect", "keylog", "packets", "show_secrets", "max_packet"):
        assert name in sig.parameters and f":param {name}:" in mysqlwire.open.__doc__
    assert "from 1" in mysqlwire.Capture.connection.__doc__


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary()), st.one_of(st.none(), st.integers(1, 40)))
def test_esc_is_html_escape_of_the_clean_text(value, limit):
    """esc() escapes as html.escape(quote=True) does (it no longer imports html)."""
    import html

    from mysqlwire.views.escape import clean, esc

    s = clean(value)
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 1)] + "\u2026"
    assert esc(value, limit) == html.escape(s, quote=True)


def test_format_ip_without_socket():
    import socket

    from mysqlwire.capture.decode import format_ip

    for raw in (b"\0\0\0\0", b"\x7f\0\0\x01", b"\xff\xff\xff\xff", b"\x0a\xc8\x05\x10"):
        assert format_ip(raw) == socket.inet_ntoa(raw)
    assert format_ip(bytes(15) + b"\x01") == "::1"
