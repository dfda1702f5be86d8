"""Log in to a real server with a real client and say what the CLIENT saw.

Clients (``CLIENTS``): ``cli`` (the ``mariadb`` command-line client), ``pymysql`` (PyMySQL),
``connector`` (mysql-connector-python, ``use_pure=True``), ``mysqlclient`` (``MySQLdb`` on
libmariadb) and ``mariadb`` (MariaDB Connector/Python on libmariadb).

No login runs in the test process. The CLI is a fresh process per login. A Python client runs in a
worker process (this file run as a script): ``--worker`` does one login and exits; ``--serve`` is a
long-lived worker of a ``WorkerPool`` doing one login at a time (no interpreter start and library
import per login). Either way each login gets its own environment: ``SSLKEYLOGFILE`` (honoured by
Python's ``ssl.create_default_context``, which PyMySQL and mysql-connector use) and, for libmariadb
clients, the ``sslkeylog.c`` shim (``LD_PRELOAD``; OpenSSL has no environment switch of its own),
which writes only while ``SSLKEYLOGFILE`` is set. Passwords travel in the worker's stdin or in
``MYSQL_PWD`` for the CLI, never on a command line, and are redacted from results.

After a successful login the driver asks the server, through the client, what the session is:
``CURRENT_USER()``, ``DATABASE()``, ``Ssl_cipher`` and ``Compression``. A server error there (1820 in
the expired-password sandbox) is recorded as a command error. ``change_user`` then runs
COM_CHANGE_USER where the client has it (not PyMySQL, not the CLI).

This module imports no client library at import time and no test code: the worker runs it as a script.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

CLIENTS = ("cli", "pymysql", "connector", "mysqlclient", "mariadb")
LIBMARIADB_CLIENTS = ("cli", "mysqlclient", "mariadb")
HERE = Path(__file__).resolve().parent
KEYLOG_SHIM_SOURCE = HERE / "sslkeylog.c"

SESSION_SQL = (
    "SELECT CURRENT_USER(), DATABASE()",
    "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_cipher', 'Compression')",
)


@dataclass
class LoginSpec:
    client: str
    host: str
    port: int
    user: str
    password: str = ""  # "" = no password
    database: str | None = None
    tls: str = "off"  # off | on (required, CA verified) | default (the client's own default)
    ca: str | None = None
    compress: bool = False
    keylog: str | None = None  # SSLKEYLOGFILE for this login
    keylog_shim: str | None = None  # LD_PRELOAD shim for libmariadb clients
    session_queries: bool = True
    change_user: dict | None = None  # {"user", "password", "database"}
    cli_args: list[str] = field(default_factory=list)
    timeout: float = 10.0


@dataclass
class ClientError:
    cls: str  # exception class (CLI: "ERROR")
    message: str
    code: int | None = None  # server error code or client (CR) code, when the client gives one
    sqlstate: str | None = None

    def text(self) -> str:
        """The client's own rendering, e.g. 'OperationalError: (1045, "Access denied ...")'."""
        return self.message if self.cls == "ERROR" else f"{self.cls}: {self.message}"


@dataclass
class LoginResult:
    client: str
    version: str = ""
    connected: bool = False  # the client handed back a connection
    error: ClientError | None = None  # connect failed (or the client gave up)
    session: dict | None = None  # current_user, database, ssl_cipher, compression
    command_error: ClientError | None = None  # first server error after login
    change_user: dict | None = None  # {"ok", "error", "current_user"}
    elapsed: float = 0.0
    stderr: str = ""  # worker/CLI stderr (passwords redacted), for debugging

    @classmethod
    def from_dict(cls, d: dict) -> LoginResult:
        d = dict(d)
        for k in ("error", "command_error"):
            if d.get(k):
                d[k] = ClientError(**d[k])
        cu = d.get("change_user")
        if cu and cu.get("error"):
            cu["error"] = ClientError(**cu["error"])
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def redact(text: str, secrets) -> str:
    for s in secrets:
        if s and len(s) >= 3:
            text = text.replace(s, "***")
    return text


