"""Where the time of ``mysqlwire dissect --jobs N`` goes, in CPU seconds, so
that the split can be judged on a machine too busy for wall times: each
byte range's worker run alone (in this process, one after the other), then
the whole ``iter_split`` (this process dissects the first range itself and
merges; worker processes the others).

    python benchmarks/split_cpu.py capture.pcap [--jobs 2] [--render jsonl|text]

Prints JSON: ``fallback`` (why ``iter_split`` would dissect sequentially,
or null), ``sequential`` (``iter_connections``, plus rendering with
``--render``), ``workers`` (each range alone), ``in_parent`` (``iter_split``
in this process: the first range, the merge, numbering, ids and the same
output), ``first_range_in_parent`` (the same, run beside the workers, with its
output: more than alone on a busy machine), ``merge`` (``in_parent`` after
its first range), ``children`` (the worker processes) and
``critical_path`` = the slowest range alone + the merge:
the wall time of ``--jobs N`` on N idle cores (plus start-up).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import resource
import tempfile
import time

from mysqlwire import rangemerge, rangesplit
from mysqlwire.dissect import CaptureSummary, DissectOptions, iter_connections
from mysqlwire.parallel import iter_split


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def spec(render: str | None) -> tuple | None:
    """The workers' render spec (mysqlwire.rangesplit.prerender) for --render."""
    if render == "text":
        return ("text", False, False, 80, None)
    return None if render is None else (render,)


def consume(conns, render: str | None) -> int:
    if render is None:
        return sum(1 for _ in conns)
    from mysqlwire.views.jsonline import connection_line
    from mysqlwire.views.text import Renderer

    out = io.StringIO()
    text = Renderer(color=False, file=out)
    n = 0
    for c in conns:
        if isinstance(c, rangesplit.Rendered):
            out.write(c.text() + ("" if render == "text" else "\n"))
        elif render == "text":
            text.connection(c)
        else:
            out.write(connection_line(c) + "\n")  # as dissect --format jsonl
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--render", choices=["jsonl", "text"], default=None)
    args = ap.parse_args()
    gc.freeze()  # as the dissect command tunes its collector
    gc.set_threshold(7000, 10, 10)
    opts = DissectOptions()
    t = time.process_time()
    n = consume(iter_connections(args.capture, opts), args.render)
    sequential = time.process_time() - t
    starts = rangesplit.plan(args.capture, args.jobs)
    workers = []
    fallback = "no byte-range plan" if starts is None else None
    if starts is not None:
        stops = [*starts[1:], None]
        results = []
        with tempfile.TemporaryDirectory() as tmp:
            for k, (start, stop) in enumerate(zip(starts, stops, strict=True)):
                t = time.process_time()
                task = (k, start, stop, args.capture, opts, tmp, spec(args.render))
                results.append(rangesplit.range_worker(task))
                workers.append(round(time.process_time() - t, 3))
            try:
                rangemerge.settle(results)
            except rangemerge.Unsplittable as exc:
                fallback = str(exc)  # iter_split dissects sequentially
    marks: dict[str, float] = {}
    first_range = rangesplit.range_events

    def timed(task):  # the parent's first range, timed
        start = time.process_time()
        out = yield from first_range(task)
        marks["first"] = time.process_time() - start
        return out

    rangesplit.range_events = timed
    t, c = time.process_time(), children_cpu()
    summary = CaptureSummary(path=args.capture)
    split = iter_split(args.capture, opts, args.jobs, summary, render=spec(args.render))
    m = consume(split, args.render)
    parent = time.process_time() - t
    in_workers = children_cpu() - c
    assert m == n
    slowest = max(workers, default=0.0)
    rangesplit.range_events = first_range
    # after the first range: waiting (no CPU), then the merge
    merge = parent - marks.get("first", 0.0)
    print(
        json.dumps(
            {
                "connections": n,
                "ranges": starts,
                "fallback": fallback,
                "sequential": round(sequential, 3),
                "workers": workers,
                "children": round(in_workers, 3),
                "in_parent": round(parent, 3),
                "first_range_in_parent": round(marks.get("first", 0.0), 3),
                "merge": round(merge, 3),
                "critical_path": round(slowest + merge, 3),
                "speedup_estimate": round(sequential / (slowest + merge), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
