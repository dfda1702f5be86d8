"""Run the external clients' scenarios (``ext_scenarios.py``) under capture, and check them.

``run_ext_all(lab, outdir)`` builds the clients (``extclients.Toolchain``), starts one
``mysqlwire serve`` per lane (in-process ``ServerThread``, the lab's certificate, one RSA key for
all, kept beside the captures as ``serve-rsa.pem`` so the RSA full-auth captures can be replayed),
and runs every scenario once in parallel lanes, like ``scenarios.run_all``: one pcap (+ ``.keys``)
and one truth line each. ``ext_problems(run)`` checks a run against its truth with the lab's own
reader (``wirecheck.py``), never with mysqlwire's dissector.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from .capture import capture, tcp_connections
from .checks import client_problems, keylog_problems, wire_problems
from .clients import LoginSpec, build_keylog_shim
from .ext_scenarios import EXT_SCENARIOS, SERVE_ACCOUNTS, SERVE_VERSION, SHA2, ExtScenario
from .extclients import Toolchain, ext_login
from .mariadb import ACCOUNTS, LANE_HOSTS, MariaDBLab
from .scenarios import ATTEMPTS, LabRun, ScenarioRun, build_truth
from .wirecheck import CLIENT_SSL, read_connection

RSA_NAME = "serve-rsa.pem"


def _rsa_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)


class ServeLanes:
    """One ``mysqlwire serve`` (ServerThread) per lane address."""

    def __init__(self, lab: MariaDBLab, outdir: Path, lanes: int, rsa_key: Path | None = None):
        from mysqlwire.serve import ServerConfig
        from mysqlwire.serve.server import ServerThread

        self.rsa = outdir / RSA_NAME
        if rsa_key is not None and rsa_key.is_file():  # keep the key of earlier captures
            self.rsa.write_bytes(rsa_key.read_bytes())
            os.chmod(self.rsa, 0o600)
        else:
            _rsa_key(self.rsa)
        self.threads = []
        for host in LANE_HOSTS[:lanes]:
            cfg = ServerConfig(
                host=host,
                port=0,
                version=SERVE_VERSION,
                accounts={k: dict(v) for k, v in SERVE_ACCOUNTS.items()},
                databases=("shop",),
                tls_cert=str(lab.certs["cert"]),
                tls_key=str(lab.certs["key"]),
                rsa_private_key=str(self.rsa),
                skip_name_resolve=True,
            )
            self.threads.append(ServerThread(cfg).start())

    def lane(self, k: int):
        return self.threads[k]

    def set_cache(self, k: int, user: str, state: str | None) -> None:
        st = self.threads[k]
        if state == "warm":
            st.call(st.server.warm_cache, user)
        elif state == "cold":
            st.flush_cache(user)

    def stop(self) -> None:
        for st in self.threads:
            st.stop()


def _truth(sc: ExtScenario, lab, serve_port: int | None, **kw) -> dict:
    if sc.server != "serve":
        return build_truth(sc, lab=lab, **kw)
    fake = SimpleNamespace(servers={"serve": SimpleNamespace(port=serve_port)}, version=None)
    t = build_truth(sc, lab=fake, **kw)
    t["server"] = f"mysqlwire-serve-{SERVE_VERSION.split('-')[0]}"
    t["plugin_initial"] = SHA2
    t["serve_cache"] = sc.serve_cache
    if sc.auth_steps is not None:
        t["auth_steps"] = list(sc.auth_steps)
    if not sc.tls_used:
        t["rsa_private_key"] = RSA_NAME
    return t


def run_ext_scenario(
    sc: ExtScenario, lab, serve: ServeLanes | None, tc: Toolchain, shim, outdir: Path, lane: int
) -> ScenarioRun:
    host = LANE_HOSTS[lane % len(LANE_HOSTS)]
    pcap = outdir / f"{sc.name}.pcap"
    keylog = outdir / f"{sc.name}.keys" if sc.keylog else None
    if sc.client in tc.missing:
        return ScenarioRun(
            sc, pcap, keylog, {}, None, None, lane, 0.0, skipped=tc.missing[sc.client]
        )
    if sc.server == "serve":
        port = serve.lane(lane).port
    else:
        port = lab.servers[sc.server].port
    cu = None
    if sc.change_user:
        acct = ACCOUNTS.get(sc.change_user["user"])
        pw = sc.change_user.get("password")
        cu = {
            "user": sc.change_user["user"],
            "password": pw if pw is not None else (acct.password if acct else ""),
            "database": sc.change_user.get("database"),
        }
    spec = LoginSpec(
        client=sc.client,
        host=host,
        port=port,
        user=sc.user,
        password=sc.given_password,
        database=sc.database,
        tls=sc.tls,
        ca=str(lab.ca),
        keylog=str(keylog) if keylog else None,
        session_queries=sc.server != "serve",
        cli_args=list(sc.options),
        change_user=cu,
    )
    t0 = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        for p in (pcap, keylog):
            if p is not None and p.exists():
                p.unlink()
        if sc.server == "serve":
            serve.set_cache(lane, sc.user, sc.serve_cache)
        with capture(pcap, port, host) as cap:
            result = ext_login(spec, tc, str(shim) if shim else None)
        if not cap.dropped or attempts >= ATTEMPTS:
            break
    truth = _truth(
        sc,
        lab,
        port if sc.server == "serve" else None,
        host=host,
        pcap=pcap,
        keylog=keylog,
        result=result,
    )
    return ScenarioRun(
        sc, pcap, keylog, truth, result, cap, lane, time.monotonic() - t0, attempts=attempts
    )


def run_ext_all(
    lab: MariaDBLab,
    outdir: Path,
    scenarios: list[ExtScenario] | None = None,
    *,
    lanes: int | None = None,
    rsa_key: Path | None = None,
) -> tuple[LabRun, Toolchain]:
    scenarios = list(EXT_SCENARIOS if scenarios is None else scenarios)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    lanes = max(1, min(lanes or len(LANE_HOSTS), len(LANE_HOSTS)))
    t0 = time.monotonic()
    tc = Toolchain.prepare(outdir / "build")
    shim = build_keylog_shim(outdir)
    serve = ServeLanes(lab, outdir, lanes, rsa_key)
    run = LabRun(outdir=outdir, keylog_shim=shim)
    lock = threading.Lock()

    def lane_worker(k: int) -> None:
        for sc in scenarios[k::lanes]:
            r = run_ext_scenario(sc, lab, serve, tc, shim, outdir, k)
            with lock:
                run.runs[sc.name] = r

    try:
        with ThreadPoolExecutor(lanes, thread_name_prefix="ext-lane") as ex:
            for f in [ex.submit(lane_worker, k) for k in range(lanes)]:
                f.result()
    finally:
        serve.stop()
    run.seconds = time.monotonic() - t0
    run.runs = {sc.name: run.runs[sc.name] for sc in scenarios if sc.name in run.runs}
    with open(outdir / "truth.jsonl", "w") as f:
        for r in run.runs.values():
            if r.skipped is None:
                f.write(json.dumps(r.truth) + "\n")
    return run, tc


# ------------------------------------------------------------------ checks


class _P(list):
    def expect(self, ok, what: str) -> bool:
        if not ok:
            self.append(what)
        return bool(ok)


# mysqlnd reports its connect errors with SQLSTATE HY000, whatever the server's ERR says
_OWN_SQLSTATE = ("php-pdo", "php-mysqli")


def ext_client_problems(run: ScenarioRun) -> list[str]:
    sc, r = run.scenario, run.result
    if sc.server != "serve":
        out = client_problems(run)
        if sc.client in _OWN_SQLSTATE:
            out = [p for p in out if not p.startswith("sqlstate HY000")]
        return out
    p = _P()
    if not p.expect(r is not None and r.version, "no client result / version"):
        return p
    p.expect(r.connected == sc.connected, f"connected={r.connected}, truth says {sc.connected}")
    if sc.connected:
        p.expect(r.error is None and r.command_error is None, "the client raised")
    elif p.expect(r.error is not None, "the client did not report an error"):
        e = r.error
        p.expect(e.cls not in ("WorkerCrashed", "Timeout"), f"client run failed: {e.cls}")
        p.expect(e.code == sc.client_code, f"client error code {e.code}, truth {sc.client_code}")
        if sc.client_says:
            p.expect(sc.client_says in e.message, f"client message lacks {sc.client_says!r}")
    return p


def _serve_wire_problems(run: ScenarioRun) -> list[str]:
    t = run.truth
    p = _P()
    if not p.expect(run.pcap.is_file() and run.pcap.stat().st_size > 24, "empty or missing pcap"):
        return p
    conns = tcp_connections(run.pcap)
    if not p.expect(len(conns) == 1, f"{len(conns)} TCP connections in the capture, not 1"):
        return p
    c = conns[0]
    p.expect(c.server == (t["server_address"], t["port"]), f"server endpoint {c.server}")
    f = read_connection(c.c2s, c.s2c)
    g = f.greeting
    if not p.expect(g is not None, "no greeting"):
        return p
    p.expect(g["version"] == SERVE_VERSION and g["plugin"] == SHA2, f"greeting {g}")
    p.expect(g["caps"] & CLIENT_SSL, "serve offers TLS")
    p.expect(f.tls == t["tls"], f"TLS on the wire: {f.tls}, truth {t['tls']}")
    if f.tls:
        p.expect(c.c2s[36:37] == b"\x16", "no TLS record after the SSLRequest")
        return p
    r = f.response or {}
    p.expect(r.get("user") == t["user"], f"response user {r.get('user')}")
    p.expect(r.get("plugin") == t["plugin_client"], f"response plugin {r.get('plugin')}")
    p.expect(f.switches == t["switches"], f"switches {f.switches}, truth {t['switches']}")
    p.expect(f.login == t["outcome"], f"login {f.login}, truth {t['outcome']}")
    if t.get("auth_steps") is not None:
        p.expect(f.auth_steps == t["auth_steps"], f"auth steps {f.auth_steps}, {t['auth_steps']}")
    return p


def ext_wire_problems(run: ScenarioRun) -> list[str]:
    if run.scenario.server == "serve":
        return _serve_wire_problems(run)
    return wire_problems(run)


def ext_problems(run: ScenarioRun) -> list[str]:
    out = ext_client_problems(run) + ext_wire_problems(run)
    if run.scenario.keylog:
        out += keylog_problems(run)
    return out


__all__ = ["ServeLanes", "ext_client_problems", "ext_problems", "ext_wire_problems", "run_ext_all"]
