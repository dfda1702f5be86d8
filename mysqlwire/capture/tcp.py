"""TCP reassembly: segments in capture order -> ordered bytes per direction.

:class:`Reassembler` keys flows by their 4-tuple (either direction), asks
``on_flow(flow)`` for a sink on each new flow, and feeds that sink the bytes of
each direction in sequence order::

    sink.data(from_initiator, data, ts)
    sink.gap(from_initiator, nbytes, ts)     # bytes that never reached the capture
    sink.closed(reason, ts)                  # once: fin, rst, end-of-capture, reused, idle

Sequence numbers are unwrapped to unbounded integers per direction, so the
2**32 wrap never shows.  Retransmitted bytes are dropped, overlaps keep the
first-seen copy (a differing copy counts in ``flow.overlap_conflicts``), and
out-of-order segments wait in a per-direction buffer bounded by
``max_buffer``.  A hole is given up (reported as a gap) when the peer
acknowledges past it, when the buffer is full, or when the connection ends.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .decode import ACK, FIN, RST, SYN, TcpSegment, format_ip
from .lane import CLIENT_LANE, SERVER_LANE, CommandLane, tcp_span
from .ordering import OutOfOrder

__all__ = ["Flow", "Reassembler"]

_M32 = 0xFFFFFFFF
_HALF = 0x80000000

_ACTIVE = 0
_IGNORED = 1
_CLOSED = 2

_TOMB_TTL = 120.0
"""Seconds a closed or ignored flow's tombstone outlives its last packet."""

_TOMB_MIN_LIMIT = 4096

_MIN_PIECES = 1024
"""Floor of ``Reassembler.max_pieces`` (see there)."""

_PORTS = struct.Struct("!HH").pack
_ACK32 = struct.Struct("!I").unpack_from
_ANY_CONTROL = SYN | FIN | RST


def _unwrap(seq32: int, ref: int) -> int:
    """The unbounded sequence number closest to ``ref`` whose low 32 bits are ``seq32``."""
    return ref + ((seq32 - ref + _HALF) & _M32) - _HALF


class _Dir:
    """One direction's sequence state. Numbers are unwrapped (unbounded) ints."""

    __slots__ = (
        "nxt",
        "isn",
        "fin",
        "done",
        "muted",
        "starts",
        "items",
        "pbytes",
        "last",
        "ack32",
    )

    def __init__(self) -> None:
        self.nxt: int | None = None  # next byte to deliver; None until started
        self.isn: int | None = None  # 32-bit ISN when a SYN was seen
        self.fin: int | None = None  # sequence number of the FIN
        self.done = False  # FIN consumed
        self.muted = False
        self.starts: list[int] = []  # pending out-of-order intervals, sorted, disjoint
        self.items: list[tuple[int, bytes | None]] = []  # (end, data or None = lost bytes)
        self.pbytes = 0
        self.last = b""  # last delivered payload (ends at nxt), for overlap checks
        self.ack32: int | None = None  # highest 32-bit ACK the peer sent for this direction

    def acked(self, buf, p: int, end: int, ts: float) -> bool:
        """A capture reader's frame towards this direction, IP header at
        ``buf[p]`` (fast-lane mode 4; see :func:`~mysqlwire.capture.lane.tcp_span`):
        a bare ACK is noted here, all :meth:`Reassembler.add` would do with it;
        anything else is not taken."""
        t, pend = tcp_span(buf, p)
        if pend != t + (buf[t + 12] >> 4 << 2) or buf[t + 12] < 0x50:
            return False
        self.ack32 = _ACK32(buf, t + 8)[0]
        return True


