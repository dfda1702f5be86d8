"""Scapy layers: the MySQL frame header and one class per connection-phase message.

Every message class is generated from its Construct grammar in
:data:`mysqlwire.protocol.GRAMMARS`: ``fields_desc`` lists the grammar's named
parts in wire order, dissection is ``protocol.parse`` and building is
``protocol.build`` (byte-exact), so there is one description of the wire.

Layer stack of one TCP segment::

    TCP / MySQLServerFrame(length, seq) / MySQLHandshakeV10(...) / MySQLServerFrame / MySQLOK ...

A frame header alone cannot tell 0x00/0x01/0x02/0xFE apart (OK, AuthMoreData or
a result-set row...): without :class:`~mysqlwire.scapy.session.MySQLSession`
the message class is a stateless guess (:func:`guess_kind`).  The session runs
mysqlwire's state machine and decides each frame's class exactly.
"""

from __future__ import annotations

import contextvars
import warnings
from collections import deque

from scapy.config import conf
from scapy.fields import ByteField, LEThreeBytesField
from scapy.layers.inet import TCP
from scapy.packet import Packet, bind_top_down

from ..errors import ProtocolError
from ..protocol import CLIENT_PROTOCOL_41, CLIENT_SSL, build, parse
from ..protocol.packets import GRAMMARS
from .fields import GrammarField, grammar_fields, secrets_shown, show_bytes

MYSQL_PORT = 3306

#: classes the session decided for the next frames (consumed in order)
FRAME_PLAN: contextvars.ContextVar[deque | None] = contextvars.ContextVar(
    "mysqlwire_plan", default=None
)


class _ShowMixin:
    def show(self, dump=False, indent=3, lvl="", label_lvl="", secrets=False):
        """Scapy's ``show()``; ``secrets=True`` prints proofs/passwords in clear."""
        with secrets_shown(True) if secrets else _nullcontext():
            return Packet.show(self, dump=dump, indent=indent, lvl=lvl, label_lvl=label_lvl)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


class MySQL(_ShowMixin, Packet):
    """One MySQL frame header: 3-byte payload length and sequence id.

    Its payload is the message (a ``MySQL...`` class below); further frames in
    the same segment chain after the message.  ``length=None`` is filled in
    when building.
    """

    name = "MySQL frame"
    fields_desc = [LEThreeBytesField("length", None), ByteField("seq", 0)]
    match_subclass = True  # p[MySQL] finds the server/client frame classes
    #: True for server->client frames, False for client->server, None unknown
    from_server: bool | None = None

    def copy(self):
        clone = Packet.copy(self)
        clone.wire_caps = getattr(self, "wire_caps", None)
        return clone

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            body = self.payload
            n = len(body.self_build()) if isinstance(body, MySQLMessage) else len(pay)
            pkt = n.to_bytes(3, "little") + pkt[3:]
        return pkt + pay

    def extract_padding(self, s):
        # the message takes its `length` bytes; the rest chains after it
        return s, None

    def guess_payload_class(self, payload):
        plan = FRAME_PLAN.get()
        if plan is not None:
            if plan:
                cls, caps = plan.popleft()
                self.wire_caps = caps
                return cls
            return MySQLData
        self.wire_caps = None
        length = self.length or 0
        if len(payload) < length:
            return conf.raw_layer  # truncated frame
        return class_for(guess_kind(payload[:length], self.seq, self.from_server), payload[:length])

    def do_dissect_payload(self, s):
        if s or self.length != 0:
            return Packet.do_dissect_payload(self, s)
        # an empty frame (an empty auth answer...) is a message all the same
        cls = self.guess_payload_class(b"")
        if isinstance(cls, type) and issubclass(cls, MySQLMessage):
            msg = cls(_internal=1, _underlayer=self)
            msg.dissect(b"")
            self.add_payload(msg)
        return None

    @property
    def kind(self) -> str | None:
        """The kind of the message in this frame (``None`` if not decoded)."""
        return getattr(self.payload, "kind", None)

    def mysummary(self) -> str:
        return self.sprintf("MySQL seq=%seq% len=%length%")

    @classmethod
    def tcp_reassemble(cls, data, metadata, session=None):
        """``TCPSession`` hook: a packet once every frame in ``data`` is complete."""
        pos = 0
        n = len(data)
        while pos + 4 <= n:
            pos += 4 + (data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16)
        if pos != n:
            return None
        return cls(data)


