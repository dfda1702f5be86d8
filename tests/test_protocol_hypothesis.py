"""Property tests: grammars round-trip, hostile bytes only raise ProtocolError,
framing is independent of how the stream is chunked."""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mysqlwire.errors import ProtocolError
from mysqlwire.protocol import (
    CLIENT_CONNECT_ATTRS,
    CLIENT_CONNECT_WITH_DB,
    CLIENT_PLUGIN_AUTH,
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
    CLIENT_PROTOCOL_41,
    CLIENT_SECURE_CONNECTION,
    CLIENT_SESSION_TRACK,
    CLIENT_TRANSACTIONS,
    CLIENT_ZSTD_COMPRESSION_ALGORITHM,
    KINDS,
    SERVER_SESSION_STATE_CHANGED,
    NonMinimalBytes,
    NonMinimalInt,
    NonMinimalList,
    build,
    parse,
)
from mysqlwire.protocol.framing import (
    MAX_CHUNK,
    CompressedReader,
    Packet,
    PacketReader,
    compress_frame,
    frame,
)
from mysqlwire.protocol.lenenc import minimal_prefix

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- building blocks --------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u24 = st.integers(0, 0xFFFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
any_bytes = st.binary(max_size=64)
nul_free = st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"\x01"))
caps_or_none = (
    st.none()
    | u32
    | st.sampled_from(
        [
            CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION,
            CLIENT_PROTOCOL_41 | CLIENT_SESSION_TRACK | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_ATTRS,
            CLIENT_TRANSACTIONS,
            0,
        ]
    )
)

_BOUNDARIES = [0, 1, 250, 251, 0xFFFF, 0x10000, 0xFFFFFF, 0x1000000, 2**64 - 1]
_WIDER = {None: [0xFC, 0xFD, 0xFE], 0xFC: [0xFD, 0xFE], 0xFD: [0xFE], 0xFE: []}


@st.composite
def lenenc_ints(draw):
    value = draw(st.sampled_from(_BOUNDARIES) | st.integers(0, 2**64 - 1) | st.integers(0, 300))
    wider = _WIDER[minimal_prefix(value)]
    if wider and draw(st.booleans()):
        return NonMinimalInt(value, draw(st.sampled_from(wider)))
    return value


@st.composite
def lenenc_bytes(draw, max_size=300):
    data = draw(st.binary(max_size=max_size))
    wider = _WIDER[minimal_prefix(len(data))]
    if wider and draw(st.integers(0, 3)) == 0:
        return NonMinimalBytes(data, draw(st.sampled_from(wider)))
    return data


@st.composite
def connect_attrs(draw):
    pairs = draw(st.lists(st.tuples(lenenc_bytes(30), lenenc_bytes(30)), max_size=5))
    attrs = [{"key": k, "value": v} for k, v in pairs]
    if draw(st.integers(0, 4)) == 0:
        marked = NonMinimalList(attrs)
        marked.prefix = draw(st.sampled_from([0xFC, 0xFD, 0xFE]))
        return marked
    return attrs


@st.composite
def tail(draw, parts):
    """Fill optional trailing parts in order; the packet may stop after any of them.

    ``parts`` is a list of (name, strategy, is_optional_nul_string). A string whose
    final NUL is missing must be the last thing in the packet.
    """
    out = {name: None for name, _, _ in parts}
    stop = draw(st.integers(0, len(parts)))
    for name, strategy, is_string in parts[:stop]:
        out[name] = draw(strategy)
        if is_string:
            terminated = draw(st.booleans()) or not out[name]
            out[f"{name}_terminated"] = terminated
            if not terminated:
                break
    return out


# --- one strategy per kind: (obj, caps) ----------------------------------------------


@st.composite
def handshake_v10(draw):
    obj = {
        "server_version": draw(nul_free),
        "connection_id": draw(u32),
        "auth_plugin_data_part_1": draw(st.binary(min_size=8, max_size=8)),
        "filler": draw(u8),
        "capability_flags_lower": draw(u16),
        "character_set": None,
        "auth_plugin_data_part_2": None,
        "auth_plugin_name": None,
    }
    if draw(st.integers(0, 5)):  # 4.1+ layout
        obj.update(
            character_set=draw(u8),
            status_flags=draw(u16),
            capability_flags_upper=draw(u16),
            auth_plugin_data_len=draw(u8),
            reserved=draw(st.binary(min_size=6, max_size=6)),
            mariadb_ext_caps=draw(u32),
        )
        caps = obj["capability_flags_lower"] | obj["capability_flags_upper"] << 16
        n = max(13, obj["auth_plugin_data_len"] - 8) if caps & CLIENT_PLUGIN_AUTH else 13
        part2 = st.binary(min_size=n, max_size=n)
        obj.update(
            draw(
                tail(
                    [
                        ("auth_plugin_data_part_2", part2, False),
                        ("auth_plugin_name", nul_free, True),
                    ]
                )
            )
        )
    return obj, None


