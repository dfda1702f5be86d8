"""The regression corpus: ``name.pcap`` + ``name.toml`` sidecar of reviewed
expectations.

A sidecar says how to read the capture (ports, key log, RSA key, password)
and what dissect / replay / diagnose must report for each connection.  Only
stable fields are kept (no timestamps).  ``mysqlwire capture add`` writes a
sidecar from today's output for a human to review; ``tests/test_corpus.py``
collects every sidecar under ``captures/`` and compares.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

SIDECAR_SCHEMA = "mysqlwire/sidecar/1"

# connection-record keys kept in a sidecar (volatile ones such as timestamps
# and thread ids of randomised lab servers are left out on purpose)
RECORD_KEYS = (
    "client",
    "server",
    "server_version",
    "greeting_plugin",
    "client_plugin",
    "switches",
    "final_plugin",
    "user",
    "database",
    "tls",
    "compressed",
    "outcome",
)


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(path.read_text("utf-8"))


# ----------------------------------------------------------------- TOML out
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        out = ['"']
        for ch in v:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to a sidecar")


def dumps(doc: dict) -> str:
    """Sidecar dict -> TOML text (the small subset sidecars use)."""
    lines = [
        f"# {SIDECAR_SCHEMA}: reviewed expectations; regenerate with `mysqlwire capture add --update`"
    ]
    for key, val in doc.items():
        if not isinstance(val, (dict, list)) or (
            isinstance(val, list) and not (val and isinstance(val[0], dict))
        ):
            if val is not None:
                lines.append(f"{key} = {_toml_value(val)}")
    for key, val in doc.items():
        if isinstance(val, dict):
            lines.append("")
            lines.append(f"[{key}]")
            for k, v in val.items():
                if v is not None:
                    lines.append(f"{k} = {_toml_value(v)}")
    for key, val in doc.items():
        if isinstance(val, list) and val and isinstance(val[0], dict):
            for item in val:
                lines.append("")
                lines.append(f"[[{key}]]")
                for k, v in item.items():
                    if v is not None:
                        lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------ expectations
def expectations(conn) -> dict:
    """The stable facts of one connection (after replay/diagnose ran)."""
    rec = conn.to_record()
    out: dict[str, Any] = {k: rec[k] for k in RECORD_KEYS}
    err = rec["error"]
    out["error_code"] = err["code"] if err else None
    out["sqlstate"] = err["sqlstate"] if err else None
    out["error_message"] = err["message"] if err else None
    out["anomalies"] = rec["anomalies"]
    if rec["change_user"]:
        out["change_user_outcomes"] = [cu["outcome"] for cu in rec["change_user"]]
    if rec["command_error"]:
        out["command_error_code"] = rec["command_error"]["code"]
    verdict = conn.extra.get("verdict")
    if verdict:
        out["verdict"] = verdict["verdict"]
        if verdict.get("verdict_detail"):
            out["verdict_detail"] = verdict["verdict_detail"]
    diagnosis = conn.extra.get("diagnosis")
    if diagnosis is not None:
        out["findings"] = [f["code"] for f in diagnosis]
    return out


class Sidecar:
    """A parsed sidecar and the capture it describes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.doc = _load_toml(self.path)
        self.capture = self.path.with_name(self.doc["capture"])

    @property
    def name(self) -> str:
        return self.path.stem

    def _rel(self, key: str) -> Path | None:
        val = self.doc.get("read", {}).get(key)
        return self.path.with_name(val) if val else None

    def run(self):
        """Dissect, replay (when a password/key is given) and diagnose."""
        from .dissect import DissectOptions, iter_connections
        from .replay import Secrets, replay_connection

        read = self.doc.get("read", {})
        keylog = None
        if self._rel("keylog"):
            from .tls import KeyLog

            keylog = KeyLog.from_file(self._rel("keylog"))
        opts = DissectOptions(
            ports=tuple(read.get("ports", [3306])), detect=bool(read.get("detect")), keylog=keylog
        )
        secrets = None
        if "password" in read or self._rel("password_file") or self._rel("rsa_key"):
            secrets = Secrets()
            if "password" in read:
                secrets.password = read["password"]
            elif self._rel("password_file"):
                from .auth.passwords import read_password_file

                secrets.password = read_password_file(self._rel("password_file"))
            if self._rel("rsa_key"):
                secrets.rsa_private_keys.append(self._rel("rsa_key").read_bytes())
        conns = list(iter_connections(self.capture, opts))
        try:
            from .diagnose import diagnose_connections
        except ImportError:  # pragma: no cover
            diagnose_connections = None
        for c in conns:
            if secrets is not None:
                replay_connection(c, secrets)
        if diagnose_connections is not None and self.doc.get("diagnose", True):
            diagnose_connections(conns, secrets)  # capture-wide, as the CLI does
        return conns

    def compare(self) -> list[str]:
        """Differences between today's output and the sidecar (empty = pass)."""
        expected = self.doc.get("connection", [])
        got = [expectations(c) for c in self.run()]
        diffs = []
        if len(got) != len(expected):
            diffs.append(f"{len(got)} connections, sidecar expects {len(expected)}")
        for i, (g, e) in enumerate(zip(got, expected, strict=False)):
            for key in sorted(set(g) | set(e)):
                gv, ev = g.get(key), e.get(key)
                if gv != ev:
                    diffs.append(f"connection {i} {key}: got {gv!r}, sidecar {ev!r}")
        return diffs


