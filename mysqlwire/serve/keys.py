"""Key material of ``mysqlwire serve``: the RSA key pair (caching_sha2 / sha256 full auth
without TLS) and the TLS certificate (self-signed, generated on the fly unless given).

Generated keys are kept for the life of the process (like MySQL's auto-generated
``private_key.pem`` survives restarts), so starting many servers in one test run is cheap.
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mysqlwire.errors import UsageError

_lock = threading.Lock()
_generated_rsa: dict[int, bytes] = {}
_generated_cert: dict[str, tuple[bytes, bytes]] = {}


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def generate_rsa_private_key(bits: int = 2048) -> bytes:
    """A fresh unencrypted RSA private key, PEM."""
    return _private_pem(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def rsa_private_key(path: str | os.PathLike[str] | None, bits: int = 2048) -> bytes:
    """The configured RSA private key (PEM bytes), or the process's generated one."""
    if path:
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(
                f"cannot read RSA private key {os.fspath(path)!r}: {exc.strerror}"
            ) from None
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise UsageError(f"{os.fspath(path)!r} is not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise UsageError(f"{os.fspath(path)!r} is not an RSA key")
        return pem
    with _lock:
        if bits not in _generated_rsa:
            _generated_rsa[bits] = generate_rsa_private_key(bits)
        return _generated_rsa[bits]


def rsa_cipher_length(private_pem: bytes) -> int:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return (key.key_size + 7) // 8  # type: ignore[union-attr]


def self_signed_certificate(
    common_name: str = "mysqlwire_Auto_Generated_Server_Certificate",
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM), generated once per process and name."""
    with _lock:
        if common_name in _generated_cert:
            return _generated_cert[common_name]
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256())
        )
        pair = (cert.public_bytes(serialization.Encoding.PEM), _private_pem(key))
        _generated_cert[common_name] = pair
        return pair


def server_ssl_context(
    cert_file: str | None = None, key_file: str | None = None, keylog_file: str | None = None
) -> ssl.SSLContext:
    """Server-side TLS context (TLS 1.2+, like MySQL 8.0.28+), NSS key log if asked."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if cert_file:
            ctx.load_cert_chain(cert_file, key_file or None)
        else:
            cert_pem, key_pem = self_signed_certificate()
            # load_cert_chain only reads files: write them to a private temp dir briefly
            with tempfile.TemporaryDirectory(prefix="mysqlwire-tls-") as tmp:
                cpath, kpath = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
                cpath.write_bytes(cert_pem)
                fd = os.open(kpath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(key_pem)
                ctx.load_cert_chain(str(cpath), str(kpath))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS certificate/key: {exc}") from None
    if keylog_file:
        # created O_EXCL|O_NOFOLLOW with mode 0600 (an existing regular file is set to 0600;
        # a symlink or special file is refused) before the ssl module appends to it
        from mysqlwire.outputs import prepare_secret_file

        prepare_secret_file(keylog_file, what="TLS key log")
        ctx.keylog_filename = os.fspath(keylog_file)
    return ctx
