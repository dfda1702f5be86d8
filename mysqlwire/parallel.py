"""Dissect captures on several processes, with exactly the sequential output.

* :func:`iter_split` -- ``mysqlwire dissect --jobs N capture.pcap``: one
  capture split by flow.  Every worker reads the whole file but follows only
  the connections whose 4-tuple hashes to its share; the other connections'
  frames are skipped by the capture reader before they are decoded (the
  reassembler's fast lane).  Each connection comes back stamped with its
  flow's index (the sequential path numbers connections in that order) and
  the frame at which it ended; the parent numbers them and releases them in exactly the
  order (and with exactly the ids) of the sequential path.
* :func:`iter_parallel` -- ``mysqlwire dissect --jobs N a.pcap b.pcap ...``:
  the files are handed to ``N`` worker processes (plain processes, one pipe
  each: nothing shared that a killed worker could leave locked); the
  connections come back in file order, with the content of the sequential
  path; a file whose worker died is dissected by the parent instead.
* :func:`records_for_file` -- the per-file function for cluster schedulers
  (Dask, Ray, a job queue): a path in, the JSON records (``dissect --format
  jsonl``) out.  See ``docs/dask.md``.

Workers do not send connections back through a pipe as they go: each one
pickles its connections, in batches, into a spool file in a private
temporary directory, and the parent streams the spools.  Memory stays that of
one dissection per process, whatever the size of the files.

A library module: an unusable capture raises
:class:`~mysqlwire.errors.CaptureError` at the point where the sequential
path would have stopped (after the connections before it); what a command
prints and its exit status are the command's business.
"""

from __future__ import annotations

import heapq
import os
import pickle
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from .errors import CaptureError

__all__ = ["iter_parallel", "iter_split", "records_for_file"]

_BATCH = 512  # connections per pickle in a spool


def _error_text(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc)


def _about(path: str, text: str) -> str:
    """``<path>: <problem>``, the path said once (many errors already name it)."""
    return text if text.startswith(path) or f"'{path}'" in text else f"{path}: {text}"


def _dissect_to_spool(task: tuple[int, str, object, str]):
    """Worker: dissect one capture into a spool file.

    Returns ``(index, spool path or None, summary, error message or None)``;
    the message is what the sequential path reports (without the leading
    path)."""
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
        except (MysqlwireError, OSError) as exc:
            error = _error_text(exc)
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


