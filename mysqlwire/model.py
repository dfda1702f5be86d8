"""What a dissected connection is: the record every command builds on.

``Connection.to_record()`` gives the stable JSON schema
``mysqlwire/connection/1`` documented in README.md.  Later stages (replay,
diagnose, TLS) add keys to the record; they never rename one.

``Connection.exchanges`` keeps, for the login and each COM_CHANGE_USER, the
authentication steps with their raw bytes; replay walks them.  Those bytes can
be secret (clear-text passwords, tokens): they are never part of the record
unless the caller asks for secrets explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA = "mysqlwire/connection/1"

# Plugins whose client data is the password (or a token) itself.


_NAMES_CACHE: dict[tuple, tuple[str, ...]] = {}


def _flag_names(fn, value: int) -> list[str]:
    """``fn(value)`` (a flag-names function), remembered: a capture has few
    distinct capability sets and thousands of connections."""
    key = (fn, value)
    names = _NAMES_CACHE.get(key)
    if names is None:
        if len(_NAMES_CACHE) > 4096:
            _NAMES_CACHE.clear()
        names = _NAMES_CACHE[key] = tuple(fn(value))
    return list(names)


_CAP_NAMES: tuple = ()


def _load_cap_names() -> tuple:
    """The flag-name functions, imported on first use (the record imports
    nothing above the grammars at import time)."""
    global _CAP_NAMES
    from .protocol import cap_names, mariadb_cap_names

    _CAP_NAMES = (cap_names, mariadb_cap_names)
    return _CAP_NAMES


def text(raw: bytes | None) -> str | None:
    """Bytes from the wire as text for output (never raises)."""
    if raw is None:
        return None
    if raw.__class__ is not bytes:
        raw = bytes(raw)
    return raw.decode("utf-8", "backslashreplace")


@dataclass(slots=True)
class AuthStep:
    """One authentication packet of an exchange.

    kind: ``handshake_response`` / ``com_change_user`` (client's first data),
    ``auth_switch_request``, ``old_auth_switch_request``, ``auth_more_data``,
    ``server_plugin_data``, ``auth_next_factor`` (server), ``auth_data``
    (client's answer), ``ok``/``err`` (the end).  ``data`` is the plugin data
    only (no marker byte).
    """

    sender: str
    kind: str
    seq: int | None
    plugin: str | None
    data: bytes = field(repr=False)  # may be a clear-text password: never in repr
    ts: float
    in_tls: bool = False


@dataclass(slots=True)
class Exchange:
    """The login (``kind="login"``) or one COM_CHANGE_USER re-authentication."""

    kind: str
    nonce: bytes | None
    user: str | None = None
    database: str | None = None
    client_plugin: str | None = None  # as named by the client (None: not named)
    auth_plugin: str | None = None  # plugin of the first proof (inferred when not named)
    steps: list[AuthStep] = field(default_factory=list)
    outcome: str = "incomplete"
    error: dict | None = None
    tls: bool = False
    first_ts: float | None = None
    last_ts: float | None = None

    @property
    def switches(self) -> list[str]:
        return [
            s.plugin
            for s in self.steps
            if s.kind in ("auth_switch_request", "old_auth_switch_request")
        ]

    @property
    def final_plugin(self) -> str | None:
        plugin = self.auth_plugin or self.client_plugin
        for s in self.steps:
            if s.kind in ("auth_switch_request", "old_auth_switch_request", "auth_next_factor"):
                plugin = s.plugin
        return plugin


def change_user_records(exchanges: list) -> list[dict[str, Any]]:
    """The records' ``change_user`` list: one entry per COM_CHANGE_USER exchange."""
    return [
        {
            "user": ex.user,
            "database": ex.database,
            "client_plugin": ex.client_plugin,
            "switches": ex.switches,
            "final_plugin": ex.final_plugin,
            "outcome": ex.outcome,
            "error": ex.error,
        }
        for ex in exchanges
        if ex.kind == "change_user"
    ]


@dataclass(slots=True)
class Connection:
    """Everything mysqlwire learned about one TCP connection.

    Slotted: a capture may hold 100,000 of them (a ``__dict__`` would cost
    ~1.3 KB more each)."""

    id: int
    client: str
    server: str
    capture: str | None = None
    first_ts: float | None = None
    last_ts: float | None = None
    protocol_version: int | None = None
    server_version: str | None = None
    thread_id: int | None = None
    server_capabilities: int | None = None
    server_ext_capabilities: int | None = None
    client_capabilities: int | None = None
    client_ext_capabilities: int | None = None
    greeting_plugin: str | None = None
    greeting_nonce: bytes | None = None
    character_set: int | None = None
    client_character_set: int | None = None
    max_packet_size: int | None = None
    connect_attrs: dict[str, str] | None = None
    tls: bool = False
    compressed: bool = False
    tls_info: dict[str, Any] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    packets: list[dict] | None = None
    command_error: dict | None = None
    closed_by: str | None = None  # "fin"/"rst"/"end-of-capture"/...
    greeting_seen: bool = False
    midstream: bool = False  # already open when the capture started: no login seen
    extra: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- derived facts
    @property
    def login(self) -> Exchange | None:
        if self.exchanges and self.exchanges[0].kind == "login":
            return self.exchanges[0]
        return None

    @property
    def change_users(self) -> list[Exchange]:
        return [ex for ex in self.exchanges if ex.kind == "change_user"]

    @property
    def user(self) -> str | None:
        return self.login.user if self.login else None

    @property
    def database(self) -> str | None:
        return self.login.database if self.login else None

    @property
    def client_plugin(self) -> str | None:
        return self.login.client_plugin if self.login else None

    @property
    def switches(self) -> list[str]:
        return self.login.switches if self.login else []

    @property
    def final_plugin(self) -> str | None:
        if self.login:
            return self.login.final_plugin
        return None

    @property
    def error(self) -> dict | None:
        if self.login is not None:
            return self.login.error
        return self.extra.get("pre_greeting_error") or self.extra.get("midstream_error")

    @property
    def encrypted(self) -> bool:
        """TLS that was not decrypted (no keys, or keys that do not fit)."""
        return self.tls and not self.tls_info.get("decrypted")

    @property
    def outcome(self) -> str:
        """``ok``, ``error``, ``incomplete``; ``encrypted`` (a TLS login
        without keys: its end cannot be seen); ``midstream`` (the connection
        was already open when the capture started: no login to see)."""
        login = self.login
        if login is not None and login.outcome != "incomplete":
            return login.outcome
        if self.midstream:
            return "midstream"
        if self.encrypted:
            return "encrypted"
        if login is not None:
            return login.outcome
        if self.extra.get("pre_greeting_error"):
            return "error"
        return "incomplete"

    @property
    def is_mariadb(self) -> bool:
        return bool(self.server_version and "mariadb" in self.server_version.lower())

    @property
    def failed(self) -> bool:
        """A failed login: the server refused it, or the client gave up during
        authentication (closed the connection before the server's verdict)."""
        if self.outcome == "error":
            return True
        login = self.login
        return bool(
            login is not None
            and login.outcome == "incomplete"
            and not self.encrypted
            and self.closed_by in ("fin", "rst")
            and login.steps
        )

    def __repr__(self) -> str:
        """Short (about 100-200 characters): the full record is ``to_record()``.
        Wire strings are shown with ``repr`` (control characters escaped) and
        cut to 40 characters."""

        def short(v) -> str:
            r = repr(v)
            return r if len(r) <= 40 else r[:38] + "\u2026" + r[-1]

        parts = [f"#{self.id}", short(self.client), "->", short(self.server)]
        if self.user is not None:
            parts.append(f"user={short(self.user)}")
        if self.final_plugin:
            parts.append(f"plugin={short(self.final_plugin)}")
        if self.tls:
            parts.append("tls")
        parts.append(f"outcome={self.outcome}")
        if self.error:
            parts.append(f"error={self.error.get('code')}")
        return f"<mysqlwire.Connection {' '.join(parts)}>"

    # replay(), diagnose() and _repr_html_() are attached by mysqlwire.api:
    # the record imports nothing above the grammars.

    def login_facts(self) -> tuple:
        """``(user, database, client_plugin, switches, final_plugin, error)``
        of the login, computed once, as the properties above define them (for
        the record writers)."""
        exchanges = self.exchanges
        login = exchanges[0] if exchanges and exchanges[0].kind == "login" else None
        if login is not None:
            return (
                login.user,
                login.database,
                login.client_plugin,
                login.switches,
                login.final_plugin,
                login.error,
            )
        error = self.extra.get("pre_greeting_error") or self.extra.get("midstream_error")
        return None, None, None, [], None, error

    def to_record(self, *, with_packets: bool = False) -> dict[str, Any]:
        # the derived facts (user, switches, outcome...) computed once here
        # from the login, as the properties above define them
        names = _CAP_NAMES or _load_cap_names()
        cap_names, mariadb_cap_names = names
        user, database, client_plugin, switches, final_plugin, error = self.login_facts()
        exchanges = self.exchanges
        server_caps = self.server_capabilities
        client_caps = self.client_capabilities
        rec: dict[str, Any] = {
            "schema": SCHEMA,
            "capture": self.capture,
            "id": self.id,
            "client": self.client,
            "server": self.server,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "protocol_version": self.protocol_version,
            "server_version": self.server_version,
            "thread_id": self.thread_id,
            "server_capabilities": _flag_names(cap_names, server_caps)
            if server_caps is not None
            else None,
            "server_mariadb_capabilities": _flag_names(
                mariadb_cap_names, self.server_ext_capabilities
            )
            if self.server_ext_capabilities
            else [],
            "client_capabilities": _flag_names(cap_names, client_caps)
            if client_caps is not None
            else None,
            "greeting_plugin": self.greeting_plugin,
            "client_plugin": client_plugin,
            "switches": switches,
            "final_plugin": final_plugin,
            "user": user,
            "database": database,
            "connect_attrs": self.connect_attrs,
            "tls": self.tls,
            "compressed": self.compressed,
            "outcome": self.outcome,
            "midstream": self.midstream,
            "error": error,
            "anomalies": list(self.anomalies),
            "change_user": change_user_records(exchanges),
            "command_error": self.command_error,
        }
        for key in ("tls_version", "tls_cipher", "tls_sni", "tls_status", "tls_alerts"):
            if key in self.tls_info:
                rec[key] = self.tls_info[key]
        if with_packets:
            # "n": the packet's number within the connection, from 1 (the
            # number the --packets tree and the ladders show; seq is the
            # MySQL sequence id)
            rec["packets"] = [{"n": i, **p} for i, p in enumerate(self.packets or [], 1)]
        return rec
