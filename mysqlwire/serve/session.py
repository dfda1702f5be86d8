"""One client connection of ``mysqlwire serve``: connection I/O
(:mod:`~mysqlwire.serve.connection`), the connection phase
(:mod:`~mysqlwire.serve.auth_flow`) and the command phase
(:mod:`~mysqlwire.serve.commands`), with the error handling that keeps the listener up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import Any

from .auth_flow import new_nonce
from .commands import CommandPhase
from .connection import Closed, Refuse, is_loopback
from .events import ConnectionRecord
from .messages import ServerError

log = logging.getLogger("mysqlwire.serve")


class Session(CommandPhase):
    def __init__(self, server: Any, sock: socket.socket, peer: Any):
        super().__init__(server, sock)
        self.nonce = new_nonce()
        self.account = None
        self.user = ""
        self.database = None
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

    # ------------------------------------------------------------------ main
    async def run(self) -> None:
        server = self.server
        server.active += 1
        try:
            await server.notify()
            await self._run()
        except asyncio.CancelledError:
            self.rec.event("server-stop")
        except Closed:
            self.rec.event("client-closed")
            self._abort_pending()
        except (ConnectionError, OSError) as exc:
            self.rec.event("connection-error", error=type(exc).__name__)
            self._abort_pending()
        except asyncio.TimeoutError:
            self.rec.event("timeout")
            self._abort_pending()
        except Refuse as refuse:
            with contextlib.suppress(Exception):
                await self.send_error(refuse.error)
            self._abort_pending(refuse.error)
        except Exception as exc:  # a server bug: record it, never crash the listener
            log.exception("connection %s: internal error", self.id)
            self.rec.event("internal-error", error=type(exc).__name__)
            self._abort_pending()
        finally:
            server.active -= 1
            with contextlib.suppress(Exception):
                await self.close()
            self.rec.ended = time.time()
            self.rec.event("closed")
            with contextlib.suppress(Exception):
                await server.notify()

    def _abort_pending(self, error: ServerError | None = None) -> None:
        for attempt in self.rec.attempts:
            if attempt.outcome is None:
                attempt.outcome = "error" if error else "aborted"
                attempt.error = error
                self._log_attempt(attempt)
