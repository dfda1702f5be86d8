"""What ``redact`` removes and what it maps to: options, the report, and the
same-length placeholders for users, hosts and addresses.

Policy (SECURITY.md):

* every clear-text secret a client sends while authenticating (clear
  passwords, IAM tokens, PAM/dialog answers, the ``pw\\0`` of full
  authentication, the data of a plugin mysqlwire does not know) is replaced by
  ``*`` of the same length -- always;
* every proof (scrambles, ed25519/parsec signatures, RSA-encrypted passwords)
  and every server nonce/salt (greeting, auth switch, raw plugin data of
  ed25519/parsec) -- by default, since they can be attacked offline;
  ``keep_proofs`` keeps them (replay on the copy then still works);
* user names, host names and addresses -- mapped to consistent placeholders of
  the same length unless ``keep_users`` / ``keep_ips``.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..auth import KNOWN_PLUGINS, client_data_is_secret, server_data_is_nonce

FILL = b"*"

#: plugins whose server data (raw or 0x01-wrapped) is a nonce or salt -- the plugins say
#: so (mysqlwire.auth: a challenge plugin whose data MariaDB sends raw)
NONCE_PLUGINS = frozenset(n for n in KNOWN_PLUGINS if server_data_is_nonce(n))


@dataclass
class RedactOptions:
    #: server ports to follow; empty: the Dissector's default (every port)
    ports: tuple[int, ...] = ()
    detect: bool = False  # no-op alias kept for callers (discovery is the default)
    keep_proofs: bool = False
    keep_ips: bool = False
    keep_users: bool = False
    partial: bool = False  # write even when a connection could not be fully redacted
    max_packet: int = 16 * 1024 * 1024
    max_buffer: int = 4 * 1024 * 1024
    scrambles: bool = True  # no-op alias: proofs and nonces are removed by default


@dataclass
class RedactReport:
    format: str = ""
    frames: int = 0
    tcp_payload: int = 0  # frames carrying TCP payload
    connections: int = 0
    secrets: int = 0  # clear-text secret fields replaced
    proofs: int = 0  # proof / nonce fields replaced
    users: int = 0  # user name fields replaced
    hosts: int = 0  # host / address text fields replaced
    tls_connections: int = 0  # connection phase (partly) inside TLS: left encrypted
    not_followed: list[str] = field(default_factory=list)  # one line per connection
    frames_changed: int = 0
    frames_unmapped: int = 0  # IP frames whose addresses could not be mapped
    dropped_blocks: dict[str, int] = field(default_factory=dict)
    truncated: str | None = None
    mapping: dict[str, dict[str, str]] = field(default_factory=dict)


def is_proof(plugin: str | None, data: bytes) -> bool:
    """Client auth ``data`` under ``plugin`` is a proof (not clear text): the plugin's
    answer (:func:`mysqlwire.auth.client_data_is_secret`; unknown plugins: a secret)."""
    return not client_data_is_secret(plugin, data)


def client_fill(plugin: str | None, data: bytes, keep_proofs: bool) -> tuple[int, bool] | None:
    """How many leading bytes of client auth ``data`` to replace, and whether
    they are a proof; None: keep them."""
    if not data:
        return None
    proof = is_proof(plugin, data)
    if proof and len(data) == 1:
        return None  # 01/02: "send me the public key", not a secret
    if proof and keep_proofs:
        return None
    n = len(data) - (1 if data.endswith(b"\x00") else 0)
    return (n, proof) if n > 0 else None


# --- placeholders ---------------------------------------------------------------------


def _v4_candidates(length: int) -> Iterator[str]:
    """IPv4 placeholders whose dotted text has ``length`` characters."""
    if length == 15:
        for c, d in itertools.product(range(100, 256), range(100, 255)):
            yield f"192.168.{c}.{d}"
        return
    if length == 7:
        for b, c, d in itertools.product(range(10), range(10), range(1, 10)):
            yield f"0.{b}.{c}.{d}"
        return
    spans = {1: range(0, 10), 2: range(10, 100), 3: range(100, 256)}
    for lb, lc, ld in itertools.product((1, 2, 3), repeat=3):
        if 5 + lb + lc + ld != length:
            continue
        for b, c, d in itertools.product(spans[lb], spans[lc], spans[ld]):
            if d not in (0, 255):
                yield f"10.{b}.{c}.{d}"


class Placeholders:
    """Consistent, same-length placeholders for addresses, user and host names."""

    def __init__(self) -> None:
        self.users: dict[bytes, bytes] = {}
        self.hosts: dict[bytes, bytes] = {}
        self.ips: dict[bytes, bytes] = {}  # raw 4/16 bytes -> raw
        self._v4_gen: dict[int, Iterator[str]] = {}
        self._used: set[bytes] = set()
        self._v6 = itertools.count(1)
        self._n_users = itertools.count(1)
        self._n_hosts = itertools.count(1)

    @staticmethod
    def _numbered(prefix: bytes, n: int, length: int) -> bytes | None:
        """``prefix`` + zero-padded n in ``length`` bytes, else shorter prefixes,
        else base 36; None when n does not fit."""
        for pre in (prefix, prefix[:1]):
            digits = length - len(pre)
            if digits >= 1 and n < 10**digits:
                return pre + str(n).zfill(digits).encode()
        if length >= 1 and n < 36**length:
            out = ""
            for _ in range(length):
                n, r = divmod(n, 36)
                out = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + out
            return out.encode()
        return None

    def user(self, name: bytes) -> bytes:
        if not name:
            return name
        if name not in self.users:
            new = None
            while new is None or new in self._used:
                n = next(self._n_users)
                new = self._numbered(b"user", n, len(name))
                if new is None:  # more users of this length than placeholders
                    new = FILL * len(name)
                    break
            self.users[name] = new
            self._used.add(new)
        return self.users[name]

    def host(self, name: bytes) -> bytes:
        """A host name (or text address) as the server wrote it in a message."""
        if not name or name in (b"%", b"localhost"):
            return name
        try:
            addr = ipaddress.ip_address(name.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            addr = None
        if addr is not None:
            mapped = ipaddress.ip_address(self.ip(addr.packed))
            text = str(mapped).encode()
            return text if len(text) == len(name) else b"x" * len(name)
        if name not in self.hosts:
            new = None
            while new is None or new in self._used:
                n = next(self._n_hosts)
                new = self._numbered(b"host", n, len(name)) or FILL * len(name)
                if new == FILL * len(name):
                    break
            self.hosts[name] = new
            self._used.add(new)
        return self.hosts[name]

    def ip(self, raw: bytes) -> bytes:
        raw = bytes(raw)
        if raw not in self.ips:
            if len(raw) == 4:
                length = len(socket.inet_ntoa(raw))
                gen = self._v4_gen.setdefault(length, _v4_candidates(length))
                new = b""
                for text in gen:
                    new = socket.inet_aton(text)
                    if new not in self._used:
                        break
            else:
                new = ipaddress.IPv6Address((0xFD00 << 112) | next(self._v6)).packed
            self.ips[raw] = new
            self._used.add(new)
        return self.ips[raw]

    def as_json(self) -> dict[str, dict[str, str]]:
        def text(b: bytes) -> str:
            return b.decode("utf-8", "backslashreplace")

        return {
            "users": {text(k): text(v) for k, v in self.users.items()},
            "hosts": {text(k): text(v) for k, v in self.hosts.items()},
            "addresses": {
                str(ipaddress.ip_address(k)): str(ipaddress.ip_address(v))
                for k, v in self.ips.items()
            },
        }
