"""The report's summary rows as data: one JSON array per connection, written
into an inert ``<script type="application/json" id="mw-rows">`` block that
the page's script reads (``JSON.parse`` of its text) to draw one page of
the table at a time, and to sort and filter over every row.

The block is never executed (a data block: the browser only keeps its
text), yet its text ends at the first ``</script`` whatever the JSON says,
and ``<!--`` inside it changes how the HTML parser looks for that end.  So
every ``<``, ``>`` and ``&`` of the JSON is written as its ``\\u003c``-style
escape: these characters can only occur inside JSON strings, where the escape
means the same character, so the block holds no markup at all and
``JSON.parse`` gives back the very values.  The values are what the HTML
table shows before escaping: wire strings made printable
(:func:`~mysqlwire.views.escape.clean`: controls, bidi and line separators
become visible ``\\x1b``/``\\u2028`` text), U+2028/U+2029 and the other
characters of :data:`~mysqlwire.views.escape.UNSAFE_JSON_CHARS` escaped
again for good measure.  Bytes that are not UTF-8 reach the row as the
model's ``\\xNN`` text and stay that text.

A value that repeats from row to row (the server, the plugin chain, the
client library...) is written once in the block's ``strings`` tables and the
row holds its index there (:data:`SHARED`): ~80 B a row at 100,000 logins
instead of ~250 B.

:class:`StoredRows` spills the rows to an anonymous temporary file while the
captures are read (memory stays flat) and keeps only the first page's rows
(as dicts), which the page also writes as plain HTML for a browser without
JavaScript.
"""

from __future__ import annotations

import json

from .escape import clean, json_safe
from .html import OUTCOME_LABEL, summary_row_html

__all__ = [
    "ROW_FIELDS",
    "SHARED",
    "StoredRows",
    "row_json",
    "row_values",
    "rows_block_head",
]

# Position of each value in a row's JSON array (the page's script reads the
# names from the block's head, so the order is free).
ROW_FIELDS = (
    "n",  # the row's key: anchors #conn-<n>
    "id",
    "capture",
    "user",
    "client_lib",
    "server_short",
    "plugins",
    "tls",
    "outcome",
    "verdict",
    "finding",
    "latency_ms",
    "latency_text",  # latency_ms as the table shows it (Python's rounding)
    "final_plugin",
    "error",
    "server_version",
    "client",  # client and server: the title of the number cell
    "server",
    "link",  # 1 when the connection has a ladder section
)

SORT_LIMIT = 200  # characters kept of a shown value (the table shows 80)

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _text(value, limit: int | None = SORT_LIMIT):
    """A value as the table shows it before HTML escaping: printable, cut."""
    if value is None:
        return None
    s = value if value.__class__ is str and value.isprintable() else clean(value)
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "\u2026"
    return s


def _key(v):
    return v if v is None or v.__class__ is int else _text(v)


def row_values(row: dict, *, link: bool) -> list:
    """The JSON array of one summary row (see :data:`ROW_FIELDS`); the user
    and the final plugin (filter values) are kept whole, as before."""
    g = row.get
    lat = g("latency_ms")
    return [
        _key(g("n")),
        _key(g("id")),
        _text(g("capture")),
        _text(g("user"), None),
        _text(g("client_lib")),
        _text(g("server_short")),
        _text(g("plugins")),
        _text(g("tls")),
        _text(g("outcome")),
        _text(g("verdict")),
        _text(g("finding")),
        lat,
        None if lat is None else f"{lat:.2f}",
        _text(g("final_plugin"), None),
        _text(g("error")),
        _text(g("server_version")),
        _text(g("client")),
        _text(g("server")),
        1 if link else 0,
    ]


def row_json(row: dict, *, link: bool) -> str:
    """One row as JSON text safe inside a ``<script>`` data block: no ``<``,
    ``>`` or ``&`` (written ``\\u003c``...), no raw line separator."""
    return _html_safe(_ENCODER.encode(row_values(row, link=link)))


