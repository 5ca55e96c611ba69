"""``llmlabel aggregate`` and ``llmlabel lf-report`` as library calls: votes (any supported source) ->
labeled.parquet + review queue, or what every LF did."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..results import AggregateResult, LFReport, LFStats


def load_inputs(votes: str | Path, dev: str | Path | None = None, taxonomy: str | Path | None = None):
    """``(LabelMatrix, texts or None, L_dev or None, y_dev or None)``; ``taxonomy`` names the classes of
    votes that carry no label names (WRENCH, ``.npy``) and must match those that do."""
    from ..artifacts.taxonomy import load_taxonomy
    from .pipeline import load_dev, load_votes

    # leaves: parent groups are not classes
    labels = None if taxonomy is None else load_taxonomy(taxonomy).classes_for_votes(taxonomy)
    L, _, texts = load_votes(votes, labels)
    if labels is not None and L.labels is not None and list(L.labels) != labels:
        raise ConfigError("the taxonomy's labels differ from the ones the votes were made with", path=taxonomy)
    L_dev = y_dev = None
    if dev is not None:
        L_dev, y_dev = load_dev(dev, L, L.labels)
    return L, texts, L_dev, y_dev


def aggregate_votes(votes: str | Path, output: str | Path, *, dev: str | Path | None = None, method: str = "auto",
                    taxonomy: str | Path | None = None, review_top: float = 0.1,
                    gold: str | Path | None = None, metric: str = "accuracy") -> AggregateResult:
    """Fit a label model on ``votes`` (chosen and calibrated on the gold ``dev`` set with ``method="auto"``)
    and write ``output`` (labeled.parquet) with the review queue beside it.

    ``review_top``: share (< 1) or number of items in the review queue. ``gold``: human labels (JSONL/CSV of
    id + label, e.g. from ``llmlabel review import``), clamped (``source: human``); those from the ``random``
    strategy or with no ``strategy`` field are also used, cross-fitted, to choose and calibrate the model; each
    such run appends a round to ``review_rounds.json`` beside ``output``. Multi-label votes get per-label label
    models, per-label thresholds (F1 on dev) and ``labels`` lists (:mod:`llmlabel.labelmodel.multilabel`; there
    ``gold`` (id + labels) is clamped and joins the dev rows). With gold (multi-label: or dev) and a votes folder
    holding cross-fitting votes (``label --gold``), the safety net's per-fold label models go to the labeled
    file's cross-fitting sidecar (:mod:`llmlabel.labelmodel.crossfit`). ``metric``: what ``auto`` chooses the
    label model by on the dev rows, ``accuracy`` or ``macro_f1`` (single-label; multi-label label models are
    chosen by log-loss and their thresholds tuned for F1 either way).
    Returns an :class:`~llmlabel.results.AggregateResult` (paths, report, counts).
    """
    from ..artifacts.multivotes import is_multi_label_votes
    from ..io_write import check_writable
    from .pipeline import write_labeled

    check_writable(output)
    if review_top < 0:
        raise ConfigError(f"review_top must be >= 0, got {review_top}", field="review_top")
    from .select import LABEL_METRICS

    if metric not in LABEL_METRICS:
        raise ConfigError(f"metric must be {' or '.join(LABEL_METRICS)}, got {metric!r}", field="metric")
    fit = _label_sets if is_multi_label_votes(votes) else partial(_one_of_k, metric=metric)
    V, texts, res, side = fit(votes, output, dev=dev, gold=gold, method=method, taxonomy=taxonomy)
    paths = write_labeled(output, V, res, texts, review_top=review_top if review_top < 1 else int(review_top))
    if side is not None:
        paths["crossfit"] = side
    sets = res.get("chosen")
    return AggregateResult(paths=paths, report=res["report"], items=len(V), uncovered=int(res["uncovered"].sum()),
                           mean_labels=None if sets is None else float(sets.sum(1).mean()))


def _one_of_k(votes, output, *, dev, gold, method, taxonomy, metric="accuracy"):
    """Single-label: one k-class label model; the gold is clamped, its fair-sample rows join dev (:mod:`.gold`)."""
    from ..artifacts.crossfit import read_crossfit_votes
    from .crossfit import crossfit_labels, crossfit_sidecar
    from .gold import aggregate_with_gold, append_round, load_gold

    L, texts, L_dev, y_dev = load_inputs(votes, dev, taxonomy)
    g = load_gold(gold, L, with_strategy=True) if gold is not None else (None, None, None)
    res = aggregate_with_gold(L, method, L_dev, y_dev, *g, metric=metric)
    if gold is not None:
        append_round(Path(output).parent / "review_rounds.json", res["report"])
    # Without gold this only removes an earlier run's sidecar: distill must not score against labels it outlived.
    side = crossfit_sidecar(votes, output, L.labels or [str(j) for j in range(L.cardinality)], read_crossfit_votes,
                            lambda cv: crossfit_labels(L, cv, *g, method, L_dev, y_dev, metric=metric), method,
                            gold is not None)
    return L, texts, res, side


def _label_sets(votes, output, *, dev, gold, method, taxonomy):
    """Multi-label: one binary label model per label (:mod:`.multilabel`); the dev and gold rows choose, calibrate
    and threshold them (a row in both counts once, with the gold's labels); the gold is clamped."""
    from ..artifacts.crossfit import read_crossfit_multi_votes
    from ..artifacts.multivotes import read_multi_votes
    from ..artifacts.taxonomy import load_taxonomy
    from .crossfit import crossfit_multi_labels, crossfit_sidecar
    from .gold import clamp
    from .multilabel import aggregate_multi
    from .pipeline import read_labels

    mv, texts = read_multi_votes(votes, None if taxonomy is None else load_taxonomy(taxonomy).classes())
    given = [read_labels(p, mv, what=w, sets=True)[:2] for p, w in ((dev, "dev"), (gold, "gold")) if p is not None]
    rows, Y = given[0] if given else (None, None)
    if len(given) == 2:
        (d_rows, d_Y), (g_rows, g_Y) = given
        other = ~np.isin(d_rows, g_rows)
        rows, Y = np.concatenate([d_rows[other], g_rows]), np.concatenate([d_Y[other], g_Y])
    res = aggregate_multi(mv, method, rows, Y)
    if gold is not None:
        g_rows, g_Y = given[-1]
        res = clamp(res, g_rows, g_Y)
        res["report"].update(n_gold=int(len(g_rows)), n_gold_selection=int(len(g_rows)), n_gold_clamped_only=0)
    t0 = time.perf_counter()
    side = crossfit_sidecar(votes, output, mv.labels, read_crossfit_multi_votes,
                            lambda cv: crossfit_multi_labels(mv, cv, rows, Y, method), method, rows is not None)
    if side is not None:
        res["report"]["crossfit_seconds"] = round(time.perf_counter() - t0, 1)
    return mv, texts, res, side


def lf_report(votes: str | Path, *, dev: str | Path | None = None,
              taxonomy: str | Path | None = None) -> LFReport:
    """Coverage, overlap, conflict, polarity and labeling errors of every LF in ``votes``; with ``dev`` (gold
    labels) also each LF's accuracy on the dev items it voted on. ``taxonomy`` names the classes of votes that
    carry no label names (WRENCH, ``.npy``). Returns an :class:`~llmlabel.results.LFReport`."""
    from .analysis import LFAnalysis

    L, _, L_dev, y_dev = load_inputs(votes, dev, taxonomy)
    rows = LFAnalysis(L.hard(), class_names=L.labels).rows()
    acc = {}
    if L_dev is not None:
        acc = {r["lf"]: r for r in LFAnalysis(L_dev.hard(), y_dev, class_names=L.labels).rows()}
    lfs = tuple(LFStats(lf=r["lf"], polarity=tuple(r["polarity"]), coverage=r["coverage"], overlap=r["overlap"],
                        conflict=r["conflict"], errors=int(L.errors.get(r["lf"], 0)),
                        dev_accuracy=acc[r["lf"]].get("accuracy") if acc else None,
                        dev_votes=acc[r["lf"]]["n_votes"] if acc else None) for r in rows)
    return LFReport(items=len(L), covered=float(L.covered().mean()), lfs=lfs, dev=bool(acc))
