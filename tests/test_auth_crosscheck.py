"""Our client side against the real libraries, and zero false proofs, on random inputs.

References: PyMySQL 1.2.4 ``pymysql._auth`` (native, caching_sha2, ed25519, RSA helpers),
mysql-connector-python's pure plugins (native, caching_sha2, sha256 over TLS, clear),
PyNaCl / cryptography for Ed25519 and RSA.  PyMySQL 1.x dropped ``scramble_old_password``;
mysql_old_password is checked against the vectors (PyMySQL 0.9.3 values) and invariants.
"""

from __future__ import annotations

import functools
import hashlib

import nacl.signing
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mysqlwire.auth import (
    caching_sha2,
    clear,
    dialog,
    ed25519,
    get_plugin,
    native,
    old,
    parsec,
    sha256,
)

# Optional libraries are imported with importorskip: a missing one skips this module (a failure
# under CI, see conftest.py), it never aborts the whole session at collection.
pyauth = pytest.importorskip("pymysql._auth")
_conn_sha2 = pytest.importorskip("mysql.connector.plugins.caching_sha2_password")
_conn_clear = pytest.importorskip("mysql.connector.plugins.mysql_clear_password")
_conn_native = pytest.importorskip("mysql.connector.plugins.mysql_native_password")
_conn_sha256 = pytest.importorskip("mysql.connector.plugins.sha256_password")
MySQLCachingSHA2PasswordAuthPlugin = _conn_sha2.MySQLCachingSHA2PasswordAuthPlugin
MySQLClearPasswordAuthPlugin = _conn_clear.MySQLClearPasswordAuthPlugin
MySQLNativePasswordAuthPlugin = _conn_native.MySQLNativePasswordAuthPlugin
MySQLSHA256PasswordAuthPlugin = _conn_sha256.MySQLSHA256PasswordAuthPlugin

EXAMPLES = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text passwords: mysql-connector takes str and encodes UTF-8 (surrogates cannot encode).
text_pw = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
byte_pw = st.binary(max_size=64)
nonce20 = st.binary(min_size=20, max_size=20)
nonce32 = st.binary(min_size=32, max_size=32)


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return priv, pub


@functools.lru_cache(maxsize=1)
def _loaded_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    return serialization.load_pem_private_key(pem, password=None)


# --------------------------------------------------------------------- mysql_native_password


@EXAMPLES
@given(pw=text_pw, nonce=nonce20)
def test_native_matches_pymysql_and_connector(pw: str, nonce: bytes) -> None:
    ours = native.scramble(pw.encode(), nonce)
    assert ours == pyauth.scramble_native_password(pw.encode(), nonce)
    if pw:  # the connector refuses nothing but returns b"" for ""
        assert ours == MySQLNativePasswordAuthPlugin("u", pw).auth_response(nonce)
    else:
        assert ours == b"" == MySQLNativePasswordAuthPlugin("u", pw).auth_response(nonce)
    # the greeting / switch form with its trailing NUL gives the same answer
    assert get_plugin("mysql_native_password").client_response(pw.encode(), nonce + b"\0") == ours


# --------------------------------------------------------------------- caching_sha2_password


@EXAMPLES
@given(pw=text_pw, nonce=nonce20)
def test_caching_sha2_matches_pymysql_and_connector(pw: str, nonce: bytes) -> None:
    ours = caching_sha2.scramble(pw.encode(), nonce)
    assert ours == pyauth.scramble_caching_sha2(pw.encode(), nonce)
    connector = MySQLCachingSHA2PasswordAuthPlugin("u", pw)
    assert ours == connector.auth_response(nonce)
    # full authentication over TLS: connector answers 01 04 with pw + NUL
    full = get_plugin("caching_sha2_password").client_response(pw.encode(), nonce, stage="full-tls")
    assert full == connector.auth_response(bytes([caching_sha2.PERFORM_FULL_AUTH]))


@EXAMPLES
@given(pw=text_pw, nonce=nonce20)
def test_sha256_tls_and_clear_match_connector(pw: str, nonce: bytes) -> None:
    sha = MySQLSHA256PasswordAuthPlugin("u", pw, ssl_enabled=True).auth_response(nonce)
    assert get_plugin("sha256_password").client_response(pw.encode(), nonce, tls=True) == sha
    clr = MySQLClearPasswordAuthPlugin("u", pw, ssl_enabled=True).auth_response(b"")
    assert clear.response(pw.encode()) == clr


