"""Connection I/O of ``mysqlwire serve``: one accepted socket, MySQL packet framing in both
directions (plain and compressed), TLS attachment and a graceful close.

Why the first packet is read straight from the socket: a client sends its TLS ClientHello
right after the SSLRequest without waiting, so a buffered reader may already hold TLS
bytes when the SSLRequest is parsed, and ``start_tls`` on that transport would lose them.
Reading the greeting answer with exact-size ``sock_recv`` calls leaves the ClientHello in
the kernel; the socket is then wrapped by ``loop.connect_accepted_socket(ssl=...)``
(server-side TLS) or plainly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import zlib
from typing import Any

from mysqlwire.errors import ProtocolError
from mysqlwire.protocol import framing

from . import messages, wire
from .events import ConnectionRecord
from .messages import ServerError
from .wire import F


def inflate_bounded(body: bytes, limit: int) -> bytes | None:
    """zlib-inflate ``body`` to at most ``limit`` bytes (``None``: it would be more);
    ProtocolError when it is not zlib data.  Runs in a worker thread."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(f"compressed packet does not inflate: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        return None
    return out


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Closed(Exception):
    """The client went away (EOF / reset)."""


class Refuse(Exception):
    """Send this error and close."""

    def __init__(self, error: ServerError):
        super().__init__(str(error))
        self.error = error


