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
import stat
import struct
from collections.abc import Iterable, Iterator

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

#: Largest key-log file read (bytes).  A key log holds ~200 bytes per secret and
#: 2-5 secrets per TLS session: 64 MiB is some 100 000 sessions.  Larger input
#: is refused (docs/limits.md): it is not a key log, or it should be cut first.
MAX_KEYLOG_BYTES = 64 * 1024 * 1024
#: Longest line considered; longer ones are skipped without being buffered.
MAX_LINE = 1024
_CHUNK = 1 << 20

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


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
    def from_file(
        cls,
        path: str | os.PathLike,
        *,
        allow_special: bool = False,
        max_bytes: int = MAX_KEYLOG_BYTES,
    ) -> KeyLog:
        """Read a key-log file, streaming: at most ``max_bytes`` are read (more
        is refused with :class:`UsageError`), lines longer than
        :data:`MAX_LINE` are skipped unbuffered.  A FIFO, device or socket is
        refused unless ``allow_special`` (its size is unknown and a FIFO with
        no writer blocks)."""
        name = os.fspath(path)
        cloexec = getattr(os, "O_CLOEXEC", 0)
        st = os.stat(name)  # OSError as is (FileNotFoundError...)
        special = not stat.S_ISREG(st.st_mode)
        if special:
            _refuse_special(name, st.st_mode, allow_special)
            # explicitly allowed: a FIFO waits for its writer, as it should
            fd = os.open(name, os.O_RDONLY | cloexec)
        else:
            # never block on open: the path may have become a FIFO since stat()
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | cloexec)
        try:
            if not special:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    _refuse_special(name, st.st_mode, False)
            kl = cls()
            kl._parse_chunks(_read_chunks(fd, name, max_bytes))
            return kl
        finally:
            os.close(fd)

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
        if isinstance(text, str):
            text = text.encode("ascii", "replace")
        data = bytes(text)
        self._parse_chunks(data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK))

    def _parse_chunks(self, chunks: Iterable[bytes]) -> None:
        """Lines of a key log given in pieces; memory: one chunk plus one line."""
        rest = b""
        skipping = False  # inside a line longer than MAX_LINE: drop up to its end
        for chunk in chunks:
            if skipping:
                nl = chunk.find(b"\n")
                if nl < 0:
                    continue
                chunk = chunk[nl + 1 :]
                skipping = False
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for raw in lines:
                self._line(raw)
            if len(rest) > MAX_LINE:
                self.skipped += 1
                rest = b""
                skipping = True
        if rest and not skipping:
            self._line(rest)

    def _line(self, raw: bytes) -> None:
        if len(raw) > MAX_LINE:
            self.skipped += 1
            return
        line = raw.strip(b" \t\r\n\x00\x0b\x0c")  # NULs: a DSB's padding
        if not line or line.startswith(b"#"):
            return
        parts = line.split()
        if len(parts) != 3:
            self.skipped += 1
            return
        try:
            label = parts[0].decode("ascii")
            cr = bytes.fromhex(parts[1].decode("ascii"))
            secret = bytes.fromhex(parts[2].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            self.skipped += 1
            return
        if label not in LABELS or len(cr) != 32 or not secret:
            self.skipped += 1
            return
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


def _refuse_special(name: str, mode: int, allow_special: bool) -> None:
    if stat.S_ISDIR(mode):
        raise UsageError(f"key log {name} is a directory, not a regular file")
    if not allow_special:
        raise UsageError(
            f"key log {name} is {_kind(mode)}, not a regular file; refused "
            "(allow it explicitly with --keylog-special)"
        )


def client_hello_random(payload: bytes) -> bytes | None:
    """The client random of a TLS ClientHello starting a TCP payload (or right
    after a 36-byte MySQL SSLRequest in the same segment); None otherwise."""
    for at in (0, 36):
        if at and payload[:4] != b"\x20\x00\x00\x01":
            break
        rec = payload[at : at + 43]
        if len(rec) == 43 and rec[0] == 0x16 and rec[1] == 3 and rec[5] == 1:
            return bytes(rec[11:43])
    return None


def _read_chunks(fd: int, name: str, max_bytes: int) -> Iterator[bytes]:
    total = 0
    while True:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            return
        total += len(chunk)
        if total > max_bytes:
            raise UsageError(
                f"key log {name} is larger than {max_bytes} bytes: refused "
                "(not a key log, or cut it to the sessions of this capture)"
            )
        yield chunk
