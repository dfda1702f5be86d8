"""Client fingerprinting: the lab clients (truth's ``client`` field is the
ground truth) and hand-built handshake shapes."""

from __future__ import annotations

import re

import pytest

from mysqlwire.diagnose.fingerprint import (
    PYMYSQL_CAPS_07,
    PYMYSQL_CAPS_08,
    PYMYSQL_CAPS_09,
    Fingerprint,
    fingerprint_connection,
    parse_version,
)
from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.model import Connection

from .test_diagnose_lab_samples import TRUTH, _samples_dir


def _expected(client: str) -> dict:
    """What the truth's free-text client field says, as fingerprint fields."""
    m = re.match(r"PyMySQL (\S+)", client)
    if m:
        return {"library": "PyMySQL", "version": m.group(1)}
    m = re.match(r"mysql-connector-python (\S+) \((pure|use_pure)\)", client)
    if m:
        return {
            "library": "mysql-connector-python",
            "version": m.group(1),
            "variant": "pure Python",
        }
    if client.startswith("MariaDB Connector/Python"):
        return {"library": "libmariadb", "product": "MariaDB Connector/Python"}
    if client.startswith("mysqlclient"):
        return {"library": "libmariadb", "product": "mysqlclient"}
    if client.startswith("mariadb ") and ("Distrib" in client or "CLI" in client):
        return {"library": "libmariadb", "product": "mariadb CLI"}
    raise AssertionError(f"unknown truth client {client!r}")


def _in_range(fp: Fingerprint, version: str) -> bool:
    v = parse_version(version)
    if fp.version is not None:
        return fp.version == version
    lo, hi = fp.min_version, fp.max_version
    return (lo is None or v >= lo) and (hi is None or v < hi)


@pytest.mark.parametrize("t", TRUTH, ids=[t["scenario"] for t in TRUTH])
def test_lab_client_fingerprint(t):
    d = _samples_dir()
    keylog = None
    if t.get("keylog"):
        from mysqlwire.tls import KeyLog

        keylog = KeyLog.from_file(d / t["keylog"])
    conns = list(
        iter_connections(str(d / t["pcap"]), DissectOptions(ports=(t["port"],), keylog=keylog))
    )
    if t.get("client_port"):
        conns = [c for c in conns if c.client.endswith(f":{t['client_port']}")]
    for conn in conns:
        fp = fingerprint_connection(conn)
        if conn.client_capabilities is None:
            # ERR before the greeting: the client never spoke
            assert not fp.known and fp.label == "an unidentified client"
            continue
        exp = _expected(t["client"])
        assert fp.library == exp["library"], (t["client"], fp)
        if "version" in exp:
            assert _in_range(fp, exp["version"]), (t["client"], fp.label)
        if "product" in exp:
            assert fp.product == exp["product"], (t["client"], fp.label)
        if "variant" in exp:
            assert fp.variant == exp["variant"]
        if fp.library == "libmariadb":
            assert fp.version == "3.3.20"  # every libmariadb client of the lab
        assert fp.label


def _conn(caps=None, maxp=None, attrs=None, cs=45, ext=0) -> Connection:
    c = Connection(id=0, client="10.0.0.1:5000", server="10.0.0.2:3306")
    c.client_capabilities = caps
    c.max_packet_size = maxp
    c.connect_attrs = attrs
    c.client_character_set = cs
    c.client_ext_capabilities = ext
    return c


def test_pymysql_07_shape_without_attributes():
    fp = fingerprint_connection(_conn(PYMYSQL_CAPS_07, 1, None, cs=8))
    assert fp.library == "PyMySQL" and fp.max_version == (0, 8) and fp.version is None
    assert fp.label == "PyMySQL < 0.8"
    assert fp.supports("caching_sha2_password") is False
    assert fp.supports("client_ed25519") is False
    assert fp.supports("mysql_native_password") is True
    assert any("max_packet_size 1" in e for e in fp.evidence)


