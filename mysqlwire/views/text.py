"""Human-readable terminal output (rich), one block per connection.

Strings from the wire are untrusted: they are appended as plain ``Text`` (no
markup interpretation) and control characters are escaped.  Without colour the
same lines go to a :class:`~mysqlwire.views.plain.PlainConsole` (the same bytes,
without importing rich).
"""

from __future__ import annotations

import datetime as _dt
import sys

from ..auth import describe
from ..model import Connection
from .escape import clean
from .packets import client_label, server_label
from .plain import PlainConsole, PlainLine
from .tree import packet_tree

_OUTCOME_STYLE = {
    "ok": "bold green",
    "error": "bold red",
    "incomplete": "bold yellow",
    # neither is a failure: shown neutrally
    "encrypted": "bold cyan",
    "midstream": "bold cyan",
}
_OUTCOME_LABEL = {
    "encrypted": "ENCRYPTED (TLS without keys: login not visible)",
    "midstream": "joined mid-stream",
}
_TREE_STYLE = {"head": "cyan", "dim": "dim", "warn": "yellow"}
_SEVERITY_STYLE = {
    "error": "bold red",
    "security": "bold magenta",
    "warning": "yellow",
    "info": "cyan",
}


def _ts(t: float | None) -> str:
    if t is None:
        return "-"
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