class ConnectionIO:
    """Packet I/O of one connection (the server's state lives in :attr:`server`)."""

    rec: ConnectionRecord

    def __init__(self, server: Any, sock: socket.socket):
        self.server = server
        self.cfg = server.config
        self.sock: socket.socket | None = sock
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.seq = 0
        self.compressed = False
        self.cseq = 0  # compressed-protocol sequence id
        self.caps = 0  # client capabilities
        self.tls = False
        self.authenticated = False  # a login succeeded: the larger packet limit applies

    # ------------------------------------------------------------------ limits
    @property
    def packet_limit(self) -> int:
        """Largest logical packet accepted now (smaller before the login succeeded)."""
        return self.cfg.max_packet if self.authenticated else self.cfg.max_packet_before_auth

    def _too_large(self, size: int, what: str) -> Refuse:
        self.rec.event("packet-too-large", size=size, limit=self.packet_limit, what=what)
        return Refuse(messages.packet_too_large())

    # ------------------------------------------------------------------ packet I/O
    async def _recv_exact(self, n: int) -> bytes:
        if self.reader is not None:
            try:
                return await self.reader.readexactly(n)
            except asyncio.IncompleteReadError:
                raise Closed() from None
        loop = asyncio.get_running_loop()
        buf = bytearray()
        while len(buf) < n:
            chunk = await loop.sock_recv(self.sock, n - len(buf))
            if not chunk:
                raise Closed()
            buf += chunk
        return bytes(buf)

    async def read_packet(self, timeout: float | None = None) -> bytes:
        """One logical packet (continuation chunks joined); checks the sequence id."""
        timeout = self.cfg.connect_timeout if timeout is None else timeout
        if self.compressed:
            return await self._read_compressed(timeout)
        payload = bytearray()
        limit = self.packet_limit
        while True:
            header = await asyncio.wait_for(self._recv_exact(4), timeout)
            length = int.from_bytes(header[:3], "little")
            self._check_seq(header[3])
            if len(payload) + length > limit:  # checked before a byte of it is read
                raise self._too_large(len(payload) + length, "packet")
            payload += await asyncio.wait_for(self._recv_exact(length), timeout) if length else b""
            if length < wire.MAX_CHUNK:
                return bytes(payload)

    def _check_seq(self, seq: int, chunks: int = 1) -> None:
        if seq != self.seq:
            self.rec.event("out-of-order", expected=self.seq, got=seq)
            raise Refuse(messages.packets_out_of_order())
        self.seq = (self.seq + chunks) & 0xFF

    async def _read_compressed(self, timeout: float) -> bytes:
        """Compressed protocol: 7-byte headers around zlib'ed (or stored) inner packets."""
        limit = self.packet_limit
        loop = asyncio.get_running_loop()
        while not self._inner_packets:
            header = await asyncio.wait_for(self._recv_exact(7), timeout)
            clen = int.from_bytes(header[:3], "little")
            ulen = int.from_bytes(header[4:7], "little")
            if header[3] != self.cseq:
                self.rec.event("out-of-order", expected=self.cseq, got=header[3], compressed=True)
                raise Refuse(messages.packets_out_of_order())
            self.cseq = (header[3] + 1) & 0xFF
            if clen > limit or ulen > limit:  # before reading or inflating anything
                raise self._too_large(max(clen, ulen), "compressed packet")
            body = await asyncio.wait_for(self._recv_exact(clen), timeout) if clen else b""
            if ulen == 0:
                inner = body  # stored, not compressed
            else:
                # inflated in a worker thread (zlib releases the GIL) and never past the
                # limit: one client's zlib bomb neither blocks nor starves the others
                try:
                    inner = await loop.run_in_executor(None, inflate_bounded, body, limit)
                except ProtocolError as exc:
                    self.rec.event("bad-compressed-packet", reason=exc.reason)
                    raise Refuse(messages.bad_handshake()) from None
                if inner is None:
                    raise self._too_large(limit + 1, "inflated packet")
                if len(inner) != ulen:
                    self.rec.event("bad-compressed-packet", reason="length mismatch")
                    raise Refuse(messages.bad_handshake())
            try:
                self._inner_packets.extend(self._inner.feed(inner))
            except ProtocolError as exc:
                self.rec.event("bad-compressed-packet", reason=exc.reason)
                raise Refuse(messages.bad_handshake()) from None
            held = self._inner.pending + sum(len(p.payload) for p in self._inner_packets)
            if held > self.cfg.max_connection_memory:
                self.rec.event("memory-cap", held=held, limit=self.cfg.max_connection_memory)
                raise Refuse(messages.packet_too_large())
        packet = self._inner_packets.pop(0)
        self._check_seq(packet.seq, packet.chunks)
        return packet.payload

    def start_compression(self) -> None:
        """After the final OK of the connection phase (reference §1)."""
        self.compressed = True
        self._inner = framing.PacketReader(max_payload=self.cfg.max_packet)
        self._inner_packets: list[framing.Packet] = []
        self.rec.event("compression", algorithm="zlib")

    async def write(self, *payloads: bytes) -> None:
        data = bytearray()
        for payload in payloads:
            framed = wire.frame(payload, self.seq)
            self.seq = (self.seq + 1 + len(payload) // wire.MAX_CHUNK) & 0xFF
            data += framed
        if self.compressed:
            pieces = max(1, -(-len(data) // wire.MAX_CHUNK))
            data = bytearray(framing.compress_frame(bytes(data), self.cseq))
            self.cseq = (self.cseq + pieces) & 0xFF
        if self.writer is not None:
            self.writer.write(bytes(data))
            await self.writer.drain()
        else:
            await asyncio.get_running_loop().sock_sendall(self.sock, bytes(data))

    def _err_payload(self, error: ServerError, *, with_state: bool = True) -> bytes:
        state = error.sqlstate if with_state and self.caps & F.CLIENT_PROTOCOL_41 else None
        return wire.err(error.code, state, error.message, self.caps)

    async def send_error(self, error: ServerError, *, with_state: bool = True) -> None:
        self.rec.event("err", code=error.code, sqlstate=error.sqlstate)
        await self.write(self._err_payload(error, with_state=with_state))

    async def _attach_streams(self, ssl_ctx: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**24)
        protocol = asyncio.StreamReaderProtocol(reader)
        sock, self.sock = self.sock, None
        kwargs: dict[str, Any] = {}
        if ssl_ctx is not None:
            kwargs = {"ssl": ssl_ctx, "ssl_handshake_timeout": self.cfg.connect_timeout}
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock, **kwargs)
        self.reader = reader
        self.writer = asyncio.StreamWriter(transport, protocol, reader, loop)

    async def close(self, *, linger: float = 1.0) -> None:
        """Close gracefully: FIN after our last packet, then drain what the client still
        sends (closing with unread input makes the kernel send a RST, and a RST can
        destroy the final ERR before the client reads it)."""
        if self.server.stopping:
            linger = 0
        loop = asyncio.get_running_loop()
        if self.writer is not None:
            with contextlib.suppress(Exception):
                if linger and self.writer.can_write_eof():
                    self.writer.write_eof()
                    assert self.reader is not None
                    deadline = loop.time() + linger
                    while not self.reader.at_eof() and loop.time() < deadline:
                        await asyncio.wait_for(self.reader.read(65536), deadline - loop.time())
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 2)
        elif self.sock is not None:
            sock, self.sock = self.sock, None
            with contextlib.suppress(Exception):
                if linger:
                    sock.shutdown(socket.SHUT_WR)
                    deadline = loop.time() + linger
                    while loop.time() < deadline:
                        chunk = await asyncio.wait_for(
                            loop.sock_recv(sock, 65536), deadline - loop.time()
                        )
                        if not chunk:
                            break
            sock.close()
