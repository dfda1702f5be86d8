"""What mysqlwire says about the traffic the lab just made, against the truth
the lab knows (the password it gave the client, the account, the client's
exception): dissect fields, replay verdict, diagnosis root cause."""

from __future__ import annotations

import pytest

from mysqlwire.diagnose import diagnose_connection
from mysqlwire.dissect import DissectOptions, iter_connections
from mysqlwire.replay import Secrets, replay_connection
from mysqlwire.tls import KeyLog

from ..test_diagnose_lab_corpus import DEVIATIONS

pytestmark = pytest.mark.lab


def _conn(cap):
    pcap, truth, keylog = cap
    opts = DissectOptions(
        ports=(truth["port"],), keylog=KeyLog.from_file(keylog) if keylog else None
    )
    conns = list(iter_connections(pcap, opts))
    if truth.get("client_port"):
        conns = [c for c in conns if c.client.endswith(f":{truth['client_port']}")] or conns
    assert len(conns) == 1, f"{len(conns)} connections in {pcap}"
    return conns[0]


def test_every_scenario_dissects_replays_and_diagnoses_as_the_truth_says(lab_run):
    problems = []
    for name, cap in sorted(lab_run.items()):
        _, t, keylog = cap
        conn = _conn(cap)
        rec = conn.to_record()
        opaque = t["tls"] and not keylog
        if opaque:
            got = (rec["tls"], rec["outcome"], rec["user"])
            if got != (True, "encrypted", None):
                problems.append(f"{name}: keyless TLS gave {got}")
        else:
            for tkey, rkey in (
                ("user", "user"),
                ("switches", "switches"),
                ("outcome", "outcome"),
                ("tls", "tls"),
                ("compressed", "compressed"),
            ):
                if (
                    t.get(tkey) is not None
                    and rec[rkey] != t[tkey]
                    and not (tkey == "user" and t["error_code"] == 1130)
                ):
                    problems.append(f"{name}: {tkey} {rec[rkey]!r}, truth {t[tkey]!r}")
            code = rec["error"]["code"] if rec["error"] else None
            if code != t.get("error_code"):
                problems.append(f"{name}: error {code}, truth {t.get('error_code')}")
        account_pw = t.get("account_password")
        given = account_pw if account_pw is not None else t.get("password")
        verdict = replay_connection(
            conn, Secrets(password=given) if given is not None else Secrets()
        )
        if verdict.verdict != t["expected_verdict"] and not (
            opaque and verdict.verdict == "UNVERIFIABLE"
        ):
            problems.append(
                f"{name}: verdict {verdict.verdict} ({verdict.detail}), truth {t['expected_verdict']}"
            )
        # the root cause is judged with the account's password (none for an unknown account)
        conn2 = _conn(cap)
        findings = diagnose_connection(
            conn2, Secrets(password=account_pw) if account_pw is not None else None
        )
        codes = [f.code for f in findings]
        errors = [f.code for f in findings if f.severity == "error"]
        want = t.get("expected_code")
        if name in DEVIATIONS:
            want = DEVIATIONS[name][0]  # the wire cannot tell; the reason is there
        if want == "OK":
            if errors:
                problems.append(f"{name}: error findings {errors} for a login the truth calls OK")
        elif (
            want
            and (not codes or codes[0] != want)
            and not (opaque and want == "ENCRYPTED_NO_KEYS" and want in codes)
        ):
            problems.append(f"{name}: top finding {codes[:3]}, truth {want}")
    assert not problems, "\n".join(problems)