@st.composite
def handshake_v9(draw):
    return {
        "server_version": draw(nul_free),
        "connection_id": draw(u32),
        "scramble": draw(nul_free),
    }, None


@st.composite
def handshake_response41(draw):
    flag = draw(
        u32
        | st.just(
            CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_CONNECT_WITH_DB
            | CLIENT_PLUGIN_AUTH
            | CLIENT_CONNECT_ATTRS
            | CLIENT_ZSTD_COMPRESSION_ALGORITHM
        )
    )
    if flag & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        auth = draw(lenenc_bytes())
    elif flag & CLIENT_SECURE_CONNECTION:
        auth = draw(st.binary(max_size=255))
    else:
        auth = draw(nul_free)
    obj = {
        "client_flag": flag,
        "max_packet_size": draw(u32),
        "character_set": draw(u8),
        "filler": draw(st.binary(min_size=23, max_size=23)),
        "username": draw(nul_free),
        "auth_response": auth,
    }
    parts = []
    if flag & CLIENT_CONNECT_WITH_DB:
        parts.append(("database", nul_free, True))
    if flag & CLIENT_PLUGIN_AUTH:
        parts.append(("client_plugin", nul_free, True))
    if flag & CLIENT_CONNECT_ATTRS:
        parts.append(("connect_attrs", connect_attrs(), False))
    if flag & CLIENT_ZSTD_COMPRESSION_ALGORITHM:
        parts.append(("zstd_compression_level", u8, False))
    obj.update(draw(tail(parts)))
    return obj, None


@st.composite
def ssl_request(draw):
    return {
        "client_flag": draw(u32),
        "max_packet_size": draw(u32),
        "character_set": draw(u8),
        "filler": draw(st.binary(min_size=23, max_size=23)),
    }, None


@st.composite
def handshake_response320(draw):
    flag = draw(u16)
    obj = {"client_flag": flag, "max_packet_size": draw(u24), "username": draw(nul_free)}
    if flag & CLIENT_CONNECT_WITH_DB:
        obj["auth_response"] = draw(nul_free)
        obj.update(draw(tail([("database", nul_free, True)])))
    else:
        obj["auth_response"] = draw(any_bytes)
    return obj, None


@st.composite
def plugin_packet(draw):
    return {"plugin_name": draw(nul_free), "plugin_data": draw(any_bytes)}, None


@st.composite
def data_packet(draw):
    return {"data": draw(any_bytes)}, None


@st.composite
def ok(draw):
    caps = draw(caps_or_none)
    eff = CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS if caps is None else caps
    obj = {
        "header": draw(st.sampled_from([0x00, 0xFE])),
        "affected_rows": draw(lenenc_ints()),
        "last_insert_id": draw(lenenc_ints()),
        "status_flags": draw(u16) if eff & (CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS) else None,
        "warnings": draw(u16) if eff & CLIENT_PROTOCOL_41 else None,
        "session_state_changes": None,
    }
    if eff & CLIENT_SESSION_TRACK:
        parts = [("info", lenenc_bytes(), False)]
        if (obj["status_flags"] or 0) & SERVER_SESSION_STATE_CHANGED:
            parts.append(("session_state_changes", lenenc_bytes(), False))
        obj.update(draw(tail(parts)))
    else:
        obj["info"] = draw(any_bytes)
    return obj, caps


@st.composite
def err(draw):
    caps = draw(caps_or_none)
    with_state = caps is None or bool(caps & CLIENT_PROTOCOL_41)
    state = draw(st.none() | st.binary(min_size=5, max_size=5)) if with_state else None
    message = draw(any_bytes)
    if with_state and state is None:
        assume(not message.startswith(b"#"))  # would read as a SQLSTATE: the wire is ambiguous
    return {"error_code": draw(u16), "sql_state": state, "error_message": message}, caps


@st.composite
def eof(draw):
    caps = draw(caps_or_none)
    if caps is None or caps & CLIENT_PROTOCOL_41:
        return {"warnings": draw(u16), "status_flags": draw(u16)}, caps
    return {"warnings": None, "status_flags": None}, caps


@st.composite
def com_change_user(draw):
    caps = draw(caps_or_none)
    eff = (
        CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_ATTRS
        if caps is None
        else caps
    )
    auth = draw(st.binary(max_size=255)) if eff & CLIENT_SECURE_CONNECTION else draw(nul_free)
    obj = {"user": draw(nul_free), "auth_response": auth}
    parts = [("database", nul_free, True), ("character_set", u16, False)]
    if eff & CLIENT_PLUGIN_AUTH:
        parts.append(("auth_plugin_name", nul_free, True))
    if eff & CLIENT_CONNECT_ATTRS:
        parts.append(("connect_attrs", connect_attrs(), False))
    obj.update(draw(tail(parts)))
    return obj, caps


