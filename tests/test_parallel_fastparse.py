"""The dissector's Construct-free parsers (mysqlwire.protocol.fastparse) must
give exactly what the grammar gives -- same keys in the same order, same
values and value types -- or decline (None) so the grammar decides, also on
malformed input.  Checked on every packet the handshake parses in the bundled
captures and on deterministic mutations of them.

(Part of the performance work: fast dissection and ``--jobs`` depend on it.)
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from construct import Container, ListContainer

import mysqlwire.handshake as hs_mod
from mysqlwire.dissect import dissect
from mysqlwire.errors import ProtocolError
from mysqlwire.protocol import parse
from mysqlwire.protocol.fastparse import Fields, fast_parse

ROOT = Path(__file__).resolve().parent.parent


def same_as_grammar(fast, slow) -> bool:
    """``fast`` (fast_parse's) is what the grammar's ``slow`` is: same keys in the
    same order, same values and value types, with a Fields where the grammar has a
    Container and a list where it has a ListContainer -- and equal both ways."""
    if isinstance(slow, Container):
        return (
            type(fast) is Fields
            and list(fast) == list(slow)
            and all(same_as_grammar(fast[k], slow[k]) for k in slow)
            and fast == slow
            and slow == fast
        )
    if isinstance(slow, ListContainer):
        return (
            type(fast) is list
            and len(fast) == len(slow)
            and all(same_as_grammar(x, y) for x, y in zip(fast, slow, strict=True))
        )
    return type(fast) is type(slow) and fast == slow


@pytest.fixture(scope="module")
def parsed_packets():
    """(kind, payload, caps) of every parse the handshake asks for."""
    seen: dict[tuple, None] = {}

    def record(kind, payload, caps=None):
        seen[(kind, bytes(payload), caps)] = None
        return None  # the grammar parses, as before the fast path existed

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hs_mod, "fast_parse", record)
        for path in sorted((ROOT / "captures").rglob("*.pcap*")):
            try:
                dissect(path, detect=True)
            except Exception:  # noqa: BLE001 - hostile corpus files may be refused
                continue
    assert len(seen) > 100
    return list(seen)


def _check(kind, payload, caps) -> str | None:
    fast = fast_parse(kind, payload, caps)
    try:
        slow = parse(kind, payload, caps=caps)
    except ProtocolError:
        if fast is not None:
            return f"{kind} {payload.hex()} caps={caps}: fast path accepted, grammar refused"
        return None
    if fast is not None and not same_as_grammar(fast, slow):
        return f"{kind} {payload.hex()} caps={caps}: {fast!r} != {slow!r}"
    return None


def test_fast_parse_equals_grammar_on_captured_packets(parsed_packets):
    used = {kind for kind, payload, caps in parsed_packets if fast_parse(kind, payload, caps)}
    assert {
        "handshake_v10",
        "handshake_response41",
        "ok",
        "err",
        "old_auth_switch_request",
        "com_change_user",
    } <= used
    problems = [p for p in (_check(*item) for item in parsed_packets) if p]
    assert problems == []


def test_fast_parse_equals_grammar_on_mutations(parsed_packets):
    rng = random.Random(8)
    problems = []
    for kind, payload, caps in parsed_packets:
        for _ in range(12):
            p = bytearray(payload)
            op = rng.random()
            if op < 0.3 and p:
                del p[rng.randrange(len(p)) :]
            elif op < 0.7 and p:
                p[rng.randrange(len(p))] = rng.choice(
                    (0, 0x23, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF, rng.randrange(256))
                )
            elif op < 0.85:
                p.insert(rng.randrange(len(p) + 1), rng.randrange(256))
            else:
                p += bytes((rng.randrange(256),))
            c = caps if rng.random() < 0.7 else rng.choice((None, 0, rng.getrandbits(32)))
            problem = _check(kind, bytes(p), c)
            if problem:
                problems.append(problem)
    assert problems[:5] == []


def test_fast_parse_declines_other_kinds():
    assert fast_parse("handshake_v9", b"\x095.0\x00\x01\x00\x00\x00abcdefgh\x00") is None
    assert fast_parse("eof", b"\xfe\x00\x00\x02\x00") is None
    assert fast_parse("handshake_v10", b"") is None
    # a non-minimal length encoding is left to the grammar (it keeps the prefix)
    assert fast_parse("ok", b"\x00\xfc\x01\x00\x00\x02\x00\x00\x00", 0x200) is None


@pytest.mark.parametrize(
    "payload,caps",
    [
        (b"\x11root\x00\x00", None),  # empty proof, nothing after it
        (
            b"\x11root\x00\x14" + bytes(range(20)) + b"shop\x00\x21\x00mysql_native_password\x00",
            None,
        ),
        # connection attributes after the plugin name
        (b"\x11u\x00\x00\x00\x21\x00p\x00\x0a\x03_os\x05linux", None),
        (b"\x11u\x00\x00db", None),  # database without its NUL, nothing after it
        (b"\x11u\x00pw\x00db\x00", 0),  # pre-4.1: NUL-terminated proof
        (b"\x11u\x00\x00\x00\x21", None),  # half a character set: refused
        (b"\x11u\x00\x05ab", None),  # proof longer than the packet: refused
        (b"\x11u\x00\x00\x00\x21\x00p\x00\x0a\x03_os\x06linux", None),  # attr overruns
        (b"\xfe", None),
        (b"\xfe\x00", None),
    ],
)
def test_fast_parse_change_user_and_old_switch_equal_grammar(payload, caps):
    kind = "old_auth_switch_request" if payload[0] == 0xFE else "com_change_user"
    assert _check(kind, payload, caps) is None
    try:
        parse(kind, payload, caps=caps)
    except ProtocolError:
        assert fast_parse(kind, payload, caps) is None
    else:  # the well-formed ones take the fast path
        assert fast_parse(kind, payload, caps) is not None


def test_fields_behave_as_the_grammars_container(parsed_packets):
    """What consumers do with a packet's fields gives the same answer for the fast
    path's Fields as for the grammar's Container: key and attribute reads (and the
    AttributeError of a missing name), writes, copies, pickling, JSON, to_jsonable."""
    import json
    import pickle

    from mysqlwire.protocol import to_jsonable

    checked = 0
    for kind, payload, caps in parsed_packets:
        fast = fast_parse(kind, payload, caps)
        if fast is None:
            continue
        slow = parse(kind, payload, caps=caps)
        checked += 1
        for key in slow:
            assert getattr(fast, key) is fast[key]
            assert getattr(fast, key) == getattr(slow, key)
        assert not hasattr(fast, "no_such_field") and not hasattr(slow, "no_such_field")
        assert fast.get("no_such_field", 7) == 7
        assert to_jsonable(fast) == to_jsonable(slow)
        assert json.dumps(to_jsonable(fast)) == json.dumps(to_jsonable(slow))
        again = pickle.loads(pickle.dumps(fast))
        assert type(again) is Fields and list(again.items()) == list(fast.items())
        assert type(fast.copy()) is Fields and fast.copy() == slow
    assert checked > 100
    f = Fields(user=b"u", _io=None)
    f.database = b"db"
    assert f["database"] == b"db" and list(f) == ["user", "_io", "database"]
    del f.database
    assert "database" not in f
    assert f == Container(user=b"u") == f  # (``_`` keys do not count, as in Container)
    assert f != Container(user=b"v") and f != {"user": b"u", "x": 1} and f != [("user", b"u")]
    assert repr(Fields(a=1, _b=2)) == "Fields(a=1)"
    with pytest.raises(AttributeError, match="missing"):
        del f.missing