# --------------------------------------------------------------------- RSA (both plugins)


@EXAMPLES
@given(pw=byte_pw.filter(lambda b: b"\0" not in b), nonce=nonce20)
def test_rsa_pymysql_encrypt_our_decrypt(rsa_key, pw: bytes, nonce: bytes) -> None:
    priv, pub = rsa_key
    ciphertext = pyauth.sha2_rsa_encrypt(pw, nonce, pub)
    raw, pad = caching_sha2.rsa_decrypt_raw(ciphertext, priv)
    assert pad == "oaep"
    assert raw == pyauth._xor_password(pw + b"\0", nonce)
    assert caching_sha2.xor_with_nonce(pw + b"\0", nonce) == raw
    assert caching_sha2.rsa_decrypt(ciphertext, nonce + b"\0", priv) == pw


@EXAMPLES
@given(
    pw=byte_pw.filter(lambda b: b"\0" not in b),
    nonce=nonce20,
    pad=st.sampled_from(["oaep", "pkcs1"]),
)
def test_rsa_our_encrypt_cryptography_decrypt(rsa_key, pw: bytes, nonce: bytes, pad: str) -> None:
    priv, pub = rsa_key
    ciphertext = caching_sha2.rsa_encrypt(pw, nonce, pub, padding=pad)
    key = _loaded_private_key(priv)
    if pad == "oaep":
        scheme = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    else:
        scheme = padding.PKCS1v15()
    assert pyauth._xor_password(key.decrypt(ciphertext, scheme), nonce) == pw + b"\0"
    assert caching_sha2.rsa_decrypt_raw(ciphertext, priv)[1] == pad


# --------------------------------------------------------------------- client_ed25519 / parsec


@EXAMPLES
@given(pw=byte_pw, nonce=nonce32)
def test_ed25519_matches_pymysql_and_verifies_everywhere(pw: bytes, nonce: bytes) -> None:
    sig = ed25519.sign(pw, nonce)
    assert sig == pyauth.ed25519_password(pw, nonce)
    pub = ed25519.public_key(pw)
    nacl.signing.VerifyKey(pub).verify(nonce, sig)  # raises on failure
    Ed25519PublicKey.from_public_bytes(pub).verify(sig, nonce)  # OpenSSL, raises on failure


@EXAMPLES
@given(seed=st.binary(min_size=32, max_size=32), msg=st.binary(max_size=96))
def test_32_byte_seed_is_rfc8032(seed: bytes, msg: bytes) -> None:
    assert ed25519.sign_with_seed(seed, msg) == nacl.signing.SigningKey(seed).sign(msg).signature
    assert ed25519.public_key_from_seed(seed) == bytes(nacl.signing.SigningKey(seed).verify_key)


@EXAMPLES
@given(
    pw=byte_pw,
    salt=st.binary(min_size=18, max_size=18),
    f=st.integers(0, 1),
    server_nonce=nonce32,
    client_nonce=nonce32,
)
def test_parsec_matches_cryptography_and_pynacl(
    pw: bytes, salt: bytes, f: int, server_nonce: bytes, client_nonce: bytes
) -> None:
    seed = PBKDF2HMAC(hashes.SHA512(), 32, salt, 1024 << f).derive(pw)
    assert parsec.derive_seed(pw, salt, f) == seed
    answer = parsec.response(pw, server_nonce, b"P" + bytes([f]) + salt, client_nonce)
    expected_sig = nacl.signing.SigningKey(seed).sign(server_nonce + client_nonce).signature
    assert answer == client_nonce + expected_sig


# --------------------------------------------------------------------- mysql_old_password


def test_pymysql_1x_has_no_old_password_reference() -> None:
    # documents why old-password is only vector-checked against PyMySQL 0.9.3 values
    assert not hasattr(pyauth, "scramble_old_password")


@EXAMPLES
@given(pw=byte_pw, nonce=st.binary(min_size=8, max_size=21))
def test_old_password_invariants(pw: bytes, nonce: bytes) -> None:
    s = old.scramble323(pw, nonce)
    assert s == old.scramble323_from_hash(old.stored_hash(pw), nonce)
    assert s == old.scramble323(pw, nonce[:8])
    squashed = pw.replace(b" ", b"").replace(b"\t", b"")
    if squashed:  # the hash skips spaces and tabs ...
        assert s == old.scramble323(squashed, nonce)
    # ... but a whitespace-only password is still a password (the client checks pw[0])
    assert (s == b"") is (pw == b"")
    if s:
        assert len(s) == 8
        # all 8 bytes are 0x40..0x5E XORed with one common value 0..30
        assert any(all(0x40 <= (b ^ x) <= 0x5E for b in s) for x in range(31))


