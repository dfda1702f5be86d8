"""Fingerprints and plugin knowledge of the lab's non-Python clients, against their captures
(captures/clients: Go go-sql-driver, node mysql/mysql2, PHP PDO/mysqli, Perl DBD::MariaDB/DBD::mysql,
Ruby mysql2, MariaDB Connector/J; scripts/make_client_captures.py). The expected library and product
come from which client the lab started (truth.jsonl ``client_kind``), never from mysqlwire."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mysqlwire.diagnose import clients
from mysqlwire.diagnose.fingerprint import fingerprint_connection
from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.tls import KeyLog

from .lab.extclients import IDENTITY

FOLDER = Path(__file__).resolve().parent.parent / "captures" / "clients"
TRUTH = [json.loads(x) for x in (FOLDER / "truth.jsonl").read_text().splitlines() if x.strip()]
# what the client that the lab started IS: (library, product)
EXPECTED = IDENTITY
# visible handshake responses: plain TCP, or TLS with its key log
VISIBLE = [t for t in TRUTH if not t["tls"] or t["keylog"]]


def _conn(t: dict):
    kl = KeyLog.from_file(FOLDER / t["keylog"]) if t["keylog"] else None
    (c,) = list(iter_connections(FOLDER / t["pcap"], DissectOptions(ports=(t["port"],), keylog=kl)))
    return c


def test_every_new_client_has_captures():
    assert {t["client_kind"] for t in TRUTH} == set(EXPECTED)
    assert len(VISIBLE) >= 80


@pytest.mark.parametrize("t", VISIBLE, ids=[t["scenario"] for t in VISIBLE])
def test_fingerprint_names_the_client(t):
    fp = fingerprint_connection(_conn(t))
    library, product = EXPECTED[t["client_kind"]]
    assert (fp.library, fp.product) == (library, product), fp.evidence
    assert fp.evidence and fp.confidence in ("high", "medium")
    if fp.version and library != "libmariadb":  # read off the wire: the version the lab ran
        assert fp.version in t["client"]
    # products told apart only by their shape say so
    assert fp.product_likely == (
        t["client_kind"] in ("php-pdo", "php-mysqli", "perl-mariadb", "perl-mysql", "ruby-mysql2")
    )


@pytest.mark.parametrize("t", VISIBLE, ids=[t["scenario"] for t in VISIBLE])
def test_plugin_support_agrees_with_what_the_client_did(t):
    fp = fingerprint_connection(_conn(t))
    code = t["expected_code"]
    switches = t["switches"]
    if code == "CLIENT_LACKS_PLUGIN":  # at the login, or at a later COM_CHANGE_USER
        where = switches or (t.get("change_user") or {}).get("switches")
        assert fp.supports(where[-1]) is False
    elif t["outcome"] == "ok":
        for plugin in switches + [t["plugin_client"]]:
            if plugin:
                assert fp.supports(plugin) is not False, plugin
    elif code == "CLEARTEXT_NOT_ENABLED":
        row = fp.support("mysql_clear_password")
        assert row is not None and (row.opt_in or row.tls_only)
        assert clients.fix_for(fp.library, "enable_cleartext")
    elif code == "SECURE_CHANNEL_REQUIRED":
        assert fp.supports(switches[-1] if switches else "caching_sha2_password")
        assert clients.fix_for(fp.library, "rsa_key")
    elif code == "CLIENT_PROTOCOL_TOO_OLD":
        assert fp.library == "mysqljs" and not fp.supports("caching_sha2_password")


@pytest.mark.parametrize("library", sorted({lib for lib, _ in EXPECTED.values()}))
def test_fixes_are_phrased_for_the_client(library):
    lib = clients.library(library)
    assert lib is not None and lib.seen_in_lab
    assert clients.fix_for(library, "use_tls")
    text = clients.fix_for(library, "lacks:dialog", "dialog") or ""
    if library in ("Go-MySQL-Driver", "node-mysql2", "mysqlnd", "mysqljs"):
        assert text, library


def test_fixes_name_each_clients_own_options():
    assert "allowCleartextPasswords=true" in clients.fix_for("Go-MySQL-Driver", "enable_cleartext")
    assert "tls=" in clients.fix_for("Go-MySQL-Driver", "use_tls")
    assert "allowNativePasswords" in clients.fix_for("Go-MySQL-Driver", "native")
    assert "enableCleartextPlugin" in clients.fix_for("node-mysql2", "enable_cleartext")
    assert "authPlugins" in clients.fix_for("node-mysql2", "lacks:client_ed25519", "client_ed25519")
    assert "allowPublicKeyRetrieval" in clients.fix_for("node-mysql2", "rsa_key")
    assert "PDO::MYSQL_ATTR_SSL_CA" in clients.fix_for("mysqlnd", "use_tls")
    assert "allowPublicKeyRetrieval=true" in clients.fix_for("MariaDB Connector/J", "rsa_key")
    assert "useSsl=true" in clients.fix_for("MariaDB Connector/J", "use_tls")
    assert "mysql_ssl_optional=1" in clients.fix_for("libmariadb", "use_tls", product="DBD::mysql")
    assert "mariadb_ssl=1" in clients.fix_for("libmariadb", "use_tls", product="DBD::MariaDB")
    assert "sslca:" in clients.fix_for("libmariadb", "use_tls", product="Ruby mysql2")
    # an unknown product on the library gets the library's phrasing
    assert clients.fix_for("libmariadb", "use_tls", product="Navicat").startswith("mariadb --ssl")


def test_no_shape_collides_with_another_library():
    """Each attribute-less shape names exactly one library, and no product signature matches
    another product's capabilities."""
    for lib in clients.LIBRARIES:
        for s in lib.shapes:
            hit = clients.match_shape(s.caps, s.max_packet, s.collation)
            assert hit is not None and hit[0].name == lib.name
        for s in lib.signatures:
            assert clients.match_signature(lib.name, s.caps, s.max_packet, program=s.program) == s


def _diagnose(t: dict) -> list[str]:
    from mysqlwire.diagnose import diagnose_connection
    from mysqlwire.replay import Secrets

    ap = t["account_password"]
    return [f.code for f in diagnose_connection(_conn(t), Secrets(password=ap) if ap else None)]


@pytest.mark.parametrize("t", VISIBLE, ids=[t["scenario"] for t in VISIBLE])
def test_cleartext_finding_only_where_the_client_sent_clear_text(t):
    """CLEARTEXT_WITHOUT_TLS exactly where the lab knows the password went in clear (a PAM
    dialog / mysql_clear_password answer on plain TCP); never for RSA ciphertext, which ends
    in a NUL byte one time in 256 (php_mysqli_serve_sha2_wrong's does)."""
    sent_clear = "CLEARTEXT_WITHOUT_TLS" in (t["expected_code"], *t["other_codes"])
    assert ("CLEARTEXT_WITHOUT_TLS" in _diagnose(t)) == sent_clear
