"""Where replay gets passwords from, and a wrapper that keeps them out of logs.

Sources (each returns :class:`Secret` values holding bytes):

* a password file -- the whole file, minus ONE trailing newline (``\\n`` or ``\\r\\n``);
  every other byte (spaces, inner newlines) is part of the password;
* an environment variable -- its value as UTF-8;
* a prompt -- :func:`getpass.getpass` (no echo);
* a map file user -> password, JSON (``.json``) or TOML (``.toml``; other suffixes: JSON
  is tried, then TOML) whose top level is ``{"user": "password", ...}``;
* a candidates file -- one password per line (``\\n`` or ``\\r\\n`` line ends, bytes kept
  as they are otherwise).  Blank lines are IGNORED (editors leave them); the empty
  password is tried only where a line is exactly :data:`EMPTY_MARKER` (``(empty)``).  Pass
  ``empty_marker=None`` to read ``(empty)`` as a literal password.  Duplicates are dropped,
  first occurrence order kept.

Passwords are never put in messages: errors name the file, variable or user only, and
parser exceptions are not chained (``JSONDecodeError.doc`` holds the whole document).
"""

from __future__ import annotations

import getpass
import hmac
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mysqlwire.errors import UsageError

EMPTY_MARKER = "(empty)"
_REDACTED = "<secret>"


class Secret:
    """A password as bytes whose ``repr``/``str``/``format`` is ``'<secret>'``.

    ``reveal()`` returns the bytes.  Equality is constant-time; instances are unhashable.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes | bytearray | str | Secret):
        if isinstance(value, Secret):
            value = value.reveal()
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, (bytes, bytearray)):
            raise UsageError(f"a secret must be bytes or str, not {type(value).__name__}")
        self._value = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return _REDACTED

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return _REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            other = other._value
        if isinstance(other, (bytes, bytearray)):
            return hmac.compare_digest(self._value, bytes(other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _read_bytes(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {os.fspath(path)!r}: {exc.strerror}") from None


def strip_one_newline(data: bytes) -> bytes:
    """Remove one trailing ``\\n`` (with a ``\\r`` before it, if any)."""
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data


def read_password_file(path: str | os.PathLike[str]) -> Secret:
    """The file's bytes minus one trailing newline."""
    return Secret(strip_one_newline(_read_bytes(path, "password file")))


def password_from_env(name: str, environ: Mapping[str, str] | None = None) -> Secret:
    """The value of environment variable ``name`` (UsageError when unset)."""
    env = os.environ if environ is None else environ
    if name not in env:
        raise UsageError(f"environment variable {name} is not set")
    return Secret(env[name])


def prompt_password(
    prompt: str = "Password: ", *, getpass_func: Callable[[str], str] = getpass.getpass
) -> Secret:
    """Ask on the terminal without echo."""
    try:
        return Secret(getpass_func(prompt))
    except (EOFError, KeyboardInterrupt):
        raise UsageError("no password entered") from None


def _parse_map(data: bytes, kind: str) -> object:
    if kind == "json":
        return json.loads(data.decode("utf-8"))
    try:
        import tomllib
    except ImportError:  # Python 3.10: the tomli backport (a dependency there)
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(data.decode("utf-8"))


def read_password_map(path: str | os.PathLike[str]) -> dict[str, Secret]:
    """``{user: Secret}`` from a JSON or TOML file whose top level maps user -> password."""
    data = _read_bytes(path, "secrets file")
    suffix = Path(path).suffix.lower()
    kinds = {".json": ["json"], ".toml": ["toml"]}.get(suffix, ["json", "toml"])
    parsed: object = None
    for kind in kinds:
        try:
            parsed = _parse_map(data, kind)
            break
        except (ValueError, UnicodeDecodeError):  # JSONDecodeError and TOMLDecodeError
            continue
    else:
        raise UsageError(
            f"secrets file {os.fspath(path)!r} is not valid {' or '.join(k.upper() for k in kinds)}"
        )
    if not isinstance(parsed, dict):
        raise UsageError(
            f"secrets file {os.fspath(path)!r}: the top level must map user -> password"
        )
    out: dict[str, Secret] = {}
    for user, value in parsed.items():
        if not isinstance(value, str):
            raise UsageError(
                f"secrets file {os.fspath(path)!r}: the value for user {user!r} is not a string"
            )
        out[str(user)] = Secret(value)
    return out


