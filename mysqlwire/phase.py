"""The vocabulary of the connection-phase follower (:mod:`mysqlwire.handshake`):
senders, states, the server's auth-packet table, the bounds that keep a
connection's memory finite, the :class:`Event` it emits, and the framing
state of one direction (:class:`Direction`).

Nothing here moves the state machine: :mod:`mysqlwire.handshake` does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .protocol.framing import CompressedReader, PacketReader

CLIENT = "client"
SERVER = "server"


class _Sentinel:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Sentinel("NEED_DATA")

# states
AWAIT_GREETING = "AWAIT_GREETING"
AWAIT_RESPONSE = "AWAIT_RESPONSE"
AUTH = "AUTH"
COMMAND = "COMMAND"
CLOSED = "CLOSED"
BROKEN = "BROKEN"

COM_QUIT = 0x01
COM_CHANGE_USER = 0x11

# The one transition table for server packets during authentication, keyed by
# first byte.  Values are candidate packet kinds; the refinement by payload
# length, plugin and flavour is in Handshake._server_auth_kind.
SERVER_AUTH_PACKETS: dict[int, str] = {
    0x00: "ok",
    0xFF: "err",
    0xFE: "auth_switch_request",  # length 1: old_auth_switch_request
    0x01: "auth_more_data",
    0x02: "auth_next_factor",  # MySQL + MFA only; else raw plugin data
}

# Default cap on one logical MySQL packet in the connection phase.
DEFAULT_MAX_PACKET = 16 * 1024 * 1024

# Bounds that keep one connection's memory finite whatever the peers send
# (docs/limits.md): connection-phase packets followed (login + every
# COM_CHANGE_USER; their bytes are also capped at 4 x max_packet), and
# anomalies reported.  Past them the connection is not followed further.
MAX_PHASE_PACKETS = 1024
MAX_ANOMALIES = 64

# Bytes of one delivery framed at a time (a larger segment is cut into slices)
SLICE = 64 * 1024


class Event(NamedTuple):
    """One thing that happened on the wire (a named tuple: one per packet, made
    without a Python-level ``__init__``).

    ``kind`` is a packet kind of :mod:`mysqlwire.protocol` (``greeting`` is
    ``handshake_v10``/``handshake_v9``), ``auth_data`` (raw plugin data sent by
    the client), ``server_plugin_data`` (raw plugin data sent by a MariaDB
    server), ``command`` (first command-phase packet seen, informational),
    ``command_error`` (ERR answering the first command after login), or
    ``anomaly`` (``detail`` says what; the connection may continue).
    """

    sender: str
    kind: str
    seq: int | None = None
    payload: bytes = b""
    fields: Any = None
    plugin: str | None = None
    exchange: int = 0
    detail: str | None = None
    #: stream offset of the packet's first 4-byte header in ``sender``'s TCP
    #: byte stream (what :meth:`Handshake.receive_data` and :meth:`Handshake.gap`
    #: were given); None inside TLS or the compressed protocol, where the wire
    #: bytes are not the packet's bytes
    offset: int | None = None


class Direction:
    """Framing state of one direction (plain or compressed MySQL packets)."""

    __slots__ = (
        "reader",
        "compressed",
        "inner",
        "raw",
        "raw_base",
        "keep_raw",
        "skip",
        "discard",
        "base",
    )

    def __init__(self, max_packet: int, base: int = 0):
        self.reader = PacketReader(max_payload=max_packet)
        self.compressed: CompressedReader | None = None
        self.keep_raw = True
        self.raw = bytearray()  # raw bytes kept during the connection phase only
        self.raw_base = 0  # stream offset of raw[0] (for the reader's offsets)
        self.skip = False
        # command phase, server side, once nothing more is watched: the bytes
        # are dropped unframed until a COM_CHANGE_USER (then framing restarts)
        self.discard = False
        self.base = base  # sender's stream offset of the reader's offset 0