# ----------------------------------------------------------------------------- keylog shim


def build_keylog_shim(outdir: Path) -> Path | None:
    """Compile sslkeylog.c to outdir/sslkeylog.so with gcc; None when gcc is missing."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        return None
    out = Path(outdir) / "sslkeylog.so"
    r = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-o", str(out), str(KEYLOG_SHIM_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
    )
    return out if r.returncode == 0 and out.exists() else None


# ----------------------------------------------------------------------------- running


def _clean_env() -> dict:
    env = dict(os.environ)
    for k in ("SSLKEYLOGFILE", "LD_PRELOAD", "MYSQL_PWD", "MYSQL_HOST", "MYSQL_TCP_PORT"):
        env.pop(k, None)
    return env


def login(spec: LoginSpec, pool: WorkerPool | None = None) -> LoginResult:
    """Run one login; never raises for a failed login.

    The CLI always runs as a fresh process. A Python client runs in a fresh worker process, or -
    with ``pool`` - in the pool's long-lived worker for that client (one login at a time, the
    per-login environment set inside the worker), which saves the interpreter start and the
    library import (~0.3 s CPU) per login."""
    env = _clean_env()
    if spec.keylog:
        env["SSLKEYLOGFILE"] = spec.keylog
        if spec.client in LIBMARIADB_CLIENTS and spec.keylog_shim:
            env["LD_PRELOAD"] = spec.keylog_shim
    secrets = [spec.password, (spec.change_user or {}).get("password", "")]
    t0 = time.monotonic()
    if spec.client == "cli":
        res = _run_cli(spec, env)
    elif pool is not None:
        res = pool.login(spec)
    else:
        res = _run_worker(spec, env)
    res.elapsed = round(time.monotonic() - t0, 3)
    res.stderr = redact(res.stderr, secrets)
    return res


class Worker:
    """A long-lived ``clients.py --serve`` process for one Python client library.

    Reads one LoginSpec (JSON line) at a time on stdin, answers one LoginResult (JSON line). The
    libmariadb clients get the key-log shim preloaded for good (it does nothing unless
    SSLKEYLOGFILE is set, which the worker sets or clears per login)."""

    def __init__(self, client: str, keylog_shim: str | None = None):
        self.client = client
        env = _clean_env()
        if client in LIBMARIADB_CLIENTS and keylog_shim:
            env["LD_PRELOAD"] = keylog_shim
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
        )
        self._buf = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ping(self, timeout: float = 30) -> None:
        """Make the worker import its client library now; wait for its answer."""
        self._send({"ping": self.client})
        self._read_line(timeout)

    def _send(self, obj: dict) -> None:
        self.proc.stdin.write(json.dumps(obj).encode() + b"\n")
        self.proc.stdin.flush()

    def _read_line(self, timeout: float) -> bytes | None:
        """One line from the worker; None on EOF or timeout (the worker is then gone)."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close(kill=True)
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait()
                    return None
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def login(self, spec: LoginSpec) -> LoginResult:
        try:
            self._send(asdict(spec))
        except (BrokenPipeError, OSError) as e:
            return LoginResult(spec.client, error=ClientError("WorkerCrashed", f"write: {e}"))
        line = self._read_line(spec.timeout + 20)
        if line is None:
            what = "timed out" if self.proc.returncode in (None, -9) else "exited"
            return LoginResult(
                spec.client,
                error=ClientError("WorkerCrashed", f"worker {what} ({self.proc.returncode})"),
            )
        return LoginResult.from_dict(json.loads(line))

    def close(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            try:
                if kill:
                    raise OSError("kill")
                self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class WorkerPool:
    """One long-lived worker per Python client, started on first use (one lane = one pool)."""

    def __init__(self, keylog_shim: str | os.PathLike | None = None):
        self.keylog_shim = str(keylog_shim) if keylog_shim else None
        self.workers: dict[str, Worker] = {}

    def warm(self, client: str) -> None:
        """Start the client's worker now (and import its library), outside any capture."""
        if client == "cli":
            return
        w = self.workers.get(client)
        if w is None or not w.alive():
            w = self.workers[client] = Worker(client, self.keylog_shim)
            w.ping()

    def login(self, spec: LoginSpec) -> LoginResult:
        self.warm(spec.client)
        return self.workers[spec.client].login(spec)

    def close(self) -> None:
        for w in self.workers.values():
            w.close()
        self.workers.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _run_worker(spec: LoginSpec, env: dict) -> LoginResult:
    try:
        r = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            input=json.dumps(asdict(spec)),
            capture_output=True,
            text=True,
            env=env,
            timeout=spec.timeout + 20,
        )
    except subprocess.TimeoutExpired as e:
        return LoginResult(
            spec.client, error=ClientError("Timeout", f"worker timed out: {e}"), stderr=""
        )
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        return LoginResult(
            spec.client,
            error=ClientError("WorkerCrashed", f"exit {r.returncode}"),
            stderr=r.stderr[-3000:],
        )
    res = LoginResult.from_dict(json.loads(lines[-1]))
    res.stderr = r.stderr[-3000:]
    return res


