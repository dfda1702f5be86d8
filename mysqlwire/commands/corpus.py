"""``mysqlwire capture add|check``: customer captures become regression tests."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import SuggestingGroup, fail

EXIT_NOTHING = 3


@click.group(cls=SuggestingGroup)
def capture():
    """Manage the regression corpus (a capture + a .toml sidecar of expectations)."""


@capture.command("add")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("captures/customer"),
    show_default=True,
    help="Corpus folder.",
)
@click.option("--name", help="Name of the corpus entry (default: the file's stem).")
@click.option(
    "-p",
    "--port",
    "ports",
    type=int,
    multiple=True,
    help="Only connections on these port(s) (default: every port).",
)
@click.option("--detect", is_flag=True, hidden=True, help="No-op (discovery is the default).")
@click.option(
    "-k",
    "--keylog",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS key log (copied beside the capture).",
)
@click.option(
    "--rsa-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Server RSA private key (copied).",
)
@click.option(
    "-P",
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Password for replay and diagnose at add time (never copied: the sidecar only "
    "records that one was given; `capture check` reads it from $MYSQLWIRE_CORPUS_PASSWORD).",
)
@click.option(
    "--redact",
    is_flag=True,
    help="Store a redacted copy (secrets, proofs and nonces removed, IPs/users mapped); "
    "verdicts and findings are computed on the original first.",
)
@click.option("--note", help="One line saying what this capture shows.")
@click.option("--update", is_flag=True, help="Overwrite an existing entry.")
def add(src, dest, name, ports, detect, keylog, rsa_key, password_file, redact, note, update):
    """Copy SRC into the corpus with a sidecar generated from today's output.

    Review the generated .toml (it is what the tests will hold the tool to)
    before committing it.  Exit: 0 written; 2 bad usage or input; 3 no MySQL
    connection in SRC (nothing written)."""
    from ..corpus import NothingFound, add_capture
    from ..errors import MysqlwireError

    password = None
    if password_file is not None:
        from ..auth.passwords import read_password_file

        try:
            password = read_password_file(password_file)
        except (OSError, MysqlwireError) as exc:
            fail(f"password file {password_file}: {getattr(exc, 'strerror', None) or exc}")
    try:
        pcap, side, n = add_capture(
            src,
            dest,
            name=name,
            redact=redact,
            ports=tuple(ports),
            detect=detect,
            keylog=keylog,
            rsa_key=rsa_key,
            password=password,
            note=note,
            update=update,
        )
    except NothingFound as exc:
        click.echo(f"mysqlwire: {exc}", err=True)
        sys.exit(EXIT_NOTHING)
    except MysqlwireError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or dest}: {exc.strerror or exc}")
    click.echo(f"wrote {pcap} and {side} ({n} connection(s)): review the sidecar before committing")


@capture.command("check")
@click.argument("root", type=click.Path(exists=True, path_type=Path), default=Path("captures"))
def check(root):
    """Compare every sidecar under ROOT with today's output.

    Exit: 0 all agree; 1 a difference; 2 no sidecar (or no connection) under ROOT."""
    from ..corpus import Sidecar, find_sidecars

    bad = conns = 0
    sidecars = find_sidecars(root)
    unchecked = 0
    for path in sidecars:
        side = Sidecar(path)
        diffs = side.compare()
        conns += side.connections_checked
        unchecked += bool(side.unchecked)
        if diffs:
            bad += 1
            click.echo(f"{path}: {len(diffs)} difference(s)")
            for d in diffs[:20]:
                click.echo(f"  {d}")
    if not sidecars:
        fail(f"{root}: no sidecar (.toml) found: nothing checked")
    if not conns:
        fail(
            f"{root}: {len(sidecars)} sidecar(s) but no connection in their captures: nothing checked"
        )
    summary = f"checked {len(sidecars)} sidecar(s), {conns} connection(s): "
    summary += f"{bad} sidecar(s) differ" if bad else "all agree"
    click.echo(summary)
    if unchecked:
        click.echo(
            f"note: verdicts/findings of {unchecked} sidecar(s) not rechecked (redacted capture, "
            "or password not given: set MYSQLWIRE_CORPUS_PASSWORD)",
            err=True,
        )
    sys.exit(1 if bad else 0)