def iter_parallel(
    captures,
    opts,
    jobs: int,
    summaries: list,
    *,
    sequential: Callable[[list, object, list], Iterator],
    warn: Callable[[str], None] | None = None,
) -> Iterator:
    """Connections of every capture, in order, dissected by ``jobs`` processes.

    ``summaries`` gets one :class:`~mysqlwire.dissect.CaptureSummary` per
    capture as its turn comes.  A capture that cannot be used raises
    :class:`CaptureError` (``"<path>: <why>"``) after the connections of the
    captures before it; a truncated capture is reported through ``warn``
    after its connections.  ``"-"`` (stdin) is read by this process in its
    turn, through ``sequential(["-"], opts, summaries)``.
    """
    import multiprocessing

    captures = [str(c) for c in captures]
    files = [(i, c) for i, c in enumerate(captures) if c != "-"]
    jobs = max(1, min(jobs, len(files)))
    if not files:
        yield from sequential(captures, opts, summaries)
        return
    # Plain processes, each with its own pipe, handed files by this process
    # (two ahead, so that none waits while the output is written): stopping
    # early (a bad capture, the reader gone) kills them; nothing is shared
    # but the pipes, so nothing can be left locked (a multiprocessing.Pool's
    # terminate() could hang forever when a worker was killed holding one of
    # the locks it shares with them).
    from multiprocessing.connection import wait

    with tempfile.TemporaryDirectory(prefix="mysqlwire-jobs-") as spool_dir:
        ctx = multiprocessing.get_context()
        tasks = [(i, c, opts, spool_dir) for i, c in files]
        workers: dict = {}  # pipe -> (process, the capture indexes handed to it, in order)
        done: dict = {}  # capture index -> (spool, summary, error), or None: lost

        def gone(pipe) -> None:
            proc, handed = workers.pop(pipe)
            pipe.close()
            if proc.is_alive():
                proc.kill()
            proc.join()
            for lost in handed:  # (the file it was on, and the next)
                done[lost] = None

        def hand_out(pipe) -> None:
            handed = workers[pipe][1]
            try:
                while tasks and len(handed) < 2:
                    task = tasks.pop(0)
                    handed.append(task[0])
                    pipe.send(task)
                if not tasks and not handed:
                    pipe.send(None)  # (nothing more: the worker ends)
            except OSError:
                gone(pipe)

        def collect(timeout) -> None:
            for pipe in wait(list(workers), timeout):
                try:
                    index, result = pipe.recv()
                except (EOFError, OSError):
                    gone(pipe)
                    continue
                workers[pipe][1].remove(index)
                done[index] = result
                hand_out(pipe)

        try:
            for _ in range(jobs):
                pipe, child = ctx.Pipe()
                proc = ctx.Process(target=_files_child, args=(child,), daemon=True)
                proc.start()
                child.close()
                workers[pipe] = (proc, [])
                hand_out(pipe)
            for index, path in enumerate(captures):
                if path == "-":
                    yield from sequential(["-"], opts, summaries)
                    continue
                while index not in done:
                    if not workers:  # (never handed out: every worker is gone)
                        done[index] = None
                        break
                    collect(None)
                result = done.pop(index)
                if result is None:
                    # its worker died (killed, out of memory): this file here
                    yield from sequential([path], opts, summaries)
                    continue
                spool, summary, error = result
                if spool is None:
                    raise CaptureError(_about(path, error))
                summaries.append(summary)
                yield from _read_spool(spool)
                if error is not None:
                    raise CaptureError(_about(path, error))
                if summary.truncated and warn is not None:
                    warn(
                        f"{path}: {summary.error or 'capture truncated'}; "
                        "connections before the damage are reported"
                    )
                if workers:
                    collect(0)  # (idle workers get their next files now)
        finally:
            for pipe in list(workers):
                gone(pipe)


def _files_child(pipe) -> None:
    """A worker process: each capture it is handed into its spool
    (:func:`_dissect_to_spool`), answered with ``(index, (spool, summary,
    error))``, until it is handed None; whatever goes wrong ends it quietly
    (the parent then dissects the files it held itself), never a traceback."""
    try:
        while (task := pipe.recv()) is not None:
            index, spool, summary, error = _dissect_to_spool(task)
            pipe.send((index, (spool, summary, error)))
    except BaseException:  # noqa: BLE001, S110 - the parent sees the pipe end: lost files
        pass
    finally:
        pipe.close()


# --- one capture split by flow ---------------------------------------------------------


def flow_share(flow, parts: int) -> int:
    """Which of ``parts`` workers follows ``flow`` (the same for both
    directions and in every process: a CRC of the sorted endpoints)."""
    return zlib.crc32(flow.endpoints_key) % parts


class _Elsewhere:
    """Sink of a connection another worker follows: both directions muted."""

    __slots__ = ()

    def data(self, from_initiator, data, ts) -> None:
        return None


_ELSEWHERE = _Elsewhere()