class Flow:
    """One TCP connection as seen in the capture.

    ``initiator`` / ``responder`` are ``(ip, port)``: the initiator sent the
    SYN; without a SYN, the SYN+ACK's receiver; without either (capture
    started mid-connection), the source of the first segment.
    """

    __slots__ = (
        "_ikey",
        "_rkey",
        "index",
        "first_ts",
        "last_ts",
        "syn_seen",
        "ipv6",
        "sink",
        "state",
        "close_reason",
        "overlap_conflicts",
        "gap_bytes",
        "_d",
        "on_data",
        "on_gap",
        "on_closed",
        "_isn",
        "_reasm",
        "_fkeys",
        "_lane",
        "_lane_idle",
        "lane_req",
    )

    def __init__(self, ikey: tuple, index: int, ts: float, syn_seen: bool, ipv6: bool):
        self._ikey = ikey
        self._rkey = (ikey[2], ikey[3], ikey[0], ikey[1])
        self.index = index
        self.first_ts = ts
        self.last_ts = ts
        self.syn_seen = syn_seen
        self.ipv6 = ipv6
        self.sink = None
        self.state = _ACTIVE
        self.close_reason: str | None = None
        self.overlap_conflicts = 0
        self.gap_bytes = 0
        self._d: tuple[_Dir, _Dir] | None = None  # (responder->initiator, initiator->responder)
        self._isn: list = [None, None]  # ISNs, kept for tombstones (index: from_initiator)
        self._reasm: Reassembler | None = None
        self._fkeys: tuple[bytes, bytes] | None = None  # fast-lane keys (IPv4 only)
        self._lane: CommandLane | None = None
        self._lane_idle = 0  # lanes given back having taken nothing
        self.lane_req = False  # see request_lane

    @property
    def initiator(self) -> tuple[str, int]:
        return (format_ip(self._ikey[0]), self._ikey[1])

    @property
    def responder(self) -> tuple[str, int]:
        return (format_ip(self._ikey[2]), self._ikey[3])

    @property
    def ports(self) -> tuple[int, int]:
        """(initiator's port, responder's port), without formatting addresses."""
        return (self._ikey[1], self._ikey[3])

    @property
    def endpoints_key(self) -> bytes:
        """Raw addresses and ports of both ends, the same whichever end is the
        initiator (for hashing a connection to a worker)."""
        s, sp, d, dp = self._ikey
        a = s + _PORTS(sp, 0)
        b = d + _PORTS(dp, 0)
        return a + b if a < b else b + a

    @property
    def closed(self) -> bool:
        return self.state != _ACTIVE

    def mute(self, from_initiator: bool) -> None:
        """Stop buffering and delivering one direction: its bytes can no longer
        change any answer.  Its segments are then only looked at for
        SYN/FIN/RST (and, in a capture reader that supports it, skipped before
        they are even decoded: see :attr:`Reassembler.fast`)."""
        if self._d is None:
            return
        d = self._d[from_initiator]
        if d.muted:
            return
        d.muted = True
        if d.starts and d.nxt is not None:
            d.nxt = max(d.nxt, d.items[-1][0])
        d.starts = []
        d.items = []
        d.pbytes = 0
        d.last = b""
        if self._reasm is not None:
            self._reasm._refresh_fast(self)

    def unmute(self, from_initiator: bool) -> None:
        """Resume delivering a muted direction.

        Delivery restarts at the direction's current position, or further on
        where the peer's last acknowledgement says the sender is: a capture
        reader using the fast lane skipped the muted direction's segments
        without following their sequence numbers (for a request/response
        protocol, that acknowledgement is the start of the answer to the
        request being delivered now).
        """
        if self._d is None:
            return
        d = self._d[from_initiator]
        if not d.muted:
            return
        d.muted = False
        if d.fin is None and not d.done and d.ack32 is not None and d.nxt is not None:
            acked = _unwrap(d.ack32, d.nxt)
            if acked > d.nxt:
                d.nxt = acked
        if self._reasm is not None:
            self._reasm._refresh_fast(self)

    def request_lane(self) -> None:
        """The sink's command phase may be at rest: once the current segment
        is handled (a frame may deliver several pieces), the reassembler asks
        the sink's ``lane_request()`` -- None, or ``(client_is_initiator,
        watch, quiet, inflate)`` as :class:`~mysqlwire.capture.lane.CommandLane`
        takes them -- and may open a lane.  The sink must also have
        ``lane_exit(lane)``: it is given the lane back before the next segment
        the lane did not take."""
        self.lane_req = True

    def is_muted(self, from_initiator: bool) -> bool:
        return self._d is not None and self._d[from_initiator].muted

    def next_seq(self, from_initiator: bool) -> int | None:
        """32-bit TCP sequence number of the next byte to deliver in that
        direction (inside a data callback: the byte after the data given);
        None before the direction started."""
        if self._d is None or self._d[from_initiator].nxt is None:
            return None
        return self._d[from_initiator].nxt & 0xFFFFFFFF

    def buffered(self, from_initiator: bool) -> int:
        """Out-of-order bytes waiting for a hole to fill in that direction."""
        return 0 if self._d is None else self._d[from_initiator].pbytes

    def __repr__(self) -> str:
        from .decode import endpoint

        i = endpoint(*self.initiator)
        r = endpoint(*self.responder)
        state = ("active", "ignored", f"closed:{self.close_reason}")[self.state]
        return f"<Flow #{self.index} {i} -> {r} {state}>"