def test_pymysql_08_shape():
    fp = fingerprint_connection(_conn(PYMYSQL_CAPS_08 | 0x8, 1, None, cs=8))
    assert (fp.min_version, fp.max_version) == ((0, 8), (0, 9))
    assert fp.label == "PyMySQL 0.8.x"
    assert fp.supports("caching_sha2_password") is False


def test_pymysql_ssl_request_only_shape():
    # only the SSLRequest was readable: caps, no max_packet_size recorded
    fp = fingerprint_connection(_conn(PYMYSQL_CAPS_09 | 0x800, None, None))
    assert fp.library == "PyMySQL" and fp.min_version == (0, 9)
    assert fp.supports("caching_sha2_password") is True
    assert fp.supports("client_ed25519") is None  # 0.9.x has none, 1.x has it


@pytest.mark.parametrize(
    "version, ed25519, sha2",
    [("0.9.3", False, True), ("1.0.0", True, True), ("1.2.4", True, True), ("0.8.1", False, False)],
)
def test_pymysql_versions_from_attributes(version, ed25519, sha2):
    attrs = {"_client_name": "pymysql", "_client_version": version, "_pid": "1"}
    fp = fingerprint_connection(_conn(PYMYSQL_CAPS_09, 0xFFFFFF, attrs))
    assert fp.label == f"PyMySQL {version}"
    assert fp.supports("client_ed25519") is ed25519
    assert fp.supports("caching_sha2_password") is sha2


def test_connector_c_extension_is_libmysqlclient():
    attrs = {
        "_client_name": "libmysql",
        "_client_version": "8.0.33",
        "_connector_name": "mysql-connector-python",
        "_connector_version": "8.0.33",
        "program_name": "app",
    }
    fp = fingerprint_connection(_conn(0x3FA685, 0x1000000, attrs))
    assert fp.library == "libmysqlclient" and fp.product == "mysql-connector-python"
    assert fp.variant == "C extension"
    assert fp.supports("caching_sha2_password") is True
    assert fp.supports("client_ed25519") is False
    assert fp.label == "mysql-connector-python C extension (libmysqlclient 8.0.33)"


def test_old_libmysqlclient_lacks_caching_sha2():
    fp = fingerprint_connection(
        _conn(0x3FA685, 0x1000000, {"_client_name": "libmysql", "_client_version": "5.7.22"})
    )
    assert fp.supports("caching_sha2_password") is False
    fp = fingerprint_connection(
        _conn(0x3FA685, 0x1000000, {"_client_name": "libmysql", "_client_version": "5.7.23"})
    )
    assert fp.supports("caching_sha2_password") is True
    assert fp.supports("mysql_old_password") is False


def test_oracle_mysql_cli():
    fp = fingerprint_connection(
        _conn(
            0x3FA685,
            0x1000000,
            {"_client_name": "libmysql", "_client_version": "8.0.36", "program_name": "mysql"},
        )
    )
    assert fp.product == "mysql CLI" and fp.label == "mysql CLI (libmysqlclient 8.0.36)"


def test_go_driver_from_its_attribute():
    fp = fingerprint_connection(
        _conn(0x3FA685, 0, {"_client_name": "Go-MySQL-Driver", "_client_version": "1.8.1"})
    )
    assert fp.library == "Go-MySQL-Driver" and fp.version == "1.8.1"
    assert fp.label == "go-sql-driver/mysql (Go-MySQL-Driver 1.8.1)"
    assert fp.confidence == "high"
    assert fp.supports("caching_sha2_password") is True
    assert fp.supports("dialog") is False  # no PAM dialog in go-sql-driver


def test_unknown_driver_passes_through():
    fp = fingerprint_connection(
        _conn(0x3FA685, 0, {"_client_name": "acme-sql", "_client_version": "2.0"})
    )
    assert fp.label == "acme-sql 2.0"
    assert fp.supports("caching_sha2_password") is None  # not in our table
    assert fp.confidence == "medium"
    assert any("not in mysqlwire's client table" in e for e in fp.evidence)


