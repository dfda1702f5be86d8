"""Refused before or after authentication for a reason the server names: host, limits, account state, database."""

from __future__ import annotations

import re

from ..context import Facts
from ..fingerprint import CAN_HANDLE_EXPIRED
from .base import Hit, Spec, code_is, err_evidence, hit


# ------------------------------------------------------------- predicates
def check_host_not_allowed(f: Facts) -> Hit | None:
    if f.code != 1130:
        return None
    return hit(err_evidence(f) + " (the client never got to send a user name)", host=f.host)


def check_host_blocked(f: Facts) -> Hit | None:
    if f.code != 1129:
        return None
    return hit(err_evidence(f), host=f.host)


def check_password_expired(f: Facts) -> Hit | None:
    if f.code == 1862:
        caps = f.conn.client_capabilities
        note = ""
        if caps is not None and not caps & CAN_HANDLE_EXPIRED:
            note = " (the client did not set CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS, so the server refused instead of opening a sandbox session)"
        return hit(err_evidence(f) + note, mode="the server refused the login")
    cmd = f.conn.command_error
    if f.is_login and f.outcome == "ok" and cmd and int(cmd.get("code") or 0) == 1820:
        return hit(
            "server: OK to the login, then ERR 1820 on the first command: "
            f"{cmd.get('message')} (sandbox mode: only ALTER USER / SET PASSWORD run)",
            severity="warning",
            mode="logged in to sandbox mode, every query fails with 1820",
        )
    return None


_RESOURCE_RE = re.compile(r"exceeded the '([a-z_]+)' resource", re.I)


def check_user_resource_limit(f: Facts) -> Hit | None:
    if f.code != 1226:
        return None
    m = _RESOURCE_RE.search(f.message)
    resource = m.group(1).lower() if m else "a per-account"
    acct = f.account_sql
    if resource == "max_user_connections":
        remedy = (
            f"the account has its maximum of simultaneous connections open: close the application's idle or leaked "
            f"connections (SHOW PROCESSLIST; size the pool below the limit) or raise it: ALTER USER {acct} WITH "
            "MAX_USER_CONNECTIONS n"
        )
    elif resource in ("max_questions", "max_updates", "max_connections_per_hour"):
        option = {
            "max_questions": "MAX_QUERIES_PER_HOUR",
            "max_updates": "MAX_UPDATES_PER_HOUR",
            "max_connections_per_hour": "MAX_CONNECTIONS_PER_HOUR",
        }[resource]
        remedy = (
            f"an hourly counter is used up: raise it (ALTER USER {acct} WITH {option} n; 0 = unlimited), "
            "wait for the hour to pass, or reset the counters now: FLUSH USER_RESOURCES"
        )
    else:
        remedy = (
            f"raise the limit named in the error (ALTER USER {acct} WITH MAX_USER_CONNECTIONS / "
            "MAX_CONNECTIONS_PER_HOUR / MAX_QUERIES_PER_HOUR / MAX_UPDATES_PER_HOUR n) or FLUSH USER_RESOURCES "
            "for the hourly ones"
        )
    return hit(err_evidence(f), resource=resource, remedy=remedy)


SPECS = [
    Spec("HOST_NOT_ALLOWED", "error", check_host_not_allowed, rank=90),
    Spec("HOST_BLOCKED", "error", check_host_blocked, rank=90),
    Spec("TOO_MANY_CONNECTIONS", "error", code_is(1040), rank=90),
    Spec("MAX_USER_CONNECTIONS", "error", code_is(1203), rank=90),
    Spec("USER_RESOURCE_LIMIT", "error", check_user_resource_limit, rank=90),
    Spec("SERVER_SHUTDOWN", "error", code_is(1053), rank=90),
    Spec("SERVER_OFFLINE", "error", code_is(3032), rank=90),
    Spec("BAD_HANDSHAKE", "error", code_is(1043), rank=80),
    Spec("ACCOUNT_LOCKED", "error", code_is(3118, 4151), rank=90),
    Spec("ACCOUNT_BLOCKED_FAILED_LOGINS", "error", code_is(3955), rank=90),
    Spec("PASSWORD_EXPIRED", "error", check_password_expired, rank=90),
    Spec("UNIX_SOCKET_ACCOUNT", "error", code_is(1698), rank=90),
    Spec("UNKNOWN_DATABASE", "error", code_is(1049), rank=90),
    Spec("DB_ACCESS_DENIED", "error", code_is(1044), rank=90),
    Spec("PLUGIN_NOT_LOADED", "error", code_is(1524), rank=90),
]
