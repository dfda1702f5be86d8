"""Throwaway real MariaDB servers for the lab.

``MariaDBLab`` starts three ``mariadbd`` processes from one ``mariadb-install-db`` data directory (copied,
so install runs once), each on a free loopback port, bound to the lab's loopback addresses
127.0.0.1-6 (``LANE_HOSTS``: one per parallel capture lane, so concurrent captures never see each
other's connections):

* ``main``: TLS (CA + server certificate generated here), ``auth_ed25519`` and ``auth_pam`` installed
  with ``INSTALL SONAME``, ``secure_auth=0`` (old passwords), every account in ``ACCOUNTS`` whose server
  is ``main``; PAM accounts get the ``dialog`` plugin.
* ``pamclear``: the same, started with ``--pam-use-cleartext-plugin`` (a global, start-up only
  setting), so its PAM account gets ``mysql_clear_password``.
* ``hostonly``: ``--skip-name-resolve`` and no account matching 127.0.0.1 (only ``'remote'@'10.9.9.9'``
  and root over the socket), so every TCP client from loopback gets 1130 before the greeting.

PAM uses a per-run service ``/etc/pam.d/mysqlwire-lab-<pid>`` running ``pam_exec`` with
``expose_authtok`` on a checker script in the lab's temp dir (no OS user is created; the checker
compares ``PAM_USER`` and the password with the lab's PAM accounts). The service file and the temp dir
are removed by ``stop()``; stale service files of dead runs are removed at the next start.

Everything runs as root (``mariadbd --user=root``, tcpdump on ``lo``, the PAM service file).
"""

from __future__ import annotations

import atexit
import ctypes
import datetime
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SETUP_COMMAND = "sudo bash scripts/lab_setup.sh"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")

# One loopback address per capture lane: scenarios in lane k talk to LANE_HOSTS[k], and the lane's
# capture filter names that address, so parallel lanes never capture each other's connections.
# Connections to 127.0.0.x still come *from* 127.0.0.1 (the loopback route's source address).
LANE_HOSTS = tuple(f"127.0.0.{i}" for i in range(1, 7))
CLIENT_IP = "127.0.0.1"

PAM_SERVICE_PREFIX = "mysqlwire-lab-"
PAM_DIR = Path("/etc/pam.d")


@dataclass(frozen=True)
class Account:
    """One lab account. ``password`` is what the account accepts (for the dual account: the native
    alternative's; ``alt_password`` is the ed25519 one)."""

    user: str
    password: str
    plugin: str  # server-side plugin: mysql_native_password, ed25519, mysql_old_password, pam
    server: str = "main"
    host: str = "%"
    create: str = ""  # the CREATE USER tail; {pw} is the SQL-quoted password
    grants: tuple[str, ...] = ()
    after: tuple[str, ...] = ()  # extra statements after CREATE (old password, lock, ...)
    alt_password: str | None = None
    notes: str = ""


