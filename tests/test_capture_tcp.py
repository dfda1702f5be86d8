"""mysqlwire.capture.tcp: synthetic streams cut every way, then tshark's follow on real captures."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mysqlwire.capture import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    Reassembler,
    TcpSegment,
    endpoint,
    iter_segments,
    open_capture,
)
from tests.conftest import lab_sample_captures, public_captures, require_shared

C = ("10.0.0.1", 51000)
S = ("10.0.0.2", 3306)
M32 = 0xFFFFFFFF


def mk(src, dst, seq, flags=ACK, payload=b"", ack=0, missing=0) -> TcpSegment:
    return TcpSegment.make(src[0], src[1], dst[0], dst[1], seq, ack, flags, payload, missing)


class Rec:
    """A sink that records everything."""

    def __init__(self, flow):
        self.flow = flow
        self.events: list[tuple] = []
        self.bytes = {True: bytearray(), False: bytearray()}
        self.reasons: list[str] = []

    def data(self, from_initiator, data, ts):
        assert isinstance(data, bytes) and data
        self.events.append(("data", from_initiator, data))
        self.bytes[from_initiator] += data

    def gap(self, from_initiator, nbytes, ts):
        assert nbytes > 0
        self.events.append(("gap", from_initiator, nbytes))

    def closed(self, reason, ts):
        self.reasons.append(reason)

    def gaps(self, from_initiator=None):
        return [
            n
            for kind, fi, n in self.events
            if kind == "gap" and (from_initiator is None or fi == from_initiator)
        ]


def run(segments, *, finish=True, **kw) -> tuple[Reassembler, list[Rec]]:
    recs: list[Rec] = []

    def on_flow(flow):
        rec = Rec(flow)
        recs.append(rec)
        return rec

    r = Reassembler(on_flow, **kw)
    for i, item in enumerate(segments):
        ts, seg = (float(i), item) if isinstance(item, TcpSegment) else item
        r.add(ts, seg)
    if finish:
        r.finish()
    return r, recs


class Conv:
    """A client/server conversation: handshake, data both ways, FINs."""

    def __init__(self, cdata: bytes, sdata: bytes, cisn=1000, sisn=900_000, client=C, server=S):
        self.cdata, self.sdata = cdata, sdata
        self.cisn, self.sisn = cisn & M32, sisn & M32
        self.client, self.server = client, server

    def handshake(self):
        c, s = self.client, self.server
        return [
            mk(c, s, self.cisn, SYN),
            mk(s, c, self.sisn, SYN | ACK, ack=self.cisn + 1),
            mk(c, s, self.cisn + 1, ACK, ack=self.sisn + 1),
        ]

    def pieces(self, from_client: bool, bounds):
        """Segments carrying data[a:b] for each (a, b); ACK field stays at the handshake."""
        data = self.cdata if from_client else self.sdata
        isn = self.cisn if from_client else self.sisn
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        ack = (self.sisn if from_client else self.cisn) + 1
        return [mk(src, dst, isn + 1 + a, ACK | PSH, data[a:b], ack=ack) for a, b in bounds]

    def fins(self):
        c, s = self.client, self.server
        cend = self.cisn + 1 + len(self.cdata)
        send = self.sisn + 1 + len(self.sdata)
        return [
            mk(c, s, cend, FIN | ACK, ack=send),
            mk(s, c, send, FIN | ACK, ack=cend + 1),
            mk(c, s, cend + 1, ACK, ack=send + 1),
        ]


def even_bounds(n: int, size: int):
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def interleave(a, b):
    out = []
    for i in range(max(len(a), len(b))):
        out += a[i : i + 1] + b[i : i + 1]
    return out


RND = random.Random(2024)
CDATA = RND.randbytes(5000)
SDATA = RND.randbytes(7000)


def conversation(size_c=700, size_s=1000, **kw):
    conv = Conv(CDATA, SDATA, **kw)
    body = interleave(
        conv.pieces(True, even_bounds(len(CDATA), size_c)),
        conv.pieces(False, even_bounds(len(SDATA), size_s)),
    )
    return conv, body


def assert_clean(rec: Rec, reason="fin"):
    assert bytes(rec.bytes[True]) == CDATA
    assert bytes(rec.bytes[False]) == SDATA
    assert rec.gaps() == []
    assert rec.reasons == [reason]


# ---------------------------------------------------------------------------
# basic shapes


def test_whole_messages():
    conv, body = conversation()
    r, recs = run(conv.handshake() + body + conv.fins())
    (rec,) = recs
    assert_clean(rec)
    flow = rec.flow
    assert flow.initiator == C and flow.responder == S
    assert flow.syn_seen and flow.index == 0
    assert flow.first_ts == 0.0 and flow.last_ts == float(len(body) + 5)
    assert flow.overlap_conflicts == 0
    assert r.open_flows() == []


def test_byte_by_byte():
    conv = Conv(CDATA[:600], SDATA[:900])
    body = interleave(
        conv.pieces(True, even_bounds(600, 1)), conv.pieces(False, even_bounds(900, 1))
    )
    _, (rec,) = run(conv.handshake() + body + conv.fins())
    assert bytes(rec.bytes[True]) == CDATA[:600]
    assert bytes(rec.bytes[False]) == SDATA[:900]
    assert rec.gaps() == [] and rec.reasons == ["fin"]


def test_events_in_tcp_order_per_direction():
    conv, body = conversation(size_c=2500, size_s=7000)
    _, (rec,) = run(conv.handshake() + body + conv.fins())
    assert rec.events == [
        ("data", True, CDATA[:2500]),
        ("data", False, SDATA),
        ("data", True, CDATA[2500:]),
    ]


def test_shuffled_out_of_order():
    conv, body = conversation(size_c=100, size_s=150)
    for seed in range(5):
        shuffled = body[:]
        random.Random(seed).shuffle(shuffled)
        _, (rec,) = run(conv.handshake() + shuffled + conv.fins())
        assert_clean(rec)


def test_duplicates_and_retransmissions():
    conv, body = conversation(size_c=300, size_s=300)
    rnd = random.Random(5)
    noisy = body[:]
    for _ in range(60):
        i = rnd.randrange(len(body))
        noisy.insert(rnd.randrange(i, len(noisy) + 1), body[i])
    r, (rec,) = run(conv.handshake() + noisy + conv.fins())
    assert_clean(rec)
    assert rec.flow.overlap_conflicts == 0 and r.overlap_conflicts == 0


def test_partial_overlaps_deliver_only_new_bytes():
    conv = Conv(CDATA, SDATA)
    rnd = random.Random(9)
    bounds, a = [], 0
    while a < len(CDATA):
        b = min(len(CDATA), a + rnd.randrange(1, 400))
        bounds.append((max(0, a - rnd.randrange(0, 150)), b))  # overlaps the previous one
        a = b
    segs = conv.pieces(True, bounds)
    rnd.shuffle(segs)
    r, (rec,) = run(conv.handshake() + segs + conv.pieces(False, [(0, len(SDATA))]) + conv.fins())
    assert_clean(rec)
    assert r.overlap_conflicts == 0


def test_overlap_conflict_keeps_first_seen_bytes():
    conv = Conv(b"hello world!", b"")
    first = conv.pieces(True, [(0, 12)])
    evil = mk(C, S, conv.cisn + 1 + 6, ACK, b"WORLD", ack=conv.sisn + 1)
    _, (rec,) = run(conv.handshake() + first + [evil])
    assert bytes(rec.bytes[True]) == b"hello world!"
    assert rec.flow.overlap_conflicts == 1
    # Same in the out-of-order buffer: the first copy of a pending range wins.
    late = conv.pieces(True, [(0, 6)])
    pending = mk(C, S, conv.cisn + 1 + 6, ACK, b"world!", ack=conv.sisn + 1)
    evil2 = mk(C, S, conv.cisn + 1 + 4, ACK, b"o WORLD!", ack=conv.sisn + 1)
    _, (rec,) = run(conv.handshake() + [pending, evil2] + late)
    assert bytes(rec.bytes[True]) == b"hello world!"
    assert rec.flow.overlap_conflicts == 1


# ---------------------------------------------------------------------------
# missing bytes


def test_missing_segment_reported_when_peer_acks_past_it():
    conv = Conv(CDATA[:300], b"")
    a, lost, b = conv.pieces(True, [(0, 100), (100, 180), (180, 300)])
    ack_all = mk(S, C, conv.sisn + 1, ACK, ack=conv.cisn + 1 + 300)
    _, (rec,) = run(conv.handshake() + [a, b, ack_all], finish=False)
    assert rec.events == [
        ("data", True, CDATA[:100]),
        ("gap", True, 80),
        ("data", True, CDATA[180:300]),
    ]
    assert rec.flow.gap_bytes == 80
    assert rec.reasons == []  # still open


def test_missing_segment_reported_at_end_of_capture():
    conv = Conv(CDATA[:300], SDATA[:50])
    a, _lost, b = conv.pieces(True, [(0, 100), (100, 180), (180, 300)])
    _, (rec,) = run(conv.handshake() + [a, b] + conv.pieces(False, [(0, 50)]))
    assert rec.events == [
        ("data", True, CDATA[:100]),
        ("data", False, SDATA[:50]),
        ("gap", True, 80),
        ("data", True, CDATA[180:300]),
    ]
    assert rec.reasons == ["end-of-capture"]


def test_missing_segment_before_fin():
    conv = Conv(CDATA[:300], SDATA[:10])
    a, _lost = conv.pieces(True, [(0, 100), (100, 300)])
    segs = conv.handshake() + [a] + conv.pieces(False, [(0, 10)]) + conv.fins()
    _, (rec,) = run(segs, finish=False)
    assert rec.events[-1] == ("gap", True, 200)
    assert rec.reasons == ["fin"]  # the server acknowledged the FIN: the hole is final


def test_snaplen_cut_payload_is_a_gap():
    conv = Conv(CDATA[:300], b"")
    cut = mk(C, S, conv.cisn + 1, ACK, CDATA[:60], ack=conv.sisn + 1, missing=40)
    rest = conv.pieces(True, [(100, 300)])
    _, (rec,) = run(conv.handshake() + [cut] + rest + conv.fins())
    assert rec.events == [
        ("data", True, CDATA[:60]),
        ("gap", True, 40),
        ("data", True, CDATA[100:300]),
    ]


def test_max_buffer_exceeded_gives_up_the_hole():
    conv = Conv(CDATA, b"")
    segs = conv.pieces(True, even_bounds(len(CDATA), 100))
    lost = segs.pop(1)  # bytes 100..200 never arrive
    r, (rec,) = run(conv.handshake() + segs, max_buffer=1000, finish=False)
    assert rec.gaps(True) == [100]
    assert bytes(rec.bytes[True]) == CDATA[:100] + CDATA[200:]
    assert rec.flow.buffered(True) == 0
    # The retransmission arriving after the hole was given up is old news.
    r.add(99.0, lost)
    assert bytes(rec.bytes[True]) == CDATA[:100] + CDATA[200:]


def test_buffer_stays_within_max_buffer():
    conv = Conv(CDATA, b"")
    segs = conv.pieces(True, even_bounds(len(CDATA), 50))
    segs = segs[:1] + segs[2:]
    flows = []

    class Sink:
        def data(self, *args):
            pass

    r = Reassembler(lambda flow: flows.append(flow) or Sink(), max_buffer=500)
    peak = 0
    for i, s in enumerate(conv.handshake() + segs):
        r.add(float(i), s)
        peak = max(peak, flows[0].buffered(True))
    assert 0 < peak <= 500


# ---------------------------------------------------------------------------
# sequence numbers


@pytest.mark.parametrize("isn", [M32 - 3000, M32, M32 - 1, 2**31 - 5])
def test_sequence_wraparound(isn):
    conv = Conv(CDATA, SDATA, cisn=isn, sisn=isn - 2000)
    body = interleave(
        conv.pieces(True, even_bounds(len(CDATA), 333)),
        conv.pieces(False, even_bounds(len(SDATA), 333)),
    )
    random.Random(isn).shuffle(body)
    _, (rec,) = run(conv.handshake() + body + conv.fins())
    assert_clean(rec)


def test_data_on_syn_is_delivered():
    syn = mk(C, S, 100, SYN, b"fast open")
    _, (rec,) = run([syn, mk(S, C, 7, SYN | ACK, ack=110), mk(C, S, 110, ACK, b"!", ack=8)])
    assert bytes(rec.bytes[True]) == b"fast open!"


def test_keepalive_and_zero_window_probe():
    conv = Conv(CDATA[:200], b"")
    a, b = conv.pieces(True, [(0, 100), (100, 200)])
    keepalive = mk(C, S, conv.cisn + 100, ACK, b"\x00", ack=conv.sisn + 1)  # 1 byte at seq-1
    keepalive_empty = mk(C, S, conv.cisn + 100, ACK, ack=conv.sisn + 1)
    probe = mk(C, S, conv.cisn + 101, ACK, CDATA[100:101], ack=conv.sisn + 1)
    segs = conv.handshake() + [a, keepalive, keepalive_empty, probe, probe, b] + conv.fins()
    r, (rec,) = run(segs)
    assert bytes(rec.bytes[True]) == CDATA[:200]
    assert r.overlap_conflicts == 0
    assert rec.reasons == ["fin"]


def test_timestamps_out_of_order_use_file_order():
    conv, body = conversation(size_c=500, size_s=500)
    segs = conv.handshake() + body + conv.fins()
    stamped = [(1000.0 - i * 3.5, s) for i, s in enumerate(segs)]
    _, (rec,) = run(stamped)
    assert_clean(rec)
    assert rec.flow.first_ts == 1000.0


# ---------------------------------------------------------------------------
# how flows start and end


def test_mid_connection_start_has_no_gap():
    conv = Conv(CDATA, SDATA)
    server_first = conv.pieces(False, [(500, 1500), (1500, 3000)])
    client = conv.pieces(True, [(200, 900)])
    _, (rec,) = run(server_first + client)
    flow = rec.flow
    assert flow.initiator == S  # the first segment's source
    assert not flow.syn_seen
    assert bytes(rec.bytes[True]) == SDATA[500:3000]
    assert bytes(rec.bytes[False]) == CDATA[200:900]
    assert rec.gaps() == []
    assert rec.reasons == ["end-of-capture"]


def test_start_at_syn_ack():
    conv = Conv(CDATA[:300], SDATA[:300])
    hs = conv.handshake()[1:]  # the SYN was not captured
    first_lost = conv.pieces(True, [(0, 100), (100, 300)])[1:]  # nor the client's first bytes
    _, (rec,) = run(hs + first_lost + conv.pieces(False, [(0, 300)]))
    assert rec.flow.initiator == C and not rec.flow.syn_seen
    # The SYN+ACK tells where the client's bytes start, so the loss shows.
    assert rec.events[0] == ("data", False, SDATA[:300])
    assert rec.gaps(True) == [100]
    assert bytes(rec.bytes[True]) == CDATA[100:300]


def test_rst_closes_and_later_segments_are_dropped():
    conv, body = conversation()
    rst = mk(S, C, conv.sisn + 1 + len(SDATA), RST | ACK)
    late = conv.pieces(True, [(0, 10)])
    r, recs = run(conv.handshake() + body + [rst] + late + [rst])
    (rec,) = recs
    assert bytes(rec.bytes[True]) == CDATA and bytes(rec.bytes[False]) == SDATA
    assert rec.reasons == ["rst"]
    assert r.flows_seen == 1


def test_rst_delivers_buffered_data_with_gap():
    conv = Conv(CDATA[:300], b"")
    a, _lost, b = conv.pieces(True, [(0, 100), (100, 200), (200, 300)])
    rst = mk(C, S, conv.cisn + 301, RST)
    _, (rec,) = run(conv.handshake() + [a, b, rst])
    assert rec.events[1:] == [("gap", True, 100), ("data", True, CDATA[200:300])]
    assert rec.reasons == ["rst"]


def test_lone_rst_or_unknown_reset_creates_no_flow():
    r, recs = run([mk(C, S, 5, RST | ACK)])
    assert recs == [] and r.flows_seen == 0


def test_port_reuse_after_close():
    a, body_a = conversation(cisn=1000, sisn=5000)
    b, body_b = conversation(cisn=777_777, sisn=3)
    r, recs = run(a.handshake() + body_a + a.fins() + b.handshake() + body_b + b.fins())
    assert [rec.flow.index for rec in recs] == [0, 1]
    for rec in recs:
        assert_clean(rec)


def test_port_reuse_while_open():
    a, body_a = conversation(cisn=1000, sisn=5000)
    b, body_b = conversation(cisn=10**9, sisn=3)
    r, (first, second) = run(a.handshake() + body_a + b.handshake() + body_b + b.fins())
    assert first.reasons == ["reused"]
    assert bytes(first.bytes[True]) == CDATA
    assert_clean(second)


def test_port_reuse_roles_swapped():
    a, body_a = conversation()
    swapped = Conv(SDATA, CDATA, client=S, server=C, cisn=42, sisn=43)
    body_b = swapped.pieces(True, [(0, len(SDATA))]) + swapped.pieces(False, [(0, len(CDATA))])
    _, (first, second) = run(
        a.handshake() + body_a + a.fins() + swapped.handshake() + body_b + swapped.fins()
    )
    assert first.reasons == ["fin"]
    assert second.flow.initiator == S
    assert bytes(second.bytes[True]) == SDATA and second.reasons == ["fin"]


def test_retransmitted_syn_is_not_reuse():
    conv, body = conversation()
    hs = conv.handshake()
    r, recs = run([hs[0], hs[0], hs[1], hs[0], hs[1], hs[2]] + body + conv.fins())
    assert len(recs) == 1
    assert_clean(recs[0])


def test_late_segments_after_fin_go_to_the_tombstone():
    conv, body = conversation()
    segs = conv.handshake() + body + conv.fins()
    r, recs = run(segs + [segs[-1], segs[-2], body[3]])
    assert len(recs) == 1 and r.flows_seen == 1
    assert_clean(recs[0])


def test_ignored_flow_is_not_asked_again():
    conv, body = conversation()
    calls = []

    def on_flow(flow):
        calls.append(flow)
        return None

    r = Reassembler(on_flow)
    for i, s in enumerate(conv.handshake() + body):
        r.add(float(i), s)
    assert len(calls) == 1 and calls[0].sink is None
    # A new connection on the same 4-tuple is asked about.
    other = Conv(CDATA, SDATA, cisn=12345, sisn=54321)
    for s in other.handshake():
        r.add(100.0, s)
    assert len(calls) == 2
    r.finish()


def test_idle_timeout_closes_quiet_flows():
    conv, body = conversation()
    other = Conv(b"x", b"", client=("10.0.0.9", 4000))
    segs = [(float(i), s) for i, s in enumerate(conv.handshake() + body[:4])]
    segs += [(1000.0, s) for s in other.handshake() + other.pieces(True, [(0, 1)])]
    segs += [(1001.0, body[4])]  # the quiet flow speaks again: a new, mid-stream flow
    _, recs = run(segs, idle_timeout=60.0)
    assert recs[0].reasons == ["idle"]
    assert len(recs) == 3 and not recs[2].flow.syn_seen
    assert recs[2].flow.initiator == (body[4].src, body[4].sport)


def test_mute_and_unmute():
    conv = Conv(CDATA[:300], SDATA[:3000])
    server = conv.pieces(False, even_bounds(3000, 500))
    recs = []

    class Sink(Rec):
        def data(self, fi, data, ts):
            super().data(fi, data, ts)
            if not fi and len(self.bytes[False]) == 500:
                self.flow.mute(False)

    r = Reassembler(lambda f: recs.append(Sink(f)) or recs[-1])
    segs = conv.handshake() + conv.pieces(True, [(0, 300)]) + server
    # Out-of-order server bytes while muted are not buffered.
    segs[4:8] = [segs[4], segs[6], segs[5], segs[7]]
    for i, s in enumerate(segs[:8]):
        r.add(float(i), s)
    (rec,) = recs
    assert rec.flow.is_muted(False) and rec.flow.buffered(False) == 0
    rec.flow.unmute(False)
    for s in segs[8:] + conv.fins():
        r.add(50.0, s)
    r.finish()
    assert bytes(rec.bytes[False]) == SDATA[:500] + SDATA[2000:3000]
    assert rec.gaps() == []
    assert rec.reasons == ["fin"]


def test_ipv6_flow():
    c6, s6 = ("2001:db8::10", 40000), ("::1", 3306)
    conv = Conv(CDATA[:100], SDATA[:100], client=c6, server=s6)
    body = conv.pieces(True, [(0, 100)]) + conv.pieces(False, [(0, 100)])
    _, (rec,) = run(conv.handshake() + body + conv.fins())
    assert rec.flow.initiator == c6 and rec.flow.ipv6
    assert endpoint(*rec.flow.responder) == "[::1]:3306"
    assert bytes(rec.bytes[False]) == SDATA[:100]


def test_many_short_connections_keep_state_bounded():
    r = Reassembler(lambda f: Rec(f))
    for i in range(30_000):
        conv = Conv(b"q", b"a", client=("10.1.0.1", 1024 + i % 60000), cisn=i, sisn=i * 7)
        for s in conv.handshake() + conv.pieces(True, [(0, 1)]) + conv.pieces(False, [(0, 1)]):
            r.add(float(i), s)
        for s in conv.fins():
            r.add(float(i), s)
    assert r.open_flows() == []
    assert len(r._flows) < 2 * 4096 * 2 + 10  # tombstones pruned, not one per connection
    assert r.flows_seen == 30_000


# ---------------------------------------------------------------------------
# random segmentations


@st.composite
def segmentation(draw, n: int):
    """Cut [0, n) into ranges, some widened to overlap their neighbours."""
    if n == 0:
        return []
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, n - 1)), max_size=40))) | {0, n})
    out = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        lo = max(0, a - draw(st.integers(0, 30)))
        hi = min(n, b + draw(st.integers(0, 30)))
        out.append((lo, hi))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.binary(max_size=3000),
    st.binary(max_size=3000),
    st.integers(0, M32),
    st.integers(0, M32),
)
def test_random_segmentation_reassembles_identically(data, cdata, sdata, cisn, sisn):
    conv = Conv(cdata, sdata, cisn=cisn, sisn=sisn)
    body = conv.pieces(True, data.draw(segmentation(len(cdata)))) + conv.pieces(
        False, data.draw(segmentation(len(sdata)))
    )
    order = data.draw(st.permutations(range(len(body)))) if body else []
    dups = data.draw(st.lists(st.integers(0, max(0, len(body) - 1)), max_size=10)) if body else []
    segs = [body[i] for i in order] + [body[i] for i in dups]
    _, (rec,) = run(conv.handshake() + segs + conv.fins())
    assert bytes(rec.bytes[True]) == cdata
    assert bytes(rec.bytes[False]) == sdata
    assert rec.gaps() == []
    assert rec.reasons == ["fin"]
    assert rec.flow.overlap_conflicts == 0


# ---------------------------------------------------------------------------
# real captures against tshark's "follow tcp"

ALL_CAPTURES = public_captures() + lab_sample_captures()


def tshark_follow(path: Path, nstreams: int) -> dict[int, tuple[str, str, bytes, bytes]]:
    """(node0, node1, bytes from node0, bytes from node1) for tshark TCP streams 0..nstreams-1.

    One tshark run; streams that do not exist come back empty, and the caller
    asks for more than it expects so that the last ones must be empty.
    """
    args = ["tshark", "-n", "-r", str(path), "-q"]
    for i in range(nstreams):
        args += ["-z", f"follow,tcp,raw,{i}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    result = {}
    for block in out.split("=" * 67 + "\n"):
        lines = block.split("\n")
        if not lines[0].startswith("Follow: tcp,raw"):
            continue
        node0 = lines[2].split(": ", 1)[1]
        node1 = lines[3].split(": ", 1)[1]
        d0, d1 = bytearray(), bytearray()
        for line in lines[4:]:
            if line.startswith("\t"):
                d1 += bytes.fromhex(line.strip())
            elif line:
                d0 += bytes.fromhex(line)
        index = int(lines[1].rsplit(" ", 1)[1])  # "Filter: tcp.stream eq N"
        result[index] = (node0, node1, bytes(d0), bytes(d1))
    assert sorted(result) == list(range(nstreams))
    return result


def _norm(ep: str) -> str:
    """tshark may print IPv6 nodes as 'addr:port'; ours are '[addr]:port'."""
    host, _, port = ep.rpartition(":")
    return endpoint(host.strip("[]"), int(port))


@pytest.mark.shared
@pytest.mark.parametrize(
    "path", ALL_CAPTURES, ids=[f"{p.parent.name}/{p.name}" for p in ALL_CAPTURES]
)
def test_real_capture_matches_tshark_follow(path: Path):
    require_shared()
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed: it is the oracle for TCP reassembly")
    recs: list[Rec] = []

    def on_flow(flow):
        recs.append(Rec(flow))
        return recs[-1]

    r = Reassembler(on_flow)
    for ts, seg in iter_segments(open_capture(path)):
        r.add(ts, seg)
    r.finish()
    ours = Counter()
    for rec in recs:
        i, s = endpoint(*rec.flow.initiator), endpoint(*rec.flow.responder)
        if rec.bytes[True] or rec.bytes[False]:
            ours[frozenset({(i, bytes(rec.bytes[True])), (s, bytes(rec.bytes[False]))})] += 1
        assert len(rec.reasons) == 1
    theirs = Counter()
    requested = len(recs) + 4  # a few more than we found; the extra ones must be empty
    follow = tshark_follow(path, requested)
    assert follow[requested - 1][0] == ":0", "tshark has more streams than we asked for"
    for n0, n1, d0, d1 in follow.values():
        if n0 == ":0":  # no such stream
            continue
        if d0 or d1:
            theirs[frozenset({(_norm(n0), d0), (_norm(n1), d1)})] += 1
    assert sum(theirs.values()) > 0
    assert ours == theirs


def test_mute_from_on_flow_and_while_draining():
    conv = Conv(CDATA[:900], SDATA[:900])
    recs = []

    def on_flow(flow):
        flow.mute(False)  # command-phase-style: never want the responder's bytes
        recs.append(Rec(flow))
        return recs[-1]

    client = conv.pieces(True, even_bounds(900, 300))
    server = conv.pieces(False, even_bounds(900, 300))
    r = Reassembler(on_flow)
    for i, s in enumerate(conv.handshake() + server + client + conv.fins()):
        r.add(float(i), s)
    r.finish()
    (rec,) = recs
    assert bytes(rec.bytes[False]) == b"" and rec.gaps() == []
    assert bytes(rec.bytes[True]) == CDATA[:900]
    assert rec.reasons == ["fin"]

    # A sink that mutes a direction in the middle of delivering buffered bytes.
    class Muter(Rec):
        def data(self, fi, data, ts):
            super().data(fi, data, ts)
            if fi and len(self.bytes[True]) >= 600:  # the 2nd piece, delivered by a drain
                self.flow.mute(True)

    recs.clear()
    r = Reassembler(lambda f: recs.append(Muter(f)) or recs[-1])
    segs = conv.handshake() + server + client[1:] + client[:1] + conv.fins()
    for i, s in enumerate(segs):
        r.add(float(i), s)
    r.finish()
    (rec,) = recs
    assert bytes(rec.bytes[True]) == CDATA[:600]  # the 3rd piece was muted, not delivered
    assert bytes(rec.bytes[False]) == SDATA[:900]
    assert rec.gaps() == [] and rec.reasons == ["fin"]


@st.composite
def chaos_segment(draw):
    ends = [C, S, ("10.0.0.3", 51001)]
    src = draw(st.sampled_from(ends))
    dst = draw(st.sampled_from([e for e in ends if e != src]))
    base = draw(st.sampled_from([0, 1000, M32 - 50, 2**31]))
    seq = (base + draw(st.integers(-100, 3000))) & M32
    flags = draw(st.sampled_from([ACK, ACK | PSH, SYN, SYN | ACK, FIN | ACK, RST, RST | ACK, 0]))
    payload = draw(st.binary(max_size=300))
    missing = draw(st.sampled_from([0, 0, 0, 7]))
    ack = (base + draw(st.integers(-100, 3000))) & M32
    ts = draw(st.floats(0, 500, allow_nan=False))
    return ts, mk(src, dst, seq, flags, payload, ack=ack, missing=missing)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chaos_segment(), max_size=80), st.sampled_from([None, 30.0]))
def test_reassembler_survives_any_segment_sequence(segments, idle):
    r, recs = run(segments, max_buffer=700, idle_timeout=idle)
    for rec in recs:
        assert len(rec.reasons) == 1, rec.reasons
        assert rec.reasons[0] in {"fin", "rst", "end-of-capture", "reused", "idle"}
    assert r.open_flows() == []


def test_new_syn_from_the_silent_side_of_a_mid_stream_flow():
    old = Conv(b"", SDATA[:500])
    server_only = old.pieces(False, [(0, 500)])  # picked up mid-stream: only the server spoke
    new, body = conversation(cisn=31337, sisn=4242)
    _, (first, second) = run(server_only + new.handshake() + body + new.fins())
    assert first.reasons == ["reused"] and bytes(first.bytes[True]) == SDATA[:500]
    assert second.flow.syn_seen and second.flow.initiator == C
    assert_clean(second)


def test_simultaneous_open_is_one_flow():
    syn_c = mk(C, S, 100, SYN)
    syn_s = mk(S, C, 500, SYN)
    synack_c = mk(C, S, 100, SYN | ACK, ack=501)
    synack_s = mk(S, C, 500, SYN | ACK, ack=101)
    data = [mk(C, S, 101, ACK, b"hi", ack=501), mk(S, C, 501, ACK, b"yo", ack=103)]
    _, recs = run([syn_c, syn_s, synack_c, synack_s] + data)
    assert len(recs) == 1
    assert bytes(recs[0].bytes[True]) == b"hi" and bytes(recs[0].bytes[False]) == b"yo"
