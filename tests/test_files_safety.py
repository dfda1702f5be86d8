"""#20 items 2 and 4: key logs are read bounded and streaming, special files are
refused; every output path is checked before anything is written (never an
input, never another output, no symlink followed, only regular files
replaced, secrets 0600, `capture add` confined to --dest).

Every input is built in a tmp folder.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mysqlwire.outputs import (
    OutputPathError,
    check_output,
    check_outputs,
    confined,
    prepare_secret_file,
    write_output,
)
from tests.test_robust_support import lab_corpus, run_cli, run_measured

CORPUS = lab_corpus()
CLEAR = next(
    c
    for c in CORPUS
    if c.truth.get("plugin_final") == "mysql_clear_password"
    and not c.truth.get("tls")
    and c.truth["password"].encode() in c.path.read_bytes()
)
TLS = next(c for c in CORPUS if c.keylog is not None and c.truth.get("tls"))
MIB = 1024 * 1024


def _copy(cap, tmp: Path, name: str = "in.pcap") -> Path:
    p = tmp / name
    p.write_bytes(cap.path.read_bytes())
    return p


def _one_error_line(run) -> str:
    assert run.exception is None, repr(run.exception)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mysqlwire: error: "), run.stderr
    return lines[0]


# --- output paths: redact ---------------------------------------------------------------


def test_redact_map_onto_the_input_is_refused(tmp_path):
    src = _copy(CLEAR, tmp_path)
    before = src.read_bytes()
    run = run_cli(["redact", src, "-o", tmp_path / "out.pcap", "--map", src])
    assert run.code == 2
    assert "is also an input" in _one_error_line(run)
    assert src.read_bytes() == before
    assert not (tmp_path / "out.pcap").exists()


def test_redact_map_equal_to_output_is_refused(tmp_path):
    src = _copy(CLEAR, tmp_path)
    out = tmp_path / "out.pcap"
    run = run_cli(["redact", src, "-o", out, "--map", out])
    assert run.code == 2 and "is also the output" in _one_error_line(run)
    assert not out.exists()
    # the same file under another spelling
    run = run_cli(["redact", src, "-o", out, "--map", tmp_path / "." / "out.pcap"])
    assert run.code == 2 and not out.exists()


def test_existing_map_becomes_0600(tmp_path):
    src = _copy(CLEAR, tmp_path)
    m = tmp_path / "map.json"
    m.write_text("{}")
    m.chmod(0o644)
    run = run_cli(["redact", src, "-o", tmp_path / "out.pcap", "--map", m, *CLEAR.options()[:2]])
    assert run.code == 0, run.stderr
    assert stat.S_IMODE(m.stat().st_mode) == 0o600
    assert json.loads(m.read_text())["users"]


def test_map_symlink_is_not_followed(tmp_path):
    src = _copy(CLEAR, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "map.json"
    link.symlink_to(victim)
    out = tmp_path / "out.pcap"
    run = run_cli(["redact", src, "-o", out, "--map", link, *CLEAR.options()[:2]])
    assert run.code == 2 and "symbolic link" in _one_error_line(run)
    assert victim.read_text() == "keep me" and link.is_symlink() and not out.exists()
    # an output symlink pointing at the input: refused too, input intact
    link2 = tmp_path / "o.pcap"
    link2.symlink_to(src)
    before = src.read_bytes()
    run = run_cli(["redact", src, "-o", link2, *CLEAR.options()[:2]])
    assert run.code == 2 and src.read_bytes() == before


def test_output_fifo_is_written_not_replaced(tmp_path):
    src = _copy(CLEAR, tmp_path)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = bytearray()

    def reader():
        with open(fifo, "rb") as fh:
            got.extend(fh.read())

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    run = run_cli(["redact", src, "-o", fifo, *CLEAR.options()[:2]])
    t.join(30)
    assert run.code == 0, run.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO
    assert len(got) == src.stat().st_size and bytes(got[:4]) == src.read_bytes()[:4]
    assert CLEAR.truth["password"].encode() not in got


def test_output_char_device_stays_a_device(tmp_path):
    src = _copy(CLEAR, tmp_path)
    run = run_cli(["redact", src, "-o", "/dev/null", *CLEAR.options()[:2]])
    assert run.code == 0, run.stderr
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    # a device that fails writing: one line, exit 2, the device untouched
    if os.path.exists("/dev/full"):
        run = run_cli(["redact", src, "-o", "/dev/full", *CLEAR.options()[:2]])
        assert run.code == 2 and run.exception is None, run.stderr
        assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


def test_redact_to_stdout(tmp_path):
    src = _copy(CLEAR, tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mysqlwire.cli import main; main()",
            "redact",
            src,
            "-o",
            "-",
            *CLEAR.options()[:2],
        ],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) == src.stat().st_size and proc.stdout[:4] == src.read_bytes()[:4]
    assert CLEAR.truth["password"].encode() not in proc.stdout


def test_failed_write_leaves_the_old_file(tmp_path):
    """A regular file is replaced only once the new content is complete."""
    out = tmp_path / "report.html"
    out.write_text("old")
    o = check_output(out, what="report")

    class Boom(Exception):
        pass

    from mysqlwire.outputs import open_output

    with pytest.raises(Boom), open_output(o, text=True) as fh:
        fh.write("half")
        raise Boom
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


# --- output paths: report, keylog-inject ------------------------------------------------


def test_report_output_never_an_input(tmp_path):
    src = _copy(CLEAR, tmp_path)
    before = src.read_bytes()
    run = run_cli(["report", src, "-o", src, *CLEAR.options()[:2]])
    assert run.code == 2 and "is also an input" in _one_error_line(run)
    assert src.read_bytes() == before
    link = tmp_path / "r.html"
    link.symlink_to(tmp_path / "elsewhere.html")
    run = run_cli(["report", src, "-o", link, *CLEAR.options()[:2]])
    assert run.code == 2 and not (tmp_path / "elsewhere.html").exists()


def test_keylog_inject_output_checks(tmp_path):
    src = _copy(TLS, tmp_path)
    before = src.read_bytes()
    for target in (src, TLS.keylog):
        run = run_cli(["keylog-inject", src, TLS.keylog, "-o", target])
        assert run.code == 2 and "is also an input" in _one_error_line(run)
    assert src.read_bytes() == before
    out = tmp_path / "self.pcapng"
    run = run_cli(["keylog-inject", src, TLS.keylog, "-o", out])
    assert run.code == 0, run.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_keylog_inject_with_a_foreign_key_log(tmp_path):
    """#15.6: a key log that matches no session says so, exits non-zero, writes nothing."""
    src = _copy(TLS, tmp_path)
    foreign = tmp_path / "other.keys"
    foreign.write_text(f"CLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n")
    out = tmp_path / "x.pcapng"
    run = run_cli(["keylog-inject", src, foreign, "-o", out])
    assert run.code == 2
    line = _one_error_line(run)
    assert "matches none of the" in line and "TLS session" in line
    assert not out.exists()
    # a capture without any TLS session at all
    plain = _copy(CLEAR, tmp_path, "plain.pcap")
    run = run_cli(["keylog-inject", plain, TLS.keylog, "-o", out])
    assert run.code == 2 and "no TLS session" in _one_error_line(run)
    assert not out.exists()


