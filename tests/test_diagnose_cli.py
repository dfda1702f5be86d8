"""``mysqlwire diagnose`` through click's CliRunner: exit codes, output, JSON keys."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mysqlwire.cli import cli

from .test_diagnose_lab_samples import _samples_dir

DISSECT_KEYS = {
    "schema",
    "capture",
    "id",
    "client",
    "server",
    "server_version",
    "greeting_plugin",
    "client_plugin",
    "switches",
    "final_plugin",
    "user",
    "outcome",
    "error",
    "tls",
}


@pytest.fixture
def samples():
    return _samples_dir()


def run(*args):
    return CliRunner().invoke(cli, ["diagnose", *map(str, args)], catch_exceptions=False)


def test_error_finding_exits_1(samples):
    r = run(samples / "mariadb_connector_ed25519.pcap", "--no-color")
    assert r.exit_code == 1, r.output
    assert "[error] CLIENT_LACKS_PLUGIN" in r.output
    assert "evidence: server packet seq 2: AuthSwitchRequest plugin 'client_ed25519'" in r.output
    assert "fix: mysql-connector-python has no client_ed25519 plugin" in r.output
    assert "mysql-connector-python 26.10.0 (pure Python)" in r.output


def test_successful_login_exits_0(samples):
    r = run(samples / "lab_pymysql_native_ok.pcap", "--no-color")
    assert r.exit_code == 0, r.output
    assert (
        "[security] OFFLINE_CRACKABLE_PROOF" in r.output
    )  # shown: a security finding is a problem


def test_clean_connection_hidden_unless_all(samples):
    args = [
        samples / "mariadb_pymysql_tls_keylog_ok.pcap",
        "--keylog",
        samples / "mariadb_pymysql_tls_keylog_ok.keys",
        "--no-color",
    ]
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "0 of 1 connection(s) shown" in r.output and "no problem found" in r.output
    r = run(*args, "--all")
    assert r.exit_code == 0
    assert "1 of 1 connection(s) shown" in r.output and "PyMySQL 1.2.4" in r.output


def test_json_record_keeps_dissect_keys_and_adds_diagnosis(samples):
    r = run(samples / "mariadb_connector_ed25519.pcap", "--format", "json")
    assert r.exit_code == 1
    (rec,) = json.loads(r.output)
    assert DISSECT_KEYS <= set(rec)
    assert rec["client_fingerprint"] == "mysql-connector-python 26.10.0 (pure Python)"
    assert rec["client_fingerprint_detail"]["library"] == "mysql-connector-python"
    assert rec["diagnosis"][0]["code"] == "CLIENT_LACKS_PLUGIN"
    assert set(rec["diagnosis"][0]) == {"code", "severity", "title", "evidence", "fix"}
    assert "verdict" not in rec  # no password: no replay keys


def test_jsonl_with_password_adds_verdict_and_hides_it(samples, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("Kx9#mq-Lamp\n")
    r = run(samples / "lab_cli_native_wrong.pcap", "--format", "jsonl", "--password-file", pw)
    assert r.exit_code == 1
    lines = [json.loads(x) for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1
    rec = lines[0]
    assert rec["verdict"] == "PROOF_MISMATCH"
    assert rec["diagnosis"][0]["code"] == "WRONG_PASSWORD"
    assert "Kx9#mq-Lamp" not in r.output and "Kx9#mq-Lamb" not in r.output


def test_without_password_1045_is_access_denied(samples):
    r = run(samples / "lab_cli_native_wrong.pcap", "--format", "json")
    assert r.exit_code == 1
    assert json.loads(r.output)[0]["diagnosis"][0]["code"] == "ACCESS_DENIED"


def test_info_only_exits_0_and_is_hidden(samples):
    r = run(
        samples / "m8emu_pymysql_sha2_full_tls.pcap",
        "--keylog",
        samples / "m8emu_pymysql_sha2_full_tls.keys",
        "--format",
        "json",
    )
    assert r.exit_code == 0
    assert json.loads(r.output) == []
    r = run(
        samples / "m8emu_pymysql_sha2_full_tls.pcap",
        "--keylog",
        samples / "m8emu_pymysql_sha2_full_tls.keys",
        "--format",
        "json",
        "--all",
    )
    assert [d["code"] for d in json.loads(r.output)[0]["diagnosis"]] == ["SHA2_FULL_AUTH"]


def test_bad_input_exits_2(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all")
    r = CliRunner().invoke(cli, ["diagnose", str(junk)])
    assert r.exit_code == 2
    r = CliRunner().invoke(cli, ["diagnose", str(tmp_path / "missing.pcap")])
    assert r.exit_code == 2
    r = CliRunner().invoke(cli, ["diagnose"])
    assert r.exit_code == 2


def test_other_port_needs_port_option(samples):
    r = run(samples / "lab_p3407_cli_host_not_allowed.pcap", "--port", "3407", "--format", "json")
    assert r.exit_code == 1
    assert json.loads(r.output)[0]["diagnosis"][0]["code"] == "HOST_NOT_ALLOWED"


def test_help_lists_exit_codes():
    r = CliRunner().invoke(cli, ["diagnose", "--help"])
    assert r.exit_code == 0 and "--all" in r.output and "Exit: 0" in r.output
