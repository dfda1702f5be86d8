"""Passwords: what replay says about the proof, and the generic refusals."""

from __future__ import annotations

from ..context import Facts
from .base import Hit, Spec, err_evidence, hit, not_answered, proofs_evidence


def check_nonce_misuse(f: Facts) -> Hit | None:
    if f.verdict_code != "NONCE_MISUSE":
        return None
    detail = (f.verdict or {}).get("verdict_detail") or ""
    return hit(
        f"replay: the proof matches the given password only when computed with another nonce ({detail}); "
        + proofs_evidence(f)
    )


def check_wrong_password(f: Facts) -> Hit | None:
    if f.verdict_code != "PROOF_MISMATCH" or not f.failed:
        return None
    if f.code not in (1045, None):
        return None
    detail = (f.verdict or {}).get("verdict_detail") or ""
    steps = (f.verdict or {}).get("steps") or []
    bad = next((s for s in reversed(steps) if s.get("result") == "mismatch"), None)
    where = ""
    if bad is not None and 0 <= bad.get("step", -1) < len(f.steps):
        st = f.steps[bad["step"]]
        if not st.data:
            return None  # an empty answer is no proof (CLIENT_LACKS_PLUGIN / EMPTY_PASSWORD)
        where = f"{f.pkt(st)} is not what the given password produces"
    else:
        where = f"replay mismatch at {detail}"
    tail = f"; then {err_evidence(f)}" if f.err else f"; the client {f.close_word}"
    return hit(where + tail)


def check_empty_password(f: Facts) -> Hit | None:
    if f.code != 1045 or not f.password_given:
        return None
    v = f.verdict_code
    detail = (f.verdict or {}).get("verdict_detail")
    proofs = f.client_steps
    first = proofs[0] if proofs else None
    ev = f.pkt(first) if first else "no auth data"
    if v == "EMPTY_PASSWORD_SENT" or (
        v == "PROOF_MATCHES" and (detail == "empty password" or f.proves_empty_password)
    ):
        return hit(f"{ev}; then {err_evidence(f)}")
    if v == "PROOF_MISMATCH" and f.proves_empty_password:
        signed = [s for s in proofs if s.data]
        return hit(
            f"{f.pkt(signed[-1])} is a valid proof of the EMPTY password (replayed with ''), not of the given one; "
            f"then {err_evidence(f)}"
        )
    return None


_PAM = ("dialog", "auth_pam", "mysql_clear_password", "pam")


def _refusal_hypotheses(f: Facts) -> list[str]:
    """What can refuse a valid proof, most likely first (prior: how often
    each is the cause in practice), adjusted by what the wire shows."""
    user = f.user if f.user is not None else "<user>"
    pam = f.final_plugin in _PAM
    hyps = [
        f"no account '{user}' matches this client's host (the user does not exist, or only for other hosts), "
        "or a more specific account (e.g. the anonymous ''@'localhost') matched first",
        "the account the server matched has a different password (changed on the server, or another account "
        "with the same user name and a more specific host)",
    ]
    if pam:
        hyps.insert(
            0,
            "the PAM stack refused the right answer: the PAM service (auth_pam's pam_service), the user's "
            "operating-system/LDAP account, or pam_unix needing read access to /etc/shadow",
        )
    if not f.tls and f.server_offers_tls:
        hyps.append(
            "the account requires TLS (REQUIRE SSL/X509) and the client did not use it: less common, and "
            "on MariaDB refused with the same 1045"
        )
    return hyps


def _valid_proof(f: Facts) -> bool:
    detail = (f.verdict or {}).get("verdict_detail") or ""
    return (
        f.verdict_code == "PROOF_MATCHES"
        and detail != "empty password"
        and not f.proves_empty_password
    )


def check_valid_proof_rejected(f: Facts) -> Hit | None:
    """Supporting evidence: the client sends exactly the given password."""
    if f.code != 1045 or not _valid_proof(f):
        return None
    return hit(
        f"replay: every proof matches the given password ({proofs_evidence(f)}); the server still answered "
        f"{err_evidence(f)}"
    )