def _q(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


ACCOUNTS: dict[str, Account] = {
    a.user: a
    for a in [
        Account(
            "app",
            "Tr0ub4dor&3",
            "mysql_native_password",
            create="IDENTIFIED BY {pw}",
            grants=("GRANT ALL ON shop.* TO 'app'@'%'",),
        ),
        Account(
            "reporter",
            "Rep0rt-pw",
            "mysql_native_password",
            create="IDENTIFIED BY {pw}",
            grants=("GRANT SELECT ON shop.* TO 'reporter'@'%'",),
        ),
        Account(
            "ops",
            "Ops-wide-5",
            "mysql_native_password",
            create="IDENTIFIED BY {pw}",
            grants=("GRANT SELECT ON *.* TO 'ops'@'%'",),
            notes="global SELECT: a missing database gives 1049, not 1044",
        ),
        Account("nopw", "", "mysql_native_password", create="", notes="empty password"),
        Account(
            "edu", "ed-secret-42", "ed25519", create="IDENTIFIED VIA ed25519 USING PASSWORD({pw})"
        ),
        Account(
            "dual",
            "dual-native-2",
            "ed25519",
            create="IDENTIFIED VIA ed25519 USING PASSWORD('dual-ed-first') "
            "OR mysql_native_password USING PASSWORD({pw})",
            alt_password="dual-ed-first",
            notes="ed25519 'dual-ed-first' OR mysql_native_password 'dual-native-2'",
        ),
        Account(
            "oldie",
            "old-pw-1",
            "mysql_old_password",
            create="",
            after=(
                "SET SESSION old_passwords=1",
                "SET PASSWORD FOR 'oldie'@'%' = OLD_PASSWORD({pw})",
                "SET SESSION old_passwords=0",
            ),
            notes="16-hex pre-4.1 hash; the server runs with secure_auth=0",
        ),
        Account("pamdlg", "pam-dialog-1", "pam", create="IDENTIFIED VIA pam USING {service}"),
        Account(
            "pamclr",
            "pam-clear-1",
            "pam",
            server="pamclear",
            create="IDENTIFIED VIA pam USING {service}",
            notes="server runs with pam_use_cleartext_plugin=ON",
        ),
        Account(
            "secure",
            "Tls-Only-77",
            "mysql_native_password",
            create="IDENTIFIED BY {pw} REQUIRE SSL",
            grants=("GRANT SELECT ON shop.* TO 'secure'@'%'",),
        ),
        Account(
            "frozen",
            "frozen-pw-1",
            "mysql_native_password",
            create="IDENTIFIED BY {pw} ACCOUNT LOCK",
        ),
        Account(
            "stale",
            "stale-pw-1",
            "mysql_native_password",
            create="IDENTIFIED BY {pw} PASSWORD EXPIRE",
            notes="expired password; MariaDB default disconnect_on_expired_password=OFF: sandbox",
        ),
        Account(
            "remote",
            "remote-pw-1",
            "mysql_native_password",
            server="hostonly",
            host="10.9.9.9",
            create="IDENTIFIED BY {pw}",
            notes="the hostonly server's only TCP account",
        ),
    ]
}


class LabUnavailable(RuntimeError):
    """The lab cannot run here (missing binary, not root, ...). The message says what to do."""


def skip_or_fail(reason: str) -> None:
    """Skip the calling test/fixture with a loud reason; FAIL instead when ``CI`` is set (a CI run
    that skips the real server is a hole)."""
    import pytest  # noqa: PLC0415 - this module is also used outside pytest

    if os.environ.get("CI"):
        pytest.fail(
            f"{reason}\n(CI is set: the real-traffic lab must not be skipped in CI; make the CI "
            "script run scripts/lab_setup.sh)",
            pytrace=False,
        )
    pytest.skip(f"REAL-TRAFFIC LAB NOT RUN: {reason}")


def find_binary(name: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN_DIRS)
    return shutil.which(name, path=path)


def check_prerequisites() -> dict[str, str]:
    """Paths of the binaries the lab needs; raises LabUnavailable naming what is missing."""
    found: dict[str, str] = {}
    missing = []
    for name in ("mariadbd", "mariadb-install-db", "mariadb"):
        p = find_binary(name)
        if p:
            found[name] = p
        else:
            missing.append(name)
    if missing:
        raise LabUnavailable(
            f"real-traffic lab: {', '.join(missing)} not found (packages mariadb-server, "
            f"mariadb-client); install them with `{SETUP_COMMAND}`"
        )
    if os.geteuid() != 0:
        raise LabUnavailable(
            "real-traffic lab: needs root (mariadbd --user=root, tcpdump on lo, /etc/pam.d service); "
            f"run the tests as root after `{SETUP_COMMAND}`"
        )
    for name in ("tcpdump", "gcc", "openssl"):
        p = find_binary(name)
        if p:
            found[name] = p
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _pdeathsig() -> None:  # pragma: no cover - runs in the child
    """Kill the server if the Python process that started it dies (pytest killed -9)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# ----------------------------------------------------------------------------- certificates


def make_certificates(d: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1..3 / localhost (cryptography)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mysqlwire lab CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    srv_key = key()
    sans = [x509.DNSName("localhost")] + [
        x509.IPAddress(ipaddress.ip_address(h)) for h in LANE_HOSTS
    ]
    srv = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": d / "ca.pem", "cert": d / "server-cert.pem", "key": d / "server-key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        srv_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    os.chmod(paths["key"], 0o600)
    return paths


# ----------------------------------------------------------------------------- PAM


PAM_CHECKER = """#!{python}
# mysqlwire lab PAM checker, run by pam_exec (expose_authtok): password on stdin, user in PAM_USER.
import os, sys
pw = sys.stdin.buffer.read().split(b"\\0")[0]
users = {{}}
with open({users!r}, "rb") as f:
    for line in f.read().splitlines():
        u, _, p = line.partition(b":")
        users[u] = p
sys.exit(0 if users.get(os.environb.get(b"PAM_USER", b"")) == pw else 1)
"""


def _remove_stale_pam_services() -> None:
    for f in PAM_DIR.glob(PAM_SERVICE_PREFIX + "*"):
        pid = f.name[len(PAM_SERVICE_PREFIX) :]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            f.unlink(missing_ok=True)


def setup_pam(base: Path) -> tuple[str, Path]:
    """Write the checker and the per-run PAM service; returns (service name, service file)."""
    if not any(
        Path(d, "pam_exec.so").exists()
        for d in (
            "/lib/x86_64-linux-gnu/security",
            "/usr/lib/x86_64-linux-gnu/security",
            "/lib/security",
            "/usr/lib/security",
            "/lib64/security",
        )
    ):
        # Not fatal: the PAM scenarios will fail loudly with 1045; say why here too.
        print("mysqlwire lab: pam_exec.so not found (package libpam-modules)", file=sys.stderr)
    users = base / "pam_users"
    users.write_bytes(
        b"".join(
            f"{a.user}:{a.password}\n".encode() for a in ACCOUNTS.values() if a.plugin == "pam"
        )
    )
    os.chmod(users, 0o600)
    checker = base / "pam_check.py"
    checker.write_text(PAM_CHECKER.format(python=sys.executable, users=str(users)))
    os.chmod(checker, 0o700)
    _remove_stale_pam_services()
    service = f"{PAM_SERVICE_PREFIX}{os.getpid()}"
    svc_file = PAM_DIR / service
    svc_file.write_text(
        "# mysqlwire real-traffic lab (temporary; removed when the lab stops)\n"
        f"auth required pam_exec.so quiet expose_authtok {checker}\n"
        "account required pam_permit.so\n"
    )
    return service, svc_file


# ----------------------------------------------------------------------------- servers


@dataclass
class MariaDBServer:
    name: str
    base: Path
    port: int
    binaries: dict[str, str]
    certs: dict[str, Path]
    extra_args: list[str] = field(default_factory=list)
    hosts: tuple[str, ...] = LANE_HOSTS
    proc: subprocess.Popen | None = None

    @property
    def datadir(self) -> Path:
        return self.base / f"{self.name}-data"

    @property
    def socket(self) -> Path:
        return self.base / f"{self.name}.sock"

    @property
    def log(self) -> Path:
        return self.base / f"{self.name}.err"

    @property
    def host(self) -> str:
        return self.hosts[0]

    def command(self) -> list[str]:
        return [
            self.binaries["mariadbd"],
            "--no-defaults",
            "--user=root",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            f"--bind-address={','.join(self.hosts)}",
            f"--pid-file={self.base / (self.name + '.pid')}",
            f"--log-error={self.log}",
            f"--tmpdir={self.base}",
            "--skip-name-resolve",
            "--secure-auth=0",
            "--skip-log-bin",
            "--performance-schema=0",
            "--innodb-buffer-pool-size=16M",
            "--innodb-log-file-size=8M",
            "--max-connect-errors=1000000",
            "--max-connections=100",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--loose-feedback=OFF",
            f"--ssl-ca={self.certs['ca']}",
            f"--ssl-cert={self.certs['cert']}",
            f"--ssl-key={self.certs['key']}",
            *self.extra_args,
        ]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_pdeathsig,
        )

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no error log)"

    def ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise LabUnavailable(
                f"mariadbd ({self.name}) exited during start-up; error log:\n{self.log_tail()}"
            )
        if not self.socket.exists():
            return False
        try:
            return "ready for connections" in self.log.read_text(errors="replace")
        except OSError:
            return False

    def sql(self, statements: str, *, timeout: float = 30) -> str:
        """Run SQL as root over the unix socket; raises with the server's message on error."""
        r = subprocess.run(
            [
                self.binaries["mariadb"],
                "--no-defaults",
                "-uroot",
                f"--socket={self.socket}",
                "--batch",
                "--skip-column-names",
            ],
            input=statements,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if r.returncode != 0:
            raise LabUnavailable(f"lab setup SQL failed on {self.name}: {r.stderr.strip()}")
        return r.stdout

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class MariaDBLab:
    """The three lab servers. ``start()`` then ``stop()`` (or use as a context manager)."""

    def __init__(self, base: Path | None = None, *, keep: bool = False):
        self.binaries = check_prerequisites()
        self._own_base = base is None
        self.base = Path(base or tempfile.mkdtemp(prefix="mysqlwire-lab-"))
        self.keep = keep
        self.servers: dict[str, MariaDBServer] = {}
        self.certs: dict[str, Path] = {}
        self.pam_service: str | None = None
        self._pam_file: Path | None = None
        self.version: str | None = None
        self.startup_seconds: float | None = None
        self._stopped = False

    # -- helpers for scenarios
    @property
    def ca(self) -> Path:
        return self.certs["ca"]

    def server(self, name: str) -> MariaDBServer:
        return self.servers[name]

    def __enter__(self) -> MariaDBLab:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> None:
        t0 = time.monotonic()
        atexit.register(self.stop)
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0

    def _start(self, timeout: float) -> None:
        self.certs = make_certificates(self.base)
        self.pam_service, self._pam_file = setup_pam(self.base)
        template = self.base / "template-data"
        r = subprocess.run(
            [
                self.binaries["mariadb-install-db"],
                "--no-defaults",
                "--user=root",
                f"--datadir={template}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--innodb-log-file-size=8M",
                # its own tmpdir: a server starting elsewhere removes stray #sql files
                # from a shared /tmp, which broke concurrent bootstraps
                f"--tmpdir={self.base}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if r.returncode != 0:
            raise LabUnavailable(
                f"mariadb-install-db failed ({r.returncode}): {(r.stderr or r.stdout)[-2000:]}"
            )
        specs = {
            "main": [],
            "pamclear": ["--plugin-load-add=auth_pam", "--pam-use-cleartext-plugin=ON"],
            "hostonly": [],
        }
        used: set[int] = set()
        for name, extra in specs.items():
            port = free_port()
            while port in used:
                port = free_port()
            used.add(port)
            srv = MariaDBServer(name, self.base, port, self.binaries, self.certs, extra)
            if name == "hostonly":
                shutil.move(str(template), srv.datadir)
            else:
                shutil.copytree(template, srv.datadir, symlinks=True)
            self.servers[name] = srv
        for srv in self.servers.values():
            srv.start()
        deadline = time.monotonic() + timeout
        pending = set(self.servers)
        while pending:
            for name in sorted(pending):
                if self.servers[name].ready():
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                raise LabUnavailable(
                    f"mariadbd did not become ready in {timeout}s: {sorted(pending)}; "
                    + "; ".join(self.servers[n].log_tail(5) for n in pending)
                )
            if pending:
                time.sleep(0.02)
        for name, srv in self.servers.items():
            srv.sql(self.setup_sql(name))
        self.version = self.servers["main"].sql("SELECT VERSION();").strip()

    def setup_sql(self, server: str) -> str:
        """Accounts and data for one server (root stays reachable only over the socket)."""
        out = [
            "SET SQL_LOG_BIN=0;",
            # install-db also creates root@127.0.0.1, root@::1 and root@<hostname> (empty password)
            "DELETE FROM mysql.global_priv WHERE Host <> 'localhost';",
            "DELETE FROM mysql.global_priv WHERE User = '';",
            "FLUSH PRIVILEGES;",
        ]
        if server == "main":
            out += ["INSTALL SONAME 'auth_ed25519';", "INSTALL SONAME 'auth_pam';"]
            out += [
                "CREATE DATABASE shop;",
                "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40));",
                "INSERT INTO shop.items VALUES (1,'apple'),(2,'pear'),(3,'plum'),(4,'fig');",
            ]
        for a in ACCOUNTS.values():
            if a.server != server:
                continue
            who = f"{_q(a.user)}@{_q(a.host)}"
            tail = a.create.format(pw=_q(a.password), service=_q(self.pam_service or ""))
            out.append(f"CREATE USER {who} {tail};")
            out += [s.format(pw=_q(a.password)) + ";" for s in a.after]
            out += [g + ";" for g in a.grants]
        out.append("FLUSH PRIVILEGES;")
        return "\n".join(out) + "\n"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for srv in self.servers.values():
            try:
                srv.stop()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        if self._pam_file is not None:
            self._pam_file.unlink(missing_ok=True)
        if self._own_base and not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def describe(self) -> str:
        ports = ", ".join(f"{n}={s.port}" for n, s in self.servers.items())
        return f"MariaDB {self.version} lab in {self.base} (ports {ports})"


def server_version_tag(version: str | None) -> str:
    """'10.11.19-MariaDB-0+deb12u1' -> 'mariadb-10.11.19' (the truth files' ``server`` field)."""
    m = re.match(r"(\d+\.\d+\.\d+)", version or "")
    return f"mariadb-{m.group(1)}" if m else f"mariadb-{version}"