# --- capture add ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../escaped", "/tmp/abs-name", "a/b", "..", ""])
def test_capture_add_names_are_confined(tmp_path, name):
    dest = tmp_path / "corpus"
    dest.mkdir()
    run = run_cli(
        ["capture", "add", CLEAR.path, "--dest", dest, "--name", name, *CLEAR.options()[:2]]
    )
    assert run.code == 2, run.stderr
    assert "plain file name" in _one_error_line(run)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "escaped.pcap").exists() and not Path("/tmp/abs-name.pcap").exists()


def test_capture_add_symlink_in_dest_is_refused(tmp_path):
    dest = tmp_path / "corpus"
    dest.mkdir()
    victim = tmp_path / "victim.pcap"
    victim.write_bytes(b"keep")
    (dest / "x.pcap").symlink_to(victim)
    run = run_cli(
        [
            "capture",
            "add",
            CLEAR.path,
            "--dest",
            dest,
            "--name",
            "x",
            "--update",
            *CLEAR.options()[:2],
        ]
    )
    assert run.code == 2 and "symbolic link" in _one_error_line(run)
    assert victim.read_bytes() == b"keep"


def test_capture_add_never_copies_the_password(tmp_path):
    dest = tmp_path / "corpus"
    pw = tmp_path / "pw.txt"
    secret = CLEAR.truth.get("account_password") or CLEAR.truth["password"]
    pw.write_text(secret + "\n")
    pw.chmod(0o600)
    run = run_cli(
        [
            "capture",
            "add",
            CLEAR.path,
            "--dest",
            dest,
            "--name",
            "c1",
            "--password-file",
            pw,
            *CLEAR.options()[:2],
        ]
    )
    assert run.code == 0, run.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["c1.pcap", "c1.toml"]
    side = (dest / "c1.toml").read_text()
    assert secret not in side and "password_given = true" in side
    for p in dest.iterdir():
        assert secret.encode() not in p.read_bytes() or p.suffix == ".pcap"


