"""mysql_clear_password (reference §6): the password in clear, ``pw || 00``.

No nonce.  Used by PAM/LDAP/IAM back ends; outside TLS the capture shows the password,
which replay should report as a finding.  Verification can only compare with the password.
"""

from __future__ import annotations

from typing import Any

from .base import (
    AuthPlugin,
    ClientStep,
    Meaning,
    ServerAuth,
    as_bytes,
    client_label,
    consteq,
    is_empty_answer,
)

NAME = "mysql_clear_password"


def response(password: bytes) -> bytes:
    """``pw || 00`` (a single ``00`` for the empty password)."""
    return as_bytes(password) + b"\0"


def verify_password(answer: bytes, password: bytes) -> bool:
    """The answer equals the password, with its NUL (or, leniently, without)."""
    answer = bytes(answer)
    pw = as_bytes(password)
    if consteq(answer, pw + b"\0"):
        return True
    # Without its NUL only when that is unambiguous: for a password ending in NUL the
    # bare form is what the *shorter* password sends with its NUL.
    return not pw.endswith(b"\0") and consteq(answer, pw)


class ClearPassword(AuthPlugin):
    """Exchange: no server data (an empty switch); one client answer, ``pw || 00``."""

    name = NAME
    replayable = True
    sends_secret = True

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
        """The client sends the password itself."""
        if sender == "server":
            return None
        n = len(data) if data is not None else (length or 0)
        return Meaning(f"clear-text password (redacted, {n} B)", cleartext=True)

    def switch_data(self, nonce: bytes) -> bytes:
        return b""

    def server_exchange(self, data: bytes, ctx: ServerAuth) -> Any:
        """One answer: the password in clear (accepted outside TLS too, and said so)."""
        yield from ()
        ctx.path = "cleartext"
        if not ctx.tls:
            ctx.event("cleartext-over-plain", accepted=True)
        got = data[:-1] if data.endswith(b"\0") else data
        ctx.password_used = bool(got)
        return ctx.password is not None and consteq(got, ctx.password)

    def client_step(self, flow: Any, kind: str, data: bytes, in_tls: bool) -> ClientStep:
        if is_empty_answer(data):
            return ClientStep("empty", client_label(NAME, data), result="empty")
        return ClientStep(
            "cleartext", client_label(NAME, data, cleartext=True), proof=True, cleartext=True
        )

    def client_response(self, password: bytes, server_data: bytes = b"", **kw: Any) -> bytes:
        return response(password)

    def verify(
        self,
        response: bytes,
        server_data: bytes = b"",
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        if password is None:
            return None
        return verify_password(response, password)


PLUGIN = ClearPassword()
