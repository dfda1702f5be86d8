"""The two error families of mysqlwire.

* :class:`ProtocolError` -- the bytes we were given break the MySQL protocol or
  the capture format (a remote/peer problem). Carries the packet kind and the
  byte offset where parsing failed.
* :class:`UsageError` -- our API was misused (a local problem).

Every error raised on bad *input* is a :class:`MysqlwireError`; anything else
escaping from a parser is a bug.  Messages never contain secrets.
"""

from __future__ import annotations


class MysqlwireError(Exception):
    """Base class of every error mysqlwire raises on purpose."""


class ProtocolError(MysqlwireError):
    """Bytes that do not follow the MySQL wire protocol.

    ``kind`` names the packet (``"handshake_v10"``, ``"err"``...) and ``offset``
    is the byte offset inside that packet's payload where parsing failed (None
    when unknown).
    """

    def __init__(self, message: str, *, kind: str | None = None, offset: int | None = None):
        self.kind = kind
        self.offset = offset
        self.reason = message
        where = []
        if kind:
            where.append(kind)
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class CaptureError(MysqlwireError):
    """A capture file that cannot be read at all (not a pcap, bad header...)."""


class UsageError(MysqlwireError):
    """Misuse of the mysqlwire API or CLI (bad option combination...)."""
