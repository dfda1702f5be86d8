"""``mysqlwire serve`` against REAL clients: PyMySQL, mysql-connector-python (pure) and the
``mariadb`` CLI (libmariadb's caching_sha2_password / sha256_password plugins).

Each test asserts both sides: what the client got (rows, or the exact MySQL error code,
SQLSTATE and message) and what the server recorded (plugin path, fast/full, TLS).  The
server runs in-process in a thread on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mysqlwire.auth import caching_sha2
from mysqlwire.protocol import parse
from mysqlwire.protocol.framing import PacketReader
from mysqlwire.serve import ServerConfig, run_in_thread

pymysql = pytest.importorskip("pymysql")
pytest.importorskip("cryptography")

PW = {
    "app": "App-Pass-1",
    "cold": "Cold-Start-9",
    "nat": "Native-Pass-2",
    "s256": "Sha256-Pass-4",
    "clr": "Clear-Pass-5",
    "lockd": "Locked-Pass-6",
    "expd": "Expired-Pass-7",
    "sslonly": "Ssl-Only-8",
}

ACCOUNTS = {
    "app": {"plugin": "caching_sha2_password", "password": PW["app"], "databases": ["shop"]},
    "cold": {"plugin": "caching_sha2_password", "password": PW["cold"]},
    "nat": {"plugin": "mysql_native_password", "password": PW["nat"]},
    "s256": {"plugin": "sha256_password", "password": PW["s256"]},
    "clr": {"plugin": "mysql_clear_password", "password": PW["clr"]},
    "lockd": {"plugin": "caching_sha2_password", "password": PW["lockd"], "locked": True},
    "expd": {"plugin": "mysql_native_password", "password": PW["expd"], "expired": True},
    "sslonly": {"plugin": "caching_sha2_password", "password": PW["sslonly"], "require_ssl": True},
}

CAN_HANDLE_EXPIRED_PASSWORDS = 1 << 22

MARIADB = shutil.which("mariadb")
needs_cli = pytest.mark.skipif(MARIADB is None, reason="the mariadb CLI is not installed")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    keylog = tmp_path_factory.mktemp("serve") / "keys.log"
    cfg = ServerConfig(port=0, accounts=ACCOUNTS, keylog_file=str(keylog))
    with run_in_thread(cfg) as server:
        yield server


def _new(srv, fn):
    """Run ``fn()`` (one client login), return (its result or exception, the server record)."""
    before = len(srv.connections)
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - the tests assert on it
        result = exc
    conns = srv.connections
    assert srv.wait_for(lambda: len(conns) > before and conns[before].closed, 10)
    assert len(conns) == before + 1, "expected exactly one new connection"
    return result, conns[before]


# ------------------------------------------------------------------ client helpers
def pymysql_login(srv, user, password, *, query="SELECT 1", close=True, **kw):
    conn = pymysql.connect(host="127.0.0.1", port=srv.port, user=user, password=password, **kw)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        if close:
            conn.close()


def connector_login(srv, user, password, *, query="SELECT 1", **kw):
    connector = pytest.importorskip("mysql.connector")
    conn = connector.connect(
        host="127.0.0.1", port=srv.port, user=user, password=password, use_pure=True, **kw
    )
    try:
        cur = conn.cursor()
        cur.execute(query)
        rows = cur.fetchall()
        cur.close()
        return rows
    finally:
        conn.close()


def cli(srv, user, password, *args, query="SELECT 1"):
    cmd = [MARIADB, "-h127.0.0.1", "-P", str(srv.port), "-u", user, "-N", "-B", *args]
    cmd += ["-e", query]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL")}
    env["MYSQL_PWD"] = password
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)


def assert_pymysql_error(result, code, message):
    assert isinstance(result, pymysql.err.MySQLError), result
    assert result.args == (code, message)


def denied(user, yes=True):
    return f"Access denied for user '{user}'@'localhost' (using password: {'YES' if yes else 'NO'})"


# ================================================================== PyMySQL
def test_pymysql_sha2_fast_auth_after_warm_cache(srv):
    srv.call(srv.server.warm_cache, "app")
    rows, rec = _new(srv, lambda: pymysql_login(srv, "app", PW["app"], ssl_disabled=True))
    assert rows == ((1,),)
    login = rec.login
    assert (login.path, login.cache, login.outcome) == ("fast", "hit", "ok")
    assert not rec.tls and login.switches == []
    assert rec.kinds()[:5] == ["greeting", "response", "more_data", "ok", "command"]
    assert "COM_QUERY SELECT 1" in rec.commands


def test_pymysql_sha2_full_auth_rsa_then_fast(srv):
    srv.flush_cache("cold")
    rows, rec = _new(srv, lambda: pymysql_login(srv, "cold", PW["cold"], ssl_disabled=True))
    assert rows == ((1,),)
    assert (rec.login.path, rec.login.cache, rec.login.rsa_key_requested) == (
        "full-rsa",
        "miss",
        True,
    )
    assert not rec.tls
    # a successful full authentication fills the cache: the next login is fast
    rows, rec = _new(srv, lambda: pymysql_login(srv, "cold", PW["cold"], ssl_disabled=True))
    assert rows == ((1,),)
    assert (rec.login.path, rec.login.cache) == ("fast", "hit")


def test_pymysql_sha2_full_auth_over_tls(srv):
    srv.flush_cache("cold")
    # PyMySQL 1.2 negotiates TLS by itself when the server offers it
    rows, rec = _new(srv, lambda: pymysql_login(srv, "cold", PW["cold"]))
    assert rows == ((1,),)
    assert rec.tls and rec.tls_version in ("TLSv1.2", "TLSv1.3")
    assert (rec.login.path, rec.login.cache) == ("full-tls", "miss")


def test_pymysql_sha2_wrong_password_goes_to_full_auth_then_1045(srv):
    srv.call(srv.server.warm_cache, "app")
    res, rec = _new(srv, lambda: pymysql_login(srv, "app", "app-pass-1", ssl_disabled=True))
    assert_pymysql_error(res, 1045, denied("app"))
    assert (rec.login.cache, rec.login.path, rec.login.error_code) == ("mismatch", "full-rsa", 1045)


def test_pymysql_sha256_over_rsa_and_tls(srv):
    rows, rec = _new(srv, lambda: pymysql_login(srv, "s256", PW["s256"], ssl_disabled=True))
    assert rows == ((1,),)
    assert rec.login.switches == ["sha256_password"]
    assert (rec.login.path, rec.login.rsa_key_requested, rec.tls) == ("rsa", True, False)
    rows, rec = _new(srv, lambda: pymysql_login(srv, "s256", PW["s256"]))
    assert rows == ((1,),)
    assert (rec.login.path, rec.tls) == ("tls", True)
    res, rec = _new(srv, lambda: pymysql_login(srv, "s256", "nope", ssl_disabled=True))
    assert_pymysql_error(res, 1045, denied("s256"))


def test_pymysql_native_switch_uses_greeting_nonce(srv):
    rows, rec = _new(srv, lambda: pymysql_login(srv, "nat", PW["nat"], ssl_disabled=True))
    assert rows == ((1,),)
    assert rec.login.client_plugin == "caching_sha2_password"
    assert rec.login.switches == ["mysql_native_password"]
    assert [e.detail["nonce"] for e in rec.events if e.kind == "auth_switch"] == ["greeting"]


def test_pymysql_clear_password_switch(srv):
    rows, rec = _new(srv, lambda: pymysql_login(srv, "clr", PW["clr"]))
    assert rows == ((1,),)
    assert rec.login.switches == ["mysql_clear_password"] and rec.tls


def test_switch_with_new_nonce_and_native_greeting():
    cfg = ServerConfig(
        port=0,
        greeting_plugin="mysql_native_password",
        switch_nonce="new",
        accounts={k: ACCOUNTS[k] for k in ("app", "nat")},
        tls=False,
    )
    with run_in_thread(cfg) as srv:
        # greeting native -> caching_sha2 account: switch to caching_sha2 (cold: full RSA)
        rows, rec = _new(srv, lambda: pymysql_login(srv, "app", PW["app"]))
        assert rows == ((1,),)
        assert rec.login.client_plugin == "mysql_native_password"
        assert rec.login.switches == ["caching_sha2_password"]
        assert rec.login.path == "full-rsa"
        assert [e.detail["nonce"] for e in rec.events if e.kind == "auth_switch"] == ["new"]
        # then fast, with a fresh switch nonce again
        rows, rec = _new(srv, lambda: pymysql_login(srv, "app", PW["app"]))
        assert (rec.login.path, rec.login.switches) == ("fast", ["caching_sha2_password"])
        # native account, native greeting: no switch
        rows, rec = _new(srv, lambda: pymysql_login(srv, "nat", PW["nat"]))
        assert rows == ((1,),) and rec.login.switches == []


def test_pymysql_query_results(srv):
    srv.call(srv.server.warm_cache, "app")
    rows, _ = _new(
        srv,
        lambda: pymysql_login(
            srv, "app", PW["app"], database="shop", query="SELECT VERSION(), DATABASE(), USER()"
        ),
    )
    assert rows == (("8.0.36-mysqlwire", "shop", "app@localhost"),)


# ------------------------------------------------------------------ scripted failures
def test_pymysql_errors(srv):
    srv.call(srv.server.warm_cache, "app")
    cases = [
        (dict(user="app", password=""), 1045, denied("app", yes=False)),
        (dict(user="ghost", password="x"), 1045, denied("ghost")),
        (dict(user="lockd", password=PW["lockd"]), 3118,
         "Access denied for user 'lockd'@'localhost'. Account is locked."),
        (dict(user="expd", password=PW["expd"]), 1862,
         "Your password has expired. To log in you must change it using a client that "
         "supports expired passwords."),
        (dict(user="app", password=PW["app"], database="nope"), 1049, "Unknown database 'nope'"),
        (dict(user="sslonly", password=PW["sslonly"], ssl_disabled=True), 1045, denied("sslonly")),
    ]  # fmt: skip
    for kw, code, message in cases:
        res, rec = _new(srv, lambda kw=kw: pymysql_login(srv, **kw))
        assert_pymysql_error(res, code, message)
        assert rec.login.error_code == code and rec.login.outcome == "error"
    # locked account with a WRONG password: the password is checked first
    res, _ = _new(srv, lambda: pymysql_login(srv, "lockd", "wrong"))
    assert_pymysql_error(res, 1045, denied("lockd"))
    # REQUIRE SSL account over TLS: fine
    rows, rec = _new(srv, lambda: pymysql_login(srv, "sslonly", PW["sslonly"]))
    assert rows == ((1,),) and rec.tls


def test_pymysql_expired_password_sandbox_then_1820(srv):
    def run():
        conn = pymysql.connect(
            host="127.0.0.1",
            port=srv.port,
            user="expd",
            password=PW["expd"],
            client_flag=CAN_HANDLE_EXPIRED_PASSWORDS,
        )
        try:
            with conn.cursor() as cur:
                try:
                    cur.execute("SELECT 1")
                except pymysql.err.MySQLError as exc:
                    error = exc
                else:
                    return "no error"
                # ALTER USER leaves the sandbox; its password never reaches the record
                cur.execute("ALTER USER USER() IDENTIFIED BY 'New-Secret-99'")
                cur.execute("SELECT 1")
                return error, cur.fetchall()
        finally:
            conn.close()

    (res, rows), rec = _new(srv, run)
    assert rows == ((1,),)
    assert "COM_QUERY ALTER USER USER() IDENTIFIED BY '<secret>'" in rec.commands
    assert "New-Secret-99" not in repr(rec.to_dict())
    assert_pymysql_error(
        res,
        1820,
        "You must reset your password using ALTER USER statement before executing this statement.",
    )
    assert rec.login.outcome == "ok" and rec.login.sandbox


def test_pymysql_1524_plugin_not_loaded():
    cfg = ServerConfig(
        port=0,
        tls=False,
        accounts={k: ACCOUNTS[k] for k in ("nat", "app")},
        disabled_plugins=["mysql_native_password"],
    )
    with run_in_thread(cfg) as srv:
        res, rec = _new(srv, lambda: pymysql_login(srv, "nat", PW["nat"]))
        assert_pymysql_error(res, 1524, "Plugin 'mysql_native_password' is not loaded")
        assert rec.login.error_code == 1524
        rows, _ = _new(srv, lambda: pymysql_login(srv, "app", PW["app"]))
        assert rows == ((1,),)


def test_pymysql_3159_require_secure_transport():
    cfg = ServerConfig(port=0, accounts={"app": ACCOUNTS["app"]}, require_secure_transport=True)
    with run_in_thread(cfg) as srv:
        res, rec = _new(srv, lambda: pymysql_login(srv, "app", PW["app"], ssl_disabled=True))
        assert_pymysql_error(
            res,
            3159,
            "Connections using insecure transport are prohibited while "
            "--require_secure_transport=ON.",
        )
        rows, rec = _new(srv, lambda: pymysql_login(srv, "app", PW["app"]))
        assert rows == ((1,),) and rec.tls


def test_pymysql_1040_too_many_connections():
    cfg = ServerConfig(
        port=0,
        tls=False,
        max_connections=1,
        accounts={
            "app": ACCOUNTS["app"],
            "root": {"plugin": "mysql_native_password", "password": "r", "connection_admin": True},
        },
    )
    with run_in_thread(cfg) as srv:
        first = pymysql.connect(host="127.0.0.1", port=srv.port, user="app", password=PW["app"])
        try:
            # max_connections + 1: admitted to the handshake, refused after auth (with SQLSTATE)
            res, rec = _new(srv, lambda: pymysql_login(srv, "app", PW["app"]))
            assert_pymysql_error(res, 1040, "Too many connections")
            assert rec.login.error_code == 1040
            # ... unless the account has CONNECTION_ADMIN, which gets the extra slot
            admin = pymysql.connect(host="127.0.0.1", port=srv.port, user="root", password="r")
            try:
                # past max_connections + 1: ERR instead of the greeting
                res, rec = _new(srv, lambda: pymysql_login(srv, "app", PW["app"]))
                assert_pymysql_error(res, 1040, "Too many connections")
                assert rec.login is None and rec.refused.code == 1040
            finally:
                admin.close()
        finally:
            first.close()


# ================================================================== mysql-connector-python (pure)
def test_connector_sha2_full_auth_over_tls_then_fast(srv):
    pytest.importorskip("mysql.connector")
    srv.flush_cache("cold")
    rows, rec = _new(srv, lambda: connector_login(srv, "cold", PW["cold"]))
    assert rows == [(1,)]
    assert rec.tls and (rec.login.path, rec.login.cache) == ("full-tls", "miss")
    rows, rec = _new(srv, lambda: connector_login(srv, "cold", PW["cold"], ssl_disabled=True))
    assert rows == [(1,)]
    assert not rec.tls and (rec.login.path, rec.login.cache) == ("fast", "hit")


def test_connector_native_and_sha256_switch(srv):
    pytest.importorskip("mysql.connector")
    rows, rec = _new(srv, lambda: connector_login(srv, "nat", PW["nat"], ssl_disabled=True))
    assert rows == [(1,)]
    assert rec.login.switches == ["mysql_native_password"] and not rec.tls
    rows, rec = _new(srv, lambda: connector_login(srv, "s256", PW["s256"]))
    assert rows == [(1,)]
    assert (rec.login.switches, rec.login.path, rec.tls) == (["sha256_password"], "tls", True)


def test_connector_cleartext_full_auth_over_plain_tcp(srv):
    """Connector/Python (pure) has no RSA path: after ``01 04`` on plain TCP it sends the
    password in clear.  MySQL refuses that (1045); ``allow_cleartext_over_plain`` accepts."""
    connector = pytest.importorskip("mysql.connector")
    srv.flush_cache("cold")
    res, rec = _new(srv, lambda: connector_login(srv, "cold", PW["cold"], ssl_disabled=True))
    assert isinstance(res, connector.Error), res
    assert (res.errno, res.sqlstate, res.msg) == (1045, "28000", denied("cold"))
    assert rec.login.path == "full-cleartext-plain"
    ev = [e for e in rec.events if e.kind == "cleartext-over-plain"]
    assert ev and ev[0].detail["accepted"] is False
    cfg = ServerConfig(
        port=0, tls=False, allow_cleartext_over_plain=True, accounts={"cold": ACCOUNTS["cold"]}
    )
    with run_in_thread(cfg) as other:
        rows, rec = _new(other, lambda: connector_login(other, "cold", PW["cold"]))
        assert rows == [(1,)] and rec.login.path == "full-cleartext-plain"


def test_connector_errors(srv):
    connector = pytest.importorskip("mysql.connector")
    srv.call(srv.server.warm_cache, "app")
    cases = [
        (dict(user="app", password="bad"), 1045, "28000", denied("app")),
        (dict(user="lockd", password=PW["lockd"]), 3118, "HY000",
         "Access denied for user 'lockd'@'localhost'. Account is locked."),
        (dict(user="app", password=PW["app"], database="nope"), 1049, "42000",
         "Unknown database 'nope'"),
    ]  # fmt: skip
    for kw, code, state, message in cases:
        kw = dict(kw)
        res, rec = _new(
            srv, lambda kw=kw: connector_login(srv, kw.pop("user"), kw.pop("password"), **kw)
        )
        assert isinstance(res, connector.Error), res
        assert (res.errno, res.sqlstate, res.msg) == (code, state, message)


def test_connector_change_user(srv):
    pytest.importorskip("mysql.connector")
    import mysql.connector

    srv.call(srv.server.warm_cache, "app")

    def run():
        conn = mysql.connector.connect(
            host="127.0.0.1", port=srv.port, user="app", password=PW["app"], use_pure=True
        )
        try:
            conn.cmd_change_user(username="nat", password=PW["nat"])
            cur = conn.cursor()
            cur.execute("SELECT USER()")
            first = cur.fetchall()
            cur.close()
            conn.cmd_change_user(username="app", password=PW["app"], database="shop")
            cur = conn.cursor()
            cur.execute("SELECT USER(), DATABASE()")
            second = cur.fetchall()
            cur.close()
            try:
                conn.cmd_change_user(username="nat", password="wrong")
            except mysql.connector.Error as exc:
                return first, second, (exc.errno, exc.msg)
            return first, second, None
        finally:
            conn.close()

    (first, second, failure), rec = _new(srv, run)
    assert first == [("nat@localhost",)]
    assert second == [("app@localhost", "shop")]
    assert failure == (1045, denied("nat"))
    kinds = [(a.kind, a.switches, a.path, a.outcome) for a in rec.attempts]
    assert kinds == [
        ("login", [], "fast", "ok"),
        ("change_user", ["mysql_native_password"], "scramble", "ok"),
        ("change_user", [], "fast", "ok"),
        ("change_user", ["mysql_native_password"], "scramble", "error"),
    ]
    # the switch inside COM_CHANGE_USER carries the connection's greeting nonce
    assert all(e.detail["nonce"] == "greeting" for e in rec.events if e.kind == "auth_switch")


# ================================================================== the mariadb CLI (libmariadb)
@needs_cli
def test_cli_sha2_paths(srv):
    srv.flush_cache("cold")
    r, rec = _new(srv, lambda: cli(srv, "cold", PW["cold"], "--skip-ssl"))
    assert (r.returncode, r.stdout.strip()) == (0, "1"), r.stderr
    assert (rec.login.path, rec.login.rsa_key_requested, rec.tls) == ("full-rsa", True, False)
    r, rec = _new(srv, lambda: cli(srv, "cold", PW["cold"], "--skip-ssl"))
    assert (r.returncode, r.stdout.strip()) == (0, "1"), r.stderr
    assert rec.login.path == "fast"
    srv.flush_cache("cold")
    r, rec = _new(srv, lambda: cli(srv, "cold", PW["cold"], "--ssl"))
    assert (r.returncode, r.stdout.strip()) == (0, "1"), r.stderr
    assert (rec.login.path, rec.tls) == ("full-tls", True)


@needs_cli
@pytest.mark.parametrize(
    ("user", "ssl", "path", "switches"),
    [
        ("s256", "--skip-ssl", "rsa", ["sha256_password"]),
        ("s256", "--ssl", "tls", ["sha256_password"]),
        ("nat", "--skip-ssl", "scramble", ["mysql_native_password"]),
        ("clr", "--ssl", "cleartext", ["mysql_clear_password"]),
    ],
)
def test_cli_other_plugins(srv, user, ssl, path, switches):
    r, rec = _new(srv, lambda: cli(srv, user, PW[user], ssl))
    assert (r.returncode, r.stdout.strip()) == (0, "1"), r.stderr
    assert (rec.login.path, rec.login.switches, rec.tls) == (path, switches, ssl == "--ssl")


@needs_cli
def test_cli_errors(srv):
    srv.call(srv.server.warm_cache, "app")
    cases = [
        (("app", "bad", "--skip-ssl"), f"ERROR 1045 (28000): {denied('app')}"),
        (("app", "", "--skip-ssl"), f"ERROR 1045 (28000): {denied('app', yes=False)}"),
        (("lockd", PW["lockd"], "--ssl"),
         "ERROR 3118 (HY000): Access denied for user 'lockd'@'localhost'. Account is locked."),
        (("expd", PW["expd"], "--ssl"),
         "ERROR 1862 (HY000): Your password has expired. To log in you must change it using a "
         "client that supports expired passwords."),
        (("app", PW["app"], "--ssl", "-D", "nope"), "ERROR 1049 (42000): Unknown database 'nope'"),
        (("sslonly", PW["sslonly"], "--skip-ssl"), f"ERROR 1045 (28000): {denied('sslonly')}"),
    ]  # fmt: skip
    for (user, pw, *args), expected in cases:
        r, rec = _new(srv, lambda user=user, pw=pw, args=args: cli(srv, user, pw, *args))
        assert r.returncode == 1
        assert r.stderr.strip() == expected
    # --connect-expired-password: sandbox login, then 1820 on the statement
    r, rec = _new(srv, lambda: cli(srv, "expd", PW["expd"], "--connect-expired-password"))
    assert (
        "ERROR 1820 (HY000) at line 1: You must reset your password using ALTER USER " in r.stderr
    )
    assert rec.login.sandbox


@needs_cli
def test_cli_3159_1524_1040():
    cfg = ServerConfig(
        port=0,
        accounts={k: ACCOUNTS[k] for k in ("app", "nat")},
        require_secure_transport=True,
        disabled_plugins=["mysql_native_password"],
        max_connections=1,
    )
    with run_in_thread(cfg) as srv:
        r, _ = _new(srv, lambda: cli(srv, "app", PW["app"], "--skip-ssl"))
        assert r.stderr.strip() == (
            "ERROR 3159 (HY000): Connections using insecure transport are prohibited while "
            "--require_secure_transport=ON."
        )
        r, _ = _new(srv, lambda: cli(srv, "nat", PW["nat"], "--ssl"))
        assert (
            r.stderr.strip() == "ERROR 1524 (HY000): Plugin 'mysql_native_password' is not loaded"
        )
        holder = pymysql.connect(host="127.0.0.1", port=srv.port, user="app", password=PW["app"])
        try:
            r, _ = _new(srv, lambda: cli(srv, "app", PW["app"], "--ssl"))
            assert r.stderr.strip() == "ERROR 1040 (08004): Too many connections"
        finally:
            holder.close()


# ================================================================== on the wire
TCPDUMP = shutil.which("tcpdump")
TSHARK = shutil.which("tshark")


class _Tcpdump:
    def __init__(self, port: int, path: Path):
        # --immediate-mode: without it packets still in the kernel's ring block are lost
        # when tcpdump is stopped right after the login
        self.proc = subprocess.Popen(
            [TCPDUMP, "-i", "lo", "-U", "--immediate-mode", "-w", str(path), f"tcp port {port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()
        self.lines: list[str] = []

        def watch():
            for line in self.proc.stderr:
                self.lines.append(line)
                if "listening on" in line:
                    ready.set()

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(10):
            self.stop()
            pytest.skip(f"tcpdump did not start: {''.join(self.lines)}")
        self.path = path
        time.sleep(0.2)  # on a busy machine the ring attaches a moment after the message

    def stop(self):
        # let the last packets of the login reach the file before stopping (under load the
        # kernel hands them over late): wait until its size has been stable for 0.3 s
        last, stable_since, end = -1, time.monotonic(), time.monotonic() + 5
        while time.monotonic() < end and self.proc.poll() is None:
            size = self.path.stat().st_size if self.path.exists() else 0
            if size != last:
                last, stable_since = size, time.monotonic()
            elif time.monotonic() - stable_since >= 0.3:
                break
            time.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _tshark_fields(
    pcap: Path, port: int, *fields: str, keylog: str | None = None
) -> list[list[str]]:
    cmd = [TSHARK, "-r", str(pcap), "-d", f"tcp.port=={port},mysql", "-Y", "mysql", "-T", "fields"]
    if keylog:
        cmd += ["-o", f"tls.keylog_file:{keylog}"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def _streams(pcap: Path, port: int) -> tuple[bytes, bytes]:
    """(server->client, client->server) TCP payload bytes of the first connection."""
    rows = subprocess.run(
        [TSHARK, "-r", str(pcap), "-Y", "tcp.len > 0", "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.payload"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()  # fmt: skip
    server, client = bytearray(), bytearray()
    for row in rows:
        src, payload = row.split("\t")
        (server if int(src) == port else client).extend(bytes.fromhex(payload))
    return bytes(server), bytes(client)


@pytest.mark.skipif(not (TCPDUMP and TSHARK), reason="needs tcpdump and tshark")
def test_capture_of_rsa_login_is_well_formed(srv, tmp_path):
    srv.flush_cache("cold")
    pcap = tmp_path / "rsa.pcap"
    dump = _Tcpdump(srv.port, pcap)
    try:
        rows, rec = _new(srv, lambda: pymysql_login(srv, "cold", PW["cold"], ssl_disabled=True))
    finally:
        dump.stop()
    assert rows == ((1,),) and rec.login.path == "full-rsa"

    fields = _tshark_fields(
        pcap, srv.port, "mysql.packet_number", "mysql.version", "mysql.user", "_ws.malformed"
    )
    assert fields, "tshark saw no MySQL packets"
    assert fields[0][1] == "8.0.36-mysqlwire"
    assert fields[1][2] == "cold"
    # tshark 4.0 does not follow caching_sha2's RSA step: it reads the client's
    # ciphertext (seq 5) as a command named by its first byte, which is random,
    # and flags 5 of the 256 values (0x11 0x12 0x15 0x16 0x1e) malformed (the
    # flake once seen in CI); that packet's bytes are checked below instead,
    # by decrypting them with the server's key
    assert not any(f[3] for f in fields if f[0] != "5"), "tshark flags a malformed packet"
    # the whole RSA exchange, seq 0..6: greeting, response, 01 04, 02, PEM, ciphertext, OK
    assert [f[0] for f in fields[:7]] == [str(i) for i in range(7)]

    # and the bytes are what the reference says; the RSA answer decrypts with the server key
    s2c, c2s = _streams(pcap, srv.port)
    server_pkts = [p.payload for p in PacketReader().feed(s2c)]
    client_pkts = [p.payload for p in PacketReader().feed(c2s)]
    greeting = parse("handshake_v10", server_pkts[0])
    assert greeting.server_version == b"8.0.36-mysqlwire"
    assert greeting.auth_plugin_name == b"caching_sha2_password"
    assert greeting.character_set == 255
    assert len(greeting.nonce) == 20
    assert all(0x01 <= b <= 0x7F and b != 0x24 for b in greeting.nonce)
    assert server_pkts[1] == b"\x01\x04" and client_pkts[1] == b"\x02"
    assert server_pkts[2].startswith(b"\x01-----BEGIN PUBLIC KEY-----")
    assert server_pkts[3] == b"\x00\x00\x00\x02\x00\x00\x00"  # OK, AUTOCOMMIT
    ciphertext = client_pkts[2]
    assert len(ciphertext) == 256
    assert (
        caching_sha2.rsa_decrypt(ciphertext, greeting.nonce, srv.server.rsa_private_key_pem)
        == PW["cold"].encode()
    )


@pytest.mark.skipif(not (TCPDUMP and TSHARK), reason="needs tcpdump and tshark")
def test_capture_of_tls_login_decrypts_with_key_log(srv, tmp_path):
    srv.flush_cache("cold")
    pcap = tmp_path / "tls.pcap"
    dump = _Tcpdump(srv.port, pcap)
    try:
        rows, rec = _new(srv, lambda: pymysql_login(srv, "cold", PW["cold"]))
    finally:
        dump.stop()
    assert rows == ((1,),) and rec.tls and rec.login.path == "full-tls"
    keylog = srv.server.config.keylog_file
    assert Path(keylog).read_text().strip(), "the server wrote no NSS key log"
    plain = _tshark_fields(pcap, srv.port, "mysql.packet_number", "mysql.user")
    assert all(f[1] == "" for f in plain), "without the key log the user must not be visible"
    dec = _tshark_fields(pcap, srv.port, "mysql.packet_number", "mysql.user", keylog=keylog)
    # inside TLS the HandshakeResponse41 is seq 2
    assert ["2", "cold"] in dec


def test_server_binds_loopback_by_default():
    cfg = ServerConfig(port=0, accounts={"app": ACCOUNTS["app"]}, tls=False)
    with run_in_thread(cfg) as srv:
        assert srv.host == "127.0.0.1"
        rows, rec = _new(srv, lambda: pymysql_login(srv, "app", PW["app"]))
        assert rows == ((1,),) and rec.peer[0] == "127.0.0.1" and rec.host == "localhost"


# ================================================================== misbehaving clients
def _raw_exchange(srv, packets: list[bytes]) -> list[bytes]:
    """Send raw bytes after the greeting; return the server's packets until it closes."""
    import socket

    from mysqlwire.protocol.framing import frame

    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    reader = PacketReader()
    got: list[bytes] = []
    try:
        while not got:
            got += [p.payload for p in reader.feed(sock.recv(4096))]
        for seq, payload in packets:
            sock.sendall(frame(payload, seq) if seq is not None else payload)
        while True:
            data = sock.recv(4096)
            if not data:
                return got
            got += [p.payload for p in reader.feed(data)]
    finally:
        sock.close()


