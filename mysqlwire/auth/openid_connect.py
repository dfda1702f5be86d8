"""authentication_openid_connect_client (MySQL 9.1+ Enterprise server plugin
``authentication_openid_connect``; the client plugin ships with every client).

Exchange: the server switches to ``authentication_openid_connect_client`` (its switch data
is not used by the client); the client -- which refuses to do so outside TLS -- answers
once::

    int<1>          capability flag (1)
    string<lenenc>  the OpenID Connect ID token (a JWT: ``base64url.base64url.base64url``)

and the server checks the token's signature against the identity provider's key and its
claims, then sends OK or ERR.  There is no challenge: the token is a **bearer secret**, as
good as a password until it expires.  So the client's answer counts as clear text (diagnose
flags it outside TLS, redact blanks it) and replay's "proof" check compares the token with
the one the user gives (``--password-file`` holding the token).

Sources: MySQL reference manual "OpenID Connect Pluggable Authentication" and
mysql-connector-python's client plugin (capability flag 1, then the length-encoded token;
tokens over 10 KiB are refused by that client).
"""

from __future__ import annotations

from typing import Any

from mysqlwire.errors import ProtocolError

from .base import AuthPlugin, ClientStep, as_bytes, client_label, consteq

NAME = "authentication_openid_connect_client"
#: The one capability flag value clients send.
CAPABILITY = 1
#: mysql-connector-python refuses token files over this size.
MAX_TOKEN = 10 * 1024


def _lenenc(n: int) -> bytes:
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + n.to_bytes(2, "little")
    if n < 1 << 24:
        return b"\xfd" + n.to_bytes(3, "little")
    return b"\xfe" + n.to_bytes(8, "little")


def response(token: bytes | str, capability: int = CAPABILITY) -> bytes:
    """The client's answer: capability byte + length-encoded token."""
    tok = as_bytes(token)
    return bytes([capability]) + _lenenc(len(tok)) + tok


def parse_response(data: bytes) -> tuple[int, bytes]:
    """``(capability, token)`` from a client answer; ProtocolError when it is not one."""
    data = bytes(data)
    if len(data) < 2:
        raise ProtocolError(
            f"{len(data)}-byte OpenID Connect answer (capability + token length needed)",
            kind="openid_connect_response",
        )
    first = data[1]
    if first < 251:
        size, n = 1, first
    elif first in (0xFC, 0xFD, 0xFE):
        size = {0xFC: 3, 0xFD: 4, 0xFE: 9}[first]
        if len(data) < 1 + size:
            raise ProtocolError("truncated token length", kind="openid_connect_response", offset=1)
        n = int.from_bytes(data[2 : 1 + size], "little")
    else:
        raise ProtocolError(
            f"token length prefix 0x{first:02x} is not a length",
            kind="openid_connect_response",
            offset=1,
        )
    token = data[1 + size :]
    if len(token) != n:
        raise ProtocolError(
            f"token length says {n} bytes, {len(token)} follow",
            kind="openid_connect_response",
            offset=1,
        )
    return data[0], token


def looks_like_jwt(token: bytes) -> bool:
    """Three non-empty base64url parts separated by dots (what clients check before sending)."""
    parts = bytes(token).split(b".")
    alphabet = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
    return len(parts) == 3 and all(p and set(p) <= alphabet for p in parts)


class OpenIDConnect(AuthPlugin):
    """One client answer carrying a bearer token; see the module docstring."""

    name = NAME
    replayable = True
    sends_secret = True

    def client_response(self, password: bytes, server_data: bytes = b"", **kw: Any) -> bytes:
        """``password`` is the ID token."""
        return response(password)

    def client_step(self, flow: Any, kind: str, data: bytes, in_tls: bool) -> ClientStep:
        if not data:
            return ClientStep("empty", client_label(NAME, data), result="empty")
        try:
            _, token = parse_response(data)
        except ProtocolError:
            return ClientStep(
                "malformed",
                client_label(NAME, data, cleartext=True),
                cleartext=True,
                result="mismatch",
                reason="not an OpenID Connect answer (capability + length-encoded token)",
            )
        label = f"{len(token)}-byte OpenID Connect ID token in clear ({NAME})"
        return ClientStep("token", label, proof=True, cleartext=True)

    def verify(
        self,
        response: bytes,
        server_data: bytes = b"",
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        """The answer's token equals ``password`` (the token the user holds).  The token's
        signature needs the identity provider's key: not checked here."""
        if password is None:
            return None
        _, token = parse_response(response)
        return consteq(token, as_bytes(password))

    def secret_bytes(self, data: bytes) -> bool:
        return True


PLUGIN = OpenIDConnect()
