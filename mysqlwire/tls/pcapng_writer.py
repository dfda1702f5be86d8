"""Embed a TLS key log into a capture: pcapng Decryption Secrets Block (DSB).

``inject_keylog(src, keylog, dst)`` writes ``dst`` as pcapng with one DSB
(secrets type ``0x544C534B``, NSS key-log text) placed before the first packet,
so Wireshark/tshark decrypt the TLS without ``-o tls.keylog_file``.  The
pcap/pcapng writing is :func:`mysqlwire.capture.writer.write_with_secrets`;
this module checks the key log and the output path (never an input, mode
0600: the output holds TLS secrets).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from ..capture.writer import PCAP_MAGICS, SHB, dsb_block, write_with_secrets
from ..errors import CaptureError, UsageError
from .keylog import KeyLog

__all__ = ["dsb_block", "inject_keylog"]


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
        fin.seek(0)
        # the output carries TLS secrets: mode 0600
        with open_output(out, secret=True) as fout:
            count = write_with_secrets(fin, fout, secrets)
    return count
