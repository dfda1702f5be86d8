"""What `mysqlwire dissect` imports: start-up is a large part of a small capture's cost
(issue 19), so the libraries a run does not need stay unimported.  Each check runs
the real console entry point in a fresh interpreter and reads its ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CAPTURES = REPO / "captures"

# runs mysqlwire's main() on argv, then prints which of the watched modules were imported
_PROBE = """
import contextlib, io, json, sys
from mysqlwire.cli import main
sys.argv = ["mysqlwire", *sys.argv[1:]]
out = io.StringIO()
code = None
with contextlib.redirect_stdout(out):
    try:
        main()
    except SystemExit as exc:
        code = exc.code
watched = ("construct", "scapy", "cryptography", "hashlib")
print(json.dumps({
    "code": code,
    "out": out.getvalue(),
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in watched),
}))
"""


def python_output(code: str, *args) -> str:
    """What ``python -c code args...`` prints, in a fresh interpreter (it must exit 0)."""
    res = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def _probe(*args) -> dict:
    return json.loads(python_output(_PROBE, *args))


def _plain_captures() -> list[Path]:
    """Real clients' captures without TLS (their sidecars say so for every connection)."""
    found = []
    for pcap in sorted((CAPTURES / "lab-samples").glob("*.pcap")) + sorted(
        (CAPTURES / "clients").glob("*.pcap")
    ):
        side = pcap.with_suffix(".toml")
        if side.exists() and "tls = true" not in side.read_text():
            found.append(pcap)
    return found


def test_dissecting_real_logins_does_not_import_construct():
    """Every real client's login takes the Construct-free parsers (fastparse): the
    grammars, Scapy, cryptography and hashlib (the plugins hash only to check a proof)
    are not imported, in any output format."""
    pcaps = _plain_captures()
    assert len(pcaps) > 60
    for fmt in ("jsonl", "text"):
        got = _probe("dissect", "--format", fmt, *pcaps)
        assert got["code"] in (0, 1, None), got["code"]
        assert got["modules"] == [], (fmt, got["modules"])
    lines = _probe("dissect", "--format", "jsonl", *pcaps)["out"].splitlines()
    assert len(lines) >= len(pcaps)
    assert sum(1 for line in lines if json.loads(line)["user"]) >= len(pcaps) - 5


def test_packets_view_does_not_import_construct():
    got = _probe("dissect", "--packets", "--format", "json", *_plain_captures()[:10])
    assert got["modules"] == []
    assert '"kind": "handshake_response"' in got["out"]


def test_a_packet_the_fast_path_declines_is_parsed_by_the_grammar():
    """The grammar is still there, imported when a packet needs it: a protocol-9
    greeting (no fast parser) gives its server version, and Construct is imported."""
    code = (
        "import sys\n"
        "from mysqlwire.handshake import NEED_DATA, Handshake\n"
        "hs = Handshake()\n"
        "payload = b'\\x09' + b'3.23.58\\x00' + (7).to_bytes(4, 'little') + b'abcdefgh\\x00'\n"
        "hs.receive_data('server', len(payload).to_bytes(3, 'little') + b'\\x00' + payload)\n"
        "ev = hs.next_event()\n"
        "print(ev.kind, ev.fields['server_version'], type(ev.fields).__name__,"
        " 'construct' in sys.modules)\n"
    )
    assert python_output(code).split() == ["greeting", "b'3.23.58'", "Container", "True"]


def test_protocol_package_names_resolve_on_first_use():
    """``mysqlwire.protocol`` gives its Construct-backed names on first use: every name of
    its ``__all__`` resolves (a star import too), and importing the package alone does not
    import Construct."""
    code = (
        "import sys\n"
        "import mysqlwire.protocol as P\n"
        "before = 'construct' in sys.modules\n"
        "missing = [n for n in P.__all__ if not hasattr(P, n)]\n"
        "ns = {}\n"
        "exec('from mysqlwire.protocol import *', ns)\n"
        "print(before, missing, sorted(set(P.__all__) - set(ns)),"
        " P.encode_lenenc(300).hex(), P.StatusFlags.__class__.__name__)\n"
    )
    assert python_output(code).split() == ["False", "[]", "[]", "fc2c01", "FlagsEnum"]


def test_tls_without_keys_does_not_import_cryptography():
    """A TLS login without a key log is reported "encrypted" without cryptography's
    primitives (they are for decryption); with its key log the same capture imports
    them and the login is read."""
    tls = [
        p
        for p in sorted((CAPTURES / "lab-samples").glob("*.pcap"))
        if "tls = true" in p.with_suffix(".toml").read_text()
    ]
    assert len(tls) >= 4
    got = _probe("dissect", "--format", "jsonl", *tls)
    assert got["modules"] == []
    assert {json.loads(line)["outcome"] for line in got["out"].splitlines()} == {"encrypted"}
    pcap = CAPTURES / "lab-samples" / "lab_cli_tls_keylog_ok.pcap"
    got = _probe("dissect", "--format", "jsonl", "-k", pcap.with_suffix(".keys"), pcap)
    assert "cryptography" in got["modules"] and "construct" not in got["modules"]
    assert "hashlib" in got["modules"]  # (hmac: the TLS PRF)
    assert json.loads(got["out"])["outcome"] == "ok"


def test_a_midstream_error_imports_no_construct(tmp_path):
    """A connection joined mid-stream whose server sends a lone ERR (decided by
    discovery, read by discover.err_record): no Construct either."""
    from tests.test_discovery import _midstream

    pcap = _midstream(tmp_path)
    got = _probe("dissect", "--format", "jsonl", pcap)
    assert '"code": 1158' in got["out"]  # (the ERR was read)
    assert not [m for m in got["modules"] if m.startswith("construct")], got["modules"]
