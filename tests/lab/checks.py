"""Does a scenario run agree with its truth? Used by the lab tests and by make_lab_captures.py.

Each function returns a list of problems (empty: all good), never raising for a mismatch:
* ``client_problems``: the client's result against the scenario (connected, error code and text,
  command errors, the session it got, COM_CHANGE_USER);
* ``wire_problems``: the capture against the truth, read with ``wirecheck`` (one connection, the
  greeting or the ERR before it, and outside TLS the response, switches, ERR, auth step sizes);
* ``keylog_problems``: the key log holds secrets for the ClientHello random in the capture.

Messages never contain passwords.
"""

from __future__ import annotations

from .capture import tcp_connections
from .mariadb import ACCOUNTS
from .scenarios import EMPTY, ScenarioRun
from .wirecheck import CLIENT_SSL, read_connection


class _Problems(list):
    def expect(self, ok, what: str) -> bool:
        if not ok:
            self.append(what)
        return bool(ok)


def describe(run: ScenarioRun) -> str:
    """A failure message without passwords (the result's stderr is redacted by clients.login)."""
    r = run.result
    sc = run.scenario
    err = r.error.text() if r and r.error else None
    cmd = r.command_error.text() if r and r.command_error else None
    return (
        f"scenario {sc.name} ({sc.client}, user {sc.user}, server {sc.server}, lane {run.lane}): "
        f"connected={r and r.connected} error={err!r} command_error={cmd!r} "
        f"change_user={r and r.change_user!r}\npcap: {run.pcap} (capture: {_cap(run)})\n"
        f"client stderr: {(r.stderr if r else '')[-800:]}"
    )


def _cap(run: ScenarioRun) -> str:
    c = run.capture
    if c is None:
        return "none"
    return f"{c.backend}, {c.packets} packets, {c.dropped} dropped, filter {c.bpf!r}"


def client_problems(run: ScenarioRun) -> list[str]:
    sc, r = run.scenario, run.result
    p = _Problems()
    if not p.expect(r is not None and r.version, "no client result / version"):
        return p
    p.expect(r.connected == sc.connected, f"connected={r.connected}, truth says {sc.connected}")
    if sc.connected:
        p.expect(r.error is None, "the client raised although the truth says it connects")
    elif p.expect(r.error is not None, "the client did not report an error"):
        e = r.error
        p.expect(e.cls not in ("WorkerCrashed", "Timeout"), f"client run failed: {e.cls}")
        p.expect(e.code == sc.client_code, f"client error code {e.code}, truth {sc.client_code}")
        if sc.client_says:
            p.expect(sc.client_says in e.message, f"client message lacks {sc.client_says!r}")
        elif sc.error_message:
            p.expect(sc.error_message in e.message, "client message is not the server's message")
        if sc.sqlstate and e.sqlstate and not sc.client_says:
            p.expect(e.sqlstate == sc.sqlstate, f"sqlstate {e.sqlstate}, truth {sc.sqlstate}")
    if sc.command_code is not None:
        ce = r.command_error
        if p.expect(ce is not None, "no command error"):
            p.expect(
                ce.code == sc.command_code, f"command error {ce.code}, truth {sc.command_code}"
            )
            p.expect(sc.command_errors[0]["message"] in ce.message, "command error message")
    else:
        p.expect(r.command_error is None, "unexpected command error")
    if sc.connected and sc.command_code is None:
        s = r.session or {}
        want_user = f"{sc.user}@{ACCOUNTS[sc.user].host}"
        p.expect(s.get("current_user") == want_user, f"CURRENT_USER() {s.get('current_user')}")
        p.expect(s.get("database") == sc.database, f"DATABASE() {s.get('database')}")
        p.expect(bool(s.get("ssl_cipher")) == sc.tls_used, f"Ssl_cipher {s.get('ssl_cipher')!r}")
        want_comp = "ON" if sc.compress else "OFF"
        p.expect(s.get("compression") == want_comp, f"Compression {s.get('compression')}")
    if sc.change_user:
        cu = sc.change_user
        got = r.change_user or {}
        want_ok = cu.get("outcome", "ok") == "ok"
        p.expect(got.get("ok") == want_ok, f"change_user ok={got.get('ok')}, truth {want_ok}")
        if want_ok:
            p.expect(got.get("current_user") == f"{cu['user']}@%", "user after change_user")
        elif p.expect(got.get("error") is not None, "change_user raised nothing"):
            err = got["error"]
            want = cu.get("client_code", cu.get("error_code"))
            p.expect(err.code == want, f"change_user error code {err.code}, truth {want}")
            if cu.get("client_says"):
                p.expect(cu["client_says"] in err.message, "change_user error message")
    return p