def make_sidecar(
    capture: Path,
    *,
    ports=(3306,),
    detect: bool = False,
    keylog: Path | None = None,
    rsa_key: Path | None = None,
    password: str | None = None,
    password_file: Path | None = None,
    note: str | None = None,
) -> dict:
    """A sidecar dict for ``capture`` (paths relative to the capture's folder)."""
    read: dict[str, Any] = {"ports": list(ports), "detect": detect}
    if keylog:
        read["keylog"] = Path(keylog).name
    if rsa_key:
        read["rsa_key"] = Path(rsa_key).name
    if password is not None:
        read["password"] = password
    if password_file:
        read["password_file"] = Path(password_file).name
    doc = {"schema": SIDECAR_SCHEMA, "capture": Path(capture).name, "note": note, "read": read}
    side = Path(capture).with_suffix(".toml")
    tmp = Path(side).with_name(side.name + ".tmp")
    tmp.write_text(dumps({**doc, "connection": []}))
    try:
        conns = Sidecar(tmp).run()
    finally:
        tmp.unlink()
    doc["connection"] = [expectations(c) for c in conns]
    return doc


def add_capture(
    src: Path,
    dest_dir: Path,
    *,
    name: str | None = None,
    redact: bool = False,
    **kwargs,
) -> tuple[Path, Path]:
    """Copy (or redact) ``src`` into ``dest_dir`` and write its sidecar."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    stem = name or Path(src).stem
    suffix = Path(src).suffix or ".pcap"
    dest = dest_dir / f"{stem}{suffix}"
    if Path(src).resolve() != dest.resolve():
        if redact:
            from .redact import redact_capture

            redact_capture(
                src,
                dest,
                ports=tuple(kwargs.get("ports", (3306,))),
                detect=kwargs.get("detect", False),
            )
            # a key log beside a redacted capture would undo the redaction
            kwargs["keylog"] = None
        else:
            shutil.copyfile(src, dest)
    for key in ("keylog", "rsa_key", "password_file"):
        p = kwargs.get(key)
        if p and Path(p).resolve().parent != dest_dir.resolve():
            target = dest_dir / f"{stem}{Path(p).suffix or '.' + key}"
            shutil.copyfile(p, target)
            kwargs[key] = target
    doc = make_sidecar(dest, **kwargs)
    side = dest.with_suffix(".toml")
    side.write_text(dumps(doc))
    return dest, side


def find_sidecars(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*.toml") if p.is_file())