def dissect_share(task: tuple[int, int, str, object, str]):
    """Worker ``share`` of ``parts``: follow this share's connections of the
    capture; spool ``(end key, number key, connection)`` in the order the
    connections end.  Returns ``(share, spool or None, summary, error or
    None, number keys)``."""
    from .capture import open_capture
    from .capture.decode import TcpSegment
    from .dissect import CaptureSummary, Dissector, ReaderKeylog
    from .errors import MysqlwireError

    share, parts, path, opts, spool_dir = task
    summary = CaptureSummary(path=str(path))
    try:
        reader = open_capture(path)
    except (MysqlwireError, OSError) as exc:
        return share, None, summary, _error_text(exc), []
    summary.format = reader.format
    # release each connection as it ends: the parent orders them
    engine = Dissector(replace(opts, reorder_window=0), summary)
    pipe = engine.pipe
    if opts.keylog is None:
        pipe.keylog = ReaderKeylog(reader)
    # connections are numbered in order of their flow's first packet (the
    # flow index, the same in every worker): keyed by the Connection object
    numbered: dict[int, int] = {}  # id(conn) -> flow index
    keys: list[int] = []  # every flow index numbered here
    ends: dict[int, tuple[int, int]] = {}  # id(conn) -> (frame, flow index) at its end
    follow = pipe.on_flow
    register = pipe.register
    finished = pipe.finished

    def on_flow(flow):
        if flow_share(flow, parts) != share:
            flow.mute(True)
            flow.mute(False)
            return _ELSEWHERE
        return follow(flow)

    def on_register(sink) -> None:
        register(sink)
        numbered[id(sink.conn)] = sink.flow.index
        keys.append(sink.flow.index)

    def on_finished(sink) -> None:
        ends[id(sink.conn)] = (reader.frames_read, sink.flow.index)
        finished(sink)

    engine.reasm.on_flow = on_flow
    pipe.register = on_register
    pipe.finished = on_finished
    spool = os.path.join(spool_dir, f"split-{share}.pickle")
    error = None
    with open(spool, "wb") as fh:
        batch: list = []

        def put(conns) -> None:
            nonlocal batch
            for conn in conns:
                batch.append((ends.pop(id(conn)), numbered.pop(id(conn)), conn))
            if len(batch) >= _BATCH:
                pickle.dump(batch, fh, pickle.HIGHEST_PROTOCOL)
                batch = []

        try:
            # as iter_connections: frames decoded by the reader (natively when
            # it can), the command lanes taken by the reader
            records = reader.decoded(engine.reasm.fast)
            if reader.fast_lane:
                engine.reasm.lanes = pipe.lanes = True
            for ts, seg in records:
                if seg.__class__ is TcpSegment:
                    engine.add(ts, seg)
                    if pipe.ready:
                        put(engine.drain())
            summary.frames = reader.frames_read
            summary.truncated = bool(reader.truncated)
            summary.error = reader.error
            summary.secrets = list(reader.secrets or [])
            put(engine.finish())
        except (MysqlwireError, OSError) as exc:
            error = _error_text(exc)
        if batch:
            pickle.dump(batch, fh, pickle.HIGHEST_PROTOCOL)
    return share, spool, summary, error, sorted(keys)


def iter_split(
    path, opts, jobs: int, summary, *, min_range: int | None = None, render: tuple | None = None
) -> Iterator:
    """The connections of one capture file, dissected by ``jobs`` processes,
    in exactly the order and with exactly the ids and content of
    :func:`~mysqlwire.dissect.iter_connections`.

    A pcap file is split by byte ranges (:mod:`mysqlwire.rangesplit`); a
    pcapng file, or a run with an idle timeout, by flow
    (:func:`iter_flow_split`); a capture smaller than two ranges
    (``min_range`` bytes each) is dissected here.  ``summary`` (a
    :class:`~mysqlwire.dissect.CaptureSummary`) is filled as the sequential
    path fills it.  An unusable capture raises :class:`CaptureError`
    (``"<path>: <why>"``).

    ``render`` (see :func:`mysqlwire.rangesplit.prerender`): the byte-range
    workers render the connections (:class:`mysqlwire.rangesplit.Rendered`,
    its ``id`` set here); the other paths, and a connection whose text could
    not be split around its id, yield :class:`~mysqlwire.model.Connection`
    objects.
    """
    from . import rangesplit
    from .capture import open_capture
    from .dissect import iter_connections

    path = os.fspath(path)
    if not os.path.isfile(path):  # a pipe, a device: read once, here
        yield from iter_connections(path, opts, summary)
        return
    open_capture(path).close()  # not a capture: the sequential path's error, at once
    if opts.idle_timeout is not None or opts.stream:
        yield from iter_flow_split(path, opts, jobs, summary)
        return
    starts = None
    if jobs > 1:
        starts = rangesplit.plan(
            path, jobs, rangesplit.min_range() if min_range is None else min_range
        )
    if starts is None:
        if _is_pcapng(path) and jobs > 1:
            yield from iter_flow_split(path, opts, jobs, summary)
        else:
            yield from iter_connections(path, opts, summary)
        return
    yield from _iter_ranges(path, opts, summary, starts, render)


