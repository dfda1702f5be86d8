"""Discovery by default: MySQL found on any TCP port from its bytes alone,
connections joined mid-stream, nothing false on other protocols, and a loud
exit 3 when a capture holds no MySQL at all."""

from __future__ import annotations

import csv
import json
import random
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from mysqlwire.cli import cli
from mysqlwire.corpus import Sidecar
from mysqlwire.discover import command_shape, looks_like_greeting, reply_shape
from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.tls import KeyLog
from tests.conftest import LAB_SAMPLES, PUBLIC
from tests.flowgen import Conversation, err, greeting, packet, write

REPO = Path(__file__).resolve().parents[1]
SIDECARS = sorted((REPO / "captures").glob("*/*.toml"))
CATALOG = []
if (PUBLIC / "CATALOG.tsv").is_file():
    with open(PUBLIC / "CATALOG.tsv", newline="") as fh:
        CATALOG = list(csv.DictReader(fh, delimiter="\t"))


def records(path, ports=(), keylog=None) -> list[dict]:
    out = []
    for c in iter_connections(str(path), DissectOptions(ports=tuple(ports), keylog=keylog)):
        rec = c.to_record()
        rec.pop("id")
        out.append(rec)
    return out


def run(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def _oracle_pairs(row) -> set[frozenset]:
    """TCP endpoint pairs tshark decodes as MySQL (given the catalog's ports)."""
    path = PUBLIC / "oracle" / (row["path"].replace("/", "__") + ".tsv")
    pairs = set()
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            src = f"{r['ip.src'] or '[' + r['ipv6.src'] + ']'}:{r['tcp.srcport']}"
            dst = f"{r['ip.dst'] or '[' + r['ipv6.dst'] + ']'}:{r['tcp.dstport']}"
            pairs.add(frozenset((src, dst)))
    return pairs


# ---------------------------------------------------------------- real captures
@pytest.mark.parametrize("row", CATALOG, ids=[r["path"] for r in CATALOG])
def test_public_capture_needs_no_flag_and_has_no_false_connection(row):
    path = PUBLIC / row["path"]
    keys = path.with_suffix(".keys")
    kl = KeyLog.from_file(keys) if keys.is_file() else None
    found = records(path, keylog=kl)
    ports = [int(p) for p in row["mysql_ports"].split(";") if p]
    # the same packets give the same answer whatever port options are used
    assert records(path, ports, keylog=kl) == found
    greeted = [r for r in found if r["protocol_version"] is not None]
    assert len(greeted) == int(row["connections"])
    oracle = _oracle_pairs(row)
    for r in found:
        if frozenset((r["client"], r["server"])) in oracle:
            continue
        # not MySQL to tshark: only a flow on the MySQL port that carried no
        # byte at all (a SYN nobody answered) may be reported
        assert r["server"].endswith(":3306") and r["protocol_version"] is None
        assert not r["midstream"] and r["anomalies"] == [
            "no greeting seen: the server never answered within the capture"
        ]


def test_public_midstream_connections_are_labelled():
    path = PUBLIC / "dexas" / "mysql.pcap"
    if not path.is_file():
        pytest.skip("../shared missing")
    found = records(path)
    mid = [r for r in found if r["midstream"]]
    assert len(mid) == 20 and {r["outcome"] for r in mid} == {"midstream"}
    assert all(r["server"].endswith(":3306") for r in mid)
    res = run("dissect", path)
    assert res.exit_code == 0
    assert res.output.count("joined mid-stream") == 20


@pytest.mark.parametrize("side", SIDECARS, ids=[str(p.relative_to(REPO)) for p in SIDECARS])
def test_corpus_capture_needs_no_flag(side):
    sc = Sidecar(side)
    read = sc.doc.get("read", {})
    kl = KeyLog.from_file(side.parent / read["keylog"]) if read.get("keylog") else None
    pcap = side.parent / sc.doc["capture"]
    found = records(pcap, keylog=kl)
    assert len(found) == len(sc.doc["connection"]) > 0
    assert records(pcap, read.get("ports", []), keylog=kl) == found


def test_shared_lab_samples_need_no_flag():
    pcaps = sorted(LAB_SAMPLES.glob("*.pcap"))
    if not pcaps:
        pytest.skip("../shared missing")
    for p in pcaps:
        found = records(p)
        assert found and not any(r["midstream"] for r in found), p


# ------------------------------------------------------------ shape functions
def test_shapes():
    g = greeting()
    assert looks_like_greeting(g)
    assert not looks_like_greeting(g[:-1])  # not whole
    assert not looks_like_greeting(g[:3] + b"\x01" + g[4:])  # sequence 1
    bad_filler = bytearray(g)
    bad_filler[4 + 1 + 7 + 4 + 8] = 0x41
    assert not looks_like_greeting(bytes(bad_filler))
    assert not looks_like_greeting(greeting(version=b"8.0\x07x"))
    assert looks_like_greeting(err(0, 1130, b"Host 'x' is not allowed to connect", None))
    assert command_shape(packet(0, b"\x03SELECT 1"))
    assert command_shape(packet(0, b"\x01")) and not command_shape(packet(0, b"\x01x"))
    assert not command_shape(packet(1, b"\x03SELECT 1"))
    assert reply_shape(packet(1, b"\x00\x00\x00\x02\x00\x00\x00"))
    assert reply_shape(packet(1, b"\x02"))  # result set: 2 columns
    assert reply_shape(err(1, 1064, b"You have an error", b"42000"))
    assert not reply_shape(err(1, 1064, b"You have an error", None))
    assert not reply_shape(packet(0, b"\x00\x00\x00\x02\x00\x00\x00"))


# ------------------------------------------------------------ synthetic traffic
def _traps(frames: list) -> None:
    """Flows that resemble MySQL at first sight but are not."""
    g = greeting()
    t = 1_700_000_000.0
    n = 0

    def conv(syn=True, port=3307):
        nonlocal t, n
        t += 1
        n += 1
        return Conversation(
            frames, client=("10.1.0.1", 41000 + n), server=("10.1.0.2", port), syn=syn, t0=t
        )

    # HTTP, TLS, DNS-over-TCP, SSH with and without the handshake
    for syn in (True, False):
        conv(syn, 80).say(True, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").say(
            False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        ).fin(True)
        conv(syn, 443).say(True, b"\x16\x03\x01\x00\x2a\x01\x00\x00\x26\x03\x03" + bytes(38)).say(
            False, b"\x16\x03\x03\x00\x2a\x02\x00\x00\x26\x03\x03" + bytes(38)
        )
        conv(syn, 53).say(True, b"\x00\x1d\x12\x34\x01\x00\x00\x01" + bytes(21)).say(
            False, b"\x00\x2d\x12\x34\x81\x80\x00\x01" + bytes(37)
        )
        conv(syn, 22).say(False, b"SSH-2.0-OpenSSH_9.2\r\n").say(True, b"SSH-2.0-x\r\n")
    # greeting-like first bytes that are not a greeting
    conv().say(False, g[:-3])  # cut short, then the client speaks
    conv().say(True, b"hello")
    conv().say(False, g + b"HTTP/1.1 200 OK\r\n\r\n")  # more than a greeting
    conv().say(True, g).say(False, b"\x00" * 20)  # the client sends the "greeting"
    bad = bytearray(g)
    bad[4 + 1 + 7 + 4 + 8] = 0x41  # filler byte not zero
    conv().say(False, bytes(bad))
    conv().say(False, greeting(version=b"8.0\x1b[31m"))
    conv().say(False, packet(0, b"\x0a" + b"8.0.36\x00" + bytes(10)))  # too short
    # a command alone, a reply alone, a command answered by text
    conv(False).say(True, packet(0, b"\x03SELECT 1"))
    conv(False).say(False, packet(1, b"\x00\x00\x00\x02\x00\x00\x00"))
    conv(False).say(True, packet(0, b"\x03SELECT 1")).say(False, b"220 smtp ready\r\n")
    # a binary protocol framed like MySQL (3-byte little-endian length, a zero
    # byte): requests that look like COM_QUERY, answers that look like OK
    for syn in (True, False):
        c = conv(syn, 9000)
        for k in range(6):
            c.say(True, packet(0, b"\x03GET key:%d" % k)).say(False, packet(0, b"\x00" * 9))
    # random bytes behind a greeting-shaped header, and random flows
    rnd = random.Random(15)
    for _ in range(150):
        body = b"\x0a" + bytes(rnd.randrange(256) for _ in range(rnd.randrange(20, 90)))
        conv().say(False, packet(0, body)).say(True, bytes(rnd.randrange(256) for _ in range(40)))
    for _ in range(150):
        c = conv(rnd.random() < 0.5, rnd.randrange(1, 65535))
        for _ in range(rnd.randrange(1, 6)):
            c.say(
                rnd.random() < 0.5, bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 80)))
            )


