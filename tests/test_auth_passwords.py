"""Password sources for the CLI and the Secret wrapper (never leaks via repr/str/logs)."""

from __future__ import annotations

import logging
import traceback

import pytest

from mysqlwire.auth import get_plugin
from mysqlwire.auth.passwords import (
    EMPTY_MARKER,
    Secret,
    Secrets,
    load_secrets,
    parse_candidates,
    password_from_env,
    prompt_password,
    read_candidates,
    read_password_file,
    read_password_map,
    strip_one_newline,
)
from mysqlwire.errors import UsageError

PW = "hunter2-Sup3rSecret"


def _with_pw(template: str) -> str:
    return template.replace("@PW@", PW)


def test_secret_never_shows_its_value(caplog) -> None:
    s = Secret(PW)
    for text in (repr(s), str(s), f"{s}", f"{s!r}", f"{s:>30}", "%s %r" % (s, s)):  # noqa: UP031 (logging style)
        assert PW not in text and "<secret>" in text
    assert PW not in repr([s, {"u": s}, (s,)])
    assert PW not in repr(Secrets(password=s, per_user={"app": s}, candidates=[s]))
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("password is %s / %r", s, s)
    assert PW not in caplog.text
    try:
        raise ValueError(f"bad login with {s}")
    except ValueError as exc:
        assert PW not in "".join(traceback.format_exception(exc))


def test_secret_value_and_equality() -> None:
    s = Secret(PW)
    assert s.reveal() == PW.encode()
    assert Secret("pässwörd").reveal() == "pässwörd".encode()
    assert Secret(b"\xff\x00").reveal() == b"\xff\x00"
    assert Secret(s).reveal() == PW.encode()
    assert s == Secret(PW) and s == PW.encode() and s != Secret("other")
    assert (s == PW) is False  # str is not compared implicitly
    assert bool(Secret("")) is False and bool(s) is True
    with pytest.raises(TypeError):
        hash(s)
    with pytest.raises(UsageError):
        Secret(123)  # type: ignore[arg-type]


def test_plugins_accept_secret() -> None:
    nonce = b"ABCDEFGHIJKLMNOPQRST"
    native = get_plugin("mysql_native_password")
    assert native.client_response(Secret("secret"), nonce) == native.client_response(
        b"secret", nonce
    )
    resp = native.client_response(b"secret", nonce)
    assert native.verify(resp, nonce, password=Secret("secret")) is True


def test_strip_one_newline() -> None:
    assert strip_one_newline(b"pw\n") == b"pw"
    assert strip_one_newline(b"pw\r\n") == b"pw"
    assert strip_one_newline(b"pw\n\n") == b"pw\n"
    assert strip_one_newline(b"pw ") == b"pw "
    assert strip_one_newline(b"pw") == b"pw"
    assert strip_one_newline(b"\n") == b""


def test_read_password_file(tmp_path) -> None:
    f = tmp_path / "pw"
    f.write_bytes(b" spaced pw \n\n")
    assert read_password_file(f).reveal() == b" spaced pw \n"
    f.write_bytes("pässwörd\r\n".encode())
    assert read_password_file(f).reveal() == "pässwörd".encode()
    with pytest.raises(UsageError, match="cannot read password file"):
        read_password_file(tmp_path / "missing")


def test_password_from_env() -> None:
    assert password_from_env("DB_PW", {"DB_PW": PW}).reveal() == PW.encode()
    assert password_from_env("DB_PW", {"DB_PW": ""}).reveal() == b""
    with pytest.raises(UsageError, match="DB_PW is not set") as exc:
        password_from_env("DB_PW", {"OTHER": PW})
    assert PW not in str(exc.value)


def test_prompt_password() -> None:
    seen = []

    def fake_getpass(prompt: str) -> str:
        seen.append(prompt)
        return PW

    assert prompt_password("pw for app: ", getpass_func=fake_getpass).reveal() == PW.encode()
    assert seen == ["pw for app: "]

    def eof(prompt: str) -> str:
        raise EOFError

    with pytest.raises(UsageError):
        prompt_password(getpass_func=eof)


