"""What mysqlwire knows about client libraries, as data.

One :class:`ClientLibrary` entry per protocol implementation: how it names
itself on the wire (``_client_name`` attribute values, attribute order,
capability signatures), which authentication plugins it can answer per
version, whether it follows a second AuthSwitchRequest, and how to phrase a
fix for it (``fixes``: situation -> text).  ``fingerprint.py`` identifies a
client from this table and ``rules`` asks :func:`fix_for` for advice, so
adding a library is one entry here (plus a test with a capture of it).

Fix situations (keys of ``ClientLibrary.fixes``; the text may use
``{plugin}``):

- ``use_tls``: how to turn TLS on;
- ``enable_cleartext``: how to let it answer mysql_clear_password;
- ``rsa_key``: how to let it fetch or pin the server's RSA key
  (caching_sha2/sha256 full authentication without TLS);
- ``native``: how to let it use mysql_native_password;
- ``plugin:<name>``: how to make it answer plugin <name> (when it can);
- ``lacks:<name>``: what to do when it cannot answer <name>;
- ``old_password``: how it answers the pre-4.1 old-password switch.

Facts come from the libraries' sources and documentation; a ``Support``
with ``note="approx..."`` has a version bound that was not pinned down, and
``seen_in_lab=False`` marks an entry not yet checked against a capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Version = tuple[int, ...]


@dataclass(frozen=True)
class Support:
    """One plugin a library can answer: (plugin, min version incl., max
    version excl., note).  None bounds = every version."""

    plugin: str
    min: Version | None = None
    max: Version | None = None
    note: str = ""
    tls_only: bool = False  # the client refuses this plugin on a plain connection
    opt_in: bool = False  # only when the application enables it (see fixes["enable_cleartext"])
    rsa_opt_in: bool = False  # sha2/sha256 without TLS: fetches the RSA key only when told to


@dataclass(frozen=True)
class Signature:
    """A HandshakeResponse shape observed for one product on a library.
    ``caps`` is compared after masking out ``VARIABLE_CAPS`` (bits an
    application toggles: database, TLS, compression, LOCAL INFILE)."""

    product: str
    caps: int
    max_packet: int | None = None
    collation: int | None = None
    note: str = ""
    below: Version | None = None  # only versions below this send this shape
    program: bool = False  # the product also sends program_name (its script's name)


@dataclass(frozen=True)
class ClientLibrary:
    name: str  # Fingerprint.library
    family: str  # "libmariadb", "libmysqlclient", "python", "go", "node", "php", "java", ...
    client_names: tuple[str, ...] = ()  # lower-cased _client_name values that name it
    products: tuple[str, ...] = ()  # what users run on it
    plugins: tuple[Support, ...] = ()
    multi_switch: bool | None = None  # follows a second AuthSwitchRequest
    attr_order: tuple[str, ...] = ()  # its default connect attributes, in wire order
    signatures: tuple[Signature, ...] = ()  # shapes of the products on it (with attributes)
    # shapes that name the library itself when it sends no connect attributes at all
    shapes: tuple[Signature, ...] = ()
    fixes: dict[str, str] = field(default_factory=dict)
    # the same situations phrased for one product on the library (its own option names)
    product_fixes: dict[str, dict[str, str]] = field(default_factory=dict)
    seen_in_lab: bool = True


# Capability bits an application may toggle without changing library.
# CONNECT_WITH_DB, COMPRESS, LOCAL_FILES, SSL, LONG_PASSWORD, SSL_VERIFY_SERVER_CERT (bit 30: set
# by libmariadb and mysqlnd when the application verifies the server's certificate)
VARIABLE_CAPS = 0x8 | 0x20 | 0x80 | 0x800 | 0x1 | 0x40000000

_C_LIB_CLEARTEXT = (
    "enable the clear-text plugin: mysql --enable-cleartext-plugin, LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1, "
    "or mysql_options(MYSQL_ENABLE_CLEARTEXT_PLUGIN); and use TLS"
)

LIBRARIES: list[ClientLibrary] = [
    ClientLibrary(
        "PyMySQL",
        "python",
        client_names=("pymysql",),
        products=("PyMySQL",),
        plugins=(
            Support("mysql_native_password"),
            Support(
                "mysql_old_password", note="named switch; the bare 0xFE old switch only before 1.1"
            ),
            Support(
                "mysql_clear_password",
                note="no opt-in: answers the switch with the password in clear",
            ),
            Support("dialog", note="answers 'Password: ' prompts; others need auth_plugin_map"),
            Support(
                "caching_sha2_password", (0, 9), note="RSA path needs the 'cryptography' package"
            ),
            Support("sha256_password", (0, 9), note="RSA path needs the 'cryptography' package"),
            Support("client_ed25519", (1, 0), note="needs PyNaCl"),
        ),
        multi_switch=False,
        attr_order=("_client_name", "_client_version", "_pid"),
        fixes={
            "use_tls": "PyMySQL: ssl={'ca': '/path/ca.pem'} (or ssl_ca=...)",
            "enable_cleartext": "PyMySQL answers mysql_clear_password by itself; connect with TLS (ssl={'ca': ...})",
            "rsa_key": "PyMySQL fetches the key by itself (needs the 'cryptography' package); or server_public_key=...",
            "lacks:caching_sha2_password": "upgrade PyMySQL to >= 0.9 (1.x recommended): pip install -U 'PyMySQL[rsa]'",
            "lacks:sha256_password": "upgrade PyMySQL to >= 0.9 (1.x recommended): pip install -U 'PyMySQL[rsa]'",
            "lacks:client_ed25519": "upgrade PyMySQL to >= 1.0 and install PyNaCl: pip install -U 'PyMySQL[ed25519]'",
            "lacks:dialog": (
                "PyMySQL cannot follow MariaDB's PAM dialog: use MariaDB Connector/Python (pip install mariadb) or "
                "mysqlclient, or have the server take the password with mysql_clear_password "
                "(pam_use_cleartext_plugin=ON) over TLS"
            ),
        },
    ),
    ClientLibrary(
        "mysql-connector-python",
        "python",
        client_names=("mysql-connector-python",),
        products=("mysql-connector-python",),
        plugins=(  # pure-Python build (plugins/*.py)
            Support("mysql_native_password"),
            Support(
                "caching_sha2_password",
                note="no RSA path: full authentication sends the password as typed",
            ),
            Support("sha256_password", note="TLS only (no RSA path)", tls_only=True),
            Support("mysql_clear_password", note="TLS only", tls_only=True),
            Support("authentication_ldap_sasl_client"),
            Support("authentication_kerberos_client"),
            Support("authentication_webauthn_client"),
            Support("authentication_oci_client"),
            Support("authentication_openid_connect_client"),
        ),
        attr_order=(
            "_pid",
            "_platform",
            "_source_host",
            "_client_name",
            "_client_license",
            "_client_version",
            "_os",
        ),
        fixes={
            "use_tls": "mysql-connector-python: ssl_ca=... (do not set ssl_disabled=True)",
            "enable_cleartext": "mysql-connector-python sends mysql_clear_password only over TLS: connect with TLS (ssl_ca=..., ssl_disabled=False)",
            "rsa_key": (
                "mysql-connector-python (pure) has no RSA path and sends the password as typed: connect with TLS "
                "(its default when the server offers it; do not set ssl_disabled=True), or use the C extension "
                "(use_pure=False), which does the RSA exchange"
            ),
            "lacks:*": (
                "mysql-connector-python has no {plugin} plugin: use MariaDB Connector/Python (pip install mariadb) "
                "or PyMySQL >= 1.0 (+ PyNaCl for ed25519)"
            ),
        },
    ),
    ClientLibrary(
        "libmariadb",
        "libmariadb",
        client_names=("libmariadb",),
        products=(
            "mariadb CLI",
            "MariaDB Connector/Python",
            "mysqlclient",
            "DBD::MariaDB",
            "Ruby mysql2",
        ),
        plugins=(  # MariaDB Connector/C
            Support("mysql_native_password"),
            Support("mysql_old_password"),
            Support("mysql_clear_password"),
            Support("dialog"),
            Support("client_ed25519", note="plugin file client_ed25519.so"),
            Support("caching_sha2_password", (3, 0, 8), note="approx. lower bound"),
            Support("sha256_password", (3, 0, 8), note="approx. lower bound"),
            Support("auth_gssapi_client"),
            Support("parsec", (3, 4), note="approx. lower bound"),
        ),
        multi_switch=True,
        attr_order=("_os", "_client_name", "_pid", "_client_version", "_platform"),
        signatures=(
            Signature(
                "mysqlclient",
                0xBFA284,
                1 << 20,
                note="CLIENT_MULTI_STATEMENTS, 1 MiB (lab: mysqlclient 2.3.2)",
            ),
            Signature(
                "MariaDB Connector/Python",
                0xBEA284,
                1 << 20,
                note="no CLIENT_MULTI_STATEMENTS, 1 MiB (lab: MariaDB Connector/Python 1.1)",
            ),
            Signature(
                "DBD::MariaDB",
                0x80BEA286,
                1 << 20,
                note="CLIENT_REMEMBER_OPTIONS and CLIENT_FOUND_ROWS, no program_name, 1 MiB "
                "(lab: DBD::MariaDB 1.22 on libmariadb 3.3)",
            ),
            Signature(
                "DBD::mysql",
                0xBEA286,
                1 << 20,
                note="CLIENT_FOUND_ROWS without CLIENT_REMEMBER_OPTIONS, with program_name = the "
                "script ($0) (lab: DBD::mysql 4.050 on libmariadb 3.3)",
                program=True,
            ),
            Signature(
                "Ruby mysql2",
                0x80BEA284,
                1 << 20,
                note="CLIENT_REMEMBER_OPTIONS without CLIENT_FOUND_ROWS, with program_name = the "
                "script ($0) (lab: mysql2 0.5.3 on libmariadb 3.3)",
                program=True,
            ),
        ),
        fixes={
            "use_tls": "mariadb --ssl (libmariadb: MYSQL_OPT_SSL_ENFORCE / ssl=True in Connector/Python)",
            "rsa_key": "libmariadb: --server-public-key=/path/public_key.pem (or MYSQL_SERVER_PUBLIC_KEY), or TLS",
            "lacks:*": (
                "install or point the client at libmariadb's {plugin}.so (Debian/Ubuntu: package libmariadb3, "
                "/usr/lib/<arch>/libmariadb3/plugin/; option --plugin-dir / MARIADB_PLUGIN_DIR)"
            ),
        },
        product_fixes={
            "DBD::MariaDB": {
                "use_tls": "DBD::MariaDB: mariadb_ssl=1;mariadb_ssl_ca_file=/path/ca.pem;mariadb_ssl_verify_server_cert=1 in the DSN",
            },
            "DBD::mysql": {
                "use_tls": (
                    "DBD::mysql: mysql_ssl=1;mysql_ssl_ca_file=/path/ca.pem in the DSN, plus "
                    "mysql_ssl_optional=1 when built on libmariadb (mysql_ssl=1 alone fails there with "
                    "'Enforcing SSL encryption is not supported'; lab: 4.050)"
                ),
            },
            "Ruby mysql2": {
                "use_tls": "Ruby mysql2: Mysql2::Client.new(..., sslca: '/path/ca.pem', sslverify: true)",
            },
            "MariaDB Connector/Python": {
                "use_tls": "MariaDB Connector/Python: mariadb.connect(..., ssl=True, ssl_ca='/path/ca.pem')",
            },
            "mysqlclient": {
                "use_tls": "mysqlclient: MySQLdb.connect(..., ssl={'ca': '/path/ca.pem'})",
            },
        },
    ),
    ClientLibrary(
        "libmysqlclient",
        "libmysqlclient",
        client_names=("libmysql", "libmysqlclient"),
        products=("mysql CLI", "mysqlclient", "mysql-connector-python C extension", "DBD::mysql"),
        plugins=(  # Oracle's C library
            Support("mysql_native_password"),
            Support("mysql_old_password", None, (5, 7), note="removed in 5.7"),
            Support(
                "mysql_clear_password",
                note="only when enabled: --enable-cleartext-plugin / LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1 / MYSQL_ENABLE_CLEARTEXT_PLUGIN",
                opt_in=True,
            ),
            Support("caching_sha2_password", (5, 7, 23)),
            Support("sha256_password", (5, 6, 6)),
            Support("authentication_ldap_sasl_client", (8, 0)),
            Support("authentication_kerberos_client", (8, 0, 26)),
            Support("authentication_fido_client", (8, 0, 27)),
            Support("authentication_webauthn_client", (8, 2)),
        ),
        multi_switch=True,
        fixes={
            "use_tls": "mysql --ssl-mode=REQUIRED (MYSQL_OPT_SSL_MODE)",
            "enable_cleartext": _C_LIB_CLEARTEXT,
            "rsa_key": "mysql --get-server-public-key (MYSQL_OPT_GET_SERVER_PUBLIC_KEY) or --server-public-key-path=/path/public_key.pem",
            "lacks:caching_sha2_password": "upgrade libmysqlclient (and the programs linked to it) to >= 5.7.23 or 8.0",
            "lacks:*": (
                "Oracle's libmysqlclient has no MariaDB plugin {plugin}: use the MariaDB client library "
                "(libmariadb / MariaDB Connector/C, or mysqlclient built against it)"
            ),
        },
    ),
    # ---- checked against the lab's captures (captures/clients, tests/lab/ext_scenarios.py) ----
    ClientLibrary(
        "Go-MySQL-Driver",
        "go",
        client_names=("go-mysql-driver",),
        products=("go-sql-driver/mysql",),
        plugins=(
            Support("mysql_native_password", note="allowNativePasswords=true (the default)"),
            Support("mysql_old_password", note="only with allowOldPasswords=true", opt_in=True),
            Support(
                "mysql_clear_password",
                note="only with allowCleartextPasswords=true (lab: 1.5.0 refuses and closes)",
                opt_in=True,
            ),
            Support("caching_sha2_password", (1, 4), note="asks for the RSA key by itself"),
            Support("sha256_password", (1, 4), note="asks for the RSA key by itself"),
            Support("client_ed25519", (1, 8), note="added in 1.8.0; lab: 1.5.0 has none"),
        ),
        multi_switch=False,
        shapes=(
            Signature(
                "go-sql-driver/mysql",
                0xAA284,
                0,
                45,
                note="no connect attributes, max_packet_size 0, utf8mb4_general_ci, no "
                "CLIENT_CONNECT_ATTRS (lab: go-sql-driver/mysql 1.5.0; 1.8+ sends attributes)",
                below=(1, 8),
            ),
        ),
        fixes={
            "use_tls": "go-sql-driver/mysql: DSN parameter tls=true (or tls=skip-verify / a name registered with mysql.RegisterTLSConfig)",
            "enable_cleartext": "go-sql-driver/mysql: DSN parameter allowCleartextPasswords=true, together with tls=true",
            "rsa_key": "go-sql-driver/mysql: register the key with mysql.RegisterServerPubKey and set serverPubKey=<name> in the DSN, or tls=true",
            "native": "go-sql-driver/mysql: DSN parameter allowNativePasswords=true",
            "old_password": "go-sql-driver/mysql: DSN parameter allowOldPasswords=true (better: rehash the account)",
            "lacks:client_ed25519": "upgrade go-sql-driver/mysql to >= 1.8 (client_ed25519 support)",
            "lacks:*": "go-sql-driver/mysql has no {plugin} plugin (no PAM dialog, no GSSAPI)",
        },
    ),
    ClientLibrary(
        "mysqljs",
        "node",
        client_names=("mysqljs",),  # sends no attributes; kept for the table
        products=("node mysql",),
        plugins=(
            Support("mysql_native_password"),
            Support("mysql_old_password", note="insecureAuth: true"),
        ),
        multi_switch=False,
        shapes=(
            Signature(
                "node mysql",
                0x6F3C6,
                0,
                33,
                note="no CLIENT_PLUGIN_AUTH, no connect attributes, max_packet_size 0, "
                "utf8_general_ci (lab: mysql 2.18.1); a server cannot switch it: ERR 1251",
            ),
        ),
        fixes={
            "use_tls": "node mysql: ssl: {ca: fs.readFileSync('ca.pem')}",
            "lacks:*": (
                "node mysql (mysqljs) sets no CLIENT_PLUGIN_AUTH and only speaks "
                "mysql_native_password: move to mysql2 (npm install mysql2; the API is compatible)"
            ),
        },
    ),
    ClientLibrary(
        "node-mysql2",
        "node",
        client_names=("node-mysql2", "node-mysql-2"),
        products=("node mysql2",),
        plugins=(
            Support("mysql_native_password"),
            Support(
                "caching_sha2_password",
                (1, 6),
                note="RSA key only with allowPublicKeyRetrieval / serverPublicKey (lab: 3.26.1)",
                rsa_opt_in=True,
            ),
            Support(
                "sha256_password",
                (1, 6),
                note="RSA key only when allowed (lab: 3.26.1)",
                rsa_opt_in=True,
            ),
            Support(
                "mysql_clear_password",
                note="only with enableCleartextPlugin: true or an authPlugins entry",
                opt_in=True,
            ),
        ),
        multi_switch=False,
        attr_order=("_client_name", "_client_version"),
        fixes={
            "use_tls": "mysql2: ssl: {ca: fs.readFileSync('ca.pem')}",
            "enable_cleartext": "mysql2: enableCleartextPlugin: true (or authPlugins: {mysql_clear_password: ...}), over ssl",
            "rsa_key": "mysql2: ssl: {ca: ...} (best), or serverPublicKey: fs.readFileSync('public_key.pem'), or allowPublicKeyRetrieval: true",
            "lacks:*": "mysql2 has no built-in {plugin} (no PAM dialog, no ed25519): add one with the authPlugins option",
        },
    ),
    ClientLibrary(
        "mysqlnd",
        "php",
        client_names=("mysqlnd",),
        products=("PHP (PDO_MySQL / mysqli)",),
        plugins=(
            Support("mysql_native_password"),
            Support("mysql_clear_password", note="no opt-in: sends it over plain TCP (lab: 8.2)"),
            Support("sha256_password", (7, 0), note="approx.; RSA needs the openssl extension"),
            Support("caching_sha2_password", (7, 4), note="approx. lower bound"),
        ),
        multi_switch=False,
        signatures=(
            Signature(
                "PHP PDO_MySQL",
                0x1BA284,
                0xC0000000,
                note="CLIENT_MULTI_STATEMENTS (PDO::MYSQL_ATTR_MULTI_STATEMENTS defaults on), "
                "max_packet_size 3 GiB (lab: PHP 8.2 mysqlnd)",
            ),
            Signature(
                "PHP mysqli",
                0x1AA284,
                0xC0000000,
                note="no CLIENT_MULTI_STATEMENTS, max_packet_size 3 GiB (lab: PHP 8.2 mysqlnd)",
            ),
        ),
        fixes={
            "use_tls": "PDO: PDO::MYSQL_ATTR_SSL_CA => '/path/ca.pem'; mysqli: mysqli_ssl_set() + MYSQLI_CLIENT_SSL",
            "rsa_key": "PDO: PDO::MYSQL_ATTR_SERVER_PUBLIC_KEY; mysqli: mysqli.server_public_key",
            "lacks:*": "PHP mysqlnd has no {plugin} plugin (no PAM dialog, no ed25519)",
        },
    ),
    ClientLibrary(
        "MariaDB Connector/J",
        "java",
        client_names=("mariadb connector/j",),
        products=("MariaDB Connector/J",),
        plugins=(
            Support("mysql_native_password", note="2.x always starts with it (then is switched)"),
            Support("mysql_clear_password", note="only over TLS (lab: 2.7.6)", tls_only=True),
            Support("dialog"),
            Support("client_ed25519"),
            Support("auth_gssapi_client"),
            Support(
                "caching_sha2_password",
                note="RSA key only with allowPublicKeyRetrieval=true or serverRsaPublicKeyFile",
                rsa_opt_in=True,
            ),
            Support(
                "sha256_password",
                note="RSA key only when allowed, as caching_sha2",
                rsa_opt_in=True,
            ),
            Support("parsec", (3, 5), note="approx. lower bound"),
        ),
        multi_switch=True,
        attr_order=("_client_name", "_client_version", "_server_host", "_os", "_pid"),
        fixes={
            "use_tls": "MariaDB Connector/J: useSsl=true&serverSslCert=/path/ca.pem (2.x) or sslMode=verify-full (3.x) in the JDBC URL",
            "enable_cleartext": "MariaDB Connector/J sends mysql_clear_password only over TLS: useSsl=true (2.x) / sslMode=verify-full (3.x)",
            "rsa_key": "MariaDB Connector/J: allowPublicKeyRetrieval=true or serverRsaPublicKeyFile=/path/public_key.pem",
            "lacks:*": "MariaDB Connector/J cannot answer {plugin}: upgrade it",
        },
    ),
]

BY_NAME: dict[str, ClientLibrary] = {lib.name: lib for lib in LIBRARIES}
_BY_CLIENT_NAME: dict[str, ClientLibrary] = {n: lib for lib in LIBRARIES for n in lib.client_names}

# Who can answer a plugin (for "use a client that ..." fixes).
IMPLEMENTERS = {
    "caching_sha2_password": "PyMySQL >= 0.9 (+ cryptography), mysql-connector-python, libmysqlclient >= 5.7.23/8.0, libmariadb >= 3.0.8",
    "sha256_password": "PyMySQL >= 0.9 (+ cryptography), mysql-connector-python (TLS only), libmysqlclient >= 5.6.6, libmariadb >= 3.0.8",
    "client_ed25519": (
        "libmariadb (mariadb CLI, MariaDB Connector/Python, mysqlclient built on libmariadb, Perl "
        "DBD::MariaDB / DBD::mysql and Ruby mysql2 on libmariadb), MariaDB Connector/J, "
        "go-sql-driver/mysql >= 1.8 or PyMySQL >= 1.0 with PyNaCl"
    ),
    "parsec": "libmariadb >= 3.4 (MariaDB 11.6+ clients)",
    "dialog": (
        "libmariadb (mariadb CLI, MariaDB Connector/Python, Perl DBD::MariaDB / DBD::mysql and Ruby "
        "mysql2 on libmariadb), MariaDB Connector/J or PyMySQL (password prompts)"
    ),
    "mysql_old_password": "libmariadb with secure_auth off, PyMySQL < 1.1, libmysqlclient < 5.7",
    "mysql_clear_password": "every major client, some only when enabled",
    "auth_gssapi_client": "libmariadb, MariaDB Connector/J",
    "authentication_ldap_sasl_client": "libmysqlclient 8.0+, mysql-connector-python",
    "authentication_kerberos_client": "libmysqlclient 8.0.26+, mysql-connector-python",
    "authentication_fido_client": "libmysqlclient 8.0.27+ (MySQL Enterprise)",
    "authentication_webauthn_client": "libmysqlclient 8.2+, mysql-connector-python",
}


def library(name: str | None) -> ClientLibrary | None:
    return BY_NAME.get(name or "")


def by_client_name(value: str | None) -> ClientLibrary | None:
    """The library whose ``_client_name`` attribute is ``value``."""
    return _BY_CLIENT_NAME.get((value or "").strip().lower())


def plugin_support(name: str | None) -> tuple[Support, ...] | None:
    lib = library(name)
    return lib.plugins if lib is not None and lib.plugins else None


def multi_switch(name: str | None) -> bool | None:
    lib = library(name)
    return lib.multi_switch if lib is not None else None


def fix_for(
    name: str | None, situation: str, plugin: str | None = None, product: str | None = None
) -> str | None:
    """The library's own phrasing for ``situation`` (see the module doc), or
    None: the product's (``product_fixes``) first, when the product is known.
    ``lacks:<plugin>`` falls back to the library's ``lacks:*``."""
    lib = library(name)
    if lib is None:
        return None
    text = lib.product_fixes.get(product or "", {}).get(situation) or lib.fixes.get(situation)
    if text is None and situation.startswith("lacks:"):
        text = lib.fixes.get("lacks:*")
    if text is None:
        return None
    return text.replace("{plugin}", plugin or "?")


