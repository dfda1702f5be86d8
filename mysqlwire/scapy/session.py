"""Stateful decoding for Scapy: ``sniff(session=MySQLSession)`` and :func:`dissect_packets`.

:class:`MySQLSession` follows every TCP connection with mysqlwire's own TCP
reassembly and handshake state machine (:class:`mysqlwire.handshake.Handshake`),
so each MySQL frame gets the class the connection state says (an ``0x01`` is
AuthMoreData only during authentication, ``0xFE`` a switch or a bare old
switch...).  Which connections are MySQL is decided as ``mysqlwire dissect``
decides it (:class:`mysqlwire.discover.Sniffer`), on any port (``ports=``
restricts): a greeting at the start, or, for a connection already open when
the capture started, commands answered by replies (then a COM_CHANGE_USER is
still classified).

What a packet looks like after the session:

* a segment that completes MySQL frames carries them, decoded, as its TCP
  payload (a frame split over several segments appears whole on the segment
  that completes it, like Scapy's ``TCPSession``);
* a segment that completes no frame (first part of a split frame, a
  retransmission) and bytes after an SSLRequest (TLS) or after compression
  was negotiated keep a ``Raw`` payload: never mis-decoded;
* TCP connections that are not MySQL are left as Scapy decoded them.
"""

from __future__ import annotations

from collections import deque

from scapy.error import log_runtime
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw
from scapy.sessions import DefaultSession

from ..capture import ACK, Reassembler, TcpSegment
from ..discover import NOT_MYSQL, UNDECIDED, Sniffer
from ..dissect import CaptureSummary, DissectOptions, Dissector
from ..handshake import BROKEN, CLIENT, SERVER, Handshake
from .layers import (
    FRAME_PLAN,
    MySQLAuthSwitchResponse,
    MySQLClientFrame,
    MySQLErr,
    MySQLHandshakeResponse41,
    MySQLHandshakeResponse320,
    MySQLHandshakeV9,
    MySQLHandshakeV10,
    MySQLServerFrame,
    class_for,
)

#: handshake event kinds that name a frame, beyond the grammar kinds
_EVENT_CLASSES = {
    "auth_data": MySQLAuthSwitchResponse,
    "command_error": MySQLErr,
}
_NOT_FRAMES = {"anomaly", "command"}


def segment_of(pkt) -> TcpSegment | None:
    """The TCP segment of a Scapy packet (IPv4 or IPv6), or None."""
    tcp = pkt.getlayer(TCP)
    if tcp is None:
        return None
    ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
    if ip is None:
        return None
    payload = bytes(tcp.payload)
    if IP in pkt and pkt[IP].len is not None:
        # Scapy may keep Ethernet padding in the payload: trust the IP length
        want = pkt[IP].len - pkt[IP].ihl * 4 - tcp.dataofs * 4
        if 0 <= want < len(payload):
            payload = payload[:want]
    flags = int(tcp.flags) if tcp.flags is not None else ACK
    return TcpSegment.make(
        ip.src, tcp.sport, ip.dst, tcp.dport, tcp.seq, tcp.ack or 0, flags, payload
    )


class _Frames:
    """Complete MySQL frames of one direction, as they arrive."""

    __slots__ = ("buf", "opaque")

    def __init__(self):
        self.buf = bytearray()
        self.opaque = False

    def take(self, data: bytes) -> list[tuple[int, bytes, bytes]]:
        """Append ``data``; return the complete frames (seq, payload, raw)."""
        self.buf += data
        out = []
        pos = 0
        buf = self.buf
        while pos + 4 <= len(buf):
            n = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            if pos + 4 + n > len(buf):
                break
            raw = bytes(buf[pos : pos + 4 + n])
            out.append((raw[3], raw[4:], raw))
            pos += 4 + n
        del buf[:pos]
        return out


