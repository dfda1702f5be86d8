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
OTHER_PCAPS = public_captures() + lab_sample_captures()  # pcap and pcapng

NATIVE = reader_mod._PcapScan
NATIVE_NG = reader_mod._PcapngScan


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
        monkeypatch.setattr(reader_mod, "_PcapngScan", None if flag else NATIVE_NG)
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


def _sample_bytes(pcapng: bool) -> bytes:
    # a capture with many small frames: cut and corrupted below
    pool = [p for p in REPO_PCAPS + OTHER_PCAPS if (p.suffix == ".pcapng") == pcapng]
    if not pool:
        pytest.skip("no such capture here")
    return min(pool, key=lambda p: abs(p.stat().st_size - 60_000)).read_bytes()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("pcapng", [False, True])
def test_same_stop_on_cut_and_corrupt_files(seed, pcapng, python_loop):
    _require_native()
    data = _sample_bytes(pcapng)
    rnd = random.Random(seed)
    for _ in range(25):
        cut = bytearray(data[: rnd.randrange(24, len(data) + 1)])
        for _ in range(rnd.randrange(0, 4)):  # corrupt a few bytes, perhaps a length
            i = rnd.randrange(24, max(25, len(cut)))
            if i < len(cut):
                cut[i] = rnd.randrange(256)
        ref, got = both(python_loop, lambda cut=bytes(cut): io.BytesIO(cut))
        assert got == ref


