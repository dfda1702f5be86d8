"""One pcap file dissected by several processes, split by byte ranges.

The file is cut into ``N`` ranges at record boundaries (pcap records are not
self-synchronising: a boundary is a position where a chain of consecutive
plausible record headers starts; the worker of the range before it must then
land on it exactly, which verifies it).  Worker ``k`` reads its range only
and follows every TCP flow whose first frame lies in it; past the end of its
range it keeps reading only while some of those flows are still open (any
new flow there is ignored at once), until they close or the capture ends.

A flow that a worker sees start without its first frame (no SYN) may be the
rest of a flow of an earlier range, or be absorbed by an earlier flow's
tombstone (see :mod:`mysqlwire.capture.tcp`); the parent replays, per
4-tuple, what the sequential reassembler would have done with each flow's
first frame (given the state the earlier workers report for that 4-tuple)
and drops what the sequential path never created (:mod:`mysqlwire.rangemerge`).
Connections are numbered in order of the kept flows and released as
:class:`~mysqlwire.dissect._Pipeline` releases them (events ordered by byte
offset), so output, ids, order and the capture summary are those of the
sequential path.  When the replay cannot be sure (a case it does not model:
a pruned tombstone, a retransmitted SYN on a closed 4-tuple, a boundary the
previous range did not land on) the capture is dissected sequentially
instead: never a different answer.

This module: the plan (where the ranges start), a worker (one range's
events and flow records, see ``F_*``) and the workers' rendering.
"""

from __future__ import annotations

import os
import pickle
import struct
from dataclasses import replace

from .capture.reader import PCAP_MAGICS  # magic -> (byte order, nanosecond, record header size)

INF = 1 << 62
"""Event position of what happens at the end of the capture."""

MIN_RANGE = 8 << 20
"""Smallest range worth a process (bytes)."""

FIRST_SHARE = 98
"""Size of the first range, in percent of each other range's: the process
that dissects it (:func:`mysqlwire.parallel.iter_split`'s own) also writes
the output as it goes, and once the workers are done reads their results
and merges.  (Instructions at 20 000 connections, ``--jobs 2``: with 97 the
parent's range and output 9.29G, the worker's range, spool and result 9.49G;
the balance is at ~98.5, and the parent still has the merge after.)"""

_CHAIN = 16  # consecutive plausible records that make a boundary
_SCAN = 1 << 20  # bytes searched for a boundary after a split point
_BLOCK = 4 << 20  # bytes read for the search (the chain may run past _SCAN)
_BATCH = 512
_SYN, _ACK = 0x02, 0x10


SENTINEL = "7301934462718295517"  # the id while a worker renders a record
_SENTINEL_ID = int(SENTINEL)
_JSON_ID = '"id": '  # what precedes the id in JSON


# --- the plan -------------------------------------------------------------------


def min_range() -> int:
    """:data:`MIN_RANGE`, or ``$MYSQLWIRE_SPLIT_MIN_RANGE`` (bytes; for tests
    that split small captures)."""
    try:
        return max(1, int(os.environ.get("MYSQLWIRE_SPLIT_MIN_RANGE", MIN_RANGE)))
    except ValueError:
        return MIN_RANGE


