"""The rule table: every diagnosis code, once, as data plus a small predicate.

A rule's predicate gets the :class:`~mysqlwire.diagnose.context.Facts` of one
authentication exchange and returns a :class:`Hit` (the wire evidence and the
values its templates need) or ``None``.  ``title`` and ``fix`` are
``str.format`` templates; besides the hit's own values they can use
``{client}`` (fingerprint label), ``{server}`` (``MySQL 8.0.36`` /
``MariaDB 10.11.19``), ``{account}`` (``'user'@'host'`` from the error
message, else the user name), ``{user}``, ``{plugin}`` (the exchange's last
plugin), ``{code}``, ``{message}``, ``{alter}`` (``ALTER USER 'u'@'h'``).

Ranking: severity first (error, warning, info, security), then ``rank``
(higher = more specific root cause), then table order.  ``suppresses``
removes less precise findings that the same evidence would also trigger.

To add a rule: write a predicate, append a :class:`Rule` to ``RULES``, add
unit tests (positive and negative) and regenerate ``docs/diagnoses.md``
(``python -m mysqlwire.diagnose.docs > docs/diagnoses.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..model import CLEARTEXT_PLUGINS
from . import clients
from .clients import IMPLEMENTERS
from .context import Facts
from .fingerprint import CAN_HANDLE_EXPIRED, MULTI_SWITCH, PLUGIN_AUTH

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


# ----------------------------------------------------------- plugin advice
_LIB_OWN_ADVICE = {  # (library, plugins the library's own "lacks" phrasing is for)
    "PyMySQL": ("caching_sha2_password", "sha256_password", "client_ed25519", "dialog", "auth_pam"),
    "mysql-connector-python": ("client_ed25519", "dialog", "parsec", "mysql_old_password"),
    "libmysqlclient": (
        "client_ed25519",
        "dialog",
        "parsec",
        "auth_gssapi_client",
        "caching_sha2_password",
    ),
}


def lacks_plugin_fix(f: Facts, plugin: str, *, loadable: bool = True) -> str:
    """What to do when the client cannot answer ``plugin``: the library's own
    phrasing from :mod:`.clients`, then always the account-side way out."""
    lib = f.fp.library
    native = f.set_plugin_sql("mysql_native_password")
    text = None
    if lib == "libmariadb":
        if not loadable:  # libmariadb has them all: the plugin file could not be loaded
            text = clients.fix_for(lib, f"lacks:{plugin}", plugin)
    elif lib in _LIB_OWN_ADVICE:
        if plugin in _LIB_OWN_ADVICE[lib]:
            key = "lacks:dialog" if plugin == "auth_pam" else f"lacks:{plugin}"
            text = clients.fix_for(lib, key, plugin)
    else:
        text = clients.fix_for(lib, f"lacks:{plugin}", plugin)
    if text:
        if lib == "PyMySQL" and plugin in ("caching_sha2_password", "sha256_password"):
            joiner = (
                "; or, if upgrading is impossible, give the account a plugin the client speaks: "
            )
        elif lib == "PyMySQL" and plugin in ("dialog", "auth_pam"):
            joiner = ", or "
        elif lib in ("PyMySQL", "libmariadb") or (
            lib == "libmysqlclient" and plugin == "caching_sha2_password"
        ):
            joiner = "; or "
        else:
            joiner = ", or change the account: "
        return f"{text}{joiner}{native}"
    who = IMPLEMENTERS.get(plugin)
    use = (
        f"use a client that implements {plugin} ({who})"
        if who
        else f"use a client that implements {plugin}"
    )
    return f"{use}, or change the account to a plugin this client speaks: {native}"


# ---------------------------------------------------------------- helpers
def _err_step(f: Facts):
    for s in f.steps:
        if s.kind == "err":
            return s
    return None


def _err_evidence(f: Facts) -> str:
    s = _err_step(f)
    if s is not None:
        return f.pkt(s)
    e = f.err or {}
    if f.ex is None and f.is_login:
        return (
            f"server packet seq 0: ERR {e.get('code')} in place of the greeting: {e.get('message')}"
        )
    return f"ERR {e.get('code')}: {e.get('message')}"


def _code_is(*codes: int) -> Callable[[Facts], Hit | None]:
    def check(f: Facts) -> Hit | None:
        if f.code in codes:
            return hit(_err_evidence(f))
        return None

    return check


def _last_proof(f: Facts):
    steps = [
        s for s in f.client_steps if s.data not in (b"\x02",) or s.plugin != "caching_sha2_password"
    ]
    return steps[-1] if steps else None


def _proofs_evidence(f: Facts) -> str:
    parts = [f.pkt(s) for s in f.client_steps]
    return "; ".join(parts) if parts else "no client auth data"


# ------------------------------------------------------------- predicates
def check_host_not_allowed(f: Facts) -> Hit | None:
    if f.code != 1130:
        return None
    return hit(_err_evidence(f) + " (the client never got to send a user name)", host=f.host)


def check_host_blocked(f: Facts) -> Hit | None:
    if f.code != 1129:
        return None
    return hit(_err_evidence(f), host=f.host)


def check_password_expired(f: Facts) -> Hit | None:
    if f.code == 1862:
        caps = f.conn.client_capabilities
        note = ""
        if caps is not None and not caps & CAN_HANDLE_EXPIRED:
            note = " (the client did not set CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS, so the server refused instead of opening a sandbox session)"
        return hit(_err_evidence(f) + note, mode="the server refused the login")
    cmd = f.conn.command_error
    if f.is_login and f.outcome == "ok" and cmd and int(cmd.get("code") or 0) == 1820:
        return hit(
            "server: OK to the login, then ERR 1820 on the first command: "
            f"{cmd.get('message')} (sandbox mode: only ALTER USER / SET PASSWORD run)",
            severity="warning",
            mode="logged in to sandbox mode, every query fails with 1820",
        )
    return None


def check_tls_required(f: Facts) -> Hit | None:
    if f.code == 3159:
        return hit(_err_evidence(f) + "; the connection did not negotiate TLS (no SSLRequest)")
    if f.code != 1045 or f.tls:
        return None
    ssl_note = ""
    if f.server_offers_tls:
        ssl_note = (
            "; the server's greeting offers CLIENT_SSL but the client did not send an SSLRequest"
        )
    if (
        f.verdict_code == "PROOF_MATCHES"
        and f.user in f.capture.tls_ok_users
        and f.user not in f.capture.plain_ok_users
    ):
        return hit(
            f"{_err_evidence(f)} although the proof is valid for the given password; the same user "
            f"logged in over TLS in another connection of this capture{ssl_note}: the account requires TLS "
            "(REQUIRE SSL/X509)",
        )
    detail = (f.verdict or {}).get("verdict_detail")
    if f.verdict_code == "PROOF_MATCHES" and detail != "empty password" and f.server_offers_tls:
        proof = _last_proof(f)
        return hit(
            (f"{f.pkt(proof)}: " if proof else "")
            + f"a valid proof of the given password, sent without TLS, then {_err_evidence(f)}{ssl_note}: "
            "the account most likely requires TLS (REQUIRE SSL/X509); if it does not, see VALID_PROOF_REJECTED"
        )
    clear = [s for s in f.client_steps if f.is_cleartext(s)]
    if clear and f.verdict_code == "PROOF_MATCHES":
        return hit(
            f"{f.pkt(clear[-1])} (the right secret, in clear, outside TLS), then {_err_evidence(f)}{ssl_note}: "
            "likely a back end that takes the clear-text secret (IAM/RDS Proxy, PAM, LDAP) and requires TLS",
        )
    return None


def check_old_password_refused(f: Facts) -> Hit | None:
    if f.code == 1275:
        return hit(_err_evidence(f), side="server (secure_auth=ON)")
    olds = [s for s in f.steps if s.kind == "old_auth_switch_request"]
    if olds and f.abandoned_at is olds[-1]:
        who = "the client"
        if f.fp.library == "PyMySQL" and f.fp.at_least(1, 1):
            who = f"{f.client} (PyMySQL >= 1.1 raises 'received unknown auth switch request')"
        elif f.fp.library == "mysql-connector-python":
            who = f"{f.client} ('Authentication with old (insecure) passwords is not supported')"
        elif f.fp.library in ("libmariadb", "libmysqlclient"):
            who = f"{f.client} (client secure_auth on: error 2049)"
        return hit(
            f"{f.pkt(olds[-1])}; {who}: {_not_answered(f, olds[-1])} (no scramble323)",
            side="client",
        )
    return None


def check_client_protocol_too_old(f: Facts) -> Hit | None:
    if f.code != 1251:
        return None
    caps = f.conn.client_capabilities
    note = ""
    if caps is not None and not caps & PLUGIN_AUTH:
        note = f"; the client's capabilities 0x{caps:08x} lack CLIENT_PLUGIN_AUTH, so it cannot be switched to the account's plugin"
    return hit(_err_evidence(f) + note)


def _switch_given_up(
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


def _not_answered(f: Facts, step) -> str:
    """How the client failed to answer ``step``."""
    after = [s for s in f.steps[f.steps.index(step) + 1 :]]
    if not after:
        return f"the client {f.close_word} without answering"
    nxt = after[0]
    if nxt.kind == "err" and f.code in (1158, 1159):
        return f"the client hung up without answering; the server then sent {_err_evidence(f)}"
    if nxt.sender == "client":
        tail = f"; the server answered {_err_evidence(f)}" if f.err else ""
        return (
            f"the client did not answer: its next packet (seq {nxt.seq}) starts a new command "
            f"({len(nxt.data)} bytes, e.g. COM_QUIT){tail}"
        )
    return f"the client did not answer; {_err_evidence(f)}"


def check_second_switch_refused(f: Facts) -> Hit | None:
    switches = f.switch_steps
    last = _switch_given_up(f)
    if last is None or len(switches) < 2:
        return None
    answered = [s for s in f.client_steps if s.kind == "auth_data"]
    if not answered:
        return None
    if f.fp.supports(last.plugin) is False:
        return None  # plain CLIENT_LACKS_PLUGIN
    if MULTI_SWITCH.get(f.fp.library or "") is True:
        return None
    first = switches[0]
    return hit(
        f"{f.pkt(first)}, answered by the client; {f.pkt(last)}; {_not_answered(f, last)} (the second switch)",
        first=first.plugin,
        second=last.plugin,
    )


def check_cleartext_not_enabled(f: Facts) -> Hit | None:
    last = _switch_given_up(f, ("mysql_clear_password",))
    if last is not None:
        lib = f.fp.library
        if lib == "mysql-connector-python" and not f.tls:
            how = "mysql-connector-python sends mysql_clear_password only over TLS: connect with TLS (ssl_ca=..., ssl_disabled=False)"
        elif lib == "libmysqlclient":
            how = "enable it: mysql --enable-cleartext-plugin, LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1, or mysql_options(MYSQL_ENABLE_CLEARTEXT_PLUGIN); and use TLS"
        elif lib not in ("PyMySQL", "libmariadb") and clients.fix_for(lib, "enable_cleartext"):
            how = clients.fix_for(lib, "enable_cleartext")
        else:
            how = (
                "enable the clear-text plugin in the client (mysql --enable-cleartext-plugin / "
                "LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1 for libmysqlclient; PyMySQL: auth_plugin_map={'mysql_clear_password': None} "
                "is not needed, it answers by itself) and connect with TLS"
            )
        return hit(f"{f.pkt(last)}; {_not_answered(f, last)}: no password was sent", how=how)
    if f.token_like and f.code == 1045 and f.final_plugin not in CLEARTEXT_PLUGINS:
        proof = _last_proof(f)
        return hit(
            (f"{f.pkt(proof)}: " if proof else "")
            + f"a {f.final_plugin} scramble of a token-like password (the server can only check such a token in clear "
            f"text); then {_err_evidence(f)}",
            how=(
                "send the token with mysql_clear_password over TLS: mysql --enable-cleartext-plugin --ssl-mode=REQUIRED; "
                "LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1 for libmysqlclient programs; PyMySQL: ssl={'ca': ...} and "
                "auth_plugin_map={'mysql_clear_password': None}; and make sure the server/proxy asks for it (IAM enabled for the user)"
            ),
        )
    return None


def _pymysql_dialog_crash(f: Facts, step) -> bool:
    """PyMySQL's dialog handler reads the question from the switch packet;
    MariaDB's auth_pam sends a switch without data and PyMySQL dies (IndexError)."""
    return (
        f.fp.library == "PyMySQL"
        and step.kind == "auth_switch_request"
        and step.plugin in ("dialog", "auth_pam")
        and not step.data
    )


