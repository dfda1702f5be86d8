"""Helpers for the robustness / secrets / redaction tests (no tests here).

* :class:`PcapWriter` -- fast synthetic pcap writer (Ethernet + IPv4/IPv6 +
  TCP), streaming to a file, checksums optional (mysqlwire does not check them,
  tshark does when asked).
* :func:`lab_corpus` -- every lab capture with its truth line (captures/lab-samples
  and captures/lab when present), with the options needed to dissect it.
* :func:`tcp_streams` -- the raw bytes of each direction of each TCP connection.
* :func:`run_cli` -- run a mysqlwire command in-process (click's CliRunner).
* :func:`peak_rss` -- run a mysqlwire command in a subprocess and return its
  peak RSS (MiB) and wall time.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from mysqlwire.capture import Reassembler, decode_tcp, open_capture

REPO = Path(__file__).resolve().parent.parent
CAPTURES = REPO / "captures"
LAB_DIRS = [CAPTURES / "lab-samples", CAPTURES / "lab"]

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class PcapWriter:
    """Write Ethernet/IP/TCP frames to a classic pcap (microsecond) file."""

    def __init__(self, path: Path | str, *, checksums: bool = False):
        self.fh = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.checksums = checksums
        self._rec = struct.Struct("<IIII").pack
        self._tcp = struct.Struct("!HHIIBBHHH").pack
        self._ip4 = struct.Struct("!BBHHHBBH4s4s").pack
        self._eth4 = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00"
        self._eth6 = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x86\xdd"
        self.frames = 0

    def tcp(
        self,
        ts: float,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes = b"",
    ) -> None:
        v6 = ":" in src
        fam = socket.AF_INET6 if v6 else socket.AF_INET
        sip, dip = socket.inet_pton(fam, src), socket.inet_pton(fam, dst)
        tcp = self._tcp(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 65535, 0, 0)
        if self.checksums:
            plen = len(tcp) + len(payload)
            if v6:
                pseudo = sip + dip + struct.pack("!IxxxB", plen, 6)
            else:
                pseudo = sip + dip + struct.pack("!BBH", 0, 6, plen)
            tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp + payload)) + tcp[18:]
        if v6:
            ip = struct.pack("!IHBB", 0x60000000, len(tcp) + len(payload), 6, 64) + sip + dip
            frame = self._eth6 + ip + tcp + payload
        else:
            ip = self._ip4(0x45, 0, 40 + len(payload), 1, 0x4000, 64, 6, 0, sip, dip)
            if self.checksums:
                ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            frame = self._eth4 + ip + tcp + payload
        sec = int(ts)
        self.fh.write(self._rec(sec, int((ts - sec) * 1e6), len(frame), len(frame)))
        self.fh.write(frame)
        self.frames += 1

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class TcpConn:
    """One synthetic TCP connection written through a :class:`PcapWriter`."""

    w: PcapWriter
    client: str = "10.0.0.1"
    cport: int = 40000
    server: str = "10.0.0.2"
    sport: int = 3306
    t: float = 1_700_000_000.0
    cseq: int = 1000
    sseq: int = 5000
    mss: int = 1400
    sent: dict = field(default_factory=dict)

    def _c(self, flags: int, payload: bytes = b"", seq: int | None = None, ack=None) -> None:
        self.w.tcp(
            self.t,
            self.client,
            self.cport,
            self.server,
            self.sport,
            self.cseq if seq is None else seq,
            self.sseq if ack is None else ack,
            flags,
            payload,
        )

    def _s(self, flags: int, payload: bytes = b"", seq: int | None = None, ack=None) -> None:
        self.w.tcp(
            self.t,
            self.server,
            self.sport,
            self.client,
            self.cport,
            self.sseq if seq is None else seq,
            self.cseq if ack is None else ack,
            flags,
            payload,
        )

    def open(self) -> TcpConn:
        self._c(SYN, ack=0)
        self._s(SYN | ACK, ack=self.cseq + 1)
        self.cseq += 1
        self.sseq += 1
        self._c(ACK)
        return self

    def send(self, sender: str, data: bytes, *, mss: int | None = None) -> None:
        mss = mss or self.mss
        for i in range(0, len(data), mss):
            piece = data[i : i + mss]
            self.t += 1e-5
            if sender == "server":
                self._s(PSH | ACK, piece)
                self.sseq += len(piece)
            else:
                self._c(PSH | ACK, piece)
                self.cseq += len(piece)

    def close(self) -> None:
        self.t += 1e-5
        self._c(FIN | ACK)
        self._s(FIN | ACK, ack=self.cseq + 1)
        self._c(ACK, seq=self.cseq + 1, ack=self.sseq + 1)


# --- the lab corpus ------------------------------------------------------------------


@dataclass
class LabCapture:
    path: Path
    truth: dict

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def keylog(self) -> Path | None:
        k = self.truth.get("keylog")
        return self.path.parent / k if k else None

    @property
    def rsa_key(self) -> Path | None:
        k = self.truth.get("rsa_private_key")
        return self.path.parent / k if k else None

    def options(self) -> list[str]:
        """CLI options to dissect this capture (port, key log)."""
        opts = ["--port", str(self.truth.get("port") or 3306)]
        if self.keylog is not None:
            opts += ["--keylog", str(self.keylog)]
        return opts

    def passwords(self) -> list[str]:
        """Every non-empty password this capture's truth knows about."""
        out = []
        for key in ("password", "account_password"):
            pw = self.truth.get(key)
            if pw and pw not in out:
                out.append(pw)
        for cu in self.change_users():
            for key in ("password", "account_password"):
                pw = cu.get(key)
                if pw and pw not in out:
                    out.append(pw)
        return out

    def change_users(self) -> list[dict]:
        """The truth of each COM_CHANGE_USER (one dict in the truth files, or a list)."""
        cu = self.truth.get("change_user") or []
        return [cu] if isinstance(cu, dict) else list(cu)


