"""Each rule on hand-built connections: a case where it must fire (and be the
root cause when it is an error), and a near miss where it must not.

The connections are built the way dissect builds them (steps with sender,
kind, seq, plugin and plugin data); replay verdicts are given as dicts when a
rule depends on one, so these tests check the rules, not replay.
"""

from __future__ import annotations

import json

import pytest

from mysqlwire.auth.native import scramble
from mysqlwire.diagnose import RULES, diagnose_connection, diagnose_connections, has_problem
from mysqlwire.diagnose.fingerprint import PYMYSQL_CAPS_07, PYMYSQL_CAPS_09, SSL
from mysqlwire.model import AuthStep, Connection, Exchange
from mysqlwire.replay import Secrets

MYSQL8 = "8.0.36"
MARIADB = "5.5.5-10.11.19-MariaDB-0+deb12u1"
SERVER_CAPS = 0xDFFFFFFF  # MySQL 8 offers everything incl. CLIENT_SSL
NONCE = bytes(range(1, 21))
PYMYSQL_ATTRS = {"_client_name": "pymysql", "_client_version": "1.2.4", "_pid": "1"}
CONNECTOR_ATTRS = {
    "_client_name": "mysql-connector-python",
    "_client_version": "26.10.0",
    "_pid": "1",
}
LIBMYSQL_ATTRS = {"_client_name": "libmysql", "_client_version": "8.0.36", "program_name": "mysql"}
LIBMARIADB_ATTRS = {
    "_client_name": "libmariadb",
    "_client_version": "3.3.20",
    "program_name": "mysql",
}
PEM = b"-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----\n"


def C(kind, data, plugin=None, seq=None, in_tls=False):
    return AuthStep("client", kind, seq, plugin, data, 0.0, in_tls)


def S(kind, data=b"", plugin=None, seq=None, in_tls=False):
    return AuthStep("server", kind, seq, plugin, data, 0.0, in_tls)


def err(code, message, sqlstate="28000"):
    return {"code": code, "sqlstate": sqlstate, "message": message}


def make(
    steps=None,
    *,
    version=MYSQL8,
    greeting_plugin="caching_sha2_password",
    user="app",
    client_plugin=None,
    outcome="incomplete",
    error=None,
    attrs=PYMYSQL_ATTRS,
    caps=PYMYSQL_CAPS_09,
    maxp=0xFFFFFF,
    tls=False,
    tls_info=None,
    closed="fin",
    server_caps=SERVER_CAPS,
    charset=255,
    login=True,
) -> Connection:
    c = Connection(id=0, client="10.0.0.5:40000", server="10.0.0.9:3306")
    c.greeting_seen = True
    c.protocol_version = 10
    c.server_version = version
    c.server_capabilities = server_caps
    c.greeting_plugin = greeting_plugin
    c.greeting_nonce = NONCE
    c.character_set = charset
    c.closed_by = closed
    c.tls = tls
    c.tls_info = dict(
        tls_info
        or ({"tls_version": "TLS 1.3", "decrypted": True, "tls_status": "ok"} if tls else {})
    )
    if login:
        c.client_capabilities = caps | (SSL if tls else 0)
        c.max_packet_size = maxp
        c.connect_attrs = attrs
        c.client_character_set = 45
        ex = Exchange(
            kind="login",
            nonce=NONCE,
            user=user,
            client_plugin=client_plugin or greeting_plugin,
            steps=list(steps or []),
            outcome=outcome,
            error=error,
            tls=tls,
        )
        c.exchanges.append(ex)
    return c


def codes(conn, secrets=None):
    return [f.code for f in diagnose_connection(conn, secrets)]


def top(conn, secrets=None):
    found = diagnose_connection(conn, secrets)
    return found[0].code if found else None


def denied(user="app", host="10.0.0.5", pw="YES"):
    return err(1045, f"Access denied for user '{user}'@'{host}' (using password: {pw})")


def resp(data=b"\x11" * 32, plugin="caching_sha2_password", seq=1, in_tls=False):
    return C("handshake_response", data, plugin, seq, in_tls)


def verdict(code, detail=None, steps=None, disagrees=False):
    return {
        "verdict": code,
        "verdict_detail": detail,
        "matched_candidate": None,
        "server_disagrees": disagrees,
        "steps": steps or [],
    }


# --------------------------------------------------------- refused early
def pre_greeting(code, message):
    c = Connection(id=0, client="10.0.0.5:40000", server="10.0.0.9:3306")
    c.closed_by = "fin"
    c.extra["pre_greeting_error"] = {"code": code, "sqlstate": None, "message": message}
    return c


@pytest.mark.parametrize(
    "code, message, expected",
    [
        (
            1130,
            "Host '10.0.0.5' is not allowed to connect to this MySQL server",
            "HOST_NOT_ALLOWED",
        ),
        (
            1129,
            "Host '10.0.0.5' is blocked because of many connection errors; unblock with 'mysqladmin flush-hosts'",
            "HOST_BLOCKED",
        ),
        (1040, "Too many connections", "TOO_MANY_CONNECTIONS"),
        (1053, "Server shutdown in progress", "SERVER_SHUTDOWN"),
    ],
)
def test_errors_instead_of_greeting(code, message, expected):
    c = pre_greeting(code, message)
    found = diagnose_connection(c)
    assert [f.code for f in found] == [expected]
    assert found[0].severity == "error"
    assert f"ERR {code} in place of the greeting" in found[0].evidence
    if expected.startswith("HOST_"):
        assert "10.0.0.5" in found[0].title


def test_host_not_allowed_names_the_host_and_mariadb():
    c = pre_greeting(1130, "Host '127.0.0.1' is not allowed to connect to this MariaDB server")
    (f,) = diagnose_connection(c)
    assert (
        f.title
        == "the MariaDB server refuses connections from host '127.0.0.1': no account matches that host"
    )
    assert "CREATE USER '<user>'@'127.0.0.1'" in f.fix


def after_auth_error(code, message, sqlstate="HY000", **kw):
    return make(
        [resp(), S("auth_more_data", b"\x03", seq=2), S("err", seq=3)],
        outcome="error",
        error=err(code, message, sqlstate),
        **kw,
    )


