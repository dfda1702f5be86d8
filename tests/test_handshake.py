"""The sans-I/O state machine: transitions, ambiguous first bytes, chunking.

Streams are fed whole, one byte at a time and in odd chunks (TCP may segment
anywhere); the events must be the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mysqlwire.capture import Reassembler, decode_tcp, open_capture
from mysqlwire.handshake import AUTH, CLOSED, COMMAND, NEED_DATA, Handshake
from mysqlwire.protocol import (
    CLIENT_MULTI_FACTOR_AUTHENTICATION,
    CLIENT_PLUGIN_AUTH,
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
    CLIENT_PROTOCOL_41,
    CLIENT_SECURE_CONNECTION,
    CLIENT_SSL,
    build,
)
from mysqlwire.protocol.framing import frame

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "captures" / "lab-samples"


def _chunks(pcap: Path, port: int = 3306) -> list[tuple[str, bytes]]:
    """The capture's first connection as time-ordered (sender, bytes) chunks."""
    out: list[tuple[str, bytes]] = []

    class Sink:
        def __init__(self, flow):
            self.server_is_initiator = flow.initiator[1] == port

        def data(self, from_initiator, data, ts):
            sender = "server" if from_initiator == self.server_is_initiator else "client"
            out.append((sender, bytes(data)))

        def gap(self, *a):
            raise AssertionError("lab captures have no gaps")

        def closed(self, *a):
            pass

    first = []

    def on_flow(flow):
        if first:
            return None
        first.append(flow)
        return Sink(flow)

    r = Reassembler(on_flow)
    for f in open_capture(pcap):
        seg = decode_tcp(f.linktype, f.data)
        if seg is not None:
            r.add(f.ts, seg)
    r.finish()
    return out


def _events(chunks, split=None):
    hs = Handshake()
    evs = []
    for sender, data in chunks:
        pieces = (
            [data] if split is None else [data[i : i + split] for i in range(0, len(data), split)]
        )
        for p in pieces:
            hs.receive_data(sender, p)
            while (ev := hs.next_event()) is not NEED_DATA:
                evs.append((ev.sender, ev.kind, ev.seq, ev.plugin, ev.payload))
        if hs.tls:
            break
    return hs, evs


PLAIN = [p for p in sorted(SAMPLES.glob("*.pcap")) if "tls" not in p.name and "3407" not in p.name]


@pytest.mark.parametrize("pcap", PLAIN, ids=[p.stem for p in PLAIN])
def test_chunking_does_not_change_events(pcap):
    chunks = _chunks(pcap)
    _, whole = _events(chunks)
    assert whole and whole[0][1] in ("greeting", "err")
    for split in (1, 3, 7):
        _, evs = _events(chunks, split)
        assert evs == whole, f"split={split}"
    # trailing junk after the client closes is reported, never raised
    hs = Handshake()
    for sender, data in chunks + [("client", b"\x00\x01\x02")]:
        hs.receive_data(sender, data)
    hs.eof()
    while hs.next_event() is not NEED_DATA:
        pass


def test_lab_exchanges_decided_by_state():
    _, evs = _events(_chunks(SAMPLES / "mariadb_pymysql_oldpw.pcap"))
    kinds = [e[1] for e in evs]
    assert kinds[:3] == ["greeting", "handshake_response", "old_auth_switch_request"]
    assert evs[2][3] == "mysql_old_password"
    _, evs = _events(_chunks(SAMPLES / "mysql8_pymysql_sha2_fast_ok.pcap"))
    assert [e[1] for e in evs[:4]] == ["greeting", "handshake_response", "auth_more_data", "ok"]
    assert evs[2][4] == b"\x01\x03"
    _, evs = _events(_chunks(SAMPLES / "lab_cli_dual_native_ok.pcap"))
    switches = [e[3] for e in evs if e[1] == "auth_switch_request"]
    assert switches == ["client_ed25519", "mysql_native_password"]
    hs, evs = _events(_chunks(SAMPLES / "lab_connector_change_user_ok.pcap"))
    kinds = [e[1] for e in evs]
    i = kinds.index("com_change_user")
    assert kinds[i + 1 : i + 4] == ["auth_switch_request", "auth_data", "ok"]
    assert hs.state == COMMAND and hs.exchange == 1
    hs, evs = _events(_chunks(SAMPLES / "lab_cli_compressed_ok.pcap"))
    assert hs.compressed and "anomaly" not in [e[1] for e in evs]