def wire_problems(run: ScenarioRun) -> list[str]:
    t = run.truth
    p = _Problems()
    if not p.expect(run.pcap.is_file() and run.pcap.stat().st_size > 24, "empty or missing pcap"):
        return p
    if run.capture is not None and run.capture.dropped:
        p.append(f"the capture lost {run.capture.dropped} packets (dropped by kernel)")
    conns = tcp_connections(run.pcap)
    if not p.expect(len(conns) == 1, f"{len(conns)} TCP connections in the capture, not 1"):
        return p
    c = conns[0]
    p.expect(c.syn and c.s2c, "no SYN or no server bytes")
    p.expect(c.server == (t["server_address"], t["port"]), f"server endpoint {c.server}")
    p.expect(t["client_port"] == c.client_port, "client_port")
    f = read_connection(c.c2s, c.s2c)

    def err_is(e, where):
        got = (e.code, e.sqlstate, e.message) if e else None
        want = (t["error_code"], t["sqlstate"], t["error_message"])
        p.expect(got == want, f"{where}: server ERR {got}, truth {want}")

    if t["plugin_initial"] is None:  # ERR instead of the greeting (host not allowed)
        p.expect(f.greeting is None, "a greeting, truth says ERR instead")
        err_is(f.error_before_greeting, "before the greeting")
        p.expect(f.response is None, "the client answered an ERR")
        return p

    g = f.greeting
    if not p.expect(g is not None, "no greeting"):
        return p
    p.expect(g["protocol"] == 10 and "MariaDB" in g["version"], f"greeting {g}")
    p.expect(g["plugin"] == t["plugin_initial"], f"greeting plugin {g['plugin']}")
    p.expect(g["caps"] & CLIENT_SSL, "the lab servers all offer TLS")
    p.expect(f.tls == t["tls"], f"TLS on the wire: {f.tls}, truth {t['tls']}")
    if f.tls:
        # the first client bytes after the SSLRequest (4 + 32) are a TLS handshake record
        p.expect(c.c2s[36:37] == b"\x16", "no TLS record after the SSLRequest")
        return p
    if not t["tls"]:
        r = f.response or {}
        p.expect(r.get("user") == t["user"], f"response user {r.get('user')}")
        p.expect(r.get("database") == t["database"], f"response database {r.get('database')!r}")
        p.expect(r.get("plugin") == t["plugin_client"], f"response plugin {r.get('plugin')}")
        in_effect = f.compressed and f.login == "ok"  # only a successful login switches it on
        p.expect(in_effect == t["compressed"], f"compression negotiated: {f.compressed}")
        p.expect(f.switches == t["switches"], f"switches {f.switches}, truth {t['switches']}")
        p.expect(f.login == t["outcome"], f"login {f.login}, truth {t['outcome']}")
        if t["outcome"] == "error":
            err_is(f.login_error, "login")
        steps = f.auth_steps
        if t["expected_verdict"] == EMPTY:
            p.expect(steps[-1] == 0, f"EMPTY_PASSWORD_SENT but auth step lengths {steps}")
        elif t["password"] and t["plugin_client"] == "mysql_native_password":
            p.expect(steps[0] == 20, f"no 20-byte native proof: auth step lengths {steps}")
        # one answer per step the client took part in: the response + one per switch answered
        answered = len(steps) - 1
        if t["outcome"] == "incomplete":
            p.expect(answered == len(t["switches"]) - 1, f"auth step lengths {steps}")
        elif t["switches"]:
            p.expect(answered == len(t["switches"]), f"auth step lengths {steps}")
        if not t["compressed"]:
            want = [e["code"] for e in t.get("command_errors", [])]
            cu = t.get("change_user")
            if cu and cu["error_code"]:
                want.append(cu["error_code"])
            got = [e.code for e in f.command_errors]
            p.expect(got == want, f"command-phase ERRs {got}, truth {want}")
            p.expect(f.change_user_sent == bool(cu), f"COM_CHANGE_USER sent: {f.change_user_sent}")
            if cu:
                p.expect(
                    f.change_user_switches == cu["switches"],
                    f"change_user switches {f.change_user_switches}",
                )
    return p


def keylog_problems(run: ScenarioRun) -> list[str]:
    p = _Problems()
    if not p.expect(run.keylog is not None and run.keylog.is_file(), "no key log written"):
        return p
    conns = tcp_connections(run.pcap)
    if not p.expect(len(conns) == 1, "no single connection"):
        return p
    # SSLRequest (4 + 32 bytes), TLS record header (5), handshake header (4), version (2), random
    hello = conns[0].c2s[36:]
    if not p.expect(hello[:1] == b"\x16" and hello[5:6] == b"\x01", "no ClientHello"):
        return p
    client_random = hello[11:43].hex()
    lines = [ln.split() for ln in run.keylog.read_text().splitlines() if ln.strip()]
    p.expect(
        any(len(w) == 3 and w[1] == client_random for w in lines),
        "the key log has no secret for the captured ClientHello",
    )
    return p


def all_problems(run: ScenarioRun) -> list[str]:
    out = client_problems(run) + wire_problems(run)
    if run.scenario.keylog:
        out += keylog_problems(run)
    return out