def _noop(*_args) -> None:
    return None


class Reassembler(OutOfOrder):
    """Reassemble every TCP flow of a capture into per-direction byte streams.

    ``on_flow(flow)`` is called on each new flow's first segment and returns a
    sink (an object with ``data``, and optionally ``gap`` and ``closed``
    methods) or ``None`` to ignore the flow.  ``max_buffer`` bounds the
    out-of-order bytes held per direction; ``idle_timeout`` (seconds of
    capture time) closes flows that went quiet, with reason ``"idle"``.

    ``max_pieces`` bounds the number of separate out-of-order pieces held per
    direction (default ``max_buffer // 64``, at least 1024): each costs about
    130 bytes of bookkeeping whatever its size, and pieces whose bytes were
    cut by the snaplen hold no bytes at all, so ``max_buffer`` alone does not
    bound memory against a flood of tiny segments.
    """

    def __init__(
        self,
        on_flow: Callable[[Flow], object | None],
        *,
        max_buffer: int = 4 * 1024 * 1024,
        idle_timeout: float | None = None,
        max_pieces: int | None = None,
    ):
        self.on_flow = on_flow  #: may be replaced before the first segment
        self.max_buffer = max_buffer
        self.max_pieces = max_pieces or max(_MIN_PIECES, max_buffer // 64)
        self.idle_timeout = idle_timeout
        self._flows: dict[tuple, tuple[Flow, bool]] = {}
        self._active: dict[Flow, None] = {}
        self._tombs: dict[Flow, None] = {}  # closed/ignored flows, oldest first
        self._tomb_limit = _TOMB_MIN_LIMIT
        self._next_idle_check = float("-inf") if idle_timeout is not None else float("inf")
        self.flows_seen = 0
        self.overlap_conflicts = 0
        self.gap_bytes = 0
        # The fast lane: segments that can no longer change any answer.
        # key: source address + destination address + source port +
        # destination port (IPv4 4 + 4 + 2 + 2 raw bytes, IPv6 16 + 16 + 2 + 2,
        # as they follow each other in an IPv4 header without options, or an
        # IPv6 header with TCP next, and the TCP header); value:
        # (flow, mask, mode, lane[, take]).  A capture reader may skip a
        # segment of such a direction without decoding it when
        # ``flags & mask == 0`` and, by mode: 0 any segment; 1 a bare ACK;
        # 2 / 3 what the command lane takes (mysqlwire.capture.lane; a server
        # lane with no answer awaited: any segment); 4 what ``take`` takes (a
        # bare ACK, noted: its acknowledgement number goes to ``lane.ack32``,
        # ``lane`` being the direction it acknowledges, which the native
        # loop does itself) -- provided it sets ``flow.last_ts`` to its
        # timestamp: that is all :meth:`add` would have done with it.  Off
        # with ``idle_timeout`` (expiry runs per segment).
        self.fast: dict[bytes, tuple] = {}
        self._fast_on = idle_timeout is None
        # command lanes (see mysqlwire.capture.lane): only for a driver whose
        # capture reader takes them from ``fast``
        self.lanes = False

    # -- public -------------------------------------------------------------

    def add(self, ts: float, seg: TcpSegment) -> None:
        """Feed one segment (capture order)."""
        saddr, sport, daddr, dport, seq, ack, flags, payload, ipv6, missing = seg
        if ts >= self._next_idle_check:
            self._expire_idle(ts)
        ent = self._flows.get((saddr, sport, daddr, dport))
        if ent is None:
            self._new_flow(ts, seg)
            return
        flow, fwd = ent
        if flow._lane is not None:
            self._lane_exit(flow)
        if flow.state != _ACTIVE:
            if flags & SYN and self._is_new_connection(flow, fwd, flags, seq):
                self._forget(flow)
                self._new_flow(ts, seg)
            else:
                flow.last_ts = ts
            return
        flow.last_ts = ts
        dirs = flow._d
        d = dirs[fwd]
        peer = dirs[not fwd]
        if flags & 0x07 or missing or d.nxt is None or peer.nxt is None:  # SYN, RST, FIN
            self._slow(flow, fwd, ts, seg)
            if flow.lane_req:
                self._open_lane(flow, ts)
            return
        if flags & ACK:
            peer.ack32 = ack
            if peer.starts or (peer.fin is not None and not peer.done):
                self._on_ack(flow, peer, not fwd, ts)
        if payload:
            nxt = d.nxt
            if not d.muted and ((seq - nxt) & _M32) == 0:
                # In order: the common case.
                d.nxt = nxt + len(payload)
                d.last = payload
                flow.on_data(fwd, payload, ts)
                if not d.starts:
                    if flow.lane_req:
                        self._open_lane(flow, ts)
                    return
                self._drain(flow, d, fwd, ts)
            else:
                self._data(flow, d, fwd, ts, seq, payload, 0)
        if d.done and peer.done:
            self._close(flow, "fin", ts)
        if flow.lane_req:
            self._open_lane(flow, ts)

    def finish(self, ts: float | None = None) -> None:
        """End of capture: flush every open flow (gaps, then data) and close it."""
        for flow in list(self._active):
            if flow._lane is not None:
                self._lane_exit(flow)
            self._close(flow, "end-of-capture", flow.last_ts if ts is None else ts)
        self._flows.clear()
        self._tombs.clear()
        self.fast.clear()

    def open_flows(self) -> list[Flow]:
        return list(self._active)

    # -- flows --------------------------------------------------------------

    def _new_flow(self, ts: float, seg: TcpSegment) -> None:
        saddr, sport, daddr, dport, seq, ack, flags, _payload, ipv6, _missing = seg
        if flags & RST:
            return  # a reset for a connection we never saw: nothing to follow
        key = (saddr, sport, daddr, dport)
        if flags & SYN and flags & ACK:
            ikey = (daddr, dport, saddr, sport)
            fwd = False
        else:
            ikey = key
            fwd = True
        syn_seen = bool(flags & SYN) and not flags & ACK
        flow = Flow(ikey, self.flows_seen, ts, syn_seen, ipv6)
        if self._fast_on:
            flow._reasm = self
            s, sp, d, dp = ikey
            flow._fkeys = (d + s + _PORTS(dp, sp), s + d + _PORTS(sp, dp))
        self.flows_seen += 1
        if flags & SYN:
            flow._isn[fwd] = seq
        self._flows[ikey] = (flow, True)
        self._flows[flow._rkey] = (flow, False)
        flow._d = (_Dir(), _Dir())  # before on_flow, which may mute a direction
        sink = self.on_flow(flow)
        if sink is None:
            flow._d = None
            flow.state = _IGNORED
            self._add_tomb(flow)
            self._refresh_fast(flow)
            return
        flow.sink = sink
        flow.on_data = sink.data
        flow.on_gap = getattr(sink, "gap", _noop)
        flow.on_closed = getattr(sink, "closed", _noop)
        self._active[flow] = None
        self._slow(flow, fwd, ts, seg)

    def _is_new_connection(self, flow: Flow, fwd: bool, flags: int, seq: int) -> bool:
        """Does this SYN (or SYN+ACK) start a new connection on ``flow``'s 4-tuple?"""
        if flags & ACK:
            # SYN+ACK: the sender is the responder of a connection.
            if fwd:
                return True  # roles swapped: a different connection
            known = flow._isn[False]
            if known is None:
                flow._isn[False] = seq  # the answer to the SYN that started it
                return False
            return known != seq
        if not fwd:
            return True  # SYN from the old responder: a new connection
        return flow._isn[True] != seq

    def _forget(self, flow: Flow) -> None:
        """Drop a tombstone so the 4-tuple can start afresh."""
        self._tombs.pop(flow, None)
        self._drop_fast(flow)
        for key in (flow._ikey, flow._rkey):
            ent = self._flows.get(key)
            if ent is not None and ent[0] is flow:
                del self._flows[key]

    def _add_tomb(self, flow: Flow) -> None:
        tombs = self._tombs
        tombs[flow] = None
        if len(tombs) >= self._tomb_limit:
            self._prune_tombs(flow.last_ts)

    def _prune_tombs(self, now: float) -> None:
        horizon = now - _TOMB_TTL
        keep = {}
        for flow in self._tombs:
            if flow.last_ts < horizon:
                self._drop_fast(flow)
                for key in (flow._ikey, flow._rkey):
                    ent = self._flows.get(key)
                    if ent is not None and ent[0] is flow:
                        del self._flows[key]
            else:
                keep[flow] = None
        self._tombs = keep
        self._tomb_limit = max(_TOMB_MIN_LIMIT, 2 * len(keep))

    def _expire_idle(self, now: float) -> None:
        timeout = self.idle_timeout
        assert timeout is not None
        self._next_idle_check = now + timeout / 4
        horizon = now - timeout
        for flow in [f for f in self._active if f.last_ts < horizon]:
            self._close(flow, "idle", now)
            self._forget(flow)  # a later packet starts a new (mid-stream) flow

    def _close(self, flow: Flow, reason: str, ts: float) -> None:
        if flow.state != _ACTIVE:
            return
        dirs = flow._d
        for fwd in (True, False):
            self._flush(flow, dirs[fwd], fwd, ts)
        if reason == "end-of-capture" and dirs[0].done and dirs[1].done:
            reason = "fin"
        flow.state = _CLOSED
        flow.close_reason = reason
        self._active.pop(flow, None)
        flow._d = None
        sink = flow.on_closed
        flow.sink = flow.on_data = flow.on_gap = flow.on_closed = None
        self._add_tomb(flow)
        self._refresh_fast(flow)
        sink(reason, ts)

    # -- fast lane -------------------------------------------------------------

    def _refresh_fast(self, flow: Flow) -> None:
        """Recompute ``flow``'s entries in :attr:`fast` from its state."""
        if flow._reasm is None:
            return
        keys = flow._fkeys  # (set with _reasm, in _new_flow)
        fast = self.fast
        if flow.state != _ACTIVE:
            ent = (flow, SYN, 0, None)  # a tombstone: only a SYN can matter
            fast[keys[0]] = fast[keys[1]] = ent
            return
        d0, d1 = flow._d
        if d0.nxt is None or d1.nxt is None:  # (a direction not started: no entries)
            fast.pop(keys[0], None)
            fast.pop(keys[1], None)
            return
        for d, peer, key in ((d0, d1, keys[0]), (d1, d0, keys[1])):
            if peer.starts or not (peer.fin is None or peer.done):
                # (the peer's holes and FIN wait for this side's ACKs)
                fast.pop(key, None)
            elif d.muted:
                fast[key] = (flow, _ANY_CONTROL, 0, None)
            elif peer.muted:
                fast[key] = (flow, _ANY_CONTROL, 1, None)  # bare ACKs of muted bytes
            else:
                fast[key] = (flow, _ANY_CONTROL, 4, peer, peer.acked)  # bare ACKs, noted

    def _open_lane(self, flow: Flow, ts: float) -> None:
        """Open the command lane a sink asked for, if the flow is at rest."""
        flow.lane_req = False
        if not self.lanes or flow._reasm is None or flow.state != _ACTIVE or flow._lane_idle > 3:
            return  # (a lane the reader keeps passing by, e.g. VLAN frames, is not worth opening)
        req = flow.sink.lane_request()  # (the sink's state now: after every piece delivered)
        if req is None:
            return
        cfwd, watch, quiet, inflate = req
        cd = flow._d[cfwd]
        sd = flow._d[not cfwd]
        if (
            cd.muted
            or cd.nxt is None
            or cd.starts
            or cd.fin is not None
            or not sd.muted
            or sd.nxt is None
            or sd.fin is not None
        ):
            return
        lane = flow._lane = CommandLane(cfwd, cd.nxt & _M32, watch, ts, quiet, inflate)
        keys = flow._fkeys
        self.fast[keys[cfwd]] = (flow, _ANY_CONTROL, CLIENT_LANE, lane, lane.client)
        self.fast[keys[not cfwd]] = (flow, _ANY_CONTROL, SERVER_LANE, lane, lane.server)

    def _lane_exit(self, flow: Flow) -> None:
        """Take back a lane's state before a segment it did not take: as if
        every frame it took had come this way."""
        lane = flow._lane
        flow._lane = None
        cd = flow._d[lane.client_fwd]
        sd = flow._d[not lane.client_fwd]
        if lane.commands:
            cd.nxt += lane.nbytes  # (the lane took contiguous bytes only)
            cd.last = lane.last
        if lane.ack is not None:
            sd.ack32 = lane.ack
        elif lane.sack is None:
            flow._lane_idle += 1
        if lane.sack is not None:
            cd.ack32 = lane.sack
        if lane.awaiting:
            # the ordinary path unmuted the server at the command: its answer
            # starts where the client acknowledged
            sd.muted = False
            start = _unwrap(lane.reply_at, sd.nxt)
            if start > sd.nxt:
                sd.nxt = start
        flow.sink.lane_exit(lane)
        self._refresh_fast(flow)

    def _drop_fast(self, flow: Flow) -> None:
        keys = flow._fkeys
        if keys is not None:
            fast = self.fast
            for key in keys:
                ent = fast.get(key)
                if ent is not None and ent[0] is flow:
                    del fast[key]

    # -- segments -----------------------------------------------------------

    def _slow(self, flow: Flow, fwd: bool, ts: float, seg: TcpSegment) -> None:
        """Segments with SYN / FIN / RST, a snaplen-cut payload, or a direction's first."""
        _s, _sp, _d, _dp, seq, ack, flags, payload, _v6, missing = seg
        d = flow._d[fwd]
        peer = flow._d[not fwd]
        if flags & RST:
            self._close(flow, "rst", ts)
            return
        if flags & SYN:
            known = flow._isn[fwd]
            if known is not None:
                reused = known != seq  # else a retransmitted SYN
            elif d.nxt is None:
                # A bare SYN on a flow picked up mid-stream from the other side's
                # bytes starts a new connection (simultaneous open has syn_seen).
                reused = not flags & ACK and peer.nxt is not None and not flow.syn_seen
            else:
                # This side started without its SYN; a SYN consistent with where
                # its bytes started is a late copy, anything else a new connection.
                behind = d.nxt - _unwrap((seq + 1) & _M32, d.nxt)
                reused = not 0 <= behind < (1 << 24)
            if reused:
                self._close(flow, "reused", ts)
                self._forget(flow)
                self._new_flow(ts, seg)
                return
            flow._isn[fwd] = seq
            if d.nxt is None:
                d.isn = seq
                d.nxt = seq + 1
        if flags & ACK:
            if peer.nxt is None and (flags & SYN or flow.syn_seen):
                # The handshake tells where the peer's bytes start.
                peer.nxt = ack
                if flags & SYN and flow._isn[not fwd] is None:
                    flow._isn[not fwd] = (ack - 1) & _M32
            peer.ack32 = ack
            if peer.starts or (peer.fin is not None and not peer.done):
                self._on_ack(flow, peer, not fwd, ts)
        if d.nxt is None:
            if not flags & FIN and len(payload) + missing <= 1:
                # Mid-stream, nothing placed yet: a bare ACK or a keep-alive
                # probe (one byte below the next sequence number, with 0 or 1
                # byte) must not fix where this direction's bytes start.
                return
            # Capture started mid-stream in this direction: start where we are.
            d.nxt = seq
        elif d.muted and not flags & SYN and flow._fkeys is not None:
            # the fast lane did not follow a muted direction's sequence numbers
            d.nxt = _unwrap(seq, d.nxt)
        start = _unwrap((seq + 1) & _M32 if flags & SYN else seq, d.nxt)
        if payload or missing:
            self._data(flow, d, fwd, ts, start & _M32, payload, missing)
        if flags & FIN:
            fin = start + len(payload) + missing
            if d.fin is None:
                d.fin = fin
            if d.muted and d.nxt < d.fin:
                d.nxt = d.fin
            if d.nxt == d.fin and not d.done:
                d.nxt += 1
                d.done = True
        if d.done and peer.done:
            self._close(flow, "fin", ts)
        elif flow._fkeys is not None and flow.state == _ACTIVE:
            self._refresh_fast(flow)

    def _data(
        self,
        flow: Flow,
        d: _Dir,
        fwd: bool,
        ts: float,
        seq: int,
        payload: bytes,
        missing: int,
    ) -> None:
        """Place payload (plus ``missing`` lost bytes after it) at 32-bit ``seq``."""
        nxt = d.nxt
        s = _unwrap(seq, nxt)
        e = s + len(payload) + missing
        if d.muted:
            if e > nxt:
                d.nxt = e
            return
        if e <= nxt:
            # Retransmission (or a keep-alive: 1 byte at nxt - 1).
            if payload and not (len(payload) == 1 and s == nxt - 1):
                self._check_delivered(flow, d, s, payload)
            return
        if s > nxt:
            self._buffer(flow, d, fwd, ts, s, payload, missing)
            return
        if s < nxt:
            self._check_delivered(flow, d, s, payload)
            cut = nxt - s
            if cut >= len(payload):
                missing -= cut - len(payload)
                payload = b""
            else:
                payload = payload[cut:]
        if payload:
            d.nxt = nxt + len(payload)
            d.last = payload
            flow.on_data(fwd, payload, ts)
        if missing and not d.muted:
            self._gap(flow, d, fwd, missing, ts)
        if d.starts:
            self._drain(flow, d, fwd, ts)
        if d.fin is not None and d.nxt == d.fin and not d.done:
            d.nxt += 1
            d.done = True
