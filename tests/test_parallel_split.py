"""`mysqlwire dissect --jobs N capture.pcap` splits one capture over N
processes (by byte ranges for pcap, mysqlwire.rangesplit; by flow for
pcapng and with an idle timeout): stdout, stderr and the exit status are
byte for byte those of ``--jobs 1`` (ids, order, content), also on a
truncated or corrupt capture and on a file that is not a capture.

The stress captures tile real lab logins so that connections cross the
split points, 4-tuples are reused across them (after a close, and while the
first connection is still open), connections start mid-stream, and stray
segments hit a closed connection's tombstone in the next range.
mysqlwire.parallel is a library: it imports no command-line code and raises
instead of exiting."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mysqlwire import rangemerge, rangesplit
from mysqlwire.capture import open_capture
from mysqlwire.capture.decode import TcpSegment, decode_tcp
from mysqlwire.dissect import CaptureSummary, DissectOptions, iter_connections
from mysqlwire.errors import CaptureError
from mysqlwire.parallel import iter_split
from tests.conftest import LAB_SAMPLES, require_shared
from tests.pcapgen import ACK, FIN, PSH, tcp_frame, write_pcap

REPO = Path(__file__).resolve().parent.parent
SMALL = {"MYSQLWIRE_SPLIT_MIN_RANGE": "4096"}  # split even small captures

TEMPLATES = [
    "lab_cli_native_wrong",
    "lab_cli_dual_native_ok",
    "lab_cli_compressed_ok",
    "lab_connector_change_user_ok",
    "lab_mariadb_ed25519_ok",
    "lab_pymysql_native_ok",
]
T0 = 1_700_000_000.0
_CACHE: dict[str, list] = {}


def mysqlwire(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from mysqlwire.cli import main; main()", *map(str, args)],
        capture_output=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )


def same(*args, jobs=(2, 3), env=None) -> subprocess.CompletedProcess:
    one = mysqlwire("dissect", "--jobs", "1", *args)
    for n in jobs:
        par = mysqlwire("dissect", "--jobs", str(n), *args, env=env)
        assert par.stdout == one.stdout
        assert par.stderr == one.stderr
        assert par.returncode == one.returncode
    return one


# --- stress captures ------------------------------------------------------------------


def _template(name: str) -> list:
    """A lab login as (from_client, seq offset, ack offset, flags, payload)."""
    if name not in _CACHE:
        require_shared()
        segs = [decode_tcp(f.linktype, f.data) for f in open_capture(LAB_SAMPLES / f"{name}.pcap")]
        client = (segs[0].saddr, segs[0].sport)
        isn = {}
        for s in segs:
            isn.setdefault((s.saddr, s.sport) == client, s.seq)
        out = []
        for s in segs:
            fc = (s.saddr, s.sport) == client
            out.append((fc, s.seq - isn[fc], s.ack - isn[not fc], s.flags, s.payload))
        _CACHE[name] = out
    return _CACHE[name]


def conv(
    i,
    t0,
    *,
    name=None,
    port=None,
    client=None,
    isn=None,
    srv_isn=None,
    drop_first=0,
    keep_open=False,
):
    """One login's frames, re-addressed, spaced 50 ms apart from ``t0``."""
    segs = _template(name or TEMPLATES[i % len(TEMPLATES)])
    if keep_open:
        segs = [s for s in segs if not s[3] & (FIN | 0x04)]
    cip = client or f"10.1.{i // 200}.{i % 200 + 1}"
    cport = port or 40000 + i
    base = {True: isn or 1000 + i * 7919, False: srv_isn or 900_000 + i * 104_729}
    frames = []
    for j, (fc, seq, ack, flags, payload) in enumerate(segs[drop_first:]):
        src, dst = (
            ((cip, cport), ("10.0.0.10", 3306)) if fc else (("10.0.0.10", 3306), (cip, cport))
        )
        a = base[not fc] + ack if flags & ACK else 0
        frame = tcp_frame(src[0], src[1], dst[0], dst[1], base[fc] + seq, a, flags, payload)
        frames.append((t0 + j * 0.05, frame))
    return frames


def stray(t, client, port, seq, *, data=b""):
    """A client segment on a 4-tuple whose connection is over."""
    flags = ACK | (PSH if data else 0)
    return [(t, tcp_frame(client, port, "10.0.0.10", 3306, seq, 1, flags, data))]