def test_no_false_connection_on_synthetic_traffic(tmp_path):
    frames: list = []
    _traps(frames)
    pcap = write(tmp_path / "traps.pcap", frames)
    assert records(pcap) == []
    res = run("dissect", pcap)
    assert res.exit_code == 3
    err_lines = [ln for ln in res.stderr.splitlines() if ln.startswith("mysqlwire:")]
    assert len(err_lines) == 1
    assert "no MySQL connection found" in err_lines[0]
    assert "TCP flow(s) seen" in err_lines[0] and "busiest server ports: 3307" in err_lines[0]


def test_synthetic_mysql_found_among_traps_on_any_port(tmp_path):
    frames: list = []
    _traps(frames)
    Conversation(frames, server=("10.9.0.2", 4406), t0=1_600_000_000.0).say(False, greeting()).fin(
        True
    )
    pcap = write(tmp_path / "mixed.pcap", frames)
    (rec,) = records(pcap)
    assert rec["server"] == "10.9.0.2:4406" and rec["server_version"] == "8.0.36"
    assert rec["greeting_plugin"] == "caching_sha2_password" and not rec["midstream"]
    assert records(pcap, ports=(4406,)) == [rec]


# ------------------------------------------------------------ mid-stream
def _midstream(tmp_path, port=3306) -> Path:
    frames: list = []
    c = Conversation(frames, server=("10.0.0.2", port), syn=False)
    c.keepalive(True)  # Linux keep-alive probe first: must not open a 1-byte hole
    c.keepalive(False, 1)  # and a Windows one (1 garbage byte) from the server
    c.say(True, packet(0, b"\x03SELECT 1"))
    c.say(
        False,
        packet(1, b"\x01") + packet(2, b"\x03def" + bytes(20)) + packet(3, b"\xfe\x00\x00\x02\x00"),
    )
    c.keepalive(False, 1)
    c.say(True, packet(0, b"\x01")).fin(True).fin(False)
    # an open connection whose server answers the client's FIN with ERR 1158
    d = Conversation(
        frames, client=("10.0.0.3", 40001), server=("10.0.0.2", port), syn=False, t0=1_700_000_010.0
    )
    d.fin(True)
    d.say(False, err(0, 1158, b"Got an error reading communication packets", b"08S01")).fin(False)
    return write(tmp_path / f"mid{port}.pcap", frames)


