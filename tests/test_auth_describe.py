"""Plugins say what their bytes mean; the views only show it (issue #17, item 1).

A plugin the views have never heard of gets its meanings into the packet tree, the
ladder and the text summary by declaring them in its own module: nothing in
``mysqlwire/views`` names a plugin or tests a plugin-data byte.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import mysqlwire.auth as auth
from mysqlwire.auth.base import AuthPlugin, Meaning
from mysqlwire.model import AuthStep, Connection, Exchange

VIEWS = pathlib.Path(auth.__file__).parent.parent / "views"
NEW = "authentication_toy_client"  # a name no module of the package knows


class ToyPlugin(AuthPlugin):
    """Server ``01 07``: 'send the token'; ``01 08``: 'token accepted' (login done);
    the client answers with a token, described by the stage the server moved it to."""

    name = NEW

    def describe(self, sender, kind, data, *, length=None, stage=None, in_tls=False):
        if sender == "server":
            if data == b"\x07":
                return Meaning("07 = send the toy token", "01 07: toy token wanted", stage="token")
            if data == b"\x08":
                return Meaning("08 = toy token accepted", "01 08: toy ok", success=True)
            return None
        n = len(data) if data is not None else length
        if stage == "token":
            return Meaning(f"toy token (redacted, {n} B)")
        return Meaning(f"toy greeting answer ({n} B)")


def _conn() -> Connection:
    steps = [
        AuthStep("client", "handshake_response", 1, NEW, b"\x11" * 5, 1.0),
        AuthStep("server", "auth_more_data", 2, NEW, b"\x07", 1.1),
        AuthStep("client", "auth_data", 3, NEW, b"\x22" * 9, 1.2),
        AuthStep("server", "auth_more_data", 4, NEW, b"\x08", 1.3),
    ]
    ex = Exchange("login", b"n" * 20, user="u", client_plugin=NEW, auth_plugin=NEW, steps=steps)
    conn = Connection(id=1, client="10.0.0.1:5000", server="10.0.0.2:3306", exchanges=[ex])
    conn.packets = []
    for s in steps:
        p = {
            "ts": s.ts,
            "sender": s.sender,
            "seq": s.seq,
            "kind": s.kind,
            "length": len(s.data) + (s.sender == "server"),
            "plugin": NEW,
            "in_tls": False,
        }
        if s.sender == "server":
            p["fields"] = {"header": 1, "data": {"hex": s.data.hex()}}
        elif s.kind == "auth_data":
            p["data"] = {"redacted": True, "length": len(s.data)}
        else:
            p["fields"] = {"username": "u", "client_plugin": NEW}
        conn.packets.append(p)
    return conn


@pytest.fixture
def toy(monkeypatch):
    assert auth.get_plugin(NEW) is None
    monkeypatch.setitem(auth.PLUGINS, NEW, ToyPlugin())
    return _conn()


def test_new_plugin_meanings_reach_the_tree_without_touching_views(toy):
    from mysqlwire.views.tree import packet_tree

    lines = [text for _, text, _ in packet_tree(toy)]
    assert "Data: 1 byte: 07 = send the toy token" in lines
    # the client's answer is read in the stage the server's 07 moved the plugin to
    assert "Data: 9 bytes (redacted): toy token" in lines
    assert "Data: 1 byte: 08 = toy token accepted" in lines


def test_new_plugin_meanings_reach_the_ladder(toy):
    from mysqlwire.views.ladder import ladder_svg

    svg = ladder_svg(toy)
    assert "01 07: toy token wanted" in svg
    assert "toy token (redacted, 9 B)" in svg
    assert "01 08: toy ok" in svg
    assert "#15803d" in svg  # the plugin said the login succeeded: drawn as OK


def test_without_the_plugin_the_views_fall_back_to_lengths():
    from mysqlwire.views.tree import packet_tree

    lines = [text for _, text, _ in packet_tree(_conn())]
    assert "Data: 1 byte" in lines
    assert not any("toy token" in line for line in lines)
    assert "Data: 9 bytes (redacted): authentication_toy_client proof" in lines


@pytest.mark.parametrize(
    ("plugin", "sender", "kind", "data", "stage", "text"),
    [
        (
            "caching_sha2_password",
            "server",
            "auth_more_data",
            b"\x04",
            None,
            "04 = perform full authentication: send the password (TLS or RSA)",
        ),
        ("caching_sha2_password", "client", "auth_data", b"\x02", None,
         "02: request the server's RSA public key"),
        ("sha256_password", "client", "auth_data", b"\x01", None,
         "01: request the server's RSA public key"),
        ("caching_sha2_password", "client", "auth_data", b"x" * 256, "rsa",
         "RSA-encrypted password (256 B)"),
        ("caching_sha2_password", "client", "auth_data", b"pw\x00", "full",
         "clear-text password over TLS (redacted, 3 B)"),
        ("mysql_clear_password", "client", "auth_data", b"pw\x00", None,
         "clear-text password (redacted, 3 B)"),
        ("mysql_old_password", "server", "auth_switch_request", b"12345678" * 2 + b"1234\x00", None,
         "nonce (first 8 bytes used): 20 bytes + NUL"),
        ("mysql_native_password", "server", "auth_switch_request", b"a" * 20 + b"\x00", None,
         "new nonce: 20 bytes + NUL"),
        ("client_ed25519", "client", "auth_data", b"s" * 64, None, "ed25519 signature (64 B)"),
        (None, "client", "auth_data", b"", None, "empty (no password / no answer)"),
        ("no_such_plugin", "server", "auth_switch_request", b"abc\x00", None,
         "3 bytes + NUL for no_such_plugin"),
    ],
)  # fmt: skip
def test_each_plugin_module_declares_its_meanings(plugin, sender, kind, data, stage, text):
    assert auth.describe(plugin, sender, kind, data, stage=stage).text == text


def test_key_request_inside_tls_is_no_key_request():
    m = auth.describe("sha256_password", "client", "auth_data", b"\x01", in_tls=True)
    assert m.stage is None and m.text == "proof 1 B (redacted)"


def test_views_name_no_plugin_and_test_no_plugin_byte():
    """No module of the views compares a plugin name or a one-byte plugin marker."""
    names = {n for n in auth.KNOWN_PLUGINS}
    for path in VIEWS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in names, (path.name, node.value)
            if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
                assert node.value not in (b"\x01", b"\x02", b"\x03", b"\x04"), path.name


def test_diagnose_rules_ask_the_plugin_for_marker_bytes():
    """diagnose's rules read 01 03 / 01 04 / the PEM key / the key request through the
    plugin's meaning codes (``Facts.means``), never by comparing bytes themselves."""
    rules = VIEWS.parent / "diagnose" / "rules"
    for path in rules.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
                assert node.value not in (b"\x01", b"\x02", b"\x03", b"\x04"), path.name
                assert not node.value.startswith(b"-----BEGIN"), path.name


