"""Scenarios of the lab's non-Python clients (``extclients.py``) against MariaDB and ``serve``.

Per client, against the lab's MariaDB (``mariadb.py`` accounts): native ok, wrong password, unknown
user, ed25519 (ok or plugin unsupported), PAM dialog (ok or unsupported), PAM's clear-text password
without TLS (sent, or refused client-side) and TLS (with a key log where the client can write one).
Against ``mysqlwire serve`` (our MySQL 8 connection phase, one in-process server per lane, the lab's
certificate): caching_sha2 fast auth, caching_sha2 full auth over plain TCP (RSA key request) and
inside TLS, sha256_password over plain TCP, and an auth switch to mysql_native_password.

The truth is the lab's knowledge: the account, the password given, the server's rules (what each
plugin exchange looks like, which cache state the test set before the login) and what the CLIENT
raised (a library that cannot answer a plugin says so itself). It is never read from mysqlwire's
dissector. ``client_says`` strings and client error codes were read off the clients' own errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from .extclients import EXT_CLIENTS, KEYLOG_CLIENTS
from .scenarios import (
    CLEAR,
    DIALOG,
    ED,
    MATCH,
    MISMATCH,
    NATIVE,
    UNVERIFIABLE,
    Scenario,
    denied,
    gave_up,
    wrong,
)

SHA2 = "caching_sha2_password"
SHA256 = "sha256_password"
SERVE_VERSION = "8.0.36-mysqlwire"
W = "Tr0ub4dor&4"  # app's password with the last character wrong


@dataclass(frozen=True)
class ExtScenario(Scenario):
    """A Scenario of an external client; ``serve_cache``: 'warm' / 'cold' before the login."""

    sends_empty_db: bool = False  # CLIENT_CONNECT_WITH_DB with "" when no database is given
    serve_cache: str | None = None
    auth_steps: tuple[int, ...] | None = None  # lengths of the client's auth answers (plain TCP)
    options: tuple[str, ...] = ()  # client options, "key=value"

    @property
    def sent_database(self) -> str | None:
        if self.database is None and self.sends_empty_db:
            return ""
        return self.database

    @property
    def real_password(self) -> str | None:
        if self.server == "serve":
            acct = SERVE_ACCOUNTS.get(self.user)
            return acct["password"] if acct else None
        return super().real_password

    @property
    def needs_keylog_shim(self) -> bool:
        return False  # ext_login passes the shim only to the clients that need it


# ------------------------------------------------------------------ serve's accounts
SERVE_ACCOUNTS = {
    "sha2": {"plugin": SHA2, "password": "Sha2-Pass-1", "databases": ["shop"]},
    "s256": {"plugin": SHA256, "password": "Sha256-Pass-4"},
    "nat": {"plugin": NATIVE, "password": "Native-Pass-2"},
}


def _pw(user: str) -> str:
    return SERVE_ACCOUNTS[user]["password"]


# ------------------------------------------------------------------ what each client can do
ED_OK = {"perl-mariadb", "perl-mysql", "ruby-mysql2", "connectorj"}
DIALOG_OK = {"perl-mariadb", "perl-mysql", "ruby-mysql2", "connectorj"}
CLEAR_SENT = {"php-pdo", "php-mysqli", "perl-mariadb", "perl-mysql", "ruby-mysql2"}
# what a client that cannot answer a switch says (its own error; code None: no number)
LACKS = {
    "go": ("this authentication plugin is not supported", None),
    "node-mysql2": ("Server requests authentication using unknown plugin", None),
    "php-pdo": ("The server requested authentication method unknown to the client", 2054),
    "php-mysqli": ("The server requested authentication method unknown to the client", 2054),
}
CLEAR_REFUSED = {
    "go": ("allowCleartextPasswords", None, "CLEARTEXT_NOT_ENABLED"),
    "node-mysql2": (
        "mysql_clear_password, which sends the password in plaintext",
        None,
        "CLEARTEXT_NOT_ENABLED",
    ),
    "connectorj": ("plugin that require SSL without enabling ssl", 1251, "CLEARTEXT_NOT_ENABLED"),
}
# Connector/J needs useSsl + a CA; PERL DBD::mysql 4.050 on libmariadb refuses mysql_ssl=1 unless
# mysql_ssl_optional=1 ("Enforcing SSL encryption is not supported")
TLS_OPTIONS = {"perl-mysql": ("mysql_ssl_optional=1",)}
# the opt-in that makes a client send mysql_clear_password (checked over TLS: the fix works)
CLEAR_OPT_IN = {"go": "allowCleartextPasswords=true", "node-mysql2": "enableCleartextPlugin=true"}
# the opt-in that makes a client fetch the server's RSA key (checked: the fix works)
KEY_OPT_IN = {
    "connectorj": "allowPublicKeyRetrieval=true",
    "node-mysql2": "allowPublicKeyRetrieval=true",
}
# clients that do not fetch the server's RSA key unless told to: (what they say, option)
NO_KEY_FETCH = {
    "connectorj": ("RSA public key is not available client side", "allowPublicKeyRetrieval=true"),
    "node-mysql2": ("needs the server's RSA public key", "authPlugins / ssl"),
}
# Connector/J 2.7 always starts with mysql_native_password (a 20-byte proof), whatever the greeting
# names: on a caching_sha2 server it is switched to caching_sha2_password
NATIVE_FIRST = {"connectorj"}


# node's mysql and mysql2 set CLIENT_CONNECT_WITH_DB and send "" when no database is given
EMPTY_DB = {"node-mysql", "node-mysql2"}
# node's mysql 2.18 does not set CLIENT_PLUGIN_AUTH: no plugin name in its response, and a server
# cannot switch it to another plugin (ERR 1251 instead)
NO_PLUGIN_AUTH = {"node-mysql"}


def too_old(product: str) -> dict:
    """ERR 1251: the account's plugin needs a switch the client's capabilities rule out."""
    msg = (
        "Client does not support authentication protocol requested by server; "
        f"consider upgrading {product} client"
    )
    return dict(
        connected=False,
        client_code=1251,
        client_says=msg,
        outcome="error",
        error_code=1251,
        sqlstate="08004",
        error_message=msg,
        code="CLIENT_PROTOCOL_TOO_OLD",
        notes="the client sets no CLIENT_PLUGIN_AUTH: the server answers ERR 1251 at once",
    )


def mariadb_scenarios(client: str) -> list[ExtScenario]:
    c = client.replace("-", "_")

    def S(*a, **kw) -> ExtScenario:
        kw.setdefault("sends_empty_db", client in EMPTY_DB)
        if client in NO_PLUGIN_AUTH and kw.get("plugin_client", NATIVE) == NATIVE:
            kw["plugin_client"] = None
        return ExtScenario(*a, **kw)

    if client in NO_PLUGIN_AUTH:
        return [
            S(f"{c}_native_ok", client, "app", database="shop"),
            S(f"{c}_native_wrong", client, "app", W, **wrong("app")),
            S(
                f"{c}_unknown_user",
                client,
                "ghost",
                "whatever",
                account_password=None,
                **dict(denied("ghost"), code="ACCESS_DENIED"),
                other_codes=("VALID_PROOF_REJECTED",),
            ),
            S(f"{c}_ed25519", client, "edu", **too_old("MariaDB")),
            S(f"{c}_pam_dialog", client, "pamdlg", **too_old("MariaDB")),
            S(f"{c}_pam_clear", client, "pamclr", server="pamclear", **too_old("MariaDB")),
            S(f"{c}_tls_keylog_ok", client, "secure", database="shop", tls="on", keylog=True),
        ]
    out = [
        S(f"{c}_native_ok", client, "app", database="shop"),
        S(f"{c}_native_wrong", client, "app", W, **wrong("app")),
        S(
            f"{c}_unknown_user",
            client,
            "ghost",
            "whatever",
            account_password=None,
            **dict(denied("ghost"), code="ACCESS_DENIED"),
            other_codes=("VALID_PROOF_REJECTED",),
        ),
    ]
    says, code = LACKS.get(client, ("", None))
    if client in ED_OK:
        out.append(S(f"{c}_ed25519_ok", client, "edu", switches=(ED,), code="PLUGIN_SWITCH"))
    else:
        out.append(
            S(
                f"{c}_ed25519",
                client,
                "edu",
                switches=(ED,),
                **gave_up(says, "CLIENT_LACKS_PLUGIN", code),
                notes=f"{client} has no client_ed25519: it closes the connection after the switch",
            )
        )
    if client in DIALOG_OK:
        out.append(
            S(
                f"{c}_pam_dialog_ok",
                client,
                "pamdlg",
                switches=(DIALOG,),
                code="CLEARTEXT_WITHOUT_TLS",
                other_codes=("PLUGIN_SWITCH",),
                notes="MariaDB's PAM switch to dialog: the password goes in clear text",
            )
        )
    else:
        out.append(
            S(
                f"{c}_pam_dialog",
                client,
                "pamdlg",
                switches=(DIALOG,),
                **gave_up(says, "CLIENT_LACKS_PLUGIN", code),
                notes=f"{client} cannot speak PAM's dialog plugin",
            )
        )
    if client in CLEAR_SENT:
        out.append(
            S(
                f"{c}_pam_clear_no_tls",
                client,
                "pamclr",
                server="pamclear",
                switches=(CLEAR,),
                code="CLEARTEXT_WITHOUT_TLS",
                other_codes=("PLUGIN_SWITCH",),
                notes=f"{client} answers mysql_clear_password without any opt-in, over plain TCP",
            )
        )
    else:
        csays, ccode, ecode = CLEAR_REFUSED[client]
        out.append(
            S(
                f"{c}_pam_clear_refused",
                client,
                "pamclr",
                server="pamclear",
                switches=(CLEAR,),
                **gave_up(csays, ecode, ccode),
                other_codes=("PLUGIN_SWITCH",),
                notes=f"{client} does not send a clear-text password without TLS (or an opt-in)",
            )
        )
    if client in CLEAR_OPT_IN:
        out.append(
            S(
                f"{c}_pam_clear_optin_tls_ok",
                client,
                "pamclr",
                server="pamclear",
                tls="on",
                keylog=True,
                switches=(CLEAR,),
                options=(CLEAR_OPT_IN[client],),
                code="PLUGIN_SWITCH",
                notes=f"the fix for the refusal above: {CLEAR_OPT_IN[client]}, over TLS",
            )
        )
    if client == "php-mysqli":  # COM_CHANGE_USER (mysqli::change_user; PDO has none)
        out += [
            S(
                f"{c}_change_user_ok",
                client,
                "app",
                change_user={"user": "reporter", "database": "shop", "switches": [NATIVE]},
                notes="login as app, then COM_CHANGE_USER to reporter (MariaDB switches mysqlnd's "
                "change-user to mysql_native_password)",
            ),
            S(
                f"{c}_change_user_wrong",
                client,
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
                notes="COM_CHANGE_USER to reporter with a wrong password: 1045 (the login is OK)",
            ),
            S(
                f"{c}_change_user_ed25519",
                client,
                "app",
                change_user={
                    "user": "edu",
                    "database": None,
                    "switches": [ED],
                    "outcome": "incomplete",
                    "client_code": 2054,
                    "client_says": "authentication method unknown to the client [client_ed25519]",
                    "error_code": 1156,
                    "sqlstate": "08S01",
                    "error_message": "Got packets out of order",
                    "expected_code": "CLIENT_LACKS_PLUGIN",
                },
                code="CLIENT_LACKS_PLUGIN",
                notes="COM_CHANGE_USER to an ed25519 account: mysqlnd cannot answer the switch, "
                "sends COM_QUIT where the server expects the auth answer, and the server replies "
                "ERR 1156 'Got packets out of order'",
            ),
        ]
    opts = TLS_OPTIONS.get(client, ())
    if client in KEYLOG_CLIENTS:
        out.append(
            S(
                f"{c}_tls_keylog_ok",
                client,
                "secure",
                database="shop",
                tls="on",
                keylog=True,
                options=opts,
            )
        )
    else:
        out.append(
            S(
                f"{c}_tls_nokeys",
                client,
                "secure",
                database="shop",
                tls="on",
                verdict=UNVERIFIABLE,
                verdict_client=UNVERIFIABLE,
                code="ENCRYPTED_NO_KEYS",
                options=opts,
                notes="no TLS key log: JSSE cannot write one (no SSLKEYLOGFILE, no hook) "
                "without a third-party agent",
            )
        )
    return out


def serve_scenarios(client: str) -> list[ExtScenario]:
    c = client.replace("-", "_")
    base = dict(server="serve", plugin_client=SHA2, sends_empty_db=client in EMPTY_DB)
    S = ExtScenario
    if client in NO_PLUGIN_AUTH:
        return [
            S(
                f"{c}_serve_sha2",
                client,
                "sha2",
                _pw("sha2"),
                serve_cache="warm",
                **dict(base, plugin_client=None),
                auth_steps=(20,),
                **too_old("MySQL"),
            ),
            S(
                f"{c}_serve_native_ok",
                client,
                "nat",
                _pw("nat"),
                **dict(base, plugin_client=None),
                auth_steps=(20,),
                notes="native account: node mysql's native proof in the response is accepted",
            ),
        ]
    first = NATIVE if client in NATIVE_FIRST else SHA2
    sha2_switch = (SHA2,) if first == NATIVE else ()
    head = (20,) if first == NATIVE else ()
    base["plugin_client"] = first
    tls_keys = client in KEYLOG_CLIENTS
    out = [
        S(
            f"{c}_serve_sha2_fast_ok",
            client,
            "sha2",
            _pw("sha2"),
            serve_cache="warm",
            switches=sha2_switch,
            auth_steps=(*head, 32),
            code="PLUGIN_SWITCH" if sha2_switch else "OK",
            **base,
            notes="caching_sha2 fast auth: the cache is warm, 0x01 0x03 then OK",
        ),
        S(
            f"{c}_serve_sha2_full_tls_ok",
            client,
            "sha2",
            _pw("sha2"),
            serve_cache="cold",
            tls="on",
            keylog=tls_keys,
            switches=sha2_switch,
            options=TLS_OPTIONS.get(client, ()),
            **base,
            **(
                dict(code="PLUGIN_SWITCH" if sha2_switch else "OK")
                if tls_keys
                else dict(
                    verdict=UNVERIFIABLE, verdict_client=UNVERIFIABLE, code="ENCRYPTED_NO_KEYS"
                )
            ),
            notes="caching_sha2 full auth inside TLS: the password goes in clear inside TLS",
        ),
        S(
            f"{c}_serve_switch_native_ok",
            client,
            "nat",
            _pw("nat"),
            switches=() if first == NATIVE else (NATIVE,),
            auth_steps=(20,) if first == NATIVE else (32, 20),
            code="OK" if first == NATIVE else "PLUGIN_SWITCH",
            **base,
            notes="native account, caching_sha2 greeting: AuthSwitchRequest to "
            "mysql_native_password (none for a client that starts with a native proof)",
        ),
    ]
    wrong_sha2 = dict(
        denied("sha2"),
        verdict=MISMATCH,
        verdict_client=MATCH,
        code="WRONG_PASSWORD",
    )
    if client in NO_KEY_FETCH:
        says, option = NO_KEY_FETCH[client]
        out.append(
            S(
                f"{c}_serve_sha2_wrong_no_key",
                client,
                "sha2",
                "Sha2-Pass-X",
                serve_cache="warm",
                switches=sha2_switch,
                auth_steps=(*head, 32),
                **base,
                **gave_up(says, "WRONG_PASSWORD"),
                verdict=MISMATCH,
                verdict_client=MATCH,
                notes="a wrong password: the scramble misses the warm cache, the server asks for "
                f"full authentication and {client} (no RSA key without {option}) gives up; "
                "the cause is the password, not the missing key",
            )
        )
        out.append(
            S(
                f"{c}_serve_sha256_refused",
                client,
                "s256",
                _pw("s256"),
                switches=(SHA256,),
                auth_steps=(20 if first == NATIVE else 32,),
                **base,
                **gave_up(says, "SECURE_CHANNEL_REQUIRED"),
                notes=f"sha256_password without TLS: {client} does not ask for the server's RSA "
                f"key unless told to ({option})",
            )
        )
        out.append(
            S(
                f"{c}_serve_sha2_full_rsa_refused",
                client,
                "sha2",
                _pw("sha2"),
                serve_cache="cold",
                switches=sha2_switch,
                auth_steps=(*head, 32),
                **base,
                **gave_up(says, "SECURE_CHANNEL_REQUIRED"),
                notes=f"full auth without TLS: {client} does not ask for the server's RSA key "
                f"unless told to ({option})",
            )
        )
        out.append(
            S(
                f"{c}_serve_sha2_full_rsa_optin_ok",
                client,
                "sha2",
                _pw("sha2"),
                serve_cache="cold",
                switches=sha2_switch,
                auth_steps=(*head, 32, 1, 256),
                options=(KEY_OPT_IN[client],),
                code="PLUGIN_SWITCH" if sha2_switch else "OK",
                **base,
                notes=f"the fix for the refusal above: {KEY_OPT_IN[client]} (the client asks for "
                "the RSA key, 0x02, and sends the password RSA-encrypted)",
            )
        )
    else:
        out.append(
            S(
                f"{c}_serve_sha2_wrong",
                client,
                "sha2",
                "Sha2-Pass-X",
                serve_cache="warm",
                switches=sha2_switch,
                auth_steps=(*head, 32, 1, 256),
                **base,
                **wrong_sha2,
                notes="a wrong password: the scramble misses the warm cache, full authentication "
                "with the RSA key, then ERR 1045",
            )
        )
        out.append(
            S(
                f"{c}_serve_sha256_rsa_ok",
                client,
                "s256",
                _pw("s256"),
                switches=(SHA256,),
                auth_steps=(20 if first == NATIVE else 32, 1, 256),
                code="PLUGIN_SWITCH",
                **base,
                notes="sha256_password over plain TCP: switch, the client asks for the RSA key "
                "(0x01) and sends the password RSA-encrypted",
            )
        )
        out.append(
            S(
                f"{c}_serve_sha2_full_rsa_ok",
                client,
                "sha2",
                _pw("sha2"),
                serve_cache="cold",
                switches=sha2_switch,
                auth_steps=(*head, 32, 1, 256),
                code="PLUGIN_SWITCH" if sha2_switch else "OK",
                **base,
                notes="caching_sha2 full auth over plain TCP: the client asks for the RSA key "
                "(0x02) and sends the password RSA-encrypted (256 bytes)",
            )
        )
    return out


EXT_SCENARIOS: list[ExtScenario] = [
    sc for client in EXT_CLIENTS for sc in mariadb_scenarios(client) + serve_scenarios(client)
]
EXT_BY_NAME = {s.name: s for s in EXT_SCENARIOS}
assert len(EXT_BY_NAME) == len(EXT_SCENARIOS), "duplicate scenario names"
