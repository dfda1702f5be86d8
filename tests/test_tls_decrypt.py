"""TlsSession on real captures: MySQL/MariaDB logins inside TLS.

For each TLS capture with a key log (lab samples + wireshark-notes MariaDB 5.5),
the TCP streams are reassembled (Scapy, test-only: these captures are small
and clean), the MySQL greeting (server) and SSLRequest (client, 36 bytes) are
skipped, and the rest is fed to ``TlsSession`` in several chunkings and
direction orders. Version/cipher are checked against tshark (oracle) and the
hand-verified values; the decrypted client stream must open with the
HandshakeResponse41 of ``truth.jsonl``'s user, the server stream must carry the
OK/ERR of its outcome. Keyless captures: version/cipher/SNI against tshark.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from mysqlwire.tls import KeyLog, TlsSession
from tests.conftest import LAB_SAMPLES, PUBLIC, require_shared

CLIENT_SSL = 0x0800
CLIENT_PROTOCOL_41 = 0x0200
TSHARK = shutil.which("tshark")


# --------------------------------------------------------------------------- helpers
def tcp_streams(path: Path) -> list[tuple[tuple, bytes, bytes]]:
    """[(client_key, client_bytes, server_bytes)] per TCP connection with a SYN."""
    from scapy.all import IP, TCP, IPv6, PcapNgReader, PcapReader  # test-only oracle

    reader = PcapNgReader if path.suffix == ".pcapng" else PcapReader
    flows: dict[tuple, list] = {}
    with reader(str(path)) as r:
        for p in r:
            if TCP not in p:
                continue
            ip = p[IP] if IP in p else p[IPv6]
            t = p[TCP]
            raw = bytes(t.payload)
            # drop Ethernet padding Scapy hangs below TCP
            iplen = ip.len - ip.ihl * 4 if IP in p else ip.plen
            raw = raw[: max(0, iplen - t.dataofs * 4)]
            flows.setdefault((ip.src, t.sport, ip.dst, t.dport), []).append((t.seq, t.flags, raw))

    def join(segs: list) -> bytes:
        syn = [s for s, f, _ in segs if f & 0x02]
        isn = syn[0] + 1 if syn else min(s for s, _, d in segs if d)
        data = bytearray()
        for seq, _, pl in sorted(segs, key=lambda x: (x[0] - isn) % 2**32):
            off = (seq - isn) % 2**32
            if pl and off <= len(data) < off + len(pl):
                data += pl[len(data) - off :]
        return bytes(data)

    out = []
    for key, segs in flows.items():
        if not any(f & 0x02 and not f & 0x10 for _, f, _ in segs):
            continue  # not the initiator (client) side
        back = flows.get((key[2], key[3], key[0], key[1]), [])
        out.append((key, join(segs), join(back) if back else b""))
    return out


def tls_parts(client: bytes, server: bytes) -> tuple[bytes, bytes]:
    """Bytes after the SSLRequest (client) and after the greeting (server)."""
    greeting = int.from_bytes(server[:3], "little") + 4
    assert client[3] == 1 and int.from_bytes(client[:3], "little") == 32, "SSLRequest expected"
    flags = int.from_bytes(client[4:8], "little")
    assert flags & CLIENT_SSL
    return client[36:], server[greeting:]


def mysql_packets(stream: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos + 4 <= len(stream):
        n = int.from_bytes(stream[pos : pos + 3], "little")
        out.append((stream[pos + 3], stream[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return out


def chunked(data: bytes, how: str, rng: random.Random) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    out, pos = [], 0
    while pos < len(data):
        n = rng.choice((1, 2, 3, 5, 7, 13, 64, 300, 1500, 5000))
        out.append(data[pos : pos + n])
        pos += n
    return out


def run_session(
    keylog: KeyLog | None, c: bytes, s: bytes, how: str = "whole", order: str = "server-first"
) -> tuple[TlsSession, bytes, bytes]:
    rng = random.Random(f"{how}/{order}/{len(c)}/{len(s)}")
    sess = TlsSession(keylog)
    cc, sc = chunked(c, how, rng), chunked(s, how, rng)
    feeds = []
    if order == "server-first":
        feeds = [(False, x) for x in sc] + [(True, x) for x in cc]
    elif order == "client-first":
        feeds = [(True, x) for x in cc] + [(False, x) for x in sc]
    else:  # interleaved at random
        ci = si = 0
        while ci < len(cc) or si < len(sc):
            if si >= len(sc) or (ci < len(cc) and rng.random() < 0.5):
                feeds.append((True, cc[ci]))
                ci += 1
            else:
                feeds.append((False, sc[si]))
                si += 1
    out = []
    for from_client, chunk in feeds:
        got = sess.feed(from_client, chunk)
        assert all(isinstance(p, bytes) and p for _, p in got)
        out += got
    out += sess.finish()
    client_plain = b"".join(p for fc, p in out if fc)
    server_plain = b"".join(p for fc, p in out if not fc)
    return sess, client_plain, server_plain


def tshark_hello(path: Path, keys: Path | None = None) -> list[dict]:
    """tshark's view of each ServerHello / ClientHello (oracle)."""
    if TSHARK is None:
        pytest.skip("tshark not installed")
    cmd = [TSHARK, "-r", str(path)]
    if keys:
        cmd += ["-o", f"tls.keylog_file:{keys}"]
    cmd += [
        "-Y",
        "tls.handshake.type == 1 || tls.handshake.type == 2",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "tcp.stream",
        "-e",
        "tls.handshake.type",
        "-e",
        "tls.handshake.version",
        "-e",
        "tls.handshake.extensions.supported_version",
        "-e",
        "tls.handshake.ciphersuite",
        "-e",
        "tls.handshake.extensions_server_name",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = []
    for line in res.stdout.splitlines():
        stream, htype, ver, sv, suites, sni = line.split("|")
        rows.append(
            {
                "stream": int(stream),
                "types": htype.split(","),
                "version": ver.split(",")[0],
                "supported_versions": sv,
                "ciphersuite": suites,
                "sni": sni or None,
            }
        )
    return rows


def tshark_negotiated(path: Path, keys: Path | None = None) -> tuple[int, int, str | None]:
    rows = tshark_hello(path, keys)
    sh = [r for r in rows if "2" in r["types"]]
    ch = [r for r in rows if "1" in r["types"]]
    assert len(sh) == 1 and len(ch) == 1, rows
    sh = sh[0]
    version = int(sh["supported_versions"] or sh["version"], 16)
    return version, int(sh["ciphersuite"], 16), ch[0]["sni"]


def _truth() -> dict[str, dict]:
    f = LAB_SAMPLES / "truth.jsonl"
    if not f.is_file():
        return {}
    rows = [json.loads(line) for line in f.read_text("utf-8").splitlines() if line.strip()]
    return {r["pcap"]: r for r in rows if r.get("tls") and r.get("keylog")}


TRUTH = _truth()

# capture, key log, user, outcome, hand-verified version / cipher
LAB_CASES = [
    ("lab_cli_tls_keylog_ok.pcap", "TLS 1.3", "TLS_AES_256_GCM_SHA384"),
    ("mariadb_pymysql_tls_keylog_ok.pcap", "TLS 1.3", "TLS_AES_256_GCM_SHA384"),
    ("m8emu_pymysql_sha2_full_tls.pcap", "TLS 1.3", "TLS_AES_256_GCM_SHA384"),
    ("mysql8_cli_sha2_full_tls_keylog_ok.pcap", "TLS 1.3", "TLS_AES_256_GCM_SHA384"),
]
WSN_CASES = [
    ("mysql-ssl.pcapng", "TLS 1.0", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    ("mysql-ssl-larger.pcapng", "TLS 1.0", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
]


def keyed_case(kind: str, name: str) -> tuple[Path, Path, str, str]:
    """(capture, key log, user, outcome)."""
    require_shared()
    if kind == "lab":
        pcap = LAB_SAMPLES / name
        truth = TRUTH.get(name)
        if truth is None or not pcap.is_file():
            pytest.skip(f"{name} or its truth.jsonl line missing from ../shared")
        return pcap, LAB_SAMPLES / truth["keylog"], truth["user"], truth["outcome"]
    pcap = PUBLIC / "wireshark-notes" / name
    if not pcap.is_file():
        pytest.skip(f"{pcap} missing")
    return pcap, pcap.with_suffix(".keys"), "test", "ok"


ALL_KEYED = [("lab", *c) for c in LAB_CASES] + [("wsn", *c) for c in WSN_CASES]
KEYED_IDS = [c[1] for c in ALL_KEYED]


def the_stream(pcap: Path) -> tuple[bytes, bytes]:
    streams = [s for s in tcp_streams(pcap) if s[2]]
    assert len(streams) == 1, [s[0] for s in streams]
    _, c, s = streams[0]
    return tls_parts(c, s)


def check_handshake_response(client_plain: bytes, user: str) -> None:
    seq, payload = mysql_packets(client_plain)[0]
    assert seq == 2, "HandshakeResponse41 follows the SSLRequest (seq 1)"
    flags = int.from_bytes(payload[:4], "little")
    assert flags & CLIENT_SSL and flags & CLIENT_PROTOCOL_41
    name_end = payload.index(b"\0", 32)
    assert payload[32:name_end].decode() == user


def check_outcome(server_plain: bytes, outcome: str) -> None:
    # auth result = first OK (00) or ERR (ff) packet; AuthMoreData (01) and
    # AuthSwitchRequest (fe) may come before it
    results = [(seq, p) for seq, p in mysql_packets(server_plain) if p[:1] in (b"\x00", b"\xff")]
    assert results, "no OK/ERR in the decrypted server stream"
    seq, first = results[0]
    assert seq >= 3
    if outcome == "ok":
        assert first[0] == 0x00
    else:
        assert first[0] == 0xFF


# --------------------------------------------------------------------------- with keys
@pytest.mark.parametrize(("kind", "name", "version", "cipher"), ALL_KEYED, ids=KEYED_IDS)
def test_negotiated_matches_tshark(kind, name, version, cipher):
    pcap, keys, _, _ = keyed_case(kind, name)
    c, s = the_stream(pcap)
    sess, _, _ = run_session(KeyLog.load(keys), c, s)
    ver_code, suite_code, sni = tshark_negotiated(pcap, keys)
    assert (sess.version_code, sess.cipher_code, sess.sni) == (ver_code, suite_code, sni)
    assert (sess.version, sess.cipher) == (version, cipher)
    assert sess.status == "ok" and sess.decrypting
    assert sess.client_random is not None and len(sess.client_random) == 32


@pytest.mark.parametrize("order", ["server-first", "client-first", "interleaved"])
@pytest.mark.parametrize("how", ["whole", "bytes", "random"])
@pytest.mark.parametrize(("kind", "name", "version", "cipher"), ALL_KEYED, ids=KEYED_IDS)
def test_decrypts_login(kind, name, version, cipher, how, order):
    pcap, keys, user, outcome = keyed_case(kind, name)
    c, s = the_stream(pcap)
    sess, client_plain, server_plain = run_session(KeyLog.load(keys), c, s, how, order)
    assert sess.status == "ok", sess.anomalies
    assert sess.anomalies == []
    check_handshake_response(client_plain, user)
    check_outcome(server_plain, outcome)
    # same plaintext whatever the chunking / order
    _, c0, s0 = run_session(KeyLog.load(keys), c, s)
    assert (client_plain, server_plain) == (c0, s0)


@pytest.mark.parametrize(("kind", "name", "version", "cipher"), ALL_KEYED, ids=KEYED_IDS)
def test_plaintext_matches_tshark(kind, name, version, cipher):
    """tshark's decrypted MySQL usernames and our plaintext agree."""
    pcap, keys, user, _ = keyed_case(kind, name)
    if TSHARK is None:
        pytest.skip("tshark not installed")
    res = subprocess.run(
        [TSHARK, "-r", str(pcap), "-o", f"tls.keylog_file:{keys}", "-Y", "mysql.user"]
        + ["-T", "fields", "-e", "mysql.user"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [u for u in res.stdout.split() if u] == [user]


# --------------------------------------------------------------------------- without keys
KEYLESS = [
    "zeek/tls-12-amazon-rds.pcap",
    "zeek/tls-13-amazon-rds.pcap",
    "zeek/encrypted.pcap",
    "arkime/mysql-tls.pcap",
    "ndpi/mysql.pcapng",
]
KEYLESS_EXPECTED = {  # hand-verified with tshark
    "zeek/tls-12-amazon-rds.pcap": ("TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    "zeek/tls-13-amazon-rds.pcap": ("TLS 1.3", "TLS_AES_256_GCM_SHA384"),
    "zeek/encrypted.pcap": ("TLS 1.1", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    "arkime/mysql-tls.pcap": ("TLS 1.1", "TLS_RSA_WITH_AES_256_CBC_SHA"),
    "ndpi/mysql.pcapng": ("TLS 1.3", "TLS_AES_256_GCM_SHA384"),
}


def keyless_stream(rel: str) -> tuple[Path, bytes, bytes]:
    require_shared()
    pcap = PUBLIC / rel
    if not pcap.is_file():
        pytest.skip(f"{pcap} missing")
    for _, c, s in tcp_streams(pcap):
        if len(c) > 36 and c[36] == 0x16 and s:
            return pcap, *tls_parts(c, s)
    raise AssertionError(f"no MySQL-over-TLS connection in {rel}")


@pytest.mark.parametrize("how", ["whole", "random"])
@pytest.mark.parametrize("rel", KEYLESS)
def test_keyless_negotiation(rel, how):
    pcap, c, s = keyless_stream(rel)
    sess, cp, sp = run_session(None, c, s, how, "interleaved")
    ver_code, suite_code, sni = tshark_negotiated(pcap)
    assert (sess.version_code, sess.cipher_code, sess.sni) == (ver_code, suite_code, sni)
    assert (sess.version, sess.cipher) == KEYLESS_EXPECTED[rel]
    assert sess.status == "no-keys" and not sess.decrypting
    assert (cp, sp) == (b"", b"")
    assert sess.anomalies == []
    assert sess.records["client"] >= 1 and sess.records["server"] > 1


def test_keyless_with_unrelated_keylog_is_keys_missing():
    pcap, c, s = keyless_stream("zeek/tls-12-amazon-rds.pcap")
    kl = KeyLog.load(LAB_SAMPLES / "lab_cli_tls_keylog_ok.keys")
    sess, cp, sp = run_session(kl, c, s, "random", "client-first")
    assert sess.status == "keys-missing"
    assert (cp, sp) == (b"", b"")
    assert sess.version == "TLS 1.2"


# --------------------------------------------------------------------------- wrong keys
def _lab(name: str) -> tuple[bytes, bytes, Path]:
    pcap, keys, _, _ = keyed_case("lab", name)
    return (*the_stream(pcap), keys)


def test_other_captures_keylog_is_keys_missing():
    c, s, _ = _lab("lab_cli_tls_keylog_ok.pcap")
    other = KeyLog.load(LAB_SAMPLES / "mariadb_pymysql_tls_keylog_ok.keys")
    sess, cp, sp = run_session(other, c, s)
    assert sess.status == "keys-missing"
    assert not sess.decrypting
    assert (cp, sp) == (b"", b"")
    assert sess.version == "TLS 1.3"  # still described


def test_no_keylog_is_no_keys():
    c, s, _ = _lab("lab_cli_tls_keylog_ok.pcap")
    sess, cp, sp = run_session(None, c, s, "bytes", "client-first")
    assert sess.status == "no-keys"
    assert (cp, sp) == (b"", b"")
    assert (sess.version, sess.cipher) == ("TLS 1.3", "TLS_AES_256_GCM_SHA384")


def _corrupt(text: str, labels: set[str] | None = None) -> str:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and (labels is None or parts[0] in labels):
            secret = parts[2]
            flipped = format(int(secret[-1], 16) ^ 1, "x")
            parts[2] = secret[:-1] + flipped
        out.append(" ".join(parts))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(
    ("kind", "name"),
    [("lab", "lab_cli_tls_keylog_ok.pcap"), ("lab", "m8emu_pymysql_sha2_full_tls.pcap")]
    + [("wsn", "mysql-ssl.pcapng")],
)
def test_corrupted_secret_is_decrypt_failed(kind, name):
    pcap, keys, _, _ = keyed_case(kind, name)
    c, s = the_stream(pcap)
    kl = KeyLog.from_text(_corrupt(keys.read_text()))
    assert len(kl) == 1 and set(kl) == set(KeyLog.load(keys))
    sess, cp, sp = run_session(kl, c, s, "random", "interleaved")
    assert sess.status == "decrypt-failed"
    assert not sess.decrypting
    assert (cp, sp) == (b"", b"")
    assert any("failed to decrypt" in a for a in sess.anomalies)


def test_corrupted_application_secret_fails_after_handshake():
    c, s, keys = _lab("mysql8_cli_sha2_full_tls_keylog_ok.pcap")
    kl = KeyLog.from_text(_corrupt(keys.read_text(), {"SERVER_TRAFFIC_SECRET_0"}))
    sess, cp, sp = run_session(kl, c, s)
    assert sess.status == "decrypt-failed"
    assert sp == b""  # server application data unreadable
    check_handshake_response(cp, "app")  # the client side still decrypts
    assert sess.anomalies and sess.anomalies[0].startswith("server: record")


def test_application_secrets_only():
    """A key log without the handshake secrets still decrypts the application data."""
    c, s, keys = _lab("lab_cli_tls_keylog_ok.pcap")
    text = "".join(line + "\n" for line in keys.read_text().splitlines() if "HANDSHAKE" not in line)
    sess, cp, sp = run_session(KeyLog.from_text(text), c, s, "random", "interleaved")
    assert sess.status == "ok"
    truth = TRUTH["lab_cli_tls_keylog_ok.pcap"]
    check_handshake_response(cp, truth["user"])
    check_outcome(sp, truth["outcome"])
    assert any("handshake records skipped" in a for a in sess.anomalies)


def test_tls12_session_with_only_tls13_secrets_is_keys_missing():
    pcap, keys, _, _ = keyed_case("wsn", "mysql-ssl.pcapng")
    c, s = the_stream(pcap)
    cr = next(iter(KeyLog.load(keys)))
    kl = KeyLog.from_text(f"CLIENT_TRAFFIC_SECRET_0 {cr.hex()} {'11' * 32}\n")
    sess, cp, sp = run_session(kl, c, s)
    assert sess.status == "keys-missing"
    assert any("CLIENT_RANDOM" in a for a in sess.anomalies)


def test_gap_stops_direction():
    c, s, keys = _lab("lab_cli_tls_keylog_ok.pcap")
    sess = TlsSession(KeyLog.load(keys))
    hello_end = 5 + int.from_bytes(c[3:5], "big")  # the ClientHello record
    out = sess.feed(False, s) + sess.feed(True, c[: hello_end + 10])
    sess.gap(True, 50)
    out += sess.feed(True, c[hello_end + 60 :]) + sess.finish()
    assert any("50 bytes missing" in a for a in sess.anomalies)
    assert any(not fc for fc, _ in out)  # server side still decrypted


def test_misaligned_stream_is_reported():
    c, s, keys = _lab("lab_cli_tls_keylog_ok.pcap")
    sess = TlsSession(KeyLog.load(keys))
    sess.feed(True, b"\x20\x00\x00\x01" + c)  # dissector handed the SSLRequest header too
    assert any("not a TLS record" in a for a in sess.anomalies)
    assert sess.client_random is None


def test_truncated_stream_is_reported():
    c, s, keys = _lab("lab_cli_tls_keylog_ok.pcap")
    sess = TlsSession(KeyLog.load(keys))
    sess.feed(False, s)
    sess.feed(True, c[:-3])
    sess.finish()
    assert any("stream ends inside a TLS record" in a for a in sess.anomalies)


def test_repr_has_no_secrets():
    c, s, keys = _lab("lab_cli_tls_keylog_ok.pcap")
    kl = KeyLog.load(keys)
    sess, _, _ = run_session(kl, c, s)
    text = repr(sess) + repr(kl) + str(kl) + " ".join(sess.anomalies)
    for line in keys.read_text().splitlines():
        if line and not line.startswith("#"):
            assert line.split()[2] not in text.lower()