@pytest.mark.parametrize("port", [3306, 5123])
def test_midstream_connections(tmp_path, port):
    pcap = _midstream(tmp_path, port)
    a, b = records(pcap)
    for r in (a, b):
        assert r["midstream"] is True and r["outcome"] == "midstream"
        assert r["server"] == f"10.0.0.2:{port}"
        assert r["anomalies"] == []
    assert a["error"] is None
    assert b["error"] == {
        "code": 1158,
        "sqlstate": "08S01",
        "message": "Got an error reading communication packets",
    }
    assert records(pcap, ports=(port,)) == [a, b]
    res = run("dissect", pcap)
    assert res.exit_code == 0, res.output
    assert res.output.count("joined mid-stream") == 2
    assert "joined mid-stream, ERR 1158 (08S01) Got an error reading" in res.output
    js = [json.loads(x) for x in run("dissect", "--format", "jsonl", pcap).stdout.splitlines()]
    assert [x["midstream"] for x in js] == [True, True]
    assert run("diagnose", pcap).exit_code == 0


def test_quit_after_refused_login_is_no_anomaly(tmp_path):
    frames: list = []
    c = Conversation(frames, server=("10.0.0.2", 3310))
    c.say(False, greeting(plugin=b"mysql_native_password"))
    resp = (
        struct.pack("<IIB", 0x000FA68D, 1 << 24, 33)
        + bytes(23)
        + b"app\x00"
        + b"\x14"
        + bytes(range(20))
        + b"mysql_native_password\x00"
    )
    c.say(True, packet(1, resp))
    c.say(False, err(2, 1045, b"Access denied for user 'app'@'x' (using password: YES)", b"28000"))
    c.say(True, packet(0, b"\x01")).fin(True).fin(False)
    (rec,) = records(write(tmp_path / "q.pcap", frames))
    assert rec["outcome"] == "error" and rec["error"]["code"] == 1045
    assert rec["error"]["sqlstate"] == "28000"
    assert rec["anomalies"] == []


