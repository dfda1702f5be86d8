"""`mysqlwire dissect` as a user runs it: formats, filters, exit codes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mysqlwire.cli import cli

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "captures" / "lab-samples"
OK = SAMPLES / "mariadb_pymysql_native_ok.pcap"
WRONG = SAMPLES / "mariadb_cli_native_wrong.pcap"
GAVE_UP = SAMPLES / "mariadb_connector_ed25519.pcap"


def run(*args, input=None):
    return CliRunner().invoke(cli, ["dissect", *map(str, args)], input=input)


def test_text_block_has_the_facts():
    res = run(OK, "--no-color")
    assert res.exit_code == 0, res.output
    out = res.stdout
    for needle in (
        "MariaDB 10.11.19",
        "thread 25",
        "app",
        "shop",
        "mysql_native_password",
        "OK",
        "127.0.0.1:3306",
    ):
        assert needle in out
    assert "\x1b[" not in out


def test_color_when_asked():
    res = run(WRONG, "--color")
    assert "\x1b[" in res.stdout and res.exit_code == 1


def test_exit_codes_and_error_details():
    res = run(WRONG, "--format", "jsonl")
    assert res.exit_code == 1
    rec = json.loads(res.stdout)
    assert rec["outcome"] == "error"
    assert rec["error"]["code"] == 1045 and rec["error"]["sqlstate"] == "28000"
    assert rec["error"]["message"].startswith("Access denied for user")
    # a client that gives up after a switch it cannot answer is a failed login
    res = run(GAVE_UP, "--format", "jsonl")
    rec = json.loads(res.stdout)
    assert (
        res.exit_code == 1
        and rec["outcome"] == "incomplete"
        and rec["switches"] == ["client_ed25519"]
    )


def test_json_schema_keys():
    res = run(OK, "--format", "json")
    (rec,) = json.loads(res.stdout)
    for key in (
        "schema", "capture", "id", "client", "server", "first_ts", "last_ts", "protocol_version",
        "server_version", "thread_id", "server_capabilities", "client_capabilities", "greeting_plugin",
        "client_plugin", "switches", "final_plugin", "user", "database", "connect_attrs", "tls",
        "compressed", "outcome", "error", "anomalies",
    ):  # fmt: skip
        assert key in rec, key
    assert rec["schema"] == "mysqlwire/connection/1"
    assert "CLIENT_PROTOCOL_41" in rec["client_capabilities"]
    assert rec["connect_attrs"]["_client_name"] == "pymysql"
    assert rec["client"].startswith("127.0.0.1:") and rec["server"] == "127.0.0.1:3306"
    assert "packets" not in rec


def test_packets_are_decoded_and_client_proofs_redacted():
    res = run(OK, "--format", "jsonl", "--packets")
    rec = json.loads(res.stdout)
    kinds = [p["kind"] for p in rec["packets"]]
    assert kinds[:3] == ["greeting", "handshake_response", "ok"]
    resp = rec["packets"][1]["fields"]
    assert resp["username"] == "app"
    assert resp["auth_response"] == {"redacted": True, "length": 20}
    shown = json.loads(run(OK, "--format", "jsonl", "--packets", "--show-secrets").stdout)
    assert "hex" in json.dumps(shown["packets"][1]["fields"]["auth_response"]) or isinstance(
        shown["packets"][1]["fields"]["auth_response"], str
    )


def test_filters(tmp_path):
    both = [OK, WRONG]
    assert len(run(*both, "--format", "jsonl").stdout.splitlines()) == 2
    failed = run(*both, "--format", "jsonl", "--failed").stdout.splitlines()
    assert [json.loads(x)["outcome"] for x in failed] == ["error"]
    users = {
        json.loads(x)["user"]
        for x in run(*both, "--format", "jsonl", "--user", "app").stdout.splitlines()
    }
    assert users == {"app"}


def test_ports_and_detect():
    p3407 = SAMPLES / "mariadb_connector_port3407_ok.pcap"
    # found on any port with no flag; --port restricts; --detect is a no-op
    default = run(p3407, "--format", "jsonl")
    assert default.exit_code == 0
    assert json.loads(default.stdout)["server"].endswith(":3407")
    assert run(p3407, "--format", "jsonl", "--port", "3407").stdout == default.stdout
    assert run(p3407, "--format", "jsonl", "--detect").stdout == default.stdout
    other = run(p3407, "--format", "jsonl", "--port", "3306")
    assert other.stdout == "" and other.exit_code == 3


def test_stdin():
    res = run("-", "--format", "jsonl", input=OK.read_bytes())
    assert res.exit_code == 0 and json.loads(res.stdout)["user"] == "app"


def test_bad_input(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pcap"
    text.write_text("hello, this is not a capture\n")
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(os.urandom(4096))
    for path in (empty, text, garbage, tmp_path / "missing.pcap"):
        res = run(path)
        assert res.exit_code == 2, (path, res.output)
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("mysqlwire: error:")
        assert "Traceback" not in res.output


def test_truncated_capture_keeps_what_was_parsed(tmp_path):
    data = (SAMPLES / "lab_cli_dual_native_ok.pcap").read_bytes()
    whole = json.loads(
        run(SAMPLES / "lab_cli_dual_native_ok.pcap", "--format", "jsonl").stdout.splitlines()[0]
    )
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    res = run(cut, "--format", "jsonl")
    assert res.exit_code in (0, 1)
    assert "truncated" in res.stderr and "Traceback" not in res.output
    rec = json.loads(res.stdout.splitlines()[0])
    assert rec["user"] == whole["user"] and rec["switches"] == whole["switches"]


def test_garbage_payload_on_3306_is_an_anomaly(tmp_path):
    from tests.pcapgen import pcap_with_streams

    path = tmp_path / "junk.pcap"
    # a "server" on 3306 that speaks garbage after a SYN handshake
    pcap_with_streams(path, [(b"\x05\x00\x00\x00garbage-bytes" * 3, b"")])
    res = run(path, "--format", "jsonl")
    rec = json.loads(res.stdout)
    assert res.exit_code == 0
    assert rec["outcome"] == "incomplete" and rec["anomalies"]


def test_half_handshake(tmp_path):
    """Greeting and response, then the capture ends: incomplete, not failed."""
    from tests.pcapgen import pcap_with_streams

    greeting = SAMPLES / "mariadb_pymysql_native_ok.pcap"
    from mysqlwire.dissect import DissectOptions, iter_connections

    conn = next(iter_connections(greeting, DissectOptions(with_packets=True)))
    assert conn.packets[0]["kind"] == "greeting"
    path = tmp_path / "half.pcap"
    srv, cli_bytes = _first_bytes(greeting)
    pcap_with_streams(path, [(srv, cli_bytes)], close=False)
    res = run(path, "--format", "jsonl")
    rec = json.loads(res.stdout)
    assert res.exit_code == 0
    assert rec["outcome"] == "incomplete" and rec["user"] == "app" and rec["server_version"]


def _first_bytes(pcap: Path) -> tuple[bytes, bytes]:
    """Server greeting bytes and the client's first packet bytes of a capture."""
    from mysqlwire.capture import Reassembler, decode_tcp, open_capture

    got = {True: b"", False: b""}

    class Sink:
        def data(self, from_initiator, data, ts):
            got[from_initiator] += bytes(data)

        def gap(self, *a):
            pass

        def closed(self, *a):
            pass

    r = Reassembler(lambda flow: Sink())
    for f in open_capture(pcap):
        seg = decode_tcp(f.linktype, f.data)
        if seg:
            r.add(f.ts, seg)
    r.finish()
    srv = got[False]
    glen = int.from_bytes(srv[:3], "little") + 4
    cli = got[True]
    clen = int.from_bytes(cli[:3], "little") + 4
    return srv[:glen], cli[:clen]


