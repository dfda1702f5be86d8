"""TLS inside MySQL/MariaDB connections: key logs, passive decryption, and
writing captures with embedded secrets (pcapng Decryption Secrets Block).

``inject_keylog`` (the writer, for ``mysqlwire keylog-inject``) is imported on
first use: dissecting a TLS connection does not need it."""

from __future__ import annotations

from .keylog import KeyLog
from .session import TlsSession

__all__ = ["KeyLog", "TlsSession", "inject_keylog"]


def __getattr__(name: str):
    if name == "inject_keylog":
        from .pcapng_writer import inject_keylog

        return inject_keylog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
