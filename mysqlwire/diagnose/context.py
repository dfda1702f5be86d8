"""Facts a rule reads: one authentication exchange of one connection, with
the client fingerprint, the replay verdict and a few capture-wide facts.

Everything here describes wire data for humans without revealing secrets:
client auth bytes are described by length and shape only ("20 bytes",
"a single 0x02 (public-key request)", "13 bytes of clear text"), never
quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..auth import ClientStep, ServerStep, Walked, follow
from ..auth.base import client_label, data_label
from ..model import AuthStep, Connection, Exchange
from .fingerprint import SSL, Fingerprint

_ACCOUNT_RE = re.compile(r"for user '((?:[^'\\]|\\.)*)'@'((?:[^'\\]|\\.)*)'")
_HOST_RE = re.compile(r"Host '((?:[^'\\]|\\.)*)'")

SERVER_KINDS = (
    "auth_switch_request",
    "old_auth_switch_request",
    "auth_more_data",
    "server_plugin_data",
    "auth_next_factor",
)
SWITCH_KINDS = ("auth_switch_request", "old_auth_switch_request", "auth_next_factor")
CLIENT_KINDS = ("handshake_response", "com_change_user", "auth_data")


def server_label(version: str | None, message: str | None = None) -> str:
    """'5.5.5-10.11.19-MariaDB-0+deb12u1' -> 'MariaDB 10.11.19'; '8.0.36' -> 'MySQL 8.0.36'."""
    if not version:
        if message and "MariaDB" in message:
            return "the MariaDB server"
        return "the server"
    v = version
    if "mariadb" in v.lower():
        if v.startswith("5.5.5-"):
            v = v[6:]
        return f"MariaDB {v.split('-')[0]}"
    return f"MySQL {v.split('-')[0]}"


class Repeats:
    """Connections left out of a security summary: how many, and the first few
    labels (memory stays constant however long a capture or a live watch runs)."""

    __slots__ = ("n", "first", "last")
    SHOWN = 8

    def __init__(self) -> None:
        self.n = 0
        self.first: list[str] = []
        self.last: str | None = None

    def add(self, label: str) -> None:
        if label == self.last or label in self.first:
            return
        self.n += 1
        self.last = label
        if len(self.first) < self.SHOWN:
            self.first.append(label)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index):
        return self.first[index]

    def __iter__(self):
        return iter(self.first)


@dataclass
class CaptureFacts:
    """What other connections of the same capture showed."""

    tls_ok_users: set[str] = field(default_factory=set)  # logged in over TLS
    plain_ok_users: set[str] = field(default_factory=set)
    # security findings summarised once per (code, user, server, capture):
    # the connection and finding that carry it, and the connections left out
    security_first: dict = field(default_factory=dict)
    security_repeats: dict = field(default_factory=dict)
    # when the facts are still growing (one pass over a capture): every
    # (user, answer) tls_only() gave, to check at the end that each answer
    # still holds (one entry per user and answer, not per connection)
    asked: set | None = None

    def add(self, conn: Connection) -> None:
        for ex in conn.exchanges:
            if ex.outcome == "ok" and ex.user is not None:
                (self.tls_ok_users if (conn.tls or ex.tls) else self.plain_ok_users).add(ex.user)

    def tls_only(self, user: str | None) -> bool:
        """``user`` logged in over TLS in this capture, and never without it.
        The only question rules ask of the other connections."""
        answer = user in self.tls_ok_users and user not in self.plain_ok_users
        if self.asked is not None:
            self.asked.add((user, answer))
        return answer

    def answers_hold(self) -> bool:
        """Every answer tls_only() gave (see ``asked``) is still the answer."""
        return all(
            (u in self.tls_ok_users and u not in self.plain_ok_users) == a
            for u, a in self.asked or ()
        )


@dataclass
class Facts:
    conn: Connection
    ex: Exchange | None
    index: int  # 0 = login, n = n-th COM_CHANGE_USER
    fp: Fingerprint
    verdict: dict | None = None
    password_given: bool = False
    token_like: bool = False  # the given password looks like an IAM/RDS token
    capture: CaptureFacts = field(default_factory=CaptureFacts)

    # ------------------------------------------------------------ basics
    @property
    def is_login(self) -> bool:
        return self.index == 0

    @property
    def exchange_label(self) -> str:
        return "login" if self.is_login else f"COM_CHANGE_USER #{self.index}"

    @property
    def steps(self) -> list[AuthStep]:
        return self.ex.steps if self.ex is not None else []

    @property
    def client_steps(self) -> list[AuthStep]:
        return [s for s in self.steps if s.sender == "client" and s.kind in CLIENT_KINDS]

    @property
    def switch_steps(self) -> list[AuthStep]:
        return [s for s in self.steps if s.kind in SWITCH_KINDS]

    @property
    def last(self) -> AuthStep | None:
        return self.steps[-1] if self.steps else None

    @property
    def err(self) -> dict | None:
        if self.ex is not None:
            return self.ex.error
        if self.is_login:
            return self.conn.extra.get("pre_greeting_error")
        return None

    @property
    def code(self) -> int | None:
        e = self.err
        return int(e["code"]) if e and e.get("code") is not None else None

    @property
    def message(self) -> str:
        e = self.err or {}
        return e.get("message") or ""

    @property
    def outcome(self) -> str:
        if self.ex is not None:
            return self.ex.outcome
        return self.conn.outcome if self.is_login else "incomplete"

    @property
    def user(self) -> str | None:
        return self.ex.user if self.ex is not None else None

    @property
    def verdict_code(self) -> str | None:
        return (self.verdict or {}).get("verdict")

    @property
    def tls(self) -> bool:
        """Was this exchange protected by TLS on the wire (decrypted or not)?"""
        if self.ex is not None and self.ex.tls:
            return True
        return bool(self.conn.tls)

    @property
    def closed(self) -> bool:
        return self.conn.closed_by in ("fin", "rst")

    @property
    def close_word(self) -> str:
        return {"fin": "closed the connection (FIN)", "rst": "reset the connection (RST)"}.get(
            self.conn.closed_by or "", f"ended ({self.conn.closed_by or 'unknown'})"
        )

    @property
    def abandoned_at(self) -> AuthStep | None:
        """The server auth packet the client left unanswered: it closed the
        connection, or the server's next word is a read error (1158/1159:
        the client hung up while the server waited)."""
        if self.ex is None or not (self.is_login or self.ex is self.conn.exchanges[-1]):
            return None
        steps = self.steps
        if not steps:
            return None
        last = steps[-1]
        if (
            self.ex.outcome == "incomplete"
            and self.closed
            and last.sender == "server"
            and last.kind in SERVER_KINDS
        ):
            return last
        if (
            self.ex.outcome == "error"
            and self.code in (1158, 1159)
            and len(steps) >= 2
            and last.kind == "err"
            and steps[-2].sender == "server"
            and steps[-2].kind in SERVER_KINDS
        ):
            return steps[-2]
        return None

    @property
    def gave_up(self) -> bool:
        """The client left while the server waited for its answer."""
        return self.abandoned_at is not None

    @property
    def unanswered_switch(self) -> AuthStep | None:
        """The AuthSwitchRequest/AuthNextFactor the client never answered:
        it left right after it, or sent a new command (sequence restarted,
        e.g. COM_QUIT) instead of the answer, which the server refuses with
        1156 'Got packets out of order'."""
        steps = self.steps
        for i, s in enumerate(steps):
            if s.kind not in ("auth_switch_request", "auth_next_factor"):
                continue
            rest = steps[i + 1 :]
            if self.abandoned_at is s:
                return s
            if not rest:
                return None
            nxt = rest[0]
            if (
                nxt.sender == "client"
                and s.seq is not None
                and nxt.seq is not None
                and nxt.seq != (s.seq + 1) % 256
            ):
                return s
            if nxt.kind == "err" and self.code == 1156:
                return s
        return None

    @property
    def proves_empty_password(self) -> bool:
        """Do the client's proofs match the EMPTY password?  Decidable from the
        wire alone (e.g. libmariadb/PyMySQL sign the empty password with
        client_ed25519: 64 bytes, 'using password: YES')."""
        if "_empty" not in self.__dict__:
            result = False
            if self.ex is not None and any(s.data for s in self.client_steps):
                try:
                    from ..auth.passwords import Secrets
                    from ..replay import PROOF_MATCHES, replay_exchange

                    v = replay_exchange(self.ex, self.conn, Secrets(password=b""))
                    result = v.verdict == PROOF_MATCHES
                except Exception:  # never fail a diagnosis on a replay problem
                    result = False
            self.__dict__["_empty"] = result
        return self.__dict__["_empty"]

    @property
    def dropped(self) -> bool:
        """The server went away while the client waited for its verdict."""
        last = self.last
        return bool(
            self.ex is not None
            and self.ex.outcome == "incomplete"
            and self.closed
            and last is not None
            and last.sender == "client"
            and not (self.conn.tls and not self.conn.tls_info.get("decrypted"))
        )

    @property
    def failed(self) -> bool:
        return self.outcome == "error" or self.gave_up or self.dropped

    # ------------------------------------------------------------ labels
    @property
    def client(self) -> str:
        return self.fp.label

    @property
    def server(self) -> str:
        return server_label(self.conn.server_version, self.message)

    @property
    def account(self) -> str:
        m = _ACCOUNT_RE.search(self.message)
        if m:
            return f"'{m.group(1)}'@'{m.group(2)}'"
        if self.user is not None:
            return f"'{self.user}'"
        return "the account"

    @property
    def host(self) -> str:
        m = _HOST_RE.search(self.message) or _ACCOUNT_RE.search(self.message)
        if m:
            return m.group(2) if m.re is _ACCOUNT_RE else m.group(1)
        return self.conn.client.rsplit(":", 1)[0]

    @property
    def final_plugin(self) -> str | None:
        if self.ex is not None:
            return self.ex.final_plugin
        return None

    # ------------------------------------------------------- descriptions
    def pkt(self, step: AuthStep) -> str:
        """'server packet seq 2: AuthSwitchRequest plugin 'client_ed25519' (32 bytes of plugin data)'."""
        seq = f" seq {step.seq}" if step.seq is not None else ""
        where = " (inside TLS)" if step.in_tls else ""
        return f"{step.sender} packet{seq}{where}: {self.describe(step)}"

    def walked(self, step: AuthStep) -> Walked | None:
        """The plugin's reading of ``step`` (flow, meaning, stage): :func:`mysqlwire.auth.follow`."""
        if "_walk" not in self.__dict__:
            walk: dict[int, Walked] = {}
            if self.ex is not None:
                first = getattr(self.ex, "auth_plugin", None) or self.ex.client_plugin
                for w in follow(self.ex.steps, first, self.ex.nonce):
                    walk[id(w.step)] = w
            self.__dict__["_walk"] = walk
        return self.__dict__["_walk"].get(id(step))

    def meaning(self, step: AuthStep) -> ServerStep | ClientStep | None:
        """What the step's plugin says the packet is (``meaning`` code and ``label``)."""
        w = self.walked(step)
        return w.meaning if w is not None else None

    def means(self, step: AuthStep, *codes: str) -> bool:
        """The step's plugin says it is one of ``codes`` (``fast_auth_success``,
        ``perform_full_authentication``, ``public_key``, ``key_request``...)."""
        m = self.meaning(step)
        return m is not None and m.meaning in codes

    def describe(self, step: AuthStep) -> str:
        k = step.kind
        d = step.data
        if k == "auth_switch_request":
            return f"AuthSwitchRequest plugin '{step.plugin}' ({len(d)} bytes of plugin data)"
        if k == "old_auth_switch_request":
            return "old-password switch (a bare 0xFE: answer with scramble323)"
        if k == "auth_next_factor":
            return f"AuthNextFactor plugin '{step.plugin}'"
        if k in ("auth_more_data", "server_plugin_data"):
            m = self.meaning(step)
            return m.label if m is not None else data_label(k, d)
        if k == "ok":
            return "OK"
        if k == "err":
            e = self.err or {}
            return (
                f"ERR {e.get('code')}"
                + (f" ({e['sqlstate']})" if e.get("sqlstate") else "")
                + f": {e.get('message')}"
            )
        if k in CLIENT_KINDS:
            name = {
                "handshake_response": "HandshakeResponse",
                "com_change_user": "COM_CHANGE_USER",
                "auth_data": "auth data",
            }[k]
            return f"{name}, {self.shape(step)}"
        return k

    def shape(self, step: AuthStep) -> str:
        """Client auth bytes by length and kind, never by value (the plugin's label)."""
        m = self.meaning(step)
        if isinstance(m, ClientStep):
            return m.label
        return client_label(step.plugin or "?", step.data)

    def is_cleartext(self, step: AuthStep) -> bool:
        """Is this client step the password (or token) itself?"""
        if step.sender != "client" or step.kind not in CLIENT_KINDS or not step.data:
            return False
        m = self.meaning(step)
        return isinstance(m, ClientStep) and m.cleartext

    def plugin_at(self, step: AuthStep) -> str | None:
        w = self.walked(step)
        if w is None:
            return step.plugin
        return step.plugin or w.flow.name

    def stage_at(self, step: AuthStep) -> str | None:
        """The plugin's stage when ``step`` arrived (caching_sha2: ``fast``, ``full``,
        ``full-rsa``)."""
        w = self.walked(step)
        return w.stage if w is not None else None

    def server_after(self, step: AuthStep) -> AuthStep | None:
        seen = False
        for s in self.steps:
            if seen and s.sender == "server":
                return s
            if s is step:
                seen = True
        return None

    @property
    def server_offers_tls(self) -> bool | None:
        caps = self.conn.server_capabilities
        return None if caps is None else bool(caps & SSL)

    @property
    def account_sql(self) -> str:
        """The account as SQL: 'user'@'host', with placeholders for what the wire did not say."""
        m = _ACCOUNT_RE.search(self.message)
        if m:
            return f"'{m.group(1)}'@'{m.group(2)}'"
        user = self.user if self.user is not None else "<user>"
        return f"'{user}'@'<host>'"

    @property
    def alter_user(self) -> str:
        """The statement prefix that changes this account's plugin."""
        return f"ALTER USER {self.account_sql}"

    def set_plugin_sql(self, plugin: str = "mysql_native_password") -> str:
        if self.conn.is_mariadb:
            if plugin == "mysql_native_password":
                return f"{self.alter_user} IDENTIFIED VIA mysql_native_password USING PASSWORD('…')"
            return f"{self.alter_user} IDENTIFIED VIA {plugin} USING PASSWORD('…')"
        return f"{self.alter_user} IDENTIFIED WITH {plugin} BY '…'"