@pytest.mark.parametrize(
    "code, message, expected",
    [
        (
            1203,
            "User app already has more than 'max_user_connections' active connections",
            "MAX_USER_CONNECTIONS",
        ),
        (
            1226,
            "User 'app' has exceeded the 'max_connections_per_hour' resource (current value: 10)",
            "USER_RESOURCE_LIMIT",
        ),
        (3032, "The server is currently in offline mode", "SERVER_OFFLINE"),
        (1043, "Bad handshake", "BAD_HANDSHAKE"),
        (3118, "Access denied for user 'app'@'10.0.0.5'. Account is locked.", "ACCOUNT_LOCKED"),
        (4151, "Access denied, this account is locked", "ACCOUNT_LOCKED"),
        (
            3955,
            "Access denied for user 'app'@'10.0.0.5'. Account is blocked for 1 day(s) (1 day(s) remaining) due to 3 consecutive failed logins.",
            "ACCOUNT_BLOCKED_FAILED_LOGINS",
        ),
        (
            1862,
            "Your password has expired. To log in you must change it using a client that supports expired passwords.",
            "PASSWORD_EXPIRED",
        ),
        (1698, "Access denied for user 'root'@'localhost'", "UNIX_SOCKET_ACCOUNT"),
        (1049, "Unknown database 'shopp'", "UNKNOWN_DATABASE"),
        (1044, "Access denied for user 'app'@'10.0.0.5' to database 'hr'", "DB_ACCESS_DENIED"),
        (1524, "Plugin 'mysql_native_password' is not loaded", "PLUGIN_NOT_LOADED"),
        (
            3159,
            "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
            "TLS_REQUIRED",
        ),
        (
            1251,
            "Client does not support authentication protocol requested by server; consider upgrading MySQL client",
            "CLIENT_PROTOCOL_TOO_OLD",
        ),
        (
            1275,
            "Server is running in --secure-auth mode, but 'old'@'%' has a password in the old format; please change the password to the new format",
            "OLD_PASSWORD_REFUSED",
        ),
        (9999, "Something new", "SERVER_REFUSED"),
    ],
)
def test_error_code_rules(code, message, expected):
    c = after_auth_error(code, message)
    found = diagnose_connection(c)
    assert found[0].code == expected, [f.code for f in found]
    assert f"ERR {code}" in found[0].evidence
    assert "MySQL 8.0.36" in found[0].title or "{" not in found[0].title


def test_error_code_rules_do_not_fire_on_success():
    c = make([resp(), S("auth_more_data", b"\x03", seq=2), S("ok", seq=3)], outcome="ok")
    found = codes(c)
    assert not any(RULES_BY_SEV[x] == "error" for x in found), found


RULES_BY_SEV = {r.code: r.severity for r in RULES}


def test_account_locked_uses_the_account_from_the_message():
    c = after_auth_error(3118, "Access denied for user 'app'@'10.0.0.5'. Account is locked.")
    f = diagnose_connection(c)[0]
    assert "'app'@'10.0.0.5'" in f.title and "ACCOUNT UNLOCK" in f.fix


def test_password_expired_refused_notes_missing_capability():
    c = after_auth_error(1862, "Your password has expired.")
    f = diagnose_connection(c)[0]
    assert "CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS" in f.evidence and f.severity == "error"


def test_password_expired_sandbox_is_a_warning_on_a_successful_login():
    c = make([resp(), S("auth_more_data", b"\x03", seq=2), S("ok", seq=3)], outcome="ok")
    c.command_error = err(
        1820,
        "You must reset your password using ALTER USER statement before executing this statement.",
        "HY000",
    )
    found = diagnose_connection(c)
    assert found[0].code == "PASSWORD_EXPIRED" and found[0].severity == "warning"
    assert "1820" in found[0].evidence and "sandbox" in found[0].title
    # negative: another command error is not an expired password
    c.command_error = err(1146, "Table 'x.y' doesn't exist", "42S02")
    assert "PASSWORD_EXPIRED" not in codes(c)


# ------------------------------------------------------------- passwords
def native_login(data=b"\x22" * 20, error=None, outcome="error", **kw):
    kw.setdefault("version", MARIADB)
    kw.setdefault("greeting_plugin", "mysql_native_password")
    kw.setdefault("charset", 8)
    kw.setdefault("server_caps", 0xFFFFF7FE)
    steps = [resp(data, "mysql_native_password"), S("err" if outcome == "error" else "ok", seq=2)]
    return make(
        steps,
        outcome=outcome,
        error=error if error is not None else (denied() if outcome == "error" else None),
        **kw,
    )


def test_access_denied_without_password():
    c = native_login()
    found = diagnose_connection(c)
    assert found[0].code == "ACCESS_DENIED"
    assert "no password was given" in found[0].evidence
    assert found[0].title == "MariaDB 10.11.19 denied access to 'app'@'10.0.0.5'"


def test_access_denied_not_when_login_ok():
    assert "ACCESS_DENIED" not in codes(native_login(outcome="ok"))


def test_wrong_password_needs_a_mismatch():
    c = native_login()
    c.extra["verdict"] = verdict(
        "PROOF_MISMATCH",
        "step 1",
        [
            {
                "step": 0,
                "kind": "handshake_response",
                "plugin": "mysql_native_password",
                "length": 20,
                "result": "mismatch",
            }
        ],
    )
    found = diagnose_connection(c)
    assert found[0].code == "WRONG_PASSWORD"
    assert "ACCESS_DENIED" not in [f.code for f in found]
    assert found[0].evidence.startswith(
        "client packet seq 1: HandshakeResponse, 20-byte mysql_native_password proof is not what"
    )
    # negative: a mismatch on a login the server accepted is not a failed login
    ok = native_login(outcome="ok")
    ok.extra["verdict"] = verdict("PROOF_MISMATCH", "step 1", disagrees=True)
    assert "WRONG_PASSWORD" not in codes(ok)


def test_wrong_password_with_real_replay():
    from mysqlwire.auth.native import scramble

    proof = scramble(b"secret", NONCE)
    c = native_login(data=proof)
    assert top(c, Secrets(password=b"not-secret")) == "WRONG_PASSWORD"
    c2 = native_login(data=proof)
    assert top(c2, Secrets(password=b"secret")) == "ACCESS_DENIED"
    assert "VALID_PROOF_REJECTED" in [f.code for f in diagnose_connection(c2)]


def test_empty_password_needs_the_account_password():
    # from the wire alone: no password was sent, but whether the account needs
    # one (or exists) is unknown: ACCESS_DENIED, saying so
    c = native_login(data=b"", error=denied(pw="NO"))
    found = diagnose_connection(c)
    assert found[0].code == "ACCESS_DENIED"
    assert "sent no password at all" in found[0].evidence
    # given the account's password, replay says the client sent none
    c = native_login(data=b"", error=denied(pw="NO"))
    found = diagnose_connection(c, Secrets(password=b"the-real-one"))
    assert c.extra["verdict"]["verdict"] == "EMPTY_PASSWORD_SENT"
    assert found[0].code == "EMPTY_PASSWORD"
    assert "empty auth response" in found[0].evidence
    # negative: 'using password: YES' with a non-empty proof
    assert "EMPTY_PASSWORD" not in codes(native_login(), Secrets(password=b"x"))


