"""client_ed25519 (MariaDB ``ed25519`` plugin, 10.1.22+; reference §6).

The server switches with a 32-byte nonce M (no trailing NUL).  Key derivation is *not* the
RFC 8032 seed derivation: ``az = SHA-512(pw)`` for a password of any length, secret scalar
``a = clamp(az[0:32])``, public ``A = a·B``.  Signature ``R || S`` with
``r = SHA-512(az[32:64] || M) mod L``, ``R = r·B``, ``S = r + SHA-512(R || A || M)·a mod L``
-- i.e. RFC 8032 with the password in place of the seed (identical for a 32-byte password).
Deterministic; an empty password still signs.

Stored: base64 of A without ``=`` padding (43 chars).  The stored key verifies a signature
(standard Ed25519 verification) but cannot produce one.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from mysqlwire.errors import ProtocolError, UsageError

from .base import (
    AuthPlugin,
    ClientStep,
    Meaning,
    ServerStep,
    as_bytes,
    client_label,
    consteq,
    data_label,
    lazy_module,
    switch_meaning,
)

hashlib = lazy_module("hashlib")  # (~3 ms of start-up: imported at the first proof)

# PyNaCl is loaded when a signature is first computed or checked
_nb = lazy_module("nacl.bindings")
_nacl_exceptions = lazy_module("nacl.exceptions")

NAME = "client_ed25519"
NONCE_LENGTH = 32
SIGNATURE_LENGTH = 64
PUBLIC_KEY_LENGTH = 32


def _clamp(s32: bytes) -> bytes:
    b = bytearray(s32)
    b[0] &= 248
    b[31] &= 63
    b[31] |= 64
    return bytes(b)


def _reduce(data64: bytes) -> bytes:
    """A 64-byte little-endian integer modulo L (32 bytes)."""
    return _nb.crypto_core_ed25519_scalar_reduce(data64)


def _expand(az: bytes) -> tuple[bytes, bytes, bytes]:
    """(clamped scalar, scalar mod L, public key) from the 64-byte expanded secret."""
    a = _clamp(az[:32])
    a_mod_l = _reduce(a + bytes(32))
    return a, a_mod_l, _nb.crypto_scalarmult_ed25519_base_noclamp(a)


def _sign_expanded(az: bytes, message: bytes) -> bytes:
    _, a_mod_l, pub = _expand(az)
    r = _reduce(hashlib.sha512(az[32:] + message).digest())
    big_r = _nb.crypto_scalarmult_ed25519_base_noclamp(r)
    k = _reduce(hashlib.sha512(big_r + pub + message).digest())
    s = _nb.crypto_core_ed25519_scalar_add(r, _nb.crypto_core_ed25519_scalar_mul(k, a_mod_l))
    return big_r + s


def sign_with_seed(seed: bytes, message: bytes) -> bytes:
    """Ed25519 signature where ``seed`` is hashed with SHA-512 (any length; RFC 8032 when
    32 bytes).  Shared with parsec."""
    return _sign_expanded(hashlib.sha512(seed).digest(), bytes(message))


def public_key_from_seed(seed: bytes) -> bytes:
    return _expand(hashlib.sha512(seed).digest())[2]


def public_key(password: bytes) -> bytes:
    """The 32-byte public key A = clamp(SHA-512(pw)[:32])·B."""
    return public_key_from_seed(as_bytes(password))


def encode_key(key32: bytes) -> str:
    """base64 without ``=`` padding (43 chars), as ``ed25519_password()`` shows it."""
    return base64.b64encode(bytes(key32)).decode("ascii").rstrip("=")


def decode_key(text: str | bytes) -> bytes:
    """32 raw bytes from a base64 key with or without padding."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    s = text.strip()
    try:
        raw = base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError("not a base64 Ed25519 public key") from None
    if len(raw) != PUBLIC_KEY_LENGTH:
        raise UsageError(f"an Ed25519 public key is 32 bytes, this one decodes to {len(raw)}")
    return raw


