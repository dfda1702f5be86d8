"""Views: text, HTML (ladders, tables, the report) and JSON escaping.

Views show and compute nothing: everything they print is in the
:class:`mysqlwire.model.Connection` record they are given (fingerprints,
verdicts and diagnoses are computed by :mod:`mysqlwire.diagnose` /
:mod:`mysqlwire.replay` and attached before a view draws them).

* :mod:`.escape` -- wire strings made safe for a terminal, HTML, JSON;
* :mod:`.packets` -- what each connection-phase packet means (labels, plugin
  bytes, the ``--packets`` tree);
* :mod:`.ladder` -- the SVG ladder diagram;
* :mod:`.html` -- panels, tables and the Jupyter HTML;
* :mod:`.tree` -- ``--packets`` as a text tree (like ``tshark -V``);
* :mod:`.text` -- the terminal output of dissect/replay/diagnose;
* :mod:`.report` -- the self-contained HTML report.

:mod:`mysqlwire.notebook` re-exports the HTML helpers for notebook users.
"""
