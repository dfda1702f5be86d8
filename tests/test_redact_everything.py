"""#15.4: `redact` over every capture in captures/ and ../shared/captures.

For each capture: either the copy is written and holds none of the known
secrets (passwords of sidecars, truth.jsonl, CATALOG.tsv -- raw bytes), no
mapped user or address in what dissect reports, no original address in the
IP headers, and replay with the right password proves nothing; or nothing is
written and redact says why in one line (exit 3: no MySQL; exit 2: a
connection it cannot be sure about).  ``--keep-proofs`` keeps replay working.
"""

from __future__ import annotations

import csv
import ipaddress
import json
from pathlib import Path

import pytest

from tests.conftest import PUBLIC, REPO, SHARED
from tests.test_robust_support import run_cli


def _known() -> dict[Path, dict]:
    """capture -> {"passwords": set, "ports": set} from every source of truth."""
    out: dict[Path, dict] = {}

    def entry(p: Path) -> dict:
        return out.setdefault(p.resolve(), {"passwords": set(), "ports": set()})

    roots = [REPO / "captures", SHARED / "captures"]
    for root in roots:
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if p.suffix in (".pcap", ".pcapng"):
                entry(p)
        for truth in root.rglob("truth.jsonl"):
            for line in truth.read_text().splitlines():
                if not line.strip():
                    continue
                t = json.loads(line)
                e = entry(truth.parent / t["pcap"])
                for k in ("password", "account_password"):
                    if t.get(k):
                        e["passwords"].add(t[k])
                if t.get("port"):
                    e["ports"].add(int(t["port"]))
        for side in root.rglob("*.toml"):
            try:
                import tomllib

                doc = tomllib.loads(side.read_text())
            except Exception:  # noqa: BLE001 - not a sidecar
                continue
            if "capture" not in doc:
                continue
            e = entry(side.with_name(doc["capture"]))
            read = doc.get("read", {})
            if read.get("password"):
                e["passwords"].add(read["password"])
            e["ports"].update(int(x) for x in read.get("ports", []))
    catalog = PUBLIC / "CATALOG.tsv"
    if catalog.is_file():
        with open(catalog, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                e = entry(PUBLIC / row["path"])
                if row.get("known_password"):
                    e["passwords"].add(row["known_password"])
                for port in (row.get("mysql_ports") or "").replace(";", ",").split(","):
                    if port.strip().isdigit():
                        e["ports"].add(int(port))
    return {p: e for p, e in out.items() if p.is_file()}


KNOWN = _known()
CAPS = sorted(KNOWN)
IDS = [str(p.relative_to(p.parents[1])) for p in CAPS]


_PLUGIN_NAMES = (
    b"mysql_native_password",
    b"caching_sha2_password",
    b"sha256_password",
    b"mysql_clear_password",
    b"mysql_old_password",
)


def _mysql_payload(path: Path, server_ports: set[int]) -> bytes:
    """Every TCP payload to or from a MySQL server port of the capture (the
    secrets redact answers for; other protocols -- telnet, HTTP -- are not
    its business), with plugin names blanked (a password may be a substring
    of 'mysql_native_password')."""
    from mysqlwire.capture import TcpSegment, decode_tcp, open_capture

    out = []
    for _ts, linktype, data, _iface in open_capture(path).records():
        seg = decode_tcp(linktype, data)
        if seg.__class__ is TcpSegment and seg.payload:
            if seg.sport in server_ports or seg.dport in server_ports:
                out.append(seg.payload)
    blob = b"\x00".join(out)
    for name in _PLUGIN_NAMES:
        blob = blob.replace(name, b"_")
    return blob


def _records(path: Path, ports) -> list[dict]:
    run = run_cli(["dissect", "--format", "jsonl", *ports, path])
    return [json.loads(x) for x in run.stdout.splitlines()]


@pytest.mark.parametrize("cap", CAPS, ids=IDS)
def test_redacted_copy_holds_no_secret(cap, tmp_path):
    info = KNOWN[cap]
    ports = [a for p in sorted(info["ports"]) for a in ("--port", str(p))]
    out = tmp_path / ("red" + cap.suffix)
    mapf = tmp_path / "map.json"
    run = run_cli(["redact", cap, "-o", out, "--map", mapf, *ports])
    assert run.exception is None, repr(run.exception)
    assert "Traceback" not in run.stderr
    if run.code != 0:
        # refused: one line saying why, nothing written
        assert run.code in (2, 3), run.stderr
        assert not out.exists() and not mapf.exists()
        lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, run.stderr
        if run.code == 3:
            assert _records(cap, ports) == []
        else:
            assert "cannot guarantee" in lines[0] or "could not be written" in lines[0]
        print(f"\n{cap.name}: refused: {lines[0]}")
        return
    assert out.stat().st_size <= cap.stat().st_size
    mapping = json.loads(mapf.read_text())
    recs = _records(out, ports)
    servers = {int(r["server"].rsplit(":", 1)[1]) for r in recs}
    payload = _mysql_payload(out, servers)
    for pw in info["passwords"]:
        if len(pw) >= 3:
            assert pw.encode() not in payload, (
                f"a known password is still in the copy of {cap.name}"
            )
    originals_ip = set(mapping["addresses"]) - set(mapping["addresses"].values())
    originals_user = {u for u in mapping["users"] if len(u) >= 3} - set(mapping["users"].values())
    text = json.dumps(recs)
    for ip in originals_ip:
        assert f'"{ip}:' not in text and f"[{ip}]" not in text
    for r in recs:
        if r["tls"]:
            continue
        assert r["user"] not in originals_user
        for cu in r["change_user"]:
            assert cu["user"] not in originals_user
        for v in (r.get("connect_attrs") or {}).values():
            assert v not in originals_user and v not in originals_ip
        msg = (r["error"] or {}).get("message") or ""
        for u in originals_user:
            assert f"'{u}'" not in msg
    # replay with the right password proves nothing on the copy
    for pw in sorted(info["passwords"]):
        f = tmp_path / "pw"
        f.write_text(pw)
        run = run_cli(["replay", "--format", "jsonl", "--password-file", f, *ports, out])
        verdicts = [json.loads(x).get("verdict") for x in run.stdout.splitlines()]
        assert "PROOF_MATCHES" not in verdicts, (cap.name, verdicts)


KEEP = [c for c in CAPS if "lab-samples" in str(c) and KNOWN[c]["passwords"]][:12]


@pytest.mark.parametrize("cap", KEEP, ids=[c.name for c in KEEP])
def test_keep_proofs_keeps_replay(cap, tmp_path):
    info = KNOWN[cap]
    ports = [a for p in sorted(info["ports"]) for a in ("--port", str(p))]
    out = tmp_path / ("red" + cap.suffix)
    run = run_cli(["redact", cap, "-o", out, "--keep-proofs", *ports])
    if run.code != 0:
        pytest.skip(f"refused: {run.stderr.strip()}")
    for pw in sorted(info["passwords"]):
        f = tmp_path / "pw"
        f.write_text(pw)
        got = []
        for path in (cap, out):
            r = run_cli(["replay", "--format", "jsonl", "--password-file", f, *ports, path])
            got.append([json.loads(x).get("verdict") for x in r.stdout.splitlines()])
        assert got[0] == got[1]


def test_no_mysql_in_a_tcp_capture_is_refused(tmp_path):
    """A capture with TCP payload but no MySQL: exit 3, one line, nothing written."""
    from tests.test_robust_support import PcapWriter, TcpConn

    pcap = tmp_path / "http.pcap"
    with PcapWriter(pcap) as w:
        c = TcpConn(w, client="10.1.1.1", server="10.1.1.2", sport=3306).open()
        c.send("client", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.send("server", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        c.close()
    out = tmp_path / "out.pcap"
    run = run_cli(["redact", pcap, "-o", out])
    assert run.code == 3 and not out.exists()
    (line,) = run.stderr.strip().splitlines()
    assert "no MySQL connection" in line


def test_unfollowable_login_is_refused(tmp_path):
    """A login whose client response is cut by the end of the capture: refused,
    nothing written; --partial writes it with a warning."""
    from tests.test_robust_support import PcapWriter, TcpConn, lab_corpus, tcp_streams

    cap = next(
        c
        for c in lab_corpus()
        if c.truth.get("plugin_final") == "mysql_clear_password" and not c.truth.get("tls")
    )
    (s,) = tcp_streams(cap.path, cap.truth["port"])
    from mysqlwire.protocol.framing import PacketReader, frame

    srv = [frame(p.payload, p.seq) for p in PacketReader().feed(s.server_bytes)]
    cli = [frame(p.payload, p.seq) for p in PacketReader().feed(s.client_bytes)]
    pcap = tmp_path / "cut.pcap"
    with PcapWriter(pcap) as w:
        c = TcpConn(w, client="10.2.2.2", server="10.2.2.3", sport=3306).open()
        c.send("server", srv[0])
        c.send("client", cli[0][: len(cli[0]) // 2])  # the response, cut
    out = tmp_path / "out.pcap"
    run = run_cli(["redact", pcap, "-o", out])
    assert run.code == 2 and not out.exists(), run.stderr
    assert "cannot guarantee" in run.stderr
    run = run_cli(["redact", pcap, "-o", out, "--partial"])
    assert run.code == 0 and out.exists()
    assert "not fully redacted" in run.stderr


def test_ipv6_attrs_and_change_user_mapped(tmp_path):
    """Connection attributes naming the server host and a COM_CHANGE_USER's
    user are mapped wherever they appear in the connection phase."""
    from tests.test_robust_support import lab_corpus

    caps = [c for c in lab_corpus() if "change_user" in c.path.name and not c.truth.get("tls")]
    if not caps:
        pytest.skip("no change-user capture in the corpus")
    cap = caps[0]
    ports = ["--port", str(cap.truth.get("port") or 3306)]
    before = _records(cap.path, ports)
    out = tmp_path / "red.pcap"
    mapf = tmp_path / "m.json"
    run = run_cli(["redact", cap.path, "-o", out, "--map", mapf, *ports])
    assert run.code == 0, run.stderr
    mapping = json.loads(mapf.read_text())
    after = _records(out, ports)
    cu_before = [cu["user"] for r in before for cu in r["change_user"]]
    cu_after = [cu["user"] for r in after for cu in r["change_user"]]
    assert cu_before and cu_after == [mapping["users"].get(u, u) for u in cu_before]
    assert all(u not in cu_after for u in cu_before if u in mapping["users"])
    for r in after:
        for k, v in (r.get("connect_attrs") or {}).items():
            if "host" in k.lower():
                assert v not in {str(ipaddress.ip_address(a)) for a in mapping["addresses"]}


def test_conflicting_retransmission_fails_closed(tmp_path):
    """A retransmission of the clear password's segment with other bytes in
    it: the edit cannot be checked there, so nothing is written."""
    from tests.test_robust_support import lab_corpus, pcap_records

    cap = next(
        c
        for c in lab_corpus()
        if c.truth.get("plugin_final") == "mysql_clear_password"
        and not c.truth.get("tls")
        and c.truth["password"].encode() in c.path.read_bytes()
        and c.path.suffix == ".pcap"
    )
    pw = cap.truth["password"].encode()
    raw = cap.path.read_bytes()
    dup = tmp_path / "dup.pcap"
    with open(dup, "wb") as fh:
        fh.write(raw[:24])
        for r in pcap_records(raw):
            frame = raw[r.offset : r.end]
            fh.write(frame)
            if r.payload and pw in raw[r.payload[0] : r.payload[1]]:
                fh.write(frame.replace(pw, bytes(b ^ 0x20 for b in pw)))  # same seq, other bytes
    ports = ["--port", str(cap.truth.get("port") or 3306)]
    out = tmp_path / "out.pcap"
    run = run_cli(["redact", dup, "-o", out, *ports])
    assert run.code == 2 and not out.exists(), run.stderr
    assert "could not be written" in run.stderr
    # the plain capture is fine
    run = run_cli(["redact", cap.path, "-o", out, *ports])
    assert run.code == 0 and pw not in out.read_bytes()