def check_dialog_unanswered(f: Facts) -> Hit | None:
    last = f.abandoned_at
    if last is None:
        return None
    plugin = f.plugin_at(last) if last.kind != "auth_switch_request" else last.plugin
    if plugin not in ("dialog", "auth_pam"):
        return None
    if f.fp.supports("dialog") is False or _pymysql_dialog_crash(f, last):
        return None  # the client has no (usable) dialog plugin: CLIENT_LACKS_PLUGIN
    q = ""
    data = last.data
    if last.kind == "auth_switch_request" and data:
        q = f"; question byte 0x{data[0]:02x}, prompt {len(data) - 1} bytes"
    elif last.kind == "auth_switch_request":
        q = " (no question: the client is expected to send the password)"
    return hit(f"{f.pkt(last)}{q}; {_not_answered(f, last)}", dplugin=plugin)


def check_rsa_unavailable(f: Facts) -> Hit | None:
    last = f.abandoned_at
    if last is None or last.kind != "auth_more_data" or not last.data.startswith(b"-----BEGIN"):
        return None
    hint = ""
    if f.fp.library == "PyMySQL":
        hint = " (PyMySQL without the 'cryptography' package raises RuntimeError here)"
    return hit(f"{f.pkt(last)}; {_not_answered(f, last)}: no RSA-encrypted password{hint}")


