"""The connection phase of ``mysqlwire serve``: greeting, SSLRequest/TLS, the client's
HandshakeResponse, then the account's plugin run on :mod:`mysqlwire.auth`'s server side
(:meth:`~mysqlwire.auth.base.AuthPlugin.server_exchange`: the same plugin modules the
follower and replay ask what each byte means), and the account's own conditions.

Nothing here logs or stores a password or auth data bytes.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from typing import Any

from mysqlwire.auth import get_plugin
from mysqlwire.auth.base import ServerAuth
from mysqlwire.errors import ProtocolError

from . import messages, wire
from .config import NATIVE, Account
from .connection import ConnectionIO, Refuse
from .events import AuthAttempt
from .messages import ServerError
from .wire import F

log = logging.getLogger("mysqlwire.serve")

SERVER_STATUS_AUTOCOMMIT = 0x0002
SESSION_TRACK_SCHEMA = 0x01

#: MySQL 8 nonce bytes: 0x01..0x7F without '$' (generate_user_salt).
_NONCE_ALPHABET = bytes(b for b in range(1, 0x80) if b != 0x24)


def new_nonce() -> bytes:
    """A 20-byte MySQL 8 style nonce."""
    return bytes(secrets.choice(_NONCE_ALPHABET) for _ in range(20))


class AuthFlow(ConnectionIO):
    """Login and re-authentication (COM_CHANGE_USER) of one connection."""

    nonce: bytes
    account: Account | None
    user: str
    database: str | None
    sandbox: bool

    async def _run(self) -> None:
        server, cfg = self.server, self.cfg
        # MySQL admits max_connections + 1 (the extra one for CONNECTION_ADMIN) to the
        # handshake; past that the ERR replaces the greeting (no SQLSTATE).
        if server.active > cfg.max_connections + 1:
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
            if server.ssl_context is None:
                raise Refuse(messages.bad_handshake())
            try:
                await self._attach_streams(server.ssl_context)
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
            raise Refuse(messages.bad_handshake()) from None
        self.caps = resp.capabilities
        if not self.caps & F.CLIENT_PROTOCOL_41:
            # HandshakeResponse320: MySQL 8 has no pre-4.1 authentication left
            self.rec.event("bad-handshake", reason="client without CLIENT_PROTOCOL_41")
            raise Refuse(messages.bad_handshake())
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
        await self.server.notify()
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
        plugin = acct.plugin if acct else server.decoy_plugin(attempt.user)
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
            impl = get_plugin(plugin)
            switch_data = impl.switch_data(nonce) if impl is not None else nonce + b"\0"
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

        ok = await self._run_plugin(attempt, plugin, data, nonce, acct)

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
        if server.active > cfg.max_connections and not acct.connection_admin:
            return await self._fail(attempt, messages.too_many_connections())
        if attempt.database:
            err = self._database_error(acct, attempt.user, attempt.database)
            if err:
                return await self._fail(attempt, err)

        # success
        self.authenticated = True
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
        await server.notify()
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

    async def _run_plugin(
        self, attempt: AuthAttempt, plugin: str, data: bytes, nonce: bytes, acct: Account | None
    ) -> bool:
        """Drive the plugin's server side (:mod:`mysqlwire.auth`): send what it sends, read
        what it waits for, and copy what it found into the attempt."""
        server = self.server
        impl = get_plugin(plugin)
        if impl is None:  # pragma: no cover - config accepts only plugins with a server side
            raise Refuse(messages.plugin_not_loaded(plugin))
        ctx = ServerAuth(
            plugin=plugin,
            nonce=nonce,
            tls=self.tls,
            password=acct.password.reveal() if acct else None,
            cached=acct is not None and attempt.user in server.cached_users,
            public_key_pem=server.public_key_pem,
            private_key_pem=server.rsa_private_key_pem,
            cipher_len=server.cipher_len,
            allow_cleartext_over_plain=self.cfg.allow_cleartext_over_plain,
            event=self.rec.event,
        )
        run = impl.server_exchange(data, ctx)
        answer: bytes | None = None
        try:
            while True:
                send = run.send(answer)
                await self.write(send.payload)
                answer = None
                if send.expects_answer:
                    answer = await self.read_packet()
                    self.rec.event("client_data", length=len(answer))
        except StopIteration as done:
            ok = bool(done.value)
        finally:
            attempt.path = ctx.path
            attempt.password_used = ctx.password_used
            attempt.cache = ctx.cache
            attempt.rsa_key_requested = attempt.rsa_key_requested or ctx.rsa_key_requested
        if ok and ctx.fill_cache:
            server.warm_cache(attempt.user)
        return ok
