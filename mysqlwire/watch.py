"""Follow a live (or streamed) capture and hand over each login the moment it ends.

:func:`follow` reads a pcap byte stream (a ``tcpdump -U -w -`` child from
:mod:`mysqlwire.capture.live`, or standard input), runs the same Dissector as
``mysqlwire dissect`` in *stream* mode (a connection is emitted when its login
ends, and again as an update when a later COM_CHANGE_USER or a sandbox error
changes it) and calls ``on_connection`` for each.

:class:`FailureKeeper` keeps the frames of every connection still in its
connection phase (bounded per flow, per number of flows and in total) so that a
failed login can be written as a small pcap of its own -- redacted by default --
into a ring of files bounded in count and bytes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .capture import TcpSegment, decode_tcp, endpoint, format_ip, open_capture
from .capture.writer import write_pcap
from .dissect import CaptureSummary, DissectOptions, Dissector
from .model import Connection
from .tls import KeyLog

# live mode: a flow silent for this many capture seconds is closed (bounds memory)
LIVE_IDLE_TIMEOUT = 300.0


@dataclass
class WatchStats:
    frames: int = 0
    logins: int = 0
    failed: int = 0
    saved: int = 0
    started: float = field(default_factory=time.time)


class FollowedKeyLog(KeyLog):
    """An NSS key log that is read again as it grows (a client writing
    SSLKEYLOGFILE while we watch): a lookup that misses reads the new lines,
    at most every ``interval`` seconds and at most ``limit`` bytes in all."""

    def __init__(
        self,
        path: str | os.PathLike,
        interval: float = 0.2,
        limit: int = 64 << 20,
        wait: float = 1.0,
        patience: int = 3,
    ):
        super().__init__()
        self.path = Path(path)
        self.keys = KeyLog()
        self.offset = 0
        self.interval = interval
        self.limit = limit
        self._last = 0.0
        self._partial = b""
        self.wait = wait
        self.patience = patience
        self._given_up: set[bytes] = set()
        self._misses = 0
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.offset >= self.limit:
            return
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(self.limit - self.offset)
        except OSError:
            return
        if not data:
            return
        self.offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if cut:
            self.keys.merge(KeyLog.from_bytes(data[:cut]))

    def get(self, client_random: bytes, label: str) -> bytes | None:
        got = self.keys.get(client_random, label)
        if got is None:
            got = self._wait_for(client_random, label)
        return got

    def _wait_for(self, client_random: bytes, label: str) -> bytes | None:
        """Live race: the server's first encrypted record can reach us before the client
        has written the secret it derived from it. Wait up to ``wait`` seconds for it,
        once per session, and not at all after ``patience`` sessions in a row whose keys
        never came (a key log of other clients)."""
        if client_random in self._given_up or self._misses >= self.patience:
            self.refresh()
            return self.keys.get(client_random, label)
        end = time.monotonic() + self.wait
        while True:
            self.refresh(force=True)
            got = self.keys.get(client_random, label)
            if got is not None:
                self._misses = 0
                return got
            if time.monotonic() >= end:
                break
            time.sleep(0.02)
        self._given_up.add(client_random)
        if len(self._given_up) > 4096:
            self._given_up.clear()
        self._misses += 1
        return None

    def labels(self, client_random: bytes) -> frozenset[str]:
        if client_random not in self.keys:
            self.refresh()
        return self.keys.labels(client_random)

    def __contains__(self, client_random: object) -> bool:
        if client_random not in self.keys:
            self.refresh()
        return client_random in self.keys

    def __len__(self) -> int:
        return len(self.keys)

    def __bool__(self) -> bool:  # present even while still empty: it may grow
        return True

    def __iter__(self):
        return iter(self.keys)

    def __repr__(self) -> str:
        return f"<FollowedKeyLog {self.path} sessions={len(self.keys)}>"


def _flow_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


class FailureKeeper:
    """Frames of flows still in their connection phase, and a ring of saved failures.

    Bounds: ``per_flow_frames`` frames and ``per_flow_bytes`` bytes a flow (a
    login needs a few dozen), ``max_flows`` flows (least recently seen dropped
    first); the ring keeps at most ``max_files`` pcaps and ``max_bytes`` bytes
    in ``directory`` (oldest deleted first).
    """

    def __init__(
        self,
        directory: Path,
        *,
        redact: bool = True,
        max_files: int = 100,
        max_bytes: int = 50 * 1024 * 1024,
        per_flow_frames: int = 256,
        per_flow_bytes: int = 1024 * 1024,
        max_flows: int = 4096,
    ):
        self.directory = Path(directory)
        self.redact = redact
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.per_flow_frames = per_flow_frames
        self.per_flow_bytes = per_flow_bytes
        self.max_flows = max_flows
        self.linktype: int | None = None
        self._flows: OrderedDict[tuple[str, str], list] = OrderedDict()
        self._sizes: dict[tuple[str, str], int] = {}
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.saved: list[Path] = sorted(
            self.directory.glob("*.pcap"), key=lambda p: p.stat().st_mtime
        )

    def frame(self, ts: float, linktype: int, data: bytes, seg: TcpSegment) -> None:
        if self.linktype is None:
            self.linktype = linktype
        if linktype != self.linktype:
            return
        key = _flow_key(
            endpoint(format_ip(seg.saddr), seg.sport), endpoint(format_ip(seg.daddr), seg.dport)
        )
        frames = self._flows.get(key)
        if frames is None:
            frames = self._flows[key] = []
            self._sizes[key] = 0
            while len(self._flows) > self.max_flows:
                old, _ = self._flows.popitem(last=False)
                self._sizes.pop(old, None)
        else:
            self._flows.move_to_end(key)
        if (
            len(frames) >= self.per_flow_frames
            or self._sizes[key] + len(data) > self.per_flow_bytes
        ):
            return
        frames.append((ts, bytes(data)))
        self._sizes[key] += len(data)

    def forget(self, conn: Connection) -> None:
        key = _flow_key(conn.client, conn.server)
        self._flows.pop(key, None)
        self._sizes.pop(key, None)

    def save(self, conn: Connection) -> Path | None:
        """Write the failed login's frames; returns the file written (or None)."""
        key = _flow_key(conn.client, conn.server)
        frames = self._flows.pop(key, None)
        self._sizes.pop(key, None)
        if not frames or self.linktype is None:
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(frames[0][0]))
        err = conn.error or {}
        code = err.get("code") or "fail"
        name = f"{stamp}-conn{conn.id}-{code}.pcap"
        final = self.directory / name
        fd, tmp = tempfile.mkstemp(prefix=".raw-", suffix=".pcap", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                write_pcap(f, self.linktype, frames)
            if self.redact:
                from .redact import RedactRefused, redact_capture

                try:
                    redact_capture(tmp, str(final))
                except RedactRefused:
                    return None  # fails closed: a login it cannot redact is not kept
                os.chmod(final, 0o600)
            else:
                os.replace(tmp, final)
                tmp = None
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
        self.saved.append(final)
        self._trim()
        return final

    def _trim(self) -> None:
        def total() -> int:
            return sum(p.stat().st_size for p in self.saved if p.exists())

        while self.saved and (len(self.saved) > self.max_files or total() > self.max_bytes):
            old = self.saved.pop(0)
            try:
                old.unlink()
            except FileNotFoundError:
                pass


def follow(
    stream,
    opts: DissectOptions,
    on_connection: Callable[[Connection], None],
    *,
    keeper: FailureKeeper | None = None,
    stats: WatchStats | None = None,
    label: str = "<live>",
    should_stop: Callable[[], bool] | None = None,
) -> CaptureSummary:
    """Dissect ``stream`` (a pcap byte stream) calling ``on_connection`` as logins end."""
    stats = stats or WatchStats()
    summary = CaptureSummary(path=label)
    reader = open_capture(stream)
    summary.format = reader.format
    engine = Dissector(opts, summary)

    def emit(conns) -> None:
        for c in conns:
            if keeper is not None:
                if c.failed and not c.extra.get("update"):
                    c.extra["saved"] = keeper.save(c)
                elif not c.failed:
                    keeper.forget(c)
            on_connection(c)

    try:
        for ts, linktype, data, _iface in reader.records():
            stats.frames += 1
            seg = decode_tcp(linktype, data)
            if seg is None:
                continue
            if keeper is not None:
                keeper.frame(ts, linktype, data, seg)
            engine.add(ts, seg)
            emit(engine.drain())
            if should_stop is not None and should_stop():
                break
    finally:
        summary.frames = stats.frames
        summary.truncated = bool(getattr(reader, "truncated", False))
        summary.error = getattr(reader, "error", None)
        emit(engine.finish())
    return summary


__all__ = [
    "FailureKeeper",
    "FollowedKeyLog",
    "LIVE_IDLE_TIMEOUT",
    "WatchStats",
    "follow",
    "write_pcap",
]
