"""Every connection-phase packet of every shared capture must round-trip.

For each TCP connection (client = SYN sender) in ``../shared/captures/public``
and ``../shared/captures/lab-samples``: reassemble both directions (by TCP
sequence number), frame them with :class:`PacketReader`, order the packets by
the frame that completed them, classify each connection-phase packet by
position and first byte, and check ``build(kind, parse(kind, p, caps)) == p``.
COM_CHANGE_USER exchanges later in the connection count too. We stop at TLS
(after an SSLRequest the rest is encrypted) and at the compressed protocol.

The capture reader below is deliberately tiny (pcap/pcapng, Ethernet/SLL/SLL2/
null/raw, IPv4/IPv6, TCP); the real capture layer lives in ``mysqlwire.capture``.
"""

from __future__ import annotations

import csv
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mysqlwire.errors import ProtocolError
from mysqlwire.protocol import (
    CLIENT_COMPRESS,
    CLIENT_MULTI_FACTOR_AUTHENTICATION,
    CLIENT_PROTOCOL_41,
    CLIENT_SSL,
    build,
    parse,
)
from mysqlwire.protocol.framing import PacketReader
from tests.conftest import PUBLIC, lab_sample_captures, public_captures, require_shared

# --- a minimal capture reader -------------------------------------------------


def _pcap_frames(data: bytes):
    """(linktype, frame bytes) for a classic pcap file."""
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, pos + 8)[0]
        yield linktype, data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl


def _pcapng_frames(data: bytes):
    endian = "<"
    linktypes: list[int] = []
    pos = 0
    while pos + 12 <= len(data):
        btype = struct.unpack_from(endian + "I", data, pos)[0]
        if btype == 0x0A0D0D0A:
            endian = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            linktypes = []
        blen = struct.unpack_from(endian + "I", data, pos + 4)[0]
        body = data[pos + 8 : pos + blen - 4]
        if btype == 1:
            linktypes.append(struct.unpack_from(endian + "H", body, 0)[0])
        elif btype == 6:
            iface, _, _, caplen = struct.unpack_from(endian + "IIII", body, 0)
            yield linktypes[iface], body[20 : 20 + caplen]
        elif btype == 3:
            yield linktypes[0], body[4:]
        pos += blen


def _ip_packet(linktype: int, frame: bytes) -> bytes | None:
    if linktype == 1:  # Ethernet (+ VLAN tags)
        etype, pos = struct.unpack_from(">H", frame, 12)[0], 14
        while etype in (0x8100, 0x88A8):
            etype, pos = struct.unpack_from(">H", frame, pos + 2)[0], pos + 4
        return frame[pos:] if etype in (0x0800, 0x86DD) else None
    if linktype == 113:  # Linux cooked v1
        return frame[16:]
    if linktype == 276:  # Linux cooked v2
        return frame[20:]
    if linktype in (0, 108):  # BSD null / loopback
        return frame[4:]
    if linktype in (101, 12, 14, 228, 229):  # raw IP
        return frame
    return None


def _tcp_segment(ip: bytes):
    """(src, sport, dst, dport, seq, flags, payload) or None."""
    if not ip:
        return None
    version = ip[0] >> 4
    if version == 4:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from(">H", ip, 2)[0]
        if ip[9] != 6:
            return None
        src, dst = ip[12:16], ip[16:20]
        tcp = ip[ihl:total]
    elif version == 6:
        if ip[6] != 6:
            return None
        plen = struct.unpack_from(">H", ip, 4)[0]
        src, dst = ip[8:24], ip[24:40]
        tcp = ip[40 : 40 + plen]
    else:
        return None
    sport, dport, seq = struct.unpack_from(">HHI", tcp, 0)
    off = (tcp[12] >> 4) * 4
    return src, sport, dst, dport, seq, tcp[13], tcp[off:]


SYN, ACK = 0x02, 0x10


