"""mysql_native_password (reference §6).

Client: ``SHA1(pw) XOR SHA1(N || SHA1(SHA1(pw)))`` (20 bytes; empty password -> empty).
Stored: ``*`` + 40 upper-case hex of ``SHA1(SHA1(pw))``.  The stored hash is enough for the
server's own check, so it verifies a capture without the password.
"""

from __future__ import annotations

from typing import Any

from mysqlwire.errors import UsageError

from .base import (
    SCRAMBLE_LENGTH,
    AuthPlugin,
    ClientStep,
    Meaning,
    ServerAuth,
    as_bytes,
    client_label,
    consteq,
    lazy_module,
    nonce_from_switch_data,
    switch_meaning,
    xor_bytes,
)

hashlib = lazy_module("hashlib")  # (~3 ms of start-up: imported at the first proof)

NAME = "mysql_native_password"


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def scramble(password: bytes, nonce: bytes) -> bytes:
    """The 20-byte client proof (``b""`` for an empty password)."""
    pw = as_bytes(password)
    if not pw:
        return b""
    return scramble_raw(pw, nonce_from_switch_data(nonce))


def scramble_raw(password: bytes, nonce: bytes) -> bytes:
    """The proof over ``nonce`` exactly as given (no NUL stripping, any length):
    what a buggy client computes from a wrong or stale nonce (replay's
    NONCE_MISUSE check)."""
    pw = as_bytes(password)
    if not pw:
        return b""
    stage1 = _sha1(pw)
    return xor_bytes(stage1, _sha1(bytes(nonce) + _sha1(stage1)))


def stored_hash(password: bytes) -> str:
    """``mysql.user.authentication_string``: ``*`` + 40 upper hex (``""`` for no password)."""
    pw = as_bytes(password)
    if not pw:
        return ""
    return "*" + _sha1(_sha1(pw)).hex().upper()


def parse_stored_hash(stored: str) -> bytes:
    """The 20-byte stage2 hash inside ``*HEX`` (``b""`` for the empty-password account)."""
    if stored == "":
        return b""
    s = stored.strip()
    if len(s) != 41 or s[0] != "*":
        raise UsageError("not a mysql_native_password hash ('*' followed by 40 hex digits)")
    try:
        return bytes.fromhex(s[1:])
    except ValueError:
        raise UsageError(
            "not a mysql_native_password hash ('*' followed by 40 hex digits)"
        ) from None


def verify_stored(response: bytes, nonce: bytes, stored_hash: str) -> bool:
    """The server's check: ``SHA1(response XOR SHA1(N || stage2)) == stage2``."""
    stage2 = parse_stored_hash(stored_hash)
    response = bytes(response)
    if not stage2:
        return response == b""
    if len(response) != SCRAMBLE_LENGTH:
        return False
    nonce = nonce_from_switch_data(nonce)
    stage1 = xor_bytes(response, _sha1(nonce + stage2))
    return consteq(_sha1(stage1), stage2)


def verify_password(response: bytes, nonce: bytes, password: bytes) -> bool:
    """Recompute the scramble from the password and compare byte for byte."""
    return consteq(bytes(response), scramble(password, nonce))


class NativePassword(AuthPlugin):
    """Exchange: greeting/switch data = 20-byte nonce (+ NUL); one client answer, the
    20-byte scramble (empty = no password); the server answers OK/ERR."""

    name = NAME
    offline_guess_cost = (
        "one SHA1(SHA1()) chain per guess (the greeting nonce and the 20-byte scramble are both "
        "in the capture)"
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
        """A switch carries a fresh 20-byte nonce (+ NUL)."""
        return switch_meaning(kind, data, "new nonce") if sender == "server" else None

    def server_exchange(self, data: bytes, ctx: ServerAuth) -> Any:
        """One answer: the 20-byte scramble checked against the account's password."""
        yield from ()
        ctx.path = "scramble"
        pw = ctx.password
        if not data:
            ctx.password_used = False
            return pw is not None and not pw
        ctx.password_used = True
        return (
            pw is not None
            and len(data) == SCRAMBLE_LENGTH
            and consteq(scramble(pw, ctx.nonce), data)
        )

    def proof_over_nonce(self, password: bytes, nonce: bytes) -> bytes | None:
        return scramble_raw(password, nonce)

    def client_step(self, flow: Any, kind: str, data: bytes, in_tls: bool) -> ClientStep:
        if not data:
            return ClientStep("empty", client_label(NAME, data), result="empty")
        return ClientStep("scramble", client_label(NAME, data), proof=True)

    def client_response(self, password: bytes, server_data: bytes, **kw: Any) -> bytes:
        return scramble(password, server_data)

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


PLUGIN = NativePassword()
