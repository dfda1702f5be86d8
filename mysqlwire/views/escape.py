"""Making wire strings safe for a terminal, HTML and JSON.

Everything a capture carries (server versions, user names, plugin names, error
messages, connect attributes, dialog prompts) is hostile input.  Before it
reaches an output it is made harmless:

* text (terminal): every non-printable character -- C0 and C1 controls,
  DEL, bidi overrides and isolates, line/paragraph separators, other format
  characters -- becomes a visible escape (``\\x1b``, ``\\x9b``, ``\\u202e``);
* HTML: the same, then HTML-escaped (:func:`esc`);
* JSON: the document stays valid JSON and the values unchanged, but C1
  controls (U+0080-U+009F), DEL, bidi overrides/isolates/marks (U+202A-U+202E,
  U+2066-U+2069, U+200E, U+200F, U+061C) and U+2028/U+2029 are written as
  ``\\uXXXX`` escapes so they never reach a terminal raw (``json.dumps`` only
  escapes C0 with ``ensure_ascii=False``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["clean", "esc", "json_dumps", "json_safe", "UNSAFE_JSON_CHARS"]

# Characters a JSON consumer would print raw that can rewrite a terminal line
# or reorder its text (Trojan Source): escaped in JSON output.
UNSAFE_JSON_CHARS = frozenset(
    [0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028, 0x2029]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)
_JSON_TABLE = {c: f"\\u{c:04x}" for c in UNSAFE_JSON_CHARS}


def clean(s) -> str:
    """A wire string for the terminal: non-printable characters escaped
    (``\\xNN`` up to U+00FF, ``\\uNNNN`` above, ``\\UNNNNNNNN`` astral)."""
    if s is None:
        return "-"
    s = str(s)
    if s.isprintable():
        return s
    out = []
    for c in s:
        if c.isprintable():
            out.append(c)
        else:
            o = ord(c)
            out.append(
                f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"
            )
    return "".join(out)


_HTML_TABLE = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
)  # html.escape(s, quote=True), without importing html (start-up time)


def esc(value: Any, limit: int | None = None) -> str:
    """A wire value as safe HTML text: printable, truncated to ``limit`` chars, escaped."""
    if value is None:
        return "-"
    s = clean(value)
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 1)] + "\u2026"
    return s.translate(_HTML_TABLE)


def json_safe(text: str) -> str:
    """Escape :data:`UNSAFE_JSON_CHARS` in an already-serialised JSON text.

    Valid because these characters can only occur inside JSON strings, where
    ``\\uXXXX`` denotes the same character: ``json.loads`` gives back the
    same value."""
    return text.translate(_JSON_TABLE)


def _default(obj):
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"hex": bytes(obj).hex()}
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return str(obj)


# one encoder per indent, made once: ``json.dumps`` with options builds a new
# encoder on every call (this is the per-record cost of --format jsonl)
_ENCODERS: dict = {}


def json_dumps(obj, *, indent: int | None = None) -> str:
    """``json.dumps`` for output: UTF-8 text kept readable, unsafe characters
    escaped (:func:`json_safe`), bytes as ``{"hex": ...}``."""
    enc = _ENCODERS.get(indent)
    if enc is None:
        import json  # (here: the text view needs none of it)

        enc = _ENCODERS[indent] = json.JSONEncoder(
            ensure_ascii=False, indent=indent, default=_default
        )
    out = enc.encode(obj)
    # every unsafe character is DEL (U+007F) or above it: the common ASCII
    # text without DEL has none and is returned as it is
    if out.isascii() and "\x7f" not in out:
        return out
    return out.translate(_JSON_TABLE)