def test_empty_password_signed_with_ed25519():
    # libmariadb/PyMySQL sign the EMPTY password with client_ed25519 (64 bytes,
    # 'using password: YES'): replaying with '' proves it
    from mysqlwire.auth import get_plugin

    nonce32 = bytes(range(100, 132))
    sig = get_plugin("client_ed25519").client_response(b"", nonce32)
    steps = [
        resp(b"", "mysql_native_password"),
        S("auth_switch_request", nonce32, "client_ed25519", seq=2),
        C("auth_data", sig, "client_ed25519", 3),
        S("err", seq=4),
    ]
    c = make(
        steps,
        version=MARIADB,
        greeting_plugin="mysql_native_password",
        outcome="error",
        error=denied("edu"),
    )
    found = diagnose_connection(c, Secrets(password=b"ed-secret-42"))
    assert c.extra["verdict"]["verdict"] == "PROOF_MISMATCH"
    assert found[0].code == "EMPTY_PASSWORD", [f.code for f in found]
    assert "valid proof of the EMPTY password" in found[0].evidence
    assert "WRONG_PASSWORD" not in [f.code for f in found]
    # without a password: ACCESS_DENIED, noting the empty signature
    c = make(
        list(steps),
        version=MARIADB,
        greeting_plugin="mysql_native_password",
        outcome="error",
        error=denied("edu"),
    )
    f = diagnose_connection(c)[0]
    assert f.code == "ACCESS_DENIED" and "signature of the EMPTY password" in f.evidence
    # negative: a signature of another password is WRONG_PASSWORD
    sig2 = get_plugin("client_ed25519").client_response(b"ed-secret-43", nonce32)
    steps[2] = C("auth_data", sig2, "client_ed25519", 3)
    c = make(
        steps,
        version=MARIADB,
        greeting_plugin="mysql_native_password",
        outcome="error",
        error=denied("edu"),
    )
    assert top(c, Secrets(password=b"ed-secret-42")) == "WRONG_PASSWORD"


def test_empty_password_from_replay():
    c = native_login(data=b"", error=denied(pw="NO"))
    c.extra["verdict"] = verdict("EMPTY_PASSWORD_SENT")
    assert top(c) == "EMPTY_PASSWORD"


def test_valid_proof_rejected_is_one_ranked_access_denied():
    c = native_login()
    c.extra["verdict"] = verdict("PROOF_MATCHES", disagrees=True)
    found = diagnose_connection(c)
    codes = [f.code for f in found]
    # one cause (the wire cannot tell which), the valid proof as support
    assert codes[:2] == ["ACCESS_DENIED", "VALID_PROOF_REJECTED"], codes
    assert [f.severity for f in found[:2]] == ["error", "info"]
    ev = found[0].evidence
    assert "the wire cannot tell why" in ev
    assert ev.index("(1) no account 'app' matches") < ev.index("(2) the account the server matched")
    assert "SELECT user, host, plugin, ssl_type FROM mysql.user WHERE user = 'app'" in found[0].fix
    # the server does not offer TLS here: REQUIRE SSL is not even a hypothesis
    assert "REQUIRE SSL" not in ev
    # negative: the user gave the empty password and it was sent: EMPTY_PASSWORD
    c2 = native_login(data=b"", error=denied(pw="NO"))
    c2.extra["verdict"] = verdict("PROOF_MATCHES", "empty password")
    assert top(c2) == "EMPTY_PASSWORD"


def test_valid_proof_without_tls_is_not_tls_required_without_evidence():
    # #16: an unknown account, a host mismatch or another server-side password
    # is far more common than REQUIRE SSL, and on the wire they look the same
    c = native_login(server_caps=0xFFFFFFFE)  # the greeting offers CLIENT_SSL
    c.extra["verdict"] = verdict("PROOF_MATCHES", disagrees=True)
    found = diagnose_connection(c)
    codes = [f.code for f in found]
    assert codes[0] == "ACCESS_DENIED" and "TLS_REQUIRED" not in codes, codes
    assert [f.code for f in found if f.severity == "error"] == ["ACCESS_DENIED"]
    ev = found[0].evidence
    assert "(3) the account requires TLS (REQUIRE SSL/X509)" in ev, ev  # last, not first
    # over TLS, REQUIRE SSL is no hypothesis at all
    t = native_login(server_caps=0xFFFFFFFE, tls=True)
    t.extra["verdict"] = verdict("PROOF_MATCHES", disagrees=True)
    assert top(t) == "ACCESS_DENIED" and "REQUIRE SSL" not in diagnose_connection(t)[0].evidence


def test_fast_auth_success_then_err_is_tls_required():
    # MySQL 8 accepted the password (01 03) and then refused: an account
    # requirement checked after the password, i.e. REQUIRE SSL/X509
    steps = [
        C("handshake_response", bytes(32), "caching_sha2_password", 1),
        S("auth_more_data", b"\x03", seq=2),
        S("err", seq=3),
    ]
    c = make(steps, outcome="error", error=denied(), server_caps=SERVER_CAPS)
    found = diagnose_connection(c)  # no password needed
    assert found[0].code == "TLS_REQUIRED", [f.code for f in found]
    assert "fast_auth_success" in found[0].evidence
    assert "PyMySQL: ssl=" in found[0].fix  # phrased for the client library
    assert [f.code for f in found if f.severity == "error"] == ["TLS_REQUIRED"]
    # negative: 01 04 (full authentication) then ERR is not that evidence
    steps[1] = S("auth_more_data", b"\x04", seq=2)
    c2 = make(steps, outcome="error", error=denied(), server_caps=SERVER_CAPS)
    assert "TLS_REQUIRED" not in [f.code for f in diagnose_connection(c2)]


def test_3159_is_tls_required():
    c = native_login(
        error=err(3159, "Connections using insecure transport are prohibited", "HY000")
    )
    assert top(c) == "TLS_REQUIRED"


def test_nonce_misuse():
    c = native_login()
    c.extra["verdict"] = verdict(
        "NONCE_MISUSE", "step 1 (mysql_native_password, handshake_response)"
    )
    found = diagnose_connection(c)
    assert found[0].code == "NONCE_MISUSE"
    assert "WRONG_PASSWORD" not in [f.code for f in found]
    assert "NONCE_MISUSE" not in codes(native_login())


# --------------------------------------------------------------- plugins
def switched_and_left(plugin, data=b"\x33" * 32, **kw):
    steps = [
        resp(b"\x22" * 20, "mysql_native_password"),
        S("auth_switch_request", data, plugin, seq=2),
    ]
    kw.setdefault("version", MARIADB)
    kw.setdefault("greeting_plugin", "mysql_native_password")
    return make(steps, **kw)


def test_client_lacks_plugin_connector_ed25519():
    c = switched_and_left("client_ed25519", attrs=CONNECTOR_ATTRS, caps=0x3BA20D, maxp=1 << 30)
    found = diagnose_connection(c)
    assert found[0].code == "CLIENT_LACKS_PLUGIN"
    f = found[0]
    assert (
        f.title
        == "mysql-connector-python 26.10.0 (pure Python) cannot authenticate 'app' on MariaDB 10.11.19: the account uses client_ed25519"
    )
    assert f.evidence.startswith(
        "server packet seq 2: AuthSwitchRequest plugin 'client_ed25519' (32 bytes of plugin data); the client closed the connection (FIN) without answering"
    )
    assert "pip install mariadb" in f.fix
    assert "PLUGIN_SWITCH" not in [x.code for x in found]


def test_client_lacks_plugin_not_when_the_client_answers():
    c = switched_and_left("client_ed25519", attrs=CONNECTOR_ATTRS)
    c.login.steps.append(C("auth_data", b"\x44" * 64, "client_ed25519", 3))
    c.login.steps.append(S("ok", seq=4))
    c.login.outcome = "ok"
    assert "CLIENT_LACKS_PLUGIN" not in codes(c)
    assert top(c) == "PLUGIN_SWITCH"


def test_client_lacks_plugin_not_when_the_capture_just_ends():
    c = switched_and_left("client_ed25519", attrs=CONNECTOR_ATTRS, closed="end-of-capture")
    found = codes(c)
    assert "CLIENT_LACKS_PLUGIN" not in found
    assert found[0] == "CAPTURE_INCOMPLETE"


