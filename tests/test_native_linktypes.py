"""The fast lane and the native decoder behind every link header we decode, over IPv4 and IPv6.

A capture made with ``tcpdump -i any`` (Linux cooked v2), on a VLAN trunk
(one or two 802.1Q/802.1ad tags), on a BSD or OpenBSD loopback, as raw IP, or
over IPv6 must take the same fast path as IPv4 over plain Ethernet: the same
frames skipped, the same frames handed out, the same dissection.  Each
capture here is the same traffic as an Ethernet/IPv4 one, re-framed, so that
run is the reference; the Python loop (``linklayer.ip_offset``, ``skip``) and
the native one (``_walk.c``'s ``ip_at``, ``skip_frame``) must agree frame by
frame, also on link headers built to be wrong.
"""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys

import pytest

from mysqlwire.capture.decode import TcpSegment, decode_frame
from mysqlwire.capture.reader import open_capture
from mysqlwire.dissect import DissectOptions
from tests import test_native_walk as _nw
from tests.test_native_walk import ROOT, _Flow, _handed_out, _records, _require_native, walk

python_loop = _nw.python_loop  # the fixture: both loops, switched per test


def _load_relink():
    """benchmarks/relink.py (a script, not a package module)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("relink", ROOT / "benchmarks" / "relink.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_relink = _load_relink()
KINDS, relink, _to_ipv6 = _relink.KINDS, _relink.relink, _relink.to_ipv6
V4_KINDS = sorted(k for k in KINDS if k != "ipv6")
V6_KINDS = sorted(k for k in KINDS if k != "ipv4")


@pytest.fixture(scope="module")
def bench_capture(tmp_path_factory):
    """benchmarks/make_capture.py's traffic: logins, TLS, compressed and plain
    command phases, result sets, bare ACKs -- what the fast lane is for."""
    pcap = tmp_path_factory.mktemp("linktypes") / "eth.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "make_capture.py"), "-n", "40", "-o", str(pcap)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return pcap


def _without_path(records: list[dict], v6: bool = False) -> list[dict]:
    out = [{k: v for k, v in r.items() if k != "capture"} for r in records]
    if v6:  # the IPv4 run's endpoints, as relink() wrote them in IPv6
        for r in out:
            for side in ("client", "server"):
                host, port = r[side].rsplit(":", 1)
                n = [int(x) for x in host.strip("[]").split(".")]
                r[side] = f"[fd00::{n[0] << 8 | n[1]:x}:{n[2] << 8 | n[3]:x}]:{port}"
    return out


@pytest.mark.parametrize("kind,v6", [(k, False) for k in V4_KINDS] + [(k, True) for k in V6_KINDS])
def test_every_link_type_takes_the_fast_lane(kind, v6, bench_capture, tmp_path, python_loop):
    """The same answer as IPv4 over Ethernet, and as few frames handed out: a
    link type or an IP version left out of the fast lane would hand out every
    frame."""
    _require_native()
    other = tmp_path / f"{kind}.pcap"
    other.write_bytes(relink(bench_capture.read_bytes(), kind, v6))
    python_loop(False)
    eth = _without_path(_records(bench_capture), v6)
    eth_out, eth_read = _handed_out(bench_capture, None)
    assert len(eth_out) < eth_read * 0.5  # (the fast lane works on Ethernet)
    with_packets = DissectOptions(with_packets=True)
    for use_python in (True, False):
        python_loop(use_python)
        got = [{k: v for k, v in r.items() if k != "capture"} for r in _records(other)]
        assert got == eth
        got = [
            {k: v for k, v in r.items() if k != "capture"} for r in _records(other, with_packets)
        ]
        assert got == _without_path(_records(bench_capture, with_packets), v6)
        out, read = _handed_out(other, None)
        assert read == eth_read
        assert len(out) == len(eth_out), f"{kind}: the fast lane skipped other frames"
        assert [ts for ts, _ in out] == [ts for ts, _ in eth_out]


def _decoded_counting(blob: bytes, monkeypatch) -> tuple[list, list]:
    """decoded() of ``blob`` and the link types of the frames it left to
    decode_frame (the native loop decodes the others itself)."""
    from mysqlwire.capture import reader as reader_mod

    calls = []

    def counted(lt, data):
        calls.append(lt)
        return decode_frame(lt, data)

    monkeypatch.setattr(reader_mod, "decode_frame", counted)
    got = list(open_capture(io.BytesIO(blob)).decoded())
    monkeypatch.setattr(reader_mod, "decode_frame", decode_frame)
    return got, calls


@pytest.mark.parametrize("kind,v6", [(k, False) for k in V4_KINDS] + [(k, True) for k in V6_KINDS])
def test_native_decoding_behind_every_link_header(
    kind, v6, bench_capture, python_loop, monkeypatch
):
    """decoded() gives decode_frame's segment for every frame, each link type,
    decoding them natively (decode_frame is not called for them)."""
    _require_native()
    blob = relink(bench_capture.read_bytes(), kind, v6)
    python_loop(False)
    got, calls = _decoded_counting(blob, monkeypatch)
    ref = [(ts, decode_frame(lt, d)) for ts, lt, d, _ in open_capture(io.BytesIO(blob)).records()]
    assert got == ref
    assert sum(type(s) is TcpSegment for _, s in got) == len(got)
    assert len(calls) < 0.02 * len(got), f"{kind}: {len(calls)} of {len(got)} left to decode_frame"
    python_loop(True)
    assert list(open_capture(io.BytesIO(blob)).decoded()) == got


def _tcp_packet(rnd: random.Random, src: bytes, dst: bytes, sp: int, dp: int) -> bytes:
    """IPv4 (4-byte addresses) or IPv6 (16-byte ones), then TCP; IPv6 with
    TCP next, or now and then behind a destination-options header."""
    payload = rnd.randbytes(rnd.choice([0, 0, 3, 30]))
    seq = rnd.getrandbits(32)  # (behind an extension header, read as a data offset or not)
    tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, 2, 5 << 4, 0x10, 512, 0, 0)
    if len(src) == 16:
        ext = b"\x06\x00" + bytes(6) if rnd.random() < 0.1 else b""
        nh = 60 if ext else 6
        head = struct.pack("!IHBB", 0x60000000, len(ext) + len(tcp) + len(payload), nh, 64)
        return head + src + dst + ext + tcp + payload
    total = 20 + len(tcp) + len(payload)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 6, 0, src, dst) + tcp + payload


def _hostile_head(rnd: random.Random, linktype: int) -> bytes:
    """A link header of ``linktype``: right, nearly right, or wrong."""
    et = rnd.choice([b"\x08\x00"] * 4 + [b"\x86\xdd", b"\x08\x06", b"\x88\x64", b"\x00\x00"])
    tags = b"".join(
        rnd.choice([b"\x81\x00", b"\x88\xa8", b"\x91\x00", b"\x92\x00", b"\x93\x00", b"\x81\x01"])
        + rnd.randbytes(2)
        for _ in range(rnd.choice([0, 0, 1, 2, 3]))
    )
    if linktype == 1:
        if tags:  # the first tag's type sits where the EtherType would
            return bytes(12) + tags[:2] + tags[2:4] + tags[4:] + et
        return bytes(12) + et
    if linktype == 113:
        if tags:
            return bytes(14) + tags[:2] + tags[2:4] + tags[4:] + et
        return bytes(14) + et
    if linktype == 276:
        first = tags[:2] if tags else et
        rest = (tags[2:4] + tags[4:] + et) if tags else b""
        return first + rnd.randbytes(18) + rest
    af = rnd.choice(
        [b"\x02\0\0\0", b"\0\0\0\x02", b"\x18\0\0\0", b"\0\0\0\x1e", b"\x0a\0\0\0", b"\0\0\0\x1c"]
        + [b"\x02\0\0\x01", b"\0\x02\0\0", b"\x1e\0\x01\0", b"\0\0\0\x03", bytes(4)]
    )
    return af if linktype in (0, 108) else b""


@pytest.mark.parametrize("linktype", [1, 113, 276, 0, 108, 101, 228, 229])
@pytest.mark.parametrize("seed", range(3))
def test_hostile_link_headers(linktype, seed, python_loop):
    """Random link headers (VLAN stacks of 0-3 tags of every kind, other
    EtherTypes, either loopback byte order, other address families, frames
    cut anywhere) in front of well-formed IPv4/TCP or IPv6/TCP, whatever the
    link header says: both loops skip the same frames, and each frame skipped
    is one decode_frame decodes as a segment of a flow in the lane (never a
    frame it would read otherwise, as another IP version or as not TCP)."""
    _require_native()
    rnd = random.Random(seed * 1000 + linktype)
    pairs = [(bytes([10, 0, 0, i + 1]), b"\x0a\0\0\x63", 40000 + i, 3306) for i in range(3)]
    pairs += [(b"\xfd" + bytes(14) + bytes([i + 1]), b"\xfd" + bytes(14) + b"\x63", 41000 + i, 3306)
              for i in range(3)]  # fmt: skip
    keys = [s + d + struct.pack("!HH", sp, dp) for s, d, sp, dp in pairs]
    recs = []
    for i in range(500):
        src, dst, sp, dp = pairs[rnd.randrange(len(pairs))]
        frame = _hostile_head(rnd, linktype) + _tcp_packet(rnd, src, dst, sp, dp)
        if rnd.random() < 0.1:
            frame = frame[: rnd.randrange(0, len(frame) + 1)]
        recs.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame)
    blob = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype) + b"".join(recs)
    results = []
    for use_python in (True, False):
        python_loop(use_python)
        flows = [_Flow() for _ in keys]
        fast = {k: (f, 0, 0, None) for k, f in zip(keys, flows, strict=True)}  # muted: any frame
        got = walk(io.BytesIO(blob), fast)
        results.append((got, [f.last_ts for f in flows]))
    assert results[0] == results[1]
    # and the native decoder reads each frame as decode_frame does
    python_loop(False)
    got = list(open_capture(io.BytesIO(blob)).decoded())
    ref = [(ts, decode_frame(lt, d)) for ts, lt, d, _ in open_capture(io.BytesIO(blob)).records()]
    assert got == ref
    assert [type(seg) for _, seg in got] == [type(seg) for _, seg in ref]
    handed = {ts for ts, *_ in results[0][0]["frames"]}
    every = list(open_capture(io.BytesIO(blob)).records())
    skipped = [(lt, data) for ts, lt, data, _ in every if ts not in handed]
    assert skipped, "no frame took the fast lane"
    for lt, data in skipped:
        seg = decode_frame(lt, data)
        if type(seg) is int:
            # a frame cut inside its TCP header, of a muted direction (as over
            # Ethernet): decode_frame's "malformed" (1), never a frame it reads
            # as another flow, as IPv6 or as not TCP
            assert seg == 1
            continue
        assert type(seg) is TcpSegment
        assert seg.saddr + seg.daddr + struct.pack("!HH", seg.sport, seg.dport) in keys
    decodable = [1 for _ts, lt, data, _ in every if type(decode_frame(lt, data)) is TcpSegment]
    # only VLAN stacks deeper than two tags are decodable but left to the ordinary path
    assert len(skipped) >= 0.6 * len(decodable)


def test_scanners_refuse_bad_link_parameters():
    _require_native()
    from mysqlwire.capture import reader as reader_mod

    scan = reader_mod._PcapScan
    for l3off, check in [(14, 13), (1, 0), (3, -2), (3, -3), (0, -7), (-1, -1), (200, -1)]:
        with pytest.raises(ValueError):
            scan(False, 16, 1e6, 1, l3off, check, None)
    scan(False, 16, 1e6, 1, 14, 12, None)  # Ethernet
    scan(False, 16, 1e6, 276, 20, 0, None)  # Linux cooked v2
    scan(False, 16, 1e6, 147, 0, -4, None)  # a link type not located
    from tests.test_capture_reader import epb

    frame = bytes(12) + b"\x08\x00" + bytes(60)
    block = epb("<", 0, 1, frame)
    ng = reader_mod._PcapngScan
    assert ng({}, {1: (14, 12)}).scan(block, 0, [(1, 1000000, 0, 0)], False)[1] is not None
    for bad in [(14, 13), (2, -3)]:
        with pytest.raises(ValueError):
            ng({}, {1: bad}).scan(block, 0, [(1, 1000000, 0, 0)], False)


@pytest.mark.parametrize("seed", range(4))
def test_fast_lane_decisions_of_every_mode_over_ipv6(seed, python_loop):
    """test_native_walk's random frames of every fast-lane mode (data, bare
    ACKs, control flags, short TCP headers, lying lengths, cut frames), as
    IPv6: both loops, and both lanes, decide the same."""
    _require_native()
    blob, keys = _nw._lane_frames(seed)
    out = [blob[:24]]
    pos = 24
    while pos + 16 <= len(blob):
        sec, frac, incl, _orig = struct.unpack_from("<IIII", blob, pos)
        frame = blob[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        if frame[12:14] == b"\x08\x00" and len(frame) >= 34:
            frame = frame[:12] + b"\x86\xdd" + _to_ipv6(frame[14:])
        out.append(struct.pack("<IIII", sec, frac, len(frame), len(frame)) + frame)
    v6 = b"\xfd" + bytes(11)
    keys6 = [v6 + k[:4] + v6 + k[4:8] + k[8:] for k in keys]
    _nw.decide_every_mode(b"".join(out), keys6, seed, python_loop)


def _frames(blob: bytes) -> list[bytes]:
    return [data for _ts, _lt, data, _i in open_capture(io.BytesIO(blob)).records()]


@pytest.mark.parametrize("order", ["<", ">"])
def test_native_decoding_of_pcapng_blocks(order, bench_capture, python_loop, monkeypatch):
    """decoded() on pcapng: interfaces of several link types (Ethernet,
    Linux cooked v2 over IPv6, raw IPv6, one no frame of which is decoded),
    Enhanced, Simple and obsolete Packet Blocks interleaved, either byte
    order: the native loop's (ts, segment) pairs are decode_frame's, in both
    loops, and a scan hands out what records() does when not asked to decode."""
    _require_native()
    from tests.test_capture_reader import epb, idb, old_pb, shb, spb

    raw = bench_capture.read_bytes()
    per_iface = [
        _frames(raw),  # 0: Ethernet, IPv4
        _frames(relink(raw, "sll2", True)),  # 1: Linux cooked v2, IPv6
        _frames(relink(raw, "ipv6", True)),  # 2: raw IPv6
    ]
    rnd = random.Random(7)
    blob = shb(order) + idb(order, 1) + idb(order, 276) + idb(order, 229) + idb(order, 147)
    for i in range(len(per_iface[0])):
        iface = rnd.randrange(4)
        data = per_iface[min(iface, 2)][i]
        kind = rnd.random()
        if kind < 0.05 and iface == 0:
            blob += spb(order, data)  # (an SPB is on interface 0)
        elif kind < 0.1:
            blob += old_pb(order, iface, 1_700_000_000_000_000 + i, data)
        else:
            blob += epb(order, iface, 1_700_000_000_000_000 + i, data)
    python_loop(False)
    got, calls = _decoded_counting(blob, monkeypatch)
    ref = [(ts, decode_frame(lt, d)) for ts, lt, d, _ in open_capture(io.BytesIO(blob)).records()]
    assert got == ref
    assert [type(s) for _, s in got] == [type(s) for _, s in ref]
    assert {type(s) for _, s in got} == {TcpSegment, int}  # (interface 3: not decoded)
    # the Enhanced Packet Blocks of the three decoded interfaces were decoded
    # natively: decode_frame saw the other interface's, the SPBs and PBs, and
    # the few frames the native decoder leaves to it
    assert len(calls) < 0.45 * len(got), (len(calls), len(got))
    assert calls.count(147) >= 0.2 * len(got)
    python_loop(True)
    assert list(open_capture(io.BytesIO(blob)).decoded()) == got
