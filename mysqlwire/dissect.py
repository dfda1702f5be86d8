"""The dissection pipeline: capture file -> TCP streams -> handshake events ->
:class:`~mysqlwire.model.Connection` records.

Streaming: connections are yielded as they close (in order of first packet,
held back at most ``reorder_window`` records), per-connection state is dropped
once the connection phase is over, and command-phase payload is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .capture import Reassembler, TcpSegment, endpoint, open_capture
from .discover import (
    NOT_MYSQL,
    UNDECIDED,
    Sniffer,
    err_record,
    lenient_greeting_header,
    looks_like_greeting,
)
from .handshake import CLIENT, SERVER, Event, Handshake
from .model import Connection
from .protocol.framing import lane_inflater
from .recorder import apply_event, packet_record

DEFAULT_PORTS = (3306,)
"""The IANA port: a flow on it is reported even when its bytes do not look
like MySQL (``--port`` replaces it).  Every port is examined either way."""


@dataclass
class DissectOptions:
    ports: tuple[int, ...] = ()  # empty: every TCP port is examined
    detect: bool = False  # kept for compatibility: discovery is always on
    keylog: object | None = None  # mysqlwire.tls.KeyLog
    with_packets: bool = False
    show_secrets: bool = False
    max_packet: int = 16 * 1024 * 1024
    max_buffer: int = 4 * 1024 * 1024
    reorder_window: int = 10000
    idle_timeout: float | None = None  # capture seconds; None: flows live until FIN/RST/end
    # stream: emit a connection as soon as its login ends (live/piped input),
    # and again, marked extra["update"], when a later exchange or error changes it
    stream: bool = False


@dataclass
class CaptureSummary:
    """What happened to the capture as a whole (filled while iterating)."""

    path: str
    format: str | None = None
    frames: int = 0
    connections: int = 0
    truncated: bool = False
    error: str | None = None
    secrets: list = field(default_factory=list)
    tcp_flows: int = 0
    server_ports: dict = field(default_factory=dict)  # responder port -> flows

    def busiest_ports(self, n: int = 3) -> list[tuple[int, int]]:
        return sorted(self.server_ports.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


class _ConnSink:
    """Receives one TCP connection's bytes from the reassembler."""

    __slots__ = (
        "pipe",
        "flow",
        "slot",
        "hint",
        "sniffer",
        "held",
        "conn",
        "hs",
        "server_is_initiator",
        "decided",
        "tls",
        "done",
        "reported",
        "quiet",
    )

    def __init__(self, pipe: _Pipeline, flow, slot: int, hint: bool | None):
        self.pipe = pipe
        self.flow = flow
        self.slot = slot
        # hint: the flow is on a port named MySQL (3306 or --port); True when
        # the responder's port is, False when only the initiator's is
        self.hint = hint
        self.sniffer = Sniffer(flow.syn_seen)
        self.held: list | None = [] if hint is not None else None
        self.server_is_initiator: bool | None = None
        self.decided = False
        self.conn: Connection | None = None
        self.hs: Handshake | None = None
        self.tls = None
        self.done = False
        self.reported = False
        self.quiet = False  # the server's direction is muted in the reassembler

    # -------------------------------------------------------------- set-up
    def _start(self, server_is_initiator: bool, midstream: bool = False) -> None:
        self.server_is_initiator = server_is_initiator
        self.decided = True
        self.sniffer = self.held = None
        flow = self.flow
        if server_is_initiator:
            srv, cli = flow.initiator, flow.responder
        else:
            srv, cli = flow.responder, flow.initiator
        self.conn = Connection(
            id=-1,
            client=endpoint(*cli),
            server=endpoint(*srv),
            capture=self.pipe.summary.path,
            first_ts=flow.first_ts,
        )
        self.pipe.register(self)
        if self.pipe.opts.with_packets:
            self.conn.packets = []
        self.hs = Handshake(max_packet=self.pipe.opts.max_packet)
        if midstream:
            self.conn.midstream = True
            self.hs.join_command_phase()

    def _drop(self) -> None:
        """Not MySQL: forget the flow (its bytes are no longer delivered)."""
        self.done = True
        self.sniffer = self.held = None
        self.flow.mute(True)
        self.flow.mute(False)
        self.pipe.skip(self.slot)

    def _decide(self, from_initiator: bool, data: bytes, ts: float) -> None:
        held = self.held
        if held is not None and len(held) < 64:
            held.append((from_initiator, bytes(data), ts))
        verdict = self.sniffer.feed(from_initiator, data, ts)
        if verdict is UNDECIDED:
            return
        if verdict is NOT_MYSQL:
            if self.hint is None:
                self._drop()
                return
            self._follow_named_port(held)
            return
        self._start(verdict.server_is_initiator, verdict.midstream)
        if verdict.error is not None:
            self.conn.extra["midstream_error"] = err_record(verdict.error)
        for fi, chunk, t in verdict.replay:
            self.data(fi, chunk, t)

    def _follow_named_port(self, held: list) -> None:
        """A flow on a port named MySQL whose bytes do not look like MySQL:
        reported (with why it is not followed), as the port says it is MySQL."""
        self._start(server_is_initiator=not self.hint)
        first_fi, first, _t = held[0]
        sender = SERVER if first_fi == self.server_is_initiator else CLIENT
        conn = self.conn
        if sender == SERVER and lenient_greeting_header(first[:256]):
            for fi, chunk, t in held:
                self.data(fi, chunk, t)
            return
        conn.last_ts = held[-1][2]
        if self.flow.syn_seen:
            conn.anomalies.append(
                f"the {sender}'s first bytes are not a MySQL greeting "
                f"({first[:8].hex()}...): not followed"
            )
        else:
            conn.midstream = True
            conn.anomalies.append(
                "capture starts mid-connection (no SYN, no greeting) and the bytes seen "
                "do not look like MySQL commands: not followed"
            )
        self.done = True
        self.flow.mute(True)
        self.flow.mute(False)

    # ----------------------------------------------------- reassembler API
    def data(self, from_initiator: bool, data: bytes, ts: float) -> None:
        if self.done:
            return
        if not self.decided:
            self._decide(from_initiator, data, ts)
            return
        # this runs for every data segment (replayed held chunks too)
        sender = SERVER if from_initiator == self.server_is_initiator else CLIENT
        self.conn.last_ts = ts
        if self.tls is not None:
            for from_client, plain in self.tls.feed(sender == CLIENT, bytes(data)):
                self._feed(CLIENT if from_client else SERVER, plain, ts)
            self._tls_meta()
            return
        hs = self.hs
        hs.receive_data(sender, data)
        queued = hs.queued
        if queued:  # (_drain, inlined: this runs for every segment)
            pipe = self.pipe
            if pipe.observer is None and self.conn.packets is None:
                # (_apply, inlined: nobody else sees the events)
                conn = self.conn
                while queued:
                    if apply_event(conn, hs, queued.popleft(), ts, False):
                        pipe.changed(self)
            else:
                apply = self._apply
                while queued:
                    apply(queued.popleft(), ts)
        if hs.tls and self.tls is None:
            self._start_tls(ts)
        else:
            quiet = hs.quiet(SERVER)
            if quiet != self.quiet:
                self._mute_server(quiet)
        if self.quiet and self.pipe.lanes:
            self.flow.request_lane()

    def lane_request(self) -> tuple | None:
        """The command lane to open now (see Flow.request_lane), or None."""
        hs = self.hs
        if self.done or self.tls is not None or not self.quiet:
            return None
        quiet = self.conn.packets is None and self.pipe.observer is None
        watch = hs.lane_ready(quiet)
        if watch is None:
            return None
        inflate = lane_inflater(hs.max_packet) if hs.compressed else None
        return not self.server_is_initiator, watch, quiet, inflate

    def lane_exit(self, lane) -> None:
        """The reassembler hands back a command lane (mysqlwire.capture.lane)."""
        self.hs.lane_done(lane)
        if lane.commands or lane.sbytes:
            self.conn.last_ts = lane.last_ts
        self.quiet = self.hs.quiet(SERVER)

    def _mute_server(self, quiet: bool | None = None) -> None:
        """Follow the handshake: stop (or resume) the reassembler's delivery
        of bytes the handshake drops unread (plain text only: a TLS stream
        must be decrypted record after record).  ``quiet``: ``hs.quiet(SERVER)``
        when the caller already asked."""
        if self.tls is not None:
            return
        hs = self.hs
        if quiet is None:
            quiet = hs.quiet(SERVER)
        self.quiet = quiet
        srv = self.server_is_initiator
        if quiet:
            self.flow.mute(srv)
            if hs.quiet(CLIENT):
                self.flow.mute(not srv)
        else:
            self.flow.unmute(srv)

    def _feed(self, sender: str, data: bytes, ts: float) -> None:
        hs = self.hs
        hs.receive_data(sender, data)
        self._drain(ts)
        if hs.tls and self.tls is None:
            self._start_tls(ts)

    def gap(self, from_initiator: bool, nbytes: int, ts: float) -> None:
        if self.done or not self.decided or self.hs is None:
            return
        sender = SERVER if from_initiator == self.server_is_initiator else CLIENT
        if self.tls is not None:
            self.tls.gap(sender == CLIENT, nbytes)
            return
        self.hs.gap(sender, nbytes)
        self._drain(ts)

    def closed(self, reason: str, ts: float) -> None:
        if self.conn is None and not self.done:
            # never decided: a flow without data, or a pending greeting
            verdict = self.sniffer.finish()
            held = self.held
            if verdict is not NOT_MYSQL:
                self._start(verdict.server_is_initiator, verdict.midstream)
                for fi, chunk, t in verdict.replay:
                    self.data(fi, chunk, t)
            elif self.hint is None or held is None:
                self._drop()
                return
            elif held:
                self._follow_named_port(held)
            else:
                self._start(server_is_initiator=not self.hint)
        if self.conn is None or self.reported:
            return
        self.reported = True
        self.conn.closed_by = reason
        if self.tls is not None:
            for from_client, plain in self.tls.finish():
                self._feed(CLIENT if from_client else SERVER, plain, ts)
            self._tls_meta()
            self.conn.anomalies.extend(f"tls: {a}" for a in self.tls.anomalies)
        if self.hs is not None:
            self.hs.eof()
            self._drain(ts)
        if self.flow.last_ts is not None:
            self.conn.last_ts = self.flow.last_ts
        self.done = True
        self.pipe.finished(self)

    # --------------------------------------------------------------- TLS
    def _start_tls(self, ts: float) -> None:
        conn = self.conn
        conn.tls = True
        TlsSession = _TLS_SESSION[0] if _TLS_SESSION else _load_tls_session()
        keylog = self.pipe.keylog
        if isinstance(keylog, _LazyKeylog):
            keylog = keylog.get()
        self.tls = TlsSession(keylog)
        for sender in (CLIENT, SERVER):
            leftover = self.hs.take_tls_bytes(sender)
            if leftover:
                for from_client, plain in self.tls.feed(sender == CLIENT, leftover):
                    self._feed(CLIENT if from_client else SERVER, plain, ts)
        self._tls_meta()

    def _tls_meta(self) -> None:
        t = self.tls
        info = self.conn.tls_info
        status = t.status  # (a property: read once)
        for key, val in (
            ("tls_version", t.version),
            ("tls_cipher", t.cipher),
            ("tls_sni", t.sni),
            ("tls_status", status),
        ):
            if val is not None or key not in info:
                info[key] = val
        info["decrypted"] = status == "ok"
        alerts = t.alerts
        if alerts:
            info["tls_alerts"] = [
                f"{'client' if c else 'server'}: {lvl} {desc}" for c, lvl, desc in alerts
            ]

    # ------------------------------------------------------------ events
    def _drain(self, ts: float) -> None:
        queued = self.hs.queued
        # (the events Handshake.next_event would give, taken directly)
        while queued:
            self._apply(queued.popleft(), ts)

    def _apply(self, ev: Event, ts: float) -> None:
        conn = self.conn
        in_tls = self.tls is not None
        pipe = self.pipe
        if pipe.observer is not None:
            pipe.observer(self.flow, self.server_is_initiator, conn, self.hs, ev)
        if conn.packets is not None and ev.kind != "anomaly":
            conn.packets.append(packet_record(ev, ts, in_tls, pipe.opts.show_secrets))
        if apply_event(conn, self.hs, ev, ts, in_tls):
            pipe.changed(self)


