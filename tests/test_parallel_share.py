"""``mysqlwire dissect --jobs N`` on a pcap: the parent's share of the
byte ranges (:data:`mysqlwire.rangesplit.FIRST_SHARE`), and the parent's
release of the workers' connections (:class:`mysqlwire.rangemerge.Release`)
with the rendered ones sent as tuples and the others as connections.
The capture builders are tests/test_parallel_split.py's."""

from __future__ import annotations

from pathlib import Path

import pytest

from mysqlwire import rangemerge, rangesplit
from mysqlwire.dissect import CaptureSummary, DissectOptions, iter_connections
from mysqlwire.parallel import iter_split
from tests.test_parallel_split import build, in_process, range_results, records


@pytest.fixture(scope="module")
def stress(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("stress") / "stress.pcap")


def record_offsets(path: Path) -> list[int]:
    """Where each record of a little-endian microsecond pcap starts."""
    data = path.read_bytes()
    offsets, pos = [], 24
    while pos < len(data):
        offsets.append(pos)
        pos += 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
    return offsets


@pytest.mark.parametrize("jobs", [2, 3])
def test_first_range_is_smaller_by_its_share(tmp_path, jobs):
    """The parent's range (it also writes and merges) is FIRST_SHARE percent
    of the others: each boundary is the first record at or after its target,
    and the split with the default share gives the sequential answer."""
    path = build(tmp_path / "plain.pcap", n=120, specials=())
    size = path.stat().st_size
    offsets = record_offsets(path)
    for first in (rangesplit.FIRST_SHARE, 50, 100):
        starts = rangesplit.plan(str(path), jobs, 4096, first)
        targets = [
            24 + (size - 24) * (first + 100 * k) // (first + 100 * (jobs - 1))
            for k in range(jobs - 1)
        ]
        assert starts == [24] + [min(o for o in offsets if o >= t) for t in targets]
    assert rangesplit.plan(str(path), jobs, 4096) == rangesplit.plan(
        str(path), jobs, 4096, rangesplit.FIRST_SHARE
    )
    assert 50 < rangesplit.FIRST_SHARE < 100
    opts = DissectOptions(with_packets=True)
    summary = CaptureSummary(path=str(path))
    expect = records(iter_connections(str(path), opts, summary))
    got, flows, ports = in_process(path, jobs, opts, tmp_path, rangesplit.FIRST_SHARE)
    assert records(got) == expect and len(expect) == 120
    assert flows == summary.tcp_flows and ports == summary.server_ports


@pytest.mark.parametrize("seed", range(4))
def test_release_is_the_pipelines_rule(seed):
    """rangemerge.Release (with its shortcut for the next slot when nothing
    waits) against the rule written out here, step by step: a slot's
    connection waits until every earlier slot is done, unless more than
    ``window`` wait, then all go in slot order; ids count what is released;
    a flow that was not MySQL (None) takes no id.  Random finishing orders,
    windows 0..4."""
    import random

    from mysqlwire.rangemerge import Release

    class C:
        id = None

    rng = random.Random(seed)
    for _ in range(300):
        n = rng.randint(1, 30)
        order = list(range(n))
        rng.shuffle(order)
        if rng.random() < 0.3:
            order.sort()  # in order: the shortcut every time
        window = rng.randint(0, 4)
        conns = {s: (None if rng.random() < 0.2 else C()) for s in order}
        rel = Release(window)
        waiting, nxt, ids = {}, 0, 0

        def numbered(out):
            nonlocal ids
            expect = []
            for c in out:
                if c is not None:
                    ids += 1
                    expect.append((c, ids))
            return expect

        for s in order:
            got = [(c, c.id) for c in rel.add(s, conns[s])]
            waiting[s] = conns[s]
            out = []
            while nxt in waiting:
                out.append(waiting.pop(nxt))
                nxt += 1
            if len(waiting) > window:
                last = nxt
                for w in sorted(waiting):
                    out.append(waiting.pop(w))
                    last = w
                nxt = max(nxt, last + 1)
            assert got == numbered(out)
        got = [(c, c.id) for c in rel.flush()]
        assert got == numbered([waiting.pop(w) for w in sorted(waiting)])


def test_rendered_and_unrendered_connections_merge_alike(stress, tmp_path, monkeypatch):
    """A worker sends a rendered connection as the tuple of Rendered's
    arguments and one it could not render (its text holds the sentinel
    elsewhere) as the connection itself; the parent's merge numbers both
    kinds in one sequence: the lines are the sequential ones."""
    from mysqlwire.views.escape import json_dumps

    real = rangesplit.render_parts
    seen = []

    def some_unrendered(conn, render, packets):
        seen.append(conn)
        return conn if len(seen) % 3 == 0 else real(conn, render, packets)

    monkeypatch.setattr(rangesplit, "render_parts", some_unrendered)
    opts = DissectOptions()
    expect = [json_dumps(c.to_record()) for c in iter_connections(str(stress), opts)]
    starts = rangesplit.plan(str(stress), 3, 4096, 100)
    results = range_results(stress, starts, opts, tmp_path, ("jsonl",))
    kept, plan, _flows, _ports = rangemerge.settle(results)
    got = list(rangemerge.merge(kept, plan, opts.reorder_window))
    kinds = {c.__class__ for c in got}
    assert kinds == {rangesplit.Rendered, type(seen[0])}
    lines = [
        c.text() if c.__class__ is rangesplit.Rendered else json_dumps(c.to_record()) for c in got
    ]
    assert lines == expect
    assert [c.id for c in got] == list(range(1, len(expect) + 1))


_FORK = pytest.mark.skipif(
    __import__("multiprocessing").get_start_method() != "fork",
    reason="the patched worker reaches the child process only through fork",
)


class _Unpicklable:
    def __reduce__(self):
        raise OSError(32, "Broken pipe")  # as a parent gone, or a full disk


@_FORK
def test_result_cut_midway_through_its_chunks_means_sequential(stress, monkeypatch, capfd):
    """A worker's result travels in chunks (the flow records, the SYNs);
    one that fails after some chunks went (here: a record that cannot be
    sent) is a failed range: the capture is dissected sequentially, same
    connections and ids, and the worker prints no traceback."""
    from mysqlwire import parallel

    real = rangesplit.range_worker

    def worker(task):
        out = real(task)
        assert len(out["flows"]) > 8
        out["flows"][5] = _Unpicklable()
        return out

    monkeypatch.setattr(rangesplit, "range_worker", worker)
    monkeypatch.setattr(parallel, "RESULT_CHUNK", 4)
    seen = []
    real_iter = rangemerge.settle

    def settle(results):
        seen.append([r["fail"] for r in results])
        return real_iter(results)

    monkeypatch.setattr(rangemerge, "settle", settle)
    opts = DissectOptions(with_packets=True)
    expect = records(iter_connections(str(stress), opts))
    capfd.readouterr()
    got = list(iter_split(stress, opts, 3, CaptureSummary(path=str(stress)), min_range=4096))
    assert records(got) == expect
    assert [c.id for c in got] == list(range(1, len(expect) + 1))
    # both workers' results were cut: failed ranges, the sequential path
    assert len(seen) == 1 and seen[0][0] is None
    assert all("ended without a result" in fail for fail in seen[0][1:])
    err = capfd.readouterr().err
    assert "Traceback" not in err and err == ""
