"""Every vector in ../shared/docs/auth-vectors.json, every field of it.

One parametrized case per vector id; the whole module skips with the shared-material
message when ../shared is absent.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization

from mysqlwire.auth import caching_sha2, clear, ed25519, get_plugin, native, old, parsec, sha256
from mysqlwire.auth.base import nonce_from_switch_data
from tests.conftest import DOCS, SHARED, require_shared

VECTORS_FILE = DOCS / "auth-vectors.json"


def _load() -> dict[str, dict]:
    if not VECTORS_FILE.is_file():
        return {}
    return {v["id"]: v for v in json.loads(VECTORS_FILE.read_text("utf-8"))["vectors"]}


VECTORS = _load()
IDS = list(VECTORS) or ["<auth-vectors.json unavailable>"]

#: Every field a vector may carry; each is asserted on below.
HANDLED_FIELDS = {
    "id",
    "plugin",
    "notes",
    "password",
    "nonce_hex",
    "expected_hex",
    "stored_hash",
    "greeting_hex",
    "path",
    "padding",
    "plaintext_hex",
    "private_key_pem",
    "public_key_pem",
    "wire_hex",
    "public_key_hex",
    "client_nonce_hex",
    "ext_salt_hex",
    "iterations",
    "derived_key_hex",
}


def _vector(vid: str) -> dict:
    require_shared()
    assert VECTORS_FILE.is_file(), f"{VECTORS_FILE} missing although {SHARED} exists"
    return VECTORS[vid]


def _other_password(pw: bytes) -> bytes:
    return pw + b"x" if pw else b"x"


# ----------------------------------------------------------------------------- greeting


def _greeting_nonce_and_plugin(payload: bytes) -> tuple[bytes, str]:
    """Minimal HandshakeV10 reading (test-local; the real parser lives in protocol/)."""
    assert payload[0] == 0x0A
    pos = payload.index(b"\0", 1) + 1  # server_version
    pos += 4  # connection id
    part1 = payload[pos : pos + 8]
    pos += 8 + 1  # filler
    pos += 2 + 1 + 2 + 2  # caps lower, charset, status, caps upper
    data_len = payload[pos]
    pos += 1 + 10  # reserved (6 + 4)
    part2_len = max(13, data_len - 8)
    part2 = payload[pos : pos + part2_len]
    pos += part2_len
    end = payload.find(b"\0", pos)
    plugin = payload[pos : end if end >= 0 else len(payload)].decode("ascii")
    return nonce_from_switch_data(part1 + part2), plugin


def _check_greeting(v: dict, nonce: bytes) -> None:
    if "greeting_hex" not in v:
        return
    got_nonce, plugin = _greeting_nonce_and_plugin(bytes.fromhex(v["greeting_hex"]))
    assert got_nonce == nonce
    assert get_plugin(plugin) is not None


# ----------------------------------------------------------------------------- per plugin


def _check_native(v: dict, pw: bytes, nonce: bytes, expected: bytes) -> None:
    plugin = get_plugin("mysql_native_password")
    assert native.scramble(pw, nonce) == expected
    assert plugin.client_response(pw, nonce + b"\0") == expected  # switch-data form
    assert native.stored_hash(pw) == v["stored_hash"]
    assert plugin.verify(expected, nonce, password=pw) is True
    assert plugin.verify(expected, nonce, stored=v["stored_hash"]) is True
    assert native.verify_stored(expected, nonce, v["stored_hash"]) is True
    assert plugin.verify(expected, nonce, password=_other_password(pw)) is False
    assert plugin.verify(expected, nonce, stored=native.stored_hash(_other_password(pw))) is False
    assert plugin.verify(expected, nonce) is None


def _check_rsa(v: dict, pw: bytes, nonce: bytes, ciphertext: bytes) -> None:
    priv = v["private_key_pem"]
    raw, padding = caching_sha2.rsa_decrypt_raw(ciphertext, priv)
    assert raw.hex() == v["plaintext_hex"]
    want_padding = "pkcs1" if "PKCS#1" in v["padding"] else "oaep"
    assert padding == want_padding
    assert caching_sha2.rsa_decrypt(ciphertext, nonce, priv) == pw
    assert caching_sha2.xor_with_nonce(pw + b"\0", nonce).hex() == v["plaintext_hex"]
    pub_ours = serialization.load_pem_public_key(caching_sha2.public_key_pem(priv))
    pub_vec = serialization.load_pem_public_key(v["public_key_pem"].encode())
    assert pub_ours.public_numbers() == pub_vec.public_numbers()
    mine = caching_sha2.rsa_encrypt(pw, nonce, v["public_key_pem"], padding=want_padding)
    assert caching_sha2.rsa_decrypt_raw(mine, priv) == (raw, want_padding)
    plugin = get_plugin(v["plugin"])
    kw = {"stage": "full-rsa", "private_key_pem": priv}
    assert plugin.verify(ciphertext, nonce, password=pw, **kw) is True
    assert plugin.verify(ciphertext, nonce, password=_other_password(pw), **kw) is False
    assert plugin.verify(ciphertext, nonce, password=pw, stage="full-rsa") is None  # no key
    if v["plugin"] == "sha256_password":  # shape-detected without a stage
        assert plugin.verify(ciphertext, nonce, password=pw, private_key_pem=priv) is True


def _check_caching_sha2(v: dict, pw: bytes, nonce: bytes, expected: bytes) -> None:
    plugin = get_plugin("caching_sha2_password")
    path = v["path"]
    if path == "full-rsa":
        _check_rsa(v, pw, nonce, expected)
        return
    assert plugin.client_response(pw, nonce, stage=path) == expected
    assert plugin.verify(expected, nonce, password=pw, stage=path) is True
    assert plugin.verify(expected, nonce, password=_other_password(pw), stage=path) is False
    if path == "fast":
        assert caching_sha2.scramble(pw, nonce) == expected
        assert plugin.client_response(pw, nonce + b"\0") == expected
        assert plugin.verify(expected, nonce, stored="$A$005$whatever") is None
    else:
        assert path == "full-tls"
        assert caching_sha2.clear_response(pw) == expected


def _check_sha256(v: dict, pw: bytes, nonce: bytes, expected: bytes) -> None:
    plugin = get_plugin("sha256_password")
    path = v["path"]
    if path == "full-rsa":
        _check_rsa(v, pw, nonce, expected)
        return
    if path == "empty":
        assert pw == b""
        for tls in (False, True):
            assert plugin.client_response(pw, nonce, tls=tls) == expected
    else:
        assert path == "full-tls"
        assert plugin.client_response(pw, nonce, tls=True) == expected
        assert plugin.client_response(pw, nonce) == bytes([sha256.REQUEST_PUBLIC_KEY])
    assert sha256.clear_response(pw) == expected
    assert plugin.verify(expected, nonce, password=pw, tls=True) is True
    assert plugin.verify(expected, nonce, password=_other_password(pw), tls=True) is False


def _check_clear(v: dict, pw: bytes, nonce: bytes, expected: bytes) -> None:
    assert nonce == b""
    plugin = get_plugin("mysql_clear_password")
    assert clear.response(pw) == expected
    assert plugin.client_response(pw, nonce) == expected
    assert plugin.verify(expected, nonce, password=pw) is True
    assert plugin.verify(expected, nonce, password=_other_password(pw)) is False


def _check_old(v: dict, pw: bytes, nonce: bytes, expected: bytes) -> None:
    plugin = get_plugin("mysql_old_password")
    stored = v["stored_hash"]
    # expected_hex is the bare 8 bytes and wire_hex the switch form, except for captured
    # logins (wire-*), whose expected_hex is what crossed the wire after the bare FE.
    wire = bytes.fromhex(v["wire_hex"]) if "wire_hex" in v else expected
    bare = expected if "wire_hex" in v else expected[:-1]
    assert old.scramble323(pw, nonce) == bare
    assert len(bare) in (0, 8)
    assert old.scramble323_from_hash(stored, nonce) == bare
    assert plugin.client_response(pw, nonce) == wire
    assert plugin.client_response(pw, nonce, form="320") == bare
    assert old.stored_hash(pw) == stored
    if pw:
        a, b = old.hash_password(pw)
        assert f"{a:08x}{b:08x}" == stored
    for form in {bare, wire}:
        assert plugin.verify(form, nonce, password=pw) is True
        assert plugin.verify(form, nonce, stored=stored) is True
        assert plugin.verify(form, nonce, password=_other_password(pw)) is False
        assert plugin.verify(form, nonce, stored=old.stored_hash(_other_password(pw))) is False


def _check_ed25519(v: dict, pw: bytes, nonce: bytes, expected: bytes) -> None:
    plugin = get_plugin("client_ed25519")
    stored = v["stored_hash"]
    assert ed25519.sign(pw, nonce) == expected
    assert plugin.client_response(pw, nonce) == expected
    assert ed25519.stored(pw) == stored
    assert len(stored) == 43
    if "public_key_hex" in v:
        pub = bytes.fromhex(v["public_key_hex"])
        assert ed25519.public_key(pw) == pub
        assert ed25519.decode_key(stored) == pub
        assert ed25519.verify_signature(expected, nonce, pub) is True
    assert ed25519.verify_signature(expected, nonce, stored) is True
    assert plugin.verify(expected, nonce, stored=stored) is True
    assert plugin.verify(expected, nonce, password=pw) is True
    assert plugin.verify(expected, nonce, password=_other_password(pw)) is False
    assert plugin.verify(expected, nonce, stored=ed25519.stored(_other_password(pw))) is False
    tampered = bytes([expected[0] ^ 1]) + expected[1:]
    assert plugin.verify(tampered, nonce, stored=stored) is False


def _check_parsec(v: dict, pw: bytes, nonce: bytes, expected: bytes) -> None:
    plugin = get_plugin("parsec")
    ext_salt = bytes.fromhex(v["ext_salt_hex"])
    client_nonce = bytes.fromhex(v["client_nonce_hex"])
    f, salt = parsec.parse_ext_salt(ext_salt)
    assert parsec.iterations(f) == v["iterations"]
    seed = parsec.derive_seed(pw, salt, f)
    assert seed.hex() == v["derived_key_hex"]
    pub = bytes.fromhex(v["public_key_hex"])
    assert parsec.public_key(pw, salt, f) == pub
    assert parsec.stored(pw, salt, f) == v["stored_hash"]
    parsed = parsec.parse_stored(v["stored_hash"])
    assert (parsed.factor, parsed.salt, parsed.public_key) == (f, salt, pub)
    assert parsed.ext_salt == ext_salt
    assert parsec.response(pw, nonce, ext_salt, client_nonce) == expected
    assert expected[:32] == client_nonce
    assert plugin.client_response(pw, nonce) == b""  # asks for the ext-salt
    got = plugin.client_response(pw, nonce, ext_salt=ext_salt, client_nonce=client_nonce)
    assert got == expected
    assert parsec.verify_signature(expected, nonce, v["stored_hash"]) is True
    assert parsec.verify_signature(expected, nonce, pub) is True
    assert plugin.verify(expected, nonce, password=pw, ext_salt=ext_salt) is True
    assert plugin.verify(expected, nonce, password=pw, stored=v["stored_hash"]) is True
    assert plugin.verify(expected, nonce, stored=v["stored_hash"]) is True
    assert plugin.verify(expected, nonce, password=_other_password(pw), ext_salt=ext_salt) is False
    other = parsec.stored(_other_password(pw), salt, f)
    assert plugin.verify(expected, nonce, stored=other) is False
    assert plugin.verify(b"", nonce, stored=v["stored_hash"]) is None


CHECKS = {
    "mysql_native_password": _check_native,
    "caching_sha2_password": _check_caching_sha2,
    "sha256_password": _check_sha256,
    "mysql_clear_password": _check_clear,
    "mysql_old_password": _check_old,
    "client_ed25519": _check_ed25519,
    "parsec": _check_parsec,
}


@pytest.mark.shared
@pytest.mark.parametrize("vid", IDS)
def test_vector(vid: str) -> None:
    v = _vector(vid)
    assert set(v) <= HANDLED_FIELDS, f"unhandled fields {set(v) - HANDLED_FIELDS}"
    pw = v["password"].encode("utf-8")
    nonce = bytes.fromhex(v["nonce_hex"])
    expected = bytes.fromhex(v["expected_hex"])
    plugin = get_plugin(v["plugin"])
    assert plugin is not None and plugin.replayable and plugin.name == v["plugin"]
    _check_greeting(v, nonce)
    CHECKS[v["plugin"]](v, pw, nonce, expected)


@pytest.mark.shared
def test_vectors_cover_every_plugin_and_path() -> None:
    require_shared()
    plugins = {v["plugin"] for v in VECTORS.values()}
    assert plugins == set(CHECKS)
    paths = {(v["plugin"], v.get("path")) for v in VECTORS.values()}
    assert ("caching_sha2_password", "full-rsa") in paths
    assert ("sha256_password", "empty") in paths
    assert any(v["password"] == "" for v in VECTORS.values())
    assert any(v["id"].startswith("wire-") for v in VECTORS.values())