class Renderer:
    def __init__(self, *, color: bool, show_secrets: bool = False, file=None):
        if color:
            from rich.console import Console

            self.console = Console(
                file=file or sys.stdout,
                force_terminal=color,
                no_color=not color,
                highlight=False,
                soft_wrap=True,
                emoji=False,
            )
        else:  # (what that console writes without colour: the plain characters)
            self.console = PlainConsole(file or sys.stdout)
        self.show_secrets = show_secrets

    def _text(self, text: str = "", style: str = ""):
        """A line to print: rich's ``Text``, or a :class:`PlainLine` for a plain console."""
        if self.console.__class__ is PlainConsole:
            return PlainLine(text)
        from rich.text import Text

        return Text(text, style=style)

    def _end(self) -> None:
        if self.console.__class__ is PlainConsole:
            self.console.flush()  # (a rich console flushes after every print)

    def _line(self, label: str, *parts) -> None:
        t = self._text("  ")
        t.append(f"{label:<10}", style="bold")
        for p in parts:
            if isinstance(p, tuple):
                t.append(clean(p[0]), style=p[1])
            else:
                t.append(clean(p))
        self.console.print(t)

    def connection(self, conn: Connection, *, packets: bool = False) -> None:
        head = self._text()
        head.append(f"#{conn.id} ", style="bold")
        head.append(clean(conn.client))
        head.append(" -> ")
        head.append(clean(conn.server))
        dur = ""
        if conn.first_ts is not None and conn.last_ts is not None:
            dur = f"  ({(conn.last_ts - conn.first_ts) * 1000:.1f} ms)"
        head.append(f"  {_ts(conn.first_ts)}{dur}", style="dim")
        self.console.print(head)
        if conn.server_version is not None:
            self._line(
                "server",
                server_label(conn),
                f", thread {conn.thread_id}, protocol {conn.protocol_version}",
            )
        client = client_label(conn)
        if client:
            detail = conn.extra.get("client_fingerprint_detail") or {}
            sure = detail.get("confidence")
            if sure and detail.get("library"):
                self._line("client", client, (f"  (confidence {sure})", "dim"))
            else:
                self._line("client", client)
        if conn.user is not None or conn.database is not None:
            self._line(
                "user",
                conn.user if conn.user is not None else "-",
                "   database ",
                conn.database or "-",
            )
        chain = []
        if conn.greeting_plugin:
            chain.append(f"greeting {conn.greeting_plugin}")
        if conn.client_plugin:
            chain.append(f"client {conn.client_plugin}")
        for s in conn.switches:
            chain.append(f"switch {s}")
        if chain:
            self._line("auth", " -> ".join(chain), *self._auth_steps(conn))
        tls = "no"
        if conn.tls:
            info = conn.tls_info
            bits = [info.get("tls_version") or "TLS", info.get("tls_cipher") or ""]
            if info.get("tls_sni"):
                bits.append(f"SNI {info['tls_sni']}")
            status = info.get("tls_status")
            bits.append("decrypted" if info.get("decrypted") else f"not decrypted ({status})")
            tls = " ".join(b for b in bits if b)
        self._line("tls", tls, "   compressed ", "yes" if conn.compressed else "no")
        self._outcome("outcome", conn.outcome, conn.error)
        for ex in conn.change_users:
            self._outcome("chg-user", ex.outcome, ex.error, f"user {ex.user} ")
        if conn.command_error:
            e = conn.command_error
            self._line("1st cmd", (f"ERROR {e['code']} ({e['sqlstate']}) {e['message']}", "yellow"))
        verdict = conn.extra.get("verdict")
        cu_verdicts = conn.extra.get("change_user_verdicts") or []
        # one verdict per exchange: a failed change-user proof is not hidden
        # behind the login's PROOF_MATCHES
        for j, v in enumerate([verdict, *cu_verdicts]):
            if not v:
                continue
            style = {"PROOF_MATCHES": "bold green", "PROOF_MISMATCH": "bold red"}.get(
                v["verdict"], "yellow"
            )
            detail = f" ({v['verdict_detail']})" if v.get("verdict_detail") else ""
            matched = v.get("matched_candidate")
            extra = (
                f"  matched the candidate on line {matched} of the candidates"
                if matched is not None
                else ""
            )
            which = "" if not cu_verdicts else ("login: " if j == 0 else f"COM_CHANGE_USER #{j}: ")
            self._line("verdict", which, (v["verdict"], style), detail, extra)
        for finding in conn.extra.get("diagnosis") or []:
            self._line(
                "finding",
                (
                    f"[{finding['severity']}] {finding['code']}",
                    _SEVERITY_STYLE.get(finding["severity"], ""),
                ),
                f" {finding['title']}",
            )
            if finding.get("evidence"):
                self._line("", ("evidence: ", "dim"), finding["evidence"])
            if finding.get("fix"):
                self._line("", ("fix: ", "dim"), finding["fix"])
        for a in conn.anomalies:
            self._line("anomaly", (a, "yellow"))
        if packets and conn.packets:
            self._line("packets", (f"{len(conn.packets)} in the connection phase", "dim"))
            for depth, line, style in packet_tree(conn):
                self.console.print(
                    self._text(
                        "    " + "    " * depth + clean(line), style=_TREE_STYLE.get(style, "")
                    )
                )
        self.console.print()
        self._end()

    def _auth_steps(self, conn: Connection) -> list:
        login = conn.login
        if login is None:
            return []
        notes = []
        for s in login.steps:
            if s.kind != "auth_more_data":
                continue
            m = describe(s.plugin, "server", s.kind, s.data)
            if m.success:
                notes.append("fast auth")
            elif m.stage == "full":
                notes.append("full auth requested")
            elif m.stage == "rsa":
                notes.append("RSA public key sent")
        return [("  (" + ", ".join(notes) + ")", "dim")] if notes else []

    def _outcome(self, label, outcome, error, prefix="") -> None:
        style = _OUTCOME_STYLE.get(outcome, "")
        shown = _OUTCOME_LABEL.get(outcome) or outcome.upper()
        if error:
            self._line(
                label,
                prefix,
                (
                    f"{shown}, ERR {error['code']}"
                    if outcome == "midstream"
                    else f"{shown} {error['code']}",
                    style,
                ),
                f" ({error['sqlstate']}) " if error.get("sqlstate") else " ",
                error.get("message") or "",
            )
        else:
            self._line(label, prefix, (shown, style))

    def footer(self, summaries, shown: int) -> None:
        total = sum(s.connections for s in summaries)
        frames = sum(s.frames for s in summaries)
        t = self._text(
            f"{shown} of {total} connection(s) shown, {frames} frame(s) read", style="dim"
        )
        self.console.print(t)
        self._end()
