"""mysql_old_password / scramble323 (pre-4.1; reference §6).

* ``hash_password``: two 31-bit values from a running mix over the bytes, skipping space
  and tab; stored as 16 lower-case hex (``OLD_PASSWORD()``).
* ``scramble323``: a linear PRNG (modulus 0x3FFFFFFF) seeded with hash(pw) XOR hash(N[:8])
  gives 8 bytes in 0x40..0x5F, all XORed with one more output (0..31).

Wire forms: after the bare ``FE`` switch (and in any 4.1 exchange) the client sends the
8 bytes + NUL (:data:`FORM_SWITCH`); in a 4.0-style HandshakeResponse320 the auth field is
the 8 bytes themselves (:data:`FORM_320`).  An empty password sends nothing.
The scramble needs only the hash, so the stored 16-hex value verifies a capture.
"""

from __future__ import annotations

import math
from typing import Any

from mysqlwire.errors import ProtocolError, UsageError

from .base import (
    AuthPlugin,
    ClientStep,
    Meaning,
    as_bytes,
    client_label,
    consteq,
    is_empty_answer,
    switch_meaning,
)

NAME = "mysql_old_password"
SCRAMBLE_LENGTH_323 = 8
FORM_SWITCH = "switch"
FORM_320 = "320"

_MASK31 = 0x7FFFFFFF
_MASK32 = 0xFFFFFFFF
_MAX_VALUE = 0x3FFFFFFF


def hash_password(password: bytes) -> tuple[int, int]:
    """MySQL's ``hash_password``: two 31-bit integers (spaces and tabs are skipped)."""
    nr, add, nr2 = 1345345333, 7, 0x12345671
    for c in as_bytes(password):
        if c in (0x20, 0x09):
            continue
        # Only the low 31 bits are kept at the end and carries only move upwards,
        # so working modulo 2**32 gives the C (unsigned long) result.
        nr = (nr ^ ((((nr & 63) + add) * c) + (nr << 8))) & _MASK32
        nr2 = (nr2 + (((nr2 << 8) & _MASK32) ^ nr)) & _MASK32
        add = (add + c) & _MASK32
    return nr & _MASK31, nr2 & _MASK31


def stored_hash(password: bytes) -> str:
    """``OLD_PASSWORD(pw)``: 16 lower-case hex (``""`` for no password)."""
    pw = as_bytes(password)
    if not pw:
        return ""
    a, b = hash_password(pw)
    return f"{a:08x}{b:08x}"


def parse_stored_hash(stored: str) -> tuple[int, int] | None:
    """The two hash words of a 16-hex old hash (``None`` for the empty-password account)."""
    s = stored.strip()
    if s == "":
        return None
    try:
        if len(s) != 16:
            raise ValueError
        return int(s[:8], 16), int(s[8:], 16)
    except ValueError:
        raise UsageError("not a mysql_old_password hash (16 hex digits)") from None


def _nonce8(nonce: bytes) -> bytes:
    nonce = bytes(nonce)
    if len(nonce) < SCRAMBLE_LENGTH_323:
        raise ProtocolError(
            f"scramble323 needs an 8-byte nonce, got {len(nonce)} bytes", kind="auth_plugin_data"
        )
    return nonce[:SCRAMBLE_LENGTH_323]


def _scramble_from_words(words: tuple[int, int], nonce8: bytes) -> bytes:
    msg = hash_password(nonce8)
    seed1 = (words[0] ^ msg[0]) % _MAX_VALUE
    seed2 = (words[1] ^ msg[1]) % _MAX_VALUE
    max_dbl = float(_MAX_VALUE)

    def rnd() -> float:
        nonlocal seed1, seed2
        seed1 = (seed1 * 3 + seed2) % _MAX_VALUE
        seed2 = (seed1 + seed2 + 33) % _MAX_VALUE
        return seed1 / max_dbl

    out = [math.floor(rnd() * 31) + 64 for _ in range(SCRAMBLE_LENGTH_323)]
    extra = math.floor(rnd() * 31)
    return bytes(b ^ extra for b in out)


def scramble323(password: bytes, nonce8: bytes) -> bytes:
    """The 8-byte scramble over the first 8 nonce bytes (``b""`` for an empty password)."""
    pw = as_bytes(password)
    if not pw:
        return b""
    return _scramble_from_words(hash_password(pw), _nonce8(nonce8))


def scramble323_from_hash(stored16: str, nonce8: bytes) -> bytes:
    """The same scramble from the stored 16-hex hash (no password needed)."""
    words = parse_stored_hash(stored16)
    if words is None:
        return b""
    return _scramble_from_words(words, _nonce8(nonce8))


def wire_form(scramble: bytes, form: str = FORM_SWITCH) -> bytes:
    """Auth data as sent: ``+ NUL`` after a switch / 4.1 exchange, bare in HandshakeResponse320."""
    if form not in (FORM_SWITCH, FORM_320):
        raise UsageError(f"unknown mysql_old_password form {form!r}")
    if not scramble:
        return b""
    return scramble + b"\0" if form == FORM_SWITCH else scramble


def _strip_form(response: bytes) -> bytes | None:
    """The bare scramble inside either wire form (``None`` if neither shape)."""
    response = bytes(response)
    if response in (b"", b"\0"):
        return b""
    if len(response) == SCRAMBLE_LENGTH_323 + 1 and response[-1] == 0:
        return response[:-1]
    if len(response) == SCRAMBLE_LENGTH_323:
        return response
    return None


def verify_password(response: bytes, nonce: bytes, password: bytes) -> bool:
    """Either wire form of ``response`` against the password."""
    got = _strip_form(response)
    return got is not None and consteq(got, scramble323(password, nonce))


def verify_stored(response: bytes, nonce: bytes, stored16: str) -> bool:
    """Either wire form of ``response`` against the stored 16-hex hash."""
    got = _strip_form(response)
    return got is not None and consteq(got, scramble323_from_hash(stored16, nonce))


class OldPassword(AuthPlugin):
    """Exchange: the greeting nonce (its first 8 bytes count) or a bare ``FE`` switch; one
    client answer, the 8-byte scramble323 (+ NUL after a switch); empty = no password."""

    name = NAME
    offline_guess_cost = (
        "the pre-4.1 hash is weak: the 8-byte scramble323 and the nonce reveal it almost for free"
    )
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
        """The switch's nonce (only its first 8 bytes are used); the 3.23 scramble."""
        if sender == "server":
            return switch_meaning(kind, data, "nonce (first 8 bytes used)")
        n = len(data) if data is not None else (length or 0)
        return Meaning(f"old scramble ({n} B)")

    def client_step(self, flow: Any, kind: str, data: bytes, in_tls: bool) -> ClientStep:
        if is_empty_answer(data):
            return ClientStep("empty", client_label(NAME, data), result="empty")
        return ClientStep(
            "scramble",
            client_label(NAME, data),
            proof=True,
            server_data=flow.server_data[:SCRAMBLE_LENGTH_323],
        )

    def client_response(self, password: bytes, server_data: bytes, **kw: Any) -> bytes:
        form = kw.get("form") or FORM_SWITCH
        return wire_form(scramble323(password, server_data), form)

    def verify(
        self,
        response: bytes,
        server_data: bytes,
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        if password is not None:
            return verify_password(response, server_data, password)
        if stored is not None:
            return verify_stored(response, server_data, stored)
        return None


PLUGIN = OldPassword()
