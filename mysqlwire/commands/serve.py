"""``mysqlwire serve``: run the MySQL 8 connection-phase server until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import sys

import click

from mysqlwire.errors import MysqlwireError

GREETING_CHOICES = ("caching_sha2_password", "sha256_password", "mysql_native_password")


def _fail(message: str) -> None:
    click.echo(f"mysqlwire serve: {message}", err=True)
    raise click.exceptions.Exit(2)


def _build_config(
    config_path,
    host,
    port,
    tls,
    keylog,
    rsa_key,
    users,
    password_env,
    password_file,
    greeting_plugin,
    server_version,
    max_connections,
    require_secure_transport,
    allow_cleartext_over_plain,
    switch_nonce,
    warm_cache,
):
    from mysqlwire.auth.passwords import password_from_env, read_password_file
    from mysqlwire.serve.config import Account, ServerConfig, load_config, parse_user_spec

    config = load_config(config_path) if config_path else ServerConfig()
    changes = {}
    if host is not None:
        changes["host"] = host
    if port is not None:
        changes["port"] = port
    if tls is not None:
        changes["tls"] = tls
    if keylog:
        changes["keylog_file"] = keylog
    if rsa_key:
        changes["rsa_private_key"] = rsa_key
    if greeting_plugin:
        changes["greeting_plugin"] = greeting_plugin
    if server_version:
        changes["version"] = server_version
    if max_connections is not None:
        changes["max_connections"] = max_connections
    if require_secure_transport:
        changes["require_secure_transport"] = True
    if allow_cleartext_over_plain:
        changes["allow_cleartext_over_plain"] = True
    if switch_nonce:
        changes["switch_nonce"] = switch_nonce
    if changes:
        config = config.replace(**changes)
    if (password_env or password_file) and not users:
        _fail("--password-env/--password-file need --user NAME:PLUGIN")
    if password_env and password_file:
        _fail("give only one of --password-env and --password-file")
    if users:
        if not (password_env or password_file):
            _fail(
                "--user needs --password-env VAR or --password-file F "
                "(passwords are never taken from the command line; empty: --password-file /dev/null)"
            )
        secret = (
            password_from_env(password_env) if password_env else read_password_file(password_file)
        )
        for spec in users:
            name, plugin = parse_user_spec(spec)
            config.accounts[name] = Account(name=name, plugin=plugin, password=secret)
    if warm_cache:
        for acct in config.accounts.values():
            acct.cache_warm = True
    if not config.accounts:
        _fail(
            "no accounts: give --config F.toml (with [accounts.NAME] tables) or --user NAME:PLUGIN"
        )
    return config


def _banner(server, config) -> None:
    from mysqlwire.serve.server import is_loopback

    host, port = server.address
    if not is_loopback(config.host):
        click.secho(
            f"WARNING: listening on {config.host}, NOT a loopback address. Anyone who can reach "
            f"{host}:{port} can try these test accounts. Use --host 127.0.0.1 unless you mean it.",
            fg="red",
            bold=True,
            err=True,
        )
    click.echo(
        f"mysqlwire serve: MySQL {config.version} listening on {host}:{port} "
        f"(greeting {config.greeting_plugin}, TLS {'on' if config.tls else 'off'})",
        err=True,
    )
    for acct in config.accounts.values():
        flags = [
            name
            for name, on in (
                ("locked", acct.locked),
                ("expired", acct.expired),
                ("require_ssl", acct.require_ssl),
                ("cache_warm", acct.cache_warm),
                ("plugin disabled", acct.plugin in config.disabled_plugins),
            )
            if on
        ]
        extra = f" [{', '.join(flags)}]" if flags else ""
        click.echo(f"  account '{acct.name}'@'%' {acct.plugin}{extra}", err=True)
    if config.keylog_file:
        mode = os.stat(config.keylog_file).st_mode & 0o777
        click.echo(f"  TLS key log: {config.keylog_file} (mode {mode:04o})", err=True)
    click.echo("  Ctrl-C to stop", err=True)


async def _run(config, dump_rsa_key) -> None:
    from mysqlwire.serve.server import MySQL8Server

    server = MySQL8Server(config)
    mode = None
    if dump_rsa_key is not None:
        from mysqlwire.outputs import write_output

        write_output(dump_rsa_key, server.rsa_private_key_pem, secret=True)
        if dump_rsa_key.path is not None and dump_rsa_key.path.is_file():
            mode = stat.S_IMODE(os.stat(dump_rsa_key.path).st_mode)
    await server.start()
    _banner(server, config)
    if dump_rsa_key is not None:
        shown = f" (mode {mode:04o})" if mode is not None else ""
        click.echo(f"  RSA private key written to {dump_rsa_key.label}{shown}", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / Windows
            pass
    try:
        await stop.wait()
    finally:
        await server.stop()
        click.echo(
            f"mysqlwire serve: stopped after {len(server.connections)} connection(s)", err=True
        )


@click.command("serve")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML file: [server] settings and [accounts.NAME] tables.",
)
@click.option(
    "--host",
    default=None,
    help="Address to listen on (default 127.0.0.1; a non-loopback address prints a warning).",
)
@click.option(
    "-p",
    "--port",
    type=int,
    default=None,
    help="TCP port (default 3307, leaving 3306 to a real server; 0 = any free port).",
)
@click.option(
    "--tls/--no-tls",
    default=None,
    help="Offer TLS (CLIENT_SSL) with a generated self-signed certificate (default on).",
)
@click.option(
    "-k",
    "--keylog",
    type=click.Path(dir_okay=False),
    help="Append the NSS key log of every TLS session to this file.",
)
@click.option(
    "--rsa-key",
    type=click.Path(dir_okay=False),
    help="RSA private key PEM for full auth without TLS (default: generated).",
)
@click.option(
    "--dump-rsa-key",
    type=click.Path(dir_okay=False),
    help="Write the server's RSA private key (PEM, mode 0600) here, to decrypt RSA full auth in captures.",
)
@click.option(
    "-u",
    "--user",
    "users",
    multiple=True,
    metavar="NAME:PLUGIN",
    help="Add an account; PLUGIN: caching_sha2_password (sha2), sha256_password (sha256), mysql_native_password (native), mysql_clear_password (clear). Repeatable.",
)
@click.option(
    "--password-env",
    metavar="VAR",
    help="Password of the --user accounts from this environment variable.",
)
@click.option(
    "-P",
    "--password-file",
    type=click.Path(dir_okay=False),
    help="Password of the --user accounts from this file (one trailing newline removed).",
)
@click.option(
    "--greeting-plugin",
    type=click.Choice(GREETING_CHOICES),
    default=None,
    help="Plugin named in the greeting (default caching_sha2_password).",
)
@click.option(
    "--server-version",
    default=None,
    help='Version string in the greeting (default "8.0.36-mysqlwire").',
)
@click.option("--max-connections", type=int, default=None, help="max_connections (1040 past it).")
@click.option(
    "--require-secure-transport",
    is_flag=True,
    default=False,
    help="Refuse logins without TLS (3159).",
)
@click.option(
    "--allow-cleartext-over-plain",
    is_flag=True,
    default=False,
    help="Accept a caching_sha2/sha256 full-auth password sent in clear over plain TCP (MySQL refuses: 1045).",
)
@click.option(
    "--switch-nonce",
    type=click.Choice(["same", "new"]),
    default=None,
    help="Nonce in AuthSwitchRequest: the greeting's (MySQL, default) or a fresh one.",
)
@click.option(
    "--warm-cache",
    is_flag=True,
    default=False,
    help="Fill the caching_sha2 cache at start: fast auth from the first login.",
)
@click.option("-q", "--quiet", is_flag=True, help="Do not log each login attempt.")
def serve(
    config_path,
    host,
    port,
    tls,
    keylog,
    rsa_key,
    dump_rsa_key,
    users,
    password_env,
    password_file,
    greeting_plugin,
    server_version,
    max_connections,
    require_secure_transport,
    allow_cleartext_over_plain,
    switch_nonce,
    warm_cache,
    quiet,
):
    """Run a MySQL 8 connection-phase server until Ctrl-C.

    Real clients can log in to it: caching_sha2_password (fast auth from an in-memory
    cache, full auth over TLS or RSA), sha256_password, mysql_native_password,
    mysql_clear_password, auth switches, and the exact MySQL 8 errors for wrong
    passwords, locked/expired accounts, unknown databases, too many connections,
    disabled plugins and require_secure_transport.  One line is logged per login
    attempt (never a password).

    \b
    Examples:
      APP_PW=secret mysqlwire serve --user app:sha2 --password-env APP_PW
      mysqlwire serve --config accounts.toml --keylog keys.log --dump-rsa-key rsa.pem
    """
    try:
        config = _build_config(
            config_path,
            host,
            port,
            tls,
            keylog,
            rsa_key,
            users,
            password_env,
            password_file,
            greeting_plugin,
            server_version,
            max_connections,
            require_secure_transport,
            allow_cleartext_over_plain,
            switch_nonce,
            warm_cache,
        )
    except MysqlwireError as exc:
        _fail(str(exc))
    dump_out = None
    try:
        from mysqlwire.outputs import check_output, check_outputs, prepare_secret_file

        inputs = [p for p in (config_path, rsa_key, password_file) if p]
        checked = check_outputs(
            {"--dump-rsa-key": dump_rsa_key, "--keylog": config.keylog_file}, inputs=inputs
        )
        dump_out = checked.get("--dump-rsa-key")
        if config.keylog_file:
            # the ssl module appends to it: create it 0600 (O_EXCL|O_NOFOLLOW)
            # or set an existing regular file to 0600 first
            prepare_secret_file(check_output(config.keylog_file).path, what="--keylog")
    except MysqlwireError as exc:
        _fail(str(exc))
    logger = logging.getLogger("mysqlwire.serve")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    try:
        asyncio.run(_run(config, dump_out))
    except MysqlwireError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