class MySQLServerFrame(MySQL):
    """A frame sent by the server (bound to the TCP source port)."""

    name = "MySQL frame (server)"
    from_server = True


class MySQLClientFrame(MySQL):
    """A frame sent by the client (bound to the TCP destination port)."""

    name = "MySQL frame (client)"
    from_server = False


class MySQLMessage(_ShowMixin, Packet):
    """Base of the message layers: parsed and built by one Construct grammar.

    ``kind`` is the packet kind of :mod:`mysqlwire.protocol`; the client's
    capability flags needed by some layouts (OK, ERR, EOF, COM_CHANGE_USER) come
    from the session (``wire_caps`` of the frame header), else the grammar's
    defaults apply.
    """

    name = "MySQL message"
    match_subclass = True
    kind: str | None = None
    grammar_kind: str | None = None
    fields_desc: list = []

    def copy(self):
        clone = Packet.copy(self)
        clone.wire_caps = getattr(self, "wire_caps", None)
        return clone

    def _body_length(self, s: bytes) -> int:
        under = self.underlayer
        if isinstance(under, MySQL) and under.length is not None:
            return under.length
        return len(s)

    def do_dissect(self, s):
        n = self._body_length(s)
        body, rest = bytes(s[:n]), s[n:]
        under = self.underlayer
        caps = getattr(under, "wire_caps", None) if isinstance(under, MySQL) else None
        self.wire_caps = caps
        values = self.parse_body(body, caps)
        self.raw_packet_cache_fields = {}
        for f in self.fields_desc:
            val = f.any2i(self, values.get(f.name))
            self.fields[f.name] = val
            if isinstance(val, list):
                self.raw_packet_cache_fields[f.name] = list(val)
        self.raw_packet_cache = body
        self.explicit = 1
        return rest

    def parse_body(self, body: bytes, caps) -> dict:
        return parse(self.grammar_kind, body, caps=caps)

    def self_build(self):
        if self.raw_packet_cache is not None:
            for name, val in (self.raw_packet_cache_fields or {}).items():
                if self.getfieldval(name) != val:
                    self.raw_packet_cache = None
                    break
            else:
                return self.raw_packet_cache
        values = {
            f.name: self.getfieldval(f.name)
            for f in self.fields_desc
            if not (isinstance(f, GrammarField) and f.computed)
        }
        return build(self.grammar_kind, values, caps=getattr(self, "wire_caps", None))

    def guess_payload_class(self, payload):
        under = self.underlayer
        if isinstance(under, MySQL) and len(payload) >= 4:
            return type(under)  # the next frame of the same direction
        return conf.raw_layer

    def mysummary(self) -> str:
        parts = [self.name.replace("MySQL ", "")]
        for name in self.summary_fields:
            val = self.fields.get(name)
            if val is not None and val != b"":
                parts.append(f"{name}={_short(val)}")
        return "MySQL " + " ".join(parts)

    summary_fields: tuple[str, ...] = ()


def _short(val) -> str:
    if isinstance(val, bytes):
        return show_bytes(val) if len(val) <= 48 else show_bytes(val[:48])
    return str(val)


class MySQLData(MySQLMessage):
    """A frame whose meaning is not decided here (command phase, plugin data)."""

    name = "MySQL data"
    kind = None
    fields_desc = [GrammarField("data", b"", "string<EOF>")]

    def parse_body(self, body: bytes, caps) -> dict:
        return {"data": body}

    def self_build(self):
        return bytes(self.getfieldval("data") or b"")

    def mysummary(self) -> str:
        return f"MySQL data ({len(self.fields.get('data') or b'')} bytes)"


