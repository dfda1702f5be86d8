"""Secret-input options shared by replay and diagnose.

Passwords come from a file, an environment variable, a prompt, a JSON/TOML
map user -> password, or a candidates file -- never only from argv. They are
never echoed back.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..auth.passwords import Secrets
from ..errors import MysqlwireError


def secret_options(f):
    opts = [
        click.option(
            "-P",
            "--password-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="File holding the password (one trailing newline is stripped).",
        ),
        click.option(
            "--password-env", metavar="VAR", help="Environment variable holding the password."
        ),
        click.option("--prompt", is_flag=True, help="Ask for the password (no echo)."),
        click.option(
            "--secrets",
            "secrets_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="JSON or TOML map of user -> password.",
        ),
        click.option(
            "--candidates",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Candidate passwords, one per line ('(empty)' = the empty password); the verdict names the line that matched (never its value).",
        ),
        click.option(
            "--account-hash",
            metavar="HASH",
            help="Stored hash from mysql.user: '*'+40 hex (native), 16 hex (old), ed25519 public key, parsec 'P<f>:...'. Not password-equivalent to print, but treated as secret.",
        ),
        click.option(
            "--account-hash-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="JSON/TOML map user -> stored hash, or a file with one hash.",
        ),
        click.option(
            "--rsa-key",
            "rsa_keys",
            multiple=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="Server RSA private key (PEM) to check caching_sha2/sha256 full authentication (repeatable).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


_HASH_FORMS = (
    r"\*[0-9A-Fa-f]{40}",  # mysql_native_password
    r"[0-9A-Fa-f]{16}",  # mysql_old_password
    r"[A-Za-z0-9+/]{43}=?",  # client_ed25519 public key
    r"P[0-9]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+",  # parsec
)


def looks_like_stored_hash(value: str) -> bool:
    import re

    return any(re.fullmatch(form, value) for form in _HASH_FORMS)


def load(
    password_file,
    password_env,
    prompt,
    secrets_file,
    candidates,
    account_hash,
    account_hash_file,
    rsa_keys,
):
    """Build the :class:`mysqlwire.auth.passwords.Secrets`; errors exit 2 with one line."""
    from ..auth.passwords import load_secrets, read_numbered_candidates, read_password_map
    from .common import fail, warn

    try:
        loaded = load_secrets(
            password_file=password_file,
            password_env=password_env,
            prompt=prompt,
            secrets_file=secrets_file,
        )
        numbered = read_numbered_candidates(candidates) if candidates is not None else []
    except MysqlwireError as exc:
        fail(str(exc))
    if password_file is not None and loaded.password is not None and not loaded.password:
        warn(
            f"password file {password_file} is empty: replaying with the empty password "
            "(is that the file you meant?)"
        )
    if candidates is not None and not numbered:
        warn(f"candidates file {candidates} holds no candidate (blank lines are ignored)")
    # the one Secrets (mysqlwire.auth.passwords): a matched candidate is named by its line
    out = Secrets.from_numbered(numbered, password=loaded.password, per_user=loaded.per_user)
    if account_hash:
        out.account_hash = account_hash.strip()
        if not looks_like_stored_hash(out.account_hash):
            fail(
                "--account-hash is not a stored hash ('*'+40 hex, 16 hex, a 43-character ed25519 key "
                "or 'P<f>:salt:key'); for a password use --password-file/--password-env/--prompt"
            )
    if account_hash_file is not None:
        try:
            raw = Path(account_hash_file).read_bytes()
        except OSError as exc:
            fail(f"cannot read {account_hash_file}: {exc.strerror or exc}")
        stripped = raw.strip()
        if stripped[:1] in (b"{", b"[") or b"=" in stripped.split(b"\n")[0]:
            try:
                out.hash_by_user = {
                    u: s.reveal().decode() for u, s in read_password_map(account_hash_file).items()
                }
            except MysqlwireError as exc:
                fail(str(exc))
        else:
            out.account_hash = stripped.decode("ascii", "replace")
    for key in rsa_keys:
        try:
            out.rsa_private_keys.append(Path(key).read_bytes())
        except OSError as exc:
            fail(f"cannot read RSA key {key}: {exc.strerror or exc}")
    return out
