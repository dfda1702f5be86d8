"""The parent's side of the byte-range split (:mod:`mysqlwire.rangesplit`).

:func:`settle` replays, per 4-tuple, what the sequential reassembler would
have done with the first frame of each flow a worker reports (given the
state the earlier workers report for that 4-tuple) and which flows the
sequential path never created; :func:`merge` numbers and releases the kept
connections as the sequential pipeline does.  :class:`Unsplittable` when
the replay cannot be sure: the capture is then dissected sequentially.
"""

from __future__ import annotations

import heapq
import pickle
from bisect import bisect_left, bisect_right

from .rangesplit import (
    F_ACK,
    F_CLOSE,
    F_FINAL,
    F_FLAGS,
    F_INIT,
    F_KEY,
    F_LAST,
    F_POS,
    F_REASON,
    F_RES_PORT,
    F_SEQ,
    F_SLOT,
    F_SRC,
    F_TS,
    F_WORKER,
    INF,
    Rendered,
)

_TTL_SAFE = 60.0  # a tombstone younger than this cannot have been pruned (tcp._TOMB_TTL = 120)
_SYN, _ACK = 0x02, 0x10


class Unsplittable(Exception):
    """The byte-range split cannot promise the sequential answer here."""


_UNKNOWN = object()


def _isns(g: list, syns: list) -> list | None:
    """The ISNs ``[initiator's, responder's]`` the sequential reassembler
    holds for ``g``'s 4-tuple (a tombstone now), replayed from how ``g``
    started and the SYNs that came on the 4-tuple since (``syns``: ``(pos,
    source, flags, seq, ack)``); an ISN it cannot tell is ``_UNKNOWN``;
    None when a SYN would have started another flow."""
    flags = g[F_FLAGS]
    if not flags & _SYN:
        isn = [None, None]  # only SYNs set them
    elif not flags & _ACK:
        isn = [g[F_SEQ], None]
    elif g[F_REASON] == "ignored":
        isn = [None, g[F_SEQ]]
    else:
        isn = [(g[F_ACK] - 1) & 0xFFFFFFFF, g[F_SEQ]]  # a SYN+ACK also says the SYN's
    close = g[F_CLOSE]
    for at, src, sflags, seq, _ack in syns:
        side = 0 if src == g[F_INIT] else 1
        if at < close:
            # while open, a SYN that did not start a new connection sets its
            # side's ISN (and, maybe, the other side's from its ACK)
            isn[side] = seq
            if sflags & _ACK and isn[1 - side] is None:
                isn[1 - side] = _UNKNOWN
        elif at == close:
            return None
        elif sflags & _ACK:  # the tombstone: what it takes changes nothing but this
            if side == 0 or isn[1] is _UNKNOWN or isn[1] not in (None, seq):
                return None
            isn[1] = seq
        elif side == 1 or isn[0] is _UNKNOWN or isn[0] != seq:
            return None
    return isn


def _first_frame_new(g: list, r: list, syns: list) -> bool:
    """Would the sequential reassembler start a new flow at ``r``'s first
    frame, given that the 4-tuple's latest flow is ``g`` (an earlier
    worker's) and the SYNs that came on the 4-tuple in between (see
    :func:`_isns`)?  Raises :class:`Unsplittable` when that depends on what
    the replay does not know."""
    p = r[F_POS]
    close = g[F_CLOSE]
    if close > p or (close == p and g[F_REASON] != "reused"):
        return False  # the frame went to g (still open): r is g's continuation
    if close == p:
        return True  # the frame reused g's 4-tuple: a new connection there too
    # g is a tombstone: it takes what it does not see as a new connection,
    # unless it was pruned (then anything starts a flow)
    fresh = 0 <= r[F_TS] - g[F_LAST] <= _TTL_SAFE
    flags = r[F_FLAGS]
    if flags & _SYN:
        from_init = r[F_SRC] == g[F_INIT]
        if bool(flags & _ACK) == from_init:
            return True  # a SYN from the old responder, a SYN+ACK from the old initiator
        isns = _isns(g, syns)
        known = None if isns is None else isns[1 if flags & _ACK else 0]
        if isns is None or known is _UNKNOWN:
            raise Unsplittable("SYN on a closed 4-tuple whose ISNs are not known")
        # (a tombstone takes the first SYN+ACK of its responder as its answer)
        new = known is not None and known != r[F_SEQ] if flags & _ACK else known != r[F_SEQ]
        if new:
            return True
    if fresh:
        return False
    raise Unsplittable("a closed 4-tuple's tombstone may have been pruned")


