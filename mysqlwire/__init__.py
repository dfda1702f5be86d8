"""mysqlwire: what actually happened on the wire of a MySQL/MariaDB login."""

from __future__ import annotations

from .errors import CaptureError, MysqlwireError, ProtocolError, UsageError

__version__ = "0.1.0"

__all__ = [
    "CaptureError",
    "MysqlwireError",
    "ProtocolError",
    "UsageError",
    "__version__",
    "open",
]


def open(path, **kwargs):  # noqa: A001 - mirrors builtins.open on purpose, like pyshark/scapy
    """Open a capture for exploration: ``mysqlwire.open("x.pcap").connections``."""
    from .api import Capture

    return Capture(path, **kwargs)