NONCE = b"ABCDEFGHIJKLMNOPQRST"


def _greeting(mariadb: bool = False, plugin: bytes = b"caching_sha2_password") -> bytes:
    caps = (
        CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH
        | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    )
    caps |= CLIENT_SSL | CLIENT_MULTI_FACTOR_AUTHENTICATION
    if not mariadb:
        caps |= 1
    payload = build(
        "handshake_v10",
        dict(
            protocol_version=10,
            server_version=b"5.5.5-10.11.6-MariaDB" if mariadb else b"8.0.36",
            connection_id=7,
            auth_plugin_data_part_1=NONCE[:8],
            filler=0,
            capability_flags_lower=caps & 0xFFFF,
            character_set=45,
            status_flags=2,
            capability_flags_upper=caps >> 16,
            auth_plugin_data_len=21,
            reserved=b"\x00" * 6,
            mariadb_ext_caps=0,
            auth_plugin_data_part_2=NONCE[8:] + b"\x00",
            auth_plugin_name=plugin,
            auth_plugin_name_terminated=True,
        ),
    )
    return frame(payload, 0)


def _response(caps: int, plugin: bytes, auth: bytes, seq: int = 1) -> bytes:
    payload = build(
        "handshake_response41",
        dict(
            client_flag=caps,
            max_packet_size=1 << 24,
            character_set=45,
            filler=b"\x00" * 23,
            username=b"u",
            auth_response=auth,
            database=None,
            database_terminated=None,
            client_plugin=plugin,
            client_plugin_terminated=True,
            connect_attrs=None,
            zstd_compression_level=None,
        ),
    )
    return frame(payload, seq)


CLIENT_CAPS = (
    CLIENT_PROTOCOL_41
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
)


def _run(*items):
    hs = Handshake()
    evs = []
    for sender, data in items:
        hs.receive_data(sender, data)
        while (ev := hs.next_event()) is not NEED_DATA:
            evs.append(ev)
    return hs, evs


def test_0x02_is_next_factor_only_for_mysql_with_mfa():
    nf = frame(b"\x02authentication_fido_client\x00" + b"x" * 10, 2)
    hs, evs = _run(
        ("server", _greeting()),
        (
            "client",
            _response(
                CLIENT_CAPS | CLIENT_MULTI_FACTOR_AUTHENTICATION,
                b"caching_sha2_password",
                b"\x11" * 32,
            ),
        ),
        ("server", nf),
    )
    assert evs[-1].kind == "auth_next_factor" and hs.plugin == "authentication_fido_client"
    # the same byte from a MariaDB server is dialog data ("ask, echo on")
    switch = frame(b"\xfedialog\x00\x04Password: ", 2)
    question = frame(b"\x02OTP code: ", 4)
    hs, evs = _run(
        ("server", _greeting(mariadb=True, plugin=b"mysql_native_password")),
        (
            "client",
            _response(
                CLIENT_CAPS | CLIENT_MULTI_FACTOR_AUTHENTICATION,
                b"mysql_native_password",
                b"\x11" * 20,
            ),
        ),
        ("server", switch),
        ("client", frame(b"pw\x00", 3)),
        ("server", question),
    )
    assert [e.kind for e in evs[2:]] == ["auth_switch_request", "auth_data", "server_plugin_data"]
    assert hs.plugin == "dialog" and hs.state == AUTH
    # and without the MFA capability it is plugin data even from MySQL
    hs, evs = _run(
        ("server", _greeting()),
        ("client", _response(CLIENT_CAPS, b"caching_sha2_password", b"\x11" * 32)),
        ("server", nf),
    )
    assert evs[-1].kind == "server_plugin_data"


def test_0xfe_length_decides_old_switch():
    hs, evs = _run(
        ("server", _greeting(plugin=b"mysql_native_password")),
        ("client", _response(CLIENT_CAPS, b"mysql_native_password", b"\x11" * 20)),
        ("server", frame(b"\xfe", 2)),
    )
    assert evs[-1].kind == "old_auth_switch_request" and hs.plugin == "mysql_old_password"