#: grammar kind -> (class name, display name, secret fields, summary fields)
_MESSAGES = {
    "handshake_v10": (
        "MySQLHandshakeV10",
        "MySQL HandshakeV10 (greeting)",
        (),
        ("server_version", "connection_id", "auth_plugin_name"),
    ),
    "handshake_v9": (
        "MySQLHandshakeV9",
        "MySQL HandshakeV9 (greeting)",
        (),
        ("server_version", "connection_id"),
    ),
    "handshake_response41": (
        "MySQLHandshakeResponse41",
        "MySQL HandshakeResponse41",
        ("auth_response",),
        ("username", "database", "client_plugin"),
    ),
    "handshake_response320": (
        "MySQLHandshakeResponse320",
        "MySQL HandshakeResponse320",
        ("auth_response",),
        ("username", "database"),
    ),
    "ssl_request": ("MySQLSSLRequest", "MySQL SSLRequest", (), ()),
    "auth_switch_request": (
        "MySQLAuthSwitchRequest",
        "MySQL AuthSwitchRequest",
        (),
        ("plugin_name",),
    ),
    "old_auth_switch_request": (
        "MySQLOldAuthSwitchRequest",
        "MySQL OldAuthSwitchRequest (bare 0xFE)",
        (),
        (),
    ),
    "auth_switch_response": (
        "MySQLAuthSwitchResponse",
        "MySQL AuthSwitchResponse (client auth data)",
        ("data",),
        (),
    ),
    "auth_more_data": ("MySQLAuthMoreData", "MySQL AuthMoreData", (), ()),
    "auth_next_factor": (
        "MySQLAuthNextFactor",
        "MySQL AuthNextFactor",
        (),
        ("plugin_name",),
    ),
    "ok": ("MySQLOK", "MySQL OK", (), ()),
    "err": ("MySQLErr", "MySQL ERR", (), ("error_code", "sql_state", "error_message")),
    "eof": ("MySQLEOF", "MySQL EOF", (), ()),
    "com_change_user": (
        "MySQLComChangeUser",
        "MySQL COM_CHANGE_USER",
        ("auth_response",),
        ("user", "database", "auth_plugin_name"),
    ),
}


def _message_class(kind: str, clsname: str, title: str, secret, summary, grammar_kind=None):
    grammar_kind = grammar_kind or kind
    body = {
        "__module__": __name__,
        "__doc__": f"{title}: fields generated from ``GRAMMARS[{grammar_kind!r}]``.",
        "name": title,
        "kind": kind,
        "grammar_kind": grammar_kind,
        "fields_desc": grammar_fields(GRAMMARS[grammar_kind], frozenset(secret)),
        "summary_fields": tuple(summary),
    }
    return type(MySQLMessage)(clsname, (MySQLMessage,), body)


_CLASSES = {kind: _message_class(kind, *spec) for kind, spec in _MESSAGES.items()}

MySQLHandshakeV10 = _CLASSES["handshake_v10"]
MySQLHandshakeV9 = _CLASSES["handshake_v9"]
MySQLHandshakeResponse41 = _CLASSES["handshake_response41"]
MySQLHandshakeResponse320 = _CLASSES["handshake_response320"]
MySQLSSLRequest = _CLASSES["ssl_request"]
MySQLAuthSwitchRequest = _CLASSES["auth_switch_request"]
MySQLOldAuthSwitchRequest = _CLASSES["old_auth_switch_request"]
MySQLAuthSwitchResponse = _CLASSES["auth_switch_response"]
MySQLAuthMoreData = _CLASSES["auth_more_data"]
MySQLAuthNextFactor = _CLASSES["auth_next_factor"]
MySQLOK = _CLASSES["ok"]
MySQLErr = _CLASSES["err"]
MySQLEOF = _CLASSES["eof"]
MySQLComChangeUser = _CLASSES["com_change_user"]
#: MariaDB plugin data sent raw by the server (dialog prompt, parsec salt...)
MySQLServerPluginData = _message_class(
    "server_plugin_data",
    "MySQLServerPluginData",
    "MySQL server plugin data (raw)",
    (),
    (),
    grammar_kind="auth_switch_response",
)

#: every message class, by the kind it decodes
MESSAGE_CLASSES: dict[str, type] = {**_CLASSES, "server_plugin_data": MySQLServerPluginData}


def class_for(kind: str | None, payload: bytes | None = None, caps=None) -> type:
    """The message class for ``kind``; :class:`MySQLData` when ``kind`` is
    unknown or ``payload`` does not parse as that kind."""
    cls = MESSAGE_CLASSES.get(kind) if kind else None
    if cls is None:
        return MySQLData
    if payload is not None:
        try:
            parse(cls.grammar_kind, payload, caps=caps)
        except ProtocolError:
            return MySQLData
    return cls


