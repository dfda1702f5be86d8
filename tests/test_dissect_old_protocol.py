"""Protocol 9 greeting + HandshakeResponse320 (MySQL 3.22 era): dissected and
replayed with scramble323 (no such capture exists in the corpus, so it is built)."""

from __future__ import annotations

from mysqlwire.auth import old
from mysqlwire.dissect import dissect
from mysqlwire.protocol import build
from mysqlwire.protocol.framing import frame
from mysqlwire.replay import Secrets, replay_connection
from tests.pcapgen import pcap_with_streams


def test_v9_greeting_and_320_response(tmp_path):
    nonce = b"ABCDEFGH"
    proof = old.scramble323(b"oldie", nonce)
    v9 = frame(
        build(
            "handshake_v9",
            dict(protocol_version=9, server_version=b"3.22.32", connection_id=5, scramble=nonce),
        ),
        0,
    )
    resp = frame(
        build(
            "handshake_response320",
            dict(
                client_flag=0,
                max_packet_size=0xFFFFFF,
                username=b"old",
                auth_response=proof,
                database=None,
            ),
        ),
        1,
    )
    ok = frame(b"\x00\x00\x00\x02\x00", 2)
    path = tmp_path / "v9.pcap"
    pcap_with_streams(path, [(v9, resp + b"")])
    (conn,) = dissect(path)
    rec = conn.to_record()
    assert (rec["protocol_version"], rec["server_version"], rec["user"]) == (9, "3.22.32", "old")
    assert rec["client_plugin"] is None and rec["final_plugin"] == "mysql_old_password"
    assert replay_connection(conn, Secrets(password="oldie")).verdict == "PROOF_MATCHES"
    assert replay_connection(conn, Secrets(password="young")).verdict == "PROOF_MISMATCH"
    pcap_with_streams(path, [(v9 + ok, resp)])
    assert dissect(path)[0].anomalies  # an OK before the response is out of order