# -- the mariadb CLI

_CLI_ERR = re.compile(r"^ERROR (\d+) \(([0-9A-Z]{5})\)( at line \d+)?: (.*)$")
_CLI_VERSION: str | None = None


def cli_version() -> str:
    global _CLI_VERSION
    if _CLI_VERSION is None:
        try:
            out = subprocess.run(["mariadb", "--version"], capture_output=True, text=True).stdout
        except OSError:
            out = ""
        m = re.search(r"Distrib ([^,\s]+)", out) or re.search(r"from (\S+)", out)
        _CLI_VERSION = f"mariadb CLI {m.group(1) if m else out.strip()}"
    return _CLI_VERSION


def cli_command(spec: LoginSpec) -> list[str]:
    cmd = [
        "mariadb",
        "--no-defaults",
        f"--host={spec.host}",
        f"--port={spec.port}",
        "--protocol=TCP",
        f"--user={spec.user}",
        f"--connect-timeout={int(spec.timeout)}",
        "--batch",
        "--skip-column-names",
    ]
    if spec.database:
        cmd.append(f"--database={spec.database}")
    if spec.tls == "off":
        cmd.append("--skip-ssl")
    elif spec.tls == "on":
        cmd += ["--ssl", f"--ssl-ca={spec.ca}", "--ssl-verify-server-cert"]
    if spec.compress:
        cmd.append("--compress")
    cmd += spec.cli_args
    cmd += ["-e", ";\n".join(SESSION_SQL) if spec.session_queries else "DO 1"]
    return cmd


def _run_cli(spec: LoginSpec, env: dict) -> LoginResult:
    res = LoginResult("cli", version=cli_version())
    if spec.password:
        env["MYSQL_PWD"] = spec.password  # read by libmariadb when no -p is given
    try:
        r = subprocess.run(
            cli_command(spec),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=spec.timeout + 10,
        )
    except subprocess.TimeoutExpired:
        res.error = ClientError("Timeout", "mariadb CLI timed out")
        return res
    res.stderr = r.stderr[-3000:]
    err_line = next((ln for ln in r.stderr.splitlines() if ln.startswith("ERROR ")), None)
    if err_line:
        m = _CLI_ERR.match(err_line)
        err = ClientError(
            "ERROR",
            err_line,
            int(m.group(1)) if m else None,
            m.group(2) if m else None,
        )
        if m and m.group(3):  # "ERROR 1820 (HY000) at line 1": the login worked, a statement failed
            res.connected = True
            res.command_error = err
        else:
            res.error = err
    elif r.returncode != 0:
        res.error = ClientError("ERROR", f"mariadb exited {r.returncode}: {r.stderr.strip()[:300]}")
    else:
        res.connected = True
    if res.connected and spec.session_queries and not res.command_error:
        lines = [ln.split("\t") for ln in r.stdout.splitlines()]
        sess = {}
        if lines and len(lines[0]) == 2:
            sess["current_user"] = lines[0][0]
            sess["database"] = None if lines[0][1] == "NULL" else lines[0][1]
        for row in lines[1:]:
            if len(row) == 2:
                sess[row[0].lower()] = row[1]
        res.session = sess
    return res