def match_shape(
    caps: int | None, max_packet: int | None, collation: int | None
) -> tuple[ClientLibrary, Signature] | None:
    """The library that sends no connect attributes and whose HandshakeResponse
    shape this is (capabilities without VARIABLE_CAPS, max_packet_size and
    collation all equal), if exactly one matches."""
    if caps is None:
        return None
    core = caps & ~VARIABLE_CAPS
    hits = [
        (lib, s)
        for lib in LIBRARIES
        for s in lib.shapes
        if (s.caps & ~VARIABLE_CAPS) == core
        and (s.max_packet is None or s.max_packet == max_packet)
        and (s.collation is None or s.collation == collation)
    ]
    return hits[0] if len(hits) == 1 else None


def match_signature(
    name: str | None, caps: int | None, max_packet: int | None, *, program: bool = False
) -> Signature | None:
    """The product whose observed HandshakeResponse shape this is, if exactly one matches;
    ``program``: the response also had a program_name attribute (only products that send one)."""
    lib = library(name)
    if lib is None or caps is None:
        return None
    core = caps & ~VARIABLE_CAPS
    hits = [
        s
        for s in lib.signatures
        if (s.caps & ~VARIABLE_CAPS) == core
        and (s.max_packet is None or s.max_packet == max_packet)
        and s.program == program
    ]
    return hits[0] if len(hits) == 1 else None
