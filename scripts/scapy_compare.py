#!/usr/bin/env python3
"""Which connection-phase packets do mysqlwire's Scapy layer and Scapy's contrib
``mysql`` layer classify right, on the public corpus?

Truth: mysqlwire's state machine through the capture pipeline (``iter_connections``
with packet records: its own TCP reassembly and framing, not the Scapy session),
cross-checked where tshark's oracle (captures/public/oracle) names the packet.
Ours: ``sniff(offline=..., session=MySQLSession)``.  Contrib: Scapy's
``load_contrib("mysql")`` on ``rdpcap()`` packets, bound to each capture's
MySQL port(s) as listed in CATALOG.tsv (as ``tshark -d`` is).

    python3 scripts/scapy_compare.py [--shared DIR] [--markdown docs/scapy.md]

With ``--markdown`` the tables between the ``<!-- scapy-compare -->`` markers
(public corpus) and the ``<!-- scapy-compare-lab -->`` markers (the repository's
lab samples) of that file are replaced.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mysqlwire.dissect import DissectOptions, iter_connections  # noqa: E402

#: truth record kinds that are not connection-phase packets
_COMMAND_KINDS = {"command", "command_error", "quit"}
#: contrib class name -> our kind name
CONTRIB_KINDS = {
    "MySQLHandshakeV10": "handshake_v10",
    "MySQLSSLRequest": "ssl_request",
    "MySQLHandshakeResponse41": "handshake_response41",
    "MySQLAuthSwitchRequest": "auth_switch_request",
    "MySQLOldAuthSwitchRequest": "old_auth_switch_request",
    "MySQLAuthSwitchResponse": "auth_switch_response",
    "MySQLAuthMoreData": "auth_more_data",
    "MySQLOKPacket": "ok",
    "MySQLErrPacket": "err",
    "MySQLEOFPacket": "eof",
    "MySQLComQuery": "command",
    "MySQLCommand": "command",
    "MySQLStmtPrepareOK": "stmt_prepare_ok",
}
MARK = "<!-- scapy-compare -->"
MARK_LAB = "<!-- scapy-compare-lab -->"
#: kinds that exist only in the connection phase (OK/ERR/EOF also answer commands)
AUTH_ONLY = {
    "handshake_v10",
    "handshake_v9",
    "handshake_response41",
    "handshake_response320",
    "ssl_request",
    "auth_switch_request",
    "old_auth_switch_request",
    "auth_switch_response",
    "auth_more_data",
    "auth_next_factor",
    "com_change_user",
}


def shared_dir(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get("MYSQLWIRE_SHARED") or ROOT.parent / "shared")


def catalog(shared: Path) -> list[tuple[str, tuple[int, ...]]]:
    path = shared / "captures" / "public" / "CATALOG.tsv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [(r["path"], tuple(int(p) for p in r["mysql_ports"].split(";") if p)) for r in rows]


def _key(client: str, server: str, sender: str, ts: float, seq: int, length: int) -> tuple:
    return (client, server, sender, round(float(ts), 6), seq, length)


def _drop_ts(key: tuple) -> tuple:
    client, server, sender, _ts, seq, length = key
    return (client, server, sender, seq, length)


def _ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def truth(path: Path) -> dict[tuple, str]:
    """Connection-phase packets -> kind, from the capture pipeline's state
    machine, examining every TCP port (as the session does)."""
    out = {}
    opts = DissectOptions(detect=True, with_packets=True)
    for conn in iter_connections(path, opts):
        for rec in conn.packets or []:
            kind = rec["kind"]
            if kind in _COMMAND_KINDS or rec.get("in_tls") or rec.get("seq") is None:
                continue
            if kind == "greeting":
                kind = "handshake_v10" if conn.protocol_version == 10 else "handshake_v9"
            elif kind == "handshake_response":
                v41 = (conn.client_capabilities or 0) & 0x200
                kind = "handshake_response41" if v41 else "handshake_response320"
            elif kind == "auth_data":
                kind = "auth_switch_response"
            key = _key(
                conn.client, conn.server, rec["sender"], rec["ts"], rec["seq"], rec["length"]
            )
            out[key] = kind
    return out


def _frames_of(pkt, header_types, sender_of, kind_of):
    """(key, kind) of every MySQL frame Scapy decoded in ``pkt``."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    if TCP not in pkt:
        return []
    ip = pkt[IP] if IP in pkt else pkt[IPv6] if IPv6 in pkt else None
    if ip is None:
        return []
    tcp = pkt[TCP]
    src, dst = _ep(ip.src, tcp.sport), _ep(ip.dst, tcp.dport)
    out = []
    layer = tcp.payload
    while layer is not None and layer.__class__.__name__ not in ("NoPayload",):
        if isinstance(layer, header_types):
            sender = sender_of(layer)
            client, server = (dst, src) if sender == "server" else (src, dst)
            length = layer.getfieldval(header_fields(layer)[0])
            seq = layer.getfieldval(header_fields(layer)[1])
            out.append((_key(client, server, sender, pkt.time, seq, length), kind_of(layer)))
        layer = layer.payload if hasattr(layer, "payload") else None
    return out


