"""Diagnosis: explain every login from wire evidence, with the fix.

``diagnose_connection(conn, secrets=None)`` fingerprints the client, runs
replay when a password is given (and no verdict exists yet), evaluates the
rule table (:mod:`mysqlwire.diagnose.rules`) on the login and on every
COM_CHANGE_USER, and returns the findings ranked root cause first:
severity (error, warning, info, security), then specificity.  It also stores
``conn.extra["diagnosis"]`` (list of dicts) and
``conn.extra["client_fingerprint"]`` (a label) for the renderers.

One root cause per exchange: after the more precise findings have hidden the
vaguer ones (``suppresses``), the highest-ranked error finding is the cause;
any other error finding of the same exchange is kept as an *alternative*
under it (severity info, ``under`` = the cause's code), so no exchange ever
states two causes.  Security findings are summarised once per account and
server in :func:`diagnose_connections` (the first login carries them, with
the number of other logins that show the same).

Findings never contain passwords, clear-text payloads or proof bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..model import Connection
from .context import CaptureFacts, Facts, Repeats
from .fingerprint import Fingerprint, fingerprint_connection
from .rules import RULES, RULES_BY_CODE, SEVERITY_ORDER, Rule

__all__ = [
    "Finding",
    "diagnose_connection",
    "diagnose_connections",
    "summarise_repeats",
    "has_problem",
    "worst_severity",
    "RULES",
    "RULES_BY_CODE",
    "Fingerprint",
    "fingerprint_connection",
    "CaptureFacts",
]


@dataclass
class Finding:
    code: str
    severity: str
    title: str
    evidence: str
    fix: str
    exchange: str = "login"
    rank: int = 0
    order: int = 0
    under: str | None = None  # an alternative to this root cause (same exchange)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "evidence": self.evidence,
            "fix": self.fix,
        }
        if self.under:
            d["under"] = self.under
        return d

    def sort_key(self) -> tuple:
        return (SEVERITY_ORDER[self.severity], -self.rank, self.order)


class _Fields(dict):
    def __missing__(self, key: str) -> str:  # a template naming an absent value shows it
        return "{" + key + "}"


def _token_like(secrets, user: str | None) -> bool:
    if secrets is None:
        return False
    try:
        pws = [p for _, p in secrets.passwords_for(user)]
    except Exception:  # pragma: no cover - defensive: never fail a diagnosis on secrets
        return False
    for pw in pws:
        b = pw if isinstance(pw, (bytes, bytearray)) else str(pw).encode()
        if b"X-Amz-Signature" in b or b"Action=connect" in b or b"X-Amz-Credential" in b:
            return True
    return False


def _facts_for(conn: Connection, fp: Fingerprint, secrets, capture: CaptureFacts) -> list[Facts]:
    given = secrets is not None and not getattr(secrets, "empty", True)
    out = []
    cu_verdicts = conn.extra.get("change_user_verdicts") or []
    exchanges = conn.exchanges or [None]
    for i, ex in enumerate(exchanges):
        if i == 0:
            verdict = conn.extra.get("verdict")
        else:
            verdict = cu_verdicts[i - 1] if i - 1 < len(cu_verdicts) else None
        user = ex.user if ex is not None else None
        replayed = (verdict or {}).get("verdict") in (
            "PROOF_MATCHES",
            "PROOF_MISMATCH",
            "EMPTY_PASSWORD_SENT",
            "NONCE_MISUSE",
        )
        out.append(
            Facts(
                conn=conn,
                ex=ex,
                index=i,
                fp=fp,
                verdict=verdict,
                password_given=given or replayed,
                token_like=_token_like(secrets, user) if given else False,
                capture=capture,
            )
        )
    return out


def _fields(f: Facts, values: dict[str, Any]) -> _Fields:
    base = {
        "client": f.client,
        "server": f.server,
        "account": f.account,
        "user": f.user if f.user is not None else "<user>",
        "account_sql": f.account_sql,
        "host": f.host,
        "plugin": f.final_plugin or f.conn.greeting_plugin or "?",
        "code": f.code if f.code is not None else "-",
        "message": f.message,
        "alter": f.alter_user,
        "native_sql": f.set_plugin_sql("mysql_native_password"),
    }
    base.update(values)
    return _Fields(base)


def _run(rule: Rule, f: Facts, order: int) -> Finding | None:
    h = rule.check(f)
    if h is None:
        return None
    fields = _fields(f, h.values)
    title = rule.title.format_map(fields)
    fix = rule.fix.format_map(fields)
    if not f.is_login:
        title = f"{f.exchange_label} (user '{f.user}'): {title}"
    return Finding(
        code=rule.code,
        severity=h.severity or rule.severity,
        title=title,
        evidence=h.evidence,
        fix=fix,
        exchange=f.exchange_label,
        rank=rule.rank,
        order=order,
    )


def _prune(found: list[Finding]) -> list[Finding]:
    """Drop findings that a more precise one present explains (``suppresses``),
    and fallback rules when a real root cause was found."""
    suppressed: set[str] = set()
    for x in found:
        suppressed.update(RULES_BY_CODE[x.code].suppresses)
    kept = [x for x in found if x.code not in suppressed]
    if any(x.severity == "error" and not RULES_BY_CODE[x.code].fallback for x in kept):
        kept = [x for x in kept if not RULES_BY_CODE[x.code].fallback]
    errors = sorted((x for x in kept if x.severity == "error"), key=Finding.sort_key)
    for alt in errors[1:]:
        cause = errors[0]
        alt.severity = "info"
        alt.under = cause.code
        alt.rank = 0  # listed right after the cause's other support
        alt.title = f"alternative to {cause.code}: {alt.title}"
    return kept


def diagnose_connection(
    conn: Connection,
    secrets=None,
    *,
    capture: CaptureFacts | None = None,
) -> list[Finding]:
    """Ranked findings for one connection (root cause first).

    ``secrets`` is a :class:`mysqlwire.replay.Secrets`; replay runs when it
    holds something and the connection has no verdict yet.  ``capture`` carries
    facts from the other connections of the same capture (see
    :func:`diagnose_connections`); given one, a security finding that an
    earlier connection of the same account and server already carries is not
    repeated (``capture.security_repeats`` lists where it was left out)."""
    if secrets is not None and not secrets.empty and "verdict" not in conn.extra:
        from ..replay import replay_connection

        replay_connection(conn, secrets)
    fp = fingerprint_connection(conn)
    conn.extra["client_fingerprint"] = fp.label
    conn.extra["client_fingerprint_detail"] = fp.to_dict()
    shared = capture is not None
    capture = capture or CaptureFacts()
    findings: list[Finding] = []
    for f in _facts_for(conn, fp, secrets, capture):
        found: list[Finding] = []
        for order, rule in enumerate(RULES):
            if rule.scope == "connection" and not f.is_login:
                continue
            finding = _run(rule, f, order)
            if finding is not None:
                found.append(finding)
        findings.extend(_prune(found))
    findings.sort(key=Finding.sort_key)
    if shared:
        findings = _summarise_security(conn, findings, capture)
    conn.extra["diagnosis"] = [x.to_dict() for x in findings]
    return findings


def _summarise_security(
    conn: Connection, findings: list[Finding], capture: CaptureFacts
) -> list[Finding]:
    """Keep a security finding only on the first connection of its account
    and server in the capture; note the others in ``capture``."""
    keep = []
    for x in findings:
        if x.severity != "security":
            keep.append(x)
            continue
        key = (x.code, _exchange_user(conn, x.exchange), conn.server, conn.capture)
        owner = capture.security_first.get(key)
        if owner is None or owner[0] is conn:  # first, or the same connection again
            capture.security_first[key] = (conn, x)
            keep.append(x)
        else:
            reps = capture.security_repeats.get(key)
            if reps is None:
                reps = capture.security_repeats[key] = Repeats()
            reps.add(f"#{conn.id}")
    return keep


def diagnose_connections(conns: Iterable[Connection], secrets=None) -> list[Connection]:
    """Diagnose every connection of a capture with capture-wide context (e.g.
    the same user logging in over TLS elsewhere), and summarise security
    findings once per account and server.  Returns the connections."""
    conns = list(conns)
    capture = CaptureFacts()
    for c in conns:
        capture.add(c)
    for c in conns:
        diagnose_connection(c, secrets, capture=capture)
    summarise_repeats(capture)
    return conns


def summarise_repeats(capture: CaptureFacts) -> list[Connection]:
    """After every connection was diagnosed with ``capture``: note on the
    first connection of each account and server how many others show the same
    security finding.  Returns the connections whose diagnosis changed."""
    changed: dict[int, Connection] = {}
    for key, more in capture.security_repeats.items():
        if not more or key not in capture.security_first:
            continue
        c, x = capture.security_first[key]
        shown = ", ".join(more[:8]) + (", …" if len(more) > 8 else "")
        x.evidence += (
            f" (summarised: {len(more)} more login(s) of this account to this server in the capture "
            f"show the same: {shown})"
        )
        c.extra["diagnosis"] = [
            dict(d, evidence=x.evidence) if d["code"] == x.code and d["title"] == x.title else d
            for d in c.extra["diagnosis"]
        ]
        changed[id(c)] = c
    return list(changed.values())


def _exchange_user(conn: Connection, label: str) -> str | None:
    if label == "login":
        return conn.user
    try:
        return conn.exchanges[int(label.rsplit("#", 1)[1])].user
    except (IndexError, ValueError):
        return None


def worst_severity(conn: Connection) -> str | None:
    diag = conn.extra.get("diagnosis") or []
    if not diag:
        return None
    return min((d["severity"] for d in diag), key=lambda s: SEVERITY_ORDER[s])


def has_problem(conn: Connection) -> bool:
    """A connection worth showing without --all: an error, warning or security finding."""
    return any(
        d["severity"] in ("error", "warning", "security") for d in conn.extra.get("diagnosis") or []
    )
