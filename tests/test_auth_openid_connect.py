"""authentication_openid_connect_client: the plugin added by its module alone.

The module (mysqlwire/auth/openid_connect.py) is the only code change that makes the follower,
replay, diagnose and redact know it: these tests go through those layers end to end.

Vectors are written from the wire format the MySQL manual and mysql-connector-python document
(``int<1>`` capability flag = 1, ``string<lenenc>`` ID token) by hand, not by the code under
test; the token is the JWT example of RFC 7519 section 3.1.
"""

from __future__ import annotations

import pytest

from mysqlwire.auth import CLEARTEXT_PLUGINS, Flow, client_data_is_secret, get_plugin
from mysqlwire.auth import openid_connect as oidc
from mysqlwire.auth.passwords import Secrets
from mysqlwire.errors import ProtocolError
from mysqlwire.model import AuthStep, Connection, Exchange
from mysqlwire.replay import replay_connection

# RFC 7519, section 3.1 (an example JWT; 3 base64url parts)
JWT = (
    b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    b".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    b".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)
NAME = "authentication_openid_connect_client"
NONCE = bytes(range(1, 21))


def test_wire_vectors_short_and_long_token():
    assert len(JWT) == 179  # < 251: one length byte
    assert oidc.response(JWT) == b"\x01\xb3" + JWT
    long_token = b"A" * 300 + b"." + b"B" * 10 + b"." + b"C" * 10
    assert oidc.response(long_token) == b"\x01\xfc" + (322).to_bytes(2, "little") + long_token
    assert oidc.parse_response(b"\x01\xfc" + (322).to_bytes(2, "little") + long_token) == (
        1,
        long_token,
    )
    assert oidc.looks_like_jwt(JWT) and not oidc.looks_like_jwt(b"not a token")


@pytest.mark.parametrize(
    "bad",
    [b"\x01", b"\x01\x05abc", b"\x01\xfc\x10", b"\x01\xfb", b"\x01\x02abc"],
)
def test_malformed_answers_are_protocol_errors(bad):
    with pytest.raises(ProtocolError):
        oidc.parse_response(bad)


def test_registered_by_its_module_and_a_bearer_secret():
    p = get_plugin(NAME)
    assert p is oidc.PLUGIN and p.replayable
    assert NAME in CLEARTEXT_PLUGINS  # diagnose: a token outside TLS is a finding
    assert client_data_is_secret(NAME, oidc.response(JWT))  # redact always blanks it
    flow = Flow(NAME, NONCE + b"\0")
    step = flow.client("auth_data", oidc.response(JWT))
    assert step.proof and step.cleartext and step.meaning == "token"
    assert "179" in step.label and JWT.decode() not in step.label


def _login(answer: bytes, *, outcome: str = "ok") -> Connection:
    conn = Connection(id=1, client="c:1", server="s:3306", greeting_nonce=NONCE, greeting_seen=True)
    ex = Exchange(
        kind="login",
        nonce=NONCE,
        user="u",
        client_plugin="caching_sha2_password",
        auth_plugin="caching_sha2_password",
    )
    ex.steps += [
        AuthStep("client", "handshake_response", 1, "caching_sha2_password", b"", 0.0),
        AuthStep("server", "auth_switch_request", 2, NAME, NONCE + b"\0", 0.0),
        AuthStep("client", "auth_data", 3, NAME, answer, 0.0),
        AuthStep("server", "ok" if outcome == "ok" else "err", 4, NAME, b"", 0.0),
    ]
    ex.outcome = outcome
    conn.exchanges.append(ex)
    return conn


def test_replay_compares_the_token():
    conn = _login(oidc.response(JWT))
    v = replay_connection(conn, Secrets(password=JWT))
    assert v.verdict == "PROOF_MATCHES"
    assert [(s.plugin, s.result) for s in v.steps] == [
        ("caching_sha2_password", "empty"),
        (NAME, "match"),
    ]
    wrong = replay_connection(_login(oidc.response(JWT[:-1] + b"Y")), Secrets(password=JWT))
    assert wrong.verdict == "PROOF_MISMATCH" and wrong.steps[-1].result == "mismatch"
    garbled = replay_connection(_login(b"\x01\xff" + JWT), Secrets(password=JWT))
    assert garbled.steps[-1].result == "mismatch"
    assert "OpenID Connect" in (garbled.steps[-1].reason or "")
    empty = replay_connection(_login(b""), Secrets(password=JWT))
    assert empty.steps[-1].result == "empty"


def test_diagnose_sees_a_token_in_clear():
    from mysqlwire.diagnose import diagnose_connection

    conn = _login(oidc.response(JWT))
    codes = [f.code for f in diagnose_connection(conn, None)]
    assert "CLEARTEXT_WITHOUT_TLS" in codes, codes
