"""Transport: TLS required / not offered / failed, secure channels for sha2 full authentication, what the capture cannot show."""

from __future__ import annotations

from .. import clients
from ..context import Facts
from .base import Hit, Spec, err_evidence, hit, not_answered, switch_given_up


def tls_requirement_evidence(f: Facts) -> list[str]:
    """Wire evidence that the account requires a secure transport (REQUIRE
    SSL/X509), for an exchange refused without TLS.  Empty = none: then an
    unknown account, a host mismatch or another server-side password is far
    more likely (VALID_PROOF_REJECTED ranks them)."""
    if f.tls or f.code not in (1045, 3159):
        return []
    out = []
    if f.code == 3159:
        out.append(f"{err_evidence(f)}: the server says so (3159)")
    fast_ok = [s for s in f.steps if f.means(s, "fast_auth_success")]
    if fast_ok and f.code == 1045:
        out.append(
            f"{f.pkt(fast_ok[-1])}: the server accepted the password, then answered {err_evidence(f)} — "
            "only an account requirement checked after the password (REQUIRE SSL/X509/ISSUER/SUBJECT) does that"
        )
    if f.verdict_code == "PROOF_MATCHES" and f.capture.tls_only(f.user):
        out.append(
            "the proof is valid for the given password and the same user logged in over TLS in another "
            "connection of this capture, never without it"
        )
    clear = [s for s in f.client_steps if f.is_cleartext(s)]
    if (
        clear
        and f.code == 1045
        and f.verdict_code == "PROOF_MATCHES"
        and not f.conn.is_mariadb
        and f.switch_steps
        and f.switch_steps[-1].plugin == "mysql_clear_password"
    ):
        out.append(
            f"{f.pkt(clear[-1])}: a MySQL server asked for the clear-text secret on plain TCP and refused the right "
            "one — clear-text back ends (IAM/RDS Proxy tokens, LDAP simple bind) require TLS"
        )
    return out


def check_tls_required(f: Facts) -> Hit | None:
    ev = tls_requirement_evidence(f)
    if not ev:
        return None
    note = ""
    if f.server_offers_tls:
        note = "; the server's greeting offers CLIENT_SSL but the client did not send an SSLRequest"
    elif f.server_offers_tls is False:
        note = "; the server's greeting does not even offer CLIENT_SSL"
    how = clients.fix_for(f.fp.library, "use_tls", product=f.fp.product) or (
        "mysql --ssl-mode=REQUIRED (MariaDB: --ssl), PyMySQL ssl={'ca': '/path/ca.pem'}, "
        "mysql-connector-python ssl_ca=…"
    )
    return hit("; ".join(ev) + note, how=how)


def check_tls_not_offered(f: Facts) -> Hit | None:
    c = f.conn
    if (
        not f.is_login
        or not c.greeting_seen
        or c.login is not None
        or c.client_capabilities is not None
    ):
        return None
    if f.server_offers_tls is not False or not f.closed:
        return None
    if c.character_set == 255:
        return None  # MySQL 8's collation 255: the PyMySQL <= 0.7 crash is far more common
    return hit(
        f"server packet seq 0: greeting without CLIENT_SSL (capabilities 0x{c.server_capabilities:08x}); "
        f"the client {f.close_word} without a response (client error 2026 when it requires TLS)"
    )


def check_tls_handshake_failed(f: Facts) -> Hit | None:
    c = f.conn
    if not f.is_login or not c.tls or c.login is not None or not f.closed:
        return None
    alerts = [a for a in c.anomalies if "alert" in a.lower() and "not readable" not in a.lower()]
    if not alerts and c.tls_info.get("tls_version"):
        return None
    what = "; ".join(alerts) if alerts else "no ServerHello seen"
    return hit(f"client packet seq 1: SSLRequest; TLS handshake did not complete ({what})")


def _secure_channel_how(f: Facts) -> str:
    lib = f.fp.library
    tls = clients.fix_for(lib, "use_tls", product=f.fp.product)
    rsa = clients.fix_for(lib, "rsa_key", product=f.fp.product)
    if tls and rsa and lib not in ("PyMySQL", "mysql-connector-python"):
        return f"connect with TLS ({tls}), or let the client use the server's RSA key: {rsa}"
    return (
        "connect with TLS (--ssl-mode=REQUIRED / ssl=...), or let the client fetch the server's RSA key "
        "(--get-server-public-key / GET_SERVER_PUBLIC_KEY; PyMySQL does it by itself) or pin it "
        "(--server-public-key-path=/path/public_key.pem)"
    )


