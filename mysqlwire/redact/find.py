"""``redact`` pass 1: what to replace, from dissect's own events.

No state machine here: the capture goes through
:class:`~mysqlwire.dissect.Dissector` (the follower every command uses) with
this module's :class:`Finder` as its observer.  Each event carries the stream
offset of its packet (:attr:`~mysqlwire.handshake.Event.offset`); the field
positions inside the payload come from the parsed fields (and are checked
against the payload's bytes); the TCP sequence number of stream offset 0 of
each direction comes from the reassembler (``flow.next_seq``) and the
handshake (``stream_offset``).  The result: for every direction of every
connection, a sorted list of *(stream offset, original bytes, new bytes)*.

A connection that cannot be fully redacted (its connection phase broke, bytes
were missing, a packet was cut by the end of the capture, a COM_CHANGE_USER
inside the compressed protocol) is listed in ``report.not_followed``; the
caller refuses to write unless ``partial``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from bisect import bisect_right
from dataclasses import dataclass, field

from ..capture import TcpSegment, decode_tcp, endpoint, open_capture
from ..dissect import CaptureSummary, DissectOptions, Dissector
from ..handshake import AUTH, AWAIT_RESPONSE, BROKEN, CLIENT, COMMAND, SERVER
from ..protocol.framing import MAX_CHUNK
from .policy import FILL, NONCE_PLUGINS, Placeholders, RedactOptions, RedactReport, client_fill

_M32 = 0xFFFFFFFF

_USER_AT_HOST = re.compile(rb"'([^'@]{0,80})'@'([^']{0,255})'")
_HOST = re.compile(rb"\bHost '([^']{1,255})'")  # 1130 not allowed / 1129 blocked


@dataclass
class DirEdits:
    """Edits of one direction of one connection, by stream offset."""

    key: tuple  # (src raw, sport, dst raw, dport)
    first_frame: int
    base_seq: int | None = None  # TCP sequence number of stream offset 0
    starts: list[int] = field(default_factory=list)
    edits: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # (offset, old, new)
    covered: list[int] = field(default_factory=list)  # bit mask of bytes written, per edit

    def add(self, offset: int, old: bytes, new: bytes) -> None:
        if not new or old == new:
            return
        i = bisect_right(self.starts, offset)
        j = i - 1
        while j >= 0 and self.starts[j] == offset:
            if len(self.edits[j][2]) == len(new):
                return  # the same field found twice (e.g. 'user'@'host' and 'user')
            j -= 1
        self.starts.insert(i, offset)
        self.edits.insert(i, (offset, bytes(old), bytes(new)))
        self.covered.insert(i, 0)

    def unwritten(self) -> int:
        """Edits some byte of which was never written to the copy."""
        return sum(
            1
            for (_o, _old, new), c in zip(self.edits, self.covered, strict=True)
            if c != (1 << len(new)) - 1
        )


def _wire(pkt_offset: int, pos: int) -> int:
    """Stream offset of payload byte ``pos`` of the packet whose first header is
    at ``pkt_offset`` (4-byte headers every 0xFFFFFF bytes)."""
    return pkt_offset + 4 * (1 + pos // MAX_CHUNK) + pos


def _pton(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


class _ConnEdits:
    __slots__ = ("dirs", "label", "ips", "unsafe")

    def __init__(self, flow, server_is_initiator: bool, frame: int):
        if server_is_initiator:
            srv, cli = flow.initiator, flow.responder
        else:
            srv, cli = flow.responder, flow.initiator
        sraw, craw = _pton(srv[0]), _pton(cli[0])
        self.dirs = {
            SERVER: DirEdits((sraw, srv[1], craw, cli[1]), frame),
            CLIENT: DirEdits((craw, cli[1], sraw, srv[1]), frame),
        }
        self.label = f"{endpoint(*cli)} -> {endpoint(*srv)}"
        self.ips = (srv[0], cli[0])
        self.unsafe: str | None = None


class Finder:
    """The Dissector observer that turns events into edits."""

    def __init__(self, opts: RedactOptions, names: Placeholders, report: RedactReport):
        self.opts = opts
        self.names = names
        self.report = report
        self.frame_index = 0
        self.summary: CaptureSummary | None = None  # after run(): what the follower saw
        self.instances: dict[tuple, list[DirEdits]] = {}
        self._conns: dict[int, _ConnEdits] = {}

    # -- driving -------------------------------------------------------------------
    def run(self, path) -> None:
        """Pass 1 over capture ``path``."""
        o = self.opts
        dopts = {"max_packet": o.max_packet, "max_buffer": o.max_buffer}
        if o.ports:
            dopts["ports"] = tuple(o.ports)
        reader = open_capture(path)
        self.report.format = reader.format
        summary = CaptureSummary(path=str(path), format=reader.format)
        engine = Dissector(DissectOptions(**dopts), summary, observer=self)
        segment = TcpSegment
        for i, (ts, linktype, data, _iface) in enumerate(reader.records()):
            self.frame_index = i
            seg = decode_tcp(linktype, data)
            if seg.__class__ is segment:
                if seg.payload:
                    self.report.tcp_payload += 1
                engine.add(ts, seg)
                for conn in engine.drain():
                    self._finished(conn)
        for conn in engine.finish():
            self._finished(conn)
        for ce in self._conns.values():  # followed, never reported as a connection
            if ce.unsafe:
                self.report.not_followed.append(f"{ce.label}: {ce.unsafe}")
        self._conns.clear()
        self.report.frames = summary.frames = reader.frames_read
        self.summary = summary
        if reader.truncated:
            self.report.truncated = reader.error

    def _finished(self, conn) -> None:
        ce = self._conns.pop(id(conn), None)
        if ce is None and not conn.greeting_seen:
            return  # no MySQL packet seen on this connection
        self.report.connections += 1
        if conn.tls:
            self.report.tls_connections += 1
        if ce is not None and ce.unsafe:
            self.report.not_followed.append(f"{ce.label}: {ce.unsafe}")

    # -- the observer ---------------------------------------------------------------
    def __call__(self, flow, server_is_initiator: bool, conn, hs, ev) -> None:
        # keyed by the record itself (its number is given later); the record
        # lives until it is finished, so its id() is not reused before
        ce = self._conns.get(id(conn))
        if ce is None:
            ce = _ConnEdits(flow, server_is_initiator, self.frame_index)
            self._conns[id(conn)] = ce
            for d in ce.dirs.values():
                self.instances.setdefault(d.key, []).append(d)
        kind = ev.kind
        if kind == "anomaly":
            self._anomaly(ce, hs, ev, conn)
            return
        if ev.offset is None:
            if kind == "com_change_user" and hs.compressed:
                ce.unsafe = (
                    "COM_CHANGE_USER inside the compressed protocol: its user and "
                    "authentication data could not be replaced"
                )
            return  # inside TLS: encrypted in the copy (its key log is dropped)
        d = ce.dirs[ev.sender]
        from_initiator = (ev.sender == SERVER) == server_is_initiator
        nxt = flow.next_seq(from_initiator)
        if nxt is None:
            ce.unsafe = "TCP sequence numbers unknown"
            return
        # the sequence number of the handshake's offset 0 moves on when the
        # follower did not take some bytes (a muted server direction): the
        # edits are kept relative to the first one seen
        base = (nxt - hs.stream_offset(ev.sender)) & _M32
        if d.base_seq is None:
            d.base_seq = base
        shift = (base - d.base_seq) & _M32
        if shift >= 1 << 31:
            ce.unsafe = "stream offsets and TCP sequence numbers disagree"
            return
        if ev.sender == CLIENT:
            self._client(ce, d, ev, ev.offset + shift)
        else:
            self._server(ce, d, ev, ev.offset + shift)

    def _anomaly(self, ce: _ConnEdits, hs, ev, conn) -> None:
        detail = ev.detail or ""
        if hs.state == BROKEN and conn.greeting_seen and ce.unsafe is None:
            ce.unsafe = f"connection phase not followed ({ev.sender}: {detail})"
        elif "stream ended inside a packet" in detail and hs.state in (AWAIT_RESPONSE, AUTH):
            ce.unsafe = f"the capture ends inside a connection-phase packet ({ev.sender})"
        elif "bytes missing" in detail and hs.state != COMMAND:
            ce.unsafe = f"{ev.sender} bytes missing in the connection phase"

    # -- client packets ---------------------------------------------------------------
    def _client(self, ce: _ConnEdits, d: DirEdits, ev, at: int) -> None:
        f, p = ev.fields, ev.payload
        if ev.kind == "handshake_response":
            user_at = 32 if "filler" in f else 5  # HandshakeResponse41 / 320
            self._user(d, at, p, user_at, bytes(f.username))
            self._auth(d, at, p, user_at + len(f.username) + 1, bytes(f.auth_response), ev.plugin)
            self._attrs(ce, d, at, p, getattr(f, "connect_attrs", None))
        elif ev.kind == "com_change_user":
            self._user(d, at, p, 1, bytes(f.user))
            self._auth(d, at, p, 1 + len(f.user) + 1, bytes(f.auth_response), ev.plugin)
            self._attrs(ce, d, at, p, getattr(f, "connect_attrs", None))
        elif ev.kind == "auth_data":
            self._auth(d, at, p, 0, p, ev.plugin)

    def _auth(self, d: DirEdits, at: int, payload: bytes, start: int, data: bytes, plugin):
        """Client authentication data ``data`` found at or after ``start``."""
        fill = client_fill(plugin, data, self.opts.keep_proofs)
        if fill is None:
            return
        n, proof = fill
        pos = payload.find(data, start, start + 9 + len(data))
        if pos < 0:  # pragma: no cover - layout guard: fields come from this payload
            raise AssertionError("auth data not at its place in the payload")
        self._fill(d, at, payload, pos, n, proof=proof)

    def _user(self, d: DirEdits, at: int, payload: bytes, pos: int, name: bytes) -> None:
        if self.opts.keep_users or not name:
            return
        if payload[pos : pos + len(name)] != name:  # pragma: no cover - layout guard
            raise AssertionError("user name not at its place in the payload")
        d.add(_wire(at, pos), name, self.names.user(name))
        self.report.users += 1

    def _attrs(self, ce: _ConnEdits, d: DirEdits, at: int, payload: bytes, attrs) -> None:
        """Connection attributes naming a host, an address or a user
        (libmariadb ``_server_host``, ``_client_host``...): mapped."""
        for a in attrs or ():
            key, value = bytes(a.key), bytes(a.value)
            if not value or len(value) > 250 or len(key) > 250:
                continue
            new = self._attr_value(ce, key, value)
            if new is None or new == value:
                continue
            pos = payload.find(bytes([len(key)]) + key + bytes([len(value)]) + value)
            if pos >= 0:
                d.add(_wire(at, pos + 2 + len(key)), value, new)
                self.report.hosts += 1

    def _attr_value(self, ce: _ConnEdits, key: bytes, value: bytes) -> bytes | None:
        names, o = self.names, self.opts
        if not o.keep_users and value in names.users:
            return names.users[value]
        if not o.keep_ips:
            if b"host" in key.lower() or _is_ip(value):
                return names.host(value)
        # a known user / address inside a longer value
        new = value
        if not o.keep_users:
            for old, rep in names.users.items():
                if len(old) >= 3 and old in new:
                    new = new.replace(old, rep)
        if not o.keep_ips:
            for ip in ce.ips:
                text = ip.encode()
                if text in new:
                    new = new.replace(text, names.host(text))
        return new

    # -- server packets ---------------------------------------------------------------
    def _server(self, ce: _ConnEdits, d: DirEdits, ev, at: int) -> None:
        f, p = ev.fields, ev.payload
        keep = self.opts.keep_proofs
        kind = ev.kind
        if kind == "greeting" and not keep:
            if f.protocol_version == 10:
                part1_at = 1 + len(f.server_version) + 1 + 4
                self._fill(d, at, p, part1_at, len(f.auth_plugin_data_part_1), proof=True)
                part2 = f.auth_plugin_data_part_2
                if part2:
                    n = len(part2) - (1 if part2[-1:] == b"\x00" else 0)
                    self._fill(d, at, p, part1_at + 8 + 19, n, proof=True)
            else:
                self._fill(d, at, p, 1 + len(f.server_version) + 1 + 4, len(f.scramble), proof=True)
        elif kind in ("auth_switch_request", "auth_next_factor") and not keep:
            data = bytes(f.plugin_data)
            n = len(data) - (1 if data[-1:] == b"\x00" else 0)
            self._fill(d, at, p, len(p) - len(data), n, proof=True)
        elif kind in ("server_plugin_data", "auth_more_data") and ev.plugin in NONCE_PLUGINS:
            if not keep:
                skip = 1 if kind == "auth_more_data" else 0
                self._fill(d, at, p, skip, len(p) - skip, proof=True)
        elif kind == "server_plugin_data":
            self._text(ce, d, at, p, 0)  # a dialog question may name the user
        elif kind in ("err", "command_error"):
            msg = bytes(f.error_message)
            self._text(ce, d, at, p, len(p) - len(msg))

    def _text(self, ce: _ConnEdits, d: DirEdits, at: int, p: bytes, base: int) -> None:
        """Users, hosts and addresses inside a server message."""
        names, o = self.names, self.opts
        msg = p[base:]
        for m in _USER_AT_HOST.finditer(msg):
            user, host = m.group(1), m.group(2)
            if user and not o.keep_users:
                d.add(_wire(at, base + m.start(1)), user, names.user(user))
                self.report.users += 1
            if host and not o.keep_ips:
                d.add(_wire(at, base + m.start(2)), host, names.host(host))
                self.report.hosts += 1
        if not o.keep_ips:
            for m in _HOST.finditer(msg):
                d.add(_wire(at, base + m.start(1)), m.group(1), names.host(m.group(1)))
                self.report.hosts += 1
        if not o.keep_users:
            for old in list(names.users):
                for m in re.finditer(re.escape(b"'" + old + b"'"), msg):
                    d.add(_wire(at, base + m.start() + 1), old, names.user(old))

    def _fill(self, d: DirEdits, at: int, p: bytes, pos: int, n: int, *, proof: bool) -> None:
        if n <= 0:
            return
        d.add(_wire(at, pos), p[pos : pos + n], FILL * n)
        if proof:
            self.report.proofs += 1
        else:
            self.report.secrets += 1


def _is_ip(value: bytes) -> bool:
    try:
        ipaddress.ip_address(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return False
    return True
