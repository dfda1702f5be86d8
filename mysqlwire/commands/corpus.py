"""``mysqlwire capture add|check``: customer captures become regression tests."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import fail


@click.group()
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
    "-p", "--port", "ports", type=int, multiple=True, help="Server port(s) (default 3306)."
)
@click.option("--detect", is_flag=True, help="Find MySQL greetings on any port.")
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
    help="Password for replay (copied beside the capture: use lab/test passwords only).",
)
@click.option(
    "--redact",
    is_flag=True,
    help="Store a redacted copy (clear-text secrets removed, IPs/users mapped).",
)
@click.option("--note", help="One line saying what this capture shows.")
@click.option("--update", is_flag=True, help="Overwrite an existing entry.")
def add(src, dest, name, ports, detect, keylog, rsa_key, password_file, redact, note, update):
    """Copy SRC into the corpus with a sidecar generated from today's output.

    Review the generated .toml (it is what the tests will hold the tool to)
    before committing it."""
    from ..corpus import add_capture
    from ..errors import MysqlwireError

    target = dest / f"{name or src.stem}.toml"
    if target.exists() and not update:
        fail(f"{target} exists (use --update to regenerate it)")
    try:
        pcap, side = add_capture(
            src,
            dest,
            name=name,
            redact=redact,
            ports=tuple(ports) or (3306,),
            detect=detect,
            keylog=keylog,
            rsa_key=rsa_key,
            password_file=password_file,
            note=note,
        )
    except MysqlwireError as exc:
        fail(str(exc))
    click.echo(f"wrote {pcap} and {side}: review the sidecar before committing")
    if password_file:
        click.echo(
            "note: the password file was copied beside the capture; commit it only for lab/test passwords",
            err=True,
        )


@capture.command("check")
@click.argument("root", type=click.Path(exists=True, path_type=Path), default=Path("captures"))
def check(root):
    """Compare every sidecar under ROOT with today's output (exit 1 on any difference)."""
    from ..corpus import Sidecar, find_sidecars

    bad = 0
    for path in find_sidecars(root):
        diffs = Sidecar(path).compare()
        if diffs:
            bad += 1
            click.echo(f"{path}: {len(diffs)} difference(s)")
            for d in diffs[:20]:
                click.echo(f"  {d}")
    click.echo(f"{bad} sidecar(s) differ" if bad else "all sidecars agree")
    sys.exit(1 if bad else 0)
