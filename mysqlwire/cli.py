"""Command line entry point.

The group imports a subcommand's module only when that subcommand runs
(click's LazyGroup pattern), so ``mysqlwire --help`` stays fast and never
imports Scapy, Construct or cryptography.

Exit codes (all commands):
  0  everything fine (no failed login / every proof verified / no problem found)
  1  the capture shows a problem (failed login, proof mismatch, error finding)
  2  unusable input or bad usage (not a capture, missing file, bad option)
  3  nothing examined (no MySQL connection found, or the filters matched none)
"""

from __future__ import annotations

import importlib
import sys

import click

from .commands.common import SuggestingGroup

# name -> (module, attribute, one-line help shown by --help without importing)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "dissect": (
        "mysqlwire.commands.dissect",
        "dissect",
        "Show every MySQL connection phase in a capture.",
    ),
    "replay": (
        "mysqlwire.commands.replay",
        "replay",
        "Verify captured scrambles byte-for-byte against passwords or hashes.",
    ),
    "diagnose": (
        "mysqlwire.commands.diagnose",
        "diagnose",
        "Explain failed logins from wire evidence, with the fix.",
    ),
    "serve": (
        "mysqlwire.commands.serve",
        "serve",
        "Run a MySQL 8 connection-phase server (caching_sha2, sha256, scripted failures).",
    ),
    "keylog-inject": (
        "mysqlwire.commands.keylog",
        "keylog_inject",
        "Write a pcapng that carries its TLS key log (self-decrypting).",
    ),
    "report": (
        "mysqlwire.commands.report",
        "report",
        "Write a self-contained HTML report with ladder diagrams.",
    ),
    "redact": (
        "mysqlwire.commands.redact",
        "redact",
        "Remove passwords/tokens and map IPs/users in a capture.",
    ),
    "watch": (
        "mysqlwire.commands.watch",
        "watch",
        "Capture live and print each login the moment it ends, with the diagnosis.",
    ),
    "capture": (
        "mysqlwire.commands.corpus",
        "capture",
        "Manage the regression corpus (captures/ + sidecars).",
    ),
}


class LazyGroup(SuggestingGroup):
    def list_commands(self, ctx):
        return sorted(name for name in COMMANDS if _available(name))

    def get_command(self, ctx, cmd_name):
        spec = COMMANDS.get(cmd_name)
        if spec is None or not _available(cmd_name):
            return None
        module = importlib.import_module(spec[0])
        return getattr(module, spec[1])

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """One error style for every error: ``mysqlwire: error: <message>``
        on one line (click's usage errors included), exit status 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "mysqlwire"
            click.echo(f"mysqlwire: error: {exc.format_message()} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("mysqlwire: aborted", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            click.echo(f"mysqlwire: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(COMMANDS[name][0]) is not None


def _version(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    from .capture.native import NATIVE, WHY

    loop = "native (C)" if NATIVE else f"Python ({WHY})"
    click.echo(f"mysqlwire, version {version('mysqlwire')}; capture loop: {loop}")
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the version (and whether the native capture loop is in use) and exit.",
)
def cli() -> None:
    """mysqlwire: what actually happened on the wire of a MySQL/MariaDB login.

    \b
    Exit codes: 0 ok, 1 the capture shows a problem (failed login,
    proof mismatch, error finding), 2 unusable input or bad usage,
    3 nothing examined (no MySQL connection found, or filters matched none).

    \b
    Short options, the same in every command:
      -p/--port  -k/--keylog  -f/--format  -u/--user  -P/--password-file
      -o/--output  -h/--help
    """


def main() -> None:
    cli(prog_name="mysqlwire")