def lab_corpus(dirs: list[Path] | None = None) -> list[LabCapture]:
    """Every capture of the lab corpora with its truth line, in name order."""
    out = []
    for d in dirs or LAB_DIRS:
        truth = d / "truth.jsonl"
        if not truth.is_file():
            continue
        for line in truth.read_text().splitlines():
            if not line.strip():
                continue
            t = json.loads(line)
            path = d / t["pcap"]
            if path.is_file():
                out.append(LabCapture(path, t))
    return sorted(out, key=lambda c: c.name)


def lab_samples() -> list[LabCapture]:
    return lab_corpus([CAPTURES / "lab-samples"])


# --- raw streams -------------------------------------------------------------------


@dataclass
class Stream:
    client: tuple[str, int]
    server: tuple[str, int]
    server_bytes: bytes
    client_bytes: bytes


def tcp_streams(path: Path | str, port: int = 3306) -> list[Stream]:
    """Both directions of every TCP connection, reassembled (no MySQL parsing)."""
    sinks = []

    class _Sink:
        def __init__(self, flow):
            self.flow = flow
            self.buf = {True: bytearray(), False: bytearray()}
            sinks.append(self)

        def data(self, from_initiator, data, ts):
            self.buf[from_initiator] += data

    reasm = Reassembler(_Sink)
    for frame in open_capture(path):
        seg = decode_tcp(frame.linktype, frame.data)
        if seg is not None:
            reasm.add(frame.ts, seg)
    reasm.finish()
    out = []
    for s in sinks:
        server_first = s.flow.initiator[1] == port and s.flow.responder[1] != port
        srv, cli = (s.flow.initiator, s.flow.responder)
        if not server_first:
            srv, cli = cli, srv
        out.append(Stream(cli, srv, bytes(s.buf[server_first]), bytes(s.buf[not server_first])))
    return out


def ordered_chunks(path: Path | str, port: int = 3306) -> list[list[tuple[str, bytes]]]:
    """Per TCP connection, its bytes as ("client"|"server", chunk) in arrival order."""
    conns: list[list[tuple[str, bytes]]] = []

    class _Sink:
        def __init__(self, flow):
            self.server_first = flow.initiator[1] == port and flow.responder[1] != port
            self.out: list[tuple[str, bytes]] = []
            conns.append(self.out)

        def data(self, from_initiator, data, ts):
            sender = "server" if from_initiator == self.server_first else "client"
            self.out.append((sender, bytes(data)))

    reasm = Reassembler(_Sink)
    for frame in open_capture(path):
        seg = decode_tcp(frame.linktype, frame.data)
        if seg is not None:
            reasm.add(frame.ts, seg)
    reasm.finish()
    return conns