def _range_child(task: tuple, send) -> None:
    """A worker process: one byte range (:func:`mysqlwire.rangesplit.range_worker`),
    its result sent back; whatever goes wrong is a failed range (the parent
    then dissects sequentially), never a traceback."""
    from . import rangesplit

    try:
        out = rangesplit.range_worker(task)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as a failed range
        out = {"k": task[0], "fail": f"{type(exc).__name__}: {exc}", "status": "ok"}
    # the long lists follow in chunks: the parent reads one while the next is
    # pickled here (the result is the serial part after the ranges)
    lists = {name: out.pop(name) for name in _CHUNKED if isinstance(out.get(name), list)}
    out["chunked"] = list(lists)
    try:
        send.send(out)
        for items in lists.values():
            for i in range(0, len(items), RESULT_CHUNK):
                send.send(items[i : i + RESULT_CHUNK])
            send.send(None)
    except BaseException:  # noqa: BLE001, S110 - the parent sees the pipe end: a failed range
        pass
    finally:
        send.close()


_CHUNKED = ("flows", "syns")  # a range result's lists sent in chunks
RESULT_CHUNK = 1024


def _range_result(k: int, proc, recv) -> dict:
    """Worker ``k``'s result; a worker that died (killed, out of memory, its
    result lost, also midway through it) is a failed range."""
    try:
        out = recv.recv()
        for name in out.pop("chunked", ()):
            items: list = []
            while (chunk := recv.recv()) is not None:
                items += chunk
            out[name] = items
        return out
    except (EOFError, OSError) as exc:
        proc.join(5)
        why = f"exit code {proc.exitcode}" if proc.exitcode is not None else str(exc)
        return {"k": k, "fail": f"worker process ended without a result ({why})", "status": "ok"}


def _iter_ranges(path: str, opts, summary, starts: list[int], render) -> Iterator:
    """The byte-range split: this process dissects the first range itself
    and hands out its connections as they are released (they come first in
    the sequential order: nothing of a later range happens before its
    start), while worker processes dissect the other ranges; then the rest,
    merged.  When the split cannot promise the sequential answer (a worker
    failed or died, a boundary was wrong, a case the replay does not model),
    the capture is dissected here instead, the connections already handed
    out skipped."""
    import multiprocessing

    from . import rangemerge, rangesplit
    from .dissect import iter_connections

    with tempfile.TemporaryDirectory(prefix="mysqlwire-split-") as spool_dir:
        stops = [*starts[1:], None]
        tasks = [
            (k, s, e, path, opts, spool_dir, render)
            for k, (s, e) in enumerate(zip(starts, stops, strict=True))
        ]
        release = rangemerge.Release(opts.reorder_window)
        emitted = 0
        ctx = multiprocessing.get_context()
        workers = []
        try:
            for task in tasks[1:]:
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_range_child, args=(task, send), daemon=True)
                proc.start()
                send.close()
                workers.append((task[0], proc, recv))
            held: list = []
            events = rangesplit.range_events(tasks[0])
            while True:
                try:
                    batch = next(events)
                except StopIteration as end:
                    first = end.value
                    break
                for event in batch:
                    if event[0] < starts[1]:
                        for conn in release.add(event[2], event[3]):
                            emitted += 1
                            summary.connections += 1
                            yield conn
                    else:
                        held.append(event)
            first["held"] = held
            results = [first, *(_range_result(*w) for w in workers)]
        finally:
            for _k, proc, recv in workers:
                recv.close()
                if proc.is_alive():
                    proc.terminate()
                proc.join()
        try:
            kept, plan, flows, ports = rangemerge.settle(results)
        except Exception:  # noqa: BLE001 - Unsplittable, or results it cannot read: sequential
            summary.connections = 0
            for i, conn in enumerate(iter_connections(path, opts, summary)):
                if i >= emitted:
                    yield conn
            return
        last = kept[-1]
        summary.format = "pcap"
        summary.frames = sum(r["frames"] for r in kept)
        summary.truncated = last["truncated"]
        summary.error = last["error"]
        summary.tcp_flows = flows
        summary.server_ports.update(ports)
        for conn in rangemerge.merge(kept, plan, opts.reorder_window, release):
            summary.connections += 1
            yield conn


