"""Command lanes: the capture reader follows a MySQL command phase itself.

Once a plain-text MySQL connection is in its command phase, what the
dissector still needs from it is little: the first byte of each client
command (a COM_CHANGE_USER or COM_QUIT changes what follows), and, for the
first few commands, whether the server's answer starts with an ERR packet.
A :class:`CommandLane` lets the capture reader answer those questions
straight from its read buffer, frame by frame, without decoding a segment,
reassembling it or framing it: a client segment that carries exactly one
whole packet of an ordinary command at the next expected sequence number,
and the first segment of a watched answer that starts with a packet other
than ERR, are taken by the lane.  Anything else (a command split over
segments or sharing one, a COM_CHANGE_USER or COM_QUIT, an ERR, a segment
out of order, SYN/FIN/RST) goes the ordinary way: the reassembler then first
hands the lane's state back (:meth:`mysqlwire.capture.tcp.Reassembler`,
which writes it into its own direction state and asks the connection's sink
to do the same), so the ordinary path continues exactly as if it had seen
every frame.

The lane is opened by the reassembler at the request of a sink
(:meth:`mysqlwire.capture.tcp.Flow.request_lane`); the reader finds it in the
reassembler's fast lane table (:attr:`mysqlwire.capture.tcp.Reassembler.fast`)
with mode ``CLIENT`` or ``SERVER``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .native import walk as _native

__all__ = ["CLIENT_LANE", "SERVER_LANE", "CommandLane", "PythonCommandLane", "tcp_span"]

CLIENT_LANE = 2
"""Fast-lane entry mode: the client's segments of a lane."""
SERVER_LANE = 3
"""Fast-lane entry mode: the server's segments of a lane."""

_M32 = 0xFFFFFFFF
_HALF = 0x80000000
_SEQ_ACK = struct.Struct("!II").unpack_from
_COM_QUIT = 0x01
_COM_CHANGE_USER = 0x11
_ERR = 0xFF


def tcp_span(buf, p: int) -> tuple[int, int]:
    """The IP header at ``buf[p]`` -- IPv4 without options, or IPv6 with TCP
    as its next header (the fast lane's frames) -- gives (where its TCP header
    starts, where its payload ends by its length field).  IPv4 needs
    ``buf[p:p+34]``, IPv6 ``buf[p:p+54]``.  (_walk.h's ``tcp_span``.)"""
    if buf[p] >> 4 == 6:
        return p + 40, p + 40 + (buf[p + 4] << 8 | buf[p + 5])
    return p + 20, p + (buf[p + 2] << 8 | buf[p + 3])


