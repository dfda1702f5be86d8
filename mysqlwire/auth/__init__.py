"""One module per MySQL/MariaDB auth plugin, behind :class:`~mysqlwire.auth.base.AuthPlugin`.

``get_plugin(name)`` returns the plugin object for a client-side plugin name as seen on the
wire (greeting, HandshakeResponse, AuthSwitchRequest), a not-replayable stand-in
(``replayable`` False, ``verify`` -> None) for plugins listed in :data:`NOT_REPLAYABLE`, or
``None`` for unknown names (report ``plugin-unsupported:<name>``).

Each plugin module declares its exchange once (:mod:`mysqlwire.auth.base`: ``server_step``,
``client_step``, ``verify``, ``raw_server_data``, ``offline_guess_cost``/``crackable``...);
:mod:`mysqlwire.auth.flow` walks it.  What its bytes mean *for people* (the packet tree, the
ladder, the text summary) is its ``describe()``, asked through :func:`describe`.
Everything above this package -- the follower, replay, diagnose, redact, serve, the views --
asks the plugin what its bytes mean.  Adding a plugin = adding one module (found by :func:`_discover`).
This package imports nothing above the protocol layer.
"""

from __future__ import annotations

import functools
import importlib

from .base import (
    AuthDataError,
    AuthPlugin,
    ClientStep,
    Meaning,
    ServerStep,
    generic_meaning,
    nonce_from_switch_data,
)
from .unsupported import NOT_REPLAYABLE, NOT_REPLAYABLE_PLUGINS, NotReplayablePlugin

#: Modules of this package that are machinery, not plugins.
_NOT_PLUGINS = frozenset({"base", "flow", "passwords", "unsupported"})


def _discover() -> tuple[dict[str, AuthPlugin], dict[str, str]]:
    """Every plugin module's ``PLUGIN`` (and ``EXTRA_PLUGINS``) and ``ALIASES``: adding a
    plugin is adding its module, nothing to register elsewhere."""
    import pkgutil

    plugins: dict[str, AuthPlugin] = {}
    aliases: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _NOT_PLUGINS or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        for p in (getattr(mod, "PLUGIN", None), *getattr(mod, "EXTRA_PLUGINS", ())):
            if isinstance(p, AuthPlugin):
                plugins[p.name] = p
        aliases.update(getattr(mod, "ALIASES", {}))
    return plugins, aliases


@functools.cache
def _registry() -> tuple[dict[str, AuthPlugin], dict[str, str]]:
    """``(PLUGINS, ALIASES)``, discovered on first use: a run that meets no login (an
    empty capture, ``--help``) imports no plugin module."""
    return _discover()


def __getattr__(name: str):
    """The registry's names, computed on first use (then plain module attributes).

    ``PLUGINS``: replayable plugins by wire name.  ``ALIASES``: server-side / account
    plugin names that map to a client plugin (``ed25519``, ``pam``).  ``KNOWN_PLUGINS``:
    every name ``get_plugin`` answers with a plugin object.  ``CLEARTEXT_PLUGINS``: plugins
    (and aliases) whose client answers are the secret itself, not a proof."""
    if name == "PLUGINS" or name == "ALIASES":
        value = _registry()[name == "ALIASES"]
    elif name == "KNOWN_PLUGINS":
        plugins, aliases = _registry()
        value = frozenset(plugins) | frozenset(aliases) | frozenset(NOT_REPLAYABLE)
    elif name == "CLEARTEXT_PLUGINS":
        known = globals().get("KNOWN_PLUGINS") or __getattr__("KNOWN_PLUGINS")
        value = frozenset(n for n in known if (p := get_plugin(n)) is not None and p.sends_secret)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def get_plugin(name: str) -> AuthPlugin | None:
    """The plugin for ``name`` (``None`` if unknown; check ``.replayable`` otherwise)."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    plugins, aliases = _registry()[:2]
    name = aliases.get(name, name)
    return plugins.get(name) or NOT_REPLAYABLE_PLUGINS.get(name)


def sends_raw_server_data(name: str | None) -> bool:
    """MariaDB sends this plugin's server data without the ``01`` wrapper."""
    p = get_plugin(name) if name else None
    return p is not None and p.raw_server_data


def client_data_is_secret(name: str | None, data: bytes) -> bool:
    """Stateless: could client auth ``data`` of plugin ``name`` be the secret itself rather
    than a challenge-response proof?  Unknown plugins: yes (the safe answer)."""
    p = get_plugin(name) if name else None
    return p is None or p.secret_bytes(bytes(data))


def server_data_is_nonce(name: str | None) -> bool:
    """The plugin's own server data (after the switch) is a nonce or salt, i.e. what an
    offline attack needs (client_ed25519's nonce, parsec's ext-salt)."""
    p = get_plugin(name) if name else None
    return p is not None and p.challenge and p.raw_server_data


def describe(
    name: str | None,
    sender: str,
    kind: str,
    data: bytes | None,
    *,
    length: int | None = None,
    stage: str | None = None,
    in_tls: bool = False,
) -> Meaning:
    """What a packet's plugin bytes mean for people, asked of plugin ``name``
    (:meth:`~mysqlwire.auth.base.AuthPlugin.describe`; the views decide nothing).

    ``text`` falls back to :func:`~mysqlwire.auth.base.generic_meaning` (and an empty client
    answer, empty server data or a PEM key is always described the generic way);
    ``brief``/``stage``/``success``/``cleartext`` are the plugin's alone."""
    n = length if length is not None else len(data or b"")
    p = get_plugin(name) if name else None
    m = p.describe(sender, kind, data, length=n, stage=stage, in_tls=in_tls) if p else None
    g = generic_meaning(name, sender, kind, data, n)
    if m is None:
        return g
    generic_first = n == 0 if sender == "client" else (not data or data.startswith(b"-----BEGIN"))
    text = g.text if generic_first or not m.text else m.text
    return Meaning(text, m.brief, m.stage, m.success, m.cleartext)


from .flow import DeferredFlow, Flow, Walked, defer_flow, follow, start_flow  # noqa: E402  (flow looks plugins up here)

__all__ = [
    "ALIASES",
    "AuthDataError",
    "AuthPlugin",
    "CLEARTEXT_PLUGINS",
    "ClientStep",
    "Meaning",
    "describe",
    "Flow",
    "ServerStep",
    "Walked",
    "client_data_is_secret",
    "follow",
    "sends_raw_server_data",
    "server_data_is_nonce",
    "start_flow",
    "DeferredFlow",
    "defer_flow",
    "KNOWN_PLUGINS",
    "NOT_REPLAYABLE",
    "NotReplayablePlugin",
    "PLUGINS",
    "get_plugin",
    "nonce_from_switch_data",
]
