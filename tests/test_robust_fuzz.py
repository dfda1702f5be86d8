"""Fuzzing the connection-phase state machine and the dissection engine.

The grammars themselves (build -> parse round trips, random/mutated payloads
raising only ProtocolError, framing independent of chunking) are covered by
tests/test_protocol_hypothesis.py; this file feeds *sequences* of packets:

* the sans-I/O :class:`~mysqlwire.handshake.Handshake` gets random packet
  sequences (real lab packets, packets built from the grammar strategies, and
  random bytes), with random sequence ids, per direction, in random chunkings,
  with gaps, TLS hand-over and end of stream: it must never raise, only emit
  :class:`Event` s of known kinds with a bounded number of anomalies, and the
  chunking must not change the events;
* the :class:`~mysqlwire.dissect.Dissector` (reassembly + state machine + TLS
  engine + records) gets random TCP segments: never an exception, and every
  connection record serialises to JSON.
"""

from __future__ import annotations

import json
from functools import lru_cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mysqlwire.capture import ACK, FIN, PSH, RST, SYN, TcpSegment
from mysqlwire.dissect import DissectOptions, Dissector
from mysqlwire.errors import ProtocolError
from mysqlwire.handshake import MAX_ANOMALIES, NEED_DATA, Event, Handshake
from mysqlwire.protocol import KINDS, build, fastparse, parse
from mysqlwire.protocol.fastparse import fast_parse
from mysqlwire.protocol.framing import PacketReader, frame
from tests.test_parallel_fastparse import same_as_grammar
from tests.test_protocol_hypothesis import STRATEGIES
from tests.test_robust_support import lab_samples, ordered_chunks, tcp_streams

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EVENT_KINDS = {
    "anomaly",
    "greeting",
    "handshake_response",
    "ssl_request",
    "auth_switch_request",
    "old_auth_switch_request",
    "auth_more_data",
    "auth_next_factor",
    "server_plugin_data",
    "auth_data",
    "ok",
    "err",
    "com_change_user",
    "command",
    "command_error",
    "quit",
}


@lru_cache(maxsize=1)
def lab_packets() -> tuple[tuple[str, bytes], ...]:
    """(sender, payload) of the first packets of every lab sample, both directions
    (TLS captures: their clear-text part and the first TLS bytes)."""
    out = []
    for cap in lab_samples():
        for s in tcp_streams(cap.path, cap.truth.get("port") or 3306):
            for sender, data in (("server", s.server_bytes), ("client", s.client_bytes)):
                reader = PacketReader()
                try:
                    pkts = reader.feed(data[:4096])
                except Exception:  # noqa: BLE001 - TLS bytes after the SSLRequest
                    pkts = []
                out += [(sender, p.payload) for p in pkts[:12]]
                if cap.truth.get("tls"):
                    out.append((sender, data[36:600]))  # raw TLS records
    return tuple(dict.fromkeys(out))


@st.composite
def grammar_payload(draw):
    kind = draw(st.sampled_from(KINDS))
    obj, caps = draw(STRATEGIES[kind])
    return build(kind, obj, caps=caps)


@st.composite
def steps(draw, max_steps=14):
    """A list of ("data", sender, bytes) / ("gap", sender, n) steps."""
    pool = lab_packets()
    out = []
    seq = 0
    for _ in range(draw(st.integers(1, max_steps))):
        what = draw(st.sampled_from(["lab", "lab", "grammar", "random", "gap", "tls"]))
        if what == "gap":
            out.append(
                ("gap", draw(st.sampled_from(["client", "server"])), draw(st.integers(1, 99)))
            )
            continue
        if what == "lab":
            sender, payload = draw(st.sampled_from(pool))
        else:
            sender = draw(st.sampled_from(["client", "server"]))
            if what == "grammar":
                payload = draw(grammar_payload())
            elif what == "tls":
                payload = b"\x16\x03\x01" + draw(st.binary(max_size=60))
            else:
                payload = draw(st.binary(max_size=80))
        if draw(st.booleans()):
            seq = draw(st.integers(0, 255))
        raw = draw(st.booleans()) and what != "lab"
        out.append(("data", sender, payload if raw else frame(payload, seq)))
        seq = (seq + 1) & 0xFF
    return out


@lru_cache(maxsize=1)
def backbones() -> tuple[tuple[tuple[str, bytes], ...], ...]:
    """Every lab login as time-ordered (sender, chunk) lists (plain ones: TLS
    bytes would need keys), cut at 20 chunks."""
    out = []
    for cap in lab_samples():
        if cap.truth.get("tls"):
            continue
        for conn in ordered_chunks(cap.path, cap.truth.get("port") or 3306):
            if conn:
                out.append(tuple(conn[:20]))
    return tuple(out)


