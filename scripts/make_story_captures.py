#!/usr/bin/env python3
"""Reproduce the user stories of ``shared/background`` on the wire: ``captures/stories``.

Each scenario starts a fresh ``mysqlwire serve`` (MySQL 8 connection phase) in-process on a
loopback port, runs one REAL client login against it under tcpdump, checks that the client got
the result the story says (its exception text or success), and writes
``captures/stories/<scenario>.pcap`` (+ ``.keys``, the server's NSS key log, for TLS) and a line
of ``truth.jsonl``. The story's diagnosis (``expected_code``) is written here, from the story
and the client's own error, before mysqlwire looks at the capture.

Stories that need a real MariaDB (mysql_old_password) point at the lab corpus instead
(``REFERENCES`` below; their truth comes from the lab run).

Clients: PyMySQL 1.2.4 (installed), PyMySQL 0.7.11 / 0.8.1 / 0.9.3 (source releases fetched with
``pip download`` into a cache and put on PYTHONPATH), mysql-connector-python (pure), the
``mariadb`` CLI. Needs root (tcpdump on lo).

    python3 scripts/make_story_captures.py            # all scenarios
    python3 scripts/make_story_captures.py -k clear   # names containing 'clear'
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mysqlwire.serve import ServerConfig, run_in_thread  # noqa: E402
from tests.lab.capture import capture  # noqa: E402

OUT = REPO / "captures" / "stories"
CACHE = Path(
    os.environ.get("MYSQLWIRE_STORY_CACHE", Path(tempfile.gettempdir()) / "mysqlwire-story-clients")
)

STORIES = {
    "000": "The plugin for authentication, 'caching_sha2_password', is unsupported (old PyMySQL)",
    "001": "Authentication plugin client/server compatibility",
    "002": "Authentication unplugged: when `mysql` works but PyMySQL fails (proxy / clear text)",
    "003": "Authentication method mismatch and the switch request",
    "004": "The old native authentication plugin (mysql_old_password)",
}

PW = {
    "sha2": "Sha2-Story-1",
    "native": "Native-Story-2",
    "iam": "iam-token-Story-3",
    "s256": "Sha256-Story-4",
}


@dataclass
class Scenario:
    name: str
    story: str
    client: str  # pymysql | connector | cli
    user: str
    account: dict
    expected_code: str
    expect: str  # "ok" or a substring of the client's error
    client_version: str | None = None  # PyMySQL source release to use
    server: dict = field(default_factory=dict)
    kwargs: dict = field(default_factory=dict)  # client options
    cli_args: tuple[str, ...] = ()
    block_cryptography: bool = False
    other_codes: tuple[str, ...] = ()
    notes: str = ""


def acct(plugin, pw, **kw):
    return {"plugin": plugin, "password": pw, **kw}


SCENARIOS = [
    # ---- 000: old PyMySQL vs caching_sha2_password ------------------------------------
    Scenario(
        "pymysql081_sha2_greeting",
        "000",
        "pymysql",
        "app",
        acct("caching_sha2_password", PW["sha2"], cache_warm=True),
        "CLIENT_LACKS_PLUGIN",
        "(using password: NO)",
        client_version="0.8.1",
        server={"collation": 45},
        notes="PyMySQL 0.8.1 copies the greeting's caching_sha2_password but computes no scramble: empty response, 1045 NO",
    ),
    Scenario(
        "pymysql081_sha2_switch",
        "000",
        "pymysql",
        "app",
        acct("caching_sha2_password", PW["sha2"], cache_warm=True),
        "CLIENT_LACKS_PLUGIN",
        "not configured",
        client_version="0.8.1",
        server={"collation": 45, "greeting_plugin": "mysql_native_password"},
        notes="native greeting, caching_sha2 account: the server switches and PyMySQL 0.8.1 raises 2059 'not configured'",
    ),
    Scenario(
        "pymysql0711_collation255",
        "000",
        "pymysql",
        "app",
        acct("caching_sha2_password", PW["sha2"]),
        "CLIENT_GAVE_UP_ON_GREETING",
        "KeyError",
        client_version="0.7.11",
        server={"collation": 255},
        notes="MySQL 8's default collation 255 is unknown to PyMySQL 0.7.11: KeyError before any response",
    ),
    Scenario(
        "pymysql124_sha2_ok",
        "000",
        "pymysql",
        "app",
        acct("caching_sha2_password", PW["sha2"]),
        "OK",
        "ok",
        kwargs={"ssl_disabled": True},
        notes="the fix: PyMySQL >= 0.9 (here 1.2.4) does caching_sha2 full authentication over RSA",
        other_codes=("SHA2_FULL_AUTH",),
    ),
    # ---- 001: client/server plugin compatibility --------------------------------------
    Scenario(
        "pymysql124_sha2_rsa_no_cryptography",
        "001",
        "pymysql",
        "app",
        acct("caching_sha2_password", PW["sha2"]),
        "RSA_ENCRYPTION_UNAVAILABLE",
        "cryptography",
        kwargs={"ssl_disabled": True},
        block_cryptography=True,
        notes="PyMySQL without the cryptography package: gets the RSA key, cannot encrypt, gives up",
    ),
    Scenario(
        "connector_sha256_no_tls",
        "001",
        "connector",
        "s256",
        acct("sha256_password", PW["s256"]),
        "SECURE_CHANNEL_REQUIRED",
        "requires SSL",
        kwargs={"ssl_disabled": True},
        notes="mysql-connector-python (pure) speaks sha256_password only over TLS",
    ),
    # ---- 002: the CLI works, PyMySQL fails: clear text through an IAM-like back end ------
    Scenario(
        "cli_clear_tls_ok",
        "002",
        "cli",
        "iam",
        acct("mysql_clear_password", PW["iam"], require_ssl=True),
        "PLUGIN_SWITCH",
        "ok",
        cli_args=("--ssl",),
        notes="the CLI (libmariadb) negotiates TLS and answers the mysql_clear_password switch: works",
    ),
    Scenario(
        "pymysql093_clear_no_tls",
        "002",
        "pymysql",
        "iam",
        acct("mysql_clear_password", PW["iam"], require_ssl=True),
        "TLS_REQUIRED",
        "Access denied",
        client_version="0.9.3",
        other_codes=("CLEARTEXT_WITHOUT_TLS",),
        notes="PyMySQL 0.9.3 uses TLS only with ssl=: the token goes in clear and the account (REQUIRE SSL) refuses it",
    ),
    Scenario(
        "connector_clear_no_tls",
        "002",
        "connector",
        "iam",
        acct("mysql_clear_password", PW["iam"], require_ssl=True),
        "CLEARTEXT_NOT_ENABLED",
        "requires SSL",
        kwargs={"ssl_disabled": True},
        notes="mysql-connector-python refuses mysql_clear_password without TLS",
    ),
    Scenario(
        "pymysql124_clear_tls_ok",
        "002",
        "pymysql",
        "iam",
        acct("mysql_clear_password", PW["iam"], require_ssl=True),
        "PLUGIN_SWITCH",
        "ok",
        notes="the fix: PyMySQL 1.2 negotiates TLS by itself (PREFERRED) and answers the clear-text switch inside it",
    ),
    # ---- 003: authentication method mismatch ------------------------------------------
    Scenario(
        "pymysql124_native_switch",
        "003",
        "pymysql",
        "nat",
        acct("mysql_native_password", PW["native"]),
        "PLUGIN_SWITCH",
        "ok",
        kwargs={"ssl_disabled": True},
        notes="greeting caching_sha2_password, account mysql_native_password: one AuthSwitchRequest",
    ),
    Scenario(
        "pymysql124_native_greeting_ok",
        "003",
        "pymysql",
        "nat",
        acct("mysql_native_password", PW["native"]),
        "OK",
        "ok",
        kwargs={"ssl_disabled": True},
        server={"greeting_plugin": "mysql_native_password"},
        notes="the server's default plugin is the account's: no switch (compare pymysql124_native_switch)",
    ),
]

# Stories told by captures that need a real MariaDB (the lab corpus made them).
REFERENCES = [
    # (story, pcap relative to captures/stories, expected code, other codes, note); port, client port,
    # user and password are read from that folder's truth.jsonl when the test runs (the lab may
    # regenerate its captures on other ports).
    ("004", "../lab-samples/lab_pymysql_old_oldpw.pcap", "PLUGIN_SWITCH", ["OLD_PASSWORD_IN_USE"],
     "PyMySQL 0.7.11 answers the bare old-password switch (secure_auth=0)"),
    ("004", "../lab-samples/mariadb_pymysql_oldpw.pcap", "OLD_PASSWORD_REFUSED", ["OLD_PASSWORD_IN_USE"],
     "PyMySQL 1.2.4 refuses the bare old-password switch"),
    ("004", "../lab/connector_oldpw.pcap", "OLD_PASSWORD_REFUSED", [],
     "mysql-connector-python: 'Authentication with old (insecure) passwords is not supported'"),
    ("001", "../lab-samples/lab_connector_ed25519.pcap", "CLIENT_LACKS_PLUGIN", [],
     "mysql-connector-python has no client_ed25519 (MariaDB)"),
]  # fmt: skip

_RUNNER = r"""
import json, os, sys
if os.environ.get("STORY_BLOCK_CRYPTOGRAPHY"):
    sys.modules["cryptography"] = None
