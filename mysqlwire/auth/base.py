"""The one small interface every auth plugin module implements, and shared helpers.

A plugin object answers two questions for replay:

* :meth:`AuthPlugin.client_response` -- what a client must send as its *first* answer for
  this plugin, given the data the server sent when it started the plugin (the 20-byte
  greeting nonce, or an AuthSwitchRequest's plugin data);
* :meth:`AuthPlugin.verify` -- the server-side check of a captured answer against a
  password or the account's stored hash.  ``True``/``False`` is a decision; ``None`` means
  "cannot decide with what was given" (never a guess).

Keyword arguments that several plugins understand (unknown ones are ignored, so replay can
pass one context to any plugin):

``stage``            which step of a multi-step plugin the response belongs to
                     (``"fast"``, ``"full-tls"``, ``"full-rsa"``: the vectors' ``path`` values)
``tls``              the answer travelled inside TLS (sha256_password)
``public_key_pem``   server RSA public key (client side of the RSA paths)
``private_key_pem``  server RSA private key (verifying the RSA paths)
``padding``          ``"oaep"`` (default) or ``"pkcs1"`` for RSA encryption
``form``             mysql_old_password wire form: ``"switch"`` (8 bytes + NUL) or ``"320"``
``ext_salt``         parsec ext-salt (``'P'`` + f + 18-byte salt)
``client_nonce``     parsec client nonce (32 bytes)
``answer``           dialog: the answer to a non-password question

Passwords are bytes (what the client hashed: UTF-8 of what the user typed).  ``str`` is
accepted and UTF-8 encoded; a :class:`~mysqlwire.auth.passwords.Secret` is unwrapped.
"""

from __future__ import annotations

import hmac
from typing import Any

from mysqlwire.errors import MysqlwireError, ProtocolError, UsageError

#: Length of the greeting nonce every scramble plugin uses (MySQL's ``SCRAMBLE_LENGTH``).
SCRAMBLE_LENGTH = 20


class AuthDataError(MysqlwireError):
    """Auth data that cannot be processed (wrong key, corrupt ciphertext...).

    Messages never contain passwords, key material or decrypted bytes.
    """


def as_bytes(password: Any) -> bytes:
    """Password bytes from ``bytes``/``bytearray``/``memoryview``/``str``/``Secret``."""
    reveal = getattr(password, "reveal", None)
    if callable(reveal):
        password = reveal()
    if isinstance(password, bytes):
        return password
    if isinstance(password, (bytearray, memoryview)):
        return bytes(password)
    if isinstance(password, str):
        return password.encode("utf-8")
    raise UsageError(f"a password must be bytes or str, not {type(password).__name__}")


def nonce_from_switch_data(data: bytes, length: int = SCRAMBLE_LENGTH) -> bytes:
    """The ``length``-byte nonce inside greeting / AuthSwitchRequest plugin data.

    Servers send the 20-byte nonce followed by a NUL (greeting part 2, MySQL and MariaDB
    switch data); the NUL is *not* part of the nonce (keeping it breaks caching_sha2, see
    mysql-nio PR #127).  Accepts exactly ``length`` bytes, or ``length`` bytes + one NUL.
    """
    data = bytes(data)
    if len(data) == length + 1 and data[-1] == 0:
        return data[:length]
    if len(data) == length:
        return data
    raise ProtocolError(
        f"auth plugin data is {len(data)} bytes, expected a {length}-byte nonce "
        "(optionally followed by one NUL)",
        kind="auth_plugin_data",
    )


def consteq(a: bytes, b: bytes) -> bool:
    """Constant-time equality of two byte strings."""
    return hmac.compare_digest(bytes(a), bytes(b))


def xor_bytes(a: bytes, b: bytes) -> bytes:
    """XOR of two equal-length byte strings."""
    if len(a) != len(b):
        raise ValueError("xor_bytes needs equal lengths")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


class AuthPlugin:
    """Base class: one instance per client-side plugin name."""

    #: client-side plugin name as it appears on the wire
    name: str = ""
    #: True when replay can recompute / check this plugin's proofs
    replayable: bool = True

    def client_response(self, password: bytes, server_data: bytes, **kw: Any) -> bytes:
        """The client's first answer for this plugin (raw auth data, no length prefix)."""
        raise NotImplementedError

    def verify(
        self,
        response: bytes,
        server_data: bytes,
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        """Server-side check of ``response``; ``None`` when undecidable with what was given."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
