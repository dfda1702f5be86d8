"""Registry, shared helpers, stored-hash verification and per-plugin edge cases.

Known answers here come from the reference (§6) and are independent of ../shared.
"""

from __future__ import annotations

import traceback

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mysqlwire.auth import (
    KNOWN_PLUGINS,
    NOT_REPLAYABLE,
    PLUGINS,
    AuthDataError,
    AuthPlugin,
    caching_sha2,
    dialog,
    ed25519,
    get_plugin,
    native,
    nonce_from_switch_data,
    old,
    parsec,
    sha256,
)
from mysqlwire.errors import MysqlwireError, ProtocolError, UsageError

ABC = b"ABCDEFGHIJKLMNOPQRST"


def _pem_pair(bits: int = 2048) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    priv = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return priv, caching_sha2.public_key_pem(priv)


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return _pem_pair()


# ------------------------------------------------------------------------- registry


def test_registry_names_and_interface() -> None:
    expected = {
        "mysql_native_password",
        "mysql_old_password",
        "caching_sha2_password",
        "sha256_password",
        "mysql_clear_password",
        "dialog",
        "auth_pam",
        "client_ed25519",
        "parsec",
        "authentication_openid_connect_client",
    }
    assert set(PLUGINS) == expected
    for name, plugin in PLUGINS.items():
        assert isinstance(plugin, AuthPlugin)
        assert plugin.name == name and plugin.replayable is True
        assert get_plugin(name) is plugin
    assert set(PLUGINS) | set(NOT_REPLAYABLE) <= KNOWN_PLUGINS


def test_a_new_plugin_module_is_found_without_registering_it(tmp_path) -> None:
    """Adding a plugin is adding one module: a module dropped beside the others (here in
    a second directory of the package's path) is discovered, with its aliases, the
    first time a plugin is looked up -- and not before (start-up stays cheap)."""
    from tests.test_startup_imports import python_output

    (tmp_path / "zz_test_plugin.py").write_text(
        "from mysqlwire.auth.base import AuthPlugin\n"
        "class ZzPlugin(AuthPlugin):\n"
        "    name = 'zz_test_password'\n"
        "    sends_secret = True\n"
        "PLUGIN = ZzPlugin()\n"
        "ALIASES = {'zz': 'zz_test_password'}\n"
    )
    code = (
        "import sys\n"
        "import mysqlwire.auth as A\n"
        f"A.__path__.append({str(tmp_path)!r})\n"
        "before = [m for m in sys.modules if m.startswith('mysqlwire.auth.')]\n"
        "p = A.get_plugin('zz')\n"
        "print(sorted(before), type(p).__name__, p is A.PLUGINS['zz_test_password'],"
        " 'zz' in A.KNOWN_PLUGINS, 'zz' in A.CLEARTEXT_PLUGINS,"
        " 'mysqlwire.auth.native' in sys.modules)\n"
    )
    assert python_output(code).split() == [
        "['mysqlwire.auth.base',",
        "'mysqlwire.auth.flow',",
        "'mysqlwire.auth.unsupported']",
        "ZzPlugin",
        "True",
        "True",
        "True",
        "True",
    ]


def test_unknown_plugin_is_none() -> None:
    assert get_plugin("no_such_plugin") is None
    assert get_plugin("") is None
    assert "no_such_plugin" not in KNOWN_PLUGINS


def test_aliases() -> None:
    assert get_plugin("ed25519") is get_plugin("client_ed25519")
    assert get_plugin("pam") is get_plugin("dialog")
    assert get_plugin(b"mysql_native_password") is PLUGINS["mysql_native_password"]


@pytest.mark.parametrize("name", sorted(NOT_REPLAYABLE))
def test_not_replayable_plugins(name: str) -> None:
    plugin = get_plugin(name)
    assert plugin is not None and plugin.replayable is False and plugin.name == name
    assert plugin.reason == NOT_REPLAYABLE[name]
    assert plugin.verify(b"anything", b"", password=b"pw") is None
    with pytest.raises(UsageError, match="not replayable"):
        plugin.client_response(b"pw", b"")


def test_brief_named_unreplayable_plugins_are_listed() -> None:
    for name in (
        "authentication_fido",
        "authentication_ldap_sasl_client",
        "auth_gssapi_client",
        "authentication_kerberos_client",
        "authentication_windows_client",
        "authentication_webauthn_client",
    ):
        assert name in NOT_REPLAYABLE


# ------------------------------------------------------------------------- nonce helper


