"""No secret in any output unless --show-secrets.

Every command that reads captures runs on the whole lab corpus
(captures/lab-samples and captures/lab), TLS captures decrypted with their key
logs (so the clear text inside TLS is visible to mysqlwire), full
authentication with the servers' RSA keys, and the passwords supplied in every
way there is (``--password-env``, ``--password-file``, ``--secrets``,
``--candidates``).  stdout and stderr are searched for

* every password of the truth files -- raw, hex (both cases), base64, and as
  JSON / HTML would escape it;
* every client proof / auth payload of the corpus (scrambles, RSA
  ciphertexts, signatures, clear-text answers), as hex, taken from a
  ``--show-secrets`` run.

The same search over ``--show-secrets`` output must find the clear-text
passwords of the clear-text logins (mysql_clear_password, PAM dialog,
caching_sha2 full authentication inside TLS): the search can fail.
"""

from __future__ import annotations

import base64
import html
import json
from functools import lru_cache
from pathlib import Path

import pytest

from tests.test_robust_support import LabCapture, lab_corpus, run_cli

CORPUS = lab_corpus()
PORTS = sorted({str(c.truth.get("port") or 3306) for c in CORPUS})
PORT_OPTS = [opt for p in PORTS for opt in ("--port", p)]
RSA_KEYS = sorted({c.rsa_key for c in CORPUS if c.rsa_key is not None})
RSA_OPTS = [opt for k in RSA_KEYS for opt in ("--rsa-key", str(k))]

# logins whose password travels as clear text (visible to mysqlwire: in plain
# TCP, or inside TLS with the key log)
CLEARTEXT_PLUGINS = {"mysql_clear_password", "dialog"}


def _encodings(secret: bytes) -> set[str]:
    """The ways a secret could show up in text output."""
    text = secret.decode("utf-8", "replace")
    out = {
        secret.hex(),
        secret.hex().upper(),
        " ".join(f"{b:02x}" for b in secret),
        base64.b64encode(secret).decode(),
        json.dumps(text)[1:-1],
        html.escape(text),
    }
    # a dictionary word ("whatever") also appears in prose: search its encodings only
    if not text.isalpha():
        out.add(text)
    return out


@lru_cache(maxsize=1)
def passwords() -> dict[str, set[str]]:
    """password -> its encodings, for every password of the truth files."""
    return {pw: _encodings(pw.encode()) for c in CORPUS for pw in c.passwords()}


def find_leaks(output: str, forbidden: dict[str, set[str]]) -> list[str]:
    return sorted({name for name, encs in forbidden.items() for e in encs if e in output})


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    """A key log with every session of the corpus, and the password inputs."""
    tmp = tmp_path_factory.mktemp("secrets")
    keylog = tmp / "all.keys"
    keylog.write_bytes(b"\n".join(c.keylog.read_bytes() for c in CORPUS if c.keylog))
    candidates = tmp / "candidates.txt"
    candidates.write_text("\n".join(["(empty)", "not-it", *sorted(passwords())]) + "\n")
    return {"keylog": keylog, "candidates": candidates, "tmp": tmp}


def _paths() -> list[str]:
    return [str(c.path) for c in CORPUS]


@pytest.fixture(scope="module")
def proofs(corpus_files) -> frozenset[str]:
    """Hex of every client auth payload of the corpus (8 bytes or more), from a
    --show-secrets --packets run."""
    keylog = corpus_files["keylog"]
    run = run_cli(
        [
            "dissect",
            "--format",
            "jsonl",
            "--packets",
            "--show-secrets",
            "--keylog",
            keylog,
            *PORT_OPTS,
            *_paths(),
        ]
    )
    assert run.code in (0, 1), run.stderr
    out = set()
    for line in run.stdout.splitlines():
        for pkt in json.loads(line)["packets"]:
            if pkt["sender"] != "client":
                continue
            values = [pkt.get("data")] + [
                (pkt.get("fields") or {}).get(k) for k in ("auth_response", "data", "plugin_data")
            ]
            for v in values:
                raw = (
                    bytes.fromhex(v["hex"])
                    if isinstance(v, dict) and "hex" in v
                    else v.encode()
                    if isinstance(v, str)
                    else None
                )
                if raw and len(raw) >= 8:
                    out.add(raw.hex())
    assert len(out) > 100
    return frozenset(out)


