"""Synthetic TCP conversations for discovery tests: any port, with or without
the SYN handshake (a capture that joins an open connection), FIN, keep-alives."""

from __future__ import annotations

import struct
from pathlib import Path

from tests.pcapgen import ACK, FIN, PSH, SYN, tcp_frame, write_pcap


def packet(seq: int, payload: bytes) -> bytes:
    """One MySQL packet: 3-byte length, sequence id, payload."""
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def greeting(version: bytes = b"8.0.36", plugin: bytes = b"caching_sha2_password") -> bytes:
    """A protocol-10 greeting packet (sequence 0), as MySQL 8 sends it."""
    nonce = bytes(range(0x21, 0x21 + 20))
    body = (
        b"\x0a"
        + version
        + b"\x00"
        + struct.pack("<I", 42)
        + nonce[:8]
        + b"\x00"
        + struct.pack("<H", 0xF7FF)
        + b"\xff"
        + struct.pack("<H", 2)
        + struct.pack("<H", 0xDFFF)
        + bytes([21])
        + b"\x00" * 10
        + nonce[8:]
        + b"\x00"
        + plugin
        + b"\x00"
    )
    return packet(0, body)


def err(seq: int, code: int, message: bytes, sqlstate: bytes | None = b"HY000") -> bytes:
    body = b"\xff" + struct.pack("<H", code)
    if sqlstate is not None:
        body += b"#" + sqlstate
    return packet(seq, body + message)


class Conversation:
    """Frames of one TCP connection; ``say(from_client, data)`` in order."""

    def __init__(
        self,
        frames: list,
        *,
        client=("10.0.0.1", 40000),
        server=("10.0.0.2", 3306),
        syn: bool = True,
        t0: float = 1_700_000_000.0,
    ):
        self.frames = frames
        self.client, self.server = client, server
        self.seq = {True: 1000, False: 5000}
        self.t = t0
        if syn:
            self._frame(True, SYN, seq_delta=1)
            self._frame(False, SYN | ACK, seq_delta=1)
            self._frame(True, ACK)

    def _frame(
        self, from_client: bool, flags: int, payload: bytes = b"", *, seq=None, seq_delta: int = 0
    ) -> None:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        s = self.seq[from_client] if seq is None else seq
        ack = self.seq[not from_client] if flags != SYN else 0
        self.frames.append(
            (self.t, tcp_frame(src[0], src[1], dst[0], dst[1], s, ack, flags, payload))
        )
        self.t += 0.0005
        if seq is None:
            self.seq[from_client] += len(payload) + seq_delta

    def say(self, from_client: bool, data: bytes) -> Conversation:
        self._frame(from_client, PSH | ACK, data)
        return self

    def keepalive(self, from_client: bool, nbytes: int = 0) -> Conversation:
        """A TCP keep-alive probe: one byte below the next sequence number."""
        self._frame(from_client, ACK, b"\x00" * nbytes, seq=self.seq[from_client] - 1)
        return self

    def fin(self, from_client: bool) -> Conversation:
        self._frame(from_client, FIN | ACK, seq_delta=1)
        return self


def write(path: Path, frames: list) -> Path:
    write_pcap(path, sorted(frames, key=lambda f: f[0]))
    return path
