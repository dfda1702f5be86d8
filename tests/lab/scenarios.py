"""The lab's scenarios: who logs in with what, what really happens, and how to run them.

A ``Scenario`` is one login (sometimes followed by COM_CHANGE_USER) by one real client against one lab
server, plus the truth the TEST knows about it: the password it gave, the account's plugin and real
password, what the server does for that account (auth switches, the ERR it sends) and what the client
raises. That truth is written to ``truth.jsonl`` with the same fields as
``shared/captures/lab-samples/truth.jsonl`` (+ ``expected_code``) and is never taken from mysqlwire's
dissector. ``test_lab_clients.py`` checks the client-visible half against the client and the wire half
against the capture with the lab's own small reader (``wirecheck.py``), so a wrong row fails loudly.

``run_all()`` captures every scenario (one pcap each, ``.keys`` for TLS with a key log) in parallel
lanes, each lane on its own loopback address (see ``mariadb.LANE_HOSTS``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .capture import CaptureInfo, capture, tcp_connections
from .clients import (
    LIBMARIADB_CLIENTS,
    LoginResult,
    LoginSpec,
    WorkerPool,
    build_keylog_shim,
    login,
)
from .mariadb import ACCOUNTS, CLIENT_IP, LANE_HOSTS, MariaDBLab, server_version_tag

# Clients that start TLS on their own when the server offers it and no TLS option is given.
TLS_BY_DEFAULT = {"cli", "pymysql", "connector"}
# mysql-connector-python always sets CLIENT_CONNECT_WITH_DB and sends "" when no database is given.
SENDS_EMPTY_DATABASE = {"connector"}

NATIVE = "mysql_native_password"
ED = "client_ed25519"
OLD = "mysql_old_password"
DIALOG = "dialog"
CLEAR = "mysql_clear_password"

# verdicts of a byte-for-byte replay with the account's password
MATCH, MISMATCH, EMPTY, UNVERIFIABLE, NO_AUTH = (
    "PROOF_MATCHES",
    "PROOF_MISMATCH",
    "EMPTY_PASSWORD_SENT",
    "UNVERIFIABLE",
    "NO_AUTH_ATTEMPT",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    client: str
    user: str
    password: str | None = None  # None: the account's password
    database: str | None = None
    server: str = "main"
    tls: str = "off"  # off | on | default (the client's own default)
    keylog: bool = False
    compress: bool = False
    change_user: dict | None = None  # {"user", "password" (None: account's), "database", + expect}
    cli_args: tuple[str, ...] = ()
    account_password: str | None = "<account>"  # override (dual account, unknown user: None)
    # --- what the client reports
    connected: bool = True
    client_code: int | None = None  # error code the client reports (server's or its own)
    client_says: str | None = None  # substring of the client's error message
    command_code: int | None = None  # first server error after the login (1820)
    # --- what happens on the wire
    plugin_client: str | None = NATIVE
    switches: tuple[str, ...] = ()
    outcome: str = "ok"  # ok | error | incomplete
    error_code: int | None = None
    sqlstate: str | None = None
    error_message: str | None = None
    command_errors: tuple[dict, ...] = ()
    # --- what mysqlwire must conclude
    verdict: str = MATCH
    verdict_client: str | None = None  # verdict with the client's password, when not derivable
    code: str = "OK"
    other_codes: tuple[str, ...] = ()
    notes: str = ""

    @property
    def tls_used(self) -> bool:
        return self.tls == "on" or (self.tls == "default" and self.client in TLS_BY_DEFAULT)

    @property
    def given_password(self) -> str:
        if self.password is not None:
            return self.password
        return ACCOUNTS[self.user].password

    @property
    def real_password(self) -> str | None:
        if self.account_password != "<account>":
            return self.account_password
        a = ACCOUNTS.get(self.user)
        return a.password if a and a.server == self.server else None

    @property
    def sent_database(self) -> str | None:
        if self.database is None and self.client in SENDS_EMPTY_DATABASE:
            return ""
        return self.database

    @property
    def needs_keylog_shim(self) -> bool:
        return self.keylog and self.client in LIBMARIADB_CLIENTS


def denied(user: str, using: str = "YES", client_code: int | None = 1045) -> dict:
    return dict(
        connected=False,
        client_code=client_code,
        outcome="error",
        error_code=1045,
        sqlstate="28000",
        error_message=f"Access denied for user '{user}'@'{CLIENT_IP}' (using password: {using})",
    )


def wrong(user: str, using: str = "YES") -> dict:
    return dict(denied(user, using), verdict=MISMATCH, code="WRONG_PASSWORD")


def gave_up(says: str, code: str, client_code: int | None = None) -> dict:
    """The client closed the connection instead of answering (no ERR from the server)."""
    return dict(
        connected=False, client_code=client_code, client_says=says, outcome="incomplete", code=code
    )


LOCKED = dict(
    connected=False,
    client_code=4151,
    outcome="error",
    error_code=4151,
    sqlstate="HY000",
    error_message="Access denied, this account is locked",
    code="ACCOUNT_LOCKED",
)
EXPIRED = dict(
    command_code=1820,
    command_errors=(
        {
            "code": 1820,
            "sqlstate": "HY000",
            "message": "You must SET PASSWORD before executing this statement",
        },
    ),
    code="PASSWORD_EXPIRED",
    notes="expired password: MariaDB lets the login through (sandbox mode, "
    "disconnect_on_expired_password=OFF) and fails the first statement with 1820",
)
HOST_NOT_ALLOWED = dict(
    server="hostonly",
    connected=False,
    client_code=1130,
    plugin_client=None,
    outcome="error",
    error_code=1130,
    sqlstate=None,
    error_message=f"Host '{CLIENT_IP}' is not allowed to connect to this MariaDB server",
    verdict=NO_AUTH,
    code="HOST_NOT_ALLOWED",
    notes="server whose only TCP account is 'remote'@'10.9.9.9': ERR 1130 instead of the greeting",
)


def unknown_db(db: str) -> dict:
    return dict(
        connected=False,
        client_code=1049,
        outcome="error",
        error_code=1049,
        sqlstate="42000",
        error_message=f"Unknown database '{db}'",
        code="UNKNOWN_DATABASE",
    )


def db_denied(user: str, db: str) -> dict:
    return dict(
        connected=False,
        client_code=1044,
        outcome="error",
        error_code=1044,
        sqlstate="42000",
        error_message=f"Access denied for user '{user}'@'%' to database '{db}'",
        code="DB_ACCESS_DENIED",
    )


S = Scenario
W = "Tr0ub4dor&4"  # app's password with the last character wrong

SCENARIOS: list[Scenario] = [
    # --- mysql_native_password basics
    S("cli_native_ok", "cli", "app", database="shop"),
    S("cli_native_wrong", "cli", "app", W, **wrong("app")),
    S("pymysql_native_ok", "pymysql", "app", database="shop"),
    S("pymysql_native_wrong", "pymysql", "app", W, **wrong("app")),
    S("connector_native_ok", "connector", "app", database="shop"),
    S(
        "connector_unknown_user",
        "connector",
        "ghost",
        "whatever",
        account_password=None,
        **dict(denied("ghost"), code="ACCESS_DENIED"),
        other_codes=("VALID_PROOF_REJECTED",),
        notes="no such account: replay with the password the client was given matches, "
        "and the server still says 1045",
    ),
    S("mysqlclient_native_ok", "mysqlclient", "app", database="shop"),
    S("mysqlclient_native_wrong", "mysqlclient", "app", W, **wrong("app")),
    S("mariadb_native_ok", "mariadb", "app", database="shop"),
    S(
        "mariadb_unknown_user",
        "mariadb",
        "ghost",
        "",
        account_password=None,
        # replayed with the empty password the client was given, the empty
        # proof is exactly what it produces (shared truth: lab_mariadb_empty_sent)
        **dict(denied("ghost", "NO"), code="ACCESS_DENIED", verdict=MATCH),
        other_codes=("EMPTY_PASSWORD",),
        notes="no such account and an empty password: on the wire the same as an empty password "
        "for an existing account; the lab knows the account does not exist",
    ),
    S(
        "cli_unknown_user",
        "cli",
        "ghost",
        "whatever",
        account_password=None,
        **dict(denied("ghost"), code="ACCESS_DENIED"),
        other_codes=("VALID_PROOF_REJECTED",),
    ),
    S(
        "pymysql_unknown_user",
        "pymysql",
        "ghost",
        "whatever",
        account_password=None,
        **dict(denied("ghost"), code="ACCESS_DENIED"),
        other_codes=("VALID_PROOF_REJECTED",),
    ),
    S(
        "mysqlclient_unknown_user",
        "mysqlclient",
        "ghost",
        "whatever",
        account_password=None,
        **dict(denied("ghost"), code="ACCESS_DENIED"),
        other_codes=("VALID_PROOF_REJECTED",),
    ),
    # --- empty passwords
    S(
        "cli_empty_sent",
        "cli",
        "app",
        "",
        **dict(denied("app", "NO"), verdict=EMPTY, code="EMPTY_PASSWORD"),
        notes="no -p and no MYSQL_PWD: the CLI sends an empty auth response",
    ),
    S(
        "connector_empty_sent",
        "connector",
        "app",
        "",
        **dict(denied("app", "NO"), verdict=EMPTY, code="EMPTY_PASSWORD"),
    ),
    S(
        "mysqlclient_empty_sent",
        "mysqlclient",
        "app",
        "",
        **dict(denied("app", "NO"), verdict=EMPTY, code="EMPTY_PASSWORD"),
    ),
    S(
        "mariadb_empty_sent",
        "mariadb",
        "app",
        "",
        **dict(denied("app", "NO"), verdict=EMPTY, code="EMPTY_PASSWORD"),
    ),
    S(
        "pymysql_empty_sent",
        "pymysql",
        "app",
        "",
        **dict(denied("app", "NO"), verdict=EMPTY, code="EMPTY_PASSWORD"),
    ),
    S(
        "cli_nopw_ok",
        "cli",
        "nopw",
        "",
        verdict=MATCH,
        notes="account without a password, client sends no auth data: empty matches empty",
    ),
    S(
        "connector_nopw_given_password",
        "connector",
        "nopw",
        "x-given",
        **wrong("nopw"),
        notes="the account has no password; the client sent a 20-byte proof",
    ),
    # --- database errors after a good proof
    S("pymysql_unknown_db", "pymysql", "ops", database="nosuchdb", **unknown_db("nosuchdb")),
    S("cli_unknown_db", "cli", "ops", database="nosuchdb", **unknown_db("nosuchdb")),
    S("mariadb_unknown_db", "mariadb", "ops", database="nosuchdb", **unknown_db("nosuchdb")),
    S("mysqlclient_db_denied", "mysqlclient", "app", database="mysql", **db_denied("app", "mysql")),
    S("connector_db_denied", "connector", "app", database="mysql", **db_denied("app", "mysql")),
    # --- ed25519
    S("cli_ed25519_ok", "cli", "edu", switches=(ED,), code="PLUGIN_SWITCH"),
    S("pymysql_ed25519_ok", "pymysql", "edu", database=None, switches=(ED,), code="PLUGIN_SWITCH"),
    S(
        "connector_ed25519",
        "connector",
        "edu",
        switches=(ED,),
        **gave_up("Authentication plugin 'client_ed25519' is not supported", "CLIENT_LACKS_PLUGIN"),
        notes="mysql-connector-python has no client_ed25519",
    ),
    S("mysqlclient_ed25519_ok", "mysqlclient", "edu", switches=(ED,), code="PLUGIN_SWITCH"),
    S(
        "mysqlclient_ed25519_wrong",
        "mysqlclient",
        "edu",
        "ed-secret-43",
        switches=(ED,),
        **wrong("edu"),
    ),
    S("mariadb_ed25519_ok", "mariadb", "edu", switches=(ED,), code="PLUGIN_SWITCH"),
    S(
        "mariadb_ed25519_empty_signed",
        "mariadb",
        "edu",
        "",
        switches=(ED,),
        **dict(denied("edu", "YES"), verdict=MISMATCH, verdict_client=MATCH),
        code="EMPTY_PASSWORD",
        notes="libmariadb sends no native proof for an empty password, then signs the EMPTY "
        "password with client_ed25519 (64 bytes), so the server says 'using password: YES'; "
        "only a replay with '' shows it",
    ),
    S(
        "pymysql_ed25519_empty_signed",
        "pymysql",
        "edu",
        "",
        switches=(ED,),
        **dict(denied("edu", "YES"), verdict=MISMATCH, verdict_client=MATCH),
        code="EMPTY_PASSWORD",
        notes="PyMySQL, like libmariadb, signs the empty password (64 bytes, 'using password: YES')",
    ),
    S(
        "cli_ed25519_default_auth_ok",
        "cli",
        "edu",
        cli_args=("--default-auth=client_ed25519",),
        plugin_client=ED,
        switches=(ED,),
        code="PLUGIN_SWITCH",
        notes="--default-auth=client_ed25519: the response names client_ed25519 with no auth data; "
        "the server still sends the switch (with its nonce) and the client signs that",
    ),
    S(
        "cli_ed25519_plugin_missing",
        "cli",
        "edu",
        cli_args=("--plugin-dir=/nonexistent",),
        switches=(ED,),
        **denied("edu", "YES"),
        client_says="Plugin client_ed25519 could not be loaded",
        verdict=EMPTY,
        verdict_client=EMPTY,
        code="CLIENT_LACKS_PLUGIN",
        notes="libmariadb cannot load client_ed25519.so: it answers the switch with an EMPTY packet, "
        "the server sends 1045 and the CLI prints 'ERROR 1045 (28000): Plugin client_ed25519 "
        "could not be loaded' - a plugin problem that looks like a wrong password",
    ),
    # --- ed25519 OR mysql_native_password
    S(
        "cli_dual_native_ok",
        "cli",
        "dual",
        switches=(ED, NATIVE),
        code="PLUGIN_SWITCH",
        notes="account: ed25519 'dual-ed-first' OR mysql_native_password 'dual-native-2'; the "
        "native alternative's password; account_password is that alternative's",
    ),
    S(
        "pymysql_dual_native",
        "pymysql",
        "dual",
        switches=(ED, NATIVE),
        **gave_up("received multiple auth switch requests", "SECOND_SWITCH_REFUSED"),
        notes="PyMySQL refuses a second AuthSwitchRequest: the ed25519 proof fails, the server "
        "switches to the native alternative and PyMySQL gives up",
    ),
    S(
        "mysqlclient_dual_native_ok",
        "mysqlclient",
        "dual",
        switches=(ED, NATIVE),
        code="PLUGIN_SWITCH",
    ),
    S(
        "pymysql_dual_ed_ok",
        "pymysql",
        "dual",
        "dual-ed-first",
        account_password="dual-ed-first",
        switches=(ED,),
        code="PLUGIN_SWITCH",
        notes="the ed25519 alternative's password: one switch, PyMySQL copes",
    ),
    S(
        "mariadb_dual_ed_ok",
        "mariadb",
        "dual",
        "dual-ed-first",
        account_password="dual-ed-first",
        switches=(ED,),
        code="PLUGIN_SWITCH",
    ),
    # --- mysql_old_password (secure_auth=0)
    S(
        "cli_oldpw_ok",
        "cli",
        "oldie",
        switches=(OLD,),
        code="PLUGIN_SWITCH",
        other_codes=("OLD_PASSWORD_IN_USE",),
        notes="libmariadb answers the bare old switch with scramble323 (secure_auth off)",
    ),
    S(
        "pymysql_oldpw",
        "pymysql",
        "oldie",
        switches=(OLD,),
        **gave_up("received unknown auth switch request", "OLD_PASSWORD_REFUSED"),
        notes="server sends the bare 1-byte old switch; PyMySQL aborts: unknown auth switch request",
    ),
    S(
        "connector_oldpw",
        "connector",
        "oldie",
        switches=(OLD,),
        **gave_up("old (insecure) passwords is not supported", "OLD_PASSWORD_REFUSED"),
    ),
    S(
        "mysqlclient_oldpw_ok",
        "mysqlclient",
        "oldie",
        switches=(OLD,),
        code="PLUGIN_SWITCH",
        other_codes=("OLD_PASSWORD_IN_USE",),
    ),
    S(
        "mariadb_oldpw_wrong",
        "mariadb",
        "oldie",
        "old-pw-2",
        switches=(OLD,),
        **wrong("oldie"),
        other_codes=("PLUGIN_SWITCH", "OLD_PASSWORD_IN_USE"),
    ),
    # --- PAM: dialog (main server) and mysql_clear_password (pamclear server)
    S(
        "cli_pam_dialog_ok",
        "cli",
        "pamdlg",
        switches=(DIALOG,),
        code="CLEARTEXT_WITHOUT_TLS",
        other_codes=("PLUGIN_SWITCH",),
        notes="MariaDB's PAM switch to dialog carries no prompt; libmariadb answers with the "
        "password + NUL, in clear text",
    ),
    S(
        "cli_pam_dialog_wrong",
        "cli",
        "pamdlg",
        "pam-dialog-x",
        switches=(DIALOG,),
        **wrong("pamdlg", "NO"),
        other_codes=("CLEARTEXT_WITHOUT_TLS", "PLUGIN_SWITCH"),
        notes="PAM rejects the password; MariaDB's message says 'using password: NO' for PAM",
    ),
    S(
        "pymysql_pam_dialog",
        "pymysql",
        "pamdlg",
        switches=(DIALOG,),
        **gave_up("index out of range", "CLIENT_LACKS_PLUGIN"),
        notes="PyMySQL's dialog handler reads a prompt flag from the switch's (empty) data and "
        "crashes with IndexError: it cannot log in to MariaDB PAM",
    ),
    S(
        "connector_pam_dialog",
        "connector",
        "pamdlg",
        switches=(DIALOG,),
        **gave_up("Authentication plugin 'dialog' is not supported", "CLIENT_LACKS_PLUGIN"),
    ),
    S(
        "mysqlclient_pam_dialog_ok",
        "mysqlclient",
        "pamdlg",
        switches=(DIALOG,),
        code="CLEARTEXT_WITHOUT_TLS",
        other_codes=("PLUGIN_SWITCH",),
    ),
    S(
        "mariadb_pam_dialog_ok",
        "mariadb",
        "pamdlg",
        switches=(DIALOG,),
        code="CLEARTEXT_WITHOUT_TLS",
        other_codes=("PLUGIN_SWITCH",),
    ),
    S(
        "cli_pam_clear_ok",
        "cli",
        "pamclr",
        server="pamclear",
        switches=(CLEAR,),
        code="CLEARTEXT_WITHOUT_TLS",
        other_codes=("PLUGIN_SWITCH",),
        notes="libmariadb answers mysql_clear_password without any opt-in: password in clear",
    ),
    S(
        "pymysql_pam_clear_ok",
        "pymysql",
        "pamclr",
        server="pamclear",
        switches=(CLEAR,),
        code="CLEARTEXT_WITHOUT_TLS",
        other_codes=("PLUGIN_SWITCH",),
    ),
    S(
        "connector_pam_clear_no_tls",
        "connector",
        "pamclr",
        server="pamclear",
        switches=(CLEAR,),
        **gave_up("mysql_clear_password requires SSL", "CLEARTEXT_NOT_ENABLED"),
        other_codes=("PLUGIN_SWITCH",),
        notes="mysql-connector-python refuses to send a clear password without TLS: the password "
        "never leaves the client",
    ),
    S(
        "mariadb_pam_clear_wrong",
        "mariadb",
        "pamclr",
        "pam-clear-x",
        server="pamclear",
        switches=(CLEAR,),
        **wrong("pamclr", "NO"),
        other_codes=("CLEARTEXT_WITHOUT_TLS", "PLUGIN_SWITCH"),
    ),
    S(
        "pymysql_pam_clear_tls_keylog_ok",
        "pymysql",
        "pamclr",
        server="pamclear",
        tls="on",
        keylog=True,
        switches=(CLEAR,),
        code="PLUGIN_SWITCH",
    ),
    S(
        "connector_pam_clear_tls_keylog_ok",
        "connector",
        "pamclr",
        server="pamclear",
        tls="on",
        keylog=True,
        switches=(CLEAR,),
        code="PLUGIN_SWITCH",
    ),
    # --- locked / expired
    S("cli_locked", "cli", "frozen", **LOCKED),
    S("pymysql_locked", "pymysql", "frozen", **LOCKED),
    S(
        "mariadb_locked_wrong",
        "mariadb",
        "frozen",
        "frozen-pw-2",
        **wrong("frozen"),
        notes="locked account AND wrong password: MariaDB checks the password first: 1045, not 4151",
    ),
    S("cli_expired", "cli", "stale", **EXPIRED),
    S("pymysql_expired", "pymysql", "stale", **EXPIRED),
    S("connector_expired", "connector", "stale", **EXPIRED),
    S("mysqlclient_expired", "mysqlclient", "stale", **EXPIRED),
    # --- TLS
    S(
        "cli_require_ssl_no_tls",
        "cli",
        "secure",
        **dict(denied("secure"), code="TLS_REQUIRED"),
        notes="account REQUIRE SSL, client --skip-ssl: the right proof, then 1045",
    ),
    S(
        "pymysql_require_ssl_no_tls",
        "pymysql",
        "secure",
        **dict(denied("secure"), code="TLS_REQUIRED"),
    ),
    S("cli_tls_keylog_ok", "cli", "secure", database="shop", tls="on", keylog=True),
    S("pymysql_tls_keylog_ok", "pymysql", "secure", database="shop", tls="on", keylog=True),
    S("connector_tls_keylog_ok", "connector", "secure", database="shop", tls="on", keylog=True),
    S("mysqlclient_tls_keylog_ok", "mysqlclient", "secure", database="shop", tls="on", keylog=True),
    S("mariadb_tls_keylog_ok", "mariadb", "secure", database="shop", tls="on", keylog=True),
    S(
        "connector_tls_keylog_wrong",
        "connector",
        "secure",
        "Tls-Only-78",
        tls="on",
        keylog=True,
        **wrong("secure"),
    ),
    S(
        "mariadb_ed25519_tls_keylog_ok",
        "mariadb",
        "edu",
        tls="on",
        keylog=True,
        switches=(ED,),
        code="PLUGIN_SWITCH",
    ),
    S(
        "cli_default_tls_keylog_ok",
        "cli",
        "app",
        tls="default",
        keylog=True,
        notes="the mariadb 10.11 CLI negotiates TLS by default (no --ssl given, no verification)",
    ),
    S(
        "pymysql_default_tls_nokeys",
        "pymysql",
        "app",
        tls="default",
        verdict=UNVERIFIABLE,
        verdict_client=UNVERIFIABLE,
        code="ENCRYPTED_NO_KEYS",
        notes="PyMySQL 1.2 negotiates TLS by itself when given no TLS option (PREFERRED); no keys",
    ),
    S(
        "mysqlclient_tls_nokeys",
        "mysqlclient",
        "secure",
        tls="on",
        verdict=UNVERIFIABLE,
        verdict_client=UNVERIFIABLE,
        code="ENCRYPTED_NO_KEYS",
    ),
    # --- compression
    S("cli_compressed_ok", "cli", "app", database="shop", compress=True),
    S("connector_compressed_ok", "connector", "app", database="shop", compress=True),
    S("mysqlclient_compressed_ok", "mysqlclient", "app", database="shop", compress=True),
    S("mariadb_compressed_ok", "mariadb", "app", database="shop", compress=True),
    S("mysqlclient_compressed_wrong", "mysqlclient", "app", W, compress=True, **wrong("app")),
    S(
        "cli_tls_compressed_keylog_ok",
        "cli",
        "secure",
        tls="on",
        keylog=True,
        compress=True,
    ),
    # --- COM_CHANGE_USER
    S(
        "connector_change_user_ok",
        "connector",
        "app",
        change_user={"user": "reporter", "database": "shop", "switches": [NATIVE]},
        notes="login as app, queries, then COM_CHANGE_USER to reporter",
    ),
    S(
        "mysqlclient_change_user_wrong",
        "mysqlclient",
        "app",
        change_user={
            "user": "reporter",
            "password": "Rep0rt-px",
            "database": "shop",
            "switches": [NATIVE],
            "outcome": "error",
            "error_code": 1045,
            "expected_verdict": MISMATCH,
            "expected_code": "WRONG_PASSWORD",
        },
        code="WRONG_PASSWORD",
        notes="login as app, then COM_CHANGE_USER to reporter with a wrong password: the "
        "connection's finding is the change_user's (the login itself is OK)",
    ),
    S(
        "mariadb_change_user_ed25519_ok",
        "mariadb",
        "app",
        change_user={
            "user": "edu",
            "database": None,
            "switches": [ED],
            "expected_code": "PLUGIN_SWITCH",
        },
        code="PLUGIN_SWITCH",
        notes="COM_CHANGE_USER to an ed25519 account: the server switches to client_ed25519",
    ),
    S(
        "connector_change_user_ed25519",
        "connector",
        "app",
        change_user={
            "user": "edu",
            "database": None,
            "switches": [ED],
            "outcome": "incomplete",
            "client_code": None,
            "client_says": "Authentication plugin 'client_ed25519' is not supported",
            "error_code": 1156,
            "sqlstate": "08S01",
            "error_message": "Got packets out of order",
            "expected_code": "CLIENT_LACKS_PLUGIN",
        },
        code="CLIENT_LACKS_PLUGIN",
        notes="COM_CHANGE_USER to an ed25519 account: the connector cannot answer the switch, "
        "sends COM_QUIT where the server expects the auth answer, and the server replies "
        "ERR 1156 'Got packets out of order' (change_user.error_code) before the reset",
    ),
    # --- host not allowed (separate server, no account for 127.0.0.1)
    S("cli_host_not_allowed", "cli", "remote", **HOST_NOT_ALLOWED),
    S("pymysql_host_not_allowed", "pymysql", "remote", **HOST_NOT_ALLOWED),
    S("connector_host_not_allowed", "connector", "remote", **HOST_NOT_ALLOWED),
]

SCENARIO_BY_NAME = {s.name: s for s in SCENARIOS}
assert len(SCENARIO_BY_NAME) == len(SCENARIOS), "duplicate scenario names"


# ----------------------------------------------------------------------------- truth


def _verdict_client(sc: Scenario) -> str:
    if sc.verdict_client:
        return sc.verdict_client
    if sc.verdict in (NO_AUTH, UNVERIFIABLE):
        return sc.verdict
    return EMPTY if sc.given_password == "" else MATCH


def _final_plugin(sc: Scenario) -> str | None:
    return sc.switches[-1] if sc.switches else sc.plugin_client


def change_user_truth(sc: Scenario) -> dict | None:
    cu = sc.change_user
    if not cu:
        return None
    acct = ACCOUNTS.get(cu["user"])
    pw = cu.get("password") if cu.get("password") is not None else (acct.password if acct else "")
    switches = list(cu.get("switches", []))
    outcome = cu.get("outcome", "ok")
    err = cu.get("error_code")
    denied_msg = f"Access denied for user '{cu['user']}'@'{CLIENT_IP}' (using password: YES)"
    return {
        "user": cu["user"],
        "database": cu.get("database"),
        "password": pw,
        "account_password": acct.password if acct else None,
        "plugin_client": cu.get("plugin_client", NATIVE),
        "switches": switches,
        "plugin_final": switches[-1] if switches else cu.get("plugin_client", NATIVE),
        "outcome": outcome,
        "error_code": err,
        "sqlstate": cu.get("sqlstate", "28000" if err == 1045 else None),
        "error_message": cu.get("error_message", denied_msg if err == 1045 else None),
        "client_error": None,  # filled from the client's result
        "expected_verdict": cu.get("expected_verdict", MATCH),
        "expected_code": cu.get("expected_code", "OK"),
    }


def build_truth(
    sc: Scenario,
    *,
    lab: MariaDBLab,
    host: str,
    pcap: Path,
    keylog: Path | None,
    result: LoginResult | None,
) -> dict:
    t: dict = {
        "scenario": sc.name,
        "pcap": pcap.name,
        "port": lab.servers[sc.server].port,
        "server_address": host,
        "server": server_version_tag(lab.version),
        "client": result.version if result else sc.client,
        "tls": sc.tls_used,
        "keylog": keylog.name if keylog else None,
        # compression takes effect only after a successful login (as in the
        # shared lab truth: mariadb_mysqlclient_ed25519_wrong negotiates it, false)
        "compressed": sc.compress and sc.outcome == "ok",
        "user": sc.user,
        "database": sc.sent_database,
        "password": sc.given_password,
        "account_password": sc.real_password,
        "plugin_initial": None if sc.server == "hostonly" else NATIVE,
        "plugin_client": sc.plugin_client,
        "switches": list(sc.switches),
        "plugin_final": _final_plugin(sc),
        "outcome": sc.outcome,
        "error_code": sc.error_code,
        "sqlstate": sc.sqlstate,
        "error_message": sc.error_message,
        "client_error": result.error.text() if result and result.error else None,
        "expected_verdict": sc.verdict,
        "expected_code": sc.code,
        "other_codes": list(sc.other_codes),
        "verdict_with_client_password": _verdict_client(sc),
        "client_port": None,
        "notes": sc.notes,
        "lab_server": sc.server,
        "client_kind": sc.client,
    }
    if sc.command_errors:
        t["command_errors"] = [dict(e) for e in sc.command_errors]
    cu = change_user_truth(sc)
    if cu is not None:
        if result and result.change_user and result.change_user.get("error"):
            cu["client_error"] = result.change_user["error"].text()
        t["change_user"] = cu
    if sc.verdict == UNVERIFIABLE:
        t["inner"] = {
            "expected_verdict": MATCH if sc.given_password == sc.real_password else MISMATCH,
            "expected_code": "OK" if sc.outcome == "ok" else None,
            "note": "what happened inside TLS (read with keys kept out of the set)",
        }
    try:
        conns = tcp_connections(pcap)
        if conns:
            t["client_port"] = conns[0].client_port
    except Exception:  # noqa: BLE001 - the tests report a broken pcap themselves
        pass
    return t


# ----------------------------------------------------------------------------- running

ATTEMPTS = 3  # captures that lost packets ("dropped by kernel") are redone, at most this often


class LabCapture(NamedTuple):
    """What ``lab_run`` maps each scenario name to: ``pcap, truth, keylog = lab_run[name]``."""

    pcap: Path
    truth: dict
    keylog: Path | None


@dataclass
class ScenarioRun:
    scenario: Scenario
    pcap: Path
    keylog: Path | None
    truth: dict
    result: LoginResult | None
    capture: CaptureInfo | None
    lane: int
    seconds: float
    skipped: str | None = None  # why it did not run (e.g. no key-log shim)
    attempts: int = 1  # > 1: earlier captures lost packets and were redone

    def as_capture(self) -> LabCapture:
        return LabCapture(self.pcap, self.truth, self.keylog)


@dataclass
class LabRun:
    runs: dict[str, ScenarioRun] = field(default_factory=dict)
    outdir: Path | None = None
    seconds: float = 0.0
    keylog_shim: Path | None = None

    def captures(self) -> dict[str, LabCapture]:
        return {n: r.as_capture() for n, r in self.runs.items() if r.skipped is None}


def run_scenario(
    sc: Scenario,
    lab: MariaDBLab,
    outdir: Path,
    *,
    lane: int = 0,
    keylog_shim: Path | None = None,
    timeout: float = 10.0,
    pool: WorkerPool | None = None,
) -> ScenarioRun:
    host = LANE_HOSTS[lane % len(LANE_HOSTS)]
    srv = lab.servers[sc.server]
    pcap = outdir / f"{sc.name}.pcap"
    keylog = outdir / f"{sc.name}.keys" if sc.keylog else None
    for p in (pcap, keylog):
        if p is not None and p.exists():
            p.unlink()
    if sc.needs_keylog_shim and keylog_shim is None:
        reason = (
            f"{sc.name}: the key-log shim for libmariadb clients could not be built (gcc missing?); "
            "run scripts/lab_setup.sh"
        )
        return ScenarioRun(sc, pcap, keylog, {}, None, None, lane, 0.0, skipped=reason)
    cu = None
    if sc.change_user:
        acct = ACCOUNTS.get(sc.change_user["user"])
        pw = sc.change_user.get("password")
        cu = {
            "user": sc.change_user["user"],
            "password": pw if pw is not None else (acct.password if acct else ""),
            "database": sc.change_user.get("database"),
        }
    spec = LoginSpec(
        client=sc.client,
        host=host,
        port=srv.port,
        user=sc.user,
        password=sc.given_password,
        database=sc.database,
        tls=sc.tls,
        ca=str(lab.ca),
        compress=sc.compress,
        keylog=str(keylog) if keylog else None,
        keylog_shim=str(keylog_shim) if keylog_shim else None,
        change_user=cu,
        cli_args=list(sc.cli_args),
        timeout=timeout,
    )
    t0 = time.monotonic()
    if pool is not None:  # start the client's worker before the capture: not part of the login
        pool.warm(sc.client)
    attempts = 0
    while True:
        attempts += 1
        with capture(pcap, srv.port, host) as cap:
            result = login(spec, pool)
        if not cap.dropped or attempts >= ATTEMPTS:
            break
        # the kernel dropped packets for tcpdump (a starved machine): the capture is not the
        # whole conversation, so log in again under a fresh capture
        if keylog is not None and keylog.exists():
            keylog.unlink()
    seconds = time.monotonic() - t0
    truth = build_truth(sc, lab=lab, host=host, pcap=pcap, keylog=keylog, result=result)
    return ScenarioRun(sc, pcap, keylog, truth, result, cap, lane, seconds, attempts=attempts)


def run_all(
    lab: MariaDBLab,
    outdir: Path,
    scenarios: list[Scenario] | None = None,
    *,
    lanes: int | None = None,
    write_truth: bool = True,
    json_per_scenario: bool = True,
) -> LabRun:
    """Run every scenario once, ``lanes`` at a time (default: one per LANE_HOSTS address).

    Writes ``<name>.pcap`` (+ ``<name>.keys``) into ``outdir``, and with ``write_truth`` the truth:
    ``truth.jsonl`` (scenario order) and, with ``json_per_scenario``, ``<name>.json`` beside each pcap.
    """
    scenarios = list(SCENARIOS if scenarios is None else scenarios)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    lanes = max(1, min(lanes or len(LANE_HOSTS), len(LANE_HOSTS)))
    shim = build_keylog_shim(lab.base)
    run = LabRun(outdir=outdir, keylog_shim=shim)
    t0 = time.monotonic()
    lock = threading.Lock()

    def lane_worker(k: int) -> None:
        with WorkerPool(shim) as pool:
            for sc in scenarios[k::lanes]:
                r = run_scenario(sc, lab, outdir, lane=k, keylog_shim=shim, pool=pool)
                lane_done(sc, r)

    def lane_done(sc: Scenario, r: ScenarioRun) -> None:
        with lock:
            run.runs[sc.name] = r
        if write_truth and json_per_scenario and r.skipped is None:
            (outdir / f"{sc.name}.json").write_text(json.dumps(r.truth) + "\n")

    with ThreadPoolExecutor(lanes, thread_name_prefix="lab-lane") as ex:
        for f in [ex.submit(lane_worker, k) for k in range(lanes)]:
            f.result()
    run.seconds = time.monotonic() - t0
    run.runs = {sc.name: run.runs[sc.name] for sc in scenarios if sc.name in run.runs}
    if write_truth:
        with open(outdir / "truth.jsonl", "w") as f:
            for r in run.runs.values():
                if r.skipped is None:
                    f.write(json.dumps(r.truth) + "\n")
    return run


def lanes_from_env(default: int | None = None) -> int | None:
    v = os.environ.get("MYSQLWIRE_LAB_LANES")
    return int(v) if v and v.isdigit() else default


__all__ = [
    "SCENARIOS",
    "SCENARIO_BY_NAME",
    "LabCapture",
    "LabRun",
    "Scenario",
    "ScenarioRun",
    "build_truth",
    "run_all",
    "run_scenario",
]
