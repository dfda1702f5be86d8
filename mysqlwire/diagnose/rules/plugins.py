"""Plugins: the client cannot (or will not) answer the authentication plugin the server asked for; plugin switches and sha2 full authentication."""

from __future__ import annotations

from ...auth import CLEARTEXT_PLUGINS, get_plugin
from .. import clients
from ..clients import IMPLEMENTERS
from ..context import Facts
from ..fingerprint import MULTI_SWITCH, PLUGIN_AUTH
from .base import Hit, Spec, err_evidence, hit, last_proof, not_answered, switch_given_up

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


def check_old_password_refused(f: Facts) -> Hit | None:
    if f.code == 1275:
        return hit(err_evidence(f), side="server (secure_auth=ON)")
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
            f"{f.pkt(olds[-1])}; {who}: {not_answered(f, olds[-1])} (no scramble323)",
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
    return hit(err_evidence(f) + note)


def check_second_switch_refused(f: Facts) -> Hit | None:
    switches = f.switch_steps
    last = switch_given_up(f)
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
        f"{f.pkt(first)}, answered by the client; {f.pkt(last)}; {not_answered(f, last)} (the second switch)",
        first=first.plugin,
        second=last.plugin,
    )


def check_cleartext_not_enabled(f: Facts) -> Hit | None:
    last = switch_given_up(f, ("mysql_clear_password",))
    if last is not None:
        lib = f.fp.library
        if lib == "mysql-connector-python" and not f.tls:
            how = "mysql-connector-python sends mysql_clear_password only over TLS: connect with TLS (ssl_ca=..., ssl_disabled=False)"
        elif lib == "libmysqlclient":
            how = (
                "enable it: mysql --enable-cleartext-plugin, LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1, or mysql_options(MYSQL_ENABLE_CLEARTEXT_PLUGIN)"
                + ("" if f.tls else "; and use TLS")
            )
        elif lib not in ("PyMySQL", "libmariadb") and clients.fix_for(lib, "enable_cleartext"):
            how = clients.fix_for(lib, "enable_cleartext")
        else:
            how = (
                "enable the clear-text plugin in the client (mysql --enable-cleartext-plugin / "
                "LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1 for libmysqlclient; PyMySQL: auth_plugin_map={'mysql_clear_password': None} "
                "is not needed, it answers by itself)" + ("" if f.tls else " and connect with TLS")
            )
        return hit(f"{f.pkt(last)}; {not_answered(f, last)}: no password was sent", how=how)
    if f.token_like and f.code == 1045 and f.final_plugin not in CLEARTEXT_PLUGINS:
        proof = last_proof(f)
        return hit(
            (f"{f.pkt(proof)}: " if proof else "")
            + f"a {f.final_plugin} scramble of a token-like password (the server can only check such a token in clear "
            f"text); then {err_evidence(f)}",
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
    if f.fp.supports("dialog") is None and last.kind == "auth_switch_request":
        # an unidentified client that leaves at the switch itself most likely has
        # no dialog plugin (Go, node, PHP mysqlnd have none): CLIENT_LACKS_PLUGIN
        return None
    q = ""
    data = last.data
    if last.kind == "auth_switch_request" and data:
        q = f"; question byte 0x{data[0]:02x}, prompt {len(data) - 1} bytes"
    elif last.kind == "auth_switch_request":
        q = " (no question: the client is expected to send the password)"
    return hit(f"{f.pkt(last)}{q}; {not_answered(f, last)}", dplugin=plugin)


def check_rsa_unavailable(f: Facts) -> Hit | None:
    last = f.abandoned_at
    if last is None or not f.means(last, "public_key"):
        return None
    hint = ""
    if f.fp.library == "PyMySQL":
        hint = " (PyMySQL without the 'cryptography' package raises RuntimeError here)"
    return hit(f"{f.pkt(last)}; {not_answered(f, last)}: no RSA-encrypted password{hint}")


def _never_empty(plugin: str | None) -> bool:
    """A valid answer to this plugin is never empty (the plugin says so): an empty
    answer means the client could not run it."""
    p = get_plugin(plugin) if plugin else None
    return p is not None and not p.empty_answer_possible


def check_client_lacks_plugin(f: Facts) -> Hit | None:
    last = switch_given_up(f, exclude=("mysql_clear_password",))
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
        elif f.fp.known:
            why = f"the client library could not load {last.plugin} (client error 2059 'Authentication plugin cannot be loaded')"
        else:
            why = (
                f"the client has no {last.plugin} plugin or could not load it (libmysqlclient/libmariadb: client "
                "error 2059 'Authentication plugin cannot be loaded')"
            )
        return hit(
            f"{f.pkt(last)}; {not_answered(f, last)}: {why}",
            lplugin=last.plugin,
            remedy=lacks_plugin_fix(f, last.plugin),
        )
    # An empty answer to a switch whose plugin never produces one.
    for i, s in enumerate(f.steps):
        if s.kind != "auth_switch_request" or not _never_empty(s.plugin):
            continue
        nxt = f.steps[i + 1] if i + 1 < len(f.steps) else None
        if (
            nxt is not None
            and nxt.sender == "client"
            and nxt.kind == "auth_data"
            and not nxt.data
            and f.failed
        ):
            tail = f"; then {err_evidence(f)}" if f.err else ""
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
        f"{f.pkt(first)} labelled '{plugin}'{origin} but without a proof; then {err_evidence(f)}: "
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
    if c.character_set == 255 and f.server_offers_tls is False:
        hints.append(
            "alternative, less common: the client requires TLS and the server offers none (client error 2026): "
            "enable TLS on the server"
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
    works = (
        "the login works; "
        if f.outcome == "ok"
        else "the switch is not why this exchange failed (see the error finding); about the switch: "
    )
    return hit(
        f"{opening}; {ev}",
        works=works,
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
            and f.means(s, "perform_full_authentication")
            and f.plugin_at(s) == "caching_sha2_password"
        ):
            secure = s.in_tls or f.tls
            path = "over TLS" if secure else "without TLS (RSA key exchange or clear text)"
            advice = "" if secure else "; use TLS so it does not need an RSA key exchange"
            lead = (
                "nothing is broken"
                if f.outcome == "ok"
                else "not why this exchange failed (see the error finding)"
            )
            return hit(
                f"{f.pkt(s)}: the server had no cached hash for the account; full authentication {path}",
                tls_advice=advice,
                lead=lead,
            )
    return None


SPECS = [
    Spec(
        "OLD_PASSWORD_REFUSED",
        "error",
        check_old_password_refused,
        rank=95,
        suppresses=("CLIENT_LACKS_PLUGIN", "CLIENT_ABORTED_AUTH", "PLUGIN_SWITCH"),
    ),
    Spec(
        "SECOND_SWITCH_REFUSED",
        "error",
        check_second_switch_refused,
        rank=96,
        suppresses=("CLIENT_LACKS_PLUGIN", "CLIENT_ABORTED_AUTH", "PLUGIN_SWITCH"),
    ),
    Spec(
        "CLEARTEXT_NOT_ENABLED",
        "error",
        check_cleartext_not_enabled,
        rank=95,
        suppresses=(
            "CLIENT_LACKS_PLUGIN",
            "CLIENT_ABORTED_AUTH",
            "VALID_PROOF_REJECTED",
            "ACCESS_DENIED",
        ),
    ),
    Spec(
        "DIALOG_UNANSWERED",
        "error",
        check_dialog_unanswered,
        rank=95,
        suppresses=("CLIENT_LACKS_PLUGIN", "CLIENT_ABORTED_AUTH"),
    ),
    Spec(
        "RSA_ENCRYPTION_UNAVAILABLE",
        "error",
        check_rsa_unavailable,
        rank=94,
        suppresses=("CLIENT_ABORTED_AUTH",),
    ),
    Spec(
        "CLIENT_LACKS_PLUGIN",
        "error",
        check_client_lacks_plugin,
        rank=90,
        suppresses=("CLIENT_ABORTED_AUTH", "EMPTY_PASSWORD", "PLUGIN_SWITCH"),
    ),
    Spec(
        "CLIENT_GAVE_UP_ON_GREETING", "error", check_greeting_abandoned, rank=88, scope="connection"
    ),
    Spec("CLIENT_PROTOCOL_TOO_OLD", "error", check_client_protocol_too_old, rank=85),
    Spec("PLUGIN_SWITCH", "info", check_plugin_switch, rank=50),
    Spec("SHA2_FULL_AUTH", "info", check_sha2_full_auth, rank=40),
]