kind = os.environ["STORY_CLIENT"]
kw = json.loads(os.environ["STORY_KWARGS"])
pw = os.environ["STORY_PW"]
port = int(os.environ["STORY_PORT"])
user = os.environ["STORY_USER"]
try:
    if kind == "pymysql":
        import pymysql
        c = pymysql.connect(host="127.0.0.1", port=port, user=user, password=pw, **kw)
        cur = c.cursor(); cur.execute("SELECT 1"); cur.fetchall(); c.close()
        print(json.dumps({"ok": True, "version": pymysql.__version__ if hasattr(pymysql, "__version__") else pymysql.VERSION}))
    else:
        import mysql.connector
        c = mysql.connector.connect(host="127.0.0.1", port=port, user=user, password=pw, use_pure=True, **kw)
        cur = c.cursor(); cur.execute("SELECT 1"); cur.fetchall(); c.close()
        print(json.dumps({"ok": True}))
except Exception as e:
    print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
"""


def pymysql_source(version: str) -> Path:
    """An extracted PyMySQL source release (fetched once with pip download)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    for d in CACHE.iterdir():
        if d.is_dir() and d.name.lower() == f"pymysql-{version}":
            return d
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-q",
            f"PyMySQL=={version}",
            "-d",
            str(CACHE),
        ],
        check=True,
    )
    for tgz in CACHE.glob("*.tar.gz"):
        if tgz.name.lower().startswith(f"pymysql-{version}"):
            with tarfile.open(tgz) as tf:
                tf.extractall(CACHE, filter="data")
    return pymysql_source(version)


