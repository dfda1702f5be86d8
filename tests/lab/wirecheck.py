"""A small, independent reading of one lab connection, to check a scenario's truth against the bytes.

This is the lab's oracle for "did the capture really record what the scenario says" (the greeting,
the client's first packet, the auth switches, the server's ERR packets), written from the protocol
reference and kept apart from ``mysqlwire``'s own dissector: the lab must never grade the dissector
with the dissector. It reads plain framing only; it stops at TLS (SSLRequest) and, on compressed
connections, at the end of the login.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_COMPRESS = 0x20
CLIENT_SSL = 0x800
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_PLUGIN_AUTH_LENENC = 0x200000
COM_CHANGE_USER = 0x11

_SWITCH = re.compile(rb"([a-z][a-z0-9_]*)\x00", re.S)


def packets(stream: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Split a plain (uncompressed) stream into (sequence id, payload); also the unparsed rest."""
    out, off = [], 0
    while off + 4 <= len(stream):
        length = int.from_bytes(stream[off : off + 3], "little")
        if off + 4 + length > len(stream):
            break
        out.append((stream[off + 3], stream[off + 4 : off + 4 + length]))
        off += 4 + length
    return out, stream[off:]


def _cstr(b: bytes, off: int) -> tuple[bytes, int]:
    end = b.index(b"\0", off)
    return b[off:end], end + 1


def _lenenc(b: bytes, off: int) -> tuple[int, int]:
    first = b[off]
    if first < 0xFB:
        return first, off + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(b[off + 1 : off + 1 + size], "little"), off + 1 + size


@dataclass
class ErrPacket:
    code: int
    sqlstate: str | None
    message: str


def parse_err(p: bytes) -> ErrPacket:
    code = struct.unpack("<H", p[1:3])[0]
    if p[3:4] == b"#":
        return ErrPacket(code, p[4:9].decode(), p[9:].decode(errors="replace"))
    return ErrPacket(code, None, p[3:].decode(errors="replace"))


@dataclass
class WireFacts:
    greeting: dict | None = None  # protocol, version, capabilities, plugin
    error_before_greeting: ErrPacket | None = None
    # the client's first packet: capabilities, user, auth_len, database, plugin
    response: dict | None = None
    tls: bool = False
    compressed: bool = False
    auth_steps: list[int] = field(default_factory=list)  # lengths of the client's auth answers
    switches: list[str] = field(default_factory=list)  # auth switches during the login
    login: str = "incomplete"  # ok | error | incomplete (from the server's packets)
    login_error: ErrPacket | None = None
    command_errors: list[ErrPacket] = field(default_factory=list)
    change_user_sent: bool = False
    change_user_switches: list[str] = field(default_factory=list)


def _switch_name(p: bytes) -> str | None:
    if p == b"\xfe":
        return "mysql_old_password"  # the bare pre-4.1 switch
    m = _SWITCH.match(p, 1)
    return m.group(1).decode() if m else None


def read_connection(c2s: bytes, s2c: bytes) -> WireFacts:
    f = WireFacts()
    spk, _ = packets(s2c)
    if not spk:
        return f
    g = spk[0][1]
    if g[:1] == b"\xff":
        f.error_before_greeting = parse_err(g)
        f.login = "error"
        return f
    version, off = _cstr(g, 1)
    off += 4  # connection id
    off += 8 + 1  # auth-plugin-data part 1, filler
    caps = struct.unpack("<H", g[off : off + 2])[0]
    off += 2 + 1 + 2  # caps low, charset, status
    caps |= struct.unpack("<H", g[off : off + 2])[0] << 16
    auth_len = g[off + 2]
    off += 2 + 1 + 10
    off += max(13, auth_len - 8)
    plugin = _cstr(g, off)[0].decode() if caps & CLIENT_PLUGIN_AUTH else None
    f.greeting = {"protocol": g[0], "version": version.decode(), "caps": caps, "plugin": plugin}

    cpk, _ = packets(c2s)
    if not cpk:
        return f
    r = cpk[0][1]
    rcaps = struct.unpack("<I", r[:4])[0]
    if rcaps & CLIENT_SSL and len(r) == 32:
        f.tls = True
        f.response = {"caps": rcaps}
        return f  # the rest is TLS records
    user, off = _cstr(r, 32)
    if rcaps & CLIENT_PLUGIN_AUTH_LENENC:
        alen, off = _lenenc(r, off)
    elif rcaps & CLIENT_SECURE_CONNECTION:
        alen, off = r[off], off + 1
    else:
        alen = r.index(b"\0", off) - off
    off += alen
    db = None
    if rcaps & CLIENT_CONNECT_WITH_DB and off < len(r):
        db, off = _cstr(r, off)
        db = db.decode()
    cplugin = None
    if rcaps & CLIENT_PLUGIN_AUTH and off < len(r):
        cplugin = _cstr(r, off)[0].decode()
    f.response = {
        "caps": rcaps,
        "user": user.decode(),
        "auth_len": alen,
        "database": db,
        "plugin": cplugin,
    }
    f.compressed = bool(rcaps & CLIENT_COMPRESS and caps & CLIENT_COMPRESS)
    f.auth_steps = [alen]
    for seq, p in cpk[1:]:
        if seq == 0:  # a command: the login is over
            break
        f.auth_steps.append(len(p))
    f.change_user_sent = any(seq == 0 and p[:1] == bytes([COM_CHANGE_USER]) for seq, p in cpk[1:])

    phase = "auth"
    for _seq, p in spk[1:]:
        head = p[:1]
        if phase == "auth":
            if head == b"\x00":
                f.login = "ok"
                phase = "command"
                if f.compressed:
                    break  # from here on both directions are compressed
            elif head == b"\xff":
                f.login, f.login_error = "error", parse_err(p)
                break
            elif head == b"\xfe":
                name = _switch_name(p)
                if name:
                    f.switches.append(name)
        else:
            if head == b"\xff":
                f.command_errors.append(parse_err(p))
            elif head == b"\xfe" and len(p) > 9:
                name = _switch_name(p)
                if name:
                    f.change_user_switches.append(name)
    return f
