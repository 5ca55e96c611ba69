"""A self-contained HTML report of a labeling run: what was labeled, how well, and where not to trust it.

``write_report(paths, "report.html")`` reads a run folder (or the files in it) and writes one page with
plotly charts and all data inline, so it opens from disk with no network.
"""

from __future__ import annotations

from .inputs import RunInputs, collect
from .render import build_context, render_html, write_report

__all__ = ["RunInputs", "collect", "build_context", "render_html", "write_report"]