def check_secure_channel_required(f: Facts) -> Hit | None:
    if f.tls:
        return None
    sw = _switch_given_up(f, ("sha256_password", "caching_sha2_password"))
    row = f.fp.support(sw.plugin) if sw is not None else None
    if sw is not None and row is not None and row.tls_only:
        return hit(
            f"{f.pkt(sw)} on plain TCP; {_not_answered(f, sw)}: {f.client} speaks {sw.plugin} only over TLS",
            splugin=sw.plugin,
            how=(
                f"connect with TLS (mysql-connector-python: ssl_ca=…, do not set ssl_disabled=True), or use the C "
                f"extension (use_pure=False), which has the RSA path; or {f.set_plugin_sql('caching_sha2_password')}"
            ),
        )
    last = f.abandoned_at
    if last is not None and last.kind == "auth_more_data" and last.data == b"\x04":
        plugin = f.plugin_at(last)
        return hit(
            f"{f.pkt(last)} on plain TCP; the client did not ask for the RSA public key (client error 2061 "
            f"'Authentication requires secure connection'): {_not_answered(f, last)}",
            splugin=plugin,
            how=(
                "connect with TLS (--ssl-mode=REQUIRED / ssl=...), or let the client fetch the server's RSA key "
                "(--get-server-public-key / GET_SERVER_PUBLIC_KEY; PyMySQL does it by itself) or pin it "
                "(--server-public-key-path=/path/public_key.pem)"
            ),
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
                    f"{f.pkt(s)} outside TLS during {plugin} full authentication; then {_err_evidence(f)} "
                    "(the server only accepts the password in clear over TLS or a Unix socket)",
                    splugin=plugin,
                    how=how,
                )
    return None


# A valid answer to these plugins is never empty: an empty answer means the
# client could not run the plugin (libmariadb without client_ed25519.so).
NEVER_EMPTY = ("client_ed25519",)


def check_client_lacks_plugin(f: Facts) -> Hit | None:
    last = _switch_given_up(f, exclude=("mysql_clear_password",))
    if last is not None:
        sup = f.fp.supports(last.plugin)
        if _pymysql_dialog_crash(f, last):
            sup = False
            why = (
                f"{f.client}'s dialog handler expects the question inside the switch (MariaDB's auth_pam sends none): "
                "it fails with IndexError"
            )
        elif sup is True:
            return None
        elif sup is False:
            why = f"{f.client} does not implement {last.plugin}"
        else:
            why = f"the client library could not load {last.plugin} (client error 2059 'Authentication plugin cannot be loaded')"
        return hit(
            f"{f.pkt(last)}; {_not_answered(f, last)}: {why}",
            lplugin=last.plugin,
            remedy=lacks_plugin_fix(f, last.plugin),
        )
    # An empty answer to a switch whose plugin never produces one.
    for i, s in enumerate(f.steps):
        if s.kind != "auth_switch_request" or s.plugin not in NEVER_EMPTY:
            continue
        nxt = f.steps[i + 1] if i + 1 < len(f.steps) else None
        if (
            nxt is not None
            and nxt.sender == "client"
            and nxt.kind == "auth_data"
            and not nxt.data
            and f.failed
        ):
            tail = f"; then {_err_evidence(f)}" if f.err else ""
            return hit(
                f"{f.pkt(s)}; {f.pkt(nxt)}: a {s.plugin} answer is never empty (even the empty password gives a "
                f"64-byte signature), so {f.client} could not run the plugin{tail}",
                lplugin=s.plugin,
                remedy=lacks_plugin_fix(f, s.plugin, loadable=False),
            )
    # The client echoed a plugin it cannot compute with an empty response
    # (PyMySQL < 0.9 and caching_sha2_password), and the server saw no password.
    first = f.client_steps[0] if f.client_steps else None
    if first is None or first.data or f.code != 1045:
        return None
    plugin = first.plugin
    if plugin is None or f.fp.supports(plugin) is not False:
        return None
    if len(f.client_steps) > 1:
        return None
    origin = " (copied from the greeting)" if plugin == f.conn.greeting_plugin else ""
    return hit(
        f"{f.pkt(first)} labelled '{plugin}'{origin} but without a proof; then {_err_evidence(f)}: "
        f"{f.client} has no {plugin} support, so the server saw no password",
        lplugin=plugin,
        remedy=lacks_plugin_fix(f, plugin),
    )


def check_greeting_abandoned(f: Facts) -> Hit | None:
    c = f.conn
    if (
        not f.is_login
        or not c.greeting_seen
        or c.login is not None
        or c.extra.get("pre_greeting_error")
    ):
        return None
    if c.client_capabilities is not None or not f.closed:
        return None
    hints = []
    if c.character_set == 255:
        hints.append(
            "the greeting's collation 255 (utf8mb4_0900_ai_ci) crashes PyMySQL <= 0.7 (KeyError in charset_by_id): "
            "upgrade PyMySQL, or set the server's character_set_server/collation_server to one the client knows "
            "(e.g. utf8mb4_general_ci, 45)"
        )
    if c.protocol_version == 9:
        hints.append("protocol 9 greeting (MySQL <= 3.22): modern clients cannot talk to it")
    if not hints:
        hints.append(
            "the client could not use the greeting (unknown collation or plugin, a TLS requirement the server "
            "does not offer, or a timeout): check the client's error message"
        )
    plugin = c.greeting_plugin or "-"
    return hit(
        f"server packet seq 0: greeting from {f.server} (collation {c.character_set}, plugin '{plugin}'); "
        f"the client {f.close_word} without sending a handshake response",
        hint="; ".join(hints),
    )


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