# --------------------------------------------------------------------- zero false proofs


@EXAMPLES
@given(pw=byte_pw, wrong=byte_pw, nonce=nonce20)
def test_no_false_proof_native(pw: bytes, wrong: bytes, nonce: bytes) -> None:
    assume(pw != wrong)
    plugin = get_plugin("mysql_native_password")
    resp = plugin.client_response(pw, nonce)
    assert plugin.verify(resp, nonce, password=pw) is True
    assert plugin.verify(resp, nonce, stored=native.stored_hash(pw)) is True
    assert plugin.verify(resp, nonce, password=wrong) is False
    assert plugin.verify(resp, nonce, stored=native.stored_hash(wrong)) is False


def test_old_password_collision_is_the_protocols():
    nonce = bytes.fromhex("003882 3f07620044".replace(" ", ""))
    assert old.stored_hash(b"\xcb") != old.stored_hash(b"\xd2")
    assert old.scramble323(b"\xcb", nonce) == old.scramble323(b"\xd2", nonce)


@EXAMPLES
@given(pw=byte_pw, wrong=byte_pw, nonce=nonce20)
def test_no_false_proof_old(pw: bytes, wrong: bytes, nonce: bytes) -> None:
    def squash(b: bytes) -> bytes:  # the old hash ignores spaces and tabs
        return b.replace(b" ", b"").replace(b"\t", b"")

    assume(squash(pw) != squash(wrong))
    # scramble323 quantises a linear PRNG to 8 x 5 bits: nearby password
    # hashes can give the same 8-byte proof (found by hypothesis: b"\xcb" and
    # b"\xd2" with nonce 00 38 82 3f 07 62 00 44).  Such a pair is a genuine
    # protocol collision, not a false proof of ours, so it is excluded here.
    assume(old.scramble323(pw, nonce[:8]) != old.scramble323(wrong, nonce[:8]))
    plugin = get_plugin("mysql_old_password")
    for form in ("switch", "320"):
        resp = plugin.client_response(pw, nonce, form=form)
        assert plugin.verify(resp, nonce, password=pw) is True
        assert plugin.verify(resp, nonce, stored=old.stored_hash(pw)) is True
        assert plugin.verify(resp, nonce, password=wrong) is False
        assert plugin.verify(resp, nonce, stored=old.stored_hash(wrong)) is False


@EXAMPLES
@given(pw=byte_pw, wrong=byte_pw, nonce=nonce20, stage=st.sampled_from(["fast", "full-tls"]))
def test_no_false_proof_caching_sha2(pw: bytes, wrong: bytes, nonce: bytes, stage: str) -> None:
    assume(pw != wrong)
    plugin = get_plugin("caching_sha2_password")
    resp = plugin.client_response(pw, nonce, stage=stage)
    assert plugin.verify(resp, nonce, password=pw, stage=stage) is True
    assert plugin.verify(resp, nonce, password=wrong, stage=stage) is False


@EXAMPLES
@given(
    pw=byte_pw.filter(lambda b: b"\0" not in b),
    wrong=byte_pw,
    nonce=nonce20,
    name=st.sampled_from(["caching_sha2_password", "sha256_password"]),
)
def test_no_false_proof_rsa(rsa_key, pw: bytes, wrong: bytes, nonce: bytes, name: str) -> None:
    assume(pw != wrong)
    priv, pub = rsa_key
    plugin = get_plugin(name)
    resp = plugin.client_response(pw, nonce, stage="full-rsa", public_key_pem=pub)
    if not pw and name == "sha256_password":
        assert resp == b"\0"  # the empty password is never encrypted
    kw = {"stage": "full-rsa", "private_key_pem": priv} if resp != b"\0" else {}
    assert plugin.verify(resp, nonce, password=pw, **kw) is True
    assert plugin.verify(resp, nonce, password=wrong, **kw) is False