def plan(
    path: str, jobs: int, min_range: int = MIN_RANGE, first: int = FIRST_SHARE
) -> list[int] | None:
    """Start offsets of the ranges (the first is 24), or None when the file
    is not a plain pcap, too small to split, or no boundary is found.  The
    first range is ``first`` percent of the size of each other one."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(40)
            if len(head) < 40 or head[:4] not in PCAP_MAGICS:
                return None
            order, nano, hlen = PCAP_MAGICS[head[:4]]
            (snaplen,) = struct.unpack_from(order + "I", head, 16)
            (first_sec,) = struct.unpack_from(order + "I", head, 24)
            parts = max(1, min(jobs, (size - 24) // max(1, min_range)))
            starts = [24]
            whole = first + 100 * (parts - 1)
            for k in range(1, parts):
                target = 24 + (size - 24) * (first + 100 * (k - 1)) // whole
                at = find_boundary(f, target, size, order, nano, hlen, snaplen, first_sec)
                if at is not None and at > starts[-1]:
                    starts.append(at)
    except OSError:
        return None
    return starts if len(starts) > 1 else None


def find_boundary(f, target, size, order, nano, hlen, snaplen, first_sec) -> int | None:
    """The first offset at or after ``target`` where ``_CHAIN`` plausible
    records follow each other (or plausible records run exactly to EOF)."""
    f.seek(target)
    buf = f.read(_BLOCK)
    at_eof = target + len(buf) >= size
    unpack = struct.Struct(order + "IIII").unpack_from
    fmax = 1_000_000_000 if nano else 1_000_000
    cap = snaplen if snaplen >= 64 else 262144
    n = len(buf)
    for c in range(min(_SCAN, max(0, n - hlen))):
        pos = c
        prev = None
        ok = 0
        while ok < _CHAIN:
            if pos == n and at_eof and ok:
                return target + c
            if pos + hlen > n:
                break
            sec, frac, incl, orig = unpack(buf, pos)
            if (
                frac >= fmax
                or not 0 < incl <= cap
                or incl > orig
                or orig > 1 << 20
                or (sec < first_sec - 86400 if prev is None else abs(sec - prev) > 86400)
            ):
                break
            prev = sec
            pos += hlen + incl
            ok += 1
        if ok >= _CHAIN:
            return target + c
    return None


# --- a worker -------------------------------------------------------------------

_TEXT: dict = {}  # render spec -> (Renderer, its buffer), one per worker process


def _text_renderer(render: tuple):
    if render not in _TEXT:
        from io import StringIO

        from .views.text import Renderer

        _fmt, color, show_secrets, width, color_system = render
        buf = StringIO()
        renderer = Renderer(color=color, show_secrets=show_secrets, file=buf)
        if color:  # (without colour the Renderer's own plain console writes the same bytes)
            from rich.console import Console

            renderer.console = Console(
                file=buf,
                force_terminal=color,
                no_color=not color,
                highlight=False,
                soft_wrap=True,
                emoji=False,
                width=width,
                color_system=color_system,
            )
        _TEXT[render] = (renderer, buf)
    return _TEXT[render]


class _Ex:
    __slots__ = ("user",)

    def __init__(self, user):
        self.user = user


class Rendered:
    """A connection rendered by a worker (its text around the id), with what
    the command needs to filter and count it: ``failed``, ``user``,
    ``exchanges`` (``.user`` only), ``tls`` and ``tls_info`` (status and
    version only).  Workers send it as the tuple of its arguments
    (:func:`render_parts`)."""

    __slots__ = ("id", "head", "tail", "failed", "user", "users", "tls", "tls_pair")

    def __init__(self, head, tail, failed, user, users, tls, tls_pair):
        self.id = None
        self.head = head
        self.tail = tail
        self.failed = failed
        self.user = user
        self.users = users  # each exchange's user
        self.tls = tls
        self.tls_pair = tls_pair  # (tls_status, tls_version)

    @property
    def exchanges(self) -> tuple:
        return tuple(_Ex(u) for u in self.users)

    @property
    def tls_info(self) -> dict:
        return {"tls_status": self.tls_pair[0], "tls_version": self.tls_pair[1]}

    def text(self) -> str:
        return f"{self.head}{self.id}{self.tail}"


def prerender(conn, render: tuple, packets: bool):
    """``conn`` as :class:`Rendered` text: ``render`` is ``("jsonl",)`` (one
    line without its newline), ``("json",)`` (an element of the indented
    list, indented) or ``("text", color, show_secrets, width, color_system)``
    (the block :class:`~mysqlwire.views.text.Renderer` prints, on a console
    like the command's); ``conn`` itself when its text holds the sentinel id
    elsewhere."""
    parts = render_parts(conn, render, packets)
    return Rendered(*parts) if parts.__class__ is tuple else conn


def render_parts(conn, render: tuple, packets: bool):
    """:func:`prerender`'s :class:`Rendered` as the tuple of its arguments
    (what a worker sends: it pickles without a call), or ``conn``."""
    conn.id = _SENTINEL_ID
    fmt = render[0]
    if fmt == "text":
        renderer, buf = _text_renderer(render)
        renderer.connection(conn, packets=packets)
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
    elif fmt == "jsonl" and not packets:
        text = (_LINES[0] if _LINES else _line())(conn)  # the sequential path's writer
    else:
        from .views.escape import json_dumps

        record = conn.to_record(with_packets=packets)
        text = json_dumps(record, indent=2 if fmt == "json" else None)
    # the sentinel once, where the id is written ("#<id> " in the text
    # block, '"id": <id>' in JSON), and nowhere else
    parts = text.split(SENTINEL)
    if len(parts) != 2:
        return conn
    head, tail = parts
    if not (head.endswith("#") and tail[:1] == " " if fmt == "text" else head.endswith(_JSON_ID)):
        return conn
    if fmt == "json":  # one level down, in the list
        head, tail = head.replace("\n", "\n  "), tail.replace("\n", "\n  ")
    info = conn.tls_info
    return (
        head,
        tail,
        conn.failed,
        conn.user,
        tuple([ex.user for ex in conn.exchanges]),
        conn.tls,
        (info.get("tls_status"), info.get("tls_version")),
    )


_LINES: list = []


def _line():
    """:func:`mysqlwire.views.jsonline.connection_line`, imported once."""
    if not _LINES:
        from .views.jsonline import connection_line

        _LINES.append(connection_line)
    return _LINES[0]


class _Watch:
    """Stands between the reassembler and a flow's sink: sees it close.
    ``data``, ``gap`` and the lane calls are the sink's own methods (no extra
    call); anything else the reassembler asks of its sink is the sink's."""

    __slots__ = ("data", "gap", "closed", "lane_request", "lane_exit", "sink")

    def __init__(self, sink):
        self.sink = sink
        self.data = sink.data
        self.gap = sink.gap
        self.lane_request = sink.lane_request  # asked per lane: no __getattr__
        self.lane_exit = sink.lane_exit

    def __getattr__(self, name: str):
        return getattr(self.sink, name)


