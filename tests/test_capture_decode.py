"""mysqlwire.capture.decode: every link type built by hand, then Scapy on every shared capture."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlwire.capture import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    DecodeStats,
    TcpSegment,
    decode_tcp,
    endpoint,
    iter_segments,
    open_capture,
)
from mysqlwire.errors import CaptureError
from tests.conftest import lab_sample_captures, public_captures, require_shared

ALL_CAPTURES = public_captures() + lab_sample_captures()

# ---------------------------------------------------------------------------
# frame builders


def tcp(sport=51000, dport=3306, seq=1000, ack=2000, flags=ACK | PSH, payload=b"", options=b""):
    options += b"\x01" * (-len(options) & 3)  # NOP padding
    doff = (20 + len(options)) // 4
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, 65535, 0, 0)
        + options
        + payload
    )


def ipv4(l4: bytes, src="10.0.0.1", dst="10.0.0.2", proto=6, options=b"", frag=0x4000, total=None):
    options += b"\x00" * (-len(options) & 3)
    ihl = (20 + len(options)) // 4
    tot = 20 + len(options) + len(l4) if total is None else total
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        tot,
        1,
        frag,
        64,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return head + options + l4


def ipv6(l4: bytes, src="2001:db8::1", dst="2001:db8::2", nh=6, ext=b""):
    return (
        struct.pack("!IHBB", 0x60000000, len(ext) + len(l4), nh, 64)
        + socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + ext
        + l4
    )


def ext_header(nh: int, length8: int = 0) -> bytes:
    """Hop-by-hop / routing / destination options: (length8 + 1) * 8 bytes."""
    return bytes([nh, length8]) + b"\x00" * (6 + 8 * length8)


def frag_header(nh: int, offset8: int = 0, more: bool = False) -> bytes:
    return struct.pack("!BBHI", nh, 0, (offset8 << 3) | int(more), 0x1234)


MAC = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"


def ether(l3: bytes, ethertype=0x0800, vlans=()) -> bytes:
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    return MAC + tags + struct.pack("!H", ethertype) + l3


def sll(l3: bytes, proto=0x0800) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, MAC[:6] + b"\0\0", proto) + l3


def sll2(l3: bytes, proto=0x0800) -> bytes:
    return struct.pack("!HHIHBB8s", proto, 0, 2, 1, 0, 6, MAC[:6] + b"\0\0") + l3


def null(l3: bytes, af: int, order="<") -> bytes:
    return struct.pack(order + "I", af) + l3


PAYLOAD = b"\x4a\x00\x00\x00\x0a8.0.36\x00greeting"
SEG = tcp(sport=3306, dport=51000, seq=0xFFFFFFF0, ack=7, flags=ACK | PSH, payload=PAYLOAD)


def check(seg, *, src="10.0.0.1", dst="10.0.0.2", v6=False, payload=PAYLOAD):
    assert isinstance(seg, TcpSegment)
    assert (seg.src, seg.sport, seg.dst, seg.dport) == (src, 3306, dst, 51000)
    assert (seg.seq, seg.ack, seg.flags) == (0xFFFFFFF0, 7, ACK | PSH)
    assert seg.payload == payload
    assert isinstance(seg.payload, bytes)
    assert seg.ipv6 is v6
    assert seg.missing == 0


V6 = {"src": "2001:db8::1", "dst": "2001:db8::2", "v6": True}

# ---------------------------------------------------------------------------
# link types


def test_ethernet_ipv4():
    check(decode_tcp(1, ether(ipv4(SEG))))


def test_ethernet_ipv6():
    check(decode_tcp(1, ether(ipv6(SEG), 0x86DD)), **V6)


def test_vlan_and_qinq():
    check(decode_tcp(1, ether(ipv4(SEG), vlans=[(0x8100, 42)])))
    check(decode_tcp(1, ether(ipv4(SEG), vlans=[(0x88A8, 100), (0x8100, 42)])))
    check(
        decode_tcp(1, ether(ipv6(SEG), 0x86DD, vlans=[(0x9100, 1), (0x8100, 2), (0x8100, 3)])), **V6
    )


def test_pppoe_and_mpls():
    pppoe = struct.pack("!BBHHH", 0x11, 0, 1, 2 + 20 + len(SEG), 0x0021)
    check(decode_tcp(1, ether(pppoe + ipv4(SEG), 0x8864)))
    labels = struct.pack("!I", (16 << 12) | 64) + struct.pack("!I", (17 << 12) | 0x100 | 64)
    check(decode_tcp(1, ether(labels + ipv4(SEG), 0x8847)))


def test_ethernet_padding_is_not_payload():
    small = tcp(sport=3306, dport=51000, seq=0xFFFFFFF0, ack=7, payload=b"ab")
    frame = ether(ipv4(small)) + b"\0" * 4  # padded to 60 bytes on the wire
    assert len(frame) == 60
    seg = decode_tcp(1, frame)
    assert seg.payload == b"ab"
    assert seg.missing == 0


def test_linux_cooked_v1_v2():
    check(decode_tcp(113, sll(ipv4(SEG))))
    check(decode_tcp(113, sll(ipv6(SEG), 0x86DD)), **V6)
    check(decode_tcp(276, sll2(ipv4(SEG))))
    check(decode_tcp(276, sll2(ipv6(SEG), 0x86DD)), **V6)


@pytest.mark.parametrize("order", ["<", ">"])
def test_bsd_null_both_byte_orders(order):
    check(decode_tcp(0, null(ipv4(SEG), 2, order)))
    for af in (24, 28, 30):
        check(decode_tcp(0, null(ipv6(SEG), af, order)), **V6)
    assert decode_tcp(0, null(ipv4(SEG), 7, order)) is None


def test_openbsd_loop_is_big_endian():
    check(decode_tcp(108, null(ipv4(SEG), 2, ">")))
    check(decode_tcp(108, null(ipv6(SEG), 24, ">")), **V6)


@pytest.mark.parametrize("linktype", [101, 12, 14])
def test_raw_ip(linktype):
    check(decode_tcp(linktype, ipv4(SEG)))
    check(decode_tcp(linktype, ipv6(SEG)), **V6)


def test_raw_ipv4_ipv6_linktypes():
    check(decode_tcp(228, ipv4(SEG)))
    check(decode_tcp(229, ipv6(SEG)), **V6)


# ---------------------------------------------------------------------------
# IP details


def test_ipv4_options_honour_ihl():
    opts = b"\x94\x04\x00\x00" + b"\x01\x01\x01\x00"  # router alert, NOPs, end
    check(decode_tcp(1, ether(ipv4(SEG, options=opts))))


def test_tcp_options_skipped():
    seg_opts = tcp(
        sport=3306, dport=51000, seq=0xFFFFFFF0, ack=7, payload=PAYLOAD, options=b"\x02\x04\x05\xb4"
    )
    check(decode_tcp(1, ether(ipv4(seg_opts))))


def test_ipv4_fragments():
    first = ipv4(SEG, frag=0x2000)  # MF set, offset 0: the TCP header is here
    assert decode_tcp(1, ether(first)) is not None
    stats = DecodeStats()
    assert decode_tcp(1, ether(ipv4(b"rest of data", frag=0x0003)), stats) is None
    assert stats.fragments == 1 and stats.malformed == 0


def test_ipv6_extension_headers():
    ext = ext_header(43, 1) + ext_header(60) + ext_header(44) + frag_header(6)
    check(decode_tcp(1, ether(ipv6(SEG, nh=0, ext=ext), 0x86DD)), **V6)
    # Authentication header.
    ah = bytes([6, 4]) + b"\0" * 22
    check(decode_tcp(229, ipv6(SEG, nh=51, ext=ah)), **V6)


def test_ipv6_non_first_fragment_and_no_next_header():
    stats = DecodeStats()
    assert decode_tcp(229, ipv6(b"x" * 16, nh=44, ext=frag_header(6, offset8=10)), stats) is None
    assert decode_tcp(229, ipv6(b"", nh=59), stats) is None
    assert stats.fragments == 1 and stats.non_tcp == 1


def test_non_tcp_is_none_and_counted():
    stats = DecodeStats()
    udp = struct.pack("!HHHH", 53, 53, 8, 0)
    assert decode_tcp(1, ether(ipv4(udp, proto=17)), stats) is None
    assert decode_tcp(1, ether(b"\x00" * 28, 0x0806), stats) is None  # ARP
    assert decode_tcp(229, ipv6(b"\x80\x00" + b"\0" * 6, nh=58), stats) is None  # ICMPv6
    assert stats.non_tcp == 3
    assert stats.frames == 3 and stats.by_linktype == {1: 2, 229: 1}


def test_snaplen_cut_counts_missing():
    frame = ether(ipv4(SEG))
    cut = frame[: len(frame) - 5]
    stats = DecodeStats()
    seg = decode_tcp(1, cut, stats)
    assert seg.payload == PAYLOAD[:-5]
    assert seg.missing == 5
    assert stats.truncated == 1 and stats.tcp == 1
    seg6 = decode_tcp(229, ipv6(SEG)[:-3])
    assert seg6.missing == 3 and seg6.payload == PAYLOAD[:-3]


def test_tso_zero_total_length_uses_frame():
    seg = decode_tcp(1, ether(ipv4(SEG, total=0)))
    check(seg)


@pytest.mark.parametrize(
    "linktype,frame",
    [
        (1, b""),
        (1, MAC),
        (1, ether(b"\x45\x00")),
        (1, ether(ipv4(SEG)[:30])),  # TCP header cut short
        (1, ether(b"\x46" + ipv4(SEG)[1:])),  # IHL says options that are the TCP header
        (1, ether(b"\x43" + ipv4(SEG)[1:])),  # IHL 3 < 5
        (1, ether(b"\x55" + ipv4(SEG)[1:])),  # version 5
        (101, b"\x90" + b"\0" * 30),  # version 9
        (1, ether(ipv4(SEG, total=25))),  # total length inside the TCP header
        (1, ether(ipv4(SEG[:12] + b"\x30" + SEG[13:]))),  # TCP data offset 3
        (1, ether(ipv4(SEG[:12] + b"\xf0" + SEG[13:]))),  # TCP data offset past the end
        (229, ipv6(SEG)[:30]),
        (229, ipv6(SEG, nh=0, ext=b"\x06\x09")),  # extension header longer than the packet
        (0, b"\x02\x00"),
        (113, b"\0" * 10),
        (276, b"\0" * 10),
    ],
)
def test_malformed_is_none_and_counted(linktype, frame):
    stats = DecodeStats()
    assert decode_tcp(linktype, frame, stats) is None
    assert stats.malformed == 1, stats


def test_unsupported_linktype():
    stats = DecodeStats()
    assert decode_tcp(127, ether(ipv4(SEG)), stats) is None
    assert stats.unsupported == 1


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147]),
    st.binary(max_size=200),
)
def test_never_raises_on_garbage(linktype, data):
    stats = DecodeStats()
    seg = decode_tcp(linktype, data, stats)
    assert seg is None or isinstance(seg, TcpSegment)
    assert stats.frames == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 60), st.integers(0, 255))
def test_never_raises_on_mutated_frames(junk, where, value):
    frame = bytearray(ether(ipv6(SEG, nh=0, ext=ext_header(6)), 0x86DD) + junk)
    if where < len(frame):
        frame[where] = value
    seg = decode_tcp(1, bytes(frame))
    assert seg is None or isinstance(seg, TcpSegment)
    seg2 = decode_tcp(1, memoryview(bytes(frame)))  # memoryview input works too
    assert seg2 == seg
    if seg2 is not None:
        assert type(seg2.payload) is bytes and type(seg2.saddr) is bytes


# ---------------------------------------------------------------------------
# helpers


def test_endpoint_and_segment_helpers():
    assert endpoint("1.2.3.4", 3306) == "1.2.3.4:3306"
    assert endpoint("::1", 3306) == "[::1]:3306"
    seg = TcpSegment.make("::1", 5, "2001:db8::9", 3306, seq=2**32 + 5, flags=SYN)
    assert (seg.src, seg.dst, seg.seq, seg.ipv6) == ("::1", "2001:db8::9", 5, True)
    assert "[::1]:5 > [2001:db8::9]:3306 [S]" in repr(seg)
    assert (FIN, SYN, RST, PSH, ACK) == (1, 2, 4, 8, 16)


def test_iter_segments_stats(tmp_path):
    from tests.test_capture_reader import pcap_bytes

    frames = [
        (1, 0, ether(ipv4(SEG))),
        (2, 0, ether(ipv4(struct.pack("!HHHH", 1, 2, 8, 0), proto=17))),
        (3, 0, b"\0" * 5),
        (4, 0, ether(ipv4(SEG))[:-2]),
    ]
    p = tmp_path / "x.pcap"
    p.write_bytes(pcap_bytes(frames))
    stats = DecodeStats()
    got = list(iter_segments(open_capture(p), stats))
    assert [ts for ts, _ in got] == [1.0, 4.0]
    assert stats.as_dict() == {
        "frames": 4,
        "tcp": 2,
        "non_tcp": 1,
        "fragments": 0,
        "malformed": 1,
        "unsupported": 0,
        "truncated": 1,
        "by_linktype": {1: 4},
    }


def test_iter_segments_raises_when_no_frame_has_a_known_link_type():
    records = [(1.0, 127, b"\0" * 40, 0), (2.0, 220, b"\0" * 40, 0)]
    with pytest.raises(CaptureError, match="unsupported link type 127 .*220"):
        list(iter_segments(records))
    stats = DecodeStats()
    assert list(iter_segments([(1.0, 127, b"", 0), (2.0, 1, b"", 0)], stats)) == []
    assert stats.by_linktype == {127: 1, 1: 1}


# ---------------------------------------------------------------------------
# every shared capture against Scapy


def scapy_tcp(path: Path):
    """Per frame: None, or (src, sport, dst, dport, seq, ack, flags, payload) from Scapy."""
    from scapy.all import IP, TCP, IPv6, Padding, PcapReader  # noqa: PLC0415 - oracle

    out = []
    with PcapReader(str(path)) as rd:
        for pkt in rd:
            ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
            t = pkt.getlayer(TCP)
            if ip is None or t is None or (isinstance(ip, IP) and ip.frag):
                out.append(None)
                continue
            payload = bytes(t.payload)
            pad = t.getlayer(Padding)
            if pad is not None:
                payload = payload[: len(payload) - len(bytes(pad))]
            out.append(
                (ip.src, t.sport, ip.dst, t.dport, t.seq, t.ack, int(t.flags) & 0xFF, payload)
            )
    return out


@pytest.mark.shared
@pytest.mark.parametrize(
    "path", ALL_CAPTURES, ids=[f"{p.parent.name}/{p.name}" for p in ALL_CAPTURES]
)
def test_shared_capture_tcp_matches_scapy(path: Path):
    require_shared()
    oracle = scapy_tcp(path)
    stats = DecodeStats()
    ours = []
    for fr in open_capture(path):
        seg = decode_tcp(fr.linktype, fr.data, stats)
        ours.append(
            None
            if seg is None
            else (seg.src, seg.sport, seg.dst, seg.dport, seg.seq, seg.ack, seg.flags, seg.payload)
        )
    assert len(ours) == len(oracle)
    for i, (a, b) in enumerate(zip(ours, oracle, strict=True)):
        assert a == b, f"frame {i + 1}"
    assert stats.tcp == sum(1 for x in ours if x is not None)
    assert stats.tcp > 0
    assert stats.malformed == 0