@dataclass
class Direction:
    isn: int | None = None  # from the SYN; None when the capture missed it
    segments: list[tuple[int, int, bytes]] = field(default_factory=list)  # (seq, frame, data)

    def pieces(self):
        """In-order (frame, bytes) pieces of the reassembled stream."""
        if not self.segments:
            return
        base = self.isn + 1 if self.isn is not None else min(seq for seq, _, _ in self.segments)
        ordered = sorted(((seq - base) % 2**32, frame, data) for seq, frame, data in self.segments)
        end = 0
        for rel, frame, data in ordered:
            if rel > end:
                return  # a hole: stop there (the captures are clean)
            if rel + len(data) <= end:
                continue  # retransmission
            piece = data[end - rel :]
            end += len(piece)
            yield frame, piece


@dataclass
class Connection:
    """Both directions of one TCP connection; ``client`` is the SYN sender if seen."""

    client: Direction = field(default_factory=Direction)
    server: Direction = field(default_factory=Direction)
    syn_seen: bool = False

    def swap(self) -> None:
        self.client, self.server = self.server, self.client


def tcp_connections(path: Path) -> list[Connection]:
    data = path.read_bytes()
    frames = _pcapng_frames(data) if data[:4] == b"\x0a\x0d\x0d\x0a" else _pcap_frames(data)
    current: dict[tuple, tuple[Connection, bool]] = {}
    conns: list[Connection] = []
    for index, (linktype, frame) in enumerate(frames):
        ip = _ip_packet(linktype, frame)
        seg = _tcp_segment(ip) if ip else None
        if seg is None:
            continue
        src, sport, dst, dport, seq, flags, payload = seg
        key, back = (src, sport, dst, dport), (dst, dport, src, sport)
        if flags & SYN and not flags & ACK:
            conn = Connection(syn_seen=True)
            conn.client.isn = seq
            conns.append(conn)
            current[key], current[back] = (conn, True), (conn, False)
            continue
        if key not in current:  # the capture started mid-connection: roles decided later
            conn = Connection()
            conns.append(conn)
            current[key], current[back] = (conn, True), (conn, False)
        conn, from_client = current[key]
        side = conn.client if from_client else conn.server
        if flags & SYN:
            side.isn = seq
        elif payload:
            side.segments.append((seq, index, payload))
    return conns


# --- connection-phase walk ------------------------------------------------------

GREETING_KINDS = {0x0A: "handshake_v10", 0x09: "handshake_v9"}


def _packets(direction: Direction, who: str):
    """(frame, who, Packet) until the stream stops being MySQL-framed."""
    reader = PacketReader(max_payload=1 << 24)
    for frame, piece in direction.pieces():
        try:
            for packet in reader.feed(piece):
                yield frame, who, packet
        except ProtocolError:
            return  # TLS records or compressed data: not plain framing any more


def _starts_with_greeting(packets) -> bool:
    if not packets:
        return False
    first = packets[0][2]
    return first.seq == 0 and first.payload[:1] in (b"\x0a", b"\x09", b"\xff")