def test_help_is_fast_and_does_not_import_scapy():
    code = "import sys; from mysqlwire.cli import main; sys.argv=['mysqlwire','--help'];\n" \
           "try:\n    main()\nexcept SystemExit:\n    pass\n" \
           "assert 'scapy' not in sys.modules and 'construct' not in sys.modules, sorted(m for m in sys.modules if m.startswith(('scapy','construct')))"  # fmt: skip
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "dissect" in res.stdout and "replay" in res.stdout


def test_subprocess_entry_point():
    res = subprocess.run(
        ["mysqlwire", "dissect", "--format", "jsonl", str(OK)], capture_output=True, text=True
    )
    assert res.returncode == 0 and json.loads(res.stdout)["user"] == "app"


def test_idle_timeout_closes_silent_connections(tmp_path):
    from mysqlwire.dissect import DissectOptions, iter_connections
    from tests.pcapgen import pcap_with_streams

    srv, cli_bytes = _first_bytes(OK)
    path = tmp_path / "idle.pcap"
    # three half-finished logins 100 s apart, none closed
    frames_path = []
    for i in range(3):
        part = tmp_path / f"p{i}.pcap"
        pcap_with_streams(part, [(srv, cli_bytes)], close=False, t0=1_700_000_000.0 + 100 * i)
        frames_path.append(part.read_bytes())
    path.write_bytes(frames_path[0] + b"".join(p[24:] for p in frames_path[1:]))
    never = list(iter_connections(path, DissectOptions()))
    idle = list(iter_connections(path, DissectOptions(idle_timeout=10)))
    assert [c.closed_by for c in never] == ["end-of-capture"]  # same 4-tuple: one flow
    # with the timeout each silent login is closed after 10 s of capture time,
    # and the next SYN on the 4-tuple starts a new connection
    assert [c.closed_by for c in idle] == ["idle", "idle", "end-of-capture"]
    assert all(c.user == "app" for c in idle)
    res = run(path, "--idle-timeout", "10", "--format", "jsonl")
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[0])["user"] == "app"
