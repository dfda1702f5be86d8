"""Security: the login worked but exposed the password or a guessable proof."""

from __future__ import annotations

from ...auth import ClientStep, get_plugin
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


def check_offline_crackable(f: Facts) -> Hit | None:
    if f.tls:
        return None
    for s in f.client_steps:
        plugin = f.plugin_at(s)
        p = get_plugin(plugin) if plugin else None
        m = f.meaning(s)
        if p is None or not s.data or s.data == b"\x00" or not isinstance(m, ClientStep):
            continue
        if not p.crackable(m):
            continue
        return hit(
            f"{f.pkt(s)} outside TLS; cost per guess: {p.offline_guess_cost}", cplugin=plugin
        )
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
