"""An asyncio server for the MySQL 8 connection phase (``mysqlwire serve``).

It speaks to real clients like a MySQL 8.0 server does during login: HandshakeV10 greeting,
SSLRequest + TLS, caching_sha2_password (fast auth from an in-memory cache, full auth over
TLS or RSA), sha256_password, mysql_native_password, mysql_clear_password, auth switches,
the MySQL 8 error packets for the usual failures, COM_CHANGE_USER, and a minimal command
phase so that a client's ``connect()`` + ``SELECT 1`` work.

The listener lives here; each accepted connection is a :class:`~mysqlwire.serve.session.Session`
(connection I/O, connection phase on :mod:`mysqlwire.auth`'s server side, command phase).

Nothing here logs or stores a password or auth data bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mysqlwire.auth import caching_sha2
from mysqlwire.errors import UsageError

from . import keys
from .auth_flow import new_nonce
from .config import CACHING_SHA2, NATIVE, SHA256, ServerConfig
from .connection import is_loopback
from .events import ConnectionRecord, install_log_filter
from .session import Session
from .wire import F

log = logging.getLogger("mysqlwire.serve")
install_log_filter(log)  # every field a client chooses is escaped before it is logged

__all__ = [
    "MYSQL8_CAPABILITIES",
    "MySQL8Server",
    "ServerThread",
    "is_loopback",
    "new_nonce",
    "run_in_thread",
]

#: What MySQL 8.0.36 puts in its greeting: every bit but CLIENT_CAPABILITY_EXTENSION.
MYSQL8_CAPABILITIES = 0xDFFFFFFF
#: Not implemented here (no zstd in the standard library), so never offered.
_NOT_OFFERED = F.CLIENT_ZSTD_COMPRESSION_ALGORITHM


class MySQL8Server:
    """MySQL 8 connection-phase server.

    ``await start()`` binds and returns ``(host, port)`` (port 0 picks a free one);
    ``await stop()`` closes the listener and every connection.  ``connections`` is the
    server's own record of each connection (see :mod:`mysqlwire.serve.events`).
    """

    def __init__(self, config: ServerConfig | Mapping[str, Any] | None = None, **overrides: Any):
        if config is None:
            config = ServerConfig()
        elif isinstance(config, Mapping):
            config = ServerConfig.from_dict(config)
        if overrides:
            config = config.replace(**overrides)
        self.config = config
        self.connections: list[ConnectionRecord] = []
        self.address: tuple[str, int] | None = None
        self._cache: set[str] = {n for n, a in config.accounts.items() if a.cache_warm}
        self._decoy_plugins: dict[str, str] = {}
        self._rsa_private = keys.rsa_private_key(config.rsa_private_key, config.rsa_key_bits)
        self._rsa_public = caching_sha2.public_key_pem(self._rsa_private)
        self.cipher_len = keys.rsa_cipher_length(self._rsa_private)
        self.ssl_context: ssl.SSLContext | None = None
        if config.tls:
            self.ssl_context = keys.server_ssl_context(
                config.tls_cert, config.tls_key, config.keylog_file
            )
        self._sock: socket.socket | None = None
        self._accept_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._next_id = config.first_connection_id
        self.active = 0
        self.stopping = False
        self._changed: asyncio.Condition | None = None

    # ------------------------------------------------------------------ public API
    @property
    def capabilities(self) -> int:
        caps = self.config.capabilities
        if caps is None:
            caps = MYSQL8_CAPABILITIES & ~_NOT_OFFERED
            if not self.config.tls:
                caps &= ~F.CLIENT_SSL
            if not self.config.compression:
                caps &= ~F.CLIENT_COMPRESS
        return caps

    @property
    def public_key_pem(self) -> bytes:
        """The RSA public key sent to clients that ask for it (PEM)."""
        return self._rsa_public

    @property
    def rsa_private_key_pem(self) -> bytes:
        """The RSA private key (PEM): decrypts RSA full-auth answers in captures."""
        return self._rsa_private

    @property
    def cached_users(self) -> set[str]:
        """Accounts whose caching_sha2 fast-auth cache entry is filled."""
        return set(self._cache)

    def flush_cache(self, user: str | None = None) -> None:
        """Empty the caching_sha2 cache (like FLUSH PRIVILEGES), or one user's entry."""
        if user is None:
            self._cache.clear()
        else:
            self._cache.discard(user)

    def warm_cache(self, user: str) -> None:
        self._cache.add(user)

    async def start(self) -> tuple[str, int]:
        cfg = self.config
        if not is_loopback(cfg.host):
            log.warning(
                "listening on %s, which is NOT a loopback address: anyone who can reach it "
                "can try logins against these test accounts",
                cfg.host,
            )
        infos = socket.getaddrinfo(
            cfg.host, cfg.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, _, _, _, sockaddr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise UsageError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror}") from None
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self.address = (host, port)
        self._changed = asyncio.Condition()
        self._accept_task = asyncio.get_running_loop().create_task(self._accept_loop())
        log.debug(
            "mysqlwire serve: MySQL %s on %s:%s (greeting %s, TLS %s)",
            cfg.version,
            host,
            port,
            cfg.greeting_plugin,
            "on" if cfg.tls else "off",
        )
        return self.address

    async def stop(self) -> None:
        self.stopping = True
        if self._accept_task:
            self._accept_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accept_task
            self._accept_task = None
        if self._sock:
            self._sock.close()
            self._sock = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def serve_forever(self) -> None:
        if self._accept_task is None:
            await self.start()
        assert self._accept_task is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._accept_task

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate()`` holds (re-checked whenever a connection changes)."""
        assert self._changed is not None, "server not started"
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except asyncio.TimeoutError:
                return predicate()
        return True

    # ------------------------------------------------------------------ internals
    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        while True:
            try:
                conn, peer = await loop.sock_accept(self._sock)
            except OSError as exc:  # e.g. EMFILE: keep serving
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(Session(self, conn, peer).run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    def decoy_plugin(self, user: str) -> str:
        choice = self.config.unknown_user_plugin
        if choice is None:
            return self.config.greeting_plugin
        if choice == "random":
            if user not in self._decoy_plugins:
                self._decoy_plugins[user] = secrets.choice((CACHING_SHA2, SHA256, NATIVE))
            return self._decoy_plugins[user]
        return choice


# ---------------------------------------------------------------------- thread helper
class ServerThread:
    """A :class:`MySQL8Server` running its own event loop in a background thread."""

    def __init__(self, config: ServerConfig | Mapping[str, Any] | None = None, **overrides: Any):
        self.server = MySQL8Server(config, **overrides)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self.server.address is not None
        return self.server.address

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def connections(self) -> list[ConnectionRecord]:
        return self.server.connections

    def start(self) -> ServerThread:
        self._thread = threading.Thread(target=self._main, name="mysqlwire-serve", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.server.stop()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the server's loop and return its result."""
        assert self.loop is not None

        async def _do() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(_do(), self.loop).result(10)

    def flush_cache(self, user: str | None = None) -> None:
        self.call(self.server.flush_cache, user)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        assert self.loop is not None
        fut = asyncio.run_coroutine_threadsafe(self.server.wait_for(predicate, timeout), self.loop)
        return fut.result(timeout + 5)

    def wait_closed(self, count: int | None = None, timeout: float = 5.0) -> list[ConnectionRecord]:
        """Wait until ``count`` connections (default: all so far) are closed; return them."""
        n = len(self.server.connections) if count is None else count

        def done() -> bool:
            conns = self.server.connections
            return len(conns) >= n and all(c.closed for c in conns[:n])

        if not self.wait_for(done, timeout):
            raise TimeoutError(f"connections not closed after {timeout}s")
        return self.server.connections[:n]

    def last(self, timeout: float = 5.0) -> ConnectionRecord:
        """The most recent connection, once closed."""
        return self.wait_closed(timeout=timeout)[-1]

    def stop(self) -> None:
        if (
            self.loop is not None
            and self._stop is not None
            and self._thread
            and self._thread.is_alive()
        ):
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)


@contextlib.contextmanager
def run_in_thread(
    config: ServerConfig | Mapping[str, Any] | None = None, **overrides: Any
) -> Iterator[ServerThread]:
    """``with run_in_thread(cfg, port=0) as srv: pymysql.connect(port=srv.port, ...)``."""
    st = ServerThread(config, **overrides)
    st.start()
    try:
        yield st
    finally:
        st.stop()