def test_nonce_from_switch_data_forms() -> None:
    assert nonce_from_switch_data(ABC) == ABC
    assert nonce_from_switch_data(ABC + b"\0") == ABC
    n32 = bytes(range(32))
    assert nonce_from_switch_data(n32, 32) == n32
    for bad in (ABC[:19], ABC + b"X", ABC + b"\0\0", b""):
        with pytest.raises(ProtocolError) as exc:
            nonce_from_switch_data(bad)
        assert exc.value.kind == "auth_plugin_data"


def test_trailing_nul_never_enters_the_scramble() -> None:
    # mysql-nio PR #127: keeping the NUL gives a wrong caching_sha2 scramble
    assert caching_sha2.scramble(b"secret", ABC + b"\0") == caching_sha2.scramble(b"secret", ABC)
    assert caching_sha2.scramble(b"secret", ABC).hex() == (
        "d721e183c1f036a196c1389201b8d53f38064a16f1d0923683ab886763152d75"
    )


# ------------------------------------------------------------------------- native


def test_native_reference_values_and_stored_hash() -> None:
    assert native.scramble(b"secret", ABC).hex() == "28441590674285e7d03cae7af237504797f70e91"
    assert native.stored_hash(b"secret") == "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"
    assert native.scramble(b"", ABC) == b"" and native.stored_hash(b"") == ""
    assert native.scramble("pässwörd", ABC) == native.scramble("pässwörd".encode(), ABC)


def test_native_verify_with_stored_hash_only() -> None:
    plugin = get_plugin("mysql_native_password")
    resp = plugin.client_response(b"secret", ABC + b"\0")
    stored = "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"
    assert plugin.verify(resp, ABC, stored=stored) is True
    assert plugin.verify(resp, ABC, stored=stored.lower()) is True
    assert plugin.verify(resp, ABC, stored=native.stored_hash(b"Secret")) is False
    assert plugin.verify(resp[:-1], ABC, stored=stored) is False
    assert plugin.verify(b"", ABC, stored="") is True  # empty-password account
    assert plugin.verify(b"", ABC, stored=stored) is False
    assert plugin.verify(resp, ABC, stored="") is False
    for bad in ("14E65567ABDB5135D0CFD9A70B3032C179A49EE7", "*XYZ", "428567f408994404"):
        with pytest.raises(UsageError):
            plugin.verify(resp, ABC, stored=bad)


# ------------------------------------------------------------------------- old


def test_old_reference_values() -> None:
    assert old.stored_hash(b"secret") == "428567f408994404"
    assert old.hash_password(b"secret") == (0x428567F4, 0x08994404)
    assert old.hash_password(b"se cr\tet") == old.hash_password(b"secret")
    assert old.scramble323(b"", ABC) == b""
    assert old.scramble323(b"   ", ABC) != b""  # whitespace-only is still a password


def test_old_verify_with_16_hex_stored_both_wire_forms() -> None:
    plugin = get_plugin("mysql_old_password")
    greeting_nonce = ABC + b"\0"  # replay passes the greeting nonce; only 8 bytes count
    switch = plugin.client_response(b"secret", greeting_nonce)
    hr320 = plugin.client_response(b"secret", greeting_nonce, form="320")
    assert switch == hr320 + b"\0" and len(hr320) == 8
    for resp in (switch, hr320):
        assert plugin.verify(resp, ABC, stored="428567f408994404") is True
        assert plugin.verify(resp, ABC, stored="428567F408994404") is True
        assert plugin.verify(resp, ABC, password=b"secret") is True
        assert plugin.verify(resp, ABC, stored=old.stored_hash(b"secreT")) is False
    assert plugin.verify(switch + b"\0", ABC, password=b"secret") is False  # wrong shape
    assert plugin.verify(b"", ABC, stored="") is True
    assert plugin.verify(b"", ABC, password=b"secret") is False
    with pytest.raises(UsageError):
        plugin.verify(switch, ABC, stored="*14E65567ABDB5135D0CFD9A70B3032C179A49EE7")
    with pytest.raises(ProtocolError):
        old.scramble323(b"secret", b"short")
    with pytest.raises(UsageError):
        old.wire_form(b"12345678", "41")


# ------------------------------------------------------------------------- caching_sha2 / sha256


