"""Refused before or after authentication for a reason the server names: host, limits, account state, database."""

from __future__ import annotations

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


SPECS = [
    Spec("HOST_NOT_ALLOWED", "error", check_host_not_allowed, rank=90),
    Spec("HOST_BLOCKED", "error", check_host_blocked, rank=90),
    Spec("TOO_MANY_CONNECTIONS", "error", code_is(1040), rank=90),
    Spec("MAX_USER_CONNECTIONS", "error", code_is(1203), rank=90),
    Spec("USER_RESOURCE_LIMIT", "error", code_is(1226), rank=90),
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