class _Tracker:
    """One TCP connection: decides whether it is MySQL and classifies its frames."""

    def __init__(self, session: MySQLSession, flow):
        self.session = session
        self.flow = flow
        self.server_is_initiator: bool | None = None
        self.ignored = False
        self.hs = Handshake()
        self.frames = {CLIENT: _Frames(), SERVER: _Frames()}
        self.events = {CLIENT: deque(), SERVER: deque()}
        self.greeting_seen = False
        self.response_seen = False
        self.last_packet = {}
        self.sniffer = Sniffer(flow.syn_seen)  # until MySQL or not

    # reassembler sink API
    def data(self, from_initiator: bool, data: bytes, ts: float) -> None:
        if self.ignored:
            return
        if self.server_is_initiator is not None:
            self._feed(from_initiator, bytes(data))
            return
        # the dissector's own discovery: a greeting from the start, or a
        # connection joined mid-stream (commands answered by replies)
        verdict = self.sniffer.feed(from_initiator, bytes(data), ts)
        if verdict is UNDECIDED:
            return
        ports = self.session.ports
        if verdict is not NOT_MYSQL:
            flow = self.flow
            server_port = (flow.initiator if verdict.server_is_initiator else flow.responder)[1]
        if verdict is NOT_MYSQL or (ports is not None and server_port not in ports):
            self._ignore()
            return
        self.sniffer = None
        self.server_is_initiator = verdict.server_is_initiator
        if verdict.midstream:
            self.hs.join_command_phase()
            self.greeting_seen = self.response_seen = True
        for fi, chunk, _ts in verdict.replay:
            self._feed(fi, chunk)

    def _feed(self, from_initiator: bool, data: bytes) -> None:
        sender = SERVER if from_initiator == self.server_is_initiator else CLIENT
        side = self.frames[sender]
        if side.opaque:
            self.session.deliver(self, sender, [], bytes(data))
            return
        frames = side.take(bytes(data))
        self.hs.receive_data(sender, data)
        self._collect_events()
        plan = []
        opaque_from = None
        for i, (seq, payload, _raw) in enumerate(frames):
            cls, caps, ev = self._classify(sender, seq, payload)
            plan.append((cls, caps))
            if ev is not None and self._switches_framing(ev):
                opaque_from = i + 1
                break
        if self.hs.state == BROKEN and opaque_from is None:
            opaque_from = len(frames)
        tail = b""
        if opaque_from is not None:
            tail = b"".join(raw for _s, _p, raw in frames[opaque_from:]) + bytes(side.buf)
            side.buf.clear()
            frames = frames[:opaque_from]
            plan = plan[:opaque_from]
            for f in self.frames.values():
                f.opaque = True
        self.session.deliver(self, sender, list(zip(frames, plan, strict=True)), tail)

    def gap(self, from_initiator: bool, nbytes: int, ts: float) -> None:
        # frames cannot be found again after lost bytes: show the rest as Raw
        if self.server_is_initiator is not None:
            sender = SERVER if from_initiator == self.server_is_initiator else CLIENT
            self.frames[sender].opaque = True
            self.frames[sender].buf.clear()
            self.hs.gap(sender, nbytes)  # the state machine says what it can still follow
            self._collect_events()

    def closed(self, reason: str, ts: float) -> None:
        self.session.forget(self)

    # internals
    def _ignore(self) -> None:
        self.ignored = True
        self.flow.mute(True)
        self.flow.mute(False)

    def _collect_events(self) -> None:
        while True:
            ev = self.hs.next_event()
            if not hasattr(ev, "kind"):
                return
            if ev.kind in _NOT_FRAMES or ev.seq is None:
                continue
            self.events[ev.sender].append(ev)

    def _classify(self, sender: str, seq: int, payload: bytes):
        queue = self.events[sender]
        if queue and queue[0].seq == seq and bytes(queue[0].payload) == payload:
            ev = queue.popleft()
            return (*self._class_of(ev, payload), ev)
        return class_for(None), None, None

    def _class_of(self, ev, payload: bytes):
        kind = ev.kind
        if kind == "greeting":
            self.greeting_seen = True
            return (MySQLHandshakeV10 if payload[:1] == b"\x0a" else MySQLHandshakeV9), None
        if kind == "handshake_response":
            self.response_seen = True
            v41 = int.from_bytes(payload[:2], "little") & 0x200
            return (MySQLHandshakeResponse41 if v41 else MySQLHandshakeResponse320), None
        if kind == "ssl_request":
            self.response_seen = True
        if not self.greeting_seen:
            caps = 0  # an ERR before the greeting has no SQLSTATE
        elif not self.response_seen:
            caps = None
        else:
            caps = self.hs.client_caps
        cls = _EVENT_CLASSES.get(kind) or class_for(kind, payload, caps)
        return cls, caps

    def _switches_framing(self, ev) -> bool:
        if ev.kind == "ssl_request":
            return True  # TLS follows on both sides
        return ev.kind == "ok" and ev.exchange == 0 and self.hs.compressed


