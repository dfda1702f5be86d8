"""COM_CHANGE_USER that the client abandons (#16.4), end to end: a synthetic
capture through dissect's follower, replay and diagnose, and the CLI.

mysqlnd (PHP) has no client_ed25519: asked to switch during a change-user it
sends COM_QUIT (sequence restarted at 0) and closes.  That COM_QUIT is no
ed25519 answer: replay must not call the right password a mismatch, and the
change-user must get an error finding of its own.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from mysqlwire.auth.native import scramble
from mysqlwire.cli import cli
from mysqlwire.diagnose import diagnose_connections
from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.protocol import (
    CLIENT_CONNECT_ATTRS,
    CLIENT_PLUGIN_AUTH,
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
    CLIENT_PROTOCOL_41,
    CLIENT_SECURE_CONNECTION,
    build,
)
from mysqlwire.protocol.framing import frame
from mysqlwire.replay import Secrets

from .pcapgen import ACK, FIN, PSH, SYN, tcp_frame, write_pcap

NONCE = b"ABCDEFGHIJKLMNOPQRST"
CU_NONCE = b"abcdefghijklmnopqrst"
CAPS = (
    CLIENT_PROTOCOL_41
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT_CONNECT_ATTRS
)


def _greeting() -> bytes:
    payload = build(
        "handshake_v10",
        dict(
            protocol_version=10,
            server_version=b"5.5.5-10.11.6-MariaDB",
            connection_id=7,
            auth_plugin_data_part_1=NONCE[:8],
            filler=0,
            capability_flags_lower=(CAPS | 0x800) & 0xFFFF,
            character_set=45,
            status_flags=2,
            capability_flags_upper=(CAPS | 0x800) >> 16,
            auth_plugin_data_len=21,
            reserved=b"\x00" * 6,
            mariadb_ext_caps=0,
            auth_plugin_data_part_2=NONCE[8:] + b"\x00",
            auth_plugin_name=b"mysql_native_password",
            auth_plugin_name_terminated=True,
        ),
    )
    return frame(payload, 0)


def _response(user: bytes, auth: bytes) -> bytes:
    payload = build(
        "handshake_response41",
        dict(
            client_flag=CAPS,
            max_packet_size=1 << 24,
            character_set=45,
            filler=b"\x00" * 23,
            username=user,
            auth_response=auth,
            database=None,
            database_terminated=None,
            client_plugin=b"mysql_native_password",
            client_plugin_terminated=True,
            connect_attrs=[
                {"key": b"_client_name", "value": b"mysqlnd"},
                {"key": b"_client_version", "value": b"mysqlnd 8.2.7"},
            ],
            zstd_compression_level=None,
        ),
    )
    return frame(payload, 1)


def _change_user(user: bytes, auth: bytes) -> bytes:
    payload = (
        b"\x11"
        + user
        + b"\x00"
        + bytes([len(auth)])
        + auth
        + b"\x00"  # no database
        + (45).to_bytes(2, "little")
        + b"mysql_native_password\x00"
    )
    return frame(payload, 0)


def _write(path, talk):
    """talk: [(sender, bytes)] in time order; then the client closes."""
    c, s = ("10.0.0.1", 40000), ("10.0.0.2", 3306)
    cseq, sseq, t = 1000, 5000, 1_700_000_000.0
    frames = [
        (t, tcp_frame(*c, *s, cseq, 0, SYN)),
        (t + 1e-4, tcp_frame(*s, *c, sseq, cseq + 1, SYN | ACK)),
        (t + 2e-4, tcp_frame(*c, *s, cseq + 1, sseq + 1, ACK)),
    ]
    cseq += 1
    sseq += 1
    for sender, data in talk:
        t += 0.001
        if sender == "client":
            frames.append((t, tcp_frame(*c, *s, cseq, sseq, PSH | ACK, data)))
            cseq += len(data)
        else:
            frames.append((t, tcp_frame(*s, *c, sseq, cseq, PSH | ACK, data)))
            sseq += len(data)
    frames.append((t + 0.001, tcp_frame(*c, *s, cseq, sseq, FIN | ACK)))
    frames.append((t + 0.0011, tcp_frame(*s, *c, sseq, cseq + 1, FIN | ACK)))
    write_pcap(path, frames)


def _mysqlnd_abandons_change_user(path):
    _write(
        path,
        [
            ("server", _greeting()),
            ("client", _response(b"app", scramble(b"app-pw", NONCE))),
            ("server", frame(b"\x00\x00\x00\x02\x00\x00\x00", 2)),
            ("client", _change_user(b"edu", scramble(b"ed-pw", NONCE))),
            ("server", frame(b"\xfeclient_ed25519\x00" + CU_NONCE + CU_NONCE[:12], 1)),
            ("client", frame(b"\x01", 0)),  # COM_QUIT: sequence restarted
        ],
    )


def test_com_quit_during_change_user_is_no_answer(tmp_path):
    pcap = tmp_path / "mysqlnd_cu.pcap"
    _mysqlnd_abandons_change_user(pcap)
    (conn,) = list(iter_connections(str(pcap), DissectOptions(ports=(3306,))))
    cu = conn.exchanges[1]
    assert [s.kind for s in cu.steps] == ["com_change_user", "auth_switch_request"]
    assert cu.outcome == "incomplete"
    assert not [a for a in conn.anomalies if "sequence id 0" in a]
    secrets = Secrets(by_user={"app": b"app-pw", "edu": b"ed-pw"})
    diagnose_connections([conn], secrets)
    assert conn.extra["verdict"]["verdict"] == "PROOF_MATCHES"
    (cuv,) = conn.extra["change_user_verdicts"]
    assert cuv["verdict"] != "PROOF_MISMATCH", cuv  # the right password is not "wrong"
    diag = conn.extra["diagnosis"]
    errors = [d for d in diag if d["severity"] == "error"]
    assert [d["code"] for d in errors] == ["CLIENT_LACKS_PLUGIN"], diag
    assert errors[0]["title"].startswith("COM_CHANGE_USER #1 (user 'edu')")
    assert "client_ed25519" in errors[0]["title"] and "mysqlnd" in errors[0]["title"]
    assert "PHP mysqlnd has no client_ed25519" in errors[0]["fix"]
    assert "WRONG_PASSWORD" not in [d["code"] for d in diag]


def test_text_shows_each_exchanges_verdict(tmp_path):
    pcap = tmp_path / "mysqlnd_cu.pcap"
    _mysqlnd_abandons_change_user(pcap)
    pw = tmp_path / "secrets.json"
    pw.write_text(json.dumps({"app": "app-pw", "edu": "ed-pw"}))
    res = CliRunner().invoke(
        cli, ["diagnose", str(pcap), "--secrets", str(pw), "--no-color"], catch_exceptions=False
    )
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    verdicts = [x for x in lines if x.strip().startswith("verdict")]
    assert any("login" in x and "PROOF_MATCHES" in x for x in verdicts), res.output
    assert any("COM_CHANGE_USER #1" in x for x in verdicts), res.output


def test_failed_change_user_proof_is_shown_next_to_the_logins(tmp_path):
    from .conftest import REPO

    pcap = REPO / "captures" / "lab" / "mysqlclient_change_user_wrong.pcap"
    pw = tmp_path / "secrets.json"
    pw.write_text(json.dumps({"app": "Tr0ub4dor&3", "reporter": "Rep0rt-pw"}))
    res = CliRunner().invoke(
        cli,
        ["diagnose", str(pcap), "--port", "37741", "--secrets", str(pw), "--no-color"],
        catch_exceptions=False,
    )
    assert res.exit_code == 1, res.output
    out = res.output
    assert "verdict   login: PROOF_MATCHES" in out, out
    assert "verdict   COM_CHANGE_USER #1: PROOF_MISMATCH" in out, out
    assert "[error] WRONG_PASSWORD COM_CHANGE_USER #1 (user 'reporter')" in out
