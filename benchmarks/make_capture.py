"""Generate a large, deterministic MySQL capture from the lab captures.

Every connection is a copy of one real lab login (the bytes of its connection
phase, TLS included, are reused as captured), given its own client address and
port, new TCP sequence numbers, and -- for successful plain-text logins --
realistic command-phase traffic before the client's COM_QUIT: queries, OK
packets and multi-packet text-protocol result sets (column definitions, rows,
EOF/OK as the negotiated capabilities require; compressed when the login
negotiated compression).  That traffic makes up most of the bytes, as in
production.  Frames are Ethernet/IPv4/TCP (MSS 1448) with valid IP and TCP
checksums, written in timestamp order to a classic pcap while connections
overlap; only the connections open at a given moment are held in memory.

Next to ``OUT.pcap`` it writes:

* ``OUT.manifest.jsonl`` -- one line per connection (in order of first packet =
  mysqlwire's connection id): template, client endpoint, user, and ``expect``,
  the template's own ``dissect`` record minus endpoints/timestamps/capture/id,
  which the generated connection must reproduce;
* ``OUT.secrets.json`` -- user -> password for ``mysqlwire replay --secrets``;
* ``OUT.keys`` -- the TLS templates' key logs merged (``--keylog``);
* ``OUT.meta.json`` -- counts, sizes, the outcome mix and the RSA keys to pass.

Usage::

    python benchmarks/make_capture.py -n 2000 -o /tmp/bench/c2000.pcap [--seed 1]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import struct
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mysqlwire.capture import decode_tcp, open_capture  # noqa: E402
from mysqlwire.dissect import dissect  # noqa: E402
from mysqlwire.protocol.framing import compress_frame, frame  # noqa: E402

MSS = 1448
SERVER_PORT = 3306
MARIADB_SERVER = bytes((10, 0, 0, 10))
MYSQL8_SERVER = bytes((10, 0, 0, 20))
CLIENT_DEPRECATE_EOF = 1 << 24
CLIENT_OPTIONAL_RESULTSET_METADATA = 1 << 25
CLIENT_QUERY_ATTRIBUTES = 1 << 27
MARIADB_CLIENT_EXTENDED_METADATA = 1 << 3  # of the MariaDB extended capabilities
MARIADB_CLIENT_CACHE_METADATA = 1 << 4
CLIENT_COMPRESS = 1 << 5

SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01

SAMPLES = "captures/lab-samples"
LAB = "captures/lab"

# (folder, scenario, weight): the mix of logins.  Users map to one password
# across the whole set (the secrets map is per user).
CATALOGUE: list[tuple[str, str, float]] = [
    # successful logins, plain text: they carry the command-phase traffic
    (SAMPLES, "mariadb_pymysql_native_ok", 8),
    (SAMPLES, "lab_pymysql_native_ok", 8),
    (LAB, "pymysql_native_ok", 6),
    (LAB, "connector_native_ok", 6),
    (LAB, "mysqlclient_native_ok", 6),
    (LAB, "cli_native_ok", 3),
    (LAB, "mariadb_native_ok", 3),
    # caching_sha2: the fast path is the rule; full authentication (over RSA
    # without TLS) only happens on a user's first login after a server restart
    (SAMPLES, "m8emu_pymysql_sha2_fast_ok", 14),
    (SAMPLES, "m8emu_cli_sha2_full_plain", 1.2),  # caching_sha2 full auth over RSA
    (SAMPLES, "m8emu_connector_native_switch", 3),  # caching_sha2 -> native switch
    (SAMPLES, "m8emu_pymysql_sha256_rsa", 0.6),  # sha256_password over RSA
    (SAMPLES, "lab_mariadb_ed25519_ok", 2),  # native -> client_ed25519 switch
    (LAB, "cli_ed25519_ok", 1.5),
    (LAB, "pymysql_ed25519_ok", 1.5),
    (LAB, "mysqlclient_ed25519_ok", 1),
    (LAB, "cli_oldpw_ok", 1),  # old 3.23 password switch
    (SAMPLES, "lab_pymysql_old_oldpw", 1),
    (LAB, "cli_dual_native_ok", 0.5),  # two switches
    (LAB, "cli_pam_dialog_ok", 0.5),
    (LAB, "cli_compressed_ok", 1.5),
    (LAB, "mysqlclient_compressed_ok", 1),
    (SAMPLES, "lab_connector_change_user_ok", 1.5),
    (LAB, "mysqlclient_change_user_wrong", 0.5),
    # TLS (no keys given to dissect: the login inside stays opaque)
    (LAB, "pymysql_tls_keylog_ok", 2),
    (LAB, "connector_tls_keylog_ok", 1.5),
    (LAB, "cli_tls_keylog_ok", 1),
    (LAB, "mysqlclient_tls_keylog_ok", 1),
    (SAMPLES, "m8emu_pymysql_sha2_full_tls", 1.5),
    (LAB, "pymysql_default_tls_nokeys", 0.5),
    # failures
    (LAB, "pymysql_native_wrong", 2),
    (SAMPLES, "lab_cli_native_wrong", 1.5),
    (SAMPLES, "mariadb_connector_unknown_user", 1),
    (LAB, "mariadb_empty_sent", 1),
    (SAMPLES, "m8emu_cli_sha2_wrong", 1),  # wrong password: full auth over RSA too
    (SAMPLES, "m8emu_pymysql081_sha2", 0.5),
    (LAB, "mysqlclient_ed25519_wrong", 0.5),
    (LAB, "mariadb_oldpw_wrong", 0.3),
    (LAB, "cli_locked", 0.5),
    (LAB, "pymysql_unknown_db", 0.5),
    (LAB, "cli_require_ssl_no_tls", 0.3),
    (LAB, "connector_host_not_allowed", 0.4),
    (LAB, "cli_pam_dialog_wrong", 0.2),
    # the client gave up during authentication
    (LAB, "connector_ed25519", 0.4),
    (LAB, "pymysql_oldpw", 0.3),
]

RSA_KEYS = [f"{SAMPLES}/m8emu_server_rsa_private.pem"]

# record keys that differ between a template and its copies
_VARIABLE_KEYS = ("capture", "id", "client", "server", "first_ts", "last_ts")


# ----------------------------------------------------------------- templates


class Dialect(NamedTuple):
    """What the negotiated capabilities change in a text result set."""

    deprecate_eof: bool  # OK (0xFE) instead of EOF packets
    metadata_follows: bool  # a byte after the column count (MySQL optional
    # metadata, MariaDB cache metadata)
    extended_metadata: bool  # MariaDB: a lenenc string in each column definition
    query_attributes: bool  # COM_QUERY carries parameter counts before the SQL


@dataclass
class Template:
    name: str
    weight: float
    server: bytes
    messages: list[tuple[bool, bytes, int]]  # (from_client, payload, delay before, us)
    insert_at: int | None  # command-phase traffic goes before this message
    compressed: bool
    dialect: Dialect
    expect: dict
    user: str | None
    password: str | None
    keylog: Path | None
    mysql8: bool
    login_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.login_bytes = sum(len(m[1]) for m in self.messages)


def _truth(folder: str) -> dict[str, dict]:
    out = {}
    with open(ROOT / folder / "truth.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                t = json.loads(line)
                out[t["scenario"]] = t
    return out


def _segments(path: Path) -> tuple[list[tuple[bool, bytes, float]], int, bytes]:
    """The in-order payload of the capture's one TCP connection."""
    segs = []
    for fr in open_capture(path):
        seg = decode_tcp(fr.linktype, fr.data)
        if seg is not None:
            segs.append((fr.ts, seg))
    syn = next(s for _, s in segs if s.flags & SYN and not s.flags & ACK)
    cli = (syn.saddr, syn.sport)
    srv = (syn.daddr, syn.dport)
    nxt = {True: None, False: None}
    out: list[tuple[bool, bytes, float]] = []
    for ts, s in segs:
        from_client = (s.saddr, s.sport) == cli
        if not from_client and (s.saddr, s.sport) != srv:
            continue
        if s.flags & SYN:
            nxt[from_client] = (s.seq + 1) & 0xFFFFFFFF
            continue
        if not s.payload:
            continue
        exp = nxt[from_client]
        off = (exp - s.seq) & 0xFFFFFFFF
        if off >= len(s.payload):
            continue  # retransmission / loopback twin
        if off and off < 0x80000000:
            data = s.payload[off:]
        elif off:
            raise ValueError(f"{path}: out-of-order segment, not usable as a template")
        else:
            data = s.payload
        nxt[from_client] = (exp + len(data)) & 0xFFFFFFFF
        out.append((from_client, bytes(data), ts))
    return out, srv[1], srv[0]


