"""Key derivation and record decryption for TLS 1.0-1.3 (passive, read-only).

* TLS 1.0/1.1 PRF (RFC 2246 5, P_MD5 XOR P_SHA1) and TLS 1.2 PRF (RFC 5246 5).
* Key block layout (RFC 5246 6.3), AEAD nonces: GCM/CCM salt + explicit nonce
  (RFC 5288 3, RFC 6655 3), ChaCha20-Poly1305 iv XOR seq (RFC 7905 2).
* CBC: TLS 1.0 chains the IV across records (RFC 2246 6.2.3.2), TLS 1.1+ carries
  an explicit IV; MAC-then-encrypt, or encrypt-then-MAC (RFC 7366).
* TLS 1.3: HKDF-Expand-Label (RFC 8446 7.1), traffic keys (7.3), per-record
  nonce (5.3), record AAD (5.2), KeyUpdate (7.2).

Only ``cryptography`` primitives and :mod:`hmac` are used, both imported on first
use: a TLS connection without keys (outcome "encrypted") never needs them.
"""

from __future__ import annotations

import functools
import struct
import warnings
from types import SimpleNamespace

from .suites import SuiteParams

_HASHLIB = {"MD5": "md5", "SHA": "sha1", "SHA256": "sha256", "SHA384": "sha384"}
_CRYPTO_HASH = {"SHA256": "SHA256", "SHA384": "SHA384"}  # (names in cryptography's hashes)
_SEQ = struct.Struct(">Q")


@functools.cache
def _lib() -> SimpleNamespace:
    """``cryptography``'s primitives and :mod:`hmac`, imported once, when keys are set up."""
    import hmac

    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    return SimpleNamespace(
        hmac=hmac,
        InvalidTag=InvalidTag,
        hashes=hashes,
        Cipher=Cipher,
        algorithms=algorithms,
        modes=modes,
        AESCCM=AESCCM,
        AESGCM=AESGCM,
        ChaCha20Poly1305=ChaCha20Poly1305,
        HKDFExpand=HKDFExpand,
    )


class DecryptError(Exception):
    """A record failed authentication (wrong keys, or a corrupted stream)."""


class UnsupportedCipher(Exception):
    """The local OpenSSL/cryptography build lacks the suite's algorithm."""


# --------------------------------------------------------------------------- PRF
def _p_hash(hname: str, secret: bytes, seed: bytes, length: int) -> bytes:
    digest = _lib().hmac.digest
    out = bytearray()
    a = seed
    while len(out) < length:
        a = digest(secret, a, hname)
        out += digest(secret, a + seed, hname)
    return bytes(out[:length])


def prf(
    version: int, prf_hash: str, secret: bytes, label: bytes, seed: bytes, length: int
) -> bytes:
    """TLS PRF: MD5/SHA-1 split for TLS 1.0/1.1, P_<prf_hash> for TLS 1.2."""
    if version >= 0x0303:
        return _p_hash(_HASHLIB[prf_hash], secret, label + seed, length)
    half = (len(secret) + 1) // 2
    s1, s2 = secret[:half], secret[len(secret) - half :]
    md5 = _p_hash("md5", s1, label + seed, length)
    sha = _p_hash("sha1", s2, label + seed, length)
    return (int.from_bytes(md5, "big") ^ int.from_bytes(sha, "big")).to_bytes(length, "big")


def key_block_12(
    version: int, p: SuiteParams, master_secret: bytes, client_random: bytes, server_random: bytes
) -> dict[bool, tuple[bytes, bytes, bytes]]:
    """``{from_client: (mac_key, enc_key, iv)}`` from a TLS <= 1.2 master secret."""
    iv_len = p.fixed_iv_len
    if p.kind == "cbc" and version == 0x0301:
        iv_len = p.block_len  # TLS 1.0: IVs come from the key block
    n = 2 * (p.mac_len + p.key_len + iv_len)
    kb = prf(version, p.prf, master_secret, b"key expansion", server_random + client_random, n)
    m, k = p.mac_len, p.key_len
    cmac, smac = kb[:m], kb[m : 2 * m]
    ckey, skey = kb[2 * m : 2 * m + k], kb[2 * m + k : 2 * m + 2 * k]
    o = 2 * m + 2 * k
    civ, siv = kb[o : o + iv_len], kb[o + iv_len : o + 2 * iv_len]
    return {True: (cmac, ckey, civ), False: (smac, skey, siv)}