def test_capture_add_copies_keys_0600(tmp_path):
    dest = tmp_path / "corpus"
    run = run_cli(
        ["capture", "add", TLS.path, "--dest", dest, "--name", "t", "--keylog", TLS.keylog]
        + ["--port", str(TLS.truth.get("port") or 3306)]
    )
    assert run.code == 0, run.stderr
    keys = [p for p in dest.iterdir() if p.suffix not in (".pcap", ".toml")]
    assert keys and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keys)


# --- the helper itself ------------------------------------------------------------------


def test_helper_rules(tmp_path):
    a = tmp_path / "a"
    a.write_text("x")
    with pytest.raises(OutputPathError, match="is also an input"):
        check_output(a, inputs=[a])
    hard = tmp_path / "hard"
    os.link(a, hard)  # the same inode under another name
    with pytest.raises(OutputPathError, match="is also an input"):
        check_output(hard, inputs=[a])
    with pytest.raises(OutputPathError, match="directory"):
        check_output(tmp_path)
    with pytest.raises(OutputPathError, match="does not exist"):
        check_output(tmp_path / "nope" / "f")
    with pytest.raises(OutputPathError, match="stdout"):
        check_output("-")
    assert check_output("-", allow_stdout=True).is_stdout
    with pytest.raises(OutputPathError, match="also the"):
        check_outputs({"output": "-", "--map": "-"}, allow_stdout=["output", "--map"])
    with pytest.raises(OutputPathError):
        confined(tmp_path, "../x")
    assert confined(tmp_path, "x.pcap") == tmp_path / "x.pcap"
    sock_dir = tmp_path / "s"
    sock_dir.mkdir()
    import socket

    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_dir / "sock"))
        with pytest.raises(OutputPathError, match="special file"):
            check_output(sock_dir / "sock")
    finally:
        s.close()
    # secret writes are 0600 whatever the umask and the old mode
    old = os.umask(0)
    try:
        f = tmp_path / "secret"
        f.write_text("old")
        f.chmod(0o666)
        write_output(check_output(f), "new", secret=True)
        assert stat.S_IMODE(f.stat().st_mode) == 0o600 and f.read_text() == "new"
    finally:
        os.umask(old)