def _is_quit(payload: bytes) -> bool:
    return payload[-5:] == b"\x01\x00\x00\x00\x01" and len(payload) in (5, 12)


def load_templates() -> list[Template]:
    truths = {SAMPLES: _truth(SAMPLES), LAB: _truth(LAB)}
    out = []
    for folder, scenario, weight in CATALOGUE:
        t = truths[folder].get(scenario)
        if t is None:
            raise SystemExit(f"make_capture: {folder}/truth.jsonl has no scenario {scenario!r}")
        path = ROOT / folder / t["pcap"]
        segs, port, _srv = _segments(path)
        conns = dissect(path, ports=(port,))
        if len(conns) != 1:
            raise SystemExit(f"make_capture: {path} holds {len(conns)} MySQL connections, not 1")
        conn = conns[0]
        rec = conn.to_record()
        for key in _VARIABLE_KEYS:
            rec.pop(key, None)
        messages = []
        prev = segs[0][2]
        for from_client, data, ts in segs:
            delay = min(max(int((ts - prev) * 1e6), 5), 20_000)
            messages.append((from_client, data, delay))
            prev = ts
        insert_at = None
        if rec["outcome"] == "ok" and not rec["tls"] and rec["command_error"] is None:
            last = len(messages) - 1
            if messages[last][0] and _is_quit(messages[last][1]):
                insert_at = last
            else:
                insert_at = len(messages)
        caps = (conn.client_capabilities or 0) & (conn.server_capabilities or 0)
        ext = (conn.client_ext_capabilities or 0) & (conn.server_ext_capabilities or 0)
        dialect = Dialect(
            deprecate_eof=bool(caps & CLIENT_DEPRECATE_EOF),
            metadata_follows=bool(
                caps & CLIENT_OPTIONAL_RESULTSET_METADATA or ext & MARIADB_CLIENT_CACHE_METADATA
            ),
            extended_metadata=bool(ext & MARIADB_CLIENT_EXTENDED_METADATA),
            query_attributes=bool(caps & CLIENT_QUERY_ATTRIBUTES),
        )
        password = t["account_password"] if t["account_password"] is not None else t["password"]
        keylog = ROOT / folder / t["keylog"] if t.get("keylog") else None
        out.append(
            Template(
                name=f"{Path(folder).name}/{scenario}",
                weight=weight,
                server=MYSQL8_SERVER if scenario.startswith("m8emu") else MARIADB_SERVER,
                messages=messages,
                insert_at=insert_at,
                compressed=bool(rec["compressed"]),
                dialect=dialect,
                expect=rec,
                user=t["user"],
                password=password,
                keylog=keylog,
                mysql8=scenario.startswith("m8emu"),
            )
        )
    users: dict[str, str] = {}
    for tpl in out:
        if tpl.user is None or tpl.password is None:
            continue
        if users.setdefault(tpl.user, tpl.password) != tpl.password:
            raise SystemExit(f"make_capture: user {tpl.user!r} has two passwords in the catalogue")
    return out


