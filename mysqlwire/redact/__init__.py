"""Redact a capture: remove the secrets of every MySQL connection phase and map
addresses and user names to placeholders, keeping the file dissectable.

Two streaming passes over a pcap / pcapng file (memory: the dissection state
of the open connections plus the list of edits, never the capture):

1. **find** (:mod:`.find`) -- the capture goes through dissect's own follower
   (:class:`~mysqlwire.dissect.Dissector`, every port by default); its events
   say which bytes to replace and with what (:mod:`.policy`);
2. **rewrite** (:mod:`.rewrite`, :mod:`mysqlwire.capture.writer`) -- every
   frame is copied with its addresses mapped, the edits applied by TCP
   sequence number (retransmissions too) after checking the original bytes,
   and the checksums recomputed.  pcapng Decryption Secrets Blocks are dropped.

Fails closed: nothing is written (:class:`RedactRefused`) when the capture
carries TCP payload but no MySQL connection, when a connection could not be
followed far enough to be sure its secrets are gone (unless ``partial``), or
when an edit could not be written whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..capture.writer import copy_rewritten
from ..errors import MysqlwireError
from ..outputs import check_outputs, open_output, write_output
from .find import Finder
from .policy import Placeholders, RedactOptions, RedactReport
from .rewrite import Rewriter

__all__ = [
    "NothingToRedact",
    "Placeholders",
    "RedactOptions",
    "RedactRefused",
    "RedactReport",
    "redact",
    "redact_capture",
]


class RedactRefused(MysqlwireError):
    """The copy would not be safe to share: nothing was written."""


class NothingToRedact(RedactRefused):
    """The capture carries TCP payload but no MySQL connection (exit status 3).
    ``summary``: what was read (frames, TCP flows, busiest server ports)."""

    def __init__(self, message: str, summary=None):
        super().__init__(message)
        self.summary = summary


def redact(
    src: str | os.PathLike,
    dst,
    opts: RedactOptions | None = None,
    *,
    map_path=None,
) -> RedactReport:
    """Write a redacted copy of capture ``src`` to ``dst`` (see the module doc).

    Raises :class:`~mysqlwire.errors.CaptureError` when ``src`` is not a
    capture, :class:`~mysqlwire.outputs.OutputPathError` for an output path
    that must not be written (an input, a symlink...), and
    :class:`RedactRefused` when the copy would not be safe.  ``map_path``:
    write the placeholder mapping there as JSON (mode 0600).
    """
    opts = opts or RedactOptions()
    src = Path(src)
    outs = check_outputs({"output": dst, "--map": map_path}, inputs=[src], allow_stdout=["output"])
    names = Placeholders()
    report = RedactReport()
    finder = Finder(opts, names, report)
    finder.run(src)
    if report.connections == 0 and report.tcp_payload:
        raise NothingToRedact(
            f"{src}: no MySQL connection found in {report.frames} frame(s) carrying TCP "
            "payload: nothing redacted, nothing written",
            finder.summary,
        )
    if report.not_followed and not opts.partial:
        first = report.not_followed[0]
        more = len(report.not_followed) - 1
        raise RedactRefused(
            f"{src}: cannot guarantee the secrets are gone: {first}"
            + (f" (and {more} more connection(s))" if more else "")
            + "; nothing written (--partial writes the copy anyway)"
        )
    rewriter = Rewriter(opts, names, finder.instances, report)
    with open(src, "rb") as fin, open_output(outs["output"]) as fout:
        report.dropped_blocks = copy_rewritten(
            fin, fout, report.format, rewriter.frame, map_ips=not opts.keep_ips
        )
        unwritten = sum(d.unwritten() for v in finder.instances.values() for d in v)
        if (unwritten or rewriter.mismatches) and not opts.partial:
            raise RedactRefused(
                f"{src}: {unwritten} field(s) to redact could not be written "
                f"({rewriter.mismatches} retransmission(s) with other bytes); nothing written"
            )
    report.mapping = names.as_json()
    if "--map" in outs:
        text = json.dumps(report.mapping, indent=2, ensure_ascii=False) + "\n"
        write_output(outs["--map"], text, secret=True)
    return report


def redact_capture(
    src: str | os.PathLike,
    dst,
    *,
    ports: tuple[int, ...] | None = None,
    detect: bool = False,
    map_path=None,
    **options,
) -> RedactReport:
    """:func:`redact` with options as keywords (``ports``, ``keep_proofs``,
    ``keep_ips``, ``keep_users``, ``partial``...).  Without ``ports`` MySQL is
    found on every port."""
    opts = RedactOptions(ports=tuple(ports or ()), detect=detect, **options)
    return redact(src, dst, opts, map_path=map_path)
