"""``mysqlwire serve`` as a command, and its configuration (TOML, dicts, --user)."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import threading

import pytest

from mysqlwire.errors import UsageError
from mysqlwire.serve import ServerConfig, load_config
from mysqlwire.serve.config import parse_user_spec
from mysqlwire.serve.server import is_loopback, new_nonce

pymysql = pytest.importorskip("pymysql")

CLI = [sys.executable, "-c", "from mysqlwire.cli import main; main()", "serve"]
SECRET = "Cli-Secret-3"


class _Serve:
    """``mysqlwire serve`` in a subprocess; ``port`` parsed from its banner."""

    def __init__(self, *args: str, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [*CLI, "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self.port: int | None = None
        ready = threading.Event()

        def watch():
            for line in self.proc.stderr:
                self.lines.append(line)
                m = re.search(r"listening on [\d.]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self._watcher = threading.Thread(target=watch, daemon=True)
        self._watcher.start()
        ready.wait(30)

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._watcher.join(5)
        return rc, self.proc.stdout.read(), "".join(self.lines)


def _login(port, user, password, **kw):
    conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, **kw)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchall()
    finally:
        conn.close()


def test_cli_config_file_logins_are_logged_without_passwords(tmp_path):
    (tmp_path / "accounts.toml").write_text(
        """
[server]
version = "8.0.36-cli"
keylog_file = "keys.log"

[accounts.app]
plugin = "caching_sha2_password"
password_env = "APP_PW"
databases = ["shop"]

[accounts.old]
plugin = "mysql_native_password"
password_file = "old.pw"
"""
    )
    (tmp_path / "old.pw").write_text("Old-Pw-1\n")
    srv = _Serve("--config", str(tmp_path / "accounts.toml"), env={"APP_PW": SECRET})
    try:
        assert srv.port, "".join(srv.lines)
        assert _login(srv.port, "app", SECRET, ssl_disabled=True) == ((1,),)
        assert _login(srv.port, "old", "Old-Pw-1") == ((1,),)
        with pytest.raises(pymysql.err.OperationalError) as exc:
            _login(srv.port, "app", "not-" + SECRET, ssl_disabled=True)
        assert exc.value.args[0] == 1045
    finally:
        rc, out, err = srv.stop()
    assert rc == 0, err
    assert "MySQL 8.0.36-cli listening on 127.0.0.1:" in err
    logins = [line for line in err.splitlines() if " login user=" in line]
    assert len(logins) == 3, err
    assert "user='app' plugin=caching_sha2_password path=full-rsa cache=miss result=OK" in logins[0]
    assert "switch=mysql_native_password" in logins[1] and "tls=yes" in logins[1]
    assert "result=ERR 1045 (28000)" in logins[2]
    for secret in (SECRET, "Old-Pw-1"):
        assert secret not in err and secret not in out
    assert (tmp_path / "keys.log").read_text().count("CLIENT_") >= 1  # TLS login keyed


def test_cli_user_with_password_file_warm_cache_and_rsa_dump(tmp_path):
    pwfile = tmp_path / "pw"
    pwfile.write_text(SECRET + "\n")
    dump = tmp_path / "rsa.pem"
    srv = _Serve(
        "--user", "app:sha2", "--user", "s:sha256", "--password-file", str(pwfile),
        "--warm-cache", "--no-tls", "--dump-rsa-key", str(dump),
    )  # fmt: skip
    try:
        assert srv.port, "".join(srv.lines)
        assert _login(srv.port, "app", SECRET) == ((1,),)
        assert _login(srv.port, "s", SECRET) == ((1,),)
    finally:
        rc, _, err = srv.stop()
    assert rc == 0, err
    assert "path=fast cache=hit result=OK" in err  # warm cache: fast from the first login
    assert "user='s' plugin=caching_sha2_password switch=sha256_password path=rsa" in err
    assert "TLS off" in err
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert dump.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert SECRET not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "app:sha2"], "--user needs --password-env VAR or --password-file F"),
        (["--password-env", "X"], "--password-env/--password-file need --user"),
        ([], "no accounts"),
        (["--user", "app:bogus", "--password-env", "HOME"], "unknown plugin 'bogus'"),
        (
            ["--user", "app:sha2", "--password-env", "MYSQLWIRE_UNSET_VAR"],
            "MYSQLWIRE_UNSET_VAR is not set",
        ),
    ],
)
def test_cli_usage_errors(args, message):
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert message in r.stderr


def test_cli_warns_loudly_when_not_loopback():
    # 192.0.2.1 (TEST-NET-1) is never a local address: the warning comes, then the bind fails
    r = subprocess.run(
        [
            *CLI,
            "--host",
            "192.0.2.1",
            "--port",
            "0",
            "--user",
            "a:native",
            "--password-env",
            "HOME",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "NOT a loopback address" in r.stderr
    assert "cannot listen on 192.0.2.1" in r.stderr


# ------------------------------------------------------------------ configuration
def test_config_from_dict_and_secrets_stay_hidden():
    cfg = ServerConfig.from_dict(
        {
            "server": {"port": 0, "collation": 45, "max_connections": 3},
            "accounts": {"u": {"plugin": "sha256_password", "password": "pw", "databases": ["*"]}},
        }
    )
    acct = cfg.accounts["u"]
    assert acct.plugin == "sha256_password" and acct.databases is None
    assert repr(acct.password) == "<secret>" and "pw" not in repr(cfg)
    assert cfg.collation == 45 and cfg.max_connections == 3
    with pytest.raises(UsageError, match="unknown server settings: bogus"):
        ServerConfig.from_dict({"server": {"bogus": 1}})
    with pytest.raises(UsageError, match="unknown keys"):
        ServerConfig.from_dict({"accounts": {"u": {"pasword": "x"}}})
    with pytest.raises(UsageError, match="unknown plugin"):
        ServerConfig(accounts={"u": {"plugin": "client_ed25519"}})
    with pytest.raises(UsageError, match="greeting_plugin"):
        ServerConfig(greeting_plugin="mysql_clear_password")


def test_load_config_resolves_paths_relative_to_the_file(tmp_path):
    (tmp_path / "c.toml").write_text('[server]\nrsa_private_key = "k.pem"\n[accounts.a]\n')
    cfg = load_config(tmp_path / "c.toml")
    assert cfg.rsa_private_key == str(tmp_path / "k.pem")
    assert cfg.accounts["a"].plugin == "caching_sha2_password"
    (tmp_path / "bad.toml").write_text("[server\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_user_spec_and_helpers():
    assert parse_user_spec("a:native") == ("a", "mysql_native_password")
    assert parse_user_spec("b") == ("b", "caching_sha2_password")
    assert parse_user_spec("c:clear") == ("c", "mysql_clear_password")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    for _ in range(50):
        nonce = new_nonce()
        assert len(nonce) == 20 and all(0x01 <= b <= 0x7F and b != 0x24 for b in nonce)
