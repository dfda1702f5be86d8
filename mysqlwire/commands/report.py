"""``mysqlwire report``: one self-contained HTML file for every connection in CAPTURES.

Exit status: 0 the report was written and no login failed / no proof
mismatched / no finding of error severity; 1 the report was written and the
capture shows such a problem; 2 unusable input or bad usage (nothing written);
3 nothing examined (no MySQL connection, or the filters matched none).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import MysqlwireError
from . import secrets as secret_opts
from .common import (
    KEYLOG_SPECIAL_OPTION,
    exit_status,
    fail,
    filters_text,
    make_options,
    path_message,
    select,
    warn,
)

_BAD_VERDICTS = {"PROOF_MISMATCH", "EMPTY_PASSWORD_SENT", "NONCE_MISUSE"}


@click.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="HTML file to write ('-' for stdout).",
)
@click.option("--title", default=None, help="Report title (default: the capture names).")
@click.option(
    "-p",
    "--port",
    "ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    help="Only examine TCP connections on this port (repeatable; default: every "
    "port, MySQL is recognised by its bytes).",
)
@click.option("--detect", is_flag=True, hidden=True, help="No-op (discovery is the default).")
@click.option(
    "-k",
    "--keylog",
    type=click.Path(dir_okay=False, path_type=Path),
    help="NSS key log (SSLKEYLOGFILE format) to decrypt TLS sessions.",
)
@KEYLOG_SPECIAL_OPTION
@click.option("--failed", is_flag=True, help="Only connections whose login failed.")
@click.option(
    "-u", "--user", "users", multiple=True, help="Only connections of this user (repeatable)."
)
@click.option(
    "--ladders",
    type=click.Choice(["auto", "all", "problems", "none"]),
    default="auto",
    show_default=True,
    help="Which connections get a ladder diagram: auto = all up to 1000 connections, "
    "else those with a problem (at most 1000).",
)
@secret_opts.secret_options
def report(
    captures,
    output,
    title,
    ports,
    detect,
    keylog,
    failed,
    users,
    ladders,
    password_file,
    password_env,
    prompt,
    secrets_file,
    candidates,
    account_hash,
    account_hash_file,
    rsa_keys,
):
    """Write ONE self-contained HTML report for CAPTURES: a summary table
    (sortable; filterable by outcome, plugin, replay verdict and user), the
    ladder diagram of every connection phase, the replay verdict and the
    diagnosis.  Viewing it needs no network; secrets are redacted.

    \b
    Examples:
      mysqlwire report capture.pcap -o report.html
      mysqlwire report --password-file pw.txt --keylog keys.log tls.pcap -o r.html
    Exit: 0 written and no problem, 1 written and a login failed / a proof
    mismatched / an error finding, 2 unusable input (nothing written),
    3 nothing examined (no MySQL connection, or the filters matched none).
    """
    from ..diagnose import diagnose_connections
    from ..dissect import CaptureSummary, iter_connections
    from ..progress import counting_reader, file_sizes, progress
    from ..views.report import iter_report, write_report

    secrets = secret_opts.load(
        password_file,
        password_env,
        prompt,
        secrets_file,
        candidates,
        account_hash,
        account_hash_file,
        rsa_keys,
    )
    from ..outputs import check_output

    for path in captures:
        if path != "-" and not Path(path).is_file():
            fail(f"{path}: no such file")
    try:
        out = check_output(
            output,
            what="report",
            inputs=[*captures, *(p for p in (keylog, password_file, secrets_file) if p)],
            allow_stdout=True,
        )
    except MysqlwireError as exc:
        fail(str(exc))
    opts = make_options(ports, detect, keylog, True, False, 16 * 1024 * 1024, 4 * 1024 * 1024)
    summaries: list = []
    conns: list = []
    chosen: list = []
    # Memory is bounded per connection: each one is replayed as it arrives,
    # and its decoded packets (the ladder's details, ~8 KB) are kept only for
    # connections that may get a ladder; the others are drawn from their
    # exchanges if diagnose later finds a problem.
    kept = 0
    with progress(file_sizes(captures), "reading captures") as bar:
        for path in captures:
            summary = CaptureSummary(path=str(path))
            summaries.append(summary)
            try:
                if path == "-":
                    stream = iter_connections(sys.stdin.buffer, opts, summary)
                    for c in stream:
                        kept += _arrive(c, secrets, failed, users, chosen, kept, ladders)
                        conns.append(c)
                else:
                    with counting_reader(path, bar) as f:
                        for c in iter_connections(f, opts, summary):
                            kept += _arrive(c, secrets, failed, users, chosen, kept, ladders)
                            conns.append(c)
            except (MysqlwireError, OSError) as exc:
                fail(path_message(path, exc))
            if summary.truncated:
                warn(
                    f"{path}: {summary.error or 'capture truncated'}; "
                    "connections before the damage are reported"
                )
        bar.update(description="diagnosing")
        # diagnose compares every connection of the capture with the others
        diagnose_connections(conns, None if secrets.empty else secrets)
    del conns
    if title is None:
        names = [Path(str(c)).name for c in captures]
        title = "mysqlwire report: " + (
            ", ".join(names) if len(names) <= 3 else f"{names[0]} and {len(names) - 1} more"
        )
    page = iter_report(
        chosen,
        title=title,
        summaries=summaries,
        secrets_given=not secrets.empty,
        ladders=ladders,
    )
    try:
        write_report(out, page)
    except MysqlwireError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    bad = any(
        c.failed
        or (c.extra.get("verdict") or {}).get("verdict") in _BAD_VERDICTS
        or any(d["severity"] == "error" for d in c.extra.get("diagnosis") or [])
        for c in chosen
    )
    n_failed = sum(1 for c in chosen if c.failed)
    where = "stdout" if out.is_stdout else str(output)
    click.echo(
        f"mysqlwire: report written to {where}: {len(chosen)} connection(s), {n_failed} failed login(s)",
        err=True,
    )
    sys.exit(
        exit_status(summaries, len(chosen), bad, ports=ports, filters=filters_text(failed, users))
    )


def _arrive(c, secrets, failed, users, chosen, kept, ladders) -> int:
    """Replay a connection as it arrives; keep its packets only if it may get
    a ladder.  Returns 1 when its packets were kept."""
    from ..replay import replay_connection
    from ..views.report import BAD_VERDICTS, LADDERS_ALL, LADDERS_MAX

    v = replay_connection(c, secrets)
    if not any(True for _ in select([c], failed, users)):
        c.packets = None
        return 0
    chosen.append(c)
    if ladders == "all":
        return 1
    may_draw = ladders != "none" and (
        len(chosen) <= LADDERS_ALL or c.failed or v.verdict in BAD_VERDICTS
    )
    if may_draw and kept < LADDERS_ALL + LADDERS_MAX:
        return 1
    c.packets = None
    return 0
