"""mysqlwire.capture.reader: pcap/pcapng streaming, checked against Scapy's readers.

Scapy is used here only as an independent oracle; the library never imports it.
"""

from __future__ import annotations

import io
import os
import random
import struct
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlwire.capture import SECRET_TLS_KEYLOG, CaptureReader, Frame, open_capture
from mysqlwire.capture.reader import CHUNK_SIZE
from mysqlwire.errors import CaptureError
from tests.conftest import lab_sample_captures, public_captures, require_shared

ALL_CAPTURES = public_captures() + lab_sample_captures()


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.name}" for p in paths]


# ---------------------------------------------------------------------------
# writers for hand-made captures


def pcap_bytes(frames, *, order="<", nano=False, linktype=1, snaplen=65535) -> bytes:
    """frames: iterable of (sec, frac, data); frac in us (or ns when nano)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for sec, frac, data in frames:
        out.append(struct.pack(order + "IIII", sec, frac, len(data), len(data)))
        out.append(data)
    return b"".join(out)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) & 3)


def _block(order: str, btype: int, body: bytes) -> bytes:
    body = _pad4(body)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _options(order: str, opts) -> bytes:
    out = b""
    for code, value in opts:
        out += struct.pack(order + "HH", code, len(value)) + _pad4(value)
    return out + struct.pack(order + "HH", 0, 0) if opts else b""


def shb(order="<") -> bytes:
    return _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order, linktype, *, tsresol=None, tsoffset=None, snaplen=0) -> bytes:
    opts = []
    if tsresol is not None:
        opts.append((9, bytes([tsresol])))
    if tsoffset is not None:
        opts.append((14, struct.pack(order + "q", tsoffset)))
    return _block(
        order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + _options(order, opts)
    )


def epb(order, iface, ticks, data, *, comment=None) -> bytes:
    opts = [(1, comment)] if comment else []
    body = struct.pack(
        order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    return _block(order, 6, body + _pad4(data) + _options(order, opts))


def spb(order, data) -> bytes:
    return _block(order, 3, struct.pack(order + "I", len(data)) + data)


def old_pb(order, iface, ticks, data) -> bytes:
    body = struct.pack(
        order + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    return _block(order, 2, body + data)


def dsb(order, secret_type, data) -> bytes:
    return _block(order, 10, struct.pack(order + "II", secret_type, len(data)) + data)


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content)
    return p


# ---------------------------------------------------------------------------
# every shared capture against Scapy


def scapy_frames(path: Path):
    from scapy.all import PcapReader  # noqa: PLC0415 - the oracle, tests only

    out = []
    with PcapReader(str(path)) as rd:
        for pkt in rd:
            out.append((pkt.time, bytes(pkt.original)))
    return out


@pytest.mark.shared
@pytest.mark.parametrize("path", ALL_CAPTURES, ids=_ids(ALL_CAPTURES))
def test_shared_capture_matches_scapy(path: Path):
    require_shared()
    with open_capture(path) as reader:
        frames = list(reader)
    assert not reader.truncated, reader.error
    assert reader.error is None
    assert reader.format == ("pcapng" if path.suffix == ".pcapng" else "pcap")
    assert reader.frames_read == len(frames)
    assert reader.bytes_read == path.stat().st_size
    oracle = scapy_frames(path)
    assert len(frames) == len(oracle)
    for i, (fr, (t, data)) in enumerate(zip(frames, oracle, strict=True)):
        assert isinstance(fr, Frame)
        assert fr.data == data, f"frame {i + 1}"
        assert fr.linktype in reader.linktypes
        assert abs(fr.ts - float(t)) < 1e-6, f"frame {i + 1}: {fr.ts} != {t}"


def test_shared_captures_present():
    require_shared()
    assert len(public_captures()) >= 40
    assert len(lab_sample_captures()) >= 30


# ---------------------------------------------------------------------------
# hand-made pcap


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolution(tmp_path, order, nano):
    frac = 123456789 if nano else 123456
    frames = [(1_700_000_000, frac, b"\x01" * 60), (1_700_000_001, 0, b"\x02" * 1500), (5, 1, b"")]
    p = write(tmp_path, "x.pcap", pcap_bytes(frames, order=order, nano=nano, linktype=113))
    with open_capture(p) as r:
        got = list(r)
    assert r.format == "pcap"
    assert r.nanosecond is nano
    assert r.linktypes == {113}
    assert [f.data for f in got] == [f[2] for f in frames]
    assert all(f.linktype == 113 and f.iface == 0 for f in got)
    scale = 1e9 if nano else 1e6
    for f, (sec, fr, _) in zip(got, frames, strict=True):
        assert f.ts == pytest.approx(sec + fr / scale, abs=1e-9)
    assert got[0].ts == 1_700_000_000 + frac / scale
    assert not r.truncated
    assert r.frames_read == 3
    assert r.bytes_read == p.stat().st_size


def test_pcap_linktype_fcs_bits_are_masked(tmp_path):
    # Upper bits of the link-type field carry FCS information.
    p = write(tmp_path, "fcs.pcap", pcap_bytes([(1, 0, b"x" * 20)], linktype=0x1000_0001))
    r = open_capture(p)
    assert r.linktypes == {1}
    assert next(r).linktype == 1


def test_modified_pcap_format(tmp_path):
    # Kuznetzov's patched libpcap: 24-byte record headers.
    head = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)
    rec = struct.pack("<IIII", 10, 500000, 4, 4) + b"\0" * 8 + b"abcd"
    p = write(tmp_path, "mod.pcap", head + rec + rec)
    got = list(open_capture(p))
    assert [(f.ts, f.data) for f in got] == [(10.5, b"abcd")] * 2


def test_many_frames_cross_chunk_boundaries(tmp_path):
    rnd = random.Random(7)
    frames = [(i, i % 1_000_000, rnd.randbytes(rnd.randrange(0, 9000))) for i in range(2000)]
    p = write(tmp_path, "big.pcap", pcap_bytes(frames))
    assert p.stat().st_size > 2 * CHUNK_SIZE
    got = list(open_capture(p))
    assert [f.data for f in got] == [f[2] for f in frames]


# ---------------------------------------------------------------------------
# hand-made pcapng


def test_pcapng_two_interfaces_dsb_spb_pb_unknown_blocks(tmp_path):
    keylog = b"CLIENT_RANDOM " + b"ab" * 32 + b" " + b"cd" * 48 + b"\n"
    content = b"".join(
        [
            shb("<"),
            idb("<", 1),  # Ethernet, microseconds (default)
            idb("<", 101, tsresol=9, tsoffset=100),  # raw IP, nanoseconds, offset 100 s
            dsb("<", SECRET_TLS_KEYLOG, keylog),
            epb("<", 0, 1_700_000_000_123_456, b"E" * 61, comment=b"hello"),
            _block("<", 0x00000BAD, b"custom block we do not know"),
            epb("<", 1, 1_700_000_000_987_654_321, b"R" * 40),
            spb("<", b"S" * 33),
            old_pb("<", 1, 5_000_000_000, b"P" * 20),
            _block("<", 5, b"\0" * 16),  # interface statistics: skipped
        ]
    )
    p = write(tmp_path, "two.pcapng", content)
    with open_capture(p) as r:
        got = list(r)
    assert r.format == "pcapng"
    assert r.linktypes == {1, 101}
    assert r.nanosecond is True
    assert r.secrets == [(SECRET_TLS_KEYLOG, keylog)]
    assert [(f.linktype, f.iface, f.data) for f in got] == [
        (1, 0, b"E" * 61),
        (101, 1, b"R" * 40),
        (1, 0, b"S" * 33),
        (101, 1, b"P" * 20),
    ]
    assert got[0].ts == pytest.approx(1_700_000_000.123456, abs=1e-7)
    assert got[1].ts == pytest.approx(1_700_000_100.987654321, abs=1e-6)
    assert got[2].ts == got[1].ts  # an SPB has no timestamp: the previous one is kept
    assert got[3].ts == pytest.approx(105.0)
    assert not r.truncated
    assert r.bytes_read == len(content)


def test_pcapng_binary_tsresol_and_multiple_sections_both_orders(tmp_path):
    content = b"".join(
        [
            shb("<"),
            idb("<", 1, tsresol=0x80 | 10),  # 2^-10 s
            epb("<", 0, 1024 * 7 + 512, b"a" * 20),
            shb(">"),  # new section, big-endian, interfaces reset
            idb(">", 0),
            idb(">", 276, tsresol=3),
            epb(">", 1, 42_500, b"b" * 24),
            epb(">", 0, 3_000_000, b"c" * 8),
        ]
    )
    p = write(tmp_path, "sections.pcapng", content)
    got = list(open_capture(p))
    assert [(f.ts, f.linktype, f.iface, f.data) for f in got] == [
        (7.5, 1, 0, b"a" * 20),
        (42.5, 276, 1, b"b" * 24),
        (3.0, 0, 0, b"c" * 8),
    ]


def test_pcapng_big_endian_matches_scapy(tmp_path):
    content = shb(">") + idb(">", 1) + epb(">", 0, 1_600_000_000_000_001, b"\xaa" * 64)
    p = write(tmp_path, "be.pcapng", content)
    got = list(open_capture(p))
    oracle = scapy_frames(p)
    assert [f.data for f in got] == [d for _, d in oracle]
    assert got[0].ts == pytest.approx(float(oracle[0][0]), abs=1e-6)


def test_pcapng_packet_on_undeclared_interface_stops_with_error(tmp_path):
    content = shb() + idb("<", 1) + epb("<", 0, 1, b"ok") + epb("<", 3, 2, b"bad")
    p = write(tmp_path, "badif.pcapng", content)
    r = open_capture(p)
    assert [f.data for f in r] == [b"ok"]
    assert r.truncated
    assert "undeclared interface 3" in r.error
    assert "\n" not in r.error


def test_pcapng_bad_block_length_is_corrupt_not_exception(tmp_path):
    good = shb() + idb("<", 1) + epb("<", 0, 1, b"ok")
    bad = struct.pack("<II", 6, 13) + b"\0" * 20
    r = open_capture(write(tmp_path, "c.pcapng", good + bad))
    assert [f.data for f in r] == [b"ok"]
    assert r.truncated and r.error == f"corrupt record at byte {len(good)}: pcapng block length 13"


def test_pcap_impossible_record_length_is_corrupt(tmp_path):
    good = pcap_bytes([(1, 0, b"abc")])
    bad = struct.pack("<IIII", 2, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"zz"
    r = open_capture(write(tmp_path, "c.pcap", good + bad))
    assert [f.data for f in r] == [b"abc"]
    assert r.truncated
    assert r.error.startswith(f"corrupt record at byte {len(good)}")


# ---------------------------------------------------------------------------
# truncation: every public capture cut at several offsets


def _frame_ends(path: Path) -> tuple[list[Frame], list[int]]:
    frames, ends = [], []
    reader = open_capture(path)
    for fr in reader:
        frames.append(fr)
        ends.append(reader.bytes_read)
    return frames, ends


@pytest.mark.shared
@pytest.mark.parametrize("path", public_captures(), ids=_ids(public_captures()))
def test_truncated_public_capture_keeps_complete_frames(path: Path):
    require_shared()
    blob = path.read_bytes()
    frames, ends = _frame_ends(path)
    assert ends[-1] <= len(blob)  # pcapng may end with statistics blocks
    picks = sorted(
        {0, 1, len(frames) // 3, len(frames) // 2, len(frames) - 2} & set(range(len(frames)))
    )
    for i in picks:
        for extra in (5, 17):
            cut = ends[i] + extra
            if cut >= len(blob):
                continue
            r = open_capture(io.BytesIO(blob[:cut]))
            got = list(r)  # must not raise
            assert got == frames[: i + 1], (i, cut)
            assert r.truncated, (i, cut)
            assert r.error == f"truncated record at byte {ends[i]}"
        # A cut exactly at a record boundary is a clean (shorter) capture.
        r = open_capture(io.BytesIO(blob[: ends[i]]))
        assert list(r) == frames[: i + 1]
        assert not r.truncated and r.error is None
    # Cut inside the first record: no frame, truncated, no exception.
    r = open_capture(io.BytesIO(blob[: ends[0] - 1]))
    assert list(r) == []
    assert r.truncated


@pytest.mark.shared
def test_truncated_inside_file_header_is_capture_error():
    require_shared()
    for path in public_captures()[:5]:
        blob = path.read_bytes()
        for cut in (1, 3, 10, 20):
            with pytest.raises(CaptureError) as exc:
                open_capture(io.BytesIO(blob[:cut]))
            assert "\n" not in str(exc.value)


# ---------------------------------------------------------------------------
# unusable input


def _one_line_error(source) -> str:
    with pytest.raises(CaptureError) as exc:
        open_capture(source)
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


def test_zero_byte_file(tmp_path):
    msg = _one_line_error(write(tmp_path, "empty.pcap", b""))
    assert "empty file (0 bytes)" in msg
    assert "empty.pcap" in msg


def test_text_file(tmp_path):
    msg = _one_line_error(write(tmp_path, "notes.pcap", b"GIF89a this is not a capture\n" * 5))
    assert "not a pcap/pcapng file (starts with 'GIF8')" in msg


def test_random_bytes(tmp_path):
    blob = bytes([0x8F, 0x00, 0x13, 0xFE]) + random.Random(3).randbytes(5000)
    msg = _one_line_error(write(tmp_path, "random.bin", blob))
    assert "not a pcap/pcapng file (starts with bytes 8f 00 13 fe)" in msg


def test_gzip_is_named(tmp_path):
    import gzip

    p = write(tmp_path, "x.pcap.gz", gzip.compress(pcap_bytes([(1, 0, b"a")])))
    assert "gzip" in _one_line_error(p)


def test_tiny_garbage(tmp_path):
    assert "not a pcap/pcapng file" in _one_line_error(write(tmp_path, "t", b"ab"))


def test_unreadable_paths(tmp_path):
    assert "cannot open" in _one_line_error(tmp_path / "does-not-exist.pcap")
    assert "cannot open" in _one_line_error(tmp_path)  # a directory


def test_unsupported_linktype_pcap(tmp_path):
    p = write(tmp_path, "wifi.pcap", pcap_bytes([(1, 0, b"\0" * 40)], linktype=127))
    msg = _one_line_error(p)
    assert "unsupported link type 127" in msg and "radiotap" in msg


def test_unsupported_linktype_pcapng_only_when_nothing_decodable(tmp_path):
    only_usb = shb() + idb("<", 220) + epb("<", 0, 1, b"\0" * 40)
    assert "unsupported link type 220" in _one_line_error(write(tmp_path, "usb.pcapng", only_usb))
    mixed = shb() + idb("<", 220) + idb("<", 1) + epb("<", 0, 1, b"\0" * 40)
    r = open_capture(write(tmp_path, "mixed.pcapng", mixed))
    assert len(list(r)) == 1
    assert r.linktypes == {220, 1}


def test_bad_pcapng_byte_order_magic(tmp_path):
    blob = bytearray(shb())
    blob[8:12] = b"\x01\x02\x03\x04"
    assert "byte-order magic" in _one_line_error(write(tmp_path, "bom.pcapng", bytes(blob)))


def test_text_mode_file_object_is_usage_error(tmp_path):
    from mysqlwire.errors import UsageError

    p = write(tmp_path, "x.pcap", pcap_bytes([(1, 0, b"a")]))
    with open(p) as text, pytest.raises(UsageError):
        open_capture(text)


# ---------------------------------------------------------------------------
# sources: file objects, stdin, short reads


class ShortReads(io.RawIOBase):
    """A pipe-like stream: never seekable, returns at most 7 bytes per read."""

    def __init__(self, data: bytes):
        self._data = data
        self._pos = 0
        self.max_request = 0

    def readable(self) -> bool:
        return True

    def read(self, n=-1) -> bytes:
        self.max_request = max(self.max_request, n)
        chunk = self._data[self._pos : self._pos + min(n if n >= 0 else 7, 7)]
        self._pos += len(chunk)
        return chunk


def test_file_object_and_short_reads():
    frames = [(i, 0, bytes([i]) * (i * 3)) for i in range(50)]
    blob = pcap_bytes(frames, order=">")
    got = [f.data for f in open_capture(io.BytesIO(blob))]
    assert got == [f[2] for f in frames]
    pipe = ShortReads(blob)
    r = open_capture(pipe)
    assert [f.data for f in r] == [f[2] for f in frames]
    assert not r.truncated
    assert not pipe.closed  # the caller's object is not closed


def test_stdin_dash(monkeypatch):
    blob = shb() + idb("<", 1) + epb("<", 0, 10**6, b"from stdin")

    class FakeStdin:
        buffer = io.BytesIO(blob)

    monkeypatch.setattr(sys, "stdin", FakeStdin)
    r = open_capture("-")
    assert r.name == "<stdin>"
    assert [(f.ts, f.data) for f in r] == [(1.0, b"from stdin")]


def test_reader_is_iterator_and_records_share_position(tmp_path):
    p = write(tmp_path, "x.pcap", pcap_bytes([(i, 0, bytes([i])) for i in range(4)]))
    r = open_capture(p)
    assert isinstance(r, CaptureReader)
    assert iter(r) is r
    assert next(r).data == b"\x00"
    assert next(r.records())[2] == b"\x01"
    assert [f.data for f in r] == [b"\x02", b"\x03"]
    with pytest.raises(StopIteration):
        next(r)
    assert "frames_read=4" in repr(r)


def test_path_like_and_bytes_path(tmp_path):
    p = write(tmp_path, "x.pcap", pcap_bytes([(1, 0, b"a")]))
    assert len(list(open_capture(p))) == 1
    assert len(list(open_capture(str(p)))) == 1
    assert len(list(open_capture(os.fsencode(p)))) == 1


def test_owned_file_closed_at_end(tmp_path):
    p = write(tmp_path, "x.pcap", pcap_bytes([(1, 0, b"a")]))
    r = open_capture(p)
    f = r._f
    list(r)
    assert f.closed
    r2 = open_capture(p)
    with r2:
        pass
    assert r2._f.closed


# ---------------------------------------------------------------------------
# streaming: memory stays flat


class CountingReader(io.RawIOBase):
    def __init__(self, f):
        self._f = f
        self.biggest = 0
        self.total = 0

    def readable(self) -> bool:
        return True

    def read(self, n=-1) -> bytes:
        assert n is not None and n >= 0, "the reader must never read everything at once"
        self.biggest = max(self.biggest, n)
        data = self._f.read(n)
        self.total += len(data)
        return data


def test_streaming_reads_bounded_chunks_and_memory_stays_flat(tmp_path):
    rnd = random.Random(11)
    payload = rnd.randbytes(1400)
    path = tmp_path / "big.pcap"
    n = 24_000
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        rec = struct.pack("<IIII", 1, 2, len(payload), len(payload)) + payload
        for _ in range(n):
            f.write(rec)
    size = path.stat().st_size
    assert size > 32 * CHUNK_SIZE
    with open(path, "rb") as raw:
        counting = CountingReader(raw)
        tracemalloc.start()
        try:
            count = 0
            for _ in open_capture(counting):
                count += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count == n
    assert counting.total == size
    assert counting.biggest <= CHUNK_SIZE
    assert peak < 4 * CHUNK_SIZE, f"peak {peak} bytes for a {size}-byte capture"


@pytest.mark.parametrize(
    "bad,needle",
    [
        # EPB whose captured length runs past its block.
        (
            _block("<", 6, struct.pack("<IIIII", 0, 0, 0, 500, 500) + b"x" * 8),
            "captured length 500 exceeds its block",
        ),
        (_block("<", 6, b"\0" * 8), "packet block length 20"),
        (_block("<", 10, struct.pack("<II", SECRET_TLS_KEYLOG, 99) + b"k" * 8), "secret length 99"),
        (_block("<", 1, b""), "interface block length 12"),
        (_block("<", 0x0A0D0D0A, b"\xde\xad\xbe\xef" + b"\0" * 12), "bad byte-order magic"),
    ],
    ids=["epb-caplen", "epb-short", "dsb-length", "idb-short", "shb-bom"],
)
def test_pcapng_corrupt_blocks_stop_cleanly(tmp_path, bad, needle):
    good = shb() + idb("<", 1) + epb("<", 0, 5, b"first")
    r = open_capture(write(tmp_path, "c.pcapng", good + bad + epb("<", 0, 6, b"never")))
    assert [f.data for f in r] == [b"first"]
    assert r.truncated
    assert r.error.startswith(f"corrupt record at byte {len(good)}: ")
    assert needle in r.error


def test_spb_before_any_interface_is_corrupt(tmp_path):
    r = open_capture(write(tmp_path, "s.pcapng", shb() + spb("<", b"abc")))
    assert list(r) == []
    assert "simple packet block before any interface" in r.error


def test_spb_is_cut_to_snaplen(tmp_path):
    content = shb() + idb("<", 101, snaplen=4) + spb("<", b"abcdefgh")
    assert [f.data for f in open_capture(write(tmp_path, "s.pcapng", content))] == [b"abcd"]


@pytest.mark.shared
@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_real_capture_never_raises_past_open(data):
    require_shared()
    small = [p for p in public_captures() if p.stat().st_size < 5000]
    path = data.draw(st.sampled_from(small))
    blob = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        reader = open_capture(io.BytesIO(bytes(blob[:cut])))
    except CaptureError as exc:
        assert "\n" not in str(exc)
        return
    frames = list(reader)  # never raises
    assert reader.frames_read == len(frames)
    assert reader.truncated == (reader.error is not None)
