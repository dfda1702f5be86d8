"""Dissect many captures at once: one file per process, output in file order.

* :func:`iter_parallel` -- what ``mysqlwire dissect --jobs N a.pcap b.pcap ...``
  uses: the files are spread over ``N`` worker processes; the connections come
  back in exactly the order (and with exactly the content) of the sequential
  path -- every connection of the first file, then of the second... -- and an
  unusable file is reported the same way (one line on stderr, exit 2) at the
  point where the sequential path would have stopped.
* :func:`records_for_file` -- the per-file function for cluster schedulers
  (Dask, Ray, a job queue): a path in, the JSON records (``dissect --format
  jsonl``) out.  See ``docs/dask.md``.

Workers do not send connections back through a pipe as they go: each one
pickles its file's connections, in batches, into a spool file in a private
temporary directory, and the parent streams the spools in file order.  Memory
stays that of one dissection per process, whatever the size of the files or
the order in which they finish.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["iter_parallel", "records_for_file"]

_BATCH = 512  # connections per pickle in a spool


def _dissect_to_spool(task: tuple[int, str, object, str]):
    """Worker: dissect one capture into a spool file.

    Returns ``(index, spool path or None, summary, error message or None)``;
    the message is what the sequential path passes to ``fail`` (without the
    leading path)."""
    from .dissect import CaptureSummary, iter_connections
    from .errors import MysqlwireError

    index, path, opts, spool_dir = task
    summary = CaptureSummary(path=str(path))
    if not Path(path).exists():
        return index, None, summary, "no such file"
    spool = os.path.join(spool_dir, f"{index}.pickle")
    error = None
    with open(spool, "wb") as fh:
        batch: list = []
        try:
            for conn in iter_connections(path, opts, summary):
                batch.append(conn)
                if len(batch) >= _BATCH:
                    pickle.dump(batch, fh, pickle.HIGHEST_PROTOCOL)
                    batch = []
        except MysqlwireError as exc:
            error = str(exc)
        except OSError as exc:
            error = str(exc.strerror or exc)
        if batch:
            pickle.dump(batch, fh, pickle.HIGHEST_PROTOCOL)
    return index, spool, summary, error


def _read_spool(spool: str) -> Iterator:
    with open(spool, "rb") as fh:
        while True:
            try:
                batch = pickle.load(fh)
            except EOFError:
                break
            yield from batch
    os.unlink(spool)


def iter_parallel(captures, opts, jobs: int, summaries: list) -> Iterator:
    """Connections of every capture, in order, dissected by ``jobs`` processes.

    Same contract as :func:`mysqlwire.commands.common.iter_all`: ``summaries``
    gets one :class:`~mysqlwire.dissect.CaptureSummary` per capture as its
    turn comes; a capture that cannot be used ends everything with exit 2
    (after the connections of the captures before it); a truncated capture is
    warned about after its connections.  ``"-"`` (stdin) is read by this
    process in its turn.
    """
    import multiprocessing

    from .commands.common import fail, iter_all, warn

    captures = [str(c) for c in captures]
    files = [(i, c) for i, c in enumerate(captures) if c != "-"]
    jobs = max(1, min(jobs, len(files)))
    if not files:
        yield from iter_all(captures, opts, summaries)
        return
    with tempfile.TemporaryDirectory(prefix="mysqlwire-jobs-") as spool_dir:
        ctx = multiprocessing.get_context()
        pool = ctx.Pool(processes=jobs)
        try:
            results = pool.imap(
                _dissect_to_spool, [(i, c, opts, spool_dir) for i, c in files], chunksize=1
            )
            for path in captures:
                if path == "-":
                    yield from iter_all(["-"], opts, summaries)
                    continue
                _index, spool, summary, error = next(results)
                if spool is None:
                    fail(f"{path}: {error}")
                summaries.append(summary)
                yield from _read_spool(spool)
                if error is not None:
                    fail(f"{path}: {error}")
                if summary.truncated:
                    warn(
                        f"{path}: {summary.error or 'capture truncated'}; "
                        "connections before the damage are reported"
                    )
            pool.close()
        finally:
            pool.terminate()
            pool.join()


def _options(**opts):
    from .dissect import DEFAULT_PORTS, DissectOptions

    keylog = opts.pop("keylog", None)
    if keylog is not None and not hasattr(keylog, "merge"):
        from .tls import KeyLog

        keylog = KeyLog.from_file(keylog)
    ports = opts.pop("ports", None) or DEFAULT_PORTS
    if isinstance(ports, int):
        ports = (ports,)
    return DissectOptions(ports=tuple(ports), keylog=keylog, **opts)


def records_for_file(path, **opts) -> list[dict]:
    """The ``dissect --format jsonl`` records of one capture, as a list of dicts.

    Keyword options are those of :class:`~mysqlwire.dissect.DissectOptions`
    (``ports``, ``detect``, ``with_packets``, ``show_secrets``, ``max_packet``,
    ``max_buffer``); ``keylog`` may be a key-log path or a
    :class:`~mysqlwire.tls.KeyLog`.  ``errors="record"`` turns an unusable or
    truncated capture into a last record ``{"schema":
    "mysqlwire/capture-error/1", "capture", "error", "connections_before"}`` instead of
    raising :class:`~mysqlwire.errors.CaptureError` (the default,
    ``errors="raise"``, raises for an unusable file and ignores truncation
    like ``dissect`` does apart from its warning).

    Records are plain JSON-compatible dicts (bytes values only appear with
    ``show_secrets``), so they travel between processes and to Parquet/JSON
    as they are.
    """
    from .dissect import CaptureSummary, iter_connections
    from .errors import MysqlwireError

    errors = opts.pop("errors", "raise")
    if errors not in ("raise", "record"):
        raise ValueError("errors must be 'raise' or 'record'")
    options = _options(**opts)
    summary = CaptureSummary(path=os.fspath(path))
    out: list[dict] = []
    try:
        for conn in iter_connections(os.fspath(path), options, summary):
            out.append(conn.to_record(with_packets=options.with_packets))
    except (MysqlwireError, OSError) as exc:
        if errors == "raise":
            raise
        summary.error = str(getattr(exc, "strerror", None) or exc)
        summary.truncated = True
    if errors == "record" and summary.truncated:
        out.append(
            {
                "schema": "mysqlwire/capture-error/1",
                "capture": summary.path,
                "error": summary.error,
                "connections_before": len(out),
            }
        )
    return out
