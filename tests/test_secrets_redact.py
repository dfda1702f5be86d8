"""``mysqlwire redact``: the copy holds no secret, stays valid, and dissects
like the original apart from the redacted / mapped fields.

Checked on every capture of the lab corpus (secrets by grep of the output
file, records field by field, replay verdicts), with tshark on checksums,
and on synthetic captures for what the corpus lacks: IPv6, retransmitted
secrets, pcapng with an embedded TLS key log, bad input.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from mysqlwire.protocol.framing import PacketReader
from mysqlwire.redact import Placeholders
from tests.test_robust_support import (
    LabCapture,
    PcapWriter,
    TcpConn,
    lab_corpus,
    merge_pcaps,
    pcap_records,
    run_cli,
    tcp_streams,
)

CORPUS = lab_corpus()
IDS = [f"{c.path.parent.name}-{c.path.stem}" for c in CORPUS]
CLEAR_PLUGINS = {"mysql_clear_password", "dialog"}
TSHARK = shutil.which("tshark")


def _redact(src: Path, dst: Path, *opts) -> tuple[dict, str]:
    mapping = dst.with_suffix(".map.json")
    run = run_cli(["redact", src, "-o", dst, "--map", mapping, *opts])
    assert run.exception is None, repr(run.exception)
    assert run.code == 0, run.stderr
    return json.loads(mapping.read_text()), run.stderr


def _dissect(path: Path, cap: LabCapture, *extra) -> list[dict]:
    run = run_cli(["dissect", "--format", "jsonl", *cap.options(), *extra, path])
    assert run.code in (0, 1), run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def _endpoint(ep: str, addresses: dict) -> str:
    host, port = ep.rsplit(":", 1)
    host = host.strip("[]")
    new = addresses.get(str(ipaddress.ip_address(host)), host)
    return f"[{new}]:{port}" if ":" in new else f"{new}:{port}"


def _map_text(text: str | None, mapping: dict) -> str | None:
    """What the server's message must read after mapping."""
    if text is None:
        return None

    def user_host(m):
        user = mapping["users"].get(m.group(1), m.group(1))
        return f"'{user}'@'{_host(m.group(2), mapping)}'"

    text = re.sub(r"'([^'@]*)'@'([^']*)'", user_host, text)
    return re.sub(r"Host '([^']+)'", lambda m: f"Host '{_host(m.group(1), mapping)}'", text)


def _host(host: str, mapping: dict) -> str:
    if host in mapping["hosts"]:
        return mapping["hosts"][host]
    if host in ("%", "localhost") or not host:
        return host
    try:
        new = mapping["addresses"][str(ipaddress.ip_address(host))]
    except (ValueError, KeyError):
        return host
    return new if len(new) == len(host) else "x" * len(host)


def expected_record(orig: dict, mapping: dict) -> dict:
    rec = dict(orig)
    rec["client"] = _endpoint(orig["client"], mapping["addresses"])
    rec["server"] = _endpoint(orig["server"], mapping["addresses"])
    rec.pop("capture")
    if orig["tls"]:
        return rec  # the login is inside TLS: encrypted, left as is
    if orig["user"] is not None:
        rec["user"] = mapping["users"].get(orig["user"], orig["user"])
    if orig["error"]:
        rec["error"] = dict(orig["error"], message=_map_text(orig["error"]["message"], mapping))
    rec["change_user"] = [
        dict(
            cu,
            user=mapping["users"].get(cu["user"], cu["user"]),
            error=cu["error"]
            and dict(cu["error"], message=_map_text(cu["error"]["message"], mapping)),
        )
        for cu in orig["change_user"]
    ]
    attrs = orig.get("connect_attrs")
    if attrs:
        # every attribute naming a host (_server_host, _source_host...) is mapped
        rec["connect_attrs"] = {
            k: _host(v, mapping) if "host" in k.lower() else mapping["users"].get(v, v)
            for k, v in attrs.items()
        }
    return rec


