"""Progress bars for long commands: on stderr when it is a terminal, silent otherwise.

::

    from mysqlwire.progress import progress, counting_reader

    with progress(total_bytes, "reading") as p:      # total None: no known size
        with counting_reader("big.pcap", p) as f:    # advances p by every byte read
            for conn in iter_connections(f, opts, CaptureSummary(path="big.pcap")):
                ...
        p.advance(n)                                  # or advance by hand

When stderr is not a terminal (piped, redirected, captured by a test) the bar
is a no-op object with the same methods, so callers never branch on it.
Output written to stdout meanwhile is printed above the bar when stdout is the
same terminal, and left untouched when stdout is redirected.
``MYSQLWIRE_PROGRESS=0`` / ``=1`` forces it off / on (on still needs a
terminal-capable stderr to be readable, but is honoured for tests).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


class _Quiet:
    """Same interface as :class:`_Bar`, does nothing."""

    enabled = False

    def advance(self, n: int = 1) -> None:
        pass

    def update(self, *, completed: int | None = None, description: str | None = None) -> None:
        pass

    def add_total(self, n: int) -> None:
        pass


class _Bar:
    enabled = True

    def __init__(self, prog, task) -> None:
        self._prog = prog
        self._task = task

    def advance(self, n: int = 1) -> None:
        self._prog.advance(self._task, n)

    def update(self, *, completed: int | None = None, description: str | None = None) -> None:
        kw: dict = {}
        if completed is not None:
            kw["completed"] = completed
        if description is not None:
            kw["description"] = description
        self._prog.update(self._task, **kw)

    def add_total(self, n: int) -> None:
        task = next(t for t in self._prog.tasks if t.id == self._task)
        self._prog.update(self._task, total=(task.total or 0) + n)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def wanted(stream: IO | None = None) -> bool:
    """Whether a progress bar should be drawn on ``stream`` (default stderr)."""
    forced = os.environ.get("MYSQLWIRE_PROGRESS")
    if forced is not None and forced.strip() != "":
        return forced.strip().lower() not in ("0", "no", "false", "off")
    return _isatty(stream if stream is not None else sys.stderr)


@contextmanager
def progress(
    total: int | None, description: str = "reading", *, stream: IO | None = None
) -> Iterator[_Bar | _Quiet]:
    """A transient rich progress bar counting ``total`` units (bytes by default).

    Yields an object with ``advance(n)``, ``update(completed=, description=)``
    and ``add_total(n)``; it draws only when ``stream`` (default stderr) is a
    terminal, and the bar disappears when the block ends."""
    stream = stream if stream is not None else sys.stderr
    if not wanted(stream):
        yield _Quiet()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(file=stream, force_terminal=True, highlight=False, emoji=False)
    columns = [TextColumn("{task.description}"), BarColumn()]
    columns += [DownloadColumn(), TimeRemainingColumn()] if total is not None else []
    # Output written to stdout while the bar runs is printed above the bar only
    # when stdout is that same terminal; stdout redirected to a file or a pipe
    # is left alone (rich would otherwise route it to the bar's stream).
    with Progress(
        *columns,
        console=console,
        transient=True,
        redirect_stdout=_isatty(sys.stdout),
        redirect_stderr=stream is sys.stderr,
    ) as prog:
        task = prog.add_task(description, total=total)
        yield _Bar(prog, task)


class CountingReader:
    """A binary file that advances a progress bar by every byte read."""

    def __init__(self, f: IO[bytes], bar, name: str) -> None:
        self._f = f
        self._bar = bar
        self.name = name

    def read(self, n: int = -1) -> bytes:
        chunk = self._f.read(n)
        if chunk:
            self._bar.advance(len(chunk))
        return chunk

    def close(self) -> None:
        self._f.close()


@contextmanager
def counting_reader(path: str | os.PathLike, bar) -> Iterator[CountingReader]:
    """Open ``path`` for reading; every byte read advances ``bar``."""
    f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    try:
        yield CountingReader(f, bar, os.fspath(path))
    finally:
        f.close()


def file_sizes(paths) -> int | None:
    """Total size in bytes of ``paths`` (None when one is stdin or unreadable)."""
    total = 0
    for p in paths:
        if p == "-":
            return None
        try:
            total += os.path.getsize(p)
        except OSError:
            return None
    return total