def _check_clean(args: list, what: str, proofs: frozenset[str], env: dict | None = None) -> str:
    run = run_cli(args, env=env)
    assert run.exception is None, f"{what}: {run.exception!r}"
    assert run.code in (0, 1), f"{what}: exit {run.code}: {run.stderr}"
    output = run.stdout + run.stderr
    assert output.strip(), what
    leaks = find_leaks(output, passwords())
    assert leaks == [], f"{what}: password(s) in the output: {leaks}"
    shown = [h for h in proofs if h in output or h.upper() in output]
    assert shown == [], f"{what}: {len(shown)} client auth payload(s) in the output"
    return output


DISSECT_VARIANTS = [
    ["--format", fmt, *packets]
    for fmt in ("text", "json", "jsonl")
    for packets in ([], ["--packets"])
]


@pytest.mark.parametrize(
    "variant", DISSECT_VARIANTS, ids=lambda v: "-".join(v).replace("--", "").replace("format-", "")
)
def test_dissect_shows_no_secret(corpus_files, proofs, variant):
    args = ["dissect", *variant, "--keylog", corpus_files["keylog"], *PORT_OPTS, *_paths()]
    _check_clean(args, " ".join(variant), proofs)


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
@pytest.mark.parametrize("command", ["replay", "diagnose"])
def test_replay_and_diagnose_with_candidates_show_no_secret(corpus_files, proofs, command, fmt):
    args = [command, "--format", fmt, "--packets", "--candidates", corpus_files["candidates"]]
    if command == "diagnose":
        args.append("--all")
    args += ["--keylog", corpus_files["keylog"], *RSA_OPTS, *PORT_OPTS, *_paths()]
    out = _check_clean(args, f"{command} --candidates {fmt}", proofs)
    if command == "replay":
        assert "PROOF_MATCHES" in out  # the candidates were really used


def _per_capture_inputs(cap: LabCapture, tmp: Path, how: str):
    """Options + env that give this capture's password the ``how`` way."""
    pw = cap.truth.get("account_password") or cap.truth.get("password") or ""
    env = None
    if how == "env":
        opts, env = ["--password-env", "MYSQLWIRE_TEST_PW"], {"MYSQLWIRE_TEST_PW": pw}
    elif how == "file":
        f = tmp / "pw.txt"
        f.write_text(pw + "\n")
        opts = ["--password-file", f]
    else:
        f = tmp / "secrets.json"
        users = {cap.truth.get("user") or "app": pw}
        for cu in cap.change_users():
            users[cu["user"]] = cu.get("account_password") or cu.get("password") or ""
        f.write_text(json.dumps(users))
        opts = ["--secrets", f]
    return opts, env


@pytest.mark.parametrize("how", ["env", "file", "secrets"])
def test_replay_diagnose_report_per_capture_show_no_secret(corpus_files, proofs, how):
    """Each capture with its own password (every input way), the three
    commands that take passwords; report writes its HTML to stdout."""
    tmp = corpus_files["tmp"]
    verdicts = set()
    for i, cap in enumerate(CORPUS):
        opts, env = _per_capture_inputs(cap, tmp, how)
        common = [*opts, *cap.options(), *RSA_OPTS]
        fmt = ("text", "json", "jsonl")[i % 3]
        out = _check_clean(
            ["replay", "--format", fmt, "--packets", *common, cap.path],
            f"replay {how} {cap.name}",
            proofs,
            env,
        )
        verdicts |= {v for v in ("PROOF_MATCHES", "PROOF_MISMATCH") if v in out}
        if i % 3 == 0:
            _check_clean(
                ["diagnose", "--all", "--packets", "--format", fmt, *common, cap.path],
                f"diagnose {how} {cap.name}",
                proofs,
                env,
            )
        if i % 8 == 0:
            _check_clean(
                ["report", "-o", "-", *common, cap.path], f"report {how} {cap.name}", proofs, env
            )
    assert verdicts == {"PROOF_MATCHES", "PROOF_MISMATCH"}


