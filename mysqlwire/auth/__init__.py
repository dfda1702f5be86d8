"""One module per MySQL/MariaDB auth plugin, behind :class:`~mysqlwire.auth.base.AuthPlugin`.

``get_plugin(name)`` returns the plugin object for a client-side plugin name as seen on the
wire (greeting, HandshakeResponse, AuthSwitchRequest), a not-replayable stand-in
(``replayable`` False, ``verify`` -> None) for plugins listed in :data:`NOT_REPLAYABLE`, or
``None`` for unknown names (report ``plugin-unsupported:<name>``).
"""

from __future__ import annotations

from . import caching_sha2, clear, dialog, ed25519, native, old, parsec, sha256
from .base import AuthDataError, AuthPlugin, nonce_from_switch_data
from .unsupported import NOT_REPLAYABLE, NOT_REPLAYABLE_PLUGINS, NotReplayablePlugin

#: Replayable plugins by wire name.
PLUGINS: dict[str, AuthPlugin] = {
    p.name: p
    for p in (
        native.PLUGIN,
        old.PLUGIN,
        caching_sha2.PLUGIN,
        sha256.PLUGIN,
        clear.PLUGIN,
        dialog.PLUGIN,
        dialog.PAM_PLUGIN,
        ed25519.PLUGIN,
        parsec.PLUGIN,
    )
}

#: Server-side / account plugin names that map to a client plugin above.
ALIASES: dict[str, str] = {
    "ed25519": ed25519.NAME,
    "pam": dialog.NAME,
}

#: Every name ``get_plugin`` answers with a plugin object.
KNOWN_PLUGINS: frozenset[str] = frozenset(PLUGINS) | frozenset(ALIASES) | frozenset(NOT_REPLAYABLE)


def get_plugin(name: str) -> AuthPlugin | None:
    """The plugin for ``name`` (``None`` if unknown; check ``.replayable`` otherwise)."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    name = ALIASES.get(name, name)
    return PLUGINS.get(name) or NOT_REPLAYABLE_PLUGINS.get(name)


__all__ = [
    "ALIASES",
    "AuthDataError",
    "AuthPlugin",
    "KNOWN_PLUGINS",
    "NOT_REPLAYABLE",
    "NotReplayablePlugin",
    "PLUGINS",
    "get_plugin",
    "nonce_from_switch_data",
]