@pytest.mark.parametrize("cap", CORPUS, ids=IDS)
def test_redacted_copy_of_every_lab_capture(cap, tmp_path):
    out = tmp_path / "red.pcap"
    mapping, stderr = _redact(cap.path, out, *cap.options()[:2])
    raw_in, raw_out = cap.path.read_bytes(), out.read_bytes()
    assert len(raw_out) == len(raw_in)  # nothing changes length
    # 1. no secret bytes left
    for pw in cap.passwords():
        assert pw.encode() not in raw_out, f"password {pw!r} still in the file"
    # 2. no original address in any IP header, no original user in a record
    originals = {str(ipaddress.ip_address(a)) for a in mapping["addresses"]}
    for r in pcap_records(raw_out):
        src, dst = raw_out[r.data + 26 : r.data + 30], raw_out[r.data + 30 : r.data + 34]
        assert str(ipaddress.ip_address(src)) not in originals - set(mapping["addresses"].values())
        assert str(ipaddress.ip_address(dst)) not in originals - set(mapping["addresses"].values())
    # 3. field by field: the same record apart from the mapped fields
    before = _dissect(cap.path, cap)
    after = _dissect(out, cap)
    assert [r.pop("capture") and r for r in after] == [expected_record(r, mapping) for r in before]
    assert all(r["user"] not in mapping["users"] for r in after)
    # 4. proofs are removed by default: replay proves nothing on the copy; with
    # --keep-proofs they are untouched and replay still verifies them
    if cap.truth.get("plugin_final") not in CLEAR_PLUGINS and cap.truth.get("account_password"):
        pw = tmp_path / "pw"
        pw.write_text(cap.truth["account_password"])
        run = run_cli(["replay", "--format", "jsonl", "--password-file", pw, *cap.options(), out])
        assert "PROOF_MATCHES" not in run.stdout
        kept = tmp_path / "kept.pcap"
        _redact(cap.path, kept, *cap.options()[:2], "--keep-proofs")
        verdicts = []
        for path in (cap.path, kept):
            run = run_cli(
                ["replay", "--format", "jsonl", "--password-file", pw, *cap.options(), path]
            )
            verdicts.append([json.loads(x)["verdict"] for x in run.stdout.splitlines()])
        assert verdicts[0] == verdicts[1]


CLEARTEXT = [
    c
    for c in CORPUS
    if c.truth.get("plugin_final") in CLEAR_PLUGINS
    and not c.truth.get("tls")
    and c.truth["password"].encode() in c.path.read_bytes()
]


def test_corpus_has_cleartext_on_the_wire():
    assert len(CLEARTEXT) >= 6
    assert {c.truth["plugin_final"] for c in CLEARTEXT} == CLEAR_PLUGINS


@pytest.mark.parametrize("cap", CLEARTEXT, ids=[c.path.stem for c in CLEARTEXT])
def test_cleartext_is_replaced_and_replay_cannot_match(cap, tmp_path):
    out = tmp_path / "red.pcap"
    _, stderr = _redact(
        cap.path, out, *cap.options()[:2], "--keep-ips", "--keep-users", "--keep-proofs"
    )
    assert "replaced 0 clear-text" not in stderr
    raw_in, raw_out = cap.path.read_bytes(), out.read_bytes()
    pw = cap.truth["password"].encode()
    at = raw_in.index(pw)
    assert raw_out[at : at + len(pw)] == b"*" * len(pw)
    # with --keep-ips --keep-users only the secret (and TCP checksums) changed
    diff = [i for i in range(len(raw_in)) if raw_in[i] != raw_out[i]]
    recs = pcap_records(raw_in)
    for i in diff:
        r = next(r for r in recs if r.data <= i < r.end)
        in_secret = at <= i < at + len(pw)
        in_tcp_checksum = r.data + 34 + 16 <= i < r.data + 34 + 18
        assert in_secret or in_tcp_checksum, i


@pytest.mark.parametrize(
    "name", ["mariadb_pymysql_native_ok.pcap", "m8emu_pymysql_sha2_fast_ok.pcap"]
)
def test_proofs_and_nonces_removed_by_default(name, tmp_path):
    cap = next(c for c in CORPUS if c.path.name == name)
    show = ["dissect", "--format", "jsonl", "--packets", "--show-secrets", *cap.options()]
    (orig,) = [json.loads(x) for x in run_cli([*show, cap.path]).stdout.splitlines()]
    proof = bytes.fromhex(orig["packets"][1]["fields"]["auth_response"]["hex"])
    nonce = orig["packets"][0]["fields"]["auth_plugin_data_part_1"]
    assert len(proof) in (20, 32)
    out = tmp_path / "red.pcap"
    _redact(cap.path, out, *cap.options()[:2])
    raw = out.read_bytes()
    assert proof not in raw and proof in cap.path.read_bytes()
    (red,) = [json.loads(x) for x in run_cli([*show, out]).stdout.splitlines()]
    assert red["packets"][0]["fields"]["auth_plugin_data_part_1"] != nonce
    pw = tmp_path / "pw"
    pw.write_text(cap.truth["account_password"])
    run = run_cli(["replay", "--format", "jsonl", "--password-file", pw, out])
    assert json.loads(run.stdout)["verdict"] != "PROOF_MATCHES"
    assert red["outcome"] == orig["outcome"] and red["anomalies"] == orig["anomalies"]