def test_caching_sha2_stages_and_constants(keys) -> None:
    priv, pub = keys
    plugin = get_plugin("caching_sha2_password")
    assert (
        caching_sha2.REQUEST_PUBLIC_KEY,
        caching_sha2.FAST_AUTH_SUCCESS,
        caching_sha2.PERFORM_FULL_AUTH,
    ) == (2, 3, 4)
    assert plugin.client_response(b"pw", ABC, stage="full-rsa") == b"\x02"
    assert (
        plugin.verify(b"\x02", ABC, password=b"pw", stage="full-rsa", private_key_pem=priv) is None
    )
    ct = plugin.client_response(b"pw", ABC, stage="full-rsa", public_key_pem=pub)
    assert len(ct) == 256
    assert plugin.verify(ct, ABC, password=b"pw", stage="full-rsa", private_key_pem=priv) is True
    assert plugin.verify(ct, ABC, password=b"pw", stage="full-rsa") is None
    assert plugin.verify(ct, ABC, stage="full-rsa", private_key_pem=priv) is None
    assert plugin.verify(b"", ABC, password=b"") is True
    assert plugin.verify(b"", ABC, password=b"x") is False
    assert plugin.verify(caching_sha2.scramble(b"x", ABC), ABC) is None
    with pytest.raises(UsageError):
        plugin.client_response(b"pw", ABC, stage="slow")


def test_sha256_key_request_and_empty_password(keys) -> None:
    priv, pub = keys
    plugin = get_plugin("sha256_password")
    assert plugin.client_response(b"pw", ABC + b"\0") == bytes([sha256.REQUEST_PUBLIC_KEY])
    assert plugin.client_response(b"", ABC) == b"\0"
    assert plugin.client_response(b"", ABC, public_key_pem=pub) == b"\0"
    assert plugin.verify(b"\x01", ABC, password=b"pw", private_key_pem=priv) is None
    assert plugin.verify(b"\0", ABC, password=b"") is True
    assert plugin.verify(b"", ABC, password=b"") is True  # PyMySQL's empty answer
    assert plugin.verify(b"\0", ABC, password=b"pw") is False
    ct = plugin.client_response(b"pw", ABC, public_key_pem=pub)
    assert plugin.verify(ct, ABC, password=b"pw", private_key_pem=priv) is True
    assert plugin.verify(ct, ABC, password=b"pX", private_key_pem=priv) is False
    assert plugin.verify(ct, ABC, password=b"pw") is False  # no key: compared as clear text


def test_rsa_pkcs1_fallback_and_long_password(keys) -> None:
    priv, pub = keys
    pw = b"a-password-longer-than-20-bytes-and-then-some"
    for pad in ("oaep", "pkcs1"):
        ct = caching_sha2.rsa_encrypt(pw, ABC, pub, padding=pad)
        raw, got_pad = caching_sha2.rsa_decrypt_raw(ct, priv)
        assert got_pad == pad
        assert raw == caching_sha2.xor_with_nonce(pw + b"\0", ABC)
        assert caching_sha2.rsa_decrypt(ct, ABC, priv) == pw


def _exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_rsa_decrypt_errors_leak_nothing(keys) -> None:
    priv, pub = keys
    other_priv, _ = _pem_pair()
    pw = b"hunter2-very-secret"
    ct = caching_sha2.rsa_encrypt(pw, ABC, pub)
    raw = caching_sha2.xor_with_nonce(pw + b"\0", ABC)
    secrets = [pw.decode(), pw.hex(), raw.hex(), repr(raw)[2:-1]]
    secrets += [line for line in other_priv.decode().splitlines() if "-----" not in line]
    secrets += [line for line in priv.decode().splitlines() if "-----" not in line]

    def check(exc: BaseException) -> None:
        assert isinstance(exc, MysqlwireError)
        text = _exception_text(exc) + repr(exc.args)
        for s in secrets:
            assert s not in text
        assert exc.__cause__ is None

    with pytest.raises(AuthDataError) as e1:  # wrong key
        caching_sha2.rsa_decrypt(ct, ABC, other_priv)
    check(e1.value)
    with pytest.raises(AuthDataError) as e2:  # right key, wrong nonce
        caching_sha2.rsa_decrypt(ct, bytes(20), priv)
    check(e2.value)
    with pytest.raises(AuthDataError) as e3:  # not a key at all
        caching_sha2.rsa_decrypt(ct, ABC, priv[:200])
    check(e3.value)
    with pytest.raises(AuthDataError) as e4:  # wrong size
        caching_sha2.rsa_decrypt(ct[:-1], ABC, priv)
    check(e4.value)
    with pytest.raises(AuthDataError):  # verify reports an undecryptable answer, not False
        get_plugin("caching_sha2_password").verify(
            ct, ABC, password=pw, stage="full-rsa", private_key_pem=other_priv
        )


def test_public_key_pem_from_private(keys) -> None:
    priv, pub = keys
    assert caching_sha2.public_key_pem(priv).startswith(b"-----BEGIN PUBLIC KEY-----")
    assert caching_sha2.public_key_pem(priv.decode()) == pub