STRATEGIES = {
    "handshake_v10": handshake_v10(),
    "handshake_v9": handshake_v9(),
    "handshake_response41": handshake_response41(),
    "handshake_response320": handshake_response320(),
    "ssl_request": ssl_request(),
    "auth_switch_request": plugin_packet(),
    "old_auth_switch_request": st.just(({}, None)),
    "auth_switch_response": data_packet(),
    "auth_more_data": data_packet(),
    "auth_next_factor": plugin_packet(),
    "ok": ok(),
    "err": err(),
    "eof": eof(),
    "com_change_user": com_change_user(),
}


def test_every_kind_has_a_strategy():
    assert set(STRATEGIES) == set(KINDS)


def _normal(value):
    """Compare generated and parsed values (attr lists as plain key/value tuples)."""
    if isinstance(value, list):
        return [(bytes(a["key"]), bytes(a["value"])) for a in value]
    return value


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_valid_packets_round_trip(kind, data):
    obj, caps = data.draw(STRATEGIES[kind])
    wire = build(kind, obj, caps=caps)
    parsed = parse(kind, wire, caps=caps)
    assert build(kind, parsed, caps=caps) == wire
    for name, value in obj.items():
        assert _normal(parsed[name]) == _normal(value), name
        prefix = getattr(value, "prefix", None)
        assert getattr(parsed[name], "prefix", None) == prefix, name


def _check_bytes(kind, payload, caps):
    """parse either raises ProtocolError (kind, offset in range) or round-trips."""
    try:
        obj = parse(kind, payload, caps=caps)
    except ProtocolError as exc:
        assert exc.kind == kind
        assert exc.offset is not None and 0 <= exc.offset <= len(payload)
        return False
    assert build(kind, obj, caps=caps) == payload
    return True


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(payload=st.binary(max_size=200), caps=caps_or_none)
def test_random_bytes_raise_only_protocol_error(kind, payload, caps):
    _check_bytes(kind, payload, caps)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_mutated_packets_raise_only_protocol_error(kind, data):
    obj, caps = data.draw(STRATEGIES[kind])
    wire = bytearray(build(kind, obj, caps=caps))
    op = data.draw(st.sampled_from(["cut", "flip", "insert", "append"]))
    at = data.draw(st.integers(0, len(wire)))
    if op == "cut":
        del wire[at:]
    elif op == "flip" and wire:
        wire[min(at, len(wire) - 1)] ^= data.draw(st.integers(1, 255))
    elif op == "insert":
        wire[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    else:
        wire += data.draw(st.binary(min_size=1, max_size=4))
    _check_bytes(kind, bytes(wire), data.draw(st.sampled_from([caps, None, 0, 0xFFFFFFFF])))


# --- framing ------------------------------------------------------------------------


def _stream(payloads, seqs):
    out, packets = bytearray(), []
    for payload, seq in zip(payloads, seqs, strict=True):
        packets.append(Packet(seq, payload, len(out), 1))
        out += frame(payload, seq)
    return bytes(out), packets


def _feed_in_chunks(reader, stream, cuts):
    out, prev = [], 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        out += reader.feed(stream[prev:cut])
        prev = cut
    return out


@SETTINGS
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=12),
    data=st.data(),
)
def test_framing_is_independent_of_chunking(payloads, data):
    seqs = data.draw(st.lists(u8, min_size=len(payloads), max_size=len(payloads)))
    stream, expected = _stream(payloads, seqs)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    reader = PacketReader()
    assert _feed_in_chunks(reader, stream, cuts) == expected
    assert reader.pending == 0
    # a trailing partial packet stays pending
    extra = data.draw(st.binary(min_size=1, max_size=10))
    assert reader.feed(extra[:3]) == [] and reader.pending == len(extra[:3])


@SETTINGS
@given(payloads=st.lists(st.binary(max_size=300), max_size=12), data=st.data())
def test_skip_mode_keeps_only_what_is_asked(payloads, data):
    seqs = data.draw(st.lists(u8, min_size=len(payloads), max_size=len(payloads)))
    stream, expected = _stream(payloads, seqs)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    wanted = data.draw(st.sets(u8, max_size=40))

    def keep(seq, first):
        return first is not None and first in wanted

    reader = PacketReader(skip_payloads=True, keep=keep)
    kept = _feed_in_chunks(reader, stream, cuts)
    assert kept == [p for p in expected if p.payload[:1] and p.payload[0] in wanted]
    assert reader.skipped == len(expected) - len(kept)
    assert reader.pending == 0
    if expected:
        assert reader.last_seq == expected[-1].seq


