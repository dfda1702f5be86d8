# scapy.contrib.description = MySQL/MariaDB connection phase (mysqlwire, stateful and plugin-aware)
# scapy.contrib.status = loads
"""A Scapy layer for MySQL packets, decoded with mysqlwire's grammars.

Opt-in (Scapy's own ``load_contrib('mysql')`` binds 3306 to its stateless
classes; this module binds 3306 to ours when imported)::

    from scapy.all import rdpcap
    from mysqlwire.scapy import MySQL, dissect_packets

    pkts = rdpcap("x.pcap")
    pkts[3][MySQL].show()          # header + decoded payload (stateless guess)
    conns = dissect_packets(pkts)  # stateful: the same records as `mysqlwire dissect`

A single packet has no connection state, so :attr:`MySQL.kind` is a guess
from the sequence id, direction and first byte (``0xFE`` is an auth switch in
the connection phase but EOF later; ``0x01`` is AuthMoreData or raw plugin
data...).  :func:`dissect_packets` follows each TCP connection with the
handshake state machine and decides exactly.  ``sniff(session=TCPSession,
prn=...)`` works too: :meth:`MySQL.tcp_reassemble` joins frames split over
segments.
"""

from __future__ import annotations

from scapy.fields import ByteField, LEThreeBytesField, StrLenField
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, bind_bottom_up, bind_layers

from .errors import ProtocolError

MYSQL_PORT = 3306


def guess_kind(payload: bytes, seq: int, from_server: bool) -> str | None:
    """Stateless best guess of a packet kind (see the module docstring)."""
    if not payload:
        return None
    first = payload[0]
    if from_server:
        if seq == 0:
            return {0x0A: "handshake_v10", 0x09: "handshake_v9", 0xFF: "err"}.get(first)
        if first == 0x00:
            return "ok"
        if first == 0xFF:
            return "err"
        if first == 0xFE:
            if len(payload) == 1:
                return "old_auth_switch_request"
            if len(payload) < 9 and seq > 4:
                return "eof"
            return "auth_switch_request"
        if first == 0x01:
            return "auth_more_data"
        return None
    if seq == 1 and len(payload) == 32:
        return "ssl_request"
    if seq in (1, 2) and len(payload) >= 32 and payload[1] & 0x02:  # CLIENT_PROTOCOL_41 (bit 9)
        return "handshake_response41"
    if seq == 0 and first == 0x11:
        return "com_change_user"
    return "auth_switch_response" if seq > 1 else None


class MySQL(Packet):
    """One MySQL packet: 3-byte length, sequence id, payload."""

    name = "MySQL"
    fields_desc = [
        LEThreeBytesField("length", None),
        ByteField("seq", 0),
        StrLenField("payload_data", b"", length_from=lambda p: p.length),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            n = len(pkt) - 4
            pkt = n.to_bytes(3, "little") + pkt[3:]
        return pkt + pay

    def extract_padding(self, s):
        # what follows this packet in the segment is the next MySQL packet
        # (the payload, chained by guess_payload_class), never padding
        return s, None

    def guess_payload_class(self, payload):
        # several MySQL packets in one segment: chain them
        return MySQL if len(payload) >= 4 else Packet.guess_payload_class(self, payload)

    @property
    def from_server(self) -> bool:
        tcp = self.firstlayer().getlayer(TCP) if self.firstlayer() is not self else None
        return bool(tcp is not None and tcp.sport in _server_ports())

    @property
    def kind(self) -> str | None:
        return guess_kind(bytes(self.payload_data), self.seq, self.from_server)

    @property
    def decoded(self):
        """The Construct tree of the payload (stateless guess), or None."""
        kind = self.kind
        if kind is None:
            return None
        from .protocol import parse

        try:
            return parse(kind, bytes(self.payload_data))
        except ProtocolError:
            return None

    def mysummary(self) -> str:
        return self.sprintf(f"MySQL seq=%seq% len=%length% {self.kind or 'data'}")

    def show_decoded(self) -> None:
        """Print the header and the decoded fields."""
        from .protocol import to_jsonable

        print(self.mysummary())
        tree = self.decoded
        if tree is not None:
            for k, v in to_jsonable(tree).items():
                print(f"  {k}: {v}")

    @classmethod
    def tcp_reassemble(cls, data, metadata, session=None):
        """TCPSession hook: return a packet once every frame in ``data`` is complete."""
        pos = 0
        n = len(data)
        while pos + 4 <= n:
            length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
            pos += 4 + length
        if pos != n:
            return None
        return cls(data)


_PORTS: set[int] = {MYSQL_PORT}


def _server_ports() -> set[int]:
    return _PORTS


def bind_port(port: int) -> None:
    """Decode TCP ``port`` as MySQL too (dissection only; what is built is unchanged)."""
    _PORTS.add(port)
    bind_bottom_up(TCP, MySQL, sport=port)
    bind_bottom_up(TCP, MySQL, dport=port)


bind_layers(TCP, MySQL, sport=MYSQL_PORT)
bind_layers(TCP, MySQL, dport=MYSQL_PORT)


def _segment(pkt):
    from .capture.decode import ACK, TcpSegment

    tcp = pkt.getlayer(TCP)
    if tcp is None:
        return None
    ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
    if ip is None:
        return None
    payload = bytes(tcp.payload)
    # scapy may keep Ethernet padding in the payload: trust the IP length
    if IP in pkt and pkt[IP].len is not None:
        ihl = pkt[IP].ihl * 4
        want = pkt[IP].len - ihl - tcp.dataofs * 4
        if 0 <= want < len(payload):
            payload = payload[:want]
    flags = int(tcp.flags) if tcp.flags is not None else ACK
    return TcpSegment.make(
        ip.src, tcp.sport, ip.dst, tcp.dport, tcp.seq, tcp.ack or 0, flags, payload
    )


def dissect_packets(
    packets, *, ports=(MYSQL_PORT,), detect: bool = False, keylog=None, packets_detail: bool = True
):
    """Stateful decoding of a Scapy PacketList (or any iterable of packets):
    the same :class:`~mysqlwire.model.Connection` records `mysqlwire dissect` gives."""
    from .dissect import CaptureSummary, DissectOptions, Dissector

    opts = DissectOptions(
        ports=tuple(ports), detect=detect, keylog=keylog, with_packets=packets_detail
    )
    engine = Dissector(opts, CaptureSummary(path="<scapy>"))
    out = []
    for pkt in packets:
        seg = _segment(pkt)
        if seg is not None:
            engine.add(float(pkt.time), seg)
            out.extend(engine.drain())
    out.extend(engine.finish())
    return out


__all__ = ["MySQL", "bind_port", "dissect_packets", "guess_kind"]