def test_prepare_secret_file(tmp_path):
    """What `serve --keylog` / `--dump-rsa-key` use: O_EXCL|O_NOFOLLOW, 0600, honest mode."""
    new = tmp_path / "keys.log"
    assert prepare_secret_file(new) == 0o600 and new.stat().st_size == 0
    old = tmp_path / "old.log"
    old.write_text("kept\n")
    old.chmod(0o644)
    assert prepare_secret_file(old) == 0o600
    assert old.read_text() == "kept\n" and stat.S_IMODE(old.stat().st_mode) == 0o600
    link = tmp_path / "link.log"
    link.symlink_to(old)
    with pytest.raises(OutputPathError, match="symbolic link"):
        prepare_secret_file(link)
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(OutputPathError, match="not a regular file"):
        prepare_secret_file(fifo)


# --- key logs: bounded, streaming, special files refused ---------------------------------


def _dissect_with_keylog(keylog, tmp_path, *extra):
    run, rss, secs = run_measured(
        ["dissect", "--format", "jsonl", "--keylog", keylog, *extra, TLS.path], tmp_path, timeout=60
    )
    print(f"\nkey log {keylog}: exit {run.code}, peak RSS {rss:.0f} MiB, {secs:.2f} s")
    assert "Traceback" not in run.stderr, run.stderr
    assert rss < 300, rss
    return run


def test_keylog_512mb_of_garbage_is_bounded(tmp_path):
    big = tmp_path / "big.keys"
    with open(big, "wb") as fh:  # a sparse file: 512 MiB of NULs, no disk used
        fh.truncate(512 * MIB)
    run = _dissect_with_keylog(big, tmp_path)
    assert run.code == 2 and "larger than" in _one_error_line(run)


def test_keylog_long_garbage_lines_are_skipped_unbuffered(tmp_path):
    """60 MiB of text without a newline, then a valid line: read in bounded memory."""
    from mysqlwire.tls import KeyLog

    good = f"CLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n".encode()
    f = tmp_path / "long.keys"
    with open(f, "wb") as fh:
        for _ in range(60):
            fh.write(b"Z" * MIB)
        fh.write(b"\n" + good)
    kl = KeyLog.from_file(f)
    assert len(kl) == 1 and kl.skipped == 1
    run = _dissect_with_keylog(f, tmp_path)
    assert run.code in (0, 1, 2)


def test_keylog_dev_zero_and_fifo_are_refused(tmp_path):
    run = _dissect_with_keylog("/dev/zero", tmp_path)
    assert run.code == 2
    line = _one_error_line(run)
    assert "character device" in line and "--keylog-special" in line
    fifo = tmp_path / "keys.fifo"
    os.mkfifo(fifo)  # nobody writes: opening it must not hang
    run = _dissect_with_keylog(fifo, tmp_path)
    assert run.code == 2 and "FIFO" in _one_error_line(run)
    # explicitly allowed: /dev/zero is read up to the size limit, then refused
    run = _dissect_with_keylog("/dev/zero", tmp_path, "--keylog-special")
    assert run.code == 2 and "larger than" in _one_error_line(run)


def test_keylog_fifo_allowed_is_read(tmp_path):
    fifo = tmp_path / "keys.fifo"
    os.mkfifo(fifo)
    data = TLS.keylog.read_bytes()

    def writer():
        with open(fifo, "wb") as fh:
            fh.write(data)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    opts = ["--port", str(TLS.truth.get("port") or 3306), "--keylog-special"]
    run = run_cli(["dissect", "--format", "jsonl", "--keylog", fifo, *opts, TLS.path])
    t.join(10)
    assert run.code in (0, 1), run.stderr
    recs = [json.loads(x) for x in run.stdout.splitlines()]
    assert recs and all(r["tls_status"] == "ok" for r in recs if r["tls"])


# --- capture add / check (#15.5) ---------------------------------------------------------