# ------------------------------------------------------- command-phase traffic

T_LONGLONG, T_LONG, T_DATETIME, T_NEWDECIMAL, T_BLOB, T_VAR_STRING = 8, 3, 12, 246, 252, 253
F_NOT_NULL, F_PRI, F_UNSIGNED, F_AUTO_INC = 1, 2, 32, 512
CS_UTF8MB4, CS_BINARY = 45, 63

TABLES = {
    "orders": [
        ("id", T_LONGLONG, 20, F_NOT_NULL | F_PRI | F_UNSIGNED | F_AUTO_INC, 0, CS_BINARY),
        ("customer_id", T_LONG, 11, F_NOT_NULL, 0, CS_BINARY),
        ("status", T_VAR_STRING, 80, F_NOT_NULL, 0, CS_UTF8MB4),
        ("total", T_NEWDECIMAL, 12, F_NOT_NULL, 2, CS_BINARY),
        ("created_at", T_DATETIME, 19, F_NOT_NULL, 0, CS_BINARY),
        ("note", T_VAR_STRING, 1020, 0, 0, CS_UTF8MB4),
    ],
    "customers": [
        ("id", T_LONGLONG, 20, F_NOT_NULL | F_PRI | F_UNSIGNED | F_AUTO_INC, 0, CS_BINARY),
        ("name", T_VAR_STRING, 400, F_NOT_NULL, 0, CS_UTF8MB4),
        ("email", T_VAR_STRING, 1020, F_NOT_NULL, 0, CS_UTF8MB4),
        ("country", T_VAR_STRING, 8, 0, 0, CS_UTF8MB4),
        ("created_at", T_DATETIME, 19, F_NOT_NULL, 0, CS_BINARY),
    ],
    "events": [
        ("id", T_LONGLONG, 20, F_NOT_NULL | F_PRI | F_UNSIGNED | F_AUTO_INC, 0, CS_BINARY),
        ("kind", T_VAR_STRING, 128, F_NOT_NULL, 0, CS_UTF8MB4),
        ("payload", T_BLOB, 262140, 0, 0, CS_UTF8MB4),
        ("ts", T_DATETIME, 19, F_NOT_NULL, 0, CS_BINARY),
    ],
}
QUERIES = {
    "orders": "SELECT id, customer_id, status, total, created_at, note FROM orders "
    "WHERE customer_id = {k} ORDER BY created_at DESC LIMIT {n}",
    "customers": "SELECT id, name, email, country, created_at FROM customers "
    "WHERE country = '{c}' AND created_at > '2024-0{m}-01' LIMIT {n}",
    "events": "SELECT id, kind, payload, ts FROM events WHERE ts >= NOW() - INTERVAL {m} HOUR "
    "ORDER BY ts LIMIT {n}",
}
ROWCOUNTS = [1, 2, 5, 10, 20, 50, 100, 200, 500]
ROWWEIGHTS = [6, 4, 6, 8, 10, 10, 8, 5, 2]
WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()
COUNTRIES = ["DE", "FR", "US", "GB", "JP", "BR", "IN", "NL", "SE", "ES"]
STATUSES = ["new", "paid", "shipped", "delivered", "cancelled", "refunded"]
KINDS = ["login", "logout", "page_view", "purchase", "search", "error"]


