# scapy.contrib.description = MySQL/MariaDB connection phase (mysqlwire, stateful and plugin-aware)
# scapy.contrib.status = loads
"""Scapy layers for the MySQL/MariaDB connection phase, generated from mysqlwire's grammars.

Importing this package binds nothing and changes no Scapy state::

    from scapy.all import rdpcap, sniff
    from mysqlwire.scapy import MySQLSession, MySQLErr, MySQLHandshakeResponse41

    pkts = sniff(offline="x.pcap", session=MySQLSession)   # exact classes, any port
    logins = pkts.filter(lambda p: MySQLHandshakeResponse41 in p)
    logins[0][MySQLHandshakeResponse41].username            # b'app'
    logins[0].show()                                        # proofs redacted
    [p[MySQLErr].error_code for p in pkts if MySQLErr in p]

    from mysqlwire.scapy import bind_port
    bind_port(3306)          # rdpcap() decodes 3306 too (stateless guess per frame)

One ``Packet`` class per message (:mod:`.layers`), one field per grammar part
(:mod:`.fields`), the stateful session and :func:`dissect_packets`
(:mod:`.session`).  Secrets (client proofs, clear-text passwords) show as
``<redacted: N bytes>`` unless ``config.show_secrets`` is set, inside
``with secrets_shown():``, or with ``pkt[Layer].show(secrets=True)``.
docs/scapy.md compares this layer with Scapy's contrib ``mysql`` layer.
"""

from __future__ import annotations

from .fields import GrammarField, Secret, config, grammar_field_names, secrets_shown
from .layers import (
    MESSAGE_CLASSES,
    MYSQL_PORT,
    LayerConflictWarning,
    MySQL,
    MySQLAuthMoreData,
    MySQLAuthNextFactor,
    MySQLAuthSwitchRequest,
    MySQLAuthSwitchResponse,
    MySQLClientFrame,
    MySQLComChangeUser,
    MySQLData,
    MySQLEOF,
    MySQLErr,
    MySQLHandshakeResponse41,
    MySQLHandshakeResponse320,
    MySQLHandshakeV9,
    MySQLHandshakeV10,
    MySQLMessage,
    MySQLOK,
    MySQLOldAuthSwitchRequest,
    MySQLServerFrame,
    MySQLServerPluginData,
    MySQLSSLRequest,
    bind_port,
    bound_ports,
    class_for,
    contrib_ports,
    guess_kind,
    unbind_port,
)
from .session import MySQLSession, dissect_packets, segment_of

__all__ = [
    "MESSAGE_CLASSES",
    "MYSQL_PORT",
    "GrammarField",
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
    "MySQLSession",
    "Secret",
    "bind_port",
    "bound_ports",
    "class_for",
    "config",
    "contrib_ports",
    "dissect_packets",
    "grammar_field_names",
    "guess_kind",
    "secrets_shown",
    "segment_of",
    "unbind_port",
]