def guess_kind(payload: bytes, seq: int, from_server: bool | None) -> str | None:
    """Stateless best guess of a frame's kind from its sequence id, direction
    and first byte.  Wrong where only the connection state can tell (0x01 is
    AuthMoreData or a one-column result set, 0xFE a switch or an EOF...):
    :class:`~mysqlwire.scapy.session.MySQLSession` decides exactly."""
    if not payload:
        return None
    first = payload[0]
    if from_server is None:
        from_server = seq == 0 and first in (0x09, 0x0A)
    if from_server:
        if seq == 0:
            return {0x0A: "handshake_v10", 0x09: "handshake_v9", 0xFF: "err"}.get(first)
        if first == 0x00:
            return "ok"
        if first == 0xFF:
            return "err"
        if first == 0xFE:
            if len(payload) == 1:
                return "old_auth_switch_request"
            if len(payload) < 9 and seq > 4:
                return "eof"
            return "auth_switch_request"
        if first == 0x01:
            return "auth_more_data"
        return None
    if seq == 1 and len(payload) >= 2:
        flags = int.from_bytes(payload[:4], "little")
        if not flags & CLIENT_PROTOCOL_41:
            return "handshake_response320"
        if len(payload) == 32 and flags & CLIENT_SSL:
            return "ssl_request"
        return "handshake_response41"
    if seq == 2 and len(payload) >= 32 and payload[1] & 0x02:  # response after SSLRequest
        return "handshake_response41"
    if seq == 0 and first == 0x11:
        return "com_change_user"
    return "auth_switch_response" if seq > 1 else None


# --- binding ------------------------------------------------------------------


class LayerConflictWarning(UserWarning):
    """Another Scapy layer (Scapy's contrib ``mysql``) is bound to the same port."""


_CONTRIB_MODULE = "scapy.contrib.mysql"


def _ours(cls) -> bool:
    return isinstance(cls, type) and issubclass(cls, MySQL)


def contrib_ports() -> set[int]:
    """TCP ports Scapy's contrib MySQL layer (``load_contrib("mysql")``) decodes."""
    out = set()
    for fval, cls in TCP.payload_guess:
        if getattr(cls, "__module__", "") == _CONTRIB_MODULE:
            out.update(v for k, v in fval.items() if k in ("sport", "dport"))
    return out


def bound_ports() -> set[int]:
    """TCP ports bound to mysqlwire's layer by :func:`bind_port`."""
    return {v for fval, cls in TCP.payload_guess if _ours(cls) for v in fval.values()}


def bind_port(port: int = MYSQL_PORT) -> None:
    """Decode TCP ``port`` with mysqlwire's layer (explicit; importing binds nothing).

    Our binding goes first in Scapy's list, so it wins over a binding Scapy's
    contrib layer holds or takes later (``load_contrib("mysql")``): a
    :class:`LayerConflictWarning` says so when the contrib layer already holds
    the port.  :func:`unbind_port` gives the port back.
    """
    port = int(port)
    if port in contrib_ports():
        warnings.warn(
            f"Scapy's contrib MySQL layer is bound to TCP port {port}; "
            f"mysqlwire's layer decodes it from now on (unbind_port({port}) gives it back)",
            LayerConflictWarning,
            stacklevel=2,
        )
    unbind_port(port)
    TCP.payload_guess = [
        ({"sport": port}, MySQLServerFrame),
        ({"dport": port}, MySQLClientFrame),
    ] + TCP.payload_guess
    bind_top_down(TCP, MySQLServerFrame, sport=port)
    bind_top_down(TCP, MySQLClientFrame, dport=port)


def unbind_port(port: int = MYSQL_PORT) -> None:
    """Stop decoding TCP ``port`` with mysqlwire's layer."""
    port = int(port)
    TCP.payload_guess = [
        (fval, cls) for fval, cls in TCP.payload_guess if not (_ours(cls) and port in fval.values())
    ]


__all__ = [
    "MESSAGE_CLASSES",
    "MYSQL_PORT",
    "LayerConflictWarning",
    "MySQL",
    "MySQLAuthMoreData",
    "MySQLAuthNextFactor",
    "MySQLAuthSwitchRequest",
    "MySQLAuthSwitchResponse",
    "MySQLClientFrame",
    "MySQLComChangeUser",
    "MySQLData",
    "MySQLEOF",
    "MySQLErr",
    "MySQLHandshakeResponse320",
    "MySQLHandshakeResponse41",
    "MySQLHandshakeV10",
    "MySQLHandshakeV9",
    "MySQLMessage",
    "MySQLOK",
    "MySQLOldAuthSwitchRequest",
    "MySQLSSLRequest",
    "MySQLServerFrame",
    "MySQLServerPluginData",
    "bind_port",
    "bound_ports",
    "class_for",
    "contrib_ports",
    "guess_kind",
    "unbind_port",
]
