"""TlsSession against real OpenSSL (Python's ``ssl`` over memory BIOs).

The captures with keys only cover TLS 1.3 AES-256-GCM and TLS 1.0 AES-CBC, so
every other suite/version is proven here: OpenSSL runs both ends of a handshake
in memory, writes its NSS key log, and the exact bytes each side sent are fed to
``TlsSession``; the plaintext must equal what the peers exchanged. TLS 1.3
suites other than the default are forced with an ``OPENSSL_CONF`` in a
subprocess; KeyUpdate is driven through ``openssl s_client``/``s_server``.
Also: decryption throughput (printed, not asserted).

Run this file as a script to generate one exchange (used by the subprocess).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest

SSL_OP_NO_ENCRYPT_THEN_MAC = 0x00080000  # OpenSSL SSL_OP_NO_ENCRYPT_THEN_MAC


# --------------------------------------------------------------------------- generator
def make_cert(directory: str, dh_params: bool = True) -> tuple[str, str]:
    """Self-signed RSA certificate + key (and DH parameters for DHE suites,
    written beside them as ``dh.pem``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dh, rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "db.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cp, kp = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    Path(cp).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(kp).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    if dh_params:
        params = dh.generate_parameters(generator=2, key_size=1024)
        Path(directory, "dh.pem").write_bytes(
            params.parameter_bytes(serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3)
        )
    return cp, kp


def _contexts(keylog, cert, version, ciphers, etm, alpn, server_groups, verify_client_side):
    if os.path.exists(keylog):
        os.unlink(keylog)
    tls_version = getattr(ssl.TLSVersion, version)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(*cert)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_REQUIRED if verify_client_side else ssl.CERT_NONE
    for ctx in (sctx, cctx):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 on purpose
            ctx.minimum_version = ctx.maximum_version = tls_version
        ctx.set_ciphers((ciphers or "DEFAULT") + ":@SECLEVEL=0")
        if not etm:
            ctx.options |= SSL_OP_NO_ENCRYPT_THEN_MAC
        if alpn:
            ctx.set_alpn_protocols(alpn)
    dh_file = Path(cert[0]).with_name("dh.pem")
    if dh_file.is_file():  # after @SECLEVEL=0: 1024-bit DH
        sctx.load_dh_params(str(dh_file))
    if server_groups:
        sctx.set_ecdh_curve(server_groups)
    sctx.keylog_filename = keylog
    return sctx, cctx


def exchange(
    directory: str,
    cert: tuple[str, str],
    version: str,
    ciphers: str | None = None,
    *,
    etm: bool = True,
    client_msgs: list[bytes] = (b"hello",),
    server_msgs: list[bytes] = (b"world",),
    sni: str | None = "db.test",
    alpn: list[str] | None = None,
    server_groups: str | None = None,
    verify_client_side: bool = False,
    resume: dict | None = None,
) -> dict:
    """One TLS connection in memory; returns the bytes each side sent, the key
    log, what OpenSSL negotiated and (when it fails) the handshake error."""
    keylog = os.path.join(directory, "keys.log")
    if resume is not None:  # same contexts (session caches), same key log file
        sctx, cctx = resume["contexts"]
        session = resume["session"]
    else:
        session = None
        sctx, cctx = _contexts(
            keylog, cert, version, ciphers, etm, alpn, server_groups, verify_client_side
        )
    cin, cout, sin, sout = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    cli = cctx.wrap_bio(cin, cout, server_side=False, server_hostname=sni, session=session)
    srv = sctx.wrap_bio(sin, sout, server_side=True)
    sent = {True: bytearray(), False: bytearray()}

    def pump() -> None:
        moved = True
        while moved:
            moved = False
            for src, dst, from_client in ((cout, sin, True), (sout, cin, False)):
                data = src.read()
                if data:
                    sent[from_client] += data
                    dst.write(data)
                    moved = True

    error = None
    done = [False, False]
    while not all(done) and error is None:
        for i, obj in enumerate((cli, srv)):
            if done[i]:
                continue
            try:
                obj.do_handshake()
                done[i] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                error = f"{'client' if i == 0 else 'server'}: {exc.reason}"
        pump()
    result = {"error": error}
    if error is None:
        for m in client_msgs:
            cli.write(m)
            pump()
        for m in server_msgs:
            srv.write(m)
            pump()
        got = {True: bytearray(), False: bytearray()}
        for _ in range(2):
            for obj, acc in ((srv, got[True]), (cli, got[False])):
                while True:
                    try:
                        acc += obj.read(1 << 20)
                    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                        break
            pump()
        assert bytes(got[True]) == b"".join(client_msgs)
        assert bytes(got[False]) == b"".join(server_msgs)
        result.update(
            version=cli.version(),
            cipher=cli.cipher()[0],
            session=cli.session,
            reused=cli.session_reused,
            contexts=(sctx, cctx),
        )
    result.update(
        client=bytes(sent[True]),
        server=bytes(sent[False]),
        keylog=Path(keylog).read_bytes() if os.path.exists(keylog) else b"",
    )
    return result


# --------------------------------------------------------------------------- fixtures
from mysqlwire.tls import KeyLog, TlsSession  # noqa: E402

CLIENT_MSGS = [b"\x00" * 5, os.urandom(40000), b"select 1", b"x" * 16384]
SERVER_MSGS = [b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00", os.urandom(20000)]


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[str, str]:
    return make_cert(str(tmp_path_factory.mktemp("cert")))


def feed_all(keylog, res, step_c=7, step_s=11, client_first=False):
    sess = TlsSession(keylog)
    c, s = res["client"], res["server"]
    out = []
    feeds = [(True, c[i : i + step_c]) for i in range(0, len(c), step_c)]
    sfeeds = [(False, s[i : i + step_s]) for i in range(0, len(s), step_s)]
    feeds = feeds + sfeeds if client_first else sfeeds + feeds
    for fc, chunk in feeds:
        out += sess.feed(fc, chunk)
    out += sess.finish()
    return (
        sess,
        b"".join(p for fc, p in out if fc),
        b"".join(p for fc, p in out if not fc),
    )


def run_or_skip(directory, cert, *args, **kw) -> dict:
    try:
        res = exchange(directory, cert, *args, **kw)
    except ssl.SSLError as exc:
        if "cipher" not in str(exc).lower():
            raise
        pytest.skip(f"local OpenSSL cannot negotiate {args}: {exc}")  # compiled out
    if res["error"] and "NO_CIPHER" in res["error"].upper():
        pytest.skip(f"local OpenSSL cannot negotiate {args}: {res['error']}")
    assert res["error"] is None, res["error"]
    return res


# (Python TLSVersion, OpenSSL cipher string, encrypt-then-MAC, version, IANA name)
TLS12_CASES = [
    (
        "TLSv1_2",
        "ECDHE-RSA-AES128-GCM-SHA256",
        True,
        "TLS 1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "TLSv1_2",
        "ECDHE-RSA-AES256-GCM-SHA384",
        True,
        "TLS 1.2",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "TLSv1_2",
        "DHE-RSA-AES128-GCM-SHA256",
        True,
        "TLS 1.2",
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "TLSv1_2",
        "ECDHE-RSA-CHACHA20-POLY1305",
        True,
        "TLS 1.2",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    ("TLSv1_2", "AES128-CCM", True, "TLS 1.2", "TLS_RSA_WITH_AES_128_CCM"),
    ("TLSv1_2", "AES256-CCM8", True, "TLS 1.2", "TLS_RSA_WITH_AES_256_CCM_8"),
    (
        "TLSv1_2",
        "ECDHE-RSA-AES128-SHA256",
        True,
        "TLS 1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    ),
    (
        "TLSv1_2",
        "ECDHE-RSA-AES128-SHA256",
        False,
        "TLS 1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    ),
    (
        "TLSv1_2",
        "ECDHE-RSA-AES256-SHA384",
        True,
        "TLS 1.2",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    ),
    (
        "TLSv1_2",
        "ECDHE-RSA-AES256-SHA384",
        False,
        "TLS 1.2",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    ),
    ("TLSv1_2", "DHE-RSA-AES256-SHA", False, "TLS 1.2", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    ("TLSv1_2", "AES256-SHA", True, "TLS 1.2", "TLS_RSA_WITH_AES_256_CBC_SHA"),
    ("TLSv1_2", "CAMELLIA128-SHA", False, "TLS 1.2", "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    ("TLSv1_2", "DES-CBC3-SHA", False, "TLS 1.2", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    ("TLSv1_2", "NULL-SHA256", False, "TLS 1.2", "TLS_RSA_WITH_NULL_SHA256"),
    ("TLSv1_1", "ECDHE-RSA-AES128-SHA", True, "TLS 1.1", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    ("TLSv1_1", "DHE-RSA-AES256-SHA", False, "TLS 1.1", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    ("TLSv1", "DHE-RSA-AES256-SHA", False, "TLS 1.0", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    ("TLSv1", "ECDHE-RSA-AES128-SHA", True, "TLS 1.0", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    ("TLSv1_3", None, True, "TLS 1.3", "TLS_AES_256_GCM_SHA384"),
]


@pytest.mark.parametrize(
    ("pyver", "ciphers", "etm", "version", "iana"),
    TLS12_CASES,
    ids=[f"{c[0]}-{c[1] or 'default'}-{'etm' if c[2] else 'mte'}" for c in TLS12_CASES],
)
def test_decrypts_openssl(tmp_path, cert, pyver, ciphers, etm, version, iana):
    res = run_or_skip(
        str(tmp_path),
        cert,
        pyver,
        ciphers,
        etm=etm,
        client_msgs=CLIENT_MSGS,
        server_msgs=SERVER_MSGS,
    )
    for client_first in (False, True):
        sess, cp, sp = feed_all(KeyLog.load(res["keylog"]), res, client_first=client_first)
        assert sess.status == "ok", sess.anomalies
        assert (sess.version, sess.cipher) == (version, iana)
        assert cp == b"".join(CLIENT_MSGS)
        assert sp == b"".join(SERVER_MSGS)
        assert sess.sni == "db.test"
        assert sess.anomalies == []
    if "CBC" in iana and version != "TLS 1.3":
        assert sess.encrypt_then_mac == etm
    # without keys: same description, no plaintext
    sess, cp, sp = feed_all(None, res)
    assert (sess.version, sess.cipher, sess.status, cp, sp) == (version, iana, "no-keys", b"", b"")


TLS13_FORCED = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
]


def exchange_in_subprocess(tmp_path: Path, ciphersuites: str, **kw) -> dict:
    conf = tmp_path / "openssl.cnf"
    conf.write_text(
        "openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n"
        "[ssl_sect]\nsystem_default = sd\n[sd]\n"
        f"Ciphersuites = {ciphersuites}\n"
    )
    env = dict(os.environ, OPENSSL_CONF=str(conf))
    args = json.dumps({"dir": str(tmp_path), **kw})
    proc = subprocess.run(
        [sys.executable, __file__, args], env=env, capture_output=True, text=True, timeout=120
    )
    if proc.returncode:
        pytest.skip(f"OpenSSL could not run {ciphersuites}: {proc.stderr.strip()[-300:]}")
    res = json.loads(proc.stdout)
    for k in ("client", "server", "keylog"):
        res[k] = bytes.fromhex(res[k])
    return res


@pytest.mark.parametrize("suite", TLS13_FORCED)
def test_tls13_suites(tmp_path, suite):
    msgs = [b"hello", os.urandom(30000).hex().encode()]
    res = exchange_in_subprocess(tmp_path, suite, client_msgs=[m.hex() for m in msgs])
    if res["error"] or res["cipher"] != suite:
        pytest.skip(f"OpenSSL did not negotiate {suite}: {res['error'] or res['cipher']}")
    sess, cp, sp = feed_all(KeyLog.load(res["keylog"]), res, step_c=1000, step_s=3)
    assert (sess.version, sess.cipher, sess.status) == ("TLS 1.3", suite, "ok"), sess.anomalies
    assert cp == b"".join(msgs) and sp == b"world"


def test_tls13_hello_retry_request(tmp_path, cert):
    """Server accepts only P-256, client sends an X25519 key share: HRR."""
    res = run_or_skip(str(tmp_path), cert, "TLSv1_3", server_groups="prime256v1", alpn=["mysql"])
    for client_first in (True, False):
        sess, cp, sp = feed_all(KeyLog.load(res["keylog"]), res, client_first=client_first)
        assert sess.hello_retry
        assert sess.status == "ok"
        assert (cp, sp) == (b"hello", b"world")
        assert sess.alpn == "mysql"  # from EncryptedExtensions (needs keys)
    sess, _, _ = feed_all(None, res, client_first=True)
    assert sess.hello_retry and sess.version == "TLS 1.3" and sess.alpn is None
    assert sess.alpn_offered == ["mysql"]


@pytest.mark.parametrize(
    ("pyver", "ciphers"),
    [("TLSv1_2", "ECDHE-RSA-AES128-GCM-SHA256"), ("TLSv1_2", "AES256-SHA"), ("TLSv1_3", None)],
)
def test_resumed_session(tmp_path, cert, pyver, ciphers):
    """Abbreviated handshake (TLS 1.2: server CCS/Finished first; TLS 1.3: PSK)."""
    d = str(tmp_path)
    first = run_or_skip(d, cert, pyver, ciphers)
    second = run_or_skip(d, cert, pyver, ciphers, resume=first, client_msgs=[b"again"])
    assert second["reused"]
    for client_first in (False, True):
        sess, cp, sp = feed_all(KeyLog.load(second["keylog"]), second, client_first=client_first)
        assert sess.status == "ok", sess.anomalies
        assert (cp, sp) == (b"again", b"world")
    # the first connection's key log does not open the second one
    sess, cp, sp = feed_all(KeyLog.load(first["keylog"]), second)
    assert sess.status == "keys-missing" and (cp, sp) == (b"", b"")


def test_one_sided_capture_does_not_buffer_forever(tmp_path, cert, monkeypatch):
    from mysqlwire.tls import session as session_mod

    monkeypatch.setattr(session_mod, "MAX_PENDING", 50_000)
    res = run_or_skip(str(tmp_path), cert, "TLSv1_3", client_msgs=CLIENT_MSGS)
    sess = TlsSession(KeyLog.load(res["keylog"]))
    assert sess.feed(True, res["client"]) == []  # no ServerHello ever
    assert any("waiting for the ServerHello" in a for a in sess.anomalies)
    assert len(sess._dirs[True].buf) < 50_000
    sess.finish()
    assert sess.version is None


def test_tls12_alpn_without_keys(tmp_path, cert):
    res = run_or_skip(str(tmp_path), cert, "TLSv1_2", "ECDHE-RSA-AES128-GCM-SHA256", alpn=["mysql"])
    sess, _, _ = feed_all(None, res)
    assert sess.alpn == "mysql" and sess.alpn_offered == ["mysql"]


def test_clear_alert(tmp_path, cert):
    """Client offers only a suite the server refuses: handshake_failure in clear."""
    directory = str(tmp_path)
    res = exchange(directory, cert, "TLSv1_2", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert res["error"]
    sess, cp, sp = feed_all(None, res)
    assert (False, "fatal", "handshake_failure") in sess.alerts
    assert sess.version is None and (cp, sp) == (b"", b"")


def test_tls13_client_alert_in_clear(tmp_path, cert):
    """The client rejects the self-signed certificate before it has keys of its
    own: OpenSSL sends the alert in clear although the server already encrypts."""
    res = exchange(str(tmp_path), cert, "TLSv1_3", verify_client_side=True)
    assert res["error"] and res["error"].startswith("client")
    for keylog in (KeyLog.load(res["keylog"]), None):
        sess, cp, sp = feed_all(keylog, res)
        assert sess.alerts == [(True, "fatal", "unknown_ca")]
        assert (cp, sp) == (b"", b"")


def test_no_sni(tmp_path, cert):
    res = run_or_skip(str(tmp_path), cert, "TLSv1_3", sni=None)
    sess, _, _ = feed_all(None, res)
    assert sess.sni is None


def test_unsupported_cipher_status(tmp_path, cert):
    res = run_or_skip(str(tmp_path), cert, "TLSv1_2", "ECDHE-RSA-AES128-GCM-SHA256")
    kl = KeyLog.load(res["keylog"])
    # pretend the server picked a suite we do not decrypt (RC4 export) by
    # patching the ServerHello's suite in a copy of the stream
    s = bytearray(res["server"])
    sh = 5 + 4
    sid_len = s[sh + 34]
    pos = sh + 35 + sid_len
    assert s[pos : pos + 2] == b"\xc0\x2f"
    s[pos : pos + 2] = b"\x00\x03"
    sess, cp, sp = feed_all(kl, {"client": res["client"], "server": bytes(s)})
    assert sess.cipher == "TLS_RSA_EXPORT_WITH_RC4_40_MD5"
    assert sess.status == "unsupported-cipher:TLS_RSA_EXPORT_WITH_RC4_40_MD5"
    assert (cp, sp) == (b"", b"")


# --------------------------------------------------------------------------- KeyUpdate
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary not installed")
def test_tls13_key_update(tmp_path, cert):
    """``openssl s_client`` sends KeyUpdate (command ``K``) between two lines."""
    keys = tmp_path / "keys.log"
    port = _free_port()
    srv = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", cert[0], "-key", cert[1]]
        + ["-keylogfile", str(keys), "-tls1_3", "-naccept", "1", "-quiet"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    sent = {True: bytearray(), False: bytearray()}

    def relay() -> None:
        conn, _ = listener.accept()
        for _ in range(100):
            try:
                up = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)

        def pipe(a, b, from_client):
            while data := a.recv(65536):
                sent[from_client] += data
                b.sendall(data)
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        t = threading.Thread(target=pipe, args=(up, conn, False))
        t.start()
        pipe(conn, up, True)
        t.join()
        conn.close()
        up.close()

    th = threading.Thread(target=relay, daemon=True)
    th.start()
    time.sleep(0.3)
    cli = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{listener.getsockname()[1]}", "-tls1_3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for line in (b"hello\n", b"K\n", b"world\n"):
            cli.stdin.write(line)
            cli.stdin.flush()
            time.sleep(0.3)
        cli.stdin.close()
        cli.wait(20)
        srv.stdin.close()
        out = srv.stdout.read()
        srv.wait(20)
        th.join(20)
    finally:
        for p in (cli, srv):
            if p.poll() is None:
                p.kill()
        listener.close()
    assert out == b"hello\nworld\n"
    sess, cp, _ = feed_all(
        KeyLog.load(keys), {"client": bytes(sent[True]), "server": bytes(sent[False])}
    )
    assert sess.status == "ok", sess.anomalies
    assert sess.key_updates == 1
    assert cp == b"hello\nworld\n"
    assert (True, "warning", "close_notify") in sess.alerts


# --------------------------------------------------------------------------- chunking property
try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

_STREAMS: dict[str, dict] = {}


def _stream(kind: str) -> dict:
    if kind not in _STREAMS:
        d = tempfile.mkdtemp(prefix="mysqlwire-tls-")
        c = make_cert(d)
        if kind == "tls10-cbc":
            _STREAMS[kind] = exchange(
                d, c, "TLSv1", "DHE-RSA-AES256-SHA", etm=False, client_msgs=CLIENT_MSGS
            )
        else:
            _STREAMS[kind] = exchange(d, c, "TLSv1_3", client_msgs=CLIENT_MSGS)
        shutil.rmtree(d, ignore_errors=True)
    return _STREAMS[kind]


if given is not None:

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        kind=st.sampled_from(["tls13", "tls10-cbc"]),
        cuts=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=60),
        order=st.lists(st.booleans(), min_size=1, max_size=200),
    )
    def test_any_chunking_and_interleaving(kind, cuts, order):
        res = _stream(kind)
        if res["error"]:
            pytest.skip(res["error"])
        chunks = {}
        for fc in (True, False):
            data, pieces, pos, i = res["client" if fc else "server"], [], 0, 0
            while pos < len(data):
                n = cuts[i % len(cuts)]
                pieces.append(data[pos : pos + n])
                pos += n
                i += 1
            chunks[fc] = pieces
        sess = TlsSession(KeyLog.load(res["keylog"]))
        out, k = [], 0
        while chunks[True] or chunks[False]:
            fc = order[k % len(order)]
            k += 1
            if not chunks[fc]:
                fc = not fc
            out += sess.feed(fc, chunks[fc].pop(0))
        out += sess.finish()
        assert b"".join(p for fc, p in out if fc) == b"".join(CLIENT_MSGS)
        assert b"".join(p for fc, p in out if not fc) == b"world"
        assert sess.status == "ok" and sess.anomalies == []


# --------------------------------------------------------------------------- names / throughput
def test_suite_names_match_scapy_registry():
    """Our IANA names agree with Scapy's cipher-suite registry (oracle)."""
    scapy_suites = pytest.importorskip("scapy.layers.tls.crypto.suites")
    from mysqlwire.tls.suites import CIPHER_SUITES

    theirs = scapy_suites._tls_cipher_suites
    compared = 0
    for code, name in CIPHER_SUITES.items():
        if code in theirs and code not in (0x00FF, 0x5600):
            assert theirs[code] == name, hex(code)
            compared += 1
    assert compared > 100


THROUGHPUT = [
    ("TLSv1_3", None, "TLS 1.3 AES-256-GCM"),
    ("TLSv1_2", "ECDHE-RSA-AES128-GCM-SHA256", "TLS 1.2 AES-128-GCM"),
    ("TLSv1_2", "ECDHE-RSA-CHACHA20-POLY1305", "TLS 1.2 ChaCha20-Poly1305"),
    ("TLSv1_2", "ECDHE-RSA-AES128-SHA256", "TLS 1.2 AES-128-CBC-SHA256 (EtM)"),
    ("TLSv1", "DHE-RSA-AES256-SHA", "TLS 1.0 AES-256-CBC-SHA"),
]


@pytest.mark.parametrize(("pyver", "ciphers", "label"), THROUGHPUT, ids=[t[2] for t in THROUGHPUT])
def test_throughput(tmp_path, cert, pyver, ciphers, label):
    """Decryption speed on a 32 MiB stream fed in 64 KiB chunks (printed)."""
    block = os.urandom(16384)
    msgs = [block] * 2048
    res = run_or_skip(str(tmp_path), cert, pyver, ciphers, etm=True, client_msgs=msgs)
    kl = KeyLog.load(res["keylog"])
    c, s = res["client"], res["server"]
    t0 = time.perf_counter()
    sess = TlsSession(kl)
    got = 0
    for _, p in sess.feed(False, s):
        got += len(p)
    for i in range(0, len(c), 65536):
        for _, p in sess.feed(True, c[i : i + 65536]):
            got += len(p)
    dt = time.perf_counter() - t0
    assert got == 2048 * 16384 + 5
    print(
        f"\n[throughput] {label}: {len(c) / dt / 1e6:.0f} MB/s ({len(c) / 1e6:.1f} MB in {dt:.2f} s)"
    )


# --------------------------------------------------------------------------- script mode
if __name__ == "__main__":
    kw = json.loads(sys.argv[1])
    d = kw.pop("dir")
    cert_paths = make_cert(d, dh_params=False)
    if "client_msgs" in kw:
        kw["client_msgs"] = [bytes.fromhex(m) for m in kw["client_msgs"]]
    r = exchange(d, cert_paths, "TLSv1_3", **kw)
    for key in ("client", "server", "keylog"):
        r[key] = r[key].hex()
    r.pop("session", None)
    r.pop("contexts", None)
    print(json.dumps(r))
