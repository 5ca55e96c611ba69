"""Assemble the report: sections -> charts -> one self-contained HTML page (Jinja2 template, plotly.js inline).

>>> from llmlabel.report import write_report
>>> write_report(["runs/banking77"], "report.html")        # doctest: +SKIP
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError
from . import charts, sections
from .inputs import RunInputs, collect


def _fmt(x, digits: int = 3) -> str:
    if hasattr(x, "item") and not isinstance(x, (list, dict, str)):  # numpy scalar
        x = x.item()
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def build_context(run: RunInputs, *, title: str | None = None) -> dict:
    """Section dicts plus the chart divs the template places (a section is None when its input is absent)."""
    lf = sections.lfs(run)
    dev = sections.dev_eval(run)
    ctx = {"title": title or "llmlabel run report", "header": sections.header(run), "taxonomy": sections.taxonomy(run),
           "lfs": lf, "distribution": sections.distribution(run, lf), "confidence": sections.confidence(run),
           "dev": dev, "pairs": sections.confused_pairs(run, dev), "review": sections.review(run),
           "student": sections.student(run), "rounds": sections.rounds(run),
           "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    ch: dict[str, str] = {}

    def add(key: str, fig) -> None:
        if fig is not None:
            ch[key] = charts.to_div(fig, f"chart-{key}")

    if ctx["header"].get("stages"):
        add("stages", charts.stage_seconds(ctx["header"]["stages"]))
    if ctx["taxonomy"]:
        add("shares", charts.label_shares(ctx["taxonomy"]))
        if ctx["taxonomy"]["hierarchical"]:
            add("hierarchy", charts.taxonomy_sunburst(ctx["taxonomy"]))
    if lf is not None and len(lf["names"]) > 1:
        add("lf_heatmap", charts.lf_heatmap(lf))
    if ctx["distribution"]:
        add("distribution", charts.distribution(ctx["distribution"]))
    if ctx["confidence"]:
        add("confidence", charts.confidence_hist(ctx["confidence"]))
        if ctx["confidence"]["reliability"]:
            add("reliability", charts.reliability(ctx["confidence"]["reliability"]))
    if dev is not None:
        add("confusion", charts.confusion(dev))
    if ctx["student"]:
        if ctx["student"].get("metrics"):
            add("history", charts.history(ctx["student"]["metrics"]))
        if ctx["student"].get("curve"):
            add("cascade", charts.cascade(ctx["student"]))
    if ctx["rounds"]:
        add("rounds", charts.rounds(ctx["rounds"]))
    ctx["charts"] = ch
    return ctx


def render_html(ctx: dict) -> str:
    import jinja2
    from plotly.offline import get_plotlyjs

    env = jinja2.Environment(loader=jinja2.PackageLoader("llmlabel.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = _fmt
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.1f}%"
    return env.get_template("report.html.j2").render(plotlyjs=get_plotlyjs(), **ctx)


def write_report(paths: list[str | Path], output: str | Path, *, dev: str | Path | None = None,
                 title: str | None = None) -> Path:
    """Read a run's files, write one HTML page that opens from disk with no network (atomically)."""
    from ..io_write import atomic_write

    output = Path(output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise ConfigError("the report is an HTML file", path=output, hint="name it e.g. report.html")
    html = render_html(build_context(collect(paths, dev=dev), title=title))
    with atomic_write(output) as f:
        f.write(html)
    return output
