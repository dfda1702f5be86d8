"""``mysqlwire dissect``: one readable block (or JSON record) per connection.

Exit status: 0 every login in the capture succeeded (or none was attempted);
1 at least one login failed (server ERR, or the client gave up during
authentication); 2 unusable input (not a capture, unreadable file, bad
option); 3 nothing examined (no MySQL connection in the captures, or the
filters matched none: one line on stderr says what the captures held). A truncated capture is reported on stderr; everything parsed before
the damage is still printed.
"""

from __future__ import annotations

import sys

import click

from .common import (
    StdoutBatch,
    capture_options,
    exit_status,
    fail,
    filters_text,
    iter_all,
    make_options,
    output,
    select,
    use_color,
    warn,
    watch_tls,
)


@click.command()
@capture_options
@click.option(
    "--packets",
    is_flag=True,
    help="Add every connection-phase packet: a tree like tshark -V in text (flags, lengths, "
    "what each plugin byte means, the RSA key as PEM; secrets redacted), decoded fields in JSON.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes: several captures are spread over them, one capture is split into byte ranges (same output, same order; docs/dask.md).",
)
def dissect(
    captures,
    ports,
    detect,
    keylog,
    fmt,
    failed,
    users,
    show_secrets,
    color,
    max_packet,
    max_buffer,
    packets,
    jobs,
):
    """Show every MySQL/MariaDB connection phase in CAPTURES (pcap/pcapng, '-' = stdin).

    MySQL is found on any TCP port, by its greeting or, for connections
    already open when the capture started, by its command/reply shapes.

    \b
    Examples:
      mysqlwire dissect capture.pcap
      mysqlwire dissect --packets -u app capture.pcap     # every packet as a tree
      mysqlwire dissect -f jsonl -k keys.log tls.pcap     # TLS decrypted, JSON lines
      tcpdump -w - port 3306 | mysqlwire dissect -

    \b
    Exit: 0 every login succeeded (or none was attempted), 1 a login failed,
    2 unusable input, 3 nothing examined (no MySQL connection in the captures,
    or the filters matched none; stderr says what the captures held).
    """
    opts = make_options(ports, detect, keylog, packets, show_secrets, max_packet, max_buffer)
    summaries: list = []
    if jobs > 1 and len(captures) > 1:
        from ..parallel import iter_parallel

        conns = _failing(
            iter_parallel(captures, opts, jobs, summaries, sequential=iter_all, warn=warn)
        )
    elif jobs > 1 and captures[0] != "-":
        _collect_less()  # before the workers fork: they inherit it
        render = _render_spec(fmt, color, show_secrets)
        conns = _split(captures[0], opts, jobs, summaries, render)
    else:
        _collect_less()
        conns = iter_all(captures, opts, summaries)
    any_failed = False

    def tracked():
        nonlocal any_failed
        for c in conns:
            if c.failed:
                any_failed = True
            yield c

    selected = select(tracked(), failed, users)
    if jobs > 1 and len(captures) == 1 and fmt in ("json", "jsonl", "text"):
        shown = _output_split(selected, fmt, packets, color, show_secrets, summaries)
    else:
        line = None
        if fmt == "jsonl":
            from ..views.jsonline import connection_line as line
        shown = output(
            selected,
            fmt,
            lambda c, p: c.to_record(with_packets=p),
            packets=packets,
            color=color,
            show_secrets=show_secrets,
            summaries=summaries,
            line=line,
        )
    sys.exit(
        exit_status(summaries, shown, any_failed, ports=ports, filters=filters_text(failed, users))
    )


def _collect_less() -> None:
    """Tune the cycle collector for one long dissection: its young generation
    fills with thousands of short-lived connection objects (freed by reference
    counting, nearly none in cycles), so collect it ten times less often, and
    never rescan the start-up heap (modules, grammars).  On 100,000 logins
    this takes the collector from ~8 % of the CPU time to ~1.5 %."""
    import gc

    from .. import dissect as _loaded  # noqa: F401  (its modules join the frozen heap)

    gc.freeze()
    gc.set_threshold(7000, 10, 10)


def _failing(conns):
    """Library errors -> the sequential path's one line and exit status 2."""
    from ..errors import CaptureError

    try:
        yield from conns
    except CaptureError as exc:
        fail(str(exc))


def _render_spec(fmt, color, show_secrets) -> tuple | None:
    """What the workers of a split capture render (mysqlwire.rangesplit.prerender):
    text on a console like the one ``output`` prints on."""
    if fmt in ("json", "jsonl"):
        return (fmt,)
    if fmt != "text":
        return None
    from ..views.text import Renderer

    on = use_color(color)
    if not on:  # (plain text: no width, no colours -- the rich console is not needed)
        return ("text", False, show_secrets, None, None)
    console = Renderer(color=on, show_secrets=show_secrets).console
    return ("text", on, show_secrets, console.width, console.color_system)


def _output_split(conns, fmt, packets, color, show_secrets, summaries) -> int:
    """``output`` for a split capture: the workers' rendered connections
    (:class:`~mysqlwire.rangesplit.Rendered`) as they are, others rendered
    here; the same bytes as ``output``."""
    from ..rangesplit import Rendered
    from ..views.escape import json_dumps

    out = sys.stdout
    n = 0
    if fmt == "text":
        from ..views.text import Renderer

        r = Renderer(color=use_color(color), show_secrets=show_secrets)
        for c in conns:
            n += 1
            if c.__class__ is Rendered:
                out.write(f"{c.head}{c.id}{c.tail}")
            else:
                r.connection(c, packets=packets)
        r.footer(summaries, n)
        return n
    if fmt == "jsonl":
        with StdoutBatch() as batch:
            for c in conns:
                n += 1
                if c.__class__ is Rendered:
                    batch.write(f"{c.head}{c.id}{c.tail}\n")
                else:
                    batch.write(json_dumps(c.to_record(with_packets=packets)) + "\n")
        return n
    items = []
    for c in conns:
        if c.__class__ is Rendered:
            items.append(c.text())
        else:
            items.append(
                json_dumps(c.to_record(with_packets=packets), indent=2).replace("\n", "\n  ")
            )
    out.write("[\n  " + ",\n  ".join(items) + "\n]\n" if items else "[]\n")
    return len(items)


def _split(path, opts, jobs, summaries, render=None):
    """One capture, split over ``jobs`` processes (same output as one)."""
    from pathlib import Path

    from ..dissect import CaptureSummary
    from ..parallel import iter_split

    if not Path(path).exists():
        fail(f"{path}: no such file")
    summary = CaptureSummary(path=str(path))
    summaries.append(summary)
    yield from _failing(watch_tls(iter_split(path, opts, jobs, summary, render=render), path, opts))
    if summary.truncated:
        warn(
            f"{path}: {summary.error or 'capture truncated'}; connections before the damage are reported"
        )