# ------------------------------------------------------------------------- clear / dialog


def test_clear_and_dialog_answers() -> None:
    clear_plugin = get_plugin("mysql_clear_password")
    assert clear_plugin.client_response(b"secret", b"") == b"secret\0"
    assert clear_plugin.client_response(b"", b"") == b"\0"
    assert clear_plugin.verify(b"secret\0", b"", password=b"secret") is True
    assert clear_plugin.verify(b"secret", b"", password=b"secret") is True
    assert clear_plugin.verify(b"secret\0", b"") is None


@pytest.mark.parametrize(
    ("byte", "password_like", "last"),
    [(2, False, False), (3, False, True), (4, True, False), (5, True, True)],
)
def test_dialog_question_byte(byte: int, password_like: bool, last: bool) -> None:
    assert dialog.is_password_question(byte) is password_like
    assert dialog.is_last(byte) is last


def test_dialog_exchange() -> None:
    plugin = get_plugin("dialog")
    assert get_plugin("auth_pam").name == "auth_pam"
    question = b"\x04Password: "
    assert dialog.parse_question(question) == (4, b"Password: ")
    assert plugin.client_response(b"secret", question) == b"secret\0"
    assert plugin.client_response(b"secret", b"") == b"secret\0"
    with pytest.raises(UsageError):
        plugin.client_response(b"secret", b"\x02login: ")
    assert plugin.client_response(b"secret", b"\x02login: ", answer=b"bob") == b"bob\0"
    assert plugin.verify(b"secret\0", question, password=b"secret") is True
    assert plugin.verify(b"secret", question, password=b"secret") is True
    assert plugin.verify(b"secreT\0", question, password=b"secret") is False
    assert plugin.verify(b"bob\0", b"\x03login: ", password=b"secret") is None
    with pytest.raises(ProtocolError):
        dialog.parse_question(b"")


# ------------------------------------------------------------------------- ed25519 / parsec


def test_ed25519_stored_key_verifies_without_password() -> None:
    nonce = bytes(range(32))
    sig = ed25519.sign(b"secret", nonce)
    stored = "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY"  # ed25519_password('secret')
    assert ed25519.stored(b"secret") == stored
    plugin = get_plugin("client_ed25519")
    assert plugin.verify(sig, nonce, stored=stored) is True
    assert plugin.verify(sig, nonce, stored=stored + "=") is True  # padded form accepted
    assert ed25519.verify_signature(sig, nonce, stored.encode()) is True
    assert plugin.verify(sig[:63], nonce, stored=stored) is False
    assert plugin.verify(sig, bytes(32), stored=stored) is False
    assert len(ed25519.sign(b"", nonce)) == 64  # empty password still signs
    with pytest.raises(ProtocolError):
        ed25519.sign(b"secret", nonce + b"\0")
    for bad in ("not base64!", "AAAA"):
        with pytest.raises(UsageError):
            plugin.verify(sig, nonce, stored=bad)


def test_parsec_parsing_and_limits() -> None:
    salt = bytes(range(18))
    stored = parsec.stored(b"secret", salt, 1)
    parsed = parsec.parse_stored(stored)
    assert parsed.factor == 1 and parsed.salt == salt and parsed.iterations == 2048
    assert stored.startswith("P1:") and len(stored.split(":")[1]) == 24
    assert len(stored.split(":")[2]) == 43
    assert parsec.parse_ext_salt(b"P\x02" + salt) == (2, salt)
    for bad in (
        b"Q\x00" + salt,
        b"P\x00" + salt[:-1],
        b"P" + bytes([parsec.MAX_ITERATION_FACTOR + 1]) + salt,
    ):
        with pytest.raises(ProtocolError):
            parsec.parse_ext_salt(bad)
    for bad in ("P0:xx:yy", "X0:AAAAAAAAAAAAAAAAAAAAAAAA:" + "A" * 43, "P0:AAAA:" + "A" * 43):
        with pytest.raises(UsageError):
            parsec.parse_stored(bad)
    plugin = get_plugin("parsec")
    nonce = bytes(32)
    assert plugin.client_response(b"secret", nonce) == b""
    random_answer = plugin.client_response(b"secret", nonce, ext_salt=b"P\x00" + salt)
    assert len(random_answer) == 96
    assert plugin.verify(random_answer, nonce, password=b"secret", ext_salt=b"P\x00" + salt)
    assert plugin.verify(random_answer, nonce, password=b"secret") is None  # no salt known
    assert (
        plugin.verify(random_answer[:95], nonce, password=b"secret", ext_salt=b"P\x00" + salt)
        is False
    )