_TLS_SESSION: list = []  # [mysqlwire.tls.TlsSession], imported on the first TLS connection


def _load_tls_session():
    from .tls import TlsSession

    _TLS_SESSION.append(TlsSession)
    return TlsSession


def _stream_state(conn: Connection) -> tuple:
    """What a stream-mode reader has been told: exchanges and their outcomes."""
    return (
        tuple(ex.outcome for ex in conn.exchanges),
        bool(conn.command_error),
        bool(conn.extra.get("pre_greeting_error")),
    )


class _Pipeline:
    def __init__(self, summary: CaptureSummary, opts: DissectOptions):
        self.summary = summary
        self.opts = opts
        self.ports = set(opts.ports)
        # ports named MySQL: their flows are reported even when the bytes do
        # not look like MySQL (the user said they are)
        self.hint_ports = self.ports or set(DEFAULT_PORTS)
        self.keylog = opts.keylog
        # connections are numbered from 1, in order of first packet (the
        # number the CLI, JSON `id`, report and notebooks all show); flows that
        # are not MySQL take no number
        self.next_slot = 0  # one per examined flow, in order of first packet
        self.next_id = 1
        self.done: dict[int, Connection | None] = {}
        self.emit_from = 0
        self.ready: list[Connection] = []
        self.streamed: dict[int, tuple] = {}  # stream mode: id -> state last emitted
        self.server_ports = summary.server_ports
        self.observer = None  # see Dissector
        self.lanes = False  # command lanes: the capture reader takes them

    def on_flow(self, flow):
        ini_port, res_port = flow.ports
        self.summary.tcp_flows += 1
        ports = self.server_ports
        ports[res_port] = ports.get(res_port, 0) + 1
        if self.ports and res_port not in self.ports and ini_port not in self.ports:
            return None
        hints = self.hint_ports
        if res_port in hints and (flow.syn_seen or ini_port not in hints):
            hint = True
        elif ini_port in hints:
            hint = False
        else:
            hint = None
        slot = self.next_slot
        self.next_slot += 1
        return _ConnSink(self, flow, slot, hint)

    def changed(self, sink: _ConnSink) -> None:
        """Stream mode: a login (or later exchange) ended -- hand the connection over now."""
        if not self.opts.stream:
            return
        conn = sink.conn
        state = _stream_state(conn)
        seen = self.streamed.get(conn.id)
        if seen == state:
            return
        if seen is not None:
            conn.extra["update"] = True
        self.streamed[conn.id] = state
        self.ready.append(conn)

    def register(self, sink: _ConnSink) -> None:
        """A flow found to be MySQL.  Stream mode numbers it now (it may be
        handed over before older flows are decided); otherwise it is numbered
        when released, in order of first packet."""
        if self.opts.stream:
            sink.conn.id = self.next_id
            self.next_id += 1

    def skip(self, slot: int) -> None:
        """A flow that is not MySQL: its slot emits nothing."""
        if self.opts.stream:
            return
        self.done[slot] = None
        self._release()

    def finished(self, sink: _ConnSink) -> None:
        conn = sink.conn
        if (
            not conn.greeting_seen
            and not conn.midstream
            and not conn.extra.get("pre_greeting_error")
            and not conn.anomalies
        ):
            conn.anomalies.append("no greeting seen: the server never answered within the capture")
        conn.packets = conn.packets if self.opts.with_packets else None
        if self.opts.stream:
            seen = self.streamed.pop(conn.id, None)
            self.summary.connections += 1
            if seen is None:
                self.ready.append(conn)
            elif seen != _stream_state(conn):
                conn.extra["update"] = True
                self.ready.append(conn)
            return
        self.done[sink.slot] = conn
        self.summary.connections += 1
        self._release()

    def _emit(self, conn: Connection | None) -> None:
        if conn is not None:
            conn.id = self.next_id
            self.next_id += 1
            self.ready.append(conn)

    def _release(self) -> None:
        done = self.done
        while self.emit_from in done:
            self._emit(done.pop(self.emit_from))
            self.emit_from += 1
        if len(done) > self.opts.reorder_window:
            # a long-lived connection holds the queue: release in order
            last = self.emit_from
            for slot in sorted(done):
                self._emit(done.pop(slot))
                last = slot
            self.emit_from = max(self.emit_from, last + 1)

    def drain(self) -> list[Connection]:
        out, self.ready = self.ready, []
        return out

    def flush_all(self) -> list[Connection]:
        for slot in sorted(self.done):
            self._emit(self.done.pop(slot))
        return self.drain()


