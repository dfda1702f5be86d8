#!/usr/bin/env python3
"""Regenerate the lab regression corpus: ``captures/lab/<scenario>.pcap`` (+ ``.keys``) and
``captures/lab/truth.jsonl``.

Starts the lab's throwaway MariaDB servers (tests/lab/mariadb.py), runs every scenario of
tests/lab/scenarios.py with its real client under tcpdump, checks each run against its truth with
the lab's own checks (tests/lab/checks.py: client result, wire facts, key log) and only then replaces
the corpus. Needs root and the lab packages (``bash scripts/lab_setup.sh``).

    python3 scripts/make_lab_captures.py              # all scenarios into captures/lab
    python3 scripts/make_lab_captures.py --out DIR    # somewhere else
    python3 scripts/make_lab_captures.py -k tls       # only scenarios whose name contains 'tls'
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.lab.checks import all_problems  # noqa: E402
from tests.lab.mariadb import LabUnavailable, MariaDBLab  # noqa: E402
from tests.lab.scenarios import SCENARIOS, run_all  # noqa: E402

README = """# Lab captures (generated)

Real clients logging in to a real, throwaway MariaDB ({server}) on loopback, one login (sometimes
followed by COM_CHANGE_USER) per capture, captured with tcpdump. Regenerate with
`python3 scripts/make_lab_captures.py` (root; `bash scripts/lab_setup.sh` first): it replaces every
file here. Scenarios, accounts and the truth come from `tests/lab/scenarios.py` and
`tests/lab/mariadb.py`, and every run is checked (client result, wire facts, key log) before it is
written.

`truth.jsonl` has one line per capture with the fields of `shared/captures/lab-samples/truth.jsonl`
(scenario, pcap, port, server_address, server, client, tls, keylog, compressed, user, database,
password, account_password, plugin_initial, plugin_client, switches, plugin_final, outcome,
error_code, sqlstate, error_message, client_error, expected_verdict, expected_code, other_codes,
verdict_with_client_password, client_port, command_errors, change_user, inner, notes) plus
`lab_server` (main / pamclear / hostonly) and `client_kind` (cli, pymysql, connector, mysqlclient,
mariadb). The truth is what the lab knows (the password it gave, the account, the server's rules,
the client's exception), never what mysqlwire's dissector says.

`*.keys` are NSS key logs for TLS captures: Python's ssl (`SSLKEYLOGFILE`) for PyMySQL and
mysql-connector-python, an LD_PRELOAD OpenSSL keylog shim (`tests/lab/sslkeylog.c`) for libmariadb
clients (mariadb CLI, mysqlclient, MariaDB Connector/Python). TLS captures without a `.keys` file are
deliberately keyless (`expected_verdict` UNVERIFIABLE; `inner` says what happened inside).

Lanes: scenarios ran in parallel, each lane on its own server address (`server_address`, 127.0.0.x,
same port); clients always connect from 127.0.0.1. Ports are free ports picked at run time.

Clients: {clients}
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "captures" / "lab")
    ap.add_argument("-k", dest="keyword", help="only scenarios whose name contains this")
    ap.add_argument("--lanes", type=int, default=None, help="parallel lanes (1-6, default 6)")
    args = ap.parse_args(argv)

    scenarios = [s for s in SCENARIOS if not args.keyword or args.keyword in s.name]
    if not scenarios:
        print("no scenario matches", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        lab = MariaDBLab()
        lab.start()
    except LabUnavailable as e:
        print(f"make_lab_captures: {e}", file=sys.stderr)
        return 1
    try:
        print(f"{lab.describe()}: started in {lab.startup_seconds:.1f}s")
        tmp = Path(tempfile.mkdtemp(prefix="mysqlwire-lab-out-"))
        try:
            run = run_all(lab, tmp, scenarios, lanes=args.lanes, json_per_scenario=False)
            failed = {}
            for name, r in run.runs.items():
                problems = [r.skipped] if r.skipped else all_problems(r)
                if problems:
                    failed[name] = problems
            print(f"{len(run.runs)} scenarios in {run.seconds:.1f}s")
            if failed:
                for name, problems in failed.items():
                    print(f"FAILED {name}: " + "; ".join(problems), file=sys.stderr)
                print(f"corpus NOT written; this run's captures are kept in {tmp}", file=sys.stderr)
                tmp = None
                return 1
            out: Path = args.out
            out.mkdir(parents=True, exist_ok=True)
            if not args.keyword:  # a full run replaces the corpus
                for old in out.iterdir():
                    if old.suffix in (".pcap", ".keys", ".json", ".jsonl"):
                        old.unlink()
            for r in run.runs.values():
                shutil.copy2(r.pcap, out / r.pcap.name)
                if r.keylog:
                    shutil.copy2(r.keylog, out / r.keylog.name)
            truth_path = out / "truth.jsonl"
            lines = {}
            if args.keyword and truth_path.exists():  # keep the other scenarios' lines
                for ln in truth_path.read_text().splitlines():
                    d = json.loads(ln)
                    lines[d["scenario"]] = d
            for name, r in run.runs.items():
                lines[name] = r.truth
            order = [s.name for s in SCENARIOS if s.name in lines]
            truth_path.write_text("".join(json.dumps(lines[n]) + "\n" for n in order))
            clients = sorted({r.truth["client"] for r in run.runs.values()})
            (out / "README.md").write_text(
                README.format(server=lab.version, clients="; ".join(clients))
            )
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lab.stop()
    print(f"wrote {len(run.runs)} captures + truth.jsonl to {out} in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
