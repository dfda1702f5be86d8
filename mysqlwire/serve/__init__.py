"""``mysqlwire serve``: our own server side of the MySQL 8 connection phase.

    from mysqlwire.serve import ServerConfig, run_in_thread

    cfg = ServerConfig(port=0, accounts={"app": {"plugin": "caching_sha2_password", "password": "pw"}})
    with run_in_thread(cfg) as srv:
        ...  # connect a real client to srv.port
        print(srv.last().login.summary())

See :mod:`mysqlwire.serve.server` (behaviour) and :mod:`mysqlwire.serve.config` (settings).
"""

from __future__ import annotations

from .config import Account, ServerConfig, load_config
from .events import AuthAttempt, ConnectionRecord, Event
from .messages import ServerError
from .server import MySQL8Server, ServerThread, run_in_thread

__all__ = [
    "Account",
    "AuthAttempt",
    "ConnectionRecord",
    "Event",
    "MySQL8Server",
    "ServerConfig",
    "ServerError",
    "ServerThread",
    "load_config",
    "run_in_thread",
]
