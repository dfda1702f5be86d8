"""The Scapy layer: rdpcap()/sniff() users see MySQL packets decoded with our
grammars, and the session-aware helper gives the same records as dissect."""

from __future__ import annotations

from pathlib import Path

import pytest

scapy_all = pytest.importorskip(
    "scapy.all", reason="scapy is a runtime dependency; install mysqlwire"
)

from mysqlwire.dissect import DissectOptions, iter_connections  # noqa: E402
from mysqlwire.scapy import MySQL, bind_port, dissect_packets  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "lab-samples"


def test_rdpcap_shows_mysql_packets():
    pkts = scapy_all.rdpcap(str(SAMPLES / "mariadb_pymysql_native_ok.pcap"))
    mysql = [p for p in pkts if MySQL in p]
    greeting = mysql[0][MySQL]
    assert greeting.seq == 0 and greeting.kind == "handshake_v10"
    assert greeting.decoded.server_version == b"5.5.5-10.11.19-MariaDB-0+deb12u1"
    assert greeting.length == len(greeting.payload_data)
    resp = mysql[1][MySQL]
    assert resp.kind == "handshake_response41" and resp.decoded.username == b"app"
    assert "MySQL seq=1" in resp.mysummary()
    # building: length is filled in
    raw = bytes(MySQL(seq=3, payload_data=b"\x00\x00\x00\x02\x00\x00\x00"))
    assert raw[:4] == b"\x07\x00\x00\x03"


@pytest.mark.parametrize(
    "name",
    [
        "mariadb_cli_ed25519.pcap",
        "mysql8_mysqlclient_sha2_full_rsa_ok.pcap",
        "lab_connector_change_user_ok.pcap",
    ],
)
def test_session_helper_matches_dissect(name):
    pcap = SAMPLES / name
    ours = [c.to_record() for c in iter_connections(pcap, DissectOptions())]
    via_scapy = [
        c.to_record() for c in dissect_packets(scapy_all.rdpcap(str(pcap)), packets_detail=False)
    ]
    for rec in ours + via_scapy:
        rec.pop("capture")
    assert via_scapy == ours


def test_extra_port_and_sniff_offline():
    pcap = SAMPLES / "mariadb_connector_port3407_ok.pcap"
    bind_port(3407)
    pkts = scapy_all.sniff(offline=str(pcap), session=scapy_all.TCPSession)
    kinds = [p[MySQL].kind for p in pkts if MySQL in p]
    assert "handshake_v10" in kinds and "handshake_response41" in kinds
    # the stateful helper wants the raw segments (it reassembles itself)
    (conn,) = dissect_packets(scapy_all.sniff(offline=str(pcap)), ports=(3407,))
    assert conn.outcome == "ok" and conn.user == "app2"


def test_segments_keep_every_byte_and_chain_packets():
    """Binding our layer must not change what Scapy users get from TCP: every
    payload byte stays in the payload, several MySQL packets chain."""
    from scapy.layers.inet import IP, TCP

    two = b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00" + b"\x01\x00\x00\x03\x0e"
    pkt = IP(bytes(IP(dst="10.0.0.1") / TCP(sport=3306, dport=40000) / two))
    assert bytes(pkt[TCP].payload) == two
    first = pkt[MySQL]
    second = first.payload
    assert isinstance(second, MySQL) and (first.seq, second.seq) == (2, 3)
    assert first.kind == "ok" and bytes(second.payload_data) == b"\x0e"
    for name in ("mariadb_pymysql_native_ok.pcap", "lab_cli_compressed_ok.pcap"):
        for p in scapy_all.rdpcap(str(SAMPLES / name)):
            if TCP in p and IP in p:
                want = bytes(p[IP])[p[IP].ihl * 4 + p[TCP].dataofs * 4 : p[IP].len]
                assert bytes(p[TCP].payload)[: len(want)] == want
