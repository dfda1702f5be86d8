"""The lab's non-Python clients: one small program per language in ``tests/lab/ext/``.

Clients (``EXT_CLIENTS``), all from Debian packages or npm (``scripts/lab_setup.sh`` installs them):

=============  ==========================================================  =========================
name           library                                                     TLS key log
=============  ==========================================================  =========================
go             go-sql-driver/mysql (golang-github-go-sql-driver-mysql-dev)  tls.Config.KeyLogWriter
node-mysql     npm ``mysql`` (tests/lab/node/)                              node ``--tls-keylog``
node-mysql2    npm ``mysql2`` (tests/lab/node/)                             node ``--tls-keylog``
php-pdo        PHP PDO_mysql on mysqlnd (php-mysql)                         LD_PRELOAD shim (OpenSSL)
php-mysqli     PHP mysqli on mysqlnd (php-mysql)                            LD_PRELOAD shim (OpenSSL)
perl-mariadb   Perl DBD::MariaDB on libmariadb (libdbd-mariadb-perl)        LD_PRELOAD shim (OpenSSL)
perl-mysql     Perl DBD::mysql on libmariadb (libdbd-mysql-perl)            LD_PRELOAD shim (OpenSSL)
ruby-mysql2    Ruby mysql2 on libmariadb (ruby-mysql2)                      LD_PRELOAD shim (OpenSSL)
connectorj     MariaDB Connector/J (libmariadb-java, default-jre-headless)  none: JSSE cannot write
=============  ==========================================================  =========================

Every login is a fresh process: the spec goes in on stdin (JSON; ``key=hex`` lines for Java, whose
JDK has no JSON parser), one ``LoginResult`` JSON line comes out. Passwords never go on a command
line and are redacted from what comes back. ``Toolchain.prepare(workdir)`` builds what needs a
build (the Go program; the Java class with ``javac`` when there is one, else Java's single-file
source launcher) once per lab run, outside any capture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .clients import ClientError, LoginResult, LoginSpec, redact

HERE = Path(__file__).resolve().parent
EXT = HERE / "ext"
NODE_DIR = HERE / "node"
GOPATH = "/usr/share/gocode"
GO_DRIVER = Path(GOPATH, "src/github.com/go-sql-driver/mysql")
CONNECTOR_J = Path("/usr/share/java/mariadb-java-client.jar")

EXT_CLIENTS = (
    "go",
    "node-mysql",
    "node-mysql2",
    "php-pdo",
    "php-mysqli",
    "perl-mariadb",
    "perl-mysql",
    "ruby-mysql2",
    "connectorj",
)
# clients whose TLS goes through the process's OpenSSL: the LD_PRELOAD key-log shim works there
SHIM_CLIENTS = ("php-pdo", "php-mysqli", "perl-mariadb", "perl-mysql", "ruby-mysql2")
# clients that can write a TLS key log at all
KEYLOG_CLIENTS = ("go", "node-mysql", "node-mysql2", *SHIM_CLIENTS)
SETUP = "run scripts/lab_setup.sh"
# a short-lived JVM: C1 only, serial GC, class-data sharing (less CPU per login)
JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")
# What each client IS (the lab started it): (library, product) as mysqlwire's fingerprint must name
# them (tests/test_diagnose_fingerprint_clients.py, test_lab_ext_clients.py)
IDENTITY = {
    "go": ("Go-MySQL-Driver", "go-sql-driver/mysql"),
    "node-mysql": ("mysqljs", "node mysql"),
    "node-mysql2": ("node-mysql2", "node mysql2"),
    "php-pdo": ("mysqlnd", "PHP PDO_MySQL"),
    "php-mysqli": ("mysqlnd", "PHP mysqli"),
    "perl-mariadb": ("libmariadb", "DBD::MariaDB"),
    "perl-mysql": ("libmariadb", "DBD::mysql"),
    "ruby-mysql2": ("libmariadb", "Ruby mysql2"),
    "connectorj": ("MariaDB Connector/J", "MariaDB Connector/J"),
}


def _dpkg_version(package: str) -> str:
    try:
        r = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    v = r.stdout.strip()
    return v.split("-")[0] if r.returncode == 0 and v else "unknown"


@dataclass
class Toolchain:
    """How to start each client here, or why it cannot start (``missing``)."""

    workdir: Path
    commands: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    build_seconds: float = 0.0

    @classmethod
    def prepare(cls, workdir: Path) -> Toolchain:
        t0 = time.monotonic()
        tc = cls(Path(workdir))
        tc.workdir.mkdir(parents=True, exist_ok=True)
        tc._go()
        tc._node()
        tc._simple("php-pdo", "php", [str(EXT / "labclient.php"), "pdo"], "php-cli php-mysql")
        tc._simple("php-mysqli", "php", [str(EXT / "labclient.php"), "mysqli"], "php-mysql")
        tc._simple(
            "perl-mariadb", "perl", [str(EXT / "labclient.pl"), "MariaDB"], "libdbd-mariadb-perl"
        )
        tc._simple("perl-mysql", "perl", [str(EXT / "labclient.pl"), "mysql"], "libdbd-mysql-perl")
        tc._simple("ruby-mysql2", "ruby", [str(EXT / "labclient.rb")], "ruby-mysql2")
        tc._java()
        tc.build_seconds = time.monotonic() - t0
        return tc

    def _simple(self, name: str, exe: str, args: list[str], package: str) -> None:
        path = shutil.which(exe)
        if path is None:
            self.missing[name] = f"{exe} not found (Debian {package}); {SETUP}"
        else:
            self.commands[name] = [path, *args]

    def _go(self) -> None:
        go = shutil.which("go")
        if go is None or not GO_DRIVER.is_dir():
            self.missing["go"] = (
                f"go or {GO_DRIVER} not found (golang-go, golang-github-go-sql-driver-mysql-dev); "
                + SETUP
            )
            return
        out = self.workdir / "labclient-go"
        version = _dpkg_version("golang-github-go-sql-driver-mysql-dev")
        env = dict(os.environ, GOPATH=GOPATH, GO111MODULE="off", GOFLAGS="")
        env.setdefault("GOCACHE", str(Path.home() / ".cache" / "go-build"))
        r = subprocess.run(
            [go, "build", "-ldflags", f"-X main.driverVersion={version}", "-o", str(out)]
            + [str(EXT / "labclient.go")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        if r.returncode != 0 or not out.exists():
            self.missing["go"] = f"go build failed: {r.stderr.strip()[-500:]}"
        else:
            self.commands["go"] = [str(out)]

    def _node(self) -> None:
        node = shutil.which("node")
        for lib in ("mysql", "mysql2"):
            name = f"node-{lib}"
            if node is None:
                self.missing[name] = f"node not found (Debian nodejs); {SETUP}"
            elif not (NODE_DIR / "node_modules" / lib / "package.json").is_file():
                self.missing[name] = f"npm package {lib} not in {NODE_DIR}/node_modules; {SETUP}"
            else:
                self.commands[name] = [node, str(EXT / "labclient.js"), lib]

    def _java(self) -> None:
        java = shutil.which("java")
        if java is None or not CONNECTOR_J.is_file():
            self.missing["connectorj"] = (
                f"java or {CONNECTOR_J} not found (default-jre-headless, libmariadb-java); {SETUP}"
            )
            return
        javac = shutil.which("javac")
        classes = self.workdir / "java"
        if javac:
            classes.mkdir(exist_ok=True)
            r = subprocess.run(
                [javac, "-d", str(classes), "-cp", str(CONNECTOR_J), str(EXT / "LabClient.java")],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if r.returncode == 0:
                cp = f"{classes}:{CONNECTOR_J}"
                self.commands["connectorj"] = [java, *JVM_FLAGS, "-cp", cp, "LabClient"]
                return
        # a JRE only: Java's single-file source launcher compiles in memory at every start
        self.commands["connectorj"] = [
            java,
            *JVM_FLAGS,
            "-cp",
            str(CONNECTOR_J),
            str(EXT / "LabClient.java"),
        ]


def _java_spec(spec: LoginSpec) -> str:
    d = asdict(spec)
    lines = []
    for k in ("host", "port", "user", "password", "database", "tls", "ca", "timeout"):
        if d.get(k) is not None:
            lines.append(f"{k}={str(d[k]).encode().hex()}")
    lines.append(f"session_queries={('true' if spec.session_queries else 'false').encode().hex()}")
    for k, v in (spec_options(spec) or {}).items():
        lines.append(f"option.{k}={str(v).encode().hex()}")
    return "\n".join(lines) + "\n"


def spec_options(spec: LoginSpec) -> dict | None:
    """Client options ride in ``cli_args`` as ``key=value`` strings (LoginSpec has no options)."""
    out = {}
    for a in spec.cli_args:
        k, _, v = a.partition("=")
        out[k] = v
    return out or None


def ext_login(spec: LoginSpec, tc: Toolchain, keylog_shim: str | None) -> LoginResult:
    """One login with an external client; never raises for a failed login."""
    t0 = time.monotonic()
    if spec.client in tc.missing or spec.client not in tc.commands:
        why = tc.missing.get(spec.client, f"unknown client {spec.client}")
        return LoginResult(spec.client, error=ClientError("ClientMissing", why))
    cmd = list(tc.commands[spec.client])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL", "SSLKEYLOG"))}
    env.pop("LD_PRELOAD", None)
    env["MYSQLWIRE_LAB_NODE_DIR"] = str(NODE_DIR)
    if spec.keylog:
        if spec.client.startswith("node-"):
            cmd.insert(1, f"--tls-keylog={spec.keylog}")
        elif spec.client in SHIM_CLIENTS and keylog_shim:
            env["SSLKEYLOGFILE"] = spec.keylog
            env["LD_PRELOAD"] = keylog_shim
    if spec.client == "connectorj":
        stdin = _java_spec(spec)
    else:
        d = asdict(spec)
        d["options"] = spec_options(spec)
        stdin = json.dumps(d)
    secrets = [spec.password, (spec.change_user or {}).get("password", "")]
    try:
        r = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=spec.timeout + 30,
        )
    except subprocess.TimeoutExpired:
        return LoginResult(spec.client, error=ClientError("Timeout", "client timed out"))
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    stderr = redact(r.stderr[-3000:], secrets)
    if not lines:
        return LoginResult(
            spec.client,
            error=ClientError("WorkerCrashed", f"exit {r.returncode}, no result"),
            stderr=stderr,
        )
    d = json.loads(redact(lines[-1], secrets))
    d = {k: d.get(k) for k in ("client", "version", "connected", "error", "session")} | {
        "command_error": d.get("command_error"),
        "change_user": d.get("change_user"),
    }
    res = LoginResult.from_dict(d)
    res.client = spec.client
    res.elapsed = round(time.monotonic() - t0, 3)
    res.stderr = stderr
    return res


__all__ = ["EXT_CLIENTS", "IDENTITY", "KEYLOG_CLIENTS", "SHIM_CLIENTS", "Toolchain", "ext_login"]
