"""The Scapy layers: one class per connection-phase message, fields from the
grammars, Scapy's usual tools (show, summary, ls, indexing, filter), redacted
secrets, explicit binding, and the stateful session."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

import pytest

scapy_all = pytest.importorskip("scapy.all", reason="scapy is a runtime dependency")

from scapy.layers.inet import IP, TCP  # noqa: E402

from mysqlwire.dissect import DissectOptions, iter_connections  # noqa: E402
from mysqlwire.protocol import GRAMMARS, parse  # noqa: E402
from mysqlwire.scapy import (  # noqa: E402
    MESSAGE_CLASSES,
    MySQL,
    MySQLAuthSwitchRequest,
    MySQLAuthSwitchResponse,
    MySQLClientFrame,
    MySQLComChangeUser,
    MySQLData,
    MySQLErr,
    MySQLHandshakeResponse41,
    MySQLHandshakeV10,
    MySQLMessage,
    MySQLOK,
    MySQLServerFrame,
    MySQLSession,
    Secret,
    dissect_packets,
    secrets_shown,
)
from tests.conftest import PUBLIC  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "captures" / "lab-samples"

# The public field names of every message class, written out by hand: a
# grammar field that is renamed or dropped changes the generated class and
# fails here (and whoever filters on p[Layer].<field> must be told).
EXPECTED_FIELDS = {
    "MySQLHandshakeV10": "protocol_version server_version connection_id auth_plugin_data_part_1 "
    "filler capability_flags_lower character_set status_flags capability_flags_upper "
    "auth_plugin_data_len reserved mariadb_ext_caps auth_plugin_data_part_2 auth_plugin_name "
    "auth_plugin_name_terminated capabilities nonce is_mariadb",
    "MySQLHandshakeV9": "protocol_version server_version connection_id scramble",
    "MySQLHandshakeResponse41": "client_flag max_packet_size character_set filler username "
    "auth_response database database_terminated client_plugin client_plugin_terminated "
    "connect_attrs zstd_compression_level mariadb_ext_caps",
    "MySQLHandshakeResponse320": "client_flag max_packet_size username auth_response database "
    "database_terminated",
    "MySQLSSLRequest": "client_flag max_packet_size character_set filler mariadb_ext_caps",
    "MySQLAuthSwitchRequest": "header plugin_name plugin_data",
    "MySQLOldAuthSwitchRequest": "header",
    "MySQLAuthSwitchResponse": "data",
    "MySQLAuthMoreData": "header data",
    "MySQLAuthNextFactor": "header plugin_name plugin_data",
    "MySQLOK": "header affected_rows last_insert_id status_flags warnings info "
    "session_state_changes",
    "MySQLErr": "header error_code sql_state error_message",
    "MySQLEOF": "header warnings status_flags",
    "MySQLComChangeUser": "command user auth_response database database_terminated "
    "character_set auth_plugin_name auth_plugin_name_terminated connect_attrs",
}


def test_one_class_per_grammar_with_the_grammar_fields():
    assert set(GRAMMARS) <= set(MESSAGE_CLASSES)
    for kind, grammar in GRAMMARS.items():
        cls = MESSAGE_CLASSES[kind]
        names = [f.name for f in cls.fields_desc]
        assert names == EXPECTED_FIELDS[cls.__name__].split(), cls.__name__
        # and they are the grammar's own parts, in wire order
        assert names == [sc.name for sc in grammar.subcons if sc.name]
        assert cls.grammar_kind == kind and issubclass(cls, MySQLMessage)


def _session(path) -> list:
    return list(scapy_all.sniff(offline=str(path), session=MySQLSession, quiet=True))


def _messages(pkts):
    for p in pkts:
        layer = p.getlayer(MySQL)
        while layer is not None and not isinstance(layer, scapy_all.NoPayload):
            if isinstance(layer, MySQLMessage) and not isinstance(layer, MySQLData):
                yield p, layer
            layer = layer.payload


@pytest.mark.parametrize(
    "name",
    [
        "mysql8_mysqlclient_sha2_full_rsa_ok.pcap",
        "lab_connector_change_user_ok.pcap",
        "mariadb_cli_oldpw.pcap",
        "mariadb_cli_ed25519.pcap",
        "lab_pymysql_old_oldpw.pcap",
        "mariadb_cli_compressed_ok.pcap",
        "m8emu_pymysql_sha2_full_tls.pcap",
    ],
)
def test_fields_are_the_grammar_values_and_rebuild_byte_exact(name):
    seen = 0
    for _p, layer in _messages(_session(SAMPLES / name)):
        wire = bytes(layer.raw_packet_cache)
        caps = layer.wire_caps
        want = parse(layer.grammar_kind, wire, caps=caps)
        for f in layer.fields_desc:
            assert layer.getfieldval(f.name) == want[f.name], (layer.name, f.name)
        # rebuilt from the Scapy field values, not from the cached bytes
        clone = layer.copy()
        clone.remove_payload()
        clone.raw_packet_cache = None
        assert bytes(clone) == wire, layer.name
        seen += 1
    assert seen >= 2


def test_show_summary_ls_indexing_and_filter(shared_dir):
    pkts = scapy_all.PacketList(_session(PUBLIC / "zeek" / "change-user-success.pcap"))
    logins = pkts.filter(lambda p: MySQLHandshakeResponse41 in p)
    assert len(logins) == 1
    login = logins[0][MySQLHandshakeResponse41]
    # values tshark's oracle shows for this capture: user root, plugin, thread 17
    assert login.username == b"root" and login.client_plugin == b"caching_sha2_password"
    assert login.client_flag == 0x181BA20D
    (greeting,) = [p[MySQLHandshakeV10] for p in pkts if MySQLHandshakeV10 in p]
    assert (greeting.server_version, greeting.connection_id) == (b"8.4.2", 17)
    switches = [p[MySQLAuthSwitchRequest].plugin_name for p in pkts if MySQLAuthSwitchRequest in p]
    assert switches == [b"mysql_native_password", b"mysql_native_password"]
    (change,) = [p[MySQLComChangeUser] for p in pkts if MySQLComChangeUser in p]
    assert change.user == b"root2"
    text = logins[0].show(dump=True)
    assert "###[ MySQL HandshakeResponse41 ]###" in text and "username  = 'root'" in text
    assert "CLIENT_PROTOCOL_41" in text  # flags by name
    assert "username='root'" in logins[0].summary()
    out = io.StringIO()
    with redirect_stdout(out):
        scapy_all.ls(login)
    assert "username" in out.getvalue() and "NulStringField" in out.getvalue()
    assert isinstance(logins[0][MySQL], MySQLClientFrame) and logins[0][MySQL].seq == 1


def p_kind_list(pkts):
    return [layer.kind for _p, layer in _messages(pkts)]


def test_kinds_in_order_on_a_change_user_capture(shared_dir):
    kinds = p_kind_list(_session(PUBLIC / "zeek" / "change-user-success.pcap"))
    assert kinds == [
        "handshake_v10",
        "handshake_response41",
        "auth_switch_request",
        "auth_switch_response",
        "ok",
        "com_change_user",
        "auth_switch_request",
        "auth_switch_response",
        "ok",
    ]


def test_err_layer_fields(shared_dir):
    pkts = _session(PUBLIC / "deepflow" / "mysql-login-error.pcap")
    (err,) = [p[MySQLErr] for p in pkts if MySQLErr in p]
    assert err.error_code == 1040  # "too many connections", per the catalog
    assert err.sql_state == b"08004"
    assert b"Too many connections" in err.error_message


# --- secrets -------------------------------------------------------------------

PASSWORD = b"hunter2-Clear-Text"


SERVER, CLIENT = ("10.0.0.2", 3306), ("10.0.0.1", 40000)


def _greeting(version: bytes, plugin: bytes, caps_upper: int = 0x000F):
    return MySQLHandshakeV10(
        server_version=version,
        connection_id=9,
        auth_plugin_data_part_1=b"abcdefgh",
        capability_flags_lower=0xF7FF,
        character_set=255,
        status_flags=2,
        capability_flags_upper=caps_upper,  # PLUGIN_AUTH (bit 19) among them
        auth_plugin_data_len=21,
        reserved=b"\0" * 6,
        mariadb_ext_caps=0,
        auth_plugin_data_part_2=b"ijklmnopqrst\0",
        auth_plugin_name=plugin,
    )


def _flow(messages, server=SERVER, client=CLIENT, syn=True) -> list:
    """TCP packets of one connection carrying ``messages`` ((from_server,
    message layer[, sequence id]) tuples; sequence ids 0, 1, 2... by default),
    one frame per segment; ``syn=False``: the capture joined it mid-stream."""
    seqs = {server: 1000, client: 5000}
    out = []
    if syn:
        out = [
            IP(src=client[0], dst=server[0])
            / TCP(sport=client[1], dport=server[1], flags="S", seq=4999),
            IP(src=server[0], dst=client[0])
            / TCP(sport=server[1], dport=client[1], flags="SA", seq=999, ack=5000),
        ]
    for i, (from_server, message, *given) in enumerate(messages):
        seq = given[0] if given else i
        src, dst = (server, client) if from_server else (client, server)
        frame = (MySQLServerFrame if from_server else MySQLClientFrame)(seq=seq) / message
        data = bytes(frame)
        out.append(
            IP(src=src[0], dst=dst[0])
            / TCP(sport=src[1], dport=dst[1], flags="PA", seq=seqs[src], ack=seqs[dst])
            / scapy_all.Raw(data)
        )
        seqs[src] += len(data)
    pkts = [IP(bytes(p)) for p in out]
    for i, p in enumerate(pkts):
        p.time = 1000.0 + i
    return pkts


def _clear_password_login():
    """A mysql_clear_password login built with our own classes."""
    proof = bytes(range(1, 21))
    response = MySQLHandshakeResponse41(
        client_flag=0x000FA685,
        max_packet_size=1 << 24,
        character_set=255,
        username=b"alice",
        auth_response=proof,
        client_plugin=b"mysql_native_password",
    )
    switch = MySQLAuthSwitchRequest(plugin_name=b"mysql_clear_password", plugin_data=b"")
    pkts = _flow(
        [
            (True, _greeting(b"8.0.36", b"mysql_native_password")),
            (False, response),
            (True, switch),
            (False, MySQLAuthSwitchResponse(data=PASSWORD + b"\0")),
            (True, MySQLOK(status_flags=2, warnings=0)),
        ]
    )
    return pkts, proof


def test_session_classifies_v9_320_raw_plugin_data_and_next_factor():
    from mysqlwire.scapy import (
        MySQLAuthMoreData,
        MySQLAuthNextFactor,
        MySQLHandshakeResponse320,
        MySQLHandshakeV9,
        MySQLServerPluginData,
    )

    old = _flow(
        [
            (
                True,
                MySQLHandshakeV9(server_version=b"3.23.58", connection_id=5, scramble=b"abcdefgh"),
            ),
            (
                False,
                MySQLHandshakeResponse320(
                    client_flag=0x0004,
                    max_packet_size=0xFFFFFF,
                    username=b"bob",
                    auth_response=b"ABCDEFGH",
                ),
            ),
            (True, MySQLOK()),
        ]
    )
    assert p_kind_list(_run_session(old)) == ["handshake_v9", "handshake_response320", "ok"]
    dialog = _flow(
        [
            (True, _greeting(b"5.5.5-10.11.6-MariaDB", b"dialog")),
            (
                False,
                MySQLHandshakeResponse41(
                    client_flag=0x000FA685,
                    username=b"pam",
                    auth_response=b"",
                    client_plugin=b"dialog",
                ),
            ),
            (True, MySQLServerPluginData(data=b"\x04Password: ")),
            (False, MySQLAuthSwitchResponse(data=PASSWORD + b"\0")),
            (True, MySQLOK()),
        ]
    )
    out = _run_session(dialog)
    assert p_kind_list(out) == [
        "handshake_v10",
        "handshake_response41",
        "server_plugin_data",
        "auth_switch_response",
        "ok",
    ]
    assert PASSWORD.decode() not in "".join(p.show(dump=True) for p in out)
    mfa_caps = 0x100FA685  # CLIENT_MULTI_FACTOR_AUTHENTICATION (bit 28)
    mfa = _flow(
        [
            (True, _greeting(b"8.0.27", b"caching_sha2_password", caps_upper=0x100F)),
            (
                False,
                MySQLHandshakeResponse41(
                    client_flag=mfa_caps,
                    username=b"mfa",
                    auth_response=bytes(32),
                    client_plugin=b"caching_sha2_password",
                ),
            ),
            (True, MySQLAuthMoreData(data=b"\x03")),
            (
                True,
                MySQLAuthNextFactor(
                    plugin_name=b"authentication_ldap_sasl_client", plugin_data=b"x"
                ),
            ),
            (False, MySQLAuthSwitchResponse(data=b"token")),
            (True, MySQLOK()),
        ]
    )
    assert p_kind_list(_run_session(mfa)) == [
        "handshake_v10",
        "handshake_response41",
        "auth_more_data",
        "auth_next_factor",
        "auth_switch_response",
        "ok",
    ]
    # the same 0x02 packet without MFA negotiated is plugin data, not a next factor
    no_mfa = _flow(
        [
            (True, _greeting(b"8.0.27", b"caching_sha2_password")),
            (
                False,
                MySQLHandshakeResponse41(
                    client_flag=0x000FA685,
                    username=b"u",
                    auth_response=bytes(32),
                    client_plugin=b"caching_sha2_password",
                ),
            ),
            (True, MySQLAuthNextFactor(plugin_name=b"x", plugin_data=b"")),
        ]
    )
    assert p_kind_list(_run_session(no_mfa))[-1] == "server_plugin_data"


def _run_session(pkts):
    sess = MySQLSession()
    out = []
    for p in pkts:
        out.extend(sess.process_all(p))
    return out


def test_secrets_are_redacted_unless_asked():
    pkts, proof = _clear_password_login()
    out = _run_session(pkts)
    kinds = p_kind_list(out)
    assert kinds == [
        "handshake_v10",
        "handshake_response41",
        "auth_switch_request",
        "auth_switch_response",
        "ok",
    ]
    sw = next(p for p in out if MySQLAuthSwitchResponse in p)[MySQLAuthSwitchResponse]
    login = next(p for p in out if MySQLHandshakeResponse41 in p)
    # explicit access is asking: the values are the wire bytes
    assert sw.data == PASSWORD + b"\0" and isinstance(sw.data, Secret)
    assert login[MySQLHandshakeResponse41].auth_response == proof
    needles = [PASSWORD, PASSWORD.decode(), PASSWORD.hex(), proof.hex(), repr(proof)]
    views = []
    for p in out:
        views.append(p.show(dump=True))
        views.append(p.summary())
        views.append(repr(p))
        views.append(p.command())
        buf = io.StringIO()
        with redirect_stdout(buf):
            scapy_all.ls(p)
            p.show()
        views.append(buf.getvalue())
    blob = "\n".join(views)
    for needle in needles:
        assert str(needle) not in blob
    assert "<redacted: 19 bytes>" in blob and "<redacted: 20 bytes>" in blob
    # opt-in: module switch, or show(secrets=True) on the layer
    with secrets_shown():
        assert PASSWORD.decode() in sw.show(dump=True)
    assert PASSWORD.decode() in sw.show(dump=True, secrets=True)
    assert PASSWORD.decode() not in sw.show(dump=True)


# --- binding ---------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_import_changes_no_scapy_binding():
    r = _python(
        f"""
        from scapy.all import TCP, rdpcap
        before = list(TCP.payload_guess)
        import mysqlwire.scapy as m
        assert TCP.payload_guess == before, "import bound something"
        pkts = rdpcap({str(SAMPLES / "mariadb_pymysql_native_ok.pcap")!r})
        assert not any(m.MySQL in p for p in pkts)
        m.bind_port(3306)
        assert m.bound_ports() == {{3306}}
        assert sum(m.MySQLHandshakeV10 in p for p in rdpcap({str(SAMPLES / "mariadb_pymysql_native_ok.pcap")!r})) == 1
        m.unbind_port(3306)
        assert TCP.payload_guess == before
        print("ok")
        """
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


@pytest.mark.parametrize("contrib_first", [True, False])
def test_coexists_with_scapy_contrib_in_either_order(contrib_first):
    sample = str(SAMPLES / "mariadb_pymysql_native_ok.pcap")
    r = _python(
        f"""
        import warnings
        from scapy.all import load_contrib, rdpcap
        import mysqlwire.scapy as m
        def contrib():
            load_contrib("mysql")
            import scapy.contrib.mysql as cm
            return cm
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if {contrib_first}:
                cm = contrib(); m.bind_port(3306)
            else:
                m.bind_port(3306); cm = contrib()
        conflicts = [w for w in caught if issubclass(w.category, m.LayerConflictWarning)]
        assert len(conflicts) == (1 if {contrib_first} else 0), conflicts
        assert m.contrib_ports() == {{3306}}
        pkts = rdpcap({sample!r})
        # mysqlwire decodes the port it was asked to, whatever the order
        assert sum(m.MySQLHandshakeV10 in p for p in pkts) == 1
        assert not any(cm.MySQLServer in p or cm.MySQLClient in p for p in pkts)
        # giving the port back: the contrib layer decodes it again
        m.unbind_port(3306)
        pkts = rdpcap({sample!r})
        assert sum(cm.MySQLHandshakeV10 in p for p in pkts) == 1
        assert not any(m.MySQL in p for p in pkts)
        # the session does not depend on bindings
        from scapy.all import sniff
        out = sniff(offline={sample!r}, session=m.MySQLSession, quiet=True)
        assert sum(m.MySQLHandshakeResponse41 in p for p in out) == 1
        print("ok")
        """
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr + r.stdout


# --- the session -----------------------------------------------------------------


def test_session_finds_mysql_on_any_port_without_binding(shared_dir):
    pkts = _session(PUBLIC / "zeek" / "mysql-on-port-5432.pcap")
    kinds = p_kind_list(pkts)
    assert kinds[:2] == ["handshake_v10", "handshake_response41"] and "com_change_user" in kinds
    only_3407 = list(
        scapy_all.sniff(
            offline=str(PUBLIC / "zeek" / "mysql-on-port-5432.pcap"),
            session=MySQLSession(ports={3407}),
            quiet=True,
        )
    )
    assert p_kind_list(only_3407) == []


def test_stateless_guess_is_wrong_where_the_session_is_right(shared_dir):
    """dexas/mysql.pcap: result-set rows starting 0x01/0xFE look like
    AuthMoreData/AuthSwitchRequest to a per-packet guess."""
    path = PUBLIC / "dexas" / "mysql.pcap"
    auth_only = {"auth_more_data", "auth_switch_request", "old_auth_switch_request"}
    session_late = [
        layer.kind for _p, layer in _messages(_session(path)) if layer.kind in auth_only
    ]
    assert session_late == []
    r = _python(
        f"""
        from scapy.all import rdpcap
        import mysqlwire.scapy as m
        m.bind_port(3306)
        kinds = [l.kind for p in rdpcap({str(path)!r}) if m.MySQL in p
                 for l in p[m.MySQL].iterpayloads() if isinstance(l, m.MySQLMessage)]
        print(sum(k in {auth_only!r} for k in kinds))
        """
    )
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) > 0


def test_change_user_on_a_connection_joined_mid_stream():
    from mysqlwire.protocol import build

    # the login was before the capture: the client's capabilities are unknown
    # (0), so COM_CHANGE_USER is read in its pre-4.1 layout
    change = build("com_change_user", {"user": b"bob", "auth_response": b"abcdefgh"}, caps=0)
    pkts = _flow(
        [
            (False, MySQLData(data=b"\x03SELECT 1"), 0),
            (True, MySQLOK(status_flags=2), 1),
            (False, MySQLData(data=change), 0),
            (True, MySQLErr(error_code=1045, sql_state=b"28000", error_message=b"denied"), 1),
        ],
        syn=False,
    )
    out = _run_session(pkts)
    assert p_kind_list(out) == ["com_change_user", "err"]
    from mysqlwire.scapy import MySQLComChangeUser

    login = out[2][MySQLComChangeUser]
    assert (login.user, login.auth_response) == (b"bob", b"abcdefgh")
    assert out[3][MySQLErr].error_code == 1045
    (conn,) = dissect_packets(pkts)  # the dissector agrees: mid-stream, one change-user
    assert conn.midstream and [ex.kind for ex in conn.exchanges] == ["change_user"]


def test_session_over_ipv6():
    from scapy.layers.inet6 import IPv6

    pkts, _proof = _clear_password_login()
    v6 = []
    for p in pkts:
        src = "fd00::1" if p[IP].src == CLIENT[0] else "fd00::2"
        dst = "fd00::1" if p[IP].dst == CLIENT[0] else "fd00::2"
        q = IPv6(bytes(IPv6(src=src, dst=dst) / p[TCP].copy()))
        q.time = p.time
        v6.append(q)
    assert p_kind_list(_run_session(v6)) == [
        "handshake_v10",
        "handshake_response41",
        "auth_switch_request",
        "auth_switch_response",
        "ok",
    ]


def test_frames_split_over_segments_and_tls_bytes():
    pkts, _proof = _clear_password_login()
    # split the greeting's segment in two
    g = pkts[2]
    data = bytes(g[TCP].payload)

    def part(offset, chunk):
        tcp = TCP(sport=g.sport, dport=g.dport, flags="PA", seq=g.seq + offset, ack=g.ack)
        return IP(bytes(IP(src=g[IP].src, dst=g[IP].dst) / tcp / scapy_all.Raw(chunk)))

    first, second = part(0, data[:10]), part(10, data[10:])
    first.time, second.time = g.time, g.time + 0.5
    out = _run_session(pkts[:2] + [first, second] + pkts[3:])
    assert MySQL not in out[2] and bytes(out[2][TCP].payload) == data[:10]  # held: Raw
    assert MySQLHandshakeV10 in out[3] and bytes(out[3][TCP].payload) == data  # whole frame
    # written out, the joined packet is consistent (IP length, checksums)
    again = IP(bytes(out[3]))
    assert again.len == 20 + again[TCP].dataofs * 4 + len(data)
    assert MySQLHandshakeV10 not in again and bytes(again[TCP].payload) == data
    fresh = again.copy()
    del fresh[TCP].chksum
    del fresh[IP].chksum
    fresh = IP(bytes(fresh))  # checksums computed from scratch
    assert (fresh[TCP].chksum, fresh[IP].chksum) == (again[TCP].chksum, again[IP].chksum)
    assert p_kind_list(out)[0] == "handshake_v10"


def test_segments_keep_every_byte_and_chain_frames():
    two = b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00" + b"\x01\x00\x00\x03\x0e"
    frame = MySQLServerFrame(two)
    ok = frame[MySQLOK]
    assert (frame.seq, frame.length, ok.status_flags) == (2, 7, 2)
    second = ok.payload
    assert isinstance(second, MySQLServerFrame) and second.seq == 3
    assert bytes(frame) == two
    # building: lengths are filled in, frame by frame
    built = (
        MySQLServerFrame(seq=2)
        / MySQLOK(status_flags=2)
        / MySQLServerFrame(seq=3)
        / MySQLData(data=b"\x0e")
    )
    assert bytes(built) == two


@pytest.mark.parametrize(
    "name",
    [
        "mariadb_cli_ed25519.pcap",
        "mysql8_mysqlclient_sha2_full_rsa_ok.pcap",
        "lab_connector_change_user_ok.pcap",
        "mariadb_connector_port3407_ok.pcap",
    ],
)
def test_dissect_packets_matches_dissect_with_the_same_defaults(name):
    pcap = SAMPLES / name
    ours = [c.to_record() for c in iter_connections(pcap, DissectOptions())]
    via_scapy = [
        c.to_record() for c in dissect_packets(scapy_all.rdpcap(str(pcap)), packets_detail=False)
    ]
    for rec in ours + via_scapy:
        rec.pop("capture")
    assert via_scapy == ours
    assert dissect_packets(scapy_all.rdpcap(str(pcap)), ports=(1,)) == []


def test_dissect_packets_discovers_any_port_with_the_default_options():
    opts = DissectOptions()
    if tuple(opts.ports) == (3306,) and not opts.detect:
        pytest.skip("DissectOptions() still examines only 3306 (discovery defaults not merged)")
    (conn,) = dissect_packets(scapy_all.rdpcap(str(SAMPLES / "mariadb_connector_port3407_ok.pcap")))
    assert conn.outcome == "ok" and conn.server.endswith(":3407")


def test_mutated_captures_never_raise():
    """Bytes changed at random in the TCP payloads (sequence ids, first bytes,
    lengths, cut segments): the session and Scapy's views of its packets never
    raise."""
    import random

    base = list(scapy_all.rdpcap(str(SAMPLES / "mysql8_mysqlclient_sha2_full_rsa_ok.pcap")))
    base += list(scapy_all.rdpcap(str(SAMPLES / "mariadb_cli_oldpw.pcap")))
    rng = random.Random(7)
    for _trial in range(25):
        sess = MySQLSession()
        for p in base:
            q = p
            if TCP in p and len(p[TCP].payload) and rng.random() < 0.3:
                data = bytearray(bytes(p[TCP].payload))
                for _ in range(rng.randint(1, 4)):
                    i = rng.randrange(len(data))
                    data[i] = rng.choice([0, 1, 2, 0xFE, 0xFF, 0x0A, rng.randrange(256)])
                if rng.random() < 0.2:
                    data = data[: rng.randrange(len(data) + 1)]
                q = p.copy()
                q[TCP].remove_payload()
                q[TCP].add_payload(scapy_all.Raw(bytes(data)))
                q = q.__class__(bytes(q))
                q.time = p.time
            for out in sess.process_all(q):
                out.show(dump=True)
                out.summary()
                repr(out)
