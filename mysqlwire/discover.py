"""Is this TCP flow MySQL/MariaDB?  Decided from the first bytes, on any port.

Two ways in:

* **from the start**: the server speaks first, with a greeting (protocol 10 or
  9, a NUL-terminated printable version string, thread id, nonce, filler,
  capability bits; the packet length is exactly what was sent, sequence 0) or
  with an ERR refusing the host before any greeting;
* **joined mid-stream** (the capture started while the connection was open):
  a client command (sequence 0, a COM_* byte, a plausible length) answered by
  the other side with a reply (sequence 1: OK, ERR with ``#`` SQLSTATE,
  EOF, a result-set header, a local-infile request), or a lone ERR with a
  ``#`` SQLSTATE (e.g. 1158 after the client closed).

:class:`Sniffer` is fed each direction's first in-order bytes and answers
:data:`UNDECIDED`, :data:`NOT_MYSQL` or a :class:`Verdict`.  Everything here
is a pure function of the bytes (never of the port numbers), so the same
packets give the same answer whatever ports are asked for.  A flow that is
clearly not MySQL is dropped after its first bytes; an ambiguous one after at
most :data:`MAX_CHUNKS` segments from each side (:data:`MAX_TOTAL` in all).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "NOT_MYSQL",
    "UNDECIDED",
    "Sniffer",
    "Verdict",
    "command_shape",
    "err_shape",
    "looks_like_greeting",
    "reply_shape",
]

UNDECIDED = None
NOT_MYSQL = False

MAX_CHUNKS = 8
"""Mid-stream: data segments from *each* side without a command before giving
up (a long result set streaming from one side does not count against it)."""
MAX_TOTAL = 256
"""Mid-stream: data segments examined in all before giving up."""
MAX_BYTES = 64 * 1024
"""Bytes held per direction while undecided."""

_MAX_GREETING = 1024
_PRINTABLE = bytes(range(0x20, 0x7F))
_SQLSTATE_CHARS = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# bytes allowed in server messages: printable ASCII, tab/newline, UTF-8 lead and
# continuation bytes
_MESSAGE_BAD = bytes(b for b in range(0x20) if b not in (9, 10, 13)) + b"\x7f"

# client commands (first payload byte, sequence 0) seen in the command phase
COMMANDS = frozenset(
    {
        0x01,  # QUIT
        0x02,  # INIT_DB
        0x03,  # QUERY
        0x04,  # FIELD_LIST
        0x05,  # CREATE_DB
        0x06,  # DROP_DB
        0x07,  # REFRESH
        0x08,  # SHUTDOWN
        0x09,  # STATISTICS
        0x0A,  # PROCESS_INFO
        0x0C,  # PROCESS_KILL
        0x0D,  # DEBUG
        0x0E,  # PING
        0x11,  # CHANGE_USER
        0x12,  # BINLOG_DUMP
        0x13,  # TABLE_DUMP
        0x15,  # REGISTER_SLAVE
        0x16,  # STMT_PREPARE
        0x17,  # STMT_EXECUTE
        0x18,  # STMT_SEND_LONG_DATA
        0x19,  # STMT_CLOSE
        0x1A,  # STMT_RESET
        0x1B,  # SET_OPTION
        0x1C,  # STMT_FETCH
        0x1E,  # BINLOG_DUMP_GTID
        0x1F,  # RESET_CONNECTION
        0xFA,  # MariaDB STMT_BULK_EXECUTE
    }
)
# commands whose whole packet is just the command byte
_BARE_COMMANDS = frozenset({0x01, 0x08, 0x09, 0x0A, 0x0D, 0x0E, 0x1F})
# fixed-size commands: payload length
_FIXED_COMMANDS = {0x0C: 5, 0x19: 5, 0x1A: 5, 0x1B: 3, 0x1C: 9}


def _header(data) -> tuple[int, int]:
    return data[0] | data[1] << 8 | data[2] << 16, data[3]


def _printable(b: bytes) -> bool:
    return not b.translate(None, _PRINTABLE)


def _message(b: bytes) -> bool:
    return len(b) == len(b.translate(None, _MESSAGE_BAD))


def err_shape(payload: bytes, *, need_sqlstate: bool) -> bool:
    """An ERR packet's payload: 0xFF, a plausible error code, then ``#`` and a
    5-character SQLSTATE (required with ``need_sqlstate``), then a message."""
    if len(payload) < 4 or payload[0] != 0xFF:
        return False
    code = payload[1] | payload[2] << 8
    if not 1000 <= code < 60000:
        return False
    rest = bytes(payload[3:])
    if rest[:1] == b"#":
        state = rest[1:6]
        if len(state) != 5 or state.translate(None, _SQLSTATE_CHARS):
            return False
        rest = rest[6:]
    elif need_sqlstate:
        return False
    return 0 < len(rest) and _message(rest)


def _greeting_payload(p: bytes) -> bool:
    """Shape of a protocol 10 or 9 greeting payload (complete)."""
    proto = p[0]
    nul = p.find(b"\x00", 1)
    if nul < 2 or nul > 81 or not _printable(p[1:nul]):
        return False
    i = nul + 1
    if proto == 9:
        # thread id (4), scramble (8), NUL: and nothing else
        return len(p) == i + 13 and p[i + 12] == 0
    if proto != 10:
        return False
    # thread id (4), nonce part 1 (8), filler 0x00, capabilities (2)
    if len(p) < i + 15 or p[i + 12] != 0:
        return False
    caps = p[i + 13] | p[i + 14] << 8
    i += 15
    if len(p) == i:
        return True  # a pre-4.1 greeting ends here
    # character set (1), status (2), capabilities high (2), auth data length (1),
    # 10 reserved bytes (MySQL: zeros; MariaDB: 6 zeros + 4 extended caps)
    if len(p) < i + 16 or p[i + 6 : i + 12] != b"\x00" * 6:
        return False
    caps |= (p[i + 3] | p[i + 4] << 8) << 16
    auth_len = p[i + 5]
    i += 16
    if caps & 0x8000:  # SECURE_CONNECTION: nonce part 2
        i += max(13, auth_len - 8)
        if len(p) < i:
            return False
    if caps & 0x80000 and len(p) > i:  # PLUGIN_AUTH: the plugin name
        end = p.find(b"\x00", i)
        name = p[i:] if end < 0 else p[i:end]
        if not _printable(name) or (end >= 0 and end != len(p) - 1):
            return False
        return True
    return len(p) == i


def looks_like_greeting(data: bytes) -> bool:
    """Do ``data`` (a direction's first bytes) start with a complete MySQL
    greeting, or an ERR sent instead of one?  The packet must be whole."""
    if len(data) < 5:
        return False
    length, seq = _header(data)
    if seq != 0 or length < 4 or length > _MAX_GREETING or len(data) < 4 + length:
        return False
    p = bytes(data[4 : 4 + length])
    if p[0] == 0xFF:
        return err_shape(p, need_sqlstate=False)
    return _greeting_payload(p)


def _greeting_prefix(data: bytes) -> bool:
    """Could ``data`` become a greeting once more bytes arrive?"""
    if len(data) < 4:
        return True
    length, seq = _header(data)
    if seq != 0 or length < 4 or length > _MAX_GREETING or len(data) >= 4 + length:
        return False  # (a whole packet that was not taken will not become one)
    return len(data) < 5 or data[4] in (9, 10, 0xFF)


def command_shape(data: bytes) -> bool:
    """Does a client segment start with a command packet (sequence 0)?"""
    if len(data) < 5:
        return False
    length, seq = _header(data)
    if seq != 0 or length == 0 or length > 0xFFFFFF:
        return False
    cmd = data[4]
    if cmd not in COMMANDS:
        return False
    if cmd in _BARE_COMMANDS:
        return length == 1
    fixed = _FIXED_COMMANDS.get(cmd)
    if fixed is not None:
        return length == fixed
    if length < 2:
        return False
    if cmd in (0x03, 0x02, 0x16) and len(data) >= 4 + length:
        # a statement or schema name: text, no control bytes at its start
        # (COM_QUERY may carry query attributes: a parameter count first)
        body = bytes(data[5 : min(4 + length, 69)])
        if cmd != 0x03 or body[:1] not in (b"\x00", b"\x01"):
            return _message(body)
    return True


def reply_shape(data: bytes) -> bool:
    """Does a server segment start with the first packet of a command reply
    (sequence 1: OK, ERR with SQLSTATE, EOF, result-set header, local infile)?"""
    if len(data) < 5:
        return False
    length, seq = _header(data)
    if seq != 1 or length == 0 or length > 0xFFFFFF:
        return False
    first = data[4]
    whole = len(data) >= 4 + length
    if first == 0x00:  # OK: affected rows, insert id (lenenc), status (2), warnings (2)
        return 7 <= length <= 0xFFFF
    if first == 0xFF:
        return whole and err_shape(bytes(data[4 : 4 + length]), need_sqlstate=True)
    if first == 0xFE:  # EOF (deprecated or not)
        return length < 9 or (whole and length < 0xFFFF)
    if first == 0xFB:  # LOCAL INFILE request: a file name
        return whole and length > 1 and _message(bytes(data[5 : 4 + length]))
    # result-set header: a length-encoded column count (1..4096), alone in its packet
    if 1 <= first <= 0xFA:
        if length == 1 or (length == 2 and data[5] == 0):  # (a metadata-follows flag)
            return True
    if first == 0xFC and length == 3:
        return (data[5] | data[6] << 8) <= 4096
    return False


@dataclass
class Verdict:
    """A flow found to be MySQL.

    ``server_is_initiator`` says which side is the server; ``midstream`` that
    the connection was already open when the capture started (no greeting);
    ``replay`` holds the bytes to feed, in order, as
    ``(from_initiator, data, ts)``: the aligned bytes seen while undecided.
    ``error`` is the payload of a lone ERR that decided a mid-stream flow.
    """

    server_is_initiator: bool
    midstream: bool
    replay: list = field(default_factory=list)
    error: bytes | None = None


class Sniffer:
    """Per-flow state while the flow's nature is undecided.  ``syn_seen``:
    the capture holds the connection's start, so the server must speak first."""

    __slots__ = (
        "syn_seen",
        "chunks",
        "buf",
        "buf_from",
        "buf_ts",
        "greet",
        "cmd_at",
        "order",
        "held",
        "sent",
    )

    def __init__(self, syn_seen: bool):
        self.syn_seen = syn_seen
        self.chunks = 0
        self.buf = bytearray()  # first direction's bytes while they may be a greeting
        self.buf_from: bool | None = None
        self.buf_ts = 0.0
        self.greet = True  # a greeting is still possible
        self.cmd_at: bool | None = None  # direction that sent a command candidate
        self.order: list = []  # (from_initiator, data, ts) kept since that command
        self.held = 0
        self.sent = [0, 0]  # mid-stream data segments per side (index: from_initiator)

    def feed(self, from_initiator: bool, data: bytes, ts: float):
        """One in-order data chunk; returns UNDECIDED, NOT_MYSQL or a Verdict."""
        self.chunks += 1
        if self.greet:
            if self.buf_from is None:
                self.buf_from = from_initiator
                self.buf_ts = ts
            if from_initiator == self.buf_from:
                if self.syn_seen and from_initiator:
                    return NOT_MYSQL  # the client spoke first: a MySQL server never lets it
                buf = self.buf
                buf += data
                verdict = self._greeting(buf, from_initiator, ts)
                if verdict is not UNDECIDED:
                    return verdict
                if _greeting_prefix(buf) and len(buf) < 4 + _MAX_GREETING:
                    return UNDECIDED
            # not a greeting (or the other side spoke before it was whole)
            self.greet = False
            if self.syn_seen:
                return NOT_MYSQL
            held, self.buf = bytes(self.buf), bytearray()
            if from_initiator == self.buf_from:
                return self._mid(from_initiator, held, ts)
            if held:
                verdict = self._mid(self.buf_from, held, self.buf_ts)
                if verdict is not UNDECIDED:
                    return verdict
        if self.syn_seen:
            return NOT_MYSQL
        return self._mid(from_initiator, data, ts)

    def _greeting(self, buf: bytearray, from_initiator: bool, ts: float):
        if not looks_like_greeting(buf):
            return UNDECIDED
        if buf[4] == 0xFF and not self.syn_seen:
            return UNDECIDED  # an ERR without the connection's start: see _mid
        if len(buf) != 4 + _header(buf)[0]:
            return NOT_MYSQL  # more than one packet before the client spoke
        return Verdict(
            server_is_initiator=from_initiator,
            midstream=False,
            replay=[(from_initiator, bytes(buf), ts)],
        )

    def _mid(self, from_initiator: bool, data: bytes, ts: float):
        """Mid-stream: a command, then a reply from the other side."""
        sent = self.sent
        sent[from_initiator] += 1
        if self.order:
            self.order.append((from_initiator, data, ts))
            self.held += len(data)
            if self.held > MAX_BYTES:
                self.cmd_at = None  # no reply within 64 KiB: look for another command
                self.order = []
        if self.cmd_at is not None and from_initiator != self.cmd_at:
            if reply_shape(data):
                return Verdict(
                    server_is_initiator=from_initiator, midstream=True, replay=self.order
                )
            self.cmd_at = None
            self.order = []
        if self.cmd_at is None:
            if command_shape(data):
                self.cmd_at = from_initiator
                self.order = [(from_initiator, data, ts)]
                self.held = len(data)
            elif _lone_err(data):
                return Verdict(
                    server_is_initiator=from_initiator,
                    midstream=True,
                    error=bytes(data[4:]),
                )
            elif sent[0] >= MAX_CHUNKS and sent[1] >= MAX_CHUNKS:
                return NOT_MYSQL  # both sides talked, never a command and its reply
        if self.chunks >= MAX_TOTAL:
            return NOT_MYSQL
        return UNDECIDED

    def finish(self):
        """The flow ended while undecided: a lone COM_QUIT (the client closing
        an idle connection) is enough; anything else is not MySQL."""
        order = self.order
        if not self.syn_seen and len(order) == 1 and order[0][1] == b"\x01\x00\x00\x00\x01":
            return Verdict(server_is_initiator=not order[0][0], midstream=True, replay=order)
        return NOT_MYSQL


def _lone_err(data: bytes) -> bool:
    """Exactly one ERR packet (any sequence id): with a SQLSTATE, or without
    one but with a message of at least 10 characters."""
    if len(data) < 13:
        return False
    length, _seq = _header(data)
    if len(data) != 4 + length:
        return False
    payload = bytes(data[4:])
    if err_shape(payload, need_sqlstate=True):
        return True
    return len(payload) >= 13 and err_shape(payload, need_sqlstate=False)


def lenient_greeting_header(data: bytes) -> bool:
    """The first bytes on a port named MySQL (3306 or ``--port``): a greeting
    or pre-greeting ERR header, to be followed even when the strict shape test
    says no (the handshake then reports what is wrong)."""
    if len(data) < 5:
        return False
    length = data[0] | data[1] << 8 | data[2] << 16
    if data[3] != 0 or length < 3 or length > 1024:
        return False
    proto = data[4]
    if proto == 0xFF:
        return True
    if proto not in (9, 10):
        return False
    body = bytes(data[5 : 4 + length])
    nul = body.find(b"\x00")
    return 0 < nul < 80 and _printable(body[:nul])


def err_record(payload: bytes) -> dict:
    """``{code, sqlstate, message}`` of an ERR payload already shape-checked
    (the ``#`` SQLSTATE split kept whatever capabilities were agreed)."""
    from .model import text
    from .protocol import CLIENT_PROTOCOL_41
    from .protocol.fastparse import fast_parse

    caps = CLIENT_PROTOCOL_41 if payload[3:4] == b"#" else 0
    f = fast_parse("err", payload, caps)  # (the grammar's fields, without Construct)
    if f is None:
        from .protocol import parse

        try:
            f = parse("err", payload, caps=caps)
        except Exception:  # noqa: BLE001 - never fail on a record already shape-checked
            return {"code": payload[1] | payload[2] << 8, "sqlstate": None, "message": None}
    return {
        "code": int(f.error_code),
        "sqlstate": text(getattr(f, "sql_state", None)),
        "message": text(f.error_message),
    }
