"""The rule table: every diagnosis code, once, as a predicate (per family
module) plus its prose (:data:`mysqlwire.diagnose.prose.PROSE`).

A rule's predicate gets the :class:`~mysqlwire.diagnose.context.Facts` of one
authentication exchange and returns a :class:`Hit` (the wire evidence and the
values its templates need) or ``None``.  ``title`` and ``fix`` are
``str.format`` templates; besides the hit's own values they can use
``{client}`` (fingerprint label), ``{server}`` (``MySQL 8.0.36`` /
``MariaDB 10.11.19``), ``{account}`` (``'user'@'host'`` from the error
message, else the user name), ``{user}``, ``{plugin}`` (the exchange's last
plugin), ``{code}``, ``{message}``, ``{alter}`` (``ALTER USER 'u'@'h'``).

Families: :mod:`.refused` (the server names the reason), :mod:`.transport`
(TLS, secure channels, what the capture cannot show), :mod:`.plugins` (the
client cannot answer the plugin), :mod:`.password` (replay's verdict and the
generic refusals), :mod:`.security`.  Ranking: see
:mod:`mysqlwire.diagnose.ranking`.

To add a rule: write a predicate in its family with a ``Spec``, add its prose
to ``prose.py``, its place to ``ORDER`` below, unit tests (positive and
negative), and regenerate ``docs/diagnoses.md``
(``python -m mysqlwire.diagnose.docs > docs/diagnoses.md``).
"""

from __future__ import annotations

from ..prose import PROSE
from . import password, plugins, refused, security, transport
from .base import SEVERITIES, SEVERITY_ORDER, Hit, Rule, Spec, hit

__all__ = ["RULES", "RULES_BY_CODE", "SEVERITIES", "SEVERITY_ORDER", "Hit", "Rule", "Spec", "hit"]

# Table order (the last tie-break of the ranking, and the order of the docs).
ORDER = (
    "HOST_NOT_ALLOWED HOST_BLOCKED TOO_MANY_CONNECTIONS MAX_USER_CONNECTIONS USER_RESOURCE_LIMIT "
    "SERVER_SHUTDOWN SERVER_OFFLINE BAD_HANDSHAKE ACCOUNT_LOCKED ACCOUNT_BLOCKED_FAILED_LOGINS PASSWORD_EXPIRED "
    "UNIX_SOCKET_ACCOUNT UNKNOWN_DATABASE DB_ACCESS_DENIED PLUGIN_NOT_LOADED TLS_REQUIRED TLS_NOT_OFFERED "
    "TLS_HANDSHAKE_FAILED SECURE_CHANNEL_REQUIRED OLD_PASSWORD_REFUSED SECOND_SWITCH_REFUSED CLEARTEXT_NOT_ENABLED "
    "DIALOG_UNANSWERED RSA_ENCRYPTION_UNAVAILABLE CLIENT_LACKS_PLUGIN CLIENT_GAVE_UP_ON_GREETING "
    "CLIENT_PROTOCOL_TOO_OLD NONCE_MISUSE WRONG_PASSWORD EMPTY_PASSWORD VALID_PROOF_REJECTED ACCESS_DENIED "
    "SERVER_DROPPED_CONNECTION CLIENT_ABORTED_AUTH SERVER_REFUSED ENCRYPTED_NO_KEYS CAPTURE_INCOMPLETE "
    "PLUGIN_SWITCH SHA2_FULL_AUTH CLEARTEXT_WITHOUT_TLS OLD_PASSWORD_IN_USE WEAK_TLS_VERSION "
    "OFFLINE_CRACKABLE_PROOF RSA_KEY_FETCHED_INSECURELY"
).split()


def _build() -> list[Rule]:
    specs: dict[str, Spec] = {}
    for family in (refused, transport, plugins, password, security):
        for s in family.SPECS:
            assert s.code not in specs, f"duplicate rule code {s.code}"
            specs[s.code] = s
    assert set(specs) == set(ORDER), set(specs) ^ set(ORDER)
    assert set(PROSE) == set(ORDER), set(PROSE) ^ set(ORDER)
    out = []
    for code in ORDER:
        s, p = specs[code], PROSE[code]
        out.append(
            Rule(
                code,
                s.severity,
                p["title"],
                p["fix"],
                p["meaning"],
                p["wire"],
                s.check,
                rank=s.rank,
                suppresses=s.suppresses,
                scope=s.scope,
                fallback=s.fallback,
                fix_doc=p.get("fix_doc", ""),
            )
        )
    return out


RULES: list[Rule] = _build()
RULES_BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}
for _r in RULES:
    assert _r.severity in SEVERITY_ORDER, _r.code
    for _s in _r.suppresses:
        assert _s in RULES_BY_CODE, (_r.code, _s)
