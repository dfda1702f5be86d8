"""parsec (MariaDB 11.6+; reference §5 and §6).

Exchange: server ``FE "parsec\\0"`` + 32-byte nonce; client sends an empty packet (asks for
the ext-salt); server sends the ext-salt, 20 bytes: ``'P'`` + iteration factor f + 18-byte
salt; client answers 96 bytes: client_nonce (32, random) || Ed25519 signature over
``server_nonce || client_nonce``.  Key: ``seed = PBKDF2-HMAC-SHA512(pw, salt, 1024 << f,
32)`` used as an ordinary RFC 8032 seed.

Stored (``mysql.global_priv``): ``P<f>:<base64 salt, 24 chars>:<base64 pubkey, 43 chars>``.
With the password and the capture's client nonce the answer is recomputed byte for byte; the
stored string alone verifies the signature.  Unverified against a live parsec server.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Any

from mysqlwire.errors import ProtocolError, UsageError

from . import ed25519 as _ed
from .base import (
    AuthPlugin,
    ClientStep,
    ServerStep,
    as_bytes,
    client_label,
    consteq,
    data_label,
    lazy_module,
)

hashlib = lazy_module("hashlib")  # (~3 ms of start-up: imported at the first proof)

NAME = "parsec"
NONCE_LENGTH = 32
SALT_LENGTH = 18
EXT_SALT_LENGTH = 2 + SALT_LENGTH
RESPONSE_LENGTH = NONCE_LENGTH + _ed.SIGNATURE_LENGTH
ALGORITHM = ord("P")
#: Largest iteration factor we run (1024 << 10 PBKDF2 rounds).  Servers send 0..3; clients
#: refuse large values too.  A capture with more is treated as malformed rather than
#: letting it pin the CPU.
MAX_ITERATION_FACTOR = 10


@dataclass(frozen=True)
class ParsecStored:
    """The parsed ``P<f>:<salt>:<pubkey>`` account value."""

    factor: int
    salt: bytes
    public_key: bytes

    @property
    def iterations(self) -> int:
        return iterations(self.factor)

    @property
    def ext_salt(self) -> bytes:
        return build_ext_salt(self.factor, self.salt)


def iterations(factor: int) -> int:
    """PBKDF2 rounds for iteration factor ``f``: ``1024 << f``."""
    return 1024 << factor


def _check_factor(factor: int) -> int:
    if not 0 <= factor <= MAX_ITERATION_FACTOR:
        raise ProtocolError(
            f"parsec iteration factor {factor} outside 0..{MAX_ITERATION_FACTOR}",
            kind="parsec_ext_salt",
            offset=1,
        )
    return factor


def parse_ext_salt(data: bytes) -> tuple[int, bytes]:
    """``(f, salt18)`` from the server's 20-byte ext-salt ``'P'`` + f + salt."""
    data = bytes(data)
    if len(data) != EXT_SALT_LENGTH:
        raise ProtocolError(
            f"parsec ext-salt is {len(data)} bytes, expected {EXT_SALT_LENGTH}",
            kind="parsec_ext_salt",
        )
    if data[0] != ALGORITHM:
        raise ProtocolError(
            f"parsec ext-salt algorithm byte 0x{data[0]:02x}, expected 'P'",
            kind="parsec_ext_salt",
            offset=0,
        )
    return _check_factor(data[1]), data[2:]


def build_ext_salt(factor: int, salt: bytes) -> bytes:
    salt = bytes(salt)
    if len(salt) != SALT_LENGTH:
        raise UsageError(f"a parsec salt is {SALT_LENGTH} bytes")
    return bytes([ALGORITHM, _check_factor(factor)]) + salt


def derive_seed(password: bytes, salt: bytes, f: int) -> bytes:
    """PBKDF2-HMAC-SHA512(pw, salt, 1024 << f, 32 bytes): the Ed25519 seed."""
    return hashlib.pbkdf2_hmac(
        "sha512", as_bytes(password), bytes(salt), iterations(_check_factor(f)), 32
    )


def public_key(password: bytes, salt: bytes, f: int) -> bytes:
    return _ed.public_key_from_seed(derive_seed(password, salt, f))


def format_stored(f: int, salt: bytes, public_key: bytes) -> str:
    """``P<f>:<base64 salt>:<base64 pubkey without padding>``."""
    return f"P{f}:{base64.b64encode(bytes(salt)).decode('ascii')}:{_ed.encode_key(public_key)}"


def stored(password: bytes, salt: bytes, f: int) -> str:
    """The account's stored value for ``password`` with this salt and factor."""
    return format_stored(f, salt, public_key(password, salt, f))