def test_one_byte_at_a_time_and_with_trailing_bytes():
    stream, expected = _stream([b"\x0agreeting", b"", b"\x00\x00\x00\x02\x00\x00\x00"], [0, 1, 2])
    reader = PacketReader()
    got = []
    for i in range(len(stream)):
        got += reader.feed(stream[i : i + 1])
    assert got == expected
    reader = PacketReader()
    assert reader.feed(stream + b"\x05\x00") == expected
    assert reader.pending == 2


@pytest.mark.parametrize(
    "size,chunks",
    [
        (MAX_CHUNK - 1, 1),
        (MAX_CHUNK, 2),
        (MAX_CHUNK + 1, 2),
        (2 * MAX_CHUNK, 3),
        (2 * MAX_CHUNK + 1, 3),
    ],
)
def test_continuation(size, chunks):
    payload = random.Random(size).randbytes(size)
    wire = frame(payload, 250) + frame(b"\x01tail", 3)
    assert len(wire) == size + 4 * chunks + 9
    expected = [Packet(250, payload, 0, chunks), Packet(3, b"\x01tail", size + 4 * chunks, 1)]
    assert PacketReader().feed(wire) == expected
    rng = random.Random(size + 1)
    cuts = [rng.randrange(len(wire)) for _ in range(5)] + [3, MAX_CHUNK + 2, MAX_CHUNK + 5]
    assert _feed_in_chunks(PacketReader(), wire, cuts) == expected
    # seq ids wrap per chunk: 250, 251...
    assert wire[3] == 250 and (chunks < 2 or wire[MAX_CHUNK + 7] == 251)
    skipper = PacketReader(skip_payloads=True)
    assert _feed_in_chunks(skipper, wire, cuts) == []
    assert skipper.skipped == 2 and skipper.pending == 0


def test_hostile_lengths_are_bounded():
    reader = PacketReader(max_payload=1000)
    with pytest.raises(ProtocolError) as err:
        reader.feed(b"\xff\xff\xff\x00")  # announces 16 MiB: refused before buffering
    assert err.value.kind == "frame" and err.value.offset == 0
    with pytest.raises(ProtocolError):
        reader.feed(b"\x00")  # the reader stays failed
    # continuation adding up past the limit
    reader = PacketReader(max_payload=MAX_CHUNK + 10)
    reader.feed(b"\x01\x00\x00\x00\x00")
    with pytest.raises(ProtocolError) as err:
        reader.feed(frame(bytes(MAX_CHUNK + 11), 1))
    assert err.value.offset == 5


def test_frame_empty_payload_and_drain():
    assert frame(b"", 7) == b"\x00\x00\x07"[:0] + b"\x00\x00\x00\x07"
    reader = PacketReader()
    assert reader.feed(frame(b"\x00ok", 2) + b"\x16\x03\x01") == [Packet(2, b"\x00ok", 0, 1)]
    assert reader.drain() == b"\x16\x03\x01"
    assert reader.pending == 0


# --- compressed protocol ---------------------------------------------------------------


@SETTINGS
@given(
    payloads=st.lists(st.binary(max_size=400) | st.just(b"a" * 3000), max_size=8),
    level=st.integers(0, 9),
    min_length=st.integers(0, 100),
    data=st.data(),
)
def test_compressed_round_trip(payloads, level, min_length, data):
    inner, expected = _stream(payloads, list(range(len(payloads))))
    wire = compress_frame(inner, 0, level, min_length=min_length)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=10))
    reader = CompressedReader()
    out = b""
    prev = 0
    for cut in sorted(set(cuts)) + [len(wire)]:
        out += reader.feed(wire[prev:cut])
        prev = cut
    assert out == inner and reader.pending == 0
    assert PacketReader().feed(out) == expected


def test_compressed_big_inner_stream_splits():
    inner = frame(random.Random(1).randbytes(MAX_CHUNK + 100), 0)
    wire = compress_frame(inner, 5)
    assert CompressedReader().feed(wire) == inner


def _cpacket(body: bytes, ulen: int, seq: int = 0) -> bytes:
    return len(body).to_bytes(3, "little") + bytes([seq]) + ulen.to_bytes(3, "little") + body


@pytest.mark.parametrize(
    "packet",
    [
        _cpacket(zlib.compress(b"x" * 100), 99),  # inflates past its length
        _cpacket(zlib.compress(b"x" * 100), 101),  # inflates short
        _cpacket(zlib.compress(b"x" * 100)[:-3], 100),  # truncated stream
        _cpacket(b"not zlib at all", 100),
        _cpacket(zlib.compress(b"x" * 100) + b"junk", 100),
        _cpacket(zlib.compress(bytes(10_000_000)), 100),  # a bomb stays bounded
    ],
)
def test_bad_compressed_packets(packet):
    with pytest.raises(ProtocolError) as err:
        CompressedReader().feed(packet)
    assert err.value.offset == 0
