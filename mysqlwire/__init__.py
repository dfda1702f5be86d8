"""mysqlwire: what actually happened on the wire of a MySQL/MariaDB login."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .errors import CaptureError, MysqlwireError, ProtocolError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .api import Capture

__version__ = "0.1.0"

__all__ = [
    "CaptureError",
    "MysqlwireError",
    "ProtocolError",
    "UsageError",
    "__version__",
    "open",
    "make_secrets",
]


def __getattr__(name: str):
    """``mysqlwire.api``, ``mysqlwire.make_secrets`` and ``mysqlwire.Capture``
    without importing the dissector when the package is imported (the CLI's
    ``--help`` stays light)."""
    if name in ("api", "make_secrets", "Capture"):
        import importlib

        api = importlib.import_module(".api", __name__)
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module 'mysqlwire' has no attribute {name!r}")


def open(  # noqa: A001 - mirrors builtins.open on purpose, like pyshark/scapy
    path: str | os.PathLike,
    *,
    ports: int | Iterable[int] | None = None,
    detect: bool = False,
    keylog: str | os.PathLike | Any | None = None,
    packets: bool = True,
    show_secrets: bool = False,
    max_packet: int = 16 * 1024 * 1024,
    max_buffer: int = 4 * 1024 * 1024,
) -> Capture:
    """Open a capture (pcap/pcapng) for exploration: ``mysqlwire.open("x.pcap").connections``.

    Nothing is read until ``.connections`` (or iteration, ``len``, ...) is used.

    :param path: the capture file.
    :param ports: server port(s) to decode as MySQL (an int or several);
        default: the dissector's default (see ``mysqlwire dissect --help``).
    :param detect: also find MySQL servers on other ports by their greeting.
    :param keylog: NSS key log (``SSLKEYLOGFILE``) path, or a loaded
        :class:`mysqlwire.tls.KeyLog`, to decrypt TLS logins.
    :param packets: keep every connection-phase packet with its decoded fields
        (``conn.packets``; the ladder diagrams use them).
    :param show_secrets: keep client auth bytes and clear-text passwords in
        ``conn.packets`` (default: redacted, as in every output).
    :param max_packet: largest connection-phase packet accepted (bytes).
    :param max_buffer: out-of-order bytes buffered per TCP direction.
    :returns: a :class:`mysqlwire.api.Capture`; ``capture.connection(n)`` is
        connection ``#n`` as the CLI numbers it (from 1).
    """
    from .api import open_capture

    return open_capture(
        path,
        ports=ports,
        detect=detect,
        keylog=keylog,
        packets=packets,
        show_secrets=show_secrets,
        max_packet=max_packet,
        max_buffer=max_buffer,
    )
