"""The native pcap record loop (mysqlwire/capture/_walk.c) against the Python one.

The Python loop in ``reader._python_pcap_records`` is the reference: on every
input (every capture we have, cut and corrupted ones, hostile record lengths,
a reassembler's fast lane with command lanes) the native loop must hand out
the same frames, count the same records, stop at the same byte with the same
one-line error, and lead to the same dissection.
"""

from __future__ import annotations

import io
import os
import random
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mysqlwire.capture import lane as lane_mod
from mysqlwire.capture import native
from mysqlwire.capture import reader as reader_mod
from mysqlwire.capture import tcp as tcp_mod
from mysqlwire.capture.reader import open_capture
from mysqlwire.dissect import DissectOptions, iter_connections
from tests.conftest import lab_sample_captures, public_captures

ROOT = Path(__file__).resolve().parent.parent
REPO_PCAPS = sorted((ROOT / "captures").rglob("*.pcap"))
OTHER_PCAPS = [p for p in public_captures() + lab_sample_captures() if p.suffix == ".pcap"]

NATIVE = reader_mod._PcapScan


def _require_native():
    if NATIVE is None:
        if os.environ.get("CI"):
            pytest.fail("the native record loop (mysqlwire/capture/_walk.c) is not built")
        pytest.skip("the native record loop is not built here")


@pytest.fixture
def python_loop(monkeypatch):
    """Switch the reader to its Python loop (and the reassembler to the
    Python lanes) for the duration of a test."""

    def use(flag: bool):
        monkeypatch.setattr(reader_mod, "_PcapScan", None if flag else NATIVE)
        lane = lane_mod.PythonCommandLane if flag else lane_mod.CommandLane
        monkeypatch.setattr(tcp_mod, "CommandLane", lane)

    return use


def walk(source, fast=None) -> dict:
    r = open_capture(source)
    frames = list(r.records(fast) if fast is not None else r.records())
    return {
        "frames": frames,
        "frames_read": r.frames_read,
        "bytes_read": r.bytes_read,
        "truncated": r.truncated,
        "error": r.error,
    }


def both(python_loop, source_factory, fast_factory=lambda: None):
    python_loop(True)
    ref = walk(source_factory(), fast_factory())
    python_loop(False)
    got = walk(source_factory(), fast_factory())
    return ref, got


def test_native_loop_is_built():
    """Under CI the extension must have been built by the install."""
    _require_native()
    assert native.NATIVE or os.environ.get("MYSQLWIRE_NO_NATIVE")
    assert lane_mod.CommandLane is native.walk.CommandLane


@pytest.mark.parametrize(
    "path", REPO_PCAPS + OTHER_PCAPS, ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_same_frames_on_every_capture(path, python_loop):
    _require_native()
    ref, got = both(python_loop, lambda: path)
    assert got == ref
    assert ref["frames"] or ref["truncated"]


def _sample_bytes() -> bytes:
    # a capture with many small frames: cut and corrupted below
    return min(REPO_PCAPS, key=lambda p: abs(p.stat().st_size - 60_000)).read_bytes()


@pytest.mark.parametrize("seed", range(6))
def test_same_stop_on_cut_and_corrupt_files(seed, python_loop):
    _require_native()
    data = _sample_bytes()
    rnd = random.Random(seed)
    for _ in range(25):
        cut = bytearray(data[: rnd.randrange(24, len(data) + 1)])
        for _ in range(rnd.randrange(0, 4)):  # corrupt a few bytes, perhaps a length
            i = rnd.randrange(24, max(25, len(cut)))
            if i < len(cut):
                cut[i] = rnd.randrange(256)
        ref, got = both(python_loop, lambda cut=bytes(cut): io.BytesIO(cut))
        assert got == ref


def _pcap(records: list[tuple[int, int, int, bytes]], *, big=False, nano=False) -> bytes:
    o = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(o + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)]
    for sec, frac, incl, body in records:
        out.append(struct.pack(o + "IIII", sec, frac, incl, incl) + body)
    return b"".join(out)


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("nano", [False, True])
def test_hostile_lengths_and_timestamps(big, nano, python_loop):
    _require_native()
    cases = [
        [(1, 999_999_999, 3, b"abc"), (2**32 - 1, 2**32 - 1, 0, b"")],  # extreme stamps
        [(1, 0, 3, b"abc"), (2, 0, 0xFFFFFFF0, b"zz")],  # impossible length
        [(1, 0, 3, b"abc"), (2, 0, (1 << 26) + 1, b"zz")],  # just over the limit
        [(1, 0, 3, b"abc"), (2, 0, 1 << 26, b"zz")],  # at the limit: truncated, not corrupt
        [(1, 0, 5, b"ab")],  # cut in the data
        [(1, 0, 0, b"")] * 1000,  # empty records
    ]
    for recs in cases:
        blob = _pcap(recs, big=big, nano=nano)
        for extra in (b"", b"\x01\x02\x03"):  # and a cut record header at the end
            ref, got = both(python_loop, lambda b=blob + extra: io.BytesIO(b))
            assert got == ref
    # and the reference itself says what happened
    ref, _ = both(python_loop, lambda: io.BytesIO(_pcap(cases[1], big=big, nano=nano)))
    assert ref["error"] == "corrupt record at byte 43: captured length 4294967280 is impossible"
    ref, _ = both(python_loop, lambda: io.BytesIO(_pcap(cases[0], big=big, nano=nano) + b"\1"))
    assert ref["error"] == "truncated record at byte 59" and len(ref["frames"]) == 2


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=80)), max_size=30), st.data()
)
def test_random_record_streams(python_loop, recs, data):
    _require_native()
    blob = _pcap([(s, s % 1_000_000, len(b), b) for s, b in recs])
    cut = data.draw(st.integers(24, len(blob)))
    ref, got = both(python_loop, lambda: io.BytesIO(blob[:cut]))
    assert got == ref