def check_nonce_misuse(f: Facts) -> Hit | None:
    if f.verdict_code != "NONCE_MISUSE":
        return None
    detail = (f.verdict or {}).get("verdict_detail") or ""
    return hit(
        f"replay: the proof matches the given password only when computed with another nonce ({detail}); "
        + _proofs_evidence(f)
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
        where = f"{f.pkt(st)} is not what the given password produces"
    else:
        where = f"replay mismatch at {detail}"
    tail = f"; then {_err_evidence(f)}" if f.err else f"; the client {f.close_word}"
    return hit(where + tail)


def check_empty_password(f: Facts) -> Hit | None:
    if f.code != 1045 or not f.password_given:
        return None
    v = f.verdict_code
    detail = (f.verdict or {}).get("verdict_detail")
    proofs = f.client_steps
    first = proofs[0] if proofs else None
    ev = f.pkt(first) if first else "no auth data"
    if v == "EMPTY_PASSWORD_SENT" or (v == "PROOF_MATCHES" and detail == "empty password"):
        return hit(f"{ev}; then {_err_evidence(f)}")
    if v == "PROOF_MISMATCH" and f.proves_empty_password:
        signed = [s for s in proofs if s.data]
        return hit(
            f"{f.pkt(signed[-1])} is a valid proof of the EMPTY password (replayed with ''), not of the given one; "
            f"then {_err_evidence(f)}"
        )
    return None


def check_valid_proof_rejected(f: Facts) -> Hit | None:
    if f.code != 1045 or f.verdict_code != "PROOF_MATCHES":
        return None
    detail = (f.verdict or {}).get("verdict_detail") or ""
    if detail == "empty password":
        return None
    return hit(
        f"replay: every proof matches the given password ({_proofs_evidence(f)}); the server still answered "
        f"{_err_evidence(f)}"
    )


def check_access_denied(f: Facts) -> Hit | None:
    if f.code != 1045:
        return None
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
    return hit(f"{_proofs_evidence(f)}; then {_err_evidence(f)}; {why}")


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
    return hit(f"{f.pkt(at)}; {_not_answered(f, at)}")


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
    return hit(_err_evidence(f))


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


def check_plugin_switch(f: Facts) -> Hit | None:
    switches = [s for s in f.switch_steps if s.kind != "auth_next_factor"]
    if not switches:
        return None
    if not f.is_login and all(s.plugin == f.ex.client_plugin for s in switches):
        return None  # MariaDB re-sends the same plugin on COM_CHANGE_USER
    start = f.ex.client_plugin or f.conn.greeting_plugin or "?"
    chain = " -> ".join([start] + [s.plugin or "?" for s in switches])
    ev = "; ".join(f.pkt(s) for s in switches)
    greet = f.conn.greeting_plugin
    target = switches[-1].plugin or "mysql_old_password"
    if target == "mysql_old_password":
        advice = (
            "rehash the account's pre-4.1 password (SET PASSWORD FOR "
            f"{f.account_sql} = PASSWORD('…') with old_passwords=0): the old protocol is the real cost here"
        )
    elif len({s.plugin for s in switches}) > 1:
        advice = (
            "the account has several alternatives (IDENTIFIED VIA a OR b) and the client's password matched a later "
            "one: give the client the first alternative's password, or put the alternative it uses first"
        )
    elif f.conn.is_mariadb and target in (
        "client_ed25519",
        "parsec",
        "dialog",
        "auth_gssapi_client",
    ):
        advice = (
            f"nothing to fix: MariaDB always announces mysql_native_password, so {target} accounts always switch "
            f"(libmariadb clients can start with it: mysql --default-auth={target})"
        )
    else:
        advice = (
            f"make the client start with the account's plugin (mysql --default-auth={target}; "
            f"mysql-connector-python auth_plugin='{target}'), or make the server's default_authentication_plugin "
            "and the account's plugin agree"
        )
    opening = (
        f"greeting plugin '{greet}', client answered with '{f.ex.client_plugin}'"
        if f.is_login
        else f"COM_CHANGE_USER named '{f.ex.client_plugin}'"
    )
    return hit(
        f"{opening}; {ev}",
        chain=chain,
        target=target,
        n=len(switches),
        rt="round trip" if len(switches) == 1 else "round trips",
        advice=advice,
    )


def check_sha2_full_auth(f: Facts) -> Hit | None:
    for s in f.steps:
        if (
            s.kind == "auth_more_data"
            and s.data == b"\x04"
            and f.plugin_at(s) == "caching_sha2_password"
        ):
            path = (
                "over TLS" if s.in_tls or f.tls else "without TLS (RSA key exchange or clear text)"
            )
            return hit(
                f"{f.pkt(s)}: the server had no cached hash for the account; full authentication {path}"
            )
    return None


def check_cleartext_without_tls(f: Facts) -> Hit | None:
    if f.tls:
        return None
    clear = [s for s in f.client_steps if f.is_cleartext(s)]
    if not clear:
        return None
    s = clear[0]
    return hit(f"{f.pkt(s)} on plain TCP: anyone on the path can read it", cplugin=f.plugin_at(s))


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
        return hit(_err_evidence(f))
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
        if s.kind == "auth_more_data" and s.data.startswith(b"-----BEGIN"):
            return hit(f"{f.pkt(s)} on plain TCP, used to encrypt the password")
    return None


# ------------------------------------------------------------------ table
_ERR_FIX_ACCOUNT = "check the account: SELECT user, host, plugin, account_locked FROM mysql.user WHERE user = '{user}'"

RULES: list[Rule] = [
    # ---- refused before authentication -------------------------------
    Rule(
        "HOST_NOT_ALLOWED",
        "error",
        "{server} refuses connections from host '{host}': no account matches that host",
        "create an account for the client's host, or widen the host pattern: CREATE USER '<user>'@'{host}' "
        "IDENTIFIED BY '…' (or '<user>'@'%'); GRANT …; connecting through localhost/a socket picks a different account",
        "The server has no account whose host part matches the client's address, so it refused the TCP connection "
        "before the greeting. The user name was never sent.",
        "ERR 1130 with seq 0 in place of the greeting (no SQLSTATE), then the server closes.",
        check_host_not_allowed,
        rank=90,
    ),
    Rule(
        "HOST_BLOCKED",
        "error",
        "{server} has blocked host '{host}' after too many connection errors",
        "unblock it: FLUSH HOSTS (MySQL 8.0.23+: TRUNCATE TABLE performance_schema.host_cache; MariaDB: "
        "mariadb-admin flush-hosts), raise max_connect_errors, and stop the half-open health checks that cause it",
        "max_connect_errors was reached for this host (often load-balancer health checks that open and drop TCP "
        "connections).",
        "ERR 1129 in place of the greeting.",
        check_host_blocked,
        rank=90,
    ),
    Rule(
        "TOO_MANY_CONNECTIONS",
        "error",
        "{server} is at max_connections and refused the connection",
        "raise max_connections (SET GLOBAL max_connections = …), size the application's pool below it, and look for "
        "leaked connections: SHOW PROCESSLIST",
        "The server has no free connection slot.",
        "ERR 1040 in place of the greeting (or, on some versions, after the response).",
        _code_is(1040),
        rank=90,
    ),
    Rule(
        "MAX_USER_CONNECTIONS",
        "error",
        "{account} already has max_user_connections open on {server}",
        "raise the limit (ALTER USER {account_sql} WITH MAX_USER_CONNECTIONS n, or the global max_user_connections) or "
        "fix the application's connection leak",
        "The per-account connection limit is reached; the password was accepted.",
        "ERR 1203 after the authentication exchange.",
        _code_is(1203),
        rank=90,
    ),
    Rule(
        "USER_RESOURCE_LIMIT",
        "error",
        "{account} has exceeded a resource limit on {server}",
        "raise the limit with ALTER USER {account_sql} WITH MAX_CONNECTIONS_PER_HOUR n (or the limit named in the error), "
        "or wait for the hourly counter to reset",
        "A per-hour limit (MAX_CONNECTIONS_PER_HOUR, MAX_QUERIES_PER_HOUR, …) is exhausted.",
        "ERR 1226 after the authentication exchange.",
        _code_is(1226),
        rank=90,
    ),
    Rule(
        "SERVER_SHUTDOWN",
        "error",
        "{server} is shutting down",
        "wait for the restart and retry; make the application retry connection errors with back-off",
        "The server answered during shutdown.",
        "ERR 1053, then the server closes.",
        _code_is(1053),
        rank=90,
    ),
    Rule(
        "SERVER_OFFLINE",
        "error",
        "{server} is in offline mode and refuses {account}",
        "SET GLOBAL offline_mode = OFF, or connect with an account that has CONNECTION_ADMIN/SUPER",
        "offline_mode=ON lets only administrative accounts in.",
        "ERR 3032 after the authentication exchange.",
        _code_is(3032),
        rank=90,
    ),
    Rule(
        "BAD_HANDSHAKE",
        "error",
        "{server} could not parse the handshake response from {client}",
        "the client or a proxy in between sends a malformed packet: upgrade the client, check the proxy, "
        "compare the response with `mysqlwire dissect --packets`",
        "The server rejected a malformed or truncated HandshakeResponse (or COM_CHANGE_USER).",
        "ERR 1043 (08S01) right after the client's first packet.",
        _code_is(1043),
        rank=80,
    ),
    # ---- account state -------------------------------------------------
    Rule(
        "ACCOUNT_LOCKED",
        "error",
        "{account} is locked on {server}",
        "ALTER USER {account_sql} ACCOUNT UNLOCK (MariaDB checks the password first: a locked account with a wrong "
        "password gets 1045 instead)",
        "The account exists and the password was accepted, but the account is locked (ACCOUNT LOCK).",
        "ERR 3118 (MySQL) or 4151 (MariaDB) after the authentication exchange.",
        _code_is(3118, 4151),
        rank=90,
    ),
    Rule(
        "ACCOUNT_BLOCKED_FAILED_LOGINS",
        "error",
        "{account} is temporarily locked on {server} after consecutive failed logins",
        "wait for PASSWORD_LOCK_TIME to pass or ALTER USER {account_sql} ACCOUNT UNLOCK; then fix the client that sends the "
        "wrong password (FAILED_LOGIN_ATTEMPTS)",
        "MySQL 8.0.19+ FAILED_LOGIN_ATTEMPTS/PASSWORD_LOCK_TIME locked the account.",
        "ERR 3955 after the authentication exchange (code number from the reference, unverified).",
        _code_is(3955),
        rank=90,
    ),
    Rule(
        "PASSWORD_EXPIRED",
        "error",
        "the password of {account} on {server} has expired: {mode}",
        "set a new password: ALTER USER {account_sql} IDENTIFIED BY '…' (or SET PASSWORD), then update the client's "
        "configuration; PASSWORD EXPIRE NEVER for service accounts",
        "The account's password is expired. Clients that set CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS (and, by default, "
        "every client on MariaDB) are let in to a sandbox session where every statement but ALTER USER/SET PASSWORD "
        "fails with 1820 (reported as a warning: the login itself succeeded); others get 1862.",
        "ERR 1862 after the authentication exchange; or OK, then ERR 1820 answering the first command.",
        check_password_expired,
        rank=90,
    ),
    Rule(
        "UNIX_SOCKET_ACCOUNT",
        "error",
        "{account} authenticates by operating-system user (unix_socket/auth_socket), not by password",
        "connect over the Unix socket as the matching OS user (sudo mysql), or give the account a password plugin: "
        "ALTER USER {account_sql} IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('…') (MariaDB) / "
        "IDENTIFIED WITH caching_sha2_password BY '…' (MySQL)",
        "Typical for Debian/Ubuntu root: the account uses auth_socket/unix_socket and cannot log in over TCP or as "
        "another OS user.",
        "ERR 1698 (28000) after the authentication exchange.",
        _code_is(1698),
        rank=90,
    ),
    Rule(
        "UNKNOWN_DATABASE",
        "error",
        "{server} accepted {account} but the database in the handshake does not exist",
        "fix the database name in the client's configuration, or CREATE DATABASE it",
        "Authentication succeeded; the database named in the HandshakeResponse (CLIENT_CONNECT_WITH_DB) does not "
        "exist.",
        "ERR 1049 (42000) where the OK would be.",
        _code_is(1049),
        rank=90,
    ),
    Rule(
        "DB_ACCESS_DENIED",
        "error",
        "{account} may not use the database named in the handshake on {server}",
        "GRANT the privileges on that database (GRANT SELECT, … ON db.* TO {account_sql}) or connect to another one; "
        "on MariaDB also check the name: it answers 1044 for a database that does not exist but the user could not "
        "see anyway",
        "Authentication succeeded, but the account has no privilege on the requested database.",
        "ERR 1044 (42000) where the OK would be.",
        _code_is(1044),
        rank=90,
    ),
    Rule(
        "PLUGIN_NOT_LOADED",
        "error",
        "{server} cannot authenticate {account}: its authentication plugin is not loaded on the server",
        "load the plugin on the server (MariaDB: INSTALL SONAME 'auth_ed25519'; MySQL 8.4: mysql_native_password=ON "
        "in my.cnf), or move the account to a loaded plugin: ALTER USER {account_sql} IDENTIFIED WITH caching_sha2_password "
        "BY '…'",
        "The account names a plugin the server does not have (ed25519/parsec/PAM not installed; "
        "mysql_native_password disabled in MySQL 8.4, removed in 9.0).",
        "ERR 1524 'Plugin … is not loaded' after the response.",
        _code_is(1524),
        rank=90,
    ),
    # ---- transport security ----------------------------------------------
    Rule(
        "TLS_REQUIRED",
        "error",
        "{server} requires a secure transport for {account}, and {client} connected without TLS",
        "connect with TLS: mysql --ssl-mode=REQUIRED (MariaDB: --ssl), PyMySQL ssl={{'ca': '/path/ca.pem'}}, "
        "mysql-connector-python ssl_ca=…; or drop the requirement (ALTER USER {account_sql} REQUIRE NONE / "
        "require_secure_transport=OFF) if that is intended",
        "require_secure_transport=ON (3159), or an account created with REQUIRE SSL/X509, which gets a plain 1045. "
        "Reported for 1045 when the proof is valid for the given password, the connection had no TLS and the "
        "greeting offered it (hedged: an unknown account or host looks the same, VALID_PROOF_REJECTED follows), "
        "when the same user logged in over TLS elsewhere in the capture, or when a correct clear-text secret was "
        "refused outside TLS.",
        "No SSLRequest from the client; ERR 3159 after the response, or ERR 1045 after a valid proof.",
        check_tls_required,
        rank=95,
        suppresses=("ACCESS_DENIED",),
    ),
    Rule(
        "TLS_NOT_OFFERED",
        "error",
        "{server} does not offer TLS and {client} left after the greeting",
        "enable TLS on the server (ssl_cert/ssl_key/ssl_ca; MariaDB 11.4+ does it automatically), or relax the "
        "client's TLS requirement if the network is trusted",
        "The greeting lacks CLIENT_SSL and the client (configured to require TLS) gave up: client error 2026.",
        "Greeting without CLIENT_SSL; the client closes without a response.",
        check_tls_not_offered,
        rank=89,
        scope="connection",
        suppresses=("CLIENT_GAVE_UP_ON_GREETING",),
    ),
    Rule(
        "TLS_HANDSHAKE_FAILED",
        "error",
        "the TLS handshake between {client} and {server} failed",
        "compare TLS versions/ciphers and the certificate (CA, hostname) on both sides; `openssl s_client -starttls "
        "mysql -connect host:port` shows the server's side",
        "The client sent an SSLRequest but the TLS handshake did not complete: client error 2026.",
        "SSLRequest, then a TLS alert or a close before the HandshakeResponse.",
        check_tls_handshake_failed,
        rank=85,
        scope="connection",
        suppresses=("ENCRYPTED_NO_KEYS",),
    ),
    Rule(
        "SECURE_CHANNEL_REQUIRED",
        "error",
        "{splugin} full authentication for {account} needs TLS or the server's RSA key, and {client} had neither",
        "{how}",
        "The server asked for full authentication (01 04: no cached hash, e.g. after a restart or FLUSH PRIVILEGES) "
        "on a connection without TLS; the client neither requested the RSA public key nor had one, or it sent the "
        "password in clear, which the server refuses outside TLS.",
        "AuthMoreData 01 04 on plain TCP, then the client's FIN (2061); or clear text after 01 04 and ERR 1045.",
        check_secure_channel_required,
        rank=93,
        suppresses=(
            "WRONG_PASSWORD",
            "VALID_PROOF_REJECTED",
            "ACCESS_DENIED",
            "CLIENT_ABORTED_AUTH",
        ),
        fix_doc=(
            "Connect with TLS; or let the client fetch the server's RSA key (--get-server-public-key) or pin it "
            "(--server-public-key-path); mysql-connector-python (pure): TLS, or the C extension (use_pure=False)."
        ),
    ),
    # ---- plugins ----------------------------------------------------------
    Rule(
        "OLD_PASSWORD_REFUSED",
        "error",
        "{account} has a pre-4.1 (mysql_old_password) hash and the {side} refused the old protocol",
        "rehash the password in the new format: SET PASSWORD FOR {account_sql} = PASSWORD('…') with old_passwords=0 "
        "(or ALTER USER … IDENTIFIED VIA mysql_native_password USING PASSWORD('…')); stopgaps: PyMySQL < 1.1 and "
        "libmariadb with secure_auth off still answer the old switch",
        "The account's 16-hex-digit hash needs mysql_old_password. The server (secure_auth=ON → 1275) or the client "
        "(libmysqlclient/libmariadb secure_auth → 2049; PyMySQL >= 1.1 'received unknown auth switch request') "
        "refused it.",
        "ERR 1275 where the bare 0xFE switch would be; or the bare 0xFE switch followed by the client's FIN.",
        check_old_password_refused,
        rank=95,
        suppresses=("CLIENT_LACKS_PLUGIN", "CLIENT_ABORTED_AUTH", "PLUGIN_SWITCH"),
    ),
    Rule(
        "SECOND_SWITCH_REFUSED",
        "error",
        "{client} refused {server}'s second authentication switch ({first} -> {second}) for {account}",
        "PyMySQL follows only one AuthSwitchRequest: make the client's password match the account's first "
        "alternative ({first}), reorder the account so the alternative the client uses comes first "
        "(ALTER USER {account_sql} IDENTIFIED VIA {second} USING PASSWORD('…') OR {first} …), or use libmariadb "
        "(MariaDB Connector/Python), which follows every switch",
        "An account with several alternatives (MariaDB IDENTIFIED VIA a OR b): the first plugin's proof failed, so "
        "the server switched again; the client does not accept a second switch.",
        "Two AuthSwitchRequests; the client answered the first and closed after the second.",
        check_second_switch_refused,
        rank=96,
        suppresses=("CLIENT_LACKS_PLUGIN", "CLIENT_ABORTED_AUTH", "PLUGIN_SWITCH"),
    ),
    Rule(
        "CLEARTEXT_NOT_ENABLED",
        "error",
        "{server} needs the clear-text secret for {account} (mysql_clear_password), which {client} did not send",
        "{how}",
        "The account authenticates against something that needs the real secret (AWS IAM token via RDS/RDS Proxy, "
        "PAM, LDAP). Either the server switched to mysql_clear_password and the client refused (libmysqlclient "
        "needs --enable-cleartext-plugin / LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN, mysql-connector-python needs TLS), "
        "or the client sent a scramble of the token, which can never verify.",
        "AuthSwitchRequest 'mysql_clear_password' then the client's FIN; or a native/caching_sha2 scramble of a "
        "token-like password and ERR 1045.",
        check_cleartext_not_enabled,
        rank=95,
        suppresses=(
            "CLIENT_LACKS_PLUGIN",
            "CLIENT_ABORTED_AUTH",
            "VALID_PROOF_REJECTED",
            "ACCESS_DENIED",
            "WRONG_PASSWORD",
        ),
        fix_doc=(
            "libmysqlclient: --enable-cleartext-plugin / LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1 / MYSQL_ENABLE_CLEARTEXT_PLUGIN; "
            "mysql-connector-python: connect with TLS; a token sent as a scramble: send it with mysql_clear_password "
            "over TLS (PyMySQL ssl=… and auth_plugin_map={'mysql_clear_password': None}); always with TLS."
        ),
    ),
    Rule(
        "DIALOG_UNANSWERED",
        "error",
        "{client} left {server}'s {dplugin} (PAM) question for {account} unanswered",
        "use a client with the dialog plugin (libmariadb: mariadb CLI, MariaDB Connector/Python; PyMySQL answers "
        "'Password: ' prompts, others via auth_plugin_map), or configure the server's PAM plugin to use "
        "mysql_clear_password (pam_use_cleartext_plugin=ON) — with TLS",
        "The account uses PAM through the dialog plugin and the client, which has a dialog plugin, left the question "
        "(or MariaDB's empty dialog switch) unanswered — a prompt it could not handle, or a user who did not answer. "
        "Clients without a usable dialog plugin (libmysqlclient, mysql-connector-python, PyMySQL against MariaDB's "
        "auth_pam) are CLIENT_LACKS_PLUGIN.",
        "AuthSwitchRequest 'dialog' with a question byte (2/3 echo on, 4/5 password), then the client's FIN.",
        check_dialog_unanswered,
        rank=95,
        suppresses=("CLIENT_LACKS_PLUGIN", "CLIENT_ABORTED_AUTH"),
    ),
    Rule(
        "RSA_ENCRYPTION_UNAVAILABLE",
        "error",
        "{client} received {server}'s RSA public key for {account} and gave up instead of encrypting the password",
        "install the client's RSA support (PyMySQL: pip install 'PyMySQL[rsa]', i.e. cryptography), or connect "
        "with TLS so the password can go through the encrypted channel",
        "caching_sha2_password/sha256_password full authentication without TLS needs RSA-OAEP on the client.",
        "AuthMoreData with a PEM public key, then the client's FIN.",
        check_rsa_unavailable,
        rank=94,
        suppresses=("CLIENT_ABORTED_AUTH",),
    ),
    Rule(
        "CLIENT_LACKS_PLUGIN",
        "error",
        "{client} cannot authenticate {account} on {server}: the account uses {lplugin}",
        "{remedy}",
        "The server switched to (or the greeting named) a plugin the client cannot run, so the client gave up "
        "(client error 2059 'Authentication plugin … cannot be loaded'), sent a new command instead of the answer "
        "(server: 1156 'Got packets out of order'), answered with nothing where the plugin never answers empty "
        "(libmariadb without client_ed25519.so), or sent an empty response labelled with the greeting's plugin "
        "(PyMySQL < 0.9 with caching_sha2_password → 1045 'using password: NO'). Which library lacks what comes "
        "from the fingerprint table below.",
        "AuthSwitchRequest naming the plugin, then the client's FIN (or a new command, or an empty answer); or a "
        "HandshakeResponse labelled with the greeting's plugin but with an empty auth response, then ERR 1045.",
        check_client_lacks_plugin,
        rank=90,
        suppresses=("CLIENT_ABORTED_AUTH", "EMPTY_PASSWORD", "PLUGIN_SWITCH"),
        fix_doc=(
            "Chosen from the fingerprint: PyMySQL < 0.9 → upgrade (pip install -U 'PyMySQL[rsa]'); PyMySQL 0.9 and "
            "client_ed25519 → PyMySQL >= 1.0 + PyNaCl; PyMySQL and MariaDB PAM dialog, mysql-connector-python and "
            "client_ed25519/dialog/parsec/old → MariaDB Connector/Python (pip install mariadb); libmysqlclient and "
            "MariaDB plugins → libmariadb; libmysqlclient < 5.7.23 and caching_sha2 → upgrade; libmariadb with an "
            "empty ed25519 answer → install/point to client_ed25519.so (--plugin-dir); always also: change the "
            "account to a plugin the client speaks (ALTER USER … IDENTIFIED WITH/VIA mysql_native_password …)."
        ),
    ),
    Rule(
        "CLIENT_GAVE_UP_ON_GREETING",
        "error",
        "{client} closed the connection to {server} right after the greeting",
        "{hint}",
        "The client read the greeting and left without a handshake response: it could not handle something in "
        "it (PyMySQL <= 0.7 dies on MySQL 8's default collation 255; a client requiring TLS meets a server without "
        "it) or it timed out.",
        "Greeting (seq 0), then the client's FIN/RST with no response.",
        check_greeting_abandoned,
        rank=88,
        scope="connection",
        fix_doc=(
            "Collation 255 in the greeting: upgrade PyMySQL (>= 0.8 knows it) or set collation_server to one the "
            "client knows (utf8mb4_general_ci); protocol 9: replace the server; otherwise read the client's error."
        ),
    ),
    Rule(
        "CLIENT_PROTOCOL_TOO_OLD",
        "error",
        "{client} is too old for {account}'s authentication plugin on {server}",
        "upgrade the client library (one with plugin authentication, 5.5+), or give the account "
        "mysql_native_password: {native_sql}",
        "The client did not set CLIENT_PLUGIN_AUTH (or speaks the 4.0 protocol), so the server cannot switch it to "
        "the account's plugin.",
        "ERR 1251 (08004) right after the handshake response.",
        check_client_protocol_too_old,
        rank=85,
    ),
    Rule(
        "NONCE_MISUSE",
        "error",
        "{client} computed its proof for {account} with the wrong nonce",
        "a client or proxy bug: the scramble must use the 20 nonce bytes of the current greeting/switch (without "
        "the trailing NUL); upgrade the client or the proxy in between",
        "The proof only matches the given password when computed with another nonce (the greeting's with its NUL, "
        "an earlier connection's, the greeting's instead of the switch's).",
        "Replay: PROOF_MISMATCH with the right nonce, PROOF_MATCHES with a wrong one.",
        check_nonce_misuse,
        rank=89,
        suppresses=("WRONG_PASSWORD", "ACCESS_DENIED"),
    ),
    Rule(
        "WRONG_PASSWORD",
        "error",
        "{client} sent a different password for {account} than the one given",
        "the client is configured with another password: check its configuration/secret store (trailing newline, "
        "rotated secret, escaped characters); if the given password is the wrong one instead, reset it: "
        "ALTER USER {account_sql} IDENTIFIED BY '…'",
        "Replaying the exchange with the given password gives different proof bytes, and the server refused.",
        "Replay PROOF_MISMATCH on a client proof, then ERR 1045 (using password: YES).",
        check_wrong_password,
        rank=85,
        suppresses=("ACCESS_DENIED", "CLIENT_ABORTED_AUTH"),
    ),
    Rule(
        "EMPTY_PASSWORD",
        "error",
        "{client} sent no password for {account}, which needs one",
        "give the client its password (an unset environment variable or config key is the usual cause); "
        + _ERR_FIX_ACCOUNT,
        "The client sent no password (an empty proof, or a client_ed25519 signature of the empty password) while "
        "the account has one: replay with the given password says EMPTY_PASSWORD_SENT, or the proof only matches ''. "
        "Without a password to replay, the same wire is ACCESS_DENIED with a note (the account may not exist).",
        "Empty auth response in the HandshakeResponse/AuthSwitchResponse, then ERR 1045 '(using password: NO)'; or a "
        "64-byte ed25519 signature of '' and '(using password: YES)'.",
        check_empty_password,
        rank=86,
        suppresses=("ACCESS_DENIED", "WRONG_PASSWORD"),
    ),
    Rule(
        "VALID_PROOF_REJECTED",
        "error",
        "{client} proved the given password for {account}, but {server} refused it",
        "the password is not the problem: the account does not exist for this host, another account with a more "
        "specific host (or the anonymous ''@'localhost') matched first, or the server's password is a different one. "
        + _ERR_FIX_ACCOUNT
        + "; SELECT CURRENT_USER() from a working session shows which account matched",
        "Replay says every proof is right for the given password, yet the server answered 1045.",
        "Replay PROOF_MATCHES, then ERR 1045.",
        check_valid_proof_rejected,
        rank=75,
        suppresses=("ACCESS_DENIED",),
    ),
    Rule(
        "ACCESS_DENIED",
        "error",
        "{server} denied access to {account}",
        "give the password (--password-file/--password-env) to tell a wrong password from an unknown account or "
        "host; " + _ERR_FIX_ACCOUNT,
        "ERR 1045 and nothing to tell a wrong password from an unknown user or a non-matching host (no password "
        "given, or the proof cannot be replayed).",
        "ERR 1045 (28000) '(using password: YES)' after the last auth step.",
        check_access_denied,
        rank=70,
    ),
    Rule(
        "SERVER_DROPPED_CONNECTION",
        "error",
        "{server} closed the connection during authentication of {account} without an answer",
        "check the server's error log and connect_timeout/wait_timeout, and any proxy or firewall in between "
        "(client error 2013 'Lost connection … reading authorization packet')",
        "The client's last packet got no OK/ERR: the server (or something in between) dropped the connection.",
        "The client's auth packet is the last one; then FIN/RST.",
        check_server_dropped,
        rank=60,
    ),
    Rule(
        "CLIENT_ABORTED_AUTH",
        "error",
        "{client} abandoned the authentication of {account} on {server}",
        "read the client's own error message (it never reaches the wire); compare with a working client using "
        "`mysqlwire dissect --packets`",
        "The client left while the server waited for its answer, for a reason no more specific rule explains.",
        "A server auth packet is the last one; then the client's FIN/RST.",
        check_client_aborted,
        rank=40,
        fallback=True,
    ),
    Rule(
        "SERVER_REFUSED",
        "error",
        "{server} refused {account} with error {code}",
        "look the error up (perror {code}); the message: {message}",
        "A server error in the connection phase that no more specific rule covers.",
        "An ERR packet in the connection phase.",
        check_server_refused,
        rank=30,
        fallback=True,
    ),
    # ---- capture problems ---------------------------------------------
    Rule(
        "ENCRYPTED_NO_KEYS",
        "warning",
        "the login of {client} to {server} ran inside TLS and the capture has no keys for it",
        "capture the TLS secrets and pass them: SSLKEYLOGFILE=keys.log for the client (or the server), then "
        "mysqlwire diagnose --keylog keys.log capture.pcap (or a pcapng with a decryption-secrets block)",
        "After the SSLRequest everything is encrypted: user, plugin, proofs and the outcome cannot be seen.",
        "A 32-byte SSLRequest (CLIENT_SSL), then TLS records.",
        check_encrypted_no_keys,
        rank=60,
        scope="connection",
    ),
    Rule(
        "CAPTURE_INCOMPLETE",
        "warning",
        "the capture does not hold the whole login ({client} -> {server})",
        "capture from before the connection starts until after the OK/ERR (tcpdump -i any -s 0 'tcp port 3306'), "
        "and avoid dropped packets (-B bigger buffer)",
        "The greeting is missing (capture started mid-connection), packets are missing, or the capture ends before "
        "the server's verdict: nothing to verify.",
        "No greeting; or TCP gaps; or no OK/ERR before the end of the capture.",
        check_capture_incomplete,
        rank=50,
        scope="connection",
    ),
    # ---- informational ------------------------------------------------
    Rule(
        "PLUGIN_SWITCH",
        "info",
        "{server} switched {account} from the client's plugin to {target} ({chain}): {n} extra {rt}",
        "the login works; {advice}",
        "The plugin in the greeting / the client's response differs from the account's plugin, so the server "
        "restarted authentication with an AuthSwitchRequest (one extra round trip per switch).",
        "AuthSwitchRequest (0xFE + plugin name + data), or the bare 0xFE old-password switch.",
        check_plugin_switch,
        rank=50,
        fix_doc=(
            "Depends on the switch: MariaDB ed25519/PAM accounts always switch (nothing to fix, or "
            "--default-auth=client_ed25519); an old-password switch → rehash the account; several alternatives → give "
            "the first alternative's password; otherwise make the client start with the account's plugin "
            "(--default-auth, auth_plugin=) or align default_authentication_plugin."
        ),
    ),
    Rule(
        "SHA2_FULL_AUTH",
        "info",
        "{server} had no cached caching_sha2_password hash for {account}: full authentication",
        "nothing is broken: the first login after a restart, FLUSH PRIVILEGES or a password change is always a full "
        "authentication; use TLS so it does not need an RSA key exchange",
        "caching_sha2_password fast authentication only works once the server has cached the account's hash.",
        "AuthMoreData 01 04 (perform_full_authentication) after the 32-byte scramble.",
        check_sha2_full_auth,
        rank=40,
    ),
    # ---- security -----------------------------------------------------
    Rule(
        "CLEARTEXT_WITHOUT_TLS",
        "security",
        "{client} sent the password of {account} in clear text ({cplugin}) without TLS",
        "use TLS (mysql --ssl-mode=REQUIRED; PyMySQL ssl=…; server require_secure_transport=ON), and rotate the "
        "password (or token) since it is in this capture",
        "mysql_clear_password, a dialog/PAM answer or a caching_sha2/sha256 full-authentication password was sent on "
        "plain TCP: the capture contains the password.",
        "A client auth packet holding the password + NUL outside TLS.",
        check_cleartext_without_tls,
        rank=90,
    ),
    Rule(
        "OLD_PASSWORD_IN_USE",
        "security",
        "{account} still has a pre-4.1 (mysql_old_password) password hash",
        "rehash: SET PASSWORD FOR {account_sql} = PASSWORD('…') with old_passwords=0, then turn secure_auth ON",
        "The 16-hex-digit pre-4.1 hash is weak and a capture of one login is enough to brute-force it.",
        "The bare 0xFE old-password switch (or ERR 1275).",
        check_old_password_in_use,
        rank=45,
    ),
    Rule(
        "WEAK_TLS_VERSION",
        "security",
        "the connection of {client} to {server} negotiated {tlsv}",
        "allow only TLS 1.2+: tls_version=TLSv1.2,TLSv1.3 on the server, --tls-version on the client",
        "TLS 1.0/1.1 (and SSL 3.0) are deprecated and weak.",
        "The ServerHello's negotiated version.",
        check_weak_tls,
        rank=70,
        scope="connection",
    ),
    Rule(
        "OFFLINE_CRACKABLE_PROOF",
        "security",
        "the {cplugin} proof of {account} was captured without TLS: passwords can be guessed against it offline",
        "use TLS so the nonce and proof are not visible; use strong passwords; for caching_sha2/ed25519 the cost per "
        "guess is still low",
        "With the nonce and the proof from a plain-TCP login an attacker can test password guesses offline at hash "
        "speed: one SHA1 chain per guess (native), one SHA256 chain (caching_sha2 fast path), one Ed25519 signature "
        "(ed25519); the pre-4.1 scramble323 reveals its weak hash almost for free.",
        "A native (20-byte), caching_sha2 fast (32-byte), scramble323 or ed25519 proof outside TLS.",
        check_offline_crackable,
        rank=30,
    ),
    Rule(
        "RSA_KEY_FETCHED_INSECURELY",
        "security",
        "{client} took {server}'s RSA public key from the plain-TCP connection",
        "pin the key instead (--server-public-key-path / server_public_key), or use TLS: whoever can change the "
        "traffic can hand the client their own key and read the password",
        "Requesting the server's public key over an unauthenticated channel allows a man in the middle.",
        "AuthMoreData with a PEM public key outside TLS.",
        check_rsa_key_fetched,
        rank=25,
    ),
]

RULES_BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}
assert len(RULES_BY_CODE) == len(RULES), "duplicate rule code"
for _r in RULES:
    assert _r.severity in SEVERITY_ORDER, _r.code
    for _s in _r.suppresses:
        assert _s in RULES_BY_CODE or _s in ("CLIENT_ABORTED_AUTH",), (_r.code, _s)