# --- pcap surgery -------------------------------------------------------------------


@dataclass
class Record:
    """One record of a classic little-endian pcap file, as byte offsets."""

    offset: int  # of the 16-byte record header
    data: int  # of the frame
    end: int  # just past the frame
    ts: float
    payload: tuple[int, int] | None  # TCP payload [start, end) in the file, if any
    sport: int | None
    dport: int | None


def pcap_records(blob: bytes) -> list[Record]:
    """Records of a classic microsecond pcap (Ethernet, IPv4/IPv6, TCP)."""
    assert blob[:4] == b"\xd4\xc3\xb2\xa1", "little-endian microsecond pcap expected"
    out = []
    pos = 24
    while pos + 16 <= len(blob):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", blob, pos)
        data = pos + 16
        end = data + incl
        if end > len(blob):
            break
        payload = sport = dport = None
        et = struct.unpack_from("!H", blob, data + 12)[0] if incl >= 14 else 0
        l3 = data + 14
        if et == 0x0800 and incl >= 34:
            ihl = (blob[l3] & 0x0F) * 4
            total = struct.unpack_from("!H", blob, l3 + 2)[0]
            l4, l3_end = l3 + ihl, min(l3 + total, end)
            proto = blob[l3 + 9]
        elif et == 0x86DD and incl >= 54:
            l4 = l3 + 40
            l3_end = min(l4 + struct.unpack_from("!H", blob, l3 + 4)[0], end)
            proto = blob[l3 + 6]
        else:
            proto = None
        if proto == 6 and l4 + 20 <= end:
            sport, dport = struct.unpack_from("!HH", blob, l4)
            start = l4 + (blob[l4 + 12] >> 4) * 4
            if start < l3_end:
                payload = (start, l3_end)
        out.append(Record(pos, data, end, sec + usec / 1e6, payload, sport, dport))
        pos = end
    return out


def merge_pcaps(paths: list[Path], out: Path, gap: float = 1.0) -> list[int]:
    """Concatenate classic pcaps (same link type) one after the other in time;
    return, per input, the byte offset in ``out`` just past its last record."""
    ends = []
    t_next = None
    with open(out, "wb") as fh:
        for i, path in enumerate(paths):
            blob = path.read_bytes()
            if i == 0:
                fh.write(blob[:24])
            recs = pcap_records(blob)
            shift = 0.0 if t_next is None else t_next - recs[0].ts
            for r in recs:
                ts = r.ts + shift
                sec = int(ts)
                fh.write(struct.pack("<II", sec, round((ts - sec) * 1e6) % 1_000_000))
                fh.write(blob[r.offset + 8 : r.end])
            t_next = recs[-1].ts + shift + gap
            ends.append(fh.tell())
    return ends


# --- running the CLI ------------------------------------------------------------------


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def run_cli(args: list[str], env: dict | None = None) -> Run:
    """Run ``mysqlwire ARGS`` in-process; unexpected exceptions are returned, not raised."""
    from mysqlwire.cli import cli

    res = CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=True)
    exc = res.exception if not isinstance(res.exception, SystemExit) else None
    return Run(res.exit_code, res.stdout, res.stderr, exc)


_RUNS = itertools.count()

_RSS_WRAPPER = """
import atexit, resource, sys, time
t0 = time.perf_counter()
def peak_kib():
    # ru_maxrss survives execve on Linux (it would report the parent's peak if
    # that was higher); VmHWM belongs to this process image only.
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def report():
    sys.stderr.flush()
    with open({out!r}, "w") as fh:
        fh.write("%d %f" % (peak_kib(), time.perf_counter() - t0))
atexit.register(report)
from mysqlwire.cli import main
sys.argv = ["mysqlwire"] + sys.argv[1:]
main()
"""


def run_measured(args: list[str], tmp: Path, timeout: float = 600) -> tuple[Run, float, float]:
    """Run ``mysqlwire ARGS`` in a fresh interpreter; return (run, peak RSS MiB, seconds)."""
    out = tmp / f"rss-{os.getpid()}-{next(_RUNS)}.txt"
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER.format(out=str(out)), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    kib, secs = out.read_text().split()
    out.unlink()
    return Run(proc.returncode, proc.stdout, proc.stderr, None), int(kib) / 1024, float(secs)
