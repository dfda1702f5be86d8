"""Capture loopback traffic of one lab server port to a pcap, and read such a pcap back.

``capture(path, port, host=...)`` is a context manager: tcpdump on ``lo`` with ``-U`` (packet-buffered
output) and the filter ``tcp port P [and host H]``; it returns only once tcpdump says "listening on",
so nothing the client sends afterwards is missed, and on exit it waits a moment for the last
packets (FIN/ACK), sends SIGINT and waits for tcpdump to flush and exit. Without tcpdump it falls back
to Scapy's ``AsyncSniffer`` (filtering in Python, since Scapy needs tcpdump to compile BPF).

``tcp_connections(path)`` is a deliberately small pcap + TCP reader (Ethernet / Linux cooked / raw
IPv4 and IPv6, no MySQL knowledge) that the lab tests use to check that a capture holds what the
scenario says: it is not the project's dissector and must stay independent of it.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


class CaptureError(RuntimeError):
    pass


@dataclass
class CaptureInfo:
    path: Path
    bpf: str
    backend: str = "tcpdump"
    packets: int | None = None  # as reported by the capturer
    dropped: int | None = None
    stderr: str = ""


def tcpdump_path() -> str | None:
    return shutil.which("tcpdump", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


@contextmanager
def capture(
    path: str | os.PathLike,
    port: int,
    host: str | None = None,
    *,
    iface: str = "lo",
    settle: float = 3.0,
    start_timeout: float = 10.0,
) -> Iterator[CaptureInfo]:
    """Capture ``tcp port <port>`` (and ``host <host>``) on ``iface`` into ``path``.

    On exit, waits (up to ``settle`` seconds) until the file holds at least one connection and every
    connection in it is closed by both sides (FIN or RST each way): tcpdump may lag behind on a busy
    machine, and packets still in its ring buffer when it gets SIGINT are lost."""
    path = Path(path)
    if host:
        # the server's endpoint exactly: clients of every lane connect FROM 127.0.0.1, so
        # "host 127.0.0.1" alone would also match the other lanes' connections
        bpf = f"tcp and ((src host {host} and src port {port}) or (dst host {host} and dst port {port}))"
    else:
        bpf = f"tcp port {port}"
    info = CaptureInfo(path, bpf)
    tcpdump = tcpdump_path()
    if tcpdump:
        with _tcpdump(tcpdump, info, iface, settle, start_timeout):
            yield info
    else:
        info.backend = "scapy"
        with _scapy(info, iface, port, host, settle, start_timeout):
            yield info


@contextmanager
def _tcpdump(tcpdump, info: CaptureInfo, iface, settle, start_timeout):
    # -Z root: as root, tcpdump would otherwise drop to the 'tcpdump' user and may not be able to
    # write into a private temp dir. -n: no name lookups. --immediate-mode: hand each packet over
    # at once (TPACKET_V3 would hold it in a ring block, and a SIGINT before the block times out
    # loses it).
    # Immediate mode makes libpcap use a ring of fixed, snaplen-sized slots: with the default
    # 2 MiB buffer and snaplen 262144 that is 8 slots, and a tcpdump that is not scheduled for a
    # moment drops packets ("dropped by kernel"). -s 70000 covers a loopback frame (MTU 65536),
    # -B 24576 KiB gives ~350 slots.
    cmd = [
        tcpdump,
        "-i",
        iface,
        "-U",
        "--immediate-mode",
        "-B",
        "24576",
        "-n",
        "-s",
        "70000",
        "-Z",
        "root",
        "-w",
        str(info.path),
        info.bpf,
    ]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    err = b""
    deadline = time.monotonic() + start_timeout
    try:
        while b"listening on" not in err:
            if proc.poll() is not None:
                err += proc.stderr.read()
                raise CaptureError(
                    f"tcpdump exited {proc.returncode}: {err.decode(errors='replace')}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise CaptureError(f"tcpdump not listening after {start_timeout}s: {err!r}")
            ready, _, _ = select.select([proc.stderr], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(proc.stderr.fileno(), 4096)
                if not chunk:
                    continue
                err += chunk
        yield info
        _wait_closed(info.path, settle)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                rest = proc.communicate(timeout=10)[1]
            except subprocess.TimeoutExpired:
                proc.kill()
                rest = proc.communicate()[1]
            err += rest or b""
        info.stderr = err.decode(errors="replace")
        for line in info.stderr.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0].isdigit():
                if "captured" in line:
                    info.packets = int(words[0])
                elif "dropped by kernel" in line:
                    info.dropped = int(words[0])


@contextmanager
def _scapy(info: CaptureInfo, iface, port, host, settle, start_timeout):
    from scapy.all import IP, TCP, AsyncSniffer, wrpcap  # noqa: PLC0415 - optional fallback

    def keep(p) -> bool:
        if TCP not in p or port not in (p[TCP].sport, p[TCP].dport):
            return False
        if host is None:
            return True
        return IP in p and (
            (p[IP].src == host and p[TCP].sport == port)
            or (p[IP].dst == host and p[TCP].dport == port)
        )

    started = threading.Event()
    sniffer = AsyncSniffer(iface=iface, lfilter=keep, store=True, started_callback=started.set)
    sniffer.start()
    if not started.wait(start_timeout):
        sniffer.stop()
        raise CaptureError("scapy sniffer did not start")
    try:
        yield info
        time.sleep(min(settle, 0.2))
    finally:
        pkts = _drop_loopback_twins(sniffer.stop() or [])
        wrpcap(str(info.path), pkts)
        info.packets = len(pkts)


def _drop_loopback_twins(pkts: list) -> list:
    """A packet socket on ``lo`` sees every packet twice (outgoing, then incoming); tcpdump drops
    the outgoing copy, Scapy does not. Keep one of two identical frames less than 1 ms apart."""
    out, last = [], None
    for p in pkts:
        raw, ts = bytes(p), float(p.time)
        if last is not None and raw == last[0] and ts - last[1] < 0.001:
            continue
        out.append(p)
        last = (raw, ts)
    return out


def _wait_closed(path: Path, settle: float) -> None:
    deadline = time.monotonic() + settle
    time.sleep(0.005)
    while time.monotonic() < deadline:
        try:
            conns = tcp_connections(path)
        except (OSError, CaptureError, struct.error, IndexError):
            conns = None  # a packet half-written: try again
        if conns and all(c.closed for c in conns):
            return
        time.sleep(0.01)


# ----------------------------------------------------------------------------- reading pcaps


@dataclass
class TcpConnection:
    """One TCP connection seen in a capture: the side that sent the SYN is the client."""

    client: tuple[str, int]
    server: tuple[str, int]
    c2s: bytes = b""  # reassembled payload, client to server
    s2c: bytes = b""
    packets: int = 0
    syn: bool = False
    fin_or_rst: bool = False  # seen in either direction
    closed_by: set = field(default_factory=set)  # "client" / "server": sent FIN or RST
    _segs: dict = field(default_factory=lambda: {"c2s": {}, "s2c": {}}, repr=False)

    @property
    def client_port(self) -> int:
        return self.client[1]

    @property
    def closed(self) -> bool:
        return "rst" in self.closed_by or {"client", "server"} <= self.closed_by


def _packets(path: Path) -> Iterator[tuple[int, bytes]]:
    data = path.read_bytes()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise CaptureError(f"{path}: not a classic pcap file (magic {magic.hex()})")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8 : off + 12])[0]
        yield linktype, data[off + 16 : off + 16 + incl]
        off += 16 + incl


def _ip_payload(linktype: int, frame: bytes) -> bytes | None:
    if linktype == 1:  # Ethernet
        eth_type, off = struct.unpack("!H", frame[12:14])[0], 14
        while eth_type == 0x8100 and len(frame) >= off + 4:
            eth_type, off = struct.unpack("!H", frame[off + 2 : off + 4])[0], off + 4
        return frame[off:] if eth_type in (0x0800, 0x86DD) else None
    if linktype == 113:  # Linux cooked v1
        return frame[16:] if frame[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == 276:  # Linux cooked v2
        return frame[20:] if frame[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype in (101, 228, 229, 12):  # raw IP
        return frame
    if linktype == 0:  # BSD loopback
        return frame[4:]
    return None


def tcp_connections(path: str | os.PathLike) -> list[TcpConnection]:
    """TCP connections in a pcap, in order of first appearance, payload reassembled by sequence."""
    conns: dict[tuple, TcpConnection] = {}
    for linktype, frame in _packets(Path(path)):
        ip = _ip_payload(linktype, frame)
        if not ip:
            continue
        version = ip[0] >> 4
        if version == 4:
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack("!H", ip[2:4])[0]
            if ip[9] != 6:
                continue
            src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
            tcp = ip[ihl:total]
        elif version == 6:
            if ip[6] != 6:
                continue
            plen = struct.unpack("!H", ip[4:6])[0]
            src, dst = ip[8:24].hex(), ip[24:40].hex()
            tcp = ip[40 : 40 + plen]
        else:
            continue
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        payload = tcp[doff:]
        a, b = (src, sport), (dst, dport)
        key = tuple(sorted((a, b)))
        conn = conns.get(key)
        if conn is None:
            is_syn_only = flags & 0x02 and not flags & 0x10
            client, server = (a, b) if is_syn_only or not flags & 0x02 else (b, a)
            conn = conns[key] = TcpConnection(client, server)
        conn.packets += 1
        if flags & 0x02:
            conn.syn = True
        if flags & 0x05:
            conn.fin_or_rst = True
            conn.closed_by.add("client" if a == conn.client else "server")
            if flags & 0x04:
                conn.closed_by.add("rst")
        if payload:
            direction = "c2s" if a == conn.client else "s2c"
            base = conn._segs.setdefault(direction + "_base", seq)
            rel = (seq - base) % (1 << 32)  # relative to the first data: sequence numbers wrap
            if rel > (1 << 31):  # a retransmission from before the first data seen
                continue
            conn._segs[direction].setdefault(rel, payload)
    for conn in conns.values():
        for direction in ("c2s", "s2c"):
            segs = conn._segs[direction]
            out, nxt = bytearray(), None
            for seq in sorted(segs):  # loopback: no loss; ignore retransmitted overlaps
                data = segs[seq]
                if nxt is not None and seq < nxt:
                    data = data[nxt - seq :]
                out += data
                nxt = max(nxt or 0, seq + len(segs[seq]))
            setattr(conn, direction, bytes(out))
    return list(conns.values())
