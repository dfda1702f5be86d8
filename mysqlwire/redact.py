"""Redact a capture: remove the secrets of every MySQL connection phase and map
addresses and user names to placeholders, keeping the file dissectable.

Two streaming passes over a pcap / pcapng file (memory: the dissection state
of the open connections plus the list of edits, never the capture):

1. **find** -- every TCP connection to a MySQL port is reassembled and its
   connection phase followed packet by packet with the same state machine as
   ``dissect`` (:class:`~mysqlwire.handshake.Handshake`).  For each field to
   change it records *(connection, direction, stream offset, new bytes)*:

   * client authentication data that is not a challenge-response proof --
     ``mysql_clear_password`` passwords and IAM tokens, PAM/``dialog``
     answers, the ``pw\\0`` of caching_sha2/sha256 full authentication, and
     the data of any plugin mysqlwire does not know -- always;
   * with ``scrambles``: every client proof (native/old/caching_sha2
     scrambles, ed25519/parsec signatures, RSA-encrypted passwords) and the
     server nonces (greeting, auth switch);
   * unless ``keep_users``: user names (handshake response, COM_CHANGE_USER)
     and the ``'user'@'host'`` of ERR messages.

2. **rewrite** -- every frame is copied; IPv4/IPv6 (and ARP) addresses are
   mapped unless ``keep_ips``, the TCP payload bytes covered by an edit are
   replaced (by TCP sequence number, so retransmissions are covered too), and
   the IPv4 header checksum and the TCP/UDP/ICMPv6 checksums of every changed
   frame are recomputed (updated incrementally when the frame was cut by the
   snaplen).  Nothing changes length: placeholders have the length of what
   they replace, so MySQL, TCP and IP lengths stay valid.  pcapng Decryption
   Secrets Blocks (TLS keys) are dropped; so are Name Resolution Blocks and
   interface address options when addresses are mapped.

What is *not* redacted (SECURITY.md): bytes inside TLS (encrypted; drop the
key log), a COM_CHANGE_USER inside the compressed protocol, the command phase
(queries may carry ``IDENTIFIED BY '...'``), addresses inside payloads (DNS,
ICMP errors, connect attributes such as ``_server_host``).  The mapping
written with ``map_path`` lets anyone undo the user/address mapping: it is as
sensitive as the original capture.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import socket
import struct
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .capture import Reassembler, decode_tcp, endpoint, open_capture
from .dissect import DEFAULT_PORTS, looks_like_greeting
from .errors import CaptureError, ProtocolError
from .handshake import (
    AUTH,
    AWAIT_GREETING,
    AWAIT_RESPONSE,
    CLIENT,
    NEED_DATA,
    SERVER,
    SLICE,
    Handshake,
)
from .outputs import check_outputs, open_output, write_output
from .protocol.framing import MAX_CHUNK, PacketReader, frame

__all__ = ["RedactOptions", "RedactReport", "redact", "redact_capture"]

FILL = b"*"

# plugins whose client data is a challenge-response proof (kept unless
# ``scrambles``); anything else a client sends while authenticating is
# treated as a clear-text secret
PROOF_PLUGINS = frozenset(
    {
        "mysql_native_password",
        "mysql_old_password",
        "caching_sha2_password",
        "sha256_password",
        "client_ed25519",
        "parsec",
    }
)
_FULL_AUTH_PLUGINS = frozenset({"caching_sha2_password", "sha256_password"})
_PHASE = (AWAIT_GREETING, AWAIT_RESPONSE, AUTH)
_M32 = 0xFFFFFFFF


@dataclass
class RedactOptions:
    ports: tuple[int, ...] = DEFAULT_PORTS
    detect: bool = False
    scrambles: bool = False
    keep_ips: bool = False
    keep_users: bool = False
    max_packet: int = 16 * 1024 * 1024
    max_buffer: int = 4 * 1024 * 1024


@dataclass
class RedactReport:
    format: str = ""
    frames: int = 0
    connections: int = 0
    secrets: int = 0  # clear-text secret fields replaced
    proofs: int = 0  # proof / nonce fields replaced (scrambles)
    users: int = 0  # user name fields replaced
    tls_connections: int = 0  # connection phase (partly) inside TLS: left encrypted
    not_followed: list[str] = field(default_factory=list)  # one line per connection
    frames_changed: int = 0
    frames_unmapped: int = 0  # IP frames whose addresses could not be mapped
    dropped_blocks: dict[str, int] = field(default_factory=dict)
    truncated: str | None = None
    mapping: dict[str, dict[str, str]] = field(default_factory=dict)


# --- placeholders ---------------------------------------------------------------------


def _v4_candidates(length: int) -> Iterator[str]:
    """IPv4 placeholders whose dotted text has ``length`` characters."""
    if length == 15:
        for c, d in itertools.product(range(100, 256), range(100, 255)):
            yield f"192.168.{c}.{d}"
        return
    if length == 7:
        for b, c, d in itertools.product(range(10), range(10), range(1, 10)):
            yield f"0.{b}.{c}.{d}"
        return
    spans = {1: range(0, 10), 2: range(10, 100), 3: range(100, 256)}
    for lb, lc, ld in itertools.product((1, 2, 3), repeat=3):
        if 5 + lb + lc + ld != length:
            continue
        for b, c, d in itertools.product(spans[lb], spans[lc], spans[ld]):
            if d not in (0, 255):
                yield f"10.{b}.{c}.{d}"


class Placeholders:
    """Consistent, same-length placeholders for addresses, user and host names."""

    def __init__(self) -> None:
        self.users: dict[bytes, bytes] = {}
        self.hosts: dict[bytes, bytes] = {}
        self.ips: dict[bytes, bytes] = {}  # raw 4/16 bytes -> raw
        self._v4_gen: dict[int, Iterator[str]] = {}
        self._used: set[bytes] = set()
        self._v6 = itertools.count(1)
        self._n_users = itertools.count(1)
        self._n_hosts = itertools.count(1)

    @staticmethod
    def _numbered(prefix: bytes, n: int, length: int) -> bytes | None:
        """``prefix`` + zero-padded n in ``length`` bytes, else shorter prefixes,
        else base 36; None when n does not fit."""
        for pre in (prefix, prefix[:1]):
            digits = length - len(pre)
            if digits >= 1 and n < 10**digits:
                return pre + str(n).zfill(digits).encode()
        if length >= 1 and n < 36**length:
            out = ""
            for _ in range(length):
                n, r = divmod(n, 36)
                out = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + out
            return out.encode()
        return None

    def user(self, name: bytes) -> bytes:
        if not name:
            return name
        if name not in self.users:
            new = None
            while new is None or new in self._used:
                n = next(self._n_users)
                new = self._numbered(b"user", n, len(name))
                if new is None:  # more users of this length than placeholders
                    new = FILL * len(name)
                    break
            self.users[name] = new
            self._used.add(new)
        return self.users[name]

    def host(self, name: bytes) -> bytes:
        """A host name (or text address) as the server wrote it in a message."""
        if not name or name in (b"%", b"localhost"):
            return name
        try:
            addr = ipaddress.ip_address(name.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            addr = None
        if addr is not None:
            mapped = ipaddress.ip_address(self.ip(addr.packed))
            text = str(mapped).encode()
            return text if len(text) == len(name) else b"x" * len(name)
        if name not in self.hosts:
            new = None
            while new is None or new in self._used:
                n = next(self._n_hosts)
                new = self._numbered(b"host", n, len(name)) or FILL * len(name)
                if new == FILL * len(name):
                    break
            self.hosts[name] = new
            self._used.add(new)
        return self.hosts[name]

    def ip(self, raw: bytes) -> bytes:
        raw = bytes(raw)
        if raw not in self.ips:
            if len(raw) == 4:
                length = len(socket.inet_ntoa(raw))
                gen = self._v4_gen.setdefault(length, _v4_candidates(length))
                new = b""
                for text in gen:
                    new = socket.inet_aton(text)
                    if new not in self._used:
                        break
            else:
                new = ipaddress.IPv6Address((0xFD00 << 112) | next(self._v6)).packed
            self.ips[raw] = new
            self._used.add(new)
        return self.ips[raw]

    def as_json(self) -> dict[str, dict[str, str]]:
        def text(b: bytes) -> str:
            return b.decode("utf-8", "backslashreplace")

        return {
            "users": {text(k): text(v) for k, v in self.users.items()},
            "hosts": {text(k): text(v) for k, v in self.hosts.items()},
            "addresses": {
                str(ipaddress.ip_address(k)): str(ipaddress.ip_address(v))
                for k, v in self.ips.items()
            },
        }


# --- pass 1: find the fields -----------------------------------------------------------


@dataclass
class _DirEdits:
    """Edits of one direction of one connection, by stream offset."""

    key: tuple  # (src raw, sport, dst raw, dport)
    first_frame: int
    base_seq: int | None = None  # TCP sequence number of stream offset 0
    starts: list[int] = field(default_factory=list)
    edits: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, new bytes), sorted

    def add(self, offset: int, new: bytes) -> None:
        if not new:
            return
        i = bisect_right(self.starts, offset)
        self.starts.insert(i, offset)
        self.edits.insert(i, (offset, new))


def _wire(pkt_offset: int, pos: int) -> int:
    """Stream offset of payload byte ``pos`` of the packet whose first header is at
    ``pkt_offset`` (4-byte headers every 0xFFFFFF bytes)."""
    return pkt_offset + 4 * (1 + pos // MAX_CHUNK) + pos


_USER_AT_HOST = re.compile(rb"'([^'@]{0,80})'@'([^']{0,255})'")
_HOST = re.compile(rb"\bHost '([^']{1,255})'")  # 1130 not allowed / 1129 blocked


class _Conn:
    """Pass-1 sink of one TCP connection."""

    def __init__(self, job: _Finder, flow, server_is_initiator: bool | None):
        self.job = job
        self.flow = flow
        self.server_is_initiator = server_is_initiator
        self.decided = server_is_initiator is not None
        self.hs: Handshake | None = None
        self.dirs: dict[str, _DirEdits] = {}
        self.readers: dict[str, PacketReader] = {}
        self.offset = {CLIENT: 0, SERVER: 0}
        self.reader_base = {CLIENT: 0, SERVER: 0}
        self.done = False
        self.label = f"{endpoint(*flow.initiator)} -> {endpoint(*flow.responder)}"
        if self.decided:
            self._start()

    def _start(self) -> None:
        job = self.job
        flow = self.flow
        if self.server_is_initiator:
            srv, cli = flow.initiator, flow.responder
        else:
            srv, cli = flow.responder, flow.initiator
        sraw, craw = _pton(srv[0]), _pton(cli[0])
        self.dirs[SERVER] = _DirEdits((sraw, srv[1], craw, cli[1]), job.frame_index)
        self.dirs[CLIENT] = _DirEdits((craw, cli[1], sraw, srv[1]), job.frame_index)
        job.instances.setdefault(self.dirs[SERVER].key, []).append(self.dirs[SERVER])
        job.instances.setdefault(self.dirs[CLIENT].key, []).append(self.dirs[CLIENT])
        self.hs = Handshake(max_packet=job.opts.max_packet)
        for side in (CLIENT, SERVER):
            self.readers[side] = self._reader(side)
        job.report.connections += 1

    def _reader(self, side: str) -> PacketReader:
        hs = self.hs

        def keep(seq, first, side=side):
            # the connection phase whole; in the command phase only what starts
            # a new one (COM_CHANGE_USER)
            return hs.state in _PHASE or (side == CLIENT and seq == 0 and first == 0x11)

        return PacketReader(max_payload=self.job.opts.max_packet, skip_payloads=True, keep=keep)

    def _stop(self, why: str | None = None) -> None:
        self.done = True
        self.flow.mute(True)
        self.flow.mute(False)
        if why:
            self.job.report.not_followed.append(f"{self.label}: {why}")

    # -- reassembler API
    def data(self, from_initiator: bool, data: bytes, ts: float) -> None:
        if self.done:
            return
        if not self.decided:
            if not looks_like_greeting(bytes(data[:256])):
                self.done = True
                self.flow.mute(True)
                self.flow.mute(False)
                return
            self.server_is_initiator = from_initiator
            self.decided = True
            self._start()
        sender = SERVER if from_initiator == self.server_is_initiator else CLIENT
        d = self.dirs[sender]
        if d.base_seq is None:
            nxt = self.flow._d[from_initiator].nxt  # just past ``data``
            d.base_seq = (nxt - len(data) - self.offset[sender]) & _M32
        self.offset[sender] += len(data)
        # a huge (TSO) segment is framed a slice at a time: the connection
        # phase's bounds stop it before it is all cut into packets
        view = memoryview(data)
        for pos in range(0, len(data), SLICE):
            self._feed(sender, view[pos : pos + SLICE])
            if self.done:
                return

    def _feed(self, sender: str, data) -> None:
        try:
            packets = self.readers[sender].feed(data)
        except ProtocolError as exc:
            self._stop(f"{sender} framing: {exc.reason}; later secrets of this connection kept")
            return
        for pkt in packets:
            at = self.reader_base[sender] + pkt.offset
            self.hs.receive_data(sender, frame(pkt.payload, pkt.seq))
            while (ev := self.hs.next_event()) is not NEED_DATA:
                self._event(ev, at)
            if self.hs.tls:
                self.job.report.tls_connections += 1
                self._stop()
                return
            if self.hs.compressed:
                self._stop()
                return
            if self.hs.state in ("CLOSED", "BROKEN"):
                if self.hs.state == "BROKEN":
                    self._stop("connection phase not understood; secrets in it may be kept")
                else:
                    self._stop()
                return

    def gap(self, from_initiator: bool, nbytes: int, ts: float) -> None:
        if self.done or not self.decided:
            return
        sender = SERVER if from_initiator == self.server_is_initiator else CLIENT
        self.offset[sender] += nbytes
        if self.hs.state in _PHASE:
            self._stop(f"{nbytes} {sender} bytes missing in the connection phase")
            return
        self.reader_base[sender] = self.offset[sender]
        self.readers[sender] = self._reader(sender)

    def closed(self, reason: str, ts: float) -> None:
        self.done = True

    # -- events -> edits
    def _event(self, ev, at: int) -> None:
        kind = ev.kind
        f = ev.fields
        p = ev.payload
        opts = self.job.opts
        if ev.sender == CLIENT:
            d = self.dirs[CLIENT]
            if kind == "handshake_response":
                user_at = 32 if "filler" in f else 5  # HandshakeResponse41 / 320
                self._user(d, at, p, user_at, f.username)
                auth_from = user_at + len(f.username) + 1
                self._auth(d, at, p, auth_from, bytes(f.auth_response), ev.plugin)
                if not opts.keep_ips:
                    self._attr_host(d, at, p, getattr(f, "connect_attrs", None))
            elif kind == "com_change_user":
                self._user(d, at, p, 1, f.user)
                self._auth(d, at, p, 1 + len(f.user) + 1, bytes(f.auth_response), ev.plugin)
            elif kind == "auth_data":
                self._auth(d, at, p, 0, p, ev.plugin)
            return
        d = self.dirs[SERVER]
        if kind == "greeting" and opts.scrambles:
            if f.protocol_version == 10:
                part1_at = 1 + len(f.server_version) + 1 + 4
                self._fill(d, at, part1_at, len(f.auth_plugin_data_part_1), proof=True)
                part2 = f.auth_plugin_data_part_2
                if part2:
                    n = len(part2) - (1 if part2[-1:] == b"\x00" else 0)
                    self._fill(d, at, part1_at + 8 + 19, n, proof=True)
            else:
                at_scramble = 1 + len(f.server_version) + 1 + 4
                self._fill(d, at, at_scramble, len(f.scramble), proof=True)
        elif kind in ("auth_switch_request", "auth_next_factor") and opts.scrambles:
            data = bytes(f.plugin_data)
            n = len(data) - (1 if data[-1:] == b"\x00" else 0)
            self._fill(d, at, len(p) - len(data), n, proof=True)
        elif kind == "err":
            msg = bytes(f.error_message)
            base = len(p) - len(msg)
            names = self.job.names
            for m in _USER_AT_HOST.finditer(msg):
                user, host = m.group(1), m.group(2)
                if user and not opts.keep_users:
                    d.add(_wire(at, base + m.start(1)), names.user(user))
                if host and not opts.keep_ips:
                    d.add(_wire(at, base + m.start(2)), names.host(host))
            if not opts.keep_ips:
                for m in _HOST.finditer(msg):
                    d.add(_wire(at, base + m.start(1)), names.host(m.group(1)))

    def _attr_host(self, d: _DirEdits, at: int, payload: bytes, attrs) -> None:
        """The server host name/address a client library puts in its connect
        attributes (libmariadb ``_server_host``)."""
        for a in attrs or ():
            key, value = bytes(a.key), bytes(a.value)
            if key != b"_server_host" or not value or len(value) > 250:
                continue
            pos = payload.find(bytes([len(key)]) + key + bytes([len(value)]) + value)
            if pos >= 0:
                d.add(_wire(at, pos + 2 + len(key)), self.job.names.host(value))

    def _fill(self, d: _DirEdits, at: int, pos: int, n: int, *, proof: bool) -> None:
        if n <= 0:
            return
        d.add(_wire(at, pos), FILL * n)
        if proof:
            self.job.report.proofs += 1
        else:
            self.job.report.secrets += 1

    def _user(self, d: _DirEdits, at: int, payload: bytes, pos: int, name) -> None:
        name = bytes(name)
        if self.job.opts.keep_users or not name:
            return
        if payload[pos : pos + len(name)] != name:  # pragma: no cover - layout guard
            return
        d.add(_wire(at, pos), self.job.names.user(name))
        self.job.report.users += 1

    def _auth(self, d, at: int, payload: bytes, start: int, data: bytes, plugin: str | None):
        """Client authentication data ``data`` found at or after ``start``."""
        if not data:
            return
        pos = payload.find(data, start, start + 9 + len(data))
        if pos < 0:  # pragma: no cover - layout guard
            return
        proof = plugin in PROOF_PLUGINS and not (
            plugin in _FULL_AUTH_PLUGINS and len(data) > 1 and data.endswith(b"\x00")
        )
        if proof and len(data) == 1:
            return  # 01/02: "send me the public key", not a secret
        if proof and not self.job.opts.scrambles:
            return
        n = len(data) - (1 if data.endswith(b"\x00") else 0)
        self._fill(d, at, pos, n, proof=proof)


def _pton(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


class _Finder:
    def __init__(self, opts: RedactOptions, names: Placeholders, report: RedactReport):
        self.opts = opts
        self.names = names
        self.report = report
        self.ports = set(opts.ports)
        self.frame_index = 0
        self.instances: dict[tuple, list[_DirEdits]] = {}

    def on_flow(self, flow):
        ini_port = flow.initiator[1]
        res_port = flow.responder[1]
        if res_port in self.ports and (flow.syn_seen or ini_port not in self.ports):
            return _Conn(self, flow, server_is_initiator=False)
        if ini_port in self.ports:
            return _Conn(self, flow, server_is_initiator=True)
        if self.opts.detect:
            return _Conn(self, flow, server_is_initiator=None)
        return None

    def run(self, path) -> None:
        reasm = Reassembler(self.on_flow, max_buffer=self.opts.max_buffer)
        reader = open_capture(path)
        self.report.format = reader.format
        for i, (ts, linktype, data, _iface) in enumerate(reader.records()):
            self.frame_index = i
            seg = decode_tcp(linktype, data)
            if seg is not None:
                reasm.add(ts, seg)
        reasm.finish()
        self.report.frames = reader.frames_read
        if reader.truncated:
            self.report.truncated = reader.error


# --- pass 2: rewrite the frames ---------------------------------------------------------


def _csum_add(data, start: int, end: int, s: int = 0) -> int:
    n = end - start
    if n > 0:
        chunk = bytes(data[start:end])
        if n & 1:
            chunk += b"\x00"
        s += sum(struct.unpack(f"!{len(chunk) // 2}H", chunk))
    return s


def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _ip_checksum(buf: bytearray, off: int, ihl: int) -> None:
    buf[off + 10 : off + 12] = b"\x00\x00"
    struct.pack_into("!H", buf, off + 10, ~_fold(_csum_add(buf, off, off + ihl)) & 0xFFFF)


def _incremental(old_sum: int, old: bytes, new: bytes) -> int:
    """RFC 1624: checksum after 16-bit-aligned bytes ``old`` became ``new``."""
    s = ~old_sum & 0xFFFF
    if len(old) & 1:
        old += b"\x00"
        new += b"\x00"
    for i in range(0, len(old), 2):
        s += (~((old[i] << 8) | old[i + 1])) & 0xFFFF
        s += (new[i] << 8) | new[i + 1]
    return ~_fold(s) & 0xFFFF


_ETH_VLANS = (0x8100, 0x88A8, 0x9100)


def _locate_l3(linktype: int, data) -> tuple[int, int] | None:
    """(offset of the network header, ethertype) for the link types dissect reads."""
    n = len(data)
    try:
        if linktype == 1:
            off, et = 14, (data[12] << 8) | data[13]
        elif linktype == 113:
            off, et = 16, (data[14] << 8) | data[15]
        elif linktype == 276:
            off, et = 20, (data[0] << 8) | data[1]
        elif linktype in (0, 108):
            af = struct.unpack_from("<I" if linktype == 0 else ">I", data, 0)[0]
            if linktype == 0 and af > 0xFFFF:
                af = struct.unpack_from(">I", data, 0)[0]
            return (4, 0x0800) if af == 2 else (4, 0x86DD) if af in (10, 24, 28, 30) else None
        elif linktype in (101, 12, 14, 228, 229):
            v = data[0] >> 4
            return (0, 0x0800) if v == 4 else (0, 0x86DD) if v == 6 else None
        else:
            return None
        while et in _ETH_VLANS and off + 4 <= n:
            et = (data[off + 2] << 8) | data[off + 3]
            off += 4
        return off, et
    except (IndexError, struct.error):
        return None


class _Rewriter:
    def __init__(self, opts: RedactOptions, names: Placeholders, finder: _Finder):
        self.opts = opts
        self.names = names
        self.instances = {
            k: sorted(v, key=lambda e: e.first_frame) for k, v in finder.instances.items()
        }
        self.report = finder.report

    def frame(self, index: int, linktype: int, data: bytes) -> bytes:
        loc = _locate_l3(linktype, data)
        if loc is None:
            return data
        off, et = loc
        buf = bytearray(data)
        changed = False
        if et == 0x0806:  # ARP (Ethernet/IPv4)
            if (
                not self.opts.keep_ips
                and len(buf) >= off + 28
                and buf[off + 4 : off + 6] == b"\x06\x04"
            ):
                for a in (off + 14, off + 24):
                    buf[a : a + 4] = self.names.ip(buf[a : a + 4])
                return bytes(buf)
            return data
        if et == 0x0800:
            res = self._ipv4(index, buf, off)
        elif et == 0x86DD:
            res = self._ipv6(index, buf, off)
        else:
            return data
        if res is None:
            if not self.opts.keep_ips:
                self.report.frames_unmapped += 1
            return data
        changed = res
        if changed:
            self.report.frames_changed += 1
            return bytes(buf)
        return data

    # -- network layer
    def _ipv4(self, index, buf: bytearray, off: int) -> bool | None:
        if len(buf) < off + 20 or buf[off] >> 4 != 4:
            return None
        ihl = (buf[off] & 0x0F) * 4
        total = struct.unpack_from("!H", buf, off + 2)[0]
        if ihl < 20 or len(buf) < off + ihl:
            return None
        frag = struct.unpack_from("!H", buf, off + 6)[0]
        proto = buf[off + 9]
        old_src, old_dst = bytes(buf[off + 12 : off + 16]), bytes(buf[off + 16 : off + 20])
        changed = False
        if not self.opts.keep_ips:
            buf[off + 12 : off + 16] = self.names.ip(old_src)
            buf[off + 16 : off + 20] = self.names.ip(old_dst)
            _ip_checksum(buf, off, ihl)
            changed = buf[off + 12 : off + 20] != old_src + old_dst
        if frag & 0x1FFF:
            return changed  # a later fragment: no transport header here
        l4 = off + ihl
        end = min(off + total, len(buf)) if total >= ihl else len(buf)
        complete = off + total <= len(buf) and not frag & 0x2000
        pseudo_old = old_src + old_dst
        pseudo_new = bytes(buf[off + 12 : off + 20])
        l4_len = total - ihl
        return (
            self._transport(
                index,
                buf,
                proto,
                l4,
                end,
                complete,
                pseudo_old,
                pseudo_new,
                l4_len,
                old_src,
                old_dst,
            )
            or changed
        )

    def _ipv6(self, index, buf: bytearray, off: int) -> bool | None:
        if len(buf) < off + 40 or buf[off] >> 4 != 6:
            return None
        plen = struct.unpack_from("!H", buf, off + 4)[0]
        old_src, old_dst = bytes(buf[off + 8 : off + 24]), bytes(buf[off + 24 : off + 40])
        changed = False
        if not self.opts.keep_ips:
            buf[off + 8 : off + 24] = self.names.ip(old_src)
            buf[off + 24 : off + 40] = self.names.ip(old_dst)
            changed = buf[off + 8 : off + 40] != old_src + old_dst
        nh = buf[off + 6]
        p = off + 40
        end = min(off + 40 + plen, len(buf))
        complete = off + 40 + plen <= len(buf)
        while nh in (0, 43, 44, 60) and p + 8 <= end:
            if nh == 44:
                if struct.unpack_from("!H", buf, p + 2)[0] & 0xFFF9:
                    return changed  # a later fragment
                complete = False  # the transport checksum covers other fragments too
                nh, p = buf[p], p + 8
            else:
                nh, p = buf[p], p + 8 + buf[p + 1] * 8
        l4_len = off + 40 + plen - p
        return (
            self._transport(
                index,
                buf,
                nh,
                p,
                end,
                complete,
                old_src + old_dst,
                bytes(buf[off + 8 : off + 40]),
                l4_len,
                old_src,
                old_dst,
            )
            or changed
        )

    # -- transport layer
    def _transport(
        self, index, buf, proto, l4, end, complete, pseudo_old, pseudo_new, l4_len, src, dst
    ) -> bool:
        if proto == 6 and l4 + 20 <= end:
            sport, dport, seq = struct.unpack_from("!HHI", buf, l4)
            doff = (buf[l4 + 12] >> 4) * 4
            pstart = l4 + doff
            old_payload = bytes(buf[pstart:end])
            patched = self._patch(index, buf, (src, sport, dst, dport), seq, pstart, end)
            csum_at = l4 + 16
        elif proto == 17 and l4 + 8 <= end:
            patched = False
            old_payload = b""
            pstart = l4 + 8
            csum_at = l4 + 6
            if struct.unpack_from("!H", buf, csum_at)[0] == 0 and len(pseudo_old) == 8:
                return False  # IPv4 UDP without checksum
        elif proto == 58 and l4 + 4 <= end:
            patched = False
            old_payload = b""
            pstart = l4 + 4
            csum_at = l4 + 2
        else:
            return False
        if not patched and pseudo_old == pseudo_new:
            return False
        if complete and l4_len >= 0 and l4 + l4_len <= len(buf):
            buf[csum_at : csum_at + 2] = b"\x00\x00"
            s = _csum_add(pseudo_new, 0, len(pseudo_new))
            s += l4_len + proto
            s = _csum_add(buf, l4, l4 + l4_len, s)
            value = ~_fold(s) & 0xFFFF
            if proto == 17 and value == 0:
                value = 0xFFFF
            struct.pack_into("!H", buf, csum_at, value)
        else:
            old = struct.unpack_from("!H", buf, csum_at)[0]
            new = _incremental(old, pseudo_old, pseudo_new)
            if patched and (pstart - l4) % 2 == 0:
                new = _incremental(new, old_payload, bytes(buf[pstart:end]))
            struct.pack_into("!H", buf, csum_at, new)
        return True

    def _patch(self, index, buf, key, seq, pstart, end) -> bool:
        inst = self.instances.get(key)
        if not inst or pstart >= end:
            return False
        d = None
        for cand in inst:
            if cand.first_frame <= index:
                d = cand
            else:
                break
        if d is None or d.base_seq is None or not d.edits:
            return False
        off = (seq - d.base_seq) & _M32
        if off >= 1 << 31:
            return False
        hi = off + (end - pstart)
        changed = False
        i = max(0, bisect_right(d.starts, off) - 1)
        while i < len(d.edits):
            e_off, new = d.edits[i]
            if e_off >= hi:
                break
            lo_ = max(off, e_off)
            hi_ = min(hi, e_off + len(new))
            if lo_ < hi_:
                buf[pstart + lo_ - off : pstart + hi_ - off] = new[lo_ - e_off : hi_ - e_off]
                changed = True
            i += 1
        return changed


# --- file formats ----------------------------------------------------------------------

_PCAPNG_SHB = 0x0A0D0D0A


def _copy_pcap(src, dst, rewrite) -> None:
    head = src.read(24)
    magic = head[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    modified = magic in (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34")
    hlen = 24 if modified else 16
    linktype = struct.unpack_from(order + "I", head, 20)[0] & 0xFFFF
    dst.write(head)
    index = 0
    while True:
        rec = src.read(hlen)
        if len(rec) < hlen:
            return
        incl = struct.unpack_from(order + "I", rec, 8)[0]
        data = src.read(incl)
        if len(data) < incl:
            return
        dst.write(rec)
        dst.write(rewrite(index, linktype, data))
        index += 1


def _copy_pcapng(src, dst, rewrite, report: RedactReport, map_ips: bool) -> None:
    order = "<"
    linktypes: list[int] = []
    index = 0
    while True:
        head = src.read(8)
        if len(head) < 8:
            return
        btype = struct.unpack_from("<I", head, 0)[0]
        if btype == _PCAPNG_SHB:
            bom = src.read(4)
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            size = struct.unpack_from(order + "I", head, 4)[0]
            body = bom + src.read(size - 12)
            linktypes = []
        else:
            btype, size = struct.unpack_from(order + "II", head, 0)
            body = src.read(size - 8) if size >= 12 else b""
        if size < 12 or len(body) < size - 8:
            return
        block = bytearray(head + body)
        if btype == 0x0000000A:  # Decryption Secrets Block: TLS keys
            report.dropped_blocks["decryption secrets"] = (
                report.dropped_blocks.get("decryption secrets", 0) + 1
            )
            continue
        if btype == 0x00000004 and map_ips:  # Name Resolution Block: address -> name
            report.dropped_blocks["name resolution"] = (
                report.dropped_blocks.get("name resolution", 0) + 1
            )
            continue
        if btype == 0x00000001:
            linktypes.append(struct.unpack_from(order + "H", block, 8)[0])
            if map_ips:
                block = _strip_idb_addresses(block, order)
        elif btype in (0x00000006, 0x00000002):
            iface = struct.unpack_from(order + "I", block, 8)[0]
            if btype == 0x00000002:
                iface = iface & 0xFFFF if order == "<" else iface >> 16
            caplen = struct.unpack_from(order + "I", block, 20)[0]
            if iface < len(linktypes) and 28 + caplen <= len(block):
                block[28 : 28 + caplen] = rewrite(
                    index, linktypes[iface], bytes(block[28 : 28 + caplen])
                )
            index += 1
        elif btype == 0x00000003:
            orig = struct.unpack_from(order + "I", block, 8)[0]
            caplen = min(orig, len(block) - 16)
            if linktypes:
                block[12 : 12 + caplen] = rewrite(
                    index, linktypes[0], bytes(block[12 : 12 + caplen])
                )
            index += 1
        dst.write(block)


def _strip_idb_addresses(block: bytearray, order: str) -> bytearray:
    """Interface Description Block without if_IPv4addr / if_IPv6addr / if_MACaddr options."""
    opts = []
    pos, end = 16, len(block) - 4
    dropped = False
    while pos + 4 <= end:
        code, olen = struct.unpack_from(order + "HH", block, pos)
        step = 4 + olen + (-olen & 3)
        if code == 0:
            break
        if code in (4, 5, 6):
            dropped = True
        else:
            opts.append(bytes(block[pos : pos + step]))
        pos += step
    if not dropped:
        return block
    body = bytes(block[8:16]) + b"".join(opts) + (struct.pack(order + "HH", 0, 0) if opts else b"")
    size = 12 + len(body)
    return bytearray(struct.pack(order + "II", 1, size) + body + struct.pack(order + "I", size))


# --- entry point -------------------------------------------------------------------------


def redact(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    opts: RedactOptions | None = None,
    *,
    map_path=None,
) -> RedactReport:
    """Write a redacted copy of capture ``src`` to ``dst`` (see the module doc).

    Raises :class:`~mysqlwire.errors.CaptureError` when ``src`` is not a
    capture and :class:`~mysqlwire.errors.UsageError` for ``dst == src``.
    ``map_path``: write the placeholder mapping there as JSON (mode 0600).
    """
    opts = opts or RedactOptions()
    src = Path(src)
    outs = check_outputs({"output": dst, "--map": map_path}, inputs=[src], allow_stdout=["output"])
    names = Placeholders()
    report = RedactReport()
    finder = _Finder(opts, names, report)
    finder.run(src)
    rewriter = _Rewriter(opts, names, finder)
    with open(src, "rb") as fin, open_output(outs["output"]) as fout:
        if report.format == "pcapng":
            _copy_pcapng(fin, fout, rewriter.frame, report, not opts.keep_ips)
        elif report.format == "pcap":
            _copy_pcap(fin, fout, rewriter.frame)
        else:  # pragma: no cover - open_capture knows only these
            raise CaptureError(f"{src}: unsupported capture format")
    report.mapping = names.as_json()
    if "--map" in outs:
        text = json.dumps(report.mapping, indent=2, ensure_ascii=False) + "\n"
        write_output(outs["--map"], text, secret=True)
    return report


def redact_capture(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    ports: tuple[int, ...] | None = None,
    detect: bool = False,
    map_path=None,
    **options,
) -> RedactReport:
    """:func:`redact` with options as keywords (``ports``, ``detect``,
    ``scrambles``, ``keep_ips``, ``keep_users``...).  Pass the capture's MySQL
    ports (or ``detect=True``): only connections on them are redacted."""
    opts = RedactOptions(ports=tuple(ports or DEFAULT_PORTS), detect=detect, **options)
    return redact(src, dst, opts, map_path=map_path)
