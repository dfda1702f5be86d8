"""The one small interface every auth plugin module implements, and shared helpers.

A plugin object answers two questions for replay:

* :meth:`AuthPlugin.client_response` -- what a client must send as its *first* answer for
  this plugin, given the data the server sent when it started the plugin (the 20-byte
  greeting nonce, or an AuthSwitchRequest's plugin data);
* :meth:`AuthPlugin.verify` -- the server-side check of a captured answer against a
  password or the account's stored hash.  ``True``/``False`` is a decision; ``None`` means
  "cannot decide with what was given" (never a guess).

Keyword arguments that several plugins understand (unknown ones are ignored, so replay can
pass one context to any plugin):

``stage``            which step of a multi-step plugin the response belongs to
                     (``"fast"``, ``"full-tls"``, ``"full-rsa"``: the vectors' ``path`` values)
``tls``              the answer travelled inside TLS (sha256_password)
``public_key_pem``   server RSA public key (client side of the RSA paths)
``private_key_pem``  server RSA private key (verifying the RSA paths)
``padding``          ``"oaep"`` (default) or ``"pkcs1"`` for RSA encryption
``form``             mysql_old_password wire form: ``"switch"`` (8 bytes + NUL) or ``"320"``
``ext_salt``         parsec ext-salt (``'P'`` + f + 18-byte salt)
``client_nonce``     parsec client nonce (32 bytes)
``answer``           dialog: the answer to a non-password question

Passwords are bytes (what the client hashed: UTF-8 of what the user typed).  ``str`` is
accepted and UTF-8 encoded; a :class:`~mysqlwire.auth.passwords.Secret` is unwrapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mysqlwire.errors import MysqlwireError, ProtocolError, UsageError

#: Length of the greeting nonce every scramble plugin uses (MySQL's ``SCRAMBLE_LENGTH``).
SCRAMBLE_LENGTH = 20


class _LazyModule:
    """A module imported on first attribute access (keeps ``import mysqlwire.auth`` -- and
    so the follower -- from loading hashlib, cryptography or PyNaCl until a proof is
    checked)."""

    def __init__(self, name: str):
        self._name = name
        self._module = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            import importlib

            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)


def lazy_module(name: str) -> Any:
    return _LazyModule(name)


class AuthDataError(MysqlwireError):
    """Auth data that cannot be processed (wrong key, corrupt ciphertext...).

    Messages never contain passwords, key material or decrypted bytes.
    """


def as_bytes(password: Any) -> bytes:
    """Password bytes from ``bytes``/``bytearray``/``memoryview``/``str``/``Secret``."""
    reveal = getattr(password, "reveal", None)
    if callable(reveal):
        password = reveal()
    if isinstance(password, bytes):
        return password
    if isinstance(password, (bytearray, memoryview)):
        return bytes(password)
    if isinstance(password, str):
        return password.encode("utf-8")
    raise UsageError(f"a password must be bytes or str, not {type(password).__name__}")


def nonce_from_switch_data(data: bytes, length: int = SCRAMBLE_LENGTH) -> bytes:
    """The ``length``-byte nonce inside greeting / AuthSwitchRequest plugin data.

    Servers send the 20-byte nonce followed by a NUL (greeting part 2, MySQL and MariaDB
    switch data); the NUL is *not* part of the nonce (keeping it breaks caching_sha2, see
    mysql-nio PR #127).  Accepts exactly ``length`` bytes, or ``length`` bytes + one NUL.
    """
    data = bytes(data)
    if len(data) == length + 1 and data[-1] == 0:
        return data[:length]
    if len(data) == length:
        return data
    raise ProtocolError(
        f"auth plugin data is {len(data)} bytes, expected a {length}-byte nonce "
        "(optionally followed by one NUL)",
        kind="auth_plugin_data",
    )


def consteq(a: bytes, b: bytes) -> bool:
    """Constant-time equality of two byte strings."""
    import hmac  # (here: hashlib costs ~3 ms of start-up to every command)

    return hmac.compare_digest(bytes(a), bytes(b))


def xor_bytes(a: bytes, b: bytes) -> bytes:
    """XOR of two equal-length byte strings."""
    if len(a) != len(b):
        raise ValueError("xor_bytes needs equal lengths")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


# --------------------------------------------------------------------------- the exchange
#
# Each plugin declares its exchange once: what each server packet of the plugin means
# (:meth:`AuthPlugin.server_step`) and what each client packet is (:meth:`AuthPlugin.client_step`),
# moving a per-run :class:`~mysqlwire.auth.flow.Flow` from stage to stage.  The follower
# (handshake), replay, diagnose and serve all ask these methods instead of deciding
# themselves what ``01 04`` or a lone ``02`` means.

#: Sizes (bytes) of RSA ciphertexts for 1024..4096-bit keys.
RSA_CIPHERTEXT_SIZES = (128, 256, 384, 512)


@dataclass(frozen=True)
class ServerStep:
    """What one server auth packet means inside a plugin's exchange.

    ``meaning`` is a stable code (``nonce``, ``fast_auth_success``,
    ``perform_full_authentication``, ``public_key``, ``question``, ``ext_salt``, ``data``);
    ``label`` describes it for people and never quotes secret bytes.
    """

    meaning: str
    label: str


@dataclass(frozen=True)
class ClientStep:
    """What one client auth packet is inside a plugin's exchange.

    ``proof`` -- the packet carries a password proof :meth:`AuthPlugin.verify` can judge
    with ``check`` (keyword arguments) and ``server_data``; ``cleartext`` -- the bytes are
    the secret itself; ``result``/``reason`` -- decided from the shape alone (``empty``,
    ``no-proof``, ``mismatch``, ``unverifiable``), no password needed.  A step that is
    neither (a key request, an ext-salt request, a plugin announcement) proves nothing.
    """

    meaning: str
    label: str
    proof: bool = False
    cleartext: bool = False
    result: str | None = None
    reason: str | None = None
    check: dict[str, Any] = field(default_factory=dict)
    server_data: bytes | None = None

    @property
    def judged(self) -> bool:
        """Replay reports something for this step (a proof or a shape-decided result)."""
        return self.proof or self.result is not None


def client_label(plugin: str, data: bytes, *, cleartext: bool = False, rsa: bool = False) -> str:
    """The shape of client auth bytes by length and kind, never by value."""
    n = len(data)
    if n == 0:
        return f"empty auth response ({plugin})"
    if cleartext:
        return f"{n} bytes of clear text ({plugin})"
    if rsa:
        return f"{n}-byte RSA ciphertext ({plugin})"
    return f"{n}-byte {plugin} proof"


def data_label(kind: str, data: bytes) -> str:
    """Generic description of server plugin data a plugin gives no meaning to."""
    if kind == "auth_more_data":
        return f"AuthMoreData ({len(data)} bytes)"
    return f"plugin data ({len(data)} bytes)"


@dataclass(frozen=True)
class Meaning:
    """What one packet's plugin bytes mean, for people (the views ask, never decide).

    ``text`` -- the full sentence (packet tree; ``""`` = nothing special to say);
    ``brief`` -- the short form for a ladder row (``""`` = the view's generic form);
    ``stage`` -- the display stage this packet moves the plugin to (``None`` = unchanged;
    ``"full"``, ``"rsa"``, ``"rsa-requested"``); ``success`` -- the packet says the login
    succeeded (caching_sha2's ``01 03``); ``cleartext`` -- the client's bytes are the
    password itself.  Never quotes secret bytes.
    """

    text: str = ""
    brief: str = ""
    stage: str | None = None
    success: bool = False
    cleartext: bool = False


def switch_meaning(kind: str, data: bytes | None, what: str) -> Meaning | None:
    """``what: N bytes[ + NUL]`` for the plugin data of a switch that starts the plugin."""
    if kind not in ("auth_switch_request", "auth_next_factor"):
        return None
    body, nul = switch_body(data or b"")
    return Meaning(f"{what}: {len(body)} bytes{nul}")


def generic_meaning(
    plugin: str | None, sender: str, kind: str, data: bytes | None, length: int
) -> Meaning:
    """What bytes mean when no plugin gives them a meaning of its own."""
    if sender == "client":
        if length == 0:
            return Meaning("empty (no password / no answer)")
        return Meaning(f"proof {length} B (redacted)")
    data = data or b""
    if not data:
        return Meaning("empty")
    if data.startswith(b"-----BEGIN"):
        return Meaning(f"RSA public key ({len(data)} bytes PEM)")
    if kind in ("auth_switch_request", "auth_next_factor"):
        body, nul = switch_body(data)
        return Meaning(f"{len(body)} bytes{nul} for {plugin}" if plugin else "")
    return Meaning()


def switch_body(data: bytes) -> tuple[bytes, str]:
    """Switch plugin data without its trailing NUL, and ``" + NUL"`` when there was one."""
    body = data[:-1] if data.endswith(b"\x00") else data
    return body, (" + NUL" if len(body) != len(data) else "")


def is_empty_answer(data: bytes) -> bool:
    """No password: nothing, or a lone NUL."""
    return data in (b"", b"\0")


# --------------------------------------------------------------------------- server side
#
# A plugin's server side is a generator (sans I/O): it yields :class:`ServerSend` packets and
# receives the client's next packet for each one that ``expects_answer``; it returns whether
# the answer proves the account's password.  ``mysqlwire serve`` drives it.

#: Marker byte of an AuthMoreData packet.
MORE_DATA_MARKER = b"\x01"


@dataclass(frozen=True)
class ServerSend:
    """One packet the server side sends (full payload); ``expects_answer``: read the
    client's next packet and send it into the generator."""

    payload: bytes
    expects_answer: bool = True


def more_data(data: bytes, *, expects_answer: bool = True) -> ServerSend:
    """An AuthMoreData packet (``01`` + data)."""
    return ServerSend(MORE_DATA_MARKER + bytes(data), expects_answer)


@dataclass
class ServerAuth:
    """One server-side run of a plugin.

    Given by the server: ``plugin`` name, ``nonce`` (the 20 bytes it sent), ``tls``,
    ``password`` (the account's; ``None`` = no such account: the exchange still runs and
    fails), ``cached`` (caching_sha2's fast-auth cache holds the account), the RSA key pair
    (``public_key_pem``, ``private_key_pem``, ``cipher_len``), ``allow_cleartext_over_plain``
    and ``event(kind, **detail)`` for the server's own record (never given secrets).
    Filled by the plugin: ``path``, ``password_used``, ``cache``, ``rsa_key_requested`` and
    ``fill_cache`` (a verified full authentication fills caching_sha2's cache).
    """

    plugin: str
    nonce: bytes
    tls: bool = False
    password: bytes | None = None
    cached: bool = False
    public_key_pem: bytes = b""
    private_key_pem: bytes = b""
    cipher_len: int = 256
    allow_cleartext_over_plain: bool = False
    event: Any = field(default=lambda kind, **detail: None, repr=False)
    path: str | None = None
    password_used: bool | None = None
    cache: str | None = None
    rsa_key_requested: bool = False
    fill_cache: bool = False

    def __repr__(self) -> str:  # the password never appears
        return f"<ServerAuth {self.plugin} path={self.path!r}>"


class AuthPlugin:
    """Base class: one instance per client-side plugin name.

    Exchange attributes (see :mod:`mysqlwire.auth.flow`):

    ``first_stage``       the stage of the client's first answer
    ``raw_server_data``   MariaDB sends this plugin's server data without the ``01`` wrapper
                          (it escapes only data starting with ``01``/``FE``/``FF``)
    ``sends_secret``      the client's answers are the secret itself (clear text), not a proof
    ``challenge``         the answers are challenge-response proofs over a server nonce
    """

    #: client-side plugin name as it appears on the wire
    name: str = ""
    #: True when replay can recompute / check this plugin's proofs
    replayable: bool = True
    first_stage: str = "first"
    raw_server_data: bool = False
    sends_secret: bool = False
    challenge: bool = False
    #: False when a working client never answers this plugin with empty data (an empty
    #: answer then means the client could not run the plugin)
    empty_answer_possible: bool = True
    #: what one offline guess costs against a proof captured outside TLS (with its nonce);
    #: ``None``: a captured answer gives an attacker no such test
    offline_guess_cost: str | None = None

    #: the plugin defines :meth:`awaits_server_data` (set for every subclass: a plugin
    #: that does not can never be waiting for raw data, whatever its stage)
    may_await_server_data: bool = False

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.may_await_server_data = cls.awaits_server_data is not AuthPlugin.awaits_server_data

    def client_response(self, password: bytes, server_data: bytes, **kw: Any) -> bytes:
        """The client's first answer for this plugin (raw auth data, no length prefix)."""
        raise NotImplementedError

    def verify(
        self,
        response: bytes,
        server_data: bytes,
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        """Server-side check of ``response``; ``None`` when undecidable with what was given."""
        raise NotImplementedError

    # ----------------------------------------------------------------- the exchange
    def start(self, flow: Any) -> None:
        """A run of this plugin starts (``flow.server_data`` is what the server sent)."""

    def server_step(self, flow: Any, kind: str, data: bytes) -> ServerStep:
        """Meaning of server plugin data (``kind`` is ``auth_more_data`` for ``01``-wrapped
        data, ``server_plugin_data`` for raw MariaDB data); may move ``flow.stage``."""
        return ServerStep("data", data_label(kind, data))

    def client_step(self, flow: Any, kind: str, data: bytes, in_tls: bool) -> ClientStep:
        """Meaning of a client answer (``kind``: ``handshake_response``, ``com_change_user``
        or ``auth_data``); may move ``flow.stage``.  Default: a proof to verify."""
        return ClientStep("proof", client_label(self.name, data), proof=True)

    def describe(
        self,
        sender: str,
        kind: str,
        data: bytes | None,
        *,
        length: int | None = None,
        stage: str | None = None,
        in_tls: bool = False,
    ) -> Meaning | None:
        """What this packet's bytes mean for people (``sender`` ``client``/``server``, the
        packet ``kind``, its plugin ``data`` -- ``None`` when not at hand, then ``length``
        says how long it was -- and the display ``stage`` earlier packets moved the plugin
        to).  ``None``: nothing plugin-specific (the views use :func:`generic_meaning`)."""
        return None

    def crackable(self, step: ClientStep) -> bool:
        """Is this client answer (its :meth:`client_step` meaning) a proof that lets an
        eavesdropper test password guesses offline (see ``offline_guess_cost``)?"""
        return self.offline_guess_cost is not None and step.proof and not step.cleartext

    def awaits_server_data(self, flow: Any) -> bool:
        """After the client's last packet, is the next server packet this plugin's own data
        (not OK/ERR/switch) whatever its first byte?  Only for ``raw_server_data`` plugins."""
        return False

    def proof_over_nonce(self, password: bytes, nonce: bytes) -> bytes | None:
        """The proof computed over ``nonce`` exactly as given (no NUL stripping, any
        length): what a buggy client sends from a wrong or stale nonce (replay's
        NONCE_MISUSE).  ``None`` for plugins whose proof is no scramble of a nonce."""
        return None

    # ----------------------------------------------------------------- server side
    def switch_data(self, nonce: bytes) -> bytes:
        """Plugin data of the AuthSwitchRequest that starts this plugin (nonce + NUL)."""
        return bytes(nonce) + b"\0"

    def server_exchange(self, data: bytes, ctx: ServerAuth) -> Any:
        """The server side, from the client's first answer ``data`` (a generator; see
        :class:`ServerSend`).  Plugins without one raise :class:`NotImplementedError`."""
        raise NotImplementedError(f"{self.name}: no server side")

    def secret_bytes(self, data: bytes) -> bool:
        """Stateless: could these client bytes be the secret itself (what ``redact`` must
        blank even when it keeps proofs)?"""
        return self.sends_secret or not self.challenge

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