def _lenenc(n: int) -> bytes:
    if n < 251:
        return bytes((n,))
    if n < 1 << 16:
        return b"\xfc" + n.to_bytes(2, "little")
    if n < 1 << 24:
        return b"\xfd" + n.to_bytes(3, "little")
    return b"\xfe" + n.to_bytes(8, "little")


def _lstr(s: str | bytes | None) -> bytes:
    if s is None:
        return b"\xfb"
    b = s.encode() if isinstance(s, str) else s
    return _lenenc(len(b)) + b


def _coldef(table: str, col, dialect: Dialect) -> bytes:
    name, ctype, length, flags, decimals, charset = col
    return (
        _lstr("def")
        + _lstr("shop" if table else "")
        + _lstr(table)
        + _lstr(table)
        + _lstr(name)
        + _lstr(name if table else "")
        + (b"\x00" if dialect.extended_metadata else b"")
        + b"\x0c"
        + struct.pack("<HIBHB", charset, length, ctype, flags, decimals)
        + b"\x00\x00"
    )


def _dt(rng: random.Random) -> str:
    return (
        f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    )


def _row(table: str, rng: random.Random, i: int) -> list[str | None]:
    if table == "orders":
        note = " ".join(rng.choices(WORDS, k=rng.randint(0, 8))) or None
        return [
            str(1_000_000 + i * 7 + rng.randint(0, 6)),
            str(rng.randint(1, 90_000)),
            rng.choice(STATUSES),
            f"{rng.randint(100, 999_999) / 100:.2f}",
            _dt(rng),
            note,
        ]
    if table == "customers":
        first = rng.choice(WORDS).capitalize()
        last = rng.choice(WORDS).capitalize() + rng.choice(WORDS)
        return [
            str(10_000 + i * 3 + rng.randint(0, 2)),
            f"{first} {last}",
            f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@example.{rng.choice(['com', 'org', 'net'])}",
            rng.choice(COUNTRIES),
            _dt(rng),
        ]
    attrs = ", ".join(
        f'"{rng.choice(WORDS)}": "{" ".join(rng.choices(WORDS, k=rng.randint(1, 4)))}"'
        for _ in range(rng.randint(2, 9))
    )
    return [
        str(5_000_000 + i),
        rng.choice(KINDS),
        f'{{"session": "{rng.getrandbits(64):016x}", {attrs}}}',
        _dt(rng),
    ]


