"""`mysqlwire keylog-inject` writes a pcapng that decrypts by itself, in
mysqlwire and in tshark."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from mysqlwire.cli import cli

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "lab-samples"


def test_injected_capture_decrypts_without_a_key_log(tmp_path):
    src = SAMPLES / "mysql8_cli_sha2_full_tls_keylog_ok.pcap"
    keys = SAMPLES / "mysql8_cli_sha2_full_tls_keylog_ok.keys"
    out = tmp_path / "self.pcapng"
    runner = CliRunner()
    res = runner.invoke(cli, ["keylog-inject", str(src), str(keys), "-o", str(out)])
    assert res.exit_code == 0, res.output
    before = json.loads(runner.invoke(cli, ["dissect", "--format", "jsonl", str(src)]).stdout)
    assert before["user"] is None and before["tls_status"] == "no-keys"
    after = json.loads(runner.invoke(cli, ["dissect", "--format", "jsonl", str(out)]).stdout)
    assert after["user"] == "app" and after["tls_status"] == "ok" and after["outcome"] == "ok"
    with_keylog = json.loads(
        runner.invoke(cli, ["dissect", "--format", "jsonl", "--keylog", str(keys), str(src)]).stdout
    )
    for key in ("user", "client_plugin", "final_plugin", "outcome", "tls_version", "tls_cipher"):
        assert after[key] == with_keylog[key]
    if shutil.which("tshark") is None:
        pytest.skip(
            "tshark not installed: the Wireshark half of this check needs it (scripts/lab_setup.sh installs it)"
        )
    users = subprocess.run(
        ["tshark", "-r", str(out), "-Y", "mysql.user", "-T", "fields", "-e", "mysql.user"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert users == ["app"]


def test_bad_key_log_is_one_line(tmp_path):
    bad = tmp_path / "keys.txt"
    bad.write_text("nothing useful here\n")
    res = CliRunner().invoke(
        cli,
        [
            "keylog-inject",
            str(SAMPLES / "lab_cli_tls_keylog_ok.pcap"),
            str(bad),
            "-o",
            str(tmp_path / "o.pcapng"),
        ],
    )
    assert (
        res.exit_code == 2
        and res.stderr.startswith("mysqlwire: error:")
        and "Traceback" not in res.output
    )


def test_wrong_key_log_is_said_clearly(tmp_path):
    src = SAMPLES / "mysql8_cli_sha2_full_tls_keylog_ok.pcap"
    other = SAMPLES / "lab_cli_tls_keylog_ok.keys"
    res = CliRunner().invoke(
        cli, ["dissect", "--format", "jsonl", "--keylog", str(other), str(src)]
    )
    rec = json.loads(res.stdout)
    assert rec["tls_status"] == "keys-missing" and rec["user"] is None
    assert "key log has no secrets for 1 TLS session" in res.stderr
    # right client random, corrupted secret
    good = (SAMPLES / "mysql8_cli_sha2_full_tls_keylog_ok.keys").read_text().splitlines()
    bad = []
    for line in good:
        parts = line.split()
        if len(parts) == 3:
            parts[2] = ("00" if parts[2][:2] != "00" else "11") + parts[2][2:]
        bad.append(" ".join(parts))
    corrupt = tmp_path / "corrupt.keys"
    corrupt.write_text("\n".join(bad) + "\n")
    res = CliRunner().invoke(
        cli, ["dissect", "--format", "jsonl", "--keylog", str(corrupt), str(src)]
    )
    assert json.loads(res.stdout)["tls_status"] == "decrypt-failed"
    assert "decryption failed for 1 session" in res.stderr
