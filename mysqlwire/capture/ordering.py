"""Out-of-order segments and lost bytes: the part of TCP reassembly that waits.

:class:`OutOfOrder` is a base of :class:`mysqlwire.capture.tcp.Reassembler`:
it holds segments that arrived before the bytes in front of them, delivers
them once the hole is filled, and gives a hole up as lost bytes (a gap) when
the peer acknowledges past it, the buffer is full or the connection ends.
"""

from __future__ import annotations

from bisect import bisect_right

__all__ = ["OutOfOrder"]


def _unwrap(seq32: int, ref: int) -> int:
    """The unbounded sequence number closest to ``ref`` whose low 32 bits are ``seq32``."""
    return ref + ((seq32 - ref + 0x80000000) & 0xFFFFFFFF) - 0x80000000


class OutOfOrder:
    """Pending pieces per direction (``d.starts`` / ``d.items``), their delivery
    and the gaps.  Expects ``max_buffer``, ``max_pieces``, ``gap_bytes``,
    ``overlap_conflicts`` and ``_refresh_fast(flow)`` on the subclass."""

    def _check_delivered(self, flow, d, s: int, payload: bytes) -> None:
        """Compare a retransmission with the last delivered bytes it overlaps."""
        last = d.last
        ls = d.nxt - len(last) - (1 if d.done else 0)
        lo = max(s, ls)
        hi = min(s + len(payload), ls + len(last))
        if lo < hi and payload[lo - s : hi - s] != last[lo - ls : hi - ls]:
            flow.overlap_conflicts += 1
            self.overlap_conflicts += 1

    def _gap(self, flow, d, fwd: bool, n: int, ts: float) -> None:
        d.nxt += n
        d.last = b""
        flow.gap_bytes += n
        self.gap_bytes += n
        flow.on_gap(fwd, n, ts)

    def _buffer(
        self,
        flow,
        d,
        fwd: bool,
        ts: float,
        s: int,
        payload: bytes,
        missing: int,
    ) -> None:
        """Hold an out-of-order segment [s, s+len+missing), keeping first-seen bytes."""
        e = s + len(payload)
        pieces: list[tuple[int, int, bytes | None]] = []
        if payload:
            self._uncovered(flow, d, s, e, payload, pieces)
        if missing:
            self._uncovered(flow, d, e, e + missing, None, pieces)
        starts = d.starts
        items = d.items
        for ps, pe, data in pieces:
            i = bisect_right(starts, ps)
            starts.insert(i, ps)
            items.insert(i, (pe, data))
            if data is not None:
                d.pbytes += pe - ps
        self._refresh_fast(flow)  # the peer's ACKs matter again
        # The peer may already have acknowledged past the hole.
        if d.ack32 is not None and _unwrap(d.ack32, d.nxt) > d.nxt:
            self._on_ack(flow, d, fwd, ts)
        if len(d.starts) > self.max_pieces:
            # Too many pieces: give up the oldest holes, a quarter of the
            # pieces at once (one list deletion, not one per hole).
            self._give_up(flow, d, fwd, ts, keep=self.max_pieces * 3 // 4)
        while d.pbytes > self.max_buffer and d.starts:
            # Give up on the first hole.
            if d.starts[0] > d.nxt:
                self._gap(flow, d, fwd, d.starts[0] - d.nxt, ts)
            self._drain(flow, d, fwd, ts)

    def _uncovered(
        self,
        flow,
        d,
        s: int,
        e: int,
        data: bytes | None,
        out: list,
    ) -> None:
        """Append the parts of [s, e) not already pending to ``out``."""
        starts = d.starts
        items = d.items
        i = bisect_right(starts, s) - 1
        if i < 0:
            i = 0
        n = len(starts)
        while i < n and s < e:
            ps = starts[i]
            if ps >= e:
                break
            pe, pdata = items[i]
            if pe <= s:
                i += 1
                continue
            if ps > s:
                out.append((s, ps, None if data is None else data[: ps - s]))
                if data is not None:
                    data = data[ps - s :]
                s = ps
            # [s, min(e, pe)) is already pending: first copy wins.
            hi = min(e, pe)
            if data is not None and pdata is not None:
                if data[: hi - s] != pdata[s - ps : hi - ps]:
                    flow.overlap_conflicts += 1
                    self.overlap_conflicts += 1
            if data is not None:
                data = data[hi - s :]
            s = hi
            i += 1
        if s < e:
            out.append((s, e, data))

    def _drain(self, flow, d, fwd: bool, ts: float) -> None:
        """Deliver pending intervals that are now contiguous with ``d.nxt``."""
        starts = d.starts
        items = d.items
        nxt = d.nxt
        j = 0
        n = len(starts)
        on_data = flow.on_data
        while j < n and starts[j] <= nxt:
            s = starts[j]
            e, data = items[j]
            j += 1
            if data is not None:
                d.pbytes -= e - s
            if e <= nxt:
                continue
            if data is None:
                d.nxt = nxt
                self._gap(flow, d, fwd, e - nxt, ts)
                if d.muted:
                    return
                nxt = e
                continue
            if s < nxt:
                data = data[nxt - s :]
            d.last = data
            nxt = e
            d.nxt = nxt
            on_data(fwd, data, ts)
            if d.muted:
                return  # the sink muted this direction: mute() dropped the buffer
        d.nxt = nxt
        if j:
            del starts[:j]
            del items[:j]
        if d.fin is not None and nxt == d.fin and not d.done:
            d.nxt += 1
            d.done = True

    def _on_ack(self, flow, d, fwd: bool, ts: float) -> None:
        """The peer acknowledged ``d``'s bytes up to ``d.ack32``: holes before it are lost."""
        if d.muted:
            return
        acked = _unwrap(d.ack32, d.nxt)
        while d.starts and d.nxt < acked:
            first = d.starts[0]
            if first > d.nxt:
                self._gap(flow, d, fwd, min(first, acked) - d.nxt, ts)
            self._drain(flow, d, fwd, ts)
        if d.fin is not None and not d.done and d.nxt < d.fin < acked:
            if not d.muted:
                self._gap(flow, d, fwd, d.fin - d.nxt, ts)
            d.nxt = d.fin + 1
            d.done = True

    def _flush(self, flow, d, fwd: bool, ts: float) -> None:
        """Connection over: report every remaining hole and deliver what is pending."""
        if d.nxt is None or d.muted:
            return
        if d.starts:
            self._give_up(flow, d, fwd, ts)
        elif d.fin is not None and d.nxt == d.fin and not d.done:
            d.nxt += 1  # (what _give_up's _drain does with nothing pending)
            d.done = True
        if d.fin is not None and not d.done and d.nxt < d.fin:
            self._gap(flow, d, fwd, d.fin - d.nxt, ts)
            d.nxt = d.fin + 1
            d.done = True

    def _give_up(self, flow, d, fwd: bool, ts: float, keep: int = 0) -> None:
        """Deliver the oldest pending pieces in order, reporting the holes
        before them as gaps, until at most ``keep`` pieces remain.  Linear in
        the pieces handled (the lists are cut once)."""
        starts = d.starts
        items = d.items
        j = 0
        todo = len(starts) - keep
        while j < todo:
            s = starts[j]
            e, data = items[j]
            j += 1
            if data is not None:
                d.pbytes -= e - s
            if e <= d.nxt:
                continue
            if s > d.nxt:
                self._gap(flow, d, fwd, s - d.nxt, ts)
                if d.muted:
                    return  # mute() dropped the buffer
            if data is None:
                self._gap(flow, d, fwd, e - d.nxt, ts)
            else:
                if s < d.nxt:
                    data = data[d.nxt - s :]
                d.nxt = e
                d.last = data
                flow.on_data(fwd, data, ts)
            if d.muted:
                return
        del starts[:j]
        del items[:j]
        self._drain(flow, d, fwd, ts)