def test_capture_add_refuses_a_capture_without_connections(tmp_path):
    from tests.test_robust_support import PcapWriter, TcpConn

    pcap = tmp_path / "http.pcap"
    with PcapWriter(pcap) as w:
        c = TcpConn(w, client="10.1.1.1", server="10.1.1.2", sport=8080).open()
        c.send("client", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.send("server", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        c.close()
    dest = tmp_path / "corpus"
    run = run_cli(["capture", "add", pcap, "--dest", dest])
    assert run.code == 3 and run.exception is None, run.stderr
    assert "no MySQL connection" in run.stderr
    assert not dest.exists() or list(dest.iterdir()) == []


def test_capture_add_redact_keeps_the_original_verdicts(tmp_path):
    """Expectations are computed on the original with the password, then the
    capture is redacted: the sidecar holds the original's verdict, the copy's
    mapped user, and neither the password nor the original user."""
    cap = next(
        c
        for c in CORPUS
        if c.truth.get("plugin_final") == "mysql_native_password"
        and c.truth.get("outcome") == "ok"
        and not c.truth.get("tls")
        and c.truth.get("account_password")
        and c.truth.get("user")
    )
    pw = tmp_path / "pw.txt"
    pw.write_text(cap.truth["account_password"])
    dest = tmp_path / "corpus"
    run = run_cli(
        ["capture", "add", cap.path, "--dest", dest, "--name", "r", "--redact"]
        + ["--password-file", pw, *cap.options()[:2]]
    )
    assert run.code == 0, run.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["r.pcap", "r.toml"]
    side = (dest / "r.toml").read_text()
    assert cap.truth["account_password"] not in side
    assert f'"{cap.truth["user"]}"' not in side  # the user is the mapped one
    from mysqlwire.corpus import Sidecar

    doc = Sidecar(dest / "r.toml").doc
    assert doc["read"]["redacted"] is True and doc["read"]["password_given"] is True
    assert [c["verdict"] for c in doc["connection"]] == ["PROOF_MATCHES"]
    # on the copy itself the proof is gone: replay cannot match any more
    run = run_cli(["replay", "--format", "jsonl", "--password-file", pw, dest / "r.pcap"])
    assert "PROOF_MATCHES" not in run.stdout
    # capture check: counts, passes, says the verdicts were not rechecked
    run = run_cli(["capture", "check", dest])
    assert run.code == 0, run.stdout + run.stderr
    assert "checked 1 sidecar(s), 1 connection(s)" in run.stdout
    assert "not rechecked" in run.stderr


def test_capture_check_fails_on_a_folder_without_sidecars(tmp_path):
    (tmp_path / "x.pcap").write_bytes(CLEAR.path.read_bytes())
    run = run_cli(["capture", "check", tmp_path])
    assert run.code == 2
    assert "no sidecar" in _one_error_line(run)


# --- serve's secret files (#20.3's file part, through mysqlwire.outputs) -----------------


def test_serve_secret_files_are_0600_and_honest(tmp_path):
    from tests.test_serve_cli import _Serve

    pw = tmp_path / "pw"
    pw.write_text("Serve-Secret-9\n")
    keys, dump = tmp_path / "keys.log", tmp_path / "rsa.pem"
    for f in (keys, dump):
        f.write_text("old\n")
        f.chmod(0o644)
    srv = _Serve(
        "--user", "app:sha2", "--password-file", str(pw),
        "--keylog", str(keys), "--dump-rsa-key", str(dump),
    )  # fmt: skip
    try:
        assert srv.port, "".join(srv.lines)
    finally:
        rc, _, err = srv.stop()
    assert rc == 0, err
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert dump.read_bytes().startswith(b"-----BEGIN")
    assert "(mode 0600)" in err


def test_serve_refuses_symlinked_or_input_secret_files(tmp_path):
    from tests.test_serve_cli import CLI

    pw = tmp_path / "pw"
    pw.write_text("Serve-Secret-9\n")
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "keys.log"
    link.symlink_to(victim)
    for extra in (["--keylog", str(link)], ["--dump-rsa-key", str(pw)]):
        proc = subprocess.run(
            [*CLI, "--port", "0", "--user", "app:sha2", "--password-file", str(pw), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
    assert victim.read_text() == "keep" and pw.read_text() == "Serve-Secret-9\n"