def stored(password: bytes) -> str:
    """The account's stored value (``ed25519_password(pw)``): 43 base64 characters."""
    return encode_key(public_key(password))


def _check_nonce(nonce: bytes) -> bytes:
    nonce = bytes(nonce)
    if len(nonce) != NONCE_LENGTH:
        raise ProtocolError(
            f"client_ed25519 nonce is {len(nonce)} bytes, expected 32", kind="auth_plugin_data"
        )
    return nonce


def sign(password: bytes, nonce32: bytes) -> bytes:
    """The client's 64-byte answer (``R || S``) to the server's 32-byte nonce."""
    return sign_with_seed(as_bytes(password), _check_nonce(nonce32))


def _as_public_key(public_key_or_stored: bytes | str) -> bytes:
    if isinstance(public_key_or_stored, (bytes, bytearray, memoryview)):
        raw = bytes(public_key_or_stored)
        if len(raw) == PUBLIC_KEY_LENGTH:
            return raw
        return decode_key(raw)
    return decode_key(public_key_or_stored)


def verify_signature_raw(sig: bytes, message: bytes, public_key_or_stored: bytes | str) -> bool:
    """Standard Ed25519 verification (libsodium) of ``sig`` over ``message``."""
    pub = _as_public_key(public_key_or_stored)
    sig = bytes(sig)
    if len(sig) != SIGNATURE_LENGTH:
        return False
    try:
        _nb.crypto_sign_open(sig + bytes(message), pub)
    except (_nacl_exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


def verify_signature(sig: bytes, nonce: bytes, public_key_or_stored: bytes | str) -> bool:
    """Check a client_ed25519 answer with the public key (32 raw bytes) or stored string."""
    return verify_signature_raw(sig, _check_nonce(nonce), public_key_or_stored)


class Ed25519Password(AuthPlugin):
    """Exchange: the server switches with a 32-byte nonce (no NUL), the client answers the
    64-byte signature.  A client that names client_ed25519 in its HandshakeResponse sends
    an empty answer first; the MariaDB server then sends the nonce raw (escaped with ``01``
    only when it starts with ``01``/``FE``/``FF``)."""

    name = NAME
    offline_guess_cost = (
        "one SHA-512 + Ed25519 signature per guess (the signature is deterministic)"
    )
    replayable = True
    raw_server_data = True
    challenge = True
    first_stage = "sign"
    # a signature is never empty: an empty answer is libmariadb without client_ed25519.so
    empty_answer_possible = False

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
        """The switch carries the 32-byte nonce; the client answers with a signature."""
        if sender == "server":
            return switch_meaning(kind, data, "nonce for the ed25519 signature")
        n = len(data) if data is not None else (length or 0)
        return Meaning(f"ed25519 signature ({n} B)")

    def server_step(self, flow: Any, kind: str, data: bytes) -> ServerStep:
        if flow.stage == "await-nonce":
            flow.server_data = data
            flow.stage = "sign"
            return ServerStep("nonce", data_label(kind, data))
        return ServerStep("data", data_label(kind, data))

    def client_step(self, flow: Any, kind: str, data: bytes, in_tls: bool) -> ClientStep:
        if not data:
            if kind in ("handshake_response", "com_change_user"):
                flow.stage = "await-nonce"  # names the plugin, waits for the server's nonce
                return ClientStep("announce", client_label(NAME, data))
            return ClientStep("empty", client_label(NAME, data), result="empty")
        return ClientStep("signature", client_label(NAME, data), proof=True)

    def awaits_server_data(self, flow: Any) -> bool:
        return flow.stage == "await-nonce"

    def client_response(self, password: bytes, server_data: bytes, **kw: Any) -> bytes:
        return sign(password, server_data)

    def verify(
        self,
        response: bytes,
        server_data: bytes,
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        """Password: byte-exact recomputation; stored key: signature verification."""
        if password is not None:
            return consteq(bytes(response), sign(password, server_data))
        if stored is not None:
            return verify_signature(response, server_data, stored)
        return None


PLUGIN = Ed25519Password()
ALIASES = {"ed25519": NAME}