def test_err_ends_login_and_seq_gaps_are_anomalies():
    err = frame(b"\xff\x15\x04#28000Access denied", 2)
    hs, evs = _run(
        ("server", _greeting()),
        ("client", _response(CLIENT_CAPS, b"caching_sha2_password", b"\x11" * 32)),
        ("server", err),
    )
    assert evs[-1].kind == "err" and int(evs[-1].fields.error_code) == 1045 and hs.state == CLOSED
    hs, evs = _run(
        ("server", _greeting()),
        ("client", _response(CLIENT_CAPS, b"caching_sha2_password", b"\x11" * 32, seq=5)),
    )
    assert any(e.kind == "anomaly" and "sequence id 5, expected 1" in e.detail for e in evs)


def test_ssl_request_hands_over_the_stream():
    ssl = frame(
        build(
            "ssl_request",
            dict(
                client_flag=CLIENT_CAPS | CLIENT_SSL,
                max_packet_size=1 << 24,
                character_set=45,
                filler=b"\x00" * 23,
            ),
        ),
        1,
    )
    hello = b"\x16\x03\x01\x00\x05hello"
    hs, evs = _run(("server", _greeting()), ("client", ssl + hello))
    assert evs[-1].kind == "ssl_request" and hs.tls
    assert hs.take_tls_bytes("client") == hello
    assert hs.take_tls_bytes("server") == b""
    # decrypted plaintext continues at seq 2
    hs.receive_data(
        "client", _response(CLIENT_CAPS | CLIENT_SSL, b"caching_sha2_password", b"\x11" * 32, seq=2)
    )
    ev = hs.next_event()
    assert ev.kind == "handshake_response" and ev.seq == 2


def test_pre_greeting_error_and_garbage():
    hs, evs = _run(
        (
            "server",
            frame(b"\xffj\x04Host '10.0.0.9' is not allowed to connect to this MariaDB server", 0),
        )
    )
    assert (
        evs[0].kind == "err"
        and int(evs[0].fields.error_code) == 1130
        and evs[0].fields.sql_state is None
    )
    hs, evs = _run(("server", frame(b"\x07not a greeting", 0)), ("client", b"\x00" * 50))
    assert evs[0].kind == "anomaly" and hs.state == "BROKEN"
    # hostile length: a 16 MiB claim is buffered only up to max_packet
    hs = Handshake(max_packet=1024)
    hs.receive_data("server", b"\xff\xff\xff\x00" + b"A" * 5000)
    ev = hs.next_event()
    assert ev.kind == "anomaly" and hs.state == "BROKEN"


@pytest.mark.parametrize("first", [0x00, 0x02, 0x03, 0x7F])
def test_raw_ed25519_nonce_is_data_whatever_its_first_byte(first):
    """client_ed25519 named in the HandshakeResponse with an empty answer: the MariaDB
    server sends its 32-byte nonce raw (escaping only 01/FE/FF), so even a nonce starting
    with 00 (an OK's byte) is the plugin's data -- the plugin says its data is due."""
    nonce = bytes([first]) + bytes(range(40, 71))
    hs, evs = _run(
        ("server", _greeting(mariadb=True, plugin=b"mysql_native_password")),
        ("client", _response(CLIENT_CAPS, b"client_ed25519", b"")),
        ("server", frame(nonce, 2)),
        ("client", frame(b"\x55" * 64, 3)),
        ("server", frame(b"\x00\x00\x00\x02\x00\x00\x00", 4)),
    )
    kinds = [e.kind for e in evs]
    assert kinds == ["greeting", "handshake_response", "server_plugin_data", "auth_data", "ok"]
    assert evs[2].payload == nonce and hs.state == COMMAND


def test_escaped_ed25519_nonce_and_err_while_nonce_due():
    nonce = b"\x01" + bytes(range(40, 71))
    hs, evs = _run(
        ("server", _greeting(mariadb=True, plugin=b"mysql_native_password")),
        ("client", _response(CLIENT_CAPS, b"client_ed25519", b"")),
        ("server", frame(b"\x01" + nonce, 2)),  # escaped: 01 + data
    )
    assert evs[-1].kind == "auth_more_data" and bytes(evs[-1].fields.data) == nonce
    hs, evs = _run(
        ("server", _greeting(mariadb=True, plugin=b"mysql_native_password")),
        ("client", _response(CLIENT_CAPS, b"client_ed25519", b"")),
        ("server", frame(b"\xff\x15\x04#28000Access denied", 2)),
    )
    assert evs[-1].kind == "err" and hs.state == CLOSED