# ----------------------------------------------------------------------------- worker side


def _err_from_exception(e: BaseException) -> ClientError:
    cls = type(e).__name__
    code = getattr(e, "errno", None)
    sqlstate = getattr(e, "sqlstate", None)
    args = getattr(e, "args", ())
    if code is None and args and isinstance(args[0], int):
        code = args[0]
    if not isinstance(code, int) or code <= 0:
        code = None
    return ClientError(cls, str(e), code, sqlstate or None)


class _Driver:
    name = ""

    def version(self) -> str:
        raise NotImplementedError

    def connect(self, spec: LoginSpec):
        raise NotImplementedError

    def query(self, conn, sql: str) -> list[tuple]:
        cur = conn.cursor()
        try:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    def change_user(self, conn, user: str, password: str, database: str | None) -> None:
        raise NotImplementedError(f"{self.name} has no COM_CHANGE_USER")

    def close(self, conn) -> None:
        conn.close()


class _PyMySQL(_Driver):
    name = "pymysql"

    def version(self) -> str:
        import pymysql

        return "PyMySQL " + ".".join(str(x) for x in pymysql.VERSION[:3])

    def connect(self, spec):
        import pymysql

        kw = dict(
            host=spec.host,
            port=spec.port,
            user=spec.user,
            password=spec.password,
            database=spec.database,
            connect_timeout=spec.timeout,
            read_timeout=spec.timeout,
            write_timeout=spec.timeout,
        )
        if spec.tls == "off":
            kw["ssl_disabled"] = True
        elif spec.tls == "on":
            kw.update(ssl_ca=spec.ca, ssl_verify_cert=True)
        if spec.compress:
            kw["compress"] = True  # PyMySQL: "not supported" (raises before connecting)
        return pymysql.connect(**kw)

    # PyMySQL has no COM_CHANGE_USER (no change_user method): the base class raises.


class _Connector(_Driver):
    name = "connector"

    def version(self) -> str:
        import mysql.connector

        return f"mysql-connector-python {mysql.connector.__version__} (pure)"

    def connect(self, spec):
        import mysql.connector

        kw = dict(
            host=spec.host,
            port=spec.port,
            user=spec.user,
            password=spec.password,
            use_pure=True,
            connection_timeout=int(spec.timeout),
        )
        if spec.database:
            kw["database"] = spec.database
        if spec.tls == "off":
            kw["ssl_disabled"] = True
        elif spec.tls == "on":
            kw.update(ssl_ca=spec.ca, ssl_verify_cert=True)
        if spec.compress:
            kw["compress"] = True
        return mysql.connector.connect(**kw)

    def change_user(self, conn, user, password, database):
        conn.cmd_change_user(username=user, password=password, database=database or "")


class _MySQLdb(_Driver):
    name = "mysqlclient"

    def version(self) -> str:
        import MySQLdb

        v = ".".join(str(x) for x in MySQLdb.version_info[:3])
        return f"mysqlclient {v} (libmariadb {MySQLdb._mysql.get_client_info()})"

    def connect(self, spec):
        import MySQLdb

        kw = dict(
            host=spec.host,
            port=spec.port,
            user=spec.user,
            passwd=spec.password,
            connect_timeout=int(spec.timeout),
        )
        if spec.database:
            kw["db"] = spec.database
        if spec.tls == "on":
            kw["ssl"] = {"ca": spec.ca}
        # tls off / default: libmariadb 3.3 does not start TLS unless asked
        if spec.compress:
            kw["compress"] = 1
        return MySQLdb.connect(**kw)

    def change_user(self, conn, user, password, database):
        if database:
            conn.change_user(user, password, database)
        else:
            conn.change_user(user, password)