def run_client(sc: Scenario, port: int, keylog: Path) -> str:
    pw = sc.account["password"]
    if sc.client == "cli":
        env = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL")}
        env["MYSQL_PWD"] = pw
        cmd = [
            shutil.which("mariadb"),
            "-h127.0.0.1",
            "-P",
            str(port),
            "-u",
            sc.user,
            "-N",
            "-B",
            *sc.cli_args,
            "-e",
            "SELECT 1",
        ]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
        return "ok" if r.returncode == 0 else r.stderr.strip()
    env = dict(os.environ)
    env.update(
        STORY_CLIENT=sc.client,
        STORY_KWARGS=json.dumps(sc.kwargs),
        STORY_PW=pw,
        STORY_PORT=str(port),
        STORY_USER=sc.user,
    )
    if sc.block_cryptography:
        env["STORY_BLOCK_CRYPTOGRAPHY"] = "1"
    if sc.client_version:
        env["PYTHONPATH"] = str(pymysql_source(sc.client_version))
    r = subprocess.run(
        [sys.executable, "-c", _RUNNER], env=env, capture_output=True, text=True, timeout=60
    )
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return f"runner failed: {r.stderr.strip()[-400:]}"
    return "ok" if res["ok"] else res["error"]


def client_label(sc: Scenario) -> str:
    if sc.client == "cli":
        return (
            "mariadb CLI "
            + subprocess.run(["mariadb", "--version"], capture_output=True, text=True)
            .stdout.split("Distrib ")[-1]
            .split(",")[0]
            .strip()
        )
    if sc.client == "connector":
        import mysql.connector

        return f"mysql-connector-python {mysql.connector.__version__} (pure)"
    if sc.client_version:
        return f"PyMySQL {sc.client_version}"
    import pymysql

    return f"PyMySQL {pymysql.__version__}"