def test_client_lacks_plugin_unknown_client_still_explained():
    c = switched_and_left("authentication_fido_client", attrs=None, caps=0x000FA685, maxp=0)
    f = diagnose_connection(c)[0]
    assert f.code == "CLIENT_LACKS_PLUGIN" and "2059" in f.evidence


def test_client_lacks_plugin_old_pymysql_empty_response():
    # PyMySQL 0.7 on a caching_sha2 greeting: empty response labelled with the
    # greeting's plugin, 1045 (using password: NO)
    c = make(
        [resp(b"", "caching_sha2_password"), S("err", seq=2)],
        outcome="error",
        error=denied(pw="NO", host="localhost"),
        attrs=None,
        caps=PYMYSQL_CAPS_07,
        maxp=1,
        charset=45,
    )
    found = diagnose_connection(c)
    assert found[0].code == "CLIENT_LACKS_PLUGIN"
    assert "EMPTY_PASSWORD" not in [f.code for f in found]
    assert found[0].title.startswith(
        "PyMySQL < 0.8 cannot authenticate 'app'@'localhost' on MySQL 8.0.36"
    )
    assert "PyMySQL to >= 0.9" in found[0].fix
    # negative: a modern PyMySQL with an empty response really sent no password
    c2 = make(
        [resp(b"", "caching_sha2_password"), S("err", seq=2)],
        outcome="error",
        error=denied(pw="NO"),
    )
    assert top(c2, Secrets(password=b"pw")) == "EMPTY_PASSWORD"


def test_second_switch_refused():
    steps = [
        resp(b"\x22" * 20, "mysql_native_password"),
        S("auth_switch_request", b"\x33" * 32, "client_ed25519", seq=2),
        C("auth_data", b"\x44" * 64, "client_ed25519", 3),
        S("auth_switch_request", NONCE + b"\x00", "mysql_native_password", seq=4),
    ]
    c = make(steps, version=MARIADB, greeting_plugin="mysql_native_password")
    found = diagnose_connection(c)
    assert found[0].code == "SECOND_SWITCH_REFUSED", [f.code for f in found]
    assert "(client_ed25519 -> mysql_native_password)" in found[0].title
    assert {"CLIENT_LACKS_PLUGIN", "PLUGIN_SWITCH", "CLIENT_ABORTED_AUTH"}.isdisjoint(
        f.code for f in found
    )
    # negative: libmariadb follows every switch; if it still left, it is not this rule
    c2 = make(
        list(steps),
        version=MARIADB,
        greeting_plugin="mysql_native_password",
        attrs=LIBMARIADB_ATTRS,
    )
    assert "SECOND_SWITCH_REFUSED" not in codes(c2)


def test_old_password_refused_by_pymysql():
    steps = [
        resp(b"\x22" * 20, "mysql_native_password"),
        S("old_auth_switch_request", b"", "mysql_old_password", seq=2),
    ]
    c = make(steps, version=MARIADB, greeting_plugin="mysql_native_password")
    found = diagnose_connection(c)
    assert found[0].code == "OLD_PASSWORD_REFUSED"
    assert "received unknown auth switch request" in found[0].evidence
    assert "OLD_PASSWORD_IN_USE" in [f.code for f in found]
    assert "CLIENT_LACKS_PLUGIN" not in [f.code for f in found]
    # negative: the client answered the old switch and got in
    c.login.steps += [
        C("auth_data", b"\x55" * 8 + b"\x00", "mysql_old_password", 3),
        S("ok", seq=4),
    ]
    c.login.outcome = "ok"
    found = codes(c)
    assert "OLD_PASSWORD_REFUSED" not in found
    assert found[0] == "PLUGIN_SWITCH" and "OLD_PASSWORD_IN_USE" in found


def test_cleartext_not_enabled_switch_refused():
    c = switched_and_left(
        "mysql_clear_password",
        data=b"",
        attrs=LIBMYSQL_ATTRS,
        caps=0x000FA685,
        maxp=1 << 24,
        version=MYSQL8,
    )
    f = diagnose_connection(c)[0]
    assert f.code == "CLEARTEXT_NOT_ENABLED"
    assert "LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN" in f.fix
    c2 = switched_and_left("mysql_clear_password", data=b"", attrs=CONNECTOR_ATTRS)
    assert (
        "requires SSL" in diagnose_connection(c2)[0].fix
        or "only over TLS" in diagnose_connection(c2)[0].fix
    )


def test_cleartext_not_enabled_token_scrambled():
    # the RDS IAM story: the token went in as a native scramble; 1045
    c = native_login(version="8.0.36", greeting_plugin="mysql_native_password")
    c.extra["verdict"] = verdict("PROOF_MATCHES", disagrees=True)
    token = b"db.example:3306/?Action=connect&DBUser=app&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc"
    found = diagnose_connection(c, Secrets(password=token))
    assert found[0].code == "CLEARTEXT_NOT_ENABLED"
    assert "token-like" in found[0].evidence
    text = json.dumps([f.to_dict() for f in found])
    assert "X-Amz" not in text and "Action=connect" not in text
    # negative: an ordinary password is VALID_PROOF_REJECTED
    c2 = native_login(version="8.0.36", greeting_plugin="mysql_native_password")
    c2.extra["verdict"] = verdict("PROOF_MATCHES", disagrees=True)
    assert top(c2, Secrets(password=b"hunter2")) == "ACCESS_DENIED"


def test_dialog_unanswered():
    c = switched_and_left("dialog", data=b"\x04Password: ", attrs=LIBMARIADB_ATTRS, caps=0x00BFA284)
    found = diagnose_connection(c)
    assert found[0].code == "DIALOG_UNANSWERED"
    assert "question byte 0x04" in found[0].evidence
    assert "CLIENT_LACKS_PLUGIN" not in [f.code for f in found]
    c.login.steps += [C("auth_data", b"pw\x00", "dialog", 3), S("ok", seq=4)]
    c.login.outcome = "ok"
    found = codes(c)
    assert "DIALOG_UNANSWERED" not in found and found[0] == "CLEARTEXT_WITHOUT_TLS"


def test_dialog_without_the_plugin_is_client_lacks_plugin():
    # libmysqlclient has no dialog; PyMySQL dies on MariaDB's empty dialog switch
    c = switched_and_left("dialog", data=b"\x04Password: ", attrs=LIBMYSQL_ATTRS, caps=0x000FA685)
    assert codes(c)[0] == "CLIENT_LACKS_PLUGIN"
    c = switched_and_left("dialog", data=b"")
    f = diagnose_connection(c)[0]
    assert f.code == "CLIENT_LACKS_PLUGIN" and "IndexError" in f.evidence
    assert "pip install mariadb" in f.fix


