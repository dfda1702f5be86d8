"""Live capture: a ``tcpdump`` child process writing a pcap stream to a pipe.

Why a child process and not Scapy's ``sniff``: the kernel's BPF filter and
libpcap's ring buffer run in C inside tcpdump, and the pipe carries the
ordinary pcap format that :mod:`mysqlwire.capture.reader` already streams, so
the per-packet Python cost is the same as reading a file. Scapy's ``sniff``
builds a full Packet object per frame (``benchmarks/watch_cost.py`` measures
both on the same loopback load).

Nothing here knows MySQL: :func:`open_live` returns a binary stream and a
handle to stop the child; :class:`LiveError` carries a one-line message that
says what is missing (tcpdump itself, a capability, an interface).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MysqlwireError


class LiveError(MysqlwireError):
    """Live capture cannot start (one line, says what to do)."""


def interfaces() -> list[str]:
    """Network interfaces of this machine (``/sys/class/net``), sorted."""
    try:
        return sorted(os.listdir("/sys/class/net"))
    except OSError:
        return []


def bpf_filter(ports: tuple[int, ...] = ()) -> str:
    """Kernel filter: every TCP segment, or only the given server ports."""
    if not ports:
        return "tcp"
    return "tcp and (" + " or ".join(f"port {int(p)}" for p in ports) + ")"


def _explain(stderr: str, iface: str, tool: str) -> str:
    low = stderr.lower()
    if "permission" in low or "operation not permitted" in low:
        return (
            f"cannot capture on {iface}: permission denied. Live capture needs the "
            f"CAP_NET_RAW and CAP_NET_ADMIN capabilities: run as root, or grant them to "
            f"{tool} once with 'setcap cap_net_raw,cap_net_admin=eip {tool}'"
        )
    if "no such device" in low or "doesn't exist" in low or "no such interface" in low:
        known = ", ".join(interfaces()) or "none found"
        return f"no network interface named {iface!r} (interfaces here: {known})"
    line = next((ln for ln in stderr.splitlines() if ln.strip()), "").strip()
    return f"{tool} could not start a capture on {iface}: {line or 'no reason given'}"


@dataclass
class LiveCapture:
    """A running capture: ``stream`` is the pcap byte stream (read it until EOF)."""

    iface: str
    proc: subprocess.Popen
    tool: str
    stderr_lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def stream(self):
        return self.proc.stdout

    def stop(self) -> None:
        """Ask the child to finish (it flushes what it captured; the stream then ends)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float = 5.0) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=timeout)

    def failure(self) -> str | None:
        """Why the child ended on its own with an error, if it did."""
        rc = self.proc.poll()
        if rc is None or rc == 0 or rc == -signal.SIGTERM:
            return None
        if self._reader is not None:
            self._reader.join(timeout=2)
        return _explain("\n".join(self.stderr_lines), self.iface, self.tool)


def open_live(
    iface: str, ports: tuple[int, ...] = (), *, tcpdump: str | None = None, snaplen: int = 0
) -> LiveCapture:
    """Start ``tcpdump -i IFACE -U -w -`` with the BPF filter for ``ports``.

    Raises :class:`LiveError` when tcpdump is missing, the interface does not
    exist, or the process lacks the capabilities to capture.
    """
    tool = tcpdump or shutil.which("tcpdump") or ""
    if not tool or not Path(tool).exists():
        raise LiveError(
            "live capture needs tcpdump, which is not installed "
            "(Debian/Ubuntu: apt-get install tcpdump)"
        )
    if iface not in ("any",) and interfaces() and iface not in interfaces():
        raise LiveError(_explain("no such device", iface, tool))
    cmd = [
        tool,
        "-i",
        iface,
        "-U",  # flush every packet: a login is printed when it ends, not when a buffer fills
        "--immediate-mode",
        "-n",
        "-s",
        str(snaplen),
        "-w",
        "-",
        bpf_filter(ports),
    ]
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            bufsize=0,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the child ourselves
        )
    except OSError as exc:
        raise LiveError(f"cannot run {tool}: {exc.strerror or exc}") from None
    live = LiveCapture(iface=iface, proc=proc, tool=tool)

    def drain_stderr() -> None:
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line and len(live.stderr_lines) < 50:
                live.stderr_lines.append(line)

    live._reader = threading.Thread(target=drain_stderr, daemon=True)
    live._reader.start()
    return live


__all__ = ["LiveCapture", "LiveError", "bpf_filter", "interfaces", "open_live"]