def classify(conn: Connection):
    """Yield (kind, payload, caps) for each connection-phase packet of ``conn``."""
    server = list(_packets(conn.server, "S"))
    if not conn.syn_seen and not _starts_with_greeting(server):
        conn.swap()  # no SYN: the server is the side that speaks first
        server = list(_packets(conn.server, "S"))
    if not _starts_with_greeting(server):
        return  # not a MySQL connection seen from its start
    client = list(_packets(conn.client, "C"))
    merged = sorted(server + client, key=lambda item: item[0])  # stable: stream order kept
    state = "greeting"
    caps = None
    for _, who, packet in merged:
        payload = packet.payload
        first = payload[0] if payload else None
        if state == "greeting":
            if who != "S":
                return
            if first == 0xFF:
                yield "err", payload, None  # refused before the greeting
                return
            yield GREETING_KINDS[first], payload, None
            state = "response"
        elif state == "response":
            if who != "C":
                continue
            flag_lo = payload[0] | payload[1] << 8
            if flag_lo & CLIENT_PROTOCOL_41:
                caps = int.from_bytes(payload[:4], "little")
                if len(payload) == 32 and caps & CLIENT_SSL:
                    yield "ssl_request", payload, None
                    return  # TLS follows
                yield "handshake_response41", payload, None
            else:
                caps = flag_lo
                yield "handshake_response320", payload, None
            state = "auth"
        elif state in ("auth", "change_user"):
            if who == "C":
                yield "auth_switch_response", payload, caps
                continue
            if first == 0x00:
                yield "ok", payload, caps
            elif first == 0xFF:
                yield "err", payload, caps
            elif first == 0xFE:
                kind = "old_auth_switch_request" if len(payload) == 1 else "auth_switch_request"
                yield kind, payload, caps
                continue
            elif first == 0x01:
                yield "auth_more_data", payload, caps
                continue
            elif first == 0x02 and caps & CLIENT_MULTI_FACTOR_AUTHENTICATION:
                yield "auth_next_factor", payload, caps
                continue
            else:
                continue  # raw plugin data (MariaDB): no kind of its own
            if state == "auth" and caps & CLIENT_COMPRESS:
                return  # the command phase is compressed
            state = "command"
        elif state == "command":
            if who == "C" and packet.seq == 0 and first == 0x11:
                yield "com_change_user", payload, caps
                state = "change_user"


# --- the test -----------------------------------------------------------------

#: at least this many corpus packets per kind (what the shared captures hold today)
MINIMUM = {
    "handshake_v10": 400,
    "handshake_response41": 400,
    "ssl_request": 5,
    "auth_switch_request": 10,
    "old_auth_switch_request": 2,
    "auth_switch_response": 20,
    "auth_more_data": 15,
    "ok": 400,
    "err": 15,
    "com_change_user": 2,
}


def _catalog_connections() -> dict[str, int]:
    with (PUBLIC / "CATALOG.tsv").open(newline="") as fh:
        return {row["path"]: int(row["connections"]) for row in csv.DictReader(fh, delimiter="\t")}


def test_every_connection_phase_packet_round_trips():
    require_shared()
    captures = public_captures() + lab_sample_captures()
    assert captures, "no captures found under ../shared/captures"
    counts: Counter[str] = Counter()
    failures = []
    greeted: dict[Path, int] = {}
    for path in captures:
        greeted[path] = 0
        for conn in tcp_connections(path):
            for kind, payload, caps in classify(conn):
                if kind.startswith("handshake_v"):
                    greeted[path] += 1
                try:
                    again = build(kind, parse(kind, payload, caps=caps), caps=caps)
                except ProtocolError as exc:
                    failures.append(f"{path.name}: {kind}: {exc}")
                    continue
                if again != payload:
                    failures.append(f"{path.name}: {kind}: round trip differs")
                counts[kind] += 1
    print("\nround-tripped corpus packets per kind:")
    for kind, n in sorted(counts.items()):
        print(f"  {kind:26} {n}")
    assert not failures, "\n".join(failures[:20])
    for kind, minimum in MINIMUM.items():
        assert counts[kind] >= minimum, f"only {counts[kind]} {kind} packets (want {minimum})"
    # we saw every greeting-started connection the catalogue lists
    expected = _catalog_connections()
    for path in public_captures():
        rel = path.relative_to(PUBLIC).as_posix()
        assert greeted[path] == expected[rel], rel


@pytest.mark.parametrize("kind", ["handshake_v10", "ok", "handshake_response41"])
def test_corpus_packets_also_parse_from_any_offset_truncation(kind):
    """Cutting a real packet short never raises anything but ProtocolError."""
    require_shared()
    seen = 0
    for path in lab_sample_captures()[:6]:
        for conn in tcp_connections(path):
            for k, payload, caps in classify(conn):
                if k != kind:
                    continue
                seen += 1
                for cut in range(len(payload)):
                    try:
                        obj = parse(kind, payload[:cut], caps=caps)
                    except ProtocolError as exc:
                        assert exc.kind == kind and exc.offset is not None
                        assert 0 <= exc.offset <= cut
                    else:
                        assert build(kind, obj, caps=caps) == payload[:cut]
    assert seen
