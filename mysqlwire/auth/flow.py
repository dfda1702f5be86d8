"""Following a plugin's exchange: the one place a plugin's stages are walked.

A :class:`Flow` is one run of one plugin inside an authentication exchange (the login or a
COM_CHANGE_USER): it starts with the data the server sent when it started the plugin (the
greeting nonce or an AuthSwitchRequest's plugin data) and moves through the plugin's stages
as server and client packets arrive.  What each packet *means* is decided by the plugin
module (:meth:`~mysqlwire.auth.base.AuthPlugin.server_step` /
:meth:`~mysqlwire.auth.base.AuthPlugin.client_step`); the flow only carries the state.

:func:`follow` walks an exchange's recorded steps (anything with ``sender``, ``kind``,
``plugin``, ``data`` and ``in_tls`` attributes) and yields each step with the flow it belongs
to and its meaning.  Replay judges proofs with it, diagnose describes packets with it; the
sans-I/O follower (:mod:`mysqlwire.handshake`) and ``serve`` drive flows packet by packet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from .base import AuthPlugin, ClientStep, ServerStep, client_label

#: Client packets that carry auth data.
CLIENT_KINDS = ("handshake_response", "com_change_user", "auth_data")
#: Server packets that start a new plugin run.
SWITCH_KINDS = ("auth_switch_request", "old_auth_switch_request", "auth_next_factor")
#: Server packets with plugin data inside a run.
DATA_KINDS = ("auth_more_data", "server_plugin_data")


_REGISTRY: list = []  # [get_plugin], filled on first use


def _lookup(name: str | None) -> AuthPlugin | None:
    if not _REGISTRY:
        from . import get_plugin  # the registry imports this module

        _REGISTRY.append(get_plugin)  # (an import per call costs more than the lookup)
    return _REGISTRY[0](name) if name else None


class Flow:
    """One run of one plugin: ``name``, the server's starting ``server_data``, the greeting
    ``nonce``, the current ``stage`` and plugin-private ``state``."""

    __slots__ = ("name", "plugin", "server_data", "nonce", "stage", "state", "client_packets")

    def __init__(self, name: str | None, server_data: bytes = b"", *, nonce: bytes | None = None):
        self.name = name
        self.plugin = _lookup(name)
        self.server_data = bytes(server_data or b"")
        self.nonce = nonce
        self.stage = self.plugin.first_stage if self.plugin is not None else None
        self.state: dict[str, Any] = {}
        self.client_packets = 0
        if self.plugin is not None:
            self.plugin.start(self)

    def server(self, kind: str, data: bytes) -> ServerStep:
        """Meaning of server plugin data (``auth_more_data`` / ``server_plugin_data``)."""
        data = bytes(data)
        if self.plugin is None:
            return AuthPlugin.server_step(AuthPlugin(), self, kind, data)
        return self.plugin.server_step(self, kind, data)

    def client(self, kind: str, data: bytes, in_tls: bool = False) -> ClientStep:
        """Meaning of a client answer; unknown and not replayable plugins are unverifiable."""
        data = bytes(data)
        self.client_packets += 1
        label = client_label(self.name or "?", data)
        if self.plugin is None:
            return ClientStep(
                "unknown",
                label,
                result="unverifiable",
                reason=f"plugin-unsupported:{self.name or '(none)'}",
            )
        step = self.plugin.client_step(self, kind, data, in_tls)
        if not self.plugin.replayable and step.judged:
            return ClientStep(
                step.meaning,
                step.label,
                cleartext=step.cleartext,
                result="unverifiable",
                reason=f"proof-not-replayable:{self.name}",
            )
        return step

    def awaits_server_data(self) -> bool:
        """The next server packet is this plugin's raw data whatever its first byte."""
        return self.plugin is not None and self.plugin.awaits_server_data(self)

    def __repr__(self) -> str:
        return f"<Flow {self.name!r} stage={self.stage!r}>"


def start_flow(kind: str, plugin: str | None, data: bytes, nonce: bytes | None) -> Flow:
    """The flow a switch packet starts (``old_auth_switch_request``: scramble323 over the
    first 8 greeting-nonce bytes)."""
    if kind == "old_auth_switch_request":
        return Flow("mysql_old_password", (nonce or b"")[:8], nonce=nonce)
    return Flow(plugin, data, nonce=nonce)


