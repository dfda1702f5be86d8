"""The Python API for notebooks and scripts.

>>> import mysqlwire
>>> cap = mysqlwire.open("captures/lab-samples/mariadb_pymysql_native_ok.pcap")
>>> conn = cap.connection(1)          # connections are numbered from 1
>>> conn.user, conn.outcome
('app', 'ok')
>>> conn.replay(password="Tr0ub4dor&3").verdict
'PROOF_MATCHES'
>>> [f.code for f in conn.diagnose()][:1]
['OFFLINE_CRACKABLE_PROOF']

This module is the layer that joins the record (:mod:`mysqlwire.model`, which
imports nothing above the grammars) with what is computed on it (replay,
diagnose) and how it is shown (:mod:`mysqlwire.views`): importing it attaches
``Connection.replay()``, ``Connection.diagnose()`` and
``Connection._repr_html_()`` to every :class:`~mysqlwire.model.Connection`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .dissect import CaptureSummary, DissectOptions, iter_connections
from .model import Connection
from .replay import Secrets, Verdict, replay_connection
from .views.html import capture_html, connection_html

if TYPE_CHECKING:  # pragma: no cover
    from .diagnose import Finding

__all__ = ["Capture", "open_capture", "make_secrets"]

Password = str | bytes


def _b(v: Password | None) -> bytes | None:
    if v is None:
        return None
    return v.encode("utf-8") if isinstance(v, str) else bytes(v)


def make_secrets(
    password: Password | None = None,
    *,
    candidates: Iterable[Password] | None = None,
    account_hash: str | None = None,
    rsa_key: str | os.PathLike | bytes | Iterable[bytes] | None = None,
    by_user: Mapping[str, Password] | None = None,
    hash_by_user: Mapping[str, str] | None = None,
) -> Secrets:
    """A :class:`mysqlwire.replay.Secrets` from plain values (its repr hides them).

    ``password``/``candidates``/``by_user`` values are str (UTF-8) or bytes;
    ``account_hash`` is a stored hash (``*``+40 hex, 16 hex, ed25519 key,
    parsec); ``rsa_key`` the server's private key: PEM bytes, a path, or a list
    of PEM bytes."""
    keys: list[bytes] = []
    if isinstance(rsa_key, (str, os.PathLike)):
        keys.append(Path(rsa_key).read_bytes())
    elif isinstance(rsa_key, (bytes, bytearray)):
        keys.append(bytes(rsa_key))
    elif rsa_key is not None:
        keys.extend(bytes(k) for k in rsa_key)
    return Secrets(
        password=_b(password),
        by_user={u: _b(p) for u, p in (by_user or {}).items()},
        candidates=[_b(c) for c in (candidates or [])],
        account_hash=account_hash,
        hash_by_user=dict(hash_by_user or {}),
        rsa_private_keys=keys,
    )


def _secrets(secrets: Secrets | None, **values) -> Secrets:
    if secrets is not None:
        if any(v is not None for v in values.values()):
            raise TypeError("give either secrets= or password/candidates/... values, not both")
        return secrets
    return make_secrets(**values)


# ------------------------------------------------ methods attached to Connection


def _connection_replay(
    self: Connection,
    password: Password | None = None,
    *,
    secrets: Secrets | None = None,
    candidates: Iterable[Password] | None = None,
    account_hash: str | None = None,
    rsa_key: str | os.PathLike | bytes | None = None,
    by_user: Mapping[str, Password] | None = None,
) -> Verdict:
    """Replay this connection's login; returns a :class:`mysqlwire.replay.Verdict`.

    Give a ``password``, ``candidates`` (the verdict says which one matched, by
    its position from 1), an ``account_hash``, ``by_user`` passwords, or a
    ready ``secrets`` object; ``rsa_key`` is the server's private key (PEM
    bytes or path) for caching_sha2/sha256 full authentication without TLS.
    The secrets are never stored in the result."""
    s = _secrets(
        secrets,
        password=password,
        candidates=candidates,
        account_hash=account_hash,
        rsa_key=rsa_key,
        by_user=by_user,
    )
    return replay_connection(self, s)


def _connection_diagnose(self: Connection, secrets: Secrets | None = None) -> list[Finding]:
    """Ranked findings (root cause first) for this connection, from wire
    evidence; with ``secrets`` the login is replayed first.  Also stores them
    in ``extra["diagnosis"]`` (and the client fingerprint), which the HTML
    view and ``to_dataframe()`` show.  For a whole capture prefer
    :meth:`Capture.diagnose`, which compares connections with each other."""
    from .diagnose import diagnose_connection

    return diagnose_connection(self, secrets)


def _fingerprinted(conn: Connection) -> Connection:
    """Attach the client fingerprint (computed by diagnose) before drawing."""
    if "client_fingerprint" not in conn.extra:
        from .diagnose.fingerprint import fingerprint_connection

        conn.extra["client_fingerprint"] = fingerprint_connection(conn).label
    return conn


def _connection_repr_html(self: Connection) -> str:
    """Jupyter: ladder diagram + verdict/diagnosis (:mod:`mysqlwire.views.html`)."""
    return connection_html(_fingerprinted(self))


Connection.replay = _connection_replay  # type: ignore[attr-defined]
Connection.diagnose = _connection_diagnose  # type: ignore[attr-defined]
Connection._repr_html_ = _connection_repr_html  # type: ignore[attr-defined]


# ------------------------------------------------------------------ Capture


class Capture:
    """A capture opened for exploration; its connections are read once, lazily.

    ``capture.connections`` is a list (Python indexes from 0);
    ``capture.connection(n)`` is connection ``#n`` as every output numbers it
    (from 1)."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        ports: int | Iterable[int] | None = None,
        detect: bool = False,
        keylog: str | os.PathLike | Any | None = None,
        packets: bool = True,
        show_secrets: bool = False,
        max_packet: int = 16 * 1024 * 1024,
        max_buffer: int = 4 * 1024 * 1024,
    ):
        self.path = os.fspath(path)
        if ports is None:
            ports = ()  # every TCP port: MySQL is recognised by its bytes
        elif isinstance(ports, int):
            ports = (ports,)
        if keylog is not None and not hasattr(keylog, "merge"):
            from .tls import KeyLog

            keylog = KeyLog.from_file(keylog)
        self.options = DissectOptions(
            ports=tuple(ports),
            detect=detect,
            keylog=keylog,
            with_packets=packets,
            show_secrets=show_secrets,
            max_packet=max_packet,
            max_buffer=max_buffer,
        )
        self.summary = CaptureSummary(path=self.path)
        self._connections: list[Connection] | None = None

    @property
    def connections(self) -> list[Connection]:
        if self._connections is None:
            self._connections = list(iter_connections(self.path, self.options, self.summary))
        return self._connections

    def connection(self, number: int) -> Connection:
        """Connection ``#number``, numbered from 1 as the CLI, JSON ``id`` and report show."""
        for c in self.connections:
            if c.id == number:
                return c
        raise KeyError(f"no connection #{number} in {self.path} ({len(self)} connection(s))")

    def __iter__(self) -> Iterator[Connection]:
        return iter(self.connections)

    def __len__(self) -> int:
        return len(self.connections)

    def __getitem__(self, i: int) -> Connection:
        return self.connections[i]

    def replay(
        self,
        password: Password | None = None,
        *,
        secrets: Secrets | None = None,
        candidates: Iterable[Password] | None = None,
        account_hash: str | None = None,
        rsa_key: str | os.PathLike | bytes | None = None,
        by_user: Mapping[str, Password] | None = None,
    ) -> list[Verdict]:
        """Replay every connection (same arguments as ``Connection.replay``);
        returns the verdicts in connection order."""
        s = _secrets(
            secrets,
            password=password,
            candidates=candidates,
            account_hash=account_hash,
            rsa_key=rsa_key,
            by_user=by_user,
        )
        return [replay_connection(c, s) for c in self.connections]

    def diagnose(self, secrets: Secrets | None = None) -> list[Connection]:
        """Diagnose every connection (they are compared with each other);
        the findings land in each connection's ``extra["diagnosis"]``."""
        from .diagnose import diagnose_connections

        return diagnose_connections(self.connections, secrets)

    def records(self) -> list[dict]:
        return [c.to_record() for c in self.connections]

    def to_dataframe(self):
        """One row per connection with the JSON record's columns (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - optional extra
            raise ImportError(
                "to_dataframe() needs pandas: pip install 'mysqlwire[notebook]'"
            ) from exc
        rows = []
        for c in self.connections:
            rec = c.to_record()
            if "verdict" in c.extra:
                rec["verdict"] = c.extra["verdict"]["verdict"]
            if "diagnosis" in c.extra:
                rec["top_finding"] = (
                    c.extra["diagnosis"][0]["code"] if c.extra["diagnosis"] else None
                )
            rows.append(rec)
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        """Jupyter: one summary row per connection (:mod:`mysqlwire.views.html`)."""
        for c in self.connections:
            _fingerprinted(c)
        return capture_html(self)

    def __repr__(self) -> str:
        n = len(self._connections) if self._connections is not None else "?"
        name = os.path.basename(self.path)
        if len(name) > 60:
            name = name[:28] + "\u2026" + name[-28:]
        return f"<mysqlwire.Capture {name!r} connections={n}>"


def open_capture(
    path: str | os.PathLike,
    *,
    ports: int | Iterable[int] | None = None,
    detect: bool = False,
    keylog: str | os.PathLike | Any | None = None,
    packets: bool = True,
    show_secrets: bool = False,
    max_packet: int = 16 * 1024 * 1024,
    max_buffer: int = 4 * 1024 * 1024,
) -> Capture:
    """See :func:`mysqlwire.open`."""
    return Capture(
        path,
        ports=ports,
        detect=detect,
        keylog=keylog,
        packets=packets,
        show_secrets=show_secrets,
        max_packet=max_packet,
        max_buffer=max_buffer,
    )