# --------------------------------------------------------------------------- TLS 1.3 KDF
def hkdf_expand_label(
    prf_hash: str, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    full = b"tls13 " + label
    info = struct.pack(">HB", length, len(full)) + full + bytes([len(context)]) + context
    lib = _lib()
    algorithm = getattr(lib.hashes, _CRYPTO_HASH[prf_hash])()
    return lib.HKDFExpand(algorithm, length, info).derive(secret)


def next_traffic_secret(prf_hash: str, secret: bytes) -> bytes:
    """KeyUpdate: application_traffic_secret_N+1 (RFC 8446 7.2)."""
    return hkdf_expand_label(prf_hash, secret, b"traffic upd", b"", len(secret))


def _aead(p: SuiteParams, key: bytes):
    lib = _lib()
    if p.kind == "gcm":
        return lib.AESGCM(key)
    if p.kind == "ccm":
        return lib.AESCCM(key, tag_length=p.tag_len)
    if p.kind == "chacha":
        return lib.ChaCha20Poly1305(key)
    raise UnsupportedCipher(p.name)


# --------------------------------------------------------------------------- record states
class RecordDecryptor:
    """Read state of one direction: ``decrypt(ctype, version, fragment)``
    returns ``(content_type, plaintext)`` or raises :class:`DecryptError`."""

    seq: int

    def decrypt(self, ctype: int, version: bytes, fragment: bytes) -> tuple[int, bytes]:
        raise NotImplementedError


class Tls13Decryptor(RecordDecryptor):
    def __init__(self, p: SuiteParams, secret: bytes):
        self.p = p
        self.secret = secret
        self._install(secret)

    def _install(self, secret: bytes) -> None:
        p = self.p
        key = hkdf_expand_label(p.prf, secret, b"key", b"", p.key_len)
        self.iv = int.from_bytes(hkdf_expand_label(p.prf, secret, b"iv", b"", 12), "big")
        self.aead = _aead(p, key)
        self.secret = secret
        self.seq = 0

    def key_update(self) -> None:
        self._install(next_traffic_secret(self.p.prf, self.secret))

    def decrypt(self, ctype: int, version: bytes, fragment: bytes) -> tuple[int, bytes]:
        nonce = (self.iv ^ self.seq).to_bytes(12, "big")
        aad = bytes([ctype]) + version + len(fragment).to_bytes(2, "big")
        try:
            inner = self.aead.decrypt(nonce, fragment, aad)
        except _lib().InvalidTag:  # (evaluated only when decrypt raises)
            raise DecryptError("bad record MAC") from None
        self.seq += 1
        end = len(inner)
        while end and inner[end - 1] == 0:
            end -= 1
        if not end:
            raise DecryptError("TLS 1.3 inner plaintext without content type")
        return inner[end - 1], inner[: end - 1]


class Tls12AeadDecryptor(RecordDecryptor):
    def __init__(self, p: SuiteParams, key: bytes, iv: bytes):
        self.p = p
        self.aead = _aead(p, key)
        self.salt = iv
        self.iv_int = int.from_bytes(iv, "big") if p.kind == "chacha" else 0
        self.seq = 0

    def decrypt(self, ctype: int, version: bytes, fragment: bytes) -> tuple[int, bytes]:
        p = self.p
        if p.kind == "chacha":
            nonce = (self.iv_int ^ self.seq).to_bytes(12, "big")
            body = fragment
        else:
            nonce = self.salt + fragment[:8]
            body = fragment[8:]
        plen = len(body) - p.tag_len
        if plen < 0:
            raise DecryptError("record shorter than the AEAD tag")
        aad = _SEQ.pack(self.seq) + bytes([ctype]) + version + plen.to_bytes(2, "big")
        try:
            pt = self.aead.decrypt(nonce, body, aad)
        except _lib().InvalidTag:  # (evaluated only when decrypt raises)
            raise DecryptError("bad record MAC") from None
        self.seq += 1
        return ctype, pt


def _legacy_algorithm(name: str, key: bytes):
    algorithms = _lib().algorithms
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from cryptography.hazmat.decrepit.ciphers import algorithms as dec
        except ImportError:  # pragma: no cover - cryptography < 43
            dec = algorithms
        if name == "AES":
            return algorithms.AES(key)
        if name == "CAMELLIA":
            return dec.Camellia(key)
        if name == "3DES":
            return dec.TripleDES(key)
        if name == "SEED":
            return dec.SEED(key)
        if name == "IDEA":
            return dec.IDEA(key)
        if name == "RC4":
            return dec.ARC4(key)
    raise UnsupportedCipher(name)


class Tls12MacDecryptor(RecordDecryptor):
    """CBC, stream (RC4) and NULL suites with HMAC (MAC-then-encrypt, or
    encrypt-then-MAC for CBC when RFC 7366 was negotiated)."""

    def __init__(
        self, p: SuiteParams, version: int, mac_key: bytes, key: bytes, iv: bytes, etm: bool
    ):
        self.p = p
        self.mac_key = mac_key
        self.hname = _HASHLIB[p.mac]
        self.etm = etm and p.kind == "cbc"
        self.explicit_iv = p.kind == "cbc" and version >= 0x0302
        self.seq = 0
        lib = _lib()
        self._hmac = lib.hmac
        try:
            if p.kind == "cbc":
                # One continuous CBC decryptor: TLS 1.0 chains the IV across
                # records exactly like CBC does; for TLS 1.1+ the explicit IV
                # block decrypts to garbage that is dropped, and the next block
                # is correctly XORed with it.
                algo = _legacy_algorithm(p.cipher, key)
                self.ctx = lib.Cipher(algo, lib.modes.CBC(iv or bytes(p.block_len))).decryptor()
            elif p.kind == "stream":
                self.ctx = lib.Cipher(_legacy_algorithm(p.cipher, key), mode=None).decryptor()
            else:
                self.ctx = None
        except UnsupportedCipher:
            raise
        except Exception as exc:  # algorithm missing from this OpenSSL build
            raise UnsupportedCipher(f"{p.name}: {type(exc).__name__}") from None

    def _mac(self, ctype: int, version: bytes, data: bytes) -> bytes:
        header = _SEQ.pack(self.seq) + bytes([ctype]) + version + len(data).to_bytes(2, "big")
        return self._hmac.digest(self.mac_key, header + data, self.hname)

    def decrypt(self, ctype: int, version: bytes, fragment: bytes) -> tuple[int, bytes]:
        p = self.p
        ml = p.mac_len
        if self.etm:
            if len(fragment) < ml:
                raise DecryptError("record shorter than its MAC")
            body, tag = fragment[:-ml], fragment[-ml:]
            if not self._hmac.compare_digest(self._mac(ctype, version, body), tag):
                raise DecryptError("bad record MAC")
            fragment = body
        if p.kind == "cbc":
            bl = p.block_len
            if len(fragment) % bl or len(fragment) < bl * (2 if self.explicit_iv else 1):
                raise DecryptError("CBC record length is not a multiple of the block size")
            pt = self.ctx.update(fragment)
            if self.explicit_iv:
                pt = pt[bl:]
            pad = pt[-1]
            need = pad + 1 + (0 if self.etm else ml)
            if need > len(pt) or pt[-pad - 1 :] != bytes([pad]) * (pad + 1):
                raise DecryptError("bad CBC padding")
            pt = pt[: -pad - 1]
        elif p.kind == "stream":
            pt = self.ctx.update(fragment)
        else:
            pt = fragment
        if not self.etm:
            if len(pt) < ml:
                raise DecryptError("record shorter than its MAC")
            content, tag = pt[: len(pt) - ml], pt[len(pt) - ml :]
            if not self._hmac.compare_digest(self._mac(ctype, version, content), tag):
                raise DecryptError("bad record MAC")
            pt = content
        self.seq += 1
        return ctype, pt


def make_tls12_decryptor(
    p: SuiteParams, version: int, keys: tuple[bytes, bytes, bytes], etm: bool
) -> RecordDecryptor:
    mac_key, key, iv = keys
    if p.kind in ("gcm", "ccm", "chacha"):
        return Tls12AeadDecryptor(p, key, iv)
    return Tls12MacDecryptor(p, version, mac_key, key, iv, etm)