def test_malformed_or_out_of_order_client_packets(srv):
    greeting, err = _raw_exchange(srv, [(1, b"\x0d\xa2\x3a\x00\xff")])  # truncated response
    assert parse("handshake_v10", greeting).server_version == b"8.0.36-mysqlwire"
    assert err == b"\xff\x13\x04#08S01Bad handshake"
    assert srv.wait_for(lambda: srv.connections[-1].closed)
    _, err = _raw_exchange(srv, [(5, b"\x00" * 40)])  # wrong sequence id
    assert err == b"\xff\x84\x04Got packets out of order"  # client caps unknown: no SQLSTATE
    # a client that drops TLS mid-handshake: recorded, the server keeps serving
    ssl_request = (
        (0x0DA2BA00 | 0x800 | 0x200).to_bytes(4, "little")
        + b"\xff\xff\xff\x00"
        + b"\x2d"
        + bytes(23)
    )
    _raw_exchange(srv, [(1, ssl_request), (None, b"\x16\x03\x01\x00\x05hello")])
    assert srv.wait_for(lambda: srv.connections[-1].closed)
    assert "tls-failed" in srv.connections[-1].kinds()
    rows, _ = _new(srv, lambda: pymysql_login(srv, "nat", PW["nat"]))
    assert rows == ((1,),)


