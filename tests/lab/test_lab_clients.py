"""Real clients against a real MariaDB, captured: does each scenario do what its truth says?

Two halves per scenario, both against the scenario table (``scenarios.py``), never against mysqlwire:
* the CLIENT side: connected or not, the exception / error code it reported, the session it got;
* the WIRE side: one TCP connection per pcap, the server's greeting (or its ERR instead), and - when
  not inside TLS - the client's response, the auth switches, the server's ERR, all read with the
  lab's own small reader (``wirecheck.py``). For TLS with a key log, the log must hold the secrets of
  the ClientHello in the capture.
Failure messages never include passwords.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .capture import tcp_connections
from .clients import CLIENTS
from .mariadb import ACCOUNTS
from .scenarios import EMPTY, SCENARIO_BY_NAME, SCENARIOS, ScenarioRun
from .wirecheck import CLIENT_SSL, read_connection

pytestmark = pytest.mark.lab

NAMES = [s.name for s in SCENARIOS]
KEYLOG_NAMES = [s.name for s in SCENARIOS if s.keylog]


def _run(lab_results, name: str) -> ScenarioRun:
    run = lab_results.runs[name]
    if run.skipped:
        if os.environ.get("CI"):
            pytest.fail(run.skipped, pytrace=False)
        pytest.skip(run.skipped)
    return run


def _describe(run: ScenarioRun) -> str:
    """A failure message without passwords (the result's stderr is redacted by clients.login)."""
    r = run.result
    err = r.error.text() if r and r.error else None
    cmd = r.command_error.text() if r and r.command_error else None
    return (
        f"\nscenario {run.scenario.name} ({run.scenario.client}, user {run.scenario.user}, "
        f"server {run.scenario.server}, lane {run.lane}): connected={r and r.connected} "
        f"error={err!r} command_error={cmd!r} change_user={r and r.change_user!r}\n"
        f"pcap: {run.pcap}\nclient stderr: {(r.stderr if r else '')[-800:]}"
    )


# ----------------------------------------------------------------------------- the lab itself


def test_servers_are_real_and_configured(mariadb):
    assert "MariaDB" in (mariadb.version or "")
    assert mariadb.startup_seconds is not None and mariadb.startup_seconds < 60
    main = mariadb.servers["main"]
    plugins = main.sql(
        "SELECT PLUGIN_NAME, PLUGIN_STATUS FROM information_schema.PLUGINS "
        "WHERE PLUGIN_NAME IN ('ed25519', 'pam');"
    )
    assert "ed25519\tACTIVE" in plugins and "pam\tACTIVE" in plugins
    users = set(main.sql("SELECT CONCAT(User, '@', Host) FROM mysql.user;").split())
    for a in ACCOUNTS.values():
        if a.server == "main":
            assert f"{a.user}@{a.host}" in users
    assert main.sql("SELECT @@have_ssl, @@secure_auth;").split() == ["YES", "0"]
    clear = mariadb.servers["pamclear"].sql("SELECT @@pam_use_cleartext_plugin;").strip()
    assert clear == "1"
    hostonly = mariadb.servers["hostonly"].sql("SELECT CONCAT(User, '@', Host) FROM mysql.user;")
    assert "remote@10.9.9.9" in hostonly.split()
    assert not any(h.endswith(("@%", "@127.0.0.1")) for h in hostonly.split())


def test_scenario_table_is_broad():
    assert len(SCENARIOS) >= 30
    assert {s.client for s in SCENARIOS} == set(CLIENTS)
    codes = {s.code for s in SCENARIOS}
    for code in (
        "OK",
        "WRONG_PASSWORD",
        "ACCESS_DENIED",
        "UNKNOWN_DATABASE",
        "DB_ACCESS_DENIED",
        "CLIENT_LACKS_PLUGIN",
        "PLUGIN_SWITCH",
        "CLEARTEXT_WITHOUT_TLS",
        "EMPTY_PASSWORD",
        "ACCOUNT_LOCKED",
        "PASSWORD_EXPIRED",
        "TLS_REQUIRED",
        "HOST_NOT_ALLOWED",
        "OLD_PASSWORD_REFUSED",
    ):
        assert code in codes, code


def test_every_scenario_ran_within_budget(lab_results):
    assert set(lab_results.runs) == set(NAMES)
    # the whole lab (start-up + every scenario) must stay well under two minutes on 2 cores
    assert lab_results.seconds < 150, f"lab run took {lab_results.seconds:.0f}s"


def test_lab_run_fixture_api(lab_run, lab_results):
    ran = [n for n, r in lab_results.runs.items() if not r.skipped]
    assert sorted(lab_run) == sorted(ran)
    for name, (pcap, truth, keylog) in lab_run.items():
        assert isinstance(pcap, Path) and pcap.is_file()
        assert truth["scenario"] == name and truth["pcap"] == pcap.name
        assert (keylog is not None) == SCENARIO_BY_NAME[name].keylog
        line = json.loads((pcap.parent / f"{name}.json").read_text())
        assert line == truth
    lines = (lab_results.outdir / "truth.jsonl").read_text().splitlines()
    assert [json.loads(ln)["scenario"] for ln in lines] == [n for n in NAMES if n in lab_run]


def test_results_do_not_leak_passwords(lab_results):
    for run in lab_results.runs.values():
        if run.result is None:
            continue
        blob = json.dumps(run.result.to_dict())
        for pw in (run.scenario.given_password, (run.scenario.change_user or {}).get("password")):
            if pw and len(pw) >= 3:
                assert pw not in blob, f"{run.scenario.name}: a password is in the client result"


# ----------------------------------------------------------------------------- client side


@pytest.mark.parametrize("name", NAMES)
def test_client_side_truth(lab_results, name):
    run = _run(lab_results, name)
    sc, r = run.scenario, run.result
    msg = _describe(run)
    assert r is not None and r.version, msg
    assert r.connected == sc.connected, msg
    if sc.connected:
        assert r.error is None, msg
    else:
        assert r.error is not None, msg
        assert r.error.cls not in ("WorkerCrashed", "Timeout"), msg
        assert r.error.code == sc.client_code, msg
        if sc.client_says:
            assert sc.client_says in r.error.message, msg
        elif sc.error_message:
            assert sc.error_message in r.error.message, msg
        if sc.sqlstate and r.error.sqlstate and not sc.client_says:
            assert r.error.sqlstate == sc.sqlstate, msg
    if sc.command_code is not None:
        assert r.command_error is not None and r.command_error.code == sc.command_code, msg
        assert sc.command_errors[0]["message"] in r.command_error.message, msg
    else:
        assert r.command_error is None, msg
    if sc.connected and sc.command_code is None:
        acct = ACCOUNTS[sc.user]
        s = r.session or {}
        assert s.get("current_user") == f"{sc.user}@{acct.host}", msg
        assert s.get("database") == sc.database, msg
        assert bool(s.get("ssl_cipher")) == sc.tls_used, msg
        assert s.get("compression") == ("ON" if sc.compress else "OFF"), msg
    if sc.change_user:
        cu = sc.change_user
        got = r.change_user or {}
        want_ok = cu.get("outcome", "ok") == "ok"
        assert got.get("ok") == want_ok, msg
        if want_ok:
            assert got.get("current_user") == f"{cu['user']}@%", msg
        else:
            err = got.get("error")
            assert err is not None, msg
            assert err.code == cu.get("error_code"), msg
            if cu.get("client_says"):
                assert cu["client_says"] in err.message, msg


# ----------------------------------------------------------------------------- wire side


@pytest.mark.parametrize("name", NAMES)
def test_capture_matches_truth(lab_results, name):
    run = _run(lab_results, name)
    t = run.truth
    msg = _describe(run)
    assert run.pcap.is_file() and run.pcap.stat().st_size > 24, msg
    conns = tcp_connections(run.pcap)
    assert len(conns) == 1, f"expected one connection per capture, got {len(conns)}" + msg
    c = conns[0]
    assert c.syn and c.s2c and c.c2s is not None, msg
    assert c.server[1] == t["port"] and c.server[0] == t["server_address"], msg
    assert t["client_port"] == c.client_port, msg
    f = read_connection(c.c2s, c.s2c)

    if t["plugin_initial"] is None:  # ERR instead of the greeting (host not allowed)
        assert f.greeting is None and f.error_before_greeting is not None, msg
        e = f.error_before_greeting
        assert (e.code, e.sqlstate, e.message) == (
            t["error_code"],
            t["sqlstate"],
            t["error_message"],
        )
        assert f.response is None, msg
        return

    g = f.greeting
    assert g is not None and g["protocol"] == 10 and "MariaDB" in g["version"], msg
    assert g["plugin"] == t["plugin_initial"], msg
    assert g["caps"] & CLIENT_SSL, "the lab servers all offer TLS" + msg
    assert f.tls == t["tls"], msg
    if f.tls:
        # the rest is TLS: the first client bytes after the SSLRequest are a TLS handshake record
        assert c.c2s[36:37] == b"\x16", msg
        return

    resp = f.response
    assert resp["user"] == t["user"], msg
    assert resp["database"] == t["database"], msg
    assert resp["plugin"] == t["plugin_client"], msg
    assert f.compressed == t["compressed"], msg
    assert f.switches == t["switches"], msg
    assert f.login == t["outcome"], msg
    if t["outcome"] == "error":
        e = f.login_error
        assert (e.code, e.sqlstate, e.message) == (
            t["error_code"],
            t["sqlstate"],
            t["error_message"],
        )
    # what the client sent: no proof at all for EMPTY_PASSWORD_SENT, a 20-byte native proof first
    # whenever it had a password
    if t["expected_verdict"] == EMPTY:
        assert f.auth_steps[-1] == 0, f"auth step lengths {f.auth_steps}" + msg
    elif t["password"] and t["plugin_client"] == "mysql_native_password":
        assert f.auth_steps[0] == 20, f"auth step lengths {f.auth_steps}" + msg
    # one answer per step the client took part in (initial + one per switch it answered)
    answered = len(f.auth_steps) - 1
    if t["outcome"] == "incomplete":
        assert answered == len(t["switches"]) - 1, f"auth steps {f.auth_steps}" + msg
    elif t["switches"]:
        assert answered == len(t["switches"]), f"auth steps {f.auth_steps}" + msg
    if not t["compressed"]:
        want = [e["code"] for e in t.get("command_errors", [])]
        cu = t.get("change_user")
        if cu and cu["error_code"]:
            want.append(cu["error_code"])
        assert [e.code for e in f.command_errors] == want, msg
        assert f.change_user_sent == bool(cu), msg
        if cu:
            assert f.change_user_switches == cu["switches"], msg


@pytest.mark.parametrize("name", KEYLOG_NAMES)
def test_keylog_has_the_captured_session(lab_results, name):
    """The key log must hold secrets for the ClientHello random seen in the capture."""
    run = _run(lab_results, name)
    msg = _describe(run)
    assert run.keylog is not None and run.keylog.is_file(), "no key log written" + msg
    c = tcp_connections(run.pcap)[0]
    # SSLRequest (4 + 32 bytes), then the TLS record header (5), handshake header (4), version (2)
    hello = c.c2s[36:]
    assert hello[:1] == b"\x16" and hello[5:6] == b"\x01", msg
    client_random = hello[11:43].hex()
    lines = run.keylog.read_text().splitlines()
    assert any(ln.split()[1:2] == [client_random] for ln in lines if ln.strip()), (
        "the key log has no secret for the captured ClientHello" + msg
    )
