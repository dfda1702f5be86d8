"""``mysqlwire keylog-inject``: a self-decrypting pcapng (Wireshark opens it too)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import KEYLOG_SPECIAL_OPTION, fail, keylog_special_allowed, warn


@click.command("keylog-inject")
@click.argument("capture", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("keylog", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    required=True,
    help="pcapng to write (mode 0600: it holds the TLS secrets; '-' for stdout).",
)
@KEYLOG_SPECIAL_OPTION
def keylog_inject(capture, keylog, output):
    """Write OUTPUT = CAPTURE + KEYLOG in a pcapng Decryption Secrets Block.

    `mysqlwire dissect OUTPUT` and Wireshark/tshark then decrypt the TLS
    sessions without a separate key log. The output holds TLS secrets: treat
    it like the key log itself.

    \b
    Exit: 0 written; 2 unusable input, or a key log that matches none of the
    capture's TLS sessions (nothing written)."""
    from ..errors import MysqlwireError
    from ..outputs import check_output
    from ..tls import KeyLog, inject_keylog

    try:
        out = check_output(output, what="output", inputs=[capture, keylog], allow_stdout=True)
        kl = KeyLog.from_file(keylog, allow_special=keylog_special_allowed())
    except MysqlwireError as exc:
        fail(str(exc))
    if len(kl) == 0:
        fail(
            f"key log {keylog} has no TLS secrets (expected SSLKEYLOGFILE lines such as CLIENT_RANDOM ...)"
        )
    try:
        sessions, matched = _sessions(capture, kl)
    except MysqlwireError as exc:
        fail(f"{capture}: {exc}")
    if not sessions:
        fail(f"{capture}: no TLS session (ClientHello) in the capture; nothing to decrypt")
    if not matched:
        fail(
            f"key log {keylog} matches none of the {sessions} TLS session(s) in {capture} "
            "(a key log of another capture?); nothing written"
        )
    if matched < sessions:
        warn(f"the key log has secrets for {matched} of the {sessions} TLS session(s)")
    try:
        n = inject_keylog(capture, kl, out)
    except (OSError, MysqlwireError) as exc:
        fail(f"{capture}: {exc}")
    click.echo(
        f"wrote {out.label}: {n} packets, secrets for {matched} of {sessions} TLS session(s)",
        err=True,
    )


def _sessions(capture: Path, kl) -> tuple[int, int]:
    """(distinct ClientHello randoms in the capture, how many the key log has)."""
    from ..capture import TcpSegment, decode_tcp, open_capture
    from ..tls.keylog import client_hello_random

    seen: set[bytes] = set()
    reader = open_capture(capture)
    for _ts, linktype, data, _iface in reader.records():
        seg = decode_tcp(linktype, data)
        if seg.__class__ is TcpSegment and seg.payload:
            cr = client_hello_random(seg.payload)
            if cr is not None:
                seen.add(cr)
    return len(seen), sum(1 for cr in seen if cr in kl)