def test_switch_answered_by_a_new_command_is_not_an_answer():
    # mysql-connector-python on COM_CHANGE_USER to an ed25519 account: it sends
    # COM_QUIT (seq 0) where the answer belongs; the server says 1156
    c = native_login(outcome="ok")
    cu = Exchange(
        kind="change_user",
        nonce=NONCE,
        user="edu",
        client_plugin="mysql_native_password",
        outcome="error",
        error=err(1156, "Got packets out of order", "08S01"),
    )
    cu.steps = [
        C("com_change_user", b"\x22" * 20, "mysql_native_password", 0),
        S("auth_switch_request", b"\x33" * 32, "client_ed25519", seq=1),
        C("auth_data", b"\x01", "client_ed25519", 0),
        S("err", seq=2),
    ]
    c.exchanges.append(cu)
    c.connect_attrs = CONNECTOR_ATTRS
    found = diagnose_connection(c)
    assert found[0].code == "CLIENT_LACKS_PLUGIN" and found[0].exchange == "COM_CHANGE_USER #1"
    assert "starts a new command" in found[0].evidence and "1156" in found[0].evidence
    assert "SERVER_REFUSED" not in [f.code for f in found]


def test_empty_answer_to_ed25519_means_the_plugin_did_not_load():
    steps = [
        resp(scramble(b"ed-secret-42", NONCE), "mysql_native_password"),
        S("auth_switch_request", b"\x33" * 32, "client_ed25519", seq=2),
        C("auth_data", b"", "client_ed25519", 3),
        S("err", seq=4),
    ]
    c = make(
        steps,
        version=MARIADB,
        greeting_plugin="mysql_native_password",
        attrs=LIBMARIADB_ATTRS,
        caps=0x00BFA284,
        outcome="error",
        error=denied("edu"),
    )
    found = diagnose_connection(c, Secrets(password=b"ed-secret-42"))
    assert found[0].code == "CLIENT_LACKS_PLUGIN", [f.code for f in found]
    assert "never empty" in found[0].evidence and "client_ed25519.so" in found[0].fix
    assert "EMPTY_PASSWORD" not in [f.code for f in found]
    # #16: a first proof that does not match the given password is the cause,
    # whatever follows; the missing plugin is listed under it
    steps[0] = resp(b"\x22" * 20, "mysql_native_password")
    c = make(
        steps,
        version=MARIADB,
        greeting_plugin="mysql_native_password",
        attrs=LIBMARIADB_ATTRS,
        caps=0x00BFA284,
        outcome="error",
        error=denied("edu"),
    )
    found = diagnose_connection(c, Secrets(password=b"ed-secret-42"))
    assert found[0].code == "WRONG_PASSWORD", [f.code for f in found]
    alt = [f for f in found if f.code == "CLIENT_LACKS_PLUGIN"]
    assert alt and alt[0].severity == "info" and alt[0].under == "WRONG_PASSWORD"
    assert [f.code for f in found if f.severity == "error"] == ["WRONG_PASSWORD"]


def sha2_full(*more, tls=False, **kw):
    steps = [
        resp(in_tls=tls, seq=2 if tls else 1),
        S("auth_more_data", b"\x04", seq=3 if tls else 2, in_tls=tls),
        *more,
    ]
    return make(steps, tls=tls, **kw)


def test_secure_channel_required_client_gives_up():
    c = sha2_full(attrs=LIBMYSQL_ATTRS, caps=0x000FA685)
    found = diagnose_connection(c)
    assert found[0].code == "SECURE_CHANNEL_REQUIRED"
    assert "2061" in found[0].evidence and "--get-server-public-key" in found[0].fix
    # negative: over TLS the same exchange waiting for the client is not this rule
    c2 = sha2_full(tls=True, attrs=LIBMYSQL_ATTRS, caps=0x000FA685)
    assert "SECURE_CHANNEL_REQUIRED" not in codes(c2)


def test_secure_channel_required_connector_sends_cleartext():
    # mysql-connector-python (pure) answers 01 04 with the password in clear
    c = sha2_full(
        C("auth_data", b"Secret-pw-1\x00", "caching_sha2_password", 3),
        S("err", seq=4),
        attrs=CONNECTOR_ATTRS,
        caps=0x3BA20D,
        maxp=1 << 30,
        outcome="error",
        error=denied(),
    )
    found = diagnose_connection(c)
    assert found[0].code == "SECURE_CHANNEL_REQUIRED"
    assert "use_pure=False" in found[0].fix
    assert "CLEARTEXT_WITHOUT_TLS" in [f.code for f in found]
    text = json.dumps([f.to_dict() for f in found])
    assert "Secret-pw-1" not in text and "12 bytes of clear text" in text


def test_rsa_encryption_unavailable():
    c = sha2_full(
        C("auth_data", b"\x02", "caching_sha2_password", 3), S("auth_more_data", PEM, seq=4)
    )
    found = diagnose_connection(c)
    assert found[0].code == "RSA_ENCRYPTION_UNAVAILABLE"
    assert "cryptography" in found[0].evidence and "PyMySQL[rsa]" in found[0].fix
    assert "RSA_KEY_FETCHED_INSECURELY" in [f.code for f in found]
    # negative: the client sent the ciphertext
    c.login.steps += [C("auth_data", b"\x66" * 256, "caching_sha2_password", 5), S("ok", seq=6)]
    c.login.outcome = "ok"
    found = codes(c)
    assert "RSA_ENCRYPTION_UNAVAILABLE" not in found and "SHA2_FULL_AUTH" in found


def test_client_aborted_auth_is_a_fallback():
    # the client leaves after fast_auth_success data arrives in an odd place
    c = make([resp(), S("auth_more_data", b"\x07", seq=2)])
    found = codes(c)
    assert found[0] == "CLIENT_ABORTED_AUTH"
    # with a real cause present, the fallback is dropped
    assert "CLIENT_ABORTED_AUTH" not in codes(
        switched_and_left("client_ed25519", attrs=CONNECTOR_ATTRS)
    )


def test_server_dropped_connection():
    c = make([resp()], closed="rst")
    assert top(c) == "SERVER_DROPPED_CONNECTION"
    c2 = make([resp()], closed="end-of-capture")
    assert "SERVER_DROPPED_CONNECTION" not in codes(c2)


def test_server_refused_is_a_fallback():
    assert "SERVER_REFUSED" not in codes(native_login())


# ------------------------------------------------------- greeting / TLS
def test_client_gave_up_on_greeting_collation_255():
    c = make(login=False, charset=255)
    f = diagnose_connection(c)[0]
    assert f.code == "CLIENT_GAVE_UP_ON_GREETING"
    assert "collation 255" in f.evidence and "PyMySQL <= 0.7" in f.fix
    # negative: the client answered
    assert "CLIENT_GAVE_UP_ON_GREETING" not in codes(make([resp()], outcome="ok"))


def test_tls_not_offered():
    c = make(login=False, server_caps=SERVER_CAPS & ~SSL, charset=45)
    found = codes(c)
    assert found[0] == "TLS_NOT_OFFERED" and "CLIENT_GAVE_UP_ON_GREETING" not in found
    assert "TLS_NOT_OFFERED" not in codes(make(login=False, charset=45))


