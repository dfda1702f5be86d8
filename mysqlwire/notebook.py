"""HTML views for Jupyter and the HTML report (kept as one import point).

The code lives in :mod:`mysqlwire.views`: :mod:`~mysqlwire.views.escape`
(escaping), :mod:`~mysqlwire.views.packets` (what each packet means),
:mod:`~mysqlwire.views.ladder` (the SVG ladder) and :mod:`~mysqlwire.views.html`
(panels and tables).  ``Connection._repr_html_`` and ``Capture._repr_html_``
are provided by :mod:`mysqlwire.api`, which attaches the client fingerprint
before drawing (views compute nothing).
"""

from __future__ import annotations

from .views.escape import esc
from .views.html import (
    CSS,
    SUMMARY_COLUMNS,
    capture_html,
    compare_html,
    connection_html,
    login_latency_ms,
    panel_html,
    short_server,
    summary_row,
    summary_table_html,
)
from .views.ladder import ladder_svg
from .views.packets import client_label

__all__ = [
    "CSS",
    "SUMMARY_COLUMNS",
    "esc",
    "connection_html",
    "compare_html",
    "panel_html",
    "ladder_svg",
    "capture_html",
    "summary_row",
    "summary_table_html",
    "login_latency_ms",
    "client_label",
    "short_server",
]
