"""sha256_password (MySQL 5.6+, deprecated 8.0.16; reference §5 and §6).

Greeting/switch data: the 20-byte nonce + NUL.  First answer:

* inside TLS: ``pw || 00`` (stage ``"full-tls"``);
* without TLS and without the server's key: ``01`` (request the key); the server answers
  ``01`` + PEM and the client sends RSA-OAEP(SHA-1) of ``(pw || 00) XOR N`` (``"full-rsa"``);
* empty password: a single ``00`` whatever the transport (libmysqlclient).

The stored ``$5$...`` value (SHA-256-crypt) is not used here: verification needs the
password (TLS path) or the server's RSA private key (RSA path).
"""

from __future__ import annotations

from typing import Any

from mysqlwire.errors import UsageError

from .base import (
    RSA_CIPHERTEXT_SIZES,
    AuthPlugin,
    ClientStep,
    Meaning,
    ServerAuth,
    ServerStep,
    as_bytes,
    client_label,
    consteq,
    data_label,
    is_empty_answer,
)
from .caching_sha2 import (
    PADDING_OAEP,
    STAGE_FULL_RSA,
    STAGE_FULL_TLS,
    describe_full_answer,
    describe_server,
    is_public_key,
    load_private_key,
    looks_clear,
    public_key_step,
    rsa_decrypt,
    rsa_decrypt_raw,
    rsa_encrypt,
    rsa_or_clear,
    verify_rsa,
)

NAME = "sha256_password"

#: sha256_password's "send me your public key" byte (caching_sha2 uses 02).
REQUEST_PUBLIC_KEY = 1

__all__ = [
    "NAME",
    "REQUEST_PUBLIC_KEY",
    "Sha256Password",
    "PLUGIN",
    "clear_response",
    "rsa_decrypt",
    "rsa_decrypt_raw",
    "rsa_encrypt",
    "verify_rsa",
]


def clear_response(password: bytes) -> bytes:
    """``pw || 00`` (a single ``00`` for the empty password)."""
    return as_bytes(password) + b"\0"


def _rsa_sized(response: bytes, private_key_pem: Any) -> bool:
    return len(response) == (load_private_key(private_key_pem).key_size + 7) // 8


class Sha256Password(AuthPlugin):
    """Exchange (stages ``first`` -> ``full-rsa``): nonce as for caching_sha2; inside TLS
    the client answers ``pw || 00``; without TLS ``01`` (key request), the server ``01`` +
    PEM, the client the RSA ciphertext; an empty password is a lone ``00``."""

    name = NAME
    replayable = True
    challenge = True

    def describe(
        self,
        sender: str,
        kind: str,
        data: bytes | None,
        *,
        length: int | None = None,
        stage: str | None = None,
        in_tls: bool = False,
    ) -> Meaning | None:
        """As caching_sha2 (the ``01`` key request, the PEM key, RSA or clear text); the
        server never sends ``01 03`` / ``01 04`` here."""
        if sender == "server":
            return describe_server(self, kind, data)
        return describe_full_answer(data, length, stage, request=REQUEST_PUBLIC_KEY, in_tls=in_tls)

    def server_step(self, flow: Any, kind: str, data: bytes) -> ServerStep:
        if kind == "auth_more_data" and is_public_key(data):
            flow.stage = STAGE_FULL_RSA
            return public_key_step(data)
        return ServerStep("data", data_label(kind, data))

    def client_step(self, flow: Any, kind: str, data: bytes, in_tls: bool) -> ClientStep:
        n = len(data)
        rsa = n in RSA_CIPHERTEXT_SIZES
        if data == bytes([REQUEST_PUBLIC_KEY]):
            flow.stage = STAGE_FULL_RSA
            return ClientStep(
                "key_request", "a single 0x01 (request for the server's RSA public key)"
            )
        if data == b"\x00":
            return ClientStep("empty", client_label(NAME, data), result="empty")
        if flow.stage == STAGE_FULL_RSA or (not in_tls and n >= 128 and not data.endswith(b"\x00")):
            return ClientStep(
                "rsa",
                client_label(NAME, data, rsa=rsa),
                proof=True,
                check={"stage": STAGE_FULL_RSA},
            )
        clear = looks_clear(data)
        return ClientStep(
            "cleartext",
            client_label(NAME, data, cleartext=clear, rsa=rsa),
            proof=True,
            cleartext=clear,
            check={"stage": STAGE_FULL_TLS, "tls": True},
        )

    def server_exchange(self, data: bytes, ctx: ServerAuth) -> Any:
        """``pw || 00`` over TLS; without TLS the RSA exchange (or allowed clear text)."""
        pw = ctx.password
        if is_empty_answer(data):
            ctx.password_used = False
            ctx.path = "empty"
            return pw is not None and not pw
        ctx.password_used = True
        if ctx.tls:
            ctx.path = "tls"
            got: bytes | None = data[:-1] if data.endswith(b"\0") else data
        else:
            got = yield from rsa_or_clear(ctx, data, bytes([REQUEST_PUBLIC_KEY]), "")
        return got is not None and pw is not None and consteq(got, pw)

    def secret_bytes(self, data: bytes) -> bool:
        return len(data) > 1 and data.endswith(b"\x00")

    def client_response(self, password: bytes, server_data: bytes, **kw: Any) -> bytes:
        """``tls=True`` or ``stage="full-tls"``: ``pw || 00``; otherwise the RSA ciphertext
        when ``public_key_pem`` is given, else ``01``.  Empty password: ``00``."""
        pw = as_bytes(password)
        if not pw:
            return b"\0"
        stage = kw.get("stage")
        if stage not in (None, STAGE_FULL_TLS, STAGE_FULL_RSA):
            raise UsageError(f"unknown sha256_password stage {stage!r}")
        if stage == STAGE_FULL_TLS or (stage is None and kw.get("tls")):
            return clear_response(pw)
        key = kw.get("public_key_pem")
        if key is None:
            return bytes([REQUEST_PUBLIC_KEY])
        return rsa_encrypt(pw, server_data, key, padding=kw.get("padding") or PADDING_OAEP)

    def verify(
        self,
        response: bytes,
        server_data: bytes,
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        """Stage from ``stage``/``tls`` or, if neither, from the shape: an answer of the RSA
        key's size is decrypted when ``private_key_pem`` is given, else ``pw || 00`` is
        compared.  ``01`` (key request) and ``stored`` decide nothing.  Raises
        :class:`~mysqlwire.auth.base.AuthDataError` when an RSA answer does not decrypt."""
        response = bytes(response)
        stage = kw.get("stage")
        if stage not in (None, STAGE_FULL_TLS, STAGE_FULL_RSA):
            raise UsageError(f"unknown sha256_password stage {stage!r}")
        key = kw.get("private_key_pem")
        if response == bytes([REQUEST_PUBLIC_KEY]) and stage != STAGE_FULL_TLS:
            return None
        if password is None:
            return None
        pw = as_bytes(password)
        if not pw:  # libmysqlclient sends 00, PyMySQL an empty answer
            return response in (b"", b"\0")
        if response in (b"", b"\0"):
            return False
        if stage is None:
            if kw.get("tls"):
                stage = STAGE_FULL_TLS
            elif key is not None and _rsa_sized(response, key):
                stage = STAGE_FULL_RSA
            else:
                stage = STAGE_FULL_TLS
        if stage == STAGE_FULL_TLS:
            return consteq(response, clear_response(pw))
        if key is None:
            return None
        return verify_rsa(response, server_data, key, pw)


PLUGIN = Sha256Password()