def range_worker(task):
    """Worker ``k``: dissect the flows that start in ``[start, stop)``
    (:func:`range_events`), its events spooled to a file in ``spool_dir``
    (``spool`` in the result)."""
    k, spool_dir = task[0], task[5]
    spool = os.path.join(spool_dir, f"range-{k}.pickle")
    try:
        fh = open(spool, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        return {"k": k, "fail": f"{type(exc).__name__}: {exc}", "status": "ok"}
    with fh:
        gen = range_events(task)
        while True:
            try:
                batch = next(gen)
            except StopIteration as done:
                out = done.value
                break
            pickle.dump(batch, fh, pickle.HIGHEST_PROTOCOL)
    out["spool"] = spool
    return out


def range_events(task):
    """Worker ``k``: dissect the flows that start in ``[start, stop)``;
    yields batches of events ``(pos, seq, slot, connection or None)`` (in
    the order they happen; with ``render``, a connection is its
    :func:`render_parts`) and returns a dict: ``status`` ("ok", "stopped": the capture ends or is
    damaged inside the range, "misaligned": the range did not end on
    ``stop``), ``frames`` (records of the range), ``truncated``/``error``
    (of the range), ``flows`` (one list per flow that started in the range,
    see ``F_*``), ``ports`` (their responder ports, counted), ``slots``
    (how many took a connection slot), ``syns`` (the range's SYNs but those
    that started one of its flows: their record has them),
    ``tail_flows`` and ``fail`` (an exception's message)."""
    from .capture import open_capture
    from .capture.decode import TcpSegment
    from .dissect import CaptureSummary, Dissector, ReaderKeylog

    k, start, stop, path, opts, _spool_dir, render = task
    out = {"k": k, "status": "ok", "frames": 0, "truncated": False, "error": None}
    out.update(flows=[], spool=None, fail=None)
    summary = CaptureSummary(path=str(path))
    try:
        reader = open_capture(path)
        reader.window(start, stop)
    except Exception as exc:  # the parent then dissects sequentially
        out["fail"] = f"{type(exc).__name__}: {exc}"
        return out
    engine = Dissector(replace(opts, reorder_window=0), summary)
    pipe = engine.pipe
    reasm = engine.reasm
    if opts.keylog is None:
        pipe.keylog = ReaderKeylog(reader)
    cur = [reader, False]  # the reader being read, past the end of the range
    flows: list[list] = []
    objs: list = []  # the Flow of each record (its last_ts at the end)
    syns: list = []  # (segment, pos) of every SYN seen but those that started a flow
    made = [None]  # the segment that started the latest flow (its SYN is in its record)
    tail_flows: list = []  # (4-tuple, pos) of the flows started past the range
    ports: dict[int, int] = {}  # responder port -> flows, as CaptureSummary.server_ports
    open_n = [0]
    events: list = []
    full = [False]  # a batch of events is ready
    seq = [0]

    def pos() -> int:
        return INF if cur[1] is None else cur[0].bytes_read

    packets = opts.with_packets

    def put(slot: int, conn) -> None:
        if render is not None and conn is not None:
            conn = render_parts(conn, render, packets)
        events.append((INF if cur[1] is None else cur[0].bytes_read, seq[0], slot, conn))
        seq[0] += 1
        if len(events) >= _BATCH:
            full[0] = True

    follow = pipe.on_flow
    orig_finished = pipe.finished
    orig_skip = pipe.skip
    seg = None

    def on_flow(flow):
        if cur[1]:
            tail_flows.append((flow.endpoints_key, pos()))
            return None  # past the range: not this worker's
        made[0] = seg
        saddr, sport, daddr, dport, sq, ack, flags, _p, _v6, _m = seg
        src = (saddr, sport)
        if flags & _SYN and flags & _ACK:
            init, res_port = (daddr, dport), sport
        else:
            init, res_port = src, dport
        sink = follow(flow)
        at = cur[0].bytes_read
        if sink is None:
            rec = [flow.index, flow.endpoints_key, at, flow.first_ts, flags, sq, src, init]
            rec += [res_port, None, at, "ignored", flow.first_ts, ack]
        else:
            rec = [flow.index, flow.endpoints_key, at, flow.first_ts, flags, sq, src, init]
            rec += [res_port, sink.slot, None, None, None, ack]
        flows.append(rec)
        objs.append(flow)
        ports[res_port] = ports.get(res_port, 0) + 1
        if sink is None:
            return None
        open_n[0] += 1
        watch = _Watch(sink)

        def closed(reason, ts, _rec=rec, _flow=flow, _sink=sink):
            _rec[F_CLOSE], _rec[F_REASON], _rec[F_LAST] = pos(), reason, _flow.last_ts
            open_n[0] -= 1
            _sink.closed(reason, ts)

        watch.closed = closed
        return watch

    def finished(sink) -> None:
        orig_finished(sink)
        if pipe.ready:  # (put, written out)
            slot = sink.slot
            at = INF if cur[1] is None else cur[0].bytes_read
            for conn in pipe.drain():
                if render is not None:
                    conn = render_parts(conn, render, packets)
                events.append((at, seq[0], slot, conn))
                seq[0] += 1
            if len(events) >= _BATCH:
                full[0] = True

    def skip(slot: int) -> None:
        put(slot, None)
        orig_skip(slot)

    reasm.on_flow = on_flow
    pipe.finished = finished
    pipe.skip = skip
    add = reasm.add
    try:
        # as iter_connections: frames decoded by the reader (natively when it
        # can), the command lanes taken by the reader
        records = reader.decoded(reasm.fast)
        if reader.fast_lane:
            reasm.lanes = pipe.lanes = True
        for ts, seg in records:
            if seg.__class__ is TcpSegment:
                add(ts, seg)
                if seg[6] & 2 and made[0] is not seg:  # a SYN (_SYN)
                    syns.append((seg, reader.bytes_read))
                if full[0]:
                    full[0] = False
                    yield events[:]
                    events.clear()
        out["frames"] = reader.frames_read
        if stop is None or reader.bytes_read != stop:
            if stop is not None and (reader.error or "").startswith("truncated record"):
                out["status"] = "misaligned"
                return out
            out["status"] = "stopped"
            out["truncated"] = bool(reader.truncated)
            out["error"] = reader.error
        elif open_n[0]:
            # past the range: only this range's flows still open matter
            tail = open_capture(path)
            tail.window(stop)
            cur[0], cur[1] = tail, True
            for ts, seg in tail.decoded(reasm.fast):
                if seg.__class__ is TcpSegment:
                    add(ts, seg)  # (its SYNs do not matter: see "syns" below)
                    if full[0]:
                        full[0] = False
                        yield events[:]
                        events.clear()
                    if not open_n[0]:
                        break
            tail.close()
        cur[1] = None
        engine.finish()
    except Exception as exc:  # the parent then dissects sequentially
        out["fail"] = f"{type(exc).__name__}: {exc}"
    finally:
        reader.close()
    if events:
        yield events[:]
    for rec, flow in zip(flows, objs, strict=True):
        rec += (flow.last_ts, k)  # F_FINAL (with what its tombstone absorbed), F_WORKER
    out["flows"] = flows
    out["ports"] = ports
    out["slots"] = pipe.next_slot
    end = INF if stop is None else stop
    # SYNs past the range do not matter: its flows there are not reported
    found = out["syns"] = []
    pack = _PORTS
    for sg, at in syns:
        if at <= end:
            # the 4-tuple's key, as mysqlwire.capture.tcp.Flow.endpoints_key
            a, b = sg[0] + pack(sg[1], 0), sg[2] + pack(sg[3], 0)
            found.append((a + b if a < b else b + a, at, (sg[0], sg[1]), sg[6], sg[4], sg[5]))
    out["tail_flows"] = tail_flows
    return out


_PORTS = struct.Struct("!HH").pack


# flow record fields
F_INDEX, F_KEY, F_POS, F_TS, F_FLAGS, F_SEQ, F_SRC = range(7)
F_INIT, F_RES_PORT, F_SLOT, F_CLOSE, F_REASON, F_LAST, F_ACK, F_FINAL = range(7, 15)
F_WORKER = 15