def run(sc: Scenario, out: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        keylog = Path(tmp) / "keys.log"
        cfg = ServerConfig(
            port=0, accounts={sc.user: sc.account}, keylog_file=str(keylog), **sc.server
        )
        pcap = out / f"{sc.name}.pcap"
        with run_in_thread(cfg) as srv:
            with capture(pcap, srv.port):
                result = run_client(sc, srv.port, keylog)
            srv.wait_for(lambda: srv.connections and srv.connections[-1].closed, 10)
        if sc.expect == "ok" and result != "ok" or sc.expect != "ok" and sc.expect not in result:
            raise SystemExit(f"{sc.name}: the client got {result!r}, the story says {sc.expect!r}")
        keys = None
        if keylog.is_file() and any(
            line.split(" ", 1)[0]
            in ("CLIENT_RANDOM", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0")
            for line in keylog.read_text().splitlines()
        ):
            keys = f"{sc.name}.keys"
            shutil.copy(keylog, out / keys)
        return {
            "scenario": sc.name,
            "story": sc.story,
            "story_title": STORIES[sc.story],
            "pcap": pcap.name,
            "port": srv.port,
            "client_port": None,
            "server": f"mysqlwire serve ({cfg.version})",
            "client": client_label(sc),
            "user": sc.user,
            "password": sc.account["password"],
            "account_password": sc.account["password"],
            "account_plugin": sc.account["plugin"],
            "keylog": keys,
            "client_result": result,
            "expected_code": sc.expected_code,
            "other_codes": list(sc.other_codes),
            "notes": sc.notes,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", default="", help="only scenarios whose name contains this")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = []
    truth = args.out / "truth.jsonl"
    old = {}
    if truth.is_file():
        old = {
            json.loads(x)["scenario"]: json.loads(x)
            for x in truth.read_text().splitlines()
            if x.strip()
        }
    for sc in SCENARIOS:
        if args.k in sc.name:
            print(f"{sc.name} ...", flush=True)
            lines.append(run(sc, args.out))
        elif sc.name in old:
            lines.append(old[sc.name])
    for story, pcap, code, other, notes in REFERENCES:
        lines.append({
            "scenario": Path(pcap).stem, "story": story, "story_title": STORIES[story], "pcap": pcap,
            "truth_from": str(Path(pcap).parent / "truth.jsonl"), "expected_code": code, "other_codes": other,
            "notes": notes + " (lab capture: port, user and password come from its truth_from line)",
        })  # fmt: skip
    truth.write_text("".join(json.dumps(x) + "\n" for x in lines))
    print(f"wrote {len(lines)} lines to {truth}")


if __name__ == "__main__":
    main()