def test_tls_required_by_capture_context():
    bad = native_login(version=MYSQL8, greeting_plugin="mysql_native_password")
    bad.extra["verdict"] = verdict("PROOF_MATCHES", disagrees=True)
    good = native_login(
        version=MYSQL8, greeting_plugin="mysql_native_password", outcome="ok", tls=True
    )
    good.id = 1
    diagnose_connections([bad, good])
    assert bad.extra["diagnosis"][0]["code"] == "TLS_REQUIRED"
    assert "logged in over TLS in another connection" in bad.extra["diagnosis"][0]["evidence"]
    # negative: alone, the same connection is the ranked ACCESS_DENIED
    alone = native_login(version=MYSQL8, greeting_plugin="mysql_native_password")
    alone.extra["verdict"] = verdict("PROOF_MATCHES", disagrees=True)
    assert top(alone) == "ACCESS_DENIED"


def test_tls_handshake_failed():
    c = make(
        login=False,
        tls=True,
        tls_info={"tls_version": None, "decrypted": False, "tls_status": "no-keys"},
    )
    c.client_capabilities = PYMYSQL_CAPS_09 | SSL
    found = codes(c)
    assert found[0] == "TLS_HANDSHAKE_FAILED" and "ENCRYPTED_NO_KEYS" not in found


def test_encrypted_no_keys():
    c = make(
        login=False,
        tls=True,
        tls_info={
            "tls_version": "TLS 1.3",
            "tls_cipher": "TLS_AES_256_GCM_SHA384",
            "decrypted": False,
            "tls_status": "no-keys",
        },
    )
    c.client_capabilities = PYMYSQL_CAPS_09 | SSL
    found = diagnose_connection(c)
    assert [f.code for f in found] == ["ENCRYPTED_NO_KEYS"]
    assert found[0].severity == "warning" and "SSLRequest" in found[0].evidence
    assert "ENCRYPTED_NO_KEYS" not in codes(
        make([resp(in_tls=True, seq=2)], tls=True, outcome="ok")
    )


def test_weak_tls_version():
    c = make(
        [resp(in_tls=True, seq=2), S("ok", seq=3, in_tls=True)],
        tls=True,
        outcome="ok",
        tls_info={"tls_version": "TLS 1.0", "decrypted": True, "tls_status": "ok"},
    )
    assert "WEAK_TLS_VERSION" in codes(c)
    c.tls_info["tls_version"] = "TLS 1.2"
    assert "WEAK_TLS_VERSION" not in codes(c)


def test_capture_incomplete_no_greeting():
    c = Connection(id=0, client="10.0.0.5:40000", server="10.0.0.9:3306")
    c.closed_by = "fin"
    assert codes(c) == ["CAPTURE_INCOMPLETE"]


# --------------------------------------------------------- info/security
def test_plugin_switch_info():
    c = make(
        [
            resp(),
            S("auth_switch_request", NONCE + b"\x00", "mysql_native_password", seq=2),
            C("auth_data", b"\x22" * 20, "mysql_native_password", 3),
            S("ok", seq=4),
        ],
        outcome="ok",
    )
    found = diagnose_connection(c)
    assert found[0].code == "PLUGIN_SWITCH" and found[0].severity == "info"
    assert "(caching_sha2_password -> mysql_native_password): 1 extra round trip" in found[0].title
    assert "PLUGIN_SWITCH" not in codes(
        make([resp(), S("auth_more_data", b"\x03", seq=2), S("ok", seq=3)], outcome="ok")
    )


def test_plugin_switch_not_for_mariadb_change_user_same_plugin():
    c = native_login(outcome="ok")
    cu = Exchange(
        kind="change_user",
        nonce=NONCE,
        user="reporter",
        client_plugin="mysql_native_password",
        outcome="ok",
    )
    cu.steps = [
        C("com_change_user", b"\x22" * 20, "mysql_native_password", 0),
        S("auth_switch_request", NONCE + b"\x00", "mysql_native_password", seq=1),
        C("auth_data", b"\x22" * 20, "mysql_native_password", 2),
        S("ok", seq=3),
    ]
    c.exchanges.append(cu)
    assert "PLUGIN_SWITCH" not in codes(c)


def test_change_user_failure_is_reported_for_that_exchange():
    c = native_login(outcome="ok")
    cu = Exchange(
        kind="change_user",
        nonce=NONCE,
        user="reporter",
        client_plugin="mysql_native_password",
        outcome="error",
        error=denied("reporter"),
    )
    cu.steps = [C("com_change_user", b"\x22" * 20, "mysql_native_password", 0), S("err", seq=1)]
    c.exchanges.append(cu)
    f = diagnose_connection(c)[0]
    assert f.code == "ACCESS_DENIED" and f.exchange == "COM_CHANGE_USER #1"
    assert f.title.startswith("COM_CHANGE_USER #1 (user 'reporter'):")


def test_sha2_full_auth_info():
    c = sha2_full(
        C("auth_data", b"pw\x00", "caching_sha2_password", 4, in_tls=True),
        S("ok", seq=5, in_tls=True),
        tls=True,
        outcome="ok",
    )
    found = diagnose_connection(c)
    assert [f.code for f in found] == ["SHA2_FULL_AUTH"]
    assert "over TLS" in found[0].evidence


def test_cleartext_without_tls_and_offline_crackable():
    c = switched_and_left("mysql_clear_password", data=b"", version=MYSQL8)
    c.login.steps += [C("auth_data", b"tok\x00", "mysql_clear_password", 3), S("ok", seq=4)]
    c.login.outcome = "ok"
    found = diagnose_connection(c)
    got = [f.code for f in found]
    # a leaked password outranks the switch, which outranks the guessable proof
    assert got == ["CLEARTEXT_WITHOUT_TLS", "PLUGIN_SWITCH", "OFFLINE_CRACKABLE_PROOF"], got
    clear = next(f for f in found if f.code == "CLEARTEXT_WITHOUT_TLS")
    assert (
        "4 bytes of clear text (mysql_clear_password)" in clear.evidence
        and "tok" not in clear.evidence
    )
    crack = next(f for f in found if f.code == "OFFLINE_CRACKABLE_PROOF")
    assert "SHA1" in crack.evidence
    # negative: inside TLS neither applies
    t = make(
        [
            resp(b"\x22" * 20, "mysql_native_password", 2, True),
            S("auth_switch_request", b"", "mysql_clear_password", 3, True),
            C("auth_data", b"tok\x00", "mysql_clear_password", 4, True),
            S("ok", seq=5, in_tls=True),
        ],
        tls=True,
        outcome="ok",
    )
    assert {"CLEARTEXT_WITHOUT_TLS", "OFFLINE_CRACKABLE_PROOF"}.isdisjoint(codes(t))


def test_offline_crackable_sha2_fast_cost():
    c = make([resp(), S("auth_more_data", b"\x03", seq=2), S("ok", seq=3)], outcome="ok")
    f = next(f for f in diagnose_connection(c) if f.code == "OFFLINE_CRACKABLE_PROOF")
    assert "SHA256" in f.evidence and f.severity == "security"
    # an empty proof gives nothing to crack
    e = make([resp(b""), S("ok", seq=2)], outcome="ok")
    assert "OFFLINE_CRACKABLE_PROOF" not in codes(e)


def test_rsa_key_fetched_insecurely_negative_under_tls():
    c = sha2_full(
        C("auth_data", b"\x02", "caching_sha2_password", 4, in_tls=True),
        S("auth_more_data", PEM, seq=5, in_tls=True),
        tls=True,
    )
    assert "RSA_KEY_FETCHED_INSECURELY" not in codes(c)


