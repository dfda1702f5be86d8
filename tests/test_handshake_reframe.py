"""When the framing changes mid-delivery (an SSLRequest followed by the TLS
ClientHello, the final OK followed by compressed packets), the bytes after the
switching packet are handed on exactly, however the stream was cut: whole runs
of one sender's bytes in one delivery, one byte at a time, or odd pieces."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mysqlwire.handshake import CLIENT, NEED_DATA, SERVER, Handshake
from tests.test_handshake import _chunks

SHARED = (
    Path(os.environ.get("MYSQLWIRE_SHARED") or Path(__file__).resolve().parents[2] / "shared")
    / "captures"
    / "lab-samples"
)
CAPTURES = Path(__file__).resolve().parent.parent / "captures"
SAMPLES = sorted(
    p
    for d in (CAPTURES / "lab-samples", CAPTURES / "lab", CAPTURES / "clients", SHARED)
    if d.is_dir()
    for p in d.glob("*.pcap")
    if "3407" not in p.name
)
SWITCHING = [p for p in SAMPLES if "tls" in p.name or "compressed" in p.name]


def _runs(chunks):
    """Consecutive chunks of one sender joined into one delivery."""
    out: list[list] = []
    for sender, data in chunks:
        if out and out[-1][0] == sender:
            out[-1][1] += data
        else:
            out.append([sender, bytes(data)])
    return [(s, bytes(d)) for s, d in out]


def _shifted(runs, by=3):
    """Each run cut ``by`` bytes after every packet boundary (walking the plain
    headers): deliveries of whole packets plus the start of the next one."""
    out = []
    for sender, data in runs:
        cuts = [0]
        pos = 0
        while pos + 4 <= len(data):
            pos += 4 + int.from_bytes(data[pos : pos + 3], "little")
            if pos + by < len(data):
                cuts.append(pos + by)
        cuts.append(len(data))
        out += [(sender, data[a:b]) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
    return out


def _follow(deliveries, split=None):
    hs = Handshake()
    evs = []
    for sender, data in deliveries:
        pieces = (
            [data] if split is None else [data[i : i + split] for i in range(0, len(data), split)]
        )
        for p in pieces:
            hs.receive_data(sender, p)
            while (ev := hs.next_event()) is not NEED_DATA:
                evs.append((ev.sender, ev.kind, ev.seq, ev.plugin, ev.payload, ev.offset))
    tls = (hs.take_tls_bytes(CLIENT), hs.take_tls_bytes(SERVER)) if hs.tls else None
    return evs, tls, hs.state, hs.compressed


def test_the_samples_switch_framing():
    results = [_follow(_runs(_chunks(p))) for p in SWITCHING]
    # an SSLRequest hands over a TLS handshake record, a compressed login ends compressed
    assert any(r[1] is not None and r[1][0][:1] == b"\x16" for r in results)
    assert any(r[3] for r in results)


@pytest.mark.parametrize("pcap", SAMPLES, ids=lambda p: p.stem)
def test_the_bytes_after_a_switch_do_not_depend_on_the_cuts(pcap):
    runs = _runs(_chunks(pcap))
    whole = _follow(runs)
    assert whole[0], "no events"
    for split in (1, 2, 5, 64):
        assert _follow(runs, split) == whole, f"split={split}"
    for by in (1, 3, 4, 9):
        assert _follow(_shifted(runs, by)) == whole, f"shifted by {by}"


@pytest.mark.parametrize("pcap", SWITCHING, ids=lambda p: p.stem)
def test_a_switch_after_another_packet_of_the_same_delivery(pcap):
    # every server run after the greeting starts with one more packet (01 03, an
    # AuthMoreData): the compressed protocol's OK then follows a whole packet in the
    # same delivery, and a cut a few bytes into the OK leaves its start pending
    runs = _runs(_chunks(pcap))
    first_server = next(i for i, (s, _) in enumerate(runs) if s == SERVER)
    second_server = next(i for i, (s, _) in enumerate(runs) if s == SERVER and i > first_server)
    extra = b"\x02\x00\x00\x02\x01\x03"
    # (and bytes after the switching packet in the same delivery: a compressed packet)
    tail = b"\x05\x00\x00\x03\x00\x00\x00\x01\x00\x00\x00\x0e"
    runs = [
        (
            s,
            extra + d + (tail if i == second_server else b"")
            if s == SERVER and i > first_server
            else d,
        )
        for i, (s, d) in enumerate(runs)
    ]
    whole = _follow(runs)
    for by in (1, 3, 4, 9):
        assert _follow(_shifted(runs, by)) == whole, f"shifted by {by}"
    for split in (1, 7):
        assert _follow(runs, split) == whole, f"split={split}"
