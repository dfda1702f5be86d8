"""Command lanes (mysqlwire/capture/lane.py): the capture reader follows a
plain-text command phase itself; whatever it cannot take goes the ordinary
way after the lane's state is handed back.  Nothing in the output may change.

Each scenario below is one connection built to push a lane off its happy
path (commands split over segments or sharing one, retransmissions, reordered
and lost segments, keep-alives, an ERR inside and outside the watched
answers, odd answers, COM_CHANGE_USER after many commands).  The capture is
dissected with lanes (the default) and without any fast lane (an idle timeout
longer than the capture switches both off); the records must be equal,
packets and timestamps included.  A few facts the protocol fixes are also
asserted on their own (which command errors are reported, the change of user,
the lost bytes), and the lanes must actually have taken frames."""

from __future__ import annotations

import struct
import zlib

import pytest

from mysqlwire.capture import open_capture
from mysqlwire.dissect import CaptureSummary, DissectOptions, Dissector, iter_connections
from tests.flowgen import Conversation, err, greeting, packet, write

NO_FAST = DissectOptions(idle_timeout=1e12)

CAPS = 0x00000001 | 0x00000200 | 0x00008000 | 0x00080000  # LONG_PASSWORD PROTOCOL_41 SECURE PLUGIN
OK = b"\x00\x00\x00\x02\x00\x00\x00"


def response(user: bytes = b"app", caps: int = CAPS) -> bytes:
    body = (
        struct.pack("<IIB", caps, 1 << 24, 33)
        + b"\x00" * 23
        + user
        + b"\x00"
        + bytes([20])
        + bytes(range(1, 21))
        + b"mysql_native_password\x00"
    )
    return packet(1, body)


def query(sql: bytes) -> bytes:
    return packet(0, b"\x03" + sql)


def result(rows: int = 3) -> bytes:
    """A text result set: column count, one column, EOF, rows, EOF."""
    out = packet(1, b"\x01")
    out += packet(
        2, b"\x03def\x00\x00\x00\x01a\x00\x0c\x21\x00\x0b\x00\x00\x00\xfd\x00\x00\x00\x00\x00"
    )
    out += packet(3, b"\xfe\x00\x00\x02\x00")
    seq = 4
    for i in range(rows):
        out += packet(seq, bytes([1]) + str(i % 10).encode())
        seq += 1
    out += packet(seq, b"\xfe\x00\x00\x02\x00")
    return out


def login(frames: list, port: int, user: bytes = b"app", caps: int = CAPS) -> Conversation:
    c = Conversation(frames, client=("10.0.0.1", port), t0=1_700_000_000.0 + port)
    c.say(False, greeting(plugin=b"mysql_native_password"))
    c.say(True, response(user, caps))
    c.say(False, packet(2, OK))
    return c


def compressed(seq: int, inner: bytes, *, deflate: bool = True, ulen: int | None = None) -> bytes:
    """One compressed-protocol packet around ``inner`` (stored when not ``deflate``)."""
    body = zlib.compress(inner) if deflate else inner
    size = (len(inner) if deflate else 0) if ulen is None else ulen
    return (
        struct.pack("<I", len(body))[:3] + bytes([seq & 0xFF]) + struct.pack("<I", size)[:3] + body
    )


