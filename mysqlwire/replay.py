"""Replay: re-execute each captured authentication exchange with our own plugin
implementations and compare the client's proofs byte for byte.

Verdict codes (stable):

``PROOF_MATCHES``       every proof the client sent is exactly what the given
                        password (or stored hash) produces
``PROOF_MISMATCH``      a proof is not; ``verdict_detail`` names the step and plugin
``EMPTY_PASSWORD_SENT`` the client sent an empty proof (no password) where a
                        non-empty password was expected
``NONCE_MISUSE``        the proof matches only when computed with a wrong/stale nonce
``UNVERIFIABLE``        ``verdict_detail`` is one of ``tls-no-keys``, ``greeting-missing``,
                        ``no-password``, ``rsa-no-private-key``,
                        ``plugin-unsupported:<name>``, ``proof-not-replayable:<plugin>``
``NO_AUTH_ATTEMPT``     the client never sent a proof (server refused first, or the
                        client left before answering the greeting)

``server_disagrees`` is set when the server's answer contradicts the proof
(matching proof but ERR 1045, or a mismatching proof the server accepted).

Passwords come from :class:`mysqlwire.auth.passwords.Secrets` (re-exported here), whose
one lookup rule decides what is tried for each user.

Nothing secret is ever put in a verdict: candidate passwords are referred to
by their 1-based position in the candidate list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .auth import AuthDataError, ClientStep, Flow, follow, get_plugin
from .auth.base import as_bytes
from .auth.passwords import Secrets
from .errors import MysqlwireError
from .model import Connection, Exchange

PROOF_MATCHES = "PROOF_MATCHES"
PROOF_MISMATCH = "PROOF_MISMATCH"
EMPTY_PASSWORD_SENT = "EMPTY_PASSWORD_SENT"
NONCE_MISUSE = "NONCE_MISUSE"
UNVERIFIABLE = "UNVERIFIABLE"
NO_AUTH_ATTEMPT = "NO_AUTH_ATTEMPT"

VERDICTS = (
    PROOF_MATCHES,
    PROOF_MISMATCH,
    EMPTY_PASSWORD_SENT,
    NONCE_MISUSE,
    UNVERIFIABLE,
    NO_AUTH_ATTEMPT,
)

_CLIENT_KINDS = ("handshake_response", "com_change_user", "auth_data")


@dataclass
class StepResult:
    index: int
    kind: str
    plugin: str | None
    length: int
    result: str  # match | mismatch | empty | unverifiable | no-proof
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "step": self.index,
            "kind": self.kind,
            "plugin": self.plugin,
            "length": self.length,
            "result": self.result,
        }
        if self.reason:
            d["reason"] = self.reason
        return d


@dataclass
class Verdict:
    verdict: str
    detail: str | None = None
    matched_candidate: int | None = None
    server_disagrees: bool = False
    steps: list[StepResult] = field(default_factory=list)
    exchange: str = "login"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "verdict_detail": self.detail,
            "matched_candidate": self.matched_candidate,
            "server_disagrees": self.server_disagrees,
            "steps": [s.to_dict() for s in self.steps],
        }

    def __str__(self) -> str:
        return f"{self.verdict} ({self.detail})" if self.detail else self.verdict


# --------------------------------------------------------------------------
class _Walker:
    """Judges one exchange's client proofs with one password (or a stored hash).

    What each packet means -- which stage, whether it is a proof, which bytes the proof is
    computed over -- is the plugin's answer (:func:`mysqlwire.auth.follow`); this class only
    checks the proofs the plugins point at.
    """

    def __init__(
        self, ex: Exchange, conn: Connection, password: bytes | None, stored: str | None, rsa_keys
    ):
        self.ex = ex
        self.conn = conn
        self.password = password
        self.stored = stored
        self.rsa_keys = rsa_keys

    def run(self) -> list[StepResult]:
        ex = self.ex
        results: list[StepResult] = []
        walk = follow(ex.steps, ex.auth_plugin or ex.client_plugin, ex.nonce)
        for i, (step, flow, meaning, _) in enumerate(walk):
            if not isinstance(meaning, ClientStep) or not meaning.judged:
                continue
            results.append(self._check(i, step, flow, meaning))
        return results

    def _check(self, i, step, flow: Flow, meaning: ClientStep) -> StepResult:
        data = step.data
        plugin = flow.name

        def r(result, reason=None):
            return StepResult(i, step.kind, plugin, len(data), result, reason)

        if meaning.result is not None:
            return r(meaning.result, meaning.reason)
        impl = flow.plugin
        assert impl is not None  # unknown plugins are decided by their shape
        server_data = meaning.server_data if meaning.server_data is not None else flow.server_data
        pw = self.password
        kw = dict(meaning.check)
        if kw.get("stage") == "full-rsa":
            if not self.rsa_keys:
                return r("unverifiable", "rsa-no-private-key")
            if pw is None:
                return r("unverifiable", "no-password")
            last_err = None
            for key in self.rsa_keys:
                try:
                    ok = impl.verify(
                        data, server_data, password=pw, private_key_pem=key, stage="full-rsa"
                    )
                except AuthDataError as exc:
                    last_err = exc
                    continue
                if ok is not None:
                    return r("match" if ok else "mismatch")
            return r("unverifiable", "rsa-no-private-key" if last_err else "no-password")
        if pw is None and self.stored is None:
            return r("unverifiable", "no-password")
        try:
            ok = impl.verify(
                data, server_data, password=pw, stored=self.stored if pw is None else None, **kw
            )
        except AuthDataError as exc:
            return r("mismatch", str(exc))
        except (MysqlwireError, ValueError):  # malformed proof bytes from the wire
            return r("mismatch", "malformed proof")
        if ok is None:
            return r(
                "unverifiable", "no-password" if pw is None else f"proof-not-replayable:{plugin}"
            )
        return r("match" if ok else "mismatch")


def _summarise(results: list[StepResult]) -> tuple[str, str | None]:
    proofs = [s for s in results if s.result in ("match", "mismatch", "empty")]
    mism = [s for s in proofs if s.result == "mismatch"]
    if mism:
        s = mism[0]
        return PROOF_MISMATCH, f"step {s.index + 1} ({s.plugin}, {s.kind})"
    if proofs and proofs[-1].result == "empty":
        # the proof the server judged last carried no password
        return EMPTY_PASSWORD_SENT, None
    if any(s.result == "match" for s in proofs):
        unv = [s for s in results if s.result == "unverifiable"]
        if unv:
            return PROOF_MATCHES, f"step {unv[0].index + 1} not checked: {unv[0].reason}"
        return PROOF_MATCHES, None
    unv = [s for s in results if s.result == "unverifiable"]
    if unv:
        return UNVERIFIABLE, unv[0].reason
    if any(s.result == "empty" for s in proofs):
        return EMPTY_PASSWORD_SENT, None
    return NO_AUTH_ATTEMPT, None


def _nonce_misuse(
    ex: Exchange, conn: Connection, password: bytes | None, results: list[StepResult]
) -> bool:
    """Does a mismatching scramble match when computed over another nonce
    (the greeting's instead of the switch's, a stale one, or one with its
    trailing NUL kept -- mysql-nio #127)?"""
    if password is None:
        return False
    alts: list[bytes] = []
    for nonce in [conn.greeting_nonce, ex.nonce] + [
        s.data for s in ex.steps if s.kind in ("auth_switch_request", "auth_next_factor")
    ]:
        if nonce:
            for alt in (nonce, nonce[:20], nonce[:20] + b"\x00"):
                if alt not in alts:
                    alts.append(alt)
    for res in results:
        impl = get_plugin(res.plugin) if res.result == "mismatch" and res.plugin else None
        if impl is None:
            continue
        data = ex.steps[res.index].data
        for alt in alts:
            proof = impl.proof_over_nonce(password, alt)
            if proof is None:
                break  # not a scramble over a nonce: nothing to misuse
            if proof == data:
                return True
    return False


def replay_exchange(ex: Exchange, conn: Connection, secrets: Secrets) -> Verdict:
    if conn.tls and not conn.tls_info.get("decrypted") and not ex.steps:
        return Verdict(UNVERIFIABLE, "tls-no-keys", exchange=ex.kind)
    if ex.nonce is None and ex.steps:
        return Verdict(UNVERIFIABLE, "greeting-missing", exchange=ex.kind)
    if not any(s.kind in _CLIENT_KINDS for s in ex.steps):
        return Verdict(NO_AUTH_ATTEMPT, exchange=ex.kind)
    attempts = secrets.passwords_for(ex.user)
    stored = secrets.hash_for(ex.user)
    keys = secrets.rsa_private_keys
    if not attempts:
        results = _Walker(ex, conn, None, stored, keys).run()
        v, d = _summarise(results)
        return _finish(Verdict(v, d, steps=results, exchange=ex.kind), ex)
    first: Verdict | None = None
    for number, pw in attempts:
        results = _Walker(ex, conn, as_bytes(pw), None, keys).run()
        v, d = _summarise(results)
        verdict = Verdict(v, d, steps=results, exchange=ex.kind)
        if v == EMPTY_PASSWORD_SENT and as_bytes(pw) == b"":
            verdict = Verdict(PROOF_MATCHES, "empty password", steps=results, exchange=ex.kind)
        if verdict.verdict == PROOF_MATCHES:
            verdict.matched_candidate = number
            return _finish(verdict, ex)
        if first is None:
            first = verdict
    assert first is not None
    if first.verdict == PROOF_MISMATCH and any(
        _nonce_misuse(ex, conn, as_bytes(pw), first.steps) for _, pw in attempts
    ):
        first = Verdict(NONCE_MISUSE, first.detail, steps=first.steps, exchange=ex.kind)
    if len(attempts) > 1 and first.verdict == PROOF_MISMATCH:
        first.detail = f"none of {len(attempts)} candidates; first mismatch at {first.detail}"
    return _finish(first, ex)


def _finish(v: Verdict, ex: Exchange) -> Verdict:
    err = ex.error or {}
    if v.verdict == PROOF_MATCHES and ex.outcome == "error" and err.get("code") in (1045,):
        v.server_disagrees = True
    elif (
        v.verdict in (PROOF_MISMATCH, EMPTY_PASSWORD_SENT)
        and ex.outcome == "ok"
        and v.verdict == PROOF_MISMATCH
    ):
        v.server_disagrees = True
    return v


def replay_connection(conn: Connection, secrets: Secrets) -> Verdict:
    """The login's verdict; change-user verdicts go to ``conn.extra``."""
    login = conn.login
    if conn.tls and not conn.tls_info.get("decrypted") and (login is None or login.user is None):
        verdict = Verdict(UNVERIFIABLE, "tls-no-keys")
    elif login is None:
        if conn.greeting_seen or conn.extra.get("pre_greeting_error"):
            verdict = Verdict(NO_AUTH_ATTEMPT)
        else:
            verdict = Verdict(UNVERIFIABLE, "greeting-missing")
    else:
        verdict = replay_exchange(login, conn, secrets)
    conn.extra["verdict"] = verdict.to_dict()
    cu = [replay_exchange(ex, conn, secrets).to_dict() for ex in conn.change_users]
    if cu:
        conn.extra["change_user_verdicts"] = cu
    return verdict


def record_with_verdict(conn: Connection, with_packets: bool = False) -> dict[str, Any]:
    rec = conn.to_record(with_packets=with_packets)
    v = conn.extra.get("verdict") or {}
    rec["verdict"] = v.get("verdict")
    rec["verdict_detail"] = v.get("verdict_detail")
    rec["matched_candidate"] = v.get("matched_candidate")
    rec["server_disagrees"] = v.get("server_disagrees", False)
    rec["replay_steps"] = v.get("steps", [])
    if "change_user_verdicts" in conn.extra:
        rec["change_user_verdicts"] = conn.extra["change_user_verdicts"]
    return rec
