"""An asyncio server for the MySQL 8 connection phase (``mysqlwire serve``).

It speaks to real clients like a MySQL 8.0 server does during login: HandshakeV10 greeting,
SSLRequest + TLS, caching_sha2_password (fast auth from an in-memory cache, full auth over
TLS or RSA), sha256_password, mysql_native_password, mysql_clear_password, auth switches,
the MySQL 8 error packets for the usual failures, COM_CHANGE_USER, and a minimal command
phase so that a client's ``connect()`` + ``SELECT 1`` work.

Why the first packet is read straight from the socket: a client sends its TLS ClientHello
right after the SSLRequest without waiting, so a buffered reader may already hold TLS
bytes when the SSLRequest is parsed, and ``start_tls`` on that transport would lose them.
Reading the greeting answer with exact-size ``sock_recv`` calls leaves the ClientHello in
the kernel; the socket is then wrapped by ``loop.connect_accepted_socket(ssl=...)``
(server-side TLS) or plainly.

Nothing here logs or stores a password or auth data bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mysqlwire.auth import caching_sha2, native, sha256
from mysqlwire.auth.base import AuthDataError, consteq
from mysqlwire.errors import ProtocolError, UsageError
from mysqlwire.protocol import framing

from . import keys, messages, queries, wire
from .config import CACHING_SHA2, CLEAR, NATIVE, SHA256, Account, ServerConfig
from .events import AuthAttempt, ConnectionRecord
from .messages import ServerError
from .wire import F

log = logging.getLogger("mysqlwire.serve")

SERVER_STATUS_AUTOCOMMIT = 0x0002

#: What MySQL 8.0.36 puts in its greeting: every bit but CLIENT_CAPABILITY_EXTENSION.
MYSQL8_CAPABILITIES = 0xDFFFFFFF
#: Not implemented here (no zstd in the standard library), so never offered.
_NOT_OFFERED = F.CLIENT_ZSTD_COMPRESSION_ALGORITHM

#: MySQL 8 nonce bytes: 0x01..0x7F without '$' (generate_user_salt).
_NONCE_ALPHABET = bytes(b for b in range(1, 0x80) if b != 0x24)

COM_QUIT = 0x01
COM_INIT_DB = 0x02
COM_QUERY = 0x03
COM_FIELD_LIST = 0x04
COM_STATISTICS = 0x09
COM_PING = 0x0E
COM_CHANGE_USER = 0x11
COM_SET_OPTION = 0x1B
COM_RESET_CONNECTION = 0x1F

SESSION_TRACK_SCHEMA = 0x01


def new_nonce() -> bytes:
    """A 20-byte MySQL 8 style nonce."""
    return bytes(secrets.choice(_NONCE_ALPHABET) for _ in range(20))


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Closed(Exception):
    """The client went away (EOF / reset)."""


class _Refuse(Exception):
    """Send this error and close."""

    def __init__(self, error: ServerError):
        super().__init__(str(error))
        self.error = error


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
        self._cipher_len = keys.rsa_cipher_length(self._rsa_private)
        self._ssl_ctx: ssl.SSLContext | None = None
        if config.tls:
            self._ssl_ctx = keys.server_ssl_context(
                config.tls_cert, config.tls_key, config.keylog_file
            )
        self._sock: socket.socket | None = None
        self._accept_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._next_id = config.first_connection_id
        self._active = 0
        self._stopping = False
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
        self._stopping = True
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
            task = loop.create_task(_Connection(self, conn, peer).run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    def _decoy_plugin(self, user: str) -> str:
        choice = self.config.unknown_user_plugin
        if choice is None:
            return self.config.greeting_plugin
        if choice == "random":
            if user not in self._decoy_plugins:
                self._decoy_plugins[user] = secrets.choice((CACHING_SHA2, SHA256, NATIVE))
            return self._decoy_plugins[user]
        return choice


class _Connection:
    def __init__(self, server: MySQL8Server, sock: socket.socket, peer: Any):
        self.server = server
        self.cfg = server.config
        self.sock: socket.socket | None = sock
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.seq = 0
        self.compressed = False
        self.cseq = 0  # compressed-protocol sequence id
        self.caps = 0  # client capabilities
        self.tls = False
        self.nonce = new_nonce()
        self.account: Account | None = None
        self.user = ""
        self.database: str | None = None
        self.sandbox = False
        peer_host, peer_port = peer[0], peer[1]
        if not self.cfg.skip_name_resolve and is_loopback(peer_host):
            host = "localhost"
        else:
            host = peer_host
        self.id = server._next_id
        server._next_id += 1
        self.rec = ConnectionRecord(id=self.id, peer=(peer_host, peer_port), host=host)
        server.connections.append(self.rec)

    # ------------------------------------------------------------------ packet I/O
    async def _recv_exact(self, n: int) -> bytes:
        if self.reader is not None:
            try:
                return await self.reader.readexactly(n)
            except asyncio.IncompleteReadError:
                raise _Closed() from None
        loop = asyncio.get_running_loop()
        buf = bytearray()
        while len(buf) < n:
            chunk = await loop.sock_recv(self.sock, n - len(buf))
            if not chunk:
                raise _Closed()
            buf += chunk
        return bytes(buf)

    async def read_packet(self, timeout: float | None = None) -> bytes:
        """One logical packet (continuation chunks joined); checks the sequence id."""
        timeout = self.cfg.connect_timeout if timeout is None else timeout
        if self.compressed:
            return await self._read_compressed(timeout)
        payload = bytearray()
        while True:
            header = await asyncio.wait_for(self._recv_exact(4), timeout)
            length = int.from_bytes(header[:3], "little")
            self._check_seq(header[3])
            payload += await asyncio.wait_for(self._recv_exact(length), timeout) if length else b""
            if length < wire.MAX_CHUNK:
                return bytes(payload)

    def _check_seq(self, seq: int, chunks: int = 1) -> None:
        if seq != self.seq:
            self.rec.event("out-of-order", expected=self.seq, got=seq)
            raise _Refuse(messages.packets_out_of_order())
        self.seq = (self.seq + chunks) & 0xFF

    async def _read_compressed(self, timeout: float) -> bytes:
        """Compressed protocol: 7-byte headers around zlib'ed (or stored) inner packets."""
        while not self._inner_packets:
            header = await asyncio.wait_for(self._recv_exact(7), timeout)
            clen = int.from_bytes(header[:3], "little")
            if header[3] != self.cseq:
                self.rec.event("out-of-order", expected=self.cseq, got=header[3], compressed=True)
                raise _Refuse(messages.packets_out_of_order())
            self.cseq = (header[3] + 1) & 0xFF
            body = await asyncio.wait_for(self._recv_exact(clen), timeout) if clen else b""
            try:
                inner = self._creader.feed(header + body)
                self._inner_packets.extend(self._inner.feed(inner))
            except ProtocolError as exc:
                self.rec.event("bad-compressed-packet", reason=exc.reason)
                raise _Refuse(messages.bad_handshake()) from None
        packet = self._inner_packets.pop(0)
        self._check_seq(packet.seq, packet.chunks)
        return packet.payload

    def start_compression(self) -> None:
        """After the final OK of the connection phase (reference §1)."""
        self.compressed = True
        self._creader = framing.CompressedReader()
        self._inner = framing.PacketReader()
        self._inner_packets: list[framing.Packet] = []
        self.rec.event("compression", algorithm="zlib")

    async def write(self, *payloads: bytes) -> None:
        data = bytearray()
        for payload in payloads:
            framed = wire.frame(payload, self.seq)
            self.seq = (self.seq + 1 + len(payload) // wire.MAX_CHUNK) & 0xFF
            data += framed
        if self.compressed:
            pieces = max(1, -(-len(data) // wire.MAX_CHUNK))
            data = bytearray(framing.compress_frame(bytes(data), self.cseq))
            self.cseq = (self.cseq + pieces) & 0xFF
        if self.writer is not None:
            self.writer.write(bytes(data))
            await self.writer.drain()
        else:
            await asyncio.get_running_loop().sock_sendall(self.sock, bytes(data))

    def _err_payload(self, error: ServerError, *, with_state: bool = True) -> bytes:
        state = error.sqlstate if with_state and self.caps & F.CLIENT_PROTOCOL_41 else None
        return wire.err(error.code, state, error.message, self.caps)

    async def send_error(self, error: ServerError, *, with_state: bool = True) -> None:
        self.rec.event("err", code=error.code, sqlstate=error.sqlstate)
        await self.write(self._err_payload(error, with_state=with_state))

    async def _attach_streams(self, ssl_ctx: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**24)
        protocol = asyncio.StreamReaderProtocol(reader)
        sock, self.sock = self.sock, None
        kwargs: dict[str, Any] = {}
        if ssl_ctx is not None:
            kwargs = {"ssl": ssl_ctx, "ssl_handshake_timeout": self.cfg.connect_timeout}
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock, **kwargs)
        self.reader = reader
        self.writer = asyncio.StreamWriter(transport, protocol, reader, loop)

    async def close(self, *, linger: float = 1.0) -> None:
        """Close gracefully: FIN after our last packet, then drain what the client still
        sends (closing with unread input makes the kernel send a RST, and a RST can
        destroy the final ERR before the client reads it)."""
        if self.server._stopping:
            linger = 0
        loop = asyncio.get_running_loop()
        if self.writer is not None:
            with contextlib.suppress(Exception):
                if linger and self.writer.can_write_eof():
                    self.writer.write_eof()
                    assert self.reader is not None
                    deadline = loop.time() + linger
                    while not self.reader.at_eof() and loop.time() < deadline:
                        await asyncio.wait_for(self.reader.read(65536), deadline - loop.time())
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 2)
        elif self.sock is not None:
            sock, self.sock = self.sock, None
            with contextlib.suppress(Exception):
                if linger:
                    sock.shutdown(socket.SHUT_WR)
                    deadline = loop.time() + linger
                    while loop.time() < deadline:
                        chunk = await asyncio.wait_for(
                            loop.sock_recv(sock, 65536), deadline - loop.time()
                        )
                        if not chunk:
                            break
            sock.close()

    # ------------------------------------------------------------------ main
    async def run(self) -> None:
        server = self.server
        server._active += 1
        try:
            await server._notify()
            await self._run()
        except asyncio.CancelledError:
            self.rec.event("server-stop")
        except _Closed:
            self.rec.event("client-closed")
            self._abort_pending()
        except (ConnectionError, OSError) as exc:
            self.rec.event("connection-error", error=type(exc).__name__)
            self._abort_pending()
        except asyncio.TimeoutError:
            self.rec.event("timeout")
            self._abort_pending()
        except _Refuse as refuse:
            with contextlib.suppress(Exception):
                await self.send_error(refuse.error)
            self._abort_pending(refuse.error)
        except Exception as exc:  # a server bug: record it, never crash the listener
            log.exception("connection %s: internal error", self.id)
            self.rec.event("internal-error", error=type(exc).__name__)
            self._abort_pending()
        finally:
            server._active -= 1
            with contextlib.suppress(Exception):
                await self.close()
            self.rec.ended = time.time()
            self.rec.event("closed")
            with contextlib.suppress(Exception):
                await server._notify()

    def _abort_pending(self, error: ServerError | None = None) -> None:
        for attempt in self.rec.attempts:
            if attempt.outcome is None:
                attempt.outcome = "error" if error else "aborted"
                attempt.error = error
                self._log_attempt(attempt)

    async def _run(self) -> None:
        server, cfg = self.server, self.cfg
        # MySQL admits max_connections + 1 (the extra one for CONNECTION_ADMIN) to the
        # handshake; past that the ERR replaces the greeting (no SQLSTATE).
        if server._active > cfg.max_connections + 1:
            err = messages.too_many_connections()
            self.rec.refused = err
            self.rec.event("refused", code=err.code)
            log.info("conn=%s peer=%s:%s refused: ERR %s", self.id, *self.rec.peer, err.code)
            await self.send_error(err, with_state=False)
            return
        caps = server.capabilities
        self.rec.greeting_plugin = cfg.greeting_plugin
        self.rec.server_capabilities = caps
        greeting = wire.handshake_v10(
            server_version=cfg.version,
            connection_id=self.id,
            nonce=self.nonce,
            capabilities=caps,
            collation=cfg.collation,
            status=SERVER_STATUS_AUTOCOMMIT,
            plugin=cfg.greeting_plugin,
        )
        self.rec.event("greeting", plugin=cfg.greeting_plugin, capabilities=f"0x{caps:08x}")
        await self.write(greeting)
        first = await self.read_packet()
        if len(first) >= 4:
            self.caps = int.from_bytes(first[:4], "little")
        if wire.is_ssl_request(first):
            self.rec.event("ssl_request", capabilities=f"0x{self.caps:08x}")
            if server._ssl_ctx is None:
                raise _Refuse(messages.bad_handshake())
            try:
                await self._attach_streams(server._ssl_ctx)
            except (ssl.SSLError, ConnectionError, OSError, asyncio.TimeoutError) as exc:
                self.rec.event("tls-failed", error=type(exc).__name__)
                self._abort_pending()
                return
            self.tls = True
            sslobj = self.writer.get_extra_info("ssl_object") if self.writer else None
            if sslobj is not None:
                self.rec.tls_version = sslobj.version()
                self.rec.tls_cipher = (sslobj.cipher() or (None,))[0]
            self.rec.tls = True
            self.rec.event("tls", version=self.rec.tls_version, cipher=self.rec.tls_cipher)
            first = await self.read_packet()
        else:
            await self._attach_streams(None)
        try:
            resp = wire.handshake_response41(first)
        except ProtocolError as exc:
            self.rec.event("bad-handshake", reason=exc.reason)
            raise _Refuse(messages.bad_handshake()) from None
        self.caps = resp.capabilities
        if not self.caps & F.CLIENT_PROTOCOL_41:
            # HandshakeResponse320: MySQL 8 has no pre-4.1 authentication left
            self.rec.event("bad-handshake", reason="client without CLIENT_PROTOCOL_41")
            raise _Refuse(messages.bad_handshake())
        self.rec.client_capabilities = resp.capabilities
        self.rec.attributes = dict(resp.attributes)
        user = resp.user.decode("utf-8", "replace")
        database = resp.database.decode("utf-8", "replace") if resp.database else None
        client_plugin = resp.plugin.decode("ascii", "replace") if resp.plugin is not None else None
        self.rec.event(
            "response",
            user=user,
            database=database,
            plugin=client_plugin,
            auth_len=len(resp.auth_response),
            capabilities=f"0x{resp.capabilities:08x}",
        )
        attempt = AuthAttempt("login", user=user, database=database, client_plugin=client_plugin)
        self.rec.attempts.append(attempt)
        if cfg.require_secure_transport and not self.tls:
            await self._fail(attempt, messages.secure_transport_required())
            return
        if not await self._authenticate(attempt, resp.auth_response, client_plugin):
            return
        if self.caps & server.capabilities & F.CLIENT_COMPRESS:
            self.start_compression()
        await self._command_phase()

    # ------------------------------------------------------------------ authentication
    async def _fail(self, attempt: AuthAttempt, error: ServerError) -> bool:
        attempt.outcome = "error"
        attempt.error = error
        self._log_attempt(attempt)
        await self.send_error(error)
        await self.server._notify()
        return False

    def _log_attempt(self, attempt: AuthAttempt) -> None:
        log.info(
            "conn=%s peer=%s:%s tls=%s %s %s",
            self.id,
            self.rec.peer[0],
            self.rec.peer[1],
            "yes" if self.tls else "no",
            attempt.kind,
            attempt.summary(),
        )

    async def _authenticate(
        self, attempt: AuthAttempt, auth_data: bytes, client_plugin: str | None
    ) -> bool:
        """Run the exchange for ``attempt``; send OK (True) or ERR (False)."""
        server, cfg = self.server, self.cfg
        acct = cfg.accounts.get(attempt.user)
        attempt.account_exists = acct is not None
        plugin = acct.plugin if acct else server._decoy_plugin(attempt.user)
        attempt.account_plugin = plugin
        if acct and plugin in cfg.disabled_plugins:
            return await self._fail(attempt, messages.plugin_not_loaded(plugin))

        nonce = self.nonce
        if not self.caps & F.CLIENT_PLUGIN_AUTH:
            # such a client can only speak mysql_native_password and cannot be switched
            if plugin != NATIVE:
                return await self._fail(attempt, messages.not_supported_auth_mode())
            data = auth_data
        elif client_plugin != plugin:
            if cfg.switch_nonce == "new":
                nonce = new_nonce()
            switch_data = b"" if plugin == CLEAR else nonce + b"\0"
            attempt.switches.append(plugin)
            self.rec.event(
                "auth_switch", plugin=plugin, nonce="new" if nonce != self.nonce else "greeting"
            )
            await self.write(wire.auth_switch_request(plugin, switch_data))
            data = await self.read_packet()
            self.rec.event("client_data", length=len(data))
        else:
            data = auth_data
        attempt.plugins.append(plugin)

        pw = acct.password.reveal() if acct else None
        if plugin == CACHING_SHA2:
            ok = await self._caching_sha2(attempt, data, nonce, pw)
        elif plugin == SHA256:
            ok = await self._sha256(attempt, data, nonce, pw)
        elif plugin == NATIVE:
            ok = self._native(attempt, data, nonce, pw)
        else:
            ok = self._clear(attempt, data, pw)

        if not ok or acct is None:
            return await self._fail(
                attempt,
                messages.access_denied(attempt.user, self.rec.host, bool(attempt.password_used)),
            )

        # after a correct proof: the account's own conditions
        if acct.locked:
            return await self._fail(attempt, messages.account_locked(attempt.user, self.rec.host))
        if acct.require_ssl and not self.tls:
            self.rec.event("require-ssl", tls=False)
            return await self._fail(
                attempt,
                messages.access_denied(attempt.user, self.rec.host, bool(attempt.password_used)),
            )
        sandbox = False
        if acct.expired:
            if (
                self.caps & F.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
                or not cfg.disconnect_on_expired_password
            ):
                sandbox = True
            else:
                return await self._fail(attempt, messages.password_expired_login())
        if server._active > cfg.max_connections and not acct.connection_admin:
            return await self._fail(attempt, messages.too_many_connections())
        if attempt.database:
            err = self._database_error(acct, attempt.user, attempt.database)
            if err:
                return await self._fail(attempt, err)

        # success
        self.account = acct
        self.user = attempt.user
        self.database = attempt.database or None
        self.sandbox = sandbox
        attempt.sandbox = sandbox
        attempt.outcome = "ok"
        self._log_attempt(attempt)
        state = None
        if self.database and self.caps & F.CLIENT_SESSION_TRACK:
            state = self._schema_state(self.database)
        self.rec.event("ok", sandbox=sandbox)
        await self.write(self._ok(session_state=state))
        await server._notify()
        return True

    def _database_error(self, acct: Account, user: str, db: str) -> ServerError | None:
        if db not in self.cfg.all_databases():
            return messages.unknown_database(db)
        if not acct.may_use(db):
            return messages.db_access_denied(user, self.rec.host, db)
        return None

    def _schema_state(self, db: str) -> bytes:
        data = wire.lenenc_str(db.encode())
        return bytes([SESSION_TRACK_SCHEMA]) + wire.lenenc_str(data)

    def _ok(self, **kw: Any) -> bytes:
        status = SERVER_STATUS_AUTOCOMMIT
        return wire.ok(self.caps, status=status, **kw)

    def _empty(self, data: bytes) -> bool:
        return data in (b"", b"\0")

    async def _read_rsa_or_clear(
        self, attempt: AuthAttempt, data: bytes, nonce: bytes, key_request: bytes, prefix: str
    ) -> bytes | None:
        """Full authentication without TLS: the password from RSA (or clear text if allowed)."""
        if data == key_request:
            attempt.rsa_key_requested = True
            self.rec.event("public_key", plugin=attempt.plugins[-1])
            await self.write(wire.auth_more_data(self.server.public_key_pem))
            data = await self.read_packet()
            self.rec.event("client_data", length=len(data))
        if len(data) == self.server._cipher_len:
            attempt.path = f"{prefix}rsa"
            try:
                return caching_sha2.rsa_decrypt(data, nonce, self.server.rsa_private_key_pem)
            except AuthDataError:
                self.rec.event("rsa-decrypt-failed")
                return None
        if data.endswith(b"\0"):
            attempt.path = f"{prefix}cleartext-plain"
            self.rec.event("cleartext-over-plain", accepted=self.cfg.allow_cleartext_over_plain)
            return data[:-1] if self.cfg.allow_cleartext_over_plain else None
        self.rec.event("unexpected-auth-data", length=len(data))
        return None

    async def _caching_sha2(
        self, attempt: AuthAttempt, data: bytes, nonce: bytes, pw: bytes | None
    ) -> bool:
        if self._empty(data):
            attempt.password_used = False
            attempt.path = "empty"
            return pw is not None and not pw
        attempt.password_used = True
        cached = pw is not None and attempt.user in self.server._cache
        if cached and len(data) == 32 and consteq(caching_sha2.scramble(pw, nonce), data):
            attempt.cache = "hit"
            attempt.path = "fast"
            self.rec.event("more_data", status="fast_auth_success")
            await self.write(wire.auth_more_data(bytes([caching_sha2.FAST_AUTH_SUCCESS])))
            return True
        attempt.cache = "mismatch" if cached else "miss"
        self.rec.event("more_data", status="perform_full_authentication", cache=attempt.cache)
        await self.write(wire.auth_more_data(bytes([caching_sha2.PERFORM_FULL_AUTH])))
        data = await self.read_packet()
        self.rec.event("client_data", length=len(data))
        if self.tls:
            attempt.path = "full-tls"
            got: bytes | None = data[:-1] if data.endswith(b"\0") else data
        else:
            got = await self._read_rsa_or_clear(
                attempt, data, nonce, bytes([caching_sha2.REQUEST_PUBLIC_KEY]), "full-"
            )
        ok = got is not None and pw is not None and consteq(got, pw)
        if ok:
            self.server._cache.add(attempt.user)
        return ok

    async def _sha256(
        self, attempt: AuthAttempt, data: bytes, nonce: bytes, pw: bytes | None
    ) -> bool:
        if self._empty(data):
            attempt.password_used = False
            attempt.path = "empty"
            return pw is not None and not pw
        attempt.password_used = True
        if self.tls:
            attempt.path = "tls"
            got: bytes | None = data[:-1] if data.endswith(b"\0") else data
        else:
            got = await self._read_rsa_or_clear(
                attempt, data, nonce, bytes([sha256.REQUEST_PUBLIC_KEY]), ""
            )
        return got is not None and pw is not None and consteq(got, pw)

    def _native(self, attempt: AuthAttempt, data: bytes, nonce: bytes, pw: bytes | None) -> bool:
        attempt.path = "scramble"
        if not data:
            attempt.password_used = False
            return pw is not None and not pw
        attempt.password_used = True
        return pw is not None and len(data) == 20 and consteq(native.scramble(pw, nonce), data)

    def _clear(self, attempt: AuthAttempt, data: bytes, pw: bytes | None) -> bool:
        attempt.path = "cleartext"
        if not self.tls:
            self.rec.event("cleartext-over-plain", accepted=True)
        got = data[:-1] if data.endswith(b"\0") else data
        attempt.password_used = bool(got)
        return pw is not None and consteq(got, pw)

    # ------------------------------------------------------------------ command phase
    def _session(self) -> queries.SessionView:
        acct = self.account
        dbs = sorted(
            d
            for d in self.cfg.all_databases()
            if acct is None or acct.may_use(d) or d == "information_schema"
        )
        return queries.SessionView(
            user=self.user,
            host=self.rec.host,
            database=self.database,
            connection_id=self.id,
            version=self.cfg.version,
            version_comment=self.cfg.version_comment,
            collation=self.cfg.collation,
            databases=dbs,
        )

    async def _command_phase(self) -> None:
        while True:
            self.seq = 0
            self.cseq = 0
            payload = await self.read_packet(timeout=self.cfg.wait_timeout)
            if not payload:
                raise _Refuse(messages.unknown_command())
            cmd = payload[0]
            if cmd == COM_QUIT:
                self._command("COM_QUIT")
                return
            if cmd == COM_PING:
                self._command("COM_PING")
                await self.write(self._ok())
            elif cmd == COM_QUERY:
                await self._query(queries.parse_query_payload(payload, self.caps))
            elif cmd == COM_INIT_DB:
                db = payload[1:].decode("utf-8", "replace")
                self._command(f"COM_INIT_DB {db}")
                await self._use(db)
            elif cmd == COM_CHANGE_USER:
                if not await self._change_user(payload):
                    return
            elif cmd == COM_RESET_CONNECTION:
                self._command("COM_RESET_CONNECTION")
                await self.write(self._ok())
            elif cmd == COM_STATISTICS:
                self._command("COM_STATISTICS")
                uptime = int(time.time() - self.rec.started)
                await self.write(
                    f"Uptime: {uptime}  Threads: {self.server._active}  Questions: {len(self.rec.commands)}".encode()
                )
            elif cmd == COM_SET_OPTION:
                self._command("COM_SET_OPTION")
                await self.write(self._eof_or_ok())
            else:
                self._command(f"COM_0x{cmd:02x}")
                await self.send_error(messages.unknown_command())

    def _eof_or_ok(self) -> bytes:
        if self.caps & F.CLIENT_DEPRECATE_EOF:
            return wire.ok(self.caps, status=SERVER_STATUS_AUTOCOMMIT, header=0xFE)
        return wire.eof(self.caps, status=SERVER_STATUS_AUTOCOMMIT)

    def _command(self, text: str) -> None:
        self.rec.commands.append(text)
        self.rec.event("command", text=text)

    async def _use(self, db: str) -> None:
        err = (
            self._database_error(self.account, self.user, db)
            if self.account
            else messages.unknown_database(db)
        )
        if err:
            await self.send_error(err)
            return
        self.database = db
        state = self._schema_state(db) if self.caps & F.CLIENT_SESSION_TRACK else None
        await self.write(self._ok(session_state=state))

    async def _query(self, text: str) -> None:
        shown = queries.redact(text)
        self._command(f"COM_QUERY {shown}")
        stmt = queries._COMMENT.sub(" ", text).strip().rstrip(";").strip()
        low = stmt.lower()
        if self.sandbox:
            if low.startswith("alter user") or low.startswith("set password"):
                self.sandbox = False
                self.rec.event("password-reset")
                await self.write(self._ok())
                return
            if not low.startswith("set "):
                await self.send_error(messages.must_change_password())
                return
            await self.write(self._ok())
            return
        if low.startswith("use "):
            await self._use(queries._strip_quotes(stmt[4:].strip()))
            return
        view = self._session()
        if low in ("show databases", "show schemas"):
            cols, rows = queries.show_databases(view)
        else:
            result = queries.select_result(stmt, view)
            if result is None:
                await self.write(self._ok())
                return
            cols, rows = result
        await self.write(*queries.result_set(cols, rows, self.caps, SERVER_STATUS_AUTOCOMMIT))

    async def _change_user(self, payload: bytes) -> bool:
        try:
            cu = wire.com_change_user(payload, self.caps)
        except ProtocolError as exc:
            self.rec.event("bad-change-user", reason=exc.reason)
            await self.send_error(messages.bad_handshake())
            return False
        user = cu.user.decode("utf-8", "replace")
        database = (cu.database or b"").decode("utf-8", "replace") or None
        client_plugin = cu.plugin.decode("ascii", "replace") if cu.plugin is not None else NATIVE
        self._command(f"COM_CHANGE_USER {user}")
        self.rec.event(
            "change_user",
            user=user,
            database=database,
            plugin=client_plugin,
            auth_len=len(cu.auth_response),
        )
        attempt = AuthAttempt(
            "change_user", user=user, database=database, client_plugin=client_plugin
        )
        self.rec.attempts.append(attempt)
        # the proof is computed over the connection's ORIGINAL greeting nonce
        return await self._authenticate(attempt, cu.auth_response, client_plugin)


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