# ---------------------------------------------------------- the engine
def test_ranking_error_before_warning_then_info_and_security():
    c = switched_and_left("client_ed25519", attrs=CONNECTOR_ATTRS)
    found = diagnose_connection(c)
    order = {"error": 0, "warning": 1, "info": 2, "security": 2}
    assert [order[f.severity] for f in found] == sorted(order[f.severity] for f in found)


def test_to_dict_and_extra():
    c = native_login()
    found = diagnose_connection(c)
    assert set(found[0].to_dict()) == {"code", "severity", "title", "evidence", "fix"}
    assert c.extra["diagnosis"] == [f.to_dict() for f in found]
    assert c.extra["client_fingerprint"] == "PyMySQL 1.2.4"
    assert has_problem(c)


def test_no_template_placeholder_left():
    cases = [
        native_login(),
        switched_and_left("client_ed25519", attrs=CONNECTOR_ATTRS),
        make(login=False, charset=255),
        pre_greeting(1130, "Host 'h' is not allowed to connect to this MySQL server"),
    ]
    for c in cases:
        for f in diagnose_connection(c):
            for text in (f.title, f.fix, f.evidence):
                assert "{" not in text.replace("{'ca'", ""), (f.code, text)


def test_replay_runs_when_secrets_are_given():
    c = native_login()
    diagnose_connection(c, Secrets(password=b"x"))
    assert c.extra["verdict"]["verdict"] in ("PROOF_MISMATCH", "PROOF_MATCHES")


def test_every_rule_is_exercised_here():
    import inspect
    import sys

    src = inspect.getsource(sys.modules[__name__])
    missing = [r.code for r in RULES if f'"{r.code}"' not in src]
    assert not missing, missing


def test_secure_channel_required_connector_sha256_switch_without_tls():
    c = make(
        [resp(), S("auth_switch_request", NONCE + b"\x00", "sha256_password", seq=2)],
        attrs=CONNECTOR_ATTRS,
        caps=0x3BA20D,
        maxp=1 << 30,
    )
    found = diagnose_connection(c)
    assert found[0].code == "SECURE_CHANNEL_REQUIRED", [f.code for f in found]
    assert "only over TLS" in found[0].evidence
    # negative: PyMySQL does sha256 over RSA; leaving there is not this rule
    c2 = make([resp(), S("auth_switch_request", NONCE + b"\x00", "sha256_password", seq=2)])
    assert "SECURE_CHANNEL_REQUIRED" not in codes(c2)


# ------------------------------------------------------------ issue 16 wording
def _after_greeting_err(code, message):
    return native_login(error=err(code, message, "42000"))


def test_1226_max_user_connections_is_not_an_hourly_counter():
    c = _after_greeting_err(
        1226, "User 'app' has exceeded the 'max_user_connections' resource (current value: 2)"
    )
    (f,) = [x for x in diagnose_connection(c) if x.severity == "error"]
    assert f.code == "USER_RESOURCE_LIMIT" and "'max_user_connections' resource" in f.title
    assert "MAX_USER_CONNECTIONS n" in f.fix and "leaked" in f.fix
    assert "hour" not in f.fix
    c2 = _after_greeting_err(
        1226, "User 'app' has exceeded the 'max_questions' resource (current value: 100)"
    )
    (f2,) = [x for x in diagnose_connection(c2) if x.severity == "error"]
    assert "MAX_QUERIES_PER_HOUR n" in f2.fix and "FLUSH USER_RESOURCES" in f2.fix
    assert "MAX_USER_CONNECTIONS" not in f2.fix


def test_plugin_switch_never_says_the_login_works_on_a_failed_login():
    steps = [
        resp(b"\x22" * 20, "mysql_native_password"),
        S("auth_switch_request", b"\x33" * 32, "client_ed25519", seq=2),
        C("auth_data", b"\x44" * 64, "client_ed25519", 3),
        S("err", seq=4),
    ]
    failed = make(
        steps,
        version=MARIADB,
        greeting_plugin="mysql_native_password",
        outcome="error",
        error=denied(),
    )
    sw = [f for f in diagnose_connection(failed) if f.code == "PLUGIN_SWITCH"]
    assert sw and "the login works" not in sw[0].fix and "not why" in sw[0].fix
    steps[-1] = S("ok", seq=4)
    ok = make(steps, version=MARIADB, greeting_plugin="mysql_native_password", outcome="ok")
    sw = [f for f in diagnose_connection(ok) if f.code == "PLUGIN_SWITCH"]
    assert sw and sw[0].fix.startswith("the login works")


def test_sha2_full_auth_says_use_tls_only_without_tls():
    def full(tls):
        steps = [
            resp(b"\x11" * 32, in_tls=tls),
            S("auth_more_data", b"\x04", seq=2, in_tls=tls),
            C("auth_data", b"secret\x00", "caching_sha2_password", 3, in_tls=tls),
            S("ok", seq=4, in_tls=tls),
        ]
        return make(steps, outcome="ok", tls=tls)

    (plain,) = [f for f in diagnose_connection(full(False)) if f.code == "SHA2_FULL_AUTH"]
    (over_tls,) = [f for f in diagnose_connection(full(True)) if f.code == "SHA2_FULL_AUTH"]
    assert "use TLS" in plain.fix
    assert "TLS" not in over_tls.fix and "over TLS" in over_tls.evidence


def test_collation_255_crash_beats_tls_not_offered():
    # a MySQL 8 greeting without CLIENT_SSL and with collation 255, the client
    # leaves: PyMySQL <= 0.7's KeyError is far more common than a TLS demand
    c = make(login=False, server_caps=SERVER_CAPS & ~SSL, charset=255)
    found = diagnose_connection(c)
    assert [f.code for f in found if f.severity == "error"] == ["CLIENT_GAVE_UP_ON_GREETING"]
    assert "PyMySQL <= 0.7" in found[0].fix and "requires TLS" in found[0].fix


def test_wrong_password_beats_secure_channel_required():
    # a mismatching fast-path proof, then 01 04 the client cannot satisfy
    steps = [
        resp(b"\x11" * 32, seq=1),
        S("auth_more_data", b"\x04", seq=2),
    ]
    c = make(steps, attrs=CONNECTOR_ATTRS, caps=0x3BA20D, maxp=1 << 30)
    c.extra["verdict"] = verdict(
        "PROOF_MISMATCH", "step 0", steps=[{"step": 0, "result": "mismatch"}]
    )
    found = diagnose_connection(c)
    errors = [f.code for f in found if f.severity == "error"]
    assert errors == ["WRONG_PASSWORD"], [f.code for f in found]
    alt = [f for f in found if f.code == "SECURE_CHANNEL_REQUIRED"]
    assert alt and alt[0].under == "WRONG_PASSWORD" and alt[0].title.startswith("alternative to")


