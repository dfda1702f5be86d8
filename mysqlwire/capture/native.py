"""The optional native part of the capture layer (``_walk.c``).

``_walk`` is a C extension built by ``setup.py`` when a compiler is present:
the pcap record loop and the pcapng packet-block loop (``PcapScan``,
``PcapngScan``, used by :mod:`mysqlwire.capture.reader`) and :class:`CommandLane` (used by
:mod:`mysqlwire.capture.lane`).  The Python code it mirrors stays the
reference and the fallback: without the extension, with a build of an older
``_walk.c`` (its ``VERSION`` differs), or with ``MYSQLWIRE_NO_NATIVE`` set in
the environment, :data:`walk` is None and everything runs in Python.
"""

from __future__ import annotations

import importlib
import os

VERSION = 8
"""The ``_walk.c`` this Python code was written against."""

try:  # (this module owns the extension: the others use it through ``walk``)
    walk = importlib.import_module("._walk", __package__)
except ImportError:  # not built (no compiler at install time)
    walk = None
if walk is None:
    WHY = "the C extension is not built"
elif os.environ.get("MYSQLWIRE_NO_NATIVE"):
    walk, WHY = None, "switched off by MYSQLWIRE_NO_NATIVE"
elif getattr(walk, "VERSION", 0) != VERSION:
    walk, WHY = None, "the C extension is a build of an older _walk.c: run `pip install -e .` again"
else:
    WHY = ""
"""Why the Python loop runs (empty when the native one does)."""

NATIVE = walk is not None
"""Whether the native loop and lanes are used."""