@st.composite
def mutated_logins(draw):
    """A real login with random edits: chunks dropped, duplicated, swapped,
    cut, bit-flipped, re-sequenced, replaced by or mixed with grammar / lab /
    random packets, and gaps."""
    plan = [("data", s, d) for s, d in draw(st.sampled_from(backbones()))]
    if draw(st.booleans()):
        # command phase: commands (COM_QUIT, COM_QUERY, COM_CHANGE_USER, COM_PING
        # or anything) with random bodies, and replies
        for _ in range(draw(st.integers(1, 4))):
            first = draw(st.sampled_from([0x01, 0x03, 0x11, 0x0E, 0x00, 0xFF]))
            if first == 0x11 and draw(st.booleans()):
                obj, caps = draw(STRATEGIES["com_change_user"])
                body = build("com_change_user", obj, caps=caps)
            else:
                body = bytes([first]) + draw(st.binary(max_size=40))
            plan.append(("data", "client", frame(body, 0)))
            reply = draw(st.sampled_from(lab_packets()))[1] if draw(st.booleans()) else b""
            plan.append(("data", "server", frame(reply or draw(grammar_payload()), 1)))
    for _ in range(draw(st.integers(0, 5))):
        if not plan:
            break
        i = draw(st.integers(0, len(plan) - 1))
        op, sender, data = plan[i]
        edit = draw(
            st.sampled_from(
                ["drop", "dup", "swap", "cut", "flip", "reseq", "grammar", "lab", "noise", "gap"]
            )
        )
        if edit == "drop":
            del plan[i]
        elif edit == "dup":
            plan.insert(i, plan[i])
        elif edit == "swap" and i + 1 < len(plan):
            plan[i], plan[i + 1] = plan[i + 1], plan[i]
        elif edit == "gap":
            plan.insert(i, ("gap", sender, draw(st.integers(1, 64))))
        elif op != "data":
            continue
        elif edit == "cut":
            plan[i] = (op, sender, data[: draw(st.integers(0, len(data)))])
        elif edit == "flip" and data:
            b = bytearray(data)
            b[draw(st.integers(0, len(b) - 1))] ^= draw(st.integers(1, 255))
            plan[i] = (op, sender, bytes(b))
        elif edit == "reseq" and len(data) >= 4:
            plan[i] = (op, sender, data[:3] + bytes([draw(st.integers(0, 255))]) + data[4:])
        elif edit in ("grammar", "lab", "noise"):
            seq = data[3] if len(data) >= 4 else 0
            if edit == "grammar":
                payload = draw(grammar_payload())
            elif edit == "lab":
                sender, payload = draw(st.sampled_from(lab_packets()))
            else:
                payload = draw(st.binary(max_size=64))
            new = (op, sender, frame(payload, seq))
            if draw(st.booleans()):
                plan[i] = new
            else:
                plan.insert(i + 1, new)
    return plan


def run_handshake(plan, cuts=None) -> tuple[Handshake, list[tuple]]:
    """Feed ``plan`` like dissect does (TLS bytes handed over, plaintext fed
    back), optionally cutting each data step at ``cuts``; return the events."""
    hs = Handshake()
    events: list[tuple] = []

    def drain():
        while True:
            ev = hs.next_event()
            if ev is NEED_DATA:
                return
            assert isinstance(ev, Event)
            assert ev.kind in EVENT_KINDS, ev.kind
            assert ev.sender in ("client", "server")
            events.append((ev.sender, ev.kind, ev.seq, bytes(ev.payload), ev.plugin, ev.detail))

    taken = False
    for i, (op, sender, arg) in enumerate(plan):
        if op == "gap":
            hs.gap(sender, arg)
        else:
            pieces = [arg]
            if cuts is not None:
                points = sorted({c % (len(arg) + 1) for c in cuts[i % len(cuts)]})
                pieces = [arg[a:b] for a, b in zip([0, *points], [*points, len(arg)], strict=True)]
            for piece in pieces:
                hs.receive_data(sender, piece)
                drain()
                if hs.tls and not taken:
                    taken = True
                    for side in ("client", "server"):
                        hs.take_tls_bytes(side)
        drain()
    hs.eof()
    drain()
    return hs, events


@SETTINGS
@given(
    plan=mutated_logins() | steps(),
    cuts=st.lists(st.lists(st.integers(0, 400), max_size=6), min_size=1),
)
def test_state_machine_never_raises_and_chunking_is_irrelevant(plan, cuts):
    hs, whole = run_handshake(plan)
    anomalies = [e for e in whole if e[1] == "anomaly"]
    assert len(anomalies) <= MAX_ANOMALIES + 1
    if hs.state == "BROKEN":
        # nothing follows the anomaly that gave up on the connection
        last = max(i for i, e in enumerate(whole) if e[1] == "anomaly")
        assert all(e[1] == "anomaly" for e in whole[last:])
    _, chunked = run_handshake(plan, cuts)
    assert chunked == whole


