"""Sans-I/O state machine for the MySQL/MariaDB connection phase.

Bytes in, events out.  No sockets, files, pcap or TLS knowledge: the caller
feeds each direction's in-order TCP bytes with :meth:`Handshake.receive_data`
(or the TLS plaintext once TLS has been decrypted) and drains
:meth:`Handshake.next_event` until it returns :data:`NEED_DATA`.

Everything that moves the state machine lives in this file, and the meaning of
an ambiguous first byte (``0x00``/``0x01``/``0x02``/``0xFE``) is decided in one
place only: :data:`SERVER_AUTH_PACKETS`, keyed by (phase, first byte), refined
by the server flavour and the active plugin's own exchange (an :class:`~mysqlwire.auth.Flow`:
the plugin says when its raw MariaDB data is due) in :meth:`Handshake._server_auth_kind`.

States (``Handshake.state``)::

    AWAIT_GREETING --greeting--> AWAIT_RESPONSE --response--> AUTH
    AWAIT_RESPONSE --ssl_request--> AWAIT_RESPONSE (tls=True, caller decrypts)
    AUTH --switch/more-data/next-factor/plugin data--> AUTH
    AUTH --ok--> COMMAND --com_change_user--> AUTH (exchange "change_user")
    AUTH --err--> CLOSED (login) / COMMAND (change_user)
    AWAIT_GREETING --err (pre-greeting)--> CLOSED
    any --unparseable bytes--> BROKEN (an anomaly event says why)
"""

from __future__ import annotations

from collections import deque

from .auth import DeferredFlow, defer_flow
from .errors import ProtocolError
from .phase import (
    AUTH,
    AWAIT_GREETING,
    AWAIT_RESPONSE,
    BROKEN,
    CLIENT,
    CLOSED,
    COM_CHANGE_USER,
    COM_QUIT,
    COMMAND,
    DEFAULT_MAX_PACKET,
    MAX_ANOMALIES,
    MAX_PHASE_PACKETS,
    NEED_DATA,
    SERVER,
    SERVER_AUTH_PACKETS,
    SLICE,
    Direction,
    Event,
)
from .protocol import (
    CLIENT_COMPRESS,
    CLIENT_MULTI_FACTOR_AUTHENTICATION,
    CLIENT_PLUGIN_AUTH,
    CLIENT_PROTOCOL_41,
    CLIENT_SECURE_CONNECTION,
    CLIENT_SSL,
    parse,
)
from .protocol.fastparse import fast_parse
from .protocol.framing import MAX_INNER_PACKETS, CompressedReader, PacketReader

_new = tuple.__new__  # (an Event without the named tuple's Python-level __new__)


