"""The rule machinery every family shares: Hit, Rule, Spec and evidence helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..context import Facts

SEVERITIES = ("error", "warning", "info", "security")


# Errors first, then warnings; info and security findings share a tier and are
# ordered by rank, so a leaked password (CLEARTEXT_WITHOUT_TLS, 90) comes before
# a plugin switch (50), which comes before the ever-present offline-guessable
# proof of a plain-TCP login (30).
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2, "security": 2}


@dataclass
class Hit:
    evidence: str
    values: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None  # override the rule's severity for this case


def hit(evidence: str, *, severity: str | None = None, **values: Any) -> Hit:
    return Hit(evidence, values, severity)


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    title: str
    fix: str
    meaning: str  # docs: what it means
    wire: str  # docs: what the evidence looks like on the wire
    check: Callable[[Facts], Hit | None]
    rank: int = 50
    suppresses: tuple[str, ...] = ()
    scope: str = "exchange"  # "exchange": login and each COM_CHANGE_USER; "connection": once
    fallback: bool = False  # dropped when another error finding explains the exchange
    fix_doc: str = ""  # docs: what a computed fix ({remedy}, {how}, ...) says


@dataclass(frozen=True)
class Spec:
    """A rule without its prose (the prose is :data:`mysqlwire.diagnose.prose.PROSE`)."""

    code: str
    severity: str
    check: Callable[[Facts], Hit | None]
    rank: int = 50
    suppresses: tuple[str, ...] = ()
    scope: str = "exchange"
    fallback: bool = False


# ---------------------------------------------------------------- helpers
def err_step(f: Facts):
    for s in f.steps:
        if s.kind == "err":
            return s
    return None


def err_evidence(f: Facts) -> str:
    s = err_step(f)
    if s is not None:
        return f.pkt(s)
    e = f.err or {}
    if f.ex is None and f.is_login:
        return (
            f"server packet seq 0: ERR {e.get('code')} in place of the greeting: {e.get('message')}"
        )
    return f"ERR {e.get('code')}: {e.get('message')}"


def code_is(*codes: int) -> Callable[[Facts], Hit | None]:
    def check(f: Facts) -> Hit | None:
        if f.code in codes:
            return hit(err_evidence(f))
        return None

    return check


def last_proof(f: Facts):
    steps = [s for s in f.client_steps if not f.means(s, "key_request")]
    return steps[-1] if steps else None


def proofs_evidence(f: Facts) -> str:
    parts = [f.pkt(s) for s in f.client_steps]
    return "; ".join(parts) if parts else "no client auth data"


def switch_given_up(
    f: Facts, plugins: tuple[str, ...] | None = None, exclude: tuple[str, ...] = ()
):
    """The switch (or next factor) the client never answered, if any."""
    last = f.unanswered_switch
    if last is None:
        return None
    if plugins is not None and last.plugin not in plugins:
        return None
    if last.plugin in exclude:
        return None
    return last


def not_answered(f: Facts, step) -> str:
    """How the client failed to answer ``step``."""
    after = [s for s in f.steps[f.steps.index(step) + 1 :]]
    if not after:
        return f"the client {f.close_word} without answering"
    nxt = after[0]
    if nxt.kind == "err" and f.code in (1158, 1159):
        return f"the client hung up without answering; the server then sent {err_evidence(f)}"
    if nxt.sender == "client":
        tail = f"; the server answered {err_evidence(f)}" if f.err else ""
        return (
            f"the client did not answer: its next packet (seq {nxt.seq}) starts a new command "
            f"({len(nxt.data)} bytes, e.g. COM_QUIT){tail}"
        )
    return f"the client did not answer; {err_evidence(f)}"
