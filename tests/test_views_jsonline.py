"""``dissect --format jsonl`` writes each line with
:func:`mysqlwire.views.jsonline.connection_line`: it must be exactly
``json_dumps(conn.to_record())`` -- on every bundled capture and on records
holding hostile or unusual values (which take the general path)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mysqlwire.dissect import dissect
from mysqlwire.model import AuthStep, Connection, Exchange
from mysqlwire.views.escape import UNSAFE_JSON_CHARS, json_dumps
from mysqlwire.views.jsonline import connection_line

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = sorted((ROOT / "captures").rglob("*.pcap*"))


def test_every_bundled_connection_line_equals_the_record():
    seen = 0
    for path in CAPTURES:
        try:
            conns = dissect(path)
        except Exception:  # noqa: BLE001 - hostile corpus files may be refused
            continue
        for c in conns:
            assert connection_line(c) == json_dumps(c.to_record()), (path, c.id)
            seen += 1
    assert seen > 100


def _conn(**kw) -> Connection:
    base = dict(id=7, client="10.0.0.2:40000", server="10.0.0.1:3306", capture="x.pcap")
    base.update(kw)
    return Connection(**base)


def _login(**kw) -> Exchange:
    ex = Exchange(kind="login", nonce=b"n" * 20, user="app", client_plugin="mysql_native_password")
    for k, v in kw.items():
        setattr(ex, k, v)
    return ex


UNSAFE = "".join(chr(c) for c in sorted(UNSAFE_JSON_CHARS))


@pytest.mark.parametrize(
    "conn",
    [
        _conn(),  # nothing seen
        _conn(first_ts=1.5, last_ts=1e300, server_capabilities=0, client_capabilities=0xFFFFFFFF),
        _conn(server_version='8.0 "quoted" \\ back\nslash\t', thread_id=2**40),
        _conn(server_version="evil" + UNSAFE + "\x1b[2J\u2028", greeting_plugin="\x00\x7f"),
        _conn(server_ext_capabilities=0x1F, server_capabilities=0x80000000),
        _conn(connect_attrs={"_os": "linux", "k\u202e": "v\x9b", "": ""}, tls=True),
        _conn(
            exchanges=[_login(outcome="ok")],
            command_error={"code": 1820, "sqlstate": "HY000", "message": "reset \u202e"},
        ),
        _conn(
            exchanges=[
                _login(
                    outcome="error",
                    error={"code": 1045, "sqlstate": None, "message": "Access denied"},
                )
            ]
        ),
        _conn(
            exchanges=[
                _login(
                    outcome="ok",
                    steps=[
                        AuthStep("server", "auth_switch_request", 2, "client_ed25519", b"x", 1.0),
                        AuthStep("server", "auth_switch_request", 4, None, b"", 1.0),
                    ],
                ),
                Exchange(
                    kind="change_user",
                    nonce=None,
                    user="other",
                    outcome="error",
                    error={"code": 1045, "sqlstate": "28000", "message": "no"},
                ),
            ]
        ),
        # a COM_CHANGE_USER on a connection joined mid-stream: no login before it
        _conn(midstream=True, exchanges=[Exchange(kind="change_user", nonce=None, user="u")]),
        _conn(extra={"pre_greeting_error": {"code": 1130, "sqlstate": None, "message": "host"}}),
        _conn(extra={"midstream_error": {"code": 1, "sqlstate": "HY000", "message": "m"}}),
        _conn(anomalies=["server: sequence id 3, expected 2", "client: \u2066x"]),
        _conn(
            tls=True,
            tls_info={
                "tls_version": "TLS 1.3",
                "tls_cipher": None,
                "tls_sni": "db",
                "tls_status": "keys-missing",
                "decrypted": False,
                "tls_alerts": ["server: fatal handshake_failure"],
            },
        ),
        _conn(tls=True, tls_info={"tls_status": "ok", "decrypted": True}),
        # values of unexpected types or non-finite numbers: the general path
        _conn(first_ts=math.nan, last_ts=math.inf),
        _conn(connect_attrs={"k": b"\x00\xff"}),
        _conn(anomalies=[b"raw"], thread_id=True),
        _conn(exchanges=[_login(error={"code": 1, "message": {1, 2}})]),
        _conn(id=-1, server_version=Path("odd")),
    ],
)
def test_connection_line_equals_the_record(conn):
    assert connection_line(conn) == json_dumps(conn.to_record())


def test_connection_line_after_values_only_the_general_path_takes():
    # json's C encoder is kept between lines: an error inside a sub-value must not
    # change the lines after it
    odd = _conn(connect_attrs={"k": [b"\x00"]}, anomalies=[{"deep": [math.nan]}])
    normal = _conn(connect_attrs={"a": "b", "c": ""}, anomalies=["server: x"])
    for conn in (normal, odd, normal, odd, odd, normal):
        assert connection_line(conn) == json_dumps(conn.to_record())