def _on_the_wire_in_clear(cap: LabCapture) -> bool:
    """Does the login's clear-text password travel where mysqlwire can read it?"""
    pw = cap.truth.get("password")
    if not pw:
        return False
    if cap.truth.get("tls") and not cap.keylog:
        return False
    if cap.truth.get("plugin_final") in CLEARTEXT_PLUGINS:
        return cap.truth.get("tls") or pw.encode() in cap.path.read_bytes()
    # caching_sha2 full authentication inside TLS: the password + NUL
    return bool(cap.truth.get("tls")) and cap.truth.get("plugin_final") == "caching_sha2_password"


CLEARTEXT = [c for c in CORPUS if _on_the_wire_in_clear(c)]


def test_corpus_has_cleartext_logins():
    names = {c.name for c in CLEARTEXT}
    assert len(CLEARTEXT) >= 8, names
    assert any(c.truth.get("tls") for c in CLEARTEXT)  # inside TLS too
    assert any(c.truth["plugin_final"] == "dialog" for c in CLEARTEXT)


@pytest.mark.parametrize("cap", CLEARTEXT, ids=[c.path.stem for c in CLEARTEXT])
@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_show_secrets_shows_the_cleartext(cap, fmt):
    """The control: with --show-secrets the clear text is printed, so the
    searches above would have found it; without, it is not."""
    base = ["dissect", "--packets", "--format", fmt, *cap.options(), cap.path]
    shown = run_cli([*base, "--show-secrets"])
    assert shown.code in (0, 1)
    assert find_leaks(shown.stdout, {"pw": _encodings(cap.truth["password"].encode())}), cap.name
    hidden = run_cli(base)
    assert find_leaks(hidden.stdout + hidden.stderr, passwords()) == []


def test_show_secrets_shows_the_proofs(proofs):
    """The control for the proof search: a --show-secrets run prints client
    proofs (a native scramble here), the default run does not."""
    cap = next(c for c in CORPUS if c.path.name == "mariadb_pymysql_native_ok.pcap")
    base = ["dissect", "--packets", "--format", "jsonl", *cap.options(), cap.path]
    shown = run_cli([*base, "--show-secrets"]).stdout
    assert [h for h in proofs if h in shown]
    hidden = run_cli(base).stdout
    assert not [h for h in proofs if h in hidden]


def test_stored_hashes_are_not_shown(corpus_files, proofs, tmp_path):
    """--account-hash-file: the stored native hash (it lets anyone check
    password guesses) is used, and never printed."""
    import hashlib

    native = [
        c
        for c in CORPUS
        if c.truth.get("plugin_final") == "mysql_native_password"
        and c.truth.get("account_password")
    ]
    assert native
    matched = 0
    for cap in native:
        digest = hashlib.sha1(hashlib.sha1(cap.truth["account_password"].encode()).digest())
        stored = "*" + digest.hexdigest().upper()
        f = tmp_path / "hash.txt"
        f.write_text(stored + "\n")
        forms = {stored, stored[1:], stored[1:].lower()}
        for cmd in ("replay", "diagnose"):
            run = run_cli(
                [
                    cmd,
                    "--format",
                    "jsonl",
                    "--packets",
                    "--account-hash-file",
                    f,
                    *cap.options(),
                    cap.path,
                ]
            )
            out = run.stdout + run.stderr
            assert not [s for s in forms if s in out], f"{cmd} {cap.name} shows the stored hash"
            matched += cmd == "replay" and "PROOF_MATCHES" in out
    assert matched >= len(native) // 2  # the hash was really used