def _is_pcapng(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x0a\x0d\x0d\x0a"
    except OSError:
        return False


def iter_flow_split(path, opts, jobs: int, summary) -> Iterator:
    """The connections of one capture file, dissected by ``jobs`` processes
    (each following the connections of its share of the flows), in exactly
    the order and with exactly the ids and content of
    :func:`~mysqlwire.dissect.iter_connections`.

    ``summary`` (a :class:`~mysqlwire.dissect.CaptureSummary`) is filled as
    the sequential path fills it.  An unusable capture raises
    :class:`CaptureError` (``"<path>: <why>"``), after the connections that
    ended before the damage when it is further on.
    """
    import multiprocessing

    path = os.fspath(path)
    jobs = max(1, jobs)
    with tempfile.TemporaryDirectory(prefix="mysqlwire-split-") as spool_dir:
        ctx = multiprocessing.get_context()
        with ctx.Pool(processes=jobs) as pool:
            results = pool.map(
                dissect_share,
                [(share, jobs, path, opts, spool_dir) for share in range(jobs)],
                chunksize=1,
            )
        results.sort(key=lambda r: r[0])
        first = results[0]
        if first[1] is None:
            raise CaptureError(_about(path, first[3]))
        done = first[2]
        summary.format = done.format
        summary.frames = done.frames
        summary.truncated = done.truncated
        summary.error = done.error
        summary.secrets = done.secrets
        summary.connections = sum(r[2].connections for r in results)
        summary.tcp_flows = sum(r[2].tcp_flows for r in results)
        for r in results:
            for port, n in r[2].server_ports.items():
                summary.server_ports[port] = summary.server_ports.get(port, 0) + n
        # the sequential numbers: rank of each connection's flow (first packet)
        number = {key: i for i, key in enumerate(heapq.merge(*(r[4] for r in results)), 1)}
        window = opts.reorder_window
        waiting: dict = {}
        next_id = 1
        for _end, key, conn in heapq.merge(
            *(_read_spool(r[1]) for r in results), key=lambda item: item[0]
        ):
            # what the sequential pipeline does when a connection ends
            conn.id = number[key]
            waiting[conn.id] = conn
            while next_id in waiting:
                yield waiting.pop(next_id)
                next_id += 1
            if len(waiting) > window:
                last = 0
                for cid in sorted(waiting):
                    last = cid
                    yield waiting.pop(cid)
                next_id = max(next_id, last + 1)
        for cid in sorted(waiting):
            yield waiting.pop(cid)
        errors = [r[3] for r in results if r[3] is not None]
        if errors:
            raise CaptureError(_about(path, errors[0]))


def _options(**opts):
    from .dissect import DissectOptions

    keylog = opts.pop("keylog", None)
    if keylog is not None and not hasattr(keylog, "merge"):
        from .tls import KeyLog

        keylog = KeyLog.from_file(keylog)
    ports = opts.pop("ports", None) or ()
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