_EOF = b"\xfe\x00\x00\x22\x00"  # warnings 0, status AUTOCOMMIT|NO_INDEX_USED
_OK_EOF = b"\xfe\x00\x00\x22\x00\x00\x00"


class Traffic:
    """Canned, valid command-phase exchanges (built once, reused)."""

    def __init__(self, seed: int):
        self._cache: dict[tuple, bytes] = {}

    def result_set(self, table: str, nrows: int, dialect: Dialect, variant: int) -> bytes:
        key = (table, nrows, tuple(dialect), variant)
        blob = self._cache.get(key)
        if blob is None:
            rng = random.Random(zlib.crc32(repr((table, nrows, variant)).encode()))
            rows = [b"".join(_lstr(v) for v in _row(table, rng, i)) for i in range(nrows)]
            blob = self._cache[key] = _text_result(table, TABLES[table], rows, dialect)
        return blob

    def command(self, rng: random.Random, dialect: Dialect) -> tuple[bytes, bytes]:
        """One (client bytes, server bytes) exchange."""
        r = rng.random()
        if r < 0.62:
            table = rng.choices(("orders", "customers", "events"), (5, 3, 2))[0]
            n = rng.choices(ROWCOUNTS, ROWWEIGHTS)[0]
            sql = QUERIES[table].format(
                k=rng.randint(1, 90_000), c=rng.choice(COUNTRIES), m=rng.randint(1, 9), n=n
            )
            reply = self.result_set(table, n, dialect, rng.randrange(3))
        elif r < 0.80:
            sql = f"SELECT id, name, email, country, created_at FROM customers WHERE id = {rng.randint(10_000, 99_999)}"
            reply = self.result_set("customers", 1, dialect, rng.randrange(3))
        elif r < 0.93:
            if rng.random() < 0.5:
                sql = f"UPDATE orders SET status = '{rng.choice(STATUSES)}' WHERE id = {rng.randint(1_000_000, 9_999_999)}"
                reply = frame(b"\x00\x01\x00\x22\x00\x00\x00", 1)
            else:
                sql = (
                    "INSERT INTO events (kind, payload, ts) VALUES "
                    f"('{rng.choice(KINDS)}', '{{\"session\": \"{rng.getrandbits(64):016x}\"}}', NOW())"
                )
                reply = frame(
                    b"\x00\x01" + _lenenc(rng.randint(5_000_000, 9_000_000)) + b"\x02\x00\x00\x00",
                    1,
                )
        else:
            sql = rng.choice(("COMMIT", "BEGIN", "SET autocommit=1", "SELECT 1"))
            if sql == "SELECT 1":
                one = ("1", T_LONGLONG, 1, F_NOT_NULL, 0, CS_BINARY)
                return _query(sql, dialect), _text_result("", [one], [b"\x011"], dialect)
            reply = frame(b"\x00\x00\x00\x02\x00\x00\x00", 1)
        return _query(sql, dialect), reply


