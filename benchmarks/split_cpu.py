"""Where the time of ``mysqlwire dissect --jobs N`` goes, in CPU seconds, so
that the split can be judged on a machine too busy for wall times: each
share's worker run alone (in this process, one after the other), then the
whole ``iter_split`` (workers + the parent's merge) for the parent's part.

    python benchmarks/split_cpu.py capture.pcap [--jobs 2]

Prints JSON: ``sequential`` (``iter_connections``), ``workers`` (each share),
``parent`` (merge + numbering + ids, i.e. ``iter_split`` minus its workers)
and ``critical_path`` = the slowest worker + the parent: the wall time of
``--jobs N`` on N idle cores (plus start-up).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time

from mysqlwire.dissect import CaptureSummary, DissectOptions, iter_connections
from mysqlwire.parallel import dissect_share, iter_split


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    opts = DissectOptions()
    t = time.process_time()
    n = sum(1 for _ in iter_connections(args.capture, opts))
    sequential = time.process_time() - t
    workers = []
    with tempfile.TemporaryDirectory() as tmp:
        for share in range(args.jobs):
            t = time.process_time()
            dissect_share((share, args.jobs, args.capture, opts, tmp))
            workers.append(round(time.process_time() - t, 3))
    t, c = time.process_time(), children_cpu()
    m = sum(1 for _ in iter_split(args.capture, opts, args.jobs, CaptureSummary(path=args.capture)))
    parent = time.process_time() - t
    in_workers = children_cpu() - c
    assert m == n
    print(
        json.dumps(
            {
                "connections": n,
                "sequential": round(sequential, 3),
                "workers": workers,
                "workers_in_pool": round(in_workers, 3),
                "parent": round(parent, 3),
                "critical_path": round(max(workers) + parent, 3),
                "speedup_estimate": round(sequential / (max(workers) + parent), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