def test_password_map_json_and_toml(tmp_path) -> None:
    j = tmp_path / "s.json"
    j.write_text(_with_pw('{"app": "@PW@", "root": ""}'), "utf-8")
    m = read_password_map(j)
    assert m["app"].reveal() == PW.encode() and m["root"].reveal() == b""
    t = tmp_path / "s.toml"
    t.write_text(_with_pw('app = "@PW@"\n"user@host" = "pässwörd"\n'), "utf-8")
    m = read_password_map(t)
    assert m["app"].reveal() == PW.encode()
    assert m["user@host"].reveal() == "pässwörd".encode()
    other = tmp_path / "s.secrets"  # unknown suffix: JSON, then TOML
    other.write_text(_with_pw('app = "@PW@"\n'), "utf-8")
    assert read_password_map(other)["app"].reveal() == PW.encode()


def test_password_map_errors_leak_nothing(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(_with_pw('{"app": "@PW@", oops}'), "utf-8")
    with pytest.raises(UsageError) as exc:
        read_password_map(bad)
    text = "".join(traceback.format_exception(exc.value))
    assert PW not in text
    assert exc.value.__context__ is None and exc.value.__cause__ is None
    badtoml = tmp_path / "bad.toml"
    badtoml.write_text(_with_pw('app = "@PW@\n'), "utf-8")
    with pytest.raises(UsageError) as exc:
        read_password_map(badtoml)
    assert PW not in "".join(traceback.format_exception(exc.value))
    nested = tmp_path / "nested.json"
    nested.write_text(_with_pw('{"app": {"pw": "@PW@"}}'), "utf-8")
    with pytest.raises(UsageError, match="user 'app' is not a string") as exc:
        read_password_map(nested)
    assert PW not in str(exc.value)
    listing = tmp_path / "list.json"
    listing.write_text(_with_pw('["@PW@"]'), "utf-8")
    with pytest.raises(UsageError, match="top level"):
        read_password_map(listing)


def test_candidates_rules(tmp_path) -> None:
    data = b"first\n\n  spaced  \r\n" + EMPTY_MARKER.encode() + b"\nfirst\nlast-no-newline"
    got = [s.reveal() for s in parse_candidates(data)]
    # blank lines ignored, CRLF stripped, spaces kept, "(empty)" = empty, dedup in order
    assert got == [b"first", b"  spaced  ", b"", b"last-no-newline"]
    literal = [s.reveal() for s in parse_candidates(data, empty_marker=None)]
    assert literal == [b"first", b"  spaced  ", b"(empty)", b"last-no-newline"]
    assert parse_candidates(b"") == [] and parse_candidates(b"\n\n") == []
    f = tmp_path / "cands.txt"
    f.write_bytes(b"a\nb\n")
    assert [s.reveal() for s in read_candidates(f)] == [b"a", b"b"]


def test_load_secrets_combines_sources(tmp_path) -> None:
    pwf = tmp_path / "pw"
    pwf.write_text(PW + "\n", "utf-8")
    mapf = tmp_path / "map.json"
    mapf.write_text('{"app": "app-pw"}', "utf-8")
    cands = tmp_path / "c.txt"
    cands.write_text("c1\napp-pw\n(empty)\n", "utf-8")
    s = load_secrets(password_file=pwf, secrets_file=mapf, candidates_file=cands)
    assert [x.reveal() for x in s.for_user("app")] == [b"app-pw", PW.encode(), b"c1", b""]
    assert [x.reveal() for x in s.for_user("other")] == [PW.encode(), b"c1", b"app-pw", b""]
    assert [x.reveal() for x in s.for_user(None)][0] == PW.encode()
    env = load_secrets(password_env="X", environ={"X": "from-env"})
    assert env.password.reveal() == b"from-env"
    prompted = load_secrets(prompt="Pw? ", getpass_func=lambda p: "typed")
    assert prompted.password.reveal() == b"typed"
    assert not load_secrets()
    with pytest.raises(UsageError, match="only one"):
        load_secrets(password_file=pwf, password_env="X", environ={"X": "y"})