def build(path: Path, n: int = 200, *, specials=(1 / 3, 1 / 2, 2 / 3), late_stray=False) -> Path:
    """``n`` logins 0.1 s apart (about ten open at any time), and around
    each fraction of the capture in ``specials``: a 4-tuple reused after its
    close and while still open, stray segments on a closed 4-tuple, logins
    joined mid-stream."""
    frames = []
    for i in range(n):
        frames += conv(i, T0 + i * 0.1, drop_first=3 if i % 11 == 5 else 0)
    span = n * 0.1
    for k, frac in enumerate(specials):
        mid = T0 + span * frac
        ip = f"10.9.{k}.1"
        # reuse after a close: A ends well before the split point, B (same
        # 4-tuple, another ISN) starts after it
        frames += conv(0, mid - 4, client=ip, port=50000, isn=111)
        frames += conv(1, mid + 1, client=ip, port=50000, isn=222_222)
        # reuse of an open connection: C never closes, D's SYN reuses its 4-tuple
        frames += conv(2, mid - 2, client=ip, port=50001, isn=333, keep_open=True)
        frames += conv(3, mid + 2, client=ip, port=50001, isn=4_444_444)
        # the same while C's frames run across the split point: the next
        # range sees C's rest first (dropped), then D's SYN
        frames += conv(2, mid - 0.5, client=ip, port=50005, isn=777, keep_open=True)
        frames += conv(3, mid + 2.5, client=ip, port=50005, isn=8_888_888)
        # stray segments on a closed 4-tuple, after the split point: the
        # sequential reassembler's tombstone absorbs them
        frames += conv(4, mid - 3.5, client=ip, port=50002, isn=555)
        frames += stray(mid + 1.5, ip, 50002, 9999)
        frames += stray(mid + 1.6, ip, 50002, 9999, data=b"\x01\x00\x00\x00\x0e")
        # joined mid-stream while crossing the split point
        frames += conv(5, mid - 0.4, client=ip, port=50003, drop_first=3)
        frames += conv(6, mid - 0.3, client=ip, port=50004, drop_first=5, keep_open=True)
    if late_stray:
        # a stray segment 150 s after its connection closed: whether the
        # sequential reassembler still has the tombstone depends on pruning
        frames += conv(7, T0 + 1, client="10.8.0.1", port=50100)
        frames += conv(8, T0 + 160, client="10.8.0.2", port=50101)
        frames += stray(T0 + 158, "10.8.0.1", 50100, 4242, data=b"\x05\x00\x00\x00\x03ABCD")
        frames += conv(9, T0 + 170, client="10.8.0.3", port=50102)
    write_pcap(path, sorted(frames, key=lambda f: f[0]))
    return path


@pytest.fixture(scope="module")
def stress(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("stress") / "stress.pcap")


def records(conns) -> list[str]:
    return [json.dumps(c.to_record(with_packets=True), sort_keys=True) for c in conns]


def range_results(path: Path, starts: list[int], opts, tmp: Path, render=None) -> list[dict]:
    """Every range's worker result, run here one after the other: the ranges
    start at ``starts`` (the last runs to the end of the file)."""
    stops = [*starts[1:], None]
    return [
        rangesplit.range_worker((k, s, e, str(path), opts, str(tmp), render))
        for k, (s, e) in enumerate(zip(starts, stops, strict=True))
    ]


def in_process(path: Path, jobs: int, opts, tmp: Path, first: int = 100):
    """The byte-range split run here, one worker after the other: raises
    rangemerge.Unsplittable when it would have fallen back.  Ranges of equal
    size by default (``build``'s special cases sit at 1/3, 1/2 and 2/3)."""
    starts = rangesplit.plan(str(path), jobs, 4096, first)
    assert starts is not None and len(starts) == jobs
    kept, slots, flows, ports = rangemerge.settle(range_results(path, starts, opts, tmp))
    return list(rangemerge.merge(kept, slots, opts.reorder_window)), flows, ports


# --- in process: the split itself, never the fallback ------------------------------------