def test_navicat_is_not_named_mysqlclient():
    # zeek's mysql8-navicat-login-failed.pcap: Navicat on Windows, libmariadb 3.2.3
    attrs = {
        "_os": "Windows",
        "_client_name": "libmariadb",
        "_pid": "18464",
        "_thread": "40064",
        "_platform": "AMD64",
        "_client_version": "3.2.3",
        "_server_host": "10.21.20.70",
    }
    fp = fingerprint_connection(_conn(0x80FFA685, 1 << 30, attrs, cs=33))
    assert fp.library == "libmariadb" and fp.product is None
    assert fp.label == "unknown client (libmariadb 3.2.3-based)"
    assert fp.confidence == "high"  # what the label says is sure
    assert fp.supports("client_ed25519") is True  # the library is still known


def test_dbd_mariadb_shape_is_not_named_connector_python():
    # DBD::MariaDB sets CLIENT_FOUND_ROWS (mariadb_client_found_rows=1 by default):
    # libmariadb attributes without program_name, a shape no lab product has
    attrs = {"_os": "Linux", "_client_name": "libmariadb", "_pid": "1", "_client_version": "3.3.8"}
    fp = fingerprint_connection(_conn(0xBEA286, 1 << 20, attrs))
    assert fp.product is None and fp.label == "unknown client (libmariadb 3.3.8-based)"


def test_lab_product_shapes_are_medium_confidence():
    attrs = {"_os": "Linux", "_client_name": "libmariadb", "_pid": "1", "_client_version": "3.3.20"}
    fp = fingerprint_connection(_conn(0xBFA28C, 1 << 20, attrs))
    assert fp.product == "mysqlclient" and fp.product_likely and fp.confidence == "medium"
    assert fp.label == "libmariadb 3.3.20 (likely mysqlclient)"
    fp = fingerprint_connection(_conn(0xBEA284, 1 << 20, attrs))
    assert fp.product == "MariaDB Connector/Python" and fp.confidence == "medium"
    # the same capabilities with another max_packet_size: not the lab's mysqlclient
    fp = fingerprint_connection(_conn(0xBFA28C, 1 << 30, attrs))
    assert fp.product is None


def test_nothing_to_identify():
    fp = fingerprint_connection(_conn())
    assert not fp.known and fp.supports("caching_sha2_password") is None
    assert "no handshake response" in fp.evidence[0]


def test_pre_41_client():
    fp = fingerprint_connection(_conn(0x0005, 0xFFFFFF))
    assert fp.library == "pre-4.1 client"


def test_parse_version():
    assert parse_version("1.2.4") == (1, 2, 4)
    assert parse_version("8.0.36-log") == (8, 0, 36)
    assert parse_version("3.3.20") == (3, 3, 20)
    assert parse_version("x") is None
    assert parse_version(None) is None


def test_to_dict_keys():
    d = fingerprint_connection(_conn(PYMYSQL_CAPS_07, 1, None, cs=8)).to_dict()
    assert d["library"] == "PyMySQL" and d["version_range"] == "< 0.8" and d["source"] == "shape"
    assert "mysql_native_password" in d["plugins"] and "caching_sha2_password" not in d["plugins"]


def test_attribute_order_is_evidence():
    attrs = {"_client_name": "pymysql", "_client_version": "1.2.4", "_pid": "1"}
    fp = fingerprint_connection(_conn(PYMYSQL_CAPS_09, 0xFFFFFF, attrs))
    assert any("attribute order is PyMySQL's" in e for e in fp.evidence)
    shuffled = {"_pid": "1", "_client_version": "1.2.4", "_client_name": "pymysql"}
    fp = fingerprint_connection(_conn(PYMYSQL_CAPS_09, 0xFFFFFF, shuffled))
    assert not any("attribute order" in e for e in fp.evidence)