def test_plugins_say_which_answers_an_eavesdropper_can_crack():
    """What a proof is belongs to the plugin: diagnose's OFFLINE_CRACKABLE_PROOF asks it."""
    nonce = bytes(range(20))
    flow = auth.Flow("caching_sha2_password", nonce + b"\0", nonce=nonce)
    sha2 = flow.plugin
    assert sha2.crackable(flow.client("handshake_response", b"s" * 32))  # fast-path scramble
    flow.server("auth_more_data", b"\x04")
    flow.client("auth_data", b"\x02")
    flow.server("auth_more_data", b"-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n")
    assert not sha2.crackable(flow.client("auth_data", b"r" * 256))  # RSA ciphertext
    old = auth.Flow("mysql_old_password", nonce[:8], nonce=nonce)
    assert old.plugin.crackable(old.client("auth_data", b"o" * 8 + b"\0"))
    assert "scramble323" in old.plugin.offline_guess_cost
    clear = auth.Flow("mysql_clear_password")
    assert not clear.plugin.crackable(clear.client("auth_data", b"pw\0"))
    ed = auth.Flow("client_ed25519", b"n" * 32, nonce=nonce)
    assert not ed.plugin.crackable(ed.client("handshake_response", b""))  # the announcement


def test_words_follow_the_plugins_own_steps():
    """The sentences come from server_step's reading, not from a second byte test."""
    fast = auth.describe("caching_sha2_password", "server", "auth_more_data", b"\x03")
    assert fast.success and fast.brief == "01 03: fast auth ok (cached), OK follows"
    # 01 03 + trailing bytes is no fast_auth_success for server_step, nor for the views
    odd = auth.describe("caching_sha2_password", "server", "auth_more_data", b"\x03\x00")
    assert not odd.success and odd.text == "" and odd.brief == ""
    # sha256_password's server never sends 01 03 / 01 04: no meaning is made up
    assert auth.describe("sha256_password", "server", "auth_more_data", b"\x04").stage is None
    pem = b"-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n"
    key = auth.describe("sha256_password", "server", "auth_more_data", pem)
    assert key.stage == "rsa" and key.text == f"RSA public key ({len(pem)} bytes PEM)"
