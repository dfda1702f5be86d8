"""Hostile lengths: memory stays bounded, time stays linear.

Two kinds of checks:

* in-process (fast): the state machine and the reassembler fed endless /
  oversized input directly; bounded event counts, bounded retained bytes
  (tracemalloc), and the anomaly that says why a connection is not followed.
* subprocess (real ``mysqlwire dissect``): synthetic captures written on the
  fly -- a packet claiming 16 MiB, endless 0xFFFFFF continuation chunks, a
  capture of many 1-byte segments, a connection that never ends (command phase
  and connection phase), an out-of-order flood.  Peak RSS (VmHWM) is asserted
  against generous bounds; wall time only as a growth ratio between two sizes
  (never an absolute limit).  The numbers are printed (``pytest -s``) and
  recorded in docs/limits.md.

Set ``MYSQLWIRE_BIG=1`` to run the large sizes (a million segments) too.
"""

from __future__ import annotations

import os
import tracemalloc

from mysqlwire.handshake import MAX_ANOMALIES, MAX_PHASE_PACKETS, NEED_DATA, Handshake
from mysqlwire.protocol.framing import PacketReader, frame
from tests.test_robust_support import (
    CAPTURES,
    tcp_streams,
)

BIG = os.environ.get("MYSQLWIRE_BIG") == "1"
MIB = 1024 * 1024
RSS_LIMIT_MB = 300

# A real login (MariaDB 10.11, PyMySQL, mysql_native_password): greeting,
# response, OK as framed on the wire.
_LOGIN = tcp_streams(CAPTURES / "lab-samples" / "mariadb_pymysql_native_ok.pcap")[0]
_SRV = PacketReader().feed(_LOGIN.server_bytes)
_CLI = PacketReader().feed(_LOGIN.client_bytes)
GREETING = frame(_SRV[0].payload, 0)
RESPONSE = frame(_CLI[0].payload, 1)
OK = frame(_SRV[1].payload, 2)


def drain(hs: Handshake) -> list:
    out = []
    while (ev := hs.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


# --- the state machine, in process ------------------------------------------------


def test_endless_connection_phase_is_cut_off():
    """A client that never stops sending auth packets: the connection phase is
    followed for MAX_PHASE_PACKETS packets, then abandoned with one anomaly;
    events and retained bytes stay bounded whatever comes after."""
    hs = Handshake()
    hs.receive_data("server", GREETING)
    hs.receive_data("client", RESPONSE)
    events = drain(hs)
    blob = b"".join(frame(b"z" * 10, (i + 2) & 0xFF) for i in range(1000))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(200):  # 200k packets, 2.8 MB
            hs.receive_data("client", blob)
            events += drain(hs)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert hs.state == "BROKEN"
    anomalies = [e.detail for e in events if e.kind == "anomaly"]
    assert any("not followed further" in a for a in anomalies), anomalies[-3:]
    assert len(events) <= MAX_PHASE_PACKETS + MAX_ANOMALIES + 2
    assert grown < 512 * 1024, grown  # the 2.8 MB fed are not kept


def test_every_packet_out_of_sequence_gives_bounded_anomalies():
    hs = Handshake()
    hs.receive_data("server", GREETING)
    hs.receive_data("client", RESPONSE)
    drain(hs)
    # seq 0 every time: one "sequence id" anomaly per packet, capped
    hs.receive_data("client", b"".join(frame(b"x", 0) for _ in range(500)))
    anomalies = [e.detail for e in drain(hs) if e.kind == "anomaly"]
    assert len(anomalies) == MAX_ANOMALIES
    assert "further ones are not reported" in anomalies[-1]


def test_raw_copy_of_the_connection_phase_is_trimmed():
    """The bytes kept for re-framing (TLS/compression switch) are only those of
    the packet in progress, not the whole connection phase."""
    hs = Handshake()
    hs.receive_data("server", GREETING)
    hs.receive_data("client", RESPONSE)
    for i in range(50):
        hs.receive_data("client", frame(b"y" * 1000, (i + 2) & 0xFF))
    hs.receive_data("client", frame(b"w" * 100, 60)[:50])  # half a packet
    drain(hs)
    assert hs.state == "AUTH"
    assert len(hs._dirs["client"].raw) == 50


def test_gaps_after_the_connection_is_abandoned_are_silent():
    hs = Handshake()
    hs.receive_data("server", GREETING)
    hs.gap("client", 10)
    for _ in range(1000):
        hs.gap("client", 1)
    evs = drain(hs)
    assert [e.detail for e in evs if e.kind == "anomaly"] == [
        "10 bytes missing from the capture",
        "cannot follow the connection phase across missing bytes",
    ]


def test_16mib_claim_and_endless_continuation_bounded_by_max_packet():
    hs = Handshake(max_packet=64 * 1024)
    hs.receive_data("server", GREETING)
    chunk = b"\xff\xff\xff\x01" + bytes(1 << 16)
    tracemalloc.start()
    try:
        for _ in range(64):  # 4 MiB of a packet announcing 16 MiB
            hs.receive_data("client", chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    evs = drain(hs)
    assert hs.state == "BROKEN"
    assert [e.kind for e in evs][-1] == "anomaly"
    assert "exceeds max_payload 65536" in evs[-1].detail
    assert peak < 1 * MIB, peak
