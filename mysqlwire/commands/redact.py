"""``mysqlwire redact``: a copy of a capture without its secrets.

Exit status: 0 written; 2 unusable input, bad usage, or a copy that would not
be safe (nothing written); 3 no MySQL connection found (nothing written).
Warnings on stderr say what could not be redacted (inside TLS, not followed).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MysqlwireError
from .common import EXIT_OK, describe_nothing, fail, warn

EXIT_NOTHING = 3


@click.command()
@click.argument("capture", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Redacted capture to write (same format as the input; '-' for stdout).",
)
@click.option(
    "--keep-proofs",
    is_flag=True,
    help="Keep client proofs (scrambles, signatures, RSA-encrypted passwords) and server "
    "nonces, so replay still works on the copy.  They allow offline password guessing: "
    "off by default.",
)
@click.option(
    "--scrambles", is_flag=True, hidden=True, help="No-op: proofs are removed by default."
)
@click.option(
    "--partial",
    is_flag=True,
    help="Write the copy even when a connection could not be followed far enough to be sure "
    "its secrets are gone (warnings say which).",
)
@click.option(
    "--map",
    "map_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the mapping original -> placeholder (users, hosts, addresses) as JSON. "
    "SENSITIVE: it undoes the mapping; keep it like the original capture (written mode 0600).",
)
@click.option("--keep-ips", is_flag=True, help="Do not map IP addresses.")
@click.option("--keep-users", is_flag=True, help="Do not map user names.")
@click.option(
    "-p",
    "--port",
    "ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    help="Only follow MySQL servers on this port (repeatable; default: every port).",
)
@click.option("--detect", is_flag=True, hidden=True, help="No-op: every port is examined.")
@click.option(
    "--max-packet",
    type=click.IntRange(64, 1 << 30),
    default=16 * 1024 * 1024,
    show_default=True,
    help="Largest connection-phase packet followed (bytes).",
)
@click.option(
    "--max-buffer",
    type=click.IntRange(4096, 1 << 31),
    default=4 * 1024 * 1024,
    show_default=True,
    help="Out-of-order bytes buffered per TCP direction.",
)
def redact(
    capture,
    output,
    keep_proofs,
    scrambles,
    partial,
    map_path,
    keep_ips,
    keep_users,
    ports,
    detect,
    max_packet,
    max_buffer,
):
    """Write a copy of CAPTURE (pcap/pcapng) without the secrets of its MySQL
    logins: clear-text passwords, tokens and PAM/dialog answers, client proofs
    and server nonces are replaced by '*' of the same length (--keep-proofs
    keeps proofs and nonces), IP addresses, host and user names by consistent
    same-length placeholders (connection attributes and server messages too).
    Lengths and checksums stay valid, so the copy dissects like the original
    apart from the replaced fields.  TLS key logs embedded in a pcapng are
    dropped.

    \b
    Fails closed: nothing is written when no MySQL connection is found (exit
    3) or a connection could not be followed far enough to be sure its
    secrets are gone (exit 2; --partial writes anyway).
    Not redacted: bytes inside TLS (encrypted -- do not share the key log),
    the command phase (queries), addresses inside other payloads.  See SECURITY.md.
    """
    from ..redact import NothingToRedact, RedactOptions
    from ..redact import redact as run

    if not capture.is_file():
        fail(f"{capture}: no such file")
    opts = RedactOptions(
        ports=tuple(ports),
        keep_proofs=keep_proofs,
        keep_ips=keep_ips,
        keep_users=keep_users,
        partial=partial,
        max_packet=max_packet,
        max_buffer=max_buffer,
    )
    try:
        report = run(capture, output, opts, map_path=map_path)
    except NothingToRedact as exc:
        line = describe_nothing(exc.summary, ports) if exc.summary is not None else str(exc)
        click.echo(f"mysqlwire: {line}; nothing written", err=True)
        raise SystemExit(EXIT_NOTHING) from None
    except MysqlwireError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or output}: {exc.strerror or exc}")
    if report.truncated:
        warn(f"{capture}: {report.truncated}; the copy ends at the last complete frame")
    for line in report.not_followed:
        warn(f"not fully redacted: {line}")
    if report.tls_connections:
        warn(
            f"{report.tls_connections} connection(s) authenticate inside TLS: left encrypted "
            "(share no key log with the copy)"
        )
    if report.frames_unmapped:
        warn(f"{report.frames_unmapped} IP frame(s) whose addresses could not be mapped")
    for what, n in sorted(report.dropped_blocks.items()):
        warn(f"dropped {n} pcapng {what} block(s)")
    click.echo(
        f"mysqlwire: {output}: {report.frames} frame(s), {report.connections} MySQL connection(s); "
        f"replaced {report.secrets} clear-text secret(s), {report.proofs} proof/nonce field(s), "
        f"{report.users} user name(s), {report.hosts} host/address text(s); "
        f"{len(report.mapping.get('addresses', {}))} address(es) mapped",
        err=True,
    )
    raise SystemExit(EXIT_OK)
