"""Helpers for the notebooks: where the bundled captures are, and what the lab
that made them knows (client, account, password) to replay their proofs.

Kept out of the notebooks so each one starts with the capture to explore.
Passwords read from the truth files are only ever handed to replay (inside a
:class:`mysqlwire.replay.Secrets`, whose repr hides them): never display them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mysqlwire
from mysqlwire.api import make_secrets


def _root() -> Path:
    """The repository root, from notebooks/ or from the root itself."""
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "captures" / "lab-samples").is_dir():
            return d
    return Path(__file__).resolve().parent.parent


ROOT = _root()
SAMPLES = ROOT / "captures" / "lab-samples"
LAB = ROOT / "captures" / "lab"


def find(path) -> Path | None:
    """A capture path as given, else relative to the repository root (None stays None)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.exists() or p.is_absolute() else ROOT / p


def open_mine(capture, keylog=None):
    """The capture named at the top of a notebook, MySQL found on any port."""
    return mysqlwire.open(find(capture), keylog=find(keylog), detect=True)


def truth_lines(folder: Path) -> list[dict]:
    """What the lab knows about each capture (passwords included: never display them)."""
    f = folder / "truth.jsonl"
    if not f.is_file():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def rsa_keys(folder: Path, t: dict) -> list[bytes]:
    """The emulated MySQL 8 server's RSA private key, for caching_sha2/sha256 full auth."""
    if t.get("rsa_private_key"):
        return [(folder / t["rsa_private_key"]).read_bytes()]
    for prefix, name in (
        ("mysql8_", "mysql8_emulator_rsa_private.pem"),
        ("m8emu_", "m8emu_server_rsa_private.pem"),
    ):
        if t["pcap"].startswith(prefix) and (folder / name).is_file():
            return [(folder / name).read_bytes()]
    return []


def secrets_for(folder: Path, t: dict):
    """Replay secrets holding the account's real password (their repr hides it)."""
    by_user = {}
    if t.get("user") is not None and t.get("account_password") is not None:
        by_user[t["user"]] = t["account_password"]
    cu = t.get("change_user")
    for entry in cu if isinstance(cu, list) else [cu] if isinstance(cu, dict) else []:
        if entry.get("user") is not None and entry.get("account_password") is not None:
            by_user[entry["user"]] = entry["account_password"]
    return make_secrets(by_user=by_user, rsa_key=rsa_keys(folder, t))


def open_capture(folder: Path, t: dict):
    """A lab capture with its server port and TLS key log from the truth file."""
    keylog = folder / t["keylog"] if t.get("keylog") else None
    return mysqlwire.open(folder / t["pcap"], ports=t["port"], keylog=keylog)


TRUTH = {t["scenario"]: t for t in truth_lines(SAMPLES)}


def load(scenario: str):
    """A lab capture's connection, diagnosed with the account's real password."""
    t = TRUTH[scenario]
    cap = open_capture(SAMPLES, t)
    cap.diagnose(secrets_for(SAMPLES, t))
    return cap.connection(1)


def captured(scenario: str):
    """(connection, its login exchange, the account's password as bytes: never display it)."""
    t = TRUTH[scenario]
    conn = open_capture(SAMPLES, t).connection(1)
    return conn, conn.login, t["account_password"].encode()


def switch_data(login) -> bytes:
    return next(s.data for s in login.steps if s.kind == "auth_switch_request")


def client_answers(login) -> list:
    return [s for s in login.steps if s.sender == "client"]


def facts(c) -> dict:
    """The checklist of the two paths, from the wire."""
    from mysqlwire.notebook import client_label

    first = c.login.steps[0] if c.login and c.login.steps else None
    return {
        "server": c.server_version,
        "client library": client_label(c),
        "user": c.user,
        "TLS": c.tls_info.get("tls_version") if c.tls else "no",
        "greeting plugin": c.greeting_plugin,
        "plugin named by client": c.client_plugin,
        "first auth response": f"{len(first.data)} bytes" if first else None,
        "auth switches": ", ".join(c.switches) or "-",
        "final plugin": c.final_plugin,
        "outcome": c.outcome,
        "error": f"{c.error['code']} {c.error['message']}" if c.error else "-",
        "replay verdict": (c.extra.get("verdict") or {}).get("verdict"),
    }


def sha1(b: bytes) -> bytes:
    return hashlib.sha1(b).digest()


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))
