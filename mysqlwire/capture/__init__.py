"""Capture files in, ordered TCP bytes out.

* :func:`open_capture` -- stream frames from a pcap / pcapng file, stdin or a
  file object (:mod:`.reader`).
* :func:`decode_tcp` / :func:`iter_segments` -- frames to TCP segments
  (:mod:`.decode`).
* :class:`Reassembler` -- segments to per-direction byte streams (:mod:`.tcp`).

Pure standard library; only this package touches capture files.
"""

from __future__ import annotations

from .decode import (
    ACK,
    CWR,
    ECE,
    FIN,
    PSH,
    RST,
    SUPPORTED_LINKTYPES,
    SYN,
    URG,
    DecodeStats,
    TcpSegment,
    decode_tcp,
    endpoint,
    format_ip,
    iter_segments,
)
from .reader import SECRET_TLS_KEYLOG, CaptureReader, Frame, open_capture
from .tcp import Flow, Reassembler

__all__ = [
    "ACK",
    "CWR",
    "ECE",
    "FIN",
    "PSH",
    "RST",
    "SECRET_TLS_KEYLOG",
    "SUPPORTED_LINKTYPES",
    "SYN",
    "URG",
    "CaptureReader",
    "DecodeStats",
    "Flow",
    "Frame",
    "Reassembler",
    "TcpSegment",
    "decode_tcp",
    "endpoint",
    "format_ip",
    "iter_segments",
    "open_capture",
]
