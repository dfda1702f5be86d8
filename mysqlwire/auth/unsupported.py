"""Plugins we know by name but cannot replay.

Replay reports ``proof-not-replayable:<plugin>`` for these (the proof is real but comes
from something other than a password: a hardware key, a Kerberos ticket, an identity
provider token...), and ``plugin-unsupported:<name>`` for names it does not know at all.
"""

from __future__ import annotations

from typing import Any

from mysqlwire.errors import UsageError

from .base import AuthPlugin

NOT_REPLAYABLE: dict[str, str] = {
    "authentication_fido": "FIDO authenticator signature with a device-held key; no password",
    "authentication_fido_client": "FIDO authenticator signature with a device-held key; no password",
    "authentication_webauthn_client": "WebAuthn assertion from a device-held key; no password",
    "authentication_ldap_sasl_client": "SASL exchange (SCRAM / GSSAPI) with the LDAP back end; not implemented",
    "auth_gssapi_client": "GSSAPI/Kerberos tokens; needs the service keytab, not a password",
    "authentication_kerberos_client": "Kerberos tokens; needs the service keytab, not a password",
    "authentication_windows_client": "Windows SSPI (NTLM/Kerberos) tokens; not a password proof",
    "authentication_oci_client": "signature with the user's OCI API key; no password",
}


class NotReplayablePlugin(AuthPlugin):
    """A known plugin whose proofs replay cannot check: ``verify`` always returns None."""

    replayable = False

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason

    def client_response(self, password: bytes, server_data: bytes, **kw: Any) -> bytes:
        raise UsageError(f"{self.name} is not replayable: {self.reason}")

    def verify(
        self,
        response: bytes,
        server_data: bytes,
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        return None


NOT_REPLAYABLE_PLUGINS: dict[str, NotReplayablePlugin] = {
    name: NotReplayablePlugin(name, reason) for name, reason in NOT_REPLAYABLE.items()
}