class _MariaDB(_Driver):
    name = "mariadb"

    def version(self) -> str:
        from importlib.metadata import version

        import mariadb

        v = getattr(mariadb, "__version__", None) or version("mariadb")
        return f"MariaDB Connector/Python {v} (libmariadb {mariadb.mariadbapi_version})"

    def connect(self, spec):
        import mariadb

        kw = dict(
            host=spec.host,
            port=spec.port,
            user=spec.user,
            password=spec.password,
            connect_timeout=int(spec.timeout),
        )
        if spec.database:
            kw["database"] = spec.database
        if spec.tls == "on":
            kw.update(ssl=True, ssl_ca=spec.ca, ssl_verify_cert=True)
        if spec.compress:
            kw["compress"] = True
        return mariadb.connect(**kw)

    def change_user(self, conn, user, password, database):
        conn.change_user(user, password, database or "")


DRIVERS = {d.name: d for d in (_PyMySQL(), _Connector(), _MySQLdb(), _MariaDB())}


def _session(driver: _Driver, conn) -> dict:
    rows = driver.query(conn, SESSION_SQL[0])
    sess = {"current_user": _s(rows[0][0]), "database": _s(rows[0][1])}
    for name, value in driver.query(conn, SESSION_SQL[1]):
        sess[_s(name).lower()] = _s(value)
    return sess


def _s(v):
    return v.decode() if isinstance(v, (bytes, bytearray)) else v


def worker_login(spec: LoginSpec) -> LoginResult:
    driver = DRIVERS[spec.client]
    res = LoginResult(spec.client)
    try:
        res.version = driver.version()
    except Exception as e:  # noqa: BLE001
        res.error = _err_from_exception(e)
        return res
    try:
        conn = driver.connect(spec)
    except Exception as e:  # noqa: BLE001 - any client exception is a result
        res.error = _err_from_exception(e)
        return res
    res.connected = True
    try:
        if spec.session_queries:
            try:
                res.session = _session(driver, conn)
            except Exception as e:  # noqa: BLE001
                res.command_error = _err_from_exception(e)
        if spec.change_user:
            cu = spec.change_user
            out: dict = {"ok": False, "error": None, "current_user": None}
            try:
                driver.change_user(conn, cu["user"], cu.get("password", ""), cu.get("database"))
                out["ok"] = True
                out["current_user"] = _s(driver.query(conn, SESSION_SQL[0])[0][0])
            except Exception as e:  # noqa: BLE001
                out["error"] = _err_from_exception(e)
            res.change_user = out
    finally:
        try:
            driver.close(conn)
        except Exception:  # noqa: BLE001 - a connection the server dropped
            pass
    return res


def _result_line(spec: LoginSpec, res: LoginResult) -> str:
    secrets = [spec.password, (spec.change_user or {}).get("password", "")]
    return redact(json.dumps(res.to_dict()), [s for s in secrets if s])


def _worker_main() -> int:
    """One login: the spec as JSON on stdin, the result as one JSON line on stdout."""
    spec = LoginSpec(**json.loads(sys.stdin.read()))
    print(_result_line(spec, worker_login(spec)), flush=True)
    return 0


def _serve_main() -> int:
    """Many logins, one at a time: a spec per stdin line, a result per stdout line."""
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if "ping" in req:  # import the library now, report its version
            try:
                version = DRIVERS[req["ping"]].version()
            except Exception as e:  # noqa: BLE001
                version = f"unavailable: {e}"
            out.write(json.dumps({"version": version}) + "\n")
            out.flush()
            continue
        spec = LoginSpec(**req)
        if spec.keylog:  # Python's ssl and the shim both read it at connect time
            os.environ["SSLKEYLOGFILE"] = spec.keylog
        else:
            os.environ.pop("SSLKEYLOGFILE", None)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            res = worker_login(spec)
        res.stderr = buf.getvalue()[-3000:]
        out.write(_result_line(spec, res) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    # Run as a script, this file's folder is sys.path[0], and it holds the lab's own mariadb.py:
    # drop it so that `import mariadb` is MariaDB Connector/Python.
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != HERE]
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_worker_main())
    if sys.argv[1:] == ["--serve"]:
        sys.exit(_serve_main())
    print("usage: clients.py --worker | --serve  (specs as JSON on stdin)", file=sys.stderr)
    sys.exit(2)