class CommandLane:
    """The state of one connection's command phase while the reader follows it.

    Sequence numbers are the 32-bit values of the wire.  ``commands`` /
    ``nbytes``: client packets (all single, seq 0, ordinary commands) the lane
    took, and their bytes; ``last``: the last one's bytes; ``ack``: the last
    acknowledgement the client sent that the ordinary path would have noted
    (data segments, and bare ACKs while an answer is awaited); ``sack``: the
    same for the server while an answer is awaited; ``watch``: answers still to
    watch (as the handshake counts them); ``awaiting``: an answer is watched
    and has not started yet, at ``reply_at``; ``sbytes``: the server bytes the
    ordinary path would have delivered (first segments of watched answers).
    """

    __slots__ = (
        "client_fwd",
        "cli_next",
        "ack",
        "sack",
        "last",
        "last_ts",
        "commands",
        "nbytes",
        "sbytes",
        "watch",
        "awaiting",
        "reply_at",
        "quiet",
        "inflate",
        "inner",
        "cseq",
    )

    def __init__(
        self,
        client_fwd: bool,
        cli_next: int,
        watch: int,
        ts: float,
        quiet: bool,
        inflate: Callable[[bytes], bytes | None] | None = None,
    ):
        self.client_fwd = client_fwd
        self.cli_next = cli_next
        self.ack: int | None = None
        self.sack: int | None = None
        self.last = b""
        self.last_ts = ts
        self.commands = 0
        self.nbytes = 0
        self.sbytes = 0
        self.watch = watch
        self.awaiting = False
        self.reply_at = 0
        # quiet: nobody listens to command events (no packet list, no
        # observer): COM_QUIT, like any other command, changes nothing
        self.quiet = quiet
        # the compressed protocol (inflate: the inner bytes of a segment that
        # is one whole compressed packet as the compressed reader takes it,
        # else None; None for plain text): each client segment must be one
        # compressed packet holding one command; ``inner`` counts the inner
        # bytes and ``cseq`` is the last compressed sequence id
        self.inflate = inflate
        self.inner = 0
        self.cseq = 0

    def client(self, buf, p: int, end: int, ts: float) -> bool:
        """Take a client segment (IP header at ``buf[p]``: IPv4 without
        options or IPv6 with TCP next, see :func:`tcp_span`; frame ending at
        ``end``; flags already checked: no SYN/FIN/RST)?  False: the ordinary
        path must see it."""
        t, pend = tcp_span(buf, p)
        if buf[t + 12] < 0x50:
            return False  # a TCP header shorter than 20 bytes: the decoder drops it
        q = t + (buf[t + 12] >> 4 << 2)
        n = pend - q
        seq, ack = _SEQ_ACK(buf, t + 4)
        if n == 0:
            self.ack = ack  # (bare ACKs come here only while an answer is awaited)
            return True
        if n < 5 or q + n > end or seq != self.cli_next:
            return False
        if self.inflate is not None:
            packet = self.inflate(buf[q : q + n])
            if packet is None:
                return False
            i, m = 0, len(packet)
        else:
            packet, i, m = buf, q, n
        if (
            m < 5
            or packet[i + 3]  # sequence id 0: a command
            or packet[i] | packet[i + 1] << 8 | packet[i + 2] << 16 != m - 4  # one packet
        ):
            return False
        cmd = packet[i + 4]
        if cmd == _COM_CHANGE_USER or (cmd == _COM_QUIT and not self.quiet):
            return False
        if self.inflate is not None:
            self.inner += m
            self.cseq = buf[q + 3]
        self.cli_next = (seq + n) & _M32
        self.ack = ack
        self.last = buf[q : q + n]
        self.last_ts = ts
        self.commands += 1
        self.nbytes += n
        if self.watch > 0:
            self.watch -= 1
            if not self.awaiting:
                self.awaiting = True
                self.reply_at = ack  # the answer starts where the client acknowledged
        return True

    def server(self, buf, p: int, end: int, ts: float) -> bool:
        """Take a server segment while an answer is awaited?"""
        t, pend = tcp_span(buf, p)
        if buf[t + 12] < 0x50:
            return False  # (as in client)
        q = t + (buf[t + 12] >> 4 << 2)
        n = pend - q
        seq, ack = _SEQ_ACK(buf, t + 4)
        if n == 0:
            self.sack = ack
            return True
        if n < 0:
            return False
        behind = (self.reply_at - seq) & _M32
        if behind:
            if behind < _HALF and behind >= n:
                self.sack = ack  # old bytes, before the answer: dropped unread
                return True
            return False
        if (
            self.inflate is not None  # (a compressed answer is left to the ordinary path)
            or n < 5
            or q + 5 > end
            or buf[q + 3] != 1
            or buf[q + 4] == _ERR
            # the first packet whole in this segment (else the ordinary path
            # decides only once it is complete, perhaps after another command)
            or (buf[q] | buf[q + 1] << 8 | buf[q + 2] << 16) + 4 > n
        ):
            return False
        # the answer starts with a packet other than ERR: nothing more to watch
        self.awaiting = False
        self.sack = ack
        self.sbytes += n
        self.last_ts = ts
        return True


PythonCommandLane = CommandLane
"""The Python lane: the reference, and the one used without the native part."""

if _native is not None:
    CommandLane = _native.CommandLane  # noqa: F811 - the same class, in C (_walk.c)
