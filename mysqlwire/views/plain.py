"""The text view's output without colour, written without rich.

With colour off, the rich ``Console`` the text view used (``force_terminal=False``,
``soft_wrap=True``: no wrapping, no cropping, no styles) writes each ``Text`` as its
plain characters and a newline.  :class:`PlainConsole` writes exactly those bytes,
without importing rich (~15 ms of start-up) and without rich's per-line rendering
(~0.4 ms a connection).  What rich would change in a line -- control codes it strips,
tabs it expands -- cannot reach it (every wire string is escaped by
:func:`~mysqlwire.views.escape.clean` first); a line that is not printable all the same
is handed to rich, so the bytes stay rich's.  ``tests/test_views_plain.py`` holds the
two equal.
"""

from __future__ import annotations

import os
import sys

__all__ = ["PlainConsole", "PlainLine"]


class PlainLine:
    """One line of output: ``rich.text.Text``'s ``append`` (the style is not shown)."""

    __slots__ = ("parts",)

    def __init__(self, text: str = "", style: str = "") -> None:
        self.parts = [text]

    def append(self, text: str, style: str | None = None) -> PlainLine:
        self.parts.append(text)
        return self

    @property
    def plain(self) -> str:
        return "".join(self.parts)


class PlainConsole:
    """What the text view prints on when colour is off: ``print(line)`` writes the line
    and a newline to ``file``; ``flush()`` ends a block (rich flushed after every print:
    the order of stdout and stderr output stays the same).  ``width`` and
    ``color_system`` answer as the rich console would."""

    color_system = None

    def __init__(self, file=None) -> None:
        self.file = file if file is not None else sys.stdout
        self._width: int | None = None

    @property
    def width(self) -> int:
        if self._width is None:
            self._width = _rich_console(self.file).width
        return self._width

    @width.setter
    def width(self, value: int) -> None:
        self._width = value

    def print(self, line: PlainLine | None = None) -> None:
        text = "" if line is None else "".join(line.parts)
        if not text.isprintable():
            text = _as_rich_writes(text)
        try:
            self.file.write(text + "\n")
        except BrokenPipeError:
            _broken_pipe()
        except UnicodeEncodeError as error:  # (rich's hint, word for word)
            error.reason = f"{error.reason}\n*** You may need to add PYTHONIOENCODING=utf-8 to your environment ***"
            raise

    def flush(self) -> None:
        try:
            self.file.flush()
        except BrokenPipeError:
            _broken_pipe()


def _rich_console(file):
    from rich.console import Console

    return Console(
        file=file,
        force_terminal=False,
        no_color=True,
        highlight=False,
        soft_wrap=True,
        emoji=False,
    )


def _as_rich_writes(text: str) -> str:
    """``text`` as the rich console writes it (never reached by the text view's own
    lines; kept so that a future unescaped string still prints rich's bytes)."""
    import io

    from rich.text import Text

    buf = io.StringIO()
    _rich_console(buf).print(Text(text))
    return buf.getvalue()[:-1]


def _broken_pipe() -> None:
    """What rich's console does when the reader of stdout has gone: stdout to
    /dev/null (no second error at exit) and exit status 1."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(1)
