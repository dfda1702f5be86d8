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


class Secrets:
    """Everything the user gave to check proofs: the ONE secrets holder of mysqlwire
    (CLI, replay, diagnose, the API, the corpus).

    ``password`` (file / env / prompt), ``per_user`` (``--secrets`` map user -> password),
    ``candidates`` (``--candidates``), ``account_hash`` / ``hash_by_user`` (stored hashes,
    treated as secret), ``rsa_private_keys`` (server keys, PEM bytes).  Passwords are kept
    as :class:`Secret`; ``str``/``bytes`` given to the constructor are wrapped.  ``by_user``
    is accepted as another name of ``per_user``.

    The one lookup rule (:meth:`passwords_for`): for user U try U's own password from the
    map, then the single password, then every candidate in file order; a value already
    tried is not tried again.  A candidate is referred to by its number -- its line in the
    candidates file (``candidate_lines``) or else its 1-based position -- never by value.
    Stored hashes: U's own, else the single one.
    """

    __slots__ = (
        "_password",
        "per_user",
        "candidates",
        "account_hash",
        "hash_by_user",
        "rsa_private_keys",
        "candidate_lines",
    )

    def __init__(
        self,
        password: Secret | bytes | str | None = None,
        per_user: Mapping[str, Secret | bytes | str] | None = None,
        candidates: Iterable[Secret | bytes | str] | None = None,
        *,
        by_user: Mapping[str, Secret | bytes | str] | None = None,
        account_hash: str | None = None,
        hash_by_user: Mapping[str, str] | None = None,
        rsa_private_keys: Iterable[bytes] | None = None,
        candidate_lines: Iterable[int] | None = None,
    ):
        self.password = password
        users = dict(per_user or {})
        users.update(by_user or {})
        self.per_user: dict[str, Secret] = {str(u): Secret(v) for u, v in users.items()}
        self.candidates: list[Secret] = [Secret(c) for c in (candidates or [])]
        self.account_hash = account_hash
        self.hash_by_user: dict[str, str] = dict(hash_by_user or {})
        self.rsa_private_keys: list[bytes] = [bytes(k) for k in (rsa_private_keys or [])]
        self.candidate_lines: list[int] = list(candidate_lines or [])

    @property
    def password(self) -> Secret | None:
        return self._password

    @password.setter
    def password(self, value: Secret | bytes | str | None) -> None:
        self._password = None if value is None else Secret(value)

    @property
    def by_user(self) -> dict[str, Secret]:
        return self.per_user

    def passwords_for(self, user: str | None) -> list[tuple[int | None, bytes]]:
        """``(candidate number or None, password bytes)`` to try for ``user``, in order."""
        ordered: list[tuple[int | None, Secret | None]] = [
            (None, self.per_user.get(user) if user is not None else None),
            (None, self.password),
            *((self._number(i), c) for i, c in enumerate(self.candidates)),
        ]
        out: list[tuple[int | None, bytes]] = []
        for number, s in ordered:
            if s is not None and not any(s == o for _, o in out):
                out.append((number, s.reveal()))
        return out

    def _number(self, index: int) -> int:
        if index < len(self.candidate_lines):
            return self.candidate_lines[index]
        return index + 1

    @classmethod
    def from_numbered(cls, numbered: Iterable[tuple[int, Secret]], **kw) -> Secrets:
        """Secrets whose candidates come with their line numbers (:func:`numbered_candidates`)."""
        pairs = list(numbered)
        return cls(candidates=[c for _, c in pairs], candidate_lines=[n for n, _ in pairs], **kw)

    def for_user(self, user: str | None) -> list[Secret]:
        """The same passwords as :meth:`passwords_for`, as :class:`Secret` values."""
        return [Secret(p) for _, p in self.passwords_for(user)]

    def hash_for(self, user: str | None) -> str | None:
        if user is not None and user in self.hash_by_user:
            return self.hash_by_user[user]
        return self.account_hash

    @property
    def empty(self) -> bool:
        """No password, candidate or stored hash (RSA keys alone decide nothing)."""
        return not (
            self.password is not None
            or self.per_user
            or self.candidates
            or self.account_hash
            or self.hash_by_user
        )

    def __bool__(self) -> bool:
        return not self.empty

    def __repr__(self) -> str:
        return (
            f"Secrets(password={_REDACTED if self.password is not None else None}, "
            f"users={len(self.per_user)}, candidates={len(self.candidates)}, "
            f"hashes={len(self.hash_by_user) + (self.account_hash is not None)}, "
            f"rsa_keys={len(self.rsa_private_keys)})"
        )

    __str__ = __repr__


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
