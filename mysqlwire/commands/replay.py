"""``mysqlwire replay``: verify every captured proof byte for byte.

Exit status: 0 every attempted proof verified (PROOF_MATCHES, or nothing to
verify); 1 any PROOF_MISMATCH, EMPTY_PASSWORD_SENT or NONCE_MISUSE; 2 bad input;
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

_BAD = {"PROOF_MISMATCH", "EMPTY_PASSWORD_SENT", "NONCE_MISUSE"}


@click.command()
@capture_options
@secret_opts.secret_options
@click.option("--packets", is_flag=True, help="Add every connection-phase packet to the output.")
def replay(
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
    packets,
):
    """Re-execute each login in CAPTURES with our plugin implementations and
    compare the client's proofs byte for byte.

    \b
    Verdicts: PROOF_MATCHES, PROOF_MISMATCH, EMPTY_PASSWORD_SENT, NONCE_MISUSE,
    UNVERIFIABLE (tls-no-keys, greeting-missing, no-password, rsa-no-private-key,
    plugin-unsupported:<name>, proof-not-replayable:<plugin>), NO_AUTH_ATTEMPT.
    Exit: 0 every attempted proof verified, 1 a PROOF_MISMATCH,
    EMPTY_PASSWORD_SENT or NONCE_MISUSE, 2 unusable input, 3 nothing examined
    (no MySQL connection in the captures, or the filters matched none).
    """
    from ..replay import record_with_verdict, replay_connection

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
    bad = False

    def verdicts():
        nonlocal bad
        for c in iter_all(captures, opts, summaries):
            v = replay_connection(c, secrets)
            if v.verdict in _BAD or any(
                cu["verdict"] in _BAD for cu in c.extra.get("change_user_verdicts", [])
            ):
                bad = True
            yield c

    shown = output(
        select(verdicts(), failed, users),
        fmt,
        record_with_verdict,
        packets=packets,
        color=color,
        show_secrets=show_secrets,
        summaries=summaries,
    )
    sys.exit(exit_status(summaries, shown, bad, ports=ports, filters=filters_text(failed, users)))
