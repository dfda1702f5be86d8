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
    iter_named,
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
    The table shows 200 rows a page (first/previous/next/last; the URL
    presets ?outcome= &plugin= &verdict= &user= &sort= &desc=1 &page=;
    #conn-N opens the page holding connection N); sorting and the filters
    work over every row.  Without JavaScript the page shows the counts and
    the first 200 rows only, and says so.

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
    from ..views.report import iter_report

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
    if title is None:
        names = [Path(str(c)).name for c in captures]
        title = "mysqlwire report: " + (
            ", ".join(names) if len(names) <= 3 else f"{names[0]} and {len(names) - 1} more"
        )
    stdin_at = _stdin_offset() if "-" in captures else None
    if "-" not in captures or stdin_at is not None:
        # named files and standard input held in a regular file: one pass
        # (two at worst), memory constant per connection
        summaries, n_chosen, n_failed, bad, page = _one_pass(
            captures, opts, secrets, failed, users, ladders, title, stdin_at
        )
        _finish(out, output, page, summaries, n_chosen, n_failed, bad, ports, failed, users)
    summaries: list = []
    conns: list = []
    chosen: list = []
    # Standard input (a pipe) is read once: every connection is kept (without the
    # decoded packets of those that cannot get a ladder) to be diagnosed with
    # the facts of the whole capture.
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
            _warn_truncated(path, summary)
        bar.update(description="diagnosing")
        # diagnose compares every connection of the capture with the others
        diagnose_connections(conns, None if secrets.empty else secrets)
    del conns
    page = iter_report(
        chosen,
        title=title,
        summaries=summaries,
        secrets_given=not secrets.empty,
        ladders=ladders,
    )
    bad = any(_is_bad(c) for c in chosen)
    n_failed = sum(1 for c in chosen if c.failed)
    _finish(out, output, page, summaries, len(chosen), n_failed, bad, ports, failed, users)


def _is_bad(c) -> bool:
    return bool(
        c.failed
        or (c.extra.get("verdict") or {}).get("verdict") in _BAD_VERDICTS
        or any(d["severity"] == "error" for d in c.extra.get("diagnosis") or [])
    )


def _warn_truncated(path, summary) -> None:
    if summary.truncated:
        warn(
            f"{path}: {summary.error or 'capture truncated'}; "
            "connections before the damage are reported"
        )


def _finish(out, output, page, summaries, n_chosen, n_failed, bad, ports, failed, users):
    from ..views.report import write_report

    try:
        write_report(out, page)
    except MysqlwireError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    where = "stdout" if out.is_stdout else str(output)
    click.echo(
        f"mysqlwire: report written to {where}: {n_chosen} connection(s), {n_failed} failed login(s)",
        err=True,
    )
    sys.exit(
        exit_status(summaries, n_chosen, bad, ports=ports, filters=filters_text(failed, users))
    )


def _stdin_offset() -> int | None:
    """Where standard input is, when it is a regular file (it can be read again)."""
    from .common import stdin_is_stream

    if stdin_is_stream():
        return None
    try:
        return sys.stdin.buffer.tell()
    except (OSError, ValueError, AttributeError):
        return None


def _connections(captures, opts, summaries, description, stdin_at):
    """Every connection of ``captures`` for one pass; ``-`` is standard input
    held in a regular file, read from ``stdin_at``."""
    if "-" not in captures:
        yield from iter_named(captures, opts, summaries, description)
        return
    from ..dissect import CaptureSummary, iter_connections

    for path in captures:
        if path != "-":
            yield from iter_named([path], opts, summaries, description)
            continue
        summary = CaptureSummary(path="-")
        summaries.append(summary)
        try:
            sys.stdin.buffer.seek(stdin_at)
            yield from iter_connections(sys.stdin.buffer, opts, summary)
        except (MysqlwireError, OSError) as exc:
            fail(path_message(path, exc))


def _one_pass(captures, opts, secrets, failed, users, ladders, title, stdin_at=None):
    """The report of named captures, read once (twice at worst), memory
    constant per connection, byte-identical to reading every connection first.

    Each connection is diagnosed as it comes with the capture-wide facts so
    far (users seen logging in over TLS / without it), replayed, and turned
    at once into its table row (spilled to a temporary file by
    :class:`~mysqlwire.views.report.StoredRows`); only the connections that
    get a ladder are kept.  When every answer those facts gave still holds at
    the end (:meth:`CaptureFacts.tls_only`), every diagnosis is the one the
    complete facts give; otherwise the captures are read again with them."""
    from ..diagnose import CaptureFacts

    facts = CaptureFacts(asked=set())
    summaries: list = []
    conns = _connections(captures, opts, summaries, "reading captures", stdin_at)
    done = _report_pass(conns, facts, True, secrets, failed, users, ladders)
    if not facts.answers_hold():
        # a later login changed what the capture says of a user diagnosed
        # earlier: again, with the complete facts
        done[-1].close()
        facts = CaptureFacts(tls_ok_users=facts.tls_ok_users, plain_ok_users=facts.plain_ok_users)
        conns = _connections(captures, opts, [], "diagnosing again (pass 2 of 2)", stdin_at)
        done = _report_pass(conns, facts, False, secrets, failed, users, ladders)
    for path, summary in zip(captures, summaries, strict=True):
        _warn_truncated(path, summary)
    n_chosen, n_failed, bad, several, tally, drawn, rows = done
    from ..diagnose import summarise_repeats
    from ..views.report import iter_page

    summarise_repeats(facts)  # the first connection of an account notes the others

    def page():
        try:
            yield from iter_page(
                tally,
                rows,
                drawn,
                n_drawn=len(drawn),
                several=several,
                title=title,
                summaries=summaries,
                secrets_given=not secrets.empty,
                ladders=ladders,
            )
        finally:
            rows.close()

    return summaries, n_chosen, n_failed, bad, page()


def _report_pass(conns, facts, growing, secrets, failed, users, ladders):
    """One pass of :func:`_one_pass`.  Whether every connection gets a ladder
    (``auto``: up to LADDERS_ALL selected connections) is only known when
    the LADDERS_ALL+1-th comes or at the end: until then the rows (at most
    LADDERS_ALL, with their connections) wait in memory.  Whether the table
    has a capture column (connections from several captures) is decided at
    the end: rows are stored with it and it is cut if unused."""
    from ..diagnose import diagnose_connection
    from ..views.report import (
        LADDERS_ALL,
        LADDERS_MAX,
        PAGE_ROWS,
        ReportTally,
        StoredRows,
        has_problem,
        report_row,
    )

    given = None if secrets.empty else secrets
    tally, rows, drawn = ReportTally(), StoredRows(first=PAGE_ROWS), []
    waiting: list = []  # (pos, row, connection) while ``every`` is undecided
    every = {"all": True, "none": False, "problems": False}.get(ladders)
    caps: set = set()
    pos = kept = n_failed = n_problems = 0
    bad = False

    def store(p, row, c, every):
        nonlocal n_problems
        if ladders == "none":
            link = False
        elif every:
            link = True
        else:
            link = has_problem(c) and n_problems < LADDERS_MAX
            n_problems += has_problem(c)
        rows.add(row, link=link)
        if link:
            drawn.append((p, c))

    for c in conns:
        if growing:
            facts.add(c)
        selected = any(True for _ in select([c], failed, users))
        pos += selected
        kept += _keep_packets(c, secrets, selected, pos, kept, ladders)
        diagnose_connection(c, given, capture=facts)
        if not selected:
            continue
        caps.add(c.capture)
        row = report_row(c, pos, True)
        tally.add(c, row)
        n_failed += c.failed
        bad = bad or _is_bad(c)
        if every is None and pos > LADDERS_ALL:
            every = False  # more than LADDERS_ALL: the waiting rows are written
            for w in waiting:
                store(*w, False)
            waiting = []
        if every is None:
            waiting.append((pos, row, c))
        else:
            store(pos, row, c, every)
    for w in waiting:  # at most LADDERS_ALL connections: each one gets a ladder
        store(*w, True)
    several = len(caps) > 1
    if not several:
        tally.used.discard("capture")  # the column a single capture does not show
    return pos, n_failed, bad, several, tally, drawn, rows


def _arrive(c, secrets, failed, users, chosen, kept, ladders) -> int:
    """Replay a connection as it arrives; keep its packets only if it may get
    a ladder.  Returns 1 when its packets were kept."""
    selected = any(True for _ in select([c], failed, users))
    if selected:
        chosen.append(c)
    return _keep_packets(c, secrets, selected, len(chosen), kept, ladders)


def _keep_packets(c, secrets, selected, pos, kept, ladders) -> int:
    """Replay ``c``; drop its decoded packets unless it may get a ladder
    (``pos``: its place among the selected connections).  Returns 1 when its
    packets were kept."""
    from ..replay import replay_connection
    from ..views.report import BAD_VERDICTS, LADDERS_ALL, LADDERS_MAX

    v = replay_connection(c, secrets)
    if not selected:
        c.packets = None
        return 0
    if ladders == "all":
        return 1
    may_draw = ladders != "none" and (pos <= LADDERS_ALL or c.failed or v.verdict in BAD_VERDICTS)
    if may_draw and kept < LADDERS_ALL + LADDERS_MAX:
        return 1
    c.packets = None
    return 0
