"""Measure the diagnosis against labelled captures (``truth.jsonl``).

A truth line names a capture (``pcap``, ``port``, optional ``client_port``,
``keylog``, ``rsa_private_key``), the account (``user``, ``account_password``
= the server's password, ``password`` = what the client was configured with)
and the expected root cause (``expected_code``; ``"OK"`` = no error finding).
Truth is written by whoever made the capture (the lab, the story scripts),
never from mysqlwire's output.

``run(truth_files, mode)`` diagnoses every scenario with the account's
password (``mode="account"``, what an administrator has) or the client's
(``mode="client"``, what the person debugging the client has) and returns one
:class:`Outcome` per scenario; ``confusion()`` tabulates expected vs top code.
``scripts/calibrate_diagnosis.py`` prints the table; the tests assert every
scenario.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..dissect import DissectOptions, iter_connections
from ..replay import Secrets
from . import CaptureFacts, diagnose_connection

# RSA private keys of the emulated MySQL 8 servers in the lab samples (by pcap prefix)
_RSA_BY_PREFIX = {
    "mysql8_": "mysql8_emulator_rsa_private.pem",
    "m8emu_": "m8emu_server_rsa_private.pem",
}


@dataclass
class Outcome:
    corpus: str
    scenario: str
    expected: str
    top: str  # first finding's code, "OK" when there is no error finding
    codes: list[str] = field(default_factory=list)
    errors_per_exchange: dict[str, list[str]] = field(default_factory=dict)
    failure: bool = True  # the truth says the login (or change-user) failed

    @property
    def right(self) -> bool:
        if self.expected == "OK":
            return not self.errors_per_exchange
        return self.top == self.expected

    @property
    def contradictions(self) -> list[tuple[str, str, list[str]]]:
        """Exchanges with more than one error finding (two causes claimed)."""
        return [
            (self.scenario, ex, errs)
            for ex, errs in self.errors_per_exchange.items()
            if len(errs) > 1
        ]


def _is_failure(code: str | None) -> bool:
    from .rules import RULES_BY_CODE

    rule = RULES_BY_CODE.get(code or "")
    return rule is not None and rule.severity == "error"


def load(truth_file: Path) -> list[dict]:
    out = []
    for line in Path(truth_file).read_text().splitlines():
        if line.strip():
            t = json.loads(line)
            t["_dir"] = str(Path(truth_file).parent)
            out.append(t)
    return out


def _resolve(t: dict) -> dict | None:
    """A story line that points at a lab capture: merge the lab's fields."""
    if not t.get("truth_from"):
        return t
    src = (Path(t["_dir"]) / t["truth_from"]).resolve()
    if not src.is_file():
        return None
    pcap = Path(t["pcap"]).name
    for lab in load(src):
        if lab["pcap"] == pcap:
            keep = {k: t[k] for k in ("pcap", "expected_code", "other_codes", "scenario", "_dir")}
            return {**lab, **keep, "_keylog_dir": lab["_dir"]}
    return None


def _secrets(t: dict, mode: str) -> Secrets | None:
    which = "account_password" if mode == "account" else "password"
    by_user: dict[str, bytes] = {}
    if t.get(which) is not None and t.get("user") is not None:
        by_user[t["user"]] = t[which].encode()
    cu = t.get("change_user") or {}
    if cu.get(which) is not None and cu.get("user") is not None:
        by_user[cu["user"]] = cu[which].encode()
    if not by_user:
        return None
    d = Path(t["_dir"])
    keys = []
    if t.get("rsa_private_key"):
        keys.append((d / t["rsa_private_key"]).read_bytes())
    else:
        for prefix, name in _RSA_BY_PREFIX.items():
            if Path(t["pcap"]).name.startswith(prefix) and (d / name).is_file():
                keys.append((d / name).read_bytes())
    return Secrets(by_user=by_user, rsa_private_keys=keys)


def diagnose_scenario(t: dict, mode: str = "account"):
    """(connections, findings per connection) for one truth line."""
    t = _resolve(t)
    if t is None:
        return None
    d = Path(t["_dir"])
    keylog = None
    if t.get("keylog"):
        from ..tls import KeyLog

        kd = Path(t.get("_keylog_dir") or d)
        path = kd / t["keylog"]
        if not path.is_file():
            path = (d / t["pcap"]).resolve().parent / t["keylog"]
        keylog = KeyLog.from_file(path)
    pcap = (d / t["pcap"]).resolve()
    conns = list(iter_connections(str(pcap), DissectOptions(ports=(t["port"],), keylog=keylog)))
    if t.get("client_port"):
        conns = [c for c in conns if c.client.endswith(f":{t['client_port']}")]
    secrets = _secrets(t, mode)
    capture = CaptureFacts()
    for c in conns:
        capture.add(c)
    return t, conns, [diagnose_connection(c, secrets, capture=capture) for c in conns]


def run(truth_files: list[Path], mode: str = "account") -> list[Outcome]:
    out: list[Outcome] = []
    for tf in truth_files:
        corpus = Path(tf).parent.name
        for t0 in load(tf):
            res = diagnose_scenario(t0, mode)
            if res is None:
                continue
            t, conns, founds = res
            for found in founds:
                errors = [f for f in found if f.severity == "error"]
                per_ex: dict[str, list[str]] = {}
                for f in errors:
                    per_ex.setdefault(f.exchange, []).append(f.code)
                top = found[0].code if found else "OK"
                expected = t.get("expected_code") or "OK"
                cu = t.get("change_user") or {}
                failed = _is_failure(expected) or _is_failure(cu.get("expected_code"))
                out.append(
                    Outcome(
                        corpus,
                        t["scenario"],
                        expected,
                        top,
                        [f.code for f in found],
                        per_ex,
                        failed,
                    )
                )
    return out


def confusion(outcomes: list[Outcome]) -> Counter:
    return Counter((o.expected, o.top) for o in outcomes)


def format_table(outcomes: list[Outcome], *, failures_only: bool = True) -> str:
    rows = [o for o in outcomes if o.failure or not failures_only]
    conf = confusion(rows)
    lines = [f"{'expected':<30} {'top finding':<30} {'n':>4}"]
    for (exp, top), n in sorted(conf.items()):
        mark = "" if exp == top else "  <-- miss"
        lines.append(f"{exp:<30} {top:<30} {n:>4}{mark}")
    right = sum(o.right for o in rows)
    lines.append(
        f"right top finding: {right}/{len(rows)} ({100.0 * right / max(1, len(rows)):.1f}%)"
    )
    contra = [c for o in outcomes for c in o.contradictions]
    lines.append(f"exchanges with more than one error finding: {len(contra)}")
    for scen, ex, errs in contra:
        lines.append(f"  {scen} {ex}: {', '.join(errs)}")
    for o in rows:
        if not o.right:
            lines.append(f"  miss {o.corpus}/{o.scenario}: expected {o.expected}, got {o.codes}")
    return "\n".join(lines)
