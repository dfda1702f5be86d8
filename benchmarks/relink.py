"""Re-frame an Ethernet/IPv4 pcap behind another link header, and/or as IPv6.

The frames' IP packets are kept (or rewritten as IPv6: ``fd00::/96`` plus the
IPv4 address, the same payload), so a dissection of the result must give the
same answer as the original (addresses aside).  ``benchmarks/run.py`` uses it
for the ``cooked6`` shape (``tcpdump -i any`` on an IPv6 network: Linux cooked
v2 + IPv6), ``tests/test_native_linktypes.py`` for every link type.

    python benchmarks/relink.py IN.pcap OUT.pcap --link sll2 [--ipv6]
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path


def _af(et: bytes, v6: int) -> int:
    """A BSD loopback address family: AF_INET, or one of the AF_INET6 values."""
    return 2 if et == b"\x08\x00" else v6


# link type, and the header put in front of an Ethernet frame's IP packet
# (mac: the frame's source MAC, et: its EtherType)
KINDS = {
    "eth": (1, lambda mac, et: bytes(6) + mac + et),
    "sll": (113, lambda mac, et: struct.pack(">HHH", 0, 1, 6) + mac + b"\0\0" + et),
    "sll2": (276, lambda mac, et: et + b"\0\0" + struct.pack(">IHBB", 3, 1, 0, 6) + mac + b"\0\0"),
    "vlan": (1, lambda mac, et: bytes(6) + mac + b"\x81\x00\x00\x64" + et),
    "qinq": (1, lambda mac, et: bytes(6) + mac + b"\x88\xa8\x00\x0a\x81\x00\x00\x64" + et),
    "null-le": (0, lambda mac, et: struct.pack("<I", _af(et, 30))),  # (macOS)
    "null-be": (0, lambda mac, et: struct.pack(">I", _af(et, 24))),  # (NetBSD/OpenBSD)
    "loop": (108, lambda mac, et: struct.pack(">I", _af(et, 24))),
    "raw": (101, lambda mac, et: b""),
    "ipv4": (228, lambda mac, et: b""),
    "ipv6": (229, lambda mac, et: b""),
}


def to_ipv6(ip: bytes) -> bytes:
    """An IPv4 packet as IPv6 (fd00::/96 + the IPv4 address; same payload)."""
    ihl = (ip[0] & 15) * 4
    total = ip[2] << 8 | ip[3]
    head = struct.pack("!IHBB", 0x60000000, max(0, total - ihl), ip[9], 64)
    return head + b"\xfd" + bytes(11) + ip[12:16] + b"\xfd" + bytes(11) + ip[16:20] + ip[ihl:]


def relink(blob: bytes, kind: str, v6: bool = False) -> bytes:
    """An Ethernet/IPv4 pcap's frames under another link header (and as IPv6)."""
    linktype, head = KINDS[kind]
    out = [blob[:20] + struct.pack("<I", linktype)]
    pos = 24
    while pos + 16 <= len(blob):
        sec, frac, incl, orig = struct.unpack_from("<IIII", blob, pos)
        frame = blob[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        if frame[12:14] != b"\x08\x00":
            raise ValueError(f"frame at byte {pos - 16 - incl}: not Ethernet/IPv4")
        ip, et = (to_ipv6(frame[14:]), b"\x86\xdd") if v6 else (frame[14:], b"\x08\x00")
        new = head(frame[6:12], et) + ip
        out.append(struct.pack("<IIII", sec, frac, len(new), orig - incl + len(new)) + new)
    return b"".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--link", choices=sorted(KINDS), default="eth")
    ap.add_argument("--ipv6", action="store_true")
    args = ap.parse_args(argv)
    if args.dst.exists() and args.dst.resolve() == args.src.resolve():
        raise SystemExit("relink: the output would overwrite the input")
    args.dst.write_bytes(relink(args.src.read_bytes(), args.link, args.ipv6))


if __name__ == "__main__":
    main()