def compressed_queries(c: Conversation, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        sql = b"SELECT a, b, c FROM t WHERE id=%d AND name LIKE 'x%%'" % i
        c.say(True, compressed(0, query(sql), deflate=i % 2 == 0))
        reply = compressed(1, result(30 + i % 5))
        for k in range(0, len(reply), 200):
            c.say(False, reply[k : k + 200])


def queries(c: Conversation, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        c.say(True, query(b"SELECT a FROM t WHERE id=%d" % i))
        reply = result(40 + i % 7)
        # the answer in MSS-sized pieces (a lane must see only its first)
        for k in range(0, len(reply), 120):
            c.say(False, reply[k : k + 120])


def close(c: Conversation, *, zipped: bool = False) -> None:
    quit_ = packet(0, b"\x01")
    c.say(True, compressed(0, quit_, deflate=False) if zipped else quit_)
    c.fin(True)
    c.fin(False)
    c._frame(True, 0x10)


def build(path) -> dict:
    frames: list = []
    ports = {}

    # plain: many commands, every answer multi-segment
    c = login(frames, 41001)
    queries(c, 30)
    close(c)
    ports["plain"] = 41001

    # an ERR answers the 5th command (inside the watched answers)
    c = login(frames, 41002)
    queries(c, 4)
    c.say(True, query(b"SELECT nope"))
    c.say(False, err(1, 1146, b"Table 'x.nope' doesn't exist", b"42S02"))
    queries(c, 5, 10)
    close(c)
    ports["err5"] = 41002

    # an ERR answers the 12th command (answers are no longer watched)
    c = login(frames, 41003)
    queries(c, 11)
    c.say(True, query(b"SELECT nope"))
    c.say(False, err(1, 1146, b"Table 'x.nope' doesn't exist", b"42S02"))
    queries(c, 3, 20)
    close(c)
    ports["err12"] = 41003

    # commands split over segments, and two sharing one segment
    c = login(frames, 41004)
    queries(c, 9)
    big = query(b"SELECT '" + b"x" * 3000 + b"'")
    c.say(True, big[:1000])
    c.say(True, big[1000:2500])
    c.say(True, big[2500:])
    c.say(False, result(2))
    c.say(True, query(b"SET @a=1") + query(b"SET @b=2"))
    c.say(False, packet(1, OK) + packet(1, OK))
    queries(c, 4, 30)
    close(c)
    ports["split"] = 41004

    # retransmissions (identical and differing), a keep-alive probe
    c = login(frames, 41005)
    queries(c, 10)
    q = query(b"SELECT 1")
    at = c.seq[True]
    c.say(True, q)
    c._frame(True, 0x18, q, seq=at)  # identical copy
    c._frame(True, 0x18, query(b"SELECT 2"), seq=at)  # differing copy
    c.say(False, result(1))
    c.keepalive(True, 1)
    queries(c, 3, 40)
    close(c)
    ports["retrans"] = 41005

    # reordered client segments, then a lost one (acknowledged by the server)
    c = login(frames, 41006)
    queries(c, 10)
    a, b = query(b"SELECT 10"), query(b"SELECT 11")
    at = c.seq[True]
    c._frame(True, 0x18, b, seq=at + len(a))
    c._frame(True, 0x18, a, seq=at)
    c.seq[True] = at + len(a) + len(b)
    c.say(False, result(1))
    lost = query(b"SELECT 12")
    c.seq[True] += len(lost)  # never captured
    c.say(True, query(b"SELECT 13"))
    c.say(False, result(1))
    queries(c, 2, 50)
    close(c)
    ports["lost"] = 41006

    # answers that do not start as expected: seq 2 first, then old bytes
    c = login(frames, 41007)
    queries(c, 2)
    c.say(True, query(b"SELECT odd"))
    c.say(False, packet(2, b"\x01"))
    c.say(False, packet(1, b"\x00\x00\x00\x02\x00\x00\x00"))
    queries(c, 2, 60)
    c.say(True, query(b"SELECT again"))
    back = c.seq[False]
    c.say(False, result(2))
    c._frame(False, 0x18, b"\x00" * 40, seq=back - 40)  # old bytes, before the answer
    queries(c, 6, 70)
    close(c)
    ports["odd"] = 41007

    # an answer whose first packet spans two segments, and the client's next
    # command (answered by an ERR) sent before that packet is complete
    c = login(frames, 41013)
    queries(c, 2)
    c.say(True, query(b"SELECT long_ok"))
    # (the bytes where the second part starts look like a whole packet of
    # sequence 2 up to the ERR: framed from there, the ERR would seem to
    # answer the second command)
    filler = bytearray(b"A" * 300)
    filler[89:93] = bytes([207, 0, 0, 2])
    long_ok = packet(1, b"\x00\x00\x00\x02\x40\x00\x00" + bytes(filler))
    assert len(long_ok) == 311
    c.say(False, long_ok[:100])
    c.say(True, query(b"SELECT nope"))
    c.say(False, long_ok[100:])
    c.say(False, err(1, 1146, b"Table 'x.nope' doesn't exist", b"42S02"))
    queries(c, 3, 100)
    close(c)
    ports["first_packet_split"] = 41013

    # one capture frame delivers two pieces (the second was buffered out of
    # order): a whole command, then the start of a split one; the rest of the
    # split command happens to look like one whole ordinary packet
    c = login(frames, 41014)
    queries(c, 10)
    whole = query(b"SELECT 20")
    split = query(b"SELECT '" + b"z" * 40 + b"'")
    at = c.seq[True]
    head = split[:10]
    tail = packet(0, b"\x03" + b"w" * (len(split) - 10 - 5))  # as long as the rest
    assert len(tail) == len(split) - 10
    c._frame(True, 0x18, head, seq=at + len(whole))  # arrives first, waits
    c._frame(True, 0x18, whole, seq=at)  # fills the hole: both delivered at once
    c.seq[True] = at + len(whole) + len(head)
    c.say(True, tail)
    c.say(False, result(1))
    queries(c, 3, 110)
    close(c)
    ports["stale_request"] = 41014

    # COM_CHANGE_USER after many commands, then more commands and COM_QUIT
    c = login(frames, 41008)
    queries(c, 14)
    cu = b"\x11" + b"other\x00" + bytes([20]) + bytes(range(21, 41)) + b"db\x00"
    cu += struct.pack("<H", 33) + b"mysql_native_password\x00"
    c.say(True, packet(0, cu))
    c.say(False, packet(1, OK))
    queries(c, 12, 80)
    close(c)
    ports["change_user"] = 41008

    # the client pipelines commands before the answers come
    c = login(frames, 41009)
    queries(c, 3)
    for i in range(4):
        c.say(True, query(b"DO %d" % i))
    for _ in range(4):
        c.say(False, packet(1, OK))
    queries(c, 12, 90)
    close(c)
    ports["pipelined"] = 41009

    # the compressed protocol: commands stored and deflated, then commands the
    # lane must leave alone (two packets in one, split over segments, corrupt
    # zlib, an announced size past --max-packet), then more ordinary ones
    c = login(frames, 41010, caps=CAPS | 0x20)
    compressed_queries(c, 14)
    c.say(True, compressed(0, query(b"SET @a=1") + query(b"SET @b=2")))
    c.say(False, compressed(1, packet(1, OK) + packet(1, OK)))
    long = compressed(0, query(b"SELECT '" + b"y" * 2000 + b"'"), deflate=False)
    c.say(True, long[:700])
    c.say(True, long[700:])
    c.say(False, compressed(1, result(2)))
    compressed_queries(c, 3, 20)
    close(c, zipped=True)
    ports["compressed"] = 41010

    c = login(frames, 41011, caps=CAPS | 0x20)
    compressed_queries(c, 10)
    bad = bytearray(compressed(0, query(b"SELECT broken FROM somewhere_far_away")))
    bad[12] ^= 0xFF  # inside the zlib stream
    c.say(True, bytes(bad))
    c.say(False, compressed(1, packet(1, OK)))
    close(c, zipped=True)
    ports["compressed_corrupt"] = 41011

    c = login(frames, 41012, caps=CAPS | 0x20)
    compressed_queries(c, 10)
    c.say(True, compressed(0, query(b"SELECT 1"), ulen=(1 << 24) - 1))  # a lie, past 64 KiB
    c.say(False, compressed(1, packet(1, OK)))
    close(c, zipped=True)
    ports["compressed_bomb"] = 41012

    write(path, frames)
    return ports


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("lanes") / "lanes.pcap"
    return path, build(path)


def recs(path, opts=None) -> dict[int, dict]:
    out = {}
    for conn in iter_connections(path, opts):
        rec = conn.to_record(with_packets=True)
        out[int(rec["client"].rsplit(":", 1)[1])] = rec
    return out


def test_same_records_with_and_without_lanes(capture, monkeypatch):
    path, ports = capture
    from mysqlwire.capture import tcp

    opened = []
    real = tcp.CommandLane

    def counting(*args):
        opened.append(args)
        return real(*args)

    monkeypatch.setattr(tcp, "CommandLane", counting)
    lanes = recs(path)
    assert len(opened) >= len(ports)  # iter_connections does use lanes
    assert any(len(a) > 5 and a[5] for a in opened)  # compressed ones too
    assert set(lanes) == set(ports.values())
    assert lanes == recs(path, NO_FAST)


def test_same_packet_lists_with_and_without_lanes(capture):
    """With the packet list on, command events are needed: the lanes leave
    the first command and COM_QUIT to the ordinary path."""
    path, ports = capture
    with_lanes = recs(path, DissectOptions(with_packets=True))
    assert with_lanes == recs(path, DissectOptions(with_packets=True, idle_timeout=1e12))
    broken = {ports["compressed_corrupt"], ports["compressed_bomb"]}  # not followed to the end
    for port, rec in with_lanes.items():
        kinds = [p["kind"] for p in rec["packets"]]
        assert kinds.count("command") == 1, kinds
        assert kinds.count("quit") == (port not in broken), kinds


def test_protocol_facts_survive_the_lanes(capture):
    path, ports = capture
    r = recs(path)
    assert r[ports["plain"]]["outcome"] == "ok" and r[ports["plain"]]["command_error"] is None
    assert r[ports["err5"]]["command_error"]["code"] == 1146
    assert r[ports["err5"]]["command_error"]["sqlstate"] == "42S02"
    assert r[ports["err12"]]["command_error"] is None  # only the first 8 answers are watched
    cu = r[ports["change_user"]]["change_user"]
    assert [(x["user"], x["outcome"]) for x in cu] == [("other", "ok")]
    # the lost command (4-byte header + 0x03 + "SELECT 12") is reported once
    assert r[ports["lost"]]["anomalies"] == ["client: 14 bytes missing from the capture"]
    assert r[ports["compressed"]]["compressed"] is True
    # what the compressed protocol refuses is still said, once
    (corrupt,) = r[ports["compressed_corrupt"]]["anomalies"]
    assert "corrupt zlib data" in corrupt
    (bomb,) = r[ports["compressed_bomb"]]["anomalies"]
    assert "compressed packet inflates short of its uncompressed length" in bomb
    for name, port in ports.items():
        if name not in ("lost", "compressed_corrupt", "compressed_bomb"):
            assert r[port]["anomalies"] == [], name
        assert r[port]["outcome"] == "ok", name


def test_lanes_take_most_command_frames(capture):
    path, _ports = capture
    reader = open_capture(path)
    engine = Dissector(DissectOptions(), CaptureSummary(path=str(path)))
    from mysqlwire.capture.decode import decode_tcp

    records = reader.records(engine.reasm.fast)
    assert reader.fast_lane
    engine.reasm.lanes = engine.pipe.lanes = True
    yielded = 0
    for ts, linktype, data, _iface in records:
        yielded += 1
        engine.add(ts, decode_tcp(linktype, data))
    engine.finish()
    # without lanes every client command and every watched answer's first
    # segment is decoded; with them, well under half of all frames are
    assert yielded < reader.frames_read * 0.4, (yielded, reader.frames_read)
