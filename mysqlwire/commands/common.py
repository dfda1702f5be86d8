"""Options and plumbing shared by the capture-reading commands
(dissect, replay, diagnose, report)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from ..errors import MysqlwireError

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_BAD_INPUT = 2
EXIT_NOTHING = 3  # nothing examined: no MySQL connection, or the filters matched none


KEYLOG_SPECIAL_OPTION = click.option(
    "--keylog-special",
    is_flag=True,
    expose_value=False,
    callback=lambda ctx, _param, value: ctx.meta.__setitem__("mysqlwire.keylog_special", value),
    help="Accept a key log that is not a regular file (FIFO, device); refused by default.",
)


class SuggestingGroup(click.Group):
    """A command group whose unknown command is a usage error naming the
    closest ones (``disect`` -> "Did you mean 'dissect'?")."""

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib

            known = self.list_commands(ctx)
            close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
            close += [c for c in known if c.startswith(name) and c not in close]
            hint = (
                " Did you mean " + " or ".join(f"'{c}'" for c in close[:2]) + "?"
                if close
                else f" Commands: {', '.join(known)}."
            )
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)


def capture_options(f: Callable) -> Callable:
    """--port/--detect/--keylog/--format/--failed/--user/--show-secrets."""
    opts = [
        click.option(
            "-p",
            "--port",
            "ports",
            type=click.IntRange(1, 65535),
            multiple=True,
            help="Only examine TCP connections on this port (repeatable; default: every "
            "port, MySQL is recognised by its bytes).",
        ),
        click.option(
            "--detect", is_flag=True, hidden=True, help="No-op (discovery is the default)."
        ),
        click.option(
            "-k",
            "--keylog",
            type=click.Path(dir_okay=False, path_type=Path),
            help="NSS key log (SSLKEYLOGFILE format) to decrypt TLS sessions.",
        ),
        KEYLOG_SPECIAL_OPTION,
        click.option(
            "-f",
            "--format",
            "fmt",
            type=click.Choice(["text", "json", "jsonl"]),
            default="text",
            show_default=True,
            help="Output format.",
        ),
        click.option("--failed", is_flag=True, help="Only connections whose login failed."),
        click.option(
            "-u",
            "--user",
            "users",
            multiple=True,
            help="Only connections of this user (repeatable).",
        ),
        click.option(
            "--show-secrets",
            is_flag=True,
            help="Print clear-text passwords/tokens and client auth bytes (off by default).",
        ),
        click.option(
            "--color/--no-color",
            default=None,
            help="Colored output (default: when stdout is a terminal).",
        ),
        click.option(
            "--max-packet",
            type=click.IntRange(64, 1 << 30),
            default=16 * 1024 * 1024,
            show_default=True,
            help="Largest connection-phase packet accepted before a connection is flagged (bytes).",
        ),
        click.option(
            "--max-buffer",
            type=click.IntRange(4096, 1 << 31),
            default=4 * 1024 * 1024,
            show_default=True,
            help="Out-of-order bytes buffered per TCP direction before a hole is declared a gap.",
        ),
        click.option(
            "--idle-timeout",
            type=click.FloatRange(min=1),
            default=None,
            expose_value=False,
            callback=lambda ctx, _param, value: ctx.meta.__setitem__(
                "mysqlwire.idle_timeout", value
            ),
            help="Close a TCP connection idle for this many capture seconds (bounds memory on "
            "captures with huge numbers of half-open connections; default: never).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return click.argument("captures", nargs=-1, required=True, type=click.Path(allow_dash=True))(f)


class StdoutBatch:
    """Text for stdout, written in pieces of ~64 KiB: one ``write`` each,
    whatever the interpreter's buffering (with ``PYTHONUNBUFFERED``, common
    in containers, every write is a system call: one per record at 20 000
    connections cost ~4 % of a run).  What is held is written before anything
    goes to stderr (:func:`warn`, :func:`fail`), after every record while a
    stream is read, and at the end -- also when the records stop on an error,
    so nothing already produced is lost and the order against stderr stays."""

    LIMIT = 1 << 16
    active: StdoutBatch | None = None  # the batch being filled, if any

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def __enter__(self) -> StdoutBatch:
        StdoutBatch.active = self
        return self

    def __exit__(self, *_exc) -> None:
        StdoutBatch.active = None
        self.flush()

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= self.LIMIT or STREAMING[0]:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            text = "".join(self.parts)
            self.parts.clear()
            self.size = 0
            sys.stdout.write(text)
        if STREAMING[0]:
            sys.stdout.flush()


def _before_stderr() -> None:
    if StdoutBatch.active is not None:
        StdoutBatch.active.flush()


def fail(message: str) -> None:
    """One-line error on stderr and exit 2 (unusable input / bad usage)."""
    _before_stderr()
    click.echo(f"mysqlwire: error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def path_message(path, exc) -> str:
    """``<path>: <problem>`` with the path said once (many errors already name it)."""
    text = getattr(exc, "strerror", None) or str(exc)
    path = str(path)
    return text if text.startswith(path) or f"'{path}'" in text else f"{path}: {text}"


def warn(message: str) -> None:
    _before_stderr()
    click.echo(f"mysqlwire: warning: {message}", err=True)


def load_keylog(path: Path | None):
    if path is None:
        return None
    from ..tls import KeyLog

    try:
        kl = KeyLog.from_file(path, allow_special=keylog_special_allowed())
    except OSError as exc:
        fail(f"cannot read key log {path}: {exc.strerror or exc}")
    except MysqlwireError as exc:
        fail(str(exc))
    if len(kl) == 0:
        fail(
            f"key log {path} has no TLS secrets (expected SSLKEYLOGFILE lines such as CLIENT_RANDOM ...)"
        )
    return kl


def make_options(ports, detect, keylog, with_packets, show_secrets, max_packet, max_buffer):
    from ..dissect import DissectOptions

    return DissectOptions(
        ports=tuple(ports),
        detect=detect,
        keylog=load_keylog(keylog),
        with_packets=with_packets,
        show_secrets=show_secrets,
        max_packet=max_packet,
        max_buffer=max_buffer,
        idle_timeout=_ctx_meta("mysqlwire.idle_timeout"),
    )


def keylog_special_allowed() -> bool:
    """--keylog-special was given (a FIFO/device key log is accepted)."""
    return bool(_ctx_meta("mysqlwire.keylog_special"))


def _ctx_meta(key: str):
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(key) if ctx is not None else None


def iter_all(captures, opts, summaries: list) -> Iterator:
    """Connections of every capture in order; bad input -> exit 2 after
    reporting what was parsed before the damage.  A progress bar is drawn on
    stderr when it is a terminal (never when piped)."""
    from ..dissect import CaptureSummary, iter_connections
    from ..progress import counting_reader, file_sizes, progress

    with progress(
        file_sizes([p for p in captures if p != "-" and Path(p).exists()]), "reading"
    ) as bar:
        for path in captures:
            if path != "-" and not Path(path).exists():
                fail(f"{path}: no such file")
            summary = CaptureSummary(path=str(path))
            summaries.append(summary)
            try:
                if path == "-":
                    sopts = opts
                    if stdin_is_stream() and not opts.stream:
                        # a pipe/FIFO/socket: hand each connection over as its
                        # login ends, not at the end of the input
                        from dataclasses import replace

                        sopts = replace(opts, stream=True)
                        STREAMING[0] = True
                    yield from watch_tls(
                        iter_connections(sys.stdin.buffer, sopts, summary), path, sopts
                    )
                else:
                    with counting_reader(path, bar) as fh:
                        yield from watch_tls(iter_connections(fh, opts, summary), path, opts)
            except (MysqlwireError, OSError) as exc:
                fail(path_message(path, exc))
            if summary.truncated:
                warn(
                    f"{path}: {summary.error or 'capture truncated'}; connections before the damage are reported"
                )


def iter_named(captures, opts, summaries: list, description: str) -> Iterator:
    """Every connection of the named captures (no ``-``), in order, for one
    pass of a command that reads them several times: no warning is printed
    (the pass that shows connections uses :func:`iter_all`); bad input: exit 2."""
    from ..dissect import CaptureSummary, iter_connections
    from ..progress import counting_reader, file_sizes, progress

    with progress(file_sizes(captures), description) as bar:
        for path in captures:
            if not Path(path).exists():
                fail(f"{path}: no such file")
            summary = CaptureSummary(path=str(path))
            summaries.append(summary)
            try:
                with counting_reader(path, bar) as f:
                    yield from iter_connections(f, opts, summary)
            except (MysqlwireError, OSError) as exc:
                fail(path_message(path, exc))


# set while reading a streamed standard input: output() flushes after each record
STREAMING = [False]


def stdin_is_stream() -> bool:
    """Standard input is a pipe, FIFO, socket or terminal (not a regular file)."""
    import os
    import stat

    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode)


def watch_tls(conns, path, opts):
    """Pass connections through; say clearly when a given key log did not fit."""
    missing = failed = 0
    for c in conns:
        status = c.tls_info.get("tls_status") if c.tls else None
        # a session cut before its hellos has no keys to miss
        missing += status == "keys-missing" and c.tls_info.get("tls_version") is not None
        failed += status == "decrypt-failed"
        yield c
    if opts.keylog is not None and missing:
        warn(
            f"{path}: the key log has no secrets for {missing} TLS session(s) (a key log of another capture?)"
        )
    if failed:
        warn(
            f"{path}: TLS decryption failed for {failed} session(s): the key log's secrets do not match (wrong or corrupted key log)"
        )


def describe_nothing(summary, ports=()) -> str:
    """One line: why a capture gave no MySQL connection (what it held instead)."""
    busiest = summary.busiest_ports(3) if hasattr(summary, "busiest_ports") else []
    where = f" on port(s) {', '.join(map(str, ports))}" if ports else ""
    line = (
        f"{summary.path}: no MySQL connection found{where}: {summary.frames} frame(s) read, "
        f"{summary.tcp_flows} TCP flow(s) seen"
    )
    if busiest:
        line += "; busiest server ports: " + ", ".join(
            f"{port} ({n} flow{'s' if n != 1 else ''})" for port, n in busiest
        )
    return line


def filters_text(failed: bool = False, users: tuple[str, ...] = ()) -> str:
    parts = [f"--user {u}" for u in users]
    if failed:
        parts.append("--failed")
    return " ".join(parts)


def exit_status(summaries, shown: int, bad: bool, *, ports=(), filters: str = "") -> int:
    """The exit status of a capture-reading command, saying on stderr (one
    line per capture) when a capture held no MySQL connection.  3 when no
    connection was examined at all, or when the filters matched none."""
    total = 0
    for s in summaries:
        total += s.connections
        if not s.connections:
            click.echo(f"mysqlwire: {describe_nothing(s, ports)}", err=True)
    if total == 0:
        return EXIT_NOTHING
    if shown == 0 and filters:
        click.echo(f"mysqlwire: 0 of {total} connection(s) match {filters}", err=True)
        return EXIT_NOTHING
    return EXIT_PROBLEM if bad else EXIT_OK


def select(conns, failed: bool, users: tuple[str, ...]):
    for c in conns:
        if failed and not c.failed:
            continue
        if users and not any(u == c.user or any(u == ex.user for ex in c.exchanges) for u in users):
            continue
        yield c


def output(
    conns, fmt: str, to_record, *, packets: bool, color, show_secrets: bool, summaries, line=None
) -> int:
    """Print connections as JSON/JSONL records (``to_record(conn, packets)``)
    or as text blocks with a footer; returns how many were printed.  ``line``:
    for JSONL without packets, ``line(conn)`` writes the record's line itself
    (the same text as the record through :func:`emit_json`, only faster)."""
    n = 0
    if fmt == "jsonl" and line is not None and not packets:
        with StdoutBatch() as out:
            for c in conns:
                n += 1
                out.write(line(c) + "\n")
        return n
    if fmt in ("json", "jsonl"):

        def counted():
            nonlocal n
            for c in conns:
                n += 1
                yield to_record(c, packets)  # (emit_json's batch flushes while streaming)

        emit_json(counted(), fmt)
        return n
    from ..views.text import Renderer

    r = Renderer(color=use_color(color), show_secrets=show_secrets)
    for c in conns:
        r.connection(c, packets=packets)
        n += 1
        if STREAMING[0]:
            sys.stdout.flush()
    r.footer(summaries, n)
    return n


def emit_json(records: list[dict] | Iterator[dict], fmt: str) -> None:
    """JSON/JSONL on stdout; C1 controls and bidi overrides from the capture
    are written as ``\\uXXXX`` escapes (:func:`mysqlwire.views.escape.json_dumps`)."""
    from ..views.escape import json_dumps

    with StdoutBatch() as out:
        if fmt == "jsonl":
            for rec in records:
                out.write(json_dumps(rec) + "\n")
            return
        # one JSON array, written record by record (memory stays flat): the same
        # bytes as json_dumps(list(records), indent=2); the array is closed even
        # when the records stop on an error, so what was written stays a document
        sep = "[\n  "
        try:
            for rec in records:
                out.write(sep + json_dumps(rec, indent=2).replace("\n", "\n  "))
                sep = ",\n  "
        finally:
            out.write("[]\n" if sep == "[\n  " else "\n]\n")


def use_color(color: bool | None) -> bool:
    if color is not None:
        return color
    return sys.stdout.isatty()
