"""``mysqlwire diagnose``: explain every failed login from wire evidence, with the fix.

Exit status: 0 no problem found (findings of info/warning/security severity
only, or none); 1 at least one finding of error severity; 2 unusable input;
3 nothing examined (no MySQL connection, or the filters matched none).
"""

from __future__ import annotations

import sys

import click

from . import secrets as secret_opts
from .common import (
    capture_options,
    exit_status,
    fail,
    filters_text,
    iter_all,
    iter_named,
    make_options,
    output,
    path_message,
    select,
    stdin_is_stream,
    use_color,
)


@click.command()
@capture_options
@secret_opts.secret_options
@click.option(
    "--all", "show_all", is_flag=True, help="Show every connection, not only those with a problem."
)
@click.option("--packets", is_flag=True, help="Add every connection-phase packet to the output.")
def diagnose(
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
    password_file,
    password_env,
    prompt,
    secrets_file,
    candidates,
    account_hash,
    account_hash_file,
    rsa_keys,
    show_all,
    packets,
):
    """Explain each login in CAPTURES: a ranked list of findings per
    connection (root cause first), each with a stable code, the wire evidence
    and the fix.  Give the password (--password-file/--password-env/--prompt/
    --secrets) to tell a wrong password from an unknown account.

    \b
    Severities: error (the login failed because of it), warning (the capture
    cannot show everything), info (works, but costs something), security.
    Codes and fixes: docs/diagnoses.md.
    Exit: 0 no error finding, 1 an error finding, 2 unusable input,
    3 nothing examined (no MySQL connection in the captures, or the filters
    matched none).
    """
    from ..diagnose import diagnose_connections, has_problem

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
    opts = make_options(ports, detect, keylog, packets, show_secrets, max_packet, max_buffer)
    summaries: list = []
    given = None if secrets.empty else secrets
    if "-" in captures and stdin_is_stream():
        # streamed input: each connection is diagnosed and printed as its login
        # ends, with the facts of the connections before it
        conns, matched_seen, chosen, bad_box = _stream(
            captures, opts, summaries, given, failed, users, show_all
        )
    elif not show_secrets:
        # named files and standard input held in a file: read once (twice at
        # worst), the output spilled to a temporary file (memory constant per
        # connection); see _spilled
        matched, shown, bad = _spilled(
            captures, opts, summaries, given, (failed, users), show_all, fmt, packets, color
        )
        if fmt == "text" and not shown and matched:
            click.echo("no problem found" + ("" if show_all else " (--all shows every connection)"))
        sys.exit(
            exit_status(summaries, matched, bad, ports=ports, filters=filters_text(failed, users))
        )
    elif "-" not in captures:
        # named files with --show-secrets (never written to a temporary file):
        # read three times, memory bounded per connection
        conns, matched_seen, chosen, bad_box = _passes(
            captures, opts, summaries, given, failed, users, show_all
        )
    else:
        # standard input held in a file, with --show-secrets: capture-wide
        # facts (the same user over TLS elsewhere) need every connection first.
        conns = list(iter_all(captures, opts, summaries))
        diagnose_connections(conns, given)
        matched_seen = list(select(conns, failed, users))
        chosen = [c for c in matched_seen if show_all or has_problem(c)]
        bad_box = [
            any(d["severity"] == "error" for c in chosen for d in c.extra.get("diagnosis") or [])
        ]
    output(
        chosen,
        fmt,
        record,
        packets=packets,
        color=color,
        show_secrets=show_secrets,
        summaries=summaries,
    )
    # counted while output() consumed the connections
    matched, bad = len(matched_seen), bad_box[0]
    if fmt == "text":
        if not chosen and matched:
            click.echo("no problem found" + ("" if show_all else " (--all shows every connection)"))
    sys.exit(exit_status(summaries, matched, bad, ports=ports, filters=filters_text(failed, users)))