def _name(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", "replace")


class Handshake:
    """Follows one connection; see the module docstring.

    Slotted, with a plain ``__init__``: one per connection, and its attributes
    are read on every packet."""

    __slots__ = (
        "max_packet",
        "state",
        "tls",
        "compressed",
        "server_caps",
        "client_caps",
        "is_mariadb",
        "plugin",
        "nonce",
        "exchange",
        "queued",
        "_dirs",
        "_tls_leftover",
        "_tls_started",
        "_last_seq",
        "_first_command_seen",
        "_await_command_reply",
        "_replies_to_watch",
        "_hold",
        "_phase_packets",
        "_phase_bytes",
        "_anomalies",
        "_wire",
        "_flow",
    )

    def __init__(self, max_packet: int = DEFAULT_MAX_PACKET):
        self.max_packet = max_packet
        self.state = AWAIT_GREETING
        self.tls = False
        self.compressed = False
        self.server_caps = 0
        self.client_caps = 0
        self.is_mariadb = False
        self.plugin: str | None = None
        self.nonce: bytes | None = None
        self.exchange = 0
        self.queued: deque = deque()  # events not yet taken by next_event()
        self._dirs = {CLIENT: Direction(max_packet), SERVER: Direction(max_packet)}
        self._tls_leftover: dict = {}
        self._tls_started = {CLIENT: False, SERVER: False}
        self._last_seq: int | None = None
        self._first_command_seen = False
        self._await_command_reply = False
        self._replies_to_watch = 8
        self._hold = False  # client walk: keep every packet after a COM_CHANGE_USER
        self._phase_packets = 0
        self._phase_bytes = 0
        self._anomalies = 0
        self._wire = {CLIENT: 0, SERVER: 0}
        # the active plugin's run (its stages decide raw server data)
        self._flow: DeferredFlow | None = None

    # ------------------------------------------------------------------ API
    def receive_data(self, sender: str, data: bytes) -> None:
        """Feed in-order bytes from ``sender`` (``"client"``/``"server"``)."""
        if self.state == BROKEN or not data:
            return
        self._wire[sender] += len(data)
        if self.tls and not self._tls_started[sender]:
            # caller should have taken the TLS bytes; keep them for it
            self._tls_leftover[sender] = self._tls_leftover.get(sender, b"") + bytes(data)
            return
        d = self._dirs[sender]
        if d.discard:
            return
        if d.compressed is not None:
            self._receive_compressed(sender, d, data)
            return
        n = len(data)
        if n <= SLICE:
            self._receive(sender, d, data)
            return
        # A huge segment (a TSO/GRO frame can carry up to 64 KiB and more):
        # framed a slice at a time, so that the bounds (max_packet, packets
        # and bytes per phase) apply as the bytes arrive, not after a whole
        # frame was cut into packets.
        view = memoryview(data)
        for pos in range(0, n, SLICE):
            self.receive_data(sender, view[pos : pos + SLICE])
            if self.state == BROKEN or self._dirs[sender].discard:
                break

    def _receive_compressed(self, sender: str, d: Direction, data) -> None:
        """Inflate piece by piece (never more than 64 KiB at once) and frame
        each piece before the next is inflated; stop as soon as the rest
        cannot matter.  Inner packets are counted per compressed packet."""
        comp = d.compressed
        index = -1
        inner = 0
        pieces = comp.chunks(data)
        try:
            for piece in pieces:
                if comp.packets != index:
                    index = comp.packets
                    inner = 0
                inner += self._receive(sender, d, piece)
                if self.state == BROKEN or self._dirs[sender] is not d or d.discard:
                    break
                if inner > MAX_INNER_PACKETS:
                    self._broken(
                        sender,
                        f"framing: compressed packet {index} holds more than "
                        f"{MAX_INNER_PACKETS} packets: not followed further",
                    )
                    break
        except ProtocolError as exc:
            self._broken(sender, f"framing: {exc.reason}")
        finally:
            pieces.close()

    def _receive(self, sender: str, d: Direction, data) -> int:
        """Frame plain bytes; handle the packets; return how many were completed."""
        # d.raw: the bytes of packets not complete yet (re-framed if the framing
        # changes); when it holds none, this delivery's bytes go there only if
        # some are left over (the common case: a segment of whole packets)
        lazy = False
        if d.keep_raw:
            if d.raw:
                d.raw += data
            else:
                lazy = True  # (then d.raw_base is this delivery's first byte)
        reader = d.reader
        before = reader.skipped
        try:
            packets = reader.feed(data)
        except ProtocolError as exc:
            self._broken(sender, f"framing: {exc.reason}")
            return 0
        for pkt in packets:
            switched = self._on_packet(sender, pkt)
            if self.state == BROKEN:
                return len(packets)
            if switched:
                # framing changes after this packet (TLS or compression):
                # re-feed what followed it through the new framing.
                if lazy:
                    d.raw += data
                self._reframe(sender, pkt)
                return len(packets)
        if self.state == COMMAND:
            self._command_framing()
        if d.keep_raw:
            if packets:
                # only bytes of packets not complete yet can still be re-framed
                done = reader.done
                if lazy:
                    if done - d.raw_base < len(data):
                        d.raw += data[done - d.raw_base :]
                else:
                    del d.raw[: done - d.raw_base]
                d.raw_base = done
            elif lazy:
                d.raw += data
        return reader.skipped - before + len(packets)

    def _command_framing(self) -> None:
        """Command phase: walk packet headers only, keep what ``_on_command``
        reads (client commands up to the watched ones, COM_CHANGE_USER,
        COM_QUIT; server packets with seq 1 while a reply is awaited), and drop
        the server's bytes unframed once no reply is watched any more."""
        cd = self._dirs[CLIENT]
        if not cd.reader.skip_payloads:
            self._hold = False
            cd.reader.skip_payloads = True
            cd.reader.keep = self._keep_client
        sd = self._dirs[SERVER]
        if sd.discard:
            return
        if not self._await_command_reply:
            # nothing the server sends can matter until the client's next
            # watched command (or COM_CHANGE_USER): drop it unframed
            sd.discard = True
        elif not sd.reader.skip_payloads:
            sd.reader.skip_payloads = True
            sd.reader.keep = self._keep_server
            sd.reader.keep_seq = 1  # only seq-1 packets are offered to _keep_server

    def _keep_client(self, seq: int, first: int | None) -> bool:
        # a superset of what _on_command acts on (decided before it runs)
        if self._hold:
            return True
        if seq or first is None:
            return False
        if first == COM_CHANGE_USER:
            self._hold = True  # AUTH follows: the rest of this walk is needed whole
            return True
        if first == COM_QUIT:
            return True
        # any other command: its first byte is all we need (however big it is)
        self._count_command(first)
        return False

    def _count_command(self, cmd: int) -> None:
        """Bookkeeping for one client command (the first is reported; the
        replies to the first few are watched for an ERR)."""
        if not self._first_command_seen:
            self._first_command_seen = True
            self.queued.append(
                Event(
                    sender=CLIENT,
                    kind="command",
                    seq=0,
                    plugin=self.plugin,
                    exchange=self.exchange,
                    detail=f"0x{cmd:02x}",
                )
            )
        if self._replies_to_watch > 0:
            self._replies_to_watch -= 1
            self._watch_reply()

    def _watch_reply(self) -> None:
        self._await_command_reply = True
        sd = self._dirs[SERVER]
        if sd.discard:
            # the answer starts at the server's next byte: frame from there
            self._restart_server()
            sd = self._dirs[SERVER]
            sd.reader.skip_payloads = True
            sd.reader.keep = self._keep_server
            sd.reader.keep_seq = 1

    def lane_ready(self, quiet: bool = False) -> int | None:
        """The answers still to watch when the command phase is at rest as a
        capture reader's command lane (:mod:`mysqlwire.capture.lane`) can
        follow it (not TLS, the client's stream at a packet boundary, the
        server's dropped unread, the first command seen unless ``quiet``:
        nobody needs its event); else None."""
        cd = self._dirs[CLIENT]
        if (
            self.state != COMMAND
            or self.tls
            or self._hold
            or self._await_command_reply
            or not (self._first_command_seen or quiet)
            or not self._dirs[SERVER].discard
            or (self.compressed and (cd.compressed is None or cd.compressed.pending))
            or not cd.reader.skip_payloads
            or not cd.reader.at_boundary
        ):
            return None
        return self._replies_to_watch

    def lane_done(self, lane) -> None:
        """Take over from a command lane (:class:`mysqlwire.capture.lane.CommandLane`):
        the state :meth:`receive_data` would have left with the bytes it took."""
        if lane.commands:
            self._first_command_seen = True  # (its event was not needed)
            self._wire[CLIENT] += lane.nbytes
            cd = self._dirs[CLIENT]
            if cd.compressed is None:
                cd.reader.passed(lane.nbytes, lane.commands, 0)
            else:
                cd.compressed.passed(lane.nbytes, lane.commands, lane.inner, lane.cseq)
                cd.reader.passed(lane.inner, lane.commands, 0)
        self._wire[SERVER] += lane.sbytes
        self._replies_to_watch = lane.watch
        if lane.awaiting:
            self._watch_reply()

    def _restart_server(self) -> None:
        """Frame the server's stream afresh from its next byte (its earlier
        replies are complete: the client sent a new command)."""
        sd = self._dirs[SERVER]
        sd.discard = False
        sd.reader = PacketReader(max_payload=self.max_packet)
        sd.base = self._wire[SERVER]
        if sd.compressed is not None:
            sd.compressed = CompressedReader(self.max_packet)

    def quiet(self, sender: str) -> bool:
        """True while bytes from ``sender`` are dropped unread (they cannot
        change any answer): the caller may stop delivering them, and must
        resume at the sender's next byte when this turns False again (e.g.
        :meth:`mysqlwire.capture.tcp.Flow.mute` / ``unmute``)."""
        if self.state == BROKEN:
            return True
        return sender == SERVER and self._dirs[SERVER].discard

    def _keep_server(self, seq: int, first: int | None) -> bool:
        return seq == 1 and self._await_command_reply

    def join_command_phase(self) -> None:
        """The capture joined a connection already open: start in the command
        phase (no login to follow, replies not watched; a COM_CHANGE_USER is
        still followed)."""
        self.state = COMMAND
        self._replies_to_watch = 0
        self._first_command_seen = True
        for d in self._dirs.values():
            d.keep_raw = False
            d.raw = bytearray()

    def next_event(self):
        if self.queued:
            return self.queued.popleft()
        return NEED_DATA

    def events(self) -> list[Event]:
        out = list(self.queued)
        self.queued.clear()
        return out

    def take_tls_bytes(self, sender: str) -> bytes:
        """After an ``ssl_request`` event: the raw (TLS) bytes already received
        from ``sender`` that follow the SSLRequest/greeting.  Call once per side;
        from then on feed decrypted plaintext with :meth:`receive_data`."""
        self._tls_started[sender] = True
        return self._tls_leftover.pop(sender, b"")

    def stream_offset(self, sender: str) -> int:
        """Bytes of ``sender``'s stream given so far (data and gaps; bytes the
        caller did not deliver while :meth:`quiet` are not counted): right
        after an event, the TCP sequence number of the byte after the last one
        given minus this is the sequence number of :attr:`Event.offset` 0."""
        return self._wire[sender]

    def eof(self) -> None:
        """The capture/stream ended; flags an unfinished connection phase."""
        for sender, d in self._dirs.items():
            d.reader.keep = None  # a method of self: without it no cycle outlives the flow
            pending = d.reader.pending + (d.compressed.pending if d.compressed else 0)
            if pending and self.state not in (COMMAND, CLOSED, BROKEN):
                self._anomaly(sender, f"stream ended inside a packet ({pending} bytes pending)")

    def gap(self, sender: str, nbytes: int) -> None:
        """Bytes from ``sender`` were lost in the capture."""
        if self.state == BROKEN:
            return  # already said why the connection is not followed
        d = self._dirs[sender]
        if d.discard:
            return  # bytes dropped unread anyway (their loss changes nothing)
        if self.state == COMMAND and d.skip:
            # server replies are skipped anyway; resynchronise at the next reply
            d.reader = PacketReader(max_payload=self.max_packet)
            return
        self._anomaly(sender, f"{nbytes} bytes missing from the capture")
        if self.state == COMMAND:
            # resynchronise: assume the next data starts a packet
            d.reader = PacketReader(max_payload=self.max_packet)
            return
        self._broken(sender, "cannot follow the connection phase across missing bytes")

    # ------------------------------------------------------------ internals
    def _emit(self, sender, kind, pkt=None, fields=None, detail=None):
        if pkt is None:
            ev = (sender, kind, None, b"", fields, self.plugin, self.exchange, detail, None)
        else:  # (Event's field order)
            offset = None if self.tls or self.compressed else self._dirs[sender].base + pkt.offset
            ev = (
                sender,
                kind,
                pkt.seq,
                pkt.payload,
                fields,
                self.plugin,
                self.exchange,
                detail,
                offset,
            )
        self.queued.append(_new(Event, ev))

    def _anomaly(self, sender: str, detail: str) -> None:
        self._anomalies += 1
        if self._anomalies > MAX_ANOMALIES:
            return
        if self._anomalies == MAX_ANOMALIES:
            detail += f" (anomaly {MAX_ANOMALIES}: further ones are not reported)"
        self._emit(sender, "anomaly", detail=detail)

    def _broken(self, sender: str, detail: str) -> None:
        self._emit(sender, "anomaly", detail=detail)  # always reported, whatever the count
        self.state = BROKEN
        for d in self._dirs.values():
            d.keep_raw = False
            d.raw = bytearray()

    def _parse(self, sender, kind, pkt, caps=None):
        fields = fast_parse(kind, pkt.payload, caps)  # the grammar's result, minus Construct
        if fields is not None:
            return fields
        try:
            return parse(kind, pkt.payload, caps=caps)
        except ProtocolError as exc:
            self._broken(
                sender,
                f"malformed {kind} (seq {pkt.seq}): {exc.reason}"
                + (f" at offset {exc.offset}" if exc.offset is not None else ""),
            )
            return None

    def _check_seq(self, sender, pkt, expected=None) -> None:
        if expected is None and self._last_seq is not None:
            expected = (self._last_seq + 1) & 0xFF
        if expected is not None and pkt.seq != expected:
            self._anomaly(sender, f"sequence id {pkt.seq}, expected {expected}")
        self._last_seq = (pkt.seq + pkt.chunks - 1) & 0xFF

    def _on_packet(self, sender: str, pkt) -> bool:
        """Handle one packet; return True when framing changes after it."""
        state = self.state
        if state in (AWAIT_GREETING, AWAIT_RESPONSE, AUTH):
            self._phase_packets += 1
            self._phase_bytes += len(pkt.payload)
            if self._phase_packets > MAX_PHASE_PACKETS or self._phase_bytes > 4 * self.max_packet:
                self._broken(
                    sender,
                    f"connection phase longer than {MAX_PHASE_PACKETS} packets or "
                    f"{4 * self.max_packet} bytes: not followed further",
                )
                return False
        if state == AWAIT_GREETING:
            return self._on_greeting(sender, pkt)
        if state == AWAIT_RESPONSE:
            return self._on_response(sender, pkt)
        if state == AUTH:
            return self._on_auth(sender, pkt)
        if state == COMMAND:
            self._on_command(sender, pkt)
            return False
        if state == CLOSED:
            if sender == CLIENT and pkt.seq == 0 and pkt.payload == b"\x01":
                self._emit(sender, "quit", pkt)  # COM_QUIT after a refused login
                return False
            if pkt.payload:
                self._anomaly(
                    sender, f"{len(pkt.payload)}-byte packet after the connection phase ended"
                )
            return False
        return False

    def _on_greeting(self, sender, pkt) -> bool:
        if sender != SERVER:
            self._broken(sender, "client spoke before the server greeting")
            return False
        self._check_seq(sender, pkt, expected=0)
        first = pkt.payload[:1]
        if first == b"\xff":
            # no capabilities agreed yet: a "#" after the code still marks a SQLSTATE
            caps = CLIENT_PROTOCOL_41 if pkt.payload[3:4] == b"#" else 0
            fields = self._parse(sender, "err", pkt, caps=caps)
            if fields is None:
                return False
            self._emit(sender, "err", pkt, fields)
            self.state = CLOSED
            return False
        if first == b"\x0a":
            kind = "handshake_v10"
        elif first == b"\x09":
            kind = "handshake_v9"
        else:
            self._broken(
                sender,
                f"first server packet is not a greeting (protocol byte {pkt.payload[:1].hex() or 'none'})",
            )
            return False
        fields = self._parse(sender, kind, pkt)
        if fields is None:
            return False
        if kind == "handshake_v10":  # fields: a Container (a dict), read by key
            caps = self.server_caps = int(fields["capabilities"])
            self.is_mariadb = bool(fields["is_mariadb"])
            self.nonce = bytes(fields["nonce"])
            self.plugin = _name(fields["auth_plugin_name"]) or self._default_plugin(caps)
        else:
            self.nonce = bytes(fields["scramble"])
            self.plugin = "mysql_old_password"
        self._emit(sender, "greeting", pkt, fields)
        self.state = AWAIT_RESPONSE
        return False

    @staticmethod
    def _default_plugin(caps: int) -> str:
        return "mysql_native_password" if caps & CLIENT_SECURE_CONNECTION else "mysql_old_password"

    def _on_response(self, sender, pkt) -> bool:
        if sender == SERVER:
            if pkt.payload[:1] == b"\xff":
                self._check_seq(sender, pkt)
                fields = self._parse(sender, "err", pkt)
                if fields is not None:
                    self._emit(sender, "err", pkt, fields)
                    self.state = CLOSED
                return False
            self._anomaly(
                sender, f"server packet (seq {pkt.seq}) while waiting for the client's response"
            )
            return False
        self._check_seq(sender, pkt)
        payload = pkt.payload
        if len(payload) < 2:
            self._broken(
                sender, f"{len(payload)}-byte client packet where a handshake response belongs"
            )
            return False
        flags16 = int.from_bytes(payload[:2], "little")
        if flags16 & CLIENT_PROTOCOL_41:
            caps = int.from_bytes(payload[:4], "little") if len(payload) >= 4 else flags16
            if len(payload) == 32 and caps & CLIENT_SSL and not self.tls:
                fields = self._parse(sender, "ssl_request", pkt)
                if fields is None:
                    return False
                self.client_caps = int(fields["client_flag"])
                self.tls = True
                self._emit(sender, "ssl_request", pkt, fields)
                return True
            fields = self._parse(sender, "handshake_response41", pkt)
            if fields is None:
                return False
            self.client_caps = int(fields["client_flag"])
            client_plugin = _name(fields.get("client_plugin"))
            if client_plugin is None and not (self.client_caps & CLIENT_PLUGIN_AUTH):
                client_plugin = self._default_plugin(self.client_caps)
            self.plugin = client_plugin or self.plugin
        else:
            fields = self._parse(sender, "handshake_response320", pkt)
            if fields is None:
                return False
            self.client_caps = int(fields["client_flag"])
            self.plugin = "mysql_old_password"
        self._flow = DeferredFlow(self.plugin, self.nonce or b"", nonce=self.nonce)
        self._flow.client("handshake_response", bytes(fields["auth_response"] or b""), self.tls)
        self._emit(sender, "handshake_response", pkt, fields)
        self.state = AUTH
        return False

    def _server_auth_kind(self, payload: bytes) -> str:
        first = payload[0] if payload else -1
        flow = self._flow
        if (
            self.is_mariadb
            and flow is not None
            and flow.awaits_server_data()
            and first not in (0x01, 0xFE, 0xFF)
        ):
            # the plugin waits for its raw data (an ed25519 nonce, a parsec ext-salt): MariaDB
            # escapes only data starting with 01/FE/FF, so even a 00 here is data
            return "server_plugin_data"
        kind = SERVER_AUTH_PACKETS.get(first)
        if kind == "auth_switch_request" and len(payload) == 1:
            return "old_auth_switch_request"
        if kind == "auth_next_factor" and not (
            self.client_caps & CLIENT_MULTI_FACTOR_AUTHENTICATION and not self.is_mariadb
        ):
            return "server_plugin_data"
        if kind is None:
            # MariaDB sends plugin data raw (dialog question, parsec ext-salt)
            return "server_plugin_data"
        return kind

    def _on_auth(self, sender, pkt) -> bool:
        if sender == CLIENT and pkt.seq == 0 and pkt.payload == bytes([COM_QUIT]):
            # the sequence restarted: the client gave up on this exchange and
            # quits (mysqlnd during COM_CHANGE_USER); not an answer to the server
            self._emit(sender, "quit", pkt)
            return False
        self._check_seq(sender, pkt)
        if sender == CLIENT:
            if self._flow is not None:
                self._flow.client("auth_data", pkt.payload, self.tls)
            self._emit(sender, "auth_data", pkt)
            return False
        if not pkt.payload:
            self._anomaly(sender, f"empty server packet (seq {pkt.seq}) during authentication")
            return False
        kind = self._server_auth_kind(pkt.payload)
        if kind == "server_plugin_data":
            if self._flow is not None:
                self._flow.server(kind, pkt.payload)
            self._emit(sender, kind, pkt)
            return False
        fields = self._parse(sender, kind, pkt, caps=self.client_caps)
        if fields is None:
            return False
        if kind in ("auth_switch_request", "auth_next_factor"):
            self.plugin = _name(fields["plugin_name"])
            self._flow = defer_flow(kind, self.plugin, bytes(fields["plugin_data"]), self.nonce)
        elif kind == "old_auth_switch_request":
            self.plugin = "mysql_old_password"
            self._flow = defer_flow(kind, self.plugin, b"", self.nonce)
        elif kind == "auth_more_data" and self._flow is not None:
            self._flow.server(kind, bytes(fields["data"]))
        self._emit(sender, kind, pkt, fields)
        if kind == "ok":
            return self._enter_command_phase()
        if kind == "err":
            if self.exchange == 0:
                self.state = CLOSED
            else:
                self.state = COMMAND
                self._dirs[SERVER].skip = True
        return False

    def _enter_command_phase(self) -> bool:
        self.state = COMMAND
        for d in self._dirs.values():
            d.keep_raw = False
        if self.exchange == 0 and self.client_caps & self.server_caps & CLIENT_COMPRESS:
            self.compressed = True
            return True  # both directions switch to compressed framing now
        for d in self._dirs.values():
            d.raw = bytearray()
        return False

    def _on_command(self, sender, pkt) -> None:
        if sender == CLIENT:
            if pkt.seq != 0 or not pkt.payload:
                return
            cmd = pkt.payload[0]
            self._count_command(cmd)
            if cmd == COM_CHANGE_USER:
                fields = self._parse(sender, "com_change_user", pkt, caps=self.client_caps)
                if fields is None:
                    return
                self.exchange += 1
                self.plugin = _name(
                    getattr(fields, "auth_plugin_name", None)
                ) or self._default_plugin(self.client_caps)
                self._flow = DeferredFlow(self.plugin, self.nonce or b"", nonce=self.nonce)
                self._flow.client("com_change_user", bytes(fields.auth_response or b""), self.tls)
                self._last_seq = pkt.seq
                self.state = AUTH
                self._leave_command_framing()
                self._emit(sender, "com_change_user", pkt, fields)
            elif cmd == COM_QUIT:
                self._emit(sender, "quit", pkt)
            return
        # server, command phase: only the first byte of the replies to the
        # first few commands is read, until one is an ERR (a 1820 "must reset
        # your password" there tells sandbox mode; clients often send a few
        # SET statements first, which succeed even in sandbox mode)
        if self._await_command_reply and pkt.seq == 1:
            self._await_command_reply = False
            if pkt.payload[:1] == b"\xff":
                self._replies_to_watch = 0
                fields = self._parse(SERVER, "err", pkt, caps=self.client_caps)
                if fields is not None:
                    self._emit(sender, "command_error", pkt, fields)

    def _leave_command_framing(self) -> None:
        """COM_CHANGE_USER: both directions are read whole again."""
        self._dirs[CLIENT].reader.skip_payloads = False  # _hold covers this walk
        sd = self._dirs[SERVER]
        sd.skip = False
        if sd.discard:
            self._restart_server()
        else:
            sd.reader.skip_payloads = False

    def _reframe(self, sender: str, pkt) -> None:
        """Framing changes after ``pkt`` on ``sender``'s stream (and, for
        compression, on the other one too)."""
        d = self._dirs[sender]
        end = pkt.offset + 4 * pkt.chunks + len(pkt.payload) - d.raw_base
        leftover = bytes(d.raw[end:])
        if self.tls and not self.compressed:
            # SSLRequest: everything after it on the client stream is TLS, and
            # everything the server sends from now on is TLS too.
            self._tls_leftover[CLIENT] = leftover
            # the server's TLS bytes arrive after the SSLRequest in time order
            self._tls_leftover[SERVER] = b""
            for side in (CLIENT, SERVER):
                nd = Direction(self.max_packet)
                self._dirs[side] = nd
            self._last_seq = pkt.seq
            return
        # compression switched on after the final OK
        for side, dd in self._dirs.items():
            if side == sender:
                tail = leftover
            else:
                # the other side has not sent anything after the OK yet in a
                # well-behaved capture; whatever is pending is compressed data
                tail = b""
            nd = Direction(self.max_packet)
            nd.keep_raw = False
            nd.compressed = CompressedReader(self.max_packet)
            nd.skip = dd.skip
            self._dirs[side] = nd
            if tail:
                self.receive_data(side, tail)