class MySQLSession(DefaultSession):
    """Scapy session running mysqlwire's state machine on every TCP connection.

    ``sniff(offline="x.pcap", session=MySQLSession)`` or, to restrict the
    ports examined, ``session=MySQLSession(ports={3306, 3407})``.  A
    connection quiet for ``idle_timeout`` seconds is forgotten (its later
    packets pass through undecoded).  Frames get
    their exact class (see the module docstring); no Scapy binding is needed
    or changed.
    """

    def __init__(self, *args, ports=None, idle_timeout: float | None = 600.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.ports = set(ports) if ports is not None else None
        # connections quiet for idle_timeout seconds (capture time) are
        # forgotten, so a long live sniff keeps bounded state
        self._reasm = Reassembler(self._on_flow, idle_timeout=idle_timeout)
        self._trackers: dict[tuple, _Tracker] = {}
        self._out: list = []

    # -- Scapy API
    def recv(self, sock):
        pkt = sock.recv()
        if not pkt:
            return
        try:
            out = self.process_all(pkt)
        except Exception as exc:  # never stop a sniff: say so, pass the packet on
            log_runtime.warning(
                "mysqlwire MySQLSession: packet passed on undecoded (%s)", type(exc).__name__
            )
            out = [pkt]
        yield from out

    def process(self, pkt):
        """One packet in, the (first) packet out; see :meth:`process_all`."""
        out = self.process_all(pkt)
        return out[0] if out else None

    def process_all(self, pkt) -> list:
        """Feed one packet; return the packets to show for it (normally one)."""
        if self.supersession:
            pkt = self.supersession.process(pkt)
            if pkt is None:
                return []
        seg = segment_of(pkt)
        if seg is None:
            return [pkt]
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        self._out = []
        self._reasm.add(float(pkt.time), seg)
        tracker = self._trackers.get(key)
        if tracker is None or tracker.ignored:
            tracker = next((t for t, *_ in self._out), None)
        if tracker is None or tracker.ignored or tracker.server_is_initiator is None:
            return [pkt]
        sender = self._sender(tracker, seg)
        if seg.payload:
            tracker.last_packet[sender] = pkt
        mine = [(frames, tail) for t, s, frames, tail in self._out if t is tracker and s == sender]
        others = [
            (t, s, frames, tail) for t, s, frames, tail in self._out if (t, s) != (tracker, sender)
        ]
        out = []
        if mine:
            frames = [f for fr, _ in mine for f in fr]
            tail = b"".join(t for _, t in mine)
            out.append(_rebuild(pkt, sender, frames, tail))
        elif seg.payload:
            out.append(_rebuild(pkt, sender, [], bytes(seg.payload)))
        else:
            out.append(pkt)
        for t, s, frames, tail in others:
            base = t.last_packet.get(s)
            if base is not None:
                out.append(_rebuild(base, s, frames, tail))
        return out

    # -- tracker API
    def deliver(self, tracker: _Tracker, sender: str, frames: list, tail: bytes) -> None:
        if frames or tail:
            self._out.append((tracker, sender, frames, tail))

    def forget(self, tracker: _Tracker) -> None:
        for key in [k for k, t in self._trackers.items() if t is tracker]:
            del self._trackers[key]

    def _on_flow(self, flow):
        tracker = _Tracker(self, flow)
        (ia, ip_), (ra, rp) = flow.initiator, flow.responder
        self._trackers[(ia, ip_, ra, rp)] = tracker
        self._trackers[(ra, rp, ia, ip_)] = tracker
        return tracker

    @staticmethod
    def _sender(tracker: _Tracker, seg) -> str:
        from_initiator = (seg.src, seg.sport) == tracker.flow.initiator
        return SERVER if from_initiator == tracker.server_is_initiator else CLIENT


def _rebuild(pkt, sender: str, frames: list, tail: bytes):
    """A copy of ``pkt`` whose TCP payload is ``frames`` (decoded) then ``tail`` (Raw)."""
    new = pkt.copy()
    tcp = new[TCP]
    wire = segment_of(pkt).payload
    tcp.remove_payload()
    if b"".join(raw for (_s, _p, raw), _plan in frames) + tail != wire:
        # frames joined from several segments: lengths and checksums are
        # recomputed if the packet is written out (wrpcap)
        tcp.chksum = None
        ip = tcp.underlayer
        if isinstance(ip, IP):
            ip.len = None
            ip.chksum = None
        elif isinstance(ip, IPv6):
            ip.plen = None
    if frames:
        frame_cls = MySQLServerFrame if sender == SERVER else MySQLClientFrame
        token = FRAME_PLAN.set(deque(plan for _frame, plan in frames))
        try:
            layer = frame_cls(b"".join(raw for (_s, _p, raw), _plan in frames))
        finally:
            FRAME_PLAN.reset(token)
        tcp.add_payload(layer)
    if tail:
        (tcp.lastlayer() if frames else tcp).add_payload(Raw(tail))
    return new


def dissect_packets(packets, *, packets_detail: bool = True, **options):
    """Stateful decoding of a Scapy PacketList (or any iterable of packets):
    the same :class:`~mysqlwire.model.Connection` records ``mysqlwire dissect``
    gives, with the same defaults (:class:`~mysqlwire.dissect.DissectOptions`;
    ``ports=``, ``keylog=``... override them)."""
    if options.get("ports") is not None:
        options["ports"] = tuple(options["ports"])
    opts = DissectOptions(with_packets=packets_detail, **options)
    engine = Dissector(opts, CaptureSummary(path="<scapy>"))
    out = []
    for pkt in packets:
        seg = segment_of(pkt)
        if seg is not None:
            engine.add(float(pkt.time), seg)
            out.extend(engine.drain())
    out.extend(engine.finish())
    return out


__all__ = ["MySQLSession", "dissect_packets", "segment_of"]