class Dissector:
    """Segments in, connections out (no file knowledge).

    Feed ``(ts, TcpSegment)`` with :meth:`add`, collect finished connections
    with :meth:`drain`, and call :meth:`finish` at the end of the input.

    ``observer(flow, server_is_initiator, conn, handshake, event)``, when
    given, sees every event of every connection as it is applied (the hook
    ``redact`` follows connections with: ``event.offset`` plus
    ``handshake.stream_offset(event.sender)`` and ``flow.next_seq(...)`` place
    the event's bytes by TCP sequence number).
    """

    def __init__(
        self,
        opts: DissectOptions | None = None,
        summary: CaptureSummary | None = None,
        *,
        observer=None,
    ):
        self.opts = opts or DissectOptions()
        self.summary = summary or CaptureSummary(path="<segments>")
        self.pipe = _Pipeline(self.summary, self.opts)
        self.pipe.observer = observer
        self.reasm = Reassembler(
            self.pipe.on_flow, max_buffer=self.opts.max_buffer, idle_timeout=self.opts.idle_timeout
        )

    def add(self, ts: float, seg) -> None:
        self.reasm.add(ts, seg)

    def drain(self) -> list[Connection]:
        return self.pipe.drain() if self.pipe.ready else []

    def finish(self) -> list[Connection]:
        self.reasm.finish()
        return self.pipe.flush_all()