def header_fields(layer) -> tuple[str, str]:
    names = [f.name for f in layer.fields_desc]
    return names[0], names[1]


def ours(path: Path) -> dict[tuple, str | None]:
    from scapy.all import sniff

    from mysqlwire.scapy import MySQL, MySQLSession

    out = {}
    for pkt in sniff(offline=str(path), session=MySQLSession, quiet=True):
        for key, kind in _frames_of(
            pkt,
            (MySQL,),
            lambda h: "server" if h.from_server else "client",
            lambda h: getattr(h.payload, "kind", None),
        ):
            out[key] = kind
    return out


def contrib(path: Path, ports: tuple[int, ...]) -> dict[tuple, str | None]:
    """Scapy's contrib layer; loads it into this process (call after ours())."""
    from scapy.all import bind_layers, load_contrib, rdpcap
    from scapy.layers.inet import TCP

    load_contrib("mysql")
    import scapy.contrib.mysql as cm

    for port in ports:
        if port != cm.MYSQL_PORT:
            bind_layers(TCP, cm.MySQLClient, dport=port)
            bind_layers(TCP, cm.MySQLServer, sport=port)
    out = {}
    # rdpcap, no session: with session=TCPSession, Scapy 2.8 drops a direction
    # whose SYN+ACK carries Ethernet padding (zeek/plain-amazon-rds.pcap)
    for pkt in rdpcap(str(path)):
        for stream in (cm.MySQLClient, cm.MySQLServer):
            if stream not in pkt:
                continue
            sender = "client" if stream is cm.MySQLClient else "server"
            tcp = pkt[TCP]
            ip = tcp.underlayer
            src, dst = _ep(ip.src, tcp.sport), _ep(ip.dst, tcp.dport)
            client, server = (dst, src) if sender == "server" else (src, dst)
            for frame in pkt[stream].contents:
                kind = CONTRIB_KINDS.get(frame.payload.__class__.__name__)
                key = _key(
                    client, server, sender, pkt.time, frame.sequence_id, frame.payload_length
                )
                out[key] = kind
    return out


def public_items(shared: Path) -> list[tuple[str, Path, tuple[int, ...]]]:
    return [(rel, shared / "captures" / "public" / rel, ports) for rel, ports in catalog(shared)]


def lab_items() -> list[tuple[str, Path, tuple[int, ...]]]:
    """The repository's own lab samples (3306 and 3407, plus any port MySQL is found on)."""
    folder = ROOT / "captures" / "lab-samples"
    return [(p.name, p, (3306, 3407)) for p in sorted(folder.glob("*.pcap"))]


