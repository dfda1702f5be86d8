"""Hostile captures built on the fly (issue 20, capture cases): zlib bombs in the
compressed protocol and huge TSO frames (IP total length 0) in the connection
phase.  Each one runs the real ``mysqlwire dissect`` (and ``redact``) in a
fresh interpreter: peak RSS below 300 MiB, one record with the anomaly that
says why the connection is not followed further, exit status 0/1, no
traceback.  Wall time is printed (``pytest -s``, recorded in docs/limits.md),
never asserted; the subprocess timeout only guards against a hang."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from mysqlwire.errors import ProtocolError
from mysqlwire.protocol.framing import (
    INFLATE_CHUNK,
    MAX_INNER_PACKETS,
    CompressedReader,
    PacketReader,
    frame,
)
from tests.test_robust_support import CAPTURES, run_measured, tcp_streams

MIB = 1024 * 1024
RSS_LIMIT_MB = 300

# A real compressed login (MySQL CLI, MariaDB): greeting, response, OK as on
# the wire; compression starts after the OK.
_LOGIN = tcp_streams(CAPTURES / "lab-samples" / "lab_cli_compressed_ok.pcap")[0]
_SRV = PacketReader().feed(_LOGIN.server_bytes)
_CLI = PacketReader().feed(_LOGIN.client_bytes)
GREETING = frame(_SRV[0].payload, 0)
RESPONSE = frame(_CLI[0].payload, 1)
OK = frame(_SRV[1].payload, 2)
assert _SRV[1].payload[:1] == b"\x00"


def compressed(inner: bytes, seq: int) -> bytes:
    body = zlib.compress(inner, 9)
    return struct.pack("<I", len(body) | seq << 24) + len(inner).to_bytes(3, "little") + body


class Pcap:
    """Ethernet/IPv4/TCP frames; a payload over 65495 bytes gets IP total
    length 0, as a capture of TSO/GRO traffic does."""

    def __init__(self, path: Path):
        self.fh = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 1 << 26, 1))
        self.t = 1_700_000_000.0
        self.seq = {True: 1000, False: 5000}

    def seg(self, from_client: bool, flags: int, payload: bytes = b"") -> None:
        c, s = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
        src, dst, sp, dp = (c, s, 40000, 3306) if from_client else (s, c, 3306, 40000)
        seq, ack = self.seq[from_client], self.seq[not from_client]
        tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 0x50, flags, 65535, 0, 0)
        tot = 40 + len(payload)
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, tot if tot < 65536 else 0, 1, 0x4000, 64, 6, 0, src, dst
        )
        fr = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00" + ip + tcp
        self.t += 1e-4
        sec = int(self.t)
        n = len(fr) + len(payload)
        self.fh.write(struct.pack("<IIII", sec, int((self.t - sec) * 1e6), n, n))
        self.fh.write(fr)
        self.fh.write(payload)
        self.seq[from_client] = (seq + len(payload) + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF

    def open(self) -> Pcap:
        self.seg(True, 0x02)
        self.seg(False, 0x12)
        self.seg(True, 0x10)
        return self

    def send(self, from_client: bool, data: bytes) -> None:
        self.seg(from_client, 0x18, data)

    def close(self) -> None:
        self.seg(True, 0x11)
        self.seg(False, 0x11)
        self.fh.close()


def login(path: Path) -> Pcap:
    p = Pcap(path).open()
    p.send(False, GREETING)
    p.send(True, RESPONSE)
    p.send(False, OK)
    return p


def dissect(pcap: Path, tmp_path: Path, *opts: str) -> dict:
    run, rss, secs = run_measured(
        ["dissect", "--format", "jsonl", *opts, pcap], tmp_path, timeout=300
    )
    print(f"\n{pcap.name} {' '.join(opts)}: peak RSS {rss:.0f} MiB, {secs:.2f} s")
    assert "Traceback" not in run.stderr, run.stderr
    assert run.code in (0, 1), run.stderr
    assert rss < RSS_LIMIT_MB, rss
    (rec,) = [json.loads(line) for line in run.stdout.splitlines()]
    return rec


# --- the compressed reader alone ------------------------------------------------------


def test_inflation_refused_before_allocation_past_max_inflate():
    r = CompressedReader(max_inflate=65536)
    bomb = compressed(bytes(MIB), 0)
    with pytest.raises(
        ProtocolError, match="announces 1048576 inflated bytes, more than max_packet 65536"
    ):
        list(r.chunks(bomb[:7]))  # the header alone is enough to refuse


def test_inflation_in_bounded_pieces_and_stoppable():
    r = CompressedReader()
    data = compressed(bytes(range(256)) * 40_000, 3) + compressed(b"\x05\x00\x00\x00hello", 4)
    pieces = r.chunks(data)
    first = next(pieces)
    assert len(first) == INFLATE_CHUNK
    pieces.close()  # the rest of that packet is dropped, the next one stays
    assert r.packets == 1
    assert r.feed(b"") == b"\x05\x00\x00\x00hello" and r.last_seq == 4


def test_inflated_length_still_checked():
    r = CompressedReader()
    good = compressed(b"x" * 1000, 0)
    lying = good[:4] + (999).to_bytes(3, "little") + good[7:]
    with pytest.raises(ProtocolError, match="past its uncompressed length"):
        r.feed(lying)
    r = CompressedReader()
    lying = good[:4] + (1001).to_bytes(3, "little") + good[7:]
    with pytest.raises(ProtocolError, match="short of its uncompressed length"):
        r.feed(lying)


# --- real runs ----------------------------------------------------------------------


def test_zlib_bomb_in_one_tso_frame(tmp_path):
    """One TSO frame (~1 MB) holding 64 compressed packets of 16 MiB of zeros
    each (every inner packet empty) from a logged-in client."""
    pcap = tmp_path / "bomb.pcap"
    p = login(pcap)
    bomb = compressed(bytes(0xFFFFFF), 0)
    p.send(True, bomb * 64)
    p.close()
    assert pcap.stat().st_size < 2 * MIB
    rec = dissect(pcap, tmp_path)
    assert rec["outcome"] == "ok" and rec["compressed"] is True
    assert any(f"holds more than {MAX_INNER_PACKETS} packets" in a for a in rec["anomalies"]), rec[
        "anomalies"
    ]
    rec = dissect(pcap, tmp_path, "--max-packet", "65536")
    assert any(
        "announces 16777215 inflated bytes, more than max_packet 65536" in a
        for a in rec["anomalies"]
    ), rec["anomalies"]


def test_zlib_bomb_as_the_answer_to_a_query(tmp_path):
    """The server answers the first query with compressed packets inflating to
    16 MiB each: one huge row packet (skipped, never buffered), then zeros."""
    pcap = tmp_path / "answer.pcap"
    p = login(pcap)
    p.send(True, compressed(frame(b"\x03SELECT 1", 0), 0))
    big = frame(b"\x01" + bytes(0xFFFFFF - 8), 1)[:0xFFFFFF]  # one inner packet, cut short
    p.send(False, compressed(big, 1) * 8 + compressed(bytes(0xFFFFFF), 9) * 8)
    p.close()
    rec = dissect(pcap, tmp_path)
    assert rec["outcome"] == "ok"
    assert rec["command_error"] is None


@pytest.mark.parametrize("mib", [16, 63])
def test_tso_frame_of_zeros_in_the_connection_phase(tmp_path, mib):
    """After the greeting and the response, one TSO frame of zeros from the
    client (every 4 bytes an empty auth-data packet): the 1024-packet phase
    bound applies as bytes arrive, not once the frame is cut into packets."""
    pcap = tmp_path / f"zeros{mib}.pcap"
    p = Pcap(pcap).open()
    p.send(False, GREETING)
    p.send(True, RESPONSE)
    p.send(True, bytes(mib * MIB - 200))
    p.close()
    rec = dissect(pcap, tmp_path)
    assert rec["outcome"] == "incomplete"
    assert any("connection phase longer than 1024 packets" in a for a in rec["anomalies"]), rec[
        "anomalies"
    ]
    # redact reads the same way
    out = tmp_path / f"zeros{mib}.redacted.pcap"
    run, rss, secs = run_measured(["redact", pcap, "-o", out], tmp_path, timeout=300)
    print(f"redact {pcap.name}: peak RSS {rss:.0f} MiB, {secs:.2f} s")
    assert "Traceback" not in run.stderr, run.stderr
    assert rss < RSS_LIMIT_MB, rss
