"""Output paths: checked before anything is written, written without surprises.

Every command that writes a file (``redact -o/--map``, ``report -o``,
``keylog-inject -o``, ``capture add``, ``serve --keylog/--dump-rsa-key``) goes
through this module.  The rules (SECURITY.md, "Files mysqlwire writes"):

* a path is checked *before* any work: never equal to an input (same path after
  resolving, or the same inode), never equal to another output of the same
  command, never a directory;
* the last path component is never followed when it is a symbolic link (refused);
* only regular files are replaced, through a temporary file in the same folder
  renamed into place (the old file stays intact when writing fails); a FIFO or
  a character device (``/dev/null``, a named pipe) is written to directly, any
  other special file (block device, socket) is refused;
* ``-`` means stdout where the command allows it;
* a *secret* output (``--map``, a key log, a private key) is created with mode
  0600 whatever the umask and whatever mode the file it replaces had.

Imports nothing of mysqlwire but :mod:`mysqlwire.errors`, so every layer may
use it.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import UsageError

__all__ = [
    "Output",
    "OutputPathError",
    "check_output",
    "check_outputs",
    "confined",
    "open_output",
    "prepare_secret_file",
    "write_output",
]

STDOUT = "-"
SECRET_MODE = 0o600

# kinds of Output
K_STDOUT = "stdout"
K_NEW = "new"  # does not exist yet
K_REGULAR = "regular"  # an existing regular file: replaced
K_SPECIAL = "special"  # a FIFO or character device: written directly


class OutputPathError(UsageError):
    """An output path that must not be written (one line, names the path)."""


@dataclass(frozen=True)
class Output:
    """A checked output: where it goes and how it will be written."""

    path: Path | None  # None for stdout
    kind: str
    what: str = "output"

    @property
    def label(self) -> str:
        return "stdout" if self.path is None else str(self.path)

    @property
    def is_stdout(self) -> bool:
        return self.kind == K_STDOUT


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _resolved(path: Path) -> Path:
    """The path with its folders resolved, its last component kept as is (a
    symbolic link there is not followed)."""
    path = Path(os.path.expanduser(os.fspath(path)))
    parent = path.parent.resolve(strict=False)
    return parent / path.name


def check_output(
    path: str | os.PathLike | Output | None,
    *,
    what: str = "output",
    inputs: Iterable[str | os.PathLike] = (),
    allow_stdout: bool = False,
) -> Output:
    """Check one output path; raise :class:`OutputPathError` when it must not
    be written.  ``inputs`` are the paths the command reads.  An
    :class:`Output` already checked is checked again (things may have changed)."""
    if isinstance(path, Output):
        allow_stdout = allow_stdout or path.is_stdout
        path = STDOUT if path.path is None else path.path
    if path is None:
        raise OutputPathError(f"{what}: no path given")
    if os.fspath(path) == STDOUT:
        if not allow_stdout:
            raise OutputPathError(f"{what}: '-' (stdout) is not accepted here; give a file name")
        return Output(None, K_STDOUT, what)
    raw = Path(os.fspath(path))
    if not raw.name or raw.name in (".", ".."):
        raise OutputPathError(f"{what} {raw}: not a file name")
    full = _resolved(raw)
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputPathError(f"{what} {raw}: {exc.strerror or exc}") from None
    if st is None:
        if not full.parent.is_dir():
            raise OutputPathError(f"{what} {raw}: folder {full.parent} does not exist")
        kind = K_NEW
    elif stat.S_ISLNK(st.st_mode):
        raise OutputPathError(f"{what} {raw}: is a symbolic link; refusing to follow it")
    elif stat.S_ISDIR(st.st_mode):
        raise OutputPathError(f"{what} {raw}: is a directory")
    elif stat.S_ISREG(st.st_mode):
        kind = K_REGULAR
    elif stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
        kind = K_SPECIAL
    else:
        raise OutputPathError(
            f"{what} {raw}: is a special file (block device or socket); refusing to write it"
        )
    out = Output(full, kind, what)
    ident = _identity(full) if st is not None else None
    for src in inputs:
        if src is None or os.fspath(src) == STDOUT:
            continue
        src_path = Path(os.fspath(src))
        if _resolved(src_path) == full or (
            ident is not None and kind != K_SPECIAL and _identity(src_path) == ident
        ):
            raise OutputPathError(
                f"{what} {raw}: is also an input ({src_path}); refusing to overwrite it"
            )
    return out


def check_outputs(
    outputs: Mapping[str, str | os.PathLike | Output | None],
    *,
    inputs: Iterable[str | os.PathLike] = (),
    allow_stdout: Iterable[str] = (),
) -> dict[str, Output]:
    """Check several outputs of one command (``{what: path}``, None = not
    asked for): each as :func:`check_output`, and no two the same file."""
    inputs = list(inputs)
    stdout_ok = set(allow_stdout)
    checked: dict[str, Output] = {}
    for what, path in outputs.items():
        if path is None:
            continue
        out = check_output(path, what=what, inputs=inputs, allow_stdout=what in stdout_ok)
        for other in checked.values():
            same = (out.is_stdout and other.is_stdout) or (
                out.path is not None
                and other.path is not None
                and (
                    out.path == other.path
                    or (
                        out.kind != K_NEW
                        and other.kind != K_NEW
                        and _identity(out.path) == _identity(other.path)
                        and out.kind != K_SPECIAL
                    )
                )
            )
            if same:
                raise OutputPathError(
                    f"{what} {out.label}: is also the {other.what}; give two different files"
                )
        checked[what] = out
    return checked


def confined(folder: str | os.PathLike, name: str, *, what: str = "name") -> Path:
    """``folder/name`` when ``name`` is a plain file name that stays inside
    ``folder`` (no separator, no ``..``, not absolute); else OutputPathError."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or os.path.isabs(name)
    ):
        raise OutputPathError(
            f"{what} {name!r}: must be a plain file name inside {os.fspath(folder)} "
            "(no '/', no '..')"
        )
    return Path(os.fspath(folder)) / name


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def open_output(out: Output, *, text: bool = False, secret: bool = False) -> Iterator[IO]:
    """A writable file for a checked output.  Regular files are written to a
    temporary file renamed into place when the block ends without error
    (removed otherwise); FIFOs and character devices are opened directly;
    stdout is not closed.  ``secret``: the file gets mode 0600."""
    if out.is_stdout:
        stream = sys.stdout if text else sys.stdout.buffer
        yield stream
        stream.flush()
        return
    assert out.path is not None
    if out.kind == K_SPECIAL:
        flags = os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_NOCTTY", 0)
        fd = os.open(out.path, flags)
        try:
            st = os.fstat(fd)
            if not (stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode)):
                raise OutputPathError(f"{out.what} {out.path}: changed while being checked")
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as fh:
            yield fh
        return
    # mkstemp: O_CREAT|O_EXCL, mode 0600, in the destination folder
    fd, tmp = tempfile.mkstemp(prefix=f".{out.path.name}.", suffix=".partial", dir=out.path.parent)
    try:
        os.fchmod(fd, SECRET_MODE if secret else _default_mode())
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as fh:
            yield fh
        # the destination may have changed since it was checked: never follow
        # or replace anything but a regular file (rename never follows a link,
        # but a link there now was not there when checked)
        try:
            st = os.lstat(out.path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise OutputPathError(
                f"{out.what} {out.path}: changed while being written; not replaced"
            )
        os.replace(tmp, out.path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_output(out: Output, data: bytes | str, *, secret: bool = False) -> None:
    """Write ``data`` whole to a checked output (see :func:`open_output`)."""
    with open_output(out, text=isinstance(data, str), secret=secret) as fh:
        fh.write(data)


def prepare_secret_file(path: str | os.PathLike, *, what: str = "secret file") -> int:
    """Make ``path`` ready for a secret that another party appends to (a TLS key
    log written by the ssl module): created with ``O_EXCL|O_NOFOLLOW`` and mode
    0600 when missing; an existing regular file is kept and set to 0600; a
    symbolic link or any other kind of file is refused.  Returns the file's
    real mode afterwards (to print it honestly)."""
    p = Path(os.fspath(path))
    flags = os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    except FileExistsError:
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            raise OutputPathError(
                f"{what} {p}: is a symbolic link; refusing to follow it"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise OutputPathError(
                f"{what} {p}: is not a regular file; refusing to write it"
            ) from None
        try:
            fd = os.open(p, flags | os.O_APPEND)
        except OSError as exc:
            raise OutputPathError(f"{what} {p}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise OutputPathError(f"{what} {p}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OutputPathError(f"{what} {p}: is not a regular file; refusing to write it")
        if stat.S_IMODE(st.st_mode) != SECRET_MODE:
            os.fchmod(fd, SECRET_MODE)
        return stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