# ================================================================== compressed protocol
LONG = "a string literal long enough to pass the fifty byte zlib threshold of both sides"


def test_compressed_protocol_connector_and_cli(srv):
    pytest.importorskip("mysql.connector")
    srv.call(srv.server.warm_cache, "app")
    rows, rec = _new(
        srv,
        lambda: connector_login(srv, "app", PW["app"], compress=True, query=f"SELECT 1, '{LONG}'"),
    )
    assert rows == [(1, LONG)]
    kinds = rec.kinds()
    assert kinds.index("compression") == kinds.index("ok") + 1  # the final OK is not compressed
    if MARIADB:
        r, rec = _new(
            srv, lambda: cli(srv, "app", PW["app"], "-C", "--skip-ssl", query=f"SELECT '{LONG}'")
        )
        assert (r.returncode, r.stdout.strip()) == (0, LONG), r.stderr
        assert "compression" in rec.kinds()


def test_command_phase_init_db_ping_show_databases(srv):
    srv.call(srv.server.warm_cache, "app")

    def run():
        conn = pymysql.connect(host="127.0.0.1", port=srv.port, user="app", password=PW["app"])
        try:
            conn.ping(reconnect=False)  # COM_PING
            conn.select_db("shop")  # COM_INIT_DB
            with conn.cursor() as cur:
                cur.execute("SELECT DATABASE()")
                db = cur.fetchall()
                cur.execute("SHOW DATABASES")
                dbs = [r[0] for r in cur.fetchall()]
            try:
                conn.select_db("mysql")  # exists, but not granted to app
            except pymysql.err.MySQLError as exc:
                denied_db = exc.args
            try:
                conn.select_db("nope")
            except pymysql.err.MySQLError as exc:
                unknown = exc.args
            with conn.cursor() as cur:  # the connection survives command errors
                cur.execute("SELECT 1")
                return db, dbs, denied_db, unknown, cur.fetchall()
        finally:
            conn.close()

    (db, dbs, denied_db, unknown, one), rec = _new(srv, run)
    assert db == (("shop",),)
    assert dbs == ["information_schema", "shop"]
    assert denied_db == (1044, "Access denied for user 'app'@'localhost' to database 'mysql'")
    assert unknown == (1049, "Unknown database 'nope'")
    assert one == ((1,),)
    assert "COM_PING" in rec.commands and "COM_INIT_DB shop" in rec.commands


