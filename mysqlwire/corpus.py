"""The regression corpus: ``name.pcap`` + ``name.toml`` sidecar of reviewed
expectations.

A sidecar says how to read the capture (ports, key log, RSA key, password)
and what dissect / replay / diagnose must report for each connection.  Only
stable fields are kept (no timestamps).  ``mysqlwire capture add`` writes a
sidecar from today's output for a human to review; ``tests/test_corpus.py``
collects every sidecar under ``captures/`` and compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import MysqlwireError

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


#: keys that need the password (or the original, unredacted capture) to be
#: recomputed; recorded at ``capture add`` time, checked only when possible
PASSWORD_KEYS = ("verdict", "verdict_detail", "findings")
#: where ``capture check`` finds the password of a sidecar that says
#: ``password_given = true`` (the password itself is never stored)
PASSWORD_ENV = "MYSQLWIRE_CORPUS_PASSWORD"


class Sidecar:
    """A parsed sidecar and the capture it describes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.doc = _load_toml(self.path)
        self.capture = self.path.with_name(self.doc["capture"])
        self.unchecked: tuple[str, ...] = ()  # keys compare() could not recompute
        self.connections_checked = 0

    @property
    def name(self) -> str:
        return self.path.stem

    def _rel(self, key: str) -> Path | None:
        val = self.doc.get("read", {}).get(key)
        return self.path.with_name(val) if val else None

    def _password(self) -> str | None:
        read = self.doc.get("read", {})
        if "password" in read:  # lab sidecars: a test password written inline
            return read["password"]
        if self._rel("password_file"):  # older sidecars
            from .auth.passwords import read_password_file

            return read_password_file(self._rel("password_file"))
        if read.get("password_given"):
            import os

            return os.environ.get(PASSWORD_ENV)
        return None

    def run(self, password: str | None = None):
        """Dissect, replay (when a password/key is given) and diagnose."""
        read = self.doc.get("read", {})
        if password is None:
            password = self._password()
        return run_capture(
            self.capture,
            ports=tuple(read.get("ports", [])),
            detect=bool(read.get("detect")),
            keylog=self._rel("keylog"),
            rsa_key=self._rel("rsa_key"),
            password=password,
            diagnose=self.doc.get("diagnose", True),
        )

    def compare(self) -> list[str]:
        """Differences between today's output and the sidecar (empty = pass).
        Keys that cannot be recomputed (a redacted capture's verdicts, or a
        password that is not available) are listed in :attr:`unchecked`."""
        read = self.doc.get("read", {})
        password = self._password()
        skip: tuple[str, ...] = ()
        if read.get("redacted") or (read.get("password_given") and password is None):
            skip = PASSWORD_KEYS
        self.unchecked = skip
        expected = self.doc.get("connection", [])
        got = [expectations(c) for c in self.run(password)]
        self.connections_checked = len(got)
        diffs = []
        if len(got) != len(expected):
            diffs.append(f"{len(got)} connections, sidecar expects {len(expected)}")
        for i, (g, e) in enumerate(zip(got, expected, strict=False)):
            for key in sorted(set(g) | set(e)):
                if key in skip:
                    continue
                gv, ev = g.get(key), e.get(key)
                if gv != ev:
                    diffs.append(f"connection {i} {key}: got {gv!r}, sidecar {ev!r}")
        return diffs


def run_capture(
    capture: Path,
    *,
    ports=(),
    detect: bool = False,
    keylog: Path | None = None,
    rsa_key: Path | None = None,
    password: str | None = None,
    diagnose: bool = True,
) -> list:
    """Connections of ``capture``, replayed (with a password or RSA key) and diagnosed."""
    from .dissect import DissectOptions, iter_connections
    from .replay import Secrets, replay_connection

    kl = None
    if keylog:
        from .tls import KeyLog

        kl = KeyLog.from_file(keylog)
    opts = DissectOptions(ports=tuple(ports), detect=detect, keylog=kl)
    secrets = None
    if password is not None or rsa_key:
        secrets = Secrets()
        if password is not None:
            secrets.password = password
        if rsa_key:
            secrets.rsa_private_keys.append(Path(rsa_key).read_bytes())
    conns = list(iter_connections(capture, opts))
    try:
        from .diagnose import diagnose_connections
    except ImportError:  # pragma: no cover
        diagnose_connections = None
    for c in conns:
        if secrets is not None:
            replay_connection(c, secrets)
    if diagnose_connections is not None and diagnose:
        diagnose_connections(conns, secrets)  # capture-wide, as the CLI does
    return conns


