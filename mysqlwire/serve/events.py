"""The server's own record of each connection: what it saw and decided.

``MySQL8Server.connections`` is a list of :class:`ConnectionRecord`, one per accepted TCP
connection, in accept order.  Each record has one :class:`AuthAttempt` per authentication
(the login, then one per COM_CHANGE_USER) and a list of :class:`Event`.  Nothing here ever
holds a password or any auth data bytes: only lengths, plugin names and decisions.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .messages import ServerError

# C0 controls, DEL, C1 controls and the Unicode bidi/format characters that reorder or
# hide text on a terminal
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_field(value: object) -> str:
    """``value`` as text safe for an operator's terminal or log file: control and bidi
    characters become ``\\xNN`` / ``\\uNNNN`` (a client chooses user and plugin names)."""
    text = value if isinstance(value, str) else str(value)

    def one(m: re.Match) -> str:
        c = ord(m.group())
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _UNSAFE.sub(one, text)


class EscapeFields(logging.Filter):
    """Escapes every argument of a log record (and the message itself): nothing a client
    sends reaches the operator's terminal raw."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = escape_field(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                a if isinstance(a, (int, float)) else escape_field(a) for a in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                k: v if isinstance(v, (int, float)) else escape_field(v)
                for k, v in record.args.items()
            }
        return True


def install_log_filter(logger: logging.Logger) -> None:
    """Escape every field ``logger`` writes (idempotent)."""
    if not any(isinstance(f, EscapeFields) for f in logger.filters):
        logger.addFilter(EscapeFields())


@dataclass
class Event:
    t: float
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = " ".join(f"{k}={escape_field(v)}" for k, v in self.detail.items())
        return f"{self.kind} {extra}".rstrip()


@dataclass
class AuthAttempt:
    """One authentication exchange (login or COM_CHANGE_USER)."""

    kind: str  # "login" | "change_user"
    user: str
    database: str | None = None
    client_plugin: str | None = None  # plugin named by the client
    account_plugin: str | None = None  # plugin of the account (decoy plugin for unknown users)
    account_exists: bool = False
    #: plugins run, in order: the first is the one the client answered in its response
    #: (if it matched the account), then every plugin switched to
    plugins: list[str] = field(default_factory=list)
    switches: list[str] = field(default_factory=list)
    #: caching_sha2: "hit" (fast auth ok), "miss" (no cache entry), "mismatch" (wrong scramble)
    cache: str | None = None
    #: how the proof was checked: fast, full-tls, full-rsa, full-cleartext-plain (caching_sha2);
    #: tls, rsa, cleartext-plain (sha256); scramble (native); cleartext (clear)
    path: str | None = None
    rsa_key_requested: bool = False
    password_used: bool | None = None
    outcome: str | None = None  # "ok" | "error" | "aborted"
    error: ServerError | None = None
    sandbox: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def error_code(self) -> int | None:
        return self.error.code if self.error else None

    def summary(self) -> str:
        parts = [f"user={escape_field(repr(self.user))}"]
        if self.database:
            parts.append(f"db={escape_field(repr(self.database))}")
        parts.append(f"plugin={escape_field(self.client_plugin or '-')}")
        if self.switches:
            parts.append(f"switch={escape_field('>'.join(self.switches))}")
        if self.path:
            parts.append(f"path={self.path}")
        if self.cache:
            parts.append(f"cache={self.cache}")
        if self.error:
            parts.append(f"result=ERR {self.error.code} ({self.error.sqlstate})")
        else:
            parts.append(f"result={(self.outcome or 'pending').upper()}")
        if self.sandbox:
            parts.append("sandbox")
        return " ".join(parts)


@dataclass
class ConnectionRecord:
    id: int
    peer: tuple[str, int]
    host: str  # host as reported in error messages ('localhost' for loopback by default)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    greeting_plugin: str | None = None
    server_capabilities: int = 0
    client_capabilities: int | None = None
    tls: bool = False
    tls_version: str | None = None
    tls_cipher: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    attempts: list[AuthAttempt] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: error sent instead of a greeting (1040 past the extra connection)
    refused: ServerError | None = None

    def event(self, kind: str, **detail: Any) -> Event:
        ev = Event(time.time(), kind, detail)
        self.events.append(ev)
        return ev

    # --- the login (first attempt), for convenience
    @property
    def login(self) -> AuthAttempt | None:
        return self.attempts[0] if self.attempts else None

    @property
    def user(self) -> str | None:
        return self.login.user if self.login else None

    @property
    def outcome(self) -> str | None:
        if self.refused:
            return "refused"
        return self.login.outcome if self.login else None

    @property
    def error(self) -> ServerError | None:
        if self.refused:
            return self.refused
        return self.login.error if self.login else None

    @property
    def closed(self) -> bool:
        return self.ended is not None

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome
        return data
