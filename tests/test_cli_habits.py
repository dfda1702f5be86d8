"""CLI habits (#18 item 5): short options, a suggestion for a mistyped command,
one error style with the path said once, a warning for an empty password file,
a matched candidate named by its line number (never its value), --help texts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mysqlwire.cli import COMMANDS, cli

from .conftest import REPO

SAMPLES = REPO / "captures" / "lab-samples"
TRUTH = {
    json.loads(line)["pcap"]: json.loads(line)
    for line in (SAMPLES / "truth.jsonl").read_text().splitlines()
    if line.strip()
}
OK = "mariadb_pymysql_native_ok.pcap"


def run(*args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


def main(*args):
    """The installed entry point (``mysqlwire.cli:main``), as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from mysqlwire.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_short_options_equal_long_options(tmp_path):
    cap = SAMPLES / OK
    user = TRUTH[OK]["user"]
    long = run("dissect", "--port", 3306, "--format", "jsonl", "--user", user, cap)
    short = run("dissect", "-p", 3306, "-f", "jsonl", "-u", user, cap)
    assert long.exit_code == short.exit_code == 0
    assert short.stdout == long.stdout and json.loads(short.stdout)["user"] == user
    pw = tmp_path / "pw"
    pw.write_text(TRUTH[OK]["account_password"] + "\n")
    res = run("replay", "-P", pw, "-f", "jsonl", cap)
    assert res.exit_code == 0 and json.loads(res.stdout)["verdict"] == "PROOF_MATCHES"
    out = tmp_path / "r.html"
    res = run("report", "-P", pw, "-o", out, cap)
    assert res.exit_code == 0 and out.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("disect", "dissect"), ("diagnos", "diagnose"), ("replya", "replay"), ("rep", "report")],
)
def test_mistyped_command_suggests(typo, meant):
    res = main(typo, "x.pcap")
    assert res.returncode == 2
    assert res.stderr.startswith(f"mysqlwire: error: No such command '{typo}'. Did you mean ")
    assert f"'{meant}'" in res.stderr.splitlines()[0]
    assert res.stderr.count("\n") == 1 and res.stdout == ""


def test_unknown_command_lists_commands():
    res = main("frobnicate")
    assert res.returncode == 2 and "Commands: capture, diagnose, dissect" in res.stderr


def test_usage_errors_use_the_same_style():
    res = main("dissect", "--format", "xml", str(SAMPLES / OK))
    assert res.returncode == 2
    assert res.stderr.startswith("mysqlwire: error: Invalid value for '-f' / '--format'")
    assert res.stderr.count("\n") == 1 and "(see 'mysqlwire dissect --help')" in res.stderr


@pytest.mark.parametrize("command", ["dissect", "replay", "diagnose", "report"])
def test_bad_input_names_the_path_once(tmp_path, command):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"garbage, not a capture")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.pcap"
    for path in (bad, empty, missing):
        res = main(command, path, "-o", tmp_path / "r.html") if command == "report" else None
        res = res or main(command, path)
        assert res.returncode == 2, (command, path, res.stderr)
        line = res.stderr.strip()
        assert line.startswith("mysqlwire: error: ") and "\n" not in line, line
        assert line.count(str(path)) == 1, line
    assert not (tmp_path / "r.html").exists()


def test_empty_password_file_is_warned(tmp_path):
    empty = tmp_path / "pw"
    empty.write_text("\n")  # one newline: the empty password
    res = main("replay", "--password-file", empty, SAMPLES / OK)
    assert f"mysqlwire: warning: password file {empty} is empty" in res.stderr
    assert res.returncode == 1  # the empty password does not verify the proof
    cands = tmp_path / "c"
    cands.write_text("\n\n")
    res = main("replay", "--candidates", cands, SAMPLES / OK)
    assert f"mysqlwire: warning: candidates file {cands} holds no candidate" in res.stderr


def test_matched_candidate_is_named_by_its_line(tmp_path):
    pw = TRUTH[OK]["account_password"]
    cands = tmp_path / "rotated.txt"
    # blank lines and a duplicate before it: position among candidates is 3,
    # its line in the file is 7
    cands.write_text(f"\nold-one\n\nold-two\nold-one\n\n{pw}\nnewer\n")
    res = run("replay", "-f", "jsonl", "--candidates", cands, SAMPLES / OK)
    assert res.exit_code == 0
    assert json.loads(res.stdout)["matched_candidate"] == 7
    text = run("replay", "--candidates", cands, SAMPLES / OK).stdout
    assert "matched the candidate on line 7 of the candidates" in text
    leaked = pw in text or pw in res.stdout  # not in the assert: pytest would print it
    assert not leaked


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command):
    res = run(command, "--help")
    assert res.exit_code == 0 and "Usage: " in res.stdout
    assert len(res.stdout.splitlines()) > 5


def test_help_lists_short_options():
    res = run("--help")
    assert "-p/--port" in res.stdout and "-P/--password-file" in res.stdout
    for command in ("dissect", "replay", "diagnose"):
        out = run(command, "--help").stdout
        for opt in ("-p, --port", "-k, --keylog", "-f, --format", "-u, --user"):
            assert opt in out, (command, opt)
    assert "-P, --password-file" in run("replay", "--help").stdout
    assert "-o, --output" in run("report", "--help").stdout


def test_mistyped_subcommand_of_capture_suggests():
    res = main("capture", "ad", "x.pcap")
    assert res.returncode == 2
    assert res.stderr.startswith("mysqlwire: error: No such command 'ad'. Did you mean 'add'?")