@pytest.mark.parametrize(
    "attrs",
    [
        {"_client_name": "Go-MySQL-Driver", "_client_version": "1.8.1"},
        {"_client_name": "mysqlnd", "_client_version": "mysqlnd 8.2.7"},
    ],
)
def test_clients_without_pam_dialog_are_not_assumed_to_speak_it(attrs):
    c = switched_and_left("dialog", data=b"\x04Password: ", attrs=attrs, caps=0x3FA685)
    found = diagnose_connection(c)
    assert found[0].code == "CLIENT_LACKS_PLUGIN", [f.code for f in found]
    assert "DIALOG_UNANSWERED" not in [f.code for f in found]
    assert "dialog" in found[0].fix


def test_security_findings_are_summarised_once_per_account_and_capture():
    conns = []
    for i in range(3):
        c = native_login(data=b"\x22" * 20, outcome="ok", error=None)
        c.id = i + 1
        conns.append(c)
    other = native_login(data=b"\x22" * 20, outcome="ok", error=None, user="bob")
    other.id = 4
    diagnose_connections(conns + [other])
    per = [[d["code"] for d in c.extra["diagnosis"]] for c in conns + [other]]
    assert per[0] == ["OFFLINE_CRACKABLE_PROOF"] and per[1] == [] and per[2] == []
    assert per[3] == ["OFFLINE_CRACKABLE_PROOF"]  # another account: its own summary
    ev = conns[0].extra["diagnosis"][0]["evidence"]
    assert "2 more login(s) of this account" in ev and "#2, #3" in ev


def test_cleartext_not_enabled_over_tls_does_not_say_use_tls():
    plain = switched_and_left(
        "mysql_clear_password", data=b"", attrs=LIBMYSQL_ATTRS, caps=0x000FA685
    )
    over_tls = switched_and_left(
        "mysql_clear_password", data=b"", attrs=LIBMYSQL_ATTRS, caps=0x000FA685, tls=True
    )
    (p,) = [f for f in diagnose_connection(plain) if f.code == "CLEARTEXT_NOT_ENABLED"]
    (t,) = [f for f in diagnose_connection(over_tls) if f.code == "CLEARTEXT_NOT_ENABLED"]
    assert "--enable-cleartext-plugin" in p.fix and "use TLS" in p.fix
    assert "--enable-cleartext-plugin" in t.fix and "TLS" not in t.fix


def test_text_output_says_how_sure_the_fingerprint_is():
    import io

    from mysqlwire.views.text import Renderer

    c = native_login(outcome="ok", error=None, attrs=LIBMARIADB_ATTRS, caps=0x00BFA284)
    diagnose_connection(c)
    buf = io.StringIO()
    Renderer(color=False, file=buf).connection(c)
    assert "mariadb CLI (libmariadb 3.3.20)  (confidence high)" in buf.getvalue()


def test_unidentified_client_leaving_at_a_dialog_switch_lacks_the_plugin():
    # node's mysql/mysql2, Go, PHP: no attributes we know, and they leave at the switch
    c = switched_and_left("dialog", data=b"\x04Password: ", attrs=None, caps=0x000FA685, maxp=0)
    found = diagnose_connection(c)
    assert found[0].code == "CLIENT_LACKS_PLUGIN", [f.code for f in found]
    assert "has no dialog plugin or could not load it" in found[0].evidence
    # a known dialog client that leaves is DIALOG_UNANSWERED (test_dialog_unanswered)


def test_secure_channel_fix_is_phrased_for_the_library():
    steps = [resp(b"\x11" * 32, seq=1), S("auth_more_data", b"\x04", seq=2)]
    go = {"_client_name": "Go-MySQL-Driver", "_client_version": "1.8.1"}
    c = make(steps, attrs=go, caps=0x3FA685, maxp=0)
    (f,) = [x for x in diagnose_connection(c) if x.severity == "error"]
    assert f.code == "SECURE_CHANNEL_REQUIRED"
    assert "tls=true" in f.fix and "serverPubKey" in f.fix


def test_access_denied_without_password_ranks_its_hypotheses():
    c = native_login(server_caps=0xFFFFFFFE)
    (f,) = [x for x in diagnose_connection(c) if x.severity == "error"]
    assert f.code == "ACCESS_DENIED"
    assert "(1) the client's password is not the account's" in f.evidence
    assert "(2) no account 'app' matches" in f.evidence
    assert "(3) the account requires TLS (REQUIRE SSL/X509): less common" in f.evidence
    # the same user logged in over TLS elsewhere: REQUIRE SSL moves up
    bad = native_login(server_caps=0xFFFFFFFE)
    good = native_login(server_caps=0xFFFFFFFE, outcome="ok", tls=True)
    good.id = 2
    diagnose_connections([bad, good])
    ev = bad.extra["diagnosis"][0]["evidence"]
    assert "(2) the account requires TLS (REQUIRE SSL/X509): the same user logged in over TLS" in ev


def test_pam_refusing_a_correct_answer_puts_the_pam_stack_first():
    steps = [
        resp(scramble(b"right-pw", NONCE), "mysql_native_password"),
        S("auth_switch_request", b"\x04Password: ", "dialog", seq=2),
        C("auth_data", b"right-pw\x00", "dialog", 3),
        S("err", seq=4),
    ]
    c = make(
        steps,
        version=MARIADB,
        greeting_plugin="mysql_native_password",
        attrs=LIBMARIADB_ATTRS,
        caps=0x00BFA284,
        outcome="error",
        error=denied(pw="NO"),
        server_caps=0xFFFFFFFE,
    )
    found = diagnose_connection(c, Secrets(password=b"right-pw"))
    assert [f.code for f in found if f.severity == "error"] == ["ACCESS_DENIED"], [
        f.code for f in found
    ]
    ev = found[0].evidence
    assert "(1) the PAM stack refused the right answer" in ev
    assert ev.rfind("REQUIRE SSL") > ev.find("(1) the PAM stack")  # last, if at all
    assert "VALID_PROOF_REJECTED" in [f.code for f in found]


def test_a_shared_capture_says_security_findings_once_as_logins_arrive():
    # mysqlwire watch: each login is diagnosed when it ends, with one CaptureFacts
    from mysqlwire.diagnose import CaptureFacts

    seen = CaptureFacts()
    first = native_login(outcome="ok", error=None)
    first.id = 1
    second = native_login(outcome="ok", error=None)
    second.id = 2
    assert [f.code for f in diagnose_connection(first, capture=seen)] == ["OFFLINE_CRACKABLE_PROOF"]
    assert [f.code for f in diagnose_connection(second, capture=seen)] == []
    # the same connection reported again (an update) keeps its finding
    assert [f.code for f in diagnose_connection(first, capture=seen)] == ["OFFLINE_CRACKABLE_PROOF"]
    assert [list(r) for r in seen.security_repeats.values()] == [["#2"]]


def test_sha2_full_auth_does_not_say_nothing_is_broken_on_a_failed_login():
    steps = [
        resp(b"\x11" * 32),
        S("auth_more_data", b"\x04", seq=2),
        C("auth_data", b"\x02", "caching_sha2_password", 3),
        S("auth_more_data", PEM, seq=4),
        C("auth_data", b"\x55" * 256, "caching_sha2_password", 5),
        S("err", seq=6),
    ]
    c = make(steps, outcome="error", error=denied())
    (f,) = [x for x in diagnose_connection(c) if x.code == "SHA2_FULL_AUTH"]
    assert "nothing is broken" not in f.fix and "not why this exchange failed" in f.fix