def check_secure_channel_required(f: Facts) -> Hit | None:
    if f.tls:
        return None
    sw = switch_given_up(f, ("sha256_password", "caching_sha2_password"))
    row = f.fp.support(sw.plugin) if sw is not None else None
    if sw is not None and row is not None and row.tls_only:
        return hit(
            f"{f.pkt(sw)} on plain TCP; {not_answered(f, sw)}: {f.client} speaks {sw.plugin} only over TLS",
            splugin=sw.plugin,
            how=(
                f"connect with TLS (mysql-connector-python: ssl_ca=…, do not set ssl_disabled=True), or use the C "
                f"extension (use_pure=False), which has the RSA path; or {f.set_plugin_sql('caching_sha2_password')}"
            ),
        )
    own = clients.fix_for(f.fp.library, "rsa_key")  # the client's own option names, if known
    if sw is not None and row is not None and row.rsa_opt_in and own:
        # a client that speaks sha256_password but fetches the RSA key only when told to
        # (node mysql2, MariaDB Connector/J): it leaves right after the switch
        return hit(
            f"{f.pkt(sw)} on plain TCP; {not_answered(f, sw)}: {f.client} did not ask for the "
            "server's RSA public key",
            splugin=sw.plugin,
            how=_secure_channel_how(f),
        )
    last = f.abandoned_at
    if last is not None and f.means(last, "perform_full_authentication"):
        plugin = f.plugin_at(last)
        return hit(
            f"{f.pkt(last)} on plain TCP; the client did not ask for the RSA public key (client error 2061 "
            f"'Authentication requires secure connection'): {not_answered(f, last)}",
            splugin=plugin,
            how=_secure_channel_how(f),
        )
    if f.code is not None and f.code in (1045, 2061):
        for s in f.client_steps:
            plugin = f.plugin_at(s)
            if plugin in ("caching_sha2_password", "sha256_password") and f.is_cleartext(s):
                how = "connect with TLS, or use a client that does the RSA exchange without TLS"
                if f.fp.library == "mysql-connector-python":
                    how = (
                        "mysql-connector-python (pure) has no RSA path and sends the password as typed: connect with TLS "
                        "(its default when the server offers it; do not set ssl_disabled=True), or use the C extension "
                        "(use_pure=False), which does the RSA exchange"
                    )
                return hit(
                    f"{f.pkt(s)} outside TLS during {plugin} full authentication; then {err_evidence(f)} "
                    "(the server only accepts the password in clear over TLS or a Unix socket)",
                    splugin=plugin,
                    how=how,
                )
    return None


def check_capture_incomplete(f: Facts) -> Hit | None:
    c = f.conn
    if not f.is_login:
        return None
    if c.tls and not c.tls_info.get("decrypted"):
        return None
    if not c.greeting_seen and not c.extra.get("pre_greeting_error"):
        return hit(
            "no greeting in the capture (it starts mid-connection, or the server never spoke); "
            f"connection {c.closed_by or 'open'}"
        )
    gaps = [a for a in c.anomalies if "missing" in a or "gap" in a]
    if c.login is not None and c.login.outcome == "incomplete" and not f.closed:
        return hit(
            f"the capture ends ({c.closed_by or 'no close seen'}) before the server's verdict"
            + (f"; {gaps[0]}" if gaps else "")
        )
    if gaps and f.failed:
        return hit("; ".join(gaps[:2]))
    return None


def check_encrypted_no_keys(f: Facts) -> Hit | None:
    c = f.conn
    if not f.is_login or not c.tls or c.tls_info.get("decrypted"):
        return None
    info = c.tls_info
    ver = info.get("tls_version") or "TLS"
    return hit(
        f"client packet seq 1: SSLRequest; {ver} session"
        + (f" ({info.get('tls_cipher')})" if info.get("tls_cipher") else "")
        + f", status {info.get('tls_status') or 'no-keys'}: user, plugin and outcome are inside TLS"
    )


SPECS = [
    Spec(
        "TLS_REQUIRED",
        "error",
        check_tls_required,
        rank=95,
        suppresses=("ACCESS_DENIED",),
    ),
    Spec(
        "TLS_NOT_OFFERED",
        "error",
        check_tls_not_offered,
        rank=89,
        suppresses=("CLIENT_GAVE_UP_ON_GREETING",),
        scope="connection",
    ),
    Spec(
        "TLS_HANDSHAKE_FAILED",
        "error",
        check_tls_handshake_failed,
        rank=85,
        suppresses=("ENCRYPTED_NO_KEYS",),
        scope="connection",
    ),
    Spec(
        "SECURE_CHANNEL_REQUIRED",
        "error",
        check_secure_channel_required,
        rank=93,
        suppresses=(
            "VALID_PROOF_REJECTED",
            "ACCESS_DENIED",
            "CLIENT_ABORTED_AUTH",
        ),
    ),
    Spec("ENCRYPTED_NO_KEYS", "warning", check_encrypted_no_keys, rank=60, scope="connection"),
    Spec("CAPTURE_INCOMPLETE", "warning", check_capture_incomplete, rank=50, scope="connection"),
]
