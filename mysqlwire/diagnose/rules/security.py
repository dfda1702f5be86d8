"""Security: the login worked but exposed the password or a guessable proof."""

from __future__ import annotations

from .. import clients
from ..context import Facts
from .base import Hit, Spec, err_evidence, hit


def check_cleartext_without_tls(f: Facts) -> Hit | None:
    if f.tls:
        return None
    clear = [s for s in f.client_steps if f.is_cleartext(s)]
    if not clear:
        return None
    s = clear[0]
    how = (
        clients.fix_for(f.fp.library, "use_tls", product=f.fp.product)
        or "mysql --ssl-mode=REQUIRED; PyMySQL ssl=…"
    )
    return hit(
        f"{f.pkt(s)} on plain TCP: anyone on the path can read it",
        cplugin=f.plugin_at(s),
        how=how,
    )


_CRACK_COST = {
    "mysql_native_password": "one SHA1(SHA1()) chain per guess (the greeting nonce and the 20-byte scramble are both in the capture)",
    "caching_sha2_password": "one SHA256 chain per guess (nonce and 32-byte scramble are both in the capture)",
    "mysql_old_password": "the pre-4.1 hash is weak: the 8-byte scramble323 and the nonce reveal it almost for free",
    "client_ed25519": "one SHA-512 + Ed25519 signature per guess (the signature is deterministic)",
}


def check_offline_crackable(f: Facts) -> Hit | None:
    if f.tls:
        return None
    for s in f.client_steps:
        plugin = f.plugin_at(s)
        if plugin not in _CRACK_COST or not s.data or s.data == b"\x00":
            continue
        if plugin == "caching_sha2_password" and (f.stage_at(s) != "fast" or len(s.data) != 32):
            continue
        if f.is_cleartext(s):
            continue
        return hit(f"{f.pkt(s)} outside TLS; cost per guess: {_CRACK_COST[plugin]}", cplugin=plugin)
    return None


def check_old_password_in_use(f: Facts) -> Hit | None:
    olds = [s for s in f.steps if s.kind == "old_auth_switch_request"]
    if f.code == 1275:
        return hit(err_evidence(f))
    if not olds:
        return None
    return hit(f.pkt(olds[0]))


def check_weak_tls(f: Facts) -> Hit | None:
    if not f.is_login or not f.conn.tls:
        return None
    v = f.conn.tls_info.get("tls_version") or ""
    if v in ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1"):
        return hit(
            f"TLS handshake negotiated {v}"
            + (
                f" ({f.conn.tls_info.get('tls_cipher')})"
                if f.conn.tls_info.get("tls_cipher")
                else ""
            ),
            tlsv=v,
        )
    return None


def check_rsa_key_fetched(f: Facts) -> Hit | None:
    if f.tls:
        return None
    for s in f.steps:
        if f.means(s, "public_key"):
            return hit(f"{f.pkt(s)} on plain TCP, used to encrypt the password")
    return None


SPECS = [
    Spec("CLEARTEXT_WITHOUT_TLS", "security", check_cleartext_without_tls, rank=90),
    Spec("OLD_PASSWORD_IN_USE", "security", check_old_password_in_use, rank=45),
    Spec("WEAK_TLS_VERSION", "security", check_weak_tls, rank=70, scope="connection"),
    Spec("OFFLINE_CRACKABLE_PROOF", "security", check_offline_crackable, rank=30),
    Spec("RSA_KEY_FETCHED_INSECURELY", "security", check_rsa_key_fetched, rank=25),
]