def _between(syns: tuple | None, a: int, b: int) -> list:
    """The SYN details (``all_syns`` entry) strictly between positions ``a`` and ``b``."""
    if syns is None:
        return []
    positions, details = syns
    return details[bisect_right(positions, a) : bisect_left(positions, b)]


def _next_flow_pos(res: dict) -> dict[int, int]:
    """id(record) -> position of the worker's next flow on the same 4-tuple
    (one of its range's, or one it ignored past its range), or INF."""
    nxt: dict[int, int] = {}
    last: dict[bytes, list] = {}
    for r in res["flows"]:
        prev = last.get(r[F_KEY])
        if prev is not None:
            nxt[id(prev)] = r[F_POS]
        last[r[F_KEY]] = r
        nxt[id(r)] = INF
    for key, at in res.get("tail_flows", ()):
        prev = last.pop(key, None)  # the first flow past the range follows the last one
        if prev is not None:
            nxt[id(prev)] = at
    return nxt


def _check_dropped(g: list, d: list, until: int, syns) -> None:
    """``d``, a worker's flow that the sequential path folds into ``g`` (an
    earlier worker's, open or a tombstone), until the worker's next flow on
    the 4-tuple at ``until``.  The worker's reassembler followed the
    4-tuple as ``d`` meanwhile, the sequential one as ``g``: they agree on
    segments without SYN while ``g``'s tombstone cannot be pruned; a SYN
    (``syns``: positions of the worker's SYNs on the 4-tuple), or a gap
    long enough for pruning, may have been taken differently."""
    p = d[F_POS]
    if any(p < at < until for at in syns):
        raise Unsplittable("a SYN on a 4-tuple another range's flow held")
    if g[F_CLOSE] != INF and d[F_FINAL] - max(g[F_LAST], d[F_TS]) > _TTL_SAFE:
        raise Unsplittable("a closed 4-tuple's tombstone may have been pruned")
    if d[F_TS] > g[F_LAST]:
        g[F_LAST] = d[F_TS]  # the tombstone took d's first segment: fresh then


def resolve(results: list[dict]):
    """Which flows the sequential path creates: ``(plan, flows, ports)``;
    ``plan[k]`` is ``(first global slot, worker k's dropped slots sorted,
    as a set)`` for :func:`merge`."""
    latest: dict[bytes, list] = {}
    ports: dict[int, int] = {}
    flows = 0
    dropped: list[list[int]] = []
    gone: set[int] = set()  # id() of the dropped records
    expected = []  # (key, pos) where a kept flow was reused
    index: dict = {}  # built on first need: the SYNs, per key
    for k, res in enumerate(results):
        for port, count in res["ports"].items():
            ports[port] = ports.get(port, 0) + count
        flows += len(res["flows"])
        mine: list[int] = []
        for r in res["flows"]:
            key = r[F_KEY]
            prev = latest.get(key)
            if prev is not None and prev[F_WORKER] != k:
                if not index:
                    index.update(syn_index(results, crossing_keys(results)))
                since = _between(index["all"].get(key), prev[F_POS], r[F_POS])
                if not _first_frame_new(prev, r, since):
                    if ("next", k) not in index:
                        index["next", k] = _next_flow_pos(res)
                    _check_dropped(prev, r, index["next", k][id(r)], index[k].get(key, ()))
                    gone.add(id(r))
                    flows -= 1
                    port = r[F_RES_PORT]
                    ports[port] -= 1
                    if not ports[port]:
                        del ports[port]
                    if r[F_SLOT] is not None:
                        mine.append(r[F_SLOT])
                    continue
            latest[key] = r
            if r[F_REASON] == "reused":
                expected.append((key, r[F_CLOSE]))
        dropped.append(mine)
    if expected:
        keys = {key for key, _at in expected}
        created = {
            (r[F_KEY], r[F_POS])
            for res in results
            for r in res["flows"]
            if r[F_KEY] in keys and id(r) not in gone
        }
        if any(e not in created for e in expected):
            raise Unsplittable("a 4-tuple reused where no worker started a flow")
    plan = []
    base = 0
    for res, mine in zip(results, dropped, strict=True):
        plan.append((base, mine, set(mine)))
        base += res["slots"] - len(mine)
    return plan, flows, ports


