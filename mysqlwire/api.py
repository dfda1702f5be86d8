"""The Python API for notebooks and scripts.

>>> import mysqlwire
>>> cap = mysqlwire.open("captures/lab-samples/mariadb_pymysql_native_ok.pcap")
>>> conn = cap.connections[0]
>>> conn.user, conn.outcome
('app', 'ok')
>>> conn.replay(password="Tr0ub4dor&3").verdict
'PROOF_MATCHES'
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from .dissect import DEFAULT_PORTS, CaptureSummary, DissectOptions, iter_connections
from .model import Connection


class Capture:
    """A capture opened for exploration (connections are read once, lazily)."""

    def __init__(
        self,
        path,
        *,
        ports=DEFAULT_PORTS,
        detect: bool = False,
        keylog=None,
        packets: bool = True,
    ):
        self.path = os.fspath(path)
        if isinstance(ports, int):
            ports = (ports,)
        if keylog is not None and not hasattr(keylog, "merge"):
            from .tls import KeyLog

            keylog = KeyLog.from_file(keylog)
        self.options = DissectOptions(
            ports=tuple(ports), detect=detect, keylog=keylog, with_packets=packets
        )
        self.summary = CaptureSummary(path=self.path)
        self._connections: list[Connection] | None = None

    @property
    def connections(self) -> list[Connection]:
        if self._connections is None:
            self._connections = list(iter_connections(self.path, self.options, self.summary))
        return self._connections

    def __iter__(self) -> Iterator[Connection]:
        return iter(self.connections)

    def __len__(self) -> int:
        return len(self.connections)

    def __getitem__(self, i: int) -> Connection:
        return self.connections[i]

    def replay(self, **secrets) -> list:
        """Replay every connection; returns the verdicts in connection order."""
        return [c.replay(**secrets) for c in self.connections]

    def records(self) -> list[dict]:
        return [c.to_record() for c in self.connections]

    def to_dataframe(self):
        """One row per connection with the JSON record's columns (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - optional extra
            raise ImportError(
                "to_dataframe() needs pandas: pip install 'mysqlwire[dataframe]'"
            ) from exc
        rows = []
        for c in self.connections:
            rec = c.to_record()
            if "verdict" in c.extra:
                rec["verdict"] = c.extra["verdict"]["verdict"]
            if "diagnosis" in c.extra:
                rec["top_finding"] = (
                    c.extra["diagnosis"][0]["code"] if c.extra["diagnosis"] else None
                )
            rows.append(rec)
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        """Jupyter: one summary row per connection (:mod:`mysqlwire.notebook`)."""
        from .notebook import capture_html

        return capture_html(self)

    def __repr__(self) -> str:
        n = len(self._connections) if self._connections is not None else "?"
        return f"<mysqlwire.Capture {self.path!r} connections={n}>"