def test_a_reader_giving_bytearrays(python_loop):
    """A file object whose read() returns bytearray is read the same way."""
    _require_native()
    blob = _pcap([(1, 2, 3, b"abc"), (4, 5, 2, b"de")])

    class Raw(io.RawIOBase):
        def __init__(self):
            self.b = io.BytesIO(blob)

        def readable(self):
            return True

        def read(self, n=-1):
            return bytearray(self.b.read(n))

    ref, got = both(python_loop, Raw)
    assert got == ref
    assert [f[2] for f in got["frames"]] == [b"abc", b"de"]
    assert all(type(f[2]) is bytes for f in got["frames"])


def test_scanner_refuses_bad_arguments():
    _require_native()
    scan = NATIVE(False, 16, 1e6, 1, 14, 0x0800, None)
    with pytest.raises(TypeError):
        scan.scan(bytearray(40), 0)
    with pytest.raises(ValueError):
        scan.scan(b"x" * 40, 41)
    with pytest.raises(ValueError):
        NATIVE(False, 8, 1e6, 1, 14, 0x0800, None)  # a record header is at least 16 bytes
    with pytest.raises(TypeError):
        NATIVE(False, 16, 1e6, 1, 14, 0x0800, [])
    # a malformed fast-lane entry is an error, not a crash
    frame = bytes(14) + b"\x45" + bytes(8) + b"\x06" + bytes(30)
    frame = frame[:12] + b"\x08\x00" + frame[14:]
    rec = struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame
    key = frame[26:38]
    for bad in [(), (object(), 0), (None, "x", 0), (None, 0, 2, None)]:
        s = NATIVE(False, 16, 1e6, 1, 14, 0x0800, {key: bad})
        with pytest.raises((TypeError, AttributeError)):
            s.scan(rec, 0)


# --- the fast lane: whole dissections -------------------------------------------


def _records(path, opts=None) -> list[dict]:
    return [c.to_record(with_packets=True) for c in iter_connections(path, opts)]


def test_same_dissection_with_command_lanes(tmp_path, python_loop):
    """The hostile command phases of test_perf_lanes (split, pipelined,
    retransmitted, reordered, lost, compressed, corrupt) through both loops."""
    _require_native()
    from tests.test_perf_lanes import build

    path = tmp_path / "lanes.pcap"
    build(path)
    for opts in (None, DissectOptions(with_packets=True)):
        python_loop(True)
        ref = _records(path, opts)
        python_loop(False)
        assert _records(path, opts) == ref
    assert len(ref) >= 10


