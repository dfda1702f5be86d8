"""inject_keylog: pcapng with a Decryption Secrets Block that tshark decrypts
without ``-o tls.keylog_file``. Outputs go to tmp_path (never the repo)."""

from __future__ import annotations

import json
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from mysqlwire.errors import CaptureError, UsageError
from mysqlwire.tls import KeyLog, inject_keylog
from tests.conftest import LAB_SAMPLES, PUBLIC, require_shared

TSHARK = shutil.which("tshark")
DSB_TYPE = 0x0000000A
EPB_TYPE = 0x00000006


def tshark(*args: str) -> list[str]:
    if TSHARK is None:
        pytest.skip("tshark not installed")
    res = subprocess.run([TSHARK, *args], capture_output=True, text=True, check=True)
    return res.stdout.splitlines()


def pcapng_blocks(path: Path) -> list[tuple[int, bytes]]:
    """(block type, body) of every block; little- or big-endian sections."""
    data = path.read_bytes()
    out, pos, endian = [], 0, "<"
    while pos < len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            endian = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, total = struct.unpack_from(endian + "II", data, pos)
        assert struct.unpack_from(endian + "I", data, pos + total - 4)[0] == total
        out.append((btype, data[pos + 8 : pos + total - 4]))
        pos += total
    return out


def lab_tls_cases() -> list[tuple[str, str, str]]:
    f = LAB_SAMPLES / "truth.jsonl"
    if not f.is_file():
        return [("<lab samples unavailable>", "", "")]
    rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return [(r["pcap"], r["keylog"], r["user"]) for r in rows if r.get("tls") and r.get("keylog")]


def frame_times(path: Path) -> list[str]:
    return tshark("-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len")


def users(path: Path) -> list[str]:
    lines = tshark("-r", str(path), "-Y", "mysql.user", "-T", "fields", "-e", "mysql.user")
    return [u for u in lines if u]


@pytest.mark.parametrize(("pcap", "keys", "user"), lab_tls_cases())
def test_lab_sample_self_decrypting(tmp_path, pcap, keys, user):
    require_shared()
    src = LAB_SAMPLES / pcap
    if not src.is_file():
        pytest.skip(f"{src} missing")
    keylog = (LAB_SAMPLES / keys).read_bytes()
    assert users(src) == []  # encrypted: tshark sees no user without keys
    dst = tmp_path / (src.stem + ".pcapng")
    n = inject_keylog(src, keylog, dst)
    assert users(dst) == [user]
    blocks = pcapng_blocks(dst)
    kinds = [t for t, _ in blocks]
    assert kinds.count(DSB_TYPE) == 1
    assert kinds.index(DSB_TYPE) < kinds.index(EPB_TYPE)
    assert kinds.count(EPB_TYPE) == n == len(frame_times(src))
    assert frame_times(dst) == frame_times(src)  # timestamps and lengths kept
    dsb = next(body for t, body in blocks if t == DSB_TYPE)
    assert KeyLog.from_dsb(dsb) == KeyLog.from_text(keylog)
    caps = tshark("-r", str(dst), "-T", "fields", "-e", "frame.encap_type")
    assert set(caps) == {"1"}  # Ethernet link type kept


@pytest.mark.parametrize("name", ["mysql-ssl.pcapng", "mysql-ssl-larger.pcapng"])
def test_pcapng_source_keeps_its_blocks(tmp_path, name):
    require_shared()
    src = PUBLIC / "wireshark-notes" / name
    if not src.is_file():
        pytest.skip(f"{src} missing")
    dst = tmp_path / "out.pcapng"
    n = inject_keylog(src, src.with_suffix(".keys").read_bytes(), dst)
    assert users(dst) == ["test"]
    before, after = pcapng_blocks(src), pcapng_blocks(dst)
    assert [b for b in after if b[0] != DSB_TYPE] == before  # every block copied untouched
    kinds = [t for t, _ in after]
    assert kinds.count(DSB_TYPE) == 1 and kinds.index(DSB_TYPE) < kinds.index(EPB_TYPE)
    assert n == kinds.count(EPB_TYPE) == len(frame_times(src))
    assert frame_times(dst) == frame_times(src)


def _lab_pcap() -> tuple[Path, bytes, str]:
    require_shared()
    src = LAB_SAMPLES / "lab_cli_tls_keylog_ok.pcap"
    if not src.is_file():
        pytest.skip(f"{src} missing")
    return src, (LAB_SAMPLES / "lab_cli_tls_keylog_ok.keys").read_bytes(), "secure"


def _rewrite_pcap(src: Path, dst: Path, *, nanosecond: bool, big_endian: bool) -> None:
    """The same packets as another pcap flavour (ns resolution, big-endian)."""
    data = src.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    o = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = bytearray(struct.pack(o + "IHHiIII", magic, *struct.unpack_from("<HHiIII", data, 4)))
    pos = 24
    while pos < len(data):
        sec, usec, caplen, origlen = struct.unpack_from("<IIII", data, pos)
        frac = usec * 1000 + 7 if nanosecond else usec
        out += struct.pack(o + "IIII", sec, frac, caplen, origlen)
        out += data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
    dst.write_bytes(bytes(out))


@pytest.mark.parametrize(("nanosecond", "big_endian"), [(True, False), (False, True), (True, True)])
def test_pcap_flavours(tmp_path, nanosecond, big_endian):
    src, keylog, user = _lab_pcap()
    flavour = tmp_path / "flavour.pcap"
    _rewrite_pcap(src, flavour, nanosecond=nanosecond, big_endian=big_endian)
    dst = tmp_path / "out.pcapng"
    inject_keylog(flavour, keylog, dst)
    assert frame_times(dst) == frame_times(flavour)  # ns digits survive
    if nanosecond:
        assert all(t.split("\t")[0].endswith("7") for t in frame_times(dst))
    idb = next(body for t, body in pcapng_blocks(dst) if t == 1)
    assert struct.unpack_from("<HHI", idb)[0] == 1  # LINKTYPE_ETHERNET
    assert idb[8:13] == b"\x09\x00\x01\x00" + bytes([9 if nanosecond else 6])  # if_tsresol
    assert users(dst) == [user]


def test_keylog_object_and_never_in_place(tmp_path):
    """#20.4: the output is never an input (it used to replace the capture)."""
    src, keylog, user = _lab_pcap()
    work = tmp_path / "copy.pcap"
    shutil.copy(src, work)
    before = work.read_bytes()
    with pytest.raises(UsageError, match="is also an input"):
        inject_keylog(work, KeyLog.from_text(keylog), work)
    assert work.read_bytes() == before
    dst = tmp_path / "out.pcapng"
    inject_keylog(work, KeyLog.from_text(keylog), dst)
    assert dst.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    assert users(dst) == [user]
    assert stat.S_IMODE(dst.stat().st_mode) == 0o600  # it holds the TLS secrets
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.pcap", "out.pcapng"]


def test_errors(tmp_path):
    src, keylog, _ = _lab_pcap()
    with pytest.raises(UsageError):
        inject_keylog(src, b"# nothing here\n", tmp_path / "x.pcapng")
    with pytest.raises(UsageError):
        inject_keylog(src, 12345, tmp_path / "x.pcapng")
    bogus = tmp_path / "bogus.pcap"
    bogus.write_bytes(b"hello world, not a capture")
    with pytest.raises(CaptureError):
        inject_keylog(bogus, keylog, tmp_path / "x.pcapng")
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(src.read_bytes()[:-10])
    with pytest.raises(CaptureError):
        inject_keylog(cut, keylog, tmp_path / "y.pcapng")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bogus.pcap", "cut.pcap"]