def test_map_file_is_private_and_consistent(tmp_path):
    paths = [c.path for c in CORPUS if c.path.parent.name == "lab-samples"][:6]
    merged = tmp_path / "merged.pcap"
    merge_pcaps(paths, merged)
    out = tmp_path / "red.pcap"
    mapping, _ = _redact(merged, out)
    mode = stat.S_IMODE(out.with_suffix(".map.json").stat().st_mode)
    assert mode == 0o600
    users = mapping["users"]
    assert users and len(set(users.values())) == len(users)  # one placeholder per user
    assert all(len(k) == len(v) for k, v in users.items())
    recs = [
        json.loads(x) for x in run_cli(["dissect", "--format", "jsonl", out]).stdout.splitlines()
    ]
    assert {r["user"] for r in recs if r["user"]} <= set(users.values())


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_reads_the_copy_without_checksum_errors(tmp_path):
    """The originals (loopback, checksum offload) have wrong TCP checksums;
    the copy's are recomputed wherever a frame changed -- with mapped
    addresses, every frame."""
    paths = [c.path for c in CORPUS if c.path.parent.name == "lab-samples"]
    merged = tmp_path / "merged.pcap"
    merge_pcaps(paths, merged)
    out = tmp_path / "red.pcap"
    _redact(merged, out)

    def bad(path):
        proc = subprocess.run(
            [
                TSHARK,
                "-r",
                path,
                "-o",
                "tcp.check_checksum:TRUE",
                "-o",
                "ip.check_checksum:TRUE",
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-Y",
                "tcp.checksum.status != 1 || ip.checksum.status != 1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert bad(merged)  # the check can fail: the originals' checksums are off
    assert bad(out) == []


# --- synthetic cases -------------------------------------------------------------------


def _clear_login() -> tuple[list[tuple[str, bytes]], bytes]:
    cap = next(c for c in CORPUS if c.path.name == "cli_pam_clear_ok.pcap")
    (s,) = tcp_streams(cap.path, cap.truth["port"])
    return [("server", s.server_bytes), ("client", s.client_bytes)], cap.truth["password"].encode()


def _login_in_order(conn: TcpConn, cap_name: str = "cli_pam_clear_ok.pcap") -> None:
    """Replay a lab login packet by packet, each direction in turn."""
    cap = next(c for c in CORPUS if c.path.name == cap_name)
    (s,) = tcp_streams(cap.path, cap.truth["port"])
    from mysqlwire.protocol.framing import frame

    srv = [frame(p.payload, p.seq) for p in PacketReader().feed(s.server_bytes)]
    cli = [frame(p.payload, p.seq) for p in PacketReader().feed(s.client_bytes)]
    # greeting, response, switch, clear password, OK, then the rest
    order = [("server", 0), ("client", 0), ("server", 1), ("client", 1), ("server", 2)]
    for side, i in order:
        conn.send(side, (srv if side == "server" else cli)[i])
    for p in cli[2:]:
        conn.send("client", p)


def test_ipv6_and_retransmitted_secret(tmp_path):
    pcap = tmp_path / "v6.pcap"
    pw = b"pam-clear-1"
    with PcapWriter(pcap, checksums=True) as w:
        c = TcpConn(w, client="2001:db8::17", server="2001:db8::3306", sport=56413).open()
        _login_in_order(c)
        # the client's clear password again, as a retransmission of the same bytes
        c2 = TcpConn(w, client="2001:db8::18", server="2001:db8::3306", sport=56413, cport=40001)
        c2.open()
        _login_in_order(c2)
        c.close()
        c2.close()
    raw = pcap.read_bytes()
    assert raw.count(pw) == 2
    # duplicate every frame carrying the password (a retransmission)
    recs = pcap_records(raw)
    dup = tmp_path / "dup.pcap"
    with open(dup, "wb") as fh:
        fh.write(raw[:24])
        for r in recs:
            fh.write(raw[r.offset : r.end])
            if r.payload and pw in raw[r.payload[0] : r.payload[1]]:
                fh.write(raw[r.offset : r.end])
    assert dup.read_bytes().count(pw) == 4
    out = tmp_path / "red.pcap"
    mapping, _ = _redact(dup, out, "--port", "56413")
    assert pw not in out.read_bytes()
    v6 = {a: b for a, b in mapping["addresses"].items() if ":" in a}
    assert set(v6) == {"2001:db8::17", "2001:db8::18", "2001:db8::3306"}
    assert all(v.startswith("fd00::") for v in v6.values())
    recs = [
        json.loads(x)
        for x in run_cli(
            ["dissect", "--format", "jsonl", "--port", "56413", out]
        ).stdout.splitlines()
    ]
    assert [r["outcome"] for r in recs] == ["ok", "ok"]
    assert recs[0]["server"].startswith("[fd00::")
    if TSHARK:
        proc = subprocess.run(
            [
                TSHARK,
                "-r",
                out,
                "-o",
                "tcp.check_checksum:TRUE",
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-Y",
                "tcp.checksum.status != 1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.stdout.split() == []


@pytest.mark.skipif(TSHARK is None, reason="tshark (editcap) not installed")
def test_pcapng_with_embedded_key_log(tmp_path):
    """A self-decrypting pcapng (keylog-inject): the copy drops the key log, so
    the clear text inside TLS stays encrypted; the rest is redacted as usual."""
    cap = next(c for c in CORPUS if c.path.name == "pymysql_pam_clear_tls_keylog_ok.pcap")
    ng = tmp_path / "tls.pcapng"
    run = run_cli(["keylog-inject", cap.path, cap.keylog, "-o", ng])
    assert run.code == 0, run.stderr
    show = ["dissect", "--format", "jsonl", "--packets", "--show-secrets", *cap.options()[:2]]
    shown = run_cli([*show, ng]).stdout
    pw_hex = cap.truth["password"].encode().hex()
    assert pw_hex in shown  # decrypted with the embedded keys
    out = tmp_path / "red.pcapng"
    _, stderr = _redact(ng, out, *cap.options()[:2])
    assert "decryption secrets" in stderr
    after = run_cli([*show, out]).stdout
    assert pw_hex not in after and cap.truth["password"] not in after
    (rec,) = [json.loads(x) for x in after.splitlines()]
    assert rec["tls"] is True and rec["tls_status"] in ("no-keys", "keys-missing")
    # a plain pcapng (editcap) is redacted like the pcap
    plain = next(c for c in CLEARTEXT)
    ng2 = tmp_path / "plain.pcapng"
    subprocess.run([shutil.which("editcap"), "-F", "pcapng", plain.path, ng2], check=True)
    out2 = tmp_path / "plain-red.pcapng"
    mapping, _ = _redact(ng2, out2, *plain.options()[:2])
    assert plain.truth["password"].encode() not in out2.read_bytes()
    before, after = _dissect(ng2, plain), _dissect(out2, plain)
    assert [r.pop("capture") and r for r in after] == [expected_record(r, mapping) for r in before]


def test_bad_input_and_usage(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    out = tmp_path / "out.pcap"
    for args in (
        [junk, "-o", out],
        [tmp_path / "missing.pcap", "-o", out],
        [CORPUS[0].path, "-o", CORPUS[0].path],
    ):
        run = run_cli(["redact", *args])
        assert run.code == 2 and run.exception is None, (args, run.stderr)
        (line,) = run.stderr.splitlines()
        assert line.startswith("mysqlwire: error: ")
    assert not out.exists()
    # a truncated capture: the copy ends at the last complete frame, with a warning
    cap = CLEARTEXT[0]
    cut = tmp_path / "cut.pcap"
    raw = cap.path.read_bytes()
    cut.write_bytes(raw[: len(raw) - 7])
    run = run_cli(["redact", cut, "-o", out, *cap.options()[:2]])
    assert run.code == 0 and "last complete frame" in run.stderr
    assert cap.truth["password"].encode() not in out.read_bytes()


def test_placeholders_keep_lengths():
    names = Placeholders()
    for n in range(300):
        for length in (1, 2, 3, 8, 30):
            u = ("x" * length + str(n))[-length:].encode()
            assert len(names.user(u)) == length
    for text in ("1.2.3.4", "127.0.0.1", "10.20.30.40", "192.168.100.200", "8.8.8.8"):
        raw = ipaddress.ip_address(text).packed
        new = ipaddress.ip_address(names.ip(raw))
        assert len(str(new)) == len(text) and new.packed != raw
    assert len(set(names.ips.values())) == len(names.ips)


def test_redact_capture_api_used_by_capture_add(tmp_path):
    cap = CLEARTEXT[0]
    from mysqlwire.redact import redact_capture

    out = tmp_path / "api.pcap"
    report = redact_capture(cap.path, out, ports=(cap.truth["port"],))
    assert report.secrets >= 1 and report.users >= 1
    assert cap.truth["password"].encode() not in out.read_bytes()
