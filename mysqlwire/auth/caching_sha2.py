"""caching_sha2_password (MySQL 8.0.4+; reference §5 and §6), plus the RSA helpers.

Stages (the vectors' ``path`` values):

``fast``      first answer: ``SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || N)`` (32 bytes;
              empty password -> empty).  Server: ``01 03`` (fast auth success) then OK, or
              ``01 04`` (perform full authentication).
``full-tls``  after ``01 04`` over TLS / a Unix socket: ``pw || 00``.
``full-rsa``  after ``01 04`` without TLS: client ``02`` (request the key), server ``01`` +
              PEM, client ``RSA((pw || 00) XOR N cyclic)``; OAEP-SHA1 for servers >= 8.0.5,
              PKCS#1 v1.5 for 8.0.4.

The stored ``$A$005$...`` value is a slow salted hash: it cannot check a fast scramble, so
verification needs the password (fast / full-tls) or the server's RSA private key (full-rsa).
"""

from __future__ import annotations

import functools
from typing import Any

from mysqlwire.errors import UsageError

from .base import (
    RSA_CIPHERTEXT_SIZES,
    AuthDataError,
    AuthPlugin,
    ClientStep,
    Meaning,
    ServerAuth,
    ServerStep,
    as_bytes,
    client_label,
    consteq,
    data_label,
    is_empty_answer,
    lazy_module,
    more_data,
    nonce_from_switch_data,
    switch_meaning,
    xor_bytes,
)

hashlib = lazy_module("hashlib")  # (~3 ms of start-up: imported at the first proof)

# cryptography is loaded when an RSA key is first used, not when the follower starts
hashes = lazy_module("cryptography.hazmat.primitives.hashes")
serialization = lazy_module("cryptography.hazmat.primitives.serialization")
_padding = lazy_module("cryptography.hazmat.primitives.asymmetric.padding")
rsa = lazy_module("cryptography.hazmat.primitives.asymmetric.rsa")

NAME = "caching_sha2_password"

#: AuthMoreData status bytes (after the ``01`` marker) and the client's key request.
REQUEST_PUBLIC_KEY = 2
FAST_AUTH_SUCCESS = 3
PERFORM_FULL_AUTH = 4

STAGE_FAST = "fast"
STAGE_FULL_TLS = "full-tls"
STAGE_FULL_RSA = "full-rsa"
STAGES = (STAGE_FAST, STAGE_FULL_TLS, STAGE_FULL_RSA)
#: Exchange stage after ``01 04`` (the answer is clear text over TLS, or the key request /
#: RSA ciphertext without it).
STAGE_FULL = "full"

#: What the byte after the ``01`` marker means (AuthMoreData), by value.
MORE_DATA = {
    FAST_AUTH_SUCCESS: ("fast_auth_success", "AuthMoreData 01 03 (fast_auth_success)"),
    PERFORM_FULL_AUTH: (
        "perform_full_authentication",
        "AuthMoreData 01 04 (perform_full_authentication)",
    ),
}


def is_public_key(data: bytes) -> bool:
    """AuthMoreData carrying the server's RSA public key (PEM)."""
    return data.startswith(b"-----BEGIN") or data[:1] == b"-"


def public_key_step(data: bytes) -> ServerStep:
    if data.startswith(b"-----BEGIN"):
        return ServerStep(
            "public_key", f"AuthMoreData with the server's RSA public key (PEM, {len(data)} bytes)"
        )
    return ServerStep("public_key", data_label("auth_more_data", data))


#: What each server step (:meth:`CachingSha2Password.server_step`'s meaning code) says for
#: people: the packet tree's sentence, the ladder's short form, the display stage.
SERVER_WORDS = {
    "fast_auth_success": Meaning(
        "03 = fast authentication succeeded (cached hash), OK follows",
        "01 03: fast auth ok (cached), OK follows",
        success=True,
    ),
    "perform_full_authentication": Meaning(
        "04 = perform full authentication: send the password (TLS or RSA)",
        "01 04: full auth: send the password (TLS or RSA)",
        stage=STAGE_FULL,
    ),
}


class _Scratch:
    """A throwaway flow: :func:`describe_server` reads a step without moving a real one."""

    stage: str | None = None


