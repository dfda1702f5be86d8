"""NSS key-log files (``SSLKEYLOGFILE``) for decrypting TLS in captures.

Format (one secret per line, ``#`` starts a comment)::

    <LABEL> <client_random hex (32 bytes)> <secret hex>

Labels used for decryption:

* ``CLIENT_RANDOM`` -- TLS <= 1.2 master secret (48 bytes)
* ``CLIENT_HANDSHAKE_TRAFFIC_SECRET`` / ``SERVER_HANDSHAKE_TRAFFIC_SECRET``
* ``CLIENT_TRAFFIC_SECRET_0`` / ``SERVER_TRAFFIC_SECRET_0`` (TLS 1.3)

``CLIENT_EARLY_TRAFFIC_SECRET`` and ``EXPORTER_SECRET`` are kept too (they do
not hurt); other labels (``RSA``...) and malformed lines are skipped and only
counted. Secrets never appear in ``repr``/``str`` or error messages.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from ..errors import UsageError

MASTER_SECRET = "CLIENT_RANDOM"
CLIENT_HS = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
SERVER_HS = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
CLIENT_AP0 = "CLIENT_TRAFFIC_SECRET_0"
SERVER_AP0 = "SERVER_TRAFFIC_SECRET_0"
CLIENT_EARLY = "CLIENT_EARLY_TRAFFIC_SECRET"
EXPORTER = "EXPORTER_SECRET"

LABELS = frozenset(
    {MASTER_SECRET, CLIENT_HS, SERVER_HS, CLIENT_AP0, SERVER_AP0, CLIENT_EARLY, EXPORTER}
)

#: pcapng Decryption Secrets Block secrets type for an NSS key log ("TLSK").
DSB_TLS_KEY_LOG = 0x544C534B


class KeyLog:
    """Secrets of an NSS key log, keyed by client random.

    Build with :meth:`load` (path, text, bytes or a pcapng Decryption Secrets
    Block body), :meth:`from_text` or :meth:`from_file`. ``len()`` is the number
    of distinct client randoms (connections); :attr:`skipped` counts ignored
    lines (unknown labels, malformed lines).
    """

    __slots__ = ("_entries", "skipped")

    def __init__(self) -> None:
        self._entries: dict[bytes, dict[str, bytes]] = {}
        self.skipped = 0

    # -- construction -------------------------------------------------------
    @classmethod
    def from_text(cls, text: str | bytes | bytearray | memoryview) -> KeyLog:
        kl = cls()
        kl._parse(text)
        return kl

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> KeyLog:
        """Key-log text as bytes, or a pcapng Decryption Secrets Block body."""
        return cls.from_dsb(data)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> KeyLog:
        return cls.from_text(Path(path).read_bytes())

    @classmethod
    def from_dsb(cls, body: bytes | bytearray | memoryview) -> KeyLog:
        """Parse a Decryption Secrets Block: either its body (secrets type,
        secrets length, data...) or just the secrets data."""
        body = bytes(body)
        if body[:4] in (b"KSLT", b"TLSK") and len(body) >= 8:
            endian = "<" if body[:4] == b"KSLT" else ">"
            (length,) = struct.unpack_from(endian + "I", body, 4)
            body = body[8 : 8 + length]
        return cls.from_text(body)

    @classmethod
    def load(cls, source: str | os.PathLike | bytes | bytearray | memoryview | KeyLog) -> KeyLog:
        """Path (``str``/``PathLike``), key-log text (``str`` with a newline or
        starting with a label), bytes of key-log text or a DSB body."""
        if isinstance(source, KeyLog):
            return source
        if isinstance(source, (bytes, bytearray, memoryview)):
            return cls.from_dsb(source)
        if isinstance(source, os.PathLike):
            return cls.from_file(source)
        if isinstance(source, str):
            head = source.lstrip()
            if "\n" in source or head.startswith("#") or head.split(" ", 1)[0] in LABELS:
                return cls.from_text(source)
            return cls.from_file(source)
        raise UsageError(f"KeyLog.load: unsupported source type {type(source).__name__}")

    def _parse(self, text: str | bytes | bytearray | memoryview) -> None:
        if not isinstance(text, str):
            text = bytes(text).decode("ascii", "replace")
        for raw in text.replace("\x00", "\n").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 3 or parts[0] not in LABELS:
                self.skipped += 1
                continue
            label, cr_hex, secret_hex = parts
            try:
                cr = bytes.fromhex(cr_hex)
                secret = bytes.fromhex(secret_hex)
            except ValueError:
                self.skipped += 1
                continue
            if len(cr) != 32 or not secret:
                self.skipped += 1
                continue
            self._entries.setdefault(cr, {})[label] = secret

    # -- access ---------------------------------------------------------------
    def get(self, client_random: bytes, label: str) -> bytes | None:
        entry = self._entries.get(bytes(client_random))
        return entry.get(label) if entry else None

    def labels(self, client_random: bytes) -> frozenset[str]:
        """Labels known for a client random (never the secrets)."""
        return frozenset(self._entries.get(bytes(client_random), ()))

    def __contains__(self, client_random: object) -> bool:
        return (
            isinstance(client_random, (bytes, bytearray)) and bytes(client_random) in self._entries
        )

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[bytes]:
        """Client randoms."""
        return iter(self._entries)

    @property
    def secret_count(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def merge(self, other: KeyLog) -> KeyLog:
        """Add ``other``'s secrets into this key log (in place; returns self).
        On a conflict ``other`` wins."""
        for cr, secrets in other._entries.items():
            self._entries.setdefault(cr, {}).update(secrets)
        self.skipped += other.skipped
        return self

    def to_bytes(self) -> bytes:
        """NSS key-log text (contains the secrets: write it, do not print it)."""
        lines = []
        for cr, secrets in self._entries.items():
            for label, secret in secrets.items():
                lines.append(f"{label} {cr.hex()} {secret.hex()}\n")
        return "".join(lines).encode("ascii")

    def __repr__(self) -> str:
        return (
            f"<KeyLog {len(self)} connection(s), {self.secret_count} secret(s), "
            f"{self.skipped} line(s) skipped>"
        )

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyLog) and self._entries == other._entries

    __hash__ = None  # type: ignore[assignment]