def add_capture(
    src: Path,
    dest_dir: Path,
    *,
    name: str | None = None,
    redact: bool = False,
    ports=(),
    detect: bool = False,
    keylog: Path | None = None,
    rsa_key: Path | None = None,
    password: str | None = None,
    note: str | None = None,
    update: bool = False,
) -> tuple[Path, Path, int]:
    """Copy (or redact) ``src`` into ``dest_dir`` and write its sidecar;
    returns (capture, sidecar, connections).

    Expectations are computed on the *original* with ``password`` (and the key
    log / RSA key) first; with ``redact`` the dissection fields then come from
    the redacted copy (mapped users and addresses) while verdicts and findings
    stay those of the original.  The password is never written anywhere: the
    sidecar only says one was given.  Refused (:class:`NothingFound`) when the
    capture has no MySQL connection; nothing is written then."""
    from .errors import UsageError
    from .outputs import check_output, confined, open_output, write_output

    src = Path(src)
    dest_dir = Path(dest_dir)
    stem = name if name is not None else src.stem
    suffix = src.suffix or ".pcap"
    confined(dest_dir, stem, what="--name")
    dest = confined(dest_dir, f"{stem}{suffix}", what="--name")
    side = confined(dest_dir, f"{stem}.toml", what="--name")
    if not dest_dir.is_dir():
        dest_dir.mkdir(parents=True, exist_ok=True)
    for p in (dest, side):
        if (p.exists() or p.is_symlink()) and not update:
            raise UsageError(f"{p} exists (use --update to regenerate it)")
    inputs = [q for q in (src, keylog, rsa_key) if q]
    out_cap = check_output(dest, what="capture", inputs=inputs)
    out_side = check_output(side, what="sidecar", inputs=inputs)
    copies = {}
    if not redact:
        # a key log / RSA key beside the capture makes it decryptable: kept
        # only for unredacted entries, mode 0600
        for key, p in (("keylog", keylog), ("rsa_key", rsa_key)):
            if p:
                target = confined(dest_dir, f"{stem}{Path(p).suffix or '.' + key}")
                copies[key] = (Path(p), check_output(target, what=f"--{key}", inputs=inputs))
    orig = run_capture(
        src, ports=ports, detect=detect, keylog=keylog, rsa_key=rsa_key, password=password
    )
    if not orig:
        raise NothingFound(f"{src}: no MySQL connection found; no sidecar written")
    exps = [expectations(c) for c in orig]
    read: dict[str, Any] = {"ports": list(ports), "detect": detect}
    if redact:
        from .redact import RedactOptions
        from .redact import redact as run_redact

        run_redact(src, out_cap, RedactOptions(ports=tuple(ports), detect=detect))
        red = run_capture(dest, ports=ports, detect=detect)
        if len(red) != len(orig):
            out_cap.path.unlink(missing_ok=True)
            raise UsageError(
                f"{src}: the redacted copy dissects into {len(red)} connection(s), "
                f"the original into {len(orig)}; not added"
            )
        red_exps = [expectations(c) for c in red]
        for e, r in zip(exps, red_exps, strict=True):
            for key in PASSWORD_KEYS:
                r.pop(key, None)
                if key in e:
                    r[key] = e[key]
        exps = red_exps
        read["redacted"] = True
    else:
        with open(src, "rb") as fin, open_output(out_cap) as fout:
            while chunk := fin.read(1 << 20):
                fout.write(chunk)
        for key, (p, out) in copies.items():
            write_output(out, p.read_bytes(), secret=True)
            read[key] = out.path.name
    if password is not None:
        read["password_given"] = True
    doc = {
        "schema": SIDECAR_SCHEMA,
        "capture": dest.name,
        "note": note,
        "read": read,
        "connection": exps,
    }
    write_output(out_side, dumps(doc))
    return dest, side, len(exps)


class NothingFound(MysqlwireError):
    """A capture without any MySQL connection (exit status 3)."""


def find_sidecars(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*.toml") if p.is_file())