def describe_server(plugin: AuthPlugin, kind: str, data: bytes | None) -> Meaning | None:
    """Server data of caching_sha2 (and sha256) in words, from the plugin's own
    ``server_step``: the switch's nonce, ``01 03``, ``01 04``, the PEM public key."""
    if kind != "auth_more_data":
        return switch_meaning(kind, data, "new nonce")
    data = data or b""
    step = plugin.server_step(_Scratch(), kind, data)
    if step.meaning == "public_key":
        return Meaning("", f"RSA public key ({len(data)} B PEM)", stage="rsa")
    return SERVER_WORDS.get(step.meaning)


def describe_full_answer(
    data: bytes | None, length: int | None, stage: str | None, *, request: int, in_tls: bool
) -> Meaning | None:
    """A client answer of caching_sha2 / sha256: the key request (``request``: 02 / 01,
    outside TLS), then the RSA-encrypted or (TLS) clear-text password."""
    n = len(data) if data is not None else (length or 0)
    if data == bytes([request]) and not in_tls:
        return Meaning(f"{request:02x}: request the server's RSA public key", stage="rsa-requested")
    if stage == "rsa":
        return Meaning(f"RSA-encrypted password ({n} B)")
    if stage == STAGE_FULL:
        return Meaning(f"clear-text password over TLS (redacted, {n} B)")
    return None


def looks_clear(data: bytes) -> bool:
    """``pw || 00`` rather than a key request, an empty answer or an RSA ciphertext."""
    return data not in (b"\x00", b"\x01", b"\x02") and data.endswith(b"\x00") and len(data) < 128


PADDING_OAEP = "oaep"
PADDING_PKCS1 = "pkcs1"


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def scramble(password: bytes, nonce: bytes) -> bytes:
    """The 32-byte fast-path proof (``b""`` for an empty password)."""
    pw = as_bytes(password)
    if not pw:
        return b""
    return scramble_raw(pw, nonce_from_switch_data(nonce))


def scramble_raw(password: bytes, nonce: bytes) -> bytes:
    """The proof over ``nonce`` exactly as given (no NUL stripping, any length):
    what a buggy client computes from a wrong or stale nonce (replay's
    NONCE_MISUSE check)."""
    pw = as_bytes(password)
    if not pw:
        return b""
    stage1 = _sha256(pw)
    return xor_bytes(stage1, _sha256(_sha256(stage1) + bytes(nonce)))


def clear_response(password: bytes) -> bytes:
    """Full authentication over TLS / Unix socket: ``pw || 00``."""
    return as_bytes(password) + b"\0"


# --------------------------------------------------------------------------- RSA helpers


def xor_with_nonce(data: bytes, nonce: bytes) -> bytes:
    """``data XOR nonce`` with the nonce repeated cyclically (its own inverse)."""
    if not nonce:
        raise UsageError("RSA scrambling needs a non-empty nonce")
    return bytes(b ^ nonce[i % len(nonce)] for i, b in enumerate(data))


def _pem_bytes(pem: bytes | str) -> bytes:
    return pem.encode("ascii") if isinstance(pem, str) else bytes(pem)