# ------------------------------------------------------------ exit status 3
def test_filters_matching_nothing_exit_3():
    pcap = REPO / "captures" / "lab-samples" / "lab_cli_locked.pcap"
    for cmd in ("dissect", "replay", "diagnose"):
        res = run(cmd, "--user", "nobody-here", pcap)
        assert res.exit_code == 3, (cmd, res.output)
        assert "mysqlwire: 0 of 1 connection(s) match --user nobody-here" in res.stderr
        assert "no problem found" not in res.stdout
    res = run("dissect", "--failed", REPO / "captures" / "stories" / "pymysql124_sha2_ok.pcap")
    assert res.exit_code == 3 and "0 of 1 connection(s) match --failed" in res.stderr


def test_every_command_says_nothing_found(tmp_path):
    frames: list = []
    Conversation(frames, server=("10.0.0.2", 8080)).say(True, b"GET / HTTP/1.0\r\n\r\n").say(
        False, b"HTTP/1.0 404 Not Found\r\n\r\n"
    ).fin(True)
    pcap = write(tmp_path / "web.pcap", frames)
    for args in (
        ("dissect",),
        ("dissect", "--format", "json"),
        ("replay",),
        ("diagnose",),
        ("report", "-o", tmp_path / "r.html"),
    ):
        res = run(*args, pcap)
        assert res.exit_code == 3, (args, res.output)
        lines = [ln for ln in res.stderr.splitlines() if "no MySQL connection found" in ln]
        assert lines == [
            f"mysqlwire: {pcap}: no MySQL connection found: 6 frame(s) read, "
            "1 TCP flow(s) seen; busiest server ports: 8080 (1 flow)"
        ], args
    for cmd in ("dissect", "replay", "diagnose", "report"):
        assert "3 nothing examined" in run(cmd, "--help").output


# ------------------------------------------------------------ TLS honesty
def test_tls_without_keys_is_encrypted_not_failed():
    path = PUBLIC / "zeek" / "encrypted.pcap"
    if not path.is_file():
        pytest.skip("../shared missing")
    (rec,) = records(path)
    assert rec["outcome"] == "encrypted" and rec["tls"] is True
    res = run("dissect", path)
    assert res.exit_code == 0
    assert "ENCRYPTED (TLS without keys: login not visible)" in res.output
    assert "INCOMPLETE" not in res.output


# ------------------------------------------------------------ library defaults
def test_api_and_dissector_defaults_find_any_port(tmp_path):
    import mysqlwire
    from mysqlwire.capture import decode_tcp, open_capture
    from mysqlwire.dissect import Dissector

    story = REPO / "captures" / "stories" / "pymysql124_native_greeting_ok.pcap"
    (conn,) = mysqlwire.open(story).connections
    assert conn.server.endswith(":35861") and conn.outcome == "ok" and conn.id == 1
    frames: list = []
    Conversation(frames, server=("10.0.0.9", 6033)).say(False, greeting()).fin(True)
    pcap = write(tmp_path / "g.pcap", frames)
    engine = Dissector()
    for ts, linktype, data, _iface in open_capture(str(pcap)).records():
        seg = decode_tcp(linktype, data)
        if seg is not None:
            engine.add(ts, seg)
    (found,) = engine.drain() + engine.finish()
    assert found.server == "10.0.0.9:6033" and found.server_version == "8.0.36"