_MAY_AWAIT: dict = {}  # plugin name -> its plugin may wait for raw server data


class DeferredFlow:
    """A :class:`Flow` whose stages are walked only when someone asks where it is.

    The connection-phase follower only asks :meth:`awaits_server_data` (a MariaDB server's
    packet that could be raw plugin data): it records the packets, and the flow is built and
    walked through them on the first question -- at once ``False`` for a plugin that can
    never wait for raw data.  Most logins never ask."""

    __slots__ = ("name", "server_data", "nonce", "calls", "flow")

    def __init__(self, name: str | None, server_data: bytes = b"", *, nonce: bytes | None = None):
        self.name = name
        self.server_data = server_data
        self.nonce = nonce
        self.calls: list[tuple] | None = []  # (kind, data, in_tls) client / (kind, data) server
        self.flow: Flow | None = None

    def client(self, kind: str, data: bytes, in_tls: bool = False) -> None:
        if self.flow is None:
            self.calls.append((kind, data, in_tls))
        else:
            self.flow.client(kind, data, in_tls)

    def server(self, kind: str, data: bytes) -> None:
        if self.flow is None:
            self.calls.append((kind, data))
        else:
            self.flow.server(kind, data)

    def awaits_server_data(self) -> bool:
        flow = self.flow
        if flow is None:
            may = _MAY_AWAIT.get(self.name)
            if may is None:
                plugin = _lookup(self.name)
                may = plugin is not None and plugin.may_await_server_data
                if len(_MAY_AWAIT) < 256:  # (names come from the wire: bounded)
                    _MAY_AWAIT[self.name] = may
            if not may:
                return False
            flow = self.flow = Flow(self.name, self.server_data, nonce=self.nonce)
            for call in self.calls:
                if len(call) == 3:
                    flow.client(*call)
                else:
                    flow.server(*call)
            self.calls = None
        return flow.awaits_server_data()

    def __repr__(self) -> str:
        return f"<DeferredFlow {self.name!r}>"


def defer_flow(kind: str, plugin: str | None, data: bytes, nonce: bytes | None) -> DeferredFlow:
    """:func:`start_flow`, deferred (see :class:`DeferredFlow`)."""
    if kind == "old_auth_switch_request":
        return DeferredFlow("mysql_old_password", (nonce or b"")[:8], nonce=nonce)
    return DeferredFlow(plugin, data, nonce=nonce)


class Walked(NamedTuple):
    """One step of a walked exchange: the ``flow`` it belongs to, the plugin's ``meaning``
    of it (``None`` for OK/ERR and switches) and the flow's ``stage`` when it arrived."""

    step: Any
    flow: Flow
    meaning: ServerStep | ClientStep | None
    stage: str | None


def follow(steps: Iterable[Any], plugin: str | None, nonce: bytes | None) -> Iterator[Walked]:
    """Walk one exchange: one :class:`Walked` per step.

    ``plugin`` is the plugin of the first answer (named by the client or inferred), ``nonce``
    the greeting nonce.  A switch starts a new flow (the switch step already belongs to it).
    """
    flow = Flow(plugin, nonce or b"", nonce=nonce)
    for step in steps:
        stage = flow.stage
        if step.sender == "server":
            if step.kind in SWITCH_KINDS:
                flow = start_flow(step.kind, step.plugin, step.data, nonce)
                yield Walked(step, flow, None, stage)
            elif step.kind in DATA_KINDS:
                yield Walked(step, flow, flow.server(step.kind, step.data), stage)
            else:
                yield Walked(step, flow, None, stage)
        elif step.kind == "auth_data" and getattr(step, "seq", None) == 0:
            # a restarted sequence is a new command (e.g. COM_QUIT), not an answer
            yield Walked(step, flow, None, stage)
        elif step.kind in CLIENT_KINDS:
            yield Walked(step, flow, flow.client(step.kind, step.data, step.in_tls), stage)
        else:
            yield Walked(step, flow, None, stage)