def test_rsa_key_and_tls_certificate_from_files(tmp_path):
    from mysqlwire.serve import keys

    repo = Path(__file__).resolve().parent.parent
    pem = repo / "captures" / "lab-samples" / "m8emu_server_rsa_private.pem"
    if not pem.is_file():
        pytest.skip(f"{pem} not in the checkout")
    cert, key = keys.self_signed_certificate("mysqlwire-test-cert")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    cfg = ServerConfig(
        port=0,
        accounts={"cold": ACCOUNTS["cold"]},
        rsa_private_key=str(pem),
        tls_cert=str(tmp_path / "cert.pem"),
        tls_key=str(tmp_path / "key.pem"),
    )
    with run_in_thread(cfg) as srv:
        assert srv.server.rsa_private_key_pem == pem.read_bytes()
        assert srv.server.public_key_pem == caching_sha2.public_key_pem(pem.read_bytes())
        rows, rec = _new(srv, lambda: pymysql_login(srv, "cold", PW["cold"], ssl_disabled=True))
        assert rows == ((1,),) and rec.login.path == "full-rsa"
        srv.flush_cache()
        conn = pymysql.connect(
            host="127.0.0.1", port=srv.port, user="cold", password=PW["cold"],
            ssl_ca=str(tmp_path / "cert.pem"), ssl_verify_cert=True,
        )  # fmt: skip
        peer = conn._sock.getpeercert()
        conn.close()
        assert dict(x[0] for x in peer["subject"])["commonName"] == "mysqlwire-test-cert"


