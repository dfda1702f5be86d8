"""TLS inside MySQL/MariaDB connections: key logs, passive decryption, and
writing captures with embedded secrets (pcapng Decryption Secrets Block)."""

from __future__ import annotations

from .keylog import KeyLog
from .pcapng_writer import inject_keylog
from .session import TlsSession

__all__ = ["KeyLog", "TlsSession", "inject_keylog"]