@pytest.mark.parametrize("jobs", [2, 3, 4, 7])
def test_ranges_match_sequential(stress, tmp_path, jobs):
    opts = DissectOptions(with_packets=True)
    summary = CaptureSummary(path=str(stress))
    expect = records(iter_connections(str(stress), opts, summary))
    got, flows, ports = in_process(stress, jobs, opts, tmp_path)
    assert records(got) == expect
    assert [c.id for c in got] == list(range(1, len(expect) + 1))
    assert flows == summary.tcp_flows and ports == summary.server_ports
    # every special case happened: both logins of each reused 4-tuple, the
    # stray segments absorbed (no connection, no flow), logins joined mid-stream
    recs = [json.loads(r) for r in expect]
    ports = [r["client"].rsplit(":", 1)[1] for r in recs if r["client"].startswith("10.9.")]
    counts = [ports.count(p) for p in ("50000", "50001", "50002", "50004", "50005")]
    assert counts == [6, 6, 3, 3, 6]
    assert sum(r["outcome"] == "midstream" for r in recs) == 3
    assert summary.tcp_flows == len(recs) == 227


def test_small_reorder_window_releases_alike(stress, tmp_path):
    opts = DissectOptions(reorder_window=3)
    expect = [(c.id, c.client, c.first_ts) for c in iter_connections(str(stress), opts)]
    got, _f, _p = in_process(stress, 3, opts, tmp_path)
    assert [(c.id, c.client, c.first_ts) for c in got] == expect
    # open connections held the queue: some were released out of first-packet order
    assert expect != sorted(expect, key=lambda e: e[2])


def test_port_filter_matches(stress, tmp_path):
    opts = DissectOptions(ports=(40007,))
    summary = CaptureSummary(path=str(stress))
    expect = records(iter_connections(str(stress), opts, summary))
    got, flows, ports = in_process(stress, 2, opts, tmp_path)
    assert records(got) == expect and len(expect) == 1
    assert flows == summary.tcp_flows and ports == summary.server_ports


