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
    filters_text,
    iter_all,
    make_options,
    output,
    select,
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
    # Capture-wide facts (the same user over TLS elsewhere) need every
    # connection first; per-connection state is small after dissection.
    conns = list(iter_all(captures, opts, summaries))
    diagnose_connections(conns, None if secrets.empty else secrets)
    matched = list(select(conns, failed, users))
    chosen = [c for c in matched if show_all or has_problem(c)]
    bad = any(d["severity"] == "error" for c in chosen for d in c.extra.get("diagnosis") or [])
    output(
        chosen,
        fmt,
        record,
        packets=packets,
        color=color,
        show_secrets=show_secrets,
        summaries=summaries,
    )
    if fmt == "text":
        if not chosen and matched:
            click.echo("no problem found" + ("" if show_all else " (--all shows every connection)"))
    sys.exit(
        exit_status(summaries, len(matched), bad, ports=ports, filters=filters_text(failed, users))
    )


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
