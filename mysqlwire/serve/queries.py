"""The minimal command phase: tiny result sets so that real clients' connect + query work.

Not a SQL engine.  ``SELECT`` of literals and of a few functions / system variables
(``SELECT 1``, ``SELECT VERSION()``, ``SELECT @@version``, ``DATABASE()``, ``USER()``...)
gets a one-row result set; ``SHOW DATABASES`` lists the account's databases; ``USE db``
behaves like COM_INIT_DB; every other statement gets an OK.  Result sets follow the
client's CLIENT_DEPRECATE_EOF / CLIENT_OPTIONAL_RESULTSET_METADATA flags.
"""

from __future__ import annotations

import datetime
import io
import re
import struct
from dataclasses import dataclass

from mysqlwire.protocol import encode_lenenc
from mysqlwire.protocol.lenenc import read_lenenc

from . import wire
from .wire import F

# column types
MYSQL_TYPE_LONGLONG = 0x08
MYSQL_TYPE_VAR_STRING = 0xFD
BINARY_COLLATION = 63
NOT_NULL_FLAG = 0x0001
BINARY_FLAG = 0x0080


@dataclass
class Column:
    name: str
    type: int = MYSQL_TYPE_VAR_STRING
    collation: int = 255
    length: int = 0
    flags: int = 0
    decimals: int = 0x1F


def column_definition(col: Column, schema: str = "", table: str = "") -> bytes:
    return (
        wire.lenenc_str(b"def")
        + wire.lenenc_str(schema.encode())
        + wire.lenenc_str(table.encode())
        + wire.lenenc_str(table.encode())
        + wire.lenenc_str(col.name.encode())
        + wire.lenenc_str(b"")
        + b"\x0c"
        + struct.pack("<HIBHB", col.collation, col.length, col.type, col.flags, col.decimals)
        + b"\0\0"
    )


def result_set(
    columns: list[Column], rows: list[list[str | None]], caps: int, status: int
) -> list[bytes]:
    """Payloads of a text-protocol result set."""
    out = [encode_lenenc(len(columns))]
    if caps & F.CLIENT_OPTIONAL_RESULTSET_METADATA:
        out[0] += b"\x01"  # RESULTSET_METADATA_FULL
    out += [column_definition(c) for c in columns]
    deprecate_eof = bool(caps & F.CLIENT_DEPRECATE_EOF)
    if not deprecate_eof:
        out.append(wire.eof(caps, status=status))
    for row in rows:
        out.append(
            b"".join(b"\xfb" if v is None else wire.lenenc_str(v.encode("utf-8")) for v in row)
        )
    if deprecate_eof:
        out.append(wire.ok(caps, status=status, header=0xFE))
    else:
        out.append(wire.eof(caps, status=status))
    return out


# ---------------------------------------------------------------------- query answering
COMMENT = re.compile(r"/\*.*?\*/", re.S)
_SECRET_LITERALS = re.compile(
    r"((?:IDENTIFIED\s+(?:WITH\s+\S+\s+)?(?:BY|AS)|PASSWORD\s*(?:=|\()|PASSWORD)\s*)"
    r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")",
    re.I,
)


def redact(query: str) -> str:
    """The statement with password literals replaced (for logs and the event record)."""
    return _SECRET_LITERALS.sub(lambda m: m.group(1) + "'<secret>'", query)


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


_TAIL = re.compile(r"\s+(from|where|limit|order|group|having|into|for|lock)\b", re.I)
_ALIAS = re.compile(
    r"^(.*?)\s+(?:as\s+)?(`[^`]+`|'[^']+'|\"[^\"]+\"|[A-Za-z_][A-Za-z0-9_]*)$", re.I | re.S
)


@dataclass
class SessionView:
    """What a statement may read about its session."""

    user: str
    host: str
    database: str | None
    connection_id: int
    version: str
    version_comment: str
    collation: int
    databases: list[str]


def strip_quotes(s: str) -> str:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"`":
        return s[1:-1]
    return s