def test_split_jobs_give_the_sequential_answer(tmp_path):
    """--jobs N on one capture: mid-stream, on-any-port and not-MySQL flows
    numbered and reported exactly as one process does."""
    frames: list = []
    _traps(frames)
    Conversation(frames, server=("10.9.0.2", 4406), t0=1_600_000_000.0).say(False, greeting()).fin(
        True
    )
    mid = _midstream(tmp_path, 5123)
    pcaps = [write(tmp_path / "mixed.pcap", frames), mid]
    dexas = PUBLIC / "dexas" / "mysql.pcap"
    if dexas.is_file():
        pcaps.append(dexas)
    for pcap in pcaps:
        one = run("dissect", "--format", "jsonl", "--jobs", "1", pcap)
        three = run("dissect", "--format", "jsonl", "--jobs", "3", pcap)
        assert one.exit_code == three.exit_code == 0
        assert one.stdout == three.stdout and one.stdout
        ids = [json.loads(x)["id"] for x in one.stdout.splitlines()]
        assert ids == list(range(1, len(ids) + 1))


def test_midstream_joined_during_a_long_result_set(tmp_path):
    """The capture starts while 60 segments of rows stream from the server:
    the next command and its reply still identify the connection."""
    frames: list = []
    c = Conversation(frames, server=("10.0.0.2", 7000), syn=False)
    rnd = random.Random(3)
    for _ in range(60):
        c.say(False, bytes(rnd.randrange(256) for _ in range(1400)))
    c.say(True, packet(0, b"\x0e"))  # COM_PING
    c.say(False, packet(1, b"\x00\x00\x00\x02\x00\x00\x00"))
    c.fin(True).fin(False)
    (rec,) = records(write(tmp_path / "long.pcap", frames))
    assert rec["midstream"] and rec["server"] == "10.0.0.2:7000" and rec["anomalies"] == []


@pytest.mark.parametrize("probe", [b"", b"\x00"])
def test_keepalive_opening_a_midstream_direction_is_not_a_hole(probe):
    """Mid-stream, each side's first segment is a keep-alive probe (one byte
    below the next sequence number; Linux sends 0 bytes, Windows 1): the
    bytes that follow are delivered whole, no gap, no stray byte."""
    from mysqlwire.capture import Reassembler, TcpSegment
    from tests.pcapgen import ACK, PSH

    c, s = ("10.0.0.1", 40000), ("10.0.0.2", 3306)

    def seg(src, dst, seq, ack, flags, payload=b""):
        return TcpSegment.make(src[0], src[1], dst[0], dst[1], seq, ack, flags, payload, 0)

    events = []

    class Sink:
        def data(self, fi, data, ts):
            events.append(("data", fi, bytes(data)))

        def gap(self, fi, n, ts):
            events.append(("gap", fi, n))

    r = Reassembler(lambda flow: Sink())
    cmd, reply = packet(0, b"\x03SELECT 1"), packet(1, b"\x00" * 7)
    for ts, sg in enumerate(
        [
            seg(c, s, 999, 5000, ACK, probe),  # probes: seq = next - 1
            seg(s, c, 4999, 1000, ACK, probe),
            seg(c, s, 1000, 5000, ACK | PSH, cmd),
            seg(s, c, 5000, 1000 + len(cmd), ACK | PSH, reply),
            seg(c, s, 1000 + len(cmd), 5000 + len(reply), ACK),
        ]
    ):
        r.add(float(ts), sg)
    r.finish()
    assert events == [("data", True, cmd), ("data", False, reply)]
    assert r.gap_bytes == 0


def test_scapy_path_finds_any_port():
    scapy_all = pytest.importorskip("scapy.all")
    from mysqlwire.scapy import dissect_packets

    story = REPO / "captures" / "stories" / "pymysql124_native_greeting_ok.pcap"
    (conn,) = dissect_packets(scapy_all.rdpcap(str(story)))
    assert conn.server.endswith(":35861") and conn.outcome == "ok" and conn.user == "nat"