class _Seen(list):
    """A list that only counts (streamed connections are not kept)."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def append(self, _item) -> None:
        self.n += 1

    def __len__(self) -> int:
        return self.n

    def __bool__(self) -> bool:
        return self.n > 0


def _stream(captures, opts, summaries, secrets, failed, users, show_all):
    """Generators for the streamed path; counts are filled in as they run."""
    from ..diagnose import CaptureFacts, diagnose_connection, has_problem

    facts = CaptureFacts()
    seen, matched, chosen_n = _Seen(), _Seen(), _Seen()
    bad = [False]

    def gen():
        for c in iter_all(captures, opts, summaries):
            seen.append(c)
            facts.add(c)
            diagnose_connection(c, secrets, capture=facts)
            if not any(True for _ in select([c], failed, users)):
                continue
            matched.append(c)
            if not (show_all or has_problem(c)):
                continue
            if any(d["severity"] == "error" for d in c.extra.get("diagnosis") or []):
                bad[0] = True
            chosen_n.append(c)
            yield c

    return seen, matched, _Chosen(gen(), chosen_n), bad


def _passes(captures, opts, summaries, secrets, failed, users, show_all):
    """Named captures, with the same output as diagnosing every connection
    at once but memory bounded per connection.  Pass 1 gathers the
    capture-wide facts (who logged in over TLS, who without); pass 2
    diagnoses every connection with them only to learn how each security
    finding is summarised (the first connection of an account and server
    names the others), keeping the final findings of those first connections;
    pass 3 diagnoses each connection again, gives those first connections
    their final findings, and hands each one to the output as it comes."""
    from ..diagnose import CaptureFacts, diagnose_connection, has_problem, summarise_repeats

    facts = CaptureFacts()
    for c in iter_named(captures, opts, [], "reading (pass 1 of 3)"):
        facts.add(c)
    tls_ok, plain_ok = set(facts.tls_ok_users), set(facts.plain_ok_users)
    first: dict[int, int] = {}  # id() of a connection carrying a summary -> its position
    for i, c in enumerate(iter_named(captures, opts, [], "diagnosing (pass 2 of 3)")):
        before = len(facts.security_first)
        diagnose_connection(c, secrets, capture=facts)
        if len(facts.security_first) > before:
            first[id(c)] = i  # kept alive by facts.security_first
    final = {first[id(c)]: c.extra["diagnosis"] for c in summarise_repeats(facts)}
    facts = CaptureFacts(tls_ok_users=tls_ok, plain_ok_users=plain_ok)
    seen, matched, chosen_n = _Seen(), _Seen(), _Seen()
    bad = [False]

    def gen():
        for i, c in enumerate(iter_all(captures, opts, summaries)):
            seen.append(c)
            diagnose_connection(c, secrets, capture=facts)
            if i in final:
                c.extra["diagnosis"] = final[i]
            if not any(True for _ in select([c], failed, users)):
                continue
            matched.append(c)
            if not (show_all or has_problem(c)):
                continue
            if any(d["severity"] == "error" for d in c.extra.get("diagnosis") or []):
                bad[0] = True
            chosen_n.append(c)
            yield c

    return seen, matched, _Chosen(gen(), chosen_n), bad


def _spilled(captures, opts, summaries, secrets, filters, show_all, fmt, packets, color):
    """Named captures read once (twice at worst), memory constant per
    connection, output byte-identical to diagnosing every connection at once
    with the facts of the whole capture.

    Each connection is diagnosed as it comes with the facts of the
    connections so far (who logged in over TLS, who without) and its output
    written to an anonymous temporary file.  The rules ask those facts one
    question (:meth:`CaptureFacts.tls_only`); when every answer given still
    holds at the end, every diagnosis is the one the complete facts give.
    Otherwise the file is read a second time and each connection diagnosed
    again with the complete facts.  A security finding is summarised on the
    first connection of its account and server, naming the others, which is
    only known at the end: those first connections (one per account, server
    and finding, not per connection) are kept with their place in the file
    and written again when the file is copied to stdout.

    Returns (connections matching the filters, connections shown, whether
    one has an error finding)."""
    import tempfile

    from ..diagnose import CaptureFacts, summarise_repeats

    facts = CaptureFacts(asked=set())
    emit = _Emitter(fmt, packets, color)
    stdin_at = _stdin_offset() if "-" in captures else None  # a regular file
    with tempfile.TemporaryFile(prefix="mysqlwire-diagnose-") as spill:
        conns = iter_all(captures, opts, summaries)
        counts = _diagnose_into(spill, emit, conns, facts, secrets, filters, show_all)
        if not facts.answers_hold():
            # a later login changed what the capture says of a user
            # diagnosed earlier: again, with the complete facts
            spill.seek(0)
            spill.truncate()
            facts = CaptureFacts(
                tls_ok_users=facts.tls_ok_users, plain_ok_users=facts.plain_ok_users
            )
            conns = _again(captures, opts, stdin_at)
            counts = _diagnose_into(spill, emit, conns, None, secrets, filters, show_all, facts)
        matched, shown, bad, places = counts
        patches = sorted(
            (*places[id(c)], emit.render(c)) for c in summarise_repeats(facts) if id(c) in places
        )
        emit.copy(spill, patches)
        emit.finish(summaries, shown)
    return matched, shown, bad


def _stdin_offset() -> int | None:
    try:
        return sys.stdin.buffer.tell()
    except (OSError, ValueError, AttributeError):
        return None


def _again(captures, opts, stdin_at):
    """Every connection once more, for the second pass; standard input (a
    regular file) is read again from where the first pass started."""
    if "-" not in captures:
        yield from iter_named(captures, opts, [], "diagnosing (pass 2 of 2)")
        return
    for path in captures:
        if path != "-":
            yield from iter_named([path], opts, [], "diagnosing (pass 2 of 2)")
            continue
        from ..dissect import CaptureSummary, iter_connections
        from ..errors import MysqlwireError

        if stdin_at is None:
            fail("-: standard input cannot be read a second time")
        try:
            sys.stdin.buffer.seek(stdin_at)
            yield from iter_connections(sys.stdin.buffer, opts, CaptureSummary(path="-"))
        except (MysqlwireError, OSError) as exc:
            fail(path_message("-", exc))


def _diagnose_into(spill, emit, conns, growing, secrets, filters, show_all, complete=None):
    """Diagnose ``conns`` and write the output of those chosen to ``spill``;
    ``growing``: facts added to as connections come (else ``complete``).
    Returns (matched, shown, bad, {id(conn): span in spill} of the
    connections that carry a security summary)."""
    from ..diagnose import diagnose_connection, has_problem

    facts = growing if growing is not None else complete
    places: dict[int, tuple[int, int]] = {}
    matched = shown = 0
    bad = False
    for c in conns:
        if growing is not None:
            growing.add(c)
        before = len(facts.security_first)
        diagnose_connection(c, secrets, capture=facts)
        if not any(True for _ in select([c], *filters)):
            continue
        matched += 1
        if not (show_all or has_problem(c)):
            continue
        bad = bad or any(d["severity"] == "error" for d in c.extra.get("diagnosis") or [])
        spill.write(emit.separator(shown))
        body = spill.tell()
        spill.write(emit.render(c))
        if len(facts.security_first) > before:  # kept alive by facts.security_first
            places[id(c)] = (body, spill.tell())
        shown += 1
    return matched, shown, bad, places


class _Emitter:
    """Each chosen connection's output as bytes (JSONL line, JSON array item,
    text block), and the copy of the spilled output to stdout."""

    def __init__(self, fmt: str, packets: bool, color) -> None:
        self.fmt, self.packets = fmt, packets
        if fmt == "text":
            import io

            from ..views.text import Renderer

            on = use_color(color)
            self.screen = Renderer(color=on, show_secrets=False)
            self.buf = io.StringIO()
            self.text = Renderer(color=on, show_secrets=False, file=self.buf)
            if on:  # the same layout as printing to stdout directly (plain text never wraps)
                self.text.console.width = self.screen.console.width

    def separator(self, n_before: int) -> bytes:
        if self.fmt != "json":
            return b""
        return b"[\n  " if n_before == 0 else b",\n  "

    def render(self, c) -> bytes:
        from ..views.escape import json_dumps

        if self.fmt == "jsonl":
            return (json_dumps(record(c, self.packets)) + "\n").encode("utf-8")
        if self.fmt == "json":
            # an item of json.dumps(list, indent=2): one level deeper
            return json_dumps(record(c, self.packets), indent=2).replace("\n", "\n  ").encode()
        self.buf.seek(0)
        self.buf.truncate()
        self.text.connection(c, packets=self.packets)
        return self.buf.getvalue().encode("utf-8")

    def copy(self, spill, patches) -> None:
        """Write the spilled output to stdout, ``patches`` ((start, end,
        bytes), in order) replacing those spans."""
        import codecs

        sys.stdout.flush()
        decode = codecs.getincrementaldecoder("utf-8")().decode
        write = sys.stdout.write
        spill.flush()
        end_all = spill.tell()
        spill.seek(0)
        pos = 0
        for start, end, new in [*patches, (end_all, end_all, b"")]:
            while pos < start:
                chunk = spill.read(min(1 << 16, start - pos))
                pos += len(chunk)
                write(decode(chunk))
            write(decode(new))
            spill.seek(end)
            pos = end
        write(decode(b"", final=True))

    def finish(self, summaries, shown: int) -> None:
        if self.fmt == "json":
            sys.stdout.write("\n]\n" if shown else "[]\n")
        elif self.fmt == "text":
            self.screen.footer(summaries, shown)
        sys.stdout.flush()


class _Chosen:
    """Iterable of the chosen connections that also answers ``not chosen`` afterwards."""

    def __init__(self, it, counter):
        self.it, self.counter = it, counter

    def __iter__(self):
        return self.it

    def __bool__(self) -> bool:
        return bool(self.counter)


def record(conn, with_packets: bool = False) -> dict:
    """The dissect record (+ replay keys when a verdict exists) + diagnosis."""
    if "verdict" in conn.extra:
        from ..replay import record_with_verdict

        rec = record_with_verdict(conn, with_packets)
    else:
        rec = conn.to_record(with_packets=with_packets)
    rec["client_fingerprint"] = conn.extra.get("client_fingerprint")
    rec["client_fingerprint_detail"] = conn.extra.get("client_fingerprint_detail")
    rec["diagnosis"] = list(conn.extra.get("diagnosis") or [])
    return rec
