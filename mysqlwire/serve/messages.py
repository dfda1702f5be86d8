"""The MySQL 8 server errors ``mysqlwire serve`` can send (reference §7: code, SQLSTATE, text)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerError:
    code: int
    sqlstate: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} ({self.sqlstate}): {self.message}"


def access_denied(user: str, host: str, password_used: bool) -> ServerError:
    return ServerError(
        1045,
        "28000",
        f"Access denied for user '{user}'@'{host}' (using password: {'YES' if password_used else 'NO'})",
    )


def db_access_denied(user: str, host: str, db: str) -> ServerError:
    return ServerError(
        1044, "42000", f"Access denied for user '{user}'@'{host}' to database '{db}'"
    )


def unknown_database(db: str) -> ServerError:
    return ServerError(1049, "42000", f"Unknown database '{db}'")


def too_many_connections() -> ServerError:
    return ServerError(1040, "08004", "Too many connections")


def plugin_not_loaded(plugin: str) -> ServerError:
    return ServerError(1524, "HY000", f"Plugin '{plugin}' is not loaded")


def account_locked(user: str, host: str) -> ServerError:
    return ServerError(
        3118, "HY000", f"Access denied for user '{user}'@'{host}'. Account is locked."
    )


def password_expired_login() -> ServerError:
    return ServerError(
        1862,
        "HY000",
        "Your password has expired. To log in you must change it using a client that supports expired passwords.",
    )


def must_change_password() -> ServerError:
    return ServerError(
        1820,
        "HY000",
        "You must reset your password using ALTER USER statement before executing this statement.",
    )


def secure_transport_required() -> ServerError:
    return ServerError(
        3159,
        "HY000",
        "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
    )


def not_supported_auth_mode() -> ServerError:
    return ServerError(
        1251,
        "08004",
        "Client does not support authentication protocol requested by server; consider upgrading MySQL client",
    )


def bad_handshake() -> ServerError:
    return ServerError(1043, "08S01", "Bad handshake")


def packets_out_of_order() -> ServerError:
    return ServerError(1156, "08S01", "Got packets out of order")


def unknown_command() -> ServerError:
    return ServerError(1047, "08S01", "Unknown command")


def no_database_selected() -> ServerError:
    return ServerError(1046, "3D000", "No database selected")


def packet_too_large() -> ServerError:
    return ServerError(1153, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes")