def _load_public(public_key_pem: bytes | str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(_pem_bytes(public_key_pem))
    except (ValueError, TypeError, UnicodeError):
        raise AuthDataError("cannot load the RSA public key (not a PEM public key)") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise AuthDataError("the public key is not an RSA key")
    return key


def load_private_key(private_key_pem: bytes | str) -> rsa.RSAPrivateKey:
    return _load_private_cached(_pem_bytes(private_key_pem))


@functools.lru_cache(maxsize=8)
def _load_private_cached(pem: bytes) -> rsa.RSAPrivateKey:
    # Loading validates the RSA key (tens of ms); replay decrypts many answers per key.
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnicodeError):
        raise AuthDataError(
            "cannot load the RSA private key (not an unencrypted PEM private key)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthDataError("the private key is not an RSA key")
    return key


def _oaep() -> _padding.OAEP:
    return _padding.OAEP(
        mgf=_padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None
    )


def public_key_pem(private_key_pem: bytes | str) -> bytes:
    """SubjectPublicKeyInfo PEM (what the server sends after ``01``) of a private key."""
    return (
        load_private_key(private_key_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def rsa_encrypt(
    password: bytes,
    nonce: bytes,
    public_key_pem: bytes | str,
    *,
    padding: str = PADDING_OAEP,
) -> bytes:
    """Client side of the RSA path: ``RSA((pw || 00) XOR N cyclic)`` (randomized)."""
    nonce = nonce_from_switch_data(nonce)
    message = xor_with_nonce(as_bytes(password) + b"\0", nonce)
    key = _load_public(public_key_pem)
    if padding == PADDING_OAEP:
        pad: _padding.AsymmetricPadding = _oaep()
    elif padding == PADDING_PKCS1:
        pad = _padding.PKCS1v15()
    else:
        raise UsageError(f"unknown RSA padding {padding!r} (use 'oaep' or 'pkcs1')")
    try:
        return key.encrypt(message, pad)
    except ValueError:
        raise AuthDataError("password too long for this RSA key") from None


def _pkcs1v15_unpad(key: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes | None:
    """Explicit PKCS#1 v1.5 decryption (``None`` on bad padding).

    Done by hand because OpenSSL >= 3.2 uses implicit rejection for PKCS#1 v1.5: a wrong
    key yields random bytes instead of an error.  Offline replay has no oracle to protect.
    """
    nums = key.private_numbers()
    n = nums.public_numbers.n
    k = (n.bit_length() + 7) // 8
    c = int.from_bytes(ciphertext, "big")
    if len(ciphertext) != k or c >= n:
        return None
    m1, m2 = pow(c, nums.dmp1, nums.p), pow(c, nums.dmq1, nums.q)  # CRT
    em = (m2 + ((nums.iqmp * (m1 - m2)) % nums.p) * nums.q).to_bytes(k, "big")
    if em[0] != 0 or em[1] != 2:
        return None
    sep = em.find(b"\0", 2)
    if sep < 10:  # at least 8 non-zero padding bytes
        return None
    return em[sep + 1 :]


def rsa_decrypt_raw(ciphertext: bytes, private_key_pem: bytes | str) -> tuple[bytes, str]:
    """RSA plaintext (still XORed with the nonce) and the padding that worked.

    Tries OAEP-SHA1 first, then PKCS#1 v1.5.  Raises :class:`AuthDataError` (no key or
    data in the message) when neither decrypts.
    """
    key = load_private_key(private_key_pem)
    ciphertext = bytes(ciphertext)
    if len(ciphertext) != (key.key_size + 7) // 8:
        raise AuthDataError(
            f"RSA ciphertext is {len(ciphertext)} bytes, the key needs "
            f"{(key.key_size + 7) // 8}: wrong key or not an RSA answer"
        )
    try:
        return key.decrypt(ciphertext, _oaep()), PADDING_OAEP
    except ValueError:
        pass
    plain = _pkcs1v15_unpad(key, ciphertext)
    if plain is None:
        raise AuthDataError(
            "RSA decryption failed with OAEP-SHA1 and PKCS#1 v1.5: wrong private key "
            "or corrupted ciphertext"
        )
    return plain, PADDING_PKCS1


def rsa_decrypt(ciphertext: bytes, nonce: bytes, private_key_pem: bytes | str) -> bytes:
    """The password recovered from an RSA answer (without the trailing NUL)."""
    raw, _ = rsa_decrypt_raw(ciphertext, private_key_pem)
    message = xor_with_nonce(raw, nonce_from_switch_data(nonce))
    if not message or message[-1] != 0:
        raise AuthDataError(
            "decrypted RSA answer does not end with NUL after un-XORing the nonce: "
            "wrong nonce (greeting vs switch data?) or wrong key"
        )
    return message[:-1]


def verify_rsa(
    ciphertext: bytes, nonce: bytes, private_key_pem: bytes | str, password: bytes
) -> bool:
    """Decrypt with the server's key and compare with the password.

    Raises :class:`AuthDataError` when the answer does not decrypt to ``... || 00``: with
    the right key a real client's ciphertext always does, so that means a wrong key or
    wrong nonce -- neither a match nor a mismatch.
    """
    return consteq(rsa_decrypt(ciphertext, nonce, private_key_pem), as_bytes(password))


def _verify_clear(response: bytes, password: bytes | None) -> bool | None:
    if password is None:
        return None
    return consteq(bytes(response), as_bytes(password) + b"\0")


def rsa_or_clear(ctx: ServerAuth, data: bytes, key_request: bytes, prefix: str) -> Any:
    """Server side of full authentication without TLS (caching_sha2 and sha256): send the
    public key when asked, then decrypt the RSA answer -- or take ``pw || 00`` in clear when
    the server allows it.  Returns the password the client sent (``None``: none usable)."""
    if data == key_request:
        ctx.rsa_key_requested = True
        ctx.event("public_key", plugin=ctx.plugin)
        data = yield more_data(ctx.public_key_pem)
    if len(data) == ctx.cipher_len:
        ctx.path = f"{prefix}rsa"
        try:
            return rsa_decrypt(data, ctx.nonce, ctx.private_key_pem)
        except AuthDataError:
            ctx.event("rsa-decrypt-failed")
            return None
    if data.endswith(b"\0"):
        ctx.path = f"{prefix}cleartext-plain"
        ctx.event("cleartext-over-plain", accepted=ctx.allow_cleartext_over_plain)
        return data[:-1] if ctx.allow_cleartext_over_plain else None
    ctx.event("unexpected-auth-data", length=len(data))
    return None


class CachingSha2Password(AuthPlugin):
    """Exchange (stages ``fast`` -> ``full`` -> ``full-rsa``): greeting/switch data =
    20-byte nonce + NUL; the client's first answer is the 32-byte scramble (empty = no
    password).  Server ``01 03``: fast auth succeeded, OK follows; ``01 04``: perform full
    authentication -- over TLS the client sends ``pw || 00``; without TLS it sends ``02``
    (key request), the server ``01`` + PEM public key, the client the RSA ciphertext."""

    name = NAME
    offline_guess_cost = (
        "one SHA256 chain per guess (nonce and 32-byte scramble are both in the capture)"
    )
    replayable = True
    challenge = True
    first_stage = STAGE_FAST

    def crackable(self, step: ClientStep) -> bool:
        """Only the fast path's 32-byte scramble (an RSA ciphertext tests no guess)."""
        return step.meaning == "scramble"

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
        """``01 03`` fast auth succeeded, ``01 04`` perform full authentication, the PEM key;
        the client's ``02`` key request, then its RSA ciphertext or (TLS) clear text."""
        if sender == "server":
            return describe_server(self, kind, data)
        return describe_full_answer(data, length, stage, request=REQUEST_PUBLIC_KEY, in_tls=in_tls)

    def server_step(self, flow: Any, kind: str, data: bytes) -> ServerStep:
        if kind != "auth_more_data":
            return ServerStep("data", data_label(kind, data))
        if len(data) == 1 and data[0] in MORE_DATA:
            if data[0] == PERFORM_FULL_AUTH:
                flow.stage = STAGE_FULL
            return ServerStep(*MORE_DATA[data[0]])
        if is_public_key(data):
            flow.stage = STAGE_FULL_RSA
            return public_key_step(data)
        return ServerStep("data", data_label(kind, data))

    def proof_over_nonce(self, password: bytes, nonce: bytes) -> bytes | None:
        return scramble_raw(password, nonce)

    def client_step(self, flow: Any, kind: str, data: bytes, in_tls: bool) -> ClientStep:
        n = len(data)
        if data == bytes([REQUEST_PUBLIC_KEY]):
            label = "a single 0x02 (request for the server's RSA public key)"
        else:
            label = ""
        if flow.stage == STAGE_FAST:
            if n == 0:
                return ClientStep("empty", client_label(NAME, data), result="empty")
            if n == 32:
                return ClientStep("scramble", label or client_label(NAME, data), proof=True)
            if data.endswith(b"\x00") and n > 1:
                # clear text where a scramble belongs (the client is already in full mode)
                return ClientStep(
                    "cleartext",
                    label or client_label(NAME, data, cleartext=True),
                    proof=True,
                    cleartext=True,
                    check={"stage": STAGE_FULL_TLS},
                )
            return ClientStep(
                "malformed",
                label or client_label(NAME, data, rsa=n in RSA_CIPHERTEXT_SIZES),
                result="mismatch",
                reason="not a 32-byte scramble",
            )
        if data == bytes([REQUEST_PUBLIC_KEY]):
            flow.stage = STAGE_FULL_RSA
            return ClientStep("key_request", label)
        if flow.stage == STAGE_FULL:
            clear = looks_clear(data)
            return ClientStep(
                "cleartext",
                client_label(NAME, data, cleartext=clear, rsa=n in RSA_CIPHERTEXT_SIZES),
                proof=True,
                cleartext=clear,
                check={"stage": STAGE_FULL_TLS},  # pw + NUL (TLS, or in clear on plain TCP)
            )
        return ClientStep(
            "rsa",
            client_label(NAME, data, rsa=n in RSA_CIPHERTEXT_SIZES),
            proof=True,
            check={"stage": STAGE_FULL_RSA},
        )

    def secret_bytes(self, data: bytes) -> bool:
        return len(data) > 1 and data.endswith(b"\x00")

    def server_exchange(self, data: bytes, ctx: ServerAuth) -> Any:
        """Fast auth from the cache (``01 03``), else ``01 04`` and full authentication:
        ``pw || 00`` over TLS, RSA (or allowed clear text) without it."""
        pw = ctx.password
        if is_empty_answer(data):
            ctx.password_used = False
            ctx.path = "empty"
            return pw is not None and not pw
        ctx.password_used = True
        cached = pw is not None and ctx.cached
        if cached and len(data) == 32 and consteq(scramble(pw, ctx.nonce), data):
            ctx.cache = "hit"
            ctx.path = "fast"
            ctx.event("more_data", status="fast_auth_success")
            yield more_data(bytes([FAST_AUTH_SUCCESS]), expects_answer=False)
            return True
        ctx.cache = "mismatch" if cached else "miss"
        ctx.event("more_data", status="perform_full_authentication", cache=ctx.cache)
        data = yield more_data(bytes([PERFORM_FULL_AUTH]))
        if ctx.tls:
            ctx.path = "full-tls"
            got: bytes | None = data[:-1] if data.endswith(b"\0") else data
        else:
            got = yield from rsa_or_clear(ctx, data, bytes([REQUEST_PUBLIC_KEY]), "full-")
        ok = got is not None and pw is not None and consteq(got, pw)
        ctx.fill_cache = ok
        return ok

    def client_response(self, password: bytes, server_data: bytes, **kw: Any) -> bytes:
        """``stage="fast"`` (default): the scramble; ``"full-tls"``: ``pw || 00``;
        ``"full-rsa"``: the ciphertext if ``public_key_pem`` is given, else ``02``."""
        stage = kw.get("stage") or STAGE_FAST
        if stage == STAGE_FAST:
            return scramble(password, server_data)
        if stage == STAGE_FULL_TLS:
            return clear_response(password)
        if stage == STAGE_FULL_RSA:
            key = kw.get("public_key_pem")
            if key is None:
                return bytes([REQUEST_PUBLIC_KEY])
            return rsa_encrypt(
                password, server_data, key, padding=kw.get("padding") or PADDING_OAEP
            )
        raise UsageError(f"unknown caching_sha2_password stage {stage!r}")

    def verify(
        self,
        response: bytes,
        server_data: bytes,
        *,
        password: bytes | None = None,
        stored: str | None = None,
        **kw: Any,
    ) -> bool | None:
        """``stored`` (``$A$005$...``) cannot decide any stage and is ignored."""
        stage = kw.get("stage") or STAGE_FAST
        response = bytes(response)
        if stage == STAGE_FAST:
            if password is None:
                return None
            return consteq(response, scramble(password, server_data))
        if stage == STAGE_FULL_TLS:
            return _verify_clear(response, password)
        if stage == STAGE_FULL_RSA:
            if response == bytes([REQUEST_PUBLIC_KEY]):
                return None  # the key request proves nothing
            key = kw.get("private_key_pem")
            if key is None or password is None:
                return None
            return verify_rsa(response, server_data, key, password)
        raise UsageError(f"unknown caching_sha2_password stage {stage!r}")


PLUGIN = CachingSha2Password()