def crossing_keys(results: list[dict]) -> set:
    """The 4-tuples (endpoint keys) that flows of more than one worker use."""
    seen: set = set()
    crossing: set = set()
    for res in results:
        keys = {r[F_KEY] for r in res["flows"]}
        crossing |= keys & seen
        seen |= keys
    return crossing


def syn_index(results: list[dict], keys: set) -> dict:
    """``"all"``: key -> (positions, details) of every SYN the sequential
    path reads on the 4-tuples ``keys`` (those :func:`resolve` asks about);
    ``k``: key -> positions of worker ``k``'s SYNs there."""
    index: dict = {"all": {}}
    for k, res in enumerate(results):
        mine: dict[bytes, list[int]] = {}
        found = [s for s in res.get("syns", ()) if s[0] in keys]
        # a SYN that started a flow is in the flow's record, not in "syns"
        found += [
            (r[F_KEY], r[F_POS], r[F_SRC], r[F_FLAGS], r[F_SEQ], r[F_ACK])
            for r in res["flows"]
            if r[F_FLAGS] & _SYN and r[F_KEY] in keys
        ]
        found.sort(key=lambda s: s[1])
        for key, at, *detail in found:
            entry = index["all"].setdefault(key, ([], []))
            entry[0].append(at)
            entry[1].append((at, *detail))
            mine.setdefault(key, []).append(at)
        index[k] = mine
    return index


def settle(results: list[dict]):
    """``(kept, slots, flows, ports)``: the workers' results the sequential
    path would have reached (up to the range where the capture ends or is
    damaged) and :func:`resolve` of them.  Raises :class:`Unsplittable` when
    a range did not end on the next one's start or a worker failed."""
    kept = []
    for r in sorted(results, key=lambda r: r["k"]):
        kept.append(r)
        if r["fail"] is not None:
            raise Unsplittable(f"range {r['k']}: {r['fail']}")
        if r["status"] == "misaligned":
            raise Unsplittable(f"range {r['k']} did not end on the next one's start")
        if r["status"] == "stopped":
            break
    return (kept, *resolve(kept))


def _spooled(spool: str):
    with open(spool, "rb") as fh:
        while True:
            try:
                yield pickle.load(fh)
            except EOFError:
                return


def _events(k: int, batches, plan: tuple):
    base, dropped, gone = plan
    for batch in batches:
        if not dropped:
            for p, s, slot, conn in batch:
                yield p, k, s, base + slot, conn
            continue
        for p, s, slot, conn in batch:
            if slot not in gone:
                yield p, k, s, base + slot - bisect_left(dropped, slot), conn


class Release:
    """What :class:`~mysqlwire.dissect.Dissector`'s pipeline does when a
    slot is done (a connection finished, or a flow found not to be MySQL):
    connections released in slot order, numbered as released, all at once
    when more than ``window`` wait."""

    def __init__(self, window: int):
        self.window = window
        self.done: dict[int, object] = {}
        self.emit_from = 0
        self.next_id = 1

    def _emit(self, conn, out: list) -> None:
        if conn is not None:
            if conn.__class__ is tuple:  # a worker's rangesplit.render_parts
                conn = Rendered(*conn)
            conn.id = self.next_id
            self.next_id += 1
            out.append(conn)

    def add(self, slot: int, conn) -> list:
        """The connections released when ``slot`` is done (``conn``: its
        connection, None for a flow that was not MySQL)."""
        out: list = []
        done = self.done
        if slot == self.emit_from and not done:  # the next one, nothing waits
            self.emit_from = slot + 1
            self._emit(conn, out)
            return out
        done[slot] = conn
        while self.emit_from in done:
            self._emit(done.pop(self.emit_from), out)
            self.emit_from += 1
        if len(done) > self.window:
            last = self.emit_from
            for s in sorted(done):
                self._emit(done.pop(s), out)
                last = s
            self.emit_from = max(self.emit_from, last + 1)
        return out

    def flush(self) -> list:
        out: list = []
        for s in sorted(self.done):
            self._emit(self.done.pop(s), out)
        return out


def merge(results: list[dict], plan: list, window: int, release: Release | None = None):
    """The kept connections, numbered and released as the sequential
    pipeline releases them (after what ``release`` released already).  A
    result's events are its ``held`` list when it has one, else its spool."""
    release = release or Release(window)
    streams = [
        _events(k, [r["held"]] if r.get("held") is not None else _spooled(r["spool"]), plan[k])
        for k, r in enumerate(results)
    ]
    for _p, _k, _s, slot, conn in heapq.merge(*streams):
        yield from release.add(slot, conn)
    yield from release.flush()
