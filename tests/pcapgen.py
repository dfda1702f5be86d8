"""Write small synthetic pcap files for tests (Ethernet/IPv4/TCP, valid checksums)."""

from __future__ import annotations

import struct
from pathlib import Path

SYN, ACK, FIN, PSH = 0x02, 0x10, 0x01, 0x08


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_frame(
    src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int, payload: bytes = b""
) -> bytes:
    sip = bytes(int(x) for x in src.split("."))
    dip = bytes(int(x) for x in dst.split("."))
    tcp = struct.pack(
        "!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0
    )
    pseudo = sip + dip + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    tcp = tcp[:16] + struct.pack("!H", _csum(pseudo + tcp + payload)) + tcp[18:]
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 6, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    eth = b"\x00\x11\x22\x33\x44\x55" + b"\x66\x77\x88\x99\xaa\xbb" + b"\x08\x00"
    return eth + ip + tcp + payload


def write_pcap(path: Path, frames: list[tuple[float, bytes]]) -> None:
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, frame in frames:
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            fh.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)


def pcap_with_streams(
    path: Path,
    streams: list[tuple[bytes, bytes]],
    *,
    server: str = "10.0.0.2",
    port: int = 3306,
    close: bool = True,
    t0: float = 1_700_000_000.0,
) -> None:
    """One TCP connection per (server_bytes, client_bytes): SYN handshake, the
    server's bytes, then the client's bytes, then FIN (when ``close``)."""
    frames: list[tuple[float, bytes]] = []
    t = t0
    for i, (srv, cli) in enumerate(streams):
        client = "10.0.0.1"
        cport = 40000 + i
        cseq, sseq = 1000, 5000
        frames.append((t, tcp_frame(client, cport, server, port, cseq, 0, SYN)))
        frames.append(
            (t + 0.0001, tcp_frame(server, port, client, cport, sseq, cseq + 1, SYN | ACK))
        )
        frames.append((t + 0.0002, tcp_frame(client, cport, server, port, cseq + 1, sseq + 1, ACK)))
        cseq += 1
        sseq += 1
        t += 0.001
        if srv:
            frames.append((t, tcp_frame(server, port, client, cport, sseq, cseq, PSH | ACK, srv)))
            sseq += len(srv)
            t += 0.001
        if cli:
            frames.append((t, tcp_frame(client, cport, server, port, cseq, sseq, PSH | ACK, cli)))
            cseq += len(cli)
            t += 0.001
        if close:
            frames.append((t, tcp_frame(client, cport, server, port, cseq, sseq, FIN | ACK)))
            frames.append(
                (t + 0.0001, tcp_frame(server, port, client, cport, sseq, cseq + 1, FIN | ACK))
            )
            t += 0.001
    write_pcap(path, frames)
