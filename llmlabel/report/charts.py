"""Plotly figures for the report sections (one function per chart; inputs are ``sections.py`` dicts).

Figures become ``<div>``s without the library (``to_div``); the page inlines plotly.js once.
"""

from __future__ import annotations

import numpy as np

_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=40, b=60), font=dict(size=12))


def _go():
    import plotly.graph_objects as go

    return go


def to_div(fig, div_id: str) -> str:
    """The figure as a ``<div class="chart">`` + inline script; plotly.js itself is on the page once."""
    html = fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True,
                               "modeBarButtonsToRemove": ["sendDataToCloud"]})
    return f'<div class="chart" data-chart="{div_id}">{html}</div>'


def _short(names, n: int = 28):
    return [s if len(s) <= n else s[: n - 1] + "…" for s in map(str, names)]


def stage_seconds(stages: list[dict]):
    go = _go()
    st = [s for s in stages if s.get("seconds") is not None]
    fig = go.Figure(go.Bar(x=[s["seconds"] for s in st], y=[s["stage"] for s in st], orientation="h",
                           marker_color="#4C78A8"))
    fig.update_layout(title="Seconds per stage", xaxis_title="seconds", height=120 + 30 * len(st), **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    return fig


def taxonomy_sunburst(tax: dict):
    go = _go()
    rows = tax["labels"]
    parents = {r["parent"] for r in rows if r["parent"]}
    val = [r["labeled_share"] if r["labeled_share"] is not None else (r["share"] or 0) for r in rows]
    fig = go.Figure(go.Sunburst(labels=[r["name"] for r in rows], parents=[r["parent"] for r in rows],
                                values=[0 if r["name"] in parents else v for r, v in zip(rows, val)],
                                branchvalues="remainder"))
    fig.update_layout(title="Label hierarchy (area = share of items)", height=480, **_LAYOUT)
    return fig


def label_shares(tax: dict):
    go = _go()
    rows = tax["labels"]
    fig = go.Figure()
    if any(r["share"] is not None for r in rows):
        fig.add_bar(name="taxonomy estimate", x=_short(r["name"] for r in rows), y=[r["share"] or 0 for r in rows])
    if any(r["labeled_share"] is not None for r in rows):
        fig.add_bar(name="labeled", x=_short(r["name"] for r in rows), y=[r["labeled_share"] or 0 for r in rows])
    fig.update_layout(title="Label shares", yaxis_title="share of items", barmode="group", height=380, **_LAYOUT)
    return fig


def lf_heatmap(lf: dict):
    go = _go()
    names = _short(lf["names"], 24)
    co = lf["co_votes"].astype(int)
    text = [[f"{int(c)} items voted by both" for c in row] for row in co]
    fig = go.Figure(go.Heatmap(z=lf["agreement"], x=names, y=names, zmin=0, zmax=1, colorscale="RdYlGn",
                               text=text, hovertemplate="%{y} x %{x}<br>agreement %{z:.2f}<br>%{text}<extra></extra>",
                               colorbar=dict(title="agree")))
    size = max(360, min(900, 120 + 22 * len(names)))
    fig.update_layout(title="LF x LF agreement where both vote (1 - agreement = conflict)", height=size, **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    return fig


def distribution(dist: dict):
    go = _go()
    classes = _short(dist["classes"], 24)
    rows = ["final labels", "mean probability"]
    z = [dist["final"], dist["mean_proba"]]
    if "lf_share" in dist:
        rows += [f"LF {n}" for n in _short(dist["lf_names"], 24)]
        z += list(dist["lf_share"])
    fig = go.Figure(go.Heatmap(z=np.asarray(z, float), x=classes, y=rows, colorscale="Blues",
                               hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>", colorbar=dict(title="share")))
    fig.update_layout(title="Final label distribution beside each LF's vote distribution (row shares)",
                      height=max(300, min(1000, 140 + 22 * len(rows))), **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    return fig


def confidence_hist(conf: dict):
    go = _go()
    fig = go.Figure()
    fig.add_histogram(x=conf["covered"], name="covered", xbins=dict(start=0, end=1.0001, size=0.05), marker_color="#4C78A8")
    if len(conf["uncovered"]):
        fig.add_histogram(x=conf["uncovered"], name="uncovered (class prior)", xbins=dict(start=0, end=1.0001, size=0.05),
                          marker_color="#E45756")
    fig.update_layout(title="Confidence of the shipped label", barmode="stack", xaxis_title="confidence",
                      yaxis_title="items", height=340, **_LAYOUT)
    return fig


def reliability(curves: dict):
    go = _go()
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line=dict(dash="dot", color="grey"))
    for name, c in curves.items():
        fig.add_scatter(x=c["confidence"], y=c["accuracy"], mode="lines+markers", name=f"{name} (ECE {c['ece']:.3f})",
                        text=[f"{n} items" for n in c["count"]], marker=dict(size=[6 + 14 * np.sqrt(n / max(c["count"]))
                                                                                for n in c["count"]]))
    fig.update_layout(title="Reliability: accuracy vs confidence on gold items", xaxis_title="confidence",
                      yaxis_title="accuracy", xaxis_range=[0, 1], yaxis_range=[0, 1.02], height=400, **_LAYOUT)
    return fig


def confusion(dev: dict):
    go = _go()
    cm = dev["confusion"].astype(float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    classes = _short(dev["classes"], 24)
    fig = go.Figure(go.Heatmap(z=norm, x=classes, y=classes, colorscale="Blues", zmin=0, zmax=1,
                               text=cm.astype(int), hovertemplate="gold %{y}<br>label %{x}<br>%{text} items "
                                                                  "(%{z:.2f} of the row)<extra></extra>"))
    fig.update_layout(title=f"Confusion on {dev['n']} gold items (rows: gold, columns: label; row-normalised)",
                      xaxis_title="label", yaxis_title="gold", height=max(380, min(1000, 160 + 20 * len(classes))),
                      **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    return fig


def cascade(stu: dict):
    go = _go()
    c = stu["curve"]
    fig = go.Figure(go.Scatter(x=c["deferral"], y=c["accuracy"], mode="lines", name="cascade",
                               text=[f"T = {t:.3f}" for t in c["threshold"]]))
    point = (stu.get("calibration") or {}).get("point")
    if point:
        fig.add_scatter(x=[point["deferral"]], y=[point["accuracy"]], mode="markers", name="chosen threshold",
                        marker=dict(size=12, color="#E45756"))
    fig.update_layout(title="Cascade: accuracy vs share deferred to the LLM (dev set)", xaxis_title="deferral",
                      yaxis_title="accuracy", xaxis_range=[0, 1], height=380, **_LAYOUT)
    return fig


def history(metrics: dict):
    go = _go()
    hist = metrics.get("history") or []
    keys = [k for k in ("train_loss", "loss", "dev_accuracy", "dev_loss") if any(k in h for h in hist)]
    fig = go.Figure()
    for k in keys:
        fig.add_scatter(x=[h.get("epoch", i + 1) for i, h in enumerate(hist)], y=[h.get(k) for h in hist],
                        mode="lines+markers", name=k)
    fig.update_layout(title="Student training", xaxis_title="epoch / round", height=320, **_LAYOUT)
    return fig if keys else None


_PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D")


def rounds(rd: dict):
    """Accuracy vs human labels: one panel per dataset (an eval run has several), one colour per strategy;
    dashed = the student where it was scored (gaps joined: it is retrained only at some label counts)."""
    from plotly.subplots import make_subplots

    sets = list(dict.fromkeys(s.get("dataset", "") for s in rd["series"].values()))
    strategies = list(dict.fromkeys(s.get("strategy", name) for name, s in rd["series"].items()))
    cols = min(2, len(sets))
    nrows = -(-len(sets) // cols)
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=[d or "labels" for d in sets] if len(sets) > 1 else None,
                        horizontal_spacing=0.08, vertical_spacing=0.12 if nrows > 1 else 0.0)
    for name, s in rd["series"].items():
        i = sets.index(s.get("dataset", ""))
        strat = s.get("strategy", name)
        color = _PALETTE[strategies.index(strat) % len(_PALETTE)]
        pos = dict(row=i // cols + 1, col=i % cols + 1)
        first = i == 0  # one legend entry per strategy
        fig.add_scatter(x=s["n_labels"], y=s["accuracy"], mode="lines+markers", name=f"{strat} (labels)",
                        legendgroup=strat, showlegend=first, line=dict(color=color), **pos)
        if any(v is not None for v in s["student_accuracy"]):
            fig.add_scatter(x=s["n_labels"], y=s["student_accuracy"], mode="lines+markers", name=f"{strat} (student)",
                            legendgroup=strat, showlegend=first, connectgaps=True,
                            line=dict(color=color, dash="dash"), **pos)
    fig.update_xaxes(title_text="human labels")
    fig.update_yaxes(title_text="accuracy")
    fig.update_layout(title="Review rounds: accuracy vs number of human labels", height=100 + 340 * nrows, **_LAYOUT)
    if len(sets) > 1:  # room between the figure title and the panel titles
        fig.update_layout(margin=dict(_LAYOUT["margin"], t=90))
    return fig
