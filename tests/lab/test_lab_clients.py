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

from .checks import client_problems, describe, keylog_problems, wire_problems
from .clients import CLIENTS
from .mariadb import ACCOUNTS
from .scenarios import SCENARIO_BY_NAME, SCENARIOS, ScenarioRun

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


# ----------------------------------------------------------------------------- per scenario


@pytest.mark.parametrize("name", NAMES)
def test_client_side_truth(lab_results, name):
    """The client did what the truth says: connected or not, error code/text, session."""
    run = _run(lab_results, name)
    problems = client_problems(run)
    assert not problems, "\n".join(problems) + "\n" + describe(run)


@pytest.mark.parametrize("name", NAMES)
def test_capture_matches_truth(lab_results, name):
    """One connection per pcap, the greeting (or ERR), and outside TLS the truth's wire facts."""
    run = _run(lab_results, name)
    problems = wire_problems(run)
    assert not problems, "\n".join(problems) + "\n" + describe(run)


@pytest.mark.parametrize("name", KEYLOG_NAMES)
def test_keylog_has_the_captured_session(lab_results, name):
    """The key log holds secrets for the ClientHello random seen in the capture."""
    run = _run(lab_results, name)
    problems = keylog_problems(run)
    assert not problems, "\n".join(problems) + "\n" + describe(run)