@EXAMPLES
@given(pw=byte_pw, wrong=byte_pw, nonce=nonce20, tls=st.booleans())
def test_no_false_proof_sha256_clear(pw: bytes, wrong: bytes, nonce: bytes, tls: bool) -> None:
    assume(pw != wrong)
    plugin = get_plugin("sha256_password")
    resp = plugin.client_response(pw, nonce, tls=True)
    assert plugin.verify(resp, nonce, password=pw, tls=tls) is True
    assert plugin.verify(resp, nonce, password=wrong, tls=tls) is False


@EXAMPLES
@given(pw=byte_pw, wrong=byte_pw, name=st.sampled_from(["mysql_clear_password", "dialog"]))
def test_no_false_proof_cleartext(pw: bytes, wrong: bytes, name: str) -> None:
    assume(pw != wrong)
    plugin = get_plugin(name)
    server_data = b"\x04Password: " if name == "dialog" else b""
    resp = plugin.client_response(pw, server_data)
    assert plugin.verify(resp, server_data, password=pw) is True
    assert plugin.verify(resp, server_data, password=wrong) is False
    # the lenient bare form (no NUL) must not turn into a false proof either
    bare = resp[:-1]
    if plugin.verify(bare, server_data, password=wrong):
        # only when the bytes are exactly what `wrong` itself sends, or `wrong` unterminated
        assert bare in (wrong + b"\0", wrong) and not wrong.endswith(b"\0")
    if name == "dialog":
        assert dialog.verify_answer(resp, wrong) is False


@EXAMPLES
@given(pw=byte_pw, wrong=byte_pw, nonce=nonce32)
def test_no_false_proof_ed25519(pw: bytes, wrong: bytes, nonce: bytes) -> None:
    assume(pw != wrong)
    plugin = get_plugin("client_ed25519")
    resp = plugin.client_response(pw, nonce)
    assert plugin.verify(resp, nonce, password=pw) is True
    assert plugin.verify(resp, nonce, stored=ed25519.stored(pw)) is True
    assert plugin.verify(resp, nonce, password=wrong) is False
    assert plugin.verify(resp, nonce, stored=ed25519.stored(wrong)) is False


@EXAMPLES
@given(
    pw=byte_pw,
    wrong=byte_pw,
    salt=st.binary(min_size=18, max_size=18),
    server_nonce=nonce32,
    client_nonce=nonce32,
)
def test_no_false_proof_parsec(
    pw: bytes, wrong: bytes, salt: bytes, server_nonce: bytes, client_nonce: bytes
) -> None:
    # HMAC zero-pads its key, so PBKDF2 cannot tell "pw" from "pw\0\0": the same key, and
    # the server accepts both.  MySQL passwords are C strings (no NUL), so this is not a
    # false proof; such pairs are excluded here and pinned in the test below.  byte_pw stays
    # below the 128-byte HMAC block, beyond which keys are pre-hashed.
    assume(pw.rstrip(b"\0") != wrong.rstrip(b"\0"))
    plugin = get_plugin("parsec")
    ext_salt = b"P\x00" + salt
    resp = plugin.client_response(pw, server_nonce, ext_salt=ext_salt, client_nonce=client_nonce)
    right = parsec.stored(pw, salt, 0)
    assert plugin.verify(resp, server_nonce, password=pw, ext_salt=ext_salt) is True
    assert plugin.verify(resp, server_nonce, stored=right) is True
    assert plugin.verify(resp, server_nonce, password=wrong, ext_salt=ext_salt) is False
    assert plugin.verify(resp, server_nonce, stored=parsec.stored(wrong, salt, 0)) is False


def test_pbkdf2_hmac_key_equivalences_are_known() -> None:
    # Properties of HMAC keys, hence of parsec itself (not of our code): trailing NULs are
    # invisible, and a key longer than the 128-byte block equals its SHA-512 digest.
    salt = bytes(18)
    assert parsec.derive_seed(b"pw", salt, 0) == parsec.derive_seed(b"pw\0\0", salt, 0)
    long_pw = b"p" * 129
    digest = hashlib.sha512(long_pw).digest()
    assert parsec.derive_seed(long_pw, salt, 0) == parsec.derive_seed(digest, salt, 0)


def test_sha256_plugin_module_reexports_rsa_helpers() -> None:
    assert sha256.rsa_decrypt is caching_sha2.rsa_decrypt
    assert sha256.rsa_encrypt is caching_sha2.rsa_encrypt