def _variable(name: str, s: SessionView) -> tuple[str | None, bool]:
    """(value, is_integer) of a system variable."""
    name = name.lower()
    for prefix in ("global.", "session.", "local."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    ints = {
        "max_allowed_packet": "67108864",
        "autocommit": "1",
        "wait_timeout": "28800",
        "interactive_timeout": "28800",
        "net_buffer_length": "16384",
        "auto_increment_increment": "1",
        "lower_case_table_names": "0",
        "port": "3306",
        "sql_auto_is_null": "0",
        "session_track_schema": "1",
    }
    if name in ints:
        return ints[name], True
    strs = {
        "version": s.version,
        "version_comment": s.version_comment,
        "hostname": "mysqlwire",
        "tx_isolation": "REPEATABLE-READ",
        "transaction_isolation": "REPEATABLE-READ",
        "character_set_client": "utf8mb4",
        "character_set_connection": "utf8mb4",
        "character_set_results": "utf8mb4",
        "character_set_server": "utf8mb4",
        "collation_connection": "utf8mb4_0900_ai_ci",
        "collation_server": "utf8mb4_0900_ai_ci",
        "time_zone": "SYSTEM",
        "system_time_zone": "UTC",
        "sql_mode": "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
        "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
        "license": "GPL",
        "default_authentication_plugin": "caching_sha2_password",
    }
    return strs.get(name), False


def _evaluate(expr: str, s: SessionView) -> tuple[str | None, bool]:
    e = expr.strip()
    low = e.lower().replace(" ", "")
    if re.fullmatch(r"[-+]?\d+", e):
        return str(int(e)), True
    if len(e) >= 2 and e[0] == e[-1] and e[0] in "'\"":
        return e[1:-1], False
    if low.startswith("@@"):
        return _variable(low[2:], s)
    funcs = {
        "version()": (s.version, False),
        "database()": (s.database, False),
        "schema()": (s.database, False),
        "user()": (f"{s.user}@{s.host}", False),
        "session_user()": (f"{s.user}@{s.host}", False),
        "system_user()": (f"{s.user}@{s.host}", False),
        "current_user()": (f"{s.user}@%", False),
        "current_user": (f"{s.user}@%", False),
        "connection_id()": (str(s.connection_id), True),
        "now()": (datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"), False),
        "true": ("1", True),
        "false": ("0", True),
        "null": (None, False),
    }
    return funcs.get(low, (None, False))


def select_result(query: str, s: SessionView) -> tuple[list[Column], list[list[str | None]]] | None:
    """Columns and rows for a simple SELECT, or None when it is not one we answer."""
    m = re.match(r"^\s*select\s+(.*)$", query, re.I | re.S)
    if not m:
        return None
    body = m.group(1)
    tail_m = _TAIL.search(body)
    select_list, tail = (body[: tail_m.start()], body[tail_m.start() :]) if tail_m else (body, "")
    columns: list[Column] = []
    row: list[str | None] = []
    for item in _split_top(select_list):
        expr, name = item, item
        am = _ALIAS.match(item)
        if am and not item.lower().startswith("@@") and " " in item.strip():
            expr, name = am.group(1), strip_quotes(am.group(2))
        value, is_int = _evaluate(expr, s)
        if is_int:
            col = Column(
                name,
                MYSQL_TYPE_LONGLONG,
                BINARY_COLLATION,
                max(1, len(value or "")),
                NOT_NULL_FLAG | BINARY_FLAG,
                0,
            )
        else:
            col = Column(
                name,
                MYSQL_TYPE_VAR_STRING,
                s.collation if s.collation > 0 else 255,
                4 * max(1, len(value or "")),
            )
        columns.append(col)
        row.append(value)
    tail_low = tail.lower()
    empty = re.search(r"\bwhere\s+(0|false)\b", tail_low) or re.search(r"\blimit\s+0\b", tail_low)
    return columns, ([] if empty else [row])


def show_databases(s: SessionView) -> tuple[list[Column], list[list[str | None]]]:
    return [Column("Database", MYSQL_TYPE_VAR_STRING, s.collation, 256)], [[d] for d in s.databases]


def parse_query_payload(payload: bytes, caps: int) -> str:
    """The statement text of a COM_QUERY payload (after the 0x03 byte).

    With CLIENT_QUERY_ATTRIBUTES the text is preceded by parameter count, parameter set
    count and, when there are parameters, their types/names/values.
    """
    data = payload[1:]
    if caps & F.CLIENT_QUERY_ATTRIBUTES:
        stream = io.BytesIO(data)

        def take(n: int) -> bytes:
            out = stream.read(n)
            if len(out) != n:
                raise ValueError("truncated query attributes")
            return out

        def lenenc() -> int:
            return read_lenenc(stream, "com_query")

        try:
            count = lenenc()
            lenenc()  # parameter_set_count, always 1
            if count:
                bitmap = take((count + 7) // 8)
                types = []
                if take(1) == b"\x01":  # new_params_bind_flag
                    for _ in range(count):
                        types.append(take(2)[0])
                        take(lenenc())  # parameter name
                fixed = {1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 8: 8, 9: 4, 13: 2}
                for i, t in enumerate(types):
                    if bitmap[i // 8] & (1 << (i % 8)) or t == 6:  # NULL
                        continue
                    if t in fixed:
                        take(fixed[t])
                    elif t in (7, 10, 11, 12):  # temporal: 1-byte length
                        take(take(1)[0])
                    else:
                        take(lenenc())
            data = stream.read()
        except Exception:  # noqa: BLE001 - malformed attributes: show the raw tail
            data = payload[1:]
    return data.decode("utf-8", "replace")
