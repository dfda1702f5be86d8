"""dialog: MariaDB PAM (``auth_pam``) and friends (reference §5 and §6).

The server sends questions: one question byte then the prompt text.  Bit 0 set = last
question; ``byte >> 1 == 2`` (4 or 5) = password-style prompt (echo off); 2 or 3 = ordinary
prompt (echo on).  (Some MySQL test plugins swap 4/5, hence the bit tests.)  The client
answers ``answer || 00``.  Nothing is recomputed: replay compares the answer with the
password.  MariaDB sends the question raw (``04 Password: ``), with no ``01`` prefix.
"""

from __future__ import annotations

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
    is_empty_answer,
)

NAME = "dialog"

ORDINARY_QUESTION = 2
LAST_QUESTION = 3
PASSWORD_QUESTION = 4
LAST_PASSWORD = 5


def is_password_question(byte: int) -> bool:
    """Echo-off (password) prompt: question byte 4 or 5."""
    return (byte >> 1) == 2


def is_last(byte: int) -> bool:
    """The last question of the dialog."""
    return bool(byte & 1)


def parse_question(data: bytes) -> tuple[int, bytes]:
    """``(question byte, prompt text)`` of a dialog question packet."""
    data = bytes(data)
    if not data:
        raise ProtocolError("empty dialog question", kind="dialog_question", offset=0)
    return data[0], data[1:]


def answer(password: bytes) -> bytes:
    """``answer || 00``."""
    return as_bytes(password) + b"\0"


def verify_answer(response: bytes, password: bytes) -> bool:
    """The answer equals the password, with or without its trailing NUL."""
    response = bytes(response)
    pw = as_bytes(password)
    if consteq(response, pw + b"\0"):
        return True
    # Without its NUL only when that is unambiguous: for a password ending in NUL the
    # bare form is what the *shorter* password sends with its NUL.
    return not pw.endswith(b"\0") and consteq(response, pw)


def question_kind(byte: int) -> str:
    """'last password question, echo off' and the like."""
    last = "last " if byte & 1 else ""
    if byte >> 1 == 2:
        return f"{last}password question, echo off"
    if byte >> 1 == 1:
        return f"{last}ordinary question, echo on"
    return "unknown question type"


class Dialog(AuthPlugin):
    """Exchange: the server asks (switch data, then raw MariaDB packets or ``01``-wrapped
    MySQL ones: question byte + prompt), the client answers each ``answer || 00``.  Answers
    to password questions are the password; the server ends with OK/ERR."""

    replayable = True
    raw_server_data = True
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
        """Server: a prompt (its first byte: 4/5 a password question, echo off; 2/3 an
        ordinary question, echo on; odd = the last question); client: the answer, clear text."""
        if sender == "client":
            n = len(data) if data is not None else (length or 0)
            return Meaning(f"clear-text password (redacted, {n} B)", cleartext=True)
        if not data:
            return None
        first = data[0]
        what = (
            "password question, echo off"
            if is_password_question(first)
            else "ordinary question, echo on"
        )
        last = ", last question" if is_last(first) else ""
        prompt = data[1:].decode("utf-8", "backslashreplace")
        brief = "prompt '" + data[1:].decode("utf-8", "replace") + "'"
        return Meaning(f"prompt {prompt!r} ({first:02x} = {what}{last})", brief)

    def __init__(self, name: str = NAME):
        self.name = name

    def start(self, flow: Any) -> None:
        flow.state["question"] = flow.server_data or None

    def server_step(self, flow: Any, kind: str, data: bytes) -> ServerStep:
        flow.state["question"] = data
        if kind == "server_plugin_data" and data:
            return ServerStep(
                "question", f"dialog question byte 0x{data[0]:02x} ({question_kind(data[0])})"
            )
        return ServerStep("question", data_label(kind, data))

    def client_step(self, flow: Any, kind: str, data: bytes, in_tls: bool) -> ClientStep:
        cleartext = not is_empty_answer(data)
        label = client_label(self.name, data, cleartext=cleartext)
        question = flow.state.get("question")
        if question and not is_password_question(question[0]):
            return ClientStep(
                "answer",
                label,
                cleartext=cleartext,
                result="no-proof",
                reason="answer to a non-password question",
            )
        if not cleartext:
            return ClientStep("empty", label, result="empty")
        return ClientStep(
            "cleartext", label, proof=True, cleartext=True, server_data=question or b""
        )

    def client_response(self, password: bytes, server_data: bytes = b"", **kw: Any) -> bytes:
        """Answer the question in ``server_data`` with the password.

        An empty ``server_data`` (no question seen, e.g. PAM v1 taking the first response)
        and password questions are answered with the password; an ordinary (echo-on)
        question needs the explicit ``answer=`` keyword.
        """
        if server_data:
            qbyte, _ = parse_question(server_data)
            if not is_password_question(qbyte):
                explicit = kw.get("answer")
                if explicit is None:
                    raise UsageError(
                        "the dialog question is not a password prompt; pass answer=..."
                    )
                return answer(explicit)
        return answer(password)

    def verify(
        self,
        response: bytes,
        server_data: bytes = b"",
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        """Compare the answer with the password (``None`` for a non-password question)."""
        if password is None:
            return None
        if server_data:
            qbyte, _ = parse_question(server_data)
            if not is_password_question(qbyte):
                return None
        return verify_answer(response, password)


PLUGIN = Dialog()
PAM_PLUGIN = Dialog("auth_pam")
EXTRA_PLUGINS = (PAM_PLUGIN,)
ALIASES = {"pam": NAME}
