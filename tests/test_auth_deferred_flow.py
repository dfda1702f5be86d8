"""DeferredFlow (the connection-phase follower's lazy plugin run) answers
``awaits_server_data`` exactly as a Flow walked packet by packet, whenever it is asked."""

from __future__ import annotations

import random

import pytest

from mysqlwire.auth import KNOWN_PLUGINS, DeferredFlow, Flow, defer_flow, get_plugin, start_flow
from mysqlwire.handshake import Handshake

NONCE = bytes(range(1, 21))

CLIENT_CALLS = [
    ("handshake_response", b""),
    ("handshake_response", bytes(20)),
    ("handshake_response", bytes(32)),
    ("auth_data", b""),
    ("auth_data", b"\x01"),
    ("auth_data", b"\x02"),
    ("auth_data", bytes(64)),
    ("auth_data", b"secret\x00"),
    ("com_change_user", bytes(20)),
]
SERVER_CALLS = [
    ("server_plugin_data", bytes(32)),
    ("server_plugin_data", b"Password: "),
    ("server_plugin_data", b"\x04Password: "),
    ("server_plugin_data", bytes(18)),
    ("auth_more_data", b"\x03"),
    ("auth_more_data", b"\x04"),
    ("auth_more_data", b"-----BEGIN PUBLIC KEY-----\n"),
]


def test_may_await_server_data_is_what_the_plugins_define():
    # the MariaDB plugins whose first server packet is raw data (ed25519's nonce,
    # parsec's ext-salt); every other plugin can never be waiting for it
    waiting = {n for n in KNOWN_PLUGINS if get_plugin(n).may_await_server_data}
    assert waiting == {"ed25519", "client_ed25519", "parsec"}


@pytest.mark.parametrize("name", sorted(KNOWN_PLUGINS) + ["no_such_plugin", None])
def test_deferred_flow_answers_like_a_flow(name):
    rng = random.Random(f"deferred-{name}")
    for _ in range(60):
        ref = Flow(name, NONCE, nonce=NONCE)
        lazy = DeferredFlow(name, NONCE, nonce=NONCE)
        ask_every = rng.random() < 0.5  # asked after every packet, or only at the end
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.55:
                kind, data = rng.choice(CLIENT_CALLS)
                in_tls = rng.random() < 0.3
                ref.client(kind, data, in_tls)
                lazy.client(kind, data, in_tls)
            else:
                kind, data = rng.choice(SERVER_CALLS)
                ref.server(kind, data)
                lazy.server(kind, data)
            if ask_every:
                assert lazy.awaits_server_data() == ref.awaits_server_data()
        assert lazy.awaits_server_data() == ref.awaits_server_data()


def test_known_answers():
    # MariaDB ed25519 named in the handshake response: the client sends nothing, the
    # server's next packet is the raw 32-byte nonce, the client's signature ends it
    f = DeferredFlow("client_ed25519", NONCE, nonce=NONCE)
    f.client("handshake_response", b"")
    assert f.awaits_server_data() is True
    f.server("server_plugin_data", bytes(32))
    f.client("auth_data", bytes(64))
    assert f.awaits_server_data() is False
    # parsec: an empty first answer asks for the ext-salt
    f = DeferredFlow("parsec", NONCE, nonce=NONCE)
    f.client("handshake_response", b"")
    assert f.awaits_server_data() is True
    # native: never, whatever it is sent
    f = DeferredFlow("mysql_native_password", NONCE, nonce=NONCE)
    f.client("handshake_response", b"")
    assert f.awaits_server_data() is False


@pytest.mark.parametrize(
    "kind,plugin,data",
    [
        ("auth_switch_request", "client_ed25519", bytes(32)),
        ("auth_switch_request", "parsec", b""),
        ("auth_next_factor", "client_ed25519", bytes(32)),
        ("old_auth_switch_request", None, b""),
    ],
)
def test_defer_flow_starts_like_start_flow(kind, plugin, data):
    ref = start_flow(kind, plugin, data, NONCE)
    lazy = defer_flow(kind, plugin, data, NONCE)
    assert lazy.name == ref.name
    for step in (("auth_data", b""), ("auth_data", bytes(64))):
        ref.client(*step)
        lazy.client(*step)
        assert lazy.awaits_server_data() == ref.awaits_server_data()


def test_handshake_is_slotted_and_quiet_about_its_nonce():
    hs = Handshake(max_packet=1024)
    hs.nonce = b"\x01secret-nonce"
    assert "secret-nonce" not in repr(hs)
    with pytest.raises(AttributeError):
        hs.not_an_attribute = 1
