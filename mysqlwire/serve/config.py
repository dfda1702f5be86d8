"""Configuration of ``mysqlwire serve``: server settings and accounts.

Build a :class:`ServerConfig` from Python (``ServerConfig(accounts={...})``), from a dict
(:meth:`ServerConfig.from_dict`, the same shape as the TOML file) or from a TOML file
(:func:`load_config`).  TOML layout::

    [server]
    host = "127.0.0.1"          # loopback by default
    port = 3307
    version = "8.0.36-mysqlwire"
    collation = 255             # utf8mb4_0900_ai_ci
    greeting_plugin = "caching_sha2_password"
    tls = true                  # self-signed certificate generated at start unless tls_cert/tls_key
    keylog_file = "keys.log"    # NSS key log of every TLS session (decrypt captures)
    rsa_private_key = "rsa.pem" # generated at start when absent
    max_connections = 151
    disabled_plugins = ["mysql_native_password"]
    require_secure_transport = false

    [accounts.app]
    plugin = "caching_sha2_password"
    password_env = "APP_PW"     # or password_file = "...", or password = "..." (test only)
    databases = ["shop"]        # absent: every database
    cache_warm = true           # caching_sha2: fast auth from the first login

Passwords are held as :class:`mysqlwire.auth.passwords.Secret` (``repr`` is ``<secret>``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mysqlwire.auth.passwords import Secret, password_from_env, read_password_file
from mysqlwire.errors import UsageError

CACHING_SHA2 = "caching_sha2_password"
SHA256 = "sha256_password"
NATIVE = "mysql_native_password"
CLEAR = "mysql_clear_password"

#: Server-side plugins an account may use.
ACCOUNT_PLUGINS = (CACHING_SHA2, SHA256, NATIVE, CLEAR)
#: Plugins the server may name in its greeting (clear text is never a greeting plugin).
GREETING_PLUGINS = (CACHING_SHA2, SHA256, NATIVE)

#: Databases every MySQL 8 server has.
SYSTEM_DATABASES = ("information_schema", "mysql", "performance_schema", "sys")

DEFAULT_PORT = 3307  # not 3306: leaves room for a real server on the same machine
DEFAULT_VERSION = "8.0.36-mysqlwire"
DEFAULT_COLLATION = 255  # utf8mb4_0900_ai_ci, MySQL 8.0 default

#: How an AuthSwitchRequest gets its 20-byte nonce.
#: ``same`` = the greeting nonce again (what MySQL 8.0.39 / 8.4.2 do on the wire: see
#: ../shared/captures/public zeek/change-user-success.pcap, wireshark-learning/mysql.pcap);
#: ``new`` = a fresh nonce (stricter test of clients that must use the switch data).
SWITCH_NONCE_MODES = ("same", "new")


@dataclass
class Account:
    """One account (``'name'@'%'``)."""

    name: str
    plugin: str = CACHING_SHA2
    password: Secret = field(default_factory=lambda: Secret(b""))
    locked: bool = False  # ACCOUNT LOCK -> 3118 after a correct password
    expired: bool = False  # PASSWORD EXPIRE -> 1862 or sandbox (1820 on statements)
    require_ssl: bool = False  # REQUIRE SSL -> 1045 over plain TCP
    databases: tuple[str, ...] | None = None  # None: every database
    connection_admin: bool = False  # may use the extra connection past max_connections
    cache_warm: bool = False  # caching_sha2: SHA2 cache filled at start (fast auth at once)

    def __post_init__(self) -> None:
        if not isinstance(self.password, Secret):
            self.password = Secret(self.password if self.password is not None else b"")
        if self.plugin not in ACCOUNT_PLUGINS:
            raise UsageError(
                f"account {self.name!r}: unknown plugin {self.plugin!r} "
                f"(use one of {', '.join(ACCOUNT_PLUGINS)})"
            )
        if self.databases is not None:
            if isinstance(self.databases, str):
                raise UsageError(f"account {self.name!r}: databases must be a list")
            self.databases = tuple(self.databases)
            if "*" in self.databases:
                self.databases = None

    def may_use(self, database: str) -> bool:
        return self.databases is None or database in self.databases

    @classmethod
    def from_dict(
        cls, name: str, data: Mapping[str, Any], *, base_dir: Path | None = None
    ) -> Account:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)} | {"password_env", "password_file"}
        unknown = set(data) - known
        if unknown:
            raise UsageError(f"account {name!r}: unknown keys {', '.join(sorted(unknown))}")
        sources = [k for k in ("password", "password_env", "password_file") if k in data]
        if len(sources) > 1:
            raise UsageError(
                f"account {name!r}: give only one of password/password_env/password_file"
            )
        if "password_env" in data:
            data["password"] = password_from_env(data.pop("password_env"))
        elif "password_file" in data:
            path = Path(data.pop("password_file"))
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            data["password"] = read_password_file(path)
        data.pop("name", None)
        return cls(name=name, **data)


@dataclass
class ServerConfig:
    """Everything :class:`~mysqlwire.serve.server.MySQL8Server` needs."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    version: str = DEFAULT_VERSION
    collation: int = DEFAULT_COLLATION
    greeting_plugin: str = CACHING_SHA2
    accounts: dict[str, Account] = field(default_factory=dict)
    databases: tuple[str, ...] = ()  # extra databases besides the system ones and the accounts'
    tls: bool = True
    tls_cert: str | None = None  # PEM certificate (chain); generated when None
    tls_key: str | None = None
    keylog_file: str | None = None  # NSS key log (SSLKEYLOGFILE format)
    rsa_private_key: str | None = None  # PEM file; generated when None
    rsa_key_bits: int = 2048
    max_connections: int = 151
    disabled_plugins: tuple[str, ...] = ()
    require_secure_transport: bool = False
    #: caching_sha2/sha256 full auth: accept ``pw\\0`` sent in clear over plain TCP
    #: (mysql-connector-python pure does this).  MySQL refuses it (1045): default False.
    allow_cleartext_over_plain: bool = False
    switch_nonce: str = "same"
    #: plugin used for users that do not exist (MySQL runs a decoy exchange):
    #: None = the greeting plugin, a plugin name, or "random" (chosen once per user name).
    unknown_user_plugin: str | None = None
    #: MySQL's disconnect_on_expired_password: False = sandbox even without the client cap.
    disconnect_on_expired_password: bool = True
    #: False: a loopback client is reported as 'localhost' (MySQL resolves 127.0.0.1).
    skip_name_resolve: bool = False
    connect_timeout: float = 10.0
    wait_timeout: float = 28800.0
    first_connection_id: int = 8
    #: greeting capability flags; None = what MySQL 8.0.36 sends (0xDFFFFFFF) without
    #: CLIENT_SSL when TLS is off, without CLIENT_ZSTD_COMPRESSION_ALGORITHM (not
    #: implemented) and without CLIENT_COMPRESS when ``compression`` is False
    capabilities: int | None = None
    #: offer CLIENT_COMPRESS (zlib compressed protocol after login), as MySQL 8 does
    compression: bool = True
    version_comment: str = "mysqlwire MySQL 8 connection-phase server"
    #: largest logical packet (continuation chunks joined) accepted before the login
    #: succeeded: a HandshakeResponse with its attributes, an RSA answer... (docs/limits.md)
    max_packet_before_auth: int = 64 * 1024
    #: largest logical packet after it (MySQL's max_allowed_packet; also caps what one
    #: compressed packet may inflate to)
    max_packet: int = 16 * 1024 * 1024
    #: bytes one connection may hold in its receive buffers at once (a packet being
    #: assembled plus inflated packets not read yet)
    max_connection_memory: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.greeting_plugin not in GREETING_PLUGINS:
            raise UsageError(
                f"greeting_plugin {self.greeting_plugin!r} is not one of {', '.join(GREETING_PLUGINS)}"
            )
        if self.switch_nonce not in SWITCH_NONCE_MODES:
            raise UsageError(f"switch_nonce must be one of {SWITCH_NONCE_MODES}")
        if self.unknown_user_plugin not in (None, "random", *ACCOUNT_PLUGINS):
            raise UsageError(f"unknown_user_plugin {self.unknown_user_plugin!r} is not a plugin")
        if not 0 < self.collation < 65536:
            raise UsageError("collation must be a collation id (1..65535)")
        if not 1024 <= self.max_packet_before_auth <= self.max_packet:
            raise UsageError("max_packet_before_auth must be between 1024 and max_packet")
        if not 1024 <= self.max_packet <= 1 << 30:
            raise UsageError("max_packet must be between 1024 and 1 GiB")
        if self.max_connection_memory < self.max_packet:
            raise UsageError("max_connection_memory must be at least max_packet")
        if self.max_connections < 1:
            raise UsageError("max_connections must be >= 1")
        accounts: dict[str, Account] = {}
        for name, acct in dict(self.accounts).items():
            if isinstance(acct, Mapping):
                acct = Account.from_dict(name, acct)
            if not isinstance(acct, Account):
                raise UsageError(f"account {name!r}: expected a dict or an Account")
            accounts[name] = acct
        self.accounts = accounts
        self.databases = tuple(self.databases)
        self.disabled_plugins = tuple(self.disabled_plugins)
        for plugin in self.disabled_plugins:
            if plugin not in ACCOUNT_PLUGINS:
                raise UsageError(f"disabled_plugins: unknown plugin {plugin!r}")

    # ------------------------------------------------------------------ helpers
    def all_databases(self) -> set[str]:
        """Databases that exist on this server (system ones, configured, accounts')."""
        names = set(SYSTEM_DATABASES) | set(self.databases)
        for acct in self.accounts.values():
            if acct.databases:
                names.update(acct.databases)
        return names

    def add_account(
        self, name: str, plugin: str = CACHING_SHA2, password: Any = b"", **kw: Any
    ) -> Account:
        acct = Account(name=name, plugin=plugin, password=password, **kw)
        self.accounts[name] = acct
        return acct

    def replace(self, **changes: Any) -> ServerConfig:
        """A copy with some fields changed (accounts are shared)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: Path | None = None) -> ServerConfig:
        """From the TOML layout (``{"server": {...}, "accounts": {...}}``) or a flat dict."""
        data = dict(data)
        server = dict(data.pop("server", {}))
        accounts_raw = data.pop("accounts", {})
        server.update(data)  # flat keys allowed too
        if "version" in server and "server_version" in server:
            raise UsageError("give only one of version/server_version")
        if "server_version" in server:
            server["version"] = server.pop("server_version")
        known = {f.name for f in dataclasses.fields(cls)} - {"accounts"}
        unknown = set(server) - known
        if unknown:
            raise UsageError(f"unknown server settings: {', '.join(sorted(unknown))}")
        if base_dir is not None:
            for key in ("tls_cert", "tls_key", "keylog_file", "rsa_private_key"):
                value = server.get(key)
                if value and not Path(value).is_absolute():
                    server[key] = str(base_dir / value)
        if not isinstance(accounts_raw, Mapping):
            raise UsageError("accounts must be a table: [accounts.NAME]")
        accounts = {
            name: acct
            if isinstance(acct, Account)
            else Account.from_dict(name, acct, base_dir=base_dir)
            for name, acct in accounts_raw.items()
        }
        return cls(accounts=accounts, **server)


def load_config(path: str | os.PathLike[str]) -> ServerConfig:
    """Read a TOML configuration file (relative paths are relative to the file)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise UsageError("reading TOML needs Python 3.11+ (or the tomli package)") from None
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read config {os.fspath(path)!r}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # the message of TOMLDecodeError names a position, never the document
        raise UsageError(f"config {os.fspath(path)!r} is not valid TOML: {exc}") from None
    return ServerConfig.from_dict(data, base_dir=path.resolve().parent)


def parse_user_spec(spec: str) -> tuple[str, str]:
    """``NAME:PLUGIN`` (PLUGIN may be a short alias) -> (name, plugin)."""
    aliases = {
        "sha2": CACHING_SHA2,
        "caching_sha2": CACHING_SHA2,
        "sha256": SHA256,
        "native": NATIVE,
        "clear": CLEAR,
        "cleartext": CLEAR,
    }
    name, sep, plugin = spec.partition(":")
    if not name:
        raise UsageError(f"--user {spec!r}: expected NAME:PLUGIN")
    plugin = plugin or CACHING_SHA2
    plugin = aliases.get(plugin, plugin)
    if plugin not in ACCOUNT_PLUGINS:
        raise UsageError(f"--user {spec!r}: unknown plugin {plugin!r}")
    return name, plugin


def iter_secrets(config: ServerConfig) -> Iterable[bytes]:
    """Every configured password (for tests that check logs never contain one)."""
    for acct in config.accounts.values():
        if acct.password:
            yield acct.password.reveal()