def parse_candidates(data: bytes, *, empty_marker: str | None = EMPTY_MARKER) -> list[Secret]:
    """Candidate passwords from file contents (see the module docstring for the rules)."""
    return [s for _, s in numbered_candidates(data, empty_marker=empty_marker)]


def numbered_candidates(
    data: bytes, *, empty_marker: str | None = EMPTY_MARKER
) -> list[tuple[int, Secret]]:
    """``(line number from 1, candidate)`` for each candidate of the file
    contents, same rules as :func:`parse_candidates` (a duplicate keeps its
    first line): a matched candidate is named by its line, never its value."""
    marker = empty_marker.encode("utf-8") if empty_marker is not None else None
    seen: set[bytes] = set()
    out: list[tuple[int, Secret]] = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line == b"":
            continue
        if marker is not None and line == marker:
            line = b""
        if line in seen:
            continue
        seen.add(line)
        out.append((number, Secret(line)))
    return out


def read_candidates(
    path: str | os.PathLike[str], *, empty_marker: str | None = EMPTY_MARKER
) -> list[Secret]:
    """Candidate passwords, one per line (blank lines ignored, ``(empty)`` = empty)."""
    return parse_candidates(_read_bytes(path, "candidates file"), empty_marker=empty_marker)


def read_numbered_candidates(
    path: str | os.PathLike[str], *, empty_marker: str | None = EMPTY_MARKER
) -> list[tuple[int, Secret]]:
    """:func:`numbered_candidates` of a file."""
    return numbered_candidates(_read_bytes(path, "candidates file"), empty_marker=empty_marker)


@dataclass
class Secrets:
    """Everything the CLI loaded: one password, per-user passwords, candidates."""

    password: Secret | None = None
    per_user: dict[str, Secret] = field(default_factory=dict)
    candidates: list[Secret] = field(default_factory=list)

    def for_user(self, user: str | None) -> list[Secret]:
        """Passwords to try for ``user``: its own, then the single one, then candidates."""
        ordered: Iterable[Secret | None] = [
            self.per_user.get(user) if user is not None else None,
            self.password,
            *self.candidates,
        ]
        out: list[Secret] = []
        for s in ordered:
            if s is not None and not any(s == o for o in out):
                out.append(s)
        return out

    def __bool__(self) -> bool:
        return self.password is not None or bool(self.per_user) or bool(self.candidates)


def load_secrets(
    *,
    password_file: str | os.PathLike[str] | None = None,
    password_env: str | None = None,
    prompt: bool | str = False,
    secrets_file: str | os.PathLike[str] | None = None,
    candidates_file: str | os.PathLike[str] | None = None,
    empty_marker: str | None = EMPTY_MARKER,
    environ: Mapping[str, str] | None = None,
    getpass_func: Callable[[str], str] = getpass.getpass,
) -> Secrets:
    """Load what the CLI options name.  At most one of ``password_file``,
    ``password_env`` and ``prompt`` (a str prompt is used as the prompt text)."""
    single = [x for x in (password_file, password_env, prompt or None) if x is not None]
    if len(single) > 1:
        raise UsageError("give only one of a password file, a password variable or a prompt")
    secrets = Secrets()
    if password_file is not None:
        secrets.password = read_password_file(password_file)
    elif password_env is not None:
        secrets.password = password_from_env(password_env, environ)
    elif prompt:
        text = prompt if isinstance(prompt, str) else "Password: "
        secrets.password = prompt_password(text, getpass_func=getpass_func)
    if secrets_file is not None:
        secrets.per_user = read_password_map(secrets_file)
    if candidates_file is not None:
        secrets.candidates = read_candidates(candidates_file, empty_marker=empty_marker)
    return secrets
