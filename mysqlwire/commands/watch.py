"""``mysqlwire watch``: live capture, one line per login the moment it ends.

Exit status as ``dissect``: 0 every login seen succeeded, 1 a login failed,
2 capture could not start (tcpdump missing, no capability, unknown interface),
3 nothing examined (no MySQL login seen before the capture stopped).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import click

from . import secrets as secret_opts
from .common import EXIT_OK, EXIT_PROBLEM, fail, warn

EXIT_NOTHING = 3


def _line(conn, verdict: str | None) -> str:
    ts = time.strftime("%H:%M:%S", time.localtime(conn.last_ts or conn.first_ts or time.time()))
    who = conn.user if conn.user is not None else "?"
    if conn.database:
        who += f"/{conn.database}"
    plugin = conn.final_plugin or conn.client_plugin or conn.greeting_plugin or "-"
    tls = " tls" if conn.tls else ""
    head = f"{ts} #{conn.id} {conn.client} -> {conn.server} {who} [{plugin}{tls}]"
    if conn.extra.get("update"):
        head += " (update)"
    outcome = conn.outcome
    if conn.failed:
        err = conn.error or {}
        code = err.get("code")
        msg = err.get("message") or "client gave up during authentication"
        text = f"{head} FAILED" + (f" {code}" if code else "") + f": {msg}"
    elif outcome == "ok":
        text = f"{head} ok"
    else:
        text = f"{head} {outcome}"
    if verdict:
        text += f" | replay: {verdict}"
    findings = conn.extra.get("diagnosis") or []
    top = next((d for d in findings if d.get("severity") == "error"), None)
    if top is None and conn.failed and findings:
        top = findings[0]
    if top is not None and conn.failed:
        text += f"\n    {top['code']}: {top['title']}\n    fix: {top['fix']}"
    saved = conn.extra.get("saved")
    if saved:
        text += f"\n    saved: {saved}"
    return text


@click.command()
@click.option(
    "-i",
    "--interface",
    "iface",
    default="any",
    show_default=True,
    help="Interface to capture on (lo for loopback, 'any' for all).",
)
@click.option(
    "-p",
    "--port",
    "ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    help="Only these server ports (repeatable; default: find MySQL on any port).",
)
@click.option(
    "-k",
    "--keylog",
    type=click.Path(dir_okay=False, path_type=Path),
    help="NSS key log to decrypt TLS logins (read again as it grows).",
)
@secret_opts.secret_options
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    show_default=True,
    help="One line per login, or one JSON record per login.",
)
@click.option(
    "--save-failures",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep a small pcap of each failed login in this directory (redacted).",
)
@click.option(
    "--save-unredacted",
    is_flag=True,
    help="With --save-failures: keep the secrets in the saved pcaps (for replay).",
)
@click.option(
    "--save-max-files",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Ring size of --save-failures (oldest deleted first).",
)
@click.option(
    "--save-max-bytes",
    type=click.IntRange(1024),
    default=50 * 1024 * 1024,
    show_default=True,
    help="Total bytes kept by --save-failures (oldest deleted first).",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Forget a TCP connection silent for this many seconds (bounds memory).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Stop after this many seconds (default: until Ctrl-C).",
)
@click.option(
    "--input",
    "input_path",
    type=click.Path(allow_dash=True),
    default=None,
    hidden=True,
    help="Read a pcap stream from this file or '-' instead of capturing.",
)
@click.option("--show-secrets", is_flag=True, help="Print clear-text secrets (off by default).")
def watch(
    iface,
    ports,
    keylog,
    password_file,
    password_env,
    prompt,
    secrets_file,
    candidates,
    account_hash,
    account_hash_file,
    rsa_keys,
    fmt,
    save_failures,
    save_unredacted,
    save_max_files,
    save_max_bytes,
    idle_timeout,
    duration,
    input_path,
    show_secrets,
):
    """Capture live and print each MySQL/MariaDB login the moment it ends: one
    line per login, the diagnosis for failures, and replay verdicts when a
    password is given.  Finds MySQL on any port; Ctrl-C prints a summary.

    \b
    Needs tcpdump and the capture capabilities (root, or
    'setcap cap_net_raw,cap_net_admin=eip /usr/bin/tcpdump').
    Exit: 0 every login succeeded, 1 a login failed, 2 could not capture,
    3 no MySQL login seen.
    """
    from ..capture.live import LiveError, open_live
    from ..diagnose import CaptureFacts, diagnose_connection
    from ..dissect import DissectOptions
    from ..errors import MysqlwireError
    from ..watch import FailureKeeper, FollowedKeyLog, WatchStats, follow

    if keylog is not None and not keylog.exists():
        fail(
            f"key log {keylog}: no such file (create it, or start the client with SSLKEYLOGFILE first)"
        )

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
    opts = DissectOptions(
        ports=tuple(ports),
        detect=not ports,
        keylog=FollowedKeyLog(keylog) if keylog else None,
        show_secrets=show_secrets,
        idle_timeout=idle_timeout,
        stream=True,
    )
    keeper = None
    if save_failures is not None:
        keeper = FailureKeeper(
            save_failures,
            redact=not save_unredacted,
            max_files=save_max_files,
            max_bytes=save_max_bytes,
        )
    stats = WatchStats()
    failed_any = False
    seen = CaptureFacts()  # the session is the capture: TLS elsewhere, security said once

    def on_connection(conn) -> None:
        nonlocal failed_any
        if conn.outcome == "midstream":
            return
        if not conn.extra.get("update"):
            stats.logins += 1
        if conn.failed:
            failed_any = True
            stats.failed += 1
        verdict = None
        try:
            seen.add(conn)
            diagnose_connection(conn, None if secrets.empty else secrets, capture=seen)
        except MysqlwireError:
            pass
        v = conn.extra.get("verdict")
        if isinstance(v, dict):
            verdict = v.get("verdict")
            if v.get("matched_candidate"):
                verdict += f" (candidate #{v['matched_candidate']})"
        if fmt == "jsonl":
            from .diagnose import record

            rec = record(conn)
            if conn.extra.get("saved"):
                rec["saved"] = str(conn.extra["saved"])
            click.echo(json.dumps(rec, ensure_ascii=True, default=str))
        else:
            click.echo(_line(conn, verdict))
        sys.stdout.flush()

    live = None
    stop = {"now": False}
    deadline = time.monotonic() + duration if duration else None

    def on_signal(_signo, _frame):
        stop["now"] = True
        if live is not None:
            live.stop()

    if input_path is not None:
        stream = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")  # noqa: SIM115
        label = "<stdin>" if input_path == "-" else input_path
    else:
        try:
            live = open_live(iface, tuple(ports))
        except LiveError as exc:
            fail(str(exc))
        stream = live.stream
        label = f"live:{iface}"
        warn_line = f"watching {iface} for MySQL logins" + (
            f" on port(s) {', '.join(map(str, ports))}" if ports else " on any port"
        )
        click.echo(f"mysqlwire: {warn_line} (Ctrl-C to stop)", err=True)
    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    if deadline is not None and live is not None:
        import threading

        def timer():
            while time.monotonic() < deadline and not stop["now"]:
                time.sleep(0.05)
            on_signal(None, None)

        threading.Thread(target=timer, daemon=True).start()
    summary = None
    try:
        summary = follow(
            stream,
            opts,
            on_connection,
            keeper=keeper,
            stats=stats,
            label=label,
            should_stop=lambda: stop["now"] and live is None,
        )
    except MysqlwireError as exc:
        if live is not None:
            live.wait()
            why = live.failure()
            if why:
                fail(why)
        fail(f"{label}: {exc}")
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        if live is not None:
            live.stop()
            live.wait()
    if live is not None:
        why = live.failure()
        if why and stats.frames == 0:
            fail(why)
    if summary is not None and summary.truncated and live is None:
        warn(f"{label}: {summary.error or 'stream truncated'}")
    secs = time.time() - stats.started
    click.echo(
        f"mysqlwire: watched {secs:.0f}s: {stats.frames} frame(s), {stats.logins} login(s), "
        f"{stats.failed} failed"
        + (f", {len(keeper.saved)} saved in {save_failures}" if keeper else ""),
        err=True,
    )
    if stats.logins == 0:
        click.echo("mysqlwire: no MySQL login seen", err=True)
        sys.exit(EXIT_NOTHING)
    sys.exit(EXIT_PROBLEM if failed_any else EXIT_OK)