def damaged(stress: Path, tmp: Path) -> tuple[Path, Path]:
    """The stress capture cut three quarters in, and with an impossible
    record length there."""
    data = stress.read_bytes()
    cut = tmp / "cut.pcap"
    cut.write_bytes(data[: len(data) * 3 // 4 + 7])
    pos = 24
    while pos < len(data) * 3 // 4:
        pos += 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
    bad = tmp / "bad.pcap"
    bad.write_bytes(data[: pos + 8] + (0x7FFFFFF0).to_bytes(4, "little") + data[pos + 12 :])
    return cut, bad


@pytest.mark.parametrize("jobs", [2, 3, 4])
def test_damage_in_a_later_range_matches(stress, tmp_path, jobs):
    for path, why in zip(damaged(stress, tmp_path), ("truncated", "corrupt"), strict=True):
        opts = DissectOptions()
        summary = CaptureSummary(path=str(path))
        expect = records(iter_connections(str(path), opts, summary))
        got, flows, ports = in_process(path, jobs, opts, tmp_path)
        assert records(got) == expect and 100 < len(expect) < 227
        assert flows == summary.tcp_flows and ports == summary.server_ports
        assert summary.error.startswith(why)


def test_prerendered_text_is_the_renderers(stress):
    """Workers render each connection with a sentinel id the parent fills
    in: the same text as rendering it with its id, in every format; a
    connection whose text holds the sentinel elsewhere is sent as it is."""
    import io

    from mysqlwire.views.escape import json_dumps
    from mysqlwire.views.text import Renderer

    conns = list(iter_connections(str(stress), DissectOptions(with_packets=True)))[:40]
    for color in (False, True):
        spec = ("text", color, False, 80, "truecolor" if color else None)
        for c in conns:
            r = rangesplit.prerender(c, spec, True)
            assert isinstance(r, rangesplit.Rendered)
            r.id = c.id = 17
            buf = io.StringIO()
            Renderer(color=color, file=buf).connection(c, packets=True)
            assert r.text() == buf.getvalue()
    for c in conns:
        r = rangesplit.prerender(c, ("jsonl",), True)
        r.id = c.id = 5
        assert r.text() == json_dumps(c.to_record(with_packets=True))
        assert (r.failed, r.user, r.tls) == (c.failed, c.user, c.tls)
    c = conns[0]
    c.server_version = rangesplit.SENTINEL  # after the id
    assert rangesplit.prerender(c, ("jsonl",), False) is c
    c = conns[1]
    c.capture = f"/tmp/{rangesplit.SENTINEL}.pcap"  # before the id (JSON only)
    for spec in (("jsonl",), ("json",)):
        assert rangesplit.prerender(c, spec, False) is c
    c.server_version = f"x{rangesplit.SENTINEL}"  # after it in the text block
    assert rangesplit.prerender(c, ("text", False, False, 80, None), False) is c


def random_capture(path: Path, seed: int, *, harsh: bool = True) -> Path:
    """Logins at random times on a few client ports (4-tuples reused, open
    ones too), some joined mid-stream, frames lost or sent twice, stray
    segments on closed 4-tuples; ``harsh``: few ports, a lot of all that."""
    import random

    rnd = random.Random(seed)
    ports, odd, loss = (40, 0.1, 0.03) if harsh else (400, 0.03, 0.005)
    frames = []
    for i in range(60):
        t0 = T0 + rnd.uniform(0, 30)
        port = 50000 + rnd.randrange(ports)
        drop = rnd.choice([3, 5]) if rnd.random() < odd * 3 else 0
        isns = {"isn": rnd.randrange(1, 1 << 32), "srv_isn": rnd.randrange(1, 1 << 32)}
        keep_open = rnd.random() < odd
        frames += conv(
            i, t0, port=port, client="10.7.0.1", drop_first=drop, keep_open=keep_open, **isns
        )
        if rnd.random() < odd * 2:
            frames += stray(t0 + rnd.uniform(2, 5), "10.7.0.1", port, rnd.randrange(1 << 32))
    frames = [f for f in frames if rnd.random() > loss]
    frames += [f for f in frames if rnd.random() < loss]  # retransmissions
    write_pcap(path, sorted(frames, key=lambda f: f[0]))
    return path


@pytest.mark.parametrize("harsh", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_random_captures_random_boundaries(tmp_path, seed, harsh):
    """Random captures cut at random record boundaries: the split gives the
    sequential answer, or says it cannot (and iter_split then dissects
    sequentially); it never gives another answer."""
    import random

    path = random_capture(tmp_path / f"r{seed}.pcap", seed, harsh=harsh)
    data = path.read_bytes()
    offsets, pos = [], 24
    while pos < len(data):
        offsets.append(pos)
        pos += 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
    opts = DissectOptions(with_packets=True)
    summary = CaptureSummary(path=str(path))
    expect = records(iter_connections(str(path), opts, summary))
    rnd = random.Random(seed)
    split = 0
    for _ in range(6):
        starts = [24, *sorted(rnd.sample(offsets[1:], rnd.randrange(1, 5)))]
        try:
            kept, slots, flows, ports = rangemerge.settle(
                range_results(path, starts, opts, tmp_path)
            )
        except rangemerge.Unsplittable:
            continue
        split += 1
        assert records(rangemerge.merge(kept, slots, opts.reorder_window)) == expect
        assert (flows, ports) == (summary.tcp_flows, summary.server_ports)
        assert sum(r["frames"] for r in kept) == summary.frames
    if not harsh:
        assert split >= 2  # ordinary traffic is rarely in doubt


def test_pruned_tombstone_is_not_guessed(tmp_path):
    """A stray segment long after its connection closed, in another range:
    the split cannot know whether the sequential tombstone was pruned, so
    iter_split dissects sequentially (same answer)."""
    path = build(tmp_path / "late.pcap", n=40, specials=(), late_stray=True)
    opts = DissectOptions()
    with pytest.raises(rangemerge.Unsplittable, match="pruned"):
        in_process(path, 2, opts, tmp_path)
    expect = records(iter_connections(str(path), opts))
    s = CaptureSummary(path=str(path))
    assert records(iter_split(path, opts, 2, s, min_range=4096)) == expect


def test_misaligned_range_is_detected(stress, tmp_path):
    starts = rangesplit.plan(str(stress), 2, 4096)
    res = rangesplit.range_worker(
        (0, 24, starts[1] + 5, str(stress), DissectOptions(), str(tmp_path), None)
    )
    assert res["status"] == "misaligned"
    with pytest.raises(rangemerge.Unsplittable):
        rangemerge.settle([res])


def test_failed_worker_means_sequential(stress, tmp_path):
    """A worker that fails (here: its spool cannot be written) is never
    guessed around: the parent dissects sequentially."""
    starts = rangesplit.plan(str(stress), 2, 4096)
    task = (1, starts[1], None, str(stress), DissectOptions(), str(tmp_path / "missing"), None)
    res = rangesplit.range_worker(task)
    assert res["fail"] is not None
    with pytest.raises(rangemerge.Unsplittable, match="range 1"):
        rangemerge.settle([{**res, "k": 0, "fail": None, "status": "ok"}, res])


def test_boundary_is_a_record_start(stress):
    data = stress.read_bytes()
    starts = rangesplit.plan(str(stress), 5, 4096)
    walk, pos = set(), 24
    while pos < len(data):
        walk.add(pos)
        pos += 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
    assert len(starts) == 5 and set(starts) <= walk


# --- the command: bytes, stderr and exit status of --jobs 1 ------------------------------


def test_small_ranges_setting_splits(stress, monkeypatch):
    """$MYSQLWIRE_SPLIT_MIN_RANGE (what the command tests here use) really
    makes iter_split cut a small capture into byte ranges."""
    calls = []
    settle = rangemerge.settle
    monkeypatch.setattr(rangemerge, "settle", lambda res: calls.append(len(res)) or settle(res))
    monkeypatch.setenv("MYSQLWIRE_SPLIT_MIN_RANGE", "4096")
    opts = DissectOptions()
    got = records(iter_split(stress, opts, 3, CaptureSummary(path=str(stress))))
    assert calls == [3] and got == records(iter_connections(str(stress), opts))


def test_cli_stress_identical(stress):
    res = same("--format", "jsonl", stress, jobs=(2, 3, 5), env=SMALL)
    assert len(res.stdout.splitlines()) > 200 and res.returncode == 1
    same("--no-color", stress, jobs=(2,), env=SMALL)
    same("--color", "--packets", "-u", "app", stress, jobs=(3,), env=SMALL)
    same("--format", "json", "--packets", "--failed", stress, jobs=(3,), env=SMALL)
    same("--format", "json", "-u", "nobody-at-all", stress, jobs=(2,), env=SMALL)


def test_cli_keylog_identical(tmp_path):
    """TLS logins decrypted with a key log, across the split points."""
    frames = []
    for i in range(120):
        name = "lab_cli_tls_keylog_ok" if i % 3 == 0 else None
        frames += conv(i, T0 + i * 0.1, name=name)
    path = tmp_path / "tls.pcap"
    write_pcap(path, sorted(frames, key=lambda f: f[0]))
    keys = LAB_SAMPLES / "lab_cli_tls_keylog_ok.keys"
    res = same("--format", "jsonl", "-k", keys, path, jobs=(2, 3), env=SMALL)
    recs = [json.loads(line) for line in res.stdout.splitlines()]
    assert sum(r.get("tls_status") == "ok" for r in recs) == 40
    same("--no-color", path, jobs=(2,), env=SMALL)  # without keys: the warning-free text


def test_cli_nothing_examined_identical(stress):
    res = same("--port", "9999", "--format", "jsonl", stress, jobs=(2,), env=SMALL)
    assert res.returncode == 3 and b"3306" in res.stderr  # the busiest ports, counted alike


def test_cli_truncated_and_corrupt_identical(stress, tmp_path):
    cut, bad = damaged(stress, tmp_path)
    res = same("--format", "jsonl", cut, jobs=(2, 3), env=SMALL)
    assert b"truncated record" in res.stderr and res.stdout
    res = same("--format", "jsonl", bad, jobs=(2, 4), env=SMALL)
    assert b"corrupt record at byte" in res.stderr and res.stdout


def test_cli_idle_timeout_and_pcapng_identical(stress, tmp_path):
    from mysqlwire.capture.writer import write_with_secrets

    same("--idle-timeout", "1", "--format", "jsonl", stress, jobs=(2,), env=SMALL)
    ng = tmp_path / "stress.pcapng"
    with open(stress, "rb") as fin, open(ng, "wb") as fout:
        write_with_secrets(fin, fout, b"# no keys\n")
    same("--format", "jsonl", ng, jobs=(2,), env=SMALL)


def test_cli_named_pipe_identical(stress, tmp_path):
    """A FIFO is read once, by the parent (no byte ranges in a pipe)."""
    import threading

    fifo = tmp_path / "cap.fifo"
    os.mkfifo(fifo)
    feeder = threading.Thread(target=lambda: fifo.write_bytes(stress.read_bytes()))
    feeder.start()
    par = mysqlwire("dissect", "--jobs", "2", "--format", "jsonl", fifo, env=SMALL)
    feeder.join(timeout=60)
    one = mysqlwire("dissect", "--format", "jsonl", stress)
    assert par.returncode == one.returncode and par.stderr == one.stderr
    assert par.stdout == one.stdout.replace(str(stress).encode(), str(fifo).encode())


def test_cli_smaller_than_a_split_identical():
    require_shared()
    same("--format", "jsonl", LAB_SAMPLES / "lab_cli_dual_native_ok.pcap", jobs=(2,))


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("split") / "g.pcap"
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "make_capture.py"), "-n", "400", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def test_split_jsonl_identical(generated):
    res = same("--format", "jsonl", generated, env=SMALL)
    lines = res.stdout.splitlines()
    assert len(lines) == 400 and res.returncode == 1  # wrong passwords in the mix
    assert lines[0].startswith(b'{"schema": "mysqlwire/connection/1"')


def test_split_text_and_packets_identical(generated):
    same("--no-color", generated, jobs=(2,), env=SMALL)
    same("--format", "json", "--packets", "--failed", generated, jobs=(2,), env=SMALL)


def test_split_truncated_capture_identical(generated, tmp_path):
    cut = tmp_path / "cut.pcap"
    data = generated.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3 + 7])
    res = same("--format", "jsonl", cut, jobs=(2,), env=SMALL)
    assert b"truncated record" in res.stderr
    assert 0 < len(res.stdout.splitlines()) < 400


