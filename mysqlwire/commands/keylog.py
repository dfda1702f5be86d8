"""``mysqlwire keylog-inject``: a self-decrypting pcapng (Wireshark opens it too)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import fail


@click.command("keylog-inject")
@click.argument("capture", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("keylog", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="pcapng to write.",
)
def keylog_inject(capture, keylog, output):
    """Write OUTPUT = CAPTURE + KEYLOG in a pcapng Decryption Secrets Block.

    `mysqlwire dissect OUTPUT` and Wireshark/tshark then decrypt the TLS
    sessions without a separate key log. The output holds TLS secrets: treat
    it like the key log itself."""
    from ..errors import MysqlwireError
    from ..tls import KeyLog, inject_keylog

    try:
        kl = KeyLog.from_file(keylog)
    except (OSError, MysqlwireError) as exc:
        fail(f"key log {keylog}: {exc}")
    if len(kl) == 0:
        fail(
            f"key log {keylog} has no TLS secrets (expected SSLKEYLOGFILE lines such as CLIENT_RANDOM ...)"
        )
    try:
        n = inject_keylog(capture, kl, output)
    except (OSError, MysqlwireError) as exc:
        fail(f"{capture}: {exc}")
    click.echo(f"wrote {output}: {n} packets, secrets for {len(kl)} TLS session(s)", err=True)
