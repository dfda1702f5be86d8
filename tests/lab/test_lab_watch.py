"""``mysqlwire watch -i lo`` as a process, against the real MariaDB and ``mysqlwire serve``.

Real clients log in while watch runs; each login's line must appear while watch is still
running (read from its stdout as it goes), with the diagnosis for failures and the replay
verdict when the password is given. Ctrl-C (SIGINT) ends it with a summary and dissect's
exit status.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .mariadb import ACCOUNTS, free_port

pymysql = pytest.importorskip("pymysql")
connector = pytest.importorskip("mysql.connector")

APP_PW = ACCOUNTS["app"].password
ED_USER = "edu"


class Watch:
    """``mysqlwire watch`` in the background; its stdout lines in a queue."""

    def __init__(self, args: list[str], env: dict | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mysqlwire", "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(
            target=self._pump, args=(self.proc.stdout, self.lines.put), daemon=True
        ).start()
        threading.Thread(
            target=self._pump, args=(self.proc.stderr, self.err.append), daemon=True
        ).start()

    @staticmethod
    def _pump(stream, put) -> None:
        for line in stream:
            put(line.rstrip("\n"))

    def wait_ready(self, timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any("watching" in e for e in self.err):
                time.sleep(0.5)  # tcpdump attaches right after it prints
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"watch ended early: {self.err}")
            time.sleep(0.05)
        raise AssertionError(f"watch did not start: {self.err}")

    def next_block(self, needle: str, timeout: float = 15) -> list[str]:
        """Lines up to and including the first containing ``needle`` (+ its indented lines)."""
        got: list[str] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            got.append(line)
            if needle in line:
                time.sleep(0.3)
                while not self.lines.empty():
                    nxt = self.lines.get_nowait()
                    got.append(nxt)
                return got
        raise AssertionError(
            f"no line with {needle!r} within {timeout}s; got {got}; stderr {self.err}"
        )

    def interrupt(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)


def _login(host, port, user, password, **kw):
    try:
        c = pymysql.connect(
            host=host,
            port=port,
            user=user,
            password=password,
            connect_timeout=5,
            ssl_disabled=True,
            **kw,
        )
    except pymysql.err.OperationalError as e:
        return e.args[0]
    c.close()
    return 0


@pytest.fixture
def pwfile(tmp_path):
    p = tmp_path / "pw"
    p.write_text(APP_PW + "\n")
    p.chmod(0o600)
    return p


def test_watch_mariadb_logins_live(mariadb, tmp_path, pwfile):
    srv = mariadb.server("main")
    saved = tmp_path / "failures"
    keylog = tmp_path / "keys.log"
    keylog.write_text("")
    w = Watch(
        [
            "-i",
            "lo",
            "--port",
            str(srv.port),
            "--password-file",
            str(pwfile),
            "--keylog",
            str(keylog),
            "--save-failures",
            str(saved),
        ]
    )
    try:
        w.wait_ready()
        assert _login(srv.host, srv.port, "app", APP_PW) == 0
        ok = w.next_block(" ok")
        assert "app" in ok[0] and "PROOF_MATCHES" in ok[0], ok

        assert _login(srv.host, srv.port, "app", APP_PW + "x") == 1045
        bad = w.next_block("FAILED")
        text = "\n".join(bad)
        assert "1045" in bad[0] and "PROOF_MISMATCH" in bad[0], bad
        assert "WRONG_PASSWORD" in text and "fix:" in text
        assert APP_PW not in text

        # plugin mismatch: mysql-connector (pure) cannot answer MariaDB's ed25519 switch
        try:
            connector.connect(
                host=srv.host,
                port=srv.port,
                user=ED_USER,
                password="x",
                use_pure=True,
                connection_timeout=5,
                ssl_disabled=True,
            )
        except connector.Error:
            pass
        mis = w.next_block("FAILED")
        assert "client_ed25519" in "\n".join(mis), mis

        # TLS with a key log the client writes while watch runs
        env = {**os.environ, "SSLKEYLOGFILE": str(keylog)}
        code = (
            "import pymysql,ssl,sys;"
            "ctx=ssl.create_default_context(cafile=sys.argv[3]);"
            "c=pymysql.connect(host=sys.argv[1],port=int(sys.argv[2]),user='app',"
            "password=sys.argv[4],ssl=ctx);c.close()"
        )
        subprocess.run(
            [sys.executable, "-c", code, srv.host, str(srv.port), str(mariadb.ca), APP_PW],
            check=True,
            env=env,
            timeout=30,
        )
        tls = w.next_block(" tls]")
        assert " ok" in tls[0] and "PROOF_MATCHES" in tls[0], tls
    finally:
        rc = w.interrupt()
    assert rc == 1  # a login failed: dissect's exit status
    summary = "\n".join(w.err)
    assert "4 login(s), 2 failed" in summary, summary
    files = sorted(saved.glob("*.pcap"))
    assert len(files) == 2, files
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o600
        assert APP_PW.encode() + b"x" not in f.read_bytes()


def test_watch_serve_mysql8_live(tmp_path):
    port = free_port()
    env = {"SERVE_PW": "s3rve-Pw!"}
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mysqlwire",
            "serve",
            "--port",
            str(port),
            "--user",
            "app8:sha2",
            "--password-env",
            "SERVE_PW",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    w = Watch(["-i", "lo"])  # no --port: MySQL found on serve's port by itself
    try:
        for _ in range(100):
            if _login("127.0.0.1", port, "nobody", "x") != 2003:
                break
            time.sleep(0.1)
        w.wait_ready()
        assert _login("127.0.0.1", port, "app8", "wrong") == 1045
        bad = w.next_block("FAILED")
        assert "caching_sha2_password" in bad[0] and "1045" in bad[0], bad
    finally:
        rc = w.interrupt()
        serve.terminate()
        serve.wait(timeout=10)
    assert rc == 1


def test_watch_explains_missing_capability_and_interface(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "mysqlwire", "watch", "-i", "nosuchif0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "no network interface named 'nosuchif0'" in r.stderr and "lo" in r.stderr
    assert "Traceback" not in r.stderr
    setpriv = "/usr/bin/setpriv"
    if os.geteuid() != 0 or not Path(setpriv).exists():
        pytest.skip("needs root and setpriv to drop the capture capabilities")
    r = subprocess.run(
        [
            setpriv,
            "--bounding-set=-net_raw,-net_admin",
            "--inh-caps=-net_raw,-net_admin",
            sys.executable,
            "-m",
            "mysqlwire",
            "watch",
            "-i",
            "lo",
            "--duration",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "CAP_NET_RAW" in r.stderr and "setcap" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
