"""``mysqlwire serve`` against hostile clients (#20.3): packet limits before and after the
login, a compressed zlib bomb (bounded, inflated off the event loop), a per-connection
memory cap, control characters in log fields, slowloris, and the secret files it writes.

Raw-socket clients build every packet here; no timing is asserted: the proof that the
event loop is free is that other clients log in while hostile ones are still connected.
"""

from __future__ import annotations

import logging
import socket
import stat
import threading
import zlib

import pytest

from mysqlwire.auth import native
from mysqlwire.protocol import build, parse
from mysqlwire.protocol.framing import PacketReader, frame
from mysqlwire.serve import ServerConfig, run_in_thread
from mysqlwire.serve import connection as serve_connection

PW = "Native-Pass-2"
CAPS = 0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x0020_0000  # 41, secure conn, plugin auth, lenenc
COMPRESS = 0x0000_0020


def _cfg(**kw) -> ServerConfig:
    accounts = {"nat": {"plugin": "mysql_native_password", "password": PW}}
    return ServerConfig(
        port=0, accounts=accounts, tls=False, greeting_plugin="mysql_native_password", **kw
    )


class Raw:
    """A hand-made MySQL client on a plain socket."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.reader = PacketReader()
        self.pending: list[bytes] = []
        self.compressed = False
        self.cbuf = b""
        greeting = self.read()
        self.nonce = bytes(parse("handshake_v10", greeting).nonce)

    def read(self) -> bytes:
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            if self.compressed:  # 7-byte header: length, seq, inflated length (0: stored)
                self.cbuf += data
                data = b""
                while len(self.cbuf) >= 7:
                    clen = int.from_bytes(self.cbuf[:3], "little")
                    ulen = int.from_bytes(self.cbuf[4:7], "little")
                    if len(self.cbuf) < 7 + clen:
                        break
                    body, self.cbuf = self.cbuf[7 : 7 + clen], self.cbuf[7 + clen :]
                    data += zlib.decompress(body) if ulen else body
            self.pending += [p.payload for p in self.reader.feed(data)]
        return self.pending.pop(0)

    def read_until_closed(self) -> list[bytes]:
        out = []
        try:
            while True:
                out.append(self.read())
        except (ConnectionError, OSError):
            return out

    def login(self, user: str = "nat", password: str = PW, caps: int = CAPS) -> bytes:
        payload = build(
            "handshake_response41",
            dict(
                client_flag=caps,
                max_packet_size=1 << 24,
                character_set=45,
                filler=b"\x00" * 23,
                username=user.encode(),
                auth_response=native.scramble(password.encode(), self.nonce),
                database=None,
                database_terminated=None,
                client_plugin=b"mysql_native_password",
                client_plugin_terminated=True,
                connect_attrs=None,
                zstd_compression_level=None,
            ),
        )
        self.sock.sendall(frame(payload, 1))
        answer = self.read()
        self.compressed = bool(caps & COMPRESS) and answer[:1] == b"\x00"
        return answer

    def close(self) -> None:
        self.sock.close()


def _err_code(payload: bytes) -> int | None:
    return int.from_bytes(payload[1:3], "little") if payload[:1] == b"\xff" else None


# ------------------------------------------------------------------ packet limits
def test_packet_limit_before_auth_refuses_without_reading_the_payload():
    with run_in_thread(_cfg()) as srv:
        c = Raw(srv.port)
        # twelve 16 MiB continuation chunks announced: refused at the first header
        c.sock.sendall(b"\xff\xff\xff\x01" + b"\x00" * 1000)
        got = c.read_until_closed()
        c.close()
        assert [_err_code(p) for p in got] == [1153]
        rec = srv.last()
        ev = [e for e in rec.events if e.kind == "packet-too-large"]
        assert ev and ev[0].detail["limit"] == 64 * 1024 and ev[0].detail["size"] == 0xFFFFFF
        # a HandshakeResponse just under the limit is still read (and judged)
        c = Raw(srv.port)
        assert c.login()[:1] == b"\x00"
        c.close()


def test_packet_limit_after_auth_is_the_larger_one():
    with run_in_thread(_cfg(max_packet_before_auth=1024, max_packet=256 * 1024)) as srv:
        c = Raw(srv.port)
        assert c.login()[:1] == b"\x00"
        # 100 KB COM_QUERY: over the pre-auth limit, under the post-auth one
        c.sock.sendall(frame(b"\x03SELECT 1 /*" + b"x" * 100_000 + b"*/", 0))
        assert c.read()[:1] in (b"\x01", b"\x00")  # a result set (column count) or OK
        c.pending.clear()
        c.close()
        c = Raw(srv.port)
        assert c.login()[:1] == b"\x00"
        c.sock.sendall(b"\x00\x00\x08\x00")  # 512 KiB announced
        assert [_err_code(p) for p in c.read_until_closed()] == [1153]
        c.close()


# ------------------------------------------------------------------ compression
def _compressed(inner: bytes, seq: int, ulen: int | None = None) -> bytes:
    body = zlib.compress(inner)
    ulen = len(inner) if ulen is None else ulen
    return len(body).to_bytes(3, "little") + bytes([seq]) + ulen.to_bytes(3, "little") + body


def test_zlib_bomb_is_bounded_and_inflated_off_the_event_loop(monkeypatch):
    threads: list[str] = []
    real = serve_connection.inflate_bounded

    def spy(body, limit):
        threads.append(threading.current_thread().name)
        return real(body, limit)

    monkeypatch.setattr(serve_connection, "inflate_bounded", spy)
    with run_in_thread(_cfg(max_packet=1024 * 1024)) as srv:
        bomb = Raw(srv.port)
        assert bomb.login(caps=CAPS | COMPRESS)[:1] == b"\x00"
        # 16 MiB of zeros (~16 KB compressed) whose header claims 1000 bytes: refused
        # after inflating at most max_packet + 1 bytes
        zeros = frame(b"\x03" + b"\x00" * (16 * 1024 * 1024 - 10), 0)
        bomb.sock.sendall(_compressed(zeros, 0, ulen=1000))
        other = Raw(srv.port)  # logs in while the bomb client is being handled
        assert other.login()[:1] == b"\x00"
        other.close()
        bomb_got = bomb.read_until_closed()
        bomb.close()
        assert _err_code(bomb_got[-1]) == 1153, bomb_got
        # a header announcing more than max_packet is refused before inflating
        c = Raw(srv.port)
        assert c.login(caps=CAPS | COMPRESS)[:1] == b"\x00"
        c.sock.sendall(_compressed(b"\x00" * 100, 0, ulen=2 * 1024 * 1024))
        assert _err_code(c.read_until_closed()[-1]) == 1153
        c.close()
        kinds = [
            e.detail.get("what")
            for r in srv.connections
            for e in r.events
            if e.kind == "packet-too-large"
        ]
        assert kinds == ["inflated packet", "compressed packet"]
    loop_threads = {"mysqlwire-serve"}
    assert threads and not set(threads) & loop_threads, threads


def test_per_connection_memory_cap():
    cfg = _cfg(max_packet=64 * 1024, max_connection_memory=64 * 1024)
    with run_in_thread(cfg) as srv:
        c = Raw(srv.port)
        assert c.login(caps=CAPS | COMPRESS)[:1] == b"\x00"
        # each compressed packet is under max_packet, but together they leave two whole
        # inner packets (60 KB + 50 KB) waiting at once: over the connection's cap
        p1 = frame(b"\x0e" + b"p" * 60_000, 0)
        p2 = frame(b"\x0e" + b"q" * 50_000, 0)
        c.sock.sendall(_compressed(p1[:50_000], 0))
        c.sock.sendall(_compressed(p1[50_000:] + p2, 1))
        got = c.read_until_closed()
        c.close()
        assert [_err_code(p) for p in got] == [1153]
        ev = [e for e in srv.last().events if e.kind == "memory-cap"]
        assert ev and ev[0].detail["held"] > 64 * 1024


# ------------------------------------------------------------------ slowloris
def test_slowloris_clients_do_not_keep_others_out():
    with run_in_thread(_cfg(connect_timeout=3.0)) as srv:
        slow = []
        for _ in range(30):
            s = Raw(srv.port)
            s.sock.sendall(b"\x40\x00")  # half a header, then nothing
            slow.append(s)
        for _ in range(3):
            c = Raw(srv.port)
            assert c.login()[:1] == b"\x00"
            c.close()
        for s in slow:
            s.close()
        assert srv.wait_for(lambda: all(r.closed for r in srv.connections), 15)
        oks = sum(1 for r in srv.connections if r.login is not None and r.login.ok)
        assert oks == 3


# ------------------------------------------------------------------ logs
def test_control_characters_are_escaped_in_every_log_field(caplog):
    with run_in_thread(_cfg()) as srv, caplog.at_level(logging.INFO, logger="mysqlwire.serve"):
        c = Raw(srv.port)
        payload = build(
            "handshake_response41",
            dict(
                client_flag=CAPS,
                max_packet_size=1 << 24,
                character_set=45,
                filler=b"\x00" * 23,
                username="evil\x1b[2J\u202e\u009buser".encode(),
                auth_response=b"\x01" * 20,
                database=None,
                database_terminated=None,
                client_plugin="x\x1b]0;pwned\x07\u009b".encode(),
                client_plugin_terminated=True,
                connect_attrs=None,
                zstd_compression_level=None,
            ),
        )
        c.sock.sendall(frame(payload, 1))
        c.read_until_closed()
        c.close()
        srv.last()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "user='evil" in text, text
    for bad in ("\x1b", "\x07", "\u202e", "\u009b"):
        assert bad not in text
    assert "\\x1b[2J" in text and "\\u202e" in text and "\\x9b" in text


# ------------------------------------------------------------------ secret files
def test_keylog_created_0600_and_existing_fixed(tmp_path):
    """Also for API users (ServerConfig(keylog_file=...)); the CLI's --dump-rsa-key goes
    through mysqlwire.outputs (tests/test_files_safety.py)."""
    from mysqlwire.serve.keys import server_ssl_context

    new = tmp_path / "new.keys"
    server_ssl_context(keylog_file=str(new))
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    old = tmp_path / "old.keys"
    old.write_text("CLIENT_RANDOM aa bb\n")
    old.chmod(0o644)
    server_ssl_context(keylog_file=str(old))
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert old.read_text() == "CLIENT_RANDOM aa bb\n"  # appended to, not truncated
    target = tmp_path / "target"
    target.write_text("keep")
    link = tmp_path / "link.keys"
    link.symlink_to(target)
    from mysqlwire.errors import UsageError

    with pytest.raises(UsageError, match="symbolic link"):
        server_ssl_context(keylog_file=str(link))
    assert target.read_text() == "keep"
