"""docs/diagnoses.md is generated from the rule table and must be up to date."""

from __future__ import annotations

from mysqlwire.diagnose import RULES
from mysqlwire.diagnose.docs import render

from .conftest import REPO

DOC = REPO / "docs" / "diagnoses.md"


def test_committed_doc_is_up_to_date():
    assert DOC.read_text() == render(), (
        "docs/diagnoses.md is stale: python -m mysqlwire.diagnose.docs > docs/diagnoses.md"
    )


def test_every_code_is_documented_with_evidence_and_fix():
    text = render()
    for r in RULES:
        assert f"### {r.code}\n" in text
        assert r.meaning and r.wire and r.fix and r.title
    section = text.split("### ACCESS_DENIED\n", 1)[1].split("###", 1)[0]
    assert "**Wire evidence:**" in section and "**Fix:**" in section and "**Means:**" in section


def test_required_codes_exist():
    required = """CLIENT_LACKS_PLUGIN PLUGIN_SWITCH CLEARTEXT_NOT_ENABLED CLEARTEXT_WITHOUT_TLS SECURE_CHANNEL_REQUIRED
    OLD_PASSWORD_REFUSED CLIENT_PROTOCOL_TOO_OLD WRONG_PASSWORD EMPTY_PASSWORD ACCESS_DENIED VALID_PROOF_REJECTED
    UNKNOWN_DATABASE DB_ACCESS_DENIED TOO_MANY_CONNECTIONS HOST_NOT_ALLOWED HOST_BLOCKED ACCOUNT_LOCKED
    PASSWORD_EXPIRED PLUGIN_NOT_LOADED TLS_REQUIRED DIALOG_UNANSWERED NONCE_MISUSE CAPTURE_INCOMPLETE
    ENCRYPTED_NO_KEYS OFFLINE_CRACKABLE_PROOF OLD_PASSWORD_IN_USE WEAK_TLS_VERSION""".split()
    codes = {r.code for r in RULES}
    assert not set(required) - codes