def check_access_denied(f: Facts) -> Hit | None:
    if f.code != 1045:
        return None
    if _valid_proof(f):
        hyps = _refusal_hypotheses(f)
        ranked = "; ".join(f"({i}) {h}" for i, h in enumerate(hyps, 1))
        return hit(
            f"{proofs_evidence(f)}, valid for the given password; then {err_evidence(f)}; the wire cannot tell "
            f"why — most likely first: {ranked}",
            reason=" although the client sent the given password: the wire cannot tell why",
        )
    if f.verdict_code in ("PROOF_MATCHES", "PROOF_MISMATCH", "EMPTY_PASSWORD_SENT", "NONCE_MISUSE"):
        return None
    why = "no password was given to replay the proof"
    if f.verdict_code == "UNVERIFIABLE":
        why = f"the proof could not be replayed ({(f.verdict or {}).get('verdict_detail')})"
    proofs = f.client_steps
    if proofs and all(not s.data or s.data == b"\x00" for s in proofs):
        why += "; the client sent no password at all: if the account exists it needs one (EMPTY_PASSWORD)"
    elif f.proves_empty_password:
        why += "; the proof is a signature of the EMPTY password: the client was given no password"
    hyps = []
    if not (proofs and all(not s.data or s.data == b"\x00" for s in proofs)):
        hyps.append("the client's password is not the account's (give it to replay the proof)")
    hyps += _refusal_hypotheses(f)[:1] if f.final_plugin not in _PAM else _refusal_hypotheses(f)[:2]
    if not f.tls and f.server_offers_tls and f.capture.tls_only(f.user):
        hyps.insert(
            1,
            "the account requires TLS (REQUIRE SSL/X509): the same user logged in over TLS in another "
            "connection of this capture, never without it",
        )
    elif not f.tls and f.server_offers_tls:
        hyps.append("the account requires TLS (REQUIRE SSL/X509): less common")
    ranked = "; ".join(f"({i}) {h}" for i, h in enumerate(hyps, 1))
    return hit(
        f"{proofs_evidence(f)}; then {err_evidence(f)}; {why}; most likely first: {ranked}",
        reason="",
    )


def check_server_dropped(f: Facts) -> Hit | None:
    if not f.dropped:
        return None
    return hit(
        f"{f.pkt(f.last)}; no answer from the server before the connection {f.close_word.split(' ', 1)[1] if ' ' in f.close_word else f.close_word}"
    )


def check_client_aborted(f: Facts) -> Hit | None:
    at = f.abandoned_at
    if at is None:
        return None
    return hit(f"{f.pkt(at)}; {not_answered(f, at)}")


_KNOWN_CODES = {
    1130,
    1129,
    1040,
    1203,
    1226,
    1053,
    3032,
    1043,
    1251,
    1524,
    3118,
    4151,
    3955,
    1862,
    3159,
    1698,
    1049,
    1044,
    1045,
    1275,
}


def check_server_refused(f: Facts) -> Hit | None:
    if f.code is None or f.code in _KNOWN_CODES:
        return None
    return hit(err_evidence(f))


SPECS = [
    Spec(
        "NONCE_MISUSE",
        "error",
        check_nonce_misuse,
        rank=99,  # explains a mismatch better than WRONG_PASSWORD
        suppresses=("WRONG_PASSWORD", "ACCESS_DENIED"),
    ),
    Spec(
        "WRONG_PASSWORD",
        "error",
        check_wrong_password,
        rank=97,  # a mismatching proof is the cause, whatever follows
        suppresses=("ACCESS_DENIED", "CLIENT_ABORTED_AUTH"),
    ),
    Spec(
        "EMPTY_PASSWORD",
        "error",
        check_empty_password,
        rank=98,  # a special case of a mismatching proof: the empty password
        suppresses=("ACCESS_DENIED", "WRONG_PASSWORD"),
    ),
    Spec("VALID_PROOF_REJECTED", "info", check_valid_proof_rejected, rank=75),
    Spec("ACCESS_DENIED", "error", check_access_denied, rank=70),
    Spec("SERVER_DROPPED_CONNECTION", "error", check_server_dropped, rank=60),
    Spec("CLIENT_ABORTED_AUTH", "error", check_client_aborted, rank=40, fallback=True),
    Spec("SERVER_REFUSED", "error", check_server_refused, rank=30, fallback=True),
]