def iter_connections(
    source, opts: DissectOptions | None = None, summary: CaptureSummary | None = None
) -> Iterator[Connection]:
    """Dissect one capture, yielding :class:`Connection` records.

    ``source`` is a path, ``"-"`` or a binary file object.  Raises
    :class:`~mysqlwire.errors.CaptureError` when the input is not a capture at
    all; a truncated or corrupt capture ends early with ``summary.truncated``
    and ``summary.error`` set, after yielding everything parsed before.
    """
    opts = opts or DissectOptions()
    if summary is None:
        summary = CaptureSummary(path=_label(source))
    reader = open_capture(source)
    summary.format = reader.format
    engine = Dissector(opts, summary)
    pipe = engine.pipe
    if opts.keylog is None:
        pipe.keylog = _LazyKeylog(reader)
    add = engine.reasm.add
    segment = TcpSegment
    # (ts, segment or the reason there is none) pairs: no Frame objects and no
    # per-frame wrapper on the hot loop; segments that cannot change any answer
    # are skipped by the reader (the reassembler's fast lane)
    records = reader.decoded(engine.reasm.fast)
    if reader.fast_lane:
        engine.reasm.lanes = pipe.lanes = True
    for ts, seg in records:
        if seg.__class__ is segment:
            add(ts, seg)
            if pipe.ready:
                yield from pipe.drain()
    summary.frames = reader.frames_read
    summary.truncated = bool(getattr(reader, "truncated", False))
    summary.error = getattr(reader, "error", None)
    summary.secrets = list(getattr(reader, "secrets", []) or [])
    yield from engine.finish()


class _LazyKeylog:
    """Key log taken from the capture's own Decryption Secrets Blocks."""

    def __init__(self, reader):
        self.reader = reader
        self._keylog = None
        self._seen = 0

    def get(self):
        secrets = self.reader.secrets or []
        if len(secrets) != self._seen:
            from .tls import KeyLog

            kl = KeyLog()
            for stype, data in secrets:
                if stype == 0x544C534B:
                    kl.merge(KeyLog.from_bytes(data))
            self._keylog = kl
            self._seen = len(secrets)
        return self._keylog


ReaderKeylog = _LazyKeylog  # for other drivers of a Dissector (mysqlwire.parallel)


def _label(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", "<stream>")


def dissect(source, **kwargs) -> list[Connection]:
    """All connections of a capture as a list (convenience for small captures)."""
    return list(iter_connections(source, DissectOptions(**kwargs)))


__all__: Iterable[str] = [
    "CaptureSummary",
    "DissectOptions",
    "Dissector",
    "dissect",
    "iter_connections",
    "looks_like_greeting",
]
