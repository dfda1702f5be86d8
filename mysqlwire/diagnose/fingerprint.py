"""Which client library spoke: connect attributes first, then packet shape.

Sources of evidence, strongest first:

1. connection attributes (``_client_name``, ``_client_version``,
   ``_connector_name``, ``program_name``, ``_runtime_version``) — sent by
   PyMySQL >= 0.9, mysql-connector-python, libmariadb, libmysqlclient and most
   modern drivers;
2. the HandshakeResponse shape: capability bits (PyMySQL's fixed
   ``CLIENT.CAPABILITIES`` set, mysqlclient's ``MULTI_STATEMENTS``),
   ``max_packet_size`` (PyMySQL < 0.9 sends 1, PyMySQL >= 0.9 16 MiB - 1,
   mysql-connector-python 1 GiB, libmariadb 1 MiB) and the client collation;
3. nothing (no response seen): an unknown client.

What each library can answer, its attribute order, its observed packet
shapes and its fix phrasing are data in :mod:`mysqlwire.diagnose.clients`.

A fingerprint names a product only from evidence and says how sure it is
(``confidence``: high = the attributes name it; medium = the packet shape
matches one seen in the lab; low = a partial shape).  A libmariadb /
libmysqlclient client whose application is not named and whose shape matches
no known product is "unknown client (libmariadb 3.2.3-based)".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import Connection
from . import clients
from .clients import Support

# capability bits used here
LONG_PASSWORD = 0x1
FOUND_ROWS = 0x2
LONG_FLAG = 0x4
CONNECT_WITH_DB = 0x8
COMPRESS = 0x20
LOCAL_FILES = 0x80
PROTOCOL_41 = 0x200
SSL = 0x800
TRANSACTIONS = 0x2000
SECURE_CONNECTION = 0x8000
MULTI_STATEMENTS = 0x10000
MULTI_RESULTS = 0x20000
PS_MULTI_RESULTS = 0x40000
PLUGIN_AUTH = 0x80000
CONNECT_ATTRS = 0x100000
PLUGIN_AUTH_LENENC = 0x200000
CAN_HANDLE_EXPIRED = 0x400000
SESSION_TRACK = 0x800000
DEPRECATE_EOF = 0x1000000
QUERY_ATTRIBUTES = 0x8000000
MULTI_FACTOR = 0x10000000

# PyMySQL's CLIENT.CAPABILITIES (constants/CLIENT.py) per release line; the
# application may add CONNECT_WITH_DB (db=), SSL, LOCAL_FILES, FOUND_ROWS,
# MULTI_STATEMENTS (client_flag=) and COMPRESS.
_PYMYSQL_OPTIONAL = CONNECT_WITH_DB | SSL | LOCAL_FILES | FOUND_ROWS | MULTI_STATEMENTS | COMPRESS
_PYMYSQL_BASE = (
    LONG_PASSWORD
    | LONG_FLAG
    | PROTOCOL_41
    | TRANSACTIONS
    | SECURE_CONNECTION
    | MULTI_RESULTS
    | PLUGIN_AUTH
    | PLUGIN_AUTH_LENENC
)
PYMYSQL_CAPS_09 = _PYMYSQL_BASE | CONNECT_ATTRS  # 0x3aa205, PyMySQL >= 0.9
PYMYSQL_CAPS_08 = _PYMYSQL_BASE  # 0x2aa205, PyMySQL 0.8
PYMYSQL_CAPS_07 = _PYMYSQL_BASE | MULTI_STATEMENTS  # 0x2ba205, PyMySQL <= 0.7 (default)

Version = tuple[int, ...]


_VERSIONS: dict[str, Version | None] = {}  # few distinct version strings per capture


def parse_version(text: str | None) -> Version | None:
    """'1.2.4' -> (1, 2, 4); '8.0.36-log' -> (8, 0, 36); junk -> None."""
    if not text:
        return None
    if text.__class__ is str:
        if text in _VERSIONS:
            return _VERSIONS[text]
        if len(_VERSIONS) > 4096:  # bounded whatever the capture holds
            _VERSIONS.clear()
        v = _VERSIONS[text] = _parse_version(text)
        return v
    return _parse_version(text)


def _parse_version(text) -> Version | None:
    out: list[int] = []
    for part in str(text).strip().split("."):
        digits = ""
        for ch in part:
            if ch.isdigit():
                digits += ch
            else:
                break
        if not digits:
            break
        out.append(int(digits))
        if len(digits) != len(part):
            break
    return tuple(out) or None


def format_version(v: Version | None) -> str:
    return ".".join(str(x) for x in v) if v else "?"


# What each client library can answer lives in :mod:`.clients` (one entry per
# library); these views keep the old names.
PLUGIN_SUPPORT: dict[str, list[Support]] = {
    lib.name: list(lib.plugins) for lib in clients.LIBRARIES if lib.plugins
}
MULTI_SWITCH = {
    lib.name: lib.multi_switch for lib in clients.LIBRARIES if lib.multi_switch is not None
}


@dataclass
class Fingerprint:
    """The client we think spoke, and how sure we are."""

    library: str | None = None  # protocol implementation: PyMySQL, libmariadb, ...
    version: str | None = None  # exact library version (from attributes)
    min_version: Version | None = None  # inclusive, when only a range is known
    max_version: Version | None = None  # exclusive
    product: str | None = None  # what the user runs: mariadb CLI, mysqlclient, ...
    product_likely: bool = False  # product is a guess from packet shape
    runtime: str | None = None
    program: str | None = None
    source: str = "unknown"  # attrs | shape | unknown
    evidence: list[str] = field(default_factory=list)
    variant: str | None = None  # e.g. "pure Python", "C extension"
    confidence: str = "low"  # high | medium | low: how sure the label is
    application_unknown: bool = False  # a C library whose application is not named

    # ------------------------------------------------------------ version
    @property
    def version_tuple(self) -> Version | None:
        return parse_version(self.version)

    @property
    def version_text(self) -> str:
        if self.version:
            return self.version
        lo, hi = self.min_version, self.max_version
        if lo and hi:
            if len(lo) == 2 and hi == (lo[0], lo[1] + 1):
                return f"{format_version(lo)}.x"
            return f">= {format_version(lo)}, < {format_version(hi)}"
        if hi:
            return f"< {format_version(hi)}"
        if lo:
            return f">= {format_version(lo)}"
        return ""

    @property
    def label(self) -> str:
        """Human label, e.g. 'PyMySQL 1.2.4', 'mariadb CLI (libmariadb 3.3.20)'."""
        if self.library is None and self.product is None:
            return "an unidentified client"
        lib = " ".join(x for x in (self.library, self.version_text) if x)
        if self.application_unknown and not self.product:
            return f"unknown client ({lib}-based)"
        if self.product and self.product != self.library:
            if self.product_likely:
                return f"{lib} (likely {self.product})"
            product = f"{self.product} {self.variant}" if self.variant else self.product
            return f"{product} ({lib})"
        if self.variant:
            lib += f" ({self.variant})"
        return lib

    @property
    def known(self) -> bool:
        return self.library is not None

    # ------------------------------------------------------------ plugins
    def support(self, plugin: str | None) -> Support | None:
        rows = PLUGIN_SUPPORT.get(self.library or "")
        if not rows or not plugin:
            return None
        for row in rows:
            if row.plugin == plugin:
                return row
        return None

    def supports(self, plugin: str | None) -> bool | None:
        """True/False when the table and the version evidence decide, else None."""
        rows = PLUGIN_SUPPORT.get(self.library or "")
        if rows is None or not plugin:
            return None
        row = self.support(plugin)
        if row is None:
            return False
        v = self.version_tuple
        if v is not None:
            if row.min and v < row.min:
                return False
            if row.max and v >= row.max:
                return False
            return True
        # only a range is known
        lo, hi = self.min_version, self.max_version
        if row.min and hi is not None and hi <= row.min:
            return False
        if row.max and lo is not None and lo >= row.max:
            return False
        if row.min and (lo is None or lo < row.min):
            return None
        if row.max and (hi is None or hi > row.max):
            return None
        return True

    def supported_plugins(self) -> list[str]:
        return [
            row.plugin
            for row in PLUGIN_SUPPORT.get(self.library or "", [])
            if self.supports(row.plugin)
        ]

    def at_least(self, *v: int) -> bool | None:
        mine = self.version_tuple
        if mine is not None:
            return mine >= v
        if self.min_version is not None and self.min_version >= v:
            return True
        if self.max_version is not None and self.max_version <= v:
            return False
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "library": self.library,
            "version": self.version,
            "version_range": None if self.version else (self.version_text or None),
            "product": self.product,
            "product_likely": self.product_likely,
            "variant": self.variant,
            "runtime": self.runtime,
            "program": self.program,
            "source": self.source,
            "confidence": self.confidence,
            "evidence": list(self.evidence),
            "plugins": self.supported_plugins() if self.library in PLUGIN_SUPPORT else None,
        }


ATTR_ORDER = {lib.name: lib.attr_order for lib in clients.LIBRARIES if lib.attr_order}


def _order_matches(library: str | None, keys: list[str]) -> bool:
    want = ATTR_ORDER.get(library or "")
    if not want:
        return False
    got = [k for k in keys if k in want]
    return got == list(want)


def fingerprint_connection(conn: Connection) -> Fingerprint:
    """Identify the client of ``conn`` (never raises)."""
    attrs = conn.connect_attrs or {}
    caps = conn.client_capabilities
    fp = _from_attrs(attrs, caps, conn.max_packet_size) if attrs else None
    if fp is None:
        fp = _from_shape(conn)
    if fp is None:
        fp = Fingerprint()
        if caps is None:
            fp.evidence.append("no handshake response: nothing from the client to identify")
        else:
            fp.evidence.append(f"client capabilities 0x{caps:08x} match no known library")
    if attrs:
        fp.runtime = fp.runtime or attrs.get("_runtime_version")
        fp.program = fp.program or attrs.get("program_name")
        if fp.source == "attrs" and _order_matches(fp.library, list(attrs)):
            fp.evidence.append(
                f"attribute order is {fp.library}'s ({', '.join(ATTR_ORDER[fp.library])})"
            )
    return fp


def _first(attrs: dict, *keys: str) -> str | None:
    for k in keys:
        if attrs.get(k):
            return attrs[k]
    return None


def _from_attrs(
    attrs: dict[str, str], caps: int | None, max_packet: int | None = None
) -> Fingerprint | None:
    name = attrs.get("_client_name")
    version = attrs.get("_client_version")
    program = attrs.get("program_name")
    connector = attrs.get("_connector_name")
    shown = ", ".join(f"{k}={v!r}" for k, v in list(attrs.items())[:8] if k in _SHOWN_ATTRS)
    ev = [f"connect attributes: {shown}"] if shown else []
    known = clients.by_client_name(name)
    low = known.name if known is not None else (name or "").lower()
    if low == "PyMySQL":
        return Fingerprint(
            "PyMySQL",
            version,
            product="PyMySQL",
            program=program,
            source="attrs",
            evidence=ev,
            confidence="high",
        )
    if low == "mysql-connector-python":
        return Fingerprint(
            "mysql-connector-python",
            version,
            product="mysql-connector-python",
            variant="pure Python",
            program=program,
            source="attrs",
            evidence=ev,
            confidence="high",
        )
    if low == "libmariadb":
        fp = Fingerprint(
            "libmariadb", version, program=program, source="attrs", evidence=ev, confidence="high"
        )
        if connector:
            fp.product = connector
        elif program in ("mysql", "mariadb"):
            fp.product = "mariadb CLI"
            fp.evidence.append(
                f"program_name {program!r} with libmariadb: the MariaDB command-line client"
            )
        elif program:
            fp.product = program
            sig = clients.match_signature("libmariadb", caps, max_packet, program=True)
            if sig is not None:  # a script's name: its shape may still name the driver
                fp.product, fp.product_likely = sig.product, True
                fp.evidence.append(
                    f"program_name {program!r} is a script; capabilities 0x{caps:08x} and "
                    f"max_packet_size {max_packet} match {sig.product} ({sig.note})"
                )
        else:
            _guess_application(fp, caps, max_packet)
        return fp
    if low == "libmysqlclient":
        fp = Fingerprint(
            "libmysqlclient",
            version,
            program=program,
            source="attrs",
            evidence=ev,
            confidence="high",
        )
        if connector == "mysql-connector-python":
            fp.product = "mysql-connector-python"
            fp.variant = "C extension"
            cv = attrs.get("_connector_version")
            if cv:
                fp.evidence.append(f"mysql-connector-python {cv} C extension on libmysqlclient")
        elif connector:
            fp.product = connector
        elif program in ("mysql",):
            fp.product = "mysql CLI"
        elif program:
            fp.product = program
        else:
            _guess_application(fp, caps, max_packet)
        return fp
    if known is not None:
        if version and version.lower().startswith(known.name.lower() + " "):
            version = version[len(known.name) + 1 :]  # mysqlnd says "mysqlnd 8.2.7"
        fp = Fingerprint(
            known.name,
            version,
            product=connector or (known.products[0] if len(known.products) == 1 else None),
            program=program,
            source="attrs",
            evidence=ev,
            confidence="high",
        )
        sig = None if connector else clients.match_signature(known.name, caps, max_packet)
        if sig is not None:  # e.g. mysqlnd: PDO or mysqli, told apart by their flags
            fp.product, fp.product_likely = sig.product, True
            fp.evidence.append(
                f"capabilities 0x{caps:08x} and max_packet_size {max_packet} match "
                f"{sig.product} ({sig.note})"
            )
        return fp
    if name:
        return Fingerprint(
            name,
            version,
            product=connector or name,
            program=program,
            source="attrs",
            evidence=ev + [f"_client_name {name!r} is not in mysqlwire's client table"],
            confidence="medium",
        )
    return None


def _guess_application(fp: Fingerprint, caps: int | None, max_packet: int | None) -> None:
    """Name the application on a C library only when the whole
    HandshakeResponse shape matches one seen for exactly one product;
    otherwise say it is unknown (Navicat, DBD::MariaDB, Ruby mysql2, PHP ...
    all run on the same libraries)."""
    sig = clients.match_signature(fp.library, caps, max_packet)
    if sig is not None:
        fp.product = sig.product
        fp.product_likely = True
        fp.confidence = "medium"
        fp.evidence.append(
            f"{fp.library} without program_name; capabilities 0x{caps:08x} and max_packet_size "
            f"{max_packet} match {sig.product} ({sig.note})"
        )
        return
    fp.application_unknown = True
    lib = clients.library(fp.library)
    users = ", ".join(lib.products) if lib is not None else ""
    shape = (
        f"capabilities 0x{caps:08x}, max_packet_size {max_packet}"
        if caps is not None
        else "no shape"
    )
    fp.evidence.append(
        f"{fp.library} without program_name or _connector_name, and its shape ({shape}) matches no "
        f"known application: the application is not identified (programs on {fp.library}: {users}, ...)"
    )


_SHOWN_ATTRS = (
    "_client_name",
    "_client_version",
    "_connector_name",
    "_connector_version",
    "program_name",
    "_runtime_version",
    "_os",
    "_platform",
)


def _from_shape(conn: Connection) -> Fingerprint | None:
    caps = conn.client_capabilities
    if caps is None:
        return None
    maxp = conn.max_packet_size
    cs = conn.client_character_set
    core = caps & ~_PYMYSQL_OPTIONAL
    ev_caps = f"client capabilities 0x{caps:08x}"
    if not caps & PROTOCOL_41:
        return Fingerprint(
            "pre-4.1 client",
            source="shape",
            evidence=[f"{ev_caps} without CLIENT_PROTOCOL_41 (HandshakeResponse320)"],
        )
    if maxp == 1 and core == PYMYSQL_CAPS_08 & ~_PYMYSQL_OPTIONAL:
        # PyMySQL < 0.9: no connect attributes, max_packet_size 1
        ev = [
            f"{ev_caps}: PyMySQL's CLIENT.CAPABILITIES without CONNECT_ATTRS",
            "max_packet_size 1 (PyMySQL before 0.9 packs a literal 1)",
        ]
        if cs == 8:
            ev.append("collation 8 latin1_swedish_ci (PyMySQL's default charset before 0.9)")
        if caps & MULTI_STATEMENTS:
            ev.append("CLIENT_MULTI_STATEMENTS set (a PyMySQL default until 0.8)")
            return Fingerprint(
                "PyMySQL",
                None,
                None,
                (0, 8),
                product="PyMySQL",
                source="shape",
                evidence=ev,
                confidence="medium",
            )
        ev.append("CLIENT_MULTI_STATEMENTS clear (PyMySQL 0.8 dropped it from the defaults)")
        return Fingerprint(
            "PyMySQL",
            None,
            (0, 8),
            (0, 9),
            product="PyMySQL",
            source="shape",
            evidence=ev,
            confidence="medium",
        )
    if core == PYMYSQL_CAPS_09 & ~_PYMYSQL_OPTIONAL and maxp in (None, 0xFFFFFF):
        ev = [f"{ev_caps}: PyMySQL's CLIENT.CAPABILITIES (>= 0.9, with CONNECT_ATTRS)"]
        if maxp is None:
            ev.append("only the SSLRequest was readable")
        return Fingerprint(
            "PyMySQL",
            None,
            (0, 9),
            None,
            product="PyMySQL",
            source="shape",
            evidence=ev,
            confidence="medium",
        )
    if maxp == 1 << 30 and caps & CONNECT_ATTRS and caps & CONNECT_WITH_DB:
        return Fingerprint(
            "mysql-connector-python",
            product="mysql-connector-python",
            variant="pure Python",
            source="shape",
            evidence=[f"{ev_caps}, max_packet_size 1 GiB (mysql-connector-python's default)"],
            confidence="medium",
        )
    if (
        caps & SESSION_TRACK
        and caps & PS_MULTI_RESULTS
        and (conn.client_ext_capabilities or maxp == 1 << 20)
    ):
        ev = [f"{ev_caps} with SESSION_TRACK and PS_MULTI_RESULTS"]
        if conn.client_ext_capabilities:
            ev.append(f"MariaDB extended capabilities 0x{conn.client_ext_capabilities:x}")
        if maxp == 1 << 20:
            ev.append("max_packet_size 1 MiB")
        return Fingerprint(
            "libmariadb", source="shape", evidence=ev, confidence="low", application_unknown=True
        )
    shape = clients.match_shape(caps, maxp, cs)
    if shape is not None:  # a library that sends no attributes, known by its whole shape
        lib, sig = shape
        return Fingerprint(
            lib.name,
            max_version=sig.below,
            product=sig.product,
            source="shape",
            evidence=[
                f"{ev_caps}, max_packet_size {maxp}, collation {cs}: {sig.product}'s "
                f"HandshakeResponse ({sig.note})"
            ],
            confidence="medium",
        )
    return None