def parse_stored(text: str) -> ParsecStored:
    """Parse ``P<f>:<salt b64>:<pubkey b64>``."""
    bad = UsageError("not a parsec stored value ('P<f>:<base64 salt>:<base64 key>')")
    parts = text.strip().split(":")
    if len(parts) != 3 or not parts[0].startswith("P") or not parts[0][1:].isdigit():
        raise bad
    factor = int(parts[0][1:])
    try:
        salt = base64.b64decode(parts[1] + "=" * (-len(parts[1]) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise bad from None
    if len(salt) != SALT_LENGTH:
        raise bad
    if not 0 <= factor <= MAX_ITERATION_FACTOR:
        raise UsageError(f"parsec iteration factor {factor} outside 0..{MAX_ITERATION_FACTOR}")
    return ParsecStored(factor, salt, _ed.decode_key(parts[2]))


def _check_nonce(nonce: bytes, what: str) -> bytes:
    nonce = bytes(nonce)
    if len(nonce) != NONCE_LENGTH:
        raise ProtocolError(
            f"parsec {what} is {len(nonce)} bytes, expected 32", kind="auth_plugin_data"
        )
    return nonce


def response(password: bytes, server_nonce: bytes, ext_salt: bytes, client_nonce: bytes) -> bytes:
    """The client's 96-byte answer: client_nonce || Ed25519(seed, server_nonce || client_nonce)."""
    f, salt = parse_ext_salt(ext_salt)
    server_nonce = _check_nonce(server_nonce, "server nonce")
    client_nonce = _check_nonce(client_nonce, "client nonce")
    seed = derive_seed(password, salt, f)
    return client_nonce + _ed.sign_with_seed(seed, server_nonce + client_nonce)


_compute_response = response  # Parsec.verify's ``response`` parameter shadows the name


def verify_signature(answer: bytes, server_nonce: bytes, stored_or_public_key: str | bytes) -> bool:
    """Check a 96-byte answer with the stored string (or a 32-byte / base64 public key)."""
    answer = bytes(answer)
    if len(answer) != RESPONSE_LENGTH:
        return False
    if isinstance(stored_or_public_key, str) and stored_or_public_key.strip().startswith("P"):
        pub: bytes | str = parse_stored(stored_or_public_key).public_key
    else:
        pub = stored_or_public_key
    client_nonce, sig = answer[:NONCE_LENGTH], answer[NONCE_LENGTH:]
    message = _check_nonce(server_nonce, "server nonce") + client_nonce
    return _ed.verify_signature_raw(sig, message, pub)


class Parsec(AuthPlugin):
    """Exchange: switch data = 32-byte server nonce; the client's empty packet asks for the
    ext-salt; the server sends it raw (``'P'`` + f + salt); the client answers 96 bytes."""

    name = NAME
    replayable = True
    raw_server_data = True
    challenge = True

    def server_step(self, flow: Any, kind: str, data: bytes) -> ServerStep:
        flow.state["ext_salt"] = data
        flow.stage = "sign"
        return ServerStep("ext_salt", data_label(kind, data))

    def client_step(self, flow: Any, kind: str, data: bytes, in_tls: bool) -> ClientStep:
        if not data:
            flow.stage = "await-salt"
            return ClientStep("salt_request", client_label(NAME, data))
        return ClientStep(
            "signature",
            client_label(NAME, data),
            proof=True,
            check={"ext_salt": flow.state.get("ext_salt"), "client_nonce": data[:NONCE_LENGTH]},
        )

    def awaits_server_data(self, flow: Any) -> bool:
        return flow.stage == "await-salt"

    def client_response(self, password: bytes, server_data: bytes, **kw: Any) -> bytes:
        """Without ``ext_salt``: the empty packet that asks for it.  With it: the 96-byte
        answer (``client_nonce`` from the capture, random when not given)."""
        ext_salt = kw.get("ext_salt")
        if ext_salt is None:
            _check_nonce(server_data, "server nonce")
            return b""
        client_nonce = kw.get("client_nonce")
        if client_nonce is None:
            client_nonce = os.urandom(NONCE_LENGTH)
        return response(password, server_data, ext_salt, client_nonce)

    def verify(
        self,
        response: bytes,
        server_data: bytes,
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        """``response`` is the 96-byte answer (the empty salt request decides nothing).

        Password: recomputed with the capture's client nonce and ``ext_salt`` (or the salt
        and factor of ``stored``).  Stored only: signature verification.
        """
        answer = bytes(response)
        if not answer:
            return None
        if password is not None:
            ext_salt = kw.get("ext_salt")
            if ext_salt is None and stored is not None:
                ext_salt = parse_stored(stored).ext_salt
            if ext_salt is None:
                return None
            if len(answer) != RESPONSE_LENGTH:
                return False
            expected = _compute_response(password, server_data, ext_salt, answer[:NONCE_LENGTH])
            return consteq(answer, expected)
        if stored is not None:
            return verify_signature(answer, server_data, stored)
        return None


PLUGIN = Parsec()
