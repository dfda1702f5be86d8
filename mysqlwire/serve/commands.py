"""The command phase of ``mysqlwire serve``: just enough for a client's ``connect()`` and
``SELECT 1`` (queries answered from :mod:`mysqlwire.serve.queries`), COM_CHANGE_USER and
the sandbox mode of an expired password."""

from __future__ import annotations

import time

from mysqlwire.errors import ProtocolError

from . import messages, queries, wire
from .auth_flow import SERVER_STATUS_AUTOCOMMIT, AuthFlow
from .config import NATIVE
from .connection import Refuse
from .events import AuthAttempt
from .wire import F

COM_QUIT = 0x01
COM_INIT_DB = 0x02
COM_QUERY = 0x03
COM_FIELD_LIST = 0x04
COM_STATISTICS = 0x09
COM_PING = 0x0E
COM_CHANGE_USER = 0x11
COM_SET_OPTION = 0x1B
COM_RESET_CONNECTION = 0x1F


class CommandPhase(AuthFlow):
    """After a successful login."""

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
                raise Refuse(messages.unknown_command())
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
                    f"Uptime: {uptime}  Threads: {self.server.active}  Questions: {len(self.rec.commands)}".encode()
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
        stmt = queries.COMMENT.sub(" ", text).strip().rstrip(";").strip()
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
            await self._use(queries.strip_quotes(stmt[4:].strip()))
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