def _html_safe(out: str) -> str:
    if not out.isascii():
        out = json_safe(out)
    if "<" in out or ">" in out or "&" in out:
        out = out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return out


def rows_block_head() -> str:
    """The start of the block's JSON, up to the first row: the field names
    and the outcome labels the table shows (``rows`` follow, one a line,
    then ``strings``: :meth:`StoredRows.block_foot`)."""
    head = _ENCODER.encode({"fields": list(ROW_FIELDS), "labels": OUTCOME_LABEL})
    return _html_safe(head[:-1]) + ',"rows":['


# Values that repeat from row to row (server, plugins, client library, ...)
# are written once, in the block's "strings" tables, and a row holds their
# index there (a number: these fields are otherwise strings or null).  At
# most SHARED_MAX distinct values of at most SHARED_LEN characters a field
# are shared; others are written in the row, so memory stays bounded.
SHARED = (
    "capture",
    "user",
    "client_lib",
    "server_short",
    "plugins",
    "tls",
    "outcome",
    "verdict",
    "finding",
    "final_plugin",
    "error",
    "server_version",
    "server",
)
SHARED_MAX = 1024
SHARED_LEN = SORT_LIMIT
_SHARED_AT = tuple(ROW_FIELDS.index(k) for k in SHARED)


class StoredRows:
    """Summary rows spilled to an anonymous temporary file as the JSON text of
    the data block (~0.1 KB a row: repeated values are shared), so the memory they take stays constant
    however many connections the report has; the first ``first`` rows are
    also kept (as dicts) to be written as HTML for a browser without
    JavaScript.  The file is deleted when closed."""

    def __init__(self, first: int = 200) -> None:
        import tempfile

        self._file = tempfile.TemporaryFile(prefix="mysqlwire-rows-")
        self._n = 0
        self._limit = first
        self._first: list[tuple[dict, bool]] = []
        self._shared: list[dict[str, int]] = [{} for _ in SHARED]

    def add(self, row: dict, *, link: bool) -> None:
        """Store a row; ``link``: the connection has a ladder section."""
        values = row_values(row, link=link)
        for table, at in zip(self._shared, _SHARED_AT, strict=True):
            v = values[at]
            if v.__class__ is str and len(v) <= SHARED_LEN:
                k = table.get(v)
                if k is None and len(table) < SHARED_MAX:
                    k = table[v] = len(table)
                if k is not None:
                    values[at] = k
        text = _html_safe(_ENCODER.encode(values))
        self._file.write((",\n" if self._n else "\n").encode("utf-8"))
        self._file.write(text.encode("utf-8"))
        if self._n < self._limit:
            self._first.append((row, link))
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def close(self) -> None:
        self._file.close()

    def block_foot(self) -> str:
        """The end of the block's JSON after the last row: the shared strings
        of each field, in the order of their indexes."""
        strings = {k: list(t) for k, t in zip(SHARED, self._shared, strict=True) if t}
        return "\n]," + _html_safe(_ENCODER.encode({"strings": strings}))[1:]

    def first_html(self, cols: list[tuple[str, str]]):
        """The first page's ``<tr>`` elements with only ``cols``."""
        for row, link in self._first:
            yield summary_row_html(row, cols, link=link)

    def json_chunks(self, size: int = 1 << 16):
        """The rows' JSON text (the inside of the block's ``rows`` array), in
        pieces of ``size`` bytes at most, cut between characters."""
        f = self._file
        f.flush()
        f.seek(0)
        pending = b""
        while True:
            data = f.read(size)
            if not data:
                break
            data = pending + data
            cut = len(data)
            while cut and (data[cut - 1] & 0xC0) == 0x80:
                cut -= 1  # inside a UTF-8 sequence: keep its lead byte with it
            if cut and data[cut - 1] >= 0xC0:
                cut -= 1
            pending = data[cut:]
            yield data[:cut].decode("utf-8")
        if pending:
            yield pending.decode("utf-8")
        f.seek(0, 2)  # further rows are appended