def test_pcapng_blocks_of_every_kind(python_loop):
    """Sections in both byte orders, several interfaces with odd time
    resolutions and offsets (nanosecond ticks beyond 2**53, binary
    fractions, 10**-12), every block type, comments, truncation."""
    _require_native()
    from tests.test_capture_reader import dsb, epb, idb, old_pb, shb, spb

    frame = bytes(12) + b"\x08\x00" + bytes(60)
    blob = b""
    for order in "<>":
        blob += shb(order) + idb(order, 1) + idb(order, 1, tsresol=9, tsoffset=-7)
        blob += idb(order, 101, tsresol=0x80 | 30, tsoffset=2**40) + idb(order, 1, tsresol=12)
        blob += idb(order, 1, tsresol=0x80 | 63)
        for i in range(40):
            iface = i % 5
            ticks = [
                1_700_000_000_123_456,
                1_700_000_000_123_456_789,
                2**62 + i,
                2**63 + 12345,
                2**64 - 1 - i,
            ][iface]
            blob += epb(order, iface, ticks, frame[: 14 + i], comment=b"c" if i % 7 == 0 else None)
            if i % 9 == 0:
                blob += spb(order, frame[:20]) + old_pb(order, 1, ticks // 3, frame[:30])
            if i % 13 == 0:
                blob += dsb(order, 0x544C534B, b"CLIENT_RANDOM x y\n")
        blob += epb(order, 9, 1, frame)  # an undeclared interface: the Python loop's error
    for cut in (len(blob), len(blob) - 3, len(blob) // 2, len(blob) // 3 + 1):
        ref, got = both(python_loop, lambda c=cut: io.BytesIO(blob[:c]))
        assert got == ref
        assert len(ref["frames"]) > 20
    assert ref["error"] is not None


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
    scan = NATIVE(False, 16, 1e6, 1, 14, 12, None)
    with pytest.raises(TypeError):
        scan.scan(bytearray(40), 0)
    with pytest.raises(ValueError):
        scan.scan(b"x" * 40, 41)
    with pytest.raises(ValueError):
        NATIVE(False, 8, 1e6, 1, 14, 12, None)  # a record header is at least 16 bytes
    with pytest.raises(TypeError):
        NATIVE(False, 16, 1e6, 1, 14, 12, [])
    # a malformed fast-lane entry is an error, not a crash
    frame = bytes(14) + b"\x45" + bytes(8) + b"\x06" + bytes(30)
    frame = frame[:12] + b"\x08\x00" + frame[14:]
    rec = struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame
    key = frame[26:38]
    for bad in [(), (object(), 0), (None, "x", 0), (None, 0, 2, None)]:
        s = NATIVE(False, 16, 1e6, 1, 14, 12, {key: bad})
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
    ng = tmp_path / "lanes.pcapng"  # the same frames in pcapng blocks
    from tests.test_capture_reader import epb, idb, shb

    frames = open_capture(path)
    ng.write_bytes(
        shb()
        + idb("<", 1, tsresol=9)
        + b"".join(epb("<", 0, round(ts * 1e9), d) for ts, _lt, d, _i in frames)
    )
    for capture in (path, ng):
        for opts in (None, DissectOptions(with_packets=True)):
            python_loop(True)
            ref = _records(capture, opts)
            ref_frames = _handed_out(capture, opts)
            python_loop(False)
            assert _records(capture, opts) == ref
            # the same frames skipped: not only the same answer
            assert _handed_out(capture, opts) == ref_frames
        assert len(ref) >= 10
        assert 0 < len(ref_frames[0]) < ref_frames[1] * 0.5


class _Flow:
    last_ts = None


def _lane_frames(seed: int) -> tuple[bytes, list[bytes]]:
    """A pcap of random IPv4/TCP frames between four endpoint pairs (data,
    bare ACKs, control flags, fragments, IP options, other EtherTypes, short
    frames) and the pairs' 12-byte fast-lane keys."""
    rnd = random.Random(seed)
    keys, recs = [], []
    pairs = [(b"\x0a\0\0" + bytes([i + 1]), b"\x0a\0\0\x63", 40000 + i, 3306) for i in range(5)]
    for src, dst, sp, dp in pairs:
        keys.append(src + dst + struct.pack("!HH", sp, dp))
    for i in range(400):
        src, dst, sp, dp = pairs[rnd.randrange(5)]
        payload = rnd.choice(
            [
                b"",
                b"",
                _packet(0, b"\x03SELECT 1"),
                _packet(1, b"\x01\x02"),
                rnd.randbytes(rnd.randrange(1, 30)),
            ]
        )
        flags = rnd.choice([0x10, 0x10, 0x18, 0x02, 0x11, 0x04, 0x12])
        doff = rnd.choice([5, 5, 5, 8, 4])
        tcp = struct.pack(
            "!HHIIBBHHH",
            sp,
            dp,
            rnd.getrandbits(32),
            rnd.getrandbits(32),
            doff << 4,
            flags,
            512,
            0,
            0,
        )
        tcp += bytes(max(0, doff * 4 - 20))
        vihl = rnd.choice([0x45] * 8 + [0x46])
        frag = rnd.choice([0] * 8 + [0x2000, 0x0001])
        proto = rnd.choice([6] * 9 + [17])
        opts = bytes(4) if vihl == 0x46 else b""
        total = 20 + len(opts) + len(tcp) + len(payload) + rnd.choice([0] * 6 + [-2, 3, -4])
        ip = (
            struct.pack("!BBHHHBBH4s4s", vihl, 0, max(0, total), 0, frag, 64, proto, 0, src, dst)
            + opts
        )
        et = rnd.choice([b"\x08\x00"] * 9 + [b"\x86\xdd"])
        frame = bytes(12) + et + ip + tcp + payload
        if rnd.random() < 0.05:
            frame = frame[: rnd.randrange(14, len(frame))]
        recs.append((1_700_000_000 + i, rnd.randrange(1_000_000), len(frame), frame))
    for src, dst, sp, dp in pairs:  # a "bare ACK" whose TCP header claims 16 bytes, to each pair
        tcp = struct.pack("!HHIIBBHHH", sp, dp, 1, 2, 4 << 4, 0x10, 512, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 36, 0, 0, 64, 6, 0, src, dst)
        frame = bytes(12) + b"\x08\x00" + ip + tcp
        recs.insert(rnd.randrange(len(recs)), (1_700_000_500, 0, len(frame), frame))
    return _pcap(recs), keys


@pytest.mark.parametrize("seed", range(8))
def test_fast_lane_decisions_of_every_mode(seed, python_loop):
    """Entries of every mode (0 muted, 1 bare ACKs, 2/3 a command lane, 4 a
    noting take) decide the same frames in both loops, with the same calls
    back and the same flow times."""
    _require_native()
    blob, keys = _lane_frames(seed)
    decide_every_mode(blob, keys, seed, python_loop)


def decide_every_mode(blob: bytes, keys: list[bytes], seed: int, python_loop) -> None:
    """The frames of ``blob`` through both loops with an entry of each mode
    for the five ``keys`` (see test_fast_lane_decisions_of_every_mode)."""
    results = []
    for use_python in (True, False):
        python_loop(use_python)
        lane_cls = lane_mod.PythonCommandLane if use_python else lane_mod.CommandLane
        flows = [_Flow() for _ in keys]
        taken = []

        def take(buf, p, end, ts, taken=taken):
            taken.append((p, end, ts))
            return (buf[p + 33] & 0x10) and len(taken) % 3 != 0

        lane = lane_cls(True, 0, 2, 0.0, True)
        peer = tcp_mod._Dir()  # mode 4 as the reassembler makes it: the ACKs land in peer.ack32
        fast = {
            keys[4]: (flows[4], 0x07, 4, peer, peer.acked),
            keys[0]: (flows[0], 0x07, 0, None),
            keys[1]: (flows[1], 0x07, 1, None),
            keys[2]: (flows[2], 0x07, 4, None, take),
            keys[3]: (flows[3], 0x07, 2 + seed % 2, lane, lane.server if seed % 2 else lane.client),
        }
        got = walk(io.BytesIO(blob), fast)
        results.append(
            (
                got,
                [f.last_ts for f in flows],
                taken,
                {k: getattr(lane, k) for k in LANE_FIELDS if k != "inflate"},
                peer.ack32,
            )
        )
    assert results[0] == results[1]
    got = results[0][0]
    assert 0 < len(got["frames"]) < got["frames_read"]  # some skipped, some not
    assert results[0][2]  # the take was asked
    assert results[0][4] is not None  # a bare ACK was noted


def test_same_frames_skipped_on_a_benchmark_capture(tmp_path, python_loop):
    """benchmarks/make_capture.py's traffic (logins, TLS, result sets, bare
    ACKs of muted answers): both loops skip exactly the same frames."""
    _require_native()
    import subprocess
    import sys

    pcap = tmp_path / "bench.pcap"
    script = ROOT / "benchmarks" / "make_capture.py"
    subprocess.run(
        [sys.executable, str(script), "-n", "40", "-o", str(pcap)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for opts in (None, DissectOptions(with_packets=True)):
        python_loop(True)
        ref = _handed_out(pcap, opts)
        python_loop(False)
        assert _handed_out(pcap, opts) == ref
        assert len(ref[0]) < ref[1] * 0.5


def _handed_out(path, opts) -> tuple[list, int]:
    """The frames the reader hands out during a dissection with lanes."""
    from mysqlwire.capture.decode import decode_tcp
    from mysqlwire.dissect import CaptureSummary, Dissector

    reader = open_capture(path)
    engine = Dissector(opts or DissectOptions(), CaptureSummary(path=str(path)))
    records = reader.records(engine.reasm.fast)
    engine.reasm.lanes = engine.pipe.lanes = True
    out = []
    for ts, linktype, data, _iface in records:
        out.append((ts, data))
        engine.add(ts, decode_tcp(linktype, data))
    engine.finish()
    return out, reader.frames_read


@pytest.mark.parametrize("path", REPO_PCAPS[:: max(1, len(REPO_PCAPS) // 40)], ids=lambda p: p.name)
def test_same_dissection_on_repo_captures(path, python_loop):
    _require_native()
    python_loop(True)
    ref = _records(path)
    python_loop(False)
    assert _records(path) == ref


# --- the lane itself: the C class against the Python one ---------------------------

LANE_FIELDS = lane_mod.PythonCommandLane.__slots__


def _segment(seq, ack, payload, *, doff=5, ip_len=None, pad=0, v6=False) -> tuple[bytes, int, int]:
    """A frame: 14 bytes before the IP header, then IPv4 (or IPv6) + TCP +
    payload; ``ip_len``: the IP length field (IPv6: the payload length)."""
    tcp_hdr = struct.pack("!HHIIBBHHH", 1000, 3306, seq, ack, doff << 4, 0x18, 512, 0, 0)
    tcp_hdr += bytes(max(0, doff * 4 - 20))
    total = (0 if v6 else 20) + len(tcp_hdr) + len(payload) if ip_len is None else ip_len
    if v6:
        ip = struct.pack("!IHBB", 0x60000000, total, 6, 64) + bytes(15) + b"\1" + bytes(15) + b"\2"
    else:
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 6, 0, b"\x7f\0\0\1", b"\x7f\0\0\2"
        )
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
    st.booleans(),
)
def test_native_lane_decides_like_the_python_lane(steps, cli_next, watch, quiet, zipped, v6):
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
        frame, p, end = _segment(seq, ack, payload, doff=doff, pad=pad, v6=v6)
        if lie:
            total = max(0, (0 if v6 else 20) + doff * 4 + len(payload) + lie)
            at = p + (4 if v6 else 2)  # the IP length field
            frame = frame[:at] + struct.pack("!H", total) + frame[at + 2 :]
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
    frame, p, end = _segment(0, 0, b"", v6=True)  # IPv6: 54 bytes from its header are read
    with pytest.raises(ValueError):
        lane.client(frame[: p + 53], p, p + 53, 0.0)
    assert lane.client(frame, p, end, 0.0) is True  # (a bare ACK: taken)
    with pytest.raises(ValueError):
        native.walk.CommandLane(True, 2**32, 1, 0.0, True)
    bad = native.walk.CommandLane(True, 0, 1, 0.0, True, lambda seg: "text")
    frame, p, end = _segment(0, 0, _packet(0, b"\x03SELECT 1"))
    with pytest.raises(TypeError):
        bad.client(frame, p, end, 0.0)
    assert "SELECT" not in repr(bad)  # no bytes of a command in a repr


def _version(env: dict | None = None, cwd=None) -> str:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "mysqlwire", "--version"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=cwd,
    ).stdout


def test_version_says_which_loop(monkeypatch):
    out = _version()
    assert out.startswith("mysqlwire, version ")
    assert ("capture loop: native (C)" in out) == native.NATIVE, out
    out = _version(dict(os.environ, MYSQLWIRE_NO_NATIVE="1"))
    assert "capture loop: Python (switched off by MYSQLWIRE_NO_NATIVE)" in out, out


def test_version_says_a_stale_build_is_not_used(tmp_path):
    """A build of an older _walk.c is not used, and --version says why."""
    import shutil

    _require_native()
    pkg = tmp_path / "mysqlwire"
    shutil.copytree(ROOT / "mysqlwire", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    native_py = pkg / "capture" / "native.py"
    text = native_py.read_text()
    native_py.write_text(text.replace(f"VERSION = {native.VERSION}\n", "VERSION = 999999\n", 1))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("MYSQLWIRE_NO_NATIVE", None)
    out = _version(env, cwd=tmp_path)
    assert "capture loop: Python (the C extension is a build of an older _walk.c" in out, out


# --- decoding in the native loop (reader.decoded) ------------------------------------


def _decoded_both(source_factory, python_loop):
    from mysqlwire.capture.decode import decode_frame

    python_loop(False)
    got = list(open_capture(source_factory()).decoded())
    ref = [(ts, decode_frame(lt, d)) for ts, lt, d, _i in open_capture(source_factory()).records()]
    return got, ref


@pytest.mark.parametrize("path", REPO_PCAPS[:: max(1, len(REPO_PCAPS) // 60)], ids=lambda p: p.name)
def test_decoded_segments_are_decode_frames(path, python_loop):
    _require_native()
    got, ref = _decoded_both(lambda: path, python_loop)
    assert got == ref
    assert [type(s) for _, s in got] == [type(s) for _, s in ref]


@pytest.mark.parametrize("seed", range(4))
def test_decoded_hostile_ethernet_frames(seed, python_loop):
    """Frames around every bound of the first branch of decode_frame (IP
    total length, TCP data offset, fragments, options, EtherType, cut frames)."""
    _require_native()
    rnd = random.Random(seed)
    recs = []
    for i in range(600):
        payload = rnd.randbytes(rnd.choice([0, 1, 5, 40]))
        doff = rnd.choice([5, 5, 5, 0, 4, 6, 15])
        tcp = struct.pack(
            "!HHIIBBHHH",
            rnd.getrandbits(16),
            3306,
            rnd.getrandbits(32),
            rnd.getrandbits(32),
            doff << 4,
            rnd.getrandbits(8),
            9,
            0,
            0,
        ) + bytes(max(0, doff * 4 - 20))
        total = 20 + len(tcp) + len(payload) + rnd.choice([0, 0, 0, -1, 1, -25, 300])
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            rnd.choice([0x45] * 6 + [0x46, 0x44, 0x65]),
            0,
            max(0, min(total, 65535)),
            0,
            rnd.choice([0] * 6 + [0x4000, 0x2000, 0x0001, 0x1FFF]),
            64,
            rnd.choice([6] * 8 + [17]),
            0,
            rnd.randbytes(4),
            rnd.randbytes(4),
        )
        frame = (
            bytes(12)
            + rnd.choice([b"\x08\x00"] * 8 + [b"\x81\x00", b"\x86\xdd"])
            + ip
            + tcp
            + payload
        )
        frame += bytes(rnd.choice([0, 0, 6]))  # Ethernet padding
        if rnd.random() < 0.15:
            frame = frame[: rnd.randrange(0, len(frame) + 1)]
        recs.append((i, 0, len(frame), frame))
    blob = _pcap(recs)
    got, ref = _decoded_both(lambda: io.BytesIO(blob), python_loop)
    assert got == ref
    assert [type(s) for _, s in got] == [type(s) for _, s in ref]
    assert sum(type(s) is not int for _, s in got) > 100  # many are segments


def test_decoded_without_the_native_loop(python_loop):
    """The Python loop decodes with decode_frame: the same pairs."""
    _require_native()
    path = REPO_PCAPS[0]
    got, _ = _decoded_both(lambda: path, python_loop)
    python_loop(True)
    assert list(open_capture(path).decoded()) == got