def test_split_not_a_capture(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"hello, this is not a capture\n" * 10)
    res = same("--format", "jsonl", junk, jobs=(2,))
    assert res.returncode == 2 and res.stdout == b""
    assert res.stderr.count(b"\n") == 1 and b"not a pcap" in res.stderr
    with pytest.raises(CaptureError, match="not a pcap"):
        list(iter_split(junk, DissectOptions(), 2, CaptureSummary(path=str(junk))))


def test_library_module_imports_no_cli():
    code = (
        "import sys, mysqlwire.parallel, mysqlwire.rangesplit, mysqlwire.rangemerge; "
        "bad = [m for m in sys.modules if m.startswith('mysqlwire.commands') or m == 'click']; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for name in ("parallel.py", "rangesplit.py", "rangemerge.py"):
        source = (REPO / "mysqlwire" / name).read_text()
        assert "sys.exit" not in source and "commands" not in source.replace("command-line", "")


# --- workers that fail, die or are cut short; boundaries in retransmissions -----------------

_FORK = pytest.mark.skipif(
    __import__("multiprocessing").get_start_method() != "fork",
    reason="the patched worker reaches the child process only through fork",
)


def _worker_then(fate):
    """A range_worker that dissects part of its range, then meets ``fate``."""
    real = rangesplit.range_events

    def worker(task):
        events = real(task)
        next(events, None)  # some of the range dissected
        fate()

    return worker


def _killed():
    import signal

    os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would


def _disk_full():
    raise OSError(28, "No space left on device")


def _interrupted():
    raise KeyboardInterrupt


@_FORK
@pytest.mark.parametrize("fate", [_killed, _disk_full, _interrupted, lambda: os._exit(0)])
def test_worker_failing_midway_means_sequential(stress, monkeypatch, fate):
    """A worker killed, failing or exiting without a result halfway through
    its range: the parent notices (no hang, no traceback) and dissects
    sequentially; the connections it already handed out are not repeated."""
    monkeypatch.setattr(rangesplit, "range_worker", _worker_then(fate))
    opts = DissectOptions(with_packets=True)
    expect_summary = CaptureSummary(path=str(stress))
    expect = records(iter_connections(str(stress), opts, expect_summary))
    s = CaptureSummary(path=str(stress))
    got = list(iter_split(stress, opts, 3, s, min_range=4096))
    assert records(got) == expect
    assert [c.id for c in got] == list(range(1, len(expect) + 1))
    assert (s.connections, s.tcp_flows, s.frames) == (
        expect_summary.connections,
        expect_summary.tcp_flows,
        expect_summary.frames,
    )


@_FORK
def test_cli_worker_killed_identical(stress):
    """The command with a worker killed midway: stdout, stderr and exit
    status of --jobs 1 (the sequential fallback, one process)."""
    code = (
        "import os, signal\n"
        "from mysqlwire import rangesplit\n"
        "real = rangesplit.range_events\n"
        "def worker(task):\n"
        "    next(real(task), None)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "rangesplit.range_worker = worker\n"
        "from mysqlwire.cli import main\n"
        "main()\n"
    )
    one = mysqlwire("dissect", "--jobs", "1", "--format", "jsonl", stress)
    par = subprocess.run(
        [sys.executable, "-c", code, "dissect", "--jobs", "2", "--format", "jsonl", str(stress)],
        capture_output=True,
        timeout=600,
        check=False,
        env={**os.environ, **SMALL},
    )
    assert (par.stdout, par.stderr, par.returncode) == (one.stdout, one.stderr, one.returncode)
    assert len(one.stdout.splitlines()) > 200


def _offsets(data: bytes) -> list[int]:
    out, pos = [], 24
    while pos < len(data):
        out.append(pos)
        pos += 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
    return out


def test_boundary_inside_a_retransmission_burst(tmp_path):
    """Logins whose segments are sent three and four times in a row (a
    retransmission burst) while other logins run: a range boundary on every
    record of the bursts gives the sequential answer, or the split says it
    cannot (never another answer)."""
    frames = []
    for i in range(40):
        frames += conv(i, T0 + i * 0.1)
    burst = []
    for j, (t, frame) in enumerate(conv(41, T0 + 1.95, client="10.6.0.1", port=45000)):
        copies = 4 if j in (0, 3, 4, 6) else 1  # SYN, login packets, the OK
        burst += [(t + c * 0.0001, frame) for c in range(copies)]
    frames += burst
    path = tmp_path / "burst.pcap"
    write_pcap(path, sorted(frames, key=lambda f: f[0]))
    data = path.read_bytes()
    offsets = _offsets(data)
    marks = {(round(t, 4), f) for t, f in burst}
    inside = []  # offsets of the burst's records (and the ones after them)
    for k, at in enumerate(offsets):
        sec = int.from_bytes(data[at : at + 4], "little")
        usec = int.from_bytes(data[at + 4 : at + 8], "little")
        frame = data[at + 16 : at + 16 + int.from_bytes(data[at + 8 : at + 12], "little")]
        if (round(sec + usec / 1e6, 4), frame) in marks:
            inside += offsets[k : k + 2]
    assert len(set(inside)) > 10
    opts = DissectOptions(with_packets=True)
    summary = CaptureSummary(path=str(path))
    expect = records(iter_connections(str(path), opts, summary))
    split = 0
    for at in sorted(set(inside)):
        try:
            kept, plan, flows, ports = rangemerge.settle(
                range_results(path, [24, at], opts, tmp_path)
            )
        except rangemerge.Unsplittable:
            continue
        split += 1
        assert records(rangemerge.merge(kept, plan, opts.reorder_window)) == expect
        assert (flows, ports) == (summary.tcp_flows, summary.server_ports)
    assert split >= len(set(inside)) // 2  # retransmissions alone are no reason to give up


def test_syn_index_holds_every_syn(stress, tmp_path):
    """The parent's SYN index (a range's SYNs that started a flow travel in
    the flow's record, the others in its SYN list) holds, for every 4-tuple
    several ranges use, every SYN of the capture on it, in order."""
    from mysqlwire.capture.decode import decode_frame

    data = stress.read_bytes()
    starts = rangesplit.plan(str(stress), 3, 4096)
    opts = DissectOptions()
    results = range_results(stress, starts, opts, tmp_path)
    keys = rangemerge.crossing_keys(results)
    assert len(keys) >= 6  # the reused and crossing 4-tuples of build()
    index = rangemerge.syn_index(results, keys)
    expect: dict = {}
    for at in _offsets(data):
        end = at + 16 + int.from_bytes(data[at + 8 : at + 12], "little")
        seg = decode_frame(1, data[at + 16 : end])
        if isinstance(seg, TcpSegment) and seg.flags & 0x02:
            a = seg.saddr + struct.pack("!HH", seg.sport, 0)
            b = seg.daddr + struct.pack("!HH", seg.dport, 0)
            key = min(a, b) + max(a, b)  # Flow.endpoints_key
            if key in keys:
                src = (seg.saddr, seg.sport)
                expect.setdefault(key, []).append((end, src, seg.flags, seg.seq, seg.ack))
    assert {k: v[1] for k, v in index["all"].items()} == expect
