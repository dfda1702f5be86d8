"""Embed a TLS key log into a capture: pcapng Decryption Secrets Block (DSB).

``inject_keylog(src, keylog, dst)`` writes ``dst`` as pcapng with one DSB
(secrets type ``0x544C534B``, NSS key-log text) placed before the first packet,
so Wireshark/tshark decrypt the TLS without ``-o tls.keylog_file``.

* pcap input (us or ns resolution, either byte order) is converted: SHB, one IDB
  with the original link type and snaplen (``if_tsresol`` 6 or 9), one EPB per
  packet with its original and captured lengths and exact timestamp.
* pcapng input is copied block by block untouched (every section, interface,
  option, comment); the DSB is inserted, in the section's byte order, right
  before the first packet block.

The capture is streamed (constant memory) and the output written through
:mod:`mysqlwire.outputs` (checked path, never an input, mode 0600: it holds
TLS secrets).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from ..errors import CaptureError, UsageError
from .keylog import DSB_TLS_KEY_LOG, KeyLog

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


def dsb_block(secrets: bytes, endian: str = "<") -> bytes:
    """A Decryption Secrets Block carrying an NSS key log."""
    body = struct.pack(endian + "II", DSB_TLS_KEY_LOG, len(secrets)) + secrets
    body += b"\0" * _pad4(len(secrets))
    return _block(endian, DSB, body)


def _keylog_bytes(keylog: bytes | bytearray | str | KeyLog) -> bytes:
    if isinstance(keylog, KeyLog):
        data = keylog.to_bytes()
    elif isinstance(keylog, str):
        data = keylog.encode("ascii")
    elif isinstance(keylog, (bytes, bytearray, memoryview)):
        data = bytes(keylog)
    else:
        raise UsageError(
            f"inject_keylog: key log must be bytes or KeyLog, not {type(keylog).__name__}"
        )
    if not len(KeyLog.from_text(data)):
        raise UsageError("inject_keylog: the key log holds no usable secret")
    if not data.endswith(b"\n"):
        data += b"\n"
    return data


def inject_keylog(
    src_capture_path: str | os.PathLike,
    keylog_bytes: bytes | str | KeyLog,
    dst_path: str | os.PathLike,
) -> int:
    """Write ``dst_path`` (pcapng) = ``src_capture_path`` + a DSB holding the key
    log. Returns the number of packets copied."""
    from ..outputs import check_output, open_output

    secrets = _keylog_bytes(keylog_bytes)
    src = Path(src_capture_path)
    out = check_output(dst_path, what="output", inputs=[src], allow_stdout=True)
    with open(src, "rb") as fin:
        magic = fin.read(4)
        if magic not in PCAP_MAGICS and magic != struct.pack("<I", SHB):
            raise CaptureError(f"{src.name}: neither pcap nor pcapng (magic {magic.hex()})")
        # the output carries TLS secrets: mode 0600
        with open_output(out, secret=True) as fout:
            if magic in PCAP_MAGICS:
                count = _convert_pcap(fin, fout, magic, secrets)
            else:
                count = _copy_pcapng(fin, fout, magic, secrets)
    return count


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


def _convert_pcap(fin: BinaryIO, fout: BinaryIO, magic: bytes, secrets: bytes) -> int:
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
    fout.write(dsb_block(secrets))
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
        data = _read_exact(fin, caplen, f"packet {count + 1}")
        ts = sec * scale + frac
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, caplen, origlen)
        fout.write(_block("<", EPB, body + data + b"\0" * _pad4(caplen)))
        count += 1
    return count


def _copy_pcapng(fin: BinaryIO, fout: BinaryIO, first: bytes, secrets: bytes) -> int:
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
            rest = bom + _read_exact(fin, total - 12, "section header")
        else:
            total = struct.unpack(endian + "I", head[4:8])[0]
            if total < 12 or total % 4:
                raise CaptureError(f"pcapng block with bad length {total}")
            rest = _read_exact(fin, total - 8, "block")
        btype = struct.unpack(endian + "I", head[:4])[0]
        if btype in PACKET_BLOCKS:
            if not injected:
                fout.write(dsb_block(secrets, endian))
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
        fout.write(dsb_block(secrets, endian))
    return count
