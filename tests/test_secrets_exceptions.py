"""Exceptions and error messages never carry payload bytes or secrets.

A ``ProtocolError`` / ``AuthDataError`` message ends up on stderr, in logs, in
bug reports; the bytes that caused it may be a password.  Payloads here carry
a marker (standing for a password) and every error raised on them is searched
for it: as text, hex, and Python's bytes repr.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mysqlwire.auth import PLUGINS, AuthDataError, caching_sha2
from mysqlwire.auth.caching_sha2 import rsa_decrypt, rsa_decrypt_raw
from mysqlwire.auth.passwords import Secret
from mysqlwire.errors import MysqlwireError, ProtocolError
from mysqlwire.protocol import KINDS, parse
from mysqlwire.protocol.framing import CompressedReader, PacketReader
from mysqlwire.replay import Secrets
from tests.test_robust_support import CAPTURES, run_cli

MARKER = b"Pw-S3cr3t-9q"
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _forms(secret: bytes) -> list[str]:
    return [
        secret.decode("latin-1"),
        secret.hex(),
        secret.hex().upper(),
        repr(secret)[2:-1],
        base64.b64encode(secret).decode(),
        # a 6-byte piece is enough to recognise a leaked fragment
        secret[:6].decode("latin-1"),
        secret[-6:].hex(),
    ]


def assert_clean(exc: BaseException, secret: bytes = MARKER) -> None:
    texts = [str(exc), repr(exc), *(str(a) for a in exc.args)]
    for text in texts:
        for form in _forms(secret):
            assert form not in text, f"{type(exc).__name__} message shows the secret: {text!r}"


@st.composite
def marked_payloads(draw):
    """Payload bytes with the marker somewhere, cut anywhere."""
    head = draw(st.binary(max_size=60))
    tail = draw(st.binary(max_size=30))
    data = head + MARKER + tail
    cut = draw(st.integers(0, len(data)))
    return data if draw(st.booleans()) else data[:cut] + MARKER[: max(0, 6 - cut)]


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(payload=marked_payloads(), caps=st.none() | st.integers(0, 2**32 - 1))
def test_protocol_errors_never_quote_the_payload(kind, payload, caps):
    try:
        parse(kind, payload, caps=caps)
    except ProtocolError as exc:
        assert_clean(exc)


@SETTINGS
@given(payload=marked_payloads(), size=st.integers(0x10, 0xFFFFFF))
def test_framing_errors_never_quote_the_payload(payload, size):
    reader = PacketReader(max_payload=16)
    try:
        reader.feed(size.to_bytes(3, "little") + b"\x01" + payload)
    except ProtocolError as exc:
        assert_clean(exc)
    creader = CompressedReader()
    try:
        creader.feed(len(payload).to_bytes(3, "little") + b"\x00" + b"\x40\x00\x00" + payload)
    except ProtocolError as exc:
        assert_clean(exc)


RSA_KEY = (CAPTURES / "lab-samples" / "m8emu_server_rsa_private.pem").read_bytes()
NONCE = b"abcdefghijklmnopqrst"
STAGES = [v for k, v in vars(caching_sha2).items() if k.startswith("STAGE_")]


@pytest.mark.parametrize("length", [16, 256, 255])
def test_rsa_errors_never_quote_ciphertext_or_plaintext(length):
    ciphertext = (MARKER * 40)[:length]
    for call in (
        lambda: rsa_decrypt_raw(ciphertext, RSA_KEY),
        lambda: rsa_decrypt(ciphertext, NONCE, RSA_KEY),
        lambda: rsa_decrypt_raw(ciphertext, MARKER * 3),  # a "key" that is the secret
    ):
        with pytest.raises(MysqlwireError) as err:
            call()
        assert_clean(err.value)


@pytest.mark.parametrize("name", sorted(PLUGINS))
@SETTINGS
@given(
    response=marked_payloads(),
    server_data=st.binary(max_size=40) | st.just(NONCE),
    stage=st.sampled_from([None, *STAGES]),
    stored=st.sampled_from([None, MARKER.decode(), "P5:" + MARKER.decode() + ":x", "*" + "A" * 40]),
)
def test_plugin_verify_errors_never_quote_data(name, response, server_data, stage, stored):
    """Every replayable plugin, handed the marker as the client's answer, as
    the password and in the stored hash: whatever it raises carries neither."""
    plugin = PLUGINS[name]
    try:
        plugin.verify(
            response,
            server_data,
            password=Secret(MARKER),
            stored=stored,
            stage=stage,
            private_key_pem=RSA_KEY,
        )
    except (MysqlwireError, TypeError, ValueError) as exc:
        assert_clean(exc)


def test_secret_holders_hide_their_values():
    s = Secret(MARKER)
    assert MARKER.decode() not in f"{s} {s!r} {s:>20} {[s]}"
    secrets = Secrets(password=MARKER, by_user={"u": MARKER}, candidates=[MARKER])
    assert_clean(AuthDataError(repr(secrets)))


@pytest.mark.parametrize(
    "name,content",
    [
        ("bad.json", b'{"app": "' + MARKER + b'"'),
        ("bad.toml", b'app = "' + MARKER + b"\n"),
        ("list.json", b'{"app": ["' + MARKER + b'"]}'),
        ("table.toml", b'[app]\npw = "' + MARKER + b'"\n'),
        ("binary.json", b"\xff\xfe" + MARKER),
    ],
)
def test_bad_secret_files_are_refused_without_echo(tmp_path, name, content):
    f = tmp_path / name
    f.write_bytes(content)
    pcap = CAPTURES / "lab-samples" / "mariadb_pymysql_native_ok.pcap"
    for opt in ("--secrets", "--account-hash-file"):
        run = run_cli(["replay", opt, f, pcap])
        assert run.exception is None
        out = run.stdout + run.stderr
        for form in _forms(MARKER):
            assert form not in out, (opt, out)
        if opt == "--secrets":
            assert run.code == 2 and run.stderr.startswith("mysqlwire: error: ")


def test_unreadable_password_inputs_are_refused_without_echo(tmp_path):
    pcap = CAPTURES / "lab-samples" / "mariadb_pymysql_native_ok.pcap"
    cases = [
        (["--password-env", "MYSQLWIRE_TEST_NOT_SET"], None),
        (["--password-file", tmp_path / "missing"], None),
        (["--candidates", tmp_path / "missing"], None),
    ]
    for args, env in cases:
        run = run_cli(["replay", *args, pcap], env=env)
        assert run.code == 2, (args, run.stdout, run.stderr)
        (line,) = run.stderr.splitlines()
        assert line.startswith("mysqlwire: error: ")


def test_the_search_finds_a_leak():
    for leaky in (f"bad byte in {MARKER!r}", f"near {MARKER.hex()}", "got Pw-S3c..."):
        with pytest.raises(AssertionError):
            assert_clean(ProtocolError(leaky))