@needs_cli
def test_cli_database_with_session_tracking(srv):
    """libmariadb sets CLIENT_SESSION_TRACK: the login OK carries the schema change."""
    srv.call(srv.server.warm_cache, "app")
    r, rec = _new(
        srv,
        lambda: cli(srv, "app", PW["app"], "--skip-ssl", "-D", "shop", query="SELECT DATABASE()"),
    )
    assert (r.returncode, r.stdout.strip()) == (0, "shop"), r.stderr
    assert rec.client_capabilities & (1 << 23)  # CLIENT_SESSION_TRACK
    r, rec = _new(
        srv, lambda: cli(srv, "app", PW["app"], "--ssl", query="USE shop; SELECT DATABASE()")
    )
    assert (r.returncode, r.stdout.strip()) == (0, "shop"), r.stderr


def test_mysqlclient_libmariadb(srv):
    MySQLdb = pytest.importorskip("MySQLdb")
    srv.flush_cache("cold")

    def run(user, password):
        conn = MySQLdb.connect(host="127.0.0.1", port=srv.port, user=user, password=password)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            return cur.fetchall()
        finally:
            conn.close()

    rows, rec = _new(srv, lambda: run("cold", PW["cold"]))
    assert rows == ((1,),) and rec.login.path == "full-rsa" and not rec.tls
    rows, rec = _new(srv, lambda: run("nat", PW["nat"]))
    assert rows == ((1,),) and rec.login.switches == ["mysql_native_password"]
    res, rec = _new(srv, lambda: run("cold", "wrong"))
    assert isinstance(res, MySQLdb.OperationalError) and res.args == (1045, denied("cold"))