@SETTINGS
@given(
    client=st.lists(st.binary(max_size=120), max_size=8),
    server=st.lists(st.binary(max_size=120), max_size=8),
    order=st.lists(st.booleans(), max_size=16),
)
def test_state_machine_random_bytes_per_direction(client, server, order):
    """Pure noise in both directions, interleaved at random."""
    plan = []
    c, s = list(client), list(server)
    for first in order + [True] * (len(c) + len(s)):
        src = c if first and c else s if s else c
        if not src:
            break
        plan.append(("data", "client" if src is c else "server", src.pop(0)))
    run_handshake(plan)


def test_lab_streams_with_every_single_byte_cut_and_flip():
    """Each lab login, cut at every byte of its connection phase (either
    direction) and with one byte flipped at every position: never raises."""
    from tests.test_robust_support import lab_samples as samples

    for cap in samples()[::4]:
        (s,) = tcp_streams(cap.path, cap.truth.get("port") or 3306)[:1]
        srv, cli = s.server_bytes[:300], s.client_bytes[:300]
        for n in range(0, len(cli), 3):
            run_handshake([("data", "server", srv), ("data", "client", cli[:n])])
            flipped = bytearray(cli)
            flipped[n] ^= 0x5A
            run_handshake([("data", "server", srv), ("data", "client", bytes(flipped))])
        for n in range(0, len(srv), 3):
            flipped = bytearray(srv)
            flipped[n] ^= 0xA5
            run_handshake([("data", "server", bytes(flipped)), ("data", "client", cli)])


# --- the whole engine ------------------------------------------------------------------

CLIENT_IP, SERVER_IP = "10.0.0.1", "10.0.0.2"


@st.composite
def segments(draw):
    """Random TCP segments of 1-3 flows to port 3306, carrying lab packets,
    grammar packets, TLS-looking bytes or noise, with random flags and
    sequence numbers (retransmissions, holes, overlaps, resets)."""
    pool = lab_packets()
    nflows = draw(st.integers(1, 3))
    seqs = {}
    out = []
    for _ in range(draw(st.integers(1, 40))):
        f = draw(st.integers(0, nflows - 1))
        from_client = draw(st.booleans())
        key = (f, from_client)
        seq = seqs.setdefault(key, draw(st.integers(0, 2**32 - 1)))
        kind = draw(st.sampled_from(["lab", "lab", "grammar", "noise", "empty"]))
        if kind == "lab":
            payload = frame(draw(st.sampled_from(pool))[1], draw(st.integers(0, 4)))
        elif kind == "grammar":
            payload = frame(draw(grammar_payload()), draw(st.integers(0, 4)))
        elif kind == "noise":
            payload = draw(st.binary(max_size=100))
        else:
            payload = b""
        flags = draw(
            st.sampled_from([ACK, PSH | ACK, SYN, SYN | ACK, FIN | ACK, RST, ACK, PSH | ACK])
        )
        jitter = draw(st.sampled_from([0, 0, 0, 1, -3, 100, 2**31]))
        cport = 40000 + f
        if from_client:
            seg = TcpSegment.make(
                CLIENT_IP, cport, SERVER_IP, 3306, seq + jitter, 0, flags, payload
            )
        else:
            seg = TcpSegment.make(
                SERVER_IP, 3306, CLIENT_IP, cport, seq + jitter, 0, flags, payload
            )
        out.append(seg)
        seqs[key] = (seq + len(payload) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
    return out


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(segs=segments(), packets=st.booleans(), detect=st.booleans())
def test_dissector_never_raises(segs, packets, detect):
    engine = Dissector(DissectOptions(with_packets=packets, detect=detect, max_buffer=4096))
    conns = []
    for i, seg in enumerate(segs):
        engine.add(1_700_000_000 + i * 0.001, seg)
        conns += engine.drain()
    conns += engine.finish()
    for c in conns:
        rec = c.to_record(with_packets=packets)
        json.dumps(rec)
        assert rec["outcome"] in ("ok", "error", "incomplete", "encrypted", "midstream")


# --- the Construct-free fast path -------------------------------------------------------

FAST_KINDS = [k for k in KINDS if k in fastparse._PARSERS]


@SETTINGS
@given(data=st.data())
def test_fast_parse_agrees_with_the_grammar_on_generated_packets(data):
    """fast_parse returns exactly the grammar's Container or declines (None),
    for grammar-built packets (every optional part, non-minimal lenenc...)
    and for random bytes; it never raises.  (tests/test_parallel_fastparse.py
    checks captured packets and their mutations.)"""
    kind = data.draw(st.sampled_from(FAST_KINDS))
    if data.draw(st.booleans()):
        obj, caps = data.draw(STRATEGIES[kind])
        payload = build(kind, obj, caps=caps)
    else:
        payload = data.draw(st.binary(max_size=120))
        caps = data.draw(st.none() | st.integers(0, 2**32 - 1))
    fast = fast_parse(kind, payload, caps)
    try:
        slow = parse(kind, payload, caps=caps)
    except ProtocolError:
        assert fast is None, (kind, payload.hex(), caps)
        return
    if fast is not None:
        assert same_as_grammar(fast, slow), (kind, payload.hex(), caps)
