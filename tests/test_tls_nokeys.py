"""A TLS session without keys: protected records are counted and skipped unread,
an encrypted alert is noted once per side, the stream stays followed."""

from __future__ import annotations

from mysqlwire.tls import TlsSession


def _record(ctype: int, body: bytes) -> bytes:
    return bytes([ctype, 3, 3]) + len(body).to_bytes(2, "big") + body


def test_protected_records_without_keys_are_counted_and_skipped():
    sess = TlsSession(None)
    ccs = _record(20, b"\x01")
    app = _record(23, bytes(range(40)))
    alert = _record(21, bytes(26))  # after ChangeCipherSpec: protected
    client = ccs + app + alert + app + alert + app
    server = ccs + app + alert + app
    out = []
    # fed in odd pieces, the two sides interleaved
    for i in range(0, max(len(client), len(server)), 7):
        out += sess.feed(True, client[i : i + 7])
        out += sess.feed(False, server[i : i + 7])
    out += sess.finish()
    assert out == []  # nothing readable
    assert sess.records == {"client": 6, "server": 4}
    assert sess.status == "no-keys"
    assert sess.anomalies == [
        "client: encrypted alert (not readable without keys)",
        "server: encrypted alert (not readable without keys)",
    ]


def test_a_record_cut_at_the_end_is_reported_after_skipped_ones():
    sess = TlsSession(None)
    app = _record(23, bytes(100))
    sess.feed(True, app + app + app[:50])
    sess.finish()
    assert sess.records == {"client": 2, "server": 0}
    assert sess.anomalies == ["client: stream ends inside a TLS record (50 bytes)"]
