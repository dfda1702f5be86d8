"""Writing captures: pcap/pcapng copies with rewritten frames, and pcapng
Decryption Secrets Blocks.  Shared by ``redact`` (every frame through a
rewrite callback, secrets blocks dropped) and ``keylog-inject`` (a DSB added).

* :func:`copy_rewritten` -- copy a pcap or pcapng record by record, each
  frame's bytes through ``rewrite(index, linktype, data) -> bytes`` (same
  length), Decryption Secrets Blocks dropped, and -- when addresses are mapped
  -- Name Resolution Blocks and interface address options too.  The copy ends
  at the last complete record of a damaged capture.
* :func:`write_with_secrets` -- a pcapng = the capture + one DSB placed before
  the first packet.  pcap input (us or ns, either byte order) is converted:
  SHB, one IDB with the original link type and snaplen (``if_tsresol`` 6 or
  9), one EPB per packet with its lengths and exact timestamp; pcapng input is
  copied block by block untouched (every section, interface, option,
  comment), the DSB inserted in the section's byte order.

Streaming: memory is one record (at most :data:`~.reader.MAX_RECORD`).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from ..errors import CaptureError
from .reader import MAX_RECORD

#: pcapng Decryption Secrets Block secrets type for an NSS key log ("TLSK").
DSB_TLS_KEY_LOG = 0x544C534B

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 6),
    b"\xa1\xb2\xc3\xd4": (">", 6),
    b"\x4d\x3c\xb2\xa1": ("<", 9),
    b"\xa1\xb2\x3c\x4d": (">", 9),
}
SHB = 0x0A0D0D0A
IDB = 0x00000001
PB = 0x00000002  # obsolete Packet Block
SPB = 0x00000003
EPB = 0x00000006
DSB = 0x0000000A
PACKET_BLOCKS = (PB, SPB, EPB)

OPT_ENDOFOPT = 0
OPT_SHB_USERAPPL = 4
OPT_IF_TSRESOL = 9


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def _option(endian: str, code: int, value: bytes) -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + value + b"\0" * _pad4(len(value))


def _block(endian: str, btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack(endian + "II", btype, total) + body + struct.pack(endian + "I", total)


def dsb_block(secrets: bytes, endian: str = "<", secrets_type: int = DSB_TLS_KEY_LOG) -> bytes:
    """A Decryption Secrets Block (by default carrying an NSS key log)."""
    body = struct.pack(endian + "II", secrets_type, len(secrets)) + secrets
    body += b"\0" * _pad4(len(secrets))
    return _block(endian, DSB, body)


def write_with_secrets(
    fin: BinaryIO, fout: BinaryIO, secrets: bytes, secrets_type: int = DSB_TLS_KEY_LOG
) -> int:
    """Write ``fout`` (pcapng) = capture ``fin`` + one DSB holding ``secrets``;
    returns the number of packets copied."""
    magic = fin.read(4)
    if magic in PCAP_MAGICS:
        return _convert_pcap(fin, fout, magic, secrets, secrets_type)
    if magic == struct.pack("<I", SHB):
        return _copy_pcapng(fin, fout, magic, secrets, secrets_type)
    raise CaptureError(f"neither pcap nor pcapng (magic {magic.hex()})")


def copy_rewritten(
    fin: BinaryIO, fout: BinaryIO, fmt: str, rewrite, *, map_ips: bool
) -> dict[str, int]:
    """Copy capture ``fin`` (``fmt`` "pcap" or "pcapng") to ``fout`` with every
    frame through ``rewrite``; returns the pcapng blocks dropped, by kind."""
    dropped: dict[str, int] = {}
    if fmt == "pcapng":
        _copy_pcapng_rewritten(fin, fout, rewrite, dropped, map_ips)
    elif fmt == "pcap":
        _copy_pcap_rewritten(fin, fout, rewrite)
    else:
        raise CaptureError(f"unsupported capture format {fmt!r}")
    return dropped


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise CaptureError(f"truncated capture: {what} cut short")
    return data


def _shb(endian: str = "<") -> bytes:
    body = struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    body += _option(endian, OPT_SHB_USERAPPL, b"mysqlwire")
    body += _option(endian, OPT_ENDOFOPT, b"")
    return _block(endian, SHB, body)


def _convert_pcap(
    fin: BinaryIO, fout: BinaryIO, magic: bytes, secrets: bytes, secrets_type: int
) -> int:
    endian, tsresol = PCAP_MAGICS[magic]
    hdr = _read_exact(fin, 20, "pcap header")
    _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack(endian + "HHiIII", hdr)
    linktype = network & 0x0FFFFFFF
    if linktype > 0xFFFF:
        raise CaptureError(f"pcap link type {linktype} does not fit a pcapng IDB")
    fout.write(_shb())
    idb = struct.pack("<HHI", linktype, 0, snaplen)
    idb += _option("<", OPT_IF_TSRESOL, bytes([tsresol]))
    idb += _option("<", OPT_ENDOFOPT, b"")
    fout.write(_block("<", IDB, idb))
    fout.write(dsb_block(secrets, "<", secrets_type))
    scale = 10**tsresol
    rec = struct.Struct(endian + "IIII")
    count = 0
    while True:
        head = fin.read(16)
        if not head:
            break
        if len(head) < 16:
            raise CaptureError(f"truncated pcap: record header of packet {count + 1} cut short")
        sec, frac, caplen, origlen = rec.unpack(head)
        if caplen > MAX_RECORD:
            raise CaptureError(f"pcap record of packet {count + 1} claims {caplen} bytes")
        data = _read_exact(fin, caplen, f"packet {count + 1}")
        ts = sec * scale + frac
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, caplen, origlen)
        fout.write(_block("<", EPB, body + data + b"\0" * _pad4(caplen)))
        count += 1
    return count


def _copy_pcapng(
    fin: BinaryIO, fout: BinaryIO, first: bytes, secrets: bytes, secrets_type: int
) -> int:
    endian = "<"
    injected = False
    count = 0
    head = first + _read_exact(fin, 4, "block header")
    while True:
        btype_le = struct.unpack("<I", head[:4])[0]
        if btype_le == SHB:
            bom = _read_exact(fin, 4, "section header")
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise CaptureError("pcapng section header with a bad byte-order magic")
            total = struct.unpack(endian + "I", head[4:8])[0]
            if total < 28 or total > MAX_RECORD:
                raise CaptureError(f"pcapng section header with bad length {total}")
            rest = bom + _read_exact(fin, total - 12, "section header")
        else:
            total = struct.unpack(endian + "I", head[4:8])[0]
            if total < 12 or total % 4 or total > MAX_RECORD:
                raise CaptureError(f"pcapng block with bad length {total}")
            rest = _read_exact(fin, total - 8, "block")
        btype = struct.unpack(endian + "I", head[:4])[0]
        if btype in PACKET_BLOCKS:
            if not injected:
                fout.write(dsb_block(secrets, endian, secrets_type))
                injected = True
            count += 1
        fout.write(head)
        fout.write(rest)
        head = fin.read(8)
        if not head:
            break
        if len(head) < 8:
            raise CaptureError("truncated pcapng: block header cut short")
    if not injected:  # no packets at all: still carry the secrets
        fout.write(dsb_block(secrets, endian, secrets_type))
    return count


def _copy_pcap_rewritten(src, dst, rewrite) -> None:
    head = src.read(24)
    magic = head[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    modified = magic in (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34")
    hlen = 24 if modified else 16
    linktype = struct.unpack_from(order + "I", head, 20)[0] & 0xFFFF
    dst.write(head)
    index = 0
    while True:
        rec = src.read(hlen)
        if len(rec) < hlen:
            return
        incl = struct.unpack_from(order + "I", rec, 8)[0]
        if incl > MAX_RECORD:
            return
        data = src.read(incl)
        if len(data) < incl:
            return
        dst.write(rec)
        dst.write(rewrite(index, linktype, data))
        index += 1


def _copy_pcapng_rewritten(src, dst, rewrite, dropped: dict[str, int], map_ips: bool) -> None:
    order = "<"
    linktypes: list[int] = []
    index = 0
    while True:
        head = src.read(8)
        if len(head) < 8:
            return
        btype = struct.unpack_from("<I", head, 0)[0]
        if btype == SHB:
            bom = src.read(4)
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            size = struct.unpack_from(order + "I", head, 4)[0]
            if size < 12 or size > MAX_RECORD:
                return
            body = bom + src.read(size - 12)
            linktypes = []
        else:
            btype, size = struct.unpack_from(order + "II", head, 0)
            if size > MAX_RECORD:
                return
            body = src.read(size - 8) if size >= 12 else b""
        if size < 12 or len(body) < size - 8:
            return
        block = bytearray(head + body)
        if btype == 0x0000000A:  # Decryption Secrets Block: TLS keys
            dropped["decryption secrets"] = dropped.get("decryption secrets", 0) + 1
            continue
        if btype == 0x00000004 and map_ips:  # Name Resolution Block: address -> name
            dropped["name resolution"] = dropped.get("name resolution", 0) + 1
            continue
        if btype == 0x00000001:
            linktypes.append(struct.unpack_from(order + "H", block, 8)[0])
            if map_ips:
                block = _strip_idb_addresses(block, order)
        elif btype in (0x00000006, 0x00000002):
            iface = struct.unpack_from(order + "I", block, 8)[0]
            if btype == 0x00000002:
                iface = iface & 0xFFFF if order == "<" else iface >> 16
            caplen = struct.unpack_from(order + "I", block, 20)[0]
            if iface < len(linktypes) and 28 + caplen <= len(block):
                block[28 : 28 + caplen] = rewrite(
                    index, linktypes[iface], bytes(block[28 : 28 + caplen])
                )
            index += 1
        elif btype == 0x00000003:
            orig = struct.unpack_from(order + "I", block, 8)[0]
            caplen = min(orig, len(block) - 16)
            if linktypes:
                block[12 : 12 + caplen] = rewrite(
                    index, linktypes[0], bytes(block[12 : 12 + caplen])
                )
            index += 1
        dst.write(block)


def _strip_idb_addresses(block: bytearray, order: str) -> bytearray:
    """Interface Description Block without if_IPv4addr / if_IPv6addr / if_MACaddr options."""
    opts = []
    pos, end = 16, len(block) - 4
    dropped = False
    while pos + 4 <= end:
        code, olen = struct.unpack_from(order + "HH", block, pos)
        step = 4 + olen + (-olen & 3)
        if code == 0:
            break
        if code in (4, 5, 6):
            dropped = True
        else:
            opts.append(bytes(block[pos : pos + step]))
        pos += step
    if not dropped:
        return block
    body = bytes(block[8:16]) + b"".join(opts) + (struct.pack(order + "HH", 0, 0) if opts else b"")
    size = 12 + len(body)
    return bytearray(struct.pack(order + "II", 1, size) + body + struct.pack(order + "I", size))


def write_pcap(f, linktype: int, frames) -> None:
    """A classic microsecond pcap (little-endian) of ``(ts, data)`` frames of one link type."""
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
    for ts, data in frames:
        sec = int(ts)
        usec = int(round((ts - sec) * 1_000_000))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        f.write(struct.pack("<IIII", sec, usec, len(data), len(data)))
        f.write(data)
