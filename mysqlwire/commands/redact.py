"""``mysqlwire redact``: a copy of a capture without its secrets.

Exit status: 0 written; 2 unusable input or bad usage (nothing written).
Warnings on stderr say what could not be redacted (inside TLS, not followed).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MysqlwireError
from .common import EXIT_OK, fail, warn


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
    "--scrambles",
    is_flag=True,
    help="Also replace client proofs (scrambles, signatures, RSA-encrypted passwords) and "
    "server nonces: no offline password guessing from the output.",
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
    help="Server port to treat as MySQL (repeatable; default 3306).",
)
@click.option(
    "--detect", is_flag=True, help="Also find MySQL servers on any port by their greeting."
)
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
    scrambles,
    map_path,
    keep_ips,
    keep_users,
    ports,
    detect,
    max_packet,
    max_buffer,
):
    """Write a copy of CAPTURE (pcap/pcapng) without the secrets of its MySQL
    logins: clear-text passwords, tokens and PAM/dialog answers are replaced by
    '*' of the same length (--scrambles: proofs and nonces too), IP addresses
    and user names by consistent same-length placeholders.  Lengths and
    checksums stay valid, so the copy dissects like the original apart from
    the replaced fields.  TLS key logs embedded in a pcapng are dropped.

    \b
    Not redacted: bytes inside TLS (encrypted -- do not share the key log),
    the command phase (queries), addresses inside payloads.  See SECURITY.md.
    """
    from ..dissect import DEFAULT_PORTS
    from ..redact import RedactOptions
    from ..redact import redact as run

    if not capture.is_file():
        fail(f"{capture}: no such file")
    opts = RedactOptions(
        ports=tuple(ports) or DEFAULT_PORTS,
        detect=detect,
        scrambles=scrambles,
        keep_ips=keep_ips,
        keep_users=keep_users,
        max_packet=max_packet,
        max_buffer=max_buffer,
    )
    try:
        report = run(capture, output, opts, map_path=map_path)
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
        f"{report.users} user name(s); {len(report.mapping.get('addresses', {}))} address(es) mapped",
        err=True,
    )
    raise SystemExit(EXIT_OK)