@pytest.mark.parametrize("path", REPO_PCAPS[:: max(1, len(REPO_PCAPS) // 40)], ids=lambda p: p.name)
def test_same_dissection_on_repo_captures(path, python_loop):
    _require_native()
    python_loop(True)
    ref = _records(path)
    python_loop(False)
    assert _records(path) == ref


# --- the lane itself: the C class against the Python one ---------------------------

LANE_FIELDS = lane_mod.PythonCommandLane.__slots__


def _segment(seq, ack, payload, *, doff=5, ip_len=None, pad=0) -> tuple[bytes, int, int]:
    """A frame: 14 bytes before the IPv4 header, then IPv4 + TCP + payload."""
    tcp_hdr = struct.pack("!HHIIBBHHH", 1000, 3306, seq, ack, doff << 4, 0x18, 512, 0, 0)
    tcp_hdr += bytes(max(0, doff * 4 - 20))
    total = 20 + len(tcp_hdr) + len(payload) if ip_len is None else ip_len
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 6, 0, b"\x7f\0\0\1", b"\x7f\0\0\2")
    frame = bytes(14) + ip + tcp_hdr + payload + bytes(pad)
    return frame, 14, len(frame)


def _packet(seq_id, body) -> bytes:
    return struct.pack("<I", len(body))[:3] + bytes([seq_id]) + body


def _inflater(table):
    return lambda seg: table.get(seg)


def _state(lane):
    return {f: getattr(lane, f) for f in LANE_FIELDS if f != "inflate"}


_bodies = st.one_of(
    st.builds(
        lambda c, rest: bytes([c]) + rest,
        st.sampled_from([0x03, 0x01, 0x11, 0x0E, 0x16]),
        st.binary(max_size=12),
    ),
    st.binary(min_size=0, max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),  # server side?
            st.integers(0, 2**32 - 1),  # seq (or an offset from the expected one)
            st.booleans(),  # use the expected seq
            st.integers(0, 2**32 - 1),  # ack
            st.integers(0, 3),  # payload: 0 none, 1 packet, 2 raw bytes, 3 ERR / result
            _bodies,
            st.integers(0, 2),  # seq id
            st.sampled_from([5, 5, 8, 4, 15]),  # TCP data offset (4: too short)
            st.integers(-3, 3),  # IP total length lie
            st.integers(0, 4),  # trailing padding
        ),
        max_size=12,
    ),
    st.integers(0, 2**32 - 1),
    st.integers(0, 3),
    st.booleans(),
    st.booleans(),
)
def test_native_lane_decides_like_the_python_lane(steps, cli_next, watch, quiet, zipped):
    if native.walk is None:
        _require_native()
    table = {}
    inflate = _inflater(table) if zipped else None
    py = lane_mod.PythonCommandLane(True, cli_next, watch, 1.0, quiet, inflate)
    cc = native.walk.CommandLane(True, cli_next, watch, 1.0, quiet, inflate)
    for i, (server, seq, expected, ack, kind, body, sid, doff, lie, pad) in enumerate(steps):
        if expected:
            seq = py.reply_at if server else py.cli_next
        if kind == 0:
            payload = b""
        elif kind == 1:
            payload = _packet(sid if not server else 1, body)
        elif kind == 2:
            payload = body
        else:
            payload = _packet(1, (b"\xff" if sid == 0 else b"\x01") + body)
        if zipped and payload:
            table[payload] = _packet(0, body) if sid != 2 else body
        frame, p, end = _segment(seq, ack, payload, doff=doff, pad=pad)
        if lie:
            total = max(0, 20 + doff * 4 + len(payload) + lie)
            frame = frame[:16] + struct.pack("!H", total) + frame[18:]
        ts = 2.0 + i
        method = "server" if server else "client"
        got = getattr(cc, method)(frame, p, end, ts)
        want = getattr(py, method)(frame, p, end, ts)
        assert got is want, (i, method)
        assert _state(cc) == _state(py), i


def test_native_lane_refuses_frames_outside_the_buffer():
    _require_native()
    lane = native.walk.CommandLane(True, 0, 1, 0.0, True)
    frame, p, end = _segment(0, 0, b"")
    for args in [(frame, -1, end, 0.0), (frame, p, end + 1, 0.0), (frame, end - 20, end, 0.0)]:
        with pytest.raises(ValueError):
            lane.client(*args)
    with pytest.raises(TypeError):
        lane.server(bytearray(frame), p, end, 0.0)
    with pytest.raises(ValueError):
        native.walk.CommandLane(True, 2**32, 1, 0.0, True)
    bad = native.walk.CommandLane(True, 0, 1, 0.0, True, lambda seg: "text")
    frame, p, end = _segment(0, 0, _packet(0, b"\x03SELECT 1"))
    with pytest.raises(TypeError):
        bad.client(frame, p, end, 0.0)
    assert "SELECT" not in repr(bad)  # no bytes of a command in a repr