def compare(items, with_contrib: bool = True) -> list[dict]:
    """One row per capture: counts and the kinds each layer got wrong."""
    rows = []
    ours_by = {}
    truth_by = {}
    ports_by = {}
    for rel, path, ports in items:
        truth_by[rel] = truth(path)
        ours_by[rel] = ours(path)
        # the contrib layer is bound to the ports MySQL was found on
        found = {int(key[1].rsplit(":", 1)[1]) for key in truth_by[rel]}
        ports_by[rel] = tuple(sorted(set(ports) | found))
    contrib_by = {}
    if with_contrib:
        for rel, path, _ports in items:
            contrib_by[rel] = contrib(path, ports_by[rel])
    for rel, _path, _ports in items:
        t = truth_by[rel]
        row = {"capture": rel, "packets": len(t), "kinds": Counter(t.values())}
        # a retransmitted copy of a login packet is no mistake
        copies = {_drop_ts(key) for key in t}
        for name, got in (("ours", ours_by[rel]), ("contrib", contrib_by.get(rel))):
            if got is None:
                continue
            wrong = Counter()
            for key, kind in t.items():
                if got.get(key) != kind:
                    wrong[(kind, got.get(key))] += 1
            row[name] = len(t) - sum(wrong.values())
            row[f"{name}_wrong"] = wrong
            # frames outside the connection phase (commands, result sets, TLS
            # bytes) that were given a connection-phase class
            row[f"{name}_false"] = sum(
                1
                for key, kind in got.items()
                if key not in t and kind in AUTH_ONLY and _drop_ts(key) not in copies
            )
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| capture | connection-phase packets | mysqlwire right | contrib right "
        "| contrib's mistakes (truth -> contrib) | later frames labelled as login packets "
        "(mysqlwire / contrib) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    total = Counter()
    label = "captures" if len(rows) != 1 else "capture"
    for r in rows:
        mistakes = ", ".join(
            f"{n}x {k} -> {g or 'nothing'}"
            for (k, g), n in sorted(r["contrib_wrong"].items(), key=str)
        )
        lines.append(
            f"| {r['capture']} | {r['packets']} | {r['ours']} | {r['contrib']} | {mistakes} "
            f"| {r['ours_false']} / {r['contrib_false']} |"
        )
        total.update(
            packets=r["packets"],
            ours=r["ours"],
            contrib=r["contrib"],
            ours_false=r["ours_false"],
            contrib_false=r["contrib_false"],
        )
    lines.append(
        f"| **all {len(rows)} {label}** | **{total['packets']}** | **{total['ours']}** | "
        f"**{total['contrib']}** | | **{total['ours_false']} / {total['contrib_false']}** |"
    )
    per_kind = Counter()
    per_kind_ours = Counter()
    per_kind_contrib = Counter()
    for r in rows:
        per_kind.update(r["kinds"])
        for (k, _g), n in r["contrib_wrong"].items():
            per_kind_contrib[k] += n
        for (k, _g), n in r["ours_wrong"].items():
            per_kind_ours[k] += n
    lines += [
        "",
        "| kind (truth) | packets | mysqlwire right | contrib right |",
        "|---|---:|---:|---:|",
    ]
    for kind, n in sorted(per_kind.items()):
        lines.append(f"| {kind} | {n} | {n - per_kind_ours[kind]} | {n - per_kind_contrib[kind]} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", help="the shared folder (default: $MYSQLWIRE_SHARED or ../shared)")
    ap.add_argument("--markdown", help="replace the table between the markers of this file")
    args = ap.parse_args(argv)
    shared = shared_dir(args.shared)
    if not (shared / "captures" / "public" / "CATALOG.tsv").is_file():
        print(f"scapy_compare: no public captures under {shared}", file=sys.stderr)
        return 2
    tables = {
        MARK: markdown(compare(public_items(shared))),
        MARK_LAB: markdown(compare(lab_items())),
    }
    if not args.markdown:
        for table in tables.values():
            sys.stdout.write(table + "\n")
        return 0
    doc = Path(args.markdown)
    text = doc.read_text()
    for mark, table in tables.items():
        head, sep, rest = text.partition(mark)
        _old, sep2, tail = rest.partition(mark)
        if not sep or not sep2:
            print(f"scapy_compare: {doc} has no pair of {mark} markers", file=sys.stderr)
            return 2
        text = head + mark + "\n" + table + mark + tail
    doc.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