def _query(sql: str, dialect: Dialect) -> bytes:
    """COM_QUERY (with CLIENT_QUERY_ATTRIBUTES: no parameters, one parameter set)."""
    return frame(b"\x03" + (b"\x00\x01" if dialect.query_attributes else b"") + sql.encode(), 0)


def _text_result(table: str, cols, rows: list[bytes], dialect: Dialect) -> bytes:
    """A text-protocol result set (seq 1...), framed."""
    count = _lenenc(len(cols)) + (b"\x01" if dialect.metadata_follows else b"")
    out = [frame(count, 1)]
    seq = 2
    for col in cols:
        out.append(frame(_coldef(table, col, dialect), seq & 0xFF))
        seq += 1
    if not dialect.deprecate_eof:
        out.append(frame(_EOF, seq & 0xFF))
        seq += 1
    for row in rows:
        out.append(frame(row, seq & 0xFF))
        seq += 1
    out.append(frame(_OK_EOF if dialect.deprecate_eof else _EOF, seq & 0xFF))
    return b"".join(out)


def command_phase(
    traffic: Traffic, rng: random.Random, tpl: Template, shape: str = "mixed"
) -> list[tuple[bool, bytes, int]]:
    """Messages (from_client, bytes, delay us) of the queries a connection runs."""
    if shape == "logins":
        count = 1 if rng.random() < 0.1 else 0  # a pool storm / brute force: log in, leave
    elif rng.random() < 0.15:
        count = rng.randint(20, 80)  # a pooled connection doing real work
    else:
        count = rng.randint(1, 10)
    out = []
    for _ in range(count):
        q, reply = traffic.command(rng, tpl.dialect)
        if tpl.compressed:
            # as libmariadb / the server do: the client leaves packets under
            # 150 bytes uncompressed, the server those under 50
            q = compress_frame(q, 0, level=6, min_length=150)
            reply = compress_frame(reply, 1, level=6, min_length=50)
        out.append((True, q, rng.randint(200, 15_000)))  # think time
        out.append((False, reply, rng.randint(80, 2_000) + len(reply) // 50))  # server time
    return out


# ------------------------------------------------------------------ TCP/pcap


def _csum_fold(total: int) -> int:
    s = total % 0xFFFF
    return (~s & 0xFFFF) if s else 0


_ETH_C2S = b"\x02\x42\x0a\x00\x00\x0a" + b"\x02\x42\xac\x11\x00\x02" + b"\x08\x00"
_ETH_S2C = _ETH_C2S[6:12] + _ETH_C2S[0:6] + b"\x08\x00"
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_PSEUDO = struct.Struct("!4s4sBBH")
_REC = struct.Struct("<IIII")


class Conn:
    """Frames of one generated connection."""

    def __init__(self, cip: bytes, cport: int, sip: bytes, rng: random.Random):
        self.ep = {True: (cip, cport, sip, SERVER_PORT), False: (sip, SERVER_PORT, cip, cport)}
        self.nxt = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
        self.ipid = {True: rng.getrandbits(16), False: rng.getrandbits(16)}
        self.frames: list[tuple[int, bytes]] = []
        self.bytes = 0

    def seg(self, ts: int, from_client: bool, flags: int, payload: bytes = b"") -> None:
        src, sport, dst, dport = self.ep[from_client]
        seq = self.nxt[from_client]
        ack = self.nxt[not from_client] if flags & ACK else 0
        tlen = 20 + len(payload)
        hdr = _TCP.pack(sport, dport, seq, ack, 0x50, flags, 64240, 0, 0)
        pad = b"\x00" if len(payload) & 1 else b""
        total = int.from_bytes(_PSEUDO.pack(src, dst, 0, 6, tlen) + hdr, "big")
        if payload:
            total += int.from_bytes(payload + pad, "big")
        hdr = hdr[:16] + _csum_fold(total).to_bytes(2, "big") + hdr[18:]
        ipid = self.ipid[from_client] = (self.ipid[from_client] + 1) & 0xFFFF
        ip = _IP.pack(0x45, 0, 20 + tlen, ipid, 0x4000, 64, 6, 0, src, dst)
        ip = ip[:10] + _csum_fold(int.from_bytes(ip, "big")).to_bytes(2, "big") + ip[12:]
        fr = (_ETH_C2S if from_client else _ETH_S2C) + ip + hdr + payload
        self.frames.append((ts, fr))
        self.bytes += len(fr) + 16
        adv = len(payload) + (1 if flags & (SYN | FIN) else 0)
        self.nxt[from_client] = (seq + adv) & 0xFFFFFFFF


def build_connection(
    tpl: Template,
    extra: list[tuple[bool, bytes, int]],
    start: int,
    cip: bytes,
    cport: int,
    rng: random.Random,
) -> Conn:
    c = Conn(cip, cport, tpl.server, rng)
    rtt = rng.randint(60, 400)
    t = start
    c.seg(t, True, SYN)
    t += rtt // 2
    c.seg(t, False, SYN | ACK)
    t += rtt // 2
    c.seg(t, True, ACK)
    msgs = tpl.messages
    if tpl.insert_at is not None:
        msgs = msgs[: tpl.insert_at] + extra + msgs[tpl.insert_at :]
    for i, (from_client, data, delay) in enumerate(msgs):
        t += delay
        nseg = (len(data) + MSS - 1) // MSS
        for k in range(nseg):
            last = k == nseg - 1
            c.seg(t, from_client, ACK | (PSH if last else 0), data[k * MSS : (k + 1) * MSS])
            t += 3 + MSS // 100
            if k & 1 or (last and (i + 1 == len(msgs) or msgs[i + 1][0] == from_client)):
                c.seg(t + 15, not from_client, ACK)  # delayed ACK
    last_sender = msgs[-1][0] if msgs else True
    t += rng.randint(50, 500)
    c.seg(t, last_sender, FIN | ACK)
    t += rtt // 2
    c.seg(t, not last_sender, FIN | ACK)
    t += rtt // 2
    c.seg(t, last_sender, ACK)
    return c


def generate(n: int, out: Path, seed: int = 1, rate: float = 400.0, shape: str = "mixed") -> dict:
    """Write ``out`` (+ manifest, secrets, keys, meta); return the meta dict."""
    t0 = time.perf_counter()
    templates = load_templates()
    weights = [t.weight for t in templates]
    rng = random.Random(seed)
    traffic = Traffic(seed)
    base = 1_767_225_600_000_000  # 2026-01-01 UTC, in microseconds
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest_path = out.with_suffix(".manifest.jsonl")
    hosts = [bytes((10, 1 + h // 250, h % 250 + 1, 10 + h % 7)) for h in range(240)]
    next_port = [32768 + 3 * h for h in range(len(hosts))]
    mix: Counter = Counter()
    outcomes: Counter = Counter()
    used: Counter = Counter()
    bulk_payload = 0
    total_payload = 0
    frames = 0
    file_bytes = 24
    heap: list = []
    start = base
    with open(out, "wb", buffering=1 << 20) as fh, open(manifest_path, "w") as mf:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))

        def flush_until(limit: int | None) -> None:
            nonlocal frames, file_bytes
            while heap and (limit is None or heap[0][0] <= limit):
                ts, cid, idx, conn_frames = heapq.heappop(heap)
                fr = conn_frames[idx]
                fh.write(_REC.pack(ts // 1_000_000, ts % 1_000_000, len(fr[1]), len(fr[1])))
                fh.write(fr[1])
                frames += 1
                file_bytes += 16 + len(fr[1])
                idx += 1
                if idx < len(conn_frames):
                    heapq.heappush(heap, (conn_frames[idx][0], cid, idx, conn_frames))

        for i in range(n):
            start += max(1, int(rng.expovariate(rate) * 1e6))
            tpl = rng.choices(templates, weights)[0]
            h = rng.randrange(len(hosts))
            port = next_port[h]
            next_port[h] = 32768 + (port - 32768 + 1) % 28000
            extra = command_phase(traffic, rng, tpl, shape) if tpl.insert_at is not None else []
            conn = build_connection(tpl, extra, start, hosts[h], port, rng)
            bulk = sum(len(m[1]) for m in extra)
            bulk_payload += bulk
            total_payload += bulk + tpl.login_bytes
            flush_until(start - 1)
            heapq.heappush(heap, (conn.frames[0][0], i, 0, conn.frames))
            used[tpl.name] += 1
            outcomes[tpl.expect["outcome"]] += 1
            mix[tpl.expect["final_plugin"] or ("tls" if tpl.expect["tls"] else "none")] += 1
            cip = ".".join(str(b) for b in hosts[h])
            srv = ".".join(str(b) for b in tpl.server)
            mf.write(
                json.dumps(
                    {
                        "id": i,
                        "template": tpl.name,
                        "client": f"{cip}:{port}",
                        "server": f"{srv}:{SERVER_PORT}",
                        "user": tpl.user,
                        "queries": len(extra) // 2,
                        "command_bytes": bulk,
                        "expect": tpl.expect,
                    }
                )
                + "\n"
            )
        flush_until(None)
    secrets = {t.user: t.password for t in templates if t.user and used[t.name]}
    secrets_path = out.with_suffix(".secrets.json")
    secrets_path.write_text(json.dumps(secrets, indent=1, sort_keys=True) + "\n")
    keys_path = out.with_suffix(".keys")
    with open(keys_path, "w") as kf:
        for kl in sorted({t.keylog for t in templates if t.keylog and used[t.name]}):
            kf.write(kl.read_text())
            if not kf.tell() or not kl.read_text().endswith("\n"):
                kf.write("\n")
    meta = {
        "capture": str(out),
        "connections": n,
        "seed": seed,
        "shape": shape,
        "frames": frames,
        "bytes": file_bytes,
        "tcp_payload_bytes": total_payload,
        "command_phase_bytes": bulk_payload,
        "command_phase_share_of_payload": round(bulk_payload / max(total_payload, 1), 4),
        "command_phase_share_of_file": round(bulk_payload / max(file_bytes, 1), 4),
        "duration_s": round((start - base) / 1e6, 3),
        "outcomes": dict(sorted(outcomes.items())),
        "final_plugins": dict(sorted(mix.items())),
        "templates": dict(sorted(used.items())),
        "manifest": str(manifest_path),
        "secrets": str(secrets_path),
        "keylog": str(keys_path),
        "rsa_keys": [str(ROOT / k) for k in RSA_KEYS],
        "generated_in_s": round(time.perf_counter() - t0, 2),
    }
    out.with_suffix(".meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--connections", type=int, default=2000)
    ap.add_argument("-o", "--out", type=Path, required=True, help="output .pcap")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--rate", type=float, default=400.0, help="new connections per second (capture time)"
    )
    ap.add_argument(
        "--shape",
        choices=("mixed", "logins"),
        default="mixed",
        help="mixed: logins then 1-80 queries each (default); logins: connection-phase heavy "
        "(a pool storm or brute force: 90%% of the connections log in and leave)",
    )
    args = ap.parse_args(argv)
    meta = generate(args.connections, args.out, args.seed, args.rate, args.shape)
    print(json.dumps({k: v for k, v in meta.items() if k != "templates"}, indent=1))


if __name__ == "__main__":
    main()
